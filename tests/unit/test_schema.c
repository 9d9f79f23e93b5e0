/*
 * test_schema — the engine's tables as data, and the daemon serving them:
 *  1. schema_json lists every norm in norm_table (with its tensors) and every arch, and each
 *     arch's defaults are what spec_parse gives that arch (llama: rmsnorm, no bias; vit: α0 0.5);
 *  2. GET /api/v1/schema on a real normlabd answers the same document plus the run statuses,
 *     and its ranges are the ones the daemon enforces: a submit at max+1 of every integer field
 *     gets 400 naming that field, a submit at max of n_layer is accepted by a dry run; bodies
 *     the CLI's strict scanner refuses (\u0000, a 64-digit number) get 400 invalid_json;
 *  3. a sweep over model.arch × norm.type (tiny models, gpt/llama/vit) runs end to end through
 *     the daemon, the vit cells record train_acc and val_acc, and the run list shows each
 *     run's arch and filters by it (?arch=).
 * Binaries come from $NORMLAB_BIN (default bin/); data: a corpus the test writes itself and
 * Debian's Fashion-MNIST.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/dtest.h"
#include "../test.h"
#include "norm.h"
#include "schema.h"
#include "store.h"
#include "spec.h"

#define ALICE "tok-alice-0123456789abcdef"

static struct dtest D;

static const cJSON *by_name(const cJSON *arr, const char *key, const char *name)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
		if (strcmp(dtest_str(it, key), name) == 0)
			return it;
	return NULL;
}

static int has_string(const cJSON *arr, const char *s)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
			return 1;
	return 0;
}

/* ---------- 1. the engine's document ---------- */

static void test_engine_schema(void)
{
	cJSON *s = schema_json();
	CHECK(s != NULL);
	if (!s)
		return;
	const cJSON *norms = cJSON_GetObjectItem(s, "norm_types");
	CHECKF(cJSON_GetArraySize(norms) == norm_table_len, "%d norm types for %d rows",
	       cJSON_GetArraySize(norms), norm_table_len);
	for (int i = 0; i < norm_table_len; i++) {
		const cJSON *n = by_name(norms, "name", norm_table[i]->name);
		CHECKF(n != NULL, "norm %s missing", norm_table[i]->name);
		CHECKF(cJSON_GetArraySize(cJSON_GetObjectItem(n, "tensors")) == norm_table[i]->n_tensors,
		       "norm %s: tensors", norm_table[i]->name);
	}
	const cJSON *dyt = by_name(norms, "name", "dyt");
	CHECK(has_string(cJSON_GetObjectItem(dyt, "hyperparameters"), "norm.alpha0.attn"));
	const cJSON *arches = cJSON_GetObjectItem(s, "arches");
	CHECK(cJSON_GetArraySize(arches) == 3);
	static const char *const names[] = { "gpt", "llama", "vit" };
	for (int i = 0; i < 3; i++)
		CHECKF(by_name(arches, "name", names[i]) != NULL, "arch %s missing", names[i]);
	const cJSON *llama = cJSON_GetObjectItem(by_name(arches, "name", "llama"), "defaults");
	CHECK(strcmp(dtest_str(cJSON_GetObjectItem(llama, "norm"), "type"), "rmsnorm") == 0);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(llama, "model"), "bias")));
	const cJSON *vit = by_name(arches, "name", "vit");
	CHECK(strcmp(dtest_str(vit, "data"), "images") == 0);
	CHECK(has_string(cJSON_GetObjectItem(vit, "metrics"), "val_acc"));
	const cJSON *vd = cJSON_GetObjectItem(vit, "defaults");
	CHECK(dtest_num(cJSON_GetObjectItem(cJSON_GetObjectItem(vd, "norm"), "alpha0"), "attn") == 0.5);
	CHECK(strcmp(dtest_str(cJSON_GetObjectItem(vd, "data"), "source"), "fashion-mnist") == 0);
	const cJSON *pl = cJSON_GetObjectItem(s, "placements");
	CHECK(cJSON_GetArraySize(pl) == 6 && has_string(pl, "lns") && has_string(pl, "deepnorm"));
	const cJSON *nl = by_name(cJSON_GetObjectItem(s, "fields"), "key", "model.n_layer");
	CHECK(nl && dtest_num(nl, "min") == 1 && dtest_num(nl, "max") == 64 &&
	      dtest_num(nl, "default") == 4);
	const cJSON *nt = by_name(cJSON_GetObjectItem(s, "fields"), "key", "norm.type");
	CHECK(nt && cJSON_GetArraySize(cJSON_GetObjectItem(nt, "enum")) == norm_table_len);
	/* batch-statistic kinds: their buffers, hyper-parameter fields and which kind reads them */
	const cJSON *bn = by_name(norms, "name", "batchnorm");
	CHECK(bn && cJSON_IsTrue(cJSON_GetObjectItem(bn, "batch_statistics")));
	CHECK(has_string(cJSON_GetObjectItem(bn, "buffers"), "running_var"));
	CHECK(has_string(cJSON_GetObjectItem(bn, "hyperparameters"), "norm.momentum"));
	CHECK(has_string(cJSON_GetObjectItem(bn, "probes"), "fluct_mean"));
	const cJSON *un = by_name(norms, "name", "un");
	CHECK(un && has_string(cJSON_GetObjectItem(un, "buffers"), "skip_counter") &&
	      cJSON_IsTrue(cJSON_GetObjectItem(un, "approx_backward")));
	const cJSON *pw = by_name(cJSON_GetObjectItem(s, "fields"), "key", "norm.pn.warmup");
	CHECK(pw && has_string(cJSON_GetObjectItem(pw, "norm_only"), "powernorm") &&
	      cJSON_GetArraySize(cJSON_GetObjectItem(pw, "norm_only")) == 1 &&
	      cJSON_IsTrue(cJSON_GetObjectItem(pw, "default_depends")));
	const cJSON *uw = by_name(cJSON_GetObjectItem(s, "fields"), "key", "norm.un.window");
	CHECK(uw && dtest_num(uw, "min") == 1 && dtest_num(uw, "max") == 64 &&
	      dtest_num(uw, "default") == 4);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(dyt, "batch_statistics")));
	cJSON_Delete(s);
}

/* ---------- 2. served, and its ranges are the daemon's ---------- */

static void test_served_ranges(void)
{
	struct dtest_reply r;
	CHECK(dtest_call(&D, "GET", "/api/v1/schema", NULL, NULL, &r) == 200);
	const cJSON *st = cJSON_GetObjectItem(r.json, "statuses");
	CHECKF(cJSON_GetArraySize(st) == STORE_STATUS_COUNT && has_string(st, "succeeded") &&
	       has_string(st, "interrupted") && has_string(st, "dead"), "statuses: %.200s", r.body);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "norm_types")) == norm_table_len);
	const cJSON *f, *fields = cJSON_GetObjectItem(r.json, "fields");
	int tried = 0;
	cJSON_ArrayForEach(f, fields) {
		const char *key = dtest_str(f, "key"), *type = dtest_str(f, "type");
		const char *ptr = dtest_str(f, "pointer");
		if (strcmp(type, "integer") != 0 || strncmp(key, "model.", 6) != 0)
			continue;
		/* {"model":{"<leaf>": max+1}}: the answer names the field's pointer */
		char body[256], leaf[64];
		snprintf(leaf, sizeof leaf, "%s", key + 6);
		snprintf(body, sizeof body, "{\"model\":{\"%s\":%.0f}}", leaf, dtest_num(f, "max") + 1);
		struct dtest_reply b;
		int code = dtest_call(&D, "POST", "/api/v1/experiments?dry_run=1", ALICE, body, &b);
		CHECKF(code == 400 && strstr(b.body, ptr), "%s at max+1: %d %.300s", key, code, b.body);
		dtest_reply_free(&b);
		snprintf(body, sizeof body, "{\"model\":{\"%s\":%.0f}}", leaf, dtest_num(f, "min") - 1);
		code = dtest_call(&D, "POST", "/api/v1/experiments?dry_run=1", ALICE, body, &b);
		CHECKF(code == 400 && strstr(b.body, ptr), "%s at min-1: %d %.300s", key, code, b.body);
		dtest_reply_free(&b);
		tried++;
	}
	CHECKF(tried >= 5, "only %d integer model fields", tried);
	/* the largest n_layer the schema allows is accepted (a dry run: nothing trains) */
	const cJSON *nl = by_name(fields, "key", "model.n_layer");
	char body[128];
	snprintf(body, sizeof body, "{\"model\":{\"n_layer\":%.0f,\"d_model\":16,\"n_head\":1}}",
		 dtest_num(nl, "max"));
	struct dtest_reply b;
	int code = dtest_call(&D, "POST", "/api/v1/experiments?dry_run=1", ALICE, body, &b);
	CHECKF(code == 200, "n_layer at max: %d %.300s", code, b.body);
	dtest_reply_free(&b);
	/* every enum value of norm.type and model.arch is accepted */
	const cJSON *v, *arch = by_name(fields, "key", "model.arch");
	cJSON_ArrayForEach(v, cJSON_GetObjectItem(arch, "enum")) {
		snprintf(body, sizeof body, "{\"model\":{\"arch\":\"%s\"}}", v->valuestring);
		code = dtest_call(&D, "POST", "/api/v1/experiments?dry_run=1", ALICE, body, &b);
		CHECKF(code == 200, "arch %s: %d %.300s", v->valuestring, code, b.body);
		dtest_reply_free(&b);
	}
	dtest_reply_free(&r);
	/* every request body meets the CLI's strict scanner: cJSON alone stored "a\u0000b" as "a" */
	static const char *const strict[][2] = {
		{ "/api/v1/experiments?dry_run=1", "{\"name\":\"a\\u0000b\"}" },
		{ "/api/v1/sweeps?dry_run=1", "{\"base\":{\"name\":\"a\\u0000b\"},\"seeds\":[1]}" },
		{ "/api/v1/experiments?dry_run=1", "{\"seed\":1000000000000000000000000000000000000000000000000000000000000000}" },
	};
	for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
		struct dtest_reply q;
		int qc = dtest_call(&D, "POST", strict[i][0], ALICE, strict[i][1], &q);
		CHECKF(qc == 400 && strstr(q.body, "invalid_json") && strstr(q.body, "line 1"),
		       "%s %s: %d %.300s", strict[i][0], strict[i][1], qc, q.body);
		dtest_reply_free(&q);
	}
	/* the OpenAPI document still parses and describes the route */
	CHECK(dtest_call(&D, "GET", "/api/v1/openapi.json", NULL, NULL, &r) == 200);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "paths"), "/api/v1/schema") != NULL);
	/* its Spec schema carries the engine's lists: every arch, every norm type */
	const cJSON *sp = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json,
		"components"), "schemas"), "Spec");
	const cJSON *mp = cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "properties"), "model");
	const cJSON *ae = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(mp, "properties"),
		"arch"), "enum");
	CHECKF(cJSON_GetArraySize(ae) == 3 && has_string(ae, "vit"), "OpenAPI model.arch enum");
	const cJSON *np = cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "properties"), "norm");
	const cJSON *te = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(np, "properties"),
		"type"), "enum");
	CHECKF(cJSON_GetArraySize(te) == norm_table_len, "OpenAPI norm.type enum");
	/* every field of GET /api/v1/schema is in the Spec schema with its range and enum, and the
	 * statuses are the store's: both generated, nothing hand-copied to drift */
	struct dtest_reply sc;
	CHECK(dtest_call(&D, "GET", "/api/v1/schema", NULL, NULL, &sc) == 200);
	const cJSON *fl;
	int nf = 0, matched = 0;
	cJSON_ArrayForEach(fl, cJSON_GetObjectItem(sc.json, "fields")) {
		char key[160];
		snprintf(key, sizeof key, "%s", cJSON_GetObjectItem(fl, "key")->valuestring);
		const cJSON *o = sp;
		for (char *seg = key, *dot; o && seg; seg = dot ? dot + 1 : NULL) {
			dot = strchr(seg, '.');
			if (dot)
				*dot = '\0';
			o = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "properties"), seg);
		}
		nf++;
		const cJSON *e1 = cJSON_GetObjectItem(fl, "enum"), *e2 = cJSON_GetObjectItem(o, "enum");
		const cJSON *m1 = cJSON_GetObjectItem(fl, "max"), *m2 = cJSON_GetObjectItem(o, "maximum");
		if (o && cJSON_Compare(cJSON_GetObjectItem(fl, "type"), cJSON_GetObjectItem(o, "type"), 1) &&
		    (!e1 || cJSON_Compare(e1, e2, 1)) && (!m1 || cJSON_Compare(m1, m2, 1)))
			matched++;
		else
			fprintf(stderr, "OpenAPI Spec lacks or differs on %s\n",
				cJSON_GetObjectItem(fl, "key")->valuestring);
	}
	CHECKF(nf > 40 && matched == nf, "%d of %d fields in the OpenAPI Spec", matched, nf);
	const cJSON *status = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json,
		"components"), "schemas"), "Status");
	CHECKF(cJSON_Compare(cJSON_GetObjectItem(status, "enum"), cJSON_GetObjectItem(sc.json,
		"statuses"), 1), "OpenAPI Status enum is the store's statuses");
	const cJSON *health = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json,
		"components"), "schemas"), "Health");
	CHECKF(cJSON_Compare(cJSON_GetObjectItem(health, "enum"), cJSON_GetObjectItem(sc.json,
		"health"), 1) && has_string(cJSON_GetObjectItem(sc.json, "health"), "dead"),
	       "OpenAPI Health enum is the engine's health findings");
	dtest_reply_free(&sc);
	dtest_reply_free(&r);
}

/* ---------- 3. a sweep over model.arch × norm.type ---------- */

static void test_arch_sweep(void)
{
	struct dtest_reply r;
	char body[2048], path[128];
	/* data.path stays "kjv" (the test's corpus under that name, see main): a path set here
	 * would be the text cells' file and the vit cells' directory at once */
	snprintf(body, sizeof body,
		 "{\"base\":{\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":2,\"patch\":7},"
		 "\"train\":{\"steps\":12,\"batch_size\":4,\"warmup\":2},"
		 "\"probe\":{\"every\":2,\"depth_every\":6,\"samples_every\":6,\"samples\":16,"
		 "\"val_every\":6,\"val_batches\":1}},"
		 "\"grid\":{\"model.arch\":[\"gpt\",\"llama\",\"vit\"],"
		 "\"norm.type\":[\"layernorm\",\"dyt\"]},\"name\":\"arches\"}");
	int code = dtest_call(&D, "POST", "/api/v1/sweeps", ALICE, body, &r);
	CHECKF(code == 201 && dtest_num(r.json, "count") == 6, "%d %.400s", code, r.body);
	int64_t id = (int64_t)dtest_num(r.json, "id");
	dtest_reply_free(&r);
	if (code != 201)
		return;
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld", (long long)id);
	double until = dtest_now() + 300;
	int ok = 0, bad = 0;
	while (dtest_now() < until) {
		dtest_call(&D, "GET", path, NULL, NULL, &r);
		const cJSON *counts = cJSON_GetObjectItem(r.json, "counts");
		ok = (int)dtest_num(counts, "succeeded");
		bad = (int)(dtest_num(counts, "failed") + dtest_num(counts, "diverged") +
			    dtest_num(counts, "cancelled"));
		dtest_reply_free(&r);
		if (ok + bad >= 6)
			break;
		dtest_sleep_ms(250);
	}
	CHECKF(ok == 6, "%d of 6 cells succeeded, %d failed", ok, bad);
	/* each cell's stored spec carries its arch; the vit ones recorded accuracy */
	dtest_call(&D, "GET", path, NULL, NULL, &r);
	const cJSON *c;
	int arches[3] = { 0 }, acc = 0;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(r.json, "cells")) {
		char ep[128];
		struct dtest_reply e;
		snprintf(ep, sizeof ep, "/api/v1/experiments/%lld", (long long)dtest_num(c, "id"));
		dtest_call(&D, "GET", ep, NULL, NULL, &e);
		const char *a = dtest_str(cJSON_GetObjectItem(cJSON_GetObjectItem(e.json, "spec"), "model"),
					  "arch");
		int k = strcmp(a, "gpt") == 0 ? 0 : strcmp(a, "llama") == 0 ? 1 :
			strcmp(a, "vit") == 0 ? 2 : -1;
		CHECKF(k >= 0, "cell arch '%s'", a);
		if (k >= 0)
			arches[k]++;
		dtest_reply_free(&e);
		if (k == 2) {
			struct dtest_reply m;
			snprintf(ep, sizeof ep, "/api/v1/experiments/%lld/metrics?names=val_acc,train_acc",
				 (long long)dtest_num(c, "id"));
			int mc = dtest_call(&D, "GET", ep, NULL, NULL, &m);
			if (mc == 200 && strstr(m.body, "val_acc") && strstr(m.body, "train_acc"))
				acc++;
			else
				fprintf(stderr, "vit metrics: %d %.300s\n", mc, m.body);
			dtest_reply_free(&m);
		}
	}
	dtest_reply_free(&r);
	CHECKF(arches[0] == 2 && arches[1] == 2 && arches[2] == 2, "arches %d %d %d", arches[0],
	       arches[1], arches[2]);
	CHECKF(acc == 2, "%d of 2 vit cells have accuracy series", acc);
	/* the list shows each run's arch and filters by it */
	static const char *const want[] = { "gpt", "llama", "vit" };
	for (int k = 0; k < 3; k++) {
		char lp[128];
		snprintf(lp, sizeof lp, "/api/v1/experiments?sweep=%lld&arch=%s", (long long)id, want[k]);
		dtest_call(&D, "GET", lp, NULL, NULL, &r);
		const cJSON *items = cJSON_GetObjectItem(r.json, "items");
		int n = 0, right = 0;
		cJSON_ArrayForEach(c, items) {
			n++;
			right += strcmp(dtest_str(c, "arch"), want[k]) == 0;
		}
		CHECKF(n == 2 && right == 2, "arch=%s lists %d runs, %d of that arch", want[k], n, right);
		dtest_reply_free(&r);
	}
}

int main(void)
{
	test_engine_schema();
	if (dtest_init(&D, "schema") != 0)
		return 1;
	dtest_write_corpus(&D);
	/* the daemon reads the default corpus "kjv" as <data-dir>/kjv.txt */
	char kjv[128];
	snprintf(kjv, sizeof kjv, "%s/kjv.txt", D.tmp);
	CHECK(symlink("corpus.txt", kjv) == 0);   /* relative: a data root refuses links that leave it by an absolute path */
	char tokens[128];
	snprintf(tokens, sizeof tokens, "%s/tokens", D.tmp);
	dtest_write_file(tokens, ALICE " alice user\n");
	const char *args[] = { "--workers", "2", "--thread_budget", "2", NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start (see %s)", D.log);
		return test_finish("schema");
	}
	test_served_ranges();
	test_arch_sweep();
	int code = dtest_stop(&D, SIGTERM);
	CHECKF(code == 0, "SIGTERM: exit %d", code);
	dtest_cleanup(&D, test_fail_count == 0);
	return test_finish("schema");
}
