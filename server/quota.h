/*
 * quota.h — quotas per role (prefix quota_): how many runs and sweep cells one user may keep
 * queued, how many of a user's runs train at once, how much compute and how many stored bytes one
 * run may need, and the highest priority a user may give. The limits come from the config
 * (user_max_* for every role but admin, admin_max_*; 0 = no limit); the estimates from the engine
 * (spec_flops_estimate, spec_store_estimate), so a run is judged before anything is queued.
 * A refusal is a problem+json naming the limit (the config option), its value and the current
 * count: 429 for the queue limits (wait and retry), 403 for what only an admin may ask.
 *
 * Pure checks over caller-owned structs, thread-safe; quota_owner_max_running reads the tokens
 * (read-only after load).
 */
#ifndef QUOTA_H
#define QUOTA_H

#include <stdint.h>

#include "config.h"
#include "http.h"
#include "spec.h"
#include "store.h"

struct daemon;
struct sweep_plan;

struct quota_limits {
	int admin;
	int64_t queued_runs, queued_cells, running;   /* 0 = no limit */
	int64_t run_gflop, run_store_bytes;           /* 0 = no limit */
	int max_priority;                             /* admins: the API's maximum */
};

/* The limits of a role: admin (is_admin) or any other. */
void quota_limits_for(const struct config *c, int is_admin, struct quota_limits *out);

struct quota_verdict {
	int status;            /* 0: within every limit; else 403 or 429 */
	char code[40];         /* problem code: quota_queued_runs, quota_queued_cells,
				* quota_run_compute, quota_run_stored_bytes, priority_above_ceiling */
	char limit[48];        /* the config option, e.g. "user_max_queued_runs" */
	int64_t limit_value;
	int64_t current;       /* queue limits: the count now; run limits: the run's estimate */
	int64_t requested;     /* queue limits: what the submission adds; priority: the one asked */
	char pointer[96];      /* JSON Pointer of the field at fault; "" = none */
	char detail[320];
};

/* Compute and stored bytes of spec s against q. prefix goes before the JSON Pointers ("" or
 * "/cells/3"). Returns 0 (v->status 0) or -1 with v filled. */
int quota_check_spec(const struct quota_limits *q, const struct spec *s, const char *prefix,
		     struct quota_verdict *v);

/* Every cell of a sweep plan through quota_check_spec; the first cell over a limit answers. */
int quota_check_plan(const struct quota_limits *q, const struct sweep_plan *p,
		     struct quota_verdict *v);

/* priority (the field at pointer) against the role's ceiling. 0 or -1 with v filled (403). */
int quota_check_priority(const struct quota_limits *q, int priority, const char *pointer,
			 struct quota_verdict *v);

/* Whether owner, with counts c, may queue add_runs more runs and add_cells more sweep cells.
 * 0 or -1 with v filled (429). */
int quota_check_queue(const struct quota_limits *q, const char *owner,
		      const struct store_owner_counts *c, int64_t add_runs, int64_t add_cells,
		      struct quota_verdict *v);

/* Answers the refusal in v as problem+json with the members limit, limit_value, current and
 * requested next to the usual ones. */
void quota_problem(struct http_response *r, const struct quota_verdict *v);

/* How many of owner's runs may train at once (0 = no limit), by the owner's role in the
 * tokens file: admin if any of the owner's tokens is admin. */
int quota_owner_max_running(const struct daemon *d, const char *owner);

#endif
