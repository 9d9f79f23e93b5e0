/*
 * train.c — the step loop: batch, forward, backward, finiteness check, probes, clip, AdamW.
 * Owned by one thread. Deterministic: with the same spec, seed and thread count every step does
 * the same arithmetic in the same order, so losses repeat bit for bit.
 */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "norm.h"
#include "probes.h"
#include "sha256.h"

/*
 * A spec that names its corpus's content (data.sha256, which the daemon fills at submit) trains
 * only on exactly those bytes: they are hashed as mapped, so what the run records is what it read.
 */
static int check_content(const struct trainer *t, const char *label, struct nl_err *err)
{
	uint8_t d[SHA256_LEN];
	char hex[65];
	if (!t->spec.data.sha256[0])
		return 0;
	sha256(t->data.bytes, t->data.n, d);
	sha256_hex(d, hex);
	if (strcmp(hex, t->spec.data.sha256) == 0)
		return 0;
	return nl_err_set(err, NL_EINVAL, "data.path: %s has content sha256 %s; the spec names %s "
			  "(the corpus changed since the spec was made)", label, hex,
			  t->spec.data.sha256);
}

/* Everything but the data, which t->data already holds (t->spec set, the rest zero). */
static int init_rest(struct trainer *t, const char *label, struct nl_err *err)
{
	const struct spec *s = &t->spec;
	int rc;
	struct rng init_rng;
	rc = check_content(t, label, err);
	if (rc)
		goto fail;
	rc = gpt_init(&t->model, s, err);
	if (rc)
		goto fail;
	rc = adamw_init(&t->opt, t->model.lay.n_params);
	if (rc) {
		nl_err_set(err, rc, "out of memory for the optimizer state");
		goto fail;
	}
	size_t N = (size_t)s->train.batch_size * s->model.seq_len;
	int C = s->model.d_model, L = s->model.n_layer;
	size_t ns = (size_t)(s->probe.samples > 0 ? s->probe.samples : 1);
	t->scratch = nl_malloc(sizeof(float) * N * (size_t)C);
	t->scratch_d = nl_malloc(sizeof(double) * (size_t)(C > L ? C : L));
	t->sx = nl_malloc(sizeof(float) * ns);
	t->sy = nl_malloc(sizeof(float) * ns);
	t->stok = nl_malloc(sizeof(int) * ns);
	t->schan = nl_malloc(sizeof(int) * ns);
	if (!t->scratch || !t->scratch_d || !t->sx || !t->sy || !t->stok || !t->schan) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory for probe buffers");
		goto fail;
	}
	rng_seed(&init_rng, s->seed, RNG_STREAM_INIT);
	gpt_init_params(&t->model, s, &init_rng);
	rng_seed(&t->data_rng, s->seed, RNG_STREAM_DATA);
	t->mark_time = nl_now();
	return 0;
fail:
	trainer_free(t);
	return rc;
}

int trainer_init(struct trainer *t, const struct spec *s, const char *corpus, struct nl_err *err)
{
	memset(t, 0, sizeof *t);
	t->spec = *s;
	t->val_loss = NAN;
	int rc = data_load(&t->data, corpus, s->data.val_fraction, s->model.seq_len, err);
	return rc ? rc : init_rest(t, corpus, err);
}

int trainer_init_fd(struct trainer *t, const struct spec *s, int fd, const char *label,
		    struct nl_err *err)
{
	memset(t, 0, sizeof *t);
	t->spec = *s;
	t->val_loss = NAN;
	int rc = data_map_fd(&t->data, fd, label, s->data.val_fraction, s->model.seq_len, err);
	return rc ? rc : init_rest(t, label, err);
}

void trainer_free(struct trainer *t)
{
	gpt_free(&t->model);
	adamw_free(&t->opt);
	data_free(&t->data);
	nl_free(t->scratch);
	nl_free(t->scratch_d);
	nl_free(t->sx);
	nl_free(t->sy);
	nl_free(t->stok);
	nl_free(t->schan);
	memset(t, 0, sizeof *t);
}

int trainer_done(const struct trainer *t)
{
	return t->step >= t->spec.train.steps || t->diverged_step > 0;
}

void trainer_next_batch(struct trainer *t)
{
	data_batch_train(&t->data, &t->data_rng, t->model.tokens, t->model.targets,
			 t->spec.train.batch_size, t->spec.model.seq_len);
}

double trainer_val_loss(struct trainer *t)
{
	int nb = t->spec.probe.val_batches;
	double sum = 0;
	for (int k = 0; k < nb; k++) {
		data_batch_val(&t->data, k, nb, t->model.tokens, t->model.targets,
			       t->spec.train.batch_size, t->spec.model.seq_len);
		sum += gpt_forward(&t->model, 0);
	}
	return sum / nb;
}

/* ---------- probes ---------- */

/* Input and cache of a norm site, or NULL when the block has no such site. */
static const real *site_input(struct gpt *m, int l, int site, const real **cache)
{
	const struct gpt_block *bk = &m->lay.blocks[l];
	struct gpt_block_acts *a = &m->ba[l];
	size_t n = (size_t)m->lay.B * m->lay.T * m->lay.C;
	const real *x = m->resid + (size_t)l * n;
	if (!bk->norm[site].present)
		return NULL;
	switch (site) {
	case GPT_SITE_NORM1:
		*cache = a->c1;
		return bk->kind == GPT_BLOCK_POST ? a->h : x;
	case GPT_SITE_NORM2:
		*cache = a->c2;
		return bk->kind == GPT_BLOCK_POST ? a->h2 : a->h;
	case GPT_SITE_NORM1_OUT:
		*cache = a->c1o;
		return a->a;
	case GPT_SITE_NORM2_OUT:
		*cache = a->c2o;
		return a->m;
	}
	return NULL;
}

static int site_in_all_blocks(const struct gpt *m, int site)
{
	for (int l = 0; l < m->lay.L; l++)
		if (!m->lay.blocks[l].norm[site].present)
			return 0;
	return 1;
}

static void emit_depth(const struct train_sink *sink, long step, const char *name,
		       const double *v, int n)
{
	if (sink && sink->depth)
		sink->depth(sink->ctx, step, name, v, n);
}

static void emit_scalar(const struct train_sink *sink, long step, const char *name, double v)
{
	if (sink && sink->scalar)
		sink->scalar(sink->ctx, step, name, v);
}

/* Mean |x|-based stats for DyT/Derf sites: 1/std of the input, saturated fraction. */
static void pointwise_site_stats(struct gpt *m, const struct gpt_norm_inst *ni, const real *x,
				 double *inv_std, double *sat)
{
	const struct norm_kind *k = m->lay.nk;
	size_t n = (size_t)m->lay.B * m->lay.T * m->lay.C;
	const real *p = m->params + ni->off;
	double s = 0, s2 = 0;
	size_t ns = 0;
	for (size_t i = 0; i < n; i++) {
		s += x[i];
		s2 += (double)x[i] * x[i];
		ns += (size_t)k->saturated(x[i], p, m->lay.C);
	}
	double mean = s / (double)n, var = s2 / (double)n - mean * mean;
	*inv_std = var > 0 ? 1 / sqrt(var) : INFINITY;
	*sat = (double)ns / (double)n;
}

static void probe_depth(struct trainer *t, const struct train_sink *sink, long step)
{
	struct gpt *m = &t->model;
	const struct gpt_layout *lay = &m->lay;
	int L = lay->L, C = lay->C, N = lay->B * lay->T;
	size_t n = (size_t)N * C;
	double v[PROBE_STAT_COUNT][GPT_MAX_LAYERS], extra[4][GPT_MAX_LAYERS];
	char name[96];
	struct probe_stats st;
	const struct norm_kind *k = lay->nk;
	long a_off = norm_tensor_offset(k, "alpha", C), s_off = norm_tensor_offset(k, "shift", C);

	/* residual stream: block outputs */
	for (int l = 0; l < L; l++) {
		probe_tensor_stats(&st, m->resid + (size_t)(l + 1) * n, N, C, t->scratch, t->scratch_d);
		for (int q = 0; q < PROBE_STAT_COUNT; q++)
			v[q][l] = probe_stat_get(&st, (enum probe_stat)q);
		extra[0][l] = probe_angular_distance(m->resid + (size_t)l * n,
						     m->resid + (size_t)(l + 1) * n, N, C);
	}
	for (int q = 0; q < PROBE_STAT_COUNT; q++) {
		snprintf(name, sizeof name, "resid.%s", probe_stat_names[q]);
		emit_depth(sink, step, name, v[q], L);
	}
	emit_depth(sink, step, "angle", extra[0], L);

	/* norm sites */
	for (int site = 0; site < GPT_SITE_COUNT; site++) {
		if (!site_in_all_blocks(m, site))
			continue;
		for (int l = 0; l < L; l++) {
			const real *cache, *x = site_input(m, l, site, &cache);
			const struct gpt_norm_inst *ni = &lay->blocks[l].norm[site];
			probe_tensor_stats(&st, x, N, C, t->scratch, t->scratch_d);
			for (int q = 0; q < PROBE_STAT_COUNT; q++)
				v[q][l] = probe_stat_get(&st, (enum probe_stat)q);
			if (k->saturated) {
				extra[0][l] = m->params[ni->off + (size_t)a_off];
				extra[1][l] = s_off >= 0 ? m->params[ni->off + (size_t)s_off] : 0;
				pointwise_site_stats(m, ni, x, &extra[3][l], &extra[2][l]);
			}
		}
		for (int q = 0; q < PROBE_STAT_COUNT; q++) {
			snprintf(name, sizeof name, "%s.in.%s", gpt_site_names[site], probe_stat_names[q]);
			emit_depth(sink, step, name, v[q], L);
		}
		if (k->saturated) {
			static const char *const what[4] = { "alpha", "shift", "sat", "inv_std" };
			for (int w = 0; w < 4; w++) {
				if (w == 1 && s_off < 0)
					continue;
				snprintf(name, sizeof name, "%s.%s", gpt_site_names[site], what[w]);
				emit_depth(sink, step, name, extra[w], L);
			}
		}
	}
	const struct { const struct gpt_norm_inst *ni; const char *name; const real *x; } outer[2] = {
		{ &lay->norm_f, "norm_f", m->resid + (size_t)L * n },
		{ &lay->norm_emb, "norm_emb", m->emb },
	};
	for (int o = 0; o < 2; o++) {
		if (!outer[o].ni->present || !k->saturated)
			continue;
		double inv_std, sat;
		pointwise_site_stats(m, outer[o].ni, outer[o].x, &inv_std, &sat);
		snprintf(name, sizeof name, "%s.alpha", outer[o].name);
		emit_scalar(sink, step, name, m->params[outer[o].ni->off + (size_t)a_off]);
		if (s_off >= 0) {
			snprintf(name, sizeof name, "%s.shift", outer[o].name);
			emit_scalar(sink, step, name, m->params[outer[o].ni->off + (size_t)s_off]);
		}
		snprintf(name, sizeof name, "%s.sat", outer[o].name);
		emit_scalar(sink, step, name, sat);
		snprintf(name, sizeof name, "%s.inv_std", outer[o].name);
		emit_scalar(sink, step, name, inv_std);
	}

	/* gradients: per block, per tensor (grouped by suffix over depth), at the residual stream */
	for (int l = 0; l < L; l++) {
		const struct gpt_block *bk = &lay->blocks[l];
		double s = 0;
		for (int ti = bk->t_first; ti < bk->t_end; ti++) {
			double g = probe_l2(m->grads + lay->tensors[ti].off, lay->tensors[ti].len);
			s += g * g;
		}
		extra[0][l] = sqrt(s);
	}
	emit_depth(sink, step, "grad.block", extra[0], L);
	emit_depth(sink, step, "grad.resid", m->dres_norm, L);
	const struct gpt_block *b0 = &lay->blocks[0];
	for (int ti = b0->t_first; ti < b0->t_end; ti++) {
		const char *suffix = strchr(lay->tensors[ti].name + 7, '.') + 1; /* after "blocks.0." */
		for (int l = 0; l < L; l++) {
			snprintf(name, sizeof name, "blocks.%d.%s", l, suffix);
			int tj = gpt_tensor_find(lay, name);
			extra[0][l] = tj >= 0 ? probe_l2(m->grads + lay->tensors[tj].off,
							 lay->tensors[tj].len) : NAN;
		}
		snprintf(name, sizeof name, "grad.%s", suffix);
		emit_depth(sink, step, name, extra[0], L);
	}
	for (int ti = 0; ti < lay->n_tensors; ti++) {
		if (lay->tensors[ti].block >= 0)
			continue;
		snprintf(name, sizeof name, "grad.%s", lay->tensors[ti].name);
		emit_scalar(sink, step, name, probe_l2(m->grads + lay->tensors[ti].off, lay->tensors[ti].len));
	}
}

static void sample_site(struct trainer *t, const struct train_sink *sink, long step,
			const char *site, const struct gpt_norm_inst *ni, const real *x,
			const real *cache, struct rng *r)
{
	struct gpt *m = &t->model;
	int C = m->lay.C, N = m->lay.B * m->lay.T, ns = t->spec.probe.samples;
	int cpt = m->lay.nk->cache_per_token;
	const real *p = m->params + ni->off;
	for (int i = 0; i < ns; i++) {
		int n = (int)rng_below(r, (uint64_t)N), c = (int)rng_below(r, (uint64_t)C);
		const real *row = x + (size_t)n * C;
		t->sx[i] = (float)row[c];
		t->sy[i] = (float)m->lay.nk->pre_affine(row, cache + (size_t)n * cpt, p, C, c);
		t->stok[i] = n;
		t->schan[i] = c;
	}
	sink->samples(sink->ctx, step, site, t->sx, t->sy, t->stok, t->schan, ns);
}

static void probe_samples(struct trainer *t, const struct train_sink *sink, long step)
{
	struct gpt *m = &t->model;
	const struct gpt_layout *lay = &m->lay;
	size_t n = (size_t)lay->B * lay->T * lay->C;
	struct rng r;
	char site[64];
	if (!sink || !sink->samples || t->spec.probe.samples <= 0)
		return;
	rng_seed(&r, t->spec.seed ^ (uint64_t)step * 0x9E3779B97F4A7C15ULL, RNG_STREAM_PROBE);
	if (lay->norm_emb.present)
		sample_site(t, sink, step, "norm_emb", &lay->norm_emb, m->emb, m->cemb, &r);
	for (int l = 0; l < lay->L; l++)
		for (int s = 0; s < GPT_SITE_COUNT; s++) {
			const real *cache, *x = site_input(m, l, s, &cache);
			if (!x)
				continue;
			snprintf(site, sizeof site, "blocks.%d.%s", l, gpt_site_names[s]);
			sample_site(t, sink, step, site, &lay->blocks[l].norm[s], x, cache, &r);
		}
	if (lay->norm_f.present)
		sample_site(t, sink, step, "norm_f", &lay->norm_f, m->resid + (size_t)lay->L * n,
			    m->cf, &r);
}

/* ---------- the step ---------- */

static int due(long step, long every, long last)
{
	return step % every == 0 || step == 1 || step == last;
}

int trainer_step(struct trainer *t, const struct train_sink *sink, struct nl_err *err)
{
	const struct spec *s = &t->spec;
	struct gpt *m = &t->model;
	long idx = t->step, step = idx + 1, last = s->train.steps;
	int depth = due(step, s->probe.depth_every, last);
	int samples = due(step, s->probe.samples_every, last);   /* step 1 too: the curve at init */

	double t0 = nl_now();
	trainer_next_batch(t);
	gpt_zero_grad(m);
	m->probe_grads = depth;
	double loss = gpt_forward(m, 1);
	gpt_backward(m);
	double gn = optim_grad_norm(m);
	t->loss = loss;
	t->grad_norm = gn;
	if (!isfinite(loss) || !isfinite(gn)) {
		t->diverged_step = step;
		emit_scalar(sink, step, "loss", loss);
		emit_scalar(sink, step, "grad_norm", gn);
		return nl_err_set(err, NL_EDIVERGED, "diverged at step %ld: loss %g, gradient norm %g",
				  step, loss, gn);
	}
	double t1 = nl_now();
	/* probes read this step's activations and gradients, before the update */
	if (depth) {
		probe_depth(t, sink, step);
		t->n_depth++;
	}
	double t2 = nl_now();
	if (samples) {
		probe_samples(t, sink, step);
		t->n_samples++;
	}
	double t3 = nl_now();

	double lr = optim_lr(&s->train, idx);
	double clip = s->train.grad_clip > 0 && gn > s->train.grad_clip ? s->train.grad_clip / gn : 1;
	adamw_update(&t->opt, m, &s->train, idx, lr, clip);
	double t4 = nl_now();
	t->t_step += (t1 - t0) + (t4 - t3);
	t->t_depth += t2 - t1;
	t->t_samples += t3 - t2;
	t->lr = lr;
	t->step = step;

	if (due(step, s->probe.every, last)) {
		double now = nl_now();
		double dt = now - t->mark_time;
		long ds = step - t->mark_step;
		t->tok_per_s = dt > 0 ? (double)ds * s->train.batch_size * s->model.seq_len / dt : 0;
		t->mark_time = now;
		t->mark_step = step;
		emit_scalar(sink, step, "loss", loss);
		emit_scalar(sink, step, "lr", lr);
		emit_scalar(sink, step, "grad_norm", gn);
		emit_scalar(sink, step, "tokens_per_s", t->tok_per_s);
	}
	if (step % s->probe.val_every == 0 || step == last) {
		double v0 = nl_now();
		t->val_loss = trainer_val_loss(t);
		double dv = nl_now() - v0;
		t->mark_time += dv;   /* validation time is not training throughput */
		t->t_val += dv;
		t->n_val++;
		emit_scalar(sink, step, "val_loss", t->val_loss);
	}
	return 0;
}
