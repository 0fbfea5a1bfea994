/*
 * The supervisor's memory of failures (dlq/failures.c) against a plain
 * model: notes, takes and evictions in random order, with positions that
 * collide in the table on purpose.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq/failures.h"
#include "mailroom/error.h"

#define FT_MAX 64
#define FT_KEYS 200

struct ft_model {
	bool     known;
	int64_t  first, last;
	uint32_t count;
	char     reason[32];
};

START_TEST(test_note_take)
{
	struct mri_dlq_failures    *f;
	struct mri_dlq_failure_info in;
	char                        big[2000];

	ck_assert_int_eq(mri_dlq_failures_new(&f, 0), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_failures_new(&f, 4), MR_OK);
	ck_assert(!mri_dlq_failures_get(f, 7, &in));
	mri_dlq_failures_note(f, 7, 100, "first", 5);
	mri_dlq_failures_note(f, 7, 250, "second", 6);
	ck_assert(mri_dlq_failures_get(f, 7, &in));
	ck_assert_int_eq(in.first_ms, 100);
	ck_assert_int_eq(in.last_ms, 250);
	ck_assert_uint_eq(in.count, 2);
	ck_assert_str_eq(in.reason, "second");
	ck_assert_uint_eq(in.reason_len, 6);

	// A reason is cut at MRI_DLQ_REASON_MAX; NULL is "".
	memset(big, 'x', sizeof(big));
	mri_dlq_failures_note(f, 8, 1, big, sizeof(big));
	ck_assert(mri_dlq_failures_take(f, 8, &in));
	ck_assert_uint_eq(in.reason_len, MRI_DLQ_REASON_MAX);
	ck_assert_uint_eq(strlen(in.reason), MRI_DLQ_REASON_MAX);
	ck_assert(!mri_dlq_failures_take(f, 8, NULL));
	mri_dlq_failures_note(f, 9, 1, NULL, 3);
	ck_assert(mri_dlq_failures_take(f, 9, &in));
	ck_assert_str_eq(in.reason, "");

	// Full: the oldest last failure goes.
	mri_dlq_failures_note(f, 1, 10, "a", 1);
	mri_dlq_failures_note(f, 2, 5, "b", 1);
	mri_dlq_failures_note(f, 3, 20, "c", 1);
	ck_assert_uint_eq(mri_dlq_failures_count(f), 4);
	mri_dlq_failures_note(f, 4, 30, "d", 1);
	ck_assert_uint_eq(mri_dlq_failures_count(f), 4);
	ck_assert(!mri_dlq_failures_get(f, 2, NULL));
	ck_assert(mri_dlq_failures_get(f, 1, NULL));
	ck_assert(mri_dlq_failures_get(f, 7, NULL));
	mri_dlq_failures_free(f);
}
END_TEST

/* Random notes and takes against the model; positions that share their
 * home slot (multiples of a large power of two hash alike at the top
 * bits only after the multiply, so use small and spread keys both). */
START_TEST(test_against_model)
{
	struct mri_dlq_failures *f;
	static struct ft_model   m[FT_KEYS];
	unsigned                 seed = 12345;
	int64_t                  now  = 0;
	size_t                   known = 0;

	memset(m, 0, sizeof(m));
	ck_assert_int_eq(mri_dlq_failures_new(&f, FT_MAX), MR_OK);
	for (int step = 0; step < 200000; step++) {
		unsigned k   = (unsigned)rand_r(&seed) % FT_KEYS;
		uint64_t pos = (uint64_t)k * 0x100000001ULL;
		struct mri_dlq_failure_info in;
		char     why[32];

		now++;
		if (rand_r(&seed) % 3 != 0) {
			int len = snprintf(why, sizeof(why), "r%d", step);

			if (!m[k].known && known == FT_MAX) {
				// The model evicts the oldest last too.
				unsigned o = FT_KEYS;

				for (unsigned i = 0; i < FT_KEYS; i++)
					if (m[i].known &&
					    (o == FT_KEYS ||
					     m[i].last < m[o].last))
						o = i;
				m[o].known = false;
				known--;
			}
			mri_dlq_failures_note(f, pos, now, why, (size_t)len);
			if (!m[k].known) {
				m[k].known = true;
				m[k].first = now;
				m[k].count = 0;
				known++;
			}
			m[k].last = now;
			m[k].count++;
			snprintf(m[k].reason, sizeof(m[k].reason), "%s", why);
		} else {
			bool got = mri_dlq_failures_take(f, pos, &in);

			ck_assert_int_eq(got, m[k].known);
			if (got) {
				ck_assert_int_eq(in.first_ms, m[k].first);
				ck_assert_int_eq(in.last_ms, m[k].last);
				ck_assert_uint_eq(in.count, m[k].count);
				ck_assert_str_eq(in.reason, m[k].reason);
				m[k].known = false;
				known--;
			}
		}
		ck_assert_uint_eq(mri_dlq_failures_count(f), known);
	}
	for (unsigned k = 0; k < FT_KEYS; k++)
		ck_assert_int_eq(mri_dlq_failures_get(
				     f, (uint64_t)k * 0x100000001ULL, NULL),
				 m[k].known);
	mri_dlq_failures_free(f);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("dlq_failures");
	TCase   *tc = tcase_create("failures");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_note_take);
	tcase_add_test(tc, test_against_model);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
