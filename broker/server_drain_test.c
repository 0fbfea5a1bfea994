/*
 * The front door (broker/server.h) on the embedded cluster, as
 * server_test.c (broker/server_harness_test.h), on its way down and between
 * requests:
 *
 *  - drain with requests in flight (Kafka slow, or down): every request is
 *    answered, new ones are refused with MR_ESHUTDOWN, free returns;
 *  - reload of cloudevents.source/type while publishing: every record
 *    carries one reload's pair, never half of two;
 *  - what a context keeps between requests: after requests of 1 000
 *    records, no context holds room for more than SRV__KEEP_RECS records
 *    or a reply larger than SRV__KEEP_OUT (c17b69c: each of max_inflight
 *    contexts kept its largest request's, about 100 MB in all).
 *
 * Seeds are fixed; waits are bounded by a count of tries or by a generous
 * hang guard, never asserted as durations. Check forks a process per test:
 * each test starts its own cluster and server.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "bridge/embedded.h"
#include "broker/config.h"
#include "broker/server.h"
#include "broker/server_internal.h"
#include "broker/server_harness_test.h"
#include "core/log.h"
#include "mailroom/client.h"
#include "mailroom/consumer.h"
#include "proto/consume.h"
#include "proto/frame.h"

/* ---- drain ------------------------------------------------------------ */

#define T_DRAIN_SOCKS 4
#define T_DRAIN_CTXS 8

struct t_pending {
	nng_aio        *aio;
	nng_ctx         ctx;
	pthread_mutex_t *lock;
	pthread_cond_t  *cv;
	int            *done;
	int             rv;
	uint8_t         op;
	uint16_t        code;
	int             acks_ok, acks_failed;
};

static void
t_pending_cb(void *arg)
{
	struct t_pending *p = arg;
	nng_msg          *m;

	p->rv = nng_aio_result(p->aio);
	if (p->rv == 0) {
		struct mri_frame_hdr h;
		struct mri_ack_view *a;
		uint32_t             n;
		const char          *why, *msg;
		uint16_t             mlen;
		const uint8_t       *body;

		m = nng_aio_get_msg(p->aio);
		body = (const uint8_t *)nng_msg_body(m) + MRI_FRAME_HDR_LEN;
		if (mri_frame_parse_hdr(nng_msg_body(m), nng_msg_len(m), &h,
					&why) != MR_OK) {
			p->rv = -1;
		} else if ((p->op = h.op) == MRI_OP_ERROR) {
			mri_error_decode(body, h.body_len, &p->code, &msg,
					 &mlen);
		} else if (h.op == MRI_OP_PUBLISH_ACK &&
			   mri_ack_decode(body, h.body_len, &a, &n, &why) ==
			       MR_OK) {
			for (uint32_t i = 0; i < n; i++) {
				p->acks_ok += a[i].status == MR_OK &&
					      a[i].offset >= 0;
				p->acks_failed += a[i].status != MR_OK;
			}
			free(a);
		}
		nng_msg_free(m);
	}
	pthread_mutex_lock(p->lock);
	(*p->done)++;
	pthread_cond_broadcast(p->cv);
	pthread_mutex_unlock(p->lock);
}

struct t_drainer {
	struct mri_server *s;
	int                timeout_ms;
};

static void *
t_drain_main(void *arg)
{
	struct t_drainer *d = arg;

	mri_server_drain(d->s, d->timeout_ms);
	return NULL;
}

/* Requests in flight (Kafka slow, or down), then drain: each is answered,
 * a new one meanwhile is refused with MR_ESHUTDOWN, and free returns. */
static void
t_drain_in_flight(bool down)
{
	enum { N = T_DRAIN_SOCKS * T_DRAIN_CTXS };
	struct t_srv     t;
	pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t   cv   = PTHREAD_COND_INITIALIZER;
	int              done = 0, refused = 0, ok = 0, failed = 0;
	nng_socket       socks[T_DRAIN_SOCKS], probe;
	struct t_pending p[N];
	struct t_drainer d;
	pthread_t        dt;
	mr_client       *c;
	mr_message       m = {.topic = "st-drain", .payload = "w",
			      .payload_len = 1};
	mr_ack           ack;
	struct mri_wbuf  b;
	struct timespec  ts;

	t_srv_start(&t);
	// Warm up: the producer knows the cluster and the topic.
	c = t_client(t.url, 1);
	ck_assert_int_eq(mr_publish(c, &m, &ack), MR_OK);
	if (down)
		mri_embedded_broker_set_down(t.emb, 1, true);
	else
		mri_embedded_broker_set_rtt(t.emb, 1, 1500);
	memset(p, 0, sizeof(p));
	for (int s = 0; s < T_DRAIN_SOCKS; s++) {
		socks[s] = t_raw_open(t.url);
		for (int k = 0; k < T_DRAIN_CTXS; k++) {
			struct t_pending *q = &p[s * T_DRAIN_CTXS + k];
			nng_aio          *sa;
			nng_msg          *msg;

			*q = (struct t_pending){.lock = &lock, .cv = &cv,
						.done = &done};
			ck_assert_int_eq(nng_ctx_open(&q->ctx, socks[s]), 0);
			ck_assert_int_eq(nng_aio_alloc(&sa, NULL, NULL), 0);
			ck_assert_int_eq(
			    nng_aio_alloc(&q->aio, t_pending_cb, q), 0);
			nng_aio_set_timeout(q->aio, T_GUARD_MS);
			t_publish_frame(&b, "st-drain", 2,
					(uint64_t)(s * T_DRAIN_CTXS + k));
			ck_assert_int_eq(nng_msg_alloc(&msg, 0), 0);
			ck_assert_int_eq(nng_msg_append(msg, b.data, b.len),
					 0);
			mri_wbuf_fini(&b);
			nng_aio_set_msg(sa, msg);
			nng_ctx_send(q->ctx, sa);
			nng_aio_wait(sa);
			ck_assert_int_eq(nng_aio_result(sa), 0);
			nng_aio_free(sa);
			nng_ctx_recv(q->ctx, q->aio);
		}
	}
	// Every request is at the server: answered, or counted in flight.
	for (int i = 0;; i++) {
		long n = t_inflight(c) - 1;
		int  answered;

		pthread_mutex_lock(&lock);
		answered = done;
		pthread_mutex_unlock(&lock);
		if (n + answered >= N)
			break;
		ck_assert_msg(i < 4000, "%ld in flight, %d answered", n,
			      answered);
	}
	mr_client_free(c);
	d = (struct t_drainer){t.s, down ? 1000 : 10000};
	ck_assert_int_eq(pthread_create(&dt, NULL, t_drain_main, &d), 0);
	// While it drains, a new request is refused (bounded tries: until
	// the drain has begun).
	probe = t_raw_open(t.url);
	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_STATUS);
	mri_frame_end(&b);
	for (int i = 0; i < 4000 && refused == 0; i++) {
		uint8_t  op;
		uint16_t code;

		ck_assert_int_eq(t_raw_call(probe, b.data, b.len, &op, &code),
				 0);
		if (op == MRI_OP_ERROR) {
			ck_assert_int_eq(code, MR_ESHUTDOWN);
			refused = 1;
		}
	}
	mri_wbuf_fini(&b);
	ck_assert_msg(refused, "no request was refused while draining");
	pthread_join(dt, NULL);
	// Every request in flight was answered.
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += T_GUARD_MS / 1000;
	pthread_mutex_lock(&lock);
	while (done < N && pthread_cond_timedwait(&cv, &lock, &ts) == 0)
		;
	ck_assert_int_eq(done, N);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(p[i].rv == 0, "request %d: no reply (%s)", i,
			      nng_strerror(p[i].rv));
		ck_assert_msg(p[i].op == MRI_OP_PUBLISH_ACK ||
				  (p[i].op == MRI_OP_ERROR &&
				   p[i].code == MR_ESHUTDOWN),
			      "request %d: op 0x%x code %d", i, p[i].op,
			      p[i].code);
		ok += p[i].acks_ok;
		failed += p[i].acks_failed;
	}
	if (down)
		ck_assert_int_eq(ok, 0); // nothing could be confirmed
	else
		ck_assert_int_eq(ok, 2 * N);
	(void)failed;
	nng_close(probe);
	for (int s = 0; s < T_DRAIN_SOCKS; s++)
		nng_close(socks[s]);
	for (int i = 0; i < N; i++)
		nng_aio_free(p[i].aio);
	t_srv_stop(&t, true); // free returns
}

START_TEST(test_drain_answers_in_flight)
{
	t_drain_in_flight(false);
}
END_TEST

START_TEST(test_drain_kafka_down_answers_in_flight)
{
	t_drain_in_flight(true);
}
END_TEST

/* ---- reload ----------------------------------------------------------- */

#define T_RELOAD_PUBLISHERS 3
#define T_RELOAD_MSGS 60 /* per publisher */

struct t_reload_pub {
	const char *url;
	int         index;
	int         failures;
	int32_t     partition;
	atomic_int *running;
};

static void *
t_reload_publisher(void *arg)
{
	struct t_reload_pub *rp = arg;
	mr_client           *c  = t_client(rp->url, 4);

	for (int i = 0; i < T_RELOAD_MSGS; i++) {
		char       pay[32];
		mr_message m = {.topic = "st-reload", .key = "k", .key_len = 1,
				.payload = pay};
		mr_ack     ack;

		m.payload_len = (size_t)snprintf(pay, sizeof(pay), "%d/%d",
						 rp->index, i);
		if (mr_publish(c, &m, &ack) != MR_OK)
			rp->failures++;
		rp->partition = ack.partition;
	}
	mr_client_free(c);
	atomic_fetch_sub(rp->running, 1);
	return NULL;
}

static bool
t_header_is(rd_kafka_headers_t *h, const char *name, const char *want)
{
	const void *v;
	size_t      n;

	return rd_kafka_header_get_last(h, name, &v, &n) == 0 &&
	       n == strlen(want) && memcmp(v, want, n) == 0;
}

START_TEST(test_reload_while_publishing)
{
	struct t_srv        t;
	struct mri_config   cfg[2];
	struct t_reload_pub rp[T_RELOAD_PUBLISHERS];
	pthread_t           th[T_RELOAD_PUBLISHERS];
	atomic_int          running = T_RELOAD_PUBLISHERS;
	long                reloads = 0;
	mr_client          *c;
	mr_message          m = {.topic = "st-reload", .key = "k",
				 .key_len = 1, .payload = "last",
				 .payload_len = 4};
	mr_ack              ack;
	rd_kafka_conf_t    *kc = rd_kafka_conf_new();
	rd_kafka_t         *rk;
	rd_kafka_topic_partition_list_t *l;
	char                errstr[256];
	int                 got = 0, pairs[2] = {0, 0}, last = 0;
	const int           total = T_RELOAD_PUBLISHERS * T_RELOAD_MSGS + 1;

	t_srv_start(&t);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(mri_config_init(&cfg[i]), MR_OK);
		t_set(&cfg[i], "cloudevents.source", i ? "src-b" : "src-a",
		      true);
		t_set(&cfg[i], "cloudevents.type", i ? "type-b" : "type-a",
		      true);
	}
	mri_server_reload(t.s, &cfg[0]);
	for (int i = 0; i < T_RELOAD_PUBLISHERS; i++) {
		rp[i] = (struct t_reload_pub){t.url, i, 0, -1, &running};
		ck_assert_int_eq(pthread_create(&th[i], NULL,
						t_reload_publisher, &rp[i]),
				 0);
	}
	// The daemon's main thread reloads; here, as often as it can.
	while (atomic_load(&running) > 0)
		mri_server_reload(t.s, &cfg[reloads++ % 2]);
	for (int i = 0; i < T_RELOAD_PUBLISHERS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(rp[i].failures, 0);
	}
	// The last reload is the one a new record carries.
	t_set(&cfg[0], "cloudevents.source", "src-last", true);
	t_set(&cfg[0], "cloudevents.type", "type-last", true);
	mri_server_reload(t.s, &cfg[0]);
	c = t_client(t.url, 1);
	ck_assert_int_eq(mr_publish(c, &m, &ack), MR_OK);
	mr_client_free(c);
	// Read the key's partition back: every record has one reload's
	// pair, never the source of one and the type of another.
	ck_assert_int_eq(rd_kafka_conf_set(kc, "bootstrap.servers",
					   mri_embedded_bootstraps(t.emb),
					   errstr, sizeof(errstr)),
			 RD_KAFKA_CONF_OK);
	rd_kafka_conf_set(kc, "group.id", "st-reader", NULL, 0);
	rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
	ck_assert_ptr_nonnull(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr,
						sizeof(errstr)));
	rd_kafka_poll_set_consumer(rk);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, "st-reload", ack.partition)
	    ->offset = RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
	rd_kafka_topic_partition_list_destroy(l);
	for (int i = 0; i < 600 && got < total; i++) {
		rd_kafka_message_t *km = rd_kafka_consumer_poll(rk, 500);
		rd_kafka_headers_t *h;

		if (km == NULL)
			continue;
		if (km->err == 0) {
			ck_assert_int_eq(rd_kafka_message_headers(km, &h), 0);
			if (t_header_is(h, "ce_source", "src-a") &&
			    t_header_is(h, "ce_type", "type-a"))
				pairs[0]++;
			else if (t_header_is(h, "ce_source", "src-b") &&
				 t_header_is(h, "ce_type", "type-b"))
				pairs[1]++;
			else if (km->offset == ack.offset &&
				 t_header_is(h, "ce_source", "src-last") &&
				 t_header_is(h, "ce_type", "type-last"))
				last++;
			else
				ck_abort_msg("offset %lld: a mixed envelope",
					     (long long)km->offset);
			got++;
		}
		rd_kafka_message_destroy(km);
	}
	ck_assert_int_eq(got, total);
	ck_assert_int_eq(last, 1);
	ck_assert_int_eq(pairs[0] + pairs[1], total - 1);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	for (int i = 0; i < 2; i++)
		mri_config_fini(&cfg[i]);
	t_srv_stop(&t, false);
}
END_TEST

/* ---- what a context keeps ------------------------------------------- */

#define T_KEPT_REQUESTS 12 /* more than the contexts nng turns through */
#define T_KEPT_RECORDS 1000

/* Requests of 1 000 records, one after the other on one socket (nng hands
 * them to the contexts in turn): once each is answered, no context keeps
 * room for more than SRV__KEEP_RECS records or a reply buffer larger than
 * SRV__KEEP_OUT. Read after the last reply, with nothing in flight: a
 * context frees its room before it sends its reply. */
START_TEST(test_kept_room_bounded)
{
	struct t_srv    t;
	struct mri_wbuf b;
	nng_socket      raw;

	t_srv_start(&t);
	raw = t_raw_open(t.url);
	for (int i = 0; i < T_KEPT_REQUESTS; i++) {
		uint8_t  op;
		uint16_t code;

		t_publish_frame(&b, "st-kept", T_KEPT_RECORDS, (uint64_t)i);
		ck_assert_int_eq(t_raw_call(raw, b.data, b.len, &op, &code), 0);
		ck_assert_msg(op == MRI_OP_PUBLISH_ACK,
			      "request %d: op %u, error %u", i, op, code);
		mri_wbuf_fini(&b);
	}
	for (size_t i = 0; i < t.s->nctx; i++) {
		const struct srv_ctx *c = &t.s->ctxs[i];

		ck_assert_msg(c->views_cap <= SRV__KEEP_RECS &&
				  c->recs_cap <= SRV__KEEP_RECS &&
				  c->hdrs_cap <= 4 * SRV__KEEP_RECS &&
				  c->bpr_cap <= SRV__KEEP_RECS &&
				  c->out.cap <= SRV__KEEP_OUT,
			      "context %zu keeps room for %u views, %u "
			      "records, %zu headers, %u backpressure entries "
			      "and %zu reply bytes",
			      i, c->views_cap, c->recs_cap, c->hdrs_cap,
			      c->bpr_cap, c->out.cap);
	}
	nng_close(raw);
	t_srv_stop(&t, false);
}
END_TEST

int
main(void)
{
	// A case per test, so that CK_RUN_CASE=drain runs one.
	const struct {
		const char  *name;
		const TTest *test;
	} cases[] = {
	    {"drain", test_drain_answers_in_flight},
	    {"drain_kafka_down", test_drain_kafka_down_answers_in_flight},
	    {"reload", test_reload_while_publishing},
	    {"kept", test_kept_room_bounded},
	};
	Suite   *s = suite_create("server_drain");
	SRunner *r;
	int      failed;

	mri_log_set_level(getenv("T_DEBUG") ? MRI_LOG_DEBUG : MRI_LOG_ERR);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_set_timeout(tc, 300);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
