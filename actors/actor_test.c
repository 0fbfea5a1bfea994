/*
 * Unit tests of the actor runtime's behaviours (include/mailroom/actor.h):
 * cast, call, deferred replies, call timeouts and errors, timers,
 * code_change, terminate, a failing init, and the deterministic
 * scheduler's replay by seed. Most run on a deterministic system (threads
 * 0: exact, virtual time); the ones about threads (a reply from another
 * actor, a real timeout, the timer thread) on two workers, with no timing
 * assertion. Mailboxes, names, links and monitors: actor_mbox_test.c.
 */
#include <stdio.h>

#include "actors/actor_test.h"

/* ---- behaviours ------------------------------------------------------ */

START_TEST(test_cast_call)
{
	mr_system *sys = t__sys(0, 1);
	struct obs o   = {0};
	mr_pid     pid = t__spawn(sys, &o, NULL);
	int        i;

	ck_assert_int_eq(o.inits, 1);
	for (i = 1; i <= 10; i++)
		t__add(sys, pid, i);
	ck_assert_int_eq(t__get(sys, pid), 55);
	ck_assert_uint_eq(mr_system_actors(sys), 1);
	mr_system_free(sys);
	ck_assert_int_eq(o.terminates, 1);
	ck_assert_int_eq(o.last_reason, MR_EXIT_SHUTDOWN);
	ck_assert_int_eq(o.sum_at_terminate, 55);
}
END_TEST

/* Deferred, deterministic: answered by a timer 100 virtual ms later. */
START_TEST(test_deferred_reply_timer)
{
	mr_system *sys = t__sys(0, 2);
	struct obs o   = {0};
	mr_pid     pid = t__spawn(sys, &o, NULL);
	void      *r   = NULL;
	size_t     len = 0;
	int64_t    v;

	t__add(sys, pid, 42);
	mr_send_after(sys, pid, 100, 8, NULL, 0);
	ck_assert_int_eq(mr_call(sys, pid, T_DEFER, NULL, 0, 1000, &r, &len),
			 MR_OK);
	ck_assert_uint_eq(len, sizeof(v));
	memcpy(&v, r, sizeof(v));
	free(r);
	ck_assert_int_eq(v, 42);
	ck_assert_uint_eq(mr_system_now(sys), 100);
	mr_system_free(sys);
}
END_TEST

/* Deferred, threaded: answered by another actor, on whatever worker. */
START_TEST(test_deferred_reply_other_actor)
{
	mr_system *sys = t__sys(2, 0);
	struct obs oa = {0}, ob = {0};
	mr_pid     b = t__spawn(sys, &ob, NULL);
	mr_pid     a;
	void      *r   = NULL;
	size_t     len = 0;
	int64_t    v;

	oa.forward = b;
	a          = t__spawn(sys, &oa, NULL);
	t__add(sys, b, 7);
	ck_assert_int_eq(mr_call(sys, a, T_DEFER, NULL, 0, 10000, &r, &len),
			 MR_OK);
	memcpy(&v, r, sizeof(v));
	free(r);
	ck_assert_int_eq(v, 7); /* b's sum: b answered */
	/* The call is over: a second answer finds nothing. */
	ck_assert_int_eq(mr_reply(sys, oa.from, NULL, 0), MR_ENOENT);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_call_timeout)
{
	mr_system *sys = t__sys(0, 3);
	struct obs o   = {0};
	mr_pid     pid = t__spawn(sys, &o, NULL);
	mr_system *tsys;

	ck_assert_int_eq(mr_call(sys, pid, T_NEVER, NULL, 0, 1500, NULL, NULL),
			 MR_ETIMEDOUT);
	ck_assert_uint_eq(mr_system_now(sys), 1500); /* virtual time */
	ck_assert_int_eq(mr_reply(sys, o.from, NULL, 0), MR_ENOENT);
	mr_system_free(sys);

	/* Threaded: a real (short) timeout; the actor still serves. */
	tsys = t__sys(2, 0);
	memset(&o, 0, sizeof(o));
	pid = t__spawn(tsys, &o, NULL);
	ck_assert_int_eq(mr_call(tsys, pid, T_NEVER, NULL, 0, 20, NULL, NULL),
			 MR_ETIMEDOUT);
	t__add(tsys, pid, 3);
	ck_assert_int_eq(t__get(tsys, pid), 3);
	mr_system_free(tsys);
}
END_TEST

/* A call from inside an actor, both workers busy: the callee, made
 * runnable by the caller just before (so its worker's next), must still be
 * run by the other worker once that one is free. */
struct t_caller {
	mr_pid          y;
	struct obs     *gate; /* the other worker waits on it */
	int             rv;
	int64_t         got;
	bool            done;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
};

static int
t__caller_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct t_caller *c = *(struct t_caller *const *)msg->data;
	mr_system       *sys = mr_actor_system(self);
	int64_t          five = 5;
	void            *r = NULL;

	mr_cast(sys, c->y, T_ADD, &five, sizeof(five));
	pthread_mutex_lock(&c->gate->gate_mu);
	c->gate->gate_open = true;
	pthread_cond_broadcast(&c->gate->gate_cv);
	pthread_mutex_unlock(&c->gate->gate_mu);
	c->rv = mr_call(sys, c->y, T_GET, NULL, 0, 20000, &r, NULL);
	if (r != NULL)
		memcpy(&c->got, r, sizeof(c->got));
	free(r);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

START_TEST(test_call_from_actor)
{
	static const mr_behaviour xb = {.handle_cast = t__caller_cast};
	mr_system      *sys = t__sys(2, 0);
	struct obs      og = {0}, oy = {0};
	struct t_caller c = {0};
	struct t_caller *cp = &c;
	mr_pid          g, x;

	pthread_mutex_init(&og.gate_mu, NULL);
	pthread_cond_init(&og.gate_cv, NULL);
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	g    = t__spawn(sys, &og, NULL);
	c.y  = t__spawn(sys, &oy, NULL);
	c.gate = &og;
	ck_assert_int_eq(mr_spawn(sys, &xb, NULL, NULL, &x), MR_OK);
	ck_assert_int_eq(mr_cast(sys, g, T_GATE, NULL, 0), MR_OK);
	ck_assert_int_eq(mr_cast(sys, x, 1, &cp, sizeof(cp)), MR_OK);
	pthread_mutex_lock(&c.mu);
	while (!c.done)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	ck_assert_int_eq(c.rv, MR_OK);
	ck_assert_int_eq(c.got, 5); /* the cast before the call came first */
	mr_system_free(sys);
	pthread_mutex_destroy(&og.gate_mu);
	pthread_cond_destroy(&og.gate_cv);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
}
END_TEST

START_TEST(test_call_errors)
{
	mr_system          *sys = t__sys(0, 4);
	struct obs          o   = {0};
	mr_pid              pid = t__spawn(sys, &o, NULL);
	static mr_behaviour nocall = {.name = "nocall"};
	mr_pid              nc;

	/* An actor that crashes on the call: MR_ECLOSED, not a timeout. */
	ck_assert_int_eq(mr_call(sys, pid, T_CALL_CRASH, NULL, 0, 100000,
				 NULL, NULL),
			 MR_ECLOSED);
	ck_assert_int_eq(o.last_reason, MR_EIO);
	ck_assert_uint_eq(mr_system_now(sys), 0);
	/* Gone: MR_ENOENT. */
	ck_assert_int_eq(mr_call(sys, pid, T_GET, NULL, 0, 100, NULL, NULL),
			 MR_ENOENT);
	ck_assert_int_eq(mr_spawn(sys, &nocall, NULL, NULL, &nc), MR_OK);
	ck_assert_int_eq(mr_call(sys, nc, 1, NULL, 0, 100, NULL, NULL),
			 MR_ENOTSUP);
	/* An answer with an error. */
	pid = t__spawn(sys, &o, NULL);
	ck_assert_int_eq(mr_call(sys, pid, 999, NULL, 0, 100, NULL, NULL),
			 MR_EINVAL);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_timers)
{
	mr_system *sys = t__sys(0, 5);
	struct obs o   = {0};
	mr_pid     pid = t__spawn(sys, &o, NULL);
	mr_ref     t100, t50, t70;

	t100 = mr_send_after(sys, pid, 100, 5, NULL, 0);
	t50  = mr_send_after(sys, pid, 50, 6, NULL, 0);
	t70  = mr_send_after(sys, pid, 70, 6, NULL, 0);
	ck_assert(t100 && t50 && t70);
	ck_assert_int_eq(mr_cancel_timer(sys, t70), MR_OK);
	ck_assert_int_eq(mr_cancel_timer(sys, t70), MR_ENOENT);
	mr_system_advance(sys, 49);
	ck_assert_int_eq(o.timers, 0);
	mr_system_advance(sys, 1);
	ck_assert_int_eq(o.timers, 1);
	ck_assert_uint_eq(o.info_ref, t50);
	mr_system_advance(sys, 100);
	ck_assert_int_eq(o.timers, 2); /* t70 never fired */
	ck_assert_uint_eq(o.info_ref, t100);
	ck_assert_int_eq(mr_cancel_timer(sys, t100), MR_ENOENT);
	/* A timer set by the actor itself, on the virtual clock. */
	{
		uint64_t ms = 30;

		ck_assert_int_eq(mr_cast(sys, pid, T_SEND_AFTER, &ms,
					 sizeof(ms)),
				 MR_OK);
	}
	mr_system_advance(sys, 29);
	ck_assert_int_eq(o.timers, 2);
	mr_system_advance(sys, 1);
	ck_assert_int_eq(o.timers, 3);
	/* A timer pending at free is freed, not delivered. */
	mr_send_after(sys, pid, 1000, 5, "x", 1);
	mr_system_free(sys);
	ck_assert_int_eq(o.timers, 3);
}
END_TEST

START_TEST(test_timers_threaded)
{
	mr_system *sys = t__sys(2, 0);
	struct obs o   = {0};
	mr_pid     pid = t__spawn(sys, &o, NULL);
	void      *r   = NULL;

	/* Answered by the timer (type 8) from the timer thread's delivery. */
	mr_send_after(sys, pid, 5, 8, NULL, 0);
	ck_assert_int_eq(mr_call(sys, pid, T_DEFER, NULL, 0, 10000, &r, NULL),
			 MR_OK);
	free(r);
	mr_system_free(sys);
	ck_assert_int_eq(o.timers, 1);
}
END_TEST

/* v2 of the test behaviour: adds ten times, its state a new struct. */
struct st2 {
	struct obs *obs;
	int64_t     sum;
	int64_t     upgraded_from;
};

static int
t2__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct st2 *s = state;
	int64_t     v;

	if (msg->type == T_ADD) {
		memcpy(&v, msg->data, sizeof(v));
		s->sum += 10 * v;
	}
	return 0;
}

static int
t2__call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	struct st2 *s = state;

	return mr_reply(mr_actor_system(self), from, &s->sum, sizeof(s->sum));
}

static void
t2__terminate(mr_actor *self, void *state, int reason)
{
	struct st2 *s = state;

	s->obs->terminates++;
	s->obs->sum_at_terminate = s->sum;
	free(s);
}

static int
t2__code_change(mr_actor *self, void *old, void *extra, void **out)
{
	struct st  *o = old;
	struct st2 *n;

	if (extra != NULL && *(int *)extra == 0)
		return MR_EINVAL; /* refused */
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return MR_ENOMEM;
	n->obs           = o->obs;
	n->sum           = o->sum;
	n->upgraded_from = o->sum;
	free(o);
	*out = n;
	return 0;
}

static const mr_behaviour t2__b = {
	.name        = "test-v2",
	.handle_cast = t2__cast,
	.handle_call = t2__call,
	.terminate   = t2__terminate,
	.code_change = t2__code_change,
};

START_TEST(test_code_change)
{
	mr_system *sys = t__sys(0, 6);
	struct obs o   = {0};
	mr_pid     pid = t__spawn(sys, &o, NULL);
	int        no = 0, yes = 1;

	/* Queued in this order: the upgrade lands between the two adds. */
	t__add(sys, pid, 1);
	ck_assert_int_eq(mr_actor_upgrade(sys, pid, &t2__b, &yes), MR_OK);
	t__add(sys, pid, 1);
	ck_assert_int_eq(t__get(sys, pid), 1 + 10);
	/* A refused upgrade (v2's code_change says no) keeps v2 and its
	 * state. */
	ck_assert_int_eq(mr_actor_upgrade(sys, pid, &t2__b, &no), MR_OK);
	t__add(sys, pid, 2);
	ck_assert_int_eq(t__get(sys, pid), 11 + 20);
	mr_system_free(sys);
	ck_assert_int_eq(o.terminates, 1);
	ck_assert_int_eq(o.sum_at_terminate, 31);
}
END_TEST

START_TEST(test_terminate)
{
	mr_system *sys = t__sys(0, 7);
	struct obs o   = {0};
	mr_pid     pid;
	int64_t    one = 1;

	/* Normal stop: terminate(0); the actor is gone. */
	pid = t__spawn(sys, &o, NULL);
	t__add(sys, pid, 5);
	ck_assert_int_eq(mr_cast(sys, pid, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(o.terminates, 1);
	ck_assert_int_eq(o.last_reason, MR_EXIT_NORMAL);
	ck_assert_int_eq(o.sum_at_terminate, 5);
	ck_assert_int_eq(mr_cast(sys, pid, T_ADD, &one, sizeof(one)),
			 MR_ENOENT);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	/* A crash: terminate(reason), state dropped. */
	pid = t__spawn(sys, &o, NULL);
	ck_assert_int_eq(mr_cast(sys, pid, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(o.terminates, 2);
	ck_assert_int_eq(o.last_reason, MR_EINTERNAL);
	/* An exit signal to an actor that does not trap. */
	pid = t__spawn(sys, &o, NULL);
	ck_assert_int_eq(mr_send_exit(sys, pid, MR_EXIT_SHUTDOWN), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(o.last_reason, MR_EXIT_SHUTDOWN);
	/* A normal exit signal is ignored by a non-trapping actor. */
	pid = t__spawn(sys, &o, NULL);
	ck_assert_int_eq(mr_send_exit(sys, pid, MR_EXIT_NORMAL), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_system_actors(sys), 1);
	/* Kill goes ahead of queued messages. */
	t__add(sys, pid, 100);
	ck_assert_int_eq(mr_send_exit(sys, pid, MR_EXIT_KILL), MR_OK);
	mr_system_step(sys);
	ck_assert_int_eq(o.last_reason, MR_EXIT_KILLED);
	ck_assert_int_eq(o.sum_at_terminate, 0);
	mr_system_free(sys);
	ck_assert_int_eq(o.inits, 4);
	ck_assert_int_eq(o.terminates, 4);
}
END_TEST

static int
t__init_fails(mr_actor *self, void *arg, void **state)
{
	return MR_ECONFIG;
}

START_TEST(test_init_fails)
{
	mr_system          *sys = t__sys(0, 8);
	static mr_behaviour bad = {.init = t__init_fails,
				   .terminate = t__terminate};
	mr_pid              pid = 0;

	ck_assert_int_eq(mr_spawn(sys, &bad, NULL, NULL, &pid), MR_ECONFIG);
	ck_assert_uint_eq(pid, 0);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	mr_system_free(sys);
}
END_TEST

/* ---- the deterministic scheduler ------------------------------------- */

static void
t__interleave(uint64_t seed, char *out, size_t cap)
{
	mr_system *sys = t__sys(0, seed);
	struct obs o[4];
	mr_pid     p[4];
	int        i, k;

	memset(o, 0, sizeof(o));
	memset(t__log, 0, sizeof(t__log));
	t__nlog = 0;
	for (i = 0; i < 4; i++) {
		o[i].tag = (char)('a' + i);
		p[i]     = t__spawn(sys, &o[i], NULL);
	}
	for (k = 0; k < 8; k++)
		for (i = 0; i < 4; i++)
			ck_assert_int_eq(mr_cast(sys, p[i], T_LOG, NULL, 0),
					 MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(t__nlog, 32);
	memcpy(out, t__log, cap);
	mr_system_free(sys);
}

START_TEST(test_replay_by_seed)
{
	char     a[64], b[64], c[64];
	uint64_t seed;
	int      differ = 0;

	t__interleave(42, a, sizeof(a));
	t__interleave(42, b, sizeof(b));
	ck_assert_mem_eq(a, b, sizeof(a)); /* the same seed, the same run */
	for (seed = 1; seed <= 8; seed++) {
		t__interleave(seed, c, sizeof(c));
		differ += memcmp(a, c, sizeof(a)) != 0;
	}
	ck_assert_int_gt(differ, 0); /* seeds choose the interleaving */
}
END_TEST

/* ---- external calls (a remote caller's) ------------------------------ */

enum { EXT_OPEN = 1, EXT_ANSWER = 2, EXT_CRASH = 3 };

struct ext_result {
	int     calls, err;
	char    data[16];
	mr_from from; /* the last one opened */
};

static int
ext_init(mr_actor *self, void *arg, void **state)
{
	(void)self;
	*state = arg;
	return MR_OK;
}

static void
ext_done(void *arg, int err, const void *data, size_t len)
{
	struct ext_result *r = arg;

	r->calls++;
	r->err = err;
	snprintf(r->data, sizeof(r->data), "%.*s", (int)len,
		 data ? (const char *)data : "");
}

static int
ext_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct ext_result *r = state;

	switch (msg->type) {
	case EXT_OPEN:
		return mr_call_external(self, ext_done, r, &r->from);
	case EXT_ANSWER:
		return mr_reply(mr_actor_system(self), r->from, "pong", 4);
	default:
		return MR_EIO;
	}
}

static const mr_behaviour ext_b = {
	.name        = "ext",
	.init        = ext_init,
	.handle_cast = ext_cast,
};

/* mr_call_external: answered once through its function, deferred; the
 * callee's crash before it answers is MR_ECLOSED; a late reply finds
 * nothing. */
START_TEST(test_call_external)
{
	mr_system        *sys = t__sys(0, 3);
	struct ext_result r   = {0};
	mr_pid            pid;
	mr_from           old;

	ck_assert_int_eq(mr_spawn(sys, &ext_b, &r, NULL, &pid), MR_OK);
	mr_cast(sys, pid, EXT_OPEN, NULL, 0);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(r.calls, 0); // deferred: nothing yet
	mr_cast(sys, pid, EXT_ANSWER, NULL, 0);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.err, MR_OK);
	ck_assert_str_eq(r.data, "pong");
	old = r.from;
	ck_assert_int_eq(mr_reply(sys, old, "x", 1), MR_ENOENT);
	ck_assert_int_eq(r.calls, 1);

	mr_cast(sys, pid, EXT_OPEN, NULL, 0);
	mr_cast(sys, pid, EXT_CRASH, NULL, 0);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(r.calls, 2);
	ck_assert_int_eq(r.err, MR_ECLOSED);
	ck_assert_int_eq(mr_reply(sys, r.from, "x", 1), MR_ENOENT);
	ck_assert_int_eq(r.calls, 2);
	mr_system_free(sys);
}
END_TEST

/* The idle actor's budget (<= 256 B): its struct, its pid table slot and
 * malloc's header; the bench measures the same by RSS over 1 M actors. */
START_TEST(test_footprint)
{
	ck_assert_uint_le(sizeof(struct mr_actor) + sizeof(struct mri_slot) +
			      16,
			  256);
}
END_TEST

static Suite *
t__suite(void)
{
	Suite *s = suite_create("actor");
	TCase *b = tcase_create("behaviours");

	tcase_add_test(b, test_cast_call);
	tcase_add_test(b, test_deferred_reply_timer);
	tcase_add_test(b, test_deferred_reply_other_actor);
	tcase_add_test(b, test_call_timeout);
	tcase_add_test(b, test_call_errors);
	tcase_add_test(b, test_call_from_actor);
	tcase_add_test(b, test_call_external);
	tcase_add_test(b, test_timers);
	tcase_add_test(b, test_timers_threaded);
	tcase_add_test(b, test_code_change);
	tcase_add_test(b, test_terminate);
	tcase_add_test(b, test_init_fails);
	tcase_add_test(b, test_replay_by_seed);
	tcase_add_test(b, test_footprint);
	suite_add_tcase(s, b);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(t__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}

