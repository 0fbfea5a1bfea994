/*
 * Unit tests of the actor runtime (include/mailroom/actor.h): behaviours
 * (cast, call, deferred reply, call timeout, timers, code_change,
 * terminate), mailbox overflow policies, names, links, monitors, and the
 * deterministic scheduler's replay by seed. Most run on a deterministic
 * system (threads 0: exact, virtual time); the ones about threads (a
 * blocked sender, a reply from another thread, a real timeout) on two
 * workers, with no timing assertion.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_internal.h"
#include "mailroom/actor.h"

/* ---- a test behaviour ------------------------------------------------ */

enum {
	T_ADD = 1,     /* int64: sum += */
	T_CRASH,       /* return MR_EINTERNAL */
	T_STOP,        /* mr_exit(normal) */
	T_LINK,        /* mr_pid: link */
	T_UNLINK,      /* mr_pid */
	T_MONITOR,     /* mr_pid: monitor, ref kept in obs */
	T_DEMONITOR,   /* demonitor obs->ref */
	T_REPLY_LATER, /* answer obs->from with the sum */
	T_GATE,        /* wait on the test's gate (threaded only) */
	T_SEND_AFTER,  /* uint64 ms: a timer to self */
	T_LOG,         /* append obs->tag to the shared log */
	T_GET = 100,   /* call: the sum */
	T_DEFER,       /* call: keep from in obs */
	T_NEVER,       /* call: never answered */
	T_CALL_CRASH,  /* call: crash */
};

struct obs {
	int     inits, terminates, last_reason;
	int     exits, downs, timers;
	mr_pid  info_pid;
	int     info_reason;
	mr_ref  ref, info_ref;
	mr_from from;
	int64_t sum_at_terminate;
	char    tag;
	pthread_mutex_t gate_mu;
	pthread_cond_t  gate_cv;
	bool            gate_open;
	mr_pid          forward; /* T_DEFER: who answers */
};

struct st {
	struct obs *obs;
	int64_t     sum;
};

static char t__log[256];
static size_t t__nlog;

static int
t__init(mr_actor *self, void *arg, void **state)
{
	struct st *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return MR_ENOMEM;
	s->obs = arg;
	s->obs->inits++;
	*state = s;
	return 0;
}

static int
t__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct st  *s = state;
	struct obs *o = s->obs;
	mr_pid      pid;
	int64_t     v;
	uint64_t    ms;

	switch (msg->type) {
	case T_ADD:
		memcpy(&v, msg->data, sizeof(v));
		s->sum += v;
		return 0;
	case T_CRASH:
		return MR_EINTERNAL;
	case T_STOP:
		mr_exit(self, MR_EXIT_NORMAL);
		return 0;
	case T_LINK:
		memcpy(&pid, msg->data, sizeof(pid));
		return mr_link(self, pid);
	case T_UNLINK:
		memcpy(&pid, msg->data, sizeof(pid));
		mr_unlink(self, pid);
		return 0;
	case T_MONITOR:
		memcpy(&pid, msg->data, sizeof(pid));
		o->ref = mr_monitor(self, pid);
		return 0;
	case T_DEMONITOR:
		mr_demonitor(self, o->ref);
		return 0;
	case T_REPLY_LATER: {
		mr_from f;

		memcpy(&f, msg->data, sizeof(f));
		mr_reply(mr_actor_system(self), f, &s->sum, sizeof(s->sum));
		return 0;
	}
	case T_GATE:
		pthread_mutex_lock(&o->gate_mu);
		while (!o->gate_open)
			pthread_cond_wait(&o->gate_cv, &o->gate_mu);
		pthread_mutex_unlock(&o->gate_mu);
		return 0;
	case T_SEND_AFTER:
		memcpy(&ms, msg->data, sizeof(ms));
		mr_send_after(mr_actor_system(self), mr_self(self), ms, 7,
			      NULL, 0);
		return 0;
	case T_LOG:
		if (t__nlog < sizeof(t__log) - 1)
			t__log[t__nlog++] = o->tag;
		return 0;
	}
	return 0;
}

static int
t__call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	struct st *s = state;

	switch (msg->type) {
	case T_GET:
		return mr_reply(mr_actor_system(self), from, &s->sum,
				sizeof(s->sum));
	case T_DEFER:
		s->obs->from = from;
		if (s->obs->forward != 0)
			return mr_cast(mr_actor_system(self), s->obs->forward,
				       T_REPLY_LATER, &from, sizeof(from));
		return 0;
	case T_NEVER:
		s->obs->from = from;
		return 0;
	case T_CALL_CRASH:
		return MR_EIO;
	}
	return mr_reply_error(mr_actor_system(self), from, MR_EINVAL);
}

static int
t__info(mr_actor *self, void *state, const mr_info *info)
{
	struct obs *o = ((struct st *)state)->obs;

	switch (info->kind) {
	case MR_INFO_TIMER:
		o->timers++;
		o->info_ref = info->ref;
		if (o->from != 0 && info->msg->type == 8) {
			mr_reply(mr_actor_system(self), o->from,
				 &((struct st *)state)->sum, sizeof(int64_t));
			o->from = 0;
		}
		break;
	case MR_INFO_EXIT:
		o->exits++;
		o->info_pid    = info->pid;
		o->info_reason = info->reason;
		break;
	case MR_INFO_DOWN:
		o->downs++;
		o->info_pid    = info->pid;
		o->info_reason = info->reason;
		o->info_ref    = info->ref;
		break;
	}
	return 0;
}

static void
t__terminate(mr_actor *self, void *state, int reason)
{
	struct st *s = state;

	s->obs->terminates++;
	s->obs->last_reason      = reason;
	s->obs->sum_at_terminate = s->sum;
	free(s);
}

static const mr_behaviour t__b = {
	.name        = "test",
	.init        = t__init,
	.handle_cast = t__cast,
	.handle_call = t__call,
	.handle_info = t__info,
	.terminate   = t__terminate,
};

/* ---- helpers --------------------------------------------------------- */

static mr_system *
t__sys(int threads, uint64_t seed)
{
	mr_system *sys = NULL;

	ck_assert_int_eq(mr_system_new(&sys, threads, seed), MR_OK);
	return sys;
}

static mr_pid
t__spawn(mr_system *sys, struct obs *o, const mr_spawn_opts *opts)
{
	mr_pid pid = 0;

	ck_assert_int_eq(mr_spawn(sys, &t__b, o, opts, &pid), MR_OK);
	ck_assert_uint_ne(pid, 0);
	return pid;
}

static void
t__add(mr_system *sys, mr_pid pid, int64_t v)
{
	ck_assert_int_eq(mr_cast(sys, pid, T_ADD, &v, sizeof(v)), MR_OK);
}

static int64_t
t__get(mr_system *sys, mr_pid pid)
{
	void   *r   = NULL;
	size_t  len = 0;
	int64_t v   = -1;

	ck_assert_int_eq(mr_call(sys, pid, T_GET, NULL, 0, 5000, &r, &len),
			 MR_OK);
	ck_assert_uint_eq(len, sizeof(v));
	memcpy(&v, r, sizeof(v));
	free(r);
	return v;
}

static void
t__pidcast(mr_system *sys, mr_pid to, uint32_t type, mr_pid arg)
{
	ck_assert_int_eq(mr_cast(sys, to, type, &arg, sizeof(arg)), MR_OK);
}

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

/* ---- mailboxes ------------------------------------------------------- */

START_TEST(test_overflow_fail_drop)
{
	mr_system    *sys = t__sys(0, 9);
	struct obs    o   = {0};
	mr_spawn_opts f   = {.mailbox_max = 3, .overflow = MR_OVERFLOW_FAIL};
	mr_spawn_opts d   = {.mailbox_max = 3, .overflow = MR_OVERFLOW_DROP};
	mr_spawn_opts bl  = {.mailbox_max = 3, .overflow = MR_OVERFLOW_BLOCK};
	mr_pid        pf = t__spawn(sys, &o, &f), pd = t__spawn(sys, &o, &d);
	mr_pid        pb = t__spawn(sys, &o, &bl);
	int64_t       one = 1;
	char         *p   = strdup("kept by the caller");
	int           i;

	for (i = 0; i < 3; i++) {
		t__add(sys, pf, 1);
		t__add(sys, pd, 1);
		t__add(sys, pb, 1);
	}
	ck_assert_int_eq(mr_cast(sys, pf, T_ADD, &one, sizeof(one)), MR_EBUSY);
	ck_assert_int_eq(mr_cast_ptr(sys, pf, T_ADD, p, free), MR_EBUSY);
	free(p); /* refused: still ours */
	ck_assert_int_eq(mr_cast(sys, pd, T_ADD, &one, sizeof(one)), MR_OK);
	/* Block cannot wait in a deterministic system: it fails. */
	ck_assert_int_eq(mr_cast(sys, pb, T_ADD, &one, sizeof(one)), MR_EBUSY);
	/* Signals are never refused: an exit signal to a full mailbox. */
	ck_assert_int_eq(mr_send_exit(sys, pf, MR_EXIT_NORMAL), MR_OK);
	/* A call is a user message: refused too while full. */
	ck_assert_int_eq(mr_call(sys, pf, T_GET, NULL, 0, 10, NULL, NULL),
			 MR_EBUSY);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(t__get(sys, pf), 3);
	ck_assert_int_eq(t__get(sys, pd), 3); /* the fourth was dropped */
	/* Room again. */
	ck_assert_int_eq(mr_cast(sys, pf, T_ADD, &one, sizeof(one)), MR_OK);
	ck_assert_int_eq(t__get(sys, pf), 4);
	mr_system_free(sys);
}
END_TEST

struct t_sender {
	mr_system *sys;
	mr_pid     to;
	int        n, rv;
};

static void *
t__sender(void *arg)
{
	struct t_sender *s = arg;
	int64_t          one = 1;
	int              i;

	for (i = 0; i < s->n && s->rv == MR_OK; i++)
		s->rv = mr_cast(s->sys, s->to, T_ADD, &one, sizeof(one));
	return NULL;
}

START_TEST(test_overflow_block)
{
	mr_system      *sys = t__sys(2, 0);
	struct obs      o   = {0};
	mr_spawn_opts   bl  = {.mailbox_max = 2, .overflow = MR_OVERFLOW_BLOCK};
	mr_pid          pid;
	struct mr_actor *a;
	struct t_sender s;
	pthread_t       th;

	pthread_mutex_init(&o.gate_mu, NULL);
	pthread_cond_init(&o.gate_cv, NULL);
	pid = t__spawn(sys, &o, &bl);
	/* The actor waits on the gate; its mailbox fills; the sender waits. */
	ck_assert_int_eq(mr_cast(sys, pid, T_GATE, NULL, 0), MR_OK);
	s = (struct t_sender){.sys = sys, .to = pid, .n = 50, .rv = MR_OK};
	ck_assert_int_eq(pthread_create(&th, NULL, t__sender, &s), 0);
	a = mri_lookup(sys, pid);
	while (atomic_load(&a->blocked) == 0)
		sched_yield();
	ck_assert_uint_le(atomic_load(&a->count), 3); /* gate + 2 */
	mri_actor_rele(a);
	pthread_mutex_lock(&o.gate_mu);
	o.gate_open = true;
	pthread_cond_broadcast(&o.gate_cv);
	pthread_mutex_unlock(&o.gate_mu);
	pthread_join(th, NULL);
	ck_assert_int_eq(s.rv, MR_OK);
	ck_assert_int_eq(t__get(sys, pid), 50); /* none lost */
	mr_system_free(sys);
	pthread_mutex_destroy(&o.gate_mu);
	pthread_cond_destroy(&o.gate_cv);
}
END_TEST

static int t__freed;
static void
t__count_free(void *p)
{
	t__freed++;
	free(p);
}

static void *t__taken;
static int
t__ptr_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	if (msg->type == 2)
		t__taken = mr_msg_take(msg);
	return 0;
}

START_TEST(test_cast_ptr)
{
	mr_system          *sys = t__sys(0, 10);
	static mr_behaviour pb  = {.handle_cast = t__ptr_cast};
	mr_pid              pid;

	t__freed = 0;
	ck_assert_int_eq(mr_spawn(sys, &pb, NULL, NULL, &pid), MR_OK);
	ck_assert_int_eq(mr_cast_ptr(sys, pid, 1, malloc(8), t__count_free),
			 MR_OK);
	ck_assert_int_eq(mr_cast_ptr(sys, pid, 2, malloc(8), t__count_free),
			 MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(t__freed, 1); /* the taken one is ours */
	ck_assert_ptr_nonnull(t__taken);
	free(t__taken);
	/* Left in a mailbox at free: freed by the runtime. */
	ck_assert_int_eq(mr_cast_ptr(sys, pid, 1, malloc(8), t__count_free),
			 MR_OK);
	mr_system_free(sys);
	ck_assert_int_eq(t__freed, 2);
}
END_TEST

/* ---- names ----------------------------------------------------------- */

START_TEST(test_names)
{
	mr_system *sys = t__sys(0, 11);
	struct obs o   = {0};
	mr_pid     a = t__spawn(sys, &o, NULL), b = t__spawn(sys, &o, NULL);

	ck_assert_int_eq(mr_register(sys, "ledger", a), MR_OK);
	ck_assert_uint_eq(mr_whereis(sys, "ledger"), a);
	ck_assert_int_eq(mr_register(sys, "ledger", b), MR_EEXIST);
	ck_assert_int_eq(mr_register(sys, "other", a), MR_EEXIST);
	ck_assert_int_eq(mr_register(sys, "", b), MR_EINVAL);
	ck_assert_int_eq(mr_register(sys, "x", 12345), MR_ENOENT);
	ck_assert_int_eq(mr_unregister(sys, "ledger"), MR_OK);
	ck_assert_uint_eq(mr_whereis(sys, "ledger"), 0);
	ck_assert_int_eq(mr_unregister(sys, "ledger"), MR_ENOENT);
	ck_assert_int_eq(mr_register(sys, "other", a), MR_OK);
	ck_assert_int_eq(mr_register(sys, "ledger", b), MR_OK);
	/* A name goes with its actor. */
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_whereis(sys, "ledger"), 0);
	ck_assert_uint_eq(mr_whereis(sys, "other"), a);
	mr_system_free(sys);
}
END_TEST

/* ---- links and monitors ---------------------------------------------- */

START_TEST(test_links_trapped)
{
	mr_system    *sys = t__sys(0, 12);
	struct obs    oa = {0}, ob = {0};
	mr_spawn_opts trap = {.trap_exit = true};
	mr_pid        a = t__spawn(sys, &oa, &trap), b = t__spawn(sys, &ob, NULL);

	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 1);
	ck_assert_uint_eq(oa.info_pid, b);
	ck_assert_int_eq(oa.info_reason, MR_EINTERNAL);
	ck_assert_int_eq(oa.terminates, 0);
	/* Linking an actor that is gone: EXIT noproc. */
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 2);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NOPROC);
	/* Normal exits arrive too when trapped. */
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 3);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NORMAL);
	/* Unlinked: nothing. */
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_LINK, b);
	t__pidcast(sys, a, T_UNLINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 3);
	/* Kill cannot be trapped; the link sees killed. */
	b = t__spawn(sys, &ob, &trap);
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_send_exit(sys, b, MR_EXIT_KILL), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(ob.last_reason, MR_EXIT_KILLED);
	ck_assert_int_eq(oa.exits, 4);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_KILLED);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_links_untrapped)
{
	mr_system *sys = t__sys(0, 13);
	struct obs oa = {0}, ob = {0}, oc = {0};
	mr_pid     a = t__spawn(sys, &oa, NULL), b = t__spawn(sys, &ob, NULL);
	mr_pid     c = t__spawn(sys, &oc, NULL);

	/* a - b - c: b crashes, both a and c die with its reason. */
	t__pidcast(sys, b, T_LINK, a);
	t__pidcast(sys, c, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.last_reason, MR_EINTERNAL);
	ck_assert_int_eq(oc.last_reason, MR_EINTERNAL);
	ck_assert_int_eq(oa.terminates + ob.terminates + oc.terminates, 3);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	/* A normal exit does not take a non-trapping link down. */
	a = t__spawn(sys, &oa, NULL);
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_system_actors(sys), 1);
	ck_assert_int_eq(oa.terminates, 1);
	/* Spawned linked: the link is there from birth. */
	{
		mr_spawn_opts l = {.link = a};

		b = t__spawn(sys, &ob, &l);
	}
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	ck_assert_int_eq(oa.last_reason, MR_EINTERNAL);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_monitors)
{
	mr_system *sys = t__sys(0, 14);
	struct obs oa = {0}, ob = {0};
	mr_pid     a = t__spawn(sys, &oa, NULL), b = t__spawn(sys, &ob, NULL);
	mr_ref     ref;

	t__pidcast(sys, a, T_MONITOR, b);
	mr_system_run_until_idle(sys);
	ref = oa.ref;
	ck_assert_uint_ne(ref, 0);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.downs, 1);
	ck_assert_uint_eq(oa.info_ref, ref);
	ck_assert_uint_eq(oa.info_pid, b);
	ck_assert_int_eq(oa.info_reason, MR_EINTERNAL);
	ck_assert_int_eq(oa.terminates, 0); /* a monitor is not a link */
	/* Monitoring what is gone: one DOWN noproc. */
	t__pidcast(sys, a, T_MONITOR, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.downs, 2);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NOPROC);
	/* Two monitors, two DOWNs, each once; a normal exit too. */
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_MONITOR, b);
	t__pidcast(sys, a, T_MONITOR, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.downs, 4);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NORMAL);
	/* Demonitor: no DOWN, whichever of the exit and the demonitor runs
	 * first (the seed decides; both orders over these seeds). */
	for (int seed = 0; seed < 8; seed++) {
		b = t__spawn(sys, &ob, NULL);
		t__pidcast(sys, a, T_MONITOR, b);
		mr_system_run_until_idle(sys);
		ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
		ck_assert_int_eq(mr_cast(sys, a, T_DEMONITOR, NULL, 0), MR_OK);
		mr_system_run_until_idle(sys);
		ck_assert_int_eq(oa.downs, 4);
	}
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
	TCase *m = tcase_create("mailboxes");
	TCase *l = tcase_create("links");

	tcase_add_test(b, test_cast_call);
	tcase_add_test(b, test_deferred_reply_timer);
	tcase_add_test(b, test_deferred_reply_other_actor);
	tcase_add_test(b, test_call_timeout);
	tcase_add_test(b, test_call_errors);
	tcase_add_test(b, test_timers);
	tcase_add_test(b, test_timers_threaded);
	tcase_add_test(b, test_code_change);
	tcase_add_test(b, test_terminate);
	tcase_add_test(b, test_init_fails);
	tcase_add_test(b, test_replay_by_seed);
	tcase_add_test(b, test_footprint);
	suite_add_tcase(s, b);
	tcase_add_test(m, test_overflow_fail_drop);
	tcase_add_test(m, test_overflow_block);
	tcase_add_test(m, test_cast_ptr);
	tcase_add_test(m, test_names);
	suite_add_tcase(s, m);
	tcase_add_test(l, test_links_trapped);
	tcase_add_test(l, test_links_untrapped);
	tcase_add_test(l, test_monitors);
	suite_add_tcase(s, l);
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
