#include "envelope.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mailroom/error.h"

void
mri_time_fmt(long long ms, char out[MRI_TIME_STRLEN + 1])
{
	time_t    s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	char      buf[64];

	// Through a larger buffer: the compiler cannot bound struct tm.
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	memcpy(out, buf, MRI_TIME_STRLEN);
	out[MRI_TIME_STRLEN] = '\0';
}

/* The digits s[0..n) as a number, or -1 if one is not a digit. */
static int
envelope__digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
mri_time_parse(const char *s, size_t len, long long *ms)
{
	static const char  shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	static const int   mdays[] = {31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31};
	int                y, mo, d, h, mi, sec, milli, leap;
	long long          days;

	if (s == NULL || len != MRI_TIME_STRLEN)
		return MR_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (shape[i] != 'd' && s[i] != shape[i])
			return MR_EINVAL;
	y     = envelope__digits(s, 4);
	mo    = envelope__digits(s + 5, 2);
	d     = envelope__digits(s + 8, 2);
	h     = envelope__digits(s + 11, 2);
	mi    = envelope__digits(s + 14, 2);
	sec   = envelope__digits(s + 17, 2);
	milli = envelope__digits(s + 20, 3);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 59 || milli < 0)
		return MR_EINVAL;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] + (mo == 2 && leap))
		return MR_EINVAL;
	// Days since 1970-01-01 of a proleptic Gregorian date (the civil
	// calendar's days_from_civil: years begin in March).
	{
		int yy  = mo <= 2 ? y - 1 : y;
		int era = yy / 400;
		int yoe = yy - era * 400;
		int mp  = mo > 2 ? mo - 3 : mo + 9;
		int doy = (153 * mp + 2) / 5 + d - 1;
		int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

		days = (long long)era * 146097 + doe - 719468;
	}
	*ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + milli;
	return MR_OK;
}

int
mri_envelope_id_valid(const char *id, size_t len)
{
	if (len == 0 || len > MRI_ID_MAX)
		return MR_EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return MR_EINVAL;
	return MR_OK;
}

static int
envelope__is(const struct mri_hdr_view *h, const char *name)
{
	size_t n = strlen(name);

	return h->name_len == n && memcmp(h->name, name, n) == 0;
}

/* The headers with a place of their own, in their order; the rest follow
 * in the publisher's order. The first three have a default. */
static const char *const envelope__placed[] = {
    MRI_H_SOURCE,       MRI_H_TYPE,         MRI_H_TIME,
    MRI_H_CONTENT_TYPE, MR_HEADER_REPLY_TO, MR_HEADER_CORRELATION_ID,
};
#define ENVELOPE__NPLACED                                                     \
	(sizeof(envelope__placed) / sizeof(envelope__placed[0]))

int
mri_envelope_make(const struct mri_hdr_view *hs, uint16_t n, const char *id,
		  size_t id_len, const struct mri_envelope_defaults *d,
		  rd_kafka_headers_t **out, const char **why)
{
	rd_kafka_headers_t *hs_out;
	int                 at[ENVELOPE__NPLACED]; /* index given, or -1 */
	const char         *defs[ENVELOPE__NPLACED] = {d->source, d->type,
							d->time,
							d->content_type};

	for (size_t k = 0; k < ENVELOPE__NPLACED; k++)
		at[k] = -1;
	for (uint16_t i = 0; i < n; i++) {
		if (envelope__is(&hs[i], MRI_H_SPECVERSION) ||
		    envelope__is(&hs[i], MRI_H_ID)) {
			*why = "ce_specversion and ce_id are set by mailroomd: "
			       "give the id in the message's id field";
			return MR_EINVAL;
		}
		for (size_t k = 0; k < ENVELOPE__NPLACED; k++)
			if (at[k] < 0 &&
			    envelope__is(&hs[i], envelope__placed[k])) {
				at[k] = i;
				break;
			}
	}

	// librdkafka allocates the list and each header: size the list
	// exactly, so that it never grows.
	hs_out = rd_kafka_headers_new((size_t)n + (d->lean ? 1 : 6));
	if (!d->lean)
		rd_kafka_header_add(hs_out, MRI_H_SPECVERSION,
				    sizeof(MRI_H_SPECVERSION) - 1,
				    MRI_CE_SPECVERSION,
				    sizeof(MRI_CE_SPECVERSION) - 1);
	rd_kafka_header_add(hs_out, MRI_H_ID, sizeof(MRI_H_ID) - 1, id,
			    (ssize_t)id_len);
	for (size_t k = 0; k < ENVELOPE__NPLACED; k++) {
		if (at[k] >= 0)
			rd_kafka_header_add(hs_out, hs[at[k]].name,
					    hs[at[k]].name_len, hs[at[k]].value,
					    (ssize_t)hs[at[k]].value_len);
		else if (!d->lean && defs[k] != NULL && defs[k][0] != '\0')
			rd_kafka_header_add(hs_out, envelope__placed[k], -1,
					    defs[k], -1);
	}
	for (int i = 0; i < (int)n; i++) {
		bool placed = false;

		for (size_t k = 0; k < ENVELOPE__NPLACED && !placed; k++)
			placed = at[k] == i;
		if (!placed)
			rd_kafka_header_add(hs_out, hs[i].name, hs[i].name_len,
					    hs[i].value,
					    (ssize_t)hs[i].value_len);
	}
	*out = hs_out;
	return MR_OK;
}
