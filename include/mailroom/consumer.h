/*
 * The consume side of the C client: subscribe a consumer group to topics
 * through mailroomd (with a retry policy and a dead-letter topic), fetch
 * batches of deliveries, settle them (ack, nack, reject, extend the ack
 * deadline) in ranges of handles, and a handler helper that runs a callback
 * on worker threads and acks, nacks or rejects by its return value.
 * Plus an idempotency guard: a durable, check-and-record set of message ids
 * that a handler owns.
 *
 * Delivery is at least once. A message not acked before its ack deadline
 * (or nacked, or held by a consumer that went away) is delivered again with
 * its attempt raised, after the subscription's back-off, until its
 * attempts run out: then it goes to the dead-letter topic. In `key` mode
 * (the default) mailroomd never hands out the next message of a key before
 * the previous one of that key is acked (or quarantined); in `partition`
 * mode, of a partition; `unordered` has no such rule.
 *
 * Sessions and restarts. A subscription is served to the client through a
 * session that lives in mailroomd, on the connection that opened it. When
 * mailroomd restarts, drains (SIGTERM) or cannot be reached, or the
 * connection drops, the session is gone: mr_fetch and the settle calls fail
 * with an error for which mr_consumer_lost() is true. The client's
 * connection comes back by itself (nng dials again); mr_consumer_resubscribe
 * opens a new session with the same group, topics and options, retrying for
 * up to the subscription's reconnect timeout, as a Kafka consumer rides
 * through a broker restart. mr_consume_run does all of this by itself;
 * mr_fetch does not, since only its caller knows when it has dropped the
 * handles of the old session. Deliveries the lost session held are
 * delivered again (at least once; an idempotent handler, see mr_guard_claim,
 * applies each once). Their handles are dead: never settle them after
 * mr_consumer_resubscribe, since the new session may use the same numbers
 * for other deliveries.
 *
 * Thread safety: an mr_consumer may be used from many threads at once:
 * mr_fetch, mr_consumer_ack, mr_consumer_nack, mr_consumer_reject,
 * mr_consumer_extend and mr_consumer_resubscribe may run concurrently on one
 * consumer (each is one request on the client's pool; a request uses the
 * session that was current when it started). mr_consumer_free must not
 * race with any other call on the same consumer, and every consumer must be
 * freed before its client. A batch belongs to one thread at a time; its
 * deliveries may be read from many threads while nobody frees it. An
 * mr_guard is thread-safe.
 */
#ifndef MAILROOM_CONSUMER_H
#define MAILROOM_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mr_consumer mr_consumer;
typedef struct mr_batch    mr_batch;
typedef struct mr_guard    mr_guard;

/** @brief The order in which a subscription hands out messages. */
typedef enum mr_order {
	MR_ORDER_KEY = 0,   /**< one message in flight per key (default) */
	MR_ORDER_PARTITION, /**< one message in flight per partition */
	MR_ORDER_UNORDERED, /**< no ordering: any number in flight */
} mr_order;

/** @brief The reconnect timeout when mr_subscribe_opts leaves it 0. */
#define MR_RECONNECT_TIMEOUT_MS 60000

/**
 * @brief Which of the retry and dead-letter members of mr_subscribe_opts
 *        are given, as bits of its `set`: a member whose bit is not there
 *        is left to mailroomd's default (its consumer.retry.* and
 *        consumer.dead_letter.* settings), whatever its value, so that 0
 *        can mean unlimited attempts or no breaker.
 */
enum mr_subscribe_set {
	MR_SUB_MAX_ATTEMPTS       = 1 << 0,
	MR_SUB_BACKOFF_INITIAL    = 1 << 1,
	MR_SUB_BACKOFF_MAX        = 1 << 2,
	MR_SUB_BACKOFF_MULTIPLIER = 1 << 3,
	MR_SUB_BACKOFF_JITTER     = 1 << 4,
	MR_SUB_BREAKER_MAX        = 1 << 5,
	MR_SUB_BREAKER_PERIOD     = 1 << 6,
	MR_SUB_BREAKER_COOLDOWN   = 1 << 7,
};

/**
 * @brief Options of a subscription; 0 leaves the default. Zero the whole
 *        struct before setting members (`mr_subscribe_opts o = {0}`, or
 *        designated initializers): members are only ever appended, and a
 *        zero member is always the default.
 *
 *        The retry policy: after failed attempt n (a nack, an expired ack
 *        deadline, a session that ended holding the message) a delivery
 *        waits min(backoff_max_ms, backoff_initial_ms *
 *        backoff_multiplier^(n-1)), times a factor drawn in
 *        [1 - backoff_jitter, 1 + backoff_jitter]; after attempt
 *        max_attempts failed, or when it is rejected (mr_consumer_reject),
 *        it goes to the dead-letter topic and its key goes on. Too many
 *        failures (breaker_max within breaker_period_ms) trip the
 *        subscription's breaker: delivery pauses for breaker_cooldown_ms,
 *        then lets one message through. docs/PROTOCOL.md, SUBSCRIBE, has
 *        the details and the defaults.
 */
typedef struct mr_subscribe_opts {
	mr_order order;
	int      ack_deadline_ms; /**< time to ack a delivery; 0: mailroomd's */
	int      credit; /**< deliveries unsettled at once; 0: mailroomd's */
	/** how long mr_consumer_resubscribe (and so mr_consume_run) tries to
	 *  subscribe again once the session is lost; 0:
	 *  MR_RECONNECT_TIMEOUT_MS; < 0: no retry (mr_consume_run then ends
	 *  with the error that lost the session) */
	int reconnect_timeout_ms;
	/** MR_SUB_* bits: which of the members below are given */
	unsigned set;
	int      max_attempts; /**< 0..1000; 0: unlimited (never quarantined) */
	int      backoff_initial_ms; /**< 0..3600000 */
	int      backoff_max_ms;     /**< backoff_initial_ms..86400000 */
	double   backoff_multiplier; /**< 1..100 */
	double   backoff_jitter;     /**< 0..1 */
	/** the dead-letter topic of every topic of the subscription (copied);
	 *  NULL: mailroomd's default, "<topic>.dlq"; not one of the topics */
	const char *dlq_topic;
	int breaker_max;         /**< 0..1000000; 0: no breaker */
	int breaker_period_ms;   /**< 1..86400000 */
	int breaker_cooldown_ms; /**< 1..86400000 */
	/** non-zero: a subscription of this session alone, never shared
	 *  with another session of the same options: a group member of its
	 *  own, to which Kafka assigns partitions (mr_consumer_assignment
	 *  says which), leaving the group as soon as the session ends (a
	 *  mirrored actor type's, so that a key is served by one process) */
	int exclusive;
	/** non-zero: a partition the group has no committed offset for
	 *  starts at its end (what is written from then on), not at its
	 *  beginning: a router's replies */
	int start_latest;
	/** non-zero: no journal for this subscription (mailroomd makes no
	 *  __mailroom.journal.<group> topic for it): redeliveries are not
	 *  deduplicated across mailroomd's restarts and attempts are not
	 *  kept; for a throwaway group, as a router's replies */
	int no_journal;
} mr_subscribe_opts;

/**
 * @brief One delivered message. Every pointer is borrowed from its batch
 *        and valid until mr_batch_free. topic, id and header names are
 *        NUL-terminated; key, header values and payload are binary-safe
 *        (use their lengths).
 */
typedef struct mr_delivery {
	uint64_t handle; /**< settles this delivery (ack, nack, extend) */
	const char      *topic;
	int32_t          partition;
	int64_t          offset;
	int64_t          timestamp_ms; /**< Kafka's timestamp, -1 if none */
	uint32_t         attempt;      /**< 1 on the first delivery */
	bool             redelivery;   /**< handed out before */
	const char      *id; /**< ce_id, or "topic/partition/offset" */
	bool             has_key; /**< false: keyless (key is NULL) */
	const void      *key;
	size_t           key_len;
	const mr_header *headers; /**< every record header, in order */
	size_t           header_count;
	const void      *payload;
	size_t           payload_len;
} mr_delivery;

/**
 * @brief Subscribe consumer group \p group to \p ntopics topics (SUBSCRIBE).
 *        mailroomd joins the group in Kafka and shares the topics'
 *        partitions with the group's other members.
 * @param c     the client (borrowed; it must outlive the consumer).
 * @param group the consumer group's name (borrowed for the call).
 * @param topics \p ntopics topic names (borrowed for the call), at least 1.
 * @param opts  NULL for defaults (borrowed for the call).
 * @returns MR_OK and a new consumer in *out (free it with
 *          mr_consumer_free), or an mr_err (mr_client_last_error() has
 *          mailroomd's sentence): MR_EINVAL with a sentence, before
 *          anything is sent, for an option out of its range.
 */
MR_API int mr_subscribe(mr_client *c, const char *group,
			const char *const *topics, size_t ntopics,
			const mr_subscribe_opts *opts, mr_consumer **out);

/** @brief A partition a subscription holds. */
typedef struct mr_partition {
	const char *topic;
	int32_t     partition;
} mr_partition;

/**
 * @brief The partitions the subscription holds now in mailroomd
 *        (ASSIGNMENT): the group's members share a topic's partitions, and
 *        a rebalance moves them. Keys of a partition that is gone are
 *        delivered to another member from now on.
 * @returns MR_OK and *out, new (free() it, names included; NULL when *n
 *          is 0), or an mr_err (MR_ENOENT: the session is gone, as
 *          mr_consumer_lost).
 */
MR_API int mr_consumer_assignment(mr_consumer *s, mr_partition **out,
				  size_t *n);

/** @brief The session number mailroomd gave the subscription. */
MR_API uint64_t mr_consumer_session(const mr_consumer *s);

/**
 * @brief Fetch up to \p max_msgs deliveries (FETCH), waiting on mailroomd up
 *        to \p max_wait_ms for the first one (a long poll; 0 returns at
 *        once). The request times out after max_wait_ms plus the client's
 *        timeout.
 * @param max_msgs  1..100000.
 * @param max_bytes 0: no limit but the frame's.
 * @param max_wait_ms 0..300000.
 * @returns MR_OK and a new batch in *out (possibly empty; free it with
 *          mr_batch_free), or an mr_err: MR_ENOENT when mailroomd no
 *          longer knows the session (it restarted, or the connection
 *          dropped). mr_fetch does not subscribe again by itself: when
 *          mr_consumer_lost() is true of the error, drop every handle
 *          fetched so far and call mr_consumer_resubscribe.
 */
MR_API int mr_fetch(mr_consumer *s, size_t max_msgs, size_t max_bytes,
		    int max_wait_ms, mr_batch **out);

/** @returns the number of deliveries in \p b (0 for NULL). */
MR_API size_t mr_batch_count(const mr_batch *b);

/**
 * @returns the \p i-th delivery of \p b (borrowed: valid until
 *          mr_batch_free), or NULL when \p i is out of range.
 */
MR_API const mr_delivery *mr_batch_at(const mr_batch *b, size_t i);

/** @brief Free a batch and every delivery in it; NULL is a no-op. A
 *         delivery stays unsettled until acked, nacked or expired. */
MR_API void mr_batch_free(mr_batch *b);

/**
 * @brief Acknowledge \p n deliveries (SETTLE ack): they are done and will
 *        not be delivered again to the group. The handles are sorted and
 *        sent as ranges of consecutive values; repeated handles count once;
 *        more than one request is sent if they do not fit in one.
 * @param handles borrowed for the call.
 * @param failed  NULL, or gets the number of handles that mailroomd did
 *                not settle (unknown, expired and redelivered, or their
 *                partition no longer owned: MR_ENOENT for each).
 * @returns MR_OK if every request succeeded (even if some handles failed),
 *          or the first request's error.
 */
MR_API int mr_consumer_ack(mr_consumer *s, const uint64_t *handles,
			   size_t n, size_t *failed);

/**
 * @brief Refuse \p n deliveries (SETTLE nack): each is delivered again with
 *        its attempt raised, after mailroomd's back-off.
 * @param reason NULL, or UTF-8 text kept with the failure (at most 1024
 *               bytes; longer is cut at a character boundary).
 * @returns as mr_consumer_ack.
 */
MR_API int mr_consumer_nack(mr_consumer *s, const uint64_t *handles,
			    size_t n, const char *reason, size_t *failed);

/**
 * @brief Refuse \p n deliveries for good (SETTLE reject): each is a message
 *        that can never be processed (a poison message: malformed, or not
 *        valid for this service), so retrying it is pointless. mailroomd
 *        does not hand it out again: it goes to the subscription's
 *        dead-letter topic at once, with \p reason, and its key goes on
 *        with its next message.
 * @param reason as mr_consumer_nack's.
 * @returns as mr_consumer_ack.
 */
MR_API int mr_consumer_reject(mr_consumer *s, const uint64_t *handles,
			      size_t n, const char *reason, size_t *failed);

/**
 * @brief Move the ack deadline of \p n deliveries to now + \p ms (SETTLE
 *        extend), for work that takes longer than the deadline.
 * @param ms > 0.
 * @returns as mr_consumer_ack.
 */
MR_API int mr_consumer_extend(mr_consumer *s, const uint64_t *handles,
			      size_t n, int ms, size_t *failed);

/**
 * @returns true when \p err, returned by mr_fetch or a settle call, means
 *          the session is gone or mailroomd cannot be heard: MR_ENOENT (no
 *          such session), MR_ECLOSED, MR_ETRANSPORT, MR_ESHUTDOWN,
 *          MR_ECONNREFUSED or MR_ETIMEDOUT. Then call
 *          mr_consumer_resubscribe.
 */
MR_API bool mr_consumer_lost(int err);

/**
 * @brief Subscribe again, with the group, topics and options of
 *        mr_subscribe, and make the new session the consumer's (SUBSCRIBE,
 *        then a best-effort UNSUBSCRIBE of the old session in case it still
 *        lives). A subscribe that fails while mailroomd is restarting or
 *        cannot be reached (an error of mr_consumer_lost, or MR_EUNAVAIL,
 *        MR_EBUSY, MR_EKAFKA) is tried again after 50 ms, doubling to 1 s,
 *        until the reconnect timeout of the options has passed since the
 *        call (one attempt when it is < 0). One attempt may itself wait up
 *        to the client's timeout while mailroomd is down.
 *
 *        Handles fetched before the call are dead once it returns MR_OK:
 *        do not settle them (their deliveries come again to the group).
 * @param stop NULL, or a flag (as mr_consume_run's) that ends the retries
 *             early when it becomes non-zero.
 * @returns MR_OK, or the last attempt's error (mr_client_last_error() says
 *          how long it tried); the consumer keeps its old session then,
 *          and the call may be made again.
 */
MR_API int mr_consumer_resubscribe(mr_consumer *s, const volatile int *stop);

/**
 * @brief End the subscription (UNSUBSCRIBE; its unsettled deliveries go to
 *        the group again) and free the consumer; NULL is a no-op. Batches
 *        fetched from it remain valid.
 */
MR_API void mr_consumer_free(mr_consumer *s);

/**
 * @brief A message handler for mr_consume_run, called on one of its worker
 *        threads, concurrently with other deliveries (never two with the
 *        same handle). \p d is borrowed for the call. A handler doing long
 *        work may call mr_consumer_extend on d->handle.
 * @returns MR_OK to ack the delivery; MR_EREJECT to reject it (as
 *          mr_consumer_reject: the message can never be processed, it goes
 *          to the dead-letter topic at once); anything else nacks it (it
 *          is delivered again after the back-off, until its attempts run
 *          out). The nack's or reject's reason is "handler returned N
 *          (MR_...)".
 */
typedef int (*mr_handler)(void *arg, const mr_delivery *d);

/**
 * @brief Consume with \p workers threads: fetch on the calling thread, run
 *        \p h on the workers, and ack (or nack) the results in ranges from
 *        a few more threads, as they come back: an ack does not wait for
 *        the last one's answer, so mailroomd may hold its answer up to its
 *        consumer.journal_linger_ms (0 by default) for other acks to share
 *        the journal's write (docs/PROTOCOL.md, SETTLE).
 *
 *        When the session is lost (mailroomd restarted, drained or went
 *        away: see mr_consumer_lost), it subscribes again with
 *        mr_consumer_resubscribe and goes on. Deliveries of the lost
 *        session that no handler has started are dropped, and the results
 *        of the handlers still running on them are dropped when they
 *        return: none is settled, on either session (they are delivered
 *        again: at least once). Nothing is fetched on the new session
 *        before those handlers have returned, so that a key is still
 *        handled one message at a time in key mode. Deliveries dropped
 *        before their handler do not count towards \p max_messages.
 *
 *        Returns when *stop becomes non-zero (checked at least twice a
 *        second, also while it subscribes again), once \p max_messages
 *        deliveries were handled (0: no limit), or on an error: a request
 *        error other than a lost session, or a session that could not be
 *        opened again within the reconnect timeout. Before it returns,
 *        every delivery already fetched is handled and settled (but those
 *        of a lost session); the threads it started are joined.
 * @param workers 1..1024 threads.
 * @param stop    NULL, or a flag that a signal handler sets, or another
 *                thread with an atomic store (`__atomic_store_n(&flag, 1,
 *                __ATOMIC_RELAXED)`; read with an atomic load), borrowed
 *                and read during the call.
 * @returns MR_OK, or the error that ended it, with its sentence in this
 *          thread's mr_client_last_error(): a settle or fetch refused
 *          (MR_EUNAVAIL, ...), or, when subscribing again failed, that
 *          attempt's error (MR_ETIMEDOUT, MR_ECONNREFUSED, ...).
 */
MR_API int mr_consume_run(mr_consumer *s, int workers, mr_handler h,
			  void *arg, const volatile int *stop,
			  size_t max_messages);

/** @brief A delivery handed to an asynchronous handler, until it is done. */
typedef struct mr_pending mr_pending;

/**
 * @brief An asynchronous handler for mr_consume_run_async, called on the
 *        fetching thread for each delivery as it comes: it hands the
 *        delivery on (to a thread, a queue, an actor) and returns at once;
 *        whoever handles it calls mr_pending_done(\p p, result) exactly
 *        once, from any thread (possibly before the handler returned).
 *        \p d (also mr_pending_delivery(p)) stays valid until then.
 */
typedef void (*mr_async_handler)(void *arg, const mr_delivery *d,
				 mr_pending *p);

/**
 * @brief As mr_consume_run, without worker threads: \p h gets each
 *        delivery at once and mr_pending_done settles it (its result as
 *        mr_handler's return: MR_OK acks, MR_EREJECT rejects, anything
 *        else nacks), in ranges, from a few more threads. At most the
 *        subscription's credit is pending at a time. A lost session is
 *        handled as mr_consume_run does: results of the old session are
 *        dropped, and nothing is fetched on the new one before every
 *        delivery of the old one is done. Before it returns, it waits for
 *        every pending delivery to be done.
 * @returns as mr_consume_run (MR_EINVAL: \p s or \p h NULL).
 */
MR_API int mr_consume_run_async(mr_consumer *s, mr_async_handler h,
				void *arg, const volatile int *stop,
				size_t max_messages);

/**
 * @brief The result of pending delivery \p p (exactly once per delivery):
 *        \p p and its delivery are invalid once it returns.
 */
MR_API void mr_pending_done(mr_pending *p, int rc);

/** @returns the delivery of \p p (valid until mr_pending_done). */
MR_API const mr_delivery *mr_pending_delivery(const mr_pending *p);

/*
 * The idempotency guard: a set of message ids kept in a file that the
 * service owns, one id per line, appended and flushed to disk (fdatasync)
 * before a claim returns. Delivery is at least once, so a message that was
 * in flight when something crashed comes again; a handler uses the guard so
 * that its effect happens at most once per id:
 *
 *  - claim first, then apply: if mr_guard_claim returns MR_EEXIST, skip
 *    the effect and ack. With at-least-once delivery this is exactly once
 *    for effects that cannot fail after the claim (a crash between the
 *    claim and the effect loses that effect);
 *  - or, when the effect lives in a store of the service's own, record the
 *    id there in the same transaction as the effect, instead of this guard.
 *
 * One process at a time may open a file (an exclusive lock; another gets
 * MR_EBUSY).
 */

/**
 * @brief Open (or create) the guard file at \p path and load its ids. A
 *        torn last line (a crash during an append) is dropped and cut off.
 * @returns MR_OK and a new guard in *out (free it with mr_guard_free), or
 *          MR_EIO, MR_EBUSY, MR_ENOMEM, MR_EINVAL, with a sentence in
 *          \p errstr.
 */
MR_API int mr_guard_open(mr_guard **out, const char *path, char *errstr,
			 size_t errstr_size);

/**
 * @brief As mr_guard_open, keeping at most the \p max_ids most recent ids
 *        from the file (0: all); the file is rewritten (compacted) when it
 *        holds more. Claims after the open are all kept until the next open.
 */
MR_API int mr_guard_open_bounded(mr_guard **out, const char *path,
				 size_t max_ids, char *errstr,
				 size_t errstr_size);

/**
 * @brief Claim \p id (1..255 bytes, any but NUL).
 * @returns MR_OK the first time (the id is on disk when it returns),
 *          MR_EEXIST if it was claimed before (also by an earlier process),
 *          MR_EINVAL, MR_ENOMEM, or MR_EIO (then the id is not claimed and
 *          later claims fail too: the file's state is unknown).
 */
MR_API int mr_guard_claim(mr_guard *g, const char *id);

/** @returns the number of ids the guard holds. */
MR_API size_t mr_guard_count(mr_guard *g);

/** @brief Close the file and free the guard; NULL is a no-op. */
MR_API void mr_guard_free(mr_guard *g);

#ifdef __cplusplus
}
#endif
#endif
