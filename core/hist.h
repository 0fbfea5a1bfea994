/*
 * A histogram of durations for /metrics: counts per bucket (each bucket's
 * own, not cumulative; the last is +Inf), their sum and count, all
 * atomics, so that any thread adds and any thread reads without a lock.
 * The bounds are a static array the histogram points to, in the unit the
 * values are added in (µs for the publish latency, ms for the ack latency).
 *
 * Thread safety: mri_hist_add and the reads from any thread; a reader may
 * see an add's bucket before its sum (Prometheus tolerates that skew).
 */
#ifndef MRI_HIST_H
#define MRI_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Buckets a histogram may have, +Inf not counted. */
#define MRI_HIST_MAX 24

struct mri_hist {
	const uint64_t *le; /* upper bounds, ascending; static */
	size_t          n;  /* how many, at most MRI_HIST_MAX */
	atomic_ullong   bucket[MRI_HIST_MAX + 1]; /* +Inf at [n] */
	atomic_ullong   count;
	atomic_ullong   sum;
};

/** @brief An empty histogram with the \p n bounds \p le (borrowed for
 *         its life; n clamped to MRI_HIST_MAX). */
void mri_hist_init(struct mri_hist *h, const uint64_t *le, size_t n);

/** @brief Count \p n values of \p v. */
void mri_hist_add(struct mri_hist *h, uint64_t v, uint64_t n);

#endif
