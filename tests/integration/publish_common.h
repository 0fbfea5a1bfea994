/*
 * What publish_api_test.c and publish_frames_test.c share: reading a topic
 * back from Kafka, and mailroomd's STATUS as JSON.
 *
 * Thread safety: the Check assertions of a case's thread.
 */
#ifndef MRT_PUBLISH_COMMON_H
#define MRT_PUBLISH_COMMON_H

#include <stddef.h>

#include <jansson.h>

#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define PARTITIONS 6
#define READ_MS 60000

/** @brief Read at least \p want records of \p topic back from Kafka into
 *         \p rs (READ_MS at most), or fail the case. */
void read_topic(const struct mrt_daemon *d, const char *topic, size_t want,
		struct mrt_records *rs);

/** @returns mailroomd's STATUS (new: json_decref it), or fails the case. */
json_t *status_json(mr_client *c);

/** @returns the integer at o.a.b, 0 when there is none. */
json_int_t json_path_int(json_t *o, const char *a, const char *b);

#endif
