/*
 * report.c — builds a sweep's report (report.h): groups the cells, evaluates the recipe's checks
 * and gathers each figure's data, reading everything through the report_src callbacks.
 *
 * A check's group value is the mean over the group's cells of one number per cell: the metric at
 * the requested step (a scalar series' point, or a depth expression over a depth row). Figures
 * aggregate per group over cells at equal steps (mean, min, max).
 *
 * Owns only the report it returns. No globals; thread-safe.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"
#include "recipe.h"

const char *const report_status_names[] = { "holds", "fails", "not_yet", NULL };

/* ---- small helpers ---------------------------------------------------------------------------- */

/* A number, or null when it is not finite (JSON has no NaN or infinity). */
static int add_num(cJSON *o, const char *k, double v)
{
	return (isfinite(v) ? cJSON_AddNumberToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

static cJSON *num_or_null(double v)
{
	return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *num_array(const double *v, int n)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n; i++) {
		cJSON *x = num_or_null(v[i]);
		if (!x || !cJSON_AddItemToArray(a, x)) {
			cJSON_Delete(x);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static cJSON *float_array(const float *v, int n)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n; i++) {
		/* 7 significant digits are plenty for a scatter plot and half the bytes of 17 */
		double d = NAN;
		if (isfinite(v[i])) {
			char t[32];
			snprintf(t, sizeof t, "%.7g", (double)v[i]);
			d = strtod(t, NULL);
		}
		cJSON *x = num_or_null(d);
		if (!x || !cJSON_AddItemToArray(a, x)) {
			cJSON_Delete(x);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static int add(cJSON *parent, const char *k, cJSON *child)
{
	if (!child)
		return 0;
	if (!cJSON_AddItemToObject(parent, k, child)) {
		cJSON_Delete(child);
		return 0;
	}
	return 1;
}

static int push(cJSON *arr, cJSON *child)
{
	if (!child)
		return 0;
	if (!cJSON_AddItemToArray(arr, child)) {
		cJSON_Delete(child);
		return 0;
	}
	return 1;
}

static const char *str_of(const cJSON *o, const char *k, const char *dflt)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(it) ? it->valuestring : dflt;
}

/* Spreads m picks over 0..rows-1, first and last included. */
static int64_t spread(int64_t k, int64_t m, int64_t rows)
{
	if (m >= rows)
		return k;
	if (m == 1)
		return rows - 1;
	return k * (rows - 1) / (m - 1);
}

/* ---- collected rows and points ---------------------------------------------------------------- */

struct rows {
	int n, cap;
	int64_t *step;
	double **v;
	int *len;
	int oom;
};

static void rows_free(struct rows *r)
{
	for (int i = 0; i < r->n; i++)
		nl_free(r->v[i]);
	nl_free(r->step);
	nl_free(r->v);
	nl_free(r->len);
	memset(r, 0, sizeof *r);
}

static int rows_cb(void *cbx, int64_t step, const double *v, int n)
{
	struct rows *r = cbx;
	if (r->n == r->cap) {
		int cap = r->cap ? r->cap * 2 : 32;
		int64_t *s = nl_realloc(r->step, (size_t)cap * sizeof *s);
		if (s)
			r->step = s;
		double **vv = s ? nl_realloc(r->v, (size_t)cap * sizeof *vv) : NULL;
		if (vv)
			r->v = vv;
		int *ll = vv ? nl_realloc(r->len, (size_t)cap * sizeof *ll) : NULL;
		if (!ll) {
			r->oom = 1;
			return 1;
		}
		r->len = ll;
		r->cap = cap;
	}
	double *c = nl_malloc((size_t)(n ? n : 1) * sizeof *c);
	if (!c) {
		r->oom = 1;
		return 1;
	}
	memcpy(c, v, (size_t)n * sizeof *c);
	r->step[r->n] = step;
	r->v[r->n] = c;
	r->len[r->n] = n;
	r->n++;
	return 0;
}

struct pts {
	int n, cap;
	int64_t *step;
	double *v;
	int oom;
};

static int pts_cb(void *cbx, int64_t step, double v)
{
	struct pts *p = cbx;
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 256;
		int64_t *s = nl_realloc(p->step, (size_t)cap * sizeof *s);
		if (s)
			p->step = s;
		double *vv = s ? nl_realloc(p->v, (size_t)cap * sizeof *vv) : NULL;
		if (!vv) {
			p->oom = 1;
			return 1;
		}
		p->v = vv;
		p->cap = cap;
	}
	p->step[p->n] = step;
	p->v[p->n] = v;
	p->n++;
	return 0;
}

static void pts_free(struct pts *p)
{
	nl_free(p->step);
	nl_free(p->v);
	memset(p, 0, sizeof *p);
}

/* ---- groups ----------------------------------------------------------------------------------- */

struct group {
	cJSON *key;              /* {"path": value, ...}; owned */
	char label[256];
	int *cells;              /* indices into the cells array; owned */
	int n;
};

struct ctx {
	const struct report_cell *cells;
	int n_cells;
	const struct report_src *src;
	const char *const *by;   /* group_by paths (borrowed) */
	int n_by;
	struct group *groups;
	int n_groups;
	int more_groups;         /* cells in groups past REPORT_GROUPS_MAX */
	int rc;                  /* first error: NL_ENOMEM or the source's code */
};

static void fail(struct ctx *cx, int rc)
{
	if (!cx->rc)
		cx->rc = rc;
}

static int key_equal(const struct ctx *cx, const cJSON *key, const cJSON *spec)
{
	for (int i = 0; i < cx->n_by; i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(key, cx->by[i]);
		const cJSON *b = recipe_path_get(spec, cx->by[i]);
		if (!b ? !cJSON_IsNull(a) : !cJSON_Compare(a, b, 1))
			return 0;
	}
	return 1;
}

static void label_of(char *dst, size_t cap, const cJSON *key)
{
	size_t n = 0;
	dst[0] = '\0';
	for (const cJSON *it = key->child; it && n + 1 < cap; it = it->next) {
		char val[96];
		if (cJSON_IsString(it))
			snprintf(val, sizeof val, "%s", it->valuestring);
		else if (cJSON_IsNumber(it))
			snprintf(val, sizeof val, "%.10g", it->valuedouble);
		else if (cJSON_IsBool(it))
			snprintf(val, sizeof val, "%s", cJSON_IsTrue(it) ? "true" : "false");
		else
			snprintf(val, sizeof val, "(none)");
		int w = snprintf(dst + n, cap - n, "%s%s=%s", n ? ", " : "", it->string, val);
		if (w < 0)
			break;
		n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
	}
	if (!dst[0])
		nl_strlcpy(dst, "all cells", cap);
}

static int make_groups(struct ctx *cx)
{
	cx->groups = nl_calloc(REPORT_GROUPS_MAX, sizeof *cx->groups);
	if (!cx->groups)
		return NL_ENOMEM;
	for (int c = 0; c < cx->n_cells; c++) {
		const cJSON *spec = cx->cells[c].spec;
		int g = 0;
		while (g < cx->n_groups && !key_equal(cx, cx->groups[g].key, spec))
			g++;
		if (g == cx->n_groups) {
			if (g == REPORT_GROUPS_MAX) {
				cx->more_groups++;
				continue;
			}
			struct group *G = &cx->groups[g];
			G->key = cJSON_CreateObject();
			G->cells = nl_malloc((size_t)cx->n_cells * sizeof *G->cells);
			if (!G->key || !G->cells)
				return NL_ENOMEM;
			for (int i = 0; i < cx->n_by; i++) {
				const cJSON *v = recipe_path_get(spec, cx->by[i]);
				cJSON *d = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
				if (!add(G->key, cx->by[i], d))
					return NL_ENOMEM;
			}
			label_of(G->label, sizeof G->label, G->key);
			cx->n_groups++;
		}
		cx->groups[g].cells[cx->groups[g].n++] = c;
	}
	return 0;
}

static void groups_free(struct ctx *cx)
{
	for (int g = 0; g < cx->n_groups; g++) {
		cJSON_Delete(cx->groups[g].key);
		nl_free(cx->groups[g].cells);
	}
	nl_free(cx->groups);
}

static cJSON *group_head(const struct group *G, const struct ctx *cx)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !add(o, "key", cJSON_Duplicate(G->key, 1)) ||
	    !cJSON_AddStringToObject(o, "label", G->label)) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON *ids = cJSON_AddArrayToObject(o, "cells");
	for (int i = 0; ids && i < G->n; i++)
		if (!push(ids, cJSON_CreateNumber(cx->cells[G->cells[i]].cell)))
			ids = NULL;
	if (!ids) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- checks ----------------------------------------------------------------------------------- */

enum at_mode { AT_LAST, AT_FIRST, AT_STEP };

struct pick {
	int mode;
	int64_t at;
	const struct recipe_expr *e;   /* NULL: a scalar series */
	int found;
	int64_t step;
	double val;
};

static int pick_row(void *cbx, int64_t step, const double *v, int n)
{
	struct pick *p = cbx;
	if (p->mode == AT_STEP && step > p->at)
		return 1;
	p->found = 1;
	p->step = step;
	p->val = recipe_expr_eval(p->e, v, n);
	return p->mode == AT_FIRST;
}

static int pick_point(void *cbx, int64_t step, double v)
{
	struct pick *p = cbx;
	if (p->mode == AT_STEP && step > p->at)
		return 1;
	p->found = 1;
	p->step = step;
	p->val = v;
	return p->mode == AT_FIRST;
}

struct side {
	int n;                    /* cells whose value counts */
	double sum, min, max;
	int pending, failed, missing, diverged;
	char why[320];            /* the first reason it is not decided */
	cJSON *cells;             /* per-cell entries */
};

static void why_once(struct side *s, const char *fmt, int cell, const char *what)
{
	if (!s->why[0])
		snprintf(s->why, sizeof s->why, fmt, cell, what);
}

/* Evaluates one side of a check (its group's cells). Returns 0 or a negative code. */
static int eval_side(struct ctx *cx, const cJSON *check, const cJSON *group, const char *at_key,
		     struct side *s)
{
	const char *metric = str_of(check, "metric", "");
	const cJSON *of = cJSON_GetObjectItemCaseSensitive(check, "of");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(check, at_key);
	if (!at)
		at = cJSON_GetObjectItemCaseSensitive(check, "at");
	int skip_div = strcmp(str_of(check, "diverged", "inf"), "skip") == 0;
	struct recipe_expr e;
	char why[200];

	memset(s, 0, sizeof *s);
	s->min = INFINITY;
	s->max = -INFINITY;
	s->cells = cJSON_CreateArray();
	if (!s->cells)
		return NL_ENOMEM;
	if (of && recipe_expr_parse(of->valuestring, &e, why, sizeof why) != 0)
		return NL_EINVAL;   /* recipe_validate refused it at submit */
	struct pick base = { AT_LAST, 0, of ? &e : NULL, 0, 0, NAN };
	if (cJSON_IsNumber(at)) {
		base.mode = AT_STEP;
		base.at = (int64_t)at->valuedouble;
	} else if (cJSON_IsString(at) && strcmp(at->valuestring, "first") == 0) {
		base.mode = AT_FIRST;
	}
	for (int c = 0; c < cx->n_cells; c++) {
		const struct report_cell *rc = &cx->cells[c];
		if (!recipe_group_match(group, rc->spec))
			continue;
		cJSON *o = cJSON_CreateObject();
		if (!push(s->cells, o) || !cJSON_AddNumberToObject(o, "id", (double)rc->id) ||
		    !cJSON_AddNumberToObject(o, "cell", rc->cell) ||
		    !cJSON_AddStringToObject(o, "status", rc->status))
			return NL_ENOMEM;
		const cJSON *seed = recipe_path_get(rc->spec, "seed");
		if (cJSON_IsNumber(seed) && !cJSON_AddNumberToObject(o, "seed", seed->valuedouble))
			return NL_ENOMEM;
		if (rc->state == REPORT_PENDING) {
			s->pending++;
			why_once(s, "cell %d is not finished (%s)", rc->cell, rc->status);
			continue;
		}
		if (rc->state == REPORT_FAILED) {
			s->failed++;
			why_once(s, "cell %d ended %s: retry the sweep's failed cells", rc->cell,
				 rc->status);
			continue;
		}
		if (rc->state == REPORT_DIVERGED) {
			s->diverged++;
			if (skip_div) {
				if (!cJSON_AddStringToObject(o, "counted", "skipped (diverged)"))
					return NL_ENOMEM;
				continue;
			}
			/* a diverged run's value is +inf: the worst loss, an unbounded variance */
			if (!cJSON_AddStringToObject(o, "counted", "+inf (diverged)") ||
			    !cJSON_AddNullToObject(o, "value"))
				return NL_ENOMEM;
			s->n++;
			s->sum = INFINITY;
			s->max = INFINITY;
			continue;
		}
		struct pick p = base;
		int rc2 = of ? cx->src->depth(cx->src->ctx, rc, metric, pick_row, &p) :
			       cx->src->scalar(cx->src->ctx, rc, metric, pick_point, &p);
		if (rc2 < 0)
			return rc2;
		if (!p.found) {
			s->missing++;
			char what[160];
			if (base.mode == AT_STEP)
				snprintf(what, sizeof what, "%s %s at or before step %lld",
					 of ? "depth metric" : "series", metric, (long long)base.at);
			else
				snprintf(what, sizeof what, "%s %s", of ? "depth metric" : "series", metric);
			why_once(s, rc->state == REPORT_DONE ? "cell %d has no %s, though it finished: is the "
				 "metric's name right? (GET /api/v1/experiments/{id}/metrics lists them)" :
				 "cell %d has no %s", rc->cell, what);
			continue;
		}
		if (!cJSON_AddNumberToObject(o, "step", (double)p.step) || !add_num(o, "value", p.val))
			return NL_ENOMEM;
		s->n++;
		s->sum += p.val;
		if (p.val < s->min || isnan(p.val))
			s->min = p.val;
		if (p.val > s->max || isnan(p.val))
			s->max = p.val;
	}
	return 0;
}

static double side_mean(const struct side *s)
{
	return s->n ? s->sum / s->n : NAN;
}

static cJSON *side_json(const struct side *s, const cJSON *group)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !add(o, "group", cJSON_Duplicate(group, 1)) ||
	    !cJSON_AddNumberToObject(o, "n", s->n) || !add_num(o, "mean", side_mean(s)) ||
	    !add_num(o, "min", s->n ? s->min : NAN) || !add_num(o, "max", s->n ? s->max : NAN) ||
	    !cJSON_AddBoolToObject(o, "infinite", s->n && isinf(side_mean(s))) ||
	    !cJSON_AddNumberToObject(o, "diverged", s->diverged)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void fmt_num(char *dst, size_t cap, double v)
{
	if (isnan(v))
		snprintf(dst, cap, "NaN");
	else if (isinf(v))
		snprintf(dst, cap, "%sinf", v < 0 ? "-" : "+");
	else
		snprintf(dst, cap, "%.4g", v);
}

/* One check: {"index", "check", "text", ..., "status", "reason", "left", "right", "threshold"}. */
static cJSON *eval_check(struct ctx *cx, const cJSON *check, int index)
{
	struct side L, R;
	cJSON *o = cJSON_Duplicate(check, 1);
	const char *kind = str_of(check, "check", "value");
	int compare = strcmp(kind, "compare") == 0;
	int op = recipe_op_parse(str_of(check, "op", "?"));
	const cJSON *group = cJSON_GetObjectItemCaseSensitive(check, "group");
	const cJSON *than = cJSON_GetObjectItemCaseSensitive(check, "than");
	char reason[480], a[32], b[32];
	int rc;

	memset(&R, 0, sizeof R);
	memset(&L, 0, sizeof L);
	if (!o || !cJSON_AddNumberToObject(o, "index", index)) {
		rc = NL_ENOMEM;
		goto out;
	}
	if ((rc = eval_side(cx, check, group, "at", &L)) != 0)
		goto out;
	if (compare && (rc = eval_side(cx, check, than, "than_at", &R)) != 0)
		goto out;

	const char *status;
	double left = side_mean(&L), thr;
	if (compare) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(check, "factor");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(check, "margin");
		double fac = cJSON_IsNumber(f) ? f->valuedouble : 1, mar = cJSON_IsNumber(m) ? m->valuedouble : 0;
		double right = side_mean(&R);
		/* 1·inf + 0 stays inf; only a 0 factor could make NaN of it, and that is the user's */
		thr = fac == 1 && mar == 0 ? right : fac * right + mar;
	} else {
		thr = cJSON_GetObjectItemCaseSensitive(check, "value")->valuedouble;
	}
	const struct side *undecided = L.pending + L.failed + L.missing ? &L :
				       R.pending + R.failed + R.missing ? &R : NULL;
	if (undecided) {
		status = report_status_names[2];
		snprintf(reason, sizeof reason, "%s%s", compare && undecided == &R ? "than: " : "",
			 undecided->why);
	} else if (L.n == 0 || (compare && R.n == 0)) {
		status = report_status_names[1];
		snprintf(reason, sizeof reason, "no cell left to count in %s (every one diverged and "
			 "the check skips diverged cells)", L.n == 0 ? "the group" : "the than group");
	} else {
		fmt_num(a, sizeof a, left);
		fmt_num(b, sizeof b, thr);
		int ok = recipe_op_holds(op, left, thr);
		status = report_status_names[ok ? 0 : 1];
		snprintf(reason, sizeof reason, "%s %s %s%s%s", a, recipe_op_name(op), b,
			 isnan(left) || isnan(thr) ? " (not a number: cannot hold)" : "",
			 ok ? "" : " is false");
	}
	if (!cJSON_AddStringToObject(o, "status", status) ||
	    !cJSON_AddStringToObject(o, "reason", reason)) {
		rc = NL_ENOMEM;
		goto out;
	}
	/* the per-cell entries move into the answer (add() frees what it cannot attach) */
	cJSON *l = side_json(&L, group);
	int ok = add(o, "left", l);
	if (ok) {
		ok = add(l, "cells", L.cells);
		L.cells = NULL;
	}
	if (ok && compare) {
		cJSON *r = side_json(&R, than);
		ok = add(o, "right", r);
		if (ok) {
			ok = add(r, "cells", R.cells);
			R.cells = NULL;
		}
	}
	if (!ok) {
		rc = NL_ENOMEM;
		goto out;
	}
	if (!add_num(o, "value_left", left) || !add_num(o, "threshold", thr)) {
		rc = NL_ENOMEM;
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(L.cells);
	cJSON_Delete(R.cells);
	if (rc) {
		fail(cx, rc);
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- figures ---------------------------------------------------------------------------------- */

struct acc {                 /* mean, min and max at each of n steps (or layers) */
	double *sum, *min, *max;
	int *cnt;
};

static int acc_init(struct acc *a, int n)
{
	size_t m = (size_t)(n ? n : 1);
	a->sum = nl_calloc(m, sizeof *a->sum);
	a->min = nl_malloc(m * sizeof *a->min);
	a->max = nl_malloc(m * sizeof *a->max);
	a->cnt = nl_calloc(m, sizeof *a->cnt);
	if (!a->sum || !a->min || !a->max || !a->cnt)
		return NL_ENOMEM;
	for (int i = 0; i < n; i++) {
		a->min[i] = INFINITY;
		a->max[i] = -INFINITY;
	}
	return 0;
}

static void acc_add(struct acc *a, int i, double v)
{
	if (!isfinite(v))
		return;      /* a bucket's non-finite point is a gap, not a poisoned mean */
	a->sum[i] += v;
	a->cnt[i]++;
	if (v < a->min[i])
		a->min[i] = v;
	if (v > a->max[i])
		a->max[i] = v;
}

static void acc_free(struct acc *a)
{
	nl_free(a->sum);
	nl_free(a->min);
	nl_free(a->max);
	nl_free(a->cnt);
	memset(a, 0, sizeof *a);
}

/* {"mean":[..], "min":[..], "max":[..], "n":[..]} over the kept indices (NULL = all n). */
static int acc_json(cJSON *o, const struct acc *a, const int *keep, int n)
{
	cJSON *mean = cJSON_AddArrayToObject(o, "mean"), *mn = cJSON_AddArrayToObject(o, "min");
	cJSON *mx = cJSON_AddArrayToObject(o, "max"), *cnt = cJSON_AddArrayToObject(o, "n");
	if (!mean || !mn || !mx || !cnt)
		return NL_ENOMEM;
	for (int k = 0; k < n; k++) {
		int i = keep ? keep[k] : k;
		int c = a->cnt[i];
		if (!push(mean, num_or_null(c ? a->sum[i] / c : NAN)) ||
		    !push(mn, num_or_null(c ? a->min[i] : NAN)) ||
		    !push(mx, num_or_null(c ? a->max[i] : NAN)) || !push(cnt, cJSON_CreateNumber(c)))
			return NL_ENOMEM;
	}
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Sorted distinct values of v[0..n-1], in place; returns the count. */
static int distinct(int64_t *v, int n)
{
	int m = 0;
	qsort(v, (size_t)n, sizeof *v, cmp_i64);
	for (int i = 0; i < n; i++)
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	return m;
}

static int step_index(const int64_t *steps, int n, int64_t s)
{
	int lo = 0, hi = n - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (steps[mid] == s)
			return mid;
		if (steps[mid] < s)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* series: per group, the scalar metric's mean, min and max over its cells at each step. */
static int fig_series(struct ctx *cx, const char *metric, cJSON *groups)
{
	for (int g = 0; g < cx->n_groups; g++) {
		const struct group *G = &cx->groups[g];
		struct pts *p = nl_calloc((size_t)G->n, sizeof *p);
		struct acc a = { 0 };
		int64_t *steps = NULL;
		int *keep = NULL, total = 0, rc = NL_ENOMEM;
		if (!p)
			return NL_ENOMEM;
		for (int i = 0; i < G->n; i++) {
			const struct report_cell *c = &cx->cells[G->cells[i]];
			int r = cx->src->scalar(cx->src->ctx, c, metric, pts_cb, &p[i]);
			if (r < 0) {
				rc = r;
				goto next;
			}
			if (p[i].oom)
				goto next;
			total += p[i].n;
		}
		steps = nl_malloc((size_t)(total ? total : 1) * sizeof *steps);
		if (!steps)
			goto next;
		total = 0;
		for (int i = 0; i < G->n; i++)
			for (int k = 0; k < p[i].n; k++)
				steps[total++] = p[i].step[k];
		int m = distinct(steps, total);
		if (acc_init(&a, m) != 0)
			goto next;
		for (int i = 0; i < G->n; i++)
			for (int k = 0; k < p[i].n; k++)
				acc_add(&a, step_index(steps, m, p[i].step[k]), p[i].v[k]);
		int kept = m < REPORT_SERIES_POINTS ? m : REPORT_SERIES_POINTS;
		keep = nl_malloc((size_t)(kept ? kept : 1) * sizeof *keep);
		if (!keep)
			goto next;
		for (int k = 0; k < kept; k++)
			keep[k] = (int)spread(k, kept, m);
		cJSON *o = group_head(G, cx), *st;
		if (!push(groups, o) || !(st = cJSON_AddArrayToObject(o, "step")))
			goto next;
		for (int k = 0; k < kept; k++)
			if (!push(st, cJSON_CreateNumber((double)steps[keep[k]])))
				goto next;
		if (acc_json(o, &a, keep, kept) != 0)
			goto next;
		rc = 0;
next:
		for (int i = 0; i < G->n; i++)
			pts_free(&p[i]);
		nl_free(p);
		nl_free(steps);
		nl_free(keep);
		acc_free(&a);
		if (rc)
			return rc;
	}
	return 0;
}

/* Every cell's rows of a depth metric, per group: rows[g][i] for cell i of group g. */
static int load_rows(struct ctx *cx, const char *metric, struct rows ***out)
{
	struct rows **all = nl_calloc((size_t)(cx->n_groups ? cx->n_groups : 1), sizeof *all);
	if (!all)
		return NL_ENOMEM;
	*out = all;
	for (int g = 0; g < cx->n_groups; g++) {
		const struct group *G = &cx->groups[g];
		all[g] = nl_calloc((size_t)G->n, sizeof **all);
		if (!all[g])
			return NL_ENOMEM;
		for (int i = 0; i < G->n; i++) {
			int r = cx->src->depth(cx->src->ctx, &cx->cells[G->cells[i]], metric, rows_cb,
					       &all[g][i]);
			if (r < 0)
				return r;
			if (all[g][i].oom)
				return NL_ENOMEM;
		}
	}
	return 0;
}

static void rows_all_free(struct ctx *cx, struct rows **all)
{
	for (int g = 0; all && g < cx->n_groups; g++) {
		for (int i = 0; all[g] && i < cx->groups[g].n; i++)
			rows_free(&all[g][i]);
		nl_free(all[g]);
	}
	nl_free(all);
}

/* Sorted distinct steps over every row in all (for depth figures). *out nl_malloc'd. */
static int all_steps(struct ctx *cx, struct rows **all, int64_t **out, int *n)
{
	int total = 0;
	for (int g = 0; g < cx->n_groups; g++)
		for (int i = 0; i < cx->groups[g].n; i++)
			total += all[g][i].n;
	int64_t *s = nl_malloc((size_t)(total ? total : 1) * sizeof *s);
	if (!s)
		return NL_ENOMEM;
	total = 0;
	for (int g = 0; g < cx->n_groups; g++)
		for (int i = 0; i < cx->groups[g].n; i++)
			for (int k = 0; k < all[g][i].n; k++)
				s[total++] = all[g][i].step[k];
	*n = distinct(s, total);
	*out = s;
	return 0;
}

/* The mean/min/max over group g's cells of their rows at `step` (layers: the longest row). */
static cJSON *profile_at(struct ctx *cx, struct rows **all, int g, int64_t step)
{
	const struct group *G = &cx->groups[g];
	struct acc a = { 0 };
	int L = 0;
	cJSON *o = NULL;
	for (int i = 0; i < G->n; i++)
		for (int k = 0; k < all[g][i].n; k++)
			if (all[g][i].step[k] == step && all[g][i].len[k] > L)
				L = all[g][i].len[k];
	if (acc_init(&a, L) != 0)
		goto out;
	int cells = 0;
	for (int i = 0; i < G->n; i++)
		for (int k = 0; k < all[g][i].n; k++) {
			if (all[g][i].step[k] != step)
				continue;
			cells++;
			for (int l = 0; l < all[g][i].len[k]; l++)
				acc_add(&a, l, all[g][i].v[k][l]);
		}
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddNumberToObject(o, "step", (double)step) ||
	    !cJSON_AddNumberToObject(o, "cells", cells) || acc_json(o, &a, NULL, L) != 0) {
		cJSON_Delete(o);
		o = NULL;
	}
out:
	acc_free(&a);
	return o;
}

/* depth: per group, the profile (mean, min, max over cells) at `count` steps spread over the
 * steps any cell stored, first and last included. */
static int fig_depth(struct ctx *cx, const char *metric, int count, cJSON *fig, cJSON *groups)
{
	struct rows **all = NULL;
	int64_t *steps = NULL;
	int m = 0, rc = load_rows(cx, metric, &all);
	if (rc == 0)
		rc = all_steps(cx, all, &steps, &m);
	if (rc)
		goto out;
	rc = NL_ENOMEM;
	int kept = m < count ? m : count;
	cJSON *sa = cJSON_AddArrayToObject(fig, "at_steps");
	if (!sa)
		goto out;
	for (int k = 0; k < kept; k++)
		if (!push(sa, cJSON_CreateNumber((double)steps[spread(k, kept, m)])))
			goto out;
	for (int g = 0; g < cx->n_groups; g++) {
		cJSON *o = group_head(&cx->groups[g], cx), *prof;
		if (!push(groups, o) || !(prof = cJSON_AddArrayToObject(o, "profiles")))
			goto out;
		for (int k = 0; k < kept; k++)
			if (!push(prof, profile_at(cx, all, g, steps[spread(k, kept, m)])))
				goto out;
	}
	rc = 0;
out:
	nl_free(steps);
	rows_all_free(cx, all);
	return rc;
}

/* depth_time: per group, each layer's value over steps (mean over cells at each step). */
static int fig_depth_time(struct ctx *cx, const char *metric, cJSON *groups)
{
	struct rows **all = NULL;
	int64_t *steps = NULL;
	int m = 0, rc = load_rows(cx, metric, &all);
	if (rc == 0)
		rc = all_steps(cx, all, &steps, &m);
	if (rc)
		goto out;
	rc = NL_ENOMEM;
	int kept = m < REPORT_DEPTH_TIME_STEPS ? m : REPORT_DEPTH_TIME_STEPS;
	for (int g = 0; g < cx->n_groups; g++) {
		cJSON *o = group_head(&cx->groups[g], cx), *st, *mean;
		if (!push(groups, o) || !(st = cJSON_AddArrayToObject(o, "step")) ||
		    !(mean = cJSON_AddArrayToObject(o, "mean")))
			goto out;
		int layers = 0;
		for (int k = 0; k < kept; k++) {
			int64_t s = steps[spread(k, kept, m)];
			cJSON *p = profile_at(cx, all, g, s);
			if (!p)
				goto out;
			const cJSON *pm = cJSON_GetObjectItemCaseSensitive(p, "mean");
			int cells = (int)cJSON_GetObjectItemCaseSensitive(p, "cells")->valuedouble;
			if (cells > 0) {
				if (cJSON_GetArraySize(pm) > layers)
					layers = cJSON_GetArraySize(pm);
				cJSON *dup = cJSON_Duplicate(pm, 1);
				if (!push(st, cJSON_CreateNumber((double)s)) || !push(mean, dup)) {
					cJSON_Delete(p);
					goto out;
				}
			}
			cJSON_Delete(p);
		}
		if (!cJSON_AddNumberToObject(o, "layers", layers))
			goto out;
	}
	rc = 0;
out:
	nl_free(steps);
	rows_all_free(cx, all);
	return rc;
}

struct samp {
	int found, limit;
	cJSON *o;
	int oom;
};

static int samp_cb(void *cbx, int64_t step, const float *x, const float *y, const int32_t *channel,
		   int n)
{
	struct samp *s = cbx;
	int k = n < s->limit ? n : s->limit;
	double *ch = nl_malloc((size_t)(k ? k : 1) * sizeof *ch);
	s->found = 1;
	if (!ch || !cJSON_AddNumberToObject(s->o, "step", (double)step) ||
	    !add(s->o, "x", float_array(x, k)) || !add(s->o, "y", float_array(y, k))) {
		s->oom = 1;
		nl_free(ch);
		return 1;
	}
	for (int i = 0; i < k; i++)
		ch[i] = channel ? channel[i] : 0;
	if (!add(s->o, "channel", num_array(ch, k)))
		s->oom = 1;
	nl_free(ch);
	return 1;
}

/* scurve: per group, the first cell's samples of the site at its latest step. */
static int fig_scurve(struct ctx *cx, const char *site, int points, cJSON *groups)
{
	for (int g = 0; g < cx->n_groups; g++) {
		const struct group *G = &cx->groups[g];
		cJSON *o = group_head(G, cx);
		if (!push(groups, o))
			return NL_ENOMEM;
		for (int i = 0; i < G->n; i++) {
			const struct report_cell *c = &cx->cells[G->cells[i]];
			struct samp s = { 0, points, o, 0 };
			int r = cx->src->samples(cx->src->ctx, c, site, samp_cb, &s);
			if (r < 0)
				return r;
			if (s.oom)
				return NL_ENOMEM;
			if (s.found) {
				if (!cJSON_AddNumberToObject(o, "cell", c->cell) ||
				    !cJSON_AddNumberToObject(o, "id", (double)c->id))
					return NL_ENOMEM;
				break;
			}
		}
	}
	return 0;
}

static cJSON *default_figures(void)
{
	return cJSON_Parse("[{\"kind\":\"series\",\"metric\":\"loss\",\"title\":\"Training loss "
			   "(mean, min–max over seeds)\"},"
			   "{\"kind\":\"depth\",\"metric\":\"resid.var\",\"log\":true,\"title\":"
			   "\"Residual-stream variance against depth\"},"
			   "{\"kind\":\"depth\",\"metric\":\"grad.block\",\"log\":true,\"title\":"
			   "\"Gradient norm of each block\"}]");
}

static cJSON *figure(struct ctx *cx, const cJSON *spec)
{
	const char *kind = str_of(spec, "kind", "");
	cJSON *fig = cJSON_Duplicate(spec, 1), *groups;
	int rc = NL_ENOMEM;
	if (!fig || !(groups = cJSON_AddArrayToObject(fig, "groups")))
		goto out;
	if (strcmp(kind, "series") == 0) {
		rc = fig_series(cx, str_of(spec, "metric", ""), groups);
	} else if (strcmp(kind, "depth") == 0) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(spec, "steps");
		rc = fig_depth(cx, str_of(spec, "metric", ""), cJSON_IsNumber(st) ? (int)st->valuedouble : 4,
			       fig, groups);
	} else if (strcmp(kind, "depth_time") == 0) {
		rc = fig_depth_time(cx, str_of(spec, "metric", ""), groups);
	} else if (strcmp(kind, "scurve") == 0) {
		const cJSON *pt = cJSON_GetObjectItemCaseSensitive(spec, "points");
		rc = fig_scurve(cx, str_of(spec, "site", ""), cJSON_IsNumber(pt) ? (int)pt->valuedouble : 2000,
				groups);
	} else {
		rc = NL_EINVAL;
	}
out:
	if (rc) {
		fail(cx, rc);
		cJSON_Delete(fig);
		return NULL;
	}
	return fig;
}

/* ---- the report ------------------------------------------------------------------------------- */

/* group_by: the recipe's, else the request's grid and zip paths (nothing: one group). */
static int group_paths(const cJSON *req, const char **by, int cap)
{
	const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(req, "recipe");
	const cJSON *gb = cJSON_GetObjectItemCaseSensitive(recipe, "group_by");
	int n = 0;
	if (cJSON_IsArray(gb)) {
		for (const cJSON *p = gb->child; p && n < cap; p = p->next)
			if (cJSON_IsString(p))
				by[n++] = p->valuestring;
		return n;
	}
	static const char *const axes[] = { "grid", "zip" };
	for (int a = 0; a < 2; a++) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(req, axes[a]);
		for (const cJSON *p = cJSON_IsObject(o) ? o->child : NULL; p && n < cap; p = p->next)
			by[n++] = p->string;
	}
	return n;
}

int report_build(const cJSON *req, const struct report_cell *cells, int n,
		 const struct report_src *src, cJSON **out)
{
	const char *by[32];
	struct ctx cx;
	cJSON *o = NULL, *figs_default = NULL;
	int holds = 0, fails = 0, not_yet = 0;

	*out = NULL;
	memset(&cx, 0, sizeof cx);
	cx.cells = cells;
	cx.n_cells = n;
	cx.src = src;
	cx.by = by;
	cx.n_by = group_paths(req, by, 32);
	if ((cx.rc = make_groups(&cx)) != 0)
		goto out;
	cx.rc = NL_ENOMEM;
	const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(req, "recipe");
	o = cJSON_CreateObject();
	if (!o)
		goto out;
	if (cJSON_IsObject(recipe)) {
		cJSON *r = cJSON_CreateObject();
		static const char *const keys[] = { "claim", "paper", "figure" };
		if (!add(o, "recipe", r))
			goto out;
		for (int i = 0; i < 3; i++)
			if (!cJSON_AddStringToObject(r, keys[i], str_of(recipe, keys[i], "")))
				goto out;
	} else if (!cJSON_AddNullToObject(o, "recipe")) {
		goto out;
	}
	cJSON *gb = cJSON_AddArrayToObject(o, "group_by"), *ga;
	for (int i = 0; gb && i < cx.n_by; i++)
		if (!push(gb, cJSON_CreateString(by[i])))
			goto out;
	if (!gb || !(ga = cJSON_AddArrayToObject(o, "groups")))
		goto out;
	for (int g = 0; g < cx.n_groups; g++)
		if (!push(ga, group_head(&cx.groups[g], &cx)))
			goto out;
	if (!cJSON_AddNumberToObject(o, "cells_not_drawn", cx.more_groups))
		goto out;
	cx.rc = 0;

	cJSON *checks = cJSON_AddArrayToObject(o, "checks");
	const cJSON *rc_checks = cJSON_GetObjectItemCaseSensitive(recipe, "checks");
	int i = 0;
	if (!checks) {
		fail(&cx, NL_ENOMEM);
		goto out;
	}
	for (const cJSON *c = cJSON_IsArray(rc_checks) ? rc_checks->child : NULL; c; c = c->next, i++) {
		cJSON *r = eval_check(&cx, c, i);
		if (!r || !push(checks, r)) {
			fail(&cx, NL_ENOMEM);
			goto out;
		}
		const char *st = str_of(r, "status", "");
		holds += strcmp(st, report_status_names[0]) == 0;
		fails += strcmp(st, report_status_names[1]) == 0;
		not_yet += strcmp(st, report_status_names[2]) == 0;
	}
	cJSON *sum = cJSON_AddObjectToObject(o, "summary");
	if (!sum || !cJSON_AddNumberToObject(sum, "holds", holds) ||
	    !cJSON_AddNumberToObject(sum, "fails", fails) ||
	    !cJSON_AddNumberToObject(sum, "not_yet", not_yet)) {
		fail(&cx, NL_ENOMEM);
		goto out;
	}

	const cJSON *figs = cJSON_GetObjectItemCaseSensitive(recipe, "figures");
	if (!cJSON_IsArray(figs)) {
		figs = figs_default = default_figures();
		if (!figs) {
			fail(&cx, NL_ENOMEM);
			goto out;
		}
	}
	cJSON *fa = cJSON_AddArrayToObject(o, "figures");
	if (!fa) {
		fail(&cx, NL_ENOMEM);
		goto out;
	}
	for (const cJSON *f = figs->child; f; f = f->next) {
		cJSON *r = figure(&cx, f);
		if (!r || !push(fa, r)) {
			fail(&cx, NL_ENOMEM);
			goto out;
		}
	}
out:
	cJSON_Delete(figs_default);
	groups_free(&cx);
	if (cx.rc) {
		cJSON_Delete(o);
		return cx.rc;
	}
	*out = o;
	return 0;
}
