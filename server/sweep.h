/*
 * sweep.h — expands a sweep request into concrete experiment specs, before anything is stored.
 *
 * A request is a JSON object:
 *   {"base": {spec},                                  default {}
 *    "grid": {"dotted.path": [v, ...], ...},          cartesian product, keys in the given order
 *    "zip":  {"dotted.path": [v, ...], ...},          lists of one length that vary together
 *    "seeds": [int, ...],                             sets "seed" (innermost axis)
 *    "exclude": [{"dotted.path": v, ...}, ...],       drop a cell when every listed path equals v
 *    "priority": int -1000..1000, "name": "str", "on_duplicate": "skip" | "run",
 *    "recipe": {claim, paper, figure, checks, ...}}   what the sweep tests (recipe.h): checked
 *                                                     here, stored with the request, read back
 *                                                     by the sweep's report
 *
 * Cells come in the order (grid key 0, ..., grid key k-1, zip index, seed index), the last one
 * varying fastest; cells dropped by `exclude` leave no gap, so indices are 0..n-1. Each cell is
 * the base, deep-copied, with every swept path set (objects along a path are created), validated
 * by spec_parse, and checked against the thread limit. A recipe's every group must select at least
 * one cell. When the sweep has a "name" and neither the
 * base nor an axis sets "name", a cell's spec name is "<name>/<cell index>".
 *
 * Pure logic: no I/O, no globals, thread-safe. Memory comes from nl_malloc and cJSON (whose hooks
 * main may point at nl_malloc).
 */
#ifndef SWEEP_H
#define SWEEP_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "spec.h"

#define SWEEP_MAX_ERRORS 16      /* expansion stops once this many errors are collected */
#define SWEEP_AXES_MAX 32        /* grid keys + zip keys (+ "seed" for seeds) */
#define SWEEP_PATH_MAX 128       /* bytes of one dotted path */
#define SWEEP_PATH_DEPTH 8       /* segments of one dotted path */
#define SWEEP_NAME_MAX 120       /* bytes of "name": "<name>/<index>" must fit SPEC_NAME_MAX */
#define SWEEP_EXCLUDE_MAX 1024   /* entries of "exclude" */
#define SWEEP_PRIORITY_MIN (-1000)
#define SWEEP_PRIORITY_MAX 1000

enum sweep_dup {
	SWEEP_DUP_SKIP,          /* a cell whose hash already succeeded is not run again (default) */
	SWEEP_DUP_RUN,
};

struct sweep_cell {
	int cell;                /* index in the sweep, 0..n-1 */
	char hash[65];           /* spec_hash of the cell's spec */
	char *canonical;         /* spec_canonical text; owned by the plan (nl_malloc) */
	struct spec *spec;       /* the validated spec (parsed once, from the request's tree);
				  * owned by the plan (nl_malloc) */
	cJSON *overrides;        /* {"dotted.path": value, ...}: what this cell's axes set, in axis
				  * order (the derived "name" is not listed); owned by the plan */
};

struct sweep_plan {
	int n;                   /* cells after exclude */
	struct sweep_cell *cells;/* n cells; owned (nl_malloc), NULL when n == 0 */
	int priority;            /* request "priority", default 0 */
	int on_duplicate;        /* enum sweep_dup */
	char name[SWEEP_NAME_MAX + 1];   /* request "name", "" when absent */
};

struct sweep_limits {
	int max_cells;           /* most cells one sweep may expand to (after exclude), >= 1 */
	int max_threads;         /* a cell whose spec asks for more threads is refused; 0 = no check */
	struct spec_limits spec; /* given to spec_parse for every cell */
};

struct sweep_error {
	char pointer[192];       /* JSON Pointer into the request ("/grid/norm.type/2") or into a
				  * cell ("/cells/3/norm/type"); "" = the whole request */
	char msg[256];
};

struct sweep_errors {
	int n;
	int stopped;             /* 1: expansion stopped at SWEEP_MAX_ERRORS; there may be more */
	int status;              /* HTTP status the errors call for: 400 or 422 */
	char code[32];           /* stable problem code: invalid_sweep (the request's shape),
				  * invalid_spec (a cell's spec), run_too_large (a cell's memory
				  * estimate), threads_over_budget, sweep_too_large, internal (memory) */
	char detail[320];        /* one line for the problem's detail */
	uint64_t count;          /* sweep_too_large: cells the request expands to: after exclude
				  * when that could be counted cheaply, else before exclude (the
				  * detail says which); UINT64_MAX when the product overflowed */
	int limit;               /* sweep_too_large: max_cells */
	struct sweep_error e[SWEEP_MAX_ERRORS];
};

/*
 * Expands req into *out. Returns 0 and fills out (caller frees with sweep_plan_free), or a
 * negative NL_* code with out zeroed (nothing to free) and errs filled:
 *   NL_EINVAL  the request or a cell's spec is invalid (errs->status 400);
 *   NL_ELIMIT  a limit: too many cells (checked by counting before any cell is built), a cell's
 *              memory or thread count (errs->status 422);
 *   NL_ENOMEM  out of memory (errs->code "internal", status 500).
 * When both kinds of error occur, 400 wins. Two cells with the same hash are an error (the same
 * run twice). req, lim are borrowed; errs may be NULL.
 */
int sweep_expand(const cJSON *req, const struct sweep_limits *lim, struct sweep_plan *out,
		 struct sweep_errors *errs);

/* Frees what sweep_expand put in plan and zeroes it; plan may be NULL or already freed. */
void sweep_plan_free(struct sweep_plan *plan);

/* parent + "/" + key as an RFC 6901 token (~ → ~0, / → ~1), cut to fit cap; for the messages
 * of everything that validates a sweep request (the recipe too). */
void sweep_pointer_join(char *dst, size_t cap, const char *parent, const char *key);
/* "an object", "a string", ...: what a JSON value is, for messages. */
const char *sweep_json_type_name(const cJSON *it);

#endif
