/*
 * norm_layernorm.c — LayerNorm (NORMS.md §1.1): y = γ ⊙ (x−μ)/√(σ²+ε) + β, γ=1, β=0 at init.
 * Two-pass mean/variance in double (one-pass E[x²]−μ² loses precision when |μ| ≫ σ, which the
 * Pre-LN residual stream reaches late in training). Cache per token: μ and r = 1/√(σ²+ε).
 */
#include <tgmath.h>

#include "norm.h"

static void ln_forward(real *out, real *cache, const real *inp, const real *p,
		       int t0, int t1, int d, const struct norm_cfg *cfg)
{
	const real *g = p, *b = p + d;
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d;
		real *y = out + (size_t)t * d;
		double s = 0, v = 0;
		for (int i = 0; i < d; i++)
			s += x[i];
		double mu = s / d;
		for (int i = 0; i < d; i++) {
			double c = x[i] - mu;
			v += c * c;
		}
		double r = 1.0 / sqrt(v / d + cfg->eps);
		for (int i = 0; i < d; i++)
			y[i] = (real)((x[i] - mu) * r) * g[i] + b[i];
		cache[2 * t] = (real)mu;
		cache[2 * t + 1] = (real)r;
	}
}

static void ln_backward(real *dinp, double *dp, const real *dout, const real *cache,
			const real *inp, const real *p, int t0, int t1, int d,
			const struct norm_cfg *cfg)
{
	(void)cfg;
	const real *g = p;
	double *dg = dp, *db = dp + d;
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
		real *dx = dinp + (size_t)t * d;
		real mu = cache[2 * t], r = cache[2 * t + 1];
		double mh = 0, mhx = 0;
		for (int i = 0; i < d; i++) {
			real xh = (x[i] - mu) * r;
			real h = dy[i] * g[i];
			mh += h;
			mhx += (double)h * xh;
			dg[i] += (double)dy[i] * xh;
			db[i] += dy[i];
		}
		mh /= d;
		mhx /= d;
		for (int i = 0; i < d; i++) {
			real xh = (x[i] - mu) * r;
			dx[i] += r * (dy[i] * g[i] - (real)mh - xh * (real)mhx);
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
