/*
 * Tests for broker/consume.c's registry of subscriptions and sessions on
 * the embedded mock cluster: threads subscribe, fetch, settle and
 * unsubscribe while the reaper closes the sessions of connections that
 * are gone (these pipe ids were never nng's: every one is gone) and frees
 * the subscriptions left idle. Every accepted request is answered exactly
 * once, and nothing is used after it was freed (run it under ASan).
 * Exclusive subscriptions are never shared and leave as soon as their
 * session ends; the registry counts them joined once their group
 * assigned them, with nothing too (three members, two partitions).
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "broker/consume.h"
#include "bridge/embedded.h"
#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/frame.h"

#define RT_THREADS 4
#define RT_RUN_MS 5000
#define RT_SUBS 8 /* subscriptions the threads pick from */

static struct mri_consume *rt_reg;
static atomic_long         rt_accepted, rt_answered, rt_bad, rt_frames;
static atomic_long         rt_dlq_sessions; /* of subscriptions naming a DLQ */

static uint64_t
rt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A FETCH's or SETTLE's reply: a whole frame of the expected kinds. */
static void
rt_reply(void *arg, nng_msg *m)
{
	(void)arg;
	if (m != NULL) {
		const uint8_t *b = nng_msg_body(m);

		if (nng_msg_len(m) < MRI_FRAME_HDR_LEN ||
		    (b[3] != MRI_OP_FETCH_REPLY &&
		     b[3] != MRI_OP_SETTLE_REPLY && b[3] != MRI_OP_ERROR))
			atomic_fetch_add(&rt_bad, 1);
		else
			atomic_fetch_add(&rt_frames, 1);
		nng_msg_free(m);
	}
	atomic_fetch_add(&rt_answered, 1);
}

/* SUBSCRIBE on \p pipe. @returns the session, or 0. */
static uint64_t
rt_subscribe(uint32_t pipe, int which)
{
	struct mri_wbuf out;
	char            body[256];
	json_t         *root;
	uint64_t        id = 0;

	// Some name their dead-letter topic: the subscription keeps a copy.
	snprintf(body, sizeof(body),
		 "{\"group\":\"rt-%d\",\"topics\":[\"rt\"],\"mode\":\"%s\"%s}",
		 which, which % 2 ? "unordered" : "key",
		 which % 3 ? "" : ",\"retry\":{\"backoff_initial_ms\":5},"
				  "\"dead_letter\":{\"topic\":\"rt.dead\"}");
	mri_wbuf_init(&out);
	mri_consume_subscribe(rt_reg, pipe, (const uint8_t *)body,
			      strlen(body), &out);
	if (out.len > MRI_FRAME_HDR_LEN &&
	    out.data[3] == MRI_OP_SUBSCRIBE_REPLY &&
	    (root = json_loadb((const char *)out.data + MRI_FRAME_HDR_LEN,
			       out.len - MRI_FRAME_HDR_LEN, 0, NULL)) !=
		NULL) {
		id = (uint64_t)json_integer_value(
		    json_object_get(root, "session"));
		if (which % 3 == 0 && id != 0)
			atomic_fetch_add(&rt_dlq_sessions, 1);
		json_decref(root);
	}
	mri_wbuf_fini(&out);
	return id;
}

static void
rt_fetch(uint32_t pipe, uint64_t session, uint32_t wait_ms)
{
	struct mri_fetch f = {session, 10, 0, wait_ms};
	struct mri_wbuf  b, out;

	mri_wbuf_init(&b);
	mri_wbuf_init(&out);
	mri_fetch_encode(&b, &f);
	if (mri_consume_fetch(rt_reg, pipe, b.data + MRI_FRAME_HDR_LEN,
			      b.len - MRI_FRAME_HDR_LEN, rt_reply, NULL,
			      &out) == MR_OK)
		atomic_fetch_add(&rt_accepted, 1);
	else if (out.len < MRI_FRAME_HDR_LEN || out.data[3] != MRI_OP_ERROR)
		atomic_fetch_add(&rt_bad, 1);
	mri_wbuf_fini(&b);
	mri_wbuf_fini(&out);
}

static void
rt_settle(uint32_t pipe, uint64_t session, uint8_t kind, uint64_t handle)
{
	struct mri_settle s = {.session = session, .kind = kind};
	struct mri_range  r = {handle, 3};
	struct mri_wbuf   b, out;

	if (kind == MRI_SETTLE_EXTEND)
		s.extend_ms = 100;
	mri_wbuf_init(&b);
	mri_wbuf_init(&out);
	mri_settle_encode(&b, &s, &r, 1);
	if (mri_consume_settle(rt_reg, pipe, b.data + MRI_FRAME_HDR_LEN,
			       b.len - MRI_FRAME_HDR_LEN, rt_reply, NULL,
			       &out) == MR_OK)
		atomic_fetch_add(&rt_accepted, 1);
	else if (out.len < MRI_FRAME_HDR_LEN || out.data[3] != MRI_OP_ERROR)
		atomic_fetch_add(&rt_bad, 1);
	mri_wbuf_fini(&b);
	mri_wbuf_fini(&out);
}

static void
rt_unsubscribe(uint32_t pipe, uint64_t session)
{
	struct mri_wbuf b, out;

	mri_wbuf_init(&b);
	mri_wbuf_init(&out);
	mri_unsubscribe_encode(&b, session);
	mri_consume_unsubscribe(rt_reg, pipe, b.data + MRI_FRAME_HDR_LEN,
				b.len - MRI_FRAME_HDR_LEN, &out);
	if (out.len < MRI_FRAME_HDR_LEN ||
	    (out.data[3] != MRI_OP_UNSUBSCRIBE_REPLY &&
	     out.data[3] != MRI_OP_ERROR))
		atomic_fetch_add(&rt_bad, 1);
	mri_wbuf_fini(&b);
	mri_wbuf_fini(&out);
}

static void *
rt_worker(void *arg)
{
	uintptr_t    k    = (uintptr_t)arg;
	uint64_t     end  = rt_now() + RT_RUN_MS;
	unsigned int seed = (unsigned int)k * 7919u + 1;
	uint32_t     pipe = 0x7f000000u + (uint32_t)k * 1000;

	while (rt_now() < end) {
		uint64_t id = rt_subscribe(++pipe, rand_r(&seed) % RT_SUBS);

		for (int i = 0; i < 50; i++) {
			switch (rand_r(&seed) % 5) {
			case 0:
			case 1:
				rt_fetch(pipe, id, (uint32_t)(rand_r(&seed) %
							      30));
				break;
			case 2:
				rt_settle(pipe, id,
					  (uint8_t)(rand_r(&seed) % 3),
					  (uint64_t)(rand_r(&seed) % 64));
				break;
			case 3:
				// Another connection's session: refused.
				rt_fetch(pipe + 1, id, 0);
				break;
			default:
				usleep((useconds_t)(rand_r(&seed) % 2000));
				break;
			}
		}
		if (rand_r(&seed) % 2)
			rt_unsubscribe(pipe, id);
		usleep((useconds_t)(rand_r(&seed) % 300000));
	}
	return NULL;
}

START_TEST(test_registry_churn)
{
	struct mri_embedded    *e;
	struct mri_consume_conf c = {
	    .ack_deadline_ms    = 1000,
	    .credit             = 10,
	    .max_buffered       = 100,
	    .revoke_wait_ms     = 10,
	    .session_timeout_ms = 6000,
	    .max_frame          = 1 << 20,
	    .embedded           = true,
	    .idle_close_ms      = 1,
	    .retry              = {.backoff_initial_ms = 10,
				   .backoff_max_ms     = 100,
				   .multiplier         = 2,
				   .jitter             = 0.2},
	    .dlq                = {.breaker_period_ms   = 1000,
				   .breaker_cooldown_ms = 1000},
	    .dlq_suffix         = ".dlq",
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	pthread_t        th[RT_THREADS];
	char             err[256];
	size_t           subs = 1, sessions = 1;
	uint64_t         idle;

	ck_assert_int_eq(mri_embedded_start(&e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, "rt", 2, 1), MR_OK);
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(e), err, sizeof(err));
	ck_assert_int_eq(mri_consume_new(&rt_reg, conf, &c), MR_OK);
	rd_kafka_conf_destroy(conf);
	for (uintptr_t i = 0; i < RT_THREADS; i++)
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, rt_worker, (void *)i), 0);
	for (int i = 0; i < RT_THREADS; i++)
		pthread_join(th[i], NULL);
	idle = rt_now();
	// Every pipe is gone: within a few reaper rounds no session is left,
	// and no subscription either.
	for (int i = 0; i < 600 && (subs > 0 || sessions > 0); i++) {
		usleep(100 * 1000);
		mri_consume_counts(rt_reg, &subs, &sessions);
	}
	fprintf(stderr, "consume_registry_test: idle after %llu ms\n",
		(unsigned long long)(rt_now() - idle));
	ck_assert_uint_eq(sessions, 0);
	ck_assert_uint_eq(subs, 0);
	mri_consume_free(rt_reg);
	fprintf(stderr, "consume_registry_test: %ld requests accepted, %ld "
		"frames\n", atomic_load(&rt_accepted),
		atomic_load(&rt_frames));
	ck_assert_int_gt(atomic_load(&rt_accepted), 0);
	ck_assert_int_gt(atomic_load(&rt_dlq_sessions), 0);
	ck_assert_int_eq(atomic_load(&rt_answered),
			 atomic_load(&rt_accepted));
	ck_assert_int_eq(atomic_load(&rt_frames), atomic_load(&rt_answered));
	ck_assert_int_eq(atomic_load(&rt_bad), 0);
	mri_embedded_stop(e);
}
END_TEST

/* SUBSCRIBE \p body on \p pipe. @returns whether it was answered. */
static bool
rt_subscribe_body(uint32_t pipe, const char *body)
{
	struct mri_wbuf out;
	bool            ok;

	mri_wbuf_init(&out);
	mri_consume_subscribe(rt_reg, pipe, (const uint8_t *)body,
			      strlen(body), &out);
	ok = out.len > MRI_FRAME_HDR_LEN &&
	     out.data[3] == MRI_OP_SUBSCRIBE_REPLY;
	mri_wbuf_fini(&out);
	return ok;
}

/* \p n live connections to \p pull (push sockets in \p push): their
 * pipe ids on pull's side in \p pipes. */
static void
rt_pipes(nng_socket pull, nng_socket *push, uint32_t *pipes, int n)
{
	ck_assert_int_eq(nng_listen(pull, "inproc://rt-exclusive", NULL, 0), 0);
	for (int i = 0; i < n; i++) {
		nng_msg *m;

		ck_assert_int_eq(nng_push0_open(&push[i]), 0);
		ck_assert_int_eq(
		    nng_dial(push[i], "inproc://rt-exclusive", NULL, 0), 0);
		ck_assert_int_eq(nng_send(push[i], "x", 1, 0), 0);
		ck_assert_int_eq(nng_recvmsg(pull, &m, 0), 0);
		pipes[i] = nng_pipe_id(nng_msg_get_pipe(m));
		nng_msg_free(m);
	}
}

START_TEST(test_exclusive)
{
	static const char shared[] = "{\"group\":\"ex\",\"topics\":[\"rt\"]}";
	static const char excl[]   = "{\"group\":\"ex\",\"topics\":[\"rt\"],"
				     "\"exclusive\":true}";
	struct mri_embedded    *e;
	struct mri_consume_conf c = {
	    .ack_deadline_ms    = 1000,
	    .credit             = 10,
	    .max_buffered       = 100,
	    .revoke_wait_ms     = 10,
	    .session_timeout_ms = 6000,
	    .max_frame          = 1 << 20,
	    .embedded           = true,
	    .idle_close_ms      = 600000, // a shared one stays
	    .retry              = {.backoff_initial_ms = 10,
				   .backoff_max_ms     = 100,
				   .multiplier         = 2},
	    .dlq                = {.breaker_period_ms   = 1000,
				   .breaker_cooldown_ms = 1000},
	    .dlq_suffix         = ".dlq",
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             err[256], waiting[64];
	size_t           subs = 0, sessions = 0, joined = 0, n = 0;
	nng_socket       pull, push[4];
	uint32_t         pipe[4];

	ck_assert_int_eq(nng_pull0_open(&pull), 0);
	rt_pipes(pull, push, pipe, 4);
	ck_assert_int_eq(mri_embedded_start(&e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, "rt", 2, 1), MR_OK);
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(e), err, sizeof(err));
	ck_assert_int_eq(mri_consume_new(&rt_reg, conf, &c), MR_OK);
	rd_kafka_conf_destroy(conf);
	ck_assert(rt_subscribe_body(pipe[0], shared));
	ck_assert(rt_subscribe_body(pipe[1], shared));
	ck_assert(rt_subscribe_body(pipe[2], excl));
	ck_assert(rt_subscribe_body(pipe[3], excl));
	mri_consume_counts(rt_reg, &subs, &sessions);
	ck_assert_uint_eq(sessions, 4);
	ck_assert_msg(subs == 3, "%zu subscriptions, want the shared one and "
		      "one per exclusive session", subs);
	// Three members of "ex" on two partitions: each counts as joined
	// once the group assigned it, the one given nothing too. Until
	// then, "ex" is named as waiting.
	joined = mri_consume_joined(rt_reg, &n, waiting, sizeof(waiting));
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(waiting, joined < n ? "ex" : "");
	for (int i = 0; i < 300 && joined < n; i++) {
		usleep(100 * 1000);
		joined = mri_consume_joined(rt_reg, &n, waiting,
					    sizeof(waiting));
	}
	ck_assert_msg(joined == 3, "%zu of %zu subscriptions joined", joined,
		      n);
	ck_assert_str_eq(waiting, "");
	// The connections end: the reaper closes their sessions.
	for (int i = 0; i < 4; i++)
		nng_close(push[i]);
	for (int i = 0; i < 600 && (subs > 1 || sessions > 0); i++) {
		usleep(100 * 1000);
		mri_consume_counts(rt_reg, &subs, &sessions);
	}
	ck_assert_uint_eq(sessions, 0);
	ck_assert_msg(subs == 1, "%zu subscriptions without a session, want "
		      "the shared one alone (idle_close_ms is long)", subs);
	// The two that left moved their counts to the group's tally, each
	// inside an odd count (what /metrics reads around its two reads).
	ck_assert_uint_eq(mri_consume_retired(rt_reg), 4);
	mri_consume_free(rt_reg);
	nng_close(pull);
	mri_embedded_stop(e);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("consume_registry");
	TCase   *tc = tcase_create("churn");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_registry_churn);
	tcase_add_test(tc, test_exclusive);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
