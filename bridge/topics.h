/*
 * The producer's topic handles (bridge/producer.c), one per topic name.
 *
 * librdkafka 2.0.2 asks Kafka for a topic's partitions when the
 * application makes its handle (rd_kafka_topic_new), but not when a
 * record names a topic it has not seen (rd_kafka_producev with
 * RD_KAFKA_V_TOPIC): then its main thread notices the unknown topic on its
 * next one-second scan, and the first publish to each topic waited ~0.9 s.
 * A handle kept here also spares librdkafka its look-up by name for every
 * record. Making one waits until the topic's partitions exist on their
 * leaders (docs/ARCHITECTURE.md, "Records delivered without an offset").
 */
#ifndef MAILROOM_BRIDGE_TOPICS_H
#define MAILROOM_BRIDGE_TOPICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct mri_topics {
	pthread_mutex_t    lock;
	struct topics_slot *slots; /* open addressing, cap slots */
	size_t             cap, n, max; /* max <= cap / 2 */
};

/** @brief An empty cache of up to \p max handles (each a name and a
 *         librdkafka topic). @returns MR_OK or MR_ENOMEM. */
int mri_topics_init(struct mri_topics *t, size_t max);

/**
 * @brief The handle of \p topic on \p rk, made (and its partitions asked
 *        for, and waited for: up to 2 s) the first time. Any thread.
 * @returns a handle owned by the cache, valid until mri_topics_clear; NULL
 *          when the cache is full or the handle cannot be made (the
 *          record then names its topic, and librdkafka was asked anyway).
 */
rd_kafka_topic_t *mri_topics_get(struct mri_topics *t, rd_kafka_t *rk,
				 const char *topic);

/**
 * @brief Wait, up to 2 s, until every partition of \p rkt answers a
 *        ListOffsets on \p rk. Kafka makes a new topic's partitions one by
 *        one after it says the topic exists, and a producer's first
 *        request to a partition not made yet fails while its next one,
 *        already in flight, is taken, which librdkafka 2.0.2 then reports
 *        as delivering the first (bridge/producer.c, producer__on_dr). A
 *        topic that does not exist, or a Kafka that does not answer, is
 *        not waited for. Blocks; any thread.
 */
void mri_topics_wait_ready(rd_kafka_t *rk, rd_kafka_topic_t *rkt);

/** @brief Destroy every handle (before their rd_kafka_t): no thread may
 *         hold one. */
void mri_topics_clear(struct mri_topics *t);

/** @brief Clear and free the cache. */
void mri_topics_fini(struct mri_topics *t);

#endif
