/*
 * core/base64.c: RFC 4648's test vectors both ways, every length and byte
 * value round trip, and what decoding refuses.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

START_TEST(test_vectors)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob",
					    "fooba", "foobar"};
	static const char *const enc[]   = {"",         "Zg==",     "Zm8=",
					    "Zm9v",     "Zm9vYg==", "Zm9vYmE=",
					    "Zm9vYmFy"};

	for (size_t i = 0; i < 7; i++) {
		char          *e = mri_base64_encode(plain[i], strlen(plain[i]));
		size_t         n = 99;
		unsigned char *d = mri_base64_decode(enc[i], &n);

		ck_assert_str_eq(e, enc[i]);
		ck_assert_ptr_nonnull(d);
		ck_assert_uint_eq(n, strlen(plain[i]));
		ck_assert(memcmp(d, plain[i], n) == 0);
		free(e);
		free(d);
	}
}
END_TEST

START_TEST(test_round_trip)
{
	unsigned char b[300];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(b); len++) {
		char          *e = mri_base64_encode(b, len);
		size_t         n;
		unsigned char *d = mri_base64_decode(e, &n);

		ck_assert_uint_eq(strlen(e), (len + 2) / 3 * 4);
		ck_assert_ptr_nonnull(d);
		ck_assert_uint_eq(n, len);
		ck_assert(len == 0 || memcmp(d, b, len) == 0);
		free(e);
		free(d);
	}
}
END_TEST

START_TEST(test_refused)
{
	static const char *const bad[] = {"Zg=",  "Zg", "Z===", "Zm9v!A==",
					  "Zg==Zg==", "Z=g=", "Zm 9",
					  "Zm9v\n"};
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mri_base64_decode(bad[i], &n) == NULL, "%s",
			      bad[i]);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("base64");
	TCase   *tc = tcase_create("base64");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_vectors);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
