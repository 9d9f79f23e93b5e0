/*
 * http.h — the daemon's HTTP layer on libmicrohttpd: a route table ("/api/v1/experiments/{id}"),
 * request bodies collected under a hard byte cap, a JSON nesting cap checked before any parser
 * sees the body, bearer-token authentication through a callback, RFC 9457 problem+json errors,
 * and streamed responses (CSV/NDJSON export, Server-Sent Events).
 * Threading: libmicrohttpd runs event-driven on a small pool of worker threads (epoll), each
 * serving many connections; handlers and stream readers run on those workers, so they must not
 * block for long (a slow handler delays the other connections of its worker), and must only
 * touch shared state through thread-safe APIs. A stream with nothing to send parks its
 * connection instead of blocking (see http_reader_fn). The server struct is owned by main.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_PARAMS 2
#define HTTP_MAX_POINTERS 16
#define HTTP_NAME_MAX 160

struct http_request {
	const char *method;
	const char *path;               /* without the query string */
	void *conn;                     /* struct MHD_Connection, for http_query() */
	const char *body;               /* NUL-terminated copy, body_len bytes; NULL if none */
	size_t body_len;
	int64_t params[HTTP_MAX_PARAMS];/* the {id} segments of the route, in order */
	char name[HTTP_NAME_MAX];       /* the {name} segment ([A-Za-z0-9._-]+), "" if none */
	int authed;                     /* a valid bearer token (or session cookie) came with it */
	int is_admin;
	int is_reader;                  /* role reader: reads every run, writes nothing */
	int via_session;                /* authed by the session cookie, not a bearer header */
	int read_own_only;              /* reads_open is false and the role is user: the handler
					 * shows only runs and sweeps whose owner is `user` */
	char user[64];                  /* token's user when authed */
	char client[48];                /* the peer's address as text ("127.0.0.1"), "" unknown */
};

/*
 * Streamed body: called on a worker thread for the next bytes; returns bytes written, -1 = end
 * of stream, -2 = error, or 0 = nothing yet: the connection is then parked (no thread waits on
 * it) and the reader is called again after http_streams_wake, after at most stream_tick_ms, or
 * never if the peer hangs up meanwhile (the stream ends; free_fn runs at once). Returning 0
 * while the server stops ends the stream. A reader must not block. free_fn releases cls when
 * the connection closes.
 */
typedef ssize_t (*http_reader_fn)(void *cls, char *buf, size_t max);
typedef void (*http_free_fn)(void *cls);

struct http_response {
	int status;
	char *body;                     /* owned by the response (nl_malloc'd); NULL = empty */
	size_t len;
	char content_type[64];          /* default application/json */
	char location[160];             /* Location header when set */
	char allow[64];                 /* Allow header when set (405) */
	char set_cookie[192];           /* Set-Cookie header when set */
	http_reader_fn reader;          /* non-NULL: stream instead of body */
	http_free_fn reader_free;
	void *reader_cls;
};

typedef void (*http_handler)(void *ctx, const struct http_request *req, struct http_response *resp);

enum http_access {
	HTTP_READ,    /* open when the server allows open reads, else needs a token */
	HTTP_WRITE,   /* always needs a token */
	HTTP_PUBLIC,  /* never needs a token (health, the dashboard's static files) */
};

struct http_route {
	const char *method;             /* "GET", "POST", "PATCH", "DELETE" */
	const char *pattern;            /* literal segments, {id} (a positive integer) and at most one
					 * {name} (a metric name: letters, digits, '.', '_', '-') */
	enum http_access access;
	http_handler fn;
};

/* What an authenticated request may do (http_auth_fn's *role). */
enum http_role {
	HTTP_ROLE_USER = 0,
	HTTP_ROLE_ADMIN = 1,
	HTTP_ROLE_READER = 2,   /* any HTTP_WRITE route answers 403 */
};

/* Returns 0 and fills user/role (enum http_role) for a valid "Bearer <token>" header, else < 0. */
typedef int (*http_auth_fn)(void *ctx, const char *authorization, char *user, size_t cap,
			    int *role);
/* The same for the value of the session cookie (HTTP_SESSION_COOKIE). */
typedef int (*http_session_fn)(void *ctx, const char *session, char *user, size_t cap, int *role);

/* The cookie a browser session travels in; accepted on HTTP_READ routes only. */
#define HTTP_SESSION_COOKIE "normlab_session"

struct http_config {
	const char *host;               /* numeric IPv4 address to bind, e.g. "127.0.0.1" */
	int port;                       /* 0 = any free port (see http_port) */
	size_t max_body;                /* bytes; larger bodies get 413 */
	int max_json_depth;             /* deeper JSON gets 400 before parsing */
	int reads_open;
	unsigned threads;               /* worker threads (each serves many connections); 0 = 1 */
	unsigned max_connections;       /* over all clients; lowered to fit RLIMIT_NOFILE; 0 = 1024 */
	unsigned max_per_ip;            /* connections one client address may hold; 0 = no limit */
	unsigned timeout_s;             /* silence (idle, slow header or body) before a connection
					 * is closed; 0 = 15 */
	unsigned stream_tick_ms;        /* parked streams are called again this often; 0 = 1000 */
	unsigned fd_reserve;            /* descriptors kept free of connections (database, files) */
	http_auth_fn auth;              /* NULL = no tokens: every write gets 401 */
	void *auth_ctx;
	http_session_fn session;        /* NULL = session cookies are ignored */
	void *session_ctx;
	/* Fallback for paths no route matches with GET (static files); NULL = 404. */
	http_handler fallback;
};

struct http_server;

/* Starts listening; routes are borrowed for the server's lifetime. ctx goes to every handler. */
int http_start(struct http_server **out, const struct http_config *cfg,
	       const struct http_route *routes, int n_routes, void *ctx, char *errbuf, size_t cap);
/* Stops accepting, ends parked streams, closes every connection (streams see their reader
 * freed) and joins the server's threads. */
void http_stop(struct http_server *s);
int http_port(const struct http_server *s);
/* The connection limit in force (after fitting the open-file limit) and that limit (0 =
 * unlimited) in *nofile when non-NULL. */
unsigned http_max_connections(const struct http_server *s, unsigned long *nofile);
/* Calls every parked stream's reader again soon (something it waits for happened). Any thread;
 * s may be NULL. */
void http_streams_wake(struct http_server *s);

/* Query argument `key` of the request, or NULL. Borrowed for the request's lifetime. */
const char *http_query(const struct http_request *req, const char *key);
/* A request header, or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/* Body helpers: the response takes a copy of / ownership of the text. Return 0 or NL_ENOMEM. */
int http_json(struct http_response *r, int status, const char *json);
int http_json_take(struct http_response *r, int status, char *json);

/*
 * A problem+json body: {"type","title","status","code","detail","errors":[{"pointer","detail"}]}.
 * pointers/details may be NULL with n = 0.
 */
void http_problem(struct http_response *r, int status, const char *code, const char *detail,
		  const char *const *pointers, const char *const *details, int n);

/* Nesting depth of a JSON text (brackets outside strings); stops counting past limit+1. */
int http_json_depth(const char *text, size_t len, int limit);

#endif
