/*
 * Tests for proto/frame.c: the frame header, PUBLISH, PUBLISH_ACK and ERROR
 * codecs, and topic names. Every decoder is also fed every truncation of a
 * valid body, copied to end where an inaccessible page begins, so that any
 * read past it crashes, with or without a sanitizer.
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
#include "proto/frame.h"

/*
 * With glibc and no sanitizer, this calloc (and realloc, which
 * mri_publish_decode_into grows the caller's array with) replaces libc's so
 * that a test can show that a frame was refused before the decoder
 * allocated anything.
 * It calls glibc's own: written with malloc and memset, the compiler would
 * turn it back into a call to calloc, itself. Sanitizers interpose the
 * allocator themselves; there the counter stays unused.
 */
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__) ||                  \
    defined(__SANITIZE_THREAD__)
#define FRAME_TEST_COUNT_CALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||   \
    __has_feature(memory_sanitizer)
#define FRAME_TEST_COUNT_CALLOC 0
#endif
#endif
#ifndef FRAME_TEST_COUNT_CALLOC
#define FRAME_TEST_COUNT_CALLOC 1
#endif

static unsigned long frame_test__callocs;

#if FRAME_TEST_COUNT_CALLOC
extern void *__libc_calloc(size_t n, size_t size);

void *
calloc(size_t n, size_t size)
{
	frame_test__callocs++;
	return __libc_calloc(n, size);
}

extern void *__libc_realloc(void *p, size_t size);

void *
realloc(void *p, size_t size)
{
	frame_test__callocs++;
	return __libc_realloc(p, size);
}
#endif

/* What a test means to encode, and expects to decode, for one message. */
struct frame_test__msg {
	const char                *topic;
	size_t                     topic_len;
	bool                       has_key;
	const void                *key;
	size_t                     key_len;
	const char                *id;
	size_t                     id_len;
	uint16_t                   hdr_count;
	const struct mri_hdr_view *hdrs;
	const void                *payload;
	size_t                     payload_len;
};

static void
frame_test__mem_eq(const void *got, size_t got_len, const void *want,
		   size_t want_len)
{
	ck_assert_uint_eq(got_len, want_len);
	if (want_len > 0) {
		ck_assert_ptr_nonnull(got);
		ck_assert(memcmp(got, want, want_len) == 0);
	}
}

/* A PUBLISH frame of \p n messages into \p b (initialised by the caller). */
static void
frame_test__publish(struct mri_wbuf *b, const struct frame_test__msg *m,
		    size_t n)
{
	mri_frame_begin(b, MRI_OP_PUBLISH);
	mri_wbuf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		mri_publish_encode_msg(b, m[i].topic, m[i].topic_len, m[i].key,
				       m[i].key_len, m[i].has_key, m[i].id,
				       m[i].id_len, m[i].hdr_count, m[i].hdrs,
				       m[i].payload, m[i].payload_len);
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
}

/*
 * A copy of \p len bytes that ends where a page without access begins, so
 * that a decoder reading past its input crashes even without a sanitizer.
 * Release it with frame_test__undup.
 */
static uint8_t *
frame_test__dup(const void *p, size_t len)
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
frame_test__undup(uint8_t *d, size_t len)
{
	size_t    page  = (size_t)sysconf(_SC_PAGESIZE);
	size_t    span  = (len + page - 1) / page * page + page;
	uintptr_t start = ((uintptr_t)d + len) - (span - page);

	ck_assert_int_eq(munmap((void *)start, span), 0);
}

static bool
frame_test__bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Whether \p v decodes \p m; without Check's per-assertion cost. */
static bool
frame_test__msg_eq(const struct mri_pub_view *v,
		   const struct frame_test__msg *m)
{
	const uint8_t      *pos = v->hdrs;
	struct mri_hdr_view h;

	if (!frame_test__bytes_eq(v->topic, v->topic_len, m->topic,
				  m->topic_len) ||
	    v->has_key != m->has_key ||
	    (m->has_key ? !frame_test__bytes_eq(v->key, v->key_len, m->key,
						m->key_len)
			: v->key_len != 0) ||
	    !frame_test__bytes_eq(v->id, v->id_len, m->id, m->id_len) ||
	    v->hdr_count != m->hdr_count)
		return false;
	for (uint16_t i = 0; i < v->hdr_count; i++) {
		mri_pub_next_hdr(&pos, &h);
		if (!frame_test__bytes_eq(h.name, h.name_len, m->hdrs[i].name,
					  m->hdrs[i].name_len) ||
		    !frame_test__bytes_eq(h.value, h.value_len,
					  m->hdrs[i].value,
					  m->hdrs[i].value_len))
			return false;
	}
	return pos + 4 == (const uint8_t *)v->payload &&
	       frame_test__bytes_eq(v->payload, v->payload_len, m->payload,
				    m->payload_len);
}

/* As msg_eq, asserting field by field. */
static void
frame_test__check_msg(const struct mri_pub_view *v,
		      const struct frame_test__msg *m)
{
	const uint8_t      *pos;
	struct mri_hdr_view h;

	frame_test__mem_eq(v->topic, v->topic_len, m->topic, m->topic_len);
	ck_assert_int_eq(v->has_key, m->has_key);
	if (m->has_key)
		frame_test__mem_eq(v->key, v->key_len, m->key, m->key_len);
	else
		ck_assert_uint_eq(v->key_len, 0);
	frame_test__mem_eq(v->id, v->id_len, m->id, m->id_len);
	ck_assert_uint_eq(v->hdr_count, m->hdr_count);
	pos = v->hdrs;
	for (uint16_t i = 0; i < v->hdr_count; i++) {
		mri_pub_next_hdr(&pos, &h);
		frame_test__mem_eq(h.name, h.name_len, m->hdrs[i].name,
				   m->hdrs[i].name_len);
		frame_test__mem_eq(h.value, h.value_len, m->hdrs[i].value,
				   m->hdrs[i].value_len);
	}
	// The headers end where the payload's length prefix starts.
	ck_assert_ptr_eq(pos + 4, v->payload);
	frame_test__mem_eq(v->payload, v->payload_len, m->payload,
			   m->payload_len);
}

/* Decode \p body expecting \p rc, and check the outputs of a refusal. */
static void
frame_test__refused(const void *body, size_t len, int rc, int64_t bad)
{
	struct mri_pub_view *v     = (void *)&v;
	uint32_t             count = 7;
	const char          *why   = NULL;
	int64_t              bi    = 99;

	ck_assert_int_eq(mri_publish_decode(body, len, &v, &count, &why, &bi),
			 rc);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(count, 0);
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0] != '\0');
	ck_assert_int_eq(bi, bad);
}

static void
frame_test__fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static const uint8_t frame_test__binkey[] = {0x00, 0x01, 0x00, 0xff, 0x00};
static const uint8_t frame_test__binval[] = {0x00, 0x00, 'v', 0x00, 0x80};

static const struct mri_hdr_view frame_test__hdrs[] = {
    {"content-type", 12, "application/json", 16},
    {"bin", 3, frame_test__binval, sizeof(frame_test__binval)},
    {"empty", 5, "", 0},
    {"n\0l", 3, "x", 1},
};

/* Four messages covering the optional parts, used by several tests. */
static const struct frame_test__msg frame_test__sample[] = {
    {"orders", 6, false, NULL, 0, "", 0, 0, NULL, "hello", 5},
    {"orders", 6, true, "", 0, "id-1", 4, 4, frame_test__hdrs, "", 0},
    {"a.b_c-D9", 8, true, frame_test__binkey, sizeof(frame_test__binkey),
     "0190f0c8-7a3e-7000-8000-000000000001", 36, 1, frame_test__hdrs + 1,
     "\0\0payload\0", 10},
    {"t", 1, true, "42", 2, "x", 1, 2, frame_test__hdrs + 2, "p", 1},
};

#define FRAME_TEST__NSAMPLE                                                   \
	(sizeof(frame_test__sample) / sizeof(frame_test__sample[0]))

/* ---- header -------------------------------------------------------------
 */

static void
frame_test__hdr_bytes(uint8_t p[MRI_FRAME_HDR_LEN], uint32_t body_len)
{
	memset(p, 0, MRI_FRAME_HDR_LEN);
	p[0]  = 'M';
	p[1]  = 'R';
	p[2]  = MRI_PROTO_VERSION;
	p[3]  = MRI_OP_PUBLISH;
	p[8]  = (uint8_t)body_len;
	p[9]  = (uint8_t)(body_len >> 8);
	p[10] = (uint8_t)(body_len >> 16);
	p[11] = (uint8_t)(body_len >> 24);
}

START_TEST(test_hdr_ok)
{
	uint8_t              f[MRI_FRAME_HDR_LEN + 3];
	struct mri_frame_hdr h;
	const char          *why = NULL;

	frame_test__hdr_bytes(f, 3);
	f[3] = MRI_OP_STATUS;
	f[4] = 0x34; // flags are the op's business, not the header's
	f[5] = 0x12;
	ck_assert_int_eq(mri_frame_parse_hdr(f, sizeof(f), &h, &why), MR_OK);
	ck_assert_uint_eq(h.version, MRI_PROTO_VERSION);
	ck_assert_uint_eq(h.op, MRI_OP_STATUS);
	ck_assert_uint_eq(h.flags, 0x1234);
	ck_assert_uint_eq(h.body_len, 3);

	frame_test__hdr_bytes(f, 0);
	ck_assert_int_eq(mri_frame_parse_hdr(f, MRI_FRAME_HDR_LEN, &h, &why),
			 MR_OK);
	ck_assert_uint_eq(h.body_len, 0);
}
END_TEST

START_TEST(test_hdr_short)
{
	uint8_t              f[MRI_FRAME_HDR_LEN];
	struct mri_frame_hdr h;

	frame_test__hdr_bytes(f, 0);
	for (size_t n = 0; n < MRI_FRAME_HDR_LEN; n++) {
		uint8_t    *d   = frame_test__dup(f, n);
		const char *why = NULL;

		ck_assert_int_eq(mri_frame_parse_hdr(d, n, &h, &why),
				 MR_EPROTO);
		ck_assert_ptr_nonnull(why);
		frame_test__undup(d, n);
	}
}
END_TEST

START_TEST(test_hdr_bad_magic)
{
	static const uint8_t bad[][2] = {
	    {'M', 'r'}, {'m', 'R'}, {'R', 'M'}, {0, 0}, {'M', 0}};
	uint8_t              f[MRI_FRAME_HDR_LEN];
	struct mri_frame_hdr h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		frame_test__hdr_bytes(f, 0);
		f[0] = bad[i][0];
		f[1] = bad[i][1];
		ck_assert_int_eq(mri_frame_parse_hdr(f, sizeof(f), &h, &why),
				 MR_EPROTO);
		ck_assert_ptr_nonnull(why);
	}
}
END_TEST

START_TEST(test_hdr_version)
{
	static const uint8_t vers[] = {0, 2, 3, 0x7f, 0x80, 0xff};
	uint8_t              f[MRI_FRAME_HDR_LEN];
	struct mri_frame_hdr h;

	for (size_t i = 0; i < sizeof(vers); i++) {
		const char *why = NULL;

		frame_test__hdr_bytes(f, 0);
		f[2] = vers[i];
		ck_assert_int_eq(mri_frame_parse_hdr(f, sizeof(f), &h, &why),
				 MR_EVERSION);
		ck_assert_ptr_nonnull(why);
		ck_assert_uint_eq(h.version, vers[i]);
	}
}
END_TEST

START_TEST(test_hdr_reserved)
{
	uint8_t              f[MRI_FRAME_HDR_LEN];
	struct mri_frame_hdr h;

	for (int byte = 6; byte <= 7; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			const char *why = NULL;

			frame_test__hdr_bytes(f, 0);
			f[byte] = (uint8_t)(1u << bit);
			ck_assert_int_eq(
			    mri_frame_parse_hdr(f, sizeof(f), &h, &why),
			    MR_EPROTO);
			ck_assert_ptr_nonnull(why);
		}
	}
}
END_TEST

START_TEST(test_hdr_body_len_mismatch)
{
	static const uint32_t lens[] = {0,  1,  7,          9,
					16, 80, 0x7fffffff, 0xffffffff};
	uint8_t               f[MRI_FRAME_HDR_LEN + 8] = {0};
	struct mri_frame_hdr  h;
	const char           *why;

	// The frame holds 8 body bytes; every other length is refused.
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		why = NULL;
		frame_test__hdr_bytes(f, lens[i]);
		ck_assert_int_eq(mri_frame_parse_hdr(f, sizeof(f), &h, &why),
				 MR_EPROTO);
		ck_assert_ptr_nonnull(why);
	}
	frame_test__hdr_bytes(f, 8);
	ck_assert_int_eq(mri_frame_parse_hdr(f, sizeof(f), &h, &why), MR_OK);
	// A header that promises a body, with none.
	frame_test__hdr_bytes(f, 8);
	ck_assert_int_eq(mri_frame_parse_hdr(f, MRI_FRAME_HDR_LEN, &h, &why),
			 MR_EPROTO);
}
END_TEST

START_TEST(test_frame_begin_end)
{
	struct mri_wbuf      b;
	struct mri_frame_hdr h;
	const char          *why;

	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_ADMIN);
	ck_assert_uint_eq(b.len, MRI_FRAME_HDR_LEN);
	for (int i = 0; i < 1000; i++)
		mri_wbuf_u8(&b, (uint8_t)i);
	ck_assert_int_eq(mri_frame_end(&b), MR_OK);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_uint_eq(h.op, MRI_OP_ADMIN);
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_uint_eq(h.body_len, 1000);
	ck_assert_uint_eq(b.data[MRI_FRAME_HDR_LEN + 999], (uint8_t)999);

	// begin starts over in the same buffer.
	mri_frame_begin(&b, MRI_OP_STATUS);
	ck_assert_int_eq(mri_frame_end(&b), MR_OK);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_uint_eq(h.op, MRI_OP_STATUS);
	ck_assert_uint_eq(h.body_len, 0);
	mri_wbuf_fini(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_wbuf_little_endian)
{
	struct mri_wbuf      b;
	static const uint8_t want[] = {0xab, 0x34, 0x12, 0x78, 0x56, 0x34,
				       0x12, 0x08, 0x07, 0x06, 0x05, 0x04,
				       0x03, 0x02, 0x01};

	mri_wbuf_init(&b);
	mri_wbuf_u8(&b, 0xab);
	mri_wbuf_u16(&b, 0x1234);
	mri_wbuf_u32(&b, 0x12345678);
	mri_wbuf_u64(&b, 0x0102030405060708ULL);
	ck_assert_int_eq(b.err, MR_OK);
	frame_test__mem_eq(b.data, b.len, want, sizeof(want));
	ck_assert_uint_eq(mri_le16(want + 1), 0x1234);
	ck_assert_uint_eq(mri_le32(want + 3), 0x12345678);
	ck_assert(mri_le64(want + 7) == 0x0102030405060708ULL);
	// Empty puts are no-ops, even with no data pointer.
	mri_wbuf_put(&b, NULL, 0);
	ck_assert_uint_eq(b.len, sizeof(want));
	mri_wbuf_fini(&b);
}
END_TEST

static void
frame_test__set_count(uint8_t *body, uint32_t n)
{
	body[0] = (uint8_t)n;
	body[1] = (uint8_t)(n >> 8);
	body[2] = (uint8_t)(n >> 16);
	body[3] = (uint8_t)(n >> 24);
}

/* ---- PUBLISH ------------------------------------------------------------
 */

static void
frame_test__roundtrip(const struct frame_test__msg *m, size_t n)
{
	struct mri_wbuf      b;
	struct mri_frame_hdr h;
	struct mri_pub_view *v   = NULL;
	uint32_t             cnt = 0;
	const char          *why = NULL;
	int64_t              bad = 99;

	mri_wbuf_init(&b);
	frame_test__publish(&b, m, n);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_uint_eq(h.op, MRI_OP_PUBLISH);
	ck_assert_uint_eq(h.body_len, b.len - MRI_FRAME_HDR_LEN);
	ck_assert_int_eq(mri_publish_decode(b.data + MRI_FRAME_HDR_LEN,
					    h.body_len, &v, &cnt, &why, &bad),
			 MR_OK);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(cnt, n);
	ck_assert_int_eq(bad, -1);
	for (size_t i = 0; i < n; i++) {
		if (frame_test__msg_eq(&v[i], &m[i]))
			continue;
		frame_test__check_msg(&v[i], &m[i]);
		ck_abort_msg("message %zu of %zu differs", i, n);
	}
	free(v);
	mri_wbuf_fini(&b);
}

START_TEST(test_publish_roundtrip)
{
	frame_test__roundtrip(frame_test__sample, FRAME_TEST__NSAMPLE);
	for (size_t i = 0; i < FRAME_TEST__NSAMPLE; i++)
		frame_test__roundtrip(&frame_test__sample[i], 1);
}
END_TEST

START_TEST(test_publish_keys)
{
	struct frame_test__msg m[3] = {
	    {"k", 1, false, NULL, 0, "", 0, 0, NULL, "", 0},
	    {"k", 1, true, "", 0, "", 0, 0, NULL, "", 0},
	    {"k", 1, true, frame_test__binkey, sizeof(frame_test__binkey), "",
	     0, 0, NULL, "", 0},
	};
	struct mri_wbuf      b;
	struct mri_pub_view *v;
	uint32_t             n;
	const char          *why;
	int64_t              bad;

	frame_test__roundtrip(m, 3);
	// Absent and empty keys differ on the wire and after decoding.
	mri_wbuf_init(&b);
	frame_test__publish(&b, m, 3);
	ck_assert_int_eq(mri_publish_decode(b.data + MRI_FRAME_HDR_LEN,
					    b.len - MRI_FRAME_HDR_LEN, &v, &n,
					    &why, &bad),
			 MR_OK);
	ck_assert(!v[0].has_key);
	ck_assert(v[1].has_key);
	ck_assert_uint_eq(v[1].key_len, 0);
	ck_assert(v[2].has_key);
	ck_assert_uint_eq(v[2].key_len, 5);
	free(v);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_publish_ids_and_limits)
{
	char                   topic[MRI_TOPIC_MAX];
	char                   id[MRI_ID_MAX];
	char                   name[MRI_HDR_NAME_MAX];
	struct mri_hdr_view    hs[MRI_HDR_COUNT_MAX];
	struct frame_test__msg m[2];

	memset(topic, 'T', sizeof(topic));
	memset(id, 'i', sizeof(id));
	memset(name, 'n', sizeof(name));
	for (size_t i = 0; i < MRI_HDR_COUNT_MAX; i++) {
		hs[i].name      = name;
		hs[i].name_len  = (uint16_t)(1 + i % MRI_HDR_NAME_MAX);
		hs[i].value     = frame_test__binval;
		hs[i].value_len = (uint32_t)(i % sizeof(frame_test__binval));
	}
	hs[7].name_len = MRI_HDR_NAME_MAX;
	// The largest topic, id, header name and header count all decode.
	m[0] = (struct frame_test__msg){topic, sizeof(topic), true, "k", 1,
					id, sizeof(id), MRI_HDR_COUNT_MAX,
					hs, "x", 1};
	m[1] = (struct frame_test__msg){
	    "ids", 3, false, NULL, 0, "\x01\x02 binary \xff", 12, 0, NULL,
	    "", 0};
	frame_test__roundtrip(m, 2);
}
END_TEST

START_TEST(test_publish_big_payload)
{
	size_t                 n = 1u << 20;
	uint8_t               *p = malloc(n);
	struct frame_test__msg m[2];

	ck_assert_ptr_nonnull(p);
	frame_test__fill(p, n, 7);
	p[0] = p[n / 2] = p[n - 1] = 0;
	m[0] = (struct frame_test__msg){"big", 3, true, "k", 1, "id", 2, 1,
					frame_test__hdrs + 1, p, n};
	m[1] = (struct frame_test__msg){"small", 5, false, NULL, 0, "", 0,
					0, NULL, "after", 5};
	frame_test__roundtrip(m, 2);
	free(p);
}
END_TEST

START_TEST(test_publish_many)
{
	struct frame_test__msg *m = calloc(MRI_BATCH_MAX, sizeof(*m));
	char (*ids)[8]            = calloc(MRI_BATCH_MAX, sizeof(*ids));
	struct mri_wbuf         b;
	struct mri_pub_view    *v;
	uint32_t                n;
	const char             *why;
	int64_t                 bad;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(ids);
	for (size_t i = 0; i < MRI_BATCH_MAX; i++) {
		size_t l = (size_t)snprintf(ids[i], sizeof(ids[i]), "%zu", i);

		m[i] = (struct frame_test__msg){.topic       = "many",
						.topic_len   = 4,
						.has_key     = i % 2 == 0,
						.key         = ids[i],
						.key_len     = l,
						.id          = ids[i],
						.id_len      = l,
						.payload     = ids[i],
						.payload_len = l};
	}
	frame_test__roundtrip(m, MRI_BATCH_MAX);

	// One message more than a batch may hold is refused.
	mri_wbuf_init(&b);
	frame_test__publish(&b, m, MRI_BATCH_MAX);
	mri_publish_encode_msg(&b, "many", 4, NULL, 0, false, NULL, 0, 0,
			       NULL, "x", 1);
	frame_test__set_count(b.data + MRI_FRAME_HDR_LEN, MRI_BATCH_MAX + 1);
	frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
			    b.len - MRI_FRAME_HDR_LEN, MR_EPROTO, -1);
	mri_wbuf_fini(&b);

	// Minimal messages (an 11-byte encoding) fill a batch exactly.
	for (size_t i = 0; i < MRI_BATCH_MAX; i++)
		m[i] = (struct frame_test__msg){"m", 1, false, NULL, 0, "", 0,
						0, NULL, "", 0};
	mri_wbuf_init(&b);
	frame_test__publish(&b, m, MRI_BATCH_MAX);
	ck_assert_uint_eq(b.len, MRI_FRAME_HDR_LEN + 4 + 11 * MRI_BATCH_MAX);
	ck_assert_int_eq(mri_publish_decode(b.data + MRI_FRAME_HDR_LEN,
					    b.len - MRI_FRAME_HDR_LEN, &v, &n,
					    &why, &bad),
			 MR_OK);
	ck_assert_uint_eq(n, MRI_BATCH_MAX);
	frame_test__check_msg(&v[MRI_BATCH_MAX - 1], &m[0]);
	free(v);
	mri_wbuf_fini(&b);
	free(ids);
	free(m);
}
END_TEST

START_TEST(test_publish_truncated)
{
	struct mri_wbuf      b;
	struct mri_frame_hdr h;
	const uint8_t       *body;
	size_t               len;

	mri_wbuf_init(&b);
	frame_test__publish(&b, frame_test__sample, FRAME_TEST__NSAMPLE);
	body = b.data + MRI_FRAME_HDR_LEN;
	len  = b.len - MRI_FRAME_HDR_LEN;
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t             *d   = frame_test__dup(body, cut);
		struct mri_pub_view *v   = (void *)&v;
		uint32_t             n   = 7;
		const char          *why = NULL;
		int64_t              bad;

		ck_assert_msg(mri_publish_decode(d, cut, &v, &n, &why, &bad) ==
				  MR_EPROTO,
			      "body cut at %zu of %zu not refused", cut, len);
		ck_assert_ptr_null(v);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_nonnull(why);
		ck_assert(bad >= -1 && bad < (int64_t)FRAME_TEST__NSAMPLE);
		frame_test__undup(d, cut);
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

START_TEST(test_publish_trailing)
{
	struct mri_wbuf b;
	uint8_t        *d;
	size_t          len;

	mri_wbuf_init(&b);
	frame_test__publish(&b, frame_test__sample, FRAME_TEST__NSAMPLE);
	len = b.len - MRI_FRAME_HDR_LEN;
	for (size_t extra = 1; extra <= 16; extra++) {
		d = malloc(len + extra);
		ck_assert_ptr_nonnull(d);
		memcpy(d, b.data + MRI_FRAME_HDR_LEN, len);
		memset(d + len, 0, extra);
		frame_test__refused(d, len + extra, MR_EPROTO, -1);
		free(d);
	}
	// A whole extra message that the count does not announce.
	mri_publish_encode_msg(&b, "x", 1, NULL, 0, false, NULL, 0, 0, NULL,
			       "", 0);
	frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
			    b.len - MRI_FRAME_HDR_LEN, MR_EPROTO, -1);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_publish_bad_count)
{
	static const uint32_t counts[] = {0, 2, 3, 1000, MRI_BATCH_MAX,
					  MRI_BATCH_MAX + 1, 0x7fffffff,
					  0xffffffff};
	struct frame_test__msg m = {"t", 1, false, NULL, 0, "", 0, 0, NULL,
				    "0123456789a", 11};
	struct mri_wbuf        b;
	uint8_t                body[4 + 22];
	size_t                 len;
	unsigned long          before;

	// Shorter than the count itself.
	for (size_t n = 0; n < 4; n++) {
		uint8_t *d = frame_test__dup("\x01\x00\x00\x00", n);

		frame_test__refused(d, n, MR_EPROTO, -1);
		frame_test__undup(d, n);
	}
	// One 22-byte message: room for two minimal ones, not three.
	mri_wbuf_init(&b);
	frame_test__publish(&b, &m, 1);
	len = b.len - MRI_FRAME_HDR_LEN;
	ck_assert_uint_eq(len, sizeof(body));
	memcpy(body, b.data + MRI_FRAME_HDR_LEN, len);
	mri_wbuf_fini(&b);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		frame_test__set_count(body, counts[i]);
		before = frame_test__callocs;
		if (counts[i] == 2)
			// Plausible by size: decoded, then found truncated.
			frame_test__refused(body, len, MR_EPROTO, 1);
		else {
			frame_test__refused(body, len, MR_EPROTO, -1);
			// Refused from the count alone: nothing allocated.
			ck_assert_uint_eq(frame_test__callocs, before);
		}
	}
	// A big count with a four-byte body.
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		frame_test__set_count(body, counts[i]);
		before = frame_test__callocs;
		frame_test__refused(body, 4, MR_EPROTO, -1);
		ck_assert_uint_eq(frame_test__callocs, before);
	}
#if FRAME_TEST_COUNT_CALLOC
	// The counter does count the decoder's allocation.
	frame_test__set_count(body, 1);
	before = frame_test__callocs;
	{
		struct mri_pub_view *v;
		uint32_t             n;
		const char          *why;
		int64_t              bad;

		ck_assert_int_eq(
		    mri_publish_decode(body, len, &v, &n, &why, &bad), MR_OK);
		free(v);
	}
	ck_assert_uint_eq(frame_test__callocs, before + 1);
#endif
}
END_TEST

/* A PUBLISH body of \p n messages to "t": keyed ("k") when \p keyed. */
static void
frame_test__body(struct mri_wbuf *b, uint32_t n, bool keyed)
{
	mri_wbuf_init(b);
	mri_wbuf_u32(b, n);
	for (uint32_t i = 0; i < n; i++)
		mri_publish_encode_msg(b, "t", 1, "k", 1, keyed, "", 0, 0, NULL,
				       "v", 1);
}

/* mri_publish_decode_into: the caller's array is grown only when a body
 * has more messages than it holds, reused otherwise, and a reused view of
 * a keyless message has no key left from the one before. */
START_TEST(test_publish_decode_into)
{
	struct mri_wbuf      b;
	struct mri_pub_view *v   = NULL, *first;
	uint32_t             cap = 0, n = 9;
	const char          *why = NULL;
	int64_t              bad;

	frame_test__body(&b, 3, true);
	ck_assert_int_eq(mri_publish_decode_into(b.data, b.len, &v, &cap, &n,
						 &why, &bad),
			 MR_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(cap, 3);
	ck_assert(v[0].has_key && v[0].key_len == 1);
	first = v;
	mri_wbuf_fini(&b);

	frame_test__body(&b, 2, false);
	ck_assert_int_eq(mri_publish_decode_into(b.data, b.len, &v, &cap, &n,
						 &why, &bad),
			 MR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(cap, 3);
	ck_assert_ptr_eq(v, first);
	ck_assert(!v[0].has_key && v[0].key == NULL && v[0].key_len == 0);
	ck_assert(!v[1].has_key && v[1].key == NULL && v[1].key_len == 0);
	mri_wbuf_fini(&b);

	// Refused: the array stays the caller's, and the count is 0.
	frame_test__body(&b, 2, false);
	ck_assert_int_eq(mri_publish_decode_into(b.data, b.len - 1, &v, &cap,
						 &n, &why, &bad),
			 MR_EPROTO);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(cap, 3);
	mri_wbuf_fini(&b);

	frame_test__body(&b, 5, true);
	ck_assert_int_eq(mri_publish_decode_into(b.data, b.len, &v, &cap, &n,
						 &why, &bad),
			 MR_OK);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(cap, 5);
	ck_assert(v[4].has_key && memcmp(v[4].key, "k", 1) == 0);
	mri_wbuf_fini(&b);
	free(v);
}
END_TEST

START_TEST(test_publish_invalid_topic)
{
	char                   long_topic[MRI_TOPIC_MAX + 1];
	static const struct {
		const char *t;
		size_t      n;
	} bad[] = {
	    {"bad topic", 9}, {".", 1},      {"..", 2},     {"", 0},
	    {"a/b", 3},       {"\xc3\xbc", 2}, {"a\0b", 3}, {"x\n", 2},
	    {NULL, MRI_TOPIC_MAX + 1},
	};
	static const char      pad[40] = {0};
	struct frame_test__msg m[3];
	struct mri_wbuf        b;

	memset(long_topic, 'a', sizeof(long_topic));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *t = bad[i].t ? bad[i].t : long_topic;

		// Padded payloads keep the count check out of the way.
		m[0] = (struct frame_test__msg){"ok", 2, false, NULL, 0, "", 0,
						0, NULL, pad, sizeof(pad)};
		m[1] = m[0];
		m[2] = m[0];
		m[1].topic     = t;
		m[1].topic_len = bad[i].n;
		mri_wbuf_init(&b);
		frame_test__publish(&b, m, 3);
		frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
				    b.len - MRI_FRAME_HDR_LEN, MR_EINVAL, 1);
		mri_wbuf_fini(&b);
	}
}
END_TEST

START_TEST(test_publish_bad_flags)
{
	struct frame_test__msg m = {"flags", 5, false, NULL, 0, "", 0, 0,
				    NULL, "", 0};
	struct mri_wbuf        b;

	for (int bit = 1; bit < 8; bit++) {
		mri_wbuf_init(&b);
		frame_test__publish(&b, &m, 1);
		// count, topic length, topic, then the flags byte.
		b.data[MRI_FRAME_HDR_LEN + 4 + 2 + 5] = (uint8_t)(1u << bit);
		frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
				    b.len - MRI_FRAME_HDR_LEN, MR_EINVAL, 0);
		mri_wbuf_fini(&b);
	}
}
END_TEST

START_TEST(test_publish_bad_headers)
{
	struct mri_hdr_view    hs[MRI_HDR_COUNT_MAX + 1];
	char                   name[MRI_HDR_NAME_MAX + 1];
	struct frame_test__msg m[2];
	struct mri_wbuf        b;

	memset(name, 'h', sizeof(name));
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
		hs[i] = (struct mri_hdr_view){"h", 1, "v", 1};
	m[0] = (struct frame_test__msg){"ok", 2, false, NULL, 0, "", 0, 0,
					NULL, "", 0};

	// 257 headers.
	m[1] = (struct frame_test__msg){"ok", 2, false, NULL, 0, "", 0,
					MRI_HDR_COUNT_MAX + 1, hs, "", 0};
	mri_wbuf_init(&b);
	frame_test__publish(&b, m, 2);
	frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
			    b.len - MRI_FRAME_HDR_LEN, MR_EINVAL, 1);
	mri_wbuf_fini(&b);

	// An empty header name, after a good header.
	hs[1]          = (struct mri_hdr_view){"", 0, "v", 1};
	m[1].hdr_count = 2;
	mri_wbuf_init(&b);
	frame_test__publish(&b, m, 2);
	frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
			    b.len - MRI_FRAME_HDR_LEN, MR_EINVAL, 1);
	mri_wbuf_fini(&b);

	// A 256-byte name.
	hs[1] = (struct mri_hdr_view){name, sizeof(name), "", 0};
	mri_wbuf_init(&b);
	frame_test__publish(&b, m, 2);
	frame_test__refused(b.data + MRI_FRAME_HDR_LEN,
			    b.len - MRI_FRAME_HDR_LEN, MR_EINVAL, 1);
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- PUBLISH_ACK --------------------------------------------------------
 */

static void
frame_test__check_ack(const struct mri_ack_view *g,
		      const struct mri_ack_view *w)
{
	ck_assert_uint_eq(g->status, w->status);
	ck_assert_uint_eq(g->flags, w->flags);
	ck_assert_int_eq(g->partition, w->partition);
	ck_assert(g->offset == w->offset);
	frame_test__mem_eq(g->topic, g->topic_len, w->topic, w->topic_len);
	frame_test__mem_eq(g->id, g->id_len, w->id, w->id_len);
	frame_test__mem_eq(g->errmsg, g->errmsg_len, w->errmsg,
			   w->errmsg_len);
	if (w->flags & MRI_ACK_F_BACKPRESSURE) {
		ck_assert_uint_eq(g->bp_kind, w->bp_kind);
		ck_assert_uint_eq(g->held_ms, w->held_ms);
		ck_assert_uint_eq(g->retry_after_ms, w->retry_after_ms);
		ck_assert(g->bp_lag == w->bp_lag);
		ck_assert(g->bp_bound == w->bp_bound);
	} else {
		ck_assert(g->bp_kind == 0 && g->held_ms == 0 &&
			  g->retry_after_ms == 0 && g->bp_lag == 0 &&
			  g->bp_bound == 0);
	}
}

static void
frame_test__acks(struct mri_wbuf *b, const struct mri_ack_view *a, size_t n)
{
	mri_frame_begin(b, MRI_OP_PUBLISH_ACK);
	mri_wbuf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		mri_ack_encode(b, &a[i]);
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
}

static void
frame_test__ack_roundtrip(const struct mri_ack_view *a, size_t n)
{
	struct mri_wbuf      b;
	struct mri_frame_hdr h;
	struct mri_ack_view *v   = NULL;
	uint32_t             cnt = 0;
	const char          *why = NULL;

	mri_wbuf_init(&b);
	frame_test__acks(&b, a, n);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_uint_eq(h.op, MRI_OP_PUBLISH_ACK);
	ck_assert_msg(mri_ack_decode(b.data + MRI_FRAME_HDR_LEN, h.body_len,
				     &v, &cnt, &why) == MR_OK,
		      "ack decode: %s", why);
	ck_assert_uint_eq(cnt, n);
	for (size_t i = 0; i < n; i++)
		frame_test__check_ack(&v[i], &a[i]);
	free(v);
	mri_wbuf_fini(&b);
}

static char frame_test__long[MRI_ERRMSG_MAX + 1000];

static void
frame_test__sample_acks(struct mri_ack_view a[4])
{
	memset(frame_test__long, 'L', sizeof(frame_test__long));
	a[0] = (struct mri_ack_view){MR_OK,
				     MRI_ACK_F_DUPLICATE,
				     3,
				     1234567890123LL,
				     "orders",
				     6,
				     "0190f0c8-7a3e-7000-8000-000000000001",
				     36,
				     NULL,
				     0, 0, 0, 0, 0, 0};
	a[1] = (struct mri_ack_view){MR_EKAFKA, 0, -1, -1, "t", 1, "x", 1,
				     "Kafka refused the record", 24, 0, 0, 0, 0, 0};
	a[2] = (struct mri_ack_view){0xffff,
				     MRI_ACK_F_ALL,
				     INT32_MIN,
				     INT64_MIN,
				     frame_test__long,
				     MRI_TOPIC_MAX,
				     frame_test__long,
				     MRI_ID_MAX,
				     frame_test__long,
				     MRI_ERRMSG_MAX, 0, 0, 0, 0, 0};
	a[2].bp_kind        = 0xff;
	a[2].held_ms        = UINT32_MAX;
	a[2].retry_after_ms = UINT32_MAX;
	a[2].bp_lag         = INT64_MIN;
	a[2].bp_bound       = INT64_MAX;
	a[3] = (struct mri_ack_view){MR_OK, 0, INT32_MAX, INT64_MAX, "a\0b",
				     3, "\0", 1, "", 0, 0, 0, 0, 0, 0};
}

START_TEST(test_ack_roundtrip)
{
	struct mri_ack_view a[4];

	frame_test__sample_acks(a);
	frame_test__ack_roundtrip(a, 4);
	for (size_t i = 0; i < 4; i++)
		frame_test__ack_roundtrip(&a[i], 1);
}
END_TEST

START_TEST(test_ack_backpressure)
{
	// A held publish (acked) and a refused one (MR_EBUSY) carry the
	// backpressure fields; a flag this decoder does not know is refused.
	struct mri_ack_view a[2] = {
	    {MR_OK, MRI_ACK_F_BACKPRESSURE, 1, 7, "t", 1, "i", 1, NULL, 0, 0, 0, 0, 0, 0},
	    {MR_EBUSY, MRI_ACK_F_BACKPRESSURE, -1, -1, "t", 1, "j", 1,
	     "busy", 4, 0, 0, 0, 0, 0},
	};
	struct mri_wbuf      b;
	struct mri_frame_hdr h;
	struct mri_ack_view *v   = NULL;
	uint32_t             cnt = 0;
	const char          *why = NULL;

	a[0].held_ms        = 1500;
	a[1].held_ms        = 5000;
	a[1].bp_kind        = 1;
	a[1].retry_after_ms = 2000;
	a[1].bp_lag         = 1234;
	a[1].bp_bound       = 1000;
	frame_test__ack_roundtrip(a, 2);

	a[0].flags = 0x04;
	mri_wbuf_init(&b);
	frame_test__acks(&b, a, 1);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_int_eq(mri_ack_decode(b.data + MRI_FRAME_HDR_LEN,
					h.body_len, &v, &cnt, &why),
			 MR_EPROTO);
	ck_assert_ptr_null(v);
	ck_assert_str_eq(why, "PUBLISH_ACK has unknown ack flags");
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_ack_minimal)
{
	// Whatever the encoder writes, the decoder reads: the smallest
	// acks have a one-byte topic and an empty id, or nothing at all.
	struct mri_ack_view a[2] = {
	    {MR_EINVAL, 0, -1, -1, "t", 1, NULL, 0, NULL, 0, 0, 0, 0, 0, 0},
	    {MR_OK, 0, 0, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0, 0, 0},
	};

	frame_test__ack_roundtrip(&a[0], 1);
	frame_test__ack_roundtrip(&a[1], 1);
	frame_test__ack_roundtrip(a, 2);
}
END_TEST

START_TEST(test_ack_truncated)
{
	struct mri_ack_view a[4];
	struct mri_wbuf     b;
	const uint8_t      *body;
	size_t              len;

	frame_test__sample_acks(a);
	mri_wbuf_init(&b);
	frame_test__acks(&b, a, 4);
	body = b.data + MRI_FRAME_HDR_LEN;
	len  = b.len - MRI_FRAME_HDR_LEN;
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t             *d   = frame_test__dup(body, cut);
		struct mri_ack_view *v   = (void *)&v;
		uint32_t             n   = 7;
		const char          *why = NULL;

		ck_assert_msg(mri_ack_decode(d, cut, &v, &n, &why) ==
				  MR_EPROTO,
			      "ack body cut at %zu of %zu not refused", cut,
			      len);
		ck_assert_ptr_null(v);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_nonnull(why);
		frame_test__undup(d, cut);
	}
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_ack_bad_count_and_trailing)
{
	static const uint32_t counts[] = {0, 2, MRI_BATCH_MAX,
					  MRI_BATCH_MAX + 1, 0xffffffff};
	struct mri_ack_view   a[4];
	struct mri_ack_view  *v;
	struct mri_wbuf       b;
	uint8_t              *d;
	size_t                len;
	uint32_t              n;
	const char           *why;
	unsigned long         before;

	frame_test__sample_acks(a);
	mri_wbuf_init(&b);
	frame_test__acks(&b, &a[1], 1);
	len = b.len - MRI_FRAME_HDR_LEN;
	d   = malloc(len + 1);
	ck_assert_ptr_nonnull(d);
	memcpy(d, b.data + MRI_FRAME_HDR_LEN, len);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		frame_test__set_count(d, counts[i]);
		before = frame_test__callocs;
		why    = NULL;
		ck_assert_int_eq(mri_ack_decode(d, len, &v, &n, &why),
				 MR_EPROTO);
		ck_assert_ptr_null(v);
		ck_assert_ptr_nonnull(why);
		if (counts[i] != 2)
			ck_assert_uint_eq(frame_test__callocs, before);
	}
	// Trailing bytes after the last ack.
	frame_test__set_count(d, 1);
	d[len] = 0;
	ck_assert_int_eq(mri_ack_decode(d, len + 1, &v, &n, &why), MR_EPROTO);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(mri_ack_decode(d, len, &v, &n, &why), MR_OK);
	free(v);
	free(d);
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- ERROR --------------------------------------------------------------
 */

static void
frame_test__error_roundtrip(uint16_t code, const char *msg, size_t want_len)
{
	struct mri_wbuf      b;
	struct mri_frame_hdr h;
	const char          *why;
	const char          *m = NULL;
	uint16_t             c = 0, ml = 0;

	mri_wbuf_init(&b);
	mri_error_encode(&b, code, msg);
	ck_assert_int_eq(b.err, MR_OK);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_uint_eq(h.op, MRI_OP_ERROR);
	ck_assert_uint_eq(h.body_len, 4 + want_len);
	ck_assert_int_eq(mri_error_decode(b.data + MRI_FRAME_HDR_LEN,
					  h.body_len, &c, &m, &ml),
			 MR_OK);
	ck_assert_uint_eq(c, code);
	frame_test__mem_eq(m, ml, msg, want_len);
	mri_wbuf_fini(&b);
}

START_TEST(test_error_roundtrip)
{
	char big[MRI_ERRMSG_MAX * 2 + 1];

	frame_test__error_roundtrip(MR_EPROTO, "malformed frame", 15);
	frame_test__error_roundtrip(MR_ETOOBIG, "", 0);
	frame_test__error_roundtrip(0xffff, "x", 1);
	// Long messages are cut to MRI_ERRMSG_MAX bytes.
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	frame_test__error_roundtrip(MR_EINTERNAL, big, MRI_ERRMSG_MAX);
	big[MRI_ERRMSG_MAX] = '\0';
	frame_test__error_roundtrip(MR_EINTERNAL, big, MRI_ERRMSG_MAX);
}
END_TEST

START_TEST(test_error_truncated_and_trailing)
{
	struct mri_wbuf b;
	const char     *m;
	uint16_t        c, ml;
	uint8_t        *d;
	size_t          len;

	mri_wbuf_init(&b);
	// Writes a frame over anything already in the buffer.
	mri_wbuf_put(&b, "garbage", 7);
	mri_error_encode(&b, MR_EBUSY, "busy, retry later");
	len = b.len - MRI_FRAME_HDR_LEN;
	ck_assert_uint_eq(len, 4 + 17);
	for (size_t cut = 0; cut < len; cut++) {
		d = frame_test__dup(b.data + MRI_FRAME_HDR_LEN, cut);
		ck_assert_msg(mri_error_decode(d, cut, &c, &m, &ml) ==
				  MR_EPROTO,
			      "error body cut at %zu not refused", cut);
		frame_test__undup(d, cut);
	}
	d = malloc(len + 1);
	ck_assert_ptr_nonnull(d);
	memcpy(d, b.data + MRI_FRAME_HDR_LEN, len);
	d[len] = 'x';
	ck_assert_int_eq(mri_error_decode(d, len + 1, &c, &m, &ml), MR_EPROTO);
	ck_assert_int_eq(mri_error_decode(d, len, &c, &m, &ml), MR_OK);
	ck_assert_uint_eq(c, MR_EBUSY);
	free(d);
	mri_wbuf_fini(&b);
}
END_TEST

/* ---- topic names --------------------------------------------------------
 */

START_TEST(test_topic_valid)
{
	char t[MRI_TOPIC_MAX + 2];

	ck_assert(mri_topic_valid("orders", 6));
	ck_assert(mri_topic_valid("a", 1));
	ck_assert(mri_topic_valid("A.b_c-9", 7));
	ck_assert(mri_topic_valid("...", 3));
	ck_assert(mri_topic_valid(".a", 2));
	ck_assert(mri_topic_valid("_", 1));
	ck_assert(mri_topic_valid("-", 1));
	ck_assert(!mri_topic_valid(".", 1));
	ck_assert(!mri_topic_valid("..", 2));
	ck_assert(!mri_topic_valid("", 0));
	ck_assert(!mri_topic_valid("bad topic", 9));
	ck_assert(!mri_topic_valid("a/b", 3));
	ck_assert(!mri_topic_valid("a:b", 3));
	ck_assert(!mri_topic_valid("a@b", 3));
	ck_assert(!mri_topic_valid("a+b", 3));
	ck_assert(!mri_topic_valid("a\0b", 3));
	ck_assert(!mri_topic_valid("\xc3\xa9t\xc3\xa9", 6));
	ck_assert(!mri_topic_valid("tab\t", 4));
	// The length is what counts, not a NUL.
	ck_assert(mri_topic_valid("ab cd", 2));
	ck_assert(mri_topic_valid("ab..", 3));

	memset(t, 'x', sizeof(t));
	ck_assert(mri_topic_valid(t, 249));
	ck_assert(!mri_topic_valid(t, 250));
	ck_assert(!mri_topic_valid(t, 251));
	t[248] = '.';
	ck_assert(mri_topic_valid(t, 249));
	t[248] = '/';
	ck_assert(!mri_topic_valid(t, 249));

	// Every byte: exactly [a-zA-Z0-9._-] is allowed.
	for (int c = 0; c < 256; c++) {
		char s[2] = {'x', (char)c};
		bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			    c == '-';

		ck_assert_msg(mri_topic_valid(s, 2) == want, "byte 0x%02x", c);
	}
}
END_TEST

static Suite *
frame_test__suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc;

	tc = tcase_create("header");
	tcase_add_test(tc, test_hdr_ok);
	tcase_add_test(tc, test_hdr_short);
	tcase_add_test(tc, test_hdr_bad_magic);
	tcase_add_test(tc, test_hdr_version);
	tcase_add_test(tc, test_hdr_reserved);
	tcase_add_test(tc, test_hdr_body_len_mismatch);
	tcase_add_test(tc, test_frame_begin_end);
	tcase_add_test(tc, test_wbuf_little_endian);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish");
	tcase_add_test(tc, test_publish_roundtrip);
	tcase_add_test(tc, test_publish_keys);
	tcase_add_test(tc, test_publish_ids_and_limits);
	tcase_add_test(tc, test_publish_big_payload);
	tcase_add_test(tc, test_publish_many);
	tcase_add_test(tc, test_publish_truncated);
	tcase_add_test(tc, test_publish_trailing);
	tcase_add_test(tc, test_publish_bad_count);
	tcase_add_test(tc, test_publish_decode_into);
	tcase_add_test(tc, test_publish_invalid_topic);
	tcase_add_test(tc, test_publish_bad_flags);
	tcase_add_test(tc, test_publish_bad_headers);
	suite_add_tcase(s, tc);

	tc = tcase_create("ack");
	tcase_add_test(tc, test_ack_roundtrip);
	tcase_add_test(tc, test_ack_minimal);
	tcase_add_test(tc, test_ack_backpressure);
	tcase_add_test(tc, test_ack_truncated);
	tcase_add_test(tc, test_ack_bad_count_and_trailing);
	suite_add_tcase(s, tc);

	tc = tcase_create("error");
	tcase_add_test(tc, test_error_roundtrip);
	tcase_add_test(tc, test_error_truncated_and_trailing);
	suite_add_tcase(s, tc);

	tc = tcase_create("topic");
	tcase_add_test(tc, test_topic_valid);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(frame_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
