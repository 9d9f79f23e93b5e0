/*
 * test_probes — the statistics the dashboard plots, on inputs whose answers are known, and the
 * vectorizable exp/tanh against libm (their documented error bounds), and the norm backwards'
 * streaming path (large calls prefetch in chunks) against the plain one.
 */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "fastmath.h"
#include "norm.h"
#include "probes.h"
#include "rng.h"

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static void test_stats(void)
{
	enum { N = 50, C = 16 };
	static float x[N * C], sorted[N * C], scratch[N * C];
	double chan[C];
	struct probe_stats st;
	struct rng r;
	rng_seed(&r, 3, 1);
	for (int i = 0; i < N * C; i++)
		x[i] = (float)(2.0 * rng_normal(&r) + 0.5);
	probe_tensor_stats(&st, x, N, C, scratch, chan);
	for (int i = 0; i < N * C; i++)
		sorted[i] = fabsf(x[i]);
	qsort(sorted, N * C, sizeof(float), cmp_float);
	CHECKF(st.medabs == sorted[N * C / 2], "median %g vs sorted %g", st.medabs, sorted[N * C / 2]);
	CHECK(st.maxabs == sorted[N * C - 1]);
	double s = 0, s2 = 0, vt = 0;
	for (int t = 0; t < N; t++) {
		double ts = 0, ts2 = 0;
		for (int c = 0; c < C; c++) {
			ts += x[t * C + c];
			ts2 += (double)x[t * C + c] * x[t * C + c];
		}
		vt += ts2 / C - (ts / C) * (ts / C);
		s += ts;
		s2 += ts2;
	}
	double mean = s / (N * C);
	CHECK(fabs(st.var - (s2 / (N * C) - mean * mean)) < 1e-9);
	CHECK(fabs(st.var_tok - vt / N) < 1e-9);
	CHECK(fabs(st.rms - sqrt(s2 / (N * C))) < 1e-9);
	CHECK(fabs(st.top1_med - st.maxabs / st.medabs) < 1e-12);
	CHECKF(st.kurt > 0.9 && st.kurt < 1.3, "iid channels: kurtosis %g should be near 1", st.kurt);

	/* one channel 30× louder: the outlier-feature kurtosis jumps */
	for (int t = 0; t < N; t++)
		x[t * C + 5] *= 30;
	probe_tensor_stats(&st, x, N, C, scratch, chan);
	CHECKF(st.kurt > 10, "one massive channel: kurtosis %g should be large", st.kurt);

	/* all channels exactly equal energy: kurtosis exactly 1 */
	for (int i = 0; i < N * C; i++)
		x[i] = (i % 2) ? 1.0f : -1.0f;
	probe_tensor_stats(&st, x, N, C, scratch, chan);
	CHECK(fabs(st.kurt - 1) < 1e-12);
	CHECK(fabs(st.var - 1) < 1e-12);
	CHECK(st.medabs == 1 && st.top1_med == 1);
}

static void test_angle(void)
{
	float a[2 * 3] = { 1, 0, 0, 0, 2, 0 };
	float same[2 * 3] = { 3, 0, 0, 0, 1, 0 };
	float opp[2 * 3] = { -1, 0, 0, 0, -5, 0 };
	float orth[2 * 3] = { 0, 1, 0, 0, 0, 7 };
	float zero[2 * 3] = { 0 };
	CHECK(fabs(probe_angular_distance(a, same, 2, 3)) < 1e-12);
	CHECK(fabs(probe_angular_distance(a, opp, 2, 3) - 1) < 1e-12);
	CHECK(fabs(probe_angular_distance(a, orth, 2, 3) - 0.5) < 1e-12);
	CHECK(fabs(probe_angular_distance(a, zero, 2, 3) - 0.5) < 1e-12);
}

static void test_fastmath(void)
{
	double worst_exp = 0, worst_tanh = 0;
	for (double v = -87; v <= 88; v += 3e-4) {
		float f = (float)v;
		double e = exp((double)f), rel = fabs(nl_expf(f) - e) / e;
		worst_exp = rel > worst_exp ? rel : worst_exp;
		if (f <= 0) {
			rel = fabs(nl_expf_neg(-f) - e) / e;
			worst_exp = rel > worst_exp ? rel : worst_exp;
		}
	}
	for (double v = -30; v <= 30; v += 3e-5) {
		float f = (float)v;
		double d = fabs(nl_tanhf(f) - tanh((double)f));
		worst_tanh = d > worst_tanh ? d : worst_tanh;
	}
	double worst_erf = 0;
	for (double v = -10; v <= 10; v += 1e-5) {
		float f = (float)v;
		double d = fabs(nl_erff(f) - erf((double)f));
		worst_erf = d > worst_erf ? d : worst_erf;
	}
	/* Relative error near zero, on a log grid from 1e-30 to 1 (both signs):
	 * small activations are where an absolute bound hides a wrong gradient (an erf that
	 * cancelled there put Derf's ∂L/∂γ 3e-4 off). */
	double rel_exp = 0, rel_tanh = 0, rel_erf = 0;
	for (double m = 1e-30; m <= 1.0; m *= 1.0001) {
		for (int sgn = -1; sgn <= 1; sgn += 2) {
			float f = (float)(sgn * m);
			double x = (double)f, r;
			r = fabs(nl_tanhf(f) - tanh(x)) / fabs(tanh(x));
			rel_tanh = r > rel_tanh ? r : rel_tanh;
			r = fabs(nl_erff(f) - erf(x)) / fabs(erf(x));
			rel_erf = r > rel_erf ? r : rel_erf;
			r = fabs(nl_expf(f) - exp(x)) / exp(x);
			rel_exp = r > rel_exp ? r : rel_exp;
		}
	}
	printf("nl_expf max relative error %.3g, nl_tanhf max absolute error %.3g, nl_erff %.3g; "
	       "relative near 0: exp %.3g, tanh %.3g, erf %.3g\n", worst_exp, worst_tanh, worst_erf,
	       rel_exp, rel_tanh, rel_erf);
	CHECKF(worst_erf <= 6e-7, "nl_erff absolute error %g above its documented 6e-7", worst_erf);
	CHECKF(rel_tanh <= 1e-6, "nl_tanhf relative error %g near 0, above 1e-6", rel_tanh);
	CHECKF(rel_erf <= 1e-6, "nl_erff relative error %g near 0, above 1e-6", rel_erf);
	CHECKF(rel_exp <= 2e-7, "nl_expf relative error %g near 0, above 2e-7", rel_exp);
	CHECK(isnan(nl_expf_neg(NAN)) && nl_expf_neg(1e30f) < 1e-37f && nl_expf_neg(0) == 1);
	CHECK(isnan(nl_erff(NAN)));
	CHECK(nl_erff(0) == 0 && nl_erff(30) == 1 && nl_erff(-30) == -1);
	CHECKF(worst_exp <= 2e-7, "nl_expf relative error %g above its documented 2e-7", worst_exp);
	CHECKF(worst_tanh <= 5e-7, "nl_tanhf absolute error %g above its documented 5e-7", worst_tanh);
	CHECK(nl_tanhf(1e30f) == 1.0f || fabs(nl_tanhf(1e30f) - 1) < 5e-7);
	CHECK(nl_tanhf(-1e30f) < -0.999999f);
	CHECK(nl_tanhf(0) == 0);
	CHECK(nl_expf(-1000) >= 0 && nl_expf(-1000) < 1e-37);
	CHECK(isfinite(nl_expf(1000)));
	/* NaN must stay NaN: a diverging run has to be seen as diverging */
	CHECK(isnan(nl_tanhf(NAN)));
	CHECK(isnan(nl_expf(NAN)));
}

/* One backward call over N rows takes the streaming path (norm_streaming); calls of 8 rows
 * take the plain one. Both must give the same dinp, and the same parameter gradients up to
 * float summation order (row blocks of 32 against calls of 8: ~1e-5 here). */
static void test_streaming_backward(void)
{
	enum { N = 2048, D = 1024, ROWS = 8 };
	CHECK(norm_streaming(0, N, D) && !norm_streaming(0, ROWS, D));
	real *x = malloc(sizeof(real) * N * D), *dy = malloc(sizeof(real) * N * D);
	real *dx1 = calloc((size_t)N * D, sizeof(real)), *dx2 = calloc((size_t)N * D, sizeof(real));
	real *y = malloc(sizeof(real) * N * D), *cache = malloc(sizeof(real) * N * 4);
	real p[2 * D + 2];
	double dp1[2 * D + 2], dp2[2 * D + 2];
	struct rng r;
	rng_seed(&r, 11, 1);
	for (size_t i = 0; i < (size_t)N * D; i++) {
		x[i] = (real)(rng_normal(&r) + 0.3);
		dy[i] = (real)rng_normal(&r);
	}
	for (int k = 0; k < norm_table_len; k++) {
		const struct norm_kind *nk = norm_table[k];
		if (nk->batch)
			continue;   /* batch-statistic kinds have passes, not per-token kernels */
		struct norm_cfg cfg = { .eps = nk->default_eps, .alpha0 = 0.7, .shift0 = 0.1 };
		size_t np = norm_param_count(nk, D);
		norm_param_init(nk, p, D, &cfg);
		for (size_t i = 0; i < np && i < 2 * D; i++)
			p[i] += (real)(0.1 * rng_normal(&r));
		nk->forward(y, cache, x, p, 0, N, D, &cfg);
		memset(dx1, 0, sizeof(real) * N * D);
		memset(dx2, 0, sizeof(real) * N * D);
		memset(dp1, 0, sizeof dp1);
		memset(dp2, 0, sizeof dp2);
		nk->backward(dx1, dp1, dy, cache, x, p, 0, N, D, &cfg);
		for (int t = 0; t < N; t += ROWS)
			nk->backward(dx2, dp2, dy, cache, x, p, t, t + ROWS, D, &cfg);
		double worst_dx = 0, worst_dp = 0;
		for (size_t i = 0; i < (size_t)N * D; i++) {
			double e = fabs((double)dx1[i] - dx2[i]);
			worst_dx = e > worst_dx ? e : worst_dx;
		}
		for (size_t i = 0; i < np; i++) {
			double e = fabs(dp1[i] - dp2[i]) / (1 + fabs(dp2[i]));
			worst_dp = e > worst_dp ? e : worst_dp;
		}
		CHECKF(worst_dx == 0, "%s: streaming backward dinp differs by %g", nk->name, worst_dx);
		CHECKF(worst_dp < 1e-4, "%s: streaming backward parameter gradients differ by %g "
		       "(relative)", nk->name, worst_dp);
	}
	free(x);
	free(dy);
	free(dx1);
	free(dx2);
	free(y);
	free(cache);
}

/* LayerNorm's one-pass statistics on a row far from zero (|μ| = 1e4 σ): the output must still
 * have mean 0 and variance 1, which plain E[x²] − μ² in float would lose entirely. */
static void test_layernorm_offset(void)
{
	enum { D = 512 };
	const struct norm_kind *ln = norm_table[norm_find("layernorm")];
	static real x[D], y[D], p[2 * D];
	real cache[2];
	struct norm_cfg cfg = { .eps = 1e-10 };   /* ε ≪ σ² = 1e-4, so the variance should be 1 */
	struct rng r;
	rng_seed(&r, 12, 1);
	for (int i = 0; i < D; i++)
		x[i] = (real)(100.0 + 0.01 * rng_normal(&r));
	norm_param_init(ln, p, D, &cfg);
	ln->forward(y, cache, x, p, 0, 1, D, &cfg);
	double m = 0, v = 0;
	for (int i = 0; i < D; i++)
		m += y[i];
	m /= D;
	for (int i = 0; i < D; i++)
		v += (y[i] - m) * (y[i] - m);
	v /= D;
	CHECKF(fabs(m) < 1e-3 && fabs(v - 1) < 0.02, "layernorm at mean 100, std 0.01: output mean "
	       "%g, variance %g", m, v);
}

int main(void)
{
	test_stats();
	test_angle();
	test_fastmath();
	test_streaming_backward();
	test_layernorm_offset();
	return test_finish("probes");
}
