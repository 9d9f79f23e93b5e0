/*
 * normlabd — the normlab daemon. Reads its configuration (built-in defaults < -c FILE < flags),
 * opens the SQLite store (re-queueing runs a crash left behind), starts the HTTP API on
 * libmicrohttpd, and runs the scheduler's libuv loop on this thread until SIGINT/SIGTERM, which
 * checkpoints running runs, marks them interrupted and exits cleanly. SIGHUP reloads the tokens
 * file (reload.c). Files are created under umask 077; a tokens file others can read is refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "blas.h"
#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "nl.h"
#include "perms.h"
#include "reload.h"
#include "scheduler.h"
#include "session.h"
#include "tokens.h"

#define NORMLABD_VERSION "0.1.0"

/* enum auth_role and enum http_role name the same roles with the same numbers */
_Static_assert((int)AUTH_ROLE_USER == (int)HTTP_ROLE_USER &&
	       (int)AUTH_ROLE_ADMIN == (int)HTTP_ROLE_ADMIN &&
	       (int)AUTH_ROLE_READER == (int)HTTP_ROLE_READER, "auth and http roles must agree");

static int auth_cb(void *ctx, const char *authorization, char *user, size_t cap, int *role)
{
	return tokens_check(ctx, authorization, user, cap, role) == AUTH_OK ? 0 : -1;
}

static int session_cb(void *ctx, const char *session, char *user, size_t cap, int *role)
{
	return session_check(ctx, session, user, cap, role) == AUTH_OK ? 0 : -1;
}

/* Creates the directory that will hold the database file. */
static int mkdir_parent(const char *file)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", file);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	return dir[0] ? nl_mkdir_p(dir) : 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	struct config_err cerr = { 0 };
	char errbuf[512];
	int rc = 1;

	blas_setup(argc, argv);
	config_defaults(&d.cfg);
	int c = config_setup(&d.cfg, argc, argv, &cerr);
	if (c == CONFIG_EHELP) {
		config_usage(stdout, argv[0]);
		return 0;
	}
	if (c != 0) {
		fprintf(stderr, "normlabd: %s\n", cerr.msg);
		return 2;
	}
	log_init(d.cfg.log_level, "normlabd");
	snprintf(d.version, sizeof d.version, "%s", NORMLABD_VERSION);
	blas_describe(d.blas, sizeof d.blas);
	d.started_at = daemon_now();
	signal(SIGPIPE, SIG_IGN);

	/* one libuv pool thread per concurrent run; read by libuv at its first queued work */
	char pool[16];
	snprintf(pool, sizeof pool, "%d", d.cfg.max_runs);
	setenv("UV_THREADPOOL_SIZE", pool, 1);

	/* Everything the daemon creates (database, -wal/-shm, run directories, checkpoints) is
	 * its own: users read it through the API, which applies owners and roles. */
	umask(077);
	if (mkdir_parent(d.cfg.db) != 0 || nl_mkdir_p(d.cfg.runs_dir) != 0) {
		LOG_ERROR("cannot create %s or %s: %s", d.cfg.db, d.cfg.runs_dir, strerror(errno));
		return 1;
	}
	perms_tighten(d.cfg.db, d.cfg.runs_dir);
	if (tokens_open(&d.tokens, d.cfg.tokens_file, errbuf, sizeof errbuf) != 0) {
		LOG_ERROR("%s", errbuf);
		return 2;
	}
	if (d.cfg.tokens_file[0])
		LOG_INFO("%zu token%s loaded from %s (kill -HUP %ld reloads it)", tokens_count(d.tokens),
			 tokens_count(d.tokens) == 1 ? "" : "s", d.cfg.tokens_file, (long)getpid());
	else
		LOG_WARN("no tokens file (--tokens FILE): every write request will be refused with 401");
	if (session_table_new(&d.sessions, d.tokens, d.cfg.session_ttl) != 0 ||
	    reload_start(d.tokens) != 0) {
		LOG_ERROR("out of memory or threads at start");
		goto out;
	}
	/* The store's I/O fault hook, for tests of the disk-full paths (see store_fault_arm). */
	const char *fault = getenv("NORMLAB_STORE_FAULT");
	if (fault && *fault) {
		struct store_err serr = { 0 };
		if (store_fault_arm(fault, &serr) != 0) {
			LOG_ERROR("NORMLAB_STORE_FAULT: %s", serr.msg);
			return 2;
		}
		LOG_WARN("NORMLAB_STORE_FAULT=%s: database writes will fail on purpose (a test hook)",
			 fault);
	}
	if (datasets_new(&d.datasets, d.cfg.data_dir, d.cfg.data_dirs, (uint64_t)d.cfg.max_run_bytes,
			 errbuf, sizeof errbuf) != 0 ||
	    datasets_deny(d.datasets, d.cfg.db, DATASET_DENY_DB) != 0 ||
	    datasets_deny(d.datasets, d.cfg.tokens_file, DATASET_DENY_FILE) != 0 ||
	    datasets_deny(d.datasets, d.cfg.runs_dir, DATASET_DENY_DIR) != 0) {
		LOG_ERROR("data roots: %s", d.datasets ? "out of memory" : errbuf);
		datasets_free(d.datasets);
		return 2;
	}
	if (sched_new(&d.sched, &d, errbuf, sizeof errbuf) != 0) {
		LOG_ERROR("%s", errbuf);
		goto out;
	}
	{
		/* the writer has migrated the schema: the registry can be read now */
		struct store *rd = NULL;
		struct store_err serr = { 0 };
		if (daemon_reader(&d, &rd, &serr) != 0 || datasets_load(d.datasets, rd, &serr) != 0) {
			LOG_ERROR("datasets: %s", serr.msg);
			store_close(rd);
			goto out;
		}
		store_close(rd);
	}
	int n_routes;
	const struct http_route *routes = api_routes(&n_routes);
	struct http_config hc = {
		.host = d.cfg.listen_host,
		.port = d.cfg.listen_port,
		.max_body = (size_t)d.cfg.max_body_bytes,
		.max_json_depth = d.cfg.max_json_depth,
		.reads_open = d.cfg.reads_open,
		.threads = (unsigned)d.cfg.http_threads,
		.max_connections = (unsigned)d.cfg.http_max_connections,
		.max_per_ip = (unsigned)d.cfg.http_max_per_ip,
		.timeout_s = (unsigned)d.cfg.http_timeout,
		.stream_tick_ms = 1000,
		/* the database, corpora, checkpoints, and each event stream's store connection */
		.fd_reserve = 256 + 4u * (unsigned)d.cfg.sse_max_total +
			      8u * (unsigned)d.cfg.max_runs + 4u * (unsigned)d.cfg.http_threads,
		.auth = d.cfg.tokens_file[0] ? auth_cb : NULL,
		.auth_ctx = d.tokens,
		.session = d.cfg.tokens_file[0] ? session_cb : NULL,
		.session_ctx = d.sessions,
		.fallback = api_static,
	};
	struct http_server *http = NULL;
	if (api_events_init(&d, errbuf, sizeof errbuf) != 0 ||
	    http_start(&http, &hc, routes, n_routes, &d, errbuf, sizeof errbuf) != 0) {
		LOG_ERROR("%s", errbuf);
		goto out;
	}
	if (api_events_start(&d, http, errbuf, sizeof errbuf) != 0) {
		LOG_ERROR("%s", errbuf);
		http_stop(http);
		goto out;
	}
	unsigned long nofile = 0;
	unsigned max_conn = http_max_connections(http, &nofile);
	if (max_conn < (unsigned)d.cfg.http_max_connections)
		LOG_WARN("http_max_connections lowered from %d to %u to fit the open-file limit "
			 "(%lu; raise it with ulimit -n or LimitNOFILE=)", d.cfg.http_max_connections,
			 max_conn, nofile);
	LOG_INFO("HTTP: %d worker thread%s, at most %u connections (%d per client), %d s timeout",
		 d.cfg.http_threads, d.cfg.http_threads == 1 ? "" : "s", max_conn,
		 d.cfg.http_max_per_ip, d.cfg.http_timeout);
	LOG_INFO("normlabd %s listening on http://%s:%d (db %s, runs %s, %d run%s × budget %d threads)",
		 d.version, d.cfg.listen_host, http_port(http), d.cfg.db, d.cfg.runs_dir,
		 d.cfg.max_runs, d.cfg.max_runs == 1 ? "" : "s", d.cfg.thread_budget);
	LOG_INFO("BLAS: %s", d.blas);
	sched_run(d.sched);
	api_events_stop(&d);
	http_stop(http);
	LOG_INFO("stopped cleanly");
	rc = 0;
out:
	reload_stop();
	api_events_free(&d);
	sched_free(d.sched);
	datasets_free(d.datasets);
	session_table_free(d.sessions);
	tokens_free(d.tokens);
	return rc;
}
