/*
 * What consumers/engine.c (the core: partitions, keys, sessions, fetch,
 * ack, the committed prefix, stats) and consumers/engine_retry.c (failed
 * attempts: the backoff heap, exhaustion, quarantine, the limit) share:
 * the engine's state, its list and slot helpers, and the calls one file
 * makes into the other. Not API: see engine.h.
 */
#ifndef MRI_ENGINE_INTERNAL_H
#define MRI_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumers/engine.h"

/*
 * A record's life: WAITING (buffered; on the ready list when it may go
 * out) -> INFLIGHT (a session's) -> ACKED; a failed attempt makes it
 * BACKOFF (on the heap until its delay ends, then WAITING again) or, when
 * its attempts are spent, EXHAUSTED (on the exhausted list) ->
 * QUARANTINE (the caller's) -> ACKED, or BACKOFF if the quarantine failed.
 * Until ACKED it stays the head of its key. An acked record is freed at
 * once: beyond its partition's acked prefix only its offset is kept, in
 * a run of consecutive ones (part.beyond), so that records acked behind
 * one that waits (a poisoned key backing off) do not count against
 * max_buffered.
 */
enum rec_state {
	REC_WAITING,
	REC_INFLIGHT,
	REC_ACKED,
	REC_BACKOFF,
	REC_EXHAUSTED,
	REC_QUARANTINE,
};

struct keyq;
struct part;

struct rec {
	struct rec  *pprev, *pnext; /* partition list, offset order */
	struct rec  *knext;        /* key queue, offset order */
	struct rec  *lprev, *lnext; /* the ready list or a session's */
	struct keyq *kq;           /* NULL: not ordered */
	struct part *part;
	void        *opaque;
	int64_t      offset;
	uint64_t     deadline; /* INFLIGHT: its ack deadline; BACKOFF: due */
	uint32_t     idx; /* slot: handle = gen << 32 | idx */
	uint32_t     attempt;
	uint32_t     sid;
	uint32_t     hidx;   /* BACKOFF: its place in the heap */
	uint8_t      state;
	uint8_t      listed; /* on the ready, exhausted or a session's list */
	uint8_t      final;  /* rejected: exhausted whatever its attempts */
};

struct keyq {
	struct keyq *hnext;
	struct rec  *head, *tail;
	int32_t      partition;
	uint64_t     key;
	size_t       count;
};

struct beyond_run;

struct part {
	int32_t     id;
	struct rec *head, *tail; /* the records not acked */
	size_t      count;
	size_t      inflight;    /* of count, handed out */
	int64_t     next_commit; /* one past the acked prefix */
	int64_t     last;        /* the last offset that arrived */
	int64_t    *acked;       /* acked beyond the start, from assign */
	size_t      n_acked;
	size_t      acked_pos;
	// The offsets that arrived and were acked beyond the acked prefix,
	// as runs [first, end), ascending, not touching, from
	// beyond[beyond_pos] to beyond[n_beyond - 1]; beyond_offs offsets
	// in all.
	struct beyond_run *beyond;
	size_t             beyond_pos, n_beyond, beyond_cap, beyond_offs;
};

struct beyond_run {
	int64_t first, end;
};

/* Acked offsets kept beyond a partition's acked prefix, at most: past it
 * the partition is full (in runs of consecutive offsets, 16 bytes each;
 * max_buffered is the other bound). */
#define ENGINE__BEYOND_MAX ((size_t)1 << 20)

struct list {
	struct rec *head, *tail;
	size_t      count;
};

struct session {
	struct list inflight;
	bool        open;
};

struct mri_engine {
	struct mri_engine_conf conf;
	struct part          **parts; /* by partition number */
	size_t                 nparts;
	struct keyq          **kbuckets;
	size_t                 nkbuckets;
	size_t                 nkq;
	struct rec           **slots;
	uint32_t              *gens;
	uint32_t              *free_slots;
	size_t                 nslots, nfree;
	struct list            ready;
	struct list            exhausted;
	struct rec           **heap; /* BACKOFF records, earliest due first */
	size_t                 nheap, heap_cap;
	struct session        *sessions;
	size_t                 nsessions; /* slots of sessions[] */
	size_t                 open;      /* sessions open: the one count */
	size_t                 buffered;
	size_t                 inflight;
	// No ack deadline in flight is before it (a bound, lowered as
	// deadlines are set): a tick before it has nothing to expire.
	uint64_t               due;
	size_t                 limit; /* in flight over all sessions */
	size_t                 quarantining;
	uint64_t               acked, failed, expired;
	uint64_t               rng; /* the jitter's draws */
	mri_engine_fail_fn     observer;
	void                  *observer_arg;
};

/* ---- lists ------------------------------------------------------------- */

static inline void
engine__list_push(struct list *l, struct rec *r)
{
	r->lnext = NULL;
	r->lprev = l->tail;
	if (l->tail)
		l->tail->lnext = r;
	else
		l->head = r;
	l->tail  = r;
	r->listed = 1;
	l->count++;
}

static inline void
engine__list_remove(struct list *l, struct rec *r)
{
	if (r->lprev)
		r->lprev->lnext = r->lnext;
	else
		l->head = r->lnext;
	if (r->lnext)
		r->lnext->lprev = r->lprev;
	else
		l->tail = r->lprev;
	r->lprev = r->lnext = NULL;
	r->listed           = 0;
	l->count--;
}

/* ---- slots and handles ------------------------------------------------- */

static inline uint64_t
engine__handle(const struct mri_engine *e, const struct rec *r)
{
	return ((uint64_t)e->gens[r->idx] << 32) | r->idx;
}

/* Every change of a record's state makes its old handles stale. */
static inline void
engine__stale(struct mri_engine *e, struct rec *r)
{
	e->gens[r->idx]++;
}

/* @returns the record of \p handle if it is in \p state, else NULL. */
static inline struct rec *
engine__lookup_in(const struct mri_engine *e, uint64_t handle,
		  enum rec_state state)
{
	uint32_t    idx = (uint32_t)handle;
	struct rec *r;

	if (idx >= e->nslots || (r = e->slots[idx]) == NULL)
		return NULL;
	if (e->gens[idx] != (uint32_t)(handle >> 32) || r->state != state)
		return NULL;
	return r;
}

/* ---- records ----------------------------------------------------------- */

/* Its attempts are spent (or it was rejected): it is exhausted, not handed
 * out. */
static inline bool
engine__spent(const struct mri_engine *e, const struct rec *r)
{
	return r->final || (e->conf.retry.max_attempts > 0 &&
			    r->attempt >= e->conf.retry.max_attempts);
}

/* What a delivery of in-flight record \p r is, by handle \p h. */
static inline void
engine__delivery(const struct rec *r, uint64_t h, struct mri_delivery *d)
{
	d->handle    = h;
	d->partition = r->part->id;
	d->offset    = r->offset;
	d->attempt   = r->attempt;
	d->opaque    = r->opaque;
}

/* ---- engine.c ---------------------------------------------------------- */

/** @brief Record \p r (WAITING), at the head of its key (or unordered),
 *         goes on the ready list, or on the exhausted one when its
 *         attempts are spent; listed or in another state, nothing. */
void engine__ready(struct mri_engine *e, struct rec *r);

/** @brief Record \p r (neither listed nor on the heap) is acked: its key
 *         goes on and its partition's acked prefix may grow. */
void engine__acked(struct mri_engine *e, struct rec *r);

/* ---- engine_retry.c ---------------------------------------------------- */

/** @brief Take BACKOFF record \p r off the heap (its state is left). */
void engine__heap_remove(struct mri_engine *e, struct rec *r);

/** @brief An in-flight record's attempt failed (\p why): the observer is
 *         told, and it backs off, or is exhausted (it is still the head of
 *         its key, so nothing after it went out meanwhile). */
void engine__requeue(struct mri_engine *e, struct rec *r, uint64_t now,
		     enum mri_engine_fail why);

/** @brief The records whose backoff ended by \p now are WAITING again,
 *         and ready. */
void engine__backoff_end(struct mri_engine *e, uint64_t now);

#endif
