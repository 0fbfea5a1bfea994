/*
 * core/log.c's JSON lines (log.format=json): a logfmt line becomes one
 * JSON object whose members are its keys, a quoted value unescaped, a bare
 * integer a number, a word without '=' a "text" member; whatever a line
 * holds (quotes, backslashes, control characters, bytes that are not
 * UTF-8, a cut mid-character), the output is valid JSON, checked with
 * jansson (which takes UTF-8 only).
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static json_t *
json_of(const char *line, size_t size)
{
	char         out[8192];
	json_error_t e;
	json_t      *o;

	ck_assert_uint_le(size, sizeof(out));
	mri_logfmt_json(line, out, size);
	o = json_loads(out, 0, &e);
	ck_assert_msg(o != NULL, "not JSON (%s): %s", e.text, out);
	ck_assert(json_is_object(o));
	return o;
}

START_TEST(test_fields)
{
	json_t *o = json_of("ts=2026-12-05T11:00:00.000Z level=notice "
			    "component=dlq group=billing topic=orders "
			    "partition=3 offset=12 id=\"007\" code=007 "
			    "neg=-4 msg=\"quarantined \\\"x\\\" a\\\\b\"",
			    8192);

	ck_assert_str_eq(json_string_value(json_object_get(o, "level")),
			 "notice");
	ck_assert_str_eq(json_string_value(json_object_get(o, "group")),
			 "billing");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "partition")),
			 3);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "offset")), 12);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "neg")), -4);
	ck_assert_str_eq(json_string_value(json_object_get(o, "id")), "007");
	ck_assert_str_eq(json_string_value(json_object_get(o, "code")), "007");
	ck_assert_str_eq(json_string_value(json_object_get(o, "msg")),
			 "quarantined \"x\" a\\b");
	json_decref(o);
}
END_TEST

START_TEST(test_odd_lines)
{
	json_t *o = json_of("level=info stray words ok=1", 8192);

	ck_assert_str_eq(json_string_value(json_object_get(o, "text")),
			 "words");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ok")), 1);
	json_decref(o);
	o = json_of("msg=\"tab\there\nnewline\" =x", 8192);
	ck_assert_str_eq(json_string_value(json_object_get(o, "msg")),
			 "tab\there\nnewline");
	json_decref(o);
	o = json_of("msg=\"unterminated", 8192);
	ck_assert_str_eq(json_string_value(json_object_get(o, "msg")),
			 "unterminated");
	json_decref(o);
	json_decref(json_of("", 8192));
}
END_TEST

/* Random lines of the characters that matter, into buffers of any size
 * from 16 up: always one valid JSON object. */
START_TEST(test_always_json)
{
	static const char alphabet[] = "ab=\" \\\t\n01-x"
				       "\xc3\xa9\xe2\x82\xac\xff";
	char              line[300];

	srandom(42);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)random() % (sizeof(line) - 1);

		for (size_t k = 0; k < n; k++)
			line[k] = alphabet[random() % (sizeof(alphabet) - 1)];
		line[n] = '\0';
		json_decref(json_of(line, 16 + (size_t)random() % 600));
	}
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("log");
	TCase   *tc = tcase_create("json");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_odd_lines);
	tcase_add_test(tc, test_always_json);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
