/*
 * Tests for client/guard.c, the idempotency guard: a claim succeeds once,
 * survives a reopen (ids with newlines and backslashes too), a torn last
 * line is dropped and cut off, one process at a time, a bounded open keeps
 * the newest ids and compacts the file, and threads racing on the same ids
 * get exactly one MR_OK per id.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailroom/consumer.h"

struct guard_test__dir {
	char dir[256];
	char path[300];
};

static void
guard_test__dir(struct guard_test__dir *d)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(d->dir, sizeof(d->dir), "%s/guard_test.XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	snprintf(d->path, sizeof(d->path), "%s/ids", d->dir);
}

static void
guard_test__rmdir(struct guard_test__dir *d)
{
	char tmp[320];

	snprintf(tmp, sizeof(tmp), "%s.tmp", d->path);
	unlink(tmp);
	unlink(d->path);
	rmdir(d->dir);
}

static mr_guard *
guard_test__open(const char *path, size_t max_ids)
{
	mr_guard *g = NULL;
	char      err[256] = "";
	int       rc;

	rc = mr_guard_open_bounded(&g, path, max_ids, err, sizeof(err));
	ck_assert_msg(rc == MR_OK, "open: %s: %s", mr_err_name(rc), err);
	return g;
}

static void
guard_test__write(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* @returns the file's bytes (new, NUL-terminated) and their count. */
static char *
guard_test__read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	*len      = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

START_TEST(test_claim_once)
{
	struct guard_test__dir d;
	mr_guard              *g;
	char                   big[MR_ID_MAX + 2];

	guard_test__dir(&d);
	g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(g), 0);
	ck_assert_int_eq(mr_guard_claim(g, "order-1"), MR_OK);
	ck_assert_int_eq(mr_guard_claim(g, "order-1"), MR_EEXIST);
	ck_assert_int_eq(mr_guard_claim(g, "order-2"), MR_OK);
	ck_assert_int_eq(mr_guard_claim(g, "order-1"), MR_EEXIST);
	ck_assert_uint_eq(mr_guard_count(g), 2);

	ck_assert_int_eq(mr_guard_claim(g, ""), MR_EINVAL);
	ck_assert_int_eq(mr_guard_claim(g, NULL), MR_EINVAL);
	ck_assert_int_eq(mr_guard_claim(NULL, "x"), MR_EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(mr_guard_claim(g, big), MR_EINVAL);
	big[MR_ID_MAX] = '\0'; // exactly the limit
	ck_assert_int_eq(mr_guard_claim(g, big), MR_OK);
	ck_assert_int_eq(mr_guard_claim(g, big), MR_EEXIST);
	mr_guard_free(g);
	mr_guard_free(NULL);
	guard_test__rmdir(&d);
}
END_TEST

START_TEST(test_survives_reopen)
{
	static const char *ids[] = {
	    "0190f6c2-7a1b-7cc0-8d3e-2f1a9b6c4d21", "orders/3/1042",
	    "line\nbreak", "back\\slash", "\\n", "\\\\n\n", "\n",
	    "caf\xc3\xa9"};
	const size_t           n = sizeof(ids) / sizeof(ids[0]);
	struct guard_test__dir d;
	mr_guard              *g;
	char                  *text;
	size_t                 len, lines = 0;

	guard_test__dir(&d);
	g = guard_test__open(d.path, 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(mr_guard_claim(g, ids[i]), MR_OK);
	mr_guard_free(g);

	// One line per id: newlines in ids are escaped.
	text = guard_test__read(d.path, &len);
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	ck_assert_uint_eq(lines, n);
	free(text);

	g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(g), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(mr_guard_claim(g, ids[i]) == MR_EEXIST,
			      "id %zu claimed twice", i);
	// Escapes do not collide with the literal text.
	ck_assert_int_eq(mr_guard_claim(g, "line"), MR_OK);
	ck_assert_int_eq(mr_guard_claim(g, "\\"), MR_OK);
	ck_assert_int_eq(mr_guard_claim(g, "n"), MR_OK);
	mr_guard_free(g);

	g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(g), n + 3);
	ck_assert_int_eq(mr_guard_claim(g, "\\"), MR_EEXIST);
	mr_guard_free(g);
	guard_test__rmdir(&d);
}
END_TEST

START_TEST(test_torn_last_line)
{
	static const char      file[] = "a\nb\nparti";
	struct guard_test__dir d;
	mr_guard              *g;
	char                  *text;
	size_t                 len;

	guard_test__dir(&d);
	guard_test__write(d.path, file, sizeof(file) - 1);
	g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(g), 2);
	ck_assert_int_eq(mr_guard_claim(g, "a"), MR_EEXIST);
	ck_assert_int_eq(mr_guard_claim(g, "b"), MR_EEXIST);
	// The torn claim never returned MR_OK: it is not a claim.
	ck_assert_int_eq(mr_guard_claim(g, "parti"), MR_OK);
	ck_assert_int_eq(mr_guard_claim(g, "c"), MR_OK);
	mr_guard_free(g);

	// The torn end was cut off before the next append.
	text = guard_test__read(d.path, &len);
	ck_assert_str_eq(text, "a\nb\nparti\nc\n");
	free(text);
	guard_test__rmdir(&d);
}
END_TEST

START_TEST(test_torn_zeros)
{
	// A crash can leave a file longer than its data, zero-filled.
	static const char      file[] = "a\nb\n\0\0\0\0\0";
	struct guard_test__dir d;
	mr_guard              *g;
	char                  *text;
	size_t                 len;

	guard_test__dir(&d);
	guard_test__write(d.path, file, sizeof(file) - 1);
	g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(g), 2);
	ck_assert_int_eq(mr_guard_claim(g, "c"), MR_OK);
	mr_guard_free(g);
	text = guard_test__read(d.path, &len);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(text, "a\nb\nc\n");
	free(text);

	// A whole line of zeros is not an id either.
	guard_test__write(d.path, "a\n\0\0\nb\n", 7);
	g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(g), 2);
	mr_guard_free(g);
	guard_test__rmdir(&d);
}
END_TEST

START_TEST(test_one_process)
{
	struct guard_test__dir d;
	mr_guard              *g, *g2 = NULL;
	char                   err[256] = "";

	guard_test__dir(&d);
	g = guard_test__open(d.path, 0);
	ck_assert_int_eq(mr_guard_open(&g2, d.path, err, sizeof(err)),
			 MR_EBUSY);
	ck_assert_ptr_null(g2);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	mr_guard_free(g);
	g = guard_test__open(d.path, 0);
	mr_guard_free(g);

	ck_assert_int_eq(mr_guard_open(&g2, "/nonexistent-dir/ids", err,
				       sizeof(err)),
			 MR_EIO);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/ids"));
	ck_assert_int_eq(mr_guard_open(&g2, "", err, sizeof(err)), MR_EINVAL);
	guard_test__rmdir(&d);
}
END_TEST

START_TEST(test_bounded)
{
	struct guard_test__dir d;
	mr_guard              *g;
	char                   id[32], *text;
	size_t                 len, lines = 0;

	guard_test__dir(&d);
	g = guard_test__open(d.path, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		ck_assert_int_eq(mr_guard_claim(g, id), MR_OK);
	}
	mr_guard_free(g);

	// The 10 most recent stay; the file is rewritten with only those.
	g = guard_test__open(d.path, 10);
	ck_assert_uint_eq(mr_guard_count(g), 10);
	for (int i = 90; i < 100; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		ck_assert_int_eq(mr_guard_claim(g, id), MR_EEXIST);
	}
	ck_assert_int_eq(mr_guard_claim(g, "id-0"), MR_OK);
	mr_guard_free(g);
	text = guard_test__read(d.path, &len);
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	ck_assert_uint_eq(lines, 11);
	// In the order of the claims, so that the next bound keeps the
	// newest.
	ck_assert_ptr_nonnull(strstr(text, "id-90\n"));
	ck_assert_ptr_eq(strstr(text, "id-0\n"), text + len - 5);
	free(text);

	g = guard_test__open(d.path, 2);
	ck_assert_uint_eq(mr_guard_count(g), 2);
	ck_assert_int_eq(mr_guard_claim(g, "id-0"), MR_EEXIST);
	ck_assert_int_eq(mr_guard_claim(g, "id-99"), MR_EEXIST);
	ck_assert_int_eq(mr_guard_claim(g, "id-98"), MR_OK);
	mr_guard_free(g);
	guard_test__rmdir(&d);
}
END_TEST

#define GUARD_TEST__THREADS 8
#define GUARD_TEST__IDS 500

struct guard_test__race {
	mr_guard  *g;
	atomic_int ok[GUARD_TEST__IDS];
	atomic_int other;
};

static void *
guard_test__racer(void *arg)
{
	struct guard_test__race *r = arg;
	static atomic_int        next;
	int                      me = atomic_fetch_add(&next, 1);
	char                     id[32];

	// Each thread walks the ids from another start.
	for (int k = 0; k < GUARD_TEST__IDS; k++) {
		int i = (k + me * 61) % GUARD_TEST__IDS;
		int rc;

		snprintf(id, sizeof(id), "race-%d", i);
		rc = mr_guard_claim(r->g, id);
		if (rc == MR_OK)
			atomic_fetch_add(&r->ok[i], 1);
		else if (rc != MR_EEXIST)
			atomic_fetch_add(&r->other, 1);
	}
	return NULL;
}

START_TEST(test_threads_claim_once)
{
	struct guard_test__dir   d;
	struct guard_test__race *r = calloc(1, sizeof(*r));
	pthread_t                t[GUARD_TEST__THREADS];

	ck_assert_ptr_nonnull(r);
	guard_test__dir(&d);
	r->g = guard_test__open(d.path, 0);
	for (int i = 0; i < GUARD_TEST__THREADS; i++)
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, guard_test__racer, r), 0);
	for (int i = 0; i < GUARD_TEST__THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&r->other), 0);
	for (int i = 0; i < GUARD_TEST__IDS; i++)
		ck_assert_msg(atomic_load(&r->ok[i]) == 1,
			      "id %d: %d claims succeeded", i,
			      atomic_load(&r->ok[i]));
	ck_assert_uint_eq(mr_guard_count(r->g), GUARD_TEST__IDS);
	mr_guard_free(r->g);

	r->g = guard_test__open(d.path, 0);
	ck_assert_uint_eq(mr_guard_count(r->g), GUARD_TEST__IDS);
	ck_assert_int_eq(mr_guard_claim(r->g, "race-0"), MR_EEXIST);
	mr_guard_free(r->g);
	free(r);
	guard_test__rmdir(&d);
}
END_TEST

static Suite *
guard_test__suite(void)
{
	Suite *s = suite_create("guard");
	TCase *tc;

	tc = tcase_create("claim");
	tcase_add_test(tc, test_claim_once);
	tcase_add_test(tc, test_survives_reopen);
	tcase_add_test(tc, test_torn_last_line);
	tcase_add_test(tc, test_torn_zeros);
	tcase_add_test(tc, test_one_process);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_threads_claim_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(guard_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
