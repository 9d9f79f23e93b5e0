/*
 * optim.c — AdamW, clipping and the schedule. Runs on the model's pool: every thread takes its
 * share of every tensor, so one dispatch covers the whole update and results do not depend on
 * timing (each element is touched by exactly one thread, in a fixed split).
 */
#include "optim.h"

#include <tgmath.h>
#include <string.h>

int adamw_init(struct adamw *o, size_t n)
{
	o->n = n;
	o->m = nl_calloc(n, sizeof(real));
	o->v = nl_calloc(n, sizeof(real));
	if (!o->m || !o->v) {
		adamw_free(o);
		return NL_ENOMEM;
	}
	return 0;
}

void adamw_free(struct adamw *o)
{
	nl_free(o->m);
	nl_free(o->v);
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

struct norm_ctx {
	const real *g;
	size_t n;
	double part[POOL_MAX_THREADS];
};

static void grad_norm_part(void *ctx, int ith, int nth)
{
	struct norm_ctx *c = ctx;
	size_t i0 = c->n * (size_t)ith / (size_t)nth, i1 = c->n * (size_t)(ith + 1) / (size_t)nth;
	const real *g = c->g;
	double s = 0;
#pragma omp simd reduction(+ : s)
	for (size_t i = i0; i < i1; i++)
		s += (double)g[i] * g[i];
	c->part[ith] = s;
}

double optim_grad_norm(struct gpt *model)
{
	struct norm_ctx c = { .g = model->grads, .n = model->lay.n_params };
	pool_run(model->pool, grad_norm_part, &c);
	double s = 0;
	for (int t = 0; t < pool_size(model->pool); t++)
		s += c.part[t];
	return sqrt(s);
}

struct update_ctx {
	struct adamw *o;
	struct gpt *model;
	real lr, b1, b2, eps, wd, bc1, bc2, clip;
};

static void update_part(void *ctx, int ith, int nth)
{
	struct update_ctx *c = ctx;
	const struct gpt_layout *lay = &c->model->lay;
	real *restrict p = c->model->params, *restrict g = c->model->grads;
	real *restrict m = c->o->m, *restrict v = c->o->v;
	for (int ti = 0; ti < lay->n_tensors; ti++) {
		const struct gpt_tensor *t = &lay->tensors[ti];
		size_t i0 = t->off + t->len * (size_t)ith / (size_t)nth;
		size_t i1 = t->off + t->len * (size_t)(ith + 1) / (size_t)nth;
		const real wd = t->decay ? c->wd : 0, b1 = c->b1, b2 = c->b2, lr = c->lr, eps = c->eps;
		const real clip = c->clip, ibc1 = 1 / c->bc1, ibc2 = 1 / c->bc2;
#pragma omp simd
		for (size_t i = i0; i < i1; i++) {
			real gi = g[i] * clip;
			m[i] = b1 * m[i] + (1 - b1) * gi;
			v[i] = b2 * v[i] + (1 - b2) * gi * gi;
			real mh = m[i] * ibc1, vh = v[i] * ibc2;
			p[i] -= lr * (mh / (sqrt(vh) + eps) + wd * p[i]);
		}
	}
}

void adamw_update(struct adamw *o, struct gpt *model, const struct spec_train *t, long step,
		  double lr, double clip_scale)
{
	struct update_ctx c = {
		.o = o, .model = model, .lr = (real)lr, .b1 = (real)t->beta1, .b2 = (real)t->beta2,
		.eps = (real)t->adam_eps, .wd = (real)t->weight_decay,
		.bc1 = (real)(1 - pow(t->beta1, (double)(step + 1))),
		.bc2 = (real)(1 - pow(t->beta2, (double)(step + 1))),
		.clip = (real)clip_scale,
	};
	pool_run(model->pool, update_part, &c);
}
