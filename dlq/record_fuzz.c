/*
 * libFuzzer target for the dead-letter headers (tests/fuzz/run_dlq_fuzz.sh
 * builds it; tests/fuzz/replay_main.c replays a corpus without libFuzzer).
 *
 * An input is a record's headers, one after the other: a name's length
 * (1 byte) and the name, then a value's length (2 bytes, big-endian;
 * 0xffff for a null value) and the value; a header cut short ends the
 * list, at most 300 of them (more than a record may carry). Then:
 *   - mri_dlq_parse reads them: every string it returns must lie within
 *     the input (read byte by byte, for AddressSanitizer), the reason
 *     within its bound, the numbers within their ranges, and a computed
 *     fingerprint that of the reason;
 *   - mri_dlq_build quarantines a record with these headers (its reason
 *     the first header's value): at most MRI_HDR_COUNT_MAX headers, the
 *     original's kept in order less their mr_dlq_* ones, and mailroom's
 *     read back as they were given;
 *   - mri_dlq_build_replay likewise, with its count read back;
 *   - the whole input, as a reason, normalises to at most 3 times its
 *     length, and its fingerprint is the hash of that form.
 * Any failure aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/journal.h"
#include "dlq/record.h"
#include "mailroom/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ__HDRS 300

static volatile uint8_t record_fuzz__sink;

/* Read every byte of [p, p + n), which must lie within [lo, hi). */
static void
record_fuzz__touch(const void *p, size_t n, const void *lo, const void *hi)
{
	const uint8_t *b = p;
	uint8_t        x = 0;

	if (n == 0)
		return;
	if (b == NULL || b < (const uint8_t *)lo || b > (const uint8_t *)hi ||
	    n > (size_t)((const uint8_t *)hi - b))
		abort();
	for (size_t i = 0; i < n; i++)
		x ^= b[i];
	record_fuzz__sink ^= x;
}

static size_t
record_fuzz__headers(const uint8_t *d, size_t size, struct mri_hdr_view *h)
{
	size_t at = 0, n = 0;

	while (n < FUZZ__HDRS && at < size) {
		size_t   nl = d[at], vl;
		bool     null;

		if (size - at < 1 + nl + 2)
			break;
		h[n].name     = (const char *)d + at + 1;
		h[n].name_len = (uint16_t)nl;
		at += 1 + nl;
		vl   = (size_t)d[at] << 8 | d[at + 1];
		null = vl == 0xffff;
		vl   = null ? 0 : vl;
		at += 2;
		if (size - at < vl)
			break;
		h[n].value     = null ? NULL : d + at;
		h[n].value_len = (uint32_t)vl;
		at += vl;
		n++;
	}
	return n;
}

static void
record_fuzz__str(struct mri_dlq_str s, const uint8_t *d, size_t size)
{
	if (s.p == NULL && s.len > 0)
		abort();
	record_fuzz__touch(s.p, s.len, d, d + size);
}

static bool
record_fuzz__is(const struct mri_hdr_view *h, const char *name)
{
	return h->name_len == strlen(name) &&
	       memcmp(h->name, name, h->name_len) == 0;
}

static bool
record_fuzz__ours(const struct mri_hdr_view *h)
{
	return h->name_len >= 7 && memcmp(h->name, MRI_DLQ_H_PREFIX, 7) == 0;
}

static void
record_fuzz__parse(const struct mri_hdr_view *h, size_t n, const uint8_t *d,
		   size_t size)
{
	struct mri_dlq_info info;

	if (mri_dlq_parse(h, n, &info) != MR_OK)
		abort();
	if (info.dialect > MRI_DLQ_CONNECT || info.partition < -1 ||
	    info.offset < -1 || info.first_failure_ms < -1 ||
	    info.last_failure_ms < -1 || info.time_ms < -1 ||
	    info.orig_time_ms < -1 || info.task_id < -1 ||
	    info.reason_len > MRI_DLQ_REASON_MAX ||
	    info.reason[info.reason_len] != '\0')
		abort();
	record_fuzz__str(info.topic, d, size);
	record_fuzz__str(info.group, d, size);
	record_fuzz__str(info.exception, d, size);
	record_fuzz__str(info.message, d, size);
	record_fuzz__str(info.cause, d, size);
	record_fuzz__str(info.stacktrace, d, size);
	record_fuzz__str(info.stage, d, size);
	record_fuzz__str(info.executing_class, d, size);
	if (info.dialect != MRI_DLQ_MAILROOM &&
	    info.fingerprint !=
		mri_dlq_fingerprint(info.reason, info.reason_len))
		abort();
}

/* \p b holds \p h's headers less mailroom's, in order, up to \p b's
 * first mr_dlq_* header; and \p own of mailroom's after them. */
static size_t
record_fuzz__kept(const struct mri_dlq_hdrs *b, const struct mri_hdr_view *h,
		  size_t n)
{
	size_t k = 0;

	if (b->n > MRI_HDR_COUNT_MAX)
		abort();
	for (size_t i = 0; i < n && k < b->n; i++) {
		if (record_fuzz__ours(&h[i]))
			continue;
		if (record_fuzz__ours(&b->h[k]))
			break;
		if (b->h[k].name != h[i].name || b->h[k].value != h[i].value)
			abort();
		k++;
	}
	for (size_t i = k; i < b->n; i++)
		if (!record_fuzz__ours(&b->h[i]))
			abort();
	return k;
}

static void
record_fuzz__build(const struct mri_hdr_view *h, size_t n)
{
	static struct mri_dlq_hdrs b;
	struct mri_dlq_info        info;
	const char                *reason = n > 0 ? h[0].value : NULL;
	size_t                     rlen   = n > 0 ? h[0].value_len : 0;
	struct mri_dlq_orig        o      = {"t", 1, 1, 2, h, n};
	struct mri_dlq_failure     f      = {.group            = "g",
					     .group_len        = 1,
					     .attempts         = 3,
					     .first_failure_ms = 5,
					     .last_failure_ms  = 6,
					     .time_ms          = 7,
					     .reason           = reason,
					     .reason_len       = rlen,
					     .replays          = 4};
	size_t                     cut, kept, drop = 0;

	if (mri_dlq_build(&b, &o, &f) != MR_OK)
		abort();
	kept = record_fuzz__kept(&b, h, n);
	for (size_t i = 0; i < n; i++)
		drop += !record_fuzz__ours(&h[i]);
	if (kept + b.dropped != drop || b.n != kept + 11 + (b.dropped > 0))
		abort();
	cut = mri_dlq_utf8_cut(reason, rlen, MRI_DLQ_REASON_MAX);
	if (mri_dlq_parse(b.h, b.n, &info) != MR_OK ||
	    info.dialect != MRI_DLQ_MAILROOM || info.partition != 1 ||
	    info.offset != 2 || info.attempts != 3 ||
	    info.first_failure_ms != 5 || info.last_failure_ms != 6 ||
	    info.time_ms != 7 || info.replays != 4 ||
	    info.dropped_headers != b.dropped ||
	    info.fingerprint != b.fingerprint ||
	    info.fingerprint != mri_dlq_fingerprint(reason, cut) ||
	    info.reason_len != cut ||
	    (cut > 0 && memcmp(info.reason, reason, cut) != 0) ||
	    info.topic.len != 1 || info.group.len != 1)
		abort();

	if (mri_dlq_build_replay(&b, h, n, 5) != MR_OK)
		abort();
	kept = record_fuzz__kept(&b, h, n);
	if (kept + b.dropped != drop || b.n != kept + 1 + (b.dropped > 0) ||
	    !record_fuzz__is(&b.h[kept], MRI_DLQ_H_REPLAYS))
		abort();
	if (mri_dlq_parse(b.h, b.n, &info) != MR_OK || info.replays != 5)
		abort();
}

static void
record_fuzz__reason(const uint8_t *d, size_t size)
{
	size_t room = 3 * size + 1;
	char  *out  = malloc(room);
	size_t n;

	if (out == NULL)
		return;
	n = mri_dlq_normalise((const char *)d, size, out, room);
	if (n > 3 * size || out[n] != '\0' ||
	    mri_journal_hash(MRI_JOURNAL_HASH_INIT, out, n) !=
		mri_dlq_fingerprint((const char *)d, size))
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mri_hdr_view h[FUZZ__HDRS];
	size_t                     n = record_fuzz__headers(data, size, h);

	record_fuzz__parse(h, n, data, size);
	record_fuzz__build(h, n);
	record_fuzz__reason(data, size);
	return 0;
}
