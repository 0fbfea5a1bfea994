/*
 * The consume path end to end, through the C client, its settles and
 * failures: mailroomd as a child
 * process, records published through it (or by a raw librdkafka producer),
 * consumed through mr_subscribe, mr_fetch, the settle calls and
 * mr_consume_run, and the group's commits read back from Kafka.
 *
 * Built twice: consume_settle_embedded runs on mailroomd's embedded cluster;
 * consume_settle_kafka (MR_KAFKA=1) on the real broker of the CTest fixture,
 * whose bootstrap is in $MR_KAFKA_DIR/bootstrap (skip, 77, when the fixture
 * wrote $MR_KAFKA_DIR/unavailable).
 *
 * Cases (this file): nack, extend and an expired ack deadline; a consumer
 * process that exits or is killed holding deliveries; unknown and stale
 * handles, unknown sessions and malformed frames sent raw over nng; and, on
 * real Kafka only, acks beyond the committed prefix kept across a restart
 * of mailroomd. consume_api_test.c has the delivery and the orders;
 * consume_common.c the helpers both use.
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

extern char **environ;

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
consume_settle_suite(void)
{
	Suite *s = suite_create(mrt_real ? "consume_settle_kafka"
				       : "consume_settle_embedded");
	TCase *tc;

	// Set here, not from CK_DEFAULT_TIMEOUT: each case is bounded on its
	// own, well under the CTest timeout of the whole binary.
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
	return mrt_main("consume_settle_test", consume_settle_suite);
}
