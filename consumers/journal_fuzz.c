/*
 * libFuzzer target for the journal's records (tests/fuzz/run_journal_fuzz.sh
 * builds it; tests/fuzz/replay_main.c replays a corpus without libFuzzer).
 * A journal topic is anyone's to write to: what is read from it must never
 * take mailroomd down.
 *
 * An input is records one after the other, each a length (2 bytes,
 * little-endian) and that many bytes; one cut short is the rest of the
 * input. Each is applied to two memories at the same time: a large one
 * (nothing is ever dropped for room while the input is small) and one of
 * 4 entries (always full). Then, for every record that parses:
 *   - its entries lie within it (read byte by byte, for AddressSanitizer);
 *   - written again with the same entries, time and writer, it parses to
 *     the same record;
 *   - applying it succeeded exactly when it is within the window and not
 *     the memory's own (every other record is applied as its own);
 *   - once applied to the large memory, each of its entries is found
 *     there: an acked id is acked, and an attempt (of a position, or of
 *     both ends of a run that is not empty and within int64) is at least
 *     the record's.
 * At the end both memories expire everything and are freed. Any failure
 * aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/idmap.h"
#include "consumers/journal_mem.h"
#include "consumers/runs.h"
#include "mailroom/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ__NOW ((int64_t)1764979200000) /* 2025-12-06, ms */
#define FUZZ__WINDOW 3600000
#define FUZZ__WRITER 0x6d61696c726f6f6dULL
#define FUZZ__LARGE ((size_t)1 << 16)

static volatile uint8_t journal_fuzz__sink;

/* Read every byte of [p, p + n), which must lie within [lo, hi). */
static void
journal_fuzz__touch(const uint8_t *p, size_t n, const uint8_t *lo,
		    const uint8_t *hi)
{
	uint8_t x = 0;

	if (n == 0)
		return;
	if (p < lo || p > hi || n > (size_t)(hi - p))
		abort();
	for (size_t i = 0; i < n; i++)
		x ^= p[i];
	journal_fuzz__sink ^= x;
}

/* Written again, \p r parses to itself. */
static void
journal_fuzz__round_trip(const struct mri_journal_rec *r)
{
	struct mri_journal_rec    back;
	struct mri_journal_entry *e    = NULL;
	struct mri_journal_run   *runs = NULL;
	uint8_t                  *buf;
	size_t                    len;

	if (r->esz == MRI_JOURNAL_RUN) {
		runs = calloc(r->n + 1, sizeof(*runs));
		for (uint32_t i = 0; runs != NULL && i < r->n; i++)
			runs[i] = mri_journal_rec_run(r, i);
		buf = runs == NULL ? NULL
				   : mri_journal_rec_runs(r->writer, runs, r->n,
							  r->ts, &len);
	} else {
		e = calloc(r->n + 1, sizeof(*e));
		for (uint32_t i = 0; e != NULL && i < r->n; i++)
			e[i] = mri_journal_rec_entry(r, i);
		buf = e == NULL ? NULL
				: mri_journal_rec_entries(
				      r->writer, (enum mri_journal_kind)r->kind,
				      e, r->n, r->ts, &len);
	}
	if (buf == NULL)
		abort(); // small inputs: never out of memory
	if (!mri_journal_rec_parse(buf, len, &back) ||
	    back.kind != r->kind || back.version != r->version ||
	    back.ts != r->ts || back.n != r->n || back.esz != r->esz ||
	    !back.has_writer || back.writer != r->writer ||
	    memcmp(back.entries, r->entries, (size_t)r->n * r->esz) != 0)
		abort();
	free(buf);
	free(e);
	free(runs);
}

/* Each entry of \p r, applied to \p m, is found there. */
static void
journal_fuzz__found(const struct mri_journal_mem *m,
		    const struct mri_journal_rec *r)
{
	for (uint32_t i = 0; i < r->n; i++) {
		uint32_t got[2] = {0, 0};

		if (r->kind == MRI_JOURNAL_ACK) {
			uint64_t h     = mri_journal_rec_entry(r, i).hash;
			bool     acked = false;

			mri_journal_mem_lookup(m, 1, 0, NULL, NULL, &h,
					       &acked);
			if (!acked)
				abort();
		} else if (r->esz == MRI_JOURNAL_ENTRY) {
			struct mri_journal_entry e;

			e = mri_journal_rec_entry(r, i);
			if (m->attempts == NULL ||
			    !mri_idmap_find(m->attempts, e.hash, got) ||
			    got[0] < e.attempt)
				abort();
		} else {
			struct mri_journal_run x = mri_journal_rec_run(r, i);
			int64_t                ends[2];

			if (x.count == 0 || x.first < 0 ||
			    x.first > INT64_MAX - (int64_t)x.count)
				continue; // ignored, as runs.h says
			ends[0] = x.first;
			ends[1] = x.first + (int64_t)x.count - 1;
			mri_journal_mem_lookup(m, 2, x.part, ends, got, NULL,
					       NULL);
			if (got[0] < x.attempt || got[1] < x.attempt)
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mri_journal_mem large, small;
	size_t                 at = 0, put = 0;
	bool                   skip_self = false;

	if (mri_journal_mem_init(&large, FUZZ__LARGE, FUZZ__WINDOW,
				 FUZZ__WRITER, "fuzz") != MR_OK ||
	    mri_journal_mem_init(&small, 4, FUZZ__WINDOW, FUZZ__WRITER,
				 "fuzz") != MR_OK)
		abort();
	while (at < size) {
		size_t                 len = size - at;
		const uint8_t         *p;
		struct mri_journal_rec r;
		bool                   ok, want, got;

		if (len >= 2 && (size_t)(data[at] | data[at + 1] << 8) <=
				    len - 2) {
			len = (size_t)(data[at] | data[at + 1] << 8);
			at += 2;
		}
		p  = data + at;
		ok = mri_journal_rec_parse(p, len, &r);
		want = ok && r.ts >= FUZZ__NOW - FUZZ__WINDOW &&
		       !(skip_self && r.has_writer && r.writer == FUZZ__WRITER);
		got  = mri_journal_mem_apply(&large, p, len, FUZZ__NOW,
					     skip_self);
		if (got != want ||
		    mri_journal_mem_apply(&small, p, len, FUZZ__NOW,
					  skip_self) != want)
			abort();
		if (ok) {
			journal_fuzz__touch(r.entries, (size_t)r.n * r.esz, p,
					    p + len);
			journal_fuzz__round_trip(&r);
		}
		// Nothing was dropped for room: a run put splits at most
		// one run in three.
		put += ok ? (size_t)r.n : 0;
		if (got && 3 * put < FUZZ__LARGE)
			journal_fuzz__found(&large, &r);
		mri_journal_mem_expire(&small, FUZZ__NOW);
		at += len;
		skip_self = !skip_self;
	}
	mri_journal_mem_expire(&large, INT64_MAX);
	mri_journal_mem_expire(&small, INT64_MAX);
	mri_journal_mem_fini(&large);
	mri_journal_mem_fini(&small);
	return 0;
}
