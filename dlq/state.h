/*
 * The durable state of a dead-letter topic's records (docs/PROTOCOL.md,
 * "Dead-letter state"): which were replayed and which resolved (purged),
 * kept in a compacted topic of its own, `<dead-letter topic>.state`, so
 * that every mailroomd and every CLI sees the same state after a restart.
 *
 * A state record's key is the dead-letter position "P@O" (decimal
 * partition, '@', decimal offset); its value is a JSON object:
 *   {"state": "replaying" | "replayed" | "resolved", "at": ms since the
 *    epoch,
 *    "orig": 16 hex digits (the hash of the original position,
 *            mri_dlq_orig_hash; absent when unknown),
 *    "target": topic, "replay_id": id, "partition": P, "offset": O}
 * (target, replay_id, partition and offset: of a replay only; the replayed
 * record's position, -1 when it was a copy of one replayed, or not yet
 * known: "replaying" is a replay's intent, written before it publishes,
 * so that a replay resumed after a crash looks for the id in the target
 * before publishing it again). A later
 * record of the same key wins (compaction keeps it); a null value (a
 * tombstone) forgets the position.
 *
 * Also here, the pure parts of replay: the replayed record's message id
 * and the loop guard (the rate's arithmetic is core/pace.h).
 *
 * Thread safety: a state set belongs to its caller; the other functions
 * are pure.
 */
#ifndef MRI_DLQ_STATE_H
#define MRI_DLQ_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The state topic's name: the dead-letter topic's, then this. */
#define MRI_DLQ_STATE_SUFFIX ".state"
/* A position key "P@O": at most 10 + 1 + 19 bytes. */
#define MRI_DLQ_POS_STRLEN 30
/* A message id's longest (bridge/publish.h). */
#define MRI_DLQ_ID_MAX 255
/* The loop guard's default: replays before a record needs force. */
#define MRI_DLQ_LOOP_LIMIT 3

/** @brief A dead-letter record's state. */
enum mri_dlq_st {
	MRI_DLQ_ST_NONE = 0, /* neither replayed nor resolved */
	MRI_DLQ_ST_REPLAYED,
	MRI_DLQ_ST_RESOLVED,
	MRI_DLQ_ST_PENDING, /* "replaying": a replay's intent */
};

/** @returns "none", "replayed", "resolved" or "replaying". */
const char *mri_dlq_st_name(enum mri_dlq_st s);

struct mri_dlq_state;

/** @returns MR_OK and *out (new, empty: mri_dlq_state_free it), or
 *           MR_ENOMEM. */
int mri_dlq_state_new(struct mri_dlq_state **out);

/** @brief Free \p s; NULL is a no-op. */
void mri_dlq_state_free(struct mri_dlq_state *s);

/**
 * @brief Set the state of dead-letter position (\p partition, \p offset);
 *        MRI_DLQ_ST_NONE forgets it. \p orig (0: unknown) is the hash of
 *        its original position: mri_dlq_state_orig answers for it too.
 * @returns MR_OK or MR_ENOMEM.
 */
int mri_dlq_state_put(struct mri_dlq_state *s, int32_t partition,
		      int64_t offset, enum mri_dlq_st st, uint64_t orig);

/** @brief A replay's intent (state "replaying"), owned by the set. */
struct mri_dlq_intent {
	int64_t at_ms;
	char   *target;
	char   *replay_id;
};

/** @returns the intent of (\p partition, \p offset) when its state is
 *           MRI_DLQ_ST_PENDING (borrowed until the set changes), else
 *           NULL. */
const struct mri_dlq_intent *mri_dlq_state_intent(
    const struct mri_dlq_state *s, int32_t partition, int64_t offset);

/** @returns the state of (\p partition, \p offset). */
enum mri_dlq_st mri_dlq_state_get(const struct mri_dlq_state *s,
				  int32_t partition, int64_t offset);

/** @returns the state of some dead-letter record of the original position
 *           whose hash is \p orig (another copy of it), or NONE. */
enum mri_dlq_st mri_dlq_state_orig(const struct mri_dlq_state *s,
				   uint64_t orig);

/** @returns how many positions have a state. */
size_t mri_dlq_state_count(const struct mri_dlq_state *s);

/** @returns the first offset at or above \p low of \p partition that is
 *           neither replayed nor resolved: every offset in [low, it) is
 *           (what DeleteRecords may free). */
int64_t mri_dlq_state_prefix(const struct mri_dlq_state *s, int32_t partition,
			     int64_t low);

/**
 * @brief Read one record of the state topic into \p s: key \p key (\p
 *        klen bytes), value \p val (\p vlen bytes; NULL: a tombstone).
 * @returns MR_OK (a record that is not a state record is ignored: foreign
 *          bytes are never an error), or MR_ENOMEM.
 */
int mri_dlq_state_load(struct mri_dlq_state *s, const void *key, size_t klen,
		       const void *val, size_t vlen);

/** @brief Write "P@O" into \p out (MRI_DLQ_POS_STRLEN + 1 bytes).
 *  @returns its length. */
size_t mri_dlq_pos_fmt(char *out, int32_t partition, int64_t offset);

/** @returns MR_OK and the position for "P@O" (\p len bytes; decimals, no
 *           sign), else MR_EINVAL. */
int mri_dlq_pos_parse(const char *p, size_t len, int32_t *partition,
		      int64_t *offset);

/**
 * @brief Set (\p partition, \p offset) to MRI_DLQ_ST_PENDING with its
 *        intent (\p target and \p replay_id copied).
 * @returns MR_OK or MR_ENOMEM.
 */
int mri_dlq_state_put_intent(struct mri_dlq_state *s, int32_t partition,
			     int64_t offset, int64_t at_ms, const char *target,
			     const char *replay_id);

/** @brief What a state record says (strings borrowed). */
struct mri_dlq_st_rec {
	enum mri_dlq_st st;
	int64_t         at_ms;
	uint64_t        orig; /* 0: unknown */
	const char     *target;    /* a replay's; NULL otherwise */
	const char     *replay_id; /* likewise */
	int32_t         partition; /* the replayed record's; -1: none */
	int64_t         offset;
};

/** @returns a state record's value (new, NUL-terminated JSON: free it),
 *           or NULL (out of memory). */
char *mri_dlq_state_value(const struct mri_dlq_st_rec *r);

/**
 * @brief The message id of replay number \p n (>= 1) of a record whose id
 *        is \p id (\p len bytes): the id less a trailing "~r<digits>" (a
 *        previous replay's), then "~r<n>"; the base is cut so that the
 *        whole is at most MRI_DLQ_ID_MAX bytes. Deterministic: a replay
 *        resumed after a crash gives the same id (the publish dedupe
 *        window drops the second copy), and the new id is not the one the
 *        group's dedupe journal acked when it quarantined the original.
 * @param out MRI_DLQ_ID_MAX + 1 bytes: NUL-terminated.
 * @returns its length; 0 when \p len is 0.
 */
size_t mri_dlq_replay_id(char *out, const char *id, size_t len, uint32_t n);

/** @returns true when a record replayed \p replays times before may be
 *           replayed again: replays < \p limit, or \p force. */
bool mri_dlq_replay_allowed(uint32_t replays, uint32_t limit, bool force);

#endif
