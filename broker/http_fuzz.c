/*
 * libFuzzer target for the HTTP API's own parsing (broker/http_parse.h;
 * tests/fuzz/run_http_fuzz.sh builds it, tests/fuzz/replay_main.c replays
 * a corpus without libFuzzer).
 *
 * An input is a request target (a path and maybe a query) up to the first
 * newline, then a body. Then:
 *   - the whole input, as a request head, is parsed: a head taken lies
 *     within the input, and its parts (method, target, headers' names and
 *     values) are strings within it; a refusal is 400, 431 or 505;
 *   - the target is split into segments: each is a string no longer than
 *     the target, and the query's parameters "a" and "group" are read;
 *   - the segments are an admin route's path fields (topic, partition,
 *     offset) set into a copy of the body: a field taken is the segment's
 *     text, or a number from 0 for partition and offset, and one the body
 *     has already is refused; a refusal says why and leaves the copy as
 *     it was;
 *   - the query is a route's typed parameters: each one taken is one of
 *     the route's, once, of its type, and a string is its value as
 *     mri_http_query_get reads it, no longer than the query; a refusal
 *     says why and sets nothing;
 *   - each header's name and each segment, as a raw publish's header,
 *     becomes nothing, Content-Type's name or a lower-case ce_* or mr_*
 *     name of the same length (never ce_id nor ce_specversion) that fits
 *     the buffer;
 *   - the body, when it is a JSON object, is made into a PUBLISH frame to
 *     topic "t": a frame that is made must decode (proto/frame.c, the
 *     front door's own decoder) into as many messages as the body has; a
 *     body that is refused must say why;
 *   - its "handles", when they are taken, come back sorted, each once;
 *   - its members, as a fetch's or a settle's: an integer taken lies in
 *     its range and is the member's, a refused one says why and leaves
 *     the output alone; members are refused exactly when one is not
 *     known.
 * Any failure aborts.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/http_parse.h"
#include "mailroom/envelope.h"
#include "mailroom/error.h"
#include "proto/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The record header a raw publish makes of header \p name: none,
 * Content-Type's, or a lower-case ce_* or mr_* name of the same length. */
static void
fuzz__raw_name(const char *name)
{
	static const char *const upper = "-ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char                     buf[MRI_HDR_NAME_MAX + 1], small[8];
	const char              *r = mri_http_raw_name(name, buf, sizeof(buf));
	size_t                   n = strlen(name);

	if (r != NULL && r != buf &&
	    (strcmp(r, MR_HEADER_CONTENT_TYPE) != 0 ||
	     strcasecmp(name, "Content-Type") != 0))
		abort();
	if (r == buf &&
	    (strlen(buf) != n || n >= sizeof(buf) ||
	     (strncmp(buf, "ce_", 3) != 0 && strncmp(buf, "mr_", 3) != 0) ||
	     strcmp(buf, "ce_id") == 0 || strcmp(buf, "ce_specversion") == 0 ||
	     buf[strcspn(buf, upper)] != '\0'))
		abort();
	r = mri_http_raw_name(name, small, sizeof(small));
	if (r == small && n >= sizeof(small))
		abort();
}

/* The segments as dlq.show's path fields, into a copy of \p body. */
static void
fuzz__path_fields(json_t *body, char **seg, size_t n)
{
	static const char *const field[8] = {NULL, NULL,	"topic",
					     NULL, "partition", "offset"};
	static const char *const digits = " \t\n\v\f\r+-0123456789";
	json_t *orig = json_is_object(body) ? body : NULL;
	json_t *req  = orig != NULL ? json_deep_copy(orig) : json_object();
	size_t  set  = 0;
	char    why[1024] = "";
	int     rc;

	if (req == NULL)
		return;
	rc = mri_http_path_fields(req, field, seg, n, why, sizeof(why));
	if (rc == MR_EINVAL) {
		// Said why, and left the request as it was.
		if (why[0] == '\0' ||
		    (orig != NULL ? !json_equal(req, orig)
				  : json_object_size(req) != 0))
			abort();
	} else if (rc != MR_OK && rc != MR_ENOMEM) {
		abort();
	}
	// A field taken is its segment: text, or a number from 0 (strtoll
	// takes leading blanks and a sign).
	for (size_t i = 0; rc == MR_OK && i < n; i++) {
		const char *s = seg[i];
		json_t     *v;

		if (field[i] == NULL)
			continue;
		set++;
		v = json_object_get(req, field[i]);
		if (i == 2 ? !json_is_string(v) ||
				 strcmp(json_string_value(v), s) != 0
			   : !json_is_integer(v) || json_integer_value(v) < 0 ||
				 s[strspn(s, digits)] != '\0')
			abort();
	}
	if (rc == MR_OK &&
	    json_object_size(req) != (orig ? json_object_size(orig) : 0) + set)
		abort();
	json_decref(req);
}

/* The query as typed parameters. */
static void
fuzz__params(const char *query)
{
	static const char *const params[] = {"a:i", "group:s", "refresh:b",
					     "offset:i", NULL};
	json_t                  *req = json_object(), *v;
	const char              *name;
	char                     why[1024] = "", *text;
	bool                     bad;
	int                      rc;

	if (req == NULL)
		return;
	rc = mri_http_params(query, params, req, why, sizeof(why));
	if (rc == MR_EINVAL && (why[0] == '\0' || json_object_size(req) != 0))
		abort();
	if (rc != MR_OK && rc != MR_EINVAL && rc != MR_ENOMEM)
		abort();
	json_object_foreach(req, name, v) {
		const char *const *q = params;

		while (*q != NULL && (strncmp(*q, name, strlen(name)) != 0 ||
				      (*q)[strlen(name)] != ':'))
			q++;
		if (*q == NULL)
			abort();
		switch ((*q)[strlen(name) + 1]) {
		case 'i':
			if (!json_is_integer(v))
				abort();
			break;
		case 'b':
			if (!json_is_boolean(v))
				abort();
			break;
		default:
			text = mri_http_query_get(query, name, &bad);
			if (!json_is_string(v) || text == NULL ||
			    strcmp(text, json_string_value(v)) != 0 ||
			    json_string_length(v) != strlen(text) ||
			    strlen(text) > strlen(query))
				abort();
			free(text);
		}
	}
	json_decref(req);
}

static void
fuzz__target(const char *uri, size_t len, json_t *body)
{
	char  *seg[8], *query, *v;
	size_t n;
	bool   bad;

	if (mri_http_uri_split(uri, seg, 8, &n, &query) != MR_OK)
		return;
	for (size_t i = 0; i < n; i++)
		if (seg[i][0] == '\0' || strlen(seg[i]) > len)
			abort();
	fuzz__path_fields(body, seg, n);
	for (size_t i = 0; i < n; i++) {
		fuzz__raw_name(seg[i]);
		free(seg[i]);
	}
	if (query != NULL) {
		free(mri_http_query_get(query, "a", &bad));
		v = mri_http_query_get(query, "group", &bad);
		if (v != NULL && strlen(v) > len)
			abort();
		free(v);
		fuzz__params(query);
		free(query);
	}
}

static void
fuzz__publish(json_t *body)
{
	struct mri_wbuf      w;
	struct mri_frame_hdr hdr;
	struct mri_pub_view *views = NULL;
	uint32_t             count;
	const char          *why;
	int64_t              bad;
	char                 reason[512] = "";
	json_t              *msgs        = json_object_get(body, "messages");
	int                  rc;

	mri_wbuf_init(&w);
	rc = mri_http_publish_encode(&w, "t", body, reason, sizeof(reason));
	if (rc == MR_OK) {
		if (mri_frame_parse_hdr(w.data, w.len, &hdr, &why) != MR_OK ||
		    mri_publish_decode(w.data + MRI_FRAME_HDR_LEN, hdr.body_len,
				       &views, &count, &why,
				       &bad) != MR_OK ||
		    count != (msgs != NULL ? json_array_size(msgs) : 1))
			abort();
		free(views);
	} else if (rc != MR_ENOMEM && reason[0] == '\0') {
		abort();
	}
	mri_wbuf_fini(&w);
}

static void
fuzz__handles(json_t *arr)
{
	uint64_t *v;
	size_t    n;
	char      why[256];

	if (mri_http_handles(arr, &v, &n, why, sizeof(why)) != MR_OK)
		return;
	if (n == 0 || n > json_array_size(arr))
		abort();
	for (size_t i = 1; i < n; i++)
		if (v[i - 1] >= v[i])
			abort();
	free(v);
}

/* \p body's members as a fetch's or a settle's. */
static void
fuzz__members(json_t *body)
{
	static const char *const known[] = {"max_messages", "max_bytes",
					    "wait_ms", NULL};
	static const struct {
		const char *name;
		long long   lo, hi;
	} m[] = {
	    {"max_messages", 1, 100000},
	    {"max_bytes", 0, UINT32_MAX},
	    {"extend_ms", 1, UINT32_MAX},
	    {"n", LLONG_MIN, LLONG_MAX},
	    {"r", 5, -5}, /* an empty range takes nothing */
	};
	const char *name;
	json_t     *v;
	bool        unknown = false;
	char        why[256];

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		long long out = -7;
		int       rc;

		why[0] = '\0';
		v      = json_object_get(body, m[i].name);
		rc     = mri_http_int_member(body, m[i].name, m[i].lo, m[i].hi,
					     &out, why, sizeof(why));
		if (rc == MR_OK && v != NULL) {
			if (out < m[i].lo || out > m[i].hi ||
			    out != json_integer_value(v))
				abort();
		} else if (rc == MR_OK) {
			if (out != -7)
				abort();
		} else if (rc != MR_EINVAL || out != -7 || why[0] == '\0' ||
			   v == NULL) {
			abort();
		}
	}
	json_object_foreach(body, name, v) {
		size_t k = 0;

		while (known[k] != NULL && strcmp(known[k], name) != 0)
			k++;
		unknown = unknown || known[k] == NULL;
	}
	why[0] = '\0';
	if ((mri_http_only(body, known, why, sizeof(why)) != MR_OK) !=
		unknown ||
	    (unknown && why[0] == '\0'))
		abort();
}

static void
fuzz__head(const uint8_t *data, size_t size)
{
	char                *buf = malloc(size + 1);
	struct mri_http_head h;
	size_t               len = 0;
	int                  st;

	if (buf == NULL)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	st = mri_http_parse_head(buf, size, &h, &len);
	if (st == 200) {
		if (len == 0 || len > size || h.nhdr > MRI_HTTP_HEADERS_MAX ||
		    h.method < buf || h.target >= buf + len ||
		    strlen(h.method) == 0 || strlen(h.target) == 0)
			abort();
		for (size_t i = 0; i < h.nhdr; i++)
			if (h.hdr[i].name < buf ||
			    h.hdr[i].value >= buf + len ||
			    strlen(h.hdr[i].value) >= len)
				abort();
		(void)mri_http_head_get(&h, "content-length");
		for (size_t i = 0; i < h.nhdr; i++)
			fuzz__raw_name(h.hdr[i].name);
		// A loopback Host is made of digits, dots, colons, brackets
		// and "localhost" alone.
		for (size_t i = 0; i < h.nhdr; i++) {
			const char *v = h.hdr[i].value;

			if (mri_http_host_loopback(v) &&
			    v[strspn(v, "0123456789.:[]abcdefABCDEF")] !=
				'\0' &&
			    strncasecmp(v, "localhost", 9) != 0)
				abort();
		}
	} else if (st != 0 && st != 400 && st != 431 && st != 505) {
		abort();
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl   = memchr(data, '\n', size);
	size_t         len  = nl != NULL ? (size_t)(nl - data) : size;
	char          *uri  = malloc(len + 1);
	json_t        *body = NULL;

	fuzz__head(data, size);
	if (uri == NULL)
		return 0;
	memcpy(uri, data, len);
	uri[len] = '\0';
	if (nl != NULL)
		body = json_loadb((const char *)nl + 1, size - len - 1, 0,
				  NULL);
	fuzz__target(uri, strlen(uri), body);
	free(uri);
	if (json_is_object(body)) {
		fuzz__publish(body);
		fuzz__handles(json_object_get(body, "handles"));
		fuzz__members(body);
	}
	json_decref(body);
	return 0;
}
