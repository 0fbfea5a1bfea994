#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

/* Entries are of one size and live in blocks that never move (a pending
 * entry's address is held by its publish), numbered from 0; a free one is
 * on a list through its link (a pending one's link is its number, a DONE
 * one's its place in the ring). DONE entries are in a ring, in the order
 * they were confirmed, each as its index slot; an entry that leaves from
 * the middle (expired on a lookup) leaves a hole there (0), skipped when
 * it comes out.
 *
 * The index: open addressing with linear probing, a slot an entry's number
 * (high half) and the low half of its hash with its lowest bit set (0 is a
 * free slot). The home of a slot is the hash shifted right by one, so the
 * slot alone gives it: growing, and the moves of a deletion, read slots
 * only. A lookup reads slots (eight to a cache line) and follows an entry
 * only when those 32 bits match. */
#define DEDUPE__MIN_SLOTS 1024
#define DEDUPE__BLOCK_BITS 12
#define DEDUPE__BLOCK (1u << DEDUPE__BLOCK_BITS)
#define DEDUPE__NONE UINT32_MAX /* no entry: the free list's end */
#define DEDUPE__MAX_ENTRIES (UINT32_MAX - 1)

struct mri_dedupe {
	uint64_t                 *slots;
	size_t                    nslots; /* a power of two, >= 2 x count */
	size_t                    count;
	size_t                    pending;
	struct mri_dedupe_entry **blocks;
	uint32_t                  nblocks;
	uint32_t                  free; /* the first free entry, or NONE */
	uint64_t                 *fifo; /* DONE entries' slots, or 0 */
	size_t                    fcap; /* a power of two */
	uint64_t                  fhead, ftail;
	uint64_t                  window_ms;
	size_t                    max_entries;
	uint64_t                  hits;
	uint64_t                  evicted_early;
};

/* 64-bit multiply-xorshift over eight bytes at a time: a publish hashes a
 * topic and a 36-byte id per record. The second hash mixes the same words
 * with another constant and shift, from another seed. */
static uint64_t
dedupe__mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 32);
}

static uint64_t
dedupe__mix2(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xff51afd7ed558ccdULL;
	return h ^ (h >> 29);
}

/* The last \p n (< 8) bytes at \p p as a little-endian word, in
 * registers: copied byte by byte to the stack and read back as a word,
 * they stalled the load on its stores (most of the hash's time). */
static uint64_t
dedupe__tail(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t             a, b;

	if (n >= 4) {
		memcpy(&a, p, 4);
		memcpy(&b, p + n - 4, 4); // overlapping: the same bytes
		return a | (uint64_t)b << (8 * (n - 4));
	}
	if (n == 0)
		return 0;
	return u[0] | (uint64_t)u[n / 2] << (8 * (n / 2)) |
	       (uint64_t)u[n - 1] << (8 * (n - 1));
}

static void
dedupe__bytes(struct mri_dedupe_key *k, const char *p, size_t n)
{
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		k->hash  = dedupe__mix(k->hash, w);
		k->check = dedupe__mix2(k->check, w);
	}
	w = dedupe__tail(p, n) ^ (uint64_t)n << 56;
	k->hash  = dedupe__mix(k->hash, w);
	k->check = dedupe__mix2(k->check, w);
}

struct mri_dedupe_key
mri_dedupe_key(const char *topic, size_t topic_len, const char *id,
	       size_t id_len)
{
	struct mri_dedupe_key k = {0xcbf29ce484222325ULL,
				   0x84222325cbf29ce4ULL};

	dedupe__bytes(&k, topic, topic_len);
	dedupe__bytes(&k, id, id_len);
	k.hash ^= k.hash >> 29;
	k.check ^= k.check >> 31;
	return k;
}

uint64_t
mri_dedupe_hash(const char *topic, size_t topic_len, const char *id,
		size_t id_len)
{
	return mri_dedupe_key(topic, topic_len, id, id_len).hash;
}

static size_t
dedupe__home(uint64_t hash, size_t mask)
{
	return (size_t)(hash >> 1) & mask;
}

static uint64_t
dedupe__slot(uint32_t n, uint64_t hash)
{
	return (uint64_t)n << 32 | (uint32_t)hash | 1u;
}

static struct mri_dedupe_entry *
dedupe__at(const struct mri_dedupe *d, uint32_t n)
{
	return &d->blocks[n >> DEDUPE__BLOCK_BITS][n & (DEDUPE__BLOCK - 1)];
}

void
mri_dedupe_prefetch(const struct mri_dedupe *d, uint64_t hash)
{
	__builtin_prefetch(&d->slots[dedupe__home(hash, d->nslots - 1)]);
}

int
mri_dedupe_new(struct mri_dedupe **out, uint64_t window_ms, size_t max_entries)
{
	struct mri_dedupe *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return MR_ENOMEM;
	d->nslots = DEDUPE__MIN_SLOTS;
	d->fcap   = DEDUPE__MIN_SLOTS;
	d->slots  = calloc(d->nslots, sizeof(*d->slots));
	d->fifo   = malloc(d->fcap * sizeof(*d->fifo));
	if (d->slots == NULL || d->fifo == NULL) {
		free(d->slots);
		free(d->fifo);
		free(d);
		return MR_ENOMEM;
	}
	d->free        = DEDUPE__NONE;
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
	for (uint32_t i = 0; i < d->nblocks; i++)
		free(d->blocks[i]);
	free(d->blocks);
	free(d->fifo);
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
static uint64_t *
dedupe__free_slot(uint64_t *slots, size_t n, uint64_t hash)
{
	size_t i = dedupe__home(hash, n - 1);

	while (slots[i] != 0)
		i = (i + 1) & (n - 1);
	return &slots[i];
}

static void
dedupe__grow(struct mri_dedupe *d)
{
	size_t    nn = d->nslots * 2;
	uint64_t *ns = malloc(nn * sizeof(*ns));

	if (ns == NULL)
		return; // fuller, longer probes; the caller checks for room
	// Written now, not calloc'd: the kernel's zero pages, read by the
	// lookups first, then written, cost a second fault each and a TLB
	// flush on every core (a tenth of a publish's kernel time while the
	// window grew).
	memset(ns, 0, nn * sizeof(*ns));
	for (size_t i = 0; i < d->nslots; i++)
		if (d->slots[i] != 0)
			*dedupe__free_slot(ns, nn, d->slots[i]) = d->slots[i];
	free(d->slots);
	d->slots  = ns;
	d->nslots = nn;
}

/* A free entry, its number in *n: from the free list, or a new block.
 * @returns NULL when out of memory or numbers. */
static struct mri_dedupe_entry *
dedupe__alloc(struct mri_dedupe *d, uint32_t *n)
{
	struct mri_dedupe_entry *b, **nb, *e;

	if (d->free == DEDUPE__NONE) {
		if (d->nblocks >= DEDUPE__MAX_ENTRIES / DEDUPE__BLOCK ||
		    (nb = realloc(d->blocks,
				  (d->nblocks + 1) * sizeof(*nb))) == NULL)
			return NULL;
		d->blocks = nb;
		if ((b = malloc(DEDUPE__BLOCK * sizeof(*b))) == NULL)
			return NULL;
		// Chained from its first: taken in order, as they lie.
		for (uint32_t i = 0; i < DEDUPE__BLOCK; i++)
			b[i].link = i + 1 < DEDUPE__BLOCK
					? d->nblocks * DEDUPE__BLOCK + i + 1
					: DEDUPE__NONE;
		d->free                = d->nblocks * DEDUPE__BLOCK;
		d->blocks[d->nblocks++] = b;
	}
	*n      = d->free;
	e       = dedupe__at(d, *n);
	d->free = e->link;
	return e;
}

static void
dedupe__release(struct mri_dedupe *d, struct mri_dedupe_entry *e, uint32_t n)
{
	e->link = d->free;
	d->free = n;
}

/* Take entry number \p n (of hash \p hash) out of the index: find its
 * slot, then move back each later slot of the run that may live there
 * (linear probing's deletion, no tombstones). */
static void
dedupe__unindex(struct mri_dedupe *d, uint32_t n, uint64_t hash)
{
	size_t   mask = d->nslots - 1, i = dedupe__home(hash, mask), j, home;
	uint64_t want = dedupe__slot(n, hash);

	while (d->slots[i] != want)
		i = (i + 1) & mask;
	for (j = (i + 1) & mask; d->slots[j] != 0; j = (j + 1) & mask) {
		home = dedupe__home(d->slots[j], mask);
		// Slot j may move to i unless its home lies after i, up to j.
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		d->slots[i] = d->slots[j];
		i           = j;
	}
	d->slots[i] = 0;
	d->count--;
}

/* The number of the entry of slot \p s. */
static uint32_t
dedupe__num(uint64_t s)
{
	return (uint32_t)(s >> 32);
}

int
mri_dedupe_check(struct mri_dedupe *d, const char *topic, size_t topic_len,
		 const char *id, size_t id_len, uint64_t now_ms,
		 struct mri_dedupe_entry **out)
{
	return mri_dedupe_check_key(
	    d, mri_dedupe_key(topic, topic_len, id, id_len), now_ms, out);
}

int
mri_dedupe_check_key(struct mri_dedupe *d, struct mri_dedupe_key k,
		     uint64_t now_ms, struct mri_dedupe_entry **out)
{
	size_t                   mask = d->nslots - 1;
	uint32_t                 tag  = (uint32_t)k.hash | 1u, n;
	struct mri_dedupe_entry *e;

	for (size_t i = dedupe__home(k.hash, mask); d->slots[i] != 0;
	     i = (i + 1) & mask) {
		if ((uint32_t)d->slots[i] != tag)
			continue;
		n = dedupe__num(d->slots[i]);
		e = dedupe__at(d, n);
		if (e->hash != k.hash || e->check != k.check)
			continue;
		if (e->state == MRI_DEDUPE_DONE &&
		    dedupe__age(e, now_ms) > d->window_ms) {
			// Expired: it leaves a hole in the ring, and is new
			// again below.
			d->fifo[e->link & (d->fcap - 1)] = 0;
			dedupe__unindex(d, n, e->hash);
			dedupe__release(d, e, n);
			break;
		}
		d->hits++;
		*out = e;
		return e->state;
	}
	// At most half full, so that probes stay short (and one is free).
	if ((d->count + 1) * 2 > d->nslots) {
		dedupe__grow(d);
		if ((d->count + 1) * 2 > d->nslots)
			return -1;
	}
	if ((e = dedupe__alloc(d, &n)) == NULL)
		return -1;
	e->waiters = NULL;
	e->hash    = k.hash;
	e->check   = k.check;
	e->state   = MRI_DEDUPE_PENDING;
	e->link    = n;
	*dedupe__free_slot(d->slots, d->nslots, k.hash) =
	    dedupe__slot(n, k.hash);
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

/* Room in the ring for one more: it doubles when full (the numbers keep
 * their places modulo the new size). @returns false when out of memory. */
static int
dedupe__fifo_room(struct mri_dedupe *d)
{
	size_t    nc = d->fcap * 2;
	uint64_t *nf;

	if (d->ftail - d->fhead < d->fcap)
		return 1;
	if ((nf = malloc(nc * sizeof(*nf))) == NULL)
		return 0;
	for (uint64_t p = d->fhead; p < d->ftail; p++)
		nf[p & (nc - 1)] = d->fifo[p & (d->fcap - 1)];
	free(d->fifo);
	d->fifo = nf;
	d->fcap = nc;
	return 1;
}

struct mri_dedupe_waiter *
mri_dedupe_complete(struct mri_dedupe *d, struct mri_dedupe_entry *e,
		    int32_t partition, int64_t offset, uint64_t now_ms)
{
	struct mri_dedupe_waiter *w = e->waiters;
	uint32_t                  n = e->link; // pending: its number

	e->waiters   = NULL;
	e->partition = partition;
	e->offset    = offset;
	e->done_ms   = now_ms;
	d->pending--;
	if (!dedupe__fifo_room(d)) {
		// Without a place in the ring it could never go: forgotten
		// at once, as a refused one (a retry writes it again).
		dedupe__unindex(d, n, e->hash);
		dedupe__release(d, e, n);
		return w;
	}
	e->state                           = MRI_DEDUPE_DONE;
	e->link                            = (uint32_t)d->ftail;
	d->fifo[d->ftail++ & (d->fcap - 1)] = dedupe__slot(n, e->hash);
	return w;
}

struct mri_dedupe_waiter *
mri_dedupe_fail(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	struct mri_dedupe_waiter *w = e->waiters;
	uint32_t                  n = e->link; // pending: its number

	dedupe__unindex(d, n, e->hash);
	d->pending--;
	dedupe__release(d, e, n);
	return w;
}

/* Ring places ahead of the one going whose index slot, and whose entry,
 * are fetched meanwhile: those that go in turn were last touched long
 * ago, and each is a cache miss. The ring holds each entry's slot, so the
 * slot's place is known without its entry. */
#define DEDUPE__SLOT_AHEAD 8
#define DEDUPE__ENTRY_AHEAD 4

void
mri_dedupe_expire(struct mri_dedupe *d, uint64_t now_ms)
{
	size_t fmask = d->fcap - 1, mask = d->nslots - 1;

	while (d->fhead < d->ftail) {
		uint64_t                 s = d->fifo[d->fhead & fmask], x;
		struct mri_dedupe_entry *e;
		int                      old, full;

		if (s == 0) { // a hole: expired on a lookup
			d->fhead++;
			continue;
		}
		e    = dedupe__at(d, dedupe__num(s));
		old  = dedupe__age(e, now_ms) > d->window_ms;
		full = d->count - d->pending > d->max_entries;
		if (!old && !full)
			break;
		if (!old)
			d->evicted_early++;
		x = d->fhead + DEDUPE__SLOT_AHEAD < d->ftail
			? d->fifo[(d->fhead + DEDUPE__SLOT_AHEAD) & fmask]
			: 0;
		if (x != 0)
			__builtin_prefetch(&d->slots[dedupe__home(x, mask)], 1);
		x = d->fhead + DEDUPE__ENTRY_AHEAD < d->ftail
			? d->fifo[(d->fhead + DEDUPE__ENTRY_AHEAD) & fmask]
			: 0;
		if (x != 0)
			__builtin_prefetch(dedupe__at(d, dedupe__num(x)), 1);
		d->fhead++;
		dedupe__unindex(d, dedupe__num(s), e->hash);
		dedupe__release(d, e, dedupe__num(s));
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
