/*
 * test_config.c — normlabd's configuration: defaults, the config file (syntax, every kind of
 * error with its exact file:line), flags overriding the file, --help, config_print round trips,
 * and that the committed config/normlabd.conf is current and parses back to the defaults.
 * Also the log module's line format and level filtering, since log_level comes from here.
 * Runs from the repository root. `test_config --write-default` prints config/normlabd.conf
 * (used by `make config-default`).
 */
#define _POSIX_C_SOURCE 200809L
#include "../test.h"

#include "config.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

/* Writes content to tmpdir/name; returns the path (static buffer, one at a time). */
static const char *write_file(const char *name, const char *content)
{
	static char path[256];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		return path;
	}
	fputs(content, f);
	fclose(f);
	return path;
}

/* The whole text config_print produces for c; caller frees. */
static char *printed(const struct config *c)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return NULL;
	config_print(c, f);
	fclose(f);
	return buf;
}

static int same_config(const struct config *a, const struct config *b)
{
	char *pa = printed(a), *pb = printed(b);
	int same = pa && pb && strcmp(pa, pb) == 0;
	free(pa);
	free(pb);
	return same;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static void test_defaults(void)
{
	struct config c;
	config_defaults(&c);
	CHECK(strcmp(c.listen, "127.0.0.1:8080") == 0);
	CHECK(strcmp(c.listen_host, "127.0.0.1") == 0);
	CHECK(c.listen_port == 8080);
	CHECK(strcmp(c.db, "var/normlab.db") == 0);
	CHECK(strcmp(c.runs_dir, "var/runs") == 0);
	CHECK(strcmp(c.data_dir, "var/data") == 0);
	CHECK(strcmp(c.tokens_file, "") == 0);
	CHECK(c.reads_open == 1);
	CHECK(c.max_runs == 2);
	CHECK(c.thread_budget == 2);
	CHECK(c.checkpoint_every == 100);
	CHECK(c.max_body_bytes == 1048576);
	CHECK(c.max_json_depth == 64);
	CHECK(c.max_sweep_cells == 1024);
	CHECK(c.max_run_bytes == 4294967296LL);
	CHECK(c.log_level == LOG_LEVEL_INFO);
	CHECK(strcmp(c.web_dir, "web") == 0);
	CHECK(c.min_free_bytes == 512LL << 20);
	CHECK(c.storage_reserve_bytes == 8LL << 20);
	CHECK(c.session_ttl == 43200);
	CHECK(strcmp(c.data_dirs, "") == 0);   /* data_dir alone is the one data root */
	CHECK(config_check(&c, NULL) == 0);

	/* every table default is itself a valid value (config_defaults ignores failures) */
	size_t i;
	for (i = 0; config_option_name(i); i++) {
		struct config_err err;
		int rc = config_set(&c, config_option_name(i), config_option_default(i), &err);
		CHECKF(rc == 0, "%s: %s", config_option_name(i), err.msg);
	}
	CHECK(i == 41);   /* the 15 before issue 9, storage (2), perms (1), quotas (14), net (8), data (1) */
}

static void test_set_values(void)
{
	struct config c;
	struct config_err err;
	char buf[64];

	config_defaults(&c);
	CHECK(config_set(&c, "max_run_bytes", "2G", &err) == 0 && c.max_run_bytes == 2LL << 30);
	CHECK(config_set(&c, "max_run_bytes", "1TiB", &err) == 0 && c.max_run_bytes == 1LL << 40);
	CHECK(config_set(&c, "max_body_bytes", "64M", &err) == 0 && c.max_body_bytes == 64 << 20);
	CHECK(config_set(&c, "max_body_bytes", "1k", &err) == 0 && c.max_body_bytes == 1024);
	CHECK(config_set(&c, "checkpoint_every", "1000000000", &err) == 0);
	CHECK(config_set(&c, "reads_open", "No", &err) == 0 && c.reads_open == 0);
	CHECK(config_set(&c, "reads_open", "on", &err) == 0 && c.reads_open == 1);
	CHECK(config_set(&c, "log_level", "error", &err) == 0 && c.log_level == LOG_LEVEL_ERROR);
	CHECK(config_set(&c, "listen", "[::1]:443", &err) == 0);
	CHECK(strcmp(c.listen_host, "::1") == 0 && c.listen_port == 443);
	CHECK(config_set(&c, "listen", "localhost:65535", &err) == 0 && c.listen_port == 65535);
	CHECK(config_get(&c, "max_run_bytes", buf, sizeof buf) == 0 &&
	      strcmp(buf, "1099511627776") == 0);
	CHECK(config_get(&c, "reads_open", buf, sizeof buf) == 0 && strcmp(buf, "true") == 0);
	CHECK(config_get(&c, "nope", buf, sizeof buf) == CONFIG_EINVAL);
	CHECK(config_get(&c, "db", buf, 4) == CONFIG_ELIMIT && strcmp(buf, "var") == 0);

	/* errors leave the struct as it was */
	struct {
		const char *key, *value, *msg;
	} bad[] = {
		{ "max_runs", "0", "max_runs = 0 is out of range 1..64" },
		{ "max_runs", "65", "max_runs = 65 is out of range 1..64" },
		{ "max_runs", "-1", "max_runs = -1 is out of range 1..64" },
		{ "max_runs", "2x", "max_runs = 2x is not an integer" },
		{ "max_runs", "", "max_runs =  is not an integer" },
		{ "max_runs", "99999999999999999999", "max_runs = 99999999999999999999 is out of range 1..64" },
		{ "max_run_bytes", "2T", "max_run_bytes = 2T is out of range 1M..1T" },
		{ "max_run_bytes", "9000000000T", "max_run_bytes = 9000000000T is out of range 1M..1T" },
		{ "max_body_bytes", "1023", "max_body_bytes = 1023 is out of range 1K..64M" },
		{ "reads_open", "maybe", "reads_open = maybe is not a boolean (true/false, yes/no, on/off, 1/0)" },
		{ "log_level", "verbose", "log_level = verbose is not one of debug|info|warn|error" },
		{ "log_level", "INFO", "log_level = INFO is not one of debug|info|warn|error" },
		{ "db", "", "db must not be empty" },
		{ "db", "a\nb", "db contains a control character" },
		{ "listen", "8080", "listen = 8080: expected HOST:PORT" },
		{ "listen", ":8080", "listen = :8080: the host is empty" },
		{ "listen", "[]:8080", "listen = []:8080: the host is empty" },
		{ "listen", "h:0", "listen = h:0: the port must be a number in 1..65535" },
		{ "listen", "h:65536", "listen = h:65536: the port must be a number in 1..65535" },
		{ "listen", "h:", "listen = h:: the port must be a number in 1..65535" },
		{ "listen", "h:+80", "listen = h:+80: the port must be a number in 1..65535" },
		{ "listen", "::1:80", "listen = ::1:80: the host contains ':' (write an IPv6 address as [ADDRESS]:PORT)" },
		{ "nope", "1", "unknown option 'nope'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config before = c;
		memset(&err, 0, sizeof err);
		int rc = config_set(&c, bad[i].key, bad[i].value, &err);
		CHECKF(rc == CONFIG_EINVAL && strcmp(err.msg, bad[i].msg) == 0,
		       "%s=%s: rc %d msg '%s'", bad[i].key, bad[i].value, rc, err.msg);
		CHECKF(same_config(&before, &c), "%s=%s changed the config", bad[i].key, bad[i].value);
	}

	/* host length: 255 bytes is fine, 256 is not */
	char listen[300];
	memset(listen, 'h', 256);
	memcpy(listen + 255, ":80", 4);
	CHECK(config_set(&c, "listen", listen, &err) == 0 && strlen(c.listen_host) == 255);
	memset(listen, 'h', 256);
	memcpy(listen + 256, ":80", 4);
	CHECK(config_set(&c, "listen", listen, &err) == CONFIG_EINVAL);
	CHECKF(strcmp(err.msg, "listen: the host is 256 bytes; the limit is 255") == 0, "%s",
	       err.msg);

	/* a path over the cap */
	char longpath[CONFIG_PATH_MAX + 10];
	memset(longpath, 'p', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = '\0';
	CHECK(config_set(&c, "db", longpath, &err) == CONFIG_EINVAL);
	CHECKF(strcmp(err.msg, "db is 1033 bytes long; the limit is 1023") == 0, "%s", err.msg);
	longpath[CONFIG_PATH_MAX - 1] = '\0';
	CHECK(config_set(&c, "db", longpath, &err) == 0 && strlen(c.db) == CONFIG_PATH_MAX - 1);
}

static void test_full_file(void)
{
	struct config c;
	struct config_err err = { 0 };
	const char *path = write_file("full.conf",
		"listen = 0.0.0.0:9090\n"
		"db = /srv/normlab/db.sqlite\n"
		"runs_dir = /srv/normlab/runs\n"
		"data_dir = /srv/normlab/data\n"
		"tokens_file = /etc/normlab/tokens\n"
		"reads_open = false\n"
		"max_runs = 4\n"
		"thread_budget = 16\n"
		"checkpoint_every = 500\n"
		"max_body_bytes = 2M\n"
		"max_json_depth = 32\n"
		"max_sweep_cells = 256\n"
		"max_run_bytes = 8GiB\n"
		"log_level = debug\n"
		"web_dir = /usr/share/normlab/web\n");
	config_defaults(&c);
	int rc = config_load_file(&c, path, &err);
	CHECKF(rc == 0, "%s", err.msg);
	CHECK(strcmp(c.listen_host, "0.0.0.0") == 0 && c.listen_port == 9090);
	CHECK(strcmp(c.db, "/srv/normlab/db.sqlite") == 0);
	CHECK(strcmp(c.runs_dir, "/srv/normlab/runs") == 0);
	CHECK(strcmp(c.data_dir, "/srv/normlab/data") == 0);
	CHECK(strcmp(c.tokens_file, "/etc/normlab/tokens") == 0);
	CHECK(c.reads_open == 0);
	CHECK(c.max_runs == 4 && c.thread_budget == 16 && c.checkpoint_every == 500);
	CHECK(c.max_body_bytes == 2 << 20 && c.max_json_depth == 32 && c.max_sweep_cells == 256);
	CHECK(c.max_run_bytes == 8LL << 30);
	CHECK(c.log_level == LOG_LEVEL_DEBUG);
	CHECK(strcmp(c.web_dir, "/usr/share/normlab/web") == 0);
	CHECK(config_check(&c, NULL) == 0);
}

static void test_syntax(void)
{
	struct config c;
	struct config_err err = { 0 };
	const char *path = write_file("syntax.conf",
		"# a comment\n"
		"\n"
		"   # an indented comment = with an equals sign\n"
		"\t max_runs\t=\t 1 \r\n"
		"db = \"my db.sqlite\"\n"
		"web_dir = '  spaced  '\n"
		"tokens_file = \"\"\n"
		"runs_dir = runs#1\n"
		"data_dir=\"'quoted'\"\n"
		"  \t  \n"
		"log_level = warn");   /* no newline at the end */
	config_defaults(&c);
	int rc = config_load_file(&c, path, &err);
	CHECKF(rc == 0, "%s", err.msg);
	CHECK(c.max_runs == 1);
	CHECK(strcmp(c.db, "my db.sqlite") == 0);
	CHECK(strcmp(c.web_dir, "  spaced  ") == 0);
	CHECK(strcmp(c.tokens_file, "") == 0);
	CHECK(strcmp(c.runs_dir, "runs#1") == 0);
	CHECK(strcmp(c.data_dir, "'quoted'") == 0);
	CHECK(c.log_level == LOG_LEVEL_WARN);

	/* an empty file and a comment-only file change nothing */
	struct config d;
	config_defaults(&c);
	config_defaults(&d);
	CHECK(config_load_file(&c, write_file("empty.conf", ""), &err) == 0);
	CHECK(config_load_file(&c, write_file("comments.conf", "# x\n\n#max_runs = 9\n"), &err) == 0);
	CHECK(same_config(&c, &d));

	/* a line of exactly CONFIG_LINE_MAX bytes is fine */
	static char big[CONFIG_LINE_MAX + 64];
	memset(big, '#', CONFIG_LINE_MAX);
	memcpy(big + CONFIG_LINE_MAX, "\ndb = y\n", 9);
	CHECKF(config_load_file(&c, write_file("max.conf", big), &err) == 0, "%s", err.msg);
	CHECK(strcmp(c.db, "y") == 0);
}

/* Loads content and expects code and exactly "PATH:line: reason". */
static void expect_file_error(const char *content, int code, int line, const char *reason)
{
	struct config c;
	struct config_err err;
	char want[CONFIG_ERR_MSG + 256];
	const char *path = write_file("bad.conf", content);

	memset(&err, 0, sizeof err);
	snprintf(want, sizeof want, "%s:%d: %s", path, line, reason);
	config_defaults(&c);
	int rc = config_load_file(&c, path, &err);
	CHECKF(rc == code && err.code == code && err.line == line && strcmp(err.msg, want) == 0,
	       "rc %d line %d msg '%s', want '%s'", rc, err.line, err.msg, want);
}

static void test_file_errors(void)
{
	expect_file_error("# normlabd\n\nbogus = 1\n", CONFIG_EINVAL, 3, "unknown option 'bogus'");
	expect_file_error("max_runs = lots\n", CONFIG_EINVAL, 1, "max_runs = lots is not an integer");
	expect_file_error("#1\n#2\n#3\n#4\n#5\n\nmax_runs = 0\n", CONFIG_EINVAL, 7,
			  "max_runs = 0 is out of range 1..64");
	expect_file_error("db = a\nlisten = 1.2.3.4:80\n\ndb = b\n", CONFIG_EINVAL, 4,
			  "duplicate option 'db' (first set on line 1)");
	expect_file_error("listen 127.0.0.1:80\n", CONFIG_EINVAL, 1,
			  "expected 'name = value' but found no '='");
	expect_file_error("\n = 3\n", CONFIG_EINVAL, 2, "missing option name before '='");
	expect_file_error("db = \"open\n", CONFIG_EINVAL, 1, "db: unterminated \" quote");
	expect_file_error("db = 'x\"\n", CONFIG_EINVAL, 1, "db: unterminated ' quote");
	expect_file_error("reads_open = sure\n", CONFIG_EINVAL, 1,
			  "reads_open = sure is not a boolean (true/false, yes/no, on/off, 1/0)");
	expect_file_error("log_level = loud\n", CONFIG_EINVAL, 1,
			  "log_level = loud is not one of debug|info|warn|error");
	expect_file_error("listen = localhost\n", CONFIG_EINVAL, 1,
			  "listen = localhost: expected HOST:PORT");
	expect_file_error("db =\n", CONFIG_EINVAL, 1, "db must not be empty");
	expect_file_error("Max_Runs = 2\n", CONFIG_EINVAL, 1, "unknown option 'Max_Runs'");
	expect_file_error("max_runs = 2 # two\n", CONFIG_EINVAL, 1,
			  "max_runs = 2 # two is not an integer");

	/* a NUL byte */
	{
		struct config c;
		struct config_err err = { 0 };
		char want[CONFIG_ERR_MSG + 256];
		const char *path;
		char name[256];
		FILE *f;
		snprintf(name, sizeof name, "%s/nul.conf", tmpdir);
		f = fopen(name, "wb");
		if (f) {
			fwrite("db = a\0b\n", 1, 9, f);
			fclose(f);
		}
		path = name;
		snprintf(want, sizeof want, "%s:1: line contains a NUL byte", path);
		config_defaults(&c);
		CHECK(config_load_file(&c, path, &err) == CONFIG_EINVAL);
		CHECKF(strcmp(err.msg, want) == 0, "%s", err.msg);
	}

	/* a line one byte over the cap, on line 2 */
	{
		static char big[CONFIG_LINE_MAX + 64];
		memset(big, '#', sizeof big);
		memcpy(big, "# ok\n", 5);
		big[5 + CONFIG_LINE_MAX + 1] = '\n';
		big[5 + CONFIG_LINE_MAX + 2] = '\0';
		expect_file_error(big, CONFIG_ELIMIT, 2, "line is longer than 4096 bytes");
	}

	/* a missing file names the path */
	{
		struct config c;
		struct config_err err = { 0 };
		char path[256];
		snprintf(path, sizeof path, "%s/no-such.conf", tmpdir);
		config_defaults(&c);
		CHECK(config_load_file(&c, path, &err) == CONFIG_EIO);
		CHECKF(strstr(err.msg, path) == err.msg && strstr(err.msg, "No such file"), "%s",
		       err.msg);
	}
}

static void test_flags(void)
{
	struct config c;
	struct config_err err = { 0 };
	const char *path = write_file("flags.conf",
		"max_runs = 3\nthread_budget = 8\ndb = file.db\nlisten = 10.0.0.1:7000\n"
		"log_level = warn\n");
	char cpath[256];
	snprintf(cpath, sizeof cpath, "%s", path);

	/* flags win over the file, whether -c comes first or last */
	{
		char *argv[] = { "normlabd", "--workers", "1", "-c", cpath, "--listen",
				 "0.0.0.0:9000", "--max-run-bytes=2G", "--log-level", "debug", NULL };
		int rc = config_setup(&c, 10, argv, &err);
		CHECKF(rc == 0, "%s", err.msg);
		CHECK(c.max_runs == 1);                       /* flag */
		CHECK(c.thread_budget == 8);                  /* file */
		CHECK(strcmp(c.db, "file.db") == 0);          /* file */
		CHECK(strcmp(c.listen_host, "0.0.0.0") == 0 && c.listen_port == 9000); /* flag */
		CHECK(c.max_run_bytes == 2LL << 30);          /* flag, --name=value form */
		CHECK(c.log_level == LOG_LEVEL_DEBUG);        /* flag */
		CHECK(strcmp(c.runs_dir, "var/runs") == 0);   /* default */
	}
	{
		char *argv[] = { "normlabd", "--config=", NULL };
		CHECK(config_setup(&c, 2, argv, &err) == CONFIG_EINVAL);
		CHECKF(strcmp(err.msg, "--config: empty file name") == 0, "%s", err.msg);
	}
	{
		char cflag[300];
		snprintf(cflag, sizeof cflag, "--config=%s", cpath);
		char *argv[] = { "normlabd", "--db", "flag.db", "--runs", "/r", "--tokens", "/t",
				 "--data-dir", "/d", "--data_dir", "/d2", cflag, NULL };
		int rc = config_setup(&c, 12, argv, &err);
		CHECKF(rc == 0, "%s", err.msg);
		CHECK(strcmp(c.db, "flag.db") == 0);
		CHECK(strcmp(c.runs_dir, "/r") == 0);
		CHECK(strcmp(c.tokens_file, "/t") == 0);
		CHECK(strcmp(c.data_dir, "/d2") == 0);        /* the later flag wins */
		CHECK(c.max_runs == 3 && c.log_level == LOG_LEVEL_WARN);
	}
	/* pass 1 only reports -c; a NULL config validates against a scratch copy */
	{
		const char *p = (const char *)1;
		char *argv[] = { "normlabd", "-c", "x.conf", "--workers", "2", NULL };
		CHECK(config_parse_args(NULL, 5, argv, &p, &err) == 0 && p && strcmp(p, "x.conf") == 0);
		char *argv2[] = { "normlabd", "--workers", "2", NULL };
		CHECK(config_parse_args(NULL, 3, argv2, &p, &err) == 0 && p == NULL);
	}
	/* no flags: defaults */
	{
		char *argv[] = { "normlabd", NULL };
		struct config d;
		config_defaults(&d);
		CHECK(config_setup(&c, 1, argv, &err) == 0 && same_config(&c, &d));
	}
	/* errors */
	struct {
		int argc;
		char *argv[6];
		int code;
		const char *msg;
	} bad[] = {
		{ 3, { "normlabd", "--workers", "0" }, CONFIG_EINVAL,
		  "--workers: max_runs = 0 is out of range 1..64" },
		{ 3, { "normlabd", "--max-runs", "x" }, CONFIG_EINVAL,
		  "--max-runs: max_runs = x is not an integer" },
		{ 2, { "normlabd", "--db" }, CONFIG_EINVAL, "--db needs a value (see --help)" },
		{ 2, { "normlabd", "-c" }, CONFIG_EINVAL, "-c needs a value (see --help)" },
		{ 3, { "normlabd", "--frobnicate", "1" }, CONFIG_EINVAL,
		  "unknown option '--frobnicate' (see --help)" },
		{ 2, { "normlabd", "extra" }, CONFIG_EINVAL, "unexpected argument 'extra' (see --help)" },
		{ 2, { "normlabd", "-x" }, CONFIG_EINVAL, "unexpected argument '-x' (see --help)" },
		{ 3, { "normlabd", "--listen", "nohost" }, CONFIG_EINVAL,
		  "--listen: listen = nohost: expected HOST:PORT" },
		{ 3, { "normlabd", "--log-level", "trace" }, CONFIG_EINVAL,
		  "--log-level: log_level = trace is not one of debug|info|warn|error" },
		{ 3, { "normlabd", "--workers", "4" }, CONFIG_EINVAL,
		  "max_runs = 4 exceeds thread_budget = 2: every running run needs at least one "
		  "compute thread" },
		{ 4, { "normlabd", "--workers", "0", "--help" }, CONFIG_EINVAL,
		  "--workers: max_runs = 0 is out of range 1..64" },
		{ 4, { "normlabd", "--db", "x", "--help" }, CONFIG_EHELP, "help requested" },
		{ 2, { "normlabd", "-h" }, CONFIG_EHELP, "help requested" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		int rc = config_setup(&c, bad[i].argc, bad[i].argv, &err);
		CHECKF(rc == bad[i].code && strcmp(err.msg, bad[i].msg) == 0, "case %zu: rc %d '%s'",
		       i, rc, err.msg);
	}
	/* a bad file given with -c */
	{
		char *argv[] = { "normlabd", "-c", (char *)"/nonexistent/normlabd.conf", NULL };
		CHECK(config_setup(&c, 3, argv, &err) == CONFIG_EIO);
		CHECK(strstr(err.msg, "/nonexistent/normlabd.conf") != NULL);
	}
	/* an error in a flag is reported before the file is read */
	{
		char *argv[] = { "normlabd", "-c", (char *)"/nonexistent/x.conf", "--workers", "0",
				 NULL };
		CHECK(config_setup(&c, 5, argv, &err) == CONFIG_EINVAL);
	}
}

static void test_help(void)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f) {
		CHECK(0);
		return;
	}
	config_usage(f, "normlabd");
	fclose(f);
	CHECK(strstr(buf, "usage: normlabd") == buf);
	CHECK(strstr(buf, "-c, --config FILE") != NULL);
	CHECK(strstr(buf, "--help") != NULL);
	for (size_t i = 0; config_option_name(i); i++) {
		char flag[80], line[200];
		const char *name = config_option_name(i);
		size_t j = 0;
		flag[j++] = '-';
		flag[j++] = '-';
		for (; *name && j < sizeof flag - 1; name++)
			flag[j++] = *name == '_' ? '-' : *name;
		flag[j] = '\0';
		CHECKF(strstr(buf, flag) != NULL, "usage lacks %s", flag);
		/* "name = default": the empty default shows as "" */
		snprintf(line, sizeof line, "%s = %s", config_option_name(i),
			 *config_option_default(i) ? config_option_default(i) : "\"\"");
		CHECKF(strstr(buf, line) != NULL, "usage lacks '%s'", line);
	}
	CHECK(strstr(buf, "--workers N") != NULL);
	CHECK(strstr(buf, "--runs DIR") != NULL);
	CHECK(strstr(buf, "--tokens FILE") != NULL);
	CHECK(strstr(buf, "(1..64)") != NULL);
	CHECK(strstr(buf, "(debug|info|warn|error)") != NULL);
	free(buf);
}

static void test_print_roundtrip(void)
{
	struct config c, d;
	struct config_err err = { 0 };
	char path[256];
	FILE *f;

	config_defaults(&c);
	CHECK(config_set(&c, "db", " leading and trailing ", &err) == 0);
	CHECK(config_set(&c, "runs_dir", "\"starts with a quote", &err) == 0);
	CHECK(config_set(&c, "data_dir", "'single' # not a comment", &err) == 0);
	CHECK(config_set(&c, "tokens_file", "", &err) == 0);
	CHECK(config_set(&c, "web_dir", "w=eb", &err) == 0);
	CHECK(config_set(&c, "listen", "[fe80::1]:81", &err) == 0);
	CHECK(config_set(&c, "reads_open", "0", &err) == 0);
	CHECK(config_set(&c, "max_run_bytes", "3T", &err) == CONFIG_EINVAL);
	CHECK(config_set(&c, "max_run_bytes", "1T", &err) == 0);
	CHECK(config_set(&c, "log_level", "error", &err) == 0);

	snprintf(path, sizeof path, "%s/printed.conf", tmpdir);
	f = fopen(path, "w");
	if (!f) {
		CHECK(0);
		return;
	}
	config_print(&c, f);
	fclose(f);
	config_defaults(&d);
	int rc = config_load_file(&d, path, &err);
	CHECKF(rc == 0, "%s", err.msg);
	CHECK(same_config(&c, &d));
	CHECK(strcmp(d.db, " leading and trailing ") == 0);
	CHECK(strcmp(d.runs_dir, "\"starts with a quote") == 0);
	CHECK(strcmp(d.listen_host, "fe80::1") == 0 && d.listen_port == 81);

	char *text = printed(&c);
	CHECK(text && strstr(text, "tokens_file = \"\"\n") != NULL);
	CHECK(text && strstr(text, "max_run_bytes = 1099511627776\n") != NULL);
	CHECK(text && strstr(text, "reads_open = false\n") != NULL);
	free(text);

	/* defaults round-trip too */
	config_defaults(&c);
	f = fopen(path, "w");
	if (f) {
		config_print(&c, f);
		fclose(f);
	}
	config_defaults(&d);
	CHECK(config_set(&d, "max_runs", "1", &err) == 0);
	CHECK(config_load_file(&d, path, &err) == 0 && same_config(&c, &d));
}

/* The committed config/normlabd.conf: current, complete, and its values are the defaults. */
static void test_default_file(void)
{
	const char *repo_path = "config/normlabd.conf";
	struct config c, d;
	struct config_err err = { 0 };
	char *committed = read_all(repo_path), *generated = NULL, *uncommented = NULL;
	size_t n = 0;
	FILE *f;

	CHECKF(committed != NULL, "cannot read %s (run tests from the repo root)", repo_path);
	if (!committed)
		return;
	f = open_memstream(&generated, &n);
	if (f) {
		config_write_default(f);
		fclose(f);
	}
	CHECKF(generated && strcmp(committed, generated) == 0,
	       "%s is stale: run `make config-default`", repo_path);

	/* as committed (everything commented out) it gives the defaults */
	config_defaults(&c);
	config_defaults(&d);
	CHECK(config_set(&d, "max_runs", "1", &err) == 0);
	CHECK(config_set(&d, "max_runs", "2", &err) == 0);
	CHECKF(config_load_file(&d, repo_path, &err) == 0, "%s", err.msg);
	CHECK(same_config(&c, &d));

	/* uncomment every "#name = value" line: each option appears once, at its default */
	uncommented = malloc(strlen(committed) + 1);
	if (!uncommented) {
		CHECK(0);
		goto out;
	}
	{
		const char *s = committed;
		char *o = uncommented;
		int settings = 0;
		while (*s) {
			if (s[0] == '#' && s[1] >= 'a' && s[1] <= 'z') {
				s++;
				settings++;
			}
			while (*s && *s != '\n')
				*o++ = *s++;
			if (*s)
				*o++ = *s++;
		}
		*o = '\0';
		size_t rows = 0;
		while (config_option_name(rows))
			rows++;
		CHECK(settings == (int)rows);
	}
	{
		const char *p = write_file("uncommented.conf", uncommented);
		config_defaults(&d);
		CHECK(config_set(&d, "log_level", "error", &err) == 0);
		CHECK(config_set(&d, "tokens_file", "x", &err) == 0);
		int rc = config_load_file(&d, p, &err);
		CHECKF(rc == 0, "%s", err.msg);
		CHECK(same_config(&c, &d));   /* a duplicate or missing row would fail above */
	}
	for (size_t i = 0; config_option_name(i); i++) {
		char needle[128];
		snprintf(needle, sizeof needle, "\n#%s = ", config_option_name(i));
		CHECKF(strstr(committed, needle) != NULL, "%s lacks %s", repo_path,
		       config_option_name(i));
	}
out:
	free(committed);
	free(generated);
	free(uncommented);
}

static int evaluated;
static int side_effect(void)
{
	return ++evaluated;
}

/* The log format, and that a filtered-out level does not even evaluate its arguments. */
static void test_log(void)
{
	char path[256];
	int saved = dup(2);
	FILE *f;
	char *text;

	snprintf(path, sizeof path, "%s/log.txt", tmpdir);
	fflush(stderr);
	f = fopen(path, "w");
	if (saved < 0 || !f) {
		CHECK(0);
		if (f)
			fclose(f);
		return;
	}
	dup2(fileno(f), 2);

	log_init(LOG_LEVEL_WARN, "normlabd");
	LOG_DEBUG("hidden %d", side_effect());
	LOG_INFO("hidden %d", side_effect());
	LOG_WARN("disk %s is %d%% full", "var", 97);
	LOG_ERROR("bad\nline\x01");
	log_init(LOG_LEVEL_DEBUG, NULL);
	LOG_DEBUG("now %s", "visible");
	LOG_INFO("no arguments");
	log_init(LOG_LEVEL_INFO, NULL);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fclose(f);

	CHECK(evaluated == 0);
	text = read_all(path);
	CHECK(text != NULL);
	if (!text)
		return;
	/* 2026-11-22T15:34:12.123Z WARN normlabd: disk var is 97% full */
	const char *line = text;
	int lines = 0;
	while (*line) {
		const char *nl = strchr(line, '\n');
		CHECK(nl != NULL);
		if (!nl)
			break;
		CHECK(nl - line > 25 && line[4] == '-' && line[7] == '-' && line[10] == 'T' &&
		      line[13] == ':' && line[16] == ':' && line[19] == '.' && line[23] == 'Z' &&
		      line[24] == ' ');
		lines++;
		line = nl + 1;
	}
	CHECK(lines == 4);
	CHECK(strstr(text, "Z WARN normlabd: disk var is 97% full\n") != NULL);
	CHECK(strstr(text, "Z ERROR normlabd: bad?line?\n") != NULL);
	CHECK(strstr(text, "Z DEBUG normlabd: now visible\n") != NULL);
	CHECK(strstr(text, "Z INFO normlabd: no arguments\n") != NULL);
	CHECK(strstr(text, "hidden") == NULL);
	CHECK(strcmp(log_level_name(LOG_LEVEL_WARN), "warn") == 0);
	free(text);
}

static void cleanup_tmpdir(void)
{
	static const char *const names[] = {
		"full.conf", "syntax.conf", "empty.conf", "comments.conf", "max.conf", "bad.conf",
		"nul.conf", "flags.conf", "printed.conf", "uncommented.conf", "log.txt",
	};
	char path[256];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--write-default") == 0) {
		config_write_default(stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_cfg_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_set_values();
	test_full_file();
	test_syntax();
	test_file_errors();
	test_flags();
	test_help();
	test_print_roundtrip();
	test_default_file();
	test_log();
	cleanup_tmpdir();
	return test_finish("test_config");
}
