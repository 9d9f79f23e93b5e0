/*
 * probes.h — the statistics the papers argue from (NORMS.md §12), computed over activation
 * tensors of N tokens × C channels. Pure functions; the caller provides scratch; no allocation.
 */
#ifndef PROBES_H
#define PROBES_H

#include "nl.h"

struct probe_stats {
	double var;       /* variance over all elements */
	double var_tok;   /* mean over tokens of the per-token variance (what LN divides by) */
	double rms;
	double maxabs;
	double medabs;    /* median |x| */
	double top1_med;  /* max|x| / median|x| ("massive activations") */
	double kurt;      /* outlier-feature kurtosis (He et al.): mean_c s_c⁴ / (mean_c s_c²)², s_c = √mean_tok x_c² */
	double mean;
};

enum probe_stat {
	PROBE_VAR, PROBE_VAR_TOK, PROBE_RMS, PROBE_MAXABS, PROBE_MEDABS, PROBE_TOP1_MED, PROBE_KURT,
	PROBE_STAT_COUNT,
};

extern const char *const probe_stat_names[PROBE_STAT_COUNT];

/* Value of stat `which` from st. */
double probe_stat_get(const struct probe_stats *st, enum probe_stat which);

/*
 * Statistics of x [N,C]. scratch holds N·C floats (median selection) plus C doubles' worth of
 * room (scratch_d, C entries) for the per-channel sums.
 */
void probe_tensor_stats(struct probe_stats *st, const real *x, int N, int C, float *scratch,
			double *scratch_d);

/* Mean over tokens of arccos(cos(a_n, b_n))/π; a token with a zero vector counts 0.5. */
double probe_angular_distance(const real *a, const real *b, int N, int C);

/* ‖x‖₂ over n elements, accumulated in double. */
double probe_l2(const real *x, size_t n);

/* 1 when x is finite (no NaN/Inf), checked over n elements. */
int probe_all_finite(const real *x, size_t n);

#endif
