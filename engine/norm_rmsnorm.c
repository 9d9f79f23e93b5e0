/*
 * norm_rmsnorm.c — RMSNorm (NORMS.md §1.2): y = γ ⊙ x/√(mean(x²)+ε), γ=1, no β (LLaMA style).
 * Cache per token: r = 1/√(q+ε). The reductions accumulate in double, in declared SIMD loops
 * over restrict rows (vectorized without -ffast-math; the order is fixed for a build); the γ
 * gradient sums in row blocks (norm.h).
 */
#include <string.h>
#include <tgmath.h>

#include "norm.h"

static void rms_forward(real *out, real *cache, const real *inp, const real *p,
			int t0, int t1, int d, const struct norm_cfg *cfg)
{
	const real *restrict g = p;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
		double q = 0;
#pragma omp simd reduction(+ : q)
		for (int i = 0; i < d; i++)
			q += (double)(x[i] * x[i]);
		const real r = (real)(1.0 / sqrt(q / d + cfg->eps));
#pragma omp simd
		for (int i = 0; i < d; i++)
			y[i] = x[i] * r * g[i];
		cache[t] = r;
	}
}

static void rms_backward(real *dinp, double *dp, const real *dout, const real *cache,
			 const real *inp, const real *p, int t0, int t1, int d,
			 const struct norm_cfg *cfg)
{
	(void)cfg;
	const real *restrict g = p;
	real acc[NORM_MAX_D];   /* γ sums over the current block of rows */
	real *restrict ag = acc;
	memset(acc, 0, sizeof(real) * (size_t)d);
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d, *restrict dy = dout + (size_t)t * d;
		real *restrict dx = dinp + (size_t)t * d;
		const real r = cache[t];
		double mhx = 0;
#pragma omp simd reduction(+ : mhx)
		for (int i = 0; i < d; i++) {
			real dxh = dy[i] * (x[i] * r);
			mhx += (double)(dxh * g[i]);
			ag[i] += dxh;
		}
		const real m = (real)(mhx / d);
#pragma omp simd
		for (int i = 0; i < d; i++)
			dx[i] += r * (dy[i] * g[i] - x[i] * r * m);
		if ((t - t0) % NORM_ROW_BLOCK == NORM_ROW_BLOCK - 1 || t == t1 - 1)
			norm_flush(dp, acc, d);
	}
}

static real rms_pre_affine(const real *x, const real *cache_row, const real *p, int d, int c)
{
	(void)p;
	(void)d;
	return x[c] * cache_row[0];
}

const struct norm_kind norm_rmsnorm = {
	.name = "rmsnorm",
	.default_eps = 1e-6,
	.wants_embed_scale = 0,
	.n_tensors = 1,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
	},
	.cache_per_token = 1,
	.forward = rms_forward,
	.backward = rms_backward,
	.pre_affine = rms_pre_affine,
	.saturated = NULL,
};
