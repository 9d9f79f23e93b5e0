/*
 * quota.c — see quota.h. Judges a submission against its role's limits and words the refusal:
 * every message names the limit (the config option), its value and the number that broke it, so
 * a user can tell what to change (fewer samples, a later retry) without reading the config.
 * No state; thread-safe.
 */
#include "quota.h"
#include "tokens.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "nl.h"
#include "sweep.h"

#define QUOTA_PRIORITY_MAX 1000   /* the API's own range (EXP_PRIORITY_MAX, SWEEP_PRIORITY_MAX) */

void quota_limits_for(const struct config *c, int is_admin, struct quota_limits *out)
{
	memset(out, 0, sizeof *out);
	out->admin = is_admin != 0;
	if (is_admin) {
		out->queued_runs = c->admin_max_queued_runs;
		out->queued_cells = c->admin_max_queued_cells;
		out->running = c->admin_max_running;
		out->run_gflop = c->admin_max_run_gflop;
		out->run_store_bytes = c->admin_max_run_store_bytes;
		out->max_priority = QUOTA_PRIORITY_MAX;
	} else {
		out->queued_runs = c->user_max_queued_runs;
		out->queued_cells = c->user_max_queued_cells;
		out->running = c->user_max_running;
		out->run_gflop = c->user_max_run_gflop;
		out->run_store_bytes = c->user_max_run_store_bytes;
		out->max_priority = c->user_max_priority;
	}
}

static const char *role(const struct quota_limits *q)
{
	return q->admin ? "admin" : "user";
}

static void verdict(struct quota_verdict *v, int status, const char *code,
		    const struct quota_limits *q, const char *limit, int64_t value, int64_t current,
		    int64_t requested)
{
	memset(v, 0, sizeof *v);
	v->status = status;
	snprintf(v->code, sizeof v->code, "%s", code);
	snprintf(v->limit, sizeof v->limit, "%s_%s", role(q), limit);
	v->limit_value = value;
	v->current = current;
	v->requested = requested;
}

int quota_check_spec(const struct quota_limits *q, const struct spec *s, const char *prefix,
		     struct quota_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (q->run_store_bytes > 0) {
		struct spec_store_est est;
		spec_store_estimate(s, &est);
		if (est.total > (uint64_t)q->run_store_bytes) {
			int64_t total = est.total > INT64_MAX ? INT64_MAX : (int64_t)est.total;
			verdict(v, 403, "quota_run_stored_bytes", q, "max_run_store_bytes",
				q->run_store_bytes, total, total);
			snprintf(v->pointer, sizeof v->pointer, "%s/probe/samples", prefix);
			snprintf(v->detail, sizeof v->detail,
				 "the run would store %" PRId64 " bytes (%d samples x %d sites x %ld sample "
				 "steps = %" PRIu64 " bytes of samples, %" PRIu64 " of depth profiles, "
				 "%" PRIu64 " of scalars); the limit %s is %" PRId64,
				 total, s->probe.samples, est.sample_sites, est.sample_steps,
				 est.sample_bytes, est.depth_bytes, est.scalar_bytes, v->limit,
				 q->run_store_bytes);
			return -1;
		}
	}
	if (q->run_gflop > 0) {
		double gflop = ceil(spec_flops_estimate(s) / 1e9);
		if (!(gflop <= (double)q->run_gflop)) {
			int64_t g = gflop < 9e18 ? (int64_t)gflop : INT64_MAX;
			verdict(v, 403, "quota_run_compute", q, "max_run_gflop", q->run_gflop, g, g);
			snprintf(v->pointer, sizeof v->pointer, "%s/train/steps", prefix);
			snprintf(v->detail, sizeof v->detail,
				 "the run needs about %" PRId64 " GFLOP (%ld steps of a %d-layer d=%d "
				 "model); the limit %s is %" PRId64 " GFLOP", g, s->train.steps,
				 s->model.n_layer, s->model.d_model, v->limit, q->run_gflop);
			return -1;
		}
	}
	return 0;
}

int quota_check_plan(const struct quota_limits *q, const struct sweep_plan *p,
		     struct quota_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (q->run_store_bytes <= 0 && q->run_gflop <= 0)
		return 0;
	for (int i = 0; i < p->n; i++) {
		char prefix[32];
		snprintf(prefix, sizeof prefix, "/cells/%d", p->cells[i].cell);
		if (quota_check_spec(q, p->cells[i].spec, prefix, v) != 0) {
			size_t n = strlen(v->detail);
			snprintf(v->detail + n, sizeof v->detail - n, " (cell %d)", p->cells[i].cell);
			return -1;
		}
	}
	return 0;
}

int quota_check_priority(const struct quota_limits *q, int priority, const char *pointer,
			 struct quota_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (priority <= q->max_priority)
		return 0;
	verdict(v, 403, "priority_above_ceiling", q, "max_priority", q->max_priority, priority,
		priority);
	snprintf(v->pointer, sizeof v->pointer, "%s", pointer);
	snprintf(v->detail, sizeof v->detail, "priority %d is above the limit %s = %d; a higher "
		 "priority needs an admin", priority, v->limit, q->max_priority);
	return -1;
}

int quota_check_queue(const struct quota_limits *q, const char *owner,
		      const struct store_owner_counts *c, int64_t add_runs, int64_t add_cells,
		      struct quota_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (add_runs > 0 && q->queued_runs > 0 && c->queued_runs + add_runs > q->queued_runs) {
		verdict(v, 429, "quota_queued_runs", q, "max_queued_runs", q->queued_runs,
			c->queued_runs, add_runs);
		snprintf(v->detail, sizeof v->detail, "%.63s has %" PRId64 " queued runs; the limit "
			 "%s is %" PRId64 " (this adds %" PRId64 "): wait for some to start",
			 owner, c->queued_runs, v->limit, q->queued_runs, add_runs);
		return -1;
	}
	if (add_cells > 0 && q->queued_cells > 0 && c->queued_cells + add_cells > q->queued_cells) {
		verdict(v, 429, "quota_queued_cells", q, "max_queued_cells", q->queued_cells,
			c->queued_cells, add_cells);
		snprintf(v->detail, sizeof v->detail, "%.63s has %" PRId64 " queued sweep cells; this "
			 "sweep adds %" PRId64 " and the limit %s is %" PRId64 ": nothing was queued",
			 owner, c->queued_cells, add_cells, v->limit, q->queued_cells);
		return -1;
	}
	return 0;
}

void quota_problem(struct http_response *r, const struct quota_verdict *v)
{
	const char *ptr = v->pointer, *msg = v->detail;
	char ext[256];
	http_problem(r, v->status, v->code, v->detail, &ptr, &msg, v->pointer[0] ? 1 : 0);
	if (!r->body || r->len == 0 || r->body[r->len - 1] != '}')
		return;
	/* RFC 9457 extension members, before the closing brace; the limit name is an option name
	 * ([a-z_]), so it needs no escaping */
	int n = snprintf(ext, sizeof ext, ",\"limit\":\"%s\",\"limit_value\":%" PRId64
			 ",\"current\":%" PRId64 ",\"requested\":%" PRId64 "}", v->limit,
			 v->limit_value, v->current, v->requested);
	if (n < 0 || (size_t)n >= sizeof ext)
		return;
	char *b = nl_realloc(r->body, r->len + (size_t)n + 1);
	if (!b)
		return;   /* the plain problem stays */
	memcpy(b + r->len - 1, ext, (size_t)n + 1);
	r->body = b;
	r->len += (size_t)n - 1;
}

int quota_owner_max_running(const struct daemon *d, const char *owner)
{
	int admin = tokens_user_is_admin(d->tokens, owner);
	return admin ? d->cfg.admin_max_running : d->cfg.user_max_running;
}
