/*
 * Partitioning of actor addresses (`topic/key`, parsed by
 * proto/address.h's mri_address_parse, which this header includes). A
 * key's partition is the one Kafka's Java default partitioner picks,
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

#include "proto/address.h"

/** @returns the partition of \p key among \p partitions (> 0). */
int32_t mri_partition_for_key(const void *key, size_t key_len,
			      int32_t partitions);

#endif
