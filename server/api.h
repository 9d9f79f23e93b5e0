/*
 * api.h — the REST API (/api/v1): route tables of each resource file and the helpers they share
 * for JSON bodies, query parameters, problem responses, ownership checks and experiment JSON.
 * Handlers run on the HTTP worker threads (a few, each serving many connections, so a handler
 * must not block for long): they read through their own store connection
 * (daemon_reader) and write only through sched_call.
 */
#ifndef API_H
#define API_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "daemon.h"
#include "http.h"
#include "spec.h"
#include "store.h"

/* Route tables, one per resource file; api_routes() concatenates them (api_util.c). */
extern const struct http_route api_experiment_routes[];
extern const int api_experiment_routes_n;
extern const struct http_route api_sweep_routes[];
extern const int api_sweep_routes_n;
extern const struct http_route api_metric_routes[];
extern const int api_metric_routes_n;
extern const struct http_route api_misc_routes[];
extern const int api_misc_routes_n;
extern const struct http_route api_quota_routes[];
extern const int api_quota_routes_n;
extern const struct http_route api_dataset_routes[];
extern const int api_dataset_routes_n;
extern const struct http_route api_report_routes[];   /* api_report.c: a sweep's report */
extern const int api_report_routes_n;
/* Fills the OpenAPI document's Recipe enums (check kinds, ops, figure kinds, diverged) and the
 * CheckStatus schema from recipe.c's and report.c's tables (api_report.c). */
void api_report_openapi(cJSON *doc);
extern const struct http_route api_schema_routes[];   /* api_schema.c */
extern const int api_schema_routes_n;
/* Overwrites the OpenAPI document's Spec schema (components.schemas.Spec) field by field with the
 * engine's table: types, enums, ranges and defaults (api_schema.c). */
void api_schema_openapi(cJSON *doc);

/* All routes (built once, static storage). */
const struct http_route *api_routes(int *n);

/* GET /api/v1/events: the Server-Sent Events stream (api_events.c). */
void api_events_get(void *ctx, const struct http_request *req, struct http_response *r);
/* The event streams' hub (slot counts, and the pump thread that wakes parked streams when the
 * scheduler writes an event). main: api_events_init before http_start, api_events_start after
 * it, api_events_stop once the scheduler has stopped (before http_stop), api_events_free after
 * http_stop (closing streams give their slots back). Return 0 or a negative code with errbuf. */
int api_events_init(struct daemon *d, char *errbuf, size_t cap);
int api_events_start(struct daemon *d, struct http_server *http, char *errbuf, size_t cap);
void api_events_stop(struct daemon *d);
void api_events_free(struct daemon *d);

/* Static files of the dashboard (web_dir), the http fallback for GET outside /api/. */
void api_static(void *ctx, const struct http_request *req, struct http_response *r);

/* ---- helpers (api_util.c) ---- */

/* Parses the request body as a JSON object. On failure answers 400 invalid_json (with line and
 * byte) or 415/400 for an empty body and returns NULL. Caller frees with cJSON_Delete. */
cJSON *api_body_json(const struct http_request *req, struct http_response *r);

/* Integer query parameter in [lo, hi]; absent → def. On a bad value answers 400 naming the
 * parameter and the range and returns -1 (else 0). */
int api_query_int(const struct http_request *req, struct http_response *r, const char *key,
		  int64_t lo, int64_t hi, int64_t def, int64_t *out);

/* Opens the per-request reader; on failure answers 503 and returns NULL. */
struct store *api_reader(struct daemon *d, struct http_response *r);

/* Answers from a store error: 404 not_found for STORE_ENOTFOUND, else 500 store_error. */
void api_store_problem(struct http_response *r, const struct store_err *err, const char *what);

/* sched_call's result turned into 503 stopping when the daemon is shutting down. Returns 1 if it
 * answered (the caller returns), 0 otherwise. */
int api_stopping(struct http_response *r, int rc);

/* 403 unless the request's user owns the resource or is an admin. Returns 1 if it answered. */
int api_forbid_unless_owner(const struct http_request *req, struct http_response *r,
			    const char *owner);

/* Validation errors of a spec as 400 invalid_spec (422 for the memory cap), with every
 * JSON Pointer (prefixed with `prefix`, e.g. "" or "/base"). */
void api_spec_problem(struct http_response *r, const struct spec_errors *errs, int rc,
		      const char *prefix);

/* Experiment as JSON: id, name, hash, status, step, steps, loss, val_loss, diverged_step,
 * norm_type, placement, n_layer, seed, owner, priority, sweep_id, cell, tags, notes, error,
 * created_at, started_at, finished_at, progress (step/steps), and, with_spec, the spec object. */
cJSON *api_experiment_json(const struct store_experiment *e, int with_spec);

/* Fills e's indexed fields (name, norm_type, placement, n_layer, seed, threads, steps, hash,
 * spec canonical text) from a validated spec. e->spec is nl_malloc'd. Returns 0 or NL_ENOMEM. */
int api_experiment_from_spec(struct store_experiment *e, const struct spec *s);

/* Removes <runs_dir>/<id>/ and its files (checkpoints); missing is fine. Returns 0 or -errno.
 * Defined in api_experiments.c. */
int api_run_dir_remove(const struct daemon *d, int64_t id);

/*
 * A child run's start (spec "parent", NORMS.md §8): spec_parse's resolver, for POST
 * /experiments and /sweeps. The parent must be a run the caller may read, succeeded, with its
 * final checkpoint on disk; the child takes its model from the parent's stored spec and its
 * parent_hash from the parent's hash. "init_from" (a path on the daemon's machine) is refused.
 * Defined in api_experiments.c. ctx lives as long as the limits it fills.
 */
struct api_parent_ctx {
	struct daemon *d;
	const struct http_request *req;
};
void api_parent_limits(struct api_parent_ctx *ctx, struct daemon *d,
		       const struct http_request *req, struct spec_limits *lim);
/* The final checkpoint of run id: <runs_dir>/<id>/final.safetensors, into out. */
void api_final_ckpt_path(const char *runs_dir, int64_t id, char *out, size_t cap);

/* Answers 200/201 with a cJSON value (takes ownership of v). */
void api_reply(struct http_response *r, int status, cJSON *v);

/* ---- who reads what (api_access.c) ----
 * With reads_open = false a token of role user reads only its own runs and sweeps
 * (req->read_own_only); admins and readers read all. Someone else's run answers exactly like a
 * missing one (404 "experiment N does not exist"), and lists leave it out. */

/* 1 when req may read a run or sweep whose owner is `owner`. */
int api_can_read(const struct http_request *req, const char *owner);

/* When req may not read it: answers 404 "<what> does not exist" (what: "experiment 7") and
 * returns 1. Else 0. */
int api_hide_unless_readable(const struct http_request *req, struct http_response *r,
			     const char *owner, const char *what);

/* The owner filter for a list from the query's `owner` (NULL = any): unchanged when req reads
 * everything; else req->user, and *empty = 1 when the query asked for someone else's. */
const char *api_list_owner(const struct http_request *req, const char *query_owner, int *empty);

/* The succeeded experiment a submission with this hash repeats (0 if none, < 0 on error), among
 * only_owner's runs when not NULL: deduplication never points at a run the submitter may not
 * read. Writer's thread. */
int64_t api_find_duplicate(struct store *w, const char *hash, const char *only_owner);

/* POST/DELETE /api/v1/session: the dashboard's cookie session (api_session.c). */
extern const struct http_route api_session_routes[];
extern const int api_session_routes_n;

#endif
