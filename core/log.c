#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

volatile int mri_log_threshold = MRI_LOG_INFO;

static pthread_mutex_t log__lock = PTHREAD_MUTEX_INITIALIZER;
static mri_log_sink    log__sink;
static void           *log__sink_arg;

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
