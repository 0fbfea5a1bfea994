/*
 * Tests for proto/address.c: `topic/key` parsing and its refusals.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/address.h"

static void
address_test__parse(const char *addr, const char *topic, const char *key)
{
	struct mri_address a;

	ck_assert_msg(mri_address_parse(addr, &a) == MR_OK, "'%s' refused",
		      addr);
	ck_assert_ptr_eq(a.topic, addr);
	ck_assert_uint_eq(a.topic_len, strlen(topic));
	ck_assert(memcmp(a.topic, topic, a.topic_len) == 0);
	if (key == NULL) {
		ck_assert_ptr_null(a.key);
		ck_assert_uint_eq(a.key_len, 0);
	} else {
		ck_assert_ptr_nonnull(a.key);
		ck_assert_uint_eq(a.key_len, strlen(key));
		ck_assert(memcmp(a.key, key, a.key_len) == 0);
	}
}

START_TEST(test_address_parse)
{
	address_test__parse("orders/42", "orders", "42");
	address_test__parse("orders", "orders", NULL);
	address_test__parse("orders/", "orders", "");
	address_test__parse("orders/a/b", "orders", "a/b");
	address_test__parse("orders//", "orders", "/");
	address_test__parse("a.b_c-D9/key with spaces", "a.b_c-D9",
			    "key with spaces");
	address_test__parse("t/\xc3\xa9", "t", "\xc3\xa9");
}
END_TEST

START_TEST(test_address_invalid)
{
	static const char *bad[] = {
	    "bad topic/x", "", "/x", "/", ".", "./k", "../k", "..",
	    "a b", "t\xc3\xa9/k", "a:b/c", "a@b", "tab\t/k",
	};
	char               topic[251];
	char               addr[260];
	struct mri_address a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mri_address_parse(bad[i], &a) == MR_EINVAL,
			      "'%s' accepted", bad[i]);

	// A topic of 249 characters is fine, 250 are not.
	memset(topic, 'x', 249);
	topic[249] = '\0';
	snprintf(addr, sizeof(addr), "%s/key", topic);
	address_test__parse(addr, topic, "key");
	address_test__parse(topic, topic, NULL);
	strcat(topic, "x");
	snprintf(addr, sizeof(addr), "%s/key", topic);
	ck_assert_int_eq(mri_address_parse(addr, &a), MR_EINVAL);
	ck_assert_int_eq(mri_address_parse(topic, &a), MR_EINVAL);

	// A refused address is still split, so that its topic can be named.
	ck_assert_int_eq(mri_address_parse("bad topic/x/y", &a), MR_EINVAL);
	ck_assert_uint_eq(a.topic_len, 9);
	ck_assert(memcmp(a.topic, "bad topic", 9) == 0);
	ck_assert_str_eq(a.key, "x/y");
}
END_TEST

static Suite *
address_test__suite(void)
{
	Suite *s  = suite_create("address");
	TCase *tc = tcase_create("address");

	tcase_add_test(tc, test_address_parse);
	tcase_add_test(tc, test_address_invalid);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(address_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
