/*
 * What dlq.replay and dlq.purge share (broker/admin_scan.h): waiting for
 * the publisher, the dead-letter state topic (dlq/state.h: read to its end,
 * created on its first write, written through mailroomd's publisher), and
 * the scan that picks a call's records: at most "max" that match (the
 * list's filters, or explicit positions) and are neither replayed nor
 * resolved; copies of one original position go with their first. Bad
 * input is refused after the scan and before anything is written:
 * positions not in the topic, a fingerprint that is nowhere in it.
 */
#include "admin_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/embedded.h"
#include "core/kafka.h"
#include "mailroom/error.h"

/* ---- publishing and waiting ---------------------------------------------- */


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

void
replay__wait_init(struct replay_wait *w)
{
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = 0;
}

/* Submit \p b (its done and arg set here); its records' res say how it
 * went. */
void
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
void
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
int
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

	if ((rc = mri_dlq_state_new(out)) != MR_OK) {
		snprintf(why, n, "out of memory");
		return rc;
	}
	// A name too long for "<topic>.state" has no state (and can get
	// none: a replay or purge of it fails its state writes).
	if (!replay__state_name(topic, name))
		return MR_OK;
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


/* Write \p n state records to \p topic's state topic and wait for them.
 * @returns how many Kafka confirmed. */
size_t
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
void
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

void
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
json_t *
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
