/*
 * ops.h — the GPT kernels: forward/backward pairs over flat arrays, llm.c argument order
 * (outputs, saved-for-backward, inputs, weights, dims), each taking (ith, nth) and doing only its
 * share, so the caller runs them on a pool. Backward functions ACCUMULATE (+=) into every
 * gradient they are given. No I/O, no allocation, no globals. Linear weights are [out, in].
 * N = B·T tokens.
 */
#ifndef OPS_H
#define OPS_H

#include "nl.h"

/* out [N,OC] = inp [N,C] · w[OC,C]ᵀ + b[OC] (b may be NULL). Splits rows of N. */
void matmul_forward(real *out, const real *inp, const real *w, const real *b,
		    int N, int C, int OC, int ith, int nth);

/* dinp [N,C] += dout·w. Splits rows of N. dinp may be NULL (no input gradient wanted). */
void matmul_backward_input(real *dinp, const real *dout, const real *w,
			   int N, int C, int OC, int ith, int nth);
/* dw [OC,C] += doutᵀ·inp; db [OC] += Σ_n dout (db may be NULL). Splits rows of OC. */
void matmul_backward_weight(real *dw, real *db, const real *dout, const real *inp,
			    int N, int C, int OC, int ith, int nth);

/* The same three with `ld` the row stride of out / dout (≥ OC): a band of OC columns of a
 * wider matrix. ld == OC is the dense case above. */
void matmul_forward_ld(real *out, int ld, const real *inp, const real *w, const real *b,
		       int N, int C, int OC, int ith, int nth);
void matmul_backward_input_ld(real *dinp, const real *dout, int ld, const real *w,
			      int N, int C, int OC, int ith, int nth);
void matmul_backward_weight_ld(real *dw, real *db, const real *dout, int ld, const real *inp,
			       int N, int C, int OC, int ith, int nth);

/*
 * Multi-head attention, causal (text) or bidirectional (causal = 0). qkv [B,T,3C] (q, k, v each [C], heads of hs = C/NH contiguous);
 * att [B,NH,T,T] softmax probabilities (saved); out [B,T,C]. Splits the B·NH (b, h) pairs.
 */
void attention_forward(real *out, real *att, const real *qkv, int B, int T, int C, int NH,
		       int causal, int ith, int nth);
/* dqkv [B,T,3C] +=; scratch: T·T reals per thread (scratch + ith·T·T). */
void attention_backward(real *dqkv, real *scratch, const real *dout, const real *att,
			const real *qkv, int B, int T, int C, int NH, int causal, int ith, int nth);

/* GELU, tanh approximation (GPT-2). out [n] = gelu(inp). Splits n. */
void gelu_forward(real *out, const real *inp, long n, int ith, int nth);
/* dinp [n] += gelu'(inp) ⊙ dout. */
void gelu_backward(real *dinp, const real *inp, const real *dout, long n, int ith, int nth);

/* out [N,C] = scale · (wte[tok] + wpe[t]); t = n mod T. scale 1 when no embedding scale;
 * wpe NULL: no positions (llama). The backward and scale gradient take wpe/dwpe NULL too. */
void embed_forward(real *out, const int *tok, const real *wte, const real *wpe, real scale,
		   int N, int T, int C, int ith, int nth);
/*
 * dwte [V,C] +=, dwpe [T,C] += from dout [N,C] ⊙ scale. Splits channels, so no two threads
 * touch the same element. The embedding-scale gradient is embed_scale_grad's job.
 */
void embed_backward(real *dwte, real *dwpe, const real *dout, const int *tok, real scale,
		    int N, int T, int C, int ith, int nth);

/* Partial of Σ dout ⊙ (wte[tok]+wpe[t]) over thread ith's rows, into *part (double). */
void embed_scale_grad(double *part, const real *dout, const int *tok, const real *wte,
		      const real *wpe, int N, int T, int C, int ith, int nth);

/*
 * Softmax cross-entropy over V classes. logits [N,V] is overwritten with dlogits = (p − onehot)/N
 * (the fused backward); losses [N] gets −log p[target]. Splits rows.
 */
void crossentropy_fused(real *logits, real *losses, const int *targets, int N, int V,
			int ith, int nth);
/* Loss only, logits left as they are (for validation). */
void crossentropy_forward(real *losses, const real *logits, const int *targets, int N, int V,
			  int ith, int nth);

/* out [n] = a + b. */
void add_forward(real *out, const real *a, const real *b, long n, int ith, int nth);
/* out [n] = a ⊙ s (s scalar); used for LNS 1/√l scaling. */
void scale_forward(real *out, const real *a, real s, long n, int ith, int nth);
/* dst [n] += a. */
void accumulate(real *dst, const real *a, long n, int ith, int nth);

/* SwiGLU: gu [N, 2F] = gate | up; out [N,F] = silu(gate) ⊙ up. Splits rows. */
void swiglu_forward(real *out, const real *gu, int N, int F, int ith, int nth);
/* dgu [N,2F] += ∂out/∂(gate|up) ⊙ dout. */
void swiglu_backward(real *dgu, const real *gu, const real *dout, int N, int F, int ith, int nth);

/*
 * Rotary positions, rotate-half form, in place on the q and k of qkv [B,T,3C]: in each head,
 * channel i < hs/2 pairs with i + hs/2 and turns by t·θ_i. tab = cos [T, hs/2] then sin [T, hs/2].
 * The backward turns the gradient back (the transpose: by −t·θ_i), in place on dqkv.
 */
void rope_forward(real *qkv, const real *tab, int B, int T, int C, int NH, int ith, int nth);
void rope_backward(real *dqkv, const real *tab, int B, int T, int C, int NH, int ith, int nth);

/* images [B, 28·28] → patches [B·P, p·p], patch q = (row, column) in row-major order, pixels
 * (py, px) row-major inside it. */
void patch_gather(real *patches, const real *images, int B, int p, int ith, int nth);
/* x [B,T,C]: x[b,0] = cls + pos[0]; x[b,1+q] = pe[b,q] + pos[1+q]. */
void vit_embed_forward(real *x, const real *pe, const real *cls, const real *pos, int B, int T,
		       int C, int ith, int nth);
/* dpe [B,T−1,C] = dx of the patch rows (written); dcls, dpos +=. Splits channels. */
void vit_embed_backward(real *dpe, real *dcls, real *dpos, const real *dx, int B, int T, int C,
			int ith, int nth);
/* pooled [B,C] = x[b,0] (cls) or the mean of x[b,1..T) (mean). The backward ADDS into dx. */
void pool_forward(real *pooled, const real *x, int B, int T, int C, int mean, int ith, int nth);
void pool_backward(real *dx, const real *dpooled, int B, int T, int C, int mean, int ith, int nth);

#endif
