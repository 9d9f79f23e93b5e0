/*
 * spec_mem.c — how much memory a spec's run needs, from the same layout and activation tables the
 * model allocates from (so the estimate cannot drift from the allocation). Pure; thread-safe.
 */
#include <stdint.h>

#include "model_gpt.h"
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
	/* the corpus is mapped whole: its pages are the run's as much as the activations are */
	return bytes + s->data.bytes;
}
