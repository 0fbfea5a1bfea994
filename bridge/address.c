#include "address.h"

#include <librdkafka/rdkafka.h>

int32_t
mri_partition_for_key(const void *key, size_t key_len, int32_t partitions)
{
	// librdkafka's murmur2 partitioner ignores the topic and the
	// availability check; NULL is what its documentation allows.
	return rd_kafka_msg_partitioner_murmur2(NULL, key, key_len, partitions,
						NULL, NULL);
}
