/*
 * The admin operation on consumer lag (docs/PROTOCOL.md, the ADMIN table):
 * lag.list, answered from the lag monitor's snapshot (consumers/lag.h),
 * after a refresh when asked to or when the group or topic is new to it.
 *
 * Thread safety: on an admin worker thread; the monitor is thread-safe,
 * so calls run concurrently.
 */
#ifndef MRI_ADMIN_LAG_H
#define MRI_ADMIN_LAG_H

#include <jansson.h>

struct mri_lag;
struct mri_bp;

/* How long lag.list waits for a refresh by default, and at most
 * (timeout_ms). */
#define MRI_ADMIN_LAG_TIMEOUT 10000
#define MRI_ADMIN_LAG_TIMEOUT_MAX 60000

/**
 * @brief lag.list (\p op), request \p req (borrowed), answered from \p lag
 *        (borrowed; NULL: MR_ENOTSUP), each partition with its bound and
 *        throttle state from \p bp (borrowed; NULL: none).
 * @returns a new reply, as mri_admin_done_cb's.
 */
json_t *mri_admin_lag(struct mri_lag *lag, struct mri_bp *bp, const char *op,
		      json_t *req);

#endif
