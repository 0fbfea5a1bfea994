#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/actors.h"
#include "broker/admin.h"
#include "broker/consume.h"
#include "broker/status.h"
#include "consumers/lag.h"
#include "core/hist.h"
#include "mailroom/error.h"
#include "proto/header.h"
#include "server_internal.h"

/* The publish latency's buckets, in µs (le="0.0005" ... le="30"). */
static const uint64_t metrics__le_us[] = {
    500,    1000,   2500,    5000,    10000,   25000,    50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};

struct metrics__topic {
	char     name[MRI_TOPIC_MAX + 1]; /* "" when free */
	uint64_t n[MRI_PUB_RESULTS];
};

struct mri_metrics {
	pthread_mutex_t       lock;
	/* Open addressing on the name's hash; slot MRI_METRICS_TOPICS_MAX
	 * is "_other". */
	struct metrics__topic topics[MRI_METRICS_TOPICS_MAX + 1];
	size_t                ntopics;
	struct mri_hist       latency; /* µs */
};

int
mri_metrics_new(struct mri_metrics **out)
{
	struct mri_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return MR_ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	strcpy(m->topics[MRI_METRICS_TOPICS_MAX].name, "_other");
	mri_hist_init(&m->latency, metrics__le_us,
		      sizeof(metrics__le_us) / sizeof(metrics__le_us[0]));
	*out = m;
	return MR_OK;
}

void
mri_metrics_free(struct mri_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void
mri_metrics_publish(struct mri_metrics *m, const char *topic, size_t len,
		    const uint64_t n[MRI_PUB_RESULTS])
{
	uint64_t               h = 1469598103934665603ULL;
	struct metrics__topic *t = NULL;

	if (len > MRI_TOPIC_MAX)
		len = MRI_TOPIC_MAX;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)topic[i]) * 1099511628211ULL;
	pthread_mutex_lock(&m->lock);
	for (size_t k = 0; k < MRI_METRICS_TOPICS_MAX; k++) {
		struct metrics__topic *s =
		    &m->topics[(h + k) % MRI_METRICS_TOPICS_MAX];

		if (s->name[0] == '\0') {
			memcpy(s->name, topic, len);
			s->name[len] = '\0';
			m->ntopics++;
			t = s;
			break;
		}
		if (strncmp(s->name, topic, len) == 0 && s->name[len] == '\0') {
			t = s;
			break;
		}
	}
	if (t == NULL)
		t = &m->topics[MRI_METRICS_TOPICS_MAX];
	for (int r = 0; r < MRI_PUB_RESULTS; r++)
		t->n[r] += n[r];
	pthread_mutex_unlock(&m->lock);
}

void
mri_metrics_publish_latency(struct mri_metrics *m, uint64_t us, uint64_t n)
{
	mri_hist_add(&m->latency, us, n);
}

/* ---- rendering ---- */

static void
metrics__printf(struct mri_wbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
metrics__printf(struct mri_wbuf *b, const char *fmt, ...)
{
	char    line[1024];
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		mri_wbuf_put(b, line, (size_t)n < sizeof(line)
					  ? (size_t)n
					  : sizeof(line) - 1);
}

/* A family's HELP and TYPE lines. */
static void
metrics__family(struct mri_wbuf *b, const char *name, const char *type,
		const char *help)
{
	metrics__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			type);
}

/* \p s as a label value: backslash, quote and newline escaped. */
static const char *
metrics__esc(const char *s, char *buf, size_t size)
{
	size_t j = 0;

	for (; *s != '\0' && j + 3 < size; s++) {
		if (*s == '\\' || *s == '"') {
			buf[j++] = '\\';
			buf[j++] = *s;
		} else if (*s == '\n') {
			buf[j++] = '\\';
			buf[j++] = 'n';
		} else {
			buf[j++] = *s;
		}
	}
	buf[j] = '\0';
	return buf;
}

/* Histogram \p h's series of family \p name, with \p labels ("" or
 * `name="value",` pairs, escaped, each with its comma), its values
 * turned into seconds by \p per_s (1e6: µs; 1e3: ms). */
static void
metrics__hist(struct mri_wbuf *b, const char *name, const char *labels,
	      const struct mri_hist *h, double per_s)
{
	uint64_t cum = 0;
	size_t   n   = strlen(labels);

	for (size_t i = 0; i <= h->n; i++) {
		cum += atomic_load(&h->bucket[i]);
		if (i < h->n)
			metrics__printf(b, "%s_bucket{%sle=\"%g\"} %llu\n",
					name, labels, (double)h->le[i] / per_s,
					(unsigned long long)cum);
		else
			metrics__printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n",
					name, labels, (unsigned long long)cum);
	}
	// Without labels, no braces; with, the last comma goes.
	metrics__printf(b, "%s_sum%s%.*s%s %.6f\n", name, n ? "{" : "",
			(int)(n ? n - 1 : 0), labels, n ? "}" : "",
			(double)atomic_load(&h->sum) / per_s);
	metrics__printf(b, "%s_count%s%.*s%s %llu\n", name, n ? "{" : "",
			(int)(n ? n - 1 : 0), labels, n ? "}" : "",
			(unsigned long long)atomic_load(&h->count));
}

static void
metrics__publish(struct mri_metrics *m, struct mri_wbuf *b)
{
	static const char *const result[] = {"ok", "duplicate", "refused",
					     "error"};

	metrics__family(b, "mailroom_publish_messages_total", "counter",
			"Messages published, by topic and result (ok, "
			"duplicate, refused by backpressure, error).");
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i <= MRI_METRICS_TOPICS_MAX; i++) {
		const struct metrics__topic *t = &m->topics[i];
		uint64_t                     any = 0;

		for (int r = 0; r < MRI_PUB_RESULTS; r++)
			any |= t->n[r];
		if (t->name[0] == '\0' || any == 0)
			continue;
		for (int r = 0; r < MRI_PUB_RESULTS; r++)
			metrics__printf(b,
					"mailroom_publish_messages_total{topic="
					"\"%s\",result=\"%s\"} %llu\n",
					t->name, result[r],
					(unsigned long long)t->n[r]);
	}
	pthread_mutex_unlock(&m->lock);
	metrics__family(b, "mailroom_publish_latency_seconds", "histogram",
			"From a publish request's arrival to its answer (every "
			"message acked by Kafka, or failed), per message.");
	metrics__hist(b, "mailroom_publish_latency_seconds", "", &m->latency,
		      1e6);
}

/* One gauge or counter without labels. */
static void
metrics__one(struct mri_wbuf *b, const char *name, const char *type,
	     const char *help, double v)
{
	metrics__family(b, name, type, help);
	metrics__printf(b, "%s %.17g\n", name, v);
}

static void
metrics__status(const struct mri_status *st, struct mri_wbuf *b)
{
	metrics__one(b, "mailroom_uptime_seconds", "gauge",
		     "Seconds since mailroomd started.", (double)st->uptime_s);
	metrics__one(b, "mailroom_kafka_reachable", "gauge",
		     "1 when the producer reaches Kafka, else 0.",
		     st->kafka.reachable ? 1 : 0);
	metrics__one(b, "mailroom_requests_inflight", "gauge",
		     "Requests of the front door not yet answered.",
		     st->inflight_requests);
	metrics__one(b, "mailroom_publish_requests_total", "counter",
		     "PUBLISH requests received.",
		     (double)st->publish.requests);
	metrics__one(b, "mailroom_refused_requests_total", "counter",
		     "Requests of any kind answered with an error frame.",
		     (double)st->publish.refused_requests);
	metrics__one(b, "mailroom_producer_queue_messages", "gauge",
		     "Records in the producer's queue, not yet acked.",
		     st->producer.outq);
	metrics__one(b, "mailroom_producer_recreations_total", "counter",
		     "Times the producer was made again after a fatal error.",
		     (double)st->producer.recreations);
	if (st->has_bp) {
		metrics__one(b, "mailroom_backpressure_bounds", "gauge",
			     "Topics with a lag bound.", (double)st->bp.bounds);
		metrics__one(b, "mailroom_backpressure_throttled_partitions",
			     "gauge",
			     "Partitions whose bound is passed (publishes "
			     "held or refused).",
			     (double)st->bp.throttled);
		metrics__one(b, "mailroom_backpressure_held_messages_total",
			     "counter",
			     "Published messages that waited for a bound.",
			     (double)st->bp.held);
		metrics__one(b, "mailroom_backpressure_refused_messages_total",
			     "counter",
			     "Published messages refused by a bound "
			     "(MR_EBUSY).",
			     (double)st->bp.refused);
	}
}

static int
metrics__group_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mri_consume_sub_stats *)a)->group,
		      ((const struct mri_consume_sub_stats *)b)->group);
}

/* The subscriptions' stats, sorted by group, summed per group into the
 * first of each (*n: the groups). @returns them (free it), or NULL. */
static struct mri_consume_sub_stats *
metrics__groups(struct mri_consume *r, size_t *n)
{
	struct mri_consume_sub_stats *v;
	size_t room = mri_consume_sub_stats(r, NULL, 0) + 16, total, k = 0;

	if ((v = calloc(room, sizeof(*v))) == NULL)
		return NULL;
	if ((total = mri_consume_sub_stats(r, v, room)) > room)
		total = room;
	if (total > 1)
		qsort(v, total, sizeof(*v), metrics__group_cmp);
	for (size_t i = 0; i < total; i++) {
		struct mri_consume_sub_stats *g = &v[k], *s = &v[i];

		if (k > 0 && strcmp(v[k - 1].group, s->group) == 0) {
			g = &v[k - 1];
			g->sessions += s->sessions;
			g->g.inflight += s->g.inflight;
			g->g.buffered += s->g.buffered;
			g->g.acked += s->g.acked;
			g->g.failed += s->g.failed;
			g->g.expired += s->g.expired;
			g->dlq.quarantined += s->dlq.quarantined;
			g->dlq.dlq_errors += s->dlq.dlq_errors;
			g->dlq.trips += s->dlq.trips;
			if (s->dlq.breaker == MRI_DLQ_OPEN ||
			    (s->dlq.breaker == MRI_DLQ_HALF_OPEN &&
			     g->dlq.breaker == MRI_DLQ_CLOSED))
				g->dlq.breaker = s->dlq.breaker;
			continue;
		}
		if (i != k)
			v[k] = *s;
		k++;
	}
	*n = k;
	return v;
}

/* The groups' counters: each group's tally (what it did, ever, and what
 * its subscriptions that left counted) plus its live subscriptions'. */
struct metrics__tallies {
	struct mri_consume_tally_view *v;
	size_t                         n, cap;
	char                          *names; /* the views' groups, copied */
};

static void
metrics__tally_add(void *arg, const struct mri_consume_tally_view *t)
{
	struct metrics__tallies *ts = arg;

	if (ts->n == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 32;
		void  *v   = realloc(ts->v, cap * sizeof(*ts->v));
		void  *nm  = realloc(ts->names,
				     cap * (MRI_SUBSCRIBE_GROUP_MAX + 1));

		if (v != NULL)
			ts->v = v;
		if (nm != NULL)
			ts->names = nm;
		if (v == NULL || nm == NULL)
			return;
		ts->cap = cap;
	}
	snprintf(ts->names + ts->n * (MRI_SUBSCRIBE_GROUP_MAX + 1),
		 MRI_SUBSCRIBE_GROUP_MAX + 1, "%s", t->group);
	ts->v[ts->n]       = *t;
	ts->v[ts->n].group = NULL; /* set once names stops moving */
	ts->n++;
}

/* The live subscriptions' stats of group \p name in \p v (sorted), or
 * NULL. */
static const struct mri_consume_sub_stats *
metrics__live(const struct mri_consume_sub_stats *v, size_t n,
	      const char *name)
{
	struct mri_consume_sub_stats key;

	snprintf(key.group, sizeof(key.group), "%s", name);
	return n == 0 ? NULL
		      : bsearch(&key, v, n, sizeof(*v), metrics__group_cmp);
}

enum metrics__counter {
	MC_DELIVERED,
	MC_REDELIVERED,
	MC_ACKS,
	MC_NACKS,
	MC_REJECTS,
	MC_FAILED,
	MC_EXPIRED,
	MC_QUARANTINED,
	MC_DLQ_ERRORS,
	MC_TRIPS,
	MC_N
};

static const struct {
	const char *name, *help;
} metrics__counters[MC_N] = {
    {"mailroom_consumer_deliveries_total",
     "Messages handed out to the group's sessions."},
    {"mailroom_consumer_redeliveries_total",
     "Messages handed out again (attempt above 1)."},
    {"mailroom_consumer_acks_total", "Messages acked by the group's sessions."},
    {"mailroom_consumer_nacks_total",
     "Messages nacked by the group's sessions."},
    {"mailroom_consumer_rejects_total",
     "Messages rejected (quarantined at once)."},
    {"mailroom_consumer_failed_attempts_total",
     "Failed attempts: nacks, expired ack deadlines, sessions that ended "
     "holding the message."},
    {"mailroom_consumer_expiries_total",
     "Failed attempts whose ack deadline passed."},
    {"mailroom_dlq_quarantined_total",
     "Messages written to the dead-letter topic and confirmed by Kafka."},
    {"mailroom_dlq_write_errors_total", "Dead-letter writes that failed."},
    {"mailroom_breaker_trips_total", "Times the breaker opened."},
};

static uint64_t
metrics__counter(const struct mri_consume_tally_view *t,
		 const struct mri_consume_sub_stats *live,
		 enum metrics__counter c)
{
	switch (c) {
	case MC_DELIVERED: return t->delivered;
	case MC_REDELIVERED: return t->redelivered;
	case MC_ACKS: return t->acks;
	case MC_NACKS: return t->nacks;
	case MC_REJECTS: return t->rejects;
	case MC_FAILED: return t->failed + (live ? live->g.failed : 0);
	case MC_EXPIRED: return t->expired + (live ? live->g.expired : 0);
	case MC_QUARANTINED:
		return t->quarantined + (live ? live->dlq.quarantined : 0);
	case MC_DLQ_ERRORS:
		return t->dlq_errors + (live ? live->dlq.dlq_errors : 0);
	default: return t->trips + (live ? live->dlq.trips : 0);
	}
}

static void
metrics__consume(struct mri_consume *r, struct mri_wbuf *b)
{
	struct metrics__tallies       ts = {0};
	size_t                        n  = 0;
	struct mri_consume_sub_stats *v  = NULL;
	char                          esc[2 * MRI_SUBSCRIBE_GROUP_MAX + 3];

	// The live subscriptions' stats and the groups' tallies, read with
	// no subscription leaving in between (a few tries; rare).
	for (int tries = 0; tries < 8; tries++) {
		uint64_t seq = mri_consume_retired(r);

		free(v);
		free(ts.v);
		free(ts.names);
		ts = (struct metrics__tallies){0};
		n  = 0;
		v  = metrics__groups(r, &n);
		mri_consume_each_tally(r, metrics__tally_add, &ts);
		if (seq % 2 == 0 && mri_consume_retired(r) == seq)
			break;
	}
	for (size_t i = 0; i < ts.n; i++)
		ts.v[i].group = ts.names + i * (MRI_SUBSCRIBE_GROUP_MAX + 1);
	for (int c = 0; c < MC_N; c++) {
		metrics__family(b, metrics__counters[c].name, "counter",
				metrics__counters[c].help);
		for (size_t i = 0; i < ts.n; i++)
			metrics__printf(
			    b, "%s{group=\"%s\"} %llu\n",
			    metrics__counters[c].name,
			    metrics__esc(ts.v[i].group, esc, sizeof(esc)),
			    (unsigned long long)metrics__counter(
				&ts.v[i], metrics__live(v, n, ts.v[i].group),
				(enum metrics__counter)c));
	}
	metrics__family(b, "mailroom_consumer_ack_latency_seconds",
			"histogram",
			"From a record's timestamp (its producer's CreateTime, "
			"or Kafka's LogAppendTime) to its ack by a session of "
			"the group: enqueue to handled.");
	for (size_t i = 0; i < ts.n; i++) {
		char labels[sizeof(esc) + 16];

		snprintf(labels, sizeof(labels), "group=\"%s\",",
			 metrics__esc(ts.v[i].group, esc, sizeof(esc)));
		metrics__hist(b, "mailroom_consumer_ack_latency_seconds",
			      labels, ts.v[i].ack_latency, 1e3);
	}
	free(ts.v);
	free(ts.names);
	if (v == NULL)
		return;
	metrics__family(b, "mailroom_consumer_sessions", "gauge",
			"Open consumer sessions of the group.");
	for (size_t i = 0; i < n; i++)
		metrics__printf(b, "mailroom_consumer_sessions{group=\"%s\"} "
				   "%zu\n",
				metrics__esc(v[i].group, esc, sizeof(esc)),
				v[i].sessions);
	metrics__family(b, "mailroom_consumer_inflight_messages", "gauge",
			"Messages handed out and not yet settled.");
	for (size_t i = 0; i < n; i++)
		metrics__printf(b,
				"mailroom_consumer_inflight_messages{group="
				"\"%s\"} %zu\n",
				metrics__esc(v[i].group, esc, sizeof(esc)),
				v[i].g.inflight);
	metrics__family(b, "mailroom_breaker_state", "gauge",
			"The dead-letter breaker: 0 closed, 1 half-open, 2 "
			"open.");
	for (size_t i = 0; i < n; i++)
		metrics__printf(b, "mailroom_breaker_state{group=\"%s\"} %d\n",
				metrics__esc(v[i].group, esc, sizeof(esc)),
				v[i].dlq.breaker == MRI_DLQ_OPEN	  ? 2
				: v[i].dlq.breaker == MRI_DLQ_HALF_OPEN ? 1
									  : 0);
	free(v);
}

/* The partitions' mailbox depth, collected then sorted. */
struct metrics__part {
	char    group[MRI_SUBSCRIBE_GROUP_MAX + 1];
	char    topic[MRI_TOPIC_MAX + 1];
	int32_t partition;
	size_t  buffered;
};

struct metrics__parts {
	struct metrics__part *v;
	size_t                n, cap;
};

static void
metrics__part_add(void *arg, const char *group,
		  const struct mri_group_part_stats *p)
{
	struct metrics__parts *ps = arg;
	struct metrics__part  *x;

	if (ps->n == MRI_METRICS_ROWS_MAX)
		return;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;

		if ((x = realloc(ps->v, cap * sizeof(*x))) == NULL)
			return;
		ps->v   = x;
		ps->cap = cap;
	}
	x = &ps->v[ps->n++];
	snprintf(x->group, sizeof(x->group), "%s", group);
	snprintf(x->topic, sizeof(x->topic), "%s", p->topic);
	x->partition = p->partition;
	x->buffered  = p->buffered;
}

static int
metrics__part_cmp(const void *a, const void *b)
{
	const struct metrics__part *x = a, *y = b;
	int                         c = strcmp(x->group, y->group);

	if (c == 0)
		c = strcmp(x->topic, y->topic);
	return c != 0 ? c : (x->partition > y->partition) -
				(x->partition < y->partition);
}

static void
metrics__parts(struct mri_consume *r, struct mri_wbuf *b)
{
	struct metrics__parts ps = {0};
	char                  esc[2 * MRI_SUBSCRIBE_GROUP_MAX + 3];

	mri_consume_each_part(r, metrics__part_add, &ps);
	if (ps.n > 1)
		qsort(ps.v, ps.n, sizeof(*ps.v), metrics__part_cmp);
	metrics__family(b, "mailroom_consumer_buffered_messages", "gauge",
			"Records fetched from Kafka and not yet acked, per "
			"partition (the mailbox's depth; in flight included).");
	for (size_t i = 0; i < ps.n; i++) {
		const struct metrics__part *p = &ps.v[i];
		size_t                      sum = p->buffered;

		// A partition of two subscriptions of one group (a rebalance
		// between them) is one series.
		while (i + 1 < ps.n && metrics__part_cmp(p, &ps.v[i + 1]) == 0)
			sum += ps.v[++i].buffered;
		metrics__printf(b,
				"mailroom_consumer_buffered_messages{group=\"%s"
				"\",topic=\"%s\",partition=\"%d\"} %zu\n",
				metrics__esc(p->group, esc, sizeof(esc)),
				p->topic, (int)p->partition, sum);
	}
	free(ps.v);
}

/* One per-partition family of the lag snapshot. */
static void
metrics__lag_family(struct mri_wbuf *b, const struct mri_lag_snapshot *ls,
		    const char *name, const char *help, int what)
{
	char esc[2 * MRI_SUBSCRIBE_GROUP_MAX + 3];

	metrics__family(b, name, "gauge", help);
	for (size_t i = 0; i < ls->nrows && i < MRI_METRICS_ROWS_MAX; i++) {
		const struct mri_lag_row *r = &ls->rows[i];
		double v = what == 0   ? (double)r->lag
			   : what == 1 ? (double)r->time_lag_ms / 1000.0
			   : what == 2 ? (double)r->committed
				       : (double)r->end;

		if ((what == 0 && r->lag < 0) ||
		    (what == 1 && r->time_lag_ms < 0) ||
		    (what == 2 && r->committed < 0) ||
		    (what == 3 && r->end < 0))
			continue;
		metrics__printf(b,
				"%s{group=\"%s\",topic=\"%s\",partition="
				"\"%d\"} %.17g\n",
				name, metrics__esc(r->group, esc, sizeof(esc)),
				r->topic, (int)r->partition, v);
	}
}

static void
metrics__lag(struct mri_lag *l, struct mri_wbuf *b)
{
	const struct mri_lag_snapshot *ls = mri_lag_snapshot(l);

	metrics__lag_family(b, ls, "mailroom_consumer_lag_messages",
			    "Records of the partition the group has not "
			    "committed (the lag monitor's last look).",
			    0);
	metrics__lag_family(b, ls, "mailroom_consumer_lag_seconds",
			    "How old the group's oldest uncommitted record of "
			    "the partition is; 0 when caught up.",
			    1);
	metrics__lag_family(b, ls, "mailroom_consumer_committed_offset",
			    "The group's committed offset.", 2);
	metrics__lag_family(b, ls, "mailroom_partition_end_offset",
			    "The partition's end (high watermark), as the "
			    "group's row saw it.",
			    3);
	mri_lag_snapshot_rele(ls);
}

static void
metrics__restarts_one(void *arg, const char *name, uint64_t restarts)
{
	char esc[2 * MRI_ACTORS_NAME_MAX + 3];

	metrics__printf(arg, "mailroom_actor_restarts_total{supervisor=\"%s\"} "
			     "%llu\n",
			metrics__esc(name, esc, sizeof(esc)),
			(unsigned long long)restarts);
}

/* Restarts per supervisor, as the processes running actors report them. */
static void
metrics__restarts(struct mri_actors *a, struct mri_wbuf *b)
{
	metrics__family(b, "mailroom_actor_restarts_total", "counter",
			"Actors restarted by their supervisor, over every "
			"process that reports (mr_actors_report).");
	mri_actors_each(a, metrics__restarts_one, b);
}

/* The records each dead-letter topic holds, end - start summed over its
 * partitions: the lag monitor's watched topics, which mailroomd's are
 * (broker/server_lag.c). A topic with a partition Kafka has not answered
 * for is left out rather than shown short. */
static void
metrics__dlq(struct mri_lag *l, struct mri_wbuf *b)
{
	const struct mri_lag_snapshot *ls = mri_lag_snapshot(l);
	size_t                         series = 0;

	metrics__family(b, "mailroom_dlq_records", "gauge",
			"Records held by the dead-letter topic (replayed and "
			"purged ones included until Kafka's retention drops "
			"them; see GET /v1/dlq for open ones).");
	for (size_t i = 0; i < ls->ntopics && series < MRI_METRICS_ROWS_MAX;) {
		const char *topic = ls->topics[i].topic;
		int64_t     sum   = 0;

		// Rows are sorted by topic: its partitions come together.
		for (; i < ls->ntopics; i++) {
			const struct mri_lag_topic_row *r = &ls->topics[i];

			if (strcmp(r->topic, topic) != 0)
				break;
			if (r->start < 0 || r->end < 0)
				sum = -1;
			else if (sum >= 0)
				sum += r->end - r->start;
		}
		if (sum < 0)
			continue;
		metrics__printf(b, "mailroom_dlq_records{topic=\"%s\"} %lld\n",
				topic, (long long)sum);
		series++;
	}
	mri_lag_snapshot_rele(ls);
}

int
mri_server_metrics(struct mri_server *s, struct mri_wbuf *out)
{
	struct mri_status *st = malloc(sizeof(*st));

	if (st == NULL)
		return MR_ENOMEM;
	mri_server_status(s, st);
	metrics__status(st, out);
	free(st);
	metrics__publish(s->metrics, out);
	if (s->consume != NULL) {
		metrics__consume(s->consume, out);
		metrics__parts(s->consume, out);
	}
	if (s->lag != NULL) {
		metrics__lag(s->lag, out);
		metrics__dlq(s->lag, out);
	}
	if (s->admin != NULL)
		metrics__restarts(mri_admin_actors(s->admin), out);
	return out->err;
}
