/*
 * mailroomd's HTTP API (docs/HTTP.md): JSON over HTTP/1.1 on nng's TCP
 * streams (broker/http_server.c), for services in any language. It is a
 * client of mailroomd's own front door: each request becomes the
 * protocol's frames, sent over an
 * in-process connection (the front door's inproc listener), so the API
 * has the nng protocol's semantics, limits and backpressure by
 * construction. An HTTP consumer session is a connection of its own, as
 * a service's would be: when it ends, what it held is handed out again.
 *
 * Thread safety: start and free from one thread (the daemon's main
 * thread); the rest runs on nng's threads and the session reaper's.
 */
#ifndef MRI_HTTP_H
#define MRI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mri_http;
struct mri_wbuf;

struct mri_http_conf {
	const char *listen;   /* http://HOST:PORT */
	const char *token;    /* the bearer token; NULL or "": none */
	const char *upstream; /* the front door's inproc URL */
	size_t      max_body; /* a longer request body is refused (413) */
	uint32_t    session_idle_ms;
	/* A request's head must come whole, and each read of its body must
	 * bring something, within read_timeout_ms (else 408); a connection
	 * idle between requests for idle_timeout_ms is closed; one beyond
	 * max_connections is answered 503 and closed. */
	uint32_t    read_timeout_ms;
	uint32_t    idle_timeout_ms;
	size_t      max_connections;
	size_t      max_sessions; /* consumer sessions open at once */
	/* GET /metrics: the Prometheus text into out (broker/metrics.h);
	 * called on one of nng's threads; it must not block. NULL: 501. */
	int (*metrics)(void *arg, struct mri_wbuf *out);
	void *metrics_arg;
};

/**
 * @brief Listen on \p c->listen and serve (everything in \p c is copied).
 * @returns MR_OK, or MR_ECONFIG (a URL that is not http://, beyond
 *          loopback without a token), MR_ETRANSPORT (cannot listen) or
 *          MR_ENOMEM, with a sentence in errstr.
 */
int mri_http_start(struct mri_http **out, const struct mri_http_conf *c,
		   char *errstr, size_t errstr_size);

/** @returns the port listened on (the one given, or the one bound for
 *           port 0). */
int mri_http_port(const struct mri_http *h);

/** @brief Stop listening, end every session, free. NULL is a no-op. */
void mri_http_free(struct mri_http *h);

/**
 * @brief The token from \p token, else from the first line of the file
 *        \p file (made with a new random token, mode 0600, when it does
 *        not exist), else none.
 * @returns MR_OK with *out new (free it) or NULL for none, or MR_ECONFIG /
 *          MR_EIO with a sentence in errstr.
 */
int mri_http_token(const char *token, const char *file, char **out,
		   char *errstr, size_t errstr_size);

#endif
