/*
 * The admin operations on a dead-letter topic (docs/PROTOCOL.md, the ADMIN
 * table): dlq.list and dlq.show (admin_dlq.c), dlq.replay and dlq.purge
 * (admin_replay.c), their JSON read and written here, the reading done by
 * dlq/inspect.h with a consumer made per request from the admin's conf
 * template, the state (replayed, resolved: dlq/state.h) read from and
 * written to the compacted topic `<dead-letter topic>.state`, created on
 * first use (CreateTopics; on the embedded cluster, directly).
 *
 * Thread safety: each call is on an admin worker thread; the template is
 * only read (rd_kafka_conf_dup), the handle and the publisher are
 * thread-safe, so calls run concurrently. Two replays of one dead-letter
 * topic at once may both publish a record before either writes its state:
 * the publish dedupe window drops the second copy (same id).
 */
#ifndef MRI_ADMIN_DLQ_H
#define MRI_ADMIN_DLQ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "proto/header.h"

/* The longest a dlq.list may read for (timeout_ms). */
#define MRI_ADMIN_DLQ_TIMEOUT_MAX 600000

struct mri_embedded;
struct mri_publisher;
struct mri_dlq_state;

/** @brief What the dlq.* operations use (all borrowed). */
struct mri_admin_dlq_ctx {
	const rd_kafka_conf_t *tmpl;       /* consumers' settings */
	int                    timeout_ms; /* a request's default */
	rd_kafka_t            *rk; /* the admin's handle: metadata,
				      CreateTopics, DeleteRecords */
	struct mri_embedded   *emb; /* NULL on real Kafka */
	struct mri_publisher  *pub; /* NULL: replay and purge answer
				       MR_ENOTSUP */
};

/**
 * @brief dlq.list, dlq.show, dlq.replay or dlq.purge (\p op), request \p
 *        req (borrowed).
 * @returns a new reply, as mri_admin_done_cb's.
 */
json_t *mri_admin_dlq(const struct mri_admin_dlq_ctx *c, const char *op,
		      json_t *req);

/**
 * @brief topics.read (admin_read.c): the records of one partition of any
 *        topic from an offset, as far as the high watermark found when it
 *        opened, within a record count and a byte budget.
 * @returns a new reply, as mri_admin_done_cb's.
 */
json_t *mri_admin_read(const struct mri_admin_dlq_ctx *c, json_t *req);

/** @brief Set \p name of \p o (and name_encoding: "text" or "base64") to
 *         \p len bytes of \p p: text where they are UTF-8 with no control
 *         character but tab, LF and CR, else base64; NULL \p p: null. */
void mri_admin_json_bytes(json_t *o, const char *name, const void *p,
			  size_t len);

/** @returns \p n headers as a new JSON array of {name, value,
 *           value_encoding}, names as text, values as mri_admin_json_bytes
 *           writes them. */
json_t *mri_admin_json_headers(const struct mri_hdr_view *hdrs, size_t n);

/** @brief dlq.replay and dlq.purge (admin_replay.c). */
json_t *mri_admin_dlq_replay(const struct mri_admin_dlq_ctx *c, json_t *req);
json_t *mri_admin_dlq_purge(const struct mri_admin_dlq_ctx *c, json_t *req);

/**
 * @brief Read the state topic of dead-letter topic \p topic to its end
 *        into *out (new: mri_dlq_state_free it); no state topic is an
 *        empty state.
 * @returns MR_OK, or an error with a sentence in \p why.
 */
int mri_admin_dlq_state(const struct mri_admin_dlq_ctx *c, const char *topic,
			int timeout_ms, struct mri_dlq_state **out, char *why,
			size_t why_size);

/* Shared by admin_dlq.c and admin_replay.c. */

/** @returns the request's "topic" if it is a valid topic name, else NULL. */
const char *mri_admin_dlq_topic(json_t *req);

/** @returns an optional integer field in [lo, hi]: true and *v (unchanged
 *           when absent), false when it is there and not such a number. */
bool mri_admin_dlq_int(json_t *req, const char *name, json_int_t lo,
		       json_int_t hi, json_int_t *v);

struct mri_dlq_filter;

/** @returns NULL and the request's filter in \p f (*key: a decoded
 *           key_b64 to free), or a new failure reply. */
json_t *mri_admin_dlq_filter(json_t *req, struct mri_dlq_filter *f,
			     unsigned char **key);

/** @returns true when the request has any filter field. */
bool mri_admin_dlq_has_filter(json_t *req);

/** @returns a new failure reply {"ok": false, "error", "message"}
 *           (broker/admin.c). */
json_t *mri_admin_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
