/*
 * What the rest of the client (consumer.c, consume_run.c) uses of client.c
 * and consumer.c: one request on the client's pool of nng contexts, waited
 * for, and what mr_consume_run needs of a consumer and its batches.
 *
 * Thread safety: as mr_client; each call blocks its caller only.
 */
#ifndef MRI_CLIENT_INTERNAL_H
#define MRI_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "mailroom/client.h"
#include "mailroom/consumer.h"
#include "proto/frame.h"

/**
 * @brief Send the whole frame in \p b (from mri_frame_begin to
 *        mri_frame_end; copied, the caller still owns it) and wait for its
 *        reply. The request times out after the client's timeout plus
 *        \p extra_ms (a long poll's wait).
 * @returns MR_OK and the reply in *reply (new: nng_msg_free() it; its
 *          header was checked and its op is the request's reply), or an
 *          mr_err: mailroomd's ERROR code, MR_EPROTO, a transport error;
 *          mr_client_last_error() has the sentence.
 */
int client__frame_call(mr_client *c, struct mri_wbuf *b, int extra_ms,
		       nng_msg **reply);

/**
 * @brief Send \p op with \p body (a JSON text, or NULL) and wait.
 * @returns MR_OK and the reply's body as a new NUL-terminated string in
 *          *json (free() it), or an mr_err as client__frame_call.
 */
int client__json_call(mr_client *c, uint8_t op, const char *body,
		      char **json);

/* What mr_consume_run (client/consume_run.c) uses of a consumer. */

/** @returns the credit of \p s: its SUBSCRIBE reply's, else its options';
 *           0 when unknown. */
int consumer__credit(const mr_consumer *s);

/** @returns whether the options of \p s let it subscribe again after a lost
 *           session (reconnect_timeout_ms >= 0). */
bool consumer__reconnects(const mr_consumer *s);

/** @returns the session that fetched \p b. */
uint64_t consumer__batch_session(const mr_batch *b);

/**
 * @brief mr_consumer_ack (or, by \p kind, MRI_SETTLE_NACK or
 *        MRI_SETTLE_REJECT of proto/consume.h: mr_consumer_nack,
 *        mr_consumer_reject) of handles of \p session, which need not be
 *        the consumer's current one: a handle is only ever settled on the
 *        session that fetched it, which mailroomd refuses (MR_ENOENT) once
 *        it is gone, rather than on a new session where its number may
 *        name another delivery. \p reason is not sent with an ack. An
 *        ack may carry MRI_SETTLE_F_LINGER (its reply may wait for others
 *        to share the journal's write); it is sent without the flag to a
 *        mailroomd that refused it once.
 */
int consumer__settle_on(mr_consumer *s, uint64_t session, uint8_t kind,
			const uint64_t *handles, size_t n, const char *reason,
			size_t *failed);

/** @brief Set this thread's mr_client_last_error() to \p why (copied). */
void client__set_last_error(const char *why);

/* ---- the requests (client/client.c) and publishing (client/publish.c) */

struct client_call;
typedef void (*client_done_cb)(const struct client_call *call, int status,
			       const char *why, nng_msg *reply);

/* One mr_publish_async call of a coalesced PUBLISH (client/coalesce.c):
 * its callback gets the acks of its n messages. */
struct client_part {
	mr_publish_cb cb;
	void         *arg;
	uint32_t      n;
};

/* What a completion needs: copied out of the request before the request
 * goes back to the pool. */
struct client_call {
	client_done_cb done;
	mr_publish_cb cb;
	void         *arg;
	uint32_t      n;
	uint8_t      *frame; /* a PUBLISH request's own copy, to name its
				messages when it fails; freed after done */
	size_t        frame_len;
	bool          keep_reply; /* done owns the reply (any status) */
	/* A PUBLISH of several calls: theirs, in the order of their
	 * messages (n in all; freed after done); NULL: one call, cb's. */
	struct client_part *parts;
	uint32_t      nparts;
	mr_client    *c; /* set by client__finish */
};

/* The acks of a completion: kept by the client for the next one
 * (client__publish_done), since a frame's acks (800 bytes each) are too
 * many for the stack and, malloc'd and freed each time, cost page faults
 * when glibc gives a thread arena's top back to the kernel. */
struct client_acks {
	size_t cap;
	mr_ack a[];
};

struct client_req {
	mr_client      *c;
	nng_ctx         ctx;
	nng_aio        *aio;
	int             sending;
	int             extra_ms; /* added to the client's timeout */
	uint8_t         op;
	struct client_call call;
	struct client_req *next;     /* in c->idle */
	struct client_req *all_next; /* in c->all, for free */
	/* A publish: its place in the client's stream, and its resends. */
	uint32_t        seq;
	bool            queued;   /* in c->pub_head's list */
	nng_aio        *timer;    /* waits before a publish is sent again */
	bool            in_doubt; /* a send's outcome was never known */
	int             sends;
	int             last_err; /* the last definite refusal */
	nng_time        deadline;
	struct client_req *pub_prev, *pub_next;
};

struct mr_client {
	nng_socket      sock;
	int             timeout_ms;
	int             busy_retry_ms;
	int             max_inflight;
	size_t          max_frame;
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	int             inflight; /* requests out of the pool */
	int             pending;  /* calls whose completion has not returned */
	int             nreqs;
	struct client_req *idle;
	struct client_req *all; /* every req, for free */
	/* Publishes are numbered in one stream, and mailroomd hands them to
	 * Kafka in that order; the list holds those not yet completed, oldest
	 * first (its head's seq is the base sent with each). */
	uint64_t        stream;
	uint32_t        seq_next;
	struct client_req *pub_head, *pub_tail;
	/* The connection, and one that said it is draining: what is sent to
	 * that one would be refused, and could be lost with it. */
	atomic_uint     pipe;
	atomic_uint     draining_pipe;
	/* nng 1.5.2 can leave a lost connection's dialer waiting forever
	 * (client__watch_cb): the dialer, to read its stats and to dial
	 * anew, and since when a lost connection has not come back (0: it
	 * has, or none was lost). Touched by the watch's callback only, but
	 * for lost_ms, closing and redials. */
	char           *url;
	nng_dialer      dialer;
	/* The current dialer's id: a connection of any other (one left
	 * behind, that came back after all) is refused, so that requests
	 * never go out on two connections (a session is its connection's:
	 * one request on the other would be told MR_ENOENT). */
	atomic_int      dialer_id;
	atomic_uint     refused_pipes;
	nng_aio        *watch;
	atomic_ullong   lost_ms;
	atomic_int      watching;
	atomic_int      closing;
	atomic_uint     redials; /* dialers abandoned: the socket is wedged */
	bool            trace;   /* $MAILROOM_CLIENT_TRACE: client__trace */
	mr_client      *left_next; /* on the list of clients left behind */
	/* Coalescing (client/coalesce.c), under lock: the mr_publish_async
	 * calls gathered into the next PUBLISH frame, and what flushes it. */
	int64_t         linger_us;  /* -1: off */
	uint32_t        cap_msgs;   /* a frame's messages */
	size_t          cap_bytes;  /* a frame's bytes */
	struct mri_wbuf pend;       /* header, seq, count, then messages */
	uint32_t        pend_n;     /* its messages; 0: nothing pending */
	struct client_part *pend_parts;
	uint32_t        pend_nparts, pend_cap;
	uint64_t        pend_since; /* mri_mono_us of its first call */
	bool            pend_due;   /* flush once a request is free */
	bool            linger_run; /* the linger thread was started */
	bool            linger_stop;
	pthread_t       linger;
	pthread_cond_t  linger_cv;  /* monotonic; the linger thread waits */
	atomic_ullong   frames;     /* PUBLISH frames made (tests) */
	_Atomic(struct client_acks *) acks_cache;
	atomic_ullong   coalesced;  /* mr_publish_async calls coalesced */
};

struct client__wait {
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	int             done;
	int             status;
	mr_ack         *acks;
	char           *json;
	nng_msg        *reply;
	char            why[256];
};

/** @brief Take an idle request (blocks while max_inflight are out).
 *  @returns MR_OK or MR_ENOMEM. */
int client__acquire(mr_client *c, struct client_req **out);

/** @brief With c->lock held: an idle request, or a new one while fewer
 *         than max_inflight exist (counted out, as client__acquire's).
 *  @returns it, or NULL when all are out (*rc MR_OK) or on no memory
 *           (*rc MR_ENOMEM). */
struct client_req *client__take_locked(mr_client *c, int *rc);

/* ---- coalescing (client/coalesce.c) */

/** @brief The client's coalescing settings from \p opts (NULL: defaults),
 *         and its empty pending frame. @returns MR_OK or MR_ENOMEM. */
int coalesce__init(mr_client *c, const mr_client_opts *opts);

/** @brief Stop the linger thread and free the pending frame (nothing may
 *         be pending: after a drain). */
void coalesce__fini(mr_client *c);

/**
 * @brief Publish the frame in \p b (from mri_frame_begin, sequence
 *        reserved, count and messages written; the request takes b's
 *        bytes on MR_OK, else the caller still owns them) of \p n
 *        messages, for \p cb: gathered with other calls into one frame
 *        unless \p direct, then sent after whatever is pending.
 * @returns MR_OK (cb will be called once) or an mr_err (it will not).
 */
int coalesce__submit(mr_client *c, struct mri_wbuf *b, uint32_t n,
		     bool direct, mr_publish_cb cb, void *arg);

/** @brief Flush what is pending now if a request is free, else as soon
 *         as one is (mr_client_drain, mr_client_free). */
void coalesce__flush(mr_client *c);

/** @brief A request went back to the pool: send what is pending if its
 *         linger passed or it waited for a request. */
void coalesce__kick(mr_client *c);

/** @brief A PUBLISH request's completion: its acks to its call's
 *         callback, or to each of its calls' (a coalesced frame). */
void client__publish_done(const struct client_call *call, int status,
			  const char *why, nng_msg *m);

/** @brief Lay a publish into the client's stream (seq, pub list); with
 *         c->lock held. */
void client__pub_queue_locked(struct client_req *r);

/** @returns the PUBLISH frames this client made, and the
 *           mr_publish_async calls that went into them coalesced with
 *           others (for tests). */
uint64_t client__publish_frames(mr_client *c);
uint64_t client__publish_coalesced(mr_client *c);

/** @brief The request is over: back to the pool, then its done callback
 *         with \p m (freed after it unless keep_reply). */
void client__finish(struct client_req *r, int status, const char *why,
		    nng_msg *m);

/* A caller's wait for one request (the synchronous calls). */
void client__wait_init(struct client__wait *w);
void client__wait_signal(struct client__wait *w);
/** @returns the waited request's status; sets mr_client_last_error(). */
int client__wait_end(struct client__wait *w);

/** @returns the milliseconds left before a publish's deadline, 0 if none. */
int client__remaining_ms(const struct client_req *r);

/** @brief Send (again) a publish's frame, with the stream's base as it is
 *         now; held back while the connection is a draining mailroomd's. */
void client__pub_send(struct client_req *r);

/** @brief client__pub_send with c->lock held (a first send, in the same
 *         hold as its seq: frames reach nng in their stream's order).
 *  @returns MR_OK, or the error to give it up with (client__pub_give_up)
 *           once the lock is released, *why saying why. */
int client__pub_send_locked(struct client_req *r, const char **why);

/**
 * @brief A publish whose request failed as a whole (\p nng_rv, or an ERROR
 *        reply's \p status): send it again if its deadline allows and its
 *        outcome is unknown or it was refused for now.
 * @returns true if it will be sent again (then it is not finished).
 */
bool client__pub_retry(struct client_req *r, int nng_rv, bool sent, int status);

/** @brief With $MAILROOM_CLIENT_TRACE set, a line on stderr about the
 *         connection or a resend, stamped with the monotonic clock. */
void client__trace(const mr_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief Finish a publish that gave up: MR_EINDOUBT if any send of it may
 *         have been carried out. */
void client__pub_give_up(struct client_req *r, int status, const char *why,
			 nng_msg *m);

/** @brief The callback of a request's timer aio (the pause before a
 *         resend), on an nng thread. */
void client__timer_cb(void *arg);

/*
 * A caller's stop flag (mr_consume_run, mr_consumer_resubscribe): read with
 * an atomic load, so that another thread may set it with an atomic store
 * and a signal handler with a plain one. NULL never stops.
 */
static inline bool
client__stopped(const volatile int *stop)
{
	return stop != NULL && __atomic_load_n(stop, __ATOMIC_RELAXED) != 0;
}

#endif
