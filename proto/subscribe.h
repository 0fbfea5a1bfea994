/*
 * SUBSCRIBE's JSON (docs/PROTOCOL.md, "SUBSCRIBE"), in one place: the
 * request's fields, their encoding (the client library), their parsing and
 * checks (mailroomd), and the few fields of the reply that the client reads.
 *
 * The request is {"group": G, "topics": [T...], "mode": M,
 * "ack_deadline_ms": N, "credit": N, "exclusive": B, "start": S,
 * "journal": B, "retry": {...}, "dead_letter": {...}};
 * all but group and topics may be left out (key, and mailroomd's defaults),
 * and so may each member of retry ("max_attempts", "backoff_initial_ms",
 * "backoff_max_ms", "backoff_multiplier", "backoff_jitter") and of
 * dead_letter ("topic", "breaker_max", "breaker_period_ms",
 * "breaker_cooldown_ms"): mailroomd's default applies to each member left
 * out, not to the whole object.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

#define MRI_SUBSCRIBE_TOPICS_MAX 100
#define MRI_SUBSCRIBE_GROUP_MAX 249
#define MRI_SUBSCRIBE_DEADLINE_MIN 100
#define MRI_SUBSCRIBE_DEADLINE_MAX 86400000
#define MRI_SUBSCRIBE_CREDIT_MAX 100000
#define MRI_SUBSCRIBE_ATTEMPTS_MAX 1000        /* 0: unlimited */
#define MRI_SUBSCRIBE_BACKOFF_INITIAL_MAX 3600000
#define MRI_SUBSCRIBE_BACKOFF_MAX_MAX 86400000 /* and >= the initial */
#define MRI_SUBSCRIBE_MULTIPLIER_MAX 100       /* from 1 */
#define MRI_SUBSCRIBE_BREAKER_MAX 1000000      /* 0: no breaker */
#define MRI_SUBSCRIBE_BREAKER_MS_MAX 86400000  /* period, cool-down: from 1 */
/* mailroomd's consumer.dead_letter.topic_suffix, at most: a topic's
 * dead-letter topic is "<topic><suffix>" when the request names none. */
#define MRI_SUBSCRIBE_DLQ_SUFFIX_MAX 64

/* The same numbers as mr_order and the engine's enum mri_order. */
enum mri_subscribe_mode {
	MRI_SUBSCRIBE_KEY = 0,
	MRI_SUBSCRIBE_PARTITION,
	MRI_SUBSCRIBE_UNORDERED,
};

/* Which members of "retry" and "dead_letter" a request gives, in
 * mri_subscribe.has: a member without its bit is left out (mailroomd's
 * default), whatever its value. dead_letter's topic has no bit: NULL is
 * left out. */
enum mri_subscribe_has {
	MRI_SUB_MAX_ATTEMPTS       = 1 << 0,
	MRI_SUB_BACKOFF_INITIAL    = 1 << 1,
	MRI_SUB_BACKOFF_MAX        = 1 << 2,
	MRI_SUB_BACKOFF_MULTIPLIER = 1 << 3,
	MRI_SUB_BACKOFF_JITTER     = 1 << 4,
	MRI_SUB_BREAKER_MAX        = 1 << 5,
	MRI_SUB_BREAKER_PERIOD     = 1 << 6,
	MRI_SUB_BREAKER_COOLDOWN   = 1 << 7,
};
#define MRI_SUB_RETRY_ALL                                                     \
	(MRI_SUB_MAX_ATTEMPTS | MRI_SUB_BACKOFF_INITIAL |                     \
	 MRI_SUB_BACKOFF_MAX | MRI_SUB_BACKOFF_MULTIPLIER |                   \
	 MRI_SUB_BACKOFF_JITTER)
#define MRI_SUB_BREAKER_ALL                                                   \
	(MRI_SUB_BREAKER_MAX | MRI_SUB_BREAKER_PERIOD |                       \
	 MRI_SUB_BREAKER_COOLDOWN)

struct mri_subscribe {
	const char              *group;   /* borrowed */
	const char *const       *topics;  /* borrowed, ntopics of them */
	size_t                   ntopics;
	enum mri_subscribe_mode  mode;
	uint64_t                 ack_deadline_ms; /* 0: mailroomd's default */
	uint32_t                 credit;          /* 0: mailroomd's default */
	bool                     exclusive; /* the session's alone */
	bool                     start_latest; /* "start": "latest" */
	bool                     no_journal;   /* "journal": false */
	unsigned                 has; /* MRI_SUB_*: the members given */
	/* "retry" (struct mri_retry's meaning, consumers/engine.h) */
	uint32_t                 max_attempts;       /* 0: unlimited */
	uint64_t                 backoff_initial_ms;
	uint64_t                 backoff_max_ms;
	double                   backoff_multiplier;
	double                   backoff_jitter;
	/* "dead_letter" (struct mri_dlq_conf's meaning, dlq/supervisor.h) */
	const char              *dlq_topic; /* borrowed; NULL: left out */
	uint32_t                 breaker_max; /* 0: no breaker */
	uint64_t                 breaker_period_ms;
	uint64_t                 breaker_cooldown_ms;
};

/** @returns "key", "partition" or "unordered" (static). */
const char *mri_subscribe_mode_name(enum mri_subscribe_mode m);

/**
 * @brief Append \p s as SUBSCRIBE's JSON text to \p b (no NUL); a 0
 *        ack_deadline_ms or credit is left out, and so is each member of
 *        retry and dead_letter that s->has (or a NULL dlq_topic) does not
 *        give; an object with no member given is left out whole. Strings
 *        are escaped, numbers and strings are not checked: mailroomd
 *        refuses what is not valid (a multiplier or jitter that is not
 *        finite is written null). Fractions are written with 17
 *        significant digits, which read back as the same double, and with
 *        a '.' whatever the caller's LC_NUMERIC (libmailroom's callers may
 *        have set a locale; mailroomd and the CLI run in the C locale).
 *        Out of memory is in b->err.
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
 *
 * Members of retry and dead_letter are checked one by one against the
 * limits above (backoff_max_ms not below backoff_initial_ms when both are
 * given; dead_letter's topic a valid topic name and none of the
 * subscription's topics), and out->has tells which were given; a member
 * they do not have is refused by name. Checks that need mailroomd's
 * defaults (a backoff_max_ms left out below a given initial) are the
 * caller's.
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
