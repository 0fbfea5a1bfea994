/*
 * Mirrored actors with durable state (include/mailroom/mirror.h, issue
 * #11 item 6) on a real mailroomd: a bank account type whose balance is
 * snapshotted to a compacted state topic after each message.
 *
 *  - saved: after a stream of deposits, the latest snapshot of every
 *    account in the state topic (read back with topics.read) holds the
 *    sum of its deposits, at the offset of its last one;
 *  - let it crash loses nothing: a message that adds to the balance and
 *    then crashes its actor is quarantined after its attempts, and the
 *    balance never counts it (the crashed state is dropped, the next
 *    activation starts from the last snapshot);
 *  - restored and skipped: a second type in another group reads the
 *    topic from its start; every message is at or below its account's
 *    snapshot, so none reaches an actor (nothing applied twice);
 *  - continued: new deposits then activate each account from its
 *    snapshot, and the balances go on from there.
 *
 * Built twice: mirror_durable_embedded and mirror_durable_kafka
 * (MR_KAFKA=1). No assertion on a duration: every wait is bounded.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base64.h"
#include "integration/checked.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define KEYS      100
#define PER_KEY   10
#define WAIT_MS   120000
#define ATTEMPTS  3
#define BOOM_KEY  3
#define BOOM_SUM  1000000 /* what the crashing message adds first */

struct world {
	pthread_mutex_t lock;
	long long       balance[KEYS]; /* as the live actors last left it */
	unsigned        applied;       /* deposits handled */
	unsigned        booms;
	unsigned        inits, from_snapshot;
	unsigned        bad;           /* a key or a snapshot not ours */
};

struct account {
	struct world *w;
	int           k;
	long long     balance;
};

static int
key_index(const void *key, size_t len)
{
	char  buf[16], *end;
	long  k;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, key, len);
	buf[len] = '\0';
	k        = strtol(buf + 1, &end, 10);
	return buf[0] == 'b' && *end == '\0' && k >= 0 && k < KEYS ? (int)k
								   : -1;
}

/* The amount of account \p k's deposit number \p seq. */
static long long
amount(int k, int seq)
{
	return 1 + k + 10LL * seq;
}

static long long
expected(int k, int deposits)
{
	long long sum = 0;

	for (int seq = 0; seq < deposits; seq++)
		sum += amount(k, seq);
	return sum;
}

static int
acct_init(mr_actor *self, void *arg, void **state)
{
	const mr_mirror_key *mk = arg;
	struct world        *w  = mk->arg;
	struct account      *a;
	int                  k  = key_index(mk->key, mk->key_len);
	char                 buf[32];

	(void)self;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return MR_ENOMEM;
	*a = (struct account){w, k, 0};
	pthread_mutex_lock(&w->lock);
	w->inits++;
	if (k < 0)
		w->bad++;
	if (mk->snapshot != NULL) {
		w->from_snapshot++;
		snprintf(buf, sizeof(buf), "%.*s",
			 (int)(mk->snapshot_len < 31 ? mk->snapshot_len : 31),
			 (const char *)mk->snapshot);
		if (sscanf(buf, "%lld", &a->balance) != 1)
			w->bad++;
	}
	pthread_mutex_unlock(&w->lock);
	*state = a;
	return k < 0 ? MR_EINVAL : MR_OK;
}

static int
acct_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct account    *a = state;
	const mr_delivery *d = msg->data;
	char               buf[32];
	long long          v;
	int                rc = MR_OK;

	(void)self;
	if (msg->type != MR_MSG_DELIVERY)
		return MR_OK;
	snprintf(buf, sizeof(buf), "%.*s",
		 (int)(d->payload_len < 31 ? d->payload_len : 31),
		 (const char *)d->payload);
	pthread_mutex_lock(&a->w->lock);
	if (strcmp(buf, "boom") == 0) {
		a->balance += BOOM_SUM; // then crashes: never saved
		a->w->booms++;
		rc = MR_EIO;
	} else if (sscanf(buf, "+%lld", &v) == 1) {
		a->balance += v;
		a->w->applied++;
		a->w->balance[a->k] = a->balance;
	} else {
		a->w->bad++;
	}
	pthread_mutex_unlock(&a->w->lock);
	return rc;
}

static void
acct_terminate(mr_actor *self, void *state, int reason)
{
	(void)self;
	(void)reason;
	free(state);
}

static int
acct_save(void *state, void **out, size_t *out_len, void *arg)
{
	struct account *a = state;
	char           *b = malloc(32);

	(void)arg;
	if (b == NULL)
		return MR_ENOMEM;
	*out_len = (size_t)snprintf(b, 32, "%lld", a->balance);
	*out     = b;
	return MR_OK;
}

static const mr_behaviour acct_behaviour = {
	.name        = "bank-account",
	.init        = acct_init,
	.handle_cast = acct_cast,
	.terminate   = acct_terminate,
};

struct runner {
	mr_mirror   *m;
	volatile int stop;
	int          rc;
	int          done; /* the run returned */
	pthread_t    th;
};

static void *
runner_main(void *arg)
{
	struct runner *r = arg;

	r->rc = mr_mirror_run(r->m, &r->stop);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
runner_start(struct runner *r, mr_system *sys, mr_client *c,
	     const char *topic, const char *group, const char *state_topic,
	     struct world *w, const mr_subscribe_opts *sub)
{
	mr_mirror_opts o = {.idle_ms     = 200,
			    .arg         = w,
			    .sub         = sub,
			    .state_topic = state_topic,
			    .save        = acct_save};

	*r = (struct runner){0};
	ck_assert_int_eq(
	    mr_mirror_new(&r->m, sys, c, topic, group, &acct_behaviour, &o),
	    MR_OK);
	ck_assert_int_eq(pthread_create(&r->th, NULL, runner_main, r), 0);
}

static void
runner_stop(struct runner *r, mr_mirror_stats *st)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(r->th, NULL);
	ck_assert_msg(r->rc == MR_OK, "mr_mirror_run: %s: %s",
		      mr_err_name(r->rc), mr_mirror_error(r->m));
	mr_mirror_stats_get(r->m, st);
	mr_mirror_free(r->m);
}

/* Deposits \p from_seq .. \p to_seq - 1 of every account; the boom
 * message after the first of them when \p boom. */
static void
deposit(mr_client *c, const char *topic, int from_seq, int to_seq,
	bool boom)
{
	for (int seq = from_seq; seq < to_seq; seq++) {
		mr_message m[KEYS + 1];
		mr_ack     acks[KEYS + 1];
		char       keys[KEYS][8], pays[KEYS][24];
		size_t     n = 0;
		int        rc;

		for (int k = 0; k < KEYS; k++, n++) {
			snprintf(keys[k], sizeof(keys[k]), "b%d", k);
			snprintf(pays[k], sizeof(pays[k]), "+%lld",
				 amount(k, seq));
			m[n] = (mr_message){.topic       = topic,
					    .key         = keys[k],
					    .key_len     = strlen(keys[k]),
					    .payload     = pays[k],
					    .payload_len = strlen(pays[k])};
		}
		if (boom && seq == from_seq)
			m[n++] = (mr_message){.topic       = topic,
					      .key         = keys[BOOM_KEY],
					      .key_len = strlen(keys[BOOM_KEY]),
					      .payload     = "boom",
					      .payload_len = 4};
		rc = mr_publish_batch(c, m, n, acks);
		ck_assert_msg(rc == MR_OK, "publish: %s: %s", mr_err_name(rc),
			      acks[0].error);
	}
}

static void
wait_applied(struct world *w, struct runner *r, unsigned want,
	     const char *what)
{
	int64_t  end = mrt_now_ms() + WAIT_MS;
	unsigned got;

	do {
		mrt_sleep_ms(50);
		pthread_mutex_lock(&w->lock);
		got = w->applied;
		pthread_mutex_unlock(&w->lock);
		ck_assert_msg(!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE),
			      "%s: the run ended: %s: %s", what,
			      mr_err_name(r->rc), mr_mirror_error(r->m));
	} while (got < want && mrt_now_ms() < end);
	ck_assert_msg(got >= want, "%s: %u deposits applied within %d ms, "
		      "not %u", what, got, WAIT_MS, want);
}

/* The latest snapshot of each account in \p state_topic (read with
 * topics.read, as the mirror does): *bal, at *count records in all. */
static void
read_snapshots(mr_client *c, const char *state_topic, long long *bal,
	       size_t *count)
{
	*count = 0;
	for (int k = 0; k < KEYS; k++)
		bal[k] = -1;
	for (int p = 0; p < 4; p++) {
		char    req[512], *text = NULL;
		json_t *rep, *r;
		size_t  i;

		snprintf(req, sizeof(req),
			 "{\"op\":\"topics.read\",\"topic\":\"%s\","
			 "\"partition\":%d,\"max_records\":100000}",
			 state_topic, p);
		ck_assert_int_eq(mr_admin(c, req, &text), MR_OK);
		rep = json_loads(text, 0, NULL);
		free(text);
		ck_assert_msg(json_is_true(json_object_get(rep, "ok")),
			      "topics.read %s/%d refused", state_topic, p);
		ck_assert(json_is_true(json_object_get(rep, "end")));
		json_array_foreach(json_object_get(rep, "records"), i, r)
		{
			const char    *key = json_string_value(
			       json_object_get(r, "key"));
			unsigned char *v;
			size_t         vn;
			char           buf[32];
			int            k = key_index(key, strlen(key));

			v = mri_base64_decode(json_string_value(json_object_get(
						  r, "payload")),
					      &vn);
			ck_assert_ptr_nonnull(v);
			ck_assert_int_ge(k, 0);
			ck_assert_uint_gt(vn, 16);
			ck_assert_int_eq(memcmp(v, "MRS1", 4), 0);
			snprintf(buf, sizeof(buf), "%.*s",
				 (int)(vn - 16 < 31 ? vn - 16 : 31),
				 (const char *)v + 16);
			bal[k] = atoll(buf); // the later record wins
			free(v);
			(*count)++;
		}
		json_decref(rep);
	}
}

/* Real Kafka: the mirror made \p topic compacted. */
static void
check_compacted(mr_client *c, const char *topic)
{
	char        req[256], *text = NULL;
	json_t     *rep;
	const char *v;

	snprintf(req, sizeof(req),
		 "{\"op\":\"topics.describe\",\"topic\":\"%s\"}", topic);
	ck_assert_int_eq(mr_admin(c, req, &text), MR_OK);
	rep = json_loads(text, 0, NULL);
	v   = json_string_value(json_object_get(json_object_get(rep, "config"),
						"cleanup.policy"));
	ck_assert_msg(v != NULL && strcmp(v, "compact") == 0,
		      "%s: cleanup.policy %s, not compact (%s)", topic,
		      v ? v : "unset", text);
	free(text);
	json_decref(rep);
}

START_TEST(test_durable_accounts)
{
	struct mrt_daemon d;
	mr_client        *pc, *cc;
	mr_system        *sys;
	struct world     *w = calloc(1, sizeof(*w));
	struct runner     r;
	mr_mirror_stats   st;
	char              topic[128], dlq[160], group[128], state[160];
	long long         bal[KEYS];
	size_t            count;
	struct mrt_records rs;
	char              err[256];
	mr_subscribe_opts sub = {.set = MR_SUB_MAX_ATTEMPTS |
				       MR_SUB_BACKOFF_INITIAL |
				       MR_SUB_BACKOFF_MAX,
				 .max_attempts       = ATTEMPTS,
				 .backoff_initial_ms = 50,
				 .backoff_max_ms     = 100};

	ck_assert_ptr_nonnull(w);
	pthread_mutex_init(&w->lock, NULL);
	mrt_ck_daemon_start(&d, NULL);
	pc = mrt_ck_client(&d, 30000, 0);
	cc = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "bank");
	mrt_uniq(group, sizeof(group), "g-bank");
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	snprintf(state, sizeof(state), "%s.state", topic);
	mrt_ck_topic_create(pc, topic, 4);
	mrt_ck_topic_create(pc, dlq, 1);
	ck_assert_int_eq(mr_system_new(&sys, 4, 0), MR_OK);

	// Saved, and let it crash loses nothing.
	runner_start(&r, sys, cc, topic, group, state, w, &sub);
	deposit(pc, topic, 0, PER_KEY, true);
	wait_applied(w, &r, KEYS * PER_KEY, "first run");
	ck_assert_msg(mrt_kafka_read(d.bootstrap, dlq, 1, WAIT_MS, &rs, err,
				     sizeof(err)) == 0,
		      "reading %s: %s", dlq, err);
	ck_assert_msg(rs.n == 1, "%s: %zu records, not the boom alone", dlq,
		      rs.n);
	mrt_records_free(&rs);
	runner_stop(&r, &st);
	ck_assert_uint_eq(st.snapshots, KEYS * PER_KEY);
	ck_assert_uint_eq(st.restores, 4);
	ck_assert_uint_eq(st.skipped, 0);
	ck_assert_uint_eq(st.crashes, ATTEMPTS);
	read_snapshots(pc, state, bal, &count);
	ck_assert_uint_eq(count, KEYS * PER_KEY); // not compacted yet here
	if (mrt_real)
		check_compacted(pc, state);
	pthread_mutex_lock(&w->lock);
	ck_assert_uint_eq(w->booms, ATTEMPTS);
	ck_assert_uint_eq(w->bad, 0);
	for (int k = 0; k < KEYS; k++) {
		ck_assert_msg(bal[k] == expected(k, PER_KEY),
			      "account %d: %lld saved, want %lld", k, bal[k],
			      expected(k, PER_KEY));
		ck_assert_int_eq(w->balance[k], expected(k, PER_KEY));
	}
	// The boom key's actor was started again after each crash from its
	// last snapshot.
	ck_assert_uint_ge(w->from_snapshot, ATTEMPTS);
	w->inits = w->from_snapshot = w->applied = 0;
	pthread_mutex_unlock(&w->lock);

	// Restored and skipped: another group reads it all again.
	mrt_uniq(group, sizeof(group), "g-bank-2");
	runner_start(&r, sys, cc, topic, group, state, w, &sub);
	// Continued: new deposits, after what the other group read.
	deposit(pc, topic, PER_KEY, PER_KEY + 1, false);
	wait_applied(w, &r, KEYS, "second run");
	runner_stop(&r, &st);
	ck_assert_msg(st.skipped == KEYS * PER_KEY + 1, "%llu skipped, want "
		      "every deposit and the boom (%d)",
		      (unsigned long long)st.skipped, KEYS * PER_KEY + 1);
	ck_assert_uint_eq(st.crashes, 0);
	ck_assert_uint_eq(st.snapshots, KEYS);
	read_snapshots(pc, state, bal, &count);
	pthread_mutex_lock(&w->lock);
	ck_assert_uint_eq(w->applied, KEYS);
	ck_assert_uint_eq(w->booms, ATTEMPTS);
	ck_assert_uint_eq(w->inits, KEYS);
	ck_assert_uint_eq(w->from_snapshot, KEYS);
	ck_assert_uint_eq(w->bad, 0);
	for (int k = 0; k < KEYS; k++) {
		ck_assert_msg(bal[k] == expected(k, PER_KEY + 1),
			      "account %d: %lld saved, want %lld", k, bal[k],
			      expected(k, PER_KEY + 1));
		ck_assert_int_eq(w->balance[k], expected(k, PER_KEY + 1));
	}
	pthread_mutex_unlock(&w->lock);

	mr_system_free(sys);
	mr_client_free(cc);
	mr_client_free(pc);
	mrt_ck_daemon_finish(&d);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
END_TEST

/* What mr_mirror_new refuses, and a state topic whose partitions are not
 * the topic's. */
START_TEST(test_refused)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_system        *sys;
	mr_mirror        *m;
	char              topic[128], state[160];
	mr_mirror_opts    o = {.state_topic = "x.state"};
	volatile int      stop = 0;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	ck_assert_int_eq(mr_system_new(&sys, 1, 0), MR_OK);
	ck_assert_int_eq(mr_mirror_new(&m, sys, c, "x", "g", &acct_behaviour,
				       &o),
			 MR_EINVAL); // no save
	mrt_uniq(topic, sizeof(topic), "bank-odd");
	snprintf(state, sizeof(state), "%s.state", topic);
	mrt_ck_topic_create(c, topic, 4);
	mrt_ck_topic_create(c, state, 2);
	o.state_topic = state;
	o.save        = acct_save;
	ck_assert_int_eq(mr_mirror_new(&m, sys, c, topic, "g", &acct_behaviour,
				       &o),
			 MR_OK);
	ck_assert_int_eq(mr_mirror_run(m, &stop), MR_ECONFIG);
	ck_assert_msg(strstr(mr_mirror_error(m), "partitions") != NULL, "%s",
		      mr_mirror_error(m));
	mr_mirror_free(m);
	mr_system_free(sys);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

static Suite *
durable_suite(void)
{
	Suite *s  = suite_create(mrt_real ? "mirror_durable_kafka"
					  : "mirror_durable_embedded");
	TCase *tc = tcase_create("durable");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_durable_accounts);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("mirror_durable_test", durable_suite);
}
