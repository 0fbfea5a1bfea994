/*
 * Mirrored actors' insides, shared by their files (not API):
 *
 *   mirror.c        the key table, the wrapper behaviour, the dispatch
 *   mirror_call.c   typed records: casts and calls by address, replies
 *   mirror_run.c    the type: made, run (the watch, hand-offs), freed
 *   mirror_state.c  durable state: snapshots saved and restored
 */
#ifndef MRI_MIRROR_INTERNAL_H
#define MRI_MIRROR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mailroom/mirror.h"

#define MIRROR__IDLE_MS   120000u
#define MIRROR__INTENSITY 100
#define MIRROR__PERIOD_MS 5000u
#define MIRROR__IDLE      0xffff0002u /* the idle timer's message type */
#define MIRROR__HANDOFF   0xffff0003u /* its partition left: exit */
#define MIRROR__ASSIGN_MS 1000 /* how often the assignment is asked */
#define MIRROR__REPORT_MS 1000 /* how often restarts may be reported */
#define MIRROR__TRIES     3 /* activations tried for one delivery */
#define MIRROR__DRAIN_MS  10000 /* passivating at the end of a run */
#define MIRROR__CORR_MAX  128 /* a remote call's correlation id */
#define MIRROR__TYPE_RESERVED 0xffff0000u /* types from here: ours */
#define MIRROR__RESTORE_TRIES  3 /* a partition's restore, then a nack */
#define MIRROR__RESTORE_WAIT_S 1
#define MIRROR__AGAIN_WAIT_MS  5000 /* a copy waits for its first's save */

struct mri_mirror_ent {
	struct mri_mirror_ent *next;
	uint64_t               hash;
	mr_pid                 pid;
	bool                   leaving; /* exiting: wait for it to be gone */
	unsigned               pending; /* deliveries cast, not handled yet */
	int32_t                partition; /* of its last delivery */
	int32_t                handled_part; /* its last handled: -1 none */
	int64_t                handled_off;
	size_t                 key_len;
	unsigned char          key[];
};

struct mr_mirror {
	mr_system               *sys;
	mr_client               *c;
	char                    *topic;
	char                    *group;
	/* Its crashes count as restarts of this supervisor: "mirror:" and
	 * the topic (mailroom/supervisor.h's mr_system_restarts). */
	char                     sup_name[MR_SUP_NAME_MAX + 1];
	uint64_t                 reported; /* what was last reported, + 1 */
	char                    *dlq; /* the subscription's dlq_topic, copied */
	char                    *state_topic; /* copied; NULL: not durable */
	struct mri_mirror_state *state;       /* made by the first run */
	const mr_behaviour      *user;
	mr_behaviour             wrap;
	mr_mirror_opts           o;
	mr_subscribe_opts        sub;

	pthread_mutex_t         lock;
	pthread_cond_t          cv;  /* an actor left the table */
	struct mri_mirror_ent **tab; /* key -> active actor */
	size_t                  cap; /* a power of two */
	size_t                  n;
	mr_mirror_stats         st;
	uint64_t               *crash_ms; /* the last intensity + 1 crashes */
	size_t                  crash_next;
	bool                    escalated;
	int                     fatal; /* stops the run with this error */
	unsigned                replies; /* remote calls not answered yet */
	char                    why[256];

	volatile int        stop; /* mr_consume_run_async's */
	mr_consumer        *s;    /* during a run, for the watch */
	uint64_t            session; /* s's, as the watch last saw it */
	const volatile int *user_stop;
	atomic_int          run_done;
};

/** @returns the hash of \p len bytes of \p key, for the key table and
 *           the table of snapshots (mirror_state.c). */
uint64_t mri_mirror_hash(const void *key, size_t len);

/** @returns the key table's slot of \p key (hash \p h): the entry of its
 *           active actor, or where it would go. Under m->lock. */
struct mri_mirror_ent **mri_mirror_slot(mr_mirror *m, uint64_t h,
					const void *key, size_t len);

/** @returns header \p name's value of \p d as a string in \p out (\p n
 *           bytes, cut to fit), or NULL when \p d has none. */
const char *mri_mirror_header(const mr_delivery *d, const char *name,
			      char *out, size_t n);

/** @brief Run the type's callback for delivery \p d, on actor \p self
 *         whose type's state is \p ustate: a typed record (an mr_type
 *         header, a send by address) is a cast of that type, or a call
 *         with an external from when it has mr_reply_to and
 *         mr_correlation_id, its reply published there; any other record
 *         is an MR_MSG_DELIVERY cast.
 *  @returns the callback's result; MR_EREJECT for a typed record that is
 *           not one; MR_ENOMEM when a call's reply cannot be arranged. */
int mri_mirror_handle(mr_actor *self, mr_mirror *m, void *ustate,
		      const mr_delivery *d);

/** @brief Make m->wrap, the wrapper of behaviour \p b. */
void mri_mirror_wrap(mr_mirror *m, const mr_behaviour *b);

/** @brief mr_consume_run_async's handler, on the fetching thread: cast the
 *         delivery to its key's actor (\p arg is the type). */
void mri_mirror_dispatch(void *arg, const mr_delivery *d, mr_pending *p);

#endif
