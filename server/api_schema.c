/*
 * api_schema.c — GET /api/v1/schema: the engine's tables (schema_json: arches, norm types,
 * placements, spec fields with ranges and defaults, run health findings) plus the store's run
 * statuses. The dashboard
 * builds every list it shows from this answer, so a new norm type or spec field reaches it with
 * no edit here or in web/. Public like the OpenAPI document: it describes, it reveals no run.
 * api_schema_openapi writes the same table into the OpenAPI document's Spec schema as it is served.
 * Runs on HTTP connection threads; builds its answer per request (it is small).
 */
#include <string.h>

#include "api.h"
#include "health.h"
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
	cJSON *hs = st ? cJSON_AddArrayToObject(o, "health") : NULL;
	for (int i = 0; hs && i < HEALTH_COUNT; i++)
		if (!cJSON_AddItemToArray(hs, cJSON_CreateString(health_name(i))))
			hs = NULL;
	if (!st || !hs) {
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

/* An object schema that takes no other members. NULL when out of memory. */
static cJSON *object_schema(void)
{
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddStringToObject(o, "type", "object") ||
		  !cJSON_AddFalseToObject(o, "additionalProperties"))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The member `key` of the object schema o's properties: made an object schema when absent. */
static cJSON *property(cJSON *o, const char *key)
{
	cJSON *props = child(o, "properties");
	cJSON *c = props ? cJSON_GetObjectItemCaseSensitive(props, key) : NULL;
	if (!c && props && (c = object_schema()) && !cJSON_AddItemToObject(props, key, c)) {
		cJSON_Delete(c);
		c = NULL;
	}
	return c;
}

/* One field of the engine's table as a JSON Schema: type, enum, range, length, default. */
static void field_schema(cJSON *o, const cJSON *f)
{
	static const char *const copy[][2] = {
		{ "type", "type" }, { "enum", "enum" }, { "min", "minimum" }, { "max", "maximum" },
		{ "min_exclusive", "exclusiveMinimum" }, { "max_exclusive", "exclusiveMaximum" },
		{ "min_length", "minLength" }, { "max_length", "maxLength" },
	};
	cJSON_DeleteItemFromObjectCaseSensitive(o, "additionalProperties");
	for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, copy[i][0]);
		if (v)
			put(o, copy[i][1], cJSON_Duplicate(v, 1));
	}
	const cJSON *def = cJSON_GetObjectItemCaseSensitive(f, "default");
	const cJSON *only = cJSON_GetObjectItemCaseSensitive(f, "arch_only");
	char desc[200] = "";
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "default_depends")))
		snprintf(desc, sizeof desc, "The default depends on other fields (model.arch, "
			 "model.d_model, norm.type, train.steps): GET /api/v1/schema lists each "
			 "arch's resolved defaults.");
	else if (def)
		put(o, "default", cJSON_Duplicate(def, 1));
	if (cJSON_IsString(only)) {
		size_t n = strlen(desc);
		snprintf(desc + n, sizeof desc - n, "%sOnly for model.arch %s.", n ? " " : "",
			 only->valuestring);
	}
	if (desc[0])
		put(o, "description", cJSON_CreateString(desc));
}

/* {"type":"string","enum":[name(0) .. name(n-1)]}, or NULL when out of memory. */
static cJSON *enum_schema(const char *(*name)(int), int n)
{
	cJSON *o = cJSON_CreateObject(), *e = cJSON_CreateArray();
	for (int i = 0; e && i < n; i++)
		if (!cJSON_AddItemToArray(e, cJSON_CreateString(name(i)))) {
			cJSON_Delete(e);
			e = NULL;
		}
	if (!o || !e || !cJSON_AddStringToObject(o, "type", "string") ||
	    !cJSON_AddItemToObject(o, "enum", e)) {
		cJSON_Delete(o);
		cJSON_Delete(e);
		return NULL;
	}
	return o;
}

/*
 * components.schemas.Spec, .Status and .Health, generated from the tables as the document is served:
 * every spec field with its type, range or enum and default (sections become nested object
 * schemas), and the store's run statuses. Nothing in the hand-written document repeats them.
 */
void api_schema_openapi(cJSON *doc)
{
	cJSON *schemas = child(child(doc, "components"), "schemas");
	cJSON *spec = object_schema(), *fields = spec ? spec_fields_json() : NULL, *f;
	if (!schemas || !fields) {
		cJSON_Delete(spec);
		return;
	}
	put(spec, "description", cJSON_CreateString(
		"One training run. Every field has a default, so {} is valid; unknown fields are an "
		"error. The canonical form (defaults filled, keys sorted) is hashed to identify the "
		"run's science. Generated from the engine's spec table, as GET /api/v1/schema is."));
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
			o = property(o, seg);
		}
		if (o)
			field_schema(o, f);
	}
	cJSON_Delete(fields);
	put(schemas, "Spec", spec);
	put(schemas, "Status", enum_schema(store_status_name, STORE_STATUS_COUNT));
	put(schemas, "Health", enum_schema(health_name, HEALTH_COUNT));
}
