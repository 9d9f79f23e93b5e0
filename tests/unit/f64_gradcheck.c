/*
 * f64_gradcheck — finite-difference checks of every backward pass, in the double-precision build
 * of the engine (-DNL_DOUBLE), so central differences resolve to ~1e-9.
 *  1. each norm kind alone: L = Σ g ⊙ N(x) against ∂L/∂x, ∂L/∂γ, ∂L/∂β, ∂L/∂α, ∂L/∂s;
 *  2. the whole GPT for every norm kind × every placement (and peri with the embedding norm,
 *     tied and untied heads, 1 and 2 threads): every parameter tensor, several entries each,
 *     every scalar (α, s, embedding scale) in full.
 * Parameters are moved off their init values first, so γ ≠ 1 and β ≠ 0 are exercised.
 */
#include <stdlib.h>

#include "model_gpt.h"
#include "norm.h"
#include "rng.h"
#include "spec.h"
#include "../test.h"

#ifndef NL_DOUBLE
#error "f64_gradcheck must be built with -DNL_DOUBLE"
#endif

#define H 1e-5
#define TOL 2e-6

static int close_enough(double a, double n)
{
	double scale = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
	return fabs(a - n) <= TOL * (scale > 1e-3 ? scale : 1e-3);
}

/* ---------- 1. norms alone ---------- */

static double norm_loss(const struct norm_kind *k, const real *x, const real *p, const real *g,
			int N, int d, const struct norm_cfg *cfg, real *y, real *cache)
{
	k->forward(y, cache, x, p, 0, N, d, cfg);
	double s = 0;
	for (int i = 0; i < N * d; i++)
		s += g[i] * y[i];
	return s;
}

static void check_norm_alone(const struct norm_kind *k)
{
	enum { N = 5, D = 7 };
	struct rng r;
	real x[N * D], g[N * D], y[N * D], dx[N * D], cache[N * 4 + 1];
	real p[2 * D + 2];
	double dp[2 * D + 2];
	struct norm_cfg cfg = { .eps = 1e-5, .alpha0 = 0.8, .shift0 = 0.3 };
	rng_seed(&r, 7, 99);
	for (int i = 0; i < N * D; i++) {
		x[i] = 1.5 * rng_normal(&r) + 0.3;
		g[i] = rng_normal(&r);
		dx[i] = 0;
	}
	size_t np = norm_param_count(k, D);
	norm_param_init(k, p, D, &cfg);
	for (size_t j = 0; j < np; j++) {
		p[j] += 0.3 * rng_normal(&r);
		dp[j] = 0;
	}
	norm_loss(k, x, p, g, N, D, &cfg, y, cache);
	k->backward(dx, dp, g, cache, x, p, 0, N, D, &cfg);
	int bad = 0;
	for (int i = 0; i < N * D; i++) {
		real keep = x[i];
		x[i] = keep + H;
		double lp = norm_loss(k, x, p, g, N, D, &cfg, y, cache);
		x[i] = keep - H;
		double lm = norm_loss(k, x, p, g, N, D, &cfg, y, cache);
		x[i] = keep;
		double num = (lp - lm) / (2 * H);
		if (!close_enough(dx[i], num)) {
			bad++;
			fprintf(stderr, "%s: dx[%d] analytic %.10g numeric %.10g\n", k->name, i, dx[i], num);
		}
	}
	CHECKF(bad == 0, "%s: %d input-gradient mismatches", k->name, bad);
	for (size_t j = 0; j < np; j++) {
		real keep = p[j];
		p[j] = keep + H;
		double lp = norm_loss(k, x, p, g, N, D, &cfg, y, cache);
		p[j] = keep - H;
		double lm = norm_loss(k, x, p, g, N, D, &cfg, y, cache);
		p[j] = keep;
		double num = (lp - lm) / (2 * H);
		CHECKF(close_enough(dp[j], num), "%s: dparam[%zu] analytic %.10g numeric %.10g",
		       k->name, j, dp[j], num);
	}
	/* backward accumulates: a second call adds the same again */
	real dx2[N * D];
	memcpy(dx2, dx, sizeof dx);
	k->backward(dx2, dp, g, cache, x, p, 0, N, D, &cfg);
	int acc_ok = 1;
	for (int i = 0; i < N * D; i++)
		acc_ok &= fabs(dx2[i] - 2 * dx[i]) <= 1e-12 * (1 + fabs(dx[i]));
	CHECKF(acc_ok, "%s: backward must accumulate into dinp", k->name);
}

/* ---------- 2. whole model ---------- */

struct case_cfg {
	int type;
	int placement;
	int tied;
	int embed_norm;
	int threads;
};

static double model_loss(struct gpt *m)
{
	return gpt_forward(m, 0);
}

static void check_model(const struct case_cfg *cc)
{
	struct spec s;
	struct gpt m;
	struct nl_err err = { 0 };
	struct rng r;
	spec_defaults(&s);
	s.model.n_layer = 2;
	s.model.d_model = 8;
	s.model.n_head = 2;
	s.model.d_ff = 12;
	s.model.seq_len = 4;
	s.model.tie_head = cc->tied;
	s.model.scaled_init = 1;
	s.model.init_std = 0.3;   /* large enough that every path carries a real signal */
	s.train.batch_size = 2;
	s.norm.type = cc->type;
	s.norm.placement = cc->placement;
	s.norm.mix_post_ratio = 0.5;   /* L=2: block 0 post, block 1 pre */
	s.norm.eps = norm_table[cc->type]->default_eps;
	s.norm.embed_scale = norm_table[cc->type]->wants_embed_scale;
	s.norm.embed_norm = cc->embed_norm;
	s.norm.alpha_attn = 0.7;
	s.norm.alpha_ffn = 0.9;
	s.norm.alpha_final = 1.1;
	s.norm.shift0 = 0.1;
	s.threads = cc->threads;
	char label[128];
	snprintf(label, sizeof label, "%s/%s%s%s/threads=%d", norm_table[cc->type]->name,
		 spec_placement_name(cc->placement), cc->tied ? "/tied" : "/untied",
		 cc->embed_norm ? "/embed_norm" : "", cc->threads);
	if (gpt_init(&m, &s, &err) != 0) {
		CHECKF(0, "%s: gpt_init: %s", label, err.msg);
		return;
	}
	rng_seed(&r, 42, 1);
	gpt_init_params(&m, &s, &r);
	/* move every 1-D parameter off its init value (γ≠1, β≠0, α, s, scale perturbed) */
	for (int i = 0; i < m.lay.n_tensors; i++) {
		const struct gpt_tensor *t = &m.lay.tensors[i];
		if (t->ndim == 1)
			for (size_t j = 0; j < t->len; j++)
				m.params[t->off + j] += 0.2 * rng_normal(&r);
	}
	if (m.lay.has_escale)
		m.params[m.lay.escale] = 1.3;  /* √8 would push DyT deep into saturation */
	size_t N = (size_t)s.train.batch_size * s.model.seq_len;
	for (size_t i = 0; i < N; i++) {
		m.tokens[i] = (int)rng_below(&r, 12);   /* few distinct tokens: embedding rows repeat */
		m.targets[i] = (int)rng_below(&r, GPT_VOCAB);
	}
	gpt_zero_grad(&m);
	gpt_forward(&m, 1);
	gpt_backward(&m);

	int checked = 0, bad = 0;
	for (int ti = 0; ti < m.lay.n_tensors; ti++) {
		const struct gpt_tensor *t = &m.lay.tensors[ti];
		int k = t->len <= 8 ? (int)t->len : 6;
		for (int e = 0; e < k; e++) {
			size_t j;
			if (t->len <= 8) {
				j = (size_t)e;
			} else if (strcmp(t->name, "embed.tok.weight") == 0 ||
				   (strcmp(t->name, "head.weight") != 0 && 0)) {
				/* pick rows of tokens that occur, or the check only sees zeros */
				j = (size_t)m.tokens[e % N] * t->shape[1] + rng_below(&r, (uint64_t)t->shape[1]);
			} else {
				j = rng_below(&r, t->len);
			}
			real *p = &m.params[t->off + j];
			real keep = *p;
			*p = keep + H;
			double lp = model_loss(&m);
			*p = keep - H;
			double lm = model_loss(&m);
			*p = keep;
			double num = (lp - lm) / (2 * H), ana = m.grads[t->off + j];
			checked++;
			if (!close_enough(ana, num)) {
				bad++;
				fprintf(stderr, "%s: %s[%zu] analytic %.10g numeric %.10g\n", label,
					t->name, j, ana, num);
			}
		}
	}
	CHECKF(bad == 0 && checked > 20, "%s: %d of %d gradient entries wrong", label, bad, checked);
	gpt_free(&m);
}

int main(void)
{
	for (int k = 0; k < norm_table_len; k++)
		check_norm_alone(norm_table[k]);

	const int places[] = { SPEC_PLACE_PRE, SPEC_PLACE_POST, SPEC_PLACE_PERI, SPEC_PLACE_MIX,
			       SPEC_PLACE_LNS };
	for (int k = 0; k < norm_table_len; k++) {
		for (int p = 0; p < 5; p++) {
			struct case_cfg cc = { .type = k, .placement = places[p], .tied = (k + p) % 2,
					       .embed_norm = 0, .threads = 1 };
			check_model(&cc);
		}
		struct case_cfg peri_emb = { .type = k, .placement = SPEC_PLACE_PERI, .tied = 1,
					     .embed_norm = 1, .threads = 1 };
		check_model(&peri_emb);
		struct case_cfg two = { .type = k, .placement = SPEC_PLACE_MIX, .tied = 0,
					.embed_norm = 0, .threads = 2 };
		check_model(&two);
	}
	return test_finish("gradcheck");
}
