/*
 * Supervisors (include/mailroom/supervisor.h): a behaviour that traps exits
 * and keeps its children alive.
 *
 * Stopping children takes time (each has its shutdown timeout), and an
 * actor does not wait inside a callback, so stopping is a job the
 * supervisor works through message by message: it asks the highest
 * running child in the job's range to stop (MR_EXIT_SHUTDOWN, a kill timer
 * after shutdown_ms), and on that child's EXIT moves to the next one down.
 * When the job is done it either starts the children of the restart range
 * again, in order, or (shutting down) exits. A child that exits outside
 * the job while it runs is handled once the job is done.
 *
 * Intensity: the times of the restarts within the last period_ms are kept;
 * a restart that would make more than intensity of them shuts the
 * supervisor down instead (OTP's reason: shutdown).
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "actors/actor_internal.h"

#define SUP_RETRY 0xFFFF0001u /* cast to self: start children again */
#define SUP_KILL  0xFFFF0002u /* timer: a child's shutdown timed out */
#define SUP_WHICH 0xFFFF0003u /* call: the pid of a child by id */

struct sup_child {
	mr_child_spec spec;
	mr_pid        pid;
	bool          removed; /* a temporary child that exited */
	bool          pending; /* exited during a job: handle after it */
	int           pending_reason;
};

struct sup {
	mr_strategy       strategy;
	uint32_t          intensity, period_ms;
	const char       *name; /* the spec's, borrowed */
	mr_pid            parent;
	struct sup_child *c;
	int               n;
	uint64_t         *restarts; /* times, oldest first */
	uint32_t          nrestarts, restarts_cap;
	/* the stopping job */
	bool              job;
	bool              shutting_down;
	int               exit_reason;
	int               job_lo, job_cur, restart_from;
	mr_ref            kill_timer;
};

struct sup_retry {
	int from, end;
};

struct sup_start_arg {
	const mr_sup_spec *spec;
	mr_pid             parent;
};

static int
sup__start_child(mr_actor *self, struct sup_child *c)
{
	mr_spawn_opts o   = {.link = mr_self(self)};
	mr_pid        pid = 0;
	int           rv;

	if (c->spec.start != NULL)
		rv = c->spec.start(self, c->spec.arg, &pid);
	else
		rv = mr_spawn(mr_actor_system(self), c->spec.behaviour,
			      c->spec.arg, &o, &pid);
	if (rv == MR_OK)
		c->pid = pid;
	return rv;
}

static int
sup__find(struct sup *s, mr_pid pid)
{
	int i;

	for (i = 0; i < s->n; i++) {
		if (s->c[i].pid == pid && pid != 0)
			return i;
	}
	return -1;
}

/* Count a restart. @returns false when it exceeds the intensity. */
static bool
sup__add_restart(mr_actor *self, struct sup *s)
{
	uint64_t now = mr_system_now(mr_actor_system(self));
	uint32_t i, k = 0;

	for (i = 0; i < s->nrestarts; i++) {
		if (now - s->restarts[i] < s->period_ms)
			s->restarts[k++] = s->restarts[i];
	}
	s->nrestarts = k;
	if (s->nrestarts + 1 > s->intensity)
		return false;
	if (s->nrestarts == s->restarts_cap) {
		uint32_t  cap = s->restarts_cap * 2;
		uint64_t *v   = realloc(s->restarts, cap * sizeof(*v));

		if (v == NULL)
			return false; /* out of memory: as if exceeded */
		s->restarts     = v;
		s->restarts_cap = cap;
	}
	s->restarts[s->nrestarts++] = now;
	mr_system_count_restart(mr_actor_system(self), s->name, 1);
	return true;
}

void
mr_system_count_restart(mr_system *sys, const char *name, uint64_t n)
{
	mr_restart_count *r = NULL;

	if (name == NULL)
		name = "supervisor";
	pthread_mutex_lock(&sys->restarts_mu);
	for (size_t i = 0; i < sys->nrestarts && r == NULL; i++)
		if (strncmp(sys->restarts[i].supervisor, name,
			    MR_SUP_NAME_MAX) == 0)
			r = &sys->restarts[i];
	if (r == NULL && sys->nrestarts < MR_SUP_NAMES_MAX) {
		r = &sys->restarts[sys->nrestarts++];
		snprintf(r->supervisor, sizeof(r->supervisor), "%s", name);
	}
	if (r == NULL)
		r = &sys->restarts[MR_SUP_NAMES_MAX];
	r->restarts += n;
	pthread_mutex_unlock(&sys->restarts_mu);
}


size_t
mr_system_restarts(mr_system *sys, mr_restart_count *out, size_t max)
{
	size_t n, k = 0;

	pthread_mutex_lock(&sys->restarts_mu);
	n = sys->nrestarts;
	for (size_t i = 0; i <= n && k < max; i++) {
		size_t j = i < n ? i : MR_SUP_NAMES_MAX;

		if (j == MR_SUP_NAMES_MAX && sys->restarts[j].restarts == 0)
			break;
		out[k++] = sys->restarts[j];
	}
	if (sys->restarts[MR_SUP_NAMES_MAX].restarts > 0)
		n++;
	pthread_mutex_unlock(&sys->restarts_mu);
	return n;
}

static void sup__job_next(mr_actor *self, struct sup *s);

/* Start the job: stop the running children of [lo, hi] from the top down;
 * then restart from \p restart_from (or exit, shutting down). */
static void
sup__job_start(mr_actor *self, struct sup *s, int lo, int hi,
	       int restart_from)
{
	if (s->job) {
		/* Already stopping (a shutdown over a restart): go lower. */
		if (lo < s->job_lo)
			s->job_lo = lo;
		return;
	}
	s->job          = true;
	s->job_lo       = lo;
	s->job_cur      = hi + 1;
	s->restart_from = restart_from;
	sup__job_next(self, s);
}

static void
sup__shutdown(mr_actor *self, struct sup *s, int reason)
{
	s->shutting_down = true;
	s->exit_reason   = reason;
	sup__job_start(self, s, 0, s->n - 1, s->n);
}

/* Start the children of [from, end) that are not running, in order. */
static void
sup__start_range(mr_actor *self, struct sup *s, int from, int end)
{
	int i;

	for (i = from; i < end; i++) {
		struct sup_retry r;

		if (s->c[i].pid != 0 || s->c[i].removed)
			continue;
		if (sup__start_child(self, &s->c[i]) == MR_OK)
			continue;
		r = (struct sup_retry){.from = i, .end = end};
		mr_cast(mr_actor_system(self), mr_self(self), SUP_RETRY, &r,
			sizeof(r));
		return;
	}
}

static void sup__child_exit(mr_actor *self, struct sup *s, int i, int reason);

static void
sup__job_done(mr_actor *self, struct sup *s)
{
	int i;

	s->job = false;
	if (s->shutting_down) {
		mr_exit(self, s->exit_reason);
		return;
	}
	sup__start_range(self, s, s->restart_from, s->n);
	for (i = 0; i < s->n && !s->job; i++) {
		if (s->c[i].pending) {
			s->c[i].pending = false;
			sup__child_exit(self, s, i, s->c[i].pending_reason);
		}
	}
}

static void
sup__job_next(mr_actor *self, struct sup *s)
{
	mr_system *sys = mr_actor_system(self);
	int        j;

	for (j = s->job_cur - 1; j >= s->job_lo; j--) {
		struct sup_child *c = &s->c[j];

		if (c->pid == 0)
			continue;
		s->job_cur = j;
		if (c->spec.shutdown_ms == 0) {
			mr_send_exit(sys, c->pid, MR_EXIT_KILL);
		} else {
			mr_send_exit(sys, c->pid, MR_EXIT_SHUTDOWN);
			if (c->spec.shutdown_ms != MR_SHUTDOWN_INFINITY)
				s->kill_timer = mr_send_after(
				    sys, mr_self(self), c->spec.shutdown_ms,
				    SUP_KILL, &c->pid, sizeof(c->pid));
		}
		return;
	}
	s->job_cur = -1;
	sup__job_done(self, s);
}

/* Child \p i exited with \p reason (not as part of a job). */
static void
sup__child_exit(mr_actor *self, struct sup *s, int i, int reason)
{
	struct sup_child *c = &s->c[i];
	bool              restart;

	c->pid = 0;
	switch (c->spec.restart) {
	case MR_PERMANENT:
		restart = true;
		break;
	case MR_TRANSIENT:
		restart = reason != MR_EXIT_NORMAL &&
			  reason != MR_EXIT_SHUTDOWN;
		break;
	default:
		restart    = false;
		c->removed = true;
		break;
	}
	if (!restart)
		return;
	if (!sup__add_restart(self, s)) {
		sup__shutdown(self, s, MR_EXIT_SHUTDOWN);
		return;
	}
	switch (s->strategy) {
	case MR_ONE_FOR_ONE:
		sup__start_range(self, s, i, i + 1);
		break;
	case MR_ONE_FOR_ALL:
		sup__job_start(self, s, 0, s->n - 1, 0);
		break;
	case MR_REST_FOR_ONE:
		sup__job_start(self, s, i + 1, s->n - 1, i);
		break;
	}
}

static void
sup__exit(mr_actor *self, struct sup *s, mr_pid pid, int reason)
{
	int i = sup__find(s, pid);

	if (i < 0) {
		/* From the parent: stop. From anyone else: ignored (OTP's
		 * "unexpected EXIT"). */
		if (pid == s->parent && reason != MR_EXIT_NORMAL &&
		    !s->shutting_down)
			sup__shutdown(self, s, reason);
		return;
	}
	if (s->job && i == s->job_cur) {
		s->c[i].pid = 0;
		if (s->kill_timer != 0)
			mr_cancel_timer(mr_actor_system(self), s->kill_timer);
		s->kill_timer = 0;
		if (s->c[i].spec.restart == MR_TEMPORARY)
			s->c[i].removed = true;
		sup__job_next(self, s);
		return;
	}
	if (s->job) {
		s->c[i].pid = 0;
		if (s->c[i].spec.restart == MR_TEMPORARY)
			s->c[i].removed = true;
		/* Below the job's range (rest_for_one): its own failure. */
		if (!s->shutting_down && i < s->restart_from) {
			s->c[i].pending        = true;
			s->c[i].pending_reason = reason;
		}
		return;
	}
	sup__child_exit(self, s, i, reason);
}

static int
sup__info(mr_actor *self, void *state, const mr_info *info)
{
	struct sup *s = state;

	if (info->kind == MR_INFO_EXIT) {
		sup__exit(self, s, info->pid, info->reason);
	} else if (info->kind == MR_INFO_TIMER &&
		   info->msg->type == SUP_KILL &&
		   info->msg->len == sizeof(mr_pid)) {
		mr_pid pid;

		memcpy(&pid, info->msg->data, sizeof(pid));
		if (info->ref == s->kill_timer) {
			s->kill_timer = 0;
			mr_send_exit(mr_actor_system(self), pid, MR_EXIT_KILL);
		}
	}
	return 0;
}

static int
sup__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct sup      *s = state;
	struct sup_retry r;

	if (msg->type != SUP_RETRY || msg->len != sizeof(r) || s->job)
		return 0;
	memcpy(&r, msg->data, sizeof(r));
	if (s->c[r.from].pid != 0 || s->c[r.from].removed)
		return 0;
	if (!sup__add_restart(self, s)) {
		sup__shutdown(self, s, MR_EXIT_SHUTDOWN);
		return 0;
	}
	sup__start_range(self, s, r.from, r.end);
	return 0;
}

static int
sup__call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	struct sup *s = state;
	int         i;

	if (msg->type != SUP_WHICH) {
		mr_reply_error(mr_actor_system(self), from, MR_ENOTSUP);
		return 0;
	}
	for (i = 0; i < s->n; i++) {
		if (strlen(s->c[i].spec.id) == msg->len &&
		    memcmp(s->c[i].spec.id, msg->data, msg->len) == 0) {
			mr_reply(mr_actor_system(self), from, &s->c[i].pid,
				 sizeof(mr_pid));
			return 0;
		}
	}
	mr_reply_error(mr_actor_system(self), from, MR_ENOENT);
	return 0;
}

static void
sup__free(struct sup *s)
{
	if (s == NULL)
		return;
	free(s->c);
	free(s->restarts);
	free(s);
}

static void
sup__terminate(mr_actor *self, void *state, int reason)
{
	sup__free(state);
}

static int
sup__init(mr_actor *self, void *arg, void **state)
{
	const struct sup_start_arg *sa   = arg;
	const mr_sup_spec          *spec = sa->spec;
	struct sup                 *s;
	int                         i, j, rv;

	if (spec->nchildren > 1000000)
		return MR_EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return MR_ENOMEM;
	s->strategy  = spec->strategy;
	s->intensity = spec->intensity;
	s->period_ms = spec->period_ms;
	s->name      = spec->name;
	mr_system_count_restart(mr_actor_system(self), s->name, 0);
	if (s->intensity == 0 && s->period_ms == 0) {
		s->intensity = 1; /* OTP's defaults */
		s->period_ms = 5000;
	}
	s->parent   = sa->parent;
	s->n        = (int)spec->nchildren;
	s->c        = calloc(spec->nchildren + 1, sizeof(*s->c));
	s->restarts_cap = 8;
	s->restarts     = calloc(s->restarts_cap, sizeof(uint64_t));
	s->job_cur  = -1;
	if (s->c == NULL || s->restarts == NULL) {
		sup__free(s);
		return MR_ENOMEM;
	}
	for (i = 0; i < s->n; i++) {
		s->c[i].spec = spec->children[i];
		if (s->c[i].spec.id == NULL)
			s->c[i].spec.id = "";
	}
	mr_trap_exit(self, true);
	for (i = 0; i < s->n; i++) {
		rv = sup__start_child(self, &s->c[i]);
		if (rv == MR_OK)
			continue;
		/* Stop the ones started, the last first (not waited for). */
		for (j = i - 1; j >= 0; j--)
			mr_send_exit(mr_actor_system(self), s->c[j].pid,
				     MR_EXIT_SHUTDOWN);
		sup__free(s);
		return rv;
	}
	*state = s;
	return MR_OK;
}

static const mr_behaviour sup__behaviour = {
	.name        = "supervisor",
	.init        = sup__init,
	.handle_cast = sup__cast,
	.handle_call = sup__call,
	.handle_info = sup__info,
	.terminate   = sup__terminate,
};

int
mr_supervisor_start(mr_system *sys, const mr_sup_spec *spec, mr_pid *pid)
{
	struct mr_actor     *cur = mri_current();
	struct sup_start_arg sa  = {.spec = spec,
				    .parent = cur != NULL ? cur->pid : 0};
	mr_spawn_opts        o   = {.trap_exit = true};

	if (spec == NULL || (spec->nchildren > 0 && spec->children == NULL))
		return MR_EINVAL;
	return mr_spawn(sys, &sup__behaviour, &sa, &o, pid);
}

int
mr_supervisor_start_link(mr_actor *sup, void *arg, mr_pid *child)
{
	struct sup_start_arg sa = {.spec = arg, .parent = mr_self(sup)};
	mr_spawn_opts        o  = {.trap_exit = true, .link = mr_self(sup)};

	if (arg == NULL)
		return MR_EINVAL;
	return mr_spawn(mr_actor_system(sup), &sup__behaviour, &sa, &o,
			child);
}

int
mr_supervisor_which(mr_system *sys, mr_pid sup, const char *id,
		    mr_pid *child)
{
	void  *reply = NULL;
	size_t len   = 0;
	int    rv;

	*child = 0;
	rv = mr_call(sys, sup, SUP_WHICH, id, strlen(id), 5000, &reply, &len);
	if (rv == MR_OK && len == sizeof(mr_pid))
		memcpy(child, reply, sizeof(mr_pid));
	free(reply);
	return rv;
}
