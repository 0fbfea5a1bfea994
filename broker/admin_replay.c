/*
 * dlq.replay and dlq.purge (broker/admin_dlq.h), and the dead-letter
 * state topic they share with dlq.list (dlq/state.h).
 *
 * A call scans the state topic to its end, then the dead-letter topic to
 * the high watermarks found when it opened, and picks at most "max"
 * records that match (the list's filters, or explicit positions) and have
 * no state; copies of one original position (a quarantine written twice)
 * go with their first. Bad input is refused before anything is written:
 * positions not in the topic, a fingerprint that is nowhere in it, a
 * target topic that does not exist (never created here).
 *
 * Replay: each record picked is published raw through mailroomd's
 * publisher to its target with its key, payload and headers less the
 * mr_dlq_* ones, mr_dlq_replays its count + 1, ce_id (and the record's id
 * in the dedupe window) mri_dlq_replay_id of its id; spaced at "rate" per
 * second when given. Only once Kafka confirmed it is its state record
 * "replayed" written. A crash between the two leaves it without a state:
 * the next replay publishes it again with the same id, which the dedupe
 * window drops if this mailroomd still has it (a restarted one does not:
 * docs/ARCHITECTURE.md).
 *
 * Purge: a state record "resolved" for each record picked; then on real
 * Kafka, DeleteRecords frees each partition's prefix that is all replayed
 * or resolved.
 */
#include "admin_dlq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/embedded.h"
#include "bridge/publish.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "dlq/inspect.h"
#include "dlq/record.h"
#include "dlq/state.h"
#include "mailroom/error.h"
#include "proto/frame.h"

/* A call's bounds. */
#define REPLAY__MAX_DEFAULT 100
#define REPLAY__MAX 100000
#define REPLAY__POSITIONS 10000
#define REPLAY__SKIPPED_SHOWN 100

/* ---- publishing and waiting ---------------------------------------------- */

struct replay_wait {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	size_t          pending;
};

static void
replay__done(void *arg, struct mri_pub_batch *b)
{
	struct replay_wait *w = arg;

	(void)b;
	pthread_mutex_lock(&w->mtx);
	w->pending--;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

static void
replay__wait_init(struct replay_wait *w)
{
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = 0;
}

/* Submit \p b (its done and arg set here); its records' res say how it
 * went. */
static void
replay__submit(struct mri_publisher *p, struct replay_wait *w,
	       struct mri_pub_batch *b)
{
	b->done = replay__done;
	b->arg  = w;
	pthread_mutex_lock(&w->mtx);
	w->pending++;
	pthread_mutex_unlock(&w->mtx);
	if (mri_publish_submit(p, b) != MR_OK) {
		for (uint32_t i = 0; i < b->n; i++) {
			b->recs[i].res.err = MR_EINVAL;
			b->recs[i].res.why = "the publish was refused";
		}
		replay__done(w, b);
	}
}

/* Wait for every batch submitted (each is bounded by the producer's
 * message timeout), then free the wait. */
static void
replay__wait_all(struct replay_wait *w)
{
	pthread_mutex_lock(&w->mtx);
	while (w->pending > 0)
		pthread_cond_wait(&w->cv, &w->mtx);
	pthread_mutex_unlock(&w->mtx);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
}

/* ---- the state topic ------------------------------------------------------ */

/* "<topic>.state" into \p out (MRI_TOPIC_MAX + 1 bytes); false when too
 * long for a topic name. */
static bool
replay__state_name(const char *topic, char *out)
{
	size_t n = strlen(topic);

	if (n + sizeof(MRI_DLQ_STATE_SUFFIX) - 1 > MRI_TOPIC_MAX)
		return false;
	memcpy(out, topic, n);
	memcpy(out + n, MRI_DLQ_STATE_SUFFIX, sizeof(MRI_DLQ_STATE_SUFFIX));
	return true;
}

/* Whether \p topic exists (metadata of every topic: naming one would make
 * the embedded cluster create it); *partitions its partition count. */
static int
replay__exists(const struct mri_admin_dlq_ctx *c, const char *topic,
	       bool *exists, int32_t *partitions, char *why, size_t n)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t             err;

	*exists = false;
	err     = rd_kafka_metadata(c->rk, 1, NULL, &md, c->timeout_ms);
	if (err) {
		snprintf(why, n, "metadata request failed: %s",
			 rd_kafka_err2str(err));
		return mri_kafka_err(err);
	}
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 &&
		    md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			*exists = true;
			if (partitions != NULL)
				*partitions = md->topics[i].partition_cnt;
		}
	rd_kafka_metadata_destroy(md);
	return MR_OK;
}

/* Create the state topic \p name unless it exists: compacted, one
 * partition. */
static int
replay__state_ensure(const struct mri_admin_dlq_ctx *c, const char *name,
		     char *why, size_t n)
{
	rd_kafka_NewTopic_t           *nt;
	rd_kafka_AdminOptions_t       *opts;
	rd_kafka_queue_t              *q;
	rd_kafka_event_t              *ev;
	const rd_kafka_topic_result_t **tr;
	size_t                         ntr = 0;
	bool                           exists;
	int                            rc;

	if ((rc = replay__exists(c, name, &exists, NULL, why, n)) != MR_OK ||
	    exists)
		return rc;
	if (c->emb != NULL) {
		// The embedded cluster has no CreateTopics (nor compaction).
		if ((rc = mri_embedded_topic_create(c->emb, name, 1, 1)) != MR_OK)
			snprintf(why, n, "cannot create the state topic %s",
				 name);
		return rc;
	}
	nt = rd_kafka_NewTopic_new(name, 1, -1, why, n);
	if (nt == NULL)
		return MR_EINVAL;
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
	q    = rd_kafka_queue_new(c->rk);
	opts = rd_kafka_AdminOptions_new(c->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(opts, c->timeout_ms, NULL,
						    0);
	rd_kafka_CreateTopics(c->rk, &nt, 1, opts, q);
	ev = rd_kafka_queue_poll(q, c->timeout_ms + 2000);
	if (ev == NULL) {
		rc = MR_ETIMEDOUT;
		snprintf(why, n, "CreateTopics of %s got no answer", name);
	} else if (rd_kafka_event_error(ev)) {
		rc = mri_kafka_err(rd_kafka_event_error(ev));
		snprintf(why, n, "creating %s: %s", name,
			 rd_kafka_event_error_string(ev));
	} else {
		tr = rd_kafka_CreateTopics_result_topics(
		    rd_kafka_event_CreateTopics_result(ev), &ntr);
		for (size_t i = 0; i < ntr && rc == MR_OK; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);

			if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
				rc = mri_kafka_err(e);
				snprintf(why, n, "creating %s: %s", name,
					 rd_kafka_topic_result_error_string(
					     tr[i]));
			}
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

int
mri_admin_dlq_state(const struct mri_admin_dlq_ctx *c, const char *topic,
		    int timeout_ms, struct mri_dlq_state **out, char *why,
		    size_t n)
{
	char                  name[MRI_TOPIC_MAX + 1];
	struct mri_dlq_kafka *k;
	struct mri_dlq_source src;
	struct mri_dlq_rec    r;
	bool                  end = false;
	int                   rc;

	if (!replay__state_name(topic, name)) {
		snprintf(why, n, "%s is too long to have a state topic", topic);
		return MR_EINVAL;
	}
	if ((rc = mri_dlq_state_new(out)) != MR_OK) {
		snprintf(why, n, "out of memory");
		return rc;
	}
	rc = mri_dlq_kafka_open(&k, c->tmpl, name, -1, 0, timeout_ms, why, n);
	if (rc == MR_ENOENT)
		return MR_OK; // never written: no state
	if (rc != MR_OK) {
		mri_dlq_state_free(*out);
		*out = NULL;
		return rc;
	}
	mri_dlq_kafka_source(k, &src);
	while ((rc = src.next(src.arg, &r, &end, why, n)) == MR_OK && !end) {
		rc = mri_dlq_state_load(*out, r.has_key ? r.key : NULL,
					r.key_len, r.value, r.value_len);
		if (rc != MR_OK) {
			snprintf(why, n, "out of memory");
			break;
		}
	}
	mri_dlq_kafka_close(k);
	if (rc != MR_OK) {
		mri_dlq_state_free(*out);
		*out = NULL;
	}
	return rc;
}

/* A state record to write. */
struct replay_st {
	char                  key[MRI_DLQ_POS_STRLEN + 1];
	char                  id[MRI_DLQ_POS_STRLEN + 16];
	char                 *value;
	struct mri_dlq_st_rec r;
	int32_t               partition; /* the dead-letter position */
	int64_t               offset;
	bool                  ok; /* Kafka confirmed it */
};

/* Write \p n state records to \p topic's state topic and wait for them.
 * @returns how many Kafka confirmed. */
static size_t
replay__state_write(const struct mri_admin_dlq_ctx *c, const char *topic,
		    struct replay_st *st, size_t n)
{
	char                  name[MRI_TOPIC_MAX + 1];
	struct mri_pub_rec   *recs;
	struct mri_pub_batch  b = {0};
	struct replay_wait    w;
	size_t                ok = 0;

	char                  why[1024];

	if (n == 0 || !replay__state_name(topic, name) ||
	    replay__state_ensure(c, name, why, sizeof(why)) != MR_OK ||
	    (recs = calloc(n, sizeof(*recs))) == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct mri_pub_rec *r = &recs[i];

		mri_pub_rec_init(r);
		r->topic     = name;
		r->key       = st[i].key;
		r->key_len   = strlen(st[i].key);
		r->has_key   = true;
		r->value     = st[i].value;
		r->value_len = st[i].value != NULL ? strlen(st[i].value) : 0;
		r->raw       = true;
		r->id        = st[i].id;
		r->id_len    = (uint8_t)strlen(st[i].id);
		if (st[i].value == NULL) {
			r->res.err = MR_ENOMEM;
			r->res.why = "out of memory";
		}
	}
	b.recs = recs;
	b.n    = (uint32_t)n;
	replay__wait_init(&w);
	replay__submit(c->pub, &w, &b);
	replay__wait_all(&w);
	for (size_t i = 0; i < n; i++) {
		st[i].ok = recs[i].res.err == MR_OK;
		ok += st[i].ok;
	}
	free(recs);
	return ok;
}

/* Fill \p s (its key and dedupe id from the dead-letter position) for
 * state \p r. */
static void
replay__st_set(struct replay_st *s, int32_t p, int64_t o,
	       const struct mri_dlq_st_rec *r)
{
	s->partition = p;
	s->offset    = o;
	mri_dlq_pos_fmt(s->key, p, o);
	snprintf(s->id, sizeof(s->id), "%s/%s", s->key, mri_dlq_st_name(r->st));
	s->r     = *r;
	s->value = mri_dlq_state_value(r);
}

/* ---- picking records -------------------------------------------------------- */

/* A record picked. */
struct replay_pick {
	struct mri_dlq_shown *s;    /* owned */
	uint64_t              orig; /* mri_dlq_orig_hash */
	long                  copy_of; /* -1, or the pick it is a copy of */
	enum mri_dlq_st       st;      /* a copy of one with a state */
	const char           *target;  /* borrowed from the request or s */
	char                  target_buf[MRI_TOPIC_MAX + 1];
	/* A replay's intent left by one that stopped (borrowed from the
	 * state), and whether its id was found in the intent's target. */
	const struct mri_dlq_intent *intent;
	bool                         found;
	int32_t                      found_partition;
	int64_t                      found_offset;
};

struct replay_scan {
	/* In. */
	bool                  replay;
	struct mri_dlq_filter f;
	bool                  has_positions;
	int32_t              *pos_p; /* explicit positions */
	int64_t              *pos_o;
	bool                 *pos_found;
	size_t                npos;
	size_t                max;
	const char           *target; /* the request's; NULL: the original */
	uint32_t              loop_limit;
	bool                  force;
	struct mri_dlq_state *state;
	/* Out. */
	struct replay_pick   *picks;
	size_t                npicks, nprimary;
	struct mri_dlq_state *chosen; /* the picks, by original */
	uint64_t              remaining, matched, scanned;
	bool                  fp_seen;
	json_t               *skipped; /* [{partition, offset, why}] */
	uint64_t              nskipped;
};

static void
replay__skip(struct replay_scan *s, const struct mri_dlq_rec *r,
	     const char *why)
{
	if (s->nskipped++ < REPLAY__SKIPPED_SHOWN)
		json_array_append_new(
		    s->skipped,
		    json_pack("{s:i, s:I, s:s}", "partition", (int)r->partition,
			      "offset", (json_int_t)r->offset, "why", why));
}

/* Is \p r one of the explicit positions? */
static bool
replay__wanted(struct replay_scan *s, const struct mri_dlq_rec *r)
{
	bool hit = false;

	for (size_t i = 0; i < s->npos; i++)
		if (s->pos_p[i] == r->partition && s->pos_o[i] == r->offset) {
			s->pos_found[i] = true;
			hit             = true;
		}
	return hit;
}

/* One record read. */
static int
replay__one(struct replay_scan *s, const struct mri_dlq_rec *r)
{
	struct mri_dlq_info in;
	struct replay_pick *pk;
	int64_t             t;
	uint64_t            orig;
	enum mri_dlq_st     st;
	long                copy_of = -1;
	const char         *tgt     = s->target;

	s->scanned++;
	(void)mri_dlq_parse(r->hdrs, r->nhdrs, &in);
	t = in.time_ms >= 0 ? in.time_ms : r->timestamp_ms;
	if (t < 0)
		t = -1;
	if (s->f.has_fingerprint && in.fingerprint == s->f.fingerprint)
		s->fp_seen = true;
	if (s->has_positions ? !replay__wanted(s, r)
			     : !mri_dlq_filter_match(&s->f, r, &in, t))
		return MR_OK;
	s->matched++;
	st = mri_dlq_state_get(s->state, r->partition, r->offset);
	if (st == MRI_DLQ_ST_REPLAYED || st == MRI_DLQ_ST_RESOLVED)
		return MR_OK;
	orig = mri_dlq_orig_hash(&in, r);
	st   = mri_dlq_state_orig(s->state, orig);
	if (st == MRI_DLQ_ST_NONE &&
	    mri_dlq_state_orig(s->chosen, orig) != MRI_DLQ_ST_NONE) {
		for (size_t i = 0; i < s->npicks; i++)
			if (s->picks[i].orig == orig &&
			    s->picks[i].copy_of < 0) {
				copy_of = (long)i;
				break;
			}
	}
	if (st == MRI_DLQ_ST_NONE && copy_of < 0 && s->replay) {
		// Only a record that would be published needs these.
		if (!mri_dlq_replay_allowed(in.replays, s->loop_limit,
					    s->force)) {
			replay__skip(s, r,
				     "loop guard: replayed as many times as "
				     "loop_limit allows (force replays it)");
			return MR_OK;
		}
		if (tgt == NULL && (in.topic.p == NULL || in.topic.len == 0 ||
				    in.topic.len > MRI_TOPIC_MAX ||
				    !mri_topic_valid(in.topic.p, in.topic.len))) {
			replay__skip(s, r,
				     "its original topic is unknown (give "
				     "\"target\")");
			return MR_OK;
		}
	}
	if (st == MRI_DLQ_ST_NONE && copy_of < 0) {
		if (s->nprimary >= s->max) {
			s->remaining++;
			return MR_OK;
		}
		s->nprimary++;
	} else if (s->npicks >= 2 * s->max) {
		s->remaining++;
		return MR_OK;
	}
	pk = &s->picks[s->npicks];
	memset(pk, 0, sizeof(*pk));
	if (mri_dlq_shown_new(&pk->s, r) != MR_OK)
		return MR_ENOMEM;
	pk->orig    = orig;
	pk->copy_of = copy_of;
	pk->st      = st;
	if (tgt == NULL && in.topic.p != NULL &&
	    in.topic.len <= MRI_TOPIC_MAX) {
		memcpy(pk->target_buf, in.topic.p, in.topic.len);
		pk->target_buf[in.topic.len] = '\0';
		tgt                          = pk->target_buf;
	}
	pk->target = tgt;
	pk->intent = mri_dlq_state_intent(s->state, r->partition, r->offset);
	s->npicks++;
	if (st == MRI_DLQ_ST_NONE && copy_of < 0 &&
	    mri_dlq_state_put(s->chosen, r->partition, r->offset,
			      MRI_DLQ_ST_REPLAYED, orig) != MR_OK)
		return MR_ENOMEM;
	return MR_OK;
}

static void
replay__scan_free(struct replay_scan *s)
{
	for (size_t i = 0; i < s->npicks; i++)
		mri_dlq_shown_free(s->picks[i].s);
	free(s->picks);
	free(s->pos_p);
	free(s->pos_o);
	free(s->pos_found);
	mri_dlq_state_free(s->chosen);
	mri_dlq_state_free(s->state);
	json_decref(s->skipped);
}

/* The request's "positions": ["P@O", ...]; NULL, or a failure reply. */
static json_t *
replay__positions(json_t *req, struct replay_scan *s)
{
	json_t *a = json_object_get(req, "positions"), *v;
	size_t  i;

	if (a == NULL || json_is_null(a))
		return NULL;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > REPLAY__POSITIONS)
		return mri_admin_fail(MR_EINVAL,
				      "\"positions\" is an array of 1..%d "
				      "dead-letter positions \"P@O\"",
				      REPLAY__POSITIONS);
	if (mri_admin_dlq_has_filter(req))
		return mri_admin_fail(MR_EINVAL,
				      "\"positions\" and filters (source, "
				      "group, key, fingerprint, since, until, "
				      "dialect) conflict: give one or the "
				      "other");
	s->npos      = json_array_size(a);
	s->pos_p     = calloc(s->npos, sizeof(*s->pos_p));
	s->pos_o     = calloc(s->npos, sizeof(*s->pos_o));
	s->pos_found = calloc(s->npos, sizeof(*s->pos_found));
	if (s->pos_p == NULL || s->pos_o == NULL || s->pos_found == NULL)
		return mri_admin_fail(MR_ENOMEM, "out of memory");
	json_array_foreach(a, i, v)
	{
		const char *p = json_string_value(v);

		if (p == NULL || mri_dlq_pos_parse(p, strlen(p), &s->pos_p[i],
						   &s->pos_o[i]) != MR_OK)
			return mri_admin_fail(MR_EINVAL,
					      "a position is \"P@O\" "
					      "(partition@offset, decimals), "
					      "not %s",
					      p != NULL ? p : "a non-string");
	}
	s->has_positions = true;
	return NULL;
}

/* Read the request, the state and the topic into \p s; NULL, or a failure
 * reply (nothing written). */
static json_t *
replay__scan(const struct mri_admin_dlq_ctx *c, json_t *req,
	     const char *topic, struct replay_scan *s, int32_t *parts)
{
	struct mri_dlq_kafka *k;
	struct mri_dlq_source src;
	struct mri_dlq_rec    r;
	unsigned char        *key = NULL;
	json_int_t            max = REPLAY__MAX_DEFAULT, to = c->timeout_ms;
	json_t               *rep;
	bool                  end = false;
	char                  why[512];
	int                   rc;

	if (!mri_admin_dlq_int(req, "max", 1, REPLAY__MAX, &max) ||
	    !mri_admin_dlq_int(req, "timeout_ms", 1, MRI_ADMIN_DLQ_TIMEOUT_MAX,
			       &to))
		return mri_admin_fail(MR_EINVAL,
				      "max is 1..%d, timeout_ms 1..%d",
				      REPLAY__MAX, MRI_ADMIN_DLQ_TIMEOUT_MAX);
	s->max     = (size_t)max;
	s->skipped = json_array();
	if ((rep = replay__positions(req, s)) != NULL)
		return rep;
	if ((rep = mri_admin_dlq_filter(req, &s->f, &key)) != NULL)
		return rep;
	if ((s->picks = calloc(2 * s->max, sizeof(*s->picks))) == NULL ||
	    mri_dlq_state_new(&s->chosen) != MR_OK) {
		free(key);
		return mri_admin_fail(MR_ENOMEM, "out of memory");
	}
	rc = mri_admin_dlq_state(c, topic, (int)to, &s->state, why,
				 sizeof(why));
	if (rc == MR_OK)
		rc = mri_dlq_kafka_open(&k, c->tmpl, topic, -1, 0, (int)to, why,
					sizeof(why));
	if (rc != MR_OK) {
		free(key);
		return mri_admin_fail(rc, "%s", why);
	}
	*parts = mri_dlq_kafka_partitions(k);
	mri_dlq_kafka_source(k, &src);
	while ((rc = src.next(src.arg, &r, &end, why, sizeof(why))) == MR_OK &&
	       !end)
		if ((rc = replay__one(s, &r)) != MR_OK) {
			snprintf(why, sizeof(why), "out of memory");
			break;
		}
	mri_dlq_kafka_close(k);
	free(key);
	s->f.key = NULL;
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	for (size_t i = 0; i < s->npos; i++)
		if (!s->pos_found[i])
			return mri_admin_fail(
			    MR_EINVAL,
			    "%s has no record at %ld@%lld (out of range, or "
			    "not a record); nothing was done",
			    topic, (long)s->pos_p[i], (long long)s->pos_o[i]);
	if (s->f.has_fingerprint && !s->fp_seen)
		return mri_admin_fail(MR_ENOENT,
				      "no record of %s has fingerprint %s; "
				      "nothing was done (mailroom dlq list %s)",
				      topic,
				      json_string_value(
					  json_object_get(req, "fingerprint")),
				      topic);
	return NULL;
}

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
	    !mri_admin_dlq_int(req, "rate", 0, MRI_DLQ_RATE_MAX, &rate))
		return mri_admin_fail(MR_EINVAL,
				      "loop_limit is 0..1000000, rate 0..%d "
				      "records per second (0: unpaced)",
				      MRI_DLQ_RATE_MAX);
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
		    (wait = mri_dlq_rate_wait_ms(start, (int64_t)mri_mono_ms(),
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
