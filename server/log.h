/*
 * log.h — the daemon's log: one line per message on stderr,
 * `2026-11-22T15:34:12.123Z INFO normlabd: message`, timestamps in UTC with milliseconds.
 * The LOG_* macros compare against log_min_level before evaluating their arguments, so a
 * disabled LOG_DEBUG costs one integer compare and its arguments are never formatted.
 *
 * Owns no memory. Threading: log_min_level and the ident are written once by main (log_init)
 * before any other thread starts and only read afterwards; log_write is safe from any thread
 * (each line is formatted into a local buffer and written with a single stdio call, which stdio
 * locks, so lines from different threads never interleave).
 */
#ifndef LOG_H
#define LOG_H

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_ERROR = 3,
};

/* A line's message part is cut at this many bytes (and marked "[truncated]"). */
#define LOG_LINE_MAX 2048

/* Messages below this level are dropped. Written only by log_init; default LOG_LEVEL_INFO. */
extern int log_min_level;

/*
 * Sets the level and the ident printed after it (borrowed: must outlive every log call; NULL
 * keeps "normlabd"). Call once from main before starting threads. Out-of-range levels are
 * clamped.
 */
void log_init(int level, const char *ident);

/* "debug", "info", "warn", "error" (the config file's spelling); "?" for anything else. */
const char *log_level_name(int level);

/*
 * Writes one line at `level` whatever log_min_level says (the macros do the filtering).
 * Control characters in the message (newlines included) become '?', so one call is always
 * exactly one line and text from outside cannot forge log lines. Preserves errno.
 */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(level, ...) do { \
	if ((level) >= log_min_level) \
		log_write((level), __VA_ARGS__); \
} while (0)

#define LOG_DEBUG(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARN(...)  LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
