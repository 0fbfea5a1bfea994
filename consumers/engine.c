/*
 * The delivery engine's core (engine.h): partitions assigned and revoked,
 * records arriving in partition and key order, sessions, fetch (credits
 * and the limit), ack, nack, extend, expiry, the committed prefix and the
 * stats. What happens to a failed attempt (backoff, exhaustion,
 * quarantine) is in engine_retry.c; the state both share is in
 * engine_internal.h.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "consumers/engine_internal.h"
#include "mailroom/error.h"

/* ---- slots and handles ------------------------------------------------- */

static int
engine__slot_alloc(struct mri_engine *e, struct rec *r)
{
	if (e->nfree == 0) {
		size_t    n = e->nslots ? e->nslots * 2 : 1024;
		struct rec **s = realloc(e->slots, n * sizeof(*s));
		uint32_t *g, *f;

		if (s == NULL)
			return MR_ENOMEM;
		e->slots = s;
		if ((g = realloc(e->gens, n * sizeof(*g))) == NULL)
			return MR_ENOMEM;
		e->gens = g;
		if ((f = realloc(e->free_slots, n * sizeof(*f))) == NULL)
			return MR_ENOMEM;
		e->free_slots = f;
		for (size_t i = e->nslots; i < n; i++) {
			e->slots[i] = NULL;
			e->gens[i]  = 0;
			e->free_slots[e->nfree++] = (uint32_t)(n - 1 - (i - e->nslots));
		}
		e->nslots = n;
	}
	r->idx           = e->free_slots[--e->nfree];
	e->slots[r->idx] = r;
	return MR_OK;
}

static struct rec *
engine__lookup(const struct mri_engine *e, uint64_t handle)
{
	return engine__lookup_in(e, handle, REC_INFLIGHT);
}

static void
engine__rec_free(struct mri_engine *e, struct rec *r)
{
	engine__stale(e, r);
	e->slots[r->idx]            = NULL;
	e->free_slots[e->nfree++]   = r->idx;
	e->buffered--;
	free(r);
}

/* ---- key queues -------------------------------------------------------- */

static size_t
engine__kbucket(const struct mri_engine *e, int32_t p, uint64_t key)
{
	uint64_t h = (key ^ ((uint64_t)(uint32_t)p * 0x9e3779b97f4a7c15ULL)) *
		     0xff51afd7ed558ccdULL;

	return (size_t)(h >> 17) & (e->nkbuckets - 1);
}

static void
engine__kgrow(struct mri_engine *e)
{
	size_t        old = e->nkbuckets, n = old * 2;
	struct keyq **b   = calloc(n, sizeof(*b));
	struct keyq **ob  = e->kbuckets;

	if (b == NULL)
		return; // longer chains, still correct
	e->kbuckets  = b;
	e->nkbuckets = n;
	for (size_t i = 0; i < old; i++) {
		struct keyq *q = ob[i], *next;
		for (; q != NULL; q = next) {
			size_t k = engine__kbucket(e, q->partition, q->key);
			next     = q->hnext;
			q->hnext = b[k];
			b[k]     = q;
		}
	}
	free(ob);
}

static struct keyq *
engine__keyq(struct mri_engine *e, int32_t p, uint64_t key)
{
	size_t       k = engine__kbucket(e, p, key);
	struct keyq *q;

	for (q = e->kbuckets[k]; q != NULL; q = q->hnext)
		if (q->partition == p && q->key == key)
			return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->partition   = p;
	q->key         = key;
	q->hnext       = e->kbuckets[k];
	e->kbuckets[k] = q;
	if (++e->nkq > e->nkbuckets)
		engine__kgrow(e);
	return q;
}

static void
engine__keyq_free(struct mri_engine *e, struct keyq *q)
{
	struct keyq **pp = &e->kbuckets[engine__kbucket(e, q->partition,
							  q->key)];

	while (*pp != q)
		pp = &(*pp)->hnext;
	*pp = q->hnext;
	e->nkq--;
	free(q);
}

/* ---- the engine -------------------------------------------------------- */

int
mri_engine_new(struct mri_engine **out, const struct mri_engine_conf *c)
{
	struct mri_engine *e;

	const struct mri_retry *rt = &c->retry;

	if (c->order > MRI_ORDER_UNORDERED || c->max_buffered == 0 ||
	    c->session_credit == 0)
		return MR_EINVAL;
	if (rt->backoff_initial_ms > 0 &&
	    (rt->backoff_max_ms < rt->backoff_initial_ms ||
	     !(rt->multiplier >= 1.0) || !(rt->jitter >= 0.0) ||
	     !(rt->jitter <= 1.0)))
		return MR_EINVAL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return MR_ENOMEM;
	e->conf      = *c;
	e->limit     = SIZE_MAX;
	e->rng       = rt->seed;
	e->nkbuckets = 256;
	if ((e->kbuckets = calloc(e->nkbuckets, sizeof(*e->kbuckets))) ==
	    NULL) {
		free(e);
		return MR_ENOMEM;
	}
	*out = e;
	return MR_OK;
}

void
mri_engine_free(struct mri_engine *e)
{
	int64_t commit;

	if (e == NULL)
		return;
	for (size_t p = 0; p < e->nparts; p++)
		if (e->parts[p] != NULL)
			mri_engine_revoke(e, (int32_t)p, &commit);
	free(e->parts);
	free(e->heap);
	free(e->kbuckets);
	free(e->slots);
	free(e->gens);
	free(e->free_slots);
	free(e->sessions);
	free(e);
}

static struct part *
engine__part(const struct mri_engine *e, int32_t p)
{
	if (p < 0 || (size_t)p >= e->nparts)
		return NULL;
	return e->parts[p];
}

static int
engine__cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int
mri_engine_assign(struct mri_engine *e, int32_t p, int64_t start,
		  const int64_t *acked, size_t n_acked)
{
	struct part *pt;

	if (p < 0 || start < 0)
		return MR_EINVAL;
	if ((size_t)p >= e->nparts) {
		size_t        n = (size_t)p + 1;
		struct part **a = realloc(e->parts, n * sizeof(*a));

		if (a == NULL)
			return MR_ENOMEM;
		memset(a + e->nparts, 0, (n - e->nparts) * sizeof(*a));
		e->parts  = a;
		e->nparts = n;
	}
	if (e->parts[p] != NULL)
		return MR_EEXIST;
	if ((pt = calloc(1, sizeof(*pt))) == NULL)
		return MR_ENOMEM;
	if (n_acked > 0) {
		if ((pt->acked = malloc(n_acked * sizeof(int64_t))) == NULL) {
			free(pt);
			return MR_ENOMEM;
		}
		memcpy(pt->acked, acked, n_acked * sizeof(int64_t));
		qsort(pt->acked, n_acked, sizeof(int64_t), engine__cmp_i64);
		pt->n_acked = n_acked;
	}
	pt->id          = p;
	pt->next_commit = start;
	pt->last        = start - 1;
	e->parts[p]     = pt;
	return MR_OK;
}

/* The acked prefix grew to just below the first record not acked (every
 * acked offset kept, if none): the offsets kept below it go. */
static void
engine__advance(struct part *pt)
{
	int64_t below = pt->head != NULL ? pt->head->offset : INT64_MAX;

	while (pt->beyond_pos < pt->n_beyond &&
	       pt->beyond[pt->beyond_pos].first < below) {
		struct beyond_run *r = &pt->beyond[pt->beyond_pos];

		if (r->end > below) { // the part below goes
			pt->beyond_offs -= (size_t)(below - r->first);
			r->first         = below;
			pt->next_commit  = below;
			break;
		}
		pt->beyond_offs -= (size_t)(r->end - r->first);
		pt->next_commit = r->end;
		pt->beyond_pos++;
	}
	if (pt->beyond_pos == pt->n_beyond) {
		pt->beyond_pos = pt->n_beyond = 0;
	} else if (pt->beyond_pos >= 256 &&
		   pt->beyond_pos >= pt->n_beyond / 2) {
		pt->n_beyond -= pt->beyond_pos;
		memmove(pt->beyond, pt->beyond + pt->beyond_pos,
			pt->n_beyond * sizeof(*pt->beyond));
		pt->beyond_pos = 0;
	}
}

/* Keep acked offset \p offset (beyond the acked prefix), in its run:
 * acks come mostly in offset order, so the search starts from the end,
 * and a run grows at either side (two that meet become one).
 * @returns MR_OK or MR_ENOMEM. */
static int
engine__keep_acked(struct part *pt, int64_t offset)
{
	struct beyond_run *v = pt->beyond;
	size_t             i = pt->n_beyond;
	bool               left, right;

	while (i > pt->beyond_pos && v[i - 1].first > offset)
		i--;
	if (i > pt->beyond_pos && v[i - 1].end > offset)
		return MR_OK; // kept already
	left  = i > pt->beyond_pos && v[i - 1].end == offset;
	right = i < pt->n_beyond && v[i].first == offset + 1;
	if (left && right) {
		v[i - 1].end = v[i].end;
		memmove(v + i, v + i + 1, (pt->n_beyond - i - 1) * sizeof(*v));
		pt->n_beyond--;
	} else if (left) {
		v[i - 1].end++;
	} else if (right) {
		v[i].first--;
	} else {
		if (pt->n_beyond == pt->beyond_cap) {
			size_t n = pt->beyond_cap ? pt->beyond_cap * 2 : 64;

			if ((v = realloc(v, n * sizeof(*v))) == NULL)
				return MR_ENOMEM;
			pt->beyond     = v;
			pt->beyond_cap = n;
		}
		memmove(v + i + 1, v + i, (pt->n_beyond - i) * sizeof(*v));
		v[i] = (struct beyond_run){offset, offset + 1};
		pt->n_beyond++;
	}
	pt->beyond_offs++;
	return MR_OK;
}

/* Take \p r off its partition's list. */
static void
engine__unlink(struct part *pt, struct rec *r)
{
	if (r->pprev)
		r->pprev->pnext = r->pnext;
	else
		pt->head = r->pnext;
	if (r->pnext)
		r->pnext->pprev = r->pprev;
	else
		pt->tail = r->pprev;
	r->pprev = r->pnext = NULL;
	pt->count--;
}

/* A record at the head of its key (or unordered) can be handed out, or
 * taken for quarantine when its attempts are spent. */
void
engine__ready(struct mri_engine *e, struct rec *r)
{
	if (r->state != REC_WAITING || r->listed)
		return;
	if (engine__spent(e, r)) {
		r->state = REC_EXHAUSTED;
		engine__list_push(&e->exhausted, r);
	} else {
		engine__list_push(&e->ready, r);
	}
}

int
mri_engine_revoke(struct mri_engine *e, int32_t p, int64_t *commit)
{
	struct part *pt = engine__part(e, p);
	struct rec  *r, *next;

	if (pt == NULL)
		return MR_ENOENT;
	for (r = pt->head; r != NULL; r = next) {
		next = r->pnext;
		if (r->listed) {
			if (r->state == REC_INFLIGHT) {
				engine__list_remove(&e->sessions[r->sid].inflight,
						    r);
				e->inflight--;
			} else if (r->state == REC_EXHAUSTED) {
				engine__list_remove(&e->exhausted, r);
			} else {
				engine__list_remove(&e->ready, r);
			}
		} else if (r->state == REC_BACKOFF) {
			engine__heap_remove(e, r);
		} else if (r->state == REC_QUARANTINE) {
			e->quarantining--;
		}
		if (r->kq != NULL && --r->kq->count == 0)
			engine__keyq_free(e, r->kq);
		engine__rec_free(e, r);
	}
	*commit = pt->next_commit;
	free(pt->acked);
	free(pt->beyond);
	free(pt);
	e->parts[p] = NULL;
	return MR_OK;
}

static bool
engine__was_acked(struct part *pt, int64_t offset)
{
	while (pt->acked_pos < pt->n_acked &&
	       pt->acked[pt->acked_pos] < offset)
		pt->acked_pos++;
	return pt->acked_pos < pt->n_acked &&
	       pt->acked[pt->acked_pos] == offset;
}

int
mri_engine_arrive(struct mri_engine *e, int32_t p, int64_t offset,
		  uint64_t key_hash, bool keyless, uint32_t attempts,
		  bool acked, void *opaque)
{
	struct part *pt = engine__part(e, p);
	struct keyq *q  = NULL;
	struct rec  *r;

	if (pt == NULL)
		return MR_ENOENT;
	if (offset <= pt->last)
		return MR_EINVAL;
	if (acked || engine__was_acked(pt, offset)) {
		// Nothing of it is kept but its offset, if the prefix is
		// held up below it.
		if (pt->head != NULL &&
		    engine__keep_acked(pt, offset) != MR_OK)
			return MR_ENOMEM;
		pt->last = offset;
		if (pt->head == NULL)
			pt->next_commit = offset + 1;
		return MRI_ENGINE_NOT_HELD;
	}
	if (e->conf.order == MRI_ORDER_PARTITION ||
	    (e->conf.order == MRI_ORDER_KEY && !keyless)) {
		q = engine__keyq(e, p,
				 e->conf.order == MRI_ORDER_PARTITION ? 0
								      : key_hash);
		if (q == NULL)
			return MR_ENOMEM;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    engine__slot_alloc(e, r) != MR_OK) {
		free(r);
		if (q != NULL && q->count == 0)
			engine__keyq_free(e, q);
		return MR_ENOMEM;
	}
	r->part    = pt;
	r->offset  = offset;
	r->attempt = attempts & ~MRI_ENGINE_REJECTED_BIT;
	r->final   = (attempts & MRI_ENGINE_REJECTED_BIT) != 0;
	r->opaque  = opaque;
	r->state   = REC_WAITING;
	pt->last   = offset;
	r->pprev   = pt->tail;
	if (pt->tail)
		pt->tail->pnext = r;
	else
		pt->head = r;
	pt->tail = r;
	pt->count++;
	e->buffered++;

	if (q != NULL) {
		r->kq = q;
		if (q->tail)
			q->tail->knext = r;
		else
			q->head = r;
		q->tail = r;
		q->count++;
		if (q->head == r)
			engine__ready(e, r);
		return MR_OK;
	}
	engine__ready(e, r);
	return MR_OK;
}

int
mri_engine_session_open(struct mri_engine *e, uint32_t *sid)
{
	struct session *s;

	for (size_t i = 0; i < e->nsessions; i++) {
		if (!e->sessions[i].open) {
			memset(&e->sessions[i], 0, sizeof(e->sessions[i]));
			e->sessions[i].open = true;
			*sid                = (uint32_t)i;
			e->open++;
			return MR_OK;
		}
	}
	s = realloc(e->sessions, (e->nsessions + 1) * sizeof(*s));
	if (s == NULL)
		return MR_ENOMEM;
	e->sessions = s;
	memset(&s[e->nsessions], 0, sizeof(*s));
	s[e->nsessions].open = true;
	*sid                 = (uint32_t)e->nsessions++;
	e->open++;
	return MR_OK;
}

void
mri_engine_session_close(struct mri_engine *e, uint32_t sid, uint64_t now_ms)
{
	struct session *s;

	if (sid >= e->nsessions || !e->sessions[sid].open)
		return;
	s = &e->sessions[sid];
	while (s->inflight.head != NULL)
		engine__requeue(e, s->inflight.head, now_ms,
				MRI_ENGINE_ABANDONED);
	s->open = false;
	e->open--;
}

size_t
mri_engine_fetch(struct mri_engine *e, uint32_t sid, uint64_t now_ms,
		 struct mri_delivery *out, size_t max)
{
	struct session *s;
	size_t          n = 0;

	if (sid >= e->nsessions || !e->sessions[sid].open)
		return 0;
	s = &e->sessions[sid];
	while (n < max && e->ready.head != NULL &&
	       s->inflight.count < e->conf.session_credit &&
	       e->inflight < e->limit) {
		struct rec *r = e->ready.head;

		engine__list_remove(&e->ready, r);
		engine__stale(e, r);
		r->state    = REC_INFLIGHT;
		r->sid      = sid;
		r->deadline = now_ms + e->conf.ack_deadline_ms;
		if (r->deadline < e->due)
			e->due = r->deadline;
		r->attempt++;
		engine__list_push(&s->inflight, r);
		e->inflight++;
		r->part->inflight++;
		out[n].handle    = engine__handle(e, r);
		out[n].partition = r->part->id;
		out[n].offset    = r->offset;
		out[n].attempt   = r->attempt;
		out[n].opaque    = r->opaque;
		n++;
	}
	return n;
}

/* Record \p r (neither listed nor on the heap) is acked: its key goes on,
 * its partition's acked prefix may grow, and it is freed (its offset kept
 * if the prefix is held up below it). */
void
engine__acked(struct mri_engine *e, struct rec *r)
{
	struct part *pt = r->part;
	struct keyq *q;

	engine__stale(e, r);
	r->state = REC_ACKED;
	e->acked++;
	if ((q = r->kq) != NULL) {
		// Only the head of a key is ever handed out.
		q->head = r->knext;
		if (q->head == NULL)
			q->tail = NULL;
		r->kq    = NULL;
		r->knext = NULL;
		if (--q->count == 0)
			engine__keyq_free(e, q);
		else
			engine__ready(e, q->head);
	}
	// Out of memory, an offset not kept only makes the prefix stop
	// short of it: it is delivered again if the partition moves on
	// before the prefix passes it.
	if (pt->head == r)
		pt->next_commit = r->offset + 1;
	else
		(void)engine__keep_acked(pt, r->offset);
	engine__unlink(pt, r);
	engine__rec_free(e, r);
	engine__advance(pt);
}

int
mri_engine_ack(struct mri_engine *e, uint64_t handle, void **opaque)
{
	struct rec *r = engine__lookup(e, handle);

	if (r == NULL)
		return MR_ENOENT;
	if (opaque != NULL)
		*opaque = r->opaque;
	engine__list_remove(&e->sessions[r->sid].inflight, r);
	e->inflight--;
	r->part->inflight--;
	engine__acked(e, r);
	return MR_OK;
}

int
mri_engine_nack(struct mri_engine *e, uint64_t handle, uint64_t now_ms,
		bool final)
{
	struct rec *r = engine__lookup(e, handle);

	if (r == NULL)
		return MR_ENOENT;
	engine__requeue(e, r, now_ms,
			final ? MRI_ENGINE_REJECTED : MRI_ENGINE_NACKED);
	return MR_OK;
}

int
mri_engine_extend(struct mri_engine *e, uint64_t handle, uint64_t now_ms,
		  uint64_t ms)
{
	struct rec *r = engine__lookup(e, handle);

	if (r == NULL)
		return MR_ENOENT;
	r->deadline = now_ms + ms;
	if (r->deadline < e->due)
		e->due = r->deadline;
	return MR_OK;
}

int
mri_engine_peek(const struct mri_engine *e, uint64_t handle,
		struct mri_delivery *out)
{
	struct rec *r = engine__lookup(e, handle);

	if (r == NULL)
		return MR_ENOENT;
	engine__delivery(r, handle, out);
	return MR_OK;
}

size_t
mri_engine_tick(struct mri_engine *e, uint64_t now_ms)
{
	size_t   expired = 0;
	uint64_t due     = UINT64_MAX;

	// Each pass of a group's loop ticks: walk what is in flight only
	// once a deadline may have passed, and learn the next one.
	for (size_t i = 0; now_ms >= e->due && i < e->nsessions; i++) {
		struct rec *r = e->sessions[i].inflight.head, *next;

		for (; r != NULL; r = next) {
			next = r->lnext;
			if (r->deadline <= now_ms) {
				engine__requeue(e, r, now_ms,
						MRI_ENGINE_EXPIRED);
				expired++;
			} else if (r->deadline < due) {
				due = r->deadline;
			}
		}
	}
	if (now_ms >= e->due)
		e->due = due;
	engine__backoff_end(e, now_ms);
	return expired;
}

int
mri_engine_part_stats(const struct mri_engine *e, int32_t p, size_t *buffered,
		      size_t *inflight)
{
	const struct part *pt = engine__part(e, p);

	if (pt == NULL)
		return MR_ENOENT;
	*buffered = pt->count;
	*inflight = pt->inflight;
	return MR_OK;
}

int64_t
mri_engine_committable(const struct mri_engine *e, int32_t p)
{
	const struct part *pt = engine__part(e, p);

	return pt ? pt->next_commit : -1;
}

size_t
mri_engine_acked_beyond(const struct mri_engine *e, int32_t p, int64_t *out,
			size_t max)
{
	const struct part *pt = engine__part(e, p);
	size_t             n;

	if (pt == NULL)
		return 0;
	n = 0;
	for (size_t r = pt->beyond_pos; r < pt->n_beyond && n < max; r++)
		for (int64_t o = pt->beyond[r].first;
		     o < pt->beyond[r].end && n < max; o++)
			out[n++] = o;
	n = pt->beyond_offs;
	// Acks given to assign for records that have not arrived yet: the
	// caller keeps this list in place of that one.
	for (size_t i = pt->acked_pos; i < pt->n_acked; i++) {
		if (pt->acked[i] <= pt->last ||
		    (i > 0 && pt->acked[i] == pt->acked[i - 1]))
			continue;
		if (n < max)
			out[n] = pt->acked[i];
		n++;
	}
	return n;
}

bool
mri_engine_full(const struct mri_engine *e, int32_t p)
{
	const struct part *pt = engine__part(e, p);

	return pt != NULL &&
	       (pt->count >= e->conf.max_buffered ||
		pt->beyond_offs >= ENGINE__BEYOND_MAX);
}

void
mri_engine_stats(const struct mri_engine *e, struct mri_engine_stats *s)
{
	s->sessions     = e->open;
	s->buffered     = e->buffered;
	s->inflight     = e->inflight;
	s->ready        = e->ready.count;
	s->backoff      = e->nheap;
	s->exhausted    = e->exhausted.count;
	s->quarantining = e->quarantining;
	s->acked        = e->acked;
	s->failed       = e->failed;
	s->expired      = e->expired;
}
