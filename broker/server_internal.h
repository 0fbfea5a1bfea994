/*
 * What the front door (broker/server.c: the request loop, ADMIN, consume
 * ops, life), its PUBLISH requests (broker/server_publish.c: the frame,
 * the order of a publisher's requests, the publisher's batch, the reply)
 * and STATUS (broker/status.c) share: the server and its request contexts.
 *
 * Thread safety: as broker/server.h; a context belongs to the thread that
 * completed its last nng operation, or to the thread handing it off.
 */
#ifndef MRI_SERVER_INTERNAL_H
#define MRI_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "bridge/publish.h"
#include "order.h"
#include "proto/frame.h"

// How often requests waiting for their turn are checked for expiry.
// On a thread of mailroomd's own, not an nng timer: nng 1.5.2's expiry
// thread spins on the clock for up to a millisecond each time a timer of
// its comes due (it expires what is strictly past), which at ten sweeps a
// second was 1 % of a core while idle (docs/ARCHITECTURE.md).
#define SRV__SWEEP_MS 100
#define SRV__DRAINING_WHY                                                     \
	"mailroomd is draining; nothing of this request was written: send it " \
	"again to another instance or after it restarts"
// Publisher streams known at once, and how long an idle one is kept.
#define SRV__MAX_STREAMS 65536
#define SRV__STREAM_IDLE_MS (10 * 60 * 1000)

struct mri_config;
struct mri_lag;
struct mri_bp;
struct mri_bp_rec;

enum srv_state { SRV_RECV, SRV_WORK, SRV_SEND };

struct srv_topic {
	struct srv_topic *next;
	char              name[];
};

// What a context keeps from one request to the next (srv__request_free):
// room for up to this many records (their views, records, headers and
// backpressure entries, about 450 bytes a record), a reply buffer up to
// this size, and up to this many topic names. A larger request's room is
// freed when it is answered: kept in each of max_inflight contexts,
// 1,000-record requests held about 100 MB whatever the number of requests
// in flight (server_drain_test.c checks the bound).
#define SRV__KEEP_RECS 128
#define SRV__KEEP_OUT (16u << 10)
#define SRV__KEEP_TOPICS 16

struct srv_ctx {
	struct mri_server    *s;
	nng_ctx               ctx;
	nng_aio              *aio;
	enum srv_state        state;
	nng_msg              *req;
	struct mri_pub_view  *views; /* kept: srv__request_free */
	uint32_t              views_cap;
	bool                  sequenced; /* oitem is in the order */
	struct mri_order_item oitem;
	/* A PUBLISH's records and their headers, kept from request to
	 * request so that a steady stream allocates nothing here. */
	struct mri_pub_batch  batch;
	uint32_t              recs_cap;
	struct mri_hdr_view  *hdrs;
	size_t                hdrs_cap;
	uint32_t              count;
	uint64_t              t0_us; /* when it arrived (mono), for metrics */
	/* The reply goes when both the batch and its hand-off are done. */
	atomic_uint           guard;
	/* Backpressure (server_bp.c): the records as the gate sees them,
	 * and a held request's place in the server's held list. */
	struct mri_bp_rec    *bpr;
	uint32_t              bpr_cap;
	bool                  bp_used;  /* the acks carry its fields */
	uint32_t              held_ms;  /* how long it was held */
	uint64_t              held_since, held_until; /* mono ms */
	struct srv_ctx       *hnext;
	struct srv_topic     *topics;
	struct mri_wbuf       out;
};

struct mri_server {
	nng_socket              sock;
	struct mri_listeners   *lsn; /* NULL until started */
	char                  **urls;
	size_t                  nurls;
	char                    inproc[64]; /* the HTTP API's listener */
	bool                    want_inproc; /* the HTTP API is on */
	struct srv_ctx         *ctxs;
	size_t                  nctx;
	struct mri_publisher   *pub;
	struct mri_producer    *prod; /* the publisher's, borrowed */
	struct mri_consume     *consume;
	struct mri_embedded    *emb;
	char                   *bootstrap;
	struct mri_order_table *order;
	uint64_t                order_wait_ms;
	pthread_t               sweeper;     /* srv__sweeper_main */
	bool                    sweeper_run; /* it was started */
	bool                    sweep_stop;  /* under sweep_lock */
	pthread_mutex_t         sweep_lock;  /* with sweep_cv */
	pthread_cond_t          sweep_cv;
	atomic_int              stopping;
	size_t                  max_frame;
	struct mri_admin       *admin;
	struct mri_lag         *lag; /* the lag monitor (server_lag.c) */
	struct mri_bp          *bp;  /* backpressure's gate (server_bp.c) */
	struct mri_metrics     *metrics; /* broker/metrics.h */
	pthread_mutex_t         held_lock;
	struct srv_ctx         *held; /* requests held by backpressure */
	atomic_int              draining;
	atomic_int              busy;      /* requests not yet answered */
	pthread_mutex_t         idle_lock; /* with idle_cv: busy reached 0 */
	pthread_cond_t          idle_cv;
	int64_t                 started_ms;
	atomic_ullong           n_requests;
	atomic_ullong           n_refused;
};

/* Send c->out as the reply; the request is finished. */
void srv__send(struct srv_ctx *c);
/* Reply with an ERROR frame: "MR_NAME: why". */
void srv__reply_error(struct srv_ctx *c, int code, const char *why);

/* ---- broker/server_close.c ---- */

/* nng_close(\p sock) on a thread of its own, waiting up to \p timeout_ms.
 * @returns false if it did not return by then (nng's reaper is wedged: the
 * thread is left behind, and nothing of nng may be touched any more). */
bool srv__close_bounded(nng_socket sock, int timeout_ms);

/* ---- broker/server_new.c ---- */

/* A librdkafka configuration of \p bootstrap and \p client_id with the
 * configuration's pass-through settings (librdkafka.*).
 * @returns it (the caller's), or NULL with a sentence in errstr. */
rd_kafka_conf_t *srv__kafka_conf(const struct mri_config *cfg,
				 const char *bootstrap, const char *client_id,
				 char *errstr, size_t errstr_size);

/* ---- broker/server_lag.c ---- */

/* Start the lag monitor (s->lag): its own handle, from the bootstrap and
 * the pass-through settings; the groups it tracks on its own are those of
 * s->consume's subscriptions. After the consume side, before the admin.
 * @returns MR_OK or an mr_err with a sentence in errstr. */
int srv__lag_new(struct mri_server *s, const struct mri_config *cfg,
		 const char *bootstrap, char *errstr, size_t errstr_size);

/* ---- broker/server_bp.c ---- */

/* Make the gate (s->bp) with the configuration's bounds.
 * @returns MR_OK, or MR_ECONFIG / MR_ENOMEM with a sentence in errstr. */
int srv__bp_new(struct mri_server *s, const struct mri_config *cfg,
		char *errstr, size_t errstr_size);
/* The configuration's bounds, reloaded (when it has some). */
void srv__bp_reload(struct mri_server *s, const struct mri_config *cfg);
/* Whether \p c's records must wait (it is then held, and keeps its
 * stream's turn); else its refused records carry MR_EBUSY and the rest
 * are admitted. Called when its turn comes, before the hand-off. */
bool srv__bp_hold(struct srv_ctx *c);
/* Look at the held requests again: those whose partitions opened, or
 * whose block time passed, go (their refused records refused). With
 * \p code, every held request is refused with it (draining, stopping). */
void srv__bp_recheck(struct mri_server *s, int code, const char *why);
/* \p c's ack \p i's backpressure fields and, when refused, its
 * sentence (into \p buf). */
void srv__bp_ack(const struct srv_ctx *c, uint32_t i, struct mri_ack_view *a,
		 char *buf, size_t size);

/* ---- broker/server_publish.c ---- */

/* Hand \p c's batch to the producer now (the gate said so), then pass its
 * stream's turn on and hand off whatever it makes go. */
void srv__go(struct srv_ctx *c);

/* A PUBLISH request: decode, prepare, wait for its turn, submit. */
void srv__publish(struct srv_ctx *c, const uint8_t *body, size_t len,
		  uint16_t flags);
/* Start the sweeper: every SRV__SWEEP_MS it refuses requests that waited
 * for their turn in vain and rechecks backpressure's held requests.
 * @returns MR_OK or MR_ENOMEM. */
int srv__sweeper_start(struct mri_server *s);
/* Stop it and wait for it; any sweep under way ends first. */
void srv__sweeper_stop(struct mri_server *s);
/* Refuse requests taken back from the order: nothing of them was handed
 * off. */
void srv__refuse_parked(struct mri_order_item *list, int code,
			const char *why);

#endif
