/*
 * Tests for bridge/envelope.c (record headers, message ids, times) and
 * core/uuid7.c (the ids mailroomd assigns).
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bridge/envelope.h"
#include "core/uuid7.h"
#include "mailroom/error.h"
#include "proto/frame.h"

#define ENVELOPE_TEST__NIDS 100000

/* One header the record must carry, in order. */
struct envelope_test__hdr {
	const char *name;
	const void *value;
	size_t      len;
};

static const struct mri_envelope_defaults envelope_test__defaults = {
    "mailroomd", "mailroom.message", "application/json",
    "2025-11-25T17:30:54.123Z", false};

/* The same defaults, lean: none of them may be written. */
static const struct mri_envelope_defaults envelope_test__lean = {
    "mailroomd", "mailroom.message", "application/json",
    "2025-11-25T17:30:54.123Z", true};

static const uint8_t envelope_test__bin[] = {0x00, 'a', 0x00, 0xff, 0x00};

#define ENVELOPE_TEST__ID "0190f0c8-7a3e-7000-8000-000000000001"

/*
 * A message view as mailroomd gets it: encoded into a PUBLISH body, then
 * decoded. The view borrows \p b, which the caller finalises.
 */
static struct mri_pub_view *
envelope_test__view(struct mri_wbuf *b, const struct mri_hdr_view *hs,
		    uint16_t n)
{
	struct mri_pub_view *v;
	uint32_t             count;
	const char          *why = NULL;
	int64_t              bad;

	mri_wbuf_init(b);
	mri_wbuf_u32(b, 1);
	mri_publish_encode_msg(b, "orders", 6, "42", 2, true, "", 0, n, hs,
			       "{}", 2);
	ck_assert_msg(mri_publish_decode(b->data, b->len, &v, &count, &why,
					 &bad) == MR_OK,
		      "decode: %s", why);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(v->hdr_count, n);
	return v;
}

/* mri_envelope_make with the headers of a decoded PUBLISH message \p m, as
 * mailroomd's front door gives them. */
static int
envelope_test__headers(const struct mri_pub_view *m, const char *id,
		       size_t id_len, const struct mri_envelope_defaults *d,
		       rd_kafka_headers_t **out, const char **why)
{
	struct mri_hdr_view hs[MRI_HDR_COUNT_MAX];
	const uint8_t      *pos = m->hdrs;

	for (uint16_t i = 0; i < m->hdr_count; i++)
		mri_pub_next_hdr(&pos, &hs[i]);
	return mri_envelope_make(hs, m->hdr_count, id, id_len, d, out, why);
}

/* Build the headers and check them against \p want, in order. */
static void
envelope_test__expect(const struct mri_hdr_view *hs, uint16_t n,
		      const char *id, size_t id_len,
		      const struct mri_envelope_defaults *d,
		      const struct envelope_test__hdr *want, size_t nwant)
{
	struct mri_wbuf      b;
	struct mri_pub_view *v   = envelope_test__view(&b, hs, n);
	rd_kafka_headers_t  *out = NULL;
	const char          *why = NULL;

	ck_assert_msg(envelope_test__headers(v, id, id_len, d, &out, &why) ==
			  MR_OK,
		      "refused: %s", why ? why : "(no reason)");
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(rd_kafka_header_cnt(out), nwant);
	for (size_t i = 0; i < nwant; i++) {
		const char *name;
		const void *val;
		size_t      len;

		ck_assert_int_eq(rd_kafka_header_get_all(out, i, &name, &val,
							 &len),
				 RD_KAFKA_RESP_ERR_NO_ERROR);
		ck_assert_msg(strcmp(name, want[i].name) == 0,
			      "header %zu is '%s', want '%s'", i, name,
			      want[i].name);
		ck_assert_msg(len == want[i].len,
			      "header %s: %zu bytes, want %zu", name, len,
			      want[i].len);
		if (len > 0)
			ck_assert_msg(memcmp(val, want[i].value, len) == 0,
				      "header %s: wrong value", name);
	}
	rd_kafka_headers_destroy(out);
	free(v);
	mri_wbuf_fini(&b);
}

static void
envelope_test__refused_by(const struct mri_hdr_view *hs, uint16_t n,
			  const struct mri_envelope_defaults *d)
{
	struct mri_wbuf      b;
	struct mri_pub_view *v   = envelope_test__view(&b, hs, n);
	rd_kafka_headers_t  *out = NULL;
	const char          *why = NULL;

	ck_assert_int_eq(envelope_test__headers(v, "id", 2, d, &out, &why),
			 MR_EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0] != '\0');
	free(v);
	mri_wbuf_fini(&b);
}

/* Refused in both envelopes. */
static void
envelope_test__refused(const struct mri_hdr_view *hs, uint16_t n)
{
	envelope_test__refused_by(hs, n, &envelope_test__defaults);
	envelope_test__refused_by(hs, n, &envelope_test__lean);
}

/* ---- times and ids ------------------------------------------------------
 */

static void
envelope_test__time(long long ms, const char *want)
{
	char      out[MRI_TIME_STRLEN + 1];
	long long back = -1;

	memset(out, '#', sizeof(out));
	mri_time_fmt(ms, out);
	ck_assert_str_eq(out, want);
	ck_assert_uint_eq(strlen(out), MRI_TIME_STRLEN);
	ck_assert_int_eq(mri_time_parse(want, strlen(want), &back), MR_OK);
	ck_assert_int_eq(back, ms);
}

START_TEST(test_time_fmt)
{
	envelope_test__time(0, "1970-01-01T00:00:00.000Z");
	envelope_test__time(1, "1970-01-01T00:00:00.001Z");
	envelope_test__time(999, "1970-01-01T00:00:00.999Z");
	envelope_test__time(1000, "1970-01-01T00:00:01.000Z");
	envelope_test__time(1764091854123LL, "2025-11-25T17:30:54.123Z");
	envelope_test__time(951782400000LL, "2000-02-29T00:00:00.000Z");
	envelope_test__time(951868799999LL, "2000-02-29T23:59:59.999Z");
	envelope_test__time(4102444800050LL, "2100-01-01T00:00:00.050Z");
	envelope_test__time(253402300799999LL, "9999-12-31T23:59:59.999Z");
}
END_TEST

/* What mri_time_parse refuses, leaving its output alone. */
START_TEST(test_time_parse_refused)
{
	static const char *const bad[] = {
	    "",
	    "2025-11-25T17:30:54.123",   /* no Z */
	    "2025-11-25T17:30:54.123z",  /* lowercase z */
	    "2025-11-25 17:30:54.123Z",  /* a space for T */
	    "2025-11-25T17:30:54Z",      /* no ms */
	    "2025-11-25T17:30:54.1234Z", /* 4 digits of ms */
	    "2025-13-25T17:30:54.123Z",  /* month 13 */
	    "2025-00-25T17:30:54.123Z",  /* month 0 */
	    "2025-11-00T17:30:54.123Z",  /* day 0 */
	    "2025-11-31T17:30:54.123Z",  /* November 31 */
	    "2025-02-29T17:30:54.123Z",  /* not a leap year */
	    "1900-02-29T00:00:00.000Z",  /* not one either */
	    "1969-12-31T23:59:59.999Z",  /* before the epoch */
	    "2025-11-25T24:00:00.000Z",  /* hour 24 */
	    "2025-11-25T17:60:54.123Z",  /* minute 60 */
	    "2025-11-25T17:30:60.123Z",  /* a leap second */
	    "2025-11-25T17:30:5a.123Z",  /* not a digit */
	    "-025-11-25T17:30:54.123Z",  /* a sign */
	    "2025-11-25T17:30:54.123+00:00",
	};
	long long ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(mri_time_parse(bad[i], strlen(bad[i]), &ms) ==
				  MR_EINVAL,
			      "%s", bad[i]);
		ck_assert_int_eq(ms, 42);
	}
	ck_assert_int_eq(mri_time_parse(NULL, 0, &ms), MR_EINVAL);
	// The length given counts, not a NUL.
	ck_assert_int_eq(mri_time_parse("2024-02-29T12:00:00.000Zjunk", 24,
					&ms),
			 MR_OK);
	ck_assert_int_eq(ms, 1709208000000LL);
}
END_TEST

START_TEST(test_id_valid)
{
	char id[MRI_ID_MAX + 1];

	memset(id, 'i', sizeof(id));
	ck_assert_int_eq(mri_envelope_id_valid("a", 1), MR_OK);
	ck_assert_int_eq(mri_envelope_id_valid(ENVELOPE_TEST__ID, 36), MR_OK);
	ck_assert_int_eq(mri_envelope_id_valid("with space ~!", 13), MR_OK);
	ck_assert_int_eq(mri_envelope_id_valid("caf\xc3\xa9", 5), MR_OK);
	ck_assert_int_eq(mri_envelope_id_valid(id, MRI_ID_MAX), MR_OK);
	ck_assert_int_eq(mri_envelope_id_valid(id, MRI_ID_MAX + 1),
			 MR_EINVAL);
	ck_assert_int_eq(mri_envelope_id_valid("", 0), MR_EINVAL);
	ck_assert_int_eq(mri_envelope_id_valid("a\0b", 3), MR_EINVAL);
	ck_assert_int_eq(mri_envelope_id_valid("a\nb", 3), MR_EINVAL);
	ck_assert_int_eq(mri_envelope_id_valid("\x1f", 1), MR_EINVAL);
	ck_assert_int_eq(mri_envelope_id_valid(" ", 1), MR_OK);
	// The length is what counts: a control byte past it is not read.
	ck_assert_int_eq(mri_envelope_id_valid("ok\n", 2), MR_OK);
	for (int c = 0; c < 0x20; c++) {
		char s[3] = {'x', (char)c, 'y'};

		ck_assert_msg(mri_envelope_id_valid(s, 3) == MR_EINVAL,
			      "byte 0x%02x accepted", c);
	}
}
END_TEST

/* ---- headers ------------------------------------------------------------
 */

START_TEST(test_headers_defaults)
{
	const struct mri_envelope_defaults *d = &envelope_test__defaults;
	struct envelope_test__hdr           want[] = {
            {"ce_specversion", "1.0", 3},
            {"ce_id", ENVELOPE_TEST__ID, 36},
            {"ce_source", "mailroomd", 9},
            {"ce_type", "mailroom.message", 16},
            {"ce_time", "2025-11-25T17:30:54.123Z", 24},
            {"content-type", "application/json", 16},
        };
	struct mri_envelope_defaults nodct = *d;

	envelope_test__expect(NULL, 0, ENVELOPE_TEST__ID, 36, d, want, 6);
	// No default content type: no content-type header.
	nodct.content_type = NULL;
	envelope_test__expect(NULL, 0, ENVELOPE_TEST__ID, 36, &nodct, want,
			      5);
	nodct.content_type = "";
	envelope_test__expect(NULL, 0, ENVELOPE_TEST__ID, 36, &nodct, want,
			      5);
}
END_TEST

START_TEST(test_headers_id_len)
{
	struct envelope_test__hdr want[] = {
	    {"ce_specversion", "1.0", 3},
	    {"ce_id", "abc", 3},
	    {"ce_source", "mailroomd", 9},
	    {"ce_type", "mailroom.message", 16},
	    {"ce_time", "2025-11-25T17:30:54.123Z", 24},
	    {"content-type", "application/json", 16},
	};

	// The id is id_len bytes of a longer buffer.
	envelope_test__expect(NULL, 0, "abcdef", 3, &envelope_test__defaults,
			      want, 6);
}
END_TEST

START_TEST(test_headers_publisher_given)
{
	struct mri_hdr_view hs[] = {
	    {"x-bin", 5, envelope_test__bin, sizeof(envelope_test__bin)},
	    {"ce_type", 7, "order.created", 13},
	    {"empty", 5, "", 0},
	    {"content-type", 12, "application/octet-stream", 24},
	    {"x-bin", 5, "2", 1},
	};
	// The envelope's headers in their documented order, the publisher's
	// values where given, then the rest in the publisher's order.
	struct envelope_test__hdr want[] = {
	    {"ce_specversion", "1.0", 3},
	    {"ce_id", "m-1", 3},
	    {"ce_source", "mailroomd", 9},
	    {"ce_type", "order.created", 13},
	    {"ce_time", "2025-11-25T17:30:54.123Z", 24},
	    {"content-type", "application/octet-stream", 24},
	    {"x-bin", envelope_test__bin, sizeof(envelope_test__bin)},
	    {"empty", "", 0},
	    {"x-bin", "2", 1},
	};

	envelope_test__expect(hs, 5, "m-1", 3, &envelope_test__defaults, want,
			      9);
}
END_TEST

START_TEST(test_headers_publisher_all)
{
	struct mri_hdr_view hs[] = {
	    {"ce_time", 7, "2020-01-01T00:00:00.000Z", 24},
	    {"ce_source", 9, "svc", 3},
	    {"content-type", 12, "text/plain", 10},
	    {"ce_type", 7, "t", 1},
	    {"mr_reply_to", 11, "replies/7", 9},
	};
	struct envelope_test__hdr want[] = {
	    {"ce_specversion", "1.0", 3},
	    {"ce_id", "m-2", 3},
	    {"ce_source", "svc", 3},
	    {"ce_type", "t", 1},
	    {"ce_time", "2020-01-01T00:00:00.000Z", 24},
	    {"content-type", "text/plain", 10},
	    {"mr_reply_to", "replies/7", 9},
	};

	envelope_test__expect(hs, 5, "m-2", 3, &envelope_test__defaults, want,
			      7);
}
END_TEST

START_TEST(test_headers_near_names)
{
	// Only the exact names are mailroomd's own.
	struct mri_hdr_view hs[] = {
	    {"ce_ids", 6, "1", 1},
	    {"ce_i", 4, "2", 1},
	    {"CE_ID", 5, "3", 1},
	    {"ce_specversion2", 15, "4", 1},
	    {"ce_sourcex", 10, "5", 1},
	};
	struct envelope_test__hdr want[] = {
	    {"ce_specversion", "1.0", 3},
	    {"ce_id", "m", 1},
	    {"ce_source", "mailroomd", 9},
	    {"ce_type", "mailroom.message", 16},
	    {"ce_time", "2025-11-25T17:30:54.123Z", 24},
	    {"content-type", "application/json", 16},
	    {"ce_ids", "1", 1},
	    {"ce_i", "2", 1},
	    {"CE_ID", "3", 1},
	    {"ce_specversion2", "4", 1},
	    {"ce_sourcex", "5", 1},
	};

	envelope_test__expect(hs, 5, "m", 1, &envelope_test__defaults, want,
			      11);
}
END_TEST

START_TEST(test_headers_refused)
{
	struct mri_hdr_view hs[3] = {
	    {"a", 1, "1", 1},
	    {"b", 1, "2", 1},
	    {"c", 1, "3", 1},
	};
	static const struct mri_hdr_view own[] = {
	    {"ce_id", 5, "mine", 4},
	    {"ce_specversion", 14, "1.0", 3},
	    {"ce_id", 5, "", 0},
	};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		for (size_t at = 0; at < 3; at++) {
			struct mri_hdr_view h[3];

			memcpy(h, hs, sizeof(h));
			h[at] = own[i];
			envelope_test__refused(h, 3);
		}
		envelope_test__refused(&own[i], 1);
	}
}
END_TEST

/* The lean envelope: ce_id and nothing the publisher did not give. */
START_TEST(test_lean_bare)
{
	struct envelope_test__hdr want[] = {
	    {"ce_id", ENVELOPE_TEST__ID, 36},
	};

	envelope_test__expect(NULL, 0, ENVELOPE_TEST__ID, 36,
			      &envelope_test__lean, want, 1);
}
END_TEST

/* Lean with what the publisher set: ce_id, the placed ones in their
 * documented order, then the rest in the publisher's order; no default
 * fills a placed header that was not given. */
START_TEST(test_lean_publisher_given)
{
	struct mri_hdr_view hs[] = {
	    {"x-bin", 5, envelope_test__bin, sizeof(envelope_test__bin)},
	    {"mr_correlation_id", 17, "c-9", 3},
	    {"ce_type", 7, "order.created", 13},
	    {"empty", 5, "", 0},
	    {"ce_time", 7, "2020-01-01T00:00:00.000Z", 24},
	    {"x-bin", 5, "2", 1},
	};
	struct envelope_test__hdr want[] = {
	    {"ce_id", "m-1", 3},
	    {"ce_type", "order.created", 13},
	    {"ce_time", "2020-01-01T00:00:00.000Z", 24},
	    {"mr_correlation_id", "c-9", 3},
	    {"x-bin", envelope_test__bin, sizeof(envelope_test__bin)},
	    {"empty", "", 0},
	    {"x-bin", "2", 1},
	};

	envelope_test__expect(hs, 6, "m-1", 3, &envelope_test__lean, want, 7);
}
END_TEST

/* Lean with every placed header given: the same record as full, less
 * ce_specversion. */
START_TEST(test_lean_publisher_all)
{
	struct mri_hdr_view hs[] = {
	    {"mr_reply_to", 11, "replies/7", 9},
	    {"ce_time", 7, "2020-01-01T00:00:00.000Z", 24},
	    {"ce_source", 9, "svc", 3},
	    {"content-type", 12, "text/plain", 10},
	    {"ce_type", 7, "t", 1},
	};
	struct envelope_test__hdr want[] = {
	    {"ce_id", "m-2", 3},
	    {"ce_source", "svc", 3},
	    {"ce_type", "t", 1},
	    {"ce_time", "2020-01-01T00:00:00.000Z", 24},
	    {"content-type", "text/plain", 10},
	    {"mr_reply_to", "replies/7", 9},
	};

	envelope_test__expect(hs, 5, "m-2", 3, &envelope_test__lean, want, 6);
}
END_TEST

/* ---- UUIDv7 -------------------------------------------------------------
 */

static uint64_t
envelope_test__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether \p s is a formatted UUIDv7: lowercase hex, dashes, 7, 10xx. */
static bool
envelope_test__is_uuid7(const char *s)
{
	if (strlen(s) != MRI_UUID_STRLEN)
		return false;
	for (int i = 0; i < MRI_UUID_STRLEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') ||
			     (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[14] == '7' && strchr("89ab", s[19]) != NULL;
}

START_TEST(test_uuid_format)
{
	static const uint8_t u[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
				      0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
				      0x0c, 0x0d, 0xfe, 0xff};
	char                 s[MRI_UUID_STRLEN + 1];

	memset(s, '#', sizeof(s));
	mri_uuid_format(u, s);
	ck_assert_str_eq(s, "00010203-0405-0607-0809-0a0b0c0dfeff");
}
END_TEST

START_TEST(test_uuid7_fields)
{
	for (int i = 0; i < 1000; i++) {
		uint8_t u[16];
		char    s[MRI_UUID_STRLEN + 1];
		char    f[MRI_UUID_STRLEN + 1];

		mri_uuid7_new(u);
		if (u[6] >> 4 != 7 || u[8] >> 6 != 2)
			ck_abort_msg("id %d: version %d, variant %d", i,
				     u[6] >> 4, u[8] >> 6);
		mri_uuid_format(u, f);
		if (!envelope_test__is_uuid7(f))
			ck_abort_msg("id %d: '%s' is not a UUIDv7", i, f);
		mri_uuid7_string(s);
		if (!envelope_test__is_uuid7(s))
			ck_abort_msg("id %d: '%s' is not a UUIDv7", i, s);
	}
}
END_TEST

START_TEST(test_uuid7_increasing)
{
	uint8_t (*u)[16] = malloc(ENVELOPE_TEST__NIDS * sizeof(*u));
	char     prev[MRI_UUID_STRLEN + 1], cur[MRI_UUID_STRLEN + 1];
	uint64_t before, after, ms;

	ck_assert_ptr_nonnull(u);
	before = envelope_test__now_ms();
	for (int i = 0; i < ENVELOPE_TEST__NIDS; i++)
		mri_uuid7_new(u[i]);
	after = envelope_test__now_ms();
	for (int i = 1; i < ENVELOPE_TEST__NIDS; i++) {
		mri_uuid_format(u[i - 1], prev);
		mri_uuid_format(u[i], cur);
		if (memcmp(u[i - 1], u[i], 16) >= 0 || strcmp(prev, cur) >= 0)
			ck_abort_msg("id %d, %s, is not above %s", i, cur,
				     prev);
	}
	// The 12-bit counter starts below 1024 each millisecond, so a
	// millisecond holds at least 3072 ids before the time runs ahead.
	ms = 0;
	for (int b = 0; b < 6; b++)
		ms = ms << 8 | u[ENVELOPE_TEST__NIDS - 1][b];
	ck_assert(ms <= after + ENVELOPE_TEST__NIDS / 3072 + 1);
	ms = 0;
	for (int b = 0; b < 6; b++)
		ms = ms << 8 | u[0][b];
	ck_assert(ms >= before);
	free(u);
}
END_TEST

struct envelope_test__ids {
	uint8_t (*u)[16];
	int     n;
};

static void *
envelope_test__gen(void *arg)
{
	struct envelope_test__ids *ids = arg;

	for (int i = 0; i < ids->n; i++)
		mri_uuid7_new(ids->u[i]);
	return NULL;
}

static int
envelope_test__cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

START_TEST(test_uuid7_unique)
{
	uint8_t (*u)[16] = malloc(ENVELOPE_TEST__NIDS * sizeof(*u));
	struct envelope_test__ids half[2];
	pthread_t                 t[2];

	ck_assert_ptr_nonnull(u);
	// Two threads, each with its own generator, in the same milliseconds.
	for (int i = 0; i < 2; i++) {
		half[i].u = u + i * (ENVELOPE_TEST__NIDS / 2);
		half[i].n = ENVELOPE_TEST__NIDS / 2;
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, envelope_test__gen, &half[i]),
		    0);
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	qsort(u, ENVELOPE_TEST__NIDS, 16, envelope_test__cmp16);
	for (int i = 1; i < ENVELOPE_TEST__NIDS; i++)
		if (memcmp(u[i - 1], u[i], 16) == 0)
			ck_abort_msg("duplicate id among %d",
				     ENVELOPE_TEST__NIDS);
	free(u);
}
END_TEST

static Suite *
envelope_test__suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc;

	tc = tcase_create("fields");
	tcase_add_test(tc, test_time_fmt);
	tcase_add_test(tc, test_time_parse_refused);
	tcase_add_test(tc, test_id_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("headers");
	tcase_add_test(tc, test_headers_defaults);
	tcase_add_test(tc, test_headers_id_len);
	tcase_add_test(tc, test_headers_publisher_given);
	tcase_add_test(tc, test_headers_publisher_all);
	tcase_add_test(tc, test_headers_near_names);
	tcase_add_test(tc, test_headers_refused);
	tcase_add_test(tc, test_lean_bare);
	tcase_add_test(tc, test_lean_publisher_given);
	tcase_add_test(tc, test_lean_publisher_all);
	suite_add_tcase(s, tc);

	tc = tcase_create("uuid7");
	tcase_add_test(tc, test_uuid_format);
	tcase_add_test(tc, test_uuid7_fields);
	tcase_add_test(tc, test_uuid7_increasing);
	tcase_add_test(tc, test_uuid7_unique);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(envelope_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
