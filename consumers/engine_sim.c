/*
 * The model of engine_sim_test.c: its bookkeeping, the retries and what
 * may go out (see engine_sim.h); the checks after every step are in
 * engine_sim_check.c.
 */
#include "consumers/engine_sim.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

uint64_t sim__seed;
bool     sim__trace;
bool     sim__loose;

const char *const sim__st_names[] = {
    "not arrived", "waiting",     "in flight",        "acked",
    "arrived acked", "backing off", "being quarantined"};

const char *const sim__why_names[] = {"nacked", "rejected", "expired",
				      "abandoned"};

/* ---- randomness ------------------------------------------------------ */

uint64_t
sim__mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t
sim__rand(struct sim *s, uint64_t n)
{
	s->rng = sim__mix(s->rng);
	return n == 0 ? 0 : s->rng % n;
}

/* ---- reporting ------------------------------------------------------- */

void
sim__ev(struct sim *s, const char *fmt, ...)
{
	char   *line = s->trail[s->ntrail++ % SIM_TRAIL];
	int     k    = snprintf(line, sizeof(s->trail[0]), "#%u t=%llu ",
				s->step, (unsigned long long)s->now);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + k, sizeof(s->trail[0]) - (size_t)k, fmt, ap);
	va_end(ap);
	if (sim__trace)
		printf("  %s\n", line);
}

void
sim__fail(struct sim *s, int line, const char *fmt, ...)
{
	const struct mri_retry *rt = &s->conf.retry;
	char                    msg[512];
	size_t  n = s->ntrail < SIM_TRAIL ? s->ntrail : SIM_TRAIL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nengine sim FAILED (line %d): %s\n"
		"  mode %s, seed %llu, schedule %u, step %u; conf: %d "
		"partitions, max_buffered %u, credit %u, deadline %llu%s\n"
		"  retry: max_attempts %u, backoff %llu..%llu ms, multiplier "
		"%g, jitter %g\n"
		"  repeat: MR_SIM_SEED=%llu MR_SIM_SCHEDULE=%u\n"
		"  the last %zu events:\n",
		line, msg, s->mode, (unsigned long long)sim__seed, s->sched,
		s->step, s->np, s->conf.max_buffered, s->conf.session_credit,
		(unsigned long long)s->conf.ack_deadline_ms,
		s->commit_always ? ", commit after every step" : "",
		rt->max_attempts, (unsigned long long)rt->backoff_initial_ms,
		(unsigned long long)rt->backoff_max_ms, rt->multiplier,
		rt->jitter, (unsigned long long)sim__seed, s->sched, n);
	for (size_t i = s->ntrail - n; i < s->ntrail; i++)
		fprintf(stderr, "    %s\n", s->trail[i % SIM_TRAIL]);
	fflush(stderr);
	ck_abort_msg("engine sim: seed %llu, mode %s, schedule %u, step %u: "
		     "%s",
		     (unsigned long long)sim__seed, s->mode, s->sched, s->step,
		     msg);
	abort(); // not reached
}

/* ---- the model ------------------------------------------------------- */

void *
sim__opaque(int32_t p, int64_t offset)
{
	return (void *)(uintptr_t)(((uint64_t)(uint32_t)p << 40) |
				   (uint64_t)(offset + 1));
}

bool
sim__is_acked(const struct sim_rec *r)
{
	return r->st == SIM_ACKED || r->st == SIM_PREACKED;
}

bool
sim__spent(const struct sim *s, const struct sim_rec *r)
{
	uint32_t max = s->conf.retry.max_attempts;

	return r->rejected || (max > 0 && r->attempts >= max);
}

size_t
sim__find(const struct sim_part *pt, int64_t offset)
{
	size_t lo = 0, hi = pt->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pt->rec[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < pt->n && pt->rec[lo].offset == offset ? lo : SIZE_MAX;
}

void
sim__stale_push(struct sim *s, uint64_t handle)
{
	if (s->nstale < SIM_STALE)
		s->stale[s->nstale++] = handle;
	else
		s->stale[sim__rand(s, SIM_STALE)] = handle;
}

void
sim__flight_drop(struct sim *s, size_t i, enum sim_st st)
{
	struct sim_flight *f = &s->fl[i];

	s->part[f->p].rec[f->idx].st = (uint8_t)st;
	s->used[f->sid]--;
	sim__stale_push(s, f->handle);
	s->fl[i] = s->fl[--s->nfl];
}

void
sim__quarantine_drop(struct sim *s, size_t i)
{
	sim__stale_push(s, s->qu[i].handle);
	s->qu[i] = s->qu[--s->nqu];
}

void
sim__store(struct sim *s, int32_t p, int64_t commit, const int64_t *kept,
	   size_t nkept)
{
	struct sim_part *pt = &s->part[p];

	SIM_CHECK(s, commit >= pt->committed,
		  "p%d: commit %lld goes back from %lld", p, (long long)commit,
		  (long long)pt->committed);
	for (; pt->cidx < pt->n && pt->rec[pt->cidx].offset < commit;
	     pt->cidx++)
		SIM_CHECK(s, pt->rec[pt->cidx].acked_ever,
			  "(a) p%d: commit %lld passes offset %lld, never "
			  "acked",
			  p, (long long)commit,
			  (long long)pt->rec[pt->cidx].offset);
	for (size_t i = 0; i < nkept; i++) {
		size_t idx = sim__find(pt, kept[i]);

		SIM_CHECK(s, kept[i] >= commit &&
				     (i == 0 || kept[i] > kept[i - 1]),
			  "p%d: kept offsets not ascending beyond %lld", p,
			  (long long)commit);
		SIM_CHECK(s, idx != SIZE_MAX && pt->rec[idx].acked_ever,
			  "p%d: offset %lld kept as acked but never acked", p,
			  (long long)kept[i]);
		pt->rec[idx].kept = true;
	}
	pt->committed = commit;
	memcpy(pt->kept, kept, nkept * sizeof(*kept));
	pt->nkept = nkept;
	s->tot.commits++;
}

void
sim__epoch_end(struct sim *s, int32_t p)
{
	struct sim_part *pt = &s->part[p];

	for (size_t i = 0; i < pt->n; i++) {
		struct sim_rec *r = &pt->rec[i];

		s->tot.dropped_retrying +=
		    r->st == SIM_BACKOFF || r->st == SIM_QUARANTINE ||
		    (r->st == SIM_WAIT && sim__spent(s, r));
		r->st        = SIM_NONE;
		r->listed    = false;
		r->delivered = false;
		r->rejected  = false;
	}
	pt->assigned = false;
}

void
sim__assign(struct sim *s, int32_t p)
{
	struct sim_part *pt = &s->part[p];
	int              rc;

	rc = mri_engine_assign(s->e, p, pt->committed, pt->kept, pt->nkept);
	SIM_CHECK(s, rc == MR_OK, "assign p%d: %d", p, rc);
	sim__ev(s, "assign p%d from %lld, %zu kept", p,
		(long long)pt->committed, pt->nkept);
	pt->assigned = true;
	pt->start    = pt->committed;
	for (pt->first = 0; pt->first < pt->n &&
			    pt->rec[pt->first].offset < pt->start;
	     pt->first++)
		;
	pt->pos         = pt->first;
	pt->acked_to    = pt->first;
	pt->last_commit = pt->start;
	for (size_t k = 0; k <= SIM_KEYS; k++)
		pt->first_order[k] = -1;
	for (size_t i = 0; i < pt->nkept; i++)
		pt->rec[sim__find(pt, pt->kept[i])].listed = true;
}

/* ---- retries --------------------------------------------------------- */

void
sim__observe(void *arg, const struct mri_delivery *d,
	     enum mri_engine_fail why)
{
	struct sim *s = arg;

	if (s->nobs == SIM_MAXFLIGHT) {
		s->obs_overflow = true;
		return;
	}
	s->obs[s->nobs++] = (struct sim_obs){
	    .handle  = d->handle,
	    .offset  = d->offset,
	    .p       = d->partition,
	    .attempt = d->attempt,
	    .why     = why,
	};
}

/*
 * The bounds of the delay after failed attempt \p n, as struct mri_retry
 * states it: min(max, initial * multiplier^(n-1)) times a factor in
 * [1 - jitter, 1 + jitter], to the nearest ms (with a margin for the
 * floating point); at least SIM_QUARANTINE_RETRY_MS after a quarantine
 * failed.
 */
static void
sim__delay(const struct sim *s, uint32_t n, bool quarantine, uint64_t *lo,
	   uint64_t *hi)
{
	const struct mri_retry *rt   = &s->conf.retry;
	double                  base = (double)rt->backoff_initial_ms, a, b;

	*lo = *hi = 0;
	if (rt->backoff_initial_ms > 0) {
		for (uint32_t k = 1; k < n && base < rt->backoff_max_ms; k++)
			base *= rt->multiplier;
		if (base > (double)rt->backoff_max_ms)
			base = (double)rt->backoff_max_ms;
		a   = (1.0 - rt->jitter) * base + 0.5 - 1e-6;
		b   = (1.0 + rt->jitter) * base + 0.5 + 1e-6;
		*lo = a > 0 ? (uint64_t)a : 0;
		*hi = (uint64_t)b;
	}
	if (quarantine) {
		*lo = *lo < SIM_QUARANTINE_RETRY_MS ? SIM_QUARANTINE_RETRY_MS
						    : *lo;
		*hi = *hi < SIM_QUARANTINE_RETRY_MS ? SIM_QUARANTINE_RETRY_MS
						    : *hi;
	}
}

void
sim__backoff(struct sim *s, struct sim_rec *r, bool quarantine)
{
	uint64_t lo, hi;

	sim__delay(s, r->attempts, quarantine, &lo, &hi);
	if (hi == 0) {
		r->st = SIM_WAIT; // no delay: ready (or exhausted) at once
		return;
	}
	r->st        = SIM_BACKOFF;
	r->failed_at = s->now;
	r->due_lo    = s->now + lo;
	r->due_hi    = s->now + hi;
	s->tot.backoffs++;
}

void
sim__flight_failed(struct sim *s, size_t i, enum mri_engine_fail why)
{
	struct sim_flight     f = s->fl[i];
	struct sim_rec       *r = &s->part[f.p].rec[f.idx];
	const struct sim_obs *o;
	size_t                k;

	for (k = 0; k < s->nobs && s->obs[k].handle != f.handle; k++)
		;
	SIM_CHECK(s, k < s->nobs,
		  "(l) p%d@%lld attempt %u failed (%s), the observer was not "
		  "told",
		  f.p, (long long)r->offset, r->attempts,
		  sim__why_names[why]);
	o = &s->obs[k];
	SIM_CHECK(s, o->why == why && o->p == f.p && o->offset == r->offset &&
			     o->attempt == r->attempts,
		  "(l) p%d@%lld attempt %u failed (%s), the observer was told "
		  "p%d@%lld attempt %u %s",
		  f.p, (long long)r->offset, r->attempts, sim__why_names[why],
		  o->p, (long long)o->offset, o->attempt,
		  sim__why_names[o->why]);
	s->obs[k] = s->obs[--s->nobs];
	s->failed++;
	if (why == MRI_ENGINE_REJECTED)
		r->rejected = true;
	sim__flight_drop(s, i, SIM_WAIT);
	if (!sim__spent(s, r))
		sim__backoff(s, r, false);
}

/* ---- what may go out ------------------------------------------------- */

static uint64_t
sim__seen_at(const struct sim *s, const struct sim_rec *r)
{
	// The engine makes a record due by then ready at the last tick, or
	// at once when its delay was 0.
	return r->failed_at > s->tick_at ? r->failed_at : s->tick_at;
}

static bool
sim__ordered(const struct sim *s, const struct sim_rec *r)
{
	return s->conf.order == MRI_ORDER_PARTITION ||
	       (s->conf.order == MRI_ORDER_KEY && !r->keyless);
}

void
sim__scan(struct sim *s)
{
	struct sim_scan *c = &s->scan;

	c->ready = c->exhausted = c->backoff = c->quarantining = 0;
	c->nmaybe[0] = c->nmaybe[1] = 0;
	c->min_lo = c->min_hi_sure = UINT64_MAX;
	for (int32_t p = 0; p < s->np; p++) {
		struct sim_part *pt                 = &s->part[p];
		bool             seen[SIM_KEYS + 1] = {false};

		if (!pt->assigned)
			continue;
		for (size_t i = pt->acked_to; i < pt->pos; i++) {
			struct sim_rec *r = &pt->rec[i];
			size_t slot = s->conf.order == MRI_ORDER_PARTITION
					      ? 0
					      : r->key;
			bool head = !sim__ordered(s, r) || !seen[slot];
			struct sim_ref ref = {p, i};
			bool           spent;

			if (sim__is_acked(r))
				continue;
			if (sim__ordered(s, r))
				seen[slot] = true;
			SIM_CHECK(s, head || r->st == SIM_WAIT,
				  "model: p%d@%lld is %s, not the head of its "
				  "key",
				  p, (long long)r->offset,
				  sim__st_names[r->st]);
			spent = sim__spent(s, r);
			if (r->st == SIM_BACKOFF) {
				uint64_t at = sim__seen_at(s, r);

				if (r->due_hi <= at) {
					r->st = SIM_WAIT;
				} else if (r->due_lo > at) {
					c->sure[c->backoff++] = ref;
					if (r->due_hi < c->min_hi_sure)
						c->min_hi_sure = r->due_hi;
				} else {
					c->maybe[spent][c->nmaybe[spent]++] =
					    ref;
				}
				if (r->st == SIM_BACKOFF &&
				    r->due_lo < c->min_lo)
					c->min_lo = r->due_lo;
			}
			if (r->st == SIM_WAIT && head) {
				if ((spent ? c->exhausted : c->ready) == 0)
					c->first[spent] = ref;
				if (spent)
					c->exhausted++;
				else
					c->ready++;
			}
			c->quarantining += r->st == SIM_QUARANTINE;
		}
	}
}

struct sim_rec *
sim__ref(struct sim *s, struct sim_ref ref)
{
	return &s->part[ref.p].rec[ref.idx];
}

void
sim__settle(struct sim *s, int k, bool due)
{
	for (size_t i = 0; i < s->scan.nmaybe[k]; i++) {
		struct sim_rec *r = sim__ref(s, s->scan.maybe[k][i]);

		if (due)
			r->st = SIM_WAIT;
		else
			r->due_lo = sim__seen_at(s, r) + 1;
	}
	s->scan.nmaybe[k] = 0;
}

void
sim__nothing_left(struct sim *s, bool exhausted)
{
	int k = exhausted;

	sim__scan(s);
	if ((k ? s->scan.exhausted : s->scan.ready) > 0) {
		struct sim_ref ref = s->scan.first[k];

		SIM_CHECK(s, false,
			  "(i) p%d@%lld is %s but the %s left it (it could "
			  "take more)",
			  ref.p, (long long)sim__ref(s, ref)->offset,
			  k ? "exhausted" : "ready",
			  k ? "take" : "fetch");
	}
	sim__settle(s, k, false);
}

/* Record \p r of \p p backed off and was seen to be due: (h). */
static void
sim__due(struct sim *s, int32_t p, struct sim_rec *r, const char *what)
{
	uint64_t at = sim__seen_at(s, r);

	SIM_CHECK(s, s->now >= r->due_lo && r->due_lo <= at,
		  "(h) p%d@%lld %s at t=%llu before its due: backing off "
		  "since %llu, due in [%llu, %llu], last tick at %llu",
		  p, (long long)r->offset, what, (unsigned long long)s->now,
		  (unsigned long long)r->failed_at,
		  (unsigned long long)r->due_lo, (unsigned long long)r->due_hi,
		  (unsigned long long)s->tick_at);
	r->st = SIM_WAIT;
}

void
sim__pin(struct sim *s, uint64_t due)
{
	struct sim_scan *c   = &s->scan;
	struct sim_rec  *one = NULL;
	size_t           n   = 0;

	sim__scan(s);
	for (size_t i = 0; i < c->backoff; i++) {
		struct sim_rec *r = sim__ref(s, c->sure[i]);

		if (r->due_lo <= due && due <= r->due_hi) {
			one = r;
			n++;
		}
	}
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < c->nmaybe[k]; i++) {
			struct sim_rec *r = sim__ref(s, c->maybe[k][i]);

			if (r->due_lo <= due && due <= r->due_hi) {
				one = r;
				n++;
			}
		}
	}
	if (n == 1) {
		one->due_lo = one->due_hi = due;
		s->tot.pinned++;
	}
}

/* Record \p idx of \p p goes out (\p what): every earlier record of its
 * key (or partition) is acked, none is in flight or quarantined: (b),
 * (i). */
static void
sim__check_head(struct sim *s, int32_t p, size_t idx, const char *what)
{
	struct sim_part      *pt   = &s->part[p];
	const struct sim_rec *r    = &pt->rec[idx];
	size_t                slot = s->conf.order == MRI_ORDER_PARTITION
					     ? 0
					     : r->key;

	if (!sim__ordered(s, r))
		return;
	for (size_t i = pt->acked_to; i < idx; i++) {
		const struct sim_rec *o = &pt->rec[i];

		if (s->conf.order == MRI_ORDER_KEY &&
		    (o->keyless || o->key != r->key))
			continue;
		SIM_CHECK(s, sim__is_acked(o),
			  "(b) p%d@%lld %s while p%d@%lld of its %s is %s", p,
			  (long long)r->offset, what, p, (long long)o->offset,
			  slot ? "key" : "partition", sim__st_names[o->st]);
	}
	for (size_t i = 0; i < s->nfl + s->nqu; i++) {
		const struct sim_flight *f =
		    i < s->nfl ? &s->fl[i] : &s->qu[i - s->nfl];
		const struct sim_rec *o;

		if (f->p != p)
			continue;
		o = &pt->rec[f->idx];
		SIM_CHECK(s, slot != 0 && (o->keyless || o->key != r->key),
			  "(b) p%d@%lld %s while p%d@%lld of its %s is %s", p,
			  (long long)r->offset, what, p, (long long)o->offset,
			  slot ? "key" : "partition", sim__st_names[o->st]);
	}
}

/* The record of a delivery or a take: ours, arrived, never kept. */
static struct sim_rec *
sim__out_rec(struct sim *s, const struct mri_delivery *d, const char *what,
	     size_t *idx)
{
	struct sim_part *pt;
	struct sim_rec  *r;

	SIM_CHECK(s, d->partition >= 0 && d->partition < s->np &&
			     s->part[d->partition].assigned,
		  "%s p%d, not ours", what, d->partition);
	pt   = &s->part[d->partition];
	*idx = sim__find(pt, d->offset);
	SIM_CHECK(s, *idx != SIZE_MAX && *idx >= pt->first && *idx < pt->pos,
		  "%s p%d@%lld, never arrived", what, d->partition,
		  (long long)d->offset);
	r = &pt->rec[*idx];
	SIM_CHECK(s, !r->kept,
		  "(g) p%d@%lld was kept as acked with a commit, %s again",
		  d->partition, (long long)d->offset, what);
	SIM_CHECK(s, d->opaque == sim__opaque(d->partition, d->offset),
		  "p%d@%lld: wrong opaque", d->partition,
		  (long long)d->offset);
	if (r->st == SIM_BACKOFF)
		sim__due(s, d->partition, r, what);
	SIM_CHECK(s, r->st == SIM_WAIT, "%s p%d@%lld while %s", what,
		  d->partition, (long long)d->offset, sim__st_names[r->st]);
	sim__check_head(s, d->partition, *idx, what);
	for (size_t i = 0; i < s->nfl + s->nqu; i++)
		SIM_CHECK(s, (i < s->nfl ? s->fl[i] : s->qu[i - s->nfl])
					 .handle != d->handle,
			  "handle %llx handed out twice",
			  (unsigned long long)d->handle);
	return r;
}

void
sim__delivered(struct sim *s, uint32_t sid, const struct mri_delivery *d)
{
	struct sim_part *pt = &s->part[d->partition];
	struct sim_rec  *r;
	uint32_t         max = s->conf.retry.max_attempts;
	size_t           idx, slot;

	sim__ev(s, "  got p%d@%lld attempt %u h=%llx", d->partition,
		(long long)d->offset, d->attempt,
		(unsigned long long)d->handle);
	r = sim__out_rec(s, d, "handed out", &idx);
	SIM_CHECK(s, d->attempt == r->attempts + 1,
		  "(c) p%d@%lld: attempt %u after %u", d->partition,
		  (long long)d->offset, d->attempt, r->attempts);
	SIM_CHECK(s, !sim__spent(s, r) && (max == 0 || d->attempt <= max),
		  "(j) p%d@%lld handed out for attempt %u of %u%s",
		  d->partition, (long long)d->offset, d->attempt, max,
		  r->rejected ? ", rejected" : "");
	slot = s->conf.order == MRI_ORDER_PARTITION ? 0 : r->key;
	if (sim__ordered(s, r) && !r->delivered) {
		SIM_CHECK(s, d->offset > pt->first_order[slot],
			  "(b) p%d: first deliveries of %s %zu out of "
			  "order: %lld after %lld",
			  d->partition, slot ? "key" : "partition", slot,
			  (long long)d->offset,
			  (long long)pt->first_order[slot]);
		pt->first_order[slot] = d->offset;
	}
	SIM_CHECK(s, s->nfl < SIM_MAXFLIGHT && sid < SIM_MAXSID,
		  "model too small");

	s->tot.deliveries++;
	s->tot.redeliveries += r->delivered || r->attempts > 0;
	if (d->attempt > s->tot.max_attempt)
		s->tot.max_attempt = d->attempt;
	r->delivered = true;
	r->attempts  = d->attempt; // persisted before the consumer sees it
	r->st        = SIM_INFLIGHT;
	s->fl[s->nfl++] = (struct sim_flight){
	    .handle   = d->handle,
	    .deadline = s->now + s->conf.ack_deadline_ms,
	    .idx      = idx,
	    .p        = d->partition,
	    .sid      = sid,
	};
	s->used[sid]++;
	SIM_CHECK(s, s->used[sid] <= s->conf.session_credit,
		  "(d) session %u holds %u, credit %u", sid, s->used[sid],
		  s->conf.session_credit);
}

void
sim__taken(struct sim *s, const struct mri_delivery *d)
{
	struct sim_rec *r;
	size_t          idx;

	sim__ev(s, "  quarantine p%d@%lld attempt %u h=%llx", d->partition,
		(long long)d->offset, d->attempt,
		(unsigned long long)d->handle);
	r = sim__out_rec(s, d, "taken for quarantine", &idx);
	SIM_CHECK(s, sim__spent(s, r) && d->attempt == r->attempts,
		  "(j) p%d@%lld taken for quarantine with attempt %u, after "
		  "%u of %u%s",
		  d->partition, (long long)d->offset, d->attempt, r->attempts,
		  s->conf.retry.max_attempts,
		  r->rejected ? ", rejected" : "");
	SIM_CHECK(s, s->nqu < SIM_MAXFLIGHT, "model too small");
	r->st           = SIM_QUARANTINE;
	s->qu[s->nqu++] = (struct sim_flight){
	    .handle = d->handle,
	    .idx    = idx,
	    .p      = d->partition,
	};
	s->tot.taken++;
}
