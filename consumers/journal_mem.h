/*
 * The journal's records and its memory, without Kafka: the bytes of a
 * record (consumers/journal.h gives the layout), read and written, and
 * what reading one does to the memory of attempts and acks. The journal
 * (consumers/journal.c) holds one memory under its lock and moves records
 * between it and Kafka; the fuzz target (journal_fuzz.c) feeds it records
 * from nowhere.
 *
 * A record is read only as far as its header's count says, and only when
 * that count of entries fits in it: a record that is short, of another
 * kind or version, or older than the window is skipped whole.
 *
 * Thread safety: none; the caller serialises every call on a memory.
 */
#ifndef MRI_JOURNAL_MEM_H
#define MRI_JOURNAL_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumers/journal.h"

#define MRI_JOURNAL_V1 1 /* entries of 12 bytes: hash, attempt */
#define MRI_JOURNAL_V2 2 /* dispatches: runs of 24 bytes */
#define MRI_JOURNAL_HDR 16
#define MRI_JOURNAL_WRITER 8 /* the trailer: the writer's id */
#define MRI_JOURNAL_ENTRY 12
#define MRI_JOURNAL_RUN 24

/** @brief A record as read: its entries stay in the bytes it was read
 *         from. */
struct mri_journal_rec {
	int            kind;    /* MRI_JOURNAL_DISPATCH or MRI_JOURNAL_ACK */
	int            version; /* MRI_JOURNAL_V1 or MRI_JOURNAL_V2 */
	int64_t        ts;      /* written, ms since the epoch */
	uint32_t       n;       /* entries */
	size_t         esz;     /* bytes an entry */
	const uint8_t *entries; /* n * esz bytes */
	bool           has_writer;
	uint64_t       writer; /* when has_writer */
};

/** @brief What a journal remembers: attempts as runs of offsets (and
 *         version 1's by position, made when the first comes), acked ids,
 *         each at most max_entries and for window_ms. */
struct mri_journal_mem {
	struct mri_runs  *runs;
	struct mri_idmap *attempts; /* version 1's dispatches, or NULL */
	struct mri_idmap *acked;
	size_t            max_entries;
	uint64_t          window_ms;
	uint64_t          writer;     /* this instance's id in its records */
	int64_t           expired_at; /* when runs last expired */
	const char       *topic;      /* named in warnings; borrowed */
};

/**
 * @brief An empty memory of at most \p max_entries of each kind.
 * @returns MR_OK, MR_EINVAL (max_entries out of range) or MR_ENOMEM.
 */
int mri_journal_mem_init(struct mri_journal_mem *m, size_t max_entries,
			 uint64_t window_ms, uint64_t writer,
			 const char *topic);

/** @brief Free what the memory holds (a zeroed one too). */
void mri_journal_mem_fini(struct mri_journal_mem *m);

/**
 * @brief Read record \p p of \p len bytes.
 * @returns true with *r filled when it is one of ours (kind and version)
 *          and its entries fit in it; false, *r undefined, if not.
 */
bool mri_journal_rec_parse(const uint8_t *p, size_t len,
			   struct mri_journal_rec *r);

/** @brief Entry \p i (below r->n) of a version 1 record \p r. */
struct mri_journal_entry mri_journal_rec_entry(const struct mri_journal_rec *r,
					       uint32_t i);

/** @brief Run \p i (below r->n) of a version 2 record \p r. */
struct mri_journal_run mri_journal_rec_run(const struct mri_journal_rec *r,
					   uint32_t i);

/**
 * @brief Apply record \p p at time \p now: skipped when it does not parse,
 *        is older than the window, or (when \p skip_self) carries this
 *        memory's writer.
 * @returns whether it was applied.
 */
bool mri_journal_mem_apply(struct mri_journal_mem *m, const uint8_t *p,
			   size_t len, int64_t now, bool skip_self);

/** @brief Forget what is older than the window at \p now (runs at most
 *         once a second). */
void mri_journal_mem_expire(struct mri_journal_mem *m, int64_t now);

/** @brief mri_journal_lookup's answer, from the memory. */
void mri_journal_mem_lookup(const struct mri_journal_mem *m, size_t n,
			    uint64_t part, const int64_t *offsets,
			    uint32_t *attempts, const uint64_t *id,
			    bool *acked);

/**
 * @brief A version 1 record of \p kind with entries \p e, or (for
 *        mri_journal_rec_runs) a version 2 dispatch record of runs \p r,
 *        written at \p now by \p writer (an instance's id).
 * @returns the record (free it) of *len bytes, or NULL: out of memory, or
 *          \p n over UINT32_MAX.
 */
uint8_t *mri_journal_rec_entries(uint64_t writer, enum mri_journal_kind kind,
				 const struct mri_journal_entry *e, size_t n,
				 int64_t now, size_t *len);
uint8_t *mri_journal_rec_runs(uint64_t writer, const struct mri_journal_run *r,
			      size_t n, int64_t now, size_t *len);

#endif
