/*
 * model.c — the model core (see model.h): layout and tensor table, norm sites, the one activation
 * carve, parameter init, and the placements, which wrap an architecture's branch {fwd, bwd} once
 * for every architecture. Every kernel runs through the model's backend (model_run).
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lnremove.h"
#include "model_core.h"

const char *const model_slot_names[MODEL_SLOT_COUNT] = { "norm1", "norm2", "norm1_out", "norm2_out" };

const char *const model_op_names[OP_COUNT] = {
	"mm_fwd", "mm_bwd_in", "mm_bwd_w", "att_fwd", "att_bwd", "gelu_fwd", "gelu_bwd",
	"swiglu_fwd", "swiglu_bwd", "rope_fwd", "rope_bwd",
	"emb_fwd", "emb_bwd", "escale_grad", "patch_fwd", "patch_bwd", "pool_fwd", "pool_bwd",
	"ce_fused", "ce_fwd", "add", "scale", "acc", "copy", "zero", "norm_fwd", "norm_bwd",
	"sumsq", "adamw", "mm_fwd_ld", "mm_bwd_in_ld", "mm_bwd_w_ld", "fakenorm_fwd",
	"fakenorm_bwd", "norm_std",
};

static const struct model_arch *const arches[] = { &model_arch_gpt, &model_arch_llama,
						   &model_arch_vit, NULL };

const struct model_arch *model_arch_find(const char *name)
{
	for (int i = 0; arches[i]; i++)
		if (strcmp(arches[i]->name, name) == 0)
			return arches[i];
	return NULL;
}

/* ---------- layout ---------- */

size_t model_add_tensor(struct layout_builder *lb, const char *name, int ndim, int d0, int d1,
			enum model_init init, enum model_role role, int decay, int block)
{
	struct model_layout *lay = lb->lay;
	if (lay->n_tensors == lb->cap) {
		int ncap = lb->cap ? 2 * lb->cap : 64;
		struct model_tensor *t = nl_realloc(lay->tensors, sizeof *t * (size_t)ncap);
		if (!t) {
			lb->failed = 1;
			return 0;
		}
		lay->tensors = t;
		lb->cap = ncap;
	}
	struct model_tensor *t = &lay->tensors[lay->n_tensors++];
	memset(t, 0, sizeof *t);
	if (snprintf(t->name, sizeof t->name, "%s", name) >= (int)sizeof t->name)
		lb->failed = 1;   /* cannot happen with the names we build; never truncate */
	t->ndim = ndim;
	t->shape[0] = d0;
	t->shape[1] = ndim == 2 ? d1 : 0;
	t->len = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
	t->off = lay->n_params;
	t->init = init;
	t->role = role;
	t->decay = decay;
	t->block = block;
	t->site = -1;
	if (block >= 0) {
		const char *dot = strchr(t->name + 7, '.');   /* "blocks.<l>." */
		t->suffix = dot ? (int)(dot + 1 - t->name) : 0;
	}
	lay->n_params += t->len;
	return t->off;
}

/* Adds a norm site `name` at `slot` of `block`; returns its index. */
static int add_site(struct layout_builder *lb, const char *name, int block, int slot,
		    double alpha0, const struct spec *s)
{
	struct model_layout *lay = lb->lay;
	const struct norm_kind *k = lay->nk;
	if (lay->n_sites == lb->site_cap) {
		int ncap = lb->site_cap ? 2 * lb->site_cap : 32;
		struct model_site *ns = nl_realloc(lay->sites, sizeof *ns * (size_t)ncap);
		if (!ns) {
			lb->failed = 1;
			return -1;
		}
		lay->sites = ns;
		lb->site_cap = ncap;
	}
	int idx = lay->n_sites++;
	struct model_site *si = &lay->sites[idx];
	memset(si, 0, sizeof *si);
	snprintf(si->name, sizeof si->name, "%s", name);
	si->block = block;
	si->slot = slot;
	si->off = lay->n_params;
	si->cfg.eps = s->norm.eps;
	si->cfg.alpha0 = alpha0;
	si->cfg.shift0 = s->norm.shift0;
	si->cfg.momentum = s->norm.momentum;
	si->cfg.pn_alpha_fwd = s->norm.pn.alpha_fwd;
	si->cfg.pn_alpha_bkw = s->norm.pn.alpha_bkw;
	si->cfg.pn_warmup = s->norm.pn.warmup;
	si->cfg.pn_groups = s->norm.pn.groups;
	si->cfg.un_window = s->norm.un.window;
	si->cfg.un_warmup = s->norm.un.warmup;
	si->cfg.un_r_free_after = s->norm.un.r_free_after;
	si->cfg.un_outlier = s->norm.un.outlier_filtration;
	si->cfg.un_momentum = s->norm.un.momentum;
	si->cfg.un_r_max = s->norm.un.r_max;
	char tname[MODEL_NAME_MAX];
	for (int i = 0; i < k->n_tensors; i++) {
		if (snprintf(tname, sizeof tname, "%s.%s", name, k->tensors[i].name) >= (int)sizeof tname) {
			lb->failed = 1;
			return -1;
		}
		model_add_tensor(lb, tname, 1, (int)norm_tensor_len(k, i, lay->S), 0, MODEL_INIT_NORM,
				 MODEL_ROLE_NORM, 0, block);
		if (!lb->failed)
			lay->tensors[lay->n_tensors - 1].site = idx;
	}
	si->buf_off = lay->n_buf;
	for (int i = 0; i < k->n_buffers; i++) {
		if (lay->n_buffers == lb->buf_cap) {
			int ncap = lb->buf_cap ? 2 * lb->buf_cap : 32;
			struct model_buffer *nb = nl_realloc(lay->buffers, sizeof *nb * (size_t)ncap);
			if (!nb) {
				lb->failed = 1;
				return -1;
			}
			lay->buffers = nb;
			lb->buf_cap = ncap;
		}
		struct model_buffer *bf = &lay->buffers[lay->n_buffers++];
		memset(bf, 0, sizeof *bf);
		if (snprintf(bf->name, sizeof bf->name, "%s.%s", name, k->buffers[i].name) >=
		    (int)sizeof bf->name) {
			lb->failed = 1;
			return -1;
		}
		bf->len = norm_buffer_len(k, i, lay->S, &si->cfg);
		bf->off = lay->n_buf;
		bf->site = idx;
		bf->ndim = k->buffers[i].shape == NORM_BUF_WINDOW_D ? 2 : 1;
		bf->shape[0] = bf->ndim == 2 ? si->cfg.un_window : (int)bf->len;
		bf->shape[1] = bf->ndim == 2 ? lay->S : 0;
		lay->n_buf += bf->len;
	}
	return idx;
}

int model_layout_build(struct model_layout *lay, const struct spec *s, int B)
{
	struct layout_builder lb = { .lay = lay };
	const struct spec_model *md = &s->model;
	char name[MODEL_NAME_MAX];
	memset(lay, 0, sizeof *lay);
	lay->arch = model_arch_find(md->arch);
	if (!lay->arch || md->n_layer < 1 || md->n_layer > MODEL_MAX_LAYERS)
		return NL_EINVAL;
	lay->L = md->n_layer;
	lay->C = md->d_model;
	lay->NH = md->n_head;
	lay->F = md->d_ff;
	lay->B = B;
	lay->bias = md->bias;
	lay->tied = md->tie_head;
	lay->has_escale = s->norm.embed_scale;
	lay->causal = 1;
	lay->nk = norm_table[s->norm.type];
	lay->S = lay->C - (lay->nk->compressed ? 1 : 0);
	lay->site_emb = lay->site_f = -1;
	if (lay->arch->data == MODEL_DATA_IMAGES) {
		if (md->patch < 1 || 28 % md->patch)
			return NL_EINVAL;
		lay->patch = md->patch;
		lay->n_patch = (28 / md->patch) * (28 / md->patch);
		lay->T = 1 + lay->n_patch;
		lay->V = MODEL_CLASSES;
		lay->causal = 0;
		lay->pool_mean = md->pool_mean;
	} else {
		lay->T = md->seq_len;
		lay->V = MODEL_VOCAB;
	}
	lay->N = lay->B * lay->T;
	lay->blocks = nl_calloc((size_t)lay->L, sizeof *lay->blocks);
	if (!lay->blocks)
		return NL_ENOMEM;

	int L = lay->L;
	int place = s->norm.placement;
	int n_post = place == SPEC_PLACE_MIX ? (int)floor(s->norm.mix_post_ratio * L) : 0;
	/* DeepNet (Wang et al. 2022), decoder-only and encoder-only alike: a = (2N)^¼ on the
	 * residual, Xavier gain β = (8N)^−¼, N the number of blocks (NORMS.md §4.6) */
	real deep_a = place == SPEC_PLACE_DEEPNORM ? (real)pow(2.0 * L, 0.25) : 1;
	lay->deep_beta = place == SPEC_PLACE_DEEPNORM ? (real)pow(8.0 * L, -0.25) : 0;

	lay->arch->layout_embed(&lb, s);
	if (place == SPEC_PLACE_PERI && s->norm.embed_norm)
		lay->site_emb = add_site(&lb, "norm_emb", -1, MODEL_SLOT_EMB, s->norm.alpha_attn, s);

	for (int l = 0; l < L; l++) {
		struct model_block *bk = &lay->blocks[l];
		bk->t_first = lay->n_tensors;
		bk->scale = 1;
		bk->res_scale = 1;
		for (int k = 0; k < MODEL_SLOT_COUNT; k++)
			bk->site[k] = -1;
		switch (place) {
		case SPEC_PLACE_POST: bk->kind = MODEL_BLOCK_POST; break;
		case SPEC_PLACE_DEEPNORM:
			bk->kind = MODEL_BLOCK_POST;
			bk->res_scale = deep_a;
			break;
		case SPEC_PLACE_PERI: bk->kind = MODEL_BLOCK_PERI; break;
		case SPEC_PLACE_MIX: bk->kind = l < n_post ? MODEL_BLOCK_POST : MODEL_BLOCK_PRE; break;
		case SPEC_PLACE_LNS:
			bk->kind = MODEL_BLOCK_PRE;
			bk->scale = (real)(1.0 / sqrt((double)(l + 1)));
			break;
		default: bk->kind = MODEL_BLOCK_PRE; break;
		}
		for (int b = 0; b < 2; b++) {
			double alpha0 = b == 0 ? s->norm.alpha_attn : s->norm.alpha_ffn;
			snprintf(name, sizeof name, "blocks.%d.%s", l, model_slot_names[b]);
			bk->site[b] = add_site(&lb, name, l, b, alpha0, s);
			lay->arch->layout_branch(&lb, s, l, b);
			if (bk->kind == MODEL_BLOCK_PERI) {
				int slot = b == 0 ? MODEL_SLOT_NORM1_OUT : MODEL_SLOT_NORM2_OUT;
				snprintf(name, sizeof name, "blocks.%d.%s", l, model_slot_names[slot]);
				bk->site[slot] = add_site(&lb, name, l, slot, alpha0, s);
			}
		}
		bk->t_end = lay->n_tensors;
	}
	/* Post-LN and DeepNorm normalize each block's output already: no final norm */
	if (place != SPEC_PLACE_POST && place != SPEC_PLACE_DEEPNORM)
		lay->site_f = add_site(&lb, "norm_f", -1, MODEL_SLOT_FINAL, s->norm.alpha_final, s);
	lay->arch->layout_head(&lb, s);
	if (lb.failed) {
		model_layout_free(lay);
		return NL_ENOMEM;
	}
	return 0;
}

void model_layout_free(struct model_layout *lay)
{
	nl_free(lay->tensors);
	nl_free(lay->sites);
	nl_free(lay->blocks);
	nl_free(lay->buffers);
	lay->tensors = NULL;
	lay->sites = NULL;
	lay->blocks = NULL;
	lay->buffers = NULL;
	lay->n_tensors = lay->n_sites = lay->n_buffers = 0;
	lay->n_buf = 0;
}

int model_tensor_find(const struct model_layout *lay, const char *name)
{
	for (int i = 0; i < lay->n_tensors; i++)
		if (strcmp(lay->tensors[i].name, name) == 0)
			return i;
	return -1;
}

size_t model_site_cache_reals(const struct model_layout *lay)
{
	return (size_t)lay->N * (size_t)lay->nk->cache_per_token + norm_chan_reals(lay->nk, lay->S);
}

int model_loss_rows(const struct model_layout *lay)
{
	return lay->arch->data == MODEL_DATA_IMAGES ? lay->B : lay->N;
}

/* ---------- activations ---------- */

real *model_take(struct carver *cv, size_t n)
{
	real *p = cv->base ? cv->base + cv->off : NULL;
	cv->off += n;
	return p;
}

/*
 * One routine walks the activation table for both sizing (m->acts == NULL: pointers are dropped)
 * and carving, so the memory estimate and the allocation cannot drift apart. The order is the
 * one model_gpt.c had, so gpt's buffers sit where they did.
 */
static size_t carve(struct model *m, int nth, real *base)
{
	const struct model_layout *lay = &m->lay;
	const struct model_arch *ar = lay->arch;
	size_t N = (size_t)lay->N, C = lay->S;   /* the stream's width */
	/* a site's cache: per-token reals, then the per-channel scratch (none for per-token kinds,
	 * so their activations lie where they always did) */
	size_t sc = model_site_cache_reals(lay);
	struct carver cv = { .base = base };
	m->resid = model_take(&cv, (size_t)(lay->L + 1) * N * C);
	if (lay->site_emb >= 0) {
		m->emb = model_take(&cv, N * C);
		m->cemb = model_take(&cv, sc);
	}
	for (int l = 0; l < lay->L; l++) {
		struct model_block_acts *a = &m->ba[l];
		const struct model_block *bk = &lay->blocks[l];
		struct model_sub *s0 = &a->sub[0], *s1 = &a->sub[1];
		real *n1 = model_take(&cv, N * C), *c1 = model_take(&cv, sc);
		ar->carve_branch(&cv, m, l, 0);
		s0->f = model_take(&cv, N * C);
		real *h = model_take(&cv, N * C);
		real *n2 = model_take(&cv, N * C), *c2 = model_take(&cv, sc);
		ar->carve_branch(&cv, m, l, 1);
		s1->f = model_take(&cv, N * C);
		if (bk->kind == MODEL_BLOCK_PERI) {
			s0->fo = model_take(&cv, N * C);
			s0->cfo = model_take(&cv, sc);
			s1->fo = model_take(&cv, N * C);
			s1->cfo = model_take(&cv, sc);
		}
		real *h2 = bk->kind == MODEL_BLOCK_POST ? model_take(&cv, N * C) : NULL;
		s0->x = m->resid ? m->resid + (size_t)l * N * C : NULL;
		s1->y = m->resid ? m->resid + (size_t)(l + 1) * N * C : NULL;
		s0->cn = c1;
		s1->cn = c2;
		if (bk->kind == MODEL_BLOCK_POST) {
			/* h = x + a, n1 = N1(h) (the mid stream), h2 = n1 + m, y = N2(h2) */
			s0->h = h;
			s0->y = n1;
			s1->x = n1;
			s1->h = h2;
		} else {
			s0->n = n1;
			s0->y = h;
			s1->x = h;
			s1->n = n2;
		}
	}
	if (lay->site_f >= 0) {
		m->nf = model_take(&cv, N * C);
		m->cf = model_take(&cv, sc);
	}
	ar->carve_head(&cv, m);
	m->dres[0] = model_take(&cv, N * C);
	m->dres[1] = model_take(&cv, N * C);
	m->dt1 = model_take(&cv, N * C);
	m->dt2 = model_take(&cv, N * C);
	ar->carve_scratch(&cv, m, nth);
	return cv.off;
}

size_t model_act_reals(const struct model_layout *lay, int nth)
{
	struct model m;
	struct model_block_acts ba[MODEL_MAX_LAYERS];   /* the sizing pass's pointers, dropped */
	memset(&m, 0, sizeof m);
	m.lay = *lay;
	m.ba = ba;
	return carve(&m, nth, NULL);
}

/* Where each site reads its input and keeps its cache, once the activations are carved. */
static void bind_sites(struct model *m)
{
	struct model_layout *lay = &m->lay;
	for (int l = 0; l < lay->L; l++) {
		const struct model_block *bk = &lay->blocks[l];
		struct model_block_acts *a = &m->ba[l];
		for (int b = 0; b < 2; b++) {
			struct model_sub *sb = &a->sub[b];
			struct model_site *si = &lay->sites[bk->site[b]];
			si->input = bk->kind == MODEL_BLOCK_POST ? sb->h : sb->x;
			si->cache = sb->cn;
			int slot = b == 0 ? MODEL_SLOT_NORM1_OUT : MODEL_SLOT_NORM2_OUT;
			if (bk->site[slot] >= 0) {
				lay->sites[bk->site[slot]].input = sb->f;
				lay->sites[bk->site[slot]].cache = sb->cfo;
			}
		}
	}
	if (lay->site_emb >= 0) {
		lay->sites[lay->site_emb].input = m->emb;
		lay->sites[lay->site_emb].cache = m->cemb;
	}
	if (lay->site_f >= 0) {
		lay->sites[lay->site_f].input = m->resid + (size_t)lay->L * lay->N * lay->S;
		lay->sites[lay->site_f].cache = m->cf;
	}
}

/* Per-thread double partials a norm op needs: parameter gradients, or a batch kind's sums. */
static size_t max_norm_params(const struct model_layout *lay)
{
	return norm_partials(lay->nk, lay->S);
}

int model_init(struct model *m, const struct spec *s, struct nl_err *err)
{
	int rc;
	memset(m, 0, sizeof *m);
	m->be = &model_backend_cpu;
	rc = model_layout_build(&m->lay, s, s->train.batch_size);
	if (rc)
		return nl_err_set(err, rc, rc == NL_EINVAL ?
				  "model %s with n_layer %d (1..%d), patch %d: no such model" :
				  "out of memory building the model layout (%s, n_layer %d, cap %d)",
				  s->model.arch, s->model.n_layer, MODEL_MAX_LAYERS, s->model.patch);
	struct model_layout *lay = &m->lay;
	int nth = s->threads;
	size_t N = (size_t)lay->N;
	rc = pool_new(&m->pool, nth);
	if (rc) {
		nl_err_set(err, rc, "cannot start %d compute threads (1..%d)", nth, POOL_MAX_THREADS);
		goto fail;
	}
	m->ba = nl_calloc((size_t)lay->L, sizeof *m->ba);
	m->dnorm_stride = max_norm_params(lay);
	m->dnorm = nl_calloc((size_t)nth * m->dnorm_stride, sizeof(double));
	m->dres_norm = nl_calloc((size_t)lay->L, sizeof(double));
	m->hloss = nl_calloc((size_t)model_loss_rows(lay), sizeof(real));
	m->hlogits = nl_calloc((size_t)lay->B * lay->V, sizeof(real));
	m->htargets = nl_calloc((size_t)lay->B, sizeof(int));
	if (!m->ba || !m->dnorm || !m->dres_norm || !m->hloss || !m->hlogits || !m->htargets)
		goto oom;
	m->params = m->be->alloc(sizeof(real) * lay->n_params);
	if (lay->n_buf && !(m->bufs = m->be->alloc(sizeof(real) * lay->n_buf)))
		goto oom;
	m->grads = m->be->alloc(sizeof(real) * lay->n_params);
	m->acts = m->be->alloc(sizeof(real) * model_act_reals(lay, nth));
	m->tokens = m->be->alloc(sizeof(int) * 2 * N);
	if (!m->params || !m->grads || !m->acts || !m->tokens)
		goto oom;
	m->targets = m->tokens + N;
	carve(m, nth, m->acts);
	if (lay->site_f < 0)
		m->nf = m->resid + (size_t)lay->L * N * lay->S;
	bind_sites(m);
	if (lay->arch->bind)
		lay->arch->bind(m);
	return 0;
oom:
	rc = nl_err_set(err, NL_ENOMEM, "out of memory allocating the model (%zu parameters)",
			lay->n_params);
fail:
	model_free(m);
	return rc;
}

void model_free(struct model *m)
{
	model_lnr_free(m);
	if (m->be) {
		m->be->release(m->params);
		m->be->release(m->bufs);
		m->be->release(m->grads);
		m->be->release(m->acts);
		m->be->release(m->tokens);
	}
	pool_free(m->pool);
	nl_free(m->ba);
	nl_free(m->dnorm);
	nl_free(m->dres_norm);
	nl_free(m->hloss);
	nl_free(m->hlogits);
	nl_free(m->htargets);
	model_layout_free(&m->lay);
	memset(m, 0, sizeof *m);
}

/*
 * DeepNet's init (Wang et al. 2022, Fig. 2; NORMS.md §4.6), over the normal draws: the blocks'
 * matrices are drawn again, in table order, Xavier-normal, std = gain·√(2/(fan_in + fan_out)),
 * gain β = (8N)^−¼ for the MLP's matrices, V and the attention output projection, gain 1 for Q
 * and K. The fused qkv tensor [3C, S] is three [C, S] matrices: rows < 2C (q, k) and rows ≥ 2C
 * (v) each with fan_out C. Embeddings, head, biases and norms keep the spec's init.
 */
static void deep_init(const struct model_layout *lay, real *p, struct rng *r)
{
	for (int l = 0; l < lay->L; l++) {
		const struct model_block *bk = &lay->blocks[l];
		for (int ti = bk->t_first; ti < bk->t_end; ti++) {
			const struct model_tensor *t = &lay->tensors[ti];
			if (t->ndim != 2 || (t->role != MODEL_ROLE_ATTN && t->role != MODEL_ROLE_MLP))
				continue;
			int qkv = t->off == bk->w[0][BW_IN_W];
			double fan_out = qkv ? t->shape[0] / 3 : t->shape[0], fan_in = t->shape[1];
			double sd = sqrt(2.0 / (fan_in + fan_out));
			size_t qk_end = qkv ? (size_t)2 * lay->C * (size_t)t->shape[1] : 0;
			for (size_t j = 0; j < t->len; j++)
				p[t->off + j] = (real)((j < qk_end ? 1.0 : lay->deep_beta) * sd *
						       rng_normal(r));
		}
	}
}

void model_init_params(struct model *m, const struct spec *s, struct rng *r)
{
	struct model_layout *lay = &m->lay;
	double std = s->model.init_std;
	double out_std = s->model.scaled_init ? std / sqrt(2.0 * lay->L) : std;
	real *p = nl_calloc(lay->n_params ? lay->n_params : 1, sizeof(real));
	if (!p)
		return;   /* model_init allocated more than this; cannot happen in practice */
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct model_tensor *t = &lay->tensors[i];
		double sd = t->init == MODEL_INIT_NORMAL_OUT ? out_std : std;
		if (t->init == MODEL_INIT_NORMAL || t->init == MODEL_INIT_NORMAL_OUT)
			for (size_t j = 0; j < t->len; j++)
				p[t->off + j] = (real)(sd * rng_normal(r));
		else if (t->init == MODEL_INIT_ESCALE)
			p[t->off] = (real)sqrt((double)lay->C);
	}
	if (lay->deep_beta > 0)
		deep_init(lay, p, r);
	for (int i = 0; i < lay->n_sites; i++)
		norm_param_init(lay->nk, p + lay->sites[i].off, lay->S, &lay->sites[i].cfg);
	model_upload(m, m->params, p, lay->n_params);
	nl_free(p);
	model_init_buffers(m);
}

void model_init_buffers(struct model *m)
{
	struct model_layout *lay = &m->lay;
	if (!lay->n_buf)
		return;
	real *b = nl_calloc(lay->n_buf, sizeof(real));
	if (!b)
		return;   /* as model_init_params: model_init allocated more than this */
	for (int i = 0; i < lay->n_sites; i++)
		norm_buffer_init(lay->nk, b + lay->sites[i].buf_off, lay->S, &lay->sites[i].cfg);
	model_upload(m, m->bufs, b, lay->n_buf);
	nl_free(b);
}

void model_zero_grad(struct model *m)
{
	struct model_opargs op = { .k = OP_ZERO, .o = m->grads, .n = (long)m->lay.n_params };
	model_run(m, &op);
}

/* ---------- backend access ---------- */

static enum model_timer op_timer(enum model_op k)
{
	switch (k) {
	case OP_MM_FWD: case OP_MM_BWD_IN: case OP_MM_BWD_W: return MODEL_T_MATMUL;
	case OP_ATT_FWD: case OP_ATT_BWD: return MODEL_T_ATTENTION;
	case OP_NORM_FWD: case OP_NORM_BWD: return MODEL_T_NORM;
	default: return MODEL_T_OTHER;
	}
}

void model_run(struct model *m, struct model_opargs *op)
{
	op->m = m;
	if (m->timing) {
		double t0 = nl_now();
		m->be->exec(m, op);
		m->be->sync(m);
		m->t_ops[op_timer(op->k)] += nl_now() - t0;
	} else {
		m->be->exec(m, op);
	}
}

void model_download(struct model *m, real *host, const real *dev, size_t n)
{
	m->be->sync(m);
	m->be->download(m, host, dev, sizeof(real) * n);
}

void model_upload(struct model *m, real *dev, const real *host, size_t n)
{
	m->be->upload(m, dev, host, sizeof(real) * n);
}

void model_upload_ints(struct model *m, int *dev, const int *host, size_t n)
{
	m->be->upload(m, dev, host, sizeof(int) * n);
}

void model_download_ints(struct model *m, int *host, const int *dev, size_t n)
{
	m->be->sync(m);
	m->be->download(m, host, dev, sizeof(int) * n);
}

real model_param_get(struct model *m, size_t i)
{
	real v;
	model_download(m, &v, m->params + i, 1);
	return v;
}

void model_param_set(struct model *m, size_t i, real v)
{
	model_upload(m, m->params + i, &v, 1);
}

real model_grad_get(struct model *m, size_t i)
{
	real v;
	model_download(m, &v, m->grads + i, 1);
	return v;
}

/* ---------- op helpers for the architectures ---------- */

void model_mm_fwd(struct model *m, real *out, const real *inp, size_t w, size_t b, int N, int C,
		  int OC)
{
	struct model_opargs op = { .k = OP_MM_FWD, .o = out, .a = inp, .b = m->params + w,
				   .c = b != MODEL_NONE ? m->params + b : NULL, .N = N, .C = C,
				   .OC = OC };
	model_run(m, &op);
}

void model_mm_bwd(struct model *m, real *dinp, const real *dout, const real *inp, size_t w,
		  size_t b, int N, int C, int OC)
{
	struct model_opargs op = { .k = OP_MM_BWD_IN, .o = dinp, .a = dout, .b = m->params + w,
				   .N = N, .C = C, .OC = OC };
	if (dinp)
		model_run(m, &op);
	struct model_opargs ow = { .k = OP_MM_BWD_W, .o = m->grads + w,
				   .o2 = b != MODEL_NONE ? m->grads + b : NULL, .a = dout, .b = inp,
				   .N = N, .C = C, .OC = OC };
	model_run(m, &ow);
}

void model_mm_fwd_ld(struct model *m, real *out, int ld, const real *inp, size_t w, size_t b,
		     int N, int C, int OC)
{
	struct model_opargs op = { .k = OP_MM_FWD_LD, .o = out, .a = inp, .b = m->params + w,
				   .c = b != MODEL_NONE ? m->params + b : NULL, .N = N, .C = C,
				   .OC = OC, .n = ld };
	model_run(m, &op);
}

void model_mm_bwd_ld(struct model *m, real *dinp, const real *dout, int ld, const real *inp,
		     size_t w, size_t b, int N, int C, int OC)
{
	struct model_opargs op = { .k = OP_MM_BWD_IN_LD, .o = dinp, .a = dout, .b = m->params + w,
				   .N = N, .C = C, .OC = OC, .n = ld };
	if (dinp)
		model_run(m, &op);
	struct model_opargs ow = { .k = OP_MM_BWD_W_LD, .o = m->grads + w,
				   .o2 = b != MODEL_NONE ? m->grads + b : NULL, .a = dout, .b = inp,
				   .N = N, .C = C, .OC = OC, .n = ld };
	model_run(m, &ow);
}

void model_ew(struct model *m, enum model_op k, real *o, const real *a, const real *b, real s,
	      long n)
{
	struct model_opargs op = { .k = k, .o = o, .a = a, .b = b, .s = s, .n = n };
	model_run(m, &op);
}

/* Site `site` on `path` (lnremove.h): FakeLN with its frozen σ once that path is removed, the
 * kind's own norm otherwise (always, without LN removal). */
static void norm_fwd_path(struct model *m, int site, int path, real *out, real *cache,
			  const real *inp)
{
	const struct lnr_site *ls = m->lnr ? &m->lnr->site[site] : NULL;
	struct model_opargs op = { .k = OP_NORM_FWD, .o = out, .o2 = cache, .a = inp,
				   .site = &m->lay.sites[site], .N = m->lay.N, .mode = m->norm_mode };
	if (ls && ls->fake[path]) {
		op.k = OP_FAKENORM_FWD;
		op.s = 1 / ls->sigma[path];
	}
	model_run(m, &op);
}

static void norm_fwd(struct model *m, int site, real *out, real *cache, const real *inp)
{
	norm_fwd_path(m, site, LNR_PATH_MAIN, out, cache, inp);
}

/* dinp += N'ᵀ·dout; parameter gradients reduced from the per-thread partials in thread order. */
static void norm_bwd_path(struct model *m, int site, int path, real *dinp, const real *dout,
			  const real *cache, const real *inp)
{
	const struct model_site *si = &m->lay.sites[site];
	const struct lnr_site *ls = m->lnr ? &m->lnr->site[site] : NULL;
	struct model_opargs op = { .k = OP_NORM_BWD, .o = dinp, .a = dout, .b = cache, .c = inp,
				   .site = si, .N = m->lay.N };
	if (ls && ls->fake[path]) {
		op.k = OP_FAKENORM_BWD;
		op.s = 1 / ls->sigma[path];
	}
	model_run(m, &op);
}

static void norm_bwd(struct model *m, int site, real *dinp, const real *dout, const real *cache,
		     const real *inp)
{
	norm_bwd_path(m, site, LNR_PATH_MAIN, dinp, dout, cache, inp);
}

/* LN removal's V path of ln1 in block l: its normalized input and cache. */
static real *lnr_xv(struct model *m, int l)
{
	return m->lnr->xv + (size_t)l * m->lay.N * m->lay.C;
}

static real *lnr_cv(struct model *m, int l)
{
	return m->lnr->cv + (size_t)l * m->lay.N * m->lay.nk->cache_per_token;
}

/* ---------- placements ---------- */

static void sub_fwd(struct model *m, int l, int b)
{
	const struct model_block *bk = &m->lay.blocks[l];
	struct model_sub *sb = &m->ba[l].sub[b];
	const struct model_arch *ar = m->lay.arch;
	long n = (long)m->lay.N * m->lay.S;
	int out_slot = b == 0 ? MODEL_SLOT_NORM1_OUT : MODEL_SLOT_NORM2_OUT;
	switch (bk->kind) {
	case MODEL_BLOCK_PRE:
		norm_fwd(m, bk->site[b], sb->n, sb->cn, sb->x);
		if (bk->scale != 1)
			model_ew(m, OP_SCALE, sb->n, sb->n, NULL, bk->scale, n);
		if (b == 0 && m->lnr) {
			/* LN removal: ln1 feeds Q/K (sb->n) and V (x_v) through separate paths */
			norm_fwd_path(m, bk->site[0], LNR_PATH_V, lnr_xv(m, l), lnr_cv(m, l), sb->x);
			m->ba[l].inp_v = lnr_xv(m, l);
		}
		ar->branch_fwd(m, l, b, sb->n, sb->f);
		model_ew(m, OP_ADD, sb->y, sb->x, sb->f, 0, n);
		break;
	case MODEL_BLOCK_POST:
		ar->branch_fwd(m, l, b, sb->x, sb->f);
		if (bk->res_scale != 1) {
			model_ew(m, OP_SCALE, sb->h, sb->x, NULL, bk->res_scale, n);
			model_ew(m, OP_ACC, sb->h, sb->f, NULL, 0, n);
		} else {
			model_ew(m, OP_ADD, sb->h, sb->x, sb->f, 0, n);
		}
		norm_fwd(m, bk->site[b], sb->y, sb->cn, sb->h);
		break;
	case MODEL_BLOCK_PERI:
		norm_fwd(m, bk->site[b], sb->n, sb->cn, sb->x);
		ar->branch_fwd(m, l, b, sb->n, sb->f);
		norm_fwd(m, bk->site[out_slot], sb->fo, sb->cfo, sb->f);
		model_ew(m, OP_ADD, sb->y, sb->x, sb->fo, 0, n);
		break;
	}
}

/*
 * dy = ∂L/∂y (read), dx = ∂L/∂x (written); dx may be dy itself (the second branch of a block
 * runs in place). dt1, dt2 are scratch.
 */
static void sub_bwd(struct model *m, int l, int b, const real *dy, real *dx)
{
	const struct model_block *bk = &m->lay.blocks[l];
	struct model_sub *sb = &m->ba[l].sub[b];
	const struct model_arch *ar = m->lay.arch;
	long n = (long)m->lay.N * m->lay.S;
	int out_slot = b == 0 ? MODEL_SLOT_NORM1_OUT : MODEL_SLOT_NORM2_OUT;
	switch (bk->kind) {
	case MODEL_BLOCK_PRE: {
		int split = b == 0 && m->lnr;
		model_ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		if (split) {
			model_ew(m, OP_ZERO, m->lnr->dxv, NULL, NULL, 0, n);
			m->ba[l].dinp_v = m->lnr->dxv;
		}
		ar->branch_bwd(m, l, b, sb->n, dy, m->dt1);
		if (bk->scale != 1)
			model_ew(m, OP_SCALE, m->dt1, m->dt1, NULL, bk->scale, n);
		if (dx != dy)
			model_ew(m, OP_COPY, dx, dy, NULL, 0, n);
		norm_bwd(m, bk->site[b], dx, m->dt1, sb->cn, sb->x);
		if (split)
			norm_bwd_path(m, bk->site[0], LNR_PATH_V, dx, m->lnr->dxv, lnr_cv(m, l),
				      sb->x);
		break;
	}
	case MODEL_BLOCK_POST:
		model_ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		norm_bwd(m, bk->site[b], m->dt1, dy, sb->cn, sb->h);
		if (bk->res_scale != 1)
			model_ew(m, OP_SCALE, dx, m->dt1, NULL, bk->res_scale, n);
		else
			model_ew(m, OP_COPY, dx, m->dt1, NULL, 0, n);
		ar->branch_bwd(m, l, b, sb->x, m->dt1, dx);
		break;
	case MODEL_BLOCK_PERI:
		if (dx != dy)
			model_ew(m, OP_COPY, dx, dy, NULL, 0, n);
		model_ew(m, OP_ZERO, m->dt1, NULL, NULL, 0, n);
		norm_bwd(m, bk->site[out_slot], m->dt1, dx, sb->cfo, sb->f);
		model_ew(m, OP_ZERO, m->dt2, NULL, NULL, 0, n);
		ar->branch_bwd(m, l, b, sb->n, m->dt1, m->dt2);
		norm_bwd(m, bk->site[b], dx, m->dt2, sb->cn, sb->x);
		break;
	}
}

/* ---------- forward / backward ---------- */

double model_forward(struct model *m, int for_backward)
{
	return model_forward_mode(m, for_backward, for_backward ? NORM_MODE_TRAIN : NORM_MODE_EVAL);
}

double model_forward_mode(struct model *m, int for_backward, enum norm_mode mode)
{
	struct model_layout *lay = &m->lay;
	m->norm_mode = mode;
	size_t n = (size_t)lay->N * lay->S;
	real *x0 = lay->site_emb >= 0 ? m->emb : m->resid;
	lay->arch->embed_fwd(m, x0);
	if (lay->site_emb >= 0)
		norm_fwd(m, lay->site_emb, m->resid, m->cemb, m->emb);
	for (int l = 0; l < lay->L; l++) {
		sub_fwd(m, l, 0);
		sub_fwd(m, l, 1);
	}
	real *xl = m->resid + (size_t)lay->L * n;
	if (lay->site_f >= 0)
		norm_fwd(m, lay->site_f, m->nf, m->cf, xl);
	double loss = lay->arch->head_fwd(m, m->nf, for_backward);
	if (for_backward && m->lnr)
		model_lnr_track(m);   /* training forwards only: validation leaves the EMA alone */
	return loss;
}

static double l2(struct model *m, const real *x, size_t n)
{
	struct model_opargs op = { .k = OP_SUMSQ, .a = x, .n = (long)n };
	model_run(m, &op);
	double s = 0;
	for (int t = 0; t < pool_size(m->pool); t++)
		s += op.part[t];
	return sqrt(s);
}

void model_backward(struct model *m)
{
	struct model_layout *lay = &m->lay;
	long n = (long)lay->N * lay->S;
	real *g = m->dres[0], *dx = m->dres[1];
	real *dnf = lay->site_f >= 0 ? m->dt1 : g;
	model_ew(m, OP_ZERO, dnf, NULL, NULL, 0, n);
	lay->arch->head_bwd(m, m->nf, dnf);
	if (lay->site_f >= 0) {
		model_ew(m, OP_ZERO, g, NULL, NULL, 0, n);
		norm_bwd(m, lay->site_f, g, m->dt1, m->cf, m->resid + (size_t)lay->L * n);
	}
	for (int l = lay->L - 1; l >= 0; l--) {
		/* the MLP branch into dx, then the attention branch in place */
		sub_bwd(m, l, 1, g, dx);
		sub_bwd(m, l, 0, dx, dx);
		if (m->probe_grads)
			m->dres_norm[l] = l2(m, dx, (size_t)n);
		real *t = g;
		g = dx;
		dx = t;
	}
	/* g = ∂L/∂resid_0 */
	real *dx0 = g;
	if (lay->site_emb >= 0) {
		model_ew(m, OP_ZERO, dx, NULL, NULL, 0, n);
		norm_bwd(m, lay->site_emb, dx, g, m->cemb, m->emb);
		dx0 = dx;
	}
	lay->arch->embed_bwd(m, dx0);
}
