/*
 * probes.c — activation statistics. Median by quickselect on a scratch copy (O(n)); every sum in
 * double. Called by the trainer thread at probe steps only.
 */
#include "probes.h"

#include <math.h>
#include <string.h>

const char *const probe_stat_names[PROBE_STAT_COUNT] = {
	"var", "var_tok", "rms", "maxabs", "medabs", "top1_med", "kurt",
};

double probe_stat_get(const struct probe_stats *st, enum probe_stat which)
{
	switch (which) {
	case PROBE_VAR: return st->var;
	case PROBE_VAR_TOK: return st->var_tok;
	case PROBE_RMS: return st->rms;
	case PROBE_MAXABS: return st->maxabs;
	case PROBE_MEDABS: return st->medabs;
	case PROBE_TOP1_MED: return st->top1_med;
	case PROBE_KURT: return st->kurt;
	default: return NAN;
	}
}

/* k-th smallest of a[0..n) (0-based), reordering a: Wirth's selection, signed indices. */
static float select_kth(float *a, size_t n, size_t kk)
{
	long l = 0, m = (long)n - 1, k = (long)kk;
	while (l < m) {
		float x = a[k];
		long i = l, j = m;
		do {
			while (a[i] < x)
				i++;
			while (x < a[j])
				j--;
			if (i <= j) {
				float t = a[i];
				a[i] = a[j];
				a[j] = t;
				i++;
				j--;
			}
		} while (i <= j);
		if (j < k)
			l = i;
		if (k < i)
			m = j;
	}
	return a[k];
}

void probe_tensor_stats(struct probe_stats *st, const real *x, int N, int C, float *scratch,
			double *chan)
{
	size_t n = (size_t)N * C;
	double s = 0, s2 = 0, vt = 0, mx = 0;
	memset(chan, 0, sizeof(double) * (size_t)C);
	for (int t = 0; t < N; t++) {
		const real *r = x + (size_t)t * C;
		double ts = 0, ts2 = 0;
		for (int c = 0; c < C; c++) {
			double v = r[c];
			ts += v;
			ts2 += v * v;
			chan[c] += v * v;
			double a = fabs(v);
			mx = a > mx ? a : mx;
			scratch[(size_t)t * C + c] = (float)a;
		}
		double tm = ts / C;
		vt += ts2 / C - tm * tm;
		s += ts;
		s2 += ts2;
	}
	double mean = s / (double)n;
	st->mean = mean;
	st->var = s2 / (double)n - mean * mean;
	if (st->var < 0)
		st->var = 0;
	st->var_tok = vt / N;
	st->rms = sqrt(s2 / (double)n);
	st->maxabs = mx;
	st->medabs = select_kth(scratch, n, n / 2);
	st->top1_med = st->medabs > 0 ? mx / st->medabs : INFINITY;
	double k2 = 0, k4 = 0;
	for (int c = 0; c < C; c++) {
		double sc2 = chan[c] / N;   /* s_c² */
		k2 += sc2;
		k4 += sc2 * sc2;
	}
	k2 /= C;
	k4 /= C;
	st->kurt = k2 > 0 ? k4 / (k2 * k2) : NAN;
}

double probe_angular_distance(const real *a, const real *b, int N, int C)
{
	double sum = 0;
	for (int t = 0; t < N; t++) {
		const real *x = a + (size_t)t * C, *y = b + (size_t)t * C;
		double xy = 0, xx = 0, yy = 0;
		for (int c = 0; c < C; c++) {
			xy += (double)x[c] * y[c];
			xx += (double)x[c] * x[c];
			yy += (double)y[c] * y[c];
		}
		double den = sqrt(xx * yy);
		if (!(den > 0)) {
			sum += 0.5;
			continue;
		}
		double cs = xy / den;
		cs = cs > 1 ? 1 : cs < -1 ? -1 : cs;
		sum += acos(cs) / 3.14159265358979323846;
	}
	return sum / N;
}

double probe_l2(const real *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return sqrt(s);
}

int probe_all_finite(const real *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}
