/*
 * The publisher on the embedded cluster: batches submitted from two threads
 * are each done exactly once with every record's partition and offset; a
 * caller's id repeated within the window gets the first one's ack, also
 * when it arrives while the first is in flight (it waits for it, and fails
 * with it); refusals keep their reasons; drain fails what Kafka does not
 * confirm; records carry the envelope, its defaults reloaded live; and a
 * raw record (a copy of another) carries its headers exactly as given.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bridge/address.h"
#include "bridge/envelope.h"
#include "bridge/publish.h"
#include "bridge/embedded.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "proto/frame.h"

#define T_PARTS 4
#define T_THREADS 2
#define T_BATCHES 100 /* per thread */
#define T_RECS 50     /* per batch */

/* A batch with its records and what its callback saw. */
struct t_batch {
	struct mri_pub_batch b;
	struct mri_pub_rec   recs[T_RECS];
	char                 keys[T_RECS][16];
	char                 vals[T_RECS][16];
	atomic_int           calls;
	atomic_int           all_set; /* every result was set at done */
};

static void
t_done(void *arg, struct mri_pub_batch *b)
{
	struct t_batch *tb = arg;
	int             ok = b == &tb->b;

	// No ck_assert here: this is the producer's thread, or another.
	for (uint32_t i = 0; i < b->n; i++)
		if (b->recs[i].res.err == MR_OK
			? b->recs[i].res.partition < 0 ||
			      b->recs[i].res.offset < 0
			: b->recs[i].res.why == NULL)
			ok = 0;
	atomic_store(&tb->all_set, ok);
	atomic_fetch_add(&tb->calls, 1);
}

static struct mri_embedded *
t_cluster(const char *topic)
{
	struct mri_embedded *e;
	char                 errstr[256];

	ck_assert_int_eq(mri_embedded_start(&e, 1, errstr, sizeof(errstr)),
			 MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, topic, T_PARTS, 1),
			 MR_OK);
	return e;
}

static struct mri_publisher *
t_publisher(struct mri_embedded *e)
{
	struct mri_publisher_conf c = {
	    .bootstrap          = mri_embedded_bootstraps(e),
	    .client_id          = "publish_test",
	    .linger_ms          = 2,
	    .message_timeout_ms = 60000,
	    .message_max_bytes  = 1000000,
	    .dedupe_window_ms   = 60000,
	    .dedupe_max_entries = 100000,
	    .ce_source          = "publish_test",
	    .ce_type            = "test.record",
	};
	struct mri_publisher *p;
	char                  errstr[256];

	ck_assert_msg(mri_publisher_new(&p, &c, errstr, sizeof(errstr)) ==
			  MR_OK,
		      "%s", errstr);
	return p;
}

/* Fill \p tb with \p n records of \p topic; keys k<seed+i mod 50>; ids as
 * \p ids gives them (NULL: assigned). */
static void
t_fill(struct t_batch *tb, const char *topic, uint32_t n, int seed,
       const char *const *ids)
{
	memset(tb, 0, sizeof(*tb));
	for (uint32_t i = 0; i < n; i++) {
		struct mri_pub_rec *r = &tb->recs[i];

		mri_pub_rec_init(r);
		snprintf(tb->keys[i], sizeof(tb->keys[i]), "k%d",
			 (seed + (int)i) % 50);
		snprintf(tb->vals[i], sizeof(tb->vals[i]), "%d", seed + (int)i);
		r->topic     = topic;
		r->key       = tb->keys[i];
		r->key_len   = strlen(tb->keys[i]);
		r->has_key   = true;
		r->value     = tb->vals[i];
		r->value_len = strlen(tb->vals[i]);
		if (ids != NULL && ids[i] != NULL) {
			r->id     = ids[i];
			r->id_len = (uint8_t)strlen(ids[i]);
		}
	}
	tb->b.recs = tb->recs;
	tb->b.n    = n;
	tb->b.done = t_done;
	tb->b.arg  = tb;
}

static void
t_submit(struct mri_publisher *p, struct t_batch *tb)
{
	ck_assert_int_eq(mri_publish_submit(p, &tb->b), MR_OK);
}

struct t_thread {
	struct mri_publisher *p;
	struct t_batch       *batches;
	int                   seed;
};

static void *
t_submitter(void *arg)
{
	struct t_thread *t = arg;

	for (int i = 0; i < T_BATCHES; i++) {
		t_fill(&t->batches[i], "two", T_RECS, t->seed + i * T_RECS,
		       NULL);
		t_submit(t->p, &t->batches[i]);
	}
	return NULL;
}

static int
t_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(test_two_threads)
{
	struct mri_embedded       *e = t_cluster("two");
	struct mri_publisher      *p = t_publisher(e);
	struct t_thread            th[T_THREADS];
	pthread_t                  tid[T_THREADS];
	struct mri_publisher_stats st;
	int64_t                   *offs[T_PARTS];
	size_t                     noffs[T_PARTS] = {0};
	const size_t               total = T_THREADS * T_BATCHES * T_RECS;

	for (int t = 0; t < T_THREADS; t++) {
		th[t].p       = p;
		th[t].batches = calloc(T_BATCHES, sizeof(struct t_batch));
		th[t].seed    = t * 1000000;
		ck_assert_int_eq(
		    pthread_create(&tid[t], NULL, t_submitter, &th[t]), 0);
	}
	for (int t = 0; t < T_THREADS; t++)
		pthread_join(tid[t], NULL);
	ck_assert(mri_publisher_drain(p, 60000));
	for (int q = 0; q < T_PARTS; q++)
		offs[q] = calloc(total, sizeof(int64_t));
	for (int t = 0; t < T_THREADS; t++)
		for (int i = 0; i < T_BATCHES; i++) {
			struct t_batch *tb = &th[t].batches[i];

			ck_assert_int_eq(atomic_load(&tb->calls), 1);
			ck_assert_int_eq(atomic_load(&tb->all_set), 1);
			for (int j = 0; j < T_RECS; j++) {
				struct mri_pub_rec *r = &tb->recs[j];

				ck_assert_int_eq(r->res.err, MR_OK);
				ck_assert_int_eq(r->res.flags, 0);
				ck_assert_uint_eq(r->id_len, MRI_UUID_STRLEN);
				ck_assert_int_eq(
				    r->res.partition,
				    mri_partition_for_key(tb->keys[j],
							  strlen(tb->keys[j]),
							  T_PARTS));
				offs[r->res.partition]
				    [noffs[r->res.partition]++] =
					r->res.offset;
			}
		}
	// Every record has an offset of its own.
	for (int q = 0; q < T_PARTS; q++) {
		qsort(offs[q], noffs[q], sizeof(int64_t), t_cmp_i64);
		for (size_t i = 1; i < noffs[q]; i++)
			ck_assert_int_ne(offs[q][i], offs[q][i - 1]);
		free(offs[q]);
	}
	mri_publisher_stats(p, &st);
	ck_assert_uint_eq(st.confirmed, total);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.duplicates, 0);
	ck_assert_uint_eq(st.producer.confirmed, total);
	// Assigned ids do not go through the window.
	ck_assert_uint_eq(st.dedupe.entries, 0);
	mri_publisher_free(p);
	for (int t = 0; t < T_THREADS; t++)
		free(th[t].batches);
	mri_embedded_stop(e);
}
END_TEST

START_TEST(test_duplicate_in_window)
{
	struct mri_embedded       *e = t_cluster("dup");
	struct mri_publisher      *p = t_publisher(e);
	static struct t_batch      b1, b2;
	static const char *const   ids1[] = {"a", "b"};
	static const char *const   ids2[] = {"c", "a"};
	struct mri_publisher_stats st;

	ck_assert_int_eq(mri_embedded_topic_create(e, "dup2", T_PARTS, 1),
			 MR_OK);
	t_fill(&b1, "dup", 2, 0, ids1);
	t_submit(p, &b1);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b1.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b1.recs[1].res.err, MR_OK);

	// "a" again, later in a batch and under another key: the first ack.
	t_fill(&b2, "dup", 2, 7, ids2);
	t_submit(p, &b2);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(atomic_load(&b2.calls), 1);
	ck_assert_int_eq(b2.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b2.recs[0].res.flags, 0);
	ck_assert_int_eq(b2.recs[1].res.err, MR_OK);
	ck_assert_int_eq(b2.recs[1].res.flags, MRI_PUB_F_DUPLICATE);
	ck_assert_int_eq(b2.recs[1].res.partition, b1.recs[0].res.partition);
	ck_assert_int_eq(b2.recs[1].res.offset, b1.recs[0].res.offset);
	ck_assert_str_eq(b2.recs[1].id, "a");

	// The same id on another topic is another record.
	t_fill(&b2, "dup2", 1, 0, ids1);
	t_submit(p, &b2);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b2.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b2.recs[0].res.flags, 0);

	mri_publisher_stats(p, &st);
	ck_assert_uint_eq(st.duplicates, 1);
	ck_assert_uint_eq(st.confirmed, 5);
	ck_assert_uint_eq(st.dedupe.entries, 4);
	ck_assert(st.dedupe_enabled);
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

START_TEST(test_waiter_on_inflight)
{
	struct mri_embedded      *e = t_cluster("wait");
	struct mri_publisher     *p = t_publisher(e);
	static struct t_batch     b1, b2;
	static const char *const  ids1[] = {"w"};
	static const char *const  ids2[] = {"n", "w"};

	// Warm the metadata up, then slow the broker so that the first
	// publish of "w" is surely in flight when its duplicate comes.
	t_fill(&b1, "wait", 1, 0, NULL);
	t_submit(p, &b1);
	ck_assert(mri_publisher_drain(p, 30000));
	mri_embedded_broker_set_rtt(e, 1, 500);
	t_fill(&b1, "wait", 1, 0, ids1);
	t_fill(&b2, "wait", 2, 3, ids2);
	t_submit(p, &b1);
	t_submit(p, &b2);
	ck_assert_int_eq(atomic_load(&b1.calls), 0);
	ck_assert_int_eq(atomic_load(&b2.calls), 0);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(atomic_load(&b1.calls), 1);
	ck_assert_int_eq(atomic_load(&b2.calls), 1);
	ck_assert_int_eq(b1.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b1.recs[0].res.flags, 0);
	ck_assert_int_eq(b2.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b2.recs[0].res.flags, 0);
	ck_assert_int_eq(b2.recs[1].res.err, MR_OK);
	ck_assert_int_eq(b2.recs[1].res.flags, MRI_PUB_F_DUPLICATE);
	ck_assert_int_eq(b2.recs[1].res.partition, b1.recs[0].res.partition);
	ck_assert_int_eq(b2.recs[1].res.offset, b1.recs[0].res.offset);

	// A first publish that fails fails its waiter too, and is
	// forgotten: the next try writes it.
	mri_embedded_broker_set_rtt(e, 1, 0);
	mri_embedded_broker_set_down(e, 1, true);
	t_fill(&b1, "wait", 1, 0, (const char *const[]){"x"});
	t_fill(&b2, "wait", 1, 0, (const char *const[]){"x"});
	t_submit(p, &b1);
	t_submit(p, &b2);
	ck_assert(!mri_publisher_drain(p, 300));
	ck_assert_int_eq(atomic_load(&b1.calls), 1);
	ck_assert_int_eq(atomic_load(&b2.calls), 1);
	ck_assert_int_ne(b1.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b2.recs[0].res.err, b1.recs[0].res.err);
	ck_assert_int_eq(b2.recs[0].res.flags, 0);
	ck_assert_ptr_nonnull(b2.recs[0].res.why);
	mri_embedded_broker_set_down(e, 1, false);
	t_fill(&b1, "wait", 1, 0, (const char *const[]){"x"});
	t_submit(p, &b1);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b1.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b1.recs[0].res.flags, 0);
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

START_TEST(test_drain_fails_the_rest)
{
	struct mri_embedded       *e = t_cluster("down");
	struct mri_publisher      *p = t_publisher(e);
	static struct t_batch      bs[5];
	struct mri_publisher_stats st;

	mri_embedded_broker_set_down(e, 1, true);
	for (int i = 0; i < 5; i++) {
		t_fill(&bs[i], "down", 20, i * 20, NULL);
		t_submit(p, &bs[i]);
	}
	ck_assert(!mri_publisher_drain(p, 200));
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(atomic_load(&bs[i].calls), 1);
		ck_assert_int_eq(atomic_load(&bs[i].all_set), 1);
		for (int j = 0; j < 20; j++) {
			ck_assert_int_ne(bs[i].recs[j].res.err, MR_OK);
			ck_assert_int_eq(bs[i].recs[j].res.partition, -1);
			ck_assert_int_eq(bs[i].recs[j].res.offset, -1);
		}
	}
	mri_publisher_stats(p, &st);
	ck_assert_uint_eq(st.failed, 100);
	ck_assert_uint_eq(st.confirmed, 0);
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

START_TEST(test_refusals_and_hints)
{
	struct mri_embedded       *e = t_cluster("ref");
	struct mri_publisher      *p = t_publisher(e);
	static struct t_batch      b;
	static const char *const   ids[] = {"bad\001id", NULL, NULL, NULL,
					    "good"};
	static const struct mri_hdr_view own[] = {{"ce_id", 5, "x", 1}};
	struct mri_publisher_stats st;

	t_fill(&b, "ref", 5, 0, ids);
	b.recs[1].hdrs       = own;
	b.recs[1].hdr_count  = 1;
	b.recs[2].res.err    = MR_ENOMEM;
	b.recs[3].partition  = 2;
	b.recs[3].key        = NULL;
	b.recs[3].has_key    = false;
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(atomic_load(&b.calls), 1);
	ck_assert_int_eq(b.recs[0].res.err, MR_EINVAL);
	ck_assert_str_eq(b.recs[0].res.why, "message id has control bytes");
	ck_assert_int_eq(b.recs[1].res.err, MR_EINVAL);
	ck_assert_ptr_nonnull(strstr(b.recs[1].res.why, "ce_id"));
	ck_assert_int_eq(b.recs[2].res.err, MR_ENOMEM);
	ck_assert_str_eq(b.recs[2].res.why, mr_strerror(MR_ENOMEM));
	ck_assert_uint_eq(b.recs[2].id_len, MRI_UUID_STRLEN);
	ck_assert_int_eq(b.recs[3].res.err, MR_OK);
	ck_assert_int_eq(b.recs[3].res.partition, 2);
	ck_assert_int_eq(b.recs[4].res.err, MR_OK);
	mri_publisher_stats(p, &st);
	ck_assert_uint_eq(st.failed, 3);
	ck_assert_uint_eq(st.confirmed, 2);

	// A batch submit cannot take is refused, and never called back.
	b.b.n = 0;
	ck_assert_int_eq(mri_publish_submit(p, &b.b), MR_EINVAL);
	ck_assert_int_eq(atomic_load(&b.calls), 1);
	// A prepared batch can be cancelled instead of submitted.
	t_fill(&b, "ref", 3, 0, NULL);
	mri_publish_prepare(p, &b.b);
	mri_publish_cancel(&b.b);
	ck_assert_int_eq(atomic_load(&b.calls), 0);
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

/* The headers of the record at \p part / \p off: its ce_id and
 * ce_source, read back. */
static void
t_read_headers(const char *bootstrap, const char *topic, int32_t part,
	       int64_t off, char *id, char *source, size_t size)
{
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *tp;
	rd_kafka_t                      *rk;
	char                             errstr[256];

	id[0] = source[0] = '\0';
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", "publish_test", NULL, 0);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(rk);
	tp = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(tp, topic, part)->offset = off;
	ck_assert_int_eq(rd_kafka_assign(rk, tp), 0);
	rd_kafka_topic_partition_list_destroy(tp);
	for (int spins = 0; spins < 300 && id[0] == '\0'; spins++) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		rd_kafka_headers_t *hs;
		const void         *v;
		size_t              len;

		if (m == NULL)
			continue;
		if (m->err == 0 && m->offset == off &&
		    rd_kafka_message_headers(m, &hs) == 0) {
			if (rd_kafka_header_get_last(hs, MRI_H_ID, &v, &len) ==
			    0)
				snprintf(id, size, "%.*s", (int)len,
					 (const char *)v);
			if (rd_kafka_header_get_last(hs, MRI_H_SOURCE, &v,
						     &len) == 0)
				snprintf(source, size, "%.*s", (int)len,
					 (const char *)v);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

START_TEST(test_envelope_reload)
{
	struct mri_embedded  *e = t_cluster("env");
	struct mri_publisher *p = t_publisher(e);
	static struct t_batch b;
	char                  id[64], source[64];

	t_fill(&b, "env", 1, 0, NULL);
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_OK);
	t_read_headers(mri_embedded_bootstraps(e), "env",
		       b.recs[0].res.partition, b.recs[0].res.offset, id,
		       source, sizeof(id));
	ck_assert_str_eq(id, b.recs[0].id);
	ck_assert_str_eq(source, "publish_test");

	mri_publisher_set_envelope(p, "reloaded", "test.record");
	t_fill(&b, "env", 1, 0, (const char *const[]){"mine"});
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_OK);
	t_read_headers(mri_embedded_bootstraps(e), "env",
		       b.recs[0].res.partition, b.recs[0].res.offset, id,
		       source, sizeof(id));
	ck_assert_str_eq(id, "mine");
	ck_assert_str_eq(source, "reloaded");
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

/* Every header of a record read back: names and values, in order. */
struct t_hdrs {
	size_t n;
	char   names[16][64];
	char   vals[16][64];
	size_t val_lens[16];
	bool   null_val[16];
};

/* Read the record at \p part / \p off of \p topic and copy its headers
 * (at most 16) into \p out. */
static void
t_read_all_headers(const char *bootstrap, const char *topic, int32_t part,
		   int64_t off, struct t_hdrs *out)
{
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *tp;
	rd_kafka_t                      *rk;
	char                             errstr[256];
	bool                             got = false;

	memset(out, 0, sizeof(*out));
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", "publish_test", NULL, 0);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(rk);
	tp = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(tp, topic, part)->offset = off;
	ck_assert_int_eq(rd_kafka_assign(rk, tp), 0);
	rd_kafka_topic_partition_list_destroy(tp);
	for (int spins = 0; spins < 300 && !got; spins++) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		rd_kafka_headers_t *hs;
		const char         *name;
		const void         *v;
		size_t              len;

		if (m == NULL)
			continue;
		if (m->err == 0 && m->offset == off) {
			got = true;
			if (rd_kafka_message_headers(m, &hs) != 0)
				hs = NULL;
			for (size_t i = 0; hs != NULL && i < 16 &&
					   rd_kafka_header_get_all(
					       hs, i, &name, &v, &len) == 0;
			     i++) {
				ck_assert_uint_lt(len, 64);
				snprintf(out->names[i], 64, "%s", name);
				if (v != NULL)
					memcpy(out->vals[i], v, len);
				out->val_lens[i] = len;
				out->null_val[i] = v == NULL;
				out->n++;
			}
		}
		rd_kafka_message_destroy(m);
	}
	ck_assert(got);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

/* mri_publisher_set_lean: batches prepared from then on get the lean
 * envelope (ce_id only, with no header of the caller's), and back. */
START_TEST(test_envelope_lean)
{
	struct mri_embedded  *e = t_cluster("lean");
	struct mri_publisher *p = t_publisher(e);
	static struct t_batch b;
	struct t_hdrs         got;

	mri_publisher_set_lean(p, true);
	t_fill(&b, "lean", 1, 0, (const char *const[]){"lean-1"});
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_OK);
	t_read_all_headers(mri_embedded_bootstraps(e), "lean",
			   b.recs[0].res.partition, b.recs[0].res.offset,
			   &got);
	ck_assert_uint_eq(got.n, 1);
	ck_assert_str_eq(got.names[0], "ce_id");
	ck_assert_uint_eq(got.val_lens[0], 6);
	ck_assert_mem_eq(got.vals[0], "lean-1", 6);

	mri_publisher_set_lean(p, false);
	t_fill(&b, "lean", 1, 0, (const char *const[]){"full-1"});
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_OK);
	t_read_all_headers(mri_embedded_bootstraps(e), "lean",
			   b.recs[0].res.partition, b.recs[0].res.offset,
			   &got);
	ck_assert_uint_eq(got.n, 5);
	ck_assert_str_eq(got.names[0], "ce_specversion");
	ck_assert_str_eq(got.names[1], "ce_id");
	ck_assert_str_eq(got.names[4], "ce_time");
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

START_TEST(test_raw_records)
{
	struct mri_embedded       *e = t_cluster("raw");
	struct mri_publisher      *p = t_publisher(e);
	static struct t_batch      b;
	static const struct mri_hdr_view hs[] = {
	    {"ce_specversion", 14, "1.0", 3},
	    {"ce_id", 5, "orig-1", 6},
	    {"ce_source", 9, "elsewhere", 9},
	    {"x", 1, "a\0b", 3},
	    {"ce_id", 5, "second", 6},
	    {"mr_dlq_topic", 12, "orders", 6},
	    {"empty", 5, "", 0},
	    {"null", 4, NULL, 0},
	};
	const size_t               nhs = sizeof(hs) / sizeof(hs[0]);
	struct t_hdrs              got;
	struct mri_publisher_stats st;

	// A raw record: its headers come back exactly, in order, with the
	// ce_ names repeated and no envelope of the publisher's added.
	t_fill(&b, "raw", 1, 0, (const char *const[]){"orig-1"});
	b.recs[0].raw       = true;
	b.recs[0].hdrs      = hs;
	b.recs[0].hdr_count = (uint16_t)nhs;
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b.recs[0].res.flags, 0);
	ck_assert_str_eq(b.recs[0].id, "orig-1");
	t_read_all_headers(mri_embedded_bootstraps(e), "raw",
			   b.recs[0].res.partition, b.recs[0].res.offset,
			   &got);
	ck_assert_uint_eq(got.n, nhs);
	for (size_t i = 0; i < nhs; i++) {
		ck_assert_uint_eq(strlen(got.names[i]), hs[i].name_len);
		ck_assert_mem_eq(got.names[i], hs[i].name, hs[i].name_len);
		ck_assert_uint_eq(got.val_lens[i], hs[i].value_len);
		ck_assert_mem_eq(got.vals[i], hs[i].value ? hs[i].value : "",
				 hs[i].value_len);
		ck_assert(got.null_val[i] == (hs[i].value == NULL));
	}

	// The same id again is a duplicate in the window, as for any record.
	t_fill(&b, "raw", 1, 0, (const char *const[]){"orig-1"});
	b.recs[0].raw       = true;
	b.recs[0].hdrs      = hs;
	b.recs[0].hdr_count = (uint16_t)nhs;
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_OK);
	ck_assert_int_eq(b.recs[0].res.flags, MRI_PUB_F_DUPLICATE);

	// A raw record without an id is refused (and gets none assigned);
	// a raw record with no headers has none; the ce_id header that the
	// envelope refuses is not refused in a raw record.
	t_fill(&b, "raw", 3, 0, (const char *const[]){NULL, "r2", "r3"});
	b.recs[0].raw       = true;
	b.recs[0].hdrs      = hs;
	b.recs[0].hdr_count = (uint16_t)nhs;
	b.recs[1].raw       = true;
	b.recs[2].raw       = true;
	b.recs[2].hdrs      = &hs[1];
	b.recs[2].hdr_count = 1;
	t_submit(p, &b);
	ck_assert(mri_publisher_drain(p, 30000));
	ck_assert_int_eq(b.recs[0].res.err, MR_EINVAL);
	ck_assert_ptr_nonnull(strstr(b.recs[0].res.why, "raw"));
	ck_assert_uint_eq(b.recs[0].id_len, 0);
	ck_assert_int_eq(b.recs[1].res.err, MR_OK);
	ck_assert_int_eq(b.recs[2].res.err, MR_OK);
	t_read_all_headers(mri_embedded_bootstraps(e), "raw",
			   b.recs[1].res.partition, b.recs[1].res.offset,
			   &got);
	ck_assert_uint_eq(got.n, 0);
	t_read_all_headers(mri_embedded_bootstraps(e), "raw",
			   b.recs[2].res.partition, b.recs[2].res.offset,
			   &got);
	ck_assert_uint_eq(got.n, 1);
	ck_assert_str_eq(got.names[0], "ce_id");

	// mri_pub_rec_init makes a record not raw again: the envelope.
	mri_pub_rec_init(&b.recs[0]);
	ck_assert(!b.recs[0].raw);
	mri_publisher_stats(p, &st);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.duplicates, 1);
	mri_publisher_free(p);
	mri_embedded_stop(e);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("publish");
	TCase   *tc = tcase_create("publish");
	SRunner *r;
	int      failed;

	if (getenv("T_DEBUG"))
		mri_log_set_level(MRI_LOG_DEBUG);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_two_threads);
	tcase_add_test(tc, test_duplicate_in_window);
	tcase_add_test(tc, test_waiter_on_inflight);
	tcase_add_test(tc, test_drain_fails_the_rest);
	tcase_add_test(tc, test_refusals_and_hints);
	tcase_add_test(tc, test_envelope_reload);
	tcase_add_test(tc, test_envelope_lean);
	tcase_add_test(tc, test_raw_records);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
