/*
 * bounds.list, bounds.set, bounds.clear (broker/admin_bounds.h).
 */
#include <string.h>

#include "admin_bounds.h"
#include "admin_dlq.h"
#include "admin_lag.h"
#include "broker/backpressure.h"
#include "consumers/lag.h"
#include "mailroom/error.h"
#include "proto/frame.h"

/* Whether \p group consumes \p topic as far as \p s knows: served here,
 * or with a committed offset on one of its partitions. */
static bool
admin__group_known(const struct mri_lag_snapshot *s, const char *group,
		   const char *topic)
{
	for (size_t i = 0; i < s->ngroups; i++)
		if (strcmp(s->groups[i].group, group) == 0 &&
		    s->groups[i].served)
			return true;
	for (size_t i = 0; i < s->nrows; i++)
		if (strcmp(s->rows[i].group, group) == 0 &&
		    strcmp(s->rows[i].topic, topic) == 0 &&
		    s->rows[i].committed >= 0)
			return true;
	return false;
}

/* The topic exists, and so does each group named. */
static json_t *
admin__bounds_check(struct mri_lag *lag, const struct mri_bound *b)
{
	const struct mri_lag_snapshot *s;
	char                           why[256];
	int                            rc;

	rc = mri_lag_ask(lag, NULL, b->topic, false, MRI_ADMIN_LAG_TIMEOUT, &s,
			 why, sizeof(why));
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	mri_lag_snapshot_rele(s);
	for (size_t i = 0; i < b->ngroups; i++) {
		bool known;

		rc = mri_lag_ask(lag, b->groups[i], b->topic, true,
				 MRI_ADMIN_LAG_TIMEOUT, &s, why, sizeof(why));
		if (rc != MR_OK)
			return mri_admin_fail(rc, "group %s: %s", b->groups[i],
					      why);
		known = admin__group_known(s, b->groups[i], b->topic);
		mri_lag_snapshot_rele(s);
		if (!known)
			return mri_admin_fail(
			    MR_ENOENT,
			    "group %s has no committed offset on %s and is "
			    "not served by this mailroomd: name a group that "
			    "consumes %s (mailroom lag --group %s shows what "
			    "Kafka knows of it)",
			    b->groups[i], b->topic, b->topic, b->groups[i]);
	}
	return NULL;
}

static json_t *
admin__bounds_set(struct mri_lag *lag, struct mri_bp *bp, json_t *req)
{
	json_t          *obj = json_copy(req), *rep;
	struct mri_bound b;
	char             why[256];
	int              rc;

	if (obj == NULL)
		return mri_admin_fail(MR_ENOMEM, "out of memory");
	json_object_del(obj, "op");
	rc = mri_bound_from_json(&b, NULL, obj, why, sizeof(why));
	json_decref(obj);
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s; the bounds are unchanged", why);
	if ((rep = admin__bounds_check(lag, &b)) != NULL) {
		mri_bound_fini(&b);
		return rep;
	}
	rep = json_pack("{s:b, s:o}", "ok", 1, "bound",
			mri_bound_to_json(&b));
	if ((rc = mri_bp_set(bp, &b)) != MR_OK) {
		mri_bound_fini(&b);
		json_decref(rep);
		return mri_admin_fail(rc, "out of memory");
	}
	return rep;
}

static json_t *
admin__bounds_topic(json_t *req, const char **topic, bool required)
{
	json_t *jt = json_object_get(req, "topic");

	*topic = json_string_value(jt);
	if ((jt != NULL || required) &&
	    (*topic == NULL || !mri_topic_valid(*topic, strlen(*topic))))
		return mri_admin_fail(MR_EINVAL,
				      "\"topic\" is a valid topic name (1-249 "
				      "of [a-zA-Z0-9._-])");
	return NULL;
}

json_t *
mri_admin_bounds(struct mri_lag *lag, struct mri_bp *bp, const char *op,
		 json_t *req)
{
	const char *topic;
	json_t     *err;

	if (lag == NULL || bp == NULL)
		return mri_admin_fail(MR_ENOTSUP,
				      "this mailroomd runs no lag monitor");
	if (strcmp(op, "bounds.set") == 0)
		return admin__bounds_set(lag, bp, req);
	if (strcmp(op, "bounds.list") == 0) {
		if ((err = admin__bounds_topic(req, &topic, false)) != NULL)
			return err;
		return json_pack("{s:b, s:o}", "ok", 1, "bounds",
				 mri_bp_list(bp, topic));
	}
	if (strcmp(op, "bounds.clear") == 0) {
		if ((err = admin__bounds_topic(req, &topic, true)) != NULL)
			return err;
		if (mri_bp_clear(bp, topic) != MR_OK)
			return mri_admin_fail(MR_ENOENT,
					      "%s has no bound to clear", topic);
		return json_pack("{s:b, s:s}", "ok", 1, "cleared", topic);
	}
	return mri_admin_fail(MR_EUNKNOWNOP, "unknown operation '%s'", op);
}
