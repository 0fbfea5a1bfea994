/*
 * The dead-letter state set and replay's pure parts (dlq/state.c): the set
 * against a plain model, the state records read back, the prefix that
 * DeleteRecords may free, the replay id and the loop guard.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq/state.h"
#include "mailroom/error.h"

#define ST_PARTS 3
#define ST_OFFS 500

START_TEST(test_set_against_model)
{
	static uint8_t        model[ST_PARTS][ST_OFFS];
	struct mri_dlq_state *s;
	unsigned              seed = 7;
	size_t                count = 0;

	memset(model, 0, sizeof(model));
	ck_assert_int_eq(mri_dlq_state_new(&s), MR_OK);
	for (int i = 0; i < 20000; i++) {
		int32_t p  = (int32_t)(rand_r(&seed) % ST_PARTS);
		int64_t o  = rand_r(&seed) % ST_OFFS;
		int     st = rand_r(&seed) % 3;

		ck_assert_int_eq(mri_dlq_state_put(s, p, o, st, 0), MR_OK);
		count += (model[p][o] == 0 && st != 0);
		count -= (model[p][o] != 0 && st == 0);
		model[p][o] = (uint8_t)st;
	}
	ck_assert_uint_eq(mri_dlq_state_count(s), count);
	for (int32_t p = 0; p < ST_PARTS; p++)
		for (int64_t o = 0; o < ST_OFFS; o++)
			ck_assert_int_eq(mri_dlq_state_get(s, p, o),
					 model[p][o]);
	ck_assert_int_eq(mri_dlq_state_get(s, 9, 0), MRI_DLQ_ST_NONE);
	mri_dlq_state_free(s);
	mri_dlq_state_free(NULL);
}
END_TEST

START_TEST(test_records)
{
	struct mri_dlq_state *s;
	struct mri_dlq_st_rec r = {
	    .st        = MRI_DLQ_ST_REPLAYED,
	    .at_ms     = 1700000000123,
	    .orig      = 0x62dbcc580fce368aULL,
	    .target    = "orders",
	    .replay_id = "m-1~r1",
	    .partition = 2,
	    .offset    = 41,
	};
	char   key[MRI_DLQ_POS_STRLEN + 1], *v;
	size_t kl;

	ck_assert_int_eq(mri_dlq_state_new(&s), MR_OK);
	kl = mri_dlq_pos_fmt(key, 1, 12);
	ck_assert_str_eq(key, "1@12");
	ck_assert_ptr_nonnull(v = mri_dlq_state_value(&r));
	ck_assert_ptr_nonnull(strstr(v, "\"state\":\"replayed\""));
	ck_assert_ptr_nonnull(strstr(v, "\"orig\":\"62dbcc580fce368a\""));
	ck_assert_ptr_nonnull(strstr(v, "\"replay_id\":\"m-1~r1\""));
	ck_assert_int_eq(mri_dlq_state_load(s, key, kl, v, strlen(v)), MR_OK);
	free(v);
	ck_assert_int_eq(mri_dlq_state_get(s, 1, 12), MRI_DLQ_ST_REPLAYED);
	ck_assert_int_eq(mri_dlq_state_orig(s, 0x62dbcc580fce368aULL),
			 MRI_DLQ_ST_REPLAYED);
	ck_assert_int_eq(mri_dlq_state_orig(s, 0x62dbcc580fce368bULL),
			 MRI_DLQ_ST_NONE);
	// A later record of the key wins; foreign bytes are ignored.
	r.st = MRI_DLQ_ST_RESOLVED;
	r.target = r.replay_id = NULL;
	ck_assert_ptr_nonnull(v = mri_dlq_state_value(&r));
	ck_assert_int_eq(mri_dlq_state_load(s, key, kl, v, strlen(v)), MR_OK);
	free(v);
	ck_assert_int_eq(mri_dlq_state_get(s, 1, 12), MRI_DLQ_ST_RESOLVED);
	ck_assert_int_eq(mri_dlq_state_load(s, "1@13", 4, "{x", 2), MR_OK);
	ck_assert_int_eq(mri_dlq_state_load(s, "1@13", 4,
					    "{\"state\":\"odd\"}", 15),
			 MR_OK);
	ck_assert_int_eq(mri_dlq_state_load(s, "x@1", 3, "{}", 2), MR_OK);
	ck_assert_int_eq(mri_dlq_state_load(s, NULL, 0, "{}", 2), MR_OK);
	ck_assert_int_eq(mri_dlq_state_get(s, 1, 13), MRI_DLQ_ST_NONE);
	ck_assert_uint_eq(mri_dlq_state_count(s), 1);
	// A tombstone forgets it.
	ck_assert_int_eq(mri_dlq_state_load(s, key, kl, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_dlq_state_get(s, 1, 12), MRI_DLQ_ST_NONE);
	ck_assert_uint_eq(mri_dlq_state_count(s), 0);
	mri_dlq_state_free(s);
}
END_TEST

START_TEST(test_intents)
{
	struct mri_dlq_state        *s;
	const struct mri_dlq_intent *in;
	struct mri_dlq_st_rec        r = {
		   .st        = MRI_DLQ_ST_PENDING,
		   .at_ms     = 1234,
		   .target    = "orders",
		   .replay_id = "m-9~r2",
		   .partition = -1,
		   .offset    = -1,
        };
	char *v;

	ck_assert_int_eq(mri_dlq_state_new(&s), MR_OK);
	ck_assert_ptr_nonnull(v = mri_dlq_state_value(&r));
	ck_assert_ptr_nonnull(strstr(v, "\"state\":\"replaying\""));
	ck_assert_int_eq(mri_dlq_state_load(s, "0@3", 3, v, strlen(v)), MR_OK);
	free(v);
	ck_assert_int_eq(mri_dlq_state_get(s, 0, 3), MRI_DLQ_ST_PENDING);
	ck_assert_ptr_nonnull(in = mri_dlq_state_intent(s, 0, 3));
	ck_assert_str_eq(in->target, "orders");
	ck_assert_str_eq(in->replay_id, "m-9~r2");
	ck_assert_int_eq(in->at_ms, 1234);
	ck_assert_ptr_null(mri_dlq_state_intent(s, 0, 4));
	// An intent is not replayed: DeleteRecords stops there.
	mri_dlq_state_put(s, 0, 2, MRI_DLQ_ST_RESOLVED, 0);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 2), 3);
	// Many more (the table grows with intents in it).
	for (int64_t o = 100; o < 400; o++)
		ck_assert_int_eq(mri_dlq_state_put_intent(s, 1, o, o, "t",
							  "x"),
				 MR_OK);
	ck_assert_ptr_nonnull(in = mri_dlq_state_intent(s, 0, 3));
	ck_assert_str_eq(in->replay_id, "m-9~r2");
	// Its replayed record settles it.
	r.st = MRI_DLQ_ST_REPLAYED;
	ck_assert_ptr_nonnull(v = mri_dlq_state_value(&r));
	ck_assert_int_eq(mri_dlq_state_load(s, "0@3", 3, v, strlen(v)), MR_OK);
	free(v);
	ck_assert_ptr_null(mri_dlq_state_intent(s, 0, 3));
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 2), 4);
	mri_dlq_state_free(s);
}
END_TEST

START_TEST(test_pos_parse)
{
	int32_t p;
	int64_t o;

	ck_assert_int_eq(mri_dlq_pos_parse("0@0", 3, &p, &o), MR_OK);
	ck_assert_int_eq(p, 0);
	ck_assert_int_eq(o, 0);
	ck_assert_int_eq(mri_dlq_pos_parse("2147483647@9223372036854775807",
					   30, &p, &o),
			 MR_OK);
	ck_assert_int_eq(p, INT32_MAX);
	ck_assert_int_eq(o, INT64_MAX);
	ck_assert_int_eq(mri_dlq_pos_parse("2147483648@1", 12, &p, &o),
			 MR_EINVAL);
	ck_assert_int_eq(mri_dlq_pos_parse("1@9223372036854775808", 21, &p,
					   &o),
			 MR_EINVAL);
	ck_assert_int_eq(mri_dlq_pos_parse("-1@2", 4, &p, &o), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_pos_parse("1@", 2, &p, &o), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_pos_parse("@1", 2, &p, &o), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_pos_parse("12", 2, &p, &o), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_pos_parse("1@2x", 4, &p, &o), MR_EINVAL);
}
END_TEST

START_TEST(test_prefix)
{
	struct mri_dlq_state *s;

	ck_assert_int_eq(mri_dlq_state_new(&s), MR_OK);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 0), 0);
	for (int64_t o = 0; o < 5; o++)
		mri_dlq_state_put(s, 0, o,
				  o % 2 ? MRI_DLQ_ST_REPLAYED
					: MRI_DLQ_ST_RESOLVED,
				  0);
	mri_dlq_state_put(s, 0, 6, MRI_DLQ_ST_RESOLVED, 0);
	mri_dlq_state_put(s, 1, 1, MRI_DLQ_ST_RESOLVED, 0);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 0), 5);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 3), 5);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 6), 7);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 1, 0), 0);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 1, 1), 2);
	mri_dlq_state_put(s, 0, 2, MRI_DLQ_ST_NONE, 0);
	ck_assert_int_eq(mri_dlq_state_prefix(s, 0, 0), 2);
	mri_dlq_state_free(s);
}
END_TEST

START_TEST(test_replay_id)
{
	char   out[MRI_DLQ_ID_MAX + 1], big[400];
	size_t n;

	ck_assert_uint_eq(mri_dlq_replay_id(out, "m-1", 3, 1), 6);
	ck_assert_str_eq(out, "m-1~r1");
	// Deterministic, and a replay of a replay counts on.
	mri_dlq_replay_id(out, "m-1", 3, 1);
	ck_assert_str_eq(out, "m-1~r1");
	mri_dlq_replay_id(out, "m-1~r1", 6, 2);
	ck_assert_str_eq(out, "m-1~r2");
	mri_dlq_replay_id(out, "m-1~r12", 7, 13);
	ck_assert_str_eq(out, "m-1~r13");
	// Not a replay suffix: kept.
	mri_dlq_replay_id(out, "a~r", 3, 1);
	ck_assert_str_eq(out, "a~r~r1");
	mri_dlq_replay_id(out, "ar7", 3, 1);
	ck_assert_str_eq(out, "ar7~r1");
	mri_dlq_replay_id(out, "~r7", 3, 8);
	ck_assert_str_eq(out, "~r7~r8");
	ck_assert_uint_eq(mri_dlq_replay_id(out, "", 0, 1), 0);
	// Cut to the longest id.
	memset(big, 'x', sizeof(big));
	n = mri_dlq_replay_id(out, big, 255, 1);
	ck_assert_uint_eq(n, MRI_DLQ_ID_MAX);
	ck_assert_uint_eq(strlen(out), MRI_DLQ_ID_MAX);
	ck_assert_str_eq(out + MRI_DLQ_ID_MAX - 3, "~r1");
}
END_TEST

START_TEST(test_loop_guard)
{
	ck_assert(mri_dlq_replay_allowed(0, 3, false));
	ck_assert(mri_dlq_replay_allowed(2, 3, false));
	ck_assert(!mri_dlq_replay_allowed(3, 3, false));
	ck_assert(!mri_dlq_replay_allowed(9, 3, false));
	ck_assert(mri_dlq_replay_allowed(9, 3, true));
	ck_assert(!mri_dlq_replay_allowed(0, 0, false));
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("dlq_state");
	TCase   *tc = tcase_create("state");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_set_against_model);
	tcase_add_test(tc, test_records);
	tcase_add_test(tc, test_intents);
	tcase_add_test(tc, test_pos_parse);
	tcase_add_test(tc, test_prefix);
	tcase_add_test(tc, test_replay_id);
	tcase_add_test(tc, test_loop_guard);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
