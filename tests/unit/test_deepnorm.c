/*
 * test_deepnorm — the deepnorm placement (NORMS.md §4.6; Wang et al. 2022, DeepNet) is what the
 * paper writes: every block is Post-LN with the residual scaled, x ← N(a·x + F(x)), a = (2N)^¼,
 * no final norm; the blocks' matrices are Xavier-normal with gain β = (8N)^−¼ (MLP, V, attention
 * output) and 1 (Q, K); and it trains (finite, falling loss) on gpt and on vit. The gradients are
 * f64_gradcheck's (every arch × norm type with deepnorm).
 */
#include <stdlib.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "blas.h"
#include "model.h"
#include "norm.h"
#include "spec.h"
#include "train.h"

static char corpus[256], tmpdir[64];

static int parse(struct spec *s, const char *json)
{
	struct spec_errors e = { 0 };
	int rc = spec_parse(s, json, strlen(json), NULL, &e);
	if (rc)
		fprintf(stderr, "spec %s: %s %s\n", json, e.n ? e.e[0].pointer : "", e.n ? e.e[0].msg : "");
	return rc;
}

/* std of p[i0..i1) (mean included, as a sample of N(0, σ²) should have ≈ 0). */
static double sd(const real *p, size_t i0, size_t i1)
{
	double s = 0, s2 = 0, n = (double)(i1 - i0);
	for (size_t i = i0; i < i1; i++) {
		s += p[i];
		s2 += (double)p[i] * p[i];
	}
	return sqrt(s2 / n - (s / n) * (s / n));
}

static void expect_sd(const struct model_layout *lay, const real *p, const char *name, size_t r0,
		      size_t r1, double want)
{
	int ti = model_tensor_find(lay, name);
	if (ti < 0) {
		CHECKF(0, "no tensor %s", name);
		return;
	}
	const struct model_tensor *t = &lay->tensors[ti];
	size_t cols = (size_t)t->shape[1];
	double got = sd(p, t->off + r0 * cols, t->off + r1 * cols);
	CHECKF(fabs(got / want - 1) < 0.04, "%s rows [%zu,%zu): std %.5f, DeepNet wants %.5f", name,
	       r0, r1, got, want);
}

/* Layout, a and β, the init's per-matrix std, and the block's forward. */
static void test_layout_init(const char *arch)
{
	struct spec s;
	struct model m;
	struct nl_err err = { 0 };
	struct rng r;
	char json[256];
	snprintf(json, sizeof json, "{\"model\":{\"arch\":\"%s\",\"n_layer\":6,\"d_model\":64,"
		 "\"n_head\":4,\"d_ff\":256,\"seq_len\":16,\"patch\":7},\"norm\":{\"placement\":"
		 "\"deepnorm\"},\"train\":{\"batch_size\":2}}", arch);
	if (parse(&s, json) != 0 || model_init(&m, &s, &err) != 0) {
		CHECKF(0, "%s: %s", arch, err.msg);
		return;
	}
	const struct model_layout *lay = &m.lay;
	const int L = 6, C = 64, F = 256;
	double a = pow(2.0 * L, 0.25), beta = pow(8.0 * L, -0.25);
	CHECK(s.model.scaled_init == 0);
	CHECK(lay->site_f == -1);
	CHECKF(fabs(lay->deep_beta - beta) < 1e-6, "β %.6f, want (8·6)^-1/4 = %.6f",
	       (double)lay->deep_beta, beta);
	for (int l = 0; l < L; l++)
		CHECKF(lay->blocks[l].kind == MODEL_BLOCK_POST &&
		       fabs(lay->blocks[l].res_scale - a) < 1e-6,
		       "block %d: a %.6f, want (2·6)^1/4 = %.6f", l, (double)lay->blocks[l].res_scale, a);
	rng_seed(&r, 9, 1);
	model_init_params(&m, &s, &r);
	real *p = malloc(sizeof(real) * lay->n_params);
	model_download(&m, p, m.params, lay->n_params);
	int llama = strcmp(arch, "llama") == 0;
	for (int l = 0; l < L; l += 5) {
		char n[64];
		snprintf(n, sizeof n, "blocks.%d.attn.qkv.weight", l);
		expect_sd(lay, p, n, 0, 2 * C, sqrt(2.0 / (C + C)));          /* q, k: gain 1 */
		expect_sd(lay, p, n, 2 * C, 3 * C, beta * sqrt(2.0 / (C + C)));  /* v: gain β */
		snprintf(n, sizeof n, "blocks.%d.attn.proj.weight", l);
		expect_sd(lay, p, n, 0, C, beta * sqrt(2.0 / (C + C)));
		snprintf(n, sizeof n, "blocks.%d.mlp.%s.weight", l, llama ? "gate" : "fc");
		expect_sd(lay, p, n, 0, F, beta * sqrt(2.0 / (C + F)));
		snprintf(n, sizeof n, "blocks.%d.mlp.proj.weight", l);
		expect_sd(lay, p, n, 0, C, beta * sqrt(2.0 / (C + F)));
	}
	/* outside the blocks the spec's init stays: N(0, 0.02) */
	if (!llama && strcmp(arch, "vit") != 0)
		expect_sd(lay, p, "embed.pos.weight", 0, 16, 0.02);

	/* the forward: h = a·x + F(x) before each block's norm */
	size_t N = (size_t)lay->N, S = (size_t)lay->S, n = N * S;
	if (lay->arch->data == MODEL_DATA_IMAGES) {
		real *img = malloc(sizeof(real) * (size_t)lay->B * 28 * 28);
		int tg[2] = { 1, 3 };
		for (int i = 0; i < lay->B * 28 * 28; i++)
			img[i] = (real)rng_normal(&r);
		model_upload(&m, m.images, img, (size_t)lay->B * 28 * 28);
		model_upload_ints(&m, m.targets, tg, 2);
		free(img);
	} else {
		int *tok = malloc(sizeof(int) * 2 * N);
		for (size_t i = 0; i < 2 * N; i++)
			tok[i] = (int)rng_below(&r, 256);
		model_upload_ints(&m, m.tokens, tok, 2 * N);
		free(tok);
	}
	double loss = model_forward(&m, 0);
	CHECK(isfinite(loss));
	real *x = malloc(sizeof(real) * 3 * n), *f = x + n, *h = x + 2 * n;
	double worst = 0;
	for (int l = 0; l < L; l++)
		for (int b = 0; b < 2; b++) {
			const struct model_sub *sb = &m.ba[l].sub[b];
			model_download(&m, x, sb->x, n);
			model_download(&m, f, sb->f, n);
			model_download(&m, h, sb->h, n);
			for (size_t i = 0; i < n; i++) {
				double want = a * x[i] + f[i];
				double e = fabs(h[i] - want) / (1 + fabs(want));
				worst = e > worst ? e : worst;
			}
		}
	CHECKF(worst < 1e-5, "%s: h = a·x + F(x) off by %.3g", arch, worst);
	free(x);
	free(p);
	model_free(&m);
}

/* Trains: every loss finite, the last ten steps' mean well below the first ten's. */
static void test_trains(const char *json, const char *label, double min_drop)
{
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	if (parse(&s, json) != 0) {
		CHECKF(0, "%s: spec", label);
		return;
	}
	if (trainer_init(&t, &s, corpus, &err) != 0) {
		CHECKF(0, "%s: %s", label, err.msg);
		return;
	}
	double first = 0, last = 0;
	long steps = s.train.steps;
	int finite = 1;
	while (!trainer_done(&t)) {
		if (trainer_step(&t, NULL, &err) != 0) {
			finite = 0;
			break;
		}
		finite &= isfinite(t.loss);
		if (t.step <= 10)
			first += t.loss / 10;
		if (t.step > steps - 10)
			last += t.loss / 10;
	}
	CHECKF(finite && t.step == steps, "%s: diverged at step %ld (%s)", label, t.step, err.msg);
	CHECKF(last < first - min_drop, "%s: loss %.4f over the first 10 steps, %.4f over the last 10",
	       label, first, last);
	printf("figure: %s: mean loss, steps 1-10 %.4f, steps %ld-%ld %.4f\n", label, first,
	       steps - 9, steps, last);
	trainer_free(&t);
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_deep_XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmpdir);
	test_corpus_write(corpus, 40000);
	test_layout_init("gpt");
	test_layout_init("llama");
	test_layout_init("vit");
	/* 8 blocks at lr 3e-3 with a short warmup */
	test_trains("{\"model\":{\"n_layer\":8,\"d_model\":32,\"n_head\":2,\"seq_len\":32},"
		    "\"norm\":{\"placement\":\"deepnorm\"},\"train\":{\"steps\":80,\"batch_size\":8,"
		    "\"lr\":3e-3,\"warmup\":10},\"probe\":{\"val_every\":1000}}",
		    "gpt/layernorm/deepnorm L=8", 0.5);
	test_trains("{\"model\":{\"n_layer\":8,\"d_model\":32,\"n_head\":2,\"seq_len\":32},"
		    "\"norm\":{\"type\":\"rmsnorm\",\"placement\":\"deepnorm\"},\"train\":{\"steps\":80,"
		    "\"batch_size\":8,\"lr\":3e-3,\"warmup\":10},\"probe\":{\"val_every\":1000}}",
		    "gpt/rmsnorm/deepnorm L=8", 0.5);
	test_trains("{\"model\":{\"arch\":\"vit\",\"n_layer\":6,\"d_model\":32,\"n_head\":2,"
		    "\"patch\":7},\"norm\":{\"placement\":\"deepnorm\"},\"train\":{\"steps\":60,"
		    "\"batch_size\":32,\"lr\":3e-3,\"warmup\":10},\"probe\":{\"val_every\":1000}}",
		    "vit/layernorm/deepnorm L=6", 0.2);
	unlink(corpus);
	rmdir(tmpdir);
	return test_finish("deepnorm");
}
