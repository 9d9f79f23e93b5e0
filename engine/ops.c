/*
 * ops.c — the GPT kernels (see ops.h). Matrix products go to BLAS (single-threaded: our pool owns
 * the threads, so each thread calls gemm on its own slice, and one run's threads never fight
 * another's). Element-wise and softmax loops are plain C the compiler vectorizes: each is a
 * declared SIMD loop (`omp simd`, with its reductions named), because without -ffast-math gcc
 * keeps a sum or a max in source order and runs the loop scalar. In-place calls (out == a) are
 * fine: a SIMD loop reads and writes element i in the same lane.
 */
#include "ops.h"

#include <cblas.h>
#include <string.h>
#include <tgmath.h>

#include "fastmath.h"
#include "pool.h"

#ifdef NL_DOUBLE
#define GEMM cblas_dgemm
#else
#define GEMM cblas_sgemm
#endif

void matmul_forward(real *out, const real *inp, const real *w, const real *b,
		    int N, int C, int OC, int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	if (r1 <= r0)
		return;
	real *o = out + (size_t)r0 * OC;
	real beta = 0;
	if (b) {
		for (int n = r0; n < r1; n++)
			memcpy(out + (size_t)n * OC, b, sizeof(real) * OC);
		beta = 1;
	}
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, OC, C, 1, inp + (size_t)r0 * C, C,
	     w, C, beta, o, OC);
}

void matmul_backward_input(real *dinp, const real *dout, const real *w,
			   int N, int C, int OC, int ith, int nth)
{
	int r0, r1;
	if (!dinp)
		return;
	pool_split(N, ith, nth, &r0, &r1);
	if (r1 <= r0)
		return;
	GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, C, OC, 1,
	     dout + (size_t)r0 * OC, OC, w, C, 1, dinp + (size_t)r0 * C, C);
}

void matmul_backward_weight(real *dw, real *db, const real *dout, const real *inp,
			    int N, int C, int OC, int ith, int nth)
{
	int o0, o1;
	pool_split(OC, ith, nth, &o0, &o1);
	if (o1 <= o0)
		return;
	GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, C, N, 1, dout + o0, OC,
	     inp, C, 1, dw + (size_t)o0 * C, C);
	if (db) {
		/* column sums in double, a chunk of columns at a time so the inner loop is contiguous */
		enum { CHUNK = 256 };
		double acc[CHUNK];
		for (int c0 = o0; c0 < o1; c0 += CHUNK) {
			int w = o1 - c0 < CHUNK ? o1 - c0 : CHUNK;
			for (int j = 0; j < w; j++)
				acc[j] = 0;
			for (int n = 0; n < N; n++) {
				const real *row = dout + (size_t)n * OC + c0;
#pragma omp simd
				for (int j = 0; j < w; j++)
					acc[j] += row[j];
			}
			for (int j = 0; j < w; j++)
				db[c0 + j] += (real)acc[j];
		}
	}
}

void attention_forward(real *out, real *att, const real *qkv, int B, int T, int C, int NH,
		       int ith, int nth)
{
	int hs = C / NH, C3 = 3 * C, p0, p1;
	real scale = (real)(1.0 / sqrt((double)hs));
	pool_split(B * NH, ith, nth, &p0, &p1);
	for (int p = p0; p < p1; p++) {
		int b = p / NH, h = p % NH;
		const real *q = qkv + (size_t)b * T * C3 + h * hs;
		const real *k = q + C, *v = q + 2 * C;
		real *a = att + (size_t)p * T * T;
		/* scores = q·kᵀ; only the lower triangle is used */
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3, 0, a, T);
		for (int t = 0; t < T; t++) {
			real *row = a + (size_t)t * T;
			real mx = row[0];
#pragma omp simd reduction(max : mx)
			for (int u = 1; u <= t; u++)
				mx = row[u] > mx ? row[u] : mx;
			/* summed in real across SIMD lanes: gcc 12 will not vectorize exp's clamps next
			 * to a widening to double, and ≤ T positive terms lose nothing that matters */
			real sum = 0;
#pragma omp simd reduction(+ : sum)
			for (int u = 0; u <= t; u++) {
				row[u] = nl_exp(row[u] - mx);
				sum += row[u];
			}
			real inv = 1 / sum;
#pragma omp simd
			for (int u = 0; u <= t; u++)
				row[u] *= inv;
			for (int u = t + 1; u < T; u++)
				row[u] = 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1, a, T, v, C3, 0,
		     out + (size_t)b * T * C + h * hs, C);
	}
}

void attention_backward(real *dqkv, real *scratch, const real *dout, const real *att,
			const real *qkv, int B, int T, int C, int NH, int ith, int nth)
{
	int hs = C / NH, C3 = 3 * C, p0, p1;
	real scale = (real)(1.0 / sqrt((double)hs));
	real *dp = scratch + (size_t)ith * T * T;
	pool_split(B * NH, ith, nth, &p0, &p1);
	for (int p = p0; p < p1; p++) {
		int b = p / NH, h = p % NH;
		size_t base = (size_t)b * T * C3 + h * hs;
		const real *q = qkv + base, *k = q + C, *v = q + 2 * C;
		real *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
		const real *a = att + (size_t)p * T * T;
		const real *dy = dout + (size_t)b * T * C + h * hs;
		/* dP = dY·Vᵀ ; dV += Pᵀ·dY */
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1, dy, C, v, C3, 0, dp, T);
		GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1, a, T, dy, C, 1, dv, C3);
		/* dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, causal part only */
		for (int t = 0; t < T; t++) {
			const real *ar = a + (size_t)t * T;
			real *dr = dp + (size_t)t * T;
			double s = 0;
#pragma omp simd reduction(+ : s)
			for (int u = 0; u <= t; u++)
				s += (double)(ar[u] * dr[u]);
#pragma omp simd
			for (int u = 0; u <= t; u++)
				dr[u] = ar[u] * (dr[u] - (real)s) * scale;
			for (int u = t + 1; u < T; u++)
				dr[u] = 0;
		}
		/* dQ += dS·K ; dK += dSᵀ·Q */
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1, dp, T, k, C3, 1, dq, C3);
		GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1, dp, T, q, C3, 1, dk, C3);
	}
}

#define GELU_K 0.7978845608028654   /* √(2/π) */

void gelu_forward(real *out, const real *inp, long n, int ith, int nth)
{
	long i0 = n * ith / nth, i1 = n * (ith + 1) / nth;
#pragma omp simd
	for (long i = i0; i < i1; i++) {
		real x = inp[i];
		out[i] = (real)0.5 * x * (1 + nl_tanh((real)GELU_K * (x + (real)0.044715 * x * x * x)));
	}
}

void gelu_backward(real *dinp, const real *inp, const real *dout, long n, int ith, int nth)
{
	long i0 = n * ith / nth, i1 = n * (ith + 1) / nth;
#pragma omp simd
	for (long i = i0; i < i1; i++) {
		real x = inp[i];
		real u = (real)GELU_K * (x + (real)0.044715 * x * x * x);
		real th = nl_tanh(u);
		real du = (real)GELU_K * (1 + (real)(3 * 0.044715) * x * x);
		real g = (real)0.5 * (1 + th) + (real)0.5 * x * (1 - th * th) * du;
		dinp[i] += g * dout[i];
	}
}

void embed_forward(real *out, const int *tok, const real *wte, const real *wpe, real scale,
		   int N, int T, int C, int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		const real *e = wte + (size_t)tok[n] * C, *p = wpe + (size_t)(n % T) * C;
		real *o = out + (size_t)n * C;
#pragma omp simd
		for (int c = 0; c < C; c++)
			o[c] = scale * (e[c] + p[c]);
	}
}

void embed_backward(real *dwte, real *dwpe, const real *dout, const int *tok, real scale,
		    int N, int T, int C, int ith, int nth)
{
	int c0, c1;
	pool_split(C, ith, nth, &c0, &c1);
	for (int n = 0; n < N; n++) {
		const real *g = dout + (size_t)n * C;
		real *restrict e = dwte + (size_t)tok[n] * C, *restrict p = dwpe + (size_t)(n % T) * C;
#pragma omp simd
		for (int c = c0; c < c1; c++) {
			e[c] += scale * g[c];
			p[c] += scale * g[c];
		}
	}
}

void embed_scale_grad(double *part, const real *dout, const int *tok, const real *wte,
		      const real *wpe, int N, int T, int C, int ith, int nth)
{
	int r0, r1;
	double s = 0;
	pool_split(N, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		const real *e = wte + (size_t)tok[n] * C, *p = wpe + (size_t)(n % T) * C;
		const real *g = dout + (size_t)n * C;
		real sr = 0;
#pragma omp simd reduction(+ : sr)
		for (int c = 0; c < C; c++)
			sr += g[c] * (e[c] + p[c]);
		s += sr;
	}
	*part = s;
}

/* log Σ exp(row) over V classes, with the max subtracted first; *mx gets the max. */
static double ce_logsumexp(const real *row, int V, real *mx)
{
	real m = row[0];
#pragma omp simd reduction(max : m)
	for (int v = 1; v < V; v++)
		m = row[v] > m ? row[v] : m;
	real sum = 0;   /* in real: see attention_forward */
#pragma omp simd reduction(+ : sum)
	for (int v = 0; v < V; v++)
		sum += nl_exp(row[v] - m);
	*mx = m;
	return log((double)sum) + m;
}

void crossentropy_fused(real *logits, real *losses, const int *targets, int N, int V,
			int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		real *row = logits + (size_t)n * V, mx, inv_n = (real)1 / N;
		double lse = ce_logsumexp(row, V, &mx);
		losses[n] = (real)(lse - row[targets[n]]);
		real scale = (real)exp(mx - lse) * inv_n;   /* p_v/N = exp(row_v − mx)·e^{mx−lse}/N */
#pragma omp simd
		for (int v = 0; v < V; v++)
			row[v] = nl_exp(row[v] - mx) * scale;
		row[targets[n]] -= inv_n;
	}
}

void crossentropy_forward(real *losses, const real *logits, const int *targets, int N, int V,
			  int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		const real *row = logits + (size_t)n * V;
		real mx;
		losses[n] = (real)(ce_logsumexp(row, V, &mx) - row[targets[n]]);
	}
}

void add_forward(real *out, const real *a, const real *b, long n, int ith, int nth)
{
	long i0 = n * ith / nth, i1 = n * (ith + 1) / nth;
#pragma omp simd
	for (long i = i0; i < i1; i++)
		out[i] = a[i] + b[i];
}

void scale_forward(real *out, const real *a, real s, long n, int ith, int nth)
{
	long i0 = n * ith / nth, i1 = n * (ith + 1) / nth;
#pragma omp simd
	for (long i = i0; i < i1; i++)
		out[i] = a[i] * s;
}

void accumulate(real *dst, const real *a, long n, int ith, int nth)
{
	long i0 = n * ith / nth, i1 = n * (ith + 1) / nth;
#pragma omp simd
	for (long i = i0; i < i1; i++)
		dst[i] += a[i];
}
