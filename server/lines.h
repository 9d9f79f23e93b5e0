/*
 * lines.h — the bounded line reader behind the config and tokens files: one line at a time into
 * a caller's buffer, with a hard length cap and NUL-byte detection, so each file format only
 * parses. No state of its own; the caller owns the FILE and the buffer.
 */
#ifndef LINES_H
#define LINES_H

#include <stddef.h>
#include <stdio.h>

enum lines_result {
	LINES_OK = 0,        /* a line is in buf */
	LINES_EOF = 1,       /* nothing more to read */
	LINES_TOO_LONG = -1, /* the line has more than max bytes (reading stopped inside it) */
	LINES_IO = -2,       /* read error; errno says why */
};

/*
 * Reads the next line of f, without its '\n', into buf (max + 1 bytes), NUL-terminated.
 * *has_nul: the line held a NUL byte (so buf's string is shorter than the line). *last: the file
 * ended after this line (it had no final newline).
 */
int lines_read(FILE *f, char *buf, size_t max, int *has_nul, int *last);

#endif
