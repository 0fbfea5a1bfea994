/*
 * Tests for proto/consume.c: the FETCH, FETCH_REPLY, SETTLE, SETTLE_REPLY
 * and UNSUBSCRIBE codecs. As in frame_test.c, every decoder is also fed
 * every truncation of a valid body, copied to end where an inaccessible
 * page begins, so that any read past it crashes, with or without a
 * sanitizer.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/frame.h"

/*
 * With glibc and no sanitizer, this calloc replaces libc's so that a test
 * can show that a body was refused before the decoder allocated anything
 * (see frame_test.c). Sanitizers interpose the allocator themselves; there
 * the counter stays unused.
 */
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__) ||                  \
    defined(__SANITIZE_THREAD__)
#define CONSUME_TEST_COUNT_CALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||   \
    __has_feature(memory_sanitizer)
#define CONSUME_TEST_COUNT_CALLOC 0
#endif
#endif
#ifndef CONSUME_TEST_COUNT_CALLOC
#define CONSUME_TEST_COUNT_CALLOC 1
#endif

static unsigned long consume_test__callocs;

#if CONSUME_TEST_COUNT_CALLOC
extern void *__libc_calloc(size_t n, size_t size);

void *
calloc(size_t n, size_t size)
{
	consume_test__callocs++;
	return __libc_calloc(n, size);
}
#endif

#define CONSUME_TEST__BODY(b) ((b)->data + MRI_FRAME_HDR_LEN)
#define CONSUME_TEST__LEN(b) ((b)->len - MRI_FRAME_HDR_LEN)

/*
 * A copy of \p len bytes that ends where a page without access begins, so
 * that a decoder reading past its input crashes even without a sanitizer.
 * Release it with consume_test__undup.
 */
static uint8_t *
consume_test__dup(const void *p, size_t len)
{
	size_t   page = (size_t)sysconf(_SC_PAGESIZE);
	size_t   span = (len + page - 1) / page * page + page;
	uint8_t *m;

	m = mmap(NULL, span, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(mprotect(m + span - page, page, PROT_NONE), 0);
	if (len > 0)
		memcpy(m + span - page - len, p, len);
	return m + span - page - len;
}

static void
consume_test__undup(uint8_t *d, size_t len)
{
	size_t    page  = (size_t)sysconf(_SC_PAGESIZE);
	size_t    span  = (len + page - 1) / page * page + page;
	uintptr_t start = ((uintptr_t)d + len) - (span - page);

	ck_assert_int_eq(munmap((void *)start, span), 0);
}

/* \p len bytes of \p body followed by \p extra zero bytes (free() it). */
static uint8_t *
consume_test__padded(const void *body, size_t len, size_t extra)
{
	uint8_t *d = malloc(len + extra);

	ck_assert_ptr_nonnull(d);
	memcpy(d, body, len);
	memset(d + len, 0, extra);
	return d;
}

static bool
consume_test__bytes_eq(const void *a, size_t alen, const void *b,
		       size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void
consume_test__mem_eq(const void *got, size_t got_len, const void *want,
		     size_t want_len)
{
	ck_assert_uint_eq(got_len, want_len);
	if (want_len > 0) {
		ck_assert_ptr_nonnull(got);
		ck_assert(memcmp(got, want, want_len) == 0);
	}
}

static void
consume_test__why(const char *why)
{
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0] != '\0');
}

/* Check a whole frame's header and return its body length. */
static size_t
consume_test__frame(const struct mri_wbuf *b, uint8_t op)
{
	struct mri_frame_hdr h;
	const char          *why = NULL;

	ck_assert_int_eq(b->err, MR_OK);
	ck_assert_int_eq(mri_frame_parse_hdr(b->data, b->len, &h, &why),
			 MR_OK);
	ck_assert_uint_eq(h.op, op);
	ck_assert_uint_eq(h.flags, 0);
	return h.body_len;
}

static void
consume_test__fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void
consume_test__put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* ---- FETCH -------------------------------------------------------------
 */

static void
consume_test__fetch_refused(const void *body, size_t len, int rc)
{
	struct mri_fetch f;
	const char      *why = NULL;

	memset(&f, 0xa5, sizeof(f));
	ck_assert_int_eq(mri_fetch_decode(body, len, &f, &why), rc);
	ck_assert(f.session == 0 && f.max_msgs == 0 && f.max_bytes == 0 &&
		  f.max_wait_ms == 0);
	consume_test__why(why);
}

static void
consume_test__fetch_roundtrip(const struct mri_fetch *f)
{
	struct mri_wbuf  b;
	struct mri_fetch g;
	const char      *why = NULL;

	mri_wbuf_init(&b);
	// Writes a frame over anything already in the buffer.
	mri_wbuf_put(&b, "garbage", 7);
	mri_fetch_encode(&b, f);
	ck_assert_uint_eq(consume_test__frame(&b, MRI_OP_FETCH), 20);
	ck_assert_int_eq(mri_fetch_decode(CONSUME_TEST__BODY(&b), 20, &g,
					  &why),
			 MR_OK);
	ck_assert(g.session == f->session);
	ck_assert_uint_eq(g.max_msgs, f->max_msgs);
	ck_assert_uint_eq(g.max_bytes, f->max_bytes);
	ck_assert_uint_eq(g.max_wait_ms, f->max_wait_ms);
	mri_wbuf_fini(&b);
}

START_TEST(test_fetch_roundtrip)
{
	static const struct mri_fetch fs[] = {
	    {1, 1, 0, 0},
	    {42, 500, 1u << 20, 1000},
	    {UINT64_MAX, MRI_FETCH_MAX_MSGS, UINT32_MAX,
	     MRI_FETCH_MAX_WAIT_MS},
	    {0, 7, 1, 1},
	};
	static const uint8_t want[] = {
	    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // session
	    0x64, 0x00, 0x00, 0x00,                         // max_msgs
	    0x00, 0x00, 0x10, 0x00,                         // max_bytes
	    0x30, 0x75, 0x00, 0x00,                         // max_wait_ms
	};
	struct mri_fetch f = {0x0102030405060708ULL, 100, 1u << 20, 30000};
	struct mri_wbuf  b;

	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		consume_test__fetch_roundtrip(&fs[i]);
	// The layout, byte by byte.
	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &f);
	ck_assert_uint_eq(consume_test__frame(&b, MRI_OP_FETCH), 20);
	consume_test__mem_eq(CONSUME_TEST__BODY(&b), CONSUME_TEST__LEN(&b),
			     want, sizeof(want));
	ck_assert_uint_eq(b.data[3], 0x05);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_fetch_truncated_and_trailing)
{
	struct mri_fetch f = {9, 10, 11, 12};
	struct mri_wbuf  b;
	uint8_t         *d;

	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &f);
	for (size_t cut = 0; cut < 20; cut++) {
		d = consume_test__dup(CONSUME_TEST__BODY(&b), cut);
		consume_test__fetch_refused(d, cut, MR_EPROTO);
		consume_test__undup(d, cut);
	}
	for (size_t extra = 1; extra <= 16; extra++) {
		d = consume_test__padded(CONSUME_TEST__BODY(&b), 20, extra);
		consume_test__fetch_refused(d, 20 + extra, MR_EPROTO);
		free(d);
	}
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_fetch_invalid)
{
	static const struct mri_fetch bad[] = {
	    {1, 0, 0, 0},
	    {1, MRI_FETCH_MAX_MSGS + 1, 0, 0},
	    {1, UINT32_MAX, 0, 0},
	    {1, 1, 0, MRI_FETCH_MAX_WAIT_MS + 1},
	    {1, 1, 0, UINT32_MAX},
	    {1, 0, 0, UINT32_MAX},
	};
	struct mri_wbuf b;

	mri_wbuf_init(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mri_fetch_encode(&b, &bad[i]);
		consume_test__fetch_refused(CONSUME_TEST__BODY(&b), 20,
					    MR_EINVAL);
	}
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- FETCH_REPLY -------------------------------------------------------
 */

/* What a test means to encode, and expects to decode, for one message. */
struct consume_test__msg {
	struct mri_msg_view        v; /* v.hdrs is ignored */
	const struct mri_hdr_view *hdrs;
};

static const uint8_t consume_test__binkey[] = {0x00, 0x01, 0x00, 0xff, 0x00};
static const uint8_t consume_test__binval[] = {0x00, 0x00, 'v', 0x00, 0x80};

static const struct mri_hdr_view consume_test__hdrs[] = {
    {"ce_id", 5, "0190f0c8", 8},
    {"bin", 3, consume_test__binval, sizeof(consume_test__binval)},
    {"empty", 5, "", 0},
    {"n\0l", 3, "x", 1},
};

static char consume_test__long[1024];

/* Four messages covering the optional parts and the limits. */
static void
consume_test__sample(struct consume_test__msg m[4])
{
	memset(consume_test__long, 'L', sizeof(consume_test__long));
	memset(m, 0, 4 * sizeof(*m));
	m[0].v = (struct mri_msg_view){
	    .handle       = 1,
	    .topic        = "orders",
	    .topic_len    = 6,
	    .timestamp_ms = -1,
	    .attempt      = 1,
	    .id           = "orders/0/0",
	    .id_len       = 10,
	    .payload      = "hello",
	    .payload_len  = 5,
	};
	m[1].v = (struct mri_msg_view){
	    .handle       = UINT64_MAX,
	    .topic        = "a.b_c-D9",
	    .topic_len    = 8,
	    .partition    = INT32_MAX,
	    .offset       = INT64_MAX,
	    .timestamp_ms = INT64_MIN,
	    .attempt      = UINT32_MAX,
	    .flags        = MRI_MSG_F_KEY | MRI_MSG_F_REDELIVERY,
	    .id           = "\0id\xff",
	    .id_len       = 4,
	    .key          = consume_test__binkey,
	    .key_len      = sizeof(consume_test__binkey),
	    .hdr_count    = 4,
	    .payload      = "\0\0payload\0",
	    .payload_len  = 10,
	};
	m[1].hdrs = consume_test__hdrs;

	// The longest topic and id, an empty key, no payload.
	m[2].v = (struct mri_msg_view){
	    .handle       = 0,
	    .topic        = consume_test__long,
	    .topic_len    = MRI_TOPIC_MAX,
	    .partition    = 3,
	    .offset       = 1234567890123LL,
	    .timestamp_ms = 1700000000000LL,
	    .attempt      = 2,
	    .flags        = MRI_MSG_F_KEY,
	    .id           = consume_test__long,
	    .id_len       = MRI_ID_MAX,
	    .key          = "",
	    .hdr_count    = 1,
	};
	m[2].hdrs = consume_test__hdrs + 1;

	m[3].v = (struct mri_msg_view){
	    .handle      = 77,
	    .topic       = "t",
	    .topic_len   = 1,
	    .attempt     = 1,
	    .flags       = MRI_MSG_F_REDELIVERY,
	    .id          = "x",
	    .id_len      = 1,
	    .hdr_count   = 2,
	    .payload     = "p",
	    .payload_len = 1,
	};
	m[3].hdrs = consume_test__hdrs + 2;
}

/* A FETCH_REPLY frame of \p n messages into \p b. */
static void
consume_test__reply(struct mri_wbuf *b, const struct consume_test__msg *m,
		    size_t n)
{
	size_t at;

	mri_frame_begin(b, MRI_OP_FETCH_REPLY);
	at = b->len;
	mri_wbuf_u32(b, 0);
	for (size_t i = 0; i < n; i++) {
		size_t before = b->len;

		mri_msg_encode(b, &m[i].v, m[i].hdrs);
		if (b->len - before != mri_msg_size(&m[i].v, m[i].hdrs))
			ck_abort_msg("mri_msg_size wrong for message %zu", i);
	}
	mri_wbuf_patch_u32(b, at, (uint32_t)n);
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
}

/* Whether \p g decodes \p w; without Check's per-assertion cost. */
static bool
consume_test__msg_eq(const struct mri_msg_view *g,
		     const struct consume_test__msg *w)
{
	const struct mri_msg_view *v   = &w->v;
	const uint8_t             *pos = g->hdrs;
	struct mri_hdr_view        h;

	if (g->handle != v->handle || g->partition != v->partition ||
	    g->offset != v->offset || g->timestamp_ms != v->timestamp_ms ||
	    g->attempt != v->attempt || g->flags != v->flags ||
	    !consume_test__bytes_eq(g->topic, g->topic_len, v->topic,
				    v->topic_len) ||
	    !consume_test__bytes_eq(g->id, g->id_len, v->id, v->id_len) ||
	    !consume_test__bytes_eq(g->key, g->key_len, v->key,
				    v->key_len) ||
	    g->hdr_count != v->hdr_count)
		return false;
	for (uint16_t i = 0; i < g->hdr_count; i++) {
		mri_pub_next_hdr(&pos, &h);
		if (!consume_test__bytes_eq(h.name, h.name_len,
					    w->hdrs[i].name,
					    w->hdrs[i].name_len) ||
		    !consume_test__bytes_eq(h.value, h.value_len,
					    w->hdrs[i].value,
					    w->hdrs[i].value_len))
			return false;
	}
	// The headers end where the payload's length prefix starts.
	return pos + 4 == (const uint8_t *)g->payload &&
	       consume_test__bytes_eq(g->payload, g->payload_len, v->payload,
				      v->payload_len);
}

static void
consume_test__reply_refused(const void *body, size_t len, int rc)
{
	struct mri_msg_view *v   = (void *)&v;
	uint32_t             n   = 7;
	const char          *why = NULL;

	ck_assert_int_eq(mri_fetch_reply_decode(body, len, &v, &n, &why), rc);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
	consume_test__why(why);
}

static void
consume_test__reply_roundtrip(const struct consume_test__msg *m, size_t n)
{
	struct mri_wbuf      b;
	struct mri_msg_view *v   = (void *)&v;
	uint32_t             cnt = 7;
	const char          *why = NULL;
	size_t               len;

	mri_wbuf_init(&b);
	consume_test__reply(&b, m, n);
	len = consume_test__frame(&b, MRI_OP_FETCH_REPLY);
	ck_assert_msg(mri_fetch_reply_decode(CONSUME_TEST__BODY(&b), len, &v,
					     &cnt, &why) == MR_OK,
		      "decode: %s", why);
	ck_assert_uint_eq(cnt, n);
	if (n == 0)
		ck_assert_ptr_null(v);
	for (size_t i = 0; i < n; i++)
		if (!consume_test__msg_eq(&v[i], &m[i]))
			ck_abort_msg("message %zu of %zu differs", i, n);
	free(v);
	mri_wbuf_fini(&b);
}

START_TEST(test_reply_roundtrip)
{
	struct consume_test__msg m[4];

	consume_test__sample(m);
	consume_test__reply_roundtrip(m, 4);
	for (size_t i = 0; i < 4; i++)
		consume_test__reply_roundtrip(&m[i], 1);
	// A FETCH that found nothing before max_wait_ms.
	consume_test__reply_roundtrip(NULL, 0);
}
END_TEST

START_TEST(test_reply_layout)
{
	static const uint8_t want[] = {
	    0x01, 0x00, 0x00, 0x00,                         // count
	    0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // handle
	    0x01, 0x00, 't',                                // topic
	    0x05, 0x00, 0x00, 0x00,                         // partition
	    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // offset
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // timestamp
	    0x03, 0x00, 0x00, 0x00,                         // attempt
	    0x03,                                           // flags
	    0x02, 'i',  'd',                                // id
	    0x02, 0x00, 0x00, 0x00, 'k',  0x00,             // key
	    0x01, 0x00,                                     // hdr_count
	    0x01, 0x00, 'h',                                // name
	    0x01, 0x00, 0x00, 0x00, 'v',                    // value
	    0x03, 0x00, 0x00, 0x00, 'p',  0x00, 'q',        // payload
	};
	static const struct mri_hdr_view h = {"h", 1, "v", 1};
	struct consume_test__msg         m;
	struct mri_wbuf                  b;

	m.hdrs = &h;
	m.v    = (struct mri_msg_view){
	    .handle       = 0x102,
	    .topic        = "t",
	    .topic_len    = 1,
	    .partition    = 5,
	    .offset       = 6,
	    .timestamp_ms = -1,
	    .attempt      = 3,
	    .flags        = MRI_MSG_F_KEY | MRI_MSG_F_REDELIVERY,
	    .id           = "id",
	    .id_len       = 2,
	    .key          = "k",
	    .key_len      = 2,
	    .hdr_count    = 1,
	    .payload      = "p\0q",
	    .payload_len  = 3,
	};
	mri_wbuf_init(&b);
	consume_test__reply(&b, &m, 1);
	ck_assert_uint_eq(consume_test__frame(&b, MRI_OP_FETCH_REPLY),
			  sizeof(want));
	ck_assert_uint_eq(b.data[3], 0x85);
	consume_test__mem_eq(CONSUME_TEST__BODY(&b), CONSUME_TEST__LEN(&b),
			     want, sizeof(want));
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_reply_headers_256)
{
	static char              name[MRI_HDR_NAME_MAX];
	struct mri_hdr_view      hs[MRI_HDR_COUNT_MAX];
	struct consume_test__msg m[4];

	memset(name, 'n', sizeof(name));
	for (size_t i = 0; i < MRI_HDR_COUNT_MAX; i++) {
		hs[i].name      = name;
		hs[i].name_len  = (uint16_t)(1 + i % MRI_HDR_NAME_MAX);
		hs[i].value     = consume_test__binval;
		hs[i].value_len = (uint32_t)(i % sizeof(consume_test__binval));
	}
	hs[7].name_len = MRI_HDR_NAME_MAX;
	consume_test__sample(m);
	m[0].v.hdr_count = MRI_HDR_COUNT_MAX;
	m[0].hdrs        = hs;
	consume_test__reply_roundtrip(m, 4);
}
END_TEST

START_TEST(test_reply_big_payload)
{
	size_t                   n = 1u << 20;
	uint8_t                 *p = malloc(n);
	struct consume_test__msg m[4];

	ck_assert_ptr_nonnull(p);
	consume_test__fill(p, n, 7);
	p[0] = p[n / 2] = p[n - 1] = 0;
	consume_test__sample(m);
	m[1].v.payload     = p;
	m[1].v.payload_len = (uint32_t)n;
	consume_test__reply_roundtrip(m, 4);
	free(p);
}
END_TEST

START_TEST(test_reply_many)
{
	struct consume_test__msg *m = calloc(MRI_FETCH_MAX_MSGS + 1,
					     sizeof(*m));
	char (*ids)[24]             = calloc(MRI_FETCH_MAX_MSGS + 1,
					     sizeof(*ids));
	struct mri_wbuf           b;
	struct mri_msg_view      *v;
	uint32_t                  n;
	const char               *why;
	unsigned long             before;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(ids);
	for (size_t i = 0; i <= MRI_FETCH_MAX_MSGS; i++) {
		int l = snprintf(ids[i], sizeof(ids[i]), "many/%zu/%zu", i % 7,
				 i);

		m[i].v = (struct mri_msg_view){
		    .handle       = 1000 + i,
		    .topic        = "many",
		    .topic_len    = 4,
		    .partition    = (int32_t)(i % 7),
		    .offset       = (int64_t)i,
		    .timestamp_ms = (int64_t)i * 3,
		    .attempt      = 1 + (uint32_t)(i % 3),
		    .flags        = i % 2 == 0 ? MRI_MSG_F_KEY : 0,
		    .id           = ids[i],
		    .id_len       = (uint8_t)l,
		    .key          = ids[i],
		    .key_len      = i % 2 == 0 ? (uint32_t)l : 0,
		    .payload      = ids[i],
		    .payload_len  = (uint32_t)l,
		};
	}
	consume_test__reply_roundtrip(m, MRI_FETCH_MAX_MSGS);

	// One message more than a reply may hold is refused, unallocated.
	mri_wbuf_init(&b);
	consume_test__reply(&b, m, MRI_FETCH_MAX_MSGS + 1);
	before = consume_test__callocs;
	consume_test__reply_refused(CONSUME_TEST__BODY(&b),
				    CONSUME_TEST__LEN(&b), MR_EPROTO);
	ck_assert_uint_eq(consume_test__callocs, before);
	mri_wbuf_fini(&b);

	// Minimal messages (a 48-byte encoding) fill a reply exactly.
	for (size_t i = 0; i < MRI_FETCH_MAX_MSGS; i++)
		m[i].v = (struct mri_msg_view){.topic     = "m",
					       .topic_len = 1,
					       .attempt   = 1,
					       .id        = "i",
					       .id_len    = 1};
	mri_wbuf_init(&b);
	consume_test__reply(&b, m, MRI_FETCH_MAX_MSGS);
	ck_assert_uint_eq(CONSUME_TEST__LEN(&b), 4 + 48 * MRI_FETCH_MAX_MSGS);
	ck_assert_int_eq(mri_fetch_reply_decode(CONSUME_TEST__BODY(&b),
						CONSUME_TEST__LEN(&b), &v, &n,
						&why),
			 MR_OK);
	ck_assert_uint_eq(n, MRI_FETCH_MAX_MSGS);
	ck_assert(consume_test__msg_eq(&v[MRI_FETCH_MAX_MSGS - 1], &m[0]));
	free(v);
	mri_wbuf_fini(&b);
	free(ids);
	free(m);
}
END_TEST

START_TEST(test_reply_truncated)
{
	struct consume_test__msg m[4];
	struct mri_wbuf          b;
	struct mri_frame_hdr     h;
	size_t                   len;

	consume_test__sample(m);
	mri_wbuf_init(&b);
	consume_test__reply(&b, m, 4);
	len = CONSUME_TEST__LEN(&b);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *d = consume_test__dup(CONSUME_TEST__BODY(&b), cut);

		consume_test__reply_refused(d, cut, MR_EPROTO);
		consume_test__undup(d, cut);
	}
	// The whole frame, cut anywhere, fails its header check.
	for (size_t cut = 0; cut < b.len; cut++) {
		const char *why = NULL;

		ck_assert_int_eq(mri_frame_parse_hdr(b.data, cut, &h, &why),
				 MR_EPROTO);
	}
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_reply_trailing)
{
	struct consume_test__msg m[4];
	struct mri_wbuf          b;
	uint8_t                 *d;
	size_t                   len;

	consume_test__sample(m);
	mri_wbuf_init(&b);
	consume_test__reply(&b, m, 4);
	len = CONSUME_TEST__LEN(&b);
	for (size_t extra = 1; extra <= 64; extra++) {
		d = consume_test__padded(CONSUME_TEST__BODY(&b), len, extra);
		consume_test__reply_refused(d, len + extra, MR_EPROTO);
		free(d);
	}
	// A whole extra message that the count does not announce.
	mri_msg_encode(&b, &m[0].v, NULL);
	consume_test__reply_refused(CONSUME_TEST__BODY(&b),
				    CONSUME_TEST__LEN(&b), MR_EPROTO);
	// An empty reply with something after its count.
	consume_test__reply(&b, NULL, 0);
	mri_msg_encode(&b, &m[0].v, NULL);
	consume_test__reply_refused(CONSUME_TEST__BODY(&b),
				    CONSUME_TEST__LEN(&b), MR_EPROTO);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_reply_bad_count)
{
	static const uint32_t    counts[] = {2,          1000,
					     MRI_FETCH_MAX_MSGS,
					     MRI_FETCH_MAX_MSGS + 1,
					     0x7fffffff, 0xffffffff};
	static const char        pad[49] = {0};
	struct consume_test__msg m;
	struct mri_wbuf          b;
	uint8_t                 *body;
	size_t                   len;
	unsigned long            before;

	// Shorter than the count itself.
	for (size_t n = 0; n < 4; n++) {
		uint8_t *d = consume_test__dup("\x01\x00\x00\x00", n);

		consume_test__reply_refused(d, n, MR_EPROTO);
		consume_test__undup(d, n);
	}
	// One 97-byte message: room for two minimal ones, not three.
	m.v    = (struct mri_msg_view){.topic       = "t",
				       .topic_len   = 1,
				       .attempt     = 1,
				       .id          = "i",
				       .id_len      = 1,
				       .payload     = pad,
				       .payload_len = sizeof(pad)};
	m.hdrs = NULL;
	mri_wbuf_init(&b);
	consume_test__reply(&b, &m, 1);
	len  = CONSUME_TEST__LEN(&b);
	body = CONSUME_TEST__BODY(&b);
	ck_assert_uint_eq(len, 4 + 2 * 48 + 1);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		consume_test__put_u32(body, counts[i]);
		before = consume_test__callocs;
		consume_test__reply_refused(body, len, MR_EPROTO);
		// Plausible by size: allocated, then found truncated.
		if (counts[i] != 2)
			ck_assert_uint_eq(consume_test__callocs, before);
	}
	// A big count with a four-byte body.
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		consume_test__put_u32(body, counts[i]);
		before = consume_test__callocs;
		consume_test__reply_refused(body, 4, MR_EPROTO);
		ck_assert_uint_eq(consume_test__callocs, before);
	}
#if CONSUME_TEST_COUNT_CALLOC
	// The counter does count the decoder's allocation.
	consume_test__put_u32(body, 1);
	before = consume_test__callocs;
	{
		struct mri_msg_view *v;
		uint32_t             n;
		const char          *why;

		ck_assert_int_eq(
		    mri_fetch_reply_decode(body, len, &v, &n, &why), MR_OK);
		free(v);
	}
	ck_assert_uint_eq(consume_test__callocs, before + 1);
#endif
	mri_wbuf_fini(&b);
}
END_TEST

/* Encode m[0..2] with m[1] made bad by the caller; expect a refusal. */
static void
consume_test__reply_bad(const struct consume_test__msg m[3])
{
	struct mri_wbuf b;

	mri_wbuf_init(&b);
	consume_test__reply(&b, m, 3);
	consume_test__reply_refused(CONSUME_TEST__BODY(&b),
				    CONSUME_TEST__LEN(&b), MR_EPROTO);
	mri_wbuf_fini(&b);
}

START_TEST(test_reply_invalid)
{
	static const struct {
		const char *t;
		size_t      n;
	} topics[] = {
	    {"bad topic", 9}, {".", 1},      {"..", 2},       {"", 0},
	    {"a/b", 3},       {"a\0b", 3},   {"\xc3\xbc", 2}, {NULL, 250},
	};
	static char              name[MRI_HDR_NAME_MAX + 1];
	struct mri_hdr_view      hs[MRI_HDR_COUNT_MAX + 1];
	static const char        pad[64] = {0};
	struct consume_test__msg ok, m[3];

	memset(name, 'h', sizeof(name));
	memset(consume_test__long, 'L', sizeof(consume_test__long));
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
		hs[i] = (struct mri_hdr_view){"h", 1, "v", 1};
	// Padded payloads keep the count check out of the way.
	ok = (struct consume_test__msg){
	    {.topic       = "ok",
	     .topic_len   = 2,
	     .attempt     = 1,
	     .id          = "ok/0/0",
	     .id_len      = 6,
	     .payload     = pad,
	     .payload_len = sizeof(pad)},
	    NULL};
	m[0] = m[2] = ok;
	consume_test__reply_roundtrip(&ok, 1);

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		const char *t = topics[i].t ? topics[i].t : consume_test__long;

		m[1]             = ok;
		m[1].v.topic     = t;
		m[1].v.topic_len = (uint16_t)topics[i].n;
		consume_test__reply_bad(m);
	}
	// An empty id.
	m[1]          = ok;
	m[1].v.id_len = 0;
	consume_test__reply_bad(m);
	// Unknown flags.
	for (int bit = 2; bit < 8; bit++) {
		m[1]         = ok;
		m[1].v.flags = (uint8_t)(1u << bit);
		consume_test__reply_bad(m);
	}
	// Key bytes without the key flag.
	m[1]           = ok;
	m[1].v.key     = "k";
	m[1].v.key_len = 1;
	consume_test__reply_bad(m);
	// Attempt 0, a negative partition or offset.
	m[1]           = ok;
	m[1].v.attempt = 0;
	consume_test__reply_bad(m);
	m[1]             = ok;
	m[1].v.partition = -1;
	consume_test__reply_bad(m);
	m[1]          = ok;
	m[1].v.offset = -1;
	consume_test__reply_bad(m);
	// 257 headers.
	m[1]             = ok;
	m[1].v.hdr_count = MRI_HDR_COUNT_MAX + 1;
	m[1].hdrs        = hs;
	consume_test__reply_bad(m);
	// An empty header name, after a good header.
	hs[1]            = (struct mri_hdr_view){"", 0, "v", 1};
	m[1].v.hdr_count = 2;
	consume_test__reply_bad(m);
	// A 256-byte header name.
	hs[1] = (struct mri_hdr_view){name, sizeof(name), "", 0};
	consume_test__reply_bad(m);
	hs[1] = (struct mri_hdr_view){name, MRI_HDR_NAME_MAX, "", 0};
	consume_test__reply_roundtrip(m, 3);
}
END_TEST

START_TEST(test_wbuf_patch_u32)
{
	static const uint8_t want[] = {0xaa, 0x78, 0x56, 0x34, 0x12, 0xbb};
	struct mri_wbuf      b;

	mri_wbuf_init(&b);
	// Nothing to patch in an empty buffer.
	mri_wbuf_patch_u32(&b, 0, 1);
	ck_assert_uint_eq(b.len, 0);
	mri_wbuf_u8(&b, 0xaa);
	mri_wbuf_u32(&b, 0);
	mri_wbuf_u8(&b, 0xbb);
	mri_wbuf_patch_u32(&b, 1, 0x12345678);
	consume_test__mem_eq(b.data, b.len, want, sizeof(want));
	// Out of range: ignored, nothing written past the end.
	mri_wbuf_patch_u32(&b, 3, 0xffffffff);
	mri_wbuf_patch_u32(&b, 6, 0xffffffff);
	mri_wbuf_patch_u32(&b, SIZE_MAX - 1, 0xffffffff);
	consume_test__mem_eq(b.data, b.len, want, sizeof(want));
	mri_wbuf_patch_u32(&b, 2, 0);
	ck_assert_uint_eq(b.data[1], 0x78);
	ck_assert_uint_eq(b.data[5], 0);
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- SETTLE ------------------------------------------------------------
 */

static void
consume_test__settle(struct mri_wbuf *b, uint8_t kind, uint32_t extend_ms,
		     const char *reason, size_t reason_len,
		     const struct mri_range *r, uint32_t n)
{
	struct mri_settle s = {.session    = 0x1122334455667788ULL,
			       .kind       = kind,
			       .extend_ms  = extend_ms,
			       .reason     = reason,
			       .reason_len = (uint16_t)reason_len};

	mri_settle_encode(b, &s, r, n);
	ck_assert_int_eq(b->err, MR_OK);
}

static void
consume_test__settle_refused(const void *body, size_t len, int rc)
{
	struct mri_settle s;
	const char       *why = NULL;

	memset(&s, 0xa5, sizeof(s));
	ck_assert_int_eq(mri_settle_decode(body, len, &s, &why), rc);
	ck_assert(s.session == 0 && s.kind == 0 && !s.linger &&
		  s.extend_ms == 0 && s.reason == NULL && s.reason_len == 0 &&
		  s.range_count == 0 && s.handles == 0 && s.ranges == NULL);
	consume_test__why(why);
}

static void
consume_test__settle_roundtrip(uint8_t kind, uint32_t extend_ms,
			       const char *reason, size_t reason_len,
			       const struct mri_range *r, uint32_t n)
{
	struct mri_wbuf   b;
	struct mri_settle s;
	const char       *why = NULL;
	size_t            len;
	uint64_t          sum = 0;

	mri_wbuf_init(&b);
	consume_test__settle(&b, kind, extend_ms, reason, reason_len, r, n);
	len = consume_test__frame(&b, MRI_OP_SETTLE);
	ck_assert_uint_eq(len, 19 + reason_len + 12 * (size_t)n);
	ck_assert_msg(mri_settle_decode(CONSUME_TEST__BODY(&b), len, &s,
					&why) == MR_OK,
		      "settle decode: %s", why);
	ck_assert(s.session == 0x1122334455667788ULL);
	ck_assert_uint_eq(s.kind, kind);
	ck_assert_uint_eq(s.extend_ms, extend_ms);
	consume_test__mem_eq(s.reason, s.reason_len, reason, reason_len);
	ck_assert_uint_eq(s.range_count, n);
	for (uint32_t i = 0; i < n; i++) {
		struct mri_range g;

		mri_settle_range(&s, i, &g);
		if (g.first != r[i].first || g.count != r[i].count)
			ck_abort_msg("range %u of %u differs", i, n);
		sum += g.count;
	}
	ck_assert(s.handles == sum);
	mri_wbuf_fini(&b);
}

START_TEST(test_settle_roundtrip)
{
	static const struct mri_range r[] = {
	    {1, 1},
	    {100, 50},
	    {UINT64_MAX, 1},
	    {UINT64_MAX - 9, 10},
	    {0, 1},
	    {1ULL << 40, 65536},
	};
	static const uint8_t want[] = {
	    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // session
	    0x01,                                           // kind
	    0x00, 0x00, 0x00, 0x00,                         // extend_ms
	    0x02, 0x00, 'n',  'o',                          // reason
	    0x01, 0x00, 0x00, 0x00,                         // range_count
	    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // first
	    0x03, 0x00, 0x00, 0x00,                         // count
	};
	static const struct mri_range one = {5, 3};
	struct mri_wbuf               b;

	consume_test__settle_roundtrip(MRI_SETTLE_ACK, 0, NULL, 0, r, 1);
	consume_test__settle_roundtrip(MRI_SETTLE_ACK, 0, NULL, 0, r, 6);
	consume_test__settle_roundtrip(MRI_SETTLE_NACK, 0, "boom: \xc3\xa9", 8,
				       r, 6);
	consume_test__settle_roundtrip(MRI_SETTLE_NACK, 0, NULL, 0, r + 2, 1);
	consume_test__settle_roundtrip(MRI_SETTLE_EXTEND, 1, NULL, 0, r, 6);
	consume_test__settle_roundtrip(MRI_SETTLE_EXTEND, UINT32_MAX, NULL, 0,
				       r + 3, 3);
	consume_test__settle_roundtrip(MRI_SETTLE_REJECT, 0, "poison", 6, r,
				       6);
	consume_test__settle_roundtrip(MRI_SETTLE_REJECT, 0, NULL, 0, r + 1,
				       1);
	// An ack that may linger: the flag in the kind's byte.
	mri_wbuf_init(&b);
	{
		struct mri_settle s = {.session = 7,
				       .kind    = MRI_SETTLE_ACK,
				       .linger  = true};
		struct mri_settle d;
		const char       *why = NULL;

		mri_settle_encode(&b, &s, r, 2);
		ck_assert_uint_eq(CONSUME_TEST__BODY(&b)[8], 0x80);
		ck_assert_msg(mri_settle_decode(CONSUME_TEST__BODY(&b),
						CONSUME_TEST__LEN(&b), &d,
						&why) == MR_OK,
			      "%s", why);
		ck_assert(d.kind == MRI_SETTLE_ACK && d.linger &&
			  d.range_count == 2);
		s.linger = false;
		mri_settle_encode(&b, &s, r, 2);
		ck_assert_int_eq(mri_settle_decode(CONSUME_TEST__BODY(&b),
						   CONSUME_TEST__LEN(&b), &d,
						   &why),
				 MR_OK);
		ck_assert(d.kind == MRI_SETTLE_ACK && !d.linger);
	}
	mri_wbuf_fini(&b);
	// The layout, byte by byte.
	mri_wbuf_init(&b);
	mri_wbuf_put(&b, "garbage", 7);
	consume_test__settle(&b, MRI_SETTLE_NACK, 0, "no", 2, &one, 1);
	ck_assert_uint_eq(consume_test__frame(&b, MRI_OP_SETTLE),
			  sizeof(want));
	ck_assert_uint_eq(b.data[3], 0x06);
	consume_test__mem_eq(CONSUME_TEST__BODY(&b), CONSUME_TEST__LEN(&b),
			     want, sizeof(want));
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_settle_limits)
{
	struct mri_range *r = calloc(MRI_SETTLE_RANGES_MAX + 1, sizeof(*r));
	char             *reason = malloc(MRI_REASON_MAX);
	struct mri_wbuf   b;

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(reason);
	memset(reason, 'r', MRI_REASON_MAX);
	// The most ranges, adding up to the most handles, and the longest
	// reason.
	for (size_t i = 0; i <= MRI_SETTLE_RANGES_MAX; i++)
		r[i] = (struct mri_range){1 + 10 * (uint64_t)i, 10};
	consume_test__settle_roundtrip(MRI_SETTLE_NACK, 0, reason,
				       MRI_REASON_MAX, r,
				       MRI_SETTLE_RANGES_MAX);
	consume_test__settle_roundtrip(MRI_SETTLE_REJECT, 0, reason,
				       MRI_REASON_MAX, r, 1);
	// One range more.
	r[0].count = 1;
	mri_wbuf_init(&b);
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, r,
			     MRI_SETTLE_RANGES_MAX + 1);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	// One handle more.
	r[0].count = 11;
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, r,
			     MRI_SETTLE_RANGES_MAX);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	// A single range of all the handles, then of one more.
	r[0] = (struct mri_range){7, MRI_SETTLE_MAX};
	consume_test__settle_roundtrip(MRI_SETTLE_ACK, 0, NULL, 0, r, 1);
	r[0].count = MRI_SETTLE_MAX + 1;
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, r, 1);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	r[0].count = UINT32_MAX;
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, r, 1);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	// Two ranges that only together are too many.
	r[0] = (struct mri_range){1, MRI_SETTLE_MAX / 2};
	r[1] = (struct mri_range){1ULL << 32, MRI_SETTLE_MAX / 2 + 1};
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, r, 2);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	mri_wbuf_fini(&b);
	free(reason);
	free(r);
}
END_TEST

START_TEST(test_settle_truncated_and_trailing)
{
	static const struct mri_range r[] = {{1, 2}, {10, 20}, {300, 1}};
	struct mri_wbuf               b;
	size_t                        len;
	uint8_t                      *d;

	mri_wbuf_init(&b);
	consume_test__settle(&b, MRI_SETTLE_NACK, 0, "why not", 7, r, 3);
	len = CONSUME_TEST__LEN(&b);
	for (size_t cut = 0; cut < len; cut++) {
		d = consume_test__dup(CONSUME_TEST__BODY(&b), cut);
		consume_test__settle_refused(d, cut, MR_EPROTO);
		consume_test__undup(d, cut);
	}
	// Part of a range, a whole one the count does not announce, more.
	for (size_t extra = 1; extra <= 30; extra++) {
		d = consume_test__padded(CONSUME_TEST__BODY(&b), len, extra);
		if (extra >= 12)
			d[len + 8] = 1; // a range of one handle
		consume_test__settle_refused(d, len + extra, MR_EPROTO);
		free(d);
	}
	// A count of ranges the body cannot hold.
	d = consume_test__padded(CONSUME_TEST__BODY(&b), len, 0);
	consume_test__put_u32(d + len - 3 * 12 - 4, 4);
	consume_test__settle_refused(d, len, MR_EPROTO);
	consume_test__put_u32(d + len - 3 * 12 - 4, MRI_SETTLE_RANGES_MAX);
	consume_test__settle_refused(d, len, MR_EPROTO);
	consume_test__put_u32(d + len - 3 * 12 - 4, 2);
	consume_test__settle_refused(d, len, MR_EPROTO);
	free(d);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_settle_invalid)
{
	static const struct mri_range ok[]    = {{1, 1}, {5, 5}};
	static const struct mri_range zero[]  = {{1, 1}, {5, 0}};
	static const struct mri_range wrap1[] = {{1, 1}, {UINT64_MAX, 2}};
	static const struct mri_range wrap2[] = {{UINT64_MAX - 8, 10}};
	static const struct mri_range wrap3[] = {{2, 1},
						 {UINT64_MAX, UINT32_MAX}};
	char                          reason[MRI_REASON_MAX + 1];
	struct mri_wbuf               b;
	static const struct {
		uint8_t     kind;
		uint32_t    extend_ms;
		const char *reason;
		size_t      reason_len;
	} bad[] = {
	    {4, 0, NULL, 0},
	    {0xff, 0, NULL, 0},
	    {4, 0, "r", 1},
	    {MRI_SETTLE_REJECT, 5, NULL, 0},
	    {MRI_SETTLE_REJECT, 5, "r", 1},
	    {MRI_SETTLE_EXTEND, 0, NULL, 0},
	    {MRI_SETTLE_ACK, 1, NULL, 0},
	    {MRI_SETTLE_NACK, 1000, NULL, 0},
	    {MRI_SETTLE_ACK, 0, "r", 1},
	    {MRI_SETTLE_EXTEND, 10, "r", 1},
	    // The linger flag is for an ack only.
	    {MRI_SETTLE_F_LINGER | MRI_SETTLE_NACK, 0, NULL, 0},
	    {MRI_SETTLE_F_LINGER | MRI_SETTLE_EXTEND, 5, NULL, 0},
	    {MRI_SETTLE_F_LINGER | MRI_SETTLE_REJECT, 0, "r", 1},
	    {MRI_SETTLE_F_LINGER | 4, 0, NULL, 0},
	};

	mri_wbuf_init(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		consume_test__settle(&b, bad[i].kind, bad[i].extend_ms,
				     bad[i].reason, bad[i].reason_len, ok, 2);
		consume_test__settle_refused(CONSUME_TEST__BODY(&b),
					     CONSUME_TEST__LEN(&b), MR_EINVAL);
	}
	// A reason one byte too long.
	memset(reason, 'x', sizeof(reason));
	consume_test__settle(&b, MRI_SETTLE_NACK, 0, reason, sizeof(reason),
			     ok, 2);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	consume_test__settle(&b, MRI_SETTLE_REJECT, 0, reason, sizeof(reason),
			     ok, 2);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	// No ranges at all.
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, NULL, 0);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	// A range of no handles; ranges that wrap past UINT64_MAX.
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, zero, 2);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, wrap1, 2);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, wrap2, 1);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, wrap3, 2);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	// A huge range count with no ranges behind it.
	consume_test__settle(&b, MRI_SETTLE_ACK, 0, NULL, 0, NULL, 0);
	consume_test__put_u32(CONSUME_TEST__BODY(&b) + 15, UINT32_MAX);
	consume_test__settle_refused(CONSUME_TEST__BODY(&b),
				     CONSUME_TEST__LEN(&b), MR_EINVAL);
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- SETTLE_REPLY ------------------------------------------------------
 */

static void
consume_test__settle_reply_refused(const void *body, size_t len)
{
	struct mri_settle_fail *f   = (void *)&f;
	uint32_t                ok  = 7, nf = 7;
	const char             *why = NULL;

	ck_assert_int_eq(
	    mri_settle_reply_decode(body, len, &ok, &f, &nf, &why), MR_EPROTO);
	ck_assert_ptr_null(f);
	ck_assert_uint_eq(ok, 0);
	ck_assert_uint_eq(nf, 0);
	consume_test__why(why);
}

static void
consume_test__settle_reply_roundtrip(uint32_t settled,
				     const struct mri_settle_fail *f,
				     uint32_t n)
{
	struct mri_wbuf         b;
	struct mri_settle_fail *g   = (void *)&g;
	uint32_t                ok  = 7, nf = 7;
	const char             *why = NULL;
	size_t                  len;

	mri_wbuf_init(&b);
	mri_wbuf_put(&b, "garbage", 7);
	mri_settle_reply_encode(&b, settled, f, n);
	len = consume_test__frame(&b, MRI_OP_SETTLE_REPLY);
	ck_assert_uint_eq(len, 8 + 10 * (size_t)n);
	ck_assert_msg(mri_settle_reply_decode(CONSUME_TEST__BODY(&b), len,
					      &ok, &g, &nf, &why) == MR_OK,
		      "settle reply decode: %s", why);
	ck_assert_uint_eq(ok, settled);
	ck_assert_uint_eq(nf, n);
	if (n == 0)
		ck_assert_ptr_null(g);
	for (uint32_t i = 0; i < n; i++)
		if (g[i].handle != f[i].handle || g[i].status != f[i].status)
			ck_abort_msg("failure %u of %u differs", i, n);
	free(g);
	mri_wbuf_fini(&b);
}

START_TEST(test_settle_reply_roundtrip)
{
	static const struct mri_settle_fail f[] = {
	    {7, MR_ENOENT},
	    {UINT64_MAX, 0xffff},
	    {0, MR_EINVAL},
	};
	static const uint8_t want[] = {
	    0x05, 0x00, 0x00, 0x00,                         // settled
	    0x01, 0x00, 0x00, 0x00,                         // failed_count
	    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // handle
	    0x15, 0x00,                                     // status
	};
	struct mri_settle_fail *many;
	struct mri_wbuf         b;

	consume_test__settle_reply_roundtrip(0, NULL, 0);
	consume_test__settle_reply_roundtrip(MRI_SETTLE_MAX, NULL, 0);
	consume_test__settle_reply_roundtrip(10, f, 3);
	consume_test__settle_reply_roundtrip(0, f, 1);
	// Every handle of the largest SETTLE failed.
	many = calloc(MRI_SETTLE_MAX, sizeof(*many));
	ck_assert_ptr_nonnull(many);
	for (size_t i = 0; i < MRI_SETTLE_MAX; i++)
		many[i] = (struct mri_settle_fail){i * 3, MR_ENOENT};
	consume_test__settle_reply_roundtrip(0, many, MRI_SETTLE_MAX);
	consume_test__settle_reply_roundtrip(1, many, MRI_SETTLE_MAX - 1);
	// One more handle than a SETTLE may hold.
	mri_wbuf_init(&b);
	mri_settle_reply_encode(&b, 1, many, MRI_SETTLE_MAX);
	consume_test__settle_reply_refused(CONSUME_TEST__BODY(&b),
					   CONSUME_TEST__LEN(&b));
	free(many);
	// The layout, byte by byte.
	mri_settle_reply_encode(&b, 5, f, 1);
	ck_assert_uint_eq(consume_test__frame(&b, MRI_OP_SETTLE_REPLY),
			  sizeof(want));
	ck_assert_uint_eq(b.data[3], 0x86);
	consume_test__mem_eq(CONSUME_TEST__BODY(&b), CONSUME_TEST__LEN(&b),
			     want, sizeof(want));
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_settle_reply_truncated_and_trailing)
{
	static const struct mri_settle_fail f[] = {{7, MR_ENOENT},
						   {8, MR_ENOENT}};
	struct mri_wbuf                     b;
	size_t                              len;
	uint8_t                            *d;

	mri_wbuf_init(&b);
	mri_settle_reply_encode(&b, 3, f, 2);
	len = CONSUME_TEST__LEN(&b);
	for (size_t cut = 0; cut < len; cut++) {
		d = consume_test__dup(CONSUME_TEST__BODY(&b), cut);
		consume_test__settle_reply_refused(d, cut);
		consume_test__undup(d, cut);
	}
	for (size_t extra = 1; extra <= 24; extra++) {
		d = consume_test__padded(CONSUME_TEST__BODY(&b), len, extra);
		if (extra >= 10)
			d[len + 8] = MR_ENOENT; // a well-formed failure
		consume_test__settle_reply_refused(d, len + extra);
		free(d);
	}
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_settle_reply_bad)
{
	static const uint32_t counts[] = {3,
					  1000,
					  MRI_SETTLE_MAX,
					  MRI_SETTLE_MAX + 1,
					  0x7fffffff,
					  0xffffffff};
	static const struct mri_settle_fail f[] = {{7, MR_ENOENT},
						   {8, MR_ENOENT}};
	static const struct mri_settle_fail z[] = {{7, MR_ENOENT}, {8, 0}};
	struct mri_wbuf                     b;
	unsigned long                       before;

	mri_wbuf_init(&b);
	// Failure counts the body cannot hold: refused unallocated.
	mri_settle_reply_encode(&b, 3, f, 2);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		consume_test__put_u32(CONSUME_TEST__BODY(&b) + 4, counts[i]);
		before = consume_test__callocs;
		consume_test__settle_reply_refused(CONSUME_TEST__BODY(&b),
						   CONSUME_TEST__LEN(&b));
		consume_test__settle_reply_refused(CONSUME_TEST__BODY(&b), 8);
		ck_assert_uint_eq(consume_test__callocs, before);
	}
	// Settled and failed add up to more than a SETTLE holds.
	mri_settle_reply_encode(&b, MRI_SETTLE_MAX - 1, f, 2);
	consume_test__settle_reply_refused(CONSUME_TEST__BODY(&b),
					   CONSUME_TEST__LEN(&b));
	mri_settle_reply_encode(&b, UINT32_MAX, f, 2);
	consume_test__settle_reply_refused(CONSUME_TEST__BODY(&b),
					   CONSUME_TEST__LEN(&b));
	consume_test__settle_reply_roundtrip(MRI_SETTLE_MAX - 2, f, 2);
	// A failure whose status says success.
	mri_settle_reply_encode(&b, 0, z, 2);
	consume_test__settle_reply_refused(CONSUME_TEST__BODY(&b),
					   CONSUME_TEST__LEN(&b));
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- UNSUBSCRIBE -------------------------------------------------------
 */

START_TEST(test_unsubscribe)
{
	static const uint64_t sessions[] = {0, 1, 0x0102030405060708ULL,
					    UINT64_MAX};
	static const uint8_t  want[]     = {0x08, 0x07, 0x06, 0x05,
					    0x04, 0x03, 0x02, 0x01};
	struct mri_wbuf       b;
	uint64_t              s;
	const char           *why;
	uint8_t              *d;

	mri_wbuf_init(&b);
	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		mri_wbuf_put(&b, "garbage", 7);
		mri_unsubscribe_encode(&b, sessions[i]);
		ck_assert_uint_eq(consume_test__frame(&b, MRI_OP_UNSUBSCRIBE),
				  8);
		ck_assert_uint_eq(b.data[3], 0x07);
		s = 7;
		ck_assert_int_eq(mri_unsubscribe_decode(CONSUME_TEST__BODY(&b),
							8, &s, &why),
				 MR_OK);
		ck_assert(s == sessions[i]);
	}
	mri_unsubscribe_encode(&b, 0x0102030405060708ULL);
	consume_test__mem_eq(CONSUME_TEST__BODY(&b), CONSUME_TEST__LEN(&b),
			     want, sizeof(want));
	// Every other length.
	for (size_t n = 0; n < 8; n++) {
		d = consume_test__dup(CONSUME_TEST__BODY(&b), n);
		s   = 7;
		why = NULL;
		ck_assert_int_eq(mri_unsubscribe_decode(d, n, &s, &why),
				 MR_EPROTO);
		ck_assert(s == 0);
		consume_test__why(why);
		consume_test__undup(d, n);
	}
	for (size_t extra = 1; extra <= 16; extra++) {
		d = consume_test__padded(CONSUME_TEST__BODY(&b), 8, extra);
		s   = 7;
		why = NULL;
		ck_assert_int_eq(
		    mri_unsubscribe_decode(d, 8 + extra, &s, &why), MR_EPROTO);
		ck_assert(s == 0);
		consume_test__why(why);
		free(d);
	}
	mri_wbuf_fini(&b);
}
END_TEST

/* The in-place writers give the bytes of the wbuf encoders: a FETCH_REPLY
 * written into memory of the computed size, as mailroomd writes it into an
 * nng_msg, and a SETTLE_REPLY against its layout. */
START_TEST(test_put_in_place)
{
	struct consume_test__msg m[4];
	struct mri_wbuf          b;
	uint8_t                 *mem, *p;
	size_t                   len = MRI_FETCH_REPLY_HDR_LEN;
	static const uint8_t     settle[] = {
	    'M', 'R', 1, MRI_OP_SETTLE_REPLY, 0, 0, 0, 0, 18, 0, 0, 0,
	    7, 0, 0, 0, 1, 0, 0, 0,        // settled, nf
	    9, 8, 7, 6, 5, 4, 3, 2, 21, 0, // handle, status
	};

	consume_test__sample(m);
	mri_wbuf_init(&b);
	consume_test__reply(&b, m, 4);
	for (size_t i = 0; i < 4; i++)
		len += mri_msg_size(&m[i].v, m[i].hdrs);
	ck_assert_uint_eq(len, b.len);
	ck_assert_ptr_nonnull(mem = malloc(len));
	memset(mem, 0xee, len);
	mri_fetch_reply_put_hdr(mem, len, 4);
	p = mem + MRI_FETCH_REPLY_HDR_LEN;
	for (size_t i = 0; i < 4; i++)
		p += mri_msg_put(p, &m[i].v, m[i].hdrs);
	ck_assert_uint_eq((size_t)(p - mem), len);
	ck_assert_mem_eq(mem, b.data, len);
	free(mem);

	ck_assert_uint_eq(mri_settle_reply_size(1), sizeof(settle));
	ck_assert_ptr_nonnull(mem = malloc(sizeof(settle)));
	mri_settle_reply_put_hdr(mem, 7, 1);
	mri_settle_fail_put(mem, 0, 0x0203040506070809ULL, MR_ENOENT);
	ck_assert_int_eq(MR_ENOENT, 21);
	ck_assert_mem_eq(mem, settle, sizeof(settle));
	free(mem);
	mri_wbuf_fini(&b);
}
END_TEST

static Suite *
consume_test__suite(void)
{
	Suite *s = suite_create("consume");
	TCase *tc;

	tc = tcase_create("fetch");
	tcase_add_test(tc, test_fetch_roundtrip);
	tcase_add_test(tc, test_fetch_truncated_and_trailing);
	tcase_add_test(tc, test_fetch_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("fetch_reply");
	tcase_add_test(tc, test_reply_roundtrip);
	tcase_add_test(tc, test_reply_layout);
	tcase_add_test(tc, test_reply_headers_256);
	tcase_add_test(tc, test_reply_big_payload);
	tcase_add_test(tc, test_reply_many);
	tcase_add_test(tc, test_reply_truncated);
	tcase_add_test(tc, test_reply_trailing);
	tcase_add_test(tc, test_reply_bad_count);
	tcase_add_test(tc, test_reply_invalid);
	tcase_add_test(tc, test_wbuf_patch_u32);
	tcase_add_test(tc, test_put_in_place);
	suite_add_tcase(s, tc);

	tc = tcase_create("settle");
	tcase_add_test(tc, test_settle_roundtrip);
	tcase_add_test(tc, test_settle_limits);
	tcase_add_test(tc, test_settle_truncated_and_trailing);
	tcase_add_test(tc, test_settle_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("settle_reply");
	tcase_add_test(tc, test_settle_reply_roundtrip);
	tcase_add_test(tc, test_settle_reply_truncated_and_trailing);
	tcase_add_test(tc, test_settle_reply_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("unsubscribe");
	tcase_add_test(tc, test_unsubscribe);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(consume_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
