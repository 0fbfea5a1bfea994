/*
 * The actor test kit (issue #11, item 7): a probe, an actor that records
 * what reaches it so that a test can assert the messages an actor under
 * test emits, its replies and its signals; and seed exploration, a
 * scenario run under many deterministic schedules to check an invariant,
 * the failing seed kept to replay that interleaving.
 *
 * On a deterministic system (mr_system_new with 0 threads) mr_probe_next
 * runs the system itself, firing timers on the virtual clock, until the
 * probe got something or the (virtual) timeout passed: exact and
 * repeatable. On a threaded system it waits on a condition (real time).
 *
 *     mr_system_new(&sys, 0, seed);
 *     mr_probe_new(sys, &p);
 *     mr_spawn(sys, &under_test, (void *)(uintptr_t)mr_probe_pid(p), ...);
 *     mr_cast(sys, pid, PING, NULL, 0);
 *     mr_probe_next(p, 1000, &m);   // PONG, cast to the probe
 *
 * Thread safety: a probe's functions from one thread at a time (the
 * test's); the probe actor runs wherever the system runs it.
 */
#ifndef MAILROOM_TESTKIT_H
#define MAILROOM_TESTKIT_H

#include <stddef.h>
#include <stdint.h>

#include "mailroom/actor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mr_probe mr_probe;

typedef enum mr_probe_kind {
	MR_PROBE_CAST = 1, /* a cast: type, from, data */
	MR_PROBE_CALL = 2, /* a call: type, data, call (answer it) */
	MR_PROBE_INFO = 3, /* a signal: info (EXIT, DOWN, TIMER), pid, reason */
} mr_probe_kind;

/** @brief What a probe got (new: free() it). */
typedef struct mr_probe_msg {
	mr_probe_kind kind;
	uint32_t      type;   /* CAST, CALL: the message's; INFO: its timer's */
	mr_info_kind  info;   /* INFO */
	mr_pid        from;   /* CAST: the sender (0: not an actor) */
	mr_pid        pid;    /* INFO: the actor that exited (EXIT, DOWN) */
	int           reason; /* INFO: its reason */
	mr_from       call;   /* CALL: answer with mr_reply / mr_reply_error */
	uint64_t      at;     /* the system's clock when it arrived */
	size_t        len;
	unsigned char data[]; /* len bytes (a timer's message's too) */
} mr_probe_msg;

/**
 * @brief Spawn a probe on \p sys: an actor that traps exits (link it to
 *        see an EXIT; monitor with it through mr_probe_monitor) and keeps
 *        everything it gets, in order.
 * @returns MR_OK, or mr_spawn's error.
 */
MR_API int mr_probe_new(mr_system *sys, mr_probe **out);

/** @returns the probe's pid: where the actor under test sends. */
MR_API mr_pid mr_probe_pid(const mr_probe *p);

/**
 * @brief The next thing the probe got (*out, new), waiting up to \p
 *        timeout_ms for it (virtual milliseconds on a deterministic system,
 *        which this runs meanwhile).
 * @returns MR_OK, MR_ETIMEDOUT, or MR_ECLOSED (the probe is gone).
 */
MR_API int mr_probe_next(mr_probe *p, int timeout_ms, mr_probe_msg **out);

/**
 * @brief The next thing must be a cast of \p type within \p timeout_ms; its
 *        bytes are copied to \p data (up to \p cap; NULL: not wanted) and
 *        *len set (NULL: not wanted).
 * @returns MR_OK, MR_ETIMEDOUT, or MR_EPROTO (something else came: it is
 *          consumed).
 */
MR_API int mr_probe_expect_cast(mr_probe *p, uint32_t type, int timeout_ms,
				void *data, size_t cap, size_t *len);

/** @brief Nothing must come within \p ms. @returns MR_OK, or MR_EPROTO
 *         (something came: it is consumed). */
MR_API int mr_probe_expect_nothing(mr_probe *p, int ms);

/** @brief Monitor \p target from the probe: its end comes as a DOWN (one
 *         already gone: MR_EXIT_NOPROC). In place when this returns: on a
 *         deterministic system it runs the system until the probe took
 *         the request (other actors may run meanwhile).
 *  @returns MR_OK or MR_ENOENT (the probe is gone). */
MR_API int mr_probe_monitor(mr_probe *p, mr_pid target);

/** @brief Stop the probe and free it (what it kept too), before its
 *         system is freed; NULL is a no-op. */
MR_API void mr_probe_free(mr_probe *p);

/**
 * @brief A scenario for mr_explore: build it on \p sys (deterministic, a
 *        new one per seed), drive it, check its invariant.
 * @returns 0 when the invariant held, else non-zero.
 */
typedef int (*mr_scenario_fn)(mr_system *sys, uint64_t seed, void *arg);

/**
 * @brief Run \p fn under seeds \p first .. \p first + \p n - 1, each on a
 *        new deterministic system (freed after), and stop at the first that
 *        fails: run that seed alone again to replay its interleaving.
 * @returns 0 when every seed passed, else the failing scenario's value
 *          (or mr_system_new's error), with *failed (when not NULL) set to
 *          its seed.
 */
MR_API int mr_explore(uint64_t first, unsigned n, mr_scenario_fn fn,
		      void *arg, uint64_t *failed);

#ifdef __cplusplus
}
#endif

#endif
