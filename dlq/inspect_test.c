/*
 * dlq/inspect: the scanning core fed from an array (filters, copies of one
 * original position counted once, groups by fingerprint, bounds), the copy
 * that show makes, and the Kafka source on the embedded cluster (every
 * partition to its end, one record by position, the errors).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bridge/embedded.h"
#include "dlq/inspect.h"
#include "mailroom/error.h"

static struct mri_hdr_view
t_h(const char *name, const char *value)
{
	return (struct mri_hdr_view){name, (uint16_t)strlen(name), value,
				     (uint32_t)strlen(value)};
}

/* A test record: up to 8 headers. */
struct t_rec {
	struct mri_dlq_rec  r;
	struct mri_hdr_view h[8];
};

/* A mailroom record from \p topic partition 0 offset \p off, at \p time
 * (RFC 3339), at dead-letter position \p p, \p o. */
static struct t_rec
t_mr(int32_t p, int64_t o, const char *topic, const char *off,
     const char *group, const char *reason, const char *time,
     const char *key)
{
	struct t_rec t;
	size_t       n = 0;

	memset(&t, 0, sizeof(t));
	t.h[n++] = t_h(MRI_DLQ_H_TOPIC, topic);
	t.h[n++] = t_h(MRI_DLQ_H_PARTITION, "0");
	t.h[n++] = t_h(MRI_DLQ_H_OFFSET, off);
	if (group != NULL)
		t.h[n++] = t_h(MRI_DLQ_H_GROUP, group);
	t.h[n++] = t_h(MRI_DLQ_H_REASON, reason);
	if (time != NULL)
		t.h[n++] = t_h(MRI_DLQ_H_TIME, time);
	t.r = (struct mri_dlq_rec){
	    .partition    = p,
	    .offset       = o,
	    .timestamp_ms = 1000,
	    .has_key      = key != NULL,
	    .key          = key,
	    .key_len      = key != NULL ? strlen(key) : 0,
	    .value        = "v",
	    .value_len    = 1,
	    .nhdrs        = n,
	};
	return t;
}

/* The array source: each record's headers pointed at when given (the
 * array may move); MR_ETIMEDOUT or another error after \p fail_at. */
struct t_src {
	struct t_rec *recs;
	size_t        n, at;
	size_t        fail_at;
	int           fail_rc;
};

static int
t_next(void *arg, struct mri_dlq_rec *rec, bool *end, char *why, size_t n)
{
	struct t_src *s = arg;

	if (s->fail_rc != MR_OK && s->at == s->fail_at) {
		snprintf(why, n, "the test's failure");
		return s->fail_rc;
	}
	if (s->at == s->n) {
		*end = true;
		return MR_OK;
	}
	*rec      = s->recs[s->at].r;
	rec->hdrs = s->recs[s->at].h;
	s->at++;
	return MR_OK;
}

static int
t_list(struct t_rec *recs, size_t n, const struct mri_dlq_filter *f,
       const struct mri_dlq_bounds *b, struct mri_dlq_list **out)
{
	struct t_src          s   = {recs, n, 0, 0, MR_OK};
	struct mri_dlq_source src = {t_next, &s};
	struct mri_dlq_filter all;
	char                  why[256];

	if (f == NULL) {
		mri_dlq_filter_init(&all);
		f = &all;
	}
	return mri_dlq_list_run(&src, f, b, out, why, sizeof(why));
}

static uint64_t
t_fp(const char *reason)
{
	return mri_dlq_fingerprint(reason, strlen(reason));
}

#define T1 "2026-01-01T00:00:01.000Z"
#define T2 "2026-01-01T00:00:02.000Z"
#define T3 "2026-01-01T00:00:03.000Z"
#define T1_MS 1767225601000LL

START_TEST(test_list_groups)
{
	static const unsigned char part[] = {0, 0, 0, 1};
	struct t_rec               r[6];
	struct mri_dlq_list       *l;
	const struct mri_dlq_group *g;

	r[0] = t_mr(1, 5, "orders", "10", "billing", "timeout after 12 ms",
		    T2, "k1");
	r[1] = t_mr(0, 7, "orders", "11", "billing", "timeout after 99 ms",
		    T1, "k2");
	r[2] = t_mr(0, 9, "invoices", "3", "audit", "Timeout after 5 ms",
		    T3, "k3");
	// Spring's, its partition as text (kcat), at the record's time.
	memset(&r[3], 0, sizeof(r[3]));
	r[3].h[0] = t_h("kafka_dlt-original-topic", "orders");
	r[3].h[1] = (struct mri_hdr_view){"kafka_dlt-original-partition", 28,
					  part, 4};
	r[3].h[2] = t_h("kafka_dlt-original-offset", "12");
	r[3].h[3] = t_h("kafka_dlt-exception-fqcn", "a.Bad");
	r[3].h[4] = t_h("kafka_dlt-exception-message", "no 1");
	r[3].r    = (struct mri_dlq_rec){.partition = 1, .offset = 6,
				     .timestamp_ms = 500, .nhdrs = 5};
	// Connect's, same reason.
	memset(&r[4], 0, sizeof(r[4]));
	r[4].h[0] = t_h("__connect.errors.topic", "orders");
	r[4].h[1] = t_h("__connect.errors.exception.class.name", "a.Bad");
	r[4].h[2] = t_h("__connect.errors.exception.message", "no 2");
	r[4].h[3] = t_h("__connect.errors.connector.name", "sink");
	r[4].r    = (struct mri_dlq_rec){.partition = 0, .offset = 1,
				     .timestamp_ms = 400, .nhdrs = 4};
	// No dead-letter header at all, no timestamp.
	memset(&r[5], 0, sizeof(r[5]));
	r[5].r = (struct mri_dlq_rec){.partition = 0, .offset = 2,
				      .timestamp_ms = -1};

	ck_assert_int_eq(t_list(r, 6, NULL, NULL, &l), MR_OK);
	ck_assert_uint_eq(l->scanned, 6);
	ck_assert_uint_eq(l->matched, 6);
	ck_assert_uint_eq(l->duplicates, 0);
	ck_assert_int_eq(l->cut, MRI_DLQ_CUT_NONE);
	ck_assert_uint_eq(l->ngroups, 3);
	ck_assert_uint_eq(l->groups_total, 3);
	// Most first: the timeouts (3), then a.Bad (2), then the unknown.
	g = &l->groups[0];
	ck_assert_uint_eq(g->fingerprint, t_fp("timeout after 1 ms"));
	ck_assert_uint_eq(g->count, 3);
	ck_assert_int_eq(g->first_ms, T1_MS);
	ck_assert_int_eq(g->last_ms, T1_MS + 2000);
	ck_assert_str_eq(g->reason, "Timeout after 5 ms"); // the latest
	ck_assert_uint_eq(g->nsources, 2);
	ck_assert_str_eq(g->sources[0], "orders");
	ck_assert_str_eq(g->sources[1], "invoices");
	ck_assert_uint_eq(g->ngroups, 2);
	ck_assert_str_eq(g->groups[0], "billing");
	ck_assert_str_eq(g->groups[1], "audit");
	ck_assert_uint_eq(g->dialects, 1u << MRI_DLQ_MAILROOM);
	ck_assert_int_eq(g->first_partition, 0);
	ck_assert_int_eq(g->first_offset, 7);
	ck_assert_int_eq(g->last_partition, 1);
	ck_assert_int_eq(g->last_offset, 5);
	g = &l->groups[1];
	ck_assert_uint_eq(g->fingerprint, t_fp("a.Bad: no 9"));
	ck_assert_uint_eq(g->count, 2);
	ck_assert_int_eq(g->first_ms, 400);
	ck_assert_int_eq(g->last_ms, 500);
	ck_assert_str_eq(g->reason, "a.Bad: no 1");
	ck_assert_uint_eq(g->dialects,
			  1u << MRI_DLQ_SPRING | 1u << MRI_DLQ_CONNECT);
	ck_assert_uint_eq(g->nsources, 1);
	ck_assert_uint_eq(g->ngroups, 1);
	ck_assert_str_eq(g->groups[0], "sink");
	g = &l->groups[2];
	ck_assert_uint_eq(g->fingerprint, MRI_DLQ_FP_EMPTY);
	ck_assert_uint_eq(g->count, 1);
	ck_assert_int_eq(g->first_ms, -1);
	ck_assert_uint_eq(g->dialects, 1u << MRI_DLQ_UNKNOWN);
	ck_assert_uint_eq(g->nsources, 0);
	mri_dlq_list_free(l);

	// max_groups: the first ones, and how many there are.
	ck_assert_int_eq(t_list(r, 6, NULL,
				&(struct mri_dlq_bounds){.max_groups = 1},
				&l),
			 MR_OK);
	ck_assert_uint_eq(l->ngroups, 1);
	ck_assert_uint_eq(l->groups_total, 3);
	ck_assert_uint_eq(l->groups[0].count, 3);
	mri_dlq_list_free(l);
}
END_TEST

START_TEST(test_list_copies_once)
{
	struct t_rec         r[5];
	struct mri_dlq_list *l;

	// Two copies of orders/0@10, the later with another reason; a third
	// at the same time but a later dead-letter position.
	r[0] = t_mr(0, 1, "orders", "10", "g", "first reason", T1, "k");
	r[1] = t_mr(0, 4, "orders", "10", "g", "went away 7", T2, "k");
	r[2] = t_mr(0, 2, "orders", "11", "g", "went away 8", T2, "k");
	r[3] = t_mr(0, 3, "orders", "11", "g", "went away 9", T2, "k");
	// Records whose original position is unknown are each their own.
	memset(&r[4], 0, sizeof(r[4]));
	r[4].r = (struct mri_dlq_rec){.partition = 0, .offset = 5,
				      .timestamp_ms = 1};
	ck_assert_int_eq(t_list(r, 5, NULL, NULL, &l), MR_OK);
	ck_assert_uint_eq(l->matched, 5);
	ck_assert_uint_eq(l->duplicates, 2);
	ck_assert_uint_eq(l->ngroups, 2); // "first reason" went
	ck_assert_uint_eq(l->groups[0].fingerprint, t_fp("went away 1"));
	ck_assert_uint_eq(l->groups[0].count, 2);
	ck_assert_int_eq(l->groups[0].first_offset, 3);
	ck_assert_int_eq(l->groups[0].last_offset, 4);
	ck_assert_uint_eq(l->groups[1].count, 1);
	mri_dlq_list_free(l);

	// Read in the other order: the same answer.
	{
		struct t_rec rev[4] = {r[3], r[2], r[1], r[0]};

		ck_assert_int_eq(t_list(rev, 4, NULL, NULL, &l), MR_OK);
		ck_assert_uint_eq(l->duplicates, 2);
		ck_assert_uint_eq(l->ngroups, 1);
		ck_assert_uint_eq(l->groups[0].count, 2);
		ck_assert_int_eq(l->groups[0].first_offset, 3);
		ck_assert_int_eq(l->groups[0].last_offset, 4);
		mri_dlq_list_free(l);
	}
}
END_TEST

static bool
t_skip_odd(void *arg, int32_t partition, int64_t offset)
{
	(*(int *)arg)++;
	(void)partition;
	return offset % 2 == 1;
}

START_TEST(test_list_filters)
{
	struct t_rec          r[4];
	struct mri_dlq_list  *l;
	struct mri_dlq_filter f;
	char                  why[256];
	int                   asked = 0;

	r[0] = t_mr(0, 0, "orders", "1", "billing", "a 1", T1, "k1");
	r[1] = t_mr(0, 1, "orders", "2", "audit", "b 1", T2, "k\0x");
	r[1].r.key_len = 3;
	r[2] = t_mr(1, 0, "invoices", "3", "billing", "a 2", NULL, "k1");
	r[2].r.timestamp_ms = T1_MS + 2500; // no mr_dlq_time: its own
	r[3] = t_mr(1, 1, "orders", "4", NULL, "c", T3, NULL);

#define T_COUNT(want)                                                         \
	do {                                                                  \
		uint64_t c = 0;                                               \
		ck_assert_int_eq(t_list(r, 4, &f, NULL, &l), MR_OK);          \
		for (size_t i = 0; i < l->ngroups; i++)                       \
			c += l->groups[i].count;                              \
		ck_assert_uint_eq(c, want);                                   \
		ck_assert_uint_eq(l->matched, want);                          \
		mri_dlq_list_free(l);                                         \
	} while (0)

	mri_dlq_filter_init(&f);
	f.topic = "orders";
	T_COUNT(3);
	f.topic = "nope";
	T_COUNT(0);
	mri_dlq_filter_init(&f);
	f.group = "billing";
	T_COUNT(2);
	mri_dlq_filter_init(&f);
	f.has_key = true;
	f.key     = "k\0x";
	f.key_len = 3;
	T_COUNT(1);
	f.key_len = 1; // "k": exact bytes only
	T_COUNT(0);
	mri_dlq_filter_init(&f);
	f.has_fingerprint = true;
	f.fingerprint     = t_fp("a 9");
	T_COUNT(2);
	f.fingerprint = 1; // an unknown one: nothing, not an error
	T_COUNT(0);
	mri_dlq_filter_init(&f);
	f.since_ms = T1_MS + 1000;
	T_COUNT(3);
	f.until_ms = T1_MS + 1000; // inclusive
	T_COUNT(1);
	f.since_ms = T1_MS + 2500; // the timestamp of the one without
	f.until_ms = T1_MS + 2500;
	T_COUNT(1);
	mri_dlq_filter_init(&f);
	f.has_dialect = true;
	f.dialect     = MRI_DLQ_SPRING;
	T_COUNT(0);
	f.dialect = MRI_DLQ_MAILROOM;
	T_COUNT(4);
	mri_dlq_filter_init(&f);
	f.skip     = t_skip_odd;
	f.skip_arg = &asked;
	T_COUNT(2);
	ck_assert_int_eq(asked, 4);

	// Conflicting: since after until.
	mri_dlq_filter_init(&f);
	f.since_ms = 10;
	f.until_ms = 9;
	ck_assert_int_eq(mri_dlq_filter_check(&f, why, sizeof(why)),
			 MR_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "after"));
	ck_assert_int_eq(t_list(r, 4, &f, NULL, &l), MR_EINVAL);
	f.until_ms = 10;
	ck_assert_int_eq(mri_dlq_filter_check(&f, why, sizeof(why)), MR_OK);
#undef T_COUNT
}
END_TEST

START_TEST(test_list_bounds)
{
	struct t_rec          r[5];
	struct mri_dlq_list  *l;
	struct mri_dlq_filter f;
	struct t_src          s   = {r, 5, 0, 2, MR_ETIMEDOUT};
	struct mri_dlq_source src = {t_next, &s};
	char                  why[256];

	for (int i = 0; i < 5; i++)
		r[i] = t_mr(0, i, "orders", (const char *[]){"1", "2", "3",
							     "4", "5"}[i],
			    "g", "x", T1, "k");
	ck_assert_int_eq(
	    t_list(r, 5, NULL, &(struct mri_dlq_bounds){.max_records = 3},
		   &l),
	    MR_OK);
	ck_assert_int_eq(l->cut, MRI_DLQ_CUT_RECORDS);
	ck_assert_uint_eq(l->scanned, 3);
	ck_assert_uint_eq(l->groups[0].count, 3);
	mri_dlq_list_free(l);
	// Exactly as many as the bound: read to the end, not cut.
	ck_assert_int_eq(
	    t_list(r, 5, NULL, &(struct mri_dlq_bounds){.max_records = 5},
		   &l),
	    MR_OK);
	ck_assert_int_eq(l->cut, MRI_DLQ_CUT_NONE);
	ck_assert_uint_eq(l->scanned, 5);
	mri_dlq_list_free(l);

	// Out of time after 2: what was read, cut.
	mri_dlq_filter_init(&f);
	ck_assert_int_eq(mri_dlq_list_run(&src, &f, NULL, &l, why,
					  sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(l->cut, MRI_DLQ_CUT_TIMEOUT);
	ck_assert_uint_eq(l->scanned, 2);
	ck_assert_uint_eq(l->groups[0].count, 2);
	mri_dlq_list_free(l);
	// Another error fails it.
	s = (struct t_src){r, 5, 0, 1, MR_EKAFKA};
	l = NULL;
	ck_assert_int_eq(mri_dlq_list_run(&src, &f, NULL, &l, why,
					  sizeof(why)),
			 MR_EKAFKA);
	ck_assert_ptr_null(l);
	ck_assert_str_eq(why, "the test's failure");
	ck_assert_str_eq(mri_dlq_cut_name(MRI_DLQ_CUT_TIMEOUT), "timeout");
	ck_assert_str_eq(mri_dlq_cut_name(MRI_DLQ_CUT_RECORDS),
			 "max_records");
}
END_TEST

START_TEST(test_list_many_names)
{
	enum { N = 40 };
	struct t_rec         *r = calloc(N, sizeof(*r));
	char                  topics[N][16], offs[N][16];
	struct mri_dlq_list  *l;

	for (int i = 0; i < N; i++) {
		snprintf(topics[i], sizeof(topics[i]), "t%d", i);
		snprintf(offs[i], sizeof(offs[i]), "%d", i);
		r[i] = t_mr(0, i, topics[i], offs[i], topics[i], "same", T1,
			    "k");
	}
	ck_assert_int_eq(t_list(r, N, NULL, NULL, &l), MR_OK);
	ck_assert_uint_eq(l->ngroups, 1);
	ck_assert_uint_eq(l->groups[0].count, N);
	ck_assert_uint_eq(l->groups[0].nsources, MRI_DLQ_LIST_NAMES);
	ck_assert(l->groups[0].more_sources);
	ck_assert_uint_eq(l->groups[0].ngroups, MRI_DLQ_LIST_NAMES);
	ck_assert(l->groups[0].more_groups);
	mri_dlq_list_free(l);
	free(r);
}
END_TEST

START_TEST(test_parsers)
{
	uint64_t             fp;
	enum mri_dlq_dialect d;

	ck_assert_int_eq(mri_dlq_fingerprint_parse("62dbcc580fce368a", 16, &fp),
			 MR_OK);
	ck_assert_uint_eq(fp, 0x62dbcc580fce368aULL);
	ck_assert_int_eq(mri_dlq_fingerprint_parse("62DBCC580FCE368A", 16, &fp),
			 MR_OK);
	ck_assert_uint_eq(fp, 0x62dbcc580fce368aULL);
	ck_assert_int_eq(mri_dlq_fingerprint_parse("62dbcc580fce368", 15, &fp),
			 MR_EINVAL);
	ck_assert_int_eq(mri_dlq_fingerprint_parse("62dbcc580fce368g", 16, &fp),
			 MR_EINVAL);
	ck_assert_int_eq(mri_dlq_dialect_parse("spring", &d), MR_OK);
	ck_assert_int_eq(d, MRI_DLQ_SPRING);
	ck_assert_int_eq(mri_dlq_dialect_parse("Spring", &d), MR_EINVAL);
	ck_assert_str_eq(mri_dlq_dialect_name(MRI_DLQ_CONNECT), "connect");

	ck_assert(mri_dlq_is_text("", 0));
	ck_assert(mri_dlq_is_text("héllo\tworld\r\n", 14));
	ck_assert(mri_dlq_is_text("\xf0\x9f\x93\xa6", 4));
	ck_assert(!mri_dlq_is_text("a\0b", 3));
	ck_assert(!mri_dlq_is_text("a\x1b", 2));
	ck_assert(!mri_dlq_is_text("\x7f", 1));
	ck_assert(!mri_dlq_is_text("\xff\xfe", 2));
	ck_assert(!mri_dlq_is_text("\xc3", 1));          // cut short
	ck_assert(!mri_dlq_is_text("\xc0\xaf", 2));      // overlong
	ck_assert(!mri_dlq_is_text("\xed\xa0\x80", 3));  // a surrogate
	ck_assert(!mri_dlq_is_text("\xf4\x90\x80\x80", 4)); // > U+10FFFF
}
END_TEST

START_TEST(test_shown_copies)
{
	struct t_rec          t = t_mr(2, 9, "orders", "10", "billing",
				       "boom 1", NULL, "key");
	char                  value[4] = {0, 1, 2, 3};
	struct mri_dlq_shown *s;

	t.r.value     = value;
	t.r.value_len = 4;
	t.r.hdrs      = t.h;
	ck_assert_int_eq(mri_dlq_shown_new(&s, &t.r), MR_OK);
	memset(value, 9, sizeof(value));
	memset(t.h, 0, sizeof(t.h));
	ck_assert_int_eq(s->rec.partition, 2);
	ck_assert_int_eq(s->rec.offset, 9);
	ck_assert_mem_eq(s->rec.value, "\0\1\2\3", 4);
	ck_assert_mem_eq(s->rec.key, "key", 3);
	ck_assert_uint_eq(s->rec.nhdrs, 5);
	ck_assert_mem_eq(s->rec.hdrs[0].name, MRI_DLQ_H_TOPIC, 12);
	ck_assert_int_eq(s->info.dialect, MRI_DLQ_MAILROOM);
	ck_assert_mem_eq(s->info.topic.p, "orders", 6);
	ck_assert_int_eq(s->info.offset, 10);
	ck_assert_str_eq(s->info.reason, "boom 1");
	ck_assert_int_eq(s->time_ms, 1000); // no mr_dlq_time: timestamp
	mri_dlq_shown_free(s);
}
END_TEST

/* ---- on the embedded cluster ------------------------------------------- */

static void
t_produce(rd_kafka_t *rk, int32_t p, const char *key, const void *v,
	  size_t vn, const char *reason, const char *off)
{
	rd_kafka_headers_t *hs = rd_kafka_headers_new(4);

	rd_kafka_header_add(hs, MRI_DLQ_H_TOPIC, -1, "orders", -1);
	rd_kafka_header_add(hs, MRI_DLQ_H_PARTITION, -1, "0", -1);
	rd_kafka_header_add(hs, MRI_DLQ_H_OFFSET, -1, off, -1);
	rd_kafka_header_add(hs, MRI_DLQ_H_REASON, -1, reason, -1);
	ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("k.dlq"),
					   RD_KAFKA_V_PARTITION(p),
					   RD_KAFKA_V_KEY(key, strlen(key)),
					   RD_KAFKA_V_VALUE((void *)v, vn),
					   RD_KAFKA_V_HEADERS(hs),
					   RD_KAFKA_V_END),
			 0);
}

static bool
t_topic_exists(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md;
	bool                            found = false;

	ck_assert_int_eq(rd_kafka_metadata(rk, 1, NULL, &md, 5000), 0);
	for (int i = 0; i < md->topic_cnt; i++)
		found |= strcmp(md->topics[i].topic, topic) == 0;
	rd_kafka_metadata_destroy(md);
	return found;
}

START_TEST(test_kafka)
{
	struct mri_embedded  *e;
	rd_kafka_conf_t      *tmpl = rd_kafka_conf_new(), *pc;
	rd_kafka_t           *prod;
	struct mri_dlq_kafka *k;
	struct mri_dlq_source src;
	struct mri_dlq_filter f;
	struct mri_dlq_list  *l;
	struct mri_dlq_shown *s;
	char                  err[512];

	ck_assert_int_eq(mri_embedded_start(&e, 1, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, "k.dlq", 3, 1), MR_OK);
	ck_assert_int_eq(mri_embedded_topic_create(e, "empty.dlq", 2, 1),
			 MR_OK);
	rd_kafka_conf_set(tmpl, "bootstrap.servers", mri_embedded_bootstraps(e),
			  err, sizeof(err));
	pc   = rd_kafka_conf_dup(tmpl);
	prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
	ck_assert_ptr_nonnull(prod);
	// Partition 0: 3 records (two copies of orders/0@1); partition 2: 1;
	// partition 1: none.
	t_produce(prod, 0, "a", "text", 4, "boom 1", "1");
	t_produce(prod, 0, "b", "\0\xff", 2, "boom 2", "2");
	t_produce(prod, 0, "a", "text", 4, "boom 1", "1");
	t_produce(prod, 2, "c", "x", 1, "other", "3");
	ck_assert_int_eq(rd_kafka_flush(prod, 10000), 0);

	ck_assert_msg(mri_dlq_kafka_open(&k, tmpl, "k.dlq", -1, 0, 10000, err,
					 sizeof(err)) == MR_OK,
		      "%s", err);
	ck_assert_int_eq(mri_dlq_kafka_partitions(k), 3);
	mri_dlq_kafka_source(k, &src);
	mri_dlq_filter_init(&f);
	ck_assert_int_eq(mri_dlq_list_run(&src, &f, NULL, &l, err,
					  sizeof(err)),
			 MR_OK);
	mri_dlq_kafka_close(k);
	ck_assert_int_eq(l->cut, MRI_DLQ_CUT_NONE);
	ck_assert_uint_eq(l->scanned, 4);
	ck_assert_uint_eq(l->duplicates, 1);
	ck_assert_uint_eq(l->ngroups, 2);
	ck_assert_uint_eq(l->groups[0].count, 2); // boom 1 (once), boom 2
	ck_assert_int_eq(l->groups[0].first_offset, 1);
	ck_assert_int_eq(l->groups[0].last_offset, 2);
	ck_assert_uint_eq(l->groups[1].count, 1);
	ck_assert_int_eq(l->groups[1].first_partition, 2);
	mri_dlq_list_free(l);

	// An empty topic: nothing, at once.
	ck_assert_int_eq(mri_dlq_kafka_open(&k, tmpl, "empty.dlq", -1, 0,
					    10000, err, sizeof(err)),
			 MR_OK);
	mri_dlq_kafka_source(k, &src);
	ck_assert_int_eq(mri_dlq_list_run(&src, &f, NULL, &l, err,
					  sizeof(err)),
			 MR_OK);
	ck_assert_uint_eq(l->scanned, 0);
	ck_assert_uint_eq(l->ngroups, 0);
	ck_assert_int_eq(l->cut, MRI_DLQ_CUT_NONE);
	mri_dlq_list_free(l);
	mri_dlq_kafka_close(k);

	// One record by its position.
	ck_assert_int_eq(mri_dlq_kafka_show(tmpl, "k.dlq", 0, 1, 10000, &s,
					    err, sizeof(err)),
			 MR_OK);
	ck_assert_int_eq(s->rec.offset, 1);
	ck_assert_uint_eq(s->rec.value_len, 2);
	ck_assert_mem_eq(s->rec.value, "\0\xff", 2);
	ck_assert_mem_eq(s->rec.key, "b", 1);
	ck_assert_str_eq(s->info.reason, "boom 2");
	ck_assert_int_eq(s->info.offset, 2);
	ck_assert_int_gt(s->time_ms, 0); // the record's timestamp
	mri_dlq_shown_free(s);

	// The errors.
	ck_assert_int_eq(mri_dlq_kafka_show(tmpl, "k.dlq", 0, 3, 10000, &s,
					    err, sizeof(err)),
			 MR_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "offsets 0 to 2"));
	ck_assert_int_eq(mri_dlq_kafka_show(tmpl, "k.dlq", 1, 0, 10000, &s,
					    err, sizeof(err)),
			 MR_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "holds no record"));
	ck_assert_int_eq(mri_dlq_kafka_show(tmpl, "k.dlq", 3, 0, 10000, &s,
					    err, sizeof(err)),
			 MR_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "partitions 0 to 2"));
	ck_assert_int_eq(mri_dlq_kafka_open(&k, tmpl, "nope.dlq", -1, 0, 10000,
					    err, sizeof(err)),
			 MR_ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "no topic nope.dlq"));
	// ... and asking did not make the embedded cluster create it.
	ck_assert(!t_topic_exists(prod, "nope.dlq"));

	rd_kafka_destroy(prod);
	rd_kafka_conf_destroy(tmpl);
	mri_embedded_stop(e);
}
END_TEST

int
main(void)
{
	Suite   *s = suite_create("dlq_inspect");
	TCase   *tc;
	SRunner *r;
	int      failed;

	tc = tcase_create("core");
	tcase_add_test(tc, test_list_groups);
	tcase_add_test(tc, test_list_copies_once);
	tcase_add_test(tc, test_list_filters);
	tcase_add_test(tc, test_list_bounds);
	tcase_add_test(tc, test_list_many_names);
	tcase_add_test(tc, test_parsers);
	tcase_add_test(tc, test_shown_copies);
	suite_add_tcase(s, tc);
	tc = tcase_create("kafka");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_kafka);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
