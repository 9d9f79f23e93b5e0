/*
 * test_arch — the model core must not change what gpt computes: the loss after 50 steps of every
 * norm type × placement pair (a test-sized model on a synthetic corpus, one thread) equals, bit for
 * bit, the value recorded before the restructure, on 1 and 2 threads (tests/unit/gpt_losses.h, written by
 * `NORMLAB_RECORD=1 build/tests/test_arch` on this engine at the commit that added it).
 * And what llama and vit are, against independent references: RoPE and SwiGLU by formula, the
 * tensor names and shapes of the issue, vit's attention seeing every token (a pixel of the last
 * patch moves the cls token in block 0), and a short vit run reporting its accuracies.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "blas.h"
#include "norm.h"
#include "spec.h"
#include "model.h"
#include "ops.h"
#include "train.h"

#include "gpt_losses.h"

static char corpus[256], tmpdir[64];

static void write_corpus(void)
{
	test_corpus_write(corpus, 40000);
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
	CHECKF(n == 2 * 5 * norm_table_len, "%d type × placement × threads runs, expected %d", n,
	       2 * 5 * norm_table_len);
}

static int parse(struct spec *s, const char *json)
{
	struct spec_errors e = { 0 };
	int rc = spec_parse(s, json, strlen(json), NULL, &e);
	if (rc)
		fprintf(stderr, "spec %s: %s %s\n", json, e.n ? e.e[0].pointer : "", e.n ? e.e[0].msg : "");
	return rc;
}

/* RoPE (rotate-half, θ = 10000) and SwiGLU against the formulas, in double. */
static void test_rope_swiglu(void)
{
	enum { B = 2, T = 5, C = 8, NH = 2, HS = 4, HALF = 2, F = 6 };
	struct spec s;
	struct model m;
	struct nl_err err = { 0 };
	struct rng r;
	real qkv[B * T * 3 * C], ref[B * T * 3 * C], tab[2 * T * HALF];
	CHECK(parse(&s, "{\"model\":{\"arch\":\"llama\",\"n_layer\":1,\"d_model\":8,\"n_head\":2,"
		    "\"seq_len\":5},\"train\":{\"batch_size\":2}}") == 0);
	CHECK(model_init(&m, &s, &err) == 0);
	model_download(&m, tab, m.rope, 2 * T * HALF);
	int tab_ok = 1;
	for (int t = 0; t < T; t++)
		for (int i = 0; i < HALF; i++) {
			double th = t * pow(10000.0, -2.0 * i / HS);
			tab_ok &= fabs(tab[t * HALF + i] - cos(th)) < 1e-6 &&
				  fabs(tab[T * HALF + t * HALF + i] - sin(th)) < 1e-6;
		}
	CHECKF(tab_ok, "llama's RoPE table is not cos/sin(t·10000^(-2i/hs))");
	rng_seed(&r, 1, 2);
	for (int i = 0; i < B * T * 3 * C; i++)
		qkv[i] = ref[i] = (real)rng_normal(&r);
	rope_forward(qkv, tab, B, T, C, NH, 0, 1);
	int rope_ok = 1;
	for (int n = 0; n < B * T; n++) {
		int t = n % T;
		for (int c = 0; c < 3 * C; c++) {
			int w = c / HS, i = c % HS;   /* w: q heads 0..NH-1, k heads NH..2NH-1, v after */
			double want = ref[n * 3 * C + c];
			if (w < 2 * NH) {
				int j = i % HALF;
				double th = t * pow(10000.0, -2.0 * j / HS);
				double a = ref[n * 3 * C + w * HS + j], b = ref[n * 3 * C + w * HS + j + HALF];
				want = i < HALF ? a * cos(th) - b * sin(th) : b * cos(th) + a * sin(th);
			}
			rope_ok &= fabs(qkv[n * 3 * C + c] - want) < 1e-5;
		}
	}
	CHECKF(rope_ok, "rope_forward differs from the rotate-half formula (v must stay as it is)");
	/* the backward is the transpose: <rope(x), y> = <x, rope_bwd(y)> */
	real y[B * T * 3 * C], x[B * T * 3 * C];
	for (int i = 0; i < B * T * 3 * C; i++) {
		y[i] = (real)rng_normal(&r);
		x[i] = ref[i];
	}
	real ry[B * T * 3 * C];
	memcpy(ry, y, sizeof y);
	rope_forward(x, tab, B, T, C, NH, 0, 1);
	rope_backward(ry, tab, B, T, C, NH, 0, 1);
	double l = 0, rgt = 0;
	for (int i = 0; i < B * T * 3 * C; i++) {
		l += (double)x[i] * y[i];
		rgt += (double)ref[i] * ry[i];
	}
	CHECKF(fabs(l - rgt) < 1e-4, "rope backward is not the transpose: %g vs %g", l, rgt);
	model_free(&m);

	real gu[B * 2 * F], o[B * F];
	for (int i = 0; i < B * 2 * F; i++)
		gu[i] = (real)(3 * rng_normal(&r));
	swiglu_forward(o, gu, B, F, 0, 1);
	int sw_ok = 1;
	for (int n = 0; n < B; n++)
		for (int i = 0; i < F; i++) {
			double g = gu[n * 2 * F + i], u = gu[n * 2 * F + F + i];
			double want = g / (1 + exp(-g)) * u;
			sw_ok &= fabs(o[n * F + i] - want) <= 1e-5 * (1 + fabs(want));
		}
	CHECKF(sw_ok, "swiglu_forward differs from silu(gate)·up");
}

static int has_tensor(const struct model_layout *lay, const char *name, int d0, int d1)
{
	int i = model_tensor_find(lay, name);
	if (i < 0) {
		fprintf(stderr, "missing tensor %s\n", name);
		return 0;
	}
	const struct model_tensor *t = &lay->tensors[i];
	int ok = t->shape[0] == d0 && t->shape[1] == d1;
	if (!ok)
		fprintf(stderr, "%s is [%d, %d], want [%d, %d]\n", name, t->shape[0], t->shape[1], d0, d1);
	return ok;
}

static void test_names(void)
{
	struct spec s;
	struct model_layout lay;
	CHECK(parse(&s, "{\"model\":{\"arch\":\"llama\",\"n_layer\":2,\"d_model\":128}}") == 0);
	CHECKF(strcmp(norm_table[s.norm.type]->name, "rmsnorm") == 0, "llama's default norm");
	CHECKF(s.model.d_ff == 384 && !s.model.bias && !s.model.tie_head,
	       "llama defaults: d_ff %d (want 384, the multiple of 64 ≥ 8·128/3), bias %d, tied %d",
	       s.model.d_ff, s.model.bias, s.model.tie_head);
	CHECK(model_layout_build(&lay, &s, 2) == 0);
	CHECK(has_tensor(&lay, "embed.tok.weight", 256, 128));
	CHECK(has_tensor(&lay, "blocks.1.attn.qkv.weight", 384, 128));
	CHECK(has_tensor(&lay, "blocks.1.attn.proj.weight", 128, 128));
	CHECK(has_tensor(&lay, "blocks.1.mlp.gate.weight", 384, 128));
	CHECK(has_tensor(&lay, "blocks.1.mlp.up.weight", 384, 128));
	CHECK(has_tensor(&lay, "blocks.1.mlp.proj.weight", 128, 384));
	CHECK(has_tensor(&lay, "blocks.0.norm1.weight", 128, 0));
	CHECK(has_tensor(&lay, "norm_f.weight", 128, 0));
	CHECK(has_tensor(&lay, "head.weight", 256, 128));
	CHECK(model_tensor_find(&lay, "embed.pos.weight") < 0);
	int biases = 0;
	for (int i = 0; i < lay.n_tensors; i++)
		biases += strstr(lay.tensors[i].name, "bias") != NULL;
	CHECKF(biases == 0, "llama has %d bias tensors", biases);
	model_layout_free(&lay);

	CHECK(parse(&s, "{\"model\":{\"arch\":\"vit\",\"n_layer\":2,\"d_model\":64}}") == 0);
	CHECK(strcmp(s.data.source, "fashion-mnist") == 0 && s.norm.alpha_attn == 0.5 &&
	      !s.norm.embed_scale);
	CHECK(model_layout_build(&lay, &s, 2) == 0);
	CHECK(lay.T == 50 && lay.n_patch == 49);
	CHECK(has_tensor(&lay, "embed.patch.weight", 64, 16));
	CHECK(has_tensor(&lay, "embed.patch.bias", 64, 0));
	CHECK(has_tensor(&lay, "embed.cls", 64, 0));
	CHECK(has_tensor(&lay, "embed.pos.weight", 50, 64));
	CHECK(has_tensor(&lay, "blocks.1.attn.qkv.weight", 192, 64));
	CHECK(has_tensor(&lay, "blocks.1.mlp.fc.weight", 256, 64));
	CHECK(has_tensor(&lay, "norm_f.bias", 64, 0));
	CHECK(has_tensor(&lay, "head.weight", 10, 64));
	CHECK(has_tensor(&lay, "head.bias", 10, 0));
	model_layout_free(&lay);
}

/* Bidirectional: a pixel in the last patch changes block 0's output at the cls token. */
static void test_vit_bidirectional(void)
{
	struct spec s;
	struct model m;
	struct nl_err err = { 0 };
	struct rng r;
	CHECK(parse(&s, "{\"model\":{\"arch\":\"vit\",\"n_layer\":1,\"d_model\":16,\"n_head\":2,"
		    "\"patch\":7},\"train\":{\"batch_size\":1}}") == 0);
	CHECK(model_init(&m, &s, &err) == 0);
	rng_seed(&r, 3, 4);
	model_init_params(&m, &s, &r);
	real img[784], cls0[16], cls1[16];
	int tgt[1] = { 3 };
	for (int i = 0; i < 784; i++)
		img[i] = (real)rng_normal(&r);
	model_upload(&m, m.images, img, 784);
	model_upload_ints(&m, m.targets, tgt, 1);
	model_forward(&m, 0);
	model_download(&m, cls0, m.resid + (size_t)m.lay.N * m.lay.C, 16);   /* x_1, token 0 */
	img[783] += 5;
	model_upload(&m, m.images, img, 784);
	model_forward(&m, 0);
	model_download(&m, cls1, m.resid + (size_t)m.lay.N * m.lay.C, 16);
	CHECKF(memcmp(cls0, cls1, sizeof cls0) != 0, "the cls token does not see the last patch");
	model_free(&m);
}

/* Causal: on llama (RoPE) a later token leaves the earlier positions' logits as they were. */
static void test_llama_causal(void)
{
	struct spec s;
	struct model m;
	struct nl_err err = { 0 };
	struct rng r;
	CHECK(parse(&s, "{\"model\":{\"arch\":\"llama\",\"n_layer\":2,\"d_model\":16,\"n_head\":2,"
		    "\"seq_len\":8},\"train\":{\"batch_size\":1}}") == 0);
	CHECK(model_init(&m, &s, &err) == 0);
	rng_seed(&r, 5, 6);
	model_init_params(&m, &s, &r);
	int tok[16];
	real a[8 * 256], b[8 * 256];
	for (int i = 0; i < 16; i++)
		tok[i] = (int)rng_below(&r, 256);
	model_upload_ints(&m, m.tokens, tok, 16);
	model_forward(&m, 0);
	model_download(&m, a, m.logits, 8 * 256);
	tok[7] = (tok[7] + 1) % 256;
	model_upload_ints(&m, m.tokens, tok, 16);
	model_forward(&m, 0);
	model_download(&m, b, m.logits, 8 * 256);
	CHECKF(memcmp(a, b, sizeof(real) * 7 * 256) == 0, "llama: the last token leaks backwards");
	CHECKF(memcmp(a + 7 * 256, b + 7 * 256, sizeof(real) * 256) != 0, "llama ignores its input");
	model_free(&m);
}

/* A short vit run: the image metrics arrive, under their names, in range. */
struct vit_rec {
	int acc_train, acc_val, epochs, resid_var, norm1;
	double last_val_acc;
};

static void vit_scalar(void *ctx, long step, const char *name, double v)
{
	struct vit_rec *r = ctx;
	(void)step;
	if (strcmp(name, "train_acc") == 0 && v >= 0 && v <= 1)
		r->acc_train++;
	if (strcmp(name, "val_acc") == 0 && v >= 0 && v <= 1) {
		r->acc_val++;
		r->last_val_acc = v;
	}
	if (strcmp(name, "epochs") == 0 && v > 0)
		r->epochs++;
}

static void vit_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct vit_rec *r = ctx;
	(void)step;
	(void)v;
	if (strcmp(name, "resid.var") == 0 && n == 2)
		r->resid_var++;
	if (strcmp(name, "norm1.in.kurt") == 0 && n == 2)
		r->norm1++;
}

static void test_vit_run(void)
{
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	struct vit_rec rec = { 0 };
	struct train_sink sink = { .ctx = &rec, .scalar = vit_scalar, .depth = vit_depth };
	CHECK(parse(&s, "{\"model\":{\"arch\":\"vit\",\"n_layer\":2,\"d_model\":32,\"n_head\":2,"
		    "\"patch\":7},\"train\":{\"steps\":40,\"batch_size\":32,\"lr\":3e-3},"
		    "\"probe\":{\"every\":10,\"depth_every\":20,\"val_every\":20,\"val_batches\":2}}") == 0);
	if (trainer_init(&t, &s, NULL, &err) != 0) {
		CHECKF(0, "vit trainer_init: %s", err.msg);
		return;
	}
	while (!trainer_done(&t))
		CHECK(trainer_step(&t, &sink, &err) == 0);
	CHECKF(rec.acc_train >= 4 && rec.acc_val == 2 && rec.epochs >= 4,
	       "vit metrics: train_acc %d, val_acc %d, epochs %d", rec.acc_train, rec.acc_val,
	       rec.epochs);
	CHECK(rec.resid_var >= 2 && rec.norm1 >= 2);
	/* 40 steps of 32 images: well above chance (10%) on the whole test set */
	CHECKF(rec.last_val_acc > 0.3, "test accuracy %.3f after 40 steps", rec.last_val_acc);
	CHECK(fabs(trainer_epochs(&t) - 40.0 * 32 / 60000) < 1e-12);
	trainer_free(&t);
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
	test_rope_swiglu();
	test_names();
	test_vit_bidirectional();
	test_llama_causal();
	test_vit_run();
	unlink(corpus);
	rmdir(tmpdir);
	return test_finish("arch");
}
