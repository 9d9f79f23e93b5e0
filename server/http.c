/*
 * http.c — libmicrohttpd glue: collects the body (capped), matches the route, authenticates,
 * checks JSON depth, calls the handler, and turns its http_response into an MHD response.
 * Per-request state lives in the connection's con_cls and is freed in the completion callback.
 *
 * libmicrohttpd runs event-driven: a few worker threads, each polling many connections with
 * epoll, so an idle or slow connection costs a socket and a little memory, never a thread; a
 * per-address limit and a short silence timeout keep one client from holding them all.
 * Streams (CSV/NDJSON export, SSE) are read through a callback on the worker thread; one that
 * has nothing to send yet must not be polled in a loop nor block the worker, so its connection
 * is suspended ("parked") and the watcher thread resumes it: when http_streams_wake is called,
 * when the tick passes, or at once (ending the stream) when the peer hangs up, which a
 * suspended connection would otherwise not notice. The parked list is guarded by mu; only the
 * watcher (and http_stop, after the watcher is gone) resumes parked connections.
 */
#define _GNU_SOURCE   /* POLLRDHUP */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "nl.h"

struct stream;

struct http_server {
	struct MHD_Daemon *d;
	struct http_config cfg;
	const struct http_route *routes;
	int n_routes;
	void *ctx;
	int port;
	unsigned max_connections;   /* what MHD got: cfg's, lowered to fit RLIMIT_NOFILE */
	unsigned long nofile;       /* the open-file limit after raising it */
	/* parked streams and the watcher (mu) */
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* n_resuming reached 0 */
	struct stream *parked;
	int n_parked;
	int n_resuming;             /* resumed, their reader not yet called again */
	int wake_all;               /* http_streams_wake since the watcher last looked */
	int stopping;
	int wake_fd;                /* eventfd: the watcher's poll wakes up */
	pthread_t watcher;
	int watcher_started;
};

/* A streamed response: the handler's reader plus what parking its connection needs. */
struct stream {
	struct http_response r;     /* reader, reader_free, reader_cls */
	struct http_server *srv;
	struct MHD_Connection *conn;
	int fd;                     /* the connection's socket, polled for hang-up while parked */
	int parked;                 /* suspended and in srv->parked (srv->mu) */
	int resumed;                /* counted in srv->n_resuming (srv->mu) */
	int gone;                   /* the peer hung up while parked: end without reading */
	struct stream *next;
};

struct req_state {
	char *buf;
	size_t len, cap;
	int too_big;
};

static const char *status_title(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return status >= 500 ? "Internal Server Error" : "Error";
	}
}

int http_json_take(struct http_response *r, int status, char *json)
{
	nl_free(r->body);
	r->status = status;
	r->body = json;
	r->len = json ? strlen(json) : 0;
	snprintf(r->content_type, sizeof r->content_type, "application/json");
	return json ? 0 : NL_ENOMEM;
}

int http_json(struct http_response *r, int status, const char *json)
{
	char *copy = nl_strdup(json);
	if (!copy) {
		r->status = 500;
		return NL_ENOMEM;
	}
	return http_json_take(r, status, copy);
}

/* Appends s to the growable buffer as a JSON string literal. Bytes that are not UTF-8 (a raw
 * byte of a URL, a message cut mid-character by a %.Ns) become U+FFFD, so the document stays
 * valid JSON (RFC 8259 §8.1). Returns 0 or -1 (no memory). */
static int put_json_string(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + 2 + 6 * strlen(s) + 1;
	if (need > *cap) {
		size_t ncap = need * 2;
		char *n = nl_realloc(*buf, ncap);
		if (!n)
			return -1;
		*buf = n;
		*cap = ncap;
	}
	char *o = *buf + *len;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80) {
			size_t want = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
			if (strnlen((const char *)p, want) == want &&
			    nl_utf8_check((const char *)p, want) == want) {
				memcpy(o, p, want);
				o += want;
				p += want - 1;
			} else {
				memcpy(o, "\\ufffd", 6);   /* at most 6 bytes out per byte in, as sized */
				o += 6;
			}
		} else if (*p == '"' || *p == '\\') {
			*o++ = '\\';
			*o++ = (char)*p;
		} else if (*p < 0x20) {
			o += snprintf(o, 7, "\\u%04x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	*o = '\0';
	*len = (size_t)(o - *buf);
	return 0;
}

static int put_raw(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > *cap) {
		size_t ncap = (*len + n + 1) * 2;
		char *b = nl_realloc(*buf, ncap);
		if (!b)
			return -1;
		*buf = b;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	return 0;
}

void http_problem(struct http_response *r, int status, const char *code, const char *detail,
		  const char *const *pointers, const char *const *details, int n)
{
	char *b = NULL, num[32];
	size_t len = 0, cap = 0;
	int bad = 0;
	snprintf(num, sizeof num, "%d", status);
	bad |= put_raw(&b, &len, &cap, "{\"type\":");
	char type[96];
	snprintf(type, sizeof type, "/problems/%s", code);
	bad |= put_json_string(&b, &len, &cap, type);
	bad |= put_raw(&b, &len, &cap, ",\"title\":");
	bad |= put_json_string(&b, &len, &cap, status_title(status));
	bad |= put_raw(&b, &len, &cap, ",\"status\":");
	bad |= put_raw(&b, &len, &cap, num);
	bad |= put_raw(&b, &len, &cap, ",\"code\":");
	bad |= put_json_string(&b, &len, &cap, code);
	bad |= put_raw(&b, &len, &cap, ",\"detail\":");
	bad |= put_json_string(&b, &len, &cap, detail ? detail : status_title(status));
	if (n > 0) {
		bad |= put_raw(&b, &len, &cap, ",\"errors\":[");
		for (int i = 0; i < n && i < HTTP_MAX_POINTERS; i++) {
			bad |= put_raw(&b, &len, &cap, i ? ",{\"pointer\":" : "{\"pointer\":");
			bad |= put_json_string(&b, &len, &cap, pointers[i] ? pointers[i] : "");
			bad |= put_raw(&b, &len, &cap, ",\"detail\":");
			bad |= put_json_string(&b, &len, &cap, details && details[i] ? details[i] : "");
			bad |= put_raw(&b, &len, &cap, "}");
		}
		bad |= put_raw(&b, &len, &cap, "]");
	}
	bad |= put_raw(&b, &len, &cap, "}");
	nl_free(r->body);
	r->body = bad ? NULL : b;
	r->len = bad ? 0 : len;
	if (bad)
		nl_free(b);
	r->status = status;
	snprintf(r->content_type, sizeof r->content_type, "application/problem+json");
}

int http_json_depth(const char *text, size_t len, int limit)
{
	int depth = 0, max = 0, in_str = 0, esc = 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '[' || c == '{') {
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return max;
			}
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return max;
}

const char *http_query(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* Matches path against pattern; fills params for {id} segments and name for {name}. 1 = match. */
static int route_match(const char *pattern, const char *path, int64_t *params, char *name)
{
	int np = 0;
	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return 0;
		pattern++;
		path++;
		const char *pe = strchr(pattern, '/'), *qe = strchr(path, '/');
		size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
		size_t ql = qe ? (size_t)(qe - path) : strlen(path);
		if (pl == 4 && memcmp(pattern, "{id}", 4) == 0) {
			if (ql == 0 || ql > 18 || np >= HTTP_MAX_PARAMS)
				return 0;
			int64_t v = 0;
			for (size_t i = 0; i < ql; i++) {
				if (!isdigit((unsigned char)path[i]))
					return 0;
				v = v * 10 + (path[i] - '0');
			}
			if (v <= 0)
				return 0;
			params[np++] = v;
		} else if (pl == 6 && memcmp(pattern, "{name}", 6) == 0) {
			if (ql == 0 || ql >= HTTP_NAME_MAX)
				return 0;
			for (size_t i = 0; i < ql; i++)
				if (!name_char(path[i]))
					return 0;
			memcpy(name, path, ql);
			name[ql] = '\0';
		} else if (pl != ql || memcmp(pattern, path, pl) != 0) {
			return 0;
		}
		pattern += pl;
		path += ql;
	}
	if (*path == '/' && path[1] == '\0')   /* tolerate one trailing slash */
		path++;
	return *pattern == '\0' && *path == '\0';
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void poke_watcher(struct http_server *s)
{
	uint64_t one = 1;
	if (write(s->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		return;   /* EAGAIN: the counter is full, so a wake-up is pending anyway */
}

/* Resumes a parked stream's connection; its reader runs again on the worker. Under mu. */
static void unpark(struct http_server *s, struct stream *st)
{
	for (struct stream **p = &s->parked; *p; p = &(*p)->next) {
		if (*p == st) {
			*p = st->next;
			break;
		}
	}
	st->next = NULL;
	st->parked = 0;
	s->n_parked--;
	if (!st->resumed) {
		st->resumed = 1;
		s->n_resuming++;
	}
	MHD_resume_connection(st->conn);
}

static void resumed_done(struct http_server *s, struct stream *st)
{
	if (st->resumed) {
		st->resumed = 0;
		if (--s->n_resuming == 0)
			pthread_cond_broadcast(&s->cv);
	}
}

static ssize_t reader_adapter(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	struct http_server *s = st->srv;
	(void)pos;
	pthread_mutex_lock(&s->mu);
	resumed_done(s, st);
	int gone = st->gone;
	pthread_mutex_unlock(&s->mu);
	if (gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	ssize_t n = st->r.reader(st->r.reader_cls, buf, max);
	if (n == -1)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n > 0)
		return n;
	/* nothing yet: park instead of being called again at once (a busy loop) or blocking */
	pthread_mutex_lock(&s->mu);
	if (s->stopping || st->fd < 0) {
		pthread_mutex_unlock(&s->mu);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	MHD_suspend_connection(st->conn);
	st->parked = 1;
	st->next = s->parked;
	s->parked = st;
	s->n_parked++;
	pthread_mutex_unlock(&s->mu);
	poke_watcher(s);   /* so it polls this socket for a hang-up */
	return 0;
}

static void reader_free_adapter(void *cls)
{
	struct stream *st = cls;
	struct http_server *s = st->srv;
	pthread_mutex_lock(&s->mu);
	if (st->parked)   /* not expected: libmicrohttpd does not close suspended connections */
		unpark(s, st);
	resumed_done(s, st);
	pthread_mutex_unlock(&s->mu);
	if (st->r.reader_free)
		st->r.reader_free(st->r.reader_cls);
	nl_free(st);
}

/*
 * The watcher: polls the parked connections' sockets for a hang-up and its eventfd for wake-ups,
 * and resumes streams as the header of this file says. Snapshot pointers stay valid across the
 * unlocked poll because only this thread takes streams off the parked list.
 */
static void *watcher_main(void *arg)
{
	struct http_server *s = arg;
	struct pollfd *pf = NULL;
	struct stream **who = NULL;
	size_t cap = 0;
	double tick = s->cfg.stream_tick_ms ? s->cfg.stream_tick_ms : 1000;
	double next_tick = mono_ms() + tick;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		size_t n = 1;
		if ((size_t)s->n_parked + 1 > cap) {
			size_t ncap = ((size_t)s->n_parked + 1) * 2;
			struct pollfd *np = nl_realloc(pf, ncap * sizeof *np);
			if (np)
				pf = np;
			struct stream **nw = np ? nl_realloc(who, ncap * sizeof *nw) : NULL;
			if (nw)
				who = nw;
			if (np && nw)
				cap = ncap;
		}
		if (!pf || !who)
			cap = 0;
		if (cap) {
			pf[0].fd = s->wake_fd;
			pf[0].events = POLLIN;
			for (struct stream *st = s->parked; st && n < cap; st = st->next) {
				pf[n].fd = st->fd;
				pf[n].events = POLLRDHUP;   /* not POLLIN: a pipelined byte would spin */
				pf[n].revents = 0;
				who[n++] = st;
			}
		}
		pthread_mutex_unlock(&s->mu);
		double left = next_tick - mono_ms();
		int timeout = left < 0 ? 0 : (int)left + 1;
		if (cap) {
			pf[0].revents = 0;
			if (poll(pf, n, timeout) < 0)
				n = 1;
		} else {
			/* no memory for the poll set: fall back to the tick alone */
			struct pollfd one = { .fd = s->wake_fd, .events = POLLIN };
			poll(&one, 1, timeout);
			n = 0;
		}
		uint64_t drained;
		if (read(s->wake_fd, &drained, sizeof drained) < 0 && errno != EAGAIN)
			drained = 0;
		pthread_mutex_lock(&s->mu);
		for (size_t i = 1; i < n; i++) {
			if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) ||
			    !who[i]->parked)
				continue;
			who[i]->gone = 1;
			unpark(s, who[i]);
		}
		double now = mono_ms();
		if (now >= next_tick || s->wake_all) {
			while (s->parked)
				unpark(s, s->parked);
			s->wake_all = 0;
			if (now >= next_tick)
				next_tick = now + tick;
		}
	}
	pthread_mutex_unlock(&s->mu);
	nl_free(pf);
	nl_free(who);
	return NULL;
}

void http_streams_wake(struct http_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	int any = s->n_parked > 0;
	if (any)
		s->wake_all = 1;
	pthread_mutex_unlock(&s->mu);
	if (any)
		poke_watcher(s);
}

static enum MHD_Result send_response(struct http_server *s, struct MHD_Connection *c,
				     struct http_response *r)
{
	struct MHD_Response *mr;
	if (r->reader) {
		struct stream *keep = nl_calloc(1, sizeof *keep);
		if (!keep) {
			if (r->reader_free)
				r->reader_free(r->reader_cls);
			return MHD_NO;
		}
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		keep->r = *r;
		keep->srv = s;
		keep->conn = c;
		keep->fd = ci ? ci->connect_fd : -1;
		if (keep->fd >= 0) {
			/* a peer that vanished without closing (cable, suspended laptop) acks nothing:
			 * the stream's next keep-alive then fails after the timeout instead of after
			 * TCP's own retries (~15 min), and the stream's slot comes back */
			unsigned ms = (s->cfg.timeout_s ? s->cfg.timeout_s : 15u) * 1000u;
			setsockopt(keep->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
		}
		mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, reader_adapter,
						       keep, reader_free_adapter);
		if (!mr) {
			reader_free_adapter(keep);
			return MHD_NO;
		}
		MHD_add_response_header(mr, "Cache-Control", "no-store");
		MHD_add_response_header(mr, "X-Accel-Buffering", "no");
	} else {
		if (!r->body) {
			if (r->status == 0)
				r->status = 500;
			if (r->status != 204)
				http_problem(r, r->status, "internal", "the response could not be built",
					     NULL, NULL, 0);
		}
		mr = MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
						     r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (!mr) {
			nl_free(r->body);
			return MHD_NO;
		}
		r->body = NULL;
	}
	MHD_add_response_header(mr, "Content-Type",
				r->content_type[0] ? r->content_type : "application/json");
	if (r->location[0])
		MHD_add_response_header(mr, "Location", r->location);
	if (r->allow[0])
		MHD_add_response_header(mr, "Allow", r->allow);
	if (r->status == 401)
		MHD_add_response_header(mr, "WWW-Authenticate", "Bearer realm=\"normlab\"");
	if (r->set_cookie[0])
		MHD_add_response_header(mr, "Set-Cookie", r->set_cookie);
	enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, mr);
	MHD_destroy_response(mr);
	return ok;
}

/* The peer's address as text ("127.0.0.1", "::1"); "" when unknown. */
static void client_address(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	out[0] = '\0';
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)cap);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
			  (socklen_t)cap);
}

static void dispatch(struct http_server *s, struct MHD_Connection *c, const char *url,
		     const char *method, struct req_state *st, struct http_response *resp)
{
	struct http_request req;
	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = url;
	req.conn = c;
	req.body = st->buf;
	req.body_len = st->len;
	client_address(c, req.client, sizeof req.client);

	if (st->too_big) {
		char d[128];
		snprintf(d, sizeof d, "the request body is larger than the limit of %zu bytes",
			 s->cfg.max_body);
		http_problem(resp, 413, "body_too_large", d, NULL, NULL, 0);
		return;
	}
	const struct http_route *hit = NULL;
	int path_matched = 0;
	char allow[64] = "";
	for (int i = 0; i < s->n_routes; i++) {
		int64_t params[HTTP_MAX_PARAMS] = { 0 };
		char name[HTTP_NAME_MAX] = "";
		if (!route_match(s->routes[i].pattern, url, params, name))
			continue;
		path_matched = 1;
		size_t al = strlen(allow);
		if (!strstr(allow, s->routes[i].method))
			snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "",
				 s->routes[i].method);
		if (strcmp(s->routes[i].method, method) == 0 && !hit) {
			hit = &s->routes[i];
			memcpy(req.params, params, sizeof params);
			memcpy(req.name, name, sizeof name);
		}
	}
	if (!hit) {
		if (path_matched) {
			char d[160];
			snprintf(d, sizeof d, "%s is not allowed on %s (allowed: %s)", method, url, allow);
			http_problem(resp, 405, "method_not_allowed", d, NULL, NULL, 0);
			snprintf(resp->allow, sizeof resp->allow, "%s", allow);
		} else if (s->cfg.fallback && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
			   strncmp(url, "/api/", 5) != 0) {
			s->cfg.fallback(s->ctx, &req, resp);
		} else {
			char d[160];
			snprintf(d, sizeof d, "no such resource: %s %s", method, url);
			http_problem(resp, 404, "not_found", d, NULL, NULL, 0);
		}
		return;
	}
	const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	/* the session cookie stands in for the token on reads only: a page on another site cannot
	 * make the browser write with it (and SameSite=Strict keeps it off cross-site requests) */
	const char *cookie = hit->access == HTTP_READ && s->cfg.session ?
		MHD_lookup_connection_value(c, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE) : NULL;
	int need = hit->access == HTTP_WRITE || (hit->access == HTTP_READ && !s->cfg.reads_open);
	int role = HTTP_ROLE_USER;
	if (authz && hit->access != HTTP_PUBLIC) {
		if (!s->cfg.auth || s->cfg.auth(s->cfg.auth_ctx, authz, req.user, sizeof req.user,
						 &role) != 0) {
			http_problem(resp, 401, "invalid_token",
				     "the bearer token is not valid (see the tokens file)", NULL, NULL, 0);
			return;
		}
		req.authed = 1;
	} else if (cookie && *cookie &&
		   s->cfg.session(s->cfg.session_ctx, cookie, req.user, sizeof req.user, &role) == 0) {
		req.authed = 1;
		req.via_session = 1;
	} else if (need) {
		/* a stale cookie on an open read falls through to an anonymous read above */
		http_problem(resp, 401, cookie && *cookie ? "invalid_session" : "missing_token",
			     cookie && *cookie ? "the session has expired or its token was withdrawn: "
			     "POST /api/v1/session with the bearer token again" :
			     s->cfg.auth ? "this request needs an Authorization: Bearer <token> header" :
			     "writes are disabled: the daemon has no tokens file", NULL, NULL, 0);
		return;
	}
	req.is_admin = req.authed && role == HTTP_ROLE_ADMIN;
	req.is_reader = req.authed && role == HTTP_ROLE_READER;
	req.read_own_only = !s->cfg.reads_open && !req.is_admin && !req.is_reader;
	if (req.is_reader && hit->access == HTTP_WRITE) {
		http_problem(resp, 403, "read_only_role", "the token's role is reader: it may read "
			     "every run and sweep but change nothing", NULL, NULL, 0);
		return;
	}
	if (req.body && req.body_len) {
		int depth = http_json_depth(req.body, req.body_len, s->cfg.max_json_depth);
		if (depth > s->cfg.max_json_depth) {
			char d[128];
			snprintf(d, sizeof d, "JSON nesting is deeper than the limit of %d levels",
				 s->cfg.max_json_depth);
			http_problem(resp, 400, "json_too_deep", d, NULL, NULL, 0);
			return;
		}
	}
	hit->fn(s->ctx, &req, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct req_state *st = *con_cls;
	(void)version;
	if (!st) {
		st = nl_calloc(1, sizeof *st);
		if (!st)
			return MHD_NO;
		*con_cls = st;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end || n > s->cfg.max_body)
				st->too_big = 1;
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (st->too_big || st->len + n > s->cfg.max_body) {
			st->too_big = 1;
			return MHD_YES;   /* keep reading (and dropping) so the 413 reaches the client */
		}
		if (st->len + n + 1 > st->cap) {
			size_t ncap = (st->len + n + 1) * 2;
			ncap = ncap > s->cfg.max_body + 1 ? s->cfg.max_body + 1 : ncap;
			char *b = nl_realloc(st->buf, ncap);
			if (!b)
				return MHD_NO;
			st->buf = b;
			st->cap = ncap;
		}
		memcpy(st->buf + st->len, upload, n);
		st->len += n;
		st->buf[st->len] = '\0';
		return MHD_YES;
	}
	struct http_response resp;
	memset(&resp, 0, sizeof resp);
	dispatch(s, c, url, method, st, &resp);
	return send_response(s, c, &resp);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode why)
{
	struct req_state *st = *con_cls;
	(void)cls;
	(void)c;
	(void)why;
	if (st) {
		nl_free(st->buf);
		nl_free(st);
		*con_cls = NULL;
	}
}

/*
 * Every connection is a descriptor: raise the soft open-file limit as far as the hard limit
 * allows, and lower the connection limit to what then fits beside fd_reserve descriptors.
 */
static void fit_nofile(struct http_server *s)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)s->max_connections + s->cfg.fd_reserve;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit up = rl;
		up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	s->nofile = rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long)rl.rlim_cur;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		/* the reserve is a guess made for the largest configuration: under a tight limit
		 * connections keep at least half of it */
		rlim_t half = rl.rlim_cur / 2;
		rlim_t room = rl.rlim_cur > (rlim_t)s->cfg.fd_reserve + half ?
			      rl.rlim_cur - s->cfg.fd_reserve : half;
		s->max_connections = room < 16 ? 16u : (unsigned)room;
	}
}

int http_start(struct http_server **out, const struct http_config *cfg,
	       const struct http_route *routes, int n_routes, void *ctx, char *errbuf, size_t cap)
{
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)cfg->port);
	if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
		snprintf(errbuf, cap, "listen: %s is not an IPv4 address", cfg->host);
		return NL_EINVAL;
	}
	struct http_server *s = nl_calloc(1, sizeof *s);
	if (!s) {
		snprintf(errbuf, cap, "out of memory");
		return NL_ENOMEM;
	}
	s->cfg = *cfg;
	s->routes = routes;
	s->n_routes = n_routes;
	s->ctx = ctx;
	s->max_connections = cfg->max_connections ? cfg->max_connections : 1024u;
	fit_nofile(s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		snprintf(errbuf, cap, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&s->watcher, NULL, watcher_main, s) != 0) {
		snprintf(errbuf, cap, "cannot start the stream watcher thread");
		goto fail;
	}
	s->watcher_started = 1;
	/* epoll where libmicrohttpd has it (Linux), else its own best choice */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL :
			  MHD_USE_AUTO);
	unsigned threads = cfg->threads ? cfg->threads : 1;
	errno = 0;
	s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
				/* split evenly among the workers by libmicrohttpd */
				MHD_OPTION_CONNECTION_LIMIT, s->max_connections,
				/* counted over all workers */
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip,
				MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 15u,
				/* 1 = no pool: the one polling thread does the work */
				threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads,
				MHD_OPTION_END);
	if (!s->d) {
		snprintf(errbuf, cap, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
			 errno ? strerror(errno) : "libmicrohttpd refused to start");
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : cfg->port;
	*out = s;
	return 0;
fail:
	if (s->watcher_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = 1;
		pthread_mutex_unlock(&s->mu);
		poke_watcher(s);
		pthread_join(s->watcher, NULL);
	}
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	nl_free(s);
	return NL_EIO;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	/* No connection may stay suspended through MHD_stop_daemon: stop parking, resume every
	 * parked stream (a stream called while stopping ends instead of parking again), and give
	 * the workers a moment to take them back. */
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_mutex_unlock(&s->mu);
	poke_watcher(s);
	pthread_join(s->watcher, NULL);
	pthread_mutex_lock(&s->mu);
	while (s->parked)
		unpark(s, s->parked);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	while (s->n_resuming > 0)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
			break;   /* a client that reads nothing: its connection is resumed anyway */
	pthread_mutex_unlock(&s->mu);
	MHD_stop_daemon(s->d);
	close(s->wake_fd);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	nl_free(s);
}

int http_port(const struct http_server *s)
{
	return s->port;
}

unsigned http_max_connections(const struct http_server *s, unsigned long *nofile)
{
	if (nofile)
		*nofile = s->nofile;
	return s->max_connections;
}
