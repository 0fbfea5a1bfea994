/*
 * mri_subscribe_parse (proto/subscribe.h): SUBSCRIBE's JSON read with
 * jansson, for mailroomd only; libmailroom does not link jansson.
 */
#include "proto/subscribe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailroom/error.h"

static int
subscribe__cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
mri_subscribe_parse(const void *body, size_t len, struct json_t **root,
		    struct mri_subscribe *out, const char **topics, char *why,
		    size_t why_size)
{
	json_error_t jerr;
	json_t      *t, *v;
	const char  *mode = "key";
	size_t       i;

	memset(out, 0, sizeof(*out));
	*root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
			   &jerr);
	if (*root == NULL) {
		snprintf(why, why_size, "SUBSCRIBE is not JSON: %s (line %d, "
			 "column %d)", jerr.text, jerr.line, jerr.column);
		return MR_EINVAL;
	}
	if (!json_is_object(*root) ||
	    !json_is_string(v = json_object_get(*root, "group")) ||
	    json_string_length(v) == 0 ||
	    json_string_length(v) > MRI_SUBSCRIBE_GROUP_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(why, why_size, "SUBSCRIBE needs \"group\", a string "
			 "of 1 to %d bytes", MRI_SUBSCRIBE_GROUP_MAX);
		return MR_EINVAL;
	}
	out->group = json_string_value(v);
	t          = json_object_get(*root, "topics");
	if (!json_is_array(t) || json_array_size(t) == 0 ||
	    json_array_size(t) > MRI_SUBSCRIBE_TOPICS_MAX) {
		snprintf(why, why_size, "SUBSCRIBE needs \"topics\", an array "
			 "of 1 to %d topic names", MRI_SUBSCRIBE_TOPICS_MAX);
		return MR_EINVAL;
	}
	json_array_foreach(t, i, v)
	{
		if (!json_is_string(v) ||
		    !mri_topic_valid(json_string_value(v),
				     json_string_length(v))) {
			snprintf(why, why_size, "topics[%zu] is not a valid "
				 "topic name", i);
			return MR_EINVAL;
		}
		topics[i] = json_string_value(v);
	}
	out->ntopics = json_array_size(t);
	qsort(topics, out->ntopics, sizeof(*topics), subscribe__cmp_str);
	for (i = 1; i < out->ntopics; i++)
		if (strcmp(topics[i - 1], topics[i]) == 0) {
			snprintf(why, why_size, "topic %s is listed twice",
				 topics[i]);
			return MR_EINVAL;
		}
	out->topics = topics;
	if ((v = json_object_get(*root, "mode")) != NULL &&
	    (!json_is_string(v) || (mode = json_string_value(v)) == NULL))
		mode = "";
	for (i = 0; i < 3 && strcmp(mode, mri_subscribe_mode_name(
					      (enum mri_subscribe_mode)i)) != 0;
	     i++)
		;
	if (i == 3) {
		snprintf(why, why_size, "\"mode\" is key, partition or "
			 "unordered");
		return MR_EINVAL;
	}
	out->mode = (enum mri_subscribe_mode)i;
	if ((v = json_object_get(*root, "ack_deadline_ms")) != NULL) {
		if (!json_is_integer(v) ||
		    json_integer_value(v) < MRI_SUBSCRIBE_DEADLINE_MIN ||
		    json_integer_value(v) > MRI_SUBSCRIBE_DEADLINE_MAX) {
			snprintf(why, why_size, "\"ack_deadline_ms\" is an "
				 "integer from %d to %d",
				 MRI_SUBSCRIBE_DEADLINE_MIN,
				 MRI_SUBSCRIBE_DEADLINE_MAX);
			return MR_EINVAL;
		}
		out->ack_deadline_ms = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(*root, "credit")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > MRI_SUBSCRIBE_CREDIT_MAX) {
			snprintf(why, why_size, "\"credit\" is an integer "
				 "from 1 to %d", MRI_SUBSCRIBE_CREDIT_MAX);
			return MR_EINVAL;
		}
		out->credit = (uint32_t)json_integer_value(v);
	}
	return MR_OK;
}
