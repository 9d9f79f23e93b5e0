/*
 * model_core.h — what the model core lends the architectures (arch_*.c, model_branches.c) and
 * the CPU backend: op helpers and the shared branches. Not for host code outside the engine core.
 */
#ifndef MODEL_CORE_H
#define MODEL_CORE_H

#include "model.h"

#define MODEL_NONE ((size_t)-1)   /* an absent parameter (a bias when bias is off) */

/* Branch parameter slots in model_block.w[b][]. */
enum { BW_IN_W, BW_IN_B, BW_OUT_W, BW_OUT_B };

/* out [N,OC] = inp·Wᵀ (+ b); w, b offsets into the parameters (b may be MODEL_NONE). */
void model_mm_fwd(struct model *m, real *out, const real *inp, size_t w, size_t b, int N, int C,
		  int OC);
/* dinp (+=, may be NULL), dW, db (+=) for out = inp·Wᵀ + b. */
void model_mm_bwd(struct model *m, real *dinp, const real *dout, const real *inp, size_t w,
		  size_t b, int N, int C, int OC);
/* The same on a band of OC columns of out / dout, whose rows are ld apart (LN removal's split
 * qkv). */
void model_mm_fwd_ld(struct model *m, real *out, int ld, const real *inp, size_t w, size_t b,
		     int N, int C, int OC);
void model_mm_bwd_ld(struct model *m, real *dinp, const real *dout, int ld, const real *inp,
		     size_t w, size_t b, int N, int C, int OC);
/* An element-wise op over n reals (OP_ADD, OP_SCALE, OP_ACC, OP_COPY, OP_ZERO, ...). */
void model_ew(struct model *m, enum model_op k, real *o, const real *a, const real *b, real s,
	      long n);

/* The Transformer branches every architecture here uses, steered by the layout's flags
 * (causal, rope, swiglu, bias): tensors, activations, forward and backward. */
void branch_layout(struct layout_builder *lb, const struct spec *s, int l, int b);
void branch_carve(struct carver *cv, struct model *m, int l, int b);
void branch_carve_scratch(struct carver *cv, struct model *m, int nth);
void branch_fwd(struct model *m, int l, int b, const real *inp, real *out);
void branch_bwd(struct model *m, int l, int b, const real *inp, const real *dout, real *dinp);
/* Weights the two branches of one block multiply with (for FLOP counts). */
double branch_matmul_params(const struct model_layout *lay);

#endif
