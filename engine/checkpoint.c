/*
 * checkpoint.c — trainer state ⇄ safetensors. Owned by the trainer's thread.
 */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

static void fill_tensor(struct st_tensor *st, const char *prefix, const struct model_tensor *t,
			const real *base)
{
	memset(st, 0, sizeof *st);
	snprintf(st->name, sizeof st->name, "%s%s", prefix, t->name);
	snprintf(st->dtype, sizeof st->dtype, "%s", NL_REAL_NAME);
	st->ndim = t->ndim;
	st->shape[0] = t->shape[0];
	st->shape[1] = t->shape[1];
	st->data = base + t->off;
	st->nbytes = t->len * sizeof(real);
}

static void rng_to_hex(const struct rng *r, char *out, size_t cap)
{
	uint64_t spare;
	memcpy(&spare, &r->spare, sizeof spare);
	snprintf(out, cap, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%d%016" PRIx64,
		 r->s[0], r->s[1], r->s[2], r->s[3], r->has_spare ? 1 : 0, spare);
}

static int rng_from_hex(struct rng *r, const char *hex)
{
	char part[17];
	uint64_t v[5];
	if (!hex || strlen(hex) != 16 * 4 + 1 + 16)
		return -1;
	for (int i = 0; i < 5; i++) {
		const char *src = hex + (i < 4 ? 16 * i : 65);
		memcpy(part, src, 16);
		part[16] = '\0';
		char *end;
		v[i] = strtoull(part, &end, 16);
		if (*end)
			return -1;
	}
	if (hex[64] != '0' && hex[64] != '1')
		return -1;
	for (int i = 0; i < 4; i++)
		r->s[i] = v[i];
	r->has_spare = hex[64] == '1';
	memcpy(&r->spare, &v[4], sizeof r->spare);
	return 0;
}

int ckpt_save(const struct trainer *t, const char *path, struct nl_err *err)
{
	/* downloading does not change the model; the backend's calls take it non-const because a
	 * device backend keeps its queue in it */
	struct model *m = (struct model *)&t->model;
	const struct model_layout *lay = &m->lay;
	int n = 3 * lay->n_tensors, rc;
	size_t np = lay->n_params;
	char step[32], hash[65], rng[96], loss[40];
	char *canon = spec_canonical(&t->spec);
	struct st_tensor *ts = nl_calloc((size_t)n, sizeof *ts);
	real *host = nl_malloc(sizeof(real) * 3 * (np ? np : 1));   /* params, m, v off the device */
	if (!canon || !ts || !host || spec_hash(&t->spec, hash) != 0) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory writing checkpoint %s", path);
		goto out;
	}
	model_download(m, host, m->params, np);
	model_download(m, host + np, t->opt.m, np);
	model_download(m, host + 2 * np, t->opt.v, np);
	for (int i = 0; i < lay->n_tensors; i++) {
		fill_tensor(&ts[i], "", &lay->tensors[i], host);
		fill_tensor(&ts[lay->n_tensors + i], "optim.m.", &lay->tensors[i], host + np);
		fill_tensor(&ts[2 * lay->n_tensors + i], "optim.v.", &lay->tensors[i], host + 2 * np);
	}
	snprintf(step, sizeof step, "%ld", t->step);
	snprintf(loss, sizeof loss, "%.9g", t->loss);
	rng_to_hex(&t->data_rng, rng, sizeof rng);
	struct st_meta meta[] = {
		{ "format", CKPT_FORMAT }, { "step", step }, { "spec", canon }, { "spec_hash", hash },
		{ "rng.data", rng }, { "loss", loss },
	};
	rc = st_write(path, ts, n, meta, (int)(sizeof meta / sizeof meta[0]), err);
out:
	nl_free(host);
	nl_free(ts);
	nl_free(canon);
	return rc;
}

/* Checks every tensor of the layout against the file, then uploads it into base (device).
 * widen: the double build may also take F32 tensors (widening is exact), so a float run's
 * parameters can be evaluated by the double engine as a reference. Resume never widens: it must
 * continue the same arithmetic. */
static int load_tensors(struct model *m, struct st_file *f, const char *prefix, real *base,
			int widen, const char *path, struct nl_err *err)
{
	const struct model_layout *lay = &m->lay;
	char name[ST_NAME_MAX];
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct model_tensor *t = &lay->tensors[i];
		snprintf(name, sizeof name, "%s%s", prefix, t->name);
		const struct st_tensor *st = st_find(f, name);
		if (!st)
			return nl_err_set(err, NL_EINVAL, "%s: tensor %s is missing", path, name);
		int wide = widen && sizeof(real) == sizeof(double) && strcmp(st->dtype, "F32") == 0 &&
			   st->nbytes == t->len * sizeof(float);
		if ((!wide && (strcmp(st->dtype, NL_REAL_NAME) != 0 ||
			       st->nbytes != t->len * sizeof(real))) ||
		    st->ndim != t->ndim || st->shape[0] != t->shape[0] ||
		    (t->ndim == 2 && st->shape[1] != t->shape[1]))
			return nl_err_set(err, NL_EINVAL, "%s: tensor %s has dtype %s and %zu bytes; "
					  "the model needs %s and %zu", path, name, st->dtype,
					  st->nbytes, NL_REAL_NAME, t->len * sizeof(real));
		if (wide) {
			real *tmp = nl_malloc(t->len * sizeof(real));
			if (!tmp)
				return nl_err_set(err, NL_ENOMEM, "out of memory reading %s", path);
			const float *src = st->data;
			for (size_t k = 0; k < t->len; k++)
				tmp[k] = (real)src[k];
			model_upload(m, base + t->off, tmp, t->len);
			nl_free(tmp);
		} else {
			model_upload(m, base + t->off, st->data, t->len);
		}
	}
	return 0;
}

int ckpt_load(struct trainer *t, const char *path, struct nl_err *err)
{
	struct st_file *f = NULL;
	char hash[65];
	int rc = st_open(&f, path, err);
	if (rc)
		return rc;
	const char *fmt = st_meta_get(f, "format"), *step = st_meta_get(f, "step");
	const char *h = st_meta_get(f, "spec_hash"), *rng = st_meta_get(f, "rng.data");
	if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !step || !h || !rng) {
		rc = nl_err_set(err, NL_EINVAL, "%s: not a normlab checkpoint (format %s)", path,
				fmt ? fmt : "missing");
		goto out;
	}
	if ((rc = spec_hash(&t->spec, hash)) != 0) {
		nl_err_set(err, rc, "out of memory hashing the spec");
		goto out;
	}
	if (strcmp(hash, h) != 0) {
		rc = nl_err_set(err, NL_EINVAL, "%s: written for spec %.12s…, not this spec (%.12s…)",
				path, h, hash);
		goto out;
	}
	char *end;
	long st_step = strtol(step, &end, 10);
	struct rng r;
	if (*end || st_step < 0 || st_step > t->spec.train.steps || rng_from_hex(&r, rng) != 0) {
		rc = nl_err_set(err, NL_EINVAL, "%s: bad step or RNG state in the metadata", path);
		goto out;
	}
	struct model *m = &t->model;
	if ((rc = load_tensors(m, f, "", m->params, 0, path, err)) ||
	    (rc = load_tensors(m, f, "optim.m.", t->opt.m, 0, path, err)) ||
	    (rc = load_tensors(m, f, "optim.v.", t->opt.v, 0, path, err)))
		goto out;
	t->step = st_step;
	t->data_rng = r;
	t->mark_step = st_step;
	t->mark_time = nl_now();
out:
	st_close(f);
	return rc;
}

int ckpt_load_params(struct model *m, const char *path, struct nl_err *err)
{
	struct st_file *f = NULL;
	int rc = st_open(&f, path, err);
	if (rc)
		return rc;
	rc = load_tensors(m, f, "", m->params, 1, path, err);
	st_close(f);
	return rc;
}
