#define _GNU_SOURCE /* pthread_setname_np */

#include "supervisor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/publish.h"
#include "consumers/group.h"
#include "consumers/journal.h"
#include "core/clock.h"
#include "core/log.h"
#include "dlq/failures.h"
#include "dlq/record.h"
#include "mailroom/error.h"

#define DLQ__FAILURES_MAX 4096 /* records whose failures are described */
#define DLQ__TICK_MS 100       /* the thread's wake-up, at most */
#define DLQ__SUFFIX ".dlq"
#define DLQ__WARN_MS 10000 /* failed dead-letter writes: one warning */

/* What a failure without a reason of its own is said to be. */
static const char *const dlq__why[] = {
    [MRI_GROUP_NACKED]    = "nacked",
    [MRI_GROUP_REJECTED]  = "rejected",
    [MRI_GROUP_EXPIRED]   = "ack deadline expired",
    [MRI_GROUP_ABANDONED] = "the consumer went away holding it",
};

/* A record to quarantine: a copy of what on_exhausted was given (one
 * allocation: the struct, then its bytes), then its dead-letter write. */
struct dlq_job {
	struct dlq_job     *next;
	struct mri_dlq     *d;
	uint64_t            handle;
	uint64_t            pos; /* mri_journal_pos_hash: its failures */
	int32_t             partition;
	int64_t             offset;
	uint32_t            attempts;
	int                 err; /* the write's result */
	const char         *why;
	char               *topic; /* the source's */
	char               *dlq_topic;
	char               *id;
	size_t              id_len;
	bool                has_key;
	void               *key;
	size_t              key_len;
	void               *value;
	size_t              value_len;
	struct mri_hdr_view *hdrs;
	size_t              nhdrs;
	struct mri_dlq_hdrs out; /* the dead-letter record's headers */
	struct mri_pub_rec  rec;
	struct mri_pub_batch batch;
};

struct mri_dlq {
	struct mri_publisher    *pub;
	struct mri_group        *g; /* NULL once detached */
	char                    *group;
	char                    *topic;  /* NULL: per source topic */
	char                    *suffix;
	uint32_t                 breaker_max;
	uint64_t                 period_ms, cooldown_ms;
	pthread_mutex_t          lock;
	pthread_cond_t           cv;
	pthread_t                thread;
	bool                     started, stop;
	unsigned                 refs; /* the caller's, and one per write */
	struct mri_dlq_failures *failures;
	struct dlq_job          *to_write, *written; /* the two queues */
	// The breaker: the times of the last breaker_max failures (a ring).
	int64_t                 *ring;
	size_t                   ring_n, ring_head;
	struct mri_dlq_stats     st;
	size_t                   limit; /* what the group should have */
	bool                     limit_dirty; /* ... and may not have yet */
	pthread_mutex_t          apply;       /* one dlq__apply at a time */
	uint64_t                 half_open_acked; /* the group's, at entry */
	int64_t                  next_warn_ms; /* of failed writes */
	uint64_t                 unwarned;     /* failed writes not logged */
};

const char *
mri_dlq_breaker_name(enum mri_dlq_breaker b)
{
	switch (b) {
	case MRI_DLQ_OPEN:
		return "open";
	case MRI_DLQ_HALF_OPEN:
		return "half-open";
	default:
		return "closed";
	}
}

/* ---- the breaker (with the lock held) ---------------------------------- */

static void
dlq__set_limit(struct mri_dlq *d, size_t limit)
{
	d->limit       = limit;
	d->limit_dirty = true;
}

/* Give the group the limit the breaker wants (without the lock): at once
 * from the hook that tripped it (so that nothing more is handed out), and
 * from the thread. One at a time, each with the latest limit, so that an
 * older limit never lands after a newer one. */
static void
dlq__apply(struct mri_dlq *d)
{
	struct mri_group *g;
	size_t            limit;
	bool              dirty;

	pthread_mutex_lock(&d->apply);
	pthread_mutex_lock(&d->lock);
	g              = d->g;
	limit          = d->limit;
	dirty          = d->limit_dirty;
	d->limit_dirty = false;
	pthread_mutex_unlock(&d->lock);
	if (dirty && g != NULL)
		mri_group_set_limit(g, limit);
	pthread_mutex_unlock(&d->apply);
}

static void
dlq__open(struct mri_dlq *d, int64_t now, const char *why)
{
	d->st.breaker   = MRI_DLQ_OPEN;
	d->st.opened_ms = now;
	d->st.retry_ms  = now + (int64_t)d->cooldown_ms;
	d->st.trips++;
	snprintf(d->st.reason, sizeof(d->st.reason), "%s", why);
	dlq__set_limit(d, 0);
	mri_warn("component=dlq group=%s breaker=open cooldown_ms=%" PRIu64
		 " msg=\"%s: delivery paused\"",
		 d->group, d->cooldown_ms, why);
}

static void
dlq__half_open(struct mri_dlq *d, uint64_t acked, const char *by)
{
	d->st.breaker      = MRI_DLQ_HALF_OPEN;
	d->st.retry_ms     = -1;
	d->half_open_acked = acked;
	dlq__set_limit(d, 1);
	mri_notice("component=dlq group=%s breaker=half-open msg=\"%s: one "
		   "message at a time until one is acked\"",
		   d->group, by);
}

static void
dlq__close(struct mri_dlq *d)
{
	d->st.breaker = MRI_DLQ_CLOSED;
	d->ring_n     = 0;
	dlq__set_limit(d, SIZE_MAX);
	mri_notice("component=dlq group=%s breaker=closed msg=\"a message "
		   "was acked: full flow\"",
		   d->group);
}

/* A failure at \p now: trip the breaker when it is the breaker_max-th
 * within the period, or any while half-open. */
static void
dlq__count(struct mri_dlq *d, int64_t now, const char *reason, size_t len)
{
	char why[200];

	if (d->breaker_max == 0)
		return;
	if (d->st.breaker == MRI_DLQ_HALF_OPEN) {
		snprintf(why, sizeof(why), "a failure while half-open: %.*s",
			 (int)(len > 100 ? 100 : len), reason);
		dlq__open(d, now, why);
		return;
	}
	if (d->st.breaker == MRI_DLQ_OPEN)
		return;
	d->ring[d->ring_head] = now;
	d->ring_head          = (d->ring_head + 1) % d->breaker_max;
	if (d->ring_n < d->breaker_max)
		d->ring_n++;
	// The oldest of the last breaker_max is where head now points.
	if (d->ring_n == d->breaker_max &&
	    now - d->ring[d->ring_head % d->breaker_max] <=
		(int64_t)d->period_ms) {
		snprintf(why, sizeof(why),
			 "%" PRIu32 " failures within %" PRIu64
			 " ms, the last: %.*s",
			 d->breaker_max, d->period_ms,
			 (int)(len > 100 ? 100 : len), reason);
		dlq__open(d, now, why);
	}
}

/* ---- the hooks --------------------------------------------------------- */

/* \p n bytes of message id \p s as a logfmt quoted value into \p buf: a
 * quote or backslash escaped, a control character as '?', cut to fit. */
static void
dlq__log_id(char *buf, size_t size, const char *s, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 3 < size; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf[j++] = '\\';
		buf[j++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
	}
	buf[j] = '\0';
}

static void
dlq__on_failure(void *arg, const struct mri_group_record_id *r,
		uint32_t attempt, enum mri_group_fail why, const char *reason,
		size_t reason_len)
{
	struct mri_dlq *d   = arg;
	int64_t         now = mri_wall_ms();
	uint64_t        pos =
	    mri_journal_pos_hash(r->topic, r->partition, r->offset);

	if (reason == NULL || reason_len == 0) {
		reason     = dlq__why[why];
		reason_len = strlen(reason);
	}
	bool     dirty;
	char     id[2 * 255 + 1];

	dlq__log_id(id, sizeof(id), r->id, r->id_len);
	mri_debug("component=dlq group=%s topic=%s partition=%" PRId32
		  " offset=%" PRId64 " id=\"%s\" attempt=%" PRIu32
		  " why=%d msg=\"failed attempt: %.*s\"",
		  d->group, r->topic, r->partition, r->offset, id, attempt,
		  (int)why, (int)(reason_len > 200 ? 200 : reason_len), reason);
	pthread_mutex_lock(&d->lock);
	d->st.failures++;
	mri_dlq_failures_note(d->failures, pos, now, reason, reason_len);
	// A consumer that went away is one failure for the breaker, however
	// many records it held (dlq__on_abandoned).
	if (why != MRI_GROUP_ABANDONED)
		dlq__count(d, now, reason, reason_len);
	dirty = d->limit_dirty;
	pthread_mutex_unlock(&d->lock);
	if (dirty)
		dlq__apply(d);
}

static void
dlq__on_abandoned(void *arg, size_t held)
{
	struct mri_dlq *d   = arg;
	int64_t         now = mri_wall_ms();
	char            why[80];
	bool            dirty;

	snprintf(why, sizeof(why), "a consumer went away holding %zu "
		 "record%s", held, held == 1 ? "" : "s");
	pthread_mutex_lock(&d->lock);
	dlq__count(d, now, why, strlen(why));
	dirty = d->limit_dirty;
	pthread_mutex_unlock(&d->lock);
	if (dirty)
		dlq__apply(d);
}

/* @returns a copy of \p d's record, with room for what is copied. */
static struct dlq_job *
dlq__job_new(struct mri_dlq *d, const struct mri_group_delivery *x)
{
	size_t          tlen = strlen(x->topic);
	size_t          dlen = d->topic != NULL ? strlen(d->topic)
						: tlen + strlen(d->suffix);
	size_t          n    = sizeof(struct dlq_job) +
			x->nhdrs * sizeof(struct mri_hdr_view) + tlen + 1 +
			dlen + 1 + x->id_len + 1 + x->key_len + x->value_len;
	struct dlq_job *j;
	char           *p;

	for (size_t i = 0; i < x->nhdrs; i++)
		n += x->hdrs[i].name_len + x->hdrs[i].value_len;
	if ((j = calloc(1, n)) == NULL)
		return NULL;
	j->d         = d;
	j->handle    = x->handle;
	j->partition = x->partition;
	j->offset    = x->offset;
	j->attempts  = x->attempt;
	j->pos       = mri_journal_pos_hash(x->topic, x->partition, x->offset);
	j->hdrs      = (struct mri_hdr_view *)(j + 1);
	j->nhdrs     = x->nhdrs;
	p            = (char *)(j->hdrs + x->nhdrs);
	j->topic     = memcpy(p, x->topic, tlen + 1);
	p += tlen + 1;
	j->dlq_topic = p;
	if (d->topic != NULL)
		p += sprintf(p, "%s", d->topic) + 1;
	else
		p += sprintf(p, "%s%s", x->topic, d->suffix) + 1;
	j->id     = memcpy(p, x->id, x->id_len);
	j->id_len = x->id_len;
	p += x->id_len + 1;
	j->has_key = x->has_key;
	j->key     = memcpy(p, x->key, x->key_len);
	j->key_len = x->key_len;
	p += x->key_len;
	j->value     = memcpy(p, x->value, x->value_len);
	j->value_len = x->value_len;
	p += x->value_len;
	for (size_t i = 0; i < x->nhdrs; i++) {
		const struct mri_group_hdr *h = &x->hdrs[i];

		j->hdrs[i].name     = memcpy(p, h->name, h->name_len);
		j->hdrs[i].name_len = (uint16_t)h->name_len;
		p += h->name_len;
		j->hdrs[i].value     = memcpy(p, h->value, h->value_len);
		j->hdrs[i].value_len = (uint32_t)h->value_len;
		p += h->value_len;
	}
	return j;
}

static void
dlq__on_exhausted(void *arg, const struct mri_group_delivery *x)
{
	struct mri_dlq *d = arg;
	struct dlq_job *j = dlq__job_new(d, x);

	if (j == NULL && (j = calloc(1, sizeof(*j))) != NULL) {
		// No room for the copy: the thread fails the quarantine, and
		// the group gives the record again after a delay.
		j->d      = d;
		j->handle = x->handle;
		j->err    = MR_ENOMEM;
		j->why    = "out of memory";
		pthread_mutex_lock(&d->lock);
		d->refs++;
		d->st.pending++;
		j->next = d->written;
		d->written = j;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (j == NULL) {
		mri_err("component=dlq group=%s msg=\"out of memory: a "
			  "message whose attempts are spent is held until "
			  "its partition moves or mailroomd restarts\"",
			  d->group);
		return;
	}
	pthread_mutex_lock(&d->lock);
	j->next = d->to_write;
	d->to_write = j;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->lock);
}

/* ---- the thread -------------------------------------------------------- */

static void
dlq__rele_locked(struct mri_dlq *d, bool *last)
{
	*last = --d->refs == 0;
}

static void
dlq__destroy(struct mri_dlq *d)
{
	mri_dlq_failures_free(d->failures);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->apply);
	pthread_cond_destroy(&d->cv);
	free(d->ring);
	free(d->group);
	free(d->topic);
	free(d->suffix);
	free(d);
}

/* The write's result (the publisher's thread, or the submitting one). */
static void
dlq__written(void *arg, struct mri_pub_batch *b)
{
	struct dlq_job *j = arg;
	struct mri_dlq *d = j->d;

	(void)b;
	j->err = j->rec.res.err;
	j->why = j->rec.res.why;
	pthread_mutex_lock(&d->lock);
	j->next = d->written;
	d->written = j;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->lock);
}

/* Write job \p j's dead-letter record (without the lock). */
static void
dlq__write(struct mri_dlq *d, struct dlq_job *j)
{
	struct mri_dlq_failure_info fi;
	bool                        known;
	struct mri_dlq_orig         o = {
		    .topic     = j->topic,
		    .topic_len = strlen(j->topic),
		    .partition = j->partition,
		    .offset    = j->offset,
		    .hdrs      = j->hdrs,
		    .nhdrs     = j->nhdrs,
	};
	struct mri_dlq_failure f = {
	    .group     = d->group,
	    .group_len = strlen(d->group),
	    .attempts  = j->attempts,
	    .time_ms   = mri_wall_ms(),
	};
	struct mri_dlq_info in;

	pthread_mutex_lock(&d->lock);
	known = mri_dlq_failures_get(d->failures, j->pos, &fi);
	pthread_mutex_unlock(&d->lock);
	f.first_failure_ms = known ? fi.first_ms : -1;
	f.last_failure_ms  = known ? fi.last_ms : -1;
	f.reason           = known ? fi.reason
				   : "attempts spent before mailroomd "
				     "restarted (the consumer or mailroomd "
				     "went away holding it)";
	f.reason_len = strlen(f.reason);
	// A record replayed from a dead-letter topic before carries its
	// count: this quarantine keeps it.
	mri_dlq_parse(j->hdrs, j->nhdrs, &in);
	f.replays = in.replays;
	pthread_mutex_lock(&d->lock);
	d->refs++;
	d->st.pending++;
	pthread_mutex_unlock(&d->lock);
	if (mri_dlq_build(&j->out, &o, &f) != MR_OK) {
		j->err = MR_EINVAL;
		j->why = "the record cannot be described";
		dlq__written(j, NULL);
		return;
	}
	mri_pub_rec_init(&j->rec);
	j->rec.topic     = j->dlq_topic;
	j->rec.key       = j->key;
	j->rec.key_len   = j->key_len;
	j->rec.has_key   = j->has_key;
	j->rec.value     = j->value;
	j->rec.value_len = j->value_len;
	j->rec.hdrs      = j->out.h;
	j->rec.hdr_count = j->out.n;
	j->rec.id        = j->id;
	j->rec.id_len    = (uint8_t)j->id_len;
	j->rec.raw       = true;
	j->batch.recs    = &j->rec;
	j->batch.n       = 1;
	j->batch.done    = dlq__written;
	j->batch.arg     = j;
	if (mri_publish_submit(d->pub, &j->batch) != MR_OK) {
		j->err = MR_EINVAL;
		j->why = "the dead-letter write was refused";
		dlq__written(j, NULL);
	}
}

/* Job \p j's write is over: settle the original (without the lock). */
static void
dlq__settle(struct mri_dlq *d, struct mri_group *g, struct dlq_job *j)
{
	char     id[2 * 255 + 1];
	int      rc   = MR_ENOENT;
	int64_t  now  = mri_wall_ms();
	bool     warn = false, last;
	uint64_t more = 0;

	// Counted before the group hears of it: whoever sees the key go on
	// sees the quarantine counted.
	pthread_mutex_lock(&d->lock);
	d->st.pending--;
	if (j->err == MR_OK) {
		d->st.quarantined++;
		mri_dlq_failures_take(d->failures, j->pos, NULL);
	} else {
		d->st.dlq_errors++;
		// One warning per DLQ__WARN_MS: a dead-letter topic that
		// refuses is retried every few hundred ms.
		if (now >= d->next_warn_ms) {
			warn            = true;
			more            = d->unwarned;
			d->unwarned     = 0;
			d->next_warn_ms = now + DLQ__WARN_MS;
		} else {
			d->unwarned++;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (g != NULL)
		rc = mri_group_quarantined(g, j->handle, j->err);
	pthread_mutex_lock(&d->lock);
	dlq__rele_locked(d, &last);
	pthread_mutex_unlock(&d->lock);
	if (j->topic != NULL)
		dlq__log_id(id, sizeof(id), j->id, j->id_len);
	if (j->topic == NULL)
		; // the out-of-memory stand-in: said when it was made
	else if (j->err == MR_OK)
		mri_notice("component=dlq group=%s topic=%s partition=%" PRId32
			   " offset=%" PRId64 " id=\"%s\" attempts=%" PRIu32
			   " dlq=%s settled=%s msg=\"quarantined\"",
			   d->group, j->topic, j->partition, j->offset, id,
			   j->attempts, j->dlq_topic,
			   rc == MR_OK ? "yes" : "no");
	else if (warn)
		mri_warn("component=dlq group=%s topic=%s partition=%" PRId32
			 " offset=%" PRId64 " id=\"%s\" dlq=%s error=%s "
			 "failed_since=%" PRIu64
			 " msg=\"the dead-letter write failed (%s): the message "
			 "stays unacked and is quarantined again later\"",
			 d->group, j->topic, j->partition, j->offset, id,
			 j->dlq_topic, mr_strerror(j->err), more,
			 j->why != NULL ? j->why : "");
	free(j);
	if (last)
		dlq__destroy(d);
}

static void *
dlq__thread(void *arg)
{
	struct mri_dlq *d = arg;

	pthread_setname_np(pthread_self(), "mr:dlq");
	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		struct dlq_job        *to_write = d->to_write, *next;
		struct dlq_job        *written  = d->written;
		struct mri_group      *g    = d->g;
		struct mri_group_stats gs;
		int64_t                now = mri_wall_ms();

		d->to_write = d->written = NULL;
		if (d->st.breaker == MRI_DLQ_OPEN && now >= d->st.retry_ms &&
		    g != NULL) {
			pthread_mutex_unlock(&d->lock);
			mri_group_stats(g, &gs, NULL, 0);
			pthread_mutex_lock(&d->lock);
			if (d->st.breaker == MRI_DLQ_OPEN)
				dlq__half_open(d, gs.acked,
					       "the cool-down is over");
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		dlq__apply(d);
		for (; to_write != NULL; to_write = next) {
			next = to_write->next;
			dlq__write(d, to_write);
		}
		for (; written != NULL; written = next) {
			next = written->next;
			dlq__settle(d, g, written);
		}
		pthread_mutex_lock(&d->lock);
		if (d->st.breaker == MRI_DLQ_HALF_OPEN && g != NULL) {
			pthread_mutex_unlock(&d->lock);
			mri_group_stats(g, &gs, NULL, 0);
			pthread_mutex_lock(&d->lock);
			if (d->st.breaker == MRI_DLQ_HALF_OPEN &&
			    gs.acked > d->half_open_acked)
				dlq__close(d);
		}
		if (d->to_write == NULL && d->written == NULL &&
		    !d->limit_dirty && !d->stop)
			mri_cond_wait_until(&d->cv, &d->lock,
					    mri_deadline_in(DLQ__TICK_MS));
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- life -------------------------------------------------------------- */

int
mri_dlq_new(struct mri_dlq **out, struct mri_publisher *pub,
	    const struct mri_dlq_conf *c, char *errstr, size_t errstr_size)
{
	struct mri_dlq *d;
	const char     *suffix = c->suffix != NULL ? c->suffix : DLQ__SUFFIX;

	if (c->group == NULL || *c->group == '\0' ||
	    (c->topic != NULL && *c->topic == '\0') ||
	    (c->topic == NULL && *suffix == '\0') ||
	    (c->breaker_max > 0 &&
	     (c->breaker_period_ms == 0 || c->breaker_cooldown_ms == 0))) {
		snprintf(errstr, errstr_size,
			 "invalid dead-letter settings: a group, a topic or "
			 "suffix, and a breaker period and cool-down are "
			 "needed");
		return MR_EINVAL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->group = strdup(c->group)) == NULL ||
	    (d->suffix = strdup(suffix)) == NULL ||
	    (c->topic != NULL && (d->topic = strdup(c->topic)) == NULL) ||
	    (c->breaker_max > 0 &&
	     (d->ring = calloc(c->breaker_max, sizeof(*d->ring))) == NULL) ||
	    mri_dlq_failures_new(&d->failures, DLQ__FAILURES_MAX) != MR_OK)
		goto nomem;
	d->pub          = pub;
	d->breaker_max  = c->breaker_max;
	d->period_ms    = c->breaker_period_ms;
	d->cooldown_ms  = c->breaker_cooldown_ms;
	d->limit        = SIZE_MAX;
	d->refs         = 1;
	d->st.opened_ms = -1;
	d->st.retry_ms  = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->apply, NULL);
	mri_cond_init(&d->cv);
	if (pthread_create(&d->thread, NULL, dlq__thread, d) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		dlq__destroy(d);
		return MR_ENOMEM;
	}
	d->started = true;
	*out       = d;
	return MR_OK;
nomem:
	if (d != NULL) {
		mri_dlq_failures_free(d->failures);
		free(d->ring);
		free(d->group);
		free(d->topic);
		free(d->suffix);
		free(d);
	}
	snprintf(errstr, errstr_size, "out of memory");
	return MR_ENOMEM;
}

void
mri_dlq_hooks(struct mri_dlq *d, struct mri_group_hooks *h)
{
	memset(h, 0, sizeof(*h));
	h->on_failure   = dlq__on_failure;
	h->on_abandoned = dlq__on_abandoned;
	h->on_exhausted = dlq__on_exhausted;
	h->arg          = d;
}

void
mri_dlq_attach(struct mri_dlq *d, struct mri_group *g)
{
	pthread_mutex_lock(&d->lock);
	d->g = g;
	pthread_mutex_unlock(&d->lock);
}

void
mri_dlq_detach(struct mri_dlq *d)
{
	pthread_mutex_lock(&d->lock);
	if (!d->started) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->stop = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	pthread_mutex_lock(&d->lock);
	d->started = false;
	d->g       = NULL;
	pthread_mutex_unlock(&d->lock);
}

void
mri_dlq_free(struct mri_dlq *d)
{
	struct dlq_job *j, *next;
	bool            last;

	if (d == NULL)
		return;
	mri_dlq_detach(d);
	// Records never written: their originals stay unacked (the next
	// owner quarantines them). Writes still in flight keep d.
	pthread_mutex_lock(&d->lock);
	for (j = d->to_write; j != NULL; j = next) {
		next = j->next;
		free(j);
	}
	d->to_write = NULL;
	pthread_mutex_unlock(&d->lock);
	for (;;) {
		pthread_mutex_lock(&d->lock);
		j = d->written;
		if (j != NULL)
			d->written = j->next;
		pthread_mutex_unlock(&d->lock);
		if (j == NULL)
			break;
		dlq__settle(d, NULL, j);
	}
	pthread_mutex_lock(&d->lock);
	dlq__rele_locked(d, &last);
	pthread_mutex_unlock(&d->lock);
	if (last)
		dlq__destroy(d);
}

enum mri_dlq_breaker
mri_dlq_resume(struct mri_dlq *d)
{
	struct mri_group_stats gs = {0};
	struct mri_group      *g;
	enum mri_dlq_breaker   was;

	pthread_mutex_lock(&d->lock);
	g = d->g;
	pthread_mutex_unlock(&d->lock);
	if (g != NULL)
		mri_group_stats(g, &gs, NULL, 0);
	pthread_mutex_lock(&d->lock);
	was = d->st.breaker;
	if (was == MRI_DLQ_OPEN)
		dlq__half_open(d, gs.acked, "resumed by an operator");
	pthread_mutex_unlock(&d->lock);
	dlq__apply(d);
	return was;
}

void
mri_dlq_stats(struct mri_dlq *d, struct mri_dlq_stats *st)
{
	pthread_mutex_lock(&d->lock);
	*st = d->st;
	pthread_mutex_unlock(&d->lock);
}
