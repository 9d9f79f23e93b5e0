/*
 * spec_mem.c — how much memory a spec's run needs, from the same layout and activation tables the
 * model allocates from (so the estimate cannot drift from the allocation). Pure; thread-safe.
 */
#include <stdint.h>

#include "model.h"
#include "spec.h"

uint64_t spec_mem_estimate(const struct spec *s)
{
	struct model_layout lay;
	if (model_layout_build(&lay, s, s->train.batch_size) != 0)
		return UINT64_MAX;
	uint64_t reals = 4 * (uint64_t)lay.n_params;          /* params, grads, AdamW m and v */
	reals += model_act_reals(&lay, s->threads);            /* activations + backward scratch */
	reals += 2 * (uint64_t)lay.N * lay.C;                  /* probe scratch and host copy */
	uint64_t bytes = reals * sizeof(float) + 2 * (uint64_t)lay.N * sizeof(int);
	model_layout_free(&lay);
	return bytes;
}
