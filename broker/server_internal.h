/*
 * What the front door (broker/server.c: the request loop, STATUS, ADMIN,
 * consume ops, life) and its PUBLISH pipeline (broker/server_publish.c:
 * envelope, dedupe, the order of a publisher's requests, the producer)
 * share: the server and its request contexts.
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

#include "bridge/dedupe.h"
#include "bridge/producer.h"
#include "core/uuid7.h"
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

enum srv_state { SRV_RECV, SRV_WORK, SRV_SEND };

struct srv_topic {
	struct srv_topic *next;
	char              name[];
};

struct srv_ctx;

/* One message of a PUBLISH request. */
struct srv_slot {
	struct mri_dedupe_waiter waiter; /* first: a waiter is its slot */
	struct srv_ctx          *c;
	struct mri_pmsg          pm;
	struct mri_dedupe_entry *dentry; /* the entry this slot writes */
	const char              *id;
	uint8_t                  id_len;
	uint8_t                  flags;
	uint8_t                  waiting; /* a duplicate waiting on another */
	uint16_t                 status;
	int32_t                  partition;
	int64_t                  offset;
	const char              *why;
	char                     idbuf[MRI_UUID_STRLEN + 1];
};

struct srv_ctx {
	struct mri_server   *s;
	nng_ctx              ctx;
	nng_aio             *aio;
	enum srv_state       state;
	nng_msg             *req;
	struct mri_pub_view *views;
	bool                 sequenced; /* oitem is in the order */
	struct mri_order_item oitem;
	size_t               nsend;
	struct srv_slot     *slots; /* kept from request to request */
	uint32_t             slots_cap;
	struct mri_pmsg    **send;  /* likewise, with rcs and whys */
	int                 *rcs;
	const char         **whys;
	uint32_t             count;
	atomic_uint          pending;
	struct srv_topic    *topics;
	struct mri_wbuf      out;
};

struct mri_server {
	nng_socket           sock;
	struct mri_listeners *lsn; /* NULL until started */
	char               **urls;
	size_t               nurls;
	struct srv_ctx      *ctxs;
	size_t               nctx;
	struct mri_producer *prod;
	struct mri_consume  *consume;
	struct mri_embedded *emb;
	char                *bootstrap;
	pthread_mutex_t      dlock;
	struct mri_dedupe   *dedupe; /* NULL: disabled */
	struct mri_order_table    *order;
	uint64_t             order_wait_ms;
	nng_aio             *sweep;
	atomic_int           stopping;
	uint64_t             dedupe_window_ms;
	pthread_mutex_t      cfg_lock;
	char                 ce_source[256];
	char                 ce_type[256];
	size_t               max_frame;
	struct mri_admin    *admin;
	atomic_int           draining;
	atomic_int           busy;      /* requests not yet answered */
	pthread_mutex_t      idle_lock; /* with idle_cv: busy reached 0 */
	pthread_cond_t       idle_cv;
	int64_t              started_ms;
	atomic_ullong        n_requests;
	atomic_ullong        n_confirmed;
	atomic_ullong        n_failed;
	atomic_ullong        n_duplicates;
	atomic_ullong        n_refused;
};

/* The clocks: monotonic for waits, wall for ce_time. */
uint64_t  srv__mono_ms(void);
long long srv__wall_ms(void);

/* Send c->out as the reply; the request is finished. */
void srv__send(struct srv_ctx *c);
/* Reply with an ERROR frame: "MR_NAME: why". */
void srv__reply_error(struct srv_ctx *c, int code, const char *why);

/* ---- broker/server_publish.c ---- */

/* A PUBLISH request: decode, envelope, wait for its turn, hand off. */
void srv__publish(struct srv_ctx *c, const uint8_t *body, size_t len,
		  uint16_t flags);
/* The producer's reports: on the producer's thread. */
void srv__on_report(void *arg, struct mri_presult *r, size_t n);
/* The sweep aio's callback: refuses requests that waited in vain. */
void srv__sweep_cb(void *arg);
/* Refuse requests taken back from the order: nothing of them was handed
 * off. */
void srv__refuse_parked(struct mri_order_item *list, int code,
			const char *why);

#endif
