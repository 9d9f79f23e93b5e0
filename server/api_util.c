/*
 * api_util.c — what the API handlers share: JSON bodies, query parameters, problem answers,
 * ownership checks, the experiment JSON shape, and the route table that joins every resource.
 * Runs on HTTP connection threads; no shared mutable state.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "norm.h"
#include "spec.h"

const struct http_route *api_routes(int *n)
{
	static struct http_route all[128];
	static int count;
	if (!count) {
		const struct { const struct http_route *r; int n; } parts[] = {
			{ api_experiment_routes, api_experiment_routes_n },
			{ api_sweep_routes, api_sweep_routes_n },
			{ api_metric_routes, api_metric_routes_n },
			{ api_misc_routes, api_misc_routes_n },
			{ api_session_routes, api_session_routes_n },
			{ api_quota_routes, api_quota_routes_n },
			{ api_dataset_routes, api_dataset_routes_n },
			{ api_schema_routes, api_schema_routes_n },
			{ api_report_routes, api_report_routes_n },
		};
		for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
			for (int i = 0; i < parts[p].n && count < 128; i++)
				all[count++] = parts[p].r[i];
	}
	*n = count;
	return all;
}

/* Line and column of byte offset off in text, 1-based. */
static void line_of(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

cJSON *api_body_json(const struct http_request *req, struct http_response *r)
{
	if (!req->body || req->body_len == 0) {
		http_problem(r, 400, "empty_body", "the request needs a JSON object body", NULL, NULL, 0);
		return NULL;
	}
	size_t bad = nl_utf8_check(req->body, req->body_len);
	if (bad < req->body_len) {
		/* RFC 8259 §8.1; cJSON would take any bytes, and they would come back in answers */
		int line, col;
		char d[160];
		line_of(req->body, bad, &line, &col);
		snprintf(d, sizeof d, "the body is not valid UTF-8 (line %d, column %d, byte %zu)",
			 line, col, bad);
		http_problem(r, 400, "invalid_json", d, NULL, NULL, 0);
		return NULL;
	}
	/* the CLI's strict scanner first: cJSON alone takes "a\u0000b" as "a", numbers longer
	 * than it copies, and nesting only its own limit allows */
	size_t at = 0;
	const char *why = NULL;
	if (spec_json_check(req->body, req->body_len, &at, &why) != 0) {
		int line, col;
		char d[200];
		line_of(req->body, at, &line, &col);
		snprintf(d, sizeof d, "the body is not valid JSON (line %d, column %d, byte %zu): %s",
			 line, col, at, why ? why : "?");
		http_problem(r, 400, "invalid_json", d, NULL, NULL, 0);
		return NULL;
	}
	const char *end = NULL;
	/* the body is NUL-terminated by the http layer; cJSON wants the NUL inside the length when it
	 * is asked to reject trailing garbage */
	cJSON *j = cJSON_ParseWithLengthOpts(req->body, req->body_len + 1, &end, 1);
	if (!j) {
		size_t off = end && end >= req->body ? (size_t)(end - req->body) : 0;
		int line, col;
		char d[160];
		line_of(req->body, off, &line, &col);
		snprintf(d, sizeof d, "the body is not valid JSON (line %d, column %d, byte %zu)", line,
			 col, off);
		http_problem(r, 400, "invalid_json", d, NULL, NULL, 0);
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		const char *p = "";
		const char *m = "expected a JSON object";
		http_problem(r, 400, "invalid_json", "the body must be a JSON object", &p, &m, 1);
		return NULL;
	}
	return j;
}

int api_query_int(const struct http_request *req, struct http_response *r, const char *key,
		  int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
	const char *v = http_query(req, key);
	if (!v || !*v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end || x < lo || x > hi) {
		char d[200];
		snprintf(d, sizeof d, "query parameter %s=%.40s must be an integer in %" PRId64 "..%" PRId64,
			 key, v, lo, hi);
		http_problem(r, 400, "invalid_parameter", d, NULL, NULL, 0);
		return -1;
	}
	*out = x;
	return 0;
}

struct store *api_reader(struct daemon *d, struct http_response *r)
{
	struct store *s = NULL;
	struct store_err err = { 0 };
	if (daemon_reader(d, &s, &err) != 0) {
		char msg[STORE_MSG + 64];
		snprintf(msg, sizeof msg, "the database is not available: %s", err.msg);
		http_problem(r, 503, "store_unavailable", msg, NULL, NULL, 0);
		return NULL;
	}
	return s;
}

void api_store_problem(struct http_response *r, const struct store_err *err, const char *what)
{
	char d[STORE_MSG + 96];
	if (err->code == STORE_ENOTFOUND) {
		snprintf(d, sizeof d, "%s does not exist", what);
		http_problem(r, 404, "not_found", d, NULL, NULL, 0);
	} else if (err->code == STORE_EFULL) {
		snprintf(d, sizeof d, "%s: %s", what, err->msg);
		http_problem(r, 507, "storage_full", d, NULL, NULL, 0);
	} else {
		snprintf(d, sizeof d, "%s: %s", what, err->msg);
		http_problem(r, 500, "store_error", d, NULL, NULL, 0);
	}
}

int api_stopping(struct http_response *r, int rc)
{
	if (rc != SCHED_ESTOPPING)
		return 0;
	http_problem(r, 503, "stopping", "the daemon is shutting down and accepts no writes", NULL,
		     NULL, 0);
	return 1;
}

int api_forbid_unless_owner(const struct http_request *req, struct http_response *r,
			    const char *owner)
{
	if (req->is_admin || (req->authed && strcmp(req->user, owner) == 0))
		return 0;
	char d[160];
	/* a user who may not read someone else's runs does not learn their owner either */
	if (req->read_own_only)
		snprintf(d, sizeof d, "only its owner or an admin may change this");
	else
		snprintf(d, sizeof d, "only its owner (%s) or an admin may change this", owner);
	http_problem(r, 403, "forbidden", d, NULL, NULL, 0);
	return 1;
}

void api_spec_problem(struct http_response *r, const struct spec_errors *errs, int rc,
		      const char *prefix)
{
	const char *ptrs[SPEC_MAX_ERRORS], *msgs[SPEC_MAX_ERRORS];
	char full[SPEC_MAX_ERRORS][192];
	char detail[512];
	int n = errs->n < SPEC_MAX_ERRORS ? errs->n : SPEC_MAX_ERRORS;
	for (int i = 0; i < n; i++) {
		snprintf(full[i], sizeof full[i], "%s%s", prefix, errs->e[i].pointer);
		ptrs[i] = full[i];
		msgs[i] = errs->e[i].msg;
	}
	if (n > 0)
		snprintf(detail, sizeof detail, "%s: %s", full[0][0] ? full[0] : "(document)", msgs[0]);
	else
		snprintf(detail, sizeof detail, "the spec is not valid");
	if (rc == NL_ELIMIT)
		http_problem(r, 422, "run_too_large", detail, ptrs, msgs, n);
	else
		http_problem(r, 400, "invalid_spec", detail, ptrs, msgs, n);
}

static void add_num_or_null(cJSON *o, const char *k, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

static void add_time(cJSON *o, const char *k, double t)
{
	if (t > 0)
		cJSON_AddNumberToObject(o, k, t);
	else
		cJSON_AddNullToObject(o, k);
}

/*
 * The spec's model.arch, read from the canonical text (keys sorted, no whitespace, so the key
 * "arch" occurs once, in "model"). Specs stored before there were archs have none: "gpt".
 */
static void spec_arch(const char *spec, char *out, size_t cap)
{
	const char *p = spec ? strstr(spec, "\"arch\":\"") : NULL;
	size_t n = 0;
	if (p) {
		p += 8;
		while (p[n] && p[n] != '"')
			n++;
	}
	if (!p || n == 0 || n >= cap)
		snprintf(out, cap, "gpt");
	else
		snprintf(out, cap, "%.*s", (int)n, p);
}

cJSON *api_experiment_json(const struct store_experiment *e, int with_spec)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)e->id);
	cJSON_AddStringToObject(o, "name", e->name);
	cJSON_AddStringToObject(o, "hash", e->hash);
	cJSON_AddStringToObject(o, "status", store_status_name(e->status));
	cJSON_AddNumberToObject(o, "step", (double)e->step);
	cJSON_AddNumberToObject(o, "steps", (double)e->steps);
	cJSON_AddNumberToObject(o, "progress", e->steps > 0 ? (double)e->step / (double)e->steps : 0);
	add_num_or_null(o, "loss", e->loss);
	add_num_or_null(o, "val_loss", e->val_loss);
	if (e->diverged_step > 0)
		cJSON_AddNumberToObject(o, "diverged_step", (double)e->diverged_step);
	else
		cJSON_AddNullToObject(o, "diverged_step");
	/* run health: the worst finding so far (engine/health.h), when and why */
	cJSON *h = cJSON_AddObjectToObject(o, "health");
	if (h) {
		cJSON_AddStringToObject(h, "status", e->health[0] ? e->health : "ok");
		if (e->health_step > 0)
			cJSON_AddNumberToObject(h, "step", (double)e->health_step);
		else
			cJSON_AddNullToObject(h, "step");
		if (e->health_reason)
			cJSON_AddStringToObject(h, "reason", e->health_reason);
		else
			cJSON_AddNullToObject(h, "reason");
	}
	char arch[16];
	spec_arch(e->spec, arch, sizeof arch);
	cJSON_AddStringToObject(o, "arch", arch);
	cJSON_AddStringToObject(o, "norm_type", e->norm_type);
	cJSON_AddStringToObject(o, "placement", e->placement);
	cJSON_AddNumberToObject(o, "n_layer", e->n_layer);
	cJSON_AddNumberToObject(o, "seed", (double)e->seed);
	cJSON_AddNumberToObject(o, "threads", e->threads);
	cJSON_AddStringToObject(o, "owner", e->owner);
	cJSON_AddNumberToObject(o, "priority", e->priority);
	if (e->sweep_id > 0) {
		cJSON_AddNumberToObject(o, "sweep_id", (double)e->sweep_id);
		cJSON_AddNumberToObject(o, "cell", e->cell);
	} else {
		cJSON_AddNullToObject(o, "sweep_id");
		cJSON_AddNullToObject(o, "cell");
	}
	if (e->parent_id > 0)
		cJSON_AddNumberToObject(o, "parent", (double)e->parent_id);
	else
		cJSON_AddNullToObject(o, "parent");
	cJSON *tags = e->tags ? cJSON_Parse(e->tags) : NULL;
	cJSON_AddItemToObject(o, "tags", tags ? tags : cJSON_CreateArray());
	if (e->notes)
		cJSON_AddStringToObject(o, "notes", e->notes);
	else
		cJSON_AddNullToObject(o, "notes");
	if (e->error)
		cJSON_AddStringToObject(o, "error", e->error);
	else
		cJSON_AddNullToObject(o, "error");
	add_time(o, "created_at", e->created_at);
	add_time(o, "started_at", e->started_at);
	add_time(o, "finished_at", e->finished_at);
	if (e->started_at > 0)
		cJSON_AddNumberToObject(o, "elapsed_s", (e->finished_at > 0 ? e->finished_at :
							  daemon_now()) - e->started_at);
	if (with_spec) {
		cJSON *spec = e->spec ? cJSON_Parse(e->spec) : NULL;
		cJSON_AddItemToObject(o, "spec", spec ? spec : cJSON_CreateNull());
		cJSON_AddNumberToObject(o, "checkpoint_step", (double)e->ckpt_step);
	}
	return o;
}

int api_experiment_from_spec(struct store_experiment *e, const struct spec *s)
{
	char *canon = spec_canonical(s);
	if (!canon || spec_hash(s, e->hash) != 0) {
		nl_free(canon);
		return NL_ENOMEM;
	}
	nl_free(e->spec);
	e->spec = canon;
	snprintf(e->name, sizeof e->name, "%s", s->name);
	snprintf(e->norm_type, sizeof e->norm_type, "%s", norm_table[s->norm.type]->name);
	snprintf(e->placement, sizeof e->placement, "%s", spec_placement_name(s->norm.placement));
	e->n_layer = s->model.n_layer;
	e->seed = (int64_t)s->seed;
	e->threads = s->threads;
	e->steps = s->train.steps;
	e->parent_id = s->parent[0] ? strtoll(s->parent, NULL, 10) : 0;
	return 0;
}

void api_reply(struct http_response *r, int status, cJSON *v)
{
	char *text = v ? cJSON_PrintUnformatted(v) : NULL;
	cJSON_Delete(v);
	if (!text) {
		http_problem(r, 500, "internal", "out of memory building the response", NULL, NULL, 0);
		return;
	}
	/* cJSON allocates with malloc by default, which is what the response frees with */
	http_json_take(r, status, text);
}
