/*
 * log.c — formats a line into a stack buffer and hands it to stderr in one fprintf. stderr is
 * unbuffered, and glibc formats an unbuffered stream's fprintf into a temporary buffer and
 * issues one write, under the stream's lock: so each line leaves the process in one piece and
 * immediately (the effect of line buffering, without touching stderr's buffering mode).
 * Globals: log_min_level and log_ident, written by log_init before threads start.
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int log_min_level = LOG_LEVEL_INFO;
static const char *log_ident = "normlabd";

static const char *const log_level_tags[] = { "DEBUG", "INFO", "WARN", "ERROR" };
static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

void log_init(int level, const char *ident)
{
	if (level < LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	if (level > LOG_LEVEL_ERROR)
		level = LOG_LEVEL_ERROR;
	log_min_level = level;
	if (ident)
		log_ident = ident;
}

const char *log_level_name(int level)
{
	if (level < LOG_LEVEL_DEBUG || level > LOG_LEVEL_ERROR)
		return "?";
	return log_level_names[level];
}

/* "2026-11-22T15:34:12.123Z", or a fixed placeholder if the clock cannot be read. */
static void log_timestamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm)) {
		snprintf(buf, cap, "0000-00-00T00:00:00.000Z");
		return;
	}
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
}

void log_write(int level, const char *fmt, ...)
{
	static const char cut[] = "...[truncated]";
	int saved_errno = errno;
	char ts[40];
	char msg[LOG_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(msg, sizeof msg, "(unformattable log message: %s)", fmt);
	else if ((size_t)n >= sizeof msg)
		memcpy(msg + sizeof msg - sizeof cut, cut, sizeof cut);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	log_timestamp(ts, sizeof ts);
	fprintf(stderr, "%s %s %s: %s\n", ts,
		level >= LOG_LEVEL_DEBUG && level <= LOG_LEVEL_ERROR ? log_level_tags[level] : "?",
		log_ident, msg);
	errno = saved_errno;
}
