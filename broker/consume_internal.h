/*
 * What the consume registry's files share (broker/consume.h): its
 * subscriptions, sessions and the registry itself. broker/consume.c:
 * subscribe, fetch, settle, unsubscribe, the reaper; consume_stats.c:
 * assignment, counts, stats, resume.
 *
 * Thread safety: as broker/consume.h; the lists and counts are the
 * registry's lock's.
 */
#ifndef MRI_CONSUME_INTERNAL_H
#define MRI_CONSUME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/consume.h"
#include "proto/subscribe.h"
#include "consumers/group.h"
#include "core/hist.h"
#include "dlq/supervisor.h"

#define CONSUME__TOPICS_MAX 100
#define CONSUME__GROUP_MAX 249
#define CONSUME__DEADLINE_MIN 100
#define CONSUME__DEADLINE_MAX 86400000
#define CONSUME__CREDIT_MAX 100000
#define CONSUME__RESUME_MAX 64 /* subscriptions of one group resumed */

/* One (group, topics, mode, deadline, credit, retry policy, dead-letter
 * settings) of this mailroomd. Counted (refs, under the registry's lock):
 * one while in r->subs, one for each session on it; the last release puts
 * it on r->reap, and the reaper frees it. */
struct consume_sub {
	struct consume_sub *next;
	unsigned            refs;
	char               *key; /* group NUL topics... NUL settings NUL
				    dead-letter topic (consume__key) */
	size_t              key_len;
	json_t             *desc; /* for SUBSCRIBE's reply */
	struct mri_group   *g;
	size_t              nsessions;
	uint64_t            idle_since; /* ms, monotonic, when it fell to 0 */
	/* For its dead-letter supervisor: dlq.group is the key's (its first
	 * string), dlq.topic a copy that the subscription frees (NULL:
	 * "<source topic>" + r->c.dlq_suffix). */
	struct mri_dlq_conf dlq;
	struct mri_dlq     *sup; /* the supervisor, on g's hooks */
	enum mri_order      order;
	size_t              ntopics;
	bool                exclusive; /* one session's alone: never shared */
	/* Its group's counts (the registry's: they outlive it). */
	struct consume_tally *tally;
};

/* What a group's sessions did on this mailroomd, ever: counted apart from
 * its subscriptions, which come and go, so that /metrics' counters never
 * go down. At most CONSUME__TALLY_MAX groups by name, the rest as
 * "_other". */
#define CONSUME__TALLY_MAX 1024
struct consume_tally {
	char          group[MRI_SUBSCRIBE_GROUP_MAX + 1]; /* "": free */
	atomic_ullong delivered, redelivered, acks, nacks, rejects;
	/* The group's and the supervisor's counts of the subscriptions
	 * that left (their live ones are read from them). */
	atomic_ullong failed, expired, quarantined, dlq_errors, trips;
	/* From a record's timestamp to its ack, ms: the groups add to it. */
	struct mri_hist ack_latency;
};

/* A session on a subscription. Counted too (refs, under the registry's
 * lock): one while in r->sessions, one for each FETCH, SETTLE or
 * UNSUBSCRIBE using it; the last release closes it in the group (what it
 * held is handed out again, a fetch it has waiting is answered) and
 * releases its subscription, so that no call works on a closed session. */
struct consume_session {
	struct consume_session *next;
	unsigned                refs;
	uint64_t                id;
	struct consume_sub     *sub;
	uint32_t                sid;
	uint32_t                pipe;
};

struct mri_consume {
	rd_kafka_conf_t        *tmpl;
	struct mri_consume_conf c;
	pthread_mutex_t         lock;
	struct consume_sub     *subs;
	struct consume_sub     *reap; /* released: the reaper frees them */
	struct consume_session *sessions;
	uint64_t                next_id;
	bool                    draining;
	pthread_t               reaper;
	bool                    reaper_started;
	bool                    stop;
	pthread_cond_t          cv;
	/* The journals' Kafka clients, shared by every group's (made with
	 * the first group that keeps a journal; freed last). */
	struct mri_journal_hub *hub;
	struct consume_tally   *tallies; /* CONSUME__TALLY_MAX + 1 */
	size_t                  ntallies; /* lock */
	// A sequence count: odd while a leaving subscription's counts move
	// to its group's tally (mri_consume_retired).
	atomic_uint_fast64_t    retired;
};

/* The names of enum mri_order's modes. */
extern const char *const consume__modes[];

/* Release a hold on subscription \p s; the last one hands it to the
 * reaper. */
void consume__sub_rele(struct mri_consume *r, struct consume_sub *s);

/* @returns session \p id of connection \p pipe, held (release it with
 * consume__session_rele), or NULL. */
struct consume_session *consume__find(struct mri_consume *r, uint64_t id,
				      uint32_t pipe);

/* Release a hold on session \p x; the last one closes it in its group and
 * releases its subscription. Called without the lock. */
void consume__session_rele(struct mri_consume *r, struct consume_session *x);

/* An ERROR frame, "MR_NAME: why", into \p out. */
void consume__error(struct mri_wbuf *out, int code, const char *why);

/* Hold up to \p max subscriptions (all when \p group is NULL, else that
 * group's) in \p out. @returns how many match in all. */
size_t consume__hold(struct mri_consume *r, const char *group,
		     struct consume_sub **out, size_t max);

#endif
