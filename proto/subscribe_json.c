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
#include "proto/address.h"

static const char *const subscribe__retry_members[] = {
    "max_attempts", "backoff_initial_ms", "backoff_max_ms",
    "backoff_multiplier", "backoff_jitter", NULL};
static const char *const subscribe__dlq_members[] = {
    "topic", "breaker_max", "breaker_period_ms", "breaker_cooldown_ms",
    NULL};

static int
subscribe__cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a, b, c and d" of \p names (NULL-terminated) into \p out. */
static void
subscribe__list(char *out, size_t size, const char *const *names)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; names[i] != NULL && n < size; i++) {
		const char *sep = i == 0		 ? ""
				  : names[i + 1] == NULL ? " and "
							 : ", ";

		n += (size_t)snprintf(out + n, size - n, "%s%s", sep,
				      names[i]);
	}
}

/* Member \p what of \p root: *obj is the object, or NULL when left out.
 * @returns MR_OK, or MR_EINVAL when it is not an object or has a member
 * not in \p known (named in the sentence). */
static int
subscribe__object(json_t *root, const char *what, const char *const *known,
		  json_t **obj, char *why, size_t why_size)
{
	const char *name;
	json_t     *v;
	char        list[160], shown[72];
	size_t      i;

	subscribe__list(list, sizeof(list), known);
	if ((*obj = json_object_get(root, what)) == NULL)
		return MR_OK;
	if (!json_is_object(*obj)) {
		snprintf(why, why_size, "\"%s\" is an object of %s", what,
			 list);
		return MR_EINVAL;
	}
	json_object_foreach(*obj, name, v)
	{
		for (i = 0; known[i] != NULL && strcmp(known[i], name) != 0;
		     i++)
			;
		if (known[i] != NULL)
			continue;
		// The name, short and without control characters.
		for (i = 0; name[i] != '\0' && i < 64; i++)
			shown[i] = (unsigned char)name[i] < 0x20 ? '?'
								 : name[i];
		snprintf(shown + i, sizeof(shown) - i, "%s",
			 name[i] != '\0' ? "..." : "");
		snprintf(why, why_size, "\"%s\" has no member \"%s\": it "
			 "takes %s", what, shown, list);
		return MR_EINVAL;
	}
	return MR_OK;
}

/* Integer member \p name of \p obj (may be NULL), within [lo, hi] (\p note
 * says what lo means, or is ""): *out and \p bit in *has when given.
 * @returns MR_OK (also when left out) or MR_EINVAL. */
static int
subscribe__int(json_t *obj, const char *what, const char *name, long long lo,
	       const char *note, long long hi, unsigned bit, unsigned *has,
	       uint64_t *out, char *why, size_t why_size)
{
	json_t *v = obj != NULL ? json_object_get(obj, name) : NULL;

	if (v == NULL)
		return MR_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		snprintf(why, why_size, "\"%s.%s\" is an integer from %lld%s "
			 "to %lld", what, name, lo, note, hi);
		return MR_EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	*has |= bit;
	return MR_OK;
}

/* As subscribe__int, for a number (integer or fraction). */
static int
subscribe__num(json_t *obj, const char *what, const char *name, double lo,
	       double hi, unsigned bit, unsigned *has, double *out, char *why,
	       size_t why_size)
{
	json_t *v = obj != NULL ? json_object_get(obj, name) : NULL;

	if (v == NULL)
		return MR_OK;
	if (!json_is_number(v) || !(json_number_value(v) >= lo) ||
	    !(json_number_value(v) <= hi)) {
		snprintf(why, why_size, "\"%s.%s\" is a number from %g to %g",
			 what, name, lo, hi);
		return MR_EINVAL;
	}
	*out = json_number_value(v);
	*has |= bit;
	return MR_OK;
}

/* "retry": the members given into \p out. */
static int
subscribe__retry(json_t *root, struct mri_subscribe *out, char *why,
		 size_t why_size)
{
	json_t  *o;
	uint64_t n = 0;
	int      rc;

	if ((rc = subscribe__object(root, "retry", subscribe__retry_members,
				    &o, why, why_size)) != MR_OK ||
	    o == NULL)
		return rc;
	if ((rc = subscribe__int(o, "retry", "max_attempts", 0, " (unlimited)",
				 MRI_SUBSCRIBE_ATTEMPTS_MAX,
				 MRI_SUB_MAX_ATTEMPTS, &out->has, &n, why,
				 why_size)) != MR_OK ||
	    (rc = subscribe__int(o, "retry", "backoff_initial_ms", 0, "",
				 MRI_SUBSCRIBE_BACKOFF_INITIAL_MAX,
				 MRI_SUB_BACKOFF_INITIAL, &out->has,
				 &out->backoff_initial_ms, why,
				 why_size)) != MR_OK ||
	    (rc = subscribe__int(o, "retry", "backoff_max_ms", 0, "",
				 MRI_SUBSCRIBE_BACKOFF_MAX_MAX,
				 MRI_SUB_BACKOFF_MAX, &out->has,
				 &out->backoff_max_ms, why,
				 why_size)) != MR_OK ||
	    (rc = subscribe__num(o, "retry", "backoff_multiplier", 1,
				 MRI_SUBSCRIBE_MULTIPLIER_MAX,
				 MRI_SUB_BACKOFF_MULTIPLIER, &out->has,
				 &out->backoff_multiplier, why,
				 why_size)) != MR_OK ||
	    (rc = subscribe__num(o, "retry", "backoff_jitter", 0, 1,
				 MRI_SUB_BACKOFF_JITTER, &out->has,
				 &out->backoff_jitter, why, why_size)) != MR_OK)
		return rc;
	out->max_attempts = (uint32_t)n;
	if ((out->has & MRI_SUB_BACKOFF_INITIAL) &&
	    (out->has & MRI_SUB_BACKOFF_MAX) &&
	    out->backoff_max_ms < out->backoff_initial_ms) {
		snprintf(why, why_size, "\"retry.backoff_max_ms\" (%llu) is "
			 "below \"retry.backoff_initial_ms\" (%llu)",
			 (unsigned long long)out->backoff_max_ms,
			 (unsigned long long)out->backoff_initial_ms);
		return MR_EINVAL;
	}
	return MR_OK;
}

/* "dead_letter": the members given into \p out, whose topics are parsed. */
static int
subscribe__dead_letter(json_t *root, struct mri_subscribe *out, char *why,
		       size_t why_size)
{
	json_t  *o, *t;
	uint64_t n = 0;
	int      rc;

	if ((rc = subscribe__object(root, "dead_letter",
				    subscribe__dlq_members, &o, why,
				    why_size)) != MR_OK ||
	    o == NULL)
		return rc;
	if ((t = json_object_get(o, "topic")) != NULL) {
		if (!json_is_string(t) ||
		    !mri_topic_valid(json_string_value(t),
				     json_string_length(t))) {
			snprintf(why, why_size, "\"dead_letter.topic\" is a "
				 "topic name: " MRI_TOPIC_RULE);
			return MR_EINVAL;
		}
		out->dlq_topic = json_string_value(t);
		for (size_t i = 0; i < out->ntopics; i++)
			if (strcmp(out->topics[i], out->dlq_topic) == 0) {
				snprintf(why, why_size, "\"dead_letter.topic\" "
					 "%s is a topic of the subscription: "
					 "its dead letters would come back to "
					 "it", out->dlq_topic);
				return MR_EINVAL;
			}
	}
	if ((rc = subscribe__int(o, "dead_letter", "breaker_max", 0,
				 " (no breaker)", MRI_SUBSCRIBE_BREAKER_MAX,
				 MRI_SUB_BREAKER_MAX, &out->has, &n, why,
				 why_size)) != MR_OK ||
	    (rc = subscribe__int(o, "dead_letter", "breaker_period_ms", 1, "",
				 MRI_SUBSCRIBE_BREAKER_MS_MAX,
				 MRI_SUB_BREAKER_PERIOD, &out->has,
				 &out->breaker_period_ms, why,
				 why_size)) != MR_OK ||
	    (rc = subscribe__int(o, "dead_letter", "breaker_cooldown_ms", 1, "",
				 MRI_SUBSCRIBE_BREAKER_MS_MAX,
				 MRI_SUB_BREAKER_COOLDOWN, &out->has,
				 &out->breaker_cooldown_ms, why,
				 why_size)) != MR_OK)
		return rc;
	out->breaker_max = (uint32_t)n;
	return MR_OK;
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
	int          rc;

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
	if ((v = json_object_get(*root, "exclusive")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(why, why_size, "\"exclusive\" is true or "
				 "false");
			return MR_EINVAL;
		}
		out->exclusive = json_is_true(v);
	}
	if ((v = json_object_get(*root, "start")) != NULL) {
		const char *at = json_string_value(v);

		if (at == NULL || (strcmp(at, "earliest") != 0 &&
				   strcmp(at, "latest") != 0)) {
			snprintf(why, why_size, "\"start\" is earliest or "
				 "latest");
			return MR_EINVAL;
		}
		out->start_latest = strcmp(at, "latest") == 0;
	}
	if ((v = json_object_get(*root, "journal")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(why, why_size, "\"journal\" is true or "
				 "false");
			return MR_EINVAL;
		}
		out->no_journal = json_is_false(v);
	}
	if ((rc = subscribe__retry(*root, out, why, why_size)) != MR_OK)
		return rc;
	return subscribe__dead_letter(*root, out, why, why_size);
}
