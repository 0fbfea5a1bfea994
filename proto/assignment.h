/*
 * ASSIGNMENT (0x08): which partitions a consume session's subscription
 * holds now (docs/PROTOCOL.md). The request is a session; the reply lists
 * (topic, partition) pairs. For a mirrored actor's hand-off, and for
 * restoring state co-partitioned with what is consumed.
 *
 * Thread safety: pure functions.
 */
#ifndef MRI_ASSIGNMENT_H
#define MRI_ASSIGNMENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

enum {
	MRI_OP_ASSIGNMENT       = 0x08, /* u64 session */
	MRI_OP_ASSIGNMENT_REPLY = MRI_OP_ASSIGNMENT | MRI_OP_REPLY,
};

/* At most this many partitions in one reply. */
#define MRI_ASSIGNMENT_MAX 65536

/* One partition of a reply; topic is NUL-terminated. */
struct mri_assigned {
	const char *topic;
	int32_t     partition;
};

/** @brief Build a whole ASSIGNMENT request frame. */
void mri_assignment_encode(struct mri_wbuf *b, uint64_t session);

/** @returns MR_OK or MR_EPROTO (the body is not exactly 8 bytes). */
int mri_assignment_decode(const void *body, size_t len, uint64_t *session,
			  const char **why);

/** @brief Build a whole ASSIGNMENT reply frame of \p n partitions (at most
 *         MRI_ASSIGNMENT_MAX; valid topic names). */
void mri_assignment_reply_encode(struct mri_wbuf *b,
				 const struct mri_assigned *v, size_t n);

/**
 * @brief Decode a reply's body: u32 count, then count times a u16
 *        topic_len, the topic (a valid Kafka topic name), an i32
 *        partition >= 0; nothing after.
 * @returns MR_OK and *out, new (one allocation holding the names too:
 *          free(*out); NULL when *n is 0), MR_EPROTO with *why, or
 *          MR_ENOMEM.
 */
int mri_assignment_reply_decode(const void *body, size_t len,
				struct mri_assigned **out, size_t *n,
				const char **why);

#endif
