#include "mailroom/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "client/client_internal.h"
#include "core/uuid7.h"
#include "proto/frame.h"

#define CLIENT__TIMEOUT_MS 60000
#define CLIENT__INFLIGHT 64
#define CLIENT__MAX_FRAME (16 << 20)
#define CLIENT__STD_HDRS 5
// The longest pause between two sends of a refused publish.
#define CLIENT__RETRY_MAX_MS 1000
// How often a publish held back from a draining mailroomd looks again.
#define CLIENT__HOLD_MS 50

struct cli_call;
typedef void (*cli_done)(const struct cli_call *call, int status,
			 const char *why, nng_msg *reply);

/* What a completion needs: copied out of the request before the request
 * goes back to the pool. */
struct cli_call {
	cli_done      done;
	mr_publish_cb cb;
	void         *arg;
	uint32_t      n;
	uint8_t      *frame; /* a PUBLISH request's own copy, to name its
				messages when it fails; freed after done */
	size_t        frame_len;
	bool          keep_reply; /* done owns the reply (any status) */
};

struct cli_req {
	mr_client      *c;
	nng_ctx         ctx;
	nng_aio        *aio;
	int             sending;
	int             extra_ms; /* added to the client's timeout */
	uint8_t         op;
	struct cli_call call;
	struct cli_req *next;     /* in c->idle */
	struct cli_req *all_next; /* in c->all, for free */
	/* A publish: its place in the client's stream, and its resends. */
	uint32_t        seq;
	bool            queued;   /* in c->pub_head's list */
	nng_aio        *timer;    /* waits before a publish is sent again */
	bool            in_doubt; /* a send's outcome was never known */
	int             sends;
	int             last_err; /* the last definite refusal */
	nng_time        deadline;
	struct cli_req *pub_prev, *pub_next;
};

struct mr_client {
	nng_socket      sock;
	int             timeout_ms;
	int             max_inflight;
	size_t          max_frame;
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	int             inflight; /* requests out of the pool */
	int             pending;  /* calls whose completion has not returned */
	int             nreqs;
	struct cli_req *idle;
	struct cli_req *all; /* every req, for free */
	/* Publishes are numbered in one stream, and mailroomd hands them to
	 * Kafka in that order; the list holds those not yet completed, oldest
	 * first (its head's seq is the base sent with each). */
	uint64_t        stream;
	uint32_t        seq_next;
	struct cli_req *pub_head, *pub_tail;
	/* The connection, and one that said it is draining: what is sent to
	 * that one would be refused, and could be lost with it. */
	atomic_uint     pipe;
	atomic_uint     draining_pipe;
};

static _Thread_local char client__last_error[256];

const char *
mr_client_last_error(void)
{
	return client__last_error;
}

void
client__set_last_error(const char *why)
{
	snprintf(client__last_error, sizeof(client__last_error), "%s",
		 why ? why : "");
}

static int
client__nng_err(int rv)
{
	switch (rv) {
	case 0:
		return MR_OK;
	case NNG_ETIMEDOUT:
		return MR_ETIMEDOUT;
	case NNG_ECONNREFUSED:
	case NNG_EADDRINVAL:
	case NNG_ENOENT:
		return MR_ECONNREFUSED;
	case NNG_ECLOSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
		return MR_ECLOSED;
	case NNG_ENOMEM:
		return MR_ENOMEM;
	case NNG_EINVAL:
		return MR_EINVAL;
	case NNG_EMSGSIZE:
		return MR_ETOOBIG;
	default:
		return MR_ETRANSPORT;
	}
}

static void client__aio_cb(void *arg);
static void client__timer_cb(void *arg);

static void
client__release(struct cli_req *r, bool call_done)
{
	mr_client *c = r->c;

	pthread_mutex_lock(&c->lock);
	if (r->queued) {
		if (r->pub_prev)
			r->pub_prev->pub_next = r->pub_next;
		else
			c->pub_head = r->pub_next;
		if (r->pub_next)
			r->pub_next->pub_prev = r->pub_prev;
		else
			c->pub_tail = r->pub_prev;
		r->queued = false;
	}
	r->next = c->idle;
	c->idle = r;
	c->inflight--;
	c->pending -= call_done;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
}

static void
client__call_done(mr_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->pending--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
}

static void
client__req_reset(struct cli_req *r)
{
	r->extra_ms = 0;
	r->in_doubt = false;
	r->sends    = 0;
	r->last_err = MR_OK;
}

/* Take an idle request, making one if fewer than max_inflight exist;
 * blocks while all are in flight. */
static int
client__acquire(mr_client *c, struct cli_req **out)
{
	struct cli_req *r;
	int             rv;

	pthread_mutex_lock(&c->lock);
	while (c->idle == NULL && c->nreqs >= c->max_inflight)
		pthread_cond_wait(&c->cv, &c->lock);
	if ((r = c->idle) != NULL) {
		c->idle = r->next;
		c->inflight++;
		c->pending++;
		pthread_mutex_unlock(&c->lock);
		client__req_reset(r);
		*out = r;
		return MR_OK;
	}
	c->nreqs++;
	c->inflight++;
	c->pending++;
	pthread_mutex_unlock(&c->lock);

	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto fail;
	r->c = c;
	// The pause before a resend has an aio of its own: in nng 1.5.2 an
	// aio that slept takes a later timeout of its own for a success.
	if ((rv = nng_aio_alloc(&r->aio, client__aio_cb, r)) != 0 ||
	    (rv = nng_aio_alloc(&r->timer, client__timer_cb, r)) != 0 ||
	    (rv = nng_ctx_open(&r->ctx, c->sock)) != 0) {
		if (r->aio)
			nng_aio_free(r->aio);
		if (r->timer)
			nng_aio_free(r->timer);
		free(r);
		goto fail;
	}
	nng_aio_set_timeout(r->aio, c->timeout_ms);
	pthread_mutex_lock(&c->lock);
	r->all_next = c->all;
	c->all      = r;
	pthread_mutex_unlock(&c->lock);
	*out = r;
	return MR_OK;
fail:
	pthread_mutex_lock(&c->lock);
	c->nreqs--;
	c->inflight--;
	c->pending--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	return MR_ENOMEM;
}

static void
client__finish(struct cli_req *r, int status, const char *why, nng_msg *m)
{
	mr_client      *c    = r->c;
	struct cli_call call = r->call;

	// The request goes back to the pool first, so that the callback may
	// publish again without waiting for itself; drain waits for the
	// callback to return.
	client__release(r, false);
	call.done(&call, status, why, m);
	if (m && !call.keep_reply)
		nng_msg_free(m);
	free(call.frame);
	client__call_done(c);
}

static void client__pub_send(struct cli_req *r);

/* nng's connection events, on one of its threads. */
static void
client__pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	mr_client *c  = arg;
	unsigned   id = (unsigned)nng_pipe_id(p);

	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_store(&c->pipe, id);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_compare_exchange_strong(&c->pipe, &id, 0u);
}

static int
client__remaining_ms(const struct cli_req *r)
{
	nng_time now = nng_clock();

	return r->deadline > now ? (int)(r->deadline - now) : 0;
}

/* A publish whose request failed as a whole: send it again, with the same
 * ids and seq, while its deadline allows, when its outcome is unknown (the
 * connection was lost) or it was refused for now (mailroomd draining, or
 * an earlier request of the stream missing). @returns true if it will be
 * sent again. */
static bool
client__pub_retry(struct cli_req *r, int nng_rv, bool sent, int status)
{
	int delay;

	if (nng_rv != 0) {
		if (sent)
			r->in_doubt = true;
		if (nng_rv == NNG_ETIMEDOUT || nng_rv == NNG_ECLOSED ||
		    nng_rv == NNG_ECANCELED)
			return false;
		delay = 0; // the send waits in nng's queue for a connection
	} else if (status == MR_ESHUTDOWN) {
		// Sent again once this connection is gone (client__pub_send).
		r->last_err = status;
		delay       = CLIENT__HOLD_MS;
	} else if (status == MR_EORDER) {
		r->last_err = status;
		delay       = r->sends < 6 ? 10 << r->sends : CLIENT__RETRY_MAX_MS;
	} else {
		return false;
	}
	if (client__remaining_ms(r) <= delay)
		return false;
	if (delay == 0) {
		client__pub_send(r);
		return true;
	}
	nng_sleep_aio(delay, r->timer);
	return true;
}

static void client__pub_give_up(struct cli_req *r, int status,
				const char *why, nng_msg *m);

/* The pause before a publish is sent again is over. */
static void
client__timer_cb(void *arg)
{
	struct cli_req *r  = arg;
	int             rv = nng_aio_result(r->timer);

	if (rv != 0)
		client__pub_give_up(r, r->last_err, nng_strerror(rv), NULL);
	else
		client__pub_send(r);
}

/* The outcome of a publish that gave up: unknown if any send of it may
 * have been carried out. */
static void
client__pub_give_up(struct cli_req *r, int status, const char *why,
		    nng_msg *m)
{
	char buf[MRI_ERRMSG_MAX + 1];

	if (status == MR_OK)
		status = MR_ECLOSED;
	if (r->in_doubt) {
		snprintf(buf, sizeof(buf),
			 "no answer from mailroomd within %d ms (%d sends): "
			 "the messages may or may not have been written; "
			 "publish them again with the same ids",
			 r->c->timeout_ms, r->sends);
		client__finish(r, MR_EINDOUBT, buf, m);
		return;
	}
	if (status == MR_ETIMEDOUT || status == MR_ECLOSED) {
		snprintf(buf, sizeof(buf),
			 "mailroomd could not be reached within %d ms; nothing "
			 "was sent",
			 r->c->timeout_ms);
		client__finish(r, MR_ECONNREFUSED, buf, m);
		return;
	}
	client__finish(r, status, why, m);
}

static void
client__aio_cb(void *arg)
{
	struct cli_req      *r  = arg;
	int                  rv = nng_aio_result(r->aio);
	bool                 pub = r->op == MRI_OP_PUBLISH;
	nng_msg             *m;
	struct mri_frame_hdr h;
	const char          *why;
	uint16_t             code, mlen;
	const char          *msg;
	char                 buf[MRI_ERRMSG_MAX + 1];
	int                  rc;

	if (r->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(r->aio));
			if (pub && client__pub_retry(r, rv, false, MR_OK))
				return;
			if (pub) {
				client__pub_give_up(r, client__nng_err(rv),
						    nng_strerror(rv), NULL);
				return;
			}
			client__finish(r, client__nng_err(rv),
				       nng_strerror(rv), NULL);
			return;
		}
		r->sending = 0;
		if (pub)
			nng_aio_set_timeout(r->aio, client__remaining_ms(r));
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	if (rv != 0) {
		if (pub) {
			if (client__pub_retry(r, rv, true, MR_OK))
				return;
			client__pub_give_up(r, client__nng_err(rv),
					    nng_strerror(rv), NULL);
			return;
		}
		client__finish(r, client__nng_err(rv),
			       rv == NNG_ETIMEDOUT
				   ? "no reply from mailroomd in time"
				   : nng_strerror(rv),
			       NULL);
		return;
	}
	m  = nng_aio_get_msg(r->aio);
	rc = mri_frame_parse_hdr(nng_msg_body(m), nng_msg_len(m), &h, &why);
	if (rc != MR_OK) {
		client__finish(r, MR_EPROTO, why, m);
		return;
	}
	if (h.op == MRI_OP_ERROR) {
		rc = mri_error_decode((uint8_t *)nng_msg_body(m) +
					  MRI_FRAME_HDR_LEN,
				      h.body_len, &code, &msg, &mlen);
		if (rc != MR_OK) {
			client__finish(r, MR_EPROTO, "malformed ERROR reply",
				       m);
			return;
		}
		snprintf(buf, sizeof(buf), "%.*s", (int)mlen, msg);
		if (code == MR_ESHUTDOWN)
			atomic_store(&r->c->draining_pipe,
				     (unsigned)nng_pipe_id(nng_msg_get_pipe(m)));
		if (pub && client__pub_retry(r, 0, true, code)) {
			nng_msg_free(m);
			return;
		}
		if (pub && r->in_doubt) {
			client__pub_give_up(r, code, buf, m);
			return;
		}
		client__finish(r, code ? code : MR_EINTERNAL, buf, m);
		return;
	}
	if (h.op != (r->op | MRI_OP_REPLY)) {
		client__finish(r, MR_EPROTO, "reply to another operation", m);
		return;
	}
	client__finish(r, MR_OK, NULL, m);
}

/* Send (again) a publish's frame, with the stream's base as it is now. */
static void
client__pub_send(struct cli_req *r)
{
	mr_client         *c = r->c;
	struct mri_pub_seq sq;
	nng_msg           *m;
	int                left = client__remaining_ms(r);
	unsigned           pipe = atomic_load(&c->pipe);

	// Nothing goes to a mailroomd that is draining: it would be refused,
	// and whatever of it is in flight when it stops is lost with it.
	if (pipe != 0 && pipe == atomic_load(&c->draining_pipe)) {
		if (left <= CLIENT__HOLD_MS) {
			client__pub_give_up(r, MR_ESHUTDOWN,
					    "mailroomd is draining and no "
					    "other answered in time",
					    NULL);
			return;
		}
		r->last_err = MR_ESHUTDOWN;
		nng_sleep_aio(CLIENT__HOLD_MS, r->timer);
		return;
	}
	pthread_mutex_lock(&c->lock);
	sq.stream = c->stream;
	sq.seq    = r->seq;
	sq.base   = c->pub_head != NULL ? c->pub_head->seq : r->seq;
	pthread_mutex_unlock(&c->lock);
	mri_publish_seq_put(r->call.frame, &sq);
	if (nng_msg_alloc(&m, r->call.frame_len) != 0) {
		client__pub_give_up(r, MR_ENOMEM, "out of memory", NULL);
		return;
	}
	memcpy(nng_msg_body(m), r->call.frame, r->call.frame_len);
	r->sends++;
	r->sending = 1;
	nng_aio_set_timeout(r->aio, left > 0 ? left : 1);
	nng_aio_set_msg(r->aio, m);
	nng_ctx_send(r->ctx, r->aio);
}

static int
client__send(struct cli_req *r, struct mri_wbuf *b)
{
	nng_msg *m;
	int      rv;

	if (b->err) {
		client__release(r, true);
		return b->err;
	}
	if (b->len > r->c->max_frame) {
		client__release(r, true);
		return MR_ETOOBIG;
	}
	if ((rv = nng_msg_alloc(&m, b->len)) != 0) {
		client__release(r, true);
		return MR_ENOMEM;
	}
	memcpy(nng_msg_body(m), b->data, b->len);
	r->sending = 1;
	nng_aio_set_timeout(r->aio, r->c->timeout_ms + r->extra_ms);
	nng_aio_set_msg(r->aio, m);
	nng_ctx_send(r->ctx, r->aio);
	return MR_OK;
}

int
mr_client_new(mr_client **out, const char *url, const mr_client_opts *opts,
	      char *errstr, size_t errstr_size)
{
	mr_client *c;
	int        rv;

	if (url == NULL)
		url = getenv("MAILROOM_URL");
	if (url == NULL || url[0] == '\0')
		url = MR_DEFAULT_URL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms
						     : CLIENT__TIMEOUT_MS;
	c->max_inflight =
	    opts && opts->max_inflight > 0 ? opts->max_inflight
					   : CLIENT__INFLIGHT;
	c->max_frame = opts && opts->max_frame > 0 ? (size_t)opts->max_frame
						   : CLIENT__MAX_FRAME;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (getrandom(&c->stream, sizeof(c->stream), 0) !=
	    (ssize_t)sizeof(c->stream))
		c->stream = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	c->stream |= 1; // never 0
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		snprintf(errstr, errstr_size, "nng: %s", nng_strerror(rv));
		goto fail;
	}
	// nng's own resends would go out in no particular order: the client
	// resends a publish itself, in its stream's order (client__pub_retry).
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 0);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, client__pipe_cb, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, client__pipe_cb, c);
	if ((rv = nng_dial(c->sock, url, NULL, 0)) != 0) {
		snprintf(errstr, errstr_size, "cannot reach mailroomd at %s: %s",
			 url, nng_strerror(rv));
		nng_close(c->sock);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cv);
		free(c);
		return rv == NNG_EINVAL || rv == NNG_EADDRINVAL ||
			       rv == NNG_ENOTSUP
			   ? MR_EINVAL
			   : MR_ECONNREFUSED;
	}
	*out = c;
	return MR_OK;
fail:
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c);
	return MR_ETRANSPORT;
}

int
mr_client_drain(mr_client *c, int timeout_ms)
{
	struct timespec ts;
	int             rc = MR_OK;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->lock);
	while (c->pending > 0 && rc == MR_OK)
		if (pthread_cond_timedwait(&c->cv, &c->lock, &ts) != 0)
			rc = MR_ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void
mr_client_free(mr_client *c)
{
	struct cli_req *r, *n;

	if (c == NULL)
		return;
	mr_client_drain(c, c->timeout_ms + 1000);
	// What is still in flight (a long poll) is cancelled first: a
	// stopped aio is not started again by its callback, whereas closing
	// the socket under a callback about to receive makes nng 1.5.2 panic.
	for (r = c->all; r != NULL; r = r->all_next) {
		nng_aio_stop(r->timer);
		nng_aio_stop(r->aio);
	}
	nng_close(c->sock);
	for (r = c->all; r != NULL; r = n) {
		n = r->all_next;
		nng_aio_free(r->timer);
		nng_aio_free(r->aio);
		free(r);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* ---- publish ---------------------------------------------------------- */

static void
client__hdr(struct mri_hdr_view *h, const char *name, const void *v,
	    size_t len)
{
	h->name      = name;
	h->name_len  = (uint16_t)strlen(name);
	h->value     = v;
	h->value_len = (uint32_t)len;
}

static int
client__encode_msg(struct mri_wbuf *b, const mr_message *m)
{
	struct mri_hdr_view hs[MRI_HDR_COUNT_MAX];
	size_t              nh = 0, tl, il;
	char                idbuf[MRI_UUID_STRLEN + 1];
	const char         *id = m->id;

	if (m->topic == NULL || !mri_topic_valid(m->topic, strlen(m->topic)))
		return MR_EINVAL;
	if (m->header_count + CLIENT__STD_HDRS > MRI_HDR_COUNT_MAX ||
	    m->payload_len > UINT32_MAX || m->key_len > UINT32_MAX)
		return MR_ETOOBIG;
	if (id == NULL) {
		mri_uuid7_string(idbuf);
		id = idbuf;
	}
	il = strlen(id);
	if (il == 0 || il > MR_ID_MAX)
		return MR_EINVAL;
	if (m->type)
		client__hdr(&hs[nh++], MR_HEADER_TYPE, m->type, strlen(m->type));
	if (m->source)
		client__hdr(&hs[nh++], MR_HEADER_SOURCE, m->source,
			    strlen(m->source));
	if (m->content_type)
		client__hdr(&hs[nh++], MR_HEADER_CONTENT_TYPE, m->content_type,
			    strlen(m->content_type));
	if (m->reply_to)
		client__hdr(&hs[nh++], MR_HEADER_REPLY_TO, m->reply_to,
			    strlen(m->reply_to));
	if (m->correlation_id)
		client__hdr(&hs[nh++], MR_HEADER_CORRELATION_ID, m->correlation_id,
			    strlen(m->correlation_id));
	for (size_t i = 0; i < m->header_count; i++) {
		const mr_header *h = &m->headers[i];
		size_t           nl;

		if (h->name == NULL || (nl = strlen(h->name)) == 0 ||
		    nl > MRI_HDR_NAME_MAX || h->value_len > UINT32_MAX)
			return MR_EINVAL;
		client__hdr(&hs[nh++], h->name, h->value ? h->value : "",
			    h->value_len);
	}
	tl = strlen(m->topic);
	mri_publish_encode_msg(b, m->topic, tl, m->key ? m->key : "",
			       m->key_len, m->key != NULL, id, il,
			       (uint16_t)nh, hs,
			       m->payload ? m->payload : "", m->payload_len);
	return b->err;
}

static void
client__acks_fail(mr_ack *acks, size_t n, int status, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		memset(&acks[i], 0, sizeof(acks[i]));
		acks[i].status    = status;
		acks[i].partition = -1;
		acks[i].offset    = -1;
		snprintf(acks[i].error, sizeof(acks[i].error), "%s",
			 why ? why : mr_strerror(status));
	}
}

/* Fill the topic and id of failed acks from the request that failed, so
 * that a publisher can send those messages again under the same ids. */
static void
client__acks_name(mr_ack *acks, uint32_t n, const struct cli_call *r)
{
	struct mri_pub_view *v;
	struct mri_frame_hdr h;
	const uint8_t       *body;
	size_t               len;
	uint32_t             count;
	const char          *why;
	int64_t              bad;

	if (r->frame == NULL ||
	    mri_frame_parse_hdr(r->frame, r->frame_len, &h, &why) != MR_OK)
		return;
	len  = h.body_len;
	body = mri_publish_messages(r->frame + MRI_FRAME_HDR_LEN, &len,
				    h.flags);
	if (body == NULL ||
	    mri_publish_decode(body, len, &v, &count, &why, &bad) != MR_OK)
		return;
	for (uint32_t i = 0; i < n && i < count; i++) {
		snprintf(acks[i].topic, sizeof(acks[i].topic), "%.*s",
			 (int)v[i].topic_len, v[i].topic);
		snprintf(acks[i].id, sizeof(acks[i].id), "%.*s",
			 (int)v[i].id_len, v[i].id);
	}
	free(v);
}

static int
client__acks_decode(nng_msg *m, uint32_t want, mr_ack *acks, const char **why)
{
	struct mri_ack_view *v;
	uint32_t             n;
	int                  rc;

	rc = mri_ack_decode((uint8_t *)nng_msg_body(m) + MRI_FRAME_HDR_LEN,
			    nng_msg_len(m) - MRI_FRAME_HDR_LEN, &v, &n, why);
	if (rc != MR_OK)
		return rc;
	if (n != want) {
		free(v);
		*why = "PUBLISH_ACK has a different number of acks";
		return MR_EPROTO;
	}
	for (uint32_t i = 0; i < n; i++) {
		mr_ack *a = &acks[i];

		a->status    = v[i].status;
		a->duplicate = (v[i].flags & MRI_ACK_F_DUPLICATE) != 0;
		a->partition = v[i].partition;
		a->offset    = v[i].offset;
		snprintf(a->topic, sizeof(a->topic), "%.*s",
			 (int)v[i].topic_len, v[i].topic);
		snprintf(a->id, sizeof(a->id), "%.*s", (int)v[i].id_len,
			 v[i].id);
		snprintf(a->error, sizeof(a->error), "%.*s",
			 (int)v[i].errmsg_len, v[i].errmsg);
	}
	free(v);
	return MR_OK;
}

static void
client__publish_done(const struct cli_call *r, int status, const char *why,
		     nng_msg *m)
{
	mr_ack  stack[16];
	mr_ack *acks = r->n <= 16 ? stack : malloc(r->n * sizeof(*acks));

	if (acks == NULL) {
		// Nothing to report the acks in: report the request failed.
		mr_ack one;
		client__acks_fail(&one, 1, MR_ENOMEM, NULL);
		r->cb(r->arg, MR_ENOMEM, &one, 0);
		return;
	}
	if (status == MR_OK)
		status = client__acks_decode(m, r->n, acks, &why);
	if (status != MR_OK) {
		client__acks_fail(acks, r->n, status, why);
		client__acks_name(acks, r->n, r);
	}
	r->cb(r->arg, status, acks, r->n);
	if (acks != stack)
		free(acks);
}

int
mr_publish_async(mr_client *c, const mr_message *msgs, size_t n,
		 mr_publish_cb cb, void *arg)
{
	struct cli_req *r;
	struct mri_wbuf b;
	int             rc;

	if (c == NULL || msgs == NULL || n == 0 || n > MRI_BATCH_MAX ||
	    cb == NULL)
		return MR_EINVAL;
	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_PUBLISH);
	mri_publish_seq_reserve(&b);
	mri_wbuf_u32(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		if ((rc = client__encode_msg(&b, &msgs[i])) != MR_OK) {
			mri_wbuf_fini(&b);
			return rc;
		}
	}
	if ((rc = mri_frame_end(&b)) != MR_OK || b.len > c->max_frame) {
		mri_wbuf_fini(&b);
		return rc != MR_OK ? rc : MR_ETOOBIG;
	}
	if ((rc = client__acquire(c, &r)) != MR_OK) {
		mri_wbuf_fini(&b);
		return rc;
	}
	// The request owns b's bytes from here (client__finish frees them).
	r->op       = MRI_OP_PUBLISH;
	r->call     = (struct cli_call){client__publish_done, cb, arg,
					(uint32_t)n, b.data, b.len, false};
	r->deadline = nng_clock() + (nng_time)c->timeout_ms;
	pthread_mutex_lock(&c->lock);
	r->seq      = c->seq_next++;
	r->queued   = true;
	r->pub_next = NULL;
	r->pub_prev = c->pub_tail;
	if (c->pub_tail)
		c->pub_tail->pub_next = r;
	else
		c->pub_head = r;
	c->pub_tail = r;
	pthread_mutex_unlock(&c->lock);
	client__pub_send(r);
	return MR_OK;
}

/* ---- synchronous calls ------------------------------------------------- */

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

static void
client__wait_init(struct client__wait *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static int
client__wait_end(struct client__wait *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	snprintf(client__last_error, sizeof(client__last_error), "%s", w->why);
	return w->status;
}

static void
client__wait_signal(struct client__wait *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

static void
client__sync_publish_cb(void *arg, int status, const mr_ack *acks, size_t n)
{
	struct client__wait *w = arg;

	memcpy(w->acks, acks, n * sizeof(*acks));
	w->status = status;
	for (size_t i = 0; i < n && w->status == MR_OK; i++)
		if (acks[i].status != MR_OK)
			w->status = acks[i].status;
	if (n > 0 && status != MR_OK)
		snprintf(w->why, sizeof(w->why), "%s", acks[0].error);
	client__wait_signal(w);
}

int
mr_publish_batch(mr_client *c, const mr_message *msgs, size_t n, mr_ack *acks)
{
	struct client__wait w;
	int                 rc;

	client__last_error[0] = '\0';
	client__wait_init(&w);
	w.acks = acks;
	if ((rc = mr_publish_async(c, msgs, n, client__sync_publish_cb, &w)) !=
	    MR_OK) {
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cv);
		if (acks != NULL)
			client__acks_fail(acks, n, rc, NULL);
		return rc;
	}
	return client__wait_end(&w);
}

int
mr_publish(mr_client *c, const mr_message *msg, mr_ack *ack)
{
	return mr_publish_batch(c, msg, 1, ack);
}

static void
client__json_done(const struct cli_call *r, int status, const char *why,
		  nng_msg *m)
{
	struct client__wait *w = r->arg;

	w->status = status;
	if (status == MR_OK) {
		size_t len = nng_msg_len(m) - MRI_FRAME_HDR_LEN;

		if ((w->json = malloc(len + 1)) == NULL) {
			w->status = MR_ENOMEM;
		} else {
			memcpy(w->json,
			       (char *)nng_msg_body(m) + MRI_FRAME_HDR_LEN,
			       len);
			w->json[len] = '\0';
		}
	} else {
		snprintf(w->why, sizeof(w->why), "%s", why ? why : "");
	}
	client__wait_signal(w);
}

int
client__json_call(mr_client *c, uint8_t op, const char *body, char **json)
{
	struct client__wait w;
	struct cli_req     *r;
	struct mri_wbuf     b;
	int                 rc;

	client__last_error[0] = '\0';
	if (c == NULL || json == NULL)
		return MR_EINVAL;
	mri_wbuf_init(&b);
	mri_frame_begin(&b, op);
	if (body)
		mri_wbuf_put(&b, body, strlen(body));
	if ((rc = mri_frame_end(&b)) != MR_OK ||
	    (rc = client__acquire(c, &r)) != MR_OK) {
		mri_wbuf_fini(&b);
		return rc;
	}
	client__wait_init(&w);
	r->op   = op;
	r->call = (struct cli_call){client__json_done, NULL, &w, 0, NULL, 0,
				    false};
	rc      = client__send(r, &b);
	mri_wbuf_fini(&b);
	if (rc != MR_OK) {
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cv);
		return rc;
	}
	rc    = client__wait_end(&w);
	*json = w.json;
	return rc;
}

int
mr_status(mr_client *c, char **json)
{
	return client__json_call(c, MRI_OP_STATUS, NULL, json);
}

int
mr_admin(mr_client *c, const char *request, char **json)
{
	if (request == NULL)
		return MR_EINVAL;
	return client__json_call(c, MRI_OP_ADMIN, request, json);
}

static void
client__frame_done(const struct cli_call *r, int status, const char *why,
		   nng_msg *m)
{
	struct client__wait *w = r->arg;

	w->status = status;
	if (status == MR_OK) {
		w->reply = m;
	} else {
		snprintf(w->why, sizeof(w->why), "%s", why ? why : "");
		if (m)
			nng_msg_free(m);
	}
	client__wait_signal(w);
}

int
client__frame_call(mr_client *c, struct mri_wbuf *b, int extra_ms,
		   nng_msg **reply)
{
	struct client__wait w;
	struct cli_req     *r;
	int                 rc;

	client__last_error[0] = '\0';
	if (c == NULL || b == NULL || reply == NULL || extra_ms < 0 ||
	    extra_ms > INT32_MAX - c->timeout_ms)
		return MR_EINVAL;
	if (b->err)
		return b->err;
	if (b->len < MRI_FRAME_HDR_LEN)
		return MR_EINVAL;
	if ((rc = client__acquire(c, &r)) != MR_OK)
		return rc;
	client__wait_init(&w);
	r->op       = b->data[3];
	r->extra_ms = extra_ms;
	r->call     = (struct cli_call){
	    .done = client__frame_done, .arg = &w, .keep_reply = true};
	if ((rc = client__send(r, b)) != MR_OK) {
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cv);
		return rc;
	}
	rc     = client__wait_end(&w);
	*reply = w.reply;
	return rc;
}
