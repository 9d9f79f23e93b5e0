/*
 * test_quotas — quotas and fair share on a shared server, as the users would meet them:
 *  1. the stored-bytes estimate a submission is judged on equals what a real trainer emits, row
 *     for row, for every placement (so the cap refuses the run it claims to refuse);
 *  2. the store's fair-share queue heads, owner counts and event pruning on a real SQLite file;
 *  3. one user floods the queue with three sweeps; another user's run, submitted afterwards, is
 *     the next to start when the slot frees, and the flood then goes on in its own order;
 *  4. every quota answered with 429 or 403 naming the limit and the current count: queued runs,
 *     queued sweep cells (the sweep refused whole, dry run too), stored bytes (with the number),
 *     compute, the priority ceiling (submit, sweep, PATCH); an admin is not held to user limits;
 *     a per-user running cap leaves the second slot to another user; a sweep retry counts too;
 *     GET /api/v1/quota shows the caller's limits and usage;
 *  5. old events pruned by the timer, and an SSE client resuming from a pruned id gets the
 *     oldest kept event next.
 * Real daemon on loopback (tests/lib/dtest.h), tiny models, a corpus the test writes itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/dtest.h"
#include "../test.h"
#include "spec.h"
#include "store.h"
#include "train.h"

#define ALICE "tok-alice-0123456789abcdef"
#define BOB "tok-bob-0123456789abcdef00"
#define ROOT "tok-root-0123456789abcdef0"

static struct dtest D;

/* A tiny run's spec (the default corpus "kjv" is the test's own, in the daemon's data_dir). The
 * result lives in one of a few rotating buffers, so two can be used in one expression. */
static const char *tiny(long steps, const char *probe, const char *extra)
{
	static char buf[4][1024];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0],
		 "{\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":1,\"seq_len\":16},"
		 "\"train\":{\"steps\":%ld,\"batch_size\":2,\"warmup\":1,\"lr\":0.003},"
		 "\"probe\":%.400s%s%.200s}", steps,
		 probe ? probe : "{\"every\":10,\"depth_every\":100,\"samples_every\":100,"
				 "\"samples\":8,\"val_every\":100,\"val_batches\":1}",
		 extra ? "," : "", extra ? extra : "");
	return b;
}

static int call(const char *method, const char *path, const char *token, const char *body,
		struct dtest_reply *r)
{
	return dtest_call(&D, method, path, token, body, r);
}

/* POSTs and returns the status; *id gets the "id" member (0 if none). */
static int post(const char *path, const char *token, const char *body, int64_t *id)
{
	struct dtest_reply r;
	int st = call("POST", path, token, body, &r);
	if (id)
		*id = r.json ? (int64_t)dtest_num(r.json, "id") : 0;
	if (st != 201 && st != 200 && st != 403 && st != 429)
		fprintf(stderr, "POST %s: %d %.300s\n", path, st, r.body ? r.body : "");
	dtest_reply_free(&r);
	return st;
}

/* A refusal: status, problem code, the limit named, its value and the current count. */
static void expect_refusal(const char *method, const char *path, const char *token,
			   const char *body, int status, const char *code, const char *limit,
			   double limit_value, double current, struct dtest_reply *keep)
{
	struct dtest_reply r;
	int st = call(method, path, token, body, &r);
	CHECKF(st == status, "%s %s: %d (want %d) %.400s", method, path, st, status, r.body);
	CHECKF(strcmp(dtest_str(r.json, "code"), code) == 0, "code %s (want %s)",
	       dtest_str(r.json, "code"), code);
	CHECKF(strcmp(dtest_str(r.json, "limit"), limit) == 0, "limit %s (want %s)",
	       dtest_str(r.json, "limit"), limit);
	CHECKF(dtest_num(r.json, "limit_value") == limit_value, "limit_value %.0f (want %.0f)",
	       dtest_num(r.json, "limit_value"), limit_value);
	if (current >= 0)
		CHECKF(dtest_num(r.json, "current") == current, "current %.0f (want %.0f)",
		       dtest_num(r.json, "current"), current);
	CHECKF(r.body && strstr(r.body, limit) && strstr(dtest_str(r.json, "detail"), limit),
	       "the detail names the limit: %.300s", r.body);
	CHECKF(r.raw && strstr(r.raw, "application/problem+json"), "problem+json");
	if (keep)
		*keep = r;
	else
		dtest_reply_free(&r);
}

struct exp_row {
	int64_t id;
	char owner[16];
	char status[16];
	double created, started, finished;
};

/* Every experiment (one page of up to 1000), in id order. Returns the count. */
static int list_all(struct exp_row *rows, int cap)
{
	struct dtest_reply r;
	int n = 0;
	call("GET", "/api/v1/experiments?page_size=1000", ROOT, NULL, &r);
	const cJSON *it, *items = cJSON_GetObjectItemCaseSensitive(r.json, "items");
	cJSON_ArrayForEach(it, items) {
		if (n == cap)
			break;
		struct exp_row *x = &rows[n++];
		x->id = (int64_t)dtest_num(it, "id");
		snprintf(x->owner, sizeof x->owner, "%s", dtest_str(it, "owner"));
		snprintf(x->status, sizeof x->status, "%s", dtest_str(it, "status"));
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "created_at");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "started_at");
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "finished_at");
		x->created = cJSON_IsNumber(c) ? c->valuedouble : 0;
		x->started = cJSON_IsNumber(s) ? s->valuedouble : 0;
		x->finished = cJSON_IsNumber(f) ? f->valuedouble : 0;
	}
	dtest_reply_free(&r);
	return n;
}

static int count_status(const char *owner, const char *status)
{
	struct exp_row rows[1000];
	int n = list_all(rows, 1000), k = 0;
	for (int i = 0; i < n; i++)
		k += (!owner || strcmp(rows[i].owner, owner) == 0) && strcmp(rows[i].status, status) == 0;
	return k;
}

/* Waits until no experiment is queued or running; returns 1 if that happened in time. */
static int wait_idle(double timeout)
{
	double until = dtest_now() + timeout;
	while (dtest_now() < until) {
		if (count_status(NULL, "queued") == 0 && count_status(NULL, "running") == 0)
			return 1;
		dtest_sleep_ms(200);
	}
	return 0;
}

static int wait_status(int64_t id, const char *status, double timeout)
{
	char path[96];
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)id);
	double until = dtest_now() + timeout;
	while (dtest_now() < until) {
		struct dtest_reply r;
		call("GET", path, ROOT, NULL, &r);
		int ok = strcmp(dtest_str(r.json, "status"), status) == 0;
		dtest_reply_free(&r);
		if (ok)
			return 1;
		dtest_sleep_ms(50);
	}
	return 0;
}

/* ---------- 1. the stored-bytes estimate against a real trainer ---------- */

struct tally {
	long scalars, depth_rows, depth_values, sample_rows, sample_pairs;
};

static void t_scalar(void *ctx, long step, const char *name, double v)
{
	(void)step, (void)name, (void)v;
	((struct tally *)ctx)->scalars++;
}

static void t_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct tally *t = ctx;
	(void)step, (void)name, (void)v;
	t->depth_rows++;
	t->depth_values += n;
}

static void t_samples(void *ctx, long step, const char *site, const float *x, const float *y,
		      const int *tok, const int *chan, int n)
{
	struct tally *t = ctx;
	(void)step, (void)site, (void)x, (void)y, (void)tok, (void)chan;
	t->sample_rows++;
	t->sample_pairs += n;
}

static void test_estimates(void)
{
	static const char *const norms[][2] = {
		{ "layernorm", "pre" }, { "dyt", "post" }, { "derf", "peri" }, { "rmsnorm", "lns" },
		{ "dyt", "mix" }, { "batchnorm", "peri" }, { "powernorm", "post" }, { "un", "pre" },
	};
	for (size_t k = 0; k < sizeof norms / sizeof norms[0]; k++) {
		char json[1024];
		struct spec s;
		struct spec_errors errs;
		snprintf(json, sizeof json,
			 "{\"model\":{\"n_layer\":3,\"d_model\":16,\"n_head\":2,\"seq_len\":16},"
			 "\"norm\":{\"type\":\"%s\",\"placement\":\"%s\"%s},"
			 "\"train\":{\"steps\":23,\"batch_size\":2,\"warmup\":1},"
			 "\"probe\":{\"every\":4,\"depth_every\":5,\"samples_every\":7,\"samples\":9,"
			 "\"val_every\":10,\"val_batches\":1}}", norms[k][0], norms[k][1],
			 strcmp(norms[k][1], "peri") == 0 ? ",\"embed_norm\":true" : "");
		if (spec_parse(&s, json, strlen(json), NULL, &errs) != 0) {
			CHECKF(0, "%s: %s %s", json, errs.e[0].pointer, errs.e[0].msg);
			continue;
		}
		struct spec_store_est est;
		spec_store_estimate(&s, &est);
		struct tally t = { 0 };
		struct train_sink sink = { &t, t_scalar, t_depth, t_samples };
		struct trainer tr;
		struct nl_err err = { 0 };
		if (trainer_init(&tr, &s, D.corpus, &err) != 0) {
			CHECKF(0, "trainer_init: %s", err.msg);
			continue;
		}
		while (!trainer_done(&tr) && trainer_step(&tr, &sink, &err) == 0)
			;
		CHECKF(tr.step == 23, "%s/%s trained %ld steps", norms[k][0], norms[k][1], tr.step);
		trainer_free(&tr);
		uint64_t R = SPEC_STORE_ROW_BYTES;
		uint64_t emitted = (uint64_t)t.sample_rows * R + (uint64_t)t.sample_pairs * SPEC_SAMPLE_BYTES +
				   (uint64_t)t.depth_rows * R + (uint64_t)t.depth_values * 8 +
				   (uint64_t)t.scalars * (8 + R);
		CHECKF(est.sample_steps * est.sample_sites == t.sample_rows &&
		       est.depth_steps * est.depth_rows == t.depth_rows && est.total == emitted,
		       "%s/%s: estimate %llu bytes (%ld sample steps x %d sites, %ld depth steps x %d "
		       "rows), the trainer emitted %llu (%ld sample rows, %ld depth rows, %ld scalars)",
		       norms[k][0], norms[k][1], (unsigned long long)est.total, est.sample_steps,
		       est.sample_sites, est.depth_steps, est.depth_rows, (unsigned long long)emitted,
		       t.sample_rows, t.depth_rows, t.scalars);
		double f = spec_flops_estimate(&s);
		s.train.steps *= 2;
		CHECKF(isfinite(f) && f > 0 && spec_flops_estimate(&s) > 1.9 * f, "flops %g", f);
	}
}

/* ---------- 2. the store's queries ---------- */

static int64_t add_exp(struct store *w, const char *owner, int prio, int status, double started,
		       int64_t sweep_id)
{
	static int k;
	struct store_experiment e;
	char hash[65];
	memset(&e, 0, sizeof e);
	snprintf(hash, sizeof hash, "%064d", ++k);
	memcpy(e.hash, hash, sizeof e.hash);
	e.spec = (char *)"{}";
	snprintf(e.owner, sizeof e.owner, "%s", owner);
	e.priority = prio;
	e.status = status;
	e.threads = 1;
	e.cell = sweep_id ? 0 : -1;
	e.sweep_id = sweep_id;
	e.loss = e.val_loss = NAN;
	e.created_at = 1000 + k;
	e.started_at = started;
	struct store_err err = { 0 };
	CHECKF(store_experiment_insert(w, &e, &err) == 0, "insert: %s", err.msg);
	return e.id;
}

struct ev_ids {
	int64_t ids[16];
	int n;
};

static int ev_cb(void *ctx, int64_t id, const char *kind, int64_t exp_id, const char *data)
{
	struct ev_ids *e = ctx;
	(void)kind, (void)exp_id, (void)data;
	if (e->n < 16)
		e->ids[e->n++] = id;
	return 0;
}

static void test_store_queries(void)
{
	char path[256];
	struct store *w = NULL;
	struct store_err err = { 0 };
	snprintf(path, sizeof path, "%s/store.db", D.tmp);
	if (store_open(&w, path, 1, &err) != 0) {
		CHECKF(0, "store_open: %s", err.msg);
		return;
	}
	/* alice started something at t=50, bob at t=20, carol never; dave only at priority 5 */
	add_exp(w, "alice", 0, STORE_SUCCEEDED, 50, 0);
	add_exp(w, "bob", 0, STORE_RUNNING, 20, 0);
	int64_t a1 = add_exp(w, "alice", 0, STORE_QUEUED, 0, 0);
	add_exp(w, "alice", 0, STORE_QUEUED, 0, 0);
	int64_t b1 = add_exp(w, "bob", 0, STORE_QUEUED, 0, 0);
	int64_t c1 = add_exp(w, "carol", 0, STORE_QUEUED, 0, 0);
	int64_t d1 = add_exp(w, "dave", 5, STORE_QUEUED, 0, 0);
	struct store_queue_head h[8];
	int n = store_queue_heads(w, 4, h, 8, &err);
	/* priority 5 first; then at 0: carol (never started), bob (t=20), alice (t=50) */
	CHECKF(n == 4 && h[0].id == d1 && h[1].id == c1 && h[2].id == b1 && h[3].id == a1,
	       "heads: n %d: %lld %lld %lld %lld", n, (long long)h[0].id, (long long)h[1].id,
	       (long long)h[2].id, (long long)h[3].id);
	CHECK(n == 4 && h[2].running == 1 && h[3].running == 0 && h[3].last_start == 50);
	/* a run too wide for the free threads is not a head */
	CHECK(store_queue_heads(w, 0, h, 8, &err) == 0);

	struct store_sweep sw = { 0 };
	snprintf(sw.owner, sizeof sw.owner, "alice");
	sw.request = (char *)"{}";
	sw.n_cells = 2;
	CHECK(store_sweep_insert(w, &sw, &err) == 0);
	add_exp(w, "alice", 0, STORE_QUEUED, 0, sw.id);
	add_exp(w, "alice", 0, STORE_QUEUED, 0, sw.id);
	struct store_owner_counts oc;
	CHECK(store_owner_counts(w, "alice", &oc, &err) == 0);
	CHECKF(oc.queued_runs == 2 && oc.queued_cells == 2 && oc.running == 0, "alice %lld %lld %lld",
	       (long long)oc.queued_runs, (long long)oc.queued_cells, (long long)oc.running);
	CHECK(store_owner_counts(w, "bob", &oc, &err) == 0 && oc.queued_runs == 1 && oc.running == 1);
	CHECK(store_owner_counts(w, "nobody", &oc, &err) == 0 && oc.queued_runs == 0);

	/* events: 10 at t = 1..10; by age (before t=4) then by count (newest 5) */
	for (int i = 1; i <= 10; i++)
		CHECK(store_event_append(w, "x", 0, "{}", i, &err) == i);
	CHECK(store_events_prune(w, 4, 0, 2, &err) == 2);   /* a batch of at most 2 */
	CHECK(store_events_prune(w, 4, 0, 100, &err) == 1);
	CHECK(store_events_prune(w, 0, 5, 100, &err) == 2);
	CHECK(store_events_prune(w, 0, 5, 100, &err) == 0);
	struct ev_ids ev = { 0 };
	CHECK(store_events_after(w, 0, 100, ev_cb, &ev, &err) == 5);
	CHECKF(ev.n == 5 && ev.ids[0] == 6 && ev.ids[4] == 10, "kept %d events from %lld", ev.n,
	       (long long)ev.ids[0]);
	store_close(w);
}

/* ---------- 3. fair share ---------- */

static void test_fair_share(void)
{
	const char *args[] = { "--workers", "1", "--thread_budget", "1", NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start (see %s)", D.log);
		return;
	}
	char body[2048];
	/* alice floods: three sweeps of three cells (cells differ by seed) */
	for (int k = 0; k < 3; k++) {
		snprintf(body, sizeof body, "{\"base\":%s,\"seeds\":[%d,%d,%d],\"name\":\"flood%d\"}",
			 tiny(300, NULL, NULL), 10 * k + 1, 10 * k + 2, 10 * k + 3, k);
		CHECK(post("/api/v1/sweeps", ALICE, body, NULL) == 201);
	}
	/* one of alice's cells takes the only slot; then bob asks for one run */
	double until = dtest_now() + 60;
	while (count_status("alice", "running") == 0 && dtest_now() < until)
		dtest_sleep_ms(20);
	int64_t bob = 0;
	CHECK(post("/api/v1/experiments", BOB, tiny(300, NULL, "\"seed\":99"), &bob) == 201);
	CHECKF(wait_idle(300), "the queue did not drain");

	struct exp_row rows[64], *b = NULL;
	int n = list_all(rows, 64), after = 0, between = 0, alice_n = 0, in_order = 1;
	double prev = 0;
	for (int i = 0; i < n; i++)
		if (rows[i].id == bob)
			b = &rows[i];
	CHECK(b && strcmp(b->status, "succeeded") == 0);
	for (int i = 0; b && i < n; i++) {
		const struct exp_row *x = &rows[i];
		if (strcmp(x->owner, "alice") != 0)
			continue;
		alice_n++;
		CHECKF(strcmp(x->status, "succeeded") == 0, "alice's %lld: %s", (long long)x->id,
		       x->status);
		/* no run of the flood started between bob's submission and bob's start */
		between += x->started > b->created && x->started < b->started;
		after += x->started > b->started;
		in_order &= x->started >= prev;   /* one owner: first come first served */
		prev = x->started;
	}
	CHECKF(alice_n == 9, "alice has %d runs", alice_n);
	CHECKF(between == 0, "%d of alice's runs started after bob queued and before bob's run", between);
	CHECKF(after >= 3, "only %d of alice's 9 runs were still waiting when bob's started", after);
	CHECK(in_order);
	printf("figure: fair share: bob's run started %.2f s after it was queued, ahead of %d of "
	       "alice's 9 queued cells\n", b ? b->started - b->created : -1, after);
	CHECK(dtest_stop(&D, SIGTERM) == 0);
}

/* ---------- 4. quotas ---------- */

/* The ids and first id of an SSE stream read for about ms milliseconds. */
static int sse_ids(const char *last_event_id, const char *query, int ms, int64_t *ids, int cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), n = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)D.port) };
	struct timeval tv = { 0, 200000 };
	static char buf[1 << 18];
	size_t got = 0;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
		char head[512], hdr[96] = "";
		if (last_event_id)
			snprintf(hdr, sizeof hdr, "Last-Event-ID: %s\r\n", last_event_id);
		int len = snprintf(head, sizeof head, "GET /api/v1/events%s HTTP/1.1\r\nHost: t\r\n"
				   "Authorization: Bearer " ROOT "\r\nAccept: text/event-stream\r\n%s\r\n",
				   query, hdr);
		if (write(fd, head, (size_t)len) == len) {
			double until = dtest_now() + ms / 1000.0;
			while (dtest_now() < until && got < sizeof buf - 4096) {
				ssize_t k = read(fd, buf + got, 4095);
				if (k > 0)
					got += (size_t)k;
				else if (k == 0)
					break;
			}
		}
	}
	close(fd);
	buf[got] = '\0';
	for (char *p = buf; (p = strstr(p, "\nid: ")) != NULL && n < cap; p++)
		ids[n++] = strtoll(p + 5, NULL, 10);
	return n;
}

static void test_quotas(void)
{
	/* the long run's compute is under the limit; 10M steps of the same model is not */
	char gflop[32];
	struct spec s;
	const char *longrun = tiny(1000000, "{\"every\":100000,\"depth_every\":1000000,"
				   "\"samples_every\":1000000,\"samples\":0,\"val_every\":1000000,"
				   "\"val_batches\":1}", NULL);
	CHECK(spec_parse(&s, longrun, strlen(longrun), NULL, NULL) == 0);
	double g = ceil(spec_flops_estimate(&s) / 1e9) + 1;
	snprintf(gflop, sizeof gflop, "%.0f", g);
	const char *args[] = { "--workers", "2", "--thread_budget", "2", "--user_max_running", "1",
			       "--user_max_queued_runs", "2", "--user_max_queued_cells", "5",
			       "--user_max_run_store_bytes", "1M", "--user_max_run_gflop", gflop,
			       "--events_keep_rows", "20", "--events_prune_every", "1", NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start (see %s)", D.log);
		return;
	}
	int64_t l1, a1, a2, id;
	char body[4096];
	/* alice's long run holds a slot, and her running cap of 1 keeps the rest of hers queued */
	CHECK(post("/api/v1/experiments", ALICE, longrun, &l1) == 201);
	CHECK(wait_status(l1, "running", 30));
	CHECK(post("/api/v1/experiments", ALICE, tiny(50, NULL, "\"seed\":2"), &a1) == 201);
	CHECK(post("/api/v1/experiments", ALICE, tiny(50, NULL, "\"seed\":3"), &a2) == 201);
	expect_refusal("POST", "/api/v1/experiments", ALICE, tiny(50, NULL, "\"seed\":4"), 429,
		       "quota_queued_runs", "user_max_queued_runs", 2, 2, NULL);
	expect_refusal("POST", "/api/v1/experiments?dry_run=1", ALICE, tiny(50, NULL, "\"seed\":4"),
		       429, "quota_queued_runs", "user_max_queued_runs", 2, 2, NULL);
	/* bob takes the second slot although alice's two runs were queued first */
	int64_t b1;
	CHECK(post("/api/v1/experiments", BOB, tiny(50, NULL, "\"seed\":5"), &b1) == 201);
	CHECKF(wait_status(b1, "succeeded", 60), "bob's run should run beside alice's long one");
	CHECK(count_status("alice", "queued") == 2);
	/* an admin is not held to the user limits (admin_max_* = 0) */
	for (int k = 0; k < 3; k++) {
		snprintf(body, sizeof body, "\"seed\":%d", 20 + k);
		CHECK(post("/api/v1/experiments", ROOT, tiny(50, NULL, body), NULL) == 201);
	}

	/* sweep cells: 4 fit under 5; 2 more are refused whole, dry run included */
	snprintf(body, sizeof body, "{\"base\":%s,\"seeds\":[31,32,33,34]}", tiny(50, NULL, NULL));
	CHECK(post("/api/v1/sweeps", ALICE, body, NULL) == 201);
	snprintf(body, sizeof body, "{\"base\":%s,\"seeds\":[41,42]}", tiny(50, NULL, NULL));
	expect_refusal("POST", "/api/v1/sweeps", ALICE, body, 429, "quota_queued_cells",
		       "user_max_queued_cells", 5, 4, NULL);
	expect_refusal("POST", "/api/v1/sweeps?dry_run=1", ALICE, body, 429, "quota_queued_cells",
		       "user_max_queued_cells", 5, 4, NULL);
	struct dtest_reply r;
	/* what alice can see of it: her limits and usage (the long run, 2 runs, 4 cells) */
	CHECK(call("GET", "/api/v1/quota", ALICE, NULL, &r) == 200);
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(r.json, "limits");
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(r.json, "usage");
	CHECKF(strcmp(dtest_str(r.json, "role"), "user") == 0 &&
	       dtest_num(lim, "max_queued_cells") == 5 && dtest_num(lim, "max_running") == 1 &&
	       dtest_num(use, "queued_runs") == 2 && dtest_num(use, "queued_cells") == 4 &&
	       dtest_num(use, "running") == 1, "%.400s", r.body);
	dtest_reply_free(&r);
	CHECK(call("GET", "/api/v1/quota", NULL, NULL, &r) == 401);
	dtest_reply_free(&r);
	call("GET", "/api/v1/sweeps", ALICE, NULL, &r);
	CHECKF(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "items")) == 1,
	       "the refused sweep left nothing behind: %.300s", r.body);
	dtest_reply_free(&r);
	CHECK(count_status("alice", "queued") == 6);

	/* stored bytes: refused at submit with the number, the one a dry run reports */
	const char *heavy = tiny(50, "{\"every\":10,\"depth_every\":100,\"samples_every\":1,"
				 "\"samples\":100000,\"val_every\":100,\"val_batches\":1}", NULL);
	call("POST", "/api/v1/experiments?dry_run=1", ROOT, heavy, &r);
	double stored = dtest_num(r.json, "stored_bytes");
	CHECKF(stored > 1048576, "dry run stored_bytes %.0f", stored);
	dtest_reply_free(&r);
	expect_refusal("POST", "/api/v1/experiments", BOB, heavy, 403, "quota_run_stored_bytes",
		       "user_max_run_store_bytes", 1048576, stored, &r);
	char num[32];
	snprintf(num, sizeof num, "%.0f", stored);
	CHECKF(strstr(dtest_str(r.json, "detail"), num) != NULL, "the detail says %s: %s", num,
	       dtest_str(r.json, "detail"));
	CHECKF(strstr(r.body, "\"/probe/samples\"") != NULL, "%.300s", r.body);
	dtest_reply_free(&r);
	snprintf(body, sizeof body, "{\"base\":%s,\"grid\":{\"probe.samples\":[8,100000]}}",
		 tiny(50, "{\"samples_every\":1}", NULL));
	expect_refusal("POST", "/api/v1/sweeps?dry_run=1", BOB, body, 403, "quota_run_stored_bytes",
		       "user_max_run_store_bytes", 1048576, -1, &r);
	CHECKF(strstr(r.body, "\"/cells/1/probe/samples\"") != NULL, "%.400s", r.body);
	dtest_reply_free(&r);

	/* compute */
	const char *huge = tiny(10000000, "{\"every\":100000,\"depth_every\":10000000,"
				"\"samples_every\":10000000,\"samples\":0,\"val_every\":10000000,"
				"\"val_batches\":1}", NULL);
	expect_refusal("POST", "/api/v1/experiments", BOB, huge, 403, "quota_run_compute",
		       "user_max_run_gflop", g, -1, NULL);

	/* the priority ceiling: submit, sweep and PATCH; an admin may go above it */
	snprintf(body, sizeof body, "{\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":1,"
		 "\"seq_len\":16},\"train\":{\"steps\":50,\"batch_size\":2},\"priority\":1000}");
	expect_refusal("POST", "/api/v1/experiments", BOB, body, 403, "priority_above_ceiling",
		       "user_max_priority", 0, 1000, NULL);
	snprintf(body, sizeof body, "{\"base\":%s,\"seeds\":[51],\"priority\":3}", tiny(50, NULL, NULL));
	expect_refusal("POST", "/api/v1/sweeps", BOB, body, 403, "priority_above_ceiling",
		       "user_max_priority", 0, 3, NULL);
	char path[96];
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)a1);
	expect_refusal("PATCH", path, ALICE, "{\"priority\":5}", 403, "priority_above_ceiling",
		       "user_max_priority", 0, 5, NULL);
	CHECK(call("PATCH", path, ALICE, "{\"priority\":-5}", &r) == 200);
	dtest_reply_free(&r);
	CHECK(call("PATCH", path, ROOT, "{\"priority\":5}", &r) == 200);
	dtest_reply_free(&r);
	snprintf(body, sizeof body, "{\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":1,"
		 "\"seq_len\":16},\"train\":{\"steps\":50,\"batch_size\":2},\"seed\":77,"
		 "\"priority\":1000}");
	CHECK(post("/api/v1/experiments", ROOT, body, &id) == 201);

	/* a retry re-queues cells, so it counts like a submission: 4 queued + 1, cancel it, + 1
	 * again = 5, and re-queueing the cancelled cell would make 6 */
	int64_t s1, s2;
	snprintf(body, sizeof body, "{\"base\":%s,\"seeds\":[61]}", tiny(50, NULL, NULL));
	CHECK(post("/api/v1/sweeps", ALICE, body, &s1) == 201);
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld/cancel", (long long)s1);
	CHECK(call("POST", path, ALICE, NULL, &r) == 200);
	dtest_reply_free(&r);
	snprintf(body, sizeof body, "{\"base\":%s,\"seeds\":[62]}", tiny(50, NULL, NULL));
	CHECK(post("/api/v1/sweeps", ALICE, body, &s2) == 201);
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld/retry", (long long)s1);
	expect_refusal("POST", path, ALICE, NULL, 429, "quota_queued_cells", "user_max_queued_cells",
		       5, 5, NULL);
	snprintf(path, sizeof path, "/api/v1/sweeps/%lld", (long long)s1);
	call("GET", path, ALICE, NULL, &r);
	CHECKF(dtest_num(cJSON_GetObjectItemCaseSensitive(r.json, "counts"), "cancelled") == 1,
	       "the refused retry left the cell cancelled: %.300s", r.body);
	dtest_reply_free(&r);

	/* alice's long run ends; her queued runs then go one at a time (running cap 1) */
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/cancel", (long long)l1);
	CHECK(call("POST", path, ALICE, NULL, &r) == 200 || r.status == 202);
	dtest_reply_free(&r);
	CHECKF(wait_idle(300), "the queue did not drain");
	struct exp_row rows[64];
	int n = list_all(rows, 64), overlap = 0, alice_done = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(rows[i].owner, "alice") != 0 || rows[i].started == 0)
			continue;   /* s1's cell was cancelled before it ran */
		alice_done += rows[i].id != l1 && strcmp(rows[i].status, "succeeded") == 0;
		for (int j = 0; j < n; j++)
			if (j != i && strcmp(rows[j].owner, "alice") == 0 && rows[j].started > 0 &&
			    rows[j].started > rows[i].started && rows[j].started < rows[i].finished)
				overlap++;
	}
	CHECKF(alice_done == 7, "%d of alice's 7 queued runs succeeded", alice_done);
	CHECKF(overlap == 0, "%d of alice's runs overlapped another of hers (cap 1)", overlap);

	/* 5. events: the timer keeps the newest 20; resuming from a pruned id starts at the oldest */
	dtest_sleep_ms(2500);
	int64_t ids[64], again[64];
	int ne = sse_ids(NULL, "?after=0", 1200, ids, 64);
	int consecutive = 1;
	for (int i = 1; i < ne; i++)
		consecutive &= ids[i] == ids[i - 1] + 1;
	CHECKF(ne == 20 && ids[0] > 20 && consecutive, "after pruning: %d events from id %lld", ne,
	       ne ? (long long)ids[0] : -1LL);
	int na = sse_ids("3", "", 1200, again, 64);
	CHECKF(na == ne && na > 0 && again[0] == ids[0], "resuming after pruned id 3: %d events from "
	       "%lld (oldest kept %lld)", na, na ? (long long)again[0] : -1LL,
	       ne ? (long long)ids[0] : -1LL);
	printf("figure: events pruned to the newest 20 (ids %lld..%lld)\n", ne ? (long long)ids[0] : 0,
	       ne ? (long long)ids[ne - 1] : 0);
	CHECK(dtest_stop(&D, SIGTERM) == 0);
}

int main(void)
{
	char tokens[128], kjv[128];
	if (dtest_init(&D, "quotas") != 0)
		return 1;
	dtest_write_corpus(&D);
	/* the default corpus "kjv" of the daemon's data_dir (the test's directory) is this text */
	snprintf(kjv, sizeof kjv, "%s/kjv.txt", D.tmp);
	FILE *in = fopen(D.corpus, "rb"), *out = fopen(kjv, "wb");
	char buf[65536];
	size_t k;
	while (in && out && (k = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, k, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	snprintf(tokens, sizeof tokens, "%s/tokens", D.tmp);
	dtest_write_file(tokens, ALICE " alice user\n" BOB " bob user\n" ROOT " root admin\n");

	test_estimates();
	test_store_queries();
	test_fair_share();
	/* a fresh database for the quota daemon */
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s/db' '%s/runs'", D.tmp, D.tmp);
	CHECK(system(cmd) == 0);
	test_quotas();
	dtest_cleanup(&D, test_fail_count == 0);
	return test_finish("quotas");
}
