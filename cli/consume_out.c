/*
 * What `mailroom consume` prints of a delivery: one line of text, or one
 * JSON object. The text line is the hot path of a consumer in a pipeline
 * (`mailroom consume ... | tool`): it is built in one buffer, escaped
 * through a table, and written with one fwrite, into a large stdio buffer
 * that the loop flushes once per batch, before the batch is acked. All on
 * the command's thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/base64.h"

/* Room for stdout when it is not a terminal: a batch of 1 000 deliveries
 * of 100 bytes fits, so that it is written in a few write(2)s. */
#define OUT__STDIO_BUF (1u << 20)

/* The line being built; grown, never shrunk. */
static char  *out__line;
static size_t out__cap;

void
cli_out_init(void)
{
	// A terminal keeps its line buffering: someone is reading.
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOFBF, OUT__STDIO_BUF);
}

/* ---- UTF-8, as jansson checks it --------------------------------------- */

/* @returns whether \p p is valid UTF-8: no overlong forms, no surrogates,
 *          nothing above U+10FFFF (what json_stringn accepts). */
static bool
out__utf8(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		uint32_t      v;
		size_t        n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			v = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			v = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			v = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			v = (v << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && v < 0x800) || (n == 3 && v < 0x10000) ||
		    (v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

/* ---- text ------------------------------------------------------------- */

/* Make room for \p more bytes after \p used. @returns false: no memory. */
static bool
out__room(size_t used, size_t more)
{
	size_t nc = out__cap ? out__cap : 256;
	char  *p;

	if (used + more <= out__cap)
		return true;
	while (nc < used + more)
		nc *= 2;
	if ((p = realloc(out__line, nc)) == NULL)
		return false;
	out__line = p;
	out__cap  = nc;
	return true;
}

static size_t
out__str(size_t at, const char *s, size_t len)
{
	memcpy(out__line + at, s, len);
	return at + len;
}

static size_t
out__num(size_t at, uint64_t v, bool neg)
{
	return (size_t)(cli_dec(out__line + at, v, neg) - out__line);
}

static size_t
out__int(size_t at, int64_t v)
{
	return (size_t)(cli_int(out__line + at, v) - out__line);
}

/* Bytes on one line: control characters and '\' escaped, the rest as is;
 * but every byte above 0x7f too when they are not UTF-8. At most 4 bytes
 * out per byte in: the caller made the room. */
static size_t
out__bytes(size_t at, const void *p, size_t len)
{
	static const char    hex[] = "0123456789abcdef";
	const unsigned char *s     = p;
	unsigned char        high  = 0x7f;
	char                *o     = out__line + at;

	for (size_t i = 0; i < len; i++)
		if (s[i] > 0x7f) {
			high = out__utf8(s, len) ? 0xff : 0x7f;
			break;
		}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c >= 0x20 && c != 0x7f && c != '\\' && c <= high) {
			*o++ = (char)c;
		} else if (c == '\\') {
			*o++ = '\\';
			*o++ = '\\';
		} else if (c == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (c == '\t') {
			*o++ = '\\';
			*o++ = 't';
		} else {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0xf];
		}
	}
	return (size_t)(o - out__line);
}

/* topic/partition@offset key=K attempt=N[ (duplicate)]: payload
 * @returns false: no memory for the line (nothing printed). */
static bool
out__text(const mr_delivery *d, bool dup)
{
	static const char dup_s[] = " (duplicate)";
	size_t            tlen    = strlen(d->topic), at = 0;

	if (!out__room(0, tlen + 80 + sizeof(dup_s) + 4 * d->key_len +
				  4 * d->payload_len))
		return false;
	at = out__str(at, d->topic, tlen);
	out__line[at++] = '/';
	at              = out__int(at, d->partition);
	out__line[at++] = '@';
	at              = out__int(at, d->offset);
	at              = out__str(at, " key=", 5);
	if (d->has_key)
		at = out__bytes(at, d->key, d->key_len);
	else
		at = out__str(at, "(none)", 6);
	at = out__str(at, " attempt=", 9);
	at = out__num(at, d->attempt, false);
	if (dup)
		at = out__str(at, dup_s, sizeof(dup_s) - 1);
	at              = out__str(at, ": ", 2);
	at              = out__bytes(at, d->payload, d->payload_len);
	out__line[at++] = '\n';
	fwrite(out__line, 1, at, stdout);
	return true;
}

/* ---- JSON ------------------------------------------------------------- */

/* @returns a new JSON string if \p p is valid UTF-8 without control
 *          characters (but tab, CR, LF), else NULL. */
static json_t *
out__json_text(const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++)
		if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' &&
		     s[i] != '\r') ||
		    s[i] == 0x7f)
			return NULL;
	return json_stringn(len ? p : "", len); // NULL if not UTF-8
}

/* Set name to the text, or name_b64 to its base64. */
static void
out__json_bytes(json_t *o, const char *name, const void *p, size_t len)
{
	json_t *t = out__json_text(p, len);
	char    key[32];
	char   *b;

	if (t != NULL) {
		json_object_set_new(o, name, t);
		return;
	}
	snprintf(key, sizeof(key), "%s_b64", name);
	if ((b = mri_base64_encode(p, len)) != NULL)
		json_object_set_new(o, key, json_string(b));
	free(b);
}

static void
out__json(const mr_delivery *d, bool dup)
{
	json_t *o = json_object(), *hs = json_array();

	json_object_set_new(o, "topic", json_string(d->topic));
	json_object_set_new(o, "partition", json_integer(d->partition));
	json_object_set_new(o, "offset", json_integer(d->offset));
	if (d->has_key)
		out__json_bytes(o, "key", d->key, d->key_len);
	else
		json_object_set_new(o, "key", json_null());
	out__json_bytes(o, "payload", d->payload, d->payload_len);
	for (size_t i = 0; i < d->header_count; i++) {
		const mr_header *h = &d->headers[i];
		json_t          *v = out__json_text(h->value, h->value_len);
		char            *b;

		if (v == NULL &&
		    (b = mri_base64_encode(h->value, h->value_len))) {
			v = json_pack("{s:s}", "b64", b);
			free(b);
		}
		json_array_append_new(hs, json_pack("[s,o]", h->name,
						    v ? v : json_null()));
	}
	json_object_set_new(o, "headers", hs);
	json_object_set_new(o, "id", json_string(d->id));
	json_object_set_new(o, "attempt", json_integer(d->attempt));
	json_object_set_new(o, "redelivery", json_boolean(d->redelivery));
	json_object_set_new(o, "timestamp_ms", json_integer(d->timestamp_ms));
	json_object_set_new(o, "handle", json_integer((json_int_t)d->handle));
	json_object_set_new(o, "duplicate", json_boolean(dup));
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
}

bool
cli_out_delivery(const mr_delivery *d, bool json, bool dup)
{
	if (!json)
		return out__text(d, dup);
	out__json(d, dup);
	return true;
}

void
cli_out_fini(void)
{
	free(out__line);
	out__line = NULL;
	out__cap  = 0;
}
