/*
 * A group (consumers/group.h): its partitions and their rings of buffered
 * records; its thread (the consumer's poll, each partition's queue read
 * while the engine has room for it, the engine's ticks, the periodic
 * commit); its life (made, drained, left, freed). What a rebalance does
 * and the commits are in group_rebalance.c; FETCH, SETTLE and sessions in
 * group_serve.c; the records in group_rec.c.
 */
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
#define GROUP__ACKED_IDS 500000 /* without a memory budget */
#define GROUP__BATCH 1000
#define GROUP__COMMIT_MS 500
#define GROUP__LEAVE_POLL_MS 10

static size_t
group__clamp(size_t v, size_t lo, size_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct group_part *
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
	p->last_bytes = group__rec_bytes(m);
	p->bytes += p->last_bytes;
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
	p->bytes -= group__rec_bytes(r);
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

		if (below >= 0 && r->offset >= below)
			break;
		p->bytes -= group__rec_bytes(r);
		group__rec_rele(r);
		p->msgs[p->head] = NULL;
		group__skip_holes(p);
	}
}

void
group__part_free(struct group_part *p)
{
	if (p->q != NULL)
		rd_kafka_queue_destroy(p->q);
	group__trim(p, -1);
	free(p->msgs);
	free(p->topic);
	memset(p, 0, sizeof(*p));
}

/* ---- the group's thread ---------------------------------------------- */

void
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

/* A record that could not be buffered: it is read again after the next
 * assign. */
static void
group__lost(struct mri_group *g, const char *topic, int32_t partition,
	    int64_t offset, int rc)
{
	mri_warn("component=consumer group=%s topic=%s partition=%" PRId32
		 " offset=%" PRId64 " msg=\"record not buffered: %s\"",
		 g->name, topic, partition, offset, mr_err_name(rc));
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
	uint64_t          ids[GROUP__BATCH];
	int64_t           offs[GROUP__BATCH];
	uint32_t          attempts[GROUP__BATCH] = {0};
	bool              acked[GROUP__BATCH]    = {false};
	size_t            k                      = 0;

	for (size_t i = 0; i < n && i < GROUP__BATCH; i++) {
		if (ms[i]->err) {
			group__error(g, ms[i]);
			rd_kafka_message_destroy(ms[i]);
		} else if ((rs[k] = group__rec_new(g, ms[i], p->jkey)) ==
			   NULL) {
			group__lost(g, p->topic, ms[i]->partition,
				    ms[i]->offset, MR_ENOMEM);
			rd_kafka_message_destroy(ms[i]);
		} else {
			rd_kafka_message_destroy(ms[i]);
			offs[k] = rs[k]->offset;
			ids[k]  = rs[k]->id;
			k++;
		}
	}
	if (g->j != NULL && k > 0)
		mri_journal_lookup(g->j, k, p->jkey, offs, attempts, ids,
				   acked);
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < k; i++) {
		struct group_rec *r  = rs[i];
		int               rc = group__push(p, r);

		r->idx = idx;
		if (rc == MR_OK &&
		    (rc = mri_engine_arrive(g->e, idx, r->offset, r->key,
					    r->keyp == NULL, attempts[i],
					    acked[i], r)) != MR_OK) {
			p->count--; // the record just pushed
			p->bytes -= group__rec_bytes(r);
		}
		if (rc == MRI_ENGINE_NOT_HELD) {
			group__rec_rele(r); // acked before: not buffered
		} else if (rc != MR_OK) {
			group__lost(g, r->topic, r->partition, r->offset, rc);
			free(r);
		}
	}
	pthread_mutex_unlock(&g->lock);
}

/* @returns how many records to read into \p p, whose share is \p bound
 *          bytes: 1 to GROUP__BATCH. */
static size_t
group__fits(const struct group_part *p, size_t bound)
{
	size_t n;

	if (bound == SIZE_MAX)
		return GROUP__BATCH;
	if (p->bytes >= bound || p->last_bytes == 0)
		return 1; // the first record tells the size of the next
	n = (bound - p->bytes) / p->last_bytes;
	return n < 1 ? 1 : n > GROUP__BATCH ? GROUP__BATCH : n;
}

/* Ask for a wake of \p p's fetcher if reading \p ms[0..n) took its queue
 * from \p before records to \p after under the bounds (group__wake_due),
 * judging the size of those queued by those read. */
static void
group__wake(struct mri_group *g, const struct group_part *p, size_t before,
	    size_t after, rd_kafka_message_t **ms, size_t n)
{
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += ms[i]->len;
	if (group__wake_due(g, before, after, bytes / n))
		group__waker_post(g, p->topic, p->partition);
}

/* Take records from the queues of the partitions that have room, trim
 * what was committed. Called on the group's thread, without the lock.
 * @returns the number of records and errors taken. */
static size_t
group__read(struct mri_group *g)
{
	rd_kafka_message_t *ms[GROUP__BATCH];
	size_t              got = 0, used = 0, bound = SIZE_MAX;

	// The buffers' quarter of the memory budget (mri_group_budget),
	// shared by the partitions held now. A partition reads what fits in
	// its share, judged by the size of its last record, and nothing while
	// it is over until acks bring it back under; an empty one reads at
	// least one record (a share smaller than a record must not stop it
	// for good).
	atomic_store(&g->held, false);
	for (size_t i = 0; i < g->nparts; i++)
		used += g->parts[i].used;
	if (g->buffers_bytes > 0 && used > 0)
		bound = g->buffers_bytes / used;
	for (size_t i = 0; i < g->nparts; i++) {
		struct group_part *p = &g->parts[i];
		ssize_t            n;
		size_t             want, queued;
		bool               full;

		if (!p->used)
			continue;
		pthread_mutex_lock(&g->lock);
		group__trim(p, mri_engine_committable(g->e, (int32_t)i));
		full = mri_engine_full(g->e, (int32_t)i) ||
		       (p->bytes >= bound && p->count > 0);
		want = group__fits(p, bound);
		pthread_mutex_unlock(&g->lock);
		if (full)
			atomic_store(&g->held, true); // group__nudge
		if (p->q == NULL || full)
			continue;
		queued = rd_kafka_queue_length(p->q);
		n      = rd_kafka_consume_batch_queue(p->q, 0, ms, want);
		if (n <= 0)
			continue;
		group__wake(g, p, queued, rd_kafka_queue_length(p->q), ms,
			    (size_t)n);
		group__arrive(g, p, (int32_t)i, ms, (size_t)n);
		got += (size_t)n;
	}
	return got;
}

void
group__nudge(struct mri_group *g)
{
	if (g->cq != NULL && atomic_load(&g->held) &&
	    atomic_exchange(&g->held, false))
		rd_kafka_queue_yield(g->cq);
}

static void *
group__thread(void *arg)
{
	struct mri_group *g   = arg;
	size_t            got = 0;

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
		// records of a partition librdkafka gave no queue of its
		// own: none should come, see group__part_queue). It waits
		// only when the last round found nothing to read.
		m = rd_kafka_consumer_poll(g->rk, got > 0 ? 0 : GROUP__POLL_MS);
		if (m != NULL && m->err) {
			group__error(g, m);
			rd_kafka_message_destroy(m);
		} else if (m != NULL &&
			   (p = group__part(g, rd_kafka_topic_name(m->rkt),
					    m->partition, &idx)) != NULL) {
			atomic_fetch_add(&g->stray, 1);
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
		// Dispatch records written behind that no write took along
		// go by themselves (this thread turns at least every
		// GROUP__POLL_MS).
		if (g->j != NULL)
			mri_journal_tick(g->j, now);
		group__fails_fire(g, &fails, NULL, 0);
		group__exhausted_fire(g);
		group__commit(g, l, false);
	}
	return NULL;
}

/* ---- life ------------------------------------------------------------ */

/* How long a fetch may wait: librdkafka 2.0.2 sends one fetch at a time
 * to a broker, and while Kafka holds it for partitions at their end (up
 * to fetch.wait.max.ms, 500 ms by default), the queues of the others run
 * dry and are not refilled (bench/run_consume.sh, unordered, 40 MiB:
 * 272 k msgs/s at 500 ms, 570-630 k at 20-100).
 *
 * librdkafka's prefetch is half the memory budget, shared by the
 * partitions of the group's topics (less, and librdkafka 2.0.2's fetcher
 * runs dry: group_wake.c). With a queue per partition, librdkafka 2.0.2
 * fetches a partition while its queue holds fewer than queued.min.messages
 * records and fewer than queued.max.messages.kbytes, and a fetch adds up
 * to max.partition.fetch.bytes: the kbytes alone do not bound small
 * records (each costs its message and op besides its bytes), so the count
 * is bounded too. The journal's acked ids were outside the budget (500 000
 * of them, up to 28 MB), and kept a slow consumer's mailroomd growing past
 * it: they take a quarter now. */
void
mri_group_budget(size_t memory_bytes, uint32_t partitions,
		 struct mri_group_budget *b)
{
	size_t share = memory_bytes / 2 / (partitions > 0 ? partitions : 4);

	b->buffers       = memory_bytes / 4;
	b->prefetch_kb   = group__clamp(share >> 10, 64, 1 << 20);
	b->prefetch_msgs = (uint32_t)group__clamp(
	    share / (GROUP__RKMSG_BYTES + 128), 100, 100000);
	b->fetch_bytes = group__clamp(share / 2, 64 << 10, 1 << 20);
	b->acked_ids   = group__clamp(memory_bytes / 4 / MRI_GROUP_ID_BYTES,
				      1000, 100000000);
}

/* librdkafka's prefetch from the budget \p b (NULL: none). */
static int
group__prefetch(rd_kafka_conf_t *conf, const struct mri_group_conf *c,
		const struct mri_group_budget *b, uint32_t *msgs, size_t *kb,
		char *errstr, size_t errstr_size)
{
	*msgs = 0;
	*kb   = 0;
	if (c->fetch_wait_ms > 0 &&
	    mri_kafka_set_int(conf, "fetch.wait.max.ms",
			      (long long)c->fetch_wait_ms, errstr, errstr_size))
		return MR_ECONFIG;
	if (b == NULL)
		return mri_kafka_set(conf, "queued.max.messages.kbytes", "8192",
				     errstr, errstr_size);
	*kb   = b->prefetch_kb;
	*msgs = b->prefetch_msgs;
	if (mri_kafka_set_int(conf, "queued.max.messages.kbytes",
			      (long long)*kb, errstr, errstr_size) ||
	    mri_kafka_set_int(conf, "queued.min.messages", (long long)*msgs,
			      errstr, errstr_size) ||
	    mri_kafka_set_int(conf, "max.partition.fetch.bytes",
			      (long long)b->fetch_bytes, errstr, errstr_size))
		return MR_ECONFIG;
	return MR_OK;
}

int
mri_group_new(struct mri_group **out, rd_kafka_conf_t *conf,
	      const struct mri_group_conf *c,
	      const struct mri_group_hooks *hooks, char *errstr,
	      size_t errstr_size)
{
	uint32_t                         pf_msgs;
	size_t                           pf_kb;
	struct mri_group                *g;
	struct mri_engine_conf           ec = {c->order, c->max_buffered,
						c->credit, c->ack_deadline_ms,
						c->retry};
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t              err;
	struct mri_journal              *j = NULL;
	struct mri_group_budget          b = {0};
	char                             buf[32];
	char instance[sizeof("mailroomd-") + MRI_UUID_STRLEN];

	if (c->memory_bytes > 0) {
		mri_group_budget(c->memory_bytes, c->partitions_hint, &b);
		mri_info("component=consumer group=%s partitions=%" PRIu32
			 " memory_bytes=%zu buffers_bytes=%zu prefetch_kb=%zu "
			 "prefetch_msgs=%" PRIu32 " fetch_bytes=%zu "
			 "acked_ids=%zu msg=\"memory budget\"",
			 c->group, c->partitions_hint, c->memory_bytes,
			 b.buffers, b.prefetch_kb, b.prefetch_msgs,
			 b.fetch_bytes, b.acked_ids);
	}
	if (c->journal) {
		struct mri_journal_conf jc = {c->group, c->dedupe_window_ms,
					      c->dedupe_max_entries,
					      c->create_journal,
					      c->journal_hub};
		int rc;

		if (jc.max_entries == 0)
			jc.max_entries =
			    b.acked_ids > 0 ? b.acked_ids : GROUP__ACKED_IDS;
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
	    group__prefetch(conf, c, c->memory_bytes > 0 ? &b : NULL, &pf_msgs,
			    &pf_kb, errstr, errstr_size) != MR_OK) {
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
	g->j              = j;
	g->prefetch_msgs  = pf_msgs;
	g->prefetch_kb    = pf_kb;
	g->buffers_bytes  = b.buffers;
	g->c              = *c;
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
	g->cq = rd_kafka_queue_get_consumer(g->rk);
	if (g->prefetch_msgs > 0 && group__waker_start(g) != MR_OK) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		goto fail_rk;
	}
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
	group__waker_stop(g);
	rd_kafka_consumer_close(g->rk);
	if (g->cq != NULL)
		rd_kafka_queue_destroy(g->cq);
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
	group__waker_stop(g);
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
	if (g->cq != NULL)
		rd_kafka_queue_destroy(g->cq);
	rd_kafka_destroy(g->rk);
	mri_engine_free(g->e);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cv);
	free(g->parts);
	free(g->name);
	free(g);
}
