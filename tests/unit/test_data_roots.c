/*
 * test_data_roots.c — issue 9, bar 1: no user can read a file outside the data roots through a
 * spec. Drives the real normlabd on loopback (tests/lib/dtest.h):
 *  1. a plain `user` names the tokens file, the database, /etc/passwd, /etc/shadow and more by
 *     absolute path, by '..', through symlinks out of the data root, as non-regular files, and
 *     (with a misconfigured second root around the daemon's own files) by their plain relative
 *     names — as one run, as a dry run, as a sweep and a sweep dry run. Every one is refused at
 *     submit with 4xx naming /data/path, the words do not depend on whether the target exists,
 *     and no body — nor the run list, the sweeps, the events or the dataset list afterwards —
 *     holds a byte of those files or their sizes.
 *  2. a corpus swapped for a symlink to the tokens file after the submit fails the run at start
 *     with the same words; a corpus whose content changed fails with the hash named.
 *  3. GET /api/v1/datasets lists what the roots hold, with sha256; only an admin registers.
 *  4. the content hash is part of the spec hash: one name over two contents never dedups.
 *  5. the corpus counts against max_run_bytes: a 512 MiB corpus under a 64 MiB cap is refused
 *     with the numbers, and the daemon never reads it into memory.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../lib/dtest.h"
#include "sha256.h"
#include "../test.h"

#define ADMIN "tok-admin-0123456789abcdef"
#define USER "tok-user-0123456789abcdef00"

static struct dtest D;
static char data_dir[128], tokens_path[128], db_path[128];

/* ---- what must never come back ---- */

#define MARKER "SECRET-MARKER-7f3a9c"

static const char *const secret_text[] = {
	ADMIN, MARKER, "root:x:0:0", "SQLite format 3", NULL,
};

static long long secret_size[4];
static int n_sizes;

static void note_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && st.st_size > 999 && n_sizes < 4)
		secret_size[n_sizes++] = (long long)st.st_size;
}

/* The decimal n bounded by non-digits somewhere in s. */
static int has_number(const char *s, long long n)
{
	char num[32];
	int k = snprintf(num, sizeof num, "%lld", n);
	for (const char *p = strstr(s, num); p; p = strstr(p + 1, num))
		if ((p == s || p[-1] < '0' || p[-1] > '9') && (p[k] < '0' || p[k] > '9'))
			return 1;
	return 0;
}

/* 1 (and a message) if body holds a secret text or a secret file's size. */
static int leaks(const char *what, const char *body, int sizes_anywhere)
{
	if (!body)
		return 0;
	for (int i = 0; secret_text[i]; i++)
		if (strstr(body, secret_text[i])) {
			fprintf(stderr, "%s: the answer holds \"%s\"\n", what, secret_text[i]);
			return 1;
		}
	for (int i = 0; i < n_sizes; i++) {
		char a[48], b[48];
		snprintf(a, sizeof a, "%lld bytes", secret_size[i]);
		snprintf(b, sizeof b, "\"bytes\":%lld", secret_size[i]);
		if (strstr(body, a) || strstr(body, b) ||
		    (sizes_anywhere && has_number(body, secret_size[i]))) {
			fprintf(stderr, "%s: the answer holds the size %lld\n", what, secret_size[i]);
			return 1;
		}
	}
	return 0;
}

static int call(const char *method, const char *path, const char *token, const char *body,
		struct dtest_reply *r)
{
	return dtest_call(&D, method, path, token, body, r);
}

/* Reads an SSE stream for about ms milliseconds (it never ends by itself). */
static char *sse_read(int ms)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)D.port) };
	struct timeval tv = { 0, 200000 };
	char *out = calloc(1, 1 << 20);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
		const char *head = "GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
				   USER "\r\nAccept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n";
		if (write(fd, head, strlen(head)) == (ssize_t)strlen(head)) {
			size_t got = 0;
			double until = dtest_now() + ms / 1000.0;
			while (dtest_now() < until && got < (1 << 20) - 4096) {
				ssize_t k = read(fd, out + got, 4095);
				if (k > 0)
					got += (size_t)k;
				else if (k == 0)
					break;
			}
		}
	}
	close(fd);
	return out;
}

static void file_sha256(const char *path, char hex[65])
{
	static char buf[1 << 16];
	struct sha256_ctx c;
	uint8_t d[SHA256_LEN];
	FILE *f = fopen(path, "rb");
	size_t n;
	sha256_init(&c);
	while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
		sha256_update(&c, buf, n);
	if (f)
		fclose(f);
	sha256_final(&c, d);
	sha256_hex(d, hex);
}

static void data_file(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", data_dir, name);
	dtest_write_file(p, text);
}

static void data_link(const char *name, const char *target)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", data_dir, name);
	unlink(p);
	CHECKF(symlink(target, p) == 0, "symlink %s", p);
}

/* A word-salad corpus of n bytes whose content depends on seed. */
static char *salad(size_t n, unsigned seed)
{
	static const char *const words[] = { "the ", "norm ", "layer ", "and ", "residual ",
					     "stream ", "of ", "tokens ", "grows ", "with ",
					     "depth\n", "scale ", "tanh ", "alpha ", "shift " };
	char *s = malloc(n + 1);
	size_t len = 0;
	unsigned x = seed * 2654435761u + 1;
	while (len < n) {
		x = x * 1103515245u + 12345u;
		const char *w = words[(x >> 16) % 15];
		for (size_t i = 0; w[i] && len < n; i++)
			s[len++] = w[i];
	}
	s[n] = '\0';
	return s;
}

/* ---- 1. the exfiltration attempts ---- */

#define SPEC_FMT "{\"data\":{\"path\":\"%s\"},\"model\":{\"n_layer\":1,\"d_model\":16," \
		 "\"n_head\":2,\"seq_len\":16},\"train\":{\"steps\":20,\"batch_size\":2,\"warmup\":0}," \
		 "\"probe\":{\"samples_every\":10,\"samples\":16}}"

/* The detail of a refusal with the user's own words (name) replaced by "NAME". */
static void detail_without(const struct dtest_reply *r, const char *name, char *out, size_t cap)
{
	const char *d = dtest_str(r->json, "detail");
	size_t j = 0, n = strlen(name);
	for (size_t i = 0; d[i] && j + 5 < cap;) {
		if (n && strncmp(d + i, name, n) == 0) {
			memcpy(out + j, "NAME", 4);
			j += 4;
			i += n;
		} else {
			out[j++] = d[i++];
		}
	}
	out[j] = '\0';
}

/* Submits path every way a user can; each must be a 4xx naming data.path, with no leak.
 * Fills detail (the single submit's detail with the name replaced) when not NULL. */
static void refused_everywhere(const char *path, char *detail, size_t cap)
{
	char spec[1024], sweep[1400], what[300];
	struct dtest_reply r;
	snprintf(spec, sizeof spec, SPEC_FMT, path);
	snprintf(sweep, sizeof sweep, "{\"base\":%s,\"grid\":{\"seed\":[1,2]}}", spec);
	static const char *const urls[] = { "/api/v1/experiments", "/api/v1/experiments?dry_run=1",
					    "/api/v1/sweeps", "/api/v1/sweeps?dry_run=1" };
	for (int u = 0; u < 4; u++) {
		int status = call("POST", urls[u], USER, u < 2 ? spec : sweep, &r);
		snprintf(what, sizeof what, "%s via %s", path, urls[u]);
		CHECKF(status >= 400 && status < 500, "%s: status %d: %.300s", what, status, r.body);
		CHECKF(r.body && strstr(r.body, u < 2 ? "\"/data/" : "/cells/0/data/"),
		       "%s: the refusal does not name data.path: %.300s", what, r.body);
		CHECK(!leaks(what, r.body, 1));
		if (u == 0 && detail)
			detail_without(&r, path, detail, cap);
		dtest_reply_free(&r);
	}
}

static void test_exfiltration(void)
{
	char abs_tokens[300], abs_db[300], abs_corpus[300];
	snprintf(abs_tokens, sizeof abs_tokens, "%s", tokens_path);
	snprintf(abs_db, sizeof abs_db, "%s", db_path);
	snprintf(abs_corpus, sizeof abs_corpus, "%s/corpus.txt", data_dir);

	/* symlinks out of the root, to files that exist and to files that do not */
	data_link("ln_tokens", abs_tokens);
	data_link("ln_tokens_rel", "../tokens");
	data_link("ln_db", "../db/normlab.db");
	data_link("ln_passwd", "/etc/passwd");
	data_link("ln_shadow", "/etc/shadow");
	data_link("ln_missing", "/nonexistent/nothing-here");
	data_link("ln_dir", "..");
	char sub[300];
	snprintf(sub, sizeof sub, "%s/sub", data_dir);
	mkdir(sub, 0700);
	data_link("sub/up2", "../../tokens");
	char fifo[300];
	snprintf(fifo, sizeof fifo, "%s/fifo", data_dir);
	mkfifo(fifo, 0600);
	/* a hard link is no symlink: only the file's identity gives it away */
	char hard[300];
	snprintf(hard, sizeof hard, "%s/hard_tokens", data_dir);
	CHECK(link(tokens_path, hard) == 0);

	const char *hostile[] = {
		/* absolute */
		"/etc/passwd", "/etc/shadow", "/nonexistent/xyz", abs_tokens, abs_db, abs_corpus,
		"/dev/zero", "/proc/self/environ",
		/* '..' and other spellings */
		"../tokens", "../db/normlab.db", "../../../../../../../etc/passwd", "sub/../../tokens",
		"./corpus.txt", "corpus.txt/", "sub//up2", "..",
		/* symlinks leaving the root */
		"ln_tokens", "ln_tokens_rel", "ln_db", "ln_passwd", "ln_shadow", "ln_missing",
		"ln_dir/tokens", "ln_dir/db/normlab.db", "sub/up2",
		/* not regular files, and a hard link to the tokens file */
		"fifo", "sub", "hard_tokens",
		/* the daemon's own files, by name, inside the misconfigured second root (D.tmp) */
		"tokens", "db/normlab.db", "db/normlab.db-wal", "db/normlab.db-shm",
		/* ... and through symlinks that stay inside that root */
		"data/ln_tokens_rel", "data/ln_dir/tokens", "data/ln_db",
		NULL,
	};
	for (int i = 0; hostile[i]; i++)
		refused_everywhere(hostile[i], NULL, 0);

	/* one sweep over all of them: refused as a whole, every cell named */
	{
		char body[8192];
		size_t n = (size_t)snprintf(body, sizeof body, "{\"base\":" SPEC_FMT
					    ",\"grid\":{\"data.path\":[", "corpus.txt");
		for (int i = 0; hostile[i] && i < 12; i++)
			n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%s\"", i ? "," : "",
					      hostile[i]);
		snprintf(body + n, sizeof body - n, "]}}");
		struct dtest_reply r;
		int st = call("POST", "/api/v1/sweeps", USER, body, &r);
		CHECKF(st == 400, "sweep over hostile paths: %d %.300s", st, r.body);
		for (int i = 0; i < 12; i++) {
			char ptr[64];
			snprintf(ptr, sizeof ptr, "\"/cells/%d/data/path\"", i);
			CHECKF(r.body && strstr(r.body, ptr), "sweep: cell %d not named: %.400s", i,
			       r.body);
		}
		CHECK(!leaks("hostile sweep", r.body, 1));
		dtest_reply_free(&r);
	}

	/* the same words whether the target exists or not */
	char a[512], b[512], c[512], e[512];
	refused_everywhere("/etc/shadow", a, sizeof a);
	refused_everywhere("/nonexistent/xyz", b, sizeof b);
	CHECKF(strcmp(a, b) == 0, "absolute paths: \"%s\" vs \"%s\"", a, b);
	refused_everywhere("ln_passwd", a, sizeof a);
	refused_everywhere("ln_missing", b, sizeof b);
	refused_everywhere("no-such-file.txt", c, sizeof c);
	refused_everywhere("tokens", e, sizeof e);
	CHECKF(strcmp(a, b) == 0 && strcmp(b, c) == 0 && strcmp(c, e) == 0,
	       "symlink to a file / to nothing / no file / a daemon file read differently:\n%s\n%s\n%s\n%s",
	       a, b, c, e);
	printf("refusal for a name that leads nowhere: %s\n", c);

	/* nothing was queued, and nothing anywhere holds a byte of the files */
	struct dtest_reply r;
	call("GET", "/api/v1/experiments", USER, NULL, &r);
	cJSON *items = cJSON_GetObjectItemCaseSensitive(r.json, "items");
	CHECKF(cJSON_GetArraySize(items) == 0, "runs were queued: %.300s", r.body);
	CHECK(!leaks("run list", r.body, 0));
	dtest_reply_free(&r);
	call("GET", "/api/v1/sweeps", USER, NULL, &r);
	CHECK(!leaks("sweep list", r.body, 0));
	dtest_reply_free(&r);
	char *ev = sse_read(600);
	CHECK(!leaks("events", ev, 0));
	free(ev);
	call("GET", "/api/v1/datasets", USER, NULL, &r);
	CHECKF(r.status == 200, "datasets: %d", r.status);
	CHECK(!leaks("dataset list", r.body, 0));
	static const char *const unlisted[] = { "\"ln_", "\"tokens\"", "\"db/normlab.db", "\"fifo\"",
						"\"sub\"", "up2", "hard_tokens", NULL };
	for (int i = 0; unlisted[i]; i++)
		CHECKF(r.body && !strstr(r.body, unlisted[i]), "the dataset list shows %s: %.500s",
		       unlisted[i], r.body);
	dtest_reply_free(&r);
}

/* ---- 2. swapped or changed after the submit ---- */

static int64_t submit(const char *token, const char *spec, int want_status)
{
	struct dtest_reply r;
	int st = call("POST", "/api/v1/experiments", token, spec, &r);
	CHECKF(st == want_status, "submit: %d, want %d: %.300s", st, want_status, r.body);
	int64_t id = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	return id;
}

static void wait_status(int64_t id, const char *want, double seconds, char *error, size_t cap)
{
	char path[96];
	struct dtest_reply r;
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)id);
	double until = dtest_now() + seconds;
	const char *st = "";
	char last[32] = "";
	while (dtest_now() < until) {
		call("GET", path, USER, NULL, &r);
		st = dtest_str(r.json, "status");
		snprintf(last, sizeof last, "%s", st);
		if (strcmp(st, want) == 0) {
			if (error)
				snprintf(error, cap, "%s", dtest_str(r.json, "error"));
			CHECK(!leaks("run", r.body, 0));
			dtest_reply_free(&r);
			return;
		}
		int done = strcmp(st, "queued") != 0 && strcmp(st, "running") != 0;
		if (done)
			fprintf(stderr, "run %lld: %.400s\n", (long long)id, r.body);
		dtest_reply_free(&r);
		if (done)
			break;
		dtest_sleep_ms(50);
	}
	CHECKF(0, "run %lld is %s, want %s", (long long)id, last, want);
}

static void test_swap_after_submit(void)
{
	char spec[1024], p[300], tmpname[300], err[600];
	char *blk = salad(20000, 1);
	data_file("swap.txt", blk);
	data_file("change.txt", blk);
	free(blk);

	/* one worker: the blocker holds it while the others wait in the queue */
	snprintf(spec, sizeof spec, "{\"name\":\"blocker\",\"data\":{\"path\":\"corpus.txt\"},"
		 "\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":2,\"seq_len\":16},"
		 "\"train\":{\"steps\":1000000,\"batch_size\":2,\"warmup\":0}}");
	int64_t blocker = submit(USER, spec, 201);
	wait_status(blocker, "running", 30, NULL, 0);
	snprintf(spec, sizeof spec, SPEC_FMT, "swap.txt");
	int64_t swapped = submit(USER, spec, 201);
	snprintf(spec, sizeof spec, SPEC_FMT, "change.txt");
	int64_t changed = submit(USER, spec, 201);

	/* the file becomes a symlink to the tokens file (atomically, as an attacker would) */
	snprintf(tmpname, sizeof tmpname, "%s/swap.tmp", data_dir);
	snprintf(p, sizeof p, "%s/swap.txt", data_dir);
	CHECK(symlink(tokens_path, tmpname) == 0 && rename(tmpname, p) == 0);
	/* the other keeps its size and changes its bytes */
	char *other = salad(20000, 2);
	data_file("change.txt", other);
	free(other);

	char path[96];
	struct dtest_reply r;
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/cancel", (long long)blocker);
	call("POST", path, USER, NULL, &r);
	dtest_reply_free(&r);

	wait_status(swapped, "failed", 60, err, sizeof err);
	printf("swapped for a symlink after the submit: %s\n", err);
	CHECKF(strstr(err, "no dataset \"swap.txt\"") != NULL, "swap: %s", err);
	CHECK(!leaks("swap error", err, 1));
	wait_status(changed, "failed", 60, err, sizeof err);
	printf("changed after the submit: %s\n", err);
	CHECKF(strstr(err, "sha256") != NULL, "change: %s", err);
}

/* ---- 3 and 4. the dataset list, registration, and the hash in the spec hash ---- */

static const cJSON *find_item(const cJSON *items, const char *name)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, items)
		if (strcmp(dtest_str(it, "name"), name) == 0)
			return it;
	return NULL;
}

static void test_datasets_and_dedup(void)
{
	char corpus[300], hex[65], spec[1024], body[256];
	struct dtest_reply r;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", data_dir);
	file_sha256(corpus, hex);

	call("GET", "/api/v1/datasets", USER, NULL, &r);
	const cJSON *it = find_item(cJSON_GetObjectItemCaseSensitive(r.json, "items"), "corpus.txt");
	struct stat st;
	stat(corpus, &st);
	CHECKF(it && strcmp(dtest_str(it, "sha256"), hex) == 0 &&
	       dtest_num(it, "bytes") == (double)st.st_size && dtest_str(it, "size")[0],
	       "corpus.txt listed with its hash and size: %.400s", r.body);
	dtest_reply_free(&r);

	/* only an admin registers, and only what is inside a root */
	char *a = salad(30000, 3), *b = salad(30000, 4);
	data_file("a.txt", a);
	data_file("b.txt", b);
	free(a);
	free(b);
	CHECK(call("POST", "/api/v1/datasets", USER, "{\"name\":\"corp\",\"path\":\"a.txt\"}", &r) == 403);
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/datasets", ADMIN, "{\"name\":\"corp\",\"path\":\"../tokens\"}", &r) == 400);
	CHECK(!leaks("register ../tokens", r.body, 1));
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/datasets", ADMIN, "{\"name\":\"corp\",\"path\":\"ln_tokens\"}", &r) == 400);
	CHECK(!leaks("register ln_tokens", r.body, 1));
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/datasets", ADMIN, "{\"name\":\"../x\",\"path\":\"a.txt\"}", &r) == 400);
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/datasets", ADMIN, "{\"name\":\"corp\",\"path\":\"a.txt\"}", &r) == 201);
	char sha_a[65], sha_b[65];
	snprintf(sha_a, sizeof sha_a, "%s", dtest_str(r.json, "sha256"));
	dtest_reply_free(&r);

	/* train on it; the stored spec records the content it trained on */
	snprintf(spec, sizeof spec, SPEC_FMT, "corp");
	int64_t id1 = submit(USER, spec, 201);
	wait_status(id1, "succeeded", 120, NULL, 0);
	snprintf(body, sizeof body, "/api/v1/experiments/%lld", (long long)id1);
	call("GET", body, USER, NULL, &r);
	const cJSON *sd = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r.json, "spec"), "data");
	CHECKF(strcmp(dtest_str(sd, "sha256"), sha_a) == 0 && strlen(sha_a) == 64,
	       "the run records its corpus hash: %.400s", r.body);
	char hash1[65];
	snprintf(hash1, sizeof hash1, "%s", dtest_str(r.json, "hash"));
	dtest_reply_free(&r);

	/* same spec, same content: a duplicate */
	call("POST", "/api/v1/experiments", USER, spec, &r);
	CHECKF(r.status == 200 && dtest_num(r.json, "duplicate_of") == (double)id1,
	       "same content dedups: %.300s", r.body);
	dtest_reply_free(&r);

	/* same name, other content: a new run with another hash */
	CHECK(call("POST", "/api/v1/datasets", ADMIN, "{\"name\":\"corp\",\"path\":\"b.txt\"}", &r) == 201);
	snprintf(sha_b, sizeof sha_b, "%s", dtest_str(r.json, "sha256"));
	dtest_reply_free(&r);
	CHECK(strcmp(sha_a, sha_b) != 0);
	call("POST", "/api/v1/experiments", USER, spec, &r);
	CHECKF(r.status == 201 && dtest_num(r.json, "id") != (double)id1 &&
	       strcmp(dtest_str(r.json, "hash"), hash1) != 0,
	       "one name over two contents must not dedup: %.300s", r.body);
	int64_t id2 = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	wait_status(id2, "succeeded", 120, NULL, 0);

	/* a pinned hash that is not the content: refused at /data/sha256 */
	snprintf(spec, sizeof spec, "{\"data\":{\"path\":\"corp\",\"sha256\":\"%s\"}}", sha_a);
	call("POST", "/api/v1/experiments?dry_run=1", USER, spec, &r);
	CHECKF(r.status == 400 && strstr(r.body, "/data/sha256"), "pinned hash: %.300s", r.body);
	dtest_reply_free(&r);

	/* a checkpoint of a finished run, by name inside the misconfigured root: refused */
	char ck[128];
	snprintf(ck, sizeof ck, "runs/%lld/final.safetensors", (long long)id1);
	snprintf(spec, sizeof spec, SPEC_FMT, ck);
	call("POST", "/api/v1/experiments?dry_run=1", USER, spec, &r);
	CHECKF(r.status == 400 && strstr(r.body, "no dataset"), "checkpoint as a corpus: %.300s",
	       r.body);
	dtest_reply_free(&r);

	CHECK(call("DELETE", "/api/v1/datasets/corp", USER, NULL, &r) == 403);
	dtest_reply_free(&r);
	CHECK(call("DELETE", "/api/v1/datasets/corp", ADMIN, NULL, &r) == 204);
	dtest_reply_free(&r);
	CHECK(call("GET", "/api/v1/datasets/corp", USER, NULL, &r) == 404);
	dtest_reply_free(&r);
}

/* ---- 5. the corpus counts against max_run_bytes ---- */

static long rss_kib(pid_t pid)
{
	char p[64], line[256];
	long kib = -1;
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void test_memory_cap(void)
{
	char big[300], spec[1024];
	struct dtest_reply r;
	snprintf(big, sizeof big, "%s/big.txt", data_dir);
	int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 512LL << 20) == 0);   /* sparse: costs no disk */
	close(fd);

	snprintf(spec, sizeof spec, SPEC_FMT, "big.txt");
	static const char *const urls[] = { "/api/v1/experiments", "/api/v1/experiments?dry_run=1" };
	for (int u = 0; u < 2; u++) {
		call("POST", urls[u], USER, spec, &r);
		CHECKF(r.status == 422 && strstr(r.body, "run_too_large") &&
		       strstr(r.body, "\"/data/path\"") && strstr(r.body, "512.0 MiB") &&
		       strstr(r.body, "536870912 bytes") && strstr(r.body, "64.0 MiB"),
		       "512 MiB corpus under a 64 MiB cap (%s): %.500s", urls[u], r.body);
		if (u == 0)
			printf("512 MiB corpus, 64 MiB cap: %s\n", dtest_str(r.json, "detail"));
		dtest_reply_free(&r);
	}
	char sweep[1400];
	snprintf(sweep, sizeof sweep, "{\"base\":" SPEC_FMT ",\"grid\":{\"seed\":[1,2]}}", "big.txt");
	call("POST", "/api/v1/sweeps", USER, sweep, &r);
	CHECKF(r.status == 422 && strstr(r.body, "/cells/1/data/path"), "sweep: %.400s", r.body);
	dtest_reply_free(&r);
	long kib = rss_kib(D.pid);
	printf("daemon RSS after refusing the 512 MiB corpus: %ld KiB\n", kib);
	CHECKF(kib > 0 && kib < 256 * 1024, "the daemon's RSS is %ld KiB", kib);

	/* the estimate counts the corpus byte for byte */
	double m[2];
	const char *names[2] = { "a.txt", "corpus.txt" };
	for (int i = 0; i < 2; i++) {
		snprintf(spec, sizeof spec, SPEC_FMT, names[i]);
		call("POST", "/api/v1/experiments?dry_run=1", USER, spec, &r);
		m[i] = dtest_num(r.json, "memory_bytes");
		dtest_reply_free(&r);
	}
	struct stat sa, sc;
	char pa[300];
	snprintf(pa, sizeof pa, "%s/a.txt", data_dir);
	stat(pa, &sa);
	snprintf(pa, sizeof pa, "%s/corpus.txt", data_dir);
	stat(pa, &sc);
	CHECKF(m[1] - m[0] == (double)(sc.st_size - sa.st_size),
	       "memory_bytes differ by %.0f, the corpora by %lld", m[1] - m[0],
	       (long long)(sc.st_size - sa.st_size));

	call("GET", "/api/v1/datasets", USER, NULL, &r);
	const cJSON *it = find_item(cJSON_GetObjectItemCaseSensitive(r.json, "items"), "big.txt");
	CHECKF(it && dtest_num(it, "bytes") == 536870912.0, "big.txt listed: %.300s", r.body);
	dtest_reply_free(&r);
	unlink(big);
}

int main(void)
{
	if (dtest_init(&D, "data_roots") != 0)
		return 1;
	/* the data root proper, and the corpus the harness writes, moved into it */
	snprintf(data_dir, sizeof data_dir, "%s/data", D.tmp);
	snprintf(tokens_path, sizeof tokens_path, "%s/tokens", D.tmp);
	snprintf(db_path, sizeof db_path, "%s/db/normlab.db", D.tmp);
	mkdir(data_dir, 0700);
	dtest_write_corpus(&D);
	char corpus[300];
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", data_dir);
	CHECK(rename(D.corpus, corpus) == 0);
	/* a tokens file over 999 bytes (its size is a number worth searching for) with a marker */
	char tok[2048];
	int n = snprintf(tok, sizeof tok, ADMIN " root admin\n" USER " mallory user\n# " MARKER "\n");
	for (int line = 0; line < 3; line++) {
		tok[n++] = '#';
		memset(tok + n, 'x', 400);
		n += 400;
		tok[n++] = '\n';
	}
	tok[n] = '\0';
	dtest_write_file(tokens_path, tok);

	/* data_dirs adds D.tmp itself, around the db, tokens and runs: a misconfiguration the
	 * daemon must survive without serving its own files */
	/* no stored-bytes quota: a long run here only has to be caught running */
	const char *args[] = { "--data-dir", data_dir, "--data_dirs", D.tmp, "--workers", "1",
			       "--thread_budget", "1", "--user_max_run_store_bytes", "0", NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start (see %s)", D.log);
		return test_finish("data_roots");
	}
	note_size(tokens_path);
	note_size(db_path);
	note_size("/etc/passwd");
	test_exfiltration();
	test_swap_after_submit();
	test_datasets_and_dedup();
	CHECK(dtest_stop(&D, SIGTERM) == 0);

	const char *capped[] = { "--data-dir", data_dir, "--max_run_bytes", "64M", NULL };
	if (dtest_start(&D, capped) != 0) {
		CHECKF(0, "the daemon did not restart (see %s)", D.log);
		return test_finish("data_roots");
	}
	test_memory_cap();
	CHECK(dtest_stop(&D, SIGTERM) == 0);
	dtest_cleanup(&D, test_fail_count == 0);
	return test_finish("data_roots");
}
