/*
 * report.c — builds a sweep's report (report.h): groups the cells, evaluates the recipe's checks
 * and assembles the answer with each figure's data (report_figures.c), reading everything
 * through the report_src callbacks.
 *
 * A check's group value is the mean over the group's cells of one number per cell: the metric at
 * the requested step (a scalar series' point, or a depth expression over a depth row). Figures
 * aggregate per group over cells at equal steps (mean, min, max).
 *
 * Owns only the report it returns. No globals; thread-safe.
 */
#include "report.h"

#include "recipe.h"
#include "report_int.h"

const char *const report_status_names[] = { "holds", "fails", "not_yet", NULL };

/* ---- groups ----------------------------------------------------------------------------------- */

static int key_equal(const struct report_ctx *cx, const cJSON *key, const cJSON *spec)
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

static int make_groups(struct report_ctx *cx)
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
			struct report_group *G = &cx->groups[g];
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

static void groups_free(struct report_ctx *cx)
{
	for (int g = 0; g < cx->n_groups; g++) {
		cJSON_Delete(cx->groups[g].key);
		nl_free(cx->groups[g].cells);
	}
	nl_free(cx->groups);
}

cJSON *report__group_head(const struct report_group *G, const struct report_ctx *cx)
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
static int eval_side(struct report_ctx *cx, const cJSON *check, const cJSON *group, const char *at_key,
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
static cJSON *eval_check(struct report_ctx *cx, const cJSON *check, int index)
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
		report__fail(cx, rc);
		cJSON_Delete(o);
		return NULL;
	}
	return o;
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
	struct report_ctx cx;
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
		if (!push(ga, report__group_head(&cx.groups[g], &cx)))
			goto out;
	if (!cJSON_AddNumberToObject(o, "cells_not_drawn", cx.more_groups))
		goto out;
	cx.rc = 0;

	cJSON *checks = cJSON_AddArrayToObject(o, "checks");
	const cJSON *rc_checks = cJSON_GetObjectItemCaseSensitive(recipe, "checks");
	int i = 0;
	if (!checks) {
		report__fail(&cx, NL_ENOMEM);
		goto out;
	}
	for (const cJSON *c = cJSON_IsArray(rc_checks) ? rc_checks->child : NULL; c; c = c->next, i++) {
		cJSON *r = eval_check(&cx, c, i);
		if (!r || !push(checks, r)) {
			report__fail(&cx, NL_ENOMEM);
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
		report__fail(&cx, NL_ENOMEM);
		goto out;
	}

	const cJSON *figs = cJSON_GetObjectItemCaseSensitive(recipe, "figures");
	if (!cJSON_IsArray(figs)) {
		figs = figs_default = report__default_figures();
		if (!figs) {
			report__fail(&cx, NL_ENOMEM);
			goto out;
		}
	}
	cJSON *fa = cJSON_AddArrayToObject(o, "figures");
	if (!fa) {
		report__fail(&cx, NL_ENOMEM);
		goto out;
	}
	for (const cJSON *f = figs->child; f; f = f->next) {
		cJSON *r = report__figure(&cx, f);
		if (!r || !push(fa, r)) {
			report__fail(&cx, NL_ENOMEM);
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
