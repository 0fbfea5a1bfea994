/*
 * What the HTTP API's files share (broker/http.h): the server, a request
 * in progress, the routes, replies, and calls to the front door.
 * broker/http.c: the server, routing, authentication, calls;
 * http_reply.c: answers, errors and bodies; http_server.c: HTTP/1.1 on
 * nng's TCP streams; http_publish.c: publishing; http_session.c: consumer
 * sessions; http_admin.c: status, health and the admin operations.
 *
 * Thread safety: a request belongs to the thread of its last completed
 * nng operation; the session table has its own lock (http_session.c).
 */
#ifndef MRI_HTTP_INTERNAL_H
#define MRI_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nng/nng.h>

#include "broker/http.h"
#include "broker/http_parse.h"
#include "proto/frame.h"

/* Path segments a route has, at most. */
#define HTTP__SEGS 8
/* How long a call to the front door may take, beyond what it waits for
 * itself (a fetch's wait, an admin operation's timeout_ms). */
#define HTTP__CALL_MS 30000
#define HTTP__ADMIN_CALL_MS (620 * 1000)

struct http_session;
struct http_op;

struct http_conn;

struct mri_http {
	nng_url          *url;
	int               port;
	/* The server (http_server.c): its listener, accepts, connections. */
	nng_stream_listener *listener;
	nng_aio          *accept, *accept_wait;
	struct http_conn *conns;  /* lock; ended ones until reaped */
	size_t            nconns; /* lock: those not ended */
	size_t            max_conns;
	uint32_t          read_timeout_ms, idle_timeout_ms;
	char             *token; /* NULL: none */
	char             *upstream;
	size_t            max_body;
	uint32_t          idle_ms;
	int (*metrics)(void *arg, struct mri_wbuf *out);
	void             *metrics_arg;
	/* The connection that publishes, reads the status and administers;
	 * sessions have their own. */
	nng_socket        sock;
	bool              sock_open;
	/* Sessions (http_session.c), and the reaper that ends idle ones. */
	pthread_mutex_t   lock;
	pthread_cond_t    cv;
	struct http_session *sessions;
	size_t            nsessions, max_sessions; /* lock; not ended ones */
	bool              stopping;
	bool              reaper_started;
	pthread_t         reaper;
	int               ops; /* requests in progress (lock) */
	/* Threads between nng_ctx_open and nng_ctx_send's return (lock): a
	 * socket is closed only once none is (nng 1.5.2 panics when a socket
	 * closes under a send); once closing, no call starts. */
	int               senders;
	bool              closing;
};

/* A route's handler: it answers with http__reply_* once, now or later. */
typedef void (*http_fn)(struct http_op *op);

struct http_route {
	const char *method;
	const char *path; /* "/v1/topics/{}/messages": {} is a parameter */
	http_fn     fn;
	bool        open; /* served without a token even when one is set */
	const char *admin_op; /* http_admin.c's routes: the operation */
	/* The operation's fields, as query parameters: "name:t" (t is s
	 * string, i integer, b boolean), NULL-terminated. */
	const char *const *params;
	/* The path parameter that names the operation's "topic" or "group"
	 * field, and "partition" and "offset" (0: none). */
	const char *seg_field[HTTP__SEGS];
};

/* The front door's reply: its op (never MRI_OP_ERROR: an ERROR frame is
 * answered by the caller) and body, borrowed for the call. */
typedef void (*http_reply_fn)(struct http_op *op, uint8_t rop,
			      const uint8_t *body, size_t len);

struct http_op {
	atomic_int               refs; /* 1, and a call's sender's */
	struct mri_http         *h;
	struct http_conn        *conn; /* answered on it */
	char                    *head_buf; /* the head, owned */
	struct mri_http_head     head;     /* in head_buf */
	const struct http_route *route;
	char                    *seg[HTTP__SEGS]; /* percent-decoded */
	size_t                   nseg;
	char                    *query; /* NULL: none */
	uint8_t                 *body;
	size_t                   body_len;
	json_t                  *json; /* the body, parsed when asked */
	/* A call to the front door. */
	nng_aio                 *aio;
	nng_ctx                  ctx;
	bool                     has_ctx;
	bool                     sent;
	http_reply_fn            on_reply;
	struct http_session     *sess; /* held, when the call is a session's */
	/* What a handler keeps between its call and the reply. */
	void                    *state;
	void (*state_free)(void *state);
};

/* ---- broker/http_server.c ---- */

int  http__server_start(struct mri_http *h, const char *listen,
			char *errstr, size_t errstr_size);
/* Stop listening (connections go on until closed). */
void http__server_stop(struct mri_http *h);
/* Free the connections that ended; with \p all, close the others. */
void http__conns_reap(struct mri_http *h, bool all);
/* Whether a connection has not ended (h->lock held). */
bool http__conns_live(struct mri_http *h);
/* Answer on \p c (the body is copied); it closes after when \p close. */
void http__conn_respond(struct http_conn *c, uint16_t status,
			const char *ctype, const void *body, size_t len,
			bool close);
/* Read \p op's body (op->body_len bytes into op->body), after a 100
 * Continue when \p cont, then http__dispatch(op). */
void http__conn_read_body(struct http_conn *c, struct http_op *op,
			  bool cont);

/* ---- broker/http.c ---- */

/* A request's head was read: route, authenticate, then read its body. */
void http__request(struct http_op *op);
/* Its body was read: the route's handler. */
void http__dispatch(struct http_op *op);

/* ---- broker/http_reply.c ---- */

/* Free \p op unanswered (its connection failed or timed out). */
void http__op_abandon(struct http_op *op);
/* Release a hold on \p op (answered, or its sender out of nng); the last
 * frees it. */
void http__op_free(struct http_op *op);
/* A request header's value, or NULL. */
const char *http__header(const struct http_op *op, const char *name);

/* Answer \p status with \p body (taken: json_decref'd). */
void http__reply_json(struct http_op *op, uint16_t status, json_t *body);
/* Answer \p status with \p len bytes of \p text, of type \p ctype. */
void http__reply_text(struct http_op *op, uint16_t status, const char *ctype,
		      const void *text, size_t len);
/* Answer with {"ok": false, "error": mr_err_name(code), "message"}. */
void http__reply_error(struct http_op *op, uint16_t status, int code,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* As http__reply_error, and the connection closes after the answer (its
 * body was not read). */
void http__reply_close(struct http_op *op, uint16_t status, int code,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Answer an error of the front door's: \p code's status (docs/HTTP.md). */
void http__reply_mr(struct http_op *op, int code, const char *why);
/* The HTTP status of mailroom error \p code. */
uint16_t http__status(int code);

/* The body as a JSON object (parsed once); NULL after answering 400 (an
 * empty body is {} when \p empty_ok). */
json_t *http__body_object(struct http_op *op, bool empty_ok);

/* Send the frame in \p b on \p sock (a new context of it), and call
 * \p fn with the reply, or answer the error. \p sess, when given, is held
 * until then. On failure to send, answers 503 itself. */
void http__call(struct http_op *op, nng_socket sock,
		const struct mri_wbuf *b, int timeout_ms,
		struct http_session *sess, http_reply_fn fn);

/* A query parameter's value (percent-decoded, new: free it); NULL when
 * absent. *seen, when given, collects nothing: see http_admin.c. */
char *http__query(const struct http_op *op, const char *name);

/* ---- broker/http_publish.c ---- */

void http__publish(struct http_op *op);
void http__publish_raw(struct http_op *op);

/* ---- broker/http_session.c ---- */

void http__subscribe(struct http_op *op);
void http__fetch(struct http_op *op);
void http__settle(struct http_op *op);
void http__assignment(struct http_op *op);
void http__unsubscribe(struct http_op *op);
/* Start the reaper (an idle session ends); stop it and end every
 * session. */
int  http__sessions_start(struct mri_http *h);
void http__sessions_stop(struct mri_http *h);
/* Release a session held by a call. */
void http__session_release(struct http_session *x);

/* ---- broker/http_admin.c ---- */

void http__healthz(struct http_op *op);
void http__metrics(struct http_op *op);
void http__console(struct http_op *op);
void http__readyz(struct http_op *op);
void http__status_get(struct http_op *op);
void http__admin_route(struct http_op *op);
void http__admin_any(struct http_op *op);
/* The routes, NULL-method terminated. */
extern const struct http_route http__routes[];

#endif
