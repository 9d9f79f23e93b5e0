/*
 * spec_mem.c — what a spec's run will cost before it starts: the memory it needs, from the same
 * layout and activation tables the model allocates from (so the estimate cannot drift from the
 * allocation); the bytes its probes will store, from the layout's norm sites and tensors and the
 * probe schedule, following train.c's probe_depth/probe_samples row by row; and its
 * floating-point operations. The daemon's quotas refuse specs on these numbers at submit.
 * Pure; thread-safe.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lnremove.h"
#include "model.h"
#include "norm.h"
#include "probes.h"
#include "spec.h"

uint64_t spec_mem_estimate(const struct spec *s)
{
	struct model_layout lay;
	if (model_layout_build(&lay, s, s->train.batch_size) != 0)
		return UINT64_MAX;
	uint64_t reals = 4 * (uint64_t)lay.n_params;          /* params, grads, AdamW m and v */
	reals += model_act_reals(&lay, s->threads);            /* activations + backward scratch */
	reals += 2 * (uint64_t)lay.N * lay.C;                  /* probe scratch and host copy */
	if (s->lnremove.mode != SPEC_LNR_NONE)                 /* lnremove.h: x_v, caches, dx_v */
		reals += (uint64_t)lay.L * lay.N * (lay.C + (uint64_t)lay.nk->cache_per_token) +
			 (uint64_t)lay.N * lay.C;
	reals += (uint64_t)lay.n_buf;                          /* norm buffers (running stats) */
	uint64_t bytes = reals * sizeof(float) + 2 * (uint64_t)lay.N * sizeof(int);
	model_layout_free(&lay);
	/* the corpus is mapped whole: its pages are the run's as much as the activations are */
	return bytes + s->data.bytes;
}

/* Steps in 1..last where due(step, every) holds in train.c: multiples of every, 1 and last. */
static long spec_due_steps(long last, long every)
{
	if (last < 1 || every < 1)
		return 0;
	long n = last / every;
	if (every > 1)
		n++;                                /* step 1 is not a multiple */
	if (last % every != 0 && last != 1)
		n++;                                /* the last step is not one either */
	return n;
}

/* A norm slot every block has (train.c reports such slots over depth). */
static int slot_in_all_blocks(const struct model_layout *lay, int slot)
{
	for (int l = 0; l < lay->L; l++)
		if (lay->blocks[l].site[slot] < 0)
			return 0;
	return 1;
}

/*
 * What LN removal adds (train_lnremove.c): per removal step lnremove.removed and one event (a
 * depth row, or ln_f's scalar; all_at_once: three rows and the scalar at one step); per depth
 * step five depth rows and two scalars; the loss every step of the window first − 1 .. last + 5
 * that is not already a logging step; validation just before the first removal and at the last
 * when those are not validation steps anyway; lnremove.final_val_loss.
 */
static void lnr_store_estimate(const struct spec *s, const struct model_layout *lay,
			       struct spec_store_est *out)
{
	const struct spec_lnremove *c = &s->lnremove;
	uint64_t row = SPEC_STORE_ROW_BYTES, L = (uint64_t)lay->L, scalar = sizeof(double) + row;
	long last = s->train.steps, first = c->start, end = lnr_last_step(c, lay->L);
	int all = c->mode == SPEC_LNR_ALL_AT_ONCE;
	uint64_t ev_rows = all ? 3 : 3 * L, ev_scalars = all ? 2 : 3 * L + 2;
	out->depth_rows += 5;
	out->depth_bytes += ev_rows * (L * sizeof(double) + row) + ev_scalars * scalar +
			    (uint64_t)out->depth_steps * (5 * (L * sizeof(double) + row) + 2 * scalar);
	uint64_t extra = 1;   /* lnremove.final_val_loss */
	for (long st = first - 1 > 1 ? first - 1 : 1; st <= end + 5 && st <= last; st++)
		extra += !(st % s->probe.every == 0 || st == 1 || st == last);
	const long vs[2] = { first - 1, end };
	for (int k = 0; k < 2; k++)
		extra += vs[k] >= 1 && vs[k] % s->probe.val_every != 0 && vs[k] != last &&
			 (k == 0 || vs[0] != vs[1]);
	out->scalar_bytes += extra * scalar;
}

void spec_store_estimate(const struct spec *s, struct spec_store_est *out)
{
	struct model_layout lay;
	memset(out, 0, sizeof *out);
	out->total = UINT64_MAX;
	if (model_layout_build(&lay, s, s->train.batch_size) != 0)
		return;
	const struct norm_kind *k = lay.nk;
	long last = s->train.steps;
	uint64_t L = (uint64_t)lay.L, row = SPEC_STORE_ROW_BYTES;
	int images = lay.arch->data == MODEL_DATA_IMAGES;

	/* samples (train.c probe_samples): every site, embedding and final norm included */
	out->sample_sites = s->probe.samples > 0 ? lay.n_sites : 0;
	out->sample_steps = spec_due_steps(last, s->probe.samples_every);
	out->sample_bytes = (uint64_t)out->sample_steps * (uint64_t)out->sample_sites *
			    ((uint64_t)s->probe.samples * SPEC_SAMPLE_BYTES + row);

	/* depth profiles (train.c probe_depth): rows of L values, plus a few scalars */
	int saturated = k->saturated != NULL;
	int shift = norm_tensor_offset(k, "shift", lay.C) >= 0;
	int rows = PROBE_STAT_COUNT + 1;                          /* resid.* and angle */
	int scalars = 0;
	for (int slot = 0; slot < MODEL_SLOT_COUNT; slot++)
		if (slot_in_all_blocks(&lay, slot))
			rows += PROBE_STAT_COUNT + (saturated ? 3 + shift : 0);
	if (saturated)
		scalars += ((lay.site_f >= 0) + (lay.site_emb >= 0)) * (3 + shift);
	/* batch-statistic norms' probes: a row per slot, a scalar per outer site */
	for (int slot = 0; slot < MODEL_SLOT_COUNT; slot++)
		if (slot_in_all_blocks(&lay, slot))
			rows += k->n_probes;
	scalars += ((lay.site_f >= 0) + (lay.site_emb >= 0)) * k->n_probes;
	rows += 2;                                                /* grad.block, grad.resid */
	rows += lay.blocks[0].t_end - lay.blocks[0].t_first;     /* grad.<tensor> over depth */
	for (int ti = 0; ti < lay.n_tensors; ti++)
		scalars += lay.tensors[ti].block < 0;                 /* grad.<outer tensor> */
	out->depth_steps = spec_due_steps(last, s->probe.depth_every);
	out->depth_rows = rows;
	out->depth_bytes = (uint64_t)out->depth_steps *
			   ((uint64_t)rows * (L * sizeof(double) + row) +
			    (uint64_t)scalars * (sizeof(double) + row));

	/* scalars (train.c trainer_step): four every probe.every (six for images: train_acc and
	 * epochs), val_loss (and val_acc) every val_every and at the last step, and once, at step
	 * 1, unigram_entropy */
	long val_steps = last / s->probe.val_every + (last % s->probe.val_every != 0);
	/* batch-statistic norms also log the train-mode validation (val_loss_trainmode, and
	 * val_acc_trainmode for images) */
	int per_val = (images ? 2 : 1) * (k->batch ? 2 : 1);
	out->scalar_bytes = ((uint64_t)spec_due_steps(last, s->probe.every) * (images ? 6 : 4) +
			     (uint64_t)val_steps * per_val + 1) * (sizeof(double) + row);
	if (s->lnremove.mode != SPEC_LNR_NONE)
		lnr_store_estimate(s, &lay, out);
	out->total = out->sample_bytes + out->depth_bytes + out->scalar_bytes;
	model_layout_free(&lay);
}

double spec_flops_estimate(const struct spec *s)
{
	struct model_layout lay;
	if (model_layout_build(&lay, s, s->train.batch_size) != 0)
		return INFINITY;
	/* a training step is forward + backward (3x the forward); validation is forward only */
	double step = lay.arch->flops_per_row(&lay) * (double)lay.N;
	long last = s->train.steps;
	long val_steps = last / s->probe.val_every + (last % s->probe.val_every != 0);
	model_layout_free(&lay);
	return (double)last * step + (double)val_steps * s->probe.val_batches * step / 3.0;
}
