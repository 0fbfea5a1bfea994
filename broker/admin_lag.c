#include "admin_lag.h"
#include "admin_dlq.h"

#include <string.h>

#include "broker/backpressure.h"
#include "consumers/lag.h"
#include "core/clock.h"
#include "mailroom/error.h"
#include "proto/frame.h"

/* An offset, or null when unknown (-1). */
static json_t *
admin__offset(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static json_t *
admin__lag_row(const struct mri_lag_row *r, int64_t now)
{
	return json_pack(
	    "{s:s, s:s, s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "group",
	    r->group, "topic", r->topic, "partition", (int)r->partition,
	    "state", mri_lag_state_name(r->state), "end", admin__offset(r->end),
	    "start", admin__offset(r->start), "committed",
	    admin__offset(r->committed), "lag", admin__offset(r->lag),
	    "time_lag_ms", admin__offset(r->time_lag_ms), "updated_ms",
	    (json_int_t)r->updated_ms, "age_ms",
	    (json_int_t)(now > r->updated_ms ? now - r->updated_ms : 0));
}

static bool
admin__lag_match(const char *want, const char *have)
{
	return want == NULL || strcmp(want, have) == 0;
}

/* lag.list {"group"?, "topic"?, "refresh"?, "timeout_ms"?}. */
/* A row's bound and throttle state (null, null when its topic has none). */
static void
admin__lag_bound(json_t *o, struct mri_bp *bp, const struct mri_lag_row *r)
{
	struct mri_bp_part_state st;

	if (bp == NULL || mri_bp_state(bp, r->topic, r->partition, &st) != MR_OK) {
		json_object_set_new(o, "bound", json_null());
		json_object_set_new(o, "throttle", json_null());
		return;
	}
	json_object_set_new(o, "bound",
			    json_pack("{s:I, s:I, s:s}", "max_lag",
				      (json_int_t)st.max_lag, "max_time_lag_ms",
				      (json_int_t)st.max_time_ms, "policy",
				      mri_bp_policy_name(st.policy)));
	json_object_set_new(o, "throttle",
			    json_string(!st.throttled ? "open"
					: st.policy == MRI_BP_HOLD ? "holding"
								   : "refusing"));
}

static json_t *
admin__lag_list(struct mri_lag *lag, struct mri_bp *bp, json_t *req)
{
	json_t     *jg = json_object_get(req, "group");
	json_t     *jt = json_object_get(req, "topic");
	json_t     *jr = json_object_get(req, "refresh");
	json_t     *jto = json_object_get(req, "timeout_ms");
	const char *group = json_string_value(jg);
	const char *topic = json_string_value(jt);
	json_int_t  timeout = MRI_ADMIN_LAG_TIMEOUT;
	const struct mri_lag_snapshot *s;
	json_t     *rows, *groups, *rep;
	int64_t     now = mri_wall_ms();
	char        why[256];
	int         rc;

	if (jg != NULL && (group == NULL || *group == '\0'))
		return mri_admin_fail(MR_EINVAL,
				      "\"group\" is a non-empty string");
	if (jt != NULL &&
	    (topic == NULL || !mri_topic_valid(topic, strlen(topic))))
		return mri_admin_fail(MR_EINVAL,
				      "\"topic\" is a valid topic name (1-249 "
				      "of [a-zA-Z0-9._-])");
	if (jr != NULL && !json_is_boolean(jr))
		return mri_admin_fail(MR_EINVAL, "\"refresh\" is true or false");
	if (jto != NULL) {
		timeout = json_integer_value(jto);
		if (!json_is_integer(jto) || timeout < 1 ||
		    timeout > MRI_ADMIN_LAG_TIMEOUT_MAX)
			return mri_admin_fail(MR_EINVAL,
					      "\"timeout_ms\" is 1..%d",
					      MRI_ADMIN_LAG_TIMEOUT_MAX);
	}
	rc = mri_lag_ask(lag, group, topic, json_is_true(jr), (int)timeout, &s,
			 why, sizeof(why));
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	rows   = json_array();
	groups = json_array();
	for (size_t i = 0; i < s->ngroups; i++) {
		const struct mri_lag_group *g = &s->groups[i];
		json_t                     *o;

		if (!admin__lag_match(group, g->group))
			continue;
		o = json_pack("{s:s, s:b, s:s}", "group", g->group, "served",
			      g->served, "state",
			      mri_lag_group_state_name(g->state));
		if (g->error != NULL)
			json_object_set_new(o, "error", json_string(g->error));
		json_array_append_new(groups, o);
	}
	for (size_t i = 0; i < s->nrows; i++)
		if (admin__lag_match(group, s->rows[i].group) &&
		    admin__lag_match(topic, s->rows[i].topic))
		{
			json_t *o = admin__lag_row(&s->rows[i], now);

			admin__lag_bound(o, bp, &s->rows[i]);
			json_array_append_new(rows, o);
		}
	rep = json_pack("{s:b, s:i, s:I, s:o, s:o}", "ok", 1,
				"interval_ms", (int)mri_lag_interval(lag),
				"refreshed_ms", (json_int_t)s->taken_ms,
				"groups", groups, "partitions", rows);
	mri_lag_snapshot_rele(s);
	return rep;
}

json_t *
mri_admin_lag(struct mri_lag *lag, struct mri_bp *bp, const char *op,
	      json_t *req)
{
	if (strcmp(op, "lag.list") != 0)
		return mri_admin_fail(MR_EUNKNOWNOP, "unknown operation '%s'",
				      op);
	if (lag == NULL)
		return mri_admin_fail(MR_ENOTSUP,
				      "this mailroomd runs no lag monitor");
	return admin__lag_list(lag, bp, req);
}
