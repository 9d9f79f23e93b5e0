/*
 * tokens.h — the daemon's live token set: the tokens file (auth.h) loaded at start, refused unless
 * it is private to the daemon's user (perms.h), and swapped for a fresh load on SIGHUP without a
 * restart. A new token works and a removed one stops working from the next request on; a reload
 * that fails (a bad line, a file others can read, a missing file) keeps the set in use.
 *
 * Threading: any number of HTTP threads call tokens_check while one thread reloads. The current
 * set sits behind a read-write lock: checks share it, the swap takes it exclusively for the
 * pointer exchange only (the new file is read and parsed before, the old set freed after). The
 * struct is owned by main (tokens_open / tokens_free).
 */
#ifndef TOKENS_H
#define TOKENS_H

#include <stddef.h>

#include "auth.h"

struct tokens;

/*
 * Loads path (borrowed, copied). "" = no tokens file: every check fails and reloads do nothing.
 * Refuses a file that perms_secret_check rejects. 0 and *out, or -1 with errbuf filled.
 */
int tokens_open(struct tokens **out, const char *path, char *errbuf, size_t cap);

/* Re-reads the file. 0: swapped (msg says how many tokens); -1: the old set stays, msg says why. */
int tokens_reload(struct tokens *t, char *msg, size_t cap);

/* auth_check_role against the current set (role: enum auth_role). Returns an AUTH_* code. */
int tokens_check(struct tokens *t, const char *authorization, char *user, size_t cap, int *role);

/* auth_user_is_admin against the current set (thread-safe with reloads); 0 for NULL. */
int tokens_user_is_admin(struct tokens *t, const char *user);

/* Tokens in the current set; 0 for NULL. */
size_t tokens_count(struct tokens *t);

/* The configured path ("" when none). Borrowed for t's lifetime. */
const char *tokens_path(const struct tokens *t);

void tokens_free(struct tokens *t);

#endif
