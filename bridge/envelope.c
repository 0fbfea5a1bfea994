#include "envelope.h"

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

int
mri_envelope_headers(const struct mri_pub_view *m, const char *id,
		     size_t id_len, const struct mri_envelope_defaults *d,
		     rd_kafka_headers_t **out, const char **why)
{
	rd_kafka_headers_t *hs;
	struct mri_hdr_view h;
	const uint8_t      *pos;
	int                 has_source = 0, has_type = 0, has_time = 0;
	int                 has_ct = 0;

	pos = m->hdrs;
	for (uint16_t i = 0; i < m->hdr_count; i++) {
		mri_pub_next_hdr(&pos, &h);
		if (envelope__is(&h, MRI_H_SPECVERSION) ||
		    envelope__is(&h, MRI_H_ID)) {
			*why = "ce_specversion and ce_id are set by mailroomd: "
			       "give the id in the message's id field";
			return MR_EINVAL;
		}
		has_source |= envelope__is(&h, MRI_H_SOURCE);
		has_type |= envelope__is(&h, MRI_H_TYPE);
		has_time |= envelope__is(&h, MRI_H_TIME);
		has_ct |= envelope__is(&h, MRI_H_CONTENT_TYPE);
	}

	hs = rd_kafka_headers_new((size_t)m->hdr_count + 6);
	rd_kafka_header_add(hs, MRI_H_SPECVERSION, -1, MRI_CE_SPECVERSION, 3);
	rd_kafka_header_add(hs, MRI_H_ID, -1, id, (ssize_t)id_len);
	if (!has_source)
		rd_kafka_header_add(hs, MRI_H_SOURCE, -1, d->source, -1);
	if (!has_type)
		rd_kafka_header_add(hs, MRI_H_TYPE, -1, d->type, -1);
	if (!has_time)
		rd_kafka_header_add(hs, MRI_H_TIME, -1, d->time, -1);
	if (!has_ct && d->content_type != NULL && d->content_type[0] != '\0')
		rd_kafka_header_add(hs, MRI_H_CONTENT_TYPE, -1,
				    d->content_type, -1);
	pos = m->hdrs;
	for (uint16_t i = 0; i < m->hdr_count; i++) {
		mri_pub_next_hdr(&pos, &h);
		rd_kafka_header_add(hs, h.name, h.name_len, h.value,
				    (ssize_t)h.value_len);
	}
	*out = hs;
	return MR_OK;
}
