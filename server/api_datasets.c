/*
 * api_datasets.c — /api/v1/datasets: the corpora a spec may name (issue 9, data roots).
 * GET lists every registered name and every regular file in the data roots with its size and
 * content hash; an admin registers a name for a file inside a root (POST) or removes one
 * (DELETE). Registrations go through the writer (sched_call) and then into the in-memory mirror
 * that spec validation reads (dataset.h), in that order on the loop thread, so the two agree.
 * Handlers run on HTTP threads.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "dataset.h"
#include "nl.h"

static void oom(struct http_response *r)
{
	http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
}

static void human_bytes(char *dst, size_t cap, uint64_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(dst, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(dst, cap, "%.1f %s", v, unit[u]);
}

static cJSON *dataset_json(const struct dataset_file *f)
{
	char size[32];
	cJSON *o = cJSON_CreateObject();
	human_bytes(size, sizeof size, f->bytes);
	if (!o || !cJSON_AddStringToObject(o, "name", f->name) ||
	    !cJSON_AddStringToObject(o, "path", f->rel) ||
	    !cJSON_AddBoolToObject(o, "registered", f->registered) ||
	    !cJSON_AddStringToObject(o, "size", size) ||
	    !cJSON_AddNumberToObject(o, "bytes", (double)f->bytes) ||
	    !(f->sha256[0] ? cJSON_AddStringToObject(o, "sha256", f->sha256)
	      : cJSON_AddNullToObject(o, "sha256"))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- GET /api/v1/datasets ---- */

struct list_ctx {
	cJSON *items;
	int oom;
};

static int list_cb(void *arg, const struct dataset_file *f)
{
	struct list_ctx *c = arg;
	cJSON *o = dataset_json(f);
	if (!o || !cJSON_AddItemToArray(c->items, o)) {
		cJSON_Delete(o);
		c->oom = 1;
		return 1;
	}
	return 0;
}

static void h_list(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	(void)req;
	cJSON *out = cJSON_CreateObject();
	struct list_ctx c = { cJSON_CreateArray(), 0 };
	if (!out || !c.items || !cJSON_AddItemToObject(out, "items", c.items)) {
		cJSON_Delete(c.items);
		cJSON_Delete(out);
		oom(r);
		return;
	}
	int n = datasets_list(d->datasets, list_cb, &c);
	if (n < 0 || c.oom) {
		cJSON_Delete(out);
		oom(r);
		return;
	}
	api_reply(r, 200, out);
}

/* ---- GET /api/v1/datasets/{name} ---- */

static void h_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct dataset_file f;
	char msg[256];
	int fd = datasets_open(d->datasets, req->name, 1, &f, msg, sizeof msg);
	if (fd < 0) {
		http_problem(r, fd == NL_ENOMEM ? 500 : 404, fd == NL_ENOMEM ? "internal" : "not_found",
			     msg, NULL, NULL, 0);
		return;
	}
	close(fd);
	cJSON *o = dataset_json(&f);
	if (!o) {
		oom(r);
		return;
	}
	api_reply(r, 200, o);
}

/* ---- POST /api/v1/datasets (admin) ---- */

struct put_ctx {
	struct daemon *d;
	const char *name, *path, *owner;
	int delete;
	struct store_err err;
};

static int put_fn(struct store *w, void *arg)
{
	struct put_ctx *c = arg;
	int rc = c->delete ? store_dataset_delete(w, c->name, &c->err)
		: store_dataset_put(w, c->name, c->path, c->owner, daemon_now(), &c->err);
	if (rc < 0)
		return rc;
	/* after the commit, on the loop thread: the mirror follows the store in the same order */
	rc = datasets_mirror(c->d->datasets, c->name, c->delete ? NULL : c->path);
	if (rc < 0)
		snprintf(c->err.msg, sizeof c->err.msg, "out of memory updating the dataset list");
	return rc;
}

static int admin_only(const struct http_request *req, struct http_response *r)
{
	if (req->is_admin)
		return 0;
	http_problem(r, 403, "forbidden", "only an admin may register or remove datasets", NULL,
		     NULL, 0);
	return 1;
}

static void field_problem(struct http_response *r, const char *pointer, const char *msg)
{
	char detail[400];
	snprintf(detail, sizeof detail, "%s: %s", pointer, msg);
	http_problem(r, 400, "invalid_field", detail, &pointer, &msg, 1);
}

static void h_create(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct dataset_file f;
	char msg[256];
	cJSON *body = NULL;
	if (admin_only(req, r))
		return;
	body = api_body_json(req, r);
	if (!body)
		return;
	const cJSON *it;
	cJSON_ArrayForEach(it, body) {
		if (strcmp(it->string, "name") != 0 && strcmp(it->string, "path") != 0) {
			char ptr[160];
			snprintf(ptr, sizeof ptr, "/%.100s", it->string);
			field_problem(r, ptr, "unknown field; a dataset has \"name\" and \"path\"");
			goto out;
		}
	}
	const cJSON *jn = cJSON_GetObjectItemCaseSensitive(body, "name");
	const cJSON *jp = cJSON_GetObjectItemCaseSensitive(body, "path");
	if (!cJSON_IsString(jn) || dataset_name_check(jn->valuestring, msg, sizeof msg) != 0) {
		field_problem(r, "/name", cJSON_IsString(jn) ? msg : "required: a string");
		goto out;
	}
	if (!cJSON_IsString(jp)) {
		field_problem(r, "/path", "required: a path relative to a data root");
		goto out;
	}
	memset(&f, 0, sizeof f);
	nl_strlcpy(f.name, jp->valuestring, sizeof f.name);
	int fd = datasets_open_rel(d->datasets, jp->valuestring, 1, &f, msg, sizeof msg);
	if (fd < 0) {
		if (fd == NL_ENOMEM)
			oom(r);
		else
			field_problem(r, "/path", msg);
		goto out;
	}
	close(fd);
	struct put_ctx c = { d, jn->valuestring, f.rel, req->user, 0, { 0, "" } };
	int rc = sched_call(d->sched, put_fn, &c);
	if (api_stopping(r, rc))
		goto out;
	if (rc < 0) {
		api_store_problem(r, &c.err, "registering the dataset");
		goto out;
	}
	nl_strlcpy(f.name, jn->valuestring, sizeof f.name);
	f.registered = 1;
	cJSON *o = dataset_json(&f);
	if (!o) {
		oom(r);
		goto out;
	}
	snprintf(r->location, sizeof r->location, "/api/v1/datasets/%.64s", f.name);
	api_reply(r, 201, o);
out:
	cJSON_Delete(body);
}

/* ---- DELETE /api/v1/datasets/{name} (admin) ---- */

static void h_delete(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	if (admin_only(req, r))
		return;
	struct put_ctx c = { d, req->name, NULL, req->user, 1, { 0, "" } };
	int rc = sched_call(d->sched, put_fn, &c);
	if (api_stopping(r, rc))
		return;
	if (rc < 0) {
		api_store_problem(r, &c.err, "removing the dataset");
		return;
	}
	/* the file stays: only the name goes; runs already submitted keep their content hash */
	nl_free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = 204;
}

const struct http_route api_dataset_routes[] = {
	{ "GET", "/api/v1/datasets", HTTP_READ, h_list },
	{ "POST", "/api/v1/datasets", HTTP_WRITE, h_create },
	{ "GET", "/api/v1/datasets/{name}", HTTP_READ, h_get },
	{ "DELETE", "/api/v1/datasets/{name}", HTTP_WRITE, h_delete },
};
const int api_dataset_routes_n = (int)(sizeof api_dataset_routes / sizeof api_dataset_routes[0]);
