/*
 * The consume path end to end, through the C client: mailroomd as a child
 * process, records published through it (or by a raw librdkafka producer),
 * consumed through mr_subscribe, mr_fetch, the settle calls and
 * mr_consume_run, and the group's commits read back from Kafka.
 *
 * Built twice: consume_api_embedded runs on mailroomd's embedded cluster;
 * consume_api_kafka (MR_KAFKA=1) on the real broker of the CTest fixture,
 * whose bootstrap is in $MR_KAFKA_DIR/bootstrap (skip, 77, when the fixture
 * wrote $MR_KAFKA_DIR/unavailable).
 *
 * Cases (this file): the delivery's fields against what was published and
 * the commit that follows the acks; records of another producer (no
 * headers); per-key order with 8 workers over 1,000 keys; the partition and
 * unordered modes. consume_settle_test.c has the settle calls and the
 * failures; consume_common.c the helpers both use.
 *
 * Nothing here asserts on a duration: every wait is a loop with a generous
 * bound, and a fetch long-polls (max_wait_ms) rather than sleeping.
 */#define _GNU_SOURCE /* memmem */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "integration/checked.h"
#include "integration/consume_common.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"
#include "proto/consume.h"
#include "proto/frame.h"

/* ---- 1. round trip ------------------------------------------------------ */

#define RT_N 300
#define RT_KEYLESS 150 /* the one message without a key */
#define RT_EMPTY 7     /* the one message with an empty payload */

static size_t
rt_payload(int i, uint8_t *buf)
{
	size_t n = i == RT_EMPTY ? 0 : 3 + (size_t)(i % 40);

	for (size_t j = 0; j < n; j++)
		buf[j] = j % 3 == 0 ? 0 : (uint8_t)(i * 7 + (int)j);
	return n;
}

static void
rt_bin(int i, uint8_t bin[4])
{
	bin[0] = 0;
	bin[1] = (uint8_t)i;
	bin[2] = 0;
	bin[3] = 0xff;
}

/* The index of the header called \p name (exactly once), or -1. */
static ssize_t
header_index(const mr_delivery *d, const char *name, size_t *count)
{
	ssize_t at = -1;

	*count = 0;
	for (size_t i = 0; i < d->header_count; i++)
		if (strcmp(d->headers[i].name, name) == 0) {
			if (at < 0)
				at = (ssize_t)i;
			(*count)++;
		}
	return at;
}

static ssize_t
header_expect(const mr_delivery *d, const char *name, const void *v,
	      size_t len)
{
	size_t  cnt;
	ssize_t at = header_index(d, name, &cnt);

	ck_assert_msg(at >= 0, "%s: no header '%s'", d->id, name);
	ck_assert_msg(cnt == 1, "%s: header '%s' appears %zu times", d->id,
		      name, cnt);
	ck_assert_msg(d->headers[at].value_len == len &&
			  (len == 0 || memcmp(d->headers[at].value, v, len) == 0),
		      "%s: header '%s' has %zu bytes that differ from the "
		      "%zu published",
		      d->id, name, d->headers[at].value_len, len);
	return at;
}

START_TEST(test_round_trip)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_message       *m    = calloc(RT_N, sizeof(*m));
	mr_ack           *acks = calloc(RT_N, sizeof(*acks));
	mr_header        *hs   = calloc(RT_N * 3, sizeof(*hs));
	uint8_t         (*pay)[64] = calloc(RT_N, sizeof(*pay));
	uint8_t         (*bin)[4]  = calloc(RT_N, sizeof(*bin));
	char            (*keys)[32] = calloc(RT_N, sizeof(*keys));
	char            (*ids)[200] = calloc(RT_N, sizeof(*ids));
	char            (*seqs)[16] = calloc(RT_N, sizeof(*seqs));
	bool             *seen      = calloc(RT_N, sizeof(*seen));
	int64_t           ends[PARTITIONS];
	char              topic[128], group[128], prefix[160];
	size_t            got = 0;
	int64_t           t0;

	ck_assert(m && acks && hs && pay && bin && keys && ids && seqs &&
		  seen);
	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "rt");
	mrt_uniq(group, sizeof(group), "g-rt");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	snprintf(prefix, sizeof(prefix), "%s-m", topic);

	for (int i = 0; i < RT_N; i++) {
		size_t plen = rt_payload(i, pay[i]);

		snprintf(keys[i], sizeof(keys[i]), "k-%d", i % 37);
		snprintf(ids[i], sizeof(ids[i]), "%s%d", prefix, i);
		snprintf(seqs[i], sizeof(seqs[i]), "%d", i);
		rt_bin(i, bin[i]);
		hs[i * 3 + 0] = (mr_header){"x-seq", seqs[i], strlen(seqs[i])};
		hs[i * 3 + 1] = (mr_header){"x-bin", bin[i], 4};
		hs[i * 3 + 2] = (mr_header){"x-empty", "", 0};
		m[i] = (mr_message){.topic        = topic,
				    .key          = i == RT_KEYLESS ? NULL : keys[i],
				    .key_len      = i == RT_KEYLESS ? 0
								: strlen(keys[i]),
				    .payload      = pay[i],
				    .payload_len  = plen,
				    .id           = ids[i],
				    .type         = "orders.created",
				    .headers      = &hs[i * 3],
				    .header_count = 3};
	}
	publish_all(c, m, RT_N, acks);
	for (int p = 0; p < PARTITIONS; p++)
		ends[p] = 0;
	for (int i = 0; i < RT_N; i++) {
		ck_assert_str_eq(acks[i].id, ids[i]);
		ck_assert(acks[i].partition >= 0 &&
			  acks[i].partition < PARTITIONS);
		if (acks[i].offset + 1 > ends[acks[i].partition])
			ends[acks[i].partition] = acks[i].offset + 1;
	}

	s  = subscribe(c, group, topic, MR_ORDER_KEY, 0, 0);
	t0 = mrt_now_ms();
	while (got < RT_N && elapsed_since(t0) < LOOP_MS) {
		mr_batch *b = fetch(s, 500, WAIT_MS);
		size_t    n = mr_batch_count(b);
		uint64_t *h = calloc(n ? n : 1, sizeof(*h));

		ck_assert_ptr_nonnull(h);
		for (size_t j = 0; j < n; j++) {
			const mr_delivery *dv = mr_batch_at(b, j);
			uint8_t            want[64], wbin[4];
			size_t             wlen;
			ssize_t            at_id, at_seq, at_bin, at_empty;
			int                i;
			char               tail;

			ck_assert_ptr_nonnull(dv);
			ck_assert_msg(strncmp(dv->id, prefix, strlen(prefix)) ==
						  0 &&
					      sscanf(dv->id + strlen(prefix),
						     "%d%c", &i, &tail) == 1 &&
					      i >= 0 && i < RT_N,
				      "a delivery with id '%s', not one of ours",
				      dv->id);
			ck_assert_msg(!seen[i],
				      "%s delivered twice (attempt %u, "
				      "redelivery %d)",
				      dv->id, dv->attempt, dv->redelivery);
			seen[i] = true;
			got++;
			h[j] = dv->handle;

			ck_assert_str_eq(dv->topic, topic);
			ck_assert_int_eq(dv->partition, acks[i].partition);
			ck_assert_int_eq(dv->offset, acks[i].offset);
			ck_assert_str_eq(dv->id, acks[i].id);
			ck_assert_msg(dv->attempt == 1,
				      "%s: attempt %u on its first delivery",
				      dv->id, dv->attempt);
			ck_assert_msg(!dv->redelivery,
				      "%s: redelivery set on its first delivery",
				      dv->id);
			ck_assert_msg(dv->timestamp_ms > 0,
				      "%s: timestamp_ms %lld", dv->id,
				      (long long)dv->timestamp_ms);
			if (i == RT_KEYLESS) {
				ck_assert_msg(!dv->has_key && dv->key == NULL,
					      "the keyless message has a key");
			} else {
				ck_assert_msg(dv->has_key, "%s: no key", dv->id);
				ck_assert_msg(dv->key_len == strlen(keys[i]) &&
						  memcmp(dv->key, keys[i],
							 dv->key_len) == 0,
					      "%s: key '%.*s', expected '%s'",
					      dv->id, (int)dv->key_len,
					      (const char *)dv->key, keys[i]);
			}
			wlen = rt_payload(i, want);
			ck_assert_msg(dv->payload_len == wlen &&
					  (wlen == 0 ||
					   memcmp(dv->payload, want, wlen) == 0),
				      "%s: payload of %zu bytes differs from the "
				      "%zu published",
				      dv->id, dv->payload_len, wlen);
			// Every header: mailroomd's envelope, then ours in
			// order.
			at_id = header_expect(dv, MR_HEADER_ID, dv->id,
					      strlen(dv->id));
			header_expect(dv, MR_HEADER_TYPE, "orders.created", 14);
			header_expect(dv, MR_HEADER_SPECVERSION, "1.0", 3);
			at_seq = header_expect(dv, "x-seq", seqs[i],
					       strlen(seqs[i]));
			rt_bin(i, wbin);
			at_bin   = header_expect(dv, "x-bin", wbin, 4);
			at_empty = header_expect(dv, "x-empty", "", 0);
			ck_assert_msg(at_id < at_seq && at_seq < at_bin &&
					  at_bin < at_empty,
				      "%s: headers out of order (ce_id %zd, "
				      "x-seq %zd, x-bin %zd, x-empty %zd)",
				      dv->id, at_id, at_seq, at_bin, at_empty);
		}
		if (n > 0)
			ck_assert_uint_eq(ack(s, h, n), 0);
		free(h);
		mr_batch_free(b);
	}
	ck_assert_msg(got == RT_N,
		      "received %zu of %d messages within %d s; mailroomd's "
		      "log:\n%s",
		      got, RT_N, LOOP_MS / 1000, mrt_daemon_log_tail(&d));
	expect_nothing(s, 1, 1000, "after every message was acked");

	// The acks moved the group's committed offsets to the end.
	committed_wait(&d, group, topic, PARTITIONS, ends);

	// A new session of the group gets nothing again.
	mr_consumer_free(s);
	s = subscribe(c, group, topic, MR_ORDER_KEY, 0, 0);
	expect_nothing(s, 3, 3000, "a new session after every message was "
				   "acked");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
	free(m);
	free(acks);
	free(hs);
	free(pay);
	free(bin);
	free(keys);
	free(ids);
	free(seqs);
	free(seen);
}
END_TEST

/* ---- 2. per-key order with 8 workers ------------------------------------ */

#define KO_KEYS 1000
#define KO_PER 10
#define KO_N (KO_KEYS * KO_PER)

struct key_order {
	pthread_mutex_t lock;
	int             last[KO_KEYS]; /* last sequence handled, -1 */
	uint8_t         count[KO_N];   /* times (key, seq) was handled */
	size_t          distinct, handled, violations;
	char            first[256]; /* the first violation */
	atomic_int      running, max_running;
	volatile int    stop;
	volatile int    watchdog_done;
};

static __thread unsigned ko_seed;

static void
ko_violation(struct key_order *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Called with k->lock held. */
static void
ko_violation(struct key_order *k, const char *fmt, ...)
{
	va_list ap;

	if (k->violations++ == 0) {
		va_start(ap, fmt);
		vsnprintf(k->first, sizeof(k->first), fmt, ap);
		va_end(ap);
	}
}

static int
ko_handler(void *arg, const mr_delivery *d)
{
	struct key_order *k = arg;
	char              buf[64], kbuf[32];
	int               key = -1, seq = -1, now, prev;
	size_t            n = d->payload_len < sizeof(buf) - 1
				  ? d->payload_len
				  : sizeof(buf) - 1;

	now = atomic_fetch_add(&k->running, 1) + 1;
	prev = atomic_load(&k->max_running);
	while (now > prev &&
	       !atomic_compare_exchange_weak(&k->max_running, &prev, now))
		;
	if (ko_seed == 0)
		ko_seed = (unsigned)(uintptr_t)pthread_self() ^
			  (unsigned)mrt_now_ms();
	memcpy(buf, d->payload, n);
	buf[n] = '\0';
	pthread_mutex_lock(&k->lock);
	if (sscanf(buf, "key-%d:%d", &key, &seq) != 2 || key < 0 ||
	    key >= KO_KEYS || seq < 0 || seq >= KO_PER) {
		ko_violation(k, "payload '%s' (%s) is not one of ours", buf,
			     d->id);
	} else {
		snprintf(kbuf, sizeof(kbuf), "key-%d", key);
		if (!d->has_key || d->key_len != strlen(kbuf) ||
		    memcmp(d->key, kbuf, d->key_len) != 0)
			ko_violation(k, "%s: payload '%s' with key '%.*s'",
				     d->id, buf, (int)d->key_len,
				     (const char *)d->key);
		if (k->count[key * KO_PER + seq]++ > 0)
			ko_violation(k, "key %d seq %d handled twice "
				     "(attempt %u)", key, seq, d->attempt);
		else
			k->distinct++;
		if (seq != k->last[key] + 1)
			ko_violation(k, "key %d: seq %d after seq %d", key,
				     seq, k->last[key]);
		if (seq > k->last[key])
			k->last[key] = seq;
	}
	k->handled++;
	if (k->distinct == KO_N)
		__atomic_store_n(&k->stop, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&k->lock);
	// A few microseconds of work, so that the workers interleave.
	usleep(rand_r(&ko_seed) % 40);
	atomic_fetch_sub(&k->running, 1);
	return MR_OK;
}

static void *
ko_watchdog(void *arg)
{
	struct key_order *k  = arg;
	int64_t           t0 = mrt_now_ms();

	while (!__atomic_load_n(&k->watchdog_done, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&k->stop, __ATOMIC_RELAXED) &&
	       elapsed_since(t0) < 180000)
		mrt_sleep_ms(100);
	__atomic_store_n(&k->stop, 1, __ATOMIC_RELAXED);
	return NULL;
}

START_TEST(test_key_order_8_workers)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_message       *m    = calloc(KO_N, sizeof(*m));
	mr_ack           *acks = calloc(KO_N, sizeof(*acks));
	char            (*keys)[16] = calloc(KO_KEYS, sizeof(*keys));
	char            (*pay)[32]  = calloc(KO_N, sizeof(*pay));
	struct key_order *k         = calloc(1, sizeof(*k));
	char              topic[128], group[128];
	pthread_t         wd;
	int               rc;

	ck_assert(m && acks && keys && pay && k);
	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "ko");
	mrt_uniq(group, sizeof(group), "g-ko");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	// Sequence-major: each request holds one message of every key.
	for (int seq = 0; seq < KO_PER; seq++)
		for (int key = 0; key < KO_KEYS; key++) {
			int i = seq * KO_KEYS + key;

			snprintf(keys[key], sizeof(keys[key]), "key-%d", key);
			snprintf(pay[i], sizeof(pay[i]), "key-%d:%d", key, seq);
			m[i] = (mr_message){.topic       = topic,
					    .key         = keys[key],
					    .key_len     = strlen(keys[key]),
					    .payload     = pay[i],
					    .payload_len = strlen(pay[i])};
		}
	publish_all(c, m, KO_N, acks);
	// Kafka holds each key's messages in order, in one partition.
	for (int seq = 1; seq < KO_PER; seq++)
		for (int key = 0; key < KO_KEYS; key++) {
			const mr_ack *a = &acks[seq * KO_KEYS + key];
			const mr_ack *b = &acks[(seq - 1) * KO_KEYS + key];

			ck_assert_int_eq(a->partition, b->partition);
			ck_assert_int_gt(a->offset, b->offset);
		}

	pthread_mutex_init(&k->lock, NULL);
	for (int i = 0; i < KO_KEYS; i++)
		k->last[i] = -1;
	s = subscribe(c, group, topic, MR_ORDER_KEY, 0, 0);
	ck_assert_int_eq(pthread_create(&wd, NULL, ko_watchdog, k), 0);
	rc = mr_consume_run(s, 8, ko_handler, k, &k->stop, 0);
	__atomic_store_n(&k->watchdog_done, 1, __ATOMIC_RELAXED);
	pthread_join(wd, NULL);
	ck_assert_msg(rc == MR_OK, "mr_consume_run: %s: %s", mr_err_name(rc),
		      mr_client_last_error());
	ck_assert_msg(k->violations == 0, "%zu violations; the first: %s",
		      k->violations, k->first);
	ck_assert_msg(k->distinct == KO_N,
		      "handled %zu distinct messages of %d (%zu calls) "
		      "within 180 s",
		      k->distinct, KO_N, k->handled);
	ck_assert_uint_eq(k->handled, KO_N);
	for (int key = 0; key < KO_KEYS; key++)
		ck_assert_int_eq(k->last[key], KO_PER - 1);
	ck_assert_msg(atomic_load(&k->max_running) >= 2,
		      "never more than %d handler at a time with 8 workers",
		      atomic_load(&k->max_running));
	fprintf(stderr, "key order: %d messages, %d keys, up to %d handlers "
		"at once\n", KO_N, KO_KEYS, atomic_load(&k->max_running));
	// Everything was acked: a fetch finds nothing.
	expect_nothing(s, 1, 2000, "after mr_consume_run handled everything");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
	pthread_mutex_destroy(&k->lock);
	free(m);
	free(acks);
	free(keys);
	free(pay);
	free(k);
}
END_TEST

/* ---- 3. partition mode ---------------------------------------------------- */

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

START_TEST(test_partition_mode)
{
	enum { N = 60 };
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_ack            acks[N];
	int64_t           offs[PARTITIONS][N];
	size_t            nper[PARTITIONS] = {0}, next[PARTITIONS] = {0};
	struct got        held[PARTITIONS], buf[100];
	char              topic[128], group[128];
	size_t            delivered = 0, rounds = 0;
	int64_t           t0;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "pm");
	mrt_uniq(group, sizeof(group), "g-pm");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	publish_simple(c, topic, N, N, acks);
	for (int i = 0; i < N; i++) {
		int32_t p = acks[i].partition;

		offs[p][nper[p]++] = acks[i].offset;
	}
	for (int p = 0; p < PARTITIONS; p++)
		qsort(offs[p], nper[p], sizeof(int64_t), cmp_i64);

	s  = subscribe(c, group, topic, MR_ORDER_PARTITION, 0, 100);
	t0 = mrt_now_ms();
	while (delivered < N && elapsed_since(t0) < 2 * LOOP_MS) {
		size_t   nheld = 0, want = 0;
		uint64_t h[PARTITIONS];

		for (int p = 0; p < PARTITIONS; p++)
			want += next[p] < nper[p];
		// Fetch without acking until every partition with something
		// left has its one delivery out.
		while (nheld < want && elapsed_since(t0) < 2 * LOOP_MS) {
			size_t n = fetch_got(s, 100, WAIT_MS, buf, 100);

			for (size_t j = 0; j < n; j++) {
				struct got *g = &buf[j];
				int32_t     p = g->partition;

				ck_assert(p >= 0 && p < PARTITIONS);
				for (size_t x = 0; x < nheld; x++)
					ck_assert_msg(
					    held[x].partition != p,
					    "partition mode: partition %d "
					    "has offsets %lld and %lld in "
					    "flight at once",
					    p, (long long)held[x].offset,
					    (long long)g->offset);
				ck_assert_msg(next[p] < nper[p],
					      "partition %d: offset %lld after "
					      "all of it was delivered",
					      p, (long long)g->offset);
				ck_assert_msg(g->offset == offs[p][next[p]],
					      "partition %d: offset %lld, "
					      "expected %lld (offset order)",
					      p, (long long)g->offset,
					      (long long)offs[p][next[p]]);
				ck_assert_uint_eq(g->attempt, 1);
				held[nheld++] = *g;
				next[p]++;
			}
		}
		if (nheld < want)
			break;
		// Nothing new while those are unacked.
		{
			size_t n = fetch_got(s, 100, 500, buf, 100);

			ck_assert_msg(n == 0,
				      "partition mode: %zu more deliveries "
				      "(partition %d offset %lld) while one "
				      "of each partition is unacked",
				      n, buf[0].partition,
				      (long long)buf[0].offset);
		}
		for (size_t x = 0; x < nheld; x++)
			h[x] = held[x].handle;
		ck_assert_uint_eq(ack(s, h, nheld), 0);
		delivered += nheld;
		rounds++;
	}
	ck_assert_msg(delivered == N,
		      "partition mode delivered %zu of %d; mailroomd's "
		      "log:\n%s",
		      delivered, N, mrt_daemon_log_tail(&d));
	expect_nothing(s, 1, 1000, "after everything was acked");
	fprintf(stderr, "partition mode: %d messages in %zu rounds\n", N,
		rounds);
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* ---- 4. unordered --------------------------------------------------------- */

START_TEST(test_unordered)
{
	enum { N = 200, KEYS = 3 };
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_ack            acks[N];
	struct got       *all = calloc(N + 1000, sizeof(*all));
	uint64_t          h[N];
	size_t            n = 0, per[PARTITIONS] = {0}, maxper = 0;
	char              topic[128], group[128];
	int64_t           t0;

	ck_assert_ptr_nonnull(all);
	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "un");
	mrt_uniq(group, sizeof(group), "g-un");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	// Three keys: key mode would have at most three in flight.
	publish_simple(c, topic, N, KEYS, acks);
	s  = subscribe(c, group, topic, MR_ORDER_UNORDERED, 0, 0);
	t0 = mrt_now_ms();
	// Nothing is acked until everything is in flight.
	while (n < N && elapsed_since(t0) < LOOP_MS)
		n += fetch_got(s, 1000, WAIT_MS, all + n, N + 1000 - n);
	ck_assert_msg(n == N,
		      "unordered: %zu of %d in flight at once (nothing acked); "
		      "mailroomd's log:\n%s",
		      n, N, mrt_daemon_log_tail(&d));
	for (int i = 0; i < N; i++) {
		size_t found = 0;

		for (size_t j = 0; j < n; j++)
			if (all[j].partition == acks[i].partition &&
			    all[j].offset == acks[i].offset) {
				found++;
				ck_assert_str_eq(all[j].id, acks[i].id);
				ck_assert_uint_eq(all[j].attempt, 1);
			}
		ck_assert_msg(found == 1,
			      "message %d (partition %d offset %lld) "
			      "delivered %zu times",
			      i, acks[i].partition, (long long)acks[i].offset,
			      found);
	}
	for (size_t j = 0; j < n; j++) {
		h[j] = all[j].handle;
		if (++per[all[j].partition] > maxper)
			maxper = per[all[j].partition];
	}
	ck_assert_msg(maxper > 1, "unordered: at most %zu in flight per "
		      "partition", maxper);
	ck_assert_uint_eq(ack(s, h, n), 0);
	expect_nothing(s, 1, 1000, "after everything was acked");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
	free(all);
}
END_TEST

/* ---- 9. records of another producer ------------------------------------- */

struct raw_dr {
	int64_t offset[64];
	int32_t partition[64];
	int     errors;
};

static void
raw_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct raw_dr *dr = opaque;
	intptr_t       i  = (intptr_t)m->_private;

	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR || i < 0 || i >= 64) {
		dr->errors++;
		return;
	}
	dr->offset[i]    = m->offset;
	dr->partition[i] = m->partition;
}

START_TEST(test_foreign_records)
{
	enum { KEYS = 3, PER = 5, N = KEYS * PER };
	struct mrt_daemon d;
	struct raw_dr     dr = {.errors = 0};
	mr_client        *c;
	mr_consumer      *s;
	rd_kafka_conf_t  *conf;
	rd_kafka_t       *rk;
	char              topic[128], group[128], es[512];
	char              keys[KEYS][8], pays[N][32];
	int               last[KEYS] = {-1, -1, -1};
	bool              seen[N]    = {false};
	size_t            total      = 0;
	int64_t           t0;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "foreign");
	mrt_uniq(group, sizeof(group), "g-foreign");
	mrt_ck_topic_create(c, topic, PARTITIONS);

	conf = rd_kafka_conf_new();
	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
					   d.bootstrap, es, sizeof(es)),
			 RD_KAFKA_CONF_OK);
	ck_assert_int_eq(rd_kafka_conf_set(conf, "enable.idempotence", "true",
					   es, sizeof(es)),
			 RD_KAFKA_CONF_OK);
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	rd_kafka_conf_set_dr_msg_cb(conf, raw_dr_cb);
	rd_kafka_conf_set_opaque(conf, &dr);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
	ck_assert_msg(rk != NULL, "rd_kafka_new: %s", es);
	// Interleaved keys, all in partition 1, no headers.
	for (int i = 0; i < N; i++) {
		int                 key = i % KEYS;
		rd_kafka_resp_err_t err;

		snprintf(keys[key], sizeof(keys[key]), "fk-%d", key);
		snprintf(pays[i], sizeof(pays[i]), "fk-%d:%d", key, i / KEYS);
		err = rd_kafka_producev(
		    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(1),
		    RD_KAFKA_V_KEY(keys[key], strlen(keys[key])),
		    RD_KAFKA_V_VALUE(pays[i], strlen(pays[i])),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
		ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "producev: %s",
			      rd_kafka_err2str(err));
	}
	ck_assert_int_eq(rd_kafka_flush(rk, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(dr.errors, 0);
	rd_kafka_destroy(rk);

	s  = subscribe(c, group, topic, MR_ORDER_KEY, 0, 0);
	t0 = mrt_now_ms();
	while (total < N && elapsed_since(t0) < LOOP_MS) {
		mr_batch *b = fetch(s, 100, WAIT_MS);
		size_t    n = mr_batch_count(b);
		uint64_t  h[100];

		for (size_t j = 0; j < n; j++) {
			const mr_delivery *dv = mr_batch_at(b, j);
			char               want_id[300], pbuf[32];
			int                key, seq, i;

			ck_assert_str_eq(dv->topic, topic);
			ck_assert_int_eq(dv->partition, 1);
			snprintf(want_id, sizeof(want_id), "%s/%d/%lld", topic,
				 dv->partition, (long long)dv->offset);
			ck_assert_msg(strcmp(dv->id, want_id) == 0,
				      "a record without ce_id has id '%s', "
				      "expected '%s'",
				      dv->id, want_id);
			ck_assert_msg(dv->header_count == 0,
				      "%s: %zu headers, the record has none",
				      dv->id, dv->header_count);
			ck_assert_uint_eq(dv->attempt, 1);
			ck_assert(!dv->redelivery);
			ck_assert_msg(dv->timestamp_ms > 0, "%s: timestamp %lld",
				      dv->id, (long long)dv->timestamp_ms);
			ck_assert_msg(dv->payload_len < sizeof(pbuf), "%s: %zu "
				      "bytes of payload", dv->id,
				      dv->payload_len);
			memcpy(pbuf, dv->payload, dv->payload_len);
			pbuf[dv->payload_len] = '\0';
			ck_assert_msg(sscanf(pbuf, "fk-%d:%d", &key, &seq) == 2 &&
					  key >= 0 && key < KEYS && seq >= 0 &&
					  seq < PER,
				      "payload '%s'", pbuf);
			i = seq * KEYS + key;
			ck_assert_int_eq(dv->offset, dr.offset[i]);
			ck_assert_msg(dv->has_key &&
					  dv->key_len == strlen(keys[key]) &&
					  memcmp(dv->key, keys[key],
						 dv->key_len) == 0,
				      "%s: wrong key for payload %s", dv->id,
				      pbuf);
			ck_assert_msg(!seen[i], "%s delivered twice", dv->id);
			seen[i] = true;
			ck_assert_msg(seq == last[key] + 1,
				      "key %s: seq %d after %d", keys[key], seq,
				      last[key]);
			last[key] = seq;
			h[j]      = dv->handle;
			total++;
		}
		if (n > 0)
			ck_assert_uint_eq(ack(s, h, n), 0);
		mr_batch_free(b);
	}
	ck_assert_msg(total == N, "got %zu of %d foreign records", total, N);
	expect_nothing(s, 1, 1000, "after every foreign record was acked");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

static Suite *
consume_api_suite(void)
{
	Suite *s = suite_create(mrt_real ? "consume_api_kafka"
				       : "consume_api_embedded");
	TCase *tc;

	// Set here, not from CK_DEFAULT_TIMEOUT: each case is bounded on its
	// own, well under the CTest timeout of the whole binary.
	tc = tcase_create("delivery");
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_foreign_records);
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_key_order_8_workers);
	tcase_add_test(tc, test_partition_mode);
	tcase_add_test(tc, test_unordered);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("consume_api_test", consume_api_suite);
}
