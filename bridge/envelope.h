/*
 * The record envelope (docs/PROTOCOL.md, "The record envelope"): key,
 * payload, and headers in CloudEvents' Kafka binary mode, then mailroom's
 * own, each in its documented place whether the publisher gave it or
 * mailroomd's default fills it, then the rest of the publisher's in their
 * order.
 *
 * Thread safety: pure functions, thread-safe.
 */
#ifndef MRI_ENVELOPE_H
#define MRI_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "mailroom/envelope.h"
#include "mailroom/error.h"
#include "proto/header.h"

#define MRI_H_SPECVERSION MR_HEADER_SPECVERSION
#define MRI_H_ID MR_HEADER_ID
#define MRI_H_SOURCE MR_HEADER_SOURCE
#define MRI_H_TYPE MR_HEADER_TYPE
#define MRI_H_TIME MR_HEADER_TIME
#define MRI_H_CONTENT_TYPE MR_HEADER_CONTENT_TYPE

#define MRI_CE_SPECVERSION "1.0"
#define MRI_TIME_STRLEN 24 /* 2026-11-25T17:30:54.123Z */

struct mri_envelope_defaults {
	const char *source;       /* ce_source when the publisher gives none */
	const char *type;         /* ce_type when the publisher gives none */
	const char *content_type; /* content-type, likewise */
	const char *time;         /* ce_time: now, formatted by mri_time_fmt */
	/* The lean envelope (producer.envelope=lean): ce_id and what the
	 * publisher set, nothing else; no ce_specversion, and none of the
	 * defaults above is written. */
	bool        lean;
};

/** @brief Format \p ms since the epoch as RFC 3339 UTC with milliseconds. */
void mri_time_fmt(long long ms, char out[MRI_TIME_STRLEN + 1]);

/**
 * @brief Read a time written by mri_time_fmt: exactly
 *        `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 bytes, years 1970-9999, a real
 *        date, seconds 00-59), into ms since the epoch.
 * @returns MR_OK and *ms, or MR_EINVAL (*ms untouched) for anything else.
 */
int mri_time_parse(const char *s, size_t len, long long *ms);

/** @returns MR_OK or MR_EINVAL: an id is 1-255 bytes, none below 0x20. */
int mri_envelope_id_valid(const char *id, size_t len);

/**
 * @brief Build the headers of a record whose message id is \p id (the
 *        publisher's, or one assigned to it) from the publisher's \p n
 *        headers \p hs (borrowed, read during the call only): in full
 *        CloudEvents (ce_specversion, ce_id, then the placed headers, the
 *        publisher's or \p d's defaults), or, when d->lean, ce_id and only
 *        the headers the publisher gave (placed ones first, the same
 *        order).
 * @returns MR_OK and *out (new: rd_kafka_headers_destroy it, or hand it to
 *          the producer), or MR_EINVAL with a static sentence in \p why when
 *          the publisher set a header that only mailroomd sets
 *          (ce_specversion, ce_id).
 */
int mri_envelope_make(const struct mri_hdr_view *hs, uint16_t n,
		      const char *id, size_t id_len,
		      const struct mri_envelope_defaults *d,
		      rd_kafka_headers_t **out, const char **why);

#endif
