/*
 * The system: the pid table, the run queue and its workers, and the
 * deterministic scheduler (threads == 0).
 *
 * The pid table is an array of slots in chunks allocated on demand (never
 * moved, freed with the system); a pid is (generation << 32 | slot + 1),
 * and a slot's generation grows each time it is reused, so a pid names one
 * actor ever. A look-up takes the slot's stripe lock, checks the
 * generation and takes a reference.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/actor_internal.h"
#include "core/clock.h"

static struct mri_slot *
system__slot(mr_system *sys, uint32_t idx)
{
	return &sys->chunk[idx >> MRI_CHUNK_BITS]
			  [idx & ((1u << MRI_CHUNK_BITS) - 1)];
}

struct mr_actor *
mri_lookup(mr_system *sys, mr_pid pid)
{
	uint32_t         idx = (uint32_t)pid;
	uint32_t         gen = (uint32_t)(pid >> 32);
	struct mr_actor *a   = NULL;
	struct mri_slot *s;

	if (idx == 0 || idx > MRI_CHUNKS << MRI_CHUNK_BITS)
		return NULL;
	idx--;
	pthread_mutex_lock(&sys->stripe[idx % MRI_TABLE_STRIPE]);
	if (idx < atomic_load_explicit(&sys->nslots, memory_order_acquire)) {
		s = system__slot(sys, idx);
		if (s->gen == gen && s->a != NULL) {
			a = s->a;
			atomic_fetch_add_explicit(&a->refs, 1,
						  memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&sys->stripe[idx % MRI_TABLE_STRIPE]);
	return a;
}

int
mri_table_add(mr_system *sys, struct mr_actor *a)
{
	uint32_t         idx;
	struct mri_slot *s;

	pthread_mutex_lock(&sys->alloc_mu);
	if (sys->free_head != UINT32_MAX) {
		idx            = sys->free_head;
		s              = system__slot(sys, idx);
		sys->free_head = s->next_free;
	} else {
		idx = atomic_load_explicit(&sys->nslots, memory_order_relaxed);
		if (idx >= (uint32_t)MRI_CHUNKS << MRI_CHUNK_BITS) {
			pthread_mutex_unlock(&sys->alloc_mu);
			return MR_ENOMEM;
		}
		if (sys->chunk[idx >> MRI_CHUNK_BITS] == NULL) {
			sys->chunk[idx >> MRI_CHUNK_BITS] =
			    calloc(1u << MRI_CHUNK_BITS, sizeof(struct mri_slot));
			if (sys->chunk[idx >> MRI_CHUNK_BITS] == NULL) {
				pthread_mutex_unlock(&sys->alloc_mu);
				return MR_ENOMEM;
			}
		}
		s = system__slot(sys, idx);
		/* Readers check idx < nslots before they read the chunk. */
		atomic_store_explicit(&sys->nslots, idx + 1,
				      memory_order_release);
	}
	pthread_mutex_unlock(&sys->alloc_mu);

	pthread_mutex_lock(&sys->stripe[idx % MRI_TABLE_STRIPE]);
	s->gen++;
	s->a   = a;
	a->pid = ((uint64_t)s->gen << 32) | (idx + 1);
	pthread_mutex_unlock(&sys->stripe[idx % MRI_TABLE_STRIPE]);
	atomic_fetch_add(&a->refs, 1);
	atomic_fetch_add(&sys->live, 1);
	return MR_OK;
}

void
mri_table_remove(mr_system *sys, struct mr_actor *a)
{
	uint32_t         idx = (uint32_t)a->pid - 1;
	struct mri_slot *s   = system__slot(sys, idx);

	pthread_mutex_lock(&sys->stripe[idx % MRI_TABLE_STRIPE]);
	s->a = NULL;
	pthread_mutex_unlock(&sys->stripe[idx % MRI_TABLE_STRIPE]);
	pthread_mutex_lock(&sys->alloc_mu);
	s->next_free   = sys->free_head;
	sys->free_head = idx;
	pthread_mutex_unlock(&sys->alloc_mu);
	mri_actor_rele(a);
	if (atomic_fetch_sub(&sys->live, 1) == 1) {
		pthread_mutex_lock(&sys->rq_mu);
		pthread_cond_broadcast(&sys->live_cv);
		pthread_mutex_unlock(&sys->rq_mu);
	}
}

void
mri_actor_rele(struct mr_actor *a)
{
	if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(a->peers);
	free(a->name);
	free(a);
}

uint64_t
mri_rand(mr_system *sys)
{
	uint64_t x = sys->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sys->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A worker's own: the actor it runs next (Go's runnext). */
struct system__worker_ctx {
	mr_system       *sys;
	struct mr_actor *next;
	unsigned         streak; /* actors run from next in a row */
};

static _Thread_local struct system__worker_ctx *system__self;

/* Append \p a (referenced) to the shared run queue. */
static void
system__push(mr_system *sys, struct mr_actor *a)
{
	a->rq_next = NULL;
	if (sys->threads > 0)
		pthread_mutex_lock(&sys->rq_mu);
	if (sys->rq_tail != NULL)
		sys->rq_tail->rq_next = a;
	else
		sys->rq_head = a;
	sys->rq_tail = a;
	if (sys->threads == 0)
		return;
	if (sys->idle > 0)
		pthread_cond_signal(&sys->rq_cv);
	pthread_mutex_unlock(&sys->rq_mu);
}

/* Deterministic: into the array the seed picks from (or, out of memory,
 * the list, which step runs in order). */
static void
system__push_det(mr_system *sys, struct mr_actor *a)
{
	if (sys->runn == sys->runcap) {
		size_t            cap = sys->runcap ? sys->runcap * 2 : 64;
		struct mr_actor **v   = realloc(sys->runv, cap * sizeof(*v));

		if (v != NULL) {
			sys->runv   = v;
			sys->runcap = cap;
		}
	}
	if (sys->runn < sys->runcap)
		sys->runv[sys->runn++] = a;
	else
		system__push(sys, a);
}

/* An actor made runnable by a send. On a worker of this system it is run
 * next by that worker, without the run queue's lock (the one it displaces
 * goes to the shared queue); elsewhere it joins the shared queue. */
void
mri_schedule(mr_system *sys, struct mr_actor *a)
{
	struct system__worker_ctx *w = system__self;

	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
	if (sys->threads == 0) {
		system__push_det(sys, a);
		return;
	}
	/* Kept only while no worker idles: an idle one should take it. */
	if (w != NULL && w->sys == sys &&
	    atomic_load_explicit(&sys->idle, memory_order_relaxed) == 0) {
		struct mr_actor *old = w->next;

		w->next = a;
		if (old == NULL)
			return;
		a = old;
	}
	system__push(sys, a);
}

void
mri_worker_flush(mr_system *sys)
{
	struct system__worker_ctx *w = system__self;

	if (w == NULL || w->sys != sys || w->next == NULL)
		return;
	system__push(sys, w->next);
	w->next = NULL;
}

/* Run up to \p batch messages of \p a (its run queue reference is ours),
 * then put it back if more are queued, or let it go. */
void
mri_run(mr_system *sys, struct mr_actor *a, unsigned batch)
{
	unsigned         n = 0;
	struct mri_msg  *m;
	uint32_t         left;
	struct mr_actor *prev = mri_current();

	mri_set_current(a);
	while (n < batch) {
		if (!a->dead && atomic_load_explicit(&a->kill,
						     memory_order_acquire))
			mri_die(a, MR_EXIT_KILLED);
		m = mri_mbox_pop(a);
		if (m == NULL)
			break;
		n++;
		if (a->dead)
			mri_drop(sys, a, m);
		else
			mri_dispatch(a, m);
	}
	mri_set_current(prev);
	left = atomic_fetch_sub_explicit(&a->count, n, memory_order_acq_rel) -
	       n;
	/* After the count went down (our reference keeps a alive). */
	if (n > 0 && atomic_load(&a->blocked) > 0) {
		pthread_mutex_lock(&sys->space_mu);
		pthread_cond_broadcast(&sys->space_cv);
		pthread_mutex_unlock(&sys->space_mu);
	}
	if (left > 0) {
		/* More to do: to the back of the line (our reference goes
		 * with it). */
		if (sys->threads == 0)
			system__push_det(sys, a);
		else
			system__push(sys, a);
		return;
	}
	mri_actor_rele(a);
}

/* A worker runs the actor its last one made runnable first (warm caches,
 * no lock), up to MRI_NEXT_STREAK in a row; then, or when there is none,
 * the head of the shared queue. */
static void *
system__worker(void *arg)
{
	struct system__worker_ctx w = {.sys = arg};
	mr_system                *sys = arg;
	struct mr_actor          *a;

	system__self = &w;
	for (;;) {
		a = w.next;
		if (a != NULL && w.streak < MRI_NEXT_STREAK) {
			w.next = NULL;
			w.streak++;
			mri_run(sys, a, MRI_BATCH);
			continue;
		}
		w.streak = 0;
		w.next   = NULL;
		pthread_mutex_lock(&sys->rq_mu);
		if (a != NULL) { /* its turn is over: behind the others */
			if (sys->rq_tail != NULL)
				sys->rq_tail->rq_next = a;
			else
				sys->rq_head = a;
			sys->rq_tail = a;
			a->rq_next   = NULL;
		}
		while ((a = sys->rq_head) == NULL && !sys->quit) {
			sys->idle++;
			pthread_cond_wait(&sys->rq_cv, &sys->rq_mu);
			sys->idle--;
		}
		if (a == NULL) {
			pthread_mutex_unlock(&sys->rq_mu);
			break;
		}
		sys->rq_head = a->rq_next;
		if (sys->rq_head == NULL)
			sys->rq_tail = NULL;
		pthread_mutex_unlock(&sys->rq_mu);
		mri_run(sys, a, MRI_BATCH);
	}
	system__self = NULL;
	return NULL;
}

int
mr_system_new(mr_system **out, int threads, uint64_t seed)
{
	mr_system *sys;
	int        i;

	if (out == NULL || threads < -1 || threads > 1024)
		return MR_EINVAL;
	if (threads == -1) {
		long n  = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)n : 1;
	}
	sys = calloc(1, sizeof(*sys));
	if (sys == NULL)
		return MR_ENOMEM;
	sys->threads   = threads;
	sys->rng       = seed * 0x9E3779B97F4A7C15ULL + 1;
	sys->free_head = UINT32_MAX;
	sys->next_call = 1;
	atomic_store(&sys->next_ref, 1);
	for (i = 0; i < MRI_TABLE_STRIPE; i++)
		pthread_mutex_init(&sys->stripe[i], NULL);
	pthread_mutex_init(&sys->alloc_mu, NULL);
	pthread_mutex_init(&sys->rq_mu, NULL);
	pthread_cond_init(&sys->rq_cv, NULL);
	mri_cond_init(&sys->live_cv);
	pthread_mutex_init(&sys->space_mu, NULL);
	pthread_cond_init(&sys->space_cv, NULL);
	pthread_mutex_init(&sys->calls_mu, NULL);
	pthread_mutex_init(&sys->names_mu, NULL);
	pthread_mutex_init(&sys->restarts_mu, NULL);
	strcpy(sys->restarts[MR_SUP_NAMES_MAX].supervisor, "_other");
	pthread_mutex_init(&sys->timer_mu, NULL);
	mri_cond_init(&sys->timer_cv);
	if (threads == 0) {
		*out = sys;
		return MR_OK;
	}
	sys->workers = calloc((size_t)threads, sizeof(pthread_t));
	if (sys->workers == NULL)
		goto fail;
	for (i = 0; i < threads; i++) {
		if (pthread_create(&sys->workers[i], NULL, system__worker,
				   sys) != 0) {
			sys->threads = i;
			goto fail;
		}
	}
	if (mri_timers_start(sys) != MR_OK)
		goto fail;
	*out = sys;
	return MR_OK;
fail:
	mr_system_free(sys);
	return MR_ENOMEM;
}

/* Ask every live actor to stop (MRI_M_STOP), one slot at a time.
 * @returns false if a stop message could not be allocated (try again). */
static bool
system__stop_all(mr_system *sys)
{
	uint32_t i, n = atomic_load(&sys->nslots);
	bool     all = true;

	for (i = 0; i < n; i++) {
		struct mr_actor *a;
		struct mri_msg  *m;

		pthread_mutex_lock(&sys->stripe[i % MRI_TABLE_STRIPE]);
		a = system__slot(sys, i)->a;
		if (a != NULL)
			atomic_fetch_add(&a->refs, 1);
		pthread_mutex_unlock(&sys->stripe[i % MRI_TABLE_STRIPE]);
		if (a == NULL)
			continue;
		m = mri_msg_new(0);
		if (m != NULL) {
			m->kind = MRI_M_STOP;
			mri_deliver(a, m);
		} else {
			all = false;
		}
		mri_actor_rele(a);
	}
	return all;
}

void
mr_system_free(mr_system *sys)
{
	int    i;
	size_t c;

	if (sys == NULL)
		return;
	atomic_store(&sys->stopping, true);
	mri_timers_stop(sys);
	/* Actors spawned while stopping are refused; stop until none live. */
	while (atomic_load(&sys->live) > 0) {
		bool all = system__stop_all(sys);

		if (sys->threads == 0) {
			mr_system_run_until_idle(sys);
			continue;
		}
		/* Out of memory for a stop message: try again in a while. */
		pthread_mutex_lock(&sys->rq_mu);
		while (atomic_load(&sys->live) > 0) {
			if (all)
				pthread_cond_wait(&sys->live_cv, &sys->rq_mu);
			else if (mri_cond_wait_until(&sys->live_cv,
						     &sys->rq_mu,
						     mri_deadline_in(10)) != 0)
				break;
		}
		pthread_mutex_unlock(&sys->rq_mu);
	}
	if (sys->workers != NULL) {
		pthread_mutex_lock(&sys->rq_mu);
		sys->quit = true;
		pthread_cond_broadcast(&sys->rq_cv);
		pthread_mutex_unlock(&sys->rq_mu);
		for (i = 0; i < sys->threads; i++)
			pthread_join(sys->workers[i], NULL);
	} else if (sys->threads == 0) {
		mr_system_run_until_idle(sys);
	}
	mri_calls_names_free(sys);
	for (c = 0; c < MRI_CHUNKS; c++)
		free(sys->chunk[c]);
	free(sys->workers);
	free(sys->runv);
	free(sys->heap);
	for (i = 0; i < MRI_TABLE_STRIPE; i++)
		pthread_mutex_destroy(&sys->stripe[i]);
	pthread_mutex_destroy(&sys->alloc_mu);
	pthread_mutex_destroy(&sys->rq_mu);
	pthread_cond_destroy(&sys->rq_cv);
	pthread_cond_destroy(&sys->live_cv);
	pthread_mutex_destroy(&sys->space_mu);
	pthread_cond_destroy(&sys->space_cv);
	pthread_mutex_destroy(&sys->calls_mu);
	pthread_mutex_destroy(&sys->names_mu);
	pthread_mutex_destroy(&sys->restarts_mu);
	pthread_mutex_destroy(&sys->timer_mu);
	pthread_cond_destroy(&sys->timer_cv);
	free(sys);
}

uint64_t
mr_system_now(mr_system *sys)
{
	uint64_t now;

	if (sys->threads > 0)
		return mri_mono_ms();
	pthread_mutex_lock(&sys->timer_mu);
	now = sys->vnow;
	pthread_mutex_unlock(&sys->timer_mu);
	return now;
}

size_t
mr_system_actors(mr_system *sys)
{
	return atomic_load(&sys->live);
}

bool
mr_system_step(mr_system *sys)
{
	struct mr_actor *a;
	size_t           i;

	if (sys->threads != 0)
		return false;
	if (sys->runn > 0) {
		i            = (size_t)(mri_rand(sys) % sys->runn);
		a            = sys->runv[i];
		sys->runv[i] = sys->runv[--sys->runn];
	} else if (sys->rq_head != NULL) { /* left there by a failed realloc */
		a            = sys->rq_head;
		sys->rq_head = a->rq_next;
		if (sys->rq_head == NULL)
			sys->rq_tail = NULL;
	} else {
		return false;
	}
	mri_run(sys, a, 1);
	return true;
}

uint64_t
mr_system_run_until_idle(mr_system *sys)
{
	uint64_t n = 0;

	while (mr_system_step(sys))
		n++;
	return n;
}

void
mr_system_advance(mr_system *sys, uint64_t ms)
{
	uint64_t until;

	if (sys->threads != 0)
		return;
	mr_system_run_until_idle(sys);
	until = ms > UINT64_MAX - sys->vnow ? UINT64_MAX : sys->vnow + ms;
	while (mri_timers_fire_next(sys, until))
		mr_system_run_until_idle(sys);
	sys->vnow = until;
}
