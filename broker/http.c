#include "http_internal.h"
#include "http_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <nng/protocol/reqrep0/req.h>

#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"


static void http__aio_cb(void *arg);

/* ---- the token ---- */

static int
http__token_make(const char *file, char **out, char *errstr, size_t size)
{
	unsigned char raw[16];
	char          hex[sizeof(raw) * 2 + 2];
	int           fd;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		snprintf(errstr, size, "http.token_file: no random bytes: %s",
			 strerror(errno));
		return MR_EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	strcat(hex, "\n");
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex)) {
		snprintf(errstr, size,
			 "http.token_file: cannot make %s: %s (make its "
			 "folder, or name another file)",
			 file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return MR_EIO;
	}
	close(fd);
	hex[sizeof(raw) * 2] = '\0';
	mri_notice("component=http token_file=%s msg=\"made a new token\"",
		   file);
	return (*out = strdup(hex)) != NULL ? MR_OK : MR_ENOMEM;
}

int
mri_http_token(const char *token, const char *file, char **out,
	       char *errstr, size_t errstr_size)
{
	char  line[1024];
	FILE *f;
	size_t n;

	*out = NULL;
	if (token != NULL && token[0] != '\0')
		return (*out = strdup(token)) != NULL ? MR_OK : MR_ENOMEM;
	if (file == NULL || file[0] == '\0')
		return MR_OK;
	if ((f = fopen(file, "re")) == NULL) {
		if (errno == ENOENT)
			return http__token_make(file, out, errstr,
						errstr_size);
		snprintf(errstr, errstr_size, "http.token_file: %s: %s", file,
			 strerror(errno));
		return MR_EIO;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n < 16) {
		snprintf(errstr, errstr_size,
			 "http.token_file: %s: the token on its first line "
			 "must be at least 16 characters",
			 file);
		return MR_ECONFIG;
	}
	return (*out = strdup(line)) != NULL ? MR_OK : MR_ENOMEM;
}

/* Whether \p got is "Bearer <token>", in time independent of where it
 * differs. */
static bool
http__token_ok(const char *token, const char *got)
{
	size_t        n = strlen(token), m;
	unsigned char d = 0;

	if (got == NULL || strncasecmp(got, "Bearer ", 7) != 0)
		return false;
	got += 7;
	m = strlen(got);
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)token[i] ^
		     (unsigned char)(i < m ? got[i] : 0);
	return d == 0 && m == n;
}

/* ---- calls to the front door ---- */

/* A sender is out of nng_ctx_open and nng_ctx_send. */
static void
http__sent(struct mri_http *h)
{
	pthread_mutex_lock(&h->lock);
	if (--h->senders == 0 && h->closing)
		pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
}

void
http__call(struct http_op *op, nng_socket sock, const struct mri_wbuf *b,
	   int timeout_ms, struct http_session *sess, http_reply_fn fn)
{
	struct mri_http *h = op->h;
	nng_msg         *m;
	int              rv;

	op->sess     = sess;
	op->on_reply = fn;
	if (b->err != MR_OK) {
		http__reply_error(op, http__status(b->err), b->err,
				  "the request is too large for a frame");
		return;
	}
	if ((rv = nng_msg_alloc(&m, 0)) != 0 ||
	    (rv = nng_msg_append(m, b->data, b->len)) != 0) {
		if (rv != NNG_ENOMEM)
			nng_msg_free(m);
		http__reply_error(op, 500, MR_ENOMEM, "out of memory");
		return;
	}
	pthread_mutex_lock(&h->lock);
	if (h->closing) {
		pthread_mutex_unlock(&h->lock);
		nng_msg_free(m);
		http__reply_error(op, 503, MR_ESHUTDOWN, "mailroomd is stopping");
		return;
	}
	h->senders++;
	pthread_mutex_unlock(&h->lock);
	if ((rv = nng_ctx_open(&op->ctx, sock)) != 0) {
		http__sent(h);
		nng_msg_free(m);
		http__reply_error(op, 503, MR_ESHUTDOWN,
				  "mailroomd is stopping: %s",
				  nng_strerror(rv));
		return;
	}
	op->has_ctx = true;
	op->sent    = false;
	nng_aio_set_timeout(op->aio, timeout_ms);
	nng_aio_set_msg(op->aio, m);
	atomic_fetch_add(&op->refs, 1);
	nng_ctx_send(op->ctx, op->aio);
	http__sent(h);
	http__op_free(op);
}

static void
http__call_done(struct http_op *op)
{
	int                  rv = nng_aio_result(op->aio);
	nng_msg             *m;
	struct mri_frame_hdr hdr;
	const char          *why;
	const uint8_t       *body;

	if (!op->sent) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(op->aio));
			http__reply_error(op, 503, MR_ETRANSPORT,
					  "mailroomd's front door did not "
					  "take the request: %s",
					  nng_strerror(rv));
			return;
		}
		op->sent = true;
		nng_ctx_recv(op->ctx, op->aio);
		return;
	}
	if (rv == NNG_ETIMEDOUT) {
		http__reply_error(op, 504, MR_EINDOUBT,
				  "mailroomd did not answer in time: what "
				  "the request did is not known");
		return;
	}
	if (rv != 0) {
		http__reply_error(op, 503, MR_ETRANSPORT,
				  "no answer from mailroomd's front door: %s",
				  nng_strerror(rv));
		return;
	}
	m    = nng_aio_get_msg(op->aio);
	body = nng_msg_body(m);
	if (mri_frame_parse_hdr(body, nng_msg_len(m), &hdr, &why) != MR_OK) {
		nng_msg_free(m);
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's answer: %s", why);
		return;
	}
	body += MRI_FRAME_HDR_LEN;
	if (hdr.op == MRI_OP_ERROR) {
		uint16_t    code, len;
		const char *msg;
		char        text[MRI_ERRMSG_MAX + 1];

		if (mri_error_decode(body, hdr.body_len, &code, &msg, &len) !=
		    MR_OK) {
			code = MR_EINTERNAL;
			msg  = "";
			len  = 0;
		}
		if (len > MRI_ERRMSG_MAX)
			len = MRI_ERRMSG_MAX;
		memcpy(text, msg, len);
		text[len] = '\0';
		nng_msg_free(m);
		http__reply_mr(op, code, text);
		return;
	}
	op->on_reply(op, hdr.op, body, hdr.body_len);
	nng_msg_free(m);
}

/* ---- requests ---- */

char *
http__query(const struct http_op *op, const char *name)
{
	bool bad;

	return mri_http_query_get(op->query, name, &bad);
}

/* Split the request's URI into segments and the query. @returns false
 * after answering. */
static bool
http__parse_uri(struct http_op *op)
{
	const char *uri = op->head.target;
	int         rc;

	rc = mri_http_uri_split(uri, op->seg, HTTP__SEGS, &op->nseg,
				&op->query);
	if (rc == MR_ENOENT)
		http__reply_close(op, 404, MR_ENOENT,
				  "no such route: %.200s (docs/HTTP.md lists "
				  "them)",
				  uri);
	else if (rc == MR_EINVAL)
		http__reply_close(op, 400, MR_EINVAL,
				  "a malformed path: a %% not followed by two "
				  "hex digits, or an encoded NUL");
	else if (rc != MR_OK)
		http__reply_close(op, 500, rc, "out of memory");
	return rc == MR_OK;
}

/* Whether \p r's path has \p op's segments. */
static bool
http__path_match(const struct http_route *r, const struct http_op *op)
{
	const char *p = r->path + 1;
	size_t      i = 0;

	for (; *p != '\0'; i++) {
		const char *end = strchr(p, '/');
		size_t      n   = end != NULL ? (size_t)(end - p) : strlen(p);

		if (i == op->nseg)
			return false;
		if (!(n == 2 && memcmp(p, "{}", 2) == 0) &&
		    (strlen(op->seg[i]) != n || memcmp(op->seg[i], p, n) != 0))
			return false;
		p += n + (end != NULL);
	}
	return i == op->nseg;
}

/* Whether the request's Host names a loopback address (any port). */
static bool
http__host_loopback(const struct http_op *op)
{
	const char *host = http__header(op, "Host");

	return host != NULL && mri_http_host_loopback(host);
}

static bool
http__mutation(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

void
http__request(struct http_op *op)
{
	struct mri_http *h      = op->h;
	const char      *method = op->head.method, *cl, *expect;
	bool             other  = false;

	pthread_mutex_lock(&h->lock);
	h->ops++;
	pthread_mutex_unlock(&h->lock);
	if (nng_aio_alloc(&op->aio, http__aio_cb, op) != 0) {
		http__reply_close(op, 503, MR_ENOMEM, "out of memory");
		return;
	}
	if (!http__parse_uri(op))
		return;
	for (const struct http_route *r = http__routes; r->method != NULL;
	     r++) {
		if (!http__path_match(r, op))
			continue;
		if (strcmp(r->method, method) == 0) {
			op->route = r;
			break;
		}
		other = true;
	}
	if (op->route == NULL) {
		if (other)
			http__reply_close(op, 405, MR_EINVAL,
					  "%s is not a method of %.200s",
					  method, op->head.target);
		else
			http__reply_close(op, 404, MR_ENOENT,
					  "no such route: %s %.200s "
					  "(docs/HTTP.md lists them)",
					  method, op->head.target);
		return;
	}
	if (h->token != NULL && !op->route->open &&
	    !http__token_ok(h->token, http__header(op, "Authorization"))) {
		http__reply_close(op, 401, MR_EINVAL,
				  "this needs the bearer token: send "
				  "\"Authorization: Bearer <token>\" "
				  "(mailroomd's http.token or "
				  "http.token_file)");
		return;
	}
	if (h->token == NULL && !http__host_loopback(op)) {
		// Without a token, reads are open to this machine alone: a
		// page whose name was made to point here (DNS rebinding)
		// sends its own Host.
		http__reply_close(op, 403, MR_EINVAL,
				  "mailroomd has no HTTP token, so it answers "
				  "only requests to a loopback Host, not "
				  "\"%.100s\"",
				  http__header(op, "Host") != NULL
				      ? http__header(op, "Host")
				      : "(none)");
		return;
	}
	if (h->token == NULL && http__mutation(method)) {
		http__reply_close(op, 403, MR_EINVAL,
				  "mailroomd has no HTTP token, so it takes no "
				  "%s: set http.token or http.token_file "
				  "(made if absent) and send \"Authorization: "
				  "Bearer <token>\"",
				  method);
		return;
	}
	if (http__header(op, "Transfer-Encoding") != NULL) {
		http__reply_close(op, 411, MR_EINVAL,
				  "a body must have a Content-Length (chunked "
				  "bodies are not taken)");
		return;
	}
	if ((cl = http__header(op, "Content-Length")) != NULL) {
		char              *end;
		unsigned long long n;

		errno = 0;
		n     = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || *end != '\0' || *cl == '-') {
			http__reply_close(op, 400, MR_EINVAL,
					  "Content-Length is not a number");
			return;
		}
		if (n > h->max_body) {
			http__reply_close(op, 413, MR_ETOOBIG,
					  "the body is %llu bytes, over "
					  "http.max_body_bytes (%zu): send "
					  "smaller batches",
					  n, h->max_body);
			return;
		}
		op->body_len = (size_t)n;
	}
	if (op->body_len == 0) {
		http__dispatch(op);
		return;
	}
	if ((op->body = malloc(op->body_len)) == NULL) {
		http__reply_close(op, 503, MR_ENOMEM,
				  "out of memory for a body of %zu bytes",
				  op->body_len);
		return;
	}
	expect = http__header(op, "Expect");
	http__conn_read_body(op->conn, op,
			     expect != NULL &&
				 strcasecmp(expect, "100-continue") == 0);
}

void
http__dispatch(struct http_op *op)
{
	op->route->fn(op);
}

static void
http__aio_cb(void *arg)
{
	http__call_done(arg);
}

/* ---- the server ---- */

int
mri_http_start(struct mri_http **out, const struct mri_http_conf *c,
	       char *errstr, size_t errstr_size)
{
	struct mri_http *h;
	int              rv;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return MR_ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	if (mri_cond_init(&h->cv) != 0) {
		pthread_mutex_destroy(&h->lock);
		free(h);
		return MR_ENOMEM;
	}
	h->max_body        = c->max_body;
	h->idle_ms         = c->session_idle_ms;
	h->read_timeout_ms = c->read_timeout_ms ? c->read_timeout_ms : 10000;
	h->idle_timeout_ms = c->idle_timeout_ms ? c->idle_timeout_ms : 60000;
	h->max_conns = c->max_connections ? c->max_connections : 256;
	h->max_sessions = c->max_sessions ? c->max_sessions : 1024;
	h->metrics     = c->metrics;
	h->metrics_arg = c->metrics_arg;
	if ((c->token != NULL && c->token[0] != '\0' &&
	     (h->token = strdup(c->token)) == NULL) ||
	    (h->upstream = strdup(c->upstream)) == NULL) {
		mri_http_free(h);
		return MR_ENOMEM;
	}
	if (nng_url_parse(&h->url, c->listen) != 0 ||
	    strcmp(h->url->u_scheme, "http") != 0) {
		snprintf(errstr, errstr_size,
			 "http.listen: \"%s\" is not an http://HOST:PORT URL",
			 c->listen);
		mri_http_free(h);
		return MR_ECONFIG;
	}
	if (h->token == NULL && !mri_http_loopback(h->url->u_hostname)) {
		snprintf(errstr, errstr_size,
			 "http.listen: %s is beyond loopback, and mailroomd "
			 "has no HTTP token: set http.token or "
			 "http.token_file, or listen on 127.0.0.1",
			 c->listen);
		mri_http_free(h);
		return MR_ECONFIG;
	}
	if ((rv = nng_req0_open(&h->sock)) != 0) {
		snprintf(errstr, errstr_size, "http: %s", nng_strerror(rv));
		mri_http_free(h);
		return MR_ETRANSPORT;
	}
	h->sock_open = true;
	nng_socket_set_ms(h->sock, NNG_OPT_REQ_RESENDTIME,
			  NNG_DURATION_INFINITE);
	nng_socket_set_size(h->sock, NNG_OPT_RECVMAXSZ, 0);
	if ((rv = nng_dial(h->sock, h->upstream, NULL, 0)) != 0) {
		snprintf(errstr, errstr_size, "http: the front door at %s: %s",
			 h->upstream, nng_strerror(rv));
		mri_http_free(h);
		return MR_ETRANSPORT;
	}
	if ((rv = http__sessions_start(h)) != MR_OK ||
	    (rv = http__server_start(h, c->listen, errstr, errstr_size)) !=
		MR_OK) {
		mri_http_free(h);
		return rv;
	}
	mri_notice("component=http listen=%s port=%d token=%s msg=\"serving "
		   "the HTTP API\"",
		   c->listen, h->port, h->token != NULL ? "set" : "none");
	*out = h;
	return MR_OK;
}

int
mri_http_port(const struct mri_http *h)
{
	return h->port;
}

void
mri_http_free(struct mri_http *h)
{
	uint64_t deadline = mri_deadline_in(5000);
	int      ops;

	if (h == NULL)
		return;
	// No new connection, no new call, and no sender left inside nng
	// before a socket closes; then closing the connections to the front
	// door (the sessions' first) ends the calls in flight, each
	// answering its request, and closing the clients' ends the requests
	// being read.
	http__server_stop(h);
	pthread_mutex_lock(&h->lock);
	h->closing = true;
	while (h->senders > 0 &&
	       mri_cond_wait_until(&h->cv, &h->lock, deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&h->lock);
	http__sessions_stop(h);
	if (h->sock_open)
		nng_close(h->sock);
	http__conns_reap(h, true);
	pthread_mutex_lock(&h->lock);
	while (h->ops > 0 &&
	       mri_cond_wait_until(&h->cv, &h->lock, deadline) != ETIMEDOUT)
		;
	ops = h->ops;
	// Each connection ends as its answer fails or its read is aborted.
	while (http__conns_live(h) &&
	       mri_cond_wait_until(&h->cv, &h->lock, deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&h->lock);
	http__conns_reap(h, false);
	if (ops > 0 || h->conns != NULL) {
		// Not freed: a request still in nng's hands would use it.
		mri_warn("component=http msg=\"%d requests did not end; "
			 "leaving the HTTP server behind\"",
			 ops);
		return;
	}
	if (h->url != NULL)
		nng_url_free(h->url);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cv);
	free(h->token);
	free(h->upstream);
	free(h);
}
