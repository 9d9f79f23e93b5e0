/*
 * norm_un.c — Unified Normalization (NORMS.md §6; hikvision-research/Unified-Normalization
 * UN2dFunction), as the code does it. No mean subtraction: a per-channel second moment.
 * Training (t = iters + 1, k = t mod W):
 *   q = mean_tok x²;  v_rec = unbiased variance of √buffer_x2 over all W·d entries (before the
 *   write);  buffer_x2[k] ← q;  with outlier filtration and t ≥ warmup: AM and GM of the window
 *   per channel, and if any channel has AM − GM > W·v_rec the batch is skipped (buffer_x2[k] ←
 *   running_var, skip_counter + 1). A window of 1 always counts as skipped (the code's rule).
 *   var = q while t ≤ W, t < warmup or skipped, else the window's GM (current batch included);
 *   r = √(var+ε)/√(running_var+ε) (running_var before the update), exactly 1 while
 *   t ≤ r_free_after or skipped, else clamped to [1/r_max, r_max];
 *   z = x/√(var+ε); running_var ← m·running_var + (1−m)·var; y = γ z + β.
 *   log(buffer_x2) is taken of max(value, 1e-12): the window starts at zero, and log 0 would make
 *   GM 0 and z = x/√ε explode (§6.5).
 * Evaluation: y = γ x/√(running_var+ε) + β.
 * Backward, the paper's approximation (§6.3): ĝ = g γ r; gz = mean_tok(ĝ z); buffer_gz[k] ←
 * (skipped ? ema_gz : gz); mgz = gz while t ≤ W, t < warmup or skipped, else the window mean;
 * ema_gz ← m·ema_gz + (1−m)·mgz; ∂L/∂x = (ĝ − (skipped ? mgz : ema_gz) z)/√(var+ε);
 * ∂L/∂γ = Σ g r z, ∂L/∂β = Σ g.
 * chan: 1/√(var+ε) [d], r [d], the backward's coefficient [d]; scalars: skipped, t, and the probes
 * (fluctuation (1/d)‖q − running_var‖, max over channels of AM − GM, the threshold W·v_rec, mean
 * and max of q).
 */
#include <math.h>
#include <string.h>

#include "norm.h"

#define UN_LOG_FLOOR 1e-12

enum { CH_INV, CH_R, CH_COEF, CH_N };
enum { SC_SKIP, SC_T, SC_FLUCT, SC_GAP, SC_THRESH, SC_QMEAN, SC_QMAX, SC_N };
/* buffer offsets, in declaration order */
enum { B_RV, B_EMA, B_X2 };

struct un_bufs {
	real *rv, *ema, *x2, *gz, *iters, *skips;
};

static struct un_bufs un_bufs(real *buf, int d, int W)
{
	struct un_bufs u;
	u.rv = buf;
	u.ema = buf + d;
	u.x2 = buf + 2 * (size_t)d;
	u.gz = u.x2 + (size_t)W * d;
	u.iters = u.gz + (size_t)W * d;
	u.skips = u.iters + 1;
	return u;
}

static int un_window(const struct norm_cfg *cfg)
{
	return cfg->un_window >= 1 ? cfg->un_window : 1;
}

static void un_fwd_stats(double *part, const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++)
			part[c] += (double)(x[c] * x[c]);
	}
}

static void un_fwd_finish(const struct norm_batch *b, const double *sum)
{
	const int d = b->d, N = b->N, W = un_window(b->cfg);
	const struct norm_cfg *cfg = b->cfg;
	struct un_bufs u = un_bufs(b->buf, d, W);
	real *inv = b->chan + (size_t)CH_INV * d, *r = b->chan + (size_t)CH_R * d;
	real *sc = b->chan + (size_t)CH_N * d;
	if (!sum) {
		for (int c = 0; c < d; c++) {
			inv[c] = (real)(1.0 / sqrt((double)u.rv[c] + cfg->eps));
			r[c] = 1;
		}
		sc[SC_SKIP] = 0;
		return;
	}
	const long t = (long)u.iters[0] + 1;
	const int k = (int)(t % W);
	const int train = b->mode == NORM_MODE_TRAIN;
	/* the window as it is after buffer_x2[k] ← q (BATCH does not write it: slot k reads q) */
#define X2(j, c) ((j) == k ? sum[c] / N : (double)u.x2[(size_t)(j) * d + (c)])
	/* v_rec: unbiased variance of √buffer_x2 over W·d entries, before the write */
	const size_t nw = (size_t)W * d;
	double mean = 0, ss = 0;
	for (size_t i = 0; i < nw; i++)
		mean += sqrt((double)u.x2[i]);
	mean /= (double)nw;
	for (size_t i = 0; i < nw; i++) {
		double v = sqrt((double)u.x2[i]) - mean;
		ss += v * v;
	}
	const double v_rec = nw > 1 ? ss / (double)(nw - 1) : 0;
	const double thresh = W * v_rec;
	/* AM − GM per channel (for the filtration, and as a probe) */
	double gap_max = -INFINITY, qs = 0, qmax = 0, fl = 0;
	int outlier = 0;
	for (int c = 0; c < d; c++) {
		double am = 0, lg = 0;
		for (int j = 0; j < W; j++) {
			double v = X2(j, c);
			am += v;
			lg += log(v > UN_LOG_FLOOR ? v : UN_LOG_FLOOR);
		}
		double gap = am / W - exp(lg / W);
		gap_max = gap > gap_max ? gap : gap_max;
		outlier |= gap > thresh;
		double qc = sum[c] / N, df = qc - u.rv[c];
		qs += qc;
		qmax = qc > qmax ? qc : qmax;
		fl += df * df;
	}
	int skip = W > 1 ? 0 : 1, filtered = 0;
	if (cfg->un_outlier && t >= cfg->un_warmup && outlier) {
		skip = 1;
		filtered = 1;
	}
	const int use_q = t <= W || t < cfg->un_warmup || skip;
	const int r_one = t <= cfg->un_r_free_after || skip;
	for (int c = 0; c < d; c++) {
		double var;
		if (use_q) {
			var = sum[c] / N;
		} else {
			double lg = 0;
			for (int j = 0; j < W; j++) {
				double v = X2(j, c);
				lg += log(v > UN_LOG_FLOOR ? v : UN_LOG_FLOOR);
			}
			var = exp(lg / W);
		}
		double rc = sqrt(var + cfg->eps) / sqrt((double)u.rv[c] + cfg->eps);
		if (r_one)
			rc = 1;
		else
			rc = rc < 1 / cfg->un_r_max ? 1 / cfg->un_r_max : rc > cfg->un_r_max ?
				cfg->un_r_max : rc;
		inv[c] = (real)(1.0 / sqrt(var + cfg->eps));
		r[c] = (real)rc;
		if (train) {
			u.x2[(size_t)k * d + c] = filtered ? u.rv[c] : (real)(sum[c] / N);
			u.rv[c] = (real)(cfg->un_momentum * u.rv[c] + (1 - cfg->un_momentum) * var);
		}
	}
#undef X2
	if (train) {
		u.iters[0] = (real)t;
		u.skips[0] += (real)filtered;
	}
	sc[SC_SKIP] = (real)skip;
	sc[SC_T] = (real)t;
	sc[SC_FLUCT] = (real)(sqrt(fl) / d);
	sc[SC_GAP] = (real)gap_max;
	sc[SC_THRESH] = (real)thresh;
	sc[SC_QMEAN] = (real)(qs / d);
	sc[SC_QMAX] = (real)qmax;
}

static void un_fwd_apply(const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict g = b->p, *restrict be = b->p + d;
	const real *restrict inv = b->chan + (size_t)CH_INV * d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d;
		real *restrict y = b->out + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++)
			y[c] = g[c] * (x[c] * inv[c]) + be[c];
	}
}

static void un_bwd_stats(double *part, const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict g = b->p;
	const real *restrict inv = b->chan + (size_t)CH_INV * d, *restrict r = b->chan + (size_t)CH_R * d;
	double *restrict sgz = part, *restrict sdz = part + d, *restrict sd = part + 2 * (size_t)d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d, *restrict dy = b->dout + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++) {
			real z = x[c] * inv[c], gh = dy[c] * g[c] * r[c];
			sgz[c] += (double)(gh * z);
			sdz[c] += (double)(dy[c] * r[c] * z);
			sd[c] += dy[c];
		}
	}
}

static void un_bwd_finish(const struct norm_batch *b, const double *sum)
{
	const int d = b->d, N = b->N, W = un_window(b->cfg);
	const struct norm_cfg *cfg = b->cfg;
	struct un_bufs u = un_bufs(b->buf, d, W);
	real *coef = b->chan + (size_t)CH_COEF * d;
	const real *sc = b->chan + (size_t)CH_N * d;
	const int skip = sc[SC_SKIP] != 0;
	const long t = (long)sc[SC_T];
	const int k = (int)(t % W);
	const int use_gz = t <= W || t < cfg->un_warmup || skip;
	const double m = cfg->un_momentum;
	for (int c = 0; c < d; c++)
		u.gz[(size_t)k * d + c] = skip ? u.ema[c] : (real)(sum[c] / N);
	for (int c = 0; c < d; c++) {
		double mgz;
		if (use_gz) {
			mgz = sum[c] / N;
		} else {
			mgz = 0;
			for (int j = 0; j < W; j++)
				mgz += u.gz[(size_t)j * d + c];
			mgz /= W;
		}
		u.ema[c] = (real)(m * u.ema[c] + (1 - m) * mgz);
		coef[c] = skip ? (real)mgz : u.ema[c];
		b->dparam[c] += (real)sum[d + c];
		b->dparam[d + c] += (real)sum[2 * (size_t)d + c];
	}
}

static void un_bwd_apply(const struct norm_batch *b, int t0, int t1)
{
	const int d = b->d;
	const real *restrict g = b->p;
	const real *restrict inv = b->chan + (size_t)CH_INV * d, *restrict r = b->chan + (size_t)CH_R * d;
	const real *restrict coef = b->chan + (size_t)CH_COEF * d;
	for (int t = t0; t < t1; t++) {
		const real *restrict x = b->inp + (size_t)t * d, *restrict dy = b->dout + (size_t)t * d;
		real *restrict dx = b->dinp + (size_t)t * d;
#pragma omp simd
		for (int c = 0; c < d; c++) {
			real z = x[c] * inv[c], gh = dy[c] * g[c] * r[c];
			dx[c] += (gh - coef[c] * z) * inv[c];
		}
	}
}

static real un_pre_affine(const real *x, const real *chan, const real *p, int d, int c)
{
	(void)p;
	return x[c] * chan[(size_t)CH_INV * d + c];
}

static void un_probe(double *v, const real *chan, const real *buf, int d,
		     const struct norm_cfg *cfg)
{
	const real *sc = chan + (size_t)CH_N * d;
	struct un_bufs u = un_bufs((real *)buf, d, un_window(cfg));
	v[0] = sc[SC_FLUCT];
	v[1] = sc[SC_GAP];
	v[2] = sc[SC_THRESH];
	v[3] = u.skips[0];
	v[4] = sc[SC_QMEAN];
	v[5] = sc[SC_QMAX];
}

static const struct norm_batch_ops un_ops = {
	.n_fwd_stats = 1,
	.n_bwd_stats = 3,
	.fwd_stats = un_fwd_stats,
	.fwd_finish = un_fwd_finish,
	.fwd_apply = un_fwd_apply,
	.bwd_stats = un_bwd_stats,
	.bwd_finish = un_bwd_finish,
	.bwd_apply = un_bwd_apply,
};

const struct norm_kind norm_un = {
	.name = "un",
	.default_eps = 1e-5,
	.wants_embed_scale = 0,
	.n_tensors = 2,
	.tensors = {
		{ "weight", NORM_SHAPE_D, NORM_INIT_ONE },
		{ "bias", NORM_SHAPE_D, NORM_INIT_ZERO },
	},
	.cache_per_token = 0,
	.pre_affine = un_pre_affine,
	.n_buffers = 6,
	.buffers = {
		{ "running_var", NORM_BUF_D, 1.0 },
		{ "ema_gz", NORM_BUF_D, 0.0 },
		{ "buffer_x2", NORM_BUF_WINDOW_D, 0.0 },
		{ "buffer_gz", NORM_BUF_WINDOW_D, 0.0 },
		{ "iters", NORM_BUF_SCALAR, 0.0 },
		{ "skip_counter", NORM_BUF_SCALAR, 0.0 },
	},
	.batch = &un_ops,
	.chan_per_channel = CH_N,
	.chan_scalars = SC_N,
	.approx_backward = 1,
	.hparams = { "norm.un.window", "norm.un.warmup", "norm.un.outlier_filtration",
		     "norm.un.momentum", "norm.un.r_max", "norm.un.r_free_after" },
	.n_probes = 6,
	.probe_names = { "fluct_var", "amgm_gap", "amgm_thresh", "skip_counter", "q_mean", "q_max" },
	.probe = un_probe,
};
