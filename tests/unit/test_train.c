/*
 * test_train — what a researcher relies on between runs: the same spec and seed give the same
 * loss bits (1 and 2 threads); a run checkpointed and resumed ends with exactly the bits of an
 * uninterrupted run; a non-finite loss stops the run as diverged at that step with the
 * parameters untouched; the probes report one value per block under the documented names, and
 * the norm samples really are the norm's input and pre-affine output. The batch-statistic norms
 * (batchnorm, powernorm, un) resume bit-identically past their warmups, buffers included, and
 * train 200 steps on gpt and vit with a finite, falling loss, an eval-mode val_loss beside the
 * train-mode one, and their probes. Data: a small synthetic corpus the test writes itself; vit
 * reads Debian's Fashion-MNIST.
 */
#include <stdlib.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "blas.h"
#include "checkpoint.h"
#include "norm.h"
#include "spec.h"
#include "train.h"

#define MAX_STEPS 64
/* losses after 200 steps of test_recorded_losses' spec, before the speed work */
#define RECORDED_LN 1.01029975
#define RECORDED_RMS 1.03524685
#define RECORDED_DYT 2.75437897
#define RECORDED_DERF 2.6396309
#define MAX_NAMES 256

static char corpus[256], ckpt_path[256], tmpdir[64];

static void write_corpus(void)
{
	test_corpus_write(corpus, 40000);
}

struct record {
	double loss[MAX_STEPS + 1];
	int n_loss;
	char names[MAX_NAMES][64];
	int depth_len[MAX_NAMES];
	int n_names;
	int n_samples_calls;
	int samples_ok;
	const struct trainer *t;
};

static void rec_scalar(void *ctx, long step, const char *name, double v)
{
	struct record *r = ctx;
	if (strcmp(name, "loss") == 0 && step <= MAX_STEPS) {
		r->loss[step] = v;
		r->n_loss++;
	}
}

static void rec_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct record *r = ctx;
	(void)step;
	(void)v;
	for (int i = 0; i < r->n_names; i++)
		if (strcmp(r->names[i], name) == 0)
			return;
	if (r->n_names < MAX_NAMES) {
		snprintf(r->names[r->n_names], 64, "%s", name);
		r->depth_len[r->n_names++] = n;
	}
}

/* The sample's y must be the kind's pre-affine function of x (checked where it is one of x). */
static void rec_samples(void *ctx, long step, const char *site, const float *x, const float *y,
			const int *tok, const int *chan, int n)
{
	struct record *r = ctx;
	const struct trainer *t = r->t;
	(void)step;
	(void)site;
	r->n_samples_calls++;
	const char *kind = norm_table[t->spec.norm.type]->name;
	for (int i = 0; i < n; i++) {
		if (tok[i] < 0 || tok[i] >= t->spec.train.batch_size * t->spec.model.seq_len ||
		    chan[i] < 0 || chan[i] >= t->spec.model.d_model)
			r->samples_ok = 0;
		if (strcmp(kind, "none") == 0 && x[i] != y[i])
			r->samples_ok = 0;
		if ((strcmp(kind, "dyt") == 0 || strcmp(kind, "derf") == 0) &&
		    !(fabsf(y[i]) <= 1.0f))
			r->samples_ok = 0;
	}
}

static void base_spec(struct spec *s)
{
	spec_defaults(s);
	s->model.n_layer = 3;
	s->model.d_model = 32;
	s->model.n_head = 2;
	s->model.d_ff = 64;
	s->model.seq_len = 32;
	s->train.batch_size = 4;
	s->train.steps = 40;
	s->train.warmup = 5;
	s->train.lr = 3e-3;
	s->probe.every = 1;
	s->probe.depth_every = 10;
	s->probe.samples_every = 20;
	s->probe.samples = 64;
	s->probe.val_every = 20;
	/* these tests compare arithmetic over whole runs: tiny DyT/Derf models go dead (health.h)
	 * within a few dozen steps, and must still take every step here */
	s->train.on_dead = SPEC_ON_DEAD_CONTINUE;
	s->probe.val_batches = 2;
	s->seed = 7;
}

static int run(const struct spec *s, long stop_at, struct record *rec, struct trainer *keep)
{
	struct trainer t;
	struct nl_err err = { 0 };
	struct train_sink sink = { .ctx = rec, .scalar = rec_scalar, .depth = rec_depth,
				   .samples = rec_samples };
	memset(rec, 0, sizeof *rec);
	rec->samples_ok = 1;
	if (trainer_init(&t, s, corpus, &err)) {
		fprintf(stderr, "trainer_init: %s\n", err.msg);
		return -1;
	}
	rec->t = &t;
	while (!trainer_done(&t) && t.step < stop_at)
		if (trainer_step(&t, &sink, &err))
			break;
	if (keep)
		*keep = t;
	else
		trainer_free(&t);
	return 0;
}

static void test_determinism(void)
{
	static struct record a, b, c, d;
	struct spec s;
	base_spec(&s);
	CHECK(run(&s, 1000, &a, NULL) == 0);
	CHECK(run(&s, 1000, &b, NULL) == 0);
	CHECK(a.n_loss == 40);
	CHECKF(memcmp(a.loss, b.loss, sizeof a.loss) == 0, "same spec+seed: losses differ");
	CHECKF(a.loss[40] < a.loss[1] - 1.0, "loss should fall: %g -> %g", a.loss[1], a.loss[40]);
	s.threads = 2;
	CHECK(run(&s, 1000, &c, NULL) == 0);
	CHECK(run(&s, 1000, &d, NULL) == 0);
	CHECKF(memcmp(c.loss, d.loss, sizeof c.loss) == 0, "2 threads: losses differ between runs");
	CHECKF(fabs(c.loss[40] - a.loss[40]) < 1e-3, "2 threads should train the same model: %g vs %g",
	       c.loss[40], a.loss[40]);
	s.threads = 1;
	s.seed = 8;
	CHECK(run(&s, 1000, &c, NULL) == 0);
	CHECKF(c.loss[1] != a.loss[1], "another seed must give another run");
}

static void test_resume(int type, int placement)
{
	static struct record full, first, second;
	struct spec s;
	struct trainer t1, t2, tf;
	struct nl_err err = { 0 };
	base_spec(&s);
	s.norm.type = type;
	s.norm.placement = placement;
	s.norm.eps = norm_table[type]->default_eps;
	s.norm.embed_scale = norm_table[type]->wants_embed_scale;
	/* batch-statistic kinds: past their warmups before the checkpoint at 17, UN's window and
	 * outlier filtration on, so every buffer carries state across the resume */
	s.norm.pn.warmup = 5;
	s.norm.un.warmup = 6;
	s.norm.un.r_free_after = 8;
	s.norm.un.window = 3;
	s.norm.un.outlier_filtration = 1;
	CHECK(run(&s, 1000, &full, &tf) == 0);
	CHECK(run(&s, 17, &first, &t1) == 0);
	CHECK(t1.step == 17);
	CHECKF(ckpt_save(&t1, ckpt_path, &err) == 0, "ckpt_save: %s", err.msg);
	trainer_free(&t1);

	struct train_sink sink = { .ctx = &second, .scalar = rec_scalar, .depth = rec_depth,
				   .samples = rec_samples };
	memset(&second, 0, sizeof second);
	CHECK(trainer_init(&t2, &s, corpus, &err) == 0);
	second.t = &t2;
	second.samples_ok = 1;
	CHECKF(ckpt_load(&t2, ckpt_path, NULL, &err) == 0, "ckpt_load: %s", err.msg);
	CHECK(t2.step == 17);
	while (!trainer_done(&t2))
		CHECK(trainer_step(&t2, &sink, &err) == 0);
	int same = 1;
	for (int i = 18; i <= 40; i++)
		same &= memcmp(&second.loss[i], &full.loss[i], sizeof(double)) == 0;
	CHECKF(same, "%s/%s: resumed losses differ from the uninterrupted run",
	       norm_table[type]->name, spec_placement_name(placement));
	CHECKF(memcmp(t2.model.params, tf.model.params, sizeof(real) * tf.model.lay.n_params) == 0,
	       "%s/%s: final parameters differ after resume", norm_table[type]->name,
	       spec_placement_name(placement));
	CHECKF(tf.model.lay.n_buf == (norm_table[type]->n_buffers ? tf.model.lay.n_buf : 0) &&
	       (tf.model.lay.n_buf == 0 ||
		memcmp(t2.model.bufs, tf.model.bufs, sizeof(real) * tf.model.lay.n_buf) == 0),
	       "%s/%s: norm buffers differ after resume", norm_table[type]->name,
	       spec_placement_name(placement));
	if (norm_table[type]->batch) {
		/* the buffers did move: a resume that dropped them would restart from init */
		real *init = malloc(sizeof(real) * tf.model.lay.n_buf);
		memcpy(init, tf.model.bufs, sizeof(real) * tf.model.lay.n_buf);
		model_init_buffers(&tf.model);
		CHECKF(memcmp(init, tf.model.bufs, sizeof(real) * tf.model.lay.n_buf) != 0,
		       "%s: buffers still at their initial values after 40 steps",
		       norm_table[type]->name);
		free(init);
	}
	trainer_free(&t2);
	trainer_free(&tf);

	/* a checkpoint of another spec is refused, not silently loaded */
	struct spec other = s;
	other.seed = 99;
	CHECK(trainer_init(&t2, &other, corpus, &err) == 0);
	CHECK(ckpt_load(&t2, ckpt_path, NULL, &err) == NL_EINVAL);
	CHECKF(strstr(err.msg, "spec") != NULL, "message should say the spec differs: %s", err.msg);
	trainer_free(&t2);
}

static void test_divergence(void)
{
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	static struct record rec;
	struct train_sink sink = { .ctx = &rec, .scalar = rec_scalar };
	base_spec(&s);
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	for (int i = 0; i < 5; i++)
		CHECK(trainer_step(&t, &sink, &err) == 0);
	/* poison one weight: the next step's loss is NaN */
	t.model.params[t.model.lay.tensors[3].off] = NAN;
	real *before = malloc(sizeof(real) * t.model.lay.n_params);
	memcpy(before, t.model.params, sizeof(real) * t.model.lay.n_params);
	CHECK(trainer_step(&t, &sink, &err) == NL_EDIVERGED);
	CHECKF(t.diverged_step == 6, "diverged_step %ld, expected 6", t.diverged_step);
	CHECK(trainer_done(&t));
	CHECK(strstr(err.msg, "step 6") != NULL);
	CHECK(memcmp(before, t.model.params, sizeof(real) * t.model.lay.n_params) == 0);
	free(before);
	trainer_free(&t);
}

static int has(const struct record *r, const char *name, int len)
{
	for (int i = 0; i < r->n_names; i++)
		if (strcmp(r->names[i], name) == 0)
			return r->depth_len[i] == len;
	return 0;
}

static void test_probes(void)
{
	static struct record r;
	struct spec s;
	base_spec(&s);
	s.train.steps = 20;
	s.norm.type = norm_find("dyt");
	s.norm.embed_scale = 1;
	s.norm.placement = SPEC_PLACE_PERI;
	CHECK(run(&s, 1000, &r, NULL) == 0);
	const char *want[] = { "resid.var", "resid.var_tok", "resid.rms", "resid.maxabs",
		"resid.medabs", "resid.top1_med", "resid.kurt", "angle", "grad.block", "grad.resid",
		"grad.attn.qkv.weight", "grad.mlp.proj.weight", "norm1.in.var", "norm2.in.kurt",
		"norm1_out.in.var", "norm2_out.in.maxabs", "norm1.alpha", "norm2.sat",
		"norm1_out.inv_std", "grad.norm1.alpha" };
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CHECKF(has(&r, want[i], 3), "depth metric %s missing or not one value per block", want[i]);
	CHECK(!has(&r, "norm1.shift", 3));     /* DyT has no shift */
	/* samples: 3 blocks × 4 peri sites + norm_f, at steps 1 and 20 */
	CHECKF(r.n_samples_calls == 26, "sample sites: %d", r.n_samples_calls);
	CHECK(r.samples_ok);

	s.norm.type = norm_find("derf");
	s.norm.placement = SPEC_PLACE_MIX;
	CHECK(run(&s, 1000, &r, NULL) == 0);
	CHECK(has(&r, "norm1.shift", 3));
	CHECK(r.samples_ok);
	s.norm.type = norm_find("none");
	s.norm.embed_scale = 0;
	CHECK(run(&s, 1000, &r, NULL) == 0);
	CHECK(r.samples_ok);
}

/*
 * The speed work (issue 5) must not change results: a fixed spec's loss after 200 steps stays
 * within 1e-3 relative of the value recorded before any optimisation (2026-11-22, this engine
 * at commit 5761531, SkylakeX kernels). NORMLAB_RECORD=1 prints the current values instead.
 */
static void test_recorded_losses(void)
{
	static const struct { const char *norm; double loss; } rec[] = {
		{ "layernorm", RECORDED_LN }, { "rmsnorm", RECORDED_RMS }, { "dyt", RECORDED_DYT },
		{ "derf", RECORDED_DERF },
	};
	int record = getenv("NORMLAB_RECORD") != NULL;
	for (size_t k = 0; k < sizeof rec / sizeof rec[0]; k++) {
		struct spec s;
		struct trainer t;
		struct nl_err err = { 0 };
		spec_defaults(&s);
		s.model.n_layer = 2;
		s.model.d_model = 64;
		s.model.n_head = 2;
		s.model.d_ff = 256;
		s.model.seq_len = 64;
		s.model.tie_head = 0;
		s.train.batch_size = 8;
		s.train.steps = 200;
		s.train.warmup = 20;
		s.train.lr = 2e-3;
		s.norm.type = norm_find(rec[k].norm);
		s.norm.eps = norm_table[s.norm.type]->default_eps;
		s.norm.embed_scale = norm_table[s.norm.type]->wants_embed_scale;
		s.probe.every = s.probe.depth_every = s.probe.samples_every = s.probe.val_every = 1000;
		s.seed = 5;
		s.train.on_dead = SPEC_ON_DEAD_CONTINUE;   /* the recorded values took 200 steps */
		if (trainer_init(&t, &s, corpus, &err) != 0) {
			CHECKF(0, "recorded loss %s: %s", rec[k].norm, err.msg);
			continue;
		}
		while (!trainer_done(&t))
			trainer_step(&t, NULL, &err);
		if (record)
			printf("#define RECORDED_%s %.9g\n", rec[k].norm, t.loss);
		else
			CHECKF(fabs(t.loss - rec[k].loss) <= 1e-3 * rec[k].loss,
			       "%s: loss after 200 steps %.9g, recorded %.9g (more than 1e-3 relative apart)",
			       rec[k].norm, t.loss, rec[k].loss);
		trainer_free(&t);
	}
}

/* 200 steps of a batch-statistic kind: loss per step, val losses, probe names. */
struct bn_rec {
	double loss[201];
	double val, val_tm;
	int fluct_rows, skip_rows, val_n, val_tm_n;
};

static void bn_scalar(void *ctx, long step, const char *name, double v)
{
	struct bn_rec *r = ctx;
	if (strcmp(name, "loss") == 0 && step >= 1 && step <= 200)
		r->loss[step] = v;
	if (strcmp(name, "val_loss") == 0) {
		r->val = v;
		r->val_n++;
	}
	if (strcmp(name, "val_loss_trainmode") == 0) {
		r->val_tm = v;
		r->val_tm_n++;
	}
}

static void bn_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct bn_rec *r = ctx;
	(void)step;
	int finite = 1;
	for (int i = 0; i < n; i++)
		finite &= isfinite(v[i]) && v[i] >= 0;
	if (strcmp(name, "norm1.fluct_var") == 0 && n == 2 && finite)
		r->fluct_rows++;
	if (strcmp(name, "norm2.skip_counter") == 0 && n == 2 && finite)
		r->skip_rows++;
}

static void test_batch_kinds_train(const char *arch)
{
	int vit = strcmp(arch, "vit") == 0;
	for (int k = 0; k < norm_table_len; k++) {
		if (!norm_table[k]->batch)
			continue;
		struct spec s;
		struct trainer t;
		struct nl_err err = { 0 };
		static struct bn_rec r;
		struct train_sink sink = { .ctx = &r, .scalar = bn_scalar, .depth = bn_depth };
		memset(&r, 0, sizeof r);
		spec_defaults(&s);
		snprintf(s.model.arch, sizeof s.model.arch, "%s", arch);
		if (vit) {
			snprintf(s.data.source, sizeof s.data.source, "fashion-mnist");
			s.model.patch = 7;
			s.train.batch_size = 32;
			s.norm.un.outlier_filtration = 1;
		} else {
			s.model.seq_len = 64;
			s.train.batch_size = 8;
		}
		s.model.n_layer = 2;
		s.model.d_model = 64;
		s.model.n_head = 2;
		s.model.d_ff = 256;
		s.train.steps = 200;
		s.train.warmup = 20;
		s.train.lr = 2e-3;
		s.norm.type = k;
		s.norm.eps = norm_table[k]->default_eps;
		s.norm.embed_scale = 0;
		s.norm.pn.warmup = s.norm.un.warmup = 20;
		s.norm.un.r_free_after = 20;
		s.norm.pn.groups = 2;
		s.probe.every = 1;
		s.probe.depth_every = 50;
		s.probe.samples = 0;
		s.probe.val_every = 100;
		s.probe.val_batches = 2;
		if (trainer_init(&t, &s, corpus, &err) != 0) {
			CHECKF(0, "%s/%s: %s", arch, norm_table[k]->name, err.msg);
			continue;
		}
		while (!trainer_done(&t))
			if (trainer_step(&t, &sink, &err))
				break;
		double first = 0, last = 0;
		int finite = t.diverged_step == 0;
		for (int i = 1; i <= 200; i++)
			finite &= isfinite(r.loss[i]);
		for (int i = 1; i <= 10; i++) {
			first += r.loss[i] / 10;
			last += r.loss[190 + i] / 10;
		}
		printf("%s/%s: loss %.3f -> %.3f, val_loss %.3f (eval), %.3f (train mode)\n", arch,
		       norm_table[k]->name, first, last, r.val, r.val_tm);
		CHECKF(finite, "%s/%s: non-finite loss (diverged at %ld)", arch, norm_table[k]->name,
		       t.diverged_step);
		CHECKF(last < first - 0.3, "%s/%s: loss should fall over 200 steps: %.3f -> %.3f", arch,
		       norm_table[k]->name, first, last);
		CHECKF(r.val_n == 2 && r.val_tm_n == 2 && isfinite(r.val) && isfinite(r.val_tm),
		       "%s/%s: val_loss and val_loss_trainmode at steps 100 and 200 (%d, %d)", arch,
		       norm_table[k]->name, r.val_n, r.val_tm_n);
		CHECKF(r.fluct_rows == 5, "%s/%s: norm1.fluct_var rows %d, want 5 (steps 1, 50..200)",
		       arch, norm_table[k]->name, r.fluct_rows);
		if (strcmp(norm_table[k]->name, "un") == 0)
			CHECKF(r.skip_rows == 5, "%s/un: norm2.skip_counter rows %d", arch, r.skip_rows);
		trainer_free(&t);
	}
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_train_XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmpdir);
	snprintf(ckpt_path, sizeof ckpt_path, "%s/ckpt.safetensors", tmpdir);
	write_corpus();
	test_determinism();
	for (int k = 0; k < norm_table_len; k++)
		test_resume(k, (int)(k % 5));
	test_resume(norm_find("layernorm"), SPEC_PLACE_PERI);
	test_divergence();
	test_probes();
	test_recorded_losses();
	test_batch_kinds_train("gpt");
	if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0)
		test_batch_kinds_train("vit");
	else
		CHECKF(0, "vit runs need Fashion-MNIST: apt-get install dataset-fashion-mnist");
	unlink(corpus);
	unlink(ckpt_path);
	rmdir(tmpdir);
	return test_finish("train");
}
