/*
 * The consumer group's results (consumers/group.h) as the service
 * protocol's frames (proto/consume.h), written in place into the reply's
 * nng_msg: a fetch's batch as a FETCH_REPLY, a settle's result as a
 * SETTLE_REPLY, a failure as an ERROR. Only mailroomd turns a group's
 * result into a frame, and only here.
 *
 * Thread safety: no shared state; any thread.
 */
#ifndef MRI_CONSUME_REPLY_H
#define MRI_CONSUME_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "consumers/group.h"

/** @returns the size of delivery \p d in a FETCH_REPLY: the group's
 *           record_size (mri_group_conf). */
size_t mri_consume_record_size(const struct mri_group_delivery *d);

/**
 * @brief A FETCH_REPLY of batch \p b (borrowed) in a new nng_msg of the
 *        exact size. @returns the message (the caller owns it), or NULL
 *        when out of memory.
 */
nng_msg *mri_consume_fetch_reply(const struct mri_group_batch *b);

/** @brief A SETTLE_REPLY of \p res (borrowed), as above. */
nng_msg *mri_consume_settle_reply(const struct mri_group_settle_result *res);

/** @brief An ERROR frame "NAME: why" of \p code, as above. */
nng_msg *mri_consume_error_reply(int code, const char *why);

#endif
