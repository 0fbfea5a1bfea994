/*
 * The JSON admin operations behind ADMIN frames (docs/PROTOCOL.md):
 * topics.create, topics.list, topics.describe, and with fault_injection
 * on, fault.broker_down, fault.broker_up, fault.broker_rtt and
 * fault.producer_fatal.
 *
 * Thread safety: mri_admin_run blocks on Kafka; call it from a thread of its
 * own, never from an nng callback. It is thread-safe.
 */
#ifndef MRI_ADMIN_H
#define MRI_ADMIN_H

#include <stdbool.h>

#include <jansson.h>

struct mri_producer;
struct mri_embedded;

struct mri_admin_env {
	struct mri_producer *prod;
	struct mri_embedded *emb; /* NULL on real Kafka */
	bool                 fault_injection;
	int                  timeout_ms;
};

/**
 * @brief Run the operation \p req ({"op": ..., ...}).
 * @returns a new object: {"ok": true, ...} or {"ok": false, "error":
 *          "MR_...", "message": "..."}.
 */
json_t *mri_admin_run(const struct mri_admin_env *env, json_t *req);

#endif
