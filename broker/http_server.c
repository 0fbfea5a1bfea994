/*
 * The HTTP API's server (broker/http.h): HTTP/1.1 over nng's TCP streams,
 * with what nng's own HTTP server lacks: a deadline for a request's head
 * and for each read of its body (a slow client gets 408 and is closed), a
 * keep-alive idle limit, a cap on connections (the one over it gets 429
 * and is closed), a bound on a head's size (431), and every refusal as
 * JSON. The head's parsing is http_parse.c's (fuzzed); what a request
 * means is http.c's.
 *
 * A connection reads one request at a time: its head, then (when http.c
 * takes it) its body, then it waits for the answer, writes it, and reads
 * the next (pipelined bytes already read are kept). So at most one of its
 * aios is pending, and one thread at a time works on it. Connections are
 * freed on the reaper's thread (http_session.c), never in nng's
 * callbacks.
 *
 * Thread safety: the list of connections and the counts are h->lock's.
 */
#include "http_internal.h"
#include "http_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"

/* The most a request's head may take. */
#define HTTP__HEAD_MAX (16 * 1024)
/* How long to wait before accepting again after accept failed. */
#define HTTP__ACCEPT_RETRY_MS 100

enum conn_state {
	CONN_HEAD,
	CONN_CONTINUE, /* writing 100 Continue, then the body */
	CONN_BODY,
	CONN_HANDLING,
	CONN_WRITING
};

struct http_conn {
	struct http_conn *next;
	struct mri_http  *h;
	nng_stream       *s;
	nng_aio          *rx, *tx;
	enum conn_state   st;
	char              buf[HTTP__HEAD_MAX];
	size_t            len;      /* bytes in buf */
	uint64_t          deadline; /* mono ms: the head's, once begun */
	struct http_op   *op;       /* the request whose body is read */
	size_t            body_have;
	char             *out; /* the answer being written */
	size_t            out_len, out_off;
	bool              close; /* after the answer */
	bool              dead;  /* the reaper frees it */
};

static void conn__recv_head(struct http_conn *c);
static void conn__parse(struct http_conn *c);

/* ---- life ---- */

/* End \p c: its stream closes; the reaper frees it. Called once, by the
 * thread working on it. */
static void
conn__end(struct http_conn *c)
{
	struct mri_http *h = c->h;

	nng_stream_close(c->s);
	pthread_mutex_lock(&h->lock);
	c->dead = true;
	h->nconns--;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
}

bool
http__conns_live(struct mri_http *h)
{
	for (struct http_conn *x = h->conns; x != NULL; x = x->next)
		if (!x->dead)
			return true;
	return false;
}

void
http__conns_reap(struct mri_http *h, bool all)
{
	struct http_conn **pp, *x, *dead = NULL;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->conns; (x = *pp) != NULL;) {
		if (x->dead) {
			*pp     = x->next;
			x->next = dead;
			dead    = x;
		} else {
			if (all)
				nng_stream_close(x->s);
			pp = &x->next;
		}
	}
	pthread_mutex_unlock(&h->lock);
	while ((x = dead) != NULL) {
		dead = x->next;
		nng_aio_free(x->rx);
		nng_aio_free(x->tx);
		nng_stream_free(x->s);
		free(x->out);
		free(x);
	}
}

/* ---- writing ---- */

static const char *
conn__reason(uint16_t status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

static void
conn__send(struct http_conn *c)
{
	nng_iov iov = {.iov_buf = c->out + c->out_off,
		       .iov_len = c->out_len - c->out_off};

	nng_aio_set_iov(c->tx, 1, &iov);
	nng_aio_set_timeout(c->tx, (int)c->h->read_timeout_ms);
	nng_stream_send(c->s, c->tx);
}

void
http__conn_respond(struct http_conn *c, uint16_t status, const char *ctype,
		   const void *body, size_t len, bool close)
{
	char head[512];
	int  n;

	c->close |= close;
	c->op = NULL;
	n     = snprintf(head, sizeof(head),
			 "HTTP/1.1 %u %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Content-Security-Policy: default-src 'self'; "
			 "img-src 'self' data:; frame-ancestors 'none'\r\n"
			 "%s\r\n",
			 status, conn__reason(status), ctype, len,
			 c->close ? "Connection: close\r\n" : "");
	free(c->out);
	if ((c->out = malloc((size_t)n + len)) == NULL) {
		conn__end(c);
		return;
	}
	memcpy(c->out, head, (size_t)n);
	if (len > 0)
		memcpy(c->out + n, body, len);
	c->out_len = (size_t)n + len;
	c->out_off = 0;
	c->st      = CONN_WRITING;
	conn__send(c);
}

/* A refusal of the server's own, before (or instead of) http.c's. */
static void
conn__refuse(struct http_conn *c, uint16_t status, int code, const char *why)
{
	char json[512];
	int  n;

	n = snprintf(json, sizeof(json),
		     "{\"ok\":false,\"error\":\"%s\",\"message\":\"%s\"}",
		     mr_err_name(code), why);
	http__conn_respond(c, status, "application/json", json, (size_t)n,
			   true);
}

static void
conn__tx_cb(void *arg)
{
	struct http_conn *c = arg;

	if (nng_aio_result(c->tx) != 0) {
		if (c->st == CONN_CONTINUE) {
			http__op_abandon(c->op);
			c->op = NULL;
		}
		conn__end(c);
		return;
	}
	if (c->st == CONN_CONTINUE) {
		http__conn_read_body(c, c->op, false);
		return;
	}
	c->out_off += nng_aio_count(c->tx);
	if (c->out_off < c->out_len) {
		conn__send(c);
		return;
	}
	free(c->out);
	c->out = NULL;
	if (c->close) {
		conn__end(c);
		return;
	}
	// The next request: from what was read already, or from the stream.
	c->st       = CONN_HEAD;
	c->deadline = 0;
	if (c->len > 0)
		conn__parse(c);
	else
		conn__recv_head(c);
}

/* ---- reading ---- */

static void
conn__recv_head(struct http_conn *c)
{
	struct mri_http *h = c->h;
	nng_iov          iov;

	iov = (nng_iov){.iov_buf = c->buf + c->len,
			.iov_len = sizeof(c->buf) - c->len};
	nng_aio_set_iov(c->rx, 1, &iov);
	// Idle between requests up to idle_ms; once a head began, it must
	// be whole by its deadline.
	if (c->deadline == 0)
		nng_aio_set_timeout(c->rx, (int)h->idle_timeout_ms);
	else
		nng_aio_set_timeout(c->rx,
				    (int)mri_deadline_left(c->deadline) + 1);
	nng_stream_recv(c->s, c->rx);
}

/* The head is in c->buf: make the request and hand it to http.c. */
static void
conn__request(struct http_conn *c, const struct mri_http_head *head,
	      size_t head_len)
{
	struct http_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL) {
		conn__end(c);
		return;
	}
	atomic_init(&op->refs, 1);
	// The head's strings point into c->buf: they move with the copy.
	if ((op->head_buf = malloc(head_len)) == NULL) {
		free(op);
		conn__end(c);
		return;
	}
	memcpy(op->head_buf, c->buf, head_len);
	op->head = *head;
	op->head.method += op->head_buf - c->buf;
	op->head.target += op->head_buf - c->buf;
	for (size_t i = 0; i < head->nhdr; i++) {
		op->head.hdr[i].name += op->head_buf - c->buf;
		op->head.hdr[i].value += op->head_buf - c->buf;
	}
	memmove(c->buf, c->buf + head_len, c->len - head_len);
	c->len -= head_len;
	c->st    = CONN_HANDLING;
	c->close = head->minor == 0;
	if (mri_http_head_get(head, "Connection") != NULL &&
	    strcasecmp(mri_http_head_get(head, "Connection"), "close") == 0)
		c->close = true;
	op->conn = c;
	op->h    = c->h;
	http__request(op);
}

static void
conn__parse(struct http_conn *c)
{
	struct mri_http_head head;
	size_t               head_len = 0;
	int                  st;

	st = mri_http_parse_head(c->buf, c->len, &head, &head_len);
	if (st == 200) {
		conn__request(c, &head, head_len);
		return;
	}
	if (st == 0 && c->len == sizeof(c->buf))
		st = 431;
	switch (st) {
	case 0:
		if (c->deadline == 0)
			c->deadline = mri_deadline_in(c->h->read_timeout_ms);
		conn__recv_head(c);
		return;
	case 431:
		conn__refuse(c, 431, MR_ETOOBIG,
			     "the request's head is over 16 KiB or 64 headers");
		return;
	case 505:
		conn__refuse(c, 505, MR_EVERSION,
			     "only HTTP/1.0 and HTTP/1.1 are spoken here");
		return;
	default:
		conn__refuse(c, 400, MR_EINVAL,
			     "a malformed request line or header");
		return;
	}
}

static void
conn__rx_cb(void *arg)
{
	struct http_conn *c  = arg;
	int               rv = nng_aio_result(c->rx);

	if (rv == NNG_ETIMEDOUT && c->st == CONN_HEAD && c->deadline == 0 &&
	    c->len == 0) {
		conn__end(c); /* idle between requests: closed quietly */
		return;
	}
	if (rv == NNG_ETIMEDOUT) {
		if (c->st == CONN_BODY) {
			struct http_op *op = c->op;

			c->op = NULL;
			http__op_abandon(op);
		}
		conn__refuse(c, 408, MR_ETIMEDOUT,
			     "the request came too slowly "
			     "(http.read_timeout_ms)");
		return;
	}
	if (rv != 0) {
		if (c->st == CONN_BODY) {
			http__op_abandon(c->op);
			c->op = NULL;
		}
		conn__end(c);
		return;
	}
	if (c->st == CONN_BODY) {
		c->body_have += nng_aio_count(c->rx);
		http__conn_read_body(c, c->op, false);
		return;
	}
	c->len += nng_aio_count(c->rx);
	if (c->deadline == 0)
		c->deadline = mri_deadline_in(c->h->read_timeout_ms);
	conn__parse(c);
}

void
http__conn_read_body(struct http_conn *c, struct http_op *op, bool cont)
{
	static const char continue_[] = "HTTP/1.1 100 Continue\r\n\r\n";
	nng_iov           iov;

	// A client that waits for 100 Continue before its body gets it,
	// unless the body came already.
	if (cont && c->len < op->body_len) {
		c->op    = op;
		c->st    = CONN_CONTINUE;
		c->out   = NULL;
		iov      = (nng_iov){.iov_buf = (void *)continue_,
				     .iov_len = sizeof(continue_) - 1};
		nng_aio_set_iov(c->tx, 1, &iov);
		nng_aio_set_timeout(c->tx, (int)c->h->read_timeout_ms);
		nng_stream_send(c->s, c->tx);
		return;
	}
	if (c->st != CONN_BODY) {
		// What was read with the head first.
		size_t n = c->len < op->body_len ? c->len : op->body_len;

		c->st        = CONN_BODY;
		c->op        = op;
		c->body_have = n;
		memcpy(op->body, c->buf, n);
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
	}
	if (c->body_have == op->body_len) {
		c->op = NULL;
		c->st = CONN_HANDLING;
		http__dispatch(op);
		return;
	}
	iov = (nng_iov){.iov_buf = op->body + c->body_have,
			.iov_len = op->body_len - c->body_have};
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_aio_set_timeout(c->rx, (int)c->h->read_timeout_ms);
	nng_stream_recv(c->s, c->rx);
}

/* ---- accepting ---- */

static void
http__accept_cb(void *arg)
{
	struct mri_http  *h = arg;
	struct http_conn *c;
	nng_stream       *s;
	int               rv = nng_aio_result(h->accept);
	bool              over;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		// Out of descriptors, say: try again shortly.
		mri_warn("component=http msg=\"accept failed: %s\"",
			 nng_strerror(rv));
		nng_sleep_aio(HTTP__ACCEPT_RETRY_MS, h->accept_wait);
		return;
	}
	s = nng_aio_get_output(h->accept, 0);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    nng_aio_alloc(&c->rx, conn__rx_cb, c) != 0 ||
	    nng_aio_alloc(&c->tx, conn__tx_cb, c) != 0) {
		if (c != NULL) {
			nng_aio_free(c->rx);
			free(c);
		}
		nng_stream_free(s);
		nng_stream_listener_accept(h->listener, h->accept);
		return;
	}
	c->h = h;
	c->s = s;
	pthread_mutex_lock(&h->lock);
	over    = h->nconns >= h->max_conns;
	c->next = h->conns;
	h->conns = c;
	h->nconns++;
	pthread_mutex_unlock(&h->lock);
	nng_stream_listener_accept(h->listener, h->accept);
	if (over) {
		conn__refuse(c, 429, MR_EBUSY,
			     "too many connections (http.max_connections): "
			     "try again, or keep fewer open");
		return;
	}
	conn__recv_head(c);
}

static void
http__accept_wait_cb(void *arg)
{
	struct mri_http *h = arg;

	if (nng_aio_result(h->accept_wait) == 0)
		nng_stream_listener_accept(h->listener, h->accept);
}

int
http__server_start(struct mri_http *h, const char *listen, char *errstr,
		   size_t errstr_size)
{
	char url[300];
	int  rv;

	// http://HOST:PORT is tcp://HOST:PORT to nng's streams.
	snprintf(url, sizeof(url), "tcp://%s", h->url->u_host);
	if ((rv = nng_aio_alloc(&h->accept, http__accept_cb, h)) != 0 ||
	    (rv = nng_aio_alloc(&h->accept_wait, http__accept_wait_cb, h)) !=
		0 ||
	    (rv = nng_stream_listener_alloc(&h->listener, url)) != 0 ||
	    (rv = nng_stream_listener_listen(h->listener)) != 0) {
		snprintf(errstr, errstr_size, "http.listen %s: %s", listen,
			 nng_strerror(rv));
		return MR_ETRANSPORT;
	}
	(void)nng_stream_listener_get_int(h->listener, NNG_OPT_TCP_BOUND_PORT,
					  &h->port);
	nng_stream_listener_accept(h->listener, h->accept);
	return MR_OK;
}

void
http__server_stop(struct mri_http *h)
{
	if (h->listener != NULL)
		nng_stream_listener_close(h->listener);
	if (h->accept != NULL)
		nng_aio_stop(h->accept);
	if (h->accept_wait != NULL)
		nng_aio_stop(h->accept_wait);
	nng_stream_listener_free(h->listener);
	nng_aio_free(h->accept);
	nng_aio_free(h->accept_wait);
	h->listener    = NULL;
	h->accept      = NULL;
	h->accept_wait = NULL;
}
