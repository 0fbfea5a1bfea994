/*
 * The dead-letter supervisor (dlq/supervisor.c) with a real group and
 * publisher on librdkafka's mock cluster: a poison message retried with
 * growing delays and quarantined with its failure headers while its key's
 * next waits and other keys flow; a dead-letter write that fails leaves
 * the original unacked until a later write succeeds, written once; the
 * breaker trips under a storm of failures, stops handing out, goes
 * half-open after its cool-down and by command, and closes on an ack; a
 * consumer that goes away holding records is one failure for it.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bridge/embedded.h"
#include "bridge/publish.h"
#include "consumers/group.h"
#include "core/clock.h"
#include "core/log.h"
#include "dlq/record.h"
#include "dlq/supervisor.h"
#include "mailroom/error.h"

#define ST_TOPIC "st_src"
#define ST_WAIT_MS 30000

/* One subscription under test: the cluster, the publisher, the
 * supervisor and the group, and a session of it. */
struct st {
	struct mri_embedded  *e;
	struct mri_publisher *pub;
	struct mri_dlq       *d;
	struct mri_group     *g;
	uint32_t              sid;
};

/* A fetch or settle done through a callback, waited for. */
struct st_call {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	bool            done;
	size_t          n;
	uint64_t        handle[16];
	int64_t         offset[16];
	uint32_t        attempt[16];
	char            key[16][8];
};

static void
st_fetched(void *arg, int err, const struct mri_group_batch *b)
{
	struct st_call *c = arg;

	pthread_mutex_lock(&c->lock);
	c->n = 0;
	if (err == MR_OK)
		for (size_t i = 0; i < b->n && i < 16; i++) {
			c->handle[i]  = b->d[i].handle;
			c->offset[i]  = b->d[i].offset;
			c->attempt[i] = b->d[i].attempt;
			snprintf(c->key[i], sizeof(c->key[i]), "%.*s",
				 (int)b->d[i].key_len,
				 (const char *)b->d[i].key);
			c->n++;
		}
	c->done = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
}

static void
st_settled(void *arg, int err, const struct mri_group_settle_result *r)
{
	struct st_call *c = arg;

	(void)err;
	pthread_mutex_lock(&c->lock);
	c->n    = r->settled;
	c->done = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
}

static void
st_call_wait(struct st_call *c)
{
	uint64_t deadline = mri_deadline_in(ST_WAIT_MS);
	bool     done;

	// No assertion while waiting: Check's bookkeeping of each one may
	// block, and the callback needs the lock.
	pthread_mutex_lock(&c->lock);
	while (!c->done &&
	       mri_cond_wait_until(&c->cv, &c->lock, deadline) == 0)
		;
	done = c->done;
	pthread_mutex_unlock(&c->lock);
	ck_assert_msg(done, "no answer within %d ms", ST_WAIT_MS);
}

static void
st_call_init(struct st_call *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	mri_cond_init(&c->cv);
}

/* Fetch what is there within \p wait_ms into \p c. */
static size_t
st_fetch(struct st *t, struct st_call *c, uint32_t wait_ms)
{
	struct mri_group_fetch_req f = {16, 1 << 20, wait_ms};

	st_call_init(c);
	ck_assert_int_eq(mri_group_fetch(t->g, t->sid, &f, st_fetched, c),
			 MR_OK);
	st_call_wait(c);
	return c->n;
}

static void
st_settle(struct st *t, enum mri_group_settle_kind kind, uint64_t h,
	  const char *reason)
{
	struct st_call               c;
	struct mri_group_range       r = {h, 1};
	struct mri_group_settle_req  s = {
	     .kind       = kind,
	     .reason     = reason,
	     .reason_len = reason ? strlen(reason) : 0,
	     .ranges     = &r,
	     .nranges    = 1,
	     .handles    = 1,
	};

	st_call_init(&c);
	ck_assert_int_eq(mri_group_settle(t->g, &s, st_settled, &c), MR_OK);
	st_call_wait(&c);
	ck_assert_uint_eq(c.n, 1);
}

static void
st_produce(struct st *t, const char *key, const char *value)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             err[256];
	rd_kafka_t      *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(t->e), err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	ck_assert_int_eq(rd_kafka_producev(
			     rk, RD_KAFKA_V_TOPIC(ST_TOPIC),
			     RD_KAFKA_V_PARTITION(0),
			     RD_KAFKA_V_KEY(key, strlen(key)),
			     RD_KAFKA_V_VALUE((void *)value, strlen(value)),
			     RD_KAFKA_V_HEADER("ce_id", value, -1),
			     RD_KAFKA_V_HEADER("app", "x", 1), RD_KAFKA_V_END),
			 0);
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
	rd_kafka_destroy(rk);
}

static void
st_start(struct st *t, const struct mri_retry *retry, uint32_t breaker_max,
	 uint64_t cooldown_ms)
{
	const char               *topics[] = {ST_TOPIC};
	struct mri_group_conf     c        = {
			   .group              = "st_group",
			   .topics             = topics,
			   .ntopics            = 1,
			   .order              = MRI_ORDER_KEY,
			   .credit             = 100,
			   .ack_deadline_ms    = 30000,
			   .max_buffered       = 1000,
			   .revoke_wait_ms     = 100,
			   .session_timeout_ms = 6000,
			   .retry              = *retry,
	};
	struct mri_publisher_conf pc = {
	    .client_id          = "supervisor_test",
	    .linger_ms          = 0,
	    .message_timeout_ms = 10000,
	    .message_max_bytes  = 1000000,
	};
	struct mri_dlq_conf dc = {
	    .group               = "st_group",
	    .breaker_max         = breaker_max,
	    .breaker_period_ms   = 60000,
	    .breaker_cooldown_ms = cooldown_ms,
	};
	struct mri_group_hooks hooks;
	rd_kafka_conf_t       *conf = rd_kafka_conf_new();
	char                   err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(mri_embedded_start(&t->e, 1, err, sizeof(err)),
			 MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(t->e, ST_TOPIC, 1, 1),
			 MR_OK);
	ck_assert_int_eq(
	    mri_embedded_topic_create(t->e, ST_TOPIC ".dlq", 1, 1), MR_OK);
	pc.bootstrap = mri_embedded_bootstraps(t->e);
	ck_assert_int_eq(mri_publisher_new(&t->pub, &pc, err, sizeof(err)),
			 MR_OK);
	ck_assert_int_eq(mri_dlq_new(&t->d, t->pub, &dc, err, sizeof(err)),
			 MR_OK);
	mri_dlq_hooks(t->d, &hooks);
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(t->e), err, sizeof(err));
	ck_assert_int_eq(mri_group_new(&t->g, conf, &c, &hooks, err,
				       sizeof(err)),
			 MR_OK);
	mri_dlq_attach(t->d, t->g);
	ck_assert_int_eq(mri_group_session_open(t->g, &t->sid), MR_OK);
}

static void
st_stop(struct st *t)
{
	mri_dlq_detach(t->d);
	mri_group_free(t->g);
	mri_dlq_free(t->d);
	mri_publisher_free(t->pub);
	mri_embedded_stop(t->e);
}

/* The records of the dead-letter topic, read from the start: \p want of
 * them, waiting at most ST_WAIT_MS for the first and \p more_ms after it. */
struct st_dlq {
	size_t              n;
	char                key[8][16];
	char                value[8][16];
	struct mri_dlq_info info[8];
	char                hnames[8][24][32]; /* their header names */
	size_t              nh[8];
};

static void
st_read_dlq(struct st *t, struct st_dlq *out, size_t want, int more_ms)
{
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_t                      *rk;
	char                             err[256];
	uint64_t deadline = mri_deadline_in(ST_WAIT_MS);

	memset(out, 0, sizeof(*out));
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(t->e), err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", "st_reader", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, ST_TOPIC ".dlq", 0)->offset =
	    RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
	rd_kafka_topic_partition_list_destroy(l);
	while (out->n < want && mri_deadline_left(deadline) > 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		rd_kafka_headers_t *hs;
		struct mri_hdr_view v[24];
		size_t              nv = 0;
		const char         *name;
		const void         *val;
		size_t              vlen;

		if (m == NULL)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		snprintf(out->key[out->n], 16, "%.*s", (int)m->key_len,
			 (const char *)m->key);
		snprintf(out->value[out->n], 16, "%.*s", (int)m->len,
			 (const char *)m->payload);
		if (rd_kafka_message_headers(m, &hs) == 0)
			while (nv < 24 && rd_kafka_header_get_all(
					      hs, nv, &name, &val, &vlen) == 0) {
				v[nv].name      = name;
				v[nv].name_len  = (uint16_t)strlen(name);
				v[nv].value     = val != NULL ? val : "";
				v[nv].value_len = (uint32_t)vlen;
				snprintf(out->hnames[out->n][nv], 32, "%s",
					 name);
				nv++;
			}
		out->nh[out->n] = nv;
		// The info borrows the headers: keep only what is copied.
		mri_dlq_parse(v, nv, &out->info[out->n]);
		out->info[out->n].topic.p = NULL;
		out->info[out->n].group.p = NULL;
		if (out->n++ == 0 &&
		    mri_deadline_left(deadline) > (uint64_t)more_ms)
			deadline = mri_deadline_in((uint64_t)more_ms);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

START_TEST(test_poison_quarantined)
{
	struct mri_retry     retry = {.max_attempts       = 3,
				      .backoff_initial_ms = 200,
				      .backoff_max_ms     = 1000,
				      .multiplier         = 2,
				      .jitter             = 0.1};
	struct st            t;
	struct st_call       c;
	struct st_dlq        q;
	struct mri_dlq_stats ds;
	uint64_t             last_nack = 0;
	uint32_t             attempts  = 0;
	bool                 b_seen = false, a1_seen = false;

	st_start(&t, &retry, 0, 1000);
	st_produce(&t, "A", "a0");
	st_produce(&t, "A", "a1");
	st_produce(&t, "B", "b0");

	// a0 fails every time; B flows; a1 only once a0 is quarantined.
	while (!a1_seen) {
		ck_assert_uint_ge(st_fetch(&t, &c, 15000), 1);
		for (size_t i = 0; i < c.n; i++) {
			if (c.offset[i] == 0) {
				uint64_t now = mri_mono_ms();

				attempts++;
				ck_assert_uint_eq(c.attempt[i], attempts);
				ck_assert_uint_le(attempts, 3);
				// The backoff before attempt n+1 is at least
				// 0.9 * 200 * 2^(n-1) ms.
				if (attempts > 1)
					ck_assert_uint_ge(
					    now - last_nack,
					    (uint64_t)(180u
						       << (attempts - 2)));
				last_nack = now;
				st_settle(&t, MRI_GROUP_NACK, c.handle[i],
					  "boom: order 1234 failed");
			} else if (c.offset[i] == 1) {
				ck_assert_uint_eq(attempts, 3);
				a1_seen = true;
				st_settle(&t, MRI_GROUP_ACK, c.handle[i],
					  NULL);
			} else {
				ck_assert_int_eq(c.offset[i], 2);
				ck_assert_uint_eq(attempts, 1); // early
				b_seen = true;
				st_settle(&t, MRI_GROUP_ACK, c.handle[i],
					  NULL);
			}
		}
	}
	ck_assert(b_seen);

	st_read_dlq(&t, &q, 1, ST_WAIT_MS);
	ck_assert_uint_eq(q.n, 1);
	ck_assert_str_eq(q.key[0], "A");
	ck_assert_str_eq(q.value[0], "a0");
	ck_assert_str_eq(q.hnames[0][0], "ce_id");
	ck_assert_str_eq(q.hnames[0][1], "app");
	ck_assert_int_eq(q.info[0].dialect, MRI_DLQ_MAILROOM);
	ck_assert_int_eq(q.info[0].partition, 0);
	ck_assert_int_eq(q.info[0].offset, 0);
	ck_assert_uint_eq(q.info[0].attempts, 3);
	ck_assert_str_eq(q.info[0].reason, "boom: order 1234 failed");
	ck_assert_uint_eq(q.info[0].fingerprint,
			  mri_dlq_fingerprint("boom: order 99 failed", 21));
	ck_assert_int_gt(q.info[0].first_failure_ms, 0);
	ck_assert_int_ge(q.info[0].last_failure_ms,
			 q.info[0].first_failure_ms + 500);
	ck_assert_int_ge(q.info[0].time_ms, q.info[0].last_failure_ms);

	mri_dlq_stats(t.d, &ds);
	ck_assert_uint_eq(ds.quarantined, 1);
	ck_assert_uint_eq(ds.failures, 3);
	ck_assert_uint_eq(ds.pending, 0);
	ck_assert_int_eq(ds.breaker, MRI_DLQ_CLOSED);
	st_stop(&t);
}
END_TEST

/* The first dead-letter writes fail: the original stays unacked (its
 * key's next waits) and is quarantined by a later write, once. */
START_TEST(test_dlq_write_fails)
{
	struct mri_retry     retry = {.max_attempts = 1};
	struct st            t;
	struct st_call       c;
	struct st_dlq        q;
	struct mri_dlq_stats ds;
	uint64_t             deadline;

	st_start(&t, &retry, 0, 1000);
	st_produce(&t, "A", "a0");
	st_produce(&t, "A", "a1");
	mri_embedded_produce_errors(
	    t.e, 2, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
	ck_assert_uint_eq(st_fetch(&t, &c, 15000), 1);
	st_settle(&t, MRI_GROUP_REJECT, c.handle[0], "never");
	// a1 comes only once a0 is in the dead-letter topic.
	ck_assert_uint_eq(st_fetch(&t, &c, 15000), 1);
	ck_assert_int_eq(c.offset[0], 1);
	mri_dlq_stats(t.d, &ds);
	ck_assert_uint_ge(ds.dlq_errors, 1);
	ck_assert_uint_eq(ds.quarantined, 1);
	st_settle(&t, MRI_GROUP_ACK, c.handle[0], NULL);
	// A second copy, had there been one, was written before a1 came.
	st_read_dlq(&t, &q, 2, 3000);
	ck_assert_uint_eq(q.n, 1);
	ck_assert_str_eq(q.value[0], "a0");
	ck_assert_uint_eq(q.info[0].attempts, 1);
	ck_assert_str_eq(q.info[0].reason, "never");
	// Nothing more is quarantined later.
	deadline = mri_deadline_in(500);
	while (mri_deadline_left(deadline) > 0)
		usleep(50000);
	mri_dlq_stats(t.d, &ds);
	ck_assert_uint_eq(ds.quarantined, 1);
	st_stop(&t);
}
END_TEST

/* Wait up to ST_WAIT_MS for the breaker to be \p want. */
static void
st_wait_breaker(struct st *t, enum mri_dlq_breaker want)
{
	uint64_t             deadline = mri_deadline_in(ST_WAIT_MS);
	struct mri_dlq_stats ds;

	for (;;) {
		mri_dlq_stats(t->d, &ds);
		if (ds.breaker == want)
			return;
		ck_assert_msg(mri_deadline_left(deadline) > 0,
			      "the breaker is %s, not %s",
			      mri_dlq_breaker_name(ds.breaker),
			      mri_dlq_breaker_name(want));
		usleep(10000);
	}
}

START_TEST(test_breaker)
{
	struct mri_retry     retry = {.max_attempts = 0};
	struct st            t;
	struct st_call       c;
	struct mri_dlq_stats ds;
	uint64_t             h;
	bool                 acked[4] = {false, false, true, false};

	st_start(&t, &retry, 3, 300);
	st_produce(&t, "A", "v0");
	st_produce(&t, "A", "v1");
	st_produce(&t, "B", "v2");
	/*
	 * Three failures of v0 trip it. B's record is acked on the way, in
	 * whichever batch it comes: the group may have read it after the
	 * first fetch, and then hand it out before v0's retry.
	 */
	for (int fails = 0; fails < 3;) {
		size_t v0 = SIZE_MAX;

		ck_assert_uint_ge(st_fetch(&t, &c, 15000), 1);
		for (size_t k = 0; k < c.n; k++) {
			if (c.offset[k] == 0) {
				v0 = k;
				continue;
			}
			ck_assert_int_eq(c.offset[k], 2);
			st_settle(&t, MRI_GROUP_ACK, c.handle[k], NULL);
		}
		if (v0 == SIZE_MAX)
			continue;
		st_settle(&t, MRI_GROUP_NACK, c.handle[v0], "storm");
		fails++;
	}
	mri_dlq_stats(t.d, &ds);
	ck_assert_int_eq(ds.breaker, MRI_DLQ_OPEN);
	ck_assert_uint_eq(ds.trips, 1);
	ck_assert_msg(strstr(ds.reason, "3 failures within") != NULL, "%s",
		      ds.reason);
	ck_assert_int_ge(ds.retry_ms, ds.opened_ms + 300);
	// Open: nothing is handed out, though v0 is ready.
	ck_assert_uint_eq(st_fetch(&t, &c, 100), 0);

	// After the cool-down: half-open, one at a time.
	ck_assert_uint_eq(st_fetch(&t, &c, 15000), 1);
	ck_assert_int_eq(c.offset[0], 0);
	h = c.handle[0];
	mri_dlq_stats(t.d, &ds);
	ck_assert_int_eq(ds.breaker, MRI_DLQ_HALF_OPEN);
	st_produce(&t, "C", "v3");
	ck_assert_uint_eq(st_fetch(&t, &c, 100), 0);
	// A failure while half-open opens it again.
	st_settle(&t, MRI_GROUP_NACK, h, "still");
	mri_dlq_stats(t.d, &ds);
	ck_assert_int_eq(ds.breaker, MRI_DLQ_OPEN);
	ck_assert_uint_eq(ds.trips, 2);

	// An operator resumes it: half-open at once (one record: v0 or v3);
	// an ack closes it.
	ck_assert_int_eq(mri_dlq_resume(t.d), MRI_DLQ_OPEN);
	ck_assert_uint_eq(st_fetch(&t, &c, 15000), 1);
	ck_assert_int_eq(mri_dlq_resume(t.d), MRI_DLQ_HALF_OPEN);
	acked[c.offset[0]] = true;
	st_settle(&t, MRI_GROUP_ACK, c.handle[0], NULL);
	st_wait_breaker(&t, MRI_DLQ_CLOSED);
	// Full flow: the rest (v1 after v0) comes and is acked.
	for (int i = 0; i < 100 && !(acked[0] && acked[1] && acked[3]); i++) {
		st_fetch(&t, &c, 15000);
		for (size_t k = 0; k < c.n; k++) {
			ck_assert_int_lt(c.offset[k], 4);
			acked[c.offset[k]] = true;
			st_settle(&t, MRI_GROUP_ACK, c.handle[k], NULL);
		}
	}
	ck_assert(acked[0] && acked[1] && acked[3]);
	mri_dlq_stats(t.d, &ds);
	ck_assert_uint_eq(ds.failures, 4);
	ck_assert_uint_eq(ds.trips, 2);
	st_stop(&t);
}
END_TEST

/*
 * A session that closes holding records is one failure for the breaker,
 * however many it held (each record still counts an attempt): three
 * consumers that go away holding five records each trip a breaker of
 * three, the first two do not.
 */
START_TEST(test_breaker_abandoned)
{
	struct mri_retry     retry = {.max_attempts = 0};
	struct st            t;
	struct st_call       c;
	struct mri_dlq_stats ds;
	char                 key[4];

	st_start(&t, &retry, 3, 60000);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "K%d", i);
		st_produce(&t, key, key);
	}
	for (int round = 1; round <= 3; round++) {
		size_t held = 0;

		for (int i = 0; i < 100 && held < 5; i++) {
			st_fetch(&t, &c, 15000);
			for (size_t k = 0; k < c.n; k++)
				ck_assert_uint_eq(c.attempt[k],
						  (uint32_t)round);
			held += c.n;
		}
		ck_assert_uint_eq(held, 5);
		mri_group_session_close(t.g, t.sid);
		mri_dlq_stats(t.d, &ds);
		ck_assert_uint_eq(ds.failures, 5 * (uint64_t)round);
		if (round < 3) {
			ck_assert_msg(ds.breaker == MRI_DLQ_CLOSED,
				      "round %d: the breaker is %s: %s", round,
				      mri_dlq_breaker_name(ds.breaker),
				      ds.reason);
			ck_assert_int_eq(
			    mri_group_session_open(t.g, &t.sid), MR_OK);
		}
	}
	ck_assert_int_eq(ds.breaker, MRI_DLQ_OPEN);
	ck_assert_uint_eq(ds.trips, 1);
	ck_assert_msg(strstr(ds.reason, "3 failures within") != NULL &&
			  strstr(ds.reason, "a consumer went away holding 5 "
					    "records") != NULL,
		      "%s", ds.reason);
	st_stop(&t);
}
END_TEST

static Suite *
supervisor_suite(void)
{
	Suite *s  = suite_create("dlq_supervisor");
	TCase *tc = tcase_create("supervisor");

	tcase_add_test(tc, test_poison_quarantined);
	tcase_add_test(tc, test_dlq_write_fails);
	tcase_add_test(tc, test_breaker);
	tcase_add_test(tc, test_breaker_abandoned);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(supervisor_suite());
	int      failed;

	if (getenv("MR_TEST_DEBUG") != NULL)
		mri_log_set_level(MRI_LOG_DEBUG);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
