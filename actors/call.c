/*
 * Calls and replies, and names.
 *
 * A call is an entry in the system's table of calls in progress, keyed by
 * its id (the mr_from a handler answers). The caller owns the entry: it
 * adds it, waits, and removes it, whether answered or timed out; a reply
 * finds it under the table's lock, or finds nothing (the call is over) and
 * is dropped. So a late or second reply is harmless, and a from is a plain
 * value that any thread may hold. An external call (mr_call_external) has
 * no caller waiting: the reply that finds it takes it out of the table
 * and calls its function, outside the lock.
 *
 * In a deterministic system the caller (the driving thread) runs the
 * system until its reply arrives, moving the virtual clock to the next
 * timer when nothing is runnable, and to the deadline when no timer is left.
 *
 * Names: a chained hash of name to pid under one mutex; an actor has at
 * most one name, dropped when it exits.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_internal.h"
#include "core/clock.h"

static size_t
call__bucket(uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 56) % MRI_CALL_BUCKETS;
}

static void call__unlink(mr_system *sys, struct mri_call *c);

/* Answer external call \p c, out of the table, and free it. */
static void
call__ext_done(struct mri_call *c, int err, const void *data, size_t len)
{
	c->ext(c->ext_arg, err, err == MR_OK ? data : NULL,
	       err == MR_OK ? len : 0);
	pthread_cond_destroy(&c->cv);
	free(c);
}

int
mri_call_finish(mr_system *sys, uint64_t id, int err, const void *data,
		size_t len)
{
	struct mri_call *c;
	void            *copy = NULL;
	int              rv   = MR_ENOENT;

	pthread_mutex_lock(&sys->calls_mu);
	for (c = sys->calls[call__bucket(id)]; c != NULL; c = c->next)
		if (c->id == id && !c->done && c->ext != NULL)
			break;
	if (c != NULL) {
		c->done = true;
		call__unlink(sys, c);
		pthread_mutex_unlock(&sys->calls_mu);
		call__ext_done(c, err, data, len);
		return MR_OK;
	}
	pthread_mutex_unlock(&sys->calls_mu);
	if (err == MR_OK && len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return MR_ENOMEM;
		memcpy(copy, data, len);
	}
	pthread_mutex_lock(&sys->calls_mu);
	for (c = sys->calls[call__bucket(id)]; c != NULL; c = c->next) {
		if (c->id != id || c->done)
			continue;
		c->done      = true;
		c->err       = err;
		c->reply     = copy;
		c->reply_len = err == MR_OK ? len : 0;
		copy         = NULL;
		pthread_cond_signal(&c->cv);
		rv = MR_OK;
		break;
	}
	pthread_mutex_unlock(&sys->calls_mu);
	free(copy);
	return rv;
}

int
mr_reply(mr_system *sys, mr_from from, const void *data, size_t len)
{
	return mri_call_finish(sys, from, MR_OK, data, len);
}

int
mr_reply_error(mr_system *sys, mr_from from, int err)
{
	return mri_call_finish(sys, from, err == MR_OK ? MR_EINTERNAL : err,
			       NULL, 0);
}

void
mri_calls_fail_callee(mr_system *sys, mr_pid callee, int err)
{
	struct mri_call *c, *next, *ext = NULL;
	size_t           b;

	pthread_mutex_lock(&sys->calls_mu);
	for (b = 0; b < MRI_CALL_BUCKETS; b++) {
		for (c = sys->calls[b]; c != NULL; c = next) {
			next = c->next;
			if (c->callee != callee || c->done)
				continue;
			c->done = true;
			c->err  = err;
			if (c->ext == NULL) {
				pthread_cond_signal(&c->cv);
				continue;
			}
			call__unlink(sys, c);
			c->next = ext;
			ext     = c;
		}
	}
	pthread_mutex_unlock(&sys->calls_mu);
	for (c = ext; c != NULL; c = next) {
		next = c->next;
		call__ext_done(c, err, NULL, 0);
	}
}

int
mr_call_external(mr_actor *self, mr_reply_fn done, void *arg,
		 mr_from *from)
{
	mr_system       *sys = self->sys;
	struct mri_call *c   = calloc(1, sizeof(*c));

	if (c == NULL || done == NULL) {
		free(c);
		return c == NULL ? MR_ENOMEM : MR_EINVAL;
	}
	mri_cond_init(&c->cv);
	c->callee      = self->pid;
	c->ext         = done;
	c->ext_arg     = arg;
	self->got_call = true;
	pthread_mutex_lock(&sys->calls_mu);
	c->id   = sys->next_call++;
	c->next = sys->calls[call__bucket(c->id)];
	sys->calls[call__bucket(c->id)] = c;
	pthread_mutex_unlock(&sys->calls_mu);
	*from = c->id;
	return MR_OK;
}

static void
call__unlink(mr_system *sys, struct mri_call *c)
{
	struct mri_call **pp = &sys->calls[call__bucket(c->id)];

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
}

/* Deterministic: run until \p c is done or the virtual deadline passes. */
static void
call__drive(mr_system *sys, struct mri_call *c, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
					   : sys->vnow + (uint64_t)timeout_ms;

	while (!c->done) {
		if (mr_system_step(sys))
			continue;
		if (!mri_timers_fire_next(sys, deadline)) {
			if (deadline == UINT64_MAX)
				break; /* nothing will ever answer */
			sys->vnow = deadline;
			break;
		}
	}
}

int
mr_call(mr_system *sys, mr_pid to, uint32_t type, const void *data,
	size_t len, int timeout_ms, void **reply, size_t *reply_len)
{
	struct mr_actor *cur = mri_current();
	struct mri_call *c;
	struct mri_msg  *m;
	uint64_t         deadline;
	int              rv;

	if (reply != NULL)
		*reply = NULL;
	if (reply_len != NULL)
		*reply_len = 0;
	if (sys->threads == 0 && cur != NULL)
		return MR_ENOTSUP;
	c = calloc(1, sizeof(*c));
	m = mri_msg_new(len);
	if (c == NULL || m == NULL) {
		free(c);
		free(m);
		return MR_ENOMEM;
	}
	mri_cond_init(&c->cv);
	c->callee = to;
	m->kind   = MRI_M_CALL;
	m->type   = type;
	if (len > 0)
		memcpy(m->data, data, len);
	pthread_mutex_lock(&sys->calls_mu);
	c->id   = sys->next_call++;
	m->aux  = c->id;
	c->next = sys->calls[call__bucket(c->id)];
	sys->calls[call__bucket(c->id)] = c;
	pthread_mutex_unlock(&sys->calls_mu);

	rv = mri_send_user(sys, to, m);
	if (rv != MR_OK) {
		mri_msg_free(m);
		pthread_mutex_lock(&sys->calls_mu);
		call__unlink(sys, c);
		pthread_mutex_unlock(&sys->calls_mu);
		pthread_cond_destroy(&c->cv);
		free(c);
		return rv;
	}
	if (sys->threads == 0)
		call__drive(sys, c, timeout_ms);
	else if (cur != NULL)
		mri_worker_flush(sys); /* what we were to run next may answer */
	deadline = timeout_ms < 0 ? UINT64_MAX
				  : mri_deadline_in((uint64_t)timeout_ms);
	pthread_mutex_lock(&sys->calls_mu);
	while (!c->done && sys->threads > 0) {
		if (deadline == UINT64_MAX)
			pthread_cond_wait(&c->cv, &sys->calls_mu);
		else if (mri_cond_wait_until(&c->cv, &sys->calls_mu,
					     deadline) != 0)
			break;
	}
	call__unlink(sys, c);
	pthread_mutex_unlock(&sys->calls_mu);
	rv = c->done ? c->err : MR_ETIMEDOUT;
	if (rv == MR_OK && reply != NULL) {
		*reply = c->reply;
		c->reply = NULL;
	}
	if (rv == MR_OK && reply_len != NULL)
		*reply_len = c->reply_len;
	free(c->reply);
	pthread_cond_destroy(&c->cv);
	free(c);
	return rv;
}

/* ---- names ---------------------------------------------------------- */

static size_t
names__bucket(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return (size_t)(h % MRI_CALL_BUCKETS);
}

static struct mri_name **
names__find(mr_system *sys, const char *name)
{
	struct mri_name **pp = &sys->names[names__bucket(name)];

	while (*pp != NULL && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

int
mr_register(mr_system *sys, const char *name, mr_pid pid)
{
	struct mr_actor  *a;
	struct mri_name **pp, *n;
	size_t            len;
	int               rv = MR_OK;

	if (name == NULL || *name == '\0')
		return MR_EINVAL;
	len = strlen(name);
	a   = mri_lookup(sys, pid);
	if (a == NULL)
		return MR_ENOENT;
	n = malloc(sizeof(*n) + len + 1);
	if (n == NULL) {
		mri_actor_rele(a);
		return MR_ENOMEM;
	}
	memcpy(n->name, name, len + 1);
	n->pid = pid;
	pthread_mutex_lock(&sys->names_mu);
	pp = names__find(sys, name);
	if (*pp != NULL || a->name != NULL || a->dead) {
		rv = a->dead ? MR_ENOENT : MR_EEXIST;
	} else {
		a->name = strdup(name);
		if (a->name == NULL) {
			rv = MR_ENOMEM;
		} else {
			n->next = NULL;
			*pp     = n;
			n       = NULL;
		}
	}
	pthread_mutex_unlock(&sys->names_mu);
	free(n);
	mri_actor_rele(a);
	return rv;
}

mr_pid
mr_whereis(mr_system *sys, const char *name)
{
	struct mri_name **pp;
	mr_pid            pid = 0;

	if (name == NULL)
		return 0;
	pthread_mutex_lock(&sys->names_mu);
	pp = names__find(sys, name);
	if (*pp != NULL)
		pid = (*pp)->pid;
	pthread_mutex_unlock(&sys->names_mu);
	return pid;
}

/* With names_mu held. */
static int
names__remove(mr_system *sys, const char *name)
{
	struct mri_name **pp = names__find(sys, name);
	struct mri_name  *n  = *pp;
	struct mr_actor  *a;

	if (n == NULL)
		return MR_ENOENT;
	*pp = n->next;
	a   = mri_lookup(sys, n->pid);
	if (a != NULL) {
		free(a->name);
		a->name = NULL;
		mri_actor_rele(a);
	}
	free(n);
	return MR_OK;
}

int
mr_unregister(mr_system *sys, const char *name)
{
	int rv;

	if (name == NULL)
		return MR_EINVAL;
	pthread_mutex_lock(&sys->names_mu);
	rv = names__remove(sys, name);
	pthread_mutex_unlock(&sys->names_mu);
	return rv;
}

void
mri_names_drop(mr_system *sys, struct mr_actor *a)
{
	pthread_mutex_lock(&sys->names_mu);
	if (a->name != NULL) {
		struct mri_name **pp = names__find(sys, a->name);

		if (*pp != NULL && (*pp)->pid == a->pid) {
			struct mri_name *n = *pp;

			*pp = n->next;
			free(n);
		}
		free(a->name);
		a->name = NULL;
	}
	pthread_mutex_unlock(&sys->names_mu);
}

void
mri_calls_names_free(mr_system *sys)
{
	size_t b;

	for (b = 0; b < MRI_CALL_BUCKETS; b++) {
		while (sys->names[b] != NULL) {
			struct mri_name *n = sys->names[b];

			sys->names[b] = n->next;
			free(n);
		}
	}
}
