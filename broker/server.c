#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "admin.h"
#include "bridge/embedded.h"
#include "config.h"
#include "consume.h"
#include "broker/backpressure.h"
#include "consumers/lag.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "listeners.h"
#include "metrics.h"
#include "mailroom/error.h"
#include "proto/assignment.h"
#include "proto/consume.h"
#include "proto/frame.h"
#include "server_internal.h"
#include "status.h"

// How long replies already handed to nng get to reach the wire at shutdown.
#define SRV__LINGER_MS 200
// How long closing the nng socket may take at shutdown (nng 1.5.2 can
// wedge there: see srv__close_bounded).
#define SRV__CLOSE_WAIT_MS 5000

static void srv__recv(struct srv_ctx *c);
static void srv__unbusy(struct mri_server *s);

/* A request is finished: its message goes; the views and topic names stay
 * for the next one (a steady stream allocates nothing for them), unless
 * there were many. */
static void
srv__request_free(struct srv_ctx *c)
{
	struct srv_topic *t, *n;
	size_t            nt = 0;

	for (t = c->topics; t != NULL; t = t->next)
		nt++;
	if (nt > SRV__KEEP_TOPICS) {
		for (t = c->topics; t != NULL; t = n) {
			n = t->next;
			free(t);
		}
		c->topics = NULL;
	}
	if (c->views_cap > SRV__KEEP_RECS) {
		free(c->views);
		c->views     = NULL;
		c->views_cap = 0;
	}
	if (c->recs_cap > SRV__KEEP_RECS) {
		free(c->batch.recs);
		c->batch.recs = NULL;
		c->recs_cap   = 0;
	}
	if (c->hdrs_cap > SRV__KEEP_RECS * 4) {
		free(c->hdrs);
		c->hdrs     = NULL;
		c->hdrs_cap = 0;
	}
	if (c->bpr_cap > SRV__KEEP_RECS) {
		free(c->bpr);
		c->bpr     = NULL;
		c->bpr_cap = 0;
	}
	if (c->out.cap > SRV__KEEP_OUT) {
		mri_wbuf_fini(&c->out);
		mri_wbuf_init(&c->out);
	}
	if (c->req)
		nng_msg_free(c->req);
	c->req   = NULL;
	c->count = 0;
}

/* The context is going: what srv__request_free kept goes too. */
static void
srv__ctx_fini(struct srv_ctx *c)
{
	struct srv_topic *t, *n;

	srv__request_free(c);
	for (t = c->topics; t != NULL; t = n) {
		n = t->next;
		free(t);
	}
	free(c->views);
	c->topics    = NULL;
	c->views     = NULL;
	c->views_cap = 0;
}

/* Send \p m (taken) as the reply; the request is finished. ERROR replies
 * count as refused. */
static void
srv__send_msg(struct srv_ctx *c, nng_msg *m)
{
	srv__request_free(c);
	if (nng_msg_len(m) > 3 &&
	    ((const uint8_t *)nng_msg_body(m))[3] == MRI_OP_ERROR)
		atomic_fetch_add(&c->s->n_refused, 1);
	c->state = SRV_SEND;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

/* Send c->out as the reply; the request is finished. */
void
srv__send(struct srv_ctx *c)
{
	nng_msg *m;

	if (c->out.err || nng_msg_alloc(&m, c->out.len) != 0) {
		// Out of memory: answer with the smallest frame we can.
		mri_error_encode(&c->out, MR_ENOMEM,
				 "mailroomd is out of memory");
		if (nng_msg_alloc(&m, c->out.len) != 0) {
			srv__request_free(c);
			srv__unbusy(c->s);
			srv__recv(c);
			return;
		}
	}
	memcpy(nng_msg_body(m), c->out.data, c->out.len);
	srv__send_msg(c, m);
}

void
srv__reply_error(struct srv_ctx *c, int code, const char *why)
{
	char msg[MRI_ERRMSG_MAX];

	snprintf(msg, sizeof(msg), "%s: %s", mr_err_name(code), why);
	mri_error_encode(&c->out, (uint16_t)code, msg);
	srv__send(c);
}

static void
srv__reply_json(struct srv_ctx *c, uint8_t op, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);

	if (text == NULL) {
		srv__reply_error(c, MR_ENOMEM, "cannot encode the reply");
		return;
	}
	mri_frame_begin(&c->out, op);
	mri_wbuf_put(&c->out, text, strlen(text));
	mri_frame_end(&c->out);
	free(text);
	srv__send(c);
}
/* ---- ADMIN ------------------------------------------------------------ */

/* An ADMIN request's reply, on an admin worker thread. */
static void
srv__admin_done(void *arg, json_t *reply)
{
	struct srv_ctx *c = arg;

	srv__reply_json(c, MRI_OP_ADMIN_REPLY, reply);
	json_decref(reply);
}

static void
srv__admin(struct srv_ctx *c, const uint8_t *body, size_t len)
{
	json_error_t jerr;
	json_t      *req;
	char         msg[256];
	int          rc;

	req = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL || !json_is_object(req)) {
		snprintf(msg, sizeof(msg),
			 "ADMIN body is not a JSON object (line %d column "
			 "%d: %s)",
			 jerr.line, jerr.column,
			 req ? "not an object" : jerr.text);
		json_decref(req);
		srv__reply_error(c, MR_EPROTO, msg);
		return;
	}
	rc = mri_admin_submit(c->s->admin, req, srv__admin_done, c);
	if (rc == MR_OK)
		return;
	json_decref(req);
	if (rc == MR_EBUSY)
		srv__reply_error(c, rc,
				 "too many admin requests are waiting; retry "
				 "later");
	else if (rc == MR_ESHUTDOWN)
		srv__reply_error(c, rc, "mailroomd is draining");
	else
		srv__reply_error(c, MR_ENOMEM, "cannot hold the request");
}

/* ---- the request loop ------------------------------------------------- */

/* The connection a request came on: consumer sessions belong to one. */
static uint32_t
srv__pipe(struct srv_ctx *c)
{
	return (uint32_t)nng_pipe_id(nng_msg_get_pipe(c->req));
}

/* A FETCH's or SETTLE's reply, encoded in \p m by broker/consume.c (NULL:
 * out of memory), sent as it is, on the thread that finished it. */
static void
srv__fetch_reply(void *arg, nng_msg *m)
{
	struct srv_ctx *c = arg;

	if (m == NULL) {
		srv__reply_error(c, MR_ENOMEM, "mailroomd is out of memory");
		return;
	}
	srv__send_msg(c, m);
}

static void
srv__dispatch(struct srv_ctx *c)
{
	struct mri_server   *s    = c->s;
	const uint8_t       *data = nng_msg_body(c->req);
	size_t               len  = nng_msg_len(c->req);
	struct mri_frame_hdr h;
	const char          *why;
	int                  rc;
	json_t              *st;
	struct mri_status    status;

	if (len > s->max_frame) {
		char msg[200];

		snprintf(msg, sizeof(msg),
			 "frame of %zu bytes larger than max_frame_bytes "
			 "(%zu): send fewer messages per request, or raise "
			 "mailroomd's max_frame_bytes",
			 len, s->max_frame);
		srv__reply_error(c, MR_ETOOBIG, msg);
		return;
	}
	if ((rc = mri_frame_parse_hdr(data, len, &h, &why)) != MR_OK) {
		srv__reply_error(c, rc, why);
		return;
	}
	if (h.flags != 0 && h.op != MRI_OP_PUBLISH) {
		srv__reply_error(c, MR_EPROTO, "unknown frame flags");
		return;
	}
	// Acks are still taken while draining: the work behind them is done.
	if (atomic_load(&s->draining) && h.op != MRI_OP_SETTLE) {
		srv__reply_error(c, MR_ESHUTDOWN,
				 "mailroomd is draining; send this to another "
				 "instance or retry after it restarts");
		return;
	}
	switch (h.op) {
	case MRI_OP_PUBLISH:
		srv__publish(c, data + MRI_FRAME_HDR_LEN, h.body_len, h.flags);
		break;
	case MRI_OP_STATUS:
		mri_server_status(s, &status);
		st = mri_status_json(&status);
		srv__reply_json(c, MRI_OP_STATUS_REPLY, st);
		json_decref(st);
		break;
	case MRI_OP_ADMIN:
		srv__admin(c, data + MRI_FRAME_HDR_LEN, h.body_len);
		break;
	case MRI_OP_SUBSCRIBE:
		mri_consume_subscribe(s->consume, srv__pipe(c),
				      data + MRI_FRAME_HDR_LEN, h.body_len,
				      &c->out);
		srv__send(c);
		break;
	case MRI_OP_FETCH:
		if (mri_consume_fetch(s->consume, srv__pipe(c),
				      data + MRI_FRAME_HDR_LEN,
				      h.body_len, srv__fetch_reply, c,
				      &c->out) != MR_OK)
			srv__send(c);
		break;
	case MRI_OP_SETTLE:
		if (mri_consume_settle(s->consume, srv__pipe(c),
				       data + MRI_FRAME_HDR_LEN,
				       h.body_len, srv__fetch_reply, c,
				       &c->out) != MR_OK)
			srv__send(c);
		break;
	case MRI_OP_UNSUBSCRIBE:
		mri_consume_unsubscribe(s->consume, srv__pipe(c),
					data + MRI_FRAME_HDR_LEN,
					h.body_len, &c->out);
		srv__send(c);
		break;
	case MRI_OP_ASSIGNMENT:
		mri_consume_assignment(s->consume, srv__pipe(c),
				       data + MRI_FRAME_HDR_LEN, h.body_len,
				       &c->out);
		srv__send(c);
		break;
	default:
		srv__reply_error(c, MR_EUNKNOWNOP, "unknown operation code");
		break;
	}
}

static void
srv__recv(struct srv_ctx *c)
{
	c->state = SRV_RECV;
	nng_ctx_recv(c->ctx, c->aio);
}

static void
srv__aio_cb(void *arg)
{
	struct srv_ctx *c = arg;
	int             rv = nng_aio_result(c->aio);

	switch (c->state) {
	case SRV_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		if (rv != 0) {
			srv__recv(c);
			return;
		}
		c->req   = nng_aio_get_msg(c->aio);
		c->state = SRV_WORK;
		atomic_fetch_add(&c->s->busy, 1);
		srv__dispatch(c);
		return;
	case SRV_SEND:
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		srv__unbusy(c->s);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		srv__recv(c);
		return;
	case SRV_WORK:
		return;
	}
}

int
mri_server_start(struct mri_server *s, char *errstr, size_t errstr_size)
{
	char **urls;
	int    rv;

	if (s->nurls == 0) {
		snprintf(errstr, errstr_size, "listen: no URL to listen on");
		return MR_ECONFIG;
	}
	s->ctxs = calloc(s->nctx, sizeof(*s->ctxs));
	if (s->ctxs == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < s->nctx; i++) {
		struct srv_ctx *c = &s->ctxs[i];

		c->s = s;
		mri_wbuf_init(&c->out);
		if ((rv = nng_aio_alloc(&c->aio, srv__aio_cb, c)) != 0 ||
		    (rv = nng_ctx_open(&c->ctx, s->sock)) != 0) {
			snprintf(errstr, errstr_size, "nng: %s",
				 nng_strerror(rv));
			return MR_ETRANSPORT;
		}
	}
	// Every URL configured, and, when the HTTP API is on, an inproc://
	// one for its connections (broker/http.h), the last.
	urls = calloc(s->nurls + 1, sizeof(*urls));
	if (urls == NULL)
		return MR_ENOMEM;
	memcpy(urls, s->urls, s->nurls * sizeof(*urls));
	if (s->want_inproc) {
		snprintf(s->inproc, sizeof(s->inproc),
			 "inproc://mailroomd.%d.%p", (int)getpid(), (void *)s);
		urls[s->nurls] = s->inproc;
	}
	rv = mri_listeners_start(&s->lsn, s->sock, urls,
				 s->nurls + (s->want_inproc ? 1 : 0), errstr,
				 errstr_size);
	free(urls);
	if (rv != MR_OK)
		return rv;
	for (size_t i = 0; i < s->nctx; i++)
		srv__recv(&s->ctxs[i]);
	if (srv__sweeper_start(s) != MR_OK) {
		snprintf(errstr, errstr_size,
			 "out of memory: no sweeper thread");
		return MR_ENOMEM;
	}
	return MR_OK;
}

const char *
mri_server_inproc(const struct mri_server *s)
{
	return s->inproc;
}

void
mri_server_reload(struct mri_server *s, const struct mri_config *cfg)
{
	mri_publisher_set_envelope(s->pub, cfg->ce_source, cfg->ce_type);
	mri_publisher_set_lean(s->pub, strcmp(cfg->envelope, "lean") == 0);
	mri_lag_set_interval(s->lag, (uint32_t)cfg->lag_interval_ms);
	srv__bp_reload(s, cfg);
}

/* A request was answered: wake srv__wait_idle when none is left. */
static void
srv__unbusy(struct mri_server *s)
{
	if (atomic_fetch_sub(&s->busy, 1) == 1) {
		pthread_mutex_lock(&s->idle_lock);
		pthread_cond_broadcast(&s->idle_cv);
		pthread_mutex_unlock(&s->idle_lock);
	}
}

/* Wait up to \p timeout_ms until every request was answered (ADMIN ones
 * included: their context is busy until the reply is sent). */
static void
srv__wait_idle(struct mri_server *s, int timeout_ms)
{
	uint64_t deadline = mri_deadline_in((uint64_t)timeout_ms);

	pthread_mutex_lock(&s->idle_lock);
	while (atomic_load(&s->busy) > 0 &&
	       mri_cond_wait_until(&s->idle_cv, &s->idle_lock, deadline) !=
		   ETIMEDOUT)
		;
	pthread_mutex_unlock(&s->idle_lock);
}

void
mri_server_drain(struct mri_server *s, int timeout_ms)
{
	// Closing a listener would close the connections it accepted, and
	// with them the replies still owed: while draining, new requests are
	// answered MR_ESHUTDOWN; the listeners close once all is answered.
	// (No nng_pipe_notify: a REM_POST callback was once suspected of
	// making the socket stop serving; the cause was nng's issue #1518,
	// see broker/listeners.h.)
	atomic_store(&s->draining, 1);
	// Requests held by backpressure or waiting for their turn wait for
	// what will now be refused: refuse them too.
	srv__bp_recheck(s, MR_ESHUTDOWN, SRV__DRAINING_WHY);
	srv__refuse_parked(mri_order_expire(s->order, mri_mono_ms(), 0),
			   MR_ESHUTDOWN, SRV__DRAINING_WHY);
	// Fetches waiting for messages are answered now, empty.
	if (s->consume != NULL)
		mri_consume_drain(s->consume);
	mri_notice("component=server msg=\"draining: %d requests in "
		   "flight\"",
		   atomic_load(&s->busy));
	srv__wait_idle(s, timeout_ms);
	// Their replies are sent: the admin workers are done or ending.
	(void)mri_admin_drain(s->admin, 1000);
	if (atomic_load(&s->busy) > 0) {
		mri_warn("component=server msg=\"Kafka did not confirm "
			 "everything within %d ms; failing the rest back to "
			 "their publishers\"",
			 timeout_ms);
		mri_producer_purge(s->prod);
		srv__wait_idle(s, 5000);
	}
	// A reply handed to nng is queued, not yet written: give the
	// transports a moment before their connections close.
	usleep(SRV__LINGER_MS * 1000);
	mri_listeners_close(s->lsn);
}

// A server left behind by mri_server_free, kept reachable (for
// LeakSanitizer at the exit that follows, and for a debugger).
static struct mri_server *srv__left_behind;

bool
mri_server_free(struct mri_server *s)
{
	if (s == NULL)
		return true;
	// Admin first: its workers reply on the contexts, and
	// fault.producer_fatal reaches the producer.
	mri_admin_free(s->admin);
	s->admin = NULL;
	// The lag monitor before the consume side it asks.
	mri_lag_free(s->lag);
	s->lag = NULL;
	// Consumers and the producer first: their last replies still reach
	// the contexts. Closing the consumers commits what was acked.
	mri_consume_free(s->consume);
	s->consume = NULL;
	atomic_store(&s->stopping, 1);
	srv__sweeper_stop(s);
	if (s->bp != NULL)
		srv__bp_recheck(s, MR_ESHUTDOWN, "mailroomd stopped");
	if (s->order != NULL)
		srv__refuse_parked(mri_order_expire(s->order, UINT64_MAX, 0),
				   MR_ESHUTDOWN, "mailroomd stopped");
	mri_publisher_free(s->pub);
	s->prod = NULL;
	mri_listeners_close(s->lsn);
	if (nng_socket_id(s->sock) > 0 &&
	    !srv__close_bounded(s->sock, SRV__CLOSE_WAIT_MS)) {
		// The contexts and their aios belong to the wedged close:
		// the rest of the server is left as it is.
		int left = atomic_load(&s->busy);

		mri_warn("component=server inflight=%d msg=\"nng did not "
			 "close the socket within %d ms: nng 1.5.2's reaper is "
			 "wedged by a dropped connection (a known nng issue, "
			 "see docs/ARCHITECTURE.md); %s, and Kafka's parts were "
			 "closed before this; exiting anyway\"",
			 left, SRV__CLOSE_WAIT_MS,
			 left == 0 ? "every request was answered"
				   : "some requests were not answered");
		srv__left_behind = s;
		return false;
	}
	for (size_t i = 0; s->ctxs && i < s->nctx; i++) {
		struct srv_ctx *c = &s->ctxs[i];

		if (c->aio) {
			nng_aio_stop(c->aio);
			nng_aio_free(c->aio);
		}
		srv__ctx_fini(c);
		mri_wbuf_fini(&c->out);
		free(c->batch.recs);
		free(c->hdrs);
		free(c->bpr);
	}
	if (s->bp != NULL) {
		mri_bp_free(s->bp);
		pthread_mutex_destroy(&s->held_lock);
	}
	mri_order_free(s->order);
	mri_metrics_free(s->metrics);
	for (size_t i = 0; i < s->nurls; i++)
		free(s->urls[i]);
	free(s->urls);
	mri_listeners_free(s->lsn);
	free(s->ctxs);
	free(s->bootstrap);
	pthread_cond_destroy(&s->idle_cv);
	pthread_mutex_destroy(&s->idle_lock);
	pthread_cond_destroy(&s->sweep_cv);
	pthread_mutex_destroy(&s->sweep_lock);
	free(s);
	return true;
}
