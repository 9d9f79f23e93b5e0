/*
 * health.h — run health: what a researcher must see before trusting a curve. A run is
 *   dead     when, for `health.dead_checks` checks in a row, the gradient reaching the residual
 *            stream is exactly 0 at every depth (nothing below the head learns), or some norm
 *            site is ≥ 99.9% saturated (DyT/Derf: P(|αx+s| > 2); its gradient is ~0);
 *   stalled  when, after `health.stall_after` of the steps, the loss (median of the recent
 *            window) sits within `health.stall_margin` (relative) of the corpus's unigram
 *            entropy: the model only learned symbol frequencies;
 *   spike    when the loss jumps above `health.spike_factor` × the median of the last
 *            `health.spike_window` losses;
 *   diverged when the loss or gradient went non-finite (the trainer's own check).
 * The state keeps the worst finding (diverged > dead > stalled > spike) with its step and a
 * one-line reason naming the measurement. "stalled" is re-judged at every check (a run that
 * leaves the plateau is not stalled); the others stick. Pure state, no I/O; one per trainer.
 */
#ifndef HEALTH_H
#define HEALTH_H

#include <stdint.h>

#include "spec.h"

enum health_status {
	HEALTH_OK,
	HEALTH_SPIKE,
	HEALTH_STALLED,
	HEALTH_DEAD,
	HEALTH_DIVERGED,
	HEALTH_COUNT,
};

#define HEALTH_SAT_DEAD 0.999   /* a site this saturated passes (almost) no gradient */
#define HEALTH_WINDOW_MAX 1000  /* spec limit on health.spike_window */
#define HEALTH_REASON_MAX 256

struct health {
	int status;              /* enum health_status: the worst finding so far */
	long step;               /* when it was found (0: never) */
	char reason[HEALTH_REASON_MAX];
	double entropy;          /* the corpus's unigram entropy in nats (NAN: unknown) */
	int dead_streak;         /* consecutive checks that found the run dead */
	long dead_since;         /* step of the first check of the streak */
	int spiked;              /* a spike was seen (kept under a later "stalled") */
	long spike_step;
	char spike_reason[HEALTH_REASON_MAX];
	double *recent;          /* ring of the last spike_window losses (owned) */
	int n_recent, at;
};

/* What one check measured (train.c fills it from the model). */
struct health_obs {
	int grads_known;         /* ‖∂L/∂x_l‖ was computed this step */
	int grads_all_zero;      /* ... and is exactly 0 at every depth */
	double sat_max;          /* the largest saturated fraction over the norm sites; <0: none */
	char sat_site[64];       /* the site it is at (the first such, in site order) */
	int n_sat;               /* sites at or above HEALTH_SAT_DEAD */
};

/* entropy: the data's unigram entropy (nats). Returns 0 or NL_ENOMEM. */
int health_init(struct health *h, const struct spec *s, double entropy);
void health_free(struct health *h);

/* The loss of `step` (finite): spike and stall judgement. */
void health_loss(struct health *h, const struct spec *s, long step, double loss);
/* A check at `step`: the dead judgement. */
void health_check(struct health *h, const struct spec *s, long step, const struct health_obs *o);
/* Records divergence. */
void health_diverged(struct health *h, long step, const char *why);

/* 1 when the run should end now: dead under train.on_dead = stop. */
int health_should_stop(const struct health *h, const struct spec *s);

/* "ok", "spike", "stalled", "dead", "diverged"; health_parse: the status, or -1 */
const char *health_name(int status);
int health_parse(const char *name);

/* Takes up a finding recorded before a resume (the judgement windows start afresh). */
void health_restore(struct health *h, int status, long step, const char *reason);

/* Unigram entropy (nats) of n symbols from an alphabet of k (counts[k]). */
double health_entropy(const uint64_t *counts, int k);

#endif
