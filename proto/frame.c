#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/reader.h"

/* Smallest encoded message: topic len, 1-byte topic, flags, id len, header
 * count, payload len. Bounds the count before anything is allocated. */
#define FRAME__PUB_MIN 11
/* Smallest encoded ack: status, flags, partition, offset, and the topic, id
 * and error lengths, all three of which may be zero. */
#define FRAME__ACK_MIN 20

void
mri_wbuf_init(struct mri_wbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void
mri_wbuf_fini(struct mri_wbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int
mri_wbuf_reserve(struct mri_wbuf *b, size_t more)
{
	size_t   cap;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (b->cap - b->len >= more)
		return MR_OK;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2) {
			b->err = MR_ENOMEM;
			return b->err;
		}
		cap *= 2;
	}
	if ((p = realloc(b->data, cap)) == NULL) {
		b->err = MR_ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap  = cap;
	return MR_OK;
}

void
mri_wbuf_put(struct mri_wbuf *b, const void *p, size_t n)
{
	if (n == 0 || mri_wbuf_reserve(b, n) != MR_OK)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
mri_wbuf_u8(struct mri_wbuf *b, uint8_t v)
{
	mri_wbuf_put(b, &v, 1);
}

void
mri_wbuf_u16(struct mri_wbuf *b, uint16_t v)
{
	uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	mri_wbuf_put(b, p, 2);
}

void
mri_wbuf_u32(struct mri_wbuf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};

	mri_wbuf_put(b, p, 4);
}

void
mri_wbuf_u64(struct mri_wbuf *b, uint64_t v)
{
	mri_wbuf_u32(b, (uint32_t)v);
	mri_wbuf_u32(b, (uint32_t)(v >> 32));
}

void
mri_frame_begin(struct mri_wbuf *b, uint8_t op)
{
	b->len = 0;
	mri_wbuf_u8(b, MRI_FRAME_MAGIC0);
	mri_wbuf_u8(b, MRI_FRAME_MAGIC1);
	mri_wbuf_u8(b, MRI_PROTO_VERSION);
	mri_wbuf_u8(b, op);
	mri_wbuf_u16(b, 0);
	mri_wbuf_u16(b, 0);
	mri_wbuf_u32(b, 0);
}

int
mri_frame_end(struct mri_wbuf *b)
{
	size_t body;

	if (b->err)
		return b->err;
	body = b->len - MRI_FRAME_HDR_LEN;
	if (body > UINT32_MAX)
		return MR_ETOOBIG;
	b->data[8]  = (uint8_t)body;
	b->data[9]  = (uint8_t)(body >> 8);
	b->data[10] = (uint8_t)(body >> 16);
	b->data[11] = (uint8_t)(body >> 24);
	return MR_OK;
}

static void
frame__put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void
mri_publish_seq_reserve(struct mri_wbuf *b)
{
	static const uint8_t zero[MRI_PUB_SEQ_LEN];

	if (b->err || b->len != MRI_FRAME_HDR_LEN)
		return;
	b->data[4] |= MRI_FRAME_F_SEQ;
	mri_wbuf_put(b, zero, sizeof(zero));
}

void
mri_publish_seq_put(uint8_t *frame, const struct mri_pub_seq *s)
{
	uint8_t *p = frame + MRI_FRAME_HDR_LEN;

	frame__put_le32(p, (uint32_t)s->stream);
	frame__put_le32(p + 4, (uint32_t)(s->stream >> 32));
	frame__put_le32(p + 8, s->seq);
	frame__put_le32(p + 12, s->base);
}

int
mri_publish_seq_decode(const void *body, size_t len, struct mri_pub_seq *out,
		       const char **why)
{
	const uint8_t *p = body;

	if (len < MRI_PUB_SEQ_LEN) {
		*why = "PUBLISH body shorter than its sequence";
		return MR_EPROTO;
	}
	out->stream = mri_le64(p);
	out->seq    = mri_le32(p + 8);
	out->base   = mri_le32(p + 12);
	if (out->stream == 0) {
		*why = "PUBLISH sequence has stream 0";
		return MR_EPROTO;
	}
	if (mri_seq_before(out->seq, out->base)) {
		*why = "PUBLISH sequence has a base after its seq";
		return MR_EPROTO;
	}
	return MR_OK;
}

const uint8_t *
mri_publish_messages(const uint8_t *body, size_t *len, uint16_t flags)
{
	if (!(flags & MRI_FRAME_F_SEQ))
		return body;
	if (*len < MRI_PUB_SEQ_LEN)
		return NULL;
	*len -= MRI_PUB_SEQ_LEN;
	return body + MRI_PUB_SEQ_LEN;
}

int
mri_frame_parse_hdr(const void *frame, size_t len, struct mri_frame_hdr *hdr,
		    const char **why)
{
	const uint8_t *p = frame;

	if (len < MRI_FRAME_HDR_LEN) {
		*why = "frame shorter than its 12-byte header";
		return MR_EPROTO;
	}
	if (p[0] != MRI_FRAME_MAGIC0 || p[1] != MRI_FRAME_MAGIC1) {
		*why = "bad magic: not a mailroom frame";
		return MR_EPROTO;
	}
	hdr->version  = p[2];
	hdr->op       = p[3];
	hdr->flags    = mri_le16(p + 4);
	hdr->body_len = mri_le32(p + 8);
	if (hdr->version != MRI_PROTO_VERSION) {
		*why = "unsupported protocol version (this mailroomd speaks 1)";
		return MR_EVERSION;
	}
	if (mri_le16(p + 6) != 0) {
		*why = "reserved header bytes are not zero";
		return MR_EPROTO;
	}
	if ((size_t)hdr->body_len != len - MRI_FRAME_HDR_LEN) {
		*why = "body length disagrees with the frame (truncated or "
		       "trailing bytes)";
		return MR_EPROTO;
	}
	return MR_OK;
}

bool
mri_topic_valid(const char *t, size_t len)
{
	if (len == 0 || len > MRI_TOPIC_MAX)
		return false;
	if ((len == 1 && t[0] == '.') || (len == 2 && t[0] == '.' && t[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int
mri_publish_decode_into(const void *body, size_t len,
			struct mri_pub_view **views, uint32_t *cap,
			uint32_t *count, const char **why, int64_t *bad_index)
{
	struct rd            r = rd_init(body, len);
	struct mri_pub_view *v;
	uint32_t             n;

	*count     = 0;
	*bad_index = -1;
	n          = rd_u32(&r);
	if (!r.ok) {
		*why = "PUBLISH body shorter than its message count";
		return MR_EPROTO;
	}
	if (n == 0 || n > MRI_BATCH_MAX) {
		*why = "PUBLISH must carry 1 to 100000 messages";
		return MR_EPROTO;
	}
	if ((size_t)n > (len - 4) / FRAME__PUB_MIN) {
		*why = "PUBLISH message count exceeds what the body can hold";
		return MR_EPROTO;
	}
	if (n > *cap) {
		if ((v = realloc(*views, n * sizeof(*v))) == NULL) {
			*why = "out of memory";
			return MR_ENOMEM;
		}
		*views = v;
		*cap   = n;
	}
	v = *views;
	for (uint32_t i = 0; i < n; i++) {
		struct mri_pub_view *m = &v[i];
		uint8_t              flags;

		*bad_index   = i;
		m->topic_len = rd_u16(&r);
		m->topic     = rd_bytes(&r, m->topic_len);
		flags        = rd_u8(&r);
		if (!r.ok)
			goto truncated;
		if (!mri_topic_valid(m->topic, m->topic_len)) {
			*why = "invalid topic name (1-249 of [a-zA-Z0-9._-])";
			goto invalid;
		}
		if (flags & ~MRI_PUB_F_KEY) {
			*why = "unknown message flags";
			goto invalid;
		}
		m->has_key = (flags & MRI_PUB_F_KEY) != 0;
		m->key     = NULL;
		m->key_len = 0;
		if (m->has_key) {
			m->key_len = rd_u32(&r);
			m->key     = rd_bytes(&r, m->key_len);
		}
		m->id_len    = rd_u8(&r);
		m->id        = rd_bytes(&r, m->id_len);
		m->hdr_count = rd_u16(&r);
		if (!r.ok)
			goto truncated;
		if (m->hdr_count > MRI_HDR_COUNT_MAX) {
			*why = "more than 256 headers on one message";
			goto invalid;
		}
		m->hdrs = r.p;
		for (uint16_t h = 0; h < m->hdr_count; h++) {
			uint16_t nl = rd_u16(&r);

			rd_bytes(&r, nl);
			rd_bytes(&r, rd_u32(&r));
			if (!r.ok)
				goto truncated;
			if (nl == 0 || nl > MRI_HDR_NAME_MAX) {
				*why = "header name empty or longer than 255";
				goto invalid;
			}
		}
		m->payload_len = rd_u32(&r);
		m->payload     = rd_bytes(&r, m->payload_len);
		if (!r.ok)
			goto truncated;
	}
	if (r.p != r.end) {
		*why       = "trailing bytes after the last message";
		*bad_index = -1;
		return MR_EPROTO;
	}
	*bad_index = -1;
	*count     = n;
	return MR_OK;

truncated:
	*why = "PUBLISH message truncated";
	return MR_EPROTO;
invalid:
	return MR_EINVAL;
}

int
mri_publish_decode(const void *body, size_t len, struct mri_pub_view **out,
		   uint32_t *count, const char **why, int64_t *bad_index)
{
	uint32_t cap = 0;
	int      rc;

	*out = NULL;
	rc   = mri_publish_decode_into(body, len, out, &cap, count, why,
				       bad_index);
	if (rc != MR_OK) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

void
mri_pub_next_hdr(const uint8_t **pos, struct mri_hdr_view *h)
{
	const uint8_t *p = *pos;

	h->name_len  = mri_le16(p);
	h->name      = (const char *)p + 2;
	p           += 2 + h->name_len;
	h->value_len = mri_le32(p);
	h->value     = p + 4;
	*pos         = p + 4 + h->value_len;
}

void
mri_publish_encode_msg(struct mri_wbuf *b, const char *topic,
		       size_t topic_len, const void *key, size_t key_len,
		       bool has_key, const char *id, size_t id_len,
		       uint16_t hdr_count, const struct mri_hdr_view *hdrs,
		       const void *payload, size_t payload_len)
{
	mri_wbuf_u16(b, (uint16_t)topic_len);
	mri_wbuf_put(b, topic, topic_len);
	mri_wbuf_u8(b, has_key ? MRI_PUB_F_KEY : 0);
	if (has_key) {
		mri_wbuf_u32(b, (uint32_t)key_len);
		mri_wbuf_put(b, key, key_len);
	}
	mri_wbuf_u8(b, (uint8_t)id_len);
	mri_wbuf_put(b, id, id_len);
	mri_wbuf_u16(b, hdr_count);
	for (uint16_t i = 0; i < hdr_count; i++) {
		mri_wbuf_u16(b, hdrs[i].name_len);
		mri_wbuf_put(b, hdrs[i].name, hdrs[i].name_len);
		mri_wbuf_u32(b, hdrs[i].value_len);
		mri_wbuf_put(b, hdrs[i].value, hdrs[i].value_len);
	}
	mri_wbuf_u32(b, (uint32_t)payload_len);
	mri_wbuf_put(b, payload, payload_len);
}

void
mri_ack_encode(struct mri_wbuf *b, const struct mri_ack_view *a)
{
	mri_wbuf_u16(b, a->status);
	mri_wbuf_u8(b, a->flags);
	mri_wbuf_u32(b, (uint32_t)a->partition);
	mri_wbuf_u64(b, (uint64_t)a->offset);
	mri_wbuf_u16(b, a->topic_len);
	mri_wbuf_put(b, a->topic, a->topic_len);
	mri_wbuf_u8(b, a->id_len);
	mri_wbuf_put(b, a->id, a->id_len);
	mri_wbuf_u16(b, a->errmsg_len);
	mri_wbuf_put(b, a->errmsg, a->errmsg_len);
	if (a->flags & MRI_ACK_F_BACKPRESSURE) {
		mri_wbuf_u8(b, a->bp_kind);
		mri_wbuf_u32(b, a->held_ms);
		mri_wbuf_u32(b, a->retry_after_ms);
		mri_wbuf_u64(b, (uint64_t)a->bp_lag);
		mri_wbuf_u64(b, (uint64_t)a->bp_bound);
	}
}

int
mri_ack_decode(const void *body, size_t len, struct mri_ack_view **out,
	       uint32_t *count, const char **why)
{
	struct rd            r = rd_init(body, len);
	struct mri_ack_view *v;
	uint32_t             n;

	*out   = NULL;
	*count = 0;
	n      = rd_u32(&r);
	if (!r.ok || n > MRI_BATCH_MAX ||
	    (size_t)n > (len - 4) / FRAME__ACK_MIN) {
		*why = "PUBLISH_ACK count is missing or impossible";
		return MR_EPROTO;
	}
	if (n == 0) {
		*why = "PUBLISH_ACK carries no acks";
		return MR_EPROTO;
	}
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		*why = "out of memory";
		return MR_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct mri_ack_view *a = &v[i];

		a->status     = rd_u16(&r);
		a->flags      = rd_u8(&r);
		a->partition  = (int32_t)rd_u32(&r);
		a->offset     = (int64_t)rd_u64(&r);
		a->topic_len  = rd_u16(&r);
		a->topic      = rd_bytes(&r, a->topic_len);
		a->id_len     = rd_u8(&r);
		a->id         = rd_bytes(&r, a->id_len);
		a->errmsg_len = rd_u16(&r);
		a->errmsg     = rd_bytes(&r, a->errmsg_len);
		if (a->flags & ~MRI_ACK_F_ALL) {
			*why = "PUBLISH_ACK has unknown ack flags";
			free(v);
			return MR_EPROTO;
		}
		if (a->flags & MRI_ACK_F_BACKPRESSURE) {
			a->bp_kind        = rd_u8(&r);
			a->held_ms        = rd_u32(&r);
			a->retry_after_ms = rd_u32(&r);
			a->bp_lag         = (int64_t)rd_u64(&r);
			a->bp_bound       = (int64_t)rd_u64(&r);
		}
	}
	if (!r.ok || r.p != r.end) {
		*why = "PUBLISH_ACK truncated or with trailing bytes";
		free(v);
		return MR_EPROTO;
	}
	*out   = v;
	*count = n;
	return MR_OK;
}

void
mri_error_encode(struct mri_wbuf *b, uint16_t code, const char *msg)
{
	size_t n = strlen(msg);

	if (n > MRI_ERRMSG_MAX)
		n = MRI_ERRMSG_MAX;
	mri_frame_begin(b, MRI_OP_ERROR);
	mri_wbuf_u16(b, code);
	mri_wbuf_u16(b, (uint16_t)n);
	mri_wbuf_put(b, msg, n);
	mri_frame_end(b);
}

int
mri_error_decode(const void *body, size_t len, uint16_t *code,
		 const char **msg, uint16_t *msg_len)
{
	struct rd r = rd_init(body, len);

	*code    = rd_u16(&r);
	*msg_len = rd_u16(&r);
	*msg     = rd_bytes(&r, *msg_len);
	if (!r.ok || r.p != r.end)
		return MR_EPROTO;
	return MR_OK;
}
