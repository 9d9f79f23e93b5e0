/*
 * report.h — a sweep's report: its recipe's checks evaluated over the cells' stored metrics (each
 * one holds, fails or is not_yet decided, with the numbers it used) and the data of the
 * paper-style figures (loss with seed bands, variance and gradient norm against depth at several
 * steps, a depth metric such as α over time, the norm's S-curve), per group of cells.
 *
 * The data comes through struct report_src, so the same builder serves the daemon (the SQLite
 * store) and the CLI (metrics.jsonl files). Cells are grouped by the recipe's group_by paths
 * (default: the request's grid and zip paths); seeds, and any other axis not grouped by, are
 * averaged over.
 *
 * Pure logic over the source's callbacks: no I/O of its own, no globals; thread-safe when the
 * source is. Memory from nl_malloc and cJSON.
 */
#ifndef REPORT_H
#define REPORT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#define REPORT_GROUPS_MAX 64         /* groups a report draws; further ones are counted, not drawn */
#define REPORT_SERIES_POINTS 1000    /* steps one group's series keeps (evenly thinned) */
#define REPORT_DEPTH_TIME_STEPS 200  /* steps one depth_time figure keeps */

/* A check's verdict: "holds", "fails", "not_yet" (NULL-terminated; the OpenAPI enum's source). */
extern const char *const report_status_names[];

enum report_state {
	REPORT_DONE,             /* succeeded (or stopped dead by run health): its data is complete */
	REPORT_DIVERGED,         /* ended as diverged: counts as +inf in a check (or is skipped) */
	REPORT_PENDING,          /* queued, running or interrupted: checks on it are not_yet */
	REPORT_FAILED,           /* failed or cancelled: checks on it are not_yet until a retry */
};

struct report_cell {
	int64_t id;              /* the experiment's id (0 in the CLI) */
	int cell;                /* index in the sweep */
	int state;               /* enum report_state */
	const char *status;      /* the status's name, shown as is; borrowed */
	const cJSON *spec;       /* the cell's canonical spec as a tree; borrowed */
};

typedef int (*report_row_fn)(void *cbx, int64_t step, const double *v, int n);
typedef int (*report_point_fn)(void *cbx, int64_t step, double v);
typedef int (*report_samples_fn)(void *cbx, int64_t step, const float *x, const float *y,
				 const int32_t *channel, int n);

/* Each call returns 0 (also when there is no such metric) or a negative code, after which the
 * report stops with that code; a callback's non-zero answer stops that scan (not an error). */
struct report_src {
	void *ctx;
	/* every depth row of `name` in step order */
	int (*depth)(void *ctx, const struct report_cell *c, const char *name, report_row_fn cb,
		     void *cbx);
	/* every point of the scalar series `name` in step order (non-finite values as NAN) */
	int (*scalar)(void *ctx, const struct report_cell *c, const char *name, report_point_fn cb,
		      void *cbx);
	/* the samples of norm site `site` at its latest step: cb once, or not at all */
	int (*samples)(void *ctx, const struct report_cell *c, const char *site,
		       report_samples_fn cb, void *cbx);
};

/*
 * Builds the report of the sweep request `req` (its "recipe" member may be absent: no checks,
 * the default figures) over cells[0..n-1] in cell order. On success returns 0 and *out (caller
 * frees with cJSON_Delete):
 *   {"recipe": {...} | null, "group_by": [paths], "groups": [{"key", "label", "cells"}],
 *    "summary": {"holds", "fails", "not_yet"}, "checks": [...], "figures": [...]}
 * Returns NL_ENOMEM, or the source's negative code.
 */
int report_build(const cJSON *req, const struct report_cell *cells, int n,
		 const struct report_src *src, cJSON **out);

#endif
