/*
 * fastmath.h — element-wise functions the compiler can vectorize (no libm calls, no branches,
 * no -ffast-math). glibc's tanhf/expf are scalar calls costing 10–30 ns each, which made GELU
 * half of a training step. Error bounds, checked against libm over dense grids in
 * tests/unit/test_fastmath.c:
 *   nl_expf:  relative error ≤ 2e-7 on [-87, 88]; inputs are clamped to that range
 *             (below: ~1e-38, flushed to zero on compute threads; above: e^88).
 *   nl_expf_neg(q) = e^{-q}: the same bound for q ≥ 0.
 *   nl_tanhf: absolute error ≤ 5e-7 on all of R (|tanh| saturates to ±1 beyond |x| ≈ 9).
 *   nl_erff:  absolute error ≤ 6e-7 on all of R (a rational minimax form, no exp).
 * Near zero, where gradients of small activations live, an absolute bound says nothing: tanh and
 * erf are odd rational forms x·p(x²)/q(x²) and exp is 1 + r + ..., so all three keep a relative
 * error ≤ 1e-6 on 1e-30 ≤ |x| ≤ 1 (tested; below ~1e-36 x·p(x²) is subnormal, which compute
 * threads flush to zero anyway). A&S 7.1.26's
 * erf = 1 − p·t·e^{-x²}, which this file once had, cancels there (relative error → 1 as x → 0).
 * The double-precision build (gradient checks) uses libm's exp/tanh, so finite differences see
 * the exact functions.
 */
#ifndef FASTMATH_H
#define FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nl.h"

/* e^x for x in [-87, 88] (or NaN), no clamps: the caller guarantees the range */
static inline float nl_expf_core(float x)
{
	/* Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2; e^r by a degree-6 polynomial; 2^n by bits.
	 * n = round(x·log2 e) without a float→int conversion (which may trap, so gcc would not
	 * vectorize the clamps around it): adding 1.5·2^23 leaves the rounded integer in the low
	 * mantissa bits. |x·log2 e| ≤ 127 in range; a NaN x flows out through r. */
	union { float f; uint32_t u; } m = { .f = x * 1.44269504088896341f + 12582912.0f };
	float n = m.f - 12582912.0f;
	float r = x - n * 0.693359375f;
	r = r + n * 2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	/* 2^n: n + 127 in the exponent bits (unsigned, so even a NaN's bits wrap, never overflow) */
	union { uint32_t u; float f; } scale = { .u = (m.u - 0x4B400000u + 127u) << 23 };
	return p * scale.f;
}

static inline float nl_expf(float x)
{
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	return nl_expf_core(x);
}

/* e^{-q} for q ≥ 0 (Derf's e^{-u²}): one clamp instead of two, 17% of Derf's backward */
static inline float nl_expf_neg(float q)
{
	q = q > 87.0f ? 87.0f : q;
	return nl_expf_core(-q);
}

static inline float nl_tanhf(float x)
{
	/* odd/even rational minimax approximation on [-7.9, 7.9] (as in Eigen), clamped outside */
	x = x < -7.90531110763549805f ? -7.90531110763549805f : x;
	x = x > 7.90531110763549805f ? 7.90531110763549805f : x;
	float x2 = x * x;
	float p = -2.76076847742355e-16f;
	p = p * x2 + 2.00018790482477e-13f;
	p = p * x2 + -8.60467152213735e-11f;
	p = p * x2 + 5.12229709037114e-08f;
	p = p * x2 + 1.48572235717979e-05f;
	p = p * x2 + 6.37261928875436e-04f;
	p = p * x2 + 4.89352455891786e-03f;
	p = p * x;
	float q = 1.19825839466702e-06f;
	q = q * x2 + 1.18534705686654e-04f;
	q = q * x2 + 2.26843463243900e-03f;
	q = q * x2 + 4.89352518554385e-03f;
	return p / q;
}

static inline float nl_erff(float x)
{
	/* odd/even rational minimax approximation on [-4, 4] (as in Eigen), clamped outside (erf is
	 * within 2e-8 of ±1 there): no exp, so it costs what nl_tanhf does */
	x = x < -4.0f ? -4.0f : x;
	x = x > 4.0f ? 4.0f : x;
	float x2 = x * x;
	float p = -2.72614225801306e-10f;
	p = p * x2 + 2.77068142495902e-08f;
	p = p * x2 + -2.10102402082508e-06f;
	p = p * x2 + -5.69250639462346e-05f;
	p = p * x2 + -7.34990630326855e-04f;
	p = p * x2 + -2.95459980854025e-03f;
	p = p * x2 + -1.60960333262415e-02f;
	p = p * x;
	float q = -1.45660718464996e-05f;
	q = q * x2 + -2.13374055278905e-04f;
	q = q * x2 + -1.68282697438203e-03f;
	q = q * x2 + -7.37332916720468e-03f;
	q = q * x2 + -1.42647390514189e-02f;
	float r = p / q;
	/* the rational form overshoots 1 by an ulp or so near |x| = 3.5; erf's range is [-1, 1] */
	r = r > 1.0f ? 1.0f : r;
	return r < -1.0f ? -1.0f : r;
}

/* The engine's element-wise exp, tanh and erf over `real`. */
#ifdef NL_DOUBLE
#define nl_exp(x) exp(x)
#define nl_exp_neg(q) exp(-(q))
#define nl_tanh(x) tanh(x)
#define nl_erf(x) erf(x)
#else
#define nl_exp(x) nl_expf(x)
#define nl_exp_neg(q) nl_expf_neg(q)
#define nl_tanh(x) nl_tanhf(x)
#define nl_erf(x) nl_erff(x)
#endif

#endif
