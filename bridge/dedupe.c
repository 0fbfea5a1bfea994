#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

/* The index: open addressing with linear probing, each slot an entry's
 * hash and the entry. A lookup reads slots (four to a cache line) and
 * follows an entry only when its whole hash matches; growing reads the
 * slots alone. A chained table followed every entry of the chain and, to
 * grow, every entry of the window: cache misses in a window of up to a
 * million entries. */
struct dedupe__slot {
	uint64_t                 hash;
	struct mri_dedupe_entry *e; /* NULL: free */
};

struct mri_dedupe {
	struct dedupe__slot     *slots;
	size_t                   nslots; /* a power of two, >= 2 x count */
	size_t                   count;
	size_t                   pending;
	struct mri_dedupe_entry *fhead;
	struct mri_dedupe_entry *ftail;
	uint64_t                 window_ms;
	size_t                   max_entries;
	uint64_t                 hits;
	uint64_t                 evicted_early;
};

#define DEDUPE__MIN_SLOTS 1024

/* 64-bit multiply-xorshift over eight bytes at a time: a publish hashes a
 * topic and a 36-byte id per record. */
static uint64_t
dedupe__mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 32);
}

static uint64_t
dedupe__bytes(uint64_t h, const char *p, size_t n)
{
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = dedupe__mix(h, w);
	}
	w = 0;
	memcpy(&w, p, n);
	return dedupe__mix(h, w ^ (uint64_t)n << 56);
}

uint64_t
mri_dedupe_hash(const char *topic, size_t topic_len, const char *id,
		size_t id_len)
{
	uint64_t h = dedupe__bytes(0xcbf29ce484222325ULL, topic, topic_len);

	h = dedupe__bytes(h, id, id_len);
	return h ^ (h >> 29);
}

void
mri_dedupe_prefetch(const struct mri_dedupe *d, uint64_t hash)
{
	__builtin_prefetch(&d->slots[hash & (d->nslots - 1)]);
}

int
mri_dedupe_new(struct mri_dedupe **out, uint64_t window_ms, size_t max_entries)
{
	struct mri_dedupe *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return MR_ENOMEM;
	d->nslots = DEDUPE__MIN_SLOTS;
	if ((d->slots = calloc(d->nslots, sizeof(*d->slots))) == NULL) {
		free(d);
		return MR_ENOMEM;
	}
	d->window_ms   = window_ms;
	d->max_entries = max_entries;
	*out           = d;
	return MR_OK;
}

void
mri_dedupe_free(struct mri_dedupe *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nslots; i++)
		free(d->slots[i].e);
	free(d->slots);
	free(d);
}

/* Age of a DONE entry; a time before its completion (another thread read
 * the clock just before) is age 0, never a wrap-around. */
static uint64_t
dedupe__age(const struct mri_dedupe_entry *e, uint64_t now_ms)
{
	return now_ms > e->done_ms ? now_ms - e->done_ms : 0;
}

/* The free slot at or after \p hash's home in \p slots of \p n. */
static struct dedupe__slot *
dedupe__free_slot(struct dedupe__slot *slots, size_t n, uint64_t hash)
{
	size_t i = hash & (n - 1);

	while (slots[i].e != NULL)
		i = (i + 1) & (n - 1);
	return &slots[i];
}

static void
dedupe__grow(struct mri_dedupe *d)
{
	size_t               nn = d->nslots * 2;
	struct dedupe__slot *ns = calloc(nn, sizeof(*ns));

	if (ns == NULL)
		return; // fuller, longer probes; the caller checks for room
	for (size_t i = 0; i < d->nslots; i++)
		if (d->slots[i].e != NULL)
			*dedupe__free_slot(ns, nn, d->slots[i].hash) =
			    d->slots[i];
	free(d->slots);
	d->slots  = ns;
	d->nslots = nn;
}

/* Take \p e out of the index: find its slot, then move back each later
 * slot of the run that may live there (linear probing's deletion, no
 * tombstones). */
static void
dedupe__unlink_hash(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	size_t mask = d->nslots - 1, i = e->hash & mask, j, home;

	while (d->slots[i].e != e)
		i = (i + 1) & mask;
	for (j = (i + 1) & mask; d->slots[j].e != NULL; j = (j + 1) & mask) {
		home = d->slots[j].hash & mask;
		// Slot j may move to i unless its home lies after i, up to j.
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		d->slots[i] = d->slots[j];
		i           = j;
	}
	d->slots[i].e    = NULL;
	d->slots[i].hash = 0;
	d->count--;
}

static void
dedupe__unlink_fifo(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	if (e->fprev)
		e->fprev->fnext = e->fnext;
	else
		d->fhead = e->fnext;
	if (e->fnext)
		e->fnext->fprev = e->fprev;
	else
		d->ftail = e->fprev;
}

int
mri_dedupe_check(struct mri_dedupe *d, const char *topic, size_t topic_len,
		 const char *id, size_t id_len, uint64_t now_ms,
		 struct mri_dedupe_entry **out)
{
	return mri_dedupe_check_hashed(d,
				       mri_dedupe_hash(topic, topic_len, id,
						       id_len),
				       topic, topic_len, id, id_len, now_ms,
				       out);
}

int
mri_dedupe_check_hashed(struct mri_dedupe *d, uint64_t h, const char *topic,
			size_t topic_len, const char *id, size_t id_len,
			uint64_t now_ms, struct mri_dedupe_entry **out)
{
	size_t                   mask = d->nslots - 1;
	struct mri_dedupe_entry *e    = NULL;

	for (size_t i = h & mask; d->slots[i].e != NULL; i = (i + 1) & mask) {
		struct mri_dedupe_entry *c = d->slots[i].e;

		if (d->slots[i].hash != h || c->topic_len != topic_len ||
		    c->id_len != id_len || memcmp(c->key, topic, topic_len) ||
		    memcmp(c->key + topic_len, id, id_len))
			continue;
		if (c->state == MRI_DEDUPE_DONE &&
		    dedupe__age(c, now_ms) > d->window_ms) {
			e = c; // expired: treat as new below
			break;
		}
		d->hits++;
		*out = c;
		return c->state;
	}
	if (e != NULL) {
		dedupe__unlink_fifo(d, e);
		dedupe__unlink_hash(d, e);
		free(e);
	}
	// At most half full, so that probes stay short (and one is free).
	if ((d->count + 1) * 2 > d->nslots) {
		dedupe__grow(d);
		if ((d->count + 1) * 2 > d->nslots)
			return -1;
	}
	if ((e = malloc(sizeof(*e) + topic_len + id_len)) == NULL)
		return -1;
	memset(e, 0, sizeof(*e));
	e->hash      = h;
	e->state     = MRI_DEDUPE_PENDING;
	e->topic_len = (uint16_t)topic_len;
	e->id_len    = (uint8_t)id_len;
	memcpy(e->key, topic, topic_len);
	memcpy(e->key + topic_len, id, id_len);
	*dedupe__free_slot(d->slots, d->nslots, h) =
	    (struct dedupe__slot){h, e};
	d->count++;
	d->pending++;
	*out = e;
	return MRI_DEDUPE_NEW;
}

void
mri_dedupe_wait(struct mri_dedupe_entry *e, struct mri_dedupe_waiter *w)
{
	w->next    = e->waiters;
	e->waiters = w;
}

struct mri_dedupe_waiter *
mri_dedupe_complete(struct mri_dedupe *d, struct mri_dedupe_entry *e,
		    int32_t partition, int64_t offset, uint64_t now_ms)
{
	struct mri_dedupe_waiter *w = e->waiters;

	e->waiters   = NULL;
	e->state     = MRI_DEDUPE_DONE;
	e->partition = partition;
	e->offset    = offset;
	e->done_ms   = now_ms;
	e->fnext     = NULL;
	e->fprev     = d->ftail;
	if (d->ftail)
		d->ftail->fnext = e;
	else
		d->fhead = e;
	d->ftail = e;
	d->pending--;
	return w;
}

struct mri_dedupe_waiter *
mri_dedupe_fail(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	struct mri_dedupe_waiter *w = e->waiters;

	dedupe__unlink_hash(d, e);
	d->pending--;
	free(e);
	return w;
}

void
mri_dedupe_expire(struct mri_dedupe *d, uint64_t now_ms)
{
	struct mri_dedupe_entry *e, *n;

	while ((e = d->fhead) != NULL) {
		int old  = dedupe__age(e, now_ms) > d->window_ms;
		int full = d->count - d->pending > d->max_entries;

		if (!old && !full)
			break;
		if (!old)
			d->evicted_early++;
		// Entries and slots expired in turn were last touched long
		// ago: each is a cache miss. The next entry's slot and the
		// one after it are fetched while this one goes (the next
		// entry itself was, a turn ago).
		if ((n = e->fnext) != NULL) {
			if (n->fnext != NULL)
				__builtin_prefetch(n->fnext, 1);
			__builtin_prefetch(
			    &d->slots[n->hash & (d->nslots - 1)], 1);
		}
		dedupe__unlink_fifo(d, e);
		dedupe__unlink_hash(d, e);
		free(e);
	}
}

void
mri_dedupe_stats(const struct mri_dedupe *d, struct mri_dedupe_stats *s)
{
	s->entries       = d->count;
	s->pending       = d->pending;
	s->hits          = d->hits;
	s->evicted_early = d->evicted_early;
}
