/*
 * norm_batchnorm.c — BatchNorm over tokens (NORMS.md §10), PyTorch's semantics: per channel c,
 * over all N = B·T rows of the batch, μ_B and the biased σ²_B normalize in training; the running
 * mean and the *unbiased* running variance (σ²_B·N/(N−1)) move by momentum m = 0.1 toward them;
 * evaluation normalizes with the running statistics. ε 1e-5, γ = 1, β = 0 at init.
 * The exact backward couples rows through the batch statistics:
 *   ∂L/∂x = γ r (g − mean(g) − x̂ · mean(g ⊙ x̂)),  ∂L/∂γ = Σ g ⊙ x̂,  ∂L/∂β = Σ g
 * (after an EVAL forward the statistics are constants: ∂L/∂x = γ r g).
 * Sums are double: Σ(x−K) and Σ(x−K)² with K the channel's value in row 0 (the shifted-data form,
 * as LayerNorm: it keeps E[x²]−μ² from cancelling when |μ| ≫ σ).
 * chan: μ [d], r [d], mean(g) [d], mean(g·x̂) [d]; scalars: batch-statistics flag, the two
 * fluctuation probes. Passes are pure over their rows (norm.h).
 */
#include <string.h>
#include <tgmath.h>

#include "norm.h"

enum { CH_MU, CH_R, CH_A, CH_B, CH_N };
enum { SC_BATCH, SC_FLUCT_MEAN, SC_FLUCT_VAR, SC_N };

static real *chan_at(const struct norm_batch *b, int which)
{
	return b->chan + (size_t)which * b->d;
}

static void bn_fwd_stats(double *part, const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict K = b->inp;   /* row 0 */
	double *restrict s1 = part, *restrict s2 = part + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++) {
			double v = (double)x[c] - (double)K[c];
			s1[c] += v;
			s2[c] += v * v;
		}
	}
}

static void bn_fwd_finish(const struct norm_batch *b, const double *sum)
{
	const int d = b->d, N = b->N;
	const struct norm_cfg *cfg = b->cfg;
	real *mu = chan_at(b, CH_MU), *r = chan_at(b, CH_R);
	real *sc = b->chan + (size_t)CH_N * d;
	real *rm = b->buf, *rv = b->buf + d;
	if (!sum) {   /* EVAL: the running statistics */
		for (int c = 0; c < d; c++) {
			mu[c] = rm[c];
			r[c] = (real)(1.0 / sqrt((double)rv[c] + cfg->eps));
		}
		sc[SC_BATCH] = 0;
		return;
	}
	const double m = cfg->momentum, unb = N > 1 ? (double)N / (N - 1) : 1.0;
	double fm = 0, fv = 0;
	for (int c = 0; c < d; c++) {
		double ms = sum[c] / N;
		double var = sum[d + c] / N - ms * ms;
		var = var > 0 ? var : 0;
		double mean = (double)b->inp[c] + ms;
		mu[c] = (real)mean;
		r[c] = (real)(1.0 / sqrt(var + cfg->eps));
		double dm = mean - rm[c], dv = var * unb - rv[c];
		fm += dm * dm;
		fv += dv * dv;
		if (b->mode == NORM_MODE_TRAIN) {
			rm[c] = (real)((1 - m) * rm[c] + m * mean);
			rv[c] = (real)((1 - m) * rv[c] + m * var * unb);
		}
	}
	sc[SC_BATCH] = 1;
	sc[SC_FLUCT_MEAN] = (real)(sqrt(fm) / d);
	sc[SC_FLUCT_VAR] = (real)(sqrt(fv) / d);
}

static void bn_fwd_apply(const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict g = b->p, *restrict be = b->p + d;
	const real *restrict mu = chan_at(b, CH_MU), *restrict r = chan_at(b, CH_R);
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d;
		real *restrict y = b->out + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++)
			y[c] = (x[c] - mu[c]) * r[c] * g[c] + be[c];
	}
}

static void bn_bwd_stats(double *part, const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict mu = chan_at(b, CH_MU), *restrict r = chan_at(b, CH_R);
	double *restrict sg = part, *restrict sgx = part + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d, *restrict dy = b->dout + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++) {
			real xh = (x[c] - mu[c]) * r[c];
			sg[c] += dy[c];
			sgx[c] += (double)(dy[c] * xh);
		}
	}
}

static void bn_bwd_finish(const struct norm_batch *b, const double *sum)
{
	const int d = b->d, N = b->N;
	real *a = chan_at(b, CH_A), *bb = chan_at(b, CH_B);
	int batch = b->chan[(size_t)CH_N * d + SC_BATCH] != 0;
	for (int c = 0; c < d; c++) {
		b->dparam[c] += (real)sum[d + c];   /* γ */
		b->dparam[d + c] += (real)sum[c];   /* β */
		a[c] = batch ? (real)(sum[c] / N) : 0;
		bb[c] = batch ? (real)(sum[d + c] / N) : 0;
	}
}

static void bn_bwd_apply(const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict g = b->p;
	const real *restrict mu = chan_at(b, CH_MU), *restrict r = chan_at(b, CH_R);
	const real *restrict a = chan_at(b, CH_A), *restrict bb = chan_at(b, CH_B);
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d, *restrict dy = b->dout + (size_t)t * d;
		real *restrict dx = b->dinp + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++) {
			real xh = (x[c] - mu[c]) * r[c];
			dx[c] += g[c] * r[c] * (dy[c] - a[c] - xh * bb[c]);
		}
	}
}

static real bn_pre_affine(const real *x, const real *chan, const real *p, int d, int c)
{
	(void)p;
	return (x[c] - chan[(size_t)CH_MU * d + c]) * chan[(size_t)CH_R * d + c];
}

static void bn_probe(double *v, const real *chan, const real *buf, int d,
		     const struct norm_cfg *cfg)
{
	(void)buf;
	(void)cfg;
	const real *sc = chan + (size_t)CH_N * d;
	v[0] = sc[SC_FLUCT_MEAN];
	v[1] = sc[SC_FLUCT_VAR];
}

static const struct norm_batch_ops bn_ops = {
	.n_fwd_stats = 2,
	.n_bwd_stats = 2,
	.fwd_stats = bn_fwd_stats,
	.fwd_finish = bn_fwd_finish,
	.fwd_apply = bn_fwd_apply,
	.bwd_stats = bn_bwd_stats,
	.bwd_finish = bn_bwd_finish,
	.bwd_apply = bn_bwd_apply,
};

const struct norm_kind norm_batchnorm = {
	.name = "batchnorm",
	.default_eps = 1e-5,
	.wants_embed_scale = 0,
	.n_tensors = 2,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
		{ "bias", NORM_SHAPE_D, NORM_INIT_ZERO },
	},
	.cache_per_token = 0,
	.pre_affine = bn_pre_affine,
	.n_buffers = 2,
	.buffers = {
		{ "running_mean", NORM_BUF_D, 0.0 },
		{ "running_var", NORM_BUF_D, 1.0 },
	},
	.batch = &bn_ops,
	.chan_per_channel = CH_N,
	.chan_scalars = SC_N,
	.hparams = { "norm.momentum" },
	.n_probes = 2,
	.probe_names = { "fluct_mean", "fluct_var" },
	.probe = bn_probe,
};
