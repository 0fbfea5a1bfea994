/*
 * Step tests for backpressure's gate (broker/backpressure.h): bounds from
 * and to JSON, and the gate driven by hand-built lag snapshots (no lag
 * monitor, no Kafka), one rule of the header at a time.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/address.h"
#include "broker/backpressure.h"
#include "mailroom/error.h"

#define BT_TOPIC "orders"
#define BT_OTHER "payments"
#define BT_IVL   1000 /* the interval passed to mri_bp_apply, ms */
#define BT_ROWS  16
/* A record bound of 100 on BT_TOPIC counting group "g" (close it). */
#define BT_B100 "{\"topic\":\"orders\",\"max_lag\":100,\"groups\":[\"g\"]"

/* ---- helpers --------------------------------------------------------- */

struct bt_snap {
	struct mri_lag_row      rows[BT_ROWS];
	struct mri_lag_snapshot s;
};

/* The (group, topic) pairs mri_bp_begin gave its add callback. */
struct bt_pairs {
	char   v[8][64];
	size_t n;
};

static void
bt__add(void *ctx, const char *group, const char *topic)
{
	struct bt_pairs *p = ctx;

	if (p == NULL)
		return;
	ck_assert_uint_lt(p->n, 8);
	snprintf(p->v[p->n++], sizeof(p->v[0]), "%s/%s", group, topic);
}

static int
bt__cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Begin a refresh: the pairs it asked for, sorted, as "g/t g/t". */
static const char *
bt__begin(struct mri_bp *g)
{
	static char     out[512];
	struct bt_pairs p = {.n = 0};

	mri_bp_begin(g, bt__add, &p);
	qsort(p.v, p.n, sizeof(p.v[0]), bt__cmp);
	out[0] = '\0';
	for (size_t i = 0; i < p.n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
			 i > 0 ? " " : "", p.v[i]);
	return out;
}

static void
bt__snap_init(struct bt_snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	sn->s.rows     = sn->rows;
	sn->s.taken_ms = 1;
}

/* Add a row (callers add them sorted by group, topic, partition). */
static void
bt__row(struct bt_snap *sn, const char *group, const char *topic,
	int32_t partition, enum mri_lag_state state, int64_t lag,
	int64_t time_lag_ms)
{
	ck_assert_uint_lt(sn->s.nrows, BT_ROWS);
	sn->rows[sn->s.nrows++] = (struct mri_lag_row){
	    .group = group, .topic = topic, .partition = partition,
	    .state = state, .end = -1, .start = -1, .committed = -1,
	    .lag = lag, .time_lag_ms = time_lag_ms};
}

/* A refresh ending with \p sn: begin, then apply. */
static bool
bt__apply(struct mri_bp *g, struct bt_snap *sn, uint32_t interval_ms)
{
	mri_bp_begin(g, bt__add, NULL);
	return mri_bp_apply(g, &sn->s, interval_ms);
}

/* A refresh of group "g" on BT_TOPIC's \p n (up to 3) partitions. */
static bool
bt__refresh(struct mri_bp *g, int32_t n, int64_t l0, int64_t l1, int64_t l2)
{
	const int64_t  lag[3] = {l0, l1, l2};
	struct bt_snap sn;

	bt__snap_init(&sn);
	for (int32_t p = 0; p < n; p++)
		bt__row(&sn, "g", BT_TOPIC, p, MRI_LAG_OK, lag[p], 0);
	return bt__apply(g, &sn, BT_IVL);
}

#define bt__refresh2(g, l0, l1) bt__refresh(g, 2, l0, l1, 0)

/* A bound read from \p text (which must be accepted) into \p b. */
static void
bt__read(struct mri_bound *b, const char *topic, const char *text)
{
	json_t *o = json_loads(text, 0, NULL);
	char    why[256] = "";

	ck_assert_msg(o != NULL, "%s: not JSON", text);
	ck_assert_msg(mri_bound_from_json(b, topic, o, why, sizeof(why)) ==
			  MR_OK,
		      "%s: %s", text, why);
	json_decref(o);
}

/* A bound read from \p text, set in \p g. */
static void
bt__set(struct mri_bp *g, const char *text)
{
	struct mri_bound b;

	bt__read(&b, NULL, text);
	ck_assert_int_eq(mri_bp_set(g, &b), MR_OK);
	ck_assert_ptr_null(b.topic); /* moved into the gate */
}

/* A key whose partition among \p nparts is \p p (static buffer). */
static const char *
bt__key(int32_t p, int32_t nparts)
{
	static char buf[4][32];
	static int  turn;
	char       *k = buf[turn++ % 4];

	for (int i = 0; i < 100000; i++) {
		snprintf(k, sizeof(buf[0]), "key-%d", i);
		if (mri_partition_for_key(k, strlen(k), nparts) == p)
			return k;
	}
	ck_abort_msg("no key for partition %d of %d", p, nparts);
	return NULL;
}

/* A record to \p topic with \p key (NULL: keyless), partition unset. */
static void
bt__rec(struct mri_bp_rec *r, const char *topic, const char *key)
{
	*r = (struct mri_bp_rec){.topic     = topic,
				 .key       = key,
				 .key_len   = key != NULL ? strlen(key) : 0,
				 .has_key   = key != NULL,
				 .partition = -1,
				 .verdict   = 0xff}; /* the gate must say */
}

static bool
bt__throttled(struct mri_bp *g, const char *topic, int32_t p)
{
	struct mri_bp_part_state st;

	ck_assert_int_eq(mri_bp_state(g, topic, p, &st), MR_OK);
	return st.throttled;
}

/* Check one record to BT_TOPIC with \p key, admit it if it goes. */
static uint8_t
bt__send(struct mri_bp *g, const char *key, struct mri_bp_rec *out)
{
	struct mri_bp_rec r;

	bt__rec(&r, BT_TOPIC, key);
	(void)mri_bp_check(g, &r, 1, false);
	mri_bp_admit(g, &r, 1);
	if (out != NULL)
		*out = r;
	return r.verdict;
}

/* \p n records to BT_TOPIC with \p key, checked as one request, each
 * with the verdict \p want. @returns the block time. */
static uint32_t
bt__check_all(struct mri_bp *g, struct mri_bp_rec *r, size_t n,
	      const char *key, bool expired, uint8_t want)
{
	uint32_t block;

	for (size_t i = 0; i < n; i++)
		bt__rec(&r[i], BT_TOPIC, key);
	block = mri_bp_check(g, r, n, expired);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(r[i].verdict == want, "record %zu: verdict %d",
			      i, r[i].verdict);
	return block;
}

/* \p r was held or refused for \p kind, \p lag over \p bound, and told to
 * come back no sooner than \p retry_min. */
static void
bt__why(const struct mri_bp_rec *r, uint8_t kind, int64_t lag, int64_t bound,
	uint32_t retry_min)
{
	ck_assert_int_eq(r->why.kind, kind);
	ck_assert_int_eq(r->why.lag, lag);
	ck_assert_int_eq(r->why.bound, bound);
	ck_assert_uint_ge(r->why.retry_after_ms, retry_min);
	ck_assert_uint_le(r->why.retry_after_ms, MRI_BP_RETRY_MAX_MS);
}

/* ---- 1. bounds from and to JSON -------------------------------------- */

START_TEST(test_json_defaults)
{
	struct mri_bound b;

	bt__read(&b, NULL, "{\"topic\":\"orders\",\"max_lag\":100}");
	ck_assert_str_eq(b.topic, BT_TOPIC);
	ck_assert_int_eq(b.max_lag, 100);
	ck_assert_int_eq(b.resume_lag, 50);
	ck_assert_int_eq(b.max_time_ms, 0);
	ck_assert_int_eq(b.policy, MRI_BP_HOLD);
	ck_assert_uint_eq(b.block_ms, MRI_BP_BLOCK_MS);
	ck_assert_uint_eq(b.ngroups, 0);
	mri_bound_fini(&b);

	bt__read(&b, NULL, "{\"topic\":\"orders\",\"max_time_lag_ms\":1000,"
			   "\"groups\":[\"a\",\"b\"]}");
	ck_assert_int_eq(b.max_lag, 0);
	ck_assert_int_eq(b.max_time_ms, 1000);
	ck_assert_int_eq(b.resume_time_ms, 500);
	ck_assert_uint_eq(b.ngroups, 2);
	ck_assert_str_eq(b.groups[0], "a");
	ck_assert_str_eq(b.groups[1], "b");
	mri_bound_fini(&b);

	// The topic argument wins over the object's; reject needs no block.
	bt__read(&b, BT_OTHER, "{\"topic\":\"orders\",\"max_lag\":10,"
			       "\"policy\":\"reject\",\"block_ms\":0}");
	ck_assert_str_eq(b.topic, BT_OTHER);
	ck_assert_int_eq(b.policy, MRI_BP_REJECT);
	mri_bound_fini(&b);
}
END_TEST

static const struct {
	const char *json;
	const char *why; /* a part of the sentence */
} bt__refusals[] = {
    {"{\"topic\":\"t\",\"max_lag\":-1}", "max_lag"},
    {"{\"topic\":\"t\",\"max_lag\":100,\"resume_lag\":100}", "resume_lag"},
    {"{\"topic\":\"t\",\"max_lag\":100,\"resume_lag\":150}", "resume_lag"},
    {"{\"topic\":\"t\",\"max_time_lag_ms\":1000,"
     "\"resume_time_lag_ms\":1000}",
     "resume_time_lag_ms"},
    {"{\"topic\":\"t\"}", "max_lag"},
    {"{\"topic\":\"t\",\"max_lag\":0,\"max_time_lag_ms\":0}", "max_lag"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"colour\":1}", "colour"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"policy\":\"drop\"}", "policy"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"block_ms\":0}", "block_ms"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"block_ms\":30001}", "block_ms"},
    {"{\"topic\":\"t\",\"max_lag\":\"10\"}", "max_lag"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"groups\":\"g\"}", "groups"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"groups\":[\"\"]}", "groups[0]"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"groups\":[\"a\",7]}", "groups[1]"},
    {"{\"topic\":\"t\",\"max_lag\":10,\"groups\":[\"a\",\"a\"]}", "twice"},
    {"{\"topic\":\"bad topic!\",\"max_lag\":10}", "invalid topic"},
    {"{\"topic\":\"..\",\"max_lag\":10}", "invalid topic"},
    {"{\"max_lag\":10}", "topic"},
    {"[1]", "object"},
};

START_TEST(test_json_refused)
{
	struct mri_bound b;
	json_error_t     jerr;
	json_t          *o = json_loads(bt__refusals[_i].json, 0, &jerr);
	char             why[256] = "";

	ck_assert_msg(o != NULL, "%s", jerr.text);
	ck_assert_int_eq(mri_bound_from_json(&b, NULL, o, why, sizeof(why)),
			 MR_EINVAL);
	ck_assert_msg(strstr(why, bt__refusals[_i].why) != NULL,
		      "%s: why \"%s\" does not name %s", bt__refusals[_i].json,
		      why, bt__refusals[_i].why);
	ck_assert_ptr_null(b.topic); /* nothing left to free */
	ck_assert_ptr_null(b.groups);
	json_decref(o);
}
END_TEST

/* to_json of what from_json read reads back the same; when \p same, it
 * is \p text itself. */
static void
bt__round_trip(const char *text, bool same)
{
	struct mri_bound b, b2;
	json_t          *o = json_loads(text, 0, NULL), *j, *j2;
	char             why[256] = "";

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(mri_bound_from_json(&b, NULL, o, why, sizeof(why)),
			 MR_OK);
	j = mri_bound_to_json(&b);
	ck_assert_msg(!same || json_equal(o, j), "%s: to_json differs", text);
	ck_assert_msg(mri_bound_from_json(&b2, NULL, j, why, sizeof(why)) ==
			  MR_OK,
		      "%s does not read back: %s", text, why);
	j2 = mri_bound_to_json(&b2);
	ck_assert_msg(json_equal(j, j2), "%s changed on a round trip", text);
	json_decref(j2);
	mri_bound_fini(&b2);
	json_decref(j);
	mri_bound_fini(&b);
	json_decref(o);
}

START_TEST(test_json_round_trip)
{
	bt__round_trip("{\"topic\":\"orders\",\"max_lag\":100,"
		       "\"resume_lag\":40,\"max_time_lag_ms\":2000,"
		       "\"resume_time_lag_ms\":300,\"policy\":\"reject\","
		       "\"block_ms\":100,\"groups\":[\"a\",\"b\"]}",
		       true);
}
END_TEST

/* A bound with one kind of high mark only (the usual) reads back too:
 * what bounds.list and bounds.set answer can be given to bounds.set. */
START_TEST(test_json_round_trip_one_mark)
{
	bt__round_trip("{\"topic\":\"orders\",\"max_lag\":100}", false);
	bt__round_trip("{\"topic\":\"orders\",\"max_time_lag_ms\":1000}",
		       false);
}
END_TEST

/* ---- 2. hysteresis ----------------------------------------------------- */

/* A refresh with \p lag on partition 0: whether it opened a partition,
 * and partition 0's state after. */
static void
bt__step(struct mri_bp *g, int64_t lag, bool opened, bool throttled)
{
	ck_assert_msg(bt__refresh2(g, lag, 0) == opened, "lag %lld: opened",
		      (long long)lag);
	ck_assert_msg(bt__throttled(g, BT_TOPIC, 0) == throttled,
		      "lag %lld: throttled", (long long)lag);
	ck_assert(!bt__throttled(g, BT_TOPIC, 1));
}

START_TEST(test_hysteresis)
{
	struct mri_bp *g = mri_bp_new();

	bt__set(g, BT_B100 ",\"resume_lag\":50}");
	bt__step(g, 99, false, false);
	bt__step(g, 100, false, true);
	bt__step(g, 70, false, true);
	bt__step(g, 51, false, true);
	bt__step(g, 50, true, false);
	bt__step(g, 50, false, false);
	bt__step(g, 99, false, false);
	mri_bp_free(g);
}
END_TEST

/* ---- 3. per partition: hold, reject, expired, why ---------------------- */

START_TEST(test_partition_hold)
{
	struct mri_bp    *g = mri_bp_new();
	struct mri_bp_rec r[2];
	struct bt_snap    sn;

	bt__set(g, BT_B100 ",\"block_ms\":700}");
	bt__snap_init(&sn);
	bt__row(&sn, "g", BT_TOPIC, 0, MRI_LAG_OK, 100, 0);
	bt__row(&sn, "g", BT_TOPIC, 1, MRI_LAG_OK, 0, 0);
	ck_assert(!bt__apply(g, &sn, 2500));

	bt__rec(&r[0], BT_TOPIC, bt__key(1, 2));
	bt__rec(&r[1], BT_TOPIC, bt__key(0, 2));
	ck_assert_uint_eq(mri_bp_check(g, r, 2, false), 700);
	ck_assert_int_eq(r[0].verdict, MRI_BP_GO);
	ck_assert_int_eq(r[0].partition, 1);
	ck_assert_int_eq(r[1].verdict, MRI_BP_WAIT);
	ck_assert_int_eq(r[1].partition, 0);
	bt__why(&r[1], MRI_BP_KIND_RECORDS, 100, 100, 2500);

	// Past its block time, a hold refuses.
	bt__rec(&r[0], BT_TOPIC, bt__key(1, 2));
	bt__rec(&r[1], BT_TOPIC, bt__key(0, 2));
	ck_assert_uint_eq(mri_bp_check(g, r, 2, true), 0);
	ck_assert_int_eq(r[0].verdict, MRI_BP_GO);
	ck_assert_int_eq(r[1].verdict, MRI_BP_REFUSE);
	bt__why(&r[1], MRI_BP_KIND_RECORDS, 100, 100, 2500);

	// Policy reject refuses at once.
	bt__set(g, BT_B100 ",\"policy\":\"reject\"}");
	ck_assert(!bt__refresh2(g, 150, 10));
	bt__rec(&r[0], BT_TOPIC, bt__key(0, 2));
	bt__rec(&r[1], BT_TOPIC, bt__key(1, 2));
	ck_assert_uint_eq(mri_bp_check(g, r, 2, false), 0);
	ck_assert_int_eq(r[0].verdict, MRI_BP_REFUSE);
	bt__why(&r[0], MRI_BP_KIND_RECORDS, 150, 100, BT_IVL);
	ck_assert_int_eq(r[1].verdict, MRI_BP_GO);
	mri_bp_free(g);
}
END_TEST

/* ---- 4. counting what was admitted between refreshes ------------------- */

START_TEST(test_admit_counting)
{
	struct mri_bp    *g = mri_bp_new();
	struct mri_bp_rec r[20];
	const char       *k0 = bt__key(0, 2), *k1 = bt__key(1, 2);

	bt__set(g, BT_B100 "}");
	bt__refresh2(g, 90, 90);
	for (int i = 0; i < 9; i++) {
		ck_assert_int_eq(bt__send(g, k0, NULL), MRI_BP_GO);
		ck_assert_msg(!bt__throttled(g, BT_TOPIC, 0), "after %d", i + 1);
	}
	ck_assert_int_eq(bt__send(g, k0, NULL), MRI_BP_GO); /* the 10th */
	ck_assert(bt__throttled(g, BT_TOPIC, 0));            /* at once */
	ck_assert_int_eq(bt__send(g, k0, &r[0]), MRI_BP_WAIT);
	bt__why(&r[0], MRI_BP_KIND_RECORDS, 100, 100, BT_IVL);

	// Partition 1, also 90 behind: one request of 20 goes as a whole
	// (the bound plus one batch); the next one waits as a whole.
	ck_assert(!bt__throttled(g, BT_TOPIC, 1));
	ck_assert_uint_eq(bt__check_all(g, r, 20, k1, false, MRI_BP_GO), 0);
	mri_bp_admit(g, r, 20);
	ck_assert(bt__throttled(g, BT_TOPIC, 1));
	ck_assert_uint_eq(bt__check_all(g, r, 20, k1, false, MRI_BP_WAIT),
			  MRI_BP_BLOCK_MS);
	bt__why(&r[19], MRI_BP_KIND_RECORDS, 110, 100, BT_IVL);
	mri_bp_free(g);
}
END_TEST

/* ---- 5. begin samples the admitted count -------------------------------- */

START_TEST(test_begin_sampling)
{
	struct mri_bp    *g = mri_bp_new();
	const char       *k0 = bt__key(0, 2);
	struct bt_snap    sn;
	struct mri_bp_rec r;

	bt__set(g, BT_B100 ",\"resume_lag\":50}");
	bt__refresh2(g, 10, 0);
	// A refresh begins; 30 records go while Kafka is asked; the lag
	// it measured (80) does not hold them: the estimate is 110.
	mri_bp_begin(g, bt__add, NULL);
	for (int i = 0; i < 30; i++)
		ck_assert_int_eq(bt__send(g, k0, NULL), MRI_BP_GO);
	ck_assert(!bt__throttled(g, BT_TOPIC, 0)); /* 10 + 30 */
	bt__snap_init(&sn);
	bt__row(&sn, "g", BT_TOPIC, 0, MRI_LAG_OK, 80, 0);
	bt__row(&sn, "g", BT_TOPIC, 1, MRI_LAG_OK, 0, 0);
	ck_assert(!mri_bp_apply(g, &sn.s, BT_IVL));
	ck_assert(bt__throttled(g, BT_TOPIC, 0));
	ck_assert_int_eq(bt__send(g, k0, &r), MRI_BP_WAIT);
	bt__why(&r, MRI_BP_KIND_RECORDS, 110, 100, BT_IVL);

	// The next refresh's lag holds those 30: they count once, not
	// again (40 is at or below the low mark; 40 + 30 is not).
	ck_assert(bt__refresh2(g, 40, 0));
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	mri_bp_free(g);
}
END_TEST

/* ---- 6. the time bound ------------------------------------------------- */

/* A refresh of group "g" on BT_TOPIC's one partition: time lag \p tl. */
static bool
bt__refresh_time(struct mri_bp *g, int64_t tl)
{
	struct bt_snap sn;

	bt__snap_init(&sn);
	bt__row(&sn, "g", BT_TOPIC, 0, MRI_LAG_OK, 5, tl);
	return bt__apply(g, &sn, BT_IVL);
}

START_TEST(test_time_bound)
{
	struct mri_bp    *g = mri_bp_new();
	struct mri_bp_rec r;
	const char       *k = bt__key(0, 1);

	bt__set(g, "{\"topic\":\"orders\",\"max_time_lag_ms\":1000,"
		   "\"resume_time_lag_ms\":500,\"groups\":[\"g\"]}");
	ck_assert(!bt__refresh_time(g, 999));
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	ck_assert(!bt__refresh_time(g, 1500));
	ck_assert(bt__throttled(g, BT_TOPIC, 0));
	ck_assert_int_eq(bt__send(g, k, &r), MRI_BP_WAIT);
	bt__why(&r, MRI_BP_KIND_TIME, 1500, 1000, BT_IVL);
	ck_assert(!bt__refresh_time(g, 700));
	ck_assert(bt__throttled(g, BT_TOPIC, 0));
	ck_assert(bt__refresh_time(g, 400));
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	ck_assert_int_eq(bt__send(g, k, NULL), MRI_BP_GO);
	mri_bp_free(g);
}
END_TEST

/* ---- 7. which groups count --------------------------------------------- */

/* "a" 500 behind on BT_TOPIC's partition 0, "b" \p lag_b; "a" on
 * BT_OTHER 500 behind. */
static void
bt__groups_snap(struct bt_snap *sn, int64_t lag_b, enum mri_lag_state sb)
{
	bt__snap_init(sn);
	bt__row(sn, "a", BT_TOPIC, 0, MRI_LAG_OK, 500, 0);
	bt__row(sn, "a", BT_OTHER, 0, MRI_LAG_OK, 500, 0);
	bt__row(sn, "b", BT_TOPIC, 0, sb, lag_b, 0);
}

START_TEST(test_groups_served)
{
	struct mri_bp *g = mri_bp_new();
	struct bt_snap sn;

	bt__set(g, "{\"topic\":\"orders\",\"max_lag\":100}");
	bt__set(g, "{\"topic\":\"payments\",\"max_lag\":100}");
	bt__groups_snap(&sn, 0, MRI_LAG_OK);

	// Nothing served yet: nothing counts.
	ck_assert_str_eq(bt__begin(g), "");
	mri_bp_apply(g, &sn.s, BT_IVL);
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	ck_assert(!bt__throttled(g, BT_OTHER, 0));

	// "a" served on the other topic counts there only.
	mri_bp_served(g, "a", BT_OTHER);
	mri_bp_served(g, "b", "unbounded");
	ck_assert_str_eq(bt__begin(g), "a/payments");
	mri_bp_apply(g, &sn.s, BT_IVL);
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	ck_assert(bt__throttled(g, BT_OTHER, 0));

	// "b" served on BT_TOPIC (twice): "a" is still not counted there.
	mri_bp_served(g, "b", BT_TOPIC);
	mri_bp_served(g, "b", BT_TOPIC);
	ck_assert_str_eq(bt__begin(g), "a/payments b/orders");
	mri_bp_apply(g, &sn.s, BT_IVL);
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));

	// Now "a" is served on BT_TOPIC: its 500 counts.
	mri_bp_served(g, "a", BT_TOPIC);
	ck_assert_str_eq(bt__begin(g), "a/orders a/payments b/orders");
	mri_bp_apply(g, &sn.s, BT_IVL);
	ck_assert(bt__throttled(g, BT_TOPIC, 0));
	mri_bp_free(g);
}
END_TEST

START_TEST(test_groups_named)
{
	struct mri_bp *g = mri_bp_new();
	struct bt_snap sn;

	bt__set(g, "{\"topic\":\"orders\",\"max_lag\":100,\"resume_lag\":50,"
		   "\"groups\":[\"b\"]}");
	mri_bp_served(g, "a", BT_TOPIC); /* named groups: not remembered */
	ck_assert_str_eq(bt__begin(g), "b/orders");
	bt__groups_snap(&sn, 10, MRI_LAG_OK);
	mri_bp_apply(g, &sn.s, BT_IVL);
	ck_assert(!bt__throttled(g, BT_TOPIC, 0)); /* "a" 500 not counted */

	// An unknown row leaves an open partition open...
	bt__groups_snap(&sn, 500, MRI_LAG_UNKNOWN);
	bt__apply(g, &sn, BT_IVL);
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));

	bt__groups_snap(&sn, 200, MRI_LAG_OK);
	bt__apply(g, &sn, BT_IVL);
	ck_assert(bt__throttled(g, BT_TOPIC, 0));

	// ... and a throttled one throttled: state unknown, or lag -1.
	bt__groups_snap(&sn, 0, MRI_LAG_UNKNOWN);
	ck_assert(!bt__apply(g, &sn, BT_IVL));
	ck_assert(bt__throttled(g, BT_TOPIC, 0));
	bt__groups_snap(&sn, -1, MRI_LAG_OK);
	ck_assert(!bt__apply(g, &sn, BT_IVL));
	ck_assert(bt__throttled(g, BT_TOPIC, 0));

	bt__groups_snap(&sn, 10, MRI_LAG_NO_COMMIT);
	ck_assert(bt__apply(g, &sn, BT_IVL));
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	mri_bp_free(g);
}
END_TEST

/* ---- 8. keyless records ------------------------------------------------ */

START_TEST(test_keyless)
{
	struct mri_bp    *g = mri_bp_new();
	struct mri_bp_rec r[6];
	int               used[3] = {0, 0, 0};

	bt__set(g, BT_B100 "}");
	bt__refresh(g, 3, 100, 0, 0);
	ck_assert_uint_eq(bt__check_all(g, r, 6, NULL, false, MRI_BP_GO), 0);
	for (int i = 0; i < 6; i++) {
		ck_assert_msg(r[i].partition == 1 || r[i].partition == 2,
			      "record %d to partition %d", i, r[i].partition);
		used[r[i].partition]++;
	}
	// In turn over the open ones: an even share each.
	ck_assert_int_eq(used[1], 3);
	ck_assert_int_eq(used[2], 3);

	// Every partition throttled: keyless records wait, or are refused.
	bt__refresh(g, 3, 100, 100, 100);
	ck_assert_uint_eq(bt__check_all(g, r, 6, NULL, false, MRI_BP_WAIT),
			  MRI_BP_BLOCK_MS);
	bt__why(&r[5], MRI_BP_KIND_RECORDS, 100, 100, BT_IVL);
	ck_assert_uint_eq(bt__check_all(g, r, 6, NULL, true, MRI_BP_REFUSE),
			  0);
	mri_bp_free(g);
}
END_TEST

/* ---- 9. set, clear, any, state, stats, list ---------------------------- */

static size_t
bt__nlisted(struct mri_bp *g, const char *topic)
{
	json_t *l = mri_bp_list(g, topic);
	size_t  n = json_array_size(l);

	json_decref(l);
	return n;
}

/* The state of partition \p p in the only bound of mri_bp_list. */
static const char *
bt__listed(struct mri_bp *g, const char *topic, int32_t p)
{
	json_t     *l = mri_bp_list(g, topic), *o = json_array_get(l, 0);
	json_t     *part = json_array_get(json_object_get(o, "partitions"),
					  (size_t)p);
	static char state[16];

	ck_assert_uint_eq(json_array_size(l), 1);
	ck_assert_str_eq(json_string_value(json_object_get(o, "topic")),
			 topic);
	ck_assert_int_eq(json_integer_value(json_object_get(part, "partition")),
			 p);
	snprintf(state, sizeof(state), "%s",
		 json_string_value(json_object_get(part, "state")));
	json_decref(l);
	return state;
}

static bool
bt__keep_orders(void *arg, const char *topic)
{
	(void)arg;
	return strcmp(topic, "orders") == 0;
}

START_TEST(test_retain)
{
	struct mri_bp *g = mri_bp_new();

	bt__set(g, BT_B100 "}");
	bt__set(g, "{\"topic\":\"payments\",\"max_lag\":100}");
	mri_bp_retain(g, bt__keep_orders, NULL);
	ck_assert_uint_eq(bt__nlisted(g, NULL), 1);
	ck_assert_uint_eq(bt__nlisted(g, "orders"), 1);
	ck_assert_int_eq(mri_bp_clear(g, "payments"), MR_ENOENT);
	mri_bp_free(g);
}
END_TEST

START_TEST(test_set_clear_stats_list)
{
	struct mri_bp           *g = mri_bp_new();
	struct mri_bp_stats      st;
	struct mri_bp_part_state ps;

	ck_assert(!mri_bp_any(g));
	ck_assert(!mri_bp_any(NULL));
	ck_assert_int_eq(mri_bp_clear(g, BT_TOPIC), MR_ENOENT);
	ck_assert_int_eq(mri_bp_state(g, BT_TOPIC, 0, &ps), MR_ENOENT);
	bt__set(g, BT_B100 "}");
	bt__set(g, "{\"topic\":\"payments\",\"max_lag\":100}");
	ck_assert(mri_bp_any(g));
	bt__refresh2(g, 100, 0);
	mri_bp_count(g, 3, 2);
	mri_bp_stats(g, &st);
	ck_assert_uint_eq(st.bounds, 2);
	ck_assert_uint_eq(st.throttled, 1);
	ck_assert_uint_eq(st.held, 3);
	ck_assert_uint_eq(st.refused, 2);
	ck_assert_uint_eq(bt__nlisted(g, NULL), 2);
	ck_assert_uint_eq(bt__nlisted(g, "nothing"), 0);
	ck_assert_str_eq(bt__listed(g, BT_TOPIC, 0), "holding");
	ck_assert_str_eq(bt__listed(g, BT_TOPIC, 1), "open");

	// A bound replaced: the same topic, its state kept to the refresh.
	bt__set(g, "{\"topic\":\"orders\",\"max_lag\":1000,"
		   "\"policy\":\"reject\",\"groups\":[\"g\"]}");
	ck_assert_int_eq(mri_bp_state(g, BT_TOPIC, 0, &ps), MR_OK);
	ck_assert_int_eq(ps.policy, MRI_BP_REJECT);
	ck_assert_int_eq(ps.max_lag, 1000);
	ck_assert(ps.throttled);
	ck_assert_str_eq(bt__listed(g, BT_TOPIC, 0), "refusing");
	mri_bp_stats(g, &st);
	ck_assert_uint_eq(st.bounds, 2);
	ck_assert_int_eq(bt__send(g, bt__key(0, 2), NULL), MRI_BP_REFUSE);
	ck_assert(bt__refresh2(g, 100, 100));
	ck_assert(!bt__throttled(g, BT_TOPIC, 0));
	ck_assert_str_eq(bt__listed(g, BT_TOPIC, 0), "open");
	mri_bp_stats(g, &st);
	ck_assert_uint_eq(st.throttled, 0);

	ck_assert_int_eq(mri_bp_clear(g, BT_TOPIC), MR_OK);
	ck_assert_int_eq(mri_bp_clear(g, BT_TOPIC), MR_ENOENT);
	ck_assert_int_eq(mri_bp_state(g, BT_TOPIC, 0, &ps), MR_ENOENT);
	ck_assert(mri_bp_any(g));
	ck_assert_int_eq(mri_bp_clear(g, BT_OTHER), MR_OK);
	ck_assert(!mri_bp_any(g));
	mri_bp_stats(g, &st);
	ck_assert_uint_eq(st.bounds, 0);
	mri_bp_free(g);
}
END_TEST

/* ---- 10. topics without a bound ---------------------------------------- */

START_TEST(test_unbounded)
{
	struct mri_bp    *g = mri_bp_new();
	struct mri_bp_rec r[3];

	// An empty gate lets everything go.
	bt__rec(&r[0], BT_TOPIC, "k");
	bt__rec(&r[1], BT_TOPIC, NULL);
	ck_assert_uint_eq(mri_bp_check(g, r, 2, false), 0);
	ck_assert_int_eq(r[0].verdict, MRI_BP_GO);
	ck_assert_int_eq(r[1].verdict, MRI_BP_GO);
	mri_bp_admit(g, r, 2);

	// Every partition of BT_TOPIC throttled; BT_OTHER has no bound.
	bt__set(g, BT_B100 ",\"policy\":\"reject\"}");
	bt__refresh2(g, 100, 100);
	bt__rec(&r[0], BT_OTHER, "k");
	bt__rec(&r[1], BT_OTHER, NULL);
	bt__rec(&r[2], BT_TOPIC, "k");
	ck_assert_uint_eq(mri_bp_check(g, r, 3, true), 0);
	ck_assert_int_eq(r[0].verdict, MRI_BP_GO);
	ck_assert_int_eq(r[1].verdict, MRI_BP_GO);
	ck_assert_int_eq(r[1].partition, -1); /* the producer picks */
	ck_assert_int_eq(r[2].verdict, MRI_BP_REFUSE);
	mri_bp_admit(g, r, 3);
	mri_bp_free(g);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("backpressure");
	TCase   *tc = tcase_create("backpressure");
	SRunner *r;
	int      failed;
	int      nref = (int)(sizeof(bt__refusals) / sizeof(bt__refusals[0]));

	tcase_add_test(tc, test_json_defaults);
	tcase_add_loop_test(tc, test_json_refused, 0, nref);
	tcase_add_test(tc, test_json_round_trip);
	tcase_add_test(tc, test_json_round_trip_one_mark);
	tcase_add_test(tc, test_hysteresis);
	tcase_add_test(tc, test_partition_hold);
	tcase_add_test(tc, test_admit_counting);
	tcase_add_test(tc, test_begin_sampling);
	tcase_add_test(tc, test_time_bound);
	tcase_add_test(tc, test_groups_served);
	tcase_add_test(tc, test_groups_named);
	tcase_add_test(tc, test_keyless);
	tcase_add_test(tc, test_set_clear_stats_list);
	tcase_add_test(tc, test_retain);
	tcase_add_test(tc, test_unbounded);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
