/*
 * Histograms (core/hist.c): a value goes to the first bucket whose bound
 * is at or above it, +Inf past the last; sum and count follow; adds from
 * several threads all land.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>

#include "core/hist.h"

static const uint64_t hist_le[] = {1, 5, 10, 100};

START_TEST(test_buckets)
{
	struct mri_hist h;
	uint64_t        want[5] = {2, 1, 2, 1, 2};

	mri_hist_init(&h, hist_le, 4);
	mri_hist_add(&h, 0, 1);
	mri_hist_add(&h, 1, 1);   /* le is inclusive */
	mri_hist_add(&h, 2, 1);
	mri_hist_add(&h, 10, 2);
	mri_hist_add(&h, 11, 1);
	mri_hist_add(&h, 101, 1); /* +Inf */
	mri_hist_add(&h, UINT64_MAX / 4, 1);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(atomic_load(&h.bucket[i]), want[i]);
	ck_assert_uint_eq(atomic_load(&h.count), 8);
	ck_assert_uint_eq(atomic_load(&h.sum),
			  0 + 1 + 2 + 20 + 11 + 101 + UINT64_MAX / 4);
	// Bounds past MRI_HIST_MAX are left out.
	mri_hist_init(&h, hist_le, MRI_HIST_MAX + 5);
	ck_assert_uint_eq(h.n, MRI_HIST_MAX);
}
END_TEST

static void *
hist__adder(void *arg)
{
	for (uint64_t v = 0; v < 20000; v++)
		mri_hist_add(arg, v % 200, 1);
	return NULL;
}

START_TEST(test_threads)
{
	struct mri_hist h;
	pthread_t       t[4];
	uint64_t        total = 0;

	mri_hist_init(&h, hist_le, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hist__adder, &h),
				 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i <= 4; i++)
		total += atomic_load(&h.bucket[i]);
	ck_assert_uint_eq(total, 80000);
	ck_assert_uint_eq(atomic_load(&h.count), 80000);
	// Each thread adds 0..199 a hundred times.
	ck_assert_uint_eq(atomic_load(&h.sum), 4 * 100 * (199 * 200 / 2));
	ck_assert_uint_eq(atomic_load(&h.bucket[4]), 4 * 100 * 99);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("hist");
	TCase   *tc = tcase_create("hist");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_buckets);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
