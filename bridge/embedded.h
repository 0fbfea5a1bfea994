/*
 * The embedded default: librdkafka's mock cluster, in mailroomd's own
 * process, on a loopback port. In memory and for development only: it keeps
 * about the last 5 MB of each partition and silently drops older records.
 *
 * Thread safety: start and stop from one thread; the fault calls from any.
 */
#ifndef MRI_EMBEDDED_H
#define MRI_EMBEDDED_H

#include <stdbool.h>
#include <stddef.h>

struct mri_embedded;

/** @returns MR_OK or MR_EKAFKA with a sentence in errstr. */
int mri_embedded_start(struct mri_embedded **out, int brokers, char *errstr,
		       size_t errstr_size);
/** @brief Stop and free; NULL is a no-op. */
void mri_embedded_stop(struct mri_embedded *e);
/** @returns the bootstrap servers (borrowed, valid until stop). */
const char *mri_embedded_bootstraps(const struct mri_embedded *e);

/** @returns MR_OK or an mr_err. */
int mri_embedded_topic_create(struct mri_embedded *e, const char *topic,
			      int partitions, int replication);
void mri_embedded_broker_set_down(struct mri_embedded *e, int broker,
				  bool down);
void mri_embedded_broker_set_rtt(struct mri_embedded *e, int broker,
				 int rtt_ms);
/** @brief Fault injection: the next \p n Produce requests (any producer's)
 *         fail with Kafka error \p err (an rd_kafka_resp_err_t). */
void mri_embedded_produce_errors(struct mri_embedded *e, size_t n, int err);
/** @brief Fault injection: broker \p broker answers the next Produce
 *         request with Kafka error \p err after \p rtt_ms (the answers
 *         after it wait behind it). */
void mri_embedded_produce_error_late(struct mri_embedded *e, int broker,
				     int err, int rtt_ms);
/** @brief Fault injection: the next \p n OffsetFetch requests (also
 *         ListConsumerGroupOffsets') fail with Kafka error \p err. */
void mri_embedded_offset_fetch_errors(struct mri_embedded *e, size_t n,
				      int err);

#endif
