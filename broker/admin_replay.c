/*
 * dlq.replay and dlq.purge (broker/admin_dlq.h).
 *
 * A call scans the state topic to its end, then the dead-letter topic to
 * the high watermarks found when it opened, and picks its records
 * (broker/admin_scan.h). Bad input is refused before anything is written:
 * positions not in the topic, a fingerprint that is nowhere in it, a
 * target topic that does not exist (never created here).
 *
 * Replay: for each record picked, an intent ("replaying", with its target
 * and replay id) is written to the state topic; then the record is
 * published raw through mailroomd's publisher to its target with its key,
 * payload and headers less the mr_dlq_* ones, mr_dlq_replays its count +
 * 1, ce_id (and the record's id in the dedupe window) mri_dlq_replay_id of
 * its id, spaced at "rate" per second when given; only once Kafka
 * confirmed it is its state "replayed" written. A call that finds an
 * intent without "replayed" (one that stopped: a crash, a failed write)
 * looks for its id in the intent's target first and, found, writes
 * "replayed" instead of publishing again (docs/ARCHITECTURE.md).
 *
 * Purge: a state record "resolved" for each record picked; then on real
 * Kafka, DeleteRecords frees each partition's prefix that is all replayed
 * or resolved.
 */
#include "admin_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/pace.h"
#include "dlq/record.h"
#include "mailroom/error.h"

/* ---- dlq.replay ------------------------------------------------------------ */

/* The id of dead-letter record \p s: its ce_id, else its original
 * position's ("topic/P/O", as a consumer names a record without one), else
 * its dead-letter position's. */
static size_t
replay__orig_id(const struct mri_dlq_shown *s, const char *topic, char *out,
		size_t n)
{
	const struct mri_dlq_info *in = &s->info;
	size_t                     len = 0;
	int                        k;

	for (size_t i = 0; i < s->rec.nhdrs; i++) {
		const struct mri_hdr_view *h = &s->rec.hdrs[i];

		if (h->name_len == 5 && memcmp(h->name, "ce_id", 5) == 0 &&
		    h->value_len > 0 && h->value_len < n) {
			memcpy(out, h->value, h->value_len);
			len = h->value_len;
		}
	}
	if (len > 0) {
		out[len] = '\0';
		return len;
	}
	if (in->topic.p != NULL && in->partition >= 0 && in->offset >= 0)
		k = snprintf(out, n, "%.*s/%ld/%lld", (int)in->topic.len,
			     in->topic.p, (long)in->partition,
			     (long long)in->offset);
	else
		k = snprintf(out, n, "%s/%ld/%lld", topic,
			     (long)s->rec.partition, (long long)s->rec.offset);
	return k > 0 && (size_t)k < n ? (size_t)k : n - 1;
}

/* A record on its way back. */
struct replay_out {
	struct mri_dlq_hdrs  h;
	struct mri_pub_rec   rec;
	struct mri_pub_batch b;
	char                 id[MRI_DLQ_ID_MAX + 1];
	uint32_t             replays;
	bool                 publish;   /* an intent was made for it */
	bool                 recovered; /* found published by one before */
	struct replay_st    *intent;
};

/* Set ce_id in \p h to \p id (every ce_id header; one added when there is
 * none and room for it). */
static void
replay__set_id(struct mri_dlq_hdrs *h, const char *id)
{
	bool set = false;

	for (uint16_t i = 0; i < h->n; i++)
		if (h->h[i].name_len == 5 &&
		    memcmp(h->h[i].name, "ce_id", 5) == 0) {
			h->h[i].value     = id;
			h->h[i].value_len = (uint32_t)strlen(id);
			set               = true;
		}
	if (!set && h->n < MRI_HDR_COUNT_MAX)
		h->h[h->n++] = (struct mri_hdr_view){
		    "ce_id", 5, id, (uint32_t)strlen(id)};
}

/* The targets exist? NULL, or a failure reply. */
static json_t *
replay__targets(const struct mri_admin_dlq_ctx *c, struct replay_scan *s)
{
	const char *last = NULL;
	char        why[256];
	bool        exists;
	int         rc;

	for (size_t i = 0; i < s->npicks; i++) {
		const char *t = s->picks[i].target;

		if (s->picks[i].copy_of >= 0 || s->picks[i].st != 0 ||
		    t == NULL || (last != NULL && strcmp(t, last) == 0))
			continue;
		if ((rc = replay__exists(c, t, &exists, NULL, why,
					 sizeof(why))) != MR_OK)
			return mri_admin_fail(rc, "%s", why);
		if (!exists)
			return mri_admin_fail(
			    MR_ENOENT,
			    "the replay target %s does not exist (replay never "
			    "creates it; create it, or give another with "
			    "\"target\"); nothing was done",
			    t);
		last = t;
	}
	return NULL;
}

/* The ce_id of \p r, or NULL. */
static const char *
replay__rec_id(const struct mri_dlq_rec *r, size_t *len)
{
	const char *id = NULL;

	for (size_t i = 0; i < r->nhdrs; i++)
		if (r->hdrs[i].name_len == 5 &&
		    memcmp(r->hdrs[i].name, "ce_id", 5) == 0) {
			id   = r->hdrs[i].value;
			*len = r->hdrs[i].value_len;
		}
	return id;
}

/* A replay that stopped between its intent and its state (a crash, a
 * failed state write) may have published: look in each intent's target,
 * from the records written since a minute before the earliest intent, for
 * the replay ids; the picks found get their position. */
static int
replay__verify(const struct mri_admin_dlq_ctx *c, struct replay_scan *s,
	       int timeout_ms, char *why, size_t n)
{
	for (size_t i = 0; i < s->npicks; i++) {
		const char                      *tg;
		int64_t                          at, *from;
		int32_t                          parts = 0;
		bool                             exists, end = false;
		rd_kafka_topic_partition_list_t *tl;
		struct mri_dlq_kafka            *k;
		struct mri_dlq_source            src;
		struct mri_dlq_rec               r;
		int                              rc;

		if (s->picks[i].intent == NULL || s->picks[i].found ||
		    s->picks[i].copy_of >= 0)
			continue;
		tg = s->picks[i].intent->target;
		at = s->picks[i].intent->at_ms;
		for (size_t j = i + 1; j < s->npicks; j++)
			if (s->picks[j].intent != NULL &&
			    strcmp(s->picks[j].intent->target, tg) == 0 &&
			    s->picks[j].intent->at_ms < at)
				at = s->picks[j].intent->at_ms;
		if ((rc = replay__exists(c, tg, &exists, &parts, why, n)) !=
		    MR_OK)
			return rc;
		if (!exists || parts <= 0)
			goto next;
		if ((from = calloc((size_t)parts, sizeof(*from))) == NULL)
			return MR_ENOMEM;
		tl = rd_kafka_topic_partition_list_new(parts);
		for (int32_t p = 0; p < parts; p++)
			rd_kafka_topic_partition_list_add(tl, tg, p)->offset =
			    at - 60000;
		if (rd_kafka_offsets_for_times(c->rk, tl, timeout_ms) ==
		    RD_KAFKA_RESP_ERR_NO_ERROR)
			for (int e = 0; e < tl->cnt; e++) {
				int32_t p = tl->elems[e].partition;

				if (p < 0 || p >= parts || tl->elems[e].err)
					continue;
				// -1 (no record since then, on Kafka; what
				// the mock cluster answers to any time):
				// the whole partition, to be sure.
				from[p] = tl->elems[e].offset >= 0
					      ? tl->elems[e].offset
					      : 0;
			}
		rd_kafka_topic_partition_list_destroy(tl);
		rc = mri_dlq_kafka_open_from(&k, c->tmpl, tg, from, parts,
					     timeout_ms, why, n);
		free(from);
		if (rc != MR_OK)
			return rc;
		mri_dlq_kafka_source(k, &src);
		while ((rc = src.next(src.arg, &r, &end, why, n)) == MR_OK &&
		       !end) {
			size_t      len = 0;
			const char *id  = replay__rec_id(&r, &len);

			for (size_t j = i; id != NULL && j < s->npicks; j++) {
				struct replay_pick *pk = &s->picks[j];

				if (pk->intent == NULL || pk->found ||
				    strcmp(pk->intent->target, tg) != 0 ||
				    strlen(pk->intent->replay_id) != len ||
				    memcmp(pk->intent->replay_id, id, len) != 0)
					continue;
				pk->found           = true;
				pk->found_partition = r.partition;
				pk->found_offset    = r.offset;
			}
		}
		mri_dlq_kafka_close(k);
		if (rc != MR_OK)
			return rc;
next:
		// Every intent of this target is settled: found or not.
		for (size_t j = i; j < s->npicks; j++)
			if (s->picks[j].intent != NULL && !s->picks[j].found &&
			    strcmp(s->picks[j].intent->target, tg) == 0)
				s->picks[j].intent = NULL;
	}
	return MR_OK;
}

static json_t *
replay__pos(int32_t p, int64_t o)
{
	return json_pack("{s:i, s:I}", "partition", (int)p, "offset",
			 (json_int_t)o);
}

json_t *
mri_admin_dlq_replay(const struct mri_admin_dlq_ctx *c, json_t *req)
{
	const char         *topic = mri_admin_dlq_topic(req);
	struct replay_scan  s     = {.replay = true};
	json_int_t          limit = MRI_DLQ_LOOP_LIMIT, rate = 0;
	struct replay_out  *out   = NULL;
	struct replay_st   *st    = NULL;
	struct replay_wait  w;
	json_t             *rep, *moved, *failed;
	bool                dry = json_is_true(json_object_get(req, "dry_run"));
	const char         *target;
	char                why[256];
	size_t              nst = 0, nmoved = 0, nfailed = 0, confirmed;
	int64_t             start;
	int32_t             parts = 0;
	bool                exists;
	int                 rc;

	if (topic == NULL)
		return mri_admin_fail(MR_EINVAL,
				      "dlq.replay needs \"topic\": the "
				      "dead-letter topic (e.g. orders.dlq)");
	if (c->pub == NULL)
		return mri_admin_fail(MR_ENOTSUP, "no publisher to replay with");
	if (!mri_admin_dlq_int(req, "loop_limit", 0, 1000000, &limit) ||
	    !mri_admin_dlq_int(req, "rate", 0, MRI_PACE_RATE_MAX, &rate))
		return mri_admin_fail(MR_EINVAL,
				      "loop_limit is 0..1000000, rate 0..%d "
				      "records per second (0: unpaced)",
				      MRI_PACE_RATE_MAX);
	target = json_string_value(json_object_get(req, "target"));
	if (json_object_get(req, "target") != NULL &&
	    (target == NULL || !mri_topic_valid(target, strlen(target))))
		return mri_admin_fail(MR_EINVAL,
				      "\"target\" is a topic name (1-249 of "
				      "[a-zA-Z0-9._-])");
	if (target != NULL) {
		if ((rc = replay__exists(c, target, &exists, NULL, why,
					 sizeof(why))) != MR_OK)
			return mri_admin_fail(rc, "%s", why);
		if (!exists)
			return mri_admin_fail(
			    MR_ENOENT,
			    "the replay target %s does not exist (replay never "
			    "creates it); nothing was done",
			    target);
	}
	s.target     = target;
	s.loop_limit = (uint32_t)limit;
	s.force      = json_is_true(json_object_get(req, "force"));
	if ((rep = replay__scan(c, req, topic, &s, &parts)) != NULL ||
	    (rep = replay__targets(c, &s)) != NULL) {
		replay__scan_free(&s);
		return rep;
	}
	moved  = json_array();
	failed = json_array();
	if (s.npicks > 0 &&
	    ((out = calloc(s.npicks, sizeof(*out))) == NULL ||
	     (st = calloc(s.npicks, sizeof(*st))) == NULL)) {
		free(out);
		replay__scan_free(&s);
		json_decref(moved);
		json_decref(failed);
		return mri_admin_fail(MR_ENOMEM, "out of memory");
	}
	// A replay that stopped may have published some: look first.
	if (!dry && (rc = replay__verify(c, &s, c->timeout_ms, why,
					 sizeof(why))) != MR_OK) {
		free(out);
		free(st);
		replay__scan_free(&s);
		json_decref(moved);
		json_decref(failed);
		return mri_admin_fail(rc, "looking for replays begun before: %s",
				      why);
	}
	// The ids, and the intents of what will be published, written first.
	for (size_t i = 0; i < s.npicks; i++) {
		struct replay_pick   *pk = &s.picks[i];
		struct replay_out    *o  = &out[i];
		struct mri_dlq_shown *d  = pk->s;
		char                  oid[MRI_DLQ_ID_MAX + 1];
		size_t                ol;
		struct mri_dlq_st_rec r = {
		    .st        = MRI_DLQ_ST_PENDING,
		    .at_ms     = mri_wall_ms(),
		    .target    = pk->target,
		    .partition = -1,
		    .offset    = -1,
		};

		o->rec.res.err = MR_ENOENT; // not published (a copy)
		if (pk->copy_of >= 0 || pk->st != MRI_DLQ_ST_NONE)
			continue;
		o->replays = d->info.replays + 1;
		ol         = replay__orig_id(d, topic, oid, sizeof(oid));
		mri_dlq_replay_id(o->id, oid, ol, o->replays);
		o->rec.res.err       = MR_OK;
		o->rec.res.partition = -1;
		o->rec.res.offset    = -1;
		if (dry)
			continue;
		if (pk->found) {
			o->recovered         = true;
			o->rec.res.partition = pk->found_partition;
			o->rec.res.offset    = pk->found_offset;
			continue;
		}
		o->publish  = true;
		r.replay_id = o->id;
		replay__st_set(&st[nst++], d->rec.partition, d->rec.offset, &r);
		o->intent = &st[nst - 1];
	}
	if (nst > 0)
		replay__state_write(c, topic, st, nst);
	// Publish, spaced at the rate.
	replay__wait_init(&w);
	start = (int64_t)mri_mono_ms();
	for (size_t i = 0, k = 0; i < s.npicks; i++) {
		struct replay_pick   *pk = &s.picks[i];
		struct replay_out    *o  = &out[i];
		struct mri_dlq_shown *d  = pk->s;
		int64_t               wait;

		if (!o->publish)
			continue;
		if (!o->intent->ok) {
			o->rec.res.err = MR_EUNAVAIL;
			o->rec.res.why = "its intent could not be written to "
					 "the state topic";
			continue;
		}
		if (mri_dlq_build_replay(&o->h, d->rec.hdrs, d->rec.nhdrs,
					 o->replays) != MR_OK) {
			o->rec.res.err = MR_EINVAL;
			o->rec.res.why = "its headers cannot be rebuilt";
			continue;
		}
		replay__set_id(&o->h, o->id);
		if (rate > 0 &&
		    (wait = mri_pace_wait_ms(start, (int64_t)mri_mono_ms(),
						 k, (uint32_t)rate)) > 0) {
			struct timespec ts = {wait / 1000,
					      (wait % 1000) * 1000000};

			nanosleep(&ts, NULL);
		}
		k++;
		mri_pub_rec_init(&o->rec);
		o->rec.topic     = pk->target;
		o->rec.key       = d->rec.key;
		o->rec.key_len   = d->rec.key_len;
		o->rec.has_key   = d->rec.has_key;
		o->rec.value     = d->rec.value;
		o->rec.value_len = d->rec.value_len;
		o->rec.hdrs      = o->h.h;
		o->rec.hdr_count = o->h.n;
		o->rec.raw       = true;
		o->rec.id        = o->id;
		o->rec.id_len    = (uint8_t)strlen(o->id);
		o->b.recs        = &o->rec;
		o->b.n           = 1;
		replay__submit(c->pub, &w, &o->b);
	}
	replay__wait_all(&w);
	for (size_t i = 0; i < nst; i++)
		free(st[i].value);
	nst = 0;
	// The state, only of what Kafka confirmed (copies with their first).
	for (size_t i = 0; i < s.npicks; i++) {
		struct replay_pick   *pk  = &s.picks[i];
		struct mri_dlq_shown *d   = pk->s;
		long                  src = pk->copy_of >= 0 ? pk->copy_of
							      : (long)i;
		struct replay_out    *o   = &out[src];
		struct mri_dlq_st_rec r   = {
		      .st        = MRI_DLQ_ST_REPLAYED,
		      .at_ms     = mri_wall_ms(),
		      .orig      = pk->orig,
		      .target    = s.picks[src].target,
		      .replay_id = o->id,
		      .partition = -1,
		      .offset    = -1,
                };

		if (pk->st != MRI_DLQ_ST_NONE) {
			// A copy of one whose state was written before.
			r.st        = pk->st;
			r.target    = NULL;
			r.replay_id = NULL;
		} else if (o->rec.res.err != MR_OK) {
			nfailed++;
			json_array_append_new(
			    failed,
			    json_pack("{s:i, s:I, s:s, s:s}", "partition",
				      (int)d->rec.partition, "offset",
				      (json_int_t)d->rec.offset, "error",
				      mr_err_name(o->rec.res.err), "message",
				      o->rec.res.why ? o->rec.res.why : ""));
			continue;
		} else if (pk->copy_of < 0) {
			json_t *m = json_pack(
			    "{s:i, s:I, s:s, s:s, s:i}", "partition",
			    (int)d->rec.partition, "offset",
			    (json_int_t)d->rec.offset, "target", pk->target,
			    "id", o->id, "replays", (int)o->replays);

			if (!dry)
				json_object_set_new(
				    m, "to",
				    replay__pos(o->rec.res.partition,
						o->rec.res.offset));
			json_object_set_new(
			    m, "duplicate",
			    json_boolean(o->rec.res.flags &
					 MRI_PUB_F_DUPLICATE));
			if (o->recovered)
				json_object_set_new(m, "recovered",
						    json_true());
			json_array_append_new(moved, m);
			nmoved++;
			r.partition = o->rec.res.partition;
			r.offset    = o->rec.res.offset;
		}
		if (!dry)
			replay__st_set(&st[nst++], d->rec.partition,
				       d->rec.offset, &r);
	}
	confirmed = replay__state_write(c, topic, st, nst);
	for (size_t i = 0; i < nst; i++)
		free(st[i].value);
	rep = json_pack("{s:b, s:s, s:i, s:b, s:I, s:o, s:I, s:o, s:I, s:o}",
			"ok", 1, "topic", topic, "partitions", (int)parts,
			"dry_run", dry, "moved", (json_int_t)nmoved,
			"replayed", moved, "failed_count", (json_int_t)nfailed,
			"failed", failed, "skipped_count",
			(json_int_t)s.nskipped, "skipped",
			json_incref(s.skipped));
	json_object_set_new(rep, "remaining", json_integer((json_int_t)s.remaining));
	json_object_set_new(rep, "matched", json_integer((json_int_t)s.matched));
	json_object_set_new(rep, "state_written",
			    json_integer((json_int_t)confirmed));
	json_object_set_new(rep, "state_failed",
			    json_integer((json_int_t)(nst - confirmed)));
	json_object_set_new(rep, "done",
			    json_boolean(s.remaining == 0 && nfailed == 0 &&
					 confirmed == nst));
	free(out);
	free(st);
	replay__scan_free(&s);
	return rep;
}

/* ---- dlq.purge -------------------------------------------------------------- */

/* DeleteRecords up to the prefix of each partition that is all replayed
 * or resolved; their list in \p deleted. */
static void
replay__delete(const struct mri_admin_dlq_ctx *c, const char *topic,
	       int32_t parts, const struct mri_dlq_state *state,
	       json_t *deleted, json_t *rep)
{
	rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(
	    parts > 0 ? parts : 1);
	rd_kafka_DeleteRecords_t        *dr;
	rd_kafka_AdminOptions_t         *opts;
	rd_kafka_queue_t                *q;
	rd_kafka_event_t                *ev;
	int64_t                          lo, hi, upto;

	for (int32_t p = 0; p < parts; p++) {
		if (rd_kafka_query_watermark_offsets(c->rk, topic, p, &lo, &hi,
						     c->timeout_ms) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR)
			continue;
		upto = mri_dlq_state_prefix(state, p, lo);
		if (upto > hi)
			upto = hi;
		if (upto > lo)
			rd_kafka_topic_partition_list_add(tl, topic, p)
			    ->offset = upto;
	}
	if (tl->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(tl);
		return;
	}
	dr   = rd_kafka_DeleteRecords_new(tl);
	q    = rd_kafka_queue_new(c->rk);
	opts = rd_kafka_AdminOptions_new(c->rk, RD_KAFKA_ADMIN_OP_DELETERECORDS);
	rd_kafka_AdminOptions_set_operation_timeout(opts, c->timeout_ms, NULL,
						    0);
	rd_kafka_DeleteRecords(c->rk, &dr, 1, opts, q);
	ev = rd_kafka_queue_poll(q, c->timeout_ms + 2000);
	if (ev == NULL || rd_kafka_event_error(ev)) {
		json_object_set_new(
		    rep, "delete_records",
		    json_string(ev == NULL ? "DeleteRecords got no answer"
					   : rd_kafka_event_error_string(ev)));
	} else {
		const rd_kafka_topic_partition_list_t *res =
		    rd_kafka_DeleteRecords_result_offsets(
			rd_kafka_event_DeleteRecords_result(ev));

		for (int i = 0; res != NULL && i < res->cnt; i++)
			if (!res->elems[i].err)
				json_array_append_new(
				    deleted,
				    json_pack("{s:i, s:I}", "partition",
					      (int)res->elems[i].partition,
					      "before",
					      (json_int_t)res->elems[i].offset));
		json_object_set_new(rep, "delete_records", json_string("done"));
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	rd_kafka_DeleteRecords_destroy(dr);
	rd_kafka_topic_partition_list_destroy(tl);
}

json_t *
mri_admin_dlq_purge(const struct mri_admin_dlq_ctx *c, json_t *req)
{
	const char        *topic = mri_admin_dlq_topic(req);
	struct replay_scan s     = {.replay = false};
	struct replay_st  *st    = NULL;
	json_t            *rep, *deleted;
	bool               dry = json_is_true(json_object_get(req, "dry_run"));
	size_t             nst = 0, confirmed = 0;
	int32_t            parts = 0;

	if (topic == NULL)
		return mri_admin_fail(MR_EINVAL,
				      "dlq.purge needs \"topic\": the "
				      "dead-letter topic (e.g. orders.dlq)");
	if (c->pub == NULL)
		return mri_admin_fail(MR_ENOTSUP, "no publisher to write with");
	if ((rep = replay__scan(c, req, topic, &s, &parts)) != NULL) {
		replay__scan_free(&s);
		return rep;
	}
	if (!dry && s.npicks > 0) {
		if ((st = calloc(s.npicks, sizeof(*st))) == NULL) {
			replay__scan_free(&s);
			return mri_admin_fail(MR_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < s.npicks; i++) {
			struct mri_dlq_st_rec r = {
			    .st        = MRI_DLQ_ST_RESOLVED,
			    .at_ms     = mri_wall_ms(),
			    .orig      = s.picks[i].orig,
			    .partition = -1,
			    .offset    = -1,
			};

			replay__st_set(&st[nst++], s.picks[i].s->rec.partition,
				       s.picks[i].s->rec.offset, &r);
		}
	}
	rep = json_pack("{s:b, s:s, s:b, s:I}", "ok", 1, "topic", topic,
			"dry_run", dry, "matched", (json_int_t)s.matched);
	deleted = json_array();
	if (nst > 0) {
		confirmed = replay__state_write(c, topic, st, nst);
		for (size_t i = 0; i < nst; i++) {
			if (st[i].ok)
				mri_dlq_state_put(s.state, st[i].partition,
						  st[i].offset, st[i].r.st, 0);
			free(st[i].value);
		}
	}
	json_object_set_new(rep, "resolved",
			    json_integer((json_int_t)(dry ? s.npicks
							  : confirmed)));
	json_object_set_new(rep, "failed",
			    json_integer((json_int_t)(nst - confirmed)));
	json_object_set_new(rep, "remaining",
			    json_integer((json_int_t)s.remaining));
	json_object_set_new(rep, "done",
			    json_boolean(s.remaining == 0 && confirmed == nst));
	if (dry)
		json_object_set_new(rep, "delete_records",
				    json_string("skipped: a dry run"));
	else if (c->emb != NULL)
		json_object_set_new(rep, "delete_records",
				    json_string("skipped: the embedded cluster "
						"has no DeleteRecords"));
	else
		replay__delete(c, topic, parts, s.state, deleted, rep);
	json_object_set_new(rep, "deleted", deleted);
	free(st);
	replay__scan_free(&s);
	return rep;
}
