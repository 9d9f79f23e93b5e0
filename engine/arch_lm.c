/*
 * arch_lm.c — the two byte-level language models: their embeddings and their head.
 *   gpt:   x0 = s·(wte[tok] + wpe[t]) (s the learned scale of DyT/Derf LMs, else 1); GELU MLP;
 *          Linear biases; the head tied to wte by default, without a bias unless
 *          model.head_bias (a model converted from Pre-LN carries the final norm's β there).
 *   llama: x0 = s·wte[tok]; no learned positions (RoPE on q, k instead); SwiGLU; no biases;
 *          an untied head by default.
 * Both: logits = x_f·headᵀ over the 256 bytes, mean cross-entropy over every token.
 */
#include <math.h>

#include "model_core.h"

enum { E_TOK, E_POS };

static void lm_layout_embed(struct layout_builder *lb, const struct spec *s)
{
	struct model_layout *lay = lb->lay;
	int C = lay->S;   /* the stream's width */
	(void)s;
	lay->e[E_TOK] = model_add_tensor(lb, "embed.tok.weight", 2, lay->V, C, MODEL_INIT_NORMAL,
					 MODEL_ROLE_EMBED, 1, -1);
	lay->e[E_POS] = MODEL_NONE;
	if (!lay->rope)
		lay->e[E_POS] = model_add_tensor(lb, "embed.pos.weight", 2, lay->T, C,
						 MODEL_INIT_NORMAL, MODEL_ROLE_EMBED, 1, -1);
	lay->escale = MODEL_NONE;
	if (lay->has_escale)
		lay->escale = model_add_tensor(lb, "embed.scale", 1, 1, 0, MODEL_INIT_ESCALE,
					       MODEL_ROLE_EMBED, 0, -1);
}

static void gpt_layout_embed(struct layout_builder *lb, const struct spec *s)
{
	lm_layout_embed(lb, s);
}

static void llama_layout_embed(struct layout_builder *lb, const struct spec *s)
{
	lb->lay->rope = 1;
	lb->lay->swiglu = 1;
	lm_layout_embed(lb, s);
}

static void lm_layout_head(struct layout_builder *lb, const struct spec *s)
{
	struct model_layout *lay = lb->lay;
	lay->head_b = MODEL_NONE;
	lay->head = lay->tied ? lay->e[E_TOK] :
		model_add_tensor(lb, "head.weight", 2, lay->V, lay->S, MODEL_INIT_NORMAL,
				 MODEL_ROLE_HEAD, 1, -1);
	if (s->model.head_bias)
		lay->head_b = model_add_tensor(lb, "head.bias", 1, lay->V, 0, MODEL_INIT_ZERO,
					       MODEL_ROLE_HEAD, 0, -1);
}

static void lm_carve_head(struct carver *cv, struct model *m)
{
	size_t N = (size_t)m->lay.N;
	m->logits = model_take(cv, N * (size_t)m->lay.V);
	m->losses = model_take(cv, N);
}

static void lm_embed_fwd(struct model *m, real *x0)
{
	const struct model_layout *lay = &m->lay;
	struct model_opargs e = { .k = OP_EMB_FWD, .o = x0, .ia = m->tokens,
				  .a = m->params + lay->e[E_TOK],
				  .b = lay->e[E_POS] != MODEL_NONE ? m->params + lay->e[E_POS] : NULL,
				  .c = lay->has_escale ? m->params + lay->escale : NULL, .N = lay->N };
	model_run(m, &e);
}

static void lm_embed_bwd(struct model *m, const real *dx0)
{
	const struct model_layout *lay = &m->lay;
	int pos = lay->e[E_POS] != MODEL_NONE;
	const real *scale = lay->has_escale ? m->params + lay->escale : NULL;
	struct model_opargs eb = { .k = OP_EMB_BWD, .o = m->grads + lay->e[E_TOK],
				   .o2 = pos ? m->grads + lay->e[E_POS] : NULL, .a = dx0,
				   .c = scale, .ia = m->tokens, .N = lay->N };
	model_run(m, &eb);
	if (lay->has_escale) {
		struct model_opargs es = { .k = OP_ESCALE_GRAD, .o = m->grads + lay->escale, .a = dx0,
					   .ia = m->tokens, .b = m->params + lay->e[E_TOK],
					   .c = pos ? m->params + lay->e[E_POS] : NULL, .N = lay->N };
		model_run(m, &es);
	}
}

static double lm_head_fwd(struct model *m, const real *xf, int for_backward)
{
	const struct model_layout *lay = &m->lay;
	int N = lay->N;
	model_mm_fwd(m, m->logits, xf, lay->head, lay->head_b, N, lay->S, lay->V);
	struct model_opargs ce = { .k = for_backward ? OP_CE_FUSED : OP_CE_FWD, .o = m->logits,
				   .o2 = m->losses, .a = m->logits, .ia = m->targets, .N = N,
				   .OC = lay->V };
	model_run(m, &ce);
	model_download(m, m->hloss, m->losses, (size_t)N);
	double sum = 0;
	for (int i = 0; i < N; i++)
		sum += m->hloss[i];
	return sum / N;
}

static void lm_head_bwd(struct model *m, const real *xf, real *dxf)
{
	const struct model_layout *lay = &m->lay;
	model_mm_bwd(m, dxf, m->logits, xf, lay->head, lay->head_b, lay->N, lay->S, lay->V);
}

static void lm_carve_scratch(struct carver *cv, struct model *m, int nth)
{
	branch_carve_scratch(cv, m, nth);
}

/* RoPE's table: cos(t·θ_i) then sin(t·θ_i), θ_i = 10000^(−2i/hs), for t < T, i < hs/2. */
static void llama_bind(struct model *m)
{
	const struct model_layout *lay = &m->lay;
	int T = lay->T, hs = lay->C / lay->NH, half = hs / 2;
	size_t n = (size_t)T * (size_t)half;
	real *tab = nl_malloc(sizeof(real) * 2 * (n ? n : 1));
	if (!tab)
		return;   /* model_init checks m->rope's contents never; see llama's spec limits */
	for (int t = 0; t < T; t++)
		for (int i = 0; i < half; i++) {
			double th = pow(MODEL_ROPE_THETA, -2.0 * i / hs) * t;
			tab[(size_t)t * half + i] = (real)cos(th);
			tab[n + (size_t)t * half + i] = (real)sin(th);
		}
	model_upload(m, m->rope, tab, 2 * n);
	nl_free(tab);
}

/* 6 FLOPs per matmul weight per token, plus attention's 12·L·T·C. The token table is a
 * lookup (no FLOPs) unless it doubles as the head; gpt's position table is a lookup. */
static double lm_flops(const struct model_layout *lay)
{
	double w = lay->L * branch_matmul_params(lay) + (double)lay->V * lay->S;
	return 6 * w + 12.0 * lay->L * lay->T * lay->C;
}

const struct model_arch model_arch_gpt = {
	.name = "gpt",
	.data = MODEL_DATA_TEXT,
	.layout_embed = gpt_layout_embed,
	.layout_branch = branch_layout,
	.layout_head = lm_layout_head,
	.carve_branch = branch_carve,
	.carve_head = lm_carve_head,
	.carve_scratch = lm_carve_scratch,
	.embed_fwd = lm_embed_fwd,
	.embed_bwd = lm_embed_bwd,
	.branch_fwd = branch_fwd,
	.branch_bwd = branch_bwd,
	.head_fwd = lm_head_fwd,
	.head_bwd = lm_head_bwd,
	.flops_per_row = lm_flops,
};

const struct model_arch model_arch_llama = {
	.name = "llama",
	.data = MODEL_DATA_TEXT,
	.layout_embed = llama_layout_embed,
	.layout_branch = branch_layout,
	.layout_head = lm_layout_head,
	.carve_branch = branch_carve,
	.carve_head = lm_carve_head,
	.carve_scratch = lm_carve_scratch,
	.embed_fwd = lm_embed_fwd,
	.embed_bwd = lm_embed_bwd,
	.branch_fwd = branch_fwd,
	.branch_bwd = branch_bwd,
	.head_fwd = lm_head_fwd,
	.head_bwd = lm_head_bwd,
	.bind = llama_bind,
	.flops_per_row = lm_flops,
};
