/*
 * The consumer API's retry and dead-letter options and its reject, against
 * a stand-in for mailroomd in this process (an nng rep0 socket on inproc
 * that logs what it is sent): mr_subscribe sends the options given (and
 * only those) and refuses bad ones before sending anything,
 * mr_consumer_resubscribe sends them again, mr_consumer_reject is a SETTLE
 * of kind 3, and an mr_consume_run handler that returns MR_EREJECT has its
 * delivery rejected, not nacked.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "mailroom/consumer.h"
#include "proto/consume.h"
#include "proto/frame.h"

#define T_URL "inproc://mailroom-consumer-opts-test"
#define T_LOG 16
#define T_FETCHED 6 /* messages of the one FETCH_REPLY that has any */

/* What the stand-in was sent. */
struct t_settle {
	uint8_t  kind;
	char     reason[128];
	uint64_t handles[T_FETCHED];
	size_t   n;
};

static struct {
	nng_socket      s;
	pthread_t       th;
	pthread_mutex_t lock;
	char            sub[T_LOG][1024]; /* SUBSCRIBE bodies */
	int             nsub;
	struct t_settle settle[T_LOG];
	int             nsettle;
	bool            fetched; /* the FETCH_REPLY with messages went */
} t_srv;

static void
t_reply(nng_msg *m, struct mri_wbuf *b)
{
	nng_msg_clear(m);
	nng_msg_append(m, b->data, b->len);
	if (nng_sendmsg(t_srv.s, m, 0) != 0)
		nng_msg_free(m);
	mri_wbuf_fini(b);
}

/* A FETCH_REPLY: the first has T_FETCHED messages whose payloads say what
 * the handler does with them ("ok", "reject", "fail"), the others none. */
static void
t_fetch_reply(struct mri_wbuf *b)
{
	static const char *what[] = {"ok", "reject", "fail"};
	uint32_t           n      = 0;
	char               id[32];

	pthread_mutex_lock(&t_srv.lock);
	if (!t_srv.fetched)
		n = T_FETCHED;
	t_srv.fetched = true;
	pthread_mutex_unlock(&t_srv.lock);
	if (n == 0)
		nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
	mri_frame_begin(b, MRI_OP_FETCH_REPLY);
	mri_wbuf_u32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		struct mri_msg_view v = {
		    .handle       = i + 1,
		    .topic        = "t",
		    .topic_len    = 1,
		    .offset       = i,
		    .timestamp_ms = -1,
		    .attempt      = 1,
		    .flags        = MRI_MSG_F_KEY,
		    .id           = id,
		    .key          = "k",
		    .key_len      = 1,
		    .payload      = what[i % 3],
		    .payload_len  = (uint32_t)strlen(what[i % 3]),
		};

		v.id_len = (uint8_t)snprintf(id, sizeof(id), "t/0/%u", i);
		mri_msg_encode(b, &v, NULL);
	}
	mri_frame_end(b);
}

static void *
t_serve(void *arg)
{
	nng_msg *m;

	(void)arg;
	while (nng_recvmsg(t_srv.s, &m, 0) == 0) {
		struct mri_frame_hdr h;
		struct mri_settle    st;
		struct mri_wbuf      b;
		const uint8_t       *body = (const uint8_t *)nng_msg_body(m) +
					MRI_FRAME_HDR_LEN;
		const char          *why;

		mri_wbuf_init(&b);
		ck_assert_int_eq(mri_frame_parse_hdr(nng_msg_body(m),
						     nng_msg_len(m), &h, &why),
				 MR_OK);
		pthread_mutex_lock(&t_srv.lock);
		switch (h.op) {
		case MRI_OP_SUBSCRIBE:
			if (t_srv.nsub < T_LOG)
				snprintf(t_srv.sub[t_srv.nsub++],
					 sizeof(t_srv.sub[0]), "%.*s",
					 (int)h.body_len, (const char *)body);
			mri_frame_begin(&b, MRI_OP_SUBSCRIBE_REPLY);
			mri_wbuf_put(&b, "{\"session\":7,\"credit\":16}", 25);
			mri_frame_end(&b);
			break;
		case MRI_OP_SETTLE: {
			struct t_settle *x = &t_srv.settle[t_srv.nsettle];

			ck_assert_int_eq(mri_settle_decode(body, h.body_len,
							   &st, &why),
					 MR_OK);
			ck_assert_int_lt(t_srv.nsettle, T_LOG);
			x->kind = st.kind;
			snprintf(x->reason, sizeof(x->reason), "%.*s",
				 (int)st.reason_len, st.reason);
			for (uint32_t i = 0; i < st.range_count; i++) {
				struct mri_range r;

				mri_settle_range(&st, i, &r);
				for (uint32_t j = 0; j < r.count; j++)
					if (x->n < T_FETCHED)
						x->handles[x->n++] =
						    r.first + j;
			}
			t_srv.nsettle++;
			mri_settle_reply_encode(&b, (uint32_t)st.handles, NULL,
						0);
			break;
		}
		case MRI_OP_FETCH:
			pthread_mutex_unlock(&t_srv.lock);
			t_fetch_reply(&b);
			pthread_mutex_lock(&t_srv.lock);
			break;
		default: // UNSUBSCRIBE
			mri_frame_begin(&b, (uint8_t)(h.op | MRI_OP_REPLY));
			mri_frame_end(&b);
			break;
		}
		pthread_mutex_unlock(&t_srv.lock);
		t_reply(m, &b);
	}
	return NULL;
}

static mr_client *
t_setup(void)
{
	mr_client *c;
	char       err[256];

	memset(&t_srv, 0, sizeof(t_srv));
	pthread_mutex_init(&t_srv.lock, NULL);
	ck_assert_int_eq(nng_rep0_open(&t_srv.s), 0);
	ck_assert_int_eq(nng_listen(t_srv.s, T_URL, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&t_srv.th, NULL, t_serve, NULL), 0);
	ck_assert_msg(mr_client_new(&c, T_URL, NULL, err, sizeof(err)) ==
			  MR_OK,
		      "%s", err);
	return c;
}

static void
t_teardown(mr_client *c)
{
	mr_client_free(c);
	nng_close(t_srv.s);
	pthread_join(t_srv.th, NULL);
	pthread_mutex_destroy(&t_srv.lock);
}

START_TEST(test_subscribe_sends_options)
{
	const char       *topics[] = {"t"};
	char             *dlq      = strdup("t.poison");
	mr_client        *c        = t_setup();
	mr_consumer      *s;
	mr_subscribe_opts o = {
	    .set                = MR_SUB_MAX_ATTEMPTS | MR_SUB_BACKOFF_MULTIPLIER |
			   MR_SUB_BACKOFF_JITTER | MR_SUB_BREAKER_MAX |
			   MR_SUB_BREAKER_COOLDOWN,
	    .max_attempts       = 0,
	    .backoff_initial_ms = 777, // not in set: not sent
	    .backoff_multiplier = 1.5,
	    .backoff_jitter     = 0.25,
	    .dlq_topic          = dlq,
	    .breaker_max        = 0,
	    .breaker_cooldown_ms = 5,
	};
	static const char want[] =
	    "{\"group\":\"g\",\"topics\":[\"t\"],\"mode\":\"key\",\"retry\":{"
	    "\"max_attempts\":0,\"backoff_multiplier\":1.5,\"backoff_jitter\":"
	    "0.25},\"dead_letter\":{\"topic\":\"t.poison\",\"breaker_max\":0,"
	    "\"breaker_cooldown_ms\":5}}";

	ck_assert_ptr_nonnull(dlq);
	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, &o, &s), MR_OK);
	// The consumer keeps its own copy of the topic for a resubscribe.
	memset(dlq, 'x', strlen(dlq));
	free(dlq);
	ck_assert_int_eq(mr_consumer_resubscribe(s, NULL), MR_OK);
	mr_consumer_free(s);

	// Nothing set: no retry, no dead_letter.
	memset(&o, 0, sizeof(o));
	o.max_attempts = 3; // without its bit
	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, &o, &s), MR_OK);
	mr_consumer_free(s);

	pthread_mutex_lock(&t_srv.lock);
	ck_assert_int_eq(t_srv.nsub, 3);
	ck_assert_str_eq(t_srv.sub[0], want);
	ck_assert_str_eq(t_srv.sub[1], want);
	ck_assert_str_eq(t_srv.sub[2], "{\"group\":\"g\",\"topics\":[\"t\"],"
					"\"mode\":\"key\"}");
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

START_TEST(test_subscribe_refuses_options)
{
	static const struct {
		mr_subscribe_opts o;
		const char       *why;
	} bad[] = {
	    {{.set = 1u << 8}, "mr_subscribe_opts.set has a bit that is no "
			       "MR_SUB_*"},
	    {{.set = MR_SUB_MAX_ATTEMPTS, .max_attempts = -1},
	     "max_attempts is 0 (unlimited) to 1000"},
	    {{.set = MR_SUB_MAX_ATTEMPTS, .max_attempts = 1001},
	     "max_attempts is 0 (unlimited) to 1000"},
	    {{.set = MR_SUB_BACKOFF_INITIAL, .backoff_initial_ms = 3600001},
	     "backoff_initial_ms is 0 to 3600000"},
	    {{.set = MR_SUB_BACKOFF_MAX, .backoff_max_ms = -1},
	     "backoff_max_ms is 0 to 86400000"},
	    {{.set                = MR_SUB_BACKOFF_INITIAL | MR_SUB_BACKOFF_MAX,
	      .backoff_initial_ms = 10,
	      .backoff_max_ms     = 9},
	     "backoff_max_ms is below backoff_initial_ms"},
	    {{.set = MR_SUB_BACKOFF_MULTIPLIER, .backoff_multiplier = 0.5},
	     "backoff_multiplier is a number from 1 to 100"},
	    {{.set = MR_SUB_BACKOFF_MULTIPLIER},
	     "backoff_multiplier is a number from 1 to 100"},
	    {{.set = MR_SUB_BACKOFF_JITTER, .backoff_jitter = 1.01},
	     "backoff_jitter is a number from 0 to 1"},
	    {{.set = MR_SUB_BREAKER_MAX, .breaker_max = 1000001},
	     "breaker_max is 0 (no breaker) to 1000000"},
	    {{.set = MR_SUB_BREAKER_PERIOD},
	     "breaker_period_ms is 1 to 86400000"},
	    {{.set = MR_SUB_BREAKER_COOLDOWN, .breaker_cooldown_ms = -3},
	     "breaker_cooldown_ms is 1 to 86400000"},
	    {{.dlq_topic = "a b"}, "dlq_topic is not a valid topic name"},
	    {{.dlq_topic = ""}, "dlq_topic is not a valid topic name"},
	    {{.dlq_topic = "u"},
	     "dlq_topic is one of the subscription's topics"},
	};
	const char       *topics[] = {"t", "u"};
	mr_client        *c        = t_setup();
	mr_consumer      *s        = NULL;
	mr_subscribe_opts o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(mr_subscribe(c, "g", topics, 2, &bad[i].o, &s),
				 MR_EINVAL);
		ck_assert_str_eq(mr_client_last_error(), bad[i].why);
		ck_assert_ptr_null(s);
	}
	// A NaN is no number in range.
	memset(&o, 0, sizeof(o));
	o.set            = MR_SUB_BACKOFF_JITTER;
	o.backoff_jitter = 0.0 / 0.0;
	ck_assert_int_eq(mr_subscribe(c, "g", topics, 2, &o, &s), MR_EINVAL);
	// Nothing was sent.
	pthread_mutex_lock(&t_srv.lock);
	ck_assert_int_eq(t_srv.nsub, 0);
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

START_TEST(test_reject)
{
	const char  *topics[] = {"t"};
	uint64_t     h[]      = {5, 3, 4};
	mr_client   *c        = t_setup();
	mr_consumer *s;
	size_t       failed = 9;

	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, NULL, &s), MR_OK);
	ck_assert_int_eq(mr_consumer_reject(s, h, 3, "bad schema", &failed),
			 MR_OK);
	ck_assert_uint_eq(failed, 0);
	ck_assert_int_eq(mr_consumer_reject(s, h, 1, NULL, NULL), MR_OK);
	ck_assert_int_eq(mr_consumer_nack(s, h, 1, "later", NULL), MR_OK);
	ck_assert_int_eq(mr_consumer_reject(NULL, h, 1, NULL, NULL),
			 MR_EINVAL);
	mr_consumer_free(s);
	pthread_mutex_lock(&t_srv.lock);
	ck_assert_int_eq(t_srv.nsettle, 3);
	ck_assert_uint_eq(t_srv.settle[0].kind, MRI_SETTLE_REJECT);
	ck_assert_str_eq(t_srv.settle[0].reason, "bad schema");
	ck_assert_uint_eq(t_srv.settle[0].n, 3);
	ck_assert(t_srv.settle[0].handles[0] == 3 &&
		  t_srv.settle[0].handles[1] == 4 &&
		  t_srv.settle[0].handles[2] == 5);
	ck_assert_uint_eq(t_srv.settle[1].kind, MRI_SETTLE_REJECT);
	ck_assert_str_eq(t_srv.settle[1].reason, "");
	ck_assert_uint_eq(t_srv.settle[2].kind, MRI_SETTLE_NACK);
	ck_assert_str_eq(t_srv.settle[2].reason, "later");
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

static int
t_handler(void *arg, const mr_delivery *d)
{
	(void)arg;
	if (d->payload_len == 6 && memcmp(d->payload, "reject", 6) == 0)
		return MR_EREJECT;
	if (d->payload_len == 4 && memcmp(d->payload, "fail", 4) == 0)
		return MR_EIO;
	return MR_OK;
}

/* The handles that settles of \p kind got, as a bit set. */
static unsigned
t_settled(uint8_t kind, const char *reason)
{
	unsigned set = 0;

	for (int i = 0; i < t_srv.nsettle; i++) {
		if (t_srv.settle[i].kind != kind)
			continue;
		ck_assert_str_eq(t_srv.settle[i].reason, reason);
		for (size_t j = 0; j < t_srv.settle[i].n; j++)
			set |= 1u << t_srv.settle[i].handles[j];
	}
	return set;
}

START_TEST(test_run_rejects)
{
	const char  *topics[] = {"t"};
	mr_client   *c        = t_setup();
	mr_consumer *s;

	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, NULL, &s), MR_OK);
	ck_assert_int_eq(mr_consume_run(s, 2, t_handler, NULL, NULL,
					T_FETCHED),
			 MR_OK);
	mr_consumer_free(s);
	pthread_mutex_lock(&t_srv.lock);
	// Handles 1..6 carry ok, reject, fail, ok, reject, fail.
	ck_assert_uint_eq(t_settled(MRI_SETTLE_ACK, ""), 1u << 1 | 1u << 4);
	ck_assert_uint_eq(
	    t_settled(MRI_SETTLE_REJECT, "handler returned 24 (MR_EREJECT)"),
	    1u << 2 | 1u << 5);
	ck_assert_uint_eq(
	    t_settled(MRI_SETTLE_NACK, "handler returned 18 (MR_EIO)"),
	    1u << 3 | 1u << 6);
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

START_TEST(test_error_name)
{
	ck_assert_str_eq(mr_err_name(MR_EREJECT), "MR_EREJECT");
	ck_assert_int_eq(MR_EREJECT, 24);
	ck_assert_str_eq(mr_strerror(MR_EREJECT),
			 "the message can never be processed: quarantine it");
}
END_TEST

int
main(void)
{
	Suite   *su = suite_create("consumer_opts");
	TCase   *tc = tcase_create("opts");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_subscribe_sends_options);
	tcase_add_test(tc, test_subscribe_refuses_options);
	tcase_add_test(tc, test_reject);
	tcase_add_test(tc, test_run_rejects);
	tcase_add_test(tc, test_error_name);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(su, tc);
	r = srunner_create(su);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
