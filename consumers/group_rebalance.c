/*
 * What a rebalance does to a group (group_internal.h), on the group's
 * thread (or the caller's, as an unsubscribe leaves): the partitions
 * assigned, each from its committed offset with the acks beyond it that
 * the commit's metadata kept; the partitions revoked, once the acks in
 * flight arrived or revoke_wait_ms passed; and the commits themselves.
 * The group's thread and its life are in group.c.
 */
#include "group.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/group_internal.h"
#include "consumers/journal.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"

// Kafka's offset.metadata.max.bytes is 4096 by default.
#define GROUP__META_MAX 4000
#define GROUP__META_PREFIX "mr1:"
#define GROUP__FLUSH_BEHIND_MS 2000 /* at a revoke */

/* ---- commits --------------------------------------------------------- */

/* Acks beyond the prefix, as deltas from the committed offset. Those that
 * do not fit are left out: they will be delivered again. */
static void
group__meta(struct mri_group *g, int32_t idx, int64_t commit, char *buf,
	    size_t cap, size_t *len)
{
	int64_t  stack[512];
	size_t   n, k, w;

	n = mri_engine_acked_beyond(g->e, idx, stack, 512);
	*len = 0;
	if (n == 0)
		return;
	w = (size_t)snprintf(buf, cap, "%s", GROUP__META_PREFIX);
	for (k = 0; k < n && k < 512; k++) {
		int r = snprintf(buf + w, cap - w, k ? ",%" PRId64 : "%" PRId64,
				 stack[k] - commit);

		if (r < 0 || (size_t)r >= cap - w)
			break;
		w += (size_t)r;
	}
	*len = w;
}

static void
group__meta_parse(const char *meta, size_t len, int64_t start,
		  int64_t **out, size_t *n)
{
	size_t      plen = strlen(GROUP__META_PREFIX), cap = 0;
	const char *p, *end = meta + len;

	*out = NULL;
	*n   = 0;
	if (meta == NULL || len <= plen ||
	    memcmp(meta, GROUP__META_PREFIX, plen) != 0)
		return;
	for (p = meta + plen; p < end; p++)
		cap += *p == ',';
	if ((*out = malloc((cap + 1) * sizeof(**out))) == NULL)
		return;
	for (p = meta + plen; p < end;) {
		int64_t d = 0;
		bool    digits = false;

		while (p < end && *p >= '0' && *p <= '9' && d < INT64_MAX / 10) {
			d      = d * 10 + (*p++ - '0');
			digits = true;
		}
		if (!digits || (p < end && *p != ',') || d <= 0)
			break; // malformed: keep what was read
		(*out)[(*n)++] = start + d;
		if (p < end)
			p++;
	}
}

/* The committable offsets that moved, with their metadata; NULL if none. */
rd_kafka_topic_partition_list_t *
group__commit_list(struct mri_group *g, bool all)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	char                             meta[GROUP__META_MAX];

	for (size_t i = 0; i < g->nparts; i++) {
		struct group_part             *p = &g->parts[i];
		rd_kafka_topic_partition_t    *tp;
		int64_t                        off;
		size_t                         mlen;

		if (!p->used)
			continue;
		off = mri_engine_committable(g->e, (int32_t)i);
		group__meta(g, (int32_t)i, off, meta, sizeof(meta), &mlen);
		if (off < 0 || (!all && off == p->committed && mlen == 0))
			continue;
		if (l == NULL && (l = rd_kafka_topic_partition_list_new(8)) ==
				     NULL)
			return NULL;
		tp = rd_kafka_topic_partition_list_add(l, p->topic,
						       p->partition);
		tp->offset = off;
		if (mlen > 0 && (tp->metadata = malloc(mlen)) != NULL) {
			memcpy(tp->metadata, meta, mlen);
			tp->metadata_size = mlen;
		}
		p->committed = off;
	}
	return l;
}

void
group__commit(struct mri_group *g, rd_kafka_topic_partition_list_t *l,
	      bool sync)
{
	rd_kafka_resp_err_t err;

	if (l == NULL)
		return;
	err = rd_kafka_commit(g->rk, l, sync ? 0 : 1);
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		mri_warn("component=consumer group=%s msg=\"commit failed: "
			 "%s\"",
			 g->name, rd_kafka_err2str(err));
	rd_kafka_topic_partition_list_destroy(l);
}

/* ---- assign and revoke ---------------------------------------------- */

static struct group_part *
group__part_new(struct mri_group *g, const char *topic, int32_t partition,
		int32_t *idx)
{
	size_t             i;
	struct group_part *p;

	for (i = 0; i < g->nparts && g->parts[i].used; i++)
		;
	if (i == g->nparts) {
		size_t             n = g->nparts ? g->nparts * 2 : 8;
		struct group_part *a = realloc(g->parts, n * sizeof(*a));

		if (a == NULL)
			return NULL;
		memset(a + g->nparts, 0, (n - g->nparts) * sizeof(*a));
		g->parts  = a;
		g->nparts = n;
	}
	p = &g->parts[i];
	memset(p, 0, sizeof(*p));
	if ((p->topic = strdup(topic)) == NULL)
		return NULL;
	p->used      = true;
	p->partition = partition;
	p->jkey      = mri_journal_part_key(topic, partition);
	p->committed = -1;
	*idx         = (int32_t)i;
	return p;
}

/* Each partition gets a queue of its own, read only while the engine has
 * room for it: a full partition's records wait in librdkafka, which stops
 * fetching it at queued.max.messages.kbytes (per partition with separate
 * queues). No pause: librdkafka 2.0.2 drops what it had prefetched for a
 * paused partition. The queue is taken off the consumer's before
 * rd_kafka_assign starts the fetch (an application's forward is kept by
 * it): once fetched, records went to the consumer's queue, read one a
 * round, while later ones came in batches from the partition's, so a
 * partition's records arrived out of order, and the engine refused those
 * below the last it had, never to read them again in that assignment. */
static void
group__part_queue(struct mri_group *g, struct group_part *p,
		  const rd_kafka_topic_partition_t *tp)
{
	if ((p->q = rd_kafka_queue_get_partition(g->rk, tp->topic,
						 tp->partition)) != NULL)
		rd_kafka_queue_forward(p->q, NULL);
}

static void
group__assign(struct mri_group *g, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_resp_err_t err;

	// What other members of the group acked and dispatched up to now
	// must be known before these partitions' records arrive.
	if (g->j != NULL &&
	    mri_journal_catch_up(g->j, GROUP__JOURNAL_WAIT_MS) != MR_OK)
		mri_warn("component=consumer group=%s msg=\"the group's "
			 "journal could not be read to its end: some records "
			 "may be delivered again\"",
			 g->name);
	err = rd_kafka_committed(g->rk, parts, GROUP__COMMIT_TIMEOUT_MS);
	if (err)
		mri_warn("component=consumer group=%s msg=\"reading the "
			 "committed offsets failed: %s; starting from the "
			 "reset position\"",
			 g->name, rd_kafka_err2str(err));
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		struct group_part          *p;
		int64_t                     start, *acked = NULL;
		size_t                      nacked = 0;
		int32_t                     idx;

		if (err)
			tp->offset = RD_KAFKA_OFFSET_INVALID;
		if (tp->offset >= 0) {
			int64_t lo, hi;
			char    what[160];

			// Kafka would reset a position it no longer has
			// without a word: say it, and where the loss is.
			if (rd_kafka_query_watermark_offsets(
				g->rk, tp->topic, tp->partition, &lo, &hi,
				GROUP__COMMIT_TIMEOUT_MS) == 0 &&
			    lo > tp->offset) {
				snprintf(what, sizeof(what),
					 "committed offset %" PRId64
					 ", oldest kept %" PRId64 ": %" PRId64
					 " records lost to this group",
					 tp->offset, lo, lo - tp->offset);
				group__dropped(g, tp->topic, tp->partition,
					       what);
				tp->offset = lo;
			}
		}
		// "start": "latest" with nothing committed: the end as it is
		// now (librdkafka's "latest" is not the engine's start).
		if (tp->offset < 0 && g->c.start_latest) {
			int64_t lo, hi;

			if (rd_kafka_query_watermark_offsets(
				g->rk, tp->topic, tp->partition, &lo, &hi,
				GROUP__COMMIT_TIMEOUT_MS) == 0)
				tp->offset = hi;
		}
		start = tp->offset >= 0 ? tp->offset : 0;
		if ((p = group__part_new(g, tp->topic, tp->partition, &idx)) ==
		    NULL) {
			mri_err("component=consumer group=%s msg=\"out of "
				"memory assigning %s/%" PRId32 "\"",
				g->name, tp->topic, tp->partition);
			continue;
		}
		if (tp->offset >= 0)
			group__meta_parse(tp->metadata, tp->metadata_size,
					  start, &acked, &nacked);
		p->committed = tp->offset;
		group__part_queue(g, p, tp);
		if (mri_engine_assign(g->e, idx, start, acked, nacked) !=
		    MR_OK)
			mri_err("component=consumer group=%s msg=\"cannot "
				"assign %s/%" PRId32 "\"",
				g->name, tp->topic, tp->partition);
		mri_info("component=consumer group=%s topic=%s "
			 "partition=%" PRId32 " offset=%" PRId64
			 " acked_beyond=%zu msg=\"assigned\"",
			 g->name, tp->topic, tp->partition, tp->offset,
			 nacked);
		free(acked);
	}
	pthread_mutex_unlock(&g->lock);
	rd_kafka_assign(g->rk, parts);
	if (g->hooks.on_assigned != NULL)
		g->hooks.on_assigned(g->hooks.arg, (size_t)parts->cnt);
	atomic_store(&g->joined, true);
}

/* A partition is taken away: nothing more is handed out, the acks in
 * flight get up to revoke_wait_ms to arrive (a condition signalled by
 * settles and session closes), then what is committable is committed.
 * Records a batch still holds live on until it is released. */
static void
group__revoke(struct mri_group *g, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *l;
	struct mri_engine_stats          st;
	uint64_t deadline = mri_deadline_in(g->c.revoke_wait_ms);

	// joined stays: a rebalance takes every member out for a moment
	// (librdkafka revokes everything first), and a readiness that
	// flapped with each would take mailroomd out of service with it.
	pthread_mutex_lock(&g->lock);
	g->revoking = true;
	for (;;) {
		mri_engine_stats(g->e, &st);
		if (st.inflight == 0 ||
		    mri_cond_wait_until(&g->cv, &g->lock, deadline) != 0)
			break;
	}
	l = group__commit_list(g, true);
	for (int i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		struct group_part          *p;
		int64_t                     commit;
		int32_t                     idx;

		if ((p = group__part(g, tp->topic, tp->partition, &idx)) ==
		    NULL)
			continue;
		mri_engine_revoke(g->e, idx, &commit);
		group__part_free(p);
		mri_info("component=consumer group=%s topic=%s "
			 "partition=%" PRId32 " commit=%" PRId64
			 " msg=\"revoked\"",
			 g->name, tp->topic, tp->partition, commit);
	}
	g->revoking = false;
	pthread_mutex_unlock(&g->lock);
	// The next owner catches up to the journal's end: the attempts
	// handed out here are there before the commit (bounded: Kafka may be
	// down, and the commit fails then too).
	if (g->j != NULL &&
	    mri_journal_flush_behind(g->j, GROUP__FLUSH_BEHIND_MS) != MR_OK)
		mri_warn("component=consumer group=%s msg=\"the journal did "
			 "not take the last attempts in %d ms: the "
			 "partitions' next owner may count them one low\"",
			 g->name, GROUP__FLUSH_BEHIND_MS);
	group__commit(g, l, true);
	rd_kafka_assign(g->rk, NULL);
}

void
group__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct mri_group *g = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		group__assign(g, parts);
	else
		group__revoke(g, parts);
}
