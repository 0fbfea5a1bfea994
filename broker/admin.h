/*
 * The JSON admin operations behind ADMIN frames (docs/PROTOCOL.md):
 * topics.create, topics.list, topics.describe, consumers.resume,
 * actors.report and actors.list (broker/actors.h), dlq.list,
 * dlq.show, dlq.replay and dlq.purge (broker/admin_dlq.h), lag.list
 * (broker/admin_lag.h), bounds.list, bounds.set and bounds.clear
 * (broker/admin_bounds.h), and with
 * fault_injection on, fault.broker_down, fault.broker_up, fault.broker_rtt
 * and fault.producer_fatal.
 *
 * The admin part has its own librdkafka handle (a producer-type handle that
 * never produces: metadata, DescribeConfigs, CreateTopics), made from the
 * same bootstrap and pass-through settings as the producer, so that a slow
 * admin call never holds the producer, and a small fixed pool of worker
 * threads with a bounded queue. The dlq.* operations each read with a
 * consumer of their own, made from a copy of the same settings.
 *
 * Thread safety: mri_admin_submit is thread-safe and never blocks on Kafka
 * (call it from nng's callbacks). new, drain and free from one thread.
 */
#ifndef MRI_ADMIN_H
#define MRI_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct mri_embedded;
struct mri_publisher;
struct mri_lag;
struct mri_bp;
struct mri_admin;

/* Defaults of struct mri_admin_conf's workers and queue_max. */
#define MRI_ADMIN_WORKERS 4
#define MRI_ADMIN_QUEUE 64

struct mri_admin_conf {
	const char          *bootstrap;
	/* librdkafka settings passed through (mailroomd's librdkafka.*),
	 * applied after message.max.bytes; borrowed for mri_admin_new. */
	char *const         *rdk_names;
	char *const         *rdk_values;
	size_t               rdk_count;
	/* The producer's message.max.bytes: topics.create's default
	 * max.message.bytes is made from it (0: librdkafka's default). */
	long long            message_max_bytes;
	struct mri_embedded *emb; /* NULL on real Kafka; borrowed */
	bool                 fault_injection;
	int                  timeout_ms; /* per Kafka call */
	int                  workers;    /* 0: MRI_ADMIN_WORKERS */
	int                  queue_max;  /* 0: MRI_ADMIN_QUEUE */
	/* fault.producer_fatal's one use of the producer: raise a fatal
	 * error in its handle (mri_producer_inject_fatal). Called on a
	 * worker thread; NULL: the operation answers MR_ENOTSUP. */
	int (*inject_fatal)(void *arg);
	void *inject_arg;
	/* consumers.resume's call into the consume side: resume the tripped
	 * breakers of group's subscriptions (mri_consume_resume); returns
	 * the subscriptions of the group, *resumed those that were open.
	 * NULL: the operation answers MR_ENOTSUP. */
	size_t (*resume)(void *arg, const char *group, size_t *resumed);
	void *resume_arg;
	/* dlq.replay's and dlq.purge's writes (the replayed records, the
	 * state records) go through mailroomd's publisher, with its dedupe
	 * window; borrowed, must outlive the admin. NULL: they answer
	 * MR_ENOTSUP. */
	struct mri_publisher *publisher;
	/* lag.list's answers (consumers/lag.h); borrowed, must outlive the
	 * admin. NULL: it answers MR_ENOTSUP. */
	struct mri_lag *lag;
	/* bounds.*' gate (broker/backpressure.h); borrowed, as lag. */
	struct mri_bp *bp;
};

/**
 * @brief A request's reply: \p reply is new ({"ok": true, ...} or {"ok":
 *        false, "error": "MR_...", "message": "..."}) and passes to the
 *        callback. Called once per accepted request, on a worker thread
 *        (or, for requests still queued at mri_admin_free, on the thread
 *        calling it).
 */
typedef void (*mri_admin_done_cb)(void *arg, json_t *reply);

/**
 * @brief Make the admin part: its librdkafka handle and its workers.
 * @param conf borrowed for the call (emb and inject_arg must outlive it).
 * @returns MR_OK, or MR_ECONFIG / MR_ENOMEM with a sentence in errstr.
 */
int mri_admin_new(struct mri_admin **out, const struct mri_admin_conf *conf,
		  char *errstr, size_t errstr_size);

/**
 * @brief Queue the operation \p req ({"op": ..., ...}); \p done is called
 *        with its reply.
 * @returns MR_OK (takes ownership of req), or MR_EBUSY when the queue is
 *          full, MR_ESHUTDOWN when draining (the caller still owns req and
 *          \p done is never called).
 */
int mri_admin_submit(struct mri_admin *a, json_t *req, mri_admin_done_cb done,
		     void *arg);

/**
 * @brief Refuse new requests, and wait (on a condition variable) up to
 *        \p timeout_ms for those queued and running to be answered.
 * @returns true when none is left.
 */
bool mri_admin_drain(struct mri_admin *a, int timeout_ms);

/**
 * @brief Drain briefly, answer requests still queued with MR_ESHUTDOWN,
 *        wait for the running ones (each bounded by its Kafka timeout),
 *        stop the workers and destroy the handle; NULL is a no-op.
 */
void mri_admin_free(struct mri_admin *a);

/**
 * @brief Run the operation \p req (borrowed) at once, on this thread.
 * @returns a new reply, as for mri_admin_done_cb.
 */
json_t *mri_admin_run(struct mri_admin *a, json_t *req);

/** @returns the restarts per supervisor that processes report
 *           (actors.report; broker/actors.h), for /metrics. */
struct mri_actors *mri_admin_actors(struct mri_admin *a);

#endif
