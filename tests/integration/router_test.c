/*
 * Addresses (include/mailroom/router.h, issue #11 item 4) on a real
 * mailroomd: one send and one call for a local actor (a name) and a
 * mirrored one (topic/key), the same counter behaviour behind both.
 *
 *  - sends then a call to one address: the call sees every send before it
 *    (one publisher, one key: in order);
 *  - callers at once on several addresses each get their own replies;
 *  - a deferred reply (a timer answers), an error reply (mr_reply_error),
 *    a crash before the reply (MR_ECLOSED), a type with no handle_call
 *    (MR_ENOTSUP);
 *  - a call to a key whose topic no actor serves times out (MR_ETIMEDOUT);
 *  - what is refused: an empty address, an empty topic or key, a name
 *    nobody registered.
 *
 * Built twice: router_embedded and router_kafka (MR_KAFKA=1). No assertion
 * on a duration but the timeout's own bound (it must not answer before).
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/checked.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define WAIT_MS 60000

enum { C_ADD = 1, C_GET = 2, C_GET_LATER = 3, C_FAIL = 4, C_CRASH = 5,
       C_LATER = 6 /* the timer of C_GET_LATER */ };

struct counter {
	int64_t n;
	mr_from later; /* a deferred reply's */
};

static int
ctr_init(mr_actor *self, void *arg, void **state)
{
	(void)self;
	(void)arg;
	*state = calloc(1, sizeof(struct counter));
	return *state != NULL ? MR_OK : MR_ENOMEM;
}

static int
ctr_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct counter *c = state;
	int64_t         v;

	(void)self;
	if (msg->type == C_ADD && msg->len == sizeof(v)) {
		memcpy(&v, msg->data, sizeof(v));
		c->n += v;
	}
	return MR_OK;
}

static int
ctr_call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	struct counter *c   = state;
	mr_system      *sys = mr_actor_system(self);

	switch (msg->type) {
	case C_GET:
		return mr_reply(sys, from, &c->n, sizeof(c->n));
	case C_GET_LATER:
		c->later = from;
		return mr_send_after(sys, mr_self(self), 50, C_LATER, NULL, 0)
			       ? MR_OK
			       : MR_ENOMEM;
	case C_FAIL:
		return mr_reply_error(sys, from, MR_EINVAL);
	case C_CRASH:
		return MR_EIO;
	default:
		return mr_reply_error(sys, from, MR_ENOTSUP);
	}
}

static int
ctr_info(mr_actor *self, void *state, const mr_info *info)
{
	struct counter *c = state;

	if (info->kind == MR_INFO_TIMER && c->later != 0) {
		mr_reply(mr_actor_system(self), c->later, &c->n, sizeof(c->n));
		c->later = 0;
	}
	return MR_OK;
}

static void
ctr_terminate(mr_actor *self, void *state, int reason)
{
	(void)self;
	(void)reason;
	free(state);
}

static const mr_behaviour ctr_behaviour = {
	.name        = "counter",
	.init        = ctr_init,
	.handle_cast = ctr_cast,
	.handle_call = ctr_call,
	.handle_info = ctr_info,
	.terminate   = ctr_terminate,
};

/* No handle_call: a call to it is answered MR_ENOTSUP. */
static const mr_behaviour cast_only = {
	.name        = "cast-only",
	.init        = ctr_init,
	.handle_cast = ctr_cast,
	.terminate   = ctr_terminate,
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
runner_start(struct runner *r, mr_system *sys, mr_client *c,
	     const char *topic, const char *group, const mr_behaviour *b)
{
	mr_subscribe_opts sub = {.set = MR_SUB_MAX_ATTEMPTS |
				       MR_SUB_BACKOFF_INITIAL,
				 .max_attempts       = 2,
				 .backoff_initial_ms = 10};
	mr_mirror_opts    o   = {.sub = &sub};

	*r = (struct runner){0};
	ck_assert_int_eq(mr_mirror_new(&r->m, sys, c, topic, group, b, &o),
			 MR_OK);
	ck_assert_int_eq(pthread_create(&r->th, NULL, runner_main, r), 0);
}

static void
runner_stop(struct runner *r)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(r->th, NULL);
	ck_assert_msg(r->rc == MR_OK, "mr_mirror_run: %s: %s",
		      mr_err_name(r->rc), mr_mirror_error(r->m));
	mr_mirror_free(r->m);
}

/* GET \p addr: its count. */
static int64_t
get(mr_router *rt, const char *addr, uint32_t type)
{
	void   *rep = NULL;
	size_t  len = 0;
	int64_t v   = -1;
	int     rc  = mr_call_to(rt, addr, type, NULL, 0, WAIT_MS, &rep, &len);

	ck_assert_msg(rc == MR_OK, "call %s: %s (%s)", addr, mr_err_name(rc),
		      mr_client_last_error());
	ck_assert_uint_eq(len, sizeof(v));
	memcpy(&v, rep, sizeof(v));
	free(rep);
	return v;
}

/* Three sends of 5, 6 and 7, a GET and a deferred GET to \p addr. */
static void
sends_then_calls(mr_router *rt, const char *addr)
{
	for (int64_t v = 5; v <= 7; v++)
		ck_assert_int_eq(mr_send_to(rt, addr, C_ADD, &v, sizeof(v)),
				 MR_OK);
	ck_assert_int_eq(get(rt, addr, C_GET), 18);
	ck_assert_int_eq(get(rt, addr, C_GET_LATER), 18);
}

/* Callers at once, each on its own key: each gets its own replies (the
 * correlation ids tell them apart). */
struct caller {
	mr_router *rt;
	char       addr[160];
	int64_t    want;
	int        bad;
	pthread_t  th;
};

static void *
caller_main(void *arg)
{
	struct caller *c = arg;

	for (int i = 0; i < 20; i++) {
		void   *rep = NULL;
		size_t  len = 0;
		int64_t v   = -1;

		if (mr_call_to(c->rt, c->addr, C_GET, NULL, 0, WAIT_MS, &rep,
			       &len) == MR_OK &&
		    len == sizeof(v))
			memcpy(&v, rep, sizeof(v));
		if (v != c->want)
			c->bad++;
		free(rep);
	}
	return NULL;
}

static void
expect_call(mr_router *rt, const char *addr, uint32_t type, int timeout_ms,
	    int want)
{
	void  *rep = (void *)1;
	size_t len = 1;
	int    rc  = mr_call_to(rt, addr, type, NULL, 0, timeout_ms, &rep,
				&len);

	ck_assert_msg(rc == want, "call %s type %u: %s, want %s", addr, type,
		      mr_err_name(rc), mr_err_name(want));
	ck_assert_ptr_null(rep);
	ck_assert_uint_eq(len, 0);
}

START_TEST(test_addresses)
{
	struct mrt_daemon d;
	mr_client        *pc, *cc;
	mr_system        *sys;
	mr_router        *rt;
	struct runner     r1, r2;
	mr_router_opts    ro = {0};
	char topic[128], quiet[128], casts[128], group[128], replies[128];
	char addr[160], qaddr[160], caddr[160];
	mr_pid            local;
	int64_t           v  = 1;
	int64_t           t0;

	mrt_ck_daemon_start(&d, NULL);
	pc = mrt_ck_client(&d, 30000, 0);
	cc = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "counters");
	mrt_uniq(quiet, sizeof(quiet), "nobody");
	mrt_uniq(casts, sizeof(casts), "cast-only");
	mrt_uniq(group, sizeof(group), "g-counters");
	mrt_uniq(replies, sizeof(replies), "replies");
	mrt_ck_topic_create(pc, topic, 4);
	mrt_ck_topic_create(pc, quiet, 1);
	mrt_ck_topic_create(pc, casts, 1);
	ck_assert_int_eq(mr_system_new(&sys, 4, 0), MR_OK);
	ro.reply_topic = replies;
	ck_assert_msg(mr_router_new(&rt, sys, pc, &ro) == MR_OK,
		      "mr_router_new: %s", mr_client_last_error());
	ck_assert_str_ne(mr_router_id(rt), "");
	runner_start(&r1, sys, cc, topic, group, &ctr_behaviour);
	strncat(group, "-c", sizeof(group) - strlen(group) - 1);
	runner_start(&r2, sys, cc, casts, group, &cast_only);

	// The same behaviour, local and mirrored, one API.
	ck_assert_int_eq(mr_spawn(sys, &ctr_behaviour, NULL, NULL, &local),
			 MR_OK);
	ck_assert_int_eq(mr_register(sys, "counter-local", local), MR_OK);
	sends_then_calls(rt, "counter-local");
	snprintf(addr, sizeof(addr), "%s/acct-1", topic);
	sends_then_calls(rt, addr);
	snprintf(addr, sizeof(addr), "%s/acct-2", topic);
	ck_assert_int_eq(get(rt, addr, C_GET), 0); // another key's actor

	// Two callers at once, on two keys and a local name: 20 calls each.
	{
		struct caller cs[3] = {{.rt = rt, .want = 18},
				       {.rt = rt, .want = 0},
				       {.rt = rt, .want = 18}};

		snprintf(cs[0].addr, sizeof(cs[0].addr), "%s/acct-1", topic);
		snprintf(cs[1].addr, sizeof(cs[1].addr), "%s/acct-2", topic);
		snprintf(cs[2].addr, sizeof(cs[2].addr), "counter-local");
		for (int i = 0; i < 3; i++)
			ck_assert_int_eq(pthread_create(&cs[i].th, NULL,
							caller_main, &cs[i]),
					 0);
		for (int i = 0; i < 3; i++) {
			pthread_join(cs[i].th, NULL);
			ck_assert_msg(cs[i].bad == 0,
				      "%s: %d of 20 calls wrong or failed",
				      cs[i].addr, cs[i].bad);
		}
	}

	// Errors come back as replies; a crash before the reply is
	// MR_ECLOSED (then the record is retried, and quarantined).
	snprintf(addr, sizeof(addr), "%s/acct-1", topic);
	expect_call(rt, addr, C_FAIL, WAIT_MS, MR_EINVAL);
	expect_call(rt, "counter-local", C_FAIL, WAIT_MS, MR_EINVAL);
	snprintf(addr, sizeof(addr), "%s/acct-3", topic);
	expect_call(rt, addr, C_CRASH, WAIT_MS, MR_ECLOSED);
	snprintf(caddr, sizeof(caddr), "%s/k", casts);
	expect_call(rt, caddr, C_GET, WAIT_MS, MR_ENOTSUP);
	ck_assert_int_eq(mr_send_to(rt, caddr, C_ADD, &v, sizeof(v)), MR_OK);

	// Nobody serves this topic: the call times out, not before.
	snprintf(qaddr, sizeof(qaddr), "%s/k", quiet);
	t0 = mrt_now_ms();
	expect_call(rt, qaddr, C_GET, 300, MR_ETIMEDOUT);
	ck_assert_int_ge(mrt_now_ms() - t0, 300);

	// Refused.
	expect_call(rt, "", C_GET, 1000, MR_EINVAL);
	expect_call(rt, "/k", C_GET, 1000, MR_EINVAL);
	snprintf(addr, sizeof(addr), "%s/", topic);
	expect_call(rt, addr, C_GET, 1000, MR_EINVAL);
	expect_call(rt, "no-such-name", C_GET, 1000, MR_ENOENT);
	expect_call(rt, "counter-local", C_GET, 0, MR_EINVAL);
	ck_assert_int_eq(mr_send_to(rt, "no-such-name", C_ADD, &v, sizeof(v)),
			 MR_ENOENT);
	ck_assert_int_eq(mr_send_to(rt, "", C_ADD, &v, sizeof(v)), MR_EINVAL);

	runner_stop(&r1);
	runner_stop(&r2);
	mr_router_free(rt);
	mr_system_free(sys);
	mr_client_free(cc);
	mr_client_free(pc);
	mrt_ck_daemon_finish(&d);
}
END_TEST

static Suite *
router_suite(void)
{
	Suite *s  = suite_create(mrt_real ? "router_kafka" : "router_embedded");
	TCase *tc = tcase_create("router");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_addresses);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("router_test", router_suite);
}
