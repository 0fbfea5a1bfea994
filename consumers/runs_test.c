/*
 * Tests for consumers/runs.c, the journal's attempts by runs of offsets.
 * The file is included whole, so that the tests can check the runs'
 * invariants (sorted, not overlapping, touching runs of one attempt
 * merged) after every step. Random puts are checked against a plain model,
 * an array of attempts per offset (MR_RUNS_SEED repeats a run).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "consumers/runs.c"

#define RUNS_TEST__PARTS 3
#define RUNS_TEST__SPAN 300 /* offsets of the model */

#define RUNS_TEST__REQUIRE(expr)                                             \
	do {                                                                  \
		if (!(expr))                                                  \
			ck_abort_msg("%s:%d: %s failed", __FILE__, __LINE__,  \
				     #expr);                                  \
	} while (0)

static uint64_t runs_test__seed;

static uint64_t
runs_test__next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Every partition's runs sorted, not empty, not overlapping, and two that
 * touch differ in attempt; the count is their sum. */
static void
runs_test__invariants(const struct mri_runs *r)
{
	size_t total = 0, parts = 0;

	for (size_t s = 0; s < r->nslots; s++) {
		const struct runs_part *p = r->slots[s];

		if (p == NULL)
			continue;
		parts++;
		RUNS_TEST__REQUIRE(runs__find_part(r, p->key) == p);
		for (size_t i = 0; i < p->n; i++) {
			RUNS_TEST__REQUIRE(p->v[i].first < p->v[i].end);
			if (i == 0)
				continue;
			RUNS_TEST__REQUIRE(p->v[i - 1].end <= p->v[i].first);
			RUNS_TEST__REQUIRE(p->v[i - 1].end < p->v[i].first ||
					   p->v[i - 1].attempt !=
					       p->v[i].attempt);
		}
		total += p->n;
	}
	RUNS_TEST__REQUIRE(total == r->count);
	RUNS_TEST__REQUIRE(parts == r->nparts && parts * 2 <= r->nslots);
}

static uint32_t
runs_test__one(const struct mri_runs *r, uint64_t part, int64_t o)
{
	uint32_t a = 99;

	mri_runs_find(r, part, 1, &o, &a);
	return a;
}

START_TEST(test_new_errors)
{
	struct mri_runs *r = NULL;

	ck_assert_int_eq(mri_runs_new(&r, 0), MR_EINVAL);
	ck_assert_int_eq(mri_runs_new(&r, MRI_RUNS_MAX + 1), MR_EINVAL);
	ck_assert_ptr_null(r);
	mri_runs_free(NULL);
}
END_TEST

/* Offsets handed out in order, a batch at a time, make one run. */
START_TEST(test_in_order_one_run)
{
	struct mri_runs *r;

	ck_assert_int_eq(mri_runs_new(&r, 100), MR_OK);
	for (int64_t o = 0; o < 100000; o += 1000)
		ck_assert_int_eq(mri_runs_put(r, 7, o, 1000, 1, o), MR_OK);
	ck_assert_uint_eq(mri_runs_count(r), 1);
	ck_assert_uint_eq(runs_test__one(r, 7, 0), 1);
	ck_assert_uint_eq(runs_test__one(r, 7, 99999), 1);
	ck_assert_uint_eq(runs_test__one(r, 7, 100000), 0);
	ck_assert_uint_eq(runs_test__one(r, 8, 5), 0);
	mri_runs_free(r);
}
END_TEST

/* A redelivery inside a run splits it; the larger attempt wins either way
 * round; a gap is not counted. */
START_TEST(test_split_and_max)
{
	struct mri_runs *r;
	int64_t          offs[] = {0, 9, 10, 14, 15, 19, 20, 29, 30, 40};
	int64_t          rev[10];
	uint32_t         att[10], want[] = {1, 1, 2, 2, 3, 3, 1, 1, 0, 5};

	ck_assert_int_eq(mri_runs_new(&r, 100), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 0, 30, 1, 0), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 10, 10, 2, 1), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 15, 5, 3, 2), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 12, 2, 1, 3), MR_OK); // lower
	ck_assert_int_eq(mri_runs_put(r, 1, 40, 1, 5, 4), MR_OK);
	runs_test__invariants(r);
	ck_assert_uint_eq(mri_runs_count(r), 5);
	mri_runs_find(r, 1, 10, offs, att);
	for (int i = 0; i < 10; i++)
		ck_assert_msg(att[i] == want[i], "offset %lld: %u, not %u",
			      (long long)offs[i], att[i], want[i]);
	// Out of order, in one batch or one at a time, the same answers.
	for (int i = 0; i < 10; i++)
		rev[i] = offs[9 - i];
	mri_runs_find(r, 1, 10, rev, att);
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(att[i], want[9 - i]);
		ck_assert_uint_eq(runs_test__one(r, 1, offs[i]), want[i]);
	}
	// The gap [30, 40) filled at attempt 1 joins the run below it.
	ck_assert_int_eq(mri_runs_put(r, 1, 30, 10, 1, 5), MR_OK);
	runs_test__invariants(r);
	ck_assert_uint_eq(mri_runs_count(r), 5);
	ck_assert_uint_eq(runs_test__one(r, 1, 35), 1);
	mri_runs_free(r);
}
END_TEST

START_TEST(test_expire)
{
	struct mri_runs *r;

	ck_assert_int_eq(mri_runs_new(&r, 100), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 0, 10, 1, 100), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 20, 10, 1, 200), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 2, 0, 10, 1, 300), MR_OK);
	ck_assert_uint_eq(mri_runs_expire(r, 100), 0);
	ck_assert_uint_eq(mri_runs_expire(r, 201), 2);
	runs_test__invariants(r);
	ck_assert_uint_eq(mri_runs_count(r), 1);
	ck_assert_uint_eq(runs_test__one(r, 1, 25), 0);
	ck_assert_uint_eq(runs_test__one(r, 2, 5), 1);
	// A run extended keeps its latest time.
	ck_assert_int_eq(mri_runs_put(r, 2, 10, 10, 1, 500), MR_OK);
	ck_assert_uint_eq(mri_runs_expire(r, 400), 0);
	ck_assert_uint_eq(runs_test__one(r, 2, 5), 1);
	mri_runs_free(r);
}
END_TEST

/* At its most runs, a put drops the lowest run of its partition, or of
 * another one when its own has only the new run. */
START_TEST(test_bound)
{
	struct mri_runs *r;

	ck_assert_int_eq(mri_runs_new(&r, 3), MR_OK);
	for (int64_t o = 0; o < 5; o++)
		ck_assert_int_eq(mri_runs_put(r, 1, o * 10, 1, 1, o), MR_OK);
	runs_test__invariants(r);
	ck_assert_uint_eq(mri_runs_count(r), 3);
	ck_assert_uint_eq(runs_test__one(r, 1, 10), 0);
	ck_assert_uint_eq(runs_test__one(r, 1, 20), 1);
	ck_assert_uint_eq(runs_test__one(r, 1, 40), 1);
	ck_assert_int_eq(mri_runs_put(r, 2, 0, 1, 1, 9), MR_OK);
	runs_test__invariants(r);
	ck_assert_uint_eq(mri_runs_count(r), 3);
	ck_assert_uint_eq(runs_test__one(r, 2, 0), 1);
	ck_assert_uint_eq(runs_test__one(r, 1, 20), 0);
	mri_runs_free(r);
}
END_TEST

START_TEST(test_bad_ranges)
{
	struct mri_runs *r;

	ck_assert_int_eq(mri_runs_new(&r, 10), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, 5, 0, 1, 0), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, -3, 5, 1, 0), MR_OK);
	ck_assert_int_eq(mri_runs_put(r, 1, INT64_MAX - 1, 5, 1, 0), MR_OK);
	ck_assert_uint_eq(mri_runs_count(r), 0);
	ck_assert_int_eq(mri_runs_put(r, 1, INT64_MAX - 5, 5, 1, 0), MR_OK);
	ck_assert_uint_eq(runs_test__one(r, 1, INT64_MAX - 1), 1);
	mri_runs_free(r);
}
END_TEST

/* Many partitions: the table grows and finds each. */
START_TEST(test_many_parts)
{
	struct mri_runs *r;

	ck_assert_int_eq(mri_runs_new(&r, 100000), MR_OK);
	for (uint64_t p = 0; p < 3000; p++)
		ck_assert_int_eq(mri_runs_put(r, p * 0x1000, 0, 5,
					      (uint32_t)(p % 7) + 1, 0),
				 MR_OK);
	runs_test__invariants(r);
	for (uint64_t p = 0; p < 3000; p++)
		ck_assert_uint_eq(runs_test__one(r, p * 0x1000, 4),
				  (p % 7) + 1);
	mri_runs_free(r);
}
END_TEST

/* Random puts, mostly in order with redeliveries below, against an array
 * of attempts per offset; every offset checked after each put, in order
 * and one at a time. */
START_TEST(test_random_model)
{
	static uint32_t  model[RUNS_TEST__PARTS][RUNS_TEST__SPAN];
	int64_t          offs[RUNS_TEST__SPAN];
	uint32_t         got[RUNS_TEST__SPAN];
	uint64_t         s = runs_test__seed;
	struct mri_runs *r;

	memset(model, 0, sizeof(model));
	for (int i = 0; i < RUNS_TEST__SPAN; i++)
		offs[i] = i;
	ck_assert_int_eq(mri_runs_new(&r, 1000000), MR_OK);
	for (int step = 0; step < 20000; step++) {
		uint64_t x     = runs_test__next(&s);
		int      part  = (int)(x % RUNS_TEST__PARTS);
		int64_t  first = (int64_t)((x >> 8) % RUNS_TEST__SPAN);
		uint32_t count = (uint32_t)((x >> 24) % 12) + 1;
		uint32_t att   = (uint32_t)((x >> 32) % 4) + 1;

		if (first + count > RUNS_TEST__SPAN)
			count = (uint32_t)(RUNS_TEST__SPAN - first);
		RUNS_TEST__REQUIRE(mri_runs_put(r, (uint64_t)part + 100, first,
						count, att, step) == MR_OK);
		for (int64_t o = first; o < first + count; o++)
			if (model[part][o] < att)
				model[part][o] = att;
		runs_test__invariants(r);
		mri_runs_find(r, (uint64_t)part + 100, RUNS_TEST__SPAN, offs,
			      got);
		for (int i = 0; i < RUNS_TEST__SPAN; i++)
			if (got[i] != model[part][i])
				ck_abort_msg(
				    "seed %llu step %d: partition %d offset "
				    "%d: %u, the model %u",
				    (unsigned long long)runs_test__seed, step,
				    part, i, got[i], model[part][i]);
		if (step % 97 == 0) {
			int64_t o = (int64_t)((x >> 40) % RUNS_TEST__SPAN);

			RUNS_TEST__REQUIRE(runs_test__one(r, (uint64_t)part +
								   100,
							  o) ==
					   model[part][o]);
		}
	}
	mri_runs_free(r);
}
END_TEST

static Suite *
runs_test__suite(void)
{
	Suite *s = suite_create("runs");
	TCase *tc;

	tc = tcase_create("runs");
	tcase_add_test(tc, test_new_errors);
	tcase_add_test(tc, test_in_order_one_run);
	tcase_add_test(tc, test_split_and_max);
	tcase_add_test(tc, test_expire);
	tcase_add_test(tc, test_bound);
	tcase_add_test(tc, test_bad_ranges);
	tcase_add_test(tc, test_many_parts);
	tcase_add_test(tc, test_random_model);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char *env = getenv("MR_RUNS_SEED");
	SRunner    *r;
	int         failed;

	if (env != NULL && env[0] != '\0')
		runs_test__seed = strtoull(env, NULL, 10);
	else if (getrandom(&runs_test__seed, sizeof(runs_test__seed), 0) !=
		 (ssize_t)sizeof(runs_test__seed))
		runs_test__seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	printf("runs model: seed %llu (MR_RUNS_SEED=%llu repeats it)\n",
	       (unsigned long long)runs_test__seed,
	       (unsigned long long)runs_test__seed);
	fflush(stdout);
	r = srunner_create(runs_test__suite());
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
