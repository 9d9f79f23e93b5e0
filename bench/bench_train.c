/*
 * bench_train — training throughput of the engine, with its peers measured in the same run:
 *   - the machine's FMA peak (independent 16-wide fused multiply-adds on every thread: no
 *     float program can go faster) and the sgemm rate at the GPT's shapes on 1 and 2 threads
 *     (the roofline the model FLOP/s is compared with), for the kernels normlab makes OpenBLAS
 *     use and, in a child process, for the kernels OpenBLAS would have picked by itself;
 *   - tokens/s and model FLOP/s for a fixed size (L=4, d=256): gpt (T=128, B=16) with layernorm,
 *     rmsnorm, dyt, derf; llama with rmsnorm; vit (T=50 tokens per image, B=40) with layernorm;
 *     on 1 and 2 threads, and where a step's time goes (matmul, attention, norm, other). The
 *     rows are timed in interleaved rounds and each keeps its best round, so a slow minute on
 *     this shared machine does not land on one row alone;
 *   - what the probes cost at their default intervals.
 * Prints figures and ratios; asserts nothing about time.
 *   bench_train [--steps N] [--rounds R] [--sgemm-only]
 *   bench_train --ceiling   prints "fma1 fma2 flops_per_token(L=4) flops_per_token(L=8)" for
 *                           bench/bench_peer.sh
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blas.h"
#include "data.h"
#include "norm.h"
#include "pool.h"
#include "spec.h"
#include "train.h"

struct gemm_ctx {
	const float *a, *b;
	float *c;
	int M, N, K;
};

static void gemm_part(void *ctx, int ith, int nth)
{
	struct gemm_ctx *g = ctx;
	int r0, r1;
	pool_split(g->M, ith, nth, &r0, &r1);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, g->N, g->K, 1,
		    g->a + (size_t)r0 * g->K, g->K, g->b, g->K, 0, g->c + (size_t)r0 * g->N, g->N);
}

/* 16 floats: one AVX-512 register with -march=native on this machine (two AVX2 ones elsewhere) */
typedef float v16f __attribute__((vector_size(64)));

struct fma_ctx {
	long iters;
	float sink[POOL_MAX_THREADS];
};

/* 12 independent multiply-add chains: enough to cover the FMA latency on two pipes */
static void fma_part(void *ctx, int ith, int nth)
{
	struct fma_ctx *f = ctx;
	(void)nth;
	const v16f b = (v16f){ 0 } + 0.999999f, c = (v16f){ 0 } + 1e-7f;
	v16f a0 = (v16f){ 0 } + 0.f, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5;
	v16f a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11;
	for (long k = 0; k < f->iters; k++) {
		a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c;
		a4 = a4 * b + c; a5 = a5 * b + c; a6 = a6 * b + c; a7 = a7 * b + c;
		a8 = a8 * b + c; a9 = a9 * b + c; a10 = a10 * b + c; a11 = a11 * b + c;
	}
	v16f t = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
	float sum = 0;
	for (int i = 0; i < 16; i++)
		sum += t[i];
	f->sink[ith] = sum;
}

/* GFLOP/s of fused multiply-adds on nth threads at once: best of 15 runs of ~20 ms (a run that
 * shares a core with anything else reads low, and the peak is a ceiling). */
static double fma_peak(int nth)
{
	struct pool *p;
	if (pool_new(&p, nth))
		return 0;
	struct fma_ctx f = { .iters = 10000000 };
	double best = 0;
	for (int r = 0; r < 15; r++) {
		double t0 = nl_now();
		pool_run(p, fma_part, &f);
		double dt = nl_now() - t0;
		double rate = 2.0 * 16 * 12 * (double)f.iters * nth / dt / 1e9;
		best = rate > best ? rate : best;
	}
	pool_free(p);
	return best;
}

/* GFLOP/s of out[2048,N] = in[2048,K]·W[N,K]ᵀ over the d=256 GPT's projection shapes. */
static double sgemm_rate(int nth)
{
	static const int shapes[][2] = { { 768, 256 }, { 256, 256 }, { 1024, 256 }, { 256, 1024 } };
	const int M = 16 * 128;
	struct pool *p;
	double flops = 0, secs = 0;
	if (pool_new(&p, nth))
		return 0;
	float *a = calloc((size_t)M * 1024, sizeof(float)), *b = calloc(1024 * 1024, sizeof(float));
	float *c = calloc((size_t)M * 1024, sizeof(float));
	for (size_t i = 0; i < (size_t)M * 1024; i++)
		a[i] = (float)((i * 7919) % 1000) * 1e-3f;
	for (size_t i = 0; i < 1024 * 1024; i++)
		b[i] = (float)((i * 104729) % 1000) * 1e-3f;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		struct gemm_ctx g = { a, b, c, M, shapes[s][0], shapes[s][1] };
		pool_run(p, gemm_part, &g);   /* warm */
		int reps = 30;
		double t0 = nl_now();
		for (int r = 0; r < reps; r++)
			pool_run(p, gemm_part, &g);
		secs += nl_now() - t0;
		flops += 2.0 * M * g.N * g.K * reps;
	}
	free(a);
	free(b);
	free(c);
	pool_free(p);
	return flops / secs / 1e9;
}

/* Runs this program again with OpenBLAS left to its own choice; returns its 1-thread rate. */
static double sgemm_rate_openblas_default(char *core, size_t cap)
{
	char self[512], cmd[1200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	const char *orig = getenv("NORMLAB_BLAS_REEXEC");   /* what OpenBLAS had picked */
	double rate = 0;
	if (n <= 0 || !orig)
		return 0;
	self[n] = '\0';
	/* orig is "Haswell" or "Haswell via OPENBLAS_CORETYPE=Haswell": the first word is the core */
	snprintf(core, cap, "%s", orig);
	char *sp = strchr(core, ' ');
	if (sp)
		*sp = '\0';
	snprintf(cmd, sizeof cmd, "NORMLAB_BLAS=keep OPENBLAS_CORETYPE=%s '%s' --sgemm-only", core, self);
	FILE *f = popen(cmd, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lf", &rate) != 1)
		rate = 0;
	pclose(f);
	return rate;
}

static int write_corpus(const char *path)
{
	/* the default corpus when it is there; otherwise bytes of our own (speed does not depend
	 * on the text) */
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	for (int i = 0; i < 400000; i++)
		fputc("abcdefghij klmnopqrstuvwxyz\n"[(i * 2654435761u) % 28], f);
	return fclose(f);
}

static const char *corpus_path(char *buf, size_t cap)
{
	const char *dd = getenv("NORMLAB_DATA_DIR");
	snprintf(buf, cap, "%s/kjv.txt", dd ? dd : "var/data");
	if (access(buf, R_OK) == 0)
		return buf;
	snprintf(buf, cap, "/tmp/normlab_bench_corpus.txt");
	return write_corpus(buf) == 0 ? buf : NULL;
}

static void bench_spec(struct spec *s, const char *arch, const char *norm, int threads, long steps)
{
	spec_defaults(s);
	nl_strlcpy(s->model.arch, arch, sizeof s->model.arch);
	s->model.n_layer = 4;
	s->model.d_model = 256;
	s->model.n_head = 4;
	s->model.d_ff = 1024;
	s->model.seq_len = 128;
	s->train.batch_size = 16;
	s->train.steps = steps + 1000;   /* never the last step: no end-of-run probes in the timing */
	s->norm.type = norm_find(norm);
	s->norm.eps = norm_table[s->norm.type]->default_eps;
	s->norm.embed_scale = norm_table[s->norm.type]->wants_embed_scale;
	if (strcmp(arch, "llama") == 0) {
		/* llama's defaults: SwiGLU at the multiple of 64 ≥ 8d/3, no biases, untied head */
		s->model.d_ff = 704;
		s->model.bias = 0;
		s->model.tie_head = 0;
	} else if (strcmp(arch, "vit") == 0) {
		/* 49 patches + cls: 40 images make 2000 rows, close to the LMs' 2048 */
		nl_strlcpy(s->data.source, "fashion-mnist", sizeof s->data.source);
		s->train.batch_size = 40;
		s->norm.embed_scale = 0;
		s->norm.alpha_attn = s->norm.alpha_ffn = s->norm.alpha_final = 0.5;
	}
	s->probe.every = 1000000000;
	s->probe.depth_every = 1000000000;
	s->probe.samples_every = 1000000000;
	s->probe.val_every = 1000000000;
	s->threads = threads;
}

/* Probes compute everything and hand it here; the bench only times them. */
static void drop_scalar(void *ctx, long step, const char *name, double v)
{
	(void)ctx; (void)step; (void)name; (void)v;
}

static void drop_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	(void)ctx; (void)step; (void)name; (void)v; (void)n;
}

static void drop_samples(void *ctx, long step, const char *site, const float *x, const float *y,
			 const int *tok, const int *chan, int n)
{
	(void)ctx; (void)step; (void)site; (void)x; (void)y; (void)tok; (void)chan; (void)n;
}

static const struct train_sink drop = { NULL, drop_scalar, drop_depth, drop_samples };

/* The architecture's count: 6 FLOPs per matmul weight per token, plus attention's 12·L·T·C. */
static double model_flops_per_token(const struct trainer *t)
{
	const struct model_layout *lay = &t->model.lay;
	return lay->arch->flops_per_row(lay);
}

/* Model FLOPs per token of bench_spec's GPT with n_layer layers (see model_flops_per_token). */
static double flops_per_token_for(const char *path, int n_layer)
{
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	bench_spec(&s, "gpt", "layernorm", 1, 1);
	s.model.n_layer = n_layer;
	if (trainer_init(&t, &s, path, &err))
		return 0;
	double f = model_flops_per_token(&t);
	trainer_free(&t);
	return f;
}

int main(int argc, char **argv)
{
	long steps = 20;
	int rounds = 3, sgemm_only = 0, ceiling = 0;
	blas_setup(argc, argv);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
			steps = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--sgemm-only") == 0)
			sgemm_only = 1;
		else if (strcmp(argv[i], "--ceiling") == 0)
			ceiling = 1;
	}
	if (sgemm_only) {
		printf("%.1f\n", sgemm_rate(1));
		return 0;
	}
	char blas[512], core[96] = "", cbuf[512];
	const char *path = corpus_path(cbuf, sizeof cbuf);
	if (!path) {
		fprintf(stderr, "bench: no corpus\n");
		return 1;
	}
	if (ceiling) {
		pool_thread_ftz();
		printf("%.1f %.1f %.0f %.0f\n", fma_peak(1), fma_peak(2), flops_per_token_for(path, 4),
		       flops_per_token_for(path, 8));
		return 0;
	}
	blas_describe(blas, sizeof blas);
	printf("normlab bench: L=4 d=256 h=4; gpt d_ff=1024 T=128 B=16 (bytes); llama SwiGLU d_ff=704 "
	       "T=128 B=16; vit d_ff=1024, 4x4 patches (T=50) B=40\n");
	printf("BLAS: %s\n\n", blas);
	double fma1 = fma_peak(1), fma2 = fma_peak(2);
	double peak1 = sgemm_rate(1), peak2 = sgemm_rate(2);
	double def1 = sgemm_rate_openblas_default(core, sizeof core);
	printf("FMA peak (16-wide fused multiply-adds, nothing else): %.1f GFLOP/s on 1 thread, %.1f on 2\n",
	       fma1, fma2);
	printf("sgemm at the model's shapes ([2048,K]·[N,K]ᵀ): %.1f GFLOP/s on 1 thread (%.0f%% of FMA "
	       "peak), %.1f on 2 (%.0f%%; %.2fx)\n", peak1, 100 * peak1 / fma1, peak2, 100 * peak2 / fma2,
	       peak2 / peak1);
	if (def1 > 0)
		printf("  with the %s kernels OpenBLAS picked by itself: %.1f GFLOP/s on 1 thread; "
		       "normlab's choice is %.2fx faster\n", core, def1, peak1 / def1);
	printf("\n");

	static const char *const archs[] = { "gpt", "gpt", "gpt", "gpt", "llama", "vit" };
	static const char *const norms[] = { "layernorm", "rmsnorm", "dyt", "derf", "rmsnorm",
					     "layernorm" };
	enum { NK = 6 };
	printf("%d interleaved rounds of %ld steps per norm; each row is its best round\n", rounds, steps);
	printf("%-16s %7s %9s %8s %10s %7s | %7s %9s %6s %6s\n", "arch/norm", "threads", "tok/s", "ms/step",
	       "GFLOP/s", "%peak", "matmul", "attention", "norm", "other");
	double tps_of[NK][2], gf_of[NK][2];
	for (int th = 1; th <= 2; th++) {
		static struct trainer tr[NK];
		struct spec sp[NK];
		double best_dt[NK], ops[NK][MODEL_T_COUNT];
		for (int k = 0; k < NK; k++) {
			struct nl_err err = { 0 };
			bench_spec(&sp[k], archs[k], norms[k], th, steps * rounds + 3);
			if (trainer_init(&tr[k], &sp[k], path, &err)) {
				fprintf(stderr, "bench: %s\n", err.msg);
				return 1;
			}
			for (int w = 0; w < 3; w++)
				trainer_step(&tr[k], NULL, &err);
			tr[k].model.timing = 1;
			best_dt[k] = 1e30;
		}
		for (int r = 0; r < rounds; r++)
			for (int k = 0; k < NK; k++) {
				struct nl_err err = { 0 };
				memset(tr[k].model.t_ops, 0, sizeof tr[k].model.t_ops);
				double t0 = nl_now();
				for (long i = 0; i < steps; i++)
					trainer_step(&tr[k], NULL, &err);
				double dt = nl_now() - t0;
				if (dt < best_dt[k]) {
					best_dt[k] = dt;
					memcpy(ops[k], tr[k].model.t_ops, sizeof ops[k]);
				}
			}
		for (int k = 0; k < NK; k++) {
			double dt = best_dt[k];
			double tps = (double)steps * tr[k].model.lay.N / dt;
			double gf = tps * model_flops_per_token(&tr[k]) / 1e9;
			double timed = 0;
			for (int q = 0; q < MODEL_T_COUNT; q++)
				timed += ops[k][q];
			double other = dt - timed + ops[k][MODEL_T_OTHER];
			tps_of[k][th - 1] = tps;
			gf_of[k][th - 1] = gf;
			char label[32];
			snprintf(label, sizeof label, "%s/%s", archs[k], norms[k]);
			printf("%-16s %7d %9.0f %8.1f %10.1f %6.0f%% | %6.0f%% %8.0f%% %5.0f%% %5.0f%%",
			       label, th, tps, 1e3 * dt / steps, gf, 100 * gf / (th == 1 ? peak1 : peak2),
			       100 * ops[k][MODEL_T_MATMUL] / dt, 100 * ops[k][MODEL_T_ATTENTION] / dt,
			       100 * ops[k][MODEL_T_NORM] / dt, 100 * other / dt);
			if (k > 0 && k < 4)
				printf("  %.2fx layernorm", tps / tps_of[0][th - 1]);
			if (k >= 4)
				printf("  %.0f%% of gpt/layernorm's GFLOP/s", 100 * gf / gf_of[0][th - 1]);
			if (th == 2)
				printf("  %.2fx 1 thread", tps / tps_of[k][0]);
			printf("\n");
			trainer_free(&tr[k]);
		}
	}
	printf("(%%peak: model GFLOP/s against the sgemm rate on the same threads; of the FMA peak "
	       "layernorm reaches %.0f%% on 1 thread, %.0f%% on 2)\n",
	       100 * gf_of[0][0] / fma1, 100 * gf_of[0][1] / fma2);

	/* probe overhead: one of each probe event, amortised over the default intervals */
	struct spec s, d;
	struct trainer t;
	struct nl_err err = { 0 };
	bench_spec(&s, "gpt", "layernorm", 1, steps);
	spec_defaults(&d);
	s.probe = d.probe;
	if (trainer_init(&t, &s, path, &err)) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return 1;
	}
	/* steps 1..N: step 1 runs the depth probe, then plain steps */
	for (long i = 0; i < steps; i++)
		trainer_step(&t, &drop, &err);
	/* one step that also dumps the samples (their interval is longer than this bench) */
	t.spec.probe.samples_every = t.step + 1;
	trainer_step(&t, &drop, &err);
	t.spec.probe.samples_every = d.probe.samples_every;
	double v0 = nl_now();
	trainer_val_loss(&t);
	double t_val = nl_now() - v0;
	double step_s = t.t_step / (double)t.step;
	double depth_s = t.n_depth ? t.t_depth / (double)t.n_depth : 0;
	double samp_s = t.n_samples ? t.t_samples / (double)t.n_samples : 0;
	double amort = depth_s / (double)d.probe.depth_every + samp_s / (double)d.probe.samples_every +
		       t_val / (double)d.probe.val_every;
	printf("\nprobes (layernorm, 1 thread): a step %.1f ms; depth profile %.1f ms every %ld steps, "
	       "samples %.1f ms every %ld, validation %.1f ms every %ld\n", 1e3 * step_s, 1e3 * depth_s,
	       d.probe.depth_every, 1e3 * samp_s, d.probe.samples_every, 1e3 * t_val,
	       d.probe.val_every);
	printf("  overhead at the default intervals: %.2f%% of step time (depth+samples %.2f%%, "
	       "validation %.2f%%)\n", 100 * amort / step_s,
	       100 * (depth_s / (double)d.probe.depth_every + samp_s / (double)d.probe.samples_every) / step_s,
	       100 * t_val / (double)d.probe.val_every / step_s);
	trainer_free(&t);
	return 0;
}
