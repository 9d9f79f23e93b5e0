/*
 * api_schema.c — GET /api/v1/schema: the engine's tables (schema_json: arches, norm types,
 * placements, spec fields with ranges and defaults) plus the store's run statuses. The dashboard
 * builds every list it shows from this answer, so a new norm type or spec field reaches it with
 * no edit here or in web/. Public like the OpenAPI document: it describes, it reveals no run.
 * api_schema_openapi writes the same table into the OpenAPI document's Spec schema as it is served.
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

/* doc[key] := v (taking v), replacing what was there. */
static void put(cJSON *o, const char *key, cJSON *v)
{
	if (!v)
		return;
	if (cJSON_GetObjectItemCaseSensitive(o, key))
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
	else
		cJSON_AddItemToObject(o, key, v);
}

/* The object member `key` of o, made an empty object first if absent. NULL when out of memory. */
static cJSON *child(cJSON *o, const char *key)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(o, key);
	return c ? c : cJSON_AddObjectToObject(o, key);
}

void api_schema_openapi(cJSON *doc)
{
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "components"),
						 "schemas"), "Spec");
	cJSON *fields = spec ? spec_fields_json() : NULL, *f;
	cJSON_ArrayForEach(f, fields) {
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(f, "key");
		if (!cJSON_IsString(key))
			continue;
		/* "norm.alpha0.attn": properties.norm.properties.alpha0.properties.attn */
		char path[160];
		snprintf(path, sizeof path, "%s", key->valuestring);
		cJSON *o = spec;
		for (char *seg = path, *dot; o && seg; seg = dot ? dot + 1 : NULL) {
			dot = strchr(seg, '.');
			if (dot)
				*dot = '\0';
			o = child(child(o, "properties"), seg);
		}
		if (!o)
			continue;
		static const char *const copy[][2] = {
			{ "type", "type" }, { "enum", "enum" }, { "min", "minimum" }, { "max", "maximum" },
			{ "min_exclusive", "exclusiveMinimum" }, { "max_exclusive", "exclusiveMaximum" },
			{ "min_length", "minLength" }, { "max_length", "maxLength" },
		};
		for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, copy[i][0]);
			if (v)
				put(o, copy[i][1], cJSON_Duplicate(v, 1));
		}
		/* a default another field decides (d_ff, eps, ...) stays the document's prose */
		const cJSON *def = cJSON_GetObjectItemCaseSensitive(f, "default");
		if (def && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "default_depends")))
			put(o, "default", cJSON_Duplicate(def, 1));
	}
	cJSON_Delete(fields);
}
