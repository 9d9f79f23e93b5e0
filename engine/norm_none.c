/*
 * norm_none.c — the identity "norm": y = x, no parameters. The control that shows what the
 * other variants buy; every placement accepts it.
 */
#include <string.h>

#include "norm.h"

static void none_forward(real *out, real *cache, const real *inp, const real *p,
			 int t0, int t1, int d, const struct norm_cfg *cfg)
{
	(void)cache;
	(void)p;
	(void)cfg;
	memcpy(out + (size_t)t0 * d, inp + (size_t)t0 * d, sizeof(real) * (size_t)(t1 - t0) * d);
}

static void none_backward(real *dinp, double *dp, const real *dout, const real *cache,
			  const real *inp, const real *p, int t0, int t1, int d,
			  const struct norm_cfg *cfg)
{
	(void)dp;
	(void)cache;
	(void)inp;
	(void)p;
	(void)cfg;
	for (size_t i = (size_t)t0 * d; i < (size_t)t1 * d; i++)
		dinp[i] += dout[i];
}

static real none_pre_affine(const real *x, const real *cache_row, const real *p, int d, int c)
{
	(void)cache_row;
	(void)p;
	(void)d;
	return x[c];
}

const struct norm_kind norm_none = {
	.name = "none",
	.default_eps = 1e-5,   /* unused */
	.wants_embed_scale = 0,
	.n_tensors = 0,
	.tensors = { { 0 } },
	.cache_per_token = 0,
	.forward = none_forward,
	.backward = none_backward,
	.pre_affine = none_pre_affine,
	.saturated = NULL,
};
