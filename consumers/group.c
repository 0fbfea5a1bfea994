#define _GNU_SOURCE /* pthread_setname_np */

#include "group.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumers/group_internal.h"
#include "consumers/journal.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/uuid7.h"
#include "mailroom/error.h"

#define GROUP__POLL_MS 5
#define GROUP__BATCH 1000
#define GROUP__COMMIT_MS 500
#define GROUP__COMMIT_TIMEOUT_MS 10000
// Kafka's offset.metadata.max.bytes is 4096 by default.
#define GROUP__META_MAX 4000
#define GROUP__META_PREFIX "mr1:"
#define GROUP__JOURNAL_WAIT_MS 10000
#define GROUP__LEAVE_POLL_MS 10

static struct group_part *
group__part(struct mri_group *g, const char *topic, int32_t partition,
	    int32_t *idx)
{
	for (size_t i = 0; i < g->nparts; i++) {
		struct group_part *p = &g->parts[i];

		if (p->used && p->partition == partition &&
		    strcmp(p->topic, topic) == 0) {
			*idx = (int32_t)i;
			return p;
		}
	}
	return NULL;
}

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
	p->committed = -1;
	*idx         = (int32_t)i;
	return p;
}

static int
group__push(struct group_part *p, struct group_rec *m)
{
	if (p->count == p->cap) {
		size_t             n = p->cap ? p->cap * 2 : 256;
		struct group_rec **a = malloc(n * sizeof(*a));

		if (a == NULL)
			return MR_ENOMEM;
		for (size_t i = 0; i < p->count; i++)
			a[i] = p->msgs[(p->head + i) % p->cap];
		free(p->msgs);
		p->msgs = a;
		p->cap  = n;
		p->head = 0;
	}
	m->seq = p->base + p->count;
	p->msgs[(p->head + p->count) % p->cap] = m;
	p->count++;
	return MR_OK;
}

/* Let the ring's head pass what was let go. */
static void
group__skip_holes(struct group_part *p)
{
	while (p->count > 0 && p->msgs[p->head] == NULL) {
		p->head = (p->head + 1) % p->cap;
		p->base++;
		p->count--;
	}
}

void
group__unring(struct mri_group *g, struct group_rec *r)
{
	struct group_part *p = &g->parts[r->idx];
	size_t             i;

	if (r->seq < p->base || r->seq - p->base >= p->count)
		return;
	i = (p->head + (size_t)(r->seq - p->base)) % p->cap;
	if (p->msgs[i] != r)
		return;
	p->msgs[i] = NULL;
	group__rec_rele(r);
	group__skip_holes(p);
}

/* Release the buffered records below \p below (every one if -1): those
 * a batch or a hook still holds live on until it lets go. Called with the
 * lock held. */
static void
group__trim(struct group_part *p, int64_t below)
{
	group__skip_holes(p);
	while (p->count > 0) {
		struct group_rec *r = p->msgs[p->head];

		if (below >= 0 && r->m->offset >= below)
			break;
		group__rec_rele(r);
		p->msgs[p->head] = NULL;
		group__skip_holes(p);
	}
}

static void
group__part_free(struct group_part *p)
{
	if (p->q != NULL)
		rd_kafka_queue_destroy(p->q);
	group__trim(p, -1);
	free(p->msgs);
	free(p->topic);
	memset(p, 0, sizeof(*p));
}

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
static rd_kafka_topic_partition_list_t *
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

static void
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

/* ---- the group's thread ---------------------------------------------- */

static void
group__dropped(struct mri_group *g, const char *topic, int32_t partition,
	       const char *what)
{
	atomic_fetch_add(&g->dropped, 1);
	mri_crit("component=consumer group=%s topic=%s partition=%" PRId32
		 " msg=\"POSITION ALREADY DROPPED by Kafka (retention, or the "
		 "embedded cluster's 5 MB per partition): %s; reading on from "
		 "the oldest record kept\"",
		 g->name, topic, partition, what);
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
	// Each partition gets a queue of its own, read only while the
	// engine has room for it: a full partition's records wait in
	// librdkafka, which stops fetching it at queued.max.messages.kbytes
	// (per partition with separate queues). No pause: librdkafka 2.0.2
	// drops what it had prefetched for a paused partition.
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		struct group_part          *p;
		int32_t                     idx;

		if ((p = group__part(g, tp->topic, tp->partition, &idx)) ==
			NULL ||
		    p->q != NULL)
			continue;
		if ((p->q = rd_kafka_queue_get_partition(g->rk, tp->topic,
							 tp->partition)) != NULL)
			rd_kafka_queue_forward(p->q, NULL);
	}
	pthread_mutex_unlock(&g->lock);
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
	group__commit(g, l, true);
	rd_kafka_assign(g->rk, NULL);
}

static void
group__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct mri_group *g = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		group__assign(g, parts);
	else
		group__revoke(g, parts);
}

/* A record that could not be buffered: it is read again after the next
 * assign. */
static void
group__lost(struct mri_group *g, rd_kafka_message_t *m, int rc)
{
	mri_warn("component=consumer group=%s topic=%s partition=%" PRId32
		 " offset=%" PRId64 " msg=\"record not buffered: %s\"",
		 g->name, rd_kafka_topic_name(m->rkt), m->partition, m->offset,
		 mr_err_name(rc));
	rd_kafka_message_destroy(m);
}

static void
group__error(struct mri_group *g, rd_kafka_message_t *m)
{
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		return;
	if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
	    m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
		group__dropped(g, m->rkt ? rd_kafka_topic_name(m->rkt) : "-",
			       m->partition, rd_kafka_message_errstr(m));
	} else
		mri_warn("component=consumer group=%s msg=\"%s\"", g->name,
			 rd_kafka_message_errstr(m));
}

/* Buffer \p n records of partition \p p (index \p idx). Their hashes and
 * the journal's answers are worked out before the lock is taken: fetches
 * and acks go on meanwhile. Called on the group's thread, which alone
 * changes g->parts. */
static void
group__arrive(struct mri_group *g, struct group_part *p, int32_t idx,
	      rd_kafka_message_t **ms, size_t n)
{
	struct group_rec *rs[GROUP__BATCH];
	uint64_t          pos[GROUP__BATCH], ids[GROUP__BATCH];
	uint32_t          attempts[GROUP__BATCH] = {0};
	bool              acked[GROUP__BATCH]    = {false};
	size_t            k                      = 0;

	for (size_t i = 0; i < n && i < GROUP__BATCH; i++) {
		if (ms[i]->err) {
			group__error(g, ms[i]);
			rd_kafka_message_destroy(ms[i]);
		} else if ((rs[k] = group__rec_new(g, ms[i])) == NULL) {
			group__lost(g, ms[i], MR_ENOMEM);
		} else {
			pos[k] = rs[k]->pos;
			ids[k] = rs[k]->id;
			k++;
		}
	}
	if (g->j != NULL && k > 0)
		mri_journal_lookup(g->j, k, pos, attempts, ids, acked);
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < k; i++) {
		struct group_rec *r  = rs[i];
		int               rc = group__push(p, r);

		r->idx = idx;
		if (rc == MR_OK &&
		    (rc = mri_engine_arrive(g->e, idx, r->m->offset, r->key,
					    r->m->key == NULL, attempts[i],
					    acked[i], r)) != MR_OK)
			p->count--; // the record just pushed
		if (rc == MRI_ENGINE_NOT_HELD) {
			group__rec_rele(r); // acked before: not buffered
		} else if (rc != MR_OK) {
			group__lost(g, r->m, rc);
			free(r);
		}
	}
	pthread_mutex_unlock(&g->lock);
}

/* Take records from the queues of the partitions that have room, trim
 * what was committed. Called on the group's thread, without the lock.
 * @returns the number of records and errors taken. */
static size_t
group__read(struct mri_group *g)
{
	rd_kafka_message_t *ms[GROUP__BATCH];
	size_t              got = 0;

	for (size_t i = 0; i < g->nparts; i++) {
		struct group_part *p = &g->parts[i];
		ssize_t            n;
		bool               full;

		if (!p->used)
			continue;
		pthread_mutex_lock(&g->lock);
		group__trim(p, mri_engine_committable(g->e, (int32_t)i));
		full = mri_engine_full(g->e, (int32_t)i);
		pthread_mutex_unlock(&g->lock);
		if (p->q == NULL || full)
			continue;
		n = rd_kafka_consume_batch_queue(p->q, 0, ms, GROUP__BATCH);
		if (n <= 0)
			continue;
		group__arrive(g, p, (int32_t)i, ms, (size_t)n);
		got += (size_t)n;
	}
	return got;
}

static void *
group__thread(void *arg)
{
	struct mri_group *g = arg;

	size_t                got = 0;
	struct mri_group_hdr *hdrs = malloc(MRI_GROUP_HDR_MAX * sizeof(*hdrs));

	pthread_setname_np(pthread_self(), "mr:group");
	while (!atomic_load(&g->stop)) {
		struct group_fails               fails;
		rd_kafka_message_t              *m;
		rd_kafka_topic_partition_list_t *l = NULL;
		struct group_waiter             *done = NULL;
		struct group_part               *p;
		int32_t                          idx;
		uint64_t                         now;

		// The consumer's own queue: rebalances and errors (and the
		// records of a partition not yet given a queue of its own).
		// It waits only when the last round found nothing to read.
		m = rd_kafka_consumer_poll(g->rk, got > 0 ? 0 : GROUP__POLL_MS);
		if (m != NULL && m->err) {
			group__error(g, m);
			rd_kafka_message_destroy(m);
		} else if (m != NULL &&
			   (p = group__part(g, rd_kafka_topic_name(m->rkt),
					    m->partition, &idx)) != NULL) {
			group__arrive(g, p, idx, &m, 1);
		} else if (m != NULL) {
			rd_kafka_message_destroy(m);
		}
		got = group__read(g) + (m != NULL);
		pthread_mutex_lock(&g->lock);
		now = mri_mono_ms();
		mri_engine_tick(g->e, now);
		group__serve(g, now, &done);
		if (now >= g->next_commit_ms) {
			l                 = group__commit_list(g, false);
			g->next_commit_ms = now + GROUP__COMMIT_MS;
		}
		group__fails_take(g, &fails);
		pthread_mutex_unlock(&g->lock);
		group__complete(g, done);
		group__fails_fire(g, &fails, NULL, 0);
		if (hdrs != NULL)
			group__exhausted_fire(g, hdrs);
		group__commit(g, l, false);
	}
	free(hdrs);
	return NULL;
}

/* ---- life ------------------------------------------------------------ */

int
mri_group_new(struct mri_group **out, rd_kafka_conf_t *conf,
	      const struct mri_group_conf *c,
	      const struct mri_group_hooks *hooks, char *errstr,
	      size_t errstr_size)
{
	struct mri_group                *g;
	struct mri_engine_conf           ec = {c->order, c->max_buffered,
						c->credit, c->ack_deadline_ms,
						c->retry};
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t              err;
	struct mri_journal              *j = NULL;
	char                             buf[32];
	char instance[sizeof("mailroomd-") + MRI_UUID_STRLEN];

	if (c->journal) {
		struct mri_journal_conf jc = {c->group, c->dedupe_window_ms,
					      c->dedupe_max_entries,
					      c->create_journal};
		int                     rc;

		// From the template as it came: none of the group's settings.
		if ((rc = mri_journal_new(&j, conf, &jc,
					  GROUP__JOURNAL_WAIT_MS, errstr,
					  errstr_size)) != MR_OK)
			return rc;
	}
	snprintf(buf, sizeof(buf), "%" PRIu32, c->session_timeout_ms);
	// A static member (KIP-345), new for each consumer: after an outage
	// longer than the session it takes its own place at once, where a new
	// member id waits out the old one's session (docs/ARCHITECTURE.md,
	// "Kafka down"). group__leave makes it leave when it closes.
	memcpy(instance, "mailroomd-", sizeof("mailroomd-") - 1);
	mri_uuid7_string(instance + sizeof("mailroomd-") - 1);
	if (mri_kafka_set(conf, "group.id", c->group, errstr, errstr_size) ||
	    mri_kafka_set(conf, "group.instance.id", instance, errstr,
		       errstr_size) ||
	    mri_kafka_set(conf, "session.timeout.ms", buf, errstr,
		       errstr_size) ||
	    mri_kafka_set(conf, "enable.auto.commit", "false", errstr,
		       errstr_size) ||
	    mri_kafka_set(conf, "enable.auto.offset.store", "false", errstr,
		       errstr_size) ||
	    mri_kafka_set(conf, "auto.offset.reset",
			  c->start_latest ? "latest" : "earliest", errstr,
			  errstr_size) ||
	    mri_kafka_set(conf, "partition.assignment.strategy", "range", errstr,
		       errstr_size) ||
	    mri_kafka_set(conf, "queued.max.messages.kbytes", "8192", errstr,
		       errstr_size)) {
		mri_journal_free(j);
		return MR_ECONFIG;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->name = strdup(c->group)) == NULL) {
		free(g);
		mri_journal_free(j);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	g->j        = j;
	g->c        = *c;
	g->c.group  = g->name;
	g->c.topics = NULL;
	if (hooks != NULL)
		g->hooks = *hooks;
	pthread_mutex_init(&g->lock, NULL);
	mri_cond_init(&g->cv);
	if (c->retry.max_attempts > 0 && g->hooks.on_exhausted == NULL) {
		snprintf(errstr, errstr_size,
			 "an attempts limit needs a dead-letter supervisor");
		goto fail;
	}
	if (mri_engine_new(&g->e, &ec) != MR_OK) {
		snprintf(errstr, errstr_size, "invalid consumer settings");
		goto fail;
	}
	mri_engine_observe(g->e, group__observe, g);
	rd_kafka_conf_set_opaque(conf, g);
	rd_kafka_conf_set_rebalance_cb(conf, group__rebalance_cb);
	rd_kafka_conf_set_log_cb(conf, mri_kafka_log_cb);
	if ((g->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
				  errstr_size)) == NULL)
		goto fail;
	rd_kafka_poll_set_consumer(g->rk);
	topics = rd_kafka_topic_partition_list_new((int)c->ntopics);
	for (size_t i = 0; i < c->ntopics; i++)
		rd_kafka_topic_partition_list_add(topics, c->topics[i],
						  RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(g->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errstr, errstr_size, "subscribe: %s",
			 rd_kafka_err2str(err));
		goto fail_rk;
	}
	if (pthread_create(&g->thread, NULL, group__thread, g) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		goto fail_rk;
	}
	g->started = true;
	*out       = g;
	return MR_OK;
fail_rk:
	rd_kafka_consumer_close(g->rk);
	rd_kafka_destroy(g->rk);
	mri_journal_free(g->j);
	mri_engine_free(g->e);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cv);
	free(g->name);
	free(g);
	return MR_EKAFKA;
fail:
	mri_journal_free(g->j);
	mri_engine_free(g->e);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cv);
	free(g->name);
	free(g);
	return MR_ECONFIG;
}

void
mri_group_drain(struct mri_group *g)
{
	struct group_waiter *done = NULL;

	pthread_mutex_lock(&g->lock);
	g->draining = true;
	group__serve(g, mri_mono_ms(), &done);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
}

static bool
group__left(struct mri_group *g)
{
	char *id   = rd_kafka_memberid(g->rk);
	bool  left = id == NULL || id[0] == '\0';

	if (id != NULL)
		rd_kafka_mem_free(g->rk, id);
	return left;
}

/* A static member does not leave the group when it closes (KIP-345): its
 * partitions would wait out its session. An unsubscribe leaves: the revoke
 * runs here, on the caller's thread (the group's has stopped), and the
 * member id is dropped as the LeaveGroup goes out, which the close then
 * waits for. Bounded by the revoke's wait and a commit's. */
static void
group__leave(struct mri_group *g)
{
	uint64_t deadline = mri_deadline_in(
	    g->c.revoke_wait_ms + GROUP__COMMIT_TIMEOUT_MS);

	if (rd_kafka_unsubscribe(g->rk) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	while (!group__left(g) && mri_mono_ms() < deadline) {
		rd_kafka_message_t *m =
		    rd_kafka_consumer_poll(g->rk, GROUP__LEAVE_POLL_MS);

		if (m != NULL)
			rd_kafka_message_destroy(m);
	}
}

void
mri_group_free(struct mri_group *g)
{
	rd_kafka_topic_partition_list_t *l;
	struct group_waiter             *done = NULL;
	struct group_fails               fails;

	if (g == NULL)
		return;
	atomic_store(&g->stop, 1);
	if (g->started)
		pthread_join(g->thread, NULL);
	pthread_mutex_lock(&g->lock);
	group__serve(g, mri_mono_ms(), &done);
	l = group__commit_list(g, true);
	group__fails_take(g, &fails);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
	group__fails_fire(g, &fails, NULL, 0);
	group__commit(g, l, true);
	group__leave(g);
	rd_kafka_consumer_close(g->rk);
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->nparts; i++)
		if (g->parts[i].used)
			group__part_free(&g->parts[i]);
	pthread_mutex_unlock(&g->lock);
	// Batches still waiting for the journal are sent (or failed) here;
	// then none holds a record of the consumer's, which may go.
	mri_journal_free(g->j);
	pthread_mutex_lock(&g->lock);
	while (g->batches > 0)
		pthread_cond_wait(&g->cv, &g->lock);
	pthread_mutex_unlock(&g->lock);
	rd_kafka_destroy(g->rk);
	mri_engine_free(g->e);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cv);
	free(g->parts);
	free(g->name);
	free(g);
}
