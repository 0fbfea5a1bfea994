/*
 * The publish path end to end, with frames sent raw over nng beside the C
 * client: mailroomd as a child process, records read back from Kafka by an
 * independent librdkafka consumer.
 *
 * Built twice: publish_frames_embedded runs on mailroomd's embedded
 * cluster; publish_frames_kafka (MR_KAFKA=1) on the real broker of the
 * CTest fixture, whose bootstrap is in $MR_KAFKA_DIR/bootstrap (skip, 77,
 * when the fixture wrote $MR_KAFKA_DIR/unavailable).
 *
 * Cases (this file): malformed frames sent raw over nng, and the order of
 * a stream (PUBLISH's sequence numbers) with the status counters.
 * publish_api_test.c has the envelope, batches, dedupe and faults;
 * publish_common.c the helpers both use.
 */
#define _GNU_SOURCE /* memmem */

#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "bridge/address.h"
#include "integration/checked.h"
#include "integration/harness.h"
#include "integration/publish_common.h"
#include "mailroom/mailroom.h"
#include "proto/frame.h"

/* ---- raw frames ------------------------------------------------------- */

/* The client connected all along still publishes. */
static void
good_publish(mr_client *good, const char *topic, const char *after)
{
	mr_ack     a;
	mr_message m = {.topic       = topic,
			.key         = "good",
			.key_len     = 4,
			.payload     = after,
			.payload_len = strlen(after)};
	int        rc = mr_publish(good, &m, &a);

	ck_assert_msg(rc == MR_OK,
		      "after '%s', a good client cannot publish: %s: %s",
		      after, mr_err_name(rc), a.error);
}

static void
hdr12(uint8_t *p, uint8_t version, uint8_t op, uint32_t body_len)
{
	p[0] = 'M';
	p[1] = 'R';
	p[2] = version;
	p[3] = op;
	p[4] = p[5] = p[6] = p[7] = 0;
	p[8]  = (uint8_t)body_len;
	p[9]  = (uint8_t)(body_len >> 8);
	p[10] = (uint8_t)(body_len >> 16);
	p[11] = (uint8_t)(body_len >> 24);
}

/* A PUBLISH frame of \p n messages, each the given topic; the body can be
 * damaged afterwards. */
static void
pub_frame(struct mri_wbuf *b, uint32_t count, int n, const char *const *topics,
	  const char *id, uint16_t hdr_count, const struct mri_hdr_view *hdrs)
{
	mri_wbuf_init(b);
	mri_frame_begin(b, MRI_OP_PUBLISH);
	mri_wbuf_u32(b, count);
	for (int i = 0; i < n; i++)
		mri_publish_encode_msg(b, topics[i], strlen(topics[i]), "k", 1,
				       true, id, strlen(id), hdr_count, hdrs,
				       "payload", 7);
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
}

START_TEST(test_raw_frames)
{
	const char *const  sets[] = {"max_frame_bytes=65536", NULL};
	struct mrt_daemon  d;
	struct mrt_records rs;
	struct mrt_raw         raw, raw2;
	struct mri_wbuf    b;
	mr_client         *good;
	uint8_t            f[64], *big;
	char               topic[128], ghost[160];
	const char        *tt[2];
	int                rv, step = 0;
	char               what[64];

	mrt_ck_daemon_start(&d, sets);
	good = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "raw");
	snprintf(ghost, sizeof(ghost), "%s-must-not-exist", topic);
	mrt_ck_topic_create(good, topic, PARTITIONS);
	mrt_raw_open(&raw, d.url);
	good_publish(good, topic, "start");
#define STEP(s) (snprintf(what, sizeof(what), "%s", s), step++)

	STEP("truncated header");
	memcpy(f, "MR\x01", 3);
	mrt_raw_expect_error(&raw, what, f, 3, MR_EPROTO, "header");
	good_publish(good, topic, what);

	STEP("bad magic");
	hdr12(f, 1, MRI_OP_STATUS, 0);
	f[0] = 'X';
	mrt_raw_expect_error(&raw, what, f, 12, MR_EPROTO, "magic");
	good_publish(good, topic, what);

	STEP("version 2");
	hdr12(f, 2, MRI_OP_STATUS, 0);
	mrt_raw_expect_error(&raw, what, f, 12, MR_EVERSION, "version");
	good_publish(good, topic, what);

	STEP("unknown op");
	hdr12(f, 1, 0x42, 0);
	mrt_raw_expect_error(&raw, what, f, 12, MR_EUNKNOWNOP, NULL);
	good_publish(good, topic, what);

	STEP("a reply op sent as a request");
	hdr12(f, 1, MRI_OP_STATUS_REPLY, 0);
	mrt_raw_expect_error(&raw, what, f, 12, MR_EUNKNOWNOP, NULL);
	good_publish(good, topic, what);

	STEP("reserved bytes set");
	hdr12(f, 1, MRI_OP_STATUS, 0);
	f[6] = 1;
	mrt_raw_expect_error(&raw, what, f, 12, MR_EPROTO, "reserved");
	good_publish(good, topic, what);

	STEP("body shorter than its length");
	hdr12(f, 1, MRI_OP_PUBLISH, 10);
	memset(f + 12, 0, 5);
	mrt_raw_expect_error(&raw, what, f, 17, MR_EPROTO, "length");
	good_publish(good, topic, what);

	STEP("body longer than its length");
	hdr12(f, 1, MRI_OP_PUBLISH, 5);
	memset(f + 12, 0, 10);
	mrt_raw_expect_error(&raw, what, f, 22, MR_EPROTO, "length");
	good_publish(good, topic, what);

	STEP("PUBLISH without a count");
	hdr12(f, 1, MRI_OP_PUBLISH, 2);
	f[12] = f[13] = 1;
	mrt_raw_expect_error(&raw, what, f, 14, MR_EPROTO, NULL);
	good_publish(good, topic, what);

	STEP("PUBLISH with count 0");
	hdr12(f, 1, MRI_OP_PUBLISH, 4);
	memset(f + 12, 0, 4);
	mrt_raw_expect_error(&raw, what, f, 16, MR_EPROTO, "1 to 100000");
	good_publish(good, topic, what);

	tt[0] = topic;
	tt[1] = topic;
	STEP("PUBLISH with count 100001");
	pub_frame(&b, 100001, 1, tt, ghost, 0, NULL);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EPROTO, NULL);
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("PUBLISH counting more messages than it holds");
	pub_frame(&b, 5, 1, tt, ghost, 0, NULL);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EPROTO, NULL);
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("truncated message");
	pub_frame(&b, 2, 2, tt, ghost, 0, NULL);
	b.len -= 3;
	mrt_frame_fix_len(&b);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EPROTO, "truncated");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("trailing bytes");
	pub_frame(&b, 1, 1, tt, ghost, 0, NULL);
	mri_wbuf_put(&b, "xyz", 3);
	mrt_frame_fix_len(&b);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EPROTO, "trailing");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("invalid topic in message 0");
	tt[0] = "bad topic";
	pub_frame(&b, 1, 1, tt, ghost, 0, NULL);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EINVAL, "message 0");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("invalid topic in message 1");
	tt[0] = topic; // a valid first message: refused with the frame
	tt[1] = "bad/topic";
	pub_frame(&b, 2, 2, tt, ghost, 0, NULL);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EINVAL, "message 1");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);
	tt[1] = topic;

	STEP("unknown message flags");
	pub_frame(&b, 1, 1, tt, ghost, 0, NULL);
	// count(4) topic_len(2) topic: then the flags byte.
	b.data[MRI_FRAME_HDR_LEN + 4 + 2 + strlen(topic)] |= 0x80;
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EINVAL, "flags");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("empty header name");
	{
		struct mri_hdr_view h = {"", 0, "v", 1};
		pub_frame(&b, 1, 1, tt, ghost, 1, &h);
	}
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EINVAL, "header");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("257 headers");
	{
		static struct mri_hdr_view hs[257];
		for (int i = 0; i < 257; i++)
			hs[i] = (struct mri_hdr_view){"h", 1, "v", 1};
		pub_frame(&b, 1, 1, tt, ghost, 257, hs);
	}
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EINVAL, "256");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("ADMIN that is not JSON");
	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_ADMIN);
	mri_wbuf_put(&b, "{not json", 9);
	mri_frame_end(&b);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EPROTO, "JSON");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("ADMIN that is a JSON array");
	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_ADMIN);
	mri_wbuf_put(&b, "[1,2]", 5);
	mri_frame_end(&b);
	mrt_raw_expect_error(&raw, what, b.data, b.len, MR_EPROTO, "object");
	mri_wbuf_fini(&b);
	good_publish(good, topic, what);

	STEP("ADMIN with an empty body");
	hdr12(f, 1, MRI_OP_ADMIN, 0);
	mrt_raw_expect_error(&raw, what, f, 12, MR_EPROTO, NULL);
	good_publish(good, topic, what);

	STEP("a 100 KB frame over max_frame_bytes=65536");
	big = calloc(1, 100 * 1024);
	ck_assert_ptr_nonnull(big);
	hdr12(big, 1, MRI_OP_PUBLISH, 100 * 1024 - MRI_FRAME_HDR_LEN);
	mrt_raw_expect_error(&raw, what, big, 100 * 1024, MR_ETOOBIG, NULL);
	free(big);
	good_publish(good, topic, what);

	// A frame beyond twice the limit is not read at all: the connection
	// is dropped, and nothing else is affected.
	STEP("a 300 KB frame");
	mrt_raw_open(&raw2, d.url);
	nng_socket_set_ms(raw2.sock, NNG_OPT_RECVTIMEO, 3000);
	big = calloc(1, 300 * 1024);
	ck_assert_ptr_nonnull(big);
	hdr12(big, 1, MRI_OP_PUBLISH, 300 * 1024 - MRI_FRAME_HDR_LEN);
	{
		size_t   rlen;
		uint8_t *rep = mrt_raw_call(&raw2, big, 300 * 1024, &rlen, &rv);
		struct mri_frame_hdr h;
		const char          *why;

		// Either no reply, or an ERROR; never a success.
		if (rep != NULL) {
			ck_assert_int_eq(mri_frame_parse_hdr(rep, rlen, &h,
							     &why),
					 MR_OK);
			ck_assert_int_eq(h.op, MRI_OP_ERROR);
			nng_free(rep, rlen);
		}
	}
	free(big);
	nng_close(raw2.sock);
	good_publish(good, topic, what);

	// The raw connection that sent every bad frame still works.
	{
		struct mri_frame_hdr h;
		const char          *why;
		size_t               rlen;
		uint8_t             *rep;

		hdr12(f, 1, MRI_OP_STATUS, 0);
		rep = mrt_raw_call(&raw, f, 12, &rlen, &rv);
		ck_assert_msg(rep != NULL, "status after bad frames: %s",
			      nng_strerror(rv));
		ck_assert_int_eq(mri_frame_parse_hdr(rep, rlen, &h, &why),
				 MR_OK);
		ck_assert_int_eq(h.op, MRI_OP_STATUS_REPLY);
		nng_free(rep, rlen);
	}
	nng_close(raw.sock);
#undef STEP

	// Refused frames wrote nothing: the topic holds the good publishes.
	read_topic(&d, topic, (size_t)step + 1, &rs);
	ck_assert_uint_eq(rs.n, (size_t)step + 1);
	ck_assert_uint_eq(mrt_records_count_id(&rs, ghost), 0);
	mrt_records_free(&rs);
	{
		json_t *st = status_json(good);
		ck_assert_int_ge(json_path_int(st, "publish",
					       "refused_requests"),
				 step - 1);
		json_decref(st);
	}
	mr_client_free(good);
	mrt_ck_daemon_finish(&d);
}
END_TEST

/* ---- the order of a stream, and the status counters --------------------- */

/* A sequenced PUBLISH of one message with id \p id, key "k", to \p topic. */
static void
seq_frame(struct mri_wbuf *b, const char *topic, const char *id,
	  uint64_t stream, uint32_t seq, uint32_t base)
{
	struct mri_pub_seq sq = {stream, seq, base};

	mri_wbuf_init(b);
	mri_frame_begin(b, MRI_OP_PUBLISH);
	mri_publish_seq_reserve(b);
	mri_wbuf_u32(b, 1);
	mri_publish_encode_msg(b, topic, strlen(topic), "k", 1, true, id,
			       strlen(id), 0, NULL, id, strlen(id));
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
	mri_publish_seq_put(b->data, &sq);
}

/* Send \p b raw and expect one ack: @returns its status and duplicate flag. */
static int
seq_call(struct mrt_raw *raw, struct mri_wbuf *b, bool *dup)
{
	struct mri_frame_hdr h;
	struct mri_ack_view *a;
	const char          *why;
	uint16_t             code, mlen;
	const char          *msg;
	uint32_t             n;
	size_t               rlen;
	uint8_t             *rep;
	int                  rv, rc;

	rep = mrt_raw_call(raw, b->data, b->len, &rlen, &rv);
	ck_assert_msg(rep != NULL, "no reply: %s", nng_strerror(rv));
	ck_assert_int_eq(mri_frame_parse_hdr(rep, rlen, &h, &why), MR_OK);
	if (h.op == MRI_OP_ERROR) {
		ck_assert_int_eq(mri_error_decode(rep + MRI_FRAME_HDR_LEN,
						  h.body_len, &code, &msg,
						  &mlen),
				 MR_OK);
		printf("seq: refused %s: %.*s\n", mr_err_name(code), (int)mlen,
		       msg);
		nng_free(rep, rlen);
		return code;
	}
	ck_assert_int_eq(h.op, MRI_OP_PUBLISH_ACK);
	ck_assert_int_eq(mri_ack_decode(rep + MRI_FRAME_HDR_LEN, h.body_len, &a,
					&n, &why),
			 MR_OK);
	ck_assert_uint_eq(n, 1);
	rc   = a[0].status;
	*dup = (a[0].flags & MRI_ACK_F_DUPLICATE) != 0;
	free(a);
	nng_free(rep, rlen);
	return rc;
}

/* What the front door does with sequenced requests, one at a time: a
 * request whose turn does not come is refused MR_EORDER and writes
 * nothing; the stream starts at the first request's base; a resend of what
 * was handed off goes at once (a duplicate); bad sequences are refused. */
START_TEST(test_seq_frames)
{
	const char *const  sets[] = {"publish.order_wait_ms=300", NULL};
	struct mrt_daemon  d;
	struct mrt_records rs;
	struct mrt_raw     raw;
	struct mri_wbuf    b;
	mr_client         *c;
	char               topic[128], id[3][160];
	bool               dup = false;
	json_t            *st;
	uint8_t            f[12];

	mrt_ck_daemon_start(&d, sets);
	c = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), "seq");
	mrt_ck_topic_create(c, topic, 1);
	mrt_raw_open(&raw, d.url);
	for (int i = 0; i < 3; i++)
		snprintf(id[i], sizeof(id[i]), "%s-%d", topic, i);

	// Seq 8 of a stream that starts at base 7: 7 never comes.
	seq_frame(&b, topic, id[1], 42, 8, 7);
	ck_assert_int_eq(seq_call(&raw, &b, &dup), MR_EORDER);
	mri_wbuf_fini(&b);
	// 7 comes, then 8 again: both written, 7 first.
	seq_frame(&b, topic, id[0], 42, 7, 7);
	ck_assert_int_eq(seq_call(&raw, &b, &dup), MR_OK);
	ck_assert(!dup);
	mri_wbuf_fini(&b);
	seq_frame(&b, topic, id[1], 42, 8, 7);
	ck_assert_int_eq(seq_call(&raw, &b, &dup), MR_OK);
	ck_assert(!dup);
	// 8 again (a resend whose reply was lost): at once, a duplicate.
	ck_assert_int_eq(seq_call(&raw, &b, &dup), MR_OK);
	ck_assert(dup);
	mri_wbuf_fini(&b);
	// A base beyond what is due moves the stream on: 20 goes at once.
	seq_frame(&b, topic, id[2], 42, 20, 20);
	ck_assert_int_eq(seq_call(&raw, &b, &dup), MR_OK);
	mri_wbuf_fini(&b);

	seq_frame(&b, topic, "x", 0, 1, 1);
	mrt_raw_expect_error(&raw, "stream 0", b.data, b.len, MR_EPROTO,
			     "stream 0");
	mri_wbuf_fini(&b);
	seq_frame(&b, topic, "x", 42, 1, 2);
	mrt_raw_expect_error(&raw, "base after seq", b.data, b.len, MR_EPROTO,
			     "base after its seq");
	b.data[4] |= 0x02;
	mrt_raw_expect_error(&raw, "unknown flag", b.data, b.len, MR_EPROTO,
			     "flags");
	mri_wbuf_fini(&b);
	hdr12(f, 1, MRI_OP_STATUS, 0);
	f[4] = MRI_FRAME_F_SEQ;
	mrt_raw_expect_error(&raw, "SEQ on STATUS", f, sizeof(f), MR_EPROTO,
			     "flags");

	read_topic(&d, topic, 3, &rs);
	ck_assert_uint_eq(rs.n, 3);
	for (size_t i = 0; i < rs.n; i++) {
		const struct mrt_record *r = &rs.v[i];

		ck_assert_msg(r->payload_len == strlen(id[r->offset]) &&
				  memcmp(r->payload, id[r->offset],
					 r->payload_len) == 0,
			      "offset %lld holds %.*s, not %s",
			      (long long)r->offset, (int)r->payload_len,
			      (char *)r->payload, id[r->offset]);
	}
	mrt_records_free(&rs);

	// The counters: PUBLISH requests only; every ERROR reply is refused.
	st = status_json(c);
	ck_assert_int_eq(json_path_int(st, "order", "refused"), 1);
	ck_assert_int_eq(json_path_int(st, "order", "waiting"), 0);
	ck_assert_int_eq(json_path_int(st, "publish", "refused_requests"), 5);
	// Eight PUBLISH frames; ADMIN and STATUS are not publishes.
	ck_assert_int_eq(json_path_int(st, "publish", "requests"), 8);
	json_decref(st);
	nng_close(raw.sock);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}
END_TEST

static Suite *
publish_frames_suite(void)
{
	Suite *s = suite_create(mrt_real ? "publish_frames_kafka"
				       : "publish_frames_embedded");
	TCase *tc;

	// Set here, not from CK_DEFAULT_TIMEOUT: each case is bounded on its
	// own, well under the CTest timeout of the whole binary.
	tc = tcase_create("protocol");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_raw_frames);
	tcase_add_test(tc, test_seq_frames);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("publish_frames_test", publish_frames_suite);
}
