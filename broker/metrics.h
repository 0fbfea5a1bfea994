/*
 * mailroomd's metrics (GET /metrics, docs/HTTP.md, "Metrics"): what the
 * status snapshot does not keep (publishes by topic and result, the
 * publish latency histogram), and the renderer of the Prometheus text
 * format from it, the status snapshot, the consume registry's
 * subscriptions and partitions, and the lag monitor's snapshot.
 *
 * Thread safety: mri_metrics_publish and mri_metrics_publish_latency from
 * any thread (a short lock for a topic's counters, atomics for the
 * histogram); mri_server_metrics from any thread while the server lives.
 */
#ifndef MRI_METRICS_H
#define MRI_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

/* Topics counted by name; the rest are counted as topic="_other", so that
 * the series stay bounded. */
#define MRI_METRICS_TOPICS_MAX 512
/* Rows of a per-partition family rendered, at most. */
#define MRI_METRICS_ROWS_MAX 10000

/* A published message's result. */
enum mri_pub_outcome {
	MRI_PUB_OK = 0,
	MRI_PUB_DUPLICATE, /* acked before: the dedupe window's */
	MRI_PUB_REFUSED,   /* MR_EBUSY: backpressure refused it */
	MRI_PUB_ERROR,     /* any other failure */
	MRI_PUB_RESULTS
};

struct mri_metrics;
struct mri_server;

/** @returns MR_OK or MR_ENOMEM. */
int  mri_metrics_new(struct mri_metrics **out);
void mri_metrics_free(struct mri_metrics *m);

/** @brief Count \p n[r] messages of \p topic (\p len bytes) by result. */
void mri_metrics_publish(struct mri_metrics *m, const char *topic,
			 size_t len, const uint64_t n[MRI_PUB_RESULTS]);

/** @brief \p n messages took \p us from their request's arrival to its
 *         answer (every message's result, Kafka's acks). */
void mri_metrics_publish_latency(struct mri_metrics *m, uint64_t us,
				 uint64_t n);

/**
 * @brief /metrics of \p s, in Prometheus' text format (version 0.0.4),
 *        into \p out.
 * @returns MR_OK or MR_ENOMEM.
 */
int mri_server_metrics(struct mri_server *s, struct mri_wbuf *out);

#endif
