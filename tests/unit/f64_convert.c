/*
 * f64_convert — the conversion's arithmetic in double (NORMS.md §7): for every architecture
 * (gpt tied and untied, llama with layernorm, vit cls and mean), placement pre and lns, random
 * parameters far from init (γ ≠ 1, β ≠ 0, biases), Pre-LN → Pre-RMSNorm, Pre-LN → Pre-CRMSNorm
 * and Pre-RMSNorm → Pre-CRMSNorm give the Pre-LN logits to 1e-12 relative: the equivalence is
 * exact, and what the float test sees (~1e-6) is float rounding.
 */
#include <stdlib.h>

#include "convert.h"
#include "model.h"
#include "norm.h"
#include "rng.h"
#include "spec.h"
#include "../test.h"

#ifndef NL_DOUBLE
#error "f64_convert must be built with -DNL_DOUBLE"
#endif

static void one(const char *arch, int placement, int tied, int pool_mean)
{
	struct spec s, sr, sc, sc2;
	struct model_layout lf, lr, lc, lc2;
	struct nl_err err = { 0 };
	struct rng r;
	char label[96];
	snprintf(label, sizeof label, "%s/%s%s%s", arch, spec_placement_name(placement),
		 tied ? "/tied" : "", pool_mean ? "/mean" : "");
	spec_defaults(&s);
	snprintf(s.model.arch, sizeof s.model.arch, "%s", arch);
	s.model.n_layer = 3;
	s.model.d_model = 12;
	s.model.n_head = 2;
	s.model.d_ff = 20;
	s.model.seq_len = 6;
	s.model.patch = 14;
	s.model.pool_mean = pool_mean;
	s.model.tie_head = tied;
	s.model.bias = strcmp(arch, "llama") != 0;
	s.norm.type = norm_find("layernorm");
	s.norm.placement = placement;
	s.norm.eps = 1e-5;
	s.train.batch_size = 3;
	CHECK(convert_spec(&sr, &s, "rmsnorm", &err) == 0);
	CHECK(convert_spec(&sc, &s, "crmsnorm", &err) == 0);
	CHECK(convert_spec(&sc2, &sr, "crmsnorm", &err) == 0);
	if (model_layout_build(&lf, &s, 1) || model_layout_build(&lr, &sr, 1) ||
	    model_layout_build(&lc, &sc, 1) || model_layout_build(&lc2, &sc2, 1)) {
		CHECKF(0, "%s: layouts", label);
		return;
	}
	real *pf = calloc(lf.n_params, sizeof(real)), *pr = calloc(lr.n_params, sizeof(real));
	real *pc = calloc(lc.n_params, sizeof(real)), *pc2 = calloc(lc2.n_params, sizeof(real));
	rng_seed(&r, 31, 7);
	for (int i = 0; i < lf.n_tensors; i++) {
		const struct model_tensor *t = &lf.tensors[i];
		int gamma = t->role == MODEL_ROLE_NORM && strstr(t->name, ".weight");
		for (size_t j = 0; j < t->len; j++)   /* a non-zero mean everywhere, γ around 1 */
			pf[t->off + j] = (real)((gamma ? 1 : 0.1) + 0.3 * rng_normal(&r));
	}
	struct convert_report rep;
	CHECKF(convert_params(&s, &lf, pf, &lr, pr, &rep, &err) == 0, "%s: %s", label, err.msg);
	CHECKF(convert_params(&s, &lf, pf, &lc, pc, &rep, &err) == 0, "%s: %s", label, err.msg);
	CHECKF(convert_params(&sr, &lr, pr, &lc2, pc2, &rep, &err) == 0, "%s: %s", label, err.msg);
	CHECKF(rep.max_mean < 1e-13, "%s: rmsnorm stream mean %.3g", label, rep.max_mean);
	CHECK(lc.S == lc.C - 1 && lr.S == lr.C);
	double rel[3] = { 1, 1, 1 };
	CHECK(convert_compare(&s, pf, &sr, pr, 5, &rel[0], NULL, NULL, &err) == 0);
	CHECK(convert_compare(&s, pf, &sc, pc, 5, &rel[1], NULL, NULL, &err) == 0);
	CHECK(convert_compare(&s, pf, &sc2, pc2, 5, &rel[2], NULL, NULL, &err) == 0);
	CHECKF(rel[0] < 1e-12 && rel[1] < 1e-12 && rel[2] < 1e-12, "%s: logits off by %.3g (rms), "
	       "%.3g (crms), %.3g (crms via rms)", label, rel[0], rel[1], rel[2]);
	free(pf);
	free(pr);
	free(pc);
	free(pc2);
	model_layout_free(&lf);
	model_layout_free(&lr);
	model_layout_free(&lc);
	model_layout_free(&lc2);
}

int main(void)
{
	const int places[] = { SPEC_PLACE_PRE, SPEC_PLACE_LNS };
	for (int p = 0; p < 2; p++) {
		one("gpt", places[p], 1, 0);
		one("gpt", places[p], 0, 0);
		one("llama", places[p], 0, 0);
		one("llama", places[p], 1, 0);
		one("vit", places[p], 0, 0);
		one("vit", places[p], 0, 1);
	}
	return test_finish("f64_convert");
}
