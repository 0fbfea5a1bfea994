/*
 * The admin operations on backpressure's bounds (docs/PROTOCOL.md, the
 * ADMIN table): bounds.list, bounds.set and bounds.clear, on the gate
 * (broker/backpressure.h); bounds.set checks with the lag monitor
 * (consumers/lag.h) that the topic exists and that each group named
 * consumes it.
 *
 * Thread safety: on an admin worker thread; the gate and the monitor are
 * thread-safe.
 */
#ifndef MRI_ADMIN_BOUNDS_H
#define MRI_ADMIN_BOUNDS_H

#include <jansson.h>

struct mri_lag;
struct mri_bp;

/**
 * @brief bounds.* (\p op), request \p req (borrowed), on \p bp with \p lag
 *        (borrowed; NULL: MR_ENOTSUP).
 * @returns a new reply, as mri_admin_done_cb's.
 */
json_t *mri_admin_bounds(struct mri_lag *lag, struct mri_bp *bp,
			 const char *op, json_t *req);

#endif
