/*
 * The clocks and deadline arithmetic: monotonic milliseconds for waits and
 * deadlines, wall milliseconds for what is written down (ce_time, journal
 * records, logs), and condition variables that wait on the monotonic clock,
 * so that a wall-clock step never shortens or stretches a wait.
 *
 * Thread safety: every function is thread-safe.
 */
#ifndef MRI_CLOCK_H
#define MRI_CLOCK_H

#include <pthread.h>
#include <stdint.h>

/** @returns milliseconds on the monotonic clock (an arbitrary origin). */
uint64_t mri_mono_ms(void);

/** @returns microseconds on the same clock. */
uint64_t mri_mono_us(void);

/** @returns milliseconds since the Unix epoch on the wall clock. */
int64_t mri_wall_ms(void);

/** @returns the monotonic deadline \p ms from now (saturating). */
uint64_t mri_deadline_in(uint64_t ms);

/**
 * @returns the milliseconds left until the monotonic \p deadline, 0 once
 *          it has passed.
 */
uint64_t mri_deadline_left(uint64_t deadline);

/**
 * @brief Initialise \p cv to wait on the monotonic clock (for
 *        mri_cond_wait_until).
 * @returns 0 or an errno value.
 */
int mri_cond_init(pthread_cond_t *cv);

/**
 * @brief Wait on \p cv (made by mri_cond_init) with \p mu held, until
 *        signalled or the monotonic \p deadline passes.
 * @returns 0 when signalled (or woken spuriously), ETIMEDOUT once the
 *          deadline has passed. The caller re-checks its condition either
 *          way.
 */
int mri_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			uint64_t deadline);

#endif
