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

/* The three matmul kernels take `ld`, the row stride of out / dout, so a caller can compute a
 * band of columns of a wider matrix (LN removal's split qkv: the Q,K columns from one input, the
 * V columns from another). ld == OC is the plain dense case. */
void matmul_forward_ld(real *out, int ld, const real *inp, const real *w, const real *b,
		       int N, int C, int OC, int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	if (r1 <= r0)
		return;
	real *o = out + (size_t)r0 * ld;
	real beta = 0;
	if (b) {
		for (int n = r0; n < r1; n++)
			memcpy(out + (size_t)n * ld, b, sizeof(real) * OC);
		beta = 1;
	}
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, OC, C, 1, inp + (size_t)r0 * C, C,
	     w, C, beta, o, ld);
}

void matmul_forward(real *out, const real *inp, const real *w, const real *b,
		    int N, int C, int OC, int ith, int nth)
{
	matmul_forward_ld(out, OC, inp, w, b, N, C, OC, ith, nth);
}

void matmul_backward_input_ld(real *dinp, const real *dout, int ld, const real *w,
			      int N, int C, int OC, int ith, int nth)
{
	int r0, r1;
	if (!dinp)
		return;
	pool_split(N, ith, nth, &r0, &r1);
	if (r1 <= r0)
		return;
	GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, C, OC, 1,
	     dout + (size_t)r0 * ld, ld, w, C, 1, dinp + (size_t)r0 * C, C);
}

void matmul_backward_input(real *dinp, const real *dout, const real *w,
			   int N, int C, int OC, int ith, int nth)
{
	matmul_backward_input_ld(dinp, dout, OC, w, N, C, OC, ith, nth);
}

void matmul_backward_weight_ld(real *dw, real *db, const real *dout, int ld, const real *inp,
			       int N, int C, int OC, int ith, int nth)
{
	int o0, o1;
	pool_split(OC, ith, nth, &o0, &o1);
	if (o1 <= o0)
		return;
	GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, C, N, 1, dout + o0, ld,
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
				const real *row = dout + (size_t)n * ld + c0;
#pragma omp simd
				for (int j = 0; j < w; j++)
					acc[j] += row[j];
			}
			for (int j = 0; j < w; j++)
				db[c0 + j] += (real)acc[j];
		}
	}
}

void matmul_backward_weight(real *dw, real *db, const real *dout, const real *inp,
			    int N, int C, int OC, int ith, int nth)
{
	matmul_backward_weight_ld(dw, db, dout, OC, inp, N, C, OC, ith, nth);
}

void attention_forward(real *out, real *att, const real *qkv, int B, int T, int C, int NH,
		       int causal, int ith, int nth)
{
	int hs = C / NH, C3 = 3 * C, p0, p1;
	real scale = (real)(1.0 / sqrt((double)hs));
	pool_split(B * NH, ith, nth, &p0, &p1);
	for (int p = p0; p < p1; p++) {
		int b = p / NH, h = p % NH;
		const real *q = qkv + (size_t)b * T * C3 + h * hs;
		const real *k = q + C, *v = q + 2 * C;
		real *a = att + (size_t)p * T * T;
		/* scores = q·kᵀ; causal: only the lower triangle is used */
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3, 0, a, T);
		for (int t = 0; t < T; t++) {
			real *row = a + (size_t)t * T;
			real mx = row[0];
			int e = causal ? t : T - 1;   /* the last key position row t sees */
#pragma omp simd reduction(max : mx)
			for (int u = 1; u <= e; u++)
				mx = row[u] > mx ? row[u] : mx;
			/* summed in real across SIMD lanes: gcc 12 will not vectorize exp's clamps next
			 * to a widening to double, and ≤ T positive terms lose nothing that matters */
			real sum = 0;
#pragma omp simd reduction(+ : sum)
			for (int u = 0; u <= e; u++) {
				row[u] = nl_exp(row[u] - mx);
				sum += row[u];
			}
			real inv = 1 / sum;
#pragma omp simd
			for (int u = 0; u <= e; u++)
				row[u] *= inv;
			for (int u = e + 1; u < T; u++)
				row[u] = 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1, a, T, v, C3, 0,
		     out + (size_t)b * T * C + h * hs, C);
	}
}

void attention_backward(real *dqkv, real *scratch, const real *dout, const real *att,
			const real *qkv, int B, int T, int C, int NH, int causal, int ith, int nth)
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
		/* dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, over the positions row t sees */
		for (int t = 0; t < T; t++) {
			const real *ar = a + (size_t)t * T;
			real *dr = dp + (size_t)t * T;
			int e = causal ? t : T - 1;
			double s = 0;
#pragma omp simd reduction(+ : s)
			for (int u = 0; u <= e; u++)
				s += (double)(ar[u] * dr[u]);
#pragma omp simd
			for (int u = 0; u <= e; u++)
				dr[u] = ar[u] * (dr[u] - (real)s) * scale;
			for (int u = e + 1; u < T; u++)
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
		const real *e = wte + (size_t)tok[n] * C;
		real *o = out + (size_t)n * C;
		if (!wpe) {
#pragma omp simd
			for (int c = 0; c < C; c++)
				o[c] = scale * e[c];
			continue;
		}
		const real *p = wpe + (size_t)(n % T) * C;
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
		real *restrict e = dwte + (size_t)tok[n] * C;
		if (!dwpe) {
#pragma omp simd
			for (int c = c0; c < c1; c++)
				e[c] += scale * g[c];
			continue;
		}
		real *restrict p = dwpe + (size_t)(n % T) * C;
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
		const real *e = wte + (size_t)tok[n] * C;
		const real *g = dout + (size_t)n * C;
		real sr = 0;
		if (wpe) {
			const real *p = wpe + (size_t)(n % T) * C;
#pragma omp simd reduction(+ : sr)
			for (int c = 0; c < C; c++)
				sr += g[c] * (e[c] + p[c]);
		} else {
#pragma omp simd reduction(+ : sr)
			for (int c = 0; c < C; c++)
				sr += g[c] * e[c];
		}
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

/* silu(g) = g·σ(g); σ from tanh so it shares the vectorized nl_tanh: σ(g) = (1 + tanh(g/2))/2 */
void swiglu_forward(real *out, const real *gu, int N, int F, int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		const real *g = gu + (size_t)n * 2 * F, *u = g + F;
		real *o = out + (size_t)n * F;
#pragma omp simd
		for (int i = 0; i < F; i++) {
			real sg = (real)0.5 * (1 + nl_tanh((real)0.5 * g[i]));
			o[i] = g[i] * sg * u[i];
		}
	}
}

void swiglu_backward(real *dgu, const real *gu, const real *dout, int N, int F, int ith, int nth)
{
	int r0, r1;
	pool_split(N, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		const real *g = gu + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
		real *dg = dgu + (size_t)n * 2 * F, *du = dg + F;
#pragma omp simd
		for (int i = 0; i < F; i++) {
			real sg = (real)0.5 * (1 + nl_tanh((real)0.5 * g[i]));
			real silu = g[i] * sg;
			dg[i] += d[i] * u[i] * sg * (1 + g[i] * (1 - sg));
			du[i] += d[i] * silu;
		}
	}
}

void rope_forward(real *qkv, const real *tab, int B, int T, int C, int NH, int ith, int nth)
{
	int hs = C / NH, half = hs / 2, r0, r1;
	const real *cs = tab, *sn = tab + (size_t)T * half;
	pool_split(B * T, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		int t = n % T;
		const real *co = cs + (size_t)t * half, *si = sn + (size_t)t * half;
		for (int w = 0; w < 2 * NH; w++) {   /* the q heads, then the k heads */
			real *x = qkv + (size_t)n * 3 * C + (size_t)w * hs, *y = x + half;
#pragma omp simd
			for (int i = 0; i < half; i++) {
				real a = x[i], b = y[i];
				x[i] = a * co[i] - b * si[i];
				y[i] = b * co[i] + a * si[i];
			}
		}
	}
}

void rope_backward(real *dqkv, const real *tab, int B, int T, int C, int NH, int ith, int nth)
{
	int hs = C / NH, half = hs / 2, r0, r1;
	const real *cs = tab, *sn = tab + (size_t)T * half;
	pool_split(B * T, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		int t = n % T;
		const real *co = cs + (size_t)t * half, *si = sn + (size_t)t * half;
		for (int w = 0; w < 2 * NH; w++) {
			real *x = dqkv + (size_t)n * 3 * C + (size_t)w * hs, *y = x + half;
#pragma omp simd
			for (int i = 0; i < half; i++) {
				real a = x[i], b = y[i];
				x[i] = a * co[i] + b * si[i];
				y[i] = b * co[i] - a * si[i];
			}
		}
	}
}

void patch_gather(real *patches, const real *images, int B, int p, int ith, int nth)
{
	int g = 28 / p, P = g * g, r0, r1;
	pool_split(B * P, ith, nth, &r0, &r1);
	for (int r = r0; r < r1; r++) {
		int b = r / P, q = r % P, py0 = (q / g) * p, px0 = (q % g) * p;
		const real *img = images + (size_t)b * 28 * 28;
		real *o = patches + (size_t)r * p * p;
		for (int py = 0; py < p; py++)
			memcpy(o + (size_t)py * p, img + (size_t)(py0 + py) * 28 + px0, sizeof(real) * p);
	}
}

void vit_embed_forward(real *x, const real *pe, const real *cls, const real *pos, int B, int T,
		       int C, int ith, int nth)
{
	int r0, r1;
	pool_split(B * T, ith, nth, &r0, &r1);
	for (int n = r0; n < r1; n++) {
		int b = n / T, t = n % T;
		const real *src = t == 0 ? cls : pe + ((size_t)b * (T - 1) + (size_t)(t - 1)) * C;
		const real *p = pos + (size_t)t * C;
		real *o = x + (size_t)n * C;
#pragma omp simd
		for (int c = 0; c < C; c++)
			o[c] = src[c] + p[c];
	}
}

void vit_embed_backward(real *dpe, real *dcls, real *dpos, const real *dx, int B, int T, int C,
			int ith, int nth)
{
	int c0, c1;
	pool_split(C, ith, nth, &c0, &c1);
	for (int n = 0; n < B * T; n++) {
		int b = n / T, t = n % T;
		const real *g = dx + (size_t)n * C;
		real *restrict dp = dpos + (size_t)t * C;
		real *restrict d = t == 0 ? dcls : dpe + ((size_t)b * (T - 1) + (size_t)(t - 1)) * C;
		if (t == 0) {
#pragma omp simd
			for (int c = c0; c < c1; c++) {
				d[c] += g[c];
				dp[c] += g[c];
			}
		} else {
#pragma omp simd
			for (int c = c0; c < c1; c++) {
				d[c] = g[c];
				dp[c] += g[c];
			}
		}
	}
}

void pool_forward(real *pooled, const real *x, int B, int T, int C, int mean, int ith, int nth)
{
	int r0, r1;
	pool_split(B, ith, nth, &r0, &r1);
	for (int b = r0; b < r1; b++) {
		const real *xb = x + (size_t)b * T * C;
		real *o = pooled + (size_t)b * C;
		if (!mean) {
			memcpy(o, xb, sizeof(real) * C);
			continue;
		}
		real inv = (real)1 / (T - 1);
		for (int c = 0; c < C; c++)
			o[c] = 0;
		for (int t = 1; t < T; t++) {
			const real *r = xb + (size_t)t * C;
#pragma omp simd
			for (int c = 0; c < C; c++)
				o[c] += r[c];
		}
#pragma omp simd
		for (int c = 0; c < C; c++)
			o[c] *= inv;
	}
}

void pool_backward(real *dx, const real *dpooled, int B, int T, int C, int mean, int ith, int nth)
{
	int r0, r1;
	pool_split(B, ith, nth, &r0, &r1);
	for (int b = r0; b < r1; b++) {
		real *xb = dx + (size_t)b * T * C;
		const real *g = dpooled + (size_t)b * C;
		if (!mean) {
#pragma omp simd
			for (int c = 0; c < C; c++)
				xb[c] += g[c];
			continue;
		}
		real inv = (real)1 / (T - 1);
		for (int t = 1; t < T; t++) {
			real *r = xb + (size_t)t * C;
#pragma omp simd
			for (int c = 0; c < C; c++)
				r[c] += g[c] * inv;
		}
	}
}
