#include "http_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "mailroom/envelope.h"
#include "mailroom/error.h"
#include "proto/consume.h"
#include "proto/header.h"

/* ---- loopback names ---- */

bool
mri_http_loopback(const char *host)
{
	struct in_addr  a4;
	struct in6_addr a6;
	char            v6[INET6_ADDRSTRLEN];
	size_t          n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(v6))
			return false;
		memcpy(v6, host + 1, n - 2);
		v6[n - 2] = '\0';
		host      = v6;
	}
	if (inet_pton(AF_INET6, host, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a6))
		return a6.s6_addr[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(&a6);
}

bool
mri_http_host_loopback(const char *value)
{
	char   name[INET6_ADDRSTRLEN + 2];
	size_t n;

	if (value[0] == '[') {
		n = strcspn(value, "]");
		if (value[n] != ']')
			return false;
		n++;
	} else {
		n = strcspn(value, ":");
	}
	// Nothing after the name, or a port.
	if (n >= sizeof(name) ||
	    (value[n] != '\0' &&
	     (value[n] != ':' || value[n + 1] == '\0' ||
	      value[n + 1 + strspn(value + n + 1, "0123456789")] != '\0')))
		return false;
	memcpy(name, value, n);
	name[n] = '\0';
	return mri_http_loopback(name);
}

/* ---- the request head ---- */

/* A token's characters (RFC 9110: a method, a header's name). */
static bool
http__tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
mri_http_parse_head(char *buf, size_t len, struct mri_http_head *h,
		    size_t *head_len)
{
	char  *end = NULL, *p, *line, *eol;
	size_t i;

	// The blank line that ends the head (CRLF CRLF, or LF LF).
	for (i = 0; i + 1 < len && end == NULL; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			end = buf + i + 2;
		else if (buf[i] == '\n' && buf[i + 1] == '\r' && i + 2 < len &&
			 buf[i + 2] == '\n')
			end = buf + i + 3;
	}
	if (end == NULL)
		return 0;
	*head_len = (size_t)(end - buf);
	memset(h, 0, sizeof(*h));
	for (p = buf; p < end; p++)
		if (*p == '\0')
			return 400;
	// The request line: METHOD SP TARGET SP HTTP/1.x
	line = buf;
	eol  = memchr(line, '\n', (size_t)(end - line));
	*eol = '\0';
	if (eol > line && eol[-1] == '\r')
		eol[-1] = '\0';
	for (p = line; http__tchar((unsigned char)*p); p++)
		;
	if (p == line || *p != ' ' || p - line > 15)
		return 400;
	*p        = '\0';
	h->method = line;
	h->target = ++p;
	while (*p > ' ' && *p != 0x7f)
		p++;
	if (p == h->target || *p != ' ')
		return 400;
	*p++ = '\0';
	if (strncmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
	    p[8] != '\0')
		return strncmp(p, "HTTP/", 5) == 0 ? 505 : 400;
	h->minor = p[7] - '0';
	if (h->minor > 1)
		return 505;
	// The headers: NAME ":" OWS VALUE OWS, one per line.
	for (line = eol + 1; line < end; line = eol + 1) {
		char *v, *ve;

		eol  = memchr(line, '\n', (size_t)(end - line));
		*eol = '\0';
		if (eol > line && eol[-1] == '\r')
			eol[-1] = '\0';
		if (*line == '\0')
			break; /* the blank line */
		for (p = line; http__tchar((unsigned char)*p); p++)
			;
		if (p == line || *p != ':')
			return 400;
		if (h->nhdr == MRI_HTTP_HEADERS_MAX)
			return 431;
		*p = '\0';
		for (v = p + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (ve = v + strlen(v); ve > v && (ve[-1] == ' ' ||
						     ve[-1] == '\t');)
			*--ve = '\0';
		for (p = v; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return 400;
		h->hdr[h->nhdr].name  = line;
		h->hdr[h->nhdr].value = v;
		h->nhdr++;
	}
	return 200;
}

const char *
mri_http_head_get(const struct mri_http_head *h, const char *name)
{
	for (size_t i = 0; i < h->nhdr; i++)
		if (strcasecmp(h->hdr[i].name, name) == 0)
			return h->hdr[i].value;
	return NULL;
}

/* ---- paths and queries ---- */

static int
http__hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
mri_http_pct_decode(const char *s, size_t n, bool query)
{
	char  *out = malloc(n + 1);
	size_t j   = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? http__hex(s[i + 1]) : -1;
			int lo = hi >= 0 ? http__hex(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi | lo) == 0) {
				free(out);
				return NULL;
			}
			out[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[j++] = query && s[i] == '+' ? ' ' : s[i];
		}
	}
	out[j] = '\0';
	return out;
}

int
mri_http_uri_split(const char *uri, char **seg, size_t max, size_t *n,
		   char **query)
{
	const char *q = strchr(uri, '?'), *p = uri;
	int         rc = MR_OK;

	*n     = 0;
	*query = NULL;
	while (rc == MR_OK && (q == NULL ? *p != '\0' : p < q)) {
		const char *end = p;

		while (*end != '\0' && *end != '/' && end != q)
			end++;
		if (end > p) {
			if (*n == max)
				rc = MR_ENOENT;
			else if ((seg[*n] = mri_http_pct_decode(
				      p, (size_t)(end - p), false)) == NULL)
				rc = MR_EINVAL;
			else
				(*n)++;
		}
		p = *end == '/' ? end + 1 : end;
	}
	if (rc == MR_OK && q != NULL && (*query = strdup(q + 1)) == NULL)
		rc = MR_ENOMEM;
	if (rc != MR_OK) {
		while (*n > 0)
			free(seg[--*n]);
	}
	return rc;
}

char *
mri_http_query_get(const char *query, const char *name, bool *bad)
{
	const char *p = query;
	size_t      n = strlen(name);

	*bad = false;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *eq  = memchr(p, '=', len);
		size_t      k   = eq != NULL ? (size_t)(eq - p) : len;

		if (k == n && memcmp(p, name, n) == 0) {
			char *v = eq != NULL ? mri_http_pct_decode(
						   eq + 1, len - n - 1, true)
					     : strdup("");
			*bad = v == NULL;
			return v;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

/* ---- admin routes ---- */

/* \p s as an integer into *out. @returns false when it is not one. */
static bool
http__integer(const char *s, json_int_t *out)
{
	char *end;

	errno = 0;
	*out  = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0';
}

/* Set \p name of \p req from the query's \p text, typed by \p t. */
static int
http__param_set(json_t *req, const char *name, char t, const char *text,
		char *why, size_t why_size)
{
	json_int_t i;

	if (t == 'i') {
		if (!http__integer(text, &i)) {
			snprintf(why, why_size, "%s=%s: an integer is wanted",
				 name, text);
			return MR_EINVAL;
		}
		json_object_set_new(req, name, json_integer(i));
	} else if (t == 'b') {
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
			snprintf(why, why_size,
				 "%s=%s: true or false is wanted", name, text);
			return MR_EINVAL;
		}
		json_object_set_new(req, name,
				    json_boolean(strcmp(text, "true") == 0));
	} else if (json_object_set_new(req, name, json_string(text)) != 0) {
		snprintf(why, why_size,
			 "%s is not UTF-8 text (for bytes, use the _b64 form "
			 "where there is one)",
			 name);
		return MR_EINVAL;
	}
	return MR_OK;
}

int
mri_http_params(const char *query, const char *const *params, json_t *req,
		char *why, size_t why_size)
{
	const char *p   = query;
	json_t     *got = json_object();
	int         rc  = got != NULL ? MR_OK : MR_ENOMEM;

	while (rc == MR_OK && p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *eq  = memchr(p, '=', len);
		size_t      n   = eq != NULL ? (size_t)(eq - p) : len;
		const char *const *q;
		char        name[64], *text;

		for (q = params; *q != NULL; q++)
			if (strlen(*q) == n + 2 && memcmp(*q, p, n) == 0 &&
			    (*q)[n] == ':')
				break;
		if (*q == NULL || n >= sizeof(name)) {
			snprintf(why, why_size,
				 "unknown query parameter \"%.*s\" "
				 "(docs/HTTP.md lists the route's)",
				 (int)(n < 64 ? n : 64), p);
			rc = MR_EINVAL;
			break;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		text    = eq != NULL ? mri_http_pct_decode(eq + 1, len - n - 1,
							   true)
				     : strdup("");
		rc      = MR_EINVAL;
		if (json_object_get(got, name) != NULL)
			snprintf(why, why_size,
				 "query parameter %s is given twice", name);
		else if (text == NULL)
			snprintf(why, why_size,
				 "query parameter %s is malformed", name);
		else
			rc = http__param_set(got, name, (*q)[n + 1], text, why,
					     why_size);
		free(text);
		p = end != NULL ? end + 1 : NULL;
	}
	if (rc == MR_OK && json_object_update(req, got) != 0)
		rc = MR_ENOMEM;
	json_decref(got);
	return rc;
}

int
mri_http_path_fields(json_t *req, const char *const *field,
		     char *const *seg, size_t nseg, char *why,
		     size_t why_size)
{
	json_t *got = json_object();
	int     rc  = got != NULL ? MR_OK : MR_ENOMEM;

	for (size_t i = 0; rc == MR_OK && i < nseg; i++) {
		const char *f = field[i];
		json_int_t  v = 0;
		bool        number;

		if (f == NULL)
			continue;
		number = strcmp(f, "partition") == 0 ||
			 strcmp(f, "offset") == 0;
		if (json_object_get(req, f) != NULL) {
			snprintf(why, why_size,
				 "%s comes from the path: leave it out of the "
				 "body",
				 f);
			rc = MR_EINVAL;
		} else if (number && (!http__integer(seg[i], &v) || v < 0)) {
			snprintf(why, why_size,
				 "the %s in the path, \"%s\", is not a number "
				 "from 0",
				 f, seg[i]);
			rc = MR_EINVAL;
		} else if (number) {
			if (json_object_set_new(got, f, json_integer(v)) != 0)
				rc = MR_ENOMEM;
		} else if (json_object_set_new(got, f, json_string(seg[i])) !=
			   0) {
			snprintf(why, why_size,
				 "the %s in the path is not UTF-8 text", f);
			rc = MR_EINVAL;
		}
	}
	if (rc == MR_OK && json_object_update(req, got) != 0)
		rc = MR_ENOMEM;
	json_decref(got);
	return rc;
}

/* ---- publish ---- */

/* A message's bytes: borrowed from the JSON, or decoded (owned). */
struct http__bytes {
	const void *p;
	size_t      len;
	void       *own;
	bool        set;
};

/* Read \p name (text, or any JSON's compact text when \p any_json) or
 * \p name_base64 of \p m into \p out. */
static int
http__bytes_get(size_t i, json_t *m, const char *name, bool any_json,
		struct http__bytes *out, char *why, size_t why_size)
{
	char    b64[32];
	json_t *t = json_object_get(m, name), *b;

	snprintf(b64, sizeof(b64), "%s_base64", name);
	b = json_object_get(m, b64);
	if (t != NULL && b != NULL) {
		snprintf(why, why_size,
			 "message %zu has both %s and %s: give one", i, name,
			 b64);
		return MR_EINVAL;
	}
	if (b != NULL) {
		if (!json_is_string(b) ||
		    (out->own = mri_base64_decode(json_string_value(b),
						  &out->len)) == NULL) {
			snprintf(why, why_size,
				 "message %zu: %s must be a string of base64 "
				 "(RFC 4648, with padding)",
				 i, b64);
			return MR_EINVAL;
		}
		out->p   = out->own;
		out->set = true;
		return MR_OK;
	}
	if (t == NULL)
		return MR_OK;
	if (json_is_string(t)) {
		out->p   = json_string_value(t);
		out->len = json_string_length(t);
		out->set = true;
		return MR_OK;
	}
	if (!any_json) {
		snprintf(why, why_size,
			 "message %zu: %s must be a string (or give %s)", i,
			 name, b64);
		return MR_EINVAL;
	}
	if ((out->own = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY)) ==
	    NULL)
		return MR_ENOMEM;
	out->p   = out->own;
	out->len = strlen(out->own);
	out->set = true;
	return MR_OK;
}

/* The name of \p b's first member not in \p known, or NULL. */
static const char *
http__unknown(json_t *b, const char *const *known)
{
	const char *name;
	json_t     *v;

	json_object_foreach(b, name, v) {
		size_t k = 0;

		while (known[k] != NULL && strcmp(known[k], name) != 0)
			k++;
		if (known[k] == NULL)
			return name;
	}
	return NULL;
}

/* Refuse a member of message \p i that is not one a message has. */
static int
http__msg_members(size_t i, json_t *m, char *why, size_t why_size)
{
	static const char *const known[] = {"key",	   "key_base64",
					    "value",	   "value_base64",
					    "headers",	   "id",
					    NULL};
	const char              *name    = http__unknown(m, known);

	if (name == NULL)
		return MR_OK;
	snprintf(why, why_size,
		 "message %zu: unknown member \"%.64s\" (key, key_base64, "
		 "value, value_base64, headers, id)",
		 i, name);
	return MR_EINVAL;
}

/* Message \p i's headers into \p hdrs (borrowing \p m's strings). */
static int
http__msg_headers(size_t i, json_t *m, struct mri_hdr_view *hdrs,
		  size_t *nh, char *why, size_t why_size)
{
	json_t     *hs = json_object_get(m, "headers"), *v;
	const char *name;

	*nh = 0;
	if (hs != NULL && !json_is_object(hs)) {
		snprintf(why, why_size,
			 "message %zu: headers must be an object of name to "
			 "string",
			 i);
		return MR_EINVAL;
	}
	json_object_foreach(hs, name, v) {
		size_t n = strlen(name);

		if (!json_is_string(v) || n == 0 || n > MRI_HDR_NAME_MAX ||
		    *nh == MRI_HDR_COUNT_MAX) {
			snprintf(why, why_size,
				 "message %zu: header \"%.64s\": a name of 1 "
				 "to %d bytes and a string value, at most %d "
				 "headers",
				 i, name, MRI_HDR_NAME_MAX, MRI_HDR_COUNT_MAX);
			return MR_EINVAL;
		}
		if (strcmp(name, MR_HEADER_ID) == 0) {
			snprintf(why, why_size,
				 "message %zu: give the message id as \"id\", "
				 "not as a %s header",
				 i, MR_HEADER_ID);
			return MR_EINVAL;
		}
		hdrs[(*nh)++] = (struct mri_hdr_view){
		    .name      = name,
		    .name_len  = (uint16_t)n,
		    .value     = json_string_value(v),
		    .value_len = (uint32_t)json_string_length(v),
		};
	}
	return MR_OK;
}

/* Append message \p i, \p m, to \p w. */
static int
http__msg_encode(struct mri_wbuf *w, const char *topic, size_t i, json_t *m,
		 char *why, size_t why_size)
{
	struct mri_hdr_view hdrs[MRI_HDR_COUNT_MAX];
	struct http__bytes  key = {0}, val = {0};
	const char         *id  = NULL;
	json_t             *v;
	size_t              nh, idlen = 0;
	int                 rc;

	if (!json_is_object(m)) {
		snprintf(why, why_size, "message %zu is not a JSON object", i);
		return MR_EINVAL;
	}
	if ((rc = http__msg_members(i, m, why, why_size)) != MR_OK ||
	    (rc = http__msg_headers(i, m, hdrs, &nh, why, why_size)) != MR_OK)
		return rc;
	if ((v = json_object_get(m, "id")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > MRI_ID_MAX) {
			snprintf(why, why_size,
				 "message %zu: id must be a string of 1 to %d "
				 "bytes",
				 i, MRI_ID_MAX);
			return MR_EINVAL;
		}
		id    = json_string_value(v);
		idlen = json_string_length(v);
	}
	rc = http__bytes_get(i, m, "key", false, &key, why, why_size);
	if (rc == MR_OK)
		rc = http__bytes_get(i, m, "value", true, &val, why, why_size);
	if (rc == MR_OK && (key.len > UINT32_MAX || val.len > UINT32_MAX)) {
		snprintf(why, why_size, "message %zu is too large", i);
		rc = MR_ETOOBIG;
	}
	if (rc == MR_OK)
		mri_publish_encode_msg(w, topic, strlen(topic), key.p, key.len,
				       key.set, id, idlen, (uint16_t)nh, hdrs,
				       val.p, val.len);
	free(key.own);
	free(val.own);
	return rc;
}

const char *
mri_http_raw_name(const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);

	if (strcasecmp(name, "Content-Type") == 0)
		return MR_HEADER_CONTENT_TYPE;
	if (n < 4 || n >= size ||
	    (strncasecmp(name, "ce-", 3) != 0 &&
	     strncasecmp(name, "mr-", 3) != 0) ||
	    strcasecmp(name, "ce-id") == 0 ||
	    strcasecmp(name, "ce-specversion") == 0)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		buf[i] = name[i] == '-' ? '_'
					: (char)tolower((unsigned char)name[i]);
	return buf;
}

int
mri_http_publish_encode(struct mri_wbuf *w, const char *topic, json_t *body,
			char *why, size_t why_size)
{
	json_t *msgs;
	size_t  n = 1;
	int     rc;

	if (!mri_topic_valid(topic, strlen(topic))) {
		snprintf(why, why_size,
			 "\"%.64s\" is not a topic name: 1 to 249 of a-z A-Z "
			 "0-9 . _ -",
			 topic);
		return MR_EINVAL;
	}
	if (!json_is_object(body)) {
		snprintf(why, why_size, "the body must be a JSON object");
		return MR_EINVAL;
	}
	msgs = json_object_get(body, "messages");
	if (msgs != NULL) {
		n = json_array_size(msgs);
		if (!json_is_array(msgs) || n == 0 || n > MRI_BATCH_MAX ||
		    json_object_size(body) != 1) {
			snprintf(why, why_size,
				 "\"messages\" must be an array of 1 to %d "
				 "messages, alone in the body",
				 MRI_BATCH_MAX);
			return MR_EINVAL;
		}
	}
	mri_frame_begin(w, MRI_OP_PUBLISH);
	mri_wbuf_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		json_t *m = msgs != NULL ? json_array_get(msgs, i) : body;

		if ((rc = http__msg_encode(w, topic, i, m, why, why_size)) !=
		    MR_OK)
			return rc;
	}
	if ((rc = mri_frame_end(w)) == MR_ETOOBIG)
		snprintf(why, why_size, "the batch is too large for a frame");
	return rc;
}

/* ---- fetch and settle members ---- */

int
mri_http_int_member(json_t *b, const char *name, long long lo, long long hi,
		    long long *out, char *why, size_t why_size)
{
	json_t *v = json_object_get(b, name);

	if (v == NULL)
		return MR_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		snprintf(why, why_size,
			 "%s must be an integer from %lld to %lld", name, lo,
			 hi);
		return MR_EINVAL;
	}
	*out = json_integer_value(v);
	return MR_OK;
}

int
mri_http_only(json_t *b, const char *const *known, char *why,
	      size_t why_size)
{
	const char *name = http__unknown(b, known);

	if (name == NULL)
		return MR_OK;
	snprintf(why, why_size, "unknown member \"%s\"", name);
	return MR_EINVAL;
}

/* ---- settle ---- */

static int
http__u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One handle: a JSON integer from 0 or a string of decimal digits. */
static bool
http__handle(json_t *e, uint64_t *out)
{
	const char *s = json_string_value(e);
	char       *end;

	if (json_is_integer(e) && json_integer_value(e) >= 0) {
		*out = (uint64_t)json_integer_value(e);
		return true;
	}
	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	*out  = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

int
mri_http_handles(json_t *arr, uint64_t **out, size_t *n, char *why,
		 size_t why_size)
{
	size_t    count = json_array_size(arr), k = 0;
	uint64_t *v;

	if (!json_is_array(arr) || count == 0 ||
	    count > MRI_SETTLE_RANGES_MAX) {
		snprintf(why, why_size,
			 "handles must be an array of 1 to %d handles "
			 "(strings of digits, or integers)",
			 MRI_SETTLE_RANGES_MAX);
		return MR_EINVAL;
	}
	if ((v = malloc(count * sizeof(*v))) == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < count; i++) {
		if (!http__handle(json_array_get(arr, i), &v[i])) {
			free(v);
			snprintf(why, why_size,
				 "handles[%zu] is not a handle (a string of "
				 "digits, or an integer from 0)",
				 i);
			return MR_EINVAL;
		}
	}
	qsort(v, count, sizeof(*v), http__u64_cmp);
	for (size_t i = 0; i < count; i++)
		if (k == 0 || v[i] != v[k - 1])
			v[k++] = v[i];
	*out = v;
	*n   = k;
	return MR_OK;
}
