/*
 * test_store.c — the store as the daemon meets it, on real SQLite files in a mkdtemp directory:
 * schema creation, reopen and refusal of a newer schema; experiments (every field back, every list
 * filter, cursor pages with no gap or repeat, status times, crash recovery, the queue order and
 * thread cap, patch, delete with its metrics); metrics (bit-exact doubles, NaN as NULL, idempotent
 * re-sends, truncate, downsampling checked against a brute-force reference, spikes, names, depth
 * rows, samples); events; WAL isolation between the writer and a reader; store_tx rollback; and
 * every allocation failing in turn. Single-threaded (the reader is a second connection).
 * Raw SQL appears only to fake a database from a future build.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "store.h"
#include "../test.h"

#include <float.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "nl.h"

static char tdir[64];
static int n_dbs;

/* A fresh database path in the temp dir. */
static void new_db(char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/t%d.db", tdir, ++n_dbs);
}

static void rm_db(const char *path)
{
	char p[128];
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

static struct store *open_w(const char *path)
{
	struct store *s = NULL;
	struct store_err err = { 0 };
	int rc = store_open(&s, path, 1, &err);
	CHECKF(rc == 0 && s, "open %s: %d %s", path, rc, err.msg);
	return s;
}

static void exp_init(struct store_experiment *e, const char *name, int status)
{
	memset(e, 0, sizeof *e);
	snprintf(e->hash, sizeof e->hash, "h-%s", name);
	e->spec = "{\"seed\":1}";
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->norm_type, sizeof e->norm_type, "layernorm");
	snprintf(e->placement, sizeof e->placement, "pre");
	snprintf(e->owner, sizeof e->owner, "alice");
	e->n_layer = 4;
	e->threads = 1;
	e->steps = 100;
	e->cell = -1;
	e->status = status;
	e->loss = e->val_loss = NAN;
	e->created_at = 1000;
}

static int64_t add_exp(struct store *s, const char *name, int status)
{
	struct store_experiment e;
	struct store_err err = { 0 };
	exp_init(&e, name, status);
	int rc = store_experiment_insert(s, &e, &err);
	CHECKF(rc == 0 && e.id > 0, "insert %s: %s", name, err.msg);
	return e.id;
}

static int bits_eq(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

/* ---------- open / schema ---------- */

static int raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static int raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int v = -12345;
	if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void test_open(void)
{
	char path[128], p2[128];
	struct store *s = NULL, *r = NULL;
	struct store_err err = { 0 };
	int rc;

	new_db(path, sizeof path);
	/* A reader cannot create the database. */
	rc = store_open(&r, path, 0, &err);
	CHECK(rc < 0 && r == NULL);

	s = open_w(path);
	int64_t id = add_exp(s, "persist", STORE_QUEUED);
	store_close(s);
	CHECK(raw_int(path, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
	CHECK(raw_int(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode") == 1);

	/* Reopen: the schema is not re-created, the row is still there; a reader opens too. */
	s = open_w(path);
	rc = store_open(&r, path, 0, &err);
	CHECKF(rc == 0 && r, "reader: %s", err.msg);
	struct store_experiment e;
	CHECK(store_experiment_get(r, id, &e, NULL) == 0 && strcmp(e.name, "persist") == 0);
	store_experiment_clear(&e);
	/* Writes through a reader are refused, not attempted. */
	memset(&err, 0, sizeof err);
	CHECK(store_experiment_set_status(r, id, STORE_RUNNING, NULL, 1, &err) == STORE_EINVAL);
	CHECK(strstr(err.msg, "read-only") != NULL);
	store_close(r);
	store_close(s);
	r = s = NULL;

	/* A database from a newer build is refused by writer and reader, and left untouched. */
	CHECK(raw_exec(path, "PRAGMA user_version = 99") == SQLITE_OK);
	memset(&err, 0, sizeof err);
	rc = store_open(&s, path, 1, &err);
	CHECKF(rc == STORE_EINVAL && s == NULL && err.code == STORE_EINVAL &&
	       strstr(err.msg, "newer") && strstr(err.msg, "99"), "rc %d msg %s", rc, err.msg);
	rc = store_open(&r, path, 0, &err);
	CHECK(rc == STORE_EINVAL && r == NULL);
	CHECK(raw_int(path, "PRAGMA user_version") == 99);

	/* A reader on a file without our schema fails with a message saying so. */
	new_db(p2, sizeof p2);
	CHECK(raw_exec(p2, "CREATE TABLE other(x)") == SQLITE_OK);
	memset(&err, 0, sizeof err);
	rc = store_open(&r, p2, 0, &err);
	CHECKF(rc < 0 && strstr(err.msg, "schema"), "%s", err.msg);
	/* err may be NULL everywhere. */
	CHECK(store_open(&r, "", 1, NULL) == STORE_EINVAL);
	rm_db(path);
	rm_db(p2);
}

/* ---------- experiments ---------- */

static void test_experiment_fields(struct store *s)
{
	struct store_experiment e, g;
	struct store_sweep w = { 0 }, wg;
	struct store_err err = { 0 };
	int counts[STORE_STATUS_COUNT];

	snprintf(w.owner, sizeof w.owner, "bob");
	w.request = "{\"grid\":{}}";
	w.priority = 3;
	w.n_cells = 2;
	w.created_at = 5.5;
	CHECK(store_sweep_insert(s, &w, &err) == 0 && w.id > 0);
	CHECK(store_sweep_get(s, w.id, &wg, &err) == 0);
	CHECK(strcmp(wg.owner, "bob") == 0 && strcmp(wg.request, w.request) == 0 &&
	      wg.priority == 3 && wg.n_cells == 2 && wg.created_at == 5.5);
	store_sweep_clear(&wg);
	CHECK(wg.request == NULL);
	CHECK(store_sweep_get(s, w.id + 100, &wg, &err) == STORE_ENOTFOUND);

	exp_init(&e, "full", STORE_QUEUED);
	memset(e.hash, 'a', 64);
	e.hash[64] = '\0';
	e.spec = "{\"model\":{\"n_layer\":8}}";
	snprintf(e.norm_type, sizeof e.norm_type, "dyt");
	snprintf(e.placement, sizeof e.placement, "peri");
	e.n_layer = 8;
	e.seed = INT64_C(1) << 40;
	e.threads = 3;
	e.steps = 2000;
	snprintf(e.owner, sizeof e.owner, "bob");
	e.priority = -7;
	e.sweep_id = w.id;
	e.cell = 1;
	e.step = 10;
	e.ckpt_step = 5;
	e.loss = 2.25;
	e.val_loss = NAN;
	e.diverged_step = 0;
	e.error = "boom";
	e.tags = "[\"x\",\"y\"]";
	e.notes = "a note";
	e.created_at = 1.5;
	e.started_at = 2.5;
	e.finished_at = 0;
	CHECKF(store_experiment_insert(s, &e, &err) == 0, "%s", err.msg);
	CHECK(store_experiment_get(s, e.id, &g, &err) == 0);
	CHECK(g.id == e.id && strcmp(g.hash, e.hash) == 0 && strcmp(g.spec, e.spec) == 0);
	CHECK(strcmp(g.name, "full") == 0 && strcmp(g.norm_type, "dyt") == 0 &&
	      strcmp(g.placement, "peri") == 0 && strcmp(g.owner, "bob") == 0);
	CHECK(g.n_layer == 8 && g.seed == e.seed && g.threads == 3 && g.steps == 2000);
	CHECK(g.priority == -7 && g.sweep_id == w.id && g.cell == 1 && g.status == STORE_QUEUED);
	CHECK(g.step == 10 && g.ckpt_step == 5 && g.loss == 2.25 && isnan(g.val_loss));
	CHECK(g.diverged_step == 0 && strcmp(g.error, "boom") == 0);
	CHECK(strcmp(g.tags, "[\"x\",\"y\"]") == 0 && strcmp(g.notes, "a note") == 0);
	CHECK(g.created_at == 1.5 && g.started_at == 2.5 && g.finished_at == 0);
	store_experiment_clear(&g);
	CHECK(g.spec == NULL && g.id == 0);

	/* Optional strings absent: tags reads back as an empty array, the others as NULL. */
	int64_t bare = add_exp(s, "bare", STORE_QUEUED);
	CHECK(store_experiment_get(s, bare, &g, NULL) == 0);
	CHECK(g.error == NULL && g.notes == NULL && g.tags && strcmp(g.tags, "[]") == 0);
	CHECK(g.sweep_id == 0 && isnan(g.loss));
	store_experiment_clear(&g);

	CHECK(store_experiment_get(s, 999999, &g, &err) == STORE_ENOTFOUND && err.code == STORE_ENOTFOUND);
	CHECK(store_experiment_find_hash(s, e.hash, STORE_QUEUED) == e.id);
	CHECK(store_experiment_find_hash(s, e.hash, STORE_RUNNING) == 0);
	CHECK(store_experiment_find_hash(s, e.hash, -1) == e.id);
	CHECK(store_experiment_find_hash(s, "nope", -1) == 0);

	/* Bad input: tags that are no JSON array, an unknown sweep, a bad status, no spec. */
	exp_init(&e, "bad", STORE_QUEUED);
	e.tags = "[\"unterminated";
	CHECK(store_experiment_insert(s, &e, &err) == STORE_EINVAL);
	e.tags = "{\"a\":1}";
	CHECK(store_experiment_insert(s, &e, &err) == STORE_EINVAL);
	e.tags = NULL;
	e.sweep_id = 424242;
	CHECK(store_experiment_insert(s, &e, &err) == STORE_EINVAL);
	e.sweep_id = 0;
	e.status = 42;
	CHECK(store_experiment_insert(s, &e, &err) == STORE_EINVAL);
	e.status = STORE_QUEUED;
	e.spec = NULL;
	CHECK(store_experiment_insert(s, &e, NULL) == STORE_EINVAL);

	/* Sweep counts per status. */
	exp_init(&e, "cell0", STORE_RUNNING);
	e.sweep_id = w.id;
	CHECK(store_experiment_insert(s, &e, NULL) == 0);
	CHECK(store_sweep_counts(s, w.id, counts, &err) == 0);
	CHECK(counts[STORE_QUEUED] == 1 && counts[STORE_RUNNING] == 1 && counts[STORE_FAILED] == 0);
	CHECK(store_sweep_counts(s, w.id + 100, counts, &err) == STORE_ENOTFOUND);
	struct store_sweep w2 = { 0 };
	w2.request = "{}";
	CHECK(store_sweep_insert(s, &w2, NULL) == 0);
	CHECK(store_sweep_counts(s, w2.id, counts, &err) == 0 && counts[STORE_QUEUED] == 0);
}

struct collect {
	int64_t ids[64];
	int n;
	int stop_after;   /* 0 = never */
};

static int collect_cb(void *ctx, const struct store_experiment *e)
{
	struct collect *c = ctx;
	if (c->n < 64)
		c->ids[c->n] = e->id;
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static int list_count(struct store *s, struct store_filter f)
{
	struct collect c = { .n = 0 };
	f.limit = f.limit ? f.limit : 1000;
	int rc = store_experiment_list(s, &f, collect_cb, &c, NULL);
	return rc < 0 ? rc : c.n;
}

static struct store *g_reenter;

static int reenter_cb(void *ctx, const struct store_experiment *e)
{
	struct store_filter f = { .status = -1, .limit = 10 };
	struct collect c = { .n = 0 };
	(void)e;
	*(int *)ctx = store_experiment_list(g_reenter, &f, collect_cb, &c, NULL);
	return 1;
}

static void test_list(void)
{
	char path[128];
	struct store *s;
	static const char *const norms[] = { "layernorm", "rmsnorm", "dyt" };
	static const char *const tags[] = { "[\"a\",\"b\"]", "[\"ab\"]", "[]", "[\"a\"]",
					    "[1,\"x\\\"y\"]" };
	int exp_norm[3] = { 0 }, exp_pre = 0, exp_bob = 0, exp_run = 0, exp_sweep = 0, exp_tag_a = 0;
	int64_t all[25];
	struct store_sweep w = { 0 };

	new_db(path, sizeof path);
	s = open_w(path);
	w.request = "{}";
	CHECK(store_sweep_insert(s, &w, NULL) == 0);
	for (int i = 0; i < 25; i++) {
		struct store_experiment e;
		char name[16];
		snprintf(name, sizeof name, "e%d", i);
		exp_init(&e, name, i % 4 == 0 ? STORE_RUNNING : STORE_QUEUED);
		snprintf(e.norm_type, sizeof e.norm_type, "%s", norms[i % 3]);
		snprintf(e.placement, sizeof e.placement, "%s", i % 2 ? "post" : "pre");
		snprintf(e.owner, sizeof e.owner, "%s", i % 5 == 0 ? "bob" : "alice");
		e.sweep_id = i % 7 == 0 ? w.id : 0;
		e.tags = (char *)tags[i % 5];
		CHECK(store_experiment_insert(s, &e, NULL) == 0);
		all[i] = e.id;
		exp_norm[i % 3]++;
		exp_pre += i % 2 == 0;
		exp_bob += i % 5 == 0;
		exp_run += i % 4 == 0;
		exp_sweep += i % 7 == 0;
		exp_tag_a += i % 5 == 0 || i % 5 == 3;
	}

	/* Cursor pages: 10, 10, 5, then nothing; ids ascending, every row exactly once. */
	int64_t cursor = 0;
	int seen = 0, pages = 0, order_ok = 1, sizes[4] = { 0 };
	for (;;) {
		struct collect c = { .n = 0 };
		struct store_filter f = { .status = -1, .after_id = cursor, .limit = 10 };
		int rc = store_experiment_list(s, &f, collect_cb, &c, NULL);
		CHECK(rc == c.n);
		if (rc <= 0)
			break;
		sizes[pages < 4 ? pages : 3] = rc;
		for (int i = 0; i < c.n; i++) {
			order_ok &= seen < 25 && c.ids[i] == all[seen];
			seen++;
		}
		cursor = c.ids[c.n - 1];
		pages++;
	}
	CHECK(pages == 3 && sizes[0] == 10 && sizes[1] == 10 && sizes[2] == 5);
	CHECK(seen == 25 && order_ok);

	/* Each filter, alone and combined. */
	for (int k = 0; k < 3; k++)
		CHECK(list_count(s, (struct store_filter){ .status = -1, .norm_type = norms[k] }) ==
		      exp_norm[k]);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .placement = "pre" }) == exp_pre);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .owner = "bob" }) == exp_bob);
	CHECK(list_count(s, (struct store_filter){ .status = STORE_RUNNING }) == exp_run);
	CHECK(list_count(s, (struct store_filter){ .status = STORE_QUEUED }) == 25 - exp_run);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .sweep_id = w.id }) == exp_sweep);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "a" }) == exp_tag_a);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "ab" }) == 5);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "x\"y" }) == 5);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "1" }) == 0);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "A" }) == 0);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "a%" }) == 0);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .tag = "\"a\"" }) == 0);
	CHECK(list_count(s, (struct store_filter){ .status = -1, .owner = "nobody" }) == 0);
	{
		int want = 0;
		for (int i = 0; i < 25; i++)
			want += i % 3 == 2 && i % 2 == 0 && (i % 5 == 0 || i % 5 == 3) && i % 4 == 0;
		CHECK(list_count(s, (struct store_filter){ .status = STORE_RUNNING, .norm_type = "dyt",
							   .placement = "pre", .tag = "a" }) == want);
	}
	/* Filter plus cursor: the cursor applies to the filtered sequence. */
	CHECK(list_count(s, (struct store_filter){ .status = -1, .owner = "bob",
						   .after_id = all[10] }) == 2);
	/* A callback that stops early. */
	{
		struct collect c = { .stop_after = 4 };
		struct store_filter f = { .status = -1, .limit = 20 };
		CHECK(store_experiment_list(s, &f, collect_cb, &c, NULL) == 4 && c.n == 4);
	}
	/* Bad limits and statuses are refused. */
	struct store_err err = { 0 };
	struct collect c = { .n = 0 };
	CHECK(store_experiment_list(s, &(struct store_filter){ .status = -1, .limit = 0 }, collect_cb,
				    &c, &err) == STORE_EINVAL);
	CHECK(store_experiment_list(s, &(struct store_filter){ .status = -1, .limit = 1001 },
				    collect_cb, &c, &err) == STORE_EINVAL);
	CHECK(store_experiment_list(s, &(struct store_filter){ .status = 9, .limit = 1 }, collect_cb,
				    &c, &err) == STORE_EINVAL);
	/* Re-entering the same listing from its own callback is an error, not corruption. */
	{
		int inner = 0;
		struct store_filter f = { .status = -1, .limit = 5 };
		g_reenter = s;
		CHECK(store_experiment_list(s, &f, reenter_cb, &inner, NULL) == 1);
		CHECK(inner == STORE_EINVAL);
		CHECK(list_count(s, (struct store_filter){ .status = -1 }) == 25);
	}
	store_close(s);
	rm_db(path);
}

static void test_status_queue(struct store *s)
{
	struct store_experiment g;
	struct store_err err = { 0 };
	int64_t a = add_exp(s, "a", STORE_QUEUED);

	CHECK(store_experiment_set_status(s, a, STORE_RUNNING, NULL, 100, &err) == 0);
	CHECK(store_experiment_get(s, a, &g, NULL) == 0);
	CHECK(g.status == STORE_RUNNING && g.started_at == 100 && g.finished_at == 0);
	store_experiment_clear(&g);
	CHECK(store_experiment_progress(s, a, 50, 3.5, NAN, 0, &err) == 0);
	CHECK(store_experiment_progress(s, a, 60, NAN, 4.5, 0, &err) == 0);
	CHECK(store_experiment_set_ckpt(s, a, 40, &err) == 0);
	CHECK(store_experiment_get(s, a, &g, NULL) == 0);
	CHECK(g.step == 60 && g.loss == 3.5 && g.val_loss == 4.5 && g.ckpt_step == 40 &&
	      g.diverged_step == 0);
	store_experiment_clear(&g);

	/* Crash: running → interrupted; the daemon re-queues, it runs again keeping started_at. */
	int64_t b = add_exp(s, "b", STORE_RUNNING);
	int64_t c = add_exp(s, "c", STORE_SUCCEEDED);
	int running = list_count(s, (struct store_filter){ .status = STORE_RUNNING });
	CHECK(running >= 2);
	CHECK(store_recover_running(s, 200, &err) == running);
	CHECK(list_count(s, (struct store_filter){ .status = STORE_RUNNING }) == 0);
	CHECK(list_count(s, (struct store_filter){ .status = STORE_INTERRUPTED }) == running);
	CHECK(store_experiment_get(s, a, &g, NULL) == 0 && g.status == STORE_INTERRUPTED);
	store_experiment_clear(&g);
	CHECK(store_experiment_get(s, b, &g, NULL) == 0 && g.status == STORE_INTERRUPTED);
	store_experiment_clear(&g);
	CHECK(store_experiment_get(s, c, &g, NULL) == 0 && g.status == STORE_SUCCEEDED);
	store_experiment_clear(&g);
	CHECK(store_recover_running(s, 201, &err) == 0);
	CHECK(store_experiment_set_status(s, a, STORE_QUEUED, NULL, 300, &err) == 0);
	CHECK(store_experiment_set_status(s, a, STORE_RUNNING, NULL, 310, &err) == 0);
	CHECK(store_experiment_progress(s, a, 70, NAN, NAN, 65, &err) == 0);
	CHECK(store_experiment_set_status(s, a, STORE_DIVERGED, "loss is nan", 400, &err) == 0);
	CHECK(store_experiment_get(s, a, &g, NULL) == 0);
	CHECK(g.status == STORE_DIVERGED && g.started_at == 100 && g.finished_at == 400 &&
	      g.diverged_step == 65 && g.loss == 3.5 && g.error && strcmp(g.error, "loss is nan") == 0);
	store_experiment_clear(&g);

	CHECK(store_experiment_set_status(s, 98765, STORE_RUNNING, NULL, 1, &err) == STORE_ENOTFOUND);
	CHECK(store_experiment_progress(s, 98765, 1, 1, 1, 0, &err) == STORE_ENOTFOUND);
	CHECK(store_experiment_set_status(s, a, 17, NULL, 1, &err) == STORE_EINVAL);
	CHECK(strcmp(store_status_name(STORE_INTERRUPTED), "interrupted") == 0);
	CHECK(store_status_parse("diverged") == STORE_DIVERGED && store_status_parse("x") == -1);
	for (int i = 0; i < 7; i++)
		CHECK(store_status_parse(store_status_name(i)) == i);

	/* Patch: each field alone; INT32_MIN keeps the priority; bad tags are refused. */
	CHECK(store_experiment_patch(s, b, "[\"keep\"]", NULL, INT32_MIN, &err) == 0);
	CHECK(store_experiment_patch(s, b, NULL, "n1", INT32_MIN, &err) == 0);
	CHECK(store_experiment_patch(s, b, NULL, NULL, 9, &err) == 0);
	CHECK(store_experiment_patch(s, b, "not json", NULL, INT32_MIN, &err) == STORE_EINVAL);
	CHECK(store_experiment_patch(s, 98765, NULL, "x", 1, &err) == STORE_ENOTFOUND);
	CHECK(store_experiment_get(s, b, &g, NULL) == 0);
	CHECK(strcmp(g.tags, "[\"keep\"]") == 0 && strcmp(g.notes, "n1") == 0 && g.priority == 9);
	store_experiment_clear(&g);
}

static void test_next_queued(void)
{
	char path[128];
	struct store *s;
	struct store_experiment e;
	int64_t id[6];
	static const int prio[6] = { 0, 5, 0, 5, 9, 1 };
	static const int thr[6] = { 1, 2, 1, 1, 8, 1 };

	new_db(path, sizeof path);
	s = open_w(path);
	CHECK(store_next_queued(s, 16) == 0);
	for (int i = 0; i < 6; i++) {
		exp_init(&e, "q", STORE_QUEUED);
		e.priority = prio[i];
		e.threads = thr[i];
		CHECK(store_experiment_insert(s, &e, NULL) == 0);
		id[i] = e.id;
	}
	/* Not queued: never picked, whatever its priority. */
	exp_init(&e, "r", STORE_RUNNING);
	e.priority = 100;
	CHECK(store_experiment_insert(s, &e, NULL) == 0);
	exp_init(&e, "i", STORE_INTERRUPTED);
	e.priority = 100;
	CHECK(store_experiment_insert(s, &e, NULL) == 0);

	/* Draining with 16 threads free: priority first, FIFO (id) within a priority. */
	static const int want[6] = { 4, 1, 3, 5, 0, 2 };
	for (int k = 0; k < 6; k++) {
		int64_t n = store_next_queued(s, 16);
		CHECKF(n == id[want[k]], "pick %d: got %" PRId64 " want %" PRId64, k, n, id[want[k]]);
		CHECK(store_experiment_set_status(s, n, STORE_RUNNING, NULL, 1, NULL) == 0);
	}
	CHECK(store_next_queued(s, 16) == 0);
	/* Thread cap: with 1 thread free the 8- and 2-thread runs are passed over. */
	for (int i = 0; i < 6; i++)
		CHECK(store_experiment_set_status(s, id[i], STORE_QUEUED, NULL, 1, NULL) == 0);
	CHECK(store_next_queued(s, 1) == id[3]);
	CHECK(store_next_queued(s, 2) == id[1]);
	CHECK(store_next_queued(s, 8) == id[4]);
	CHECK(store_next_queued(s, 0) == 0);
	/* the queue length /metrics and /health report: 6 queued, 1 running, 1 interrupted */
	CHECK(store_experiment_count(s, STORE_QUEUED) == 6);
	CHECK(store_experiment_count(s, STORE_RUNNING) == 1);
	CHECK(store_experiment_count(s, STORE_INTERRUPTED) == 1);
	CHECK(store_experiment_count(s, STORE_SUCCEEDED) == 0);
	CHECK(store_experiment_set_status(s, id[0], STORE_SUCCEEDED, NULL, 1, NULL) == 0);
	CHECK(store_experiment_count(s, STORE_QUEUED) == 5);
	CHECK(store_experiment_count(s, 99) == STORE_EINVAL);
	store_close(s);
	rm_db(path);
}

/* ---------- metrics ---------- */

struct scan {
	int64_t steps[256];
	double vals[256];
	int n;
};

static int scan_cb(void *ctx, int64_t step, double v)
{
	struct scan *c = ctx;
	if (c->n < 256) {
		c->steps[c->n] = step;
		c->vals[c->n] = v;
	}
	c->n++;
	return 0;
}

static int count_cb(void *ctx, int64_t step, double v)
{
	(void)step;
	(void)v;
	++*(int *)ctx;
	return 0;
}

static int scan_count(struct store *s, int64_t exp, const char *name)
{
	int n = 0;
	int rc = store_metric_scan(s, exp, name, count_cb, &n, NULL);
	return rc < 0 ? rc : n;
}

struct names {
	char buf[512];
};

static int names_cb(void *ctx, const char *name, const char *kind)
{
	struct names *c = ctx;
	size_t l = strlen(c->buf);
	snprintf(c->buf + l, sizeof c->buf - l, "%s:%s ", kind, name);
	return 0;
}

struct depth_rows {
	int64_t steps[16];
	double v[16][8];
	int n[16];
	int rows;
};

static int depth_cb(void *ctx, int64_t step, const double *v, int n)
{
	struct depth_rows *d = ctx;
	if (d->rows < 16) {
		d->steps[d->rows] = step;
		d->n[d->rows] = n;
		memcpy(d->v[d->rows], v, (size_t)(n < 8 ? n : 8) * sizeof *v);
	}
	d->rows++;
	return 0;
}

static int depth_stop_cb(void *ctx, int64_t step, const double *v, int n)
{
	(void)step;
	(void)v;
	(void)n;
	++*(int *)ctx;
	return 1;
}

static int scan_stop_cb(void *ctx, int64_t step, double v)
{
	(void)step;
	(void)v;
	++*(int *)ctx;
	return 1;
}

struct sample_copy {
	int64_t step;
	int n, calls;
	float x[8], y[8];
	int32_t tok[8], ch[8];
	int has_tok, has_ch;
};

static int sample_cb(void *ctx, const struct store_samples *sm)
{
	struct sample_copy *c = ctx;
	c->calls++;
	c->step = sm->step;
	c->n = sm->n;
	memcpy(c->x, sm->x, sizeof(float) * (size_t)(sm->n < 8 ? sm->n : 8));
	memcpy(c->y, sm->y, sizeof(float) * (size_t)(sm->n < 8 ? sm->n : 8));
	c->has_tok = sm->token != NULL;
	c->has_ch = sm->channel != NULL;
	if (sm->token)
		memcpy(c->tok, sm->token, sizeof(int32_t) * (size_t)(sm->n < 8 ? sm->n : 8));
	if (sm->channel)
		memcpy(c->ch, sm->channel, sizeof(int32_t) * (size_t)(sm->n < 8 ? sm->n : 8));
	return 0;
}

struct sites {
	char buf[256];
	int n;
};

static int sites_cb(void *ctx, const char *site, int64_t step)
{
	struct sites *c = ctx;
	size_t l = strlen(c->buf);
	snprintf(c->buf + l, sizeof c->buf - l, "%s@%" PRId64 " ", site, step);
	c->n++;
	return 0;
}

static void test_metrics(struct store *s)
{
	struct store_err err = { 0 };
	int64_t a = add_exp(s, "m-a", STORE_RUNNING), b = add_exp(s, "m-b", STORE_RUNNING);
	static const double vals[] = { 0.1, 1.0 / 3.0, DBL_MIN, 5e-324, DBL_MAX, -1e-300,
				       3.0, 9007199254740993.0, NAN, INFINITY, -INFINITY, 2.5 };
	enum { NV = sizeof vals / sizeof vals[0] };
	struct store_point p[NV + 2];

	for (int i = 0; i < NV; i++)
		p[i] = (struct store_point){ .step = i, .name = "loss", .value = vals[i] };
	p[NV] = (struct store_point){ .step = 0, .name = "lr", .value = 1e-3 };
	p[NV + 1] = (struct store_point){ .step = 1, .name = "lr", .value = 2e-3 };

	double dv[3][8];
	for (int r = 0; r < 3; r++)
		for (int l = 0; l < 8; l++)
			dv[r][l] = (r + 1) * 0.1 + l / 7.0;
	dv[1][3] = NAN;
	struct store_depth d[3] = {
		{ .step = 0, .name = "resid.var", .values = dv[0], .n = 8 },
		{ .step = 50, .name = "resid.var", .values = dv[1], .n = 8 },
		{ .step = 50, .name = "rms", .values = dv[2], .n = 5 },
	};
	float x[5] = { -3.5f, -0.25f, 0.0f, 1e-20f, 7.75f }, y[5] = { -1, -0.2f, 0, 1e-20f, 0.999f };
	int32_t tok[5] = { 0, 1, 50256, -1, 7 }, ch[5] = { 0, 127, 3, 4, 5 };
	struct store_samples sm[3] = {
		{ .step = 100, .site = "block0.attn", .x = x, .y = y, .token = tok, .channel = ch, .n = 5 },
		{ .step = 200, .site = "block0.attn", .x = y, .y = x, .token = ch, .channel = tok, .n = 5 },
		{ .step = 100, .site = "final", .x = x, .y = y, .n = 3 },
	};

	CHECKF(store_metrics_append(s, a, p, NV + 2, d, 3, sm, 3, &err) == 0, "%s", err.msg);
	CHECK(store_metrics_append(s, b, p, 2, NULL, 0, NULL, 0, &err) == 0);

	/* Scalars come back bit-exact in step order; non-finite values come back as NaN. */
	struct scan c = { .n = 0 };
	CHECK(store_metric_scan(s, a, "loss", scan_cb, &c, &err) == NV && c.n == NV);
	int exact = 1;
	for (int i = 0; i < NV; i++) {
		exact &= c.steps[i] == i;
		if (isfinite(vals[i]))
			exact &= bits_eq(c.vals[i], vals[i]);
		else
			exact &= isnan(c.vals[i]);
	}
	CHECK(exact);
	CHECK(scan_count(s, a, "lr") == 2 && scan_count(s, b, "loss") == 2);
	CHECK(scan_count(s, a, "nope") == 0);

	/* Re-sending a batch (resume) neither duplicates nor fails; a re-sent point replaces. */
	CHECK(store_metrics_append(s, a, p, NV + 2, d, 3, sm, 3, &err) == 0);
	CHECK(scan_count(s, a, "loss") == NV);
	struct store_point fix = { .step = 2, .name = "loss", .value = 42.0 };
	CHECK(store_metrics_append(s, a, &fix, 1, NULL, 0, NULL, 0, &err) == 0);
	c.n = 0;
	CHECK(store_metric_scan(s, a, "loss", scan_cb, &c, NULL) == NV && c.vals[2] == 42.0);

	/* Names, per kind, per experiment. */
	struct names nm = { "" };
	CHECK(store_metric_names(s, a, names_cb, &nm, &err) == 4);
	CHECKF(strcmp(nm.buf, "scalar:loss scalar:lr depth:resid.var depth:rms ") == 0, "%s", nm.buf);
	memset(&nm, 0, sizeof nm);
	CHECK(store_metric_names(s, b, names_cb, &nm, &err) == 1 && strcmp(nm.buf, "scalar:loss ") == 0);

	/* Depth rows: all, one step, latest; values bit-exact (NaN included, stored in the blob). */
	struct depth_rows dr = { .rows = 0 };
	CHECK(store_depth_get(s, a, "resid.var", -1, 1, depth_cb, &dr, &err) == 2 && dr.rows == 2);
	CHECK(dr.steps[0] == 0 && dr.steps[1] == 50 && dr.n[0] == 8 && dr.n[1] == 8);
	CHECK(memcmp(dr.v[0], dv[0], sizeof dv[0]) == 0 && memcmp(dr.v[1], dv[1], sizeof dv[1]) == 0);
	memset(&dr, 0, sizeof dr);
	CHECK(store_depth_get(s, a, "resid.var", 0, 0, depth_cb, &dr, &err) == 1 && dr.steps[0] == 0);
	memset(&dr, 0, sizeof dr);
	CHECK(store_depth_get(s, a, "resid.var", -1, 0, depth_cb, &dr, &err) == 1 && dr.steps[0] == 50);
	memset(&dr, 0, sizeof dr);
	CHECK(store_depth_get(s, a, "rms", -1, 0, depth_cb, &dr, &err) == 1 && dr.n[0] == 5 &&
	      memcmp(dr.v[0], dv[2], 5 * sizeof(double)) == 0);
	memset(&dr, 0, sizeof dr);
	CHECK(store_depth_get(s, a, "resid.var", 25, 0, depth_cb, &dr, &err) == 0 && dr.rows == 0);
	int stops = 0;
	CHECK(store_depth_get(s, a, "resid.var", -1, 1, depth_stop_cb, &stops, &err) == 1 && stops == 1);
	stops = 0;
	CHECK(store_metric_scan(s, a, "loss", scan_stop_cb, &stops, &err) == 1 && stops == 1);

	/* Samples: sites with their latest step; latest and explicit steps; absent token/channel. */
	struct sites st = { "", 0 };
	CHECK(store_sample_sites(s, a, sites_cb, &st, &err) == 2);
	CHECKF(strcmp(st.buf, "block0.attn@200 final@100 ") == 0, "%s", st.buf);
	struct sample_copy sc = { 0 };
	CHECK(store_samples_get(s, a, "block0.attn", -1, sample_cb, &sc, &err) == 1);
	CHECK(sc.calls == 1 && sc.step == 200 && sc.n == 5 && sc.has_tok && sc.has_ch);
	CHECK(memcmp(sc.x, y, sizeof y) == 0 && memcmp(sc.y, x, sizeof x) == 0 &&
	      memcmp(sc.tok, ch, sizeof ch) == 0 && memcmp(sc.ch, tok, sizeof tok) == 0);
	memset(&sc, 0, sizeof sc);
	CHECK(store_samples_get(s, a, "block0.attn", 100, sample_cb, &sc, &err) == 1);
	CHECK(sc.step == 100 && memcmp(sc.x, x, sizeof x) == 0 && memcmp(sc.tok, tok, sizeof tok) == 0);
	memset(&sc, 0, sizeof sc);
	CHECK(store_samples_get(s, a, "final", -1, sample_cb, &sc, &err) == 1);
	CHECK(sc.n == 3 && !sc.has_tok && !sc.has_ch && memcmp(sc.x, x, 3 * sizeof(float)) == 0);
	memset(&sc, 0, sizeof sc);
	CHECK(store_samples_get(s, a, "final", 150, sample_cb, &sc, &err) == 0 && sc.calls == 0);
	CHECK(store_samples_get(s, a, "nosite", -1, sample_cb, &sc, &err) == 0 && sc.calls == 0);

	/* Truncate after step 5: later scalars, depth rows and samples go, this run's only. */
	CHECK(store_metrics_truncate(s, a, 5, &err) == 0);
	c.n = 0;
	CHECK(store_metric_scan(s, a, "loss", scan_cb, &c, NULL) == 6 && c.steps[5] == 5);
	memset(&dr, 0, sizeof dr);
	CHECK(store_depth_get(s, a, "resid.var", -1, 1, depth_cb, &dr, NULL) == 1 && dr.steps[0] == 0);
	memset(&st, 0, sizeof st);
	CHECK(store_sample_sites(s, a, sites_cb, &st, NULL) == 0);
	CHECK(scan_count(s, b, "loss") == 2);

	/* Bad batches: the whole batch fails and nothing of it is kept. */
	struct store_point bad[2] = { { .step = 1000, .name = "loss", .value = 1 },
				      { .step = 1001, .name = "", .value = 1 } };
	CHECK(store_metrics_append(s, a, bad, 2, NULL, 0, NULL, 0, &err) == STORE_EINVAL);
	CHECK(scan_count(s, a, "loss") == 6);
	struct store_depth dbad = { .step = 9, .name = "resid.var", .values = dv[0], .n = 0 };
	CHECK(store_metrics_append(s, a, bad, 1, &dbad, 1, NULL, 0, &err) == STORE_EINVAL);
	CHECK(scan_count(s, a, "loss") == 6);
	/* A run that does not exist gets no metrics (foreign key). */
	CHECK(store_metrics_append(s, 777777, p, 1, NULL, 0, NULL, 0, &err) == STORE_EINVAL);
	CHECK(scan_count(s, 777777, "loss") == 0);
	CHECK(store_metrics_append(s, a, NULL, 1, NULL, 0, NULL, 0, &err) == STORE_EINVAL);

	/* Delete takes every metric of the run with it, and nothing of another run. */
	CHECK(store_metrics_append(s, a, p, NV, d, 3, sm, 3, &err) == 0);
	CHECK(store_experiment_delete(s, a, &err) == 0);
	CHECK(scan_count(s, a, "loss") == 0 && scan_count(s, a, "lr") == 0);
	memset(&nm, 0, sizeof nm);
	CHECK(store_metric_names(s, a, names_cb, &nm, NULL) == 0);
	memset(&dr, 0, sizeof dr);
	CHECK(store_depth_get(s, a, "resid.var", -1, 1, depth_cb, &dr, NULL) == 0);
	memset(&st, 0, sizeof st);
	CHECK(store_sample_sites(s, a, sites_cb, &st, NULL) == 0);
	CHECK(scan_count(s, b, "loss") == 2);
	CHECK(store_experiment_delete(s, a, &err) == STORE_ENOTFOUND);
	/* Ids are not reused after a delete. */
	CHECK(add_exp(s, "after-delete", STORE_QUEUED) > b);
}

/* ---------- buckets ---------- */

#define MAXB 64

struct bucket_list {
	struct store_bucket b[MAXB];
	int n;
};

static int bucket_cb(void *ctx, const struct store_bucket *b)
{
	struct bucket_list *l = ctx;
	if (l->n < MAXB)
		l->b[l->n] = *b;
	l->n++;
	return 0;
}

static int same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* Brute-force reference: bucket of each step by its definition, then the statistics. */
static int reference_buckets(const int64_t *steps, const double *v, int n, int64_t from, int64_t to,
			     int nb, struct store_bucket *out)
{
	int count = 0, cur = -1;
	int64_t span = to - from + 1;
	for (int i = 0; i < n; i++) {
		if (steps[i] < from || steps[i] > to)
			continue;
		int bk = 0;
		while (bk + 1 < nb && from + (bk + 1) * span / nb <= steps[i])
			bk++;
		if (bk != cur) {
			struct store_bucket *o = &out[count++];
			memset(o, 0, sizeof *o);
			o->step_first = steps[i];
			o->min = o->max = o->mean = o->last = NAN;
			cur = bk;
		}
		struct store_bucket *o = &out[count - 1];
		o->n++;
		o->step_last = steps[i];
		if (isfinite(v[i])) {
			int64_t k = 0;
			double sum = 0;
			for (int j = 0; j <= i; j++)
				if (steps[j] >= o->step_first && isfinite(v[j])) {
					sum += v[j];
					k++;
				}
			o->mean = sum / (double)k;
			o->min = isnan(o->min) || v[i] < o->min ? v[i] : o->min;
			o->max = isnan(o->max) || v[i] > o->max ? v[i] : o->max;
			o->last = v[i];
		}
	}
	return count;
}

static void test_buckets(struct store *s)
{
	struct store_err err = { 0 };
	struct bucket_list l;
	struct store_point p[200];
	int64_t a = add_exp(s, "bk", STORE_RUNNING);

	/* loss = step for steps 0..99, then a spike. */
	for (int i = 0; i < 100; i++)
		p[i] = (struct store_point){ .step = i, .name = "loss", .value = i };
	p[57].value = 1e30;
	CHECK(store_metrics_append(s, a, p, 100, NULL, 0, NULL, 0, &err) == 0);

	memset(&l, 0, sizeof l);
	CHECK(store_metric_buckets(s, a, "loss", 0, -1, 10, bucket_cb, &l, &err) == 10 && l.n == 10);
	int ok = 1;
	for (int b = 0; b < 10; b++) {
		const struct store_bucket *k = &l.b[b];
		double sum = 0;
		for (int i = 10 * b; i < 10 * b + 10; i++)
			sum += i == 57 ? 1e30 : i;
		ok &= k->step_first == 10 * b && k->step_last == 10 * b + 9 && k->n == 10;
		ok &= k->min == 10 * b && k->last == 10 * b + 9 && k->mean == sum / 10;
		ok &= k->max == (b == 5 ? 1e30 : 10 * b + 9);
	}
	CHECK(ok);
	/* One bucket for everything: the spike is still the max. */
	memset(&l, 0, sizeof l);
	CHECK(store_metric_buckets(s, a, "loss", 0, -1, 1, bucket_cb, &l, &err) == 1);
	CHECK(l.b[0].max == 1e30 && l.b[0].min == 0 && l.b[0].n == 100 && l.b[0].last == 99);
	/* Bounds: from..to inclusive; uneven span 20..39 in 3 buckets = [20,26) [26,33) [33,40). */
	memset(&l, 0, sizeof l);
	CHECK(store_metric_buckets(s, a, "loss", 20, 39, 3, bucket_cb, &l, &err) == 3);
	CHECK(l.b[0].step_first == 20 && l.b[0].step_last == 25 && l.b[1].step_first == 26 &&
	      l.b[1].step_last == 32 && l.b[2].step_first == 33 && l.b[2].step_last == 39);
	CHECK(l.b[0].n + l.b[1].n + l.b[2].n == 20);
	/* More buckets than points: one bucket per point. */
	memset(&l, 0, sizeof l);
	CHECK(store_metric_buckets(s, a, "loss", 90, -1, 1000, bucket_cb, &l, &err) == 10);
	CHECK(l.b[0].step_first == 90 && l.b[0].n == 1 && l.b[9].last == 99);
	/* A range past the data, an empty range, an unknown series: no buckets, no error. */
	CHECK(store_metric_buckets(s, a, "loss", 500, 600, 10, bucket_cb, &l, &err) == 0);
	CHECK(store_metric_buckets(s, a, "loss", 50, 40, 10, bucket_cb, &l, &err) == 0);
	CHECK(store_metric_buckets(s, a, "nope", 0, -1, 10, bucket_cb, &l, &err) == 0);
	CHECK(store_metric_buckets(s, a, "loss", 0, -1, 0, bucket_cb, &l, &err) == STORE_EINVAL);
	CHECK(store_metric_buckets(s, a, "loss", 0, -1, STORE_BUCKETS_MAX + 1, bucket_cb, &l, NULL) ==
	      STORE_EINVAL);
	/* Huge spans do not overflow: steps 0 and 4e18 over 0..INT64_MAX. */
	int64_t b2 = add_exp(s, "bk2", STORE_RUNNING);
	struct store_point far[2] = { { .step = 0, .name = "x", .value = 1 },
				      { .step = INT64_C(4000000000000000000), .name = "x", .value = 2 } };
	CHECK(store_metrics_append(s, b2, far, 2, NULL, 0, NULL, 0, &err) == 0);
	memset(&l, 0, sizeof l);
	CHECK(store_metric_buckets(s, b2, "x", 0, INT64_MAX, STORE_BUCKETS_MAX, bucket_cb, &l, &err) == 2);
	CHECK(l.b[0].last == 1 && l.b[1].last == 2);

	/* Gappy series with NaN runs against the brute-force reference, many (from, to, B). */
	int64_t c = add_exp(s, "bk3", STORE_RUNNING);
	int64_t steps[200];
	double v[200];
	uint32_t rng = 12345;
	int64_t stp = 3;
	for (int i = 0; i < 200; i++) {
		rng = rng * 1664525u + 1013904223u;
		stp += 1 + (rng >> 28);   /* gaps of 1..16 */
		steps[i] = stp;
		v[i] = (rng >> 20) % 7 == 0 ? NAN : (double)(rng >> 8) / 65536.0 - 64.0;
		if (i >= 100 && i < 106)
			v[i] = NAN;   /* a stretch with no finite value */
		p[i] = (struct store_point){ .step = steps[i], .name = "g", .value = v[i] };
	}
	CHECK(store_metrics_append(s, c, p, 200, NULL, 0, NULL, 0, &err) == 0);
	int mism = 0, cases = 0, nan_bucket = 0;
	for (int nb = 1; nb <= 40; nb += 3) {
		for (int64_t from = 0; from < steps[199]; from += 97) {
			int64_t tos[3] = { from + 50, steps[199], steps[199] + 333 };
			for (int t = 0; t < 3; t++) {
				struct store_bucket ref[200];
				int nref = reference_buckets(steps, v, 200, from, tos[t], nb, ref);
				memset(&l, 0, sizeof l);
				int got = store_metric_buckets(s, c, "g", from, t == 1 ? -1 : tos[t], nb,
							       bucket_cb, &l, NULL);
				cases++;
				if (got != nref || l.n != nref) {
					mism++;
					continue;
				}
				for (int k = 0; k < nref && k < MAXB; k++) {
					const struct store_bucket *x = &l.b[k], *y = &ref[k];
					nan_bucket += isnan(x->mean);
					if (x->step_first != y->step_first || x->step_last != y->step_last ||
					    x->n != y->n || !same(x->min, y->min) || !same(x->max, y->max) ||
					    !same(x->last, y->last) ||
					    !(same(x->mean, y->mean) || fabs(x->mean - y->mean) < 1e-9))
						mism++;
				}
			}
		}
	}
	CHECKF(mism == 0, "%d mismatches in %d cases", mism, cases);
	CHECK(nan_bucket > 0);   /* the all-NaN stretch did land alone in some bucket */
}

static int stop_first(void *ctx, const struct store_bucket *b)
{
	(void)b;
	++*(int *)ctx;
	return 1;
}

static void test_bucket_stop(struct store *s)
{
	int calls = 0;
	int64_t a = add_exp(s, "stop", STORE_RUNNING);
	struct store_point p[4] = { { 0, "v", 1 }, { 1, "v", 2 }, { 2, "v", 3 }, { 3, "v", 4 } };
	CHECK(store_metrics_append(s, a, p, 4, NULL, 0, NULL, 0, NULL) == 0);
	CHECK(store_metric_buckets(s, a, "v", 0, -1, 4, stop_first, &calls, NULL) == 1 && calls == 1);
}

/* ---------- export pages ---------- */

struct page {
	int64_t last;           /* step of the previous point, over all pages */
	int64_t got;            /* points seen */
	int bad_order, bad_value;
	int64_t stop_after;     /* > 0: the callback stops at this many points of the page */
	int in_page;
};

static int page_cb(void *ctx, int64_t step, double v)
{
	struct page *p = ctx;
	if (p->got && step <= p->last)
		p->bad_order++;
	/* points were written as value = step / 4, except step 3 * 1000 which is NaN */
	if (step == 3000 ? !isnan(v) : !bits_eq(v, (double)step / 4))
		p->bad_value++;
	p->last = step;
	p->got++;
	return p->stop_after > 0 && ++p->in_page >= p->stop_after;
}

/* Paging a 2,500-point series 1000 at a time gives every point once, in step order. */
static void test_metric_page(struct store *s)
{
	enum { NP = 2500 };
	struct store_point *pts = calloc(NP, sizeof *pts);
	struct store_err err = { 0 };
	int64_t a = add_exp(s, "page", STORE_RUNNING), b = add_exp(s, "page-other", STORE_RUNNING);
	CHECK(pts != NULL);
	if (!pts)
		return;
	/* steps 0, 3, 6, ... with the other series and experiment interleaved in the same table */
	for (int i = 0; i < NP; i++)
		pts[i] = (struct store_point){ 3 * (int64_t)i, "pg",
					       i == 1000 ? NAN : (double)(3 * (int64_t)i) / 4 };
	CHECK(store_metrics_append(s, a, pts, NP, NULL, 0, NULL, 0, &err) == 0);
	for (int i = 0; i < 10; i++)
		pts[i] = (struct store_point){ 3 * (int64_t)i + 1, "pg", -1 };
	CHECK(store_metrics_append(s, b, pts, 10, NULL, 0, NULL, 0, &err) == 0);
	for (int i = 0; i < 10; i++)
		pts[i] = (struct store_point){ 3 * (int64_t)i + 2, "ph", -2 };
	CHECK(store_metrics_append(s, a, pts, 10, NULL, 0, NULL, 0, &err) == 0);

	struct page p = { 0 };
	int64_t after = INT64_MIN;
	int sizes[8] = { 0 }, pages = 0, rc;
	while ((rc = store_metric_page(s, a, "pg", after, 1000, page_cb, &p, &err)) > 0 && pages < 8) {
		sizes[pages++] = rc;
		after = p.last;
	}
	CHECKF(rc == 0, "page rc %d: %s", rc, err.msg);
	CHECKF(pages == 3 && sizes[0] == 1000 && sizes[1] == 1000 && sizes[2] == 500,
	       "pages %d: %d %d %d", pages, sizes[0], sizes[1], sizes[2]);
	CHECKF(p.got == NP && p.bad_order == 0 && p.bad_value == 0, "got %" PRId64 ", %d out of order, "
	       "%d wrong values", p.got, p.bad_order, p.bad_value);
	CHECK(p.last == 3 * (int64_t)(NP - 1));

	/* resuming mid-series: after step 3 starts at step 6 */
	memset(&p, 0, sizeof p);
	CHECK(store_metric_page(s, a, "pg", 3, 2, page_cb, &p, &err) == 2 && p.last == 9);
	/* a callback that stops ends the page early, and the next page starts after it */
	memset(&p, 0, sizeof p);
	p.stop_after = 7;
	CHECK(store_metric_page(s, a, "pg", INT64_MIN, 1000, page_cb, &p, &err) == 7 && p.last == 18);
	p.in_page = 0;
	CHECK(store_metric_page(s, a, "pg", p.last, 1000, page_cb, &p, &err) == 7 && p.last == 39);
	CHECK(p.bad_order == 0 && p.bad_value == 0);
	/* past the end, unknown series, other experiment's series, bad limits */
	memset(&p, 0, sizeof p);
	CHECK(store_metric_page(s, a, "pg", 3 * (int64_t)(NP - 1), 1000, page_cb, &p, &err) == 0);
	CHECK(store_metric_page(s, a, "pg", INT64_MAX, 1000, page_cb, &p, &err) == 0);
	CHECK(store_metric_page(s, a, "no-such", INT64_MIN, 1000, page_cb, &p, &err) == 0);
	CHECK(p.got == 0);
	int other = 0;
	CHECK(store_metric_page(s, b, "pg", INT64_MIN, 1000, count_cb, &other, &err) == 10 &&
	      other == 10);
	CHECK(store_metric_page(s, a, "pg", INT64_MIN, 0, page_cb, &p, &err) == STORE_EINVAL);
	CHECK(store_metric_page(s, a, "pg", INT64_MIN, 1001, page_cb, &p, &err) == STORE_EINVAL);
	free(pts);
}

/* ---------- events ---------- */

struct ev {
	int64_t ids[16], exps[16];
	char kinds[16][16];
	int n;
};

static int ev_cb(void *ctx, int64_t id, const char *kind, int64_t exp_id, const char *data)
{
	struct ev *e = ctx;
	(void)data;
	if (e->n < 16) {
		e->ids[e->n] = id;
		e->exps[e->n] = exp_id;
		snprintf(e->kinds[e->n], sizeof e->kinds[0], "%s", kind);
	}
	e->n++;
	return 0;
}

static void test_events(struct store *s)
{
	struct store_err err = { 0 };
	int64_t ids[5];
	struct ev e = { .n = 0 };
	static const char *const kinds[5] = { "queued", "started", "progress", "progress", "done" };

	for (int i = 0; i < 5; i++) {
		ids[i] = store_event_append(s, kinds[i], i == 0 ? 0 : 7, "{\"step\":1}", 10.0 + i, &err);
		CHECK(ids[i] > 0 && (i == 0 || ids[i] > ids[i - 1]));
	}
	CHECK(store_events_after(s, ids[1], 100, ev_cb, &e, &err) == 3);
	CHECK(e.ids[0] == ids[2] && e.ids[2] == ids[4] && strcmp(e.kinds[2], "done") == 0 &&
	      e.exps[0] == 7);
	memset(&e, 0, sizeof e);
	CHECK(store_events_after(s, 0, 2, ev_cb, &e, &err) >= 2 && e.n == 2);
	memset(&e, 0, sizeof e);
	CHECK(store_events_after(s, ids[0] - 1, 1, ev_cb, &e, &err) == 1 && e.exps[0] == 0);
	CHECK(store_events_after(s, ids[4], 10, ev_cb, &e, &err) == 0);
	CHECK(store_events_after(s, 0, 0, ev_cb, &e, &err) == STORE_EINVAL);
	CHECK(store_event_append(s, NULL, 0, NULL, 1, &err) == STORE_EINVAL);
}

/* ---------- WAL isolation, transactions ---------- */

struct wal_ctx {
	struct store *reader;
	int64_t committed, fresh;
	int during_committed, during_fresh, during_points;
};

static int wal_fn(struct store *s, void *ctx)
{
	struct wal_ctx *w = ctx;
	struct store_experiment g;
	struct store_point p = { .step = 99, .name = "loss", .value = 1 };

	w->fresh = add_exp(s, "in-flight", STORE_QUEUED);
	if (store_metrics_append(s, w->committed, &p, 1, NULL, 0, NULL, 0, NULL) < 0)
		return -1;
	if (store_experiment_set_status(s, w->committed, STORE_RUNNING, NULL, 5, NULL) < 0)
		return -1;
	/* Mid-transaction: the reader sees the last commit, and is not blocked. */
	w->during_committed = store_experiment_get(w->reader, w->committed, &g, NULL) == 0 &&
			      g.status == STORE_QUEUED;
	store_experiment_clear(&g);
	w->during_fresh = store_experiment_get(w->reader, w->fresh, &g, NULL);
	store_experiment_clear(&g);
	w->during_points = scan_count(w->reader, w->committed, "loss");
	return 0;
}

struct rb_ctx {
	int64_t exp, fresh;
};

static int rb_fn(struct store *s, void *ctx)
{
	struct rb_ctx *r = ctx;
	struct store_point p[2] = { { .step = 1, .name = "brand.new", .value = 1 },
				    { .step = 2, .name = "loss", .value = 2 } };
	r->fresh = add_exp(s, "doomed", STORE_QUEUED);
	if (store_metrics_append(s, r->exp, p, 2, NULL, 0, NULL, 0, NULL) < 0)
		return -1;
	if (store_event_append(s, "doomed", r->exp, NULL, 1, NULL) < 0)
		return -1;
	return -5;
}

static int nested_fn(struct store *s, void *ctx)
{
	struct rb_ctx *r = ctx;
	struct store_err err = { 0 };
	/* An inner failure is a savepoint rollback: the outer work survives. */
	int rc = store_tx(s, rb_fn, r, &err);
	r->fresh = rc == -5 ? add_exp(s, "outer", STORE_QUEUED) : -1;
	return 0;
}

static void test_wal_and_tx(void)
{
	char path[128];
	struct store *s, *r = NULL;
	struct store_err err = { 0 };
	struct store_experiment g;

	new_db(path, sizeof path);
	s = open_w(path);
	CHECK(store_open(&r, path, 0, &err) == 0);
	struct wal_ctx w = { .reader = r };
	w.committed = add_exp(s, "committed", STORE_QUEUED);
	struct store_point p = { .step = 1, .name = "loss", .value = 1 };
	CHECK(store_metrics_append(s, w.committed, &p, 1, NULL, 0, NULL, 0, NULL) == 0);
	CHECK(store_tx(s, wal_fn, &w, &err) == 0);
	CHECK(w.during_committed == 1);
	CHECK(w.during_fresh == STORE_ENOTFOUND);
	CHECK(w.during_points == 1);
	/* After the commit the reader sees all of it. */
	CHECK(store_experiment_get(r, w.fresh, &g, NULL) == 0);
	store_experiment_clear(&g);
	CHECK(scan_count(r, w.committed, "loss") == 2);

	/* Rollback leaves nothing: no experiment, no points, no event, no metric name. */
	struct rb_ctx rb = { .exp = w.committed };
	struct ev e = { .n = 0 };
	memset(&err, 0, sizeof err);
	CHECK(store_tx(s, rb_fn, &rb, &err) == -5 && err.code == -5);
	CHECK(store_experiment_get(s, rb.fresh, &g, NULL) == STORE_ENOTFOUND);
	CHECK(scan_count(s, w.committed, "loss") == 2 && scan_count(s, w.committed, "brand.new") == 0);
	CHECK(store_events_after(s, 0, 100, ev_cb, &e, NULL) == 0);
	/* The name created inside the rolled-back transaction can be used afterwards (no stale
	 * cached id). */
	struct store_point again = { .step = 3, .name = "brand.new", .value = 3 };
	CHECK(store_metrics_append(s, w.committed, &again, 1, NULL, 0, NULL, 0, &err) == 0);
	CHECK(scan_count(r, w.committed, "brand.new") == 1);

	/* Nested: the inner store_tx rolls back to its savepoint, the outer commits. */
	struct rb_ctx nest = { .exp = w.committed };
	CHECK(store_tx(s, nested_fn, &nest, &err) == 0);
	CHECK(nest.fresh > 0 && store_experiment_get(r, nest.fresh, &g, NULL) == 0);
	store_experiment_clear(&g);
	CHECK(scan_count(r, w.committed, "loss") == 2);
	CHECK(store_tx(r, nested_fn, &nest, &err) == STORE_EINVAL);

	store_close(r);
	store_close(s);
	rm_db(path);
}

/* ---------- allocation failures ---------- */

static int alloc_round(const char *path)
{
	struct store *s = NULL;
	struct store_experiment g;
	int rc = store_open(&s, path, 1, NULL);
	if (rc < 0)
		return rc;
	struct store_experiment e;
	exp_init(&e, "nomem", STORE_QUEUED);
	e.tags = "[\"t\"]";
	e.notes = "n";
	e.error = "e";
	rc = store_experiment_insert(s, &e, NULL);
	double dv[4] = { 1, 2, 3, 4 };
	float fx[2] = { 1, 2 };
	struct store_point pts[40];
	for (int i = 0; i < 40; i++) {
		pts[i] = (struct store_point){ .step = i, .name = "x", .value = i };
	}
	struct store_point fresh[3] = { { 1, "fa", 1 }, { 1, "fb", 2 }, { 1, "fc", 3 } };
	struct store_depth d = { .step = 1, .name = "dd", .values = dv, .n = 4 };
	struct store_samples sm = { .step = 1, .site = "s", .x = fx, .y = fx, .n = 2 };
	if (rc == 0)
		rc = store_metrics_append(s, e.id, pts, 40, &d, 1, &sm, 1, NULL);
	if (rc == 0)
		rc = store_metrics_append(s, e.id, fresh, 3, NULL, 0, NULL, 0, NULL);
	if (rc == 0) {
		rc = store_experiment_get(s, e.id, &g, NULL);
		store_experiment_clear(&g);
	}
	if (rc == 0) {
		struct store_filter f = { .status = -1, .limit = 5 };
		struct collect c = { .n = 0 };
		rc = store_experiment_list(s, &f, collect_cb, &c, NULL);
	}
	if (rc >= 0) {
		struct depth_rows dr = { .rows = 0 };
		rc = store_depth_get(s, e.id, "dd", -1, 0, depth_cb, &dr, NULL);
	}
	store_close(s);
	return rc < 0 ? rc : 0;
}

/* Every allocation of a round fails in turn: each round either succeeds (a cache allocation may
 * fail harmlessly) or reports ENOMEM; ASan checks that nothing leaks on any path. */
static void test_alloc_failures(void)
{
	char path[128];
	int failures = 0, bad = 0;
	new_db(path, sizeof path);
	CHECK(alloc_round(path) == 0);
	long before = nl_alloc_count();
	CHECK(alloc_round(path) == 0);
	long total = nl_alloc_count() - before;
	for (long n = 1; n <= total; n++) {
		nl_alloc_fail_at(n);
		int rc = alloc_round(path);
		nl_alloc_fail_at(0);
		failures += rc != 0;
		bad += rc != 0 && rc != STORE_ENOMEM;
	}
	CHECKF(total >= 8 && failures >= total / 2 && bad == 0,
	       "%ld allocations, %d failing rounds, %d with the wrong code", total, failures, bad);
	/* The database is still sound afterwards. */
	CHECK(alloc_round(path) == 0);
	rm_db(path);
}

int main(void)
{
	char path[128];
	struct store *s;

	snprintf(tdir, sizeof tdir, "/tmp/nl_store_XXXXXX");
	if (!mkdtemp(tdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_open();
	new_db(path, sizeof path);
	s = open_w(path);
	if (s) {
		test_experiment_fields(s);
		test_status_queue(s);
		test_metrics(s);
		test_buckets(s);
		test_bucket_stop(s);
		test_metric_page(s);
		test_events(s);
		store_close(s);
	}
	rm_db(path);
	test_list();
	test_next_queued();
	test_wal_and_tx();
	test_alloc_failures();
	rmdir(tdir);
	return test_finish("store");
}
