/*
 * The delivery engine's failed attempts (engine.h): the backoff heap,
 * mri_engine_backoff and its jitter's generator, a failed attempt backed
 * off or exhausted (engine__requeue, with the observer told), the
 * exhausted records taken for quarantine and settled, and the limit on
 * what is in flight (the breaker's). The core is in engine.c; the state
 * both share is in engine_internal.h.
 */
#include "engine.h"

#include <stdlib.h>

#include "consumers/engine_internal.h"
#include "mailroom/error.h"

/* The least delay before a record whose quarantine failed is taken again. */
#define ENGINE__QUARANTINE_RETRY_MS 100

/* ---- the backoff heap -------------------------------------------------- */

static void
heap_set(struct mri_engine *e, size_t i, struct rec *r)
{
	e->heap[i] = r;
	r->hidx    = (uint32_t)i;
}

static void
heap_up(struct mri_engine *e, size_t i)
{
	struct rec *r = e->heap[i];

	while (i > 0 && e->heap[(i - 1) / 2]->deadline > r->deadline) {
		heap_set(e, i, e->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(e, i, r);
}

static void
heap_down(struct mri_engine *e, size_t i)
{
	struct rec *r = e->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= e->nheap)
			break;
		if (c + 1 < e->nheap &&
		    e->heap[c + 1]->deadline < e->heap[c]->deadline)
			c++;
		if (e->heap[c]->deadline >= r->deadline)
			break;
		heap_set(e, i, e->heap[c]);
		i = c;
	}
	heap_set(e, i, r);
}

static int
heap_push(struct mri_engine *e, struct rec *r)
{
	if (e->nheap == e->heap_cap) {
		size_t       n = e->heap_cap ? e->heap_cap * 2 : 64;
		struct rec **h = realloc(e->heap, n * sizeof(*h));

		if (h == NULL)
			return MR_ENOMEM;
		e->heap     = h;
		e->heap_cap = n;
	}
	heap_set(e, e->nheap++, r);
	heap_up(e, e->nheap - 1);
	return MR_OK;
}

void
engine__heap_remove(struct mri_engine *e, struct rec *r)
{
	size_t      i = r->hidx;
	struct rec *m;

	if (--e->nheap == i)
		return;
	m = e->heap[e->nheap];
	heap_set(e, i, m);
	heap_down(e, i);
	heap_up(e, m->hidx);
}

/* ---- failed attempts --------------------------------------------------- */

/* splitmix64: the jitter's draws, from the seed. */
static uint64_t
engine__rand(struct mri_engine *e)
{
	uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t
mri_engine_backoff(struct mri_engine *e, uint32_t attempt)
{
	const struct mri_retry *rt = &e->conf.retry;
	double                  d  = (double)rt->backoff_initial_ms;

	if (rt->backoff_initial_ms == 0)
		return 0;
	for (uint32_t i = 1; i < attempt && d < (double)rt->backoff_max_ms; i++)
		d *= rt->multiplier;
	if (d > (double)rt->backoff_max_ms)
		d = (double)rt->backoff_max_ms;
	if (rt->jitter > 0) {
		double u = (double)(engine__rand(e) >> 11) * 0x1.0p-53;

		d *= 1.0 - rt->jitter + 2.0 * rt->jitter * u;
	}
	return (uint64_t)(d + 0.5);
}

/* Record \p r (WAITING, not listed) waits \p delay before it is ready;
 * 0: ready now. */
static void
engine__backoff(struct mri_engine *e, struct rec *r, uint64_t now,
		uint64_t delay)
{
	if (delay > 0) {
		r->state    = REC_BACKOFF;
		r->deadline = now + delay;
		if (heap_push(e, r) == MR_OK)
			return;
		r->state = REC_WAITING; // out of memory: retried at once
	}
	engine__ready(e, r);
}

void
mri_engine_observe(struct mri_engine *e, mri_engine_fail_fn fn, void *arg)
{
	e->observer     = fn;
	e->observer_arg = arg;
}

/* An in-flight record's attempt failed (\p why): the observer is told,
 * and it backs off, or is exhausted (it is still the head of its key, so
 * nothing after it went out meanwhile). */
void
engine__requeue(struct mri_engine *e, struct rec *r, uint64_t now,
		enum mri_engine_fail why)
{
	engine__list_remove(&e->sessions[r->sid].inflight, r);
	e->inflight--;
	r->part->inflight--;
	e->failed++;
	if (why == MRI_ENGINE_EXPIRED)
		e->expired++;
	if (e->observer != NULL) {
		struct mri_delivery d;

		engine__delivery(r, engine__handle(e, r), &d);
		e->observer(e->observer_arg, &d, why);
	}
	engine__stale(e, r);
	r->state = REC_WAITING;
	if (why == MRI_ENGINE_REJECTED)
		r->final = 1;
	engine__backoff(e, r, now,
			engine__spent(e, r) ? 0
					    : mri_engine_backoff(e, r->attempt));
}

void
engine__backoff_end(struct mri_engine *e, uint64_t now)
{
	while (e->nheap > 0 && e->heap[0]->deadline <= now) {
		struct rec *r = e->heap[0];

		engine__heap_remove(e, r);
		r->state = REC_WAITING;
		engine__ready(e, r);
	}
}

uint64_t
mri_engine_next_due(const struct mri_engine *e)
{
	return e->nheap > 0 ? e->heap[0]->deadline : UINT64_MAX;
}

size_t
mri_engine_take_exhausted(struct mri_engine *e, struct mri_delivery *out,
			  size_t max)
{
	size_t n = 0;

	while (n < max && e->exhausted.head != NULL) {
		struct rec *r = e->exhausted.head;

		engine__list_remove(&e->exhausted, r);
		engine__stale(e, r);
		r->state = REC_QUARANTINE;
		e->quarantining++;
		engine__delivery(r, engine__handle(e, r), &out[n++]);
	}
	return n;
}

int
mri_engine_quarantined(struct mri_engine *e, uint64_t handle, bool ok,
		       uint64_t now_ms, void **opaque)
{
	struct rec *r = engine__lookup_in(e, handle, REC_QUARANTINE);
	uint64_t    delay;

	if (r == NULL)
		return MR_ENOENT;
	if (opaque != NULL)
		*opaque = r->opaque;
	e->quarantining--;
	if (ok) {
		engine__acked(e, r);
		return MR_OK;
	}
	// Taken again after its delay (never at once: a dead-letter topic
	// that refuses would be hammered).
	engine__stale(e, r);
	r->state = REC_WAITING;
	delay    = mri_engine_backoff(e, r->attempt);
	engine__backoff(e, r, now_ms, delay < ENGINE__QUARANTINE_RETRY_MS
					      ? ENGINE__QUARANTINE_RETRY_MS
					      : delay);
	return MR_OK;
}

void
mri_engine_set_limit(struct mri_engine *e, size_t limit)
{
	e->limit = limit;
}
