/*
 * Timers: send_after and cancel. A binary min-heap on the due time under
 * one mutex; in a threaded system the timer thread ("mr:timer") sleeps on
 * a monotonic condition until the earliest is due and delivers it; in a
 * deterministic one mr_system_advance (and a call's wait) fires them on
 * the virtual clock, one at a time, in due order (ties by ref: creation
 * order). Cancel is a linear search of the heap: O(timers).
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_internal.h"
#include "core/clock.h"

static bool
timer__less(const struct mri_timer *x, const struct mri_timer *y)
{
	return x->due < y->due || (x->due == y->due && x->ref < y->ref);
}

static void
timer__swap(struct mri_timer *h, size_t i, size_t j)
{
	struct mri_timer t = h[i];

	h[i] = h[j];
	h[j] = t;
}

static void
timer__up(struct mri_timer *h, size_t i)
{
	while (i > 0 && timer__less(&h[i], &h[(i - 1) / 2])) {
		timer__swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
timer__down(struct mri_timer *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < n && timer__less(&h[l], &h[m]))
			m = l;
		if (r < n && timer__less(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		timer__swap(h, i, m);
		i = m;
	}
}

/* Remove heap entry \p i (timer_mu held). */
static struct mri_timer
timer__remove(mr_system *sys, size_t i)
{
	struct mri_timer t = sys->heap[i];

	sys->heap[i] = sys->heap[--sys->nheap];
	if (i < sys->nheap) {
		timer__down(sys->heap, sys->nheap, i);
		timer__up(sys->heap, i);
	}
	return t;
}

static void
timer__deliver(mr_system *sys, struct mri_timer *t)
{
	struct mr_actor *a = mri_lookup(sys, t->to);

	if (a == NULL) {
		mri_msg_free(t->m);
		return;
	}
	mri_deliver(a, t->m);
	mri_actor_rele(a);
}

mr_ref
mr_send_after(mr_system *sys, mr_pid to, uint64_t ms, uint32_t type,
	      const void *data, size_t len)
{
	struct mr_actor *cur = mri_current();
	struct mri_msg  *m   = mri_msg_new(len);
	struct mri_timer t;
	uint64_t         now;

	if (m == NULL)
		return 0;
	m->kind = MRI_M_TIMER;
	m->type = type;
	m->from = cur != NULL ? cur->pid : 0;
	if (len > 0)
		memcpy(m->data, data, len);
	t.ref = atomic_fetch_add(&sys->next_ref, 1);
	t.to  = to;
	t.m   = m;
	m->aux = t.ref;
	now    = sys->threads > 0 ? mri_mono_ms() : 0;
	pthread_mutex_lock(&sys->timer_mu);
	if (sys->timer_quit) { /* the system is stopping */
		pthread_mutex_unlock(&sys->timer_mu);
		mri_msg_free(m);
		return 0;
	}
	if (sys->threads == 0)
		now = sys->vnow;
	t.due = ms > UINT64_MAX - now ? UINT64_MAX : now + ms; /* saturate */
	if (sys->nheap == sys->heapcap) {
		size_t            cap = sys->heapcap ? sys->heapcap * 2 : 16;
		struct mri_timer *h   = realloc(sys->heap, cap * sizeof(*h));

		if (h == NULL) {
			pthread_mutex_unlock(&sys->timer_mu);
			mri_msg_free(m);
			return 0;
		}
		sys->heap    = h;
		sys->heapcap = cap;
	}
	sys->heap[sys->nheap] = t;
	timer__up(sys->heap, sys->nheap);
	sys->nheap++;
	if (sys->heap[0].ref == t.ref)
		pthread_cond_signal(&sys->timer_cv);
	pthread_mutex_unlock(&sys->timer_mu);
	return t.ref;
}

int
mr_cancel_timer(mr_system *sys, mr_ref ref)
{
	struct mri_timer t;
	size_t           i;

	pthread_mutex_lock(&sys->timer_mu);
	for (i = 0; i < sys->nheap; i++) {
		if (sys->heap[i].ref == ref)
			break;
	}
	if (i == sys->nheap) {
		pthread_mutex_unlock(&sys->timer_mu);
		return MR_ENOENT;
	}
	t = timer__remove(sys, i);
	pthread_mutex_unlock(&sys->timer_mu);
	mri_msg_free(t.m);
	return MR_OK;
}

static void *
timer__thread(void *arg)
{
	mr_system       *sys = arg;
	struct mri_timer t;

	pthread_mutex_lock(&sys->timer_mu);
	while (!sys->timer_quit) {
		if (sys->nheap == 0) {
			pthread_cond_wait(&sys->timer_cv, &sys->timer_mu);
			continue;
		}
		if (sys->heap[0].due > mri_mono_ms()) {
			mri_cond_wait_until(&sys->timer_cv, &sys->timer_mu,
					    sys->heap[0].due);
			continue;
		}
		t = timer__remove(sys, 0);
		pthread_mutex_unlock(&sys->timer_mu);
		timer__deliver(sys, &t);
		pthread_mutex_lock(&sys->timer_mu);
	}
	pthread_mutex_unlock(&sys->timer_mu);
	return NULL;
}

int
mri_timers_start(mr_system *sys)
{
	if (pthread_create(&sys->timer_thread, NULL, timer__thread, sys) != 0)
		return MR_ENOMEM;
	sys->timer_started = true;
	return MR_OK;
}

void
mri_timers_stop(mr_system *sys)
{
	pthread_mutex_lock(&sys->timer_mu);
	sys->timer_quit = true;
	pthread_cond_signal(&sys->timer_cv);
	pthread_mutex_unlock(&sys->timer_mu);
	if (sys->timer_started)
		pthread_join(sys->timer_thread, NULL);
	sys->timer_started = false;
	pthread_mutex_lock(&sys->timer_mu);
	while (sys->nheap > 0)
		mri_msg_free(sys->heap[--sys->nheap].m);
	pthread_mutex_unlock(&sys->timer_mu);
}

bool
mri_timers_fire_next(mr_system *sys, uint64_t until)
{
	struct mri_timer t;

	pthread_mutex_lock(&sys->timer_mu);
	if (sys->timer_quit || sys->nheap == 0 || sys->heap[0].due > until) {
		pthread_mutex_unlock(&sys->timer_mu);
		return false;
	}
	t = timer__remove(sys, 0);
	if (t.due > sys->vnow)
		sys->vnow = t.due;
	pthread_mutex_unlock(&sys->timer_mu);
	timer__deliver(sys, &t);
	return true;
}
