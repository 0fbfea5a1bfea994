#include "proto/subscribe.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/consume.h"

static const char *const subscribe__modes[] = {"key", "partition",
					       "unordered"};

const char *
mri_subscribe_mode_name(enum mri_subscribe_mode m)
{
	return (unsigned)m < 3 ? subscribe__modes[m] : subscribe__modes[0];
}

/* ---- the request ----------------------------------------------------- */

static void
subscribe__str(struct mri_wbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	mri_wbuf_u8(b, '"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			mri_wbuf_u8(b, '\\');
			mri_wbuf_u8(b, ch);
		} else if (ch < 0x20) {
			char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4],
				     hex[ch & 15]};
			mri_wbuf_put(b, u, sizeof(u));
		} else {
			mri_wbuf_u8(b, ch);
		}
	}
	mri_wbuf_u8(b, '"');
}

static void
subscribe__uint(struct mri_wbuf *b, const char *name, uint64_t v)
{
	char num[48];
	int  n;

	if (v == 0)
		return;
	n = snprintf(num, sizeof(num), ",\"%s\":%llu", name,
		     (unsigned long long)v);
	mri_wbuf_put(b, num, (size_t)n);
}

/* ,"name": or "name": first in an object (*first then cleared). */
static void
subscribe__member(struct mri_wbuf *b, bool *first, const char *name)
{
	if (!*first)
		mri_wbuf_u8(b, ',');
	*first = false;
	mri_wbuf_u8(b, '"');
	mri_wbuf_put(b, name, strlen(name));
	mri_wbuf_put(b, "\":", 2);
}

static void
subscribe__u64(struct mri_wbuf *b, bool *first, const char *name, uint64_t v)
{
	char num[24];
	int  n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);

	subscribe__member(b, first, name);
	mri_wbuf_put(b, num, (size_t)n);
}

/* A double with 17 significant digits (it reads back the same). The
 * caller's locale may write another decimal point, of one or more bytes:
 * whatever is not a digit, a sign or an exponent becomes one '.'. */
static void
subscribe__real(struct mri_wbuf *b, bool *first, const char *name, double v)
{
	char   num[64], out[64];
	int    n;
	size_t j = 0;

	subscribe__member(b, first, name);
	if (!isfinite(v)) {
		mri_wbuf_put(b, "null", 4);
		return;
	}
	n = snprintf(num, sizeof(num), "%.17g", v);
	for (int i = 0; i < n && i < (int)sizeof(num) - 1; i++) {
		char ch = num[i];

		if ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' ||
		    ch == 'e' || ch == 'E')
			out[j++] = ch;
		else if (j == 0 || out[j - 1] != '.')
			out[j++] = '.';
	}
	mri_wbuf_put(b, out, j);
}

static void
subscribe__retry(struct mri_wbuf *b, const struct mri_subscribe *s)
{
	bool first = true;

	if ((s->has & MRI_SUB_RETRY_ALL) == 0)
		return;
	mri_wbuf_put(b, ",\"retry\":{", 10);
	if (s->has & MRI_SUB_MAX_ATTEMPTS)
		subscribe__u64(b, &first, "max_attempts", s->max_attempts);
	if (s->has & MRI_SUB_BACKOFF_INITIAL)
		subscribe__u64(b, &first, "backoff_initial_ms",
			       s->backoff_initial_ms);
	if (s->has & MRI_SUB_BACKOFF_MAX)
		subscribe__u64(b, &first, "backoff_max_ms", s->backoff_max_ms);
	if (s->has & MRI_SUB_BACKOFF_MULTIPLIER)
		subscribe__real(b, &first, "backoff_multiplier",
				s->backoff_multiplier);
	if (s->has & MRI_SUB_BACKOFF_JITTER)
		subscribe__real(b, &first, "backoff_jitter", s->backoff_jitter);
	mri_wbuf_u8(b, '}');
}

static void
subscribe__dead_letter(struct mri_wbuf *b, const struct mri_subscribe *s)
{
	bool first = true;

	if ((s->has & MRI_SUB_BREAKER_ALL) == 0 && s->dlq_topic == NULL)
		return;
	mri_wbuf_put(b, ",\"dead_letter\":{", 16);
	if (s->dlq_topic != NULL) {
		subscribe__member(b, &first, "topic");
		subscribe__str(b, s->dlq_topic);
	}
	if (s->has & MRI_SUB_BREAKER_MAX)
		subscribe__u64(b, &first, "breaker_max", s->breaker_max);
	if (s->has & MRI_SUB_BREAKER_PERIOD)
		subscribe__u64(b, &first, "breaker_period_ms",
			       s->breaker_period_ms);
	if (s->has & MRI_SUB_BREAKER_COOLDOWN)
		subscribe__u64(b, &first, "breaker_cooldown_ms",
			       s->breaker_cooldown_ms);
	mri_wbuf_u8(b, '}');
}

void
mri_subscribe_encode(struct mri_wbuf *b, const struct mri_subscribe *s)
{
	mri_wbuf_put(b, "{\"group\":", 9);
	subscribe__str(b, s->group);
	mri_wbuf_put(b, ",\"topics\":[", 11);
	for (size_t i = 0; i < s->ntopics; i++) {
		if (i > 0)
			mri_wbuf_u8(b, ',');
		subscribe__str(b, s->topics[i]);
	}
	mri_wbuf_put(b, "],\"mode\":", 9);
	subscribe__str(b, mri_subscribe_mode_name(s->mode));
	subscribe__uint(b, "ack_deadline_ms", s->ack_deadline_ms);
	subscribe__uint(b, "credit", s->credit);
	if (s->exclusive)
		mri_wbuf_put(b, ",\"exclusive\":true", 17);
	if (s->start_latest)
		mri_wbuf_put(b, ",\"start\":\"latest\"", 17);
	if (s->no_journal)
		mri_wbuf_put(b, ",\"journal\":false", 16);
	subscribe__retry(b, s);
	subscribe__dead_letter(b, s);
	mri_wbuf_u8(b, '}');
}

/* ---- the reply -------------------------------------------------------
 * The client library has no JSON library: it reads two integers of one
 * small object, skipping the rest by its brackets and quotes. */

struct subscribe__rd {
	const char *p, *end;
};

static void
subscribe__ws(struct subscribe__rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
				 *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/* Skip a string at r->p; *s and *len name its raw bytes (escapes kept). */
static int
subscribe__skip_str(struct subscribe__rd *r, const char **s, size_t *len)
{
	const char *start;

	if (r->p >= r->end || *r->p != '"')
		return -1;
	start = ++r->p;
	while (r->p < r->end && *r->p != '"')
		r->p += *r->p == '\\' && r->end - r->p > 1 ? 2 : 1;
	if (r->p >= r->end)
		return -1;
	*s   = start;
	*len = (size_t)(r->p - start);
	r->p++;
	return 0;
}

/* Skip any value; nested objects and arrays by depth. */
static int
subscribe__skip_value(struct subscribe__rd *r)
{
	int         depth = 0;
	const char *s;
	size_t      len;

	do {
		subscribe__ws(r);
		if (r->p >= r->end)
			return -1;
		switch (*r->p) {
		case '"':
			if (subscribe__skip_str(r, &s, &len) != 0)
				return -1;
			break;
		case '{':
		case '[':
			depth++;
			r->p++;
			break;
		case '}':
		case ']':
			if (--depth < 0)
				return -1;
			r->p++;
			break;
		default: // numbers, literals, ',' and ':' inside containers
			r->p++;
			while (depth == 0 && r->p < r->end &&
			       memchr(",}] \t\r\n", *r->p, 8) == NULL)
				r->p++;
			break;
		}
	} while (depth > 0);
	return 0;
}

/* The decimal digits [p, end), saturating. @returns false unless there is
 * at least one and nothing else. */
static bool
subscribe__digits(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (p >= end)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX
					      : v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return true;
}

int
mri_subscribe_reply_parse(const char *json, size_t len, uint64_t *session,
			  int *credit)
{
	struct subscribe__rd r    = {json, json + len};
	bool                 have = false;

	subscribe__ws(&r);
	if (r.p >= r.end || *r.p++ != '{')
		return MR_EPROTO;
	for (;;) {
		const char *k, *num;
		size_t      kl;
		uint64_t    v;

		subscribe__ws(&r);
		if (r.p < r.end && *r.p == '}')
			break;
		if (subscribe__skip_str(&r, &k, &kl) != 0)
			return MR_EPROTO;
		subscribe__ws(&r);
		if (r.p >= r.end || *r.p++ != ':')
			return MR_EPROTO;
		subscribe__ws(&r);
		num = r.p;
		if (subscribe__skip_value(&r) != 0)
			return MR_EPROTO;
		if (kl == 7 && memcmp(k, "session", 7) == 0) {
			if (!subscribe__digits(num, r.p, &v))
				return MR_EPROTO;
			*session = v;
			have     = true;
		} else if (kl == 6 && memcmp(k, "credit", 6) == 0 &&
			   subscribe__digits(num, r.p, &v) && v > 0 &&
			   v <= MRI_FETCH_MAX_MSGS) {
			*credit = (int)v;
		}
		subscribe__ws(&r);
		if (r.p < r.end && *r.p == ',')
			r.p++;
		else if (r.p >= r.end || *r.p != '}')
			return MR_EPROTO;
	}
	return have ? MR_OK : MR_EPROTO;
}
