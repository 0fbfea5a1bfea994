/*
 * A subscription of this mailroomd to a consumer group: one librdkafka
 * consumer (range assignment, offsets stored and committed explicitly, a
 * static member with a group.instance.id of its own, so that it finds its
 * partitions at once after a Kafka outage longer than its session)
 * feeding the delivery engine (engine.h), and the sessions of the services
 * that fetch from it.
 *
 * The group's own thread polls Kafka and is the only one that calls
 * librdkafka's consumer; it also serves the rebalance callbacks, expires
 * ack deadlines, answers fetches that waited, pauses the partitions whose
 * buffer is full and resumes them when drained, and commits the contiguous
 * acked prefix of each partition about twice a second (synchronously on a
 * revoke and on close). Acks beyond the prefix travel with the commit, in
 * its metadata, so that a restart or a rebalance does not deliver them
 * again; when they do not fit, the ones that do not are delivered again
 * (consumption never stops for it), and the group's journal (journal.h)
 * still knows their ids.
 *
 * With the journal on, a fetch is answered only once the attempt of each
 * record it hands out is in the journal, and an ack only once its ids are;
 * a record arriving whose id the journal knows as acked counts as acked.
 *
 * The group knows nothing of frames: a fetch hands back a batch of
 * deliveries, a settle a result, each to a callback; mailroomd encodes
 * them (broker/consume.c). A failed attempt backs off (struct mri_retry);
 * hooks (struct mri_group_hooks) tell the dead-letter supervisor of each
 * failed attempt and hand it the records whose attempts are spent, for
 * quarantine; mri_group_stats tells what each partition holds.
 *
 * Thread safety: every function may be called from any thread, except
 * mri_group_free, which must not run concurrently with the others.
 */
#ifndef MRI_GROUP_H
#define MRI_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumers/engine.h"

struct mri_group;
struct mri_hist;
struct mri_journal_hub;

/* What the group hands out of a record, at most (longer is not handed
 * out as such; the wire's limits, checked against proto/ by mailroomd). */
#define MRI_GROUP_ID_MAX 255       /* a ce_id longer is not the id */
#define MRI_GROUP_HDR_MAX 256      /* headers of a record */
#define MRI_GROUP_HDR_NAME_MAX 255 /* a header with a longer name is left
				      out */

/** @brief A header of a record (the group's copy). */
struct mri_group_hdr {
	const char *name;
	size_t      name_len;
	const void *value; /* never NULL */
	size_t      value_len;
};

/**
 * @brief A record handed out. Every pointer borrows the group's copy of
 *        the record: valid while the batch that holds it is.
 */
struct mri_group_delivery {
	uint64_t                    handle;  /* for ack, nack, extend */
	uint32_t                    attempt; /* 1 on the first delivery */
	const char                 *topic;
	size_t                      topic_len;
	int32_t                     partition;
	int64_t                     offset;
	int64_t                     timestamp_ms; /* Kafka's; -1 if none */
	bool                        has_key;
	const void                 *key; /* never NULL ("" without one) */
	size_t                      key_len;
	const char                 *id; /* ce_id, or "topic/partition/offset" */
	size_t                      id_len;
	const struct mri_group_hdr *hdrs;
	size_t                      nhdrs;
	const void                 *value; /* never NULL */
	size_t                      value_len;
	size_t                      size; /* mri_group_conf.record_size's */
};

/** @brief What a fetch hands out (borrowed by the fetch's callback). */
struct mri_group_batch {
	const struct mri_group_delivery *d;
	size_t                           n;
	size_t                           size; /* the sum of d[i].size */
};

/** @brief Which record a hook is about (borrowed for the call). */
struct mri_group_record_id {
	const char *topic;
	int32_t     partition;
	int64_t     offset;
	const char *id; /* as in a delivery */
	size_t      id_len;
};

/* Why an attempt failed (the same numbers as enum mri_engine_fail). */
enum mri_group_fail {
	MRI_GROUP_NACKED    = 0, /* nacked: retried after its backoff */
	MRI_GROUP_REJECTED  = 1, /* nacked asking for no retry */
	MRI_GROUP_EXPIRED   = 2, /* its ack deadline passed */
	MRI_GROUP_ABANDONED = 3, /* its session closed holding it */
};

/**
 * Hooks, for the dead-letter supervisor: each is optional (NULL), gets
 * \p arg, and is called without the group's lock; a hook must be quick,
 * must not block, and must not call the group (queue the work and
 * return). What it is given is borrowed for the call.
 */
struct mri_group_hooks {
	/** An attempt failed (attempt: the one that failed; reason: a
	 *  nack's or reject's, NULL if none, not NUL-terminated). On the
	 *  thread that settled or closed the session, or the group's (an
	 *  expired deadline). */
	void (*on_failure)(void *arg, const struct mri_group_record_id *r,
			   uint32_t attempt, enum mri_group_fail why,
			   const char *reason, size_t reason_len);
	/** A session closed holding \p held records (> 0), each told to
	 *  on_failure as MRI_GROUP_ABANDONED just before: one consumer
	 *  that went away, however much it held. On the thread that closed
	 *  the session. */
	void (*on_abandoned)(void *arg, size_t held);
	/** A record's attempts are spent (retry.max_attempts, or a reject):
	 *  quarantine it, then call mri_group_quarantined with d->handle
	 *  (d->attempt: the attempts made). Until then it stays the head of
	 *  its key and nothing after it in its key is handed out. On the
	 *  group's thread. Required when retry.max_attempts is set; without
	 *  it a reject is a nack. */
	void (*on_exhausted)(void *arg, const struct mri_group_delivery *d);
	/** A rebalance gave the group \p n partitions (0 too), fetched
	 *  from now on; their records are read after it returns. On the
	 *  group's thread. */
	void (*on_assigned)(void *arg, size_t n);
	void *arg;
};

struct mri_group_conf {
	const char        *group;
	const char *const *topics;
	size_t             ntopics;
	enum mri_order     order;
	uint32_t           credit;          /* in flight per session */
	uint64_t           ack_deadline_ms; /* default deadline */
	uint32_t           max_buffered;    /* per partition: pause above */
	uint32_t           revoke_wait_ms;  /* acks in flight, on a revoke */
	uint32_t           session_timeout_ms; /* Kafka's group session */
	struct mri_retry   retry;           /* backoff, attempts limit */
	bool               journal;         /* journal.h: dedupe, attempts */
	uint64_t           dedupe_window_ms;
	/** Acked ids the journal keeps at most; 0: what the memory budget
	 *  pays for (mri_group_budget), 500 000 without a budget. */
	size_t             dedupe_max_entries;
	bool               create_journal; /* false: Kafka auto-creates it */
	/** The journal's Kafka clients, shared with other groups (made
	 *  with mri_journal_hub_new; it outlives the group); NULL: the
	 *  journal's own. */
	struct mri_journal_hub *journal_hub;
	bool               start_latest; /* no committed offset: the end */
	/** What the group holds at most, in bytes (0: no bound but
	 *  max_buffered and librdkafka's defaults), split as
	 *  mri_group_budget says (the prefetch's bounds and the acked ids
	 *  are fixed when the group is made). */
	size_t             memory_bytes;
	uint32_t           partitions_hint; /* its topics' partitions; 0: 4 */
	/** librdkafka's fetch.wait.max.ms; 0: its default (500). One fetch
	 *  at a time goes to a broker: while it waits on partitions that
	 *  are at their end, the others' queues are not refilled. */
	uint32_t           fetch_wait_ms;
	/** How long an ack that may linger (mri_group_settle_req) waits at
	 *  most for others to share its journal write; 0: none waits. */
	uint32_t           journal_linger_ms;
	/** What a record costs against a fetch's max_size (its handle and
	 *  attempt not yet set): mailroomd's is its FETCH_REPLY size. Called
	 *  once per record on the group's thread; NULL: the bytes of its
	 *  topic, id, key, headers and value. */
	size_t (*record_size)(const struct mri_group_delivery *d);
	/** The time from each acked record's timestamp (its producer's
	 *  CreateTime, or Kafka's LogAppendTime) to its ack, in ms, is added
	 *  here (borrowed: it outlives the group; NULL: not measured). */
	struct mri_hist *ack_latency;
};

/** What one group's memory budget pays for. */
struct mri_group_budget {
	/** mailroomd's buffers: a quarter, shared by the partitions the
	 *  group holds at the time. */
	size_t   buffers;
	/** librdkafka's prefetch: half, shared by partitions_hint partitions
	 *  (queued.max.messages.kbytes, queued.min.messages and
	 *  max.partition.fetch.bytes for each). */
	size_t   prefetch_kb;
	uint32_t prefetch_msgs;
	size_t   fetch_bytes;
	/** The journal's acked ids: a quarter, at MRI_GROUP_ID_BYTES each. */
	size_t   acked_ids;
};

/* What an acked id costs in the journal's store, at most: its ring entry
 * (24 bytes) and its index's slots (16 to 32). */
#define MRI_GROUP_ID_BYTES 56

/** @brief Split \p memory_bytes (> 0) over \p partitions (0: 4). */
void mri_group_budget(size_t memory_bytes, uint32_t partitions,
		      struct mri_group_budget *b);

/** @brief A fetch: up to max_msgs records whose sizes add up to less
 *         than max_size before the last (so at least one when max_size >
 *         0), waiting up to max_wait_ms for the first. */
struct mri_group_fetch_req {
	uint32_t max_msgs;
	size_t   max_size;
	uint32_t max_wait_ms;
};

/**
 * @brief Called once per mri_group_fetch that returned MR_OK, on the
 *        caller's thread, the group's or the journal's: \p err is MR_OK
 *        with the batch (borrowed: valid until the callback returns; may
 *        be empty), or MR_EUNAVAIL (the journal could not record the
 *        attempts) or MR_ENOMEM, with \p b NULL: what was taken is handed
 *        out again after its deadline.
 */
typedef void (*mri_group_fetch_cb)(void *arg, int err,
				   const struct mri_group_batch *b);

enum mri_group_settle_kind {
	MRI_GROUP_ACK    = 0,
	MRI_GROUP_NACK   = 1, /* handed out again, attempt raised */
	MRI_GROUP_EXTEND = 2, /* deadline moved to now + extend_ms */
	MRI_GROUP_REJECT = 3, /* nacked asking for no retry: quarantined at once */
};

/** @brief A run of consecutive delivery handles. */
struct mri_group_range {
	uint64_t first;
	uint32_t count;
};

/** @brief A settle of the handles of \p nranges ranges (borrowed). */
struct mri_group_settle_req {
	enum mri_group_settle_kind    kind;
	uint32_t                      extend_ms; /* EXTEND */
	const char                   *reason;    /* NACK; may be NULL */
	size_t                        reason_len;
	const struct mri_group_range *ranges;
	uint32_t                      nranges;
	uint64_t                      handles; /* the sum of the counts */
	/** ACK: the answer may wait up to the conf's journal_linger_ms for
	 *  other acks to share the journal's write. */
	bool                          linger;
};

/** @brief A handle not settled, and why (MR_ENOENT: unknown, stale or of
 *         a partition no longer ours). */
struct mri_group_settle_fail {
	uint64_t handle;
	uint16_t status;
};

/** @brief What a settle did (borrowed by the settle's callback). */
struct mri_group_settle_result {
	uint32_t                            settled;
	uint32_t                            nfailed;
	const struct mri_group_settle_fail *failed;
};

/**
 * @brief Called once per mri_group_settle that returned MR_OK, on the
 *        caller's thread or the journal's, once the acks are in the
 *        journal: \p err is MR_OK, or MR_EUNAVAIL (the acks were taken but
 *        not recorded; \p r is given all the same).
 */
typedef void (*mri_group_settle_cb)(void *arg, int err,
				    const struct mri_group_settle_result *r);

/** @brief A partition of the group's, for mri_group_stats. */
struct mri_group_part_stats {
	char     topic[250];
	int32_t  partition;
	int64_t  end_offset; /* high watermark as last fetched; -1 unknown */
	int64_t  committed;  /* last committed (or found at assign); -1 none */
	size_t   buffered;   /* records held, in flight included */
	size_t   inflight;   /* handed out, not acked */
	size_t   bytes;      /* what its buffer costs, by the budget's count */
};

/** @brief The group's totals, for mri_group_stats. */
struct mri_group_stats {
	size_t nparts;   /* partitions assigned */
	bool   joined;   /* mri_group_joined */
	size_t sessions; /* open */
	size_t buffered;
	size_t inflight;
	size_t ready;    /* could be handed out now */
	size_t dropped;  /* positions found dropped by Kafka */
	size_t stray;    /* records read off the consumer's own queue */
	size_t backoff;  /* waiting for their retry */
	size_t quarantining; /* attempts spent, not yet quarantined */
	uint64_t acked;  /* acked, ever (quarantined included) */
	uint64_t failed; /* failed attempts, ever */
	uint64_t expired; /* of them, ack deadlines that passed */
	size_t   acked_ids_max; /* the journal's bound; 0: no journal */
};

/**
 * @brief Create the consumer and join the group.
 * @param conf takes ownership on success; on failure the caller still
 *        owns it. bootstrap.servers and any pass-through settings are set.
 * @param hooks copied; NULL: none.
 * @returns MR_OK, or an mr_err with a sentence in errstr.
 */
int mri_group_new(struct mri_group **out, rd_kafka_conf_t *conf,
		  const struct mri_group_conf *c,
		  const struct mri_group_hooks *hooks, char *errstr,
		  size_t errstr_size);

/**
 * @brief Answer every waiting fetch (empty), commit what is committable
 *        synchronously, leave the group (an unsubscribe, since a static
 *        member does not leave on close) and free, once every batch was
 *        released. NULL is a no-op.
 */
void mri_group_free(struct mri_group *g);

/** @brief Answer every waiting fetch now, and any later one at once. */
void mri_group_drain(struct mri_group *g);

/** @brief Open a session. @returns MR_OK or MR_ENOMEM. */
int mri_group_session_open(struct mri_group *g, uint32_t *sid);

/** @brief Close a session: what it held is handed out again, a fetch it
 *         has waiting is answered empty. */
void mri_group_session_close(struct mri_group *g, uint32_t sid);


/**
 * @brief Hand out what \p f asks for to session \p sid.
 * @returns MR_OK (cb will be called once), or MR_ENOMEM (it will not).
 */
int mri_group_fetch(struct mri_group *g, uint32_t sid,
		    const struct mri_group_fetch_req *f, mri_group_fetch_cb cb,
		    void *arg);

/**
 * @brief Ack, nack or extend the handles of \p s (borrowed for the call);
 *        \p cb gets the result once the acks are in the group's journal.
 * @returns MR_OK (cb will be called once), or MR_ENOMEM (it will not).
 */
int mri_group_settle(struct mri_group *g, const struct mri_group_settle_req *s,
		     mri_group_settle_cb cb, void *arg);

/**
 * @brief The quarantine of \p handle (given to on_exhausted) is over:
 *        \p err MR_OK when the dead-letter topic has the record, which now
 *        counts as acked (its id goes to the journal as acked; its key
 *        goes on); else it backs off and is given to on_exhausted again.
 *        Any thread but a hook's.
 * @returns MR_OK, or MR_ENOENT (its partition is no longer ours: the next
 *          owner quarantines it again).
 */
int mri_group_quarantined(struct mri_group *g, uint64_t handle, int err);

/** @brief At most \p limit records in flight over all sessions (0: none is
 *         handed out; SIZE_MAX, the start: only the credits limit), for
 *         the supervisor's breaker. Any thread, a hook's included (the one
 *         call a hook may make: the breaker trips at once). */
void mri_group_set_limit(struct mri_group *g, size_t limit);

/**
 * @brief The group's totals into \p out and its partitions into \p parts
 *        (up to \p max; may be NULL with 0). Takes the group's lock
 *        briefly and reads librdkafka's cached watermarks: never waits on
 *        Kafka. Any thread.
 * @returns the number of partitions assigned (more than \p max: the rest
 *          were left out).
 */
size_t mri_group_stats(struct mri_group *g, struct mri_group_stats *out,
		       struct mri_group_part_stats *parts, size_t max);

/**
 * @brief Whether the group has joined: librdkafka's rebalance gave this
 *        member an assignment (an empty one too: a group with more
 *        members than partitions has joined). False from mri_group_new
 *        until the first assignment, which takes a session's join (the
 *        embedded cluster delays the first by about 3 s); true from then
 *        on, through later rebalances (each takes the member out for a
 *        moment; readiness must not flap with them). No lock: any thread,
 *        with any lock held.
 */
bool mri_group_joined(struct mri_group *g);

#endif
