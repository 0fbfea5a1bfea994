/*
 * Restarts per supervisor over the processes that run actors: each
 * process reports its totals (ADMIN actors.report, sent by
 * mr_actors_report: docs/PROTOCOL.md), and mailroomd adds the increase of
 * each (process, supervisor) since its last report to the supervisor
 * name's total, which therefore never goes down: a process that ends
 * leaves its restarts counted, one restarted starts from 0 under a new
 * instance id. actors.list answers the totals and the processes; /metrics
 * renders mailroom_actor_restarts_total from them.
 *
 * Bounds: MRI_ACTORS_SUPS_MAX names (the rest count as "_other");
 * MRI_ACTORS_PROCS_MAX processes remembered, one silent for
 * MRI_ACTORS_FORGET_MS forgotten when room is needed (its restarts stay
 * counted); MR_SUP_NAMES_MAX + 1 supervisors per report.
 *
 * Thread safety: every function but new and free from any thread (one
 * mutex).
 */
#ifndef MRI_ACTORS_H
#define MRI_ACTORS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MRI_ACTORS_SUPS_MAX 256
#define MRI_ACTORS_PROCS_MAX 1024
#define MRI_ACTORS_FORGET_MS (10 * 60 * 1000)
/* A report's longest names, in bytes. */
#define MRI_ACTORS_NAME_MAX 63
#define MRI_ACTORS_PROCESS_MAX 127
#define MRI_ACTORS_INSTANCE_MAX 64
/* A report's supervisors, at most. */
#define MRI_ACTORS_PER_REPORT 65

struct mri_actors;

/** @returns MR_OK or MR_ENOMEM. */
int  mri_actors_new(struct mri_actors **out);
void mri_actors_free(struct mri_actors *a);

/**
 * @brief ADMIN actors.report {"process", "instance", "supervisors":
 *        [{"name", "restarts"}...]} or actors.list, at wall time \p now_ms.
 * @returns the reply (new), a failure (mri_admin_fail's) for a bad
 *          request, or NULL for another op.
 */
json_t *mri_actors_admin(struct mri_actors *a, const char *op, json_t *req,
			 int64_t now_ms);

/** @brief Call \p fn for each supervisor name with its total (strings
 *         borrowed for the call; the lock held: \p fn must not call
 *         back). @returns how many names. */
size_t mri_actors_each(struct mri_actors *a,
		       void (*fn)(void *arg, const char *name,
				  uint64_t restarts),
		       void *arg);

#endif
