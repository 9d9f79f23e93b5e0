/*
 * checkpoint.c — trainer state ⇄ safetensors, with CRC-32C checksums of every tensor and of the
 * metadata (see checkpoint.h for the layout, crc32c.c for why CRC-32C). Owned by the trainer's
 * thread.
 */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "lnremove.h"
#include "safetensors.h"

/* LN removal's per-site state (lnremove.h), saved with a child's checkpoint so a resumed run
 * freezes the same σ: the EMA, the start measurement σ0, and the frozen σ of both paths. */
#define CKPT_LNR_TENSORS 3
static const char *const ckpt_lnr_names[CKPT_LNR_TENSORS] = { "lnremove.ema", "lnremove.sigma0",
							      "lnremove.sigma" };

/* host [4 · n_sites]: EMA, σ0, then σ of both paths per site */
static void lnr_pack(const struct model_lnr *r, real *host)
{
	int n = r->n_sites;
	for (int i = 0; i < n; i++) {
		host[i] = r->site[i].ema;
		host[n + i] = r->site[i].sigma0;
		host[2 * n + 2 * i] = r->site[i].sigma[LNR_PATH_MAIN];
		host[2 * n + 2 * i + 1] = r->site[i].sigma[LNR_PATH_V];
	}
}

/* The metadata the checksum covers, in this order (a key that is absent counts as empty). */
static const char *const ckpt_meta_keys[] = { "format", "step", "spec", "spec_hash", "rng.data",
					      "loss" };
#define CKPT_NMETA ((int)(sizeof ckpt_meta_keys / sizeof ckpt_meta_keys[0]))

/* CRC-32C over key NUL value NUL for each covered key; get(ctx, key) gives the value or NULL. */
static uint32_t meta_crc(const char *(*get)(const void *ctx, const char *key), const void *ctx)
{
	uint32_t c = 0;
	for (int i = 0; i < CKPT_NMETA; i++) {
		const char *v = get(ctx, ckpt_meta_keys[i]);
		c = crc32c(c, ckpt_meta_keys[i], strlen(ckpt_meta_keys[i]) + 1);
		c = crc32c(c, v ? v : "", v ? strlen(v) + 1 : 1);
	}
	return c;
}

struct meta_list {
	const struct st_meta *m;
	int n;
};

static const char *meta_list_get(const void *ctx, const char *key)
{
	const struct meta_list *l = ctx;
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->m[i].key, key) == 0)
			return l->m[i].value;
	return NULL;
}

static const char *meta_file_get(const void *ctx, const char *key)
{
	return st_meta_get(ctx, key);
}

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

/* A norm buffer (running statistics, counters, windows) under "<site>.<buffer>". */
static void fill_buffer(struct st_tensor *st, const struct model_buffer *b, const real *base)
{
	memset(st, 0, sizeof *st);
	snprintf(st->name, sizeof st->name, "%s", b->name);
	snprintf(st->dtype, sizeof st->dtype, "%s", NL_REAL_NAME);
	st->ndim = b->ndim;
	st->shape[0] = b->shape[0];
	st->shape[1] = b->shape[1];
	st->data = base + b->off;
	st->nbytes = b->len * sizeof(real);
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

/* What one checkpoint file holds besides the layout's tensors. */
struct ckpt_body {
	const real *params, *m, *v;      /* host copies, [n_params] each */
	struct st_tensor *extra;         /* more tensors after them (LN removal's state) */
	int n_extra;
	const char *step, *loss;         /* metadata as text */
	const struct spec *spec;
	const struct rng *data_rng;
};

/* Writes the file: the parameters, the AdamW moments ("optim.m.", "optim.v."), the extra
 * tensors, and the metadata with a CRC-32C per tensor and one over the metadata. */
static int write_file(const char *path, const struct model_layout *lay, const struct ckpt_body *b,
		      struct nl_err *err)
{
	int nt = lay->n_tensors, n = 3 * nt + b->n_extra, rc;
	char hash[65], rng[96], mcrc[16];
	char *canon = spec_canonical(b->spec);
	struct st_tensor *ts = nl_calloc((size_t)n, sizeof *ts);
	/* "xxxxxxxx," per tensor: st_write lays tensors out in this array's order (file order) */
	char *crcs = nl_malloc((size_t)n * 9 + 1);
	if (!canon || !ts || !crcs || spec_hash(b->spec, hash) != 0) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory writing checkpoint %s", path);
		goto out;
	}
	for (int i = 0; i < nt; i++) {
		fill_tensor(&ts[i], "", &lay->tensors[i], b->params);
		fill_tensor(&ts[nt + i], "optim.m.", &lay->tensors[i], b->m);
		fill_tensor(&ts[2 * nt + i], "optim.v.", &lay->tensors[i], b->v);
	}
	for (int k = 0; k < b->n_extra; k++)
		ts[3 * nt + k] = b->extra[k];
	rng_to_hex(b->data_rng, rng, sizeof rng);
	crcs[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(crcs + 9 * i, 10, "%08" PRIx32 "%s", crc32c(0, ts[i].data, ts[i].nbytes),
			 i + 1 < n ? "," : "");
	struct st_meta meta[] = {
		{ "format", CKPT_FORMAT }, { "step", b->step }, { "spec", canon }, { "spec_hash", hash },
		{ "rng.data", rng }, { "loss", b->loss }, { CKPT_CRC_TENSORS, crcs },
		{ CKPT_CRC_META, mcrc },
	};
	struct meta_list ml = { meta, CKPT_NMETA };
	snprintf(mcrc, sizeof mcrc, "%08" PRIx32, meta_crc(meta_list_get, &ml));
	rc = st_write(path, ts, n, meta, (int)(sizeof meta / sizeof meta[0]), err);
out:
	nl_free(crcs);
	nl_free(ts);
	nl_free(canon);
	return rc;
}

int ckpt_save(const struct trainer *t, const char *path, struct nl_err *err)
{
	/* downloading does not change the model; the backend's calls take it non-const because a
	 * device backend keeps its queue in it */
	struct model *m = (struct model *)&t->model;
	const struct model_layout *lay = &m->lay;
	const struct model_lnr *lr = m->lnr;
	size_t np = lay->n_params;
	/* after the parameters and moments: the norm buffers, then LN removal's state */
	int n_extra = lay->n_buffers + (lr ? CKPT_LNR_TENSORS : 0);
	struct st_tensor *extra = nl_calloc((size_t)n_extra + 1, sizeof *extra);
	real *lhost = lr ? nl_malloc(sizeof(real) * 4 * (size_t)lr->n_sites) : NULL;
	/* params, m, v and the norm buffers off the device */
	real *host = nl_malloc(sizeof(real) * (3 * np + lay->n_buf + 1));
	char step[32], loss[40];
	int rc;
	if (!extra || !host || (lr && !lhost)) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory writing checkpoint %s", path);
		goto out;
	}
	model_download(m, host, m->params, np);
	model_download(m, host + np, t->opt.m, np);
	model_download(m, host + 2 * np, t->opt.v, np);
	if (lay->n_buf)
		model_download(m, host + 3 * np, m->bufs, lay->n_buf);
	for (int i = 0; i < lay->n_buffers; i++)
		fill_buffer(&extra[i], &lay->buffers[i], host + 3 * np);
	if (lr) {
		lnr_pack(lr, lhost);
		for (int k = 0; k < CKPT_LNR_TENSORS; k++) {
			struct st_tensor *st = &extra[lay->n_buffers + k];
			snprintf(st->name, sizeof st->name, "%s", ckpt_lnr_names[k]);
			snprintf(st->dtype, sizeof st->dtype, "%s", NL_REAL_NAME);
			st->ndim = k == 2 ? 2 : 1;
			st->shape[0] = lr->n_sites;
			st->shape[1] = k == 2 ? 2 : 0;
			st->data = lhost + (size_t)k * lr->n_sites;
			st->nbytes = sizeof(real) * (size_t)lr->n_sites * (k == 2 ? 2 : 1);
		}
	}
	snprintf(step, sizeof step, "%ld", t->step);
	snprintf(loss, sizeof loss, "%.9g", t->loss);
	struct ckpt_body b = { host, host + np, host + 2 * np, extra, n_extra, step, loss, &t->spec,
			       &t->data_rng };
	rc = write_file(path, lay, &b, err);
out:
	nl_free(extra);
	nl_free(lhost);
	nl_free(host);
	return rc;
}

/* A file tensor st checked against what the model holds there (ndim, shape, len reals), then
 * uploaded into dst (device). widen: the double build may also take F32 tensors (widening is
 * exact), so a float run's parameters can be evaluated by the double engine as a reference.
 * Resume never widens: it must continue the same arithmetic. what: "tensor", "norm buffer". */
static int load_one(struct model *m, const struct st_tensor *st, const char *what,
		    const char *name, int ndim, const int shape[2], size_t len, real *dst, int widen,
		    const char *path, struct nl_err *err)
{
	if (!st)
		return nl_err_set(err, NL_EINVAL, "%s: %s %s is missing", path, what, name);
	int wide = widen && sizeof(real) == sizeof(double) && strcmp(st->dtype, "F32") == 0 &&
		   st->nbytes == len * sizeof(float);
	if ((!wide && (strcmp(st->dtype, NL_REAL_NAME) != 0 || st->nbytes != len * sizeof(real))) ||
	    st->ndim != ndim || st->shape[0] != shape[0] || (ndim == 2 && st->shape[1] != shape[1]))
		return nl_err_set(err, NL_EINVAL, "%s: %s %s has dtype %s and %zu bytes; the model "
				  "needs %s and %zu", path, what, name, st->dtype, st->nbytes,
				  NL_REAL_NAME, len * sizeof(real));
	if (!wide) {
		model_upload(m, dst, st->data, len);
		return 0;
	}
	real *tmp = nl_malloc(len * sizeof(real));
	if (!tmp)
		return nl_err_set(err, NL_ENOMEM, "out of memory reading %s", path);
	const float *src = st->data;
	for (size_t k = 0; k < len; k++)
		tmp[k] = (real)src[k];
	model_upload(m, dst, tmp, len);
	nl_free(tmp);
	return 0;
}

/* Every tensor of the layout (names after prefix) from the file into base (device). */
static int load_tensors(struct model *m, struct st_file *f, const char *prefix, real *base,
			int widen, const char *path, struct nl_err *err)
{
	const struct model_layout *lay = &m->lay;
	char name[ST_NAME_MAX];
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct model_tensor *t = &lay->tensors[i];
		snprintf(name, sizeof name, "%s%s", prefix, t->name);
		int rc = load_one(m, st_find(f, name), "tensor", name, t->ndim, t->shape, t->len,
				  base + t->off, widen, path, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* Every norm buffer of the layout from the file into m->bufs. widen as above. */
static int load_buffers(struct model *m, struct st_file *f, int widen, const char *path,
			struct nl_err *err)
{
	const struct model_layout *lay = &m->lay;
	for (int i = 0; i < lay->n_buffers; i++) {
		const struct model_buffer *b = &lay->buffers[i];
		int rc = load_one(m, st_find(f, b->name), "norm buffer", b->name, b->ndim, b->shape,
				  b->len, m->bufs + b->off, widen, path, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* One 8-digit lower-case hex CRC from s into *out; 0 or -1. */
static int parse_crc(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		int c = (unsigned char)s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

int ckpt_verify(const struct st_file *f, const char *path, int *verified, struct nl_err *err)
{
	const char *list = st_meta_get(f, CKPT_CRC_TENSORS), *mc = st_meta_get(f, CKPT_CRC_META);
	int n = st_count(f);
	uint32_t want, got;
	if (verified)
		*verified = 0;
	if (!list && !mc)
		return 0;   /* written before checksums existed: loads, unverified */
	if (!list || !mc || strlen(list) != (size_t)(n ? 9 * n - 1 : 0) || strlen(mc) != 8 ||
	    parse_crc(mc, &want) != 0)
		return nl_err_set(err, NL_EINVAL, "%s: checksum metadata is malformed (want one CRC-32C "
				  "per tensor for %d tensors): the file is corrupt", path, n);
	got = meta_crc(meta_file_get, f);
	if (got != want)
		return nl_err_set(err, NL_EINVAL, "%s: metadata checksum mismatch (CRC-32C stored %08"
				  PRIx32 ", computed %08" PRIx32 "): the file is corrupt", path, want,
				  got);
	for (int i = 0; i < n; i++) {
		const struct st_tensor *x = st_get(f, i);
		if (parse_crc(list + 9 * i, &want) != 0 || (i + 1 < n && list[9 * i + 8] != ','))
			return nl_err_set(err, NL_EINVAL, "%s: checksum metadata is malformed at tensor "
					  "%d: the file is corrupt", path, i);
		got = crc32c(0, x->data, x->nbytes);
		if (got != want)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": checksum mismatch (CRC-32C "
					  "stored %08" PRIx32 ", computed %08" PRIx32 "): the file is "
					  "corrupt", path, x->name, want, got);
	}
	if (verified)
		*verified = 1;
	return 0;
}

static int load_lnr(struct model_lnr *r, struct st_file *f, const char *path, struct nl_err *err)
{
	int n = r->n_sites;
	const real *v[CKPT_LNR_TENSORS];
	for (int k = 0; k < CKPT_LNR_TENSORS; k++) {
		const struct st_tensor *st = st_find(f, ckpt_lnr_names[k]);
		size_t want = sizeof(real) * (size_t)n * (k == 2 ? 2 : 1);
		if (!st || strcmp(st->dtype, NL_REAL_NAME) != 0 || st->nbytes != want)
			return nl_err_set(err, NL_EINVAL, "%s: tensor %s is missing or not %s [%d%s] "
					  "(LN-removal state)", path, ckpt_lnr_names[k], NL_REAL_NAME,
					  n, k == 2 ? ", 2" : "");
		v[k] = st->data;
	}
	for (int i = 0; i < n; i++) {
		r->site[i].ema = v[0][i];
		r->site[i].sigma0 = v[1][i];
		r->site[i].sigma[LNR_PATH_MAIN] = v[2][2 * i];
		r->site[i].sigma[LNR_PATH_V] = v[2][2 * i + 1];
	}
	return 0;
}

int ckpt_load(struct trainer *t, const char *path, int *verified, struct nl_err *err)
{
	struct st_file *f = NULL;
	char hash[65];
	int rc = st_open(&f, path, err);
	if (rc)
		return rc;
	/* Before anything is copied into t: a corrupt file leaves the trainer as it was. */
	if ((rc = ckpt_verify(f, path, verified, err)) != 0)
		goto out;
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
	    (rc = load_tensors(m, f, "optim.v.", t->opt.v, 0, path, err)) ||
	    (rc = load_buffers(m, f, 0, path, err)))
		goto out;
	if (m->lnr && (rc = load_lnr(m->lnr, f, path, err)) != 0)
		goto out;
	t->step = st_step;
	t->data_rng = r;
	t->mark_step = st_step;
	t->mark_time = nl_now();
	lnr_restore(t);
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
	rc = ckpt_verify(f, path, NULL, err);
	if (rc == 0)
		rc = load_tensors(m, f, "", m->params, 1, path, err);
	if (rc == 0)
		rc = load_buffers(m, f, 1, path, err);
	st_close(f);
	return rc;
}

int ckpt_save_initial(const struct model_layout *lay, const struct spec *s, const real *params,
		      const char *path, struct nl_err *err)
{
	size_t np = lay->n_params;
	real *zero = nl_calloc(np ? np : 1, sizeof(real));   /* the moments of both kinds */
	struct rng r;
	if (!zero)
		return nl_err_set(err, NL_ENOMEM, "out of memory writing checkpoint %s", path);
	rng_seed(&r, s->seed, RNG_STREAM_DATA);   /* as trainer_init seeds it */
	struct ckpt_body b = { params, zero, zero, NULL, 0, "0", "nan", s, &r };
	int rc = write_file(path, lay, &b, err);
	nl_free(zero);
	return rc;
}

int ckpt_read_spec(const char *path, char **spec, char hash[65], struct nl_err *err)
{
	struct st_file *f = NULL;
	*spec = NULL;
	int rc = st_open(&f, path, err);
	if (rc)
		return rc;
	if ((rc = ckpt_verify(f, path, NULL, err)) != 0)
		goto out;
	const char *fmt = st_meta_get(f, "format"), *sp = st_meta_get(f, "spec");
	const char *h = st_meta_get(f, "spec_hash");
	if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !sp || !h || strlen(h) != 64) {
		rc = nl_err_set(err, NL_EINVAL, "%s: not a normlab checkpoint (format %s)", path,
				fmt ? fmt : "missing");
		goto out;
	}
	*spec = nl_strdup(sp);
	if (!*spec) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	memcpy(hash, h, 65);
out:
	st_close(f);
	return rc;
}

int ckpt_load_init(struct model *m, const char *path, const char *want_hash, struct nl_err *err)
{
	struct st_file *f = NULL;
	int rc = st_open(&f, path, err);
	if (rc)
		return rc;
	if ((rc = ckpt_verify(f, path, NULL, err)) != 0)
		goto out;
	const char *h = st_meta_get(f, "spec_hash");
	if (want_hash && want_hash[0] && (!h || strcmp(h, want_hash) != 0)) {
		rc = nl_err_set(err, NL_EINVAL, "%s: written for spec %.12s…, not the parent this run "
				"names (%.12s…)", path, h ? h : "(none)", want_hash);
		goto out;
	}
	rc = load_tensors(m, f, "", m->params, 0, path, err);
out:
	st_close(f);
	return rc;
}
