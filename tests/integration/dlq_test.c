/*
 * The dead-letter supervisor end to end (issue #9): mailroomd as a child
 * process, a poison message published through it, and what happens to it.
 *
 * Built twice: dlq_embedded on mailroomd's embedded cluster, dlq_kafka
 * (MR_KAFKA=1) on the real broker of the CTest fixture (skip, 77, when the
 * fixture is unavailable).
 *
 * Cases: a message its consumer nacks every time is retried with growing
 * delays and quarantined in <topic>.dlq with its key, payload, headers and
 * the failure headers, while the key's later message waits and another
 * key flows, and the key goes on after; a consumer process killed (kill
 * -9) while it holds the message, as many times as the attempts allow:
 * the message is quarantined, not redelivered forever; `mailroom status`
 * counts both; a storm of failures trips the breaker (nothing handed
 * out; `mailroom status` says why), `mailroom dlq resume` lets one
 * message through, an ack closes it; and (embedded only: the fault is the
 * mock cluster's) a dead-letter write that fails leaves the original
 * unacked until a later write succeeds, once; and (real Kafka only: the
 * embedded cluster dies with it) mailroomd killed with kill -9 while it
 * quarantines: nothing delivered again, nothing lost.
 *
 * Nothing asserts an upper bound on a duration: waits are loops with
 * generous bounds. The delays between attempts are checked from below
 * only (the backoff guarantees them).
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "integration/checked.h"
#include "integration/consume_common.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define DT_READ_MS 30000

static void
dt_publish(mr_client *c, const char *topic, const char *key,
	   const char *payload)
{
	mr_header  h = {"app", "x", 1};
	mr_message m = {.topic        = topic,
			.key          = key,
			.key_len      = strlen(key),
			.payload      = payload,
			.payload_len  = strlen(payload),
			.headers      = &h,
			.header_count = 1};

	publish_all(c, &m, 1, NULL);
}

/* The records of \p topic, read back from Kafka (at least \p want). */
static void
dt_read(const struct mrt_daemon *d, const char *topic, size_t want,
	struct mrt_records *out)
{
	char err[256];

	ck_assert_msg(mrt_kafka_read(d->bootstrap, topic, want, DT_READ_MS,
				     out, err, sizeof(err)) == 0,
		      "reading %s: %s", topic, err);
	ck_assert_msg(out->n >= want, "%s: %zu records, not %zu", topic,
		      out->n, want);
}

static void
dt_header_is(const struct mrt_record *r, const char *name, const char *want)
{
	const struct mrt_header *h = mrt_record_header(r, name);

	ck_assert_msg(h != NULL, "no %s header", name);
	ck_assert_msg(h->value_len == strlen(want) &&
			  memcmp(h->value, want, h->value_len) == 0,
		      "%s is '%.*s', not '%s'", name, (int)h->value_len,
		      (const char *)h->value, want);
}

/* The subscription's counters in `mailroom status`, by group. */
static json_int_t
dt_status_count(const struct mrt_daemon *d, const char *group,
		const char *what)
{
	json_t    *st = mrt_daemon_status(d), *subs, *s;
	size_t     i;
	json_int_t n = -1;

	ck_assert_ptr_nonnull(st);
	subs = json_object_get(json_object_get(st, "consume"),
			       "groups");
	json_array_foreach(subs, i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "group")),
			   group) == 0)
			n = json_integer_value(json_object_get(
			    json_object_get(s, "dead_letter"), what));
	}
	json_decref(st);
	return n;
}

START_TEST(test_poison)
{
	struct mrt_daemon  d;
	mr_client         *c;
	mr_consumer       *s;
	mr_subscribe_opts  o = {
	     .order              = MR_ORDER_KEY,
	     .set                = MR_SUB_MAX_ATTEMPTS | MR_SUB_BACKOFF_INITIAL |
			    MR_SUB_BACKOFF_MAX | MR_SUB_BACKOFF_MULTIPLIER |
			    MR_SUB_BACKOFF_JITTER | MR_SUB_BREAKER_MAX,
	     .max_attempts       = 4,
	     .backoff_initial_ms = 200,
	     .backoff_max_ms     = 1000,
	     .backoff_multiplier = 2,
	     .backoff_jitter     = 0.1,
	     .breaker_max        = 0,
	};
	char               topic[128], dlq[160], group[128];
	struct mrt_records rs;
	int64_t            last = 0, t;
	uint32_t           attempts = 0;
	bool               b_done = false, a1_done = false;
	int                rc;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "poison");
	mrt_uniq(group, sizeof(group), "g-poison");
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	mrt_ck_topic_create(c, topic, 1);
	mrt_ck_topic_create(c, dlq, 1);
	dt_publish(c, topic, "A", "a0");
	dt_publish(c, topic, "A", "a1");
	dt_publish(c, topic, "B", "b0");
	rc = mr_subscribe(c, group, (const char *[]){topic}, 1, &o, &s);
	ck_assert_msg(rc == MR_OK, "subscribe: %s: %s", mr_err_name(rc),
		      mr_client_last_error());

	t = mrt_now_ms();
	while (!a1_done) {
		struct got g[8];
		size_t     n = fetch_got(s, 8, WAIT_MS, g, 8);

		ck_assert_msg(mrt_now_ms() - t < LOOP_MS, "a1 never came");
		for (size_t i = 0; i < n; i++) {
			uint64_t h = g[i].handle;
			size_t   failed;

			if (strcmp(g[i].payload, "a0") == 0) {
				int64_t now = mrt_now_ms();

				attempts++;
				ck_assert_uint_eq(g[i].attempt, attempts);
				ck_assert_uint_le(attempts, 4);
				// At least 0.9 * 200 * 2^(n-2) ms since the
				// last nack.
				if (attempts > 1)
					ck_assert_int_ge(
					    now - last,
					    (int64_t)(180 << (attempts - 2)));
				last = now;
				ck_assert_int_eq(
				    mr_consumer_nack(s, &h, 1,
						     "charge 1234 declined",
						     &failed),
				    MR_OK);
				ck_assert_uint_eq(failed, 0);
			} else if (strcmp(g[i].payload, "a1") == 0) {
				ck_assert_uint_eq(attempts, 4);
				a1_done = true;
				ack1(s, h);
			} else {
				ck_assert_str_eq(g[i].payload, "b0");
				ck_assert_uint_le(attempts, 1); // not held
				b_done = true;
				ack1(s, h);
			}
		}
	}
	ck_assert(b_done);

	dt_read(&d, dlq, 1, &rs);
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_mem_eq(rs.v[0].key, "A", 1);
	ck_assert_mem_eq(rs.v[0].payload, "a0", 2);
	ck_assert(mrt_record_header_is(&rs.v[0], "app", "x"));
	ck_assert_ptr_nonnull(mrt_record_header(&rs.v[0], "ce_id"));
	dt_header_is(&rs.v[0], "mr_dlq_topic", topic);
	dt_header_is(&rs.v[0], "mr_dlq_partition", "0");
	dt_header_is(&rs.v[0], "mr_dlq_offset", "0");
	dt_header_is(&rs.v[0], "mr_dlq_group", group);
	dt_header_is(&rs.v[0], "mr_dlq_attempts", "4");
	dt_header_is(&rs.v[0], "mr_dlq_reason", "charge 1234 declined");
	ck_assert_ptr_nonnull(mrt_record_header(&rs.v[0], "mr_dlq_first_failure"));
	ck_assert_ptr_nonnull(mrt_record_header(&rs.v[0], "mr_dlq_last_failure"));
	ck_assert_ptr_nonnull(mrt_record_header(&rs.v[0], "mr_dlq_time"));
	ck_assert_uint_eq(
	    mrt_record_header(&rs.v[0], "mr_dlq_fingerprint")->value_len, 16);
	mrt_records_free(&rs);

	ck_assert_int_eq(dt_status_count(&d, group, "quarantined"), 1);
	ck_assert_int_eq(dt_status_count(&d, group, "failures"), 4);
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* Run `mailroom consume --no-ack` until it prints a delivery, then kill
 * -9 it: it held the message when it died. @returns the line printed. */
static char *
dt_consume_and_die(const struct mrt_daemon *d, const char *group,
		   const char *topic)
{
	char  cmd[1024], line[4096];
	FILE *p;
	pid_t pid = 0;

	// The shell prints the consumer's pid first, then execs it.
	snprintf(cmd, sizeof(cmd),
		 "echo $$; exec \"$MR_BINARY_DIR/mailroom\" --url '%s' "
		 "consume -g '%s' --no-ack --json --max-attempts 2 "
		 "--backoff 0 --breaker 0 --wait 1000 '%s'",
		 d->url, group, topic);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
	pid = (pid_t)atoi(line);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(fgets(line, sizeof(line), p) != NULL,
		      "the consumer printed nothing");
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	pclose(p);
	return strdup(line);
}

START_TEST(test_consumer_killed)
{
	struct mrt_daemon  d;
	mr_client         *c;
	char               topic[128], dlq[160], group[128], *line;
	char              *out = NULL;
	size_t             len;
	struct mrt_records rs;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "killed");
	mrt_uniq(group, sizeof(group), "g-killed");
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	mrt_ck_topic_create(c, topic, 1);
	mrt_ck_topic_create(c, dlq, 1);
	dt_publish(c, topic, "A", "a0");
	dt_publish(c, topic, "A", "a1");

	// Two consumers die holding a0: its two attempts are spent.
	for (int i = 0; i < 2; i++) {
		line = dt_consume_and_die(&d, group, topic);
		ck_assert_msg(strstr(line, "\"a0\"") != NULL, "%s", line);
		free(line);
	}
	// The third gets a1: a0 is in the dead-letter topic.
	ck_assert_int_eq(
	    mrt_sh_output(&out, &len,
			  "\"$MR_BINARY_DIR/mailroom\" --url '%s' consume -g "
			  "'%s' -n 1 --json --max-attempts 2 --backoff 0 "
			  "--breaker 0 '%s'",
			  d.url, group, topic),
	    0);
	ck_assert_msg(strstr(out, "\"a1\"") != NULL, "%s", out);
	free(out);

	dt_read(&d, dlq, 1, &rs);
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_mem_eq(rs.v[0].payload, "a0", 2);
	dt_header_is(&rs.v[0], "mr_dlq_attempts", "2");
	dt_header_is(&rs.v[0], "mr_dlq_reason",
		     "the consumer went away holding it");
	mrt_records_free(&rs);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* The breaker through mailroomd: a storm of nacks trips it (status says
 * so, and why); `mailroom dlq resume` makes it half-open; an ack closes
 * it. */
START_TEST(test_breaker)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_subscribe_opts o = {
	    .order = MR_ORDER_KEY,
	    .set   = MR_SUB_MAX_ATTEMPTS | MR_SUB_BACKOFF_INITIAL |
		   MR_SUB_BREAKER_MAX | MR_SUB_BREAKER_PERIOD |
		   MR_SUB_BREAKER_COOLDOWN,
	    .max_attempts        = 0,
	    .backoff_initial_ms  = 0,
	    .breaker_max         = 5,
	    .breaker_period_ms   = 60000,
	    .breaker_cooldown_ms = 600000, // only the command resumes it
	};
	char        topic[128], group[128];
	char       *out = NULL;
	size_t      len;
	struct got  g[8];
	json_t     *st;
	int         rc;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "storm");
	mrt_uniq(group, sizeof(group), "g-storm");
	mrt_ck_topic_create(c, topic, 1);
	dt_publish(c, topic, "A", "a0");
	dt_publish(c, topic, "B", "b0");
	rc = mr_subscribe(c, group, (const char *[]){topic}, 1, &o, &s);
	ck_assert_msg(rc == MR_OK, "subscribe: %s: %s", mr_err_name(rc),
		      mr_client_last_error());
	// Five nacks of whatever comes trip it (every delivery is nacked: one
	// left in flight would hold the half-open breaker's one place).
	for (int nacks = 0; nacks < 5;) {
		size_t n = fetch_got(s, 8, WAIT_MS, g, 8);

		for (size_t i = 0; i < n; i++, nacks++) {
			size_t failed;

			ck_assert_int_eq(mr_consumer_nack(s, &g[i].handle, 1,
							  "storm", &failed),
					 MR_OK);
		}
	}
	ck_assert_int_eq(dt_status_count(&d, group, "trips"), 1);
	st  = mrt_daemon_status(&d);
	out = json_dumps(st, 0);
	ck_assert_ptr_nonnull(strstr(out, "\"breaker\": \"open\""));
	free(out);
	json_decref(st);
	expect_nothing(s, 2, 300, "the breaker is open");
	ck_assert_int_eq(mrt_sh_output(&out, &len,
				       "\"$MR_BINARY_DIR/mailroom\" --url '%s' "
				       "status",
				       d.url),
			 0);
	ck_assert_msg(strstr(out, "breaker open") != NULL, "%s", out);
	free(out);

	// An operator resumes it: one at a time, then an ack closes it.
	ck_assert_int_eq(mrt_sh("\"$MR_BINARY_DIR/mailroom\" --url '%s' dlq "
				"resume '%s'",
				d.url, group),
			 0);
	ck_assert_int_eq(mrt_sh("\"$MR_BINARY_DIR/mailroom\" --url '%s' dlq "
				"resume no-such-group",
				d.url),
			 1);
	ck_assert_uint_eq(fetch_got(s, 8, WAIT_MS * 5, g, 8), 1);
	expect_nothing(s, 1, 300, "half-open: one at a time");
	ack1(s, g[0].handle);
	{
		size_t  got = 0;
		int64_t t0  = mrt_now_ms();

		while (got < 1 && mrt_now_ms() - t0 < LOOP_MS) {
			size_t n = fetch_got(s, 8, WAIT_MS, g, 8);

			for (size_t i = 0; i < n; i++)
				ack1(s, g[i].handle);
			got += n;
		}
		ck_assert_uint_eq(got, 1);
	}
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* The dead-letter write fails (the embedded cluster refuses the next
 * Produce requests): the original stays unacked, its key waits, and it is
 * quarantined once when a write succeeds. */
START_TEST(test_dlq_write_fails)
{
	// Without the journal: the injected errors hit any Produce request,
	// and the dead-letter write must be the only one.
	const char *const  sets[] = {"fault_injection=true",
				     "consumer.journal=false", NULL};
	struct mrt_daemon  d;
	mr_client         *c;
	mr_consumer       *s;
	mr_subscribe_opts  o = {.order        = MR_ORDER_KEY,
				.set          = MR_SUB_MAX_ATTEMPTS,
				.max_attempts = 1};
	char               topic[128], dlq[160], group[128], req[256];
	struct got         g[8];
	struct mrt_records rs;
	size_t             failed;
	int                rc;

	if (mrt_real)
		return; // the fault needs the embedded cluster
	mrt_ck_daemon_start(&d, sets);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "dlqfail");
	mrt_uniq(group, sizeof(group), "g-dlqfail");
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	mrt_ck_topic_create(c, topic, 1);
	mrt_ck_topic_create(c, dlq, 1);
	dt_publish(c, topic, "A", "a0");
	dt_publish(c, topic, "A", "a1");
	rc = mr_subscribe(c, group, (const char *[]){topic}, 1, &o, &s);
	ck_assert_int_eq(rc, MR_OK);
	ck_assert_uint_eq(fetch_got(s, 8, WAIT_MS * 5, g, 8), 1);
	ck_assert_str_eq(g[0].payload, "a0");
	// 29: TOPIC_AUTHORIZATION_FAILED, a refusal librdkafka does not
	// retry.
	snprintf(req, sizeof(req),
		 "{\"op\":\"fault.produce_errors\",\"count\":3,\"error\":29}");
	mrt_ck_admin_ok(c, req);
	ck_assert_int_eq(mr_consumer_reject(s, &g[0].handle, 1, "bad", &failed),
			 MR_OK);
	// a1 comes once a0 is in the dead-letter topic, after the failures.
	{
		int64_t t0 = mrt_now_ms();
		size_t  n  = 0;

		while (n == 0 && mrt_now_ms() - t0 < LOOP_MS)
			n = fetch_got(s, 8, WAIT_MS, g, 8);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(g[0].payload, "a1");
		ack1(s, g[0].handle);
	}
	ck_assert_int_ge(dt_status_count(&d, group, "dlq_errors"), 1);
	ck_assert_int_eq(dt_status_count(&d, group, "quarantined"), 1);
	dt_read(&d, dlq, 1, &rs);
	ck_assert_uint_eq(rs.n, 1);
	dt_header_is(&rs.v[0], "mr_dlq_reason", "bad");
	mrt_records_free(&rs);
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* kill -9 of mailroomd while it quarantines (real Kafka only: the
 * embedded cluster dies with mailroomd): each message is quarantined at
 * least once, never delivered again, and its key goes on. Three rounds,
 * each killing mailroomd right after a reject, so that the kill lands at
 * different points of the quarantine. */
START_TEST(test_mailroomd_killed)
{
	struct mrt_daemon  d;
	mr_client         *c;
	mr_consumer       *s;
	// Attempts to spare: only the journaled reject keeps a message from
	// coming back after the kill.
	mr_subscribe_opts  o = {.order        = MR_ORDER_KEY,
				.set          = MR_SUB_MAX_ATTEMPTS,
				.max_attempts = 5};
	char               topic[128], dlq[160], group[128], p[16];
	struct got         g[8];
	struct mrt_records rs;
	size_t             failed;

	if (!mrt_real)
		return; // kill -9 would take the embedded cluster with it
	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "killq");
	mrt_uniq(group, sizeof(group), "g-killq");
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	mrt_ck_topic_create(c, topic, 1);
	mrt_ck_topic_create(c, dlq, 1);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "m%d", i);
		dt_publish(c, topic, "A", p);
	}
	mr_client_free(c);
	for (int round = 0; round < 3; round++) {
		int64_t t0 = mrt_now_ms();
		size_t  n  = 0;

		if (round > 0)
			mrt_ck_daemon_restart(&d, NULL);
		// A short timeout: the client outlives the mailroomd it killed.
		c = mrt_ck_client(&d, 5000, 0);
		ck_assert_int_eq(mr_subscribe(c, group,
					      (const char *[]){topic}, 1, &o,
					      &s),
				 MR_OK);
		// The next message of A is m<round>: the ones rejected before
		// never come back.
		while (n == 0 && mrt_now_ms() - t0 < LOOP_MS)
			n = fetch_got(s, 8, WAIT_MS, g, 8);
		ck_assert_uint_eq(n, 1);
		snprintf(p, sizeof(p), "m%d", round);
		ck_assert_str_eq(g[0].payload, p);
		ck_assert_int_eq(
		    mr_consumer_reject(s, &g[0].handle, 1, "poison", &failed),
		    MR_OK);
		mrt_daemon_kill(&d);
		mr_consumer_free(s);
		mr_client_free(c);
	}
	mrt_ck_daemon_restart(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	ck_assert_int_eq(
	    mr_subscribe(c, group, (const char *[]){topic}, 1, &o, &s), MR_OK);
	{
		int64_t t0 = mrt_now_ms();
		size_t  n  = 0;

		while (n == 0 && mrt_now_ms() - t0 < LOOP_MS)
			n = fetch_got(s, 8, WAIT_MS, g, 8);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(g[0].payload, "m3");
		ack1(s, g[0].handle);
	}
	// Each rejected message is in the dead-letter topic, at least once
	// (a kill between the write and the settle writes it again), each
	// copy naming the same original offset.
	dt_read(&d, dlq, 3, &rs);
	for (int i = 0; i < 3; i++) {
		size_t copies = 0;

		snprintf(p, sizeof(p), "m%d", i);
		for (size_t k = 0; k < rs.n; k++)
			if (rs.v[k].payload_len == 2 &&
			    memcmp(rs.v[k].payload, p, 2) == 0) {
				char off[8];

				snprintf(off, sizeof(off), "%d", i);
				dt_header_is(&rs.v[k], "mr_dlq_offset", off);
				copies++;
			}
		ck_assert_msg(copies >= 1, "%s is not in %s", p, dlq);
	}
	mrt_records_free(&rs);
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

static Suite *
dlq_suite(void)
{
	Suite *s  = suite_create("dlq");
	TCase *tc = tcase_create("dlq");

	tcase_add_test(tc, test_poison);
	tcase_add_test(tc, test_consumer_killed);
	tcase_add_test(tc, test_breaker);
	tcase_add_test(tc, test_dlq_write_fails);
	tcase_add_test(tc, test_mailroomd_killed);
	tcase_set_timeout(tc, 240);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("dlq", dlq_suite);
}
