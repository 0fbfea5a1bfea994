/*
 * The actor runtime's insides, shared by its files (not API):
 *
 *   mailbox.c  messages, the MPSC mailbox, delivery and its bounds
 *   system.c   the system, the pid table, the run queue, the workers, the
 *              deterministic scheduler
 *   actor.c    spawn, running a message, exits, links, monitors, upgrades
 *   call.c     calls and replies, names
 *   timer.c    send_after and cancel, the timer thread, the virtual clock
 *
 * Scheduling rule (one message at a time per actor): an actor's count is
 * the number of messages reserved in its mailbox. The sender that moves it
 * from 0 to 1 puts the actor on the run queue; the worker that runs it
 * subtracts what it took after its batch and puts it back if anything is
 * left. So an actor is on the run queue, or being run, exactly while its
 * count is non-zero: never twice. A spawning actor holds a phantom count
 * of 1 while its init runs, so nothing runs it before.
 *
 * References: an actor's refs count the pid table's entry, a run queue
 * entry (or the worker running it), and each sender between its look-up
 * and its delivery. It is freed at zero, its mailbox then empty.
 */
#ifndef MRI_ACTOR_INTERNAL_H
#define MRI_ACTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailroom/actor.h"
#include "mailroom/supervisor.h"

#define MRI_BATCH        64     /* messages per run before yielding */
#define MRI_NEXT_STREAK  16     /* a worker's own next, in a row, at most */
#define MRI_TABLE_STRIPE 64     /* locks over the pid table */
#define MRI_CHUNK_BITS   12     /* pid table: slots per chunk, 2^12 */
#define MRI_CHUNKS       4096   /* and chunks: 16 M actors at once */
#define MRI_CALL_BUCKETS 256

struct mri_node {
	_Atomic(struct mri_node *) next;
};

/* What a message is for the runtime. */
enum mri_kind {
	MRI_M_CAST = 0,
	MRI_M_CALL,       /* aux: the call id */
	MRI_M_TIMER,      /* aux: the timer ref */
	MRI_M_EXIT,       /* reason; from */
	MRI_M_LINK,       /* from */
	MRI_M_UNLINK,     /* from */
	MRI_M_MONITOR,    /* from, aux: ref */
	MRI_M_DEMONITOR,  /* aux: ref */
	MRI_M_DOWN,       /* from, aux: ref, reason */
	MRI_M_UPGRADE,    /* ptr: behaviour, aux: extra */
	MRI_M_STOP,       /* the system stops */
};

#define MRI_MF_PTR   0x1 /* ptr/free_fn payload */
#define MRI_MF_TAKEN 0x2 /* mr_msg_take took it */

struct mri_msg {
	struct mri_node node; /* first: the mailbox's link */
	uint8_t         kind;
	uint8_t         flags;
	int             reason;
	uint32_t        type;
	mr_pid          from;
	uint64_t        aux;
	void           *ptr;
	void (*free_fn)(void *);
	size_t          len;
	mr_msg          view; /* what callbacks see */
	_Alignas(max_align_t) unsigned char data[];
};

/* A link, a monitor held, or a watcher (someone monitors us). */
enum mri_peer_kind { MRI_P_LINK = 1, MRI_P_MONITOR = 2, MRI_P_WATCHER = 3 };
struct mri_peer {
	uint8_t kind;
	mr_pid  pid;
	mr_ref  ref;
};
struct mri_peers {
	size_t          n, cap;
	struct mri_peer v[];
};

struct mr_actor {
	_Atomic(struct mri_node *) head; /* producers swap here */
	struct mri_node           *tail; /* the consumer's end */
	struct mri_node            stub;
	_Atomic uint32_t           count;
	_Atomic uint32_t           refs;
	uint32_t                   cap;       /* 0: unbounded */
	_Atomic uint16_t           blocked;   /* senders waiting for room */
	uint8_t                    overflow;
	_Atomic uint8_t            starting;  /* init running: phantom count */
	_Atomic bool               kill;      /* MR_EXIT_KILL pending */
	bool                       trap;
	_Atomic bool               dead;      /* read by blocked senders */
	bool                       exiting;   /* mr_exit called */
	bool                       got_call;  /* may have calls deferred */
	int                        exit_reason;
	mr_pid                     pid;
	const mr_behaviour        *b;
	void                      *state;
	mr_system                 *sys;
	struct mr_actor           *rq_next;
	struct mri_peers          *peers;
	char                      *name;
};

struct mri_slot {
	struct mr_actor *a;
	uint32_t         gen;
	uint32_t         next_free;
};

struct mri_call {
	struct mri_call *next;
	uint64_t         id;
	mr_pid           callee;
	bool             done;
	int              err;
	void            *reply;
	size_t           reply_len;
	pthread_cond_t   cv;
	/* An external call's (mr_call_external): finished by calling it
	 * rather than by waking a waiter, then freed. */
	mr_reply_fn      ext;
	void            *ext_arg;
};

struct mri_timer {
	uint64_t        due;
	mr_ref          ref;
	mr_pid          to;
	struct mri_msg *m;
};

struct mri_name {
	struct mri_name *next;
	mr_pid           pid;
	char             name[];
};

struct mr_system {
	int      threads; /* 0: deterministic */
	uint64_t rng;     /* deterministic: xorshift64* state */
	_Atomic bool   stopping;
	_Atomic size_t live;
	_Atomic uint64_t next_ref;

	/* the pid table */
	pthread_mutex_t  stripe[MRI_TABLE_STRIPE];
	pthread_mutex_t  alloc_mu;
	struct mri_slot *chunk[MRI_CHUNKS];
	_Atomic uint32_t nslots;
	uint32_t         free_head; /* UINT32_MAX: none */

	/* the run queue: a FIFO in threaded mode, an array in deterministic */
	pthread_mutex_t   rq_mu;
	pthread_cond_t    rq_cv;
	struct mr_actor  *rq_head, *rq_tail;
	struct mr_actor **runv;
	size_t            runn, runcap;
	_Atomic int       idle; /* workers waiting (changed under rq_mu) */
	bool              quit;
	pthread_t        *workers;
	pthread_cond_t    live_cv; /* live reached 0 (under rq_mu) */

	/* senders waiting for room (MR_OVERFLOW_BLOCK) */
	pthread_mutex_t space_mu;
	pthread_cond_t  space_cv;

	/* calls in progress, and names */
	pthread_mutex_t  calls_mu;
	struct mri_call *calls[MRI_CALL_BUCKETS];
	uint64_t         next_call;
	pthread_mutex_t  names_mu;
	struct mri_name *names[MRI_CALL_BUCKETS];

	/* timers: a min-heap on due */
	pthread_mutex_t   timer_mu;
	pthread_cond_t    timer_cv;
	struct mri_timer *heap;
	size_t            nheap, heapcap;
	bool              timer_quit;
	bool              timer_started;
	pthread_t         timer_thread;
	uint64_t          vnow; /* deterministic: the virtual clock */

	/* restarts per supervisor name (supervisor.c) */
	pthread_mutex_t   restarts_mu;
	mr_restart_count  restarts[MR_SUP_NAMES_MAX + 1]; /* "_other" last */
	size_t            nrestarts;
};

/* mailbox.c */
struct mri_msg *mri_msg_new(size_t len);
void mri_msg_free(struct mri_msg *m);
void mri_mbox_init(struct mr_actor *a);
struct mri_msg *mri_mbox_pop(struct mr_actor *a);
/* Deliver \p m to \p a (referenced by the caller): system messages (not
 * MRI_M_CAST / MRI_M_CALL) bypass the bound. Takes \p m in every case
 * (freed when refused). @returns MR_OK or MR_EBUSY. */
int mri_deliver(struct mr_actor *a, struct mri_msg *m);
/* Send a user message (cast or call) by \p to's overflow policy; on an
 * error \p m is still the caller's. */
int mri_send_user(mr_system *sys, mr_pid to, struct mri_msg *m);
/* Send a bodiless system message to \p to; ignored when \p to is gone
 * (@returns MR_ENOENT) except as said by the caller. */
int mri_signal(mr_system *sys, mr_pid to, enum mri_kind kind, mr_pid from,
	       uint64_t aux, int reason);

/* system.c */
struct mr_actor *mri_lookup(mr_system *sys, mr_pid pid); /* new ref */
int mri_table_add(mr_system *sys, struct mr_actor *a);   /* sets a->pid */
void mri_table_remove(mr_system *sys, struct mr_actor *a);
void mri_actor_rele(struct mr_actor *a);
void mri_schedule(mr_system *sys, struct mr_actor *a); /* takes a ref */
/* Before a worker blocks (a call from an actor): give the actor it was to
 * run next to the shared queue. */
void mri_worker_flush(mr_system *sys);
void mri_run(mr_system *sys, struct mr_actor *a, unsigned batch);
uint64_t mri_rand(mr_system *sys);

/* actor.c */
struct mr_actor *mri_current(void);
void mri_set_current(struct mr_actor *a);
void mri_dispatch(struct mr_actor *a, struct mri_msg *m);
void mri_drop(mr_system *sys, struct mr_actor *a, struct mri_msg *m);
void mri_die(struct mr_actor *a, int reason);

/* call.c */
void mri_calls_fail_callee(mr_system *sys, mr_pid callee, int err);
int mri_call_finish(mr_system *sys, uint64_t id, int err, const void *data,
		    size_t len);
void mri_names_drop(mr_system *sys, struct mr_actor *a);
void mri_calls_names_free(mr_system *sys);

/* timer.c */
int mri_timers_start(mr_system *sys);
void mri_timers_stop(mr_system *sys);
bool mri_timers_fire_next(mr_system *sys, uint64_t until);

#endif
