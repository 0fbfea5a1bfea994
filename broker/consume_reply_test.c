/*
 * Tests for broker/consume_reply.c: a group's batch, settle result and
 * failure written in place into an nng_msg give the bytes of proto/'s
 * wbuf encoders (what mailroomd sent before the group returned results),
 * and decode back to what the group handed out.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "broker/consume_reply.h"
#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/frame.h"

static const struct mri_group_hdr crt_hdrs[] = {
    {"ce_id", 5, "id-1", 4},
    {"bin", 3, "\0\1\2", 3},
    {"empty", 5, "", 0},
};

/* Three deliveries: keyed with headers, keyless at a second attempt, an
 * empty key and value. */
static void
crt_batch(struct mri_group_delivery d[3], struct mri_group_batch *b)
{
	memset(d, 0, 3 * sizeof(*d));
	d[0] = (struct mri_group_delivery){
	    .handle = 0x100000001ULL, .attempt = 1, .topic = "orders",
	    .topic_len = 6, .partition = 3, .offset = 42,
	    .timestamp_ms = 1700000000000LL, .has_key = true, .key = "k1",
	    .key_len = 2, .id = "id-1", .id_len = 4, .hdrs = crt_hdrs,
	    .nhdrs = 3, .value = "hello", .value_len = 5};
	d[1] = (struct mri_group_delivery){
	    .handle = 7, .attempt = 2, .topic = "t", .topic_len = 1,
	    .partition = 0, .offset = 0, .timestamp_ms = -1, .key = "",
	    .id = "t/0/0", .id_len = 5, .value = "v", .value_len = 1};
	d[2] = (struct mri_group_delivery){
	    .handle = 8, .attempt = 1, .topic = "t", .topic_len = 1,
	    .offset = 1, .has_key = true, .key = "", .id = "x", .id_len = 1,
	    .value = ""};
	b->d    = d;
	b->n    = 3;
	b->size = 0;
	for (int i = 0; i < 3; i++)
		b->size += d[i].size = mri_consume_record_size(&d[i]);
}

START_TEST(test_fetch_reply_bytes)
{
	struct mri_group_delivery d[3];
	struct mri_group_batch    b;
	struct mri_wbuf           w;
	struct mri_msg_view      *v;
	uint32_t                  n;
	const char               *why;
	nng_msg                  *m;

	crt_batch(d, &b);
	// What mailroomd built before: views encoded into a wbuf.
	mri_wbuf_init(&w);
	mri_frame_begin(&w, MRI_OP_FETCH_REPLY);
	mri_wbuf_u32(&w, 3);
	for (int i = 0; i < 3; i++) {
		struct mri_hdr_view hv[3];
		struct mri_msg_view mv = {
		    .handle = d[i].handle, .topic = d[i].topic,
		    .topic_len = (uint16_t)d[i].topic_len,
		    .partition = d[i].partition, .offset = d[i].offset,
		    .timestamp_ms = d[i].timestamp_ms, .attempt = d[i].attempt,
		    .flags = (uint8_t)((d[i].has_key ? MRI_MSG_F_KEY : 0) |
				       (d[i].attempt > 1 ? MRI_MSG_F_REDELIVERY
							 : 0)),
		    .id = d[i].id, .id_len = (uint8_t)d[i].id_len,
		    .key = d[i].key, .key_len = (uint32_t)d[i].key_len,
		    .hdr_count = (uint16_t)d[i].nhdrs, .payload = d[i].value,
		    .payload_len = (uint32_t)d[i].value_len};

		for (size_t k = 0; k < d[i].nhdrs; k++)
			hv[k] = (struct mri_hdr_view){
			    d[i].hdrs[k].name, (uint16_t)d[i].hdrs[k].name_len,
			    d[i].hdrs[k].value,
			    (uint32_t)d[i].hdrs[k].value_len};
		ck_assert_uint_eq(d[i].size, mri_msg_size(&mv, hv));
		mri_msg_encode(&w, &mv, hv);
	}
	ck_assert_int_eq(mri_frame_end(&w), MR_OK);

	ck_assert_ptr_nonnull(m = mri_consume_fetch_reply(&b));
	ck_assert_uint_eq(nng_msg_len(m), w.len);
	ck_assert_mem_eq(nng_msg_body(m), w.data, w.len);
	ck_assert_int_eq(mri_fetch_reply_decode(
			     (uint8_t *)nng_msg_body(m) + MRI_FRAME_HDR_LEN,
			     nng_msg_len(m) - MRI_FRAME_HDR_LEN, &v, &n, &why),
			 MR_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(v[0].handle, d[0].handle);
	ck_assert_uint_eq(v[1].flags, MRI_MSG_F_REDELIVERY);
	ck_assert_uint_eq(v[2].flags, MRI_MSG_F_KEY);
	ck_assert_uint_eq(v[0].hdr_count, 3);
	free(v);
	nng_msg_free(m);

	// An empty batch: a reply of no messages.
	b.n    = 0;
	b.size = 0;
	ck_assert_ptr_nonnull(m = mri_consume_fetch_reply(&b));
	mri_frame_begin(&w, MRI_OP_FETCH_REPLY);
	mri_wbuf_u32(&w, 0);
	mri_frame_end(&w);
	ck_assert_uint_eq(nng_msg_len(m), w.len);
	ck_assert_mem_eq(nng_msg_body(m), w.data, w.len);
	nng_msg_free(m);
	mri_wbuf_fini(&w);
}
END_TEST

START_TEST(test_settle_and_error_bytes)
{
	struct mri_group_settle_fail   gf[2] = {{5, MR_ENOENT}, {9, MR_ENOENT}};
	struct mri_settle_fail         pf[2] = {{5, MR_ENOENT}, {9, MR_ENOENT}};
	struct mri_group_settle_result r     = {12, 2, gf};
	struct mri_wbuf                w;
	nng_msg                       *m;
	char                           msg[128];

	mri_wbuf_init(&w);
	mri_settle_reply_encode(&w, 12, pf, 2);
	ck_assert_ptr_nonnull(m = mri_consume_settle_reply(&r));
	ck_assert_uint_eq(nng_msg_len(m), w.len);
	ck_assert_mem_eq(nng_msg_body(m), w.data, w.len);
	nng_msg_free(m);

	r.nfailed = 0;
	mri_settle_reply_encode(&w, 12, NULL, 0);
	ck_assert_ptr_nonnull(m = mri_consume_settle_reply(&r));
	ck_assert_uint_eq(nng_msg_len(m), w.len);
	ck_assert_mem_eq(nng_msg_body(m), w.data, w.len);
	nng_msg_free(m);

	snprintf(msg, sizeof(msg), "MR_EUNAVAIL: not recorded");
	mri_error_encode(&w, MR_EUNAVAIL, msg);
	ck_assert_ptr_nonnull(
	    m = mri_consume_error_reply(MR_EUNAVAIL, "not recorded"));
	ck_assert_uint_eq(nng_msg_len(m), w.len);
	ck_assert_mem_eq(nng_msg_body(m), w.data, w.len);
	nng_msg_free(m);
	mri_wbuf_fini(&w);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("consume_reply");
	TCase   *tc = tcase_create("bytes");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_fetch_reply_bytes);
	tcase_add_test(tc, test_settle_and_error_bytes);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
