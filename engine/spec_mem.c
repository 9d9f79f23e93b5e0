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

#include "model_gpt.h"
#include "norm.h"
#include "probes.h"
#include "spec.h"

uint64_t spec_mem_estimate(const struct spec *s)
{
	struct gpt_layout lay;
	if (gpt_layout_build(&lay, s, s->train.batch_size) != 0)
		return UINT64_MAX;
	uint64_t reals = 4 * (uint64_t)lay.n_params;          /* params, grads, AdamW m and v */
	reals += gpt_act_reals(&lay, s->threads);              /* activations + backward scratch */
	reals += (uint64_t)lay.B * lay.T * lay.C;              /* probe scratch (median selection) */
	uint64_t bytes = reals * sizeof(float) + 2 * (uint64_t)lay.B * lay.T * sizeof(int);
	gpt_layout_free(&lay);
	return bytes;
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

void spec_store_estimate(const struct spec *s, struct spec_store_est *out)
{
	struct gpt_layout lay;
	memset(out, 0, sizeof *out);
	out->total = UINT64_MAX;
	if (gpt_layout_build(&lay, s, s->train.batch_size) != 0)
		return;
	const struct norm_kind *k = lay.nk;
	long last = s->train.steps;
	uint64_t L = (uint64_t)lay.L, row = SPEC_STORE_ROW_BYTES;

	/* samples (train.c probe_samples): every present site, embedding and final norm included */
	int sites = lay.norm_emb.present + lay.norm_f.present;
	for (int l = 0; l < lay.L; l++)
		for (int site = 0; site < GPT_SITE_COUNT; site++)
			sites += lay.blocks[l].norm[site].present;
	out->sample_sites = s->probe.samples > 0 ? sites : 0;
	out->sample_steps = spec_due_steps(last, s->probe.samples_every);
	out->sample_bytes = (uint64_t)out->sample_steps * (uint64_t)out->sample_sites *
			    ((uint64_t)s->probe.samples * SPEC_SAMPLE_BYTES + row);

	/* depth profiles (train.c probe_depth): rows of L values, plus a few scalars */
	int saturated = k->saturated != NULL;
	int shift = norm_tensor_offset(k, "shift", lay.C) >= 0;
	int rows = PROBE_STAT_COUNT + 1;                          /* resid.* and angle */
	int scalars = 0;
	for (int site = 0; site < GPT_SITE_COUNT; site++) {
		int all = 1;
		for (int l = 0; l < lay.L; l++)
			all &= lay.blocks[l].norm[site].present;
		if (all)
			rows += PROBE_STAT_COUNT + (saturated ? 3 + shift : 0);
	}
	if (saturated)
		scalars += (lay.norm_f.present + lay.norm_emb.present) * (3 + shift);
	rows += 2;                                                /* grad.block, grad.resid */
	rows += lay.blocks[0].t_end - lay.blocks[0].t_first;     /* grad.<tensor> over depth */
	for (int ti = 0; ti < lay.n_tensors; ti++)
		scalars += lay.tensors[ti].block < 0;                 /* grad.<outer tensor> */
	out->depth_steps = spec_due_steps(last, s->probe.depth_every);
	out->depth_rows = rows;
	out->depth_bytes = (uint64_t)out->depth_steps *
			   ((uint64_t)rows * (L * sizeof(double) + row) +
			    (uint64_t)scalars * (sizeof(double) + row));

	/* scalars (train.c trainer_step): four every probe.every, val_loss every val_every + last */
	long val_steps = last / s->probe.val_every + (last % s->probe.val_every != 0);
	out->scalar_bytes = ((uint64_t)spec_due_steps(last, s->probe.every) * 4 + (uint64_t)val_steps) *
			    (sizeof(double) + row);
	out->total = out->sample_bytes + out->depth_bytes + out->scalar_bytes;
	gpt_layout_free(&lay);
}

double spec_flops_estimate(const struct spec *s)
{
	struct gpt_layout lay;
	if (gpt_layout_build(&lay, s, s->train.batch_size) != 0)
		return INFINITY;
	double tokens = (double)lay.B * lay.T;
	double fwd = 2.0 * (double)lay.n_params * tokens +
		     4.0 * lay.L * (double)lay.B * (double)lay.T * lay.T * lay.C;
	long last = s->train.steps;
	long val_steps = last / s->probe.val_every + (last % s->probe.val_every != 0);
	gpt_layout_free(&lay);
	return (double)last * 3.0 * fwd + (double)val_steps * s->probe.val_batches * fwd;
}
