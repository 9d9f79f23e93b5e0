/*
 * convert.c — Pre-LN → Pre-RMSNorm / Pre-CRMSNorm on a parameter set (see convert.h for the
 * method). It knows the three architectures' tensors by their checkpoint names (model.h: the
 * PyTorch layout, Linear weights [out, in]): which write to the residual stream, which read a
 * norm's output, and along which axis the stream's channels run. Owns nothing past a call.
 */
#include "convert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "model_core.h"
#include "rng.h"
#include "safetensors.h"

/* an rmsnorm source line whose |mean| exceeds this fraction of its rms is not zero-mean */
#define CONVERT_MEAN_TOL 1e-4

struct conv {
	const struct model_layout *lf, *lt;
	const real *src;
	real *dst;
	int from_rms;     /* the source is a (zero-mean) Pre-RMSNorm model */
	int compress;     /* to crmsnorm */
	struct convert_report *rep;
	struct nl_err *err;
};

static const struct model_tensor *tens(const struct model_layout *lay, const char *name)
{
	int i = model_tensor_find(lay, name);
	return i < 0 ? NULL : &lay->tensors[i];
}

static int missing(struct conv *cv, const char *name)
{
	return nl_err_set(cv->err, NL_EINVAL, "convert: the model has no tensor %s", name);
}

/*
 * A tensor that writes to the stream: each of its lines along the channel axis (axis 1: rows
 * [R, C] of embeddings; axis 0: Linear [C, in] over its output dim, or a [C] vector) is centred
 * and keeps its first S channels in dst. An rmsnorm source must already be zero-mean.
 */
static int writer(struct conv *cv, const char *name, int axis)
{
	const struct model_tensor *f = tens(cv->lf, name), *t = tens(cv->lt, name);
	if (!f || !t)
		return missing(cv, name);
	int C = cv->lf->C, S = cv->lt->S;
	int lines = f->ndim == 1 ? 1 : axis == 1 ? f->shape[0] : f->shape[1];
	size_t step = f->ndim == 1 || axis == 1 ? 1 : (size_t)f->shape[1];   /* between channels */
	size_t tstep = t->ndim == 1 || axis == 1 ? 1 : (size_t)t->shape[1];
	for (int j = 0; j < lines; j++) {
		const real *x = cv->src + f->off + (axis == 1 ? (size_t)j * C : (size_t)j);
		real *y = cv->dst + t->off + (axis == 1 ? (size_t)j * S : (size_t)j);
		double mean = 0, ss = 0;
		for (int c = 0; c < C; c++) {
			mean += x[c * step];
			ss += (double)x[c * step] * x[c * step];
		}
		mean /= C;
		if (cv->from_rms) {
			double rms = sqrt(ss / C), rel = rms > 0 ? fabs(mean) / rms : 0;
			if (cv->rep && rel > cv->rep->max_mean)
				cv->rep->max_mean = rel;
			if (rel > CONVERT_MEAN_TOL)
				return nl_err_set(cv->err, NL_EINVAL, "convert: %s line %d has mean %.3g "
						  "(%.2g of its rms, over %g): the Pre-RMSNorm model's "
						  "stream is not zero-mean, so it cannot be compressed; "
						  "only a model converted from Pre-LN (convert --to "
						  "rmsnorm) can", name, j, mean, rel, CONVERT_MEAN_TOL);
		}
		for (int c = 0; c < S; c++)
			y[c * tstep] = (real)(x[c * step] - mean);
	}
	if (cv->rep) {
		cv->rep->centred++;
		cv->rep->compressed += S < C;
	}
	return 0;
}

/*
 * rows of a Linear that reads s·N(x), N = γ ⊙ x̂ + β: weight at src offset w [rows, C], bias b
 * (MODEL_NONE: 0), into dst offsets tw [rows, S], tb (must exist when β is given):
 *   bias ← b + s·W·β;   W ← W·diag(γ) when fold_g;   compressed: W[:, i] − W[:, C−1], i < C−1.
 */
static int reader(struct conv *cv, const char *what, size_t w, size_t b, int rows,
		  const real *g, const real *beta, double s, int fold_g, size_t tw, size_t tb)
{
	int C = cv->lf->C, S = cv->lt->S;
	if (tb == MODEL_NONE && (beta || b != MODEL_NONE))
		return nl_err_set(cv->err, NL_EINVAL, "convert: %s: the converted model has no bias "
				  "to take the norm's β", what);
	for (int o = 0; o < rows; o++) {
		const real *x = cv->src + w + (size_t)o * C;
		real *y = cv->dst + tw + (size_t)o * S;
		double bias = b != MODEL_NONE ? cv->src[b + (size_t)o] : 0;
		if (beta) {
			double wb = 0;
			for (int i = 0; i < C; i++)
				wb += (double)x[i] * beta[i];
			bias += s * wb;
		}
		double last = fold_g ? (double)x[C - 1] * g[C - 1] : x[C - 1];
		for (int i = 0; i < S; i++) {
			double v = fold_g ? (double)x[i] * g[i] : x[i];
			y[i] = (real)(cv->compress ? v - last : v);
		}
		if (tb != MODEL_NONE)
			cv->dst[tb + (size_t)o] = (real)bias;
	}
	if (cv->rep) {
		cv->rep->folded++;
		cv->rep->compressed += cv->compress;
	}
	return 0;
}

/* The source norm `site` ("blocks.0.norm1", "norm_f"): γ, β (NULL for rmsnorm); the target's
 * weight: γ (to rmsnorm) or 1 (to crmsnorm, γ folded into the reader). */
static int norm_site(struct conv *cv, const char *site, const real **g, const real **beta)
{
	char n[MODEL_NAME_MAX + 8];
	snprintf(n, sizeof n, "%s.weight", site);
	const struct model_tensor *fg = tens(cv->lf, n), *tg = tens(cv->lt, n);
	if (!fg || !tg)
		return missing(cv, n);
	*g = cv->src + fg->off;
	snprintf(n, sizeof n, "%s.bias", site);
	const struct model_tensor *fb = tens(cv->lf, n);
	*beta = fb ? cv->src + fb->off : NULL;
	for (int i = 0; i < cv->lt->S; i++)
		cv->dst[tg->off + (size_t)i] = cv->compress ? 1 : (*g)[i];
	return 0;
}

int convert_spec(struct spec *to, const struct spec *from, const char *to_type,
		 struct nl_err *err)
{
	int kt = norm_find(to_type), kf = from->norm.type;
	const char *fname = kf >= 0 && kf < norm_table_len ? norm_table[kf]->name : "?";
	if (kt < 0 || (strcmp(to_type, "rmsnorm") != 0 && strcmp(to_type, "crmsnorm") != 0))
		return nl_err_set(err, NL_EINVAL, "convert: --to %s: the targets are rmsnorm and "
				  "crmsnorm", to_type);
	if (strcmp(fname, "layernorm") != 0 &&
	    !(strcmp(fname, "rmsnorm") == 0 && strcmp(to_type, "crmsnorm") == 0))
		return nl_err_set(err, NL_EINVAL, "convert: /norm/type is \"%s\": the source must be a "
				  "layernorm model (or, to crmsnorm, an rmsnorm one converted from "
				  "layernorm)", fname);
	if (from->norm.placement != SPEC_PLACE_PRE && from->norm.placement != SPEC_PLACE_LNS)
		return nl_err_set(err, NL_EINVAL, "convert: /norm/placement is \"%s\": LN(x) = "
				  "RMSNorm(x) needs a zero-mean stream, which only pre and lns keep "
				  "(every reader of the stream is a norm; post, peri, mix and deepnorm "
				  "add a norm's output, γ ⊙ x̂ + β, to it)",
				  spec_placement_name(from->norm.placement));
	*to = *from;
	to->norm.type = kt;
	to->norm.eps = from->norm.eps;   /* LN(x) = RMSNorm(x) holds with the same ε */
	to->model.tie_head = 0;
	to->model.bias = 1;
	to->model.head_bias = strcmp(from->model.arch, "vit") != 0;
	return 0;
}

int convert_params(const struct spec *from, const struct model_layout *lf, const real *src,
		   const struct model_layout *lt, real *dst, struct convert_report *rep,
		   struct nl_err *err)
{
	struct conv cv = { .lf = lf, .lt = lt, .src = src, .dst = dst, .rep = rep, .err = err };
	char n[MODEL_NAME_MAX], site[MODEL_NAME_MAX];
	const real *g, *beta;
	int rc, vit = lf->arch->data == MODEL_DATA_IMAGES;
	int C = lf->C;
	cv.from_rms = strcmp(norm_table[from->norm.type]->name, "rmsnorm") == 0;
	cv.compress = lt->nk->compressed;
	if (rep)
		memset(rep, 0, sizeof *rep);
	if (lf->C != lt->C || lf->L != lt->L || lf->F != lt->F || lt->S != C - cv.compress)
		return nl_err_set(err, NL_EINVAL, "convert: the two layouts do not match");
	memset(dst, 0, sizeof(real) * lt->n_params);

	/* 1. the embedding side writes the stream */
	if (vit) {
		if ((rc = writer(&cv, "embed.patch.weight", 0)) || (rc = writer(&cv, "embed.patch.bias", 0)) ||
		    (rc = writer(&cv, "embed.cls", 0)) || (rc = writer(&cv, "embed.pos.weight", 1)))
			return rc;
	} else {
		if ((rc = writer(&cv, "embed.tok.weight", 1)))
			return rc;
		if (tens(lf, "embed.pos.weight") && (rc = writer(&cv, "embed.pos.weight", 1)))
			return rc;
		const struct model_tensor *fs = tens(lf, "embed.scale"), *ts = tens(lt, "embed.scale");
		if (fs && ts)
			dst[ts->off] = src[fs->off];   /* c·(centred) is centred */
	}

	/* 2. each block: output projections write, qkv and the MLP's input read */
	for (int l = 0; l < lf->L; l++) {
		double s = lf->blocks[l].scale;
		static const char *const writers[] = { "attn.proj.weight", "attn.proj.bias",
						       "mlp.proj.weight", "mlp.proj.bias" };
		for (int k = 0; k < 4; k++) {
			snprintf(n, sizeof n, "blocks.%d.%s", l, writers[k]);
			if ((k % 2 == 0 || tens(lf, n)) && (rc = writer(&cv, n, 0)))
				return rc;
		}
		for (int b = 0; b < 2; b++) {
			snprintf(site, sizeof site, "blocks.%d.%s", l, model_slot_names[b]);
			if ((rc = norm_site(&cv, site, &g, &beta)))
				return rc;
			size_t fw = lf->blocks[l].w[b][BW_IN_W], fb = lf->blocks[l].w[b][BW_IN_B];
			size_t tw = lt->blocks[l].w[b][BW_IN_W], tb = lt->blocks[l].w[b][BW_IN_B];
			/* llama's gate and up are adjacent: one [2F, C] matrix, as the forward has it */
			int rows = b == 0 ? 3 * C : lf->swiglu ? 2 * lf->F : lf->F;
			if ((rc = reader(&cv, site, fw, fb, rows, g, beta, s, cv.compress, tw, tb)))
				return rc;
		}
	}

	/* 3. the head reads norm_f (vit: through the pooling, which keeps an affine map) */
	if ((rc = norm_site(&cv, "norm_f", &g, &beta)))
		return rc;
	if ((rc = reader(&cv, "head", lf->head, lf->head_b, lf->V, g, beta, 1.0, cv.compress,
			 lt->head, lt->head_b)))
		return rc;
	return 0;
}

/* Host parameters p → a model of spec s on one seeded random batch; logits into *out. */
static int run_batch(const struct spec *s, const real *p, uint64_t seed, real **out,
		     size_t *n_out, double *loss, struct nl_err *err)
{
	struct model m;
	struct rng r;
	int rc = model_init(&m, s, err);
	if (rc)
		return rc;
	const struct model_layout *lay = &m.lay;
	size_t N = (size_t)lay->N, rows = (size_t)model_loss_rows(lay), nl = rows * lay->V;
	int *tok = nl_malloc(sizeof(int) * 2 * N);
	real *img = nl_malloc(sizeof(real) * (size_t)lay->B * 28 * 28);
	*out = nl_malloc(sizeof(real) * nl);
	if (!tok || !img || !*out) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory comparing the models");
		goto out;
	}
	model_upload(&m, m.params, p, lay->n_params);
	rng_seed(&r, seed, RNG_STREAM_VAL);
	if (lay->arch->data == MODEL_DATA_IMAGES) {
		for (int i = 0; i < lay->B * 28 * 28; i++)
			img[i] = (real)rng_normal(&r);
		for (int b = 0; b < lay->B; b++)
			tok[b] = (int)rng_below(&r, MODEL_CLASSES);
		model_upload(&m, m.images, img, (size_t)lay->B * 28 * 28);
		model_upload_ints(&m, m.targets, tok, (size_t)lay->B);
	} else {
		for (size_t i = 0; i < 2 * N; i++)
			tok[i] = (int)rng_below(&r, MODEL_VOCAB);
		model_upload_ints(&m, m.tokens, tok, 2 * N);
	}
	*loss = model_forward(&m, 0);
	model_download(&m, *out, m.logits, nl);
	*n_out = nl;
out:
	nl_free(tok);
	nl_free(img);
	model_free(&m);
	return rc;
}

int convert_compare(const struct spec *a, const real *pa, const struct spec *b, const real *pb,
		    uint64_t seed, double *rel, double *loss_a, double *loss_b, struct nl_err *err)
{
	real *la = NULL, *lb = NULL;
	size_t na = 0, nb = 0;
	double fa = 0, fb = 0;
	int rc = run_batch(a, pa, seed, &la, &na, &fa, err);
	if (!rc)
		rc = run_batch(b, pb, seed, &lb, &nb, &fb, err);
	if (!rc && na != nb)
		rc = nl_err_set(err, NL_EINVAL, "convert: the two models give %zu and %zu logits", na,
				nb);
	if (!rc) {
		double d = 0, mx = 0;
		for (size_t i = 0; i < na; i++) {
			double e = fabs((double)la[i] - lb[i]), v = fabs((double)la[i]);
			d = e > d ? e : d;
			mx = v > mx ? v : mx;
		}
		*rel = mx > 0 ? d / mx : d;
		if (loss_a)
			*loss_a = fa;
		if (loss_b)
			*loss_b = fb;
	}
	nl_free(la);
	nl_free(lb);
	return rc;
}

/* The parameters of checkpoint f in lay's layout, into host p (widening F32 in the double
 * build, as ckpt_load_params does). */
static int read_params(const struct st_file *f, const char *path, const struct model_layout *lay,
		       real *p, struct nl_err *err)
{
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct model_tensor *t = &lay->tensors[i];
		const struct st_tensor *st = st_find(f, t->name);
		if (!st)
			return nl_err_set(err, NL_EINVAL, "%s: tensor %s is missing", path, t->name);
		int same = strcmp(st->dtype, NL_REAL_NAME) == 0 && st->nbytes == t->len * sizeof(real);
		int wide = sizeof(real) == sizeof(double) && strcmp(st->dtype, "F32") == 0 &&
			   st->nbytes == t->len * sizeof(float);
		if (!same && !wide)
			return nl_err_set(err, NL_EINVAL, "%s: tensor %s has dtype %s and %zu bytes; "
					  "its spec needs %s and %zu", path, t->name, st->dtype,
					  st->nbytes, NL_REAL_NAME, t->len * sizeof(real));
		if (same) {
			memcpy(p + t->off, st->data, st->nbytes);
		} else {
			const float *x = st->data;
			for (size_t k = 0; k < t->len; k++)
				p[t->off + k] = (real)x[k];
		}
	}
	return 0;
}

int convert_checkpoint(const char *in, const char *to_type, const char *out_dir,
		       struct convert_report *rep, double *rel, struct nl_err *err)
{
	struct st_file *f = NULL;
	struct spec from, to;
	struct spec_errors se = { 0 };
	struct model_layout lf, lt;
	real *src = NULL, *dst = NULL;
	char *canon = NULL;
	char path[4096];
	int rc, have_f = 0, have_t = 0;
	memset(&lf, 0, sizeof lf);
	memset(&lt, 0, sizeof lt);
	if ((rc = st_open(&f, in, err)) != 0)
		return rc;
	if ((rc = ckpt_verify(f, in, NULL, err)) != 0)
		goto out;
	const char *st = st_meta_get(f, "spec");
	if (!st) {
		rc = nl_err_set(err, NL_EINVAL, "%s: no spec in the metadata: not a normlab checkpoint",
				in);
		goto out;
	}
	if ((rc = spec_parse(&from, st, strlen(st), NULL, &se)) != 0) {
		rc = nl_err_set(err, NL_EINVAL, "%s: its spec does not parse: %s: %s", in,
				se.n ? se.e[0].pointer : "", se.n ? se.e[0].msg : "");
		goto out;
	}
	if ((rc = convert_spec(&to, &from, to_type, err)) != 0)
		goto out;
	if ((rc = model_layout_build(&lf, &from, 1)) != 0) {
		rc = nl_err_set(err, rc, "convert: cannot lay out the model of %s", in);
		goto out;
	}
	have_f = 1;
	if ((rc = model_layout_build(&lt, &to, 1)) != 0) {
		rc = nl_err_set(err, rc, "convert: cannot lay out the converted model");
		goto out;
	}
	have_t = 1;
	src = nl_malloc(sizeof(real) * (lf.n_params ? lf.n_params : 1));
	dst = nl_malloc(sizeof(real) * (lt.n_params ? lt.n_params : 1));
	if (!src || !dst) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory converting %s", in);
		goto out;
	}
	if ((rc = read_params(f, in, &lf, src, err)) != 0 ||
	    (rc = convert_params(&from, &lf, src, &lt, dst, rep, err)) != 0)
		goto out;
	if ((size_t)snprintf(path, sizeof path, "%s/checkpoint.safetensors", out_dir) >= sizeof path) {
		rc = nl_err_set(err, NL_EINVAL, "convert: output path too long");
		goto out;
	}
	if ((rc = ckpt_save_initial(&lt, &to, dst, path, err)) != 0)
		goto out;
	snprintf(path, sizeof path, "%s/spec.json", out_dir);
	canon = spec_canonical(&to);
	FILE *sf = canon ? fopen(path, "w") : NULL;
	if (!sf || fprintf(sf, "%s\n", canon) < 0) {
		if (sf)
			fclose(sf);
		rc = nl_err_set(err, NL_EIO, "convert: cannot write %s", path);
		goto out;
	}
	if (fclose(sf) != 0) {
		rc = nl_err_set(err, NL_EIO, "convert: cannot write %s", path);
		goto out;
	}
	if (rel)
		rc = convert_compare(&from, src, &to, dst, from.seed, rel, NULL, NULL, err);
out:
	nl_free(canon);
	nl_free(src);
	nl_free(dst);
	if (have_f)
		model_layout_free(&lf);
	if (have_t)
		model_layout_free(&lt);
	st_close(f);
	return rc;
}
