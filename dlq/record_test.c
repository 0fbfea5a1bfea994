/*
 * The dead-letter record: the reason's normal form and fingerprint
 * (grouping, pinned values), the builder (order, old mr_dlq_* headers
 * stripped, the reason cut on a UTF-8 boundary, too many headers), and
 * the reader of mailroom's, Spring's and Connect's dead-letter headers,
 * malformed values included.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq/record.h"
#include "mailroom/error.h"

/* ---- the fingerprint ------------------------------------------------- */

/* \p in normalises to \p want, and its fingerprint is that of \p want's
 * bytes (so of any other reason with the same normal form). */
static void
t_norm(const char *in, const char *want)
{
	char   out[512];
	size_t n = mri_dlq_normalise(in, strlen(in), out, sizeof(out));

	ck_assert_msg(strcmp(out, want) == 0,
		      "\"%s\": got \"%s\", want \"%s\"", in, out, want);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_uint_le(n, 3 * strlen(in));
}

START_TEST(test_normalise)
{
	t_norm("", "");
	t_norm(" \t\r\n ", "");
	t_norm("  Hello   World \n", "hello world");
	t_norm("a\tb\n\nc", "a b c");
	// Numbers, in words and alone.
	t_norm("timeout after 1234 ms", "timeout after <n> ms");
	t_norm("user42 retry7 -5", "user<n> retry<n> -<n>");
	t_norm("version 1.2.3", "version <n>.<n>.<n>");
	t_norm("1.2.3.4.5", "<n>.<n>.<n>.<n>.<n>");
	t_norm("a1", "a<n>");
	// Hex: 0x..., and runs of 8+ with a digit and a letter.
	t_norm("addr 0x7FFF1234 bad", "addr <hex> bad");
	t_norm("at 0xZZ", "at <n>xzz");
	t_norm("order 5f3e9a1b7c", "order <hex>");
	t_norm("order5f3e1a2b", "order<hex>");
	t_norm("id:DEADBEEF01", "id:<hex>");
	t_norm("deadbeefcafe", "deadbeefcafe");
	t_norm("12345678901", "<n>");
	t_norm("failed12345678", "failed<n>");
	t_norm("abc1234", "abc<n>");
	// UUIDs.
	t_norm("id 123e4567-e89b-12d3-a456-426614174000 missing",
	       "id <uuid> missing");
	t_norm("order-123E4567-E89B-12D3-A456-426614174000.",
	       "order-<uuid>.");
	t_norm("123e4567-e89b-12d3-a456-426614174000x",
	       "<hex>-e<n>b-<n>d<n>-a<n>-<n>x");
	// Quoted strings.
	t_norm("user 'bob' not found", "user <str> not found");
	t_norm("user \"alice smith\" not found", "user <str> not found");
	t_norm("can't open 'file.txt'", "can't open <str>");
	t_norm("it's 'a'b' end", "it's <str> end");
	t_norm("unterminated 'quote", "unterminated 'quote");
	t_norm("'' \"\"", "<str> <str>");
	t_norm("say \"it's 'x'\" now", "say <str> now");
	// Addresses.
	t_norm("connect to 10.0.0.12:5432 failed",
	       "connect to <ip>:<n> failed");
	t_norm("host ::1 down", "host <ip> down");
	t_norm("fe80::1%eth0", "<ip>%eth<n>");
	t_norm("at 12:34:56", "at <ip>");
	t_norm("mail Bob.Smith@Example.com.", "mail <email>.");
	t_norm("to a+b@x-y.org, c@d", "to <email>, <email>");
	t_norm("x @ y", "x @ y");
	// Bytes beyond ASCII are kept, not lowercased.
	t_norm("\xc3\x89" "CHEC 42", "\xc3\x89" "chec <n>");
}
END_TEST

START_TEST(test_fingerprint_groups)
{
	static const char *const same[] = {
	    "timeout after 1234 ms on order 5f3e9a1b7c",
	    "Timeout after 99 ms on order a1b2c3d4e5",
	    "  timeout   after 7 ms on order 0123456789abcdef\n",
	};
	static const char *const other[] = {
	    "timeout after 1234 ms on order",
	    "timeout before 1234 ms on order 5f3e9a1b7c",
	    "connection refused",
	    "",
	};
	uint64_t fp = mri_dlq_fingerprint(same[0], strlen(same[0]));

	for (size_t i = 1; i < sizeof(same) / sizeof(same[0]); i++)
		ck_assert_uint_eq(
		    mri_dlq_fingerprint(same[i], strlen(same[i])), fp);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		ck_assert_uint_ne(
		    mri_dlq_fingerprint(other[i], strlen(other[i])), fp);
	// Pinned: FNV-1a 64 of the normal form, computed apart from this
	// code (a change of the algorithm must change these on purpose).
	ck_assert_uint_eq(fp, 0x62dbcc580fce368aULL);
	ck_assert_uint_eq(mri_dlq_fingerprint("User 'bob' not found", 20),
			  0x6049c37de8c95decULL);
	ck_assert_uint_eq(mri_dlq_fingerprint(NULL, 0), MRI_DLQ_FP_EMPTY);
	ck_assert_uint_eq(mri_dlq_fingerprint("", 0), MRI_DLQ_FP_EMPTY);
	ck_assert_uint_eq(mri_dlq_fingerprint(" \n ", 3), MRI_DLQ_FP_EMPTY);
	ck_assert_uint_eq(MRI_DLQ_FP_EMPTY, 0xcbf29ce484222325ULL);
	// The length given counts, not a NUL.
	ck_assert_uint_eq(mri_dlq_fingerprint("timeout after 5 ms on order "
					      "a1b2c3d4e5 and more",
					      38),
			  fp);
}
END_TEST

START_TEST(test_fingerprint_fmt_and_cut_output)
{
	char   out[MRI_DLQ_FP_STRLEN + 1];
	char   small[6];
	size_t n;

	mri_dlq_fingerprint_fmt(0x62dbcc580fce368aULL, out);
	ck_assert_str_eq(out, "62dbcc580fce368a");
	mri_dlq_fingerprint_fmt(0x1ULL, out);
	ck_assert_str_eq(out, "0000000000000001");
	// A short buffer: cut, NUL-terminated, the whole length returned.
	n = mri_dlq_normalise("user 42", 7, small, sizeof(small));
	ck_assert_uint_eq(n, 8);
	ck_assert_str_eq(small, "user ");
	ck_assert_uint_eq(mri_dlq_normalise("user 42", 7, NULL, 0), 8);
}
END_TEST

START_TEST(test_utf8_cut)
{
	// "é" is c3 a9; "€" e2 82 ac; U+1F600 f0 9f 98 80.
	ck_assert_uint_eq(mri_dlq_utf8_cut("abc", 3, 5), 3);
	ck_assert_uint_eq(mri_dlq_utf8_cut("abcdef", 6, 4), 4);
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\xc3\xa9", 3, 2), 1);
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\xc3\xa9z", 4, 3), 3);
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\xe2\x82\xac", 4, 2), 1);
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\xe2\x82\xac", 4, 3), 1);
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\xf0\x9f\x98\x80", 5, 4), 1);
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\xf0\x9f\x98\x80z", 6, 5), 5);
	// Not UTF-8 (continuation bytes with no lead): cut where asked.
	ck_assert_uint_eq(mri_dlq_utf8_cut("a\x80\x80\x80\x80", 5, 4), 4);
	ck_assert_uint_eq(mri_dlq_utf8_cut("\x80\x80", 2, 1), 1);
	ck_assert_uint_eq(mri_dlq_utf8_cut("\xc3\xa9", 2, 0), 0);
}
END_TEST

/* ---- building ---------------------------------------------------------- */

static struct mri_hdr_view
t_h(const char *name, const char *value)
{
	return (struct mri_hdr_view){name, (uint16_t)strlen(name), value,
				     (uint32_t)strlen(value)};
}

/* Header \p i of \p b is \p name = \p value. */
static void
t_is(const struct mri_dlq_hdrs *b, size_t i, const char *name,
     const char *value)
{
	ck_assert_uint_lt(i, b->n);
	ck_assert_msg(b->h[i].name_len == strlen(name) &&
			  memcmp(b->h[i].name, name, strlen(name)) == 0,
		      "header %zu: %.*s, not %s", i, (int)b->h[i].name_len,
		      b->h[i].name, name);
	ck_assert_msg(b->h[i].value_len == strlen(value) &&
			  memcmp(b->h[i].value, value, strlen(value)) == 0,
		      "header %zu (%s): \"%.*s\", not \"%s\"", i, name,
		      (int)b->h[i].value_len, (const char *)b->h[i].value,
		      value);
}

static struct mri_dlq_hdrs t_b; /* big: not on the stack */

START_TEST(test_build_order)
{
	char                   topic[16], group[16], reason[64];
	struct mri_hdr_view    orig[6];
	struct mri_dlq_orig    o;
	struct mri_dlq_failure f;
	struct mri_dlq_info    info;
	char                   fp[MRI_DLQ_FP_STRLEN + 1];

	strcpy(topic, "orders");
	strcpy(group, "billing");
	strcpy(reason, "timeout after 1234 ms on order 5f3e9a1b7c");
	orig[0] = t_h("ce_id", "m-1");
	orig[1] = t_h("mr_dlq_topic", "old-topic");
	orig[2] = t_h("x", "1");
	orig[3] = t_h("mr_dlq_replays", "1");
	orig[4] = t_h("mr_dlq_", "odd");
	orig[5] = t_h("x", "2");
	o       = (struct mri_dlq_orig){topic, strlen(topic), 3, 12345, orig,
					6};
	f       = (struct mri_dlq_failure){
		  .group            = group,
		  .group_len        = strlen(group),
		  .attempts         = 5,
		  .first_failure_ms = 1764091854123LL,
		  .last_failure_ms  = 1764091860000LL,
		  .time_ms          = 1764091860005LL,
		  .reason           = reason,
		  .reason_len       = strlen(reason),
		  .replays          = 2,
	      };
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	// The caller's strings may go: mailroom's values are copies.
	memset(topic, 'X', sizeof(topic) - 1);
	memset(group, 'X', sizeof(group) - 1);
	memset(reason, 'X', sizeof(reason) - 1);
	ck_assert_uint_eq(t_b.n, 3 + 11);
	ck_assert_uint_eq(t_b.stripped, 3);
	ck_assert_uint_eq(t_b.dropped, 0);
	t_is(&t_b, 0, "ce_id", "m-1");
	t_is(&t_b, 1, "x", "1");
	t_is(&t_b, 2, "x", "2");
	ck_assert_ptr_eq(t_b.h[0].value, orig[0].value); // borrowed
	t_is(&t_b, 3, MRI_DLQ_H_TOPIC, "orders");
	t_is(&t_b, 4, MRI_DLQ_H_PARTITION, "3");
	t_is(&t_b, 5, MRI_DLQ_H_OFFSET, "12345");
	t_is(&t_b, 6, MRI_DLQ_H_GROUP, "billing");
	t_is(&t_b, 7, MRI_DLQ_H_ATTEMPTS, "5");
	t_is(&t_b, 8, MRI_DLQ_H_FIRST_FAILURE, "2025-11-25T17:30:54.123Z");
	t_is(&t_b, 9, MRI_DLQ_H_LAST_FAILURE, "2025-11-25T17:31:00.000Z");
	t_is(&t_b, 10, MRI_DLQ_H_REASON,
	     "timeout after 1234 ms on order 5f3e9a1b7c");
	t_is(&t_b, 11, MRI_DLQ_H_FINGERPRINT, "62dbcc580fce368a");
	t_is(&t_b, 12, MRI_DLQ_H_TIME, "2025-11-25T17:31:00.005Z");
	t_is(&t_b, 13, MRI_DLQ_H_REPLAYS, "2");
	ck_assert_uint_eq(t_b.fingerprint, 0x62dbcc580fce368aULL);

	// Read back: the same values.
	ck_assert_int_eq(mri_dlq_parse(t_b.h, t_b.n, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_MAILROOM);
	ck_assert_uint_eq(info.topic.len, 6);
	ck_assert_mem_eq(info.topic.p, "orders", 6);
	ck_assert_int_eq(info.partition, 3);
	ck_assert_int_eq(info.offset, 12345);
	ck_assert_mem_eq(info.group.p, "billing", 7);
	ck_assert_uint_eq(info.attempts, 5);
	ck_assert_int_eq(info.first_failure_ms, 1764091854123LL);
	ck_assert_int_eq(info.last_failure_ms, 1764091860000LL);
	ck_assert_int_eq(info.time_ms, 1764091860005LL);
	ck_assert_str_eq(info.reason,
			 "timeout after 1234 ms on order 5f3e9a1b7c");
	ck_assert_uint_eq(info.fingerprint, 0x62dbcc580fce368aULL);
	ck_assert_uint_eq(info.replays, 2);
	ck_assert_uint_eq(info.dropped_headers, 0);

	// What is unknown is left out: no group, no failure times, no
	// quarantine time; an empty reason has the fixed fingerprint.
	f = (struct mri_dlq_failure){.attempts = 1, .first_failure_ms = -1,
				     .last_failure_ms = -1, .time_ms = -1};
	strcpy(topic, "t");
	o = (struct mri_dlq_orig){topic, 1, 0, 0, NULL, 0};
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	ck_assert_uint_eq(t_b.n, 7);
	t_is(&t_b, 0, MRI_DLQ_H_TOPIC, "t");
	t_is(&t_b, 1, MRI_DLQ_H_PARTITION, "0");
	t_is(&t_b, 2, MRI_DLQ_H_OFFSET, "0");
	t_is(&t_b, 3, MRI_DLQ_H_ATTEMPTS, "1");
	t_is(&t_b, 4, MRI_DLQ_H_REASON, "");
	mri_dlq_fingerprint_fmt(MRI_DLQ_FP_EMPTY, fp);
	t_is(&t_b, 5, MRI_DLQ_H_FINGERPRINT, fp);
	t_is(&t_b, 6, MRI_DLQ_H_REPLAYS, "0");
	ck_assert_int_eq(mri_dlq_parse(t_b.h, t_b.n, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_MAILROOM);
	ck_assert_ptr_null(info.group.p);
	ck_assert_int_eq(info.first_failure_ms, -1);
	ck_assert_int_eq(info.time_ms, -1);
	ck_assert_uint_eq(info.fingerprint, MRI_DLQ_FP_EMPTY);
}
END_TEST

START_TEST(test_build_reason_cut)
{
	static char            reason[1100];
	struct mri_dlq_orig    o = {"t", 1, 0, 7, NULL, 0};
	struct mri_dlq_failure f = {.first_failure_ms = -1,
				    .last_failure_ms  = -1,
				    .time_ms          = -1};
	struct mri_dlq_info    info;

	// 1023 bytes, then "é" across the limit: cut before it.
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 1023, "\xc3\xa9", 2);
	f.reason     = reason;
	f.reason_len = sizeof(reason);
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	t_is(&t_b, 3, MRI_DLQ_H_ATTEMPTS, "0");
	ck_assert_uint_eq(t_b.h[4].value_len, 1023);
	ck_assert_uint_eq(t_b.fingerprint, mri_dlq_fingerprint(reason, 1023));
	// The 4-byte U+1F600 from byte 1022: cut at 1022.
	memcpy(reason + 1022, "\xf0\x9f\x98\x80", 4);
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	ck_assert_uint_eq(t_b.h[4].value_len, 1022);
	// Just at the limit: kept whole.
	memset(reason + 1020, 'a', sizeof(reason) - 1020);
	memcpy(reason + 1020, "\xf0\x9f\x98\x80", 4);
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	ck_assert_uint_eq(t_b.h[4].value_len, MRI_DLQ_REASON_MAX);
	ck_assert_mem_eq(t_b.h[4].value, reason, MRI_DLQ_REASON_MAX);
	// Read back whole.
	ck_assert_int_eq(mri_dlq_parse(t_b.h, t_b.n, &info), MR_OK);
	ck_assert_uint_eq(info.reason_len, MRI_DLQ_REASON_MAX);
	ck_assert_mem_eq(info.reason, reason, MRI_DLQ_REASON_MAX);
	ck_assert_uint_eq(info.fingerprint, t_b.fingerprint);
}
END_TEST

/* \p n original headers named h0, h1, ... (their names in \p names). */
static void
t_many(struct mri_hdr_view *h, char (*names)[24], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 24, "h%zu", i);
		h[i] = t_h(names[i], "v");
	}
}

START_TEST(test_build_too_many_headers)
{
	static struct mri_hdr_view orig[300];
	static char                names[300][24];
	struct mri_dlq_orig        o = {"t", 1, 1, 2, orig, 0};
	struct mri_dlq_failure     f = {.group            = "g",
					.group_len        = 1,
					.first_failure_ms = 1,
					.last_failure_ms  = 2,
					.time_ms          = 3,
					.reason           = "r",
					.reason_len       = 1};
	struct mri_dlq_info        info;
	char                       want[24];

	t_many(orig, names, 300);
	// 11 of mailroom's: 245 of the original's fit exactly.
	o.nhdrs = 245;
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	ck_assert_uint_eq(t_b.n, MRI_HDR_COUNT_MAX);
	ck_assert_uint_eq(t_b.dropped, 0);
	t_is(&t_b, 244, "h244", "v");
	t_is(&t_b, 245, MRI_DLQ_H_TOPIC, "t");
	t_is(&t_b, 255, MRI_DLQ_H_REPLAYS, "0");
	// One more: the original's last ones make room for ours and the
	// count of those left out.
	for (size_t n = 246; n <= 300; n += 54) {
		o.nhdrs = n;
		ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
		ck_assert_uint_eq(t_b.n, MRI_HDR_COUNT_MAX);
		ck_assert_uint_eq(t_b.dropped, n - 244);
		for (size_t i = 0; i < 244; i++)
			t_is(&t_b, i, names[i], "v");
		t_is(&t_b, 244, MRI_DLQ_H_TOPIC, "t");
		snprintf(want, sizeof(want), "%zu", n - 244);
		t_is(&t_b, 255, MRI_DLQ_H_DROPPED, want);
		ck_assert_int_eq(mri_dlq_parse(t_b.h, t_b.n, &info), MR_OK);
		ck_assert_uint_eq(info.dropped_headers, n - 244);
		ck_assert_int_eq(info.offset, 2);
	}
	// Old mr_dlq_* ones do not count against the room.
	o.nhdrs = 245;
	orig[0] = t_h("mr_dlq_reason", "old");
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	ck_assert_uint_eq(t_b.n, 255);
	ck_assert_uint_eq(t_b.dropped, 0);
	ck_assert_uint_eq(t_b.stripped, 1);
}
END_TEST

START_TEST(test_build_refused)
{
	static char            long_topic[MRI_TOPIC_MAX + 2];
	static char            long_group[MRI_DLQ_GROUP_MAX + 2];
	struct mri_hdr_view    h = t_h("a", "b");
	struct mri_dlq_orig    o = {"t", 1, 0, 0, NULL, 0};
	struct mri_dlq_failure f = {.first_failure_ms = -1};

	memset(long_topic, 't', sizeof(long_topic) - 1);
	memset(long_group, 'g', sizeof(long_group) - 1);
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	o.topic = NULL;
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	o = (struct mri_dlq_orig){"t", 0, 0, 0, NULL, 0};
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	o = (struct mri_dlq_orig){long_topic, MRI_TOPIC_MAX + 1, 0, 0, NULL,
				  0};
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	o.topic_len = MRI_TOPIC_MAX;
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	o = (struct mri_dlq_orig){"t", 1, -1, 0, NULL, 0};
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	o = (struct mri_dlq_orig){"t", 1, 0, -1, NULL, 0};
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	o = (struct mri_dlq_orig){"t", 1, 0, 0, NULL, 1};
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	o.hdrs = &h;
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	f.group     = long_group;
	f.group_len = MRI_DLQ_GROUP_MAX + 1;
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_EINVAL);
	f.group_len = MRI_DLQ_GROUP_MAX;
	ck_assert_int_eq(mri_dlq_build(&t_b, &o, &f), MR_OK);
	ck_assert_int_eq(mri_dlq_build_replay(&t_b, NULL, 1, 1), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_build_replay(&t_b, NULL, 0, 1), MR_OK);
	ck_assert_uint_eq(t_b.n, 1);
}
END_TEST

START_TEST(test_build_replay)
{
	struct mri_hdr_view dlq[5];
	struct mri_dlq_info info;

	dlq[0] = t_h("ce_id", "m-1");
	dlq[1] = t_h(MRI_DLQ_H_TOPIC, "orders");
	dlq[2] = t_h("kafka_dlt-original-topic", "orders");
	dlq[3] = t_h(MRI_DLQ_H_REPLAYS, "2");
	dlq[4] = t_h(MRI_DLQ_H_REASON, "boom");
	ck_assert_int_eq(mri_dlq_parse(dlq, 5, &info), MR_OK);
	ck_assert_uint_eq(info.replays, 2);
	ck_assert_int_eq(mri_dlq_build_replay(&t_b, dlq, 5, info.replays + 1),
			 MR_OK);
	ck_assert_uint_eq(t_b.n, 3);
	ck_assert_uint_eq(t_b.stripped, 3);
	t_is(&t_b, 0, "ce_id", "m-1");
	t_is(&t_b, 1, "kafka_dlt-original-topic", "orders");
	t_is(&t_b, 2, MRI_DLQ_H_REPLAYS, "3");
	// A replayed record is not a dead-letter one of mailroom's, but
	// says how often it was replayed.
	ck_assert_int_eq(mri_dlq_parse(t_b.h, 1, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_UNKNOWN);
	ck_assert_uint_eq(info.replays, 0);
	ck_assert_int_eq(mri_dlq_parse(&t_b.h[2], 1, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_UNKNOWN);
	ck_assert_uint_eq(info.replays, 3);
}
END_TEST

/* ---- reading ----------------------------------------------------------- */

static struct mri_hdr_view
t_hb(const char *name, const void *value, size_t len)
{
	return (struct mri_hdr_view){name, (uint16_t)strlen(name), value,
				     (uint32_t)len};
}

static void
t_str_is(struct mri_dlq_str s, const char *want)
{
	if (want == NULL) {
		ck_assert_uint_eq(s.len, 0);
		return;
	}
	ck_assert_msg(s.len == strlen(want) && memcmp(s.p, want, s.len) == 0,
		      "\"%.*s\", not \"%s\"", (int)s.len, s.p ? s.p : "",
		      want);
}

START_TEST(test_parse_mailroom_malformed)
{
	struct mri_hdr_view h[12];
	struct mri_dlq_info info;

	h[0]  = t_h(MRI_DLQ_H_TOPIC, "orders");
	h[1]  = t_h(MRI_DLQ_H_PARTITION, "12a");
	h[2]  = t_h(MRI_DLQ_H_OFFSET, "-5");
	h[3]  = t_h(MRI_DLQ_H_ATTEMPTS, "");
	h[4]  = t_h(MRI_DLQ_H_FIRST_FAILURE, "yesterday");
	h[5]  = t_h(MRI_DLQ_H_LAST_FAILURE, "2025-11-25T17:30:54.123");
	h[6]  = t_h(MRI_DLQ_H_FINGERPRINT, "62DBCC580FCE368A");
	h[7]  = t_h(MRI_DLQ_H_REASON, "User 'bob' not found");
	h[8]  = t_hb(MRI_DLQ_H_TIME, NULL, 0);
	h[9]  = t_h(MRI_DLQ_H_REPLAYS, "4294967296");
	h[10] = t_h(MRI_DLQ_H_DROPPED, " 3");
	h[11] = t_h(MRI_DLQ_H_GROUP, "");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_MAILROOM);
	t_str_is(info.topic, "orders");
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, -1);
	ck_assert_uint_eq(info.attempts, 0);
	ck_assert_int_eq(info.first_failure_ms, -1);
	ck_assert_int_eq(info.last_failure_ms, -1);
	ck_assert_int_eq(info.time_ms, -1);
	ck_assert_uint_eq(info.replays, 0);
	ck_assert_uint_eq(info.dropped_headers, 0);
	t_str_is(info.group, NULL);
	// An uppercase fingerprint is not mailroom's: computed instead.
	ck_assert_uint_eq(info.fingerprint, 0x6049c37de8c95decULL);

	// Out of range, and the last of a repeated name counts.
	h[1] = t_h(MRI_DLQ_H_PARTITION, "2147483648");
	h[2] = t_h(MRI_DLQ_H_OFFSET, "99999999999999999999");
	h[3] = t_h(MRI_DLQ_H_ATTEMPTS, "1");
	h[4] = t_h(MRI_DLQ_H_ATTEMPTS, "7");
	h[5] = t_h(MRI_DLQ_H_LAST_FAILURE, "2025-02-29T00:00:00.000Z");
	h[6] = t_h(MRI_DLQ_H_FINGERPRINT, "0123456789abcdef");
	h[9] = t_h(MRI_DLQ_H_REPLAYS, "4294967295");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, -1);
	ck_assert_uint_eq(info.attempts, 7);
	ck_assert_int_eq(info.last_failure_ms, -1);
	ck_assert_uint_eq(info.fingerprint, 0x0123456789abcdefULL);
	ck_assert_uint_eq(info.replays, 4294967295U);
	h[1] = t_h(MRI_DLQ_H_PARTITION, "2147483647");
	h[2] = t_h(MRI_DLQ_H_OFFSET, "9223372036854775807");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, 2147483647);
	ck_assert_int_eq(info.offset, INT64_MAX);
	h[2] = t_h(MRI_DLQ_H_OFFSET, "9223372036854775808");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.offset, -1);

	// A mailroom header other than the topic does not make it one.
	ck_assert_int_eq(mri_dlq_parse(&h[1], 11, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_UNKNOWN);
	ck_assert_uint_eq(info.attempts, 0);
	ck_assert_uint_eq(info.fingerprint, MRI_DLQ_FP_EMPTY);
	ck_assert_uint_eq(info.reason_len, 0);
	// Nothing at all.
	ck_assert_int_eq(mri_dlq_parse(NULL, 0, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_UNKNOWN);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(mri_dlq_parse(NULL, 1, &info), MR_EINVAL);
	ck_assert_int_eq(mri_dlq_parse(h, 1, NULL), MR_EINVAL);
}
END_TEST

START_TEST(test_parse_spring)
{
	static const unsigned char part[]   = {0, 0, 0, 3};
	static const unsigned char off[]    = {0, 0, 0, 0, 0, 0, 1, 2};
	static const unsigned char ts[]     = {0, 0, 1, 0x9a, 0xbc, 0xde, 0xf0,
					       0x12};
	static const unsigned char tries[]  = {0, 0, 0, 4};
	static const unsigned char negpart[] = {0xff, 0xff, 0xff, 0xff};
	struct mri_hdr_view        h[12];
	struct mri_dlq_info        info;
	const char                *fqcn = "org.springframework.kafka."
					   "listener."
					   "ListenerExecutionFailedException";
	const char *msg = "Listener failed; bad order 1234";
	char        want[256];

	h[0]  = t_h("ce_id", "m-1");
	h[1]  = t_h("kafka_dlt-original-topic", "orders");
	h[2]  = t_hb("kafka_dlt-original-partition", part, 4);
	h[3]  = t_hb("kafka_dlt-original-offset", off, 8);
	h[4]  = t_hb("kafka_dlt-original-timestamp", ts, 8);
	h[5]  = t_h("kafka_dlt-original-timestamp-type", "CreateTime");
	h[6]  = t_h("kafka_dlt-original-consumer-group", "billing");
	h[7]  = t_h("kafka_dlt-exception-fqcn", fqcn);
	h[8]  = t_h("kafka_dlt-exception-cause-fqcn",
		    "java.lang.IllegalStateException");
	h[9]  = t_h("kafka_dlt-exception-message", msg);
	h[10] = t_h("kafka_dlt-exception-stacktrace", "at x.y(Z.java:1)");
	h[11] = t_hb("retry_topic-attempts", tries, 4);
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_SPRING);
	t_str_is(info.topic, "orders");
	ck_assert_int_eq(info.partition, 3);
	ck_assert_int_eq(info.offset, 258);
	ck_assert_int_eq(info.orig_time_ms, 0x19abcdef012LL);
	t_str_is(info.group, "billing");
	ck_assert_uint_eq(info.attempts, 4);
	t_str_is(info.exception, fqcn);
	t_str_is(info.message, msg);
	t_str_is(info.cause, "java.lang.IllegalStateException");
	t_str_is(info.stacktrace, "at x.y(Z.java:1)");
	snprintf(want, sizeof(want), "%s: %s", fqcn, msg);
	ck_assert_str_eq(info.reason, want);
	ck_assert_uint_eq(info.fingerprint,
			  mri_dlq_fingerprint(want, strlen(want)));
	ck_assert_int_eq(info.first_failure_ms, -1);
	ck_assert_int_eq(info.time_ms, -1);

	// Wrong lengths and negative values are unknown.
	h[2]  = t_hb("kafka_dlt-original-partition", part, 3);
	h[3]  = t_hb("kafka_dlt-original-offset", off, 4);
	h[4]  = t_hb("kafka_dlt-original-timestamp", ts, 9);
	h[11] = t_hb("retry_topic-attempts", negpart, 4);
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, -1);
	ck_assert_int_eq(info.orig_time_ms, -1);
	ck_assert_uint_eq(info.attempts, 0);
	h[2] = t_hb("kafka_dlt-original-partition", negpart, 4);
	h[3] = t_hb("kafka_dlt-original-offset", "1234567a", 8);
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, 0x3132333435363761LL);

	// Decimal text (kcat -H writes text), of any length but exactly
	// 4 (8) bytes that are not all digits.
	h[2] = t_h("kafka_dlt-original-partition", "7");
	h[3] = t_h("kafka_dlt-original-offset", "41");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, 7);
	ck_assert_int_eq(info.offset, 41);
	h[2] = t_h("kafka_dlt-original-partition", "1000");
	h[3] = t_h("kafka_dlt-original-offset", "12345678");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, 1000);
	ck_assert_int_eq(info.offset, 12345678);
	h[2] = t_h("kafka_dlt-original-partition", "2147483648");
	h[3] = t_h("kafka_dlt-original-offset", "9223372036854775807");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, INT64_MAX);
	h[2] = t_h("kafka_dlt-original-partition", "-1");
	h[3] = t_h("kafka_dlt-original-offset", "4 2");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, -1);
	h[2] = t_hb("kafka_dlt-original-partition", part, 4);
	h[3] = t_hb("kafka_dlt-original-offset", off, 8);

	// A key's exception only, with no message: the class alone.
	h[0] = t_h("kafka_dlt-key-exception-fqcn", "a.KeyError");
	ck_assert_int_eq(mri_dlq_parse(h, 1, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_SPRING);
	ck_assert_str_eq(info.reason, "a.KeyError");
	t_str_is(info.topic, NULL);
	ck_assert_int_eq(info.partition, -1);
	// A message only: the message alone.
	h[0] = t_h("kafka_dlt-exception-message", "bad 42");
	ck_assert_int_eq(mri_dlq_parse(h, 1, &info), MR_OK);
	ck_assert_str_eq(info.reason, "bad 42");

	// mailroom's headers win over Spring's on the same record.
	h[0] = t_h(MRI_DLQ_H_TOPIC, "mine");
	ck_assert_int_eq(mri_dlq_parse(h, 12, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_MAILROOM);
	t_str_is(info.topic, "mine");
	ck_assert_ptr_null(info.exception.p);
}
END_TEST

START_TEST(test_parse_connect)
{
	static char         big[3000];
	struct mri_hdr_view h[10];
	struct mri_dlq_info info;

	h[0] = t_h("__connect.errors.topic", "orders");
	h[1] = t_h("__connect.errors.partition", "2");
	h[2] = t_h("__connect.errors.offset", "41");
	h[3] = t_h("__connect.errors.connector.name", "jdbc-sink");
	h[4] = t_h("__connect.errors.task.id", "0");
	h[5] = t_h("__connect.errors.stage", "VALUE_CONVERTER");
	h[6] = t_h("__connect.errors.class.name",
		   "org.apache.kafka.connect.json.JsonConverter");
	h[7] = t_h("__connect.errors.exception.class.name",
		   "org.apache.kafka.connect.errors.DataException");
	h[8] = t_h("__connect.errors.exception.message",
		   "Converting byte[] to Kafka Connect data failed");
	h[9] = t_h("__connect.errors.exception.stacktrace", "trace");
	ck_assert_int_eq(mri_dlq_parse(h, 10, &info), MR_OK);
	ck_assert_int_eq(info.dialect, MRI_DLQ_CONNECT);
	t_str_is(info.topic, "orders");
	ck_assert_int_eq(info.partition, 2);
	ck_assert_int_eq(info.offset, 41);
	t_str_is(info.group, "jdbc-sink");
	ck_assert_int_eq(info.task_id, 0);
	t_str_is(info.stage, "VALUE_CONVERTER");
	t_str_is(info.executing_class,
		 "org.apache.kafka.connect.json.JsonConverter");
	t_str_is(info.stacktrace, "trace");
	ck_assert_str_eq(info.reason,
			 "org.apache.kafka.connect.errors.DataException: "
			 "Converting byte[] to Kafka Connect data failed");
	ck_assert_uint_eq(info.attempts, 0);

	// Connect's -1 for unknown; malformed decimals; an empty topic.
	h[0] = t_h("__connect.errors.topic", "");
	h[1] = t_h("__connect.errors.partition", "-1");
	h[2] = t_h("__connect.errors.offset", "abc");
	h[4] = t_h("__connect.errors.task.id", "+3");
	ck_assert_int_eq(mri_dlq_parse(h, 10, &info), MR_OK);
	t_str_is(info.topic, NULL);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, -1);
	ck_assert_int_eq(info.task_id, -1);
	h[1] = t_h("__connect.errors.partition", "-");
	h[2] = t_h("__connect.errors.offset", "--1");
	ck_assert_int_eq(mri_dlq_parse(h, 10, &info), MR_OK);
	ck_assert_int_eq(info.partition, -1);
	ck_assert_int_eq(info.offset, -1);

	// A long message: the reason is cut to the limit, on a UTF-8
	// boundary ("é" across it).
	memset(big, 'm', sizeof(big));
	h[7] = t_h("__connect.errors.exception.class.name", "E");
	// "E: " is 3 bytes, leaving 1021 for the message, whose bytes 1020
	// and 1021 hold "é": the reason is 1023 bytes.
	memcpy(big + 1020, "\xc3\xa9", 2);
	h[8] = t_hb("__connect.errors.exception.message", big, sizeof(big));
	ck_assert_int_eq(mri_dlq_parse(h, 10, &info), MR_OK);
	ck_assert_uint_eq(info.reason_len, 1023);
	ck_assert_uint_eq(info.message.len, sizeof(big));
	ck_assert_uint_eq(strlen(info.reason), 1023);
	ck_assert_mem_eq(info.reason, "E: mmm", 6);
}
END_TEST

int
main(void)
{
	Suite   *s = suite_create("dlq_record");
	TCase   *tc;
	SRunner *r;
	int      failed;

	tc = tcase_create("fingerprint");
	tcase_add_test(tc, test_normalise);
	tcase_add_test(tc, test_fingerprint_groups);
	tcase_add_test(tc, test_fingerprint_fmt_and_cut_output);
	tcase_add_test(tc, test_utf8_cut);
	suite_add_tcase(s, tc);
	tc = tcase_create("build");
	tcase_add_test(tc, test_build_order);
	tcase_add_test(tc, test_build_reason_cut);
	tcase_add_test(tc, test_build_too_many_headers);
	tcase_add_test(tc, test_build_refused);
	tcase_add_test(tc, test_build_replay);
	suite_add_tcase(s, tc);
	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_mailroom_malformed);
	tcase_add_test(tc, test_parse_spring);
	tcase_add_test(tc, test_parse_connect);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
