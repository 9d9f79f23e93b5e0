/*
 * test_arch — the model core must not change what gpt computes: the loss after 50 steps of every
 * norm type × placement pair (a test-sized model on a synthetic corpus, one thread) equals, bit for
 * bit, the value recorded before the restructure, on 1 and 2 threads (tests/unit/gpt_losses.h, written by
 * `NORMLAB_RECORD=1 build/tests/test_arch` on this engine at the commit that added it).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "../test.h"
#include "blas.h"
#include "norm.h"
#include "spec.h"
#include "train.h"

#include "gpt_losses.h"

static char corpus[256], tmpdir[64];

static void write_corpus(void)
{
	static const char *const words[] = { "the", "norm", "of", "layer", "and", "variance",
		"grows", "with", "depth", "in", "pre", "post", "tanh", "residual", "stream", "a" };
	struct rng r;
	FILE *f = fopen(corpus, "w");
	rng_seed(&r, 11, 5);
	for (int i = 0; i < 40000; i++) {
		fputs(words[rng_below(&r, 16)], f);
		fputc(rng_below(&r, 9) == 0 ? '\n' : ' ', f);
	}
	fclose(f);
}

/* The spec the fixture was recorded with: L=4 (so mix has one post block), d=32, 50 steps. */
static void fixture_spec(struct spec *s, int type, int placement, int threads)
{
	spec_defaults(s);
	s->model.n_layer = 4;
	s->model.d_model = 32;
	s->model.n_head = 2;
	s->model.d_ff = 64;
	s->model.seq_len = 32;
	s->train.batch_size = 4;
	s->train.steps = 50;
	s->train.warmup = 5;
	s->train.lr = 3e-3;
	s->norm.type = type;
	s->norm.placement = placement;
	s->norm.eps = norm_table[type]->default_eps;
	s->norm.embed_scale = norm_table[type]->wants_embed_scale;
	s->probe.every = s->probe.depth_every = s->probe.samples_every = 1000;
	s->probe.val_every = 1000;
	s->seed = 3;
	s->threads = threads;
}

static void test_gpt_losses(void)
{
	int record = getenv("NORMLAB_RECORD") != NULL;
	int n = 0;
	for (int nth = 1; nth <= 2; nth++)
	for (int type = 0; type < norm_table_len; type++)
		for (int place = SPEC_PLACE_PRE; place <= SPEC_PLACE_LNS; place++) {
			struct spec s;
			struct trainer t;
			struct nl_err err = { 0 };
			fixture_spec(&s, type, place, nth);
			if (trainer_init(&t, &s, corpus, &err) != 0) {
				CHECKF(0, "%s/%s: %s", norm_table[type]->name,
				       spec_placement_name(place), err.msg);
				continue;
			}
			while (!trainer_done(&t))
				if (trainer_step(&t, NULL, &err))
					break;
			uint64_t bits;
			memcpy(&bits, &t.loss, sizeof bits);
			if (record) {
				printf("\t{ %d, \"%s\", \"%s\", 0x%016" PRIx64 "ULL },  /* %.9g */\n",
				       nth, norm_table[type]->name, spec_placement_name(place), bits,
				       t.loss);
			} else {
				int found = 0;
				for (size_t i = 0; i < sizeof gpt_losses / sizeof gpt_losses[0]; i++) {
					if (gpt_losses[i].threads != nth ||
					    strcmp(gpt_losses[i].norm, norm_table[type]->name) != 0 ||
					    strcmp(gpt_losses[i].placement, spec_placement_name(place)) != 0)
						continue;
					double want;
					memcpy(&want, &gpt_losses[i].bits, sizeof want);
					found = 1;
					CHECKF(gpt_losses[i].bits == bits,
					       "gpt %s/%s, %d threads: loss after 50 steps %.9g (0x%016"
					       PRIx64 "), recorded %.9g (0x%016" PRIx64 ")",
					       norm_table[type]->name,
					       spec_placement_name(place), nth, t.loss, bits, want,
					       gpt_losses[i].bits);
				}
				CHECKF(found, "no recorded loss for %s/%s", norm_table[type]->name,
				       spec_placement_name(place));
			}
			n++;
			trainer_free(&t);
		}
	CHECKF(n == 50, "%d type × placement × threads runs, expected 50", n);
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_arch_XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmpdir);
	write_corpus();
	test_gpt_losses();
	unlink(corpus);
	rmdir(tmpdir);
	return test_finish("arch");
}
