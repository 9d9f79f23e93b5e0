/*
 * model_branches.c — the two residual branches of a Transformer block, shared by gpt, llama and
 * vit and steered by the layout's flags:
 *   attention: qkv = x·Wqkvᵀ (+b); RoPE on q, k (llama); softmax(q·kᵀ/√hs) causal (text) or
 *              bidirectional (vit); out = y·Wprojᵀ (+b);
 *   MLP:       proj(gelu(fc(x))) (gpt, vit) or proj(silu(gate(x)) ⊙ up(x)) (llama; gate and up
 *              are adjacent tensors, so one matmul makes [N, 2F] gate | up).
 * The placement around a branch is the core's (model.c); a branch only maps inp to out. What
 * reads or writes the residual stream is S wide (C, or C − 1 for CRMSNorm's compressed stream);
 * q, k, v, the heads and the MLP's hidden layer keep C and F.
 */
#include <stdio.h>

#include "model_core.h"

void branch_layout(struct layout_builder *lb, const struct spec *s, int l, int b)
{
	struct model_layout *lay = lb->lay;
	struct model_block *bk = &lay->blocks[l];
	size_t *w = bk->w[b];
	int C = lay->C, F = lay->F, S = lay->S;
	char name[MODEL_NAME_MAX];
	(void)s;
	for (int k = 0; k < MODEL_BRANCH_W; k++)
		w[k] = MODEL_NONE;
#define T2(slot, suffix, d0, d1, init) do { \
	snprintf(name, sizeof name, "blocks.%d.%s", l, suffix); \
	w[slot] = model_add_tensor(lb, name, 2, d0, d1, init, role, 1, l); } while (0)
#define T1(slot, suffix, d0) do { \
	snprintf(name, sizeof name, "blocks.%d.%s", l, suffix); \
	w[slot] = model_add_tensor(lb, name, 1, d0, 0, MODEL_INIT_ZERO, role, 0, l); } while (0)
	if (b == 0) {
		enum model_role role = MODEL_ROLE_ATTN;
		T2(BW_IN_W, "attn.qkv.weight", 3 * C, S, MODEL_INIT_NORMAL);
		if (lay->bias)
			T1(BW_IN_B, "attn.qkv.bias", 3 * C);
		T2(BW_OUT_W, "attn.proj.weight", S, C, MODEL_INIT_NORMAL_OUT);
		if (lay->bias)
			T1(BW_OUT_B, "attn.proj.bias", S);
	} else {
		enum model_role role = MODEL_ROLE_MLP;
		if (lay->swiglu) {
			T2(BW_IN_W, "mlp.gate.weight", F, S, MODEL_INIT_NORMAL);
			size_t up;
			snprintf(name, sizeof name, "blocks.%d.mlp.up.weight", l);
			up = model_add_tensor(lb, name, 2, F, S, MODEL_INIT_NORMAL, role, 1, l);
			(void)up;   /* == gate + F·C: the two are one [2F, C] matmul */
		} else {
			T2(BW_IN_W, "mlp.fc.weight", F, S, MODEL_INIT_NORMAL);
		}
		if (lay->bias)
			T1(BW_IN_B, lay->swiglu ? "mlp.gate_up.bias" : "mlp.fc.bias",
			   lay->swiglu ? 2 * F : F);
		T2(BW_OUT_W, "mlp.proj.weight", S, F, MODEL_INIT_NORMAL_OUT);
		if (lay->bias)
			T1(BW_OUT_B, "mlp.proj.bias", S);
	}
#undef T1
#undef T2
}

/* Width of the MLP's first matmul output. */
static int fc_width(const struct model_layout *lay)
{
	return lay->swiglu ? 2 * lay->F : lay->F;
}

void branch_carve(struct carver *cv, struct model *m, int l, int b)
{
	const struct model_layout *lay = &m->lay;
	struct model_block_acts *a = &m->ba[l];
	size_t N = (size_t)lay->N, C = lay->C, F = lay->F, T = lay->T;
	if (b == 0) {
		a->qkv = model_take(cv, N * 3 * C);
		a->att = model_take(cv, (size_t)lay->B * lay->NH * T * T);
		a->atty = model_take(cv, N * C);
	} else {
		a->fch = model_take(cv, N * (size_t)fc_width(lay));
		a->fchg = model_take(cv, N * F);
	}
}

void branch_carve_scratch(struct carver *cv, struct model *m, int nth)
{
	const struct model_layout *lay = &m->lay;
	size_t N = (size_t)lay->N, C = lay->C, F = lay->F, T = lay->T;
	m->datty = model_take(cv, N * C);
	m->dqkv = model_take(cv, N * 3 * C);
	m->dfch = model_take(cv, N * (size_t)fc_width(lay));
	m->dfchg = model_take(cv, N * F);
	m->att_scratch = model_take(cv, (size_t)nth * T * T);
	if (lay->rope)
		m->rope = model_take(cv, T * (size_t)(C / lay->NH));
}

void branch_fwd(struct model *m, int l, int b, const real *inp, real *out)
{
	const struct model_layout *lay = &m->lay;
	const size_t *w = lay->blocks[l].w[b];
	struct model_block_acts *a = &m->ba[l];
	int N = lay->N, C = lay->C, F = lay->F, S = lay->S;
	if (b == 0) {
		model_mm_fwd(m, a->qkv, inp, w[BW_IN_W], w[BW_IN_B], N, S, 3 * C);
		if (lay->rope) {
			struct model_opargs r = { .k = OP_ROPE_FWD, .o = a->qkv, .a = m->rope };
			model_run(m, &r);
		}
		struct model_opargs op = { .k = OP_ATT_FWD, .o = a->atty, .o2 = a->att, .a = a->qkv };
		model_run(m, &op);
		model_mm_fwd(m, out, a->atty, w[BW_OUT_W], w[BW_OUT_B], N, C, S);
	} else {
		model_mm_fwd(m, a->fch, inp, w[BW_IN_W], w[BW_IN_B], N, S, fc_width(lay));
		model_ew(m, lay->swiglu ? OP_SWIGLU_FWD : OP_GELU_FWD, a->fchg, a->fch, NULL, 0,
			 (long)N * F);
		model_mm_fwd(m, out, a->fchg, w[BW_OUT_W], w[BW_OUT_B], N, F, S);
	}
}

void branch_bwd(struct model *m, int l, int b, const real *inp, const real *dout, real *dinp)
{
	const struct model_layout *lay = &m->lay;
	const size_t *w = lay->blocks[l].w[b];
	struct model_block_acts *a = &m->ba[l];
	int N = lay->N, C = lay->C, F = lay->F, S = lay->S;
	if (b == 0) {
		long n = (long)N * C;
		model_ew(m, OP_ZERO, m->datty, NULL, NULL, 0, n);
		model_mm_bwd(m, m->datty, dout, a->atty, w[BW_OUT_W], w[BW_OUT_B], N, C, S);
		model_ew(m, OP_ZERO, m->dqkv, NULL, NULL, 0, 3 * n);
		struct model_opargs op = { .k = OP_ATT_BWD, .o = m->dqkv, .o2 = m->att_scratch,
					   .a = m->datty, .b = a->att, .c = a->qkv };
		model_run(m, &op);
		if (lay->rope) {
			struct model_opargs r = { .k = OP_ROPE_BWD, .o = m->dqkv, .a = m->rope };
			model_run(m, &r);
		}
		model_mm_bwd(m, dinp, m->dqkv, inp, w[BW_IN_W], w[BW_IN_B], N, S, 3 * C);
	} else {
		long nf = (long)N * F, nw = (long)N * fc_width(lay);
		model_ew(m, OP_ZERO, m->dfchg, NULL, NULL, 0, nf);
		model_mm_bwd(m, m->dfchg, dout, a->fchg, w[BW_OUT_W], w[BW_OUT_B], N, F, S);
		model_ew(m, OP_ZERO, m->dfch, NULL, NULL, 0, nw);
		struct model_opargs g = { .k = lay->swiglu ? OP_SWIGLU_BWD : OP_GELU_BWD, .o = m->dfch,
					  .a = a->fch, .b = m->dfchg, .n = nf };
		model_run(m, &g);
		model_mm_bwd(m, dinp, m->dfch, inp, w[BW_IN_W], w[BW_IN_B], N, S, fc_width(lay));
	}
}

double branch_matmul_params(const struct model_layout *lay)
{
	double C = lay->C, F = lay->F, S = lay->S;
	return 4 * C * S + (lay->swiglu ? 3 : 2) * S * F;
}
