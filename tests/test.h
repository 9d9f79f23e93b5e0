/*
 * test.h — the tiny harness every unit test uses: CHECK records a failure with file:line and goes
 * on; the test's main returns test_finish(), which prints "name: N passed, N failed" and exits
 * non-zero on any failure. Each test is its own process (the runner adds a timeout).
 */
#ifndef TEST_H
#define TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_pass_count;
static int test_fail_count;

#define CHECK(cond) do { \
	if (cond) { test_pass_count++; } \
	else { test_fail_count++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECKF(cond, ...) do { \
	if (cond) { test_pass_count++; } \
	else { test_fail_count++; fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
	       fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

static inline int test_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, test_pass_count, test_fail_count);
	return test_fail_count ? 1 : 0;
}

#endif
