/*
 * api_quota.c — GET /api/v1/quota: the caller's own limits (by role; 0 = no limit) and what of
 * them is in use now (queued runs, queued sweep cells, running runs), so a user can see how far
 * a sweep may go before submitting it rather than learn it from a 429.
 *
 * Owns nothing beyond one request. Threading: an HTTP connection thread with its own reader.
 */
#include <stdio.h>

#include "api.h"
#include "quota.h"

static void h_quota(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct quota_limits q;
	struct store_owner_counts oc;
	struct store_err err = { 0 };
	cJSON *out = NULL, *lim, *use;

	quota_limits_for(&d->cfg, req->is_admin, &q);
	struct store *rd = api_reader(d, r);
	if (!rd)
		return;
	int rc = store_owner_counts(rd, req->user, &oc, &err);
	store_close(rd);
	if (rc != 0) {
		api_store_problem(r, &err, "counting your runs");
		return;
	}
	out = cJSON_CreateObject();
	if (!out || !cJSON_AddStringToObject(out, "user", req->user) ||
	    !cJSON_AddStringToObject(out, "role", q.admin ? "admin" : "user") ||
	    !(lim = cJSON_AddObjectToObject(out, "limits")) ||
	    !cJSON_AddNumberToObject(lim, "max_queued_runs", (double)q.queued_runs) ||
	    !cJSON_AddNumberToObject(lim, "max_queued_cells", (double)q.queued_cells) ||
	    !cJSON_AddNumberToObject(lim, "max_running", (double)q.running) ||
	    !cJSON_AddNumberToObject(lim, "max_run_gflop", (double)q.run_gflop) ||
	    !cJSON_AddNumberToObject(lim, "max_run_store_bytes", (double)q.run_store_bytes) ||
	    !cJSON_AddNumberToObject(lim, "max_priority", q.max_priority) ||
	    !(use = cJSON_AddObjectToObject(out, "usage")) ||
	    !cJSON_AddNumberToObject(use, "queued_runs", (double)oc.queued_runs) ||
	    !cJSON_AddNumberToObject(use, "queued_cells", (double)oc.queued_cells) ||
	    !cJSON_AddNumberToObject(use, "running", (double)oc.running)) {
		cJSON_Delete(out);
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	api_reply(r, 200, out);
}

const struct http_route api_quota_routes[] = {
	{ "GET", "/api/v1/quota", HTTP_WRITE, h_quota },   /* needs a token: it is about the caller */
};
const int api_quota_routes_n = (int)(sizeof api_quota_routes / sizeof api_quota_routes[0]);
