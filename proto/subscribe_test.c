/*
 * Tests for proto/subscribe.c and proto/subscribe_json.c: SUBSCRIBE's JSON
 * as the client writes it (byte for byte), as mailroomd reads and refuses
 * it, and the reply's session and credit as the client reads them.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/subscribe.h"

/* Encode \p s; the text, NUL-terminated, in \p out. */
static void
subscribe_test__encode(const struct mri_subscribe *s, char *out, size_t cap)
{
	struct mri_wbuf b;

	mri_wbuf_init(&b);
	mri_subscribe_encode(&b, s);
	ck_assert_int_eq(b.err, MR_OK);
	ck_assert_uint_lt(b.len, cap);
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	mri_wbuf_fini(&b);
}

START_TEST(test_encode_bytes)
{
	const char          *two[] = {"orders", "a.b_c-9"};
	const char          *one[] = {"t"};
	struct mri_subscribe s     = {"g1", two, 2, MRI_SUBSCRIBE_PARTITION,
				      5000, 8};
	char                 text[512];

	subscribe_test__encode(&s, text, sizeof(text));
	ck_assert_str_eq(text, "{\"group\":\"g1\",\"topics\":[\"orders\","
			       "\"a.b_c-9\"],\"mode\":\"partition\","
			       "\"ack_deadline_ms\":5000,\"credit\":8}");

	// Defaults are left out; the mode is always there.
	s = (struct mri_subscribe){"g", one, 1, MRI_SUBSCRIBE_KEY, 0, 0};
	subscribe_test__encode(&s, text, sizeof(text));
	ck_assert_str_eq(text, "{\"group\":\"g\",\"topics\":[\"t\"],"
			       "\"mode\":\"key\"}");
	s.mode   = MRI_SUBSCRIBE_UNORDERED;
	s.credit = 100000;
	subscribe_test__encode(&s, text, sizeof(text));
	ck_assert_str_eq(text, "{\"group\":\"g\",\"topics\":[\"t\"],"
			       "\"mode\":\"unordered\",\"credit\":100000}");

	// Quotes, backslashes and control characters are escaped; the rest,
	// UTF-8 included, is written as it is.
	s = (struct mri_subscribe){"a\"b\\c\n\x01\x1f\xc3\xa9", one, 1,
				   MRI_SUBSCRIBE_KEY, 0, 0};
	subscribe_test__encode(&s, text, sizeof(text));
	ck_assert_str_eq(text, "{\"group\":\"a\\\"b\\\\c\\u000a\\u0001"
			       "\\u001f\xc3\xa9\",\"topics\":[\"t\"],"
			       "\"mode\":\"key\"}");
}
END_TEST

START_TEST(test_round_trip)
{
	const char          *in[] = {"zeta", "alpha", "mid"};
	const char          *topics[MRI_SUBSCRIBE_TOPICS_MAX];
	struct mri_subscribe s = {"group \"x\"\t", in, 3,
				  MRI_SUBSCRIBE_UNORDERED, 86400000, 1};
	struct mri_subscribe got;
	struct mri_wbuf      b;
	json_t              *root = NULL;
	char                 why[256] = "";
	const char          *plain = "{\"group\":\"g\",\"topics\":[\"t\"]}";

	mri_wbuf_init(&b);
	mri_subscribe_encode(&b, &s);
	ck_assert_int_eq(mri_subscribe_parse(b.data, b.len, &root, &got,
					     topics, why, sizeof(why)),
			 MR_OK);
	ck_assert_str_eq(got.group, s.group);
	ck_assert_uint_eq(got.ntopics, 3);
	ck_assert_ptr_eq(got.topics, topics);
	ck_assert_str_eq(got.topics[0], "alpha"); // sorted
	ck_assert_str_eq(got.topics[1], "mid");
	ck_assert_str_eq(got.topics[2], "zeta");
	ck_assert_int_eq(got.mode, MRI_SUBSCRIBE_UNORDERED);
	ck_assert_uint_eq(got.ack_deadline_ms, 86400000);
	ck_assert_uint_eq(got.credit, 1);
	json_decref(root);
	mri_wbuf_fini(&b);

	// Left out: key mode, and 0 for mailroomd's defaults.
	root = NULL;
	ck_assert_int_eq(mri_subscribe_parse(plain, strlen(plain), &root, &got,
					     topics, why, sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(got.mode, MRI_SUBSCRIBE_KEY);
	ck_assert_uint_eq(got.ack_deadline_ms, 0);
	ck_assert_uint_eq(got.credit, 0);
	json_decref(root);
}
END_TEST

/* \p body must be refused with exactly \p want. */
static void
subscribe_test__refused(const char *body, const char *want)
{
	const char          *topics[MRI_SUBSCRIBE_TOPICS_MAX];
	struct mri_subscribe got;
	json_t              *root = NULL;
	char                 why[512] = "";

	ck_assert_msg(mri_subscribe_parse(body, strlen(body), &root, &got,
					  topics, why, sizeof(why)) ==
			  MR_EINVAL,
		      "accepted: %s", body);
	ck_assert_msg(strcmp(why, want) == 0, "%s: '%s', expected '%s'", body,
		      why, want);
	json_decref(root);
}

START_TEST(test_refusals)
{
	static const char group[] =
	    "SUBSCRIBE needs \"group\", a string of 1 to 249 bytes";
	static const char topics[] =
	    "SUBSCRIBE needs \"topics\", an array of 1 to 100 topic names";
	static const char mode[] = "\"mode\" is key, partition or unordered";
	static const char deadline[] =
	    "\"ack_deadline_ms\" is an integer from 100 to 86400000";
	static const char credit[] = "\"credit\" is an integer from 1 to 100000";
	char              big[1200];
	char              g250[300];
	size_t            n;

	subscribe_test__refused("{", "SUBSCRIBE is not JSON: string or '}' "
				     "expected near end of file (line 1, "
				     "column 1)");
	subscribe_test__refused("{\"group\":\"g\",\"group\":\"h\","
				"\"topics\":[\"t\"]}",
				"SUBSCRIBE is not JSON: duplicate object key "
				"near '\"group\"' (line 1, column 20)");
	subscribe_test__refused("[]", group);
	subscribe_test__refused("{\"topics\":[\"t\"]}", group);
	subscribe_test__refused("{\"group\":\"\",\"topics\":[\"t\"]}", group);
	subscribe_test__refused("{\"group\":7,\"topics\":[\"t\"]}", group);
	// jansson refuses a NUL inside a string before it is looked at.
	subscribe_test__refused("{\"group\":\"a\\u0000b\",\"topics\":[\"t\"]}",
				"SUBSCRIBE is not JSON: \\u0000 is not "
				"allowed without JSON_ALLOW_NUL near "
				"'\"a\\u0000b\"' (line 1, column 19)");
	memset(g250, 'g', 250);
	g250[250] = '\0';
	snprintf(big, sizeof(big), "{\"group\":\"%s\",\"topics\":[\"t\"]}",
		 g250);
	subscribe_test__refused(big, group);
	subscribe_test__refused("{\"group\":\"g\"}", topics);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[]}", topics);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":\"t\"}", topics);
	n = (size_t)snprintf(big, sizeof(big), "{\"group\":\"g\",\"topics\":[");
	for (int i = 0; i < 101; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"t%d\"",
				      i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}");
	subscribe_test__refused(big, topics);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"ok\",\"b d\"]}",
				"topics[1] is not a valid topic name");
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"ok\",3]}",
				"topics[1] is not a valid topic name");
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"b\",\"a\","
				"\"b\"]}",
				"topic b is listed twice");
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"mode\":\"fifo\"}",
				mode);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"mode\":1}",
				mode);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"mode\":null}",
				mode);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"ack_deadline_ms\":99}",
				deadline);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"ack_deadline_ms\":86400001}",
				deadline);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"ack_deadline_ms\":1000.0}",
				deadline);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"credit\":0}",
				credit);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"credit\":100001}",
				credit);
	subscribe_test__refused("{\"group\":\"g\",\"topics\":[\"t\"],"
				"\"credit\":\"5\"}",
				credit);
}
END_TEST

/* Parse \p json as a reply. @returns the status; *session and *credit as
 * the parser left them (credit starts at -1). */
static int
subscribe_test__reply(const char *json, uint64_t *session, int *credit)
{
	*session = 0;
	*credit  = -1;
	return mri_subscribe_reply_parse(json, strlen(json), session, credit);
}

START_TEST(test_reply)
{
	uint64_t session;
	int      credit;

	// What mailroomd sends: the subscription, then the session.
	ck_assert_int_eq(
	    subscribe_test__reply("{\"group\":\"g\",\"topics\":[\"a\",\"b\"],"
				  "\"mode\":\"key\",\"ack_deadline_ms\":30000,"
				  "\"credit\":64,\"session\":17}",
				  &session, &credit),
	    MR_OK);
	ck_assert_uint_eq(session, 17);
	ck_assert_int_eq(credit, 64);

	// Spaces, nested values, strings with escapes and brackets skipped.
	ck_assert_int_eq(
	    subscribe_test__reply(" { \"x\" : {\"y\":[1,{\"z\":\"]}\\\"\"}]} ,"
				  "\"s\\\"\":true, \"session\" : 18446744073709551615 "
				  "} ",
				  &session, &credit),
	    MR_OK);
	ck_assert_uint_eq(session, UINT64_MAX);
	ck_assert_int_eq(credit, -1);

	// A credit out of 1 to MRI_FETCH_MAX_MSGS, or not a number, is not
	// taken; a larger session saturates.
	ck_assert_int_eq(subscribe_test__reply("{\"session\":99999999999999999"
					       "999999,\"credit\":0}",
					       &session, &credit),
			 MR_OK);
	ck_assert_uint_eq(session, UINT64_MAX);
	ck_assert_int_eq(credit, -1);
	ck_assert_int_eq(subscribe_test__reply("{\"session\":1,\"credit\":"
					       "100001}",
					       &session, &credit),
			 MR_OK);
	ck_assert_int_eq(credit, -1);
	ck_assert_int_eq(subscribe_test__reply("{\"session\":1,\"credit\":"
					       "-5}",
					       &session, &credit),
			 MR_OK);
	ck_assert_int_eq(credit, -1);
	ck_assert_int_eq(subscribe_test__reply("{\"session\":1,\"credit\":"
					       "100000}",
					       &session, &credit),
			 MR_OK);
	ck_assert_int_eq(credit, MRI_FETCH_MAX_MSGS);

	// Refused: no session, a session that is not digits, not an object,
	// cut short.
	static const char *bad[] = {
	    "",
	    "{}",
	    "{\"credit\":5}",
	    "[\"session\",1]",
	    "{\"session\":-1}",
	    "{\"session\":\"1\"}",
	    "{\"session\":1.5}",
	    "{\"session\":1e3}",
	    "{\"session\":}",
	    "{\"session\":1",
	    "{\"session\" 1}",
	    "{\"session\":1 \"x\":2}",
	    "{\"x\":[1,2}",
	    "{\"x\":\"abc}",
	    "{session:1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(subscribe_test__reply(bad[i], &session,
						    &credit) == MR_EPROTO,
			      "accepted: %s", bad[i]);

	// The length bounds the text, not a NUL.
	ck_assert_int_eq(mri_subscribe_reply_parse("{\"session\":12}xyz", 14,
						   &session, &credit),
			 MR_OK);
	ck_assert_uint_eq(session, 12);
	ck_assert_int_eq(mri_subscribe_reply_parse("{\"session\":12}", 13,
						   &session, &credit),
			 MR_EPROTO);
}
END_TEST

static Suite *
subscribe_test__suite(void)
{
	Suite *s  = suite_create("subscribe");
	TCase *tc = tcase_create("subscribe");

	tcase_add_test(tc, test_encode_bytes);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_reply);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(subscribe_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
