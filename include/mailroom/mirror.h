/*
 * Mirrored actors: an actor type bound to a topic and a consumer group
 * through mailroomd, one virtual actor per key (issue #11, item 5).
 *
 * mr_mirror_run subscribes the group to the topic in key mode (mailroomd
 * never hands out a key's next message before the previous one is
 * settled) and runs mr_consume_run_async: each delivery is cast to the
 * actor of its key, on the system's threads, which is activated on its
 * first message (mr_spawn of the type's
 * behaviour: init gets a const mr_mirror_key *) and passivated once it has
 * had no delivery for idle_ms (it exits with MR_EXIT_PASSIVATE: terminate
 * runs, the place to hand its state off). A keyless record goes to the
 * actor of the empty key.
 *
 * A delivery arrives as a cast: handle_cast with msg->type
 * MR_MSG_DELIVERY and msg->data pointing at the const mr_delivery (borrowed
 * for the callback; msg->len is sizeof(mr_delivery *); the type is
 * reserved: never cast it yourself). The delivery is settled after
 * handle_cast returns: 0 acks it; MR_EREJECT rejects it (to
 * the dead-letter topic at once, the actor goes on); anything else nacks it
 * (delivered again after the subscription's back-off, until its attempts
 * run out and it is quarantined) and crashes the actor: terminate runs
 * with that reason, its state is dropped, and the key's next delivery
 * starts a new one from init. So a message that always crashes its actor
 * ends in the dead-letter topic and the key goes on with its next message.
 *
 * A record with an mr_type header (sent by address: mr_send_to,
 * mr_call_to, include/mailroom/router.h) is not an MR_MSG_DELIVERY: it
 * is a message of that type whose data is the payload, given to
 * handle_cast, or to handle_call when it carries a reply address and a
 * correlation id (a remote call): the from that handle_call gets is
 * answered with mr_reply or mr_reply_error as a local one (at once or
 * later, from any thread), and the answer is published to the caller's
 * reply address; the actor's end before it answers replies MR_ECLOSED.
 * A type without handle_call answers MR_ENOTSUP. Either way the record is
 * settled as a delivery is, after the callback returns.
 *
 * Durable state (optional, state_topic and save set): after handle_cast
 * acks a delivery, save serializes the actor's state, and the snapshot is
 * published to the compacted state topic (made with the type's topic's
 * partition count when it does not exist), keyed by the actor's key, with
 * the partition and offset of the message it reflects; the delivery is
 * acked once Kafka has the snapshot. On activation init gets the key's
 * latest snapshot (mr_mirror_key.snapshot; NULL when it has none), and a
 * delivery at or below its snapshot's offset is acked without reaching the
 * actor (a redelivery after a crash, a kill -9 or a rebalance is not
 * applied twice, and nothing acked is lost). A snapshot that cannot be
 * saved nacks the delivery and crashes the actor, whose next activation
 * starts from the last one saved. A process reads a partition's snapshots
 * (topics.read) on its first delivery of that partition and keeps them in
 * memory while it holds the partition. The topic's producers must
 * partition by key with murmur2 (as mailroomd does): a snapshot that lands
 * in another partition than its message stops the run (MR_ECONFIG).
 * Records with no key or an empty key share one actor whose state is not
 * saved. docs/ARCHITECTURE.md says what is left open: a former owner's
 * save landing after the new owner's (there is no fence), and a
 * partition that moved away and back between two looks of the watch (one
 * second). The type's
 * subscription is exclusive (mr_subscribe_opts.exclusive): a group member
 * of its own, so that one process serves a key.
 *
 * The type is the actors' supervisor: more than intensity crashes within
 * period_ms stop the run (mr_mirror_run returns MR_EINTERNAL, saying so),
 * as an OTP supervisor whose intensity is exceeded exits.
 *
 * Local messages reach a mirrored actor as any other's (mr_cast, mr_call
 * to the pid that mr_mirror_whereis gives while it is active), one at a
 * time with its deliveries. The system must have threads (not the
 * deterministic mode): they run the handlers, at most the subscription's
 * credit of deliveries at a time.
 *
 * Thread safety: mr_mirror_run fetches on the caller's thread (and settles
 * on one of its own); mr_mirror_whereis and mr_mirror_stats from any
 * thread; mr_mirror_free once mr_mirror_run has returned.
 */
#ifndef MAILROOM_MIRROR_H
#define MAILROOM_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "mailroom/actor.h"
#include "mailroom/consumer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mr_mirror mr_mirror;

/** @brief The type of the cast that carries a delivery. */
#define MR_MSG_DELIVERY 0xffff0001u

/** @brief The exit reason of a passivated actor (idle). */
#define MR_EXIT_PASSIVATE (-5)
/** @brief The exit reason of an actor whose partition moved to another
 *         member of the group (a rebalance): terminate hands it off. */
#define MR_EXIT_HANDOFF (-6)

/** @brief What a mirrored actor's init gets as its arg. */
typedef struct mr_mirror_key {
	const void *key; /* the key's bytes (borrowed for init) */
	size_t      key_len;
	void       *arg; /* mr_mirror_opts.arg */
	/** durable state: the key's last snapshot, as save made it (borrowed
	 *  for init); NULL when it has none */
	const void *snapshot;
	size_t      snapshot_len;
} mr_mirror_key;

/**
 * @brief Serialize an actor's state \p state (the one its init made) into
 *        *out (malloc'ed; the mirror frees it), *out_len bytes; \p arg is
 *        mr_mirror_opts.arg.
 * @returns 0, or an error: the delivery is nacked and the actor crashes.
 */
typedef int (*mr_mirror_save_fn)(void *state, void **out, size_t *out_len,
				 void *arg);

/** @brief Options; zero the struct, a zero member is the default. */
typedef struct mr_mirror_opts {
	uint32_t idle_ms;   /* passivate after this long idle; 0: 120000 */
	int      intensity; /* crashes allowed in period_ms; 0: 100 */
	uint32_t period_ms; /* 0: 5000 */
	void    *arg;       /* for init, in mr_mirror_key */
	/** the subscription's options (order is always key); NULL: defaults */
	const mr_subscribe_opts *sub;
	/** durable state: the compacted topic of the snapshots (NULL: none;
	 *  copied), and the function that makes one (required with it) */
	const char       *state_topic;
	mr_mirror_save_fn save;
} mr_mirror_opts;

/** @brief What a type has done so far. */
typedef struct mr_mirror_stats {
	uint64_t active;      /* actors alive now */
	uint64_t activations; /* inits that succeeded */
	uint64_t passivations;
	uint64_t handoffs;    /* exits because their partition left */
	uint64_t crashes;     /* handle_cast or init failed */
	uint64_t deliveries;  /* handled (acked, rejected or nacked) */
	uint64_t skipped;     /* acked as at or below their snapshot */
	uint64_t snapshots;   /* saved (Kafka acked them) */
	uint64_t restores;    /* partitions whose snapshots were read */
} mr_mirror_stats;

/**
 * @brief A mirrored actor type: behaviour \p b (borrowed for the mirror's
 *        life) on \p sys, for \p topic's records consumed by \p group
 *        through \p c (both borrowed; they must outlive the mirror).
 * @returns MR_OK, MR_EINVAL (a NULL argument, an option out of range,
 *          state_topic without save) or MR_ENOMEM.
 */
MR_API int mr_mirror_new(mr_mirror **out, mr_system *sys, mr_client *c,
			 const char *topic, const char *group,
			 const mr_behaviour *b, const mr_mirror_opts *opts);

/**
 * @brief Subscribe and serve until *stop becomes non-zero (as
 *        mr_consume_run's stop), or the type's intensity is exceeded, or
 *        consuming fails. Active actors are passivated before it returns.
 * @returns MR_OK, MR_EINTERNAL (intensity exceeded), MR_ECONFIG (the state
 *          topic's partitions are not the topic's), or mr_subscribe's,
 *          mr_admin's or mr_consume_run's error, with a sentence in
 *          mr_mirror_error().
 */
MR_API int mr_mirror_run(mr_mirror *m, const volatile int *stop);

/** @returns why the last mr_mirror_run ended with an error ("" if not). */
MR_API const char *mr_mirror_error(const mr_mirror *m);

/** @returns the pid of \p key's actor while it is active, else 0. */
MR_API mr_pid mr_mirror_whereis(mr_mirror *m, const void *key,
				size_t key_len);

/** @brief Counters, a consistent snapshot. */
MR_API void mr_mirror_stats_get(mr_mirror *m, mr_mirror_stats *out);

/** @brief One key's latest snapshot, for mr_mirror_snapshots: the key, the
 *         bytes save made, and the message it reflects (all borrowed for
 *         the call). @returns 0 to go on, else that error ends the read. */
typedef int (*mr_mirror_snapshot_fn)(void *arg, const void *key,
				     size_t key_len, const void *snapshot,
				     size_t len, int32_t partition,
				     int64_t offset);

/**
 * @brief Read every key's latest snapshot in state topic \p state_topic
 *        (through mailroomd's topics.read, to the end found now) and call
 *        \p fn for each, in no particular order: what a durable type's
 *        actors would start from. For tools and tests.
 * @returns MR_OK, \p fn's error, or mr_admin's (MR_ENOENT: no such
 *          topic), with a sentence on stderr.
 */
MR_API int mr_mirror_snapshots(mr_client *c, const char *state_topic,
			       mr_mirror_snapshot_fn fn, void *arg);

/** @brief Free the type (after mr_mirror_run returned); NULL is a no-op. */
MR_API void mr_mirror_free(mr_mirror *m);

/**
 * @brief Report \p sys's restarts per supervisor (mr_system_restarts) to
 *        mailroomd, which adds them up per supervisor name over every
 *        process that reports (GET /metrics'
 *        mailroom_actor_restarts_total, GET /v1/actors, the console),
 *        as process \p process (NULL: "program/pid"). mr_mirror_run
 *        reports every second while the counts change, and when it ends;
 *        a process running a supervision tree without a mirrored type
 *        calls this itself (each call sends the totals: losing one loses
 *        nothing). Any thread.
 * @returns MR_OK, MR_EINVAL (mailroomd refused it), or mr_admin's error.
 */
MR_API int mr_actors_report(mr_client *c, mr_system *sys,
			    const char *process);

#ifdef __cplusplus
}
#endif

#endif
