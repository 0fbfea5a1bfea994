/*
 * Pacing (core/pace.c): the chunk, the wait, and that N records take at
 * least (N - 1) / rate whatever the rate.
 */
#include <check.h>
#include <stdint.h>

#include "core/pace.h"

START_TEST(test_rate)
{
	ck_assert_uint_eq(mri_pace_chunk(0), 1);
	ck_assert_uint_eq(mri_pace_chunk(1), 1);
	ck_assert_uint_eq(mri_pace_chunk(100), 100);
	ck_assert_uint_eq(mri_pace_chunk(MRI_PACE_RATE_MAX), 1000);
	// Record k goes at start + k / rate, rounded up.
	ck_assert_int_eq(mri_pace_wait_ms(1000, 1000, 0, 10), 0);
	ck_assert_int_eq(mri_pace_wait_ms(1000, 1000, 1, 10), 100);
	ck_assert_int_eq(mri_pace_wait_ms(1000, 1050, 1, 10), 50);
	ck_assert_int_eq(mri_pace_wait_ms(1000, 1200, 1, 10), 0);
	ck_assert_int_eq(mri_pace_wait_ms(0, 0, 1, 3), 334);
	ck_assert_int_eq(mri_pace_wait_ms(0, 0, 3, 3), 1000);
	ck_assert_int_eq(mri_pace_wait_ms(0, 0, 5, 0), 0);
	// So N records take at least (N - 1) / rate.
	for (uint32_t rate = 1; rate < 2000; rate += 37) {
		int64_t t = 0;

		for (uint64_t k = 0; k < 50; k++)
			t += mri_pace_wait_ms(0, t, k, rate);
		ck_assert_int_ge(t * (int64_t)rate, 49 * 1000);
	}
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("pace");
	TCase   *tc = tcase_create("pace");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_rate);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
