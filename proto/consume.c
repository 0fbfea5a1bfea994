#include "consume.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/reader.h"

#define CONSUME__FETCH_LEN 20 /* session, max_msgs, max_bytes, max_wait */
#define CONSUME__RANGE_LEN 12 /* first, count */
#define CONSUME__FAIL_LEN  10 /* handle, status */
#define CONSUME__UNSUB_LEN 8  /* session */
/* Everything of a FETCH_REPLY message but its topic, id, key, headers and
 * payload bytes: handle, topic_len, partition, offset, timestamp, attempt,
 * flags, id_len, key_len, hdr_count, payload_len. */
#define CONSUME__MSG_FIXED 46
/* Smallest encoded message: a 1-byte topic and a 1-byte id. Bounds the
 * count before anything is allocated. */
#define CONSUME__MSG_MIN (CONSUME__MSG_FIXED + 2)

/* ---- FETCH -------------------------------------------------------------- */

void
mri_fetch_encode(struct mri_wbuf *b, const struct mri_fetch *f)
{
	mri_frame_begin(b, MRI_OP_FETCH);
	mri_wbuf_u64(b, f->session);
	mri_wbuf_u32(b, f->max_msgs);
	mri_wbuf_u32(b, f->max_bytes);
	mri_wbuf_u32(b, f->max_wait_ms);
	mri_frame_end(b);
}

int
mri_fetch_decode(const void *body, size_t len, struct mri_fetch *out,
		 const char **why)
{
	struct rd        r = rd_init(body, len);
	struct mri_fetch f;

	memset(out, 0, sizeof(*out));
	if (len != CONSUME__FETCH_LEN) {
		*why = "FETCH body is not 20 bytes";
		return MR_EPROTO;
	}
	f.session     = rd_u64(&r);
	f.max_msgs    = rd_u32(&r);
	f.max_bytes   = rd_u32(&r);
	f.max_wait_ms = rd_u32(&r);
	if (f.max_msgs == 0 || f.max_msgs > MRI_FETCH_MAX_MSGS) {
		*why = "FETCH max_msgs must be 1 to 100000";
		return MR_EINVAL;
	}
	if (f.max_wait_ms > MRI_FETCH_MAX_WAIT_MS) {
		*why = "FETCH max_wait_ms must be at most 300000";
		return MR_EINVAL;
	}
	*out = f;
	return MR_OK;
}

/* ---- FETCH_REPLY -------------------------------------------------------- */

/* Little-endian writers for the encoders that write in place. */
static uint8_t *
consume__le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *
consume__le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + 4;
}

static uint8_t *
consume__le64(uint8_t *p, uint64_t v)
{
	p = consume__le32(p, (uint32_t)v);
	return consume__le32(p, (uint32_t)(v >> 32));
}

static uint8_t *
consume__bytes(uint8_t *p, const void *v, size_t n)
{
	if (n > 0)
		memcpy(p, v, n);
	return p + n;
}

/* A frame header (frame.h) with its body length, as mri_frame_begin and
 * mri_frame_end write it. */
static uint8_t *
consume__frame_hdr(uint8_t *p, uint8_t op, uint32_t body_len)
{
	p[0] = MRI_FRAME_MAGIC0;
	p[1] = MRI_FRAME_MAGIC1;
	p[2] = MRI_PROTO_VERSION;
	p[3] = op;
	p    = consume__le16(p + 4, 0);
	p    = consume__le16(p, 0);
	return consume__le32(p, body_len);
}

size_t
mri_msg_put(uint8_t *out, const struct mri_msg_view *m,
	    const struct mri_hdr_view *hdrs)
{
	uint8_t *p = out;

	p = consume__le64(p, m->handle);
	p = consume__le16(p, m->topic_len);
	p = consume__bytes(p, m->topic, m->topic_len);
	p = consume__le32(p, (uint32_t)m->partition);
	p = consume__le64(p, (uint64_t)m->offset);
	p = consume__le64(p, (uint64_t)m->timestamp_ms);
	p = consume__le32(p, m->attempt);
	*p++ = m->flags;
	*p++ = m->id_len;
	p = consume__bytes(p, m->id, m->id_len);
	p = consume__le32(p, m->key_len);
	p = consume__bytes(p, m->key, m->key_len);
	p = consume__le16(p, m->hdr_count);
	for (uint16_t i = 0; i < m->hdr_count; i++) {
		p = consume__le16(p, hdrs[i].name_len);
		p = consume__bytes(p, hdrs[i].name, hdrs[i].name_len);
		p = consume__le32(p, hdrs[i].value_len);
		p = consume__bytes(p, hdrs[i].value, hdrs[i].value_len);
	}
	p = consume__le32(p, m->payload_len);
	p = consume__bytes(p, m->payload, m->payload_len);
	return (size_t)(p - out);
}

void
mri_msg_encode(struct mri_wbuf *b, const struct mri_msg_view *m,
	       const struct mri_hdr_view *hdrs)
{
	size_t n = mri_msg_size(m, hdrs);

	if (mri_wbuf_reserve(b, n) != MR_OK)
		return;
	b->len += mri_msg_put(b->data + b->len, m, hdrs);
}

void
mri_fetch_reply_put_hdr(uint8_t *out, size_t frame_len, uint32_t count)
{
	consume__le32(consume__frame_hdr(out, MRI_OP_FETCH_REPLY,
					 (uint32_t)(frame_len -
						    MRI_FRAME_HDR_LEN)),
		      count);
}

size_t
mri_msg_size(const struct mri_msg_view *m, const struct mri_hdr_view *hdrs)
{
	size_t n = CONSUME__MSG_FIXED;

	n += (size_t)m->topic_len + m->id_len + m->key_len + m->payload_len;
	for (uint16_t i = 0; i < m->hdr_count; i++)
		n += 6 + (size_t)hdrs[i].name_len + hdrs[i].value_len;
	return n;
}

void
mri_wbuf_patch_u32(struct mri_wbuf *b, size_t at, uint32_t v)
{
	// After a failed append the buffer may be shorter than its caller
	// thinks: there is nothing to patch then.
	if (b->err || at > b->len || b->len - at < 4)
		return;
	b->data[at]     = (uint8_t)v;
	b->data[at + 1] = (uint8_t)(v >> 8);
	b->data[at + 2] = (uint8_t)(v >> 16);
	b->data[at + 3] = (uint8_t)(v >> 24);
}

/* Decode one message at \p r into \p m; MR_OK or MR_EPROTO with *why. */
static int
consume__msg_decode(struct rd *r, struct mri_msg_view *m, const char **why)
{
	m->handle       = rd_u64(r);
	m->topic_len    = rd_u16(r);
	m->topic        = rd_bytes(r, m->topic_len);
	m->partition    = (int32_t)rd_u32(r);
	m->offset       = (int64_t)rd_u64(r);
	m->timestamp_ms = (int64_t)rd_u64(r);
	m->attempt      = rd_u32(r);
	m->flags        = rd_u8(r);
	m->id_len       = rd_u8(r);
	m->id           = rd_bytes(r, m->id_len);
	m->key_len      = rd_u32(r);
	m->key          = rd_bytes(r, m->key_len);
	m->hdr_count    = rd_u16(r);
	if (!r->ok)
		goto truncated;
	if (!mri_topic_valid(m->topic, m->topic_len)) {
		*why = "FETCH_REPLY topic invalid (1-249 of [a-zA-Z0-9._-])";
		return MR_EPROTO;
	}
	if (m->partition < 0 || m->offset < 0) {
		*why = "FETCH_REPLY partition or offset negative";
		return MR_EPROTO;
	}
	if (m->attempt == 0) {
		*why = "FETCH_REPLY attempt is 0 (the first delivery is 1)";
		return MR_EPROTO;
	}
	if (m->flags & ~(MRI_MSG_F_KEY | MRI_MSG_F_REDELIVERY)) {
		*why = "FETCH_REPLY message has unknown flags";
		return MR_EPROTO;
	}
	if (m->id_len == 0) {
		*why = "FETCH_REPLY message id is empty";
		return MR_EPROTO;
	}
	if (!(m->flags & MRI_MSG_F_KEY) && m->key_len != 0) {
		*why = "FETCH_REPLY key bytes without the key flag";
		return MR_EPROTO;
	}
	if (m->hdr_count > MRI_HDR_COUNT_MAX) {
		*why = "FETCH_REPLY message has more than 256 headers";
		return MR_EPROTO;
	}
	m->hdrs = r->p;
	for (uint16_t h = 0; h < m->hdr_count; h++) {
		uint16_t nl = rd_u16(r);

		rd_bytes(r, nl);
		rd_bytes(r, rd_u32(r));
		if (!r->ok)
			goto truncated;
		if (nl == 0 || nl > MRI_HDR_NAME_MAX) {
			*why = "FETCH_REPLY header name empty or longer than "
			       "255";
			return MR_EPROTO;
		}
	}
	m->payload_len = rd_u32(r);
	m->payload     = rd_bytes(r, m->payload_len);
	if (!r->ok)
		goto truncated;
	return MR_OK;

truncated:
	*why = "FETCH_REPLY message truncated";
	return MR_EPROTO;
}

int
mri_fetch_reply_decode(const void *body, size_t len,
		       struct mri_msg_view **out, uint32_t *count,
		       const char **why)
{
	struct rd            r = rd_init(body, len);
	struct mri_msg_view *v = NULL;
	uint32_t             n;
	int                  rc;

	*out   = NULL;
	*count = 0;
	n      = rd_u32(&r);
	if (!r.ok) {
		*why = "FETCH_REPLY body shorter than its message count";
		return MR_EPROTO;
	}
	if (n > MRI_FETCH_MAX_MSGS || n > rd_left(&r) / CONSUME__MSG_MIN) {
		*why = "FETCH_REPLY message count exceeds 100000 or what the "
		       "body can hold";
		return MR_EPROTO;
	}
	if (n > 0 && (v = calloc(n, sizeof(*v))) == NULL) {
		*why = "out of memory";
		return MR_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = consume__msg_decode(&r, &v[i], why)) != MR_OK) {
			free(v);
			return rc;
		}
	}
	if (r.p != r.end) {
		*why = "trailing bytes after the last FETCH_REPLY message";
		free(v);
		return MR_EPROTO;
	}
	*out   = v;
	*count = n;
	return MR_OK;
}

/* ---- SETTLE ------------------------------------------------------------- */

void
mri_settle_encode(struct mri_wbuf *b, const struct mri_settle *s,
		  const struct mri_range *ranges, uint32_t n)
{
	mri_frame_begin(b, MRI_OP_SETTLE);
	mri_wbuf_u64(b, s->session);
	mri_wbuf_u8(b, (uint8_t)(s->kind | (s->linger ? MRI_SETTLE_F_LINGER
						      : 0)));
	mri_wbuf_u32(b, s->extend_ms);
	mri_wbuf_u16(b, s->reason_len);
	mri_wbuf_put(b, s->reason, s->reason_len);
	mri_wbuf_u32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		mri_wbuf_u64(b, ranges[i].first);
		mri_wbuf_u32(b, ranges[i].count);
	}
	mri_frame_end(b);
}

/* Check what a SETTLE says beyond its layout; MR_OK or MR_EINVAL. */
static int
consume__settle_check(const struct mri_settle *s, const char **why)
{
	if (s->kind > MRI_SETTLE_REJECT) {
		*why = "SETTLE kind must be 0 (ack), 1 (nack), 2 (extend) or 3 "
		       "(reject)";
		return MR_EINVAL;
	}
	if (s->linger && s->kind != MRI_SETTLE_ACK) {
		*why = "SETTLE linger flag (0x80) is for an ack only";
		return MR_EINVAL;
	}
	if ((s->kind == MRI_SETTLE_EXTEND) != (s->extend_ms > 0)) {
		*why = "SETTLE extend_ms must be > 0 for extend and 0 "
		       "otherwise";
		return MR_EINVAL;
	}
	if (s->reason_len > 0 && s->kind != MRI_SETTLE_NACK &&
	    s->kind != MRI_SETTLE_REJECT) {
		*why = "SETTLE reason is for a nack or a reject only";
		return MR_EINVAL;
	}
	if (s->reason_len > MRI_REASON_MAX) {
		*why = "SETTLE reason longer than 1024 bytes";
		return MR_EINVAL;
	}
	if (s->range_count == 0 || s->range_count > MRI_SETTLE_RANGES_MAX) {
		*why = "SETTLE must carry 1 to 100000 ranges";
		return MR_EINVAL;
	}
	return MR_OK;
}

int
mri_settle_decode(const void *body, size_t len, struct mri_settle *out,
		  const char **why)
{
	struct rd         r = rd_init(body, len);
	struct mri_settle s;
	int               rc;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	s.session     = rd_u64(&r);
	s.kind        = rd_u8(&r);
	s.linger      = (s.kind & MRI_SETTLE_F_LINGER) != 0;
	s.kind &= (uint8_t)~MRI_SETTLE_F_LINGER;
	s.extend_ms   = rd_u32(&r);
	s.reason_len  = rd_u16(&r);
	s.reason      = rd_bytes(&r, s.reason_len);
	s.range_count = rd_u32(&r);
	if (!r.ok) {
		*why = "SETTLE body truncated before its ranges";
		return MR_EPROTO;
	}
	if ((rc = consume__settle_check(&s, why)) != MR_OK)
		return rc;
	if (rd_left(&r) / CONSUME__RANGE_LEN != s.range_count ||
	    rd_left(&r) % CONSUME__RANGE_LEN != 0) {
		*why = "SETTLE ranges truncated or with trailing bytes";
		return MR_EPROTO;
	}
	s.ranges = r.p;
	for (uint32_t i = 0; i < s.range_count; i++) {
		struct mri_range g;

		mri_settle_range(&s, i, &g);
		if (g.count == 0) {
			*why = "SETTLE range with a count of 0";
			return MR_EINVAL;
		}
		if (g.first > UINT64_MAX - (g.count - 1)) {
			*why = "SETTLE range wraps past the largest handle";
			return MR_EINVAL;
		}
		// At most 100000 counts below 2^32: the sum cannot overflow.
		s.handles += g.count;
	}
	if (s.handles > MRI_SETTLE_MAX) {
		*why = "SETTLE settles more than 1000000 handles";
		return MR_EINVAL;
	}
	*out = s;
	return MR_OK;
}

void
mri_settle_range(const struct mri_settle *s, uint32_t i, struct mri_range *r)
{
	const uint8_t *p = s->ranges + (size_t)i * CONSUME__RANGE_LEN;

	r->first = mri_le64(p);
	r->count = mri_le32(p + 8);
}

/* ---- SETTLE_REPLY ------------------------------------------------------- */

size_t
mri_settle_reply_size(uint32_t nf)
{
	return MRI_FRAME_HDR_LEN + 8 + (size_t)nf * CONSUME__FAIL_LEN;
}

void
mri_settle_reply_put_hdr(uint8_t *out, uint32_t settled, uint32_t nf)
{
	uint8_t *p = consume__frame_hdr(
	    out, MRI_OP_SETTLE_REPLY,
	    (uint32_t)(mri_settle_reply_size(nf) - MRI_FRAME_HDR_LEN));

	p = consume__le32(p, settled);
	consume__le32(p, nf);
}

void
mri_settle_fail_put(uint8_t *out, uint32_t i, uint64_t handle,
		    uint16_t status)
{
	uint8_t *p = out + MRI_FRAME_HDR_LEN + 8 + (size_t)i * CONSUME__FAIL_LEN;

	consume__le16(consume__le64(p, handle), status);
}

void
mri_settle_reply_encode(struct mri_wbuf *b, uint32_t settled,
			const struct mri_settle_fail *f, uint32_t nf)
{
	size_t n = mri_settle_reply_size(nf);

	b->len = 0;
	if (mri_wbuf_reserve(b, n) != MR_OK)
		return;
	mri_settle_reply_put_hdr(b->data, settled, nf);
	for (uint32_t i = 0; i < nf; i++)
		mri_settle_fail_put(b->data, i, f[i].handle, f[i].status);
	b->len = n;
}

int
mri_settle_reply_decode(const void *body, size_t len, uint32_t *settled,
			struct mri_settle_fail **out, uint32_t *nf,
			const char **why)
{
	struct rd               r = rd_init(body, len);
	struct mri_settle_fail *v = NULL;
	uint32_t                ok, n;

	*settled = 0;
	*out     = NULL;
	*nf      = 0;
	ok       = rd_u32(&r);
	n        = rd_u32(&r);
	if (!r.ok) {
		*why = "SETTLE_REPLY body shorter than its two counts";
		return MR_EPROTO;
	}
	if ((uint64_t)ok + n > MRI_SETTLE_MAX) {
		*why = "SETTLE_REPLY accounts for more than 1000000 handles";
		return MR_EPROTO;
	}
	if (rd_left(&r) / CONSUME__FAIL_LEN != n ||
	    rd_left(&r) % CONSUME__FAIL_LEN != 0) {
		*why = "SETTLE_REPLY failures truncated or with trailing "
		       "bytes";
		return MR_EPROTO;
	}
	if (n > 0 && (v = calloc(n, sizeof(*v))) == NULL) {
		*why = "out of memory";
		return MR_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		v[i].handle = rd_u64(&r);
		v[i].status = rd_u16(&r);
		if (v[i].status == MR_OK) {
			*why = "SETTLE_REPLY failure with status 0";
			free(v);
			return MR_EPROTO;
		}
	}
	*settled = ok;
	*out     = v;
	*nf      = n;
	return MR_OK;
}

/* ---- UNSUBSCRIBE -------------------------------------------------------- */

void
mri_unsubscribe_encode(struct mri_wbuf *b, uint64_t session)
{
	mri_frame_begin(b, MRI_OP_UNSUBSCRIBE);
	mri_wbuf_u64(b, session);
	mri_frame_end(b);
}

int
mri_unsubscribe_decode(const void *body, size_t len, uint64_t *session,
		       const char **why)
{
	*session = 0;
	if (len != CONSUME__UNSUB_LEN) {
		*why = "UNSUBSCRIBE body is not 8 bytes";
		return MR_EPROTO;
	}
	*session = mri_le64(body);
	return MR_OK;
}
