/*
 * test_lnremove — LN removal by fine-tuning (NORMS.md §8), as a researcher relies on it:
 *  - a child spec takes its model from the parent's checkpoint; a field that differs is an error
 *    naming it; the parent's spec hash is in the child's (children of two parents never hash
 *    alike); other specs' canonical forms carry none of it; a schedule past train.steps, removal
 *    without a parent, or a parent of another norm type are errors naming the field;
 *  - the child starts from the parent's weights (its validation loss is the parent's);
 *  - the schedule: each site path is removed at the configured step, in the paper's order, and
 *    the recorded events (lnremove.removed, lnremove.event.*) say exactly that; all_at_once
 *    removes every path at one step;
 *  - a removed site's output is FakeLN's formula, (x − mean_d x)/σ·γ + β, computed here from the
 *    site's input in double, with σ the EMA of the real std at the removal step (std_source ema)
 *    or the start measurement (std_source data); a real site's output is not;
 *  - a child checkpointed and resumed mid-schedule ends with the bits of an uninterrupted one.
 */
#include <stdlib.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "blas.h"
#include "checkpoint.h"
#include "lnremove.h"
#include "spec.h"
#include "train.h"

static char corpus[256], dir[64], parent_ckpt[2][300];

/* The CLI's resolver, written again: init_from → the checkpoint's spec and hash. */
static int resolve(void *ctx, const struct spec *s, struct spec *parent, char hash[65],
		   struct spec_error *e)
{
	struct nl_err err = { 0 };
	char *text = NULL;
	(void)ctx;
	snprintf(e->pointer, sizeof e->pointer, "/init_from");
	if (ckpt_read_spec(s->init_from, &text, hash, &err) != 0) {
		snprintf(e->msg, sizeof e->msg, "%.200s", err.msg);
		return NL_EINVAL;
	}
	int rc = spec_parse(parent, text, strlen(text), NULL, NULL);
	nl_free(text);
	return rc;
}

static int parse(struct spec *s, const char *json, struct spec_errors *errs)
{
	struct spec_limits lim = { .resolve_parent = resolve };
	return spec_parse(s, json, strlen(json), &lim, errs);
}

static int has_error(const struct spec_errors *e, const char *pointer)
{
	for (int i = 0; i < e->n; i++)
		if (strcmp(e->e[i].pointer, pointer) == 0)
			return 1;
	return 0;
}

/* Trains parent k (layernorm or dyt) and saves its checkpoint. Returns its final val loss. */
static double train_parent(int k, const char *type, long steps, uint64_t seed)
{
	char json[512];
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	snprintf(json, sizeof json,
		 "{\"model\":{\"n_layer\":3,\"d_model\":32,\"n_head\":2,\"seq_len\":16},"
		 "\"norm\":{\"type\":\"%s\"},\"seed\":%llu,"
		 "\"train\":{\"steps\":%ld,\"batch_size\":4,\"lr\":3e-3},\"probe\":{\"samples\":0}}",
		 type, (unsigned long long)seed, steps);
	CHECK(parse(&s, json, NULL) == 0);
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	while (!trainer_done(&t))
		CHECK(trainer_step(&t, NULL, &err) == 0);
	snprintf(parent_ckpt[k], sizeof parent_ckpt[k], "%s/parent%d.safetensors", dir, k);
	CHECK(ckpt_save(&t, parent_ckpt[k], &err) == 0);
	double v = trainer_val_loss(&t);
	trainer_free(&t);
	return v;
}

static void child_json(char *buf, size_t cap, int parent, const char *extra)
{
	snprintf(buf, cap, "{\"init_from\":\"%s\",\"train\":{\"steps\":24,\"batch_size\":4,"
		 "\"lr\":1e-3,\"warmup\":2},\"probe\":{\"samples\":0,\"depth_every\":8}%s%s}",
		 parent_ckpt[parent], extra[0] ? "," : "", extra);
}

static void test_spec(void)
{
	char json[1024];
	struct spec a, b, c;
	struct spec_errors e;
	child_json(json, sizeof json, 0, "\"lnremove\":{\"mode\":\"gradual\"}");
	/* the default schedule (start 20, gaps 2/2/3) on 3 layers ends at 41 > 24 steps */
	CHECK(parse(&a, json, &e) == NL_EINVAL && has_error(&e, "/lnremove/start"));
	child_json(json, sizeof json, 0, "\"lnremove\":{\"mode\":\"gradual\",\"start\":3}");
	CHECK(parse(&a, json, &e) == 0);
	CHECK(a.model.n_layer == 3 && a.model.d_model == 32 && a.model.seq_len == 16);
	child_json(json, sizeof json, 1, "\"lnremove\":{\"mode\":\"gradual\",\"start\":3}");
	CHECK(parse(&b, json, &e) == 0);
	char ha[65], hb[65];
	CHECK(spec_hash(&a, ha) == 0 && spec_hash(&b, hb) == 0);
	CHECK(strcmp(a.parent_hash, b.parent_hash) != 0 && strcmp(ha, hb) != 0);
	/* the same child again hashes the same; the canonical form names the parent's hash */
	CHECK(parse(&c, json, &e) == 0 && spec_hash(&c, ha) == 0 && strcmp(ha, hb) == 0);
	char *canon = spec_canonical(&b);
	CHECK(canon && strstr(canon, b.parent_hash) && strstr(canon, "\"lnremove\""));
	nl_free(canon);
	/* a spec that is not a child: none of it in its canonical form */
	CHECK(parse(&c, "{}", &e) == 0);
	canon = spec_canonical(&c);
	CHECK(canon && !strstr(canon, "lnremove") && !strstr(canon, "parent") &&
	      !strstr(canon, "init_from"));
	nl_free(canon);
	/* a model field that is not the parent's */
	child_json(json, sizeof json, 0, "\"model\":{\"d_model\":64}");
	CHECK(parse(&c, json, &e) == NL_EINVAL && has_error(&e, "/model/d_model"));
	/* the same value as the parent's is fine */
	child_json(json, sizeof json, 0, "\"model\":{\"n_layer\":3}");
	CHECK(parse(&c, json, &e) == 0);
	/* removal without a start; a wrong parent hash; a parent of another norm type */
	const char *orphan = "{\"lnremove\":{\"mode\":\"gradual\",\"start\":1}}";
	CHECK(spec_parse(&c, orphan, strlen(orphan), NULL, &e) == NL_EINVAL &&
	      has_error(&e, "/lnremove/mode"));
	child_json(json, sizeof json, 0, "\"parent_hash\":\"0000000000000000000000000000000000000000"
		   "000000000000000000000000\"");
	CHECK(parse(&c, json, &e) == NL_EINVAL && has_error(&e, "/parent_hash"));
	snprintf(json, sizeof json, "{\"init_from\":\"%s\",\"train\":{\"steps\":30},"
		 "\"lnremove\":{\"mode\":\"all_at_once\",\"start\":5}}", parent_ckpt[1]);
	CHECK(parse(&c, json, &e) == 0);
	char dyt[300];
	snprintf(dyt, sizeof dyt, "%s", parent_ckpt[1]);
	snprintf(parent_ckpt[1], sizeof parent_ckpt[1], "%s/parent_dyt.safetensors", dir);
	{
		char pj[512];
		struct spec ps;
		struct trainer t;
		struct nl_err err = { 0 };
		snprintf(pj, sizeof pj, "{\"model\":{\"n_layer\":2,\"d_model\":16,\"n_head\":2,"
			 "\"seq_len\":8},\"norm\":{\"type\":\"dyt\"},\"train\":{\"steps\":1,"
			 "\"batch_size\":2},\"probe\":{\"samples\":0}}");
		CHECK(parse(&ps, pj, NULL) == 0 && trainer_init(&t, &ps, corpus, &err) == 0);
		CHECK(trainer_step(&t, NULL, &err) == 0 && ckpt_save(&t, parent_ckpt[1], &err) == 0);
		trainer_free(&t);
	}
	snprintf(json, sizeof json, "{\"init_from\":\"%s\",\"train\":{\"steps\":30},"
		 "\"lnremove\":{\"mode\":\"all_at_once\",\"start\":5}}", parent_ckpt[1]);
	CHECK(parse(&c, json, &e) == NL_EINVAL && has_error(&e, "/norm/type"));
	snprintf(parent_ckpt[1], sizeof parent_ckpt[1], "%s", dyt);
	/* no such checkpoint */
	CHECK(parse(&c, "{\"init_from\":\"/nonexistent/x.safetensors\"}", &e) != 0 &&
	      has_error(&e, "/init_from"));
}

/* ---------- the schedule ---------- */

#define MAX_EV 64
struct rec {
	int n;
	long step[MAX_EV];
	int phase[MAX_EV], layer[MAX_EV];
	long removed_step[MAX_EV];
	double removed[MAX_EV];
	int n_removed;
	double loss[64];
	int depth_sigma_rows;
	uint64_t bytes;   /* what the store would hold: spec_store_estimate's units */
};

static void r_scalar(void *ctx, long step, const char *name, double v)
{
	struct rec *r = ctx;
	r->bytes += sizeof(double) + SPEC_STORE_ROW_BYTES;
	if (strcmp(name, "lnremove.removed") == 0 && r->n_removed < MAX_EV) {
		r->removed_step[r->n_removed] = step;
		r->removed[r->n_removed++] = v;
	} else if (strcmp(name, "lnremove.event.ln_f") == 0 && r->n < MAX_EV) {
		r->step[r->n] = step;
		r->phase[r->n] = LNR_LN_F;
		r->layer[r->n++] = 0;
	} else if (strcmp(name, "loss") == 0 && step < 64) {
		r->loss[step] = v;
	}
}

static void r_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct rec *r = ctx;
	r->bytes += (uint64_t)n * sizeof(double) + SPEC_STORE_ROW_BYTES;
	if (strcmp(name, "lnremove.norm1.sigma_v") == 0)
		r->depth_sigma_rows++;
	if (strncmp(name, "lnremove.event.", 15) != 0)
		return;
	int ph = strcmp(name + 15, "ln2") == 0 ? LNR_LN2 : strcmp(name + 15, "ln1_qk") == 0 ?
		 LNR_LN1_QK : strcmp(name + 15, "ln1_v") == 0 ? LNR_LN1_V : -1;
	CHECKF(ph >= 0, "unknown event row %s", name);
	for (int l = 0; l < n; l++)
		if (v[l] != 0 && r->n < MAX_EV) {
			r->step[r->n] = step;
			r->phase[r->n] = ph;
			r->layer[r->n++] = l;
		}
}

/* Output of a site path against FakeLN's formula (fake) or LayerNorm's (real), in double. */
static double site_error(struct model *m, int site, const real *out, double sigma, int fake)
{
	const struct model_layout *lay = &m->lay;
	size_t N = (size_t)lay->N, C = (size_t)lay->C;
	real *x = malloc(sizeof(real) * N * C), *y = malloc(sizeof(real) * N * C);
	real *p = malloc(sizeof(real) * 2 * C);
	model_download(m, x, lay->sites[site].input, N * C);
	model_download(m, y, out, N * C);
	model_download(m, p, m->params + lay->sites[site].off, 2 * C);
	double worst = 0;
	for (size_t t = 0; t < N; t++) {
		const real *xr = x + t * C;
		double mu = 0, var = 0;
		for (size_t i = 0; i < C; i++)
			mu += xr[i];
		mu /= (double)C;
		for (size_t i = 0; i < C; i++)
			var += (xr[i] - mu) * (xr[i] - mu);
		double sd = fake ? sigma : sqrt(var / (double)C + 1e-5);
		for (size_t i = 0; i < C; i++) {
			double want = (xr[i] - mu) / sd * p[i] + p[C + i];
			double err = fabs(y[t * C + i] - want) / (1e-3 + fabs(want));
			worst = err > worst ? err : worst;
		}
	}
	free(x);
	free(y);
	free(p);
	return worst;
}

/* gradual, start 3, gaps 2/1/2 on 3 layers: ln2 at 3, 5, 7; ln1 Q/K at 9, 10, 11; ln1 V at 12,
 * 14, 16; ln_f at 18 (written out here, not computed by the code under test) */
static const struct { long step; int phase, layer; } expect[] = {
	{ 3, LNR_LN2, 0 }, { 5, LNR_LN2, 1 }, { 7, LNR_LN2, 2 },
	{ 9, LNR_LN1_QK, 0 }, { 10, LNR_LN1_QK, 1 }, { 11, LNR_LN1_QK, 2 },
	{ 12, LNR_LN1_V, 0 }, { 14, LNR_LN1_V, 1 }, { 16, LNR_LN1_V, 2 },
	{ 18, LNR_LN_F, 0 },
};
#define N_EXPECT ((int)(sizeof expect / sizeof expect[0]))

static void test_schedule(double parent_val, const char *std_source)
{
	char json[1024], extra[256];
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	struct rec r;
	memset(&r, 0, sizeof r);
	snprintf(extra, sizeof extra, "\"lnremove\":{\"mode\":\"gradual\",\"start\":3,"
		 "\"gap_ln2\":2,\"gap_ln1_qk\":1,\"gap_ln1_v\":2,\"std_source\":\"%s\"}", std_source);
	child_json(json, sizeof json, 0, extra);
	CHECK(parse(&s, json, NULL) == 0);
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	CHECK(ckpt_load_init(&t.model, s.init_from, s.parent_hash, &err) == 0);
	CHECKF(fabs(trainer_val_loss(&t) - parent_val) < 1e-6, "the child does not start from the "
	       "parent's weights: val %.6f vs the parent's %.6f", trainer_val_loss(&t), parent_val);
	struct train_sink sink = { .ctx = &r, .scalar = r_scalar, .depth = r_depth };
	struct model *m = &t.model;
	const struct model_layout *lay = &m->lay;
	int n2_1 = lay->blocks[1].site[MODEL_SLOT_NORM2], n1_1 = lay->blocks[1].site[MODEL_SLOT_NORM1];
	double ema_before = 0;
	int checked_fake = 0;
	while (!trainer_done(&t)) {
		if (t.step == 4)   /* step 5 removes blocks.1.norm2: its EMA after step 4 */
			ema_before = m->lnr->site[n2_1].ema;
		CHECK(trainer_step(&t, &sink, &err) == 0);
		if (t.step == 13) {
			/* blocks.1: norm2 fake, ln1 Q/K fake (step 10), V still real (until 14) */
			model_forward(m, 0);
			const struct lnr_site *ls2 = &m->lnr->site[n2_1], *ls1 = &m->lnr->site[n1_1];
			CHECK(ls2->fake[LNR_PATH_MAIN] && ls1->fake[LNR_PATH_MAIN] &&
			      !ls1->fake[LNR_PATH_V]);
			double want = strcmp(std_source, "data") == 0 ? ls2->sigma0 : ema_before;
			CHECKF(ls2->sigma[LNR_PATH_MAIN] == (real)want, "σ of blocks.1.norm2 %.8g, "
			       "want %.8g (%s)", ls2->sigma[LNR_PATH_MAIN], want, std_source);
			double e2 = site_error(m, n2_1, m->ba[1].sub[1].n, ls2->sigma[LNR_PATH_MAIN], 1);
			double e1 = site_error(m, n1_1, m->ba[1].sub[0].n, ls1->sigma[LNR_PATH_MAIN], 1);
			double ev = site_error(m, n1_1, m->lnr->xv + (size_t)lay->N * lay->C, 0, 0);
			CHECKF(e2 < 1e-4 && e1 < 1e-4, "fake outputs off FakeLN's formula: %g, %g", e2,
			       e1);
			CHECKF(ev < 1e-4, "the real V path is off LayerNorm's formula: %g", ev);
			/* and the formula tells them apart: the fake output is not LayerNorm's */
			CHECKF(site_error(m, n2_1, m->ba[1].sub[1].n, 0, 0) > 1e-3, "a fake site still "
			       "computes LayerNorm");
			checked_fake = 1;
		}
	}
	CHECK(checked_fake);
	struct spec_store_est est;
	spec_store_estimate(&s, &est);
	CHECKF(est.total == r.bytes, "spec_store_estimate says %llu bytes, the child wrote %llu",
	       (unsigned long long)est.total, (unsigned long long)r.bytes);
	/* every removal recorded, at its step, in order, once */
	CHECKF(r.n == N_EXPECT, "%d removal events recorded, want %d", r.n, N_EXPECT);
	for (int i = 0; i < N_EXPECT && i < r.n; i++)
		CHECKF(r.step[i] == expect[i].step && r.phase[i] == expect[i].phase &&
		       r.layer[i] == expect[i].layer, "event %d: step %ld %s layer %d, want step %ld "
		       "%s layer %d", i, r.step[i], lnr_phase_names[r.phase[i]], r.layer[i],
		       expect[i].step, lnr_phase_names[expect[i].phase], expect[i].layer);
	CHECK(r.n_removed == N_EXPECT);
	for (int i = 0; i < r.n_removed && i < N_EXPECT; i++)
		CHECK(r.removed_step[i] == expect[i].step && r.removed[i] == i + 1);
	/* the loss every step around the removals; σ over depth at the depth steps */
	for (long st = 2; st <= 23; st++)
		CHECKF(r.loss[st] != 0, "no loss at step %ld", st);
	CHECK(r.depth_sigma_rows >= 3);
	for (int i = 0; i < lay->n_sites; i++)
		CHECK(m->lnr->site[i].fake[LNR_PATH_MAIN] &&
		      (i == lay->site_f || lay->sites[i].slot != MODEL_SLOT_NORM1 ||
		       m->lnr->site[i].fake[LNR_PATH_V]));
	trainer_free(&t);
}

static void test_all_at_once(void)
{
	char json[1024];
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	struct rec r;
	memset(&r, 0, sizeof r);
	child_json(json, sizeof json, 0, "\"lnremove\":{\"mode\":\"all_at_once\",\"start\":6}");
	CHECK(parse(&s, json, NULL) == 0 && trainer_init(&t, &s, corpus, &err) == 0);
	CHECK(ckpt_load_init(&t.model, s.init_from, s.parent_hash, &err) == 0);
	struct train_sink sink = { .ctx = &r, .scalar = r_scalar, .depth = r_depth };
	for (int k = 0; k < 8; k++)
		CHECK(trainer_step(&t, &sink, &err) == 0);
	CHECKF(r.n == 3 * 3 + 1, "%d events", r.n);
	for (int i = 0; i < r.n; i++)
		CHECK(r.step[i] == 6);
	CHECK(r.n_removed == 1 && r.removed_step[0] == 6 && r.removed[0] == 10);
	trainer_free(&t);
}

/* The control: a child without lnremove is a plain fine-tune; no LN-removal state at all. */
static void test_control(double parent_val)
{
	char json[1024];
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	child_json(json, sizeof json, 0, "");
	CHECK(parse(&s, json, NULL) == 0 && trainer_init(&t, &s, corpus, &err) == 0);
	CHECK(t.model.lnr == NULL);
	CHECK(ckpt_load_init(&t.model, s.init_from, s.parent_hash, &err) == 0);
	CHECK(fabs(trainer_val_loss(&t) - parent_val) < 1e-6);
	trainer_free(&t);
}

/* Checkpoint at step 10 (between removals), resume in a fresh trainer: the bits of a straight run. */
static void test_resume(void)
{
	char json[1024], path[300];
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	struct rec a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	child_json(json, sizeof json, 0, "\"lnremove\":{\"mode\":\"gradual\",\"start\":3,"
		   "\"gap_ln2\":2,\"gap_ln1_qk\":1,\"gap_ln1_v\":2}");
	CHECK(parse(&s, json, NULL) == 0);
	struct train_sink sa = { .ctx = &a, .scalar = r_scalar }, sb = { .ctx = &b, .scalar = r_scalar };
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	CHECK(ckpt_load_init(&t.model, s.init_from, s.parent_hash, &err) == 0);
	while (!trainer_done(&t))
		CHECK(trainer_step(&t, &sa, &err) == 0);
	trainer_free(&t);

	snprintf(path, sizeof path, "%s/child.safetensors", dir);
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	CHECK(ckpt_load_init(&t.model, s.init_from, s.parent_hash, &err) == 0);
	while (t.step < 10)
		CHECK(trainer_step(&t, &sb, &err) == 0);
	CHECK(ckpt_save(&t, path, &err) == 0);
	trainer_free(&t);
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	CHECKF(ckpt_load(&t, path, NULL, &err) == 0, "%s", err.msg);
	CHECK(t.step == 10 && t.model.lnr->site[t.model.lay.blocks[2].site[MODEL_SLOT_NORM2]].fake[0]);
	while (!trainer_done(&t))
		CHECK(trainer_step(&t, &sb, &err) == 0);
	trainer_free(&t);
	int same = 1;
	for (int st = 1; st <= 24; st++)
		same &= a.loss[st] == b.loss[st];
	CHECKF(same, "a resumed child's losses differ from an uninterrupted one's");
	CHECK(a.n_removed == N_EXPECT && b.n_removed == N_EXPECT);
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);   /* OpenBLAS on one thread, as the CLI and daemon run it */
	snprintf(dir, sizeof dir, "/tmp/nl_lnremove_XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
	if (test_corpus_write(corpus, 40000) != 0)
		return 1;
	double v0 = train_parent(0, "layernorm", 40, 1);
	train_parent(1, "layernorm", 40, 2);
	test_spec();
	test_schedule(v0, "ema");
	test_schedule(v0, "data");
	test_all_at_once();
	test_control(v0);
	test_resume();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return test_finish("lnremove");
}
