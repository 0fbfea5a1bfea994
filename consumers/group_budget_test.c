/*
 * Tests of a group's memory budget without a cluster: how the budget is
 * split (mri_group_budget), and when the group asks for a wake of its
 * fetcher (group__wake_due, consumers/group_wake.c), with librdkafka
 * 2.0.2's own figures: at the consumers' default budget
 * (consumer.memory_mb 32, 4 partitions) a partition's queue is bounded at
 * 4096 kbytes and 4096 records, and librdkafka stops fetching at
 * 4 096 000 payload bytes.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

#include "consumers/group.h"
#include "consumers/group_internal.h"

/* The budget's split: a quarter for the buffers, half for the prefetch
 * (per partition), a quarter for the acked ids; each bounded. */
START_TEST(test_group_budget)
{
	struct mri_group_budget b;

	mri_group_budget((size_t)64 << 20, 4, &b);
	ck_assert_uint_eq(b.buffers, (size_t)16 << 20);
	ck_assert_uint_eq(b.prefetch_kb, 8192); // 32 MiB over 4
	ck_assert_uint_eq(b.fetch_bytes, 1 << 20);
	ck_assert_uint_eq(b.prefetch_msgs, 8192);
	ck_assert_uint_eq(b.acked_ids, ((size_t)16 << 20) / MRI_GROUP_ID_BYTES);
	// 0 partitions: 4.
	mri_group_budget((size_t)64 << 20, 0, &b);
	ck_assert_uint_eq(b.prefetch_kb, 8192);
	// Small: each part at its floor.
	mri_group_budget(1 << 20, 256, &b);
	ck_assert_uint_eq(b.buffers, 1 << 18);
	ck_assert_uint_eq(b.prefetch_kb, 64);
	ck_assert_uint_eq(b.prefetch_msgs, 100);
	ck_assert_uint_eq(b.fetch_bytes, 64 << 10);
	ck_assert_uint_eq(b.acked_ids, ((size_t)1 << 18) / MRI_GROUP_ID_BYTES);
	mri_group_budget(1 << 10, 1, &b);
	ck_assert_uint_eq(b.acked_ids, 1000);
}
END_TEST

/* 10 KiB records, as bench/run_curves.sh's cpayload point: librdkafka
 * stopped fetching with 401 queued (4 106 240 bytes, debug log of
 * 2026-12-06), which a bound taken as 4096 KiB (409 records) missed:
 * that partition then waited about a second for its broker's thread. */
START_TEST(test_wake_large_records)
{
	struct mri_group g = {0};

	g.prefetch_kb   = 4096;
	g.prefetch_msgs = 6553;
	ck_assert(group__wake_due(&g, 401, 206, 10240));
	ck_assert(group__wake_due(&g, 496, 304, 10240));
	// An eighth early of 400 records (4 096 000 / 10 240), not of 409.
	ck_assert(group__wake_due(&g, 351, 150, 10240));
	ck_assert(!group__wake_due(&g, 349, 150, 10240));
	// Not yet under the bound after the read: it fetches anyway later.
	ck_assert(!group__wake_due(&g, 500, 400, 10240));
	// Far under it before the read: librdkafka was fetching.
	ck_assert(!group__wake_due(&g, 200, 10, 10240));
}
END_TEST

/* Small records: the count bound comes first. */
START_TEST(test_wake_small_records)
{
	struct mri_group g = {0};

	g.prefetch_kb   = 4096;
	g.prefetch_msgs = 6553;
	ck_assert(group__wake_due(&g, 6553, 5553, 100));
	ck_assert(group__wake_due(&g, 6000, 5000, 100)); // an eighth early
	ck_assert(!group__wake_due(&g, 5000, 4000, 100));
	ck_assert(!group__wake_due(&g, 7000, 6600, 100));
	// Empty payloads count as a byte each, and do not divide by zero.
	ck_assert(group__wake_due(&g, 6553, 0, 0));
}
END_TEST

/* Without bounds of its own (no budget) the group has no waker. */
START_TEST(test_wake_no_budget)
{
	struct mri_group g = {0};

	ck_assert(!group__wake_due(&g, 100000, 0, 100));
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("group_budget");
	TCase   *tb = tcase_create("budget");
	TCase   *tc = tcase_create("wake");
	SRunner *sr;
	int      failed;

	tcase_add_test(tb, test_group_budget);
	suite_add_tcase(s, tb);
	tcase_add_test(tc, test_wake_large_records);
	tcase_add_test(tc, test_wake_small_records);
	tcase_add_test(tc, test_wake_no_budget);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
