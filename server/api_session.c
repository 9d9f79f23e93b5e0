/*
 * api_session.c — POST /api/v1/session and DELETE /api/v1/session: the dashboard's way to read
 * when reads need a token. EventSource cannot send an Authorization header, so the page trades
 * its bearer token for a session cookie (session.h): HttpOnly (scripts cannot read it),
 * SameSite=Strict (other sites' pages cannot send it), Path=/api/v1, Max-Age = session_ttl, and
 * Secure when a TLS proxy says the request came over https. The id travels only in that cookie:
 * never in the body, a URL or a log line. The http layer accepts it on reads only.
 * Runs on HTTP threads; the session table locks itself.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "session.h"

_Static_assert(sizeof SESSION_COOKIE == sizeof HTTP_SESSION_COOKIE,
	       "session.h and http.h name the same cookie");

static const char *role_name(const struct http_request *req)
{
	return req->is_admin ? "admin" : req->is_reader ? "reader" : "user";
}

/* " Secure" when a proxy in front says the client spoke https (the daemon itself speaks http). */
static const char *secure_attr(const struct http_request *req)
{
	const char *proto = http_header(req, "X-Forwarded-Proto");
	return proto && strcmp(proto, "https") == 0 ? "; Secure" : "";
}

static void session_post(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	char id[SESSION_ID_HEX + 1];
	double expires_at;
	const char *authz = http_header(req, "Authorization");

	/* from the token itself: a cookie may not renew itself past its expiry */
	if (!req->authed || req->via_session || !authz) {
		http_problem(r, 401, "missing_token", "POST /api/v1/session needs the "
			     "Authorization: Bearer <token> header", NULL, NULL, 0);
		return;
	}
	if (session_create(d->sessions, authz, req->user, id, &expires_at) != 0) {
		http_problem(r, 503, "no_session", "no session could be made (no random bytes)", NULL,
			     NULL, 0);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "user", req->user) ||
	    !cJSON_AddStringToObject(o, "role", role_name(req)) ||
	    !cJSON_AddNumberToObject(o, "expires_at", expires_at) ||
	    !cJSON_AddNumberToObject(o, "ttl_s", session_ttl(d->sessions))) {
		cJSON_Delete(o);
		session_delete(d->sessions, id);
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	snprintf(r->set_cookie, sizeof r->set_cookie,
		 "%s=%s; Path=/api/v1; Max-Age=%d; HttpOnly; SameSite=Strict%s", SESSION_COOKIE, id,
		 session_ttl(d->sessions), secure_attr(req));
	memset(id, 0, sizeof id);
	api_reply(r, 201, o);
}

/* The session cookie's value in the request's Cookie header, copied to out; "" if none. */
static void cookie_value(const struct http_request *req, char *out, size_t cap)
{
	const char *h = http_header(req, "Cookie"), *p = h;
	size_t nl = strlen(SESSION_COOKIE);
	out[0] = '\0';
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, SESSION_COOKIE, nl) == 0 && p[nl] == '=') {
			size_t n = strcspn(p + nl + 1, "; ");
			if (n < cap) {
				memcpy(out, p + nl + 1, n);
				out[n] = '\0';
			}
			return;
		}
		p = strchr(p, ';');
	}
}

static void session_delete_h(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	char id[SESSION_ID_HEX + 2];
	cookie_value(req, id, sizeof id);
	if (id[0])
		session_delete(d->sessions, id);
	memset(id, 0, sizeof id);
	snprintf(r->set_cookie, sizeof r->set_cookie,
		 "%s=; Path=/api/v1; Max-Age=0; HttpOnly; SameSite=Strict%s", SESSION_COOKIE,
		 secure_attr(req));
	r->status = 204;
}

/* HTTP_READ: a reader may make a session too, and writes never take the cookie. The handlers
 * check themselves that a bearer token (not a cookie) came with a POST. */
const struct http_route api_session_routes[] = {
	{ "POST", "/api/v1/session", HTTP_READ, session_post },
	{ "DELETE", "/api/v1/session", HTTP_READ, session_delete_h },
};
const int api_session_routes_n = (int)(sizeof api_session_routes / sizeof api_session_routes[0]);
