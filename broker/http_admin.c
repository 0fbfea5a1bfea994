/*
 * Health, status and the admin operations over HTTP (docs/HTTP.md,
 * "Health" and "Administration"), and the table of every route. An admin
 * route is an ADMIN frame: its operation, the fields its path names, and
 * its query parameters (typed by the route) or its JSON body.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/console.h"
#include "mailroom/error.h"
#include "proto/subscribe.h"

/* The query parameters of each GET route ("name:t": s string, i
 * integer, b boolean). */
static const char *const http__p_none[] = {NULL};
static const char *const http__p_read[] = {
    "offset:i", "max_records:i", "max_bytes:i", "timeout_ms:i", NULL};
static const char *const http__p_lag[] = {"group:s", "topic:s",
					  "refresh:b", "timeout_ms:i", NULL};
static const char *const http__p_dlq_list[] = {
    "source:s",	     "group:s",	      "key:s",	    "key_b64:s",
    "fingerprint:s", "since_ms:i",    "until_ms:i", "dialect:s",
    "max_records:i", "max_groups:i", "timeout_ms:i", NULL};
static const char *const http__p_timeout[] = {"timeout_ms:i", NULL};

#define ADMIN(m, p, o, q, ...)                                                \
	{.method   = m,                                                       \
	 .path     = p,                                                       \
	 .fn       = http__admin_route,                                       \
	 .admin_op = o,                                                       \
	 .params   = q,                                                       \
	 .seg_field = {__VA_ARGS__}}

const struct http_route http__routes[] = {
    {.method = "GET", .path = "/healthz", .fn = http__healthz, .open = true},
    {.method = "GET", .path = "/readyz", .fn = http__readyz, .open = true},
    {.method = "GET", .path = "/", .fn = http__console, .open = true},
    {.method = "GET", .path = "/console/{}", .fn = http__console,
     .open = true},
    {.method = "GET", .path = "/metrics", .fn = http__metrics},
    {.method = "GET", .path = "/v1/status", .fn = http__status_get},
    {.method = "POST", .path = "/v1/topics/{}/messages", .fn = http__publish},
    {.method = "POST",
     .path   = "/v1/topics/{}/messages/{}",
     .fn     = http__publish_raw},
    {.method = "POST", .path = "/v1/sessions", .fn = http__subscribe},
    {.method = "POST", .path = "/v1/sessions/{}/fetch", .fn = http__fetch},
    {.method = "POST", .path = "/v1/sessions/{}/ack", .fn = http__settle},
    {.method = "POST", .path = "/v1/sessions/{}/nack", .fn = http__settle},
    {.method = "POST", .path = "/v1/sessions/{}/reject", .fn = http__settle},
    {.method = "POST", .path = "/v1/sessions/{}/extend", .fn = http__settle},
    {.method = "GET",
     .path   = "/v1/sessions/{}/assignment",
     .fn     = http__assignment},
    {.method = "DELETE", .path = "/v1/sessions/{}", .fn = http__unsubscribe},
    ADMIN("GET", "/v1/topics", "topics.list", http__p_none),
    ADMIN("POST", "/v1/topics", "topics.create", http__p_none),
    ADMIN("GET", "/v1/topics/{}", "topics.describe", http__p_none, NULL,
	  NULL, "topic"),
    ADMIN("GET", "/v1/topics/{}/partitions/{}/records", "topics.read",
	  http__p_read, NULL, NULL, "topic", NULL, "partition"),
    ADMIN("GET", "/v1/lag", "lag.list", http__p_lag),
    ADMIN("POST", "/v1/groups/{}/resume", "consumers.resume", http__p_none,
	  NULL, NULL, "group"),
    ADMIN("GET", "/v1/actors", "actors.list", http__p_none),
    ADMIN("POST", "/v1/actors", "actors.report", http__p_none),
    ADMIN("GET", "/v1/bounds", "bounds.list", http__p_none),
    ADMIN("PUT", "/v1/bounds/{}", "bounds.set", http__p_none, NULL, NULL,
	  "topic"),
    ADMIN("DELETE", "/v1/bounds/{}", "bounds.clear", http__p_none, NULL,
	  NULL, "topic"),
    ADMIN("GET", "/v1/dlq/{}", "dlq.list", http__p_dlq_list, NULL, NULL,
	  "topic"),
    ADMIN("GET", "/v1/dlq/{}/records/{}/{}", "dlq.show", http__p_timeout,
	  NULL, NULL, "topic", NULL, "partition", "offset"),
    ADMIN("POST", "/v1/dlq/{}/replay", "dlq.replay", http__p_none, NULL,
	  NULL, "topic"),
    ADMIN("POST", "/v1/dlq/{}/purge", "dlq.purge", http__p_none, NULL, NULL,
	  "topic"),
    {.method = "POST", .path = "/v1/admin", .fn = http__admin_any},
    {0},
};

/* The error code named \p name (MR_EINTERNAL when none is). */
static int
http__code(const char *name)
{
	for (int c = 1; name != NULL && c < MR__ERR_END; c++)
		if (strcmp(mr_err_name(c), name) == 0)
			return c;
	return MR_EINTERNAL;
}

/* ---- health and status ---- */

void
http__healthz(struct http_op *op)
{
	http__reply_json(op, 200, json_pack("{s:b}", "ok", 1));
}

void
http__console(struct http_op *op)
{
	const char *name = op->nseg == 0 ? "index.html" : op->seg[1];
	const char *dot  = strrchr(name, '.');
	const char *type = "application/octet-stream";

	for (const struct mri_console_file *f = mri_console_files;
	     f->name != NULL; f++) {
		if (strcmp(f->name, name) != 0)
			continue;
		if (dot != NULL && strcmp(dot, ".html") == 0)
			type = "text/html; charset=utf-8";
		else if (dot != NULL && strcmp(dot, ".js") == 0)
			type = "text/javascript; charset=utf-8";
		else if (dot != NULL && strcmp(dot, ".css") == 0)
			type = "text/css; charset=utf-8";
		http__reply_text(op, 200, type, f->bytes, f->len);
		return;
	}
	http__reply_error(op, 404, MR_ENOENT, "the console has no %s", name);
}

void
http__metrics(struct http_op *op)
{
	struct mri_wbuf w;
	int             rc;

	if (op->h->metrics == NULL) {
		http__reply_error(op, 501, MR_ENOTSUP, "no metrics here");
		return;
	}
	mri_wbuf_init(&w);
	if ((rc = op->h->metrics(op->h->metrics_arg, &w)) != MR_OK)
		http__reply_error(op, 500, rc, "cannot render the metrics");
	else
		http__reply_text(op, 200, "text/plain; version=0.0.4", w.data,
				 w.len);
	mri_wbuf_fini(&w);
}

/* /readyz from STATUS' \p o: ready when Kafka is reachable and every
 * subscription's group has joined (it has its assignment: until then a
 * FETCH would wait), else 503 with the first reason. */
static void
http__ready_reply(struct http_op *op, json_t *o)
{
	json_t     *k       = json_object_get(o, "kafka");
	json_t     *c       = json_object_get(o, "consume");
	bool        kafka   = json_is_true(json_object_get(k, "reachable"));
	json_int_t  joined  = json_integer_value(json_object_get(c, "joined"));
	json_int_t  joining = json_integer_value(json_object_get(c, "joining"));
	const char *waiting = json_string_value(json_object_get(c, "waiting"));
	const char *e       = json_string_value(json_object_get(k, "error"));
	bool        ready   = kafka && joining == 0;
	json_t     *r;
	char        why[64 + MRI_SUBSCRIBE_GROUP_MAX] = "";

	if (!kafka)
		snprintf(why, sizeof(why), "%s",
			 e != NULL ? e : "Kafka is not reachable");
	else if (joining > 0 && waiting != NULL)
		snprintf(why, sizeof(why),
			 "group %s has not joined yet (waiting for its "
			 "assignment)",
			 waiting);
	else if (joining > 0)
		snprintf(why, sizeof(why), "a group has not joined yet");
	r = json_pack("{s:b, s:b, s:b, s:{s:I, s:I}}", "ok", ready, "ready",
		      ready, "kafka", kafka, "groups", "joined", joined,
		      "total", joined + joining);
	if (ready) {
		http__reply_json(op, 200, r);
		return;
	}
	if (r != NULL) {
		json_object_set_new(r, "error", json_string("MR_EUNAVAIL"));
		json_object_set_new(r, "message", json_string(why));
	}
	http__reply_json(op, 503, r);
}

static void
http__status_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		   size_t len)
{
	json_t *o = rop == MRI_OP_STATUS_REPLY
			? json_loadb((const char *)body, len, 0, NULL)
			: NULL;

	if (o == NULL) {
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's STATUS reply is not JSON");
		return;
	}
	if (op->route->fn == http__status_get) {
		http__reply_json(op, 200, o);
		return;
	}
	http__ready_reply(op, o);
	json_decref(o);
}

static void
http__status_call(struct http_op *op)
{
	struct mri_wbuf w;

	mri_wbuf_init(&w);
	mri_frame_begin(&w, MRI_OP_STATUS);
	mri_frame_end(&w);
	http__call(op, op->h->sock, &w, HTTP__CALL_MS, NULL,
		   http__status_reply);
	mri_wbuf_fini(&w);
}

void
http__readyz(struct http_op *op)
{
	http__status_call(op);
}

void
http__status_get(struct http_op *op)
{
	http__status_call(op);
}

/* ---- admin ---- */

static void
http__admin_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		  size_t len)
{
	json_t *o = rop == MRI_OP_ADMIN_REPLY
			? json_loadb((const char *)body, len, 0, NULL)
			: NULL;

	if (o == NULL) {
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's ADMIN reply is not JSON");
		return;
	}
	if (json_is_true(json_object_get(o, "ok")))
		http__reply_json(op, 200, o);
	else
		http__reply_json(op,
				 http__status(http__code(json_string_value(
				     json_object_get(o, "error")))),
				 o);
}

/* Send \p req (taken) as an ADMIN request. */
static void
http__admin_send(struct http_op *op, json_t *req)
{
	char           *text = json_dumps(req, JSON_COMPACT);
	struct mri_wbuf w;

	json_decref(req);
	if (text == NULL) {
		http__reply_error(op, 500, MR_ENOMEM, "out of memory");
		return;
	}
	mri_wbuf_init(&w);
	mri_frame_begin(&w, MRI_OP_ADMIN);
	mri_wbuf_put(&w, text, strlen(text));
	mri_frame_end(&w);
	free(text);
	http__call(op, op->h->sock, &w, HTTP__ADMIN_CALL_MS, NULL,
		   http__admin_reply);
	mri_wbuf_fini(&w);
}

/* Answer \p rc, a refusal of mri_http_params or mri_http_path_fields
 * (\p why), and drop \p req. */
static void
http__admin_refuse(struct http_op *op, json_t *req, int rc, const char *why)
{
	json_decref(req);
	if (rc == MR_EINVAL)
		http__reply_error(op, 400, rc, "%s", why);
	else
		http__reply_error(op, 500, rc, "out of memory");
}

void
http__admin_route(struct http_op *op)
{
	const struct http_route *r = op->route;
	json_t                  *req;
	char                     why[1024];
	int                      rc;

	if (strcmp(r->method, "GET") == 0 ||
	    strcmp(r->method, "DELETE") == 0) {
		if (op->body_len > 0) {
			http__reply_error(op, 400, MR_EINVAL,
					  "%s %s takes no body", r->method,
					  r->path);
			return;
		}
		req = json_object();
		rc  = mri_http_params(op->query, r->params, req, why,
				      sizeof(why));
		if (rc != MR_OK) {
			http__admin_refuse(op, req, rc, why);
			return;
		}
	} else {
		if (op->query != NULL && op->query[0] != '\0') {
			http__reply_error(op, 400, MR_EINVAL,
					  "%s %s takes a JSON body, not query "
					  "parameters",
					  r->method, r->path);
			return;
		}
		if ((req = http__body_object(op, true)) == NULL)
			return;
		json_incref(req);
		if (json_object_get(req, "op") != NULL) {
			json_decref(req);
			http__reply_error(op, 400, MR_EINVAL,
					  "the route names the operation: "
					  "leave \"op\" out (or use POST "
					  "/v1/admin)");
			return;
		}
	}
	rc = mri_http_path_fields(req, r->seg_field, op->seg, op->nseg, why,
				  sizeof(why));
	if (rc != MR_OK) {
		http__admin_refuse(op, req, rc, why);
		return;
	}
	json_object_set_new(req, "op", json_string(r->admin_op));
	http__admin_send(op, req);
}

void
http__admin_any(struct http_op *op)
{
	json_t *req = http__body_object(op, false);

	if (req == NULL)
		return;
	if (!json_is_string(json_object_get(req, "op"))) {
		http__reply_error(op, 400, MR_EINVAL,
				  "the body is an ADMIN request: {\"op\": "
				  "\"...\", ...} (docs/PROTOCOL.md)");
		return;
	}
	http__admin_send(op, json_incref(req));
}
