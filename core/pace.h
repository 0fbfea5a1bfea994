/*
 * Pacing at a rate (records per second), for `mailroom dlq replay` and
 * ADMIN dlq.replay (SQS redrive velocity's idea): record k goes no earlier
 * than start + k / rate, so N records take at least (N - 1) / rate s, and a
 * caller that works in chunks asks for a second's worth at a time.
 *
 * Thread safety: pure functions, thread-safe.
 */
#ifndef MRI_PACE_H
#define MRI_PACE_H

#include <stdint.h>

/* The replay rate's default and bounds (records per second). */
#define MRI_PACE_RATE_DEFAULT 100
#define MRI_PACE_RATE_MAX 10000

/** @returns the records of one chunk at \p rate per second: a second's
 *           worth, at least 1, at most 1000. */
uint32_t mri_pace_chunk(uint32_t rate);

/**
 * @returns the ms to wait, from \p start_ms (when record 0 went) and \p
 *          now_ms, before record number \p k (0-based) may go at \p rate
 *          per second (0: unpaced, never waits); rounded up, never early.
 */
int64_t mri_pace_wait_ms(int64_t start_ms, int64_t now_ms, uint64_t k,
			 uint32_t rate);

#endif
