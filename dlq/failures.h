/*
 * What the supervisor remembers of a record's failed attempts until it is
 * quarantined: when the first and the last failed, and the last reason.
 * A map keyed by the record's position hash (consumers/journal.h's
 * mri_journal_pos_hash), bounded in entries: when full, the entry whose
 * last failure is oldest goes (its record, if quarantined later, says its
 * first failure is unknown). In memory only: after a restart of mailroomd
 * a record's earlier failures are counted (the journal has its attempts)
 * but not described.
 *
 * Thread safety: none; the supervisor holds its lock around every call.
 */
#ifndef MRI_DLQ_FAILURES_H
#define MRI_DLQ_FAILURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlq/record.h" /* MRI_DLQ_REASON_MAX */

struct mri_dlq_failures;

/** @brief What is known of a record's failures. */
struct mri_dlq_failure_info {
	int64_t  first_ms; /* ms since the epoch */
	int64_t  last_ms;
	uint32_t count;    /* failures noted (not the attempts) */
	size_t   reason_len;
	char     reason[MRI_DLQ_REASON_MAX + 1]; /* NUL-terminated */
};

/** @returns MR_OK, MR_EINVAL (\p max 0) or MR_ENOMEM. */
int  mri_dlq_failures_new(struct mri_dlq_failures **out, size_t max);
void mri_dlq_failures_free(struct mri_dlq_failures *f);

/** @brief Note a failure of \p pos at \p now_ms, for \p reason (\p len
 *         bytes, cut to MRI_DLQ_REASON_MAX). Out of memory: not noted. */
void mri_dlq_failures_note(struct mri_dlq_failures *f, uint64_t pos,
			   int64_t now_ms, const char *reason, size_t len);

/** @brief Copy what is known of \p pos into \p out (may be NULL) and
 *         forget it. @returns false if nothing is known. */
bool mri_dlq_failures_take(struct mri_dlq_failures *f, uint64_t pos,
			   struct mri_dlq_failure_info *out);

/** @brief Like take, but keeps it. */
bool mri_dlq_failures_get(const struct mri_dlq_failures *f, uint64_t pos,
			  struct mri_dlq_failure_info *out);

/** @returns the number of records known. */
size_t mri_dlq_failures_count(const struct mri_dlq_failures *f);

#endif
