/*
 * report_int.h — what report.c (groups, checks, the report) and report_figures.c (the figures'
 * data) share: the builder's context, the groups, and small cJSON helpers. Internal to the two.
 */
#ifndef REPORT_INT_H
#define REPORT_INT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"
#include "report.h"

/* ---- groups ----------------------------------------------------------------------------------- */

struct report_group {
	cJSON *key;              /* {"path": value, ...}; owned */
	char label[256];
	int *cells;              /* indices into the cells array; owned */
	int n;
};

struct report_ctx {
	const struct report_cell *cells;
	int n_cells;
	const struct report_src *src;
	const char *const *by;   /* group_by paths (borrowed) */
	int n_by;
	struct report_group *groups;
	int n_groups;
	int more_groups;         /* cells in groups past REPORT_GROUPS_MAX */
	int rc;                  /* first error: NL_ENOMEM or the source's code */
};

static inline void report__fail(struct report_ctx *cx, int rc)
{
	if (!cx->rc)
		cx->rc = rc;
}

/* ---- small helpers ---------------------------------------------------------------------------- */

/* A number, or null when it is not finite (JSON has no NaN or infinity). */
static inline int add_num(cJSON *o, const char *k, double v)
{
	return (isfinite(v) ? cJSON_AddNumberToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

static inline cJSON *num_or_null(double v)
{
	return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static inline cJSON *num_array(const double *v, int n)
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

static inline cJSON *float_array(const float *v, int n)
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

static inline int add(cJSON *parent, const char *k, cJSON *child)
{
	if (!child)
		return 0;
	if (!cJSON_AddItemToObject(parent, k, child)) {
		cJSON_Delete(child);
		return 0;
	}
	return 1;
}

static inline int push(cJSON *arr, cJSON *child)
{
	if (!child)
		return 0;
	if (!cJSON_AddItemToArray(arr, child)) {
		cJSON_Delete(child);
		return 0;
	}
	return 1;
}

static inline const char *str_of(const cJSON *o, const char *k, const char *dflt)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(it) ? it->valuestring : dflt;
}

/* Spreads m picks over 0..rows-1, first and last included. */
static inline int64_t spread(int64_t k, int64_t m, int64_t rows)
{
	if (m >= rows)
		return k;
	if (m == 1)
		return rows - 1;
	return k * (rows - 1) / (m - 1);
}

/* {"key", "label", "cells"} of a group (report.c). NULL when out of memory. */
cJSON *report__group_head(const struct report_group *G, const struct report_ctx *cx);

/* The data of one recipe figure: the figure object as given plus its "groups" (report_figures.c).
 * NULL with cx->rc set on failure. */
cJSON *report__figure(struct report_ctx *cx, const cJSON *spec);
/* The figures of a report whose recipe names none: loss, resid.var and grad.block. */
cJSON *report__default_figures(void);

#endif
