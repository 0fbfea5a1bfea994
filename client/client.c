#include "mailroom/client.h"

#include <pthread.h>
#include <stdarg.h>
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
#include "core/clock.h"
#include "proto/frame.h"

#define CLIENT__TIMEOUT_MS 60000
#define CLIENT__INFLIGHT 64
#define CLIENT__MAX_FRAME (16 << 20)

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

static void
client__release(struct client_req *r, bool call_done)
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
	// Calls pending for a request (the window was full) go now.
	coalesce__kick(c);
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
client__req_reset(struct client_req *r)
{
	r->extra_ms = 0;
	r->in_doubt = false;
	r->sends    = 0;
	r->last_err = MR_OK;
}

/* Take an idle request, or make one if fewer than max_inflight exist;
 * with c->lock held. A new request is made under the lock, so that a
 * publish is laid into the stream in the same hold as it got its
 * request (client/coalesce.c): nothing that nng_ctx_open waits for takes
 * the client's lock. */
struct client_req *
client__take_locked(mr_client *c, int *rc)
{
	struct client_req *r;
	int                rv;

	*rc = MR_OK;
	if ((r = c->idle) != NULL) {
		c->idle = r->next;
		c->inflight++;
		c->pending++;
		client__req_reset(r);
		return r;
	}
	if (c->nreqs >= c->max_inflight)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		*rc = MR_ENOMEM;
		return NULL;
	}
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
		*rc = MR_ENOMEM;
		return NULL;
	}
	nng_aio_set_timeout(r->aio, c->timeout_ms);
	r->all_next = c->all;
	c->all      = r;
	c->nreqs++;
	c->inflight++;
	c->pending++;
	return r;
}

/* Take a request; blocks while all max_inflight are out. */
int
client__acquire(mr_client *c, struct client_req **out)
{
	struct client_req *r;
	int                rc;

	pthread_mutex_lock(&c->lock);
	while ((r = client__take_locked(c, &rc)) == NULL && rc == MR_OK)
		pthread_cond_wait(&c->cv, &c->lock);
	pthread_mutex_unlock(&c->lock);
	*out = r;
	return rc;
}

void
client__finish(struct client_req *r, int status, const char *why, nng_msg *m)
{
	mr_client      *c    = r->c;
	struct client_call call = r->call;

	// The request goes back to the pool first, so that the callback may
	// publish again without waiting for itself; drain waits for the
	// callback to return.
	client__release(r, false);
	call.c = c;
	call.done(&call, status, why, m);
	if (m && !call.keep_reply)
		nng_msg_free(m);
	free(call.frame);
	free(call.parts);
	client__call_done(c);
}

/*
 * A lost connection that does not come back. nng 1.5.2's ipc and tcp
 * transports can lose a read when a connection is closed between the two
 * halves of a message (a reply's header read, its body not yet asked for;
 * fixed for tcp in nng 1.6.0, never for ipc): the connection is then
 * never taken apart, nng's reaper thread waits for it forever, and its
 * dialer, which dials again only once it is taken apart, never does. A
 * publisher whose mailroomd was killed while replies were on their way
 * then waited its whole timeout for nothing. So once a connection was
 * lost and nothing came back for CLIENT__WEDGE_MS while the dialer still
 * counts the lost connection as its own, the client dials anew with a
 * dialer of its own and leaves the old one behind. Should the old one
 * dial again after all, its connections are refused (client__pipe_cb):
 * with two, nng's REQ socket sends requests on both in turn, and a
 * consumer's session, which is its connection's, was told MR_ENOENT on
 * every other request.
 *
 * A dialer that counts no connection can have stopped too: nng 1.5.2's
 * dialer gives up for good when a dial ends in NNG_ECLOSED, which is what
 * a send of the SP header gets (EPIPE) on a connection that a dying
 * mailroomd took into its listen queue and then dropped with its socket
 * (one kill -9 and restart in a few under AddressSanitizer's slow exit; the
 * dialer's counters then never move again). Such a dialer is closed and
 * replaced every CLIENT__WEDGE_MS until a connection comes back: closing
 * one that owns no connection waits for nothing.
 */
#define CLIENT__WEDGE_MS 5000
#define CLIENT__WATCH_MS 1000

static pthread_mutex_t client__left_lock = PTHREAD_MUTEX_INITIALIZER;
static mr_client      *client__left; /* reachable: not a leak */

/* @returns the connections that the current dialer counts, or -1. */
static int64_t
client__dialer_pipes(mr_client *c)
{
	nng_stat *all, *d, *p;
	int64_t   n = -1;

	if (nng_stats_get(&all) != 0)
		return -1;
	if ((d = nng_stat_find_dialer(all, c->dialer)) != NULL &&
	    (p = nng_stat_find(d, "pipes")) != NULL)
		n = (int64_t)nng_stat_value(p);
	nng_stats_free(all);
	return n;
}

void
client__trace(const mr_client *c, const char *fmt, ...)
{
	char    line[512];
	va_list ap;

	if (!c->trace)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mailroom: client %p at %llu ms: %s\n", (void *)c,
		(unsigned long long)mri_mono_ms(), line);
}

/* Dial c->url with a new dialer (*out), made the current one before it
 * starts: its first connection is one client__pipe_cb takes. */
static int
client__dial(mr_client *c, nng_dialer *out, int flags)
{
	nng_dialer d;
	int        rv;

	if ((rv = nng_dialer_create(&d, c->sock, c->url)) != 0)
		return rv;
	atomic_store(&c->dialer_id, nng_dialer_id(d));
	if ((rv = nng_dialer_start(d, flags)) != 0) {
		nng_dialer_close(d);
		return rv;
	}
	*out = d;
	return 0;
}

/* Watch a lost connection until one comes back (on nng's threads). */
static void
client__lost(mr_client *c)
{
	unsigned long long zero = 0;

	if (atomic_compare_exchange_strong(&c->lost_ms, &zero,
					   (unsigned long long)mri_mono_ms()))
		client__trace(c, "connection lost; watching for its return");
	if (!atomic_load(&c->closing) && !atomic_exchange(&c->watching, 1))
		nng_sleep_aio(CLIENT__WATCH_MS, c->watch);
}

static void
client__watch_cb(void *arg)
{
	mr_client         *c    = arg;
	unsigned long long lost = atomic_load(&c->lost_ms);
	nng_dialer         nd;

	if (nng_aio_result(c->watch) != 0 || atomic_load(&c->closing) ||
	    lost == 0) {
		atomic_store(&c->watching, 0);
		// A loss noted meanwhile found the watch still running.
		if (atomic_load(&c->lost_ms) != 0 &&
		    nng_aio_result(c->watch) == 0 &&
		    !atomic_load(&c->closing) &&
		    !atomic_exchange(&c->watching, 1))
			nng_sleep_aio(CLIENT__WATCH_MS, c->watch);
		return;
	}
	if (mri_mono_ms() - lost >= CLIENT__WEDGE_MS) {
		int64_t            pipes = client__dialer_pipes(c);
		unsigned long long for_s = (mri_mono_ms() - lost) / 1000;

		if (for_s % 10 == CLIENT__WEDGE_MS / 1000)
			client__trace(c,
				      "no connection for %llu s; the dialer "
				      "counts %lld",
				      for_s, (long long)pipes);
		if (pipes >= 0 &&
		    client__dial(c, &nd, NNG_FLAG_NONBLOCK) == 0) {
			if (pipes > 0)
				atomic_fetch_add(&c->redials, 1);
			else
				nng_dialer_close(c->dialer);
			c->dialer = nd;
			atomic_store(&c->lost_ms,
				     (unsigned long long)mri_mono_ms());
			client__trace(c, "dialing anew, the old dialer %s",
				      pipes > 0 ? "left behind" : "closed");
		}
	}
	nng_sleep_aio(CLIENT__WATCH_MS, c->watch);
}

/* nng's connection events, on one of its threads. */
static void
client__pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	mr_client *c  = arg;
	unsigned   id = (unsigned)nng_pipe_id(p);

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		int from = nng_dialer_id(nng_pipe_dialer(p));

		if (from != atomic_load(&c->dialer_id)) {
			nng_pipe_close(p);
			atomic_fetch_add(&c->refused_pipes, 1);
			client__trace(c, "pipe %u of dialer %d, one left "
				      "behind, refused", id, from);
		}
	} else if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_store(&c->pipe, id);
		atomic_store(&c->lost_ms, 0);
		client__trace(c, "connected (pipe %u)", id);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		client__trace(c, "pipe %u closed", id);
		if (atomic_compare_exchange_strong(&c->pipe, &id, 0u))
			client__lost(c);
	}
}

static void
client__aio_cb(void *arg)
{
	struct client_req   *r  = arg;
	int                  rv = nng_aio_result(r->aio);
	bool                 pub = r->op == MRI_OP_PUBLISH;
	nng_msg             *m;
	struct mri_frame_hdr h;
	const char          *why;
	uint16_t             code, mlen;
	const char          *msg;
	char                 buf[MRI_ERRMSG_MAX + 1];
	int                  rc;

	if (rv == NNG_ECONNRESET || rv == NNG_ECONNSHUT) {
		client__trace(r->c, "a request's connection reset (%s)",
			      r->sending ? "sending" : "awaiting its reply");
		client__lost(r->c);
	}
	else if (rv == 0 && !r->sending)
		atomic_store(&r->c->lost_ms, 0); // a reply: the way works
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

static int
client__send(struct client_req *r, struct mri_wbuf *b)
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
	c->busy_retry_ms = opts && opts->busy_retry_ms > 0 ? opts->busy_retry_ms
							   : 0;
	c->max_frame = opts && opts->max_frame > 0 ? (size_t)opts->max_frame
						   : CLIENT__MAX_FRAME;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (coalesce__init(c, opts) != MR_OK) {
		snprintf(errstr, errstr_size, "out of memory");
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cv);
		free(c);
		return MR_ENOMEM;
	}
	if (getrandom(&c->stream, sizeof(c->stream), 0) !=
	    (ssize_t)sizeof(c->stream))
		c->stream = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	c->stream |= 1; // never 0
	c->trace = getenv("MAILROOM_CLIENT_TRACE") != NULL &&
		   getenv("MAILROOM_CLIENT_TRACE")[0] != '\0';
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
	if ((c->url = strdup(url)) == NULL ||
	    nng_aio_alloc(&c->watch, client__watch_cb, c) != 0) {
		snprintf(errstr, errstr_size, "out of memory");
		nng_close(c->sock);
		free(c->url);
		coalesce__fini(c);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cv);
		free(c);
		return MR_ENOMEM;
	}
	atomic_init(&c->dialer_id, -1);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, client__pipe_cb, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, client__pipe_cb, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, client__pipe_cb, c);
	if ((rv = client__dial(c, &c->dialer, 0)) != 0) {
		snprintf(errstr, errstr_size, "cannot reach mailroomd at %s: %s",
			 url, nng_strerror(rv));
		nng_close(c->sock);
		nng_aio_free(c->watch);
		free(c->url);
		coalesce__fini(c);
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
	coalesce__fini(c);
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
	// Calls gathered for the next frame are sent now, not after their
	// linger, and waited for like the rest.
	coalesce__flush(c);
	pthread_mutex_lock(&c->lock);
	while ((c->pending > 0 || c->pend_n > 0) && rc == MR_OK)
		if (pthread_cond_timedwait(&c->cv, &c->lock, &ts) != 0)
			rc = MR_ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void
mr_client_free(mr_client *c)
{
	struct client_req *r, *n;

	if (c == NULL)
		return;
	mr_client_drain(c, c->timeout_ms + 1000);
	coalesce__fini(c);
	// What is still in flight (a long poll) is cancelled first: a
	// stopped aio is not started again by its callback, whereas closing
	// the socket under a callback about to receive makes nng 1.5.2 panic.
	for (r = c->all; r != NULL; r = r->all_next) {
		nng_aio_stop(r->timer);
		nng_aio_stop(r->aio);
	}
	atomic_store(&c->closing, 1);
	nng_aio_stop(c->watch);
	if (atomic_load(&c->redials) > 0) {
		// Closing a socket whose connection nng could not take apart
		// would wait for nng's reaper forever (client__watch_cb): it
		// is left behind, reachable, for the process's life.
		pthread_mutex_lock(&client__left_lock);
		c->left_next = client__left;
		client__left = c;
		pthread_mutex_unlock(&client__left_lock);
		return;
	}
	nng_close(c->sock);
	nng_aio_free(c->watch);
	free(c->url);
	free(atomic_load(&c->acks_cache));
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

/* ---- synchronous calls ------------------------------------------------- */

void
client__wait_init(struct client__wait *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
}

int
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

void
client__wait_signal(struct client__wait *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

static void
client__json_done(const struct client_call *r, int status, const char *why,
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
	struct client_req  *r;
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
	r->call = (struct client_call){.done = client__json_done, .arg = &w};
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
client__frame_done(const struct client_call *r, int status, const char *why,
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
	struct client_req  *r;
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
	r->call     = (struct client_call){
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
