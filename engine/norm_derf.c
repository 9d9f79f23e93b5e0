/*
 * norm_derf.c — Dynamic erf (NORMS.md §3): y = γ ⊙ erf(α·x + s) + β; α, s scalars (init α0 per
 * site and s0), γ=1, β=0. No reduction in the forward; nothing cached. ∂L/∂α and ∂L/∂s sum
 * each row in declared SIMD reductions (vectorized without -ffast-math; the summation order is
 * fixed for a given build) and the rows in double; γ and β gradients sum in row blocks (norm.h).
 * Rows are read through restrict pointers: out, inp and the parameters never overlap. The
 * backward computes e^{-u²} once for both ∂erf/∂u and erf itself.
 */
#include <string.h>
#include <tgmath.h>

#include "fastmath.h"
#include "norm.h"

#define TWO_OVER_SQRT_PI 1.12837916709551257390

static void derf_forward(real *out, real *cache, const real *inp, const real *p,
			 int t0, int t1, int d, const struct norm_cfg *cfg)
{
	(void)cache;
	(void)cfg;
	const real *g = p, *b = p + d;
	const real a = p[2 * d], s = p[2 * d + 1];
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
#pragma omp simd
		for (int i = 0; i < d; i++) {
			real e = nl_erf(a * x[i] + s);
			y[i] = g[i] * e + b[i];
		}
	}
}

/* At most this many columns per derf_bwd_cols call (its e^{-u²} buffer). */
#define DERF_SPAN 256

/* Columns [i0, i1) of one row, i1 − i0 ≤ DERF_SPAN: dx, the γ/β block sums, the row's parts of
 * ∂L/∂α and ∂L/∂s. e^{-u²} goes through a buffer in a loop of its own: in one loop, exp then
 * erf then the sums made a dependency chain of ~100 cycles per vector, more than out-of-order
 * execution could overlap (0.49 ns per element from cache; split, 0.33). */
static inline void derf_bwd_cols(real *restrict dx, real *restrict ag, real *restrict ab,
				 const real *restrict x, const real *restrict dy,
				 const real *restrict g, real a, real s, int i0, int i1,
				 real *dar_out, real *dsr_out)
{
	real eb[DERF_SPAN];
	real *restrict e = eb - i0;
#pragma omp simd
	for (int i = i0; i < i1; i++) {
		real u = a * x[i] + s;
		e[i] = nl_exp_neg(u * u);
	}
	real dar = 0, dsr = 0;
#pragma omp simd reduction(+ : dar, dsr)
	for (int i = i0; i < i1; i++) {
		real u = a * x[i] + s;
		real k = dy[i] * g[i] * (real)TWO_OVER_SQRT_PI * e[i];
		dx[i] += k * a;
		dar += k * x[i];
		dsr += k;
		ag[i] += dy[i] * nl_erf_e(u, e[i]);
		ab[i] += dy[i];
	}
	*dar_out += dar;
	*dsr_out += dsr;
}

static void derf_backward(real *dinp, double *dp, const real *dout, const real *cache,
			  const real *inp, const real *p, int t0, int t1, int d,
			  const struct norm_cfg *cfg)
{
	(void)cache;
	(void)cfg;
	const real *g = p;
	const real a = p[2 * d], s = p[2 * d + 1];
	real acc[2 * NORM_MAX_D];   /* γ then β sums over the current block of rows */
	real *ag = acc, *ab = acc + d;
	memset(acc, 0, sizeof(real) * 2 * (size_t)d);
	const int streaming = norm_streaming(t0, t1, d);
	double da = 0, ds = 0;
	for (int t = t0; t < t1; t++) {
		const real *x = inp + (size_t)t * d, *dy = dout + (size_t)t * d;
		real *dx = dinp + (size_t)t * d;
		real dar = 0, dsr = 0;
		if (!streaming)
			for (int i0 = 0; i0 < d; i0 += DERF_SPAN)
				derf_bwd_cols(dx, ag, ab, x, dy, g, a, s, i0,
					      norm_span_end(i0, DERF_SPAN, d), &dar, &dsr);
		else
			for (int i0 = 0; i0 < d; i0 += NORM_CHUNK) {
				norm_prefetch(x, dy, dx, i0);
				derf_bwd_cols(dx, ag, ab, x, dy, g, a, s, i0,
					      norm_span_end(i0, NORM_CHUNK, d), &dar, &dsr);
			}
		da += dar;
		ds += dsr;
		if (norm_block_end(t, t0, t1))
			norm_flush(dp, acc, 2 * d);
	}
	dp[2 * d] += da;
	dp[2 * d + 1] += ds;
}

static real derf_pre_affine(const real *x, const real *cache_row, const real *p, int d, int c)
{
	(void)cache_row;
	return nl_erf(p[2 * d] * x[c] + p[2 * d + 1]);
}

static int derf_saturated(real x, const real *p, int d)
{
	return fabs(p[2 * d] * x + p[2 * d + 1]) > 2;
}

const struct norm_kind norm_derf = {
	.name = "derf",
	.default_eps = 1e-5,   /* unused: Derf has no ε */
	.wants_embed_scale = 1,
	.n_tensors = 4,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
		{ "bias", NORM_SHAPE_D, NORM_INIT_ZERO },
		{ "alpha", NORM_SHAPE_SCALAR, NORM_INIT_ALPHA0 },
		{ "shift", NORM_SHAPE_SCALAR, NORM_INIT_SHIFT0 },
	},
	.cache_per_token = 0,
	.forward = derf_forward,
	.backward = derf_backward,
	.pre_affine = derf_pre_affine,
	.saturated = derf_saturated,
};
