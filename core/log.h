/*
 * The one logger: RFC 5424 levels, one line per record in logfmt
 * (ts=... level=... msg="..." key=value), or the same as a JSON object
 * per line (mri_log_set_json), to a pluggable sink.
 *
 * Thread safety: every function is thread-safe; the sink is called with a
 * mutex held, from whichever thread logged.
 */
#ifndef MRI_LOG_H
#define MRI_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum mri_log_level {
	MRI_LOG_EMERG = 0,
	MRI_LOG_ALERT,
	MRI_LOG_CRIT,
	MRI_LOG_ERR,
	MRI_LOG_WARNING,
	MRI_LOG_NOTICE,
	MRI_LOG_INFO,
	MRI_LOG_DEBUG
};

typedef void (*mri_log_sink)(void *arg, int level, const char *line);

extern volatile int mri_log_threshold;

/** @brief Route log lines to \p sink (NULL: standard error). */
void mri_log_set_sink(mri_log_sink sink, void *arg);
void mri_log_set_level(int level);
/** @returns the level named by \p name ("info", "debug", ...) or -1. */
int mri_log_level_parse(const char *name);
const char *mri_log_level_name(int level);

/** @brief Lines as JSON objects (true) or logfmt (false, the default). */
void mri_log_set_json(bool on);

/**
 * @brief The logfmt \p line as one JSON object into \p out: each key=value
 *        a member, a quoted value unescaped, a bare integer (18 digits at
 *        most, no leading zero) a number, every other value a string, a
 *        word without '=' a "text" member; cut to fit \p size.
 */
void mri_logfmt_json(const char *line, char *out, size_t size);

void mri_log_emit(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mri_log_vemit(int level, const char *fmt, va_list ap);

/* Checks the level before anything is formatted. */
#define MRI_LOG(level, ...)                                                   \
	do {                                                                  \
		if ((level) <= mri_log_threshold)                             \
			mri_log_emit((level), __VA_ARGS__);                   \
	} while (0)

#define mri_crit(...) MRI_LOG(MRI_LOG_CRIT, __VA_ARGS__)
#define mri_err(...) MRI_LOG(MRI_LOG_ERR, __VA_ARGS__)
#define mri_warn(...) MRI_LOG(MRI_LOG_WARNING, __VA_ARGS__)
#define mri_notice(...) MRI_LOG(MRI_LOG_NOTICE, __VA_ARGS__)
#define mri_info(...) MRI_LOG(MRI_LOG_INFO, __VA_ARGS__)
#define mri_debug(...) MRI_LOG(MRI_LOG_DEBUG, __VA_ARGS__)

#endif
