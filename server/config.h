/*
 * config.h — normlabd's configuration: one table in config.c lists every option (name, type,
 * place in struct config, default, range or allowed values, help), and defaults, the config
 * file, command-line flags, --help, config_print and the commented default config file are all
 * generated from that table, so they cannot disagree. Adding an option = one field here + one
 * row there.
 *
 * Precedence: defaults < config file (-c FILE) < command-line flags. config_setup does the whole
 * sequence; the pieces are public for tests and for callers that need a different order.
 *
 * struct config holds everything inline (no pointers, nothing to free); copy it freely. It is
 * filled by main before threads start and read-only afterwards. The functions keep no state and
 * are thread-safe on distinct structs.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ERR_MSG 256        /* error messages are cut to fit */
#define CONFIG_LINE_MAX 4096      /* longest config-file line in bytes, newline excluded */
#define CONFIG_PATH_MAX 1024      /* every path option: at most CONFIG_PATH_MAX - 1 bytes */
#define CONFIG_HOST_MAX 256       /* listen host: 1..255 bytes */
#define CONFIG_LISTEN_MAX 272     /* "[host]:port" */

enum config_code {
	CONFIG_OK = 0,
	CONFIG_EINVAL = -2,       /* bad key, value, flag or syntax: msg says which and where */
	CONFIG_EIO = -3,          /* config file missing or unreadable */
	CONFIG_ELIMIT = -4,       /* a config-file line longer than CONFIG_LINE_MAX */
	CONFIG_EHELP = -10,       /* not a failure: --help was given; print config_usage, exit 0 */
};

/* One error type: a code, the config-file line (0 when not from a file) and a bounded message
 * ("normlabd.conf:7: max_runs = 0 is out of range 1..64"). */
struct config_err {
	int code;
	int line;
	char msg[CONFIG_ERR_MSG];
};

struct config {
	char listen[CONFIG_LISTEN_MAX];     /* "HOST:PORT" as given; "[v6addr]:PORT" also accepted */
	char listen_host[CONFIG_HOST_MAX];  /* derived from listen (brackets removed) */
	int listen_port;                    /* derived from listen: 1..65535 */
	char db[CONFIG_PATH_MAX];           /* SQLite database file */
	char runs_dir[CONFIG_PATH_MAX];     /* checkpoints and per-run files */
	char data_dir[CONFIG_PATH_MAX];     /* the first data root (corpora) */
	char tokens_file[CONFIG_PATH_MAX];  /* "" = no tokens: every write is refused */
	int reads_open;                     /* 1: GET endpoints need no token */
	int max_runs;                       /* concurrent runs, 1..64 */
	int thread_budget;                  /* compute threads over all runs, 1..256 */
	int checkpoint_every;               /* steps, 1..1e9 */
	int64_t max_body_bytes;             /* request body cap, 1 KiB..64 MiB */
	int max_json_depth;                 /* 1..1000 */
	int max_sweep_cells;                /* runs one sweep may expand to, 1..100000 */
	int64_t max_run_bytes;              /* memory one run may need, 1 MiB..1 TiB */
	int log_level;                      /* enum log_level (log.h): debug, info, warn, error */
	char web_dir[CONFIG_PATH_MAX];      /* static files for the web UI */
	/* storage faults (issue 9, store) */
	int64_t min_free_bytes;             /* /health degraded below this free space, 0..1 TiB */
	int64_t storage_reserve_bytes;      /* DB.reserve, released on a full disk, 0..1 GiB */
	int session_ttl;                    /* perms: dashboard session lifetime, seconds */
	/* quotas and fair share (issue 9); 0 = no limit; roles other than admin get user_ */
	int user_max_queued_runs;           /* queued runs outside sweeps per user */
	int user_max_queued_cells;          /* queued sweep cells per user */
	int user_max_running;               /* runs of one user in flight */
	int64_t user_max_run_gflop;         /* spec_flops_estimate / 1e9 of one run */
	int64_t user_max_run_store_bytes;   /* spec_store_estimate of one run */
	int user_max_priority;              /* -1000..1000: higher needs an admin */
	int admin_max_queued_runs;
	int admin_max_queued_cells;
	int admin_max_running;
	int64_t admin_max_run_gflop;
	int64_t admin_max_run_store_bytes;
	int events_keep_days;               /* prune events older than this; 0 = no age limit */
	int events_keep_rows;               /* keep the newest N events; 0 = no count limit */
	int events_prune_every;             /* seconds between prunes */
	/* connections (issue 9, net) */
	int http_threads;                   /* libmicrohttpd worker threads, 1..64 */
	int http_max_connections;           /* open connections over all clients, 16..65536 */
	int http_max_per_ip;                /* open connections per client address; 0 = no limit */
	int http_timeout;                   /* seconds of silence before a connection is closed */
	int sse_max_per_user;               /* open event streams per token's user */
	int sse_max_per_ip;                 /* open event streams per client address */
	int sse_max_total;                  /* open event streams over all clients */
	int sse_keepalive;                  /* seconds between comment lines on a silent stream */
	char data_dirs[4 * CONFIG_PATH_MAX]; /* more data roots after data_dir, ':'-separated */
};

/* Fills every option with its table default. */
void config_defaults(struct config *c);

/*
 * Sets one option from its text form, validating type, range and allowed values; on error c is
 * unchanged and err->msg is e.g. "max_runs = 0 is out of range 1..64". Integers are decimal
 * with an optional K/M/G/T suffix (powers of 1024, "KiB" etc. also accepted); booleans are
 * true/false/yes/no/on/off/1/0. key and value are borrowed.
 */
int config_set(struct config *c, const char *key, const char *value, struct config_err *err);

/*
 * Formats the option's current value into buf (always NUL-terminated) in the form config_set
 * accepts. Returns CONFIG_EINVAL for an unknown key, CONFIG_ELIMIT if buf was too small.
 */
int config_get(const struct config *c, const char *key, char *buf, size_t cap);

/*
 * Reads `key = value` lines from path on top of what c holds. Blank lines and lines whose first
 * non-blank character is '#' are skipped; whitespace around key and value is trimmed; a value
 * may be wrapped in one pair of "double" or 'single' quotes (kept literally inside, so a value
 * with leading spaces or an empty value can be written). '#' after a value is part of the value.
 * Errors: unknown key, bad or out-of-range value, a key given twice, a line over
 * CONFIG_LINE_MAX bytes, a line without '=', a NUL byte — all as "path:line: reason", with
 * err->line set; a missing or unreadable file names the path. On error c may hold the options
 * from lines before the bad one.
 */
int config_load_file(struct config *c, const char *path, struct config_err *err);

/*
 * Command-line flags, applied to c in order (a later flag wins). Accepted:
 *   -c FILE, --config FILE   recorded in *config_path_out (borrowed from argv), not loaded
 *   -h, --help               returns CONFIG_EHELP at once
 *   --listen HOST:PORT, --db PATH, --runs DIR, --tokens FILE, --workers N (= max_runs),
 *   --data-dir DIR, --log-level L, and --KEY VALUE for every option in the table (underscores
 *   or dashes), each also as --flag=VALUE.
 * c may be NULL: then the flags are validated against a scratch struct and only -c and --help
 * are reported, which is the first pass of config_setup. config_path_out may be NULL; it is set
 * to NULL when there is no -c.
 */
int config_parse_args(struct config *c, int argc, char **argv, const char **config_path_out,
		      struct config_err *err);

/* Checks rules that span options (max_runs <= thread_budget: every run needs a thread). */
int config_check(const struct config *c, struct config_err *err);

/*
 * The whole start-up sequence: defaults, then the -c file if given, then the flags again so
 * they override the file, then config_check. Returns CONFIG_EHELP for --help (the caller prints
 * config_usage to stdout and exits 0).
 */
int config_setup(struct config *c, int argc, char **argv, struct config_err *err);

/* --help text: every option with its flag, default, range or values, and help. */
void config_usage(FILE *f, const char *argv0);

/* The effective configuration, one `key = value` line per option; config_load_file reads it back
 * to the same struct. */
void config_print(const struct config *c, FILE *f);

/* The content of config/normlabd.conf: every option commented out at its default, with help. */
void config_write_default(FILE *f);

/* The table, read-only, for tests and tools: name and default text of option i, NULL past the
 * end. */
const char *config_option_name(size_t i);
const char *config_option_default(size_t i);

#endif
