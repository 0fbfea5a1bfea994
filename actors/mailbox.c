/*
 * Messages and the mailbox: an intrusive multi-producer single-consumer
 * queue (Dmitry Vyukov's: a producer swaps the head, then links the old
 * head to its node; the one consumer walks from the tail), with a stub node
 * in the actor, and a count that bounds it and schedules the actor (see
 * actor_internal.h).
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_internal.h"

struct mri_msg *
mri_msg_new(size_t len)
{
	struct mri_msg *m = malloc(sizeof(*m) + len);

	if (m == NULL)
		return NULL;
	atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
	m->kind    = MRI_M_CAST;
	m->flags   = 0;
	m->reason  = 0;
	m->type    = 0;
	m->from    = 0;
	m->aux     = 0;
	m->ptr     = NULL;
	m->free_fn = NULL;
	m->len     = len;
	return m;
}

void
mri_msg_free(struct mri_msg *m)
{
	if (m == NULL)
		return;
	if ((m->flags & (MRI_MF_PTR | MRI_MF_TAKEN)) == MRI_MF_PTR &&
	    m->free_fn != NULL)
		m->free_fn(m->ptr);
	free(m);
}

void
mri_mbox_init(struct mr_actor *a)
{
	atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
	atomic_store_explicit(&a->head, &a->stub, memory_order_relaxed);
	a->tail = &a->stub;
	atomic_store_explicit(&a->count, 0, memory_order_relaxed);
}

static void
mailbox__push(struct mr_actor *a, struct mri_node *n)
{
	struct mri_node *prev;

	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	prev = atomic_exchange_explicit(&a->head, n, memory_order_acq_rel);
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* The consumer's pop. NULL when empty, or when a producer has swapped the
 * head but not linked its node yet (the worker tries again later). */
struct mri_msg *
mri_mbox_pop(struct mr_actor *a)
{
	struct mri_node *tail = a->tail;
	struct mri_node *next =
	    atomic_load_explicit(&tail->next, memory_order_acquire);

	if (tail == &a->stub) {
		if (next == NULL)
			return NULL;
		a->tail = next;
		tail    = next;
		next = atomic_load_explicit(&tail->next, memory_order_acquire);
	}
	if (next != NULL) {
		a->tail = next;
		return (struct mri_msg *)tail;
	}
	if (tail != atomic_load_explicit(&a->head, memory_order_acquire))
		return NULL;
	mailbox__push(a, &a->stub);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next != NULL) {
		a->tail = next;
		return (struct mri_msg *)tail;
	}
	return NULL;
}

/* Reserve room for one message: bounded for user messages while the
 * actor is alive, always for system messages. @returns the count before,
 * or UINT32_MAX when full. */
static uint32_t
mailbox__reserve(struct mr_actor *a, bool bounded)
{
	uint32_t n;

	if (!bounded || a->cap == 0)
		return atomic_fetch_add(&a->count, 1);
	n = atomic_load(&a->count);
	for (;;) {
		uint32_t limit = a->cap + atomic_load(&a->starting);

		if (n >= limit)
			return UINT32_MAX;
		if (atomic_compare_exchange_weak(&a->count, &n, n + 1))
			return n;
	}
}

int
mri_deliver(struct mr_actor *a, struct mri_msg *m)
{
	bool     user = m->kind == MRI_M_CAST || m->kind == MRI_M_CALL;
	uint32_t before;

	before = mailbox__reserve(a, user);
	if (before == UINT32_MAX) {
		mri_msg_free(m);
		return MR_EBUSY;
	}
	mailbox__push(a, &m->node);
	if (before == 0)
		mri_schedule(a->sys, a);
	return MR_OK;
}

int
mri_signal(mr_system *sys, mr_pid to, enum mri_kind kind, mr_pid from,
	   uint64_t aux, int reason)
{
	struct mr_actor *a = mri_lookup(sys, to);
	struct mri_msg  *m;

	if (a == NULL)
		return MR_ENOENT;
	m = mri_msg_new(0);
	if (m == NULL) {
		mri_actor_rele(a);
		return MR_ENOMEM;
	}
	m->kind   = (uint8_t)kind;
	m->from   = from;
	m->aux    = aux;
	m->reason = reason;
	mri_deliver(a, m);
	mri_actor_rele(a);
	return MR_OK;
}

/* Wait for room in \p a's mailbox (a non-actor sender, MR_OVERFLOW_BLOCK).
 * @returns true when there may be room, false when the actor is gone. */
static bool
mailbox__wait_room(mr_system *sys, struct mr_actor *a)
{
	bool ok;

	pthread_mutex_lock(&sys->space_mu);
	atomic_fetch_add(&a->blocked, 1);
	while (!a->dead && !atomic_load(&sys->stopping) &&
	       atomic_load(&a->count) >= a->cap + atomic_load(&a->starting))
		pthread_cond_wait(&sys->space_cv, &sys->space_mu);
	atomic_fetch_sub(&a->blocked, 1);
	ok = !a->dead && !atomic_load(&sys->stopping);
	pthread_mutex_unlock(&sys->space_mu);
	return ok;
}

/* Send a user message by the receiver's overflow policy. On MR_OK \p m
 * was delivered or (MR_OVERFLOW_DROP) freed; on an error it is still the
 * caller's. */
static int
mailbox__send(mr_system *sys, mr_pid to, struct mri_msg *m)
{
	struct mr_actor *a   = mri_lookup(sys, to);
	struct mr_actor *cur = mri_current();
	uint32_t         before;
	int              rv = MR_OK;

	if (a == NULL)
		return MR_ENOENT;
	m->from = cur != NULL ? cur->pid : 0;
	for (;;) {
		before = mailbox__reserve(a, true);
		if (before != UINT32_MAX) {
			mailbox__push(a, &m->node);
			if (before == 0)
				mri_schedule(sys, a);
			break;
		}
		if (a->overflow == MR_OVERFLOW_DROP) {
			mri_msg_free(m);
			break;
		}
		if (a->overflow != MR_OVERFLOW_BLOCK || cur != NULL ||
		    sys->threads == 0) {
			rv = MR_EBUSY;
			break;
		}
		if (!mailbox__wait_room(sys, a)) {
			rv = MR_ENOENT;
			break;
		}
	}
	mri_actor_rele(a);
	return rv;
}

int
mr_cast(mr_system *sys, mr_pid to, uint32_t type, const void *data,
	size_t len)
{
	struct mri_msg *m = mri_msg_new(len);
	int             rv;

	if (m == NULL)
		return MR_ENOMEM;
	m->type = type;
	if (len > 0)
		memcpy(m->data, data, len);
	rv = mailbox__send(sys, to, m);
	if (rv != MR_OK)
		mri_msg_free(m);
	return rv;
}

int
mr_cast_ptr(mr_system *sys, mr_pid to, uint32_t type, void *ptr,
	    void (*free_fn)(void *))
{
	struct mri_msg *m = mri_msg_new(0);
	int             rv;

	if (m == NULL)
		return MR_ENOMEM;
	m->type    = type;
	m->flags   = MRI_MF_PTR;
	m->ptr     = ptr;
	m->free_fn = free_fn;
	rv = mailbox__send(sys, to, m);
	if (rv != MR_OK)
		free(m); /* the caller still owns ptr */
	return rv;
}

/* For mr_call: a call message, by the same rules. */
int
mri_send_user(mr_system *sys, mr_pid to, struct mri_msg *m)
{
	return mailbox__send(sys, to, m);
}

void *
mr_msg_take(const mr_msg *msg)
{
	struct mri_msg *m =
	    (struct mri_msg *)((char *)msg - offsetof(struct mri_msg, view));

	m->flags |= MRI_MF_TAKEN;
	return m->ptr;
}
