/*
 * norm_layernorm.c — LayerNorm (NORMS.md §1.1): y = γ ⊙ (x−μ)/√(σ²+ε) + β, γ=1, β=0 at init.
 * Two-pass mean/variance in double (one-pass E[x²]−μ² loses precision when |μ| ≫ σ, which the
 * Pre-LN residual stream reaches late in training). Cache per token: μ and r = 1/√(σ²+ε).
 * Every row loop is a declared SIMD loop over restrict rows, so the double sums vectorize
 * without -ffast-math (their order is fixed for a build); products are formed in `real` and
 * widened once, as in the other kernels.
 */
#include <tgmath.h>

#include "norm.h"

static void ln_forward(real *out, real *cache, const real *inp, const real *p,
		       int t0, int t1, int d, const struct norm_cfg *cfg)
{
	const real *restrict g = p, *restrict b = p + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
		double s = 0, v = 0;
#pragma omp simd reduction(+ : s)
		for (int i = 0; i < d; i++)
			s += x[i];
		const double mu = s / d;
#pragma omp simd reduction(+ : v)
		for (int i = 0; i < d; i++) {
			double c = x[i] - mu;
			v += c * c;
		}
		const double r = 1.0 / sqrt(v / d + cfg->eps);
		/* the row is in L1 by now: the third pass costs no memory traffic */
		const real mur = (real)mu, rr = (real)r;
#pragma omp simd
		for (int i = 0; i < d; i++)
			y[i] = (x[i] - mur) * rr * g[i] + b[i];
		cache[2 * t] = mur;
		cache[2 * t + 1] = rr;
	}
}

static void ln_backward(real *dinp, double *dp, const real *dout, const real *cache,
			const real *inp, const real *p, int t0, int t1, int d,
			const struct norm_cfg *cfg)
{
	(void)cfg;
	const real *restrict g = p;
	double *restrict dg = dp, *restrict db = dp + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d, *restrict dy = dout + (size_t)t * d;
		real *restrict dx = dinp + (size_t)t * d;
		const real mu = cache[2 * t], r = cache[2 * t + 1];
		double mh = 0, mhx = 0;
#pragma omp simd reduction(+ : mh, mhx)
		for (int i = 0; i < d; i++) {
			real xh = (x[i] - mu) * r;
			real h = dy[i] * g[i];
			mh += h;
			mhx += (double)(h * xh);
			dg[i] += (double)(dy[i] * xh);
			db[i] += dy[i];
		}
		const real a = (real)(mh / d), c = (real)(mhx / d);
#pragma omp simd
		for (int i = 0; i < d; i++) {
			real xh = (x[i] - mu) * r;
			dx[i] += r * (dy[i] * g[i] - a - xh * c);
		}
	}
}

static real ln_pre_affine(const real *x, const real *cache_row, const real *p, int d, int c)
{
	(void)p;
	(void)d;
	return (x[c] - cache_row[0]) * cache_row[1];
}

const struct norm_kind norm_layernorm = {
	.name = "layernorm",
	.default_eps = 1e-5,
	.wants_embed_scale = 0,
	.n_tensors = 2,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
		{ "bias", NORM_SHAPE_D, NORM_INIT_ZERO },
	},
	.cache_per_token = 2,
	.forward = ln_forward,
	.backward = ln_backward,
	.pre_affine = ln_pre_affine,
	.saturated = NULL,
};
