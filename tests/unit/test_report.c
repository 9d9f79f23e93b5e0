/*
 * test_report — the recipes in config/recipes/ and the sweep report, through the real normlabd on
 * loopback:
 *  1. every recipe validates by dry run (POST /api/v1/sweeps?dry_run=1) with the count its grid
 *     and seeds give; data.path "kjv" becomes the test's own "corpus.txt" in the daemon's data root;
 *  2. a recipe with mistakes is refused with 400 invalid_sweep naming each field;
 *  3. every recipe, scaled down (tiny model, 100 steps), runs end to end and its report evaluates
 *     every check: each holds or fails with its numbers, none is left not_yet; the figures hold
 *     one group per value of group_by; a report asked for while cells are still queued says
 *     not_yet for the checks on them;
 *  4. `normlab sweep` + `normlab report --json` on one scaled-down recipe without the daemon give
 *     the same check values as the daemon's report (same engine, same data, same numbers).
 * Binaries from $NORMLAB_BIN (default bin/); recipes from config/recipes/ (run from the repo root).
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../lib/dtest.h"
#include "../test.h"

#define TOKEN "tok-report-0123456789abcdef"
#define RECIPES_DIR "config/recipes"
#define MAX_RECIPES 32

static struct dtest D;

struct recipe_file {
	char name[128];
	cJSON *req;
};

static struct recipe_file R[MAX_RECIPES];
static int n_recipes;

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct recipe_file *)a)->name, ((const struct recipe_file *)b)->name);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static void load_recipes(void)
{
	DIR *d = opendir(RECIPES_DIR);
	struct dirent *e;
	CHECKF(d != NULL, "cannot open %s (run from the repository root)", RECIPES_DIR);
	while (d && (e = readdir(d)) && n_recipes < MAX_RECIPES) {
		size_t n = strlen(e->d_name);
		if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		char path[400];
		snprintf(path, sizeof path, "%s/%s", RECIPES_DIR, e->d_name);
		char *text = read_all(path);
		cJSON *req = text ? cJSON_Parse(text) : NULL;
		free(text);
		CHECKF(req != NULL, "%s is not JSON", path);
		if (!req)
			continue;
		snprintf(R[n_recipes].name, sizeof R[n_recipes].name, "%s", e->d_name);
		R[n_recipes++].req = req;
	}
	if (d)
		closedir(d);
	qsort(R, (size_t)n_recipes, sizeof R[0], cmp_name);
	CHECKF(n_recipes >= 6, "%d recipes in %s, want the six seed claims", n_recipes, RECIPES_DIR);
}

static cJSON *obj(cJSON *o, const char *k)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!c)
		c = cJSON_AddObjectToObject(o, k);
	return c;
}

static void set_num(cJSON *o, const char *k, double v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddNumberToObject(o, k, v);
}

/* The data path the tests use: "kjv" (the default corpus) → the test's corpus.txt. */
static void test_data(cJSON *req, const char *path)
{
	cJSON *base = obj(req, "base");
	cJSON *data = cJSON_GetObjectItemCaseSensitive(base, "data");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(data, "path");
	if (cJSON_IsString(p) && strcmp(p->valuestring, "kjv") == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(data, "path");
		cJSON_AddStringToObject(data, "path", path);
	}
}

/* Scaled down to seconds: width 32 (16 for vit), sequences of 32 tokens (vit: 14×14 patches),
 * batch 4, 100 steps, probes often. Depth, sites, grid and checks stay as they are. */
static void scale_down(cJSON *req)
{
	cJSON *b = obj(req, "base"), *m = obj(b, "model"), *t = obj(b, "train"), *p = obj(b, "probe");
	const cJSON *arch = cJSON_GetObjectItemCaseSensitive(m, "arch");
	int vit = cJSON_IsString(arch) && strcmp(arch->valuestring, "vit") == 0;
	set_num(m, "d_model", vit ? 16 : 32);
	set_num(m, "n_head", 2);
	if (vit)
		set_num(m, "patch", 14);
	else
		set_num(m, "seq_len", 32);
	set_num(t, "steps", 100);
	set_num(t, "batch_size", vit ? 8 : 4);
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "warmup");
	if (cJSON_IsNumber(w) && w->valuedouble > 10)
		set_num(t, "warmup", 10);
	set_num(p, "every", 5);
	set_num(p, "depth_every", 25);
	set_num(p, "samples_every", 50);
	set_num(p, "samples", 64);
	set_num(p, "val_every", 50);
	set_num(p, "val_batches", 2);
	/* a grid or zip over warmup keeps its meaning: 0 against "some" */
	static const char *const axes[] = { "grid", "zip" };
	for (int a = 0; a < 2; a++) {
		cJSON *wl = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req,
			axes[a]), "train.warmup");
		cJSON *x;
		cJSON_ArrayForEach(x, wl)
			if (cJSON_IsNumber(x) && x->valuedouble > 10)
				cJSON_SetNumberValue(x, 10);
	}
	/* ... and so do the checks that name a warmup value */
	cJSON *checks = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "recipe"), "checks");
	cJSON *c;
	cJSON_ArrayForEach(c, checks) {
		static const char *const sides[] = { "group", "than" };
		for (int s = 0; s < 2; s++) {
			cJSON *g = cJSON_GetObjectItemCaseSensitive(c, sides[s]);
			cJSON *gw = cJSON_GetObjectItemCaseSensitive(g, "train.warmup");
			if (cJSON_IsNumber(gw) && gw->valuedouble > 10)
				cJSON_SetNumberValue(gw, 10);
		}
	}
}

/* Cells of a request before its exclude list: the grid's product × the zip's length × seeds. */
static int expected_cells(const cJSON *req)
{
	int n = 1;
	const cJSON *ax;
	cJSON_ArrayForEach(ax, cJSON_GetObjectItemCaseSensitive(req, "grid"))
		n *= cJSON_GetArraySize(ax);
	const cJSON *zip = cJSON_GetObjectItemCaseSensitive(req, "zip");
	if (zip && zip->child)
		n *= cJSON_GetArraySize(zip->child);
	const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(req, "seeds");
	if (seeds)
		n *= cJSON_GetArraySize(seeds);
	return n;
}

static int post(const char *path, const cJSON *body, struct dtest_reply *r)
{
	char *text = cJSON_PrintUnformatted(body);
	int st = dtest_call(&D, "POST", path, TOKEN, text, r);
	free(text);
	return st;
}

/* ---------- 1. dry runs ---------- */

static void test_dry_runs(void)
{
	for (int i = 0; i < n_recipes; i++) {
		struct dtest_reply r;
		cJSON *req = cJSON_Duplicate(R[i].req, 1);
		test_data(req, "corpus.txt");
		int st = post("/api/v1/sweeps?dry_run=1", req, &r);
		CHECKF(st == 200, "%s: dry run %d %s", R[i].name, st, r.body);
		/* an exclude list takes some cells out, never all */
		int want = expected_cells(req), got = (int)dtest_num(r.json, "count");
		int excl = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(req, "exclude")) > 0;
		CHECKF(excl ? got > 0 && got < want : got == want, "%s: %d cells, want %s%d", R[i].name,
		       got, excl ? "fewer than " : "", want);
		const cJSON *rc = cJSON_GetObjectItemCaseSensitive(req, "recipe");
		CHECKF(cJSON_IsObject(rc) && dtest_str(rc, "claim")[0] && dtest_str(rc, "paper")[0] &&
		       dtest_str(rc, "figure")[0] && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rc, "checks")) > 0,
		       "%s: a recipe names its claim, paper, figure and checks", R[i].name);
		dtest_reply_free(&r);
		cJSON_Delete(req);
	}
}

/* ---------- 2. mistakes ---------- */

static void test_bad_recipe(void)
{
	struct dtest_reply r;
	const char *body =
		"{\"base\":{\"data\":{\"path\":\"corpus.txt\"}},\"grid\":{\"norm.placement\":[\"pre\",\"post\"]},"
		"\"recipe\":{\"claim\":\"c\",\"paper\":\"p\",\"figure\":\"f\",\"checks\":["
		"{\"check\":\"ratio\",\"metric\":\"resid.var\",\"of\":\"depth[-1]\",\"group\":{\"norm.placement\":\"pre\"},"
		"\"op\":\"=>\",\"value\":2,\"text\":\"t\"},"
		"{\"check\":\"value\",\"metric\":\"loss\",\"group\":{\"norm.placement\":\"peri\"},\"op\":\"<\",\"value\":2,"
		"\"text\":\"t\"}]}}";
	int st = dtest_call(&D, "POST", "/api/v1/sweeps?dry_run=1", TOKEN, body, &r);
	CHECKF(st == 400 && strcmp(dtest_str(r.json, "code"), "invalid_sweep") == 0 &&
	       strstr(r.body, "\"/recipe/checks/0/of\"") && strstr(r.body, "\"/recipe/checks/0/op\""),
	       "%d %s", st, r.body);
	dtest_reply_free(&r);
	/* once the shape is right, a group that selects no cell is named */
	cJSON *req = cJSON_Parse(body);
	cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "recipe"), "checks"), 0);
	cJSON_ReplaceItemInObjectCaseSensitive(c0, "of", cJSON_CreateString("depth[-1]/depth[0]"));
	cJSON_ReplaceItemInObjectCaseSensitive(c0, "op", cJSON_CreateString(">="));
	st = post("/api/v1/sweeps?dry_run=1", req, &r);
	CHECKF(st == 400 && strstr(r.body, "\"/recipe/checks/1/group\"") && strstr(r.body, "matches no cell"),
	       "%d %s", st, r.body);
	dtest_reply_free(&r);
	cJSON_Delete(req);
	/* nothing was stored */
	dtest_call(&D, "GET", "/api/v1/sweeps", TOKEN, NULL, &r);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "items")) == 0);
	dtest_reply_free(&r);
}

/* The OpenAPI document: the report's path, and the Recipe enums filled from recipe.c's tables
 * (each value one the validator accepts: a dry run with it passes). */
static void test_openapi(void)
{
	struct dtest_reply r;
	CHECK(dtest_call(&D, "GET", "/api/v1/openapi.json", NULL, NULL, &r) == 200);
	const cJSON *paths = cJSON_GetObjectItemCaseSensitive(r.json, "paths");
	CHECK(cJSON_GetObjectItemCaseSensitive(paths, "/api/v1/sweeps/{id}/report") != NULL);
	const cJSON *sch = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.json, "components"), "schemas");
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(sch, "Recipe"), "properties"), "checks"), "items"), "properties");
	const cJSON *ops = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(props, "op"), "enum");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sch, "CheckStatus"), "enum");
	CHECKF(cJSON_GetArraySize(ops) == 4 && cJSON_GetArraySize(st) == 3, "op enum %d, CheckStatus %d",
	       cJSON_GetArraySize(ops), cJSON_GetArraySize(st));
	const cJSON *op;
	cJSON_ArrayForEach(op, ops) {
		char body[768];
		struct dtest_reply q;
		snprintf(body, sizeof body, "{\"base\":{\"data\":{\"path\":\"corpus.txt\"}},\"recipe\":{\"claim\":\"c\","
			 "\"paper\":\"p\",\"figure\":\"f\",\"checks\":[{\"check\":\"value\",\"metric\":\"loss\","
			 "\"group\":{},\"op\":\"%s\",\"value\":1,\"text\":\"t\"}]}}", op->valuestring);
		int code = dtest_call(&D, "POST", "/api/v1/sweeps?dry_run=1", TOKEN, body, &q);
		CHECKF(code == 200, "op %s from the document: %d %s", op->valuestring, code, q.body);
		dtest_reply_free(&q);
	}
	dtest_reply_free(&r);
}

/* ---------- 3. end to end ---------- */

static int wait_done(int64_t id, int n, double timeout)
{
	char path[96];
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld", (long long)id);
	double until = dtest_now() + timeout;
	int done = 0;
	while (dtest_now() < until) {
		struct dtest_reply r;
		dtest_call(&D, "GET", path, TOKEN, NULL, &r);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(r.json, "counts");
		done = (int)(dtest_num(c, "succeeded") + dtest_num(c, "diverged") + dtest_num(c, "failed") +
			     dtest_num(c, "cancelled") + dtest_num(c, "dead"));
		dtest_reply_free(&r);
		if (done >= n)
			break;
		dtest_sleep_ms(200);
	}
	return done;
}

/* The checks' group values of a report, for comparing two reports: left.mean per check. */
static void check_values(const cJSON *rep, double *v, int cap)
{
	const cJSON *c;
	int i = 0;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rep, "checks")) {
		if (i >= cap)
			break;
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "left");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(l, "mean");
		v[i++] = cJSON_IsNumber(m) ? m->valuedouble :
			 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "infinite")) ? INFINITY : NAN;
	}
}

static int64_t ids[MAX_RECIPES];
static int cells[MAX_RECIPES];
static cJSON *small[MAX_RECIPES];

static void test_end_to_end(void)
{
	struct dtest_reply r;
	char path[128];
	for (int i = 0; i < n_recipes; i++) {
		small[i] = cJSON_Duplicate(R[i].req, 1);
		test_data(small[i], "corpus.txt");
		scale_down(small[i]);
		int st = post("/api/v1/sweeps", small[i], &r);
		CHECKF(st == 201, "%s: %d %s", R[i].name, st, r.body);
		ids[i] = (int64_t)dtest_num(r.json, "id");
		cells[i] = (int)dtest_num(r.json, "count");   /* after its exclude list */
		dtest_reply_free(&r);
	}
	/* the last sweep is still queued behind the others: its report cannot decide yet */
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld/report", (long long)ids[n_recipes - 1]);
	CHECK(dtest_call(&D, "GET", path, TOKEN, NULL, &r) == 200);
	const cJSON *sum = cJSON_GetObjectItemCaseSensitive(r.json, "summary");
	CHECKF(dtest_num(sum, "not_yet") >= 1 && strstr(r.body, "is not finished"), "%.400s", r.body);
	dtest_reply_free(&r);

	for (int i = 0; i < n_recipes; i++) {
		int n = cells[i];
		CHECKF(n > 0 && wait_done(ids[i], n, 300) == n, "%s: every cell finished", R[i].name);
		snprintf(path, sizeof path, "/api/v1/sweeps/%lld/report", (long long)ids[i]);
		int st = dtest_call(&D, "GET", path, TOKEN, NULL, &r);
		CHECKF(st == 200, "%s: report %d %.300s", R[i].name, st, r.body);
		const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r.json, "checks");
		int want = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(small[i], "recipe"), "checks"));
		CHECKF(cJSON_GetArraySize(checks) == want, "%s: %d checks evaluated, want %d", R[i].name,
		       cJSON_GetArraySize(checks), want);
		const cJSON *c;
		cJSON_ArrayForEach(c, checks) {
			const char *s = dtest_str(c, "status");
			const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "left");
			int numbered = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(l, "mean")) ||
				       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "infinite"));
			CHECKF((strcmp(s, "holds") == 0 || strcmp(s, "fails") == 0) && numbered &&
			       dtest_num(l, "n") >= 1 && dtest_str(c, "reason")[0],
			       "%s check %g (%s): %s: %s", R[i].name, dtest_num(c, "index"), dtest_str(c, "text"),
			       s, dtest_str(c, "reason"));
			printf("%s #%g %s: %s\n", R[i].name, dtest_num(c, "index"), s, dtest_str(c, "reason"));
		}
		/* figures: one entry per recipe figure, one group per group_by value */
		const cJSON *figs = cJSON_GetObjectItemCaseSensitive(r.json, "figures");
		const cJSON *rf = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(small[i], "recipe"), "figures");
		CHECKF(cJSON_GetArraySize(figs) == cJSON_GetArraySize(rf), "%s: figures", R[i].name);
		int groups = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "groups"));
		const cJSON *f;
		cJSON_ArrayForEach(f, figs) {
			CHECKF(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "groups")) == groups,
			       "%s: figure %s has a group each", R[i].name, dtest_str(f, "kind"));
			/* some group has the data (a metric of some norm kinds only, e.g.
			 * val_loss_trainmode, is absent from the others' groups) */
			int series = 0, profiles = 0;
			const cJSON *g;
			cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(f, "groups")) {
				int ns = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "step"));
				int np = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "profiles"));
				series = ns > series ? ns : series;
				profiles = np > profiles ? np : profiles;
			}
			if (strcmp(dtest_str(f, "kind"), "series") == 0)
				CHECKF(series >= 2, "%s: series %s has points", R[i].name, dtest_str(f, "metric"));
			if (strcmp(dtest_str(f, "kind"), "depth") == 0)
				CHECKF(profiles >= 2, "%s: depth %s has profiles", R[i].name, dtest_str(f, "metric"));
		}
		dtest_reply_free(&r);
	}
}

/* ---------- 4. the CLI agrees ---------- */

static void test_cli_agrees(void)
{
	int k = 0;   /* the first recipe */
	char file[512], out[512], cmd[4096], path[128];
	struct dtest_reply r;
	cJSON *req = cJSON_Duplicate(R[k].req, 1);
	char corpus[300];
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", D.tmp);
	test_data(req, corpus);
	scale_down(req);
	snprintf(file, sizeof file, "%s/cli_sweep.json", D.tmp);
	snprintf(out, sizeof out, "%s/cli_out", D.tmp);
	char *text = cJSON_Print(req);
	dtest_write_file(file, text);
	free(text);
	snprintf(cmd, sizeof cmd, "%s/normlab sweep %s --out %s > %s/cli.log 2>&1 && %s/normlab report %s --json > %s/rep.json 2>>%s/cli.log",
		 D.bindir, file, out, D.tmp, D.bindir, out, D.tmp, D.tmp);
	int st = system(cmd);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "normlab sweep/report: exit %d (see %s/cli.log)", st, D.tmp);
	char rp[600];
	snprintf(rp, sizeof rp, "%s/rep.json", D.tmp);
	char *rt = read_all(rp);
	cJSON *cli = rt ? cJSON_Parse(rt) : NULL;
	free(rt);
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld/report", (long long)ids[k]);
	dtest_call(&D, "GET", path, TOKEN, NULL, &r);
	double a[64], b[64];
	int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "checks"));
	CHECKF(cli && n > 0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cli, "checks")) == n,
	       "the CLI's report has the daemon's %d checks", n);
	check_values(r.json, a, 64);
	check_values(cli, b, 64);
	for (int i = 0; cli && i < n && i < 64; i++)
		CHECKF(a[i] == b[i] || (isinf(a[i]) && isinf(b[i])) ||
		       fabs(a[i] - b[i]) <= 1e-9 * fabs(a[i]), "check %d: daemon %.17g, CLI %.17g", i, a[i], b[i]);
	dtest_reply_free(&r);
	cJSON_Delete(cli);
	cJSON_Delete(req);
}

int main(void)
{
	if (dtest_init(&D, "report") != 0)
		return 1;
	dtest_write_corpus(&D);
	char tokens[128];
	snprintf(tokens, sizeof tokens, "%s/tokens", D.tmp);
	dtest_write_file(tokens, TOKEN " tester admin\n");
	const char *args[] = { "--workers", "2", "--thread_budget", "2", NULL };
	load_recipes();
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start (see %s)", D.log);
		return test_finish("test_report");
	}
	test_dry_runs();
	test_bad_recipe();
	test_openapi();
	test_end_to_end();
	test_cli_agrees();
	dtest_stop(&D, 15);
	dtest_cleanup(&D, test_fail_count == 0);
	for (int i = 0; i < n_recipes; i++) {
		cJSON_Delete(R[i].req);
		cJSON_Delete(small[i]);
	}
	return test_finish("test_report");
}
