/*
 * norm_powernorm.c — PowerNorm (NORMS.md §5; sIncerass/powernorm mask_powernorm.py), as the code
 * does it:
 *   group scaling per token first: x̃ = x_g / √(mean_g x² + 1e-5) over G contiguous groups of
 *   channels (ordinary gradient); then per channel the batch quadratic mean q = mean_tok x̃²;
 *   training (t = iters + 1): z = x̃/√(q+ε) while t ≤ warmup, z = x̃/√(ψ+ε) after;
 *   ψ ← ψ(t−1)/t + q/t while t < warmup, then always ψ ← α_fwd ψ + (1−α_fwd) q;
 *   evaluation: z = x̃/√(ψ+ε); y = γ z + β.
 * The backward is the paper's approximation (§5.3), with the code's choice of dividing by the
 * *batch* √(q+ε) even after warmup:
 *   ĝ = g γ;  g̃ = ĝ − (1−α_bkw) Γ z;  ∂L/∂x̃ = g̃/√(q+ε);  Γ ← Γ + mean_tok(g̃ z)  (old Γ used)
 *   then the group scaling's exact backward (RMSNorm with γ = 1, per group).
 * Buffers: running_phi ψ [d] (init 1), ema_gz Γ [d] (0), iters [1].
 * chan: q [d], 1/√(q+ε) [d], the forward's 1/√(·+ε) [d]; scalars: the fluctuation
 * (1/d)‖q − ψ‖ (ψ before the update), mean and max of q, G.
 */
#include <string.h>
#include <tgmath.h>

#include "norm.h"

#define PN_GROUP_EPS 1e-5   /* GroupScaling1D's own ε, independent of norm.eps */
#define PN_MAX_GROUPS 64    /* model.n_head's cap, the default group count */

enum { CH_Q, CH_IQ, CH_DEN, CH_N };
enum { SC_FLUCT, SC_QMEAN, SC_QMAX, SC_G, SC_N };

static int pn_groups(int d, const struct norm_cfg *cfg)
{
	int G = cfg->pn_groups;
	return G >= 1 && G <= PN_MAX_GROUPS && d % G == 0 ? G : 1;
}

/* 1/√(mean_g x² + 1e-5) for each of the G groups of row x. */
static void group_scales(real *rg, const real *restrict x, int d, int G)
{
	int cg = d / G;
	for (int g = 0; g < G; g++) {
		double s = 0;
		const real *restrict xg = x + (size_t)g * cg;
#pragma omp simd reduction(+ : s)
		for (int i = 0; i < cg; i++)
			s += (double)xg[i] * xg[i];
		rg[g] = (real)(1.0 / sqrt(s / cg + PN_GROUP_EPS));
	}
}

static void pn_fwd_stats(double *part, const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d, G = pn_groups(d, b->cfg), cg = d / G;
	real rg[PN_MAX_GROUPS];
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d;
		group_scales(rg, x, d, G);
		for (int g = 0; g < G; g++) {
			double *restrict q = part + (size_t)g * cg;
			const real *restrict xg = x + (size_t)g * cg;
			const real s = rg[g];
#pragma omp simd
			for (int i = 0; i < cg; i++) {
				real xt = xg[i] * s;
				q[i] += (double)(xt * xt);
			}
		}
	}
}

static void pn_fwd_finish(const struct norm_batch *b, const double *sum)
{
	const int d = b->d, N = b->N;
	const struct norm_cfg *cfg = b->cfg;
	real *q = b->chan + (size_t)CH_Q * d, *iq = b->chan + (size_t)CH_IQ * d;
	real *den = b->chan + (size_t)CH_DEN * d, *sc = b->chan + (size_t)CH_N * d;
	real *psi = b->buf, *iters = b->buf + 2 * (size_t)d;
	sc[SC_G] = (real)pn_groups(d, cfg);
	if (!sum) {
		for (int c = 0; c < d; c++)
			den[c] = iq[c] = (real)(1.0 / sqrt((double)psi[c] + cfg->eps));
		return;
	}
	const double t = (double)iters[0] + 1, a = cfg->pn_alpha_fwd;
	const int batch_q = t <= (double)cfg->pn_warmup;
	double fl = 0, qs = 0, qmax = 0;
	for (int c = 0; c < d; c++) {
		double qc = sum[c] / N;
		q[c] = (real)qc;
		iq[c] = (real)(1.0 / sqrt(qc + cfg->eps));
		den[c] = batch_q ? iq[c] : (real)(1.0 / sqrt((double)psi[c] + cfg->eps));
		double df = qc - psi[c];
		fl += df * df;
		qs += qc;
		qmax = qc > qmax ? qc : qmax;
		if (b->mode == NORM_MODE_TRAIN) {
			double ps = psi[c];
			if (t < (double)cfg->pn_warmup)
				ps = ps * (t - 1) / t + qc / t;
			psi[c] = (real)(a * ps + (1 - a) * qc);
		}
	}
	if (b->mode == NORM_MODE_TRAIN)
		iters[0] = (real)t;
	sc[SC_FLUCT] = (real)(sqrt(fl) / d);
	sc[SC_QMEAN] = (real)(qs / d);
	sc[SC_QMAX] = (real)qmax;
}

static void pn_fwd_apply(const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d, G = pn_groups(d, b->cfg), cg = d / G;
	const real *restrict gm = b->p, *restrict be = b->p + d;
	const real *restrict den = b->chan + (size_t)CH_DEN * d;
	real rg[PN_MAX_GROUPS];
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d;
		real *restrict y = b->out + (size_t)t * d;
		group_scales(rg, x, d, G);
		for (int g = 0; g < G; g++) {
			const real s = rg[g];
			const int c0 = g * cg;
#pragma omp simd
			for (int c = c0; c < c0 + cg; c++)
				y[c] = gm[c] * (x[c] * s * den[c]) + be[c];
		}
	}
}

/* One pass: dinp, and the sums Σ g̃z (for Γ), Σ g z (γ), Σ g (β). */
static void pn_bwd_stats(double *part, const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d, G = pn_groups(d, b->cfg), cg = d / G;
	const real *restrict gm = b->p, *restrict Gam = b->buf + d;
	const real *restrict den = b->chan + (size_t)CH_DEN * d;
	const real *restrict iq = b->chan + (size_t)CH_IQ * d;
	const real k = (real)(1 - b->cfg->pn_alpha_bkw);
	double *restrict sgz = part, *restrict sdz = part + d, *restrict sd = part + 2 * (size_t)d;
	real rg[PN_MAX_GROUPS], dxt[NORM_MAX_D];
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d, *restrict dy = b->dout + (size_t)t * d;
		real *restrict dx = b->dinp + (size_t)t * d;
		group_scales(rg, x, d, G);
		for (int g = 0; g < G; g++) {
			const real s = rg[g];
			const int c0 = g * cg;
			double m = 0;
#pragma omp simd reduction(+ : m)
			for (int c = c0; c < c0 + cg; c++) {
				real xt = x[c] * s, z = xt * den[c];
				real gt = dy[c] * gm[c] - k * Gam[c] * z;
				sgz[c] += (double)(gt * z);
				sdz[c] += (double)(dy[c] * z);
				sd[c] += dy[c];
				dxt[c] = gt * iq[c];
				m += (double)(dxt[c] * xt);
			}
			const real mg = (real)(m / cg);
#pragma omp simd
			for (int c = c0; c < c0 + cg; c++)
				dx[c] += s * (dxt[c] - x[c] * s * mg);
		}
	}
}

static void pn_bwd_finish(const struct norm_batch *b, const double *sum)
{
	const int d = b->d, N = b->N;
	real *Gam = b->buf + d;
	for (int c = 0; c < d; c++) {
		Gam[c] = (real)((double)Gam[c] + sum[c] / N);
		b->dparam[c] += (real)sum[d + c];
		b->dparam[d + c] += (real)sum[2 * (size_t)d + c];
	}
}

static real pn_pre_affine(const real *x, const real *chan, const real *p, int d, int c)
{
	(void)p;
	int G = (int)chan[(size_t)CH_N * d + SC_G], cg = d / G, g0 = c / cg * cg;
	double s = 0;
	for (int i = g0; i < g0 + cg; i++)
		s += (double)x[i] * x[i];
	real rg = (real)(1.0 / sqrt(s / cg + PN_GROUP_EPS));
	return x[c] * rg * chan[(size_t)CH_DEN * d + c];
}

static void pn_probe(double *v, const real *chan, const real *buf, int d,
		     const struct norm_cfg *cfg)
{
	(void)buf;
	(void)cfg;
	const real *sc = chan + (size_t)CH_N * d;
	v[0] = sc[SC_FLUCT];
	v[1] = sc[SC_QMEAN];
	v[2] = sc[SC_QMAX];
}

static const struct norm_batch_ops pn_ops = {
	.n_fwd_stats = 1,
	.n_bwd_stats = 3,
	.fwd_stats = pn_fwd_stats,
	.fwd_finish = pn_fwd_finish,
	.fwd_apply = pn_fwd_apply,
	.bwd_stats = pn_bwd_stats,
	.bwd_finish = pn_bwd_finish,
	.bwd_apply = NULL,
};

const struct norm_kind norm_powernorm = {
	.name = "powernorm",
	.default_eps = 1e-5,
	.wants_embed_scale = 0,
	.n_tensors = 2,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
		{ "bias", NORM_SHAPE_D, NORM_INIT_ZERO },
	},
	.cache_per_token = 0,
	.pre_affine = pn_pre_affine,
	.n_buffers = 3,
	.buffers = {
		{ "running_phi", NORM_BUF_D, 1.0 },
		{ "ema_gz", NORM_BUF_D, 0.0 },
		{ "iters", NORM_BUF_SCALAR, 0.0 },
	},
	.batch = &pn_ops,
	.chan_per_channel = CH_N,
	.chan_scalars = SC_N,
	.approx_backward = 1,
	.hparams = { "norm.pn.alpha_fwd", "norm.pn.alpha_bkw", "norm.pn.warmup", "norm.pn.groups" },
	.n_probes = 3,
	.probe_names = { "fluct_var", "q_mean", "q_max" },
	.probe = pn_probe,
};
