/*
 * dlq.list and dlq.show (broker/admin_dlq.h): the request's fields read
 * into dlq/inspect.h's filter and bounds, its answer written as JSON, bytes
 * as text where they are UTF-8 with no control character (but tab, LF,
 * CR), else base64.
 */
#include "admin_dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/envelope.h"
#include "core/base64.h"
#include "dlq/inspect.h"
#include "dlq/state.h"
#include "mailroom/error.h"
#include "proto/frame.h"

/* ---- bytes as JSON ------------------------------------------------------ */

void
mri_admin_json_bytes(json_t *o, const char *name, const void *p, size_t len)
{
	char  enc[64];
	char *b;

	snprintf(enc, sizeof(enc), "%s_encoding", name);
	if (p == NULL) {
		json_object_set_new(o, name, json_null());
		return;
	}
	if (mri_dlq_is_text(p, len)) {
		json_object_set_new(o, name, json_stringn(len ? p : "", len));
		json_object_set_new(o, enc, json_string("text"));
	} else if ((b = mri_base64_encode(p, len)) != NULL) {
		json_object_set_new(o, name, json_string(b));
		json_object_set_new(o, enc, json_string("base64"));
		free(b);
	}
}

/* Text to read (names, reasons): bytes that are not UTF-8 become U+FFFD;
 * NULL \p p: null. */
static json_t *
admin_dlq__text(const char *p, size_t len)
{
	char   *b;
	size_t  k = 0, m;
	json_t *j;

	if (p == NULL)
		return json_null();
	if ((b = malloc(len * 3 + 1)) == NULL)
		return json_null();
	for (size_t i = 0; i < len; i += m) {
		if ((m = mri_dlq_utf8_seq(p + i, len - i)) == 0 || p[i] == 0) {
			memcpy(b + k, "\xef\xbf\xbd", 3);
			k += 3;
			m = 1;
			continue;
		}
		memcpy(b + k, p + i, m);
		k += m;
	}
	j = json_stringn(b, k);
	free(b);
	return j != NULL ? j : json_null();
}

json_t *
mri_admin_json_headers(const struct mri_hdr_view *hdrs, size_t n)
{
	json_t *hs = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "name", admin_dlq__text(hdrs[i].name,
							       hdrs[i].name_len));
		mri_admin_json_bytes(o, "value", hdrs[i].value,
				     hdrs[i].value_len);
		json_array_append_new(hs, o);
	}
	return hs;
}

static json_t *
admin_dlq__str(struct mri_dlq_str s)
{
	return admin_dlq__text(s.p, s.len);
}

static json_t *
admin_dlq__time(int64_t ms)
{
	char b[MRI_TIME_STRLEN + 1];

	if (ms < 0)
		return json_null();
	mri_time_fmt(ms, b);
	return json_string(b);
}

static json_t *
admin_dlq__fp(uint64_t fp)
{
	char b[MRI_DLQ_FP_STRLEN + 1];

	mri_dlq_fingerprint_fmt(fp, b);
	return json_string(b);
}

static json_t *
admin_dlq__pos(int32_t p, int64_t o)
{
	return json_pack("{s:i, s:I}", "partition", (int)p, "offset",
			 (json_int_t)o);
}

/* ---- requests ------------------------------------------------------------ */

const char *
mri_admin_dlq_topic(json_t *req)
{
	const char *t = json_string_value(json_object_get(req, "topic"));

	return t != NULL && mri_topic_valid(t, strlen(t)) ? t : NULL;
}

bool
mri_admin_dlq_int(json_t *req, const char *name, json_int_t lo,
		  json_int_t hi, json_int_t *v)
{
	json_t *j = json_object_get(req, name);

	if (j == NULL || json_is_null(j))
		return true;
	if (!json_is_integer(j) || json_integer_value(j) < lo ||
	    json_integer_value(j) > hi)
		return false;
	*v = json_integer_value(j);
	return true;
}

/* An optional string field: true and *v (NULL when absent), false when it
 * is there and not a non-empty string. */
static bool
admin_dlq__string(json_t *req, const char *name, const char **v)
{
	json_t *j = json_object_get(req, name);

	*v = NULL;
	if (j == NULL || json_is_null(j))
		return true;
	*v = json_string_value(j);
	return *v != NULL && **v != '\0';
}

bool
mri_admin_dlq_has_filter(json_t *req)
{
	static const char *const names[] = {
	    "source", "group", "since_ms", "until_ms", "fingerprint",
	    "dialect", "key", "key_b64"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (json_object_get(req, names[i]) != NULL &&
		    !json_is_null(json_object_get(req, names[i])))
			return true;
	return false;
}

json_t *
mri_admin_dlq_filter(json_t *req, struct mri_dlq_filter *f,
		     unsigned char **key)
{
	const char *fp, *dialect, *k, *kb;
	json_int_t  since = -1, until = -1;
	char        why[256];

	mri_dlq_filter_init(f);
	*key = NULL;
	if (!admin_dlq__string(req, "source", &f->topic) ||
	    !admin_dlq__string(req, "group", &f->group))
		return mri_admin_fail(MR_EINVAL,
				      "\"source\" and \"group\" are non-empty "
				      "strings");
	if (!mri_admin_dlq_int(req, "since_ms", 0, INT64_MAX, &since) ||
	    !mri_admin_dlq_int(req, "until_ms", 0, INT64_MAX, &until))
		return mri_admin_fail(MR_EINVAL,
				      "\"since_ms\" and \"until_ms\" are ms "
				      "since the epoch (integers >= 0)");
	f->since_ms = since;
	f->until_ms = until;
	if (!admin_dlq__string(req, "fingerprint", &fp) ||
	    (fp != NULL && mri_dlq_fingerprint_parse(fp, strlen(fp),
						     &f->fingerprint) != MR_OK))
		return mri_admin_fail(MR_EINVAL,
				      "\"fingerprint\" is 16 hex digits, as "
				      "mr_dlq_fingerprint (e.g. "
				      "62dbcc580fce368a)");
	f->has_fingerprint = fp != NULL;
	if (!admin_dlq__string(req, "dialect", &dialect) ||
	    (dialect != NULL &&
	     mri_dlq_dialect_parse(dialect, &f->dialect) != MR_OK))
		return mri_admin_fail(MR_EINVAL,
				      "\"dialect\" is mailroom, spring, "
				      "connect or unknown");
	f->has_dialect = dialect != NULL;
	k  = json_string_value(json_object_get(req, "key"));
	kb = json_string_value(json_object_get(req, "key_b64"));
	if ((json_object_get(req, "key") != NULL && k == NULL) ||
	    (json_object_get(req, "key_b64") != NULL && kb == NULL) ||
	    (k != NULL && kb != NULL))
		return mri_admin_fail(MR_EINVAL,
				      "the key is \"key\" (text) or "
				      "\"key_b64\" (base64), one of them");
	if (kb != NULL && (*key = mri_base64_decode(kb, &f->key_len)) == NULL)
		return mri_admin_fail(MR_EINVAL, "\"key_b64\" is not base64");
	if (k != NULL || kb != NULL) {
		f->has_key = true;
		f->key     = k != NULL ? (const void *)k : *key;
		f->key_len = k != NULL ? strlen(k) : f->key_len;
	}
	if (mri_dlq_filter_check(f, why, sizeof(why)) != MR_OK)
		return mri_admin_fail(MR_EINVAL, "%s", why);
	return NULL;
}

/* ---- dlq.list ------------------------------------------------------------ */

static json_t *
admin_dlq__names(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, admin_dlq__text(v[i], strlen(v[i])));
	return a;
}

static json_t *
admin_dlq__group(const struct mri_dlq_group *g)
{
	json_t *o = json_object(), *d = json_array();

	for (int k = MRI_DLQ_UNKNOWN; k <= MRI_DLQ_CONNECT; k++)
		if (g->dialects & 1u << k)
			json_array_append_new(
			    d, json_string(mri_dlq_dialect_name(
				   (enum mri_dlq_dialect)k)));
	json_object_set_new(o, "fingerprint", admin_dlq__fp(g->fingerprint));
	json_object_set_new(o, "count", json_integer((json_int_t)g->count));
	json_object_set_new(o, "first_seen", admin_dlq__time(g->first_ms));
	json_object_set_new(o, "last_seen", admin_dlq__time(g->last_ms));
	json_object_set_new(o, "first_seen_ms", json_integer(g->first_ms));
	json_object_set_new(o, "last_seen_ms", json_integer(g->last_ms));
	json_object_set_new(o, "reason",
			    admin_dlq__text(g->reason, g->reason_len));
	json_object_set_new(o, "sources",
			    admin_dlq__names(g->sources, g->nsources));
	json_object_set_new(o, "sources_more", json_boolean(g->more_sources));
	json_object_set_new(o, "groups",
			    admin_dlq__names(g->groups, g->ngroups));
	json_object_set_new(o, "groups_more", json_boolean(g->more_groups));
	json_object_set_new(o, "dialects", d);
	json_object_set_new(o, "first",
			    admin_dlq__pos(g->first_partition, g->first_offset));
	json_object_set_new(o, "last",
			    admin_dlq__pos(g->last_partition, g->last_offset));
	return o;
}

/* The list's skip hook: positions with a state (replayed, resolved) are
 * left out, or, with "all", counted and kept. */
struct admin_dlq_skip {
	struct mri_dlq_state *st;
	bool                  all;
	uint64_t              n[4]; /* by enum mri_dlq_st */
};

static bool
admin_dlq__skip(void *arg, int32_t partition, int64_t offset)
{
	struct admin_dlq_skip *k  = arg;
	enum mri_dlq_st        st = mri_dlq_state_get(k->st, partition, offset);

	k->n[st]++;
	// An intent ("replaying") is not known to be replayed: listed.
	return (st == MRI_DLQ_ST_REPLAYED || st == MRI_DLQ_ST_RESOLVED) &&
	       !k->all;
}

static json_t *
admin_dlq__list(const struct mri_admin_dlq_ctx *c, json_t *req)
{
	const rd_kafka_conf_t *tmpl       = c->tmpl;
	int                    timeout_ms = c->timeout_ms;
	struct admin_dlq_skip  sk         = {0};
	const char           *topic = mri_admin_dlq_topic(req);
	struct mri_dlq_filter f;
	struct mri_dlq_bounds b  = {0};
	json_int_t            mr = MRI_DLQ_LIST_RECORDS, mg = MRI_DLQ_LIST_GROUPS;
	json_int_t            to = timeout_ms;
	struct mri_dlq_kafka *k;
	struct mri_dlq_source src;
	struct mri_dlq_list  *l;
	unsigned char        *key;
	json_t               *rep, *gs;
	char                  why[512];
	int32_t               parts;
	int                   rc;

	if (topic == NULL)
		return mri_admin_fail(MR_EINVAL,
				      "dlq.list needs \"topic\": the "
				      "dead-letter topic (e.g. orders.dlq)");
	if (!mri_admin_dlq_int(req, "max_records", 1, 100000000, &mr) ||
	    !mri_admin_dlq_int(req, "max_groups", 1, 100000, &mg) ||
	    !mri_admin_dlq_int(req, "timeout_ms", 1, MRI_ADMIN_DLQ_TIMEOUT_MAX,
			    &to))
		return mri_admin_fail(MR_EINVAL,
				      "max_records is 1..100000000, "
				      "max_groups 1..100000, timeout_ms "
				      "1..%d",
				      MRI_ADMIN_DLQ_TIMEOUT_MAX);
	if ((rep = mri_admin_dlq_filter(req, &f, &key)) != NULL)
		return rep;
	sk.all = json_is_true(json_object_get(req, "all"));
	rc     = mri_admin_dlq_state(c, topic, (int)to, &sk.st, why,
				     sizeof(why));
	if (rc != MR_OK) {
		free(key);
		return mri_admin_fail(rc, "%s", why);
	}
	f.skip        = admin_dlq__skip;
	f.skip_arg    = &sk;
	b.max_records = (uint64_t)mr;
	b.max_groups  = (size_t)mg;
	rc = mri_dlq_kafka_open(&k, tmpl, topic, -1, 0, (int)to, why,
				sizeof(why));
	if (rc != MR_OK) {
		free(key);
		mri_dlq_state_free(sk.st);
		return mri_admin_fail(rc, "%s", why);
	}
	parts = mri_dlq_kafka_partitions(k);
	mri_dlq_kafka_source(k, &src);
	rc = mri_dlq_list_run(&src, &f, &b, &l, why, sizeof(why));
	mri_dlq_kafka_close(k);
	free(key);
	mri_dlq_state_free(sk.st);
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	gs = json_array();
	for (size_t i = 0; i < l->ngroups; i++)
		json_array_append_new(gs, admin_dlq__group(&l->groups[i]));
	rep = json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:b, s:s, s:I, s:o}",
			"ok", 1, "topic", topic, "partitions", (int)parts,
			"scanned", (json_int_t)l->scanned, "matched",
			(json_int_t)l->matched, "duplicates",
			(json_int_t)l->duplicates, "complete",
			l->cut == MRI_DLQ_CUT_NONE, "cut",
			mri_dlq_cut_name(l->cut), "groups_total",
			(json_int_t)l->groups_total, "groups", gs);
	mri_dlq_list_free(l);
	if (rep == NULL)
		return mri_admin_fail(MR_ENOMEM, "out of memory");
	json_object_set_new(rep, "all", json_boolean(sk.all));
	json_object_set_new(
	    rep, "states",
	    json_pack("{s:I, s:I}", "replayed",
		      (json_int_t)sk.n[MRI_DLQ_ST_REPLAYED], "resolved",
		      (json_int_t)sk.n[MRI_DLQ_ST_RESOLVED]));
	return rep;
}

/* ---- dlq.show ------------------------------------------------------------ */

static void
admin_dlq__set_str(json_t *o, const char *name, struct mri_dlq_str s)
{
	if (s.p != NULL)
		json_object_set_new(o, name, admin_dlq__str(s));
}

static json_t *
admin_dlq__info(const struct mri_dlq_info *in)
{
	json_t *o = json_object();

	json_object_set_new(o, "dialect",
			    json_string(mri_dlq_dialect_name(in->dialect)));
	json_object_set_new(o, "topic", admin_dlq__str(in->topic));
	json_object_set_new(o, "partition",
			    in->partition >= 0 ? json_integer(in->partition)
					       : json_null());
	json_object_set_new(o, "offset", in->offset >= 0
					     ? json_integer(in->offset)
					     : json_null());
	json_object_set_new(o, "group", admin_dlq__str(in->group));
	json_object_set_new(o, "attempts",
			    in->attempts > 0 ? json_integer(in->attempts)
					     : json_null());
	json_object_set_new(o, "first_failure",
			    admin_dlq__time(in->first_failure_ms));
	json_object_set_new(o, "last_failure",
			    admin_dlq__time(in->last_failure_ms));
	json_object_set_new(o, "quarantined", admin_dlq__time(in->time_ms));
	json_object_set_new(o, "reason",
			    admin_dlq__text(in->reason, in->reason_len));
	json_object_set_new(o, "fingerprint", admin_dlq__fp(in->fingerprint));
	json_object_set_new(o, "replays", json_integer(in->replays));
	if (in->dropped_headers > 0)
		json_object_set_new(o, "dropped_headers",
				    json_integer(in->dropped_headers));
	if (in->orig_time_ms >= 0)
		json_object_set_new(o, "original_time",
				    admin_dlq__time(in->orig_time_ms));
	admin_dlq__set_str(o, "exception", in->exception);
	admin_dlq__set_str(o, "message", in->message);
	admin_dlq__set_str(o, "cause", in->cause);
	admin_dlq__set_str(o, "stacktrace", in->stacktrace);
	if (in->task_id >= 0)
		json_object_set_new(o, "task_id", json_integer(in->task_id));
	admin_dlq__set_str(o, "stage", in->stage);
	admin_dlq__set_str(o, "class", in->executing_class);
	return o;
}

static json_t *
admin_dlq__show(const struct mri_admin_dlq_ctx *c, json_t *req)
{
	const rd_kafka_conf_t *tmpl       = c->tmpl;
	int                    timeout_ms = c->timeout_ms;
	const char           *topic = mri_admin_dlq_topic(req);
	json_int_t            p = -1, off = -1, to = timeout_ms;
	struct mri_dlq_shown *s;
	json_t               *rep;
	char                  why[512];
	int                   rc;

	if (topic == NULL)
		return mri_admin_fail(MR_EINVAL,
				      "dlq.show needs \"topic\": the "
				      "dead-letter topic (e.g. orders.dlq)");
	if (!mri_admin_dlq_int(req, "partition", 0, INT32_MAX, &p) ||
	    !mri_admin_dlq_int(req, "offset", 0, INT64_MAX, &off) || p < 0 ||
	    off < 0)
		return mri_admin_fail(MR_EINVAL,
				      "dlq.show needs \"partition\" and "
				      "\"offset\" (integers >= 0)");
	if (!mri_admin_dlq_int(req, "timeout_ms", 1, MRI_ADMIN_DLQ_TIMEOUT_MAX,
			    &to))
		return mri_admin_fail(MR_EINVAL, "timeout_ms is 1..%d",
				      MRI_ADMIN_DLQ_TIMEOUT_MAX);
	rc = mri_dlq_kafka_show(tmpl, topic, (int32_t)p, off, (int)to, &s, why,
				sizeof(why));
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	rep = json_pack("{s:b, s:s, s:i, s:I}", "ok", 1, "topic", topic,
			"partition", (int)s->rec.partition, "offset",
			(json_int_t)s->rec.offset);
	json_object_set_new(rep, "timestamp_ms",
			    json_integer(s->rec.timestamp_ms));
	json_object_set_new(rep, "time", admin_dlq__time(s->time_ms));
	mri_admin_json_bytes(rep, "key", s->rec.has_key ? s->rec.key : NULL,
			     s->rec.key_len);
	mri_admin_json_bytes(rep, "payload", s->rec.value, s->rec.value_len);
	json_object_set_new(rep, "headers",
			    mri_admin_json_headers(s->rec.hdrs, s->rec.nhdrs));
	json_object_set_new(rep, "dead_letter", admin_dlq__info(&s->info));
	mri_dlq_shown_free(s);
	return rep;
}

json_t *
mri_admin_dlq(const struct mri_admin_dlq_ctx *c, const char *op, json_t *req)
{
	if (strcmp(op, "dlq.list") == 0)
		return admin_dlq__list(c, req);
	if (strcmp(op, "dlq.show") == 0)
		return admin_dlq__show(c, req);
	if (strcmp(op, "dlq.replay") == 0)
		return mri_admin_dlq_replay(c, req);
	if (strcmp(op, "dlq.purge") == 0)
		return mri_admin_dlq_purge(c, req);
	return mri_admin_fail(MR_EUNKNOWNOP, "unknown operation '%s'", op);
}
