/*
 * normlabd — the normlab daemon. Reads its configuration (built-in defaults < -c FILE < flags),
 * opens the SQLite store (re-queueing runs a crash left behind), starts the HTTP API on
 * libmicrohttpd, and runs the scheduler's libuv loop on this thread until SIGINT/SIGTERM, which
 * checkpoints running runs, marks them interrupted and exits cleanly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "auth.h"
#include "blas.h"
#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "nl.h"
#include "scheduler.h"

#define NORMLABD_VERSION "0.1.0"

static int auth_cb(void *ctx, const char *authorization, char *user, size_t cap, int *is_admin)
{
	const struct auth *a = ctx;
	return auth_check(a, authorization, user, cap, is_admin) == AUTH_OK ? 0 : -1;
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

	if (mkdir_parent(d.cfg.db) != 0 || nl_mkdir_p(d.cfg.runs_dir) != 0) {
		LOG_ERROR("cannot create %s or %s: %s", d.cfg.db, d.cfg.runs_dir, strerror(errno));
		return 1;
	}
	if (d.cfg.tokens_file[0]) {
		struct auth_err aerr = { 0 };
		if (auth_load(&d.auth, d.cfg.tokens_file, &aerr) != 0) {
			LOG_ERROR("%s", aerr.msg);
			return 2;
		}
		LOG_INFO("%zu token%s loaded from %s", auth_count(d.auth), auth_count(d.auth) == 1 ? "" : "s",
			 d.cfg.tokens_file);
	} else {
		LOG_WARN("no tokens file (--tokens FILE): every write request will be refused with 401");
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
		.max_connections = 256,
		.auth = d.auth ? auth_cb : NULL,
		.auth_ctx = d.auth,
		.fallback = api_static,
	};
	struct http_server *http = NULL;
	if (http_start(&http, &hc, routes, n_routes, &d, errbuf, sizeof errbuf) != 0) {
		LOG_ERROR("%s", errbuf);
		goto out;
	}
	LOG_INFO("normlabd %s listening on http://%s:%d (db %s, runs %s, %d run%s × budget %d threads)",
		 d.version, d.cfg.listen_host, http_port(http), d.cfg.db, d.cfg.runs_dir,
		 d.cfg.max_runs, d.cfg.max_runs == 1 ? "" : "s", d.cfg.thread_budget);
	LOG_INFO("BLAS: %s", d.blas);
	sched_run(d.sched);
	http_stop(http);
	LOG_INFO("stopped cleanly");
	rc = 0;
out:
	sched_free(d.sched);
	datasets_free(d.datasets);
	auth_free(d.auth);
	return rc;
}
