/*
 * Mirrored actors, the type (include/mailroom/mirror.h): made, run (the
 * subscription, mr_consume_run_async with mirror.c's dispatch, the watch
 * that copies the caller's stop and hands off the actors of a partition
 * that left), asked, freed.
 */
#include "mirror_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mirror_state.h"

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
 * after what was cast to it before (one with a delivery on its way waits
 * for the next look); a partition left is dropped from the snapshots at
 * once: its next delivery reads them again, and an actor still there
 * behind its key's snapshot is handed off then (mirror__stale). A session
 * lost or opened anew (the exclusive subscription left the group
 * meanwhile) is every partition left. Another member may already be
 * serving the key meanwhile: the subscription learns of the rebalance
 * only when it asks (every MIRROR__ASSIGN_MS). */
static void
mirror__handoff(mr_mirror *m)
{
	mr_partition *v = NULL;
	mr_pid       *pids;
	int32_t       np   = m->state ? mri_mirror_state_partitions(m->state)
				      : 0;
	uint64_t      sess = mr_consumer_session(m->s);
	size_t        n = 0, k = 0;
	int           rc   = mr_consumer_assignment(m->s, &v, &n);

	if (rc != MR_OK && !mr_consumer_lost(rc))
		return; // the next look
	if (rc != MR_OK || sess != m->session) {
		free(v);
		v = NULL;
		n = 0; // lost, or new: nothing held from before
	}
	m->session = sess;
	pthread_mutex_lock(&m->lock);
	pids = calloc(m->n ? m->n : 1, sizeof(*pids));
	for (size_t i = 0; pids != NULL && i < m->cap; i++)
		for (struct mri_mirror_ent *e = m->tab[i]; e != NULL;
		     e = e->next) {
			if (e->partition < 0 ||
			    mirror__holds(m, v, n, e->partition))
				continue;
			// One with a delivery on its way waits for the next
			// look: its exit could overtake that delivery's cast.
			if (!e->leaving && e->pending == 0) {
				e->leaving = true;
				pids[k++]  = e->pid;
			}
		}
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < k; i++)
		if (mr_cast(m->sys, pids[i], MIRROR__HANDOFF, NULL, 0) !=
		    MR_OK)
			mr_send_exit(m->sys, pids[i], MR_EXIT_HANDOFF);
	for (int32_t q = 0; q < np; q++)
		if (!mirror__holds(m, v, n, q))
			mri_mirror_state_drop(m->state, q);
	free(pids);
	free(v);
}

/* Report the system's restarts to mailroomd (mr_actors_report) when
 * they changed since the last report that got through, or \p always. */
static void
mirror__report(mr_mirror *m, bool always)
{
	mr_restart_count v[MR_SUP_NAMES_MAX + 1];
	size_t   n   = mr_system_restarts(m->sys, v, MR_SUP_NAMES_MAX + 1);
	uint64_t sig = (uint64_t)n << 48;

	for (size_t i = 0; i < n && i <= MR_SUP_NAMES_MAX; i++)
		sig += v[i].restarts;
	if ((always || sig + 1 != m->reported) &&
	    mr_actors_report(m->c, m->sys, NULL) == MR_OK)
		m->reported = sig + 1;
}

/* Reports restarts while the run lasts, on a thread of its own: a report
 * waits for mailroomd (up to the client's timeout when it is away), and
 * the watch must not. */
static void *
mirror__reporter(void *arg)
{
	mr_mirror      *m  = arg;
	struct timespec ts = {0, 50 * 1000000L};
	int             tick = 0;

	while (!atomic_load(&m->run_done)) {
		nanosleep(&ts, NULL);
		if (++tick % (MIRROR__REPORT_MS / 50) == 0)
			mirror__report(m, false);
	}
	return NULL;
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
	    o.intensity > 1000000 || (o.state_topic != NULL && o.save == NULL))
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
	m->sub.exclusive = 1; // a member of its own: a key in one process
	m->o.sub     = NULL; // borrowed for the call only
	m->cap       = 64;
	mri_mirror_wrap(m, b);
	m->topic    = strdup(topic);
	snprintf(m->sup_name, sizeof(m->sup_name), "mirror:%s", topic);
	mr_system_count_restart(sys, m->sup_name, 0);
	m->group    = strdup(group);
	m->tab      = calloc(m->cap, sizeof(*m->tab));
	m->crash_ms = calloc((size_t)o.intensity + 1, sizeof(*m->crash_ms));
	if (m->sub.dlq_topic != NULL)
		m->dlq = strdup(m->sub.dlq_topic);
	m->sub.dlq_topic = m->dlq;
	if (o.state_topic != NULL)
		m->state_topic = strdup(o.state_topic);
	m->o.state_topic = m->state_topic;
	if (m->topic == NULL || m->group == NULL || m->tab == NULL ||
	    m->crash_ms == NULL ||
	    (o.sub != NULL && o.sub->dlq_topic != NULL && m->dlq == NULL) ||
	    (o.state_topic != NULL && m->state_topic == NULL)) {
		free(m->state_topic);
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
		for (struct mri_mirror_ent *e = m->tab[i]; e != NULL;
		     e = e->next)
			pids[n++] = e->pid;
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++)
		mr_send_exit(m->sys, pids[i], MR_EXIT_PASSIVATE);
	free(pids);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += MIRROR__DRAIN_MS / 1000;
	pthread_mutex_lock(&m->lock);
	while ((m->st.active > 0 || m->replies > 0) &&
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
	pthread_t         watch, reporter;
	bool              watching, reporting;
	int               rc;

	m->why[0] = '\0';
	if (m->state_topic != NULL && m->state == NULL &&
	    (rc = mri_mirror_state_new(&m->state, m->c, m->topic,
				       m->state_topic, m->why,
				       sizeof(m->why))) != MR_OK)
		return rc;
	// What an earlier run restored may be stale by now.
	for (int32_t q = 0;
	     m->state != NULL && q < mri_mirror_state_partitions(m->state); q++)
		mri_mirror_state_drop(m->state, q);
	m->fatal = MR_OK;
	if ((rc = mr_subscribe(m->c, m->group, topics, 1, &sub, &s)) !=
	    MR_OK) {
		snprintf(m->why, sizeof(m->why), "%s", mr_client_last_error());
		return rc;
	}
	m->user_stop = stop;
	m->s         = s;
	m->session   = mr_consumer_session(s);
	atomic_store(&m->run_done, 0);
	watching  = pthread_create(&watch, NULL, mirror__watch, m) == 0;
	reporting = pthread_create(&reporter, NULL, mirror__reporter, m) == 0;
	rc = mr_consume_run_async(s, mri_mirror_dispatch, m, &m->stop, 0);
	if (rc != MR_OK)
		snprintf(m->why, sizeof(m->why), "%s", mr_client_last_error());
	atomic_store(&m->run_done, 1);
	if (watching)
		pthread_join(watch, NULL);
	if (reporting)
		pthread_join(reporter, NULL);
	mirror__passivate_all(m);
	mirror__report(m, true);
	mr_consumer_free(s);
	pthread_mutex_lock(&m->lock);
	if (m->fatal != MR_OK)
		rc = m->fatal; // m->why says why
	else if (m->escalated && rc == MR_OK)
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
	struct mri_mirror_ent *e;
	mr_pid              pid = 0;

	pthread_mutex_lock(&m->lock);
	e = *mri_mirror_slot(m, mri_mirror_hash(key, key_len), key, key_len);
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
		struct mri_mirror_ent *e = m->tab[i], *next;

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
	free(m->state_topic);
	mri_mirror_state_free(m->state);
	free(m);
}
