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
 * Cases: the delivery's fields against what was published and the commit
 * that follows the acks; per-key order with 8 workers over 1,000 keys; the
 * partition and unordered modes; nack, extend and an expired ack deadline;
 * a consumer process that exits or is killed holding deliveries; unknown
 * and stale handles, unknown sessions and malformed frames sent raw over
 * nng; records of another producer (no headers); and, on real Kafka only,
 * acks beyond the committed prefix kept across a restart of mailroomd.
 *
 * Nothing here asserts on a duration: every wait is a loop with a generous
 * bound, and a fetch long-polls (max_wait_ms) rather than sleeping.
 */
#define _GNU_SOURCE /* memmem */

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
#include "integration/harness.h"
#include "mailroom/mailroom.h"
#include "proto/consume.h"
#include "proto/frame.h"

#define PARTITIONS 4
#define LOOP_MS 60000 /* the bound of a "fetch until" loop */
#define WAIT_MS 2000  /* a fetch's long poll */

extern char **environ;


/* ---- helpers ----------------------------------------------------------- */

/* Publish \p n messages in requests of at most 1000; every one must be
 * acked. acks (n of them) may be NULL. */
static void
publish_all(mr_client *c, const mr_message *m, size_t n, mr_ack *acks)
{
	mr_ack *own = NULL;

	if (acks == NULL) {
		own  = calloc(n, sizeof(*own));
		acks = own;
		ck_assert_ptr_nonnull(acks);
	}
	for (size_t i = 0; i < n; i += 1000) {
		size_t k  = n - i < 1000 ? n - i : 1000;
		int    rc = mr_publish_batch(c, m + i, k, acks + i);

		ck_assert_msg(rc == MR_OK, "mr_publish_batch at %zu: %s: %s", i,
			      mr_err_name(rc), acks[i].error);
		for (size_t j = i; j < i + k; j++)
			ck_assert_msg(acks[j].status == MR_OK,
				      "message %zu not acked: %s", j,
				      acks[j].error);
	}
	free(own);
}

/* n messages to \p topic, key "KEYFMT" % (i % nkeys) (nkeys 0: keyless),
 * payload "<key>:<i>". */
static void
publish_simple(mr_client *c, const char *topic, size_t n, int nkeys,
	       mr_ack *acks)
{
	mr_message *m    = calloc(n, sizeof(*m));
	char      (*k)[32] = calloc(n, sizeof(*k));
	char      (*p)[64] = calloc(n, sizeof(*p));

	ck_assert(m != NULL && k != NULL && p != NULL);
	for (size_t i = 0; i < n; i++) {
		snprintf(k[i], sizeof(k[i]), "key-%d",
			 nkeys > 0 ? (int)(i % (size_t)nkeys) : -1);
		snprintf(p[i], sizeof(p[i]), "%s:%zu", k[i], i);
		m[i] = (mr_message){.topic       = topic,
				    .key         = nkeys > 0 ? k[i] : NULL,
				    .key_len     = nkeys > 0 ? strlen(k[i]) : 0,
				    .payload     = p[i],
				    .payload_len = strlen(p[i])};
	}
	publish_all(c, m, n, acks);
	free(m);
	free(k);
	free(p);
}

static mr_consumer *
subscribe(mr_client *c, const char *group, const char *topic, mr_order order,
	  int deadline_ms, int credit)
{
	mr_subscribe_opts o = {.order           = order,
			       .ack_deadline_ms = deadline_ms,
			       .credit          = credit};
	const char       *topics[1] = {topic};
	mr_consumer      *s         = NULL;
	int               rc;

	rc = mr_subscribe(c, group, topics, 1, &o, &s);
	ck_assert_msg(rc == MR_OK, "mr_subscribe(%s, %s): %s: %s", group, topic,
		      mr_err_name(rc), mr_client_last_error());
	ck_assert_ptr_nonnull(s);
	return s;
}

static mr_batch *
fetch(mr_consumer *s, size_t max, int wait_ms)
{
	mr_batch *b = NULL;
	int       rc = mr_fetch(s, max, 0, wait_ms, &b);

	ck_assert_msg(rc == MR_OK, "mr_fetch: %s: %s", mr_err_name(rc),
		      mr_client_last_error());
	ck_assert_ptr_nonnull(b);
	return b;
}

/* Settle; asserts the requests went through. @returns the failed count. */
static size_t
ack(mr_consumer *s, const uint64_t *h, size_t n)
{
	size_t failed = SIZE_MAX;
	int    rc     = mr_consumer_ack(s, h, n, &failed);

	ck_assert_msg(rc == MR_OK, "mr_consumer_ack of %zu: %s: %s", n,
		      mr_err_name(rc), mr_client_last_error());
	ck_assert_msg(failed <= n, "ack: failed is %zu of %zu", failed, n);
	return failed;
}

static size_t
ack1(mr_consumer *s, uint64_t h)
{
	return ack(s, &h, 1);
}

/* What a test keeps of a delivery after its batch is freed. */
struct got {
	uint64_t handle;
	int32_t  partition;
	int64_t  offset;
	uint32_t attempt;
	bool     redelivery;
	char     id[MR_ID_MAX + 1];
	char     payload[64]; /* the first bytes, NUL-terminated */
};

static void
got_copy(struct got *g, const mr_delivery *d)
{
	size_t n = d->payload_len < sizeof(g->payload) - 1
		       ? d->payload_len
		       : sizeof(g->payload) - 1;

	g->handle     = d->handle;
	g->partition  = d->partition;
	g->offset     = d->offset;
	g->attempt    = d->attempt;
	g->redelivery = d->redelivery;
	snprintf(g->id, sizeof(g->id), "%s", d->id);
	if (n > 0)
		memcpy(g->payload, d->payload, n);
	g->payload[n] = '\0';
}

/* One fetch, copied into out (at most cap). @returns how many. */
static size_t
fetch_got(mr_consumer *s, size_t max, int wait_ms, struct got *out,
	  size_t cap)
{
	mr_batch *b = fetch(s, max, wait_ms);
	size_t    n = mr_batch_count(b);

	ck_assert_msg(n <= max, "a fetch of at most %zu returned %zu", max, n);
	ck_assert_msg(n <= cap, "a fetch returned %zu, more than %zu", n, cap);
	for (size_t i = 0; i < n; i++) {
		const mr_delivery *d = mr_batch_at(b, i);

		ck_assert_ptr_nonnull(d);
		got_copy(&out[i], d);
	}
	ck_assert_ptr_null(mr_batch_at(b, n));
	mr_batch_free(b);
	return n;
}

/* A few long polls that must all come back empty. */
static void
expect_nothing(mr_consumer *s, int polls, int wait_ms, const char *why)
{
	for (int i = 0; i < polls; i++) {
		mr_batch          *b = fetch(s, 100, wait_ms);
		const mr_delivery *d = mr_batch_at(b, 0);

		ck_assert_msg(mr_batch_count(b) == 0,
			      "%s: got %zu deliveries, the first %s "
			      "partition %d offset %lld attempt %u",
			      why, mr_batch_count(b), d ? d->id : "?",
			      d ? d->partition : -1,
			      d ? (long long)d->offset : -1LL,
			      d ? d->attempt : 0);
		mr_batch_free(b);
	}
}

static int64_t
elapsed_since(int64_t t0)
{
	return mrt_now_ms() - t0;
}

static void
quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

/*
 * The group's committed offsets of \p topic's first \p nparts partitions,
 * read from Kafka by a client of its own (OffsetFetch; it does not join
 * the group). offsets[p] gets -1001 when none; meta_len (may be NULL) the
 * size of partition 0's commit metadata. @returns 0 or -1 with errbuf.
 */
static int
committed_read(const char *bootstrap, const char *group, const char *topic,
	       int nparts, int64_t *offsets, size_t *meta_len, char *errbuf,
	       size_t errlen)
{
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t              err;
	rd_kafka_t                      *rk;
	char                             es[512];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, es,
			      sizeof(es)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", group, es, sizeof(es)) !=
		RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", es,
			      sizeof(es)) != RD_KAFKA_CONF_OK) {
		snprintf(errbuf, errlen, "conf: %.400s", es);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es))) ==
	    NULL) {
		snprintf(errbuf, errlen, "rd_kafka_new: %.400s", es);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	l = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	err = rd_kafka_committed(rk, l, 10000);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int p = 0; p < nparts; p++) {
			rd_kafka_topic_partition_t *tp = &l->elems[p];

			offsets[tp->partition] = tp->err ? -1001 : tp->offset;
			if (tp->partition == 0 && meta_len != NULL)
				*meta_len = tp->metadata_size;
		}
	} else {
		snprintf(errbuf, errlen, "rd_kafka_committed: %s",
			 rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* Wait (bounded) until the group's committed offsets are \p want. */
static void
committed_wait(const struct mrt_daemon *d, const char *group,
	       const char *topic, int nparts, const int64_t *want)
{
	int64_t got[64], t0 = mrt_now_ms();
	char    err[512] = "", seen[512] = "";
	bool    same     = false;

	ck_assert_int_le(nparts, 64);
	while (!same && elapsed_since(t0) < 30000) {
		size_t off = 0;

		for (int p = 0; p < nparts; p++)
			got[p] = -1001;
		if (committed_read(d->bootstrap, group, topic, nparts, got,
				   NULL, err, sizeof(err)) == 0) {
			same = true;
			for (int p = 0; p < nparts; p++) {
				same = same && got[p] == want[p];
				off += (size_t)snprintf(
				    seen + off, sizeof(seen) - off,
				    " p%d=%lld/%lld", p, (long long)got[p],
				    (long long)want[p]);
				if (off >= sizeof(seen))
					off = sizeof(seen) - 1;
			}
		}
		if (!same)
			mrt_sleep_ms(250);
	}
	ck_assert_msg(same,
		      "group %s: committed offsets (got/expected) did not "
		      "reach the acked ends within 30 s:%s %s",
		      group, seen, err);
}

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
		k->stop = 1;
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

	while (!k->watchdog_done && !k->stop && elapsed_since(t0) < 180000)
		mrt_sleep_ms(100);
	k->stop = 1;
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
	k->watchdog_done = 1;
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

/* ---- 5. nack and extend ------------------------------------------------- */

/* Fetch until a delivery comes (bounded); copies the first one. */
static void
fetch_one(mr_consumer *s, struct got *g, const char *what)
{
	struct got buf[100];
	int64_t    t0 = mrt_now_ms();
	size_t     n  = 0;

	while (n == 0 && elapsed_since(t0) < LOOP_MS)
		n = fetch_got(s, 1, WAIT_MS, buf, 100);
	ck_assert_msg(n == 1, "%s: nothing delivered within %d s", what,
		      LOOP_MS / 1000);
	*g = buf[0];
}

START_TEST(test_nack)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_message        m[3];
	mr_ack            acks[3];
	struct got        g1, g2, g3;
	const char       *pays[3] = {"first", "second", "third"};
	char              topic[128], group[128];
	size_t            failed = SIZE_MAX;
	int               rc;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "nack");
	mrt_uniq(group, sizeof(group), "g-nack");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	for (int i = 0; i < 3; i++)
		m[i] = (mr_message){.topic       = topic,
				    .key         = "same",
				    .key_len     = 4,
				    .payload     = pays[i],
				    .payload_len = strlen(pays[i])};
	publish_all(c, m, 3, acks);
	// A deadline far away: only the nack can bring it back.
	s = subscribe(c, group, topic, MR_ORDER_KEY, 120000, 0);
	fetch_one(s, &g1, "first delivery");
	ck_assert_str_eq(g1.payload, "first");
	ck_assert_str_eq(g1.id, acks[0].id);
	ck_assert_uint_eq(g1.attempt, 1);
	ck_assert(!g1.redelivery);

	rc = mr_consumer_extend(s, &g1.handle, 1, 60000, &failed);
	ck_assert_msg(rc == MR_OK, "extend: %s", mr_err_name(rc));
	ck_assert_msg(failed == 0, "extend of a live handle: failed %zu",
		      failed);
	failed = SIZE_MAX;
	rc     = mr_consumer_nack(s, &g1.handle, 1, "test says no", &failed);
	ck_assert_msg(rc == MR_OK, "nack: %s", mr_err_name(rc));
	ck_assert_msg(failed == 0, "nack of a live handle: failed %zu",
		      failed);

	// The same message again, not the next one of its key.
	fetch_one(s, &g2, "after the nack");
	ck_assert_msg(strcmp(g2.payload, "first") == 0,
		      "after a nack of 'first', '%s' came (key order)",
		      g2.payload);
	ck_assert_int_eq(g2.partition, g1.partition);
	ck_assert_int_eq(g2.offset, g1.offset);
	ck_assert_str_eq(g2.id, g1.id);
	ck_assert_msg(g2.attempt == 2, "redelivery after a nack: attempt %u",
		      g2.attempt);
	ck_assert_msg(g2.redelivery, "redelivery after a nack: flag not set");
	ck_assert_msg(g2.handle != g1.handle,
		      "the redelivery reuses the nacked handle %" PRIu64,
		      g1.handle);
	// The nacked handle is stale; the new one acks.
	ck_assert_uint_eq(ack1(s, g1.handle), 1);
	ck_assert_uint_eq(ack1(s, g2.handle), 0);
	// A second ack of the same handle: already settled.
	ck_assert_uint_eq(ack1(s, g2.handle), 1);

	fetch_one(s, &g3, "after the ack");
	ck_assert_str_eq(g3.payload, "second");
	ck_assert_uint_eq(g3.attempt, 1);
	ck_assert(!g3.redelivery);
	ck_assert_uint_eq(ack1(s, g3.handle), 0);
	fetch_one(s, &g3, "the third");
	ck_assert_str_eq(g3.payload, "third");
	ck_assert_uint_eq(ack1(s, g3.handle), 0);
	expect_nothing(s, 1, 1000, "after all three were acked");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

START_TEST(test_extend)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_ack            a;
	struct got        g1;
	char              topic[128], group[128];
	uint64_t          bogus = UINT64_MAX - 17;
	size_t            failed = SIZE_MAX;
	int64_t           t0;
	int               rc;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "ext");
	mrt_uniq(group, sizeof(group), "g-ext");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	publish_simple(c, topic, 1, 1, &a);
	s = subscribe(c, group, topic, MR_ORDER_KEY, 1000, 0);
	fetch_one(s, &g1, "first delivery");
	ck_assert_uint_eq(g1.attempt, 1);
	rc = mr_consumer_extend(s, &g1.handle, 1, 60000, &failed);
	ck_assert_msg(rc == MR_OK, "extend: %s", mr_err_name(rc));
	ck_assert_msg(failed == 0, "extend of a live handle: failed %zu",
		      failed);
	// Three times the subscription's deadline: not handed out again.
	t0 = mrt_now_ms();
	while (elapsed_since(t0) < 3000)
		expect_nothing(s, 1, 500, "after extending the deadline by "
					  "60 s");
	ck_assert_uint_eq(ack1(s, g1.handle), 0);
	failed = SIZE_MAX;
	rc     = mr_consumer_extend(s, &bogus, 1, 1000, &failed);
	ck_assert_msg(rc == MR_OK, "extend of an unknown handle: %s",
		      mr_err_name(rc));
	ck_assert_uint_eq(failed, 1);
	failed = SIZE_MAX;
	rc     = mr_consumer_extend(s, &g1.handle, 1, 1000, &failed);
	ck_assert_msg(rc == MR_OK, "extend of an acked handle: %s",
		      mr_err_name(rc));
	ck_assert_uint_eq(failed, 1);
	expect_nothing(s, 2, 1500, "after the ack");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* ---- 6. the ack deadline ------------------------------------------------ */

START_TEST(test_deadline_expiry)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_ack            a;
	struct got        g1, g2;
	char              topic[128], group[128];

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "dl");
	mrt_uniq(group, sizeof(group), "g-dl");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	publish_simple(c, topic, 1, 1, &a);
	s = subscribe(c, group, topic, MR_ORDER_KEY, 1000, 0);
	fetch_one(s, &g1, "first delivery");
	ck_assert_str_eq(g1.id, a.id);
	ck_assert_uint_eq(g1.attempt, 1);
	ck_assert(!g1.redelivery);
	// Not acked: it comes again once its deadline passed.
	fetch_one(s, &g2, "after the deadline");
	ck_assert_str_eq(g2.id, g1.id);
	ck_assert_int_eq(g2.partition, g1.partition);
	ck_assert_int_eq(g2.offset, g1.offset);
	ck_assert_msg(g2.attempt == 2, "after an expired deadline: attempt %u",
		      g2.attempt);
	ck_assert(g2.redelivery);
	// The new handle first (its own deadline is short), then the old.
	ck_assert_uint_eq(ack1(s, g2.handle), 0);
	ck_assert_msg(ack1(s, g1.handle) == 1,
		      "an ack of the expired handle was accepted");
	expect_nothing(s, 2, 2000, "after the redelivery was acked");
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* ---- 7. a consumer process that goes away holding messages --------------- */

/* Parse the CLI's --json lines into out. @returns how many. */
static size_t
cli_parse(const char *text, struct got *out, size_t cap)
{
	size_t      n = 0;
	const char *p = text;

	while (*p != '\0' && n < cap) {
		const char  *nl = strchr(p, '\n');
		size_t       len = nl ? (size_t)(nl - p) : strlen(p);
		json_error_t jerr;
		json_t      *o;

		if (len == 0) {
			p += 1;
			continue;
		}
		o = json_loadb(p, len, 0, &jerr);
		ck_assert_msg(o != NULL, "the CLI printed '%.*s': %s",
			      (int)len, p, jerr.text);
		memset(&out[n], 0, sizeof(out[n]));
		out[n].partition = (int32_t)json_integer_value(
		    json_object_get(o, "partition"));
		out[n].offset = json_integer_value(json_object_get(o, "offset"));
		out[n].attempt = (uint32_t)json_integer_value(
		    json_object_get(o, "attempt"));
		snprintf(out[n].id, sizeof(out[n].id), "%s",
			 json_string_value(json_object_get(o, "id"))
			     ? json_string_value(json_object_get(o, "id"))
			     : "");
		json_decref(o);
		n++;
		p += len + (nl != NULL);
	}
	return n;
}

/*
 * After the CLI held \p held (it no longer runs): the group's next session
 * gets every one of the \p n messages, those held with attempt >= 2 and
 * the redelivery flag, the rest as first deliveries.
 */
static void
expect_redelivered(const struct mrt_daemon *d, mr_client *c,
		   const char *group, const char *topic, const mr_ack *acks,
		   size_t n, const struct got *held, size_t nheld)
{
	mr_consumer *s   = subscribe(c, group, topic, MR_ORDER_KEY, 0, 0);
	bool        *got = calloc(n, sizeof(*got));
	struct got   buf[100];
	size_t       total = 0;
	int64_t      t0    = mrt_now_ms();

	ck_assert_ptr_nonnull(got);
	while (total < n && elapsed_since(t0) < 2 * LOOP_MS) {
		size_t   k = fetch_got(s, 100, WAIT_MS, buf, 100);
		uint64_t h[100];

		for (size_t j = 0; j < k; j++) {
			size_t i;
			bool   was_held = false;

			for (i = 0; i < n && strcmp(acks[i].id, buf[j].id); i++)
				;
			ck_assert_msg(i < n, "unknown id %s", buf[j].id);
			ck_assert_msg(!got[i], "%s delivered twice to the new "
				      "session", buf[j].id);
			got[i] = true;
			total++;
			for (size_t x = 0; x < nheld; x++)
				was_held = was_held ||
					   strcmp(held[x].id, buf[j].id) == 0;
			if (was_held) {
				ck_assert_msg(buf[j].attempt >= 2,
					      "%s, held by the consumer that "
					      "went away, comes with attempt "
					      "%u",
					      buf[j].id, buf[j].attempt);
				ck_assert_msg(buf[j].redelivery,
					      "%s, held by the consumer that "
					      "went away: no redelivery flag",
					      buf[j].id);
			} else {
				ck_assert_msg(buf[j].attempt == 1,
					      "%s, never handed out, comes "
					      "with attempt %u",
					      buf[j].id, buf[j].attempt);
			}
			h[j] = buf[j].handle;
		}
		if (k > 0)
			ck_assert_uint_eq(ack(s, h, k), 0);
	}
	ck_assert_msg(total == n,
		      "the group's next session got %zu of %zu messages; "
		      "mailroomd's log:\n%s",
		      total, n, mrt_daemon_log_tail(d));
	mr_consumer_free(s);
	free(got);
}

/* The CLI takes 5 with --no-ack, -n 5, and exits (its session ends with
 * it, the deliveries unsettled). */
START_TEST(test_consumer_exits_holding)
{
	enum { N = 20, HOLD = 5 };
	const char       *bindir = getenv("MR_BINARY_DIR");
	struct mrt_daemon d;
	mr_client        *c;
	mr_ack            acks[N];
	struct got        held[N];
	char              topic[128], group[128], *out = NULL;
	size_t            len, nheld;
	int               rc;

	ck_assert_ptr_nonnull(bindir);
	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "exit");
	mrt_uniq(group, sizeof(group), "g-exit");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	publish_simple(c, topic, N, N, acks);
	rc = mrt_sh_output(&out, &len,
			   "timeout 120 '%s/mailroom' --url '%s' consume -g "
			   "'%s' --no-ack -n %d --batch %d --json '%s' "
			   "2>'%s/cli.err'",
			   bindir, d.url, group, HOLD, HOLD, topic, d.dir);
	ck_assert_msg(rc == 0, "mailroom consume exited with %d; output:\n%s",
		      rc, out);
	nheld = cli_parse(out, held, N);
	free(out);
	ck_assert_msg(nheld == HOLD, "the CLI printed %zu deliveries, not %d",
		      nheld, HOLD);
	for (size_t i = 0; i < nheld; i++)
		ck_assert_uint_eq(held[i].attempt, 1);
	expect_redelivered(&d, c, group, topic, acks, N, held, nheld);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* The CLI is killed (SIGKILL) while it holds deliveries: its connection
 * closes with nothing said. */
START_TEST(test_consumer_killed_holding)
{
	enum { N = 20 };
	const char       *bindir = getenv("MR_BINARY_DIR");
	struct mrt_daemon d;
	mr_client        *c;
	mr_ack            acks[N];
	struct got        held[N];
	char              topic[128], group[128], cli[512], outp[512];
	char             *argv[16], *text = NULL;
	posix_spawn_file_actions_t fa;
	size_t            nheld = 0, len;
	int64_t           t0;
	pid_t             pid;
	int               argc = 0, st = 0;

	ck_assert_ptr_nonnull(bindir);
	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "kill");
	mrt_uniq(group, sizeof(group), "g-kill");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	publish_simple(c, topic, N, N, acks);

	snprintf(cli, sizeof(cli), "%s/mailroom", bindir);
	snprintf(outp, sizeof(outp), "%s/cli.out", d.dir);
	argv[argc++] = cli;
	argv[argc++] = "--url";
	argv[argc++] = d.url;
	argv[argc++] = "consume";
	argv[argc++] = "-g";
	argv[argc++] = group;
	argv[argc++] = "--no-ack";
	argv[argc++] = "--json";
	argv[argc++] = "--batch";
	argv[argc++] = "5";
	argv[argc++] = topic;
	argv[argc]   = NULL;
	// posix_spawn, not fork: this process has nng's threads.
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, outp,
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_eq(posix_spawn(&pid, cli, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);

	// Once it printed (and so holds) all of them, kill it: then no
	// delivery can be in flight to it unprinted.
	t0 = mrt_now_ms();
	while (nheld < N && elapsed_since(t0) < LOOP_MS) {
		FILE *f;

		mrt_sleep_ms(100);
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0,
			      "mailroom consume exited by itself (status 0x%x)",
			      st);
		if ((f = fopen(outp, "r")) == NULL)
			continue;
		nheld = 0;
		for (int ch; (ch = fgetc(f)) != EOF;)
			nheld += ch == '\n';
		fclose(f);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	ck_assert_msg(nheld == N,
		      "the CLI printed %zu of %d deliveries within %d s",
		      nheld, N, LOOP_MS / 1000);
	ck_assert_int_eq(mrt_sh_output(&text, &len, "cat '%s'", outp), 0);
	// A line cut by the kill is not counted.
	if (len > 0 && text[len - 1] != '\n') {
		char *nl = strrchr(text, '\n');

		if (nl != NULL)
			nl[1] = '\0';
		else
			text[0] = '\0';
	}
	nheld = cli_parse(text, held, N);
	free(text);
	ck_assert_uint_eq(nheld, N);
	expect_redelivered(&d, c, group, topic, acks, N, held, nheld);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* ---- 8. unknown handles and sessions, malformed frames ------------------- */

/* The consumer that was there all along still gets and acks a message;
 * counted in *done. */
static void
good_consume(mr_consumer *s, const char *after, size_t *done)
{
	struct got buf[10];
	int64_t    t0 = mrt_now_ms();
	size_t     n  = 0;

	while (n == 0 && elapsed_since(t0) < LOOP_MS)
		n = fetch_got(s, 1, WAIT_MS, buf, 10);
	ck_assert_msg(n == 1, "after %s, a good consumer gets nothing", after);
	ck_assert_msg(ack1(s, buf[0].handle) == 0,
		      "after %s, a good consumer cannot ack", after);
	(*done)++;
}

START_TEST(test_bad_handles_and_frames)
{
	enum { N = 30 };
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *good, *gone;
	mr_ack            acks[N];
	struct mri_wbuf   b;
	struct mrt_raw        raw;
	struct got        g;
	char              topic[128], group[128], group2[128];
	uint64_t          hs[3], dead_session;
	size_t            failed, done = 0;
	int               rc;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "bad");
	mrt_uniq(group, sizeof(group), "g-bad");
	mrt_uniq(group2, sizeof(group2), "g-bad2");
	mrt_ck_topic_create(c, topic, PARTITIONS);
	publish_simple(c, topic, N, N, acks);
	good = subscribe(c, group, topic, MR_ORDER_KEY, 0, 0);
	fetch_one(good, &g, "first delivery");

	// Never-issued handles: the request succeeds, each handle fails.
	hs[0] = UINT64_MAX - 5;
	hs[1] = (uint64_t)1 << 62;
	ck_assert_uint_eq(ack(good, hs, 1), 1);
	ck_assert_uint_eq(ack(good, hs, 2), 2);
	failed = SIZE_MAX;
	rc     = mr_consumer_nack(good, hs, 2, NULL, &failed);
	ck_assert_msg(rc == MR_OK, "nack of unknown handles: %s",
		      mr_err_name(rc));
	ck_assert_uint_eq(failed, 2);
	// With a live one: that one is settled, the others fail.
	hs[2] = g.handle;
	ck_assert_uint_eq(ack(good, hs, 3), 2);
	done++;
	ck_assert_uint_eq(ack1(good, g.handle), 1);
	good_consume(good, "acks of unknown handles", &done);

	// A session of another group, ended: its number is unknown now.
	gone         = subscribe(c, group2, topic, MR_ORDER_KEY, 0, 0);
	dead_session = mr_consumer_session(gone);
	ck_assert_uint_ne(dead_session, mr_consumer_session(good));
	mr_consumer_free(gone);

	mrt_raw_open(&raw, d.url);
	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &(struct mri_fetch){.session     = dead_session,
						 .max_msgs    = 10,
						 .max_wait_ms = 100});
	ck_assert_int_eq(b.err, 0);
	mrt_raw_expect_error(&raw, "FETCH on an ended session", b.data, b.len,
			     MR_ENOENT, NULL);
	mri_wbuf_fini(&b);
	good_consume(good, "a FETCH on an ended session", &done);

	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &(struct mri_fetch){.session = 0x5eed5eed5eedULL,
						 .max_msgs    = 10,
						 .max_wait_ms = 0});
	mrt_raw_expect_error(&raw, "FETCH on a never-opened session", b.data,
			     b.len, MR_ENOENT, NULL);
	mri_wbuf_fini(&b);

	mri_wbuf_init(&b);
	mri_settle_encode(&b,
			  &(struct mri_settle){.session = dead_session,
					       .kind    = MRI_SETTLE_ACK},
			  &(struct mri_range){.first = 1, .count = 1}, 1);
	mrt_raw_expect_error(&raw, "SETTLE on an ended session", b.data, b.len,
			     MR_ENOENT, NULL);
	mri_wbuf_fini(&b);
	good_consume(good, "a SETTLE on an ended session", &done);

	// Malformed frames, with the live session's number.
	mri_wbuf_init(&b);
	mri_settle_encode(&b,
			  &(struct mri_settle){.session = mr_consumer_session(
						   good),
					       .kind = MRI_SETTLE_ACK},
			  &(struct mri_range){.first = g.handle, .count = 1},
			  1);
	b.len -= 5; // cut into the range
	mrt_frame_fix_len(&b);
	mrt_raw_expect_error(&raw, "truncated SETTLE", b.data, b.len, MR_EPROTO,
			     NULL);
	mri_wbuf_fini(&b);
	good_consume(good, "a truncated SETTLE", &done);

	mri_wbuf_init(&b);
	mri_settle_encode(&b,
			  &(struct mri_settle){.session = mr_consumer_session(
						   good),
					       .kind = MRI_SETTLE_ACK},
			  &(struct mri_range){.first = g.handle, .count = 1},
			  1);
	b.len = MRI_FRAME_HDR_LEN + 9; // the session and the kind only
	mrt_frame_fix_len(&b);
	mrt_raw_expect_error(&raw, "SETTLE cut after its kind", b.data, b.len,
			     MR_EPROTO, NULL);
	mri_wbuf_fini(&b);

	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &(struct mri_fetch){.session = mr_consumer_session(
						     good),
						 .max_msgs    = 10,
						 .max_wait_ms = 0});
	b.len -= 1;
	mrt_frame_fix_len(&b);
	mrt_raw_expect_error(&raw, "truncated FETCH", b.data, b.len, MR_EPROTO,
			     NULL);
	mri_wbuf_fini(&b);

	mri_wbuf_init(&b);
	mri_unsubscribe_encode(&b, mr_consumer_session(good));
	b.len -= 2;
	mrt_frame_fix_len(&b);
	mrt_raw_expect_error(&raw, "truncated UNSUBSCRIBE", b.data, b.len,
			     MR_EPROTO, NULL);
	mri_wbuf_fini(&b);

	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_SUBSCRIBE);
	mri_wbuf_put(&b, "{\"group\":", 9);
	mri_frame_end(&b);
	mrt_raw_expect_error(&raw, "SUBSCRIBE that is not JSON", b.data, b.len,
			     MR_EINVAL, NULL);
	mri_wbuf_fini(&b);
	nng_close(raw.sock);

	// The malformed frames settled nothing and closed nothing: the
	// good session goes on, and gets the rest, each message once.
	{
		bool      *seen = calloc(N, sizeof(*seen));
		struct got buf[100];
		int64_t    t0 = mrt_now_ms();

		ck_assert_ptr_nonnull(seen);
		while (done < N && elapsed_since(t0) < LOOP_MS) {
			size_t   k = fetch_got(good, 100, WAIT_MS, buf, 100);
			uint64_t h[100];

			for (size_t j = 0; j < k; j++) {
				size_t i;

				for (i = 0; i < N && strcmp(acks[i].id,
							    buf[j].id) != 0;
				     i++)
					;
				ck_assert_msg(i < N && !seen[i],
					      "%s: unknown or twice", buf[j].id);
				ck_assert_uint_eq(buf[j].attempt, 1);
				seen[i] = true;
				h[j]    = buf[j].handle;
			}
			done += k;
			if (k > 0)
				ck_assert_uint_eq(ack(good, h, k), 0);
		}
		ck_assert_msg(done == N,
			      "the good session got %zu of %d in all", done, N);
		free(seen);
	}
	expect_nothing(good, 1, 1000, "after everything was acked");
	mr_consumer_free(good);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
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

/* ---- 10. acks beyond the prefix across a restart (real Kafka) ----------- */

/*
 * With \p sets (NULL: defaults) on both mailroomd: the unacked first
 * message of a 1-partition topic comes again after a restart, the 19 acked
 * after it do not. The group's commit (offset 0, the acks beyond it in its
 * metadata) is read back from Kafka and printed.
 */
static void
acked_beyond_prefix_restart(const char *const *sets, const char *what)
{
	enum { N = 20 };
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_ack            acks[N];
	struct got        all[N + 100], again[200];
	uint64_t          h[N];
	int64_t           committed[1] = {-1001}, t0;
	size_t            n = 0, nh = 0, nagain = 0, meta = 0;
	bool              first_back = false;
	char              topic[128], group[128], err[512] = "";
	char              extra[1024] = "";
	size_t            eoff        = 0;

	mrt_ck_daemon_start(&d, sets);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "prefix");
	mrt_uniq(group, sizeof(group), "g-prefix");
	mrt_ck_topic_create(c, topic, 1);
	publish_simple(c, topic, N, N, acks);
	s  = subscribe(c, group, topic, MR_ORDER_UNORDERED, 0, 0);
	t0 = mrt_now_ms();
	while (n < N && elapsed_since(t0) < LOOP_MS)
		n += fetch_got(s, N, WAIT_MS, all + n, N + 100 - n);
	ck_assert_uint_eq(n, N);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(all[i].partition, 0);
		if (all[i].offset != acks[0].offset)
			h[nh++] = all[i].handle;
	}
	ck_assert_uint_eq(nh, N - 1);
	ck_assert_uint_eq(ack(s, h, nh), 0);
	mr_consumer_free(s);
	mr_client_free(c);
	// A clean stop commits the prefix, with the acks beyond it.
	mrt_ck_daemon_finish(&d);
	if (committed_read(mrt_bootstrap, group, topic, 1, committed, &meta, err,
			   sizeof(err)) == 0)
		fprintf(stderr,
			"%s: after the stop, group %s committed offset %lld "
			"with %zu bytes of metadata\n",
			what, group, (long long)committed[0], meta);
	else
		fprintf(stderr, "%s: after the stop: %s\n", what, err);

	mrt_ck_daemon_start(&d, sets);
	c  = mrt_ck_client(&d, 30000, 0);
	s  = subscribe(c, group, topic, MR_ORDER_UNORDERED, 0, 0);
	t0 = mrt_now_ms();
	while (!first_back && elapsed_since(t0) < LOOP_MS) {
		size_t k = fetch_got(s, 100, WAIT_MS, again + nagain,
				     200 - nagain);

		for (size_t j = nagain; j < nagain + k; j++)
			first_back = first_back ||
				     again[j].offset == acks[0].offset;
		nagain += k;
	}
	// A little more time for anything else that would come.
	for (int i = 0; i < 3 && nagain < 200; i++)
		nagain += fetch_got(s, 100, 2000, again + nagain, 200 - nagain);
	for (size_t j = 0; j < nagain; j++)
		if (again[j].offset != acks[0].offset && eoff < sizeof(extra))
			eoff += (size_t)snprintf(extra + eoff,
						 sizeof(extra) - eoff, " %lld",
						 (long long)again[j].offset);
	if (eoff >= sizeof(extra))
		eoff = sizeof(extra) - 1;
	ck_assert_msg(first_back,
		      "%s: after the restart, the unacked first message "
		      "(offset %lld) was not delivered again",
		      what, (long long)acks[0].offset);
	ck_assert_msg(eoff == 0,
		      "%s: after the restart, acked messages beyond the "
		      "committed prefix were delivered again, offsets:%s. The "
		      "group's "
		      "committed offset was %lld with %zu bytes of commit "
		      "metadata: if that is 0, the acks beyond the prefix were "
		      "not written, or were not read back (librdkafka 2.0.2's "
		      "rd_kafka_committed may not return commit metadata)",
		      what, extra, (long long)committed[0], meta);
	for (size_t j = 0; j < nagain; j++)
		ck_assert_uint_eq(ack1(s, again[j].handle), 0);
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}

START_TEST(test_acked_beyond_prefix_restart)
{
	acked_beyond_prefix_restart(NULL, "defaults");
}
END_TEST

/* Without the group's journal, only the commit's metadata can keep the
 * acks beyond the prefix: this one shows that path alone. */
START_TEST(test_acked_beyond_prefix_restart_no_journal)
{
	const char *const sets[] = {"consumer.journal=false", NULL};

	acked_beyond_prefix_restart(sets, "consumer.journal=false");
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

	tc = tcase_create("settle");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_nack);
	tcase_add_test(tc, test_extend);
	tcase_add_test(tc, test_deadline_expiry);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_consumer_exits_holding);
	tcase_add_test(tc, test_consumer_killed_holding);
	tcase_add_test(tc, test_bad_handles_and_frames);
	if (mrt_real) {
		tcase_add_test(tc, test_acked_beyond_prefix_restart);
		tcase_add_test(tc, test_acked_beyond_prefix_restart_no_journal);
	}
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("consume_api_test", consume_api_suite);
}
