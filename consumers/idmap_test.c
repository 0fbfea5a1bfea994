/*
 * Tests for consumers/idmap.c, the journal's bounded map. The file is
 * included whole, so that the tests can craft hashes that land on the
 * same slot (or carry the same tag), check the table's invariants after
 * every step and hold the SSE2 line scan to the portable one. Random steps
 * are checked against a plain model (MR_IDMAP_SEED repeats a run).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "consumers/idmap.c"

#define IDMAP_TEST__KEYS 200

/* ck_assert marks a point (a write to a pipe) each time it passes: the
 * loops that check millions of times call into Check only to fail. */
#define IDMAP_TEST__REQUIRE(expr)                                            \
	do {                                                                  \
		if (!(expr))                                                  \
			ck_abort_msg("%s:%d: %s failed", __FILE__, __LINE__,  \
				     #expr);                                  \
	} while (0)

static uint64_t idmap_test__seed;

static uint64_t
idmap_test__next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The inverse of an odd number modulo 2^64 (Newton's iteration). */
static uint64_t
idmap_test__inv(uint64_t a)
{
	uint64_t x = a;

	for (int i = 0; i < 6; i++)
		x *= 2 - a * x;
	return x;
}

/* A hash whose mixed value is \p v (idmap__tag: its tag is the high 32
 * bits of v): the multiply undone, then the fold (its own inverse). */
static uint64_t
idmap_test__unmix(uint64_t v)
{
	v *= idmap_test__inv(0x9e3779b97f4a7c15ULL);
	return v ^ (v >> 32);
}

/* A hash with tag \p tag; \p low tells hashes of one tag apart. */
static uint64_t
idmap_test__with_tag(uint32_t tag, uint32_t low)
{
	uint64_t h = idmap_test__unmix((uint64_t)tag << 32 | low);

	ck_assert_uint_eq(idmap__tag(h), tag);
	return h;
}

/* A hash whose home slot is \p home; \p n tells them apart. */
static uint64_t
idmap_test__at_home(const struct mri_idmap *m, uint32_t home, uint32_t n)
{
	uint32_t tag = ((n + 1) * (m->mask + 1)) | home;
	uint64_t h   = idmap_test__with_tag(tag, n);

	ck_assert_uint_eq(idmap__tag(h) & m->mask, home);
	return h;
}

static struct mri_idmap *
idmap_test__new(size_t cap)
{
	struct mri_idmap *m = NULL;

	ck_assert_int_eq(mri_idmap_new(&m, cap), MR_OK);
	ck_assert_ptr_nonnull(m);
	return m;
}

/* Every slot points at a live entry, once, that carries its tag, with no
 * empty slot between its home and it; every live entry has its slot. */
static void
idmap_test__check(const struct mri_idmap *m)
{
	uint32_t nslots = m->mask + 1, used = 0;
	bool    *seen   = calloc(m->len, sizeof(*seen));

	ck_assert_ptr_nonnull(seen);
	IDMAP_TEST__REQUIRE(m->count <= m->cap);
	IDMAP_TEST__REQUIRE((uint64_t)m->cap * 2 <= nslots);
	for (uint32_t i = 0; i < nslots; i++) {
		uint64_t s = m->slots[i];
		uint32_t idx, home;

		if (s == 0)
			continue;
		used++;
		idx = (uint32_t)s - 1;
		IDMAP_TEST__REQUIRE(idx < m->len);
		IDMAP_TEST__REQUIRE((idx + m->len - m->head) % m->len <
				    m->count);
		IDMAP_TEST__REQUIRE(!seen[idx]);
		seen[idx] = true;
		IDMAP_TEST__REQUIRE(idmap__tag(m->ring[idx].hash) == s >> 32);
		home = (uint32_t)(s >> 32) & m->mask;
		for (uint32_t p = home; p != i; p = (p + 1) & m->mask)
			IDMAP_TEST__REQUIRE(m->slots[p] != 0);
	}
	IDMAP_TEST__REQUIRE(used == m->count);
	free(seen);
}

START_TEST(test_new_errors)
{
	struct mri_idmap *m = NULL;

	ck_assert_int_eq(mri_idmap_new(&m, 0), MR_EINVAL);
	ck_assert_int_eq(mri_idmap_new(&m, MRI_IDMAP_MAX_CAP + 1), MR_EINVAL);
	ck_assert_ptr_null(m);
	mri_idmap_free(NULL);
	m = idmap_test__new(1);
	ck_assert_uint_eq(m->mask + 1, IDMAP__LINE);
	ck_assert_uint_eq((uintptr_t)m->slots % 64, 0);
	mri_idmap_free(m);
	m = idmap_test__new(500000);
	ck_assert_uint_eq(m->mask + 1, 1u << 20);
	ck_assert_uint_eq((uintptr_t)m->slots % 64, 0);
	mri_idmap_free(m);
}
END_TEST

START_TEST(test_put_find)
{
	struct mri_idmap *m = idmap_test__new(16);
	uint32_t          v = 77;

	ck_assert(!mri_idmap_find(m, 1, &v));
	ck_assert_uint_eq(v, 77);
	ck_assert(!mri_idmap_find(m, 0, NULL));
	mri_idmap_put(m, 1, 5, 100);
	mri_idmap_put(m, 0, 0, 100);
	mri_idmap_put(m, UINT64_MAX, UINT32_MAX, 100);
	ck_assert(mri_idmap_find(m, 1, &v));
	ck_assert_uint_eq(v, 5);
	ck_assert(mri_idmap_find(m, 0, &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(mri_idmap_find(m, UINT64_MAX, &v));
	ck_assert_uint_eq(v, UINT32_MAX);
	ck_assert(mri_idmap_find(m, 1, NULL));
	ck_assert(!mri_idmap_find(m, 2, NULL));
	ck_assert_uint_eq(mri_idmap_count(m), 3);
	idmap_test__check(m);
	mri_idmap_free(m);
}
END_TEST

START_TEST(test_max_of_values)
{
	struct mri_idmap *m = idmap_test__new(16);
	uint32_t          v = 0;

	mri_idmap_put(m, 42, 3, 10);
	mri_idmap_put(m, 42, 1, 20);
	ck_assert(mri_idmap_find(m, 42, &v));
	ck_assert_uint_eq(v, 3);
	mri_idmap_put(m, 42, 7, 30);
	ck_assert(mri_idmap_find(m, 42, &v));
	ck_assert_uint_eq(v, 7);
	ck_assert_uint_eq(mri_idmap_count(m), 1);
	// Its time is the first put's: it expires with it.
	mri_idmap_put(m, 43, 1, 25);
	ck_assert_uint_eq(mri_idmap_expire(m, 11), 1);
	ck_assert(!mri_idmap_find(m, 42, NULL));
	ck_assert(mri_idmap_find(m, 43, NULL));
	mri_idmap_free(m);
}
END_TEST

/* Put cap + k: the first k are gone, the others there, with their values,
 * over several laps of the ring. */
static void
idmap_test__evict_order(size_t cap, size_t k)
{
	struct mri_idmap *m    = idmap_test__new(cap);
	uint64_t          base = 0x1234567ULL;

	for (size_t i = 0; i < cap + k; i++) {
		mri_idmap_put(m, base + i * 0x100000001ULL, (uint32_t)i,
			      (int64_t)i);
		ck_assert_uint_eq(mri_idmap_count(m), i < cap ? i + 1 : cap);
	}
	idmap_test__check(m);
	for (size_t i = 0; i < cap + k; i++) {
		uint64_t h     = base + i * 0x100000001ULL;
		uint32_t v     = UINT32_MAX;
		bool     found = mri_idmap_find(m, h, &v);

		ck_assert_msg(found == (i >= k), "cap %zu k %zu: entry %zu %s",
			      cap, k, i, found ? "found" : "missing");
		if (found)
			ck_assert_uint_eq(v, i);
	}
	mri_idmap_free(m);
}

START_TEST(test_evict_order)
{
	idmap_test__evict_order(1000, 137);
	idmap_test__evict_order(1000, 1000);
	idmap_test__evict_order(500, 1777);
	idmap_test__evict_order(1, 5);
	idmap_test__evict_order(3, 2);
}
END_TEST

START_TEST(test_expire)
{
	struct mri_idmap *m = idmap_test__new(100);

	for (int i = 0; i < 50; i++)
		mri_idmap_put(m, 1000 + (uint64_t)i, (uint32_t)i, 10 * i);
	ck_assert_uint_eq(mri_idmap_expire(m, 0), 0);
	ck_assert_uint_eq(mri_idmap_expire(m, 105), 11); /* 0 .. 100 */
	ck_assert_uint_eq(mri_idmap_count(m), 39);
	for (int i = 0; i < 50; i++)
		ck_assert(mri_idmap_find(m, 1000 + (uint64_t)i, NULL) ==
			  (i > 10));
	idmap_test__check(m);
	// Oldest first: it stops at the first entry that is not expired,
	// even when a later one is older.
	mri_idmap_put(m, 5000, 1, 5);
	ck_assert_uint_eq(mri_idmap_expire(m, 125), 2); /* 110, 120 */
	ck_assert(mri_idmap_find(m, 5000, NULL));
	ck_assert_uint_eq(mri_idmap_expire(m, 1000), 38);
	ck_assert_uint_eq(mri_idmap_count(m), 0);
	ck_assert_uint_eq(mri_idmap_expire(m, 1000), 0);
	idmap_test__check(m);
	// Empty, it fills again from wherever the ring is.
	for (int i = 0; i < 150; i++)
		mri_idmap_put(m, 9000 + (uint64_t)i, (uint32_t)i, 2000 + i);
	for (int i = 0; i < 150; i++)
		ck_assert(mri_idmap_find(m, 9000 + (uint64_t)i, NULL) ==
			  (i >= 50));
	idmap_test__check(m);
	mri_idmap_free(m);
}
END_TEST

START_TEST(test_reinsert_after_evict)
{
	struct mri_idmap *m = idmap_test__new(4);
	uint32_t          v = 0;

	mri_idmap_put(m, 1, 9, 0);
	for (uint64_t h = 2; h <= 5; h++)
		mri_idmap_put(m, h, 1, 0);
	ck_assert(!mri_idmap_find(m, 1, NULL));
	// A new entry: its value is not raised to the evicted one's.
	mri_idmap_put(m, 1, 2, 0);
	ck_assert(mri_idmap_find(m, 1, &v));
	ck_assert_uint_eq(v, 2);
	ck_assert(!mri_idmap_find(m, 2, NULL));
	ck_assert(mri_idmap_find(m, 3, NULL));
	mri_idmap_expire(m, 1);
	ck_assert_uint_eq(mri_idmap_count(m), 0);
	mri_idmap_put(m, 3, 4, 5);
	ck_assert(mri_idmap_find(m, 3, &v));
	ck_assert_uint_eq(v, 4);
	idmap_test__check(m);
	mri_idmap_free(m);
}
END_TEST

/* Many hashes with one home slot (the last, so that probes wrap), and a
 * few with the homes next to it, put, evicted and expired. */
START_TEST(test_same_home)
{
	struct mri_idmap *m    = idmap_test__new(64);
	uint32_t          last = m->mask;
	uint64_t          h[200];

	for (uint32_t i = 0; i < 200; i++)
		h[i] = idmap_test__at_home(m, i % 5 == 4 ? (i / 5) % 3 : last,
					   i);
	for (uint32_t i = 0; i < 200; i++) {
		mri_idmap_put(m, h[i], i, i);
		idmap_test__check(m);
		for (uint32_t k = 0; k < 200; k++) {
			uint32_t v     = UINT32_MAX;
			bool     found = mri_idmap_find(m, h[k], &v);

			ck_assert(found == (k <= i && k + 64 > i));
			if (found)
				ck_assert_uint_eq(v, k);
		}
	}
	for (int64_t t = 137; t <= 200; t += 7) {
		mri_idmap_expire(m, t);
		idmap_test__check(m);
		for (uint32_t k = 0; k < 200; k++)
			ck_assert(mri_idmap_find(m, h[k], NULL) ==
				  (k >= 136 && k >= t));
	}
	mri_idmap_free(m);
}
END_TEST

/* Hashes with the same 32-bit tag are told apart by the ring entry. */
START_TEST(test_same_tag)
{
	struct mri_idmap *m   = idmap_test__new(8);
	uint32_t          tag = 0xdeadbeef, v = 0;
	uint64_t          a   = idmap_test__with_tag(tag, 1);
	uint64_t          b   = idmap_test__with_tag(tag, 2);
	uint64_t          c   = idmap_test__with_tag(tag, 3);

	ck_assert_uint_ne(a, b);
	mri_idmap_put(m, a, 1, 0);
	ck_assert(!mri_idmap_find(m, b, NULL));
	mri_idmap_put(m, b, 2, 1);
	mri_idmap_put(m, c, 3, 2);
	ck_assert(mri_idmap_find(m, a, &v));
	ck_assert_uint_eq(v, 1);
	ck_assert(mri_idmap_find(m, b, &v));
	ck_assert_uint_eq(v, 2);
	mri_idmap_put(m, b, 5, 1);
	ck_assert(mri_idmap_find(m, a, &v));
	ck_assert_uint_eq(v, 1);
	ck_assert_uint_eq(mri_idmap_expire(m, 1), 1);
	ck_assert(!mri_idmap_find(m, a, NULL));
	ck_assert(mri_idmap_find(m, b, &v));
	ck_assert_uint_eq(v, 5);
	ck_assert(mri_idmap_find(m, c, &v));
	ck_assert_uint_eq(v, 3);
	idmap_test__check(m);
	mri_idmap_free(m);
}
END_TEST

/* The line scan (SSE2 where there is SSE2) against the portable one, on
 * lines of empty slots, slots of the tag and of other tags. */
START_TEST(test_scan_line)
{
	uint64_t s = idmap_test__seed;
	uint64_t line[IDMAP__LINE + 1], *l = line;

	// Aligned as the table's lines are.
	if ((uintptr_t)l % 16 != 0)
		l++;
	for (int n = 0; n < 100000; n++) {
		uint64_t x   = idmap_test__next(&s);
		uint32_t tag = n % 7 == 0 ? 0 : (uint32_t)(x >> 32);

		for (unsigned k = 0; k < IDMAP__LINE; k++) {
			uint64_t y = idmap_test__next(&s);

			// Empty, of the tag, of another, or (never in a table)
			// the tag with no index: the two must agree on all.
			if (y % 4 == 0)
				l[k] = 0;
			else if (y % 4 == 1)
				l[k] = idmap__slot(tag, (uint32_t)(y >> 40));
			else if (y % 4 == 2)
				l[k] = (uint64_t)tag << 32;
			else
				l[k] = y >> 8 != 0 ? y >> 8 : 1;
		}
		IDMAP_TEST__REQUIRE(idmap__scan_line(l, tag) ==
				    idmap__scan_c(l, tag));
	}
}
END_TEST

/* The model: a ring of key numbers, oldest at head, and for each key
 * whether it is in and its value. */
struct idmap_test__model {
	uint32_t key[64];
	int64_t  ts[64];
	size_t   cap, head, count;
	bool     in[IDMAP_TEST__KEYS];
	uint32_t val[IDMAP_TEST__KEYS];
};

static void
idmap_test__model_pop(struct idmap_test__model *r)
{
	r->in[r->key[r->head]] = false;
	r->head                = (r->head + 1) % r->cap;
	r->count--;
}

static void
idmap_test__model_put(struct idmap_test__model *r, uint32_t k, uint32_t v,
		      int64_t ts)
{
	size_t tail;

	if (r->in[k]) {
		if (v > r->val[k])
			r->val[k] = v;
		return;
	}
	if (r->count == r->cap)
		idmap_test__model_pop(r);
	tail         = (r->head + r->count) % r->cap;
	r->key[tail] = k;
	r->ts[tail]  = ts;
	r->in[k]     = true;
	r->val[k]    = v;
	r->count++;
}

static size_t
idmap_test__model_expire(struct idmap_test__model *r, int64_t before)
{
	size_t n = 0;

	while (r->count > 0 && r->ts[r->head] < before) {
		idmap_test__model_pop(r);
		n++;
	}
	return n;
}

/* Random puts (some at times out of order) and expiries on a bounded set
 * of keys: a third random, a third spread over the slots one by one, a
 * third crowded onto the last three slots (so probes wrap). After every
 * step every key is looked up in both. */
static void
idmap_test__random(size_t cap, int steps, uint64_t seed)
{
	struct mri_idmap        *m = idmap_test__new(cap);
	struct idmap_test__model r = {.cap = cap};
	uint64_t                 keys[IDMAP_TEST__KEYS], s = seed;
	int64_t                  now = 0;

	ck_assert_uint_le(cap, 64);
	for (uint32_t i = 0; i < IDMAP_TEST__KEYS; i++) {
		if (i % 3 == 0)
			keys[i] = idmap_test__next(&s);
		else if (i % 3 == 1)
			keys[i] = idmap_test__at_home(m, (i / 3) & m->mask, i);
		else
			keys[i] = idmap_test__at_home(m, m->mask - (i / 3) % 3,
						      i);
	}
	for (int step = 0; step < steps; step++) {
		uint64_t x = idmap_test__next(&s);

		now += (int64_t)(x % 3);
		if (x % 100 < 85) {
			uint32_t k  = (uint32_t)((x >> 8) % IDMAP_TEST__KEYS);
			uint32_t v  = (uint32_t)((x >> 20) % 1000);
			int64_t  ts = x % 16 == 0
					  ? now - (int64_t)((x >> 40) % 50)
					  : now;

			mri_idmap_put(m, keys[k], v, ts);
			idmap_test__model_put(&r, k, v, ts);
		} else {
			int64_t before = now - (int64_t)((x >> 8) % 200);

			size_t n = mri_idmap_expire(m, before);

			IDMAP_TEST__REQUIRE(
			    n == idmap_test__model_expire(&r, before));
		}
		IDMAP_TEST__REQUIRE(mri_idmap_count(m) == r.count);
		if (step % 64 == 0 || cap < 8)
			idmap_test__check(m);
		for (uint32_t k = 0; k < IDMAP_TEST__KEYS; k++) {
			uint32_t    v     = UINT32_MAX;
			bool        found = mri_idmap_find(m, keys[k], &v);
			const char *what  = found == r.in[k] ? "wrong value"
					    : found ? "found, not in the model"
						    : "missing";

			if (found != r.in[k] || (found && v != r.val[k]))
				ck_abort_msg("seed %llu cap %zu step %d key "
					     "%u: %s (value %u, model %u)",
					     (unsigned long long)seed, cap,
					     step, k, what, v, r.val[k]);
		}
	}
	idmap_test__check(m);
	mri_idmap_free(m);
}

START_TEST(test_random_model)
{
	idmap_test__random(64, 200000, idmap_test__seed);
	idmap_test__random(5, 50000, idmap_test__seed + 1);
	idmap_test__random(1, 20000, idmap_test__seed + 2);
}
END_TEST

static Suite *
idmap_test__suite(void)
{
	Suite *s = suite_create("idmap");
	TCase *tc;

	tc = tcase_create("map");
	tcase_add_test(tc, test_new_errors);
	tcase_add_test(tc, test_put_find);
	tcase_add_test(tc, test_max_of_values);
	tcase_add_test(tc, test_evict_order);
	tcase_add_test(tc, test_expire);
	tcase_add_test(tc, test_reinsert_after_evict);
	tcase_add_test(tc, test_same_home);
	tcase_add_test(tc, test_same_tag);
	tcase_add_test(tc, test_scan_line);
	tcase_add_test(tc, test_random_model);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char *env = getenv("MR_IDMAP_SEED");
	SRunner    *r;
	int         failed;

	if (env != NULL && env[0] != '\0')
		idmap_test__seed = strtoull(env, NULL, 10);
	else if (getrandom(&idmap_test__seed, sizeof(idmap_test__seed), 0) !=
		 (ssize_t)sizeof(idmap_test__seed))
		idmap_test__seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	printf("idmap model: seed %llu (MR_IDMAP_SEED=%llu repeats it)\n",
	       (unsigned long long)idmap_test__seed,
	       (unsigned long long)idmap_test__seed);
	fflush(stdout);
	r = srunner_create(idmap_test__suite());
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
