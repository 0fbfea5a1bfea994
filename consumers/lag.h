/*
 * The lag monitor: consumer lag per (group, topic, partition), for the
 * groups this mailroomd serves and for any other group someone asks about
 * (a Java or kcat consumer), refreshed on an interval and on demand.
 *
 * Lag is end offset minus committed offset. At each refresh the monitor's
 * own thread ("mr:lag") asks Kafka, on a librdkafka handle of its own:
 * the metadata of every topic (which exist, their partitions; it never
 * names a topic, so the embedded cluster creates none by being asked),
 * each tracked group's committed offsets (ListConsumerGroupOffsets, one
 * request per group, all in flight at once, naming the partitions), and
 * the end and start offsets of every partition involved (ListOffsets,
 * batched by leader: rd_kafka_offsets_for_times with -1, latest, and -2,
 * earliest). The end is the high watermark (read_uncommitted).
 *
 * It also watches topics, whether a group reads them or not (the conf's
 * watched hook: mailroomd's dead-letter topics): their partitions' start
 * and end offsets ride in the same ListOffsets calls, as topic rows, so
 * that what a topic holds (end minus start) is known without a consumer.
 * A watched topic that does not exist has no rows (and is not created).
 *
 * Time lag is the age of the oldest unconsumed record, estimated from the
 * end offsets seen: each partition keeps a ring of (end offset, when the
 * monitor first saw it) samples, and a group's time lag is the time since
 * the first sample whose end passed its committed offset (0 when caught
 * up). The record at the committed offset was written between the sample
 * before and that one, so the estimate is short by up to one interval
 * (plus a refresh's own duration). It is a lower bound where the backlog
 * is older than what the monitor saw: a backlog that was there when the
 * monitor first saw the partition counts from then, and when a ring is
 * full every other sample is dropped (older samples get coarser, never
 * later than the truth).
 *
 * A group with no committed offset on a partition is in state
 * MRI_LAG_NO_COMMIT: its lag is end minus start (the backlog of a consumer
 * starting from the earliest record, as mailroomd's consumers do).
 *
 * Reading never waits for Kafka: a refresh builds a new snapshot (an
 * immutable, counted table) and swaps it in under the monitor's mutex;
 * mri_lag_snapshot takes a hold on the current one in O(1), and
 * mri_lag_find looks a partition up in it by binary search.
 *
 * Thread safety: mri_lag_snapshot, mri_lag_snapshot_rele, mri_lag_find,
 * mri_lag_ask, mri_lag_set_interval and mri_lag_stats are thread-safe;
 * mri_lag_new and mri_lag_free from one thread, with no other call in
 * progress during free.
 */
#ifndef MRI_LAG_H
#define MRI_LAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct mri_lag;

/* Bounds and defaults of struct mri_lag_conf. */
#define MRI_LAG_INTERVAL_MIN 100
#define MRI_LAG_INTERVAL_MAX 60000
#define MRI_LAG_TRACK_MS 60000        /* an asked-about group, after asked */
#define MRI_LAG_CALL_TIMEOUT_MS 5000  /* each Kafka call of a refresh */
#define MRI_LAG_RING 64               /* end samples kept per partition */

/** @brief The state of a group on a partition. */
enum mri_lag_state {
	MRI_LAG_OK        = 0, /* end and committed known */
	MRI_LAG_NO_COMMIT = 1, /* the group has no offset here: lag from start */
	MRI_LAG_UNKNOWN   = 2, /* Kafka did not say (see the group's error) */
};

/** @returns "ok", "no_commit" or "unknown" (static). */
const char *mri_lag_state_name(enum mri_lag_state s);

/** @brief One group on one partition, in a snapshot (strings borrowed
 *         from the snapshot). */
struct mri_lag_row {
	const char        *group;
	const char        *topic;
	int32_t            partition;
	enum mri_lag_state state;
	int64_t            end;         /* high watermark; -1 unknown */
	int64_t            start;       /* log start offset; -1 unknown */
	int64_t            committed;   /* -1: none (MRI_LAG_NO_COMMIT) */
	int64_t            lag;         /* records; -1 unknown */
	int64_t            time_lag_ms; /* 0 when caught up; -1 unknown */
	int64_t            updated_ms;  /* wall ms when Kafka said so */
};

/** @brief The state of a tracked group as a whole. */
enum mri_lag_group_state {
	MRI_LAG_GROUP_OK         = 0, /* some partition has a commit */
	MRI_LAG_GROUP_NO_OFFSETS = 1, /* no commit on any tracked partition */
	MRI_LAG_GROUP_ERROR      = 2, /* its last request failed (error) */
};

/** @returns "ok", "no_offsets" or "error" (static). */
const char *mri_lag_group_state_name(enum mri_lag_group_state s);

/** @brief A tracked group, in a snapshot. */
struct mri_lag_group {
	const char              *group;
	bool                     served; /* by this mailroomd */
	enum mri_lag_group_state state;
	const char              *error; /* NULL unless MRI_LAG_GROUP_ERROR */
};

/** @brief One partition of a watched topic, in a snapshot (the topic
 *         borrowed from the snapshot). */
struct mri_lag_topic_row {
	const char *topic;
	int32_t     partition;
	int64_t     start;      /* log start offset; -1 unknown */
	int64_t     end;        /* high watermark; -1 unknown */
	int64_t     updated_ms; /* wall ms when Kafka said so */
};

/** @brief What one refresh found: rows sorted by (group, topic,
 *         partition), groups sorted by name, the watched topics' rows
 *         sorted by (topic, partition). Immutable; counted. */
struct mri_lag_snapshot {
	const struct mri_lag_row       *rows;
	size_t                          nrows;
	const struct mri_lag_group     *groups;
	size_t                          ngroups;
	int64_t                         taken_ms; /* wall ms; 0: none yet */
	const struct mri_lag_topic_row *topics;
	size_t                          ntopics;
};

/**
 * @brief Called at each refresh, on the monitor's thread, with each
 *        (group, topic) this mailroomd serves (strings borrowed for the
 *        call).
 */
typedef void (*mri_lag_add_fn)(void *ctx, const char *group,
			       const char *topic);

/**
 * @brief Called at each refresh, on the monitor's thread, with each topic
 *        to watch (borrowed for the call).
 */
typedef void (*mri_lag_topic_fn)(void *ctx, const char *topic);

struct mri_lag_conf {
	uint32_t interval_ms;     /* MRI_LAG_INTERVAL_MIN..MAX */
	uint32_t track_ms;        /* 0: MRI_LAG_TRACK_MS */
	uint32_t call_timeout_ms; /* 0: MRI_LAG_CALL_TIMEOUT_MS */
	/**
	 * The groups this mailroomd serves: calls add(ctx, group, topic) for
	 * each, on the monitor's thread at each refresh, and returns. It must
	 * not call the monitor. NULL: none.
	 */
	void (*served)(void *arg, mri_lag_add_fn add, void *ctx);
	void *served_arg;
	/**
	 * More groups to track at each refresh, not served here (as served,
	 * called just after it, on the same thread). NULL: none.
	 */
	void (*tracked)(void *arg, mri_lag_add_fn add, void *ctx);
	void *tracked_arg;
	/**
	 * Topics to watch at each refresh, with or without a group: calls
	 * add(ctx, topic) for each (as served, called just after tracked, on
	 * the same thread). Their rows are the snapshot's topics. NULL: none.
	 */
	void (*watched)(void *arg, mri_lag_topic_fn add, void *ctx);
	void *watched_arg;
	/**
	 * Called after each refresh that succeeded, on the monitor's thread,
	 * with the new snapshot (borrowed for the call) and the interval.
	 * It must not call the monitor. NULL: none.
	 */
	void (*refreshed)(void *arg, const struct mri_lag_snapshot *s,
			  uint32_t interval_ms);
	void *refreshed_arg;
};

/**
 * @brief Start the monitor: its handle (from \p tmpl, borrowed: a conf
 *        with bootstrap.servers and the pass-through settings; the
 *        monitor adds allow.auto.create.topics=false) and its thread,
 *        whose first refresh starts at once.
 * @returns MR_OK, or MR_ECONFIG / MR_ENOMEM with a sentence in errstr.
 */
int mri_lag_new(struct mri_lag **out, const rd_kafka_conf_t *tmpl,
		const struct mri_lag_conf *c, char *errstr,
		size_t errstr_size);

/**
 * @brief Stop the thread (a refresh in progress ends at its next step:
 *        within one Kafka call's timeout), answer waiting asks with
 *        MR_ESHUTDOWN, destroy the handle, free. Snapshots still held
 *        stay valid until released. NULL is a no-op.
 */
void mri_lag_free(struct mri_lag *l);

/**
 * @brief The current snapshot, held (release it with
 *        mri_lag_snapshot_rele). Never waits for Kafka: a mutex, a
 *        counter. Before the first refresh it is empty (taken_ms 0).
 * @returns the snapshot (never NULL).
 */
const struct mri_lag_snapshot *mri_lag_snapshot(struct mri_lag *l);

/** @brief Release a hold; the last one frees it. NULL is a no-op. */
void mri_lag_snapshot_rele(const struct mri_lag_snapshot *s);

/**
 * @returns the row of (\p group, \p topic, \p partition) in \p s
 *          (borrowed from it), or NULL when it is not tracked.
 */
const struct mri_lag_row *mri_lag_find(const struct mri_lag_snapshot *s,
				       const char *group, const char *topic,
				       int32_t partition);

/**
 * @brief Ask about \p group (NULL: every tracked group) on \p topic
 *        (NULL: every topic; for an asked group, every topic it has
 *        offsets on). A group not tracked yet is tracked from now until
 *        MRI_LAG_TRACK_MS (conf track_ms) after it was last asked about.
 *        When something asked is new, or \p refresh, waits (a condition
 *        variable) up to \p timeout_ms for a refresh that started after
 *        the call; else answers at once.
 * @param out the snapshot to read the answer from, held (release it), on
 *        MR_OK only.
 * @returns MR_OK; MR_ENOENT when \p topic does not exist; MR_ETIMEDOUT
 *          when no refresh ended in time; MR_EUNAVAIL (or the Kafka
 *          error's) when the refresh failed as a whole; MR_ESHUTDOWN;
 *          MR_ENOMEM. A sentence in \p why on failure.
 */
int mri_lag_ask(struct mri_lag *l, const char *group, const char *topic,
		bool refresh, int timeout_ms,
		const struct mri_lag_snapshot **out, char *why,
		size_t why_size);

/** @brief Refresh every \p ms from the next one on (clamped to
 *         MRI_LAG_INTERVAL_MIN..MAX). */
void mri_lag_set_interval(struct mri_lag *l, uint32_t ms);

/** @returns the interval in ms. */
uint32_t mri_lag_interval(struct mri_lag *l);

/** @brief Counters, for the status. */
struct mri_lag_stats {
	uint64_t refreshes; /* ended, failed ones included */
	uint64_t failures;  /* refreshes that failed as a whole */
	size_t   groups;    /* tracked, in the current snapshot */
	size_t   rows;
	int64_t  max_lag;   /* over the current snapshot's rows; 0 if none */
	int64_t  taken_ms;  /* the current snapshot's */
};

/** @brief The counters into \p out (the mutex briefly). */
void mri_lag_stats(struct mri_lag *l, struct mri_lag_stats *out);

#endif
