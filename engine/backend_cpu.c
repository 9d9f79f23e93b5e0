/*
 * backend_cpu.c — the CPU backend: model memory is host memory from nl_calloc, upload and
 * download are copies, and every op runs on the model's pool with each thread taking its share
 * (pool_split), so one op's result does not depend on timing. Per-thread partial sums (norm
 * parameter gradients, the embedding scale, sums of squares, batch-statistic norms' per-channel
 * sums) are reduced in thread order here, which keeps results bit-reproducible for a given
 * thread count.
 */
#include <string.h>
#include <tgmath.h>

#include "lnremove.h"
#include "model_core.h"
#include "ops.h"

static void *cpu_alloc(size_t bytes)
{
	return nl_calloc(bytes ? bytes : 1, 1);
}

static void cpu_release(void *p)
{
	nl_free(p);
}

static void cpu_upload(struct model *m, void *dev, const void *host, size_t bytes)
{
	(void)m;
	if (bytes)
		memmove(dev, host, bytes);
}

static void cpu_download(struct model *m, void *host, const void *dev, size_t bytes)
{
	(void)m;
	if (bytes)
		memmove(host, dev, bytes);
}

static void cpu_sync(struct model *m)
{
	(void)m;
}

static void adamw_part(const struct model_opargs *op, int ith, int nth)
{
	const struct model_adamw *c = op->extra;
	const struct model_layout *lay = &op->m->lay;
	real *restrict p = op->m->params, *restrict g = op->m->grads;
	real *restrict m = c->m, *restrict v = c->v;
	for (int ti = 0; ti < lay->n_tensors; ti++) {
		const struct model_tensor *t = &lay->tensors[ti];
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

static void op_exec(void *ctx, int ith, int nth)
{
	struct model_opargs *op = ctx;
	struct model *m = op->m;
	const struct model_layout *lay = &m->lay;
	int r0, r1, hs = lay->C / lay->NH;
	(void)hs;
	switch (op->k) {
	case OP_MM_FWD: matmul_forward(op->o, op->a, op->b, op->c, op->N, op->C, op->OC, ith, nth); break;
	case OP_MM_BWD_IN: matmul_backward_input(op->o, op->a, op->b, op->N, op->C, op->OC, ith, nth); break;
	case OP_MM_BWD_W: matmul_backward_weight(op->o, op->o2, op->a, op->b, op->N, op->C, op->OC, ith, nth); break;
	case OP_ATT_FWD: attention_forward(op->o, op->o2, op->a, lay->B, lay->T, lay->C, lay->NH, lay->causal, ith, nth); break;
	case OP_ATT_BWD: attention_backward(op->o, op->o2, op->a, op->b, op->c, lay->B, lay->T, lay->C, lay->NH, lay->causal, ith, nth); break;
	case OP_GELU_FWD: gelu_forward(op->o, op->a, op->n, ith, nth); break;
	case OP_GELU_BWD: gelu_backward(op->o, op->a, op->b, op->n, ith, nth); break;
	case OP_SWIGLU_FWD: swiglu_forward(op->o, op->a, lay->N, lay->F, ith, nth); break;
	case OP_SWIGLU_BWD: swiglu_backward(op->o, op->a, op->b, lay->N, lay->F, ith, nth); break;
	case OP_ROPE_FWD: rope_forward(op->o, op->a, lay->B, lay->T, lay->C, lay->NH, ith, nth); break;
	case OP_ROPE_BWD: rope_backward(op->o, op->a, lay->B, lay->T, lay->C, lay->NH, ith, nth); break;
	case OP_EMB_FWD: embed_forward(op->o, op->ia, op->a, op->b, op->c ? *op->c : 1, op->N, lay->T, lay->S, ith, nth); break;
	case OP_EMB_BWD: embed_backward(op->o, op->o2, op->a, op->ia, op->c ? *op->c : 1, op->N, lay->T, lay->S, ith, nth); break;
	case OP_ESCALE_GRAD: embed_scale_grad(&op->part[ith], op->a, op->ia, op->b, op->c, op->N, lay->T, lay->S, ith, nth); break;
	case OP_PATCH_GATHER: patch_gather(op->o, op->a, lay->B, lay->patch, ith, nth); break;
	case OP_VIT_EMB_FWD: vit_embed_forward(op->o, op->a, op->b, op->c, lay->B, lay->T, lay->S, ith, nth); break;
	case OP_VIT_EMB_BWD: vit_embed_backward(op->o, op->o2, (real *)op->b, op->a, lay->B, lay->T, lay->S, ith, nth); break;
	case OP_POOL_FWD: pool_forward(op->o, op->a, lay->B, lay->T, lay->S, lay->pool_mean, ith, nth); break;
	case OP_POOL_BWD: pool_backward(op->o, op->a, lay->B, lay->T, lay->S, lay->pool_mean, ith, nth); break;
	case OP_CE_FUSED: crossentropy_fused(op->o, op->o2, op->ia, op->N, op->OC, ith, nth); break;
	case OP_CE_FWD: crossentropy_forward(op->o2, op->a, op->ia, op->N, op->OC, ith, nth); break;
	case OP_ADD: add_forward(op->o, op->a, op->b, op->n, ith, nth); break;
	case OP_SCALE: scale_forward(op->o, op->a, op->s, op->n, ith, nth); break;
	case OP_ACC: accumulate(op->o, op->a, op->n, ith, nth); break;
	case OP_COPY: {
		long i0 = op->n * ith / nth, i1 = op->n * (ith + 1) / nth;
		memcpy(op->o + i0, op->a + i0, sizeof(real) * (size_t)(i1 - i0));
		break;
	}
	case OP_ZERO: {
		long i0 = op->n * ith / nth, i1 = op->n * (ith + 1) / nth;
		memset(op->o + i0, 0, sizeof(real) * (size_t)(i1 - i0));
		break;
	}
	case OP_NORM_FWD:
		pool_split(op->N, ith, nth, &r0, &r1);
		lay->nk->forward(op->o, op->o2, op->a, m->params + op->site->off, r0, r1, lay->S, &op->site->cfg);
		break;
	case OP_NORM_BWD: {
		double *dp = m->dnorm + (size_t)ith * m->dnorm_stride;
		memset(dp, 0, sizeof(double) * m->dnorm_stride);
		pool_split(op->N, ith, nth, &r0, &r1);
		lay->nk->backward(op->o, dp, op->a, op->b, op->c, m->params + op->site->off, r0, r1, lay->S, &op->site->cfg);
		break;
	}
	case OP_SUMSQ: {
		size_t n = (size_t)op->n;
		size_t i0 = n * (size_t)ith / (size_t)nth, i1 = n * (size_t)(ith + 1) / (size_t)nth;
		const real *g = op->a;
		double s = 0;
#pragma omp simd reduction(+ : s)
		for (size_t i = i0; i < i1; i++)
			s += (double)g[i] * g[i];
		op->part[ith] = s;
		break;
	}
	case OP_ADAMW: adamw_part(op, ith, nth); break;
	case OP_MM_FWD_LD: matmul_forward_ld(op->o, (int)op->n, op->a, op->b, op->c, op->N, op->C, op->OC, ith, nth); break;
	case OP_MM_BWD_IN_LD: matmul_backward_input_ld(op->o, op->a, (int)op->n, op->b, op->N, op->C, op->OC, ith, nth); break;
	case OP_MM_BWD_W_LD: matmul_backward_weight_ld(op->o, op->o2, op->a, (int)op->n, op->b, op->N, op->C, op->OC, ith, nth); break;
	case OP_FAKENORM_FWD:
		pool_split(op->N, ith, nth, &r0, &r1);
		fakenorm_forward(op->o, op->o2, op->a, m->params + op->site->off, r0, r1, lay->S, m->lnr->center, op->s);
		break;
	case OP_FAKENORM_BWD: {
		double *dp = m->dnorm + (size_t)ith * m->dnorm_stride;
		memset(dp, 0, sizeof(double) * m->dnorm_stride);
		pool_split(op->N, ith, nth, &r0, &r1);
		fakenorm_backward(op->o, dp, op->a, op->b, op->c, m->params + op->site->off, r0, r1, lay->S, m->lnr->center, op->s);
		break;
	}
	case OP_NORM_STD:
		pool_split(op->N, ith, nth, &r0, &r1);
		op->part[ith] = norm_token_std_sum(op->a, r0, r1, lay->S, m->lnr->center, op->site->cfg.eps);
		break;
	case OP_COUNT: break;
	}
}

/*
 * Batch-statistic norms (norm.h): each pass splits the rows across the pool; a stats pass leaves
 * one block of double partials per thread in m->dnorm, which are summed here in thread order
 * (bit-reproducible for a thread count) before the kind's serial finish runs on this thread.
 */
enum batch_phase { PH_FWD_STATS, PH_FWD_APPLY, PH_BWD_STATS, PH_BWD_APPLY };

struct batch_job {
	struct model *m;
	const struct norm_batch_ops *o;
	struct norm_batch nb;
	enum batch_phase ph;
};

static void batch_part(void *ctx, int ith, int nth)
{
	struct batch_job *j = ctx;
	struct model *m = j->m;
	double *part = m->dnorm + (size_t)ith * m->dnorm_stride;
	int r0, r1;
	pool_split(j->nb.N, ith, nth, &r0, &r1);
	switch (j->ph) {
	case PH_FWD_STATS:
		memset(part, 0, sizeof(double) * (size_t)j->o->n_fwd_stats * (size_t)j->nb.d);
		j->o->fwd_stats(part, &j->nb, r0, r1);
		break;
	case PH_FWD_APPLY: j->o->fwd_apply(&j->nb, r0, r1); break;
	case PH_BWD_STATS:
		memset(part, 0, sizeof(double) * (size_t)j->o->n_bwd_stats * (size_t)j->nb.d);
		j->o->bwd_stats(part, &j->nb, r0, r1);
		break;
	case PH_BWD_APPLY: j->o->bwd_apply(&j->nb, r0, r1); break;
	}
}

/* The threads' partials summed in thread order into thread 0's block; returns it. */
static const double *batch_reduce(struct model *m, int n)
{
	int nth = pool_size(m->pool);
	double *s0 = m->dnorm;
	for (int i = 0; i < n; i++) {
		double s = s0[i];
		for (int t = 1; t < nth; t++)
			s += m->dnorm[(size_t)t * m->dnorm_stride + i];
		s0[i] = s;
	}
	return s0;
}

static void batch_exec(struct model *m, struct model_opargs *op)
{
	const struct model_layout *lay = &m->lay;
	const struct model_site *si = op->site;
	struct batch_job j = { .m = m, .o = lay->nk->batch };
	size_t tok = (size_t)op->N * (size_t)lay->nk->cache_per_token;
	j.nb.p = m->params + si->off;
	j.nb.buf = m->bufs + si->buf_off;
	j.nb.N = op->N;
	j.nb.d = lay->S;
	j.nb.cfg = &si->cfg;
	if (op->k == OP_NORM_FWD) {
		j.nb.out = op->o;
		j.nb.cache = op->o2;
		j.nb.chan = op->o2 + tok;
		j.nb.inp = op->a;
		j.nb.mode = op->mode;
		if (op->mode == NORM_MODE_EVAL) {
			j.o->fwd_finish(&j.nb, NULL);
		} else {
			j.ph = PH_FWD_STATS;
			pool_run(m->pool, batch_part, &j);
			j.o->fwd_finish(&j.nb, batch_reduce(m, j.o->n_fwd_stats * lay->S));
		}
		j.ph = PH_FWD_APPLY;
		pool_run(m->pool, batch_part, &j);
		return;
	}
	/* backward: the cache (and its chan) is the forward's; the kind writes its backward
	 * coefficients into chan */
	j.nb.dinp = op->o;
	j.nb.dout = op->a;
	j.nb.cache = (real *)op->b;
	j.nb.chan = (real *)op->b + tok;
	j.nb.inp = op->c;
	j.nb.dparam = m->grads + si->off;
	j.nb.mode = NORM_MODE_TRAIN;
	j.ph = PH_BWD_STATS;
	pool_run(m->pool, batch_part, &j);
	j.o->bwd_finish(&j.nb, batch_reduce(m, j.o->n_bwd_stats * lay->S));
	if (j.o->bwd_apply) {
		j.ph = PH_BWD_APPLY;
		pool_run(m->pool, batch_part, &j);
	}
}

static void cpu_exec(struct model *m, struct model_opargs *op)
{
	if ((op->k == OP_NORM_FWD || op->k == OP_NORM_BWD) && m->lay.nk->batch) {
		batch_exec(m, op);
		return;
	}
	pool_run(m->pool, op_exec, op);
	int nth = pool_size(m->pool);
	if (op->k == OP_NORM_BWD || op->k == OP_FAKENORM_BWD) {
		size_t np = norm_param_count(m->lay.nk, m->lay.S);
		real *g = m->grads + op->site->off;
		for (size_t j = 0; j < np; j++) {
			double s = 0;
			for (int t = 0; t < nth; t++)
				s += m->dnorm[(size_t)t * m->dnorm_stride + j];
			g[j] += (real)s;
		}
	} else if (op->k == OP_ESCALE_GRAD) {
		double s = 0;
		for (int t = 0; t < nth; t++)
			s += op->part[t];
		op->o[0] += (real)s;
	}
}

const struct model_backend model_backend_cpu = {
	.name = "cpu",
	.alloc = cpu_alloc,
	.release = cpu_release,
	.upload = cpu_upload,
	.download = cpu_download,
	.exec = cpu_exec,
	.sync = cpu_sync,
};
