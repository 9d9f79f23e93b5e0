/*
 * lnremove.c — FakeLayerNorm state, kernels and schedule (see lnremove.h, NORMS.md §8.1-8.2).
 * The kernels are plain loops over token ranges with row sums in double; the state is host memory
 * plus two device buffers (the V-path inputs of attention and a gradient scratch). Owned by the
 * model's thread.
 */
#include "lnremove.h"

#include <string.h>
#include <tgmath.h>

#include "model_core.h"

const char *const lnr_phase_names[LNR_NPHASE] = { "ln2", "ln1_qk", "ln1_v", "ln_f" };

int lnr_kind_ok(const char *norm_name)
{
	return strcmp(norm_name, "layernorm") == 0 || strcmp(norm_name, "rmsnorm") == 0;
}

int model_lnr_init(struct model *m, double momentum, struct nl_err *err)
{
	const struct model_layout *lay = &m->lay;
	if (!lnr_kind_ok(lay->nk->name))
		return nl_err_set(err, NL_EINVAL, "LN removal replaces layernorm or rmsnorm, not %s",
				  lay->nk->name);
	if (lay->arch->data != MODEL_DATA_TEXT)
		return nl_err_set(err, NL_EINVAL, "LN removal runs on the language models (gpt, "
				  "llama), not %s", lay->arch->name);
	for (int l = 0; l < lay->L; l++)
		if (lay->blocks[l].kind != MODEL_BLOCK_PRE || lay->blocks[l].scale != 1 ||
		    lay->site_emb >= 0 || lay->site_f < 0)
			return nl_err_set(err, NL_EINVAL, "LN removal needs the pre placement "
					  "(block %d is not a plain Pre-LN block)", l);
	struct model_lnr *r = nl_calloc(1, sizeof *r);
	if (!r)
		return nl_err_set(err, NL_ENOMEM, "out of memory for LN-removal state");
	size_t nc = (size_t)lay->N * lay->C, cpt = (size_t)lay->nk->cache_per_token;
	r->center = strcmp(lay->nk->name, "layernorm") == 0;
	r->momentum = (real)momentum;
	r->n_sites = lay->n_sites;
	r->site = nl_calloc((size_t)lay->n_sites, sizeof *r->site);
	r->xv = m->be->alloc(sizeof(real) * (size_t)lay->L * nc);
	r->cv = m->be->alloc(sizeof(real) * (size_t)lay->L * (size_t)lay->N * cpt);
	r->dxv = m->be->alloc(sizeof(real) * nc);
	m->lnr = r;
	if (!r->site || !r->xv || !r->cv || !r->dxv) {
		model_lnr_free(m);
		return nl_err_set(err, NL_ENOMEM, "out of memory for LN-removal state");
	}
	return 0;
}

void model_lnr_free(struct model *m)
{
	struct model_lnr *r = m->lnr;
	if (!r)
		return;
	if (m->be) {
		m->be->release(r->xv);
		m->be->release(r->cv);
		m->be->release(r->dxv);
	}
	nl_free(r->site);
	nl_free(r);
	m->lnr = NULL;
}

static double site_std(struct model *m, const struct model_site *si)
{
	struct model_opargs op = { .k = OP_NORM_STD, .a = si->input, .site = si, .N = m->lay.N };
	model_run(m, &op);
	double s = 0;
	for (int t = 0; t < pool_size(m->pool); t++)
		s += op.part[t];
	return s / m->lay.N;
}

void model_lnr_measure(struct model *m, double *out)
{
	for (int i = 0; i < m->lay.n_sites; i++)
		out[i] = site_std(m, &m->lay.sites[i]);
}

void model_lnr_track(struct model *m)
{
	struct model_lnr *r = m->lnr;
	for (int i = 0; i < m->lay.n_sites; i++) {
		double v = site_std(m, &m->lay.sites[i]);
		struct lnr_site *ls = &r->site[i];
		ls->ema = ls->ema > 0 ? (real)(r->momentum * ls->ema + (1 - r->momentum) * v) : (real)v;
	}
}

/* ---------- kernels ---------- */

void fakenorm_forward(real *out, real *cache, const real *inp, const real *p, int t0, int t1,
		      int d, int center, real inv)
{
	const real *restrict g = p, *restrict b = p + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d;
		real *restrict y = out + (size_t)t * d;
		if (center) {
			double s = 0;
#pragma omp simd reduction(+ : s)
			for (int i = 0; i < d; i++)
				s += x[i];
			const real mu = (real)(s / d);
#pragma omp simd
			for (int i = 0; i < d; i++)
				y[i] = (x[i] - mu) * inv * g[i] + b[i];
			cache[2 * t] = mu;
			cache[2 * t + 1] = inv;
		} else {
#pragma omp simd
			for (int i = 0; i < d; i++)
				y[i] = x[i] * inv * g[i];
			cache[t] = inv;
		}
	}
}

void fakenorm_backward(real *dinp, double *dp, const real *dout, const real *cache,
		       const real *inp, const real *p, int t0, int t1, int d, int center, real inv)
{
	const real *restrict g = p;
	double *restrict dg = dp, *restrict db = dp + d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d, *restrict dy = dout + (size_t)t * d;
		real *restrict dx = dinp + (size_t)t * d;
		const real mu = center ? cache[2 * t] : 0;
		/* y = γ ⊙ (x − μ)·inv + β with μ = mean_d x: ∂L/∂x = inv·(h − mean_d h), h = dy ⊙ γ
		 * (no std term: σ is a constant) */
		double mh = 0;
		if (center) {
#pragma omp simd reduction(+ : mh)
			for (int i = 0; i < d; i++)
				mh += dy[i] * g[i];
			mh /= d;
		}
		const real a = (real)mh;
#pragma omp simd
		for (int i = 0; i < d; i++)
			dx[i] += inv * (dy[i] * g[i] - a);
		for (int i = 0; i < d; i++) {
			dg[i] += (double)(dy[i] * (x[i] - mu) * inv);
			if (center)
				db[i] += dy[i];
		}
	}
}

double norm_token_std_sum(const real *inp, int t0, int t1, int d, int center, double eps)
{
	double sum = 0;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = inp + (size_t)t * d;
		double s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
		for (int i = 0; i < d; i++) {
			s += x[i];
			q += (double)x[i] * x[i];
		}
		double mu = center ? s / d : 0, var = q / d - mu * mu;
		sum += sqrt((var > 0 ? var : 0) + eps);
	}
	return sum;
}

/* ---------- the schedule ---------- */

long lnr_removal_step(const struct spec_lnremove *c, int L, int phase, int layer)
{
	if (c->mode == SPEC_LNR_ALL_AT_ONCE)
		return c->start;
	long qk0 = c->start + (long)c->gap_ln2 * L, v0 = qk0 + (long)c->gap_ln1_qk * L;
	switch (phase) {
	case LNR_LN2: return c->start + (long)c->gap_ln2 * layer;
	case LNR_LN1_QK: return qk0 + (long)c->gap_ln1_qk * layer;
	case LNR_LN1_V: return v0 + (long)c->gap_ln1_v * layer;
	default: return v0 + (long)c->gap_ln1_v * L;
	}
}

long lnr_last_step(const struct spec_lnremove *c, int L)
{
	return lnr_removal_step(c, L, LNR_LN_F, 0);
}
