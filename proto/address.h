/*
 * Actor addresses: `topic/key`. The topic names the actor type, the key the
 * actor; the key is everything after the first '/' (it may hold more
 * slashes, or be empty). An address without '/' is keyless.
 *
 * Pure parsing, with no Kafka library: the client library, the command line
 * and the bridge (bridge/address.h, which adds the partitioning) share it.
 *
 * Thread safety: pure functions, thread-safe.
 */
#ifndef MRI_PROTO_ADDRESS_H
#define MRI_PROTO_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* What a valid topic name is, as a sentence to follow "a topic is " or
 * "invalid topic 'x': " (mri_topic_valid, proto/frame.h). */
#define MRI_TOPIC_RULE \
	"1 to 249 characters of a-z A-Z 0-9 . _ -, not '.' or '..'"

struct mri_address {
	const char *topic; /* borrowed from the parsed string */
	size_t      topic_len;
	const char *key; /* NULL when keyless */
	size_t      key_len;
};

/**
 * @brief Split \p addr (a NUL-terminated string, borrowed) into topic and
 *        key; \p out's pointers borrow \p addr. \p out is filled even when
 *        the topic is refused, so that a caller can name it.
 * @returns MR_OK, or MR_EINVAL if the topic is not a valid Kafka topic name
 *          (MRI_TOPIC_RULE says what is).
 */
int mri_address_parse(const char *addr, struct mri_address *out);

#endif
