/*
 * A subscription of this mailroomd to a consumer group: one librdkafka
 * consumer (range assignment, offsets stored and committed explicitly)
 * feeding the delivery engine (engine.h), and the sessions of the services
 * that fetch from it.
 *
 * The group's own thread polls Kafka and is the only one that calls
 * librdkafka's consumer; it also serves the rebalance callbacks, expires
 * ack deadlines, answers fetches that waited, pauses the partitions whose
 * buffer is full and resumes them when drained, and commits the contiguous
 * acked prefix of each partition about twice a second (synchronously on a
 * revoke and on close). Acks beyond the prefix travel with the commit, in
 * its metadata, so that a restart or a rebalance does not deliver them
 * again; when they do not fit, the ones that do not are delivered again
 * (consumption never stops for it), and the group's journal (journal.h)
 * still knows their ids.
 *
 * With the journal on, a fetch is answered only once the attempt of each
 * record it hands out is in the journal, and an ack only once its ids are;
 * a record arriving whose id the journal knows as acked counts as acked.
 *
 * Thread safety: every function may be called from any thread, except
 * mri_group_free, which must not run concurrently with the others.
 */
#ifndef MRI_GROUP_H
#define MRI_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumers/engine.h"
#include "proto/consume.h"

struct mri_group;

struct mri_group_conf {
	const char        *group;
	const char *const *topics;
	size_t             ntopics;
	enum mri_order     order;
	uint32_t           credit;          /* in flight per session */
	uint64_t           ack_deadline_ms; /* default deadline */
	uint32_t           max_buffered;    /* per partition: pause above */
	uint32_t           revoke_wait_ms;  /* acks in flight, on a revoke */
	uint32_t           session_timeout_ms; /* Kafka's group session */
	bool               journal;         /* journal.h: dedupe, attempts */
	uint64_t           dedupe_window_ms;
	size_t             dedupe_max_entries;
	bool               create_journal; /* false: Kafka auto-creates it */
};

/**
 * @brief Called once per mri_group_fetch that returned MR_OK, with a whole
 *        frame (FETCH_REPLY, or ERROR) in \p frame (borrowed: copy it), on
 *        the caller's thread or the group's.
 */
typedef void (*mri_group_reply_cb)(void *arg, struct mri_wbuf *frame);

/**
 * @brief Create the consumer and join the group.
 * @param conf takes ownership on success; on failure the caller still
 *        owns it. bootstrap.servers and any pass-through settings are set.
 * @returns MR_OK, or an mr_err with a sentence in errstr.
 */
int mri_group_new(struct mri_group **out, rd_kafka_conf_t *conf,
		  const struct mri_group_conf *c, char *errstr,
		  size_t errstr_size);

/**
 * @brief Answer every waiting fetch (empty), commit what is committable
 *        synchronously, leave the group and free. NULL is a no-op.
 */
void mri_group_free(struct mri_group *g);

/** @brief Answer every waiting fetch now, and any later one at once. */
void mri_group_drain(struct mri_group *g);

/** @brief Open a session. @returns MR_OK or MR_ENOMEM. */
int mri_group_session_open(struct mri_group *g, uint32_t *sid);

/** @brief Close a session: what it held is handed out again, a fetch it
 *         has waiting is answered empty. */
void mri_group_session_close(struct mri_group *g, uint32_t sid);

/** @returns the number of open sessions. */
size_t mri_group_sessions(struct mri_group *g);

/**
 * @brief Hand out up to f->max_msgs messages (a soft f->max_bytes and
 *        \p max_frame: at least one message is sent), waiting up to
 *        f->max_wait_ms for the first.
 * @returns MR_OK (cb will be called once), or MR_ENOMEM (it will not).
 */
int mri_group_fetch(struct mri_group *g, uint32_t sid,
		    const struct mri_fetch *f, size_t max_frame,
		    mri_group_reply_cb cb, void *arg);

/**
 * @brief Ack, nack or extend the handles of \p s; \p cb gets a whole
 *        SETTLE_REPLY frame (handles unknown, stale or of a partition no
 *        longer ours are listed with MR_ENOENT) once the acks are in the
 *        group's journal.
 * @returns MR_OK (cb will be called once), or MR_ENOMEM (it will not).
 */
int mri_group_settle(struct mri_group *g, const struct mri_settle *s,
		     mri_group_reply_cb cb, void *arg);

#endif
