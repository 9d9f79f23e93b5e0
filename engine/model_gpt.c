/*
 * model_gpt.c — GPT forward and backward for every placement (pre, post, peri, mix, lns) over any
 * norm kind. The trainer thread drives it; every kernel runs on the run's pool through op_exec.
 * Layout, activation carving and the op dispatch are here; the arithmetic is in ops.c and norm_*.c.
 */
#include "model_gpt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

const char *const gpt_site_names[GPT_SITE_COUNT] = { "norm1", "norm2", "norm1_out", "norm2_out" };

/* ---------- layout ---------- */

struct layout_builder {
	struct gpt_layout *lay;
	int cap;
	int failed;
};

static size_t add_tensor(struct layout_builder *lb, const char *name, int ndim, int d0, int d1,
			 int decay, int block)
{
	struct gpt_layout *lay = lb->lay;
	if (lay->n_tensors == lb->cap) {
		int ncap = lb->cap ? 2 * lb->cap : 64;
		struct gpt_tensor *t = nl_realloc(lay->tensors, sizeof *t * (size_t)ncap);
		if (!t) {
			lb->failed = 1;
			return 0;
		}
		lay->tensors = t;
		lb->cap = ncap;
	}
	struct gpt_tensor *t = &lay->tensors[lay->n_tensors++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->ndim = ndim;
	t->shape[0] = d0;
	t->shape[1] = ndim == 2 ? d1 : 0;
	t->len = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
	t->off = lay->n_params;
	t->decay = decay;
	t->block = block;
	lay->n_params += t->len;
	return t->off;
}

static void add_norm(struct layout_builder *lb, struct gpt_norm_inst *ni, const char *prefix,
		     int block, double alpha0, const struct spec *s)
{
	const struct norm_kind *k = lb->lay->nk;
	char name[GPT_NAME_MAX];
	ni->present = 1;
	ni->off = lb->lay->n_params;
	ni->cfg.eps = s->norm.eps;
	ni->cfg.alpha0 = alpha0;
	ni->cfg.shift0 = s->norm.shift0;
	for (int i = 0; i < k->n_tensors; i++) {
		if (snprintf(name, sizeof name, "%s.%s", prefix, k->tensors[i].name) >= (int)sizeof name) {
			lb->failed = 1;   /* cannot happen with the names we build; never truncate */
			return;
		}
		add_tensor(lb, name, 1, (int)norm_tensor_len(k, i, lb->lay->C), 0, 0, block);
	}
}

int gpt_layout_build(struct gpt_layout *lay, const struct spec *s, int B)
{
	struct layout_builder lb = { .lay = lay };
	const struct spec_model *md = &s->model;
	char name[GPT_NAME_MAX];
	memset(lay, 0, sizeof *lay);
	if (md->n_layer < 1 || md->n_layer > GPT_MAX_LAYERS)
		return NL_EINVAL;
	lay->L = md->n_layer;
	lay->C = md->d_model;
	lay->NH = md->n_head;
	lay->F = md->d_ff;
	lay->T = md->seq_len;
	lay->V = GPT_VOCAB;
	lay->B = B;
	lay->bias = md->bias;
	lay->tied = md->tie_head;
	lay->has_escale = s->norm.embed_scale;
	lay->nk = norm_table[s->norm.type];
	lay->blocks = nl_calloc((size_t)lay->L, sizeof *lay->blocks);
	if (!lay->blocks)
		return NL_ENOMEM;

	int C = lay->C, F = lay->F, L = lay->L;
	int place = s->norm.placement;
	int n_post = place == SPEC_PLACE_MIX ? (int)floor(s->norm.mix_post_ratio * L) : 0;

	lay->wte = add_tensor(&lb, "embed.tok.weight", 2, lay->V, C, 1, -1);
	lay->wpe = add_tensor(&lb, "embed.pos.weight", 2, lay->T, C, 1, -1);
	if (lay->has_escale)
		lay->escale = add_tensor(&lb, "embed.scale", 1, 1, 0, 0, -1);
	if (place == SPEC_PLACE_PERI && s->norm.embed_norm)
		add_norm(&lb, &lay->norm_emb, "norm_emb", -1, s->norm.alpha_attn, s);

	for (int l = 0; l < L; l++) {
		struct gpt_block *bk = &lay->blocks[l];
		bk->t_first = lay->n_tensors;
		bk->scale = 1;
		switch (place) {
		case SPEC_PLACE_POST: bk->kind = GPT_BLOCK_POST; break;
		case SPEC_PLACE_PERI: bk->kind = GPT_BLOCK_PERI; break;
		case SPEC_PLACE_MIX: bk->kind = l < n_post ? GPT_BLOCK_POST : GPT_BLOCK_PRE; break;
		case SPEC_PLACE_LNS:
			bk->kind = GPT_BLOCK_PRE;
			bk->scale = (real)(1.0 / sqrt((double)(l + 1)));
			break;
		default: bk->kind = GPT_BLOCK_PRE; break;
		}
#define T2(field, suffix, d0, d1) do { \
	snprintf(name, sizeof name, "blocks.%d.%s", l, suffix); \
	bk->field = add_tensor(&lb, name, 2, d0, d1, 1, l); } while (0)
#define T1(field, suffix, d0) do { \
	snprintf(name, sizeof name, "blocks.%d.%s", l, suffix); \
	bk->field = add_tensor(&lb, name, 1, d0, 0, 0, l); } while (0)
		snprintf(name, sizeof name, "blocks.%d.norm1", l);
		add_norm(&lb, &bk->norm[GPT_SITE_NORM1], name, l, s->norm.alpha_attn, s);
		T2(qkv_w, "attn.qkv.weight", 3 * C, C);
		if (lay->bias)
			T1(qkv_b, "attn.qkv.bias", 3 * C);
		T2(proj_w, "attn.proj.weight", C, C);
		if (lay->bias)
			T1(proj_b, "attn.proj.bias", C);
		if (bk->kind == GPT_BLOCK_PERI) {
			snprintf(name, sizeof name, "blocks.%d.norm1_out", l);
			add_norm(&lb, &bk->norm[GPT_SITE_NORM1_OUT], name, l, s->norm.alpha_attn, s);
		}
		snprintf(name, sizeof name, "blocks.%d.norm2", l);
		add_norm(&lb, &bk->norm[GPT_SITE_NORM2], name, l, s->norm.alpha_ffn, s);
		T2(fc_w, "mlp.fc.weight", F, C);
		if (lay->bias)
			T1(fc_b, "mlp.fc.bias", F);
		T2(mproj_w, "mlp.proj.weight", C, F);
		if (lay->bias)
			T1(mproj_b, "mlp.proj.bias", C);
		if (bk->kind == GPT_BLOCK_PERI) {
			snprintf(name, sizeof name, "blocks.%d.norm2_out", l);
			add_norm(&lb, &bk->norm[GPT_SITE_NORM2_OUT], name, l, s->norm.alpha_ffn, s);
		}
#undef T1
#undef T2
		bk->t_end = lay->n_tensors;
	}
	if (place != SPEC_PLACE_POST)
		add_norm(&lb, &lay->norm_f, "norm_f", -1, s->norm.alpha_final, s);
	lay->head = lay->tied ? lay->wte : add_tensor(&lb, "head.weight", 2, lay->V, C, 1, -1);
	if (lb.failed) {
		gpt_layout_free(lay);
		return NL_ENOMEM;
	}
	return 0;
}

void gpt_layout_free(struct gpt_layout *lay)
{
	nl_free(lay->tensors);
	nl_free(lay->blocks);
	lay->tensors = NULL;
	lay->blocks = NULL;
	lay->n_tensors = 0;
}

int gpt_tensor_find(const struct gpt_layout *lay, const char *name)
{
	for (int i = 0; i < lay->n_tensors; i++)
		if (strcmp(lay->tensors[i].name, name) == 0)
			return i;
	return -1;
}

/* ---------- activations ---------- */

/*
 * One routine walks the activation table for both sizing (m == NULL) and carving, so the memory
 * estimate and the allocation cannot drift apart.
 */
static size_t carve(struct gpt *m, const struct gpt_layout *lay, int nth, real *base)
{
	size_t N = (size_t)lay->B * lay->T, C = lay->C, F = lay->F, T = lay->T;
	size_t cpt = (size_t)lay->nk->cache_per_token, off = 0;
	struct gpt sizing;                  /* sizing pass: pointers land here and are dropped */
	struct gpt_block_acts sizing_ba;
	struct gpt *g = m ? m : &sizing;
#define TAKE(ptr, n) do { (ptr) = base ? base + off : NULL; off += (n); } while (0)
	TAKE(g->resid, (size_t)(lay->L + 1) * N * C);
	if (lay->norm_emb.present) {
		TAKE(g->emb, N * C);
		TAKE(g->cemb, N * cpt);
	}
	for (int l = 0; l < lay->L; l++) {
		struct gpt_block_acts *a = m ? &m->ba[l] : &sizing_ba;
		const struct gpt_block *bk = &lay->blocks[l];
		TAKE(a->n1, N * C);
		TAKE(a->c1, N * cpt);
		TAKE(a->qkv, N * 3 * C);
		TAKE(a->att, (size_t)lay->B * lay->NH * T * T);
		TAKE(a->atty, N * C);
		TAKE(a->a, N * C);
		TAKE(a->h, N * C);
		TAKE(a->n2, N * C);
		TAKE(a->c2, N * cpt);
		TAKE(a->fch, N * F);
		TAKE(a->fchg, N * F);
		TAKE(a->m, N * C);
		if (bk->kind == GPT_BLOCK_PERI) {
			TAKE(a->ao, N * C);
			TAKE(a->c1o, N * cpt);
			TAKE(a->mo, N * C);
			TAKE(a->c2o, N * cpt);
		}
		if (bk->kind == GPT_BLOCK_POST)
			TAKE(a->h2, N * C);
	}
	if (lay->norm_f.present) {
		TAKE(g->nf, N * C);
		TAKE(g->cf, N * cpt);
	}
	TAKE(g->logits, N * lay->V);
	TAKE(g->losses, N);
	TAKE(g->dres[0], N * C);
	TAKE(g->dres[1], N * C);
	TAKE(g->dt1, N * C);
	TAKE(g->dt2, N * C);
	TAKE(g->datty, N * C);
	TAKE(g->dqkv, N * 3 * C);
	TAKE(g->dfch, N * F);
	TAKE(g->dfchg, N * F);
	TAKE(g->att_scratch, (size_t)nth * T * T);
#undef TAKE
	return off;
}

size_t gpt_act_reals(const struct gpt_layout *lay, int nth)
{
	return carve(NULL, lay, nth, NULL);
}

static size_t max_norm_params(const struct gpt_layout *lay)
{
	size_t n = norm_param_count(lay->nk, lay->C);
	return n ? n : 1;
}

int gpt_init(struct gpt *m, const struct spec *s, struct nl_err *err)
{
	int rc;
	memset(m, 0, sizeof *m);
	rc = gpt_layout_build(&m->lay, s, s->train.batch_size);
	if (rc)
		return nl_err_set(err, rc, rc == NL_EINVAL ? "n_layer %d is outside 1..%d" :
				  "out of memory building the model layout (n_layer %d, cap %d)",
				  s->model.n_layer, GPT_MAX_LAYERS);
	struct gpt_layout *lay = &m->lay;
	int nth = s->threads;
	size_t N = (size_t)lay->B * lay->T;
	rc = pool_new(&m->pool, nth);
	if (rc) {
		nl_err_set(err, rc, "cannot start %d compute threads (1..%d)", nth, POOL_MAX_THREADS);
		goto fail;
	}
	m->params = nl_calloc(lay->n_params, sizeof(real));
	m->grads = nl_calloc(lay->n_params, sizeof(real));
	m->acts = nl_calloc(gpt_act_reals(lay, nth), sizeof(real));
	m->tokens = nl_calloc(2 * N, sizeof(int));
	m->ba = nl_calloc((size_t)lay->L, sizeof *m->ba);
	m->dnorm_stride = max_norm_params(lay);
	m->dnorm = nl_calloc((size_t)nth * m->dnorm_stride, sizeof(double));
	m->dres_norm = nl_calloc((size_t)lay->L, sizeof(double));
	if (!m->params || !m->grads || !m->acts || !m->tokens || !m->ba || !m->dnorm ||
	    !m->dres_norm) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory allocating the model (%zu parameters)",
				lay->n_params);
		goto fail;
	}
	m->targets = m->tokens + N;
	carve(m, lay, nth, m->acts);
	if (!lay->norm_f.present)
		m->nf = m->resid + (size_t)lay->L * N * lay->C;
	return 0;
fail:
	gpt_free(m);
	return rc;
}

void gpt_free(struct gpt *m)
{
	pool_free(m->pool);
	nl_free(m->params);
	nl_free(m->grads);
	nl_free(m->acts);
	nl_free(m->tokens);
	nl_free(m->ba);
	nl_free(m->dnorm);
	nl_free(m->dres_norm);
	gpt_layout_free(&m->lay);
	memset(m, 0, sizeof *m);
}

void gpt_init_params(struct gpt *m, const struct spec *s, struct rng *r)
{
	struct gpt_layout *lay = &m->lay;
	double std = s->model.init_std;
	double out_std = s->model.scaled_init ? std / sqrt(2.0 * lay->L) : std;
	memset(m->params, 0, sizeof(real) * lay->n_params);
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct gpt_tensor *t = &lay->tensors[i];
		if (t->ndim != 2)
			continue;
		size_t len = strlen(t->name);
		int is_out = len > 12 && strcmp(t->name + len - 12, ".proj.weight") == 0;
		double sd = is_out ? out_std : std;
		for (size_t j = 0; j < t->len; j++)
			m->params[t->off + j] = (real)(sd * rng_normal(r));
	}
	if (lay->has_escale)
		m->params[lay->escale] = (real)sqrt((double)lay->C);
	const struct gpt_norm_inst *all[3] = { &lay->norm_emb, &lay->norm_f, NULL };
	for (int i = 0; all[i]; i++)
		if (all[i]->present)
			norm_param_init(lay->nk, m->params + all[i]->off, lay->C, &all[i]->cfg);
	for (int l = 0; l < lay->L; l++)
		for (int k = 0; k < GPT_SITE_COUNT; k++) {
			const struct gpt_norm_inst *ni = &lay->blocks[l].norm[k];
			if (ni->present)
				norm_param_init(lay->nk, m->params + ni->off, lay->C, &ni->cfg);
		}
}

void gpt_zero_grad(struct gpt *m)
{
	memset(m->grads, 0, sizeof(real) * m->lay.n_params);
}

/* ---------- op dispatch ---------- */

enum op_kind {
	OP_MM_FWD, OP_MM_BWD_IN, OP_MM_BWD_W, OP_ATT_FWD, OP_ATT_BWD, OP_GELU_FWD, OP_GELU_BWD,
	OP_EMB_FWD, OP_EMB_BWD, OP_ESCALE_GRAD, OP_CE_FUSED, OP_CE_FWD, OP_ADD, OP_SCALE, OP_ACC,
	OP_COPY, OP_ZERO, OP_NORM_FWD, OP_NORM_BWD,
};

struct op {
	enum op_kind k;
	real *o, *o2;
	const real *a, *b, *c;
	const int *ia;
	int N, C, OC;
	long n;
	real s;
	const struct gpt_norm_inst *ni;
	struct gpt *m;
	double part[POOL_MAX_THREADS];   /* per-thread partials (embedding-scale gradient) */
};

static enum gpt_timer op_timer(enum op_kind k)
{
	switch (k) {
	case OP_MM_FWD: case OP_MM_BWD_IN: case OP_MM_BWD_W: return GPT_T_MATMUL;
	case OP_ATT_FWD: case OP_ATT_BWD: return GPT_T_ATTENTION;
	case OP_NORM_FWD: case OP_NORM_BWD: return GPT_T_NORM;
	default: return GPT_T_OTHER;
	}
}

static void op_exec(void *ctx, int ith, int nth)
{
	struct op *op = ctx;
	struct gpt *m = op->m;
	const struct gpt_layout *lay = &m->lay;
	int r0, r1;
	switch (op->k) {
	case OP_MM_FWD: matmul_forward(op->o, op->a, op->b, op->c, op->N, op->C, op->OC, ith, nth); break;
	case OP_MM_BWD_IN: matmul_backward_input(op->o, op->a, op->b, op->N, op->C, op->OC, ith, nth); break;
	case OP_MM_BWD_W: matmul_backward_weight(op->o, op->o2, op->a, op->b, op->N, op->C, op->OC, ith, nth); break;
	case OP_ATT_FWD: attention_forward(op->o, op->o2, op->a, lay->B, lay->T, lay->C, lay->NH, ith, nth); break;
	case OP_ATT_BWD: attention_backward(op->o, op->o2, op->a, op->b, op->c, lay->B, lay->T, lay->C, lay->NH, ith, nth); break;
	case OP_GELU_FWD: gelu_forward(op->o, op->a, op->n, ith, nth); break;
	case OP_GELU_BWD: gelu_backward(op->o, op->a, op->b, op->n, ith, nth); break;
	case OP_EMB_FWD: embed_forward(op->o, op->ia, op->a, op->b, op->s, op->N, lay->T, lay->C, ith, nth); break;
	case OP_EMB_BWD: embed_backward(op->o, op->o2, op->a, op->ia, op->s, op->N, lay->T, lay->C, ith, nth); break;
	case OP_ESCALE_GRAD: embed_scale_grad(&op->part[ith], op->a, op->ia, op->b, op->c, op->N, lay->T, lay->C, ith, nth); break;
	case OP_CE_FUSED: crossentropy_fused(op->o, op->o2, op->ia, op->N, lay->V, ith, nth); break;
	case OP_CE_FWD: crossentropy_forward(op->o2, op->a, op->ia, op->N, lay->V, ith, nth); break;
	case OP_ADD: add_forward(op->o, op->a, op->b, op->n, ith, nth); break;
	case OP_SCALE: scale_forward(op->o, op->a, op->s, op->n, ith, nth); break;
	case OP_ACC: accumulate(op->o, op->a, op->n, ith, nth); break;
	case OP_COPY: {
		long i0 = op->n * ith / nth, i1 = op->n * (ith + 1) / nth;
		memcpy(op->o + i0, op->a + i0, sizeof(real) * (size_t)(i1 - i0));
		break;
	}
	case OP_ZERO: {
		long i0 = op->n * ith / nth, i1 = op->n * (ith + 1) / nth;
		memset(op->o + i0, 0, sizeof(real) * (size_t)(i1 - i0));
		break;
	}
	case OP_NORM_FWD:
		pool_split(op->N, ith, nth, &r0, &r1);
		lay->nk->forward(op->o, op->o2, op->a, m->params + op->ni->off, r0, r1, lay->C, &op->ni->cfg);
		break;
	case OP_NORM_BWD: {
		double *dp = m->dnorm + (size_t)ith * m->dnorm_stride;
		memset(dp, 0, sizeof(double) * m->dnorm_stride);
		pool_split(op->N, ith, nth, &r0, &r1);
		lay->nk->backward(op->o, dp, op->a, op->b, op->c, m->params + op->ni->off, r0, r1, lay->C, &op->ni->cfg);
		break;
	}
	}
}

static void run(struct gpt *m, struct op *op)
{
	op->m = m;
	if (m->timing) {
		double t0 = nl_now();
		pool_run(m->pool, op_exec, op);
		m->t_ops[op_timer(op->k)] += nl_now() - t0;
	} else {
		pool_run(m->pool, op_exec, op);
	}
}

static size_t ntok(const struct gpt *m)
{
	return (size_t)m->lay.B * m->lay.T;
}

static void mm_fwd(struct gpt *m, real *out, const real *inp, size_t w, size_t b, int C, int OC)
{
	struct op op = { .k = OP_MM_FWD, .o = out, .a = inp, .b = m->params + w,
			 .c = m->lay.bias ? m->params + b : NULL, .N = (int)ntok(m), .C = C, .OC = OC };
	run(m, &op);
}

/* dinp (+=, may be NULL), dW, db (+=) for out = inp·Wᵀ + b. */
static void mm_bwd(struct gpt *m, real *dinp, const real *dout, const real *inp, size_t w,
		   size_t b, int C, int OC)
{
	struct op op = { .k = OP_MM_BWD_IN, .o = dinp, .a = dout, .b = m->params + w,
			 .N = (int)ntok(m), .C = C, .OC = OC };
	if (dinp)
		run(m, &op);
	struct op ow = { .k = OP_MM_BWD_W, .o = m->grads + w, .o2 = m->lay.bias ? m->grads + b : NULL,
			 .a = dout, .b = inp, .N = (int)ntok(m), .C = C, .OC = OC };
	run(m, &ow);
}

static void ew(struct gpt *m, enum op_kind k, real *o, const real *a, const real *b, real s, long n)
{
	struct op op = { .k = k, .o = o, .a = a, .b = b, .s = s, .n = n };
	run(m, &op);
}

static void norm_fwd(struct gpt *m, const struct gpt_norm_inst *ni, real *out, real *cache,
		     const real *inp)
{
	struct op op = { .k = OP_NORM_FWD, .o = out, .o2 = cache, .a = inp, .ni = ni, .N = (int)ntok(m) };
	run(m, &op);
}

/* dinp += N'ᵀ·dout; parameter gradients reduced from the per-thread partials in thread order. */
static void norm_bwd(struct gpt *m, const struct gpt_norm_inst *ni, real *dinp, const real *dout,
		     const real *cache, const real *inp)
{
	struct op op = { .k = OP_NORM_BWD, .o = dinp, .a = dout, .b = cache, .c = inp, .ni = ni,
			 .N = (int)ntok(m) };
	run(m, &op);
	size_t np = norm_param_count(m->lay.nk, m->lay.C);
	int nth = pool_size(m->pool);
	real *g = m->grads + ni->off;
	for (size_t j = 0; j < np; j++) {
		double s = 0;
		for (int t = 0; t < nth; t++)
			s += m->dnorm[(size_t)t * m->dnorm_stride + j];
		g[j] += (real)s;
	}
}

static void mlp_fwd(struct gpt *m, const struct gpt_block *bk, struct gpt_block_acts *a,
		    const real *inp, real *out)
{
	int C = m->lay.C, F = m->lay.F;
	mm_fwd(m, a->fch, inp, bk->fc_w, bk->fc_b, C, F);
	ew(m, OP_GELU_FWD, a->fchg, a->fch, NULL, 0, (long)(ntok(m) * F));
	mm_fwd(m, out, a->fchg, bk->mproj_w, bk->mproj_b, F, C);
}

/* dinp += d(inp) from dout, for out = MLP(inp). */
static void mlp_bwd(struct gpt *m, const struct gpt_block *bk, struct gpt_block_acts *a,
		    const real *inp, const real *dout, real *dinp)
{
	int C = m->lay.C, F = m->lay.F;
	long nf = (long)(ntok(m) * F);
	ew(m, OP_ZERO, m->dfchg, NULL, NULL, 0, nf);
	mm_bwd(m, m->dfchg, dout, a->fchg, bk->mproj_w, bk->mproj_b, F, C);
	ew(m, OP_ZERO, m->dfch, NULL, NULL, 0, nf);
	struct op g = { .k = OP_GELU_BWD, .o = m->dfch, .a = a->fch, .b = m->dfchg, .n = nf };
	run(m, &g);
	mm_bwd(m, dinp, m->dfch, inp, bk->fc_w, bk->fc_b, C, F);
}

static void attn_fwd(struct gpt *m, const struct gpt_block *bk, struct gpt_block_acts *a,
		     const real *inp, real *out)
{
	int C = m->lay.C;
	mm_fwd(m, a->qkv, inp, bk->qkv_w, bk->qkv_b, C, 3 * C);
	struct op op = { .k = OP_ATT_FWD, .o = a->atty, .o2 = a->att, .a = a->qkv };
	run(m, &op);
	mm_fwd(m, out, a->atty, bk->proj_w, bk->proj_b, C, C);
}

static void attn_bwd(struct gpt *m, const struct gpt_block *bk, struct gpt_block_acts *a,
		     const real *inp, const real *dout, real *dinp)
{
	int C = m->lay.C;
	long n = (long)(ntok(m) * C);
	ew(m, OP_ZERO, m->datty, NULL, NULL, 0, n);
	mm_bwd(m, m->datty, dout, a->atty, bk->proj_w, bk->proj_b, C, C);
	ew(m, OP_ZERO, m->dqkv, NULL, NULL, 0, 3 * n);
	struct op op = { .k = OP_ATT_BWD, .o = m->dqkv, .o2 = m->att_scratch, .a = m->datty,
			 .b = a->att, .c = a->qkv };
	run(m, &op);
	mm_bwd(m, dinp, m->dqkv, inp, bk->qkv_w, bk->qkv_b, C, 3 * C);
}

/* ---------- forward ---------- */

static void block_fwd(struct gpt *m, int l)
{
	const struct gpt_block *bk = &m->lay.blocks[l];
	struct gpt_block_acts *a = &m->ba[l];
	long n = (long)(ntok(m) * m->lay.C);
	real *x = m->resid + (size_t)l * n, *y = x + n;
	switch (bk->kind) {
	case GPT_BLOCK_PRE:
		norm_fwd(m, &bk->norm[GPT_SITE_NORM1], a->n1, a->c1, x);
		if (bk->scale != 1)
			ew(m, OP_SCALE, a->n1, a->n1, NULL, bk->scale, n);
		attn_fwd(m, bk, a, a->n1, a->a);
		ew(m, OP_ADD, a->h, x, a->a, 0, n);
		norm_fwd(m, &bk->norm[GPT_SITE_NORM2], a->n2, a->c2, a->h);
		if (bk->scale != 1)
			ew(m, OP_SCALE, a->n2, a->n2, NULL, bk->scale, n);
		mlp_fwd(m, bk, a, a->n2, a->m);
		ew(m, OP_ADD, y, a->h, a->m, 0, n);
		break;
	case GPT_BLOCK_POST:
		attn_fwd(m, bk, a, x, a->a);
		ew(m, OP_ADD, a->h, x, a->a, 0, n);
		norm_fwd(m, &bk->norm[GPT_SITE_NORM1], a->n1, a->c1, a->h);
		mlp_fwd(m, bk, a, a->n1, a->m);
		ew(m, OP_ADD, a->h2, a->n1, a->m, 0, n);
		norm_fwd(m, &bk->norm[GPT_SITE_NORM2], y, a->c2, a->h2);
		break;
	case GPT_BLOCK_PERI:
		norm_fwd(m, &bk->norm[GPT_SITE_NORM1], a->n1, a->c1, x);
		attn_fwd(m, bk, a, a->n1, a->a);
		norm_fwd(m, &bk->norm[GPT_SITE_NORM1_OUT], a->ao, a->c1o, a->a);
		ew(m, OP_ADD, a->h, x, a->ao, 0, n);
		norm_fwd(m, &bk->norm[GPT_SITE_NORM2], a->n2, a->c2, a->h);
		mlp_fwd(m, bk, a, a->n2, a->m);
		norm_fwd(m, &bk->norm[GPT_SITE_NORM2_OUT], a->mo, a->c2o, a->m);
		ew(m, OP_ADD, y, a->h, a->mo, 0, n);
		break;
	}
}

double gpt_forward(struct gpt *m, int for_backward)
{
	struct gpt_layout *lay = &m->lay;
	int N = (int)ntok(m), C = lay->C;
	real scale = lay->has_escale ? m->params[lay->escale] : 1;
	real *x0 = lay->norm_emb.present ? m->emb : m->resid;
	struct op e = { .k = OP_EMB_FWD, .o = x0, .ia = m->tokens, .a = m->params + lay->wte,
			.b = m->params + lay->wpe, .s = scale, .N = N };
	run(m, &e);
	if (lay->norm_emb.present)
		norm_fwd(m, &lay->norm_emb, m->resid, m->cemb, m->emb);
	for (int l = 0; l < lay->L; l++)
		block_fwd(m, l);
	real *xl = m->resid + (size_t)lay->L * N * C;
	if (lay->norm_f.present)
		norm_fwd(m, &lay->norm_f, m->nf, m->cf, xl);
	struct op h = { .k = OP_MM_FWD, .o = m->logits, .a = m->nf, .b = m->params + lay->head,
			.N = N, .C = C, .OC = lay->V };
	run(m, &h);
	struct op ce = { .k = for_backward ? OP_CE_FUSED : OP_CE_FWD, .o = m->logits, .o2 = m->losses,
			 .a = m->logits, .ia = m->targets, .N = N };
	run(m, &ce);
	double sum = 0;
	for (int i = 0; i < N; i++)
		sum += m->losses[i];
	return sum / N;
}

/* ---------- backward ---------- */

static double l2(const real *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return sqrt(s);
}

/* g = ∂L/∂x_{l+1} (read-only here); dx = ∂L/∂x_l (written). */
static void block_bwd(struct gpt *m, int l, const real *g, real *dx)
{
	const struct gpt_block *bk = &m->lay.blocks[l];
	struct gpt_block_acts *a = &m->ba[l];
	long n = (long)(ntok(m) * m->lay.C);
	real *x = m->resid + (size_t)l * n;
	switch (bk->kind) {
	case GPT_BLOCK_PRE:
		ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		mlp_bwd(m, bk, a, a->n2, g, m->dt1);
		if (bk->scale != 1)
			ew(m, OP_SCALE, m->dt1, m->dt1, NULL, bk->scale, n);
		ew(m, OP_COPY, dx, g, NULL, 0, n);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM2], dx, m->dt1, a->c2, a->h);
		ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		attn_bwd(m, bk, a, a->n1, dx, m->dt1);
		if (bk->scale != 1)
			ew(m, OP_SCALE, m->dt1, m->dt1, NULL, bk->scale, n);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM1], dx, m->dt1, a->c1, x);
		break;
	case GPT_BLOCK_POST:
		/* y = N2(h2), h2 = n1 + m, n1 = N1(h), h = x + a */
		ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM2], m->dt1, g, a->c2, a->h2);
		ew(m, OP_COPY, m->dt2, m->dt1, NULL, 0, n);
		mlp_bwd(m, bk, a, a->n1, m->dt1, m->dt2);
		ew(m, OP_ZERO, dx, NULL, NULL, 0, n);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM1], dx, m->dt2, a->c1, a->h);
		ew(m, OP_COPY, m->dt1, dx, NULL, 0, n);
		attn_bwd(m, bk, a, x, m->dt1, dx);
		break;
	case GPT_BLOCK_PERI:
		/* y = h + N2o(MLP(N2(h))), h = x + N1o(Attn(N1(x))) */
		ew(m, OP_COPY, dx, g, NULL, 0, n);
		ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM2_OUT], m->dt1, g, a->c2o, a->m);
		ew(m, OP_ZERO, m->dt2, NULL, NULL, 0, n);
		mlp_bwd(m, bk, a, a->n2, m->dt1, m->dt2);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM2], dx, m->dt2, a->c2, a->h);
		ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM1_OUT], m->dt1, dx, a->c1o, a->a);
		ew(m, OP_ZERO, m->dt2, NULL, NULL, 0, n);
		attn_bwd(m, bk, a, a->n1, m->dt1, m->dt2);
		norm_bwd(m, &bk->norm[GPT_SITE_NORM1], dx, m->dt2, a->c1, x);
		break;
	}
}

void gpt_backward(struct gpt *m)
{
	struct gpt_layout *lay = &m->lay;
	int N = (int)ntok(m), C = lay->C;
	long n = (long)N * C;
	real *g = m->dres[0], *dx = m->dres[1];
	/* head: logits = nf · headᵀ (tied: head is the token embedding) */
	real *dnf = lay->norm_f.present ? m->dt1 : g;
	ew(m, OP_ZERO, dnf, NULL, NULL, 0, n);
	struct op hb = { .k = OP_MM_BWD_IN, .o = dnf, .a = m->logits, .b = m->params + lay->head,
			 .N = N, .C = C, .OC = lay->V };
	run(m, &hb);
	struct op hw = { .k = OP_MM_BWD_W, .o = m->grads + lay->head, .a = m->logits, .b = m->nf,
			 .N = N, .C = C, .OC = lay->V };
	run(m, &hw);
	if (lay->norm_f.present) {
		ew(m, OP_ZERO, g, NULL, NULL, 0, n);
		norm_bwd(m, &lay->norm_f, g, m->dt1, m->cf, m->resid + (size_t)lay->L * n);
	}
	for (int l = lay->L - 1; l >= 0; l--) {
		block_bwd(m, l, g, dx);
		if (m->probe_grads)
			m->dres_norm[l] = l2(dx, (size_t)n);
		real *t = g;
		g = dx;
		dx = t;
	}
	/* g = ∂L/∂resid_0 */
	real *dx0 = g;
	if (lay->norm_emb.present) {
		ew(m, OP_ZERO, dx, NULL, NULL, 0, n);
		norm_bwd(m, &lay->norm_emb, dx, g, m->cemb, m->emb);
		dx0 = dx;
	}
	real scale = lay->has_escale ? m->params[lay->escale] : 1;
	struct op eb = { .k = OP_EMB_BWD, .o = m->grads + lay->wte, .o2 = m->grads + lay->wpe,
			 .a = dx0, .ia = m->tokens, .s = scale, .N = N };
	run(m, &eb);
	if (lay->has_escale) {
		struct op es = { .k = OP_ESCALE_GRAD, .a = dx0, .ia = m->tokens,
				 .b = m->params + lay->wte, .c = m->params + lay->wpe, .N = N };
		run(m, &es);
		double s = 0;
		for (int t = 0; t < pool_size(m->pool); t++)
			s += es.part[t];
		m->grads[lay->escale] += (real)s;
	}
}
