/*
 * The HTTP API's own parsing (docs/HTTP.md), apart from nng so that it can
 * be fuzzed (broker/http_fuzz.c): a request's path and query, an admin
 * route's typed path fields and query parameters, a raw publish's header
 * names, a publish's JSON made into a PUBLISH frame, a fetch's or a
 * settle's members, and a settle's handles. Each refuses what it cannot
 * take with an mr_err and a sentence naming the problem, and nothing of a
 * refused input is used.
 *
 * Thread safety: no shared state.
 */
#ifndef MRI_HTTP_PARSE_H
#define MRI_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/frame.h"

/* A request's head: its line's parts and headers, NUL-terminated in the
 * buffer parsed (mri_http_parse_head). */
#define MRI_HTTP_HEADERS_MAX 64
struct mri_http_head {
	const char *method;
	const char *target;
	int         minor; /* HTTP/1.minor */
	size_t      nhdr;
	struct {
		const char *name;
		const char *value; /* without its surrounding blanks */
	} hdr[MRI_HTTP_HEADERS_MAX];
};

/**
 * @returns whether \p host (a URL's host name: a name, an IPv4 address
 *          or an IPv6 one, bracketed or not) is a loopback address:
 *          127.0.0.0/8 in dotted decimal, ::1 (or ::ffff:127.x.y.z), or
 *          "localhost". Nothing else, so that a name made to look like
 *          one ("127.0.0.1.example.com") is not taken for it.
 */
bool mri_http_loopback(const char *host);

/** @returns whether a Host header's value (host, then :port or not) names
 *           a loopback address (mri_http_loopback). */
bool mri_http_host_loopback(const char *value);

/**
 * @brief Parse the request head at the start of \p buf (\p len bytes; it
 *        is written to: NULs end each part).
 * @returns 0 when the head is not complete yet (no blank line); else its
 *          length (through the blank line) in *head_len and 200, or the
 *          status to refuse it with: 400 (malformed), 431 (more than
 *          MRI_HTTP_HEADERS_MAX headers), 505 (not HTTP/1.0 or 1.1).
 */
int mri_http_parse_head(char *buf, size_t len, struct mri_http_head *h,
			size_t *head_len);

/** @returns header \p name's value (case-insensitive; the first), or
 *           NULL. */
const char *mri_http_head_get(const struct mri_http_head *h,
			      const char *name);

/** @returns \p n bytes of \p s percent-decoded (and, in a query, '+' as a
 *           space), new (free it); NULL when out of memory or malformed
 *           (a '%' not followed by two hex digits, or an encoded NUL). */
char *mri_http_pct_decode(const char *s, size_t n, bool query);

/**
 * @brief Split \p uri (a request's target: a path, maybe a query) into
 *        its non-empty segments, each percent-decoded (new, in \p seg),
 *        and its query (new, undecoded, in *query; NULL when none).
 * @returns MR_OK; MR_ENOENT when it has more than \p max segments;
 *          MR_EINVAL when one is malformed; MR_ENOMEM. On failure nothing
 *          is left allocated.
 */
int mri_http_uri_split(const char *uri, char **seg, size_t max, size_t *n,
		       char **query);

/** @returns the value of \p name in \p query (percent-decoded, new: free
 *           it; "" for a name without '='), or NULL when absent or
 *           malformed (*bad set then). */
char *mri_http_query_get(const char *query, const char *name, bool *bad);

/**
 * @brief The query parameters of an admin route into \p req (a JSON
 *        object). Each of \p query's (undecoded, as mri_http_uri_split
 *        gives it; NULL or "" for none) must be one of \p params, each
 *        "name:t" (NULL-terminated), and come once; its value is
 *        percent-decoded and typed by t: 'i' an integer (decimal, as
 *        strtoll reads it), 'b' true or false, 's' UTF-8 text.
 * @returns MR_OK; MR_EINVAL with a sentence in \p why (a parameter
 *          unknown, given twice or malformed, a value not of its type,
 *          text not UTF-8); MR_ENOMEM. On failure \p req is as it was.
 */
int mri_http_params(const char *query, const char *const *params,
		    json_t *req, char *why, size_t why_size);

/**
 * @brief The fields an admin route's path names into \p req (a JSON
 *        object, maybe the request's body): segment \p seg[i]
 *        (percent-decoded, \p nseg of them) is field \p field[i], or
 *        none when that is NULL. "partition" and "offset" are integers
 *        from 0 (decimal, as strtoll reads them), the others UTF-8 text.
 * @returns MR_OK; MR_EINVAL with a sentence in \p why (a field \p req
 *          has already, a number that is not one from 0, text not
 *          UTF-8); MR_ENOMEM. On failure \p req is as it was.
 */
int mri_http_path_fields(json_t *req, const char *const *field,
			 char *const *seg, size_t nseg, char *why,
			 size_t why_size);

/**
 * @brief The record header that HTTP header \p name of a raw publish
 *        becomes (CloudEvents' Kafka binding: ce-type is ce_type): every
 *        ce-* but ce-id (the message id) and ce-specversion (mailroomd's)
 *        and every mr-*, lower-cased with '-' made '_', into \p buf
 *        (\p size bytes); Content-Type is MR_HEADER_CONTENT_TYPE.
 * @returns the record header's name (\p buf, or a constant); NULL for
 *          any other header, or one too long for \p buf.
 */
const char *mri_http_raw_name(const char *name, char *buf, size_t size);

/**
 * @brief Member \p name of \p b (a JSON object), an integer from \p lo to
 *        \p hi, into *out; *out is left alone when \p b has no such
 *        member.
 * @returns MR_OK, or MR_EINVAL with a sentence in \p why (*out left
 *          alone).
 */
int mri_http_int_member(json_t *b, const char *name, long long lo,
			long long hi, long long *out, char *why,
			size_t why_size);

/** @returns MR_OK when every member of \p b (a JSON object) is named in
 *           \p known (NULL-terminated); else MR_EINVAL with a sentence
 *           naming the first that is not in \p why. */
int mri_http_only(json_t *b, const char *const *known, char *why,
		  size_t why_size);

/**
 * @brief A whole PUBLISH frame into \p w for \p body, a message object or
 *        {"messages": [...]}, to \p topic (checked).
 * @returns MR_OK; MR_EINVAL or MR_ETOOBIG with a sentence in \p why;
 *          MR_ENOMEM.
 */
int mri_http_publish_encode(struct mri_wbuf *w, const char *topic,
			    json_t *body, char *why, size_t why_size);

/**
 * @brief The handles of \p arr (strings of digits or integers, 1 to
 *        MRI_SETTLE_RANGES_MAX of them), sorted and each once, into *out
 *        (new: free it), *n of them.
 * @returns MR_OK, MR_EINVAL with a sentence in \p why, or MR_ENOMEM.
 */
int mri_http_handles(json_t *arr, uint64_t **out, size_t *n, char *why,
		     size_t why_size);

#endif
