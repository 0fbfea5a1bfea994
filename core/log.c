#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

volatile int mri_log_threshold = MRI_LOG_INFO;

static pthread_mutex_t log__lock = PTHREAD_MUTEX_INITIALIZER;
static mri_log_sink    log__sink;
static void           *log__sink_arg;
static atomic_bool      log__json;

static void log__write(int level, const char *line);

static const char *const log__names[] = {"emerg", "alert",  "crit",
					 "err",   "warning", "notice",
					 "info",  "debug"};

void
mri_log_set_sink(mri_log_sink sink, void *arg)
{
	pthread_mutex_lock(&log__lock);
	log__sink     = sink;
	log__sink_arg = arg;
	pthread_mutex_unlock(&log__lock);
}

void
mri_log_set_level(int level)
{
	if (level < MRI_LOG_EMERG)
		level = MRI_LOG_EMERG;
	if (level > MRI_LOG_DEBUG)
		level = MRI_LOG_DEBUG;
	mri_log_threshold = level;
}

int
mri_log_level_parse(const char *name)
{
	for (int i = 0; i <= MRI_LOG_DEBUG; i++)
		if (strcmp(name, log__names[i]) == 0)
			return i;
	if (strcmp(name, "warn") == 0)
		return MRI_LOG_WARNING;
	if (strcmp(name, "error") == 0)
		return MRI_LOG_ERR;
	return -1;
}

const char *
mri_log_level_name(int level)
{
	if (level < 0 || level > MRI_LOG_DEBUG)
		return "unknown";
	return log__names[level];
}

/* Append \p n bytes of \p s to \p out (at *j) as a JSON string's
 * contents: quote, backslash and control characters escaped; cut where
 * the next character would pass \p limit. */
static void
log__json_str(char *out, size_t limit, size_t *j, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *j + 6 < limit; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80) {
			// A whole UTF-8 sequence as it is (if it fits); a
			// byte that starts none as U+FFFD.
			size_t k = (c & 0xe0) == 0xc0 && c >= 0xc2 ? 2
				   : (c & 0xf0) == 0xe0	    ? 3
				   : (c & 0xf8) == 0xf0 && c <= 0xf4 ? 4
								     : 0;
			size_t m = 1;

			while (k > 0 && m < k && i + m < n &&
			       ((unsigned char)s[i + m] & 0xc0) == 0x80)
				m++;
			if (k == 0 || m < k) {
				memcpy(out + *j, "\\ufffd", 6);
				*j += 6;
			} else if (*j + k + 6 < limit) {
				memcpy(out + *j, s + i, k);
				*j += k;
				i += k - 1;
			} else {
				return;
			}
			continue;
		}
		if (c == '"' || c == '\\') {
			out[(*j)++] = '\\';
			out[(*j)++] = (char)c;
		} else if (c < 0x20) {
			*j += (size_t)snprintf(out + *j, 7, "\\u%04x", c);
		} else {
			out[(*j)++] = (char)c;
		}
	}
}

/* Whether \p n bytes of \p s are a JSON integer that fits 18 digits. */
static bool
log__is_int(const char *s, size_t n)
{
	size_t i = s[0] == '-';

	if (n == i || n - i > 18 || (s[i] == '0' && n - i > 1))
		return false;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

void
mri_logfmt_json(const char *line, char *out, size_t size)
{
	const char *p = line;
	size_t      j = 0;
	bool        first = true;

	if (size < 16) {
		if (size > 0)
			out[0] = '\0';
		return;
	}
	out[j++] = '{';
	while (*p != '\0' && j + 16 < size) {
		const char *k = p, *v, *eq;
		size_t      kn, vn;
		char        val[2048];
		bool        text = false;

		while (*p == ' ')
			k = ++p;
		if (*p == '\0')
			break;
		while (*p != '\0' && *p != ' ' && *p != '=')
			p++;
		eq = p;
		kn = (size_t)(eq - k);
		vn = 0;
		if (*eq == '=' && eq[1] == '"') {
			// A quoted value: \" and \\ are its escapes.
			for (p = eq + 2; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				if (vn < sizeof(val))
					val[vn++] = *p;
			}
			if (*p == '"')
				p++;
			v = val;
		} else if (*eq == '=') {
			v = eq + 1;
			for (p = v; *p != '\0' && *p != ' '; p++)
				;
			vn = (size_t)(p - v);
		} else {
			// A word that is not key=value: kept as "text".
			v    = k;
			vn   = kn;
			k    = "text";
			kn   = 4;
			text = true;
		}
		if (kn == 0)
			continue;
		// Room is kept for what closes the member and the object:
		// "":""} and the NUL after a key, "} after a value.
		if (!first)
			out[j++] = ',';
		first    = false;
		out[j++] = '"';
		log__json_str(out, size - 8, &j, k, kn);
		out[j++] = '"';
		out[j++] = ':';
		if (v != val && !text && log__is_int(v, vn) &&
		    j + vn + 3 < size) {
			memcpy(out + j, v, vn);
			j += vn;
		} else {
			out[j++] = '"';
			log__json_str(out, size - 3, &j, v, vn);
			out[j++] = '"';
		}
	}
	out[j++] = '}';
	out[j]   = '\0';
}

void
mri_log_set_json(bool on)
{
	atomic_store(&log__json, on);
}

void
mri_log_vemit(int level, const char *fmt, va_list ap)
{
	char            line[2048];
	struct timespec ts;
	struct tm       tm;
	int             n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     mri_log_level_name(level));
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (atomic_load(&log__json)) {
		char json[2 * sizeof(line) + 64];

		mri_logfmt_json(line, json, sizeof(json));
		log__write(level, json);
		return;
	}
	log__write(level, line);
}

/* One line to the sink, or to standard error. */
static void
log__write(int level, const char *line)
{
	pthread_mutex_lock(&log__lock);
	if (log__sink != NULL) {
		log__sink(log__sink_arg, level, line);
	} else {
		fputs(line, stderr);
		fputc('\n', stderr);
		fflush(stderr);
	}
	pthread_mutex_unlock(&log__lock);
}

void
mri_log_emit(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mri_log_vemit(level, fmt, ap);
	va_end(ap);
}
