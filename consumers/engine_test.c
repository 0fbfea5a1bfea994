/*
 * Step-by-step tests for consumers/engine.c, the delivery engine: one event
 * at a time, the state checked after each. Time is what each call is
 * given: nothing here reads a clock. The random schedules are in
 * engine_sim_test.c.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/engine.h"
#include "mailroom/error.h"

#define ENGINE_TEST__KEY_A 0xaaaaULL
#define ENGINE_TEST__KEY_B 0xbbbbULL
#define ENGINE_TEST__DEADLINE 1000

/* What arrive is given: the partition and offset, so that a delivery's and
 * an ack's opaque can be checked. */
static void *
engine_test__opaque(int32_t p, int64_t offset)
{
	return (void *)(uintptr_t)(((uint64_t)(uint32_t)p << 40) |
				   (uint64_t)(offset + 1));
}

static struct mri_engine *
engine_test__new(enum mri_order order, uint32_t max_buffered, uint32_t credit)
{
	struct mri_engine_conf c = {
		.order           = order,
		.max_buffered    = max_buffered,
		.session_credit  = credit,
		.ack_deadline_ms = ENGINE_TEST__DEADLINE,
	};
	struct mri_engine *e = NULL;

	ck_assert_int_eq(mri_engine_new(&e, &c), MR_OK);
	ck_assert_ptr_nonnull(e);
	return e;
}

static uint32_t
engine_test__session(struct mri_engine *e)
{
	uint32_t sid = UINT32_MAX;

	ck_assert_int_eq(mri_engine_session_open(e, &sid), MR_OK);
	ck_assert_uint_ne(sid, UINT32_MAX);
	return sid;
}

static void
engine_test__arrive_rc(struct mri_engine *e, int32_t p, int64_t offset,
		       uint64_t key, int want)
{
	ck_assert_int_eq(mri_engine_arrive(e, p, offset, key, false, 0, false,
					   engine_test__opaque(p, offset)),
			 want);
}

static void
engine_test__arrive(struct mri_engine *e, int32_t p, int64_t offset,
		    uint64_t key)
{
	engine_test__arrive_rc(e, p, offset, key, MR_OK);
}

/* A record that arrives acked already (assign's list): not held. */
static void
engine_test__arrive_acked(struct mri_engine *e, int32_t p, int64_t offset,
			  uint64_t key)
{
	engine_test__arrive_rc(e, p, offset, key, MRI_ENGINE_NOT_HELD);
}

static void
engine_test__arrive_keyless(struct mri_engine *e, int32_t p, int64_t offset)
{
	ck_assert_int_eq(mri_engine_arrive(e, p, offset, 0, true, 0, false,
					   engine_test__opaque(p, offset)),
			 MR_OK);
}

/* Fetch up to \p max (at most 16) and check each delivery's opaque. */
static size_t
engine_test__fetch(struct mri_engine *e, uint32_t sid, uint64_t now,
		   struct mri_delivery *out, size_t max)
{
	size_t n;

	ck_assert_uint_le(max, 16);
	memset(out, 0xa5, max * sizeof(*out));
	n = mri_engine_fetch(e, sid, now, out, max);
	ck_assert_uint_le(n, max);
	for (size_t i = 0; i < n; i++)
		ck_assert_ptr_eq(out[i].opaque, engine_test__opaque(
							out[i].partition,
							out[i].offset));
	return n;
}

/* Exactly one delivery, of \p p at \p offset, attempt \p attempt. */
static struct mri_delivery
engine_test__fetch_one(struct mri_engine *e, uint32_t sid, uint64_t now,
		       int32_t p, int64_t offset, uint32_t attempt)
{
	struct mri_delivery d[16];

	ck_assert_uint_eq(engine_test__fetch(e, sid, now, d, 16), 1);
	ck_assert_int_eq(d[0].partition, p);
	ck_assert_int_eq(d[0].offset, offset);
	ck_assert_uint_eq(d[0].attempt, attempt);
	return d[0];
}

static void
engine_test__fetch_none(struct mri_engine *e, uint32_t sid, uint64_t now)
{
	struct mri_delivery d[16];

	ck_assert_uint_eq(engine_test__fetch(e, sid, now, d, 16), 0);
}

static void
engine_test__ack(struct mri_engine *e, const struct mri_delivery *d)
{
	void *op = NULL;

	ck_assert_int_eq(mri_engine_ack(e, d->handle, &op), MR_OK);
	ck_assert_ptr_eq(op, engine_test__opaque(d->partition, d->offset));
}

/* The deliveries \p d[0..n) are exactly the offsets \p want (any order). */
static void
engine_test__offsets(const struct mri_delivery *d, size_t n,
		     const int64_t *want, size_t n_want)
{
	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n_want; i++) {
		size_t hits = 0;

		for (size_t j = 0; j < n; j++)
			hits += d[j].offset == want[i];
		ck_assert_msg(hits == 1, "offset %lld delivered %zu times",
			      (long long)want[i], hits);
	}
}

/* The delivery of \p offset among \p d[0..n). */
static const struct mri_delivery *
engine_test__find(const struct mri_delivery *d, size_t n, int64_t offset)
{
	for (size_t i = 0; i < n; i++)
		if (d[i].offset == offset)
			return &d[i];
	ck_abort_msg("offset %lld not delivered", (long long)offset);
	return NULL;
}

static struct mri_engine_stats
engine_test__stats(const struct mri_engine *e)
{
	struct mri_engine_stats s;

	memset(&s, 0xa5, sizeof(s));
	mri_engine_stats(e, &s);
	return s;
}

static void
engine_test__beyond(const struct mri_engine *e, int32_t p, const int64_t *want,
		    size_t n_want)
{
	int64_t got[32];
	size_t  n = mri_engine_acked_beyond(e, p, got, 32);

	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(got[i] == want[i],
			      "acked_beyond[%zu] %lld != %lld", i,
			      (long long)got[i], (long long)want[i]);
}

/* ---- key mode -------------------------------------------------------- */

START_TEST(test_key_two_keys_interleaved)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16], a0, b1;
	size_t              n;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_B);
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 3, ENGINE_TEST__KEY_B);
	engine_test__arrive(e, 0, 4, ENGINE_TEST__KEY_A);

	// The head of each key, and nothing behind them.
	n = engine_test__fetch(e, sid, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 1}, 2);
	a0 = d[0].offset == 0 ? d[0] : d[1];
	b1 = d[0].offset == 0 ? d[1] : d[0];
	ck_assert_uint_eq(a0.attempt, 1);
	ck_assert_uint_eq(b1.attempt, 1);
	engine_test__fetch_none(e, sid, 0);

	// A's next one waits for A's ack, not for B's.
	engine_test__ack(e, &a0);
	a0 = engine_test__fetch_one(e, sid, 0, 0, 2, 1);
	engine_test__fetch_none(e, sid, 0);
	engine_test__ack(e, &a0);
	a0 = engine_test__fetch_one(e, sid, 0, 0, 4, 1);
	engine_test__fetch_none(e, sid, 0);

	// B goes on while A's last one is out.
	engine_test__ack(e, &b1);
	b1 = engine_test__fetch_one(e, sid, 0, 0, 3, 1);
	engine_test__ack(e, &b1);
	ck_assert_int_eq(mri_engine_committable(e, 0), 4);
	engine_test__ack(e, &a0);
	ck_assert_int_eq(mri_engine_committable(e, 0), 5);
	engine_test__fetch_none(e, sid, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_key_keyless_not_ordered)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16];
	size_t              n;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	engine_test__arrive_keyless(e, 0, 0);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	engine_test__arrive_keyless(e, 0, 2);
	engine_test__arrive(e, 0, 3, ENGINE_TEST__KEY_A);
	engine_test__arrive_keyless(e, 0, 4);

	n = engine_test__fetch(e, sid, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 1, 2, 4}, 4);
	// A keyless record that arrives later goes straight out too.
	engine_test__arrive_keyless(e, 0, 5);
	engine_test__fetch_one(e, sid, 0, 0, 5, 1);
	engine_test__fetch_none(e, sid, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_key_per_partition)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16];
	size_t              n;

	// One key in two partitions is two queues.
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 1, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 1, 1, ENGINE_TEST__KEY_A);
	n = engine_test__fetch(e, sid, 0, d, 16);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_ne(d[0].partition, d[1].partition);
	ck_assert_int_eq(d[0].offset, 0);
	ck_assert_int_eq(d[1].offset, 0);
	engine_test__fetch_none(e, sid, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_key_many_keys)
{
	// Past the first sizes of the slot table (1024) and key table (256).
	enum { N = 3000, KEYS = 700 };
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, N, 16);
	uint32_t            sid;
	struct mri_delivery d[16];
	int64_t            *first = calloc(KEYS, sizeof(*first));
	size_t              acked = 0, n;

	ck_assert_ptr_nonnull(first);
	for (int64_t k = 0; k < KEYS; k++)
		first[k] = k;
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	for (int64_t o = 0; o < N; o++)
		engine_test__arrive(e, 0, o, (uint64_t)(o % KEYS));
	ck_assert_uint_eq(engine_test__stats(e).ready, KEYS);
	// Each key's records come out in offset order.
	while ((n = engine_test__fetch(e, sid, 0, d, 16)) > 0) {
		for (size_t i = 0; i < n; i++) {
			size_t k = (size_t)(d[i].offset % KEYS);

			ck_assert_int_eq(d[i].offset, first[k]);
			first[k] += KEYS;
			engine_test__ack(e, &d[i]);
			acked++;
		}
	}
	ck_assert_uint_eq(acked, N);
	ck_assert_int_eq(mri_engine_committable(e, 0), N);
	ck_assert_uint_eq(engine_test__stats(e).buffered, 0);
	free(first);
	mri_engine_free(e);
}
END_TEST

/* ---- partition mode and unordered ------------------------------------ */

START_TEST(test_partition_one_in_flight)
{
	struct mri_engine  *e =
		engine_test__new(MRI_ORDER_PARTITION, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16], p0, p1;
	size_t              n;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 7, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	// Different keys and keyless ones are still one queue per partition.
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_B);
	engine_test__arrive_keyless(e, 0, 2);
	engine_test__arrive_keyless(e, 1, 7);
	engine_test__arrive(e, 1, 8, ENGINE_TEST__KEY_B);

	n = engine_test__fetch(e, sid, 0, d, 16);
	ck_assert_uint_eq(n, 2);
	p0 = d[0].partition == 0 ? d[0] : d[1];
	p1 = d[0].partition == 0 ? d[1] : d[0];
	ck_assert_int_eq(p0.offset, 0);
	ck_assert_int_eq(p1.offset, 7);
	engine_test__fetch_none(e, sid, 0);

	engine_test__ack(e, &p0);
	p0 = engine_test__fetch_one(e, sid, 0, 0, 1, 1);
	engine_test__fetch_none(e, sid, 0);

	// A nack gives back the head: the next of the partition still waits.
	ck_assert_int_eq(mri_engine_nack(e, p1.handle, 0, false), MR_OK);
	p1 = engine_test__fetch_one(e, sid, 0, 1, 7, 2);
	engine_test__fetch_none(e, sid, 0);
	engine_test__ack(e, &p1);
	p1 = engine_test__fetch_one(e, sid, 0, 1, 8, 1);
	engine_test__ack(e, &p1);
	ck_assert_int_eq(mri_engine_committable(e, 1), 9);

	engine_test__ack(e, &p0);
	p0 = engine_test__fetch_one(e, sid, 0, 0, 2, 1);
	engine_test__ack(e, &p0);
	ck_assert_int_eq(mri_engine_committable(e, 0), 3);
	engine_test__fetch_none(e, sid, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_unordered_up_to_credit)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_UNORDERED, 100, 3);
	uint32_t            s1, s2;
	struct mri_delivery d[16], more[16];
	size_t              n;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	s1 = engine_test__session(e);
	s2 = engine_test__session(e);
	ck_assert_uint_ne(s1, s2);
	for (int64_t o = 0; o < 5; o++)
		engine_test__arrive(e, 0, o, ENGINE_TEST__KEY_A);

	// One key, yet three out at once: the credit is the only bound.
	n = engine_test__fetch(e, s1, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 1, 2}, 3);
	engine_test__fetch_none(e, s1, 0);
	engine_test__ack(e, engine_test__find(d, n, 1));
	engine_test__fetch_one(e, s1, 0, 0, 3, 1);
	engine_test__fetch_none(e, s1, 0);
	// Another session has its own credit.
	n = engine_test__fetch(e, s2, 0, more, 16);
	engine_test__offsets(more, n, (int64_t[]){4}, 1);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_session_credit)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_UNORDERED, 100, 2);
	uint32_t            s1, s2;
	struct mri_delivery d1[32], d2[32];

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	s1 = engine_test__session(e);
	s2 = engine_test__session(e);
	for (int64_t o = 0; o < 10; o++)
		engine_test__arrive_keyless(e, 0, o);

	// max bounds one fetch below the credit.
	ck_assert_uint_eq(engine_test__fetch(e, s1, 0, d1, 1), 1);
	ck_assert_uint_eq(engine_test__fetch(e, s1, 0, d1 + 1, 16), 1);
	ck_assert_uint_eq(engine_test__fetch(e, s1, 0, d2, 16), 0);
	ck_assert_uint_eq(engine_test__fetch(e, s2, 0, d2, 16), 2);
	ck_assert_uint_eq(engine_test__fetch(e, s2, 0, d2 + 2, 16), 0);
	ck_assert_uint_eq(engine_test__stats(e).inflight, 4);
	ck_assert_uint_eq(engine_test__fetch(e, s1, 0, d1, 0), 0);

	// An ack, a nack and an expiry each give one credit back.
	engine_test__ack(e, &d1[0]);
	ck_assert_uint_eq(engine_test__fetch(e, s1, 100, d1, 16), 1);
	engine_test__fetch_none(e, s1, 100);
	ck_assert_int_eq(mri_engine_nack(e, d1[0].handle, 0, false), MR_OK);
	ck_assert_uint_eq(engine_test__fetch(e, s1, 100, d1, 16), 1);
	engine_test__fetch_none(e, s1, 100);
	// What went out at 0 expires (d1[1] and s2's two), what went out
	// at 100 does not.
	ck_assert_uint_eq(mri_engine_tick(e, ENGINE_TEST__DEADLINE + 50), 3);
	ck_assert_uint_eq(engine_test__stats(e).inflight, 1);
	ck_assert_uint_eq(engine_test__fetch(e, s1, 2000, d1, 16), 1);
	ck_assert_uint_eq(engine_test__fetch(e, s2, 2000, d2, 16), 2);
	ck_assert_uint_eq(engine_test__stats(e).inflight, 4);

	// A closed or unknown session gets nothing.
	mri_engine_session_close(e, s2, 0);
	ck_assert_uint_eq(engine_test__fetch(e, s2, 2000, d2, 16), 0);
	ck_assert_uint_eq(engine_test__fetch(e, 99, 2000, d2, 16), 0);
	mri_engine_session_close(e, 99, 0);
	mri_engine_session_close(e, s2, 0);
	mri_engine_free(e);
}
END_TEST

/* ---- stale handles --------------------------------------------------- */

START_TEST(test_stale_handles)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid, s2;
	struct mri_delivery d, old;
	void               *op = (void *)1;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	s2  = engine_test__session(e);

	// Handles never handed out.
	ck_assert_int_eq(mri_engine_ack(e, 0, &op), MR_ENOENT);
	ck_assert_ptr_eq(op, (void *)1);
	ck_assert_int_eq(mri_engine_ack(e, 12345, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_ack(e, UINT64_MAX, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_nack(e, 7, 0, false), MR_ENOENT);
	ck_assert_int_eq(mri_engine_extend(e, 7, 0, 10), MR_ENOENT);

	// Double ack.
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	d = engine_test__fetch_one(e, sid, 0, 0, 0, 1);
	engine_test__ack(e, &d);
	ck_assert_int_eq(mri_engine_ack(e, d.handle, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_nack(e, d.handle, 0, false), MR_ENOENT);
	ck_assert_int_eq(mri_engine_extend(e, d.handle, 0, 10), MR_ENOENT);

	// After a nack: the old handle is stale, the new one works.
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	old = engine_test__fetch_one(e, sid, 0, 0, 1, 1);
	ck_assert_int_eq(mri_engine_nack(e, old.handle, 0, false), MR_OK);
	ck_assert_int_eq(mri_engine_ack(e, old.handle, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_nack(e, old.handle, 0, false), MR_ENOENT);
	d = engine_test__fetch_one(e, sid, 0, 0, 1, 2);
	ck_assert_uint_ne(d.handle, old.handle);
	ck_assert_int_eq(mri_engine_ack(e, old.handle, NULL), MR_ENOENT);
	engine_test__ack(e, &d);

	// After expiry.
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);
	old = engine_test__fetch_one(e, sid, 0, 0, 2, 1);
	ck_assert_uint_eq(mri_engine_tick(e, 5000), 1);
	ck_assert_int_eq(mri_engine_ack(e, old.handle, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_extend(e, old.handle, 5000, 10),
			 MR_ENOENT);
	d = engine_test__fetch_one(e, sid, 5000, 0, 2, 2);

	// After the session closed.
	ck_assert_int_eq(mri_engine_nack(e, d.handle, 0, false), MR_OK);
	d = engine_test__fetch_one(e, s2, 5000, 0, 2, 3);
	mri_engine_session_close(e, s2, 0);
	ck_assert_int_eq(mri_engine_ack(e, d.handle, NULL), MR_ENOENT);

	// After a revoke: a stale handle of a revoked partition, while the
	// other partition's handles still work.
	d = engine_test__fetch_one(e, sid, 5000, 0, 2, 4);
	engine_test__arrive(e, 1, 0, ENGINE_TEST__KEY_A);
	old = engine_test__fetch_one(e, sid, 5000, 1, 0, 1);
	{
		int64_t c = -1;

		ck_assert_int_eq(mri_engine_revoke(e, 0, &c), MR_OK);
		ck_assert_int_eq(c, 2);
	}
	ck_assert_int_eq(mri_engine_ack(e, d.handle, NULL), MR_ENOENT);
	ck_assert_int_eq(mri_engine_nack(e, d.handle, 0, false), MR_ENOENT);
	ck_assert_int_eq(mri_engine_extend(e, d.handle, 0, 1), MR_ENOENT);
	// Reassigned and the same offset again: the old handle stays stale.
	ck_assert_int_eq(mri_engine_assign(e, 0, 2, NULL, 0), MR_OK);
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);
	ck_assert_int_eq(mri_engine_ack(e, d.handle, NULL), MR_ENOENT);
	engine_test__ack(e, &old);
	mri_engine_free(e);
}
END_TEST

/* ---- redelivery ------------------------------------------------------ */

START_TEST(test_nack_before_later_records)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid;
	struct mri_delivery d;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);

	d = engine_test__fetch_one(e, sid, 0, 0, 0, 1);
	for (uint32_t a = 2; a <= 4; a++) {
		ck_assert_int_eq(mri_engine_nack(e, d.handle, 0, false), MR_OK);
		ck_assert_int_eq(mri_engine_committable(e, 0), 0);
		d = engine_test__fetch_one(e, sid, 0, 0, 0, a);
	}
	engine_test__ack(e, &d);
	d = engine_test__fetch_one(e, sid, 0, 0, 1, 1);
	ck_assert_int_eq(mri_engine_nack(e, d.handle, 0, false), MR_OK);
	d = engine_test__fetch_one(e, sid, 0, 0, 1, 2);
	engine_test__ack(e, &d);
	d = engine_test__fetch_one(e, sid, 0, 0, 2, 1);
	engine_test__ack(e, &d);
	ck_assert_int_eq(mri_engine_committable(e, 0), 3);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_tick_and_extend)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid;
	struct mri_delivery a, b;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);

	a = engine_test__fetch_one(e, sid, 100, 0, 0, 1); // deadline 1100
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_B);
	engine_test__arrive(e, 0, 3, ENGINE_TEST__KEY_B);
	b = engine_test__fetch_one(e, sid, 500, 0, 2, 1); // deadline 1500
	ck_assert_uint_eq(mri_engine_tick(e, 0), 0);
	ck_assert_uint_eq(mri_engine_tick(e, 1099), 0);

	// Extend a: now 1000 + 800 = 1800.
	ck_assert_int_eq(mri_engine_extend(e, a.handle, 1000, 800), MR_OK);
	ck_assert_uint_eq(mri_engine_tick(e, 1200), 0);
	ck_assert_uint_eq(mri_engine_tick(e, 1501), 1); // b
	ck_assert_int_eq(mri_engine_ack(e, b.handle, NULL), MR_ENOENT);
	b = engine_test__fetch_one(e, sid, 1501, 0, 2, 2);
	// An extend may also shorten the deadline: 1600 + 10.
	ck_assert_int_eq(mri_engine_extend(e, b.handle, 1600, 10), MR_OK);
	ck_assert_uint_eq(mri_engine_tick(e, 1609), 0);
	ck_assert_uint_eq(mri_engine_tick(e, 1611), 1); // b again
	ck_assert_uint_eq(mri_engine_tick(e, 1799), 0);
	ck_assert_int_eq(mri_engine_extend(e, a.handle, 1799, 0), MR_OK);
	ck_assert_uint_eq(mri_engine_tick(e, 1800), 1); // a
	ck_assert_uint_eq(mri_engine_tick(e, 100000), 0);

	// Both come back as the heads of their keys, attempt raised.
	{
		struct mri_delivery d[16];
		size_t n = engine_test__fetch(e, sid, 2000, d, 16);

		engine_test__offsets(d, n, (int64_t[]){0, 2}, 2);
		for (size_t i = 0; i < n; i++)
			ck_assert_uint_eq(d[i].attempt,
					  d[i].offset == 0 ? 2 : 3);
	}
	ck_assert_int_eq(mri_engine_committable(e, 0), 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_session_close_redelivers)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            s1, s2, s3;
	struct mri_delivery d[16];
	size_t              n;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	s1 = engine_test__session(e);
	s2 = engine_test__session(e);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_B);
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);
	engine_test__arrive_keyless(e, 0, 3);

	n = engine_test__fetch(e, s1, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 1, 3}, 3);
	// The consumer crashes: s2 gets its records, A's next still waits.
	mri_engine_session_close(e, s1, 0);
	ck_assert_uint_eq(engine_test__stats(e).inflight, 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(mri_engine_ack(e, d[i].handle, NULL),
				 MR_ENOENT);
	n = engine_test__fetch(e, s2, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 1, 3}, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(d[i].attempt, 2);
	s3 = engine_test__session(e);
	engine_test__fetch_none(e, s3, 0);
	for (size_t i = 0; i < n; i++)
		engine_test__ack(e, &d[i]);
	engine_test__fetch_one(e, s3, 0, 0, 2, 1);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_attempts_from_arrive)
{
	struct mri_engine  *e =
		engine_test__new(MRI_ORDER_UNORDERED, 100, 100);
	uint32_t            sid;
	struct mri_delivery d;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	ck_assert_int_eq(mri_engine_arrive(e, 0, 0, ENGINE_TEST__KEY_A, false,
					   2, false,
					   engine_test__opaque(0, 0)),
			 MR_OK);
	d = engine_test__fetch_one(e, sid, 0, 0, 0, 3);
	ck_assert_int_eq(mri_engine_nack(e, d.handle, 0, false), MR_OK);
	d = engine_test__fetch_one(e, sid, 0, 0, 0, 4);
	mri_engine_session_close(e, sid, 0);
	sid = engine_test__session(e);
	d   = engine_test__fetch_one(e, sid, 0, 0, 0, 5);
	engine_test__ack(e, &d);
	mri_engine_free(e);
}
END_TEST

/* ---- the committed prefix -------------------------------------------- */

START_TEST(test_committable_with_gaps)
{
	struct mri_engine  *e =
		engine_test__new(MRI_ORDER_UNORDERED, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16];

	ck_assert_int_eq(mri_engine_assign(e, 0, 10, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_committable(e, 0), 10);
	sid = engine_test__session(e);
	engine_test__arrive(e, 0, 10, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 12, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 15, ENGINE_TEST__KEY_A);
	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 3);
	ck_assert_int_eq(mri_engine_committable(e, 0), 10);

	// In flight is not acked; acks beyond an unacked one wait.
	engine_test__ack(e, engine_test__find(d, 3, 15));
	ck_assert_int_eq(mri_engine_committable(e, 0), 10);
	engine_test__beyond(e, 0, (int64_t[]){15}, 1);
	engine_test__ack(e, engine_test__find(d, 3, 10));
	ck_assert_int_eq(mri_engine_committable(e, 0), 11);
	engine_test__beyond(e, 0, (int64_t[]){15}, 1);
	engine_test__ack(e, engine_test__find(d, 3, 12));
	ck_assert_int_eq(mri_engine_committable(e, 0), 16);
	engine_test__beyond(e, 0, NULL, 0);
	ck_assert_uint_eq(engine_test__stats(e).buffered, 0);

	// acked_beyond says how many there are even when out is short.
	engine_test__arrive(e, 0, 20, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 21, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 22, ENGINE_TEST__KEY_A);
	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 3);
	engine_test__ack(e, engine_test__find(d, 3, 21));
	engine_test__ack(e, engine_test__find(d, 3, 22));
	{
		int64_t one = -1;

		ck_assert_uint_eq(mri_engine_acked_beyond(e, 0, &one, 1), 2);
		ck_assert_int_eq(one, 21);
		ck_assert_uint_eq(mri_engine_acked_beyond(e, 0, NULL, 0), 2);
	}
	ck_assert_int_eq(mri_engine_committable(e, 0), 16);
	engine_test__ack(e, engine_test__find(d, 3, 20));
	ck_assert_int_eq(mri_engine_committable(e, 0), 23);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_arrive_acked_dedupe)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	uint32_t            sid;
	struct mri_delivery d;
	struct mri_engine_stats s;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	ck_assert_int_eq(mri_engine_arrive(e, 0, 0, ENGINE_TEST__KEY_A, false,
					   1, true, engine_test__opaque(0, 0)),
			 MRI_ENGINE_NOT_HELD);
	ck_assert_int_eq(mri_engine_committable(e, 0), 1);
	engine_test__fetch_none(e, sid, 0);
	s = engine_test__stats(e);
	ck_assert_uint_eq(s.buffered, 0);
	ck_assert_uint_eq(s.ready, 0);

	// An acked record does not hold its key back, before or behind.
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	ck_assert_int_eq(mri_engine_arrive(e, 0, 2, ENGINE_TEST__KEY_A, false,
					   0, true, engine_test__opaque(0, 2)),
			 MRI_ENGINE_NOT_HELD);
	engine_test__arrive(e, 0, 3, ENGINE_TEST__KEY_A);
	ck_assert_int_eq(mri_engine_committable(e, 0), 1);
	engine_test__beyond(e, 0, (int64_t[]){2}, 1);
	d = engine_test__fetch_one(e, sid, 0, 0, 1, 1);
	engine_test__fetch_none(e, sid, 0);
	engine_test__ack(e, &d);
	ck_assert_int_eq(mri_engine_committable(e, 0), 3);
	d = engine_test__fetch_one(e, sid, 0, 0, 3, 1);
	engine_test__ack(e, &d);
	ck_assert_int_eq(mri_engine_committable(e, 0), 4);
	engine_test__fetch_none(e, sid, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_revoke_reassign_acked)
{
	struct mri_engine  *e =
		engine_test__new(MRI_ORDER_UNORDERED, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16];
	int64_t             keep[16], commit = -1;
	size_t              n, nkeep;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	for (int64_t o = 0; o < 6; o++)
		engine_test__arrive(e, 0, o, ENGINE_TEST__KEY_A);
	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 6);
	engine_test__ack(e, engine_test__find(d, 6, 1));
	engine_test__ack(e, engine_test__find(d, 6, 3));
	engine_test__ack(e, engine_test__find(d, 6, 4));

	nkeep = mri_engine_acked_beyond(e, 0, keep, 16);
	ck_assert_uint_eq(nkeep, 3);
	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_OK);
	ck_assert_int_eq(commit, 0);
	ck_assert_int_eq(mri_engine_committable(e, 0), -1);
	ck_assert_uint_eq(mri_engine_acked_beyond(e, 0, keep + 8, 8), 0);
	ck_assert(!mri_engine_full(e, 0));
	ck_assert_uint_eq(engine_test__stats(e).buffered, 0);
	ck_assert_uint_eq(engine_test__stats(e).inflight, 0);

	// Back, from the commit and with what was kept: 1, 3 and 4 are not
	// delivered again (given in any order).
	ck_assert_int_eq(mri_engine_assign(e, 0, commit,
					   (int64_t[]){keep[2], keep[0],
						       keep[1]},
					   nkeep),
			 MR_OK);
	for (int64_t o = 0; o < 6; o++)
		if (o == 1 || o == 3 || o == 4)
			engine_test__arrive_acked(e, 0, o, ENGINE_TEST__KEY_A);
		else
			engine_test__arrive(e, 0, o, ENGINE_TEST__KEY_A);
	n = engine_test__fetch(e, sid, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 2, 5}, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(d[i].attempt, 1); // not counted durably
	engine_test__ack(e, engine_test__find(d, n, 0));
	engine_test__ack(e, engine_test__find(d, n, 2));
	ck_assert_int_eq(mri_engine_committable(e, 0), 5);
	engine_test__ack(e, engine_test__find(d, n, 5));
	ck_assert_int_eq(mri_engine_committable(e, 0), 6);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_acked_beyond_not_yet_arrived)
{
	struct mri_engine  *e =
		engine_test__new(MRI_ORDER_UNORDERED, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16];
	int64_t             keep[16], commit = -1;
	size_t              nkeep, n;

	// Kept from an earlier owner: 1, 3 and 7 were acked beyond 0.
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, (int64_t[]){1, 3, 7}, 3),
			 MR_OK);
	sid = engine_test__session(e);
	// Revoked again before they arrived: what is kept with this commit
	// must still say so, or the next owner delivers them again.
	engine_test__beyond(e, 0, (int64_t[]){1, 3, 7}, 3);
	nkeep = mri_engine_acked_beyond(e, 0, keep, 16);
	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_OK);
	ck_assert_int_eq(commit, 0);

	ck_assert_int_eq(mri_engine_assign(e, 0, commit, keep, nkeep), MR_OK);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive_acked(e, 0, 1, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);
	// Some arrived, 3 and 7 not yet; 1 is acked beyond the prefix.
	engine_test__beyond(e, 0, (int64_t[]){1, 3, 7}, 3);
	n = engine_test__fetch(e, sid, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){0, 2}, 2);
	engine_test__ack(e, &d[0]);
	engine_test__ack(e, &d[1]);
	ck_assert_int_eq(mri_engine_committable(e, 0), 3);
	engine_test__beyond(e, 0, (int64_t[]){3, 7}, 2);
	nkeep = mri_engine_acked_beyond(e, 0, keep, 16);
	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_OK);
	ck_assert_int_eq(commit, 3);

	ck_assert_int_eq(mri_engine_assign(e, 0, commit, keep, nkeep), MR_OK);
	for (int64_t o = 3; o < 9; o++)
		if (o == 3 || o == 7)
			engine_test__arrive_acked(e, 0, o, ENGINE_TEST__KEY_A);
		else
			engine_test__arrive(e, 0, o, ENGINE_TEST__KEY_A);
	n = engine_test__fetch(e, sid, 0, d, 16);
	engine_test__offsets(d, n, (int64_t[]){4, 5, 6, 8}, 4);
	for (size_t i = 0; i < n; i++)
		engine_test__ack(e, &d[i]);
	ck_assert_int_eq(mri_engine_committable(e, 0), 9);
	engine_test__beyond(e, 0, NULL, 0);

	// A kept offset that never arrives (a gap) is passed over.
	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 0, commit, (int64_t[]){10}, 1),
			 MR_OK);
	engine_test__arrive(e, 0, 9, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 11, ENGINE_TEST__KEY_A);
	engine_test__beyond(e, 0, NULL, 0);
	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 2);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_acked_beyond_kept_edges)
{
	struct mri_engine  *e =
		engine_test__new(MRI_ORDER_UNORDERED, 100, 100);
	uint32_t            sid;
	struct mri_delivery d[16];

	// Given twice, listed once; one that just arrived is listed once.
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, (int64_t[]){4, 2, 2}, 3),
			 MR_OK);
	sid = engine_test__session(e);
	engine_test__beyond(e, 0, (int64_t[]){2, 4}, 2);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	engine_test__arrive_acked(e, 0, 2, ENGINE_TEST__KEY_A);
	engine_test__beyond(e, 0, (int64_t[]){2, 4}, 2);
	ck_assert_int_eq(mri_engine_arrive(e, 0, 3, ENGINE_TEST__KEY_A, false,
					   0, true, engine_test__opaque(0, 3)),
			 MRI_ENGINE_NOT_HELD);
	engine_test__beyond(e, 0, (int64_t[]){2, 3, 4}, 3);
	engine_test__arrive_acked(e, 0, 4, ENGINE_TEST__KEY_A);
	engine_test__beyond(e, 0, (int64_t[]){2, 3, 4}, 3);
	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 2);
	engine_test__ack(e, &d[0]);
	engine_test__ack(e, &d[1]);
	ck_assert_int_eq(mri_engine_committable(e, 0), 5);
	engine_test__beyond(e, 0, NULL, 0);
	mri_engine_free(e);
}
END_TEST

/* ---- flow control ---------------------------------------------------- */

START_TEST(test_full)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_UNORDERED, 3, 100);
	uint32_t            sid;
	struct mri_delivery d[16];

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	ck_assert(!mri_engine_full(e, 0));
	ck_assert(!mri_engine_full(e, 5));
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	ck_assert(!mri_engine_full(e, 0));
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_A);
	ck_assert(mri_engine_full(e, 0));
	ck_assert(!mri_engine_full(e, 1)); // per partition
	// Full is a request to pause, not a refusal.
	engine_test__arrive(e, 0, 3, ENGINE_TEST__KEY_A);
	ck_assert(mri_engine_full(e, 0));

	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 4);
	ck_assert(mri_engine_full(e, 0)); // in flight still held
	engine_test__ack(e, engine_test__find(d, 4, 1));
	ck_assert(mri_engine_full(e, 0)); // 0, 2, 3 held
	engine_test__ack(e, engine_test__find(d, 4, 2));
	// Acked behind 0, which holds the prefix back: only its offset is
	// kept, and it does not count.
	ck_assert(!mri_engine_full(e, 0));
	ck_assert_uint_eq(engine_test__stats(e).buffered, 2);
	ck_assert_int_eq(mri_engine_committable(e, 0), 0);
	engine_test__beyond(e, 0, (int64_t[]){1, 2}, 2);
	engine_test__ack(e, engine_test__find(d, 4, 0));
	ck_assert(!mri_engine_full(e, 0)); // 0..2 left: only 3 held
	ck_assert_uint_eq(engine_test__stats(e).buffered, 1);
	ck_assert_int_eq(mri_engine_committable(e, 0), 3);
	engine_test__beyond(e, 0, NULL, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_errors)
{
	struct mri_engine     *e = engine_test__new(MRI_ORDER_KEY, 10, 10);
	struct mri_engine     *bad = (void *)1;
	struct mri_engine_conf c = {.order = MRI_ORDER_KEY, .max_buffered = 10,
				  .session_credit = 10, .ack_deadline_ms = 100};
	int64_t                commit = 77;

	// Configuration.
	c.max_buffered = 0;
	ck_assert_int_eq(mri_engine_new(&bad, &c), MR_EINVAL);
	c.max_buffered   = 10;
	c.session_credit = 0;
	ck_assert_int_eq(mri_engine_new(&bad, &c), MR_EINVAL);
	c.session_credit = 10;
	c.order          = (enum mri_order)7;
	ck_assert_int_eq(mri_engine_new(&bad, &c), MR_EINVAL);
	ck_assert_ptr_eq(bad, (void *)1);
	mri_engine_free(NULL);

	// Partitions not ours.
	ck_assert_int_eq(mri_engine_arrive(e, 0, 0, 1, false, 0, false, NULL),
			 MR_ENOENT);
	ck_assert_int_eq(mri_engine_arrive(e, 9, 0, 1, false, 0, false, NULL),
			 MR_ENOENT);
	ck_assert_int_eq(mri_engine_arrive(e, -1, 0, 1, false, 0, false, NULL),
			 MR_ENOENT);
	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_ENOENT);
	ck_assert_int_eq(commit, 77);
	ck_assert_int_eq(mri_engine_committable(e, 0), -1);
	ck_assert_int_eq(mri_engine_assign(e, -1, 0, NULL, 0), MR_EINVAL);
	ck_assert_int_eq(mri_engine_assign(e, 0, -1, NULL, 0), MR_EINVAL);

	// Assign twice.
	ck_assert_int_eq(mri_engine_assign(e, 2, 5, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 2, 5, NULL, 0), MR_EEXIST);
	ck_assert_int_eq(mri_engine_assign(e, 2, 9, (int64_t[]){10}, 1),
			 MR_EEXIST);
	ck_assert_int_eq(mri_engine_committable(e, 2), 5);
	ck_assert_int_eq(mri_engine_committable(e, 1), -1);
	ck_assert_int_eq(mri_engine_arrive(e, 1, 0, 1, false, 0, false, NULL),
			 MR_ENOENT);

	// Offsets must increase.
	engine_test__arrive(e, 2, 5, 1);
	ck_assert_int_eq(mri_engine_arrive(e, 2, 5, 1, false, 0, false, NULL),
			 MR_EINVAL);
	ck_assert_int_eq(mri_engine_arrive(e, 2, 4, 1, false, 0, false, NULL),
			 MR_EINVAL);
	ck_assert_uint_eq(engine_test__stats(e).buffered, 1);
	engine_test__arrive(e, 2, 8, 1);
	ck_assert_int_eq(mri_engine_arrive(e, 2, 7, 2, true, 0, true, NULL),
			 MR_EINVAL);
	ck_assert_uint_eq(engine_test__stats(e).buffered, 2);

	// Partition numbers need not be dense.
	ck_assert_int_eq(mri_engine_assign(e, 1000, 3, NULL, 0), MR_OK);
	engine_test__arrive(e, 1000, 3, 1);
	ck_assert_int_eq(mri_engine_committable(e, 1000), 3);
	ck_assert_int_eq(mri_engine_committable(e, 999), -1);
	ck_assert_int_eq(mri_engine_committable(e, 1001), -1);
	ck_assert_int_eq(mri_engine_revoke(e, 1000, &commit), MR_OK);
	ck_assert_int_eq(commit, 3);

	// Revoked: gone, and its offsets may come again.
	ck_assert_int_eq(mri_engine_revoke(e, 2, &commit), MR_OK);
	ck_assert_int_eq(commit, 5);
	ck_assert_int_eq(mri_engine_revoke(e, 2, &commit), MR_ENOENT);
	ck_assert_int_eq(mri_engine_arrive(e, 2, 9, 1, false, 0, false, NULL),
			 MR_ENOENT);
	ck_assert_int_eq(mri_engine_assign(e, 2, 5, NULL, 0), MR_OK);
	engine_test__arrive(e, 2, 5, 1);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_stats)
{
	struct mri_engine      *e = engine_test__new(MRI_ORDER_KEY, 100, 100);
	struct mri_engine_stats s;
	struct mri_delivery     d[32];
	uint32_t                sid;
	int64_t                 commit;

	s = engine_test__stats(e);
	ck_assert_uint_eq(s.buffered, 0);
	ck_assert_uint_eq(s.inflight, 0);
	ck_assert_uint_eq(s.ready, 0);
	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 0, NULL, 0), MR_OK);
	sid = engine_test__session(e);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 2, ENGINE_TEST__KEY_B);
	engine_test__arrive_keyless(e, 1, 0);
	s = engine_test__stats(e);
	ck_assert_uint_eq(s.buffered, 4);
	ck_assert_uint_eq(s.inflight, 0);
	ck_assert_uint_eq(s.ready, 3); // A's second waits

	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 2), 2);
	s = engine_test__stats(e);
	ck_assert_uint_eq(s.buffered, 4);
	ck_assert_uint_eq(s.inflight, 2);
	ck_assert_uint_eq(s.ready, 1);

	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d + 2, 16), 1);
	for (size_t i = 0; i < 3; i++)
		if (d[i].partition == 0 && d[i].offset == 0)
			engine_test__ack(e, &d[i]);
	s = engine_test__stats(e);
	ck_assert_uint_eq(s.buffered, 3);
	ck_assert_uint_eq(s.inflight, 2);
	ck_assert_uint_eq(s.ready, 1); // A's second

	ck_assert_int_eq(mri_engine_revoke(e, 0, &commit), MR_OK);
	ck_assert_int_eq(commit, 1);
	s = engine_test__stats(e);
	ck_assert_uint_eq(s.buffered, 1);
	ck_assert_uint_eq(s.inflight, 1);
	ck_assert_uint_eq(s.ready, 0);
	mri_engine_free(e);
}
END_TEST

START_TEST(test_free_while_busy)
{
	struct mri_engine  *e = engine_test__new(MRI_ORDER_KEY, 100, 4);
	struct mri_delivery d[16];
	uint32_t            s1, s2;

	// Everything in every state at once; the sanitizers check the rest.
	ck_assert_int_eq(mri_engine_assign(e, 3, 0, (int64_t[]){40}, 1),
			 MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 0, NULL, 0), MR_OK);
	s1 = engine_test__session(e);
	s2 = engine_test__session(e);
	for (int64_t o = 0; o < 30; o++) {
		engine_test__arrive(e, 3, o, (uint64_t)o % 5);
		engine_test__arrive(e, 1, o, (uint64_t)o % 3);
	}
	ck_assert_uint_eq(engine_test__fetch(e, s1, 0, d, 16), 4);
	engine_test__ack(e, &d[3]);
	ck_assert_uint_eq(engine_test__fetch(e, s2, 0, d, 16), 4);
	mri_engine_session_close(e, s1, 0);
	mri_engine_free(e);
}
END_TEST

/* What the observer was told. */
struct engine_test__expired {
	struct mri_delivery d[16];
	size_t              n;
};

static void
engine_test__on_expired(void *arg, const struct mri_delivery *d,
			enum mri_engine_fail why)
{
	struct engine_test__expired *x = arg;

	ck_assert_int_eq(why, MRI_ENGINE_EXPIRED);
	ck_assert_uint_lt(x->n, 16);
	x->d[x->n++] = *d;
}

/* The group's hooks and stats: a delivery by handle, each expiry told,
 * buffered and in flight per partition. */
START_TEST(test_peek_observe_part_stats)
{
	struct mri_engine          *e = engine_test__new(MRI_ORDER_UNORDERED,
							 100, 10);
	uint32_t                    sid = engine_test__session(e);
	struct mri_delivery         d[16], p;
	struct engine_test__expired x = {.n = 0};
	size_t                      buffered, inflight;

	ck_assert_int_eq(mri_engine_assign(e, 0, 0, NULL, 0), MR_OK);
	ck_assert_int_eq(mri_engine_assign(e, 1, 0, NULL, 0), MR_OK);
	engine_test__arrive(e, 0, 0, ENGINE_TEST__KEY_A);
	engine_test__arrive(e, 0, 1, ENGINE_TEST__KEY_B);
	engine_test__arrive(e, 1, 0, ENGINE_TEST__KEY_A);
	ck_assert_int_eq(mri_engine_part_stats(e, 0, &buffered, &inflight),
			 MR_OK);
	ck_assert_uint_eq(buffered, 2);
	ck_assert_uint_eq(inflight, 0);
	ck_assert_int_eq(mri_engine_part_stats(e, 5, &buffered, &inflight),
			 MR_ENOENT);

	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 3);
	ck_assert_int_eq(mri_engine_part_stats(e, 0, &buffered, &inflight),
			 MR_OK);
	ck_assert_uint_eq(inflight, 2);
	ck_assert_int_eq(mri_engine_part_stats(e, 1, &buffered, &inflight),
			 MR_OK);
	ck_assert_uint_eq(inflight, 1);

	// Peek changes nothing; a stale handle is not found.
	ck_assert_int_eq(mri_engine_peek(e, d[0].handle, &p), MR_OK);
	ck_assert_uint_eq(p.handle, d[0].handle);
	ck_assert_int_eq(p.partition, d[0].partition);
	ck_assert_int_eq(p.offset, d[0].offset);
	ck_assert_uint_eq(p.attempt, 1);
	ck_assert_ptr_eq(p.opaque, d[0].opaque);
	ck_assert_int_eq(mri_engine_peek(e, d[0].handle, &p), MR_OK);
	ck_assert_int_eq(mri_engine_nack(e, d[0].handle, 0, false), MR_OK);
	ck_assert_int_eq(mri_engine_peek(e, d[0].handle, &p), MR_ENOENT);
	ck_assert_int_eq(mri_engine_part_stats(e, d[0].partition, &buffered,
					       &inflight),
			 MR_OK);
	ck_assert_uint_eq(inflight, d[0].partition == 0 ? 1 : 0);

	// The two still in flight expire, each told once.
	mri_engine_observe(e, engine_test__on_expired, &x);
	ck_assert_uint_eq(mri_engine_tick(e, ENGINE_TEST__DEADLINE - 1), 0);
	ck_assert_uint_eq(mri_engine_tick(e, ENGINE_TEST__DEADLINE), 2);
	ck_assert_uint_eq(x.n, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_uint_eq(x.d[i].attempt, 1);
		ck_assert_ptr_eq(x.d[i].opaque,
				 engine_test__opaque(x.d[i].partition,
						     x.d[i].offset));
		ck_assert(x.d[i].handle == d[1].handle ||
			  x.d[i].handle == d[2].handle);
		ck_assert_int_eq(mri_engine_peek(e, x.d[i].handle, &p),
				 MR_ENOENT);
	}
	for (int32_t part = 0; part < 2; part++) {
		ck_assert_int_eq(mri_engine_part_stats(e, part, &buffered,
						       &inflight),
				 MR_OK);
		ck_assert_uint_eq(inflight, 0);
		ck_assert_uint_eq(buffered, part == 0 ? 2 : 1);
	}
	ck_assert_uint_eq(mri_engine_tick(e, 10 * ENGINE_TEST__DEADLINE), 0);

	// Acked at the next attempt, partition 1's record leaves its buffer.
	ck_assert_uint_eq(engine_test__fetch(e, sid, 0, d, 16), 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(d[i].attempt, 2);
		if (d[i].partition == 1)
			ck_assert_int_eq(mri_engine_ack(e, d[i].handle, NULL),
					 MR_OK);
	}
	ck_assert_int_eq(mri_engine_part_stats(e, 1, &buffered, &inflight),
			 MR_OK);
	ck_assert_uint_eq(buffered, 0);
	ck_assert_uint_eq(inflight, 0);
	mri_engine_free(e);
}
END_TEST

static Suite *
engine_test__suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc;

	tc = tcase_create("order");
	tcase_add_test(tc, test_key_two_keys_interleaved);
	tcase_add_test(tc, test_key_keyless_not_ordered);
	tcase_add_test(tc, test_key_per_partition);
	tcase_add_test(tc, test_key_many_keys);
	tcase_add_test(tc, test_partition_one_in_flight);
	tcase_add_test(tc, test_unordered_up_to_credit);
	tcase_add_test(tc, test_session_credit);
	suite_add_tcase(s, tc);

	tc = tcase_create("redelivery");
	tcase_add_test(tc, test_stale_handles);
	tcase_add_test(tc, test_nack_before_later_records);
	tcase_add_test(tc, test_tick_and_extend);
	tcase_add_test(tc, test_session_close_redelivers);
	tcase_add_test(tc, test_attempts_from_arrive);
	suite_add_tcase(s, tc);

	tc = tcase_create("commit");
	tcase_add_test(tc, test_committable_with_gaps);
	tcase_add_test(tc, test_arrive_acked_dedupe);
	tcase_add_test(tc, test_revoke_reassign_acked);
	tcase_add_test(tc, test_acked_beyond_not_yet_arrived);
	tcase_add_test(tc, test_acked_beyond_kept_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("misc");
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_peek_observe_part_stats);
	tcase_add_test(tc, test_free_while_busy);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(engine_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
