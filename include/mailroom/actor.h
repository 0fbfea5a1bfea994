/*
 * mailroom actors: OTP's gen_server and supervisors, in C, on an M:N
 * scheduler (the local runtime; mirrored, Kafka-backed actors come later).
 *
 * A system (mr_system) runs actors on a fixed pool of worker threads. An
 * actor is a behaviour (a struct of callbacks), a state (the behaviour's,
 * a void *) and a mailbox. Actors are named by pid, a 64-bit value (0 is no
 * actor); a pid is never reused within its system, so a stale pid only
 * fails (MR_ENOENT) or is ignored.
 *
 * One message at a time per actor: an actor's callbacks never run at the
 * same time, and each sees the effects of the previous ones. Messages sent
 * by one sender to one actor arrive in the order they were sent. An actor
 * is scheduled when its mailbox goes non-empty and runs at most a bounded
 * batch of messages before it yields its worker (fairness).
 *
 * Messages. A message is a user type (a uint32_t the behaviour switches on)
 * plus a payload: mr_cast copies len bytes into the message (one allocation
 * holds header and bytes); mr_cast_ptr hands over a pointer and the function
 * that frees it (no copy). Callbacks see a const mr_msg, borrowed for the
 * duration of the callback: copy the bytes you keep; a pointer payload
 * can be kept with mr_msg_take(), which stops the runtime from freeing it.
 * Exit signals, DOWN, timers and upgrades ride the same mailbox (so they
 * are ordered with the messages of their sender) but are never refused by
 * a full one.
 *
 * Crashes. A callback returning non-zero, or calling mr_exit with a
 * reason other than MR_EXIT_NORMAL, crashes the actor with that reason:
 * terminate(reason) runs (always, unlike OTP, so that C state is freed),
 * links and monitors are told, the state is dropped; a supervisor may start
 * it again, from init.
 *
 * Exit reasons are ints: MR_EXIT_NORMAL (0), MR_EXIT_SHUTDOWN,
 * MR_EXIT_KILL / MR_EXIT_KILLED, MR_EXIT_NOPROC, or any other non-zero
 * value a callback returned (an mr_err code, typically).
 *
 * Deterministic mode. A system made with threads == 0 has no threads of
 * its own: the thread that owns it drives it with mr_system_step,
 * mr_system_run_until_idle and mr_system_advance; the scheduler picks the
 * next runnable actor with a seeded generator (one message per step) and
 * timers run on a virtual clock that only mr_system_advance (and mr_call,
 * waiting for its reply or its timeout) moves. The same seed and the same
 * calls replay the same interleaving.
 *
 * Callbacks should not block: a callback that waits holds its worker, and
 * the one actor that worker was to run next (an actor its callbacks made
 * runnable) waits with it; mr_call from an actor hands that one over first.
 *
 * Thread safety: a system's functions are thread-safe in threaded mode
 * (threads > 0), callable from any thread, actor or not, except
 * mr_system_free (one thread, no other call in progress) and the functions
 * that take an mr_actor * (only from within that actor's own callbacks). A
 * deterministic system (threads == 0) is not thread-safe: only its owner's
 * thread and its actors call it.
 */
#ifndef MAILROOM_ACTOR_H
#define MAILROOM_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailroom/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mr_system mr_system;
typedef struct mr_actor  mr_actor; /* an actor, as its callbacks see it */
typedef uint64_t         mr_pid;   /* 0: no actor */
typedef uint64_t         mr_ref;   /* a timer or a monitor; 0: none */
typedef uint64_t         mr_from;  /* a call awaiting its reply */

/* Exit reasons besides MR_EXIT_NORMAL and callbacks' non-zero returns. */
#define MR_EXIT_NORMAL   0
#define MR_EXIT_SHUTDOWN (-1) /* asked to stop (a supervisor, the system) */
#define MR_EXIT_KILL     (-2) /* sent: cannot be trapped */
#define MR_EXIT_KILLED   (-3) /* what a killed actor's links see */
#define MR_EXIT_NOPROC   (-4) /* linked or monitored an actor already gone */

/** @brief A message, as a callback sees it (borrowed). */
typedef struct mr_msg {
	uint32_t    type; /* the sender's, for the behaviour to switch on */
	mr_pid      from; /* the sending actor, 0 from a non-actor thread */
	const void *data; /* the bytes (copied) or the pointer (handed over) */
	size_t      len;  /* bytes copied; 0 for a pointer */
} mr_msg;

/** @brief What handle_info receives. */
typedef enum mr_info_kind {
	MR_INFO_TIMER = 1, /* a send_after came due: msg is its message */
	MR_INFO_EXIT  = 2, /* a linked actor exited (trap_exit only) */
	MR_INFO_DOWN  = 3, /* a monitored actor exited (once per monitor) */
} mr_info_kind;

typedef struct mr_info {
	mr_info_kind  kind;
	mr_pid        pid;    /* EXIT, DOWN: the actor that exited */
	int           reason; /* EXIT, DOWN: its exit reason */
	mr_ref        ref;    /* TIMER: the timer; DOWN: the monitor */
	const mr_msg *msg;    /* TIMER: the message; otherwise NULL */
} mr_info;

/**
 * @brief A behaviour: OTP's gen_server callbacks. Every callback is called
 *        on a worker thread (or the driving thread of a deterministic
 *        system), one at a time per actor; NULL callbacks do nothing (a
 *        call with no handle_call fails with MR_ENOTSUP). A non-zero return
 *        crashes the actor with that value as reason.
 */
typedef struct mr_behaviour {
	const char *name; /* for logs */
	/** Runs inside mr_spawn, in the spawning thread; sets *state. */
	int (*init)(mr_actor *self, void *arg, void **state);
	int (*handle_cast)(mr_actor *self, void *state, const mr_msg *msg);
	/**
	 * Answer with mr_reply / mr_reply_error, now (before returning) or
	 * later, from any thread (keep \p from, a value). Each from is
	 * answered at most once; an unanswered call ends by its timeout, or
	 * with MR_ECLOSED when the actor exits first.
	 */
	int (*handle_call)(mr_actor *self, void *state, const mr_msg *msg,
			   mr_from from);
	int (*handle_info)(mr_actor *self, void *state, const mr_info *info);
	/** The last callback, on every exit: free the state here. */
	void (*terminate)(mr_actor *self, void *state, int reason);
	/**
	 * Called on the NEW behaviour by mr_actor_upgrade, between two
	 * messages: migrate \p old_state into *new_state (which may be the
	 * same pointer). Non-zero: the upgrade is refused, the actor keeps its
	 * old behaviour and state and goes on.
	 */
	int (*code_change)(mr_actor *self, void *old_state, void *extra,
			   void **new_state);
} mr_behaviour;

/** @brief What a full mailbox does to a send. */
typedef enum mr_overflow {
	MR_OVERFLOW_FAIL  = 0, /* the send fails with MR_EBUSY */
	MR_OVERFLOW_DROP  = 1, /* the message is dropped, the send says MR_OK */
	MR_OVERFLOW_BLOCK = 2, /* a non-actor sender waits for room; an actor
				  sender fails with MR_EBUSY (a worker never
				  waits on another actor's mailbox), and so
				  does any sender to a deterministic system */
} mr_overflow;

typedef struct mr_spawn_opts {
	uint32_t    mailbox_max; /* messages, counting the ones of the batch
				    being run; 0: unbounded */
	mr_overflow overflow;
	bool        trap_exit;   /* EXIT signals arrive as handle_info */
	mr_pid      link;        /* linked at birth (spawn_link); 0: none */
} mr_spawn_opts;

/* ---- systems ------------------------------------------------------- */

/**
 * @brief A new system with \p threads workers (-1: one per online core;
 *        0: deterministic, driven by its caller, \p seed choosing the
 *        order; \p seed is unused otherwise).
 * @returns MR_OK, MR_EINVAL or MR_ENOMEM.
 */
MR_API int mr_system_new(mr_system **out, int threads, uint64_t seed);

/**
 * @brief Stop every actor (each exits with MR_EXIT_SHUTDOWN: terminate is
 *        called, links and supervisors restart nothing), stop the threads,
 *        free everything. Timers are cancelled. NULL is a no-op. Actors are
 *        stopped in no particular order: stop a supervision tree first
 *        (mr_send_exit(root, MR_EXIT_SHUTDOWN) and wait for its DOWN) when
 *        its order matters.
 */
MR_API void mr_system_free(mr_system *sys);

/** @returns milliseconds on the system's clock (virtual in deterministic
 *           mode, starting at 0; monotonic otherwise). */
MR_API uint64_t mr_system_now(mr_system *sys);

/**
 * @brief Deterministic mode: run one message of one runnable actor (chosen
 *        by the seed).
 * @returns true if a message ran, false when nothing was runnable.
 */
MR_API bool mr_system_step(mr_system *sys);

/** @brief Deterministic mode: step until nothing is runnable.
 *  @returns the steps run. */
MR_API uint64_t mr_system_run_until_idle(mr_system *sys);

/**
 * @brief Deterministic mode: run until idle, then move the virtual clock
 *        forward by \p ms, firing each timer at its time (in order) and
 *        running until idle after each.
 */
MR_API void mr_system_advance(mr_system *sys, uint64_t ms);

/** @returns the number of live actors. */
MR_API size_t mr_system_actors(mr_system *sys);

/* ---- actors -------------------------------------------------------- */

/**
 * @brief Spawn an actor: init runs now, in this thread; the actor takes
 *        messages once it returned. \p opts may be NULL (unbounded, no
 *        trap, no link). \p arg is init's (borrowed by the call).
 * @returns MR_OK and *pid, or init's non-zero return (the actor never
 *          lived; opts->link gets an EXIT with that reason, unless it is
 *          the spawning actor itself, which has the return), MR_ENOENT
 *          (opts->link is gone), MR_ESHUTDOWN (mr_system_free has begun)
 *          or MR_ENOMEM.
 */
MR_API int mr_spawn(mr_system *sys, const mr_behaviour *b, void *arg,
		    const mr_spawn_opts *opts, mr_pid *pid);

/** @returns the actor's pid. */
MR_API mr_pid mr_self(const mr_actor *self);
/** @returns the actor's system. */
MR_API mr_system *mr_actor_system(const mr_actor *self);

/**
 * @brief Cast: \p len bytes of \p data are copied into the message. From an
 *        actor's callback, the message's from is that actor.
 * @returns MR_OK (also when dropped by MR_OVERFLOW_DROP), MR_ENOENT (no such
 *          actor), MR_EBUSY (mailbox full) or MR_ENOMEM.
 */
MR_API int mr_cast(mr_system *sys, mr_pid to, uint32_t type,
		   const void *data, size_t len);

/**
 * @brief Cast a pointer: takes ownership of \p ptr on success (the
 *        receiver's runtime calls \p free_fn(ptr) after the callback,
 *        unless the callback took it with mr_msg_take); on failure the
 *        caller still owns it. A dropped message (MR_OVERFLOW_DROP) is
 *        freed.
 */
MR_API int mr_cast_ptr(mr_system *sys, mr_pid to, uint32_t type, void *ptr,
		       void (*free_fn)(void *));

/** @brief Keep a pointer message's pointer: the runtime will not free it.
 *  @returns the pointer, now the caller's. Only inside the callback. */
MR_API void *mr_msg_take(const mr_msg *msg);

/**
 * @brief Call: send and wait up to \p timeout_ms (< 0: forever) for the
 *        reply. The reply's bytes are returned in *reply (new, free() it;
 *        NULL when empty) and *reply_len; either may be NULL.
 *        From a non-actor thread the caller blocks on a condition. From
 *        inside an actor, the caller's worker blocks too: the calling
 *        actor takes no message meanwhile, and a cycle of calls (or more
 *        nested calls than workers) waits for the timeout; prefer a cast
 *        with a deferred reply. A deterministic system runs its actors in
 *        the call (timers on the virtual clock, the timeout too); a call
 *        from an actor there fails with MR_ENOTSUP.
 * @returns MR_OK, the error given to mr_reply_error, MR_ETIMEDOUT,
 *          MR_ENOENT (no such actor, or it exited before taking the call),
 *          MR_ECLOSED (it exited after taking it, unanswered), MR_ENOTSUP
 *          (no handle_call), MR_EBUSY or MR_ENOMEM.
 */
MR_API int mr_call(mr_system *sys, mr_pid to, uint32_t type,
		   const void *data, size_t len, int timeout_ms, void **reply,
		   size_t *reply_len);

/**
 * @brief Answer the call \p from with \p len bytes (copied), from any
 *        thread.
 * @returns MR_OK, MR_ENOENT (the call is over: answered, timed out) or
 *          MR_ENOMEM.
 */
MR_API int mr_reply(mr_system *sys, mr_from from, const void *data,
		    size_t len);

/** @brief Answer the call \p from with the error \p err (non-zero). */
MR_API int mr_reply_error(mr_system *sys, mr_from from, int err);

/** @brief How an external call is answered: \p err MR_OK and \p len bytes
 *         of \p data (borrowed for the call), or the error. */
typedef void (*mr_reply_fn)(void *arg, int err, const void *data,
			    size_t len);

/**
 * @brief A call to \p self from a caller that is not an actor of this
 *        system (a remote one, whose reply goes back through Kafka): make
 *        it a from, give it to handle_call, and its answer (mr_reply,
 *        mr_reply_error, now or deferred, from any thread) calls \p done
 *        on the answering thread; so does \p self's end before it answered
 *        (MR_ECLOSED). Exactly once. From \p self's own callbacks.
 * @returns MR_OK and *from, MR_EINVAL (no \p done) or MR_ENOMEM.
 */
MR_API int mr_call_external(mr_actor *self, mr_reply_fn done, void *arg,
			    mr_from *from);

/**
 * @brief Stop the calling actor after this callback, with \p reason
 *        (MR_EXIT_NORMAL: a normal stop). Only inside its callbacks. From
 *        init: the actor exits as soon as init returned (terminate runs),
 *        and mr_spawn still returns MR_OK and its pid.
 */
MR_API void mr_exit(mr_actor *self, int reason);

/**
 * @brief Send an exit signal to \p to, as OTP's exit(Pid, Reason): a
 *        trapping actor gets an EXIT info (from 0 / the sender); one that
 *        does not exits with \p reason unless it is MR_EXIT_NORMAL;
 *        MR_EXIT_KILL always kills (reason MR_EXIT_KILLED), ahead of the
 *        messages already queued.
 * @returns MR_OK or MR_ENOENT.
 */
MR_API int mr_send_exit(mr_system *sys, mr_pid to, int reason);

/**
 * @brief Replace the behaviour of \p pid by \p b between two messages: its
 *        code_change(old_state, extra) makes the new state (NULL
 *        code_change: the state is kept as is).
 * @returns MR_OK once queued, MR_ENOENT or MR_ENOMEM.
 */
MR_API int mr_actor_upgrade(mr_system *sys, mr_pid pid,
			    const mr_behaviour *b, void *extra);

/** @brief Set whether the calling actor traps exits. */
MR_API void mr_trap_exit(mr_actor *self, bool on);

/* ---- links and monitors (from inside an actor) --------------------- */

/**
 * @brief Link the calling actor and \p other: when either exits, the other
 *        gets an exit signal with its reason. Linking an actor that is
 *        gone gives an exit signal with MR_EXIT_NOPROC.
 * @returns MR_OK or MR_ENOMEM.
 */
MR_API int mr_link(mr_actor *self, mr_pid other);
/** @brief Remove the link with \p other (both sides). */
MR_API void mr_unlink(mr_actor *self, mr_pid other);

/**
 * @brief Monitor \p target: when it exits (or if it is gone already:
 *        MR_EXIT_NOPROC) the caller gets one DOWN info with this ref.
 * @returns the monitor's ref (0: out of memory).
 */
MR_API mr_ref mr_monitor(mr_actor *self, mr_pid target);
/** @brief Remove the monitor: no DOWN for \p ref arrives afterwards. */
MR_API void mr_demonitor(mr_actor *self, mr_ref ref);

/* ---- names -------------------------------------------------------- */

/** @returns MR_OK, MR_EEXIST (name taken), MR_ENOENT (no such actor),
 *           MR_EINVAL or MR_ENOMEM. A name goes when its actor exits. */
MR_API int mr_register(mr_system *sys, const char *name, mr_pid pid);
/** @returns the pid registered under \p name, 0 if none. */
MR_API mr_pid mr_whereis(mr_system *sys, const char *name);
/** @returns MR_OK or MR_ENOENT. */
MR_API int mr_unregister(mr_system *sys, const char *name);

/* ---- timers -------------------------------------------------------- */

/**
 * @brief In \p ms milliseconds (system clock), \p to gets an MR_INFO_TIMER
 *        info carrying a message of \p type and \p len bytes (copied now).
 * @returns the timer's ref (for mr_cancel_timer), 0 on MR_ENOMEM.
 */
MR_API mr_ref mr_send_after(mr_system *sys, mr_pid to, uint64_t ms,
			    uint32_t type, const void *data, size_t len);

/** @returns MR_OK if cancelled before it fired, MR_ENOENT otherwise. */
MR_API int mr_cancel_timer(mr_system *sys, mr_ref ref);

#ifdef __cplusplus
}
#endif

#include "mailroom/supervisor.h"

#endif
