/*
 * dtest.c — see dtest.h. The client speaks just enough HTTP/1.1 for the daemon's answers:
 * "Connection: close", read to EOF, de-chunk when the response is chunked.
 */
#define _GNU_SOURCE
#include "dtest.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double dtest_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dtest_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void dtest_reply_free(struct dtest_reply *r)
{
	cJSON_Delete(r->json);
	free(r->raw);
	memset(r, 0, sizeof *r);
}

/* Decodes a chunked body in place (libmicrohttpd streams unknown-size bodies chunked). */
static void dechunk(char *b)
{
	char *in = b, *out = b;
	for (;;) {
		char *end;
		long n = strtol(in, &end, 16);
		if (end == in || n <= 0)
			break;
		in = strstr(end, "\r\n");
		if (!in)
			break;
		in += 2;
		memmove(out, in, (size_t)n);
		out += n;
		in += n + 2;
	}
	*out = '\0';
}

int dtest_request(const struct dtest *t, const char *method, const char *path, const char *token,
		  const char *body, size_t body_len, struct dtest_reply *r)
{
	memset(r, 0, sizeof *r);
	r->status = -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)t->port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char head[1024], auth[160] = "";
	if (token)
		snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
	int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", method, path,
			 auth, body ? body_len : 0);
	if (write(fd, head, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	for (size_t off = 0; body && off < body_len;) {
		ssize_t w = write(fd, body + off, body_len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	size_t cap = 1 << 16, got = 0;
	r->raw = malloc(cap);
	ssize_t k;
	while (r->raw && (k = read(fd, r->raw + got, cap - 1 - got)) > 0) {
		got += (size_t)k;
		if (got + 1 >= cap) {
			cap *= 2;
			char *nr = realloc(r->raw, cap);
			if (!nr) {
				free(r->raw);
				r->raw = NULL;
			}
			r->raw = nr;
		}
	}
	close(fd);
	if (!r->raw)
		return -1;
	r->raw[got] = '\0';
	sscanf(r->raw, "HTTP/1.%*d %d", &r->status);
	char *sep = strstr(r->raw, "\r\n\r\n");
	r->body = sep ? sep + 4 : r->raw + got;
	char *te = strcasestr(r->raw, "Transfer-Encoding: chunked");
	if (te && sep && te < sep)
		dechunk(r->body);
	r->json = cJSON_Parse(r->body);
	return r->status;
}

int dtest_call(const struct dtest *t, const char *method, const char *path, const char *token,
	       const char *body, struct dtest_reply *r)
{
	return dtest_request(t, method, path, token, body, body ? strlen(body) : 0, r);
}

double dtest_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1e300;
}

const char *dtest_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : "";
}

void dtest_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

void dtest_write_corpus(struct dtest *t)
{
	static const char *const words[] = { "the", "norm", "of", "layer", "and", "variance",
		"grows", "with", "depth", "in", "pre", "post", "tanh", "residual", "stream", "a" };
	unsigned r = 12345;
	snprintf(t->corpus, sizeof t->corpus, "%s/corpus.txt", t->tmp);
	FILE *f = fopen(t->corpus, "w");
	if (!f)
		return;
	for (int i = 0; i < 40000; i++) {
		r = r * 1103515245u + 12345u;
		fputs(words[(r >> 16) % 16], f);
		fputc((r >> 8) % 11 == 0 ? '\n' : ' ', f);
	}
	fclose(f);
}

int dtest_init(struct dtest *t, const char *name)
{
	memset(t, 0, sizeof *t);
	const char *b = getenv("NORMLAB_BIN");
	snprintf(t->bindir, sizeof t->bindir, "%s", b && *b ? b : "bin");
	if (t->bindir[0] != '/') {
		char cwd[200], rel[256];
		snprintf(rel, sizeof rel, "%.255s", t->bindir);
		if (getcwd(cwd, sizeof cwd))
			snprintf(t->bindir, sizeof t->bindir, "%.200s/%.255s", cwd, rel);
	}
	snprintf(t->tmp, sizeof t->tmp, "/tmp/nl_%.20s_XXXXXX", name);
	if (!mkdtemp(t->tmp))
		return -1;
	snprintf(t->log, sizeof t->log, "%s/daemon.log", t->tmp);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void dtest_cleanup(struct dtest *t, int ok)
{
	char cmd[400];
	if (!ok) {
		snprintf(cmd, sizeof cmd, "tail -n 30 %s >&2", t->log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no daemon log)\n");
		fprintf(stderr, "kept %s\n", t->tmp);
		return;
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", t->tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->tmp);
}

#define DTEST_MAX_ARGS 64

int dtest_start(struct dtest *t, const char *const *args)
{
	char db[256], runs[256], tokens[256], listen[64], exe[600];
	snprintf(db, sizeof db, "%s/db/normlab.db", t->tmp);
	snprintf(runs, sizeof runs, "%s/runs", t->tmp);
	snprintf(tokens, sizeof tokens, "%s/tokens", t->tmp);
	snprintf(exe, sizeof exe, "%s/normlabd", t->bindir);
	/* normlabd refuses a tokens file that group or others can read */
	chmod(tokens, 0600);
	for (int attempt = 0; attempt < 8; attempt++) {
		t->port = 20000 + (int)((getpid() * 7919 + attempt * 977 + (long)dtest_now()) % 40000);
		snprintf(listen, sizeof listen, "127.0.0.1:%d", t->port);
		const char *argv[DTEST_MAX_ARGS + 12] = { exe, "--listen", listen, "--db", db, "--runs",
			runs, "--tokens", tokens, "--data-dir", t->tmp };
		int n = 11;
		for (int i = 0; args && args[i] && i < DTEST_MAX_ARGS; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		pid_t pid = fork();
		if (pid == 0) {
			int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execv(exe, (char *const *)argv);
			_exit(127);
		}
		for (int i = 0; i < 200; i++) {
			struct dtest_reply r;
			int st = dtest_call(t, "GET", "/api/v1/health", NULL, NULL, &r);
			dtest_reply_free(&r);
			if (st == 200 || st == 503) {   /* 503: up, but degraded */
				t->pid = pid;
				return 0;
			}
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break;
			dtest_sleep_ms(50);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

int dtest_stop(struct dtest *t, int sig)
{
	int status = 0;
	if (!t->pid)
		return -1;
	kill(t->pid, sig);
	waitpid(t->pid, &status, 0);
	t->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
