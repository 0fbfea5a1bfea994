#define _GNU_SOURCE /* pthread_setname_np */

#include "consumers/lag.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/lag_internal.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"

/* The group.id of the monitor's handle, a group never joined (mri_lag_new). */
#define MRI_LAG_GROUP "__mailroom.lag"

/* A (group, topic) someone asked about (either may be NULL, as in struct
 * lag_pair), tracked until track_ms after it was last asked. */
struct lag_ask {
	struct lag_ask *next;
	char           *group;
	char           *topic;
	uint64_t        last_ms; /* monotonic */
	uint64_t        want;    /* the first refresh that includes it */
};

struct mri_lag {
	rd_kafka_t         *rk;
	struct mri_lag_conf c;
	atomic_uint         interval_ms;
	atomic_bool         stopping; /* for a refresh in progress */

	pthread_mutex_t  mtx;
	pthread_cond_t   wake;  /* the thread: kick or stop */
	pthread_cond_t   ended; /* a refresh ended */
	struct lag_snap *snap;  /* current; one hold is the monitor's */
	struct lag_ask  *asks;
	uint64_t         started;  /* refreshes started (a generation) */
	uint64_t         finished; /* the last generation that ended */
	uint64_t         ok_gen;   /* the last generation that succeeded */
	int              last_err;
	char             last_why[256];
	bool             kick;
	bool             stop;
	uint64_t         refreshes, failures;

	pthread_t        th;
	bool             th_started;
	struct lag_rings rings; /* the thread's */
};

const char *
mri_lag_state_name(enum mri_lag_state s)
{
	switch (s) {
	case MRI_LAG_OK:
		return "ok";
	case MRI_LAG_NO_COMMIT:
		return "no_commit";
	default:
		return "unknown";
	}
}

const char *
mri_lag_group_state_name(enum mri_lag_group_state s)
{
	switch (s) {
	case MRI_LAG_GROUP_OK:
		return "ok";
	case MRI_LAG_GROUP_NO_OFFSETS:
		return "no_offsets";
	default:
		return "error";
	}
}

/* ---- snapshots ----------------------------------------------------------- */

struct lag_snap *
lag__snap_new(void)
{
	struct lag_snap *s = calloc(1, sizeof(*s));

	if (s != NULL)
		atomic_init(&s->refs, 1);
	return s;
}

void
lag__snap_rele(struct lag_snap *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->nstrs; i++)
		free(s->strs[i]);
	for (size_t i = 0; i < s->nmissing; i++)
		free(s->missing[i]);
	free(s->strs);
	free(s->missing);
	free(s->rows);
	free(s->groups);
	free(s->topics);
	free(s);
}

bool
lag__snap_missing(const struct lag_snap *s, const char *topic)
{
	for (size_t i = 0; i < s->nmissing; i++)
		if (strcmp(s->missing[i], topic) == 0)
			return true;
	return false;
}

const struct mri_lag_snapshot *
mri_lag_snapshot(struct mri_lag *l)
{
	struct lag_snap *s;

	pthread_mutex_lock(&l->mtx);
	s = l->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&l->mtx);
	return &s->pub;
}

void
mri_lag_snapshot_rele(const struct mri_lag_snapshot *s)
{
	// pub is the first member: the snapshot is its container.
	lag__snap_rele((struct lag_snap *)(void *)s);
}

static int
lag__cmp_key(const struct mri_lag_row *r, const char *group,
	     const char *topic, int32_t partition)
{
	int c = strcmp(r->group, group);

	if (c == 0)
		c = strcmp(r->topic, topic);
	return c != 0 ? c : (r->partition > partition) - (r->partition < partition);
}

const struct mri_lag_row *
mri_lag_find(const struct mri_lag_snapshot *s, const char *group,
	     const char *topic, int32_t partition)
{
	size_t lo = 0, hi = s->nrows;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int    c = lag__cmp_key(&s->rows[mid], group, topic, partition);

		if (c == 0)
			return &s->rows[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- what a refresh covers ----------------------------------------------- */

struct lag_pairs {
	struct lag_pair *v;
	size_t           n, cap;
};

static void
lag__pairs_fini(struct lag_pairs *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i].group);
		free(ps->v[i].topic);
	}
	free(ps->v);
	memset(ps, 0, sizeof(*ps));
}

/* Add a copy of (group, topic); a failed copy is left out (out of memory:
 * this refresh covers less). @returns the copy, or NULL. */
static struct lag_pair *
lag__pairs_add(struct lag_pairs *ps, const char *group, const char *topic,
	       bool served)
{
	struct lag_pair *p;

	if (ps->n == ps->cap) {
		size_t           cap = ps->cap ? ps->cap * 2 : 16;
		struct lag_pair *v   = realloc(ps->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		ps->v   = v;
		ps->cap = cap;
	}
	p          = &ps->v[ps->n];
	p->group   = group ? strdup(group) : NULL;
	p->topic   = topic ? strdup(topic) : NULL;
	p->served  = served;
	p->watched = false;
	if ((group && p->group == NULL) || (topic && p->topic == NULL)) {
		free(p->group);
		free(p->topic);
		return NULL;
	}
	return &ps->v[ps->n++];
}

/* The served callback's add. On the monitor's thread. */
static void
lag__add_served(void *ctx, const char *group, const char *topic)
{
	if (group != NULL && *group != '\0' && topic != NULL)
		lag__pairs_add(ctx, group, topic, true);
}

/* The tracked callback's add: a group tracked, not served. */
static void
lag__add_tracked(void *ctx, const char *group, const char *topic)
{
	if (group != NULL && *group != '\0' && topic != NULL)
		lag__pairs_add(ctx, group, topic, false);
}

/* The watched callback's add: a topic alone, its offsets wanted. */
static void
lag__add_watched(void *ctx, const char *topic)
{
	struct lag_pair *p;

	if (topic != NULL && *topic != '\0' &&
	    (p = lag__pairs_add(ctx, NULL, topic, false)) != NULL)
		p->watched = true;
}

/* NULL sorts first. */
static int
lag__cmp_nstr(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int
lag__cmp_pair(const void *a, const void *b)
{
	const struct lag_pair *x = a, *y = b;
	int                    c = lag__cmp_nstr(x->group, y->group);

	return c != 0 ? c : lag__cmp_nstr(x->topic, y->topic);
}

/* Sorted by (group, topic), each once (served, watched if any copy
 * is). */
static void
lag__pairs_unique(struct lag_pairs *ps)
{
	size_t k = 0;

	if (ps->n == 0)
		return;
	qsort(ps->v, ps->n, sizeof(*ps->v), lag__cmp_pair);
	for (size_t i = 0; i < ps->n; i++) {
		if (k > 0 && lag__cmp_pair(&ps->v[k - 1], &ps->v[i]) == 0) {
			ps->v[k - 1].served |= ps->v[i].served;
			ps->v[k - 1].watched |= ps->v[i].watched;
			free(ps->v[i].group);
			free(ps->v[i].topic);
			continue;
		}
		ps->v[k++] = ps->v[i];
	}
	ps->n = k;
}

static void
lag__ask_free(struct lag_ask *a)
{
	free(a->group);
	free(a->topic);
	free(a);
}

/* Drop the asks not asked for track_ms, copy the rest into \p ps. Called
 * with the mutex held. */
static void
lag__asks_take(struct mri_lag *l, struct lag_pairs *ps, uint64_t now)
{
	struct lag_ask **pp = &l->asks, *a;

	while ((a = *pp) != NULL) {
		if (now - a->last_ms > l->c.track_ms) {
			*pp = a->next;
			lag__ask_free(a);
			continue;
		}
		lag__pairs_add(ps, a->group, a->topic, false);
		pp = &a->next;
	}
}

/* Drop the asks of topics that do not exist: asking again finds them
 * anew. Called with the mutex held. */
static void
lag__asks_drop_missing(struct mri_lag *l, const struct lag_snap *s)
{
	struct lag_ask **pp = &l->asks, *a;

	while ((a = *pp) != NULL) {
		if (a->topic != NULL && lag__snap_missing(s, a->topic)) {
			*pp = a->next;
			lag__ask_free(a);
			continue;
		}
		pp = &a->next;
	}
}

/* ---- the thread ---------------------------------------------------------- */

static void
lag__refresh_once(struct mri_lag *l, uint64_t gen, struct lag_pairs *ps)
{
	struct lag_snap   *prev, *neu = NULL;
	struct lag_refresh in;
	char               why[256];
	int                rc;

	if (l->c.served != NULL)
		l->c.served(l->c.served_arg, lag__add_served, ps);
	if (l->c.tracked != NULL)
		l->c.tracked(l->c.tracked_arg, lag__add_tracked, ps);
	if (l->c.watched != NULL)
		l->c.watched(l->c.watched_arg, lag__add_watched, ps);
	lag__pairs_unique(ps);
	pthread_mutex_lock(&l->mtx);
	prev = l->snap;
	atomic_fetch_add(&prev->refs, 1);
	pthread_mutex_unlock(&l->mtx);
	in = (struct lag_refresh){
	    .rk         = l->rk,
	    .timeout_ms = (int)l->c.call_timeout_ms,
	    .pairs      = ps->v,
	    .npairs     = ps->n,
	    .prev       = prev,
	    .rings      = &l->rings,
	    .stop       = &l->stopping,
	};
	rc = lag__refresh(&in, &neu, why, sizeof(why));
	lag__snap_rele(prev);
	pthread_mutex_lock(&l->mtx);
	if (rc == MR_OK) {
		prev    = l->snap;
		l->snap = neu;
		l->ok_gen = gen;
		lag__asks_drop_missing(l, neu);
		atomic_fetch_add(&neu->refs, 1); // for the refreshed hook
	} else {
		prev = NULL;
		l->failures++;
		l->last_err = rc;
		snprintf(l->last_why, sizeof(l->last_why), "%s", why);
	}
	l->finished = gen;
	l->refreshes++;
	pthread_cond_broadcast(&l->ended);
	pthread_mutex_unlock(&l->mtx);
	lag__snap_rele(prev);
	if (rc == MR_OK) {
		if (l->c.refreshed != NULL)
			l->c.refreshed(l->c.refreshed_arg, &neu->pub,
				       atomic_load(&l->interval_ms));
		lag__snap_rele(neu);
	}
	if (rc != MR_OK && rc != MR_ESHUTDOWN)
		mri_warn("component=lag msg=\"refresh failed: %s\"", why);
}

static void *
lag__main(void *arg)
{
	struct mri_lag *l        = arg;
	uint64_t        last     = 0;
	bool            first    = true;

	pthread_setname_np(pthread_self(), "mr:lag");
	pthread_mutex_lock(&l->mtx);
	for (;;) {
		struct lag_pairs ps = {0};
		uint64_t         deadline, gen;

		deadline = last + atomic_load(&l->interval_ms);
		while (!l->stop && !l->kick && !first &&
		       mri_mono_ms() < deadline)
			(void)mri_cond_wait_until(&l->wake, &l->mtx, deadline);
		if (l->stop)
			break;
		first   = false;
		l->kick = false;
		gen     = ++l->started;
		last    = mri_mono_ms();
		lag__asks_take(l, &ps, last);
		pthread_mutex_unlock(&l->mtx);
		lag__refresh_once(l, gen, &ps);
		lag__pairs_fini(&ps);
		pthread_mutex_lock(&l->mtx);
	}
	pthread_mutex_unlock(&l->mtx);
	return NULL;
}

/* ---- life ---------------------------------------------------------------- */

int
mri_lag_new(struct mri_lag **out, const rd_kafka_conf_t *tmpl,
	    const struct mri_lag_conf *c, char *errstr, size_t errstr_size)
{
	struct mri_lag  *l = calloc(1, sizeof(*l));
	rd_kafka_conf_t *conf;

	if (l == NULL || (l->snap = lag__snap_new()) == NULL) {
		free(l);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	l->c = *c;
	if (l->c.track_ms == 0)
		l->c.track_ms = MRI_LAG_TRACK_MS;
	if (l->c.call_timeout_ms == 0)
		l->c.call_timeout_ms = MRI_LAG_CALL_TIMEOUT_MS;
	atomic_init(&l->interval_ms, MRI_LAG_INTERVAL_MIN);
	atomic_init(&l->stopping, false);
	mri_lag_set_interval(l, c->interval_ms);
	pthread_mutex_init(&l->mtx, NULL);
	mri_cond_init(&l->wake);
	mri_cond_init(&l->ended);
	// A consumer-type handle that never subscribes nor is assigned
	// anything: the admin API and ListOffsets. It has a group.id of its
	// own, never joined, only so that librdkafka has a group handle: when
	// a ListConsumerGroupOffsets answer says NOT_COORDINATOR or
	// COORDINATOR_NOT_AVAILABLE (as Kafka does for a moment when it comes
	// back from an outage), rd_kafka_handle_OffsetFetch queues a
	// coordinator query to rk->rk_cgrp, NULL on a producer handle: a
	// segfault on rdk:main (librdkafka 2.0.2, still so in its master;
	// issue #5040). A topic that does not exist is never created by
	// asking (real Kafka; the embedded cluster creates any topic named in
	// a metadata request, so none is named).
	if ((conf = rd_kafka_conf_dup(tmpl)) == NULL ||
	    mri_kafka_set(conf, "allow.auto.create.topics", "false", errstr,
			  errstr_size) != MR_OK ||
	    mri_kafka_set(conf, "group.id", MRI_LAG_GROUP, errstr,
			  errstr_size) != MR_OK ||
	    mri_kafka_set(conf, "enable.auto.commit", "false", errstr,
			  errstr_size) != MR_OK) {
		if (conf != NULL)
			rd_kafka_conf_destroy(conf);
		mri_lag_free(l);
		return MR_ECONFIG;
	}
	if ((l->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
				  errstr_size)) == NULL) {
		rd_kafka_conf_destroy(conf);
		mri_lag_free(l);
		return MR_ECONFIG;
	}
	if (pthread_create(&l->th, NULL, lag__main, l) != 0) {
		snprintf(errstr, errstr_size, "cannot start the lag thread");
		mri_lag_free(l);
		return MR_ENOMEM;
	}
	l->th_started = true;
	*out          = l;
	return MR_OK;
}

void
mri_lag_free(struct mri_lag *l)
{
	struct lag_ask *a;

	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mtx);
	l->stop = true;
	atomic_store(&l->stopping, true);
	pthread_cond_broadcast(&l->wake);
	pthread_cond_broadcast(&l->ended);
	pthread_mutex_unlock(&l->mtx);
	if (l->th_started)
		pthread_join(l->th, NULL);
	while ((a = l->asks) != NULL) {
		l->asks = a->next;
		lag__ask_free(a);
	}
	lag__rings_fini(&l->rings);
	lag__snap_rele(l->snap);
	// Nothing to leave or commit: its group was never joined.
	if (l->rk != NULL)
		rd_kafka_destroy_flags(l->rk,
				       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	pthread_cond_destroy(&l->ended);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->mtx);
	free(l);
}

void
mri_lag_set_interval(struct mri_lag *l, uint32_t ms)
{
	if (ms < MRI_LAG_INTERVAL_MIN)
		ms = MRI_LAG_INTERVAL_MIN;
	if (ms > MRI_LAG_INTERVAL_MAX)
		ms = MRI_LAG_INTERVAL_MAX;
	atomic_store(&l->interval_ms, ms);
}

uint32_t
mri_lag_interval(struct mri_lag *l)
{
	return atomic_load(&l->interval_ms);
}

/* ---- asking -------------------------------------------------------------- */

/* The ask of (group, topic), made if new. Called with the mutex held.
 * @returns NULL when out of memory. */
static struct lag_ask *
lag__ask(struct mri_lag *l, const char *group, const char *topic)
{
	struct lag_ask *a;

	for (a = l->asks; a != NULL; a = a->next)
		if (lag__cmp_nstr(a->group, group) == 0 &&
		    lag__cmp_nstr(a->topic, topic) == 0)
			return a;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->group = group ? strdup(group) : NULL;
	a->topic = topic ? strdup(topic) : NULL;
	if ((group && a->group == NULL) || (topic && a->topic == NULL)) {
		lag__ask_free(a);
		return NULL;
	}
	a->want = l->started + 1;
	a->next = l->asks;
	l->asks = a;
	return a;
}

int
mri_lag_ask(struct mri_lag *l, const char *group, const char *topic,
	    bool refresh, int timeout_ms, const struct mri_lag_snapshot **out,
	    char *why, size_t why_size)
{
	uint64_t         deadline = mri_deadline_in((uint64_t)timeout_ms);
	uint64_t         want     = 0;
	struct lag_ask  *a;
	struct lag_snap *s;

	pthread_mutex_lock(&l->mtx);
	if (group != NULL || topic != NULL) {
		if ((a = lag__ask(l, group, topic)) == NULL) {
			pthread_mutex_unlock(&l->mtx);
			snprintf(why, why_size, "out of memory");
			return MR_ENOMEM;
		}
		a->last_ms = mri_mono_ms();
		if (l->finished < a->want)
			want = a->want;
	}
	if (refresh && want < l->started + 1)
		want = l->started + 1;
	if (want > 0) {
		l->kick = true;
		pthread_cond_signal(&l->wake);
	}
	while (l->finished < want && !l->stop &&
	       mri_cond_wait_until(&l->ended, &l->mtx, deadline) != ETIMEDOUT)
		;
	if (l->stop) {
		pthread_mutex_unlock(&l->mtx);
		snprintf(why, why_size, "mailroomd is stopping");
		return MR_ESHUTDOWN;
	}
	if (l->finished < want) {
		pthread_mutex_unlock(&l->mtx);
		snprintf(why, why_size,
			 "no lag refresh ended within %d ms (Kafka slow or "
			 "unreachable?)",
			 timeout_ms);
		return MR_ETIMEDOUT;
	}
	if (want > 0 && l->ok_gen < want) {
		int rc = l->last_err;

		snprintf(why, why_size, "%s", l->last_why);
		pthread_mutex_unlock(&l->mtx);
		return rc;
	}
	s = l->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&l->mtx);
	if (topic != NULL && lag__snap_missing(s, topic)) {
		lag__snap_rele(s);
		snprintf(why, why_size, "topic '%s' does not exist", topic);
		return MR_ENOENT;
	}
	*out = &s->pub;
	return MR_OK;
}

void
mri_lag_stats(struct mri_lag *l, struct mri_lag_stats *out)
{
	struct lag_snap *s;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&l->mtx);
	s = l->snap;
	atomic_fetch_add(&s->refs, 1);
	out->refreshes = l->refreshes;
	out->failures  = l->failures;
	pthread_mutex_unlock(&l->mtx);
	out->groups   = s->pub.ngroups;
	out->rows     = s->pub.nrows;
	out->taken_ms = s->pub.taken_ms;
	for (size_t i = 0; i < s->pub.nrows; i++)
		if (s->rows[i].lag > out->max_lag)
			out->max_lag = s->rows[i].lag;
	lag__snap_rele(s);
}
