/*
 * corpus.c — see corpus.h.
 */
#include "corpus.h"

#include <stdio.h>

#include "rng.h"

int test_corpus_write(const char *path, int n_words)
{
	static const char *const words[] = { "the", "norm", "of", "layer", "and", "variance",
		"grows", "with", "depth", "in", "pre", "post", "tanh", "residual", "stream", "a" };
	struct rng r;
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	rng_seed(&r, 11, 5);
	for (int i = 0; i < n_words; i++) {
		fputs(words[rng_below(&r, 16)], f);
		fputc(rng_below(&r, 9) == 0 ? '\n' : ' ', f);
	}
	return fclose(f) == 0 ? 0 : -1;
}
