/*
 * A group's side that serves its users: FETCH (deliveries taken under the
 * group's lock, made a batch after it, answered once the journal has their
 * attempts), SETTLE (acks, nacks, extensions), sessions opening and
 * closing, and the stats. The group's thread and its life are in group.c,
 * what a rebalance does in group_rebalance.c, its records in group_rec.c.
 */
#include "group.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/group_internal.h"
#include "consumers/journal.h"
#include "core/clock.h"
#include "core/hist.h"
#include "core/log.h"
#include "mailroom/error.h"

/* Runs of a batch a record may extend, looking back from the last. */
#define GROUP__RUNS_BACK 8

/* ---- fetches --------------------------------------------------------- */

/* Take what waiter \p w may have: the deliveries only, each record held;
 * they are made a batch after the lock (group__complete). Called with the
 * lock held. @returns the number of deliveries. */
static size_t
group__fill(struct mri_group *g, struct group_waiter *w, uint64_t now)
{
	w->size = 0;
	while (!g->revoking && w->nds < w->f.max_msgs &&
	       w->size < w->f.max_size) {
		struct mri_delivery *d;
		struct group_rec    *r;

		if (w->nds == w->ds_cap) {
			size_t               nc = w->ds_cap ? w->ds_cap * 2 : 64;
			struct mri_delivery *a = realloc(w->ds, nc * sizeof(*a));

			if (a == NULL)
				break;
			w->ds     = a;
			w->ds_cap = nc;
		}
		d = &w->ds[w->nds];
		if (mri_engine_fetch(g->e, w->sid, now, d, 1) != 1)
			break;
		r = d->opaque;
		r->refs++;
		w->size += r->size;
		w->nds++;
	}
	if (w->nds > 0)
		g->batches++;
	return w->nds;
}

/* Serve the waiters that can be served; those done are moved to *done.
 * Called with the lock held. */
void
group__serve(struct mri_group *g, uint64_t now, struct group_waiter **done)
{
	struct group_waiter **pp = &g->waiters, *w;

	while ((w = *pp) != NULL) {
		// Draining: answered empty, nothing more handed out.
		if (g->draining || atomic_load(&g->stop) ||
		    group__fill(g, w, now) > 0 || now >= w->deadline) {
			*pp     = w->next;
			w->next = *done;
			*done   = w;
		} else {
			pp = &w->next;
		}
	}
}

/* Answer waiter \p w and release what it held. */
static void
group__waiter_end(struct group_waiter *w)
{
	struct mri_group *g = w->g;

	w->cb(w->arg, w->err, w->err == MR_OK ? &w->batch : NULL);
	if (w->nds > 0) {
		pthread_mutex_lock(&g->lock);
		for (size_t i = 0; i < w->nds; i++)
			group__rec_rele(w->ds[i].opaque);
		if (--g->batches == 0)
			pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->lock);
	}
	free(w->ds);
	free(w->out);
	free(w->runs);
	free(w);
}

/* Record in \p w's runs that \p r goes out at \p attempt: it extends
 * the run it follows (among the last few: a batch takes from a few
 * partitions in turn), or starts one. */
static void
group__run_add(struct group_waiter *w, const struct group_rec *r,
	       uint32_t attempt)
{
	int64_t o = r->offset;

	for (size_t i = w->nruns; i > 0 && i + GROUP__RUNS_BACK > w->nruns;
	     i--) {
		struct mri_journal_run *x = &w->runs[i - 1];

		if (x->part == r->part && x->attempt == attempt &&
		    x->first + x->count == o) {
			x->count++;
			return;
		}
	}
	w->runs[w->nruns++] =
	    (struct mri_journal_run){r->part, o, 1, attempt};
}

/* Make waiter \p w's batch outside the lock. A record whose id was acked
 * since it arrived (a publisher's retry, a second copy buffered with the
 * first) is acked here and left out. */
static void
group__batch(struct mri_group *g, struct group_waiter *w)
{
	bool   stack[256], *acked = NULL, any = false;
	size_t n = 0;

	if (w->nds == 0)
		return;
	if (g->j != NULL) {
		uint64_t *ids = malloc(w->nds * sizeof(*ids));

		acked = w->nds <= 256 ? stack : malloc(w->nds * sizeof(*acked));
		w->runs = malloc(w->nds * sizeof(*w->runs));
		if (ids != NULL && acked != NULL) {
			for (size_t i = 0; i < w->nds; i++)
				ids[i] = ((struct group_rec *)w->ds[i].opaque)->id;
			mri_journal_lookup(g->j, w->nds, 0, NULL, NULL, ids,
					   acked);
		} else if (acked != NULL) {
			memset(acked, 0, w->nds * sizeof(*acked));
		}
		free(ids);
	}
	if ((w->out = malloc(w->nds * sizeof(*w->out))) == NULL)
		w->err = MR_ENOMEM;
	for (size_t i = 0; i < w->nds && w->err == MR_OK; i++) {
		struct mri_delivery       *d = &w->ds[i];
		struct group_rec          *r = d->opaque;
		struct mri_group_delivery *o = &w->out[n];

		if (acked != NULL && acked[i]) {
			any = true;
			continue; // acked below, under the lock
		}
		group__deliv(r, o);
		o->handle  = d->handle;
		o->attempt = d->attempt;
		o->size    = r->size;
		w->batch.size += r->size;
		n++;
		if (w->runs != NULL)
			group__run_add(w, r, d->attempt);
	}
	w->batch.d = w->out;
	w->batch.n = n;
	if (w->err != MR_OK)
		w->nruns = 0;
	if (acked != NULL && (any || w->err != MR_OK)) {
		void *m;

		pthread_mutex_lock(&g->lock);
		for (size_t i = 0; i < w->nds; i++)
			if (acked[i] &&
			    mri_engine_ack(g->e, w->ds[i].handle, &m) == MR_OK)
				group__unring(g, m);
		pthread_mutex_unlock(&g->lock);
	}
	if (acked != stack)
		free(acked);
}

void
group__complete(struct mri_group *g, struct group_waiter *done)
{
	struct group_waiter *w;
	int                  rc;

	while ((w = done) != NULL) {
		done = w->next;
		group__batch(g, w);
		// Behind: the batch goes now, its record with the next write
		// (a settle's, as a rule) in one request.
		if (w->nruns > 0 &&
		    (rc = mri_journal_write_behind(g->j, w->runs, w->nruns)) !=
			MR_OK)
			mri_warn("component=consumer group=%s error=%s "
				 "msg=\"a dispatch record was not made: its "
				 "attempts count here, not after a restart\"",
				 g->name, mr_err_name(rc));
		group__waiter_end(w);
	}
}

int
mri_group_fetch(struct mri_group *g, uint32_t sid,
		const struct mri_group_fetch_req *f, mri_group_fetch_cb cb,
		void *arg)
{
	struct group_waiter *w = calloc(1, sizeof(*w)), *done = NULL, **pp;
	uint64_t             now = mri_mono_ms();

	if (w == NULL)
		return MR_ENOMEM;
	w->g        = g;
	w->sid      = sid;
	w->f        = *f;
	w->deadline = now + f->max_wait_ms;
	w->cb       = cb;
	w->arg      = arg;
	// Last in line: the first to ask is the first served, so that one
	// fetcher asking again at once does not take all from the others.
	pthread_mutex_lock(&g->lock);
	for (pp = &g->waiters; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = w;
	group__serve(g, now, &done);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
	return MR_OK;
}

/* ---- settles --------------------------------------------------------- */

/* A SETTLE whose acks are being written to the journal. */
struct group_settle {
	mri_group_settle_cb             cb;
	void                           *arg;
	struct mri_group_settle_fail   *fails;
	struct mri_group_settle_result  res;
};

static void
group__settled(void *arg, int err)
{
	struct group_settle *st = arg;

	st->cb(st->arg, err != MR_OK ? MR_EUNAVAIL : MR_OK, &st->res);
	free(st->fails);
	free(st);
}

/* The time from acked record \p r's timestamp to \p wall (ms) goes to
 * the ack latency histogram: 0 when the producer's clock is ahead of
 * ours, left out when the record has no timestamp. */
static void
group__ack_latency(struct mri_group *g, const struct group_rec *r,
		   int64_t wall)
{
	int64_t ts = r->ts;

	if (ts < 0)
		return;
	mri_hist_add(g->c.ack_latency, wall > ts ? (uint64_t)(wall - ts) : 0,
		     1);
}

/* Settle handle \p h as \p s says (a failed attempt is told to the
 * engine's observer); \p wall: now, for the ack latency (0: not
 * measured). Called with the lock held.
 * @returns MR_OK or why not. */
static int
group__settle_one(struct mri_group *g, const struct mri_group_settle_req *s,
		  uint64_t h, uint64_t now, int64_t wall,
		  struct mri_journal_entry *acked, size_t *na)
{
	void *m;
	int   rc;

	switch (s->kind) {
	case MRI_GROUP_ACK:
		if ((rc = mri_engine_ack(g->e, h, &m)) != MR_OK)
			return rc;
		if (wall > 0)
			group__ack_latency(g, m, wall);
		if (acked != NULL) {
			acked[*na].hash      = ((struct group_rec *)m)->id;
			acked[(*na)++].attempt = 0;
		}
		group__unring(g, m);
		return MR_OK;
	case MRI_GROUP_NACK:
		return mri_engine_nack(g->e, h, now, false);
	case MRI_GROUP_REJECT:
		// Without a supervisor to quarantine it, a reject is a nack.
		return mri_engine_nack(g->e, h, now,
				       g->hooks.on_exhausted != NULL);
	default:
		return mri_engine_extend(g->e, h, now, s->extend_ms);
	}
}

int
mri_group_settle(struct mri_group *g, const struct mri_group_settle_req *s,
		 mri_group_settle_cb cb, void *arg)
{
	struct mri_journal_entry *acked  = NULL;
	struct mri_journal_run   *reject = NULL;
	uint32_t                  cap    = 0;
	size_t                    na     = 0;
	struct group_waiter      *done   = NULL;
	struct group_fails        fails;
	struct group_settle      *st   = calloc(1, sizeof(*st));
	uint64_t                  now  = mri_mono_ms();
	int64_t                   wall = 0;
	int                       jrc  = MR_OK;

	if (st == NULL)
		return MR_ENOMEM;
	if (s->kind == MRI_GROUP_ACK && g->c.ack_latency != NULL)
		wall = mri_wall_ms();
	st->cb  = cb;
	st->arg = arg;
	if (g->j != NULL && s->kind == MRI_GROUP_ACK &&
	    (acked = malloc(s->handles * sizeof(*acked))) == NULL) {
		free(st);
		return MR_ENOMEM;
	}
	pthread_mutex_lock(&g->lock);
	for (uint32_t i = 0; i < s->nranges; i++) {
		const struct mri_group_range *r = &s->ranges[i];

		for (uint64_t h = r->first; h < r->first + r->count; h++) {
			struct mri_group_settle_fail *f;
			int rc = group__settle_one(g, s, h, now, wall,
						   acked, &na);

			if (rc == MR_OK) {
				st->res.settled++;
				continue;
			}
			if (st->res.nfailed == cap) {
				uint32_t nc = cap ? cap * 2 : 16;

				f = realloc(st->fails, nc * sizeof(*f));
				if (f == NULL)
					continue; // counted, not listed
				st->fails = f;
				cap       = nc;
			}
			st->fails[st->res.nfailed].handle   = h;
			st->fails[st->res.nfailed++].status = (uint16_t)rc;
		}
	}
	st->res.failed = st->fails;
	if (g->revoking)
		pthread_cond_broadcast(&g->cv); // in flight may have fallen
	if (s->kind != MRI_GROUP_EXTEND)
		group__serve(g, now, &done);
	group__fails_take(g, &fails);
	pthread_mutex_unlock(&g->lock);
	if (s->kind == MRI_GROUP_ACK && st->res.settled > 0)
		group__nudge(g);
	group__complete(g, done);
	// Rejects go to the journal as attempts with MRI_ENGINE_REJECTED,
	// so that after a restart the record is not retried; the settle is
	// answered once the journal has them, as acks are.
	if (s->kind == MRI_GROUP_REJECT && g->j != NULL &&
	    g->hooks.on_exhausted != NULL && fails.n > 0 &&
	    (reject = malloc(fails.n * sizeof(*reject))) != NULL)
		for (size_t i = 0; i < fails.n; i++) {
			const struct group_rec *r = fails.v[i].d.opaque;

			if (fails.v[i].why != MRI_ENGINE_REJECTED)
				continue;
			reject[na++] = (struct mri_journal_run){
			    r->part, r->offset, 1,
			    fails.v[i].d.attempt | MRI_ENGINE_REJECTED_BIT};
		}
	group__fails_fire(g, &fails, s->reason, s->reason_len);
	if (na > 0 && reject != NULL)
		jrc = mri_journal_write_runs(g->j, reject, na,
					     group__settled, st);
	else if (na > 0)
		jrc = mri_journal_write_linger(
		    g->j, MRI_JOURNAL_ACK, acked, na,
		    s->linger ? g->c.journal_linger_ms : 0, group__settled,
		    st);
	if (na == 0 || jrc != MR_OK)
		group__settled(st, na == 0 ? MR_OK : MR_EUNAVAIL);
	free(acked);
	free(reject);
	return MR_OK;
}

/* ---- quarantine and the breaker ------------------------------------- */

/* Called once Kafka confirmed or refused the ack of a quarantined record
 * in the journal: nothing waits for it. */
static void
group__quarantine_journaled(void *arg, int err)
{
	struct mri_group *g = arg;

	if (err != MR_OK)
		mri_warn("component=consumer group=%s msg=\"the journal did "
			 "not take a quarantined message's id: it may be "
			 "delivered again after a restart\"",
			 g->name);
}

int
mri_group_quarantined(struct mri_group *g, uint64_t handle, int err)
{
	struct group_waiter     *done = NULL;
	struct mri_journal_entry e    = {0, 0};
	uint64_t                 now  = mri_mono_ms();
	bool                     acked = false;
	void                    *m;
	int                      rc;

	pthread_mutex_lock(&g->lock);
	rc = mri_engine_quarantined(g->e, handle, err == MR_OK, now, &m);
	if (rc == MR_OK && err == MR_OK) {
		e.hash = ((struct group_rec *)m)->id;
		acked  = true;
		group__unring(g, m);
		if (g->revoking)
			pthread_cond_broadcast(&g->cv);
		group__serve(g, now, &done);
	}
	pthread_mutex_unlock(&g->lock);
	if (acked)
		group__nudge(g);
	group__complete(g, done);
	if (acked && g->j != NULL)
		mri_journal_write(g->j, MRI_JOURNAL_ACK, &e, 1,
				  group__quarantine_journaled, g);
	return rc;
}

void
mri_group_set_limit(struct mri_group *g, size_t limit)
{
	struct group_waiter *done = NULL;

	pthread_mutex_lock(&g->lock);
	mri_engine_set_limit(g->e, limit);
	group__serve(g, mri_mono_ms(), &done);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
}

/* ---- sessions -------------------------------------------------------- */

int
mri_group_session_open(struct mri_group *g, uint32_t *sid)
{
	int rc;

	pthread_mutex_lock(&g->lock);
	rc = mri_engine_session_open(g->e, sid);
	pthread_mutex_unlock(&g->lock);
	return rc;
}

void
mri_group_session_close(struct mri_group *g, uint32_t sid)
{
	struct group_waiter **pp, *w, *done = NULL;
	uint64_t              now = mri_mono_ms();
	struct group_fails    fails;
	size_t                held = 0;

	pthread_mutex_lock(&g->lock);
	for (pp = &g->waiters; (w = *pp) != NULL;) {
		if (w->sid == sid) {
			*pp         = w->next;
			w->deadline = 0;
			w->next     = done;
			done        = w;
		} else {
			pp = &w->next;
		}
	}
	mri_engine_session_close(g->e, sid, now);
	if (g->revoking)
		pthread_cond_broadcast(&g->cv);
	group__serve(g, now, &done);
	group__fails_take(g, &fails);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
	for (size_t i = 0; i < fails.n; i++)
		held += fails.v[i].why == MRI_ENGINE_ABANDONED;
	group__fails_fire(g, &fails, NULL, 0);
	if (held > 0 && g->hooks.on_abandoned != NULL)
		g->hooks.on_abandoned(g->hooks.arg, held);
}

/* ---- stats ----------------------------------------------------------- */

size_t
mri_group_stats(struct mri_group *g, struct mri_group_stats *out,
		struct mri_group_part_stats *parts, size_t max)
{
	struct mri_engine_stats es;
	size_t                  n = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g->lock);
	mri_engine_stats(g->e, &es);
	out->sessions = es.sessions;
	out->buffered = es.buffered;
	out->inflight = es.inflight;
	out->ready    = es.ready;
	out->backoff  = es.backoff;
	out->quarantining = es.exhausted + es.quarantining;
	out->acked    = es.acked;
	out->failed   = es.failed;
	out->expired  = es.expired;
	for (size_t i = 0; i < g->nparts; i++) {
		struct group_part           *p = &g->parts[i];
		struct mri_group_part_stats *ps;

		if (!p->used)
			continue;
		if (n++ >= max)
			continue;
		ps = &parts[n - 1];
		memset(ps, 0, sizeof(*ps));
		snprintf(ps->topic, sizeof(ps->topic), "%s", p->topic);
		ps->partition  = p->partition;
		ps->committed  = p->committed >= 0 ? p->committed : -1;
		ps->end_offset = -1;
		mri_engine_part_stats(g->e, (int32_t)i, &ps->buffered,
				      &ps->inflight);
		ps->bytes = p->bytes;
	}
	pthread_mutex_unlock(&g->lock);
	out->nparts  = n;
	out->dropped = (size_t)atomic_load(&g->dropped);
	out->stray   = atomic_load(&g->stray);
	out->joined  = atomic_load(&g->joined);
	out->acked_ids_max = g->j != NULL ? mri_journal_max_entries(g->j) : 0;
	// librdkafka's cached high watermarks, outside the group's lock:
	// this takes librdkafka's own locks and never waits on Kafka.
	for (size_t i = 0; i < n && i < max; i++) {
		int64_t lo, hi;

		if (rd_kafka_get_watermark_offsets(g->rk, parts[i].topic,
						   parts[i].partition, &lo,
						   &hi) == 0 &&
		    hi >= 0)
			parts[i].end_offset = hi;
	}
	return n;
}

bool
mri_group_joined(struct mri_group *g)
{
	return atomic_load(&g->joined);
}
