/*
 * Reading a dead-letter topic for operators: `list` (its records grouped by
 * fingerprint) and `show` (one record, decoded), whoever wrote them
 * (dlq/record.h reads mailroom's, Spring Kafka's and Kafka Connect's
 * headers into one shape).
 *
 * The scanning core takes its records from a source (struct
 * mri_dlq_source), so that it runs without Kafka in a test; the Kafka
 * source (mri_dlq_kafka_open, inspect_kafka.c) reads a topic from its
 * beginning to the high watermarks it found when it opened, with a
 * consumer of its own: every partition assigned (its group id is never
 * joined), nothing committed.
 *
 * Listing:
 *   - a record is matched against the filter (struct mri_dlq_filter); its
 *     time is its quarantine time (mr_dlq_time), else its Kafka timestamp;
 *   - of the matched records, those of one original position (topic,
 *     partition, offset) count once: a kill -9 during a quarantine writes
 *     it twice. The latest copy is kept (the later time; on a tie, the
 *     later dead-letter position). A record whose original position is
 *     unknown is its own;
 *   - the records kept are grouped by fingerprint: count, first and last
 *     time, the reason of the latest record seen with that fingerprint,
 *     the source topics and groups (at most MRI_DLQ_LIST_NAMES of each),
 *     the dialects, the first and last dead-letter position
 *     (partition, then offset); groups come by count, most first, then by
 *     last time, latest first;
 *   - bounded: at most max_records records are read (then the answer says
 *     it was cut, MRI_DLQ_CUT_RECORDS), and a source that runs out of time
 *     ends it with MRI_DLQ_CUT_TIMEOUT. About 48 bytes per record kept,
 *     for the call only.
 *
 * A later state (resolved, replayed) filters through mri_dlq_filter.skip,
 * asked of each record's dead-letter position before anything else.
 *
 * Thread safety: a list or show belongs to its caller; the functions are
 * thread-safe on distinct objects. A source's next is called on the
 * caller's thread.
 */
#ifndef MRI_DLQ_INSPECT_H
#define MRI_DLQ_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "dlq/record.h"

#define MRI_DLQ_LIST_NAMES 16         /* source topics, groups per group */
#define MRI_DLQ_LIST_RECORDS 1000000  /* default max_records */
#define MRI_DLQ_LIST_GROUPS 1000      /* default max_groups */

/** @brief A record of a dead-letter topic (borrowed for a call). */
struct mri_dlq_rec {
	int32_t                    partition; /* its dead-letter position */
	int64_t                    offset;
	int64_t                    timestamp_ms; /* Kafka's; -1: none */
	bool                       has_key;
	const void                *key;
	size_t                     key_len;
	const void                *value; /* NULL: a null value */
	size_t                     value_len;
	const struct mri_hdr_view *hdrs;
	size_t                     nhdrs;
};

/**
 * @brief Where the records come from. next returns MR_OK with *rec
 *        (borrowed until the next call) or with *end set (no more), or an
 *        error with a sentence in \p why: MR_ETIMEDOUT ends a list as cut
 *        (MRI_DLQ_CUT_TIMEOUT), anything else fails it.
 */
struct mri_dlq_source {
	int (*next)(void *arg, struct mri_dlq_rec *rec, bool *end, char *why,
		    size_t why_size);
	void *arg;
};

/** @brief What a list keeps; each part left out (NULL, -1, false)
 *         matches all. Strings are borrowed for the call. */
struct mri_dlq_filter {
	const char          *topic; /* the original (source) topic */
	const char          *group; /* mr_dlq_group, Spring's group, the
				       Connect connector */
	bool                 has_key;
	const void          *key; /* exact bytes; has_key with key_len 0: an
				     empty key */
	size_t               key_len;
	bool                 has_fingerprint;
	uint64_t             fingerprint;
	int64_t              since_ms; /* time >= since_ms; -1: open */
	int64_t              until_ms; /* time <= until_ms; -1: open */
	bool                 has_dialect;
	enum mri_dlq_dialect dialect;
	/* Asked first of each record's dead-letter position: true leaves
	 * the record out (a later resolved or replayed state). NULL: none. */
	bool (*skip)(void *arg, int32_t partition, int64_t offset);
	void *skip_arg;
};

/** @brief Initialise \p f to match everything. */
void mri_dlq_filter_init(struct mri_dlq_filter *f);

/** @returns MR_OK, or MR_EINVAL with a sentence: since after until. */
int mri_dlq_filter_check(const struct mri_dlq_filter *f, char *why,
			 size_t why_size);

/** @returns true when \p f keeps record \p r, whose headers read \p in
 *           and whose time is \p t (-1: none), as a list does. */
bool mri_dlq_filter_match(const struct mri_dlq_filter *f,
			  const struct mri_dlq_rec *r,
			  const struct mri_dlq_info *in, int64_t t);

/** @returns the hash of \p r's original position (of its dead-letter
 *           one when unknown): copies of one original have one hash;
 *           never 0 in practice (the state records' "orig"). */
uint64_t mri_dlq_orig_hash(const struct mri_dlq_info *in,
			   const struct mri_dlq_rec *r);

/** @returns MR_OK and *fp for 16 hex digits (either case), else
 *           MR_EINVAL. */
int mri_dlq_fingerprint_parse(const char *s, size_t len, uint64_t *fp);

/** @returns "mailroom", "spring", "connect" or "unknown". */
const char *mri_dlq_dialect_name(enum mri_dlq_dialect d);

/** @returns MR_OK and *d for a name of mri_dlq_dialect_name, else
 *           MR_EINVAL. */
int mri_dlq_dialect_parse(const char *s, enum mri_dlq_dialect *d);

/** @brief Why a list ended before the end of its topic. */
enum mri_dlq_cut {
	MRI_DLQ_CUT_NONE = 0, /* read to the end */
	MRI_DLQ_CUT_RECORDS,  /* max_records read */
	MRI_DLQ_CUT_TIMEOUT,  /* the source ran out of time */
};

/** @returns "none", "max_records" or "timeout". */
const char *mri_dlq_cut_name(enum mri_dlq_cut c);

/** @brief One fingerprint's records in a list (all owned by the list). */
struct mri_dlq_group {
	uint64_t fingerprint;
	uint64_t count;
	int64_t  first_ms, last_ms; /* -1: no record had a time */
	char    *reason;            /* the latest's, NUL-terminated */
	size_t   reason_len;
	char    *sources[MRI_DLQ_LIST_NAMES];
	size_t   nsources;
	bool     more_sources; /* more than MRI_DLQ_LIST_NAMES */
	char    *groups[MRI_DLQ_LIST_NAMES];
	size_t   ngroups;
	bool     more_groups;
	unsigned dialects; /* bit 1 << enum mri_dlq_dialect */
	int32_t  first_partition, last_partition;
	int64_t  first_offset, last_offset;
};

/** @brief A list's answer (new, from mri_dlq_list_run). */
struct mri_dlq_list {
	struct mri_dlq_group *groups; /* the first max_groups */
	size_t                ngroups;
	size_t                groups_total;
	uint64_t              scanned;    /* records read */
	uint64_t              matched;    /* of them, the filter's */
	uint64_t              duplicates; /* of those, copies left out */
	enum mri_dlq_cut      cut;
};

/** @brief A list's bounds (0: the default). */
struct mri_dlq_bounds {
	uint64_t max_records; /* MRI_DLQ_LIST_RECORDS */
	size_t   max_groups;  /* MRI_DLQ_LIST_GROUPS */
};

/**
 * @brief Read \p src to its end or a bound, keep what \p f matches, and
 *        group it (as the header comment says).
 * @param b NULL: the defaults.
 * @returns MR_OK and *out (new: mri_dlq_list_free it); or MR_EINVAL (a
 *          bad filter), MR_ENOMEM, or the source's error, with a sentence
 *          in \p why.
 */
int mri_dlq_list_run(const struct mri_dlq_source *src,
		     const struct mri_dlq_filter *f,
		     const struct mri_dlq_bounds *b, struct mri_dlq_list **out,
		     char *why, size_t why_size);

/** @brief Free \p l; NULL is a no-op. */
void mri_dlq_list_free(struct mri_dlq_list *l);

/**
 * @brief One dead-letter record: a copy of it (key, value, headers, as in
 *        struct mri_dlq_rec, pointing into the struct's own memory) and
 *        its headers read (info borrows hdrs).
 */
struct mri_dlq_shown {
	struct mri_dlq_rec  rec;
	struct mri_dlq_info info;
	int64_t             time_ms; /* info.time_ms, else rec.timestamp_ms */
};

/**
 * @brief Copy and read \p rec.
 * @returns MR_OK and *out (new: mri_dlq_shown_free it), or MR_ENOMEM.
 */
int mri_dlq_shown_new(struct mri_dlq_shown **out,
		      const struct mri_dlq_rec *rec);

/** @brief Free \p s; NULL is a no-op. */
void mri_dlq_shown_free(struct mri_dlq_shown *s);

/** @returns true when \p len bytes of \p p are UTF-8 with no control
 *           character but tab, LF and CR: shown as text, else base64. */
bool mri_dlq_is_text(const void *p, size_t len);

/** @returns the length of the UTF-8 sequence at \p p (\p n > 0 bytes
 *           left), or 0 when there is none (overlong, a surrogate, above
 *           U+10FFFF, cut short). */
size_t mri_dlq_utf8_seq(const void *p, size_t n);

/* ---- the Kafka source (inspect_kafka.c) ------------------------------- */

struct mri_dlq_kafka;

/**
 * @brief Open dead-letter topic \p topic for reading with a consumer made
 *        from \p tmpl (borrowed: duplicated; bootstrap and pass-through
 *        settings), assigned, nothing committed. \p partition < 0: every
 *        partition, from its beginning to the high watermark found now;
 *        else \p partition from \p offset, for one record (a show).
 *        next gives MR_ETIMEDOUT once \p timeout_ms passed since the open.
 * @returns MR_OK and *out (new: mri_dlq_kafka_close it), or with a
 *          sentence in \p why: MR_ENOENT (no such topic; or no record at
 *          \p offset), MR_EINVAL (no such partition; \p offset out of its
 *          range), MR_ECONFIG, or a Kafka error (MR_ETIMEDOUT,
 *          MR_EUNAVAIL, MR_EKAFKA).
 */
int mri_dlq_kafka_open(struct mri_dlq_kafka **out,
		       const rd_kafka_conf_t *tmpl, const char *topic,
		       int32_t partition, int64_t offset, int timeout_ms,
		       char *why, size_t why_size);

/**
 * @brief As mri_dlq_kafka_open of every partition, each read from
 *        from[p] (p < \p nfrom; the partition's start when lower) rather
 *        than from its beginning.
 */
int mri_dlq_kafka_open_from(struct mri_dlq_kafka **out,
			    const rd_kafka_conf_t *tmpl, const char *topic,
			    const int64_t *from, int32_t nfrom, int timeout_ms,
			    char *why, size_t why_size);

/**
 * @brief Open \p partition (>= 0) of any topic \p topic as
 *        mri_dlq_kafka_open does, to read from \p offset (the partition's
 *        start when lower) to the high watermark found now: no record when
 *        \p offset is at or beyond it.
 * @returns as mri_dlq_kafka_open; MR_EINVAL for no such partition.
 */
int mri_dlq_kafka_open_range(struct mri_dlq_kafka **out,
			     const rd_kafka_conf_t *tmpl, const char *topic,
			     int32_t partition, int64_t offset,
			     int timeout_ms, char *why, size_t why_size);

/** @brief Partition \p p's start (*lo) and high watermark (*hi) found when
 *         \p k opened; -1 for a partition not asked. */
void mri_dlq_kafka_marks(const struct mri_dlq_kafka *k, int32_t p,
			 int64_t *lo, int64_t *hi);

/** @brief \p k as a source (valid until it is closed). */
void mri_dlq_kafka_source(struct mri_dlq_kafka *k, struct mri_dlq_source *out);

/** @returns the partitions of the topic opened. */
int32_t mri_dlq_kafka_partitions(const struct mri_dlq_kafka *k);

/** @brief Close the consumer and free \p k; NULL is a no-op. */
void mri_dlq_kafka_close(struct mri_dlq_kafka *k);

/**
 * @brief Read the record at \p partition, \p offset of \p topic: as
 *        mri_dlq_kafka_open, then mri_dlq_shown_new of it.
 * @returns MR_OK and *out (new), or the open's errors; MR_ENOENT when the
 *          offset holds no record (compacted away, a transaction marker).
 */
int mri_dlq_kafka_show(const rd_kafka_conf_t *tmpl, const char *topic,
		       int32_t partition, int64_t offset, int timeout_ms,
		       struct mri_dlq_shown **out, char *why, size_t why_size);

#endif
