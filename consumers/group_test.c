/*
 * Tests for consumers/group.h on the embedded mock cluster: what a fetch's
 * batch carries, a settle's result, the hooks (a nack, an expired
 * deadline), the stats, and when a group has joined (an empty assignment
 * counts); group_mem_test.c has the memory budget's. The mock cluster
 * delays a group's first join by 3 s; one group serves each case.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bridge/embedded.h"
#include "consumers/group.h"
#include "core/hist.h"
#include "mailroom/error.h"

#define GT_TOPIC "group_test"
#define GT_TOPIC_TWO "group_test_two"

/* What the callbacks and hooks saw, under a lock. */
struct gt {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	// The last fetch: a copy of what matters.
	bool     fetched;
	int      fetch_err;
	size_t   n;
	int64_t  offset[8];
	uint32_t attempt[8];
	uint64_t handle[8];
	char     id[8][64];
	bool     has_key[8];
	size_t   nhdrs[8];
	char     hdr0[8][32]; /* "name=value" of the first header */
	char     key[8][16];
	char     topic[8][32];
	char     value[8][16];
	size_t   size, size_sum;
	// The last settle.
	bool     settled;
	int      settle_err;
	uint32_t ok, nfailed;
	uint16_t status0;
	// Hooks.
	int      nacks, expiries;
	int64_t  nack_offset, expired_offset;
	uint32_t nack_attempt, expired_attempt;
	char     nack_reason[16], nack_id[64];
};

static void
gt_fetched(void *arg, int err, const struct mri_group_batch *b)
{
	struct gt *t = arg;

	pthread_mutex_lock(&t->lock);
	t->fetch_err = err;
	t->n         = 0;
	if (b != NULL) {
		t->size     = b->size;
		t->size_sum = 0;
		for (size_t i = 0; i < b->n && i < 8; i++) {
			const struct mri_group_delivery *d = &b->d[i];

			t->offset[i]  = d->offset;
			t->attempt[i] = d->attempt;
			t->handle[i]  = d->handle;
			t->has_key[i] = d->has_key;
			t->nhdrs[i]   = d->nhdrs;
			snprintf(t->id[i], sizeof(t->id[i]), "%.*s",
				 (int)d->id_len, d->id);
			snprintf(t->hdr0[i], sizeof(t->hdr0[i]), "%.*s=%.*s",
				 d->nhdrs ? (int)d->hdrs[0].name_len : 0,
				 d->nhdrs ? d->hdrs[0].name : "",
				 d->nhdrs ? (int)d->hdrs[0].value_len : 0,
				 d->nhdrs ? (const char *)d->hdrs[0].value
					  : "");
			snprintf(t->key[i], sizeof(t->key[i]), "%.*s",
				 (int)d->key_len, (const char *)d->key);
			snprintf(t->topic[i], sizeof(t->topic[i]), "%.*s",
				 (int)d->topic_len, d->topic);
			snprintf(t->value[i], sizeof(t->value[i]), "%.*s",
				 (int)d->value_len, (const char *)d->value);
			t->size_sum += d->size;
		}
		t->n = b->n;
	}
	t->fetched = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

static void
gt_settled(void *arg, int err, const struct mri_group_settle_result *r)
{
	struct gt *t = arg;

	pthread_mutex_lock(&t->lock);
	t->settle_err = err;
	t->ok         = r->settled;
	t->nfailed    = r->nfailed;
	t->status0    = r->nfailed > 0 ? r->failed[0].status : 0;
	t->settled    = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

static void
gt_on_failure(void *arg, const struct mri_group_record_id *r,
	      uint32_t attempt, enum mri_group_fail why, const char *reason,
	      size_t reason_len)
{
	struct gt *t = arg;

	pthread_mutex_lock(&t->lock);
	if (why == MRI_GROUP_NACKED) {
		t->nacks++;
		t->nack_offset  = r->offset;
		t->nack_attempt = attempt;
		snprintf(t->nack_reason, sizeof(t->nack_reason), "%.*s",
			 (int)reason_len, reason ? reason : "");
		snprintf(t->nack_id, sizeof(t->nack_id), "%.*s",
			 (int)r->id_len, r->id);
	} else if (why == MRI_GROUP_EXPIRED) {
		ck_assert_ptr_null(reason);
		t->expiries++;
		t->expired_offset  = r->offset;
		t->expired_attempt = attempt;
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

/* Wait for *flag (under t->lock) up to \p ms. @returns whether set. */
static bool
gt_wait(struct gt *t, bool *flag, int ms)
{
	struct timespec ts;
	bool            ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&t->lock);
	while (!*flag &&
	       pthread_cond_timedwait(&t->cv, &t->lock, &ts) == 0)
		;
	ok    = *flag;
	*flag = false;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

/* Produce three records: keyed with a ce_id, keyless without headers,
 * keyed with a header. */
static void
gt_produce(const char *bootstrap)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             err[256];
	rd_kafka_t      *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
			  sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	ck_assert_int_eq(rd_kafka_producev(
			     rk, RD_KAFKA_V_TOPIC(GT_TOPIC),
			     RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY("k0", 2),
			     RD_KAFKA_V_VALUE("v0", 2),
			     RD_KAFKA_V_HEADER("ce_id", "id-0", 4),
			     RD_KAFKA_V_END),
			 0);
	ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(GT_TOPIC),
					   RD_KAFKA_V_PARTITION(0),
					   RD_KAFKA_V_VALUE("v1", 2),
					   RD_KAFKA_V_END),
			 0);
	ck_assert_int_eq(rd_kafka_producev(
			     rk, RD_KAFKA_V_TOPIC(GT_TOPIC),
			     RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY("k2", 2),
			     RD_KAFKA_V_VALUE("v2", 2),
			     RD_KAFKA_V_HEADER("h", "x", 1),
			     RD_KAFKA_V_HEADER("", "skipped", 7),
			     RD_KAFKA_V_END),
			 0);
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
	rd_kafka_destroy(rk);
}

/* Fetch into t until \p want records came (or 15 s passed). */
static void
gt_fetch(struct mri_group *g, uint32_t sid, struct gt *t, size_t want)
{
	struct mri_group_fetch_req f = {10, 1 << 20, 1000};

	for (int i = 0; i < 15; i++) {
		ck_assert_int_eq(mri_group_fetch(g, sid, &f, gt_fetched, t),
				 MR_OK);
		ck_assert(gt_wait(t, &t->fetched, 5000));
		ck_assert_int_eq(t->fetch_err, MR_OK);
		if (t->n > 0) {
			ck_assert_uint_eq(t->n, want);
			return;
		}
	}
	ck_abort_msg("no records fetched");
}

static void
gt_settle(struct mri_group *g, struct gt *t, enum mri_group_settle_kind k,
	  uint64_t h, const char *reason)
{
	struct mri_group_range      r = {h, 1};
	struct mri_group_settle_req s = {
	    .kind       = k,
	    .reason     = reason,
	    .reason_len = reason ? strlen(reason) : 0,
	    .ranges     = &r,
	    .nranges    = 1,
	    .handles    = 1,
	};

	ck_assert_int_eq(mri_group_settle(g, &s, gt_settled, t), MR_OK);
	ck_assert(gt_wait(t, &t->settled, 5000));
	ck_assert_int_eq(t->settle_err, MR_OK);
}

START_TEST(test_group_hooks_and_stats)
{
	struct mri_embedded        *e;
	struct mri_group           *g;
	struct gt                   t;
	struct mri_group_stats      st;
	struct mri_group_part_stats ps[4];
	const char                 *topics[] = {GT_TOPIC};
	static const uint64_t       le[]     = {60000, 600000};
	struct mri_hist             lat;
	struct mri_group_conf       c        = {
	    .group              = "group_test",
	    .topics             = topics,
	    .ntopics            = 1,
	    .order              = MRI_ORDER_UNORDERED,
	    .credit             = 100,
	    .ack_deadline_ms    = 400,
	    .max_buffered       = 1000,
	    .revoke_wait_ms     = 100,
	    .session_timeout_ms = 6000,
	    .ack_latency        = &lat,
	};
	struct mri_group_hooks hooks = {
	    .on_failure = gt_on_failure,
	    .arg        = &t,
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             err[256];
	uint32_t         sid;
	uint64_t         h0, h1, h2;
	bool             committed = false;

	mri_hist_init(&lat, le, 2);
	memset(&t, 0, sizeof(t));
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cv, NULL);
	ck_assert_int_eq(mri_embedded_start(&e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, GT_TOPIC, 1, 1), MR_OK);
	gt_produce(mri_embedded_bootstraps(e));
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(e), err, sizeof(err));
	ck_assert_int_eq(mri_group_new(&g, conf, &c, &hooks, err,
				       sizeof(err)),
			 MR_OK);
	// Not before its first assignment, which the mock delays by 3 s.
	ck_assert(!mri_group_joined(g));
	ck_assert_uint_eq(mri_group_stats(g, &st, NULL, 0), 0);
	ck_assert(!st.joined);
	ck_assert_int_eq(mri_group_session_open(g, &sid), MR_OK);

	// The batch: records as they were produced, the default sizes.
	gt_fetch(g, sid, &t, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(t.offset[i], i);
		ck_assert_uint_eq(t.attempt[i], 1);
	}
	ck_assert_str_eq(t.id[0], "id-0");
	ck_assert_str_eq(t.id[1], GT_TOPIC "/0/1");
	ck_assert(t.has_key[0] && !t.has_key[1] && t.has_key[2]);
	ck_assert_uint_eq(t.nhdrs[0], 1);
	ck_assert_uint_eq(t.nhdrs[1], 0);
	ck_assert_uint_eq(t.nhdrs[2], 1); // the empty name is left out
	ck_assert_str_eq(t.value[2], "v2");
	// The group's copy of each, librdkafka's message long destroyed.
	ck_assert_str_eq(t.hdr0[0], "ce_id=id-0");
	ck_assert_str_eq(t.hdr0[2], "h=x");
	ck_assert_str_eq(t.key[0], "k0");
	ck_assert_str_eq(t.key[1], "");
	ck_assert_str_eq(t.key[2], "k2");
	ck_assert_str_eq(t.topic[1], GT_TOPIC);
	ck_assert_str_eq(t.value[0], "v0");
	ck_assert_uint_eq(t.size, t.size_sum);
	// topic, id, key, value, headers
	ck_assert_uint_eq(t.size, (10 + 4 + 2 + 2 + 5 + 4) +
				      (10 + 14 + 0 + 2) +
				      (10 + 14 + 2 + 2 + 2));
	h0 = t.handle[0];
	h1 = t.handle[1];
	h2 = t.handle[2];

	ck_assert_uint_eq(mri_group_stats(g, &st, ps, 4), 1);
	ck_assert_uint_eq(st.nparts, 1);
	ck_assert(st.joined); // records came: it was assigned
	ck_assert(mri_group_joined(g));
	ck_assert_uint_eq(st.sessions, 1);
	ck_assert_uint_eq(st.inflight, 3);
	ck_assert_uint_eq(st.buffered, 3);
	ck_assert_str_eq(ps[0].topic, GT_TOPIC);
	ck_assert_int_eq(ps[0].partition, 0);
	ck_assert_int_eq(ps[0].end_offset, 3);
	// None yet, or the commit of nothing acked: offset 0.
	ck_assert(ps[0].committed == -1 || ps[0].committed == 0);
	ck_assert_uint_eq(ps[0].buffered, 3);
	ck_assert_uint_eq(ps[0].inflight, 3);
	ck_assert_uint_eq(mri_group_stats(g, &st, NULL, 0), 1);

	// A nack: the hook hears of it, before the settle's callback.
	gt_settle(g, &t, MRI_GROUP_NACK, h0, "bad");
	ck_assert_uint_eq(t.ok, 1);
	ck_assert_uint_eq(t.nfailed, 0);
	ck_assert_int_eq(t.nacks, 1);
	ck_assert_int_eq(t.nack_offset, 0);
	ck_assert_uint_eq(t.nack_attempt, 1);
	ck_assert_str_eq(t.nack_reason, "bad");
	ck_assert_str_eq(t.nack_id, "id-0");
	// A stale handle fails, and no hook hears of it.
	gt_settle(g, &t, MRI_GROUP_NACK, h0, NULL);
	ck_assert_uint_eq(t.ok, 0);
	ck_assert_uint_eq(t.nfailed, 1);
	ck_assert_uint_eq(t.status0, MR_ENOENT);
	ck_assert_int_eq(t.nacks, 1);
	gt_settle(g, &t, MRI_GROUP_ACK, h2, NULL);
	ck_assert_uint_eq(t.ok, 1);

	// Record 1 is left to expire: the hook hears of it on the group's
	// thread.
	pthread_mutex_lock(&t.lock);
	for (int i = 0; i < 30 && t.expiries == 0; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&t.cv, &t.lock, &ts);
	}
	ck_assert_int_eq(t.expiries, 1);
	mri_group_stats(g, &st, NULL, 0);
	ck_assert_uint_eq(st.expired, 1);
	ck_assert_uint_eq(st.failed, 2); // the nack's and the expiry's
	ck_assert_int_eq(t.expired_offset, 1);
	ck_assert_uint_eq(t.expired_attempt, 1);
	pthread_mutex_unlock(&t.lock);
	(void)h1;

	// Both come again, at their second attempt.
	gt_fetch(g, sid, &t, 2);
	ck_assert_uint_eq(t.attempt[0], 2);
	ck_assert_uint_eq(t.attempt[1], 2);
	gt_settle(g, &t, MRI_GROUP_ACK, t.handle[0], NULL);
	gt_settle(g, &t, MRI_GROUP_ACK, t.handle[1], NULL);
	ck_assert_int_eq(t.nacks, 1);
	// The three acks, and only they, in the ack latency: produced within
	// the minute, so under its first bound.
	ck_assert_uint_eq(atomic_load(&lat.count), 3);
	ck_assert_uint_eq(atomic_load(&lat.bucket[0]), 3);
	ck_assert_uint_lt(atomic_load(&lat.sum), 3 * 60000);

	// Everything acked: committed within a commit round (0.5 s).
	for (int i = 0; i < 50 && !committed; i++) {
		mri_group_stats(g, &st, ps, 4);
		committed = ps[0].committed == 3;
		if (!committed)
			usleep(100 * 1000);
	}
	ck_assert(committed);
	ck_assert_uint_eq(st.inflight, 0);
	ck_assert_uint_eq(ps[0].inflight, 0);

	mri_group_session_close(g, sid);
	mri_group_free(g);
	mri_embedded_stop(e);
	pthread_mutex_destroy(&t.lock);
	pthread_cond_destroy(&t.cv);
}
END_TEST

/* A group as \p c says, on \p e's cluster. */
static struct mri_group *
gt_group(struct mri_embedded *e, const struct mri_group_conf *c)
{
	rd_kafka_conf_t  *conf = rd_kafka_conf_new();
	struct mri_group *g;
	char              err[256];

	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(e), err, sizeof(err));
	ck_assert_msg(mri_group_new(&g, conf, c, NULL, err, sizeof(err)) ==
			  MR_OK,
		      "%s", err);
	return g;
}

/* A member of group "group_test_two" on GT_TOPIC_TWO. */
static struct mri_group *
gt_member(struct mri_embedded *e)
{
	const char           *topics[] = {GT_TOPIC_TWO};
	struct mri_group_conf c        = {
	    .group              = "group_test_two",
	    .topics             = topics,
	    .ntopics            = 1,
	    .order              = MRI_ORDER_UNORDERED,
	    .credit             = 100,
	    .ack_deadline_ms    = 1000,
	    .max_buffered       = 1000,
	    .revoke_wait_ms     = 100,
	    .session_timeout_ms = 6000,
	};

	return gt_group(e, &c);
}

/* Two members, one partition: the member left without one has joined
 * all the same; once the other leaves, the one left gets the partition,
 * joined all along. */
START_TEST(test_group_joined_empty)
{
	struct mri_embedded   *e;
	struct mri_group      *a, *b;
	struct mri_group_stats sa, sb;
	char                   err[256];
	bool                   split = false, alone = false;

	ck_assert_int_eq(mri_embedded_start(&e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, GT_TOPIC_TWO, 1, 1),
			 MR_OK);
	a = gt_member(e);
	b = gt_member(e);
	// Rebalances come and go: wait (30 s at most) for the one where
	// both joined and one holds nothing.
	for (int i = 0; i < 300 && !split; i++) {
		mri_group_stats(a, &sa, NULL, 0);
		mri_group_stats(b, &sb, NULL, 0);
		split = sa.joined && sb.joined && sa.nparts + sb.nparts == 1;
		if (!split)
			usleep(100 * 1000);
	}
	ck_assert_msg(split,
		      "a: joined %d, %zu partitions; b: joined %d, %zu "
		      "partitions",
		      sa.joined, sa.nparts, sb.joined, sb.nparts);
	mri_group_free(b);
	// The rebalance takes a's assignment back for a moment; joined stays
	// (readiness must not flap with rebalances).
	for (int i = 0; i < 300 && !alone; i++) {
		mri_group_stats(a, &sa, NULL, 0);
		ck_assert(sa.joined);
		alone = sa.nparts == 1;
		if (!alone)
			usleep(100 * 1000);
	}
	ck_assert_msg(alone, "a: joined %d, %zu partitions", sa.joined,
		      sa.nparts);
	mri_group_free(a);
	mri_embedded_stop(e);
}
END_TEST

/* ---- the memory budget ---------------------------------------------- */

int
main(void)
{
	Suite   *s  = suite_create("group");
	TCase   *tc = tcase_create("embedded");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_group_hooks_and_stats);
	tcase_add_test(tc, test_group_joined_empty);
	tcase_set_timeout(tc, 90);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
