#include "consume_reply.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/frame.h"

// The group hands out what the wire can carry.
_Static_assert(MRI_GROUP_ID_MAX == MRI_ID_MAX, "id limit");
_Static_assert(MRI_GROUP_HDR_MAX == MRI_HDR_COUNT_MAX, "header count");
_Static_assert(MRI_GROUP_HDR_NAME_MAX == MRI_HDR_NAME_MAX, "header name");
_Static_assert(MRI_TOPIC_MAX <= UINT16_MAX, "topic length");

/* The wire view of delivery \p d; \p hv (MRI_HDR_COUNT_MAX) holds its
 * headers'. */
static void
consume__view(const struct mri_group_delivery *d, struct mri_msg_view *v,
	      struct mri_hdr_view *hv)
{
	memset(v, 0, sizeof(*v));
	v->handle       = d->handle;
	v->topic        = d->topic;
	v->topic_len    = (uint16_t)d->topic_len;
	v->partition    = d->partition;
	v->offset       = d->offset;
	v->timestamp_ms = d->timestamp_ms;
	v->attempt      = d->attempt;
	v->flags        = (d->has_key ? MRI_MSG_F_KEY : 0) |
		   (d->attempt > 1 ? MRI_MSG_F_REDELIVERY : 0);
	v->id          = d->id;
	v->id_len      = (uint8_t)d->id_len;
	v->key         = d->key;
	v->key_len     = (uint32_t)d->key_len;
	v->hdr_count   = (uint16_t)d->nhdrs;
	v->payload     = d->value;
	v->payload_len = (uint32_t)d->value_len;
	for (size_t i = 0; i < d->nhdrs; i++) {
		hv[i].name      = d->hdrs[i].name;
		hv[i].name_len  = (uint16_t)d->hdrs[i].name_len;
		hv[i].value     = d->hdrs[i].value;
		hv[i].value_len = (uint32_t)d->hdrs[i].value_len;
	}
}

size_t
mri_consume_record_size(const struct mri_group_delivery *d)
{
	struct mri_hdr_view hv[MRI_HDR_COUNT_MAX];
	struct mri_msg_view v;

	consume__view(d, &v, hv);
	return mri_msg_size(&v, hv);
}

nng_msg *
mri_consume_fetch_reply(const struct mri_group_batch *b)
{
	struct mri_hdr_view hv[MRI_HDR_COUNT_MAX];
	size_t              len = MRI_FETCH_REPLY_HDR_LEN + b->size;
	nng_msg            *m;
	uint8_t            *p;

	if (len - MRI_FRAME_HDR_LEN > UINT32_MAX || nng_msg_alloc(&m, len))
		return NULL;
	p = nng_msg_body(m);
	mri_fetch_reply_put_hdr(p, len, (uint32_t)b->n);
	p += MRI_FETCH_REPLY_HDR_LEN;
	for (size_t i = 0; i < b->n; i++) {
		struct mri_msg_view v;

		consume__view(&b->d[i], &v, hv);
		p += mri_msg_put(p, &v, hv);
	}
	assert(p == (uint8_t *)nng_msg_body(m) + len);
	return m;
}

nng_msg *
mri_consume_settle_reply(const struct mri_group_settle_result *res)
{
	size_t   len = mri_settle_reply_size(res->nfailed);
	nng_msg *m;
	uint8_t *p;

	if (nng_msg_alloc(&m, len) != 0)
		return NULL;
	p = nng_msg_body(m);
	mri_settle_reply_put_hdr(p, res->settled, res->nfailed);
	for (uint32_t i = 0; i < res->nfailed; i++)
		mri_settle_fail_put(p, i, res->failed[i].handle,
				    res->failed[i].status);
	return m;
}

nng_msg *
mri_consume_error_reply(int code, const char *why)
{
	struct mri_wbuf b;
	char            msg[MRI_ERRMSG_MAX];
	nng_msg        *m = NULL;

	// Small and rare: built in a buffer, then copied.
	snprintf(msg, sizeof(msg), "%s: %s", mr_err_name(code), why);
	mri_wbuf_init(&b);
	mri_error_encode(&b, (uint16_t)code, msg);
	if (b.err == MR_OK && nng_msg_alloc(&m, b.len) == 0)
		memcpy(nng_msg_body(m), b.data, b.len);
	mri_wbuf_fini(&b);
	return m;
}
