/*
 * Backpressure's gate (broker/backpressure.h): the bounds, each bounded
 * partition's state, and the decisions the front door asks for.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/address.h"
#include "broker/backpressure.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"

/* One partition of a bounded topic. The atomics are read by checks
 * without the table's write lock; the rest is the monitor thread's. */
struct bp_part {
	atomic_bool     throttled;
	atomic_uchar    kind;          /* MRI_BP_KIND_* that throttled it */
	atomic_llong    lag;           /* the refresh's, records; -1 unknown */
	atomic_llong    time_lag;      /* the refresh's, ms */
	atomic_ullong   admitted;      /* records, since the bound was set */
	atomic_ullong   admitted_base; /* admitted when that refresh began */
	atomic_uint     retry_after;   /* ms */
	unsigned long long begin;      /* admitted at the last begin */
	long long          prev_lag;   /* the previous refresh's, for a rate */
	uint64_t           prev_ms;
};

struct bp_topic {
	struct bp_topic *next;
	struct mri_bound b;
	char           **seen;  /* served groups remembered (no named ones) */
	size_t           nseen;
	int32_t          nparts;
	struct bp_part  *parts;
	atomic_uint      rr;    /* keyless records' round robin */
};

struct mri_bp {
	pthread_rwlock_t lock; /* the list and each topic's parts array */
	struct bp_topic *topics;
	atomic_size_t    count;
	atomic_ullong    held;
	atomic_ullong    refused;
	atomic_uint      interval; /* the monitor's, ms */
};

const char *
mri_bp_policy_name(enum mri_bp_policy p)
{
	return p == MRI_BP_REJECT ? "reject" : "hold";
}

void
mri_bound_fini(struct mri_bound *b)
{
	if (b == NULL)
		return;
	free(b->topic);
	for (size_t i = 0; i < b->ngroups; i++)
		free(b->groups[i]);
	free(b->groups);
	memset(b, 0, sizeof(*b));
}

static void
bp__topic_free(struct bp_topic *t)
{
	mri_bound_fini(&t->b);
	for (size_t i = 0; i < t->nseen; i++)
		free(t->seen[i]);
	free(t->seen);
	free(t->parts);
	free(t);
}

struct mri_bp *
mri_bp_new(void)
{
	struct mri_bp *g = calloc(1, sizeof(*g));

	if (g != NULL) {
		pthread_rwlock_init(&g->lock, NULL);
		atomic_init(&g->interval, 1000);
	}
	return g;
}

void
mri_bp_free(struct mri_bp *g)
{
	struct bp_topic *t, *n;

	if (g == NULL)
		return;
	for (t = g->topics; t != NULL; t = n) {
		n = t->next;
		bp__topic_free(t);
	}
	pthread_rwlock_destroy(&g->lock);
	free(g);
}

static struct bp_topic *
bp__find(const struct mri_bp *g, const char *topic)
{
	struct bp_topic *t;

	for (t = g->topics; t != NULL; t = t->next)
		if (strcmp(t->b.topic, topic) == 0)
			return t;
	return NULL;
}

int
mri_bp_set(struct mri_bp *g, struct mri_bound *b)
{
	struct bp_topic *t, **pp;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return MR_ENOMEM;
	t->b = *b;
	memset(b, 0, sizeof(*b));
	pthread_rwlock_wrlock(&g->lock);
	for (pp = &g->topics; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->b.topic, t->b.topic) == 0)
			break;
	if (*pp != NULL) {
		struct bp_topic *old = *pp;

		// The same topic's remembered groups stay remembered, and its
		// partitions keep their state and counts until the next
		// refresh decides them under the new bound.
		t->seen     = old->seen;
		t->nseen    = old->nseen;
		t->parts    = old->parts;
		t->nparts   = old->nparts;
		old->seen   = NULL;
		old->nseen  = 0;
		old->parts  = NULL;
		old->nparts = 0;
		t->next    = old->next;
		*pp        = t;
		bp__topic_free(old);
	} else {
		*pp = t;
		atomic_fetch_add(&g->count, 1);
	}
	pthread_rwlock_unlock(&g->lock);
	return MR_OK;
}

int
mri_bp_clear(struct mri_bp *g, const char *topic)
{
	struct bp_topic **pp, *t = NULL;

	pthread_rwlock_wrlock(&g->lock);
	for (pp = &g->topics; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->b.topic, topic) == 0) {
			t   = *pp;
			*pp = t->next;
			atomic_fetch_sub(&g->count, 1);
			break;
		}
	pthread_rwlock_unlock(&g->lock);
	if (t == NULL)
		return MR_ENOENT;
	bp__topic_free(t);
	return MR_OK;
}

void
mri_bp_retain(struct mri_bp *g, bool (*keep)(void *arg, const char *topic),
	      void *arg)
{
	struct bp_topic **pp, *t, *gone = NULL;

	pthread_rwlock_wrlock(&g->lock);
	for (pp = &g->topics; (t = *pp) != NULL;) {
		if (keep(arg, t->b.topic)) {
			pp = &t->next;
			continue;
		}
		*pp     = t->next;
		t->next = gone;
		gone    = t;
		atomic_fetch_sub(&g->count, 1);
	}
	pthread_rwlock_unlock(&g->lock);
	while ((t = gone) != NULL) {
		gone = t->next;
		bp__topic_free(t);
	}
}

bool
mri_bp_any(const struct mri_bp *g)
{
	return g != NULL && atomic_load_explicit(&g->count,
						  memory_order_relaxed) > 0;
}

/* ---- the monitor's side -------------------------------------------------- */

static bool
bp__has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

void
mri_bp_served(struct mri_bp *g, const char *group, const char *topic)
{
	struct bp_topic *t;
	char           **v, *dup;

	pthread_rwlock_wrlock(&g->lock);
	t = bp__find(g, topic);
	if (t == NULL || t->b.ngroups > 0 || t->nseen >= MRI_BP_GROUPS_MAX ||
	    bp__has(t->seen, t->nseen, group))
		goto out;
	if ((dup = strdup(group)) == NULL)
		goto out;
	if ((v = realloc(t->seen, (t->nseen + 1) * sizeof(*v))) == NULL) {
		free(dup);
		goto out;
	}
	v[t->nseen++] = dup;
	t->seen       = v;
	mri_info("component=backpressure topic=%s group=%s msg=\"the group "
		 "counts for the topic's bound from now on\"",
		 topic, group);
out:
	pthread_rwlock_unlock(&g->lock);
}

void
mri_bp_begin(struct mri_bp *g, mri_lag_add_fn add, void *ctx)
{
	struct bp_topic *t;

	pthread_rwlock_rdlock(&g->lock);
	for (t = g->topics; t != NULL; t = t->next) {
		char *const *v = t->b.ngroups > 0 ? t->b.groups : t->seen;
		size_t       n = t->b.ngroups > 0 ? t->b.ngroups : t->nseen;

		for (size_t i = 0; i < n; i++)
			add(ctx, v[i], t->b.topic);
		for (int32_t p = 0; p < t->nparts; p++)
			t->parts[p].begin = atomic_load(&t->parts[p].admitted);
	}
	pthread_rwlock_unlock(&g->lock);
}

/* Whether \p group counts for \p t. */
static bool
bp__counts(const struct bp_topic *t, const char *group)
{
	if (t->b.ngroups > 0)
		return bp__has(t->b.groups, t->b.ngroups, group);
	return bp__has(t->seen, t->nseen, group);
}

/* The partition count \p s shows for \p topic (0: no row). */
static int32_t
bp__nparts(const struct mri_lag_snapshot *s, const char *topic)
{
	int32_t n = 0;

	for (size_t i = 0; i < s->nrows; i++)
		if (strcmp(s->rows[i].topic, topic) == 0 &&
		    s->rows[i].partition + 1 > n)
			n = s->rows[i].partition + 1;
	return n;
}

/* Make \p t's parts \p n long (write lock held); new ones open. */
static void
bp__resize(struct bp_topic *t, int32_t n)
{
	struct bp_part *v;

	if (n <= t->nparts)
		return;
	if ((v = calloc((size_t)n, sizeof(*v))) == NULL)
		return;
	for (int32_t p = 0; p < n; p++) {
		if (p < t->nparts) {
			struct bp_part *o = &t->parts[p];

			atomic_init(&v[p].throttled, atomic_load(&o->throttled));
			atomic_init(&v[p].kind, atomic_load(&o->kind));
			atomic_init(&v[p].lag, atomic_load(&o->lag));
			atomic_init(&v[p].time_lag, atomic_load(&o->time_lag));
			atomic_init(&v[p].admitted, atomic_load(&o->admitted));
			atomic_init(&v[p].admitted_base,
				    atomic_load(&o->admitted_base));
			atomic_init(&v[p].retry_after,
				    atomic_load(&o->retry_after));
			v[p].begin    = o->begin;
			v[p].prev_lag = o->prev_lag;
			v[p].prev_ms  = o->prev_ms;
		} else {
			atomic_init(&v[p].lag, -1);
			v[p].prev_lag = -1;
		}
	}
	free(t->parts);
	t->parts  = v;
	t->nparts = n;
}

/* When a throttled partition may open: the time its estimated backlog
 * \p est takes to fall to the low mark at the rate the measured lag fell
 * since the last refresh (\p lag against prev_lag); a few intervals when
 * it did not fall. */
static uint32_t
bp__retry_after(const struct bp_topic *t, const struct bp_part *p,
		long long lag, long long est, long long tlag, uint64_t now,
		uint32_t interval)
{
	double ms = (double)interval * 5;

	if (t->b.max_lag > 0 && est > t->b.resume_lag && p->prev_lag > lag &&
	    now > p->prev_ms) {
		double rate = (double)(p->prev_lag - lag) /
			      (double)(now - p->prev_ms);

		ms = (double)(est - t->b.resume_lag) / rate;
	} else if (t->b.max_time_ms > 0 && tlag > t->b.resume_time_ms &&
		   (t->b.max_lag == 0 || est <= t->b.resume_lag)) {
		ms = (double)(tlag - t->b.resume_time_ms);
	}
	if (ms < (double)interval)
		ms = interval;
	if (ms > MRI_BP_RETRY_MAX_MS)
		ms = MRI_BP_RETRY_MAX_MS;
	return (uint32_t)ms;
}

/* One partition's new state from a refresh's lag and time lag (-1 when
 * no counted group said). @returns true when it opened. */
static bool
bp__decide(struct bp_topic *t, int32_t pi, long long lag, long long tlag,
	   uint64_t now, uint32_t interval)
{
	struct bp_part    *p = &t->parts[pi];
	unsigned long long since;
	bool               was = atomic_load(&p->throttled), is = was;
	uint8_t            kind = MRI_BP_KIND_NONE;
	long long          est;

	if (lag < 0)
		return false; // not known: the state stays
	since = atomic_load(&p->admitted) - p->begin;
	est   = lag + (long long)since;
	if (t->b.max_lag > 0 && est >= t->b.max_lag)
		kind = MRI_BP_KIND_RECORDS;
	else if (t->b.max_time_ms > 0 && tlag >= t->b.max_time_ms)
		kind = MRI_BP_KIND_TIME;
	if (kind != MRI_BP_KIND_NONE) {
		is = true;
	} else if (was) {
		is = (t->b.max_lag > 0 && est > t->b.resume_lag) ||
		     (t->b.max_time_ms > 0 && tlag > t->b.resume_time_ms);
		kind = (t->b.max_lag > 0 && est > t->b.resume_lag)
			   ? MRI_BP_KIND_RECORDS
			   : MRI_BP_KIND_TIME;
	}
	atomic_store(&p->lag, lag);
	atomic_store(&p->time_lag, tlag);
	atomic_store(&p->admitted_base, p->begin);
	if (is) {
		atomic_store(&p->retry_after,
			     bp__retry_after(t, p, lag, est, tlag, now,
					     interval));
		atomic_store(&p->kind, kind);
	}
	atomic_store(&p->throttled, is);
	if (was != is)
		mri_info("component=backpressure topic=%s partition=%d "
			 "lag=%lld time_lag_ms=%lld msg=\"%s\"",
			 t->b.topic, (int)pi, est, tlag,
			 is ? "throttled: its lag passed the bound"
			    : "open again: its lag is at or below the low mark");
	p->prev_lag = lag;
	p->prev_ms  = now;
	return was && !is;
}

bool
mri_bp_apply(struct mri_bp *g, const struct mri_lag_snapshot *s,
	     uint32_t interval_ms)
{
	struct bp_topic *t;
	uint64_t         now    = mri_mono_ms();
	bool             opened = false;

	atomic_store(&g->interval, interval_ms);
	pthread_rwlock_wrlock(&g->lock);
	for (t = g->topics; t != NULL; t = t->next) {
		int32_t    n = bp__nparts(s, t->b.topic);
		long long *lag, *tlag;
		bool       counted = t->b.ngroups > 0 || t->nseen > 0;

		bp__resize(t, n);
		if (t->nparts == 0)
			continue;
		lag  = malloc((size_t)t->nparts * sizeof(*lag));
		tlag = malloc((size_t)t->nparts * sizeof(*tlag));
		if (lag == NULL || tlag == NULL) {
			free(lag);
			free(tlag);
			continue;
		}
		for (int32_t p = 0; p < t->nparts; p++) {
			lag[p]  = counted ? -1 : 0; // no group: nothing lags
			tlag[p] = 0;
		}
		for (size_t i = 0; i < s->nrows; i++) {
			const struct mri_lag_row *r = &s->rows[i];

			if (strcmp(r->topic, t->b.topic) != 0 ||
			    r->partition >= t->nparts || r->lag < 0 ||
			    r->state == MRI_LAG_UNKNOWN ||
			    !bp__counts(t, r->group))
				continue;
			if (r->lag > lag[r->partition])
				lag[r->partition] = r->lag;
			if (r->time_lag_ms > tlag[r->partition])
				tlag[r->partition] = r->time_lag_ms;
		}
		for (int32_t p = 0; p < t->nparts; p++)
			opened |= bp__decide(t, p, lag[p], tlag[p], now,
					     interval_ms);
		free(lag);
		free(tlag);
	}
	pthread_rwlock_unlock(&g->lock);
	return opened;
}

/* ---- the front door's side ----------------------------------------------- */

/* A partition's verdict as seen once in a request. */
static uint8_t
bp__look(const struct bp_topic *t, int32_t p, bool expired,
	 struct mri_bp_why *why)
{
	const struct bp_part *bp = &t->parts[p];
	long long             since, lag;

	if (!atomic_load_explicit(&bp->throttled, memory_order_acquire))
		return MRI_BP_GO;
	why->kind           = atomic_load(&bp->kind);
	why->retry_after_ms = atomic_load(&bp->retry_after);
	if (why->kind == MRI_BP_KIND_TIME) {
		why->lag   = atomic_load(&bp->time_lag);
		why->bound = t->b.max_time_ms;
	} else {
		since = (long long)(atomic_load(&bp->admitted) -
				    atomic_load(&bp->admitted_base));
		lag        = atomic_load(&bp->lag);
		why->lag   = (lag < 0 ? 0 : lag) + (since > 0 ? since : 0);
		why->bound = t->b.max_lag;
	}
	if (t->b.policy == MRI_BP_HOLD && !expired)
		return MRI_BP_WAIT;
	return MRI_BP_REFUSE;
}

/* A keyless record's partition: the open ones in turn; -1 when none is. */
static int32_t
bp__open_partition(struct bp_topic *t)
{
	uint32_t k, open = 0;

	for (int32_t p = 0; p < t->nparts; p++)
		open += !atomic_load(&t->parts[p].throttled);
	if (open == 0)
		return -1;
	k = atomic_fetch_add(&t->rr, 1) % open;
	for (int32_t p = 0; p < t->nparts; p++)
		if (!atomic_load(&t->parts[p].throttled) && k-- == 0)
			return p;
	// One was throttled meanwhile: the first still open.
	for (int32_t p = 0; p < t->nparts; p++)
		if (!atomic_load(&t->parts[p].throttled))
			return p;
	return -1;
}

/* Decide the records of \p recs on \p t, each partition looked at once. */
static uint32_t
bp__check_topic(struct mri_bp *g, struct bp_topic *t, struct mri_bp_rec *recs,
		size_t n, bool expired)
{
	uint8_t            stack[64], *seen = stack;
	struct mri_bp_why *whys = NULL, swhy[64];
	uint32_t           block = 0;

	if (t->nparts == 0)
		return 0;
	if ((size_t)t->nparts > sizeof(stack) ||
	    (size_t)t->nparts > sizeof(swhy) / sizeof(swhy[0])) {
		seen = calloc((size_t)t->nparts, 1);
		whys = calloc((size_t)t->nparts, sizeof(*whys));
		if (seen == NULL || whys == NULL) {
			free(seen == stack ? NULL : seen);
			free(whys);
			return 0; // out of memory: the gate stays open
		}
	} else {
		memset(stack, 0, (size_t)t->nparts);
		whys = swhy;
	}
	for (size_t i = 0; i < n; i++) {
		struct mri_bp_rec *r = &recs[i];
		int32_t            p = r->partition;

		if (r->topic != t->b.topic && strcmp(r->topic, t->b.topic) != 0)
			continue;
		if (p < 0 && r->has_key) {
			p = r->partition = mri_partition_for_key(
			    r->key, r->key_len, t->nparts);
		} else if (p < 0) {
			// Keyless: an open partition, counted as any other;
			// when every one is throttled, the first one's why.
			p = r->partition = bp__open_partition(t);
			if (p < 0)
				p = 0;
		}
		if (p >= t->nparts) {
			r->verdict = MRI_BP_GO;
			continue;
		}
		if (seen[p] == 0)
			seen[p] = 1 + bp__look(t, p, expired, &whys[p]);
		r->verdict = (uint8_t)(seen[p] - 1);
		if (r->verdict != MRI_BP_GO)
			r->why = whys[p];
		if (r->verdict == MRI_BP_WAIT)
			block = t->b.block_ms;
	}
	if (seen != stack)
		free(seen);
	if (whys != swhy)
		free(whys);
	return block;
}

uint32_t
mri_bp_check(struct mri_bp *g, struct mri_bp_rec *recs, size_t n,
	     bool expired)
{
	struct bp_topic *t;
	uint32_t         block = 0;

	for (size_t i = 0; i < n; i++)
		recs[i].verdict = MRI_BP_GO;
	if (!mri_bp_any(g))
		return 0;
	pthread_rwlock_rdlock(&g->lock);
	for (t = g->topics; t != NULL; t = t->next) {
		uint32_t b = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(recs[i].topic, t->b.topic) == 0) {
				b = bp__check_topic(g, t, recs, n, expired);
				break;
			}
		if (b > 0 && (block == 0 || b < block))
			block = b;
	}
	pthread_rwlock_unlock(&g->lock);
	return block;
}

void
mri_bp_admit(struct mri_bp *g, const struct mri_bp_rec *recs, size_t n)
{
	struct bp_topic *t;

	if (!mri_bp_any(g))
		return;
	pthread_rwlock_rdlock(&g->lock);
	for (t = g->topics; t != NULL; t = t->next) {
		for (size_t i = 0; i < n; i++) {
			const struct mri_bp_rec *r = &recs[i];
			struct bp_part          *bp;
			int32_t                  p = r->partition;
			unsigned long long       a;
			long long                lag;

			if (r->verdict != MRI_BP_GO ||
			    strcmp(r->topic, t->b.topic) != 0 ||
			    t->nparts == 0 || t->b.max_lag == 0)
				continue;
			if (p < 0 && r->has_key)
				p = mri_partition_for_key(r->key, r->key_len,
							  t->nparts);
			if (p < 0 || p >= t->nparts)
				continue;
			bp  = &t->parts[p];
			a   = atomic_fetch_add(&bp->admitted, 1) + 1;
			lag = atomic_load(&bp->lag);
			if (lag < 0)
				continue; // unknown: the next refresh decides
			if (lag + (long long)(a - atomic_load(&bp->admitted_base)) >=
				t->b.max_lag &&
			    !atomic_load(&bp->throttled)) {
				atomic_store(&bp->kind, MRI_BP_KIND_RECORDS);
				atomic_store(&bp->retry_after,
					     atomic_load(&g->interval));
				atomic_store_explicit(&bp->throttled, true,
						      memory_order_release);
			}
		}
	}
	pthread_rwlock_unlock(&g->lock);
}

void
mri_bp_count(struct mri_bp *g, uint64_t held, uint64_t refused)
{
	atomic_fetch_add(&g->held, held);
	atomic_fetch_add(&g->refused, refused);
}

void
mri_bp_stats(struct mri_bp *g, struct mri_bp_stats *out)
{
	struct bp_topic *t;

	memset(out, 0, sizeof(*out));
	out->held    = atomic_load(&g->held);
	out->refused = atomic_load(&g->refused);
	pthread_rwlock_rdlock(&g->lock);
	for (t = g->topics; t != NULL; t = t->next) {
		out->bounds++;
		for (int32_t p = 0; p < t->nparts; p++)
			out->throttled += atomic_load(&t->parts[p].throttled);
	}
	pthread_rwlock_unlock(&g->lock);
}

/* A partition's state in mri_bp_list. */
static json_t *
bp__part_json(const struct bp_topic *t, int32_t p)
{
	const struct bp_part *bp  = &t->parts[p];
	bool                  thr = atomic_load(&bp->throttled);
	long long             lag = atomic_load(&bp->lag);
	long long             since;
	const char           *st;

	since = (long long)(atomic_load(&bp->admitted) -
			    atomic_load(&bp->admitted_base));
	st    = !thr                          ? "open"
		: t->b.policy == MRI_BP_HOLD ? "holding"
					     : "refusing";
	return json_pack("{s:i, s:s, s:I, s:I, s:I, s:I}", "partition", (int)p,
			 "state", st, "lag",
			 (json_int_t)(lag < 0 ? -1 : lag + since),
			 "time_lag_ms", (json_int_t)atomic_load(&bp->time_lag),
			 "retry_after_ms",
			 (json_int_t)(thr ? atomic_load(&bp->retry_after) : 0),
			 "admitted", (json_int_t)atomic_load(&bp->admitted));
}

json_t *
mri_bp_list(struct mri_bp *g, const char *topic)
{
	struct bp_topic *t;
	json_t          *out = json_array();

	pthread_rwlock_rdlock(&g->lock);
	for (t = g->topics; t != NULL; t = t->next) {
		json_t *o, *parts, *counted;

		if (topic != NULL && strcmp(topic, t->b.topic) != 0)
			continue;
		o       = mri_bound_to_json(&t->b);
		parts   = json_array();
		counted = json_array();
		for (int32_t p = 0; p < t->nparts; p++)
			json_array_append_new(parts, bp__part_json(t, p));
		if (t->b.ngroups > 0)
			json_array_extend(counted, json_object_get(o, "groups"));
		for (size_t i = 0; i < t->nseen; i++)
			json_array_append_new(counted, json_string(t->seen[i]));
		json_object_set_new(o, "counted_groups", counted);
		json_object_set_new(o, "partitions", parts);
		json_array_append_new(out, o);
	}
	pthread_rwlock_unlock(&g->lock);
	return out;
}

int
mri_bp_state(struct mri_bp *g, const char *topic, int32_t partition,
	     struct mri_bp_part_state *out)
{
	struct bp_topic *t;
	int              rc = MR_ENOENT;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&g->lock);
	if ((t = bp__find(g, topic)) != NULL) {
		rc               = MR_OK;
		out->policy      = t->b.policy;
		out->max_lag     = t->b.max_lag;
		out->max_time_ms = t->b.max_time_ms;
		if (partition >= 0 && partition < t->nparts)
			out->throttled =
			    atomic_load(&t->parts[partition].throttled);
	}
	pthread_rwlock_unlock(&g->lock);
	return rc;
}
