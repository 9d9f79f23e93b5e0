/*
 * nl.h — the engine's shared basics: the numeric type, the error struct, and the one allocation
 * wrapper every module goes through (so tests can make the Nth allocation fail).
 * Owns nothing. Thread-safe except nl_alloc_fail_at(), which tests call before starting threads.
 */
#ifndef NL_H
#define NL_H

#include <stddef.h>
#include <stdint.h>

/*
 * The kernels are written once over `real`. The normal build makes it float; the gradient-check
 * build (-DNL_DOUBLE) makes it double, so finite differences are meaningful. A scalar typedef is
 * the one exception to "no typedefs": it is what lets the same source compile both ways.
 */
#ifdef NL_DOUBLE
typedef double real;
#define NL_REAL_NAME "F64"
#else
typedef float real;
#define NL_REAL_NAME "F32"
#endif

enum nl_code {
	NL_OK = 0,
	NL_ENOMEM = -1,
	NL_EINVAL = -2,   /* bad input from outside: spec, file, argument */
	NL_EIO = -3,      /* read/write failed */
	NL_ELIMIT = -4,   /* a hard cap was exceeded */
	NL_EDIVERGED = -5,/* non-finite loss or gradient */
	NL_ECANCEL = -6,  /* should_stop said so */
	NL_EDEAD = -7,    /* run health: dead (no gradient reaches the blocks, or a norm saturated) */
};

#define NL_ERR_MSG 512

/* One error type for the engine: a code and a bounded, human-readable line. */
struct nl_err {
	int code;
	char msg[NL_ERR_MSG];
};

/* Fills err (may be NULL) and returns code, so callers can write `return nl_err_set(...)`. */
int nl_err_set(struct nl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Allocation wrappers. Return NULL on failure (or on the injected failure). Free with nl_free. */
void *nl_malloc(size_t n);
void *nl_calloc(size_t count, size_t size);
void *nl_realloc(void *p, size_t n);
char *nl_strdup(const char *s);
void nl_free(void *p);

/* Test hook: make the nth allocation from now fail (1 = the next one); 0 disables. */
void nl_alloc_fail_at(long nth);
/* Number of allocations made so far (tests use it to iterate over every failure point). */
long nl_alloc_count(void);

/* Bounded copy: always NUL-terminates; returns 0, or -1 if src was truncated. */
int nl_strlcpy(char *dst, const char *src, size_t cap);

/*
 * Offset of the first byte of s[0..n) that does not begin a well-formed UTF-8 sequence (RFC 3629:
 * overlong forms, surrogates and code points past U+10FFFF are not), or n when all of it is.
 * JSON text must be UTF-8 (RFC 8259 §8.1); anything we echo into JSON is checked with this.
 */
size_t nl_utf8_check(const char *s, size_t n);

/* mkdir -p: creates path and its missing parents (mode 0755). Returns 0, or -1 with errno set. */
int nl_mkdir_p(const char *path);

/* Wall clock in seconds (CLOCK_MONOTONIC), for throughput figures only, never for results. */
double nl_now(void);

#endif
