/*
 * Tests of a group's memory budget on the embedded mock cluster: what it
 * buffers at most and that every record still comes, what a record acked
 * before costs when it comes again, the order of records across an
 * assignment held up, and the acked ids a budget pays for. The mock
 * cluster delays a group's first join by 3 s; one group serves each case.
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
#include "consumers/group_internal.h"
#include "mailroom/error.h"

#define GT_TOPIC_MEM "group_test_mem"
#define GT_MEM_N 3000
#define GT_MEM_VALUE 1000
#define GT_TOPIC_BEYOND "group_test_beyond"
#define GT_BEYOND_N 20

/* What the memory case's fetches handed out: every handle, to ack. */
struct gt_mem {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	bool            fetched;
	int             err;
	size_t          n;
	uint64_t        handle[100];
	int64_t         offset[100];
};

static void
gt_mem_fetched(void *arg, int err, const struct mri_group_batch *b)
{
	struct gt_mem *t = arg;

	pthread_mutex_lock(&t->lock);
	t->err = err;
	t->n   = 0;
	for (size_t i = 0; b != NULL && i < b->n && i < 100; i++) {
		t->offset[t->n]   = b->d[i].offset;
		t->handle[t->n++] = b->d[i].handle;
	}
	t->fetched = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

static void
gt_mem_settled(void *arg, int err, const struct mri_group_settle_result *r)
{
	struct gt_mem *t = arg;

	pthread_mutex_lock(&t->lock);
	t->err     = err != MR_OK ? err : (int)r->nfailed;
	t->fetched = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

static void
gt_mem_wait(struct gt_mem *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&t->lock);
	while (!t->fetched &&
	       pthread_cond_timedwait(&t->cv, &t->lock, &ts) == 0)
		;
	ck_assert(t->fetched);
	t->fetched = false;
	pthread_mutex_unlock(&t->lock);
	ck_assert_int_eq(t->err, MR_OK);
}

/* After each ack: the buffer stays within the budget (*arg records). */
static void
gt_mem_bounded(struct mri_group *g, void *arg)
{
	struct mri_group_stats      st;
	struct mri_group_part_stats ps[1];
	size_t                      most = *(size_t *)arg;

	mri_group_stats(g, &st, ps, 1);
	ck_assert_msg(ps[0].buffered <= most,
		      "buffered %zu records of 1 KB; the budget holds %zu",
		      ps[0].buffered, most);
}

/* An unordered group named as its one topic (*topics, one partition),
 * with a budget of \p memory bytes. */
static struct mri_group_conf
gt_one_topic(const char *const *topics, size_t memory)
{
	return (struct mri_group_conf){
	    .group              = topics[0],
	    .topics             = topics,
	    .ntopics            = 1,
	    .order              = MRI_ORDER_UNORDERED,
	    .credit             = 100,
	    .ack_deadline_ms    = 30000,
	    .max_buffered       = 1000,
	    .revoke_wait_ms     = 100,
	    .session_timeout_ms = 6000,
	    .memory_bytes       = memory,
	    .partitions_hint    = 1,
	};
}

/* A group named as \p topic reading it (one partition, on \p e's
 * cluster) with a budget of 800 KiB and \p hooks (NULL: none). */
static struct mri_group *
gt_budget_member(struct mri_embedded *e, const char *topic,
		 const struct mri_group_hooks *hooks)
{
	const char           *topics[] = {topic};
	struct mri_group_conf c        = gt_one_topic(topics, 800 << 10);
	rd_kafka_conf_t      *conf     = rd_kafka_conf_new();
	struct mri_group     *g;
	char                  err[256];

	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(e), err, sizeof(err));
	ck_assert_msg(mri_group_new(&g, conf, &c, hooks, err, sizeof(err)) ==
			  MR_OK,
		      "%s", err);
	return g;
}

/* A cluster with \p topic (one partition) holding \p n records of \p size
 * bytes, and gt_budget_member reading it. */
static struct mri_group *
gt_budget_group(struct mri_embedded **e, const char *topic, int n,
		size_t size, const struct mri_group_hooks *hooks)
{
	rd_kafka_conf_t *conf  = rd_kafka_conf_new();
	char            *value = malloc(size);
	char             err[256];
	rd_kafka_t      *rk;

	ck_assert_ptr_nonnull(value);
	ck_assert_int_eq(mri_embedded_start(e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(*e, topic, 1, 1), MR_OK);
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  mri_embedded_bootstraps(*e), err, sizeof(err));
	memset(value, 'v', size);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(
			rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(topic),
				RD_KAFKA_V_PARTITION(0),
				RD_KAFKA_V_VALUE(value, size),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_END),
			0);
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
	rd_kafka_destroy(rk);
	free(value);
	return gt_budget_member(*e, topic, hooks);
}

/* Fetch and ack everything in session \p sid (up to 100 a fetch) until
 * \p n records came; each fetch's handles are acked before the next.
 * @returns the records seen; *order false once an offset came other than
 *          the one after the last. */
static size_t
gt_drain(struct mri_group *g, uint32_t sid, struct gt_mem *t, size_t n,
	 bool *order, void (*each)(struct mri_group *g, void *arg), void *arg)
{
	size_t  got  = 0;
	int64_t next = 0;

	*order = true;
	for (int i = 0; i < 1000 && got < n; i++) {
		struct mri_group_fetch_req  f = {100, 1 << 20, 1000};
		struct mri_group_range      r[100];
		struct mri_group_settle_req s = {.kind = MRI_GROUP_ACK};

		ck_assert_int_eq(mri_group_fetch(g, sid, &f, gt_mem_fetched,
						 t),
				 MR_OK);
		gt_mem_wait(t);
		if (t->n == 0)
			continue;
		for (size_t k = 0; k < t->n; k++) {
			r[k] = (struct mri_group_range){t->handle[k], 1};
			*order = *order && t->offset[k] == next;
			next   = t->offset[k] + 1;
		}
		s.ranges  = r;
		s.nranges = (uint32_t)t->n;
		s.handles = t->n;
		got += t->n;
		ck_assert_int_eq(mri_group_settle(g, &s, gt_mem_settled, t),
				 MR_OK);
		gt_mem_wait(t);
		if (each != NULL)
			each(g, arg);
	}
	return got;
}

/* Records acked beyond the committed offset before a rebalance come
 * again to the next member, which lets them go (acked before) and counts
 * none of them against its buffers: it used to count them all, for good,
 * and a partition that saw many looked full. */
START_TEST(test_group_acked_before_bytes)
{
	struct mri_embedded        *e;
	struct mri_group           *g;
	struct gt_mem               t = {.n = 0};
	struct mri_group_stats      st;
	struct mri_group_part_stats ps[1];
	struct mri_group_fetch_req  f = {100, 1 << 20, 5000};
	struct mri_group_range      r[GT_BEYOND_N];
	struct mri_group_settle_req s = {.kind = MRI_GROUP_ACK};
	uint32_t                    sid;
	size_t                      n = 0, one;

	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cv, NULL);
	g = gt_budget_group(&e, GT_TOPIC_BEYOND, GT_BEYOND_N, GT_MEM_VALUE,
			    NULL);
	ck_assert_int_eq(mri_group_session_open(g, &sid), MR_OK);
	for (int i = 0; i < 50 && t.n < GT_BEYOND_N; i++) {
		ck_assert_int_eq(mri_group_fetch(g, sid, &f, gt_mem_fetched,
						 &t),
				 MR_OK);
		gt_mem_wait(&t);
		// Every record but the first, acked.
		for (size_t k = 0; k < t.n; k++)
			if (t.offset[k] > 0)
				r[n++] = (struct mri_group_range){t.handle[k],
								  1};
		if (n + 1 >= GT_BEYOND_N)
			break;
	}
	ck_assert_uint_eq(n, GT_BEYOND_N - 1);
	s.ranges  = r;
	s.nranges = (uint32_t)n;
	s.handles = n;
	ck_assert_int_eq(mri_group_settle(g, &s, gt_mem_settled, &t), MR_OK);
	gt_mem_wait(&t);
	ck_assert_int_eq(t.err, MR_OK);
	mri_group_free(g); // commits offset 0, the rest acked beyond it

	g = gt_budget_member(e, GT_TOPIC_BEYOND, NULL);
	for (int i = 0; i < 150; i++) {
		mri_group_stats(g, &st, ps, 1);
		if (st.nparts == 1 && ps[0].buffered == 1)
			break;
		usleep(200 * 1000);
	}
	ck_assert_uint_eq(st.nparts, 1);
	ck_assert_uint_eq(ps[0].buffered, 1);
	one = GT_MEM_VALUE + sizeof(struct group_rec) + GROUP__REC_OVERHEAD +
	      64;
	ck_assert_msg(ps[0].bytes > GT_MEM_VALUE && ps[0].bytes < one,
		      "1 record buffered, %zu bytes counted (one costs less "
		      "than %zu)",
		      ps[0].bytes, one);
	mri_group_free(g);
	mri_embedded_stop(e);
	pthread_mutex_destroy(&t.lock);
	pthread_cond_destroy(&t.cv);
}
END_TEST

/* A group whose budget's buffer quarter holds about 130 records of 1 KB
 * (max_buffered alone would let it hold 1,000): it buffers that many at
 * most, and still delivers every record as they are acked. */
START_TEST(test_group_memory_bound)
{
	struct mri_embedded        *e;
	struct mri_group           *g;
	struct gt_mem               t = {.n = 0};
	struct mri_group_stats      st;
	struct mri_group_part_stats ps[1];
	// A record costs its copy (its value, topic and id) and its slots.
	size_t most = (200 << 10) / (GT_MEM_VALUE + sizeof(struct group_rec) +
				     GROUP__REC_OVERHEAD) + 1;
	size_t                      seen = 0, last = 0, got = 0;
	uint32_t                    sid;
	bool                        order;

	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cv, NULL);
	g = gt_budget_group(&e, GT_TOPIC_MEM, GT_MEM_N, GT_MEM_VALUE, NULL);

	// Until the buffer stops growing (every 200 ms the same, 1 s in
	// all), at most 30 s: nothing is fetched meanwhile.
	for (int i = 0, same = 0; i < 150 && same < 5; i++) {
		usleep(200 * 1000);
		mri_group_stats(g, &st, ps, 1);
		seen = st.nparts == 1 ? ps[0].buffered : 0;
		same = seen > 0 && seen == last ? same + 1 : 0;
		last = seen;
	}
	ck_assert_msg(seen > most / 2 && seen <= most,
		      "buffered %zu records of 1 KB; the budget holds %zu",
		      seen, most);

	// Every record still comes, as acks make room.
	ck_assert_int_eq(mri_group_session_open(g, &sid), MR_OK);
	got = gt_drain(g, sid, &t, GT_MEM_N, &order, gt_mem_bounded, &most);
	ck_assert_uint_eq(got, GT_MEM_N);
	ck_assert(order);
	mri_group_free(g);
	mri_embedded_stop(e);
	pthread_mutex_destroy(&t.lock);
	pthread_cond_destroy(&t.cv);
}
END_TEST

/* ---- records in order from an assignment's first fetch ------------- */

#define GT_TOPIC_ORDER "group_test_order"
#define GT_ORDER_N 3000

/* A slow on_assigned: librdkafka fetches meanwhile. */
static void
gt_slow_assigned(void *arg, size_t n)
{
	(void)arg;
	(void)n;
	usleep(1000 * 1000);
}

/* Each partition's queue is its own before the fetch starts: what
 * librdkafka fetched while the group was still busy with the assignment
 * (here, a slow hook) waits there, in order, with what it fetches later.
 * When the queue was made after rd_kafka_assign, the first fetch went to
 * the consumer's queue, read a record a round, while later ones came from
 * the partition's in batches: records arrived out of order, the engine
 * refused those below the last it had, and acks committed past them (the
 * CI failure of mirror_embedded's hand-off under TSan). */
START_TEST(test_group_assign_order)
{
	struct mri_embedded   *e;
	struct mri_group      *g;
	struct gt_mem          t = {.n = 0};
	struct mri_group_stats st;
	struct mri_group_hooks hooks = {.on_assigned = gt_slow_assigned};
	uint32_t               sid;
	bool                   order;
	size_t                 got;

	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cv, NULL);
	g = gt_budget_group(&e, GT_TOPIC_ORDER, GT_ORDER_N, 100, &hooks);
	ck_assert_int_eq(mri_group_session_open(g, &sid), MR_OK);
	got = gt_drain(g, sid, &t, GT_ORDER_N, &order, NULL, NULL);
	mri_group_stats(g, &st, NULL, 0);
	ck_assert_msg(st.stray == 0,
		      "%zu records came through the consumer's queue",
		      st.stray);
	ck_assert_msg(order && got == GT_ORDER_N,
		      "%zu of %d records, in order: %d", got, GT_ORDER_N,
		      order);
	mri_group_free(g);
	mri_embedded_stop(e);
	pthread_mutex_destroy(&t.lock);
	pthread_cond_destroy(&t.cv);
}
END_TEST

/* The journal's acked ids come from the budget unless a number is set,
 * and 500 000 without either; the consumer waits fetch_wait_ms at most
 * for a fetch. */
#define GT_TOPIC_IDS "group_test_ids"

static size_t
gt_acked_ids_max(struct mri_embedded *e, size_t memory, size_t entries,
		 uint32_t wait, long long *fetch_wait)
{
	const char           *topics[] = {GT_TOPIC_IDS};
	struct mri_group_conf c        = gt_one_topic(topics, memory);
	rd_kafka_conf_t      *conf = rd_kafka_conf_new();
	struct mri_group     *g;
	struct mri_group_stats st;
	char                  err[256], v[32];
	size_t                vn = sizeof(v);

	c.journal            = true;
	c.dedupe_window_ms   = 60000;
	c.dedupe_max_entries = entries;
	c.fetch_wait_ms      = wait;

	rd_kafka_conf_set(conf, "bootstrap.servers", mri_embedded_bootstraps(e),
			  err, sizeof(err));
	ck_assert_msg(mri_group_new(&g, conf, &c, NULL, err, sizeof(err)) ==
			      MR_OK,
		      "%s", err);
	mri_group_stats(g, &st, NULL, 0);
	ck_assert_int_eq(rd_kafka_conf_get(rd_kafka_conf(g->rk),
					   "fetch.wait.max.ms", v, &vn),
			 RD_KAFKA_CONF_OK);
	*fetch_wait = atoll(v);
	mri_group_free(g);
	return st.acked_ids_max;
}

START_TEST(test_group_settings)
{
	struct mri_embedded *e;
	char                 err[256];
	long long            wait;

	ck_assert_int_eq(mri_embedded_start(&e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, GT_TOPIC_IDS, 1, 1),
			 MR_OK);
	ck_assert_uint_eq(gt_acked_ids_max(e, 1 << 20, 0, 40, &wait),
			  (1 << 20) / 4 / MRI_GROUP_ID_BYTES);
	ck_assert_int_eq(wait, 40);
	ck_assert_uint_eq(gt_acked_ids_max(e, 1 << 20, 5000, 0, &wait), 5000);
	ck_assert_int_eq(wait, 500); // librdkafka's own
	ck_assert_uint_eq(gt_acked_ids_max(e, 0, 0, 0, &wait), 500000);
	mri_embedded_stop(e);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("group_mem");
	TCase   *tc = tcase_create("embedded");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_group_memory_bound);
	tcase_add_test(tc, test_group_acked_before_bytes);
	tcase_add_test(tc, test_group_assign_order);
	tcase_add_test(tc, test_group_settings);
	tcase_set_timeout(tc, 90);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
