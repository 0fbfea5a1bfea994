/*
 * The producer: one idempotent librdkafka producer (acks=all,
 * partitioner=murmur2_random) that reports every record it was given
 * exactly once, as confirmed (partition, offset) or failed (an mr_err and a
 * sentence).
 *
 * librdkafka 2.0.2 can raise a spurious fatal error, typically after a
 * timeout. When any fatal error is raised the producer purges the handle,
 * collects every record that was not confirmed, destroys the handle,
 * creates a new one from the same configuration and sends them again in
 * the order they were first given to mri_producer_send (so what one caller
 * sent in order stays in order); a record is failed back only after
 * MRI_PRODUCER_RESENDS such
 * recreations. Nothing unconfirmed is reported confirmed. A resent record
 * may have been written by the old handle too (at-least-once).
 *
 * Thread safety: mri_producer_send may be called from any thread. Reports
 * are made on the producer's own thread, in batches, never from within
 * mri_producer_send.
 */
#ifndef MRI_PRODUCER_H
#define MRI_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define MRI_PRODUCER_RESENDS 3

/* One record to produce. The caller owns it and every byte it points to
 * until its report; headers pass to the producer when send succeeds. */
struct mri_pmsg {
	const char         *topic;
	const void         *key;
	size_t              key_len;
	bool                has_key;
	const void         *payload;
	size_t              payload_len;
	rd_kafka_headers_t *hdrs;
	void               *opaque;
	bool                has_partition; /* else by key (partitioner) */
	int32_t             partition;
	int64_t             timestamp_ms; /* CreateTime; 0: the produce's */
	/* producer-owned */
	int                 resends;
	uint64_t            order; /* when it was sent: resends keep it */
	struct mri_pmsg    *next;
};

struct mri_presult {
	struct mri_pmsg *msg;
	int              err; /* mr_err */
	int32_t          partition;
	int64_t          offset;
	const char      *why; /* static or librdkafka's; valid during the cb */
};

/* Called on the producer's thread with a batch of reports. */
typedef void (*mri_producer_report_cb)(void *arg, struct mri_presult *r,
				       size_t n);

struct mri_producer;

/**
 * @brief Create a producer from \p conf (takes ownership of it on success;
 *        on failure the caller still owns it). mailroom's settings
 *        (idempotence, partitioner, events) are applied on top of it.
 * @returns MR_OK, or MR_ECONFIG with a sentence in errstr.
 */
int mri_producer_new(struct mri_producer **out, rd_kafka_conf_t *conf,
		     mri_producer_report_cb cb, void *arg, char *errstr,
		     size_t errstr_size);

/**
 * @brief Queue \p n records. rcs[i] is MR_OK when record i will be
 *        reported, or the error that refused it (no report will come, and
 *        its headers are still the caller's).
 * @returns the number accepted.
 */
size_t mri_producer_send(struct mri_producer *p, struct mri_pmsg **msgs,
			 size_t n, int *rcs, const char **whys);

/** @brief Wait up to \p timeout_ms until every record was reported.
 *  @returns true if none is left. */
bool mri_producer_flush(struct mri_producer *p, int timeout_ms);

/** @brief Fail every record not yet confirmed (reported MR_ESHUTDOWN). */
void mri_producer_purge(struct mri_producer *p);

/** @brief Flush nothing, stop the thread, destroy; NULL is a no-op. Every
 *         record still queued is reported failed first. */
void mri_producer_free(struct mri_producer *p);

/** @brief The current librdkafka handle, for metadata and admin calls
 *         (borrowed; valid until the next recreation: use under
 *         mri_producer_lock_handle). */
rd_kafka_t *mri_producer_lock_handle(struct mri_producer *p);
void        mri_producer_unlock_handle(struct mri_producer *p);

/** @brief Raise a fatal error in the handle (librdkafka's test hook). */
int mri_producer_inject_fatal(struct mri_producer *p);

struct mri_producer_stats {
	uint64_t confirmed;
	uint64_t failed;
	uint64_t recreations;
	uint64_t resent;
	int      outq;
	// Kafka unreachable: every broker down (librdkafka's
	// ALL_BROKERS_DOWN) for down_ms, and librdkafka's sentence.
	bool     down;
	uint64_t down_ms;
	char     down_why[256];
};
void mri_producer_stats(struct mri_producer *p, struct mri_producer_stats *s);


#endif
