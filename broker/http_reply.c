/*
 * The HTTP API's answers (broker/http_internal.h): an error code's status,
 * JSON and text replies, errors as {"ok": false, "error", "message"} in
 * valid UTF-8, the request body as a JSON object, and an op's release
 * once it is answered (or abandoned) and its sender is out of nng.
 */
#include "http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

uint16_t
http__status(int code)
{
	switch (code) {
	case MR_OK:
		return 200;
	case MR_EINVAL:
	case MR_EPROTO:
	case MR_EVERSION:
		return 400;
	case MR_ENOENT:
	case MR_ENOTOPIC:
		return 404;
	case MR_EEXIST:
	case MR_EORDER:
		return 409;
	case MR_ETOOBIG:
		return 413;
	case MR_EBUSY:
		return 429;
	case MR_ENOTSUP:
	case MR_EUNKNOWNOP:
		return 501;
	case MR_EUNAVAIL:
	case MR_ESHUTDOWN:
	case MR_ECLOSED:
	case MR_ETRANSPORT:
	case MR_ECONNREFUSED:
		return 503;
	case MR_ETIMEDOUT:
	case MR_EINDOUBT:
		return 504;
	default:
		return 500;
	}
}

void
http__op_free(struct http_op *op)
{
	struct mri_http *h = op->h;

	// A call's sender holds the op until nng_ctx_send returned: its
	// answer may come (and be answered) first, on another thread, and
	// neither the context nor the session's socket may go before.
	if (atomic_fetch_sub(&op->refs, 1) != 1)
		return;
	if (op->has_ctx)
		nng_ctx_close(op->ctx);
	if (op->aio != NULL)
		nng_aio_reap(op->aio);
	// The state first: a subscribe's is its session, which the release
	// may let the reaper free.
	if (op->state_free != NULL)
		op->state_free(op->state);
	if (op->sess != NULL)
		http__session_release(op->sess);
	for (size_t i = 0; i < op->nseg; i++)
		free(op->seg[i]);
	free(op->query);
	free(op->body);
	free(op->head_buf);
	json_decref(op->json);
	free(op);
	// Under the lock: mri_http_free may free h once it reads 0.
	pthread_mutex_lock(&h->lock);
	if (--h->ops == 0)
		pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
}

/* Answer \p status with \p text (\p len bytes, of type \p ctype) and free
 * \p op. */
static void
http__reply_as(struct http_op *op, uint16_t status, const char *ctype,
	       const void *text, size_t len, bool close)
{
	http__conn_respond(op->conn, status, ctype, text, len, close);
	http__op_free(op);
}

void
http__op_abandon(struct http_op *op)
{
	http__op_free(op);
}

const char *
http__header(const struct http_op *op, const char *name)
{
	return mri_http_head_get(&op->head, name);
}

static void
http__reply(struct http_op *op, uint16_t status, const char *text,
	    size_t len, bool close)
{
	http__reply_as(op, status, "application/json", text, len, close);
}

void
http__reply_text(struct http_op *op, uint16_t status, const char *ctype,
		 const void *text, size_t len)
{
	http__reply_as(op, status, ctype, text, len, false);
}

void
http__reply_json(struct http_op *op, uint16_t status, json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (text == NULL) {
		static const char oom[] =
		    "{\"ok\":false,\"error\":\"MR_ENOMEM\",\"message\":"
		    "\"out of memory\"}";
		http__reply(op, 500, oom, sizeof(oom) - 1, false);
		return;
	}
	http__reply(op, status, text, strlen(text), false);
	free(text);
}

/* \p s made valid UTF-8 in place: a byte that starts no valid sequence
 * (a request's bytes quoted, a sentence cut mid-character) becomes '?'. */
static void
http__utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p != 0) {
		size_t n = *p < 0x80		 ? 1
			   : (*p & 0xe0) == 0xc0 ? 2
			   : (*p & 0xf0) == 0xe0 ? 3
			   : (*p & 0xf8) == 0xf0 ? 4
						 : 0;
		size_t k = 1;

		while (n > 1 && k < n && (p[k] & 0xc0) == 0x80)
			k++;
		if (n == 0 || k < n || (n == 2 && *p < 0xc2)) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

static void
http__reply_errorv(struct http_op *op, uint16_t status, int code,
		   bool close, const char *fmt, va_list ap)
{
	char    why[1024], plain[128];
	json_t *o;
	char   *text;

	vsnprintf(why, sizeof(why), fmt, ap);
	http__utf8(why);
	o = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", mr_err_name(code),
		      "message", why);
	text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text == NULL) {
		int n = snprintf(plain, sizeof(plain),
				 "{\"ok\":false,\"error\":\"%s\",\"message\":"
				 "\"(the sentence could not be encoded)\"}",
				 mr_err_name(code));

		http__reply(op, status, plain, (size_t)n, true);
		return;
	}
	http__reply(op, status, text, strlen(text), close);
	free(text);
}

void
http__reply_error(struct http_op *op, uint16_t status, int code,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	http__reply_errorv(op, status, code, false, fmt, ap);
	va_end(ap);
}

void
http__reply_close(struct http_op *op, uint16_t status, int code,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	http__reply_errorv(op, status, code, true, fmt, ap);
	va_end(ap);
}

void
http__reply_mr(struct http_op *op, int code, const char *why)
{
	http__reply_error(op, http__status(code), code, "%s",
			  mr_err_sentence(code, why));
}

json_t *
http__body_object(struct http_op *op, bool empty_ok)
{
	json_error_t e;

	if (op->json != NULL)
		return op->json;
	if (op->body_len == 0 && empty_ok)
		return op->json = json_object();
	op->json = json_loadb((const char *)op->body, op->body_len,
			      JSON_REJECT_DUPLICATES, &e);
	if (op->json == NULL) {
		http__reply_error(op, 400, MR_EINVAL,
				  "the body is not JSON: %s (line %d, column "
				  "%d)",
				  e.text, e.line, e.column);
		return NULL;
	}
	if (!json_is_object(op->json)) {
		http__reply_error(op, 400, MR_EINVAL,
				  "the body must be a JSON object");
		return NULL;
	}
	return op->json;
}
