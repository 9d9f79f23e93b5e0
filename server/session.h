/*
 * session.h — browser sessions, so the dashboard can read when reads need a token: an EventSource
 * cannot send an Authorization header, but it sends cookies. POST /api/v1/session with a bearer
 * token makes a session: a random 256-bit id that goes back as an HttpOnly, SameSite=Strict
 * cookie, valid for reads only (the http layer never takes it for a write) until it expires.
 *
 * The session keeps the token it was made from, in daemon memory only, and every use checks that
 * token against the current token set: a token removed by a SIGHUP reload ends its sessions at
 * once, and a changed role applies at once. The id is compared in constant time against every
 * slot; it never appears in a URL or a log line.
 *
 * Caps: SESSION_MAX sessions, SESSION_PER_USER per user (a new one replaces that user's oldest).
 * Threading: one mutex guards the table; any thread. Owned by main.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stddef.h>

#include "tokens.h"

#define SESSION_COOKIE "normlab_session"
#define SESSION_ID_BYTES 32
#define SESSION_ID_HEX (2 * SESSION_ID_BYTES)   /* the cookie value: lowercase hex */
#define SESSION_MAX 1024
#define SESSION_PER_USER 16
#define SESSION_AUTH_MAX (AUTH_TOKEN_MAX + 64)  /* the Authorization value a session keeps */

struct sessions;

/* A table whose sessions last ttl_s seconds and are checked against tokens (borrowed). */
int session_table_new(struct sessions **out, struct tokens *tokens, int ttl_s);
void session_table_free(struct sessions *s);

/*
 * Makes a session for a request that authenticated with `authorization` (its Authorization
 * header, borrowed) as `user`. id_out (SESSION_ID_HEX + 1 bytes) gets the cookie value,
 * *expires_at the wall-clock end (unix seconds). 0, or -1 when no random bytes could be had or
 * the header is too long to keep.
 */
int session_create(struct sessions *s, const char *authorization, const char *user, char *id_out,
		   double *expires_at);

/* The user and enum auth_role of a live session whose token is still valid: AUTH_OK, else
 * AUTH_EUNKNOWN (no such session, expired, malformed id, or its token is gone). */
int session_check(struct sessions *s, const char *id, char *user, size_t cap, int *role);

/* Ends session id (ignores unknown ids). */
void session_delete(struct sessions *s, const char *id);

/* Live sessions (expired ones not yet collected may count). */
int session_count(struct sessions *s);

/* The table's lifetime in seconds. */
int session_ttl(const struct sessions *s);

#endif
