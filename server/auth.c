/*
 * auth.c — the tokens file reader and the Bearer check.
 *
 * Each token is stored zero-padded to AUTH_TOKEN_MAX bytes next to its length, and the
 * presented token is padded the same way, so comparing one candidate always touches
 * AUTH_TOKEN_MAX bytes and accumulates the difference with OR: no early exit on the first
 * differing byte. auth_check compares against every entry and picks the match with a mask,
 * so the time does not depend on whether or where a token matched either. Cost per request:
 * n_tokens * AUTH_TOKEN_MAX byte operations (2.5 MB at the 10,000-line cap, about a
 * millisecond; a few microseconds for a realistic file).
 *
 * Owns the entry array of each struct auth (wiped before it is freed, since it holds secrets).
 * No globals; read-only after auth_load, so auth_check is safe from any number of threads.
 */
#define _POSIX_C_SOURCE 200809L
#include "auth.h"
#include "lines.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_entry {
	unsigned char token[AUTH_TOKEN_MAX];   /* zero-padded, not NUL-terminated when full */
	size_t len;                            /* AUTH_TOKEN_MIN..AUTH_TOKEN_MAX */
	char user[AUTH_USER_MAX];
	int role;                              /* enum auth_role */
	int line;                              /* in the tokens file, for duplicate messages */
};

struct auth {
	struct auth_entry *e;                  /* n used of cap */
	size_t n, cap;
};

static int auth_err_set(struct auth_err *err, int code, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int auth_err_set(struct auth_err *err, int code, int line, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
		err->line = line;
	}
	return code;
}

/* A memset the compiler may not drop because the memory is about to be freed. */
static void auth_wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

static int auth_is_token_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/' || ch == '=' ||
	       ch == '-';
}

static int auth_is_user_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-';
}

static int auth_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->e) {
		auth_wipe(a->e, a->cap * sizeof *a->e);
		free(a->e);
	}
	free(a);
}

size_t auth_count(const struct auth *a)
{
	return a ? a->n : 0;
}

/*
 * Parses one line (NUL-terminated, no newline) into a new entry of a. Blank and comment lines
 * add nothing. Messages never quote the fields: a misordered line could put a token in any of
 * them.
 */
static int auth_parse_line(struct auth *a, char *line, int lineno, char *why, size_t cap)
{
	char *field[4];
	size_t flen[4];
	int nf = 0, role;
	char *p = line;
	struct auth_entry *e;

	while (auth_is_space(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	while (*p) {
		if (nf == 4)
			break;
		field[nf] = p;
		while (*p && !auth_is_space(*p))
			p++;
		flen[nf] = (size_t)(p - field[nf]);
		nf++;
		while (auth_is_space(*p))
			p++;
	}
	if (nf != 3) {
		snprintf(why, cap, "expected 'TOKEN USER ROLE', found %s fields",
			 nf == 4 ? "more than 3" : nf == 2 ? "2" : "1");
		return AUTH_EINVAL;
	}
	if (flen[0] < AUTH_TOKEN_MIN || flen[0] > AUTH_TOKEN_MAX) {
		snprintf(why, cap, "the token is %zu characters long; it must be %d..%d", flen[0],
			 AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
		return AUTH_EINVAL;
	}
	for (size_t i = 0; i < flen[0]; i++) {
		if (!auth_is_token_char((unsigned char)field[0][i])) {
			snprintf(why, cap, "the token has a character outside [A-Za-z0-9._~+/=-] "
				 "(column %td)", field[0] + i - line + 1);
			return AUTH_EINVAL;
		}
	}
	if (flen[1] > AUTH_USER_MAX - 1) {
		snprintf(why, cap, "the user name is %zu characters long; it must be 1..%d", flen[1],
			 AUTH_USER_MAX - 1);
		return AUTH_EINVAL;
	}
	for (size_t i = 0; i < flen[1]; i++) {
		if (!auth_is_user_char((unsigned char)field[1][i])) {
			snprintf(why, cap, "the user name has a character outside [A-Za-z0-9._-] "
				 "(column %td)", field[1] + i - line + 1);
			return AUTH_EINVAL;
		}
	}
	if (flen[2] == 4 && memcmp(field[2], "user", 4) == 0) {
		role = AUTH_ROLE_USER;
	} else if (flen[2] == 5 && memcmp(field[2], "admin", 5) == 0) {
		role = AUTH_ROLE_ADMIN;
	} else if (flen[2] == 6 && memcmp(field[2], "reader", 6) == 0) {
		role = AUTH_ROLE_READER;
	} else {
		snprintf(why, cap, "the role must be 'user', 'admin' or 'reader'");
		return AUTH_EINVAL;
	}

	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;
		struct auth_entry *ne;
		if (ncap > AUTH_LINES_MAX)
			ncap = AUTH_LINES_MAX;
		ne = malloc(ncap * sizeof *ne);
		if (!ne) {
			snprintf(why, cap, "out of memory");
			return AUTH_ENOMEM;
		}
		/* copy and wipe rather than realloc, which could leave tokens in freed memory */
		if (a->e) {
			memcpy(ne, a->e, a->n * sizeof *ne);
			auth_wipe(a->e, a->cap * sizeof *a->e);
			free(a->e);
		}
		a->e = ne;
		a->cap = ncap;
	}
	e = &a->e[a->n];
	memset(e, 0, sizeof *e);
	memcpy(e->token, field[0], flen[0]);
	e->len = flen[0];
	memcpy(e->user, field[1], flen[1]);
	e->user[flen[1]] = '\0';
	e->role = role;
	e->line = lineno;
	a->n++;
	return 0;
}

static int auth_entry_cmp(const void *x, const void *y)
{
	const struct auth_entry *a = *(const struct auth_entry *const *)x;
	const struct auth_entry *b = *(const struct auth_entry *const *)y;
	int c = memcmp(a->token, b->token, AUTH_TOKEN_MAX);
	if (c == 0 && a->len != b->len)
		c = a->len < b->len ? -1 : 1;
	if (c == 0)
		c = a->line < b->line ? -1 : a->line > b->line;
	return c;
}

/* Finds a token listed twice; reports the earliest line that repeats an earlier one. */
static int auth_check_duplicates(const struct auth *a, const char *path, struct auth_err *err)
{
	const struct auth_entry **v;
	int rc = 0, dup_line = 0, first_line = 0;

	if (a->n < 2)
		return 0;
	v = malloc(a->n * sizeof *v);
	if (!v) {
		rc = auth_err_set(err, AUTH_ENOMEM, 0, "%s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < a->n; i++)
		v[i] = &a->e[i];
	qsort(v, a->n, sizeof *v, auth_entry_cmp);
	for (size_t i = 1; i < a->n; i++) {
		if (v[i]->len == v[i - 1]->len &&
		    memcmp(v[i]->token, v[i - 1]->token, AUTH_TOKEN_MAX) == 0 &&
		    (dup_line == 0 || v[i]->line < dup_line)) {
			dup_line = v[i]->line;
			first_line = v[i - 1]->line;
		}
	}
	if (dup_line)
		rc = auth_err_set(err, AUTH_EINVAL, dup_line,
				  "%s:%d: duplicate token (already on line %d)", path, dup_line,
				  first_line);
out:
	free(v);
	return rc;
}

int auth_load(struct auth **out, const char *path, struct auth_err *err)
{
	char line[AUTH_LINE_MAX + 1];
	char why[AUTH_ERR_MSG];
	int lineno = 0, rc = 0;
	FILE *f = NULL;
	struct auth *a;

	*out = NULL;
	a = calloc(1, sizeof *a);
	if (!a) {
		rc = auth_err_set(err, AUTH_ENOMEM, 0, "out of memory");
		goto out;
	}
	if (!path || !*path)
		goto out;
	f = fopen(path, "r");
	if (!f) {
		rc = auth_err_set(err, AUTH_EIO, 0, "%s: cannot open tokens file: %s", path,
				  strerror(errno));
		goto out;
	}
	for (;;) {
		int has_nul, last;
		int lr = lines_read(f, line, AUTH_LINE_MAX, &has_nul, &last);

		if (lr == LINES_TOO_LONG) {
			rc = auth_err_set(err, AUTH_ELIMIT, lineno + 1,
					  "%s:%d: line is longer than %d bytes", path, lineno + 1,
					  AUTH_LINE_MAX);
			goto out;
		}
		if (lr == LINES_IO) {
			rc = auth_err_set(err, AUTH_EIO, lineno + 1, "%s:%d: read error: %s", path,
					  lineno + 1, strerror(errno));
			goto out;
		}
		if (lr == LINES_EOF)
			break;
		if (++lineno > AUTH_LINES_MAX) {
			rc = auth_err_set(err, AUTH_ELIMIT, lineno, "%s:%d: more than %d lines", path,
					  lineno, AUTH_LINES_MAX);
			goto out;
		}
		if (has_nul) {
			rc = auth_err_set(err, AUTH_EINVAL, lineno, "%s:%d: line contains a NUL byte",
					  path, lineno);
			goto out;
		}
		rc = auth_parse_line(a, line, lineno, why, sizeof why);
		if (rc != 0) {
			rc = auth_err_set(err, rc, lineno, "%s:%d: %s", path, lineno, why);
			goto out;
		}
		if (last)
			break;
	}
	rc = auth_check_duplicates(a, path, err);
out:
	auth_wipe(line, sizeof line);
	if (f)
		fclose(f);
	if (rc != 0) {
		auth_free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

/* ASCII case-insensitive: does s start with the lowercase word w? */
static int auth_starts_with_ci(const char *s, const char *w)
{
	for (; *w; s++, w++) {
		char ch = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
		if (ch != *w)
			return 0;
	}
	return 1;
}

int auth_check(const struct auth *a, const char *authorization_header, char *user_out, size_t cap,
	       int *is_admin)
{
	int role, rc = auth_check_role(a, authorization_header, user_out, cap, &role);
	if (is_admin)
		*is_admin = rc == AUTH_OK && role == AUTH_ROLE_ADMIN;
	return rc;
}

int auth_check_role(const struct auth *a, const char *authorization_header, char *user_out,
		    size_t cap, int *role)
{
	unsigned char given[AUTH_TOKEN_MAX];
	const char *p = authorization_header, *tok;
	size_t len, found = 0, idx = 0;
	int rc = AUTH_OK;

	if (user_out && cap)
		user_out[0] = '\0';
	if (role)
		*role = AUTH_ROLE_USER;
	if (!p)
		return AUTH_ENOHEADER;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return AUTH_ENOHEADER;
	if (!auth_starts_with_ci(p, "bearer") || (p[6] != ' ' && p[6] != '\t'))
		return AUTH_EMALFORMED;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	tok = p;
	while (*p && *p != ' ' && *p != '\t') {
		if (!auth_is_token_char((unsigned char)*p))
			return AUTH_EMALFORMED;
		p++;
	}
	len = (size_t)(p - tok);
	while (*p == ' ' || *p == '\t')
		p++;
	if (len == 0 || *p != '\0')
		return AUTH_EMALFORMED;
	/* No stored token has another length; rejecting here reveals only the public policy. */
	if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX || !a)
		return AUTH_EUNKNOWN;

	memset(given, 0, sizeof given);
	memcpy(given, tok, len);
	for (size_t i = 0; i < a->n; i++) {
		const struct auth_entry *e = &a->e[i];
		size_t diff = e->len ^ len, eq, mask;
		for (size_t j = 0; j < AUTH_TOKEN_MAX; j++)
			diff |= (size_t)(e->token[j] ^ given[j]);
		/* diff < 2^9, so diff - 1 has its top bit set exactly when diff == 0 */
		eq = (diff - 1) >> (sizeof diff * 8 - 1);
		mask = (size_t)0 - eq;
		found |= eq;
		idx = (idx & ~mask) | (i & mask);
	}
	auth_wipe(given, sizeof given);
	if (!found) {
		rc = AUTH_EUNKNOWN;
		goto out;
	}
	if (user_out && cap)
		snprintf(user_out, cap, "%s", a->e[idx].user);
	if (role)
		*role = a->e[idx].role;
out:
	return rc;
}

int auth_user_is_admin(const struct auth *a, const char *user)
{
	for (size_t i = 0; a && user && i < a->n; i++)
		if (a->e[i].role == AUTH_ROLE_ADMIN && strcmp(a->e[i].user, user) == 0)
			return 1;
	return 0;
}
