/*
 * What consumers/group.c (the group's partitions, thread and life),
 * consumers/group_rebalance.c (assign, revoke, commits),
 * consumers/group_serve.c (FETCH, SETTLE and sessions) and
 * consumers/group_rec.c (the records) share: the group's state, under its
 * lock (g->lock) unless a field says otherwise.
 */
#ifndef MRI_GROUP_INTERNAL_H
#define MRI_GROUP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumers/engine.h"
#include "consumers/group.h"
#include "consumers/journal.h"

/* Kafka's answers to a commit or an offsets request, waited for at most. */
#define GROUP__COMMIT_TIMEOUT_MS 10000
/* The journal's catch-up (at assign) and its making, at most. */
#define GROUP__JOURNAL_WAIT_MS 10000

/* A buffered record, the engine's opaque: the group's own copy of
 * librdkafka's message, made on arrival so that the message (896 bytes of
 * op in librdkafka 2.0.2) and the fetch response it pins are let go at
 * once (docs/ARCHITECTURE.md, "One memory budget"). Its hashes, id and
 * size are worked out once, on the group's thread, before the lock is
 * taken. It is counted (refs, under the lock): one for the partition's
 * ring while it is buffered, one for each batch or hook call that holds
 * it; the last release frees it, whichever thread that is. */
struct group_rec {
	uint64_t    id;    /* of its message id: the dedupe key */
	uint64_t    part;  /* its partition's mri_journal_part_key */
	uint64_t    key;   /* hash of the key */
	size_t      size;  /* conf.record_size's */
	size_t      mem;   /* this block's bytes */
	const char *idp;   /* its ce_id, or "topic/partition/offset" */
	size_t      idlen;
	const char *topic; /* the strings below point into hdr[nhdrs] on */
	size_t      topic_len;
	const void *keyp; /* NULL: no key */
	size_t      key_len;
	const void *value; /* never NULL */
	size_t      value_len;
	int64_t     offset;
	int64_t     ts; /* Kafka's timestamp, ms; -1 if none */
	int32_t     partition;
	uint32_t    nhdrs; /* headers handed out */
	uint32_t    refs;
	int32_t     idx; /* its partition's, in g->parts */
	uint64_t    seq; /* its place in that partition's ring */
	struct mri_group_hdr hdr[]; /* then the bytes */
};

/* A partition of ours: the engine knows it by its index in g->parts. */
struct group_part {
	bool                 used;
	rd_kafka_queue_t    *q; /* its own queue: read only while not full */
	char                *topic;
	int32_t              partition;
	uint64_t             jkey; /* mri_journal_part_key */
	int64_t              committed; /* last offset committed */
	// Buffered, in offset order: a ring, of which msgs[head] is the
	// base-th record pushed; a record acked is let go at once and leaves
	// a hole (NULL) until the head passes it.
	struct group_rec   **msgs;
	size_t               head, count, cap;
	uint64_t             base;
	size_t               bytes; /* held by the ring: group__rec_bytes */
	size_t               last_bytes; /* of the last record pushed */
};

/* A failed attempt, for the on_failure hook: its record held. */
struct group_fail {
	struct mri_delivery  d;
	enum mri_engine_fail why;
};

struct group_fails {
	struct group_fail *v;
	size_t             n, cap;
};

/* A fetch waiting for messages, then its batch on its way out. */
struct group_waiter {
	struct group_waiter       *next;
	struct mri_group          *g;
	uint32_t                   sid;
	struct mri_group_fetch_req f;
	uint64_t                   deadline;
	mri_group_fetch_cb         cb;
	void                      *arg;
	// Handed out under the lock (each record held), made a batch after
	// it (group__complete).
	struct mri_delivery *ds;
	size_t               nds, ds_cap;
	size_t               size; /* of what was taken */
	struct mri_group_delivery *out;
	struct mri_group_batch     batch;
	int                        err;
	// What the batch hands out, for the journal.
	struct mri_journal_run *runs;
	size_t                  nruns;
};

struct mri_group {
	rd_kafka_t            *rk;
	struct mri_journal    *j; /* NULL: off */
	struct mri_engine     *e;
	struct mri_group_conf  c;
	struct mri_group_hooks hooks;
	char                  *name;
	pthread_mutex_t        lock;
	pthread_cond_t         cv; /* revoking: inflight fell; batches: 0 */
	pthread_t              thread;
	bool                   started;
	atomic_int             stop;
	atomic_int             dropped; /* positions found dropped */
	atomic_size_t          stray;   /* records off the consumer's queue */
	// Assigned once (even nothing: more members than partitions): read
	// without the lock (mri_group_joined).
	atomic_bool            joined;
	bool                   draining;
	bool                   revoking; /* nothing is handed out meanwhile */
	struct group_part     *parts;
	size_t                 nparts;
	struct group_waiter   *waiters;
	size_t                 batches; /* taken records not yet released */
	// The engine's observer adds each failed attempt; whoever holds the
	// lock takes them (group__fails_take) before releasing it and tells
	// the hook after (group__fails_fire).
	struct group_fails     fails;
	uint64_t               next_commit_ms;
	// librdkafka's prefetch bounds (group__prefetch), per partition;
	// 0: librdkafka's defaults.
	uint32_t               prefetch_msgs;
	size_t                 prefetch_kb;
	size_t                 buffers_bytes; /* the budget's; 0: none */
	struct group_waker    *waker; /* group_wake.c; NULL: none */
	// The consumer's queue, where the group's thread waits when it
	// found nothing to read: a settle that frees room in a partition the
	// thread left at its bound (held) wakes it (group__nudge).
	rd_kafka_queue_t      *cq;
	atomic_bool            held;
};


/* What a buffered record costs in memory beyond its block: its ring slot
 * (8 bytes), the engine's entry (struct rec, 112 in jemalloc's size
 * class) and its slot (8). */
#define GROUP__REC_OVERHEAD 128

/* What a record costs while it waits in librdkafka 2.0.2's queue beyond
 * its bytes: its op (rd_kafka_op_t, 896 bytes, holding the message). */
#define GROUP__RKMSG_BYTES 896

/** @brief What \p r costs the group's memory while it is buffered. */
static inline size_t
group__rec_bytes(const struct group_rec *r)
{
	return r->mem + GROUP__REC_OVERHEAD;
}

/** @brief Start the waker of \p g's fetcher (group_wake.c): librdkafka
 *         2.0.2 stops fetching a partition whose queue reached its
 *         prefetch bounds, and looks at it again only when its broker's
 *         thread next wakes (up to a second later): a request to that
 *         broker wakes it. @returns MR_OK or MR_ENOMEM. */
int group__waker_start(struct mri_group *g);

/** @brief Wake the fetcher of \p topic / \p partition soon (any thread:
 *         it does not wait). */
void group__waker_post(struct mri_group *g, const char *topic,
		       int32_t partition);

/** @brief Whether \p g's fetcher of a partition needs a wake: its queue
 *         held \p before records before a read and \p after after, of
 *         about \p each payload bytes. librdkafka 2.0.2 stops fetching a
 *         partition whose queue holds queued.min.messages records or whose
 *         payloads (not keys) reach queued.max.messages.kbytes times 1000,
 *         not 1024 (rd_kafka_new); woken before the queue is under them,
 *         it would not fetch either. It is asked for an eighth early, as
 *         records differ in size, and a wake too many costs one small
 *         request. */
bool group__wake_due(const struct mri_group *g, size_t before, size_t after,
		     size_t each);

/** @brief Stop and free the waker; before the consumer closes. */
void group__waker_stop(struct mri_group *g);

/** @brief Wake \p g's thread if it left a partition at its bound: acks
 *         made room (any thread, without the lock). */
void group__nudge(struct mri_group *g);

/** @brief Delivery \p d of record \p r (borrowing it); handle, attempt
 *         and size are left 0. */
void group__deliv(const struct group_rec *r, struct mri_group_delivery *d);

/** @brief A record copied from message \p m (left to the caller), held
 *         once (for the ring). Called on the group's thread, without the
 *         lock.
 *  @returns the record, or NULL (out of memory). */
struct group_rec *group__rec_new(struct mri_group *g, rd_kafka_message_t *m,
				 uint64_t part);

/** @brief Drop a hold on \p r; the last destroys it. Called with the lock
 *         held. */
void group__rec_rele(struct group_rec *r);

/** @brief Acked record \p r (the engine gave it back) leaves its
 *         partition's ring. Called with the lock held. */
void group__unring(struct mri_group *g, struct group_rec *r);

/** @brief Serve the waiters that can be served; those done are moved to
 *         *done. Called with the lock held. */
void group__serve(struct mri_group *g, uint64_t now,
		  struct group_waiter **done);

/** @brief Make the batches and answer (through the journal, when on) the
 *         waiters in \p done. Called without the lock. */
void group__complete(struct mri_group *g, struct group_waiter *done);

/** @brief The engine's observer: keep the failed attempt (its record
 *         held) in g->fails. Called with the lock held. */
void group__observe(void *arg, const struct mri_delivery *d,
		    enum mri_engine_fail why);

/** @brief Take the failed attempts kept so far. Called with the lock
 *         held. */
static inline void
group__fails_take(struct mri_group *g, struct group_fails *out)
{
	*out         = g->fails;
	g->fails.v   = NULL;
	g->fails.n   = 0;
	g->fails.cap = 0;
}

/** @brief Tell the on_failure hook of the failed attempts \p f (taken;
 *         freed here), a nack's or reject's with \p reason. Called
 *         without the lock. */
void group__fails_fire(struct mri_group *g, struct group_fails *f,
		       const char *reason, size_t reason_len);

/** @brief Hand the records whose attempts are spent to the on_exhausted
 *         hook, up to a bounded number each call. Called on the group's
 *         thread, without the lock. */
void group__exhausted_fire(struct mri_group *g);

/** @brief Partition \p partition of \p topic if it is ours, its index in
 *         *idx. Called with the lock held, or on the group's thread
 *         (which alone changes g->parts).
 *  @returns the partition, or NULL. */
struct group_part *group__part(struct mri_group *g, const char *topic,
			       int32_t partition, int32_t *idx);

/** @brief Release \p p's queue and records (those a batch or a hook
 *         holds live on until let go) and mark it unused. Called with the
 *         lock held. */
void group__part_free(struct group_part *p);

/** @brief Count and say (critical) that Kafka no longer has the position
 *         of \p topic / \p partition, \p what being how it was found. */
void group__dropped(struct mri_group *g, const char *topic,
		    int32_t partition, const char *what);

/** @brief The committable offsets that moved (every one if \p all), with
 *         the acks beyond them as metadata; each is taken as committed.
 *         Called with the lock held.
 *  @returns a new list (rd_kafka_commit it with group__commit), or NULL
 *           when none moved. */
rd_kafka_topic_partition_list_t *group__commit_list(struct mri_group *g,
						    bool all);

/** @brief Commit \p l (taken; NULL: nothing), synchronously if \p sync;
 *         a failure is logged. Called without the lock. */
void group__commit(struct mri_group *g, rd_kafka_topic_partition_list_t *l,
		   bool sync);

/** @brief librdkafka's rebalance callback (the group is its opaque): an
 *         assign or a revoke. Called on the group's thread, inside
 *         rd_kafka_consumer_poll, or on the caller's of mri_group_free as
 *         it unsubscribes; without the lock. */
void group__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque);

#endif
