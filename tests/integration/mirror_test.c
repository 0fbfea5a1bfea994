/*
 * Mirrored actors (include/mailroom/mirror.h, issue #11 item 5) on a real
 * mailroomd: an account type on a topic of 1,000 keys, served by 8
 * workers.
 *
 *  - order: each account's deliveries reach its actor in the order they
 *    were published (a sequence number per key, checked in handle_cast);
 *  - activation: one init per key while it is active, with its key;
 *  - passivation: an account idle for idle_ms exits with
 *    MR_EXIT_PASSIVATE (terminate runs), and a later message activates it
 *    again from init, never while the old one is still there (idle_ms is
 *    short, so this also happens between an account's messages), and no
 *    message is nacked for it (none comes a second time);
 *  - a poison message, whose handler always crashes its actor, is
 *    delivered max_attempts times (each a crash and a new activation),
 *    then quarantined in the dead-letter topic, and its key's next
 *    message is served;
 *  - each crash is a restart of the type, counted by the system
 *    (mr_system_restarts) and reported to mailroomd (actors.list).
 *
 * Built twice: mirror_embedded on mailroomd's embedded cluster,
 * mirror_kafka (MR_KAFKA=1) on the real broker of the CTest fixture.
 * No assertion on a duration: every wait is bounded and ends early.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "integration/checked.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define KEYS 1000
#define PER_KEY 5
#define WAIT_MS 120000
#define IDLE_MS 100 /* short: accounts passivate between their messages too */
#define ATTEMPTS 3
#define POISON_KEY 7

struct acct {
	int      next;      /* the sequence number expected next */
	unsigned inits;     /* activations */
	unsigned exits;     /* terminates */
	unsigned passivated;
	unsigned out_of_order;
};

struct world {
	pthread_mutex_t lock;
	struct acct     a[KEYS];
	unsigned        poison_calls;
	unsigned        retried;   /* a good message delivered again */
	unsigned        wrong_key; /* init or delivery for a key not ours */
	unsigned        live;      /* actors alive now, by init/terminate */
	unsigned        max_live_per_key;
	unsigned        live_of[KEYS];
};

struct actor_state {
	struct world *w;
	int           k;
};

static int
key_index(const void *key, size_t len)
{
	char buf[16];
	char *end;
	long  k;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, key, len);
	buf[len] = '\0';
	if (buf[0] != 'a')
		return -1;
	k = strtol(buf + 1, &end, 10);
	return *end == '\0' && k >= 0 && k < KEYS ? (int)k : -1;
}

static int
acct_init(mr_actor *self, void *arg, void **state)
{
	const mr_mirror_key *mk = arg;
	struct world        *w  = mk->arg;
	struct actor_state  *s;
	int                  k  = key_index(mk->key, mk->key_len);

	(void)self;
	pthread_mutex_lock(&w->lock);
	if (k < 0) {
		w->wrong_key++;
		pthread_mutex_unlock(&w->lock);
		return MR_EINVAL;
	}
	w->a[k].inits++;
	w->live++;
	if (++w->live_of[k] > w->max_live_per_key)
		w->max_live_per_key = w->live_of[k];
	pthread_mutex_unlock(&w->lock);
	if ((s = malloc(sizeof(*s))) == NULL)
		return MR_ENOMEM;
	*s     = (struct actor_state){w, k};
	*state = s;
	return MR_OK;
}

static int
acct_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct actor_state *s = state;
	const mr_delivery  *d = msg->data;
	char                buf[32];
	int                 seq, rc = MR_OK;

	(void)self;
	if (msg->type != MR_MSG_DELIVERY)
		return MR_OK;
	snprintf(buf, sizeof(buf), "%.*s",
		 (int)(d->payload_len < 31 ? d->payload_len : 31),
		 (const char *)d->payload);
	pthread_mutex_lock(&s->w->lock);
	if (key_index(d->key, d->key_len) != s->k) {
		s->w->wrong_key++;
	} else if (strcmp(buf, "poison") == 0) {
		s->w->poison_calls++;
		rc = MR_EIO; // crashes the actor, every time
	} else if (sscanf(buf, "seq:%d", &seq) == 1) {
		if (d->attempt > 1) {
			s->w->retried++;
			fprintf(stderr, "mirror: account %d, %s came again "
				"(attempt %u)\n", s->k, buf, d->attempt);
		}
		if (seq != s->w->a[s->k].next)
			s->w->a[s->k].out_of_order++;
		s->w->a[s->k].next = seq + 1;
	}
	pthread_mutex_unlock(&s->w->lock);
	return rc;
}

static void
acct_terminate(mr_actor *self, void *state, int reason)
{
	struct actor_state *s = state;

	(void)self;
	pthread_mutex_lock(&s->w->lock);
	s->w->a[s->k].exits++;
	if (reason == MR_EXIT_PASSIVATE)
		s->w->a[s->k].passivated++;
	s->w->live--;
	s->w->live_of[s->k]--;
	pthread_mutex_unlock(&s->w->lock);
	free(s);
}

static const mr_behaviour acct_behaviour = {
	.name        = "account",
	.init        = acct_init,
	.handle_cast = acct_cast,
	.terminate   = acct_terminate,
};

struct runner {
	mr_mirror   *m;
	volatile int stop;
	int          rc;
	pthread_t    th;
};

static void *
runner_main(void *arg)
{
	struct runner *r = arg;

	r->rc = mr_mirror_run(r->m, &r->stop);
	return NULL;
}

static void
publish_round(mr_client *c, const char *topic, int from_seq, int to_seq)
{
	enum { BATCH = 500 };
	mr_message m[BATCH];
	mr_ack     acks[BATCH];
	char       keys[BATCH][16], pays[BATCH][16];
	size_t     n = 0;
	int        rc;

	for (int seq = from_seq; seq < to_seq; seq++)
		for (int k = 0; k < KEYS; k++) {
			snprintf(keys[n], sizeof(keys[n]), "a%d", k);
			snprintf(pays[n], sizeof(pays[n]), "seq:%d", seq);
			m[n] = (mr_message){.topic       = topic,
					    .key         = keys[n],
					    .key_len     = strlen(keys[n]),
					    .payload     = pays[n],
					    .payload_len = strlen(pays[n])};
			if (++n == BATCH) {
				rc = mr_publish_batch(c, m, n, acks);
				ck_assert_msg(rc == MR_OK, "publish: %s: %s",
					      mr_err_name(rc), acks[0].error);
				n = 0;
			}
		}
	if (n > 0) {
		rc = mr_publish_batch(c, m, n, acks);
		ck_assert_msg(rc == MR_OK, "publish: %s: %s", mr_err_name(rc),
			      acks[0].error);
	}
}

static void
publish_one(mr_client *c, const char *topic, const char *key,
	    const char *payload)
{
	mr_message m = {.topic       = topic,
			.key         = key,
			.key_len     = strlen(key),
			.payload     = payload,
			.payload_len = strlen(payload)};
	mr_ack     ack;
	int        rc = mr_publish_batch(c, &m, 1, &ack);

	ck_assert_msg(rc == MR_OK, "publish: %s: %s", mr_err_name(rc),
		      ack.error);
}

/* @returns whether every key reached sequence number \p next. */
static bool
all_reached(struct world *w, int next)
{
	bool ok = true;

	pthread_mutex_lock(&w->lock);
	for (int k = 0; k < KEYS && ok; k++)
		ok = w->a[k].next >= next;
	pthread_mutex_unlock(&w->lock);
	return ok;
}

static void
wait_for(struct world *w, struct runner *r, int next, const char *what)
{
	int64_t end = mrt_now_ms() + WAIT_MS;

	while (!all_reached(w, next) && mrt_now_ms() < end)
		mrt_sleep_ms(100);
	ck_assert_msg(all_reached(w, next), "%s: not every account got its "
		      "messages up to %d within %d ms (run: %s)", what,
		      next - 1, WAIT_MS, mr_mirror_error(r->m));
}

static void
wait_passive(struct world *w, const char *what)
{
	int64_t  end = mrt_now_ms() + WAIT_MS;
	unsigned live;

	do {
		mrt_sleep_ms(100);
		pthread_mutex_lock(&w->lock);
		live = w->live;
		pthread_mutex_unlock(&w->lock);
	} while (live > 0 && mrt_now_ms() < end);
	ck_assert_msg(live == 0, "%s: %u actors still active %d ms after "
		      "the last message (idle_ms %d)", what, live, WAIT_MS,
		      IDLE_MS);
}

/* @returns the restarts of supervisor \p name in actors.list's answer
 * \p json, or -1 when it is not there. */
static long long
mirror_reported(const char *json, const char *name)
{
	json_t   *root = json_loads(json, 0, NULL);
	json_t   *s;
	size_t    i;
	long long n = -1;

	json_array_foreach(json_object_get(root, "supervisors"), i, s)
		if (strcmp(json_string_value(json_object_get(s, "name")),
			   name) == 0)
			n = json_integer_value(json_object_get(s, "restarts"));
	json_decref(root);
	return n;
}

START_TEST(test_mirrored_accounts)
{
	struct mrt_daemon d;
	mr_client        *pc, *cc;
	mr_system        *sys;
	struct world     *w = calloc(1, sizeof(*w));
	struct runner     r = {0};
	char              topic[128], dlq[160], group[128];
	mr_subscribe_opts sub = {.set = MR_SUB_MAX_ATTEMPTS |
				       MR_SUB_BACKOFF_INITIAL |
				       MR_SUB_BACKOFF_MAX,
				 .max_attempts       = ATTEMPTS,
				 .backoff_initial_ms = 50,
				 .backoff_max_ms     = 100};
	mr_mirror_opts    o   = {.idle_ms = IDLE_MS,
				 .arg = NULL, .sub = &sub};
	mr_mirror_stats   st;
	struct mrt_records rs;
	char              pk[16], err[256], want[160], *list = NULL;
	mr_restart_count  rcs[4];
	int               rc;

	ck_assert_ptr_nonnull(w);
	pthread_mutex_init(&w->lock, NULL);
	o.arg = w;
	mrt_ck_daemon_start(&d, NULL);
	pc = mrt_ck_client(&d, 30000, 0);
	cc = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "accounts");
	mrt_uniq(group, sizeof(group), "g-accounts");
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	mrt_ck_topic_create(pc, topic, 4);
	mrt_ck_topic_create(pc, dlq, 1);
	ck_assert_int_eq(mr_system_new(&sys, 8, 0), MR_OK); // 8 workers
	rc = mr_mirror_new(&r.m, sys, cc, topic, group, &acct_behaviour, &o);
	ck_assert_int_eq(rc, MR_OK);
	ck_assert_int_eq(pthread_create(&r.th, NULL, runner_main, &r), 0);

	// Round 1: every account activated once, its messages in order.
	publish_round(pc, topic, 0, PER_KEY);
	wait_for(w, &r, PER_KEY, "round 1");
	// Then idle: every account passivated.
	wait_passive(w, "after round 1");
	mr_mirror_stats_get(r.m, &st);
	ck_assert_uint_eq(st.active, 0);
	ck_assert_uint_ge(st.activations, KEYS);
	ck_assert_uint_ge(st.passivations, KEYS);
	pthread_mutex_lock(&w->lock);
	for (int k = 0; k < KEYS; k++) {
		ck_assert_msg(w->a[k].out_of_order == 0, "account %d: %u out of "
			      "order", k, w->a[k].out_of_order);
		ck_assert_uint_ge(w->a[k].inits, 1);
		ck_assert_uint_eq(w->a[k].inits, w->a[k].exits);
		ck_assert_uint_eq(w->a[k].passivated, w->a[k].exits);
	}
	ck_assert_uint_le(w->max_live_per_key, 1);
	pthread_mutex_unlock(&w->lock);

	// Round 2: activated again, from init, and in order still; the
	// poison message crashes its actor ATTEMPTS times and is
	// quarantined, and its key's next message is served.
	snprintf(pk, sizeof(pk), "a%d", POISON_KEY);
	publish_one(pc, topic, pk, "poison");
	publish_round(pc, topic, PER_KEY, 2 * PER_KEY);
	wait_for(w, &r, 2 * PER_KEY, "round 2");
	ck_assert_msg(mrt_kafka_read(d.bootstrap, dlq, 1, WAIT_MS, &rs, err,
				     sizeof(err)) == 0,
		      "reading %s: %s", dlq, err);
	ck_assert_msg(rs.n == 1, "%s: %zu records, not the poison message "
		      "alone", dlq, rs.n);
	ck_assert(mrt_record_header_is(&rs.v[0], "mr_dlq_topic", topic));
	mrt_records_free(&rs);
	wait_passive(w, "after round 2");

	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	pthread_join(r.th, NULL);
	ck_assert_msg(r.rc == MR_OK, "mr_mirror_run: %s: %s",
		      mr_err_name(r.rc), mr_mirror_error(r.m));
	mr_mirror_stats_get(r.m, &st);
	pthread_mutex_lock(&w->lock);
	ck_assert_uint_eq(w->wrong_key, 0);
	ck_assert_uint_eq(w->retried, 0);
	ck_assert_uint_eq(w->poison_calls, ATTEMPTS);
	ck_assert_uint_eq(st.crashes, ATTEMPTS);
	for (int k = 0; k < KEYS; k++) {
		ck_assert_msg(w->a[k].out_of_order == 0, "account %d: %u out of "
			      "order", k, w->a[k].out_of_order);
		ck_assert_uint_ge(w->a[k].inits, 2);
		ck_assert_uint_eq(w->a[k].inits, w->a[k].exits);
	}
	// The poison key: activated for round 1, once per crash, and again
	// for what followed the last one.
	ck_assert_uint_ge(w->a[POISON_KEY].inits, 1 + ATTEMPTS);
	ck_assert_uint_le(w->max_live_per_key, 1);
	pthread_mutex_unlock(&w->lock);
	// Each crash was a restart of the type, counted by the system and,
	// reported when the run ended, by mailroomd.
	ck_assert_uint_eq(mr_system_restarts(sys, rcs, 4), 1);
	snprintf(want, sizeof(want), "mirror:%s", topic);
	ck_assert_str_eq(rcs[0].supervisor, want);
	ck_assert_uint_eq(rcs[0].restarts, ATTEMPTS);
	ck_assert_int_eq(mr_admin(pc, "{\"op\":\"actors.list\"}", &list),
			 MR_OK);
	ck_assert_msg(mirror_reported(list, want) == ATTEMPTS,
		      "mailroomd's actors.list: %s", list);
	free(list);
	fprintf(stderr, "mirror: %llu activations, %llu passivations, %llu "
		"crashes, %llu deliveries\n",
		(unsigned long long)st.activations,
		(unsigned long long)st.passivations,
		(unsigned long long)st.crashes,
		(unsigned long long)st.deliveries);
	mr_mirror_free(r.m);
	mr_system_free(sys);
	mr_client_free(cc);
	mr_client_free(pc);
	mrt_ck_daemon_finish(&d);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
END_TEST

/* ASSIGNMENT: a lone member of its group holds every partition of its
 * topic, each once, as mr_consumer_assignment says. */
START_TEST(test_assignment)
{
	struct mrt_daemon d;
	mr_client        *c;
	mr_consumer      *s;
	mr_batch         *b = NULL;
	mr_partition     *v = NULL;
	char              topic[128], group[128];
	const char       *topics[1] = {topic};
	bool              seen[4]   = {false};
	size_t            n         = 0;
	int64_t           end;
	int               rc;

	mrt_ck_daemon_start(&d, NULL);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "assign");
	mrt_uniq(group, sizeof(group), "g-assign");
	mrt_ck_topic_create(c, topic, 4);
	ck_assert_int_eq(mr_subscribe(c, group, topics, 1, NULL, &s), MR_OK);
	// Until the group is joined (a fetch waits for it), none.
	end = mrt_now_ms() + WAIT_MS;
	while (n < 4 && mrt_now_ms() < end) {
		ck_assert_int_eq(mr_fetch(s, 1, 0, 500, &b), MR_OK);
		mr_batch_free(b);
		free(v);
		rc = mr_consumer_assignment(s, &v, &n);
		ck_assert_msg(rc == MR_OK, "mr_consumer_assignment: %s: %s",
			      mr_err_name(rc), mr_client_last_error());
	}
	ck_assert_uint_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(v[i].topic, topic);
		ck_assert(v[i].partition >= 0 && v[i].partition < 4);
		ck_assert(!seen[v[i].partition]);
		seen[v[i].partition] = true;
	}
	free(v);
	mr_consumer_free(s);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* Hand-off: a second type of the same group (a subscription of its own:
 * another credit) takes half the partitions; the first one's actors of
 * those partitions exit with MR_EXIT_HANDOFF, and the second serves their
 * keys from then on. */
START_TEST(test_handoff)
{
	struct mrt_daemon d;
	mr_client        *c1, *c2, *pc;
	mr_system        *sys;
	struct world     *w = calloc(1, sizeof(*w));
	struct runner     r1 = {0}, r2 = {0};
	char              topic[128], group[128];
	mr_subscribe_opts s1 = {.credit = 100}, s2 = {.credit = 101};
	mr_mirror_opts    o1 = {.idle_ms = 600000, .sub = &s1};
	mr_mirror_opts    o2 = {.idle_ms = 600000, .sub = &s2};
	mr_mirror_stats   st1, st2;
	unsigned          handed = 0;
	int64_t           end;

	ck_assert_ptr_nonnull(w);
	pthread_mutex_init(&w->lock, NULL);
	o1.arg = o2.arg = w;
	mrt_ck_daemon_start(&d, NULL);
	pc = mrt_ck_client(&d, 30000, 0);
	c1 = mrt_ck_client(&d, 30000, 0);
	c2 = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "handoff");
	mrt_uniq(group, sizeof(group), "g-handoff");
	mrt_ck_topic_create(pc, topic, 4);
	ck_assert_int_eq(mr_system_new(&sys, 4, 0), MR_OK);
	ck_assert_int_eq(mr_mirror_new(&r1.m, sys, c1, topic, group,
				       &acct_behaviour, &o1),
			 MR_OK);
	ck_assert_int_eq(pthread_create(&r1.th, NULL, runner_main, &r1), 0);
	publish_round(pc, topic, 0, 1);
	wait_for(w, &r1, 1, "before the second type");
	ck_assert_int_eq(mr_mirror_new(&r2.m, sys, c2, topic, group,
				       &acct_behaviour, &o2),
			 MR_OK);
	ck_assert_int_eq(pthread_create(&r2.th, NULL, runner_main, &r2), 0);
	end = mrt_now_ms() + WAIT_MS;
	do {
		mrt_sleep_ms(200);
		mr_mirror_stats_get(r1.m, &st1);
	} while (st1.handoffs == 0 && mrt_now_ms() < end);
	ck_assert_msg(st1.handoffs > 0, "no actor handed off within %d ms",
		      WAIT_MS);
	publish_round(pc, topic, 1, 2);
	end = mrt_now_ms() + WAIT_MS;
	do {
		mrt_sleep_ms(200);
		mr_mirror_stats_get(r2.m, &st2);
	} while ((!all_reached(w, 2) || st2.deliveries == 0) &&
		 mrt_now_ms() < end);
	ck_assert_msg(all_reached(w, 2), "not every account got its second "
		      "message after the hand-off");
	ck_assert_uint_gt(st2.deliveries, 0);
	mr_mirror_stats_get(r1.m, &st1);
	pthread_mutex_lock(&w->lock);
	for (int k = 0; k < KEYS; k++)
		handed += w->a[k].exits - w->a[k].passivated;
	pthread_mutex_unlock(&w->lock);
	ck_assert_uint_ge(handed, st1.handoffs);
	fprintf(stderr, "handoff: %llu actors handed off; the second type "
		"handled %llu deliveries\n",
		(unsigned long long)st1.handoffs,
		(unsigned long long)st2.deliveries);
	__atomic_store_n(&r1.stop, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&r2.stop, 1, __ATOMIC_RELAXED);
	pthread_join(r1.th, NULL);
	pthread_join(r2.th, NULL);
	mr_mirror_free(r1.m);
	mr_mirror_free(r2.m);
	mr_system_free(sys);
	mr_client_free(c2);
	mr_client_free(c1);
	mr_client_free(pc);
	mrt_ck_daemon_finish(&d);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
END_TEST

static Suite *
mirror_suite(void)
{
	Suite *s  = suite_create(mrt_real ? "mirror_kafka" : "mirror_embedded");
	TCase *tc = tcase_create("mirror");

	tcase_set_timeout(tc, 400);
	tcase_add_test(tc, test_mirrored_accounts);
	tcase_add_test(tc, test_assignment);
	tcase_add_test(tc, test_handoff);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("mirror_test", mirror_suite);
}
