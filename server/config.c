/*
 * config.c — the option table and everything generated from it: defaults, config_set (the one
 * place values are parsed and validated, used by the file loader and by the flags alike),
 * config_get / config_print, the config-file reader, the flag parser, --help and the default
 * config file.
 *
 * Owns nothing: struct config is all inline arrays, and nothing here allocates. No globals
 * besides the constant table; thread-safe on distinct structs.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "lines.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The log_level option stores the index into its value list, which log.h's enum must match. */
_Static_assert(LOG_LEVEL_DEBUG == 0 && LOG_LEVEL_INFO == 1 && LOG_LEVEL_WARN == 2 &&
	       LOG_LEVEL_ERROR == 3, "log_level values must follow config's enum order");

/* ---- the option table ----------------------------------------------------------------- */

enum config_type {
	CONFIG_T_STRING,   /* char[size]: min..size-1 bytes, no control characters */
	CONFIG_T_INT,      /* int or int64_t (by size), min..max */
	CONFIG_T_BOOL,     /* int 0/1 */
	CONFIG_T_ENUM,     /* int: index into values */
};

struct config_row {
	const char *name;
	enum config_type type;
	size_t offset;
	size_t size;                 /* sizeof the field: string capacity, or int width */
	const char *def;             /* default, as text: applied through config_set */
	int64_t min, max;            /* ints: range; strings: min = minimum length */
	const char *const *values;   /* enums: NULL-terminated */
	const char *metavar;         /* for --help; "BYTES" also shows ranges as 1M..1T */
	const char *alias;           /* an extra command-line name ("workers"), or NULL */
	const char *help;            /* one line */
	/* Strings only, may be NULL: extra validation, and on success fill derived fields. */
	int (*check)(struct config *c, const char *value, char *why, size_t cap);
};

static int config_listen_check(struct config *c, const char *value, char *why, size_t cap);

static const char *const config_log_levels[] = { "debug", "info", "warn", "error", NULL };

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

#define KiB 1024LL
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)
#define TiB (1024LL * GiB)

static const struct config_row config_table[] = {
	{ "listen", CONFIG_T_STRING, FIELD(listen), "127.0.0.1:8080", 1, 0, NULL, "HOST:PORT", NULL,
	  "address the REST API listens on (port 1..65535; [v6addr]:PORT for IPv6)",
	  config_listen_check },
	{ "db", CONFIG_T_STRING, FIELD(db), "var/normlab.db", 1, 0, NULL, "PATH", NULL,
	  "SQLite database file, created if missing", NULL },
	{ "runs_dir", CONFIG_T_STRING, FIELD(runs_dir), "var/runs", 1, 0, NULL, "DIR", "runs",
	  "directory for each run's checkpoints and outputs", NULL },
	{ "data_dir", CONFIG_T_STRING, FIELD(data_dir), "var/data", 1, 0, NULL, "DIR", NULL,
	  "the first data root: corpora a spec may name (see data_dirs)", NULL },
	{ "tokens_file", CONFIG_T_STRING, FIELD(tokens_file), "", 0, 0, NULL, "FILE", "tokens",
	  "API tokens, one 'TOKEN USER ROLE' per line (user|admin|reader), mode 0600, reloaded on "
	  "SIGHUP; empty = no tokens, so every write is refused",
	  NULL },
	{ "reads_open", CONFIG_T_BOOL, FIELD(reads_open), "true", 0, 1, NULL, "BOOL", NULL,
	  "GET endpoints answer without a token; false: each user reads only their own runs and "
	  "sweeps (admins and readers read all)", NULL },
	{ "max_runs", CONFIG_T_INT, FIELD(max_runs), "2", 1, 64, NULL, "N", "workers",
	  "runs trained at the same time; at most thread_budget", NULL },
	{ "thread_budget", CONFIG_T_INT, FIELD(thread_budget), "2", 1, 256, NULL, "N", NULL,
	  "compute threads shared by all running runs", NULL },
	{ "checkpoint_every", CONFIG_T_INT, FIELD(checkpoint_every), "100", 1, 1000000000, NULL,
	  "STEPS", NULL, "training steps between checkpoints", NULL },
	{ "max_body_bytes", CONFIG_T_INT, FIELD(max_body_bytes), "1M", KiB, 64 * MiB, NULL,
	  "BYTES", NULL, "largest HTTP request body accepted", NULL },
	{ "max_json_depth", CONFIG_T_INT, FIELD(max_json_depth), "64", 1, 1000, NULL, "N", NULL,
	  "deepest JSON nesting accepted in a request", NULL },
	{ "max_sweep_cells", CONFIG_T_INT, FIELD(max_sweep_cells), "1024", 1, 100000, NULL, "N",
	  NULL, "most runs one sweep may expand to", NULL },
	{ "max_run_bytes", CONFIG_T_INT, FIELD(max_run_bytes), "4G", MiB, TiB, NULL,
	  "BYTES", NULL, "memory one run may need; specs needing more are refused", NULL },
	{ "log_level", CONFIG_T_ENUM, FIELD(log_level), "info", 0, 0, config_log_levels, "LEVEL",
	  NULL, "least severe messages logged", NULL },
	{ "web_dir", CONFIG_T_STRING, FIELD(web_dir), "web", 1, 0, NULL, "DIR", NULL,
	  "directory of the web UI's static files", NULL },
	/* storage faults (issue 9, store): when the disk fills up */
	{ "min_free_bytes", CONFIG_T_INT, FIELD(min_free_bytes), "512M", 0, TiB, NULL, "BYTES", NULL,
	  "/health says degraded while the database's or the runs' file system has less free", NULL },
	{ "storage_reserve_bytes", CONFIG_T_INT, FIELD(storage_reserve_bytes), "8M", 0, GiB, NULL,
	  "BYTES", NULL, "space held in DB.reserve and given back when the disk is full, so final "
	  "statuses and DELETE still work (0 = none)", NULL },
	/* perms: browser sessions (POST /api/v1/session) for reads when reads_open is false */
	{ "session_ttl", CONFIG_T_INT, FIELD(session_ttl), "43200", 60, 30 * 86400, NULL, "SECONDS",
	  NULL, "lifetime of a dashboard session cookie (reads only; made from a bearer token)",
	  NULL },
	/* quotas and fair share (issue 9): per role; 0 = no limit. Roles other than admin (user,
	 * reader, any later one) get the user_ limits. */
	{ "user_max_queued_runs", CONFIG_T_INT, FIELD(user_max_queued_runs), "100", 0, 1000000,
	  NULL, "N", NULL, "queued runs (outside sweeps) one user may have; more answer 429", NULL },
	{ "user_max_queued_cells", CONFIG_T_INT, FIELD(user_max_queued_cells), "2048", 0, 10000000,
	  NULL, "N", NULL, "queued sweep cells one user may have; a sweep past it is refused whole "
	  "(429)", NULL },
	{ "user_max_running", CONFIG_T_INT, FIELD(user_max_running), "0", 0, 64, NULL, "N", NULL,
	  "runs of one user trained at the same time (the rest wait in the queue)", NULL },
	{ "user_max_run_gflop", CONFIG_T_INT, FIELD(user_max_run_gflop), "1000000", 0,
	  1000000000000LL, NULL, "GFLOP", NULL, "compute one run of a user may need (steps x FLOPs per "
	  "step, in 10^9 FLOPs); more answer 403", NULL },
	{ "user_max_run_store_bytes", CONFIG_T_INT, FIELD(user_max_run_store_bytes), "256M", 0, 1LL << 50,
	  NULL, "BYTES", NULL, "metrics, depth profiles and samples one run of a user may store; more "
	  "answer 403", NULL },
	{ "user_max_priority", CONFIG_T_INT, FIELD(user_max_priority), "0", -1000, 1000, NULL, "N",
	  NULL, "highest priority a user may give; above it needs an admin (403)", NULL },
	{ "admin_max_queued_runs", CONFIG_T_INT, FIELD(admin_max_queued_runs), "0", 0, 1000000, NULL,
	  "N", NULL, "user_max_queued_runs for admins", NULL },
	{ "admin_max_queued_cells", CONFIG_T_INT, FIELD(admin_max_queued_cells), "0", 0, 10000000,
	  NULL, "N", NULL, "user_max_queued_cells for admins", NULL },
	{ "admin_max_running", CONFIG_T_INT, FIELD(admin_max_running), "0", 0, 64, NULL, "N", NULL,
	  "user_max_running for admins", NULL },
	{ "admin_max_run_gflop", CONFIG_T_INT, FIELD(admin_max_run_gflop), "0", 0, 1000000000000LL,
	  NULL, "GFLOP", NULL, "user_max_run_gflop for admins", NULL },
	{ "admin_max_run_store_bytes", CONFIG_T_INT, FIELD(admin_max_run_store_bytes), "0", 0,
	  1LL << 50, NULL, "BYTES", NULL, "user_max_run_store_bytes for admins", NULL },
	{ "events_keep_days", CONFIG_T_INT, FIELD(events_keep_days), "30", 0, 36500, NULL, "DAYS",
	  NULL, "events older than this are pruned (0 = keep by age)", NULL },
	{ "events_keep_rows", CONFIG_T_INT, FIELD(events_keep_rows), "1000000", 0, 1000000000, NULL,
	  "N", NULL, "only the newest N events are kept (0 = no count limit)", NULL },
	{ "events_prune_every", CONFIG_T_INT, FIELD(events_prune_every), "3600", 1, 604800, NULL,
	  "SECONDS", NULL, "seconds between event prunes (the first runs this long after start)",
	  NULL },
	/* connections (issue 9, net): an event-driven server whose limits one client cannot
	 * exhaust; every limit below is per daemon */
	{ "http_threads", CONFIG_T_INT, FIELD(http_threads), "4", 1, 64, NULL, "N", NULL,
	  "HTTP worker threads; each serves many connections (event-driven, epoll)", NULL },
	{ "http_max_connections", CONFIG_T_INT, FIELD(http_max_connections), "2048", 16, 65536,
	  NULL, "N", NULL,
	  "open HTTP connections at most, over all clients (lowered to fit the open-file limit)",
	  NULL },
	{ "http_max_per_ip", CONFIG_T_INT, FIELD(http_max_per_ip), "32", 0, 65536, NULL, "N", NULL,
	  "open HTTP connections one client address may hold; 0 = no limit", NULL },
	{ "http_timeout", CONFIG_T_INT, FIELD(http_timeout), "15", 1, 3600, NULL, "SECONDS", NULL,
	  "a connection silent this long (idle, or a slow header or body) is closed", NULL },
	{ "sse_max_per_user", CONFIG_T_INT, FIELD(sse_max_per_user), "8", 1, 65536, NULL, "N",
	  NULL, "open event streams (GET /api/v1/events) one token's user may hold", NULL },
	{ "sse_max_per_ip", CONFIG_T_INT, FIELD(sse_max_per_ip), "16", 1, 65536, NULL, "N", NULL,
	  "open event streams one client address may hold", NULL },
	{ "sse_max_total", CONFIG_T_INT, FIELD(sse_max_total), "256", 1, 65536, NULL, "N", NULL,
	  "open event streams over all clients (each holds a database connection)", NULL },
	{ "sse_keepalive", CONFIG_T_INT, FIELD(sse_keepalive), "15", 1, 300, NULL, "SECONDS", NULL,
	  "a silent event stream gets a comment line this often, which finds clients that vanished",
	  NULL },
	/* issue 9, data roots: specs name corpora inside data_dir and these, never other files */
	{ "data_dirs", CONFIG_T_STRING, FIELD(data_dirs), "", 0, 0, NULL, "DIR:DIR", NULL,
	  "more data roots after data_dir, colon-separated; a spec's data.path names a dataset "
	  "or a relative path inside a root", NULL },
};

#define CONFIG_NROWS (sizeof config_table / sizeof config_table[0])

const char *config_option_name(size_t i)
{
	return i < CONFIG_NROWS ? config_table[i].name : NULL;
}

const char *config_option_default(size_t i)
{
	return i < CONFIG_NROWS ? config_table[i].def : NULL;
}

/* ---- helpers -------------------------------------------------------------------------- */

static int config_err_set(struct config_err *err, int code, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int config_err_set(struct config_err *err, int code, int line, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
		err->line = line;
	}
	return code;
}

/* Bounded copy; returns -1 (and still terminates) when src does not fit. */
static int config_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static const char *config_strerror(int e, char *buf, size_t cap)
{
	if (strerror_r(e, buf, cap) != 0)
		snprintf(buf, cap, "error %d", e);
	return buf;
}

static int config_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int config_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int config_ieq(const char *a, const char *b)
{
	while (*a && config_lower((unsigned char)*a) == config_lower((unsigned char)*b))
		a++, b++;
	return *a == '\0' && *b == '\0';
}

static const struct config_row *config_find(const char *key)
{
	for (size_t i = 0; i < CONFIG_NROWS; i++)
		if (strcmp(config_table[i].name, key) == 0)
			return &config_table[i];
	return NULL;
}

/*
 * Decimal integer, optional leading '-', optional suffix K, M, G or T (any case, powers of
 * 1024) optionally followed by "iB". Returns 0, -1 when it is not an integer, -2 on overflow.
 */
static int config_parse_int(const char *s, int64_t *out)
{
	uint64_t v = 0, limit = INT64_MAX, mult = 1;
	int neg = 0, digits = 0;

	if (*s == '-') {
		neg = 1;
		limit = (uint64_t)INT64_MAX + 1;
		s++;
	}
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (limit - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (!digits)
		return -1;
	switch (config_lower((unsigned char)*s)) {
	case 'k': mult = 1ULL << 10; break;
	case 'm': mult = 1ULL << 20; break;
	case 'g': mult = 1ULL << 30; break;
	case 't': mult = 1ULL << 40; break;
	case '\0': break;
	default: return -1;
	}
	if (mult != 1) {
		s++;
		if (s[0] == 'i' && s[1] == 'B')
			s += 2;
		if (*s)
			return -1;
		if (v > limit / mult)
			return -2;
		v *= mult;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

static int config_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (config_ieq(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (config_ieq(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/*
 * HOST:PORT, split at the last ':'; "[v6addr]:PORT" keeps the colons inside the brackets.
 * On success fills c->listen_host and c->listen_port (c->listen is the caller's to set).
 */
static int config_listen_check(struct config *c, const char *value, char *why, size_t cap)
{
	const char *colon = strrchr(value, ':');
	const char *host = value, *host_end;
	long port = 0;

	if (!colon) {
		snprintf(why, cap, "listen = %.80s: expected HOST:PORT", value);
		return -1;
	}
	host_end = colon;
	if (value[0] == '[') {
		if (colon == value || colon[-1] != ']') {
			snprintf(why, cap, "listen = %.80s: expected [ADDRESS]:PORT", value);
			return -1;
		}
		host = value + 1;
		host_end = colon - 1;
	}
	if (host_end == host) {
		snprintf(why, cap, "listen = %.80s: the host is empty", value);
		return -1;
	}
	if (host_end - host > CONFIG_HOST_MAX - 1) {
		snprintf(why, cap, "listen: the host is %td bytes; the limit is %d", host_end - host,
			 CONFIG_HOST_MAX - 1);
		return -1;
	}
	for (const char *p = host; p < host_end; p++) {
		if (*p == ' ' || *p == '[' || *p == ']' || (*p == ':' && host == value)) {
			snprintf(why, cap, "listen = %.80s: the host contains '%c'%s", value, *p,
				 *p == ':' ? " (write an IPv6 address as [ADDRESS]:PORT)" : "");
			return -1;
		}
	}
	const char *p = colon + 1;
	int digits = 0;
	for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
		port = port * 10 + (*p - '0');
	if (!digits || *p || port < 1 || port > 65535) {
		snprintf(why, cap, "listen = %.80s: the port must be a number in 1..65535", value);
		return -1;
	}
	memcpy(c->listen_host, host, (size_t)(host_end - host));
	c->listen_host[host_end - host] = '\0';
	c->listen_port = (int)port;
	return 0;
}

/* "min..max" for messages and help; byte options as "1M..1T" where the bounds divide evenly. */
static void config_row_range(const struct config_row *r, char *buf, size_t cap)
{
	static const char units[] = "KMGT";
	int64_t v[2] = { r->min, r->max };
	size_t used = 0;

	for (int k = 0; k < 2; k++) {
		int64_t x = v[k];
		int u = -1, n;
		if (strcmp(r->metavar, "BYTES") == 0)
			while (u < 3 && x != 0 && x % 1024 == 0) {
				x /= 1024;
				u++;
			}
		if (u >= 0)
			n = snprintf(buf + used, cap - used, "%s%" PRId64 "%c", k ? ".." : "", x,
				     units[u]);
		else
			n = snprintf(buf + used, cap - used, "%s%" PRId64, k ? ".." : "", x);
		if (n < 0 || (size_t)n >= cap - used)
			return;
		used += (size_t)n;
	}
}

/* ---- set / get ------------------------------------------------------------------------ */

static int config_set_row(struct config *c, const struct config_row *r, const char *value,
			  struct config_err *err)
{
	char *field = (char *)c + r->offset;

	switch (r->type) {
	case CONFIG_T_STRING: {
		size_t n = strlen(value);
		char why[CONFIG_ERR_MSG];
		if (n > r->size - 1)
			return config_err_set(err, CONFIG_EINVAL, 0,
					      "%s is %zu bytes long; the limit is %zu", r->name, n,
					      r->size - 1);
		if ((int64_t)n < r->min)
			return config_err_set(err, CONFIG_EINVAL, 0, "%s must not be empty",
					      r->name);
		for (const char *p = value; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return config_err_set(err, CONFIG_EINVAL, 0,
						      "%s contains a control character", r->name);
		if (r->check && r->check(c, value, why, sizeof why) != 0)
			return config_err_set(err, CONFIG_EINVAL, 0, "%s", why);
		memcpy(field, value, n + 1);
		return 0;
	}
	case CONFIG_T_INT: {
		int64_t v;
		int rc = config_parse_int(value, &v);
		if (rc == -1)
			return config_err_set(err, CONFIG_EINVAL, 0, "%s = %.80s is not an integer",
					      r->name, value);
		if (rc == -2 || v < r->min || v > r->max) {
			char range[64];
			config_row_range(r, range, sizeof range);
			return config_err_set(err, CONFIG_EINVAL, 0, "%s = %.80s is out of range %s",
					      r->name, value, range);
		}
		if (r->size == sizeof(int64_t)) {
			int64_t x = v;
			memcpy(field, &x, sizeof x);
		} else {
			int x = (int)v;   /* the table keeps int fields' ranges within int */
			memcpy(field, &x, sizeof x);
		}
		return 0;
	}
	case CONFIG_T_BOOL: {
		int b;
		if (config_parse_bool(value, &b) != 0)
			return config_err_set(err, CONFIG_EINVAL, 0,
					      "%s = %.80s is not a boolean (true/false, yes/no, "
					      "on/off, 1/0)", r->name, value);
		memcpy(field, &b, sizeof b);
		return 0;
	}
	case CONFIG_T_ENUM:
		for (int i = 0; r->values[i]; i++) {
			if (strcmp(value, r->values[i]) == 0) {
				memcpy(field, &i, sizeof i);
				return 0;
			}
		}
		{
			char list[128] = "";
			size_t used = 0;
			for (int i = 0; r->values[i]; i++) {
				int n = snprintf(list + used, sizeof list - used, "%s%s",
						 i ? "|" : "", r->values[i]);
				if (n < 0 || (size_t)n >= sizeof list - used)
					break;
				used += (size_t)n;
			}
			return config_err_set(err, CONFIG_EINVAL, 0, "%s = %.80s is not one of %s",
					      r->name, value, list);
		}
	}
	return config_err_set(err, CONFIG_EINVAL, 0, "%s: bad table row", r->name);
}

int config_set(struct config *c, const char *key, const char *value, struct config_err *err)
{
	const struct config_row *r = config_find(key);
	if (!r)
		return config_err_set(err, CONFIG_EINVAL, 0, "unknown option '%.64s'", key);
	return config_set_row(c, r, value, err);
}

static int config_get_row(const struct config *c, const struct config_row *r, char *buf,
			  size_t cap)
{
	const char *field = (const char *)c + r->offset;
	int n = 0;

	switch (r->type) {
	case CONFIG_T_STRING:
		return config_strlcpy(buf, field, cap) == 0 ? 0 : CONFIG_ELIMIT;
	case CONFIG_T_INT:
		if (r->size == sizeof(int64_t)) {
			int64_t v;
			memcpy(&v, field, sizeof v);
			n = snprintf(buf, cap, "%" PRId64, v);
		} else {
			int v;
			memcpy(&v, field, sizeof v);
			n = snprintf(buf, cap, "%d", v);
		}
		break;
	case CONFIG_T_BOOL: {
		int v;
		memcpy(&v, field, sizeof v);
		n = snprintf(buf, cap, "%s", v ? "true" : "false");
		break;
	}
	case CONFIG_T_ENUM: {
		int v, count = 0;
		memcpy(&v, field, sizeof v);
		while (r->values[count])
			count++;
		n = snprintf(buf, cap, "%s", v >= 0 && v < count ? r->values[v] : "?");
		break;
	}
	}
	return n >= 0 && (size_t)n < cap ? 0 : CONFIG_ELIMIT;
}

int config_get(const struct config *c, const char *key, char *buf, size_t cap)
{
	const struct config_row *r = config_find(key);
	if (cap == 0)
		return CONFIG_ELIMIT;
	buf[0] = '\0';
	if (!r)
		return CONFIG_EINVAL;
	return config_get_row(c, r, buf, cap);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < CONFIG_NROWS; i++)
		(void)config_set_row(c, &config_table[i], config_table[i].def, NULL);
	/* test_config checks that every default passes config_set, so none is silently left 0 */
}

int config_check(const struct config *c, struct config_err *err)
{
	if (c->max_runs > c->thread_budget)
		return config_err_set(err, CONFIG_EINVAL, 0,
				      "max_runs = %d exceeds thread_budget = %d: every running run "
				      "needs at least one compute thread", c->max_runs,
				      c->thread_budget);
	return 0;
}

/* ---- the config file ------------------------------------------------------------------ */

/* One line, already NUL-terminated and free of NUL bytes. Writes the reason to why. */
static int config_apply_line(struct config *c, char *line, int lineno, int *seen, char *why,
			     size_t cap)
{
	char *p = line, *eq, *key_end, *value, *value_end;
	const struct config_row *r;
	struct config_err e;

	while (config_is_space(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	eq = strchr(p, '=');
	if (!eq) {
		snprintf(why, cap, "expected 'name = value' but found no '='");
		return CONFIG_EINVAL;
	}
	key_end = eq;
	while (key_end > p && config_is_space(key_end[-1]))
		key_end--;
	*key_end = '\0';
	if (key_end == p) {
		snprintf(why, cap, "missing option name before '='");
		return CONFIG_EINVAL;
	}
	value = eq + 1;
	while (config_is_space(*value))
		value++;
	value_end = value + strlen(value);
	while (value_end > value && config_is_space(value_end[-1]))
		value_end--;
	*value_end = '\0';
	if (value[0] == '"' || value[0] == '\'') {
		if (value_end - value < 2 || value_end[-1] != value[0]) {
			snprintf(why, cap, "%.64s: unterminated %c quote", p, value[0]);
			return CONFIG_EINVAL;
		}
		value_end[-1] = '\0';
		value++;
	}
	r = config_find(p);
	if (!r) {
		snprintf(why, cap, "unknown option '%.64s'", p);
		return CONFIG_EINVAL;
	}
	if (seen[r - config_table]) {
		snprintf(why, cap, "duplicate option '%s' (first set on line %d)", r->name,
			 seen[r - config_table]);
		return CONFIG_EINVAL;
	}
	if (config_set_row(c, r, value, &e) != 0) {
		config_strlcpy(why, e.msg, cap);
		return e.code;
	}
	seen[r - config_table] = lineno;
	return 0;
}

int config_load_file(struct config *c, const char *path, struct config_err *err)
{
	char line[CONFIG_LINE_MAX + 1];
	char why[CONFIG_ERR_MSG];
	char ebuf[128];
	int seen[CONFIG_NROWS] = { 0 };
	int lineno = 0, rc = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		rc = config_err_set(err, CONFIG_EIO, 0, "%s: cannot open config file: %s", path,
				    config_strerror(errno, ebuf, sizeof ebuf));
		goto out;
	}
	for (;;) {
		int has_nul, last;
		int lr = lines_read(f, line, CONFIG_LINE_MAX, &has_nul, &last);

		if (lr == LINES_TOO_LONG) {
			rc = config_err_set(err, CONFIG_ELIMIT, lineno + 1,
					    "%s:%d: line is longer than %d bytes", path, lineno + 1,
					    CONFIG_LINE_MAX);
			goto out;
		}
		if (lr == LINES_IO) {
			rc = config_err_set(err, CONFIG_EIO, lineno + 1, "%s:%d: read error: %s",
					    path, lineno + 1,
					    config_strerror(errno, ebuf, sizeof ebuf));
			goto out;
		}
		if (lr == LINES_EOF)
			break;
		lineno++;
		if (has_nul) {
			rc = config_err_set(err, CONFIG_EINVAL, lineno, "%s:%d: line contains a NUL byte",
					    path, lineno);
			goto out;
		}
		rc = config_apply_line(c, line, lineno, seen, why, sizeof why);
		if (rc != 0) {
			rc = config_err_set(err, rc, lineno, "%s:%d: %s", path, lineno, why);
			goto out;
		}
		if (last)
			break;
	}
out:
	if (f)
		fclose(f);
	return rc;
}

/* ---- command-line flags --------------------------------------------------------------- */

/* Does the flag text (n bytes, no leading "--") name `name`, with '-' standing for '_'? */
static int config_flag_is(const char *flag, size_t n, const char *name)
{
	size_t i = 0;
	for (; i < n && name[i]; i++)
		if (flag[i] != name[i] && !(flag[i] == '-' && name[i] == '_'))
			return 0;
	return i == n && name[i] == '\0';
}

static const struct config_row *config_find_flag(const char *flag, size_t n)
{
	for (size_t i = 0; i < CONFIG_NROWS; i++) {
		const struct config_row *r = &config_table[i];
		if (config_flag_is(flag, n, r->name) || (r->alias && config_flag_is(flag, n, r->alias)))
			return r;
	}
	return NULL;
}

int config_parse_args(struct config *c, int argc, char **argv, const char **config_path_out,
		      struct config_err *err)
{
	struct config scratch;
	struct config_err e;

	if (config_path_out)
		*config_path_out = NULL;
	if (!c) {
		config_defaults(&scratch);
		c = &scratch;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *value;
		const struct config_row *r;
		size_t n;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return config_err_set(err, CONFIG_EHELP, 0, "help requested");
		if (strncmp(a, "--", 2) != 0 && strcmp(a, "-c") != 0)
			return config_err_set(err, CONFIG_EINVAL, 0,
					      "unexpected argument '%.64s' (see --help)", a);
		name = a[1] == 'c' ? "config" : a + 2;
		eq = strchr(name, '=');
		n = eq ? (size_t)(eq - name) : strlen(name);
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			return config_err_set(err, CONFIG_EINVAL, 0, "%.64s needs a value (see --help)",
					      a);
		}
		if (config_flag_is(name, n, "config")) {
			if (value[0] == '\0')
				return config_err_set(err, CONFIG_EINVAL, 0, "%s: empty file name",
						      a[1] == 'c' ? "-c" : "--config");
			if (config_path_out)
				*config_path_out = value;
			continue;
		}
		r = config_find_flag(name, n);
		if (!r)
			return config_err_set(err, CONFIG_EINVAL, 0,
					      "unknown option '--%.*s' (see --help)",
					      (int)(n > 64 ? 64 : n), name);
		if (config_set_row(c, r, value, &e) != 0)
			return config_err_set(err, e.code, 0, "--%.*s: %s", (int)(n > 64 ? 64 : n),
					      name, e.msg);
	}
	return 0;
}

int config_setup(struct config *c, int argc, char **argv, struct config_err *err)
{
	const char *path = NULL;
	int rc;

	config_defaults(c);
	rc = config_parse_args(NULL, argc, argv, &path, err);
	if (rc == 0 && path)
		rc = config_load_file(c, path, err);
	if (rc == 0)
		rc = config_parse_args(c, argc, argv, NULL, err);
	if (rc == 0)
		rc = config_check(c, err);
	return rc;
}

/* ---- generated text ------------------------------------------------------------------- */

/* "1..64", "debug|info|warn|error", "true/false", or "" for strings. */
static void config_row_domain(const struct config_row *r, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	switch (r->type) {
	case CONFIG_T_INT:
		config_row_range(r, buf, cap);
		break;
	case CONFIG_T_BOOL:
		snprintf(buf, cap, "true/false");
		break;
	case CONFIG_T_ENUM:
		for (int i = 0; r->values[i]; i++) {
			int n = snprintf(buf + used, cap - used, "%s%s", i ? "|" : "", r->values[i]);
			if (n < 0 || (size_t)n >= cap - used)
				break;
			used += (size_t)n;
		}
		break;
	case CONFIG_T_STRING:
		break;
	}
}

/* Quotes a string value when the file syntax would otherwise change it. */
static int config_needs_quotes(const char *v)
{
	size_t n = strlen(v);
	return n == 0 || config_is_space(v[0]) || config_is_space(v[n - 1]) || v[0] == '"' ||
	       v[0] == '\'';
}

static void config_print_value(FILE *f, const struct config_row *r, const char *v)
{
	if (r->type == CONFIG_T_STRING && config_needs_quotes(v))
		fprintf(f, "\"%s\"", v);
	else
		fputs(v, f);
}

void config_usage(FILE *f, const char *argv0)
{
	char domain[128];

	fprintf(f,
		"usage: %s [-c FILE] [--OPTION VALUE]...\n"
		"\n"
		"  -c, --config FILE\n"
		"        read options from FILE ('name = value' lines) first; flags override it\n"
		"  -h, --help\n"
		"        print this help and exit\n"
		"\n"
		"Every option below can be set in the config file as 'name = value' or on the\n"
		"command line as '--name VALUE' or '--name=VALUE' (dashes or underscores).\n"
		"Integers take K/M/G/T suffixes (powers of 1024).\n"
		"\n",
		argv0 ? argv0 : "normlabd");
	for (size_t i = 0; i < CONFIG_NROWS; i++) {
		const struct config_row *r = &config_table[i];
		fputs("  --", f);
		for (const char *p = r->name; *p; p++)
			fputc(*p == '_' ? '-' : *p, f);
		if (r->alias)
			fprintf(f, ", --%s", r->alias);
		fprintf(f, " %s\n        %s\n        default: %s = ", r->metavar, r->help, r->name);
		config_print_value(f, r, r->def);
		config_row_domain(r, domain, sizeof domain);
		fprintf(f, "%s%s%s\n", *domain ? "  (" : "", domain, *domain ? ")" : "");
	}
}

void config_print(const struct config *c, FILE *f)
{
	char buf[CONFIG_PATH_MAX];
	for (size_t i = 0; i < CONFIG_NROWS; i++) {
		const struct config_row *r = &config_table[i];
		if (config_get_row(c, r, buf, sizeof buf) != 0)
			continue;   /* cannot happen: every field fits in CONFIG_PATH_MAX */
		fprintf(f, "%s = ", r->name);
		config_print_value(f, r, buf);
		fputc('\n', f);
	}
}

void config_write_default(FILE *f)
{
	char domain[128];

	fputs("# normlabd.conf: the configuration of normlabd, the normlab daemon.\n"
	      "#\n"
	      "# Generated from the option table in server/config.c (config_write_default; run\n"
	      "# `make config-default` to regenerate). Every option is listed, commented out at\n"
	      "# its default: uncomment a line to change it.\n"
	      "#\n"
	      "# Syntax: one 'name = value' per line; lines starting with '#' are comments; a value\n"
	      "# may be wrapped in \"double\" or 'single' quotes; integers take K/M/G/T suffixes\n"
	      "# (powers of 1024). Start the daemon with `normlabd -c FILE`; command-line flags\n"
	      "# (--name VALUE) override this file.\n",
	      f);
	for (size_t i = 0; i < CONFIG_NROWS; i++) {
		const struct config_row *r = &config_table[i];
		config_row_domain(r, domain, sizeof domain);
		fprintf(f, "\n# %s%s%s%s\n#%s = ", r->help, *domain ? " [" : "", domain,
			*domain ? "]" : "", r->name);
		config_print_value(f, r, r->def);
		fputc('\n', f);
	}
}
