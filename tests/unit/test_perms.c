/*
 * test_perms — the real normlabd on a shared lab server, with reads_open = false:
 *  1. a tokens file that group or others can read or write, or that another user owns, is
 *     refused at start (exit 2, a message naming the file and the fix);
 *  2. what the daemon creates is its own (the database, -wal, -shm 0600; run directories 0700;
 *     checkpoints 0600), and files an older daemon left open are tightened at start;
 *  3. user alice cannot see bob's runs or sweeps through any list, get, metrics, depth, samples,
 *     export, compare or event route (404 like a missing one; lists and the stream leave them
 *     out, and no reply holds bob's run name), deduplication never points her at his run, and a
 *     403 on his run does not name him; a reader sees everything and writes nothing;
 *  4. the dashboard's cookie session: made from a bearer token only, HttpOnly + SameSite=Strict,
 *     good for reads (the event stream included, with live events) and never for writes;
 *  5. SIGHUP reloads the tokens: a new token works, a removed one (and its session) stops at
 *     once, a broken or readable file keeps the old set and the log says why.
 * The test runs under umask 022, so the modes it sees are the daemon's own doing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/dtest.h"
#include "../test.h"

#define ALICE "tok-alice-0123456789abcdef"
#define BOB "tok-bob-0123456789abcdef00"
#define READER "tok-reader-0123456789abcd"
#define ROOT "tok-root-0123456789abcdef0"
#define CAROL "tok-carol-0123456789abcdef"
#define BOB_SECRET "bob-secret-run-name"

static struct dtest D;
static char tokens_path[256];

static int call(const char *method, const char *path, const char *token, const char *body,
		struct dtest_reply *r)
{
	return dtest_call(&D, method, path, token, body, r);
}

/* Status of one request, the reply freed. */
static int status_of(const char *method, const char *path, const char *token, const char *body)
{
	struct dtest_reply r;
	int st = call(method, path, token, body, &r);
	dtest_reply_free(&r);
	return st;
}

/* ---------- a raw client: extra headers (Cookie), and the SSE stream read for a while ---------- */

static int connect_daemon(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)D.port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

struct raw {
	int status;
	char buf[1 << 17];   /* headers and body as received (chunk framing left in) */
	size_t len;
};

/*
 * Sends method path with `headers` (each line ending in \r\n, may be "") and reads the answer
 * until EOF or for at most `seconds` (an event stream never ends by itself). If `trigger` is
 * given, it is called once the response headers have arrived (to cause events while the stream
 * is open). Returns the status, -1 on failure.
 */
static int raw_request(const char *method, const char *path, const char *headers, double seconds,
		       void (*trigger)(void), struct raw *out)
{
	char head[2048];
	int fd = connect_daemon(), triggered = 0;
	memset(out, 0, sizeof *out);
	out->status = -1;
	if (fd < 0)
		return -1;
	int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
			 "Content-Length: 0\r\n\r\n", method, path, headers);
	if (write(fd, head, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	double until = dtest_now() + seconds;
	while (out->len + 1 < sizeof out->buf) {
		double left = until - dtest_now();
		if (left <= 0)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		ssize_t k = read(fd, out->buf + out->len, sizeof out->buf - 1 - out->len);
		if (k <= 0)
			break;
		out->len += (size_t)k;
		out->buf[out->len] = '\0';
		if (trigger && !triggered && strstr(out->buf, "\r\n\r\n")) {
			triggered = 1;
			trigger();
		}
	}
	close(fd);
	out->buf[out->len] = '\0';
	sscanf(out->buf, "HTTP/1.%*d %d", &out->status);
	return out->status;
}

/* The value of header `name` (case-insensitive) of a raw answer, copied into v; "" if absent. */
static void raw_header(const struct raw *r, const char *name, char *v, size_t cap)
{
	const char *end = strstr(r->buf, "\r\n\r\n"), *p = r->buf;
	size_t nl = strlen(name);
	v[0] = '\0';
	while (p && end && p < end) {
		p = strstr(p, "\r\n");
		if (!p || p >= end)
			return;
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *s = p + nl + 1, *e = strstr(s, "\r\n");
			while (*s == ' ')
				s++;
			size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
			memcpy(v, s, n);
			v[n] = '\0';
			return;
		}
	}
}

/* The experiment ids of every "experiment.*" event and the number of "sweep.*" events in an SSE
 * text. Returns the number of ids written to ids (at most cap). */
static int sse_ids(const char *text, int64_t *ids, int cap, int *sweep_events)
{
	int n = 0;
	char kind[64] = "";
	*sweep_events = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "event: ", 7) == 0) {
			size_t k = strcspn(p + 7, "\r\n");
			snprintf(kind, sizeof kind, "%.*s", (int)k, p + 7);
			if (strncmp(kind, "sweep.", 6) == 0)
				(*sweep_events)++;
		} else if (strncmp(p, "data: ", 6) == 0 && strncmp(kind, "experiment.", 11) == 0) {
			size_t k = strcspn(p + 6, "\r\n");
			char *line = strndup(p + 6, k);
			cJSON *j = line ? cJSON_Parse(line) : NULL;
			double id = dtest_num(j, "id");
			if (id > 0 && n < cap)
				ids[n++] = (int64_t)id;
			cJSON_Delete(j);
			free(line);
		}
	}
	return n;
}

static int has_id(const int64_t *ids, int n, int64_t id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* ---------- runs ---------- */

static const char *spec(const char *name, int seed, int steps)
{
	static char buf[768];
	snprintf(buf, sizeof buf,
		 "{\"name\":\"%s\",\"seed\":%d,\"model\":{\"n_layer\":2,\"d_model\":16,\"n_head\":2,"
		 "\"seq_len\":16},\"data\":{\"path\":\"%s\"},\"train\":{\"steps\":%d,\"batch_size\":2,"
		 "\"warmup\":5,\"lr\":0.003},\"probe\":{\"every\":5,\"depth_every\":20,"
		 "\"samples_every\":20,\"samples\":32,\"val_every\":20}}", name, seed, "corpus.txt", steps);
	return buf;
}

static const char *wait_status(int64_t id, double seconds)
{
	static char st[32];
	char path[64];
	double until = dtest_now() + seconds;
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)id);
	st[0] = '\0';
	while (dtest_now() < until) {
		struct dtest_reply r;
		call("GET", path, ROOT, NULL, &r);
		snprintf(st, sizeof st, "%s", dtest_str(r.json, "status"));
		dtest_reply_free(&r);
		if (strcmp(st, "queued") && strcmp(st, "running"))
			break;
		dtest_sleep_ms(100);
	}
	return st;
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 0777) : 01000;
}

static int log_has(const char *needle)
{
	FILE *f = fopen(D.log, "r");
	char line[2048];
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* ---------- 1. the tokens file must be private ---------- */

/* Runs normlabd against a tokens file and returns its exit code (it should not get as far as
 * listening); its stderr goes to D.log. */
static int daemon_exit_code(const char *tokens)
{
	char db[256], runs[256], listen[64], exe[600];
	snprintf(db, sizeof db, "%s/refused/n.db", D.tmp);
	snprintf(runs, sizeof runs, "%s/refused/runs", D.tmp);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", 20000 + getpid() % 40000);
	snprintf(exe, sizeof exe, "%s/normlabd", D.bindir);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(D.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(exe, exe, "--listen", listen, "--db", db, "--runs", runs, "--tokens", tokens,
		      (char *)NULL);
		_exit(127);
	}
	int status = 0;
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		dtest_sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;   /* it started: the file was accepted */
}

static void test_tokens_file_refused(void)
{
	char path[256];
	snprintf(path, sizeof path, "%s/loose.tokens", D.tmp);
	dtest_write_file(path, ALICE " alice user\n");

	chmod(path, 0644);
	CHECK(daemon_exit_code(path) == 2);
	CHECK(log_has("is readable or writable by group or others (mode 0644): run chmod 600"));
	chmod(path, 0620);   /* group-writable */
	CHECK(daemon_exit_code(path) == 2);
	CHECK(log_has("(mode 0620)"));
	chmod(path, 0604);   /* world-readable only */
	CHECK(daemon_exit_code(path) == 2);
	CHECK(log_has("(mode 0604)"));
	if (geteuid() == 0) {   /* only root can give the file away to test the owner rule */
		chmod(path, 0600);
		CHECK(chown(path, 4242, 4242) == 0);
		CHECK(daemon_exit_code(path) == 2);
		CHECK(log_has("is owned by uid 4242, not by the daemon's user"));
		CHECK(chown(path, 0, 0) == 0);
	}
	/* and a private one is accepted (the daemon gets as far as listening) */
	chmod(path, 0600);
	CHECK(daemon_exit_code(path) == -1);
}

/* ---------- 2. file modes ---------- */

static void make_old_files(void)
{
	char p[512];
	/* what an older normlabd under umask 022 left: an open database, run directory, checkpoint */
	snprintf(p, sizeof p, "%s/db", D.tmp);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/db/normlab.db", D.tmp);
	dtest_write_file(p, "");
	chmod(p, 0644);
	snprintf(p, sizeof p, "%s/runs", D.tmp);
	mkdir(p, 0755);
	chmod(p, 0755);
	snprintf(p, sizeof p, "%s/runs/999999", D.tmp);
	mkdir(p, 0755);
	chmod(p, 0755);
	snprintf(p, sizeof p, "%s/runs/999999/ckpt_000010.safetensors", D.tmp);
	dtest_write_file(p, "old");
	chmod(p, 0644);
}

static void test_file_modes(int64_t id)
{
	char p[512];
	snprintf(p, sizeof p, "%s/db/normlab.db", D.tmp);
	CHECKF(mode_of(p) == 0600, "db mode 0%o", mode_of(p));
	snprintf(p, sizeof p, "%s/db/normlab.db-wal", D.tmp);
	CHECKF(mode_of(p) == 0600, "db-wal mode 0%o", mode_of(p));
	snprintf(p, sizeof p, "%s/db/normlab.db-shm", D.tmp);
	CHECKF(mode_of(p) == 0600, "db-shm mode 0%o", mode_of(p));
	snprintf(p, sizeof p, "%s/runs", D.tmp);
	CHECKF(mode_of(p) == 0700, "runs dir mode 0%o", mode_of(p));
	snprintf(p, sizeof p, "%s/runs/%lld", D.tmp, (long long)id);
	CHECKF(mode_of(p) == 0700, "run dir mode 0%o", mode_of(p));
	snprintf(p, sizeof p, "%s/runs/%lld/final.safetensors", D.tmp, (long long)id);
	CHECKF(mode_of(p) == 0600, "checkpoint mode 0%o", mode_of(p));
	/* the older files were tightened, and the log says so */
	snprintf(p, sizeof p, "%s/runs/999999", D.tmp);
	CHECKF(mode_of(p) == 0700, "old run dir mode 0%o", mode_of(p));
	snprintf(p, sizeof p, "%s/runs/999999/ckpt_000010.safetensors", D.tmp);
	CHECKF(mode_of(p) == 0600, "old checkpoint mode 0%o", mode_of(p));
	CHECK(log_has("took group and other access away from 4 paths"));
}

/* ---------- 3. who sees what ---------- */

/* Every read route of run `id`, as `token`: each must answer `want`; for 404, with the words a
 * missing run gets, and nothing of BOB_SECRET. */
static void check_run_routes(int64_t id, const char *token, int want)
{
	static const char *const routes[] = {
		"/api/v1/experiments/%lld", "/api/v1/experiments/%lld/metrics",
		"/api/v1/experiments/%lld/metrics?name=loss", "/api/v1/experiments/%lld/metrics/loss",
		"/api/v1/experiments/%lld/metrics.csv", "/api/v1/experiments/%lld/metrics.ndjson",
		"/api/v1/experiments/%lld/depth?stat=var", "/api/v1/experiments/%lld/depth/var",
		"/api/v1/experiments/%lld/samples", "/api/v1/compare?ids=%lld",
		"/api/v1/events?experiment=%lld",
	};
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		char path[160], missing[64];
		struct dtest_reply r;
		if (strstr(routes[i], "events") && want == 200)
			continue;   /* a stream that does not end: the stream tests cover it */
		snprintf(path, sizeof path, routes[i], (long long)id);
		if (strstr(routes[i], "events")) {
			/* a stream that opened by mistake must fail the check, not hang the test */
			struct raw *raw = malloc(sizeof *raw);
			char h[160];
			snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
			int st = raw_request("GET", path, h, 3, NULL, raw);
			CHECKF(st == want, "GET %s: %d, want %d", path, st, want);
			CHECK(!strstr(raw->buf, "bob"));
			free(raw);
			continue;
		}
		int st = call("GET", path, token, NULL, &r);
		CHECKF(st == want, "GET %s: %d, want %d", path, st, want);
		if (want == 404) {
			snprintf(missing, sizeof missing, "experiment %lld does not exist", (long long)id);
			CHECKF(strstr(r.body, missing) != NULL, "GET %s: %.200s", path, r.body);
			CHECKF(!strstr(r.body, BOB_SECRET) && !strstr(r.body, "bob"), "GET %s leaks: %.200s",
			       path, r.body);
		}
		dtest_reply_free(&r);
	}
}

static void test_visibility(int64_t a, int64_t b, int64_t bob_sweep)
{
	struct dtest_reply r;
	char path[160];

	/* no token at all: 401 */
	CHECK(status_of("GET", "/api/v1/experiments", NULL, NULL) == 401);
	struct raw *raw = malloc(sizeof *raw);
	CHECK(raw_request("GET", "/api/v1/events", "", 3, NULL, raw) == 401);
	free(raw);

	/* lists: alice sees her run only, whatever she asks for */
	const char *lists[] = { "/api/v1/experiments", "/api/v1/experiments?owner=bob",
				"/api/v1/experiments?status=succeeded", "/api/v1/sweeps",
				"/api/v1/sweeps?owner=bob" };
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		CHECK(call("GET", lists[i], ALICE, NULL, &r) == 200);
		CHECKF(!strstr(r.body, BOB_SECRET) && !strstr(r.body, "\"bob\""), "%s leaks: %.300s",
		       lists[i], r.body);
		dtest_reply_free(&r);
	}
	snprintf(path, sizeof path, "/api/v1/experiments?sweep=%lld", (long long)bob_sweep);
	CHECK(call("GET", path, ALICE, NULL, &r) == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "items")) == 0);
	dtest_reply_free(&r);
	CHECK(call("GET", "/api/v1/experiments", ALICE, NULL, &r) == 200);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(r.json, "items"), *it;
	int n = 0, saw_a = 0;
	cJSON_ArrayForEach(it, items) {
		n++;
		saw_a |= (int64_t)dtest_num(it, "id") == a;
		CHECK(strcmp(dtest_str(it, "owner"), "alice") == 0);
	}
	CHECK(saw_a && n >= 1);
	dtest_reply_free(&r);

	/* every route of bob's run answers alice 404, as a missing run does; hers answer */
	check_run_routes(b, ALICE, 404);
	check_run_routes(a, ALICE, 200);
	check_run_routes(999999, ALICE, 404);
	snprintf(path, sizeof path, "/api/v1/compare?ids=%lld,%lld", (long long)a, (long long)b);
	CHECK(status_of("GET", path, ALICE, NULL) == 404);
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld", (long long)bob_sweep);
	CHECK(call("GET", path, ALICE, NULL, &r) == 404);
	CHECK(!strstr(r.body, BOB_SECRET) && !strstr(r.body, "bob"));
	dtest_reply_free(&r);
	CHECK(status_of("GET", path, BOB, NULL) == 200);

	/* writes on his run are still refused, without his name */
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)b);
	CHECK(call("PATCH", path, ALICE, "{\"notes\":\"x\"}", &r) == 403);
	CHECKF(!strstr(r.body, "bob"), "%s", r.body);
	dtest_reply_free(&r);
	CHECK(status_of("DELETE", path, ALICE, NULL) == 403);

	/* deduplication does not point alice at bob's identical succeeded run */
	CHECK(call("POST", "/api/v1/experiments", ALICE, spec(BOB_SECRET, 7, 30), &r) == 201);
	CHECKF((int64_t)dtest_num(r.json, "id") != b && dtest_num(r.json, "duplicate_of") < 0,
	       "%.300s", r.body);
	int64_t again = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	CHECK(strcmp(wait_status(again, 120), "succeeded") == 0);
	/* ...but bob is pointed at his own */
	CHECK(call("POST", "/api/v1/experiments", BOB, spec(BOB_SECRET, 7, 30), &r) == 200);
	CHECKF((int64_t)dtest_num(r.json, "duplicate_of") == b, "%.300s", r.body);
	dtest_reply_free(&r);

	/* a reader sees all of it and changes nothing; an admin sees all */
	check_run_routes(b, READER, 200);
	check_run_routes(b, ROOT, 200);
	CHECK(call("GET", "/api/v1/experiments", READER, NULL, &r) == 200);
	CHECK(strstr(r.body, BOB_SECRET) != NULL);
	dtest_reply_free(&r);
	CHECK(call("GET", "/api/v1/sweeps", READER, NULL, &r) == 200);
	CHECK(strstr(r.body, "\"bob\"") != NULL);
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/experiments", READER, spec("r", 1, 10), &r) == 403);
	CHECK(strcmp(dtest_str(r.json, "code"), "read_only_role") == 0);
	dtest_reply_free(&r);
	CHECK(status_of("DELETE", path, READER, NULL) == 403);
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/cancel", (long long)b);
	CHECK(status_of("POST", path, READER, NULL) == 403);
}

/* ---------- events ---------- */

static void test_events(int64_t a, int64_t b)
{
	struct raw *r = malloc(sizeof *r);
	int64_t ids[512];
	int n, sweeps;
	char h[160];

	/* alice's stream from the start: her events, none of bob's run or sweep */
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", ALICE);
	CHECK(raw_request("GET", "/api/v1/events?after=0", h, 1.5, NULL, r) == 200);
	n = sse_ids(r->buf, ids, 512, &sweeps);
	CHECKF(has_id(ids, n, a), "alice's stream lacks her run %lld (%d events)", (long long)a, n);
	CHECK(!has_id(ids, n, b));
	CHECK(sweeps == 0);
	CHECK(!strstr(r->buf, "\"owner\":\"bob\""));
	/* the reader's stream has both, and bob's sweep */
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", READER);
	CHECK(raw_request("GET", "/api/v1/events?after=0", h, 1.5, NULL, r) == 200);
	n = sse_ids(r->buf, ids, 512, &sweeps);
	CHECK(has_id(ids, n, a) && has_id(ids, n, b) && sweeps >= 1);
	free(r);
}

/* ---------- 4. the cookie session ---------- */

static char session_cookie[200];   /* "normlab_session=<hex>" */
static int64_t live_id;

static void submit_live_run(void)
{
	struct dtest_reply r;
	call("POST", "/api/v1/experiments", ALICE, spec("alice-live", 11, 40), &r);
	live_id = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
}

static void test_session(int64_t b)
{
	struct raw *r = malloc(sizeof *r);
	char h[400], v[400], path[96];
	int64_t ids[512];
	int n, sweeps;

	/* only a bearer token makes a session */
	CHECK(raw_request("POST", "/api/v1/session", "", 5, NULL, r) == 401);
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", ALICE);
	CHECK(raw_request("POST", "/api/v1/session", h, 5, NULL, r) == 201);
	raw_header(r, "Set-Cookie", v, sizeof v);
	CHECKF(strncmp(v, "normlab_session=", 16) == 0 && strlen(v) > 16 + 64, "%s", v);
	CHECKF(strstr(v, "HttpOnly") && strstr(v, "SameSite=Strict") && strstr(v, "Path=/api/v1") &&
	       strstr(v, "Max-Age="), "%s", v);
	CHECK(!strstr(r->buf, ALICE));   /* the token does not come back */
	size_t cl = strcspn(v, ";");
	snprintf(session_cookie, sizeof session_cookie, "%.*s", (int)cl, v);
	CHECK(strstr(strstr(r->buf, "\r\n\r\n"), session_cookie + 16) == NULL);   /* not in the body */

	/* the cookie reads: the list, and the event stream with a live run's events as they happen */
	snprintf(h, sizeof h, "Cookie: %s\r\n", session_cookie);
	CHECK(raw_request("GET", "/api/v1/experiments", h, 5, NULL, r) == 200);
	CHECK(strstr(r->buf, "\"alice\"") && !strstr(r->buf, "\"bob\""));
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)b);
	CHECK(raw_request("GET", path, h, 5, NULL, r) == 404);
	CHECK(raw_request("GET", "/api/v1/events", h, 12, submit_live_run, r) == 200);
	n = sse_ids(r->buf, ids, 512, &sweeps);
	CHECKF(live_id > 0 && has_id(ids, n, live_id), "no live event of run %lld: %.300s",
	       (long long)live_id, r->buf);
	CHECKF(strstr(r->buf, "event: experiment.started") != NULL, "%.300s", r->buf);
	CHECK(!has_id(ids, n, b) && sweeps == 0);
	CHECK(strcmp(wait_status(live_id, 120), "succeeded") == 0);

	/* ...but never writes, nor another session */
	CHECK(raw_request("POST", "/api/v1/experiments", h, 5, NULL, r) == 401);
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/cancel", (long long)live_id);
	CHECK(raw_request("POST", path, h, 5, NULL, r) == 401);
	CHECK(raw_request("POST", "/api/v1/session", h, 5, NULL, r) == 401);

	/* a forged or altered id is refused */
	char forged[200];
	snprintf(forged, sizeof forged, "%s", session_cookie);
	forged[20] = forged[20] == 'a' ? 'b' : 'a';
	snprintf(h, sizeof h, "Cookie: %s\r\n", forged);
	CHECK(raw_request("GET", "/api/v1/experiments", h, 5, NULL, r) == 401);
	CHECK(strstr(r->buf, "invalid_session") != NULL);
	CHECK(raw_request("GET", "/api/v1/events", "Cookie: normlab_session=zz\r\n", 5, NULL, r) == 401);

	/* logging out ends it */
	snprintf(h, sizeof h, "Cookie: %s\r\n", session_cookie);
	CHECK(raw_request("DELETE", "/api/v1/session", h, 5, NULL, r) == 204);
	raw_header(r, "Set-Cookie", v, sizeof v);
	CHECK(strstr(v, "Max-Age=0") != NULL);
	CHECK(raw_request("GET", "/api/v1/experiments", h, 5, NULL, r) == 401);
	free(r);
}

/* ---------- 5. SIGHUP ---------- */

/* Polls until `token` gets `want` on a read (the reload runs on its own thread). */
static int wait_read_status(const char *token, int want, double seconds)
{
	double until = dtest_now() + seconds;
	int st;
	do {
		st = status_of("GET", "/api/v1/experiments", token, NULL);
		if (st == want)
			return st;
		dtest_sleep_ms(50);
	} while (dtest_now() < until);
	return st;
}

static void write_tokens(const char *text, unsigned mode)
{
	char tmp[300];
	snprintf(tmp, sizeof tmp, "%s.new", tokens_path);
	dtest_write_file(tmp, text);
	chmod(tmp, mode);
	rename(tmp, tokens_path);
}

static void test_sighup(void)
{
	struct raw *r = malloc(sizeof *r);
	char h[400], v[400], bob_cookie[200];

	/* bob's session, made before his token goes */
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", BOB);
	CHECK(raw_request("POST", "/api/v1/session", h, 5, NULL, r) == 201);
	raw_header(r, "Set-Cookie", v, sizeof v);
	snprintf(bob_cookie, sizeof bob_cookie, "Cookie: %.*s\r\n", (int)strcspn(v, ";"), v);
	CHECK(raw_request("GET", "/api/v1/experiments", bob_cookie, 5, NULL, r) == 200);

	/* carol is added, bob removed: no restart */
	CHECK(status_of("GET", "/api/v1/experiments", CAROL, NULL) == 401);
	write_tokens(ALICE " alice user\n" READER " rita reader\n" ROOT " root admin\n"
		     CAROL " carol user\n", 0600);
	kill(D.pid, SIGHUP);
	CHECK(wait_read_status(CAROL, 200, 5) == 200);
	CHECK(status_of("GET", "/api/v1/experiments", BOB, NULL) == 401);
	CHECK(raw_request("GET", "/api/v1/experiments", bob_cookie, 5, NULL, r) == 401);
	CHECK(status_of("GET", "/api/v1/experiments", ALICE, NULL) == 200);
	CHECK(log_has("SIGHUP: 4 tokens loaded"));

	/* a broken file keeps the set in use, and the log says why */
	write_tokens(ALICE " alice user\nthis line is bad\n", 0600);
	kill(D.pid, SIGHUP);
	double until = dtest_now() + 5;
	while (!log_has("tokens not reloaded") && dtest_now() < until)
		dtest_sleep_ms(50);
	CHECK(log_has("SIGHUP: tokens not reloaded, the 4 in use stay") && log_has(":2: expected"));
	CHECK(status_of("GET", "/api/v1/experiments", CAROL, NULL) == 200);
	CHECK(status_of("GET", "/api/v1/experiments", BOB, NULL) == 401);

	/* so does a file others could read, even a good one */
	write_tokens(ALICE " alice user\n" BOB " bob user\n", 0644);
	kill(D.pid, SIGHUP);
	until = dtest_now() + 5;
	while (!log_has("readable or writable by group or others (mode 0644)") && dtest_now() < until)
		dtest_sleep_ms(50);
	CHECK(log_has("readable or writable by group or others (mode 0644)"));
	CHECK(status_of("GET", "/api/v1/experiments", BOB, NULL) == 401);
	CHECK(status_of("GET", "/api/v1/experiments", CAROL, NULL) == 200);
	/* made private, it is taken */
	chmod(tokens_path, 0600);
	kill(D.pid, SIGHUP);
	CHECK(wait_read_status(BOB, 200, 5) == 200);
	CHECK(wait_read_status(CAROL, 401, 5) == 401);
	free(r);
}

int main(void)
{
	struct dtest_reply r;
	char body[1024];

	umask(022);
	if (dtest_init(&D, "perms") != 0) {
		fprintf(stderr, "cannot make a temp directory\n");
		return 1;
	}
	dtest_write_corpus(&D);
	test_tokens_file_refused();

	snprintf(tokens_path, sizeof tokens_path, "%s/tokens", D.tmp);
	dtest_write_file(tokens_path, ALICE " alice user\n" BOB " bob user\n" READER " rita reader\n"
			 ROOT " root admin\n");
	make_old_files();
	const char *args[] = { "--reads_open", "false", "--workers", "2", "--thread_budget", "2",
			       "--checkpoint_every", "10", NULL };
	if (dtest_start(&D, args) != 0) {
		fprintf(stderr, "normlabd did not start\n");
		dtest_cleanup(&D, 0);
		return 1;
	}

	/* alice's run; bob's run and one-cell sweep, with a name alice must never see */
	CHECK(call("POST", "/api/v1/experiments", ALICE, spec("alice-run", 3, 30), &r) == 201);
	int64_t a = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/experiments", BOB, spec(BOB_SECRET, 7, 30), &r) == 201);
	int64_t b = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"base\":%s,\"seeds\":[8]}", BOB_SECRET,
		 spec(BOB_SECRET, 8, 10));
	/* the base names the run; the sweep's own name goes */
	cJSON *sw = cJSON_Parse(body);
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(sw, "base"), "name");
	char *swtext = cJSON_PrintUnformatted(sw);
	CHECK(call("POST", "/api/v1/sweeps", BOB, swtext, &r) == 201);
	int64_t bob_sweep = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	cJSON_free(swtext);
	cJSON_Delete(sw);
	snprintf(body, sizeof body, "/api/v1/sweeps/%lld", (long long)bob_sweep);
	CHECK(call("GET", body, BOB, NULL, &r) == 200);
	int64_t cell = (int64_t)dtest_num(cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(r.json, "cells"), 0), "id");
	dtest_reply_free(&r);
	CHECK(a > 0 && b > 0 && cell > 0);
	CHECK(strcmp(wait_status(a, 120), "succeeded") == 0);
	CHECK(strcmp(wait_status(b, 120), "succeeded") == 0);
	CHECK(strcmp(wait_status(cell, 120), "succeeded") == 0);
	check_run_routes(cell, ALICE, 404);

	test_file_modes(a);
	test_visibility(a, b, bob_sweep);
	test_events(a, b);
	test_session(b);
	test_sighup();

	CHECK(dtest_stop(&D, SIGTERM) == 0);
	dtest_cleanup(&D, test_fail_count == 0);
	return test_finish("test_perms");
}
