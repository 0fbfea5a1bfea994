/*
 * SUBSCRIBE's JSON (docs/PROTOCOL.md, "SUBSCRIBE"), in one place: the
 * request's fields, their encoding (the client library), their parsing and
 * checks (mailroomd), and the few fields of the reply that the client reads.
 *
 * The request is {"group": G, "topics": [T...], "mode": M,
 * "ack_deadline_ms": N, "credit": N}; mode, ack_deadline_ms and credit may
 * be left out (key, and mailroomd's defaults).
 *
 * mri_subscribe_encode and mri_subscribe_reply_parse need no JSON library
 * (they are in libmailroom, proto/subscribe.c); mri_subscribe_parse uses
 * jansson and is compiled into mailroomd only (proto/subscribe_json.c), so
 * that its refusals keep jansson's line and column.
 *
 * Thread safety: pure functions, thread-safe.
 */
#ifndef MRI_PROTO_SUBSCRIBE_H
#define MRI_PROTO_SUBSCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

#define MRI_SUBSCRIBE_TOPICS_MAX 100
#define MRI_SUBSCRIBE_GROUP_MAX 249
#define MRI_SUBSCRIBE_DEADLINE_MIN 100
#define MRI_SUBSCRIBE_DEADLINE_MAX 86400000
#define MRI_SUBSCRIBE_CREDIT_MAX 100000

/* The same numbers as mr_order and the engine's enum mri_order. */
enum mri_subscribe_mode {
	MRI_SUBSCRIBE_KEY = 0,
	MRI_SUBSCRIBE_PARTITION,
	MRI_SUBSCRIBE_UNORDERED,
};

struct mri_subscribe {
	const char              *group;   /* borrowed */
	const char *const       *topics;  /* borrowed, ntopics of them */
	size_t                   ntopics;
	enum mri_subscribe_mode  mode;
	uint64_t                 ack_deadline_ms; /* 0: mailroomd's default */
	uint32_t                 credit;          /* 0: mailroomd's default */
};

/** @returns "key", "partition" or "unordered" (static). */
const char *mri_subscribe_mode_name(enum mri_subscribe_mode m);

/**
 * @brief Append \p s as SUBSCRIBE's JSON text to \p b (no NUL); a 0
 *        ack_deadline_ms or credit is left out. Strings are escaped, not
 *        checked: mailroomd refuses what is not valid. Out of memory is in
 *        b->err.
 */
void mri_subscribe_encode(struct mri_wbuf *b, const struct mri_subscribe *s);

/* jansson's json_t, for mri_subscribe_parse's callers. */
struct json_t;

/**
 * @brief Parse and check a SUBSCRIBE body (mailroomd only: jansson).
 * @param root set to the parsed document (new, or NULL): json_decref it
 *        whatever this returns; \p out's strings borrow from it.
 * @param topics room for MRI_SUBSCRIBE_TOPICS_MAX names: out->topics, sorted
 *        (byte order), none twice.
 * @returns MR_OK, or MR_EINVAL with a sentence in \p why.
 */
int mri_subscribe_parse(const void *body, size_t len, struct json_t **root,
			struct mri_subscribe *out, const char **topics,
			char *why, size_t why_size);

/**
 * @brief Read SUBSCRIBE_REPLY's {"session": N, "credit": N, ...} in \p json
 *        (\p len bytes, borrowed): other members, nested or not, are
 *        skipped. *credit is set only when the reply has one of 1 to
 *        MRI_FETCH_MAX_MSGS.
 * @returns MR_OK, or MR_EPROTO when it is not such an object or has no
 *          session.
 */
int mri_subscribe_reply_parse(const char *json, size_t len,
			      uint64_t *session, int *credit);

#endif
