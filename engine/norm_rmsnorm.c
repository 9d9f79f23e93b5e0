/*
 * norm_rmsnorm.c — RMSNorm (NORMS.md §1.2): y = γ ⊙ x/√(mean(x²)+ε), γ=1, no β (LLaMA style).
 * Cache per token: r = 1/√(q+ε). The reduction accumulates in double.
 */
#include <tgmath.h>

#include "norm.h"

static void rms_forward(real *out, real *cache, const real *inp, const real *p,
			int t0, int t1, int d, const struct norm_cfg *cfg)
{
	const real *g = p;
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d;
		real *y = out + (size_t)t * d;
		double q = 0;
		for (int i = 0; i < d; i++)
			q += (double)x[i] * x[i];
		real r = (real)(1.0 / sqrt(q / d + cfg->eps));
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
	const real *g = p;
	double *dg = dp;
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
		real *dx = dinp + (size_t)t * d;
		real r = cache[t];
		double mhx = 0;
		for (int i = 0; i < d; i++) {
			real xh = x[i] * r;
			mhx += (double)dy[i] * g[i] * xh;
			dg[i] += (double)dy[i] * xh;
		}
		real m = (real)(mhx / d);
		for (int i = 0; i < d; i++)
			dx[i] += r * (dy[i] * g[i] - x[i] * r * m);
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
