/*
 * dtest.h — the harness for tests that drive the real normlabd on loopback: a temp directory, the
 * daemon started from $NORMLAB_BIN on a free port with its database, runs and tokens inside that
 * directory, a plain-socket HTTP/1.1 client (one connection per request, chunked bodies decoded,
 * JSON parsed with cJSON), and a word-salad corpus the test writes itself.
 * Single-threaded: one struct dtest per test process, owned by its main.
 */
#ifndef DTEST_H
#define DTEST_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

struct dtest {
	char tmp[64];          /* the test's temp directory (/tmp/nl_<name>_XXXXXX) */
	char bindir[512];      /* absolute directory of normlab and normlabd */
	char corpus[256];      /* tmp/corpus.txt once dtest_write_corpus has run */
	char log[256];         /* the daemon's stdout and stderr: tmp/daemon.log */
	int port;
	pid_t pid;             /* the running daemon, 0 if none */
};

struct dtest_reply {
	int status;            /* HTTP status, -1 if the request failed */
	char *raw;             /* whole response, headers included */
	char *body;            /* points into raw */
	cJSON *json;           /* parsed body, or NULL */
};

/* Makes the temp directory and resolves $NORMLAB_BIN (default bin/). Ignores SIGPIPE. 0 or -1. */
int dtest_init(struct dtest *t, const char *name);
/* Removes the temp directory when ok, else prints the daemon log's tail to stderr and keeps it. */
void dtest_cleanup(struct dtest *t, int ok);

/*
 * Starts normlabd with --listen 127.0.0.1:<free port> --db tmp/db/normlab.db --runs tmp/runs
 * --tokens tmp/tokens --data-dir tmp, then `args` (NULL-terminated, may be NULL), and waits until
 * /api/v1/health answers. Makes tmp/tokens mode 0600 first (normlabd refuses a readable one). Retries other ports a few times. 0 or -1.
 */
int dtest_start(struct dtest *t, const char *const *args);
/* Sends sig, waits, and returns the exit code (128 + signal when killed). */
int dtest_stop(struct dtest *t, int sig);

/* One request on a fresh connection from 127.0.0.1; token may be NULL. Returns the status. */
int dtest_request(const struct dtest *t, const char *method, const char *path, const char *token,
		  const char *body, size_t body_len, struct dtest_reply *r);
/* dtest_request with a NUL-terminated body (or none). */
int dtest_call(const struct dtest *t, const char *method, const char *path, const char *token,
	       const char *body, struct dtest_reply *r);
void dtest_reply_free(struct dtest_reply *r);

/* A number / string member of a JSON object; -1e300 / "" when absent. */
double dtest_num(const cJSON *o, const char *key);
const char *dtest_str(const cJSON *o, const char *key);

double dtest_now(void);              /* CLOCK_MONOTONIC seconds */
void dtest_sleep_ms(int ms);
void dtest_write_file(const char *path, const char *text);
/* Writes ~250 KB of word salad to tmp/corpus.txt (enough for any tiny model's two splits). */
void dtest_write_corpus(struct dtest *t);

#endif
