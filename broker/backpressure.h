/*
 * Backpressure: consumer lag bounds per topic, applied per partition to
 * what publishers send (issue #10; docs/ARCHITECTURE.md, "Backpressure").
 *
 * A bound names a topic, the groups that count (none named: every group
 * this mailroomd serves on that topic, remembered once seen), a high mark
 * in records and/or in time lag, a low mark for each (hysteresis: a
 * throttled partition opens again when its lag is at or below every low
 * mark), and a policy: hold (a publish waits, up to block_ms, for its
 * partition to open, then is refused) or reject (refused at once).
 *
 * A partition's lag is the largest over the counted groups. The lag
 * monitor (consumers/lag.h) measures it every interval; between two
 * refreshes the gate adds what it admitted since the refresh began, so a
 * fast publisher is stopped within one request of the record bound, not
 * one interval. The time bound is seen at each refresh only.
 *
 * A record's partition is the key's murmur2 (as the producer's
 * partitioner, over the partition count the monitor saw); a record
 * without a key goes to an open partition of the topic (round robin over
 * the open ones, and counted as any other), and is throttled only when
 * all are.
 *
 * Decisions: mri_bp_check looks at a request's records (their topics,
 * keys) and says, per record, whether it may go, must wait (hold) or is
 * refused (reject, or hold past its deadline); mri_bp_admit counts the
 * records that go. Topics without a bound cost a lookup per topic.
 *
 * Thread safety: every call is thread-safe. mri_bp_begin and mri_bp_apply
 * are called by the lag monitor's thread (its served and refreshed hooks);
 * checks run on the front door's threads and never wait for Kafka.
 */
#ifndef MRI_BACKPRESSURE_H
#define MRI_BACKPRESSURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumers/lag.h"

struct mri_bp;
struct json_t;

#define MRI_BP_GROUPS_MAX 32       /* groups named or remembered per bound */
#define MRI_BP_BLOCK_MS 5000       /* a hold's default block time */
#define MRI_BP_BLOCK_MAX_MS 30000  /* and its largest */
#define MRI_BP_RETRY_MAX_MS 60000  /* the largest retry-after given */

enum mri_bp_policy {
	MRI_BP_HOLD   = 0, /* wait up to block_ms, then refuse */
	MRI_BP_REJECT = 1, /* refuse at once */
};

/** @returns "hold" or "reject" (static). */
const char *mri_bp_policy_name(enum mri_bp_policy p);

/** @brief A topic's bound, as set. Strings owned by the bound. */
struct mri_bound {
	char              *topic;
	int64_t            max_lag;       /* records; 0: no record bound */
	int64_t            resume_lag;    /* at or below: open again */
	int64_t            max_time_ms;   /* time lag; 0: no time bound */
	int64_t            resume_time_ms;
	enum mri_bp_policy policy;
	uint32_t           block_ms;      /* hold: the longest wait */
	char             **groups;        /* named; none: the served ones */
	size_t             ngroups;
};

/**
 * @brief Read a bound from a JSON object (ADMIN bounds.set, the config
 *        file's "bounds"): {"topic"?, "max_lag", "resume_lag",
 *        "max_time_lag_ms", "resume_time_lag_ms", "policy", "block_ms",
 *        "groups"}. \p topic (when not NULL) wins over the object's.
 *        Unset low marks default to half the high mark; at least one
 *        high mark is required.
 * @returns MR_OK and *out filled (mri_bound_fini it), or MR_EINVAL with
 *          a sentence in \p why naming the field (negative, a low mark
 *          above its high mark, an unknown field or policy, wrong type).
 */
int mri_bound_from_json(struct mri_bound *out, const char *topic,
			const struct json_t *obj, char *why, size_t why_size);

/** @returns \p b as a new JSON object (the fields above). */
struct json_t *mri_bound_to_json(const struct mri_bound *b);

void mri_bound_fini(struct mri_bound *b);

/** @returns a new, empty gate, or NULL when out of memory. */
struct mri_bp *mri_bp_new(void);

/** @brief Free; nothing may be held in it any more. NULL: no-op. */
void mri_bp_free(struct mri_bp *g);

/**
 * @brief Set \p b (moved into the gate: \p b is left empty) as its
 *        topic's bound, replacing any (whose partitions keep their state
 *        until the next refresh decides them under \p b); a new topic's
 *        partitions start open, and are decided at the next refresh.
 * @returns MR_OK or MR_ENOMEM.
 */
int mri_bp_set(struct mri_bp *g, struct mri_bound *b);

/** @returns MR_OK, or MR_ENOENT when \p topic had no bound. */
int mri_bp_clear(struct mri_bp *g, const char *topic);

/** @brief Clear every bound whose topic \p keep says false of. */
void mri_bp_retain(struct mri_bp *g, bool (*keep)(void *arg, const char *topic),
		   void *arg);

/** @returns whether any bound is set (a load: cheap). */
bool mri_bp_any(const struct mri_bp *g);

/** @brief Every bound and its partitions' state as a new JSON array. */
struct json_t *mri_bp_list(struct mri_bp *g, const char *topic);

/**
 * @brief The lag monitor's served hook: the groups each bound counts, as
 *        (group, topic) pairs for the monitor to track, and the admitted
 *        counts as the refresh begins. On the monitor's thread.
 */
void mri_bp_begin(struct mri_bp *g, mri_lag_add_fn add, void *ctx);

/**
 * @brief Served (group, topic) pairs seen by the monitor: remembered by
 *        the bounds of \p topic that name no group.
 */
void mri_bp_served(struct mri_bp *g, const char *group, const char *topic);

/**
 * @brief A refresh ended with \p s: each bounded partition's lag, time
 *        lag, state and retry-after from it. On the monitor's thread.
 * @returns true when some partition opened (held publishes may go).
 */
bool mri_bp_apply(struct mri_bp *g, const struct mri_lag_snapshot *s,
		  uint32_t interval_ms);

/* What the gate says about one record. */
enum mri_bp_verdict {
	MRI_BP_GO     = 0,
	MRI_BP_WAIT   = 1, /* hold: its partition is throttled */
	MRI_BP_REFUSE = 2, /* reject, or a hold past its deadline */
};

/* Why a record was held or refused, for its ack. */
struct mri_bp_why {
	uint8_t  kind;           /* MRI_BP_KIND_*: the bound passed */
	uint32_t retry_after_ms; /* when to try again */
	int64_t  lag;            /* records, or ms for a time bound */
	int64_t  bound;          /* the high mark passed */
};

#define MRI_BP_KIND_NONE 0
#define MRI_BP_KIND_RECORDS 1
#define MRI_BP_KIND_TIME 2

/* One record as the gate sees it (the caller's). */
struct mri_bp_rec {
	const char *topic;
	const void *key;
	size_t      key_len;
	bool        has_key;
	int32_t     partition; /* in: -1 or given; out: the one decided */
	uint8_t     verdict;   /* out: enum mri_bp_verdict */
	struct mri_bp_why why; /* out, unless MRI_BP_GO */
};

/**
 * @brief Decide the records of one request. \p expired: the request has
 *        waited its block time (a hold refuses instead of waiting).
 *        Decisions within one request are consistent per partition (one
 *        look at each partition's state). Records that go are not
 *        counted yet: call mri_bp_admit when the request goes.
 * @returns the request's block time when some record must wait (the
 *          smallest of its bounds'), else 0.
 */
uint32_t mri_bp_check(struct mri_bp *g, struct mri_bp_rec *recs, size_t n,
		      bool expired);

/**
 * @brief Count the records of \p recs whose verdict is MRI_BP_GO as
 *        admitted to their partitions; a partition whose estimated lag
 *        reaches its record bound is throttled from now on.
 */
void mri_bp_admit(struct mri_bp *g, const struct mri_bp_rec *recs, size_t n);

/** @brief A bounded partition's state, for mailroom lag's table. */
struct mri_bp_part_state {
	enum mri_bp_policy policy;
	int64_t            max_lag;
	int64_t            max_time_ms;
	bool               throttled;
};

/** @returns MR_OK and \p out, or MR_ENOENT when \p topic has no bound. */
int mri_bp_state(struct mri_bp *g, const char *topic, int32_t partition,
		 struct mri_bp_part_state *out);

/** @brief Counters, for the status. */
struct mri_bp_stats {
	size_t   bounds;
	size_t   throttled; /* partitions */
	uint64_t held;      /* records that waited */
	uint64_t refused;
};

void mri_bp_stats(struct mri_bp *g, struct mri_bp_stats *out);

/** @brief Count records that waited (\p held: they went or not after)
 *         and records refused, once each, when their request is decided. */
void mri_bp_count(struct mri_bp *g, uint64_t held, uint64_t refused);

#endif
