/*
 * mailroomd's consume requests (docs/PROTOCOL.md, "Consuming"): SUBSCRIBE
 * opens a session on a subscription (consumers/group.h), made the first
 * time a (group, topics, mode, deadline, credit, retry policy, dead-letter
 * settings) is asked for and kept until it is idle; FETCH, SETTLE and
 * UNSUBSCRIBE name the session. A session lives on the connection that
 * opened it: when the connection closes, so does the session (within a
 * second: a thread of the registry checks the sessions' connections), and
 * what it held is handed out again. Another connection that names it is
 * told there is no such session.
 *
 * The group hands back results (a batch, a settle's result); they are
 * encoded here, with proto/, straight into the reply's nng_msg.
 *
 * Lifetimes: a session is counted (its place in the registry, each
 * FETCH, SETTLE or UNSUBSCRIBE using it) and closed in its group by its
 * last release; a subscription is counted (its place in the registry,
 * each session on it); it leaves the registry when idle (the reaper
 * thread) and is freed after its last release, on the reaper thread
 * (nng's reap model: a release never runs mri_group_free on a caller's
 * thread).
 *
 * Thread safety: every function may be called from any thread, except
 * new and free.
 */
#ifndef MRI_CONSUME_SRV_H
#define MRI_CONSUME_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <nng/nng.h>

#include "consumers/group.h"
#include "dlq/supervisor.h"
#include "proto/frame.h"
#include "proto/subscribe.h"

struct mri_consume;

struct mri_consume_conf {
	uint64_t ack_deadline_ms; /* default of a subscription */
	uint32_t credit;          /* default of a subscription */
	uint32_t max_buffered;    /* per partition */
	size_t   memory_bytes;    /* per subscription: mri_group_conf's */
	uint32_t fetch_wait_ms;   /* mri_group_conf's */
	uint32_t journal_linger_ms; /* mri_group_conf's */
	uint32_t revoke_wait_ms;
	uint32_t session_timeout_ms;
	size_t   max_frame;       /* of a FETCH_REPLY, soft */
	bool     journal;         /* consumers/journal.h */
	uint64_t dedupe_window_ms;
	size_t   dedupe_max_entries;
	bool     embedded; /* the mock cluster: no CreateTopics */
	uint64_t idle_close_ms;   /* a subscription without sessions; 0: never */
	/* Defaults of what a SUBSCRIBE leaves out of "retry" and
	 * "dead_letter", member by member (retry.seed, dlq.group and
	 * dlq.topic are not used). */
	struct mri_retry    retry;
	struct mri_dlq_conf dlq;
	/* What the dead-letter supervisors publish through (borrowed: it
	 * outlives the registry). */
	struct mri_publisher *pub;
	/* A subscription's dead-letter topic is <topic><dlq_suffix>, unless
	 * it names one (1 to MRI_SUBSCRIBE_DLQ_SUFFIX_MAX of a topic's
	 * characters). */
	char dlq_suffix[MRI_SUBSCRIBE_DLQ_SUFFIX_MAX + 1];
};

/**
 * @brief \p conf is a template (borrowed; duplicated for each
 *        subscription) with bootstrap.servers and the pass-through
 *        settings.
 */
int mri_consume_new(struct mri_consume **out, const rd_kafka_conf_t *conf,
		    const struct mri_consume_conf *c);

/** @brief Answer every waiting fetch; later ones are answered at once. */
void mri_consume_drain(struct mri_consume *r);

/** @brief Commit, leave every group, free. NULL is a no-op. */
void mri_consume_free(struct mri_consume *r);

/** @brief SUBSCRIBE: a whole reply frame (JSON or ERROR) into \p out. */
void mri_consume_subscribe(struct mri_consume *r, uint32_t pipe,
			   const uint8_t *body, size_t len,
			   struct mri_wbuf *out);

/**
 * @brief Called once with a whole reply frame (FETCH_REPLY, SETTLE_REPLY
 *        or ERROR) in \p reply (the callee takes it; NULL: out of memory),
 *        on the caller's thread, a group's or a journal's.
 */
typedef void (*mri_consume_reply_cb)(void *arg, nng_msg *reply);

/**
 * @brief FETCH. @returns MR_OK when \p cb will get the reply, or an error
 *        with an ERROR frame in \p out (cb will not be called).
 */
int mri_consume_fetch(struct mri_consume *r, uint32_t pipe,
		      const uint8_t *body, size_t len,
		      mri_consume_reply_cb cb, void *arg,
		      struct mri_wbuf *out);

/**
 * @brief SETTLE. @returns MR_OK when \p cb will get the reply, or an error
 *        with an ERROR frame in \p out (cb will not be called).
 */
int mri_consume_settle(struct mri_consume *r, uint32_t pipe,
		       const uint8_t *body, size_t len,
		       mri_consume_reply_cb cb, void *arg,
		       struct mri_wbuf *out);

/** @brief UNSUBSCRIBE: a whole reply frame into \p out. */
void mri_consume_unsubscribe(struct mri_consume *r, uint32_t pipe,
			     const uint8_t *body, size_t len,
			     struct mri_wbuf *out);

/** @returns the number of subscriptions and open sessions. */
/**
 * @brief ASSIGNMENT: the partitions the subscription of the session in
 *        \p body (opened on connection \p pipe) holds now, or an ERROR
 *        (MR_EPROTO, MR_ENOENT), into \p out.
 */
void mri_consume_assignment(struct mri_consume *r, uint32_t pipe,
			    const uint8_t *body, size_t len,
			    struct mri_wbuf *out);

void mri_consume_counts(struct mri_consume *r, size_t *subs, size_t *sessions);

/**
 * @brief How many subscriptions there are (*subs) and how many of them
 *        have joined their group (mri_group_joined), counted in one pass
 *        under the registry's lock; the group of the oldest that has not
 *        into \p waiting ("" when every one has). For /readyz, through
 *        STATUS.
 * @returns how many have joined.
 */
size_t mri_consume_joined(struct mri_consume *r, size_t *subs, char *waiting,
			  size_t waiting_size);

/* What one subscription shows in the status. */
struct mri_consume_sub_stats {
	char                   group[MRI_SUBSCRIBE_GROUP_MAX + 1];
	const char            *mode; /* static */
	size_t                 ntopics;
	size_t                 sessions;
	struct mri_group_stats g;
	struct mri_dlq_stats   dlq;
};

/* What a group's sessions were handed and settled on this mailroomd,
 * ever (its subscriptions come and go; these stay). */
struct mri_consume_tally_view {
	const char *group; /* "_other": groups past the first 1024 */
	uint64_t    delivered, redelivered;
	uint64_t    acks, nacks, rejects;
	/* Of the group's subscriptions that left this mailroomd (the live
	 * ones' are in their mri_consume_sub_stats). */
	uint64_t    failed, expired, quarantined, dlq_errors, trips;
	/* From a record's timestamp to its ack, ms (the registry's: it
	 * lives as long as the registry). */
	const struct mri_hist *ack_latency;
};

/**
 * @brief Call \p fn(arg, t) for each group seen (strings borrowed for the
 *        call; no lock held). @returns how many groups by name.
 *
 * A subscription that leaves moves its counts from its stats to its
 * tally: a reader of both (/metrics) reads mri_consume_retired before and
 * after, and reads again when it was odd or changed (else it could count
 * them twice, or not at all, and a counter would go down).
 */
size_t mri_consume_each_tally(
    struct mri_consume *r,
    void (*fn)(void *arg, const struct mri_consume_tally_view *t), void *arg);

/**
 * @brief The stats of up to \p max subscriptions into \p out (the
 *        registry's lock, then each group's and supervisor's, one at a
 *        time). @returns how many there are in all.
 */
size_t mri_consume_sub_stats(struct mri_consume *r,
			     struct mri_consume_sub_stats *out, size_t max);

/** @returns the count of subscriptions' counts moved to their tallies,
 *           times two, plus one while one moves. */
uint64_t mri_consume_retired(struct mri_consume *r);

/**
 * @brief Call \p fn(arg, group, part) for each partition each
 *        subscription holds (strings borrowed for the call; no lock of
 *        the registry's held). @returns how many calls were made.
 */
size_t mri_consume_each_part(struct mri_consume *r,
			     void (*fn)(void *arg, const char *group,
					const struct mri_group_part_stats *p),
			     void *arg);

/**
 * @brief Resume the tripped breakers of group \p group's subscriptions
 *        (mri_dlq_resume). @returns how many subscriptions of that group
 *        this mailroomd has (0: none), and in *resumed how many were open.
 */
size_t mri_consume_resume(struct mri_consume *r, const char *group,
			  size_t *resumed);

/**
 * @brief Call \p fn(arg, group, topic) for each topic of each
 *        subscription (strings borrowed for the call), with the
 *        registry's lock held: \p fn must be quick and must not call the
 *        registry. For the lag monitor's served groups.
 */
void mri_consume_each_topic(struct mri_consume *r,
			    void (*fn)(void *arg, const char *group,
				       const char *topic),
			    void *arg);

/**
 * @brief Call \p fn(arg, topic) for each subscription's dead-letter topic
 *        (the one it names, else "<topic><suffix>" for each of its
 *        topics; one may come more than once; strings borrowed for the
 *        call), with the registry's lock held: \p fn must be quick and
 *        must not call the registry. For the lag monitor's watched
 *        topics (/metrics' dead-letter depth).
 */
void mri_consume_each_dlq_topic(struct mri_consume *r,
				void (*fn)(void *arg, const char *topic),
				void *arg);

#endif
