/*
 * The test kit (include/mailroom/testkit.h): the probe, an actor whose
 * callbacks append what they get to a queue the test reads, and seed
 * exploration. The probe's struct is shared by the test and the actor,
 * counted: the actor's terminate and mr_probe_free each drop one.
 *
 * Waiting on a deterministic system is driving it, as mr_call does there:
 * step while something is runnable, else fire the next timer due before
 * the deadline, else move the clock to the deadline.
 */
#include "mailroom/testkit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_internal.h"
#include "core/clock.h"

#define PROBE__MONITOR 0xffff0101u /* the probe's own: monitor a pid */

struct probe__item {
	struct probe__item *next;
	mr_probe_msg       *m;
};

struct mr_probe {
	mr_system          *sys;
	mr_pid              pid;
	pthread_mutex_t     mu;
	pthread_cond_t      cv;
	struct probe__item *head, *tail;
	int                 refs; /* the test's and the actor's */
	bool                gone; /* the actor ended */
	uint64_t            asked, monitoring; /* mr_probe_monitor's */
};

static void
probe__rele(mr_probe *p)
{
	struct probe__item *it;
	int                 left;

	pthread_mutex_lock(&p->mu);
	left = --p->refs;
	pthread_mutex_unlock(&p->mu);
	if (left > 0)
		return;
	while ((it = p->head) != NULL) {
		p->head = it->next;
		free(it->m);
		free(it);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* Keep \p m (taken) at the end of the queue. */
static int
probe__keep(mr_probe *p, mr_probe_msg *m)
{
	struct probe__item *it = malloc(sizeof(*it));

	if (it == NULL) {
		free(m);
		return MR_ENOMEM;
	}
	it->next = NULL;
	it->m    = m;
	m->at    = mr_system_now(p->sys);
	pthread_mutex_lock(&p->mu);
	if (p->tail != NULL)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return MR_OK;
}

static mr_probe_msg *
probe__msg(mr_probe_kind kind, const void *data, size_t len)
{
	mr_probe_msg *m = calloc(1, sizeof(*m) + len + 1);

	if (m == NULL)
		return NULL;
	m->kind = kind;
	m->len  = len;
	if (len > 0)
		memcpy(m->data, data, len);
	return m;
}

/* ---- the probe actor -------------------------------------------------- */

static int
probe__init(mr_actor *self, void *arg, void **state)
{
	mr_trap_exit(self, true);
	*state = arg;
	return MR_OK;
}

static int
probe__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	mr_probe     *p = state;
	mr_probe_msg *m;
	mr_pid        target;

	if (msg->type == PROBE__MONITOR && msg->len == sizeof(target)) {
		memcpy(&target, msg->data, sizeof(target));
		if (mr_monitor(self, target) == 0)
			return MR_ENOMEM;
		pthread_mutex_lock(&p->mu);
		p->monitoring++;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		return MR_OK;
	}
	if ((m = probe__msg(MR_PROBE_CAST, msg->data, msg->len)) == NULL)
		return MR_ENOMEM;
	m->type = msg->type;
	m->from = msg->from;
	return probe__keep(p, m);
}

static int
probe__call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	mr_probe_msg *m = probe__msg(MR_PROBE_CALL, msg->data, msg->len);

	(void)self;
	if (m == NULL)
		return MR_ENOMEM;
	m->type = msg->type;
	m->call = from;
	return probe__keep(state, m);
}

static int
probe__info(mr_actor *self, void *state, const mr_info *info)
{
	mr_probe_msg *m;

	(void)self;
	m = info->msg != NULL ? probe__msg(MR_PROBE_INFO, info->msg->data,
					   info->msg->len)
			      : probe__msg(MR_PROBE_INFO, NULL, 0);
	if (m == NULL)
		return MR_ENOMEM;
	m->info   = info->kind;
	m->type   = info->msg != NULL ? info->msg->type : 0;
	m->pid    = info->pid;
	m->reason = info->reason;
	return probe__keep(state, m);
}

static void
probe__terminate(mr_actor *self, void *state, int reason)
{
	mr_probe *p = state;

	(void)self;
	(void)reason;
	pthread_mutex_lock(&p->mu);
	p->gone = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	probe__rele(p);
}

static const mr_behaviour probe__b = {
	.name        = "probe",
	.init        = probe__init,
	.handle_cast = probe__cast,
	.handle_call = probe__call,
	.handle_info = probe__info,
	.terminate   = probe__terminate,
};

/* ---- the test's side -------------------------------------------------- */

int
mr_probe_new(mr_system *sys, mr_probe **out)
{
	mr_probe *p;
	int       rc;

	if (sys == NULL || out == NULL)
		return MR_EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return MR_ENOMEM;
	p->sys  = sys;
	p->refs = 2;
	pthread_mutex_init(&p->mu, NULL);
	mri_cond_init(&p->cv);
	if ((rc = mr_spawn(sys, &probe__b, p, NULL, &p->pid)) != MR_OK) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return rc;
	}
	*out = p;
	return MR_OK;
}

mr_pid
mr_probe_pid(const mr_probe *p)
{
	return p->pid;
}

/* Take the queue's first into *out, if any. Under p->mu. */
static bool
probe__take(mr_probe *p, mr_probe_msg **out)
{
	struct probe__item *it = p->head;

	if (it == NULL)
		return false;
	if ((p->head = it->next) == NULL)
		p->tail = NULL;
	*out = it->m;
	free(it);
	return true;
}

/* Deterministic: run the system until the probe has something, or the
 * virtual deadline. */
static void
probe__drive(mr_probe *p, uint64_t deadline)
{
	mr_system *sys = p->sys;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->head != NULL || p->gone) {
			pthread_mutex_unlock(&p->mu);
			return;
		}
		pthread_mutex_unlock(&p->mu);
		if (mr_system_step(sys))
			continue;
		if (!mri_timers_fire_next(sys, deadline)) {
			if (sys->vnow < deadline)
				sys->vnow = deadline;
			return;
		}
	}
}

int
mr_probe_next(mr_probe *p, int timeout_ms, mr_probe_msg **out)
{
	uint64_t t = timeout_ms < 0 ? 0 : (uint64_t)timeout_ms;
	uint64_t deadline;
	int      rc;

	*out = NULL;
	if (p->sys->threads == 0)
		probe__drive(p, p->sys->vnow + t);
	deadline = mri_deadline_in(t);
	pthread_mutex_lock(&p->mu);
	while (p->head == NULL && !p->gone && p->sys->threads > 0 &&
	       mri_cond_wait_until(&p->cv, &p->mu, deadline) == 0)
		;
	rc = probe__take(p, out) ? MR_OK : p->gone ? MR_ECLOSED : MR_ETIMEDOUT;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int
mr_probe_expect_cast(mr_probe *p, uint32_t type, int timeout_ms,
		     void *data, size_t cap, size_t *len)
{
	mr_probe_msg *m;
	int           rc = mr_probe_next(p, timeout_ms, &m);

	if (rc != MR_OK)
		return rc;
	if (m->kind != MR_PROBE_CAST || m->type != type) {
		free(m);
		return MR_EPROTO;
	}
	if (data != NULL)
		memcpy(data, m->data, m->len < cap ? m->len : cap);
	if (len != NULL)
		*len = m->len;
	free(m);
	return MR_OK;
}

int
mr_probe_expect_nothing(mr_probe *p, int ms)
{
	mr_probe_msg *m;
	int           rc = mr_probe_next(p, ms, &m);

	if (rc == MR_OK) {
		free(m);
		return MR_EPROTO;
	}
	return MR_OK;
}

int
mr_probe_monitor(mr_probe *p, mr_pid target)
{
	uint64_t want = ++p->asked;
	int      rc   = mr_cast(p->sys, p->pid, PROBE__MONITOR, &target,
				sizeof(target));

	if (rc != MR_OK)
		return rc == MR_ENOENT ? MR_ENOENT : rc;
	// In place when this returns: the probe took the request.
	pthread_mutex_lock(&p->mu);
	while (p->monitoring < want && !p->gone) {
		if (p->sys->threads > 0) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		if (!mr_system_step(p->sys)) {
			pthread_mutex_lock(&p->mu);
			break;
		}
		pthread_mutex_lock(&p->mu);
	}
	rc = p->monitoring >= want ? MR_OK : MR_ENOENT;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void
mr_probe_free(mr_probe *p)
{
	if (p == NULL)
		return;
	// The actor's end drops its hold (at once, or when the system runs
	// it, or at mr_system_free).
	mr_send_exit(p->sys, p->pid, MR_EXIT_KILL);
	probe__rele(p);
}

/* ---- exploring seeds -------------------------------------------------- */

int
mr_explore(uint64_t first, unsigned n, mr_scenario_fn fn, void *arg,
	   uint64_t *failed)
{
	for (unsigned i = 0; i < n; i++) {
		mr_system *sys;
		int        rc;

		if ((rc = mr_system_new(&sys, 0, first + i)) != MR_OK) {
			if (failed != NULL)
				*failed = first + i;
			return rc;
		}
		rc = fn(sys, first + i, arg);
		mr_system_free(sys);
		if (rc != 0) {
			if (failed != NULL)
				*failed = first + i;
			return rc;
		}
	}
	return 0;
}
