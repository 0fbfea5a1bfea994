/*
 * The admin part on librdkafka's mock cluster, in process: its replies,
 * what consumers.resume and fault.produce_errors refuse, concurrent
 * requests, a slow operation that does not hold another, drain
 * waiting for what runs, the bounded queue, and topics.read.
 *
 * The slow operation is fault.producer_fatal with a hook (the test's, in
 * place of the producer's) that blocks until the test releases it.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/admin.h"
#include "bridge/embedded.h"
#include "consumers/lag.h"
#include "core/kafka.h"
#include "mailroom/error.h"

static struct mri_embedded *emb;

/* ---- the blocking hook and the replies ---------------------------------- */

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  cv  = PTHREAD_COND_INITIALIZER;
static bool            released;
static int             blocked; /* hooks now blocking */

static int
hook_block(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mtx);
	blocked++;
	pthread_cond_broadcast(&cv);
	while (!released)
		pthread_cond_wait(&cv, &mtx);
	blocked--;
	pthread_mutex_unlock(&mtx);
	return MR_OK;
}

static void
release(void)
{
	pthread_mutex_lock(&mtx);
	released = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mtx);
}

#define MAX_REPLIES 64

struct replies {
	json_t *v[MAX_REPLIES];
	int     n;
};

static void
on_done(void *arg, json_t *reply)
{
	struct replies *r = arg;

	pthread_mutex_lock(&mtx);
	ck_assert_int_lt(r->n, MAX_REPLIES);
	r->v[r->n++] = reply;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mtx);
}

/* Wait up to \p ms for \p r to hold \p n replies (or for \p n hooks to
 * block, with blocking set). @returns whether they came. */
static bool
wait_for(struct replies *r, int n, int ms, bool blocking)
{
	struct timespec ts;
	bool            ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mtx);
	while (!(blocking ? blocked >= n : r->n >= n) &&
	       pthread_cond_timedwait(&cv, &mtx, &ts) == 0)
		;
	ok = blocking ? blocked >= n : r->n >= n;
	pthread_mutex_unlock(&mtx);
	return ok;
}

static void
replies_free(struct replies *r)
{
	for (int i = 0; i < r->n; i++)
		json_decref(r->v[i]);
	r->n = 0;
}

static struct mri_admin *
admin_new(int workers, int queue_max)
{
	struct mri_admin_conf c = {
	    .bootstrap       = mri_embedded_bootstraps(emb),
	    .emb             = emb,
	    .fault_injection = true,
	    .timeout_ms      = 10000,
	    .workers         = workers,
	    .queue_max       = queue_max,
	    .inject_fatal    = hook_block,
	};
	struct mri_admin *a;
	char              err[256];

	ck_assert_msg(mri_admin_new(&a, &c, err, sizeof(err)) == MR_OK, "%s",
		      err);
	return a;
}

static json_t *
req(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	ck_assert_ptr_nonnull(j);
	return j;
}

static void
setup(void)
{
	char err[256];

	ck_assert_msg(mri_embedded_start(&emb, 1, err, sizeof(err)) == MR_OK,
		      "%s", err);
	released = false;
	blocked  = 0;
}

static void
teardown(void)
{
	release();
	mri_embedded_stop(emb);
	emb = NULL;
}

/* The consume side as consumers.resume sees it: group "g1" has two
 * subscriptions, one of them tripped. */
static size_t
hook_resume(void *arg, const char *group, size_t *resumed)
{
	(void)arg;
	*resumed = strcmp(group, "g1") == 0 ? 1 : 0;
	return strcmp(group, "g1") == 0 ? 2 : 0;
}

/* \p a's answer to \p text is ok (\p code ""), or the refusal \p code
 * with a sentence. */
static void
expect(struct mri_admin *a, const char *text, const char *code)
{
	json_t     *q = req(text);
	json_t     *r = mri_admin_run(a, q);
	const char *e = json_string_value(json_object_get(r, "error"));

	if (*code == '\0') {
		ck_assert_msg(json_is_true(json_object_get(r, "ok")),
			      "%s: refused (%s)", text, e ? e : "?");
	} else {
		ck_assert_msg(e != NULL && strcmp(e, code) == 0,
			      "%s: %s, want %s", text, e ? e : "ok", code);
		ck_assert_msg(json_string_length(json_object_get(r, "message")) >
				  0,
			      "%s: no message", text);
	}
	json_decref(r);
	json_decref(q);
}

/* ---- cases -------------------------------------------------------------- */

START_TEST(replies)
{
	struct mri_admin *a = admin_new(0, 0);
	json_t           *r, *q;
	char             *text;

	q = req("{\"op\":\"topics.create\",\"topic\":\"t1\",\"partitions\":3}");
	r    = mri_admin_run(a, q);
	text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(text, "{\"config\":{},\"ok\":true,\"partitions\":3,"
			       "\"replication\":1,\"topic\":\"t1\"}");
	free(text);
	json_decref(r);
	r = mri_admin_run(a, q);
	ck_assert_str_eq(json_string_value(json_object_get(r, "error")),
			 "MR_EEXIST");
	json_decref(r);
	json_decref(q);

	q = req("{\"op\":\"topics.describe\",\"topic\":\"t1\"}");
	r = mri_admin_run(a, q);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	ck_assert_int_eq(
	    json_integer_value(json_object_get(r, "partition_count")), 3);
	ck_assert_int_eq(json_array_size(json_object_get(r, "partitions")),
			 3);
	json_decref(r);
	json_decref(q);

	q = req("{\"op\":\"no.such\"}");
	r = mri_admin_run(a, q);
	ck_assert_str_eq(json_string_value(json_object_get(r, "error")),
			 "MR_EUNKNOWNOP");
	json_decref(r);
	json_decref(q);
	mri_admin_free(a);
}
END_TEST

/* consumers.resume and fault.produce_errors: what they refuse, with a
 * sentence, and what they do. */
START_TEST(resume_and_produce_errors)
{
	struct mri_admin *a = admin_new(0, 0);
	struct mri_admin_conf c = {
	    .bootstrap       = mri_embedded_bootstraps(emb),
	    .emb             = emb,
	    .fault_injection = true,
	    .timeout_ms      = 10000,
	    .resume          = hook_resume,
	};
	struct mri_admin *b;
	char              err[256];
	json_t           *q, *r;

	// No consume side: nothing to resume.
	expect(a, "{\"op\":\"consumers.resume\",\"group\":\"g1\"}",
	       "MR_ENOTSUP");
	ck_assert_msg(mri_admin_new(&b, &c, err, sizeof(err)) == MR_OK, "%s",
		      err);
	expect(b, "{\"op\":\"consumers.resume\"}", "MR_EINVAL");
	expect(b, "{\"op\":\"consumers.resume\",\"group\":\"\"}",
	       "MR_EINVAL");
	expect(b, "{\"op\":\"consumers.resume\",\"group\":\"nobody\"}",
	       "MR_ENOENT");
	q = req("{\"op\":\"consumers.resume\",\"group\":\"g1\"}");
	r = mri_admin_run(b, q);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	ck_assert_int_eq(
	    json_integer_value(json_object_get(r, "subscriptions")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "resumed")), 1);
	json_decref(r);
	json_decref(q);
	mri_admin_free(b);

	expect(a, "{\"op\":\"fault.produce_errors\"}", "MR_EINVAL");
	expect(a, "{\"op\":\"fault.produce_errors\",\"count\":0,\"error\":29}",
	       "MR_EINVAL");
	expect(a,
	       "{\"op\":\"fault.produce_errors\",\"count\":1001,\"error\":29}",
	       "MR_EINVAL");
	expect(a, "{\"op\":\"fault.produce_errors\",\"count\":1,\"error\":0}",
	       "MR_EINVAL");
	expect(a,
	       "{\"op\":\"fault.produce_errors\",\"count\":\"3\",\"error\":29}",
	       "MR_EINVAL");
	expect(a, "{\"op\":\"fault.produce_errors\",\"count\":1,\"error\":29}",
	       "");
	mri_admin_free(a);
}
END_TEST

START_TEST(concurrent_requests)
{
	struct mri_admin *a  = admin_new(4, 32);
	struct replies    rs = {0};
	char              text[128];
	json_t           *q, *r, *topics;

	for (int i = 0; i < 16; i++) {
		snprintf(text, sizeof(text),
			 "{\"op\":\"topics.create\",\"topic\":\"c%02d\"}", i);
		ck_assert_int_eq(mri_admin_submit(a, req(text), on_done, &rs),
				 MR_OK);
		ck_assert_int_eq(mri_admin_submit(
				     a, req("{\"op\":\"topics.list\"}"),
				     on_done, &rs),
				 MR_OK);
	}
	ck_assert(wait_for(&rs, 32, 30000, false));
	for (int i = 0; i < rs.n; i++)
		ck_assert_msg(json_is_true(json_object_get(rs.v[i], "ok")),
			      "reply %d is not ok", i);
	q      = req("{\"op\":\"topics.list\"}");
	r      = mri_admin_run(a, q);
	topics = json_object_get(r, "topics");
	ck_assert_int_eq(json_array_size(topics), 16);
	json_decref(r);
	json_decref(q);
	replies_free(&rs);
	mri_admin_free(a);
}
END_TEST

START_TEST(slow_does_not_block_another)
{
	struct mri_admin *a    = admin_new(2, 8);
	struct replies    slow = {0}, fast = {0};

	ck_assert_int_eq(
	    mri_admin_submit(a, req("{\"op\":\"fault.producer_fatal\"}"),
			     on_done, &slow),
	    MR_OK);
	ck_assert(wait_for(NULL, 1, 10000, true));
	ck_assert_int_eq(mri_admin_submit(a, req("{\"op\":\"topics.list\"}"),
					  on_done, &fast),
			 MR_OK);
	ck_assert_msg(wait_for(&fast, 1, 10000, false),
		      "topics.list waited for a blocked fault operation");
	ck_assert_int_eq(slow.n, 0);
	release();
	ck_assert(wait_for(&slow, 1, 10000, false));
	ck_assert(json_is_true(json_object_get(slow.v[0], "ok")));
	replies_free(&slow);
	replies_free(&fast);
	mri_admin_free(a);
}
END_TEST

static void *
release_later(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 300 * 1000000L};

	nanosleep(&ts, NULL);
	release();
	return NULL;
}

START_TEST(drain_waits_for_running)
{
	struct mri_admin *a  = admin_new(1, 8);
	struct replies    rs = {0};
	pthread_t         t;

	ck_assert_int_eq(
	    mri_admin_submit(a, req("{\"op\":\"fault.producer_fatal\"}"),
			     on_done, &rs),
	    MR_OK);
	ck_assert_int_eq(mri_admin_submit(a, req("{\"op\":\"topics.list\"}"),
					  on_done, &rs),
			 MR_OK);
	ck_assert(wait_for(NULL, 1, 10000, true));
	// Bounded: the blocked operation is still running.
	ck_assert(!mri_admin_drain(a, 200));
	ck_assert_int_eq(rs.n, 0);
	// Draining refuses what comes now; the caller keeps the request.
	{
		json_t *q = req("{\"op\":\"topics.list\"}");

		ck_assert_int_eq(mri_admin_submit(a, q, on_done, &rs),
				 MR_ESHUTDOWN);
		json_decref(q);
	}
	ck_assert_int_eq(pthread_create(&t, NULL, release_later, NULL), 0);
	ck_assert(mri_admin_drain(a, 10000));
	// Both answered before drain returned.
	pthread_mutex_lock(&mtx);
	ck_assert_int_eq(rs.n, 2);
	pthread_mutex_unlock(&mtx);
	pthread_join(t, NULL);
	replies_free(&rs);
	mri_admin_free(a);
}
END_TEST

START_TEST(queue_full_is_refused)
{
	struct mri_admin *a  = admin_new(1, 2);
	struct replies    rs = {0};
	json_t           *q;

	ck_assert_int_eq(
	    mri_admin_submit(a, req("{\"op\":\"fault.producer_fatal\"}"),
			     on_done, &rs),
	    MR_OK);
	ck_assert(wait_for(NULL, 1, 10000, true));
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(
		    mri_admin_submit(a, req("{\"op\":\"topics.list\"}"),
				     on_done, &rs),
		    MR_OK);
	q = req("{\"op\":\"topics.list\"}");
	ck_assert_int_eq(mri_admin_submit(a, q, on_done, &rs), MR_EBUSY);
	json_decref(q);
	release();
	ck_assert(wait_for(&rs, 3, 10000, false));
	replies_free(&rs);
	mri_admin_free(a);
}
END_TEST

START_TEST(free_answers_what_is_queued)
{
	struct mri_admin *a  = admin_new(1, 4);
	struct replies    rs = {0};
	pthread_t         t;

	ck_assert_int_eq(
	    mri_admin_submit(a, req("{\"op\":\"fault.producer_fatal\"}"),
			     on_done, &rs),
	    MR_OK);
	ck_assert(wait_for(NULL, 1, 10000, true));
	ck_assert_int_eq(mri_admin_submit(a, req("{\"op\":\"topics.list\"}"),
					  on_done, &rs),
			 MR_OK);
	ck_assert_int_eq(pthread_create(&t, NULL, release_later, NULL), 0);
	// Waits for the running one; the queued one may run in the drain's
	// second or be answered MR_ESHUTDOWN: either way it is answered.
	mri_admin_free(a);
	pthread_join(t, NULL);
	ck_assert_int_eq(rs.n, 2);
	replies_free(&rs);
}
END_TEST

/* lag.list: what it refuses, before and after asking the monitor, and
 * its answer's shape (the numbers: consumers/lag_test.c). */
START_TEST(lag_list)
{
	struct mri_admin     *a = admin_new(0, 0);
	struct mri_admin     *b;
	struct mri_lag       *lag;
	struct mri_lag_conf   lc = {.interval_ms = 100};
	struct mri_admin_conf c  = {
	     .bootstrap  = mri_embedded_bootstraps(emb),
	     .emb        = emb,
	     .timeout_ms = 10000,
	};
	rd_kafka_conf_t *tmpl;
	json_t          *q, *r;
	char             err[256];

	expect(a, "{\"op\":\"lag.list\"}", "MR_ENOTSUP");
	mri_admin_free(a);
	tmpl = mri_kafka_conf_new(c.bootstrap, "admin_test", err, sizeof(err));
	ck_assert_ptr_nonnull(tmpl);
	ck_assert_msg(mri_lag_new(&lag, tmpl, &lc, err, sizeof(err)) == MR_OK,
		      "%s", err);
	rd_kafka_conf_destroy(tmpl);
	c.lag = lag;
	ck_assert_msg(mri_admin_new(&b, &c, err, sizeof(err)) == MR_OK, "%s",
		      err);
	expect(b, "{\"op\":\"lag.list\",\"group\":\"\"}", "MR_EINVAL");
	expect(b, "{\"op\":\"lag.list\",\"group\":7}", "MR_EINVAL");
	expect(b, "{\"op\":\"lag.list\",\"topic\":\"a/b\"}", "MR_EINVAL");
	expect(b, "{\"op\":\"lag.list\",\"refresh\":1}", "MR_EINVAL");
	expect(b, "{\"op\":\"lag.list\",\"timeout_ms\":0}", "MR_EINVAL");
	expect(b, "{\"op\":\"lag.nope\"}", "MR_EUNKNOWNOP");
	expect(b, "{\"op\":\"lag.list\",\"group\":\"g\",\"topic\":\"nope\"}",
	       "MR_ENOENT");
	expect(b, "{\"op\":\"topics.create\",\"topic\":\"lt\",\"partitions\":2}",
	       "");
	q = req("{\"op\":\"lag.list\",\"group\":\"g\",\"topic\":\"lt\","
		"\"refresh\":true}");
	r = mri_admin_run(b, q);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	ck_assert_int_eq(json_array_size(json_object_get(r, "partitions")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(r, "groups"), 0),
			     "state")),
			 "no_offsets");
	ck_assert(json_is_null(json_object_get(
	    json_array_get(json_object_get(r, "partitions"), 0), "committed")));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "interval_ms")),
			 100);
	json_decref(r);
	json_decref(q);
	mri_admin_free(b);
	mri_lag_free(lag);
}
END_TEST

/* Produce \p n records to \p topic partition \p p: key "k<i>" (none for
 * the first), payload "v<i>" (two bytes not text for the last). */
static void
produce(const char *topic, int32_t p, int n)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t      *rk;
	char             err[256], k[16], v[16];

	conf = mri_kafka_conf_new(mri_embedded_bootstraps(emb), "admin_test",
				  err, sizeof(err));
	ck_assert_ptr_nonnull(conf);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	for (int i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "k%d", i);
		int vl = snprintf(v, sizeof(v), "v%d", i);

		if (i == n - 1) {
			v[0] = '\0';
			v[1] = '\x01';
			vl   = 2;
		}
		ck_assert_int_eq(
		    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
				      RD_KAFKA_V_PARTITION(p),
				      RD_KAFKA_V_KEY(i ? k : NULL,
						     i ? (size_t)kl : 0),
				      RD_KAFKA_V_VALUE(v, (size_t)vl),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_END),
		    RD_KAFKA_RESP_ERR_NO_ERROR);
	}
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(rk);
}

static json_int_t
int_of(json_t *o, const char *name)
{
	json_t *j = json_object_get(o, name);

	ck_assert_msg(json_is_integer(j), "no integer %s", name);
	return json_integer_value(j);
}

/* topics.read: pages by count and bytes, the end, bytes that are not
 * text, an empty partition, and what it refuses. */
START_TEST(topics_read)
{
	struct mri_admin *a = admin_new(0, 0);
	json_t           *q, *r, *recs, *x;

	expect(a, "{\"op\":\"topics.create\",\"topic\":\"rd\","
		  "\"partitions\":2}",
	       "");
	produce("rd", 1, 5);
	q = req("{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":1,"
		"\"max_records\":2}");
	r = mri_admin_run(a, q);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	recs = json_object_get(r, "records");
	ck_assert_int_eq(json_array_size(recs), 2);
	ck_assert_int_eq(int_of(r, "log_start"), 0);
	ck_assert_int_eq(int_of(r, "high_watermark"), 5);
	ck_assert_int_eq(int_of(r, "next"), 2);
	ck_assert(json_is_false(json_object_get(r, "end")));
	x = json_array_get(recs, 0);
	ck_assert_int_eq(int_of(x, "offset"), 0);
	ck_assert(json_is_null(json_object_get(x, "key")));
	ck_assert_str_eq(json_string_value(json_object_get(x, "payload")),
			 "v0");
	x = json_array_get(recs, 1);
	ck_assert_str_eq(json_string_value(json_object_get(x, "key")), "k1");
	json_decref(r);
	json_decref(q);

	q = req("{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":1,"
		"\"offset\":2}");
	r = mri_admin_run(a, q);
	recs = json_object_get(r, "records");
	ck_assert_int_eq(json_array_size(recs), 3);
	ck_assert_int_eq(int_of(r, "next"), 5);
	ck_assert(json_is_true(json_object_get(r, "end")));
	x = json_array_get(recs, 2);
	ck_assert_int_eq(int_of(x, "offset"), 4);
	ck_assert_str_eq(json_string_value(json_object_get(x, "payload")),
			 "AAE=");
	ck_assert_str_eq(
	    json_string_value(json_object_get(x, "payload_encoding")),
	    "base64");
	json_decref(r);
	json_decref(q);

	// One record at least, however small the byte budget.
	q = req("{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":1,"
		"\"offset\":1,\"max_bytes\":1}");
	r = mri_admin_run(a, q);
	ck_assert_int_eq(json_array_size(json_object_get(r, "records")), 1);
	ck_assert_int_eq(int_of(r, "next"), 2);
	json_decref(r);
	json_decref(q);

	q = req("{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":0}");
	r = mri_admin_run(a, q);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	ck_assert_int_eq(json_array_size(json_object_get(r, "records")), 0);
	ck_assert_int_eq(int_of(r, "next"), 0);
	ck_assert(json_is_true(json_object_get(r, "end")));
	json_decref(r);
	json_decref(q);

	expect(a, "{\"op\":\"topics.read\",\"topic\":\"rd\"}", "MR_EINVAL");
	expect(a, "{\"op\":\"topics.read\",\"partition\":0}", "MR_EINVAL");
	expect(a,
	       "{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":2}",
	       "MR_EINVAL");
	expect(a,
	       "{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":0,"
	       "\"offset\":-1}",
	       "MR_EINVAL");
	expect(a,
	       "{\"op\":\"topics.read\",\"topic\":\"rd\",\"partition\":0,"
	       "\"max_records\":0}",
	       "MR_EINVAL");
	expect(a,
	       "{\"op\":\"topics.read\",\"topic\":\"nope\",\"partition\":0}",
	       "MR_ENOENT");
	mri_admin_free(a);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("admin");
	TCase   *tc = tcase_create("embedded");
	SRunner *r;
	int      failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, replies);
	tcase_add_test(tc, resume_and_produce_errors);
	tcase_add_test(tc, concurrent_requests);
	tcase_add_test(tc, slow_does_not_block_another);
	tcase_add_test(tc, drain_waits_for_running);
	tcase_add_test(tc, queue_full_is_refused);
	tcase_add_test(tc, free_answers_what_is_queued);
	tcase_add_test(tc, lag_list);
	tcase_add_test(tc, topics_read);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
