/*
 * test_storage_faults — what a researcher sees when the disk fills up or a checkpoint rots:
 *  1. the store with every write of a metric batch and of a status change failing in turn (the
 *     store's I/O fault hook, SQLITE_FULL): each is reported, none half-applied, and the store
 *     works again once there is room; the disk-full reserve is made and released;
 *  2. the real daemon with the hook armed from $NORMLAB_STORE_FAULT (works without root): a run
 *     whose metrics stop fitting ends `failed` with "storage: ... database or disk is full", not
 *     succeeded; its last recorded checkpoint is intact and loads with its checksums verified;
 *     /health says degraded until a later write works; the same spec submitted again runs again
 *     instead of being answered with the broken run;
 *  3. (root) the same on a real 4 MiB tmpfs filled to the last block: the run fails with the cause,
 *     /health names the file system below min_free_bytes, and DELETE succeeds on the full disk
 *     and gives the space back;
 *  4. a daemon stopped mid-run whose newest checkpoint then gets one byte flipped: on restart the
 *     run falls back to the checkpoint before it and ends with exactly the loss series of an
 *     uninterrupted `normlab train`; a run with no older checkpoint fails naming the file and the
 *     tensor; a stale .tmp left in a run directory is removed at start.
 * Binaries come from $NORMLAB_BIN (default bin/). Data: a corpus the test writes itself.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../lib/dtest.h"
#include "../test.h"
#include "checkpoint.h"
#include "spec.h"
#include "store.h"
#include "train.h"

#define ALICE "tok-alice-0123456789abcdef"
#define ROOT "tok-root-0123456789abcdef0"

static struct dtest D;

/* ---------- helpers ---------- */

static const char *spec_json(int steps, int seed)
{
	static char buf[700];
	snprintf(buf, sizeof buf,
		 "{\"model\":{\"n_layer\":2,\"d_model\":32,\"n_head\":2,\"seq_len\":32},"
		 "\"data\":{\"path\":\"%s\"},\"seed\":%d,\"train\":{\"steps\":%d,\"batch_size\":4,"
		 "\"warmup\":5,\"lr\":0.003},\"probe\":{\"every\":5,\"depth_every\":20,"
		 "\"samples_every\":100,\"samples\":32,\"val_every\":100}}", "corpus.txt", seed, steps);
	return buf;
}

static int64_t submit(const char *spec, int *status)
{
	struct dtest_reply r;
	*status = dtest_call(&D, "POST", "/api/v1/experiments", ALICE, spec, &r);
	int64_t id = (int64_t)dtest_num(r.json, "id");
	if (*status != 201 && *status != 200)
		fprintf(stderr, "submit: %d %.300s\n", *status, r.body ? r.body : "");
	dtest_reply_free(&r);
	return id;
}

/* GET the experiment; the caller frees the reply. */
static void get_exp(int64_t id, struct dtest_reply *r)
{
	char path[96];
	snprintf(path, sizeof path, "/api/v1/experiments/%lld", (long long)id);
	dtest_call(&D, "GET", path, NULL, NULL, r);
}

/* Waits until experiment id has checkpoint_step >= step while running; 1 if it did. */
static int wait_ckpt(int64_t id, int step, double timeout)
{
	double until = dtest_now() + timeout;
	while (dtest_now() < until) {
		struct dtest_reply r;
		get_exp(id, &r);
		int ok = dtest_num(r.json, "checkpoint_step") >= step &&
			 strcmp(dtest_str(r.json, "status"), "running") == 0;
		dtest_reply_free(&r);
		if (ok)
			return 1;
		dtest_sleep_ms(20);
	}
	return 0;
}

/* Waits until experiment id is in a final state; copies status and error. */
static void wait_end(int64_t id, double timeout, char *status, size_t scap, char *error,
		     size_t ecap)
{
	double until = dtest_now() + timeout;
	status[0] = error[0] = '\0';
	while (dtest_now() < until) {
		struct dtest_reply r;
		get_exp(id, &r);
		snprintf(status, scap, "%s", dtest_str(r.json, "status"));
		snprintf(error, ecap, "%s", dtest_str(r.json, "error"));
		dtest_reply_free(&r);
		if (strcmp(status, "running") != 0 && strcmp(status, "queued") != 0)
			return;
		dtest_sleep_ms(50);
	}
}

/* /health's status and its reasons joined by " | ". */
static void health(char *status, size_t scap, char *reasons, size_t rcap)
{
	struct dtest_reply r;
	dtest_call(&D, "GET", "/api/v1/health", NULL, NULL, &r);
	snprintf(status, scap, "%s", dtest_str(r.json, "status"));
	size_t n = 0;
	reasons[0] = '\0';
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r.json, "reasons"))
		if (cJSON_IsString(x) && n < rcap)
			n += (size_t)snprintf(reasons + n, rcap - n, "%s | ", x->valuestring);
	dtest_reply_free(&r);
}

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void ckpt_file(char *out, size_t cap, const char *runs, int64_t id, int64_t step)
{
	snprintf(out, cap, "%s/%lld/ckpt-%08lld.safetensors", runs, (long long)id, (long long)step);
}

/* Loads checkpoint `path` for the spec of experiment id as the daemon would; 0 when it loads
 * with its checksums verified at step `step`. */
static int ckpt_loads(int64_t id, const char *path, int64_t step, char *why, size_t cap)
{
	struct dtest_reply r;
	struct spec s;
	struct spec_errors se;
	struct spec_limits lim = { .max_bytes = (uint64_t)4 << 30 };
	struct trainer t;
	struct nl_err err = { 0 };
	int verified = 0, rc = -1;
	get_exp(id, &r);
	char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r.json, "spec"));
	dtest_reply_free(&r);
	if (!txt || spec_parse(&s, txt, strlen(txt), &lim, &se) != 0) {
		snprintf(why, cap, "spec does not parse");
		free(txt);
		return -1;
	}
	free(txt);
	if (trainer_init(&t, &s, D.corpus, &err) != 0) {
		snprintf(why, cap, "trainer: %s", err.msg);
		return -1;
	}
	if (ckpt_load(&t, path, &verified, &err) != 0)
		snprintf(why, cap, "%s", err.msg);
	else if (!verified || t.step != step)
		snprintf(why, cap, "verified %d, step %ld", verified, t.step);
	else
		rc = 0;
	trainer_free(&t);
	return rc;
}

static int64_t fs_free(const char *path)
{
	struct statvfs v;
	return statvfs(path, &v) == 0 ? (int64_t)v.f_bavail * (int64_t)v.f_frsize : -1;
}

/* ---------- 1. the store, every write failing in turn ---------- */

static int count_rows(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

static int append_batch(struct store *s, int64_t id, int64_t step0, struct store_err *err)
{
	struct store_point p[200];
	double dv[4] = { 1, 2, 3, 4 };
	struct store_depth d = { step0, "resid.var", dv, 4 };
	float x[64], y[64];
	int32_t tok[64], ch[64];
	for (int i = 0; i < 64; i++) {
		x[i] = (float)i;
		y[i] = (float)-i;
		tok[i] = i;
		ch[i] = i % 8;
	}
	struct store_samples sm = { step0, "blocks.0.norm1", x, y, tok, ch, 64 };
	for (int i = 0; i < 200; i++)
		p[i] = (struct store_point){ step0 + i, i % 2 ? "loss" : "grad_norm", 0.5 * i };
	return store_metrics_append(s, id, p, 200, &d, 1, &sm, 1, err);
}

static void test_store_faults(void)
{
	char db[300], integrity[64] = "";
	struct store *s = NULL;
	struct store_err err = { 0 };
	snprintf(db, sizeof db, "%s/faults.db", D.tmp);
	CHECK(store_fault_arm("off", &err) == 0);   /* connections opened from here go through it */
	CHECK(store_fault_arm("writes=x", &err) == STORE_EINVAL);
	CHECKF(store_open(&s, db, 1, &err) == 0, "%s", err.msg);
	if (!s)
		return;
	struct store_experiment e;
	memset(&e, 0, sizeof e);
	snprintf(e.hash, sizeof e.hash, "%064d", 1);
	e.spec = "{}";
	e.steps = 1000000;
	e.status = STORE_RUNNING;
	CHECK(store_experiment_insert(s, &e, &err) == 0);

	/* how many writes one batch and one status change take */
	CHECK(store_fault_arm("writes=1000000000", &err) == 0);
	CHECK(append_batch(s, e.id, 0, &err) == 0);
	long batch_writes = store_fault_writes();
	CHECK(store_fault_arm("writes=1000000000", &err) == 0);
	CHECK(store_experiment_set_status(s, e.id, STORE_FAILED, "x", 1.0, &err) == 0);
	long status_writes = store_fault_writes();
	CHECK(store_experiment_set_status(s, e.id, STORE_RUNNING, NULL, 1.0, &err) == 0);
	CHECKF(batch_writes > 0 && status_writes > 0, "writes: batch %ld, status %ld", batch_writes,
	       status_writes);

	int reported = 1, atomic = 1, recovered = 1;
	int64_t step0 = 1000;
	for (long n = 0; n < batch_writes; n++, step0 += 1000) {
		char spec[64];
		snprintf(spec, sizeof spec, "writes=%ld", n);
		store_fault_arm(spec, &err);
		memset(&err, 0, sizeof err);
		int rc = append_batch(s, e.id, step0, &err);
		store_fault_arm("off", NULL);
		reported &= rc == STORE_EFULL && strstr(err.msg, "full") != NULL;
		char sql[160];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM scalars WHERE exp_id = %lld AND step >= "
			 "%lld AND step < %lld", (long long)e.id, (long long)step0,
			 (long long)step0 + 1000);
		atomic &= count_rows(db, sql) == 0;
		recovered &= append_batch(s, e.id, step0, &err) == 0 && count_rows(db, sql) == 200;
	}
	CHECKF(reported, "a metric batch whose Nth write fails must say the disk is full");
	CHECKF(atomic, "a failed batch must leave none of its points behind");
	CHECKF(recovered, "once writes work again the same batch must store");
	reported = atomic = 1;
	for (long n = 0; n < status_writes; n++) {
		char spec[64];
		snprintf(spec, sizeof spec, "writes=%ld", n);
		store_fault_arm(spec, &err);
		int rc = store_experiment_set_status(s, e.id, STORE_SUCCEEDED, NULL, 2.0, &err);
		store_fault_arm("off", NULL);
		reported &= rc == STORE_EFULL;
		struct store_experiment g;
		atomic &= store_experiment_get(s, e.id, &g, &err) == 0 && g.status == STORE_RUNNING;
		store_experiment_clear(&g);
	}
	CHECKF(reported && atomic, "a status change whose Nth write fails is reported and not applied");
	CHECK(store_fault_arm("writes=0,count=1", &err) == 0);   /* one failure, then room again */
	CHECK(append_batch(s, e.id, 900000000, &err) == STORE_EFULL);
	CHECK(append_batch(s, e.id, 900000000, &err) == 0);
	store_fault_arm("off", NULL);

	/* dedup: a succeeded row short of its steps is no duplicate */
	CHECK(store_experiment_set_status(s, e.id, STORE_SUCCEEDED, NULL, 3.0, &err) == 0);
	CHECK(store_experiment_progress(s, e.id, 40, NAN, NAN, 0, &err) == 0);
	CHECK(store_experiment_find_hash(s, e.hash, STORE_SUCCEEDED) == 0);
	CHECK(store_experiment_progress(s, e.id, 1000000, NAN, NAN, 0, &err) == 0);
	CHECK(store_experiment_find_hash(s, e.hash, STORE_SUCCEEDED) == e.id);

	/* the reserve */
	char res[320];
	snprintf(res, sizeof res, "%s.reserve", db);
	CHECK(store_reserve_make(s, 64 << 10, &err) == 1);
	struct stat st;
	CHECK(stat(res, &st) == 0 && st.st_size == 64 << 10 && st.st_blocks * 512 >= 64 << 10);
	CHECK(store_reserve_present(s) == 1);
	CHECK(store_reserve_release(s) == 1 && !file_exists(res));
	CHECK(store_reserve_release(s) == 0);
	store_close(s);

	sqlite3 *h = NULL;
	sqlite3_stmt *q = NULL;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		snprintf(integrity, sizeof integrity, "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(h);
	CHECKF(strcmp(integrity, "ok") == 0, "integrity_check after the faults: %s", integrity);
	printf("store: every write of a metric batch (%ld) and a status change (%ld) failed in turn\n",
	       batch_writes, status_writes);
}

/* ---------- 2. the daemon with the fault hook ---------- */

static void test_daemon_hook(void)
{
	char trigger[300], status[32], error[600], hs[32], reasons[2000], path[400], why[600];
	char runs[300];
	snprintf(trigger, sizeof trigger, "%s/disk-full", D.tmp);
	snprintf(runs, sizeof runs, "%s/runs", D.tmp);
	char env[340];
	snprintf(env, sizeof env, "file=%s", trigger);
	setenv("NORMLAB_STORE_FAULT", env, 1);
	const char *args[] = { "--checkpoint_every", "20", "--min_free_bytes", "0", NULL };
	int up = dtest_start(&D, args) == 0;
	unsetenv("NORMLAB_STORE_FAULT");
	CHECKF(up, "the daemon did not start with the fault hook");
	if (!up)
		return;
	int code;
	const char *spec = spec_json(200000, 1);
	int64_t id = submit(spec, &code);
	CHECK(code == 201);
	CHECKF(wait_ckpt(id, 40, 60), "the run never recorded a checkpoint");

	/* the disk is "full" from here */
	dtest_write_file(trigger, "");
	double until = dtest_now() + 30;
	do {
		health(hs, sizeof hs, reasons, sizeof reasons);
		if (strcmp(hs, "degraded") == 0)
			break;
		dtest_sleep_ms(50);
	} while (dtest_now() < until);
	CHECKF(strcmp(hs, "degraded") == 0 && strstr(reasons, "database or disk is full"),
	       "health while writes fail: %s: %s", hs, reasons);
	/* even the final status cannot be written now; it is once there is room again */
	unlink(trigger);
	wait_end(id, 30, status, sizeof status, error, sizeof error);
	CHECKF(strcmp(status, "failed") == 0, "the run should fail, not %s", status);
	CHECKF(strncmp(error, "storage: could not ", 19) == 0 && strstr(error, "database or disk is full"),
	       "the error should give the cause: %s", error);

	struct dtest_reply r;
	get_exp(id, &r);
	int64_t k = (int64_t)dtest_num(r.json, "checkpoint_step");
	dtest_reply_free(&r);
	ckpt_file(path, sizeof path, runs, id, k);
	CHECKF(k >= 40 && ckpt_loads(id, path, k, why, sizeof why) == 0,
	       "last good checkpoint (step %lld) should load verified: %s", (long long)k, why);
	snprintf(path, sizeof path, "%s/%lld/final.safetensors", runs, (long long)id);
	CHECK(!file_exists(path));

	/* the same spec again: it runs, since the failed run is no result */
	int64_t again = submit(spec, &code);
	CHECKF(code == 201 && again != id, "resubmission: status %d, id %lld (broken run %lld)", code,
	       (long long)again, (long long)id);
	/* a later write that works clears the error from /health */
	until = dtest_now() + 30;
	do {
		health(hs, sizeof hs, reasons, sizeof reasons);
		if (strcmp(hs, "ok") == 0)
			break;
		dtest_sleep_ms(100);
	} while (dtest_now() < until);
	CHECKF(strcmp(hs, "ok") == 0, "health after writes work again: %s: %s", hs, reasons);
	char p2[96];
	snprintf(p2, sizeof p2, "/api/v1/experiments/%lld/cancel", (long long)again);
	dtest_call(&D, "POST", p2, ALICE, NULL, &r);
	dtest_reply_free(&r);
	wait_end(again, 30, status, sizeof status, error, sizeof error);
	CHECK(strcmp(status, "cancelled") == 0);
	snprintf(p2, sizeof p2, "/api/v1/experiments/%lld", (long long)id);
	CHECK(dtest_call(&D, "DELETE", p2, ALICE, NULL, &r) == 204);
	dtest_reply_free(&r);
	snprintf(path, sizeof path, "%s/%lld", runs, (long long)id);
	CHECK(!file_exists(path));
	CHECK(dtest_stop(&D, SIGTERM) == 0);
}

/* ---------- 3. a real full file system ---------- */

/* Fills the file system holding dir to its last block; returns bytes written. */
static long fill(const char *dir)
{
	char path[400];
	static char block[64 << 10];
	long total = 0;
	snprintf(path, sizeof path, "%s/filler", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0)
		return -1;
	for (size_t chunk = sizeof block; chunk >= 512; chunk /= 2)
		for (;;) {
			ssize_t n = write(fd, block, chunk);
			if (n <= 0)
				break;
			total += n;
		}
	close(fd);
	return total;
}

static void test_tmpfs(void)
{
	char small[300], db[340], runs[340], status[32], error[600], hs[32], reasons[2000];
	char path[400], why[600], filler[340];
	snprintf(small, sizeof small, "%s/small", D.tmp);
	mkdir(small, 0700);
	if (geteuid() != 0 || mount("tmpfs", small, "tmpfs", 0, "size=4m") != 0) {
		printf("tmpfs: skipped (mount needs root: %s); the fault-hook test covered the paths\n",
		       strerror(errno));
		return;
	}
	printf("tmpfs: a real 4 MiB tmpfs at %s\n", small);
	snprintf(db, sizeof db, "%s/db/normlab.db", small);
	snprintf(runs, sizeof runs, "%s/runs", small);
	snprintf(filler, sizeof filler, "%s/filler", small);
	const char *args[] = { "--db", db, "--runs", runs, "--checkpoint_every", "10",
			       "--min_free_bytes", "1M", "--storage_reserve_bytes", "256K", NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start on the tmpfs");
		umount2(small, MNT_DETACH);
		return;
	}
	int code;
	const char *spec = spec_json(200000, 2);
	int64_t id = submit(spec, &code);
	CHECK(code == 201);
	CHECKF(wait_ckpt(id, 20, 60), "no checkpoint before the disk filled");
	long filled = fill(small);
	printf("tmpfs: filled the last %ld bytes\n", filled);
	wait_end(id, 60, status, sizeof status, error, sizeof error);
	CHECKF(strcmp(status, "failed") == 0, "on a full disk the run should fail, not %s", status);
	CHECKF(strncmp(error, "storage: could not ", 19) == 0 &&
	       (strstr(error, "database or disk is full") || strstr(error, "No space left")),
	       "the error should give the cause: %s", error);
	printf("tmpfs: run %lld failed: %s\n", (long long)id, error);

	struct dtest_reply r;
	get_exp(id, &r);
	int64_t k = (int64_t)dtest_num(r.json, "checkpoint_step");
	dtest_reply_free(&r);
	ckpt_file(path, sizeof path, runs, id, k);
	CHECKF(k >= 20 && ckpt_loads(id, path, k, why, sizeof why) == 0,
	       "last good checkpoint (step %lld) should load verified: %s", (long long)k, why);

	health(hs, sizeof hs, reasons, sizeof reasons);
	CHECKF(strcmp(hs, "degraded") == 0 && strstr(reasons, "below min_free_bytes") &&
	       strstr(reasons, "last storage write failed"), "health on the full disk: %s: %s", hs,
	       reasons);
	printf("tmpfs: health %s: %s\n", hs, reasons);

	/* DELETE on the full disk: it works, and the space comes back */
	int64_t before = fs_free(small);
	char p2[96];
	snprintf(p2, sizeof p2, "/api/v1/experiments/%lld", (long long)id);
	int del = dtest_call(&D, "DELETE", p2, ALICE, NULL, &r);
	CHECKF(del == 204, "DELETE on a full disk: %d %.300s", del, r.body ? r.body : "");
	dtest_reply_free(&r);
	int64_t after = fs_free(small);
	snprintf(path, sizeof path, "%s/%lld", runs, (long long)id);
	CHECK(!file_exists(path));
	CHECK(dtest_call(&D, "GET", p2, NULL, NULL, &r) == 404);
	dtest_reply_free(&r);
	CHECKF(after > before + (200 << 10), "DELETE should free space: %lld -> %lld bytes free",
	       (long long)before, (long long)after);
	printf("figure: DELETE on a full tmpfs freed %lld bytes (%lld -> %lld free)\n",
	       (long long)(after - before), (long long)before, (long long)after);

	/* room again: the same spec runs; once it writes, health is ok */
	unlink(filler);
	int64_t again = submit(spec, &code);
	CHECKF(code == 201, "resubmission on the freed disk: %d", code);
	CHECK(wait_ckpt(again, 10, 60));
	double until = dtest_now() + 30;
	do {
		health(hs, sizeof hs, reasons, sizeof reasons);
		if (strcmp(hs, "ok") == 0)
			break;
		dtest_sleep_ms(100);
	} while (dtest_now() < until);
	CHECKF(strcmp(hs, "ok") == 0, "health once writes work again: %s: %s", hs, reasons);
	CHECK(dtest_stop(&D, SIGTERM) == 0);
	CHECKF(umount2(small, 0) == 0 || umount2(small, MNT_DETACH) == 0, "umount: %s",
	       strerror(errno));
}

/* ---------- 4. a corrupt checkpoint at resume ---------- */

static char *daemon_loss(int64_t id)
{
	char path[96];
	struct dtest_reply r;
	snprintf(path, sizeof path, "/api/v1/experiments/%lld/metrics.csv", (long long)id);
	dtest_call(&D, "GET", path, NULL, NULL, &r);
	size_t cap = (r.body ? strlen(r.body) : 0) + 1, len = 0;
	char *out = calloc(1, cap), *save = NULL;
	for (char *line = r.body ? strtok_r(r.body, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		long long step;
		char name[64], value[64];
		if (sscanf(line, "%lld,%63[^,],%63s", &step, name, value) == 3 &&
		    strcmp(name, "loss") == 0)
			len += (size_t)snprintf(out + len, cap - len, "%lld,%s\n", step, value);
	}
	dtest_reply_free(&r);
	return out;
}

static char *cli_loss(const char *spec)
{
	char sp[300], out[300], cmd[1400], line[4096];
	snprintf(sp, sizeof sp, "%s/ref.json", D.tmp);
	snprintf(out, sizeof out, "%s/ref", D.tmp);
	dtest_write_file(sp, spec);
	snprintf(cmd, sizeof cmd, "'%s/normlab' train '%s' --out '%s' --data-dir '%s' 2>/dev/null", D.bindir, sp, out,
		 D.tmp);
	size_t cap = 1 << 20, len = 0;
	char *res = calloc(1, cap);
	if (system(cmd) != 0)
		return res;
	snprintf(cmd, sizeof cmd, "%s/metrics.jsonl", out);
	FILE *f = fopen(cmd, "r");
	while (f && fgets(line, sizeof line, f)) {
		long long step;
		char value[64];
		if (sscanf(line, "{\"step\":%lld,\"kind\":\"scalar\",\"name\":\"loss\",\"value\":%63[^}]",
			   &step, value) == 2 && len + 100 < cap)
			len += (size_t)snprintf(res + len, cap - len, "%lld,%s\n", step, value);
	}
	if (f)
		fclose(f);
	return res;
}

/* The checkpoint steps present in runs/<id>, newest first; returns the count. */
static int ckpt_steps(const char *runs, int64_t id, int64_t *steps, int cap)
{
	char dir[400];
	snprintf(dir, sizeof dir, "%s/%lld", runs, (long long)id);
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) != NULL) {
		long long s;
		char tail[32];
		if (sscanf(de->d_name, "ckpt-%lld.%31s", &s, tail) == 2 &&
		    strcmp(tail, "safetensors") == 0 && n < cap)
			steps[n++] = s;
	}
	if (d)
		closedir(d);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (steps[j] > steps[i]) {
				int64_t t = steps[i];
				steps[i] = steps[j];
				steps[j] = t;
			}
	return n;
}

/* Flips one byte in the middle of the file's last 64 KiB (tensor data: optim.v.*). */
static int corrupt(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || st.st_size < (1 << 17))
		return -1;
	FILE *f = fopen(path, "r+b");
	long off = (long)st.st_size - (32 << 10);
	int c;
	if (!f || fseek(f, off, SEEK_SET) != 0 || (c = fgetc(f)) == EOF ||
	    fseek(f, off, SEEK_SET) != 0 || fputc(c ^ 0x01, f) == EOF) {
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

static void test_corrupt_resume(void)
{
	char runs[300], path[400], stale[400], status[32], error[600];
	snprintf(runs, sizeof runs, "%s/runs", D.tmp);
	const char *args[] = { "--workers", "2", "--thread_budget", "2", "--checkpoint_every", "30",
			       NULL };
	if (dtest_start(&D, args) != 0) {
		CHECKF(0, "the daemon did not start");
		return;
	}
	int code;
	char spec_a[700], spec_b[700];
	snprintf(spec_a, sizeof spec_a, "%s", spec_json(4000, 11));
	snprintf(spec_b, sizeof spec_b, "%s", spec_json(4000, 12));
	int64_t a = submit(spec_a, &code), b = submit(spec_b, &code);
	int mid = wait_ckpt(a, 90, 120) && wait_ckpt(b, 90, 120);
	CHECKF(mid, "the runs were not caught mid-way");
	CHECK(dtest_stop(&D, SIGTERM) == 0);   /* each saves a checkpoint at its current step */
	if (!mid)
		return;
	int64_t sa[8], sb[8];
	int na = ckpt_steps(runs, a, sa, 8), nb = ckpt_steps(runs, b, sb, 8);
	CHECKF(na == 2 && nb == 2, "the last two checkpoints are kept: %d and %d", na, nb);
	if (na < 2 || nb < 2)
		return;
	/* a: newest corrupt, falls back to the one before; b: newest corrupt and alone */
	ckpt_file(path, sizeof path, runs, a, sa[0]);
	CHECK(corrupt(path) == 0);
	ckpt_file(path, sizeof path, runs, b, sb[0]);
	CHECK(corrupt(path) == 0);
	ckpt_file(path, sizeof path, runs, b, sb[1]);
	CHECK(unlink(path) == 0);
	snprintf(stale, sizeof stale, "%s/%lld/ckpt-%08lld.safetensors.tmp", runs, (long long)a,
		 (long long)sa[0] + 30);
	dtest_write_file(stale, "half a checkpoint");

	CHECK(dtest_start(&D, args) == 0);
	CHECKF(!file_exists(stale), "a stale .tmp should be removed at start");
	wait_end(a, 240, status, sizeof status, error, sizeof error);
	CHECKF(strcmp(status, "succeeded") == 0, "run with an older good checkpoint: %s %s", status,
	       error);
	char *got = daemon_loss(a), *want = cli_loss(spec_a);
	int lines = 0;
	for (char *p = want; *p; p++)
		lines += *p == '\n';
	CHECKF(lines == 801, "CLI reference: %d loss lines", lines);
	CHECKF(strcmp(got, want) == 0, "after the fallback the loss series must equal the "
	       "uninterrupted run's\n--- daemon:\n%.200s\n--- cli:\n%.200s", got, want);
	free(got);
	free(want);

	wait_end(b, 60, status, sizeof status, error, sizeof error);
	ckpt_file(path, sizeof path, runs, b, sb[0]);
	CHECKF(strcmp(status, "failed") == 0 && strstr(error, path) && strstr(error, "tensor \"") &&
	       strstr(error, "checksum mismatch") && strstr(error, "no older checkpoint"),
	       "a corrupt checkpoint with nothing to fall back to: %s: %s", status, error);
	printf("corrupt: run %lld: %s\n", (long long)b, error);

	/* the log says what happened to a */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "grep -q 'checksum mismatch.*falling back' '%s'", D.log);
	CHECKF(system(cmd) == 0, "the log should say run %lld fell back", (long long)a);
	CHECK(dtest_stop(&D, SIGTERM) == 0);
}

int main(void)
{
	if (dtest_init(&D, "storage") != 0)
		return 1;
	dtest_write_corpus(&D);
	char tokens[128];
	snprintf(tokens, sizeof tokens, "%s/tokens", D.tmp);
	dtest_write_file(tokens, ALICE " alice user\n" ROOT " root admin\n");
	test_store_faults();
	test_daemon_hook();
	test_tmpfs();
	test_corrupt_resume();
	if (D.pid)
		dtest_stop(&D, SIGKILL);
	dtest_cleanup(&D, test_fail_count == 0);
	return test_finish("storage_faults");
}
