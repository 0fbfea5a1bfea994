/*
 * Publishing over HTTP (docs/HTTP.md, "Publishing"): a JSON message or
 * batch, or a raw body with the key in the path, made into one PUBLISH
 * frame; its PUBLISH_ACK made into JSON.
 */
#include "http_internal.h"
#include "http_parse.h"

#include "broker/admin_dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailroom/envelope.h"
#include "mailroom/error.h"
#include "proto/header.h"

/* How long a publish may take: the front door answers each one, after
 * Kafka's timeout at the latest; this only bounds a wedged daemon. */
#define HTTP__PUBLISH_MS (3600 * 1000 + 60 * 1000)

/* The topic of the path. @returns NULL after answering 400. */
static const char *
http__topic(struct http_op *op)
{
	const char *t = op->seg[2];

	if (!mri_topic_valid(t, strlen(t))) {
		http__reply_error(op, 400, MR_EINVAL,
				  "\"%.64s\" is not a topic name: 1 to 249 of "
				  "a-z A-Z 0-9 . _ -",
				  t);
		return NULL;
	}
	return t;
}

static void
http__publish_reply(struct http_op *op, uint8_t rop, const uint8_t *body,
		    size_t len)
{
	struct mri_ack_view *acks = NULL;
	uint32_t             n    = 0, failed = 0;
	const char          *why;
	json_t              *arr, *o;
	int                  first = MR_OK;

	if (rop != MRI_OP_PUBLISH_ACK ||
	    mri_ack_decode(body, len, &acks, &n, &why) != MR_OK) {
		http__reply_error(op, 500, MR_EINTERNAL,
				  "the front door's answer is not a "
				  "PUBLISH_ACK");
		return;
	}
	arr = json_array();
	for (uint32_t i = 0; i < n; i++) {
		const struct mri_ack_view *a = &acks[i];
		json_t                    *x;

		x = json_pack("{s:s#}", "topic", a->topic, (int)a->topic_len);
		mri_admin_json_bytes(x, "id", a->id, a->id_len);
		if (a->status == MR_OK) {
			json_object_set_new(x, "partition",
					    json_integer(a->partition));
			json_object_set_new(x, "offset",
					    json_integer(a->offset));
			json_object_set_new(
			    x, "duplicate",
			    json_boolean(a->flags & MRI_ACK_F_DUPLICATE));
		} else {
			failed++;
			if (first == MR_OK)
				first = a->status;
			json_object_set_new(
			    x, "error", json_string(mr_err_name(a->status)));
			json_object_set_new(
			    x, "message",
			    json_stringn(a->errmsg, a->errmsg_len));
		}
		if (a->flags & MRI_ACK_F_BACKPRESSURE) {
			json_object_set_new(x, "held_ms",
					    json_integer(a->held_ms));
			if (a->status == MR_EBUSY) {
				json_object_set_new(
				    x, "retry_after_ms",
				    json_integer(a->retry_after_ms));
				json_object_set_new(x, "lag",
						    json_integer(a->bp_lag));
				json_object_set_new(x, "bound",
						    json_integer(a->bp_bound));
			}
		}
		json_array_append_new(arr, x);
	}
	free(acks);
	o = json_pack("{s:b, s:I, s:I, s:o}", "ok", failed == 0, "published",
		      (json_int_t)(n - failed), "failed", (json_int_t)failed,
		      "acks", arr);
	if (first != MR_OK) {
		json_object_set_new(o, "error",
				    json_string(mr_err_name(first)));
		json_object_set_new(o, "message",
				    json_sprintf("%u of %u messages failed; "
						 "the first with %s: each ack "
						 "says why",
						 failed, n,
						 mr_err_name(first)));
	}
	http__reply_json(op, http__status(first), o);
}

void
http__publish(struct http_op *op)
{
	const char     *topic = http__topic(op);
	char            why[512];
	struct mri_wbuf w;
	json_t         *b;
	int             rc;

	if (topic == NULL || (b = http__body_object(op, false)) == NULL)
		return;
	mri_wbuf_init(&w);
	if ((rc = mri_http_publish_encode(&w, topic, b, why, sizeof(why))) !=
	    MR_OK) {
		mri_wbuf_fini(&w);
		if (rc == MR_ENOMEM)
			snprintf(why, sizeof(why), "out of memory");
		http__reply_error(op, http__status(rc), rc, "%s", why);
		return;
	}
	http__call(op, op->h->sock, &w, HTTP__PUBLISH_MS, NULL,
		   http__publish_reply);
	mri_wbuf_fini(&w);
}

void
http__publish_raw(struct http_op *op)
{
	struct mri_hdr_view hdrs[MRI_HTTP_HEADERS_MAX];
	char                names[MRI_HTTP_HEADERS_MAX][MRI_HDR_NAME_MAX + 1];
	const char         *topic = http__topic(op), *key, *id;
	struct mri_wbuf     w;
	size_t              nh = 0;

	if (topic == NULL)
		return;
	key = op->seg[4];
	id  = http__header(op, "ce-id");
	if (id != NULL && (strlen(id) == 0 || strlen(id) > MRI_ID_MAX)) {
		http__reply_error(op, 400, MR_EINVAL,
				  "ce-id must be 1 to %d bytes", MRI_ID_MAX);
		return;
	}
	if (op->body_len > UINT32_MAX) {
		http__reply_error(op, 413, MR_ETOOBIG, "the body is too large");
		return;
	}
	for (size_t i = 0; i < op->head.nhdr; i++) {
		const char *name = mri_http_raw_name(
		    op->head.hdr[i].name, names[nh], sizeof(names[nh]));
		const char *v    = op->head.hdr[i].value;

		if (name == NULL)
			continue;
		hdrs[nh++] = (struct mri_hdr_view){
		    .name      = name,
		    .name_len  = (uint16_t)strlen(name),
		    .value     = v,
		    .value_len = (uint32_t)strlen(v),
		};
	}
	mri_wbuf_init(&w);
	mri_frame_begin(&w, MRI_OP_PUBLISH);
	mri_wbuf_u32(&w, 1);
	mri_publish_encode_msg(&w, topic, strlen(topic), key, strlen(key),
			       true, id, id != NULL ? strlen(id) : 0,
			       (uint16_t)nh, hdrs, op->body, op->body_len);
	mri_frame_end(&w);
	http__call(op, op->h->sock, &w, HTTP__PUBLISH_MS, NULL,
		   http__publish_reply);
	mri_wbuf_fini(&w);
}
