#include "idmap.h"

#include <stdlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mailroom/error.h"

#define IDMAP__LINE 8  /* slots in a cache line */
#define IDMAP__AHEAD 8 /* evictions whose slot is prefetched ahead */
#define IDMAP__NONE UINT32_MAX

struct idmap__ent {
	uint64_t hash;
	int64_t  ts;
	uint32_t val;
	uint32_t tag; /* of hash: its slot is found without mixing again */
};

/* The ring has a spare entry: a put goes in first, then the oldest out. */
struct mri_idmap {
	uint64_t          *slots; /* tag << 32 | ring index + 1; 0: empty */
	void              *mem;   /* slots, before they were aligned */
	struct idmap__ent *ring;  /* len entries, the oldest at head */
	uint32_t           mask;  /* number of slots - 1 */
	uint32_t           cap, len, head, count;
};

/* The 32 bits of a hash that the table keeps, mixed first so that they
 * depend on all 64 (the hashes are FNV-1a): the high half folded into the
 * low, times an odd constant, the high half of that. One multiply: it is
 * on the way to every lookup's load (fmix64's two cost a few ns more). */
static inline uint32_t
idmap__tag(uint64_t h)
{
	h ^= h >> 32;
	h *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(h >> 32);
}

static inline uint64_t
idmap__slot(uint32_t tag, uint32_t idx)
{
	return (uint64_t)tag << 32 | (idx + 1);
}

static inline uint32_t
idmap__next(const struct mri_idmap *m, uint32_t idx)
{
	return idx + 1 == m->len ? 0 : idx + 1;
}

int
mri_idmap_new(struct mri_idmap **out, size_t cap)
{
	struct mri_idmap *m;
	size_t            n = IDMAP__LINE;

	if (cap == 0 || cap > MRI_IDMAP_MAX_CAP || cap > SIZE_MAX / 4)
		return MR_EINVAL;
	while (n < cap * 2)
		n *= 2;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return MR_ENOMEM;
	// calloc: pages not touched cost nothing until entries arrive. The
	// slots start on a cache line: one more line to align them.
	m->mem  = calloc(n + IDMAP__LINE, sizeof(*m->slots));
	m->ring = calloc(cap + 1, sizeof(*m->ring));
	if (m->mem == NULL || m->ring == NULL) {
		mri_idmap_free(m);
		return MR_ENOMEM;
	}
	m->slots = (uint64_t *)(((uintptr_t)m->mem + 63) & ~(uintptr_t)63);
	m->mask = (uint32_t)(n - 1);
	m->cap  = (uint32_t)cap;
	m->len  = (uint32_t)cap + 1;
	*out    = m;
	return MR_OK;
}

void
mri_idmap_free(struct mri_idmap *m)
{
	if (m == NULL)
		return;
	free(m->mem);
	free(m->ring);
	free(m);
}

/* A line of slots, as a mask of 2 bits a slot: bit 2k is set if slot k is
 * empty, bit 2k + 1 if it carries \p tag. The portable way (which the test
 * holds the SSE2 one to); */
__attribute__((unused)) static inline unsigned
idmap__scan_c(const uint64_t *line, uint32_t tag)
{
	unsigned bits = 0;

	for (unsigned k = 0; k < IDMAP__LINE; k++) {
		bits |= (unsigned)((uint32_t)line[k] == 0) << (2 * k);
		bits |= (unsigned)((uint32_t)(line[k] >> 32) == tag)
			<< (2 * k + 1);
	}
	return bits;
}

/* and with SSE2 (every x86-64), where a slot is two 32-bit lanes (its ring
 * index + 1, then its tag) and one compare tests both. */
static inline unsigned
idmap__scan_line(const uint64_t *line, uint32_t tag)
{
#if defined(__SSE2__)
	const __m128i key  = _mm_set_epi32((int)tag, 0, (int)tag, 0);
	unsigned      bits = 0;

	for (unsigned k = 0; k < IDMAP__LINE / 2; k++) {
		__m128i v = _mm_load_si128((const __m128i *)(line + 2 * k));
		__m128i e = _mm_cmpeq_epi32(v, key);

		bits |= (unsigned)_mm_movemask_ps(_mm_castsi128_ps(e))
			<< (4 * k);
	}
	return bits;
#else
	return idmap__scan_c(line, tag);
#endif
}

/* Slots i to the end of its cache line, as bit masks (bit 2k: slot i + k):
 * which are empty and which carry \p tag before the first empty one.
 * Without a branch: a branch on every slot, which the load decides, would
 * stall one lookup after another where a miss is one load and done. */
static inline void
idmap__scan(const struct mri_idmap *m, uint32_t i, uint32_t tag,
	    unsigned *gaps, unsigned *match)
{
	unsigned bits = idmap__scan_line(
	    &m->slots[i & ~(uint32_t)(IDMAP__LINE - 1)], tag);

	bits >>= 2 * (i & (IDMAP__LINE - 1));
	*gaps  = bits & 0x5555;
	*match = (bits >> 1) & 0x5555;
	// Only the slots before the first empty one are on the probe (all
	// if none is: then 0 - 1 keeps every bit).
	*match &= (*gaps & -*gaps) - 1;
}

/* The ring index of \p hash, or IDMAP__NONE and in *empty the first empty
 * slot of its probe (the table is at most half full: there is one). */
static inline uint32_t
idmap__lookup(const struct mri_idmap *m, uint64_t hash, uint32_t tag,
	      uint32_t *empty)
{
	uint32_t i = tag & m->mask;
	uint64_t s = m->slots[i];

	// Most hashes that are there are in their home slot: no scan.
	if ((uint32_t)(s >> 32) == tag && s != 0 &&
	    m->ring[(uint32_t)s - 1].hash == hash)
		return (uint32_t)s - 1;
	for (;;) {
		unsigned gaps, match;

		idmap__scan(m, i, tag, &gaps, &match);
		for (; match != 0; match &= match - 1) {
			uint32_t k   = (uint32_t)__builtin_ctz(match) / 2;
			uint32_t idx = (uint32_t)m->slots[i + k] - 1;

			if (m->ring[idx].hash == hash)
				return idx;
		}
		if (gaps != 0) {
			*empty = i + (uint32_t)__builtin_ctz(gaps) / 2;
			return IDMAP__NONE;
		}
		i = ((i | (IDMAP__LINE - 1)) + 1) & m->mask;
	}
}

bool
mri_idmap_find(const struct mri_idmap *m, uint64_t hash, uint32_t *val)
{
	uint32_t empty, idx = idmap__lookup(m, hash, idmap__tag(hash), &empty);

	if (idx == IDMAP__NONE)
		return false;
	if (val != NULL)
		*val = m->ring[idx].val;
	return true;
}

void
mri_idmap_prefetch(const struct mri_idmap *m, uint64_t hash)
{
	__builtin_prefetch(&m->slots[idmap__tag(hash) & m->mask]);
}

/* Empty slot \p hole, and move back into it every later slot of its run
 * whose home is at or before it: then no probe meets a hole before its
 * entry, without tombstones. Homes come from the slots' tags. */
static void
idmap__unlink(struct mri_idmap *m, uint32_t hole)
{
	for (uint32_t j = (hole + 1) & m->mask;; j = (j + 1) & m->mask) {
		uint64_t s = m->slots[j];
		uint32_t home;
		bool     move;

		if (s == 0)
			break;
		home = (uint32_t)(s >> 32) & m->mask;
		// hole in [home, j), cyclically: s may move there. Half
		// the time or so: chosen without a branch.
		move = ((j - home) & m->mask) >= ((j - hole) & m->mask);
		m->slots[hole] = move ? s : m->slots[hole];
		hole           = move ? j : hole;
	}
	m->slots[hole] = 0;
}

/* The slot whose value is \p want (of tag \p tag), or IDMAP__NONE. */
static uint32_t
idmap__where(const struct mri_idmap *m, uint32_t tag, uint64_t want)
{
	uint32_t i = tag & m->mask;

	for (;;) {
		unsigned gaps, match;

		idmap__scan(m, i, tag, &gaps, &match);
		for (; match != 0; match &= match - 1) {
			uint32_t k = (uint32_t)__builtin_ctz(match) / 2;

			if (m->slots[i + k] == want)
				return i + k;
		}
		if (gaps != 0)
			return IDMAP__NONE;
		i = ((i | (IDMAP__LINE - 1)) + 1) & m->mask;
	}
}

/* Drop the oldest entry. */
static void
idmap__evict(struct mri_idmap *m)
{
	uint32_t tag = m->ring[m->head].tag;
	uint32_t i   = idmap__where(m, tag, idmap__slot(tag, m->head));

	if (i != IDMAP__NONE) /* always */
		idmap__unlink(m, i);
	m->head = idmap__next(m, m->head);
	m->count--;
}

void
mri_idmap_put(struct mri_idmap *m, uint64_t hash, uint32_t val, int64_t ts)
{
	uint32_t           tag = idmap__tag(hash), empty = 0, idx, tail;
	struct idmap__ent *e;

	if ((idx = idmap__lookup(m, hash, tag, &empty)) != IDMAP__NONE) {
		if (val > m->ring[idx].val)
			m->ring[idx].val = val;
		return;
	}
	tail = m->head + m->count;
	if (tail >= m->len)
		tail -= m->len;
	e               = &m->ring[tail];
	e->hash         = hash;
	e->ts           = ts;
	e->val          = val;
	e->tag          = tag;
	m->slots[empty] = idmap__slot(tag, tail);
	if (m->count++ < m->cap)
		return;
	// Full: the oldest goes. Its slot is anywhere in the table; the
	// slot of the one that goes a few puts later is loaded now.
	if (m->count > IDMAP__AHEAD) {
		idx = m->head + IDMAP__AHEAD;
		if (idx >= m->len)
			idx -= m->len;
		__builtin_prefetch(&m->slots[m->ring[idx].tag & m->mask]);
	}
	idmap__evict(m);
}

size_t
mri_idmap_expire(struct mri_idmap *m, int64_t before)
{
	size_t n = 0;

	while (m->count > 0 && m->ring[m->head].ts < before) {
		idmap__evict(m);
		n++;
	}
	return n;
}

size_t
mri_idmap_count(const struct mri_idmap *m)
{
	return m->count;
}
