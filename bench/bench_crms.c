/*
 * bench_crms — what Pre-RMSNorm and Pre-CRMSNorm save over Pre-LN (NORMS.md §7, §12.7; Jiang et
 * al. 2023 claim "up to 10%" less training and inference time). One Pre-LN model is converted
 * (normlab convert's arithmetic) into the two others, so the three compute the same function and
 * differ only in the norm and, for CRMSNorm, the d−1 stream; each is timed on a training step
 * (forward, backward, AdamW) and a forward alone, on gpt and vit, in interleaved rounds (each row
 * keeps its best round: other jobs share this machine), with the share of the norm kernels. And
 * the norm kernels alone, forward + backward over the same rows. Prints figures and ratios;
 * asserts nothing about time.
 *   bench_crms [--rounds R] [--steps N] [--threads T]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "convert.h"
#include "model.h"
#include "norm.h"
#include "optim.h"
#include "rng.h"
#include "spec.h"

enum { V_LN, V_RMS, V_CRMS, V_N };
static const char *const vname[V_N] = { "Pre-LN", "Pre-RMSNorm", "Pre-CRMSNorm" };

struct variant {
	struct spec s;
	struct model m;
	struct adamw opt;
	real *p;                 /* host parameters */
	double best_train, best_fwd;
	double ops_train[MODEL_T_COUNT], ops_fwd[MODEL_T_COUNT];   /* per step, of the best round */
};

static double now(void)
{
	return nl_now();
}

static void inputs(struct model *m, uint64_t seed)
{
	struct rng r;
	const struct model_layout *lay = &m->lay;
	size_t N = (size_t)lay->N;
	rng_seed(&r, seed, 9);
	if (lay->arch->data == MODEL_DATA_IMAGES) {
		size_t n = (size_t)lay->B * 28 * 28;
		real *img = malloc(sizeof(real) * n);
		int *tg = malloc(sizeof(int) * (size_t)lay->B);
		for (size_t i = 0; i < n; i++)
			img[i] = (real)rng_normal(&r);
		for (int b = 0; b < lay->B; b++)
			tg[b] = (int)rng_below(&r, MODEL_CLASSES);
		model_upload(m, m->images, img, n);
		model_upload_ints(m, m->targets, tg, (size_t)lay->B);
		free(img);
		free(tg);
	} else {
		int *tok = malloc(sizeof(int) * 2 * N);
		for (size_t i = 0; i < 2 * N; i++)
			tok[i] = (int)rng_below(&r, MODEL_VOCAB);
		model_upload_ints(m, m->tokens, tok, 2 * N);
		free(tok);
	}
}

/* seconds per training step (or forward) over n of them, and per op class in ops[] */
static double time_steps(struct variant *v, int n, int train, double *ops)
{
	struct model *m = &v->m;
	memset(m->t_ops, 0, sizeof m->t_ops);
	m->timing = 1;
	double t0 = now();
	for (int i = 0; i < n; i++) {
		if (train) {
			model_zero_grad(m);
			model_forward(m, 1);
			model_backward(m);
			adamw_update(&v->opt, m, &v->s.train, 10, 1e-4, 1);
		} else {
			model_forward(m, 0);
		}
	}
	double dt = (now() - t0) / n;
	m->timing = 0;
	for (int k = 0; k < MODEL_T_COUNT; k++)
		ops[k] = m->t_ops[k] / n;
	return dt;
}

static int setup(struct variant *v, const char *json, int threads)
{
	struct spec_errors e = { 0 };
	struct nl_err err = { 0 };
	struct model_layout lf, lt;
	struct rng r;
	if (spec_parse(&v[V_LN].s, json, strlen(json), NULL, &e)) {
		fprintf(stderr, "bench: spec: %s %s\n", e.n ? e.e[0].pointer : "", e.n ? e.e[0].msg : "");
		return -1;
	}
	v[V_LN].s.threads = threads;
	if (convert_spec(&v[V_RMS].s, &v[V_LN].s, "rmsnorm", &err) ||
	    convert_spec(&v[V_CRMS].s, &v[V_LN].s, "crmsnorm", &err)) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return -1;
	}
	for (int k = 0; k < V_N; k++) {
		if (model_init(&v[k].m, &v[k].s, &err) || adamw_init(&v[k].opt, &v[k].m)) {
			fprintf(stderr, "bench: %s\n", err.msg);
			return -1;
		}
		v[k].p = calloc(v[k].m.lay.n_params, sizeof(real));
		v[k].best_train = v[k].best_fwd = 1e30;
	}
	/* Pre-LN at its init, γ and β moved off 1 and 0 so the conversion has work to do */
	rng_seed(&r, 3, 1);
	model_init_params(&v[V_LN].m, &v[V_LN].s, &r);
	model_download(&v[V_LN].m, v[V_LN].p, v[V_LN].m.params, v[V_LN].m.lay.n_params);
	for (int i = 0; i < v[V_LN].m.lay.n_tensors; i++) {
		const struct model_tensor *t = &v[V_LN].m.lay.tensors[i];
		if (t->role == MODEL_ROLE_NORM)
			for (size_t j = 0; j < t->len; j++)
				v[V_LN].p[t->off + j] += (real)(0.1 * rng_normal(&r));
	}
	lf = v[V_LN].m.lay;
	for (int k = V_RMS; k < V_N; k++) {
		lt = v[k].m.lay;
		if (convert_params(&v[V_LN].s, &lf, v[V_LN].p, &lt, v[k].p, NULL, &err)) {
			fprintf(stderr, "bench: %s\n", err.msg);
			return -1;
		}
	}
	for (int k = 0; k < V_N; k++) {
		model_upload(&v[k].m, v[k].m.params, v[k].p, v[k].m.lay.n_params);
		inputs(&v[k].m, 5);
	}
	return 0;
}

static void teardown(struct variant *v)
{
	for (int k = 0; k < V_N; k++) {
		adamw_free(&v[k].opt);
		model_free(&v[k].m);
		free(v[k].p);
	}
}

static void bench_model(const char *label, const char *json, int threads, int rounds, int steps)
{
	struct variant v[V_N];
	memset(v, 0, sizeof v);
	if (setup(v, json, threads)) {
		teardown(v);
		return;
	}
	double l[V_N];
	for (int k = 0; k < V_N; k++)
		l[k] = model_forward(&v[k].m, 0);
	double ops[MODEL_T_COUNT];
	for (int k = 0; k < V_N; k++)   /* warm */
		time_steps(&v[k], 1, 1, ops);
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < V_N; k++) {
			double t = time_steps(&v[k], steps, 1, ops);
			if (t < v[k].best_train) {
				v[k].best_train = t;
				memcpy(v[k].ops_train, ops, sizeof ops);
			}
			t = time_steps(&v[k], steps, 0, ops);
			if (t < v[k].best_fwd) {
				v[k].best_fwd = t;
				memcpy(v[k].ops_fwd, ops, sizeof ops);
			}
		}
	printf("%s, %d thread%s (losses at the same parameters: %.6f %.6f %.6f)\n", label, threads,
	       threads > 1 ? "s" : "", l[0], l[1], l[2]);
	printf("  %-13s | %9s %8s %8s %8s %8s | %8s %8s %8s %8s\n", "ms per step", "train",
	       "saved", "norm", "matmul", "saved", "forward", "saved", "norm", "saved");
	const struct variant *b = &v[V_LN];
	for (int k = 0; k < V_N; k++)
		printf("  %-13s | %9.2f %7.1f%% %8.3f %8.2f %7.1f%% | %8.2f %7.1f%% %8.3f %7.1f%%\n",
		       vname[k], 1e3 * v[k].best_train, 100 * (1 - v[k].best_train / b->best_train),
		       1e3 * v[k].ops_train[MODEL_T_NORM], 1e3 * v[k].ops_train[MODEL_T_MATMUL],
		       100 * (1 - v[k].ops_train[MODEL_T_MATMUL] / b->ops_train[MODEL_T_MATMUL]),
		       1e3 * v[k].best_fwd, 100 * (1 - v[k].best_fwd / b->best_fwd),
		       1e3 * v[k].ops_fwd[MODEL_T_NORM],
		       100 * (1 - v[k].ops_fwd[MODEL_T_NORM] / b->ops_fwd[MODEL_T_NORM]));
	printf("  (saved: against Pre-LN's time, whole step, the matmuls, or the norm kernels)\n");
	teardown(v);
}

/* The kernels alone: forward then backward over N rows of width d (CRMSNorm: d − 1). */
static void bench_kernels(int N, int d, int rounds)
{
	const char *names[V_N] = { "layernorm", "rmsnorm", "crmsnorm" };
	double best[V_N] = { 1e30, 1e30, 1e30 };
	size_t n = (size_t)N * d;
	real *x = malloc(sizeof(real) * n), *y = malloc(sizeof(real) * n);
	real *dy = malloc(sizeof(real) * n), *dx = malloc(sizeof(real) * n);
	real *cache = malloc(sizeof(real) * 2 * (size_t)N), p[2 * NORM_MAX_D];
	double *dp = malloc(sizeof(double) * 2 * (size_t)d);
	struct rng r;
	rng_seed(&r, 1, 1);
	for (size_t i = 0; i < n; i++) {
		x[i] = (real)rng_normal(&r);
		dy[i] = (real)rng_normal(&r);
	}
	for (int i = 0; i < 2 * d; i++)
		p[i] = i < d ? 1 : 0;
	for (int rd = 0; rd < rounds; rd++)
		for (int k = 0; k < V_N; k++) {
			const struct norm_kind *nk = norm_table[norm_find(names[k])];
			int w = d - nk->compressed;
			struct norm_cfg cfg = { .eps = 1e-5 };
			memset(dx, 0, sizeof(real) * n);
			memset(dp, 0, sizeof(double) * 2 * (size_t)d);
			double t0 = now();
			for (int it = 0; it < 20; it++) {
				nk->forward(y, cache, x, p, 0, N, w, &cfg);
				nk->backward(dx, dp, dy, cache, x, p, 0, N, w, &cfg);
			}
			double t = (now() - t0) / 20;
			best[k] = t < best[k] ? t : best[k];
		}
	printf("norm kernels alone, forward + backward, %d rows of d = %d (crmsnorm: %d), 1 thread:\n",
	       N, d, d - 1);
	for (int k = 0; k < V_N; k++)
		printf("  %-10s %8.3f ms  %5.2fx layernorm's time\n", names[k], 1e3 * best[k],
		       best[k] / best[V_LN]);
	free(x);
	free(y);
	free(dy);
	free(dx);
	free(cache);
	free(dp);
}

int main(int argc, char **argv)
{
	int rounds = 5, steps = 3, threads = 1;
	blas_setup(argc, argv);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
			steps = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (int)strtol(argv[++i], NULL, 10);
	}
	if (rounds < 1 || steps < 1 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: bench_crms [--rounds R] [--steps N] [--threads T]\n");
		return 2;
	}
	printf("Pre-LN vs Pre-RMSNorm vs Pre-CRMSNorm (the same function: one model converted); "
	       "%d interleaved rounds of %d steps, best round per row.\n", rounds, steps);
	printf("The paper (Jiang et al. 2023): \"reduce the training and inference time of Pre-LN "
	       "Transformers by up to 10%%\" (NORMS.md §7.2).\n\n");
	bench_model("gpt L=4 d=256 h=4 d_ff=1024 T=128 B=16",
		    "{\"model\":{\"n_layer\":4,\"d_model\":256,\"n_head\":4,\"seq_len\":128},"
		    "\"train\":{\"batch_size\":16}}", threads, rounds, steps);
	bench_model("vit L=4 d=256 h=4 d_ff=1024 patch 4 (T=50) B=40",
		    "{\"model\":{\"arch\":\"vit\",\"n_layer\":4,\"d_model\":256,\"n_head\":4},"
		    "\"train\":{\"batch_size\":40}}", threads, rounds, steps);
	printf("\n");
	bench_kernels(2048, 256, 4 * rounds);
	return 0;
}
