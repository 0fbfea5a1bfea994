/*
 * Tests for broker/alloc.c, mailroomd's calloc with jemalloc: every size
 * comes back zeroed, a product too large for size_t is refused, a
 * block of a received frame's size, used and freed, is zeroed again
 * without being unmapped (no page faults when it is written once more),
 * and so are FETCH replies of megabytes freed side by side.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "broker/alloc.h"

static bool
alloc_test__zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static long
alloc_test__minflt(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_minflt;
}

START_TEST(test_zeroed)
{
	static const size_t sizes[] = {
	    0,
	    1,
	    100,
	    MRD_CALLOC_MEMSET_MIN - 1,
	    MRD_CALLOC_MEMSET_MIN,
	    160 << 10,
	    MRD_CALLOC_MEMSET_MAX,
	    MRD_CALLOC_MEMSET_MAX + 1,
	    8 << 20,
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int round = 0; round < 4; round++) {
			size_t         n = sizes[i];
			unsigned char *p = malloc(n > 0 ? n : 1);

			ck_assert_ptr_nonnull(p);
			memset(p, 0xa5, n > 0 ? n : 1);
			free(p);
			// Likely the block just dirtied; zeroed all the same.
			p = calloc(1, n);
			ck_assert_ptr_nonnull(p);
			ck_assert_msg(alloc_test__zero(p, n),
				      "calloc(1, %zu) not zeroed", n);
			free(p);
			p = calloc(n > 0 ? n : 1, 1);
			ck_assert_ptr_nonnull(p);
			ck_assert(alloc_test__zero(p, n));
			free(p);
		}
	}
}
END_TEST

START_TEST(test_overflow_refused)
{
	// volatile: the compiler refuses the constant product.
	volatile size_t n = SIZE_MAX / 2;

	errno = 0;
	ck_assert_ptr_null(calloc(n, 3));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

START_TEST(test_frame_block_stays_mapped)
{
	size_t n = 160 << 10;
	long   before;

	for (int i = 0; i < 4; i++) {
		unsigned char *p = calloc(1, n);

		ck_assert_ptr_nonnull(p);
		memset(p, 0x5a, n);
		free(p);
	}
	before = alloc_test__minflt();
	for (int i = 0; i < 32; i++) {
		unsigned char *p = calloc(1, n);

		ck_assert_ptr_nonnull(p);
		ck_assert(alloc_test__zero(p, n));
		memset(p, 0x5a, n);
		free(p);
	}
	// Zeroed by madvise, each block would fault in its 40 pages again:
	// over a thousand faults here.
	ck_assert_int_lt(alloc_test__minflt() - before, 40);
}
END_TEST

START_TEST(test_large_blocks_stay_mapped)
{
	enum { NBLOCKS = 4 };
	size_t n = (size_t)4 << 20;
	long   before;

	// Four FETCH replies of 4 MiB in flight at once, then freed.
	for (int round = 0; round < 2; round++) {
		unsigned char *p[NBLOCKS];

		for (int i = 0; i < NBLOCKS; i++) {
			p[i] = calloc(1, n);
			ck_assert_ptr_nonnull(p[i]);
			memset(p[i], 0x5a, n);
		}
		for (int i = 0; i < NBLOCKS; i++)
			free(p[i]);
	}
	before = alloc_test__minflt();
	for (int round = 0; round < 4; round++) {
		unsigned char *p[NBLOCKS];

		for (int i = 0; i < NBLOCKS; i++) {
			p[i] = calloc(1, n);
			ck_assert_ptr_nonnull(p[i]);
			ck_assert(alloc_test__zero(p[i], n));
			memset(p[i], 0x5a, n);
		}
		for (int i = 0; i < NBLOCKS; i++)
			free(p[i]);
	}
	// Zeroed by madvise, each round would fault in its 4 096 pages
	// again: over 30 000 faults here.
	ck_assert_int_lt(alloc_test__minflt() - before, 512);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("alloc");
	TCase   *tc = tcase_create("calloc");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_zeroed);
	tcase_add_test(tc, test_overflow_refused);
	tcase_add_test(tc, test_frame_block_stays_mapped);
	tcase_add_test(tc, test_large_blocks_stay_mapped);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
