/*
 * bench_store — the store's metric paths on a fresh SQLite file in a mkdtemp directory:
 *   - scalar ingest through store_metrics_append, 1,000,000 points in batches of 1000
 *     (4 names × 250 steps, one transaction per batch, as the trainer sends them);
 *   - depth-row ingest (L=8 float64 per row), batches of 1000 rows;
 *   - the peer measured in the same run: the same scalar data one point per transaction
 *     (20,000 points, rate extrapolated), and the batched/unbatched ratio;
 *   - store_metric_buckets over a 1,000,000-point series into 2000 buckets on a reader
 *     connection (what a dashboard request costs), median of 5 runs.
 * Prints figures and ratios; asserts nothing about time.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl.h"
#include "store.h"

enum {
	N_NAMES = 4,
	STEPS_PER_BATCH = 250,
	BATCH = N_NAMES * STEPS_PER_BATCH,
	N_POINTS = 1000000,
	N_DEPTH = 100000,
	L_DEPTH = 8,
	N_UNBATCHED = 20000,
	N_BUCKETS = 2000,
	RUNS = 5,
};

static const char *const names[N_NAMES] = { "loss", "lr", "grad_norm", "tokens_per_s" };

static uint64_t rng_state = 88172645463325252ull;

static double noise(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0 - 0.5;
}

/* A loss-like value: decay plus noise, so values are not trivially compressible. */
static double value_at(int name, int64_t step)
{
	return (name + 1) * exp(-(double)step / 2e5) + 0.01 * noise();
}

static int64_t new_experiment(struct store *s, const char *name)
{
	struct store_experiment e;
	struct store_err err = { 0 };
	memset(&e, 0, sizeof e);
	snprintf(e.name, sizeof e.name, "%s", name);
	snprintf(e.hash, sizeof e.hash, "bench-%s", name);
	e.spec = "{}";
	e.status = STORE_RUNNING;
	e.threads = 1;
	e.cell = -1;
	e.loss = e.val_loss = NAN;
	if (store_experiment_insert(s, &e, &err) < 0) {
		fprintf(stderr, "bench_store: insert: %s\n", err.msg);
		return -1;
	}
	return e.id;
}

/* 1000-point batches for steps [step0, step0 + 250) of each name. */
static void fill_batch(struct store_point *p, int64_t step0)
{
	for (int k = 0; k < N_NAMES; k++)
		for (int i = 0; i < STEPS_PER_BATCH; i++)
			p[k * STEPS_PER_BATCH + i] = (struct store_point){
				.step = step0 + i, .name = names[k], .value = value_at(k, step0 + i) };
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct bucket_sum {
	int n;
	double max;
};

static int bucket_cb(void *ctx, const struct store_bucket *b)
{
	struct bucket_sum *c = ctx;
	c->n++;
	c->max = b->max > c->max ? b->max : c->max;
	return 0;
}

static void rm_db(const char *path)
{
	char p[300];   /* path + "-wal" */
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

int main(void)
{
	char dir[] = "/tmp/nl_bench_store_XXXXXX", path[256];
	struct store *s = NULL, *r = NULL;
	struct store_err err = { 0 };
	static struct store_point p[BATCH];
	static double dvals[BATCH][L_DEPTH];
	static struct store_depth d[BATCH];
	double t0, secs, batched_rate = 0, unbatched_rate = 0;
	int rc = 1;

	if (!mkdtemp(dir)) {
		perror("bench_store: mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/bench.db", dir);
	if (store_open(&s, path, 1, &err) < 0) {
		fprintf(stderr, "bench_store: open: %s\n", err.msg);
		goto out;
	}
	printf("bench_store: SQLite %s, %s (WAL, synchronous=NORMAL)\n", sqlite3_libversion(), path);

	/* Scalars, batched. */
	int64_t a = new_experiment(s, "scalars");
	if (a < 0)
		goto out;
	secs = 0;
	for (int64_t b = 0; b < N_POINTS / BATCH; b++) {
		fill_batch(p, b * STEPS_PER_BATCH);
		t0 = nl_now();
		if (store_metrics_append(s, a, p, BATCH, NULL, 0, NULL, 0, &err) < 0) {
			fprintf(stderr, "bench_store: append: %s\n", err.msg);
			goto out;
		}
		secs += nl_now() - t0;
	}
	batched_rate = N_POINTS / secs;
	printf("scalar ingest, batched    %d points, %d per transaction (%d names x %d steps): "
	       "%.3f s, %.0f points/s\n", N_POINTS, BATCH, N_NAMES, STEPS_PER_BATCH, secs,
	       batched_rate);

	/* Depth rows, batched. */
	int64_t dx = new_experiment(s, "depth");
	if (dx < 0)
		goto out;
	secs = 0;
	for (int64_t b = 0; b < N_DEPTH / BATCH; b++) {
		for (int k = 0; k < N_NAMES; k++)
			for (int i = 0; i < STEPS_PER_BATCH; i++) {
				int j = k * STEPS_PER_BATCH + i;
				int64_t step = b * STEPS_PER_BATCH + i;
				for (int l = 0; l < L_DEPTH; l++)
					dvals[j][l] = value_at(k, step) * (l + 1);
				d[j] = (struct store_depth){ .step = step, .name = names[k],
							     .values = dvals[j], .n = L_DEPTH };
			}
		t0 = nl_now();
		if (store_metrics_append(s, dx, NULL, 0, d, BATCH, NULL, 0, &err) < 0) {
			fprintf(stderr, "bench_store: depth append: %s\n", err.msg);
			goto out;
		}
		secs += nl_now() - t0;
	}
	printf("depth ingest, batched     %d rows of L=%d, %d per transaction: %.3f s, %.0f rows/s "
	       "(%.0f values/s)\n", N_DEPTH, L_DEPTH, BATCH, secs, N_DEPTH / secs,
	       (double)N_DEPTH * L_DEPTH / secs);

	/* The peer: the same kind of scalar data, one point per transaction. */
	int64_t u = new_experiment(s, "unbatched");
	if (u < 0)
		goto out;
	t0 = nl_now();
	for (int i = 0; i < N_UNBATCHED; i++) {
		struct store_point one = { .step = i / N_NAMES, .name = names[i % N_NAMES],
					   .value = value_at(i % N_NAMES, i / N_NAMES) };
		if (store_metrics_append(s, u, &one, 1, NULL, 0, NULL, 0, &err) < 0) {
			fprintf(stderr, "bench_store: unbatched append: %s\n", err.msg);
			goto out;
		}
	}
	secs = nl_now() - t0;
	unbatched_rate = N_UNBATCHED / secs;
	printf("scalar ingest, unbatched  %d points, 1 per transaction: %.3f s, %.0f points/s "
	       "(1M points would take %.1f s)\n", N_UNBATCHED, secs, unbatched_rate,
	       N_POINTS / unbatched_rate);
	printf("batched / unbatched       %.1fx\n", batched_rate / unbatched_rate);

	/* Downsampling a 1M-point series, on a reader as an HTTP thread would. */
	int64_t bx = new_experiment(s, "buckets");
	if (bx < 0)
		goto out;
	for (int64_t b = 0; b < N_POINTS / BATCH; b++) {
		for (int i = 0; i < BATCH; i++) {
			int64_t step = b * BATCH + i;
			p[i] = (struct store_point){ .step = step, .name = "loss",
						     .value = value_at(0, step) };
		}
		if (b == 777)
			p[123].value = 1e6;   /* one spike: it must be some bucket's max */
		if (store_metrics_append(s, bx, p, BATCH, NULL, 0, NULL, 0, &err) < 0) {
			fprintf(stderr, "bench_store: append: %s\n", err.msg);
			goto out;
		}
	}
	if (store_open(&r, path, 0, &err) < 0) {
		fprintf(stderr, "bench_store: reader: %s\n", err.msg);
		goto out;
	}
	double ms[RUNS];
	struct bucket_sum sum = { 0, 0 };
	for (int k = 0; k < RUNS; k++) {
		sum = (struct bucket_sum){ 0, -INFINITY };
		t0 = nl_now();
		int n = store_metric_buckets(r, bx, "loss", 0, -1, N_BUCKETS, bucket_cb, &sum, &err);
		ms[k] = 1e3 * (nl_now() - t0);
		if (n < 0) {
			fprintf(stderr, "bench_store: buckets: %s\n", err.msg);
			goto out;
		}
	}
	qsort(ms, RUNS, sizeof ms[0], cmp_double);
	printf("buckets                   %d-point series -> %d buckets: median %.1f ms over %d runs "
	       "(min %.1f, max %.1f); spike kept as max: %s\n", N_POINTS, sum.n, ms[RUNS / 2], RUNS,
	       ms[0], ms[RUNS - 1], sum.max == 1e6 ? "yes" : "NO");

	struct stat sb;
	if (stat(path, &sb) == 0)
		printf("database                  %.1f MiB (main file, %d scalar points + %d depth rows)\n",
		       sb.st_size / 1048576.0, 2 * N_POINTS + N_UNBATCHED, N_DEPTH);
	rc = 0;
out:
	store_close(r);
	store_close(s);
	rm_db(path);
	rmdir(dir);
	return rc;
}
