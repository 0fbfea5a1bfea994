/*
 * Actors: spawn, running one message, exits, links, monitors, upgrades.
 *
 * Links and monitors are kept on both sides, each side changed only by its
 * own actor: mr_link adds the link here and sends a LINK signal there; an
 * actor that is gone answers the signals it finds in its mailbox (LINK with
 * an EXIT, MONITOR with a DOWN, both MR_EXIT_NOPROC), so a link or monitor
 * made just as its target exits is never lost. A DOWN is delivered only
 * while the monitor is still held here: after mr_demonitor none arrives.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_internal.h"

static _Thread_local struct mr_actor *actor__current;

struct mr_actor *
mri_current(void)
{
	return actor__current;
}

void
mri_set_current(struct mr_actor *a)
{
	actor__current = a;
}

mr_pid
mr_self(const mr_actor *self)
{
	return self->pid;
}

mr_system *
mr_actor_system(const mr_actor *self)
{
	return self->sys;
}

static int
actor__peer_add(struct mr_actor *a, uint8_t kind, mr_pid pid, mr_ref ref)
{
	struct mri_peers *p = a->peers;

	if (p == NULL || p->n == p->cap) {
		size_t cap = p == NULL ? 2 : p->cap * 2;

		p = realloc(p, sizeof(*p) + cap * sizeof(p->v[0]));
		if (p == NULL)
			return MR_ENOMEM;
		if (a->peers == NULL)
			p->n = 0;
		p->cap   = cap;
		a->peers = p;
	}
	p->v[p->n].kind = kind;
	p->v[p->n].pid  = pid;
	p->v[p->n].ref  = ref;
	p->n++;
	return MR_OK;
}

/* Find the first peer of \p kind matching \p pid (0: any) and \p ref (0:
 * any); remove it when \p del. */
static bool
actor__peer_find(struct mr_actor *a, uint8_t kind, mr_pid pid, mr_ref ref,
		 bool del, struct mri_peer *out)
{
	struct mri_peers *p = a->peers;
	size_t            i;

	if (p == NULL)
		return false;
	for (i = 0; i < p->n; i++) {
		if (p->v[i].kind != kind || (pid != 0 && p->v[i].pid != pid) ||
		    (ref != 0 && p->v[i].ref != ref))
			continue;
		if (out != NULL)
			*out = p->v[i];
		if (del)
			p->v[i] = p->v[--p->n];
		return true;
	}
	return false;
}

void
mri_die(struct mr_actor *a, int reason)
{
	mr_system        *sys = a->sys;
	struct mri_peers *p;
	size_t            i;
	int               r = reason == MR_EXIT_KILL ? MR_EXIT_KILLED : reason;

	if (a->dead)
		return;
	a->dead = true;
	if (a->b != NULL && a->b->terminate != NULL)
		a->b->terminate(a, a->state, r);
	a->state = NULL;
	if (a->got_call)
		mri_calls_fail_callee(sys, a->pid, MR_ECLOSED);
	mri_names_drop(sys, a);
	p        = a->peers;
	a->peers = NULL;
	for (i = 0; p != NULL && i < p->n; i++) {
		if (atomic_load(&sys->stopping))
			break;
		switch (p->v[i].kind) {
		case MRI_P_LINK:
			mri_signal(sys, p->v[i].pid, MRI_M_EXIT, a->pid, 1, r);
			break;
		case MRI_P_WATCHER:
			mri_signal(sys, p->v[i].pid, MRI_M_DOWN, a->pid,
				   p->v[i].ref, r);
			break;
		case MRI_P_MONITOR:
			mri_signal(sys, p->v[i].pid, MRI_M_DEMONITOR, a->pid,
				   p->v[i].ref, 0);
			break;
		}
	}
	free(p);
	if (atomic_load(&a->blocked) > 0) {
		pthread_mutex_lock(&sys->space_mu);
		pthread_cond_broadcast(&sys->space_cv);
		pthread_mutex_unlock(&sys->space_mu);
	}
	mri_table_remove(sys, a);
}

void
mri_drop(mr_system *sys, struct mr_actor *a, struct mri_msg *m)
{
	switch (m->kind) {
	case MRI_M_CALL:
		mri_call_finish(sys, m->aux, MR_ENOENT, NULL, 0);
		break;
	case MRI_M_LINK:
		mri_signal(sys, m->from, MRI_M_EXIT, a->pid, 1,
			   MR_EXIT_NOPROC);
		break;
	case MRI_M_MONITOR:
		mri_signal(sys, m->from, MRI_M_DOWN, a->pid, m->aux,
			   MR_EXIT_NOPROC);
		break;
	default:
		break;
	}
	mri_msg_free(m);
}

static int
actor__info(struct mr_actor *a, const mr_info *info)
{
	if (a->b->handle_info == NULL)
		return 0;
	return a->b->handle_info(a, a->state, info);
}

/* An exit signal: m->aux is 1 when it comes from a linked actor's exit. */
static int
actor__exit_signal(struct mr_actor *a, struct mri_msg *m)
{
	mr_info info = {.kind = MR_INFO_EXIT, .pid = m->from,
			.reason = m->reason};

	if (m->aux == 1 &&
	    !actor__peer_find(a, MRI_P_LINK, m->from, 0, true, NULL))
		return 0; /* unlinked meanwhile */
	if (m->reason == MR_EXIT_KILL) {
		mri_die(a, MR_EXIT_KILLED);
		return 0;
	}
	if (a->trap)
		return actor__info(a, &info);
	if (m->reason != MR_EXIT_NORMAL)
		mri_die(a, m->reason);
	return 0;
}

static void
actor__upgrade(struct mr_actor *a, struct mri_msg *m)
{
	const mr_behaviour *nb = m->ptr;
	void               *ns = a->state;

	if (nb->code_change != NULL &&
	    nb->code_change(a, a->state, (void *)(uintptr_t)m->aux, &ns) != 0)
		return; /* refused: the old behaviour goes on */
	a->b     = nb;
	a->state = ns;
}

void
mri_dispatch(struct mr_actor *a, struct mri_msg *m)
{
	mr_info info;
	int     rv = 0;

	m->view.type = m->type;
	m->view.from = m->from;
	m->view.data = (m->flags & MRI_MF_PTR) ? m->ptr : (void *)m->data;
	m->view.len  = (m->flags & MRI_MF_PTR) ? 0 : m->len;
	switch (m->kind) {
	case MRI_M_CAST:
		if (a->b->handle_cast != NULL)
			rv = a->b->handle_cast(a, a->state, &m->view);
		break;
	case MRI_M_CALL:
		a->got_call = true;
		if (a->b->handle_call == NULL)
			mri_call_finish(a->sys, m->aux, MR_ENOTSUP, NULL, 0);
		else
			rv = a->b->handle_call(a, a->state, &m->view, m->aux);
		break;
	case MRI_M_TIMER:
		info = (mr_info){.kind = MR_INFO_TIMER, .ref = m->aux,
				 .msg = &m->view};
		rv   = actor__info(a, &info);
		break;
	case MRI_M_EXIT:
		rv = actor__exit_signal(a, m);
		break;
	case MRI_M_LINK:
		if (!actor__peer_find(a, MRI_P_LINK, m->from, 0, false, NULL))
			rv = actor__peer_add(a, MRI_P_LINK, m->from, 0);
		break;
	case MRI_M_UNLINK:
		actor__peer_find(a, MRI_P_LINK, m->from, 0, true, NULL);
		break;
	case MRI_M_MONITOR:
		rv = actor__peer_add(a, MRI_P_WATCHER, m->from, m->aux);
		break;
	case MRI_M_DEMONITOR:
		actor__peer_find(a, MRI_P_WATCHER, 0, m->aux, true, NULL);
		break;
	case MRI_M_DOWN:
		if (actor__peer_find(a, MRI_P_MONITOR, 0, m->aux, true, NULL)) {
			info = (mr_info){.kind = MR_INFO_DOWN, .pid = m->from,
					 .reason = m->reason, .ref = m->aux};
			rv   = actor__info(a, &info);
		}
		break;
	case MRI_M_UPGRADE:
		actor__upgrade(a, m);
		break;
	case MRI_M_STOP:
		mri_die(a, MR_EXIT_SHUTDOWN);
		break;
	}
	mri_msg_free(m);
	if (a->dead)
		return;
	if (rv != 0)
		mri_die(a, rv);
	else if (a->exiting)
		mri_die(a, a->exit_reason);
}

int
mr_spawn(mr_system *sys, const mr_behaviour *b, void *arg,
	 const mr_spawn_opts *opts, mr_pid *pid)
{
	static const mr_spawn_opts none;
	struct mr_actor           *a, *prev = mri_current();
	int                        rv;
	uint32_t                   left;

	if (sys == NULL || b == NULL)
		return MR_EINVAL;
	if (opts == NULL)
		opts = &none;
	if (atomic_load(&sys->stopping))
		return MR_ESHUTDOWN;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return MR_ENOMEM;
	mri_mbox_init(a);
	a->sys      = sys;
	a->b        = b;
	a->cap      = opts->mailbox_max;
	a->overflow = (uint8_t)opts->overflow;
	a->trap     = opts->trap_exit;
	atomic_store(&a->refs, 1); /* ours, until the end of spawn */
	atomic_store(&a->count, 1); /* the phantom: not run before init */
	atomic_store(&a->starting, 1);
	rv = mri_table_add(sys, a);
	if (rv != MR_OK) {
		free(a);
		return rv;
	}
	if (opts->link != 0) {
		rv = actor__peer_add(a, MRI_P_LINK, opts->link, 0);
		if (rv == MR_OK && prev != NULL && prev->pid == opts->link)
			rv = actor__peer_add(prev, MRI_P_LINK, a->pid, 0);
		else if (rv == MR_OK)
			rv = mri_signal(sys, opts->link, MRI_M_LINK, a->pid, 0,
					0);
		if (rv != MR_OK) {
			a->b = NULL; /* no init, no terminate */
			mri_die(a, rv == MR_ENOENT ? MR_EXIT_NOPROC : rv);
			goto out;
		}
	}
	mri_set_current(a);
	rv = b->init != NULL ? b->init(a, arg, &a->state) : 0;
	mri_set_current(prev);
	if (rv != 0) {
		a->b = NULL; /* init failed: terminate is not called */
		/* A spawning actor linked to it hears of it by rv alone. */
		if (prev != NULL && prev->pid == opts->link) {
			actor__peer_find(prev, MRI_P_LINK, a->pid, 0, true,
					 NULL);
			actor__peer_find(a, MRI_P_LINK, prev->pid, 0, true,
					 NULL);
		}
		mri_die(a, rv);
	} else if (a->exiting) {
		mri_set_current(a);
		mri_die(a, a->exit_reason);
		mri_set_current(prev);
	}
out:
	if (rv == MR_OK && pid != NULL)
		*pid = a->pid;
	atomic_store(&a->starting, 0);
	left = atomic_fetch_sub(&a->count, 1) - 1;
	if (left > 0)
		mri_schedule(sys, a);
	mri_actor_rele(a);
	return rv;
}

void
mr_exit(mr_actor *self, int reason)
{
	self->exiting     = true;
	self->exit_reason = reason;
}

void
mr_trap_exit(mr_actor *self, bool on)
{
	self->trap = on;
}

int
mr_send_exit(mr_system *sys, mr_pid to, int reason)
{
	struct mr_actor *cur = mri_current();
	struct mr_actor *a;
	struct mri_msg  *m;

	if (reason != MR_EXIT_KILL)
		return mri_signal(sys, to, MRI_M_EXIT, cur ? cur->pid : 0, 0,
				  reason);
	a = mri_lookup(sys, to);
	if (a == NULL)
		return MR_ENOENT;
	atomic_store_explicit(&a->kill, true, memory_order_release);
	m = mri_msg_new(0); /* to have it scheduled */
	if (m != NULL) {
		m->kind   = MRI_M_EXIT;
		m->reason = MR_EXIT_KILL;
		m->from   = cur ? cur->pid : 0;
		mri_deliver(a, m);
	}
	mri_actor_rele(a);
	return MR_OK;
}

int
mr_actor_upgrade(mr_system *sys, mr_pid pid, const mr_behaviour *b,
		 void *extra)
{
	struct mr_actor *a;
	struct mri_msg  *m;

	if (b == NULL)
		return MR_EINVAL;
	a = mri_lookup(sys, pid);
	if (a == NULL)
		return MR_ENOENT;
	m = mri_msg_new(0);
	if (m == NULL) {
		mri_actor_rele(a);
		return MR_ENOMEM;
	}
	m->kind = MRI_M_UPGRADE;
	m->ptr  = (void *)b;
	m->aux  = (uintptr_t)extra;
	mri_deliver(a, m);
	mri_actor_rele(a);
	return MR_OK;
}

int
mr_link(mr_actor *self, mr_pid other)
{
	int rv;

	if (other == self->pid ||
	    actor__peer_find(self, MRI_P_LINK, other, 0, false, NULL))
		return MR_OK;
	rv = actor__peer_add(self, MRI_P_LINK, other, 0);
	if (rv != MR_OK)
		return rv;
	if (mri_signal(self->sys, other, MRI_M_LINK, self->pid, 0, 0) ==
	    MR_ENOENT)
		mri_signal(self->sys, self->pid, MRI_M_EXIT, other, 1,
			   MR_EXIT_NOPROC);
	return MR_OK;
}

void
mr_unlink(mr_actor *self, mr_pid other)
{
	if (actor__peer_find(self, MRI_P_LINK, other, 0, true, NULL))
		mri_signal(self->sys, other, MRI_M_UNLINK, self->pid, 0, 0);
}

mr_ref
mr_monitor(mr_actor *self, mr_pid target)
{
	mr_ref ref = atomic_fetch_add(&self->sys->next_ref, 1);

	if (actor__peer_add(self, MRI_P_MONITOR, target, ref) != MR_OK)
		return 0;
	if (mri_signal(self->sys, target, MRI_M_MONITOR, self->pid, ref, 0) ==
	    MR_ENOENT)
		mri_signal(self->sys, self->pid, MRI_M_DOWN, target, ref,
			   MR_EXIT_NOPROC);
	return ref;
}

void
mr_demonitor(mr_actor *self, mr_ref ref)
{
	struct mri_peer p;

	if (actor__peer_find(self, MRI_P_MONITOR, 0, ref, true, &p))
		mri_signal(self->sys, p.pid, MRI_M_DEMONITOR, self->pid, ref,
			   0);
}
