/*
 * norm_dyt.c — Dynamic Tanh (NORMS.md §2): y = γ ⊙ tanh(α·x) + β; α scalar (init α0 per site),
 * γ=1, β=0. No reduction in the forward; nothing cached (tanh is recomputed in backward).
 * ∂L/∂α sums each row in a declared SIMD reduction (vectorized without -ffast-math; the order
 * is fixed for a build) and the rows in double; γ and β gradients sum in row blocks (norm.h).
 * Rows are read through restrict pointers: out, inp and the parameters never overlap.
 */
#include <string.h>
#include <tgmath.h>

#include "fastmath.h"
#include "norm.h"

static void dyt_forward(real *out, real *cache, const real *inp, const real *p,
			int t0, int t1, int d, const struct norm_cfg *cfg)
{
	(void)cache;
	(void)cfg;
	const real *g = p, *b = p + d;
	const real a = p[2 * d];
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
#pragma omp simd
		for (int i = 0; i < d; i++)
			y[i] = g[i] * nl_tanh(a * x[i]) + b[i];
	}
}

/* Columns [i0, i1) of one row: dx, the γ/β block sums; returns the row's part of ∂L/∂α. */
static inline double dyt_bwd_cols(real *restrict dx, real *restrict ag, real *restrict ab,
				  const real *restrict x, const real *restrict dy,
				  const real *restrict g, real a, int i0, int i1)
{
	/* ∂L/∂α sums terms that cancel (x changes sign across a row): in float, a row of 64 lost
	 * 1e-4 of the sum against the double reference (test_reference), so it sums in double */
	double dar = 0;
#pragma omp simd reduction(+ : dar)
	for (int i = i0; i < i1; i++) {
		real z = a * x[i];
		real th = nl_tanh(z);
		/* tanh' = sech²(z) = 4q/(1+q)², q = e^{-2|z|}: accurate in relative terms where DyT
		 * saturates. 1 − th² from an approximate th (5e-7 absolute) had a relative error of
		 * 5e-3 at th = 0.9999, and put saturated runs' gradients 2e-2 off (test_reference). */
		real q = nl_exp_neg(2 * fabs(z));
		real k = dy[i] * g[i] * (4 * q / ((1 + q) * (1 + q)));
		dx[i] += k * a;
		real kx = k * x[i];
		dar += (double)kx;
		ag[i] += dy[i] * th;
		ab[i] += dy[i];
	}
	return dar;
}

static void dyt_backward(real *dinp, double *dp, const real *dout, const real *cache,
			 const real *inp, const real *p, int t0, int t1, int d,
			 const struct norm_cfg *cfg)
{
	(void)cache;
	(void)cfg;
	const real *g = p;
	const real a = p[2 * d];
	real acc[2 * NORM_MAX_D];   /* γ then β sums over the current block of rows */
	real *ag = acc, *ab = acc + d;
	memset(acc, 0, sizeof(real) * 2 * (size_t)d);
	const int streaming = norm_streaming(t0, t1, d);
	double da = 0;
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
		real *dx = dinp + (size_t)t * d;
		if (!streaming) {
			da += dyt_bwd_cols(dx, ag, ab, x, dy, g, a, 0, d);
		} else {
			double dar = 0;
			for (int i0 = 0; i0 < d; i0 += NORM_CHUNK) {
				norm_prefetch(x, dy, dx, i0);
				dar += dyt_bwd_cols(dx, ag, ab, x, dy, g, a, i0,
						    norm_span_end(i0, NORM_CHUNK, d));
			}
			da += dar;
		}
		if (norm_block_end(t, t0, t1))
			norm_flush(dp, acc, 2 * d);
	}
	dp[2 * d] += da;
}

static real dyt_pre_affine(const real *x, const real *cache_row, const real *p, int d, int c)
{
	(void)cache_row;
	return nl_tanh(p[2 * d] * x[c]);
}

static int dyt_saturated(real x, const real *p, int d)
{
	return fabs(p[2 * d] * x) > 2;
}

const struct norm_kind norm_dyt = {
	.name = "dyt",
	.default_eps = 1e-5,   /* unused: DyT has no ε; kept so every kind resolves one */
	.wants_embed_scale = 1,
	.n_tensors = 3,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
		{ "bias", NORM_SHAPE_D, NORM_INIT_ZERO },
		{ "alpha", NORM_SHAPE_SCALAR, NORM_INIT_ALPHA0 },
	},
	.cache_per_token = 0,
	.forward = dyt_forward,
	.backward = dyt_backward,
	.pre_affine = dyt_pre_affine,
	.saturated = dyt_saturated,
};
