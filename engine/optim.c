/*
 * optim.c — AdamW, clipping and the schedule. The update and the gradient norm are ops on the
 * model's backend (OP_ADAMW, OP_SUMSQ; the CPU's splits every tensor over the threads, so results
 * do not depend on timing).
 */
#include "optim.h"

#include <tgmath.h>
#include <string.h>

int adamw_init(struct adamw *o, struct model *model)
{
	o->be = model->be;
	o->n = model->lay.n_params;
	o->m = o->be->alloc(sizeof(real) * o->n);
	o->v = o->be->alloc(sizeof(real) * o->n);
	if (!o->m || !o->v) {
		adamw_free(o);
		return NL_ENOMEM;
	}
	return 0;
}

void adamw_free(struct adamw *o)
{
	if (o->be) {
		o->be->release(o->m);
		o->be->release(o->v);
	}
	o->m = o->v = NULL;
}

double optim_lr(const struct spec_train *t, long step)
{
	if (step < t->warmup)
		return t->lr * (double)(step + 1) / (double)t->warmup;
	if (t->schedule == SPEC_SCHED_CONSTANT || t->steps <= t->warmup)
		return t->lr;
	double r = (double)(step - t->warmup) / (double)(t->steps - t->warmup);
	if (r > 1)
		r = 1;
	return t->min_lr + 0.5 * (1 + cos(3.14159265358979323846 * r)) * (t->lr - t->min_lr);
}

double optim_grad_norm(struct model *model)
{
	struct model_opargs op = { .k = OP_SUMSQ, .a = model->grads, .n = (long)model->lay.n_params };
	model_run(model, &op);
	double s = 0;
	for (int t = 0; t < pool_size(model->pool); t++)
		s += op.part[t];
	return sqrt(s);
}

void adamw_update(struct adamw *o, struct model *model, const struct spec_train *t, long step,
		  double lr, double clip_scale)
{
	struct model_adamw c = {
		.m = o->m, .v = o->v, .lr = (real)lr, .b1 = (real)t->beta1, .b2 = (real)t->beta2,
		.eps = (real)t->adam_eps, .wd = (real)t->weight_decay,
		.bc1 = (real)(1 - pow(t->beta1, (double)(step + 1))),
		.bc2 = (real)(1 - pow(t->beta2, (double)(step + 1))),
		.clip = (real)clip_scale,
	};
	struct model_opargs op = { .k = OP_ADAMW, .extra = &c };
	model_run(model, &op);
}
