/*
 * Tests for bridge/address.c: partitioning against vectors from Kafka's
 * own Java partitioner (address parsing: proto/address_test.c).
 *
 * tests/kafka/partition_vectors.txt is read from MR_SOURCE_DIR or, when that
 * is not set, from the source tree this file was compiled in, "..", or ".".
 * With MR_LIVE_VECTORS=1 the test also runs tests/kafka/PartitionVectors.java
 * with a random seed (printed; MR_VECTOR_SEED repeats a run) on the jars in
 * $MAILROOM_KAFKA_CACHE/libs (default $HOME/.cache/mailroom/kafka-4.1.1),
 * and exits 77 (a CTest skip) when Java or the jars are missing.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge/address.h"
#include "mailroom/error.h"

#define ADDRESS_TEST__VECTORS "tests/kafka/partition_vectors.txt"
#define ADDRESS_TEST__JAVA "tests/kafka/PartitionVectors.java"
#define ADDRESS_TEST__NFILE 2000
#define ADDRESS_TEST__NLIVE 3000
#define ADDRESS_TEST__CLIENTS_JAR "kafka-clients-4.1.1.jar"

struct address_test__vec {
	uint8_t *key;
	size_t   key_len;
	int32_t  npart;
	int32_t  partition;
	int32_t  murmur2;
	size_t   line;
};

struct address_test__vecs {
	struct address_test__vec *v;
	size_t                    n;
	size_t                    cap;
};

static char      address_test__src[4096];
static char      address_test__libs[4096];
static long long address_test__seed;

/* ---- partition vectors --------------------------------------------------
 */

static void
address_test__vecs_free(struct address_test__vecs *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i].key);
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
}

static int
address_test__hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
address_test__int(const char *s, long long lo, long long hi, long long *out)
{
	char *end;

	errno = 0;
	*out  = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out >= lo &&
	       *out <= hi;
}

/* One "HEXKEY NPART PARTITION MURMUR2" line. */
static bool
address_test__line(char *line, struct address_test__vec *v)
{
	char     *tok[5], *save = NULL;
	size_t    n = 0;
	long long x;

	for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 5)
			return false;
		tok[n++] = t;
	}
	if (n != 4)
		return false;
	if (strcmp(tok[0], "-") == 0) {
		v->key_len = 0;
	} else {
		size_t hl = strlen(tok[0]);

		if (hl % 2 != 0)
			return false;
		v->key_len = hl / 2;
	}
	// Never NULL, so that the empty key is an empty array, as in Java.
	if ((v->key = malloc(v->key_len + 1)) == NULL)
		return false;
	for (size_t i = 0; i < v->key_len; i++) {
		int hi = address_test__hex(tok[0][2 * i]);
		int lo = address_test__hex(tok[0][2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		v->key[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!address_test__int(tok[1], 1, INT32_MAX, &x))
		return false;
	v->npart = (int32_t)x;
	if (!address_test__int(tok[2], 0, v->npart - 1, &x))
		return false;
	v->partition = (int32_t)x;
	if (!address_test__int(tok[3], INT32_MIN, INT32_MAX, &x))
		return false;
	v->murmur2 = (int32_t)x;
	return true;
}

/* Read vectors from \p f; a malformed line fails the test. */
static void
address_test__load(FILE *f, const char *what, struct address_test__vecs *vs)
{
	char   *line = NULL;
	size_t  cap  = 0;
	size_t  lineno = 0;
	ssize_t got;

	while ((got = getline(&line, &cap, f)) >= 0) {
		struct address_test__vec v = {0};
		size_t                   i = 0;

		lineno++;
		while (line[i] == ' ' || line[i] == '\t')
			i++;
		if (line[i] == '#' || line[i] == '\n' || line[i] == '\r' ||
		    line[i] == '\0')
			continue;
		if (vs->n == vs->cap) {
			size_t nc = vs->cap ? vs->cap * 2 : 1024;
			void  *p  = realloc(vs->v, nc * sizeof(*vs->v));

			ck_assert_ptr_nonnull(p);
			vs->v   = p;
			vs->cap = nc;
		}
		v.line = lineno;
		if (!address_test__line(line, &v)) {
			free(v.key);
			free(line);
			ck_abort_msg("%s:%zu: not a vector line", what,
				     lineno);
		}
		vs->v[vs->n++] = v;
	}
	free(line);
	ck_assert_msg(!ferror(f), "%s: read error", what);
}

/*
 * Check every vector against mri_partition_for_key, with the key at every
 * alignment (librdkafka's murmur2 reads aligned words and unaligned bytes
 * on different paths). The hash itself is checked through a partition
 * count of INT32_MAX, which leaves its 31 positive bits unchanged.
 */
static void
address_test__compare(const struct address_test__vecs *vs, const char *what)
{
	size_t    bad = 0;
	uint32_t *buf = NULL;
	size_t    buf_len = 0;

	for (size_t i = 0; i < vs->n; i++) {
		const struct address_test__vec *v = &vs->v[i];
		uint32_t positive = (uint32_t)v->murmur2 & 0x7fffffffu;
		bool     ok       = true;
		int32_t  got      = -1;

		// The file is consistent with itself.
		ok = ok && (int32_t)(positive % (uint32_t)v->npart) ==
			       v->partition;
		if (buf_len < v->key_len + 8) {
			buf_len = v->key_len + 8;
			free(buf);
			buf = malloc(buf_len);
			ck_assert_ptr_nonnull(buf);
		}
		for (size_t off = 0; off < 4 && ok; off++) {
			uint8_t *k = (uint8_t *)buf + off;

			memcpy(k, v->key, v->key_len);
			got = mri_partition_for_key(k, v->key_len, v->npart);
			ok  = got == v->partition;
			ok  = ok && mri_partition_for_key(k, v->key_len,
							  INT32_MAX) ==
					(int32_t)(positive % INT32_MAX);
		}
		if (ok && v->key_len == 0)
			ok = mri_partition_for_key(NULL, 0, v->npart) ==
			     v->partition;
		if (!ok && bad++ < 10)
			fprintf(stderr,
				"%s:%zu: key of %zu bytes, %" PRId32
				" partitions: want %" PRId32
				" (murmur2 %" PRId32 "), got %" PRId32 "\n",
				what, v->line, v->key_len, v->npart,
				v->partition, v->murmur2, got);
	}
	free(buf);
	ck_assert_msg(bad == 0, "%s: %zu of %zu vectors disagree", what, bad,
		      vs->n);
}

START_TEST(test_partition_vectors_file)
{
	struct address_test__vecs vs = {0};
	char                      path[4200];
	FILE                     *f;
	bool                      seen_empty = false, seen_long = false;

	snprintf(path, sizeof(path), "%s/%s", address_test__src,
		 ADDRESS_TEST__VECTORS);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s (set MR_SOURCE_DIR)", path,
		      strerror(errno));
	address_test__load(f, path, &vs);
	fclose(f);
	ck_assert_uint_eq(vs.n, ADDRESS_TEST__NFILE);
	for (size_t i = 0; i < vs.n; i++) {
		seen_empty |= vs.v[i].key_len == 0;
		seen_long |= vs.v[i].key_len >= 1000;
	}
	ck_assert(seen_empty && seen_long);
	address_test__compare(&vs, path);
	address_test__vecs_free(&vs);
}
END_TEST

/* \p s in single quotes for sh, into \p out. @returns false if too long. */
static bool
address_test__quote(char *out, size_t cap, const char *s)
{
	size_t j = 0;

	out[j++] = '\'';
	for (; *s; s++) {
		if (j + 6 >= cap)
			return false;
		if (*s == '\'') {
			memcpy(out + j, "'\\''", 4);
			j += 4;
		} else {
			out[j++] = *s;
		}
	}
	out[j++] = '\'';
	out[j]   = '\0';
	return true;
}

START_TEST(test_partition_vectors_live)
{
	struct address_test__vecs vs = {0};
	char                      cp[4200], java[4200], cmd[9000];
	char                      what[64];
	FILE                     *p;
	int                       st;

	snprintf(cmd, sizeof(cmd), "%s/*", address_test__libs);
	ck_assert(address_test__quote(cp, sizeof(cp), cmd));
	snprintf(cmd, sizeof(cmd), "%s/%s", address_test__src,
		 ADDRESS_TEST__JAVA);
	ck_assert(address_test__quote(java, sizeof(java), cmd));
	snprintf(cmd, sizeof(cmd), "java -cp %s %s %lld %d", cp, java,
		 address_test__seed, ADDRESS_TEST__NLIVE);
	snprintf(what, sizeof(what), "java seed %lld", address_test__seed);
	p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "popen: %s", strerror(errno));
	address_test__load(p, what, &vs);
	st = pclose(p);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "%s failed (status %d)", cmd, st);
	ck_assert_uint_eq(vs.n, ADDRESS_TEST__NLIVE);
	address_test__compare(&vs, what);
	address_test__vecs_free(&vs);
}
END_TEST

/* ---- setup --------------------------------------------------------------
 */

static bool
address_test__readable(const char *dir, const char *file)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, R_OK) == 0;
}

/* MR_SOURCE_DIR, else the first of this file's tree, "..", "." to hold
 * the vectors. */
static void
address_test__find_src(void)
{
	const char *env = getenv("MR_SOURCE_DIR");
	char        here[4096];
	char       *slash;
	const char *cand[3];

	if (env != NULL && env[0] != '\0') {
		snprintf(address_test__src, sizeof(address_test__src), "%s",
			 env);
		return;
	}
	// __FILE__ is .../bridge/address_test.c: two levels up is the root.
	snprintf(here, sizeof(here), "%s", __FILE__);
	for (int up = 0; up < 2; up++) {
		if ((slash = strrchr(here, '/')) != NULL)
			*slash = '\0';
		else
			snprintf(here, sizeof(here), ".");
	}
	cand[0] = here;
	cand[1] = "..";
	cand[2] = ".";
	for (size_t i = 0; i < 3; i++) {
		if (address_test__readable(cand[i], ADDRESS_TEST__VECTORS)) {
			snprintf(address_test__src, sizeof(address_test__src),
				 "%s", cand[i]);
			return;
		}
	}
	snprintf(address_test__src, sizeof(address_test__src), "..");
}

/* Run \p cmd; its first output line goes to \p out. @returns its status. */
static int
address_test__run(const char *cmd, char *out, size_t out_size)
{
	FILE  *p = popen(cmd, "r");
	char   buf[512];
	size_t n;

	out[0] = '\0';
	if (p == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), p) != NULL)
		if (out[0] == '\0')
			snprintf(out, out_size, "%s", buf);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return pclose(p);
}

/* Whether Java and the Kafka jars are here; \p why says what is not. */
static bool
address_test__live_ready(char *why, size_t why_size)
{
	const char *cache = getenv("MAILROOM_KAFKA_CACHE");
	const char *home  = getenv("HOME");
	char        cmd[9000], q[4200], line[512];
	int         st;

	if (cache != NULL && cache[0] != '\0')
		snprintf(address_test__libs, sizeof(address_test__libs),
			 "%s/libs", cache);
	else
		snprintf(address_test__libs, sizeof(address_test__libs),
			 "%s/.cache/mailroom/kafka-4.1.1/libs",
			 home != NULL && home[0] != '\0' ? home : "/root");
	st = address_test__run("java -version 2>&1", line, sizeof(line));
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, why_size, "java is not runnable here (%s)",
			 line[0] ? line : "no output");
		return false;
	}
	if (address_test__readable(address_test__libs,
				   ADDRESS_TEST__CLIENTS_JAR))
		return true;
	// kafka.sh check fetches the jars when Maven can, else says why.
	snprintf(cmd, sizeof(cmd), "%s/tests/kafka/kafka.sh",
		 address_test__src);
	line[0] = '\0';
	if (address_test__quote(q, sizeof(q), cmd)) {
		snprintf(cmd, sizeof(cmd), "bash %s check", q);
		address_test__run(cmd, line, sizeof(line));
	}
	if (address_test__readable(address_test__libs,
				   ADDRESS_TEST__CLIENTS_JAR))
		return true;
	snprintf(why, why_size, "no %s in %s: %s", ADDRESS_TEST__CLIENTS_JAR,
		 address_test__libs,
		 line[0] ? line : "kafka.sh check could not fetch it");
	return false;
}

static long long
address_test__pick_seed(void)
{
	const char *env = getenv("MR_VECTOR_SEED");
	uint64_t    r   = 0;

	if (env != NULL && env[0] != '\0')
		return strtoll(env, NULL, 10);
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	return (long long)(r & 0x7fffffffffffffffULL);
}

static Suite *
address_test__suite(bool live)
{
	Suite *s = suite_create("address");
	TCase *tc;

	tc = tcase_create("partition");
	tcase_add_test(tc, test_partition_vectors_file);
	suite_add_tcase(s, tc);

	if (live) {
		tc = tcase_create("live");
		// The JVM compiles the generator first: allow for it when
		// CTest has not given a default timeout.
		if (getenv("CK_DEFAULT_TIMEOUT") == NULL)
			tcase_set_timeout(tc, 300);
		tcase_add_test(tc, test_partition_vectors_live);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	const char *env  = getenv("MR_LIVE_VECTORS");
	bool        live = env != NULL && strcmp(env, "1") == 0;
	SRunner    *r;
	int         failed;

	address_test__find_src();
	if (live) {
		char why[5120];

		if (!address_test__live_ready(why, sizeof(why))) {
			printf("SKIP: live partition vectors: %s\n", why);
			return 77;
		}
		address_test__seed = address_test__pick_seed();
		printf("live partition vectors: seed %lld "
		       "(MR_VECTOR_SEED=%lld repeats it), jars in %s\n",
		       address_test__seed, address_test__seed,
		       address_test__libs);
		fflush(stdout);
	}
	r = srunner_create(address_test__suite(live));
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
