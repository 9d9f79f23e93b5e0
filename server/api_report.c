/*
 * api_report.c — GET /api/v1/sweeps/{id}/report: the sweep's stored request (with its recipe),
 * its cells from the store, and report.c's checks and figures read through a report_src over this
 * request's own reader connection.
 *
 * Owns nothing beyond one request. Runs on an HTTP connection thread; reads only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "nl.h"
#include "recipe.h"
#include "report.h"

#define REPORT_PAGE 1000           /* experiments per store list call */

struct cells {
	struct report_cell *c;
	cJSON **spec;                  /* parsed canonical specs, owned */
	char (*status)[16];
	int n, cap;
	int64_t last;
	int rows;
	int oom;
};

static int state_of(int status)
{
	switch (status) {
	case STORE_SUCCEEDED:
	case STORE_DEAD: return REPORT_DONE;   /* stopped by run health: its data ends there */
	case STORE_DIVERGED: return REPORT_DIVERGED;
	case STORE_FAILED:
	case STORE_CANCELLED: return REPORT_FAILED;
	default: return REPORT_PENDING;
	}
}

static int cell_cb(void *arg, const struct store_experiment *e)
{
	struct cells *c = arg;
	c->last = e->id;
	c->rows++;
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 64;
		struct report_cell *nc = nl_realloc(c->c, (size_t)cap * sizeof *nc);
		if (nc)
			c->c = nc;
		cJSON **ns = nc ? nl_realloc(c->spec, (size_t)cap * sizeof *ns) : NULL;
		if (ns)
			c->spec = ns;
		char (*st)[16] = ns ? nl_realloc(c->status, (size_t)cap * sizeof *st) : NULL;
		if (!st) {
			c->oom = 1;
			return 1;
		}
		c->status = st;
		c->cap = cap;
	}
	cJSON *spec = e->spec ? cJSON_Parse(e->spec) : cJSON_CreateObject();
	if (!spec) {
		c->oom = 1;
		return 1;
	}
	c->spec[c->n] = spec;
	nl_strlcpy(c->status[c->n], store_status_name(e->status), sizeof c->status[c->n]);
	c->c[c->n] = (struct report_cell){ e->id, e->cell, state_of(e->status), NULL, spec };
	c->n++;
	return 0;
}

static void cells_free(struct cells *c)
{
	for (int i = 0; i < c->n; i++)
		cJSON_Delete(c->spec[i]);
	nl_free(c->c);
	nl_free(c->spec);
	nl_free(c->status);
}

/* ---- the store as a report source ---- */

static int src_depth(void *ctx, const struct report_cell *c, const char *name, report_row_fn cb,
		     void *cbx)
{
	struct store_err err = { 0 };
	int rc = store_depth_get(ctx, c->id, name, -1, 1, cb, cbx, &err);
	return rc < 0 ? rc : 0;
}

static int src_scalar(void *ctx, const struct report_cell *c, const char *name, report_point_fn cb,
		      void *cbx)
{
	struct store_err err = { 0 };
	int rc = store_metric_scan(ctx, c->id, name, cb, cbx, &err);
	return rc < 0 ? rc : 0;
}

struct samples_fwd {
	report_samples_fn cb;
	void *cbx;
};

static int samples_cb(void *arg, const struct store_samples *sm)
{
	struct samples_fwd *f = arg;
	return f->cb(f->cbx, sm->step, sm->x, sm->y, sm->channel, sm->n);
}

static int src_samples(void *ctx, const struct report_cell *c, const char *site,
		       report_samples_fn cb, void *cbx)
{
	struct store_err err = { 0 };
	struct samples_fwd f = { cb, cbx };
	int rc = store_samples_get(ctx, c->id, site, -1, samples_cb, &f, &err);
	return rc < 0 ? rc : 0;
}

static void h_report(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_sweep w;
	struct store_err err = { 0 };
	struct cells cells;
	cJSON *rq = NULL, *rep = NULL;
	char what[48];

	memset(&w, 0, sizeof w);
	memset(&cells, 0, sizeof cells);
	snprintf(what, sizeof what, "sweep %" PRId64, req->params[0]);
	struct store *rd = api_reader(d, r);
	if (!rd)
		return;
	if (store_sweep_get(rd, req->params[0], &w, &err) < 0) {
		api_store_problem(r, &err, what);
		goto out;
	}
	if (api_hide_unless_readable(req, r, w.owner, what))
		goto out;
	rq = w.request ? cJSON_Parse(w.request) : NULL;
	if (!rq) {
		http_problem(r, 500, "internal", "the sweep's stored request does not parse", NULL, NULL,
			     0);
		goto out;
	}
	struct store_filter f;
	memset(&f, 0, sizeof f);
	f.status = -1;
	f.sweep_id = w.id;
	f.limit = REPORT_PAGE;
	do {
		f.after_id = cells.last;
		cells.rows = 0;
		if (store_experiment_list(rd, &f, cell_cb, &cells, &err) < 0) {
			api_store_problem(r, &err, what);
			goto out;
		}
	} while (!cells.oom && cells.rows == REPORT_PAGE);
	if (cells.oom) {
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		goto out;
	}
	for (int i = 0; i < cells.n; i++)
		cells.c[i].status = cells.status[i];
	struct report_src src = { rd, src_depth, src_scalar, src_samples };
	int rc = report_build(rq, cells.c, cells.n, &src, &rep);
	if (rc == NL_ENOMEM) {
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		goto out;
	}
	if (rc != 0) {
		char detail[96];
		snprintf(detail, sizeof detail, "reading the metrics of %s failed (code %d)", what, rc);
		http_problem(r, 500, "store_error", detail, NULL, NULL, 0);
		goto out;
	}
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(rq, "name");
	int counts[STORE_STATUS_COUNT] = { 0 };
	for (int i = 0; i < cells.n; i++)
		for (int s = STORE_QUEUED; s < STORE_STATUS_COUNT; s++)
			counts[s] += strcmp(cells.status[i], store_status_name(s)) == 0;
	cJSON *cn = cJSON_CreateObject();
	if (!cn || !cJSON_AddItemToObject(rep, "counts", cn)) {
		cJSON_Delete(cn);
		cn = NULL;
	}
	for (int s = STORE_QUEUED; cn && s < STORE_STATUS_COUNT; s++)
		if (!cJSON_AddNumberToObject(cn, store_status_name(s), counts[s]))
			cn = NULL;
	if (!cn || !cJSON_AddNumberToObject(rep, "id", (double)w.id) ||
	    !cJSON_AddStringToObject(rep, "owner", w.owner) ||
	    !(cJSON_IsString(name) ? cJSON_AddStringToObject(rep, "name", name->valuestring) :
				     cJSON_AddNullToObject(rep, "name")) ||
	    !cJSON_AddNumberToObject(rep, "n_cells", cells.n)) {
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		goto out;
	}
	api_reply(r, 200, rep);
	rep = NULL;
out:
	cJSON_Delete(rep);
	cJSON_Delete(rq);
	cells_free(&cells);
	store_sweep_clear(&w);
	store_close(rd);
}

/* {"type":"string","enum":[names...]} as o's member key (keeping its "default"). */
static void put_enum(cJSON *o, const char *key, const char *const *names)
{
	if (!o)
		return;
	cJSON *e = cJSON_CreateObject();
	cJSON *arr = e && cJSON_AddStringToObject(e, "type", "string") ?
		     cJSON_AddArrayToObject(e, "enum") : NULL;
	for (int i = 0; arr && names[i]; i++)
		if (!cJSON_AddItemToArray(arr, cJSON_CreateString(names[i])))
			arr = NULL;
	const cJSON *dflt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, key),
							     "default");
	if (!arr || (dflt && !cJSON_AddItemToObject(e, "default", cJSON_Duplicate(dflt, 1)))) {
		cJSON_Delete(e);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(o, key) ? !cJSON_ReplaceItemInObjectCaseSensitive(o, key, e) :
						       !cJSON_AddItemToObject(o, key, e))
		cJSON_Delete(e);
}

static cJSON *at(cJSON *o, const char *const *path)
{
	for (int i = 0; o && path[i]; i++)
		o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
	return o;
}

void api_report_openapi(cJSON *doc)
{
	static const char *const schemas_p[] = { "components", "schemas", NULL };
	static const char *const check_p[] = { "Recipe", "properties", "checks", "items", "properties",
					       NULL };
	static const char *const fig_p[] = { "Recipe", "properties", "figures", "items", "properties",
					     NULL };
	cJSON *schemas = at(doc, schemas_p);
	cJSON *check = at(schemas, check_p), *fig = at(schemas, fig_p);
	if (!schemas)
		return;
	put_enum(check, "check", recipe_check_names);
	put_enum(check, "op", recipe_op_names);
	put_enum(check, "diverged", recipe_diverged_names);
	put_enum(fig, "kind", recipe_figure_names);
	put_enum(schemas, "CheckStatus", report_status_names);
}

const struct http_route api_report_routes[] = {
	{ "GET", "/api/v1/sweeps/{id}/report", HTTP_READ, h_report },
};
const int api_report_routes_n = (int)(sizeof api_report_routes / sizeof api_report_routes[0]);
