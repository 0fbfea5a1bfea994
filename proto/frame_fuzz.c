/*
 * libFuzzer target for the frame decoders (tests/fuzz/run_frame_fuzz.sh
 * builds it; tests/fuzz/replay_main.c replays a corpus without libFuzzer).
 *
 * An input is a whole frame. Its header is checked, then its body goes to
 * the decoder of its op (PUBLISH, PUBLISH_ACK and ERROR from frame.h;
 * FETCH, FETCH_REPLY, SETTLE, SETTLE_REPLY and UNSUBSCRIBE from
 * consume.h; SUBSCRIBE_REPLY's JSON reader from subscribe.h, and for
 * SUBSCRIBE the JSON encoder, its retry and dead_letter members included,
 * whose text with a session added must read back through that reader).
 * Every byte range a decoder returns is read, so that AddressSanitizer sees
 * a view that points outside the input. Beyond not crashing, a decoded body
 * must encode back to the same bytes, and a refusal must leave no output:
 * either failure aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/assignment.h"
#include "proto/consume.h"
#include "proto/frame.h"
#include "proto/subscribe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t frame_fuzz__sink;

/* Read every byte of [p, p + n), which must lie within [lo, hi). */
static void
frame_fuzz__touch(const void *p, size_t n, const uint8_t *lo,
		  const uint8_t *hi)
{
	const uint8_t *b = p;
	uint8_t        x = 0;

	if (n == 0)
		return;
	if (b == NULL || b < lo || b > hi || n > (size_t)(hi - b))
		abort();
	for (size_t i = 0; i < n; i++)
		x ^= b[i];
	frame_fuzz__sink ^= x;
}

static void
frame_fuzz__same(const struct mri_wbuf *b, const uint8_t *body, size_t len)
{
	if (b->err != MR_OK)
		return; // out of memory: nothing to compare
	if (b->len != len || (len > 0 && memcmp(b->data, body, len) != 0))
		abort();
}

static void frame_fuzz__publish(const uint8_t *body, size_t len);

/* A sequenced PUBLISH: the prefix decodes or is refused, then the rest is
 * an ordinary PUBLISH body. */
static void
frame_fuzz__publish_seq(const uint8_t *body, size_t len, uint16_t flags)
{
	struct mri_pub_seq s;
	const char        *why = NULL;
	const uint8_t     *msgs;
	size_t             left = len;

	if ((msgs = mri_publish_messages(body, &left, flags)) == NULL) {
		if (!(flags & MRI_FRAME_F_SEQ) || len >= MRI_PUB_SEQ_LEN)
			abort();
		return;
	}
	if (flags & MRI_FRAME_F_SEQ) {
		if (mri_publish_seq_decode(body, len, &s, &why) != MR_OK) {
			if (why == NULL)
				abort();
			return;
		}
		if (s.stream == 0 || mri_seq_before(s.seq, s.base) ||
		    left != len - MRI_PUB_SEQ_LEN)
			abort();
	}
	frame_fuzz__publish(msgs, left);
}

static void
frame_fuzz__publish(const uint8_t *body, size_t len)
{
	const uint8_t       *end = body + len;
	struct mri_pub_view *v   = NULL;
	uint32_t             n   = 0;
	const char          *why = NULL;
	int64_t              bad = 0;
	struct mri_wbuf      b;
	struct mri_hdr_view *hs;
	int                  rc;

	rc = mri_publish_decode(body, len, &v, &n, &why, &bad);
	if (rc != MR_OK) {
		if (v != NULL || n != 0 || why == NULL || bad < -1 ||
		    (rc != MR_EPROTO && rc != MR_EINVAL && rc != MR_ENOMEM))
			abort();
		return;
	}
	if (v == NULL || n == 0 || bad != -1)
		abort();
	if ((hs = calloc(MRI_HDR_COUNT_MAX, sizeof(*hs))) == NULL) {
		free(v);
		return;
	}
	mri_wbuf_init(&b);
	mri_wbuf_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct mri_pub_view *m   = &v[i];
		const uint8_t             *pos = m->hdrs;

		if (!mri_topic_valid(m->topic, m->topic_len) ||
		    m->hdr_count > MRI_HDR_COUNT_MAX ||
		    (!m->has_key && m->key_len != 0))
			abort();
		frame_fuzz__touch(m->topic, m->topic_len, body, end);
		frame_fuzz__touch(m->key, m->key_len, body, end);
		frame_fuzz__touch(m->id, m->id_len, body, end);
		for (uint16_t h = 0; h < m->hdr_count; h++) {
			if (pos < body || pos > end)
				abort();
			mri_pub_next_hdr(&pos, &hs[h]);
			if (hs[h].name_len == 0 ||
			    hs[h].name_len > MRI_HDR_NAME_MAX)
				abort();
			frame_fuzz__touch(hs[h].name, hs[h].name_len, body,
					  end);
			frame_fuzz__touch(hs[h].value, hs[h].value_len, body,
					  end);
		}
		frame_fuzz__touch(m->payload, m->payload_len, body, end);
		mri_publish_encode_msg(&b, m->topic, m->topic_len, m->key,
				       m->key_len, m->has_key, m->id,
				       m->id_len, m->hdr_count, hs, m->payload,
				       m->payload_len);
	}
	frame_fuzz__same(&b, body, len);
	mri_wbuf_fini(&b);
	free(hs);
	free(v);
}

static void
frame_fuzz__ack(const uint8_t *body, size_t len)
{
	const uint8_t       *end = body + len;
	struct mri_ack_view *v   = NULL;
	uint32_t             n   = 0;
	const char          *why = NULL;
	struct mri_wbuf      b;
	int                  rc;

	rc = mri_ack_decode(body, len, &v, &n, &why);
	if (rc != MR_OK) {
		if (v != NULL || n != 0 || why == NULL ||
		    (rc != MR_EPROTO && rc != MR_ENOMEM))
			abort();
		return;
	}
	if (v == NULL || n == 0)
		abort();
	mri_wbuf_init(&b);
	mri_wbuf_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		frame_fuzz__touch(v[i].topic, v[i].topic_len, body, end);
		frame_fuzz__touch(v[i].id, v[i].id_len, body, end);
		frame_fuzz__touch(v[i].errmsg, v[i].errmsg_len, body, end);
		mri_ack_encode(&b, &v[i]);
	}
	frame_fuzz__same(&b, body, len);
	mri_wbuf_fini(&b);
	free(v);
}

static void
frame_fuzz__error(const uint8_t *body, size_t len)
{
	const char     *msg = NULL;
	uint16_t        code, msg_len;
	struct mri_wbuf b;
	char           *s;

	if (mri_error_decode(body, len, &code, &msg, &msg_len) != MR_OK)
		return;
	frame_fuzz__touch(msg, msg_len, body, body + len);
	// The encoder takes a C string of at most MRI_ERRMSG_MAX bytes.
	if (msg_len > MRI_ERRMSG_MAX || memchr(msg, '\0', msg_len) != NULL)
		return;
	if ((s = malloc((size_t)msg_len + 1)) == NULL)
		return;
	memcpy(s, msg, msg_len);
	s[msg_len] = '\0';
	mri_wbuf_init(&b);
	mri_error_encode(&b, code, s);
	if (b.err == MR_OK && (b.len != MRI_FRAME_HDR_LEN + len ||
			       memcmp(b.data + MRI_FRAME_HDR_LEN, body, len)))
		abort();
	mri_wbuf_fini(&b);
	free(s);
}

/* A whole frame that an encoder wrote must carry exactly \p body. */
static void
frame_fuzz__same_frame(const struct mri_wbuf *b, uint8_t op,
		       const uint8_t *body, size_t len)
{
	if (b->err != MR_OK)
		return; // out of memory: nothing to compare
	if (b->len < MRI_FRAME_HDR_LEN || b->data[3] != op ||
	    mri_le32(b->data + 8) != len)
		abort();
	if (b->len - MRI_FRAME_HDR_LEN != len ||
	    (len > 0 && memcmp(b->data + MRI_FRAME_HDR_LEN, body, len) != 0))
		abort();
}

static void
frame_fuzz__fetch(const uint8_t *body, size_t len)
{
	struct mri_fetch f;
	const char      *why = NULL;
	struct mri_wbuf  b;
	int              rc;

	memset(&f, 0xa5, sizeof(f));
	rc = mri_fetch_decode(body, len, &f, &why);
	if (rc != MR_OK) {
		if (why == NULL || f.session != 0 || f.max_msgs != 0 ||
		    f.max_bytes != 0 || f.max_wait_ms != 0 ||
		    (rc != MR_EPROTO && rc != MR_EINVAL))
			abort();
		return;
	}
	if (f.max_msgs == 0 || f.max_msgs > MRI_FETCH_MAX_MSGS ||
	    f.max_wait_ms > MRI_FETCH_MAX_WAIT_MS)
		abort();
	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &f);
	frame_fuzz__same_frame(&b, MRI_OP_FETCH, body, len);
	mri_wbuf_fini(&b);
}

static void
frame_fuzz__fetch_reply(const uint8_t *body, size_t len)
{
	const uint8_t       *end = body + len;
	struct mri_msg_view *v   = NULL;
	uint32_t             n   = 0;
	const char          *why = NULL;
	struct mri_wbuf      b;
	struct mri_hdr_view *hs;
	size_t               at, size = 4;
	int                  rc;

	rc = mri_fetch_reply_decode(body, len, &v, &n, &why);
	if (rc != MR_OK) {
		if (v != NULL || n != 0 || why == NULL ||
		    (rc != MR_EPROTO && rc != MR_ENOMEM))
			abort();
		return;
	}
	if (n > MRI_FETCH_MAX_MSGS || (n == 0) != (v == NULL))
		abort();
	if ((hs = calloc(MRI_HDR_COUNT_MAX, sizeof(*hs))) == NULL) {
		free(v);
		return;
	}
	mri_wbuf_init(&b);
	at = b.len;
	mri_wbuf_u32(&b, 0);
	for (uint32_t i = 0; i < n; i++) {
		const struct mri_msg_view *m   = &v[i];
		const uint8_t             *pos = m->hdrs;

		if (!mri_topic_valid(m->topic, m->topic_len) ||
		    m->id_len == 0 || m->attempt == 0 ||
		    m->hdr_count > MRI_HDR_COUNT_MAX ||
		    (!(m->flags & MRI_MSG_F_KEY) && m->key_len != 0))
			abort();
		frame_fuzz__touch(m->topic, m->topic_len, body, end);
		frame_fuzz__touch(m->id, m->id_len, body, end);
		frame_fuzz__touch(m->key, m->key_len, body, end);
		for (uint16_t h = 0; h < m->hdr_count; h++) {
			if (pos < body || pos > end)
				abort();
			mri_pub_next_hdr(&pos, &hs[h]);
			if (hs[h].name_len == 0 ||
			    hs[h].name_len > MRI_HDR_NAME_MAX)
				abort();
			frame_fuzz__touch(hs[h].name, hs[h].name_len, body,
					  end);
			frame_fuzz__touch(hs[h].value, hs[h].value_len, body,
					  end);
		}
		if (pos + 4 != (const uint8_t *)m->payload)
			abort();
		frame_fuzz__touch(m->payload, m->payload_len, body, end);
		mri_msg_encode(&b, m, hs);
		size += mri_msg_size(m, hs);
	}
	mri_wbuf_patch_u32(&b, at, n);
	if (b.err == MR_OK && b.len != size)
		abort();
	frame_fuzz__same(&b, body, len);
	mri_wbuf_fini(&b);
	free(hs);
	free(v);
}

static void
frame_fuzz__settle(const uint8_t *body, size_t len)
{
	const uint8_t    *end = body + len;
	struct mri_settle s;
	const char       *why = NULL;
	struct mri_range *rs;
	struct mri_wbuf   b;
	uint64_t          sum = 0;
	int               rc;

	memset(&s, 0xa5, sizeof(s));
	rc = mri_settle_decode(body, len, &s, &why);
	if (rc != MR_OK) {
		if (why == NULL || s.session != 0 || s.kind != 0 ||
		    s.extend_ms != 0 || s.reason != NULL ||
		    s.reason_len != 0 || s.range_count != 0 ||
		    s.handles != 0 || s.ranges != NULL ||
		    (rc != MR_EPROTO && rc != MR_EINVAL))
			abort();
		return;
	}
	if (s.kind > MRI_SETTLE_REJECT ||
	    (s.kind == MRI_SETTLE_EXTEND) != (s.extend_ms > 0) ||
	    (s.reason_len > 0 && s.kind != MRI_SETTLE_NACK &&
	     s.kind != MRI_SETTLE_REJECT) ||
	    s.reason_len > MRI_REASON_MAX || s.range_count == 0 ||
	    s.range_count > MRI_SETTLE_RANGES_MAX ||
	    s.handles > MRI_SETTLE_MAX)
		abort();
	frame_fuzz__touch(s.reason, s.reason_len, body, end);
	frame_fuzz__touch(s.ranges, (size_t)s.range_count * 12, body, end);
	if ((rs = calloc(s.range_count, sizeof(*rs))) == NULL)
		return;
	for (uint32_t i = 0; i < s.range_count; i++) {
		mri_settle_range(&s, i, &rs[i]);
		if (rs[i].count == 0 ||
		    rs[i].first > UINT64_MAX - (rs[i].count - 1))
			abort();
		sum += rs[i].count;
	}
	if (sum != s.handles)
		abort();
	mri_wbuf_init(&b);
	mri_settle_encode(&b, &s, rs, s.range_count);
	frame_fuzz__same_frame(&b, MRI_OP_SETTLE, body, len);
	mri_wbuf_fini(&b);
	free(rs);
}

static void
frame_fuzz__settle_reply(const uint8_t *body, size_t len)
{
	struct mri_settle_fail *f       = NULL;
	uint32_t                settled = 0, nf = 0;
	const char             *why     = NULL;
	struct mri_wbuf         b;
	int                     rc;

	rc = mri_settle_reply_decode(body, len, &settled, &f, &nf, &why);
	if (rc != MR_OK) {
		if (f != NULL || settled != 0 || nf != 0 || why == NULL ||
		    (rc != MR_EPROTO && rc != MR_ENOMEM))
			abort();
		return;
	}
	if ((uint64_t)settled + nf > MRI_SETTLE_MAX ||
	    (nf == 0) != (f == NULL))
		abort();
	for (uint32_t i = 0; i < nf; i++)
		if (f[i].status == MR_OK)
			abort();
	mri_wbuf_init(&b);
	mri_settle_reply_encode(&b, settled, f, nf);
	frame_fuzz__same_frame(&b, MRI_OP_SETTLE_REPLY, body, len);
	mri_wbuf_fini(&b);
	free(f);
}

static void
frame_fuzz__unsubscribe(const uint8_t *body, size_t len)
{
	uint64_t        session = 7;
	const char     *why     = NULL;
	struct mri_wbuf b;
	int             rc;

	rc = mri_unsubscribe_decode(body, len, &session, &why);
	if (rc != MR_OK) {
		if (why == NULL || session != 0 || rc != MR_EPROTO)
			abort();
		return;
	}
	mri_wbuf_init(&b);
	mri_unsubscribe_encode(&b, session);
	frame_fuzz__same_frame(&b, MRI_OP_UNSUBSCRIBE, body, len);
	mri_wbuf_fini(&b);
}

static void
frame_fuzz__assignment(const uint8_t *body, size_t len)
{
	uint64_t        session = 7;
	const char     *why     = NULL;
	struct mri_wbuf b;
	int             rc;

	rc = mri_assignment_decode(body, len, &session, &why);
	if (rc != MR_OK) {
		if (why == NULL || session != 0 || rc != MR_EPROTO)
			abort();
		return;
	}
	mri_wbuf_init(&b);
	mri_assignment_encode(&b, session);
	frame_fuzz__same_frame(&b, MRI_OP_ASSIGNMENT, body, len);
	mri_wbuf_fini(&b);
}

/* A reply it takes has valid names and partitions, and encodes back to
 * the same bytes. */
static void
frame_fuzz__assignment_reply(const uint8_t *body, size_t len)
{
	struct mri_assigned *v   = NULL;
	const char          *why = NULL;
	struct mri_wbuf      b;
	size_t               n   = 9;
	int                  rc;

	rc = mri_assignment_reply_decode(body, len, &v, &n, &why);
	if (rc != MR_OK) {
		if (rc == MR_ENOMEM)
			return;
		if (why == NULL || v != NULL || n != 0 || rc != MR_EPROTO)
			abort();
		return;
	}
	if (n > MRI_ASSIGNMENT_MAX || (n == 0) != (v == NULL))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!mri_topic_valid(v[i].topic, strlen(v[i].topic)) ||
		    v[i].partition < 0)
			abort();
	mri_wbuf_init(&b);
	mri_assignment_reply_encode(&b, v, n);
	frame_fuzz__same_frame(&b, MRI_OP_ASSIGNMENT_REPLY, body, len);
	mri_wbuf_fini(&b);
	free(v);
}

/* The reply's reader, on a copy of exactly \p len bytes: a credit it takes
 * is in range. */
static void
frame_fuzz__subscribe_reply(const uint8_t *body, size_t len)
{
	char    *copy = malloc(len > 0 ? len : 1);
	uint64_t session;
	int      credit = -1;

	if (copy == NULL)
		return;
	if (len > 0)
		memcpy(copy, body, len);
	if (mri_subscribe_reply_parse(copy, len, &session, &credit) == MR_OK &&
	    credit != -1 && (credit < 1 || credit > MRI_FETCH_MAX_MSGS))
		abort();
	free(copy);
}

/* The body up to its first NUL as a group and a topic: encoded, then with
 * a session added, the reply's reader must find that session. */
static void
frame_fuzz__subscribe(const uint8_t *body, size_t len)
{
	const uint8_t       *nul   = memchr(body, 0, len);
	size_t               n     = nul ? (size_t)(nul - body) : len;
	char                *name  = malloc(n + 1);
	const char          *topics[1];
	struct mri_subscribe s     = {0};
	struct mri_wbuf      b;
	uint64_t             session = 0;
	int                  credit  = -1;

	if (name == NULL)
		return;
	memcpy(name, body, n);
	name[n]     = '\0';
	topics[0]   = name;
	s.group     = name;
	s.topics    = topics;
	s.ntopics   = 1;
	s.mode      = (enum mri_subscribe_mode)(len % 3);
	s.credit    = (uint32_t)(n % 7);
	// Retry and dead-letter members from the input's length and bytes,
	// fractions of any bits (not finite ones included).
	s.has       = (unsigned)(len * 37) &
		(MRI_SUB_RETRY_ALL | MRI_SUB_BREAKER_ALL);
	s.dlq_topic = len % 2 ? name : NULL;
	s.max_attempts      = (uint32_t)n;
	s.breaker_period_ms = (uint64_t)len << 40;
	if (len >= 16) {
		memcpy(&s.backoff_multiplier, body, 8);
		memcpy(&s.backoff_jitter, body + 8, 8);
	}
	mri_wbuf_init(&b);
	mri_subscribe_encode(&b, &s);
	if (b.err == MR_OK && b.len > 0 && b.data[b.len - 1] == '}') {
		b.len--;
		mri_wbuf_put(&b, ",\"session\":42}", 15);
	}
	if (b.err == MR_OK &&
	    (mri_subscribe_reply_parse((const char *)b.data, b.len, &session,
				       &credit) != MR_OK ||
	     session != 42 || credit != (s.credit ? (int)s.credit : -1)))
		abort();
	mri_wbuf_fini(&b);
	free(name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mri_frame_hdr hdr;
	const char          *why  = NULL;
	const uint8_t       *body = data + MRI_FRAME_HDR_LEN;
	int                  rc;

	rc = mri_frame_parse_hdr(data, size, &hdr, &why);
	if (rc != MR_OK) {
		if (why == NULL || (rc != MR_EPROTO && rc != MR_EVERSION))
			abort();
		return 0;
	}
	if ((size_t)hdr.body_len != size - MRI_FRAME_HDR_LEN)
		abort();
	switch (hdr.op) {
	case MRI_OP_PUBLISH:
		frame_fuzz__publish_seq(body, hdr.body_len, hdr.flags);
		break;
	case MRI_OP_PUBLISH_ACK:
		frame_fuzz__ack(body, hdr.body_len);
		break;
	case MRI_OP_ERROR:
		frame_fuzz__error(body, hdr.body_len);
		break;
	case MRI_OP_FETCH:
		frame_fuzz__fetch(body, hdr.body_len);
		break;
	case MRI_OP_FETCH_REPLY:
		frame_fuzz__fetch_reply(body, hdr.body_len);
		break;
	case MRI_OP_SETTLE:
		frame_fuzz__settle(body, hdr.body_len);
		break;
	case MRI_OP_SETTLE_REPLY:
		frame_fuzz__settle_reply(body, hdr.body_len);
		break;
	case MRI_OP_UNSUBSCRIBE:
		frame_fuzz__unsubscribe(body, hdr.body_len);
		break;
	case MRI_OP_SUBSCRIBE:
		frame_fuzz__subscribe(body, hdr.body_len);
		break;
	case MRI_OP_SUBSCRIBE_REPLY:
		frame_fuzz__subscribe_reply(body, hdr.body_len);
		break;
	case MRI_OP_ASSIGNMENT:
		frame_fuzz__assignment(body, hdr.body_len);
		break;
	case MRI_OP_ASSIGNMENT_REPLY:
		frame_fuzz__assignment_reply(body, hdr.body_len);
		break;
	default:
		break;
	}
	return 0;
}
