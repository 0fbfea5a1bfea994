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
#define SRV__SWEEP_MS 100
#define SRV__DRAINING_WHY                                                     \
	"mailroomd is draining; nothing of this request was written: send it " \
	"again to another instance or after it restarts"
// Publisher streams known at once, and how long an idle one is kept.
#define SRV__MAX_STREAMS 65536
#define SRV__STREAM_IDLE_MS (10 * 60 * 1000)

struct mri_config;
struct mri_lag;

enum srv_state { SRV_RECV, SRV_WORK, SRV_SEND };

struct srv_topic {
	struct srv_topic *next;
	char              name[];
};

struct srv_ctx {
	struct mri_server    *s;
	nng_ctx               ctx;
	nng_aio              *aio;
	enum srv_state        state;
	nng_msg              *req;
	struct mri_pub_view  *views;
	bool                  sequenced; /* oitem is in the order */
	struct mri_order_item oitem;
	/* A PUBLISH's records and their headers, kept from request to
	 * request so that a steady stream allocates nothing here. */
	struct mri_pub_batch  batch;
	uint32_t              recs_cap;
	struct mri_hdr_view  *hdrs;
	size_t                hdrs_cap;
	uint32_t              count;
	/* The reply goes when both the batch and its hand-off are done. */
	atomic_uint           guard;
	struct srv_topic     *topics;
	struct mri_wbuf       out;
};

struct mri_server {
	nng_socket              sock;
	struct mri_listeners   *lsn; /* NULL until started */
	char                  **urls;
	size_t                  nurls;
	struct srv_ctx         *ctxs;
	size_t                  nctx;
	struct mri_publisher   *pub;
	struct mri_producer    *prod; /* the publisher's, borrowed */
	struct mri_consume     *consume;
	struct mri_embedded    *emb;
	char                   *bootstrap;
	struct mri_order_table *order;
	uint64_t                order_wait_ms;
	nng_aio                *sweep;
	atomic_int              stopping;
	size_t                  max_frame;
	struct mri_admin       *admin;
	struct mri_lag         *lag; /* the lag monitor (server_lag.c) */
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

/* ---- broker/server_lag.c ---- */

/* Start the lag monitor (s->lag): its own handle, from the bootstrap and
 * the pass-through settings; the groups it tracks on its own are those of
 * s->consume's subscriptions. After the consume side, before the admin.
 * @returns MR_OK or an mr_err with a sentence in errstr. */
int srv__lag_new(struct mri_server *s, const struct mri_config *cfg,
		 const char *bootstrap, char *errstr, size_t errstr_size);

/* ---- broker/server_publish.c ---- */

/* A PUBLISH request: decode, prepare, wait for its turn, submit. */
void srv__publish(struct srv_ctx *c, const uint8_t *body, size_t len,
		  uint16_t flags);
/* The sweep aio's callback: refuses requests that waited in vain. */
void srv__sweep_cb(void *arg);
/* Refuse requests taken back from the order: nothing of them was handed
 * off. */
void srv__refuse_parked(struct mri_order_item *list, int code,
			const char *why);

#endif
