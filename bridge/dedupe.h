/*
 * The publish-side dedupe window: a message id republished to the same topic
 * within the window gets the first publish's ack and writes nothing (as
 * NATS JetStream's Nats-Msg-Id and duplicate_window).
 *
 * An id is PENDING from its first publish until Kafka confirms it (then it
 * is DONE and stays for the window) or refuses it (then it is forgotten, so
 * that a retry writes it). A duplicate that arrives while the first is
 * pending waits for it. The window is bounded by age and by a number of
 * entries: when full, the oldest confirmed entries go first, even inside
 * the window (counted in evicted_early). Pending entries are never evicted;
 * they are bounded by what mailroomd has in flight.
 *
 * An id is known by two 64-bit hashes of (topic, id), 128 bits, not by its
 * bytes: entries are then of one size, kept in blocks (no malloc per id),
 * about 82 bytes an id with the index, where a copy of the bytes took
 * about 158 (dedupe_bench). Two different ids of a window of a million
 * share both hashes with a probability of about 10^-27.
 *
 * Thread safety: not thread-safe; the caller serialises every call.
 */
#ifndef MRI_DEDUPE_H
#define MRI_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

struct mri_dedupe;

/* A duplicate waiting for a pending entry; embedded in the caller's state. */
struct mri_dedupe_waiter {
	struct mri_dedupe_waiter *next;
};

enum mri_dedupe_state {
	MRI_DEDUPE_NEW,     /* first sight: the entry is now pending */
	MRI_DEDUPE_PENDING, /* a first publish is in flight: wait for it */
	MRI_DEDUPE_DONE,    /* confirmed: partition and offset are known */
};

struct mri_dedupe_entry {
	struct mri_dedupe_waiter *waiters;
	uint64_t                  hash;  /* mri_dedupe_key's */
	uint64_t                  check; /* the second hash */
	uint64_t                  done_ms;
	int64_t                   offset;
	int32_t                   partition;
	uint32_t                  link; /* dedupe.c's: number, place, next */
	uint8_t                   state;
};

/* What knows (topic, id): mri_dedupe_key's two hashes. */
struct mri_dedupe_key {
	uint64_t hash;
	uint64_t check;
};

struct mri_dedupe_stats {
	size_t   entries;
	size_t   pending;
	uint64_t hits;
	uint64_t evicted_early;
};

/** @returns MR_OK or MR_ENOMEM. */
int  mri_dedupe_new(struct mri_dedupe **out, uint64_t window_ms,
		    size_t max_entries);
void mri_dedupe_free(struct mri_dedupe *d);

/**
 * @brief Look up (topic, id); insert it as pending if new.
 * @returns an mri_dedupe_state, with *e the entry (borrowed: valid until it
 *          is completed or failed, or evicted once DONE), or -1 when out of
 *          memory (then nothing was inserted).
 */
int mri_dedupe_check(struct mri_dedupe *d, const char *topic,
		     size_t topic_len, const char *id, size_t id_len,
		     uint64_t now_ms, struct mri_dedupe_entry **e);

/** @returns the first hash of (topic, id): a pure function, for any
 *           thread, no lock needed. */
uint64_t mri_dedupe_hash(const char *topic, size_t topic_len, const char *id,
			 size_t id_len);

/** @returns what knows (topic, id) in the window (its hash is
 *           mri_dedupe_hash's): a pure function, for any thread. */
struct mri_dedupe_key mri_dedupe_key(const char *topic, size_t topic_len,
				     const char *id, size_t id_len);

/** @brief Start loading the index slot of \p hash into the cache (a lookup
 *         is a cache miss in a big window): a caller that looks up many
 *         ids asks for one a few lookups ahead. */
void mri_dedupe_prefetch(const struct mri_dedupe *d, uint64_t hash);

/** @brief mri_dedupe_check with the key already made by mri_dedupe_key. */
int mri_dedupe_check_key(struct mri_dedupe *d, struct mri_dedupe_key k,
			 uint64_t now_ms, struct mri_dedupe_entry **e);

/** @brief Wait on a pending entry. */
void mri_dedupe_wait(struct mri_dedupe_entry *e, struct mri_dedupe_waiter *w);

/**
 * @brief A pending entry was confirmed.
 * @returns the waiters (the caller completes them with e's ack, read now:
 *          e may be evicted by the next call).
 */
struct mri_dedupe_waiter *mri_dedupe_complete(struct mri_dedupe       *d,
					      struct mri_dedupe_entry *e,
					      int32_t partition, int64_t offset,
					      uint64_t now_ms);

/** @brief A pending entry failed: forget it. @returns its waiters. */
struct mri_dedupe_waiter *mri_dedupe_fail(struct mri_dedupe       *d,
					  struct mri_dedupe_entry *e);

/** @brief Drop DONE entries older than the window or beyond the bound. */
void mri_dedupe_expire(struct mri_dedupe *d, uint64_t now_ms);

void mri_dedupe_stats(const struct mri_dedupe *d, struct mri_dedupe_stats *s);

#endif
