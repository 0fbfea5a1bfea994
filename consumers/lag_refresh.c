/*
 * One refresh of the lag monitor (consumers/lag.h): the metadata of every
 * topic, each group's committed offsets (ListConsumerGroupOffsets, all
 * groups' requests in flight at once), the end and start offsets of the
 * partitions involved (rd_kafka_offsets_for_times with -1 and -2), the
 * end-offset rings, and a new snapshot. On the monitor's thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/lag_internal.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "mailroom/error.h"

/* A group's committed offsets, asked for in this refresh. */
struct lag_greq {
	const char                      *group;
	bool                             served;
	bool                             wildcard; /* every topic it has */
	const struct lag_pair           *first;    /* its pairs */
	size_t                           npairs;
	rd_kafka_topic_partition_list_t *res; /* sorted; NULL: failed */
	bool                             answered;
	char                             error[256];
};

/* The refresh's working state. */
struct lag_work {
	const struct lag_refresh          *in;
	const struct rd_kafka_metadata    *md;
	const rd_kafka_metadata_topic_t  **topics; /* sorted by name */
	size_t                             ntopics;
	struct lag_greq                   *greqs;
	size_t                             ngreqs;
	size_t                             nalone; /* pairs without a group */
	rd_kafka_topic_partition_list_t   *ends;   /* sorted */
	rd_kafka_topic_partition_list_t   *starts; /* sorted */
	bool                               ends_ok;
	struct lag_snap                   *snap;
	size_t                             rows_cap, groups_cap, strs_cap;
	uint64_t                           now;
	int64_t                            wall;
};

/* ---- topics -------------------------------------------------------------- */

static int
lag__cmp_mdtopic(const void *a, const void *b)
{
	const rd_kafka_metadata_topic_t *const *x = a, *const *y = b;

	return strcmp((*x)->topic, (*y)->topic);
}

static const rd_kafka_metadata_topic_t *
lag__topic(const struct lag_work *w, const char *name)
{
	size_t lo = 0, hi = w->ntopics;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int    c   = strcmp(w->topics[mid]->topic, name);

		if (c == 0)
			return w->topics[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Kafka's own topics (__consumer_offsets) and mailroom's (journals) are
 * not among a group's topics for a wildcard. */
static bool
lag__internal_topic(const char *name)
{
	return strncmp(name, "__", 2) == 0;
}

/* Whether \p topic is watched: a pair without a group (they sort first,
 * by topic) that says so. */
static bool
lag__watched(const struct lag_work *w, const char *topic)
{
	size_t lo = 0, hi = w->nalone;

	while (lo < hi) {
		size_t                 mid = (lo + hi) / 2;
		const struct lag_pair *p   = &w->in->pairs[mid];
		int                    c;

		c = p->topic == NULL ? -1 : strcmp(p->topic, topic);
		if (c == 0)
			return p->watched;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
lag__metadata(struct lag_work *w, char *why, size_t n)
{
	rd_kafka_resp_err_t err;

	// All topics: naming one would make the embedded cluster create it.
	err = rd_kafka_metadata(w->in->rk, 1, NULL, &w->md, w->in->timeout_ms);
	if (err) {
		w->md = NULL;
		snprintf(why, n, "metadata request failed: %s",
			 rd_kafka_err2str(err));
		return mri_kafka_err(err);
	}
	w->topics = calloc((size_t)(w->md->topic_cnt > 0 ? w->md->topic_cnt : 1),
			   sizeof(*w->topics));
	if (w->topics == NULL)
		return MR_ENOMEM;
	for (int i = 0; i < w->md->topic_cnt; i++)
		if (!w->md->topics[i].err && w->md->topics[i].partition_cnt > 0)
			w->topics[w->ntopics++] = &w->md->topics[i];
	qsort(w->topics, w->ntopics, sizeof(*w->topics), lag__cmp_mdtopic);
	return MR_OK;
}

static void
lag__add_topic(rd_kafka_topic_partition_list_t *l,
	       const rd_kafka_metadata_topic_t *t, int64_t offset)
{
	for (int p = 0; p < t->partition_cnt; p++)
		rd_kafka_topic_partition_list_add(l, t->topic,
						  t->partitions[p].id)
		    ->offset = offset;
}

/* ---- committed offsets --------------------------------------------------- */

/* The groups' requests: one per group, each naming its partitions. */
static int
lag__greqs(struct lag_work *w)
{
	const struct lag_refresh *in = w->in;

	w->greqs = calloc(in->npairs ? in->npairs : 1, sizeof(*w->greqs));
	if (w->greqs == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < in->npairs; i++) {
		const struct lag_pair *p = &in->pairs[i];
		struct lag_greq       *g;

		if (p->group == NULL) {
			w->nalone = i + 1;
			continue;
		}
		g = w->ngreqs > 0 ? &w->greqs[w->ngreqs - 1] : NULL;
		if (g == NULL || strcmp(g->group, p->group) != 0) {
			g        = &w->greqs[w->ngreqs++];
			g->group = p->group;
			g->first = p;
		}
		g->npairs++;
		g->served |= p->served;
		g->wildcard |= p->topic == NULL;
	}
	return MR_OK;
}

static rd_kafka_topic_partition_list_t *
lag__greq_partitions(const struct lag_work *w, const struct lag_greq *g)
{
	rd_kafka_topic_partition_list_t *l =
	    rd_kafka_topic_partition_list_new(16);

	if (g->wildcard) {
		for (size_t i = 0; i < w->ntopics; i++)
			if (!lag__internal_topic(w->topics[i]->topic))
				lag__add_topic(l, w->topics[i], 0);
		return l;
	}
	for (size_t i = 0; i < g->npairs; i++) {
		const rd_kafka_metadata_topic_t *t =
		    lag__topic(w, g->first[i].topic);

		if (t != NULL)
			lag__add_topic(l, t, 0);
	}
	return l;
}

static void
lag__greq_answer(struct lag_greq *g, rd_kafka_event_t *ev)
{
	const rd_kafka_group_result_t **gr;
	const rd_kafka_error_t         *ge;
	size_t                          n = 0;

	g->answered = true;
	if (rd_kafka_event_error(ev)) {
		snprintf(g->error, sizeof(g->error), "%s",
			 rd_kafka_event_error_string(ev));
		return;
	}
	gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
	    rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
	if (n != 1) {
		snprintf(g->error, sizeof(g->error),
			 "ListConsumerGroupOffsets answered %zu groups", n);
		return;
	}
	if ((ge = rd_kafka_group_result_error(gr[0])) != NULL) {
		snprintf(g->error, sizeof(g->error), "%s",
			 rd_kafka_error_string(ge));
		return;
	}
	g->res = rd_kafka_topic_partition_list_copy(
	    rd_kafka_group_result_partitions(gr[0]));
	if (g->res != NULL)
		rd_kafka_topic_partition_list_sort(g->res, NULL, NULL);
}

/* Every group's committed offsets, the requests all in flight at once. */
static void
lag__committed(struct lag_work *w)
{
	rd_kafka_t       *rk = w->in->rk;
	rd_kafka_queue_t *q  = rd_kafka_queue_new(rk);
	size_t            sent = 0, got = 0;
	uint64_t          deadline;

	for (size_t i = 0; i < w->ngreqs; i++) {
		struct lag_greq                     *g = &w->greqs[i];
		rd_kafka_topic_partition_list_t     *l;
		rd_kafka_ListConsumerGroupOffsets_t *lo;
		rd_kafka_AdminOptions_t             *opts;

		l = lag__greq_partitions(w, g);
		if (l->cnt == 0) {
			// Nothing of it exists: no offsets, asked of no one.
			g->answered = true;
			g->res      = l;
			continue;
		}
		lo   = rd_kafka_ListConsumerGroupOffsets_new(g->group, l);
		opts = rd_kafka_AdminOptions_new(
		    rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
		rd_kafka_AdminOptions_set_request_timeout(
		    opts, w->in->timeout_ms, NULL, 0);
		rd_kafka_AdminOptions_set_opaque(opts, g);
		rd_kafka_ListConsumerGroupOffsets(rk, &lo, 1, opts, q);
		rd_kafka_AdminOptions_destroy(opts);
		rd_kafka_ListConsumerGroupOffsets_destroy(lo);
		rd_kafka_topic_partition_list_destroy(l);
		sent++;
	}
	deadline = mri_deadline_in((uint64_t)w->in->timeout_ms + 2000);
	while (got < sent) {
		uint64_t          left = mri_deadline_left(deadline);
		rd_kafka_event_t *ev;

		if (left == 0)
			break;
		ev = rd_kafka_queue_poll(q, (int)(left < 200 ? left : 200));
		if (ev == NULL) {
			if (atomic_load(w->in->stop))
				break;
			continue;
		}
		if (rd_kafka_event_type(ev) ==
		    RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT) {
			lag__greq_answer(rd_kafka_event_opaque(ev), ev);
			got++;
		}
		rd_kafka_event_destroy(ev);
	}
	for (size_t i = 0; i < w->ngreqs; i++)
		if (!w->greqs[i].answered)
			snprintf(w->greqs[i].error, sizeof(w->greqs[i].error),
				 "no answer to ListConsumerGroupOffsets within "
				 "%d ms",
				 w->in->timeout_ms + 2000);
	// Requests still in flight answer to a queue that is gone: librdkafka
	// drops their results.
	rd_kafka_queue_destroy(q);
}

/* (topic, partition) in \p l, sorted; NULL when not there. */
static const rd_kafka_topic_partition_t *
lag__find_tp(const rd_kafka_topic_partition_list_t *l, const char *topic,
	     int32_t partition)
{
	int lo = 0, hi = l->cnt;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		int c   = lag__cmp_tp(l->elems[mid].topic,
				      l->elems[mid].partition, topic, partition);

		if (c == 0)
			return &l->elems[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The committed offset of (topic, partition) in \p res (sorted); -1:
 * none. */
static int64_t
lag__committed_of(const rd_kafka_topic_partition_list_t *res,
		  const char *topic, int32_t partition)
{
	const rd_kafka_topic_partition_t *tp =
	    lag__find_tp(res, topic, partition);

	return tp == NULL || tp->err || tp->offset < 0 ? -1 : tp->offset;
}

/* Whether the group has a commit on some partition of \p topic. */
static bool
lag__has_commit(const rd_kafka_topic_partition_list_t *res,
		const char *topic)
{
	for (int i = 0; res != NULL && i < res->cnt; i++)
		if (!res->elems[i].err && res->elems[i].offset >= 0 &&
		    strcmp(res->elems[i].topic, topic) == 0)
			return true;
	return false;
}

/* Whether \p g's rows include \p topic (concrete, or a wildcard's with a
 * commit). */
static bool
lag__greq_topic(const struct lag_greq *g, const char *topic)
{
	for (size_t i = 0; i < g->npairs; i++)
		if (g->first[i].topic != NULL &&
		    strcmp(g->first[i].topic, topic) == 0)
			return true;
	return g->wildcard && g->res != NULL && !lag__internal_topic(topic) &&
	       lag__has_commit(g->res, topic);
}

/* ---- end and start offsets ----------------------------------------------- */

static int
lag__ends(struct lag_work *w)
{
	rd_kafka_resp_err_t e1, e2;

	// A watched topic's partitions get rings as a group's do: bounded
	// (MRI_LAG_RING), and a group that starts reading one has them.
	w->ends = rd_kafka_topic_partition_list_new(16);
	for (size_t i = 0; i < w->ntopics; i++) {
		const rd_kafka_metadata_topic_t *t = w->topics[i];
		bool                             want;

		want = lag__watched(w, t->topic);
		for (size_t j = 0; j < w->ngreqs && !want; j++)
			want = lag__greq_topic(&w->greqs[j], t->topic);
		if (want)
			lag__add_topic(w->ends, t, RD_KAFKA_OFFSET_END);
	}
	rd_kafka_topic_partition_list_sort(w->ends, NULL, NULL);
	w->starts = rd_kafka_topic_partition_list_copy(w->ends);
	for (int i = 0; i < w->starts->cnt; i++)
		w->starts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
	if (w->ends->cnt == 0) {
		w->ends_ok = true;
		return MR_OK;
	}
	// -1 and -2 as timestamps: ListOffsets' latest and earliest, batched
	// per leader.
	e1 = rd_kafka_offsets_for_times(w->in->rk, w->ends, w->in->timeout_ms);
	if (atomic_load(w->in->stop))
		return MR_ESHUTDOWN;
	e2 = rd_kafka_offsets_for_times(w->in->rk, w->starts,
					w->in->timeout_ms);
	w->ends_ok = e1 == RD_KAFKA_RESP_ERR_NO_ERROR;
	if (e2 != RD_KAFKA_RESP_ERR_NO_ERROR)
		for (int i = 0; i < w->starts->cnt; i++)
			w->starts->elems[i].offset = -1;
	w->now = mri_mono_ms();
	return MR_OK;
}

static int64_t
lag__offset_in(const rd_kafka_topic_partition_list_t *l, bool ok,
	       const char *topic, int32_t partition)
{
	const rd_kafka_topic_partition_t *tp;

	if (!ok)
		return -1;
	tp = lag__find_tp(l, topic, partition);
	return tp == NULL || tp->err || tp->offset < 0 ? -1 : tp->offset;
}

/* ---- the snapshot -------------------------------------------------------- */

static const char *
lag__str(struct lag_work *w, const char *s)
{
	struct lag_snap *sn = w->snap;
	char            *c;

	// Rows come group by group, topic by topic: their group and topic
	// are among the last two strings.
	for (size_t i = sn->nstrs; i > 0 && i + 2 > sn->nstrs; i--)
		if (strcmp(sn->strs[i - 1], s) == 0)
			return sn->strs[i - 1];
	if (sn->nstrs == w->strs_cap) {
		size_t cap = w->strs_cap ? w->strs_cap * 2 : 16;
		char **v   = realloc(sn->strs, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		sn->strs    = v;
		w->strs_cap = cap;
	}
	if ((c = strdup(s)) == NULL)
		return NULL;
	sn->strs[sn->nstrs++] = c;
	return c;
}

static struct mri_lag_row *
lag__row_new(struct lag_work *w)
{
	struct lag_snap *sn = w->snap;

	if (sn->pub.nrows == w->rows_cap) {
		size_t              cap = w->rows_cap ? w->rows_cap * 2 : 64;
		struct mri_lag_row *v   = realloc(sn->rows, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		sn->rows     = v;
		sn->pub.rows = v;
		w->rows_cap  = cap;
	}
	return &sn->rows[sn->pub.nrows++];
}

/* The previous snapshot's rows of \p group on \p topic (NULL: every
 * topic), carried over when Kafka did not answer this time. */
static int
lag__carry(struct lag_work *w, const char *group, const char *topic)
{
	const struct lag_snap *prev = w->in->prev;

	for (size_t i = 0; prev != NULL && i < prev->pub.nrows; i++) {
		const struct mri_lag_row *o = &prev->rows[i];
		struct mri_lag_row       *r;

		if (strcmp(o->group, group) != 0 ||
		    (topic != NULL && strcmp(o->topic, topic) != 0))
			continue;
		if ((r = lag__row_new(w)) == NULL)
			return MR_ENOMEM;
		*r = *o;
		if ((r->group = lag__str(w, group)) == NULL ||
		    (r->topic = lag__str(w, o->topic)) == NULL)
			return MR_ENOMEM;
	}
	return MR_OK;
}

/* The row of \p g on one partition. */
static int
lag__row(struct lag_work *w, const struct lag_greq *g, const char *topic,
	 int32_t partition)
{
	const struct mri_lag_row *prev = NULL;
	struct mri_lag_row       *r;
	struct lag_part          *p;
	int64_t                   end, start, pos;

	end   = lag__offset_in(w->ends, w->ends_ok, topic, partition);
	start = lag__offset_in(w->starts, true, topic, partition);
	if (w->in->prev != NULL)
		prev = mri_lag_find(&w->in->prev->pub, g->group, topic,
				    partition);
	if ((g->res == NULL || end < 0) && prev != NULL) {
		if ((r = lag__row_new(w)) == NULL)
			return MR_ENOMEM;
		*r = *prev;
	} else {
		if ((r = lag__row_new(w)) == NULL)
			return MR_ENOMEM;
		memset(r, 0, sizeof(*r));
		r->partition  = partition;
		r->end        = end;
		r->start      = start;
		r->committed  = g->res != NULL ? lag__committed_of(g->res, topic,
								  partition)
					       : -1;
		r->updated_ms = w->wall;
		p = lag__ring_find(w->in->rings, topic, partition);
		if (g->res == NULL || end < 0 || p == NULL) {
			r->state       = MRI_LAG_UNKNOWN;
			r->lag         = -1;
			r->time_lag_ms = -1;
		} else {
			if (r->committed >= 0) {
				r->state = MRI_LAG_OK;
				pos      = r->committed;
			} else {
				r->state = MRI_LAG_NO_COMMIT;
				pos      = start >= 0 ? start : 0;
			}
			r->lag         = end > pos ? end - pos : 0;
			r->time_lag_ms = lag__time_lag(p, pos, w->now);
			if (pos < p->minpos)
				p->minpos = pos;
		}
	}
	r->group = lag__str(w, g->group);
	r->topic = lag__str(w, topic);
	return r->group != NULL && r->topic != NULL ? MR_OK : MR_ENOMEM;
}

static int
lag__group_rows(struct lag_work *w, struct lag_greq *g)
{
	struct mri_lag_group *gs;
	size_t                first = w->snap->pub.nrows;
	int                   rc;

	if (g->res == NULL && g->wildcard) {
		// Which topics it has is not known this time.
		if ((rc = lag__carry(w, g->group, NULL)) != MR_OK)
			return rc;
	} else {
		for (size_t i = 0; i < w->ntopics; i++) {
			const rd_kafka_metadata_topic_t *t = w->topics[i];

			if (!lag__greq_topic(g, t->topic))
				continue;
			for (int p = 0; p < t->partition_cnt; p++)
				if ((rc = lag__row(w, g, t->topic,
						   t->partitions[p].id)) != MR_OK)
					return rc;
		}
	}
	gs         = &w->snap->groups[w->snap->pub.ngroups++];
	gs->served = g->served;
	gs->group  = lag__str(w, g->group);
	if (g->res == NULL) {
		gs->state = MRI_LAG_GROUP_ERROR;
		gs->error = lag__str(w, g->error);
	} else {
		gs->state = MRI_LAG_GROUP_NO_OFFSETS;
		for (size_t i = first; i < w->snap->pub.nrows; i++)
			if (w->snap->rows[i].committed >= 0)
				gs->state = MRI_LAG_GROUP_OK;
	}
	return gs->group != NULL ? MR_OK : MR_ENOMEM;
}

/* The row of (topic, partition) in \p s's watched topics, or NULL. */
static const struct mri_lag_topic_row *
lag__topic_row_find(const struct mri_lag_snapshot *s, const char *topic,
		    int32_t partition)
{
	size_t lo = 0, hi = s->ntopics;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int    c   = lag__cmp_tp(s->topics[mid].topic,
				      s->topics[mid].partition, topic,
				      partition);

		if (c == 0)
			return &s->topics[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
lag__cmp_topic_row(const void *a, const void *b)
{
	const struct mri_lag_topic_row *x = a, *y = b;

	return lag__cmp_tp(x->topic, x->partition, y->topic, y->partition);
}

/* The rows of the watched topics that exist: each partition's start and
 * end, or its previous row when Kafka did not say both this time (as a
 * group's row is kept: its updated_ms tells). */
static int
lag__topic_rows(struct lag_work *w)
{
	struct lag_snap *sn = w->snap;
	size_t           n  = 0;

	for (size_t i = 0; i < w->ntopics; i++)
		if (lag__watched(w, w->topics[i]->topic))
			n += (size_t)w->topics[i]->partition_cnt;
	if ((sn->topics = calloc(n ? n : 1, sizeof(*sn->topics))) == NULL)
		return MR_ENOMEM;
	sn->pub.topics = sn->topics;
	n = 0;
	for (size_t i = 0; i < w->ntopics; i++) {
		const rd_kafka_metadata_topic_t *t = w->topics[i];
		const char                      *name;

		if (!lag__watched(w, t->topic))
			continue;
		if ((name = lag__str(w, t->topic)) == NULL)
			return MR_ENOMEM;
		for (int p = 0; p < t->partition_cnt; p++) {
			struct mri_lag_topic_row       *r = &sn->topics[n++];
			const struct mri_lag_topic_row *o = NULL;

			r->topic      = name;
			r->partition  = t->partitions[p].id;
			r->start      = lag__offset_in(w->starts, true, name,
						       r->partition);
			r->end        = lag__offset_in(w->ends, w->ends_ok, name,
						       r->partition);
			r->updated_ms = w->wall;
			if ((r->start < 0 || r->end < 0) && w->in->prev != NULL)
				o = lag__topic_row_find(&w->in->prev->pub, name,
							r->partition);
			if (o != NULL) {
				*r       = *o;
				r->topic = name;
			}
		}
	}
	if (n > 1)
		qsort(sn->topics, n, sizeof(*sn->topics), lag__cmp_topic_row);
	sn->pub.ntopics = n;
	return MR_OK;
}

static int
lag__cmp_row(const void *a, const void *b)
{
	const struct mri_lag_row *x = a, *y = b;
	int                       c = strcmp(x->group, y->group);

	return c != 0 ? c : lag__cmp_tp(x->topic, x->partition, y->topic,
					y->partition);
}

static int
lag__build(struct lag_work *w)
{
	struct lag_snap *sn = w->snap;
	int              rc;

	sn->groups = calloc(w->ngreqs ? w->ngreqs : 1, sizeof(*sn->groups));
	sn->missing = calloc(w->in->npairs ? w->in->npairs : 1,
			     sizeof(*sn->missing));
	if (sn->groups == NULL || sn->missing == NULL)
		return MR_ENOMEM;
	sn->pub.groups = sn->groups;
	for (size_t i = 0; i < w->ngreqs; i++)
		if ((rc = lag__group_rows(w, &w->greqs[i])) != MR_OK)
			return rc;
	if ((rc = lag__topic_rows(w)) != MR_OK)
		return rc;
	for (size_t i = 0; i < w->in->npairs; i++) {
		const char *t = w->in->pairs[i].topic;

		if (t != NULL && lag__topic(w, t) == NULL && !lag__snap_missing(sn, t) &&
		    (sn->missing[sn->nmissing++] = strdup(t)) == NULL)
			return MR_ENOMEM;
	}
	if (sn->pub.nrows > 0)
		qsort(sn->rows, sn->pub.nrows, sizeof(*sn->rows), lag__cmp_row);
	for (size_t i = 0; i < w->in->rings->n; i++)
		if (w->in->rings->v[i].minpos != INT64_MAX)
			lag__ring_trim(&w->in->rings->v[i]);
	sn->pub.taken_ms = w->wall;
	return MR_OK;
}

int
lag__refresh(const struct lag_refresh *in, struct lag_snap **out, char *why,
	     size_t why_size)
{
	struct lag_work w;
	int             rc;

	memset(&w, 0, sizeof(w));
	w.in = in;
	snprintf(why, why_size, "out of memory");
	if (in->npairs == 0) {
		// Nothing tracked: nothing to ask Kafka.
		lag__rings_fini(in->rings);
		if ((*out = lag__snap_new()) == NULL)
			return MR_ENOMEM;
		(*out)->pub.taken_ms = mri_wall_ms();
		return MR_OK;
	}
	if ((rc = lag__metadata(&w, why, why_size)) != MR_OK)
		goto out;
	if ((rc = lag__greqs(&w)) != MR_OK)
		goto out;
	if (atomic_load(in->stop)) {
		rc = MR_ESHUTDOWN;
		goto out;
	}
	lag__committed(&w);
	if (atomic_load(in->stop)) {
		rc = MR_ESHUTDOWN;
		goto out;
	}
	w.now  = mri_mono_ms();
	w.wall = mri_wall_ms();
	if ((rc = lag__ends(&w)) != MR_OK)
		goto out;
	if ((rc = lag__rings_update(in->rings, w.ends, w.ends_ok,
				    w.now)) != MR_OK)
		goto out;
	if ((w.snap = lag__snap_new()) == NULL) {
		rc = MR_ENOMEM;
		goto out;
	}
	if ((rc = lag__build(&w)) != MR_OK)
		goto out;
	*out   = w.snap;
	w.snap = NULL;
out:
	if (rc == MR_ESHUTDOWN)
		snprintf(why, why_size, "the lag monitor is stopping");
	lag__snap_rele(w.snap);
	for (size_t i = 0; i < w.ngreqs; i++)
		if (w.greqs[i].res != NULL)
			rd_kafka_topic_partition_list_destroy(w.greqs[i].res);
	free(w.greqs);
	if (w.ends != NULL)
		rd_kafka_topic_partition_list_destroy(w.ends);
	if (w.starts != NULL)
		rd_kafka_topic_partition_list_destroy(w.starts);
	free(w.topics);
	if (w.md != NULL)
		rd_kafka_metadata_destroy(w.md);
	return rc;
}
