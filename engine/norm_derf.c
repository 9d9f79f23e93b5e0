/*
 * norm_derf.c — Dynamic erf (NORMS.md §3): y = γ ⊙ erf(α·x + s) + β; α, s scalars (init α0 per
 * site and s0), γ=1, β=0. No reduction in the forward; nothing cached. ∂L/∂α and ∂L/∂s sum
 * each row in declared SIMD reductions (vectorized without -ffast-math; the summation order is
 * fixed for a given build) and the rows in double; γ and β gradients sum in row blocks (norm.h).
 * Rows are read through restrict pointers: out, inp and the parameters never overlap. The
 * backward recomputes erf(u) for ∂L/∂γ with the forward's own function (nl_erf), so ∂L/∂γ is the
 * gradient of exactly what the forward computed. It once used A&S 7.1.26 (1 − p·t·e^{-u²}, which
 * shared the backward's e^{-u²}): that form cancels near u = 0, and with Peri-LN, whose output
 * norms see small inputs, ∂L/∂γ came out 2–3e-4 off in relative terms.
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
 * execution could overlap. */
static inline void derf_bwd_cols(real *restrict dx, real *restrict ag, real *restrict ab,
				 const real *restrict x, const real *restrict dy,
				 const real *restrict g, real a, real s, int i0, int i1,
				 double *dar_out, double *dsr_out)
{
	real eb[DERF_SPAN];
	real *restrict e = eb - i0;
#pragma omp simd
	for (int i = i0; i < i1; i++) {
		real u = a * x[i] + s;
		e[i] = nl_exp_neg(u * u);
	}
	/* ∂L/∂α and ∂L/∂s sum terms that cancel: in double (in float a row of 64 lost 1e-4) */
	double dar = 0, dsr = 0;
#pragma omp simd reduction(+ : dar, dsr)
	for (int i = i0; i < i1; i++) {
		real u = a * x[i] + s;
		real k = dy[i] * g[i] * (real)TWO_OVER_SQRT_PI * e[i];
		dx[i] += k * a;
		real kx = k * x[i];
		dar += (double)kx;
		dsr += (double)k;
		ag[i] += dy[i] * nl_erf(u);
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
		double dar = 0, dsr = 0;
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
