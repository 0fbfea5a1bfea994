/*
 * mailroom supervisors: OTP's supervisor, as an actor.
 *
 * A supervisor starts its children in the order of its spec (each child's
 * init has returned before the next starts), traps exits, and restarts
 * children that exit, by its strategy:
 *   - one_for_one: only the child that exited;
 *   - one_for_all: all children are stopped (in reverse order) and all
 *     started again (in order);
 *   - rest_for_one: the children started after it are stopped (in reverse
 *     order), then it and they are started again (in order).
 * By restart type: permanent always; transient only after an abnormal exit
 * (not MR_EXIT_NORMAL, not MR_EXIT_SHUTDOWN); temporary never (and it is
 * removed from the supervisor).
 *
 * Restart intensity: when more than intensity restarts would happen within
 * the last period_ms, the supervisor stops all its children (reverse order)
 * and exits with MR_EXIT_SHUTDOWN, as OTP's does: its own supervisor sees
 * the exit and, the supervisor being a permanent child there, restarts it
 * (or, its intensity exceeded too, exits in turn: escalation). A restart
 * whose start fails counts as a restart and is tried again.
 *
 * Shutdown: a child is asked to stop with an exit signal MR_EXIT_SHUTDOWN
 * and killed (MR_EXIT_KILL) if it has not exited shutdown_ms later (0:
 * killed at once; MR_SHUTDOWN_INFINITY: waited for, for supervisors). A
 * supervisor that gets MR_EXIT_SHUTDOWN from its parent (or from
 * mr_send_exit) stops its children in reverse order, one at a time, each
 * with its own timeout, then exits with MR_EXIT_SHUTDOWN. Its parent is the
 * supervisor that started it (mr_supervisor_start_link), or whoever called
 * mr_supervisor_start: the actor, or pid 0 for a non-actor thread, whose
 * mr_send_exit (from = 0) stops it so. Exit signals from anyone else are
 * ignored, as OTP's "unexpected EXIT"; MR_EXIT_KILL kills it at once (its
 * children then get EXIT killed through their links).
 *
 * Thread safety: as mailroom/actor.h; the spec is copied by
 * mr_supervisor_start (its strings and args are borrowed for the
 * supervisor's life).
 */
#ifndef MAILROOM_SUPERVISOR_H
#define MAILROOM_SUPERVISOR_H

#include "mailroom/actor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mr_strategy {
	MR_ONE_FOR_ONE  = 0,
	MR_ONE_FOR_ALL  = 1,
	MR_REST_FOR_ONE = 2,
} mr_strategy;

typedef enum mr_restart {
	MR_PERMANENT = 0,
	MR_TRANSIENT = 1,
	MR_TEMPORARY = 2,
} mr_restart;

#define MR_SHUTDOWN_INFINITY UINT32_MAX

/**
 * @brief How to start a child: spawn it linked to \p sup (opts.link =
 *        mr_self(sup), or mr_supervisor_start_link for a supervisor) and
 *        set *child. Called in the supervisor's thread, inside its
 *        callbacks.
 * @returns MR_OK, or non-zero: the start failed.
 */
typedef int (*mr_child_start_fn)(mr_actor *sup, void *arg, mr_pid *child);

typedef struct mr_child_spec {
	const char       *id;          /* borrowed, for logs and lookups */
	mr_child_start_fn start;       /* NULL: spawn behaviour with arg */
	const mr_behaviour *behaviour; /* when start is NULL */
	void             *arg;         /* start's or init's (borrowed) */
	mr_restart        restart;
	uint32_t          shutdown_ms; /* 0: kill; MR_SHUTDOWN_INFINITY */
} mr_child_spec;

typedef struct mr_sup_spec {
	mr_strategy          strategy;
	uint32_t             intensity; /* MaxR */
	uint32_t             period_ms; /* MaxT; both 0: OTP's 1 in 5000 */
	const mr_child_spec *children;  /* borrowed for the supervisor's life */
	size_t               nchildren;
	/* Its restarts are counted under this name (borrowed; at most
	 * MR_SUP_NAME_MAX bytes are kept; NULL: "supervisor"). */
	const char          *name;
} mr_sup_spec;

/* A supervisor name's bytes kept, and the names a system counts (the
 * rest are counted as "_other"). */
#define MR_SUP_NAME_MAX 63
#define MR_SUP_NAMES_MAX 64

/** @brief Restarts of the supervisors of one name, since the system
 *         started. */
typedef struct mr_restart_count {
	char     supervisor[MR_SUP_NAME_MAX + 1];
	uint64_t restarts;
} mr_restart_count;

/**
 * @brief The restarts counted so far, per supervisor name (a restart is
 *        a child started again after its exit, one for each exit, whatever
 *        the strategy; mirrored actors' crashes count under their type's
 *        name, mailroom/mirror.h), into \p out (up to \p max). Any thread.
 * @returns how many names there are (more than \p max: the rest were
 *          left out).
 */
MR_API size_t mr_system_restarts(mr_system *sys, mr_restart_count *out,
				 size_t max);

/** @brief Count \p n restarts under supervisor name \p name (NULL:
 *         "supervisor"; 0 restarts: listed from now on, with none yet),
 *         for what restarts actors its own way (mirrored actors do; a
 *         supervisor counts its own). Any thread. */
MR_API void mr_system_count_restart(mr_system *sys, const char *name,
				    uint64_t n);

/**
 * @brief Start a supervisor (not linked; its parent is the calling actor,
 *        or 0) and its children, in order.
 * @returns MR_OK and *pid, or the error of the first child that failed to
 *          start (the ones started before it are stopped).
 */
MR_API int mr_supervisor_start(mr_system *sys, const mr_sup_spec *spec,
			       mr_pid *pid);

/** @brief A child start function for a supervisor child: \p arg is its
 *         const mr_sup_spec *. */
MR_API int mr_supervisor_start_link(mr_actor *sup, void *arg, mr_pid *child);

/**
 * @brief The pid of the child \p id of the supervisor \p sup (a call).
 * @returns MR_OK and *child (0 while it is not running), MR_ENOENT (no
 *          such child or supervisor) or mr_call's errors.
 */
MR_API int mr_supervisor_which(mr_system *sys, mr_pid sup, const char *id,
			       mr_pid *child);

#ifdef __cplusplus
}
#endif
#endif
