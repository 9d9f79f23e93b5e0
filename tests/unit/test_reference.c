/*
 * test_reference — float gradients against a double-precision reference on the same parameters
 * and batch, for every norm type × placement (and Peri-LN with the embedding norm): the float CLI
 * trains a tiny model for a few steps, then `normlab grads --ckpt` runs once in the float build
 * ($NORMLAB_BIN/normlab) and once in the double build ($BUILD/f64/bin/normlab, which widens the
 * float parameters exactly). Every gradient tensor must agree to ≤ 1e-5 relative (‖g32 − g64‖ /
 * ‖g64‖, see compare() for the floor on tensors whose gradient is nearly zero, and for elements
 * whose gradient is exactly zero by an invariance of the loss). This is what caught Derf's backward erf, whose cancellation near 0 put ∂L/∂γ of Peri-LN's
 * output norms 2–3e-4 off; f64_gradcheck could not see it, since the double build uses libm's erf.
 * Data: a corpus the test writes itself.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "norm.h"
#include "safetensors.h"
#include "spec.h"

#define REL_LIMIT 1e-5
#define FLOOR 1e-4
/* Batch-statistic kinds: the β and γ of a batchnorm feeding attention keep only the q path of
 * their gradient (the k and v paths cancel exactly, by the shift invariance below), a tensor
 * ~500x smaller than layernorm's; float's absolute error there is layernorm's (measured: 2e-9
 * against 1.4e-9 of the global norm), so these tensors are floored 10x higher. */
#define FLOOR_BATCH 1e-3
#define INVARIANT 1e-12
#define NOISE 1e-6

static char tmp[64], cli32[600], cli64[600];

static double value(const struct st_tensor *t, size_t i)
{
	if (strcmp(t->dtype, "F64") == 0)
		return ((const double *)t->data)[i];
	return ((const float *)t->data)[i];
}

static size_t count(const struct st_tensor *t)
{
	return t->nbytes / (strcmp(t->dtype, "F64") == 0 ? 8 : 4);
}

/* Runs a shell command quietly; 0 on success. */
static int sh(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

/* Compares every grad.* tensor of the two files; returns the worst relative error (or 1e9). */
static double compare(const char *f32, const char *f64, double floor, char *worst_name, size_t cap)
{
	struct st_file *a = NULL, *b = NULL;
	struct nl_err err = { 0 };
	double worst = 1e9;
	if (st_open(&a, f32, &err) || st_open(&b, f64, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	/* A tensor's error is relative to its own gradient norm, floored at FLOOR × the model's
	 * whole gradient norm: a gradient that is itself a near-total cancellation (a scalar α
	 * summed over 8192 terms of both signs) or that float cannot resolve (DyT/Derf runs that
	 * saturate: float's 1 − tanh² is exactly 0 where double's is 1e-12) is held to the
	 * precision of the update it takes part in, not to digits float never had. */
	double global = 0;
	for (int i = 0; i < st_count(b); i++) {
		const struct st_tensor *tb = st_get(b, i);
		if (strncmp(tb->name, "grad.", 5) == 0)
			for (size_t k = 0; k < count(tb); k++)
				global += value(tb, k) * value(tb, k);
	}
	global = sqrt(global);
	worst = 0;
	int n = 0;
	for (int i = 0; i < st_count(a); i++) {
		const struct st_tensor *ta = st_get(a, i);
		if (strncmp(ta->name, "grad.", 5) != 0)
			continue;
		const struct st_tensor *tb = st_find(b, ta->name);
		if (!tb || count(ta) != count(tb)) {
			snprintf(worst_name, cap, "%s (missing or other size in the f64 file)", ta->name);
			worst = 1e9;
			goto out;
		}
		/* An element whose gradient is zero in exact arithmetic (double: below INVARIANT ×
		 * the global norm) belongs to a parameter the loss is invariant to. With batchnorm
		 * every consumer of the residual stream removes per-channel shifts, so the biases
		 * that shift it (attn.proj, mlp.proj, and the v part of attn.qkv, as softmax rows sum
		 * to 1) have none. Float's value there is rounding noise of sums of O(global) terms:
		 * those elements are held to float's resolution, NOISE × the global norm, the rest of
		 * the tensor to REL_LIMIT of its own norm as above. */
		double num = 0, den = 0, noise = 0;
		for (size_t k = 0; k < count(ta); k++) {
			double d = value(ta, k) - value(tb, k);
			if (fabs(value(tb, k)) <= INVARIANT * global) {
				noise += d * d;
				continue;
			}
			num += d * d;
			den += value(tb, k) * value(tb, k);
		}
		den = sqrt(den);
		double rel = sqrt(num) / (den > floor * global ? den : floor * global);
		double rel_noise = sqrt(noise) / (NOISE * global) * REL_LIMIT;
		rel = rel_noise > rel ? rel_noise : rel;
		if (rel > worst) {
			worst = rel;
			snprintf(worst_name, cap, "%s", ta->name);
		}
		n++;
	}
	/* the same batch must have gone through both */
	const struct st_tensor *ia = st_find(a, "batch.inputs"), *ib = st_find(b, "batch.inputs");
	if (n == 0 || !ia || !ib || ia->nbytes != ib->nbytes || memcmp(ia->data, ib->data, ia->nbytes)) {
		snprintf(worst_name, cap, "no gradients, or different batches");
		worst = 1e9;
	}
out:
	st_close(a);
	st_close(b);
	return worst;
}


/* One type × placement at its initial parameters (branch outputs are small there, so the norms
 * of Peri-LN's outputs see small inputs) and after 20 steps of float training: gradients at the
 * same parameters in both builds. Returns the worst relative error of the two. */
static double one(const char *type, const char *placement, int embed_norm, char *worst, size_t cap)
{
	char spec[160], dir[160], g32[200], g64[200], cmd[4096], w2[ST_NAME_MAX + 64] = "";
	snprintf(spec, sizeof spec, "%s/%s-%s%s.json", tmp, type, placement, embed_norm ? "-e" : "");
	snprintf(dir, sizeof dir, "%s/%s-%s%s", tmp, type, placement, embed_norm ? "-e" : "");
	FILE *f = fopen(spec, "w");
	if (!f)
		return 1e9;
	fprintf(f, "{\"model\":{\"n_layer\":4,\"d_model\":64,\"n_head\":2,\"seq_len\":32},"
		"\"norm\":{\"type\":\"%s\",\"placement\":\"%s\",\"embed_norm\":%s},"
		"\"data\":{\"path\":\"%s/corpus.txt\"},\"train\":{\"steps\":20,\"batch_size\":4,"
		"\"warmup\":2,\"lr\":0.003},\"probe\":{\"every\":10,\"depth_every\":10,"
		"\"samples_every\":20,\"samples\":8,\"val_every\":20}}", type, placement,
		embed_norm ? "true" : "false", tmp);
	fclose(f);
	double rel[2];
	for (int trained = 0; trained < 2; trained++) {
		snprintf(g32, sizeof g32, "%s/g32-%d.safetensors", dir, trained);
		snprintf(g64, sizeof g64, "%s/g64-%d.safetensors", dir, trained);
		/* the double build reads the float parameters from g32 (a grads file holds them) */
		if (!trained)
			snprintf(cmd, sizeof cmd, "mkdir -p '%s' && '%s' grads '%s' --out '%s' >/dev/null"
				 " && '%s' grads '%s' --ckpt '%s' --out '%s' >/dev/null", dir, cli32, spec,
				 g32, cli64, spec, g32, g64);
		else
			snprintf(cmd, sizeof cmd, "'%s' train '%s' --out '%s' >/dev/null 2>&1 && '%s' "
				 "grads '%s' --ckpt '%s/checkpoint.safetensors' --out '%s' >/dev/null && "
				 "'%s' grads '%s' --ckpt '%s' --out '%s' >/dev/null", cli32, spec, dir,
				 cli32, spec, dir, g32, cli64, spec, g32, g64);
		if (sh(cmd) != 0)
			return 1e9;
		int k = norm_find(type);
		double floor = k >= 0 && norm_table[k]->batch ? FLOOR_BATCH : FLOOR;
		rel[trained] = compare(g32, g64, floor, trained ? w2 : worst, trained ? sizeof w2 : cap);
	}
	if (rel[1] > rel[0]) {
		snprintf(worst, cap, "%s, trained", w2);
		return rel[1];
	}
	size_t n = strlen(worst);
	snprintf(worst + n, cap - n, ", at init");
	return rel[0];
}

int main(void)
{
	const char *bin = getenv("NORMLAB_BIN"), *build = getenv("BUILD");
	snprintf(cli32, sizeof cli32, "%s/normlab", bin && *bin ? bin : "bin");
	snprintf(cli64, sizeof cli64, "%s/f64/bin/normlab", build && *build ? build : "build");
	if (access(cli32, X_OK) != 0 || access(cli64, X_OK) != 0) {
		CHECKF(0, "need %s and %s (make test builds both)", cli32, cli64);
		return test_finish("reference");
	}
	snprintf(tmp, sizeof tmp, "/tmp/nl_ref_XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	char corpus[128];
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmp);
	test_corpus_write(corpus, 20000);
	double all_worst = 0;
	for (int ti = 0; ti < norm_table_len; ti++) {
		for (int p = 0; p <= SPEC_PLACE_DEEPNORM; p++) {
			for (int e = 0; e <= (p == SPEC_PLACE_PERI); e++) {
				char worst[ST_NAME_MAX + 64] = "";
				const char *type = norm_table[ti]->name, *pl = spec_placement_name(p);
				double rel = one(type, pl, e, worst, sizeof worst);
				printf("%-9s %-4s%s worst relative gradient error %.2e (%s)\n", type, pl,
				       e ? "+emb" : "    ", rel, worst);
				CHECKF(rel <= REL_LIMIT, "%s/%s%s: %s is %.3g relative from the double "
				       "reference, above %g", type, pl, e ? " with embed_norm" : "", worst,
				       rel, REL_LIMIT);
				all_worst = rel > all_worst ? rel : all_worst;
			}
		}
	}
	printf("figure: float vs double gradients, worst relative error over all types and "
	       "placements: %.2e\n", all_worst);
	if (!test_fail_count) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
		sh(cmd);
	}
	return test_finish("reference");
}
