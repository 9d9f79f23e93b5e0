/*
 * optim.h — AdamW with decoupled weight decay on 2-D weights only (never on γ, β, α, s, biases or
 * the embedding scale), global grad-norm clipping, and the learning-rate schedule (linear warmup,
 * then cosine to min_lr, or constant). Moments live in one allocation each, parallel to the
 * parameters, in the model backend's memory; the update is one op (OP_ADAMW) over the tensor
 * table, and the gradient norm one OP_SUMSQ.
 */
#ifndef OPTIM_H
#define OPTIM_H

#include "model.h"
#include "spec.h"

struct adamw {
	const struct model_backend *be;  /* whose memory holds the moments */
	real *m, *v;          /* [n_params] each in the backend's memory, owned */
	size_t n;
};

int adamw_init(struct adamw *o, struct model *model);
void adamw_free(struct adamw *o);

/* Learning rate for 0-based step `step` of spec s. */
double optim_lr(const struct spec_train *t, long step);

/* ‖grads‖₂ over all parameters (double partials per thread, summed in thread order). */
double optim_grad_norm(struct model *model);

/*
 * One AdamW update at 0-based step `step` (bias correction uses step+1) with learning rate lr.
 * Gradients are scaled by clip_scale (1 = no clipping) as they are read.
 */
void adamw_update(struct adamw *o, struct model *model, const struct spec_train *t, long step,
		  double lr, double clip_scale);

#endif
