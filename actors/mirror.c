/*
 * Mirrored actors (include/mailroom/mirror.h): a key's deliveries, handed
 * out by mr_consume_run_async in key mode, are cast (as pointers) to that
 * key's actor, whose wrapper behaviour runs the type's handle_cast and then
 * mr_pending_done with its result: an ack, a reject or a nack, settled in
 * ranges by the run. The actors' threads are the workers; the fetching
 * thread only finds (or activates) the actor and casts.
 *
 * Built on the public client and actor APIs only. A delivery cast to an
 * actor that exits before taking it is dropped by the runtime, whose free
 * function nacks it (MR_ECLOSED); one cast to an actor already gone
 * (MR_ENOENT) is given to a new activation.
 *
 * One actor per key at a time, its terminate over before the next one's
 * init: an actor enters itself in the key table in its init and leaves it
 * at the end of its terminate; one on its way out (passivating, crashing)
 * is marked leaving first, and the dispatch waits until it is gone. An
 * actor with deliveries cast to it and not yet handled is not idle,
 * whatever its clock says (pending), so passivation never drops one.
 */
#include "mailroom/mirror.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIRROR__IDLE_MS   120000u
#define MIRROR__INTENSITY 100
#define MIRROR__PERIOD_MS 5000u
#define MIRROR__IDLE      0xffff0002u /* the idle timer's message type */
#define MIRROR__HANDOFF   0xffff0003u /* its partition left: exit */
#define MIRROR__ASSIGN_MS 1000 /* how often the assignment is asked */
#define MIRROR__TRIES     3 /* activations tried for one delivery */
#define MIRROR__DRAIN_MS  10000 /* passivating at the end of a run */

struct mirror__ent {
	struct mirror__ent *next;
	uint64_t            hash;
	mr_pid              pid;
	bool                leaving; /* exiting: wait for it to be gone */
	unsigned            pending; /* deliveries cast, not handled yet */
	int32_t             partition; /* of its last delivery */
	size_t              key_len;
	unsigned char       key[];
};

struct mr_mirror {
	mr_system          *sys;
	mr_client          *c;
	char               *topic;
	char               *group;
	char               *dlq; /* the subscription's dlq_topic, copied */
	const mr_behaviour *user;
	mr_behaviour        wrap;
	mr_mirror_opts      o;
	mr_subscribe_opts   sub;

	pthread_mutex_t      lock;
	pthread_cond_t       cv;  /* an actor left the table */
	struct mirror__ent **tab; /* key -> active actor */
	size_t               cap; /* a power of two */
	size_t               n;
	mr_mirror_stats      st;
	uint64_t            *crash_ms; /* the last intensity + 1 crashes */
	size_t               crash_next;
	bool                 escalated;
	char                 why[256];

	volatile int        stop; /* mr_consume_run_async's */
	mr_consumer        *s;    /* during a run, for the watch */
	const volatile int *user_stop;
	atomic_int          run_done;
};

/* A mirrored actor's state: the type's state and what the wrapper keeps. */
struct mirror__actor {
	mr_mirror    *m;
	void         *ustate;
	uint64_t      last_ms; /* the last delivery, on the system's clock */
	uint64_t      hash;
	size_t        key_len;
	unsigned char key[];
};

struct mirror__init {
	mr_mirror  *m;
	const void *key;
	size_t      key_len;
	uint64_t    hash;
	int32_t     partition;
};

static uint64_t
mirror__hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t             h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* ---- the key table (under m->lock) ------------------------------------ */

static struct mirror__ent **
mirror__slot(mr_mirror *m, uint64_t h, const void *key, size_t len)
{
	struct mirror__ent **pp = &m->tab[h & (m->cap - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->key_len == len &&
		    memcmp((*pp)->key, key, len) == 0)
			break;
	return pp;
}

static int
mirror__grow(mr_mirror *m)
{
	size_t               cap = m->cap * 2;
	struct mirror__ent **tab = calloc(cap, sizeof(*tab));

	if (tab == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct mirror__ent *e = m->tab[i], *next;

		for (; e != NULL; e = next) {
			next                   = e->next;
			e->next                = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
		}
	}
	free(m->tab);
	m->tab = tab;
	m->cap = cap;
	return MR_OK;
}

/* Forget \p pid as the actor of its key, if it still is. */
static void
mirror__forget(mr_mirror *m, uint64_t h, const void *key, size_t len,
	       mr_pid pid)
{
	struct mirror__ent **pp = mirror__slot(m, h, key, len);
	struct mirror__ent  *e  = *pp;

	if (e != NULL && e->pid == pid) {
		*pp = e->next;
		free(e);
		m->n--;
	}
}

/* Mark \p pid, if it is its key's actor, as on its way out. */
static void
mirror__leaving(mr_mirror *m, uint64_t h, const void *key, size_t len,
		mr_pid pid)
{
	struct mirror__ent *e = *mirror__slot(m, h, key, len);

	if (e != NULL && e->pid == pid)
		e->leaving = true;
}

/* Enter \p pid as its key's actor, unless the key has one (a keyless
 * record's, activated by another worker meanwhile: this one serves its
 * delivery unnamed, and passivates when idle) or memory is short. The
 * worker whose delivery activates it is calling it. */
static void
mirror__enter(mr_mirror *m, uint64_t h, const void *key, size_t len,
	      mr_pid pid, int32_t partition)
{
	struct mirror__ent **pp = mirror__slot(m, h, key, len);
	struct mirror__ent  *e;

	if (*pp != NULL || (m->n >= m->cap && mirror__grow(m) != MR_OK) ||
	    (e = malloc(sizeof(*e) + len)) == NULL)
		return;
	*e = (struct mirror__ent){.hash      = h,
				  .pid       = pid,
				  .pending   = 1,
				  .partition = partition,
				  .key_len   = len};
	memcpy(e->key, key, len);
	pp  = mirror__slot(m, h, key, len);
	*pp = e;
	m->n++;
}

/* A crash: @returns whether the type's intensity is now exceeded. */
static bool
mirror__crashed(mr_mirror *m)
{
	size_t   k   = (size_t)m->o.intensity + 1;
	uint64_t now = mr_system_now(m->sys);
	uint64_t oldest;

	m->st.crashes++;
	m->crash_ms[m->crash_next % k] = now;
	m->crash_next++;
	if (m->crash_next < k)
		return false;
	oldest = m->crash_ms[m->crash_next % k];
	if (now - oldest > m->o.period_ms || m->escalated)
		return false;
	m->escalated = true;
	snprintf(m->why, sizeof(m->why),
		 "the actors of %s crashed %d times within %u ms (more than "
		 "the type's intensity): the type stopped",
		 m->topic, m->o.intensity + 1, m->o.period_ms);
	return true;
}

/* ---- the wrapper behaviour ------------------------------------------- */

static int
mirror__init(mr_actor *self, void *arg, void **state)
{
	const struct mirror__init *in = arg;
	mr_mirror                 *m  = in->m;
	struct mirror__actor      *a;
	mr_mirror_key              mk = {in->key, in->key_len, m->o.arg};
	int                        rc = MR_OK;

	if ((a = calloc(1, sizeof(*a) + in->key_len)) == NULL)
		return MR_ENOMEM;
	a->m       = m;
	a->hash    = in->hash;
	a->key_len = in->key_len;
	memcpy(a->key, in->key, in->key_len);
	a->last_ms = mr_system_now(m->sys);
	if (m->user->init != NULL)
		rc = m->user->init(self, &mk, &a->ustate);
	if (rc != MR_OK) {
		free(a);
		return rc;
	}
	if (mr_send_after(m->sys, mr_self(self), m->o.idle_ms, MIRROR__IDLE,
			  NULL, 0) == 0) {
		if (m->user->terminate != NULL)
			m->user->terminate(self, a->ustate, MR_ENOMEM);
		free(a);
		return MR_ENOMEM;
	}
	// Entered and counted here, before anything can end it (terminate
	// takes it out and uncounts).
	pthread_mutex_lock(&m->lock);
	mirror__enter(m, a->hash, a->key, a->key_len, mr_self(self),
		      in->partition);
	m->st.activations++;
	m->st.active++;
	pthread_mutex_unlock(&m->lock);
	*state = a;
	return MR_OK;
}

/* A delivery cast to \p pid was handled, or the cast failed. Under the
 * lock. */
static void
mirror__called(mr_mirror *m, uint64_t h, const void *key, size_t len,
	       mr_pid pid)
{
	struct mirror__ent *e = *mirror__slot(m, h, key, len);

	if (e != NULL && e->pid == pid && e->pending > 0)
		e->pending--;
}

static int
mirror__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct mirror__actor *a = state;
	mr_mirror            *m = a->m;
	const mr_delivery    *d;
	mr_pending           *p;
	mr_msg                um;
	int                   rc;

	if (msg->type == MIRROR__HANDOFF && msg->from == 0) {
		mr_exit(self, MR_EXIT_HANDOFF); // marked leaving by the watch
		return MR_OK;
	}
	if (msg->type != MR_MSG_DELIVERY || msg->from != 0 || msg->len != 0 ||
	    msg->data == NULL)
		return m->user->handle_cast != NULL
			   ? m->user->handle_cast(self, a->ustate, msg)
			   : MR_OK;
	p  = mr_msg_take(msg); // settled here, not freed (mirror__lost)
	d  = mr_pending_delivery(p);
	um = (mr_msg){.type = MR_MSG_DELIVERY, .data = d, .len = sizeof(d)};
	rc = m->user->handle_cast != NULL
		 ? m->user->handle_cast(self, a->ustate, &um)
		 : MR_OK;
	a->last_ms = mr_system_now(m->sys);
	pthread_mutex_lock(&m->lock);
	mirror__called(m, a->hash, a->key, a->key_len, mr_self(self));
	m->st.deliveries++;
	// A crash: the key's next delivery waits for this actor's end.
	if (rc != MR_OK && rc != MR_EREJECT)
		mirror__leaving(m, a->hash, a->key, a->key_len, mr_self(self));
	pthread_mutex_unlock(&m->lock);
	mr_pending_done(p, rc);
	return rc == MR_OK || rc == MR_EREJECT ? MR_OK : rc;
}

/* A delivery cast to an actor that exited before taking it. */
static void
mirror__lost(void *p)
{
	mr_pending_done(p, MR_ECLOSED);
}

static int
mirror__call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	struct mirror__actor *a = state;

	return a->m->user->handle_call(self, a->ustate, msg, from);
}

static int
mirror__info(mr_actor *self, void *state, const mr_info *info)
{
	struct mirror__actor *a = state;
	mr_mirror            *m = a->m;
	struct mirror__ent   *e;
	uint64_t              now, idle;

	if (info->kind != MR_INFO_TIMER || info->msg == NULL ||
	    info->msg->type != MIRROR__IDLE ||
	    (info->msg->from != 0 && info->msg->from != mr_self(self))) {
		if (m->user->handle_info != NULL)
			return m->user->handle_info(self, a->ustate, info);
		return MR_OK;
	}
	now  = mr_system_now(m->sys);
	idle = now - a->last_ms;
	pthread_mutex_lock(&m->lock);
	e = *mirror__slot(m, a->hash, a->key, a->key_len);
	if (e != NULL && e->pid == mr_self(self) && e->pending > 0)
		idle = 0; // a delivery is on its way to it
	pthread_mutex_unlock(&m->lock);
	if (idle < m->o.idle_ms) {
		if (mr_send_after(m->sys, mr_self(self), m->o.idle_ms - idle,
				  MIRROR__IDLE, NULL, 0) == 0)
			return MR_ENOMEM;
		return MR_OK;
	}
	// Idle: out (a delivery from now on waits for its terminate, then
	// activates a new one).
	pthread_mutex_lock(&m->lock);
	mirror__leaving(m, a->hash, a->key, a->key_len, mr_self(self));
	pthread_mutex_unlock(&m->lock);
	mr_exit(self, MR_EXIT_PASSIVATE);
	return MR_OK;
}

static void
mirror__terminate(mr_actor *self, void *state, int reason)
{
	struct mirror__actor *a = state;
	mr_mirror            *m = a->m;

	if (m->user->terminate != NULL)
		m->user->terminate(self, a->ustate, reason);
	pthread_mutex_lock(&m->lock);
	mirror__forget(m, a->hash, a->key, a->key_len, mr_self(self));
	if (reason == MR_EXIT_PASSIVATE)
		m->st.passivations++;
	else if (reason == MR_EXIT_HANDOFF)
		m->st.handoffs++;
	else if (reason != MR_EXIT_NORMAL && reason != MR_EXIT_SHUTDOWN &&
		 mirror__crashed(m))
		__atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
	m->st.active--;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->lock);
	free(a);
}

/* ---- the dispatch ---------------------------------------------------- */

/* @returns the key's actor, activated if it had none (0 and *rc if its
 *          init failed), counted as pending (mirror__called uncounts). */
static mr_pid
mirror__actor_of(mr_mirror *m, const void *key, size_t len,
		 int32_t partition, int *rc)
{
	uint64_t            h  = mirror__hash(key, len);
	struct mirror__init in = {m, key, len, h, partition};
	struct mirror__ent *e;
	mr_pid              pid;

	pthread_mutex_lock(&m->lock);
	while ((e = *mirror__slot(m, h, key, len)) != NULL && e->leaving)
		pthread_cond_wait(&m->cv, &m->lock);
	if (e != NULL) {
		e->pending++;
		e->partition = partition;
		pid          = e->pid;
		pthread_mutex_unlock(&m->lock);
		return pid;
	}
	pthread_mutex_unlock(&m->lock);
	// init runs here, without the lock: a key has one delivery in flight
	// (key mode), so no other worker activates it meanwhile.
	if ((*rc = mr_spawn(m->sys, &m->wrap, &in, NULL, &pid)) != MR_OK) {
		pthread_mutex_lock(&m->lock);
		if (mirror__crashed(m))
			__atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	return pid;
}

/* mr_consume_run_async's handler, on the fetching thread: cast the
 * delivery to its key's actor. */
static void
mirror__dispatch(void *arg, const mr_delivery *d, mr_pending *p)
{
	mr_mirror  *m   = arg;
	const void *key = d->has_key ? d->key : "";
	size_t      len = d->has_key ? d->key_len : 0;
	int         rc  = MR_ENOENT;

	for (int t = 0; t < MIRROR__TRIES && rc == MR_ENOENT; t++) {
		mr_pid pid = mirror__actor_of(m, key, len, d->partition, &rc);

		if (pid == 0)
			break;
		rc = mr_cast_ptr(m->sys, pid, MR_MSG_DELIVERY, p, mirror__lost);
		if (rc == MR_OK)
			return;
		// Gone already (MR_ENOENT): wait for its terminate, then
		// activate anew.
		pthread_mutex_lock(&m->lock);
		mirror__called(m, mirror__hash(key, len), key, len, pid);
		if (rc == MR_ENOENT)
			mirror__leaving(m, mirror__hash(key, len), key, len,
					pid);
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_lock(&m->lock);
	m->st.deliveries++;
	pthread_mutex_unlock(&m->lock);
	mr_pending_done(p, rc);
}

/* @returns whether \p partition of the type's topic is in \p v. */
static bool
mirror__holds(const mr_mirror *m, const mr_partition *v, size_t n,
	      int32_t partition)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].partition == partition &&
		    strcmp(v[i].topic, m->topic) == 0)
			return true;
	return false;
}

/* Hand off the actors whose partition the subscription no longer holds:
 * each is marked leaving (should its key come back here, its next
 * delivery waits for its end) and asked to exit, with MR_EXIT_HANDOFF,
 * after what was cast to it before. Another member may already be
 * serving the key meanwhile: the subscription learns of the rebalance
 * only when it asks (every MIRROR__ASSIGN_MS). */
static void
mirror__handoff(mr_mirror *m)
{
	mr_partition *v = NULL;
	mr_pid       *pids;
	size_t        n, k = 0;

	if (mr_consumer_assignment(m->s, &v, &n) != MR_OK)
		return; // the session is gone: the run subscribes again
	pthread_mutex_lock(&m->lock);
	pids = calloc(m->n ? m->n : 1, sizeof(*pids));
	for (size_t i = 0; pids != NULL && i < m->cap; i++)
		for (struct mirror__ent *e = m->tab[i]; e != NULL;
		     e = e->next)
			if (!e->leaving && e->partition >= 0 &&
			    !mirror__holds(m, v, n, e->partition)) {
				e->leaving = true;
				pids[k++]  = e->pid;
			}
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < k; i++)
		mr_cast(m->sys, pids[i], MIRROR__HANDOFF, NULL, 0);
	free(pids);
	free(v);
}

/* Copies the caller's stop into the run's, next to the type's, and hands
 * actors off when their partition left. */
static void *
mirror__watch(void *arg)
{
	mr_mirror      *m  = arg;
	struct timespec ts = {0, 50 * 1000000L};
	int             tick = 0;

	while (!atomic_load(&m->run_done)) {
		if (m->user_stop != NULL &&
		    __atomic_load_n(m->user_stop, __ATOMIC_RELAXED)) {
			__atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
			break;
		}
		nanosleep(&ts, NULL);
		if (++tick % (MIRROR__ASSIGN_MS / 50) == 0)
			mirror__handoff(m);
	}
	return NULL;
}

/* ---- the type --------------------------------------------------------- */

int
mr_mirror_new(mr_mirror **out, mr_system *sys, mr_client *c,
	      const char *topic, const char *group, const mr_behaviour *b,
	      const mr_mirror_opts *opts)
{
	mr_mirror_opts o = opts != NULL ? *opts : (mr_mirror_opts){0};
	mr_mirror     *m;

	if (out == NULL || sys == NULL || c == NULL || topic == NULL ||
	    group == NULL || b == NULL || o.intensity < 0 ||
	    o.intensity > 1000000)
		return MR_EINVAL;
	o.idle_ms   = o.idle_ms ? o.idle_ms : MIRROR__IDLE_MS;
	o.intensity = o.intensity ? o.intensity : MIRROR__INTENSITY;
	o.period_ms = o.period_ms ? o.period_ms : MIRROR__PERIOD_MS;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return MR_ENOMEM;
	m->sys  = sys;
	m->c    = c;
	m->user = b;
	m->o    = o;
	m->sub  = o.sub != NULL ? *o.sub : (mr_subscribe_opts){0};
	m->sub.order = MR_ORDER_KEY;
	m->o.sub     = NULL; // borrowed for the call only
	m->cap       = 64;
	m->wrap      = (mr_behaviour){.name        = b->name,
				      .init        = mirror__init,
				      .handle_cast = mirror__cast,
				      .handle_call = b->handle_call != NULL
							 ? mirror__call
							 : NULL,
				      .handle_info = mirror__info,
				      .terminate   = mirror__terminate};
	m->topic    = strdup(topic);
	m->group    = strdup(group);
	m->tab      = calloc(m->cap, sizeof(*m->tab));
	m->crash_ms = calloc((size_t)o.intensity + 1, sizeof(*m->crash_ms));
	if (m->sub.dlq_topic != NULL)
		m->dlq = strdup(m->sub.dlq_topic);
	m->sub.dlq_topic = m->dlq;
	if (m->topic == NULL || m->group == NULL || m->tab == NULL ||
	    m->crash_ms == NULL || (o.sub != NULL && o.sub->dlq_topic != NULL &&
				    m->dlq == NULL)) {
		free(m->topic);
		free(m->group);
		free(m->dlq);
		free(m->tab);
		free(m->crash_ms);
		free(m);
		return MR_ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cv, NULL);
	*out = m;
	return MR_OK;
}

/* Passivate every active actor and wait (bounded) until they are gone. */
static void
mirror__passivate_all(mr_mirror *m)
{
	struct timespec dl;
	mr_pid         *pids;
	size_t          n = 0;

	pthread_mutex_lock(&m->lock);
	pids = calloc(m->n ? m->n : 1, sizeof(*pids));
	for (size_t i = 0; pids != NULL && i < m->cap; i++)
		for (struct mirror__ent *e = m->tab[i]; e != NULL; e = e->next)
			pids[n++] = e->pid;
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++)
		mr_send_exit(m->sys, pids[i], MR_EXIT_PASSIVATE);
	free(pids);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += MIRROR__DRAIN_MS / 1000;
	pthread_mutex_lock(&m->lock);
	while (m->st.active > 0 &&
	       pthread_cond_timedwait(&m->cv, &m->lock, &dl) == 0)
		;
	pthread_mutex_unlock(&m->lock);
}

int
mr_mirror_run(mr_mirror *m, const volatile int *stop)
{
	const char       *topics[1] = {m->topic};
	mr_subscribe_opts sub       = m->sub;
	mr_consumer      *s;
	pthread_t         watch;
	bool              watching;
	int               rc;

	m->why[0] = '\0';
	if ((rc = mr_subscribe(m->c, m->group, topics, 1, &sub, &s)) !=
	    MR_OK) {
		snprintf(m->why, sizeof(m->why), "%s", mr_client_last_error());
		return rc;
	}
	m->user_stop = stop;
	m->s         = s;
	atomic_store(&m->run_done, 0);
	watching = pthread_create(&watch, NULL, mirror__watch, m) == 0;
	rc = mr_consume_run_async(s, mirror__dispatch, m, &m->stop, 0);
	if (rc != MR_OK)
		snprintf(m->why, sizeof(m->why), "%s", mr_client_last_error());
	atomic_store(&m->run_done, 1);
	if (watching)
		pthread_join(watch, NULL);
	mirror__passivate_all(m);
	mr_consumer_free(s);
	pthread_mutex_lock(&m->lock);
	if (m->escalated && rc == MR_OK)
		rc = MR_EINTERNAL;
	pthread_mutex_unlock(&m->lock);
	__atomic_store_n(&m->stop, 0, __ATOMIC_RELAXED);
	return rc;
}

const char *
mr_mirror_error(const mr_mirror *m)
{
	return m->why;
}

mr_pid
mr_mirror_whereis(mr_mirror *m, const void *key, size_t key_len)
{
	struct mirror__ent *e;
	mr_pid              pid = 0;

	pthread_mutex_lock(&m->lock);
	e = *mirror__slot(m, mirror__hash(key, key_len), key, key_len);
	if (e != NULL)
		pid = e->pid;
	pthread_mutex_unlock(&m->lock);
	return pid;
}

void
mr_mirror_stats_get(mr_mirror *m, mr_mirror_stats *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
}

void
mr_mirror_free(mr_mirror *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		struct mirror__ent *e = m->tab[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cv);
	free(m->tab);
	free(m->crash_ms);
	free(m->topic);
	free(m->group);
	free(m->dlq);
	free(m);
}
