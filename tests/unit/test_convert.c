/*
 * test_convert — `normlab convert` on trained checkpoints (NORMS.md §7): a Pre-LN model trained
 * a few steps at a high learning rate (so γ ≠ 1 and β ≠ 0 for real) goes Pre-LN → Pre-RMSNorm →
 * Pre-CRMSNorm, and directly Pre-LN → Pre-CRMSNorm; each model, loaded from the files the
 * conversion wrote into a fresh model of the written spec, gives the Pre-LN logits on the same
 * batch within 1e-5 relative (gpt, layernorm-trained llama with lns, vit with mean pooling). A
 * naive swap (the same parameters under rmsnorm, no centring) is far off, so the comparison can
 * fail. Bad sources are refused naming the field. The double build's f64_convert checks the
 * arithmetic to 1e-12.
 */
#include <stdlib.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "blas.h"
#include "checkpoint.h"
#include "convert.h"
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

static int read_spec(const char *dir, struct spec *s)
{
	char path[512], buf[8192];
	snprintf(path, sizeof path, "%s/spec.json", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return parse(s, buf);
}

/* The logits of the model of spec s with the parameters in ckpt on one fixed batch. */
static real *logits_of(const struct spec *s, const char *ckpt, size_t *n, double *loss)
{
	struct model m;
	struct nl_err err = { 0 };
	struct rng r;
	if (model_init(&m, s, &err) != 0) {
		CHECKF(0, "model_init: %s", err.msg);
		return NULL;
	}
	if (ckpt_load_params(&m, ckpt, &err) != 0) {
		CHECKF(0, "%s", err.msg);
		model_free(&m);
		return NULL;
	}
	const struct model_layout *lay = &m.lay;
	size_t N = (size_t)lay->N, rows = (size_t)model_loss_rows(lay);
	rng_seed(&r, 77, 2);
	if (lay->arch->data == MODEL_DATA_IMAGES) {
		real *img = malloc(sizeof(real) * (size_t)lay->B * 28 * 28);
		int *tg = malloc(sizeof(int) * (size_t)lay->B);
		for (int i = 0; i < lay->B * 28 * 28; i++)
			img[i] = (real)rng_normal(&r);
		for (int b = 0; b < lay->B; b++)
			tg[b] = (int)rng_below(&r, 10);
		model_upload(&m, m.images, img, (size_t)lay->B * 28 * 28);
		model_upload_ints(&m, m.targets, tg, (size_t)lay->B);
		free(img);
		free(tg);
	} else {
		int *tok = malloc(sizeof(int) * 2 * N);
		for (size_t i = 0; i < 2 * N; i++)
			tok[i] = (int)rng_below(&r, 256);
		model_upload_ints(&m, m.tokens, tok, 2 * N);
		free(tok);
	}
	*loss = model_forward(&m, 0);
	*n = rows * (size_t)lay->V;
	real *out = malloc(sizeof(real) * *n);
	model_download(&m, out, m.logits, *n);
	model_free(&m);
	return out;
}

static double rel_diff(const real *a, const real *b, size_t n)
{
	double d = 0, mx = 0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		mx = fmax(mx, fabs((double)a[i]));
	}
	return d / mx;
}

/* ‖γ − 1‖∞ and ‖β‖∞ over the norms of the trained model. */
static void affine_moved(struct trainer *t, double *dg, double *db)
{
	const struct model_layout *lay = &t->model.lay;
	*dg = *db = 0;
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct model_tensor *x = &lay->tensors[i];
		if (x->role != MODEL_ROLE_NORM)
			continue;
		int beta = strstr(x->name, ".bias") != NULL;
		for (size_t j = 0; j < x->len; j++) {
			double v = model_param_get(&t->model, x->off + j);
			if (beta)
				*db = fmax(*db, fabs(v));
			else
				*dg = fmax(*dg, fabs(v - 1));
		}
	}
}

static void chain(const char *label, const char *json)
{
	struct spec s, sr, sc, sd;
	struct trainer t;
	struct nl_err err = { 0 };
	char d0[128], d1[128], d2[128], d3[128], c0[160], c1[160], c2[160], c3[160];
	snprintf(d0, sizeof d0, "%s/%s-ln", tmpdir, label);
	snprintf(d1, sizeof d1, "%s/%s-rms", tmpdir, label);
	snprintf(d2, sizeof d2, "%s/%s-crms", tmpdir, label);
	snprintf(d3, sizeof d3, "%s/%s-crms-direct", tmpdir, label);
	snprintf(c0, sizeof c0, "%s/checkpoint.safetensors", d0);
	snprintf(c1, sizeof c1, "%s/checkpoint.safetensors", d1);
	snprintf(c2, sizeof c2, "%s/checkpoint.safetensors", d2);
	snprintf(c3, sizeof c3, "%s/checkpoint.safetensors", d3);
	if (parse(&s, json) != 0)
		return;
	CHECK(nl_mkdir_p(d0) == 0 && nl_mkdir_p(d1) == 0 && nl_mkdir_p(d2) == 0 &&
	      nl_mkdir_p(d3) == 0);
	if (trainer_init(&t, &s, corpus, &err) != 0) {
		CHECKF(0, "%s: %s", label, err.msg);
		return;
	}
	while (!trainer_done(&t))
		CHECK(trainer_step(&t, NULL, &err) == 0);
	double dg, db;
	affine_moved(&t, &dg, &db);
	CHECKF(dg > 0.02 && db > 0.02, "%s: training left γ, β near their init (%.3g, %.3g)",
	       label, dg, db);
	CHECK(ckpt_save(&t, c0, &err) == 0);
	trainer_free(&t);

	struct convert_report rep;
	double rel = 1;
	CHECKF(convert_checkpoint(c0, "rmsnorm", d1, &rep, &rel, &err) == 0, "%s: %s", label, err.msg);
	CHECKF(rel < 1e-5, "%s: convert's own check %.3g", label, rel);
	CHECKF(convert_checkpoint(c1, "crmsnorm", d2, &rep, &rel, &err) == 0, "%s: %s", label,
	       err.msg);
	CHECKF(rep.max_mean < 1e-5, "%s: the converted rmsnorm stream has mean %.3g of its rms",
	       label, rep.max_mean);
	CHECKF(convert_checkpoint(c0, "crmsnorm", d3, &rep, &rel, &err) == 0, "%s: %s", label,
	       err.msg);
	if (read_spec(d1, &sr) || read_spec(d2, &sc) || read_spec(d3, &sd)) {
		CHECKF(0, "%s: a written spec.json does not parse", label);
		return;
	}
	CHECK(sr.norm.type == norm_find("rmsnorm") && sc.norm.type == norm_find("crmsnorm") &&
	      sd.norm.type == norm_find("crmsnorm") && sr.norm.eps == s.norm.eps &&
	      sc.norm.placement == s.norm.placement);
	size_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;
	double l0, l1, l2, l3;
	real *a = logits_of(&s, c0, &n0, &l0), *b = logits_of(&sr, c1, &n1, &l1);
	real *c = logits_of(&sc, c2, &n2, &l2), *d = logits_of(&sd, c3, &n3, &l3);
	if (a && b && c && d && n0 == n1 && n0 == n2 && n0 == n3) {
		double r1 = rel_diff(a, b, n0), r2 = rel_diff(a, c, n0), r3 = rel_diff(a, d, n0);
		CHECKF(r1 <= 1e-5 && r2 <= 1e-5 && r3 <= 1e-5, "%s: logits off Pre-LN's by %.3g "
		       "(rms), %.3g (crms via rms), %.3g (crms)", label, r1, r2, r3);
		CHECKF(fabs(l1 - l0) <= 1e-5 * l0 && fabs(l2 - l0) <= 1e-5 * l0,
		       "%s: losses %.9g %.9g %.9g", label, l0, l1, l2);
		printf("figure: %s: Pre-LN loss %.6f; logits relative difference: Pre-RMSNorm %.2e, "
		       "Pre-CRMSNorm (via RMS) %.2e, Pre-CRMSNorm (direct) %.2e\n", label, l0, r1, r2, r3);
	} else {
		CHECKF(0, "%s: logits missing or of different sizes", label);
	}
	/* the control: the same parameters read as a Pre-RMSNorm model without the conversion */
	struct spec naive = s;
	naive.norm.type = norm_find("rmsnorm");
	{
		struct model_layout lf, ln;
		struct model src;
		CHECK(model_layout_build(&lf, &s, 1) == 0 && model_layout_build(&ln, &naive, 1) == 0);
		real *pf = calloc(lf.n_params, sizeof(real)), *pn = calloc(ln.n_params, sizeof(real));
		CHECK(model_init(&src, &s, &err) == 0 && ckpt_load_params(&src, c0, &err) == 0);
		model_download(&src, pf, src.params, lf.n_params);
		model_free(&src);
		for (int i = 0; i < ln.n_tensors; i++) {   /* every tensor but the norms' β */
			int j = model_tensor_find(&lf, ln.tensors[i].name);
			if (j >= 0)
				memcpy(pn + ln.tensors[i].off, pf + lf.tensors[j].off,
				       sizeof(real) * ln.tensors[i].len);
		}
		double rn = 0;
		CHECK(convert_compare(&s, pf, &naive, pn, 77, &rn, NULL, NULL, &err) == 0);
		CHECKF(rn > 1e-3, "%s: the naive swap is only %.3g off: the comparison cannot tell",
		       label, rn);
		free(pf);
		free(pn);
		model_layout_free(&lf);
		model_layout_free(&ln);
	}
	free(a);
	free(b);
	free(c);
	free(d);
}

/* What cannot be converted is refused, naming the field. */
static void refusals(void)
{
	struct spec s, to;
	struct nl_err err = { 0 };
	CHECK(parse(&s, "{\"norm\":{\"placement\":\"post\"}}") == 0);
	CHECK(convert_spec(&to, &s, "rmsnorm", &err) == NL_EINVAL &&
	      strstr(err.msg, "/norm/placement") && strstr(err.msg, "post"));
	CHECK(parse(&s, "{\"norm\":{\"type\":\"dyt\"}}") == 0);
	CHECK(convert_spec(&to, &s, "crmsnorm", &err) == NL_EINVAL && strstr(err.msg, "/norm/type"));
	CHECK(parse(&s, "{\"norm\":{\"type\":\"rmsnorm\"}}") == 0);
	CHECK(convert_spec(&to, &s, "rmsnorm", &err) == NL_EINVAL && strstr(err.msg, "/norm/type"));
	CHECK(parse(&s, "{}") == 0);
	CHECK(convert_spec(&to, &s, "layernorm", &err) == NL_EINVAL && strstr(err.msg, "targets"));
	/* an rmsnorm model trained as such has no zero-mean stream */
	CHECK(parse(&s, "{\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":2,\"seq_len\":8},"
		    "\"norm\":{\"type\":\"rmsnorm\"}}") == 0);
	struct model_layout lf, lt;
	struct rng r;
	CHECK(convert_spec(&to, &s, "crmsnorm", &err) == 0);
	CHECK(model_layout_build(&lf, &s, 1) == 0 && model_layout_build(&lt, &to, 1) == 0);
	real *src = calloc(lf.n_params, sizeof(real)), *dst = calloc(lt.n_params, sizeof(real));
	rng_seed(&r, 1, 1);
	for (size_t i = 0; i < lf.n_params; i++)
		src[i] = (real)(0.1 * rng_normal(&r));
	CHECK(convert_params(&s, &lf, src, &lt, dst, NULL, &err) == NL_EINVAL &&
	      strstr(err.msg, "not zero-mean"));
	free(src);
	free(dst);
	model_layout_free(&lf);
	model_layout_free(&lt);
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_convert_XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmpdir);
	test_corpus_write(corpus, 40000);
	refusals();
	chain("gpt", "{\"model\":{\"n_layer\":3,\"d_model\":32,\"n_head\":2,\"seq_len\":32},"
	      "\"train\":{\"steps\":40,\"batch_size\":8,\"lr\":1e-2,\"warmup\":5},"
	      "\"probe\":{\"val_every\":1000}}");
	chain("llama-ln-lns", "{\"model\":{\"arch\":\"llama\",\"n_layer\":3,\"d_model\":32,"
	      "\"n_head\":2,\"seq_len\":32},\"norm\":{\"type\":\"layernorm\",\"placement\":\"lns\"},"
	      "\"train\":{\"steps\":40,\"batch_size\":8,\"lr\":1e-2,\"warmup\":5},"
	      "\"probe\":{\"val_every\":1000}}");
	chain("vit-mean", "{\"model\":{\"arch\":\"vit\",\"n_layer\":3,\"d_model\":32,\"n_head\":2,"
	      "\"patch\":7,\"pool\":\"mean\"},\"train\":{\"steps\":30,\"batch_size\":16,"
	      "\"lr\":1e-2,\"warmup\":5},\"probe\":{\"val_every\":1000}}");
	if (!test_fail_count) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
		CHECK(system(cmd) == 0);
	}
	return test_finish("convert");
}
