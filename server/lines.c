/*
 * lines.c — the bounded line reader (see lines.h).
 */
#include "lines.h"

int lines_read(FILE *f, char *buf, size_t max, int *has_nul, int *last)
{
	size_t n = 0;
	int ch;
	*has_nul = 0;
	*last = 0;
	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (n == max)
			return LINES_TOO_LONG;
		*has_nul |= ch == '\0';
		buf[n++] = (char)ch;
	}
	if (ch == EOF && ferror(f))
		return LINES_IO;
	if (ch == EOF && n == 0)
		return LINES_EOF;
	buf[n] = '\0';
	*last = ch == EOF;
	return LINES_OK;
}
