/*
 * api_sweeps.c — /api/v1/sweeps: submit a sweep (expanded by sweep.c; dry run tells the count
 * and the cells before anything is stored), show one with its cells and their progress, cancel
 * its unfinished cells, re-queue its failed ones.
 *
 * Owns nothing beyond one request. Threading: handlers run on HTTP connection threads: they expand
 * and validate there, read through their own reader (api_reader), and write only inside sched_call
 * functions on the scheduler's loop thread (one transaction for a whole submission). Anything a
 * write depends on (a cell's status, a succeeded duplicate) is checked again inside that function.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "nl.h"
#include "quota.h"
#include "sweep.h"

#define SWEEP_DRY_RUN_CELLS 1000   /* cells a dry run lists (it always gives the count) */
#define SWEEP_SKIPPED_LIST 1000    /* skipped cells a submission lists */
#define SWEEP_PAGE 1000            /* rows per store list call */

static void problem_oom(struct http_response *r)
{
	http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
}

static void sweep_problem(struct http_response *r, const struct sweep_errors *e)
{
	const char *ptrs[SWEEP_MAX_ERRORS], *msgs[SWEEP_MAX_ERRORS];
	for (int i = 0; i < e->n; i++) {
		ptrs[i] = e->e[i].pointer;
		msgs[i] = e->e[i].msg;
	}
	http_problem(r, e->status ? e->status : 500, e->code[0] ? e->code : "internal",
		     e->detail[0] ? e->detail : "the sweep could not be expanded", ptrs, msgs, e->n);
}

/* Appends event `kind` with data_json built from o (deleted here). Loop thread. Failure is logged:
 * the change it reports is already committed. */
static void event_obj(struct daemon *d, struct store *w, const char *kind, int64_t exp_id, cJSON *o)
{
	char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!txt || sched_event(d->sched, w, kind, exp_id, txt) < 0)
		LOG_WARN("could not record event %s (experiment %" PRId64 ")", kind, exp_id);
	cJSON_free(txt);
}

struct cell_scan {
	int (*cb)(void *ctx, const struct store_experiment *e);
	void *ctx;
	int64_t last;           /* id of the last row seen: the next page's cursor */
	int rows;               /* rows of the current page */
	int stop;               /* cb's non-zero answer */
};

static int cell_scan_cb(void *arg, const struct store_experiment *e)
{
	struct cell_scan *s = arg;
	s->last = e->id;
	s->rows++;
	s->stop = s->cb(s->ctx, e);
	return s->stop;
}

/* Calls cb for every experiment of the sweep in id (= cell) order, page by page. Returns 0, a
 * negative store code, or cb's non-zero answer that stopped the scan. */
static int each_cell(struct store *rd, int64_t sweep_id,
		     int (*cb)(void *ctx, const struct store_experiment *e), void *ctx,
		     struct store_err *err)
{
	struct cell_scan s = { cb, ctx, 0, 0, 0 };
	struct store_filter f;
	memset(&f, 0, sizeof f);
	f.status = -1;
	f.sweep_id = sweep_id;
	f.limit = SWEEP_PAGE;
	do {
		f.after_id = s.last;
		s.rows = 0;
		int rc = store_experiment_list(rd, &f, cell_scan_cb, &s, err);
		if (rc < 0)
			return rc;
		if (s.stop)
			return s.stop;
	} while (s.rows == SWEEP_PAGE);
	return 0;
}

/* A growable list of experiment ids (nl_realloc). */
struct id_list {
	int64_t *ids;
	int n, cap;
	int oom;
};

static int id_push(struct id_list *l, int64_t id)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 64;
		int64_t *n = nl_realloc(l->ids, (size_t)cap * sizeof *n);
		if (!n) {
			l->oom = 1;
			return -1;
		}
		l->ids = n;
		l->cap = cap;
	}
	l->ids[l->n++] = id;
	return 0;
}

/* ---- POST /api/v1/sweeps ---------------------------------------------------------------------- */

struct submit_ctx {
	struct daemon *d;
	struct store_sweep sweep;
	struct store_experiment *exps;  /* one per cell, ready to insert */
	int n;
	int skip_duplicate;
	const char *dedup_owner;        /* only this owner's runs count as duplicates; NULL = any */
	int64_t *duplicate_of;          /* per cell: the succeeded experiment it repeats, or 0 */
	int queued, skipped;
	const struct quota_limits *limits;
	struct quota_verdict quota;     /* status != 0: refused by a quota, nothing stored */
	struct store_err err;
	const struct sweep_plan *plan;  /* the cells' validated specs, kept for their starts */
};

#define SUBMIT_OVER_QUOTA (-1000)   /* submit_tx: rolled back, c->quota says why */

static int submit_tx(struct store *w, void *arg)
{
	struct submit_ctx *c = arg;
	struct store_owner_counts oc;
	int rc;
	c->queued = c->skipped = 0;
	/* First what would be queued, then the quota on that number, and only then any insert: a
	 * sweep over the quota is refused whole. */
	for (int i = 0; i < c->n; i++) {
		struct store_experiment *e = &c->exps[i];
		c->duplicate_of[i] = 0;
		if (c->skip_duplicate) {
			int64_t id = api_find_duplicate(w, e->hash, c->dedup_owner);
			if (id < 0) {
				c->err.code = (int)id;
				snprintf(c->err.msg, sizeof c->err.msg, "cell %d: looking for a "
					 "succeeded duplicate failed", i);
				return (int)id;
			}
			if (id > 0) {
				c->duplicate_of[i] = id;
				c->skipped++;
			}
		}
	}
	if ((rc = store_owner_counts(w, c->sweep.owner, &oc, &c->err)) < 0)
		return rc;
	if (quota_check_queue(c->limits, c->sweep.owner, &oc, 0, c->n - c->skipped, &c->quota))
		return SUBMIT_OVER_QUOTA;
	rc = store_sweep_insert(w, &c->sweep, &c->err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < c->n; i++) {
		struct store_experiment *e = &c->exps[i];
		if (c->duplicate_of[i])
			continue;
		e->sweep_id = c->sweep.id;
		rc = store_experiment_insert(w, e, &c->err);
		if (rc < 0)
			return rc;
		c->queued++;
	}
	return 0;
}

static int submit_fn(struct store *w, void *arg)
{
	struct submit_ctx *c = arg;
	int rc = store_tx(w, submit_tx, c, &c->err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < c->n; i++)
		if (!c->duplicate_of[i])
			sched_keep_spec(c->d->sched, c->exps[i].id, c->plan->cells[i].spec);
	/* after the commit: a waiter woken by the event must find the rows */
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddNumberToObject(o, "id", (double)c->sweep.id) ||
		  !cJSON_AddNumberToObject(o, "count", c->n) ||
		  !cJSON_AddNumberToObject(o, "queued", c->queued) ||
		  !cJSON_AddNumberToObject(o, "skipped", c->skipped))) {
		cJSON_Delete(o);
		o = NULL;
	}
	event_obj(c->d, w, "sweep.queued", 0, o);
	return 0;
}

static cJSON *dry_run_json(const struct sweep_plan *p)
{
	cJSON *out = cJSON_CreateObject(), *cells = NULL;
	if (!out || !cJSON_AddNumberToObject(out, "count", p->n))
		goto fail;
	cells = cJSON_AddArrayToObject(out, "cells");
	if (!cells)
		goto fail;
	for (int i = 0; i < p->n && i < SWEEP_DRY_RUN_CELLS; i++) {
		cJSON *c = cJSON_CreateObject(), *ov = cJSON_Duplicate(p->cells[i].overrides, 1);
		if (!c || !ov || !cJSON_AddItemToArray(cells, c)) {
			cJSON_Delete(c);
			cJSON_Delete(ov);
			goto fail;
		}
		if (!cJSON_AddNumberToObject(c, "cell", p->cells[i].cell) ||
		    !cJSON_AddStringToObject(c, "hash", p->cells[i].hash) ||
		    !cJSON_AddItemToObject(c, "overrides", ov)) {
			if (!cJSON_GetObjectItemCaseSensitive(c, "overrides"))
				cJSON_Delete(ov);
			goto fail;
		}
	}
	return out;
fail:
	cJSON_Delete(out);
	return NULL;
}

/*
 * The queue quota for a dry run, through this thread's reader: the cells submit_tx would queue
 * (those without a succeeded duplicate when duplicates are skipped) against the owner's queued
 * cells now. Returns 0 within the quota; -1 with v filled (over) or r answered (store error).
 */
static int dry_run_queue_check(struct daemon *d, const struct http_request *req,
			       const struct sweep_plan *p, const struct quota_limits *q,
			       struct quota_verdict *v, struct http_response *r)
{
	struct store_err err = { 0 };
	struct store_owner_counts oc;
	int64_t add = 0;
	int rc = -1;
	struct store *rd = api_reader(d, r);
	if (!rd)
		return -1;
	for (int i = 0; i < p->n; i++) {
		int64_t dup = p->on_duplicate == SWEEP_DUP_SKIP ?
			      store_experiment_find_hash(rd, p->cells[i].hash, STORE_SUCCEEDED) : 0;
		if (dup < 0) {
			err.code = (int)dup;
			snprintf(err.msg, sizeof err.msg, "looking for a succeeded duplicate failed");
			api_store_problem(r, &err, "the dry run");
			goto out;
		}
		add += dup == 0;
	}
	if (store_owner_counts(rd, req->user, &oc, &err) != 0) {
		api_store_problem(r, &err, "counting queued cells");
		goto out;
	}
	rc = quota_check_queue(q, req->user, &oc, 0, add, v);
out:
	store_close(rd);
	return rc;
}

/* Turns each cell into the experiment row it will be (on this thread, not the loop's). */
static int plan_rows(const struct sweep_plan *p, const struct http_request *req, double now,
		     struct store_experiment *exps)
{
	for (int i = 0; i < p->n; i++) {
		struct store_experiment *e = &exps[i];
		const struct sweep_cell *c = &p->cells[i];
		/* the cell's spec as sweep_expand validated it: no second parse */
		if (api_experiment_from_spec(e, c->spec) != 0)
			return NL_ENOMEM;
		nl_strlcpy(e->owner, req->user, sizeof e->owner);
		e->priority = p->priority;
		e->cell = c->cell;
		e->status = STORE_QUEUED;
		e->loss = e->val_loss = NAN;
		e->created_at = now;
	}
	return 0;
}

static cJSON *submit_json(const struct submit_ctx *c)
{
	cJSON *out = cJSON_CreateObject(), *sk;
	if (!out || !cJSON_AddNumberToObject(out, "id", (double)c->sweep.id) ||
	    !cJSON_AddNumberToObject(out, "count", c->n) ||
	    !cJSON_AddNumberToObject(out, "queued", c->queued) ||
	    !cJSON_AddNumberToObject(out, "skipped", c->skipped) ||
	    !(sk = cJSON_AddArrayToObject(out, "skipped_cells")))
		goto fail;
	for (int i = 0, listed = 0; i < c->n && listed < SWEEP_SKIPPED_LIST; i++) {
		if (!c->duplicate_of[i])
			continue;
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(sk, o)) {
			cJSON_Delete(o);
			goto fail;
		}
		if (!cJSON_AddNumberToObject(o, "cell", c->exps[i].cell) ||
		    !cJSON_AddNumberToObject(o, "duplicate_of", (double)c->duplicate_of[i]))
			goto fail;
		listed++;
	}
	return out;
fail:
	cJSON_Delete(out);
	return NULL;
}

static void h_submit(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct sweep_limits lim;
	struct sweep_errors errs;
	struct sweep_plan plan;
	struct submit_ctx c;
	struct quota_limits ql;
	struct quota_verdict qv;
	cJSON *body = NULL, *out = NULL;
	char *text = NULL;
	int64_t dry;
	int rc;

	memset(&plan, 0, sizeof plan);
	memset(&c, 0, sizeof c);
	if (api_query_int(req, r, "dry_run", 0, 1, 0, &dry) != 0)
		return;
	body = api_body_json(req, r);
	if (!body)
		return;
	memset(&lim, 0, sizeof lim);
	lim.max_cells = d->cfg.max_sweep_cells;
	lim.max_threads = d->cfg.thread_budget;
	datasets_limits(d->datasets, (uint64_t)d->cfg.max_run_bytes, &lim.spec);
	struct api_parent_ctx pctx;
	api_parent_limits(&pctx, d, req, &lim.spec);
	rc = sweep_expand(body, &lim, &plan, &errs);
	if (rc != 0) {
		sweep_problem(r, &errs);
		goto out;
	}
	/* a dry run answers every refusal the submission would get */
	quota_limits_for(&d->cfg, req->is_admin, &ql);
	if (quota_check_priority(&ql, plan.priority, "/priority", &qv) != 0 ||
	    quota_check_plan(&ql, &plan, &qv) != 0 ||
	    (dry && dry_run_queue_check(d, req, &plan, &ql, &qv, r) != 0)) {
		if (qv.status)
			quota_problem(r, &qv);
		goto out;
	}
	if (dry) {
		out = dry_run_json(&plan);
		if (!out) {
			problem_oom(r);
			goto out;
		}
		api_reply(r, 200, out);
		out = NULL;
		goto out;
	}

	text = cJSON_PrintUnformatted(body);
	c.d = d;
	c.limits = &ql;
	c.n = plan.n;
	c.skip_duplicate = plan.on_duplicate == SWEEP_DUP_SKIP;
	c.dedup_owner = req->read_own_only ? req->user : NULL;
	c.exps = nl_calloc(plan.n ? (size_t)plan.n : 1, sizeof *c.exps);
	c.duplicate_of = nl_calloc(plan.n ? (size_t)plan.n : 1, sizeof *c.duplicate_of);
	c.sweep.request = text ? nl_strdup(text) : NULL;
	if (!c.exps || !c.duplicate_of || !c.sweep.request) {
		problem_oom(r);
		goto out;
	}
	nl_strlcpy(c.sweep.owner, req->user, sizeof c.sweep.owner);
	c.sweep.priority = plan.priority;
	c.sweep.n_cells = plan.n;
	c.sweep.created_at = daemon_now();
	rc = plan_rows(&plan, req, c.sweep.created_at, c.exps);
	if (rc != 0) {
		problem_oom(r);
		goto out;
	}
	c.plan = &plan;
	rc = sched_call(d->sched, submit_fn, &c);
	if (api_stopping(r, rc))
		goto out;
	if (c.quota.status) {
		quota_problem(r, &c.quota);
		goto out;
	}
	if (rc < 0) {
		api_store_problem(r, &c.err, "submitting the sweep");
		goto out;
	}
	out = submit_json(&c);
	if (!out) {
		problem_oom(r);
		goto out;
	}
	snprintf(r->location, sizeof r->location, "/api/v1/sweeps/%" PRId64, c.sweep.id);
	api_reply(r, 201, out);
	out = NULL;
out:
	cJSON_Delete(out);
	cJSON_free(text);
	cJSON_Delete(body);
	sweep_plan_free(&plan);
	for (int i = 0; c.exps && i < c.n; i++)
		store_experiment_clear(&c.exps[i]);
	nl_free(c.exps);
	nl_free(c.duplicate_of);
	store_sweep_clear(&c.sweep);
}

/* ---- GET /api/v1/sweeps ----------------------------------------------------------------------- */

struct list_ctx {
	struct store *rd;
	cJSON *items;
	int64_t last;
	int n, want;
};

static int list_one(void *ctx, const struct store_sweep *w)
{
	struct list_ctx *c = ctx;
	struct store_err err = { 0 };
	int counts[STORE_STATUS_COUNT] = { 0 };
	if (c->n == c->want) {   /* the extra row only says there is a next page */
		c->n++;
		return 1;
	}
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return 1;
	cJSON_AddNumberToObject(o, "id", (double)w->id);
	cJSON_AddStringToObject(o, "owner", w->owner);
	cJSON_AddNumberToObject(o, "priority", w->priority);
	cJSON_AddNumberToObject(o, "n_cells", w->n_cells);
	cJSON_AddNumberToObject(o, "created_at", w->created_at);
	cJSON *req = w->request ? cJSON_Parse(w->request) : NULL;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "name");
	if (cJSON_IsString(name))
		cJSON_AddStringToObject(o, "name", name->valuestring);
	else
		cJSON_AddNullToObject(o, "name");
	cJSON_Delete(req);
	if (store_sweep_counts(c->rd, w->id, counts, &err) == 0) {
		cJSON *cnt = cJSON_AddObjectToObject(o, "counts");
		for (int s = STORE_QUEUED; s < STORE_STATUS_COUNT; s++)
			cJSON_AddNumberToObject(cnt, store_status_name(s), counts[s]);
	}
	cJSON_AddItemToArray(c->items, o);
	c->last = w->id;
	c->n++;
	return 0;
}

static void h_list(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_err err = { 0 };
	int64_t page_size, after = 0;
	if (api_query_int(req, r, "page_size", 1, 999, 100, &page_size) < 0)
		return;
	const char *tok = http_query(req, "page_token");
	if (tok && *tok) {
		char *end;
		long long v = strtoll(tok, &end, 10);
		if (*end || v < 0) {
			http_problem(r, 400, "invalid_page_token", "page_token must come from a previous "
				     "response's next_page_token", NULL, NULL, 0);
			return;
		}
		after = v;
	}
	struct store *rd = api_reader(d, r);
	if (!rd)
		return;
	struct list_ctx c = { .rd = rd, .items = cJSON_CreateArray(), .want = (int)page_size };
	const char *owner = http_query(req, "owner");
	int none_visible;
	owner = api_list_owner(req, owner && *owner ? owner : NULL, &none_visible);
	if (!c.items || (!none_visible &&
			 store_sweep_list(rd, owner, after, (int)page_size + 1, list_one, &c, &err) < 0)) {
		cJSON_Delete(c.items);
		store_close(rd);
		api_store_problem(r, &err, "the sweep list");
		return;
	}
	store_close(rd);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "items", c.items);
	if (c.n > c.want) {
		char next[32];
		snprintf(next, sizeof next, "%lld", (long long)c.last);
		cJSON_AddStringToObject(o, "next_page_token", next);
	} else {
		cJSON_AddNullToObject(o, "next_page_token");
	}
	api_reply(r, 200, o);
}

/* ---- GET /api/v1/sweeps/{id} ------------------------------------------------------------------ */

static int add_num_or_null(cJSON *o, const char *k, double v)
{
	return isfinite(v) ? cJSON_AddNumberToObject(o, k, v) != NULL :
			     cJSON_AddNullToObject(o, k) != NULL;
}

static int cell_json_cb(void *arg, const struct store_experiment *e)
{
	cJSON *cells = arg, *o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(cells, o)) {
		cJSON_Delete(o);
		return 1;
	}
	if (!cJSON_AddNumberToObject(o, "id", (double)e->id) ||
	    !cJSON_AddNumberToObject(o, "cell", e->cell) ||
	    !cJSON_AddStringToObject(o, "status", store_status_name(e->status)) ||
	    !cJSON_AddNumberToObject(o, "step", (double)e->step) ||
	    !cJSON_AddNumberToObject(o, "steps", (double)e->steps) ||
	    !add_num_or_null(o, "loss", e->loss) || !add_num_or_null(o, "val_loss", e->val_loss) ||
	    !add_num_or_null(o, "diverged_step", e->diverged_step > 0 ? (double)e->diverged_step : NAN) ||
	    !cJSON_AddStringToObject(o, "hash", e->hash))
		return 1;
	return 0;
}

static void h_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_sweep w;
	struct store_err err = { 0 };
	struct store *rd = NULL;
	int counts[STORE_STATUS_COUNT];
	cJSON *out = NULL, *cn, *cells, *rq;
	char what[48];
	int rc;

	memset(&w, 0, sizeof w);
	snprintf(what, sizeof what, "sweep %" PRId64, req->params[0]);
	rd = api_reader(d, r);
	if (!rd)
		return;
	if (store_sweep_get(rd, req->params[0], &w, &err) < 0 ||
	    store_sweep_counts(rd, w.id, counts, &err) < 0) {
		api_store_problem(r, &err, what);
		goto out;
	}
	if (api_hide_unless_readable(req, r, w.owner, what))
		goto out;
	out = cJSON_CreateObject();
	rq = w.request ? cJSON_Parse(w.request) : NULL;
	if (!rq)
		rq = cJSON_CreateNull();
	if (!out || !rq || !cJSON_AddNumberToObject(out, "id", (double)w.id) ||
	    !cJSON_AddStringToObject(out, "owner", w.owner) ||
	    !cJSON_AddNumberToObject(out, "priority", w.priority) ||
	    !cJSON_AddNumberToObject(out, "n_cells", w.n_cells) ||
	    !cJSON_AddNumberToObject(out, "created_at", w.created_at) ||
	    !cJSON_AddItemToObject(out, "request", rq)) {
		cJSON_Delete(rq);   /* the last step: rq is attached only if every step passed */
		problem_oom(r);
		goto out;
	}
	cn = cJSON_AddObjectToObject(out, "counts");
	for (int s = STORE_QUEUED; cn && s < STORE_STATUS_COUNT; s++)
		if (!cJSON_AddNumberToObject(cn, store_status_name(s), counts[s]))
			cn = NULL;
	cells = cn ? cJSON_AddArrayToObject(out, "cells") : NULL;
	if (!cells) {
		problem_oom(r);
		goto out;
	}
	rc = each_cell(rd, w.id, cell_json_cb, cells, &err);
	if (rc < 0) {
		api_store_problem(r, &err, what);
		goto out;
	}
	if (rc > 0) {
		problem_oom(r);
		goto out;
	}
	api_reply(r, 200, out);
	out = NULL;
out:
	cJSON_Delete(out);
	store_sweep_clear(&w);
	store_close(rd);
}

/* ---- POST /api/v1/sweeps/{id}/cancel and /retry ----------------------------------------------- */

struct pick_ctx {
	struct id_list ids;
	int (*want)(int status);
};

static int pick_cb(void *arg, const struct store_experiment *e)
{
	struct pick_ctx *p = arg;
	if (p->want(e->status) && id_push(&p->ids, e->id) != 0)
		return 1;
	return 0;
}

static int cancellable(int status)
{
	return status == STORE_QUEUED || status == STORE_RUNNING;
}

/* Succeeded cells are results, queued/running ones are under way: neither is retried. */
static int retryable(int status)
{
	return status == STORE_FAILED || status == STORE_DIVERGED || status == STORE_CANCELLED ||
	       status == STORE_INTERRUPTED;
}

/* Reads the sweep, checks ownership and collects the ids of its cells in a wanted state, all
 * through one reader. Answers and returns -1 on failure. */
static int pick_cells(struct daemon *d, const struct http_request *req, struct http_response *r,
		      int (*want)(int), struct id_list *out)
{
	struct store_sweep w;
	struct store_err err = { 0 };
	struct pick_ctx p;
	char what[48];
	int rc = -1;

	memset(&p, 0, sizeof p);
	memset(&w, 0, sizeof w);
	p.want = want;
	snprintf(what, sizeof what, "sweep %" PRId64, req->params[0]);
	struct store *rd = api_reader(d, r);
	if (!rd)
		return -1;
	if (store_sweep_get(rd, req->params[0], &w, &err) < 0) {
		api_store_problem(r, &err, what);
		goto out;
	}
	if (api_forbid_unless_owner(req, r, w.owner))
		goto out;
	if (each_cell(rd, w.id, pick_cb, &p, &err) < 0) {
		api_store_problem(r, &err, what);
		goto out;
	}
	if (p.ids.oom) {
		problem_oom(r);
		goto out;
	}
	*out = p.ids;
	p.ids.ids = NULL;
	rc = 0;
out:
	store_close(rd);
	nl_free(p.ids.ids);
	store_sweep_clear(&w);
	return rc;
}

static cJSON *id_count_json(int64_t id, const char *k, int n)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddNumberToObject(o, "id", (double)id) || !cJSON_AddNumberToObject(o, k, n)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void h_cancel(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct id_list ids = { 0 };
	int cancelled = 0, stopping = 0, failed = 0;

	if (pick_cells(d, req, r, cancellable, &ids) != 0)
		return;
	/* One sched_cancel per cell (it is itself a sched_call: never call it from inside one),
	 * newest first: the scheduler starts the oldest queued cell next, so walking the other way
	 * keeps it from starting cells that are about to be cancelled. */
	for (int i = ids.n - 1; i >= 0; i--) {
		int rc = sched_cancel(d->sched, ids.ids[i]);
		if (api_stopping(r, rc))
			goto out;
		if (rc == 0 || rc == 1) {
			cancelled++;
			stopping += rc == 1;
		} else if (rc != -2 && rc != STORE_ENOTFOUND) {
			failed++;    /* -2 / not found: it ended or went away meanwhile */
		}
	}
	if (failed)
		LOG_WARN("sweep %" PRId64 ": %d cells could not be cancelled", req->params[0], failed);
	cJSON *o = id_count_json(req->params[0], "cancelled", cancelled);
	if (!o || !cJSON_AddNumberToObject(o, "stopping", stopping)) {
		cJSON_Delete(o);
		problem_oom(r);
		goto out;
	}
	api_reply(r, 200, o);
out:
	nl_free(ids.ids);
}

struct retry_ctx {
	struct daemon *d;
	const struct id_list *ids;
	unsigned char *requeued;        /* per id: 1 when this retry re-queued it */
	int n;
	const struct quota_limits *limits;
	struct quota_verdict quota;     /* status != 0: over the queue quota, rolled back */
	struct store_err err;
};

static int retry_tx(struct store *w, void *arg)
{
	struct retry_ctx *c = arg;
	double now = daemon_now();
	char owner[64] = "";
	c->n = 0;
	for (int i = 0; i < c->ids->n; i++) {
		struct store_experiment e;
		int64_t id = c->ids->ids[i];
		c->requeued[i] = 0;
		int rc = store_experiment_get(w, id, &e, &c->err);
		if (rc == STORE_ENOTFOUND)
			continue;           /* deleted since the HTTP thread listed it */
		if (rc < 0)
			return rc;
		int st = e.status;
		nl_strlcpy(owner, e.owner, sizeof owner);   /* one sweep: one owner */
		store_experiment_clear(&e);
		if (!retryable(st))
			continue;           /* its state moved on meanwhile */
		/* a fresh start: no metrics, no checkpoint to resume from, no old progress */
		if ((rc = store_metrics_truncate(w, id, 0, &c->err)) < 0 ||
		    (rc = store_experiment_reset(w, id, &c->err)) < 0 ||
		    (rc = store_experiment_set_status(w, id, STORE_QUEUED, NULL, now, &c->err)) < 0)
			return rc;
		c->requeued[i] = 1;
		c->n++;
	}
	/* re-queued cells count against the owner's queued cells like new ones */
	struct store_owner_counts oc;
	int rc = c->n ? store_owner_counts(w, owner, &oc, &c->err) : 0;
	if (rc < 0)
		return rc;
	oc.queued_cells -= c->n;
	if (c->n && quota_check_queue(c->limits, owner, &oc, 0, c->n, &c->quota) != 0)
		return SUBMIT_OVER_QUOTA;
	return 0;
}

static int retry_fn(struct store *w, void *arg)
{
	struct retry_ctx *c = arg;
	int rc = store_tx(w, retry_tx, c, &c->err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < c->ids->n; i++) {
		if (!c->requeued[i])
			continue;
		int64_t id = c->ids->ids[i];
		/* Here, not after sched_call returns: the scheduler may start the cell as soon as this
		 * function ends, and a late removal would delete the new run's checkpoints. */
		api_run_dir_remove(c->d, id);
		cJSON *o = cJSON_CreateObject();
		if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
			  !cJSON_AddTrueToObject(o, "retry"))) {
			cJSON_Delete(o);
			o = NULL;
		}
		event_obj(c->d, w, "experiment.queued", id, o);
	}
	return 0;
}

static void h_retry(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct id_list ids = { 0 };
	struct retry_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	if (pick_cells(d, req, r, retryable, &ids) != 0)
		return;
	if (ids.n > 0) {
		struct quota_limits ql;
		quota_limits_for(&d->cfg, req->is_admin, &ql);
		c.d = d;
		c.ids = &ids;
		c.limits = &ql;
		c.requeued = nl_calloc((size_t)ids.n, 1);
		if (!c.requeued) {
			problem_oom(r);
			goto out;
		}
		rc = sched_call(d->sched, retry_fn, &c);
		if (api_stopping(r, rc))
			goto out;
		if (c.quota.status) {
			quota_problem(r, &c.quota);
			goto out;
		}
		if (rc < 0) {
			api_store_problem(r, &c.err, "re-queueing the sweep's cells");
			goto out;
		}
	}
	cJSON *o = id_count_json(req->params[0], "requeued", c.n);
	if (!o) {
		problem_oom(r);
		goto out;
	}
	api_reply(r, 200, o);
out:
	nl_free(c.requeued);
	nl_free(ids.ids);
}

const struct http_route api_sweep_routes[] = {
	{ "POST", "/api/v1/sweeps", HTTP_WRITE, h_submit },
	{ "GET", "/api/v1/sweeps", HTTP_READ, h_list },
	{ "GET", "/api/v1/sweeps/{id}", HTTP_READ, h_get },
	{ "POST", "/api/v1/sweeps/{id}/cancel", HTTP_WRITE, h_cancel },
	{ "POST", "/api/v1/sweeps/{id}/retry", HTTP_WRITE, h_retry },
};
const int api_sweep_routes_n = (int)(sizeof api_sweep_routes / sizeof api_sweep_routes[0]);
