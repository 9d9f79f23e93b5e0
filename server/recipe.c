/*
 * recipe.c — validation of a sweep request's "recipe" member, its depth expressions, and the
 * group matching and comparisons the report evaluates checks with (see recipe.h).
 *
 * Owns nothing; no globals; thread-safe.
 */
#include "recipe.h"
#include "sweep.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"

#define TWO53 9007199254740992.0

const char *const recipe_check_names[] = { "value", "ratio", "compare", NULL };
const char *const recipe_op_names[] = { "<", "<=", ">", ">=", NULL };
const char *const recipe_figure_names[] = { "series", "depth", "depth_time", "scurve", NULL };
const char *const recipe_diverged_names[] = { "inf", "skip", NULL };
const char *const recipe_at_names[] = { "last", "first", NULL };

/* "\"a\", \"b\" or \"c\"" from a NULL-terminated list, into buf. */
static const char *choices(const char *const *names, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; names[i] && n + 1 < cap; i++) {
		int w = snprintf(buf + n, cap - n, "%s\"%s\"", i == 0 ? "" : names[i + 1] ? ", " : " or ",
				 names[i]);
		if (w < 0)
			break;
		n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
	}
	return buf;
}

/* Index of s in a NULL-terminated list, or -1. */
static int index_of(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

struct vctx {
	recipe_err_fn err;
	void *ctx;
	int n;
};

static void bad(struct vctx *v, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bad(struct vctx *v, const char *pointer, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	v->n++;
	if (v->err)
		v->err(v->ctx, pointer, msg);
}

static void ptr_idx(char *dst, size_t cap, const char *parent, int i)
{
	snprintf(dst, cap, "%s/%d", parent, i);
}

/* Unknown and repeated members of obj, against the NULL-terminated allowed list. */
static void check_keys(struct vctx *v, const cJSON *obj, const char *at, const char *const *allowed,
		       const char *allowed_text)
{
	char ptr[192];
	for (const cJSON *it = obj->child; it; it = it->next) {
		const char *k = it->string ? it->string : "";
		int known = 0;
		for (int i = 0; allowed[i]; i++)
			known |= strcmp(allowed[i], k) == 0;
		sweep_pointer_join(ptr, sizeof ptr, at, k);
		if (!known)
			bad(v, ptr, "unknown field (allowed: %s)", allowed_text);
		else if (cJSON_GetObjectItemCaseSensitive(obj, k) != it)
			bad(v, ptr, "duplicate field (given more than once)");
	}
}

/* A required (or optional) string of 1..max bytes. Returns the string or NULL. */
static const char *want_text(struct vctx *v, const cJSON *obj, const char *at, const char *key,
			     int required, size_t max)
{
	char ptr[192];
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	sweep_pointer_join(ptr, sizeof ptr, at, key);
	if (!it) {
		if (required)
			bad(v, ptr, "required: a string of 1..%zu bytes", max);
		return NULL;
	}
	if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > max) {
		bad(v, ptr, "expected a string of 1..%zu bytes, got %s", max,
		    cJSON_IsString(it) ? (it->valuestring[0] ? "a longer one" : "an empty one") :
					 sweep_json_type_name(it));
		return NULL;
	}
	return it->valuestring;
}

/* A dotted path: 1..128 bytes, no empty segment, at most 8 segments. */
static int path_ok(const char *p)
{
	size_t len = strlen(p);
	int segs = 1;
	if (len == 0 || len > 128 || p[0] == '.' || p[len - 1] == '.' || strstr(p, ".."))
		return 0;
	for (const char *c = p; *c; c++)
		segs += *c == '.';
	return segs <= 8;
}

/* A metric or site name: 1..RECIPE_METRIC_MAX bytes of [A-Za-z0-9_.-]. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > RECIPE_METRIC_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return 0;
	return 1;
}

static void check_group(struct vctx *v, const cJSON *g, const char *at)
{
	char ptr[192];
	if (!cJSON_IsObject(g)) {
		bad(v, at, "expected an object of \"dotted.path\": value (e.g. {\"norm.placement\": "
		    "\"pre\"}; {} is every cell), got %s", sweep_json_type_name(g));
		return;
	}
	if (cJSON_GetArraySize(g) > RECIPE_GROUP_BY_MAX)
		bad(v, at, "names %d paths, above the limit of %d", cJSON_GetArraySize(g),
		    RECIPE_GROUP_BY_MAX);
	for (const cJSON *it = g->child; it; it = it->next) {
		sweep_pointer_join(ptr, sizeof ptr, at, it->string ? it->string : "");
		if (!path_ok(it->string ? it->string : ""))
			bad(v, ptr, "not a dotted spec path such as \"norm.placement\"");
		else if (cJSON_GetObjectItemCaseSensitive(g, it->string) != it)
			bad(v, ptr, "duplicate field (given more than once)");
		else if (!cJSON_IsString(it) && !cJSON_IsNumber(it) && !cJSON_IsBool(it))
			bad(v, ptr, "expected a string, number or boolean (the spec value the cells "
			    "have), got %s", sweep_json_type_name(it));
	}
}

static int finite_number(const cJSON *it)
{
	return cJSON_IsNumber(it) && isfinite(it->valuedouble);
}

static void check_one(struct vctx *v, const cJSON *c, const char *at)
{
	static const char *const keys[] = { "check", "text", "metric", "of", "at", "than_at", "group",
					    "than", "op", "value", "factor", "margin", "diverged", NULL };
	char ptr[192];
	if (!cJSON_IsObject(c)) {
		bad(v, at, "expected a check object, got %s", sweep_json_type_name(c));
		return;
	}
	check_keys(v, c, at, keys, "check, text, metric, of, at, than_at, group, than, op, value, "
		   "factor, margin, diverged");
	char words[160];
	const char *kind = want_text(v, c, at, "check", 1, 16);
	int k = -1;
	if (kind) {
		k = index_of(recipe_check_names, kind);
		if (k < 0) {
			sweep_pointer_join(ptr, sizeof ptr, at, "check");
			bad(v, ptr, "expected %s", choices(recipe_check_names, words, sizeof words));
		}
	}
	want_text(v, c, at, "text", 1, RECIPE_TEXT_MAX);
	const char *metric = want_text(v, c, at, "metric", 1, RECIPE_METRIC_MAX);
	if (metric && !name_ok(metric)) {
		sweep_pointer_join(ptr, sizeof ptr, at, "metric");
		bad(v, ptr, "a metric name is 1..%d bytes of letters, digits, '_', '.', '-'",
		    RECIPE_METRIC_MAX);
	}
	const cJSON *of = cJSON_GetObjectItemCaseSensitive(c, "of");
	sweep_pointer_join(ptr, sizeof ptr, at, "of");
	if (of) {
		struct recipe_expr e;
		char why[200];
		if (!cJSON_IsString(of) || strlen(of->valuestring) > RECIPE_EXPR_MAX)
			bad(v, ptr, "expected a depth expression of at most %d bytes such as "
			    "\"depth[-1]/depth[0]\", got %s", RECIPE_EXPR_MAX,
			    cJSON_IsString(of) ? "a longer one" : sweep_json_type_name(of));
		else if (recipe_expr_parse(of->valuestring, &e, why, sizeof why) != 0)
			bad(v, ptr, "%s", why);
		else if (k == RECIPE_RATIO && !(e.n == 2 && e.op == '/'))
			bad(v, ptr, "a ratio check needs a quotient such as \"depth[-1]/depth[0]\"");
	} else if (k == RECIPE_RATIO) {
		bad(v, ptr, "required for a ratio check: a quotient such as \"depth[-1]/depth[0]\"");
	}
	static const char *const ats[] = { "at", "than_at" };
	for (int i = 0; i < 2; i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, ats[i]);
		if (!a)
			continue;
		sweep_pointer_join(ptr, sizeof ptr, at, ats[i]);
		int okw = cJSON_IsString(a) && index_of(recipe_at_names, a->valuestring) >= 0;
		int okn = finite_number(a) && a->valuedouble == floor(a->valuedouble) &&
			  a->valuedouble >= 0 && a->valuedouble <= TWO53;
		if (i == 1 && k >= 0 && k != RECIPE_COMPARE)
			bad(v, ptr, "only a compare check reads its second group at another step");
		else if (!okw && !okn)
			bad(v, ptr, "expected %s, or a step (an integer ≥ 0)",
			    choices(recipe_at_names, words, sizeof words));
	}
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(c, "group");
	sweep_pointer_join(ptr, sizeof ptr, at, "group");
	if (!g)
		bad(v, ptr, "required: the cells the check reads, e.g. {\"norm.placement\": \"pre\"} "
		    "({} for every cell)");
	else
		check_group(v, g, ptr);
	const cJSON *th = cJSON_GetObjectItemCaseSensitive(c, "than");
	sweep_pointer_join(ptr, sizeof ptr, at, "than");
	if (k == RECIPE_COMPARE && !th)
		bad(v, ptr, "required for a compare check: the group to compare with");
	else if (th && k >= 0 && k != RECIPE_COMPARE)
		bad(v, ptr, "only a compare check has a second group");
	else if (th)
		check_group(v, th, ptr);
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(c, "op");
	sweep_pointer_join(ptr, sizeof ptr, at, "op");
	if (!op)
		bad(v, ptr, "required: %s", choices(recipe_op_names, words, sizeof words));
	else if (!cJSON_IsString(op) || recipe_op_parse(op->valuestring) < 0)
		bad(v, ptr, "expected %s", choices(recipe_op_names, words, sizeof words));
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(c, "value");
	sweep_pointer_join(ptr, sizeof ptr, at, "value");
	if (k == RECIPE_COMPARE && val)
		bad(v, ptr, "a compare check compares with its \"than\" group (use factor and margin), "
		    "not a value");
	else if ((k == RECIPE_VALUE || k == RECIPE_RATIO) && !val)
		bad(v, ptr, "required: the number the group's value is compared with");
	else if (val && !finite_number(val))
		bad(v, ptr, "expected a finite number, got %s", sweep_json_type_name(val));
	static const char *const cmp_only[] = { "factor", "margin" };
	for (int i = 0; i < 2; i++) {
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, cmp_only[i]);
		sweep_pointer_join(ptr, sizeof ptr, at, cmp_only[i]);
		if (!x)
			continue;
		if (k >= 0 && k != RECIPE_COMPARE)
			bad(v, ptr, "only a compare check has a %s", cmp_only[i]);
		else if (!finite_number(x))
			bad(v, ptr, "expected a finite number, got %s", sweep_json_type_name(x));
	}
	const cJSON *dv = cJSON_GetObjectItemCaseSensitive(c, "diverged");
	if (dv && !(cJSON_IsString(dv) && index_of(recipe_diverged_names, dv->valuestring) >= 0)) {
		sweep_pointer_join(ptr, sizeof ptr, at, "diverged");
		bad(v, ptr, "expected %s (inf: a diverged cell counts as +infinity; skip: it is left "
		    "out)", choices(recipe_diverged_names, words, sizeof words));
	}
}

static void figure_one(struct vctx *v, const cJSON *f, const char *at)
{
	static const char *const keys[] = { "kind", "title", "metric", "site", "steps", "log",
					    "points", NULL };
	char ptr[192], words[160];
	if (!cJSON_IsObject(f)) {
		bad(v, at, "expected a figure object, got %s", sweep_json_type_name(f));
		return;
	}
	check_keys(v, f, at, keys, "kind, title, metric, site, steps, log, points");
	const char *kind = want_text(v, f, at, "kind", 1, 16);
	int scurve = kind && strcmp(kind, "scurve") == 0;
	int depth = kind && strcmp(kind, "depth") == 0;
	if (kind && index_of(recipe_figure_names, kind) < 0) {
		sweep_pointer_join(ptr, sizeof ptr, at, "kind");
		bad(v, ptr, "expected %s", choices(recipe_figure_names, words, sizeof words));
		kind = NULL;
	}
	want_text(v, f, at, "title", 0, RECIPE_TEXT_MAX);
	const char *metric = want_text(v, f, at, "metric", kind && !scurve, RECIPE_METRIC_MAX);
	const char *site = want_text(v, f, at, "site", scurve, RECIPE_METRIC_MAX);
	if ((metric && !name_ok(metric)) || (site && !name_ok(site))) {
		sweep_pointer_join(ptr, sizeof ptr, at, metric ? "metric" : "site");
		bad(v, ptr, "a name is 1..%d bytes of letters, digits, '_', '.', '-'", RECIPE_METRIC_MAX);
	}
	if (metric && scurve) {
		sweep_pointer_join(ptr, sizeof ptr, at, "metric");
		bad(v, ptr, "an scurve figure draws a norm site's samples: give \"site\", not a metric");
	}
	if (site && kind && !scurve) {
		sweep_pointer_join(ptr, sizeof ptr, at, "site");
		bad(v, ptr, "only an scurve figure has a site");
	}
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(f, "steps");
	if (st) {
		sweep_pointer_join(ptr, sizeof ptr, at, "steps");
		if (kind && !depth)
			bad(v, ptr, "only a depth figure has steps");
		else if (!finite_number(st) || st->valuedouble != floor(st->valuedouble) ||
			 st->valuedouble < 1 || st->valuedouble > RECIPE_DEPTH_STEPS_MAX)
			bad(v, ptr, "expected an integer in 1..%d (profiles at that many steps)",
			    RECIPE_DEPTH_STEPS_MAX);
	}
	const cJSON *lg = cJSON_GetObjectItemCaseSensitive(f, "log");
	if (lg && !cJSON_IsBool(lg)) {
		sweep_pointer_join(ptr, sizeof ptr, at, "log");
		bad(v, ptr, "expected true or false (a log y axis), got %s", sweep_json_type_name(lg));
	}
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(f, "points");
	if (pt) {
		sweep_pointer_join(ptr, sizeof ptr, at, "points");
		if (kind && !scurve)
			bad(v, ptr, "only an scurve figure has points");
		else if (!finite_number(pt) || pt->valuedouble != floor(pt->valuedouble) ||
			 pt->valuedouble < 1 || pt->valuedouble > RECIPE_POINTS_MAX)
			bad(v, ptr, "expected an integer in 1..%d", RECIPE_POINTS_MAX);
	}
}

int recipe_validate(const cJSON *r, recipe_err_fn err, void *ctx)
{
	static const char *const keys[] = { "claim", "paper", "figure", "group_by", "checks",
					    "figures", NULL };
	struct vctx v = { err, ctx, 0 };
	char ptr[192];
	if (!cJSON_IsObject(r)) {
		bad(&v, "/recipe", "expected an object with claim, paper, figure and checks, got %s",
		    sweep_json_type_name(r));
		return v.n;
	}
	check_keys(&v, r, "/recipe", keys, "claim, paper, figure, group_by, checks, figures");
	want_text(&v, r, "/recipe", "claim", 1, RECIPE_TEXT_MAX);
	want_text(&v, r, "/recipe", "paper", 1, RECIPE_TEXT_MAX);
	want_text(&v, r, "/recipe", "figure", 1, RECIPE_TEXT_MAX);

	const cJSON *gb = cJSON_GetObjectItemCaseSensitive(r, "group_by");
	if (gb) {
		int n = cJSON_GetArraySize(gb);
		if (!cJSON_IsArray(gb) || n < 1 || n > RECIPE_GROUP_BY_MAX) {
			bad(&v, "/recipe/group_by", "expected an array of 1..%d dotted spec paths, got %s",
			    RECIPE_GROUP_BY_MAX, cJSON_IsArray(gb) ? "another length" : sweep_json_type_name(gb));
		} else {
			int i = 0;
			for (const cJSON *p = gb->child; p; p = p->next, i++) {
				ptr_idx(ptr, sizeof ptr, "/recipe/group_by", i);
				if (!cJSON_IsString(p) || !path_ok(p->valuestring))
					bad(&v, ptr, "expected a dotted spec path such as "
					    "\"norm.placement\"");
			}
		}
	}

	const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r, "checks");
	if (!checks) {
		bad(&v, "/recipe/checks", "required: 1..%d checks that decide the claim",
		    RECIPE_CHECKS_MAX);
	} else if (!cJSON_IsArray(checks) || cJSON_GetArraySize(checks) < 1 ||
		   cJSON_GetArraySize(checks) > RECIPE_CHECKS_MAX) {
		bad(&v, "/recipe/checks", "expected an array of 1..%d checks, got %s",
		    RECIPE_CHECKS_MAX, cJSON_IsArray(checks) ? "another length" : sweep_json_type_name(checks));
	} else {
		int i = 0;
		for (const cJSON *c = checks->child; c; c = c->next, i++) {
			ptr_idx(ptr, sizeof ptr, "/recipe/checks", i);
			check_one(&v, c, ptr);
		}
	}

	const cJSON *figs = cJSON_GetObjectItemCaseSensitive(r, "figures");
	if (figs) {
		if (!cJSON_IsArray(figs) || cJSON_GetArraySize(figs) > RECIPE_FIGURES_MAX) {
			bad(&v, "/recipe/figures", "expected an array of at most %d figures, got %s",
			    RECIPE_FIGURES_MAX, cJSON_IsArray(figs) ? "a longer one" : sweep_json_type_name(figs));
		} else {
			int i = 0;
			for (const cJSON *f = figs->child; f; f = f->next, i++) {
				ptr_idx(ptr, sizeof ptr, "/recipe/figures", i);
				figure_one(&v, f, ptr);
			}
		}
	}
	return v.n;
}

/* ---- against the cells ---- */

static int count_matching(const cJSON *group, const cJSON *const *specs, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += specs[i] && recipe_group_match(group, specs[i]);
	return k;
}

/* Names the first path of group no cell has at all (a typo), for the message. */
static const char *missing_path(const cJSON *group, const cJSON *const *specs, int n)
{
	for (const cJSON *it = group->child; it; it = it->next) {
		int seen = 0;
		for (int i = 0; i < n && !seen; i++)
			seen = specs[i] && recipe_path_get(specs[i], it->string) != NULL;
		if (!seen)
			return it->string;
	}
	return NULL;
}

static void group_selects(struct vctx *v, const cJSON *group, const char *at,
			  const cJSON *const *specs, int n)
{
	if (!group || count_matching(group, specs, n) > 0)
		return;
	const char *miss = missing_path(group, specs, n);
	if (miss)
		bad(v, at, "matches no cell: no cell's spec has a field \"%s\"", miss);
	else
		bad(v, at, "matches no cell of the sweep (no cell has all of these values)");
}

int recipe_check_cells(const cJSON *r, const cJSON *const *specs, int n, recipe_err_fn err,
		       void *ctx)
{
	struct vctx v = { err, ctx, 0 };
	char ptr[192];
	const cJSON *gb = cJSON_GetObjectItemCaseSensitive(r, "group_by");
	int i = 0;
	for (const cJSON *p = gb ? gb->child : NULL; p; p = p->next, i++) {
		int seen = 0;
		for (int c = 0; c < n && !seen; c++)
			seen = specs[c] && recipe_path_get(specs[c], p->valuestring) != NULL;
		if (!seen) {
			ptr_idx(ptr, sizeof ptr, "/recipe/group_by", i);
			bad(&v, ptr, "no cell's spec has a field \"%s\"", p->valuestring);
		}
	}
	const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r, "checks");
	i = 0;
	for (const cJSON *c = checks ? checks->child : NULL; c; c = c->next, i++) {
		char base[64];
		ptr_idx(base, sizeof base, "/recipe/checks", i);
		sweep_pointer_join(ptr, sizeof ptr, base, "group");
		group_selects(&v, cJSON_GetObjectItemCaseSensitive(c, "group"), ptr, specs, n);
		sweep_pointer_join(ptr, sizeof ptr, base, "than");
		group_selects(&v, cJSON_GetObjectItemCaseSensitive(c, "than"), ptr, specs, n);
	}
	return v.n;
}

/* ---- groups and comparisons ---- */

const cJSON *recipe_path_get(const cJSON *spec, const char *path)
{
	char seg[130];
	const char *s = path;
	const cJSON *o = spec;
	while (o && *s) {
		const char *e = strchr(s, '.');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n >= sizeof seg)
			return NULL;
		memcpy(seg, s, n);
		seg[n] = '\0';
		if (!cJSON_IsObject(o))
			return NULL;
		o = cJSON_GetObjectItemCaseSensitive(o, seg);
		s = e ? e + 1 : s + n;
	}
	return o;
}

int recipe_group_match(const cJSON *group, const cJSON *spec)
{
	for (const cJSON *it = group ? group->child : NULL; it; it = it->next) {
		const cJSON *have = recipe_path_get(spec, it->string);
		if (!have || !cJSON_Compare(have, it, 1))
			return 0;
	}
	return 1;
}

int recipe_op_parse(const char *s)
{
	return index_of(recipe_op_names, s);
}

const char *recipe_op_name(int op)
{
	return op >= RECIPE_LT && op <= RECIPE_GE ? recipe_op_names[op] : "?";
}

int recipe_op_holds(int op, double a, double b)
{
	if (isnan(a) || isnan(b))
		return 0;
	switch (op) {
	case RECIPE_LT: return a < b;
	case RECIPE_LE: return a <= b;
	case RECIPE_GT: return a > b;
	case RECIPE_GE: return a >= b;
	}
	return 0;
}
