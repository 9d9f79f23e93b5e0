/*
 * norm_crmsnorm.c — Compressed RMSNorm (NORMS.md §7.2; Jiang et al. 2023). A zero-mean vector of
 * R^D is fixed by its first D−1 entries (the last is −Σ of them), so a Pre-CRMSNorm model keeps
 * its residual stream in R^{d}, d = D − 1 (norm_kind.compressed), and normalizes
 *   s = Σ_i z_i,   r = 1/√((Σ_i z_i² + s²)/(d+1) + ε),   y = γ ⊙ z·r      (γ = 1 at init)
 * which is RMSNorm([z, −s]) restricted to the first d entries. The paper's norms carry no affine
 * (it is folded into the next Linear); γ here is the LLaMA-style per-channel scale RMSNorm has,
 * on the d stored coordinates, so a converted model sets it to 1 and a model trained as
 * crmsnorm may learn it. Backward (h = g ⊙ γ, ŷ = z·r, ŷ_s = s·r):
 *   ∂L/∂z_j = r · ( h_j − (ŷ_j + ŷ_s) · (1/(d+1))·Σ_i h_i ŷ_i ),   ∂L/∂γ = Σ_tok g ⊙ ŷ.
 * Cache per token: r and s. Reductions in double, declared SIMD loops over restrict rows (as
 * norm_rmsnorm.c); the γ gradient sums in row blocks (norm.h).
 */
#include <string.h>
#include <tgmath.h>

#include "norm.h"

static void crms_forward(real *out, real *cache, const real *inp, const real *p,
			 int t0, int t1, int d, const struct norm_cfg *cfg)
{
	const real *restrict g = p;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
		double s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
		for (int i = 0; i < d; i++) {
			s += (double)x[i];
			q += (double)(x[i] * x[i]);
		}
		const real r = (real)(1.0 / sqrt((q + s * s) / (d + 1) + cfg->eps));
#pragma omp simd
		for (int i = 0; i < d; i++)
			y[i] = x[i] * r * g[i];
		cache[2 * t] = r;
		cache[2 * t + 1] = (real)s;
	}
}

static void crms_backward(real *dinp, double *dp, const real *dout, const real *cache,
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
		const real r = cache[2 * t], ys = cache[2 * t + 1] * r;
		double mhx = 0;
		if (!streaming)
			norm_rms_bwd_sums(acc, x, dy, g, r, 0, d, &mhx);
		else
			for (int i0 = 0; i0 < d; i0 += NORM_CHUNK) {
				norm_prefetch(x, dy, dx, i0);
				norm_rms_bwd_sums(acc, x, dy, g, r, i0,
					      norm_span_end(i0, NORM_CHUNK, d), &mhx);
			}
		const real m = (real)(mhx / (d + 1));
		const real *restrict xr = x, *restrict dyr = dy;
#pragma omp simd
		for (int i = 0; i < d; i++)
			dx[i] += r * (dyr[i] * g[i] - (xr[i] * r + ys) * m);
		if (norm_block_end(t, t0, t1))
			norm_flush(dp, acc, d);
	}
}

static real crms_pre_affine(const real *x, const real *cache_row, const real *p, int d, int c)
{
	(void)p;
	(void)d;
	return x[c] * cache_row[0];
}

const struct norm_kind norm_crmsnorm = {
	.name = "crmsnorm",
	.default_eps = 1e-5,   /* the reference code's (NORMS.md §7.2, §11) */
	.wants_embed_scale = 0,
	.n_tensors = 1,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
	},
	.cache_per_token = 2,
	.forward = crms_forward,
	.backward = crms_backward,
	.pre_affine = crms_pre_affine,
	.saturated = NULL,
	.compressed = 1,
};
