/*
 * fuzz_sweep.c — libFuzzer harness for the sweep expander (server/sweep.h).
 *
 * The input is a POST /api/v1/sweeps body. It goes the daemon's way (api_body_json): a body
 * that is UTF-8 is parsed by cJSON, NUL-terminated, and a JSON object reaches sweep_expand under the daemon's default limits
 * (thread budget 2, 4 GiB per run), with max_cells lowered to 64 so one input stays cheap.
 * What a user relies on:
 *   - a refused sweep says why: status 400 for NL_EINVAL and 422 for NL_ELIMIT, a stable code, a
 *     detail, JSON Pointers ("" or "/...") with terminated messages, and an untouched plan;
 *     NL_ENOMEM without an allocation failing would be a bug dressed up as memory;
 *   - an accepted sweep has cells numbered 0..n-1, n within max_cells, distinct hashes, and each
 *     cell's canonical spec parses back to its own hash under the same limits (h_submit stores
 *     the rows from exactly that parse: if it disagreed, the stored run would not be the one
 *     the dry run showed) and within the thread budget.
 * Single-threaded; everything is freed before returning.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "nl.h"
#include "spec.h"
#include "sweep.h"

#define FUZZ_MAX_CELLS 64
#define FUZZ_THREADS 2

static void check_refusal(int rc, const struct sweep_plan *plan, const struct sweep_errors *e)
{
	static const struct sweep_plan zero;
	FUZZ_CHECK(rc == NL_EINVAL || rc == NL_ELIMIT, "sweep_expand returned %d (code %s)", rc,
		   e->code);
	FUZZ_CHECK(memcmp(plan, &zero, sizeof zero) == 0, "a refused sweep left a plan behind");
	FUZZ_CHECK(e->status == (rc == NL_EINVAL ? 400 : 422), "rc %d answered with status %d", rc,
		   e->status);
	FUZZ_CHECK(FUZZ_TERMINATED(e->code) && e->code[0] && FUZZ_TERMINATED(e->detail) &&
		   e->detail[0], "a refusal without a code or detail");
	FUZZ_CHECK(fuzz_utf8_valid(e->detail, strlen(e->detail)), "detail is not UTF-8: %s",
		   e->detail);
	FUZZ_CHECK(e->n >= 0 && e->n <= SWEEP_MAX_ERRORS, "%d errors", e->n);
	FUZZ_CHECK(e->n > 0 || strcmp(e->code, "sweep_too_large") == 0,
		   "code %s with no error listed", e->code);
	for (int i = 0; i < e->n; i++) {
		FUZZ_CHECK(FUZZ_TERMINATED(e->e[i].pointer) && FUZZ_TERMINATED(e->e[i].msg),
			   "error %d is not terminated", i);
		FUZZ_CHECK(e->e[i].pointer[0] == '\0' || e->e[i].pointer[0] == '/',
			   "error %d: \"%s\" is not a JSON Pointer", i, e->e[i].pointer);
		FUZZ_CHECK(e->e[i].msg[0], "error %d (%s) has no message", i, e->e[i].pointer);
		FUZZ_CHECK(fuzz_utf8_valid(e->e[i].pointer, strlen(e->e[i].pointer)) &&
			   fuzz_utf8_valid(e->e[i].msg, strlen(e->e[i].msg)),
			   "error %d is not UTF-8 (the daemon sends it as JSON): %s: %s", i,
			   e->e[i].pointer, e->e[i].msg);
	}
}

static void check_plan(const struct sweep_plan *p, const struct sweep_limits *lim)
{
	FUZZ_CHECK(p->n >= 0 && p->n <= lim->max_cells, "%d cells, limit %d", p->n, lim->max_cells);
	FUZZ_CHECK((p->n == 0) == (p->cells == NULL), "%d cells at %p", p->n, (void *)p->cells);
	FUZZ_CHECK(p->priority >= SWEEP_PRIORITY_MIN && p->priority <= SWEEP_PRIORITY_MAX,
		   "priority %d", p->priority);
	FUZZ_CHECK(p->on_duplicate == SWEEP_DUP_SKIP || p->on_duplicate == SWEEP_DUP_RUN,
		   "on_duplicate %d", p->on_duplicate);
	FUZZ_CHECK(FUZZ_TERMINATED(p->name), "name is not terminated");
	for (int i = 0; i < p->n; i++) {
		const struct sweep_cell *c = &p->cells[i];
		struct spec s;
		struct spec_errors serr;
		char hash[65];
		FUZZ_CHECK(c->cell == i, "cell %d is numbered %d", i, c->cell);
		FUZZ_CHECK(cJSON_IsObject(c->overrides), "cell %d has no overrides object", i);
		FUZZ_CHECK(c->canonical != NULL, "cell %d has no spec", i);
		int rc = spec_parse(&s, c->canonical, strlen(c->canonical), &lim->spec, &serr);
		FUZZ_CHECK(rc == 0, "cell %d: its canonical spec does not parse again: %s: %s", i,
			   serr.n ? serr.e[0].pointer : "", serr.n ? serr.e[0].msg : "");
		FUZZ_CHECK(spec_hash(&s, hash) == 0 && strcmp(hash, c->hash) == 0,
			   "cell %d: hash %s, its canonical spec hashes to %s", i, c->hash, hash);
		FUZZ_CHECK(s.threads <= lim->max_threads, "cell %d asks for %d threads", i, s.threads);
		for (int k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(p->cells[k].hash, c->hash) != 0, "cells %d and %d are one run",
				   k, i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sweep_limits lim;
	struct sweep_plan plan;
	struct sweep_errors errs;

	/* api_body_json refuses a body that is not UTF-8 before anything parses it */
	if (nl_utf8_check((const char *)data, size) != size)
		return 0;
	char *body = nl_malloc(size + 1);
	FUZZ_CHECK(body != NULL, "out of memory");
	memcpy(body, data, size);
	body[size] = '\0';
	/* as api_body_json: the NUL is inside the length so trailing garbage is refused */
	cJSON *req = cJSON_ParseWithLengthOpts(body, size + 1, NULL, 1);
	nl_free(body);
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return 0;
	}
	memset(&lim, 0, sizeof lim);
	lim.max_cells = FUZZ_MAX_CELLS;
	lim.max_threads = FUZZ_THREADS;
	lim.spec.max_bytes = SPEC_MEM_LIMIT_DEFAULT;
	memset(&plan, 0x5a, sizeof plan);   /* sweep_expand must zero it on failure */
	int rc = sweep_expand(req, &lim, &plan, &errs);
	if (rc != 0) {
		check_refusal(rc, &plan, &errs);
	} else {
		check_plan(&plan, &lim);
		sweep_plan_free(&plan);
	}
	cJSON_Delete(req);
	return 0;
}
