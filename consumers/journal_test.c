/*
 * The group's journal (consumers/journal.h) on the embedded cluster:
 * writes from several threads at once, each callback called exactly once
 * and on the hub's report thread; what a write records counts at once; a
 * second journal on the same group (open beside the first, or after it was
 * freed) knows what the first wrote, dispatches as runs (version 2) or by
 * position (version 1, as earlier mailroomds wrote them), the larger
 * attempt winning; dispatches written behind reach Kafka with the next
 * write, by themselves, or at free; acks that may linger wait for a
 * tick or a write that goes, but not after a quiet spell; free with
 * writes in flight calls every callback exactly once, OK or with an
 * error, before it returns; journals
 * of two groups share one hub (its producer, its reader, its threads),
 * each reading its own group's records only.
 *
 * Each test starts its own cluster (Check forks a process per test, and
 * librdkafka's threads do not survive a fork). Waits are bounded by a
 * generous count of condition waits, never by a measured duration.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bridge/embedded.h"
#include "consumers/journal.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"

#define T_THREADS 4
#define T_WRITES 150 /* per thread */
#define T_ENTRIES 4  /* per write */
#define T_WAIT_S 120 /* a hang guard, not a measurement */

/* One write's record: how often and where its callback ran. */
struct t_write {
	atomic_int calls;
	atomic_int err;
	pthread_t  caller;
	pthread_t  cb_thread;
	atomic_int cb_on_caller;
};

struct t_state {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	long            calls; /* callbacks so far */
	pthread_t       cb_thread;
	bool            cb_thread_set;
	bool            cb_threads_differ;
};

static struct t_state t_st = {PTHREAD_MUTEX_INITIALIZER,
			      PTHREAD_COND_INITIALIZER, 0, 0, false, false};

static void
t_cb(void *arg, int err)
{
	struct t_write *w = arg;

	atomic_fetch_add(&w->calls, 1);
	atomic_store(&w->err, err);
	if (pthread_equal(pthread_self(), w->caller))
		atomic_store(&w->cb_on_caller, 1);
	pthread_mutex_lock(&t_st.lock);
	w->cb_thread = pthread_self();
	if (!t_st.cb_thread_set) {
		t_st.cb_thread     = pthread_self();
		t_st.cb_thread_set = true;
	} else if (!pthread_equal(t_st.cb_thread, pthread_self())) {
		t_st.cb_threads_differ = true;
	}
	t_st.calls++;
	pthread_cond_broadcast(&t_st.cv);
	pthread_mutex_unlock(&t_st.lock);
}

/* Wait until \p n callbacks ran in all, bounded by T_WAIT_S of waits. */
static void
t_wait_calls(long n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += T_WAIT_S;
	pthread_mutex_lock(&t_st.lock);
	while (t_st.calls < n)
		if (pthread_cond_timedwait(&t_st.cv, &t_st.lock, &ts) != 0)
			break;
	ck_assert_int_eq(t_st.calls, n);
	pthread_mutex_unlock(&t_st.lock);
}

static struct mri_embedded *
t_cluster(const char *group)
{
	struct mri_embedded *emb;
	char                 errstr[256], topic[256];

	ck_assert_msg(mri_embedded_start(&emb, 1, errstr, sizeof(errstr)) ==
			  MR_OK,
		      "%s", errstr);
	// As the journal names it; made here with one partition, as Kafka
	// would (the mock answers no CreateTopics).
	snprintf(topic, sizeof(topic), "__mailroom.journal.%s", group);
	ck_assert_int_eq(mri_embedded_topic_create(emb, topic, 1, 1), MR_OK);
	return emb;
}

static rd_kafka_conf_t *
t_conf(struct mri_embedded *emb)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             errstr[256];

	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
					   mri_embedded_bootstraps(emb),
					   errstr, sizeof(errstr)),
			 RD_KAFKA_CONF_OK);
	return conf;
}

/* A journal of \p group on \p hub (NULL: its own). */
static struct mri_journal *
t_journal_on(struct mri_embedded *emb, const char *group,
	     struct mri_journal_hub *hub)
{
	rd_kafka_conf_t        *conf = t_conf(emb);
	struct mri_journal     *j;
	struct mri_journal_conf c = {group, 3600 * 1000, 100000, false, hub};
	char                    errstr[256];

	ck_assert_msg(mri_journal_new(&j, conf, &c, 30000, errstr,
				      sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	rd_kafka_conf_destroy(conf);
	return j;
}

static struct mri_journal *
t_journal(struct mri_embedded *emb, const char *group)
{
	return t_journal_on(emb, group, NULL);
}

/* Entry k of write i of thread t: positions and ids never repeat. */
static uint64_t
t_hash(int t, int i, int k)
{
	uint64_t v = ((uint64_t)t << 40) | ((uint64_t)i << 8) | (uint64_t)k;

	return mri_journal_hash(MRI_JOURNAL_HASH_INIT, &v, sizeof(v));
}

static uint32_t
t_attempt(int t, int i)
{
	return (uint32_t)(1 + (t * 7 + i) % 13);
}

/* Thread t's partition; write i's entries are offsets i * 8 + k of it. */
static uint64_t
t_part(int t)
{
	return mri_journal_part_key("jt-topic", t);
}

static void
t_offsets(int i, int64_t *o)
{
	for (int k = 0; k < T_ENTRIES; k++)
		o[k] = (int64_t)i * 8 + k;
}

/* Write i of a thread: 0 dispatches as a run, 1 acks, 2 dispatches by
 * position (version 1). */
static int
t_kind(int i)
{
	return i % 3;
}

struct t_writer {
	struct mri_journal *j;
	int                 t;
	struct t_write     *w;      /* T_WRITES of this thread */
	int                 misses; /* lookups just after a write that missed */
};

/* Write i of thread t: t_kind(i) says what. */
static int
t_write_one(struct mri_journal *j, int t, int i, struct t_write *w)
{
	struct mri_journal_entry e[T_ENTRIES];
	struct mri_journal_run   run = {t_part(t), (int64_t)i * 8, T_ENTRIES,
					t_attempt(t, i)};

	if (t_kind(i) == 0)
		return mri_journal_write_runs(j, &run, 1, t_cb, w);
	for (int k = 0; k < T_ENTRIES; k++) {
		e[k].hash = t_kind(i) == 1
				? t_hash(t, i, k)
				: mri_journal_pos_of(t_part(t), run.first + k);
		e[k].attempt = t_kind(i) == 1 ? 0 : t_attempt(t, i);
	}
	return mri_journal_write(j,
				 t_kind(i) == 1 ? MRI_JOURNAL_ACK
						: MRI_JOURNAL_DISPATCH,
				 e, T_ENTRIES, t_cb, w);
}

/* What \p j knows of write i of thread t, against what it wrote.
 * @returns the number of entries that differ. */
static int
t_differs(struct mri_journal *j, int t, int i, bool quiet)
{
	uint64_t h[T_ENTRIES];
	int64_t  o[T_ENTRIES];
	uint32_t att[T_ENTRIES];
	bool     acked[T_ENTRIES];
	bool     ack = t_kind(i) == 1;
	int      bad = 0;

	for (int k = 0; k < T_ENTRIES; k++)
		h[k] = t_hash(t, i, k);
	t_offsets(i, o);
	mri_journal_lookup(j, T_ENTRIES, t_part(t), o, att, h, acked);
	for (int k = 0; k < T_ENTRIES; k++) {
		uint32_t want = ack ? 0 : t_attempt(t, i);

		if (acked[k] == ack && att[k] == want)
			continue;
		bad++;
		if (!quiet)
			ck_abort_msg("t%d w%d e%d (kind %d): acked %d, "
				     "attempts %u, not %u",
				     t, i, k, t_kind(i), acked[k], att[k],
				     want);
	}
	return bad;
}

/* Each write is looked up at once. */
static void *
t_writer_main(void *arg)
{
	struct t_writer *tw = arg;

	for (int i = 0; i < T_WRITES; i++) {
		tw->w[i].caller = pthread_self();
		if (t_write_one(tw->j, tw->t, i, &tw->w[i]) != MR_OK) {
			tw->misses += 1000; // fails the test below
			atomic_fetch_add(&tw->w[i].calls, 1000);
			continue;
		}
		// "they count in memory at once"
		tw->misses += t_differs(tw->j, tw->t, i, true);
	}
	return NULL;
}

/* Write from T_THREADS threads at once into \p j; returns the writes
 * (T_THREADS * T_WRITES, thread-major). */
static struct t_write *
t_write_all(struct mri_journal *j)
{
	pthread_t        th[T_THREADS];
	struct t_writer  tw[T_THREADS];
	struct t_write  *w = calloc(T_THREADS * T_WRITES, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	for (int t = 0; t < T_THREADS; t++) {
		tw[t] = (struct t_writer){j, t, w + t * T_WRITES, 0};
		ck_assert_int_eq(
		    pthread_create(&th[t], NULL, t_writer_main, &tw[t]), 0);
	}
	for (int t = 0; t < T_THREADS; t++) {
		pthread_join(th[t], NULL);
		ck_assert_msg(tw[t].misses == 0,
			      "thread %d: %d entries not counted at once", t,
			      tw[t].misses);
	}
	return w;
}

/* Every write's entries are known to \p j. */
static void
t_check_known(struct mri_journal *j)
{
	for (int t = 0; t < T_THREADS; t++)
		for (int i = 0; i < T_WRITES; i++)
			t_differs(j, t, i, false);
}

START_TEST(test_concurrent_writes_called_once)
{
	struct mri_embedded *emb = t_cluster("jt-concurrent");
	struct mri_journal  *j   = t_journal(emb, "jt-concurrent");
	struct t_write      *w   = t_write_all(j);

	t_wait_calls(T_THREADS * T_WRITES);
	for (int i = 0; i < T_THREADS * T_WRITES; i++) {
		ck_assert_int_eq(atomic_load(&w[i].calls), 1);
		ck_assert_int_eq(atomic_load(&w[i].err), MR_OK);
		ck_assert_int_eq(atomic_load(&w[i].cb_on_caller), 0);
	}
	// "Write callbacks run on the hub's report thread": one thread,
	// none of the writers.
	ck_assert(!t_st.cb_threads_differ);
	t_check_known(j);
	// Never a second call, not even at free.
	mri_journal_free(j);
	ck_assert_int_eq(t_st.calls, T_THREADS * T_WRITES);
	for (int i = 0; i < T_THREADS * T_WRITES; i++)
		ck_assert_int_eq(atomic_load(&w[i].calls), 1);
	mri_embedded_stop(emb);
	free(w);
}
END_TEST

START_TEST(test_reopen_catches_up)
{
	struct mri_embedded *emb = t_cluster("jt-reopen");
	struct mri_journal  *a   = t_journal(emb, "jt-reopen");
	struct mri_journal  *b, *c;
	struct t_write      *w = t_write_all(a);
	uint64_t             h = t_hash(99, 1, 1);
	bool                 acked = false;
	struct t_write       late  = {0};

	t_wait_calls(T_THREADS * T_WRITES);
	// Beside the first: a second instance reads what the first wrote.
	b = t_journal(emb, "jt-reopen");
	t_check_known(b);
	// ... and follows what it writes afterwards.
	late.caller = pthread_self();
	ck_assert_int_eq(mri_journal_write(a, MRI_JOURNAL_ACK,
					   &(struct mri_journal_entry){h, 0},
					   1, t_cb, &late),
			 MR_OK);
	t_wait_calls(T_THREADS * T_WRITES + 1);
	ck_assert_int_eq(mri_journal_catch_up(b, 30000), MR_OK);
	mri_journal_lookup(b, 1, 0, NULL, NULL, &h, &acked);
	ck_assert(acked);
	// After the first is gone: a new instance knows it all.
	mri_journal_free(a);
	mri_journal_free(b);
	c = t_journal(emb, "jt-reopen");
	t_check_known(c);
	acked = false;
	mri_journal_lookup(c, 1, 0, NULL, NULL, &h, &acked);
	ck_assert(acked);
	// Another group's journal knows nothing of it.
	mri_journal_free(c);
	{
		char topic[] = "__mailroom.journal.jt-other";

		ck_assert_int_eq(mri_embedded_topic_create(emb, topic, 1, 1),
				 MR_OK);
		c     = t_journal(emb, "jt-other");
		acked = true;
		mri_journal_lookup(c, 1, 0, NULL, NULL, &h, &acked);
		ck_assert(!acked);
		mri_journal_free(c);
	}
	mri_embedded_stop(emb);
	free(w);
}
END_TEST

/* A partition's attempts from a run and from version 1 positions: each
 * offset has the larger; a redelivery inside the run splits it; a new
 * instance reads the same from Kafka. */
START_TEST(test_runs_and_positions)
{
	struct mri_embedded *emb  = t_cluster("jt-runs");
	struct mri_journal  *a    = t_journal(emb, "jt-runs"), *b;
	uint64_t             part = mri_journal_part_key("jt-runs-data", 3);
	struct mri_journal_run   r[] = {{part, 0, 10, 3}, {part, 4, 2, 5}};
	struct mri_journal_entry e[] = {{mri_journal_pos_of(part, 2), 7},
					{mri_journal_pos_of(part, 12), 2},
					{mri_journal_pos_of(part, 5), 4}};
	int64_t  o[14];
	uint32_t want[14] = {3, 3, 7, 3, 5, 5, 3, 3, 3, 3, 0, 0, 2, 0};
	uint32_t att[14];
	struct t_write w[2] = {{0}};

	for (int i = 0; i < 14; i++)
		o[i] = i;
	ck_assert_uint_eq(mri_journal_pos_of(part, 12),
			  mri_journal_pos_hash("jt-runs-data", 3, 12));
	ck_assert_int_eq(mri_journal_write_runs(a, r, 2, t_cb, &w[0]), MR_OK);
	ck_assert_int_eq(mri_journal_write(a, MRI_JOURNAL_DISPATCH, e, 3,
					   t_cb, &w[1]),
			 MR_OK);
	t_wait_calls(2);
	b = t_journal(emb, "jt-runs");
	for (int n = 0; n < 2; n++) {
		mri_journal_lookup(n == 0 ? a : b, 14, part, o, att, NULL,
				   NULL);
		for (int i = 0; i < 14; i++)
			ck_assert_msg(att[i] == want[i],
				      "%s: offset %d: %u, not %u",
				      n == 0 ? "writer" : "reader", i, att[i],
				      want[i]);
	}
	// Another partition of the topic has none.
	mri_journal_lookup(b, 14, mri_journal_part_key("jt-runs-data", 4), o,
			   att, NULL, NULL);
	for (int i = 0; i < 14; i++)
		ck_assert_uint_eq(att[i], 0);
	mri_journal_free(a);
	mri_journal_free(b);
	mri_embedded_stop(emb);
}
END_TEST

/* Dispatches written behind count at once where they were written, and
 * reach Kafka with the next write (confirmed with it), by themselves when
 * no write follows, once flushed (a revoke's), and at free. */
START_TEST(test_behind)
{
	struct mri_embedded     *emb  = t_cluster("jt-behind");
	struct mri_journal      *a    = t_journal(emb, "jt-behind"), *b;
	uint64_t                 part = mri_journal_part_key("jt-data", 0);
	struct mri_journal_run   r[4] = {{part, 0, 10, 1},
					 {part, 10, 10, 2},
					 {part, 20, 10, 3},
					 {part, 30, 10, 4}};
	struct mri_journal_entry e    = {t_hash(9, 9, 9), 0};
	struct t_write           w    = {.caller = pthread_self()};
	int64_t                  o[4] = {5, 15, 25, 35};
	uint32_t                 att[4];
	int                      tries = 0;
	uint64_t                 t0;
	bool                     sent;

	ck_assert_int_eq(mri_journal_write_behind(a, &r[0], 1), MR_OK);
	mri_journal_lookup(a, 1, part, o, att, NULL, NULL);
	ck_assert_uint_eq(att[0], 1);
	ck_assert_int_eq(
	    mri_journal_write(a, MRI_JOURNAL_ACK, &e, 1, t_cb, &w), MR_OK);
	t_wait_calls(1);
	ck_assert_int_eq(atomic_load(&w.err), MR_OK);
	// Opened after the write was confirmed, b reads up to it.
	b = t_journal(emb, "jt-behind");
	mri_journal_lookup(b, 1, part, o, att, NULL, NULL);
	ck_assert_msg(att[0] == 1, "went with the write: attempt %u", att[0]);

	// No write follows: a tick 20 ms on sends it (the group ticks every
	// turn), not one before. The report thread ticks too, at its own
	// time: when this took 20 ms or more, it may have come first.
	t0 = mri_mono_ms();
	ck_assert_int_eq(mri_journal_write_behind(a, &r[1], 1), MR_OK);
	ck_assert(!mri_journal_tick(a, t0 - 1000));
	sent = mri_journal_tick(a, mri_mono_ms() + 20);
	ck_assert(sent || mri_mono_ms() >= t0 + 20);
	ck_assert(!mri_journal_tick(a, mri_mono_ms() + 20));
	do {
		struct timespec ts = {0, 100 * 1000000};

		ck_assert_int_eq(mri_journal_catch_up(b, 30000), MR_OK);
		mri_journal_lookup(b, 1, part, o + 1, att + 1, NULL, NULL);
		if (att[1] == 0)
			nanosleep(&ts, NULL);
	} while (att[1] == 0 && ++tries < T_WAIT_S * 10);
	ck_assert_msg(att[1] == 2, "went by itself: attempt %u", att[1]);

	// A flush returns once Kafka has it: not while the broker is down.
	mri_embedded_broker_set_down(emb, 1, true);
	ck_assert_int_eq(mri_journal_write_behind(a, &r[2], 1), MR_OK);
	ck_assert_int_eq(mri_journal_flush_behind(a, 200), MR_ETIMEDOUT);
	mri_embedded_broker_set_down(emb, 1, false);
	ck_assert_int_eq(mri_journal_flush_behind(a, 60000), MR_OK);
	ck_assert_int_eq(mri_journal_catch_up(b, 30000), MR_OK);
	mri_journal_lookup(b, 1, part, o + 2, att + 2, NULL, NULL);
	ck_assert_msg(att[2] == 3, "flushed: attempt %u", att[2]);

	// Free sends what is behind before its flush.
	ck_assert_int_eq(mri_journal_write_behind(a, &r[3], 1), MR_OK);
	mri_journal_free(a);
	ck_assert_int_eq(mri_journal_catch_up(b, 30000), MR_OK);
	mri_journal_lookup(b, 4, part, o, att, NULL, NULL);
	ck_assert_msg(att[0] == 1 && att[1] == 2 && att[2] == 3 && att[3] == 4,
		      "after free: attempts %u %u %u %u", att[0], att[1],
		      att[2], att[3]);
	mri_journal_free(b);
	mri_embedded_stop(emb);
}
END_TEST

/* Whether a callback beyond the first \p n runs within \p secs: a record
 * said to wait must not be confirmed meanwhile (on the embedded cluster a
 * record sent is confirmed within milliseconds, so a record that did not
 * wait fails this). */
static bool
t_called_within(long n, int secs)
{
	struct timespec ts;
	bool            more;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	pthread_mutex_lock(&t_st.lock);
	while (t_st.calls <= n)
		if (pthread_cond_timedwait(&t_st.cv, &t_st.lock, &ts) != 0)
			break;
	more = t_st.calls > n;
	pthread_mutex_unlock(&t_st.lock);
	return more;
}

/* Acks that may linger: after a quiet spell one goes at once; within the
 * linger the next waits until a tick at its due time, or until a write
 * that goes takes it along; free sends what lingers. A second journal
 * then knows every id. */
START_TEST(test_linger)
{
	struct mri_embedded     *emb = t_cluster("jt-linger");
	struct mri_journal      *a   = t_journal(emb, "jt-linger"), *b;
	struct mri_journal_entry e[5];
	struct t_write           w[5];
	uint64_t                 id[5];
	bool                     acked[5];
	const uint32_t           linger = 60000; // no tick of the hub's
	uint64_t                 t0;

	for (int i = 0; i < 5; i++) {
		id[i] = t_hash(7, i, 0);
		e[i]  = (struct mri_journal_entry){id[i], 0};
		w[i]  = (struct t_write){.caller = pthread_self()};
	}
	ck_assert_int_eq(mri_journal_write_linger(a, MRI_JOURNAL_ACK, &e[0],
						  1, linger, t_cb, &w[0]),
			 MR_OK);
	t_wait_calls(1); // nothing was sent before it: at once

	t0 = mri_mono_ms();
	ck_assert_int_eq(mri_journal_write_linger(a, MRI_JOURNAL_ACK, &e[1],
						  1, linger, t_cb, &w[1]),
			 MR_OK);
	ck_assert(!mri_journal_tick(a, t0 + 1000));
	ck_assert_msg(!t_called_within(1, 1), "an ack did not linger");
	ck_assert(mri_journal_tick(a, t0 + linger + 1000));
	t_wait_calls(2);

	// A write that goes takes what lingers along.
	ck_assert_int_eq(mri_journal_write_linger(a, MRI_JOURNAL_ACK, &e[2],
						  1, linger, t_cb, &w[2]),
			 MR_OK);
	ck_assert_msg(!t_called_within(2, 1), "an ack did not linger");
	ck_assert_int_eq(
	    mri_journal_write(a, MRI_JOURNAL_ACK, &e[3], 1, t_cb, &w[3]),
	    MR_OK);
	t_wait_calls(4);

	// Free sends it, and its callback runs before free returns.
	ck_assert_int_eq(mri_journal_write_linger(a, MRI_JOURNAL_ACK, &e[4],
						  1, linger, t_cb, &w[4]),
			 MR_OK);
	mri_journal_free(a);
	ck_assert_int_eq(atomic_load(&w[4].calls), 1);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(atomic_load(&w[i].calls), 1);
		ck_assert_int_eq(atomic_load(&w[i].err), MR_OK);
	}
	b = t_journal(emb, "jt-linger");
	mri_journal_lookup(b, 5, 0, NULL, NULL, id, acked);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(acked[i], "ack %d not in the journal", i);
	mri_journal_free(b);
	mri_embedded_stop(emb);
}
END_TEST

/* Free right after many writes, with the cluster up: flush delivers. */
START_TEST(test_free_in_flight_delivers)
{
	struct mri_embedded *emb = t_cluster("jt-free-up");
	struct mri_journal  *j   = t_journal(emb, "jt-free-up");
	struct t_write      *w   = t_write_all(j);

	mri_journal_free(j);
	// Every callback before free returned, each once.
	ck_assert_int_eq(t_st.calls, T_THREADS * T_WRITES);
	for (int i = 0; i < T_THREADS * T_WRITES; i++) {
		ck_assert_int_eq(atomic_load(&w[i].calls), 1);
		ck_assert_int_eq(atomic_load(&w[i].err), MR_OK);
	}
	mri_embedded_stop(emb);
	free(w);
}
END_TEST

/* Free with the broker down: nothing can be confirmed; after free's
 * bounded flush every write is failed back, each once, before free
 * returns. */
START_TEST(test_free_in_flight_broker_down)
{
	struct mri_embedded *emb = t_cluster("jt-free-down");
	struct mri_journal  *j   = t_journal(emb, "jt-free-down");
	struct t_write      *w;
	long                 failed = 0;

	mri_embedded_broker_set_down(emb, 1, true);
	w = t_write_all(j);
	// These callbacks run on this thread, in free's purge, not on the
	// hub's report thread as journal.h says of write callbacks (the group
	// knows: it frees the journal without its lock held).
	mri_journal_free(j);
	ck_assert_int_eq(t_st.calls, T_THREADS * T_WRITES);
	for (int i = 0; i < T_THREADS * T_WRITES; i++) {
		int err = atomic_load(&w[i].err);

		ck_assert_int_eq(atomic_load(&w[i].calls), 1);
		ck_assert_msg(err == MR_OK || err == MR_EUNAVAIL, "err %d",
			      err);
		failed += err != MR_OK;
	}
	// The broker was down before the first write: none got through.
	ck_assert_int_eq(failed, T_THREADS * T_WRITES);
	mri_embedded_stop(emb);
	free(w);
}
END_TEST

/* Journals of two groups on one hub, the first group's twice (and a third
 * time after its writes): each reads its own group's records and no
 * other's; the writes' callbacks
 * run on one thread, the hub's; one journal freed, the hub goes on for
 * the others. */
START_TEST(test_shared_hub)
{
	struct mri_embedded    *emb = t_cluster("jt-hub-a");
	rd_kafka_conf_t        *conf = t_conf(emb);
	struct mri_journal_hub *hub;
	struct mri_journal     *a, *a2, *b;
	struct t_write         *w, wb[2] = {{0}};
	char                    errstr[256];
	uint64_t                hb = t_hash(77, 1, 1), hb2 = t_hash(77, 2, 1);
	bool                    acked;

	ck_assert_int_eq(mri_embedded_topic_create(
			     emb, "__mailroom.journal.jt-hub-b", 1, 1),
			 MR_OK);
	ck_assert_msg(mri_journal_hub_new(&hub, conf, errstr,
					  sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	rd_kafka_conf_destroy(conf);
	a  = t_journal_on(emb, "jt-hub-a", hub);
	b  = t_journal_on(emb, "jt-hub-b", hub);
	a2 = t_journal_on(emb, "jt-hub-a", hub);
	w  = t_write_all(a);
	wb[0].caller = pthread_self();
	ck_assert_int_eq(mri_journal_write(b, MRI_JOURNAL_ACK,
					   &(struct mri_journal_entry){hb, 0},
					   1, t_cb, &wb[0]),
			 MR_OK);
	t_wait_calls(T_THREADS * T_WRITES + 1);
	ck_assert(!t_st.cb_threads_differ);
	for (int i = 0; i < T_THREADS * T_WRITES; i++)
		ck_assert_int_eq(atomic_load(&w[i].err), MR_OK);
	// The second instance of a's group reads what a wrote, through the
	// reader it shares with b.
	ck_assert_int_eq(mri_journal_catch_up(a2, 30000), MR_OK);
	t_check_known(a2);
	// A third, made now, reads the topic from its start: the reader
	// starts it again for that one.
	{
		struct mri_journal *a3 = t_journal_on(emb, "jt-hub-a", hub);

		t_check_known(a3);
		mri_journal_free(a3);
	}
	// Neither group sees the other's.
	acked = true;
	mri_journal_lookup(a2, 1, 0, NULL, NULL, &hb, &acked);
	ck_assert(!acked);
	ck_assert_int_eq(mri_journal_catch_up(b, 30000), MR_OK);
	ck_assert_int_eq(t_differs(b, 0, 1, true), T_ENTRIES);
	// a goes; b writes and reads on.
	mri_journal_free(a);
	wb[1].caller = pthread_self();
	ck_assert_int_eq(mri_journal_write(b, MRI_JOURNAL_ACK,
					   &(struct mri_journal_entry){hb2, 0},
					   1, t_cb, &wb[1]),
			 MR_OK);
	t_wait_calls(T_THREADS * T_WRITES + 2);
	ck_assert_int_eq(atomic_load(&wb[1].err), MR_OK);
	ck_assert(!t_st.cb_threads_differ);
	mri_journal_free(b);
	b     = t_journal_on(emb, "jt-hub-b", hub);
	acked = false;
	mri_journal_lookup(b, 1, 0, NULL, NULL, &hb2, &acked);
	ck_assert(acked);
	mri_journal_free(b);
	mri_journal_free(a2);
	mri_journal_hub_free(hub);
	ck_assert_int_eq(t_st.calls, T_THREADS * T_WRITES + 2);
	mri_embedded_stop(emb);
	free(w);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("journal");
	TCase   *tc = tcase_create("journal");
	SRunner *r;
	int      failed;

	mri_log_set_level(getenv("T_DEBUG") ? MRI_LOG_DEBUG : MRI_LOG_ERR);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_concurrent_writes_called_once);
	tcase_add_test(tc, test_reopen_catches_up);
	tcase_add_test(tc, test_runs_and_positions);
	tcase_add_test(tc, test_behind);
	tcase_add_test(tc, test_linger);
	tcase_add_test(tc, test_free_in_flight_delivers);
	tcase_add_test(tc, test_free_in_flight_broker_down);
	tcase_add_test(tc, test_shared_hub);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
