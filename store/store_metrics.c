/*
 * store_metrics.c — training metrics: scalar series, depth profiles (one row of L float64 per
 * step), norm input/output samples; batched append, truncate on resume, downsampled reads.
 * Blobs are little-endian whatever the host, packed through the connection's scratch buffer.
 * Threading: the struct store's thread (see store.c); appends and truncates need the writer.
 * Callbacks borrow what they are given until they return and must not call back into the same
 * struct store.
 */
#include "store_int.h"

#include <math.h>
#include <string.h>

/* ---------- little-endian packing ---------- */

static void put_u32(unsigned char *p, uint32_t u)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t u = 0;
	for (int i = 0; i < 4; i++)
		u |= (uint32_t)p[i] << (8 * i);
	return u;
}

static void put_f64(unsigned char *p, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

static double get_f64(const unsigned char *p)
{
	uint64_t u = 0;
	double v;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)p[i] << (8 * i);
	memcpy(&v, &u, 8);
	return v;
}

/* 32-bit values (float or int32) of a[0..n) into p as LE words; memcpy keeps the bits. */
static void put_words(unsigned char *p, const void *a, int n)
{
	const unsigned char *src = a;
	for (int i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, src + 4 * (size_t)i, 4);
		put_u32(p + 4 * (size_t)i, u);
	}
}

static void get_words(void *a, const unsigned char *p, int n)
{
	unsigned char *dst = a;
	for (int i = 0; i < n; i++) {
		uint32_t u = get_u32(p + 4 * (size_t)i);
		memcpy(dst + 4 * (size_t)i, &u, 4);
	}
}

/* ---------- append ---------- */

static int put_points(struct store *s, int64_t exp_id, const struct store_point *p, int np,
		      struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	for (int i = 0; i < np; i++) {
		int64_t name_id;
		rc = store__name_id(s, p[i].name, 1, &name_id, err);
		if (rc < 0)
			goto out;
		/* name_id may have run a statement; take ours afterwards */
		if (!st) {
			rc = store__stmt(s, ST_SCALAR_PUT,
					 "INSERT OR REPLACE INTO scalars (exp_id, name_id, step, value) "
					 "VALUES (?1, ?2, ?3, ?4)", &st, err);
			if (rc < 0)
				goto out;
		}
		sqlite3_bind_int64(st, 1, exp_id);
		sqlite3_bind_int64(st, 2, name_id);
		sqlite3_bind_int64(st, 3, p[i].step);
		if (isfinite(p[i].value))
			sqlite3_bind_double(st, 4, p[i].value);
		else
			sqlite3_bind_null(st, 4);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			rc = store__fail(s, rc, "scalar insert", err);
			goto out;
		}
		rc = 0;
	}
out:
	store__done(st);
	return rc;
}

static int put_depth(struct store *s, int64_t exp_id, const struct store_depth *d, int nd,
		     struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	for (int i = 0; i < nd; i++) {
		int64_t name_id;
		unsigned char *buf;
		if (d[i].n < 1 || d[i].n > STORE__DEPTH_MAX || !d[i].values) {
			rc = store__err(err, STORE_EINVAL, "depth row: n=%d not in 1..%d or no values",
					d[i].n, STORE__DEPTH_MAX);
			goto out;
		}
		rc = store__name_id(s, d[i].name, 1, &name_id, err);
		if (rc < 0)
			goto out;
		rc = store__scratch(s, 8 * (size_t)d[i].n, &buf, err);
		if (rc < 0)
			goto out;
		for (int j = 0; j < d[i].n; j++)
			put_f64(buf + 8 * (size_t)j, d[i].values[j]);
		rc = store__stmt(s, ST_DEPTH_PUT,
				 "INSERT OR REPLACE INTO depth (exp_id, name_id, step, n, vals) "
				 "VALUES (?1, ?2, ?3, ?4, ?5)", &st, err);
		if (rc < 0)
			goto out;
		sqlite3_bind_int64(st, 1, exp_id);
		sqlite3_bind_int64(st, 2, name_id);
		sqlite3_bind_int64(st, 3, d[i].step);
		sqlite3_bind_int(st, 4, d[i].n);
		sqlite3_bind_blob(st, 5, buf, 8 * d[i].n, SQLITE_STATIC);
		rc = store__run(s, st, "depth insert", err);
		st = NULL;
		if (rc < 0)
			goto out;
	}
out:
	store__done(st);
	return rc;
}

static int put_samples(struct store *s, int64_t exp_id, const struct store_samples *sm, int ns,
		       struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	for (int i = 0; i < ns; i++) {
		const struct store_samples *a = &sm[i];
		size_t w = 4 * (size_t)a->n;
		unsigned char *buf;
		if (!a->site || !*a->site || strnlen(a->site, STORE__NAME_MAX + 1) > STORE__NAME_MAX ||
		    a->n < 1 || a->n > STORE__SAMPLES_MAX || !a->x || !a->y) {
			rc = store__err(err, STORE_EINVAL,
					"samples: bad site, no x/y, or n=%d not in 1..%d", a->n,
					STORE__SAMPLES_MAX);
			goto out;
		}
		rc = store__scratch(s, 4 * w, &buf, err);
		if (rc < 0)
			goto out;
		put_words(buf, a->x, a->n);
		put_words(buf + w, a->y, a->n);
		if (a->token)
			put_words(buf + 2 * w, a->token, a->n);
		if (a->channel)
			put_words(buf + 3 * w, a->channel, a->n);
		rc = store__stmt(s, ST_SAMPLES_PUT,
				 "INSERT OR REPLACE INTO samples (exp_id, site, step, n, x, y, token, "
				 "channel) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &st, err);
		if (rc < 0)
			goto out;
		sqlite3_bind_int64(st, 1, exp_id);
		sqlite3_bind_text(st, 2, a->site, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, a->step);
		sqlite3_bind_int(st, 4, a->n);
		sqlite3_bind_blob(st, 5, buf, (int)w, SQLITE_STATIC);
		sqlite3_bind_blob(st, 6, buf + w, (int)w, SQLITE_STATIC);
		if (a->token)
			sqlite3_bind_blob(st, 7, buf + 2 * w, (int)w, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 7);
		if (a->channel)
			sqlite3_bind_blob(st, 8, buf + 3 * w, (int)w, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 8);
		rc = store__run(s, st, "samples insert", err);
		st = NULL;
		if (rc < 0)
			goto out;
	}
out:
	store__done(st);
	return rc;
}

int store_metrics_append(struct store *s, int64_t exp_id, const struct store_point *p, int np,
			 const struct store_depth *d, int nd, const struct store_samples *sm, int ns,
			 struct store_err *err)
{
	int rc = store__need_writer(s, "metrics append", err);
	if (rc < 0)
		return rc;
	if (np < 0 || nd < 0 || ns < 0 || (np && !p) || (nd && !d) || (ns && !sm))
		return store__err(err, STORE_EINVAL, "metrics append: bad batch");
	if (np + nd + ns == 0)
		return 0;
	/* One transaction per batch: per-point commits cost an order of magnitude (bench_store).
	 * INSERT OR REPLACE: a resumed run re-sends points it had sent before the crash. */
	rc = store__tx_begin(s, err);
	if (rc < 0)
		return rc;
	rc = put_points(s, exp_id, p, np, err);
	if (rc == 0)
		rc = put_depth(s, exp_id, d, nd, err);
	if (rc == 0)
		rc = put_samples(s, exp_id, sm, ns, err);
	return store__tx_end(s, rc, err);
}

int store_metrics_truncate(struct store *s, int64_t exp_id, int64_t step, struct store_err *err)
{
	/* `name_id IN (all names)` turns "step > ?" into one primary-key range per series
	 * instead of a scan of every point of the run. */
	static const char *const sql[3] = {
		"DELETE FROM scalars WHERE exp_id = ?1 "
		"AND name_id IN (SELECT id FROM metric_names) AND step > ?2",
		"DELETE FROM depth WHERE exp_id = ?1 "
		"AND name_id IN (SELECT id FROM metric_names) AND step > ?2",
		"DELETE FROM samples WHERE exp_id = ?1 AND step > ?2",
	};
	static const int ids[3] = { ST_TRUNC_SCALARS, ST_TRUNC_DEPTH, ST_TRUNC_SAMPLES };
	int rc = store__need_writer(s, "metrics truncate", err);
	if (rc < 0)
		return rc;
	rc = store__tx_begin(s, err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < 3 && rc == 0; i++) {
		sqlite3_stmt *st;
		rc = store__stmt(s, ids[i], sql[i], &st, err);
		if (rc < 0)
			break;
		sqlite3_bind_int64(st, 1, exp_id);
		sqlite3_bind_int64(st, 2, step);
		rc = store__run(s, st, "metrics truncate", err);
	}
	return store__tx_end(s, rc, err);
}

/* ---------- reads ---------- */

int store_metric_names(struct store *s, int64_t exp_id,
		       int (*cb)(void *ctx, const char *name, const char *kind), void *ctx,
		       struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, count = 0;

	if (!s || !cb)
		return store__err(err, STORE_EINVAL, "metric names: bad arguments");
	/* A skip-scan: each recursion step is one index probe for the next name_id, so listing
	 * the names of a run with millions of points reads a handful of rows. */
	rc = store__stmt(s, ST_METRIC_NAMES,
			 "WITH RECURSIVE "
			 "sn(id) AS (SELECT (SELECT min(name_id) FROM scalars WHERE exp_id = ?1) "
			 "  UNION ALL SELECT (SELECT min(name_id) FROM scalars "
			 "  WHERE exp_id = ?1 AND name_id > sn.id) FROM sn WHERE sn.id IS NOT NULL), "
			 "dn(id) AS (SELECT (SELECT min(name_id) FROM depth WHERE exp_id = ?1) "
			 "  UNION ALL SELECT (SELECT min(name_id) FROM depth "
			 "  WHERE exp_id = ?1 AND name_id > dn.id) FROM dn WHERE dn.id IS NOT NULL) "
			 "SELECT m.name, 'scalar' FROM sn JOIN metric_names m ON m.id = sn.id "
			 "UNION ALL "
			 "SELECT m.name, 'depth' FROM dn JOIN metric_names m ON m.id = dn.id "
			 "ORDER BY 2 DESC, 1", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		count++;
		if (cb(ctx, (const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1))) {
			rc = SQLITE_DONE;   /* the callback stopped the scan */
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "metric names", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}

static const char SQL_SCALAR_RANGE[] =
	"SELECT step, value FROM scalars WHERE exp_id = ?1 AND name_id = ?2 "
	"AND step BETWEEN ?3 AND ?4 ORDER BY step";

/* Highest step of a scalar series into *max; 0 = found, 1 = empty series, <0 = error. */
static int scalar_max_step(struct store *s, int64_t exp_id, int64_t name_id, int64_t *max,
			   struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__stmt(s, ST_SCALAR_MAXSTEP,
			     "SELECT max(step) FROM scalars WHERE exp_id = ?1 AND name_id = ?2", &st,
			     err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, exp_id);
	sqlite3_bind_int64(st, 2, name_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = store__fail(s, rc, "metric max step", err);
	} else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		rc = 1;
	} else {
		*max = sqlite3_column_int64(st, 0);
		rc = 0;
	}
	store__done(st);
	return rc;
}

struct bucket_acc {
	struct store_bucket b;
	double sum;
	int64_t finite;
};

static void acc_start(struct bucket_acc *a, int64_t step)
{
	memset(a, 0, sizeof *a);
	a->b.step_first = step;
	a->b.min = INFINITY;
	a->b.max = -INFINITY;
	a->b.last = NAN;
}

static void acc_finish(struct bucket_acc *a)
{
	if (a->finite) {
		a->b.mean = a->sum / (double)a->finite;
	} else {
		a->b.min = a->b.max = a->b.mean = NAN;
	}
}

/*
 * Bucket b covers steps [bound(b), bound(b+1)) with bound(b) = from + floor(b·span/B), computed
 * as b·q + floor(b·r/B) (span = q·B + r) so no product can overflow for any int64 span:
 * b·r < B² and b·q ≤ span.
 */
static int64_t bucket_bound(int64_t from, int64_t q, int64_t r, int64_t nb, int64_t b)
{
	return from + b * q + (b * r) / nb;
}

int store_metric_buckets(struct store *s, int64_t exp_id, const char *name, int64_t from,
			 int64_t to, int buckets,
			 int (*cb)(void *ctx, const struct store_bucket *b), void *ctx,
			 struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	struct bucket_acc acc;
	int64_t name_id, span, q, r, b = -1, end = 0;
	int rc, count = 0, open = 0;

	if (!s || !name || !cb)
		return store__err(err, STORE_EINVAL, "metric buckets: bad arguments");
	if (buckets < 1 || buckets > STORE_BUCKETS_MAX || from < 0)
		return store__err(err, STORE_EINVAL,
				  "metric buckets: buckets %d not in 1..%d, or from < 0", buckets,
				  STORE_BUCKETS_MAX);
	rc = store__name_id(s, name, 0, &name_id, err);
	if (rc < 0 || !name_id)
		return rc;
	if (to < 0) {
		rc = scalar_max_step(s, exp_id, name_id, &to, err);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	if (to == INT64_MAX)
		to--;   /* keeps span = to - from + 1 representable */
	if (to < from)
		return 0;
	span = to - from + 1;
	q = span / buckets;
	r = span % buckets;
	rc = store__stmt(s, ST_SCALAR_RANGE, SQL_SCALAR_RANGE, &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	sqlite3_bind_int64(st, 2, name_id);
	sqlite3_bind_int64(st, 3, from);
	sqlite3_bind_int64(st, 4, to);
	/* Rows arrive in step order, so a bucket is complete when a step crosses its end. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t step = sqlite3_column_int64(st, 0);
		if (!open || step >= end) {
			if (open) {
				acc_finish(&acc);
				count++;
				if (cb(ctx, &acc.b))
					goto stopped;
			}
			do
				end = bucket_bound(from, q, r, buckets, ++b + 1);
			while (end <= step);
			acc_start(&acc, step);
			open = 1;
		}
		acc.b.n++;
		acc.b.step_last = step;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
			double v = sqlite3_column_double(st, 1);
			acc.b.min = v < acc.b.min ? v : acc.b.min;
			acc.b.max = v > acc.b.max ? v : acc.b.max;
			acc.b.last = v;
			acc.sum += v;
			acc.finite++;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = store__fail(s, rc, "metric buckets", err);
		goto out;
	}
	if (open) {
		acc_finish(&acc);
		count++;
		cb(ctx, &acc.b);
	}
stopped:
	rc = 0;
out:
	store__done(st);
	return rc < 0 ? rc : count;
}

int store_metric_scan(struct store *s, int64_t exp_id, const char *name,
		      int (*cb)(void *ctx, int64_t step, double value), void *ctx,
		      struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t name_id;
	int rc, count = 0;

	if (!s || !name || !cb)
		return store__err(err, STORE_EINVAL, "metric scan: bad arguments");
	rc = store__name_id(s, name, 0, &name_id, err);
	if (rc < 0 || !name_id)
		return rc;
	rc = store__stmt(s, ST_SCALAR_RANGE, SQL_SCALAR_RANGE, &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	sqlite3_bind_int64(st, 2, name_id);
	sqlite3_bind_int64(st, 3, INT64_MIN);
	sqlite3_bind_int64(st, 4, INT64_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		double v = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN
								     : sqlite3_column_double(st, 1);
		count++;
		if (cb(ctx, sqlite3_column_int64(st, 0), v)) {
			rc = SQLITE_DONE;   /* the callback stopped the scan */
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "metric scan", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}

int store_metric_page(struct store *s, int64_t exp_id, const char *name, int64_t after_step,
		      int limit, int (*cb)(void *ctx, int64_t step, double value), void *ctx,
		      struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t name_id;
	int rc, count = 0;

	if (!s || !name || !cb)
		return store__err(err, STORE_EINVAL, "metric page: bad arguments");
	if (limit < 1 || limit > STORE__LIST_MAX)
		return store__err(err, STORE_EINVAL, "metric page: limit %d not in 1..%d", limit,
				  STORE__LIST_MAX);
	if (after_step == INT64_MAX)
		return 0;   /* nothing can follow; also keeps after_step + 1 from overflowing */
	rc = store__name_id(s, name, 0, &name_id, err);
	if (rc < 0 || !name_id)
		return rc;
	/* The range statement of store_metric_scan, cut off after `limit` rows: the primary key
	 * delivers rows in step order, so stopping early reads only the page. */
	rc = store__stmt(s, ST_SCALAR_RANGE, SQL_SCALAR_RANGE, &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	sqlite3_bind_int64(st, 2, name_id);
	sqlite3_bind_int64(st, 3, after_step + 1);
	sqlite3_bind_int64(st, 4, INT64_MAX);
	while (count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		double v = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN
								     : sqlite3_column_double(st, 1);
		count++;
		if (cb(ctx, sqlite3_column_int64(st, 0), v))
			break;   /* the callback stopped the page */
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store__fail(s, rc, "metric page", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}

int store_depth_get(struct store *s, int64_t exp_id, const char *name, int64_t step_eq,
		    int all_steps,
		    int (*cb)(void *ctx, int64_t step, const double *v, int n), void *ctx,
		    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t name_id;
	int rc, count = 0;

	if (!s || !name || !cb)
		return store__err(err, STORE_EINVAL, "depth get: bad arguments");
	rc = store__name_id(s, name, 0, &name_id, err);
	if (rc < 0 || !name_id)
		return rc;
	if (!all_steps && step_eq < 0)
		rc = store__stmt(s, ST_DEPTH_LATEST,
				 "SELECT step, n, vals FROM depth WHERE exp_id = ?1 AND name_id = ?2 "
				 "ORDER BY step DESC LIMIT 1", &st, err);
	else
		rc = store__stmt(s, ST_DEPTH_RANGE,
				 "SELECT step, n, vals FROM depth WHERE exp_id = ?1 AND name_id = ?2 "
				 "AND step BETWEEN ?3 AND ?4 ORDER BY step", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	sqlite3_bind_int64(st, 2, name_id);
	if (all_steps || step_eq >= 0) {
		sqlite3_bind_int64(st, 3, all_steps ? INT64_MIN : step_eq);
		sqlite3_bind_int64(st, 4, all_steps ? INT64_MAX : step_eq);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_int(st, 1);
		const unsigned char *blob = sqlite3_column_blob(st, 2);
		int bytes = sqlite3_column_bytes(st, 2);
		unsigned char *buf;
		double *v;
		if (n < 1 || n > STORE__DEPTH_MAX || bytes != 8 * n || !blob) {
			rc = store__err(err, STORE_EIO, "depth row of %s at step %lld is corrupt", name,
					(long long)sqlite3_column_int64(st, 0));
			goto out;
		}
		rc = store__scratch(s, 8 * (size_t)n, &buf, err);
		if (rc < 0)
			goto out;
		v = (double *)(void *)buf;   /* from nl_realloc: aligned for double */
		for (int j = 0; j < n; j++)
			v[j] = get_f64(blob + 8 * (size_t)j);
		count++;
		if (cb(ctx, sqlite3_column_int64(st, 0), v, n)) {
			rc = SQLITE_DONE;   /* the callback stopped the scan */
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "depth get", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}

/* Column i as n 32-bit words into dst; NULL column → *out = NULL. -1 if the blob is malformed. */
static int col_words(sqlite3_stmt *st, int i, int n, void *dst, const void **out)
{
	const unsigned char *blob = sqlite3_column_blob(st, i);
	int bytes = sqlite3_column_bytes(st, i);
	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	if (!blob || bytes != 4 * n)
		return -1;
	get_words(dst, blob, n);
	*out = dst;
	return 0;
}

int store_samples_get(struct store *s, int64_t exp_id, const char *site, int64_t step,
		      int (*cb)(void *ctx, const struct store_samples *sm), void *ctx,
		      struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	struct store_samples sm;
	int rc, count = 0;

	if (!s || !site || !cb)
		return store__err(err, STORE_EINVAL, "samples get: bad arguments");
	rc = store__stmt(s, ST_SAMPLES_GET,
			 "SELECT step, n, x, y, token, channel FROM samples "
			 "WHERE exp_id = ?1 AND site = ?2 AND step = CASE WHEN ?3 < 0 THEN "
			 "(SELECT max(step) FROM samples WHERE exp_id = ?1 AND site = ?2) "
			 "ELSE ?3 END", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	sqlite3_bind_text(st, 2, site, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, step);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_int(st, 1);
		size_t w = 4 * (size_t)n;
		unsigned char *buf;
		const void *x, *y, *tok, *ch;
		memset(&sm, 0, sizeof sm);
		if (n < 1 || n > STORE__SAMPLES_MAX) {
			rc = store__err(err, STORE_EIO, "samples of %s: bad count %d", site, n);
			goto out;
		}
		rc = store__scratch(s, 4 * w, &buf, err);
		if (rc < 0)
			goto out;
		if (col_words(st, 2, n, buf, &x) || col_words(st, 3, n, buf + w, &y) ||
		    col_words(st, 4, n, buf + 2 * w, &tok) || col_words(st, 5, n, buf + 3 * w, &ch) ||
		    !x || !y) {
			rc = store__err(err, STORE_EIO, "samples of %s are corrupt", site);
			goto out;
		}
		sm.step = sqlite3_column_int64(st, 0);
		sm.site = site;
		sm.n = n;
		sm.x = x;
		sm.y = y;
		sm.token = tok;
		sm.channel = ch;
		count = 1;
		cb(ctx, &sm);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = store__fail(s, rc, "samples get", err);
	}
out:
	store__done(st);
	return rc < 0 ? rc : count;
}

int store_sample_sites(struct store *s, int64_t exp_id,
		       int (*cb)(void *ctx, const char *site, int64_t step), void *ctx,
		       struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, count = 0;

	if (!s || !cb)
		return store__err(err, STORE_EINVAL, "sample sites: bad arguments");
	rc = store__stmt(s, ST_SAMPLE_SITES,
			 "SELECT site, max(step) FROM samples WHERE exp_id = ?1 "
			 "GROUP BY site ORDER BY site", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, exp_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		count++;
		if (cb(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1))) {
			rc = SQLITE_DONE;   /* the callback stopped the scan */
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "sample sites", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}
