/*
 * The publish pipeline (bridge/publish.h; docs/ARCHITECTURE.md, "The
 * publish path"): envelope, the dedupe window and its waiters, the
 * producer, and a batch's completion once every record has its result.
 */
#include "publish.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/envelope.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "mailroom/error.h"

// Records handed to the producer per call, from the submitting stack.
#define PUBLISH__CHUNK 128
// Records whose dedupe slot is asked for ahead of their lookup.
#define PUBLISH__PREFETCH 8
// How long results of purged records are waited for.
#define PUBLISH__PURGE_WAIT_MS 10000

enum {
	PUBLISH__READY,   /* to be sent */
	PUBLISH__DONE,    /* has its result */
	PUBLISH__WAITING, /* a duplicate waiting on a first publish */
};

struct mri_publisher {
	struct mri_producer *prod;
	pthread_mutex_t      dlock; /* the dedupe window and its waiters */
	struct mri_dedupe   *dedupe; /* NULL: disabled */
	uint64_t             dedupe_window_ms;
	pthread_mutex_t      cfg_lock;
	char                 ce_source[256];
	char                 ce_type[256];
	atomic_bool          lean; /* the lean envelope */
	atomic_ullong        confirmed;
	atomic_ullong        failed;
	atomic_ullong        duplicates;
	/* Batches submitted and not yet done, and mri_publisher_drain's
	 * wait for them. */
	atomic_uint          inflight;
	atomic_int           drainers;
	pthread_mutex_t      wlock;
	pthread_cond_t       wcond;
};

static struct mri_pub_rec *
publish__rec_of(struct mri_dedupe_waiter *w)
{
	return (struct mri_pub_rec *)((char *)w -
				      offsetof(struct mri_pub_rec,
					       priv.waiter));
}

static void
publish__set(struct mri_pub_rec *r, int err, int32_t part, int64_t off,
	     const char *why)
{
	r->res.err       = err;
	r->res.partition = err ? -1 : part;
	r->res.offset    = err ? -1 : off;
	r->res.why       = err ? (why ? why : mr_strerror(err)) : NULL;
}

/* Every record of \p b has its result: count, and call back. */
static void
publish__batch_done(struct mri_pub_batch *b)
{
	struct mri_publisher *p  = b->p;
	uint64_t              ok = 0;

	for (uint32_t i = 0; i < b->n; i++)
		ok += b->recs[i].res.err == MR_OK;
	atomic_fetch_add(&p->confirmed, ok);
	atomic_fetch_add(&p->failed, b->n - ok);
	b->done(b->arg, b);
	// b may be the caller's again from here on.
	if (atomic_fetch_sub(&p->inflight, 1) == 1 &&
	    atomic_load(&p->drainers) > 0) {
		pthread_mutex_lock(&p->wlock);
		pthread_cond_broadcast(&p->wcond);
		pthread_mutex_unlock(&p->wlock);
	}
}

static void
publish__rec_done(struct mri_pub_rec *r)
{
	struct mri_pub_batch *b = r->priv.b;

	if (atomic_fetch_sub(&b->pending, 1) == 1)
		publish__batch_done(b);
}

/* Give the duplicates that waited on an entry its outcome, and put them
 * on *fin, to be completed once dlock is released. Caller holds dlock. */
static void
publish__finish_waiters(struct mri_publisher *p, struct mri_dedupe_waiter *w,
			int err, int32_t part, int64_t off, const char *why,
			struct mri_dedupe_waiter **fin)
{
	struct mri_dedupe_waiter *next;

	for (; w != NULL; w = next) {
		struct mri_pub_rec *r = publish__rec_of(w);

		next = w->next;
		publish__set(r, err, part, off, why);
		if (err == MR_OK) {
			r->res.flags |= MRI_PUB_F_DUPLICATE;
			atomic_fetch_add(&p->duplicates, 1);
		}
		w->next = *fin;
		*fin    = w;
	}
}

static void
publish__complete(struct mri_dedupe_waiter *fin)
{
	struct mri_dedupe_waiter *next;

	for (; fin != NULL; fin = next) {
		next = fin->next;
		publish__rec_done(publish__rec_of(fin));
	}
}

/* The producer's reports: on the producer's thread. */
static void
publish__on_report(void *arg, struct mri_presult *r, size_t n)
{
	struct mri_publisher     *p     = arg;
	struct mri_dedupe_waiter *fin   = NULL;
	bool                      dedup = false;

	for (size_t i = 0; i < n && !dedup; i++)
		dedup = ((struct mri_pub_rec *)r[i].msg->opaque)->priv.dentry !=
			NULL;
	if (dedup) {
		uint64_t now = mri_mono_ms();

		pthread_mutex_lock(&p->dlock);
		for (size_t i = 0; i < n; i++) {
			struct mri_pub_rec       *rec = r[i].msg->opaque;
			struct mri_dedupe_waiter *w;

			if (rec->priv.dentry == NULL)
				continue;
			if (r[i].err == MR_OK)
				w = mri_dedupe_complete(p->dedupe,
							rec->priv.dentry,
							r[i].partition,
							r[i].offset, now);
			else
				w = mri_dedupe_fail(p->dedupe,
						    rec->priv.dentry);
			rec->priv.dentry = NULL;
			publish__finish_waiters(p, w, r[i].err, r[i].partition,
						r[i].offset, r[i].why, &fin);
		}
		pthread_mutex_unlock(&p->dlock);
		publish__complete(fin);
	}
	for (size_t i = 0; i < n; i++) {
		struct mri_pub_rec *rec = r[i].msg->opaque;

		publish__set(rec, r[i].err, r[i].partition, r[i].offset,
			     r[i].why);
		publish__rec_done(rec);
	}
}

/* A raw record's headers: \p n views copied as they are, in order. */
static rd_kafka_headers_t *
publish__raw_headers(const struct mri_hdr_view *hs, uint16_t n)
{
	rd_kafka_headers_t *out = rd_kafka_headers_new(n > 0 ? n : 1);

	for (uint16_t i = 0; i < n; i++)
		rd_kafka_header_add(out, hs[i].name, hs[i].name_len,
				    hs[i].value, (ssize_t)hs[i].value_len);
	return out;
}

void
mri_pub_rec_init(struct mri_pub_rec *r)
{
	memset(r, 0, offsetof(struct mri_pub_rec, priv));
	r->partition = -1;
}

void
mri_publish_prepare(struct mri_publisher *p, struct mri_pub_batch *b)
{
	struct mri_envelope_defaults d;
	char                         src[256], type[256];
	char                         now[MRI_TIME_STRLEN + 1];
	const char                  *why;
	int                          rc;
	// One clock read for the batch: its envelopes' time and its
	// records' timestamps (librdkafka would read the clock for each).
	int64_t                      wall = mri_wall_ms();

	d = (struct mri_envelope_defaults){.lean = atomic_load(&p->lean)};
	if (!d.lean) {
		pthread_mutex_lock(&p->cfg_lock);
		memcpy(src, p->ce_source, sizeof(src));
		memcpy(type, p->ce_type, sizeof(type));
		pthread_mutex_unlock(&p->cfg_lock);
		mri_time_fmt(wall, now);
		d.source = src;
		d.type   = type;
		d.time   = now;
	}

	b->p        = p;
	b->prepared = true;
	for (uint32_t i = 0; i < b->n; i++) {
		struct mri_pub_rec      *r  = &b->recs[i];
		struct mri_pub_rec_priv *pv = &r->priv;

		memset(pv, 0, offsetof(struct mri_pub_rec_priv, idbuf));
		pv->b         = b;
		pv->pm.opaque = r;
		pv->state     = PUBLISH__DONE;
		pv->given_id  = r->id_len > 0;
		// A raw record keeps its headers, and so its ce_id: it is
		// not given another id.
		if (!pv->given_id && !r->raw) {
			mri_uuid7_string(pv->idbuf);
			r->id     = pv->idbuf;
			r->id_len = MRI_UUID_STRLEN;
		}
		if (r->res.err != MR_OK) {
			// Refused by the caller: kept as it is.
			publish__set(r, r->res.err, -1, -1, r->res.why);
			continue;
		}
		r->res.flags = 0;
		publish__set(r, MR_OK, -1, -1, NULL);
		if (r->raw && !pv->given_id) {
			publish__set(r, MR_EINVAL, -1, -1,
				     "a raw record needs its message id");
			continue;
		}
		if (pv->given_id &&
		    mri_envelope_id_valid(r->id, r->id_len) != MR_OK) {
			publish__set(r, MR_EINVAL, -1, -1,
				     "message id has control bytes");
			continue;
		}
		if (r->raw) {
			pv->pm.hdrs = publish__raw_headers(r->hdrs,
							   r->hdr_count);
		} else if ((rc = mri_envelope_make(r->hdrs, r->hdr_count, r->id,
						   r->id_len, &d, &pv->pm.hdrs,
						   &why)) != MR_OK) {
			publish__set(r, rc, -1, -1, why);
			continue;
		}
		// The dedupe window's hash now, on this thread, not under the
		// window's lock.
		if (pv->given_id && p->dedupe != NULL)
			pv->dkey = mri_dedupe_key(r->topic, strlen(r->topic),
						  r->id, r->id_len);
		pv->pm.topic         = r->topic;
		pv->pm.key           = r->key;
		pv->pm.key_len       = r->key_len;
		pv->pm.has_key       = r->has_key;
		pv->pm.payload       = r->value;
		pv->pm.payload_len   = r->value_len;
		pv->pm.has_partition = r->partition >= 0;
		pv->pm.partition     = r->partition;
		pv->pm.timestamp_ms  = wall;
		pv->state            = PUBLISH__READY;
	}
}

void
mri_publish_refuse(struct mri_pub_rec *r, int err, const char *why)
{
	struct mri_pub_rec_priv *pv = &r->priv;

	if (pv->state == PUBLISH__READY && pv->pm.hdrs != NULL) {
		rd_kafka_headers_destroy(pv->pm.hdrs);
		pv->pm.hdrs = NULL;
	}
	pv->state = PUBLISH__DONE;
	publish__set(r, err, -1, -1, why);
}

void
mri_publish_route(struct mri_pub_rec *r, int32_t partition)
{
	r->partition            = partition;
	r->priv.pm.has_partition = partition >= 0;
	r->priv.pm.partition     = partition;
}

void
mri_publish_cancel(struct mri_pub_batch *b)
{
	for (uint32_t i = 0; b->prepared && i < b->n; i++) {
		struct mri_pmsg *pm = &b->recs[i].priv.pm;

		if (pm->hdrs != NULL) {
			rd_kafka_headers_destroy(pm->hdrs);
			pm->hdrs = NULL;
		}
	}
	b->prepared = false;
}

/* Whether \p r goes through the dedupe window: to be sent, with an id of
 * the caller's. */
static bool
publish__deduped(const struct mri_pub_rec *r)
{
	return r->priv.state == PUBLISH__READY && r->priv.given_id;
}

/* Look the records of \p b with a caller's id up in the dedupe window:
 * new ones go on (and write the entry), the others are duplicates, done
 * or waiting. */
static void
publish__dedupe(struct mri_publisher *p, struct mri_pub_batch *b)
{
	uint64_t now_ms = mri_mono_ms();
	uint32_t ahead  = 0;

	pthread_mutex_lock(&p->dlock);
	mri_dedupe_expire(p->dedupe, now_ms);
	for (uint32_t i = 0; i < b->n; i++) {
		struct mri_pub_rec      *r  = &b->recs[i];
		struct mri_pub_rec_priv *pv = &r->priv;
		struct mri_dedupe_entry *e;
		int                      st;

		// Each lookup is a cache miss in a big window: ask for the
		// slots of the next few records while this one is looked up.
		for (; ahead < b->n && ahead <= i + PUBLISH__PREFETCH; ahead++)
			if (publish__deduped(&b->recs[ahead]))
				mri_dedupe_prefetch(
				    p->dedupe, b->recs[ahead].priv.dkey.hash);
		if (!publish__deduped(r))
			continue;
		st = mri_dedupe_check_key(p->dedupe, pv->dkey, now_ms, &e);
		switch (st) {
		case MRI_DEDUPE_NEW:
			pv->dentry = e;
			continue;
		case MRI_DEDUPE_PENDING:
			// Completed by whoever completes the first: from
			// now on another thread may finish it.
			pv->state = PUBLISH__WAITING;
			mri_dedupe_wait(e, &pv->waiter);
			break;
		case MRI_DEDUPE_DONE:
			publish__set(r, MR_OK, e->partition, e->offset, NULL);
			r->res.flags |= MRI_PUB_F_DUPLICATE;
			atomic_fetch_add(&p->duplicates, 1);
			pv->state = PUBLISH__DONE;
			break;
		default:
			publish__set(r, MR_ENOMEM, -1, -1, NULL);
			pv->state = PUBLISH__DONE;
			break;
		}
		rd_kafka_headers_destroy(pv->pm.hdrs);
		pv->pm.hdrs = NULL;
	}
	pthread_mutex_unlock(&p->dlock);
}

/* Hand \p n records to the producer; fail those it refuses (and the
 * duplicates that waited on them). */
static void
publish__send(struct mri_publisher *p, struct mri_pmsg **send, size_t n)
{
	int                       rcs[PUBLISH__CHUNK];
	const char               *whys[PUBLISH__CHUNK];
	struct mri_dedupe_waiter *fin = NULL;

	if (mri_producer_send(p->prod, send, n, rcs, whys) == n)
		return;
	for (size_t i = 0; i < n; i++) {
		struct mri_pub_rec *r = send[i]->opaque;

		if (rcs[i] == MR_OK)
			continue;
		if (r->priv.pm.hdrs != NULL) {
			rd_kafka_headers_destroy(r->priv.pm.hdrs);
			r->priv.pm.hdrs = NULL;
		}
		if (r->priv.dentry != NULL) {
			struct mri_dedupe_waiter *w;

			pthread_mutex_lock(&p->dlock);
			w = mri_dedupe_fail(p->dedupe, r->priv.dentry);
			r->priv.dentry = NULL;
			publish__finish_waiters(p, w, rcs[i], -1, -1, whys[i],
						&fin);
			pthread_mutex_unlock(&p->dlock);
		}
		publish__set(r, rcs[i], -1, -1, whys[i]);
		publish__rec_done(r);
	}
	publish__complete(fin);
}

int
mri_publish_submit(struct mri_publisher *p, struct mri_pub_batch *b)
{
	struct mri_pmsg *send[PUBLISH__CHUNK];
	size_t           k = 0;

	if (b->n == 0 || b->done == NULL)
		return MR_EINVAL;
	if (!b->prepared)
		mri_publish_prepare(p, b);
	b->prepared = false;
	atomic_fetch_add(&p->inflight, 1);
	// The guard: done comes only once every record and this call are.
	atomic_store(&b->pending, b->n + 1);
	// Caller-given ids go through the dedupe window; assigned ones are
	// new by construction.
	if (p->dedupe != NULL)
		publish__dedupe(p, b);
	for (uint32_t i = 0; i < b->n; i++) {
		struct mri_pub_rec *r = &b->recs[i];

		if (r->priv.state == PUBLISH__DONE) {
			publish__rec_done(r);
			continue;
		}
		if (r->priv.state != PUBLISH__READY)
			continue;
		send[k++] = &r->priv.pm;
		if (k == PUBLISH__CHUNK) {
			publish__send(p, send, k);
			k = 0;
		}
	}
	if (k > 0)
		publish__send(p, send, k);
	if (atomic_fetch_sub(&b->pending, 1) == 1)
		publish__batch_done(b);
	return MR_OK;
}

/* The producer's librdkafka settings, from plain values. */
static int
publish__kafka_conf(const struct mri_publisher_conf *c, rd_kafka_conf_t **out,
		    char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf;

	if ((conf = mri_kafka_conf_new(c->bootstrap, c->client_id, errstr,
				       errstr_size)) == NULL)
		return MR_ECONFIG;
	// The front door bounds what is in flight (max_inflight requests of
	// max_frame_bytes); librdkafka's queue must not refuse within that.
	if (mri_kafka_set_int(conf, "linger.ms", c->linger_ms, errstr,
			      errstr_size) ||
	    mri_kafka_set_int(conf, "message.timeout.ms",
			      c->message_timeout_ms, errstr, errstr_size) ||
	    mri_kafka_set_int(conf, "message.max.bytes", c->message_max_bytes,
			      errstr, errstr_size) ||
	    mri_kafka_set(conf, "queue.buffering.max.messages", "0", errstr,
			  errstr_size) ||
	    mri_kafka_set(conf, "queue.buffering.max.kbytes", "2097151", errstr,
			  errstr_size) ||
	    mri_kafka_set(conf, "topic.metadata.propagation.max.ms", "5000",
			  errstr, errstr_size) ||
	    mri_kafka_set_all(conf, c->rdk_names, c->rdk_values, c->rdk_count,
			      errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		return MR_ECONFIG;
	}
	*out = conf;
	return MR_OK;
}

int
mri_publisher_new(struct mri_publisher          **out,
		  const struct mri_publisher_conf *conf, char *errstr,
		  size_t errstr_size)
{
	struct mri_publisher *p;
	rd_kafka_conf_t      *kc;
	int                   rc;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	pthread_mutex_init(&p->dlock, NULL);
	pthread_mutex_init(&p->cfg_lock, NULL);
	pthread_mutex_init(&p->wlock, NULL);
	mri_cond_init(&p->wcond);
	p->dedupe_window_ms = conf->dedupe_window_ms;
	mri_publisher_set_envelope(p, conf->ce_source, conf->ce_type);
	atomic_store(&p->lean, conf->envelope_lean);
	if (conf->dedupe_window_ms > 0 &&
	    mri_dedupe_new(&p->dedupe, conf->dedupe_window_ms,
			   conf->dedupe_max_entries) != MR_OK) {
		snprintf(errstr, errstr_size, "out of memory");
		mri_publisher_free(p);
		return MR_ENOMEM;
	}
	if ((rc = publish__kafka_conf(conf, &kc, errstr, errstr_size)) !=
	    MR_OK) {
		mri_publisher_free(p);
		return rc;
	}
	rc = mri_producer_new(&p->prod, kc, publish__on_report, p, errstr,
			      errstr_size);
	if (rc != MR_OK) {
		rd_kafka_conf_destroy(kc);
		mri_publisher_free(p);
		return rc;
	}
	*out = p;
	return MR_OK;
}

/* Wait up to \p timeout_ms for every submitted batch to be done. */
static bool
publish__wait(struct mri_publisher *p, int timeout_ms)
{
	uint64_t deadline = mri_deadline_in((uint64_t)timeout_ms);
	bool     idle;

	atomic_fetch_add(&p->drainers, 1);
	pthread_mutex_lock(&p->wlock);
	while (atomic_load(&p->inflight) > 0 &&
	       mri_cond_wait_until(&p->wcond, &p->wlock, deadline) == 0)
		;
	idle = atomic_load(&p->inflight) == 0;
	pthread_mutex_unlock(&p->wlock);
	atomic_fetch_sub(&p->drainers, 1);
	return idle;
}

bool
mri_publisher_drain(struct mri_publisher *p, int timeout_ms)
{
	if (publish__wait(p, timeout_ms))
		return true;
	mri_publisher_purge(p);
	publish__wait(p, PUBLISH__PURGE_WAIT_MS);
	return false;
}

void
mri_publisher_purge(struct mri_publisher *p)
{
	mri_producer_purge(p->prod);
}

void
mri_publisher_free(struct mri_publisher *p)
{
	if (p == NULL)
		return;
	if (p->prod != NULL) {
		mri_publisher_drain(p, 0);
		mri_producer_free(p->prod);
	}
	mri_dedupe_free(p->dedupe);
	pthread_cond_destroy(&p->wcond);
	pthread_mutex_destroy(&p->wlock);
	pthread_mutex_destroy(&p->cfg_lock);
	pthread_mutex_destroy(&p->dlock);
	free(p);
}

void
mri_publisher_set_envelope(struct mri_publisher *p, const char *source,
			   const char *type)
{
	pthread_mutex_lock(&p->cfg_lock);
	snprintf(p->ce_source, sizeof(p->ce_source), "%s",
		 source ? source : "");
	snprintf(p->ce_type, sizeof(p->ce_type), "%s", type ? type : "");
	pthread_mutex_unlock(&p->cfg_lock);
}

void
mri_publisher_set_lean(struct mri_publisher *p, bool lean)
{
	atomic_store(&p->lean, lean);
}

void
mri_publisher_stats(struct mri_publisher *p, struct mri_publisher_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->confirmed  = atomic_load(&p->confirmed);
	st->failed     = atomic_load(&p->failed);
	st->duplicates = atomic_load(&p->duplicates);
	mri_producer_stats(p->prod, &st->producer);
	st->dedupe_enabled   = p->dedupe != NULL;
	st->dedupe_window_ms = p->dedupe_window_ms;
	if (p->dedupe != NULL) {
		pthread_mutex_lock(&p->dlock);
		mri_dedupe_stats(p->dedupe, &st->dedupe);
		pthread_mutex_unlock(&p->dlock);
	}
}

struct mri_producer *
mri_publisher_producer(struct mri_publisher *p)
{
	return p->prod;
}
