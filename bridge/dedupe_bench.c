/*
 * dedupe_bench: the publish dedupe window's cost per id, alone, no Kafka
 * (docs/benchmarks/publish.md, "The dedupe window"). Built with the
 * benchmarks (MR_BENCH), not run by CTest; needs a quiet core.
 *
 * Publishes as mailroomd's publisher does, in batches of 1 000 UUIDv7-like
 * ids of one topic: the batch's expiry, the lookups (the slots of the
 * records eight ahead prefetched), then every id confirmed. The window is
 * at its defaults (2 minutes, 1 000 000 ids), so after a million ids each
 * new one evicts the oldest. Prints the nanoseconds per id over all ids
 * and after the first two million (the full window), with the ids' making
 * and hashing alone measured apart and taken off, and the resident memory
 * at the end.
 *
 * Usage: dedupe_bench [ids (5000000)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/dedupe.h"
#include "core/clock.h"

#define DB__BATCH 1000
#define DB__AHEAD 8
#define DB__WINDOW_MS 120000
#define DB__MAX 1000000
#define DB__STEADY 2000000

static char db__ids[DB__BATCH][40];

/* Batch \p i's ids and keys. */
static void
db__make(size_t i, struct mri_dedupe_key *ks)
{
	for (size_t j = 0; j < DB__BATCH; j++) {
		snprintf(db__ids[j], sizeof(db__ids[j]),
			 "0190f3a2-7b1c-7%03zx-8%03zx-%012zx", j,
			 (i / DB__BATCH) & 0xfff, i + j);
		ks[j] = mri_dedupe_key("orders", 6, db__ids[j], 36);
	}
}

/* @returns nanoseconds per id over all \p n and, in *steady, over those
 *          after DB__STEADY; with \p d NULL, the ids' making alone. */
static double
db__run(struct mri_dedupe *d, size_t n, double *steady)
{
	static struct mri_dedupe_entry *es[DB__BATCH];
	static struct mri_dedupe_key    ks[DB__BATCH];
	uint64_t                        t0 = mri_mono_us(), tw = t0, ms = 1;

	for (size_t i = 0; i < n; i += DB__BATCH, ms++) {
		if (i == DB__STEADY)
			tw = mri_mono_us();
		db__make(i, ks);
		if (d == NULL)
			continue;
		mri_dedupe_expire(d, ms);
		for (size_t j = 0; j < DB__BATCH; j++) {
			if (j + DB__AHEAD < DB__BATCH)
				mri_dedupe_prefetch(d, ks[j + DB__AHEAD].hash);
			if (mri_dedupe_check_key(d, ks[j], ms, &es[j]) !=
			    MRI_DEDUPE_NEW) {
				fprintf(stderr, "dedupe_bench: id %zu seen\n",
					i + j);
				exit(1);
			}
		}
		for (size_t j = 0; j < DB__BATCH; j++)
			mri_dedupe_complete(d, es[j], (int32_t)(j % 4),
					    (int64_t)(i + j), ms);
	}
	*steady = n > DB__STEADY ? (double)(mri_mono_us() - tw) * 1000 /
				       (double)(n - DB__STEADY)
				 : 0;
	return (double)(mri_mono_us() - t0) * 1000 / (double)n;
}

static long
db__rss_kb(void)
{
	char  line[256];
	long  kb = -1;
	FILE *f  = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

int
main(int argc, char **argv)
{
	size_t                  n = argc > 1 ? strtoull(argv[1], NULL, 10)
					     : 5000000;
	struct mri_dedupe      *d;
	struct mri_dedupe_stats st;
	double                  base, base_steady, all, steady;
	long                    rss0 = db__rss_kb();

	n -= n % DB__BATCH;
	if (n == 0 || mri_dedupe_new(&d, DB__WINDOW_MS, DB__MAX) != 0) {
		fprintf(stderr, "usage: dedupe_bench [ids (5000000)]\n");
		return 2;
	}
	base = db__run(NULL, n, &base_steady);
	all  = db__run(d, n, &steady);
	mri_dedupe_stats(d, &st);
	printf("dedupe_bench: %zu ids, %zu in the window at the end\n", n,
	       st.entries);
	printf("  making and hashing the ids: %.1f ns/id (taken off below)\n",
	       base);
	printf("  the window: %.1f ns/id in all, %.1f ns/id once full\n",
	       all - base, n > DB__STEADY ? steady - base_steady : 0);
	printf("  resident memory: +%ld kB, %.1f bytes per id held\n",
	       db__rss_kb() - rss0,
	       (double)(db__rss_kb() - rss0) * 1024 / (double)st.entries);
	mri_dedupe_free(d);
	return 0;
}
