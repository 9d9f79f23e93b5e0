/*
 * f64_gradcheck — finite-difference checks of every backward pass, in the double-precision build
 * of the engine (-DNL_DOUBLE), so central differences resolve to ~1e-9.
 *  1. each norm kind alone: L = Σ g ⊙ N(x) against ∂L/∂x, ∂L/∂γ, ∂L/∂β, ∂L/∂α, ∂L/∂s; and
 *     CRMSNorm's forward against its definition, RMSNorm of the completed zero-mean vector;
 *  2. the whole model for every architecture (gpt; llama with RoPE, SwiGLU, no biases; vit with
 *     the patch embedding, cls token, bidirectional attention, cls and mean pooling) × every
 *     norm kind × every placement, deepnorm included (and peri with the embedding norm, tied
 *     and untied heads, 1 and 2 threads): every parameter tensor, several entries each, every
 *     scalar (α, s, embedding scale) in full. Parameters and gradients are read through the model backend;
 *  3. LN removal (lnremove.h) on gpt and llama, layernorm and rmsnorm: ln1 split into its Q/K and
 *     V paths with some paths fake (frozen σ) and some real, ln2 and norm_f fake in places; and
 *     with every path still real, the split model's loss equals the plain model's.
 * Parameters are moved off their init values first, so γ ≠ 1 and β ≠ 0 are exercised.
 * Batch-statistic kinds with an exact backward (batchnorm) are checked the same way, their
 * statistics coupling every row of the batch: the numeric side runs NORM_MODE_BATCH (the training
 * forward without buffer updates). PowerNorm and UN have the papers' approximate backwards;
 * test_batchnorms checks those against an independent reference instead.
 */
#include <stdlib.h>

#include "lnremove.h"
#include "model.h"
#include "norm.h"
#include "rng.h"
#include "spec.h"
#include "../test.h"

#ifndef NL_DOUBLE
#error "f64_gradcheck must be built with -DNL_DOUBLE"
#endif

/* The step: small enough that the O(H²) truncation error stays below TOL where the loss curves
 * most (llama/crmsnorm/peri with the embedding norm and a tied head missed by 2.0e-6 at 1e-5),
 * large enough that rounding (~1e-16·|L|/H) stays far below it. */
#define H 2e-6
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

/* A batch kind alone: the serial passes over all N rows; BATCH on the numeric side. */
static double batch_loss(const struct norm_kind *k, const real *x, const real *p, const real *g,
			 int N, int d, const struct norm_cfg *cfg, real *y, real *chan, real *buf,
			 enum norm_mode mode)
{
	double sum[4 * 16];
	struct norm_batch b = { .out = y, .inp = x, .p = p, .buf = buf, .chan = chan, .N = N,
				.d = d, .mode = mode, .cfg = cfg };
	norm_batch_forward_serial(k, &b, sum);
	double s = 0;
	for (int i = 0; i < N * d; i++)
		s += g[i] * y[i];
	return s;
}

static void check_batch_alone(const struct norm_kind *k)
{
	enum { N = 6, D = 7 };
	struct rng r;
	real x[N * D], g[N * D], y[N * D], dx[N * D], p[2 * D], dp[2 * D], chan[8 * D + 8];
	real buf[4 * D + 4];
	double sum[4 * 16];
	struct norm_cfg cfg = { .eps = 1e-5, .momentum = 0.1 };
	rng_seed(&r, 7, 98);
	for (int i = 0; i < N * D; i++) {
		x[i] = 1.5 * rng_normal(&r) + 0.3 * (i % D);
		g[i] = rng_normal(&r);
		dx[i] = 0;
	}
	norm_param_init(k, p, D, &cfg);
	for (int j = 0; j < 2 * D; j++) {
		p[j] += 0.3 * rng_normal(&r);
		dp[j] = 0;
	}
	norm_buffer_init(k, buf, D, &cfg);
	batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_TRAIN);
	struct norm_batch b = { .out = y, .inp = x, .p = p, .buf = buf, .chan = chan, .dinp = dx,
				.dout = g, .dparam = dp, .N = N, .d = D, .mode = NORM_MODE_TRAIN,
				.cfg = &cfg };
	norm_batch_backward_serial(k, &b, sum);
	int bad = 0;
	for (int i = 0; i < N * D; i++) {
		real keep = x[i];
		x[i] = keep + H;
		double lp = batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_BATCH);
		x[i] = keep - H;
		double lm = batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_BATCH);
		x[i] = keep;
		double num = (lp - lm) / (2 * H);
		if (!close_enough(dx[i], num)) {
			bad++;
			fprintf(stderr, "%s: dx[%d] analytic %.10g numeric %.10g\n", k->name, i, dx[i], num);
		}
	}
	CHECKF(bad == 0, "%s alone: %d input-gradient mismatches (the batch coupling)", k->name, bad);
	for (int j = 0; j < 2 * D; j++) {
		real keep = p[j];
		p[j] = keep + H;
		double lp = batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_BATCH);
		p[j] = keep - H;
		double lm = batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_BATCH);
		p[j] = keep;
		double num = (lp - lm) / (2 * H);
		CHECKF(close_enough(dp[j], num), "%s alone: dparam[%d] analytic %.10g numeric %.10g",
		       k->name, j, dp[j], num);
	}
	/* the coupling is real: one row's input moves every row's output */
	double base = batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_BATCH);
	real y0 = y[(N - 1) * D];
	x[0] += 1;
	batch_loss(k, x, p, g, N, D, &cfg, y, chan, buf, NORM_MODE_BATCH);
	x[0] -= 1;
	CHECKF(y[(N - 1) * D] != y0 && isfinite(base), "%s: row 0 must move row %d's output",
	       k->name, N - 1);
}

static void check_norm_alone(const struct norm_kind *k)
{
	if (k->batch) {
		if (!k->approx_backward)
			check_batch_alone(k);
		return;
	}
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

/*
 * CRMSNorm against its definition (NORMS.md §7.2): CRMS(z) = RMSNorm([z, −Σz]) on the first d
 * entries, with the full width d + 1 in the mean, computed here by hand from the formula rather
 * than by the kind's own code.
 */
static void check_crms_definition(void)
{
	enum { N = 6, D = 9 };
	const struct norm_kind *k = norm_table[norm_find("crmsnorm")];
	struct norm_cfg cfg = { .eps = 1e-5 };
	struct rng r;
	real z[N * D], y[N * D], cache[2 * N], p[D];
	rng_seed(&r, 5, 3);
	for (int i = 0; i < N * D; i++)
		z[i] = 0.7 * rng_normal(&r) + (i % D == 0 ? 2.0 : 0.0);   /* a biased coordinate */
	for (int i = 0; i < D; i++)
		p[i] = 1 + 0.3 * rng_normal(&r);
	CHECK(k->compressed == 1 && norm_param_count(k, D) == D);
	k->forward(y, cache, z, p, 0, N, D, &cfg);
	double worst = 0;
	for (int t = 0; t < N; t++) {
		double full[D + 1], q = 0;
		full[D] = 0;
		for (int i = 0; i < D; i++) {
			full[i] = z[t * D + i];
			full[D] -= full[i];
		}
		for (int i = 0; i <= D; i++)
			q += full[i] * full[i];
		double rr = 1 / sqrt(q / (D + 1) + cfg.eps);
		for (int i = 0; i < D; i++) {
			double want = p[i] * full[i] * rr;
			double e = fabs(y[t * D + i] - want) / (fabs(want) > 1e-3 ? fabs(want) : 1e-3);
			worst = e > worst ? e : worst;
		}
	}
	CHECKF(worst < 1e-13, "crmsnorm: %.3g relative from RMSNorm([z, -sum z]) restricted", worst);
}

/* ---------- 2. whole model ---------- */

struct case_cfg {
	const char *arch;
	int pool_mean;
	int type;
	int placement;
	int tied;
	int embed_norm;
	int threads;
	int biased;   /* text archs: Linear biases on llama too, and a bias on the LM head */
	int lnr;          /* LN removal: split ln1, a mix of fake and real paths */
};

/* The training forward's function of the parameters, without buffer updates. */
static double model_loss(struct model *m)
{
	return model_forward_mode(m, 0, NORM_MODE_BATCH);
}

static void check_model(const struct case_cfg *cc)
{
	struct spec s;
	struct model m;
	struct nl_err err = { 0 };
	struct rng r;
	int vit = strcmp(cc->arch, "vit") == 0, llama = strcmp(cc->arch, "llama") == 0;
	spec_defaults(&s);
	snprintf(s.model.arch, sizeof s.model.arch, "%s", cc->arch);
	s.model.n_layer = 2;
	s.model.d_model = 8;
	s.model.n_head = 2;
	s.model.d_ff = 12;
	s.model.seq_len = 4;
	s.model.tie_head = cc->tied;
	s.model.bias = !llama || cc->biased;
	s.model.head_bias = !vit && cc->biased;
	s.model.patch = 14;            /* vit: 4 patches of 196 pixels, T = 5 */
	s.model.pool_mean = cc->pool_mean;
	s.model.scaled_init = 1;
	s.model.init_std = 0.3;   /* large enough that every path carries a real signal */
	s.train.batch_size = vit ? 3 : 2;
	s.norm.type = cc->type;
	s.norm.placement = cc->placement;
	s.norm.mix_post_ratio = 0.5;   /* L=2: block 0 post, block 1 pre */
	s.norm.eps = norm_table[cc->type]->default_eps;
	s.norm.embed_scale = vit ? 0 : norm_table[cc->type]->wants_embed_scale;
	s.norm.embed_norm = cc->embed_norm;
	s.norm.alpha_attn = 0.7;
	s.norm.alpha_ffn = 0.9;
	s.norm.alpha_final = 1.1;
	s.norm.shift0 = 0.1;
	s.threads = cc->threads;
	char label[160];
	snprintf(label, sizeof label, "%s%s%s/%s/%s%s%s/threads=%d", cc->arch,
		 cc->biased ? "(biased)" : "",
		 vit ? (cc->pool_mean ? "(mean)" : "(cls)") : "", norm_table[cc->type]->name,
		 spec_placement_name(cc->placement), vit ? "" : cc->tied ? "/tied" : "/untied",
		 cc->embed_norm ? "/embed_norm" : "", cc->threads);
	if (model_init(&m, &s, &err) != 0) {
		CHECKF(0, "%s: model_init: %s", label, err.msg);
		return;
	}
	rng_seed(&r, 42, 1);
	model_init_params(&m, &s, &r);
	/* move every 1-D parameter off its init value (γ≠1, β≠0, α, s, biases perturbed) */
	for (int i = 0; i < m.lay.n_tensors; i++) {
		const struct model_tensor *t = &m.lay.tensors[i];
		if (t->ndim == 1)
			for (size_t j = 0; j < t->len; j++)
				model_param_set(&m, t->off + j, model_param_get(&m, t->off + j) +
						(real)(0.2 * rng_normal(&r)));
	}
	if (m.lay.has_escale)
		model_param_set(&m, m.lay.escale, 1.3);  /* √8 would push DyT deep into saturation */
	size_t N = (size_t)m.lay.N;
	int *tok = malloc(sizeof(int) * 2 * N);
	real *img = malloc(sizeof(real) * (size_t)m.lay.B * 28 * 28);
	for (size_t i = 0; i < N; i++) {
		tok[i] = (int)rng_below(&r, 12);   /* few distinct tokens: embedding rows repeat */
		tok[N + i] = (int)rng_below(&r, vit ? MODEL_CLASSES : MODEL_VOCAB);
	}
	if (vit) {
		for (int i = 0; i < m.lay.B * 28 * 28; i++)
			img[i] = (real)rng_normal(&r);
		model_upload(&m, m.images, img, (size_t)m.lay.B * 28 * 28);
		model_upload_ints(&m, m.targets, tok + N, (size_t)m.lay.B);
	} else {
		model_upload_ints(&m, m.tokens, tok, 2 * N);
	}
	if (cc->lnr) {
		double plain = model_loss(&m);
		if (model_lnr_init(&m, 0.9, &err) != 0) {
			CHECKF(0, "%s: model_lnr_init: %s", label, err.msg);
			goto done;
		}
		double split = model_loss(&m);
		CHECKF(fabs(split - plain) <= 1e-12 * fabs(plain), "%s/lnremove: every path real, "
		       "the split ln1 changes the loss %.15g -> %.15g", label, plain, split);
		struct model_lnr *lr = m.lnr;
		const struct model_block *b0 = &m.lay.blocks[0], *b1 = &m.lay.blocks[1];
		/* block 0: ln2 fake, ln1 Q/K fake, V real; block 1: ln1 V fake, Q/K real; norm_f fake */
		lr->site[b0->site[MODEL_SLOT_NORM2]].fake[LNR_PATH_MAIN] = 1;
		lr->site[b0->site[MODEL_SLOT_NORM2]].sigma[LNR_PATH_MAIN] = 0.8;
		lr->site[b0->site[MODEL_SLOT_NORM1]].fake[LNR_PATH_MAIN] = 1;
		lr->site[b0->site[MODEL_SLOT_NORM1]].sigma[LNR_PATH_MAIN] = 1.7;
		lr->site[b1->site[MODEL_SLOT_NORM1]].fake[LNR_PATH_V] = 1;
		lr->site[b1->site[MODEL_SLOT_NORM1]].sigma[LNR_PATH_V] = 1.2;
		lr->site[m.lay.site_f].fake[LNR_PATH_MAIN] = 1;
		lr->site[m.lay.site_f].sigma[LNR_PATH_MAIN] = 2.5;
		CHECKF(fabs(model_loss(&m) - split) > 1e-6, "%s/lnremove: fake sites do not change "
		       "the loss", label);
		strncat(label, "/lnremove", sizeof label - strlen(label) - 1);
	}
	model_zero_grad(&m);
	model_forward(&m, 1);
	model_backward(&m);

	int checked = 0, bad = 0;
	for (int ti = 0; ti < m.lay.n_tensors; ti++) {
		const struct model_tensor *t = &m.lay.tensors[ti];
		int k = t->len <= 8 ? (int)t->len : 6;
		for (int e = 0; e < k; e++) {
			size_t j;
			if (t->len <= 8)
				j = (size_t)e;
			else if (strcmp(t->name, "embed.tok.weight") == 0)
				/* pick rows of tokens that occur, or the check only sees zeros */
				j = (size_t)tok[e % N] * t->shape[1] + rng_below(&r, (uint64_t)t->shape[1]);
			else
				j = rng_below(&r, t->len);
			size_t at = t->off + j;
			real keep = model_param_get(&m, at);
			model_param_set(&m, at, keep + H);
			double lp = model_loss(&m);
			model_param_set(&m, at, keep - H);
			double lm = model_loss(&m);
			model_param_set(&m, at, keep);
			double num = (lp - lm) / (2 * H), ana = model_grad_get(&m, at);
			checked++;
			if (!close_enough(ana, num)) {
				bad++;
				fprintf(stderr, "%s: %s[%zu] analytic %.10g numeric %.10g\n", label,
					t->name, j, ana, num);
			}
		}
	}
	CHECKF(bad == 0 && checked > 20, "%s: %d of %d gradient entries wrong", label, bad, checked);
done:
	free(tok);
	free(img);
	model_free(&m);
}

int main(void)
{
	for (int k = 0; k < norm_table_len; k++)
		check_norm_alone(norm_table[k]);
	check_crms_definition();

	const int places[] = { SPEC_PLACE_PRE, SPEC_PLACE_POST, SPEC_PLACE_PERI, SPEC_PLACE_MIX,
			       SPEC_PLACE_LNS, SPEC_PLACE_DEEPNORM };
	const int n_places = (int)(sizeof places / sizeof places[0]);
	static const char *const archs[] = { "gpt", "llama", "vit" };
	for (int a = 0; a < 3; a++)
		for (int k = 0; k < norm_table_len; k++) {
			if (norm_table[k]->approx_backward)
				continue;   /* powernorm, un: f64_batchnorms */
			for (int p = 0; p < n_places; p++) {
				struct case_cfg cc = { .arch = archs[a], .type = k, .placement = places[p],
						       .tied = (k + p) % 2, .pool_mean = (k + p) % 2,
						       .threads = 1 };
				check_model(&cc);
			}
			struct case_cfg peri_emb = { .arch = archs[a], .type = k,
						     .placement = SPEC_PLACE_PERI, .tied = 1,
						     .embed_norm = 1, .threads = 1 };
			check_model(&peri_emb);
			struct case_cfg two = { .arch = archs[a], .type = k, .placement = SPEC_PLACE_MIX,
						.pool_mean = 1, .threads = 2 };
			check_model(&two);
			if (a < 2) {   /* llama with biases, gpt and llama with a head bias */
				struct case_cfg biased = { .arch = archs[a], .type = k,
							   .placement = SPEC_PLACE_PRE, .tied = a == 0,
							   .biased = 1, .threads = 1 };
				check_model(&biased);
			}
		}
	/* LN removal: gpt and llama, layernorm and rmsnorm, 1 and 2 threads */
	for (int a = 0; a < 2; a++)
		for (int k = 0; k < norm_table_len; k++) {
			if (!lnr_kind_ok(norm_table[k]->name))
				continue;
			for (int th = 1; th <= 2; th++) {
				struct case_cfg lc = { .arch = archs[a], .type = k,
						       .placement = SPEC_PLACE_PRE, .tied = th == 1,
						       .threads = th, .lnr = 1 };
				check_model(&lc);
			}
		}
	return test_finish("gradcheck");
}
