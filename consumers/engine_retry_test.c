/*
 * Step-by-step tests of the delivery engine's retries (consumers/engine.c):
 * backoff after a failed attempt, in each ordering mode; the delays'
 * growth, cap and jitter; attempts spent (by nacks, by a reject, by counts
 * from before a restart) and the quarantine hand-off; the in-flight limit
 * of the supervisor's breaker; what a revoke drops. Time is what each
 * call is given: nothing here reads a clock.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "consumers/engine.h"
#include "mailroom/error.h"

#define ERT_KEY_A 0xaaaaULL
#define ERT_KEY_B 0xbbbbULL
#define ERT_DEADLINE 10000
#define ERT_INITIAL 100
#define ERT_MAX 1000

/* What the observer was told. */
struct ert_seen {
	size_t               n;
	enum mri_engine_fail why[32];
	uint32_t             attempt[32];
	int64_t              offset[32];
};

static void
ert_observe(void *arg, const struct mri_delivery *d, enum mri_engine_fail why)
{
	struct ert_seen *s = arg;

	ck_assert_uint_lt(s->n, 32);
	s->why[s->n]       = why;
	s->attempt[s->n]   = d->attempt;
	s->offset[s->n++]  = d->offset;
}

static struct mri_engine *
ert_new(enum mri_order order, uint32_t max_attempts, double jitter,
	struct ert_seen *seen)
{
	struct mri_engine_conf c = {
	    .order           = order,
	    .max_buffered    = 100,
	    .session_credit  = 100,
	    .ack_deadline_ms = ERT_DEADLINE,
	    .retry = {.max_attempts       = max_attempts,
		      .backoff_initial_ms = ERT_INITIAL,
		      .backoff_max_ms     = ERT_MAX,
		      .multiplier         = 2.0,
		      .jitter             = jitter,
		      .seed               = 42},
	};
	struct mri_engine *e = NULL;

	ck_assert_int_eq(mri_engine_new(&e, &c), MR_OK);
	if (seen != NULL) {
		memset(seen, 0, sizeof(*seen));
		mri_engine_observe(e, ert_observe, seen);
	}
	return e;
}

static void
ert_arrive(struct mri_engine *e, int64_t offset, uint64_t key,
	   uint32_t attempts)
{
	ck_assert_int_eq(mri_engine_arrive(e, 0, offset, key, false, attempts,
					   false, NULL),
			 MR_OK);
}

/* Fetch everything ready at \p now; the offsets into \p off (may be NULL
 * when only the count matters), the last delivery into *last. */
static size_t
ert_fetch(struct mri_engine *e, uint32_t sid, uint64_t now, int64_t *off,
	  struct mri_delivery *last)
{
	struct mri_delivery d[16];
	size_t              n = mri_engine_fetch(e, sid, now, d, 16);

	for (size_t i = 0; i < n; i++)
		if (off != NULL)
			off[i] = d[i].offset;
	if (n > 0 && last != NULL)
		*last = d[n - 1];
	return n;
}

START_TEST(test_backoff_blocks_only_its_key)
{
	struct ert_seen     seen;
	struct mri_engine  *e = ert_new(MRI_ORDER_KEY, 0, 0, &seen);
	struct mri_delivery d[16];
	struct mri_engine_stats st;
	uint32_t            sid;
	int64_t             off[16];

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 0);
	ert_arrive(e, 1, ERT_KEY_A, 0);
	ert_arrive(e, 2, ERT_KEY_B, 0);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 2);
	ck_assert_int_eq(d[0].offset, 0);
	ck_assert_int_eq(d[1].offset, 2);

	// A's head is nacked at t=10: it waits 100 ms, and so does offset 1
	// behind it; B goes on.
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, 10, false), MR_OK);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_int_eq(seen.why[0], MRI_ENGINE_NACKED);
	ck_assert_uint_eq(seen.attempt[0], 1);
	ck_assert_uint_eq(mri_engine_next_due(e), 110);
	mri_engine_stats(e, &st);
	ck_assert_uint_eq(st.backoff, 1);
	ck_assert_uint_eq(st.ready, 0);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(ert_fetch(e, sid, 20, NULL, NULL), 0);
	ck_assert_int_eq(mri_engine_ack(e, d[1].handle, NULL), MR_OK);
	mri_engine_tick(e, 109);
	ck_assert_uint_eq(ert_fetch(e, sid, 109, NULL, NULL), 0);

	// Due: handed out again, attempt 2, and only then offset 1.
	ck_assert_uint_eq(mri_engine_tick(e, 110), 0);
	ck_assert_uint_eq(mri_engine_next_due(e), UINT64_MAX);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 110, d, 16), 1);
	ck_assert_int_eq(d[0].offset, 0);
	ck_assert_uint_eq(d[0].attempt, 2);
	ck_assert_int_eq(mri_engine_ack(e, d[0].handle, NULL), MR_OK);
	ck_assert_uint_eq(ert_fetch(e, sid, 111, off, NULL), 1);
	ck_assert_int_eq(off[0], 1);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_backoff_partition_and_unordered)
{
	struct mri_engine  *e;
	struct mri_delivery d[16];
	uint32_t            sid;
	int64_t             off[16];

	// Partition mode: the partition waits.
	e = ert_new(MRI_ORDER_PARTITION, 0, 0, NULL);
	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 0);
	ert_arrive(e, 1, ERT_KEY_B, 0);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 1);
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, 0, false), MR_OK);
	ck_assert_uint_eq(ert_fetch(e, sid, 50, NULL, NULL), 0);
	mri_engine_tick(e, 100);
	ck_assert_uint_eq(ert_fetch(e, sid, 100, off, NULL), 1);
	ck_assert_int_eq(off[0], 0);
	mri_engine_free(e);

	// Unordered: nothing waits but the record itself.
	e = ert_new(MRI_ORDER_UNORDERED, 0, 0, NULL);
	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 0);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 1);
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, 0, false), MR_OK);
	ert_arrive(e, 1, ERT_KEY_A, 0);
	ck_assert_uint_eq(ert_fetch(e, sid, 1, off, NULL), 1);
	ck_assert_int_eq(off[0], 1);
	mri_engine_tick(e, 100);
	ck_assert_uint_eq(ert_fetch(e, sid, 100, off, NULL), 1);
	ck_assert_int_eq(off[0], 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_backoff_delays)
{
	struct mri_engine *e = ert_new(MRI_ORDER_KEY, 0, 0, NULL);
	// 100, 200, 400, 800, then the cap.
	const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};

	for (uint32_t a = 1; a <= 7; a++)
		ck_assert_uint_eq(mri_engine_backoff(e, a), want[a - 1]);
	ck_assert_uint_eq(mri_engine_backoff(e, 1000000), 1000);
	mri_engine_free(e);

	// Jitter 0.2: within [0.8, 1.2] of the delay, and not always the
	// same.
	e = ert_new(MRI_ORDER_KEY, 0, 0.2, NULL);
	{
		uint64_t lo = UINT64_MAX, hi = 0;

		for (int i = 0; i < 1000; i++) {
			uint64_t d = mri_engine_backoff(e, 3);

			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		ck_assert_uint_ge(lo, 320);
		ck_assert_uint_le(hi, 480);
		ck_assert_uint_lt(lo, 340);
		ck_assert_uint_gt(hi, 460);
	}
	mri_engine_free(e);
}
END_TEST

START_TEST(test_bad_retry)
{
	struct mri_engine     *e = NULL;
	struct mri_engine_conf c = {
	    .order           = MRI_ORDER_KEY,
	    .max_buffered    = 10,
	    .session_credit  = 10,
	    .ack_deadline_ms = 100,
	    .retry = {.backoff_initial_ms = 100, .backoff_max_ms = 50,
		      .multiplier = 2},
	};

	ck_assert_int_eq(mri_engine_new(&e, &c), MR_EINVAL);
	c.retry.backoff_max_ms = 100;
	c.retry.multiplier     = 0.5;
	ck_assert_int_eq(mri_engine_new(&e, &c), MR_EINVAL);
	c.retry.multiplier = 1;
	c.retry.jitter     = 1.5;
	ck_assert_int_eq(mri_engine_new(&e, &c), MR_EINVAL);
	c.retry.jitter = 1;
	ck_assert_int_eq(mri_engine_new(&e, &c), MR_OK);
	mri_engine_free(e);
}
END_TEST

/* Offset 0 of key A fails 3 times (nack, expiry, a closed session): it is
 * exhausted and taken for quarantine; A's next waits until it is
 * quarantined, B flows. */
START_TEST(test_exhausted_and_quarantined)
{
	struct ert_seen         seen;
	struct mri_engine      *e = ert_new(MRI_ORDER_KEY, 3, 0, &seen);
	struct mri_delivery     d[16], q[4];
	struct mri_engine_stats st;
	uint32_t                sid, sid2;
	int64_t                 off[16];
	uint64_t                now = 0;
	void                   *op  = (void *)1;

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 0);
	ert_arrive(e, 1, ERT_KEY_A, 0);
	ert_arrive(e, 2, ERT_KEY_B, 0);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, now, d, 16), 2);
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, now, false), MR_OK);
	ck_assert_int_eq(mri_engine_ack(e, d[1].handle, NULL), MR_OK); // B

	// Attempt 2 expires.
	mri_engine_tick(e, now += 100);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, now, d, 16), 1);
	ck_assert_uint_eq(d[0].attempt, 2);
	ck_assert_uint_eq(mri_engine_tick(e, now += ERT_DEADLINE), 1);

	// Attempt 3: its session closes holding it. Spent: no backoff.
	ck_assert_int_eq(mri_engine_session_open(e, &sid2), MR_OK);
	mri_engine_tick(e, now += 200);
	ck_assert_uint_eq(mri_engine_fetch(e, sid2, now, d, 16), 1);
	ck_assert_uint_eq(d[0].attempt, 3);
	mri_engine_session_close(e, sid2, now);
	ck_assert_uint_eq(seen.n, 3);
	ck_assert_int_eq(seen.why[0], MRI_ENGINE_NACKED);
	ck_assert_int_eq(seen.why[1], MRI_ENGINE_EXPIRED);
	ck_assert_int_eq(seen.why[2], MRI_ENGINE_ABANDONED);
	ck_assert_uint_eq(seen.attempt[2], 3);
	ck_assert_uint_eq(mri_engine_next_due(e), UINT64_MAX);
	mri_engine_stats(e, &st);
	ck_assert_uint_eq(st.exhausted, 1);
	ck_assert_uint_eq(st.backoff, 0);

	// Taken once; A's next still waits.
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 4), 1);
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q + 1, 3), 0);
	ck_assert_int_eq(q[0].offset, 0);
	ck_assert_uint_eq(q[0].attempt, 3);
	mri_engine_stats(e, &st);
	ck_assert_uint_eq(st.exhausted, 0);
	ck_assert_uint_eq(st.quarantining, 1);
	ck_assert_uint_eq(ert_fetch(e, sid, now, NULL, NULL), 0);
	// Not a delivery: an ack or nack of its handle fails.
	ck_assert_int_eq(mri_engine_ack(e, q[0].handle, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_nack(e, q[0].handle, now, false),
			 MR_ENOENT);
	// No deadline runs while it is quarantined.
	ck_assert_uint_eq(mri_engine_tick(e, now += 10 * ERT_DEADLINE), 0);
	ck_assert_uint_eq(seen.n, 3);

	// The quarantine failed: taken again after a delay, not at once.
	ck_assert_int_eq(mri_engine_quarantined(e, q[0].handle, false, now,
						NULL),
			 MR_OK);
	ck_assert_int_eq(mri_engine_quarantined(e, q[0].handle, true, now,
						NULL),
			 MR_ENOENT);
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 4), 0);
	ck_assert_uint_ge(mri_engine_next_due(e), now + 100);
	mri_engine_tick(e, now = mri_engine_next_due(e));
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 4), 1);
	ck_assert_uint_eq(ert_fetch(e, sid, now, NULL, NULL), 0);

	// Quarantined: it counts as acked, A's next goes out.
	ck_assert_int_eq(mri_engine_quarantined(e, q[0].handle, true, now,
						&op),
			 MR_OK);
	ck_assert_ptr_null(op);
	ck_assert_uint_eq(ert_fetch(e, sid, now, off, NULL), 1);
	ck_assert_int_eq(off[0], 1);
	ck_assert_int_eq(mri_engine_committable(e, 0), 1);
	mri_engine_stats(e, &st);
	ck_assert_uint_eq(st.quarantining, 0);
	ck_assert_uint_eq(st.acked, 2);
	mri_engine_free(e);
}
END_TEST

/* Attempts counted before a restart: a record arriving with its attempts
 * spent is exhausted once it heads its key; a reject exhausts at once. */
START_TEST(test_spent_on_arrival_and_reject)
{
	struct ert_seen     seen;
	struct mri_engine  *e = ert_new(MRI_ORDER_KEY, 3, 0, &seen);
	struct mri_delivery d[16], q[4];
	uint32_t            sid;

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 1);
	ert_arrive(e, 1, ERT_KEY_A, 3);
	ert_arrive(e, 2, ERT_KEY_B, 3);
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 4), 1);
	ck_assert_int_eq(q[0].offset, 2);
	ck_assert_uint_eq(q[0].attempt, 3);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 1);
	ck_assert_int_eq(d[0].offset, 0);
	ck_assert_uint_eq(d[0].attempt, 2);

	// Rejected at attempt 2 of 3: exhausted, no backoff.
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, 0, true), MR_OK);
	ck_assert_int_eq(seen.why[0], MRI_ENGINE_REJECTED);
	ck_assert_uint_eq(mri_engine_next_due(e), UINT64_MAX);
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q + 1, 3), 1);
	ck_assert_int_eq(q[1].offset, 0);
	ck_assert_uint_eq(q[1].attempt, 2);
	ck_assert_int_eq(mri_engine_quarantined(e, q[1].handle, true, 0,
						NULL),
			 MR_OK);
	// Offset 1 heads A now, with its attempts spent.
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 0);
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 4), 1);
	ck_assert_int_eq(q[0].offset, 1);
	mri_engine_free(e);

	// A reject from before a restart: exhausted on arrival, its count
	// kept.
	e = ert_new(MRI_ORDER_KEY, 3, 0, NULL);
	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 1 | MRI_ENGINE_REJECTED_BIT);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 0);
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 4), 1);
	ck_assert_uint_eq(q[0].attempt, 1);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_limit)
{
	struct mri_engine  *e = ert_new(MRI_ORDER_UNORDERED, 0, 0, NULL);
	struct mri_delivery d[16];
	uint32_t            sid;

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	for (int64_t o = 0; o < 5; o++)
		ert_arrive(e, o, ERT_KEY_A + (uint64_t)o, 0);
	mri_engine_set_limit(e, 0);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 0);
	mri_engine_set_limit(e, 1);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 1);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d + 1, 15), 0);
	ck_assert_int_eq(mri_engine_ack(e, d[0].handle, NULL), MR_OK);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 1);
	mri_engine_set_limit(e, SIZE_MAX);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d + 1, 15), 3);
	mri_engine_free(e);
}
END_TEST

/* A revoke drops records in every state; their handles go stale. */
START_TEST(test_revoke_drops_every_state)
{
	struct mri_engine      *e = ert_new(MRI_ORDER_UNORDERED, 2, 0, NULL);
	struct mri_delivery     d[16], q[4];
	struct mri_engine_stats st;
	uint32_t                sid;
	int64_t                 commit;

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ert_arrive(e, 0, ERT_KEY_A, 0); // backing off
	ert_arrive(e, 1, ERT_KEY_A, 2); // exhausted
	ert_arrive(e, 2, ERT_KEY_A, 2); // quarantining
	ert_arrive(e, 3, ERT_KEY_A, 0); // in flight
	ck_assert_uint_eq(mri_engine_take_exhausted(e, q, 1), 1);
	ck_assert_int_eq(q[0].offset, 1);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 2);
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, 0, false), MR_OK);
	mri_engine_stats(e, &st);
	ck_assert_uint_eq(st.backoff, 1);
	ck_assert_uint_eq(st.exhausted, 1);
	ck_assert_uint_eq(st.quarantining, 1);
	ck_assert_uint_eq(st.inflight, 1);
	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_OK);
	ck_assert_int_eq(commit, 0);
	mri_engine_stats(e, &st);
	ck_assert_uint_eq(st.buffered, 0);
	ck_assert_uint_eq(st.backoff, 0);
	ck_assert_uint_eq(st.exhausted, 0);
	ck_assert_uint_eq(st.quarantining, 0);
	ck_assert_uint_eq(st.inflight, 0);
	ck_assert_uint_eq(mri_engine_next_due(e), UINT64_MAX);
	ck_assert_int_eq(mri_engine_quarantined(e, q[0].handle, true, 0,
						NULL),
			 MR_ENOENT);
	mri_engine_tick(e, 100000);
	mri_engine_free(e);
}
END_TEST

/* Many records backing off with different delays come due in order of
 * their due times (the heap), whatever order they failed in. */
START_TEST(test_heap_order)
{
	struct mri_engine  *e = ert_new(MRI_ORDER_UNORDERED, 0, 0.5, NULL);
	struct mri_delivery d[16];
	uint32_t            sid;
	size_t              got = 0;

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	for (int64_t o = 0; o < 16; o++)
		ert_arrive(e, o, (uint64_t)o, 0);
	ck_assert_uint_eq(mri_engine_fetch(e, sid, 0, d, 16), 16);
	for (size_t i = 0; i < 16; i++)
		ck_assert_int_eq(
		    mri_engine_nack(e, d[(i * 7) % 16].handle, 0, false),
		    MR_OK);
	for (uint64_t t = 0; t <= 200; t++) {
		uint64_t due = mri_engine_next_due(e);

		mri_engine_tick(e, t);
		if (due <= t) {
			struct mri_delivery x[16];
			size_t n = mri_engine_fetch(e, sid, t, x, 16);

			ck_assert_uint_ge(n, 1);
			got += n;
		} else {
			ck_assert_uint_eq(mri_engine_fetch(e, sid, t, d, 16),
					  0);
		}
	}
	ck_assert_uint_eq(got, 16);
	mri_engine_free(e);
}
END_TEST

static Suite *
engine_retry_suite(void)
{
	Suite *s  = suite_create("engine_retry");
	TCase *tc = tcase_create("retry");

	tcase_add_test(tc, test_backoff_blocks_only_its_key);
	tcase_add_test(tc, test_backoff_partition_and_unordered);
	tcase_add_test(tc, test_backoff_delays);
	tcase_add_test(tc, test_bad_retry);
	tcase_add_test(tc, test_exhausted_and_quarantined);
	tcase_add_test(tc, test_spent_on_arrival_and_reject);
	tcase_add_test(tc, test_limit);
	tcase_add_test(tc, test_revoke_drops_every_state);
	tcase_add_test(tc, test_heap_order);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(engine_retry_suite());
	int      failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
