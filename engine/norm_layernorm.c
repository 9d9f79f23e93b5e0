/*
 * norm_layernorm.c — LayerNorm (NORMS.md §1.1): y = γ ⊙ (x−μ)/√(σ²+ε) + β, γ=1, β=0 at init.
 * Mean/variance in one pass over x − x[0] (plain E[x²]−μ² loses precision when |μ| ≫ σ,
 * which the Pre-LN residual stream reaches late in training; shifting by a sample of the row
 * removes that), summed in `real` across SIMD lanes. Cache per token: μ and r = 1/√(σ²+ε).
 * Every row loop is a declared SIMD loop over restrict rows, so the sums vectorize without
 * -ffast-math (their order is fixed for a build). The backward's row sums are double; γ and β
 * gradients sum in row blocks, and large backwards prefetch (both in norm.h).
 */
#include <string.h>
#include <tgmath.h>

#include "norm.h"

static void ln_forward(real *out, real *cache, const real *inp, const real *p,
		       int t0, int t1, int d, const struct norm_cfg *cfg)
{
	const real *restrict g = p, *restrict b = p + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
		/* one pass over x - K with K = x[0], a sample of the row (the shifted-data form):
		 * Σ(x−K) and Σ(x−K)² cancel only when |μ − K| ≫ σ, which a sample of the row is not,
		 * and the two sums run side by side instead of in two dependent passes */
		const real K = x[0];
		real s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
		for (int i = 0; i < d; i++) {
			real c = x[i] - K;
			s += c;
			q += c * c;
		}
		const double ms = (double)s / d;
		double var = (double)q / d - ms * ms;
		var = var > 0 ? var : 0;
		const real mu = (real)(K + ms);
		const real r = (real)(1.0 / sqrt(var + cfg->eps));
		/* the row is in L1 by now: the third pass costs no memory traffic */
#pragma omp simd
		for (int i = 0; i < d; i++)
			y[i] = (x[i] - mu) * r * g[i] + b[i];
		cache[2 * t] = mu;
		cache[2 * t + 1] = r;
	}
}

/* First pass over columns [i0, i1) of one row: the γ/β block sums, and the row sums of
 * h = dy·γ and h·x̂ into *mh, *mhx. */
static inline void ln_bwd_sums(real *restrict ag, real *restrict ab, const real *restrict x,
			       const real *restrict dy, const real *restrict g, real mu, real r,
			       int i0, int i1, double *mh_out, double *mhx_out)
{
	double mh = 0, mhx = 0;
#pragma omp simd reduction(+ : mh, mhx)
	for (int i = i0; i < i1; i++) {
		real xh = (x[i] - mu) * r;
		real h = dy[i] * g[i];
		mh += h;
		mhx += (double)(h * xh);
		ag[i] += dy[i] * xh;
		ab[i] += dy[i];
	}
	*mh_out += mh;
	*mhx_out += mhx;
}

static void ln_backward(real *dinp, double *dp, const real *dout, const real *cache,
			const real *inp, const real *p, int t0, int t1, int d,
			const struct norm_cfg *cfg)
{
	(void)cfg;
	const real *restrict g = p;
	real acc[2 * NORM_MAX_D];   /* γ then β sums over the current block of rows */
	real *ag = acc, *ab = acc + d;
	memset(acc, 0, sizeof(real) * 2 * (size_t)d);
	const int streaming = norm_streaming(t0, t1, d);
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
		real *restrict dx = dinp + (size_t)t * d;
		const real mu = cache[2 * t], r = cache[2 * t + 1];
		double mh = 0, mhx = 0;
		/* streaming, the first pass also fetches dx ahead for the second */
		if (!streaming)
			ln_bwd_sums(ag, ab, x, dy, g, mu, r, 0, d, &mh, &mhx);
		else
			for (int i0 = 0; i0 < d; i0 += NORM_CHUNK) {
				norm_prefetch(x, dy, dx, i0);
				ln_bwd_sums(ag, ab, x, dy, g, mu, r, i0,
					    norm_span_end(i0, NORM_CHUNK, d), &mh, &mhx);
			}
		const real a = (real)(mh / d), c = (real)(mhx / d);
		const real *restrict xr = x, *restrict dyr = dy;
#pragma omp simd
		for (int i = 0; i < d; i++) {
			real xh = (xr[i] - mu) * r;
			dx[i] += r * (dyr[i] * g[i] - a - xh * c);
		}
		if (norm_block_end(t, t0, t1))
			norm_flush(dp, acc, 2 * d);
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
