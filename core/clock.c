#include "clock.h"

#include <errno.h>
#include <time.h>

uint64_t
mri_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
mri_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int64_t
mri_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
mri_deadline_in(uint64_t ms)
{
	uint64_t now = mri_mono_ms();

	return ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
}

uint64_t
mri_deadline_left(uint64_t deadline)
{
	uint64_t now = mri_mono_ms();

	return deadline > now ? deadline - now : 0;
}

int
mri_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int                rc;

	if ((rc = pthread_condattr_init(&ca)) != 0)
		return rc;
	if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

int
mri_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
		    uint64_t deadline)
{
	struct timespec ts;

	if (mri_mono_ms() >= deadline)
		return ETIMEDOUT;
	// A deadline past what a timespec holds waits without one.
	if (deadline / 1000 > (uint64_t)INT32_MAX)
		return pthread_cond_wait(cv, mu);
	ts.tv_sec  = (time_t)(deadline / 1000);
	ts.tv_nsec = (long)(deadline % 1000) * 1000000;
	return pthread_cond_timedwait(cv, mu, &ts);
}
