/*
 * Bounds to and from JSON (ADMIN bounds.*, the config file's "bounds"),
 * and the gate's state as JSON (broker/backpressure.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/backpressure.h"
#include "mailroom/error.h"
#include "proto/address.h"
#include "proto/frame.h"

static const char *const bound__fields[] = {
    "topic",      "max_lag",  "resume_lag", "max_time_lag_ms",
    "resume_time_lag_ms", "policy", "block_ms", "groups",
};

/* An integer field: absent leaves *v; else 0..max. */
static int
bound__int(const json_t *obj, const char *name, long long max, int64_t *v,
	   bool *given, char *why, size_t why_size)
{
	json_t   *j = json_object_get(obj, name);
	long long x;

	*given = j != NULL;
	if (j == NULL)
		return MR_OK;
	if (!json_is_integer(j)) {
		snprintf(why, why_size, "%s must be an integer", name);
		return MR_EINVAL;
	}
	x = json_integer_value(j);
	if (x < 0 || x > max) {
		snprintf(why, why_size, "%s must be 0 to %lld, not %lld", name,
			 max, x);
		return MR_EINVAL;
	}
	*v = x;
	return MR_OK;
}

static int
bound__groups(struct mri_bound *b, const json_t *j, char *why,
	      size_t why_size)
{
	size_t  i;
	json_t *g;

	if (j == NULL)
		return MR_OK;
	if (!json_is_array(j) || json_array_size(j) > MRI_BP_GROUPS_MAX) {
		snprintf(why, why_size,
			 "groups must be an array of at most %d group names",
			 MRI_BP_GROUPS_MAX);
		return MR_EINVAL;
	}
	if (json_array_size(j) == 0)
		return MR_OK;
	if ((b->groups = calloc(json_array_size(j), sizeof(char *))) == NULL)
		return MR_ENOMEM;
	json_array_foreach (j, i, g) {
		const char *s = json_string_value(g);

		if (s == NULL || s[0] == '\0' || strlen(s) > 255) {
			snprintf(why, why_size,
				 "groups[%zu] must be a group name (1 to 255 "
				 "bytes)",
				 i);
			return MR_EINVAL;
		}
		for (size_t k = 0; k < b->ngroups; k++)
			if (strcmp(b->groups[k], s) == 0) {
				snprintf(why, why_size,
					 "groups names %s twice", s);
				return MR_EINVAL;
			}
		if ((b->groups[b->ngroups] = strdup(s)) == NULL)
			return MR_ENOMEM;
		b->ngroups++;
	}
	return MR_OK;
}

static int
bound__read(struct mri_bound *b, const char *topic, const json_t *obj,
	    char *why, size_t why_size)
{
	const char *k, *t, *pol;
	json_t     *v, *jt, *jp;
	bool        given_rl, given_rt, given;
	int64_t     block = MRI_BP_BLOCK_MS;
	int         rc;

	if (!json_is_object(obj)) {
		snprintf(why, why_size, "a bound must be a JSON object");
		return MR_EINVAL;
	}
	json_object_foreach ((json_t *)obj, k, v) {
		size_t i, n = sizeof(bound__fields) / sizeof(bound__fields[0]);

		for (i = 0; i < n; i++)
			if (strcmp(k, bound__fields[i]) == 0)
				break;
		if (i == n) {
			snprintf(why, why_size,
				 "unknown field %.64s (known: max_lag, "
				 "resume_lag, max_time_lag_ms, "
				 "resume_time_lag_ms, policy, block_ms, groups)",
				 k);
			return MR_EINVAL;
		}
	}
	jt = json_object_get(obj, "topic");
	if (jt != NULL && !json_is_string(jt)) {
		snprintf(why, why_size, "topic must be a string");
		return MR_EINVAL;
	}
	t = topic != NULL ? topic : json_string_value(jt);
	if (t == NULL) {
		snprintf(why, why_size, "a bound names its topic");
		return MR_EINVAL;
	}
	if (!mri_topic_valid(t, strlen(t))) {
		snprintf(why, why_size, "invalid topic '%.255s': a topic is %s",
			 t, MRI_TOPIC_RULE);
		return MR_EINVAL;
	}
	if ((b->topic = strdup(t)) == NULL)
		return MR_ENOMEM;
	if ((rc = bound__int(obj, "max_lag", INT64_MAX / 4, &b->max_lag,
			     &given, why, why_size)) != MR_OK ||
	    (rc = bound__int(obj, "resume_lag", INT64_MAX / 4, &b->resume_lag,
			     &given_rl, why, why_size)) != MR_OK ||
	    (rc = bound__int(obj, "max_time_lag_ms", 7LL * 24 * 3600 * 1000,
			     &b->max_time_ms, &given, why, why_size)) !=
		MR_OK ||
	    (rc = bound__int(obj, "resume_time_lag_ms", 7LL * 24 * 3600 * 1000,
			     &b->resume_time_ms, &given_rt, why, why_size)) !=
		MR_OK ||
	    (rc = bound__int(obj, "block_ms", MRI_BP_BLOCK_MAX_MS, &block,
			     &given, why, why_size)) != MR_OK)
		return rc;
	b->block_ms = (uint32_t)block;
	if (b->max_lag == 0 && b->max_time_ms == 0) {
		snprintf(why, why_size,
			 "a bound needs max_lag (records) or max_time_lag_ms "
			 "(or both) above 0");
		return MR_EINVAL;
	}
	if (!given_rl)
		b->resume_lag = b->max_lag / 2;
	if (!given_rt)
		b->resume_time_ms = b->max_time_ms / 2;
	if (b->max_lag > 0 && b->resume_lag >= b->max_lag) {
		snprintf(why, why_size,
			 "resume_lag (%lld) must be below max_lag (%lld)",
			 (long long)b->resume_lag, (long long)b->max_lag);
		return MR_EINVAL;
	}
	if (b->max_time_ms > 0 && b->resume_time_ms >= b->max_time_ms) {
		snprintf(why, why_size,
			 "resume_time_lag_ms (%lld) must be below "
			 "max_time_lag_ms (%lld)",
			 (long long)b->resume_time_ms,
			 (long long)b->max_time_ms);
		return MR_EINVAL;
	}
	// A low mark without its high mark: refused, but for 0 (what
	// mri_bound_to_json writes for a bound without it).
	if (b->max_lag == 0 && given_rl && b->resume_lag != 0) {
		snprintf(why, why_size, "resume_lag needs max_lag");
		return MR_EINVAL;
	}
	if (b->max_time_ms == 0 && given_rt && b->resume_time_ms != 0) {
		snprintf(why, why_size,
			 "resume_time_lag_ms needs max_time_lag_ms");
		return MR_EINVAL;
	}
	jp  = json_object_get(obj, "policy");
	pol = jp != NULL ? json_string_value(jp) : "hold";
	if (pol != NULL && strcmp(pol, "hold") == 0) {
		b->policy = MRI_BP_HOLD;
	} else if (pol != NULL && strcmp(pol, "reject") == 0) {
		b->policy = MRI_BP_REJECT;
	} else {
		snprintf(why, why_size, "policy must be \"hold\" or \"reject\"");
		return MR_EINVAL;
	}
	if (b->policy == MRI_BP_HOLD && b->block_ms == 0) {
		snprintf(why, why_size,
			 "block_ms must be above 0 with policy hold");
		return MR_EINVAL;
	}
	return bound__groups(b, json_object_get(obj, "groups"), why,
			     why_size);
}

int
mri_bound_from_json(struct mri_bound *out, const char *topic,
		    const json_t *obj, char *why, size_t why_size)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = bound__read(out, topic, obj, why, why_size)) != MR_OK) {
		if (rc == MR_ENOMEM)
			snprintf(why, why_size, "out of memory");
		mri_bound_fini(out);
	}
	return rc;
}

json_t *
mri_bound_to_json(const struct mri_bound *b)
{
	json_t *o = json_object(), *g = json_array();

	for (size_t i = 0; i < b->ngroups; i++)
		json_array_append_new(g, json_string(b->groups[i]));
	json_object_set_new(o, "topic", json_string(b->topic));
	json_object_set_new(o, "max_lag", json_integer(b->max_lag));
	json_object_set_new(o, "resume_lag", json_integer(b->resume_lag));
	json_object_set_new(o, "max_time_lag_ms",
			    json_integer(b->max_time_ms));
	json_object_set_new(o, "resume_time_lag_ms",
			    json_integer(b->resume_time_ms));
	json_object_set_new(o, "policy",
			    json_string(mri_bp_policy_name(b->policy)));
	json_object_set_new(o, "block_ms", json_integer(b->block_ms));
	json_object_set_new(o, "groups", g);
	return o;
}
