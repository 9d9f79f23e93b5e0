/*
 * train_lnremove.c — the trainer's side of LN removal (lnremove.h): the start measurement, the
 * schedule applied step by step, and what a child run records (removal events, EMA std vs frozen
 * σ over depth, the loss around the removals). Runs on the trainer's thread, between steps.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lnremove.h"
#include "train.h"

/* The site and path a (phase, layer) removal turns fake. */
static int phase_site(const struct model_layout *lay, int phase, int layer, int *path)
{
	*path = phase == LNR_LN1_V ? LNR_PATH_V : LNR_PATH_MAIN;
	switch (phase) {
	case LNR_LN2: return lay->blocks[layer].site[MODEL_SLOT_NORM2];
	case LNR_LN1_QK:
	case LNR_LN1_V: return lay->blocks[layer].site[MODEL_SLOT_NORM1];
	default: return lay->site_f;
	}
}

static int phase_layers(const struct model_layout *lay, int phase)
{
	return phase == LNR_LN_F ? 1 : lay->L;
}

/* Mean per-token std of every site's input over the validation batches, on the weights as they
 * are (the parent's, before the first step): σ0, and where the EMA starts. */
static void measure_start(struct trainer *t)
{
	struct model *m = &t->model;
	struct model_lnr *r = m->lnr;
	int nb = t->spec.probe.val_batches, n = m->lay.n_sites;
	double acc[4 * MODEL_MAX_LAYERS + 4] = { 0 }, v[4 * MODEL_MAX_LAYERS + 4];
	for (int k = 0; k < nb; k++) {
		data_batch_val(&t->data, k, nb, t->htok, t->htgt, t->spec.train.batch_size,
			       t->spec.model.seq_len);
		model_upload_ints(m, m->tokens, t->htok, (size_t)m->lay.N);
		model_upload_ints(m, m->targets, t->htgt, (size_t)m->lay.N);
		model_forward(m, 0);
		model_lnr_measure(m, v);
		for (int i = 0; i < n; i++)
			acc[i] += v[i];
	}
	for (int i = 0; i < n; i++) {
		r->site[i].sigma0 = (real)(acc[i] / nb);
		r->site[i].ema = r->site[i].sigma0;
	}
}

static int removed_count(const struct model_lnr *r)
{
	int n = 0;
	for (int i = 0; i < r->n_sites; i++)
		n += r->site[i].fake[LNR_PATH_MAIN] + r->site[i].fake[LNR_PATH_V];
	return n;
}

void lnr_step_begin(struct trainer *t, const struct train_sink *sink, long step)
{
	struct model *m = &t->model;
	struct model_lnr *r = m->lnr;
	if (!r)
		return;
	const struct model_layout *lay = &m->lay;
	const struct spec_lnremove *c = &t->spec.lnremove;
	if (r->site[lay->site_f].sigma0 <= 0)
		measure_start(t);
	double ev[LNR_NPHASE][MODEL_MAX_LAYERS];
	int any[LNR_NPHASE] = { 0 };
	for (int ph = 0; ph < LNR_NPHASE; ph++)
		for (int l = 0; l < phase_layers(lay, ph); l++) {
			int path, site = phase_site(lay, ph, l, &path);
			ev[ph][l] = 0;
			if (lnr_removal_step(c, lay->L, ph, l) != step)
				continue;
			struct lnr_site *ls = &r->site[site];
			ls->fake[path] = 1;
			ls->sigma[path] = c->std_source == SPEC_LNR_STD_DATA ? ls->sigma0 : ls->ema;
			ev[ph][l] = 1;
			any[ph] = 1;
		}
	if (!sink || !(any[0] | any[1] | any[2] | any[3]))
		return;
	if (sink->scalar)
		sink->scalar(sink->ctx, step, "lnremove.removed", removed_count(r));
	for (int ph = 0; ph < LNR_LN_F; ph++) {
		char name[48];
		snprintf(name, sizeof name, "lnremove.event.%s", lnr_phase_names[ph]);
		if (any[ph] && sink->depth)
			sink->depth(sink->ctx, step, name, ev[ph], lay->L);
	}
	if (any[LNR_LN_F] && sink->scalar)
		sink->scalar(sink->ctx, step, "lnremove.event.ln_f", 1);
}

void lnr_probe_depth(struct trainer *t, const struct train_sink *sink, long step)
{
	struct model *m = &t->model;
	const struct model_lnr *r = m->lnr;
	const struct model_layout *lay = &m->lay;
	if (!r || !sink)
		return;
	static const struct {
		const char *name;
		int slot, path, sigma;
	} rows[] = {
		{ "lnremove.norm1.ema", MODEL_SLOT_NORM1, 0, 0 },
		{ "lnremove.norm1.sigma_qk", MODEL_SLOT_NORM1, LNR_PATH_MAIN, 1 },
		{ "lnremove.norm1.sigma_v", MODEL_SLOT_NORM1, LNR_PATH_V, 1 },
		{ "lnremove.norm2.ema", MODEL_SLOT_NORM2, 0, 0 },
		{ "lnremove.norm2.sigma", MODEL_SLOT_NORM2, LNR_PATH_MAIN, 1 },
	};
	double v[MODEL_MAX_LAYERS];
	for (size_t k = 0; k < sizeof rows / sizeof rows[0] && sink->depth; k++) {
		for (int l = 0; l < lay->L; l++) {
			const struct lnr_site *ls = &r->site[lay->blocks[l].site[rows[k].slot]];
			v[l] = !rows[k].sigma ? ls->ema : ls->fake[rows[k].path] ?
				ls->sigma[rows[k].path] : NAN;
		}
		sink->depth(sink->ctx, step, rows[k].name, v, lay->L);
	}
	const struct lnr_site *f = &r->site[lay->site_f];
	if (sink->scalar) {
		sink->scalar(sink->ctx, step, "lnremove.norm_f.ema", f->ema);
		sink->scalar(sink->ctx, step, "lnremove.norm_f.sigma",
			     f->fake[LNR_PATH_MAIN] ? f->sigma[LNR_PATH_MAIN] : NAN);
	}
}

int lnr_log_loss(const struct trainer *t, long step)
{
	if (!t->model.lnr)
		return 0;
	const struct spec_lnremove *c = &t->spec.lnremove;
	return step >= c->start - 1 && step <= lnr_last_step(c, t->model.lay.L) + 5;
}

int lnr_val_step(const struct trainer *t, long step)
{
	if (!t->model.lnr)
		return 0;
	const struct spec_lnremove *c = &t->spec.lnremove;
	return step == c->start - 1 || step == lnr_last_step(c, t->model.lay.L);
}

void lnr_restore(struct trainer *t)
{
	struct model *m = &t->model;
	const struct model_layout *lay = &m->lay;
	if (!m->lnr)
		return;
	for (int ph = 0; ph < LNR_NPHASE; ph++)
		for (int l = 0; l < phase_layers(lay, ph); l++) {
			int path, site = phase_site(lay, ph, l, &path);
			m->lnr->site[site].fake[path] =
				lnr_removal_step(&t->spec.lnremove, lay->L, ph, l) <= t->step;
		}
}
