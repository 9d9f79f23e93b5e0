/*
 * test_auth.c — the tokens file (good files, every kind of bad line with its line number, the
 * 10,000-line cap) and the Bearer check (missing, malformed and unknown tokens, scheme case,
 * whitespace, user vs admin, concurrent checks on one shared table).
 */
#define _POSIX_C_SOURCE 200809L
#include "../test.h"

#include "auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

#define TOK_ALICE "alice-token-0123456789abcdef"
#define TOK_ALICE2 "alice.second~token+with/slash=="
#define TOK_ROOT "ROOTTOKEN_abcdefghijklmnopqrstuv"

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

static struct auth *load_good(void)
{
	struct auth *a = NULL;
	struct auth_err err = { 0 };
	const char *path = write_file("good.tokens",
		"# normlab tokens: TOKEN USER ROLE\n"
		"\n"
		TOK_ALICE " alice user\n"
		"   # indented comment\n"
		"\t" TOK_ROOT "\t\troot   admin  \r\n"
		"  \t \n"
		TOK_ALICE2 " alice user");   /* no final newline */
	int rc = auth_load(&a, path, &err);
	CHECKF(rc == 0 && a != NULL, "%s", err.msg);
	return a;
}

static void test_good_file(void)
{
	struct auth *a = load_good();
	char user[AUTH_USER_MAX];
	int admin = -1;

	if (!a)
		return;
	CHECK(auth_count(a) == 3);
	CHECK(auth_check(a, "Bearer " TOK_ALICE, user, sizeof user, &admin) == AUTH_OK);
	CHECK(strcmp(user, "alice") == 0 && admin == 0);
	CHECK(auth_check(a, "Bearer " TOK_ROOT, user, sizeof user, &admin) == AUTH_OK);
	CHECK(strcmp(user, "root") == 0 && admin == 1);
	CHECK(auth_check(a, "Bearer " TOK_ALICE2, user, sizeof user, &admin) == AUTH_OK);
	CHECK(strcmp(user, "alice") == 0 && admin == 0);
	/* NULL outputs are allowed */
	CHECK(auth_check(a, "Bearer " TOK_ROOT, NULL, 0, NULL) == AUTH_OK);
	auth_free(a);

	/* role reader: auth_check_role says so, and auth_check does not take it for an admin */
	int role = -1;
	a = NULL;
	CHECK(auth_load(&a, write_file("reader.tokens", TOK_ALICE " alice reader\n" TOK_ROOT
				       " root admin\n"), NULL) == 0 && a);
	CHECK(auth_check_role(a, "Bearer " TOK_ALICE, user, sizeof user, &role) == AUTH_OK);
	CHECK(strcmp(user, "alice") == 0 && role == AUTH_ROLE_READER);
	CHECK(auth_check(a, "Bearer " TOK_ALICE, user, sizeof user, &admin) == AUTH_OK && admin == 0);
	CHECK(auth_check_role(a, "Bearer " TOK_ROOT, user, sizeof user, &role) == AUTH_OK &&
	      role == AUTH_ROLE_ADMIN);
	CHECK(auth_check_role(a, "Bearer " TOK_ALICE2, user, sizeof user, &role) == AUTH_EUNKNOWN &&
	      role == AUTH_ROLE_USER);
	auth_free(a);

	/* an empty path: no tokens, every check is refused */
	a = NULL;
	CHECK(auth_load(&a, "", NULL) == 0 && a && auth_count(a) == 0);
	CHECK(auth_check(a, "Bearer " TOK_ALICE, user, sizeof user, &admin) == AUTH_EUNKNOWN);
	auth_free(a);
	a = NULL;
	CHECK(auth_load(&a, NULL, NULL) == 0 && a && auth_count(a) == 0);
	auth_free(a);
	auth_free(NULL);

	/* comment-only file */
	a = NULL;
	CHECK(auth_load(&a, write_file("empty.tokens", "# nobody yet\n"), NULL) == 0 &&
	      auth_count(a) == 0);
	auth_free(a);

	/* the longest token and user */
	char line[600], token[AUTH_TOKEN_MAX + 1], user63[64], header[300];
	memset(token, 'T', AUTH_TOKEN_MAX);
	token[AUTH_TOKEN_MAX] = '\0';
	memset(user63, 'u', 63);
	user63[63] = '\0';
	snprintf(line, sizeof line, "%s %s admin\n", token, user63);
	a = NULL;
	struct auth_err err = { 0 };
	CHECKF(auth_load(&a, write_file("long.tokens", line), &err) == 0, "%s", err.msg);
	snprintf(header, sizeof header, "Bearer %s", token);
	CHECK(auth_check(a, header, user, sizeof user, &admin) == AUTH_OK);
	CHECK(strcmp(user, user63) == 0 && admin == 1);
	header[strlen(header) - 1] = 'X';
	CHECK(auth_check(a, header, user, sizeof user, &admin) == AUTH_EUNKNOWN);
	auth_free(a);
}

static void test_bearer(void)
{
	struct auth *a = load_good();
	char user[AUTH_USER_MAX];
	int admin;
	char big[400];

	if (!a)
		return;
	memset(big, 'a', 300);
	memcpy(big, "Bearer ", 7);
	big[300] = '\0';

	struct {
		const char *header;
		int rc;
	} cases[] = {
		{ NULL, AUTH_ENOHEADER },
		{ "", AUTH_ENOHEADER },
		{ "  \t ", AUTH_ENOHEADER },
		{ "Basic " TOK_ALICE, AUTH_EMALFORMED },
		{ "Basic x", AUTH_EMALFORMED },
		{ "Bearer", AUTH_EMALFORMED },
		{ "Bearer ", AUTH_EMALFORMED },
		{ "Bearer    ", AUTH_EMALFORMED },
		{ "Bearer" TOK_ALICE, AUTH_EMALFORMED },
		{ "Bearer: " TOK_ALICE, AUTH_EMALFORMED },
		{ "Bear " TOK_ALICE, AUTH_EMALFORMED },
		{ "Bearer " TOK_ALICE " extra", AUTH_EMALFORMED },
		{ "Bearer " TOK_ALICE "!", AUTH_EMALFORMED },
		{ "Bearer \"" TOK_ALICE "\"", AUTH_EMALFORMED },
		{ "Bearer " TOK_ALICE "\n", AUTH_EMALFORMED },
		{ TOK_ALICE, AUTH_EMALFORMED },
		{ "Bearer " TOK_ALICE, AUTH_OK },
		{ "bearer " TOK_ALICE, AUTH_OK },
		{ "BEARER\t" TOK_ALICE, AUTH_OK },
		{ "bEaReR " TOK_ALICE, AUTH_OK },
		{ "  Bearer    " TOK_ALICE "  \t", AUTH_OK },
		{ "Bearer wrong-token-0123456789abc", AUTH_EUNKNOWN },   /* same length */
		{ "Bearer alice-token-0123456789abcdeF", AUTH_EUNKNOWN }, /* last byte */
		{ "Bearer Alice-token-0123456789abcdef", AUTH_EUNKNOWN }, /* first byte */
		{ "Bearer alice-token-0123456789abcde", AUTH_EUNKNOWN },  /* a prefix */
		{ "Bearer " TOK_ALICE "0", AUTH_EUNKNOWN },               /* one longer */
		{ "Bearer short", AUTH_EUNKNOWN },
		{ big, AUTH_EUNKNOWN },                                   /* 293 characters */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(user, "stale", 6);
		admin = 7;
		int rc = auth_check(a, cases[i].header, user, sizeof user, &admin);
		CHECKF(rc == cases[i].rc, "case %zu '%s': rc %d, want %d", i,
		       cases[i].header ? cases[i].header : "(null)", rc, cases[i].rc);
		if (rc != AUTH_OK)
			CHECKF(user[0] == '\0' && admin == 0, "case %zu left outputs set", i);
		else
			CHECK(strcmp(user, "alice") == 0 && admin == 0);
	}
	/* the three failures are distinct codes */
	CHECK(AUTH_ENOHEADER != AUTH_EMALFORMED && AUTH_EMALFORMED != AUTH_EUNKNOWN &&
	      AUTH_ENOHEADER < 0 && AUTH_EMALFORMED < 0 && AUTH_EUNKNOWN < 0);
	/* a small user buffer is cut, never overrun */
	char small[4];
	CHECK(auth_check(a, "Bearer " TOK_ALICE, small, sizeof small, &admin) == AUTH_OK);
	CHECK(strcmp(small, "ali") == 0);
	auth_free(a);
}

/* Loads content and expects code, err.line and exactly "PATH:line: reason". */
static void expect_error(const char *content, int code, int line, const char *reason)
{
	struct auth *a = (struct auth *)1;
	struct auth_err err;
	char want[AUTH_ERR_MSG + 256];
	const char *path = write_file("bad.tokens", content);

	memset(&err, 0, sizeof err);
	snprintf(want, sizeof want, "%s:%d: %s", path, line, reason);
	int rc = auth_load(&a, path, &err);
	CHECKF(rc == code && err.code == code && err.line == line && strcmp(err.msg, want) == 0,
	       "rc %d line %d msg '%s', want '%s'", rc, err.line, err.msg, want);
	CHECK(a == NULL);
	/* no message ever quotes a token */
	CHECKF(!strstr(err.msg, "0123456789abcdef") && !strstr(err.msg, "Secret"), "%s", err.msg);
}

static void test_bad_lines(void)
{
	const char *good = TOK_ALICE " alice user\n";
	char buf[4096];

	expect_error("# x\nSecretSecretSecret alice\n", AUTH_EINVAL, 2,
		     "expected 'TOKEN USER ROLE', found 2 fields");
	expect_error("SecretSecretSecret\n", AUTH_EINVAL, 1,
		     "expected 'TOKEN USER ROLE', found 1 fields");
	expect_error("\n\n\nSecretSecretSecret alice user extra\n", AUTH_EINVAL, 4,
		     "expected 'TOKEN USER ROLE', found more than 3 fields");
	expect_error("Secret456789abcd alice user # trailing comment\n", AUTH_EINVAL, 1,
		     "expected 'TOKEN USER ROLE', found more than 3 fields");
	expect_error("Secret456789abc alice user\n", AUTH_EINVAL, 1,
		     "the token is 15 characters long; it must be 16..256");
	expect_error("SecretSecret!Secret alice user\n", AUTH_EINVAL, 1,
		     "the token has a character outside [A-Za-z0-9._~+/=-] (column 13)");
	expect_error("  SecretSecretSecret al@ce user\n", AUTH_EINVAL, 1,
		     "the user name has a character outside [A-Za-z0-9._-] (column 24)");
	expect_error("SecretSecretSecret alice root\n", AUTH_EINVAL, 1,
		     "the role must be 'user', 'admin' or 'reader'");
	expect_error("SecretSecretSecret alice Admin\n", AUTH_EINVAL, 1,
		     "the role must be 'user', 'admin' or 'reader'");
	expect_error("SecretSecretSecret alice users\n", AUTH_EINVAL, 1,
		     "the role must be 'user', 'admin' or 'reader'");

	char tok257[AUTH_TOKEN_MAX + 2];
	memset(tok257, 'S', AUTH_TOKEN_MAX + 1);
	tok257[AUTH_TOKEN_MAX + 1] = '\0';
	snprintf(buf, sizeof buf, "%s%s bob user\n", good, tok257);
	expect_error(buf, AUTH_EINVAL, 2, "the token is 257 characters long; it must be 16..256");

	char user64[65];
	memset(user64, 'u', 64);
	user64[64] = '\0';
	snprintf(buf, sizeof buf, "%sSecretSecretSecret %s user\n", good, user64);
	expect_error(buf, AUTH_EINVAL, 2, "the user name is 64 characters long; it must be 1..63");

	/* a duplicate token names both lines, whatever the users */
	snprintf(buf, sizeof buf, "%s# c\nSecretSecretSecret bob user\n%s", good,
		 TOK_ALICE " mallory admin\n");
	expect_error(buf, AUTH_EINVAL, 4, "duplicate token (already on line 1)");
	snprintf(buf, sizeof buf, "SecretSecretSecret b user\n%s%s%s", good, good, good);
	expect_error(buf, AUTH_EINVAL, 3, "duplicate token (already on line 2)");

	/* line length cap */
	static char longline[AUTH_LINE_MAX + 64];
	memset(longline, '#', sizeof longline);
	memcpy(longline, good, strlen(good));
	longline[strlen(good) + AUTH_LINE_MAX + 1] = '\n';
	longline[strlen(good) + AUTH_LINE_MAX + 2] = '\0';
	expect_error(longline, AUTH_ELIMIT, 2, "line is longer than 1024 bytes");

	/* a NUL byte */
	{
		char path[256];
		struct auth *a = NULL;
		struct auth_err err = { 0 };
		FILE *f;
		snprintf(path, sizeof path, "%s/nul.tokens", tmpdir);
		f = fopen(path, "wb");
		if (f) {
			fwrite("SecretSecretSecret al\0ce user\n", 1, 30, f);
			fclose(f);
		}
		CHECK(auth_load(&a, path, &err) == AUTH_EINVAL && err.line == 1 && a == NULL);
		CHECK(strstr(err.msg, ":1: line contains a NUL byte") != NULL);
	}

	/* a missing file names the path */
	{
		char path[256];
		struct auth *a = (struct auth *)1;
		struct auth_err err = { 0 };
		snprintf(path, sizeof path, "%s/missing.tokens", tmpdir);
		CHECK(auth_load(&a, path, &err) == AUTH_EIO && a == NULL);
		CHECKF(strstr(err.msg, path) == err.msg && strstr(err.msg, "No such file"), "%s",
		       err.msg);
	}
}

/* Writes n lines, every one a valid token line; returns the path. */
static const char *write_many(const char *name, int n)
{
	static char path[256];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f)
		return path;
	for (int i = 0; i < n; i++)
		fprintf(f, "token%011d user%d %s\n", i, i % 7, i % 100 ? "user" : "admin");
	fclose(f);
	return path;
}

static void test_line_cap(void)
{
	struct auth *a = NULL;
	struct auth_err err = { 0 };
	char user[AUTH_USER_MAX], want[AUTH_ERR_MSG + 256];
	int admin;

	int rc = auth_load(&a, write_many("cap.tokens", AUTH_LINES_MAX), &err);
	CHECKF(rc == 0 && auth_count(a) == AUTH_LINES_MAX, "%s", err.msg);
	CHECK(auth_check(a, "Bearer token00000009999", user, sizeof user, &admin) == AUTH_OK);
	CHECK(strcmp(user, "user3") == 0 && admin == 0);
	CHECK(auth_check(a, "Bearer token00000009900", user, sizeof user, &admin) == AUTH_OK);
	CHECK(admin == 1);
	CHECK(auth_check(a, "Bearer token00000010000", user, sizeof user, &admin) ==
	      AUTH_EUNKNOWN);
	auth_free(a);

	a = (struct auth *)1;
	const char *path = write_many("over.tokens", AUTH_LINES_MAX + 1);
	rc = auth_load(&a, path, &err);
	snprintf(want, sizeof want, "%s:10001: more than 10000 lines", path);
	CHECK(rc == AUTH_ELIMIT && a == NULL && err.line == 10001);
	CHECKF(strcmp(err.msg, want) == 0, "%s", err.msg);
}

struct worker {
	const struct auth *a;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char user[AUTH_USER_MAX];
	int admin;
	for (int i = 0; i < 2000; i++) {
		if (auth_check(w->a, "Bearer " TOK_ROOT, user, sizeof user, &admin) != AUTH_OK ||
		    strcmp(user, "root") != 0 || admin != 1)
			w->failures++;
		if (auth_check(w->a, "Bearer " TOK_ALICE, user, sizeof user, &admin) != AUTH_OK ||
		    strcmp(user, "alice") != 0 || admin != 0)
			w->failures++;
		if (auth_check(w->a, "Bearer nope-nope-nope-nope", user, sizeof user, &admin) !=
		    AUTH_EUNKNOWN)
			w->failures++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct auth *a = load_good();
	pthread_t t[4];
	struct worker w[4];
	int started = 0;

	if (!a)
		return;
	for (int i = 0; i < 4; i++) {
		w[i].a = a;
		w[i].failures = 0;
		if (pthread_create(&t[i], NULL, worker_main, &w[i]) == 0)
			started++;
		else
			break;
	}
	CHECK(started == 4);
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		CHECKF(w[i].failures == 0, "thread %d: %d failures", i, w[i].failures);
	}
	auth_free(a);
}

static void cleanup_tmpdir(void)
{
	static const char *const names[] = {
		"good.tokens", "empty.tokens", "long.tokens", "bad.tokens", "nul.tokens",
		"cap.tokens", "over.tokens",
	};
	char path[256];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_cfg_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_good_file();
	test_bearer();
	test_bad_lines();
	test_line_cap();
	test_threads();
	cleanup_tmpdir();
	return test_finish("test_auth");
}
