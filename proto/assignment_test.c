/* ASSIGNMENT's codec: round trips, and every malformed reply refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/assignment.h"

/* The body of a whole frame built in \p b. */
static const uint8_t *
body_of(const struct mri_wbuf *b, size_t *len)
{
	*len = b->len - MRI_FRAME_HDR_LEN;
	return b->data + MRI_FRAME_HDR_LEN;
}

START_TEST(test_request_round_trip)
{
	struct mri_wbuf b;
	const uint8_t  *body;
	size_t          len;
	uint64_t        s;
	const char     *why = NULL;

	mri_wbuf_init(&b);
	mri_assignment_encode(&b, 0x0102030405060708ull);
	ck_assert_int_eq(b.err, MR_OK);
	body = body_of(&b, &len);
	ck_assert_int_eq(mri_assignment_decode(body, len, &s, &why), MR_OK);
	ck_assert(s == 0x0102030405060708ull);
	ck_assert_int_eq(mri_assignment_decode(body, len - 1, &s, &why),
			 MR_EPROTO);
	ck_assert_ptr_nonnull(why);
	mri_wbuf_fini(&b);
}
END_TEST

START_TEST(test_reply_round_trip)
{
	struct mri_assigned  in[3] = {{"orders", 0}, {"orders", 3},
				      {"a.b-c_d", 2147483647}};
	struct mri_assigned *out;
	struct mri_wbuf      b;
	const uint8_t       *body;
	size_t               len, n;
	const char          *why = NULL;

	mri_wbuf_init(&b);
	mri_assignment_reply_encode(&b, in, 3);
	ck_assert_int_eq(b.err, MR_OK);
	body = body_of(&b, &len);
	ck_assert_int_eq(mri_assignment_reply_decode(body, len, &out, &n, &why),
			 MR_OK);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(out[i].topic, in[i].topic);
		ck_assert_int_eq(out[i].partition, in[i].partition);
	}
	free(out);
	// None at all.
	mri_wbuf_fini(&b);
	mri_wbuf_init(&b);
	mri_assignment_reply_encode(&b, in, 0);
	body = body_of(&b, &len);
	ck_assert_int_eq(mri_assignment_reply_decode(body, len, &out, &n, &why),
			 MR_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(out);
	mri_wbuf_fini(&b);
}
END_TEST

/* A reply body from raw bytes. */
static int
decode_raw(const uint8_t *p, size_t len)
{
	struct mri_assigned *out = NULL;
	size_t               n;
	const char          *why = NULL;
	int                  rc  = mri_assignment_reply_decode(p, len, &out,
							       &n, &why);

	if (rc != MR_OK)
		ck_assert_ptr_nonnull(why);
	free(out);
	return rc;
}

START_TEST(test_reply_refused)
{
	// count 1, topic "t", partition 0: valid; then each defect.
	const uint8_t ok[]        = {1, 0, 0, 0, 1, 0, 't', 0, 0, 0, 0};
	const uint8_t trailing[]  = {1, 0, 0, 0, 1, 0, 't', 0, 0, 0, 0, 9};
	const uint8_t negative[]  = {1, 0, 0, 0, 1, 0, 't', 0, 0, 0, 0x80};
	const uint8_t bad_name[]  = {1, 0, 0, 0, 1, 0, '/', 0, 0, 0, 0};
	const uint8_t empty[]     = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	const uint8_t big_count[] = {0xff, 0xff, 0xff, 0x7f, 1, 0, 't',
				     0,    0,    0,    0};
	const uint8_t short_len[] = {1, 0, 0, 0, 9, 0, 't', 0, 0, 0, 0};

	ck_assert_int_eq(decode_raw(ok, sizeof(ok)), MR_OK);
	ck_assert_int_eq(decode_raw(ok, 3), MR_EPROTO);
	ck_assert_int_eq(decode_raw(ok, sizeof(ok) - 1), MR_EPROTO);
	ck_assert_int_eq(decode_raw(trailing, sizeof(trailing)), MR_EPROTO);
	ck_assert_int_eq(decode_raw(negative, sizeof(negative)), MR_EPROTO);
	ck_assert_int_eq(decode_raw(bad_name, sizeof(bad_name)), MR_EPROTO);
	ck_assert_int_eq(decode_raw(empty, sizeof(empty)), MR_EPROTO);
	ck_assert_int_eq(decode_raw(big_count, sizeof(big_count)), MR_EPROTO);
	ck_assert_int_eq(decode_raw(short_len, sizeof(short_len)), MR_EPROTO);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("assignment");
	TCase   *tc = tcase_create("codec");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_request_round_trip);
	tcase_add_test(tc, test_reply_round_trip);
	tcase_add_test(tc, test_reply_refused);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
