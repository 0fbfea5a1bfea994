/*
 * Actor addresses and partitioning. An address is `topic/key`: the topic
 * names the actor type, the key the actor; the key is everything after the
 * first '/' (it may hold more slashes, or be empty). An address without '/'
 * is keyless.
 *
 * A key's partition is the one Kafka's Java default partitioner picks,
 * toPositive(murmur2(key)) % partitions, computed by librdkafka's exported
 * murmur2 partitioner so that there is one copy of the hash.
 *
 * Thread safety: pure functions, thread-safe.
 */
#ifndef MRI_ADDRESS_H
#define MRI_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mri_address {
	const char *topic; /* borrowed from the parsed string */
	size_t      topic_len;
	const char *key; /* NULL when keyless */
	size_t      key_len;
};

/**
 * @brief Split \p addr into topic and key.
 * @returns MR_OK, or MR_EINVAL if the topic is not a valid Kafka topic name.
 */
int mri_address_parse(const char *addr, struct mri_address *out);

/** @returns the partition of \p key among \p partitions (> 0). */
int32_t mri_partition_for_key(const void *key, size_t key_len,
			      int32_t partitions);

#endif
