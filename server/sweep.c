/*
 * sweep.c — sweep expansion: checks the request's shape, counts its cells before building any
 * (so an oversized sweep costs nothing), then builds each cell as base + overrides, validates it
 * with spec_parse_tree (from the tree, not re-printed text) and keeps the validated spec, its
 * canonical text and hash.
 *
 * Internally the sweep is a set of axes (one per grid key, zip key and "seed") over dimensions
 * (one per grid key, one shared by all zip keys, one for seeds); a cell is one index per
 * dimension, advanced like an odometer with the last dimension fastest. Each exclude entry is
 * compiled to one table per path it names (which values of that axis it matches), so deciding
 * whether a cell is excluded is a few array reads and counting a large sweep stays cheap.
 *
 * Owns only what it returns in the plan (see sweep.h). No globals; thread-safe.
 */
#include "sweep.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"
#include "recipe.h"

/* Counting a sweep above the cap (to apply exclude) visits cells × exclude paths; past this much
 * work the count is reported before exclude instead. */
#define SWEEP_COUNT_WORK_MAX (1ULL << 26)

#define TWO53 9007199254740992.0

enum err_class {
	EC_REQUEST,      /* 400 invalid_sweep */
	EC_SPEC,         /* 400 invalid_spec */
	EC_RUN_SIZE,     /* 422 run_too_large */
	EC_THREADS,      /* 422 threads_over_budget */
	EC_TOO_LARGE,    /* 422 sweep_too_large */
	EC_NOMEM,        /* 500 internal */
	EC_N,
};

static const char *const err_code[EC_N] = {
	"invalid_sweep", "invalid_spec", "run_too_large", "threads_over_budget", "sweep_too_large",
	"internal",
};
static const int err_status[EC_N] = { 400, 400, 422, 422, 422, 500 };

struct axis {
	const char *path;        /* dotted path (borrowed from the request) */
	char pointer[192];       /* where the axis is in the request, for messages */
	int dim;                 /* dimension it follows */
	int n;                   /* values */
	const cJSON **vals;      /* n values, borrowed from the request; owned array */
};

struct cond {
	int axis;
	unsigned char *match;    /* axes[axis].n flags: value k equals the exclude value; owned */
};

struct excl {
	int n;
	struct cond *conds;      /* owned */
};

struct sweep_ctx {
	const struct sweep_limits *lim;
	struct sweep_errors *errs;
	int seen[EC_N];          /* errors of each class */
	int first[EC_N];         /* index in errs->e of the first error of each class, -1 = none */
	const cJSON *base;
	int n_axes;
	struct axis axes[SWEEP_AXES_MAX];
	int n_dims;
	int dim_len[SWEEP_AXES_MAX];
	int n_excl;
	struct excl *excl;       /* owned */
	int name_given;          /* base or an axis sets "name": no derived cell names */
	int oom;
};

/* ---- errors ---------------------------------------------------------------------------------- */

static void add_err(struct sweep_ctx *cx, int cls, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_err(struct sweep_ctx *cx, int cls, const char *pointer, const char *fmt, ...)
{
	struct sweep_errors *errs = cx->errs;
	va_list ap;
	cx->seen[cls]++;
	if (errs->n >= SWEEP_MAX_ERRORS) {
		errs->stopped = 1;
		return;
	}
	struct sweep_error *e = &errs->e[errs->n];
	if (cx->first[cls] < 0)
		cx->first[cls] = errs->n;
	errs->n++;
	nl_strlcpy(e->pointer, pointer, sizeof e->pointer);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

static int errs_full(const struct sweep_ctx *cx)
{
	return cx->errs->n >= SWEEP_MAX_ERRORS;
}

static void nomem(struct sweep_ctx *cx, const char *what)
{
	if (!cx->oom)
		add_err(cx, EC_NOMEM, "", "out of memory while %s", what);
	cx->oom = 1;
}

/* Picks the problem the errors amount to: memory first, then 400s, then 422s. Returns the
 * NL_* code for sweep_expand. */
static int errs_finish(struct sweep_ctx *cx)
{
	static const int order[] = { EC_NOMEM, EC_REQUEST, EC_SPEC, EC_TOO_LARGE, EC_RUN_SIZE,
				     EC_THREADS };
	struct sweep_errors *errs = cx->errs;
	int cls = -1, total = 0;
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		total += cx->seen[order[i]];
		if (cls < 0 && cx->seen[order[i]] && cx->first[order[i]] >= 0)
			cls = order[i];
	}
	if (cls < 0)
		return 0;
	errs->status = err_status[cls];
	nl_strlcpy(errs->code, err_code[cls], sizeof errs->code);
	const struct sweep_error *e = &errs->e[cx->first[cls]];
	char more[64] = "";
	if (errs->stopped)
		snprintf(more, sizeof more, " (and more: stopped after %d errors)", SWEEP_MAX_ERRORS);
	else if (total > 1)
		snprintf(more, sizeof more, " (and %d more)", total - 1);
	snprintf(errs->detail, sizeof errs->detail, "%s%s%s%s", e->pointer,
		 e->pointer[0] ? ": " : "", e->msg, more);
	return cls == EC_NOMEM ? NL_ENOMEM : errs->status == 400 ? NL_EINVAL : NL_ELIMIT;
}

void sweep_pointer_join(char *dst, size_t cap, const char *parent, const char *key)
{
	size_t n;
	nl_strlcpy(dst, parent, cap);
	n = strlen(dst);
	if (n + 2 >= cap)
		return;
	dst[n++] = '/';
	for (const char *k = key; *k && n + 3 < cap; k++) {
		if (*k == '~' || *k == '/') {
			dst[n++] = '~';
			dst[n++] = *k == '~' ? '0' : '1';
		} else {
			dst[n++] = *k;
		}
	}
	dst[n] = '\0';
}

static void pointer_index(char *dst, size_t cap, const char *parent, long i)
{
	snprintf(dst, cap, "%s/%ld", parent, i);
}

const char *sweep_json_type_name(const cJSON *it)
{
	if (cJSON_IsObject(it))
		return "an object";
	if (cJSON_IsArray(it))
		return "an array";
	if (cJSON_IsString(it))
		return "a string";
	if (cJSON_IsNumber(it))
		return "a number";
	if (cJSON_IsBool(it))
		return "a boolean";
	if (cJSON_IsNull(it))
		return "null";
	return "an invalid value";
}

/* An integral JSON number in [lo, hi]. */
static int is_int_in(const cJSON *it, double lo, double hi)
{
	return cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble == floor(it->valuedouble) &&
	       it->valuedouble >= lo && it->valuedouble <= hi;
}

/* ---- paths ----------------------------------------------------------------------------------- */

/* A dotted path: 1..SWEEP_PATH_MAX bytes, no empty segment, at most SWEEP_PATH_DEPTH segments. */
static int path_check(const char *p, char *why, size_t cap)
{
	size_t len = strlen(p);
	int segs = 1;
	if (len == 0 || len > SWEEP_PATH_MAX) {
		snprintf(why, cap, "a path must be 1..%d bytes (a dotted path such as \"norm.type\")",
			 SWEEP_PATH_MAX);
		return -1;
	}
	if (p[0] == '.' || p[len - 1] == '.' || strstr(p, "..")) {
		snprintf(why, cap, "\"%s\" has an empty segment (write dotted paths like \"norm.type\")",
			 p);
		return -1;
	}
	for (const char *c = p; *c; c++)
		segs += *c == '.';
	if (segs > SWEEP_PATH_DEPTH) {
		snprintf(why, cap, "\"%s\" has %d segments, above the limit of %d", p, segs,
			 SWEEP_PATH_DEPTH);
		return -1;
	}
	return 0;
}

/* 1 when p equals q or one is an ancestor of the other ("norm" and "norm.type"). */
static int path_overlap(const char *p, const char *q)
{
	size_t a = strlen(p), b = strlen(q), m = a < b ? a : b;
	if (memcmp(p, q, m) != 0)
		return 0;
	return a == b || (a < b ? q[a] == '.' : p[b] == '.');
}

/* Copies segment i of p into seg (SWEEP_PATH_MAX + 1 bytes); returns 1 if it is the last. */
static int path_segment(const char *p, int i, char *seg)
{
	const char *s = p;
	for (int k = 0; k < i; k++)
		s = strchr(s, '.') + 1;
	const char *e = strchr(s, '.');
	size_t n = e ? (size_t)(e - s) : strlen(s);
	memcpy(seg, s, n);
	seg[n] = '\0';
	return e == NULL;
}

/* Checks that every non-final segment of p is absent or an object in base. */
static int path_through_base(struct sweep_ctx *cx, const struct axis *a)
{
	char seg[SWEEP_PATH_MAX + 1], walked[SWEEP_PATH_MAX + 1] = "";
	const cJSON *obj = cx->base;
	for (int i = 0; obj; i++) {
		if (path_segment(a->path, i, seg))
			return 0;
		if (walked[0])
			nl_strlcpy(walked + strlen(walked), ".", sizeof walked - strlen(walked));
		nl_strlcpy(walked + strlen(walked), seg, sizeof walked - strlen(walked));
		const cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, seg);
		if (child && !cJSON_IsObject(child)) {
			add_err(cx, EC_REQUEST, a->pointer,
				"cannot set \"%s\": base.%s is %s, not an object", a->path, walked,
				sweep_json_type_name(child));
			return -1;
		}
		obj = child;
	}
	return 0;
}

/* Sets the dotted path in obj to v (takes ownership of v), creating objects on the way. */
static int path_set(cJSON *obj, const char *path, cJSON *v)
{
	char seg[SWEEP_PATH_MAX + 1];
	for (int i = 0;; i++) {
		int last = path_segment(path, i, seg);
		cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, seg);
		if (last) {
			/* neither call attaches v when it fails */
			if (child ? cJSON_ReplaceItemInObjectCaseSensitive(obj, seg, v) :
				    cJSON_AddItemToObject(obj, seg, v))
				return 0;
			break;
		}
		if (!child) {
			child = cJSON_AddObjectToObject(obj, seg);
			if (!child)
				break;
		} else if (!cJSON_IsObject(child)) {
			break;       /* path_through_base refused this before any cell was built */
		}
		obj = child;
	}
	cJSON_Delete(v);
	return -1;
}

/* ---- the request's shape --------------------------------------------------------------------- */

static const char *const sweep_keys[] = {
	"base", "grid", "zip", "seeds", "exclude", "priority", "name", "on_duplicate", "recipe", NULL,
};

/* recipe.c's problems become invalid_sweep errors at their pointer. */
static void recipe_err(void *ctx, const char *pointer, const char *msg)
{
	add_err(ctx, EC_REQUEST, pointer, "%s", msg);
}

static int axis_add(struct sweep_ctx *cx, const char *path, const char *pointer, const cJSON *list,
		    int dim)
{
	char why[200];
	struct axis *a;
	if (cx->n_axes >= SWEEP_AXES_MAX) {
		add_err(cx, EC_REQUEST, pointer, "too many swept paths: at most %d over grid, zip and "
			"seeds", SWEEP_AXES_MAX);
		return -1;
	}
	if (path_check(path, why, sizeof why)) {
		add_err(cx, EC_REQUEST, pointer, "%s", why);
		return -1;
	}
	for (int i = 0; i < cx->n_axes; i++) {
		if (path_overlap(cx->axes[i].path, path)) {
			add_err(cx, EC_REQUEST, pointer, "\"%s\" is already swept by %s (\"%s\"); a path "
				"may be swept once", path, cx->axes[i].pointer, cx->axes[i].path);
			return -1;
		}
	}
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
		add_err(cx, EC_REQUEST, pointer, "expected a non-empty array of values, got %s",
			cJSON_IsArray(list) ? "an empty array" : sweep_json_type_name(list));
		return -1;
	}
	a = &cx->axes[cx->n_axes];
	memset(a, 0, sizeof *a);
	a->path = path;
	nl_strlcpy(a->pointer, pointer, sizeof a->pointer);
	a->dim = dim;
	a->n = cJSON_GetArraySize(list);
	a->vals = nl_malloc((size_t)a->n * sizeof *a->vals);
	if (!a->vals) {
		nomem(cx, "reading the axes");
		return -1;
	}
	int k = 0;
	for (const cJSON *v = list->child; v && k < a->n; v = v->next)
		a->vals[k++] = v;
	cx->n_axes++;
	if (strcmp(path, "name") == 0 || strncmp(path, "name.", 5) == 0)
		cx->name_given = 1;
	return path_through_base(cx, a);
}

static int check_grid(struct sweep_ctx *cx, const cJSON *grid)
{
	char ptr[192];
	if (!cJSON_IsObject(grid)) {
		add_err(cx, EC_REQUEST, "/grid", "expected an object of \"dotted.path\": [values], "
			"got %s", sweep_json_type_name(grid));
		return -1;
	}
	for (const cJSON *it = grid->child; it && !errs_full(cx); it = it->next) {
		sweep_pointer_join(ptr, sizeof ptr, "/grid", it->string);
		if (axis_add(cx, it->string, ptr, it, cx->n_dims) == 0)
			cx->dim_len[cx->n_dims++] = cx->axes[cx->n_axes - 1].n;
	}
	return 0;
}

static int check_zip(struct sweep_ctx *cx, const cJSON *zip)
{
	char ptr[192];
	int len = -1, dim = cx->n_dims;
	const char *first = NULL;
	if (!cJSON_IsObject(zip)) {
		add_err(cx, EC_REQUEST, "/zip", "expected an object of \"dotted.path\": [values], "
			"got %s", sweep_json_type_name(zip));
		return -1;
	}
	for (const cJSON *it = zip->child; it && !errs_full(cx); it = it->next) {
		sweep_pointer_join(ptr, sizeof ptr, "/zip", it->string);
		if (axis_add(cx, it->string, ptr, it, dim) != 0)
			continue;
		int n = cx->axes[cx->n_axes - 1].n;
		if (len < 0) {
			len = n;
			first = it->string;
		} else if (n != len) {
			add_err(cx, EC_REQUEST, ptr, "has %d values but \"%s\" has %d; zip lists must "
				"all have the same length", n, first, len);
		}
	}
	if (len > 0)
		cx->dim_len[cx->n_dims++] = len;
	return 0;
}

static int check_seeds(struct sweep_ctx *cx, const cJSON *seeds)
{
	char ptr[64];
	int bad = 0;
	if (cJSON_IsArray(seeds)) {
		long k = 0;
		for (const cJSON *v = seeds->child; v; v = v->next, k++) {
			if (!is_int_in(v, 0, TWO53)) {
				pointer_index(ptr, sizeof ptr, "/seeds", k);
				add_err(cx, EC_REQUEST, ptr, "a seed must be an integer in 0..2^53, got %s",
					cJSON_IsNumber(v) ? "a number outside that" : sweep_json_type_name(v));
				bad = 1;
			}
		}
	}
	if (bad)
		return -1;
	if (axis_add(cx, "seed", "/seeds", seeds, cx->n_dims) != 0)
		return -1;
	cx->dim_len[cx->n_dims++] = cx->axes[cx->n_axes - 1].n;
	return 0;
}

static int axis_of(const struct sweep_ctx *cx, const char *path)
{
	for (int i = 0; i < cx->n_axes; i++)
		if (strcmp(cx->axes[i].path, path) == 0)
			return i;
	return -1;
}

static int check_exclude(struct sweep_ctx *cx, const cJSON *ex)
{
	char ptr[192], base[64];
	int n;
	if (!cJSON_IsArray(ex)) {
		add_err(cx, EC_REQUEST, "/exclude", "expected an array of {\"dotted.path\": value} "
			"objects, got %s", sweep_json_type_name(ex));
		return -1;
	}
	n = cJSON_GetArraySize(ex);
	if (n > SWEEP_EXCLUDE_MAX) {
		add_err(cx, EC_REQUEST, "/exclude", "has %d entries, above the limit of %d", n,
			SWEEP_EXCLUDE_MAX);
		return -1;
	}
	if (n == 0)
		return 0;
	cx->excl = nl_calloc((size_t)n, sizeof *cx->excl);
	if (!cx->excl) {
		nomem(cx, "reading exclude");
		return -1;
	}
	cx->n_excl = n;
	long i = 0;
	for (const cJSON *e = ex->child; e && !errs_full(cx); e = e->next, i++) {
		struct excl *x = &cx->excl[i];
		pointer_index(base, sizeof base, "/exclude", i);
		if (!cJSON_IsObject(e) || !e->child) {
			add_err(cx, EC_REQUEST, base, "expected a non-empty object of \"dotted.path\": "
				"value, got %s", cJSON_IsObject(e) ? "an empty object" : sweep_json_type_name(e));
			continue;
		}
		int m = cJSON_GetArraySize(e);
		x->conds = nl_calloc((size_t)m, sizeof *x->conds);
		if (!x->conds) {
			nomem(cx, "reading exclude");
			return -1;
		}
		for (const cJSON *kv = e->child; kv; kv = kv->next) {
			int a = axis_of(cx, kv->string);
			sweep_pointer_join(ptr, sizeof ptr, base, kv->string);
			if (a < 0) {
				add_err(cx, EC_REQUEST, ptr, "\"%s\" is not swept; exclude may only name "
					"paths of grid, zip or \"seed\" (with seeds)", kv->string);
				continue;
			}
			for (int c = 0; c < x->n; c++) {
				if (x->conds[c].axis == a) {
					add_err(cx, EC_REQUEST, ptr, "duplicate field (given more "
						"than once)");
					a = -1;
					break;
				}
			}
			if (a < 0)
				continue;
			struct cond *c = &x->conds[x->n++];
			c->axis = a;
			c->match = nl_malloc((size_t)cx->axes[a].n);
			if (!c->match) {
				nomem(cx, "reading exclude");
				return -1;
			}
			for (int k = 0; k < cx->axes[a].n; k++)
				c->match[k] = cJSON_Compare(cx->axes[a].vals[k], kv, 1) ? 1 : 0;
		}
	}
	return 0;
}

static int check_request(struct sweep_ctx *cx, const cJSON *req, struct sweep_plan *plan)
{
	char ptr[192];
	const cJSON *grid = NULL, *zip = NULL, *seeds = NULL, *ex = NULL;

	if (!cJSON_IsObject(req)) {
		add_err(cx, EC_REQUEST, "", "a sweep request must be a JSON object, got %s",
			sweep_json_type_name(req));
		return -1;
	}
	for (const cJSON *it = req->child; it; it = it->next) {
		int known = 0;
		sweep_pointer_join(ptr, sizeof ptr, "", it->string ? it->string : "");
		for (int i = 0; sweep_keys[i]; i++)
			known |= strcmp(sweep_keys[i], it->string ? it->string : "") == 0;
		if (!known)
			add_err(cx, EC_REQUEST, ptr, "unknown field (allowed: base, grid, zip, seeds, "
				"exclude, priority, name, on_duplicate, recipe)");
		else if (cJSON_GetObjectItemCaseSensitive(req, it->string) != it)
			add_err(cx, EC_REQUEST, ptr, "duplicate field (given more than once)");
	}

	cx->base = cJSON_GetObjectItemCaseSensitive(req, "base");
	if (cx->base && !cJSON_IsObject(cx->base)) {
		add_err(cx, EC_REQUEST, "/base", "expected a spec object, got %s",
			sweep_json_type_name(cx->base));
		cx->base = NULL;
	}
	if (cx->base && cJSON_GetObjectItemCaseSensitive(cx->base, "name"))
		cx->name_given = 1;

	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(req, "priority");
	if (pr) {
		if (!is_int_in(pr, SWEEP_PRIORITY_MIN, SWEEP_PRIORITY_MAX))
			add_err(cx, EC_REQUEST, "/priority", "expected an integer in %d..%d",
				SWEEP_PRIORITY_MIN, SWEEP_PRIORITY_MAX);
		else
			plan->priority = (int)pr->valuedouble;
	}
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(req, "name");
	if (nm) {
		if (!cJSON_IsString(nm) || strlen(nm->valuestring) > SWEEP_NAME_MAX)
			add_err(cx, EC_REQUEST, "/name", "expected a string of at most %d bytes "
				"(cells are named \"<name>/<cell>\")", SWEEP_NAME_MAX);
		else
			nl_strlcpy(plan->name, nm->valuestring, sizeof plan->name);
	}
	const cJSON *od = cJSON_GetObjectItemCaseSensitive(req, "on_duplicate");
	if (od) {
		if (cJSON_IsString(od) && strcmp(od->valuestring, "skip") == 0)
			plan->on_duplicate = SWEEP_DUP_SKIP;
		else if (cJSON_IsString(od) && strcmp(od->valuestring, "run") == 0)
			plan->on_duplicate = SWEEP_DUP_RUN;
		else
			add_err(cx, EC_REQUEST, "/on_duplicate", "expected \"skip\" or \"run\"");
	}

	/* Axes in expansion order: grid keys, zip, seeds. */
	grid = cJSON_GetObjectItemCaseSensitive(req, "grid");
	zip = cJSON_GetObjectItemCaseSensitive(req, "zip");
	seeds = cJSON_GetObjectItemCaseSensitive(req, "seeds");
	ex = cJSON_GetObjectItemCaseSensitive(req, "exclude");
	if (grid && !cx->oom)
		check_grid(cx, grid);
	if (zip && !cx->oom)
		check_zip(cx, zip);
	if (seeds && !cx->oom)
		check_seeds(cx, seeds);
	/* exclude names axes: only meaningful once they all read well */
	if (ex && !cx->oom && cx->errs->n == 0)
		check_exclude(cx, ex);
	const cJSON *rc = cJSON_GetObjectItemCaseSensitive(req, "recipe");
	if (rc && !cx->oom)
		recipe_validate(rc, recipe_err, cx);
	return cx->errs->n ? -1 : 0;
}

/* ---- counting and building ------------------------------------------------------------------- */

static int excluded(const struct sweep_ctx *cx, const int *idx)
{
	for (int i = 0; i < cx->n_excl; i++) {
		const struct excl *x = &cx->excl[i];
		int all = x->n > 0;
		for (int c = 0; c < x->n && all; c++) {
			const struct cond *k = &x->conds[c];
			all = k->match[idx[cx->axes[k->axis].dim]];
		}
		if (all)
			return 1;
	}
	return 0;
}

/* Next cell index, last dimension fastest; 0 when every cell has been visited. */
static int odometer_next(const struct sweep_ctx *cx, int *idx)
{
	for (int d = cx->n_dims - 1; d >= 0; d--) {
		if (++idx[d] < cx->dim_len[d])
			return 1;
		idx[d] = 0;
	}
	return 0;
}

/* Cells before exclude, saturating at UINT64_MAX. */
static uint64_t product(const struct sweep_ctx *cx)
{
	uint64_t p = 1;
	for (int d = 0; d < cx->n_dims; d++) {
		uint64_t n = (uint64_t)cx->dim_len[d];
		if (p > UINT64_MAX / n)
			return UINT64_MAX;
		p *= n;
	}
	return p;
}

static uint64_t count_kept(const struct sweep_ctx *cx)
{
	int idx[SWEEP_AXES_MAX] = { 0 };
	uint64_t n = 0;
	do
		n += !excluded(cx, idx);
	while (odometer_next(cx, idx));
	return n;
}

static void cell_pointer(char *dst, size_t cap, int cell, const char *rest)
{
	snprintf(dst, cap, "/cells/%d%s", cell, rest);
}

/* Builds cell number `cell` at idx into *out. Returns 0, 1 (the cell is invalid: errors
 * recorded) or NL_ENOMEM. */
static int build_cell(struct sweep_ctx *cx, const int *idx, int cell, const struct sweep_plan *plan,
		      struct sweep_cell *out)
{
	struct spec s;
	struct spec_errors serr;
	char ptr[192];
	cJSON *doc = NULL, *ov = NULL;
	int rc = NL_ENOMEM;

	doc = cx->base ? cJSON_Duplicate(cx->base, 1) : cJSON_CreateObject();
	ov = cJSON_CreateObject();
	if (!doc || !ov)
		goto out;
	for (int a = 0; a < cx->n_axes; a++) {
		const struct axis *ax = &cx->axes[a];
		const cJSON *v = ax->vals[idx[ax->dim]];
		cJSON *v1 = cJSON_Duplicate(v, 1), *v2 = cJSON_Duplicate(v, 1);
		if (!v1 || !v2 || !cJSON_AddItemToObject(ov, ax->path, v2)) {
			cJSON_Delete(v1);
			cJSON_Delete(v2);
			goto out;
		}
		if (path_set(doc, ax->path, v1) != 0)
			goto out;
	}
	if (plan->name[0] && !cx->name_given) {
		char name[SPEC_NAME_MAX];
		snprintf(name, sizeof name, "%s/%d", plan->name, cell);
		cJSON *nv = cJSON_CreateString(name);
		if (!nv || path_set(doc, "name", nv) != 0)
			goto out;
	}
	rc = spec_parse_tree(&s, doc, &cx->lim->spec, &serr);
	if (rc == NL_ENOMEM)
		goto out;
	if (rc != 0) {
		for (int i = 0; i < serr.n && !errs_full(cx); i++) {
			cell_pointer(ptr, sizeof ptr, cell, serr.e[i].pointer);
			add_err(cx, rc == NL_ELIMIT ? EC_RUN_SIZE : EC_SPEC, ptr, "%s", serr.e[i].msg);
		}
		rc = 1;
		goto out;
	}
	if (cx->lim->max_threads > 0 && s.threads > cx->lim->max_threads) {
		cell_pointer(ptr, sizeof ptr, cell, "/threads");
		add_err(cx, EC_THREADS, ptr, "%d threads is above the daemon's thread budget of %d",
			s.threads, cx->lim->max_threads);
		rc = 1;
		goto out;
	}
	rc = NL_ENOMEM;
	out->canonical = spec_canonical(&s);
	out->spec = nl_malloc(sizeof *out->spec);
	if (!out->canonical || !out->spec || spec_hash(&s, out->hash) != 0)
		goto out;
	*out->spec = s;
	out->cell = cell;
	out->overrides = ov;
	ov = NULL;
	rc = 0;
out:
	if (rc == NL_ENOMEM) {
		nl_free(out->canonical);
		nl_free(out->spec);
		out->canonical = NULL;
		out->spec = NULL;
		nomem(cx, "building the cells");
	}
	cJSON_Delete(doc);
	cJSON_Delete(ov);
	return rc;
}

static int cmp_cell_hash(const void *a, const void *b)
{
	const struct sweep_cell *x = *(const struct sweep_cell *const *)a;
	const struct sweep_cell *y = *(const struct sweep_cell *const *)b;
	int c = strcmp(x->hash, y->hash);
	return c ? c : (x->cell > y->cell) - (x->cell < y->cell);
}

/* Two cells with one hash would be the same run twice: name them. */
static int check_distinct(struct sweep_ctx *cx, struct sweep_plan *plan)
{
	char ptr[64];
	if (plan->n < 2)
		return 0;
	struct sweep_cell **by = nl_malloc((size_t)plan->n * sizeof *by);
	if (!by) {
		nomem(cx, "comparing the cells");
		return -1;
	}
	for (int i = 0; i < plan->n; i++)
		by[i] = &plan->cells[i];
	qsort(by, (size_t)plan->n, sizeof *by, cmp_cell_hash);
	for (int i = 1; i < plan->n && !errs_full(cx); i++) {
		if (strcmp(by[i]->hash, by[i - 1]->hash) == 0) {
			cell_pointer(ptr, sizeof ptr, by[i]->cell, "");
			add_err(cx, EC_REQUEST, ptr, "the same run as /cells/%d (identical spec after "
				"defaults); drop the repeated value or add an exclude",
				by[i - 1]->cell);
		}
	}
	nl_free(by);
	return cx->errs->n ? -1 : 0;
}

/* Every group a recipe names must select cells: read each cell's canonical spec as a tree. */
static void check_recipe_cells(struct sweep_ctx *cx, const cJSON *recipe, const struct sweep_plan *plan)
{
	cJSON **specs = nl_calloc((size_t)(plan->n ? plan->n : 1), sizeof *specs);
	if (!specs) {
		nomem(cx, "checking the recipe");
		return;
	}
	for (int i = 0; i < plan->n; i++) {
		specs[i] = cJSON_Parse(plan->cells[i].canonical);
		if (!specs[i]) {
			nomem(cx, "checking the recipe");
			goto out;
		}
	}
	recipe_check_cells(recipe, (const cJSON *const *)specs, plan->n, recipe_err, cx);
out:
	for (int i = 0; i < plan->n; i++)
		cJSON_Delete(specs[i]);
	nl_free(specs);
}

static void ctx_free(struct sweep_ctx *cx)
{
	for (int i = 0; i < cx->n_axes; i++)
		nl_free(cx->axes[i].vals);
	for (int i = 0; i < cx->n_excl; i++) {
		for (int c = 0; c < cx->excl[i].n; c++)
			nl_free(cx->excl[i].conds[c].match);
		nl_free(cx->excl[i].conds);
	}
	nl_free(cx->excl);
}

void sweep_plan_free(struct sweep_plan *plan)
{
	if (!plan)
		return;
	for (int i = 0; i < plan->n && plan->cells; i++) {
		nl_free(plan->cells[i].canonical);
		nl_free(plan->cells[i].spec);
		cJSON_Delete(plan->cells[i].overrides);
	}
	nl_free(plan->cells);
	memset(plan, 0, sizeof *plan);
}

int sweep_expand(const cJSON *req, const struct sweep_limits *lim, struct sweep_plan *out,
		 struct sweep_errors *errs)
{
	struct sweep_errors local;
	struct sweep_plan plan;
	int idx[SWEEP_AXES_MAX] = { 0 };
	uint64_t total, kept;
	int rc;

	struct sweep_ctx *cx = nl_calloc(1, sizeof *cx);
	if (!errs)
		errs = &local;
	memset(errs, 0, sizeof *errs);
	memset(out, 0, sizeof *out);
	memset(&plan, 0, sizeof plan);
	if (!cx) {
		errs->status = 500;
		nl_strlcpy(errs->code, "internal", sizeof errs->code);
		nl_strlcpy(errs->detail, "out of memory while expanding the sweep", sizeof errs->detail);
		return NL_ENOMEM;
	}
	cx->lim = lim;
	cx->errs = errs;
	for (int i = 0; i < EC_N; i++)
		cx->first[i] = -1;
	plan.on_duplicate = SWEEP_DUP_SKIP;

	if (check_request(cx, req, &plan) != 0)
		goto out;

	/* Count before building: a sweep above the cap allocates nothing per cell. */
	total = product(cx);
	kept = total;
	if (total > (uint64_t)lim->max_cells) {
		int exact = cx->n_excl == 0;
		uint64_t work = 0;
		for (int i = 0; i < cx->n_excl; i++)
			work += (uint64_t)cx->excl[i].n;
		if (!exact && total <= SWEEP_COUNT_WORK_MAX && work * total <= SWEEP_COUNT_WORK_MAX) {
			kept = count_kept(cx);
			exact = 1;
		}
		if (kept > (uint64_t)lim->max_cells) {
			errs->count = kept;
			errs->limit = lim->max_cells;
			if (total == UINT64_MAX)
				add_err(cx, EC_TOO_LARGE, "", "the sweep expands to more than %" PRIu64
					" cells, above the limit of %d", UINT64_MAX, lim->max_cells);
			else
				add_err(cx, EC_TOO_LARGE, "", "the sweep expands to %" PRIu64 " cells%s, "
					"above the limit of %d (max_sweep_cells)", kept,
					exact ? "" : " before exclude", lim->max_cells);
			goto out;
		}
	}

	/* kept <= max_cells fits an int; allocate for the cells before exclude (<= kept when exact,
	 * else <= max_cells since total was within it). */
	{
		uint64_t slots = total <= (uint64_t)lim->max_cells ? total : kept;
		plan.cells = nl_calloc(slots ? (size_t)slots : 1, sizeof *plan.cells);
		if (!plan.cells) {
			nomem(cx, "allocating the cells");
			goto out;
		}
	}
	do {
		if (excluded(cx, idx))
			continue;
		/* an invalid cell keeps its number (and a zeroed slot) so later cells keep theirs */
		rc = build_cell(cx, idx, plan.n, &plan, &plan.cells[plan.n]);
		plan.n++;
		if (rc == NL_ENOMEM)
			goto out;
		if (errs_full(cx)) {
			if (odometer_next(cx, idx))
				errs->stopped = 1;
			break;
		}
	} while (odometer_next(cx, idx));
	if (errs->n == 0)
		check_distinct(cx, &plan);
	if (errs->n == 0 && cJSON_GetObjectItemCaseSensitive(req, "recipe"))
		check_recipe_cells(cx, cJSON_GetObjectItemCaseSensitive(req, "recipe"), &plan);
out:
	rc = errs_finish(cx);
	if (rc == 0) {
		*out = plan;
	} else {
		sweep_plan_free(&plan);
	}
	ctx_free(cx);
	nl_free(cx);
	return rc;
}
