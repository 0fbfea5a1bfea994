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
#include "mirror_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mirror_state.h"
/* A mirrored actor's state: the type's state and what the wrapper keeps. */
struct mirror__actor {
	mr_mirror    *m;
	void         *ustate;
	uint64_t      last_ms; /* the last delivery, on the system's clock */
	uint64_t      hash;
	int32_t       part;    /* the last delivery handled: -1, none yet */
	int64_t       off;
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

/* A snapshot on its way to Kafka: the delivery it settles once saved. */
struct mirror__save {
	mr_mirror    *m;
	mr_pending   *p;
	mr_pid        pid;
	uint64_t      hash;
	int32_t       partition;
	int64_t       offset;
	size_t        key_len, len;
	unsigned char data[]; /* the key, then the snapshot's bytes */
};
uint64_t
mri_mirror_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t             h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* ---- the key table (under m->lock) ------------------------------------ */

struct mri_mirror_ent **
mri_mirror_slot(mr_mirror *m, uint64_t h, const void *key, size_t len)
{
	struct mri_mirror_ent **pp = &m->tab[h & (m->cap - 1)];

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
	struct mri_mirror_ent **tab = calloc(cap, sizeof(*tab));

	if (tab == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct mri_mirror_ent *e = m->tab[i], *next;

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
	struct mri_mirror_ent **pp = mri_mirror_slot(m, h, key, len);
	struct mri_mirror_ent  *e  = *pp;

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
	struct mri_mirror_ent *e = *mri_mirror_slot(m, h, key, len);

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
	struct mri_mirror_ent **pp = mri_mirror_slot(m, h, key, len);
	struct mri_mirror_ent  *e;

	if (*pp != NULL || (m->n >= m->cap && mirror__grow(m) != MR_OK) ||
	    (e = malloc(sizeof(*e) + len)) == NULL)
		return;
	*e = (struct mri_mirror_ent){.hash         = h,
				     .pid          = pid,
				     .pending      = 1,
				     .partition    = partition,
				     .handled_part = -1,
				     .key_len      = len};
	memcpy(e->key, key, len);
	pp  = mri_mirror_slot(m, h, key, len);
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
	if (m->crash_next < k) {
		// Its key's next delivery starts a new actor: a restart.
		mr_system_count_restart(m->sys, m->sup_name, 1);
		return false;
	}
	oldest = m->crash_ms[m->crash_next % k];
	if (now - oldest > m->o.period_ms || m->escalated) {
		mr_system_count_restart(m->sys, m->sup_name, 1);
		return false;
	}
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
	mr_mirror_key              mk = {in->key, in->key_len, m->o.arg,
					 NULL, 0};
	void                      *snap = NULL;
	int                        rc   = MR_OK;

	if ((a = calloc(1, sizeof(*a) + in->key_len)) == NULL)
		return MR_ENOMEM;
	a->m       = m;
	a->hash    = in->hash;
	a->part    = -1;
	a->key_len = in->key_len;
	memcpy(a->key, in->key, in->key_len);
	a->last_ms = mr_system_now(m->sys);
	if (m->state != NULL && in->key_len > 0) {
		rc          = mri_mirror_state_get(m->state, in->key,
						   in->key_len, &snap,
						   &mk.snapshot_len);
		mk.snapshot = snap;
	}
	if (rc == MR_OK && m->user->init != NULL)
		rc = m->user->init(self, &mk, &a->ustate);
	free(snap);
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

/* Crash \p pid, its snapshot not saved: the key's next delivery waits for
 * its end and activates a new one from the last snapshot. */
static void
mirror__unsaved(mr_mirror *m, uint64_t h, const void *key, size_t len,
		mr_pid pid)
{
	pthread_mutex_lock(&m->lock);
	mirror__leaving(m, h, key, len, pid);
	pthread_mutex_unlock(&m->lock);
	mr_send_exit(m->sys, pid, MR_EUNAVAIL);
}

/* A snapshot landed in another partition than its message: the type's
 * topic was not written with murmur2 (librdkafka's default partitioner is
 * not), so a restore would not find it. The run stops, saying so. */
static int
mirror__misplaced(mr_mirror *m, int32_t got, int32_t want)
{
	pthread_mutex_lock(&m->lock);
	if (m->fatal == MR_OK) {
		m->fatal = MR_ECONFIG;
		snprintf(m->why, sizeof(m->why),
			 "a snapshot of a message of %s partition %d landed in "
			 "partition %d of %s: the topic's producers must "
			 "partition by key with murmur2 (Java's default; "
			 "librdkafka's partitioner=murmur2_random), as "
			 "mailroomd does",
			 m->topic, (int)want, (int)got,
			 mri_mirror_state_topic(m->state));
	}
	pthread_mutex_unlock(&m->lock);
	__atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
	return MR_ECONFIG;
}

/* The snapshot's publish came back: ack its delivery once saved, else
 * nack it and crash the actor. */
static void
mirror__saved(void *arg, int status, const mr_ack *acks, size_t n)
{
	struct mirror__save *v = arg;
	mr_mirror           *m = v->m;
	int rc = status != MR_OK ? status : n == 1 ? acks[0].status : MR_EPROTO;

	if (rc == MR_OK && acks[0].partition != v->partition)
		rc = mirror__misplaced(m, acks[0].partition, v->partition);
	if (rc == MR_OK)
		rc = mri_mirror_state_put(m->state, v->data, v->key_len,
					  v->partition, v->offset,
					  v->data + v->key_len, v->len);
	if (rc == MR_OK) {
		pthread_mutex_lock(&m->lock);
		m->st.snapshots++;
		pthread_mutex_unlock(&m->lock);
	} else {
		mirror__unsaved(m, v->hash, v->data, v->key_len, v->pid);
	}
	mr_pending_done(v->p, rc);
	free(v);
}

/* Save actor \p a's state as it is after delivery \p d (of \p p, which
 * the publish's completion settles). @returns MR_OK once the publish is
 * on its way, else an error (\p p not settled). */
static int
mirror__save(mr_actor *self, struct mirror__actor *a, const mr_delivery *d,
	     mr_pending *p)
{
	mr_mirror           *m = a->m;
	struct mirror__save *v;
	void                *b = NULL, *val;
	size_t               bn = 0, vn;
	mr_message           msg;
	int                  rc;

	if ((rc = m->o.save(a->ustate, &b, &bn, m->o.arg)) != MR_OK) {
		free(b);
		return rc == MR_EREJECT ? MR_EINTERNAL : rc; // never a reject
	}
	v   = malloc(sizeof(*v) + a->key_len + bn);
	val = mri_mirror_snap_encode(d->partition, d->offset, b, bn, &vn);
	if (v == NULL || val == NULL) {
		free(b);
		free(v);
		free(val);
		return MR_ENOMEM;
	}
	*v = (struct mirror__save){m, p, mr_self(self), a->hash, d->partition,
				   d->offset, a->key_len, bn};
	memcpy(v->data, a->key, a->key_len);
	if (bn > 0)
		memcpy(v->data + a->key_len, b, bn);
	free(b);
	msg = (mr_message){.topic       = mri_mirror_state_topic(m->state),
			   .key         = a->key,
			   .key_len     = a->key_len,
			   .payload     = val,
			   .payload_len = vn};
	rc  = mr_publish_async(m->c, &msg, 1, mirror__saved, v);
	free(val);
	if (rc != MR_OK)
		free(v);
	return rc;
}

/* A delivery cast to \p pid was handled, or the cast failed. Under the
 * lock. */
static void
mirror__called(mr_mirror *m, uint64_t h, const void *key, size_t len,
	       mr_pid pid)
{
	struct mri_mirror_ent *e = *mri_mirror_slot(m, h, key, len);

	if (e != NULL && e->pid == pid && e->pending > 0)
		e->pending--;
}

/* Note in the key's entry what \p a handled last (the dispatch compares
 * it with the snapshots). Under the lock. */
static void
mirror__handled(mr_mirror *m, const struct mirror__actor *a)
{
	struct mri_mirror_ent *e =
	    *mri_mirror_slot(m, a->hash, a->key, a->key_len);

	if (e != NULL && a->part >= 0) {
		e->handled_part = a->part;
		e->handled_off  = a->off;
	}
}

/* A copy of a delivery this actor handled already (its first copy's ack
 * deadline passed meanwhile, and it was handed out again): never handled
 * twice. Acked when it needs no snapshot or its snapshot is saved (waited
 * for a while: a save takes a round trip to Kafka); else nacked, without
 * a crash, to come again (an attempt spent). */
static int
mirror__again(mr_actor *self, struct mirror__actor *a, const mr_delivery *d,
	      mr_pending *p)
{
	mr_mirror *m  = a->m;
	int        rc = MR_OK;

	for (int t = 0; m->state != NULL && a->key_len > 0 &&
			!mri_mirror_state_applied(m->state, a->key,
						  a->key_len, d->partition,
						  d->offset);
	     t++) {
		if (t == MIRROR__AGAIN_WAIT_MS) {
			rc = MR_EBUSY;
			break;
		}
		nanosleep(&(struct timespec){0, 1000000L}, NULL);
	}
	pthread_mutex_lock(&m->lock);
	mirror__called(m, a->hash, a->key, a->key_len, mr_self(self));
	m->st.deliveries++;
	if (rc == MR_OK)
		m->st.skipped++;
	pthread_mutex_unlock(&m->lock);
	mr_pending_done(p, rc);
	return MR_OK;
}

static int
mirror__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct mirror__actor *a = state;
	mr_mirror            *m = a->m;
	const mr_delivery    *d;
	mr_pending           *p;
	bool                  saving;
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
	p = mr_msg_take(msg); // settled here, not freed (mirror__lost)
	d = mr_pending_delivery(p);
	// Keyless records are not ordered (several may be on their way to
	// the actor of the empty key): only a key's offsets tell a copy.
	if (d->has_key && d->partition == a->part && d->offset <= a->off)
		return mirror__again(self, a, d, p);
	rc = mri_mirror_handle(self, m, a->ustate, d);
	if (d->has_key && (rc == MR_OK || rc == MR_EREJECT)) {
		a->part = d->partition;
		a->off  = d->offset;
	}
	a->last_ms = mr_system_now(m->sys);
	// Durable: settled once the snapshot is saved, or a crash.
	saving = rc == MR_OK && m->state != NULL && a->key_len > 0 &&
		 (rc = mirror__save(self, a, d, p)) == MR_OK;
	pthread_mutex_lock(&m->lock);
	mirror__called(m, a->hash, a->key, a->key_len, mr_self(self));
	mirror__handled(m, a);
	m->st.deliveries++;
	// A crash: the key's next delivery waits for this actor's end.
	if (rc != MR_OK && rc != MR_EREJECT)
		mirror__leaving(m, a->hash, a->key, a->key_len, mr_self(self));
	pthread_mutex_unlock(&m->lock);
	if (!saving)
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
	struct mirror__actor  *a = state;
	mr_mirror             *m = a->m;
	struct mri_mirror_ent *e;
	uint64_t               now, idle;

	if (info->kind != MR_INFO_TIMER || info->msg == NULL ||
	    info->msg->type != MIRROR__IDLE ||
	    (info->msg->from != 0 && info->msg->from != mr_self(self))) {
		if (m->user->handle_info != NULL)
			return m->user->handle_info(self, a->ustate, info);
		return MR_OK;
	}
	now  = mr_system_now(m->sys);
	idle = now - a->last_ms;
	// Idle and nothing on its way to it: out, marked leaving under the
	// same lock as the look at pending (a dispatch counts its delivery
	// under it), so that a delivery from now on waits for its terminate
	// and activates a new one, and none is cast to it to be dropped.
	pthread_mutex_lock(&m->lock);
	e = *mri_mirror_slot(m, a->hash, a->key, a->key_len);
	if (e != NULL && e->pid == mr_self(self) && e->pending > 0)
		idle = 0;
	if (idle >= m->o.idle_ms)
		mirror__leaving(m, a->hash, a->key, a->key_len,
				mr_self(self));
	pthread_mutex_unlock(&m->lock);
	if (idle < m->o.idle_ms) {
		if (mr_send_after(m->sys, mr_self(self), m->o.idle_ms - idle,
				  MIRROR__IDLE, NULL, 0) == 0)
			return MR_ENOMEM;
		return MR_OK;
	}
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
	uint64_t            h  = mri_mirror_hash(key, len);
	struct mirror__init in = {m, key, len, h, partition};
	struct mri_mirror_ent *e;
	mr_pid              pid;

	pthread_mutex_lock(&m->lock);
	while ((e = *mri_mirror_slot(m, h, key, len)) != NULL && e->leaving)
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

/* An active actor of \p key that is behind the key's snapshot (another
 * process served the key meanwhile: its partition left and came back)
 * is handed off: the delivery then activates one from the snapshot. */
static void
mirror__stale(mr_mirror *m, const mr_delivery *d, const void *key,
	      size_t len)
{
	struct mri_mirror_ent *e;
	mr_pid                 pid = 0;
	int32_t                part;
	int64_t                off;

	if (!mri_mirror_state_offset(m->state, key, len, &part, &off))
		return;
	pthread_mutex_lock(&m->lock);
	e = *mri_mirror_slot(m, mri_mirror_hash(key, len), key, len);
	if (e != NULL && !e->leaving && part == d->partition &&
	    e->handled_part == part && e->handled_off < off) {
		e->leaving = true;
		pid        = e->pid;
	}
	pthread_mutex_unlock(&m->lock);
	if (pid != 0)
		mr_send_exit(m->sys, pid, MR_EXIT_HANDOFF);
}

/* Durable: restore the delivery's partition first if it is new here.
 * @returns MR_OK when its snapshot reflects it already (ack it, the actor
 *          never sees it), MR_ENOENT when it goes to the actor, or the
 *          restore's error (nack it: it comes again). */
static int
mirror__durable(mr_mirror *m, const mr_delivery *d, const void *key,
		size_t len)
{
	char why[256];
	int  rc = MR_ENOENT;

	// A restore that fails is tried again here a few times (a nack
	// would spend one of the delivery's attempts).
	for (int t = 0; !mri_mirror_state_restored(m->state, d->partition);
	     t++) {
		if ((rc = mri_mirror_state_restore(m->state, d->partition, why,
						   sizeof(why))) == MR_OK) {
			rc = MR_ENOENT;
			pthread_mutex_lock(&m->lock);
			m->st.restores++;
			pthread_mutex_unlock(&m->lock);
			break;
		}
		fprintf(stderr,
			"mailroom: mirror %s: cannot restore the snapshots of "
			"partition %d from %s (%s: %s)%s\n",
			m->topic, (int)d->partition,
			mri_mirror_state_topic(m->state), mr_err_name(rc), why,
			t + 1 < MIRROR__RESTORE_TRIES
			    ? "; trying again"
			    : "; its delivery is nacked and comes again");
		if (t + 1 == MIRROR__RESTORE_TRIES)
			return rc;
		nanosleep(&(struct timespec){MIRROR__RESTORE_WAIT_S, 0}, NULL);
	}
	mirror__stale(m, d, key, len);
	if (mri_mirror_state_applied(m->state, key, len, d->partition,
				     d->offset)) {
		pthread_mutex_lock(&m->lock);
		m->st.skipped++;
		m->st.deliveries++;
		pthread_mutex_unlock(&m->lock);
		rc = MR_OK;
	}
	return rc;
}

/* mr_consume_run_async's handler, on the fetching thread: cast the
 * delivery to its key's actor. */
void
mri_mirror_dispatch(void *arg, const mr_delivery *d, mr_pending *p)
{
	mr_mirror  *m   = arg;
	const void *key = d->has_key ? d->key : "";
	size_t      len = d->has_key ? d->key_len : 0;
	int         rc  = MR_ENOENT;

	if (m->state != NULL && len > 0 &&
	    (rc = mirror__durable(m, d, key, len)) != MR_ENOENT) {
		mr_pending_done(p, rc);
		return;
	}
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
		mirror__called(m, mri_mirror_hash(key, len), key, len, pid);
		if (rc == MR_ENOENT)
			mirror__leaving(m, mri_mirror_hash(key, len), key, len,
					pid);
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_lock(&m->lock);
	m->st.deliveries++;
	pthread_mutex_unlock(&m->lock);
	mr_pending_done(p, rc);
}

void
mri_mirror_wrap(mr_mirror *m, const mr_behaviour *b)
{
	m->wrap = (mr_behaviour){
	    .name        = b->name,
	    .init        = mirror__init,
	    .handle_cast = mirror__cast,
	    .handle_call = b->handle_call != NULL ? mirror__call : NULL,
	    .handle_info = mirror__info,
	    .terminate   = mirror__terminate};
}
