/*
 * auth.h — API tokens: a tokens file with one `TOKEN USER ROLE` line per token (ROLE is `user`,
 * `admin` or `reader`; blank lines and '#' comment lines allowed), and the check of an HTTP
 * `Authorization: Bearer <token>` header against it. The token is compared in constant time
 * against every entry (no early exit on a differing byte, nor on a match), so response timing
 * reveals nothing about the tokens.
 *
 * Hard caps: AUTH_LINES_MAX lines, tokens AUTH_TOKEN_MIN..AUTH_TOKEN_MAX characters of
 * [A-Za-z0-9._~+/=-], users 1..AUTH_USER_MAX-1 characters of [A-Za-z0-9._-]. A token listed
 * twice is an error; one user may hold several tokens (rotation). Error messages never contain
 * a token's text.
 *
 * struct auth is owned by its creator (auth_load; free with auth_free). Read-only after load:
 * any number of threads may call auth_check on it at once; reloading = load a new one and swap.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stddef.h>

#define AUTH_ERR_MSG 256
#define AUTH_LINES_MAX 10000
#define AUTH_LINE_MAX 1024      /* bytes per line, newline excluded */
#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256
#define AUTH_USER_MAX 64        /* buffer size: user names are 1..63 bytes */

enum auth_code {
	AUTH_OK = 0,
	AUTH_ENOMEM = -1,
	AUTH_EINVAL = -2,       /* a bad line in the tokens file: msg is "file:line: reason" */
	AUTH_EIO = -3,          /* the tokens file is missing or unreadable */
	AUTH_ELIMIT = -4,       /* more than AUTH_LINES_MAX lines, or a line over AUTH_LINE_MAX */
	/* auth_check results: the HTTP layer answers 401 for all three. */
	AUTH_ENOHEADER = -20,   /* no Authorization header, or an empty one */
	AUTH_EMALFORMED = -21,  /* not "Bearer <token68>" */
	AUTH_EUNKNOWN = -22,    /* well-formed, but no such token */
};

/* err->line is the tokens-file line of the problem (0 when not about a line). */
struct auth_err {
	int code;
	int line;
	char msg[AUTH_ERR_MSG];
};

/* What a token may do. A reader reads every run and sweep (also when reads_open is false) and
 * writes nothing; a user reads what reads_open allows and writes their own; an admin does all. */
enum auth_role {
	AUTH_ROLE_USER = 0,
	AUTH_ROLE_ADMIN = 1,
	AUTH_ROLE_READER = 2,
};

struct auth;

/*
 * Loads the tokens file at path (borrowed). path NULL or "" gives an empty table: every
 * auth_check then returns AUTH_EUNKNOWN. On success *out is the caller's; free with auth_free.
 * On error *out is NULL and err (may be NULL) says which line and why.
 */
int auth_load(struct auth **out, const char *path, struct auth_err *err);

/* Frees a (NULL is fine). */
void auth_free(struct auth *a);

/* Number of tokens loaded. */
size_t auth_count(const struct auth *a);

/*
 * Checks an Authorization header value (borrowed; NULL when the request had none). Accepts
 * "Bearer <token>" with the scheme in any case, one or more spaces or tabs after it, and
 * surrounding whitespace. On AUTH_OK copies the user name into user_out (cap bytes; pass
 * AUTH_USER_MAX; may be NULL) and sets *is_admin (may be NULL) to 1 for role admin, else 0.
 * On failure user_out is "" and *is_admin 0. Returns AUTH_OK, AUTH_ENOHEADER, AUTH_EMALFORMED
 * or AUTH_EUNKNOWN. Cost: one pass over every loaded token, whatever the input.
 */
int auth_check(const struct auth *a, const char *authorization_header, char *user_out, size_t cap,
	       int *is_admin);

/* auth_check with the token's enum auth_role in *role (may be NULL; AUTH_ROLE_USER on failure). */
int auth_check_role(const struct auth *a, const char *authorization_header, char *user_out,
		    size_t cap, int *role);
/* 1 when any token of `user` (borrowed) has role admin, else 0 (also for an unknown user).
 * For decisions about a stored owner rather than a request (the scheduler's per-user caps). */
int auth_user_is_admin(const struct auth *a, const char *user);

#endif
