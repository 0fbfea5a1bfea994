/*
 * The dead-letter record (docs/PROTOCOL.md, "Dead-letter records"): the
 * headers mailroom writes on a record it quarantines, the fingerprint
 * that groups failures by their reason, and a reader of dead-letter
 * records written by mailroom, by Spring Kafka's
 * DeadLetterPublishingRecoverer and by Kafka Connect, in one shape.
 *
 * A dead-letter record is the original record (key, value, headers)
 * published raw (bridge/publish.h, mri_pub_rec.raw) to the dead-letter
 * topic, its headers being the original's, in their order, less any
 * mr_dlq_* header they had (a record quarantined again after a replay
 * carries one set), followed by mailroom's:
 *
 *   mr_dlq_topic            original topic
 *   mr_dlq_partition        original partition (decimal)
 *   mr_dlq_offset           original offset (decimal)
 *   mr_dlq_group            the consumer group that failed it (left out
 *                           when none is given)
 *   mr_dlq_attempts         delivery attempts made (decimal)
 *   mr_dlq_first_failure    first and last failed attempt, RFC 3339 UTC
 *   mr_dlq_last_failure     with ms (mri_time_fmt; each left out when
 *                           unknown)
 *   mr_dlq_reason           the last failure's reason, UTF-8, at most
 *                           MRI_DLQ_REASON_MAX bytes (cut on a UTF-8
 *                           boundary)
 *   mr_dlq_fingerprint      of the reason, 16 lowercase hex digits
 *   mr_dlq_time             when it was quarantined (RFC 3339 UTC, ms)
 *   mr_dlq_replays          how many times the message was replayed from
 *                           a dead-letter topic before (decimal); a
 *                           replayed record carries it too
 *   mr_dlq_dropped_headers  only when the original had too many headers
 *                           to add these: how many of its last ones were
 *                           left out (decimal)
 *
 * Decimals are ASCII digits with no sign, no spaces, no leading zeros.
 *
 * The fingerprint is FNV-1a 64 (consumers/journal.h's mri_journal_hash)
 * of the reason normalised, so that reasons that differ only in their
 * variable parts (numbers, ids, addresses, quoted values) group together.
 * Normalising reads the bytes left to right; "alnum" is ASCII [0-9A-Za-z],
 * letters compare without case, and a token "starts" where the byte
 * before is not alnum (or at the start):
 *   1. a run of whitespace (space, \t, \n, \v, \f, \r) is one space;
 *      leading and trailing whitespace is dropped;
 *   2. a quote (' or ") that starts a token, up to the next same quote
 *      that is followed by a non-alnum byte or the end, becomes <str>
 *      (a quote with no such close is kept as it is);
 *   3. where a token starts, the first of these that matches is replaced:
 *      a. a UUID (8-4-4-4-12 hex digits) not followed by alnum: <uuid>
 *      b. 0x (or 0X) and 1+ hex digits not followed by alnum: <hex>
 *      c. an IPv4 address (4 groups of 1-3 digits joined by dots), not
 *         right after a digit and a dot, not followed by alnum nor by a
 *         dot and a digit: <ip>
 *      d. an IPv6-like run of hex digits and colons, with 2+ colons and a
 *         hex digit, not preceded by a colon and not followed by alnum:
 *         <ip> (a time of day like 12:34:56 is one too)
 *      e. an e-mail-like token: 1+ bytes of [A-Za-z0-9._%+-], @, then
 *         1+ bytes of [A-Za-z0-9.-] holding an alnum, its trailing dots
 *         not part of it: <email>
 *   4. a word (a run of alnum) is read left to right: at its start or at
 *      a digit, a run of 8+ hex digits holding a digit and a letter
 *      becomes <hex>; else a run of digits becomes <n>; else a letter is
 *      kept, lowercased;
 *   5. any other byte (punctuation, UTF-8 beyond ASCII) is kept.
 * So "Timeout after 1234 ms on order 5f3e9a1b7c" and "timeout after 99 ms
 * on order a1b2c3d4e5" are both "timeout after <n> ms on order <hex>". An
 * empty reason (or one of whitespace only) normalises to "", whose
 * fingerprint is FNV-1a's offset basis, cbf29ce484222325. The fingerprint
 * is of the reason as written in mr_dlq_reason (after the cut).
 *
 * Reading (mri_dlq_parse) takes any record's headers. Where a name
 * repeats, its last header counts (Kafka's Headers.lastHeader). A value
 * that is not what it should be (not a decimal, not 4 or 8 bytes, not a
 * time) is unknown, never an error: these are foreign bytes. Spring's
 * original partition and offset are 4- and 8-byte big-endian integers;
 * a value of another length, or of exactly that length but made of ASCII
 * digits only, is read as a decimal instead (kcat -H writes text; as
 * binary, 4 digits would be a partition above 808 million, 8 an offset
 * above 3.4e18).
 *
 * Thread safety: pure functions on the caller's memory, thread-safe.
 */
#ifndef MRI_DLQ_RECORD_H
#define MRI_DLQ_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/envelope.h"
#include "proto/header.h"

#define MRI_DLQ_H_PREFIX "mr_dlq_"
#define MRI_DLQ_H_TOPIC "mr_dlq_topic"
#define MRI_DLQ_H_PARTITION "mr_dlq_partition"
#define MRI_DLQ_H_OFFSET "mr_dlq_offset"
#define MRI_DLQ_H_GROUP "mr_dlq_group"
#define MRI_DLQ_H_ATTEMPTS "mr_dlq_attempts"
#define MRI_DLQ_H_FIRST_FAILURE "mr_dlq_first_failure"
#define MRI_DLQ_H_LAST_FAILURE "mr_dlq_last_failure"
#define MRI_DLQ_H_REASON "mr_dlq_reason"
#define MRI_DLQ_H_FINGERPRINT "mr_dlq_fingerprint"
#define MRI_DLQ_H_TIME "mr_dlq_time"
#define MRI_DLQ_H_REPLAYS "mr_dlq_replays"
#define MRI_DLQ_H_DROPPED "mr_dlq_dropped_headers"

#define MRI_DLQ_REASON_MAX 1024 /* bytes of mr_dlq_reason */
#define MRI_DLQ_GROUP_MAX 255   /* bytes of mr_dlq_group */
#define MRI_DLQ_FP_STRLEN 16    /* the fingerprint in hex */
#define MRI_DLQ_OWN_MAX 12      /* mailroom's headers on a record, at most */
#define MRI_DLQ_DEC_MAX 20      /* digits of a uint64 */

/* The fingerprint of an empty reason. */
#define MRI_DLQ_FP_EMPTY 0xcbf29ce484222325ULL

/** @brief The fingerprint of \p len bytes of \p reason (NULL or empty:
 *         MRI_DLQ_FP_EMPTY), as the header comment says. */
uint64_t mri_dlq_fingerprint(const char *reason, size_t len);

/** @brief Write \p fp as 16 lowercase hex digits and a NUL. */
void mri_dlq_fingerprint_fmt(uint64_t fp, char out[MRI_DLQ_FP_STRLEN + 1]);

/**
 * @brief The normalised form of \p reason that the fingerprint hashes:
 *        its first \p size - 1 bytes, NUL-terminated, in \p out (\p size
 *        may be 0, \p out NULL then).
 * @returns its whole length (as snprintf: more than \p size - 1 means it
 *          was cut), at most 3 times \p len.
 */
size_t mri_dlq_normalise(const char *reason, size_t len, char *out,
			 size_t size);

/** @returns the length of the longest prefix of \p s (\p len bytes) that
 *           is at most \p max bytes and does not end inside a UTF-8
 *           sequence (for bytes that are not UTF-8: \p max). */
size_t mri_dlq_utf8_cut(const char *s, size_t len, size_t max);

/** @brief The record that failed (borrowed during mri_dlq_build; its
 *         headers' bytes are borrowed by the built headers after). */
struct mri_dlq_orig {
	const char                *topic; /* 1-MRI_TOPIC_MAX bytes */
	size_t                     topic_len;
	int32_t                    partition; /* >= 0 */
	int64_t                    offset;    /* >= 0 */
	const struct mri_hdr_view *hdrs;      /* its headers, in order */
	size_t                     nhdrs;
};

/** @brief Why and when it failed (borrowed during mri_dlq_build). */
struct mri_dlq_failure {
	const char *group; /* NULL: no mr_dlq_group */
	size_t      group_len;
	uint32_t    attempts;
	int64_t     first_failure_ms; /* ms since the epoch; < 0: unknown */
	int64_t     last_failure_ms;  /* likewise */
	int64_t     time_ms;          /* quarantined at; < 0: unknown */
	const char *reason;           /* NULL: "" */
	size_t      reason_len;       /* cut to MRI_DLQ_REASON_MAX */
	uint32_t    replays;          /* replays before this quarantine */
};

/* The size of struct mri_dlq_hdrs' arena: mailroom's values. */
#define MRI_DLQ_ARENA                                                         \
	(MRI_TOPIC_MAX + MRI_DLQ_GROUP_MAX + MRI_DLQ_REASON_MAX +             \
	 MRI_DLQ_FP_STRLEN + 3 * MRI_TIME_STRLEN + 5 * MRI_DLQ_DEC_MAX)

/**
 * @brief A dead-letter record's headers, built by mri_dlq_build or
 *        mri_dlq_build_replay: h[0..n) is ready for a raw publish
 *        (mri_pub_rec.hdrs, hdr_count). mailroom's values live in the
 *        struct's own arena; the original's headers are borrowed views of
 *        the caller's bytes. No allocation: keep one and reuse it.
 */
struct mri_dlq_hdrs {
	struct mri_hdr_view h[MRI_HDR_COUNT_MAX];
	uint16_t            n;
	uint16_t            dropped;  /* the original's last ones, for room */
	uint16_t            stripped; /* the original's mr_dlq_* ones */
	uint64_t            fingerprint;
	/* The builder's. */
	size_t              used;
	char                arena[MRI_DLQ_ARENA];
};

/**
 * @brief Build the headers of the dead-letter record of \p o into \p out:
 *        \p o's headers in their order less any mr_dlq_* one, then
 *        mailroom's (see above) from \p o and \p f. The total is at most
 *        MRI_HDR_COUNT_MAX: when the original's do not leave room for
 *        mailroom's, its last ones are left out, counted in
 *        mr_dlq_dropped_headers and out->dropped (a poison message is
 *        quarantined whatever it carries).
 * @returns MR_OK; or MR_EINVAL (a caller's mistake, out unusable): no
 *          topic or one over MRI_TOPIC_MAX, a group over
 *          MRI_DLQ_GROUP_MAX, a negative partition or offset, headers
 *          or a reason missing (NULL with a length).
 */
int mri_dlq_build(struct mri_dlq_hdrs *out, const struct mri_dlq_orig *o,
		  const struct mri_dlq_failure *f);

/**
 * @brief Build the headers of a replay of a dead-letter record whose
 *        headers are \p h (\p n, borrowed as in mri_dlq_build): the same
 *        less every mr_dlq_* one, then mr_dlq_replays = \p replays (the
 *        dead-letter record's count + 1). Spring's and Connect's headers
 *        are kept as they are. Too many headers: as mri_dlq_build.
 * @returns MR_OK, or MR_EINVAL (headers missing).
 */
int mri_dlq_build_replay(struct mri_dlq_hdrs *out,
			 const struct mri_hdr_view *h, size_t n,
			 uint32_t replays);

/** @brief Who wrote a dead-letter record. */
enum mri_dlq_dialect {
	MRI_DLQ_UNKNOWN = 0, /* none of these */
	MRI_DLQ_MAILROOM,    /* mr_dlq_topic */
	MRI_DLQ_SPRING,      /* a kafka_dlt-* header */
	MRI_DLQ_CONNECT,     /* a __connect.errors.* header */
};

/** @brief Bytes borrowed from a header's value (len 0: unknown or empty;
 *         p NULL when there is no such header, or its value is null). */
struct mri_dlq_str {
	const char *p;
	size_t      len;
};

/**
 * @brief A dead-letter record read, in one shape whoever wrote it. Strings
 *        are borrowed from the headers given; reason is a copy (it may be
 *        made of two headers), so the struct can be copied.
 */
struct mri_dlq_info {
	enum mri_dlq_dialect dialect;
	struct mri_dlq_str   topic;     /* original topic */
	int32_t              partition; /* -1: unknown */
	int64_t              offset;    /* -1: unknown */
	struct mri_dlq_str   group;     /* Connect: the connector's name */
	uint32_t             attempts;  /* 0: unknown */
	int64_t              first_failure_ms; /* -1: unknown */
	int64_t              last_failure_ms;  /* -1: unknown */
	int64_t              time_ms; /* quarantined at; -1: unknown (then
					 the record's timestamp says) */
	int64_t              orig_time_ms; /* Spring: the original record's
					      timestamp; -1: unknown */
	uint32_t             replays;      /* mr_dlq_replays, any dialect */
	uint32_t             dropped_headers;
	/* Spring and Connect: the exception's class and message, its
	 * cause's class (Spring), its stack trace; Connect's task and
	 * stage and the class that failed. */
	struct mri_dlq_str   exception;
	struct mri_dlq_str   message;
	struct mri_dlq_str   cause;
	struct mri_dlq_str   stacktrace;
	int32_t              task_id; /* -1: unknown */
	struct mri_dlq_str   stage;
	struct mri_dlq_str   executing_class;
	/* mailroom's mr_dlq_reason; Spring's and Connect's
	 * "<exception class>: <message>" (either alone when the other is
	 * missing); cut to MRI_DLQ_REASON_MAX on a UTF-8 boundary. */
	size_t               reason_len;
	char                 reason[MRI_DLQ_REASON_MAX + 1];
	/* mailroom's mr_dlq_fingerprint when it is 16 lowercase hex digits,
	 * else the fingerprint of reason. */
	uint64_t             fingerprint;
};

/**
 * @brief Read the dead-letter headers of a record (\p n headers \p h,
 *        borrowed while \p out is used) into \p out. Dialect: mailroom's
 *        when an mr_dlq_topic header is there, else Spring's when a
 *        kafka_dlt-* one is, else Connect's when a __connect.errors.* one
 *        is, else unknown; only the dialect's headers are read, and
 *        mr_dlq_replays in every dialect (a replayed record's count).
 * @returns MR_OK (whatever the headers hold), or MR_EINVAL for a NULL \p
 *          out or \p h with \p n > 0.
 */
int mri_dlq_parse(const struct mri_hdr_view *h, size_t n,
		  struct mri_dlq_info *out);

#endif
