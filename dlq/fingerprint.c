/*
 * A failure's reason: its normalised form and fingerprint, and where a
 * reason may be cut (dlq/record.h says the rules). One pass, left to
 * right, each byte looked at a bounded number of times (the fuzz target
 * feeds it whole headers).
 */
#include "record.h"

#include <stdbool.h>
#include <string.h>

#include "consumers/journal.h"

/* Where the normalised bytes go: the hash, and a buffer if any. */
struct fp__sink {
	uint64_t hash;
	char    *out;
	size_t   size;
	size_t   len;   /* the whole length, written or not */
	bool     space; /* a space is pending */
};

static bool
fp__digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
fp__alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
fp__alnum(unsigned char c)
{
	return fp__digit(c) || fp__alpha(c);
}

static bool
fp__hex(unsigned char c)
{
	return fp__digit(c) || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static bool
fp__space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static unsigned char
fp__lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static void
fp__emit(struct fp__sink *s, const char *p, size_t n)
{
	s->hash = mri_journal_hash(s->hash, p, n);
	for (size_t i = 0; i < n; i++, s->len++)
		if (s->len + 1 < s->size)
			s->out[s->len] = p[i];
}

/* Output \p n bytes, after the pending space unless nothing came yet
 * (so whitespace is collapsed and trimmed). */
static void
fp__put(struct fp__sink *s, const char *p, size_t n)
{
	if (s->space && s->len > 0)
		fp__emit(s, " ", 1);
	s->space = false;
	fp__emit(s, p, n);
}

static void
fp__putc(struct fp__sink *s, unsigned char c)
{
	char b = (char)c;

	fp__put(s, &b, 1);
}

static void
fp__puts(struct fp__sink *s, const char *str)
{
	fp__put(s, str, strlen(str));
}

/* The length of a hex run at \p i (at most \p max). */
static size_t
fp__hex_run(const unsigned char *r, size_t len, size_t i, size_t max)
{
	size_t k = 0;

	while (i + k < len && k < max && fp__hex(r[i + k]))
		k++;
	return k;
}

/* Whether \p e is the end or a byte that ends a token there. */
static bool
fp__ends(const unsigned char *r, size_t len, size_t e)
{
	return e >= len || !fp__alnum(r[e]);
}

/* 3a: 8-4-4-4-12 hex digits. */
static size_t
fp__uuid(const unsigned char *r, size_t len, size_t i)
{
	static const size_t groups[] = {8, 4, 4, 4, 12};
	size_t              at       = i;

	for (size_t g = 0; g < 5; g++) {
		if (g > 0) {
			if (at >= len || r[at] != '-')
				return 0;
			at++;
		}
		if (fp__hex_run(r, len, at, groups[g]) != groups[g])
			return 0;
		at += groups[g];
	}
	return fp__ends(r, len, at) ? at - i : 0;
}

/* 3b: 0x and hex digits. */
static size_t
fp__0x(const unsigned char *r, size_t len, size_t i)
{
	size_t k;

	if (i + 2 >= len || r[i] != '0' || fp__lower(r[i + 1]) != 'x')
		return 0;
	k = fp__hex_run(r, len, i + 2, len);
	return k > 0 && fp__ends(r, len, i + 2 + k) ? 2 + k : 0;
}

/* 3c: a dotted IPv4 address. */
static size_t
fp__ipv4(const unsigned char *r, size_t len, size_t i)
{
	size_t at = i;

	if (i >= 2 && r[i - 1] == '.' && fp__digit(r[i - 2]))
		return 0;
	for (int g = 0; g < 4; g++) {
		size_t d = 0;

		if (g > 0) {
			if (at >= len || r[at] != '.')
				return 0;
			at++;
		}
		while (at + d < len && d < 4 && fp__digit(r[at + d]))
			d++;
		if (d == 0 || d > 3)
			return 0;
		at += d;
	}
	if (!fp__ends(r, len, at) ||
	    (at + 1 < len && r[at] == '.' && fp__digit(r[at + 1])))
		return 0;
	return at - i;
}

/* 3d: hex digits and 2+ colons. */
static size_t
fp__ipv6(const unsigned char *r, size_t len, size_t i)
{
	size_t at = i, colons = 0, hex = 0;

	if (i > 0 && r[i - 1] == ':')
		return 0;
	for (; at < len && (fp__hex(r[at]) || r[at] == ':'); at++) {
		colons += r[at] == ':';
		hex += r[at] != ':';
	}
	return colons >= 2 && hex > 0 && fp__ends(r, len, at) ? at - i : 0;
}

static bool
fp__local(unsigned char c)
{
	return fp__alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
	       c == '-';
}

/* 3e: local@domain. A failure at \p i fails at every start up to the end
 * of its local part too: *skip says where to try again. */
static size_t
fp__email(const unsigned char *r, size_t len, size_t i, size_t *skip)
{
	size_t at = i, d, end;
	bool   alnum = false;

	while (at < len && fp__local(r[at]))
		at++;
	*skip = at;
	if (at == i || at >= len || r[at] != '@')
		return 0;
	d = at + 1;
	while (d < len && (fp__alnum(r[d]) || r[d] == '.' || r[d] == '-'))
		d++;
	while (d > at + 1 && r[d - 1] == '.')
		d--;
	for (end = at + 1; end < d; end++)
		alnum = alnum || fp__alnum(r[end]);
	return alnum ? d - i : 0;
}

/* 2: the length of the quoted string at \p i, or 0. A quote with no close
 * has none later either: *noclose says from where. */
static size_t
fp__quoted(const unsigned char *r, size_t len, size_t i, size_t *noclose)
{
	unsigned char q = r[i];

	if (i >= *noclose)
		return 0;
	for (size_t j = i + 1; j < len; j++)
		if (r[j] == q && fp__ends(r, len, j + 1))
			return j + 1 - i;
	*noclose = i;
	return 0;
}

/* 4: the word (alnum run) at \p i; returns its length. */
static size_t
fp__word(const unsigned char *r, size_t len, size_t i, struct fp__sink *s)
{
	size_t end = i, k = i;

	while (end < len && fp__alnum(r[end]))
		end++;
	while (k < end) {
		if (k == i || fp__digit(r[k])) {
			size_t h = fp__hex_run(r, end, k, end);
			bool   digit = false, letter = false;

			for (size_t j = k; j < k + h; j++) {
				digit  = digit || fp__digit(r[j]);
				letter = letter || !fp__digit(r[j]);
			}
			if (h >= 8 && digit && letter) {
				fp__puts(s, "<hex>");
				k += h;
				continue;
			}
		}
		if (fp__digit(r[k])) {
			while (k < end && fp__digit(r[k]))
				k++;
			fp__puts(s, "<n>");
			continue;
		}
		fp__putc(s, fp__lower(r[k]));
		k++;
	}
	return end - i;
}

static void
fp__normalise(const char *reason, size_t len, struct fp__sink *s)
{
	const unsigned char *r        = (const unsigned char *)reason;
	size_t               noclose1 = len, noclose2 = len;
	size_t               noemail  = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c     = r[i];
		bool          start = i == 0 || !fp__alnum(r[i - 1]);
		size_t        m     = 0;
		const char   *ph    = NULL;

		if (fp__space(c)) {
			s->space = true;
			i++;
			continue;
		}
		if (start && (c == '\'' || c == '"'))
			m = fp__quoted(r, len, i,
				       c == '\'' ? &noclose1 : &noclose2);
		if (m > 0)
			ph = "<str>";
		else if (start && (m = fp__uuid(r, len, i)) > 0)
			ph = "<uuid>";
		else if (start && (m = fp__0x(r, len, i)) > 0)
			ph = "<hex>";
		else if (start && (m = fp__ipv4(r, len, i)) > 0)
			ph = "<ip>";
		else if (start && (m = fp__ipv6(r, len, i)) > 0)
			ph = "<ip>";
		else if (start && i >= noemail &&
			 (m = fp__email(r, len, i, &noemail)) > 0)
			ph = "<email>";
		if (ph != NULL) {
			fp__puts(s, ph);
			i += m;
		} else if (fp__alnum(c)) {
			i += fp__word(r, len, i, s);
		} else {
			fp__putc(s, c);
			i++;
		}
	}
}

uint64_t
mri_dlq_fingerprint(const char *reason, size_t len)
{
	struct fp__sink s = {.hash = MRI_JOURNAL_HASH_INIT};

	if (reason != NULL)
		fp__normalise(reason, len, &s);
	return s.hash;
}

size_t
mri_dlq_normalise(const char *reason, size_t len, char *out, size_t size)
{
	struct fp__sink s = {
	    .hash = MRI_JOURNAL_HASH_INIT, .out = out, .size = size};

	if (reason != NULL)
		fp__normalise(reason, len, &s);
	if (size > 0)
		out[s.len < size ? s.len : size - 1] = '\0';
	return s.len;
}

void
mri_dlq_fingerprint_fmt(uint64_t fp, char out[MRI_DLQ_FP_STRLEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = MRI_DLQ_FP_STRLEN - 1; i >= 0; i--, fp >>= 4)
		out[i] = digits[fp & 0xf];
	out[MRI_DLQ_FP_STRLEN] = '\0';
}

size_t
mri_dlq_utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t               j = max;

	if (len <= max)
		return len;
	// u[max] is the first byte left out: if it continues a sequence,
	// cut before that sequence's lead byte (at most 3 back).
	while (j > 0 && max - j < 3 && (u[j] & 0xc0) == 0x80)
		j--;
	return j < max && u[j] >= 0xc0 ? j : max;
}
