/*
 * The actor tests' shared behaviour and helpers (actor_test.c,
 * actor_mbox_test.c): a behaviour that adds, crashes, stops, links,
 * monitors, answers now or later, and records what it saw in a struct obs
 * of the test's.
 */
#ifndef MRI_ACTOR_TEST_H
#define MRI_ACTOR_TEST_H

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

static char t__log[256] __attribute__((unused));
static size_t t__nlog __attribute__((unused));

static inline int
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

static inline int
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

static inline int
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

static inline int
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

static inline void
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

static inline mr_system *
t__sys(int threads, uint64_t seed)
{
	mr_system *sys = NULL;

	ck_assert_int_eq(mr_system_new(&sys, threads, seed), MR_OK);
	return sys;
}

static inline mr_pid
t__spawn(mr_system *sys, struct obs *o, const mr_spawn_opts *opts)
{
	mr_pid pid = 0;

	ck_assert_int_eq(mr_spawn(sys, &t__b, o, opts, &pid), MR_OK);
	ck_assert_uint_ne(pid, 0);
	return pid;
}

static inline void
t__add(mr_system *sys, mr_pid pid, int64_t v)
{
	ck_assert_int_eq(mr_cast(sys, pid, T_ADD, &v, sizeof(v)), MR_OK);
}

static inline int64_t
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

static inline void
t__pidcast(mr_system *sys, mr_pid to, uint32_t type, mr_pid arg)
{
	ck_assert_int_eq(mr_cast(sys, to, type, &arg, sizeof(arg)), MR_OK);
}

#endif
