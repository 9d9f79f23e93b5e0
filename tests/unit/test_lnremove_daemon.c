/*
 * test_lnremove_daemon — LN removal through normlabd (NORMS.md §8), as a researcher drives it:
 *  - a child names a finished run as "parent" and gets its model from it; the child's GET shows
 *    its parent and the parent's GET lists its children;
 *  - a parent that is not finished, does not exist, or is someone else's (reads_open = false),
 *    a model field that differs from the parent's, and "init_from" (a path on the daemon's
 *    machine) are 400 invalid_spec problems naming the field;
 *  - the child trains from the parent's weights and records its removal events
 *    (lnremove.removed at the configured steps); a control child (no lnremove) has a different
 *    hash and none of them.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/dtest.h"
#include "../test.h"

#define ALICE "tok-alice-0123456789abcdef"
#define BOB "tok-bob-0123456789abcdef00"

static struct dtest D;

static int call(const char *method, const char *path, const char *token, const char *body,
		struct dtest_reply *r)
{
	return dtest_call(&D, method, path, token, body, r);
}

static int wait_status(int64_t id, const char *status, double timeout)
{
	char path[96];
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)id);
	double until = dtest_now() + timeout;
	while (dtest_now() < until) {
		struct dtest_reply r;
		call("GET", path, ALICE, NULL, &r);
		int ok = strcmp(dtest_str(r.json, "status"), status) == 0;
		int bad = strcmp(dtest_str(r.json, "status"), "failed") == 0;
		if (bad)
			fprintf(stderr, "experiment %lld failed: %s\n", (long long)id, r.body);
		dtest_reply_free(&r);
		if (ok || bad)
			return ok;
		dtest_sleep_ms(100);
	}
	return 0;
}

/* POST a child of `parent` with `extra` fields; returns the status, *id the new run's id. */
static int post_child(const char *token, const char *parent, const char *extra, int64_t *id,
		      struct dtest_reply *r)
{
	char body[1024];
	snprintf(body, sizeof body, "{\"parent\":\"%s\",\"data\":{\"path\":\"corpus.txt\"},"
		 "\"train\":{\"steps\":30,\"batch_size\":4,\"lr\":1e-3,\"warmup\":2},"
		 "\"probe\":{\"every\":5,\"depth_every\":10,\"samples\":16,\"samples_every\":100,"
		 "\"val_every\":10}%s%s}", parent, extra[0] ? "," : "", extra);
	int st = call("POST", "/api/v1/experiments", token, body, r);
	*id = (int64_t)dtest_num(r->json, "id");
	return st;
}

static void test_parent_child(void)
{
	struct dtest_reply r;
	char path[160], pid[32];
	const char *parent_body =
		"{\"model\":{\"n_layer\":2,\"d_model\":32,\"n_head\":2,\"seq_len\":32},"
		"\"data\":{\"path\":\"corpus.txt\"},\"train\":{\"steps\":300,\"batch_size\":4,"
		"\"lr\":3e-3},\"probe\":{\"samples\":16,\"samples_every\":100}}";
	CHECK(call("POST", "/api/v1/experiments", ALICE, parent_body, &r) == 201);
	int64_t parent = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	snprintf(pid, sizeof pid, "%lld", (long long)parent);

	/* not finished yet: refused, naming /parent */
	int64_t id;
	int st = post_child(ALICE, pid, "", &id, &r);
	CHECKF(st == 400 && strstr(r.body, "/parent") && strstr(r.body, "finished"), "%d %s", st,
	       r.body);
	dtest_reply_free(&r);
	CHECK(wait_status(parent, "succeeded", 120));

	/* errors naming the field */
	st = post_child(ALICE, pid, "\"model\":{\"d_model\":64}", &id, &r);
	CHECKF(st == 400 && strstr(r.body, "/model/d_model") && strstr(r.body, "parent"), "%d %s",
	       st, r.body);
	dtest_reply_free(&r);
	st = post_child(ALICE, "999999", "", &id, &r);
	CHECKF(st == 400 && strstr(r.body, "/parent") && strstr(r.body, "does not exist"), "%d %s",
	       st, r.body);
	dtest_reply_free(&r);
	st = post_child(BOB, pid, "", &id, &r);   /* reads_open = false: alice's run is invisible */
	CHECKF(st == 400 && strstr(r.body, "does not exist"), "%d %s", st, r.body);
	dtest_reply_free(&r);
	CHECK(call("POST", "/api/v1/experiments", ALICE,
		   "{\"init_from\":\"/etc/passwd\",\"data\":{\"path\":\"corpus.txt\"}}", &r) == 400);
	CHECKF(strstr(r.body, "/init_from") != NULL, "%s", r.body);
	dtest_reply_free(&r);
	st = post_child(ALICE, pid, "\"lnremove\":{\"mode\":\"gradual\",\"start\":25}", &id, &r);
	CHECKF(st == 400 && strstr(r.body, "/lnremove/start"), "%d %s", st, r.body);
	dtest_reply_free(&r);

	/* the child and the control */
	int64_t child, control;
	st = post_child(ALICE, pid, "\"lnremove\":{\"mode\":\"gradual\",\"start\":3,\"gap_ln2\":2,"
			"\"gap_ln1_qk\":2,\"gap_ln1_v\":3}", &child, &r);
	CHECKF(st == 201, "%d %s", st, r.body);
	CHECK(dtest_num(r.json, "parent") == (double)parent);
	char hash_child[80];
	snprintf(hash_child, sizeof hash_child, "%s", dtest_str(r.json, "hash"));
	dtest_reply_free(&r);
	st = post_child(ALICE, pid, "", &control, &r);
	CHECKF(st == 201 && strcmp(dtest_str(r.json, "hash"), hash_child) != 0, "%d %s", st, r.body);
	dtest_reply_free(&r);

	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)child);
	CHECK(call("GET", path, ALICE, NULL, &r) == 200);
	CHECKF(dtest_num(r.json, "parent") == (double)parent, "%s", r.body);
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(r.json, "spec");
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(spec, "model");
	CHECKF(dtest_num(model, "d_model") == 32 && strlen(dtest_str(spec, "parent_hash")) == 64,
	       "the child's spec has the parent's model and hash: %s", r.body);
	dtest_reply_free(&r);
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)parent);
	CHECK(call("GET", path, ALICE, NULL, &r) == 200);
	const cJSON *kids = cJSON_GetObjectItemCaseSensitive(r.json, "children");
	CHECKF(cJSON_GetArraySize(kids) == 2 &&
	       cJSON_GetArrayItem(kids, 0)->valuedouble == (double)child &&
	       cJSON_GetArrayItem(kids, 1)->valuedouble == (double)control, "%s", r.body);
	CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r.json, "parent")));
	dtest_reply_free(&r);

	CHECK(wait_status(child, "succeeded", 120));
	CHECK(wait_status(control, "succeeded", 120));
	/* removal events at 3, 5 (ln2), 7, 9 (ln1 Q/K), 11, 14 (ln1 V), 17 (ln_f) */
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/metrics/lnremove.removed?buckets=1000",
		 (long long)child);
	CHECK(call("GET", path, ALICE, NULL, &r) == 200);
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(r.json, "step");
	static const int want[] = { 3, 5, 7, 9, 11, 14, 17 };
	int ok = cJSON_GetArraySize(steps) == 7;
	for (int i = 0; ok && i < 7; i++)
		ok = cJSON_GetArrayItem(steps, i)->valuedouble == want[i];
	CHECKF(ok, "removal steps: %s", r.body);
	dtest_reply_free(&r);
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/metrics", (long long)control);
	CHECK(call("GET", path, ALICE, NULL, &r) == 200);
	CHECKF(!strstr(r.body, "lnremove"), "the control records LN removal: %s", r.body);
	dtest_reply_free(&r);
}

int main(void)
{
	if (dtest_init(&D, "lnremove_daemon") != 0)
		return 1;
	dtest_write_corpus(&D);
	char tokens[128];
	snprintf(tokens, sizeof tokens, "%s/tokens", D.tmp);
	dtest_write_file(tokens, ALICE " alice user\n" BOB " bob user\n");
	const char *args[] = { "--reads_open", "false", "--workers", "2", "--thread_budget", "2",
			       NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start (see %s)", D.log);
		return test_finish("lnremove_daemon");
	}
	test_parent_child();
	int code = dtest_stop(&D, SIGTERM);
	CHECKF(code == 0, "SIGTERM: exit %d", code);
	dtest_cleanup(&D, test_fail_count == 0);
	return test_finish("lnremove_daemon");
}
