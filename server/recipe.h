/*
 * recipe.h — the "recipe" member of a sweep request: the claim a sweep tests, the paper and figure
 * it reproduces, machine-readable checks that decide it, and the figures its report draws.
 *
 *   "recipe": {
 *     "claim": "text", "paper": "text", "figure": "text",         required, 1..RECIPE_TEXT_MAX bytes
 *     "group_by": ["norm.placement", ...],    spec paths whose values split the cells into groups
 *                                             (default: the request's grid and zip paths)
 *     "checks": [ {check}, ... ],             1..RECIPE_CHECKS_MAX
 *     "figures": [ {figure}, ... ]            0..RECIPE_FIGURES_MAX (default: loss, resid.var and
 *                                             grad.block figures)
 *   }
 *   check:  {"check": "value" | "ratio" | "compare", "text": "what it says",
 *            "metric": "resid.var",           a depth metric when "of" is given, else a scalar series
 *            "of": "depth[-1]/depth[0]",      depth expression (below); "ratio" needs a quotient
 *            "at": "last" | "first" | step,   default "last": each cell's own last stored point;
 *                                             a step: the last point at or before it
 *            "group": {"path": value, ...},   the cells it reads ({} = all); the group's value is
 *                                             the mean over its cells (seeds)
 *            "than": {"path": value, ...},    compare only: the other group (may be the same
 *                                             group, read at another step with than_at)
 *            "than_at": like "at",            compare only: the step of the than side (default: at)
 *            "op": "<" | "<=" | ">" | ">=",
 *            "value": number,                 value/ratio: holds when group_value op value
 *            "factor": f, "margin": m,        compare: holds when group op f·than + m (1 and 0)
 *            "diverged": "inf" | "skip"}      a diverged cell counts as +∞ (default) or is left out
 *   figure: {"kind": "series" | "depth" | "depth_time" | "scurve", "title": "text",
 *            "metric": "name" (not scurve), "site": "blocks.0.norm1" (scurve only),
 *            "steps": 1..8 (depth: profiles at that many steps, first and last included; default 4),
 *            "log": bool (y axis), "points": 1..10000 (scurve, default 2000)}
 *
 * Depth expressions, over one depth row v[0..L-1]:
 *   expr  := term | term "/" term | term "-" term
 *   term  := "depth[" int "]"  (negative counts from the end)  |  agg | agg "[" slice "]"
 *   agg   := "mean" | "max" | "min" | "sum"
 *   slice := [bound] ":" [bound],  bound := int | "h" (L/2, rounded down); Python's rules
 *
 * Pure logic: no I/O, no globals, thread-safe. Used by sweep.c (validation at submit), report.c
 * (evaluation) and the CLI.
 */
#ifndef RECIPE_H
#define RECIPE_H

#include <cjson/cJSON.h>

#define RECIPE_TEXT_MAX 2000      /* bytes of claim, paper, figure, a check's text, a title */
#define RECIPE_CHECKS_MAX 32
#define RECIPE_FIGURES_MAX 16
#define RECIPE_GROUP_BY_MAX 8     /* paths in group_by, and in one check's group */
#define RECIPE_METRIC_MAX 96      /* bytes of a metric or site name */
#define RECIPE_EXPR_MAX 64        /* bytes of an "of" expression */
#define RECIPE_DEPTH_STEPS_MAX 8
#define RECIPE_POINTS_MAX 10000

enum recipe_op { RECIPE_LT, RECIPE_LE, RECIPE_GT, RECIPE_GE };

enum recipe_kind { RECIPE_VALUE, RECIPE_RATIO, RECIPE_COMPARE };

/* The words a recipe may use, NULL-terminated, in enum order where there is one: the validator's
 * messages and the OpenAPI document's Recipe enums (api_report_openapi) come from these. */
extern const char *const recipe_check_names[];    /* enum recipe_kind: value, ratio, compare */
extern const char *const recipe_op_names[];       /* enum recipe_op: <, <=, >, >= */
extern const char *const recipe_figure_names[];   /* series, depth, depth_time, scurve */
extern const char *const recipe_diverged_names[]; /* inf, skip */
extern const char *const recipe_at_names[];       /* last, first (or a step) */

/* Reports one problem: pointer is a JSON Pointer into the sweep request ("/recipe/checks/2/op"). */
typedef void (*recipe_err_fn)(void *ctx, const char *pointer, const char *msg);

/*
 * Checks the shape of a recipe (every field, type, range and expression); calls err once per
 * problem. Returns the number of problems (0 = valid). recipe is borrowed.
 */
int recipe_validate(const cJSON *recipe, recipe_err_fn err, void *ctx);

/*
 * Checks a valid recipe against the cells' canonical specs (n trees, borrowed): every check's
 * group and than, and every group_by path, must select at least one cell. Calls err per problem;
 * returns their number.
 */
int recipe_check_cells(const cJSON *recipe, const cJSON *const *specs, int n, recipe_err_fn err,
		       void *ctx);

/* ---- depth expressions ---- */

enum recipe_term_kind { RECIPE_AT, RECIPE_MEAN, RECIPE_MAX, RECIPE_MIN, RECIPE_SUM };

struct recipe_term {
	int kind;                 /* enum recipe_term_kind */
	int index;                /* RECIPE_AT: the layer (negative: from the end) */
	int has_lo, has_hi;       /* slice bounds given */
	int lo, hi;               /* bounds; lo_half/hi_half: "h" */
	int lo_half, hi_half;
};

struct recipe_expr {
	int n;                    /* 1 or 2 terms */
	char op;                  /* '/' or '-' when n == 2 */
	struct recipe_term t[2];
};

/* Parses s. Returns 0, or -1 with why (a message for the user) filled. */
int recipe_expr_parse(const char *s, struct recipe_expr *e, char *why, size_t cap);

/* The expression over v[0..n-1]; NAN when a layer or a slice is out of range. */
double recipe_expr_eval(const struct recipe_expr *e, const double *v, int n);

/* ---- groups and comparisons ---- */

/* The value at a dotted path of a spec tree, or NULL. */
const cJSON *recipe_path_get(const cJSON *spec, const char *path);

/* 1 when every "path": value of group equals the spec's value (numbers compared as cJSON does). */
int recipe_group_match(const cJSON *group, const cJSON *spec);

/* "<" ... ">=" → enum recipe_op, -1 if unknown. */
int recipe_op_parse(const char *s);
const char *recipe_op_name(int op);
/* a op b; false when either is NaN. */
int recipe_op_holds(int op, double a, double b);

#endif
