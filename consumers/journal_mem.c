#include "journal_mem.h"

#include <stdlib.h>
#include <string.h>

#include "consumers/idmap.h"
#include "consumers/runs.h"
#include "core/log.h"
#include "mailroom/error.h"

/* A record, little-endian (journal.h), at byte:
 *   0  kind ('D' or 'A')       1  version (1 or 2)
 *   2  reserved (2 bytes, 0)   4  time written, ms since the epoch (8)
 *   12 number of entries (4)
 * then the entries: in version 1, 12 bytes each: hash (8), attempt (4; 0
 * in acks); in version 2 (dispatches only), runs of 24 bytes: partition
 * key (8), first offset (8), count (4), attempt (4). Then the writer's id
 * (8). A reader takes the entries its count says and ignores what
 * follows, so records without the writer (the first mailroomd's) and with
 * it are read alike by either. */
#define JOURNAL__EXPIRE_MS 1000 /* runs expire at most this often */
#define JOURNAL__LOOKUP_BATCH 16 /* lookups prefetched at once */
#define JOURNAL__AHEAD 8         /* puts prefetched ahead */

static void
journal__le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
journal__rd(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---- hashes ----------------------------------------------------------- */

uint64_t
mri_journal_hash(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t
mri_journal_part_key(const char *topic, int32_t partition)
{
	uint8_t  b[4];
	uint64_t h = mri_journal_hash(MRI_JOURNAL_HASH_INIT, topic,
				      strlen(topic));

	journal__le(b, (uint32_t)partition, 4);
	return mri_journal_hash(h, b, sizeof(b));
}

uint64_t
mri_journal_pos_of(uint64_t part, int64_t offset)
{
	uint8_t b[8];

	journal__le(b, (uint64_t)offset, 8);
	return mri_journal_hash(part, b, sizeof(b));
}

uint64_t
mri_journal_pos_hash(const char *topic, int32_t partition, int64_t offset)
{
	return mri_journal_pos_of(mri_journal_part_key(topic, partition),
				  offset);
}

/* ---- records ---------------------------------------------------------- */

bool
mri_journal_rec_parse(const uint8_t *p, size_t len, struct mri_journal_rec *r)
{
	size_t end;

	if (len < MRI_JOURNAL_HDR)
		return false;
	if (p[1] == MRI_JOURNAL_V1 &&
	    (p[0] == MRI_JOURNAL_DISPATCH || p[0] == MRI_JOURNAL_ACK))
		r->esz = MRI_JOURNAL_ENTRY;
	else if (p[1] == MRI_JOURNAL_V2 && p[0] == MRI_JOURNAL_DISPATCH)
		r->esz = MRI_JOURNAL_RUN;
	else
		return false;
	r->kind    = p[0];
	r->version = p[1];
	r->ts      = (int64_t)journal__rd(p + 4, 8);
	r->n       = (uint32_t)journal__rd(p + 12, 4);
	if ((len - MRI_JOURNAL_HDR) / r->esz < r->n)
		return false;
	r->entries    = p + MRI_JOURNAL_HDR;
	end           = MRI_JOURNAL_HDR + (size_t)r->n * r->esz;
	r->has_writer = len - end >= MRI_JOURNAL_WRITER;
	r->writer = r->has_writer ? journal__rd(p + end, MRI_JOURNAL_WRITER)
				  : 0;
	return true;
}

struct mri_journal_entry
mri_journal_rec_entry(const struct mri_journal_rec *r, uint32_t i)
{
	const uint8_t *e = r->entries + (size_t)i * MRI_JOURNAL_ENTRY;

	return (struct mri_journal_entry){journal__rd(e, 8),
					  (uint32_t)journal__rd(e + 8, 4)};
}

struct mri_journal_run
mri_journal_rec_run(const struct mri_journal_rec *r, uint32_t i)
{
	const uint8_t *e = r->entries + (size_t)i * MRI_JOURNAL_RUN;

	return (struct mri_journal_run){journal__rd(e, 8),
					(int64_t)journal__rd(e + 8, 8),
					(uint32_t)journal__rd(e + 16, 4),
					(uint32_t)journal__rd(e + 20, 4)};
}

/* A record of \p n entries of \p esz bytes: its header and trailer
 * written, its entries to fill at buf + MRI_JOURNAL_HDR. */
static uint8_t *
journal__record(uint64_t writer, int kind, int version, size_t n,
		size_t esz, int64_t now, size_t *len)
{
	uint8_t *buf;

	if (n > UINT32_MAX)
		return NULL;
	*len = MRI_JOURNAL_HDR + n * esz + MRI_JOURNAL_WRITER;
	if ((buf = malloc(*len)) == NULL)
		return NULL;
	buf[0] = (uint8_t)kind;
	buf[1] = (uint8_t)version;
	buf[2] = buf[3] = 0;
	journal__le(buf + 4, (uint64_t)now, 8);
	journal__le(buf + 12, n, 4);
	journal__le(buf + MRI_JOURNAL_HDR + n * esz, writer,
		    MRI_JOURNAL_WRITER);
	return buf;
}

uint8_t *
mri_journal_rec_entries(uint64_t writer, enum mri_journal_kind kind,
			const struct mri_journal_entry *e, size_t n,
			int64_t now, size_t *len)
{
	uint8_t *buf = journal__record(writer, kind, MRI_JOURNAL_V1, n,
				       MRI_JOURNAL_ENTRY, now, len);

	for (size_t i = 0; buf != NULL && i < n; i++) {
		uint8_t *p = buf + MRI_JOURNAL_HDR + i * MRI_JOURNAL_ENTRY;

		journal__le(p, e[i].hash, 8);
		journal__le(p + 8, e[i].attempt, 4);
	}
	return buf;
}

uint8_t *
mri_journal_rec_runs(uint64_t writer, const struct mri_journal_run *r,
		     size_t n, int64_t now, size_t *len)
{
	uint8_t *buf = journal__record(writer, MRI_JOURNAL_DISPATCH,
				       MRI_JOURNAL_V2, n, MRI_JOURNAL_RUN, now,
				       len);

	for (size_t i = 0; buf != NULL && i < n; i++) {
		uint8_t *p = buf + MRI_JOURNAL_HDR + i * MRI_JOURNAL_RUN;

		journal__le(p, r[i].part, 8);
		journal__le(p + 8, (uint64_t)r[i].first, 8);
		journal__le(p + 16, r[i].count, 4);
		journal__le(p + 20, r[i].attempt, 4);
	}
	return buf;
}

/* ---- the memory ------------------------------------------------------- */

int
mri_journal_mem_init(struct mri_journal_mem *m, size_t max_entries,
		     uint64_t window_ms, uint64_t writer, const char *topic)
{
	int err;

	*m = (struct mri_journal_mem){.max_entries = max_entries,
				      .window_ms   = window_ms,
				      .writer      = writer,
				      .topic       = topic};
	if ((err = mri_runs_new(&m->runs, max_entries)) != MR_OK ||
	    (err = mri_idmap_new(&m->acked, max_entries)) != MR_OK) {
		mri_journal_mem_fini(m);
		return err;
	}
	return MR_OK;
}

void
mri_journal_mem_fini(struct mri_journal_mem *m)
{
	mri_runs_free(m->runs);
	mri_idmap_free(m->attempts);
	mri_idmap_free(m->acked);
	m->runs     = NULL;
	m->attempts = NULL;
	m->acked    = NULL;
}

/* The map of version 1's dispatch entries (by position), made when the
 * first is read: mailroomd writes runs since version 2. */
static struct mri_idmap *
journal__v1_attempts(struct mri_journal_mem *m)
{
	if (m->attempts == NULL &&
	    mri_idmap_new(&m->attempts, m->max_entries) != MR_OK)
		mri_warn("component=journal topic=%s msg=\"out of memory for "
			 "the attempts of version 1 records: they are not "
			 "counted\"",
			 m->topic);
	return m->attempts;
}

static void
journal__apply_runs(struct mri_journal_mem *m, const struct mri_journal_rec *r)
{
	for (uint32_t i = 0; i < r->n; i++) {
		struct mri_journal_run x = mri_journal_rec_run(r, i);

		if (mri_runs_put(m->runs, x.part, x.first, x.count, x.attempt,
				 r->ts) != MR_OK)
			mri_warn("component=journal topic=%s msg=\"out of "
				 "memory for a run of attempts: it is not "
				 "counted\"",
				 m->topic);
	}
}

bool
mri_journal_mem_apply(struct mri_journal_mem *m, const uint8_t *p,
		      size_t len, int64_t now, bool skip_self)
{
	struct mri_journal_rec r;
	struct mri_idmap      *map;

	if (!mri_journal_rec_parse(p, len, &r) ||
	    r.ts < now - (int64_t)m->window_ms ||
	    (skip_self && r.has_writer && r.writer == m->writer))
		return false;
	if (r.esz == MRI_JOURNAL_RUN) {
		journal__apply_runs(m, &r);
		return true;
	}
	map = r.kind == MRI_JOURNAL_ACK ? m->acked : journal__v1_attempts(m);
	if (map == NULL)
		return false;
	for (uint32_t i = 0; i < r.n; i++) {
		struct mri_journal_entry e = mri_journal_rec_entry(&r, i);

		// The table's line of an entry a few on loads meanwhile.
		if (i + JOURNAL__AHEAD < r.n)
			mri_idmap_prefetch(
			    map, mri_journal_rec_entry(&r, i + JOURNAL__AHEAD)
				     .hash);
		mri_idmap_put(map, e.hash, e.attempt, r.ts);
	}
	return true;
}

void
mri_journal_mem_expire(struct mri_journal_mem *m, int64_t now)
{
	int64_t before = now - (int64_t)m->window_ms;

	if (m->attempts != NULL)
		mri_idmap_expire(m->attempts, before);
	mri_idmap_expire(m->acked, before);
	if (now - m->expired_at >= JOURNAL__EXPIRE_MS) {
		mri_runs_expire(m->runs, before);
		m->expired_at = now;
	}
}

void
mri_journal_mem_lookup(const struct mri_journal_mem *m, size_t n,
		       uint64_t part, const int64_t *offsets,
		       uint32_t *attempts, const uint64_t *id, bool *acked)
{
	if (offsets != NULL) {
		mri_runs_find(m->runs, part, n, offsets, attempts);
		for (size_t i = 0; m->attempts != NULL && i < n; i++) {
			uint32_t a = 0;

			mri_idmap_find(m->attempts,
				       mri_journal_pos_of(part, offsets[i]),
				       &a);
			if (a > attempts[i])
				attempts[i] = a;
		}
	}
	// A batch's table lines are fetched together, not one miss after
	// another.
	for (size_t b = 0; id != NULL && b < n; b += JOURNAL__LOOKUP_BATCH) {
		size_t end = n - b < JOURNAL__LOOKUP_BATCH
				 ? n
				 : b + JOURNAL__LOOKUP_BATCH;

		for (size_t i = b; i < end; i++)
			mri_idmap_prefetch(m->acked, id[i]);
		for (size_t i = b; i < end; i++)
			acked[i] = mri_idmap_find(m->acked, id[i], NULL);
	}
}
