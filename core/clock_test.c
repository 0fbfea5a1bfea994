/*
 * core/clock.c: deadline arithmetic at its edges, and a monotonic condition
 * variable that times out and that a signal wakes. No assertion depends on
 * how fast this machine is: only on order (a wait never ends before its
 * deadline) and on a signal arriving at all.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/clock.h"

START_TEST(test_deadline_edges)
{
	uint64_t before = mri_mono_ms();
	uint64_t d      = mri_deadline_in(60000);

	ck_assert_uint_ge(d, before + 60000);
	ck_assert_uint_le(mri_deadline_left(d), 60000);
	ck_assert_uint_eq(mri_deadline_in(UINT64_MAX), UINT64_MAX);
	ck_assert_uint_eq(mri_deadline_left(0), 0);
	ck_assert_uint_eq(mri_deadline_left(before), 0);
	ck_assert_uint_gt(mri_deadline_left(UINT64_MAX), UINT64_MAX / 2);
	ck_assert_int_gt(mri_wall_ms(), 1700000000000LL);
}
END_TEST

START_TEST(test_wait_times_out_not_before)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t  cv;
	uint64_t        deadline;
	int             rc;

	ck_assert_int_eq(mri_cond_init(&cv), 0);
	pthread_mutex_lock(&mu);
	deadline = mri_deadline_in(50);
	while ((rc = mri_cond_wait_until(&cv, &mu, deadline)) == 0)
		;
	ck_assert_int_eq(rc, ETIMEDOUT);
	ck_assert_uint_ge(mri_mono_ms(), deadline);
	// A deadline already past does not wait at all.
	ck_assert_int_eq(mri_cond_wait_until(&cv, &mu, 0), ETIMEDOUT);
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&cv);
}
END_TEST

struct waker {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            set;
};

static void *
waker__run(void *arg)
{
	struct waker *w = arg;

	pthread_mutex_lock(&w->mu);
	w->set = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

START_TEST(test_signal_wakes)
{
	struct waker w = {.mu = PTHREAD_MUTEX_INITIALIZER};
	pthread_t    t;

	ck_assert_int_eq(mri_cond_init(&w.cv), 0);
	pthread_mutex_lock(&w.mu);
	ck_assert_int_eq(pthread_create(&t, NULL, waker__run, &w), 0);
	// A deadline far away: only the signal can end this wait.
	while (!w.set)
		ck_assert_int_eq(
		    mri_cond_wait_until(&w.cv, &w.mu, UINT64_MAX - 1), 0);
	pthread_mutex_unlock(&w.mu);
	pthread_join(t, NULL);
	pthread_cond_destroy(&w.cv);
}
END_TEST

static Suite *
clock_suite(void)
{
	Suite *s  = suite_create("clock");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_deadline_edges);
	tcase_add_test(tc, test_wait_times_out_not_before);
	tcase_add_test(tc, test_signal_wakes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(clock_suite());
	int      failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
