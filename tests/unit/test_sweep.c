/*
 * test_sweep — sweep expansion (server/sweep.c) without a daemon: cell order and overrides of
 * grid × seeds, zip, exclude (also when it brings an oversized grid under the cap), nested path
 * creation, seeds over the base seed, derived cell names, errors with pointers into the request
 * and into cells, the cell cap (counted without building a cell, overflow included), and every
 * allocation failing in turn. cJSON goes through nl_malloc so the failure loop reaches it.
 * Single-threaded.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#include "../test.h"
#include "nl.h"
#include "spec.h"
#include "sweep.h"

static struct sweep_limits limits(int max_cells)
{
	struct sweep_limits l;
	memset(&l, 0, sizeof l);
	l.max_cells = max_cells;
	l.max_threads = 8;
	return l;
}

/* Expands the JSON text; the request tree is freed before returning (the plan must not borrow
 * from it). */
static int expand(const char *json, int max_cells, struct sweep_plan *plan, struct sweep_errors *errs)
{
	struct sweep_limits l = limits(max_cells);
	cJSON *req = cJSON_Parse(json);
	int rc;
	if (!req) {
		fprintf(stderr, "test request is not JSON: %s\n", json);
		return -999;
	}
	rc = sweep_expand(req, &l, plan, errs);
	cJSON_Delete(req);
	return rc;
}

static const cJSON *ov(const struct sweep_plan *p, int i, const char *path)
{
	return cJSON_GetObjectItemCaseSensitive(p->cells[i].overrides, path);
}

static int ov_str(const struct sweep_plan *p, int i, const char *path, const char *want)
{
	const cJSON *v = ov(p, i, path);
	return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

static int ov_num(const struct sweep_plan *p, int i, const char *path, double want)
{
	const cJSON *v = ov(p, i, path);
	return cJSON_IsNumber(v) && v->valuedouble == want;
}

/* A field of the cell's canonical spec, by a path of keys. */
static const cJSON *canon_get(cJSON *doc, const char *a, const char *b, const char *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, a);
	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	if (c)
		v = cJSON_GetObjectItemCaseSensitive(v, c);
	return v;
}

static int has_pointer(const struct sweep_errors *e, const char *ptr)
{
	for (int i = 0; i < e->n; i++)
		if (strcmp(e->e[i].pointer, ptr) == 0)
			return 1;
	return 0;
}

static void test_grid_seeds(void)
{
	static const char *const types[] = { "layernorm", "dyt" };
	static const char *const places[] = { "pre", "post" };
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"base\": {\"train\": {\"steps\": 10}},"
			" \"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"],"
			"          \"norm.placement\": [\"pre\", \"post\"]},"
			" \"seeds\": [11, 12], \"priority\": 5, \"on_duplicate\": \"run\"}", 100, &p, &e);
	CHECKF(rc == 0, "rc %d: %s", rc, e.detail);
	CHECK(p.n == 8);
	CHECK(p.priority == 5);
	CHECK(p.on_duplicate == SWEEP_DUP_RUN);
	for (int i = 0; i < p.n && p.n == 8; i++) {
		/* grid keys in the given order, last fastest, then seeds innermost */
		CHECKF(p.cells[i].cell == i, "cell %d has index %d", i, p.cells[i].cell);
		CHECKF(ov_str(&p, i, "norm.type", types[i / 4]), "cell %d norm.type", i);
		CHECKF(ov_str(&p, i, "norm.placement", places[(i / 2) % 2]), "cell %d placement", i);
		CHECKF(ov_num(&p, i, "seed", 11 + i % 2), "cell %d seed", i);
		CHECK(cJSON_GetArraySize(p.cells[i].overrides) == 3);
		/* overrides in axis order */
		CHECK(strcmp(p.cells[i].overrides->child->string, "norm.type") == 0);
		CHECK(strcmp(p.cells[i].overrides->child->next->string, "norm.placement") == 0);
		for (int j = 0; j < i; j++)
			CHECKF(strcmp(p.cells[i].hash, p.cells[j].hash) != 0, "cells %d and %d share a hash",
			       j, i);
		/* the canonical text is the cell's spec: it parses back to the same hash */
		struct spec s;
		char hex[65];
		CHECK(spec_parse(&s, p.cells[i].canonical, strlen(p.cells[i].canonical), NULL, NULL) == 0);
		CHECK(spec_hash(&s, hex) == 0 && strcmp(hex, p.cells[i].hash) == 0);
		CHECK(s.seed == (uint64_t)(11 + i % 2));
		CHECK(s.train.steps == 10);
		CHECK(strcmp(spec_placement_name(s.norm.placement), places[(i / 2) % 2]) == 0);
		cJSON *doc = cJSON_Parse(p.cells[i].canonical);
		const cJSON *t = canon_get(doc, "norm", "type", NULL);
		CHECKF(cJSON_IsString(t) && strcmp(t->valuestring, types[i / 4]) == 0, "cell %d type", i);
		cJSON_Delete(doc);
	}
	sweep_plan_free(&p);
	CHECK(p.n == 0 && p.cells == NULL);
	sweep_plan_free(&p);   /* twice is harmless */
}

static void test_zip(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"zip\": {\"model.n_layer\": [2, 3, 4], \"model.d_model\": [32, 64, 96]}}",
			100, &p, &e);
	CHECKF(rc == 0, "rc %d: %s", rc, e.detail);
	CHECK(p.n == 3);
	for (int i = 0; i < p.n && p.n == 3; i++) {
		CHECK(ov_num(&p, i, "model.n_layer", 2 + i));
		CHECK(ov_num(&p, i, "model.d_model", 32 * (i + 1)));
		cJSON *doc = cJSON_Parse(p.cells[i].canonical);
		CHECK(cJSON_GetNumberValue(canon_get(doc, "model", "n_layer", NULL)) == 2 + i);
		CHECK(cJSON_GetNumberValue(canon_get(doc, "model", "d_model", NULL)) == 32 * (i + 1));
		cJSON_Delete(doc);
	}
	sweep_plan_free(&p);

	/* zip with grid: zip varies faster than the grid, as one axis */
	rc = expand("{\"grid\": {\"norm.type\": [\"rmsnorm\", \"derf\"]},"
		    " \"zip\": {\"train.lr\": [0.001, 0.002, 0.003], \"train.min_lr\": [0.0001, 0.0002, 0.0003]}}",
		    100, &p, &e);
	CHECKF(rc == 0 && p.n == 6, "rc %d n %d: %s", rc, p.n, e.detail);
	if (p.n == 6) {
		CHECK(ov_str(&p, 2, "norm.type", "rmsnorm") && ov_num(&p, 2, "train.lr", 0.003));
		CHECK(ov_str(&p, 3, "norm.type", "derf") && ov_num(&p, 3, "train.lr", 0.001));
		CHECK(ov_num(&p, 3, "train.min_lr", 0.0001));
	}
	sweep_plan_free(&p);

	rc = expand("{\"zip\": {\"model.n_layer\": [2, 3, 4], \"model.d_model\": [32, 64]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL);
	CHECK(e.status == 400 && strcmp(e.code, "invalid_sweep") == 0);
	CHECKF(has_pointer(&e, "/zip/model.d_model"), "pointer %s", e.n ? e.e[0].pointer : "-");
	CHECK(p.n == 0 && p.cells == NULL);
}

static void test_exclude(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"rmsnorm\", \"dyt\"],"
			"          \"norm.placement\": [\"pre\", \"post\"]},"
			" \"exclude\": [{\"norm.type\": \"dyt\", \"norm.placement\": \"post\"},"
			"               {\"norm.type\": \"layernorm\"}]}", 100, &p, &e);
	CHECKF(rc == 0, "rc %d: %s", rc, e.detail);
	CHECK(p.n == 3);
	if (p.n == 3) {
		CHECK(ov_str(&p, 0, "norm.type", "rmsnorm") && ov_str(&p, 0, "norm.placement", "pre"));
		CHECK(ov_str(&p, 1, "norm.type", "rmsnorm") && ov_str(&p, 1, "norm.placement", "post"));
		CHECK(ov_str(&p, 2, "norm.type", "dyt") && ov_str(&p, 2, "norm.placement", "pre"));
		for (int i = 0; i < 3; i++)
			CHECK(p.cells[i].cell == i);
	}
	sweep_plan_free(&p);

	/* exclude drops an invalid combination (warmup > steps) before it is validated */
	rc = expand("{\"grid\": {\"train.steps\": [50, 500], \"train.warmup\": [10, 100]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && has_pointer(&e, "/cells/1/train/warmup"));
	rc = expand("{\"grid\": {\"train.steps\": [50, 500], \"train.warmup\": [10, 100]},"
		    " \"exclude\": [{\"train.steps\": 50, \"train.warmup\": 100}]}", 100, &p, &e);
	CHECKF(rc == 0 && p.n == 3, "rc %d: %s", rc, e.detail);
	sweep_plan_free(&p);

	/* an exclude naming a path that is not swept is a typo, not a no-op */
	rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"]},"
		    " \"exclude\": [{\"norm.typ\": \"dyt\"}]}", 100, &p, &e);
	CHECK(rc == NL_EINVAL);
	CHECKF(has_pointer(&e, "/exclude/0/norm.typ"), "pointer %s", e.n ? e.e[0].pointer : "-");

	/* exclude on seeds */
	rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"]}, \"seeds\": [1, 2, 3],"
		    " \"exclude\": [{\"norm.type\": \"dyt\", \"seed\": 2}]}", 100, &p, &e);
	CHECKF(rc == 0 && p.n == 5, "rc %d n %d", rc, p.n);
	if (p.n == 5)
		CHECK(ov_str(&p, 4, "norm.type", "dyt") && ov_num(&p, 4, "seed", 3));
	sweep_plan_free(&p);
}

static void test_bad_cell(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"nosuchnorm\"]}, \"seeds\": [1, 2]}",
			100, &p, &e);
	CHECK(rc == NL_EINVAL);
	CHECK(e.status == 400 && strcmp(e.code, "invalid_spec") == 0);
	CHECK(e.n == 2);
	CHECKF(has_pointer(&e, "/cells/2/norm/type"), "pointer %s", e.n ? e.e[0].pointer : "-");
	CHECK(has_pointer(&e, "/cells/3/norm/type"));
	CHECK(strstr(e.detail, "/cells/2/norm/type") != NULL);
	CHECK(p.n == 0 && p.cells == NULL);

	/* out-of-range value in the base: every cell reports it, stopping at the error cap */
	rc = expand("{\"base\": {\"model\": {\"n_layer\": 0}}, \"seeds\": [1,2,3,4,5,6,7,8,9,10,11,12,"
		    "13,14,15,16,17,18,19,20]}", 100, &p, &e);
	CHECK(rc == NL_EINVAL);
	CHECK(e.n == SWEEP_MAX_ERRORS && e.stopped);
	CHECK(has_pointer(&e, "/cells/15/model/n_layer"));
	CHECK(!has_pointer(&e, "/cells/16/model/n_layer"));

	/* a cell over the thread budget: 422 naming the cell's threads */
	rc = expand("{\"base\": {\"threads\": 16}}", 100, &p, &e);
	CHECK(rc == NL_ELIMIT);
	CHECK(e.status == 422 && strcmp(e.code, "threads_over_budget") == 0);
	CHECK(has_pointer(&e, "/cells/0/threads"));

	/* a cell over the memory cap: 422 run_too_large */
	{
		struct sweep_limits l = limits(100);
		cJSON *req = cJSON_Parse("{\"grid\": {\"model.d_model\": [64, 1024]}}");
		l.spec.max_bytes = 256ULL << 20;   /* d_model 64 needs ~70 MB, 1024 ~1.6 GB */
		rc = sweep_expand(req, &l, &p, &e);
		cJSON_Delete(req);
		CHECK(rc == NL_ELIMIT);
		CHECKF(e.status == 422 && strcmp(e.code, "run_too_large") == 0, "code %s", e.code);
		CHECKF(has_pointer(&e, "/cells/1/model"), "pointer %s", e.n ? e.e[0].pointer : "-");
		CHECK(!has_pointer(&e, "/cells/0/model"));
	}

	/* two cells that are the same run */
	rc = expand("{\"grid\": {\"norm.eps\": [1e-5, 0.00001]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL);
	CHECK(has_pointer(&e, "/cells/1"));
}

static void test_bad_request(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"grd\": {\"norm.type\": [\"dyt\"]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL);
	CHECK(e.status == 400 && strcmp(e.code, "invalid_sweep") == 0);
	CHECK(e.n == 1 && has_pointer(&e, "/grd"));
	CHECK(strstr(e.e[0].msg, "unknown field") != NULL);

	/* an unknown key inside the base is caught per cell by the spec's own validation */
	rc = expand("{\"base\": {\"modle\": {}}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/cells/0/modle"));

	rc = expand("{\"grid\": {\"norm.type\": [\"dyt\"]}, \"grid\": {}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/grid"));

	rc = expand("{\"grid\": {\"norm.type\": []}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/grid/norm.type"));

	rc = expand("{\"grid\": {\"norm..type\": [1]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/grid/norm..type"));

	/* a path through a non-object of the base names it */
	rc = expand("{\"base\": {\"seed\": 3}, \"grid\": {\"seed.x\": [1, 2]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/grid/seed.x"));
	CHECK(e.n == 1 && strstr(e.e[0].msg, "base.seed") != NULL);

	/* one path swept twice, or a path and its parent */
	rc = expand("{\"grid\": {\"norm\": [{}], \"norm.type\": [\"dyt\"]}}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/grid/norm.type"));
	rc = expand("{\"grid\": {\"seed\": [1]}, \"seeds\": [2]}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && has_pointer(&e, "/seeds"));

	rc = expand("{\"seeds\": [1, -2, 2.5, \"x\"]}", 100, &p, &e);
	CHECK(rc == NL_EINVAL && e.n == 3 && has_pointer(&e, "/seeds/1") &&
	      has_pointer(&e, "/seeds/2") && has_pointer(&e, "/seeds/3"));

	rc = expand("{\"priority\": 1001, \"on_duplicate\": \"always\", \"name\": 7, \"base\": []}",
		    100, &p, &e);
	CHECK(rc == NL_EINVAL && e.n == 4);
	CHECK(has_pointer(&e, "/priority") && has_pointer(&e, "/on_duplicate") &&
	      has_pointer(&e, "/name") && has_pointer(&e, "/base"));

	cJSON *arr = cJSON_CreateArray();
	struct sweep_limits l = limits(10);
	rc = sweep_expand(arr, &l, &p, &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0);
	cJSON_Delete(arr);
	CHECK(p.n == 0 && p.cells == NULL);
}

/* {"grid": {"k0": [0..n-1], ..., "k<keys-1>": [...]}} built in code (large lists). */
static cJSON *big_grid(int keys, int n)
{
	cJSON *req = cJSON_CreateObject(), *grid = cJSON_AddObjectToObject(req, "grid");
	for (int k = 0; k < keys; k++) {
		char path[32];
		cJSON *list = cJSON_CreateArray();
		snprintf(path, sizeof path, "train.k%d", k);
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(list, cJSON_CreateNumber(i));
		cJSON_AddItemToObject(grid, path, list);
	}
	return req;
}

static void test_cap(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	struct sweep_limits l = limits(1024);
	cJSON *req = big_grid(3, 100);
	long before = nl_alloc_count();
	int rc = sweep_expand(req, &l, &p, &e);
	long allocs = nl_alloc_count() - before;
	cJSON_Delete(req);
	CHECK(rc == NL_ELIMIT);
	CHECK(e.status == 422 && strcmp(e.code, "sweep_too_large") == 0);
	CHECK(e.count == 1000000 && e.limit == 1024);
	CHECKF(strstr(e.detail, "1000000") && strstr(e.detail, "1024"), "detail: %s", e.detail);
	/* the context and one value table per axis, nothing per cell */
	CHECKF(allocs < 10, "%ld allocations for a refused sweep", allocs);
	CHECK(p.n == 0 && p.cells == NULL);

	/* a product that overflows 64 bits */
	req = big_grid(SWEEP_AXES_MAX, 1000);
	rc = sweep_expand(req, &l, &p, &e);
	cJSON_Delete(req);
	CHECK(rc == NL_ELIMIT && e.count == UINT64_MAX && strcmp(e.code, "sweep_too_large") == 0);

	/* exactly at the cap is fine; exclude can bring a larger grid under it */
	rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"], \"seed\": [1, 2, 3]}}", 6,
		    &p, &e);
	CHECK(rc == 0 && p.n == 6);
	sweep_plan_free(&p);
	rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"], \"seed\": [1, 2, 3]}}", 5,
		    &p, &e);
	CHECK(rc == NL_ELIMIT && e.count == 6 && e.limit == 5);
	rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"], \"seed\": [1, 2, 3]},"
		    " \"exclude\": [{\"norm.type\": \"dyt\", \"seed\": 3}]}", 5, &p, &e);
	CHECKF(rc == 0 && p.n == 5, "rc %d n %d: %s", rc, p.n, e.detail);
	sweep_plan_free(&p);
	rc = expand("{\"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"], \"seed\": [1, 2, 3]},"
		    " \"exclude\": [{\"seed\": 3}]}", 3, &p, &e);
	CHECK(rc == NL_ELIMIT && e.count == 4 && e.limit == 3);
}

static void test_nested_and_seeds(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"base\": {\"norm\": {\"type\": \"dyt\"}, \"seed\": 7},"
			" \"grid\": {\"norm.alpha0.attn\": [0.5, 2.0]}, \"seeds\": [3, 4]}", 100, &p, &e);
	CHECKF(rc == 0 && p.n == 4, "rc %d: %s", rc, e.detail);
	for (int i = 0; i < p.n && p.n == 4; i++) {
		cJSON *doc = cJSON_Parse(p.cells[i].canonical);
		double attn = cJSON_GetNumberValue(canon_get(doc, "norm", "alpha0", "attn"));
		CHECKF(attn == (i < 2 ? 0.5 : 2.0), "cell %d attn %g", i, attn);
		CHECK(cJSON_GetNumberValue(canon_get(doc, "norm", "alpha0", "ffn")) == 1.0);
		CHECK(cJSON_GetNumberValue(canon_get(doc, "seed", NULL, NULL)) == 3 + i % 2);
		const cJSON *t = canon_get(doc, "norm", "type", NULL);
		CHECK(cJSON_IsString(t) && strcmp(t->valuestring, "dyt") == 0);
		cJSON_Delete(doc);
	}
	sweep_plan_free(&p);

	/* objects are created along a path the base does not have */
	rc = expand("{\"grid\": {\"norm.alpha0.ffn\": [0.25]}}", 100, &p, &e);
	CHECK(rc == 0 && p.n == 1);
	if (p.n == 1) {
		cJSON *doc = cJSON_Parse(p.cells[0].canonical);
		CHECK(cJSON_GetNumberValue(canon_get(doc, "norm", "alpha0", "ffn")) == 0.25);
		cJSON_Delete(doc);
	}
	sweep_plan_free(&p);

	/* no axes: the base is the one cell */
	rc = expand("{\"base\": {\"seed\": 9}}", 100, &p, &e);
	CHECK(rc == 0 && p.n == 1 && cJSON_GetArraySize(p.cells[0].overrides) == 0);
	sweep_plan_free(&p);
}

static void test_names(void)
{
	struct sweep_plan p;
	struct sweep_errors e;
	int rc = expand("{\"name\": \"abl\", \"seeds\": [1, 2, 3]}", 100, &p, &e);
	CHECK(rc == 0 && p.n == 3 && strcmp(p.name, "abl") == 0);
	for (int i = 0; i < p.n && p.n == 3; i++) {
		char want[32];
		struct spec s;
		snprintf(want, sizeof want, "abl/%d", i);
		CHECK(spec_parse(&s, p.cells[i].canonical, strlen(p.cells[i].canonical), NULL, NULL) == 0);
		CHECKF(strcmp(s.name, want) == 0, "cell %d name %s", i, s.name);
		CHECK(ov(&p, i, "name") == NULL);
	}
	sweep_plan_free(&p);

	/* a base name wins over the derived one */
	rc = expand("{\"name\": \"abl\", \"base\": {\"name\": \"mine\"}, \"seeds\": [1, 2]}", 100, &p, &e);
	CHECK(rc == 0 && p.n == 2);
	if (p.n == 2) {
		struct spec s;
		CHECK(spec_parse(&s, p.cells[1].canonical, strlen(p.cells[1].canonical), NULL, NULL) == 0);
		CHECK(strcmp(s.name, "mine") == 0);
	}
	sweep_plan_free(&p);
}

/* Every allocation fails in turn: the result is success or NL_ENOMEM, never a crash or a leak
 * (ASan's leak check runs at exit). */
static void test_alloc_failures(void)
{
	const char *json = "{\"name\": \"f\", \"base\": {\"train\": {\"steps\": 5}},"
			   " \"grid\": {\"norm.type\": [\"layernorm\", \"dyt\"]},"
			   " \"zip\": {\"norm.alpha0.attn\": [0.5, 1.0]}, \"seeds\": [1, 2],"
			   " \"exclude\": [{\"norm.type\": \"dyt\", \"seed\": 2}]}";
	struct sweep_limits l = limits(100);
	cJSON *req = cJSON_Parse(json);
	struct sweep_plan p;
	struct sweep_errors e;
	long before = nl_alloc_count();
	int rc = sweep_expand(req, &l, &p, &e);
	long total = nl_alloc_count() - before;
	CHECK(rc == 0 && p.n == 6);
	sweep_plan_free(&p);
	int ok = 1, succeeded = 0;
	for (long nth = 1; nth <= total + 1; nth++) {
		nl_alloc_fail_at(nth);
		rc = sweep_expand(req, &l, &p, &e);
		nl_alloc_fail_at(0);
		if (rc == 0) {
			succeeded++;
			ok &= p.n == 6;
			sweep_plan_free(&p);
		} else {
			ok &= rc == NL_ENOMEM && e.status == 500 && strcmp(e.code, "internal") == 0 &&
			      p.n == 0 && p.cells == NULL;
		}
	}
	CHECKF(ok, "an allocation failure gave something other than NL_ENOMEM");
	CHECK(succeeded >= 1);   /* nth = total + 1 is past the last allocation */
	cJSON_Delete(req);
}

int main(void)
{
	cJSON_Hooks hooks = { nl_malloc, nl_free };
	cJSON_InitHooks(&hooks);
	test_grid_seeds();
	test_zip();
	test_exclude();
	test_bad_cell();
	test_bad_request();
	test_cap();
	test_nested_and_seeds();
	test_names();
	test_alloc_failures();
	return test_finish("test_sweep");
}
