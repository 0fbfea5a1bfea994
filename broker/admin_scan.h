/*
 * What dlq.replay and dlq.purge share (broker/admin_scan.c): waiting for
 * the publisher, the state topic (read, created, written), and the scan
 * that picks a call's records. Private to broker/.
 *
 * Thread safety: each call on its own admin worker thread; nothing here is
 * shared between calls.
 */
#ifndef MRI_ADMIN_SCAN_H
#define MRI_ADMIN_SCAN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "admin_dlq.h"
#include "bridge/publish.h"
#include "dlq/inspect.h"
#include "dlq/state.h"
#include "proto/frame.h"

/* A call's bounds. */
#define REPLAY__MAX_DEFAULT 100
#define REPLAY__MAX 100000
#define REPLAY__POSITIONS 10000
#define REPLAY__SKIPPED_SHOWN 100

/* Batches in flight, waited for. */
struct replay_wait {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	size_t          pending;
};

/** @brief Ready \p w for replay__submit. */
void replay__wait_init(struct replay_wait *w);

/** @brief Submit \p b (its done and arg set here); its records' res say
 *         how it went. */
void replay__submit(struct mri_publisher *p, struct replay_wait *w,
		    struct mri_pub_batch *b);

/** @brief Wait for every batch submitted (each is bounded by the
 *         producer's message timeout), then free the wait. */
void replay__wait_all(struct replay_wait *w);

/** @returns MR_OK and whether \p topic exists (*partitions: its count,
 *           when not NULL), from the metadata of every topic; or an
 *           error with a sentence in \p why. */
int replay__exists(const struct mri_admin_dlq_ctx *c, const char *topic,
		   bool *exists, int32_t *partitions, char *why, size_t n);

/* A state record to write. */
struct replay_st {
	char                  key[MRI_DLQ_POS_STRLEN + 1];
	char                  id[MRI_DLQ_POS_STRLEN + 16];
	char                 *value;
	struct mri_dlq_st_rec r;
	int32_t               partition; /* the dead-letter position */
	int64_t               offset;
	bool                  ok; /* Kafka confirmed it */
};

/** @brief Fill \p s (its key and dedupe id from the dead-letter position
 *         \p p, \p o) for state \p r; its value is new (free it). */
void replay__st_set(struct replay_st *s, int32_t p, int64_t o,
		    const struct mri_dlq_st_rec *r);

/** @brief Write \p n state records to \p topic's state topic (created
 *         first if it does not exist) and wait for them; each one's ok
 *         says whether Kafka confirmed it.
 *  @returns how many Kafka confirmed. */
size_t replay__state_write(const struct mri_admin_dlq_ctx *c,
			   const char *topic, struct replay_st *st, size_t n);

/* A record picked. */
struct replay_pick {
	struct mri_dlq_shown *s;    /* owned */
	uint64_t              orig; /* mri_dlq_orig_hash */
	long                  copy_of; /* -1, or the pick it is a copy of */
	enum mri_dlq_st       st;      /* a copy of one with a state */
	const char           *target;  /* borrowed from the request or s */
	char                  target_buf[MRI_TOPIC_MAX + 1];
	/* A replay's intent left by one that stopped (borrowed from the
	 * state), and whether its id was found in the intent's target. */
	const struct mri_dlq_intent *intent;
	bool                         found;
	int32_t                      found_partition;
	int64_t                      found_offset;
};

struct replay_scan {
	/* In. */
	bool                  replay;
	struct mri_dlq_filter f;
	bool                  has_positions;
	int32_t              *pos_p; /* explicit positions */
	int64_t              *pos_o;
	bool                 *pos_found;
	size_t                npos;
	size_t                max;
	const char           *target; /* the request's; NULL: the original */
	uint32_t              loop_limit;
	bool                  force;
	struct mri_dlq_state *state;
	/* Out. */
	struct replay_pick   *picks;
	size_t                npicks, nprimary;
	struct mri_dlq_state *chosen; /* the picks, by original */
	uint64_t              remaining, matched, scanned;
	bool                  fp_seen;
	json_t               *skipped; /* [{partition, offset, why}] */
	uint64_t              nskipped;
};

/** @brief Read the request (max, positions, filters), the state and the
 *         topic into \p s (its in-fields set by the caller first).
 *  @returns NULL, or a new failure reply (nothing written). */
json_t *replay__scan(const struct mri_admin_dlq_ctx *c, json_t *req,
		     const char *topic, struct replay_scan *s, int32_t *parts);

/** @brief Free what \p s holds. */
void replay__scan_free(struct replay_scan *s);

#endif
