/*
 * Tests for broker/http_parse.h's loopback names: what mailroomd takes for
 * loopback when it has no token (the listen address, a request's Host),
 * and what a name made to look like one must not pass for.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

#include "broker/http_parse.h"

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

int
main(void)
{
	Suite   *s  = suite_create("http_parse");
	TCase   *tc = tcase_create("loopback");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_loopback_names);
	tcase_add_test(tc, test_host_header);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
