/*
 * Tests for the sequence of a PUBLISH frame (proto/frame.c): the SEQ flag,
 * the 16 bytes before the message count, their checks, and serial
 * arithmetic on seq numbers.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/frame.h"

/* A sequenced PUBLISH of one message, as the client builds it. */
static void
seq_test__frame(struct mri_wbuf *b, const struct mri_pub_seq *sq)
{
	mri_wbuf_init(b);
	mri_frame_begin(b, MRI_OP_PUBLISH);
	mri_publish_seq_reserve(b);
	mri_wbuf_u32(b, 1);
	mri_publish_encode_msg(b, "orders", 6, "k1", 2, true, "id-1", 4, 0,
			       NULL, "hello", 5);
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
	mri_publish_seq_put(b->data, sq);
}

START_TEST(test_seq_round_trip)
{
	struct mri_pub_seq   in = {0x0123456789abcdefULL, 0xfffffff0u,
				   0xffffffe0u};
	struct mri_pub_seq   out;
	struct mri_frame_hdr h;
	struct mri_wbuf      b;
	struct mri_pub_view *v;
	const uint8_t       *msgs;
	const char          *why = NULL;
	uint32_t             n;
	int64_t              bad;
	size_t               len;

	seq_test__frame(&b, &in);
	ck_assert_int_eq(mri_frame_parse_hdr(b.data, b.len, &h, &why), MR_OK);
	ck_assert_uint_eq(h.flags, MRI_FRAME_F_SEQ);
	ck_assert_int_eq(mri_publish_seq_decode(b.data + MRI_FRAME_HDR_LEN,
						h.body_len, &out, &why),
			 MR_OK);
	ck_assert_uint_eq(out.stream, in.stream);
	ck_assert_uint_eq(out.seq, in.seq);
	ck_assert_uint_eq(out.base, in.base);
	len  = h.body_len;
	msgs = mri_publish_messages(b.data + MRI_FRAME_HDR_LEN, &len, h.flags);
	ck_assert_ptr_eq(msgs, b.data + MRI_FRAME_HDR_LEN + MRI_PUB_SEQ_LEN);
	ck_assert_uint_eq(len, h.body_len - MRI_PUB_SEQ_LEN);
	ck_assert_int_eq(mri_publish_decode(msgs, len, &v, &n, &why, &bad),
			 MR_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(memcmp(v[0].payload, "hello", 5), 0);
	free(v);

	// A resend updates base in place; seq and the messages stay.
	in.base = in.seq;
	mri_publish_seq_put(b.data, &in);
	ck_assert_int_eq(mri_publish_seq_decode(b.data + MRI_FRAME_HDR_LEN,
						h.body_len, &out, &why),
			 MR_OK);
	ck_assert_uint_eq(out.base, in.seq);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_seq_refused)
{
	struct mri_pub_seq   sq = {7, 10, 4}, out;
	struct mri_wbuf      b;
	const char          *why;
	const uint8_t       *body;
	size_t               len;

	seq_test__frame(&b, &sq);
	body = b.data + MRI_FRAME_HDR_LEN;
	for (size_t cut = 0; cut < MRI_PUB_SEQ_LEN; cut++) {
		why = NULL;
		ck_assert_int_eq(mri_publish_seq_decode(body, cut, &out, &why),
				 MR_EPROTO);
		ck_assert_ptr_nonnull(why);
		len = cut;
		ck_assert_ptr_null(
		    mri_publish_messages(body, &len, MRI_FRAME_F_SEQ));
	}
	// Without the flag the body is all messages.
	len = 3;
	ck_assert_ptr_eq(mri_publish_messages(body, &len, 0), body);
	ck_assert_uint_eq(len, 3);

	sq.stream = 0;
	mri_publish_seq_put(b.data, &sq);
	ck_assert_int_eq(mri_publish_seq_decode(body, MRI_PUB_SEQ_LEN, &out,
						&why),
			 MR_EPROTO);
	ck_assert_str_eq(why, "PUBLISH sequence has stream 0");

	sq = (struct mri_pub_seq){7, 10, 11};
	mri_publish_seq_put(b.data, &sq);
	ck_assert_int_eq(mri_publish_seq_decode(body, MRI_PUB_SEQ_LEN, &out,
						&why),
			 MR_EPROTO);
	ck_assert_str_eq(why, "PUBLISH sequence has a base after its seq");

	// Across the wrap a base of 0xfffffff0 is before a seq of 5.
	sq = (struct mri_pub_seq){7, 5, 0xfffffff0u};
	mri_publish_seq_put(b.data, &sq);
	ck_assert_int_eq(mri_publish_seq_decode(body, MRI_PUB_SEQ_LEN, &out,
						&why),
			 MR_OK);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_seq_before)
{
	ck_assert(mri_seq_before(1, 2));
	ck_assert(!mri_seq_before(2, 1));
	ck_assert(!mri_seq_before(5, 5));
	ck_assert(mri_seq_before(0xffffffffu, 0));
	ck_assert(mri_seq_before(0xfffffff0u, 3));
	ck_assert(!mri_seq_before(3, 0xfffffff0u));
}
END_TEST

int
main(void)
{
	Suite   *s = suite_create("seq");
	TCase   *tc = tcase_create("seq");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_seq_round_trip);
	tcase_add_test(tc, test_seq_refused);
	tcase_add_test(tc, test_seq_before);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
