/*
 * The linger flag of a SETTLE (docs/PROTOCOL.md, "SETTLE"), against a
 * stand-in for mailroomd in this process: an nng rep0 socket on ipc that
 * hands out numbered messages and logs the SETTLEs it is sent. The acks of
 * mr_consume_run_async carry the flag; a mailroomd older than the flag
 * (the stand-in's "old" mode) refuses it with MR_EINVAL, and every ack
 * still goes through, sent again without it, and the consumer stops
 * setting it; mr_consumer_ack never sets it.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "mailroom/client.h"
#include "mailroom/consumer.h"
#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/frame.h"

#define T_MSGS 300    /* messages a run consumes */
#define T_MAX 600     /* handles the stand-in can log: two runs */
#define T_CREDIT 16   /* the SUBSCRIBE reply's: handles a SETTLE, at most */
#define T_BATCH 10    /* messages a FETCH_REPLY, at most */
#define T_SESSION 42  /* the one session the stand-in gives */
#define T_SETTLERS 4  /* consume_run.c's CONSUMER__SETTLERS */
#define T_GUARD_S 30  /* a run that takes longer is stopped: a hang */

/* The stand-in and what it was sent. */
static struct {
	nng_socket      s;
	pthread_t       th;
	pthread_mutex_t lock;
	char            dir[64];
	char            url[128];
	bool            old;     /* refuse the linger flag, as before it */
	uint64_t        limit;   /* messages to hand out, in all */
	uint64_t        handed;  /* handed out: handles 1..handed */
	int             acked[T_MAX + 1]; /* by handle: acks answered */
	int             flagged; /* SETTLEs with the flag, answered */
	int             plain;   /* SETTLEs without it, answered */
	int             refused; /* SETTLEs with it, refused (old) */
	int             bad;     /* requests the stand-in did not expect */
	char            why[160]; /* the first of them */
} t_srv;

/* Note a request the stand-in did not expect, under the lock: the test
 * asserts on t_srv.bad on its own thread. */
static void
t_bad(const char *why)
{
	if (t_srv.bad++ == 0)
		snprintf(t_srv.why, sizeof(t_srv.why), "%s", why);
}

/* A FETCH_REPLY of the next messages, as many as \p f asks for, at most
 * T_BATCH, until t_srv.limit are handed out; under the lock. */
static void
t_fetch_reply(struct mri_wbuf *b, const struct mri_fetch *f)
{
	uint64_t n = t_srv.limit - t_srv.handed;
	char     id[32];

	if (n > T_BATCH)
		n = T_BATCH;
	if (n > f->max_msgs)
		n = f->max_msgs;
	mri_frame_begin(b, MRI_OP_FETCH_REPLY);
	mri_wbuf_u32(b, (uint32_t)n);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t            h = ++t_srv.handed;
		struct mri_msg_view v = {
		    .handle       = h,
		    .topic        = "t",
		    .topic_len    = 1,
		    .offset       = (int64_t)h - 1,
		    .timestamp_ms = -1,
		    .attempt      = 1,
		    .id           = id,
		    .payload      = "x",
		    .payload_len  = 1,
		};

		v.id_len = (uint8_t)snprintf(id, sizeof(id), "t/0/%llu",
					     (unsigned long long)h - 1);
		mri_msg_encode(b, &v, NULL);
	}
	mri_frame_end(b);
}

/* Answer a SETTLE: log its handles once answered; in old mode, refuse the
 * flag as an older mailroomd's decoder does (an unknown kind). Under the
 * lock. */
static void
t_settle_reply(struct mri_wbuf *b, const uint8_t *body, size_t len)
{
	struct mri_settle st;
	const char       *why;

	if (mri_settle_decode(body, len, &st, &why) != MR_OK) {
		t_bad(why);
		mri_error_encode(b, MR_EPROTO, why);
		return;
	}
	if (st.session != T_SESSION || st.kind != MRI_SETTLE_ACK)
		t_bad("a SETTLE of another session, or not an ack");
	if (t_srv.old && st.linger) {
		t_srv.refused++;
		mri_error_encode(b, MR_EINVAL,
				 "MR_EINVAL: SETTLE kind must be 0 (ack), 1 "
				 "(nack), 2 (extend) or 3 (reject)");
		return;
	}
	if (st.linger)
		t_srv.flagged++;
	else
		t_srv.plain++;
	for (uint32_t i = 0; i < st.range_count; i++) {
		struct mri_range r;

		mri_settle_range(&st, i, &r);
		for (uint64_t h = r.first; h - r.first < r.count; h++) {
			if (h < 1 || h > t_srv.handed)
				t_bad("a SETTLE of a handle never handed out");
			else
				t_srv.acked[h]++;
		}
	}
	mri_settle_reply_encode(b, (uint32_t)st.handles, NULL, 0);
}

static void *
t_serve(void *arg)
{
	char     sub[96];
	nng_msg *m;

	(void)arg;
	// The subscription, then the session, as mailroomd writes them.
	snprintf(sub, sizeof(sub),
		 "{\"group\":\"g\",\"topics\":[\"t\"],\"credit\":%d,"
		 "\"session\":%d}",
		 T_CREDIT, T_SESSION);
	while (nng_recvmsg(t_srv.s, &m, 0) == 0) {
		struct mri_frame_hdr h;
		struct mri_fetch     f;
		struct mri_wbuf      b;
		const uint8_t       *body = (const uint8_t *)nng_msg_body(m) +
					MRI_FRAME_HDR_LEN;
		const char          *why;

		mri_wbuf_init(&b);
		pthread_mutex_lock(&t_srv.lock);
		if (mri_frame_parse_hdr(nng_msg_body(m), nng_msg_len(m), &h,
					&why) != MR_OK) {
			t_bad(why);
			mri_error_encode(&b, MR_EPROTO, why);
		} else if (h.op == MRI_OP_SUBSCRIBE) {
			mri_frame_begin(&b, MRI_OP_SUBSCRIBE_REPLY);
			mri_wbuf_put(&b, sub, strlen(sub));
			mri_frame_end(&b);
		} else if (h.op == MRI_OP_FETCH) {
			if (mri_fetch_decode(body, h.body_len, &f, &why) !=
				MR_OK ||
			    f.session != T_SESSION) {
				t_bad("a FETCH undecoded or of another "
				      "session");
				mri_error_encode(&b, MR_EPROTO, "bad FETCH");
			} else {
				t_fetch_reply(&b, &f);
			}
		} else if (h.op == MRI_OP_SETTLE) {
			t_settle_reply(&b, body, h.body_len);
		} else if (h.op == MRI_OP_UNSUBSCRIBE) {
			mri_frame_begin(&b, MRI_OP_UNSUBSCRIBE_REPLY);
			mri_frame_end(&b);
		} else {
			t_bad("a request of another operation");
			mri_error_encode(&b, MR_EPROTO, "not in the stand-in");
		}
		pthread_mutex_unlock(&t_srv.lock);
		nng_msg_clear(m);
		if (b.err || nng_msg_append(m, b.data, b.len) != 0 ||
		    nng_sendmsg(t_srv.s, m, 0) != 0)
			nng_msg_free(m);
		mri_wbuf_fini(&b);
	}
	return NULL;
}

/* Start the stand-in (\p old: refusing the flag) handing out \p limit
 * messages, and a client of it. */
static mr_client *
t_setup(bool old, uint64_t limit)
{
	mr_client_opts o = {.timeout_ms = 10000};
	mr_client     *c;
	char           err[256];

	memset(&t_srv, 0, sizeof(t_srv));
	pthread_mutex_init(&t_srv.lock, NULL);
	t_srv.old   = old;
	t_srv.limit = limit;
	snprintf(t_srv.dir, sizeof(t_srv.dir), "/tmp/mailroom-linger-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t_srv.dir));
	snprintf(t_srv.url, sizeof(t_srv.url), "ipc://%s/s.sock", t_srv.dir);
	ck_assert_int_eq(nng_rep0_open(&t_srv.s), 0);
	ck_assert_int_eq(nng_listen(t_srv.s, t_srv.url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&t_srv.th, NULL, t_serve, NULL), 0);
	ck_assert_msg(mr_client_new(&c, t_srv.url, &o, err, sizeof(err)) ==
			  MR_OK,
		      "%s", err);
	return c;
}

static void
t_teardown(mr_client *c)
{
	char path[160];

	mr_client_free(c);
	nng_close(t_srv.s);
	pthread_join(t_srv.th, NULL);
	pthread_mutex_destroy(&t_srv.lock);
	snprintf(path, sizeof(path), "%s/s.sock", t_srv.dir);
	unlink(path);
	rmdir(t_srv.dir);
}

/* Under the lock: every handle of \p from..\p to acked exactly once, and
 * nothing unexpected sent. */
static void
t_acked_once(uint64_t from, uint64_t to)
{
	ck_assert_msg(t_srv.bad == 0, "the stand-in got %d requests it did "
		      "not expect, the first: %s", t_srv.bad, t_srv.why);
	for (uint64_t h = from; h <= to; h++)
		ck_assert_msg(t_srv.acked[h] == 1,
			      "handle %llu acked %d times, not once",
			      (unsigned long long)h, t_srv.acked[h]);
}

/* ---- the run ---------------------------------------------------------- */

/* A run's handler, and its guard: the run is stopped once T_GUARD_S
 * passed without it returning, which then fails the test. */
struct t_run {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	pthread_t       guard;
	bool            done;
	volatile int    stop;
	int             handled;
};

static void
t_handler(void *arg, const mr_delivery *d, mr_pending *p)
{
	struct t_run *r = arg;

	(void)d;
	r->handled++; // on the fetching thread only
	mr_pending_done(p, MR_OK);
}

static void *
t_guard(void *arg)
{
	struct t_run   *r = arg;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += T_GUARD_S;
	pthread_mutex_lock(&r->lock);
	while (!r->done &&
	       pthread_cond_timedwait(&r->cv, &r->lock, &until) != ETIMEDOUT)
		;
	if (!r->done)
		r->stop = 1;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* mr_consume_run_async of T_MSGS messages on \p s, which must end with
 * MR_OK having handled every one, within T_GUARD_S. */
static void
t_run(mr_consumer *s)
{
	struct t_run r = {.handled = 0};
	int          rc;

	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cv, NULL);
	ck_assert_int_eq(pthread_create(&r.guard, NULL, t_guard, &r), 0);
	rc = mr_consume_run_async(s, t_handler, &r, &r.stop, T_MSGS);
	pthread_mutex_lock(&r.lock);
	r.done = true;
	pthread_cond_signal(&r.cv);
	pthread_mutex_unlock(&r.lock);
	pthread_join(r.guard, NULL);
	ck_assert_msg(!r.stop, "the run did not end within %d s", T_GUARD_S);
	ck_assert_msg(rc == MR_OK, "the run ended with %s: %s",
		      mr_err_name(rc), mr_client_last_error());
	ck_assert_int_eq(r.handled, T_MSGS);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cv);
}

/* The acks of a run carry the flag, and each handle is acked once. */
START_TEST(test_run_sets_linger)
{
	const char  *topics[] = {"t"};
	mr_client   *c        = t_setup(false, T_MSGS);
	mr_consumer *s;

	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, NULL, &s), MR_OK);
	t_run(s);
	mr_consumer_free(s);
	pthread_mutex_lock(&t_srv.lock);
	ck_assert_uint_eq(t_srv.handed, T_MSGS);
	t_acked_once(1, T_MSGS);
	ck_assert_int_gt(t_srv.flagged, 0);
	ck_assert_msg(t_srv.plain == 0, "%d of a run's %d SETTLEs had no "
		      "linger flag", t_srv.plain, t_srv.plain + t_srv.flagged);
	ck_assert_int_eq(t_srv.refused, 0);
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

/*
 * A mailroomd older than the flag: a refused SETTLE acts on nothing, and
 * the client sends it again without the flag, so the run ends well with
 * every handle acked once. The consumer then sends no flag again: only the
 * SETTLEs already on their way when the first was refused, one for each of
 * the run's settling threads at most, carry it. A second run of the same
 * consumer sends none.
 */
START_TEST(test_old_mailroomd_refuses_linger)
{
	const char  *topics[] = {"t"};
	mr_client   *c        = t_setup(true, 2 * T_MSGS);
	mr_consumer *s;
	int          refused;

	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, NULL, &s), MR_OK);
	t_run(s);
	pthread_mutex_lock(&t_srv.lock);
	ck_assert_uint_eq(t_srv.handed, T_MSGS);
	t_acked_once(1, T_MSGS);
	ck_assert_int_eq(t_srv.flagged, 0);
	// A SETTLE holds T_CREDIT handles at most: the run sent many more
	// than its settling threads can have on their way at once.
	ck_assert_int_ge(t_srv.plain, T_MSGS / T_CREDIT);
	ck_assert_int_ge(t_srv.refused, 1);
	ck_assert_msg(t_srv.refused <= T_SETTLERS,
		      "%d SETTLEs with the flag refused: the consumer went on "
		      "setting it", t_srv.refused);
	refused = t_srv.refused;
	pthread_mutex_unlock(&t_srv.lock);

	t_run(s);
	mr_consumer_free(s);
	pthread_mutex_lock(&t_srv.lock);
	ck_assert_uint_eq(t_srv.handed, 2 * T_MSGS);
	t_acked_once(1, 2 * T_MSGS);
	ck_assert_msg(t_srv.refused == refused,
		      "a second run sent the flag %d times again",
		      t_srv.refused - refused);
	ck_assert_int_eq(t_srv.flagged, 0);
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

/* mr_consumer_ack waits for its answer: no flag. */
START_TEST(test_ack_sends_no_linger)
{
	const char  *topics[] = {"t"};
	mr_client   *c        = t_setup(false, T_BATCH);
	mr_consumer *s;
	mr_batch    *b;
	uint64_t     h[T_BATCH];
	size_t       n, failed = 99;

	ck_assert_int_eq(mr_subscribe(c, "g", topics, 1, NULL, &s), MR_OK);
	ck_assert_int_eq(mr_fetch(s, T_BATCH, 0, 1000, &b), MR_OK);
	n = mr_batch_count(b);
	ck_assert_uint_eq(n, T_BATCH);
	for (size_t i = 0; i < n; i++)
		h[i] = mr_batch_at(b, i)->handle;
	ck_assert_int_eq(mr_consumer_ack(s, h, n, &failed), MR_OK);
	ck_assert_uint_eq(failed, 0);
	mr_batch_free(b);
	mr_consumer_free(s);
	pthread_mutex_lock(&t_srv.lock);
	t_acked_once(1, T_BATCH);
	ck_assert_msg(t_srv.flagged == 0, "mr_consumer_ack set the linger "
		      "flag");
	ck_assert_int_eq(t_srv.plain, 1);
	pthread_mutex_unlock(&t_srv.lock);
	t_teardown(c);
}
END_TEST

int
main(void)
{
	Suite   *su = suite_create("settle_linger");
	TCase   *tc = tcase_create("linger");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_run_sets_linger);
	tcase_add_test(tc, test_old_mailroomd_refuses_linger);
	tcase_add_test(tc, test_ack_sends_no_linger);
	tcase_set_timeout(tc, 100);
	suite_add_tcase(su, tc);
	r = srunner_create(su);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
