/*
 * api_schema.c — GET /api/v1/schema: the engine's tables (schema_json: arches, norm types,
 * placements, spec fields with ranges and defaults) plus the store's run statuses. The dashboard
 * builds every list it shows from this answer, so a new norm type or spec field reaches it with
 * no edit here or in web/. Public like the OpenAPI document: it describes, it reveals no run.
 * Runs on HTTP connection threads; builds its answer per request (it is small).
 */
#include <string.h>

#include "api.h"
#include "schema.h"

static void schema_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	(void)ctx;
	(void)req;
	cJSON *o = schema_json();
	cJSON *st = o ? cJSON_AddArrayToObject(o, "statuses") : NULL;
	/* store_status_name answers "unknown" past the last status */
	for (int i = 0; st && strcmp(store_status_name(i), "unknown") != 0; i++)
		if (!cJSON_AddItemToArray(st, cJSON_CreateString(store_status_name(i))))
			st = NULL;
	if (!st) {
		cJSON_Delete(o);
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	api_reply(r, 200, o);
}

const struct http_route api_schema_routes[] = {
	{ "GET", "/api/v1/schema", HTTP_PUBLIC, schema_get },
};
const int api_schema_routes_n = (int)(sizeof api_schema_routes / sizeof api_schema_routes[0]);
