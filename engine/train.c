/*
 * train.c — the step loop: batch, forward, backward, finiteness check, probes, clip, AdamW.
 * Owned by one thread. Deterministic: with the same spec, seed and thread count every step does
 * the same arithmetic in the same order, so losses repeat bit for bit.
 */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lnremove.h"
#include "norm.h"
#include "probes.h"
#include "sha256.h"

static int is_images(const struct trainer *t)
{
	return t->model.lay.arch->data == MODEL_DATA_IMAGES;
}

/* The spec's architecture reads images (vit), not a text corpus. */
static int spec_images(const struct spec *s)
{
	const struct model_arch *a = model_arch_find(s->model.arch);
	return a && a->data == MODEL_DATA_IMAGES;
}

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
	rc = model_init(&t->model, s, err);
	if (rc)
		goto fail;
	/* images: data.path names the data set's directory; the defaults mean Debian's (the text
	 * corpus, for the other archs, is already in t->data) */
	if (is_images(t)) {
		rc = fmnist_load(&t->img, strcmp(s->data.path, "kjv") == 0 ||
				 strcmp(s->data.path, "fashion-mnist") == 0 ? NULL : s->data.path, err);
		if (rc)
			goto fail;
	}
	if (s->lnremove.mode != SPEC_LNR_NONE) {
		rc = model_lnr_init(&t->model, s->lnremove.ema_momentum, err);
		if (rc)
			goto fail;
	}
	rc = adamw_init(&t->opt, &t->model);
	if (rc) {
		nl_err_set(err, rc, "out of memory for the optimizer state");
		goto fail;
	}
	const struct model_layout *lay = &t->model.lay;
	size_t N = (size_t)lay->N;
	int C = lay->S, L = lay->L;
	size_t ns = (size_t)(s->probe.samples > 0 ? s->probe.samples : 1);
	size_t np = norm_param_count(lay->nk, C);
	t->scratch = nl_malloc(sizeof(float) * N * (size_t)C);
	t->scratch_d = nl_malloc(sizeof(double) * (size_t)(C > L ? C : L));
	t->hx = nl_malloc(sizeof(real) * 2 * N * (size_t)C);
	t->hcache = nl_malloc(sizeof(real) * N * (size_t)(lay->nk->cache_per_token + 1));
	t->hgrad = nl_malloc(sizeof(real) * (lay->n_params ? lay->n_params : 1));
	t->hp = nl_malloc(sizeof(real) * (np ? np : 1));
	/* batch-statistic norms: one site's per-channel scratch and buffers on the host */
	size_t nbuf = 1;
	for (int i = 0; i < lay->n_sites; i++) {
		size_t b = norm_buffer_count(lay->nk, C, &lay->sites[i].cfg);
		nbuf = b > nbuf ? b : nbuf;
	}
	t->hchan = nl_malloc(sizeof(real) * (norm_chan_reals(lay->nk, C) + 1));
	t->hbuf = nl_malloc(sizeof(real) * nbuf);
	t->htok = nl_malloc(sizeof(int) * 2 * N);
	t->himg = is_images(t) ? nl_malloc(sizeof(real) * (size_t)lay->B * FMNIST_PIXELS) : NULL;
	t->sx = nl_malloc(sizeof(float) * ns);
	t->sy = nl_malloc(sizeof(float) * ns);
	t->stok = nl_malloc(sizeof(int) * ns);
	t->schan = nl_malloc(sizeof(int) * ns);
	if (!t->scratch || !t->scratch_d || !t->hx || !t->hcache || !t->hgrad || !t->hp ||
	    !t->hchan || !t->hbuf ||
	    !t->htok || (is_images(t) && !t->himg) || !t->sx || !t->sy || !t->stok || !t->schan) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory for probe buffers");
		goto fail;
	}
	t->htgt = t->htok + N;
	rc = health_init(&t->health, s, is_images(t) ? fmnist_label_entropy(&t->img) :
			 data_unigram_entropy(&t->data));
	if (rc) {
		nl_err_set(err, rc, "out of memory for the health window");
		goto fail;
	}
	rng_seed(&init_rng, s->seed, RNG_STREAM_INIT);
	model_init_params(&t->model, s, &init_rng);
	rng_seed(&t->data_rng, s->seed, RNG_STREAM_DATA);
	t->mark_time = nl_now();
	return 0;
fail:
	trainer_free(t);
	return rc;
}

static void init_fields(struct trainer *t, const struct spec *s)
{
	memset(t, 0, sizeof *t);
	t->spec = *s;
	t->val_loss = NAN;
	t->val_acc = NAN;
	t->train_acc = NAN;
	t->val_loss_trainmode = NAN;
}

int trainer_init(struct trainer *t, const struct spec *s, const char *corpus, struct nl_err *err)
{
	init_fields(t, s);
	if (spec_images(s))
		return init_rest(t, s->data.path, err);
	int rc = data_load(&t->data, corpus, s->data.val_fraction, s->model.seq_len, err);
	return rc ? rc : init_rest(t, corpus, err);
}

int trainer_init_fd(struct trainer *t, const struct spec *s, int fd, const char *label,
		    struct nl_err *err)
{
	init_fields(t, s);
	if (spec_images(s))
		return init_rest(t, s->data.path, err);
	int rc = data_map_fd(&t->data, fd, label, s->data.val_fraction, s->model.seq_len, err);
	return rc ? rc : init_rest(t, label, err);
}

void trainer_free(struct trainer *t)
{
	adamw_free(&t->opt);
	model_free(&t->model);
	data_free(&t->data);
	fmnist_free(&t->img);
	health_free(&t->health);
	nl_free(t->scratch);
	nl_free(t->scratch_d);
	nl_free(t->hx);
	nl_free(t->hcache);
	nl_free(t->hgrad);
	nl_free(t->hp);
	nl_free(t->hchan);
	nl_free(t->hbuf);
	nl_free(t->htok);
	nl_free(t->himg);
	nl_free(t->sx);
	nl_free(t->sy);
	nl_free(t->stok);
	nl_free(t->schan);
	memset(t, 0, sizeof *t);
}

int trainer_done(const struct trainer *t)
{
	return t->step >= t->spec.train.steps || t->diverged_step > 0 ||
	       health_should_stop(&t->health, &t->spec);
}

double trainer_epochs(const struct trainer *t)
{
	if (!is_images(t))
		return 0;
	return (double)t->step * t->spec.train.batch_size / FMNIST_TRAIN;
}

/* The host batch into the model's input buffers. */
static void upload_batch(struct trainer *t)
{
	struct model *m = &t->model;
	const struct model_layout *lay = &m->lay;
	if (is_images(t)) {
		model_upload(m, m->images, t->himg, (size_t)lay->B * FMNIST_PIXELS);
		model_upload_ints(m, m->targets, t->htgt, (size_t)lay->B);
	} else {
		model_upload_ints(m, m->tokens, t->htok, (size_t)lay->N);
		model_upload_ints(m, m->targets, t->htgt, (size_t)lay->N);
	}
}

void trainer_next_batch(struct trainer *t)
{
	if (is_images(t))
		fmnist_batch_train(&t->img, &t->data_rng, t->himg, t->htgt, t->spec.train.batch_size);
	else
		data_batch_train(&t->data, &t->data_rng, t->htok, t->htgt,
				 t->spec.train.batch_size, t->spec.model.seq_len);
	upload_batch(t);
}

static double validate_mode(struct trainer *t, int full, double *acc, enum norm_mode mode);

double trainer_validate(struct trainer *t, int full, double *acc)
{
	return validate_mode(t, full, acc, NORM_MODE_EVAL);
}

double trainer_validate_trainmode(struct trainer *t, int full, double *acc)
{
	return validate_mode(t, full, acc, NORM_MODE_BATCH);
}

static double validate_mode(struct trainer *t, int full, double *acc, enum norm_mode mode)
{
	struct model *m = &t->model;
	int nb = t->spec.probe.val_batches, B = t->spec.train.batch_size;
	double sum = 0;
	if (acc)
		*acc = NAN;
	if (!is_images(t)) {
		for (int k = 0; k < nb; k++) {
			data_batch_val(&t->data, k, nb, t->htok, t->htgt, B, t->spec.model.seq_len);
			upload_batch(t);
			sum += model_forward_mode(m, 0, mode);
		}
		return sum / nb;
	}
	/* images: val_batches test batches, or every test image once (the last batch's rows past
	 * the end wrap to the start and are not counted) */
	int n_img = full ? t->img.n_test : nb * B, seen = 0, correct = 0;
	if (n_img > t->img.n_test)
		n_img = t->img.n_test;
	for (int first = 0; first < n_img; first += B) {
		int rows = n_img - first < B ? n_img - first : B;
		fmnist_batch_test(&t->img, first, t->himg, t->htgt, B);
		upload_batch(t);
		model_forward_mode(m, 0, mode);
		for (int b = 0; b < rows; b++) {
			const real *row = m->hlogits + (size_t)b * m->lay.V;
			int best = 0;
			for (int v = 1; v < m->lay.V; v++)
				if (row[v] > row[best])
					best = v;
			correct += best == t->htgt[b];
			sum += m->hloss[b];
		}
		seen += rows;
	}
	if (acc)
		*acc = (double)correct / seen;
	return sum / seen;
}

double trainer_val_loss(struct trainer *t)
{
	return trainer_validate(t, 0, NULL);
}

/* ---------- probes ---------- */

/* The site at `slot` of block l, or -1. */
static int block_site(const struct model *m, int l, int slot)
{
	return m->lay.blocks[l].site[slot];
}

static int slot_in_all_blocks(const struct model *m, int slot)
{
	for (int l = 0; l < m->lay.L; l++)
		if (block_site(m, l, slot) < 0)
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

/* A site's input into t->hx and its parameters into t->hp (host copies). */
static void fetch_site(struct trainer *t, const struct model_site *si, int with_cache)
{
	struct model *m = &t->model;
	size_t N = (size_t)m->lay.N, np = norm_param_count(m->lay.nk, m->lay.S);
	model_download(m, t->hx, si->input, N * (size_t)m->lay.S);
	model_download(m, t->hp, m->params + si->off, np);
	if (with_cache)
		model_download(m, t->hcache, si->cache, N * (size_t)m->lay.nk->cache_per_token);
	if (m->lay.nk->batch) {
		const struct norm_kind *k = m->lay.nk;
		model_download(m, t->hchan, si->cache + N * (size_t)k->cache_per_token,
			       norm_chan_reals(k, m->lay.S));
		model_download(m, t->hbuf, m->bufs + si->buf_off,
			       norm_buffer_count(k, m->lay.S, &si->cfg));
	}
}

/* Mean |x|-based stats for DyT/Derf sites over t->hx: 1/std of the input, saturated fraction. */
static void pointwise_site_stats(struct trainer *t, double *inv_std, double *sat)
{
	const struct model *m = &t->model;
	const struct norm_kind *k = m->lay.nk;
	size_t n = (size_t)m->lay.N * m->lay.S;
	const real *x = t->hx, *p = t->hp;
	double s = 0, s2 = 0;
	size_t ns = 0;
	for (size_t i = 0; i < n; i++) {
		s += x[i];
		s2 += (double)x[i] * x[i];
		ns += (size_t)k->saturated(x[i], p, m->lay.S);
	}
	double mean = s / (double)n, var = s2 / (double)n - mean * mean;
	*inv_std = var > 0 ? 1 / sqrt(var) : INFINITY;
	*sat = (double)ns / (double)n;
}

static void probe_depth(struct trainer *t, const struct train_sink *sink, long step)
{
	struct model *m = &t->model;
	const struct model_layout *lay = &m->lay;
	int L = lay->L, C = lay->S, N = lay->N;
	size_t n = (size_t)N * C;
	double v[PROBE_STAT_COUNT][MODEL_MAX_LAYERS], extra[4][MODEL_MAX_LAYERS];
	double pv[NORM_MAX_PROBES][MODEL_MAX_LAYERS], one[NORM_MAX_PROBES];
	char name[96];
	struct probe_stats st;
	const struct norm_kind *k = lay->nk;
	long a_off = norm_tensor_offset(k, "alpha", C), s_off = norm_tensor_offset(k, "shift", C);
	real *prev = t->hx + n;   /* x_l while t->hx holds x_{l+1} */

	/* residual stream: block outputs, and the angle x_l → x_{l+1} */
	model_download(m, t->hx, m->resid, n);
	for (int l = 0; l < L; l++) {
		memcpy(prev, t->hx, sizeof(real) * n);
		model_download(m, t->hx, m->resid + (size_t)(l + 1) * n, n);
		double ang = probe_angular_distance(prev, t->hx, N, C);
		probe_tensor_stats(&st, t->hx, N, C, t->scratch, t->scratch_d);
		for (int q = 0; q < PROBE_STAT_COUNT; q++)
			v[q][l] = probe_stat_get(&st, (enum probe_stat)q);
		extra[0][l] = ang;
	}
	for (int q = 0; q < PROBE_STAT_COUNT; q++) {
		snprintf(name, sizeof name, "resid.%s", probe_stat_names[q]);
		emit_depth(sink, step, name, v[q], L);
	}
	emit_depth(sink, step, "angle", extra[0], L);

	/* norm sites, by slot over depth */
	for (int slot = 0; slot < MODEL_SLOT_COUNT; slot++) {
		if (!slot_in_all_blocks(m, slot))
			continue;
		for (int l = 0; l < L; l++) {
			const struct model_site *si = &lay->sites[block_site(m, l, slot)];
			fetch_site(t, si, 0);
			if (k->saturated) {
				extra[0][l] = t->hp[a_off];
				extra[1][l] = s_off >= 0 ? t->hp[s_off] : 0;
				pointwise_site_stats(t, &extra[3][l], &extra[2][l]);
			}
			if (k->n_probes) {
				k->probe(one, t->hchan, t->hbuf, C, &si->cfg);
				for (int w = 0; w < k->n_probes; w++)
					pv[w][l] = one[w];
			}
			probe_tensor_stats(&st, t->hx, N, C, t->scratch, t->scratch_d);
			for (int q = 0; q < PROBE_STAT_COUNT; q++)
				v[q][l] = probe_stat_get(&st, (enum probe_stat)q);
		}
		for (int q = 0; q < PROBE_STAT_COUNT; q++) {
			snprintf(name, sizeof name, "%s.in.%s", model_slot_names[slot], probe_stat_names[q]);
			emit_depth(sink, step, name, v[q], L);
		}
		if (k->saturated) {
			static const char *const what[4] = { "alpha", "shift", "sat", "inv_std" };
			for (int w = 0; w < 4; w++) {
				if (w == 1 && s_off < 0)
					continue;
				snprintf(name, sizeof name, "%s.%s", model_slot_names[slot], what[w]);
				emit_depth(sink, step, name, extra[w], L);
			}
		}
		for (int w = 0; w < k->n_probes; w++) {
			snprintf(name, sizeof name, "%s.%s", model_slot_names[slot], k->probe_names[w]);
			emit_depth(sink, step, name, pv[w], L);
		}
	}
	const int outer[2] = { lay->site_f, lay->site_emb };
	for (int o = 0; o < 2 && k->n_probes; o++) {
		if (outer[o] < 0)
			continue;
		const struct model_site *si = &lay->sites[outer[o]];
		fetch_site(t, si, 0);
		k->probe(one, t->hchan, t->hbuf, C, &si->cfg);
		for (int w = 0; w < k->n_probes; w++) {
			snprintf(name, sizeof name, "%s.%s", si->name, k->probe_names[w]);
			emit_scalar(sink, step, name, one[w]);
		}
	}
	for (int o = 0; o < 2; o++) {
		if (outer[o] < 0 || !k->saturated)
			continue;
		const struct model_site *si = &lay->sites[outer[o]];
		double inv_std, sat;
		fetch_site(t, si, 0);
		pointwise_site_stats(t, &inv_std, &sat);
		snprintf(name, sizeof name, "%s.alpha", si->name);
		emit_scalar(sink, step, name, t->hp[a_off]);
		if (s_off >= 0) {
			snprintf(name, sizeof name, "%s.shift", si->name);
			emit_scalar(sink, step, name, t->hp[s_off]);
		}
		snprintf(name, sizeof name, "%s.sat", si->name);
		emit_scalar(sink, step, name, sat);
		snprintf(name, sizeof name, "%s.inv_std", si->name);
		emit_scalar(sink, step, name, inv_std);
	}

	/* gradients: per block, per tensor (grouped by suffix over depth), at the residual stream */
	model_download(m, t->hgrad, m->grads, lay->n_params);
	for (int l = 0; l < L; l++) {
		const struct model_block *bk = &lay->blocks[l];
		double s = 0;
		for (int ti = bk->t_first; ti < bk->t_end; ti++) {
			double g = probe_l2(t->hgrad + lay->tensors[ti].off, lay->tensors[ti].len);
			s += g * g;
		}
		extra[0][l] = sqrt(s);
	}
	emit_depth(sink, step, "grad.block", extra[0], L);
	emit_depth(sink, step, "grad.resid", m->dres_norm, L);
	const struct model_block *b0 = &lay->blocks[0];
	for (int ti = b0->t_first; ti < b0->t_end; ti++) {
		const char *suffix = lay->tensors[ti].name + lay->tensors[ti].suffix;
		for (int l = 0; l < L; l++) {
			const struct model_block *bl = &lay->blocks[l];
			extra[0][l] = NAN;
			for (int tj = bl->t_first; tj < bl->t_end; tj++)
				if (strcmp(lay->tensors[tj].name + lay->tensors[tj].suffix, suffix) == 0)
					extra[0][l] = probe_l2(t->hgrad + lay->tensors[tj].off,
							       lay->tensors[tj].len);
		}
		snprintf(name, sizeof name, "grad.%s", suffix);
		emit_depth(sink, step, name, extra[0], L);
	}
	for (int ti = 0; ti < lay->n_tensors; ti++) {
		if (lay->tensors[ti].block >= 0)
			continue;
		snprintf(name, sizeof name, "grad.%s", lay->tensors[ti].name);
		emit_scalar(sink, step, name, probe_l2(t->hgrad + lay->tensors[ti].off,
						       lay->tensors[ti].len));
	}
}

static void sample_site(struct trainer *t, const struct train_sink *sink, long step,
			const struct model_site *si, struct rng *r)
{
	struct model *m = &t->model;
	int C = m->lay.S, N = m->lay.N, ns = t->spec.probe.samples;
	int cpt = m->lay.nk->cache_per_token;
	fetch_site(t, si, 1);
	for (int i = 0; i < ns; i++) {
		int n = (int)rng_below(r, (uint64_t)N), c = (int)rng_below(r, (uint64_t)C);
		const real *row = t->hx + (size_t)n * C;
		t->sx[i] = (float)row[c];
		/* a batch-statistic kind normalizes with per-channel statistics: its chan */
		const real *crow = m->lay.nk->batch ? t->hchan : t->hcache + (size_t)n * cpt;
		t->sy[i] = (float)m->lay.nk->pre_affine(row, crow, t->hp, C, c);
		t->stok[i] = n;
		t->schan[i] = c;
	}
	sink->samples(sink->ctx, step, si->name, t->sx, t->sy, t->stok, t->schan, ns);
}

/* Every site: the embedding norm, the blocks' sites in block and slot order, norm_f. */
static void probe_samples(struct trainer *t, const struct train_sink *sink, long step)
{
	struct model *m = &t->model;
	const struct model_layout *lay = &m->lay;
	struct rng r;
	if (!sink || !sink->samples || t->spec.probe.samples <= 0)
		return;
	rng_seed(&r, t->spec.seed ^ (uint64_t)step * 0x9E3779B97F4A7C15ULL, RNG_STREAM_PROBE);
	if (lay->site_emb >= 0)
		sample_site(t, sink, step, &lay->sites[lay->site_emb], &r);
	for (int l = 0; l < lay->L; l++)
		for (int s = 0; s < MODEL_SLOT_COUNT; s++)
			if (block_site(m, l, s) >= 0)
				sample_site(t, sink, step, &lay->sites[block_site(m, l, s)], &r);
	if (lay->site_f >= 0)
		sample_site(t, sink, step, &lay->sites[lay->site_f], &r);
}

/* ---------- health ---------- */

/* What a health check sees now (after the backward, before the update): whether any gradient
 * reaches the residual stream, and the most saturated norm site (kinds that saturate). */
static void health_observe(struct trainer *t, struct health_obs *o)
{
	struct model *m = &t->model;
	const struct model_layout *lay = &m->lay;
	memset(o, 0, sizeof *o);
	o->grads_known = m->probe_grads;
	o->grads_all_zero = 1;
	for (int l = 0; l < lay->L; l++)
		if (m->dres_norm[l] != 0)
			o->grads_all_zero = 0;
	o->sat_max = -1;
	if (!lay->nk->saturated)
		return;
	for (int i = 0; i < lay->n_sites; i++) {
		double inv_std, sat;
		fetch_site(t, &lay->sites[i], 0);
		pointwise_site_stats(t, &inv_std, &sat);
		o->n_sat += sat >= HEALTH_SAT_DEAD;
		if (sat > o->sat_max) {
			o->sat_max = sat;
			snprintf(o->sat_site, sizeof o->sat_site, "%s", lay->sites[i].name);
		}
	}
}

/* ---------- the step ---------- */

static int due(long step, long every, long last)
{
	return step % every == 0 || step == 1 || step == last;
}

int trainer_step(struct trainer *t, const struct train_sink *sink, struct nl_err *err)
{
	const struct spec *s = &t->spec;
	struct model *m = &t->model;
	long idx = t->step, step = idx + 1, last = s->train.steps;
	int depth = due(step, s->probe.depth_every, last);
	int samples = due(step, s->probe.samples_every, last);   /* step 1 too: the curve at init */
	int check = step % s->health.every == 0;

	double t0 = nl_now();
	lnr_step_begin(t, sink, step);   /* LN removal: this step's removals, before its forward */
	trainer_next_batch(t);
	model_zero_grad(m);
	m->probe_grads = depth || check;
	double loss = model_forward(m, 1);
	if (is_images(t))
		t->train_acc = (double)m->correct / m->lay.B;
	model_backward(m);
	double gn = optim_grad_norm(m);
	t->loss = loss;
	t->grad_norm = gn;
	if (!isfinite(loss) || !isfinite(gn)) {
		t->diverged_step = step;
		emit_scalar(sink, step, "loss", loss);
		emit_scalar(sink, step, "grad_norm", gn);
		nl_err_set(err, NL_EDIVERGED, "diverged at step %ld: loss %g, gradient norm %g", step,
			   loss, gn);
		health_diverged(&t->health, step, err->msg);
		return NL_EDIVERGED;
	}
	health_loss(&t->health, s, step, loss);
	if (check) {
		struct health_obs o;
		health_observe(t, &o);
		health_check(&t->health, s, step, &o);
	}
	/* a dead run that stops here ends like a last step: scalars, validation, samples */
	int dead = health_should_stop(&t->health, s);
	if (dead)
		last = step;
	samples = samples || dead;
	double t1 = nl_now();
	/* probes read this step's activations and gradients, before the update */
	if (depth) {
		probe_depth(t, sink, step);
		lnr_probe_depth(t, sink, step);
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
		t->tok_per_s = dt > 0 ? (double)ds * m->lay.N / dt : 0;
		t->mark_time = now;
		t->mark_step = step;
		emit_scalar(sink, step, "loss", loss);
		emit_scalar(sink, step, "lr", lr);
		emit_scalar(sink, step, "grad_norm", gn);
		emit_scalar(sink, step, "tokens_per_s", t->tok_per_s);
		if (step == 1)   /* the loss a model of symbol frequencies alone reaches */
			emit_scalar(sink, step, "unigram_entropy", t->health.entropy);
		if (is_images(t)) {
			emit_scalar(sink, step, "train_acc", t->train_acc);
			emit_scalar(sink, step, "epochs", trainer_epochs(t));
		}
	} else if (lnr_log_loss(t, step)) {
		emit_scalar(sink, step, "loss", loss);   /* every step around the removals */
	}
	if (step % s->probe.val_every == 0 || step == last || lnr_val_step(t, step)) {
		double v0 = nl_now();
		t->val_loss = trainer_validate(t, step == last, &t->val_acc);
		double dv = nl_now() - v0;
		t->mark_time += dv;   /* validation time is not training throughput */
		t->t_val += dv;
		t->n_val++;
		emit_scalar(sink, step, "val_loss", t->val_loss);
		if (is_images(t))
			emit_scalar(sink, step, "val_acc", t->val_acc);
		if (step == last && m->lnr &&
		    lnr_last_step(&s->lnremove, m->lay.L) <= last)
			emit_scalar(sink, step, "lnremove.final_val_loss", t->val_loss);
		/* batch-statistic norms: the same data with the training forward's batch statistics
		 * (buffers untouched). For the causal LM it sees future tokens of each sequence
		 * through the statistics, so it is not an honest loss; val_loss above is. */
		if (m->lay.nk->batch) {
			double acc_tm;
			double v1 = nl_now();
			t->val_loss_trainmode = trainer_validate_trainmode(t, step == last, &acc_tm);
			double dv2 = nl_now() - v1;
			t->mark_time += dv2;
			t->t_val += dv2;
			emit_scalar(sink, step, "val_loss_trainmode", t->val_loss_trainmode);
			if (is_images(t))
				emit_scalar(sink, step, "val_acc_trainmode", acc_tm);
		}
	}
	if (dead)
		return nl_err_set(err, NL_EDEAD, "%s", t->health.reason);
	return 0;
}
