/*
 * A consumer group's journal: what mailroomd must remember across a crash,
 * a restart or a rebalance to another mailroomd, kept in Kafka itself (a
 * topic per group, `__mailroom.journal.<group>`, one partition, retention
 * of the dedupe window), read back into memory.
 *
 *  - dispatch records: the attempt number of every record a fetch hands
 *    out, as runs of consecutive offsets of one partition at one attempt,
 *    so that a record whose consumer (or mailroomd) died holding it counts
 *    that attempt. Written behind: the fetch is answered at once, and the
 *    record goes with the next write (a settle's, as a rule) in one
 *    request, or by itself within about 20 ms; a crash of mailroomd in
 *    between counts those attempts one low. And before a reject
 *    is answered, the record's attempt with the high bit set
 *    (MRI_ENGINE_REJECTED_BIT), so that it is quarantined, not retried,
 *    after a restart (the larger value wins, as for any attempt);
 *  - ack records: the message ids acked, so that an id acked once is not
 *    delivered to the group again (the group's dedupe store), even when
 *    its offset was never committed.
 *
 * Acks are 64-bit hashes of the id, bounded in number and age in memory
 * (oldest first out, consumers/idmap.h); attempts are runs of offsets per
 * partition (consumers/runs.h: a partition handed out in order is one
 * run), bounded in number and age. The topic's retention bounds both on
 * disk. Every mailroomd of the group
 * follows the journal, and catches up to its end before it hands out a
 * partition it was just assigned.
 *
 * A record is a 16-byte header, little-endian: kind, version, 2 reserved
 * bytes, the time written (ms since the epoch, 8) and the number of entries
 * (4); then its entries; then the writer's id (8), which readers that know
 * no writer ignore. Version 1 entries are 12 bytes: hash (8) and attempt
 * (4; 0 in acks); acks are written so. Version 2 is for dispatches: runs
 * of 24 bytes, the partition's key (8, mri_journal_part_key), the first
 * offset (8), the count (4) and the attempt (4). Dispatches of version 1
 * (by position hash, as earlier mailroomds wrote them) are still read,
 * into a map of their own made when the first comes; a mailroomd that
 * knows only version 1 skips version 2 records (it would count the
 * attempts of a mixed group low until every member is upgraded).
 *
 * The writer's id is drawn at random for each journal instance: an
 * instance applies its records as it writes them and skips them when it
 * reads them back, and applies every other (another mailroomd's, its own
 * from before a restart, or one without a writer).
 *
 * The Kafka clients are its hub's (mri_journal_hub_new): one producer and
 * one reader, shared by the journals of every group of a mailroomd, or a
 * journal's own.
 *
 * Thread safety: every function may be called from any thread. Write
 * callbacks run on the hub's report thread, except those of writes that
 * mri_journal_free fails (what its bounded flush left): on the thread
 * calling it, before it returns.
 */
#ifndef MRI_JOURNAL_H
#define MRI_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct mri_journal;
struct mri_journal_hub;

struct mri_journal_conf {
	const char             *group;
	uint64_t                window_ms;   /* how long entries are kept */
	size_t                  max_entries; /* of each kind, in memory */
	bool                    create;      /* create the topic */
	struct mri_journal_hub *hub; /* shared clients; NULL: its own */
};

/** @brief An entry of a version 1 record: a hash and, for dispatches,
 *         the attempt. */
struct mri_journal_entry {
	uint64_t hash;
	uint32_t attempt;
};

/** @brief A run of a dispatch record: offsets [first, first + count) of
 *         partition \p part (mri_journal_part_key), at \p attempt. */
struct mri_journal_run {
	uint64_t part;
	int64_t  first;
	uint32_t count;
	uint32_t attempt;
};

enum mri_journal_kind {
	MRI_JOURNAL_DISPATCH = 'D',
	MRI_JOURNAL_ACK      = 'A',
};

/** @brief Called once per write, on its hub's report thread: \p err is MR_OK
 *         when Kafka has the record. */
typedef void (*mri_journal_cb)(void *arg, int err);

/**
 * @brief The Kafka clients that journals share: one producer (its reports
 *        served on a thread of its own, where write callbacks run) and
 *        one reader (on a second thread) for every journal made with it,
 *        whatever their groups, from the template \p conf (borrowed).
 *        A group's journal writes then share the producer's requests with
 *        the other groups', and a group costs no clients or threads of
 *        its own for its journal.
 * @returns MR_OK, or an mr_err with a sentence in errstr.
 */
int mri_journal_hub_new(struct mri_journal_hub **out,
			const rd_kafka_conf_t *conf, char *errstr,
			size_t errstr_size);

/** @brief Stop and free, after every journal made with it was freed.
 *         NULL is a no-op. */
void mri_journal_hub_free(struct mri_journal_hub *h);

/**
 * @brief Make a journal on c->hub, or on a hub of its own (from the
 *        template \p conf, borrowed) when that is NULL; create its topic
 *        if it is missing, and read it to its end (bounded by
 *        \p timeout_ms).
 * @returns MR_OK, or an mr_err with a sentence in errstr.
 */
int mri_journal_new(struct mri_journal **out, const rd_kafka_conf_t *conf,
		    const struct mri_journal_conf *c, int timeout_ms,
		    char *errstr, size_t errstr_size);

/** @brief Flush (bounded: 5 s), stop and free; the writes not flushed
 *         are failed (MR_EUNAVAIL) on this thread, and no callback of
 *         its runs after it returns. NULL is a no-op. */
void mri_journal_free(struct mri_journal *j);

/** @brief The acked ids it keeps in memory at most (its conf's
 *         max_entries). */
size_t mri_journal_max_entries(const struct mri_journal *j);

/** @brief Read up to the journal's current end (bounded by timeout_ms).
 *  @returns MR_OK or MR_ETIMEDOUT. */
int mri_journal_catch_up(struct mri_journal *j, int timeout_ms);

/**
 * @brief Write a version 1 record of \p n entries of \p kind (acks; and
 *        dispatches by position, as earlier mailroomds wrote them); they
 *        count in memory at once. \p cb is called when Kafka confirmed or
 *        refused it.
 * @returns MR_OK (cb will be called), or an error (it will not).
 */
int mri_journal_write(struct mri_journal *j, enum mri_journal_kind kind,
		      const struct mri_journal_entry *e, size_t n,
		      mri_journal_cb cb, void *arg);

/**
 * @brief As mri_journal_write, but the record may wait up to \p linger_ms
 *        for others to share its request (group commit): it goes at once
 *        when nothing was sent in the last \p linger_ms, else with the
 *        next write that goes, or at the first mri_journal_tick after its
 *        \p linger_ms. 0: at once, as mri_journal_write.
 * @returns as mri_journal_write.
 */
int mri_journal_write_linger(struct mri_journal *j,
			     enum mri_journal_kind kind,
			     const struct mri_journal_entry *e, size_t n,
			     uint32_t linger_ms, mri_journal_cb cb, void *arg);

/** @brief Write a dispatch record of \p n runs (version 2), as
 *         mri_journal_write. */
int mri_journal_write_runs(struct mri_journal *j,
			   const struct mri_journal_run *r, size_t n,
			   mri_journal_cb cb, void *arg);

/**
 * @brief Write a dispatch record of \p n runs behind: it counts in memory
 *        at once, and goes to Kafka with the next write (in one request),
 *        or by itself at the first mri_journal_tick JOURNAL__BEHIND_MS
 *        (20 ms) after it when none comes (else within about 100 ms).
 *        Nothing waits for it; a record Kafka refused is logged.
 * @returns MR_OK, MR_EINVAL or MR_ENOMEM (nothing was written).
 */
int mri_journal_write_behind(struct mri_journal *j,
			     const struct mri_journal_run *r, size_t n);

/**
 * @brief Send what is behind (written behind, or lingering) once the
 *        first of it is due at \p mono_ms (mri_mono_ms). Cheap when nothing
 *        is (an atomic read): the group calls it each turn of its thread.
 *        Any thread.
 * @returns whether something was due (and sent).
 */
bool mri_journal_tick(struct mri_journal *j, uint64_t mono_ms);

/**
 * @brief Send what is behind now and wait (at most \p timeout_ms) until
 *        Kafka has taken or refused every record sent: a partition is
 *        going, and its next owner reads the journal to its end before it
 *        hands it out.
 * @returns MR_OK, or MR_ETIMEDOUT with records still on their way.
 */
int mri_journal_flush_behind(struct mri_journal *j, int timeout_ms);

/**
 * @brief Under one lock: attempts[i] = the attempts recorded for offsets[i]
 *        of partition \p part (0 if none) and acked[i] = whether id[i] was
 *        acked, for i < n.
 *
 * \p offsets and \p attempts may be NULL together (only acks wanted), and
 * so may \p id and \p acked. Every array (borrowed) holds \p n elements.
 * Offsets in ascending order cost one search for the batch.
 */
void mri_journal_lookup(struct mri_journal *j, size_t n, uint64_t part,
			const int64_t *offsets, uint32_t *attempts,
			const uint64_t *id, bool *acked);

/** @returns a 64-bit hash of \p len bytes (FNV-1a), chained from \p h
 *           (start with MRI_JOURNAL_HASH_INIT). */
uint64_t mri_journal_hash(uint64_t h, const void *p, size_t len);

#define MRI_JOURNAL_HASH_INIT 14695981039346656037ULL

/** @returns the key that names a partition in dispatch runs. */
uint64_t mri_journal_part_key(const char *topic, int32_t partition);

/** @returns the hash that names a record by its position: the same as
 *           mri_journal_pos_of(mri_journal_part_key(topic, partition),
 *           offset), which saves hashing the topic's name. */
uint64_t mri_journal_pos_hash(const char *topic, int32_t partition,
			      int64_t offset);
uint64_t mri_journal_pos_of(uint64_t part, int64_t offset);

#endif
