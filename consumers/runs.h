/*
 * Attempts by runs of offsets: the journal's memory of what was dispatched
 * (consumers/journal.c), per partition.
 *
 * A FETCH hands out mostly consecutive offsets of a few partitions, all at
 * the same attempt. Each partition (named by a 64-bit key) keeps its
 * offsets as runs [first, end) with one attempt each: sorted, not
 * overlapping, and two that touch with the same attempt are one. Putting a
 * run keeps, for each of its offsets, the larger attempt; a run above
 * every other is appended (or extends the last), the common case, so a
 * partition read in order holds one run however much it handed out. A
 * redelivery splits a run in up to three.
 *
 * Each run keeps the time it was last put to. mri_runs_expire drops runs
 * whose time is before a given one; when the map holds its most runs, a put
 * drops the lowest run of its partition (or of the first partition found
 * with runs), the one most likely committed long ago.
 *
 * Thread safety: not thread-safe; the caller serialises every call (find
 * only reads, and finds may run together).
 */
#ifndef MRI_RUNS_H
#define MRI_RUNS_H

#include <stddef.h>
#include <stdint.h>

struct mri_runs;

/** @brief The largest number of runs mri_runs_new takes. */
#define MRI_RUNS_MAX ((size_t)1 << 31)

/**
 * @brief A map of at most \p max runs (1 to MRI_RUNS_MAX), empty: its
 *        memory grows with the runs it holds.
 * @returns MR_OK, MR_EINVAL (max out of range) or MR_ENOMEM.
 */
int mri_runs_new(struct mri_runs **out, size_t max);

/** @brief Free the map; NULL is a no-op. */
void mri_runs_free(struct mri_runs *r);

/**
 * @brief Record \p attempt for offsets [first, first + count) of partition
 *        \p part, at time \p ts: each keeps the larger of its attempts.
 *        A count of 0 or an offset range past INT64_MAX is ignored.
 * @returns MR_OK or MR_ENOMEM (the map is as it was).
 */
int mri_runs_put(struct mri_runs *r, uint64_t part, int64_t first,
		 uint32_t count, uint32_t attempt, int64_t ts);

/**
 * @brief attempts[i] = the attempt recorded for offsets[i] of partition
 *        \p part, 0 if none, for i < \p n. Offsets in ascending order cost
 *        one search for the batch; any order is answered.
 */
void mri_runs_find(const struct mri_runs *r, uint64_t part, size_t n,
		   const int64_t *offsets, uint32_t *attempts);

/** @brief Drop the runs last put to before \p before.
 *  @returns the number dropped. */
size_t mri_runs_expire(struct mri_runs *r, int64_t before);

/** @returns the number of runs held. */
size_t mri_runs_count(const struct mri_runs *r);

#endif
