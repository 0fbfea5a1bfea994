/*
 * The admin operations on a dead-letter topic (docs/PROTOCOL.md, the ADMIN
 * table): dlq.list and dlq.show, their JSON read and written here, the
 * reading done by dlq/inspect.h with a consumer made per request from the
 * admin's conf template.
 *
 * Thread safety: each call is on an admin worker thread; the template is
 * only read (rd_kafka_conf_dup), so calls run concurrently.
 */
#ifndef MRI_ADMIN_DLQ_H
#define MRI_ADMIN_DLQ_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* The longest a dlq.list may read for (timeout_ms). */
#define MRI_ADMIN_DLQ_TIMEOUT_MAX 600000

/**
 * @brief dlq.list or dlq.show (\p op), request \p req (borrowed).
 * @param tmpl the consumer's settings (bootstrap, pass-through), borrowed.
 * @param timeout_ms the default time a request may read for.
 * @returns a new reply, as mri_admin_done_cb's.
 */
json_t *mri_admin_dlq(const rd_kafka_conf_t *tmpl, int timeout_ms,
		      const char *op, json_t *req);

/** @returns a new failure reply {"ok": false, "error", "message"}
 *           (broker/admin.c). */
json_t *mri_admin_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
