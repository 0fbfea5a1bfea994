/*
 * Consumer sessions over HTTP (docs/HTTP.md, "Consuming"), and the reaper
 * that ends idle ones and frees ended connections. Each session is
 * a connection of its own to the front door (a req0 socket on its inproc
 * listener), as a service's would be, so that ending it, by DELETE or by
 * idling past http.session_idle_ms, ends mailroomd's session and hands
 * what it held out again. Sockets are closed on the reaper's thread only,
 * never on one of nng's (whose callbacks a close would wait for).
 */
#include "http_internal.h"
#include "http_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nng/protocol/reqrep0/req.h>

#include "broker/admin_dlq.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "proto/assignment.h"
#include "proto/consume.h"

/* How often the reaper looks for idle sessions. */
#define HTTP__REAP_MS 1000

struct http_session {
	struct http_session *next;
	struct mri_http     *h;
	char                 id[33];
	nng_socket           sock;
	uint64_t             session; /* mailroomd's; 0 until subscribed */
	uint64_t             last_ms; /* mono: the last request's end */
	int                  refs;    /* calls in progress */
	bool                 gone;    /* ended: the reaper closes it */
};

/* ---- the table ---- */

/* @returns session \p id, held, or NULL after answering 404. */
static struct http_session *
http__session_find(struct http_op *op, const char *id)
{
	struct mri_http     *h = op->h;
	struct http_session *x;

	pthread_mutex_lock(&h->lock);
	for (x = h->sessions; x != NULL; x = x->next)
		if (!x->gone && x->session != 0 && strcmp(x->id, id) == 0)
			break;
	if (x != NULL)
		x->refs++;
	pthread_mutex_unlock(&h->lock);
	if (x == NULL)
		http__reply_error(op, 404, MR_ENOENT,
				  "no session %s: it ended (DELETE, or idle "
				  "for http.session_idle_ms) or never was; "
				  "open another with POST /v1/sessions",
				  id);
	return x;
}

void
http__session_release(struct http_session *x)
{
	struct mri_http *h = x->h;

	pthread_mutex_lock(&h->lock);
	x->last_ms = mri_mono_ms();
	if (--x->refs == 0 && x->gone)
		pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
}

/* \p x ends: it no longer counts against http.max_sessions, at once (a
 * DELETE answered frees its place), though the reaper closes it later.
 * h->lock held. */
static void
http__session_gone(struct mri_http *h, struct http_session *x)
{
	if (!x->gone) {
		x->gone = true;
		h->nsessions--;
	}
}

static void
http__session_end(struct http_session *x)
{
	struct mri_http *h = x->h;

	pthread_mutex_lock(&h->lock);
	http__session_gone(h, x);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
}

/* The reaper: sessions idle for idle_ms end; ended ones that no call
 * holds are closed and freed. */
static void *
http__reaper(void *arg)
{
	struct mri_http *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct http_session **pp = &h->sessions, *dead = NULL, *x;
		uint64_t              now = mri_mono_ms();

		while ((x = *pp) != NULL) {
			if (x->refs == 0 && !x->gone &&
			    now - x->last_ms >= h->idle_ms) {
				mri_info("component=http session=%s msg=\"idle "
					 "for %u ms: ended\"",
					 x->id, h->idle_ms);
				http__session_gone(h, x);
			}
			if (x->refs == 0 && x->gone) {
				*pp     = x->next;
				x->next = dead;
				dead    = x;
			} else {
				pp = &x->next;
			}
		}
		if (dead != NULL) {
			pthread_mutex_unlock(&h->lock);
			while ((x = dead) != NULL) {
				dead = x->next;
				nng_close(x->sock);
				free(x);
			}
			pthread_mutex_lock(&h->lock);
			continue;
		}
		if (h->stopping && h->sessions == NULL)
			break;
		// The connections that ended, too (http_server.c).
		pthread_mutex_unlock(&h->lock);
		http__conns_reap(h, false);
		pthread_mutex_lock(&h->lock);
		(void)mri_cond_wait_until(&h->cv, &h->lock,
					  mri_deadline_in(HTTP__REAP_MS));
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int
http__sessions_start(struct mri_http *h)
{
	if (pthread_create(&h->reaper, NULL, http__reaper, h) != 0)
		return MR_ENOMEM;
	h->reaper_started = true;
	return MR_OK;
}

void
http__sessions_stop(struct mri_http *h)
{
	struct http_session *all, *x;
	bool                 busy;

	if (!h->reaper_started)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	all         = h->sessions;
	h->sessions = NULL;
	for (x = all; x != NULL; x = x->next)
		http__session_gone(h, x);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->reaper, NULL);
	h->reaper_started = false;
	// Closing a session's socket ends its calls in flight (each answers
	// its request); their last release wakes this wait.
	for (x = all; x != NULL; x = x->next)
		nng_close(x->sock);
	pthread_mutex_lock(&h->lock);
	do {
		busy = false;
		for (x = all; x != NULL; x = x->next)
			busy |= x->refs > 0;
		if (busy)
			(void)mri_cond_wait_until(&h->cv, &h->lock,
						  mri_deadline_in(1000));
	} while (busy);
	pthread_mutex_unlock(&h->lock);
	while ((x = all) != NULL) {
		all = x->next;
		free(x);
	}
}

/* ---- SUBSCRIBE ---- */

/* op->state of a subscribe: the new session, ended unless subscribed. */
static void
http__subscribe_abandon(void *arg)
{
	struct http_session *x = arg;

	if (x->session == 0)
		http__session_end(x);
}

static void
http__subscribe_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		      size_t len)
{
	struct http_session *x = op->state;
	json_t              *o;
	json_int_t           id;

	o  = rop == MRI_OP_SUBSCRIBE_REPLY
		 ? json_loadb((const char *)body, len, 0, NULL)
		 : NULL;
	id = json_integer_value(json_object_get(o, "session"));
	if (o == NULL || id <= 0) {
		json_decref(o);
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's SUBSCRIBE reply has no "
				  "session");
		return;
	}
	pthread_mutex_lock(&op->h->lock);
	x->session = (uint64_t)id;
	pthread_mutex_unlock(&op->h->lock);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "session", json_string(x->id));
	json_object_set_new(o, "idle_ms", json_integer(op->h->idle_ms));
	mri_info("component=http session=%s group=%s msg=\"subscribed\"",
		 x->id, json_string_value(json_object_get(o, "group")));
	http__reply_json(op, 200, o);
}

void
http__subscribe(struct http_op *op)
{
	struct mri_http     *h = op->h;
	struct http_session *x;
	unsigned char        raw[16];
	json_t              *b;
	char                *text;
	struct mri_wbuf      w;
	int                  rv;

	if ((b = http__body_object(op, false)) == NULL)
		return;
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		http__reply_error(op, 500, MR_ENOMEM, "out of memory");
		return;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		free(x);
		http__reply_error(op, 500, MR_EIO, "no random bytes: %s",
				  strerror(errno));
		return;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(x->id + 2 * i, 3, "%02x", raw[i]);
	x->h = h;
	if ((rv = nng_req0_open(&x->sock)) != 0) {
		free(x);
		http__reply_error(op, 503, MR_ETRANSPORT, "nng: %s",
				  nng_strerror(rv));
		return;
	}
	nng_socket_set_ms(x->sock, NNG_OPT_REQ_RESENDTIME,
			  NNG_DURATION_INFINITE);
	nng_socket_set_size(x->sock, NNG_OPT_RECVMAXSZ, 0);
	if ((rv = nng_dial(x->sock, h->upstream, NULL, 0)) != 0) {
		nng_close(x->sock);
		free(x);
		http__reply_error(op, 503, MR_ETRANSPORT,
				  "cannot reach the front door: %s",
				  nng_strerror(rv));
		return;
	}
	pthread_mutex_lock(&h->lock);
	if (h->stopping || h->nsessions >= h->max_sessions) {
		bool stopping = h->stopping;

		pthread_mutex_unlock(&h->lock);
		nng_close(x->sock);
		free(x);
		if (stopping)
			http__reply_error(op, 503, MR_ESHUTDOWN,
					  "mailroomd is stopping");
		else
			http__reply_error(op, 429, MR_EBUSY,
					  "%zu HTTP sessions are open "
					  "(http.max_sessions): close one, or "
					  "try again",
					  h->max_sessions);
		return;
	}
	h->nsessions++;
	x->refs    = 1; /* the call's */
	x->last_ms = mri_mono_ms();
	x->next    = h->sessions;
	h->sessions = x;
	pthread_mutex_unlock(&h->lock);
	op->state      = x;
	op->state_free = http__subscribe_abandon;

	if ((text = json_dumps(b, JSON_COMPACT)) == NULL) {
		op->sess = x; /* released after the abandon */
		http__reply_error(op, 500, MR_ENOMEM, "out of memory");
		return;
	}
	mri_wbuf_init(&w);
	mri_frame_begin(&w, MRI_OP_SUBSCRIBE);
	mri_wbuf_put(&w, text, strlen(text));
	mri_frame_end(&w);
	free(text);
	http__call(op, x->sock, &w, HTTP__CALL_MS, x, http__subscribe_reply);
	mri_wbuf_fini(&w);
}

/* ---- FETCH ---- */

static json_t *
http__message_json(const struct mri_msg_view *m)
{
	struct mri_hdr_view hdrs[MRI_HDR_COUNT_MAX];
	const uint8_t      *pos = m->hdrs;
	char                handle[24];
	json_t             *o;

	for (uint16_t i = 0; i < m->hdr_count; i++)
		mri_pub_next_hdr(&pos, &hdrs[i]);
	snprintf(handle, sizeof(handle), "%llu",
		 (unsigned long long)m->handle);
	o = json_pack("{s:s, s:s#, s:i, s:I, s:I, s:i, s:b}", "handle",
		      handle, "topic", m->topic, (int)m->topic_len,
		      "partition", (int)m->partition, "offset",
		      (json_int_t)m->offset, "timestamp_ms",
		      (json_int_t)m->timestamp_ms, "attempt",
		      (int)m->attempt, "redelivery",
		      (m->flags & MRI_MSG_F_REDELIVERY) != 0);
	if (o == NULL)
		return NULL;
	// An id is any bytes (a foreign producer's): text or base64.
	mri_admin_json_bytes(o, "id", m->id, m->id_len);
	mri_admin_json_bytes(o, "key",
			     (m->flags & MRI_MSG_F_KEY) ? m->key : NULL,
			     m->key_len);
	mri_admin_json_bytes(o, "value", m->payload, m->payload_len);
	json_object_set_new(o, "headers",
			    mri_admin_json_headers(hdrs, m->hdr_count));
	return o;
}

static void
http__fetch_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		  size_t len)
{
	struct mri_msg_view *msgs = NULL;
	uint32_t             n    = 0;
	const char          *why;
	json_t              *arr;

	if (rop != MRI_OP_FETCH_REPLY ||
	    mri_fetch_reply_decode(body, len, &msgs, &n, &why) != MR_OK) {
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's answer is not a "
				  "FETCH_REPLY");
		return;
	}
	arr = json_array();
	for (uint32_t i = 0; i < n; i++) {
		json_t *m = http__message_json(&msgs[i]);

		// A message left out would be held and never acked.
		if (m == NULL || json_array_append_new(arr, m) != 0) {
			free(msgs);
			json_decref(arr);
			http__reply_error(op, 500, MR_ENOMEM,
					  "out of memory for the messages; "
					  "they are delivered again after "
					  "their ack deadline");
			return;
		}
	}
	free(msgs);
	http__reply_json(op, 200,
			 json_pack("{s:b, s:o}", "ok", 1, "messages", arr));
}

void
http__fetch(struct http_op *op)
{
	static const char *const known[] = {"max_messages", "max_bytes",
					    "wait_ms", NULL};
	long long                max = 100, bytes = 0, wait = 1000;
	struct http_session     *x;
	struct mri_fetch         f;
	struct mri_wbuf          w;
	json_t                  *b;
	char                     why[1024];

	if ((b = http__body_object(op, true)) == NULL)
		return;
	if (mri_http_only(b, known, why, sizeof(why)) != MR_OK ||
	    mri_http_int_member(b, "max_messages", 1, MRI_FETCH_MAX_MSGS,
				&max, why, sizeof(why)) != MR_OK ||
	    mri_http_int_member(b, "max_bytes", 0, UINT32_MAX, &bytes, why,
				sizeof(why)) != MR_OK ||
	    mri_http_int_member(b, "wait_ms", 0, MRI_FETCH_MAX_WAIT_MS, &wait,
				why, sizeof(why)) != MR_OK) {
		http__reply_error(op, 400, MR_EINVAL, "%s", why);
		return;
	}
	if ((x = http__session_find(op, op->seg[2])) == NULL)
		return;
	f = (struct mri_fetch){.session     = x->session,
			       .max_msgs    = (uint32_t)max,
			       .max_bytes   = (uint32_t)bytes,
			       .max_wait_ms = (uint32_t)wait};
	mri_wbuf_init(&w);
	mri_fetch_encode(&w, &f);
	http__call(op, x->sock, &w, (int)wait + HTTP__CALL_MS, x,
		   http__fetch_reply);
	mri_wbuf_fini(&w);
}

/* ---- SETTLE ---- */

static void
http__settle_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		   size_t len)
{
	struct mri_settle_fail *f = NULL;
	uint32_t                settled, nf;
	const char             *why;
	json_t                 *arr;

	if (rop != MRI_OP_SETTLE_REPLY ||
	    mri_settle_reply_decode(body, len, &settled, &f, &nf, &why) !=
		MR_OK) {
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's answer is not a "
				  "SETTLE_REPLY");
		return;
	}
	arr = json_array();
	for (uint32_t i = 0; i < nf; i++) {
		char handle[24];

		snprintf(handle, sizeof(handle), "%llu",
			 (unsigned long long)f[i].handle);
		json_array_append_new(
		    arr, json_pack("{s:s, s:s}", "handle", handle, "error",
				   mr_err_name(f[i].status)));
	}
	free(f);
	http__reply_json(op, 200,
			 json_pack("{s:b, s:I, s:o}", "ok", 1, "settled",
				   (json_int_t)settled, "failed", arr));
}

void
http__settle(struct http_op *op)
{
	static const char *const known[] = {"handles", "reason", "extend_ms",
					    NULL};
	const char              *verb    = op->seg[3];
	struct mri_settle        s       = {0};
	struct mri_range        *ranges;
	struct http_session     *x;
	uint64_t                *v;
	uint32_t                 nr = 0;
	long long                extend = 0;
	size_t                   n;
	struct mri_wbuf          w;
	json_t                  *b, *reason;
	char                     why[1024];
	int                      rc;

	if (strcmp(verb, "ack") == 0)
		s.kind = MRI_SETTLE_ACK;
	else if (strcmp(verb, "nack") == 0)
		s.kind = MRI_SETTLE_NACK;
	else if (strcmp(verb, "reject") == 0)
		s.kind = MRI_SETTLE_REJECT;
	else
		s.kind = MRI_SETTLE_EXTEND;
	if ((b = http__body_object(op, false)) == NULL)
		return;
	if (mri_http_only(b, known, why, sizeof(why)) != MR_OK ||
	    mri_http_int_member(b, "extend_ms", 1, UINT32_MAX, &extend, why,
				sizeof(why)) != MR_OK) {
		http__reply_error(op, 400, MR_EINVAL, "%s", why);
		return;
	}
	reason = json_object_get(b, "reason");
	if ((reason != NULL &&
	     (s.kind == MRI_SETTLE_ACK || s.kind == MRI_SETTLE_EXTEND ||
	      !json_is_string(reason) ||
	      json_string_length(reason) > MRI_REASON_MAX)) ||
	    ((extend != 0) != (s.kind == MRI_SETTLE_EXTEND))) {
		http__reply_error(op, 400, MR_EINVAL,
				  "%s takes %s", verb,
				  s.kind == MRI_SETTLE_EXTEND
				      ? "handles and extend_ms (> 0)"
				  : s.kind == MRI_SETTLE_ACK
				      ? "handles only"
				      : "handles and an optional reason (a "
					"string of at most 1024 bytes)");
		return;
	}
	rc = mri_http_handles(json_object_get(b, "handles"), &v, &n, why,
			      sizeof(why));
	if (rc != MR_OK) {
		if (rc == MR_ENOMEM)
			snprintf(why, sizeof(why), "out of memory");
		http__reply_error(op, http__status(rc), rc, "%s", why);
		return;
	}
	if ((ranges = calloc(n, sizeof(*ranges))) == NULL) {
		free(v);
		http__reply_error(op, 500, MR_ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (nr > 0 && ranges[nr - 1].first + ranges[nr - 1].count ==
				  v[i])
			ranges[nr - 1].count++;
		else
			ranges[nr++] = (struct mri_range){v[i], 1};
	}
	free(v);
	if ((x = http__session_find(op, op->seg[2])) == NULL) {
		free(ranges);
		return;
	}
	s.session    = x->session;
	s.extend_ms  = (uint32_t)extend;
	s.reason     = json_string_value(reason);
	s.reason_len = (uint16_t)json_string_length(reason);
	mri_wbuf_init(&w);
	mri_settle_encode(&w, &s, ranges, nr);
	free(ranges);
	http__call(op, x->sock, &w, HTTP__CALL_MS, x, http__settle_reply);
	mri_wbuf_fini(&w);
}

/* ---- ASSIGNMENT and UNSUBSCRIBE ---- */

static void
http__assignment_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		       size_t len)
{
	struct mri_assigned *a = NULL;
	size_t               n = 0;
	const char          *why;
	json_t              *arr;

	if (rop != MRI_OP_ASSIGNMENT_REPLY ||
	    mri_assignment_reply_decode(body, len, &a, &n, &why) != MR_OK) {
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's answer is not an "
				  "ASSIGNMENT reply");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:i}", "topic",
						     a[i].topic, "partition",
						     (int)a[i].partition));
	free(a);
	http__reply_json(op, 200,
			 json_pack("{s:b, s:o}", "ok", 1, "partitions", arr));
}

void
http__assignment(struct http_op *op)
{
	struct http_session *x;
	struct mri_wbuf      w;

	if ((x = http__session_find(op, op->seg[2])) == NULL)
		return;
	mri_wbuf_init(&w);
	mri_assignment_encode(&w, x->session);
	http__call(op, x->sock, &w, HTTP__CALL_MS, x, http__assignment_reply);
	mri_wbuf_fini(&w);
}

static void
http__unsubscribe_reply(struct http_op *op, uint8_t rop,
			const uint8_t *body, size_t len)
{
	mri_info("component=http session=%s msg=\"unsubscribed\"",
		 op->sess->id);
	http__reply_json(op, 200, json_pack("{s:b}", "ok", 1));
}

void
http__unsubscribe(struct http_op *op)
{
	struct http_session *x;
	struct mri_wbuf      w;

	if ((x = http__session_find(op, op->seg[2])) == NULL)
		return;
	// Ended whatever the answer: closing its connection ends the front
	// door's session too.
	http__session_end(x);
	mri_wbuf_init(&w);
	mri_unsubscribe_encode(&w, x->session);
	http__call(op, x->sock, &w, HTTP__CALL_MS, x,
		   http__unsubscribe_reply);
	mri_wbuf_fini(&w);
}
