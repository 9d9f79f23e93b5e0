/*
 * lnremove.h — LayerNorm removal by fine-tuning (NORMS.md §8; Baroni et al. 2025, code
 * submarat/removing-layer-norm). A child run starts from a finished LN model's weights and, at
 * scheduled steps, turns each norm site into a FakeLayerNorm:
 *   real: y = γ ⊙ (x − μ)/√(σ²_tok + ε) + β          (the model's own norm kind)
 *   fake: y = γ ⊙ (x − μ)/σ_const + β                 (σ_const a frozen per-site scalar)
 * (rmsnorm: no μ, no β). The mean subtraction stays: it is linear. Every training forward updates
 * an EMA of the site input's mean per-token std, σ_ema ← m·σ_ema + (1−m)·mean_tok √(var_d(x)+ε),
 * whether the site is real or fake, so a run records how far the real std drifts from the frozen σ.
 * ln1 is split: its one parameter set feeds Q/K (path MAIN) and V (path V) through two separately
 * normalized inputs, removed at different steps; the attention branch takes both (model_branches.c).
 *
 * Two halves:
 *   - the model core's per-site state (struct model_lnr, hung off struct model when a run removes
 *     LN; NULL otherwise, and then nothing here runs) and its kernels, which the backend executes;
 *   - the schedule (which site, which path, which step) that the trainer applies.
 * Owned by the model's trainer thread, like the model.
 */
#ifndef LNREMOVE_H
#define LNREMOVE_H

#include "nl.h"
#include "spec.h"

struct model;

enum lnr_path {
	LNR_PATH_MAIN,   /* ln2, ln_f, and ln1's Q/K path */
	LNR_PATH_V,      /* ln1's V path (pre blocks, split) */
	LNR_NPATH,
};

/* The removal phases, in the paper's order. */
enum lnr_phase { LNR_LN2, LNR_LN1_QK, LNR_LN1_V, LNR_LN_F, LNR_NPHASE };
extern const char *const lnr_phase_names[LNR_NPHASE];   /* "ln2", "ln1_qk", "ln1_v", "ln_f" */

struct lnr_site {
	int fake[LNR_NPATH];     /* 1 once the path is removed */
	real sigma[LNR_NPATH];   /* frozen σ of a removed path; 0 before */
	real ema;                /* EMA of the input's mean per-token std; 0 before the first */
	real sigma0;             /* the same measured on a data sample at the start; 0 if never */
};

struct model_lnr {
	int center;              /* layernorm 1 (subtract μ), rmsnorm 0 */
	real momentum;           /* EMA momentum m */
	int n_sites;
	struct lnr_site *site;   /* [n_sites], host */
	real *xv, *cv;           /* [L, N, C] V-path inputs of attention, [L, N, cache] their caches
				  * (device) */
	real *dxv;               /* [N, C] ∂L/∂x_v scratch (device) */
};

/* ---------- the model core ---------- */

/*
 * Hangs LN-removal state off m (every site real, EMA unset): every block must be pre (scale 1)
 * and the kind layernorm or rmsnorm. Returns 0, NL_EINVAL (err says why) or NL_ENOMEM.
 */
int model_lnr_init(struct model *m, double momentum, struct nl_err *err);
void model_lnr_free(struct model *m);

/* 1 when the kind is one FakeLN can replace (layernorm, rmsnorm). */
int lnr_kind_ok(const char *norm_name);

/* Mean over the batch's tokens of the per-token std of each site's input, from the activations of
 * the last forward, into out[n_sites]. */
void model_lnr_measure(struct model *m, double *out);

/* After a training forward: σ_ema of every site updated from its input (set on the first call). */
void model_lnr_track(struct model *m);

/* ---------- kernels (the backend runs them over token ranges [t0, t1)) ---------- */

/* out [N,d] = (x − μ)·inv·γ + β (center) or x·inv·γ; cache as the kind's: [μ, inv] or [inv]. */
void fakenorm_forward(real *out, real *cache, const real *inp, const real *p, int t0, int t1,
		      int d, int center, real inv);
/* dinp += ∂/∂x; dp (double, γ then β) += parameter gradients. Accumulates. */
void fakenorm_backward(real *dinp, double *dp, const real *dout, const real *cache,
		       const real *inp, const real *p, int t0, int t1, int d, int center, real inv);
/* Σ over tokens [t0, t1) of √(var_d(x) + eps) (center) or √(mean_d(x²) + eps). */
double norm_token_std_sum(const real *inp, int t0, int t1, int d, int center, double eps);

/* ---------- the schedule ---------- */

/*
 * Step (1-based: the first step whose forward runs fake) at which `phase` of layer `layer` (any
 * for ln_f) is removed, for L layers:
 *   gradual: ln2 of layer i at start + g2·i; ln1 Q/K at start + g2·L + gq·i; ln1 V at
 *            start + (g2 + gq)·L + gv·i; ln_f at start + (g2 + gq + gv)·L (NORMS.md §8.2);
 *   all_at_once: every site at start.
 */
long lnr_removal_step(const struct spec_lnremove *c, int L, int phase, int layer);
/* The last removal step (ln_f's for gradual). */
long lnr_last_step(const struct spec_lnremove *c, int L);

/* ---------- the trainer's side (train_lnremove.c) ---------- */

struct trainer;
struct train_sink;

/* Metric names (train.h lists them with the others):
 *   scalars lnremove.removed (site paths removed so far, at each step that removes one: the
 *   dashboard's markers), lnremove.event.ln_f (1 at ln_f's step), lnremove.norm_f.ema and
 *   lnremove.norm_f.sigma (depth steps), lnremove.final_val_loss (the last step, all removed);
 *   depth rows lnremove.event.<ln2|ln1_qk|ln1_v> (1 at the layers removed at that step, else
 *   0), lnremove.norm1.ema, .norm1.sigma_qk, .norm1.sigma_v, .norm2.ema, .norm2.sigma (depth
 *   steps; σ is NaN until frozen). */

/* Before step `step`'s forward: on a child's first step, the std of every site measured on the
 * validation batches (σ0, and the EMA's start); then this step's removals, σ frozen from the EMA
 * or σ0 (lnremove.std_source), and their events. */
void lnr_step_begin(struct trainer *t, const struct train_sink *sink, long step);
/* At a depth step: per-site EMA of the real std and the frozen σ, over depth. */
void lnr_probe_depth(struct trainer *t, const struct train_sink *sink, long step);
/* Steps near the removals where the loss is logged every step (first − 1 .. last + 5), and the
 * steps with an extra validation: just before the first removal and at the last. */
int lnr_log_loss(const struct trainer *t, long step);
int lnr_val_step(const struct trainer *t, long step);
/* After a resume to t->step: the removed paths' fake flags (σ, EMA, σ0 came from the file). */
void lnr_restore(struct trainer *t);

#endif
