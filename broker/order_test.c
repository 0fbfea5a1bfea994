/*
 * Step tests for broker/order.c, the order of a publisher's requests: the
 * rules of broker/order.h, one at a time. The seeded random simulation of
 * the same module is broker/order_sim_test.c.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker/order.h"
#include "mailroom/error.h"
/* ---- step tests ------------------------------------------------------ */

#define OT_T0    1000000ULL /* a clock well past zero */
#define OT_NEVER (1ULL << 40) /* a wait no request reaches */

struct ot_want {
	uint32_t seq;
	bool     turn;
};

static struct mri_order_table *
ot__new(size_t max_streams, uint64_t idle_ms)
{
	struct mri_order_table *o = NULL;

	ck_assert_int_eq(mri_order_new(&o, max_streams, idle_ms), MR_OK);
	ck_assert_ptr_nonnull(o);
	return o;
}

static void
ot__item(struct mri_order_item *it, uint64_t stream, uint32_t seq)
{
	memset(it, 0, sizeof(*it));
	it->stream = stream;
	it->seq    = seq;
	it->arg    = it;
}

static struct mri_order_item *
ot__arrive(struct mri_order_table *o, struct mri_order_item *it,
	   uint32_t base, uint64_t now)
{
	bool                   full = true;
	struct mri_order_item *l;

	l = mri_order_arrive(o, it, base, now, &full);
	ck_assert_msg(!full, "seq %u: full", it->seq);
	return l;
}

/* \p l is exactly \p w: seqs and turns, in order. */
static void
ot__expect(int line, const struct mri_order_item *l, const struct ot_want *w,
	   size_t n)
{
	size_t i;

	for (i = 0; l != NULL; l = l->next, i++) {
		ck_assert_msg(i < n, "line %d: more than %zu back (seq %u)",
			      line, n, l->seq);
		ck_assert_msg(l->seq == w[i].seq && l->turn == w[i].turn,
			      "line %d: #%zu back is seq %u turn %d, want "
			      "seq %u turn %d",
			      line, i, l->seq, l->turn, w[i].seq, w[i].turn);
	}
	ck_assert_msg(i == n, "line %d: %zu back, want %zu", line, i, n);
}

#define OT_EXPECT(l, ...)                                                    \
	ot__expect(__LINE__, (l), (const struct ot_want[]){__VA_ARGS__},     \
		   sizeof((const struct ot_want[]){__VA_ARGS__}) /           \
			   sizeof(struct ot_want))

static struct mri_order_stats
ot__stats(struct mri_order_table *o)
{
	struct mri_order_stats st;

	mri_order_stats(o, &st);
	return st;
}

START_TEST(test_new_free)
{
	struct mri_order_table *o = ot__new(0, 1000);
	struct mri_order_item   a, b;
	bool                    full = false;

	mri_order_free(NULL);
	// max_streams 0 is taken as 1.
	ot__item(&a, 1, 1);
	ot__item(&b, 2, 1);
	OT_EXPECT(ot__arrive(o, &a, 1, OT_T0), {1, true});
	ck_assert_ptr_eq(mri_order_arrive(o, &b, 1, OT_T0, &full), &b);
	ck_assert(full);
	ck_assert_ptr_null(mri_order_done(o, &a, OT_T0));
	mri_order_free(o);
}
END_TEST

START_TEST(test_start_at_base)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a5, a6, a7, b3, b4;

	ot__item(&a5, 1, 5);
	ot__item(&a6, 1, 6);
	ot__item(&a7, 1, 7);
	// Stream 1 starts at the base of its first request, 5: 7 waits.
	ck_assert_ptr_null(ot__arrive(o, &a7, 5, OT_T0));
	ck_assert_uint_eq(ot__stats(o).streams, 1);
	ck_assert_uint_eq(ot__stats(o).parked, 1);
	OT_EXPECT(ot__arrive(o, &a5, 5, OT_T0), {5, true});
	ck_assert_ptr_null(mri_order_done(o, &a5, OT_T0));
	OT_EXPECT(ot__arrive(o, &a6, 5, OT_T0), {6, true});
	OT_EXPECT(mri_order_done(o, &a6, OT_T0), {7, true});
	ck_assert_ptr_null(mri_order_done(o, &a7, OT_T0));

	// Stream 2 first seen with a seq before its base: a resend, at once.
	ot__item(&b3, 2, 3);
	ot__item(&b4, 2, 4);
	OT_EXPECT(ot__arrive(o, &b3, 4, OT_T0), {3, false});
	OT_EXPECT(ot__arrive(o, &b4, 4, OT_T0), {4, true});
	ck_assert_ptr_null(mri_order_done(o, &b3, OT_T0));
	ck_assert_ptr_null(mri_order_done(o, &b4, OT_T0));
	ck_assert_uint_eq(ot__stats(o).streams, 2);
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	mri_order_free(o);
}
END_TEST

START_TEST(test_one_at_a_time)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a1, a2, b1;

	ot__item(&a1, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&b1, 2, 1);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	// In order, but 1 holds the turn: 2 waits for mri_order_done.
	ck_assert_ptr_null(ot__arrive(o, &a2, 1, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 1);
	// Turns are per stream.
	OT_EXPECT(ot__arrive(o, &b1, 1, OT_T0), {1, true});
	OT_EXPECT(mri_order_done(o, &a1, OT_T0), {2, true});
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	ck_assert_ptr_null(mri_order_done(o, &a2, OT_T0));
	ck_assert_ptr_null(mri_order_done(o, &b1, OT_T0));
	mri_order_free(o);
}
END_TEST

START_TEST(test_out_of_order)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a1, a2, a3;

	ot__item(&a1, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&a3, 1, 3);
	ck_assert_ptr_null(ot__arrive(o, &a3, 1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a2, 1, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 2);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	OT_EXPECT(mri_order_done(o, &a1, OT_T0), {2, true});
	OT_EXPECT(mri_order_done(o, &a2, OT_T0), {3, true});
	ck_assert_ptr_null(mri_order_done(o, &a3, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	mri_order_free(o);
}
END_TEST

START_TEST(test_resend_after_hand_off)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a1, a1r, a2, a3;

	ot__item(&a1, 1, 1);
	ot__item(&a1r, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&a3, 1, 3);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &a1, OT_T0));
	OT_EXPECT(ot__arrive(o, &a2, 1, OT_T0), {2, true});
	ck_assert_ptr_null(ot__arrive(o, &a3, 1, OT_T0));
	// 1 again, while 2 holds the turn: at once, without it.
	OT_EXPECT(ot__arrive(o, &a1r, 1, OT_T0), {1, false});
	// Its hand-off done returns nothing and moves nothing: 3 still waits.
	ck_assert_ptr_null(mri_order_done(o, &a1r, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 1);
	OT_EXPECT(mri_order_done(o, &a2, OT_T0), {3, true});
	ck_assert_ptr_null(mri_order_done(o, &a3, OT_T0));
	// And once more with no turn taken: next stays 4.
	ot__item(&a1r, 1, 1);
	OT_EXPECT(ot__arrive(o, &a1r, 3, OT_T0), {1, false});
	ck_assert_ptr_null(mri_order_done(o, &a1r, OT_T0));
	ot__item(&a3, 1, 5);
	ck_assert_ptr_null(ot__arrive(o, &a3, 3, OT_T0));
	ot__item(&a2, 1, 4);
	OT_EXPECT(ot__arrive(o, &a2, 3, OT_T0), {4, true});
	OT_EXPECT(mri_order_done(o, &a2, OT_T0), {5, true});
	ck_assert_ptr_null(mri_order_done(o, &a3, OT_T0));
	mri_order_free(o);
}
END_TEST

START_TEST(test_duplicate_of_turn)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a1, a1d, a2, a2d, *l, *t;

	ot__item(&a1, 1, 1);
	ot__item(&a1d, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&a2d, 1, 2);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	// A copy of the seq holding the turn waits for the turn to move on.
	ck_assert_ptr_null(ot__arrive(o, &a1d, 1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a2, 1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a2d, 1, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 3);
	// Then it goes as a resend, before the next turn; one 2 takes it.
	l = mri_order_done(o, &a1, OT_T0);
	OT_EXPECT(l, {1, false}, {2, true});
	ck_assert_ptr_eq(l, &a1d);
	t = l->next;
	ck_assert(t == &a2 || t == &a2d);
	ck_assert_ptr_null(mri_order_done(o, &a1d, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 1);
	l = mri_order_done(o, t, OT_T0);
	OT_EXPECT(l, {2, false});
	ck_assert(l != t);
	ck_assert_ptr_null(mri_order_done(o, l, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	mri_order_free(o);
}
END_TEST

START_TEST(test_base_moves_next)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a1, a2, a3, a4, a5;

	ot__item(&a1, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&a3, 1, 3);
	ot__item(&a4, 1, 4);
	ot__item(&a5, 1, 5);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &a1, OT_T0));
	// 3 waits for 2 ...
	ck_assert_ptr_null(ot__arrive(o, &a3, 1, OT_T0));
	// ... until the publisher says, base 3, that it awaits 2 no more.
	OT_EXPECT(ot__arrive(o, &a4, 3, OT_T0), {3, true});
	OT_EXPECT(mri_order_done(o, &a3, OT_T0), {4, true});
	ck_assert_ptr_null(mri_order_done(o, &a4, OT_T0));
	// A base behind next (an old copy) moves nothing back: 2 is a resend.
	OT_EXPECT(ot__arrive(o, &a2, 1, OT_T0), {2, false});
	ck_assert_ptr_null(mri_order_done(o, &a2, OT_T0));
	OT_EXPECT(ot__arrive(o, &a5, 1, OT_T0), {5, true});
	ck_assert_ptr_null(mri_order_done(o, &a5, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	mri_order_free(o);

	// A base beyond a parked request: it was replied to, so a resend.
	o = ot__new(8, 60000);
	ot__item(&a1, 1, 1);
	ot__item(&a3, 1, 3);
	ot__item(&a4, 1, 4);
	ot__item(&a5, 1, 5);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &a1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a3, 1, OT_T0));
	OT_EXPECT(ot__arrive(o, &a5, 4, OT_T0), {3, false});
	ck_assert_ptr_null(mri_order_done(o, &a3, OT_T0));
	ck_assert_uint_eq(ot__stats(o).parked, 1);
	OT_EXPECT(ot__arrive(o, &a4, 4, OT_T0), {4, true});
	OT_EXPECT(mri_order_done(o, &a4, OT_T0), {5, true});
	ck_assert_ptr_null(mri_order_done(o, &a5, OT_T0));
	mri_order_free(o);
}
END_TEST

/*
 * The rule "a base beyond next moves next up to it", while a request holds
 * the turn. An old copy holds it: of a request the publisher gave up on
 * (its copy refused while one from a lost connection was still on its
 * way), or one that starts again a stream forgotten while idle. Here 5
 * takes the turn, the publisher being done with 5 and 6, and its current
 * request, 7 with base 7, arrives while 5 holds it. (order.c as written
 * drops a base that arrives while the turn is taken: 7 then waits for 6
 * until mri_order_expire refuses it.)
 */
START_TEST(test_base_while_turn_held)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a5, a7;

	ot__item(&a5, 1, 5);
	ot__item(&a7, 1, 7);
	OT_EXPECT(ot__arrive(o, &a5, 5, OT_T0), {5, true});
	ck_assert_ptr_null(ot__arrive(o, &a7, 7, OT_T0));
	// The publisher awaits 6 no more: 7 must not wait for it.
	OT_EXPECT(mri_order_done(o, &a5, OT_T0), {7, true});
	ck_assert_ptr_null(mri_order_done(o, &a7, OT_T0));
	mri_order_free(o);
}
END_TEST

/* The items of \p l, which must be \p n; their order is not checked. */
static void
ot__take_set(struct mri_order_item *l, struct mri_order_item **want,
	     size_t n)
{
	size_t k = 0;

	for (; l != NULL; l = l->next, k++) {
		size_t i;

		ck_assert_msg(k < n, "more than %zu back", n);
		ck_assert(!l->turn);
		for (i = 0; i < n && want[i] != l; i++)
			;
		ck_assert_msg(i < n, "seq %u back, not expected", l->seq);
		want[i] = NULL;
	}
	ck_assert_msg(k == n, "%zu back, want %zu", k, n);
}

START_TEST(test_hold)
{
	// A held request keeps its turn, and what is parked behind it is not
	// taken back however long it waits; once it is done, waits count.
	struct mri_order_table *o = ot__new(8, 600000);
	struct mri_order_item   a1, a2, a4, *l;

	ot__item(&a1, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&a4, 1, 4);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	mri_order_hold(o, &a1);
	ck_assert_ptr_null(ot__arrive(o, &a2, 1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a4, 1, OT_T0));
	ck_assert_ptr_null(mri_order_expire(o, OT_T0 + 60000, 1000));
	ck_assert_uint_eq(ot__stats(o).parked, 2);
	OT_EXPECT(mri_order_done(o, &a1, OT_T0 + 60000), {2, true});
	// Not held any more: 4 (waiting for 3) is taken back.
	OT_EXPECT(mri_order_expire(o, OT_T0 + 60000, 1000), {4, false});
	ck_assert_ptr_null(mri_order_done(o, &a2, OT_T0 + 60000));
	// Without the turn, hold does nothing; wait 0 takes back all.
	mri_order_hold(o, &a4);
	l = mri_order_expire(o, OT_T0 + 60000, 0);
	ck_assert_ptr_null(l);
	mri_order_free(o);
}
END_TEST

START_TEST(test_expire)
{
	struct mri_order_table *o = ot__new(8, 600000);
	struct mri_order_item   a1, a2, a3, a4, b9, *l;
	struct mri_order_item  *want[2] = {&a4, &b9};

	ot__item(&a1, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&a3, 1, 3);
	ot__item(&a4, 1, 4);
	ot__item(&b9, 2, 9);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(ot__arrive(o, &a3, 1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a4, 1, OT_T0 + 500));
	ck_assert_ptr_null(ot__arrive(o, &b9, 8, OT_T0 + 999));
	ck_assert_uint_eq(ot__stats(o).parked, 3);
	// Parked at or before now - wait: none at T0 + 999, 3 at T0 + 1000.
	ck_assert_ptr_null(mri_order_expire(o, OT_T0 + 999, 1000));
	OT_EXPECT(mri_order_expire(o, OT_T0 + 1000, 1000), {3, false});
	ck_assert_uint_eq(ot__stats(o).expired, 1);
	ck_assert_uint_eq(ot__stats(o).parked, 2);
	// Wait 0: every parked one, of every stream; never the turn's.
	l = mri_order_expire(o, OT_T0 + 1000, 0);
	ot__take_set(l, want, 2);
	ck_assert_uint_eq(ot__stats(o).expired, 3);
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	ck_assert_ptr_null(mri_order_expire(o, OT_T0 + 5000, 0));
	// Nothing moved: the publisher's 3 again still waits for 2.
	ck_assert_ptr_null(mri_order_done(o, &a1, OT_T0 + 1000));
	ck_assert_ptr_null(ot__arrive(o, &a3, 1, OT_T0 + 1000));
	OT_EXPECT(ot__arrive(o, &a2, 1, OT_T0 + 1000), {2, true});
	OT_EXPECT(mri_order_done(o, &a2, OT_T0 + 1000), {3, true});
	ck_assert_ptr_null(mri_order_done(o, &a3, OT_T0 + 1000));
	ck_assert_uint_eq(ot__stats(o).expired, 3);
	mri_order_free(o);
}
END_TEST

START_TEST(test_idle_forgotten)
{
	struct mri_order_table *o = ot__new(8, 5000);
	struct mri_order_item   a1, b1, b2, c1, c2, c3;
	uint64_t                t;

	ot__item(&a1, 1, 1);
	ot__item(&b1, 2, 1);
	ot__item(&b2, 2, 2);
	ot__item(&c1, 3, 1);
	ot__item(&c2, 3, 2);
	ot__item(&c3, 3, 3);
	// 1: idle from T0. 2: holds the turn. 3: one parked (waits for 2).
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &a1, OT_T0));
	OT_EXPECT(ot__arrive(o, &b1, 1, OT_T0), {1, true});
	OT_EXPECT(ot__arrive(o, &c1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &c1, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &c3, 1, OT_T0));
	for (t = OT_T0; t < OT_T0 + 5000; t += 100) {
		ck_assert_ptr_null(mri_order_expire(o, t, OT_NEVER));
		ck_assert_uint_eq(ot__stats(o).streams, 3);
	}
	for (; t <= OT_T0 + 20000; t += 100)
		ck_assert_ptr_null(mri_order_expire(o, t, OT_NEVER));
	ck_assert_uint_eq(ot__stats(o).streams, 2);
	// 2 kept its turn: its 2 (base 1) waits for it, then goes.
	ck_assert_ptr_null(ot__arrive(o, &b2, 1, t));
	OT_EXPECT(mri_order_done(o, &b1, t), {2, true});
	ck_assert_ptr_null(mri_order_done(o, &b2, t));
	// 3 kept its parked 3 and its next, 2.
	OT_EXPECT(ot__arrive(o, &c2, 1, t), {2, true});
	OT_EXPECT(mri_order_done(o, &c2, t), {3, true});
	ck_assert_ptr_null(mri_order_done(o, &c3, t));
	// 1 was forgotten: a copy of its 1 starts it again from its base.
	ot__item(&a1, 1, 1);
	OT_EXPECT(ot__arrive(o, &a1, 1, t), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &a1, t));
	ck_assert_uint_eq(ot__stats(o).streams, 3);
	mri_order_free(o);
}
END_TEST

START_TEST(test_full)
{
	struct mri_order_table *o = ot__new(2, 5000);
	struct mri_order_item   a1, a2, b1, c1, d1;
	bool                    full = false;

	ot__item(&a1, 1, 1);
	ot__item(&a2, 1, 2);
	ot__item(&b1, 2, 1);
	ot__item(&c1, 3, 1);
	ot__item(&d1, 4, 1);
	OT_EXPECT(ot__arrive(o, &a1, 1, OT_T0), {1, true});
	OT_EXPECT(ot__arrive(o, &b1, 1, OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &b1, OT_T0));
	// Two streams, neither idle for the limit: 3 goes alone, unordered.
	c1.next = &d1;
	ck_assert_ptr_eq(mri_order_arrive(o, &c1, 1, OT_T0 + 100, &full),
			 &c1);
	ck_assert(full && !c1.turn && c1.next == NULL);
	ck_assert_ptr_null(mri_order_done(o, &c1, OT_T0 + 100));
	ck_assert_uint_eq(ot__stats(o).streams, 2);
	ck_assert_uint_eq(ot__stats(o).parked, 0);
	// A known stream is not full.
	ck_assert_ptr_null(ot__arrive(o, &a2, 1, OT_T0 + 100));
	// Once 2 was idle for the limit, 3 takes its room.
	OT_EXPECT(ot__arrive(o, &c1, 1, OT_T0 + 5000), {1, true});
	ck_assert_uint_eq(ot__stats(o).streams, 2);
	// 1 and 3 hold turns: never made room of, however long.
	ck_assert_ptr_eq(mri_order_arrive(o, &d1, 1, OT_T0 + 99999, &full),
			 &d1);
	ck_assert(full && !d1.turn);
	OT_EXPECT(mri_order_done(o, &a1, OT_T0 + 99999), {2, true});
	ck_assert_ptr_null(mri_order_done(o, &a2, OT_T0 + 99999));
	ck_assert_ptr_null(mri_order_done(o, &c1, OT_T0 + 99999));
	mri_order_free(o);
}
END_TEST

START_TEST(test_wrap)
{
	struct mri_order_table *o = ot__new(8, 60000);
	struct mri_order_item   a[4], r, s;
	const uint32_t          seqs[4] = {0xfffffffe, 0xffffffff, 0, 1};

	for (int i = 0; i < 4; i++)
		ot__item(&a[i], 7, seqs[i]);
	ck_assert_ptr_null(ot__arrive(o, &a[2], 0xfffffffe, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a[1], 0xfffffffe, OT_T0));
	ck_assert_ptr_null(ot__arrive(o, &a[3], 0xfffffffe, OT_T0));
	OT_EXPECT(ot__arrive(o, &a[0], 0xfffffffe, OT_T0), {0xfffffffe, true});
	OT_EXPECT(mri_order_done(o, &a[0], OT_T0), {0xffffffff, true});
	OT_EXPECT(mri_order_done(o, &a[1], OT_T0), {0, true});
	OT_EXPECT(mri_order_done(o, &a[2], OT_T0), {1, true});
	ck_assert_ptr_null(mri_order_done(o, &a[3], OT_T0));
	// Before next across the wrap: a resend. A stale base moves nothing.
	ot__item(&r, 7, 0xffffffff);
	OT_EXPECT(ot__arrive(o, &r, 0xfffffffe, OT_T0), {0xffffffff, false});
	ck_assert_ptr_null(mri_order_done(o, &r, OT_T0));
	ot__item(&s, 7, 3);
	ck_assert_ptr_null(ot__arrive(o, &s, 0xffffffff, OT_T0));
	// A base across the wrap moves next.
	ot__item(&r, 7, 4);
	OT_EXPECT(ot__arrive(o, &r, 3, OT_T0), {3, true});
	OT_EXPECT(mri_order_done(o, &s, OT_T0), {4, true});
	ck_assert_ptr_null(mri_order_done(o, &r, OT_T0));
	mri_order_free(o);
}
END_TEST

static Suite *
ot__suite(void)
{
	Suite *s     = suite_create("order");
	TCase *rules = tcase_create("rules");

	tcase_add_test(rules, test_new_free);
	tcase_add_test(rules, test_start_at_base);
	tcase_add_test(rules, test_one_at_a_time);
	tcase_add_test(rules, test_out_of_order);
	tcase_add_test(rules, test_resend_after_hand_off);
	tcase_add_test(rules, test_duplicate_of_turn);
	tcase_add_test(rules, test_base_moves_next);
	tcase_add_test(rules, test_base_while_turn_held);
	tcase_add_test(rules, test_expire);
	tcase_add_test(rules, test_hold);
	tcase_add_test(rules, test_idle_forgotten);
	tcase_add_test(rules, test_full);
	tcase_add_test(rules, test_wrap);
	suite_add_tcase(s, rules);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(ot__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
