/*
 * fuzz_http.c — libFuzzer harness for normlabd's request path, whole: the input is the raw bytes
 * a client sends on one TCP connection to a daemon running in this process on loopback.
 *
 * The daemon is the real one minus main(): the configuration table's defaults (set through
 * config_set, as a config file would), a real tokens file and auth module, a real SQLite file
 * and scheduler (its libuv loop on a thread of its own), the real route table, handlers,
 * static-file fallback and http_start. So one input goes through libmicrohttpd's parser, the
 * body cap, route matching, the bearer-token check, the JSON depth check, query parsing and the
 * handler's body parsing (spec, sweep, PATCH fields). Two routes are held back, because they
 * would not return or would start work: the SSE stream (GET /api/v1/events answers 204 here),
 * and submissions that are not dry runs (POST /api/v1/experiments and /sweeps run the real
 * handler when ?dry_run=1, and otherwise answer 202 without submitting, after checking
 * dry_run exactly as the handler does). The database therefore stays empty, every input sees
 * the same daemon, and reads of ids and writes to them answer 404 from the real code.
 *
 * The client writes the input, half-closes the connection (libmicrohttpd still answers a
 * complete request; an incomplete one is dropped) and reads until the daemon closes. The first
 * response must then hold what users are promised: no 5xx for anything a client sends; an error
 * from the daemon is application/problem+json whose body is a JSON object with "status" equal
 * to the HTTP status, a "code", its "type" (/problems/<code>), a "title", a "detail" and, when
 * present, "errors" of {pointer: JSON Pointer, detail}; a JSON answer parses as JSON (UTF-8); a
 * dry run's hash is the hash of the spec it shows, and its sweep cells are distinct runs.
 *
 * Threads: libFuzzer's on this one; libmicrohttpd's connection threads and the scheduler's
 * loop thread run the daemon. Nothing is stopped at exit (the process ends with them); only
 * the temporary directory is removed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "daemon.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "nl.h"
#include "scheduler.h"
#include "session.h"
#include "tokens.h"
#include "spec.h"

/* Tokens the seeds and the dictionary use (tests/fuzz/corpus/http, tests/fuzz/http.dict). */
#define FUZZ_ADMIN_TOKEN "fuzzadmintoken0123456789"
#define FUZZ_USER_TOKEN "fuzzusertoken0123456789ab"
/* A small body cap, so inputs of libFuzzer's sizes reach the 413 path. */
#define FUZZ_MAX_BODY "4K"
/* Small sweeps keep one input cheap; the expander has its own harness (fuzz_sweep). */
#define FUZZ_MAX_SWEEP_CELLS "64"
#define FUZZ_RESPONSE_MAX (16u << 20)

static struct daemon d;
static struct http_server *server;
static int port;
static char root[64];
static struct http_route routes[128];
static int n_routes;
static http_handler real_create, real_sweep_submit;
static char *resp_buf;
static size_t resp_cap;

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FUZZ_CHECK(fd >= 0, "cannot create %s: %s", path, strerror(errno));
	size_t n = strlen(text);
	FUZZ_CHECK(write(fd, text, n) == (ssize_t)n, "cannot write %s", path);
	close(fd);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* At exit the daemon's threads still run, but nothing reads these files any more; without
 * this every run would leave a directory in /dev/shm. */
static void remove_root(void)
{
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void set_option(const char *key, const char *value)
{
	struct config_err err = { 0 };
	FUZZ_CHECK(config_set(&d.cfg, key, value, &err) == 0, "config %s: %s", key, err.msg);
}

static void *loop_thread(void *arg)
{
	sched_run(arg);
	return NULL;
}

static int auth_cb(void *ctx, const char *authorization, char *user, size_t cap, int *role)
{
	return tokens_check(ctx, authorization, user, cap, role) == AUTH_OK ? 0 : -1;
}

static int session_cb(void *ctx, const char *session, char *user, size_t cap, int *role)
{
	return session_check(ctx, session, user, cap, role) == AUTH_OK ? 0 : -1;
}

/* POST /api/v1/experiments and /sweeps: the real handler for a dry run only. */
static void gate(http_handler real, void *ctx, const struct http_request *req,
		 struct http_response *r)
{
	int64_t dry;
	if (api_query_int(req, r, "dry_run", 0, 1, 0, &dry) != 0)
		return;   /* the handler's own first step, with its own 400 */
	if (dry)
		real(ctx, req, r);
	else
		http_json(r, 202, "{\"harness\":\"not submitted: the fuzzer only runs dry runs\"}");
}

static void gate_create(void *ctx, const struct http_request *req, struct http_response *r)
{
	gate(real_create, ctx, req, r);
}

static void gate_sweep(void *ctx, const struct http_request *req, struct http_response *r)
{
	gate(real_sweep_submit, ctx, req, r);
}

static void no_stream(void *ctx, const struct http_request *req, struct http_response *r)
{
	(void)ctx;
	(void)req;
	r->status = 204;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[256], errbuf[512];
	(void)argc;
	(void)argv;

	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(root, sizeof root, "%s/nl_fuzz_http_XXXXXX", base);
	FUZZ_CHECK(mkdtemp(root) != NULL, "cannot create a directory in %s", base);
	atexit(remove_root);
	/* a web_dir with a file, a directory with an index and one without */
	const char *dirs[] = { "runs", "data", "web", "web/js", "web/empty" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
		FUZZ_CHECK(mkdir(path, 0700) == 0, "mkdir %s: %s", path, strerror(errno));
	}
	snprintf(path, sizeof path, "%s/web/index.html", root);
	write_text(path, "<!doctype html><title>normlab</title>\n");
	snprintf(path, sizeof path, "%s/web/js/app.js", root);
	write_text(path, "export const x = 1;\n");
	snprintf(path, sizeof path, "%s/tokens", root);
	write_text(path, FUZZ_ADMIN_TOKEN " fuzzadmin admin\n" FUZZ_USER_TOKEN " fuzzuser user\n");

	config_defaults(&d.cfg);
	set_option("tokens_file", path);
	snprintf(path, sizeof path, "%s/normlab.db", root);
	set_option("db", path);
	snprintf(path, sizeof path, "%s/runs", root);
	set_option("runs_dir", path);
	snprintf(path, sizeof path, "%s/data", root);
	set_option("data_dir", path);
	snprintf(path, sizeof path, "%s/web", root);
	set_option("web_dir", path);
	set_option("max_body_bytes", FUZZ_MAX_BODY);
	set_option("max_sweep_cells", FUZZ_MAX_SWEEP_CELLS);
	set_option("log_level", "error");
	log_init(d.cfg.log_level, "fuzz_http");
	snprintf(d.version, sizeof d.version, "fuzz");
	snprintf(d.blas, sizeof d.blas, "fuzz");
	d.started_at = daemon_now();
	FUZZ_CHECK(tokens_open(&d.tokens, d.cfg.tokens_file, errbuf, sizeof errbuf) == 0,
		   "tokens: %s", errbuf);
	FUZZ_CHECK(session_table_new(&d.sessions, d.tokens, d.cfg.session_ttl) == 0, "sessions");
	FUZZ_CHECK(sched_new(&d.sched, &d, errbuf, sizeof errbuf) == 0, "scheduler: %s", errbuf);
	pthread_t loop;
	FUZZ_CHECK(pthread_create(&loop, NULL, loop_thread, d.sched) == 0, "no loop thread");
	pthread_detach(loop);

	int n;
	const struct http_route *all = api_routes(&n);
	FUZZ_CHECK(n <= (int)(sizeof routes / sizeof routes[0]), "%d routes", n);
	for (int i = 0; i < n; i++) {
		routes[i] = all[i];
		if (strcmp(all[i].method, "POST") == 0 && strcmp(all[i].pattern, "/api/v1/experiments") == 0) {
			real_create = all[i].fn;
			routes[i].fn = gate_create;
		} else if (strcmp(all[i].method, "POST") == 0 &&
			   strcmp(all[i].pattern, "/api/v1/sweeps") == 0) {
			real_sweep_submit = all[i].fn;
			routes[i].fn = gate_sweep;
		} else if (all[i].fn == api_events_get) {
			routes[i].fn = no_stream;
		}
	}
	n_routes = n;
	FUZZ_CHECK(real_create && real_sweep_submit, "the route table has no submit routes");

	signal(SIGPIPE, SIG_IGN);
	struct http_config hc = {
		.host = "127.0.0.1",
		.port = 0,
		.max_body = (size_t)d.cfg.max_body_bytes,
		.max_json_depth = d.cfg.max_json_depth,
		.reads_open = d.cfg.reads_open,
		.max_connections = 256,
		.threads = 2,
		.timeout_s = 1,   /* closes what never becomes a whole request; exchange stops at the end of a response */
		.auth = auth_cb,
		.auth_ctx = d.tokens,
		.session = session_cb,
		.session_ctx = d.sessions,
		.fallback = api_static,
	};
	FUZZ_CHECK(http_start(&server, &hc, routes, n_routes, &d, errbuf, sizeof errbuf) == 0,
		   "http_start: %s", errbuf);
	port = http_port(server);
	return 0;
}

/* Sends data on a fresh connection, half-closes it and reads the answer into resp_buf. */
/* 1 when buf holds a whole HTTP response: the head and Content-Length bytes of body, or a
 * chunked body up to its last chunk. */
static int response_complete(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head = (size_t)(end - buf) + 4;
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl && cl < end)
		return len >= head + strtoull(cl + 17, NULL, 10);
	const char *te = strcasestr(buf, "\r\nTransfer-Encoding: chunked");
	if (te && te < end)
		return len >= head + 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0;
	return 0;
}

static size_t exchange(const uint8_t *data, size_t size)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
	int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
	if (rc != 0 && errno == EINTR) {
		/* libFuzzer's timer signal: the connection goes on; wait for it and ask how it went */
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t elen = sizeof err;
		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
		rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0 ? 0 : -1;
		errno = err;
	}
	FUZZ_CHECK(rc == 0, "connect: %s", strerror(errno));
	for (size_t done = 0; done < size;) {
		ssize_t n = send(fd, data + done, size - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;   /* the daemon closed early (a request it refused): read what it said */
		done += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	size_t len = 0;
	for (;;) {
		if (resp_cap - len < 65536) {
			FUZZ_CHECK(resp_cap < FUZZ_RESPONSE_MAX, "a response of over %u bytes",
				   FUZZ_RESPONSE_MAX);
			resp_cap = resp_cap ? resp_cap * 2 : 1 << 20;
			resp_buf = nl_realloc(resp_buf, resp_cap);
			FUZZ_CHECK(resp_buf != NULL, "out of memory");
		}
		ssize_t n = recv(fd, resp_buf + len, resp_cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;   /* closed (or reset after an unread request) */
		len += (size_t)n;
		resp_buf[len] = '\0';
		/* The event-driven server answers a half-closed request but keeps the connection
		 * until its idle timeout: stop at the end of the first whole response instead. */
		if (response_complete(resp_buf, len))
			break;
	}
	close(fd);
	resp_buf[len] = '\0';
	return len;
}

/* Value of header name in the head [h, end), or NULL; *vlen gets its length. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (const char *line = h; line < end;) {
		const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			return v;
		}
		line = eol + 2;
	}
	return NULL;
}

static void check_problem(int status, const char *body, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	FUZZ_CHECK(cJSON_IsObject(j), "a %d problem whose body is not a JSON object: %.*s", status,
		   (int)len, body);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
	const cJSON *title = cJSON_GetObjectItemCaseSensitive(j, "title");
	const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "detail");
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
	FUZZ_CHECK(cJSON_IsNumber(st) && st->valuedouble == status, "a %d answer says status %s",
		   status, body);
	FUZZ_CHECK(cJSON_IsString(code) && code->valuestring[0], "a problem without a code: %s", body);
	FUZZ_CHECK(cJSON_IsString(type) && strncmp(type->valuestring, "/problems/", 10) == 0 &&
		   strcmp(type->valuestring + 10, code->valuestring) == 0, "type does not match: %s",
		   body);
	FUZZ_CHECK(cJSON_IsString(title) && cJSON_IsString(detail) && detail->valuestring[0],
		   "a problem without a title or detail: %s", body);
	if (errors) {
		const cJSON *e;
		FUZZ_CHECK(cJSON_IsArray(errors) && cJSON_GetArraySize(errors) > 0,
			   "\"errors\" is not a non-empty array: %s", body);
		cJSON_ArrayForEach(e, errors) {
			const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "pointer");
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "detail");
			FUZZ_CHECK(cJSON_IsString(p) && (p->valuestring[0] == '\0' ||
							 p->valuestring[0] == '/'),
				   "an error without a JSON Pointer: %s", body);
			FUZZ_CHECK(cJSON_IsString(m) && m->valuestring[0], "an error without a detail: %s",
				   body);
		}
	}
	cJSON_Delete(j);
}

/*
 * A dry run's answer promises what a submission would do: an experiment's "hash" is the hash
 * of the "spec" shown (parsed again under the daemon's cap), and a sweep's cells are numbered
 * 0..n-1 with n <= "count" and are distinct runs.
 */
static void check_dry_run(const cJSON *j)
{
	const cJSON *valid = cJSON_GetObjectItemCaseSensitive(j, "valid");
	const cJSON *hash = cJSON_GetObjectItemCaseSensitive(j, "hash");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
	const cJSON *count = cJSON_GetObjectItemCaseSensitive(j, "count");
	const cJSON *cells = cJSON_GetObjectItemCaseSensitive(j, "cells");
	if (cJSON_IsTrue(valid) && cJSON_IsString(hash) && cJSON_IsObject(spec)) {
		struct spec_limits lim = { .max_bytes = (uint64_t)d.cfg.max_run_bytes };
		struct spec s;
		char h[65];
		char *text = cJSON_PrintUnformatted(spec);
		FUZZ_CHECK(text != NULL, "out of memory");
		FUZZ_CHECK(spec_parse(&s, text, strlen(text), &lim, NULL) == 0 && spec_hash(&s, h) == 0,
			   "the dry run's spec does not parse: %s", text);
		FUZZ_CHECK(strcmp(h, hash->valuestring) == 0, "the dry run says hash %s for a spec "
			   "that hashes to %s: %s", hash->valuestring, h, text);
		cJSON_free(text);
	}
	if (cJSON_IsNumber(count) && cJSON_IsArray(cells)) {
		int i = 0;
		const cJSON *c, *c2;
		FUZZ_CHECK(cJSON_GetArraySize(cells) <= count->valuedouble, "more cells than count");
		cJSON_ArrayForEach(c, cells) {
			const cJSON *cell = cJSON_GetObjectItemCaseSensitive(c, "cell");
			const cJSON *ch = cJSON_GetObjectItemCaseSensitive(c, "hash");
			FUZZ_CHECK(cJSON_IsNumber(cell) && cell->valuedouble == i && cJSON_IsString(ch) &&
				   strlen(ch->valuestring) == 64, "cell %d is not numbered or hashed", i);
			cJSON_ArrayForEach(c2, cells) {
				if (c2 == c)
					break;
				FUZZ_CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(c2, "hash")->valuestring,
						  ch->valuestring) != 0, "cell %d repeats an earlier cell", i);
			}
			i++;
		}
	}
}

/* Checks the first response in buf (len bytes) to a request that was not HEAD iff has_body. */
static void check_response(const char *buf, size_t len, int has_body)
{
	int status = 0;
	if (len == 0)
		return;   /* an incomplete or malformed request that libmicrohttpd dropped */
	FUZZ_CHECK(len >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && sscanf(buf + 9, "%3d", &status) == 1,
		   "not an HTTP response: %.80s", buf);
	const char *head_end = memmem(buf, len, "\r\n\r\n", 4);
	FUZZ_CHECK(head_end != NULL, "a response without the end of its head: %.200s", buf);
	const char *body = head_end + 4;
	size_t vlen = 0, avail = len - (size_t)(body - buf), blen = avail;
	const char *ct = header(buf, head_end, "Content-Type", &vlen);
	size_t ctlen = ct ? vlen : 0;
	const char *cl = header(buf, head_end, "Content-Length", &vlen);
	if (cl) {
		blen = (size_t)strtoull(cl, NULL, 10);
		if (blen > avail)
			blen = avail;
	}
	/* libmicrohttpd's own answers (a malformed request line, an unsupported HTTP version) are
	 * HTML without our Content-Type; everything the daemon answers carries one */
	int ours = ct != NULL;
	FUZZ_CHECK(status < 500 || !ours, "the daemon answered %d: %.*s", status, (int)blen, body);
	if (!ours || !has_body || (status >= 100 && status < 200) || status == 204 || status == 304)
		return;
	if (header(buf, head_end, "Transfer-Encoding", &vlen))
		return;   /* a streamed export: chunked, not checked here */
	if (ctlen >= 16 && (strncmp(ct, "application/json", 16) == 0 ||
			    strncmp(ct, "application/problem+json", 24) == 0))
		FUZZ_CHECK(fuzz_utf8_valid(body, blen), "a %d JSON answer that is not UTF-8: %.*s",
			   status, (int)blen, body);
	if (ctlen >= 24 && strncmp(ct, "application/problem+json", 24) == 0) {
		check_problem(status, body, blen);
	} else if (ctlen >= 16 && strncmp(ct, "application/json", 16) == 0) {
		cJSON *j = cJSON_ParseWithLength(body, blen);
		FUZZ_CHECK(j != NULL, "a %d JSON answer that is not JSON: %.*s", status, (int)blen, body);
		if (status == 200)
			check_dry_run(j);
		cJSON_Delete(j);
	}
	if (status >= 400)
		FUZZ_CHECK(ctlen >= 24 && strncmp(ct, "application/problem+json", 24) == 0,
			   "a %d answer that is not problem+json: %.*s", status, (int)ctlen, ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = exchange(data, size);
	int head = size >= 5 && memcmp(data, "HEAD ", 5) == 0;
	check_response(resp_buf, len, !head);
	return 0;
}
