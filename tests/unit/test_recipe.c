/*
 * test_recipe — recipes and reports without a daemon: depth expressions against hand-computed
 * values, a recipe's validation errors (each naming its field), groups that select no cell, and
 * report_build over an in-memory source: a check's group value is the mean over its seeds, a
 * compare check's threshold, not_yet while a cell runs or lacks the metric, a diverged cell as
 * +inf or skipped, figures' seed bands (mean, min, max) and depth profiles at spread steps.
 * Single-threaded.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../test.h"
#include "nl.h"
#include "recipe.h"
#include "report.h"
#include "sweep.h"

static double ev(const char *expr, const double *v, int n)
{
	struct recipe_expr e;
	char why[200];
	if (recipe_expr_parse(expr, &e, why, sizeof why) != 0) {
		fprintf(stderr, "parse %s: %s\n", expr, why);
		return -12345;
	}
	return recipe_expr_eval(&e, v, n);
}

static int parses(const char *expr)
{
	struct recipe_expr e;
	char why[200];
	return recipe_expr_parse(expr, &e, why, sizeof why) == 0;
}

static void test_expressions(void)
{
	const double v[6] = { 1, 2, 4, 8, 16, 32 };
	CHECK(ev("depth[0]", v, 6) == 1);
	CHECK(ev("depth[-1]", v, 6) == 32);
	CHECK(ev("depth[-1]/depth[0]", v, 6) == 32);
	CHECK(ev("depth[ 2 ] - depth[1]", v, 6) == 2);
	CHECK(ev("mean", v, 6) == 63.0 / 6);
	CHECK(ev("max/min", v, 6) == 32);
	CHECK(ev("sum[:2]", v, 6) == 3);
	CHECK(ev("mean[h:]", v, 6) == (8 + 16 + 32) / 3.0);
	CHECK(ev("mean[:h]/mean[h:]", v, 6) == (7 / 3.0) / (56 / 3.0));
	CHECK(ev("max[1:-1]", v, 6) == 16);
	CHECK(ev("min[-2:]", v, 6) == 16);
	CHECK(isnan(ev("depth[6]", v, 6)));       /* past the last layer */
	CHECK(isnan(ev("mean[4:2]", v, 6)));      /* an empty slice */
	CHECK(!parses("depth[1"));
	CHECK(!parses("avg"));
	CHECK(!parses("depth[0]*2"));
	CHECK(!parses("mean[1;2]"));
	CHECK(!parses("depth[0]/depth[1]/depth[2]"));
}

/* Collects recipe_validate's problems as "pointer: msg" lines. */
struct errs {
	int n;
	char all[4096];
};

static void collect(void *ctx, const char *pointer, const char *msg)
{
	struct errs *e = ctx;
	size_t l = strlen(e->all);
	snprintf(e->all + l, sizeof e->all - l, "%s: %s\n", pointer, msg);
	e->n++;
}

static int validate(const char *json, struct errs *e)
{
	cJSON *r = cJSON_Parse(json);
	memset(e, 0, sizeof *e);
	if (!r)
		return -1;
	int n = recipe_validate(r, collect, e);
	cJSON_Delete(r);
	return n;
}

#define GOOD_CHECK "{\"check\":\"ratio\",\"metric\":\"resid.var\",\"of\":\"depth[-1]/depth[0]\"," \
	"\"group\":{\"norm.placement\":\"pre\"},\"op\":\">=\",\"value\":2,\"text\":\"grows\"}"

static void test_validation(void)
{
	struct errs e;
	CHECKF(validate("{\"claim\":\"c\",\"paper\":\"p\",\"figure\":\"f\",\"checks\":[" GOOD_CHECK "]}",
			&e) == 0, "%s", e.all);
	/* each problem names its field */
	validate("{\"paper\":\"p\",\"figure\":\"\",\"checks\":[], \"colour\":1}", &e);
	CHECKF(strstr(e.all, "/recipe/claim: required") && strstr(e.all, "/recipe/figure: expected a string") &&
	       strstr(e.all, "/recipe/checks: expected an array of 1..32") &&
	       strstr(e.all, "/recipe/colour: unknown field"), "%s", e.all);
	validate("{\"claim\":\"c\",\"paper\":\"p\",\"figure\":\"f\",\"checks\":[{\"check\":\"ratio\","
		 "\"metric\":\"resid var\",\"of\":\"depth[-1]\",\"group\":[],\"op\":\"=\",\"value\":\"2\","
		 "\"text\":\"t\",\"than\":{}}]}", &e);
	CHECKF(strstr(e.all, "/recipe/checks/0/metric:") && strstr(e.all, "/recipe/checks/0/of: a ratio check needs a quotient") &&
	       strstr(e.all, "/recipe/checks/0/group: expected an object") && strstr(e.all, "/recipe/checks/0/op:") &&
	       strstr(e.all, "/recipe/checks/0/value: expected a finite number") &&
	       strstr(e.all, "/recipe/checks/0/than: only a compare check"), "%s", e.all);
	validate("{\"claim\":\"c\",\"paper\":\"p\",\"figure\":\"f\",\"checks\":[{\"check\":\"compare\","
		 "\"metric\":\"loss\",\"group\":{},\"op\":\"<\",\"value\":1,\"text\":\"t\",\"at\":-3}],"
		 "\"figures\":[{\"kind\":\"scurve\",\"metric\":\"loss\"},{\"kind\":\"depth\",\"metric\":\"x\",\"steps\":9}]}", &e);
	CHECKF(strstr(e.all, "/recipe/checks/0/than: required for a compare") &&
	       strstr(e.all, "/recipe/checks/0/value: a compare check") && strstr(e.all, "/recipe/checks/0/at:") &&
	       strstr(e.all, "/recipe/figures/0/site: required") && strstr(e.all, "/recipe/figures/0/metric: an scurve") &&
	       strstr(e.all, "/recipe/figures/1/steps: expected an integer in 1..8"), "%s", e.all);
}

/* Through sweep_expand: the recipe is accepted as a member, its errors are invalid_sweep at
 * /recipe/..., and a group that selects no cell is refused. */
static void test_in_sweep(void)
{
	struct sweep_limits l;
	struct sweep_plan p;
	struct sweep_errors e;
	memset(&l, 0, sizeof l);
	l.max_cells = 100;
	l.max_threads = 8;
	const char *ok = "{\"grid\":{\"norm.placement\":[\"pre\",\"lns\"]},\"seeds\":[1,2],\"recipe\":"
			 "{\"claim\":\"c\",\"paper\":\"p\",\"figure\":\"f\",\"checks\":[" GOOD_CHECK "]}}";
	cJSON *req = cJSON_Parse(ok);
	CHECKF(sweep_expand(req, &l, &p, &e) == 0 && p.n == 4, "%s", e.detail);
	sweep_plan_free(&p);
	cJSON_Delete(req);
	req = cJSON_Parse("{\"grid\":{\"norm.placement\":[\"pre\",\"lns\"]},\"recipe\":{\"claim\":\"c\","
			  "\"paper\":\"p\",\"figure\":\"f\",\"checks\":[{\"check\":\"value\",\"metric\":\"loss\","
			  "\"group\":{\"norm.placement\":\"peri\"},\"op\":\"<\",\"value\":3,\"text\":\"t\"},"
			  "{\"check\":\"value\",\"metric\":\"loss\",\"group\":{\"norm.placment\":\"pre\"},"
			  "\"op\":\"<\",\"value\":3,\"text\":\"t\"}]}}");
	CHECK(sweep_expand(req, &l, &p, &e) == NL_EINVAL);
	CHECKF(e.status == 400 && strcmp(e.code, "invalid_sweep") == 0 && e.n == 2 &&
	       strcmp(e.e[0].pointer, "/recipe/checks/0/group") == 0 && strstr(e.e[0].msg, "matches no cell") &&
	       strstr(e.e[1].msg, "no cell's spec has a field \"norm.placment\""), "%s | %s", e.detail,
	       e.n > 1 ? e.e[1].msg : "");
	cJSON_Delete(req);
	req = cJSON_Parse("{\"recipe\":[]}");
	CHECK(sweep_expand(req, &l, &p, &e) == NL_EINVAL && strcmp(e.e[0].pointer, "/recipe") == 0);
	cJSON_Delete(req);
}

/* ---- report_build over an in-memory source ---- */

/* Cell c stores: loss at steps 10, 20 (value base + step/10 ... ), resid.var rows at 10 and 20 of
 * 3 layers. Placement pre: v = seed·(1, 2, 4)·step/10; lns: seed·(1, 1, 1). */
struct mem {
	int missing_cell;        /* this cell has no resid.var (-1 none) */
};

static double seed_of(const struct report_cell *c)
{
	return recipe_path_get(c->spec, "seed")->valuedouble;
}

static int is_pre(const struct report_cell *c)
{
	return strcmp(recipe_path_get(c->spec, "norm.placement")->valuestring, "pre") == 0;
}

static int mem_depth(void *ctx, const struct report_cell *c, const char *name, report_row_fn cb,
		     void *cbx)
{
	struct mem *m = ctx;
	if (strcmp(name, "resid.var") != 0 || c->cell == m->missing_cell)
		return 0;
	for (int s = 10; s <= 20; s += 10) {
		double v[3];
		for (int l = 0; l < 3; l++)
			v[l] = seed_of(c) * (is_pre(c) ? (double)(1 << l) * s / 10 : 1);
		if (cb(cbx, s, v, 3))
			break;
	}
	return 0;
}

static int mem_scalar(void *ctx, const struct report_cell *c, const char *name, report_point_fn cb,
		      void *cbx)
{
	(void)ctx;
	if (strcmp(name, "loss") != 0)
		return 0;
	for (int s = 10; s <= 20; s += 10)
		if (cb(cbx, s, (is_pre(c) ? 3 : 2) + seed_of(c) / 10 - s / 100.0))
			break;
	return 0;
}

static int mem_samples(void *ctx, const struct report_cell *c, const char *site,
		       report_samples_fn cb, void *cbx)
{
	(void)ctx;
	(void)c;
	(void)site;
	const float x[2] = { -1, 1 }, y[2] = { -0.5f, 0.5f };
	const int32_t ch[2] = { 3, 4 };
	return cb(cbx, 20, x, y, ch, 2) < 0 ? -1 : 0;
}

static cJSON *find_check(const cJSON *rep, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rep, "checks"), i);
}

static const char *status_of(const cJSON *rep, int i)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(find_check(rep, i), "status");
	return cJSON_IsString(s) ? s->valuestring : "?";
}

static double num_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void test_report(void)
{
	const char *req_text =
		"{\"grid\":{\"norm.placement\":[\"pre\",\"lns\"]},\"seeds\":[1,2],\"recipe\":{\"claim\":\"c\","
		"\"paper\":\"p\",\"figure\":\"f\",\"checks\":["
		/* 0: pre's last/first layer at the last step: mean over seeds of 4 = 4 */
		"{\"check\":\"ratio\",\"metric\":\"resid.var\",\"of\":\"depth[-1]/depth[0]\",\"group\":{\"norm.placement\":\"pre\"},\"op\":\">=\",\"value\":4,\"text\":\"t\"},"
		/* 1: lns's last layer (mean of 1 and 2 = 1.5) below pre's (mean of 8 and 16 = 12) */
		"{\"check\":\"compare\",\"metric\":\"resid.var\",\"of\":\"depth[-1]\",\"group\":{\"norm.placement\":\"lns\"},\"than\":{\"norm.placement\":\"pre\"},\"op\":\"<\",\"factor\":0.1,\"text\":\"t\"},"
		/* 2: the scalar at step 15 (the point at 10): pre 3.0 and 3.1 → 3.05 > 3.04 */
		"{\"check\":\"value\",\"metric\":\"loss\",\"at\":15,\"group\":{\"norm.placement\":\"pre\"},\"op\":\">\",\"value\":3.04,\"text\":\"t\"},"
		/* 3: pre's last layer at step 20 (mean 12) is 2× its value at step 10 (mean 6): > 1.9× */
		"{\"check\":\"compare\",\"metric\":\"resid.var\",\"of\":\"depth[-1]\",\"group\":{\"norm.placement\":\"pre\"},\"than\":{\"norm.placement\":\"pre\"},\"than_at\":10,\"op\":\">\",\"factor\":1.9,\"text\":\"t\"},"
		/* 4: a metric no cell has */
		"{\"check\":\"value\",\"metric\":\"nothing\",\"group\":{},\"op\":\"<\",\"value\":1,\"text\":\"t\"}],"
		"\"figures\":[{\"kind\":\"series\",\"metric\":\"loss\"},{\"kind\":\"depth\",\"metric\":\"resid.var\",\"steps\":2},"
		"{\"kind\":\"scurve\",\"site\":\"s\",\"points\":1}]}}";
	cJSON *req = cJSON_Parse(req_text);
	const char *places[4] = { "pre", "pre", "lns", "lns" };
	cJSON *specs[4];
	struct report_cell cells[4];
	for (int i = 0; i < 4; i++) {
		char s[160];
		snprintf(s, sizeof s, "{\"norm\":{\"placement\":\"%s\",\"type\":\"layernorm\"},\"seed\":%d}",
			 places[i], 1 + i % 2);
		specs[i] = cJSON_Parse(s);
		cells[i] = (struct report_cell){ 100 + i, i, REPORT_DONE, "succeeded", specs[i] };
	}
	struct mem m = { -1 };
	struct report_src src = { &m, mem_depth, mem_scalar, mem_samples };
	cJSON *rep = NULL;
	CHECK(report_build(req, cells, 4, &src, &rep) == 0 && rep);
	CHECKF(strcmp(status_of(rep, 0), "holds") == 0, "%s", cJSON_PrintUnformatted(find_check(rep, 0)));
	CHECK(num_at(find_check(rep, 0), "left", "mean") == 4 && num_at(find_check(rep, 0), "left", "n") == 2);
	CHECK(strcmp(status_of(rep, 1), "fails") == 0);    /* 1.5 < 0.1·12 = 1.2 is false */
	CHECK(fabs(num_at(find_check(rep, 1), "threshold", NULL) - 1.2) < 1e-12);
	CHECK(num_at(find_check(rep, 1), "right", "mean") == 12);
	CHECKF(strcmp(status_of(rep, 2), "holds") == 0 && fabs(num_at(find_check(rep, 2), "left", "mean") - 3.05) < 1e-12,
	       "%s", cJSON_PrintUnformatted(find_check(rep, 2)));
	CHECKF(strcmp(status_of(rep, 3), "holds") == 0 && num_at(find_check(rep, 3), "right", "mean") == 6,
	       "%s", cJSON_PrintUnformatted(find_check(rep, 3)));
	CHECK(strcmp(status_of(rep, 4), "not_yet") == 0);
	CHECK(num_at(rep, "summary", "holds") == 3 && num_at(rep, "summary", "fails") == 1 &&
	      num_at(rep, "summary", "not_yet") == 1);
	/* figures: the loss band over pre's two seeds at step 10 is 3.0..3.1 around 3.05 */
	const cJSON *figs = cJSON_GetObjectItemCaseSensitive(rep, "figures");
	const cJSON *g0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(figs, 0), "groups"), 0);
	CHECK(fabs(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(g0, "mean"), 0)->valuedouble - 3.05) < 1e-12);
	CHECK(fabs(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(g0, "min"), 0)->valuedouble - 3.0) < 1e-12);
	CHECK(fabs(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(g0, "max"), 0)->valuedouble - 3.1) < 1e-12);
	const cJSON *d = cJSON_GetArrayItem(figs, 1);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "at_steps")) == 2);
	const cJSON *prof = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "groups"), 0), "profiles"), 1);
	/* pre at step 20: seeds 1 and 2 give (2,4,8) and (4,8,16): mean (3,6,12) */
	CHECK(num_at(prof, "step", NULL) == 20 && cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(prof, "mean"), 2)->valuedouble == 12);
	const cJSON *sc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(figs, 2), "groups"), 1);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sc, "x")) == 1 && num_at(sc, "cell", NULL) == 2);
	cJSON_Delete(rep);

	/* a running cell or a missing metric: not_yet, with the reason */
	cells[1].state = REPORT_PENDING;
	cells[1].status = "running";
	m.missing_cell = 2;
	CHECK(report_build(req, cells, 4, &src, &rep) == 0);
	const cJSON *why0 = cJSON_GetObjectItemCaseSensitive(find_check(rep, 0), "reason");
	CHECKF(strcmp(status_of(rep, 0), "not_yet") == 0 && strstr(why0->valuestring, "cell 1 is not finished"),
	       "%s", why0->valuestring);
	const cJSON *why1 = cJSON_GetObjectItemCaseSensitive(find_check(rep, 1), "reason");
	CHECKF(strcmp(status_of(rep, 1), "not_yet") == 0 && strstr(why1->valuestring, "cell 2 has no depth metric resid.var"),
	       "%s", why1->valuestring);
	cJSON_Delete(rep);

	/* a diverged cell counts as +inf: pre's ratio mean is inf ≥ 4 holds; lns < inf holds */
	cells[1].state = REPORT_DIVERGED;
	cells[1].status = "diverged";
	m.missing_cell = -1;
	CHECK(report_build(req, cells, 4, &src, &rep) == 0);
	CHECK(strcmp(status_of(rep, 0), "holds") == 0);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(find_check(rep, 0), "left"), "infinite")));
	CHECK(strcmp(status_of(rep, 1), "holds") == 0);
	cJSON_Delete(rep);
	cJSON_Delete(req);

	/* ... or is left out with "diverged": "skip": the ratio is seed 1's alone (4) */
	req = cJSON_Parse(req_text);
	cJSON_AddStringToObject(find_check(cJSON_GetObjectItemCaseSensitive(req, "recipe"), 0), "diverged", "skip");
	CHECK(report_build(req, cells, 4, &src, &rep) == 0);
	CHECK(strcmp(status_of(rep, 0), "holds") == 0 && num_at(find_check(rep, 0), "left", "n") == 1 &&
	      num_at(find_check(rep, 0), "left", "mean") == 4);
	cJSON_Delete(rep);
	cJSON_Delete(req);
	for (int i = 0; i < 4; i++)
		cJSON_Delete(specs[i]);
}

int main(void)
{
	test_expressions();
	test_validation();
	test_in_sweep();
	test_report();
	return test_finish("test_recipe");
}
