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
	memset(acc, 0, sizeof(real) * (size_t)d);
	const int streaming = norm_streaming(t0, t1, d);
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
		real *restrict dx = dinp + (size_t)t * d;
		const real r = cache[t];
		double mhx = 0;
		/* streaming, the first pass also fetches dx ahead for the second */
		if (!streaming)
			norm_rms_bwd_sums(acc, x, dy, g, r, 0, d, &mhx);
		else
			for (int i0 = 0; i0 < d; i0 += NORM_CHUNK) {
				norm_prefetch(x, dy, dx, i0);
				norm_rms_bwd_sums(acc, x, dy, g, r, i0,
					     norm_span_end(i0, NORM_CHUNK, d), &mhx);
			}
		const real m = (real)(mhx / d);
		const real *restrict xr = x, *restrict dyr = dy;
#pragma omp simd
		for (int i = 0; i < d; i++)
			dx[i] += r * (dyr[i] * g[i] - xr[i] * r * m);
		if (norm_block_end(t, t0, t1))
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
