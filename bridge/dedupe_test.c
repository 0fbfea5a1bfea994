/*
 * Tests for bridge/dedupe.c, the publish-side dedupe window. Time is what
 * each call is given: nothing here reads a clock.
 *
 * The model test runs random operations against a simple reference; its
 * seed is printed, and MR_DEDUPE_SEED repeats a run.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bridge/dedupe.h"
#include "mailroom/error.h"

#define DEDUPE_TEST__WINDOW 1000

static uint64_t dedupe_test__seed;

static struct mri_dedupe *
dedupe_test__new(uint64_t window_ms, size_t max_entries)
{
	struct mri_dedupe *d = NULL;

	ck_assert_int_eq(mri_dedupe_new(&d, window_ms, max_entries), MR_OK);
	ck_assert_ptr_nonnull(d);
	return d;
}

static int
dedupe_test__check(struct mri_dedupe *d, const char *topic, const char *id,
		   uint64_t now, struct mri_dedupe_entry **e)
{
	*e = NULL;
	return mri_dedupe_check(d, topic, strlen(topic), id, strlen(id), now,
				e);
}

static struct mri_dedupe_stats
dedupe_test__stats(const struct mri_dedupe *d)
{
	struct mri_dedupe_stats s;

	memset(&s, 0xa5, sizeof(s));
	mri_dedupe_stats(d, &s);
	return s;
}

/* Completes a new entry for (topic, id) at \p now. */
static void
dedupe_test__done(struct mri_dedupe *d, const char *topic, const char *id,
		  uint64_t now, int32_t partition, int64_t offset)
{
	struct mri_dedupe_entry *e;

	ck_assert_int_eq(dedupe_test__check(d, topic, id, now, &e),
			 MRI_DEDUPE_NEW);
	ck_assert_ptr_null(mri_dedupe_complete(d, e, partition, offset, now));
}

/* ---- the life of an entry -----------------------------------------------
 */

START_TEST(test_new_pending_done)
{
	struct mri_dedupe      *d = dedupe_test__new(DEDUPE_TEST__WINDOW, 100);
	struct mri_dedupe_entry *e1, *e2, *e3;
	struct mri_dedupe_stats  s;

	ck_assert_int_eq(dedupe_test__check(d, "orders", "m-1", 10, &e1),
			 MRI_DEDUPE_NEW);
	ck_assert_ptr_nonnull(e1);
	ck_assert_uint_eq(e1->state, MRI_DEDUPE_PENDING);
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, 1);
	ck_assert_uint_eq(s.pending, 1);
	ck_assert_uint_eq(s.hits, 0);
	ck_assert_uint_eq(s.evicted_early, 0);

	ck_assert_int_eq(dedupe_test__check(d, "orders", "m-1", 11, &e2),
			 MRI_DEDUPE_PENDING);
	ck_assert_ptr_eq(e2, e1);

	ck_assert_ptr_null(mri_dedupe_complete(d, e1, 3, 77, 12));
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, 1);
	ck_assert_uint_eq(s.pending, 0);

	// Every later publish gets the first one's ack.
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(dedupe_test__check(d, "orders", "m-1", 13 + i,
						    &e3),
				 MRI_DEDUPE_DONE);
		ck_assert_ptr_eq(e3, e1);
		ck_assert_int_eq(e3->partition, 3);
		ck_assert(e3->offset == 77);
	}
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.hits, 4);
	ck_assert_uint_eq(s.entries, 1);
	mri_dedupe_free(d);
	mri_dedupe_free(NULL);
}
END_TEST

struct dedupe_test__waiter {
	struct mri_dedupe_waiter w; /* first: a list node is a waiter */
	int                      seen;
};

/* Each of \p n waiters is on the list \p l exactly once, and no other. */
static void
dedupe_test__waiters(struct mri_dedupe_waiter *l,
		     struct dedupe_test__waiter *ws, size_t n)
{
	size_t got = 0;

	for (size_t i = 0; i < n; i++)
		ws[i].seen = 0;
	for (; l != NULL; l = l->next) {
		struct dedupe_test__waiter *w = (void *)l;

		ck_assert(w >= ws && w < ws + n);
		ck_assert_int_eq(w->seen, 0);
		w->seen = 1;
		ck_assert(++got <= n);
	}
	ck_assert_uint_eq(got, n);
}

START_TEST(test_waiters_on_complete)
{
	struct mri_dedupe         *d;
	struct mri_dedupe_entry   *e, *e2;
	struct dedupe_test__waiter ws[3];

	d = dedupe_test__new(DEDUPE_TEST__WINDOW, 10);
	ck_assert_int_eq(dedupe_test__check(d, "t", "a", 0, &e),
			 MRI_DEDUPE_NEW);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(dedupe_test__check(d, "t", "a", 1, &e2),
				 MRI_DEDUPE_PENDING);
		mri_dedupe_wait(e2, &ws[i].w);
	}
	dedupe_test__waiters(mri_dedupe_complete(d, e, 1, 2, 3), ws, 3);
	ck_assert_int_eq(dedupe_test__check(d, "t", "a", 4, &e2),
			 MRI_DEDUPE_DONE);
	// The waiters went with the completion: a new one starts a new list.
	ck_assert_ptr_null(e2->waiters);
	mri_dedupe_free(d);
}
END_TEST

START_TEST(test_waiters_on_fail)
{
	struct mri_dedupe         *d;
	struct mri_dedupe_entry   *e, *e2;
	struct dedupe_test__waiter ws[2];
	struct mri_dedupe_stats    s;

	d = dedupe_test__new(DEDUPE_TEST__WINDOW, 10);
	ck_assert_int_eq(dedupe_test__check(d, "t", "a", 0, &e),
			 MRI_DEDUPE_NEW);
	ck_assert_ptr_null(mri_dedupe_fail(d, e));
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, 0);
	ck_assert_uint_eq(s.pending, 0);

	// A failed publish is forgotten: the retry is new.
	ck_assert_int_eq(dedupe_test__check(d, "t", "a", 1, &e),
			 MRI_DEDUPE_NEW);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(dedupe_test__check(d, "t", "a", 1, &e2),
				 MRI_DEDUPE_PENDING);
		mri_dedupe_wait(e2, &ws[i].w);
	}
	dedupe_test__waiters(mri_dedupe_fail(d, e), ws, 2);
	ck_assert_int_eq(dedupe_test__check(d, "t", "a", 2, &e),
			 MRI_DEDUPE_NEW);
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, 1);
	ck_assert_uint_eq(s.pending, 1);
	mri_dedupe_free(d);
}
END_TEST

START_TEST(test_topic_and_id_distinct)
{
	struct mri_dedupe      *d = dedupe_test__new(DEDUPE_TEST__WINDOW, 100);
	struct mri_dedupe_entry *e;
	static const char       *keys[][2] = {
		  {"orders", "1"}, {"payments", "1"}, {"orders", "2"},
		  {"ab", "c"},     {"a", "bc"},       {"abc", ""},
		  {"a", "b\xff"},  {"Orders", "1"},
        };
	size_t n = sizeof(keys) / sizeof(keys[0]);

	for (size_t i = 0; i < n; i++)
		ck_assert_msg(dedupe_test__check(d, keys[i][0], keys[i][1], 0,
						 &e) == MRI_DEDUPE_NEW,
			      "(%s, %s) seen before", keys[i][0], keys[i][1]);
	for (size_t i = 0; i < n; i++) {
		struct mri_dedupe_key k = mri_dedupe_key(
		    keys[i][0], strlen(keys[i][0]), keys[i][1],
		    strlen(keys[i][1]));

		ck_assert_int_eq(dedupe_test__check(d, keys[i][0], keys[i][1],
						    0, &e),
				 MRI_DEDUPE_PENDING);
		ck_assert(e->hash == k.hash && e->check == k.check);
		ck_assert(k.hash ==
			  mri_dedupe_hash(keys[i][0], strlen(keys[i][0]),
					  keys[i][1], strlen(keys[i][1])));
		// The two hashes differ in their bits (not one the other's
		// copy): each pair of keys differs in both.
		for (size_t j = 0; j < i; j++) {
			struct mri_dedupe_key o = mri_dedupe_key(
			    keys[j][0], strlen(keys[j][0]), keys[j][1],
			    strlen(keys[j][1]));

			ck_assert(o.hash != k.hash && o.check != k.check);
		}
		ck_assert(k.hash != k.check);
	}
	ck_assert_uint_eq(dedupe_test__stats(d).entries, n);
	mri_dedupe_free(d);
}
END_TEST

/* ---- the window ---------------------------------------------------------
 */

START_TEST(test_expiry_on_check)
{
	struct mri_dedupe      *d = dedupe_test__new(DEDUPE_TEST__WINDOW, 100);
	struct mri_dedupe_entry *e;
	uint64_t                 t0 = 5000;

	dedupe_test__done(d, "t", "a", t0, 0, 1);
	// Inside the window, to its last millisecond.
	ck_assert_int_eq(dedupe_test__check(d, "t", "a", t0, &e),
			 MRI_DEDUPE_DONE);
	ck_assert_int_eq(dedupe_test__check(d, "t", "a",
					    t0 + DEDUPE_TEST__WINDOW, &e),
			 MRI_DEDUPE_DONE);
	// Past it: new again, and pending.
	ck_assert_int_eq(dedupe_test__check(d, "t", "a",
					    t0 + DEDUPE_TEST__WINDOW + 1, &e),
			 MRI_DEDUPE_NEW);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 1);
	ck_assert_uint_eq(dedupe_test__stats(d).pending, 1);
	ck_assert_ptr_null(
	    mri_dedupe_complete(d, e, 1, 2, t0 + DEDUPE_TEST__WINDOW + 1));
	ck_assert_int_eq(dedupe_test__check(d, "t", "a",
					    t0 + 2 * DEDUPE_TEST__WINDOW + 1,
					    &e),
			 MRI_DEDUPE_DONE);
	ck_assert(e->offset == 2);
	ck_assert_uint_eq(dedupe_test__stats(d).evicted_early, 0);
	mri_dedupe_free(d);
}
END_TEST

START_TEST(test_expire)
{
	struct mri_dedupe      *d = dedupe_test__new(DEDUPE_TEST__WINDOW, 100);
	struct mri_dedupe_entry *e, *p;
	char                     id[16];

	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "%d", i);
		dedupe_test__done(d, "t", id, 100 * (uint64_t)i, 0, i);
	}
	ck_assert_int_eq(dedupe_test__check(d, "t", "pending", 0, &p),
			 MRI_DEDUPE_NEW);
	mri_dedupe_expire(d, DEDUPE_TEST__WINDOW);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 11);
	// At 1300, those done at 0, 100 and 200 are past the window; the one
	// done at 300 is on its edge and stays, until 1301.
	mri_dedupe_expire(d, DEDUPE_TEST__WINDOW + 300);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 8);
	mri_dedupe_expire(d, DEDUPE_TEST__WINDOW + 301);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 7);
	ck_assert_int_eq(dedupe_test__check(d, "t", "3", 1301, &e),
			 MRI_DEDUPE_NEW);
	ck_assert_int_eq(dedupe_test__check(d, "t", "4", 1301, &e),
			 MRI_DEDUPE_DONE);
	// Long after: only the pending ones stay.
	mri_dedupe_expire(d, 1000000);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 2);
	ck_assert_uint_eq(dedupe_test__stats(d).pending, 2);
	ck_assert_uint_eq(dedupe_test__stats(d).evicted_early, 0);
	ck_assert_int_eq(dedupe_test__check(d, "t", "pending", 1000000, &e),
			 MRI_DEDUPE_PENDING);
	ck_assert_ptr_eq(e, p);
	mri_dedupe_free(d);
}
END_TEST

START_TEST(test_max_entries)
{
	struct mri_dedupe      *d = dedupe_test__new(DEDUPE_TEST__WINDOW, 3);
	struct mri_dedupe_entry *e, *p[5];
	struct mri_dedupe_stats  s;
	char                     id[16];

	// Pending entries do not count towards the bound, nor go.
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		ck_assert_int_eq(dedupe_test__check(d, "t", id, 0, &p[i]),
				 MRI_DEDUPE_NEW);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "%d", i);
		dedupe_test__done(d, "t", id, 10 + (uint64_t)i, 0, i);
	}
	mri_dedupe_expire(d, 20);
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, 8);
	ck_assert_uint_eq(s.pending, 5);
	ck_assert_uint_eq(s.evicted_early, 2);
	// The two oldest confirmed ids went, inside the window.
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "%d", i);
		ck_assert_int_eq(dedupe_test__check(d, "t", id, 21, &e),
				 i < 2 ? MRI_DEDUPE_NEW : MRI_DEDUPE_DONE);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		ck_assert_int_eq(dedupe_test__check(d, "t", id, 21, &e),
				 MRI_DEDUPE_PENDING);
		ck_assert_ptr_eq(e, p[i]);
	}
	// A pending entry completed now is the newest: "2" goes first.
	ck_assert_ptr_null(mri_dedupe_complete(d, p[0], 0, 0, 22));
	mri_dedupe_expire(d, 22);
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.evicted_early, 3);
	ck_assert_int_eq(dedupe_test__check(d, "t", "2", 23, &e),
			 MRI_DEDUPE_NEW);
	ck_assert_int_eq(dedupe_test__check(d, "t", "p0", 23, &e),
			 MRI_DEDUPE_DONE);
	// Expired entries are not counted as evicted early.
	mri_dedupe_expire(d, 10000);
	ck_assert_uint_eq(dedupe_test__stats(d).evicted_early, 3);
	mri_dedupe_free(d);
}
END_TEST

START_TEST(test_many_entries)
{
	size_t                    n = 200000;
	struct mri_dedupe        *d = dedupe_test__new(DEDUPE_TEST__WINDOW, n);
	struct mri_dedupe_entry **es = malloc(n * sizeof(*es));
	struct mri_dedupe_entry  *e;
	struct mri_dedupe_stats   s;
	char                      id[32];

	ck_assert_ptr_nonnull(es);
	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%zu", i);
		if (dedupe_test__check(d, "big", id, 1, &es[i]) !=
		    MRI_DEDUPE_NEW)
			ck_abort_msg("%s seen before", id);
		if (i % 2 == 0)
			mri_dedupe_complete(d, es[i], (int32_t)(i % 7),
					    (int64_t)i, 1);
	}
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, n);
	ck_assert_uint_eq(s.pending, n / 2);
	// Every entry is still found after the table grew under it.
	for (size_t i = 0; i < n; i++) {
		int st;

		snprintf(id, sizeof(id), "id-%zu", i);
		st = dedupe_test__check(d, "big", id, 2, &e);
		if (i % 2 == 0 ? st != MRI_DEDUPE_DONE ||
				     e->offset != (int64_t)i ||
				     e->partition != (int32_t)(i % 7)
			       : st != MRI_DEDUPE_PENDING || e != es[i])
			ck_abort_msg("%s: state %d, or not its entry", id, st);
	}
	mri_dedupe_expire(d, 2);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, n);
	for (size_t i = 1; i < n; i += 2)
		if (mri_dedupe_fail(d, es[i]) != NULL)
			ck_abort_msg("waiters on id-%zu", i);
	mri_dedupe_expire(d, 1 + DEDUPE_TEST__WINDOW + 1);
	s = dedupe_test__stats(d);
	ck_assert_uint_eq(s.entries, 0);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.evicted_early, 0);
	free(es);
	mri_dedupe_free(d);
}
END_TEST

/* The ring of confirmed entries wraps, then grows with its head far from
 * its start: each keeps its place, and they still go oldest first. */
START_TEST(test_ring_wraps_and_grows)
{
	struct mri_dedupe       *d;
	struct mri_dedupe_entry *e;
	char                     id[32];
	int                      i;

	d = dedupe_test__new(DEDUPE_TEST__WINDOW, 1u << 20);

	// 1 500 confirmed at 0 .. 1 499 ms; those of 0 .. 999 expire at
	// 2 000: the ring's head is at 1 000.
	for (i = 0; i < 1500; i++) {
		snprintf(id, sizeof(id), "%d", i);
		dedupe_test__done(d, "t", id, (uint64_t)i, i % 3, i);
	}
	mri_dedupe_expire(d, 999 + DEDUPE_TEST__WINDOW + 1);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 500);
	// 3 000 more at 1 500 ms: the ring (1 024 at first) wraps and grows.
	for (; i < 4500; i++) {
		snprintf(id, sizeof(id), "%d", i);
		dedupe_test__done(d, "t", id, 1500, i % 3, i);
	}
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 3500);
	for (i = 0; i < 4500; i++) {
		int st;

		snprintf(id, sizeof(id), "%d", i);
		st = dedupe_test__check(d, "t", id, 1500, &e);
		if (i < 1000 ? st != MRI_DEDUPE_NEW
			     : st != MRI_DEDUPE_DONE || e->offset != i ||
				   e->partition != i % 3)
			ck_abort_msg("%s: state %d, or not its ack", id, st);
		if (i < 1000)
			ck_assert_ptr_null(mri_dedupe_fail(d, e));
	}
	// Oldest first: those of 1 000 .. 1 499 go at 2 500, the rest after.
	mri_dedupe_expire(d, 1499 + DEDUPE_TEST__WINDOW + 1);
	ck_assert_uint_eq(dedupe_test__stats(d).entries, 3000);
	ck_assert_int_eq(dedupe_test__check(d, "t", "1499", 2500, &e),
			 MRI_DEDUPE_NEW);
	ck_assert_int_eq(dedupe_test__check(d, "t", "1500", 2500, &e),
			 MRI_DEDUPE_DONE);
	mri_dedupe_free(d);
}
END_TEST

/* ---- against a reference model ------------------------------------------
 */

#define DM_TOPICS 3
#define DM_IDS 400
#define DM_KEYS (DM_TOPICS * DM_IDS)
#define DM_MAX 40
#define DM_WAITERS 4096
#define DM_OPS 100000

enum { DM_ABSENT, DM_PENDING, DM_DONE };

struct dm_entry {
	int                      state;
	uint64_t                 done_ms;
	int32_t                  partition;
	int64_t                  offset;
	struct mri_dedupe_entry *e; /* the real entry, while pending */
	int                      fprev, fnext;
	int                      nwaiters;
	int                      pidx; /* in the pending array */
};

struct dm {
	struct dm_entry k[DM_KEYS];
	int             fhead, ftail;
	int             pending[DM_KEYS];
	int             npending;
	size_t          count;
	uint64_t        hits;
	uint64_t        evicted_early;
	uint64_t        rng;
	/* what the run went through, to show it reached every case */
	uint64_t        n_expired;
	uint64_t        n_lazy_expired;
	uint64_t        n_pending_hits;
	uint64_t        n_done_hits;
	uint64_t        n_waiters;
	/* waiters: owner key of each, -1 when free */
	struct dedupe_test__waiter w[DM_WAITERS];
	int                        wkey[DM_WAITERS];
};

static uint64_t
dm__rand(struct dm *m)
{
	// splitmix64
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
dm__key(int k, char *topic, size_t tsz, char *id, size_t isz)
{
	snprintf(topic, tsz, "topic-%d", k / DM_IDS);
	snprintf(id, isz, "%d", k % DM_IDS);
}

static void
dm__fifo_unlink(struct dm *m, int k)
{
	struct dm_entry *x = &m->k[k];

	if (x->fprev >= 0)
		m->k[x->fprev].fnext = x->fnext;
	else
		m->fhead = x->fnext;
	if (x->fnext >= 0)
		m->k[x->fnext].fprev = x->fprev;
	else
		m->ftail = x->fprev;
	x->fprev = x->fnext = -1;
}

static void
dm__forget(struct dm *m, int k)
{
	struct dm_entry *x = &m->k[k];

	if (x->state == DM_DONE)
		dm__fifo_unlink(m, k);
	x->state = DM_ABSENT;
	m->count--;
}

static void
dm__pending_remove(struct dm *m, int k)
{
	int i    = m->k[k].pidx;
	int last = m->pending[--m->npending];

	m->pending[i]    = last;
	m->k[last].pidx  = i;
	m->k[k].pidx     = -1;
}

/* The waiters returned for \p k must be exactly those the model holds. */
static void
dm__check_waiters(struct dm *m, int k, struct mri_dedupe_waiter *l,
		 size_t op)
{
	int got = 0;

	for (; l != NULL; l = l->next) {
		struct dedupe_test__waiter *w = (void *)l;
		ptrdiff_t                   i = w - m->w;

		if (i < 0 || i >= DM_WAITERS || m->wkey[i] != k)
			ck_abort_msg("op %zu (seed %llu): a waiter of another "
				     "entry returned",
				     op,
				     (unsigned long long)dedupe_test__seed);
		m->wkey[i] = -1;
		got++;
	}
	if (got != m->k[k].nwaiters)
		ck_abort_msg("op %zu (seed %llu): %d waiters, want %d", op,
			     (unsigned long long)dedupe_test__seed, got,
			     m->k[k].nwaiters);
	m->k[k].nwaiters = 0;
}

static void
dm__op_check(struct dm *m, struct mri_dedupe *d, uint64_t now, size_t op)
{
	int                      k = (int)(dm__rand(m) % DM_KEYS);
	struct dm_entry         *x = &m->k[k];
	struct mri_dedupe_entry *e = NULL;
	char                     topic[32], id[32];
	int                      want, got;

	dm__key(k, topic, sizeof(topic), id, sizeof(id));
	if (x->state == DM_DONE && now - x->done_ms > DEDUPE_TEST__WINDOW) {
		dm__forget(m, k);
		m->n_lazy_expired++;
	}
	want = x->state == DM_ABSENT    ? MRI_DEDUPE_NEW
	       : x->state == DM_PENDING ? MRI_DEDUPE_PENDING
					: MRI_DEDUPE_DONE;
	got  = dedupe_test__check(d, topic, id, now, &e);
	if (got != want || e == NULL)
		ck_abort_msg("op %zu (seed %llu): (%s, %s) is %d, want %d", op,
			     (unsigned long long)dedupe_test__seed, topic, id,
			     got, want);
	switch (want) {
	case MRI_DEDUPE_NEW:
		x->state    = DM_PENDING;
		x->e        = e;
		x->nwaiters = 0;
		x->pidx     = m->npending;
		m->pending[m->npending++] = k;
		m->count++;
		break;
	case MRI_DEDUPE_PENDING:
		m->hits++;
		m->n_pending_hits++;
		if (e != x->e)
			ck_abort_msg("op %zu (seed %llu): not the pending "
				     "entry",
				     op,
				     (unsigned long long)dedupe_test__seed);
		if (dm__rand(m) % 2 == 0) {
			for (int i = 0; i < DM_WAITERS; i++) {
				if (m->wkey[i] >= 0)
					continue;
				m->wkey[i] = k;
				mri_dedupe_wait(e, &m->w[i].w);
				x->nwaiters++;
				m->n_waiters++;
				break;
			}
		}
		break;
	default:
		m->hits++;
		m->n_done_hits++;
		if (e->partition != x->partition || e->offset != x->offset)
			ck_abort_msg("op %zu (seed %llu): (%s, %s) has the "
				     "wrong ack",
				     op, (unsigned long long)dedupe_test__seed,
				     topic, id);
		break;
	}
}

static void
dm__op_settle(struct dm *m, struct mri_dedupe *d, uint64_t now, bool ok,
	     size_t op)
{
	int              k;
	struct dm_entry *x;

	if (m->npending == 0)
		return;
	k = m->pending[dm__rand(m) % (uint64_t)m->npending];
	x = &m->k[k];
	dm__pending_remove(m, k);
	if (!ok) {
		dm__check_waiters(m, k, mri_dedupe_fail(d, x->e), op);
		x->state = DM_ABSENT;
		m->count--;
		return;
	}
	x->partition = (int32_t)(dm__rand(m) % 64);
	x->offset    = (int64_t)(dm__rand(m) >> 2);
	dm__check_waiters(m, k,
			 mri_dedupe_complete(d, x->e, x->partition, x->offset,
					     now),
			 op);
	x->state   = DM_DONE;
	x->done_ms = now;
	x->e       = NULL;
	x->fprev   = m->ftail;
	x->fnext   = -1;
	if (m->ftail >= 0)
		m->k[m->ftail].fnext = k;
	else
		m->fhead = k;
	m->ftail = k;
}

static void
dm__op_expire(struct dm *m, struct mri_dedupe *d, uint64_t now)
{
	int k;

	mri_dedupe_expire(d, now);
	while ((k = m->fhead) >= 0) {
		bool old  = now - m->k[k].done_ms > DEDUPE_TEST__WINDOW;
		bool full = m->count - (size_t)m->npending > DM_MAX;

		if (!old && !full)
			break;
		if (!old)
			m->evicted_early++;
		else
			m->n_expired++;
		dm__forget(m, k);
	}
}

static void
dm__compare(struct dm *m, struct mri_dedupe *d, size_t op)
{
	struct mri_dedupe_stats s = dedupe_test__stats(d);

	if (s.entries == m->count && s.pending == (size_t)m->npending &&
	    s.hits == m->hits && s.evicted_early == m->evicted_early)
		return;
	ck_abort_msg("op %zu (seed %llu): stats %zu/%zu/%llu/%llu, model "
		      "%zu/%d/%llu/%llu",
		     op, (unsigned long long)dedupe_test__seed, s.entries,
		     s.pending, (unsigned long long)s.hits,
		     (unsigned long long)s.evicted_early, m->count,
		     m->npending, (unsigned long long)m->hits,
		     (unsigned long long)m->evicted_early);
}

START_TEST(test_model)
{
	struct dm         *m = calloc(1, sizeof(*m));
	struct mri_dedupe *d = dedupe_test__new(DEDUPE_TEST__WINDOW, DM_MAX);
	uint64_t           now = 1000;

	ck_assert_ptr_nonnull(m);
	m->rng   = dedupe_test__seed;
	m->fhead = m->ftail = -1;
	for (int k = 0; k < DM_KEYS; k++) {
		m->k[k].fprev = m->k[k].fnext = -1;
		m->k[k].pidx  = -1;
	}
	for (int i = 0; i < DM_WAITERS; i++)
		m->wkey[i] = -1;
	for (size_t op = 0; op < DM_OPS; op++) {
		uint64_t r = dm__rand(m) % 100;

		if (r < 55)
			dm__op_check(m, d, now, op);
		else if (r < 80)
			dm__op_settle(m, d, now, true, op);
		else if (r < 85)
			dm__op_settle(m, d, now, false, op);
		else if (r < 88)
			dm__op_expire(m, d, now);
		else
			now += dm__rand(m) % (DEDUPE_TEST__WINDOW / 10);
		dm__compare(m, d, op);
	}
	printf("dedupe model: %llu pending hits, %llu done hits, "
	       "%llu waiters, %llu expired, %llu expired on check, "
	       "%llu evicted early\n",
	       (unsigned long long)m->n_pending_hits,
	       (unsigned long long)m->n_done_hits,
	       (unsigned long long)m->n_waiters,
	       (unsigned long long)m->n_expired,
	       (unsigned long long)m->n_lazy_expired,
	       (unsigned long long)m->evicted_early);
	// The run reached every case it is meant to compare.
	ck_assert(m->n_pending_hits > 0 && m->n_done_hits > 0 &&
		  m->n_waiters > 0 && m->n_expired > 0 &&
		  m->n_lazy_expired > 0 && m->evicted_early > 0);
	mri_dedupe_free(d);
	free(m);
}
END_TEST

static Suite *
dedupe_test__suite(void)
{
	Suite *s = suite_create("dedupe");
	TCase *tc;

	tc = tcase_create("entry");
	tcase_add_test(tc, test_new_pending_done);
	tcase_add_test(tc, test_waiters_on_complete);
	tcase_add_test(tc, test_waiters_on_fail);
	tcase_add_test(tc, test_topic_and_id_distinct);
	suite_add_tcase(s, tc);

	tc = tcase_create("window");
	tcase_add_test(tc, test_expiry_on_check);
	tcase_add_test(tc, test_expire);
	tcase_add_test(tc, test_max_entries);
	tcase_add_test(tc, test_many_entries);
	tcase_add_test(tc, test_ring_wraps_and_grows);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_add_test(tc, test_model);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char *env = getenv("MR_DEDUPE_SEED");
	SRunner    *r;
	int         failed;

	if (env != NULL && env[0] != '\0')
		dedupe_test__seed = strtoull(env, NULL, 10);
	else if (getrandom(&dedupe_test__seed, sizeof(dedupe_test__seed), 0) !=
		 (ssize_t)sizeof(dedupe_test__seed))
		dedupe_test__seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	printf("dedupe model: seed %llu (MR_DEDUPE_SEED=%llu repeats it)\n",
	       (unsigned long long)dedupe_test__seed,
	       (unsigned long long)dedupe_test__seed);
	fflush(stdout);
	r = srunner_create(dedupe_test__suite());
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
