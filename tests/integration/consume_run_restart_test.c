/*
 * mr_consume_run rides through restarts of mailroomd (issue #7): a
 * consumer running on its own thread goes on, on a new session of the same
 * subscription, after mailroomd is stopped with SIGTERM and started again,
 * and after it is killed with SIGKILL and started again, each time on the
 * same URL.
 *
 * Built twice, as consume_api_test.c: consume_run_restart_embedded runs
 * on mailroomd's embedded cluster (whose records die with it: what was
 * published before a restart is consumed before it),
 * consume_run_restart_kafka (MR_KAFKA=1) on the real broker of the CTest
 * fixture (where what was not acked at a restart comes again, and is
 * counted once).
 *
 * Three rounds of 100 messages, one before each restart and one after the
 * last; each is consumed before the next step. During the kill, one handler
 * is held (blocked in the handler of the old session) until the new
 * session exists, then nacks: its result must be dropped, not sent on the
 * new session, and nothing is fetched on the new session before it
 * returns.
 *
 * The same again with mr_consume_run_async, whose handler queues each
 * delivery for a pool of four threads that handle it and call
 * mr_pending_done; and once more with consumer.journal_linger_ms at its
 * longest, so that its acks wait in mailroomd for the journal's write
 * across the restarts.
 *
 * Nothing here asserts on a duration: every wait is bounded and ends early
 * when the consumer's thread has returned.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "integration/checked.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define ROUND 100
#define ROUNDS 4 /* before SIGTERM, after it, before SIGKILL, after it */
#define TOTAL (ROUND * ROUNDS)
#define WAIT_MS 90000 /* the bound of a wait for the consumer */
#define HOLD (2 * ROUND + ROUND / 2) /* held during the kill; a key of
					      its own, so that no other
					      message waits behind it */
#define POOL 4 /* the asynchronous handler's threads */

struct rr {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	mr_consumer    *s;
	unsigned        calls[TOTAL]; /* handler calls by message index */
	unsigned        max_attempt[TOTAL];
	size_t          unknown;  /* payloads that are not ours */
	bool            holding;  /* HOLD's first call is in the handler */
	bool            released; /* and may return */
	uint64_t        held_session;
	volatile int    stop;
	bool            done; /* mr_consume_run returned */
	int             rc;
	char            why[256];
	const struct mrt_daemon *d; /* for its log, when a wait fails */
	/* mr_consume_run_async's pool: pending deliveries, queued */
	bool            async;
	mr_pending     *queue[TOTAL * 2];
	size_t          qhead, qlen;
	bool            pool_stop;
	pthread_cond_t  pool_cv;
};

static int
rr_handler(void *arg, const mr_delivery *d)
{
	struct rr *r = arg;
	char       buf[32];
	char      *end;
	long       i;
	int        rc = MR_OK;

	snprintf(buf, sizeof(buf), "%.*s",
		 (int)(d->payload_len < 31 ? d->payload_len : 31),
		 (const char *)d->payload);
	i = strncmp(buf, "rr:", 3) == 0 ? strtol(buf + 3, &end, 10) : -1;
	pthread_mutex_lock(&r->lock);
	if (i < 0 || i >= TOTAL || *end != '\0') {
		r->unknown++;
		pthread_mutex_unlock(&r->lock);
		return MR_OK;
	}
	if (i == HOLD && r->calls[i] == 0) {
		// The first delivery of HOLD waits for the test to restart
		// mailroomd and see the new session, then nacks.
		r->holding      = true;
		r->held_session = mr_consumer_session(r->s);
		pthread_cond_broadcast(&r->cv);
		while (!r->released)
			pthread_cond_wait(&r->cv, &r->lock);
		rc = MR_EBUSY;
	}
	r->calls[i]++;
	if (d->attempt > r->max_attempt[i])
		r->max_attempt[i] = d->attempt;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* mr_consume_run_async's handler: queue it for the pool. */
static void
rr_async(void *arg, const mr_delivery *d, mr_pending *p)
{
	struct rr *r = arg;

	(void)d;
	pthread_mutex_lock(&r->lock);
	ck_assert(r->qlen < TOTAL * 2);
	r->queue[(r->qhead + r->qlen++) % (TOTAL * 2)] = p;
	pthread_cond_broadcast(&r->pool_cv);
	pthread_mutex_unlock(&r->lock);
}

static void *
rr_pool(void *arg)
{
	struct rr  *r = arg;
	mr_pending *p;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (r->qlen == 0 && !r->pool_stop)
			pthread_cond_wait(&r->pool_cv, &r->lock);
		if (r->qlen == 0)
			break;
		p        = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % (TOTAL * 2);
		r->qlen--;
		pthread_mutex_unlock(&r->lock);
		mr_pending_done(p, rr_handler(r, mr_pending_delivery(p)));
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *
rr_run(void *arg)
{
	struct rr *r  = arg;
	int        rc = r->async ? mr_consume_run_async(r->s, rr_async, r,
							&r->stop, 0)
				 : mr_consume_run(r->s, 4, rr_handler, r,
						  &r->stop, 0);

	pthread_mutex_lock(&r->lock);
	r->rc = rc;
	snprintf(r->why, sizeof(r->why), "%s", mr_client_last_error());
	r->done = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Publish messages [from, to): payload "rr:<i>", keys k0..k19 (HOLD:
 * "held"). */
static void
rr_publish(mr_client *c, const char *topic, int from, int to)
{
	mr_message m[ROUND];
	mr_ack     acks[ROUND];
	char       keys[ROUND][16], pays[ROUND][16];
	int        n = to - from, rc;

	ck_assert(n > 0 && n <= ROUND);
	for (int j = 0; j < n; j++) {
		if (from + j == HOLD)
			snprintf(keys[j], sizeof(keys[j]), "held");
		else
			snprintf(keys[j], sizeof(keys[j]), "k%d",
				 (from + j) % 20);
		snprintf(pays[j], sizeof(pays[j]), "rr:%d", from + j);
		m[j] = (mr_message){.topic       = topic,
				    .key         = keys[j],
				    .key_len     = strlen(keys[j]),
				    .payload     = pays[j],
				    .payload_len = strlen(pays[j])};
	}
	rc = mr_publish_batch(c, m, (size_t)n, acks);
	ck_assert_msg(rc == MR_OK, "publish [%d, %d): %s: %s", from, to,
		      mr_err_name(rc), acks[0].error);
}

/* @returns whether every message in [from, to) but \p skip was handled. */
static bool
rr_all_handled(const struct rr *r, int from, int to, int skip)
{
	for (int i = from; i < to; i++)
		if (i != skip && r->calls[i] == 0)
			return false;
	return true;
}

/* Wait, bounded, until [from, to) but \p skip was handled (and HOLD is in
 * its handler when \p hold), or the consumer ended. */
static void
rr_wait(struct rr *r, int from, int to, int skip, bool hold,
	const char *what)
{
	int64_t         end = mrt_now_ms() + WAIT_MS;
	struct timespec ts;
	bool            ok, done;
	int             rc;
	char            why[256];

	pthread_mutex_lock(&r->lock);
	while (!(ok = rr_all_handled(r, from, to, skip) &&
		      (!hold || r->holding)) &&
	       !r->done && mrt_now_ms() < end) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->lock, &ts);
	}
	done = r->done;
	rc   = r->rc;
	snprintf(why, sizeof(why), "%s", r->why);
	pthread_mutex_unlock(&r->lock);
	ck_assert_msg(!done,
		      "%s: mr_consume_run returned %s (%s) instead of "
		      "subscribing again",
		      what, mr_err_name(rc), why);
	if (!ok) {
		int missing = 0;

		pthread_mutex_lock(&r->lock);
		for (int i = from; i < to; i++)
			missing += i != skip && r->calls[i] == 0;
		pthread_mutex_unlock(&r->lock);
		fprintf(stderr, "%s: %d of [%d, %d) not handled; session %llu; "
			"mailroomd's log:\n%s\n", what, missing, from, to,
			(unsigned long long)mr_consumer_session(r->s),
			mrt_daemon_log_tail(r->d));
	}
	ck_assert_msg(ok, "%s: messages [%d, %d) not all handled within %d "
		      "ms", what, from, to, WAIT_MS);
}

/* Wait, bounded, until the consumer has a session other than \p old. */
static uint64_t
rr_wait_session(struct rr *r, uint64_t old, const char *what)
{
	int64_t  end  = mrt_now_ms() + WAIT_MS;
	bool     done = false;
	uint64_t now;

	while ((now = mr_consumer_session(r->s)) == old && !done &&
	       mrt_now_ms() < end) {
		mrt_sleep_ms(50);
		pthread_mutex_lock(&r->lock);
		done = r->done;
		pthread_mutex_unlock(&r->lock);
	}
	ck_assert_msg(now != old, "%s: still session %llu (%s)", what,
		      (unsigned long long)old,
		      done ? "mr_consume_run returned" : "timed out");
	return now;
}

static void
rr_rides_restarts(bool async, const char *const *sets)
{
	struct mrt_daemon d;
	mr_client        *pc, *cc;
	struct rr        *r = calloc(1, sizeof(*r));
	pthread_t         th, pool[POOL];
	char              topic[128], group[128];
	uint64_t          s0, s1, s2;
	const char       *topics[1] = {topic};
	mr_subscribe_opts o         = {.order           = MR_ORDER_KEY,
				       .ack_deadline_ms = 120000};
	int               rc;

	ck_assert_ptr_nonnull(r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->pool_cv, NULL);
	r->async = async;
	for (int i = 0; i < POOL; i++)
		ck_assert_int_eq(pthread_create(&pool[i], NULL, rr_pool, r), 0);
	mrt_ck_daemon_start(&d, sets);
	r->d = &d;
	pc = mrt_ck_client(&d, 30000, 0);
	cc = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "restart");
	mrt_uniq(group, sizeof(group), "g-restart");
	// Four partitions, as the embedded cluster makes a topic by itself
	// after a restart.
	mrt_ck_topic_create(pc, topic, 4);
	rc = mr_subscribe(cc, group, topics, 1, &o, &r->s);
	ck_assert_msg(rc == MR_OK, "mr_subscribe: %s: %s", mr_err_name(rc),
		      mr_client_last_error());
	s0 = mr_consumer_session(r->s);
	ck_assert_int_eq(pthread_create(&th, NULL, rr_run, r), 0);

	rr_publish(pc, topic, 0, ROUND);
	rr_wait(r, 0, ROUND, -1, false, "before the restarts");

	// SIGTERM: mailroomd drains, then exits; the same URL again.
	ck_assert_int_eq(mrt_daemon_stop(&d, 30000), 0);
	mrt_ck_daemon_restart(&d, sets);
	rr_publish(pc, topic, ROUND, 2 * ROUND);
	rr_wait(r, ROUND, 2 * ROUND, -1, false, "after SIGTERM");
	s1 = rr_wait_session(r, s0, "after SIGTERM");

	// SIGKILL while HOLD's handler runs on the session s1.
	rr_publish(pc, topic, 2 * ROUND, 3 * ROUND);
	rr_wait(r, 2 * ROUND, 3 * ROUND, HOLD, true, "before SIGKILL");
	mrt_daemon_kill(&d);
	mrt_ck_daemon_restart(&d, sets);
	s2 = rr_wait_session(r, s1, "after SIGKILL");
	pthread_mutex_lock(&r->lock);
	ck_assert_uint_eq(r->held_session, s1);
	r->released = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	rr_publish(pc, topic, 3 * ROUND, 4 * ROUND);
	rr_wait(r, 3 * ROUND, 4 * ROUND, -1, false, "after SIGKILL");

	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	pthread_mutex_lock(&r->lock);
	r->pool_stop = true;
	pthread_cond_broadcast(&r->pool_cv);
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < POOL; i++)
		pthread_join(pool[i], NULL);
	ck_assert_msg(r->rc == MR_OK, "mr_consume_run: %s: %s",
		      mr_err_name(r->rc), r->why);
	ck_assert_uint_eq(r->unknown, 0);
	ck_assert(s0 != s1 && s1 != s2 && s0 != s2);
	ck_assert(rr_all_handled(r, 0, TOTAL, -1));
	// Mailroomd's records after the kill were never touched by the
	// held nack of the old session: each came once, on attempt 1
	// (on the embedded cluster, where nothing else can come again).
	if (!mrt_real)
		for (int i = 3 * ROUND; i < TOTAL; i++)
			ck_assert_msg(r->calls[i] == 1 &&
					  r->max_attempt[i] == 1,
				      "message %d: %u calls, attempt up to %u",
				      i, r->calls[i], r->max_attempt[i]);
	fprintf(stderr, "restarts (%s%s): sessions %llu, %llu, %llu; held nack "
		"on %llu dropped\n", async ? "async" : "workers",
		sets != NULL ? ", acks lingering" : "",
		(unsigned long long)s0,
		(unsigned long long)s1, (unsigned long long)s2,
		(unsigned long long)r->held_session);
	mr_consumer_free(r->s);
	mr_client_free(cc);
	mr_client_free(pc);
	mrt_ck_daemon_finish(&d);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	pthread_cond_destroy(&r->pool_cv);
	free(r);
}

START_TEST(test_consume_run_rides_restarts)
{
	rr_rides_restarts(false, NULL);
}
END_TEST

START_TEST(test_consume_run_async_rides_restarts)
{
	rr_rides_restarts(true, NULL);
}
END_TEST

/* The same with the journal's group commit on at its longest: the acks of
 * mr_consume_run_async may wait up to a second for their journal record,
 * answered only once Kafka has it; a SIGTERM must send what lingers, and
 * a SIGKILL loses only acks never answered, whose records come again. */
START_TEST(test_consume_run_async_rides_restarts_lingering)
{
	const char *const sets[] = {"consumer.journal_linger_ms=1000", NULL};

	rr_rides_restarts(true, sets);
}
END_TEST

static Suite *
consume_run_restart_suite(void)
{
	Suite *s = suite_create(mrt_real ? "consume_run_restart_kafka"
				       : "consume_run_restart_embedded");
	TCase *tc = tcase_create("restart");

	tcase_set_timeout(tc, 400);
	tcase_add_test(tc, test_consume_run_rides_restarts);
	tcase_add_test(tc, test_consume_run_async_rides_restarts);
	tcase_add_test(tc, test_consume_run_async_rides_restarts_lingering);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("consume_run_restart_test", consume_run_restart_suite);
}
