/*
 * A bounded map from 64-bit hashes to a 32-bit value, oldest out first: the
 * journal's memory of attempts and acks (consumers/journal.c).
 *
 * Entries live in a ring in the order they were put, each with the time it
 * was put; when the ring is full, the oldest entry makes room for the new
 * one, and mri_idmap_expire drops the oldest while they are older than a
 * time. Putting a hash already there keeps the larger value (and the first
 * time).
 *
 * The ring is indexed by an open-addressing table (linear probing, at most
 * half full) of 8-byte slots: 32 bits of the mixed hash, which give the
 * home slot and serve as a tag, and the entry's ring index + 1 (0: empty).
 * A probe reads the table a cache line at a time, without a branch per
 * slot. A hash that is not there usually costs one line of the table and
 * nothing else; one that is costs that line and its ring entry, where the
 * whole hash is confirmed. Entries leave the table by backward shift (no
 * tombstones), so a map that turns over forever stays as fast as a new one.
 *
 * Thread safety: not thread-safe; the caller serialises every call (find
 * and prefetch only read, and may run together).
 */
#ifndef MRI_IDMAP_H
#define MRI_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mri_idmap;

/** @brief The largest capacity mri_idmap_new takes. */
#define MRI_IDMAP_MAX_CAP ((size_t)1 << 31)

/**
 * @brief A map of at most \p cap entries (1 to MRI_IDMAP_MAX_CAP). Its
 *        memory (24 bytes an entry, and 16 to 32 more for the table) is
 *        allocated zeroed: pages cost nothing until entries reach them.
 * @returns MR_OK, MR_EINVAL (cap out of range) or MR_ENOMEM.
 */
int mri_idmap_new(struct mri_idmap **out, size_t cap);

/** @brief Free the map; NULL is a no-op. */
void mri_idmap_free(struct mri_idmap *m);

/**
 * @brief Put \p hash with \p val, put at time \p ts. If the hash is there,
 *        its value becomes the larger of the two and its time stays; if not
 *        and the map is full, the oldest entry is dropped first.
 */
void mri_idmap_put(struct mri_idmap *m, uint64_t hash, uint32_t val,
		   int64_t ts);

/**
 * @brief Look \p hash up.
 * @returns true if it is there, with its value in *val (\p val may be
 *          NULL); false if not (*val untouched).
 */
bool mri_idmap_find(const struct mri_idmap *m, uint64_t hash, uint32_t *val);

/** @brief Start loading the table's line for \p hash, ahead of a find or
 *         put of it (for batches: prefetch several, then find them). */
void mri_idmap_prefetch(const struct mri_idmap *m, uint64_t hash);

/**
 * @brief Drop the oldest entries while their time is before \p before
 *        (stops at the first that is not, as entries are in put order).
 * @returns the number dropped.
 */
size_t mri_idmap_expire(struct mri_idmap *m, int64_t before);

/** @returns the number of entries. */
size_t mri_idmap_count(const struct mri_idmap *m);

#endif
