/*
 * schema.h — the engine's tables as one JSON document: architectures (with the defaults each
 * resolves to), norm types (tensors, hyper-parameters, defaults), placements and every spec field
 * with its type, range or allowed values and default. The daemon serves it as GET /api/v1/schema
 * and the dashboard builds its lists from it, so a new norm or field reaches both without an edit
 * outside the engine. Built from norm_table, spec.c's field table and model.h's arch table only.
 * Pure; thread-safe.
 */
#ifndef SCHEMA_H
#define SCHEMA_H

struct cJSON;

/* The schema object; caller frees with cJSON_Delete. NULL when out of memory. */
struct cJSON *schema_json(void);

#endif
