/*
 * Durable state of mirrored actors (include/mailroom/mirror.h, issue #11
 * item 6): the snapshots of a type's actors in a compacted state topic,
 * keyed by the actor's key, with as many partitions as the type's topic, so
 * that a key's snapshots sit in the partition of the same number as its
 * messages (both murmur2 of the key). A snapshot record's value is the
 * magic "MRS1", the partition and offset of the last message it reflects
 * (i32, i64, big-endian), then the type's bytes.
 *
 * A process restores a partition's snapshots when it first gets a delivery
 * of that partition (topics.read through mailroomd, to the high watermark
 * found then) and keeps them, with those it saves, in a table by key (the
 * cache activations read). A partition that leaves (a hand-off) is
 * dropped: its keys are served elsewhere, and restored again should it
 * come back. Of two snapshots of a key the later offset wins, whatever
 * their order in the topic (until compaction, which keeps the last
 * written: docs/ARCHITECTURE.md, "Durable state", what is left open).
 *
 * Thread safety: every function is thread-safe (one lock) but
 * mri_mirror_state_free.
 */
#ifndef MRI_MIRROR_STATE_H
#define MRI_MIRROR_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailroom/mirror.h"

struct mri_mirror_state;
struct json_t;

/* The bytes before the type's in a snapshot record's value. */
#define MRI_MIRROR_SNAP_HEAD 16

/**
 * @brief The state of \p topic's actors in \p state_topic (both borrowed
 *        for the call), through \p c (borrowed for the state's life):
 *        creates \p state_topic compacted with \p topic's partition count,
 *        or checks that it has that count.
 * @returns MR_OK and *out, or an error with a sentence in \p why (MR_ECONFIG:
 *          the partition counts differ).
 */
int mri_mirror_state_new(struct mri_mirror_state **out, mr_client *c,
			 const char *topic, const char *state_topic,
			 char *why, size_t why_size);

void mri_mirror_state_free(struct mri_mirror_state *st);

/** @returns the state topic's partition count (the type's topic's). */
int32_t mri_mirror_state_partitions(const struct mri_mirror_state *st);

/** @returns the state topic's name. */
const char *mri_mirror_state_topic(const struct mri_mirror_state *st);

/**
 * @brief Read \p partition's snapshots into the table, unless it is
 *        restored already (the entries it held are replaced).
 * @returns MR_OK, or an error with a sentence in \p why.
 */
int mri_mirror_state_restore(struct mri_mirror_state *st, int32_t partition,
			     char *why, size_t why_size);

/** @returns whether \p partition is restored. */
bool mri_mirror_state_restored(struct mri_mirror_state *st,
			       int32_t partition);

/** @brief Forget \p partition's snapshots (it left): restored again on its
 *         next delivery. */
void mri_mirror_state_drop(struct mri_mirror_state *st, int32_t partition);

/** @returns whether the snapshot of \p key reflects the message at \p
 *           partition, \p offset already. */
bool mri_mirror_state_applied(struct mri_mirror_state *st, const void *key,
			      size_t len, int32_t partition, int64_t offset);

/** @returns whether the table has a snapshot of \p key, and then the
 *           message it reflects (*partition, *offset). */
bool mri_mirror_state_offset(struct mri_mirror_state *st, const void *key,
			     size_t len, int32_t *partition, int64_t *offset);

/**
 * @brief A copy of \p key's snapshot bytes (*out, new: free it; NULL and 0
 *        when it has none).
 * @returns MR_OK or MR_ENOMEM.
 */
int mri_mirror_state_get(struct mri_mirror_state *st, const void *key,
			 size_t len, void **out, size_t *out_len);

/** @brief Keep \p n bytes of \p b as \p key's snapshot at \p partition, \p
 *         offset (saved: Kafka acked it). @returns MR_OK or MR_ENOMEM. */
int mri_mirror_state_put(struct mri_mirror_state *st, const void *key,
			 size_t len, int32_t partition, int64_t offset,
			 const void *b, size_t n);

/**
 * @brief Run admin request \p req (taken) through \p c; its reply (*rep,
 *        new) when it says ok. Mirrored actors' and routers' topics.
 * @returns MR_OK, or the error with mailroomd's sentence in \p why.
 */
int mri_mirror_admin(mr_client *c, struct json_t *req, struct json_t **rep,
		     char *why, size_t why_size);

/** @returns the code of error name \p name ("MR_ENOENT"); MR_EPROTO when
 *           it names none. */
int mri_mirror_err_code(const char *name);

/** @returns a snapshot record's value (new: free it; *out_len its size):
 *           the head, then \p n bytes of \p b; NULL when out of memory. */
void *mri_mirror_snap_encode(int32_t partition, int64_t offset,
			     const void *b, size_t n, size_t *out_len);

/** @returns MR_OK and the fields of value \p v, or MR_EPROTO (not one). */
int mri_mirror_snap_decode(const void *v, size_t n, int32_t *partition,
			   int64_t *offset, const void **b, size_t *bn);

#endif
