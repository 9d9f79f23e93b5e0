/*
 * arch_vit.c — a Vision Transformer for 28×28 grey images (Fashion-MNIST): its embedding and head.
 *   embedding: the image cut into (28/p)² patches of p×p pixels, each flattened (py, px)
 *              row-major and mapped by a Linear [d, p²] (+ bias); a learned cls token in front;
 *              learned positions for 1 + patches; no embedding scale;
 *   branches:  the shared ones, with bidirectional attention and a GELU MLP;
 *   head:      the final norm runs over every token; then the cls token (model.pool "cls") or
 *              the mean over the patch tokens ("mean") goes through a Linear [10, d] (+ bias);
 *              mean cross-entropy over the images.
 */
#include "model_core.h"

enum { E_PATCH_W, E_PATCH_B, E_CLS, E_POS };

static void vit_layout_embed(struct layout_builder *lb, const struct spec *s)
{
	struct model_layout *lay = lb->lay;
	int C = lay->S, pp = lay->patch * lay->patch;   /* S: the stream's width */
	(void)s;
	lay->escale = MODEL_NONE;
	lay->has_escale = 0;
	lay->e[E_PATCH_W] = model_add_tensor(lb, "embed.patch.weight", 2, C, pp, MODEL_INIT_NORMAL,
					     MODEL_ROLE_EMBED, 1, -1);
	lay->e[E_PATCH_B] = model_add_tensor(lb, "embed.patch.bias", 1, C, 0, MODEL_INIT_ZERO,
					     MODEL_ROLE_EMBED, 0, -1);
	lay->e[E_CLS] = model_add_tensor(lb, "embed.cls", 1, C, 0, MODEL_INIT_NORMAL,
					 MODEL_ROLE_EMBED, 0, -1);
	lay->e[E_POS] = model_add_tensor(lb, "embed.pos.weight", 2, lay->T, C, MODEL_INIT_NORMAL,
					 MODEL_ROLE_EMBED, 1, -1);
}

static void vit_layout_head(struct layout_builder *lb, const struct spec *s)
{
	struct model_layout *lay = lb->lay;
	(void)s;
	lay->head = model_add_tensor(lb, "head.weight", 2, lay->V, lay->S, MODEL_INIT_NORMAL,
				     MODEL_ROLE_HEAD, 1, -1);
	lay->head_b = model_add_tensor(lb, "head.bias", 1, lay->V, 0, MODEL_INIT_ZERO,
				       MODEL_ROLE_HEAD, 0, -1);
}

static void vit_carve_head(struct carver *cv, struct model *m)
{
	const struct model_layout *lay = &m->lay;
	size_t B = (size_t)lay->B, C = lay->S, P = (size_t)lay->n_patch;
	m->logits = model_take(cv, B * (size_t)lay->V);
	m->losses = model_take(cv, B);
	m->images = model_take(cv, B * 28 * 28);
	m->patches = model_take(cv, B * 28 * 28);
	m->pe = model_take(cv, B * P * C);
	m->pooled = model_take(cv, B * C);
}

static void vit_carve_scratch(struct carver *cv, struct model *m, int nth)
{
	const struct model_layout *lay = &m->lay;
	size_t B = (size_t)lay->B, C = lay->S, P = (size_t)lay->n_patch;
	branch_carve_scratch(cv, m, nth);
	m->dpe = model_take(cv, B * P * C);
	m->dpooled = model_take(cv, B * C);
}

static void vit_embed_fwd(struct model *m, real *x0)
{
	const struct model_layout *lay = &m->lay;
	int BP = lay->B * lay->n_patch, pp = lay->patch * lay->patch;
	struct model_opargs g = { .k = OP_PATCH_GATHER, .o = m->patches, .a = m->images };
	model_run(m, &g);
	model_mm_fwd(m, m->pe, m->patches, lay->e[E_PATCH_W], lay->e[E_PATCH_B], BP, pp, lay->S);
	struct model_opargs e = { .k = OP_VIT_EMB_FWD, .o = x0, .a = m->pe,
				  .b = m->params + lay->e[E_CLS], .c = m->params + lay->e[E_POS] };
	model_run(m, &e);
}

static void vit_embed_bwd(struct model *m, const real *dx0)
{
	const struct model_layout *lay = &m->lay;
	int BP = lay->B * lay->n_patch, pp = lay->patch * lay->patch;
	struct model_opargs e = { .k = OP_VIT_EMB_BWD, .o = m->dpe, .o2 = m->grads + lay->e[E_CLS],
				  .a = dx0, .b = m->grads + lay->e[E_POS] };
	model_run(m, &e);
	model_mm_bwd(m, NULL, m->dpe, m->patches, lay->e[E_PATCH_W], lay->e[E_PATCH_B], BP, pp,
		     lay->S);
}

static double vit_head_fwd(struct model *m, const real *xf, int for_backward)
{
	const struct model_layout *lay = &m->lay;
	int B = lay->B, V = lay->V;
	struct model_opargs p = { .k = OP_POOL_FWD, .o = m->pooled, .a = xf };
	model_run(m, &p);
	model_mm_fwd(m, m->logits, m->pooled, lay->head, lay->head_b, B, lay->S, V);
	/* accuracy from the logits before the fused backward turns them into dlogits */
	model_download(m, m->hlogits, m->logits, (size_t)B * V);
	model_download_ints(m, m->htargets, m->targets, (size_t)B);
	m->correct = 0;
	for (int b = 0; b < B; b++) {
		const real *row = m->hlogits + (size_t)b * V;
		int best = 0;
		for (int v = 1; v < V; v++)
			if (row[v] > row[best])
				best = v;
		m->correct += best == m->htargets[b];
	}
	struct model_opargs ce = { .k = for_backward ? OP_CE_FUSED : OP_CE_FWD, .o = m->logits,
				   .o2 = m->losses, .a = m->logits, .ia = m->targets, .N = B,
				   .OC = V };
	model_run(m, &ce);
	model_download(m, m->hloss, m->losses, (size_t)B);
	double sum = 0;
	for (int i = 0; i < B; i++)
		sum += m->hloss[i];
	return sum / B;
}

static void vit_head_bwd(struct model *m, const real *xf, real *dxf)
{
	const struct model_layout *lay = &m->lay;
	long n = (long)lay->B * lay->S;
	model_ew(m, OP_ZERO, m->dpooled, NULL, NULL, 0, n);
	model_mm_bwd(m, m->dpooled, m->logits, m->pooled, lay->head, lay->head_b, lay->B, lay->S,
		     lay->V);
	(void)xf;
	struct model_opargs p = { .k = OP_POOL_BWD, .o = dxf, .a = m->dpooled };
	model_run(m, &p);
}

/* Per token of the residual stream: the blocks' weights and attention, plus the patch Linear
 * (once per patch) and the head (once per image) spread over the image's T tokens. */
static double vit_flops(const struct model_layout *lay)
{
	double T = lay->T, pp = lay->patch * lay->patch;
	double img = lay->L * branch_matmul_params(lay) * T + (double)lay->S * pp * lay->n_patch +
		     (double)lay->V * lay->S;
	return (6 * img) / T + 12.0 * lay->L * T * lay->C;
}

const struct model_arch model_arch_vit = {
	.name = "vit",
	.data = MODEL_DATA_IMAGES,
	.layout_embed = vit_layout_embed,
	.layout_branch = branch_layout,
	.layout_head = vit_layout_head,
	.carve_branch = branch_carve,
	.carve_head = vit_carve_head,
	.carve_scratch = vit_carve_scratch,
	.embed_fwd = vit_embed_fwd,
	.embed_bwd = vit_embed_bwd,
	.branch_fwd = branch_fwd,
	.branch_bwd = branch_bwd,
	.head_fwd = vit_head_fwd,
	.head_bwd = vit_head_bwd,
	.flops_per_row = vit_flops,
};
