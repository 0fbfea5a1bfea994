/*
 * Tests for broker/http_parse.h: the loopback names (what mailroomd takes
 * for loopback when it has no token: the listen address, a request's
 * Host, and what a name made to look like one must not pass for), an
 * admin route's typed query parameters and path fields, a raw publish's
 * header names, and a fetch's or a settle's members.
 */
#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http_parse.h"
#include "mailroom/envelope.h"
#include "mailroom/error.h"

START_TEST(test_loopback_names)
{
	static const char *yes[] = {
	    "127.0.0.1", "127.1.2.3", "127.255.255.255", "localhost",
	    "LocalHost", "::1",	      "[::1]",		 "0:0:0:0:0:0:0:1",
	    "::ffff:127.0.0.1",
	};
	static const char *no[] = {
	    "127.0.0.1.example.com",
	    "127.evil.com",
	    "127.",
	    "127",
	    "127.1",
	    "128.0.0.1",
	    "10.0.0.1",
	    "0.0.0.0",
	    "::",
	    "::2",
	    "::ffff:10.0.0.1",
	    "[::1",
	    "::1]",
	    "[[::1]]",
	    "localhost.example.com",
	    "localhost.",
	    "example.com",
	    "",
	    " 127.0.0.1",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(mri_http_loopback(yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!mri_http_loopback(no[i]), "%s", no[i]);
}
END_TEST

START_TEST(test_host_header)
{
	static const char *yes[] = {
	    "127.0.0.1", "127.0.0.1:7480", "localhost:80", "[::1]",
	    "[::1]:7480",
	};
	static const char *no[] = {
	    "127.0.0.1.example.com:7480",
	    "127.0.0.1:7480@example.com",
	    "127.0.0.1 :7480",
	    "[::1]x",
	    "[::1",
	    "::1",	 // a bare IPv6 address is not a Host's form
	    "example.com:7480",
	    "",
	    "[0000:0000:0000:0000:0000:0000:0000:0000:0001:0001:0001]:1",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(mri_http_host_loopback(yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!mri_http_host_loopback(no[i]), "%s", no[i]);
}
END_TEST

static const char *const params[] = {"offset:i", "refresh:b", "group:s",
				     "key_b64:s", NULL};

START_TEST(test_params_good)
{
	json_t *req = json_pack("{s:s}", "keep", "x");
	char    why[256];

	ck_assert_int_eq(mri_http_params("offset=-12&refresh=true&group=g%C3%A9"
					 "+1&key_b64",
					 params, req, why, sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(json_integer_value(json_object_get(req, "offset")),
			 -12);
	ck_assert(json_is_true(json_object_get(req, "refresh")));
	ck_assert_str_eq(json_string_value(json_object_get(req, "group")),
			 "g\xc3\xa9 1");
	ck_assert_str_eq(json_string_value(json_object_get(req, "key_b64")),
			 "");
	ck_assert_str_eq(json_string_value(json_object_get(req, "keep")), "x");
	ck_assert_int_eq(json_object_size(req), 5);
	ck_assert_int_eq(mri_http_params("refresh=false", params, req, why,
					 sizeof(why)),
			 MR_OK);
	ck_assert(json_is_false(json_object_get(req, "refresh")));
	json_decref(req);

	// No query, or an empty one, sets nothing.
	req = json_object();
	ck_assert_int_eq(mri_http_params(NULL, params, req, why, sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(mri_http_params("", params, req, why, sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(json_object_size(req), 0);
	json_decref(req);
}
END_TEST

START_TEST(test_params_bad)
{
	static const struct {
		const char *query, *why;
	} bad[] = {
	    {"nope=1", "unknown query parameter \"nope\""},
	    {"offse=1", "unknown query parameter \"offse\""},
	    {"offset:i=1", "unknown query parameter \"offset:i\""},
	    {"group=g&&offset=1", "unknown query parameter \"\""},
	    {"Offset=1", "unknown query parameter \"Offset\""},
	    {"off%73et=1", "unknown query parameter \"off%73et\""},
	    {"offset=1&group=a&offset=1", "offset is given twice"},
	    {"offset=1&offset=x", "offset is given twice"},
	    {"group=%zz", "group is malformed"},
	    {"group=a%00b", "group is malformed"},
	    {"offset=12x", "offset=12x: an integer is wanted"},
	    {"offset=", "offset=: an integer is wanted"},
	    {"offset", "offset=: an integer is wanted"},
	    {"offset=99999999999999999999", "an integer is wanted"},
	    {"offset=1.5", "an integer is wanted"},
	    {"refresh=1", "refresh=1: true or false is wanted"},
	    {"refresh=TRUE", "true or false is wanted"},
	    {"refresh", "true or false is wanted"},
	    {"group=%FF", "group is not UTF-8 text"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *req = json_pack("{s:i}", "offset", 7);
		char    why[256] = "";

		ck_assert_msg(mri_http_params(bad[i].query, params, req, why,
					      sizeof(why)) == MR_EINVAL,
			      "%s", bad[i].query);
		ck_assert_msg(strstr(why, bad[i].why) != NULL, "%s: %s",
			      bad[i].query, why);
		// Nothing of a refused query is set.
		ck_assert_int_eq(json_object_size(req), 1);
		ck_assert_int_eq(json_integer_value(json_object_get(req,
								    "offset")),
				 7);
		json_decref(req);
	}
}
END_TEST

/* dlq.show's fields: /v1/dlq/{topic}/records/{p}/{offset}. */
static const char *const fields[] = {NULL, NULL,	"topic",
				     NULL, "partition", "offset"};

START_TEST(test_path_fields_good)
{
	char   *seg[] = {"v1", "dlq", "orders.dlq", "records", "3",
			 "9223372036854775807"};
	json_t *req   = json_pack("{s:i}", "timeout_ms", 5);
	char    why[256];

	ck_assert_int_eq(mri_http_path_fields(req, fields, seg, 6, why,
					      sizeof(why)),
			 MR_OK);
	ck_assert_str_eq(json_string_value(json_object_get(req, "topic")),
			 "orders.dlq");
	ck_assert_int_eq(json_integer_value(json_object_get(req, "partition")),
			 3);
	ck_assert(json_integer_value(json_object_get(req, "offset")) ==
		  INT64_MAX);
	ck_assert_int_eq(json_object_size(req), 4);
	json_decref(req);

	// Fewer segments than fields: only theirs.
	req = json_object();
	ck_assert_int_eq(mri_http_path_fields(req, fields, seg, 3, why,
					      sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(json_object_size(req), 1);
	// And a second time, the topic is there already.
	ck_assert_int_eq(mri_http_path_fields(req, fields + 2, seg + 2, 3,
					      why, sizeof(why)),
			 MR_EINVAL);
	json_decref(req);
}
END_TEST

START_TEST(test_path_fields_bad)
{
	static const struct {
		const char *topic, *partition, *offset, *body, *why;
	} bad[] = {
	    {"t", "-1", "0", NULL, "the partition in the path, \"-1\", is "
				    "not a number from 0"},
	    {"t", "1", "x", NULL, "the offset in the path, \"x\""},
	    {"t", "1x", "0", NULL, "not a number from 0"},
	    {"t", "", "0", NULL, "not a number from 0"},
	    {"t", "1", "99999999999999999999", NULL, "not a number from 0"},
	    {"t", "0x10", "0", NULL, "not a number from 0"},
	    {"t", "1.0", "0", NULL, "not a number from 0"},
	    {"\xff", "1", "0", NULL, "the topic in the path is not UTF-8"},
	    {"t", "1", "0", "topic", "topic comes from the path"},
	    {"t", "-1", "0", "topic", "topic comes from the path"},
	    {"t", "1", "0", "offset", "offset comes from the path"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char   *seg[] = {"v1",
				 "dlq",
				 (char *)bad[i].topic,
				 "records",
				 (char *)bad[i].partition,
				 (char *)bad[i].offset};
		json_t *req   = json_object();
		char    why[256] = "";

		if (bad[i].body != NULL)
			json_object_set_new(req, bad[i].body, json_null());
		ck_assert_int_eq(mri_http_path_fields(req, fields, seg, 6, why,
						      sizeof(why)),
				 MR_EINVAL);
		ck_assert_msg(strstr(why, bad[i].why) != NULL, "%zu: %s", i,
			      why);
		// The request is as it was.
		ck_assert_int_eq(json_object_size(req),
				 bad[i].body != NULL ? 1 : 0);
		json_decref(req);
	}
}
END_TEST

START_TEST(test_raw_name)
{
	static const struct {
		const char *http, *record;
	} map[] = {
	    {"ce-type", "ce_type"},
	    {"CE-Source", "ce_source"},
	    {"ce-my-ext", "ce_my_ext"},
	    {"Mr-Trace-Id", "mr_trace_id"},
	    {"mr-x", "mr_x"},
	    {"Content-Type", MR_HEADER_CONTENT_TYPE},
	    {"content-type", MR_HEADER_CONTENT_TYPE},
	    {"ce-id", NULL},
	    {"CE-ID", NULL},
	    {"ce-specversion", NULL},
	    {"Ce-SpecVersion", NULL},
	    {"ce-", NULL},
	    {"mr-", NULL},
	    {"ce", NULL},
	    {"ce_type", NULL},
	    {"x-ce-type", NULL},
	    {"Host", NULL},
	    {"Content-Length", NULL},
	    {"Authorization", NULL},
	    {"", NULL},
	};
	char buf[16], small[5];

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *r = mri_http_raw_name(map[i].http, buf,
						  sizeof(buf));

		if (map[i].record == NULL)
			ck_assert_msg(r == NULL, "%s: %s", map[i].http, r);
		else
			ck_assert_msg(r != NULL &&
					  strcmp(r, map[i].record) == 0,
				      "%s: %s", map[i].http, r);
	}
	// A name that does not fit the buffer is not carried.
	ck_assert_ptr_null(mri_http_raw_name("ce-abcdefghijklm", buf,
					     sizeof(buf)));
	ck_assert_str_eq(mri_http_raw_name("ce-abcdefghijkl", buf,
					   sizeof(buf)),
			 "ce_abcdefghijkl");
	ck_assert_ptr_null(mri_http_raw_name("mr-ab", small, sizeof(small)));
	ck_assert_str_eq(mri_http_raw_name("Content-Type", small,
					   sizeof(small)),
			 MR_HEADER_CONTENT_TYPE);
}
END_TEST

START_TEST(test_int_member)
{
	json_t   *b = json_pack("{s:i, s:i, s:s, s:f, s:n, s:b, s:I}", "lo", 1,
				"hi", 100000, "text", "5", "real", 5.0, "null",
				"yes", 1, "big", (json_int_t)LLONG_MIN);
	long long out;
	char      why[256];

	out = -1;
	ck_assert_int_eq(mri_http_int_member(b, "lo", 1, 100000, &out, why,
					     sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(out, 1);
	ck_assert_int_eq(mri_http_int_member(b, "hi", 1, 100000, &out, why,
					     sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(out, 100000);
	ck_assert_int_eq(mri_http_int_member(b, "big", LLONG_MIN, 0, &out,
					     why, sizeof(why)),
			 MR_OK);
	ck_assert(out == LLONG_MIN);
	// Absent: *out is left alone.
	out = 42;
	ck_assert_int_eq(mri_http_int_member(b, "none", 1, 2, &out, why,
					     sizeof(why)),
			 MR_OK);
	ck_assert_int_eq(out, 42);

	static const struct {
		const char *name;
		long long   lo, hi;
	} bad[] = {
	    {"lo", 2, 10},   {"hi", 1, 99999}, {"text", 0, 10},
	    {"real", 0, 10}, {"null", 0, 10},  {"yes", 0, 10},
	    {"big", 0, 10},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		why[0] = '\0';
		ck_assert_int_eq(mri_http_int_member(b, bad[i].name, bad[i].lo,
						     bad[i].hi, &out, why,
						     sizeof(why)),
				 MR_EINVAL);
		snprintf(want, sizeof(want),
			 "%s must be an integer from %lld to %lld",
			 bad[i].name, bad[i].lo, bad[i].hi);
		ck_assert_str_eq(why, want);
		ck_assert_int_eq(out, 42);
	}
	json_decref(b);
}
END_TEST

START_TEST(test_only)
{
	static const char *const known[] = {"max_messages", "max_bytes",
					    "wait_ms", NULL};
	json_t *b = json_pack("{s:i, s:i}", "max_messages", 1, "wait_ms", 0);
	char    why[256] = "";

	ck_assert_int_eq(mri_http_only(b, known, why, sizeof(why)), MR_OK);
	json_object_clear(b);
	ck_assert_int_eq(mri_http_only(b, known, why, sizeof(why)), MR_OK);
	json_object_set_new(b, "Max_messages", json_integer(1));
	ck_assert_int_eq(mri_http_only(b, known, why, sizeof(why)), MR_EINVAL);
	ck_assert_str_eq(why, "unknown member \"Max_messages\"");
	json_object_clear(b);
	json_object_set_new(b, "wait_ms", json_integer(1));
	json_object_set_new(b, "", json_integer(1));
	ck_assert_int_eq(mri_http_only(b, known, why, sizeof(why)), MR_EINVAL);
	ck_assert_str_eq(why, "unknown member \"\"");
	json_decref(b);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("http_parse");
	TCase   *tc = tcase_create("loopback");
	TCase   *ta = tcase_create("admin");
	TCase   *tm = tcase_create("members");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_loopback_names);
	tcase_add_test(tc, test_host_header);
	suite_add_tcase(s, tc);
	tcase_add_test(ta, test_params_good);
	tcase_add_test(ta, test_params_bad);
	tcase_add_test(ta, test_path_fields_good);
	tcase_add_test(ta, test_path_fields_bad);
	suite_add_tcase(s, ta);
	tcase_add_test(tm, test_raw_name);
	tcase_add_test(tm, test_int_member);
	tcase_add_test(tm, test_only);
	suite_add_tcase(s, tm);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
