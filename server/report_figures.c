/*
 * report_figures.c — the data of a report's figures (report.h): per group of cells, a scalar
 * series' mean, min and max at each step (the seed band), depth profiles at steps spread over
 * training, a depth metric over time, and one cell's norm input/output samples. Read through the
 * report_src callbacks; aggregated over cells at equal steps.
 *
 * Owns only what it returns. No globals; thread-safe.
 */
#include "report_int.h"

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
static int fig_series(struct report_ctx *cx, const char *metric, cJSON *groups)
{
	for (int g = 0; g < cx->n_groups; g++) {
		const struct report_group *G = &cx->groups[g];
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
		cJSON *o = report__group_head(G, cx), *st;
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
static int load_rows(struct report_ctx *cx, const char *metric, struct rows ***out)
{
	struct rows **all = nl_calloc((size_t)(cx->n_groups ? cx->n_groups : 1), sizeof *all);
	if (!all)
		return NL_ENOMEM;
	*out = all;
	for (int g = 0; g < cx->n_groups; g++) {
		const struct report_group *G = &cx->groups[g];
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

static void rows_all_free(struct report_ctx *cx, struct rows **all)
{
	for (int g = 0; all && g < cx->n_groups; g++) {
		for (int i = 0; all[g] && i < cx->groups[g].n; i++)
			rows_free(&all[g][i]);
		nl_free(all[g]);
	}
	nl_free(all);
}

/* Sorted distinct steps over every row in all (for depth figures). *out nl_malloc'd. */
static int all_steps(struct report_ctx *cx, struct rows **all, int64_t **out, int *n)
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
static cJSON *profile_at(struct report_ctx *cx, struct rows **all, int g, int64_t step)
{
	const struct report_group *G = &cx->groups[g];
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
static int fig_depth(struct report_ctx *cx, const char *metric, int count, cJSON *fig, cJSON *groups)
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
		cJSON *o = report__group_head(&cx->groups[g], cx), *prof;
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
static int fig_depth_time(struct report_ctx *cx, const char *metric, cJSON *groups)
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
		cJSON *o = report__group_head(&cx->groups[g], cx), *st, *mean;
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
static int fig_scurve(struct report_ctx *cx, const char *site, int points, cJSON *groups)
{
	for (int g = 0; g < cx->n_groups; g++) {
		const struct report_group *G = &cx->groups[g];
		cJSON *o = report__group_head(G, cx);
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

cJSON *report__default_figures(void)
{
	return cJSON_Parse("[{\"kind\":\"series\",\"metric\":\"loss\",\"title\":\"Training loss "
			   "(mean, min–max over seeds)\"},"
			   "{\"kind\":\"depth\",\"metric\":\"resid.var\",\"log\":true,\"title\":"
			   "\"Residual-stream variance against depth\"},"
			   "{\"kind\":\"depth\",\"metric\":\"grad.block\",\"log\":true,\"title\":"
			   "\"Gradient norm of each block\"}]");
}

cJSON *report__figure(struct report_ctx *cx, const cJSON *spec)
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
		report__fail(cx, rc);
		cJSON_Delete(fig);
		return NULL;
	}
	return fig;
}
