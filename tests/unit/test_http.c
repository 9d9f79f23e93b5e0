/*
 * test_http — the HTTP layer on a real loopback socket: routing with {id}, 404/405 with Allow,
 * bearer auth (missing, invalid, valid), the body cap (10 MB → 413), the JSON depth cap (10 000
 * levels → 400), problem+json bodies with a stable code, and a streamed response. The server
 * stays up through all of it.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../test.h"
#include "http.h"

static void h_health(void *ctx, const struct http_request *req, struct http_response *r)
{
	(void)ctx;
	(void)req;
	http_json(r, 200, "{\"status\":\"ok\"}");
}

static void h_echo(void *ctx, const struct http_request *req, struct http_response *r)
{
	char buf[256];
	(void)ctx;
	snprintf(buf, sizeof buf, "{\"user\":\"%s\",\"admin\":%d,\"bytes\":%zu}", req->user,
		 req->is_admin, req->body_len);
	http_json(r, 201, buf);
}

static void h_thing(void *ctx, const struct http_request *req, struct http_response *r)
{
	char buf[128];
	const char *q = http_query(req, "q");
	(void)ctx;
	snprintf(buf, sizeof buf, "{\"id\":%lld,\"q\":\"%s\"}", (long long)req->params[0], q ? q : "");
	http_json(r, 200, buf);
}

struct stream_state {
	int left;
};

static ssize_t stream_read(void *cls, char *buf, size_t max)
{
	struct stream_state *st = cls;
	if (st->left == 0)
		return -1;
	st->left--;
	return snprintf(buf, max, "line %d\n", 3 - st->left);
}

static void h_stream(void *ctx, const struct http_request *req, struct http_response *r)
{
	(void)ctx;
	(void)req;
	struct stream_state *st = malloc(sizeof *st);
	st->left = 3;
	r->status = 200;
	snprintf(r->content_type, sizeof r->content_type, "text/plain");
	r->reader = stream_read;
	r->reader_free = free;
	r->reader_cls = st;
}

static int auth(void *ctx, const char *h, char *user, size_t cap, int *admin)
{
	(void)ctx;
	if (strcmp(h, "Bearer good-token-0123456789") == 0) {
		snprintf(user, cap, "alice");
		*admin = 0;
		return 0;
	}
	return -1;
}

static const struct http_route routes[] = {
	{ "GET", "/api/v1/health", HTTP_PUBLIC, h_health },
	{ "POST", "/api/v1/echo", HTTP_WRITE, h_echo },
	{ "GET", "/api/v1/things/{id}", HTTP_READ, h_thing },
	{ "DELETE", "/api/v1/things/{id}", HTTP_WRITE, h_thing },
	{ "GET", "/api/v1/stream", HTTP_READ, h_stream },
};

/* One request over a fresh connection; returns the status, fills body (NUL-terminated). */
static int call(int port, const char *method, const char *path, const char *hdrs,
		const char *body, size_t body_len, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	char head[1024];
	int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
			 "Content-Length: %zu\r\n\r\n", method, path, hdrs ? hdrs : "", body_len);
	if (write(fd, head, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	for (size_t off = 0; off < body_len;) {
		ssize_t w = write(fd, body + off, body_len - off);
		if (w <= 0)
			break;   /* the server may answer 413 and close before reading it all */
		off += (size_t)w;
	}
	size_t got = 0;
	ssize_t r;
	while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fd);
	int status = -1;
	sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

int main(void)
{
	struct http_server *s;
	char err[256], out[65536];
	struct http_config cfg = { .host = "127.0.0.1", .port = 0, .max_body = 1 << 20,
				   .max_json_depth = 64, .reads_open = 1, .auth = auth };
	CHECKF(http_start(&s, &cfg, routes, 5, NULL, err, sizeof err) == 0, "start: %s", err);
	int port = http_port(s);
	CHECK(port > 0);

	CHECK(call(port, "GET", "/api/v1/health", NULL, NULL, 0, out, sizeof out) == 200);
	CHECK(strstr(out, "{\"status\":\"ok\"}") != NULL);

	CHECK(call(port, "GET", "/api/v1/nope", NULL, NULL, 0, out, sizeof out) == 404);
	CHECK(strstr(out, "application/problem+json") && strstr(out, "\"code\":\"not_found\""));

	CHECK(call(port, "PUT", "/api/v1/things/3", NULL, NULL, 0, out, sizeof out) == 405);
	CHECK(strstr(out, "Allow: GET, DELETE") != NULL);
	CHECK(strstr(out, "\"code\":\"method_not_allowed\"") != NULL);

	CHECK(call(port, "GET", "/api/v1/things/42?q=hi", NULL, NULL, 0, out, sizeof out) == 200);
	CHECK(strstr(out, "{\"id\":42,\"q\":\"hi\"}") != NULL);
	CHECK(call(port, "GET", "/api/v1/things/abc", NULL, NULL, 0, out, sizeof out) == 404);
	CHECK(call(port, "GET", "/api/v1/things/0", NULL, NULL, 0, out, sizeof out) == 404);

	const char *json = "{\"a\":1}";
	CHECK(call(port, "POST", "/api/v1/echo", NULL, json, strlen(json), out, sizeof out) == 401);
	CHECK(strstr(out, "\"code\":\"missing_token\"") && strstr(out, "WWW-Authenticate: Bearer"));
	CHECK(call(port, "POST", "/api/v1/echo", "Authorization: Bearer wrong\r\n", json,
		   strlen(json), out, sizeof out) == 401);
	CHECK(strstr(out, "\"code\":\"invalid_token\"") != NULL);
	CHECK(call(port, "DELETE", "/api/v1/things/5", NULL, NULL, 0, out, sizeof out) == 401);
	CHECK(call(port, "POST", "/api/v1/echo", "Authorization: Bearer good-token-0123456789\r\n",
		   json, strlen(json), out, sizeof out) == 201);
	CHECK(strstr(out, "\"user\":\"alice\"") && strstr(out, "\"bytes\":7"));

	size_t big = 10u << 20;
	char *body = malloc(big);
	memset(body, ' ', big);
	int st = call(port, "POST", "/api/v1/echo", "Authorization: Bearer good-token-0123456789\r\n",
		      body, big, out, sizeof out);
	CHECKF(st == 413, "10 MB body: status %d", st);
	CHECK(strstr(out, "\"code\":\"body_too_large\"") && strstr(out, "1048576"));

	size_t deep = 10000;
	for (size_t i = 0; i < deep; i++) {
		body[i] = '[';
		body[2 * deep - 1 - i] = ']';
	}
	st = call(port, "POST", "/api/v1/echo", "Authorization: Bearer good-token-0123456789\r\n",
		  body, 2 * deep, out, sizeof out);
	CHECKF(st == 400, "10 000-deep JSON: status %d", st);
	CHECK(strstr(out, "\"code\":\"json_too_deep\"") && strstr(out, "64"));
	free(body);

	CHECK(call(port, "GET", "/api/v1/stream", NULL, NULL, 0, out, sizeof out) == 200);
	CHECK(strstr(out, "line 1\n") && strstr(out, "line 3\n"));

	/* still up after all of it */
	CHECK(call(port, "GET", "/api/v1/health", NULL, NULL, 0, out, sizeof out) == 200);
	CHECK(http_json_depth("[\"[[[[\",{\"a\":[1]}]", 18, 64) == 3);
	http_stop(s);
	return test_finish("http");
}
