/*
 * http.c — libmicrohttpd glue: collects the body (capped), matches the route, authenticates,
 * checks JSON depth, calls the handler, and turns its http_response into an MHD response.
 * Per-request state lives in the connection's con_cls and is freed in the completion callback.
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"

struct http_server {
	struct MHD_Daemon *d;
	struct http_config cfg;
	const struct http_route *routes;
	int n_routes;
	void *ctx;
	int port;
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

static ssize_t reader_adapter(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_response *r = cls;
	(void)pos;
	ssize_t n = r->reader(r->reader_cls, buf, max);
	if (n == -1)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void reader_free_adapter(void *cls)
{
	struct http_response *r = cls;
	if (r->reader_free)
		r->reader_free(r->reader_cls);
	nl_free(r);
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct http_response *r)
{
	struct MHD_Response *mr;
	if (r->reader) {
		struct http_response *keep = nl_malloc(sizeof *keep);
		if (!keep) {
			if (r->reader_free)
				r->reader_free(r->reader_cls);
			return MHD_NO;
		}
		*keep = *r;
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
	return send_response(c, &resp);
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
	errno = 0;
	s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
				(uint16_t)cfg->port, NULL, NULL, on_request, s,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
				MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections ? cfg->max_connections : 256u,
				MHD_OPTION_CONNECTION_TIMEOUT, 300u,
				MHD_OPTION_END);
	if (!s->d) {
		snprintf(errbuf, cap, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
			 errno ? strerror(errno) : "libmicrohttpd refused to start");
		nl_free(s);
		return NL_EIO;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : cfg->port;
	*out = s;
	return 0;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	nl_free(s);
}

int http_port(const struct http_server *s)
{
	return s->port;
}
