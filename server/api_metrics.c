/*
 * api_metrics.c — the read side of training metrics: the list of an experiment's series, one
 * scalar series downsampled on the server to at most N buckets (min, max, mean, last of each, so
 * spikes survive), depth profiles (one vector per site, or a steps × layers matrix for heatmaps),
 * norm input/output samples, the comparison of one metric over many runs grouped by a spec field,
 * and the full CSV/NDJSON export of every scalar point, streamed page by page in constant memory.
 * Owns nothing beyond each request: every handler opens its own read-only store connection
 * (api_reader) and closes it before returning, except the export, whose stream state owns its
 * connection until the response is done. Handlers run on HTTP connection threads.
 *
 * Metric names travel as query parameters (…/metrics?name=loss, …/depth?stat=resid.var): the
 * router matches only numeric {id} segments and whole literal segments, and names contain dots.
 * Large arrays are written as text into a capped buffer rather than built as cJSON trees (a
 * 100,000-bucket series or a 1M-pair sample would cost hundreds of MB as cJSON nodes).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "nl.h"
#include "probes.h"

#define NAME_MAX_LEN 255             /* metric name / site / group_by path, bytes */
#define NAMES_MAX 65536              /* series one experiment may list */
#define BODY_MAX ((size_t)128 << 20) /* largest JSON body this file builds */
#define BUCKETS_DEFAULT 1000
#define MATRIX_STEPS_MAX 2000
#define MATRIX_STEPS_DEFAULT 200
#define COMPARE_IDS_MAX 200
#define COMPARE_BUCKETS_MAX 5000     /* groups × buckets × 3 accumulators stay a few MB */
#define COMPARE_BUCKETS_DEFAULT 500
#define EXPORT_PAGE 1000             /* points per store read while exporting */

/* ---------- a growable text buffer with a hard cap ---------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;                     /* an append failed (no memory, or over BODY_MAX) */
	int over;                    /* ... because of BODY_MAX */
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		if (b->len + n + 1 > BODY_MAX) {
			b->oom = b->over = 1;
			return;
		}
		size_t ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > BODY_MAX)
			ncap = BODY_MAX;
		char *q = nl_realloc(b->p, ncap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		b->oom = 1;   /* every caller formats short items; never truncate silently */
	else
		sb_put(b, tmp, (size_t)n);
}

/* A JSON number, shortest of %.15g/%.17g that reads back exactly; non-finite → null. */
static void sb_num(struct sbuf *b, double v)
{
	char tmp[40];
	if (!isfinite(v)) {
		sb_put(b, "null", 4);
		return;
	}
	snprintf(tmp, sizeof tmp, "%.15g", v);
	if (strtod(tmp, NULL) != v)
		snprintf(tmp, sizeof tmp, "%.17g", v);
	sb_str(b, tmp);
}

/* A float sample: 9 significant digits read back to the same float. */
static void sb_float(struct sbuf *b, float v)
{
	if (!isfinite(v))
		sb_put(b, "null", 4);
	else
		sb_printf(b, "%.9g", (double)v);
}

static void sb_i64(struct sbuf *b, int64_t v)
{
	sb_printf(b, "%" PRId64, v);
}

/* A JSON string literal. */
static void sb_jstr(struct sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char e[2] = { '\\', (char)*c };
			sb_put(b, e, 2);
		} else if (*c < 0x20) {
			sb_printf(b, "\\u%04x", *c);
		} else {
			sb_put(b, (const char *)c, 1);
		}
	}
	sb_put(b, "\"", 1);
}

/* Answers with the buffer's text (200), or 500/422 when it could not be built. Frees b. */
static void sb_reply(struct http_response *r, struct sbuf *b)
{
	if (b->oom) {
		if (b->over) {
			char d[160];
			snprintf(d, sizeof d, "the response would be larger than the limit of %zu MiB; "
				 "ask for fewer buckets, steps or samples", BODY_MAX >> 20);
			http_problem(r, 422, "response_too_large", d, NULL, NULL, 0);
		} else {
			http_problem(r, 500, "internal", "out of memory building the response", NULL, NULL,
				     0);
		}
		nl_free(b->p);
	} else {
		http_json_take(r, 200, b->p);
	}
	memset(b, 0, sizeof *b);
}

/* ---------- request pieces ---------- */

static void bad_param(struct http_response *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void bad_param(struct http_response *r, const char *code, const char *fmt, ...)
{
	char d[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d, sizeof d, fmt, ap);
	va_end(ap);
	http_problem(r, 400, code, d, NULL, NULL, 0);
}

/* A required (need=1) or optional name-like query parameter of 1..NAME_MAX_LEN bytes; NULL when
 * absent-and-optional or after answering 400 (*bad = 1). */
static const char *query_name(const struct http_request *req, struct http_response *r,
			      const char *key, int need, int *bad)
{
	*bad = 0;
	/* /metrics/{name} and /depth/{stat}: the path segment wins over the query form */
	if (req->name[0] && (strcmp(key, "name") == 0 || strcmp(key, "stat") == 0))
		return req->name;
	const char *v = http_query(req, key);
	if (!v || !*v) {
		if (need) {
			bad_param(r, "missing_parameter", "query parameter %s is required", key);
			*bad = 1;
		}
		return NULL;
	}
	if (strlen(v) > NAME_MAX_LEN) {
		bad_param(r, "invalid_parameter", "query parameter %s is longer than %d bytes", key,
			  NAME_MAX_LEN);
		*bad = 1;
		return NULL;
	}
	return v;
}

/* step=latest (or absent) → -1, else an integer 0..INT64_MAX. Returns -1 after answering 400. */
static int query_step(const struct http_request *req, struct http_response *r, int64_t *step)
{
	const char *v = http_query(req, "step");
	if (!v || !*v || strcmp(v, "latest") == 0) {
		*step = -1;
		return 0;
	}
	if (api_query_int(req, r, "step", 0, INT64_MAX, -1, step) != 0) {
		/* restate the accepted forms, which api_query_int cannot know about */
		bad_param(r, "invalid_parameter",
			  "query parameter step=%.40s must be \"latest\" or an integer in 0..%" PRId64,
			  v, INT64_MAX);
		return -1;
	}
	return 0;
}

/* Opens the reader and checks that experiment id exists and that req may read it; NULL after
 * answering. */
static struct store *open_experiment(struct daemon *d, const struct http_request *req,
				     struct http_response *r, int64_t id,
				     struct store_experiment *keep)
{
	struct store_experiment e;
	struct store_err err = { 0 };
	char what[64];
	struct store *s = api_reader(d, r);
	if (!s)
		return NULL;
	memset(&e, 0, sizeof e);
	snprintf(what, sizeof what, "experiment %" PRId64, id);
	if (store_experiment_get(s, id, &e, &err) != 0) {
		api_store_problem(r, &err, what);
		store_close(s);
		return NULL;
	}
	if (api_hide_unless_readable(req, r, e.owner, what)) {
		store_experiment_clear(&e);
		store_close(s);
		return NULL;
	}
	if (keep)
		*keep = e;
	else
		store_experiment_clear(&e);
	return s;
}

/* ---------- the names of an experiment's series ---------- */

struct name_list {
	char **v;
	int n, cap;
};

struct series_names {
	struct name_list scalar, depth;
	int oom;
};

static int list_add(struct name_list *l, const char *name)
{
	if (l->n == l->cap) {
		int ncap = l->cap ? 2 * l->cap : 32;
		char **v = nl_realloc(l->v, (size_t)ncap * sizeof *v);
		if (!v)
			return -1;
		l->v = v;
		l->cap = ncap;
	}
	if (!(l->v[l->n] = nl_strdup(name)))
		return -1;
	l->n++;
	return 0;
}

static void list_free(struct name_list *l)
{
	for (int i = 0; i < l->n; i++)
		nl_free(l->v[i]);
	nl_free(l->v);
	memset(l, 0, sizeof *l);
}

static int list_has(const struct name_list *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return 1;
	return 0;
}

static int names_cb(void *ctx, const char *name, const char *kind)
{
	struct series_names *sn = ctx;
	struct name_list *l = strcmp(kind, "depth") == 0 ? &sn->depth : &sn->scalar;
	if (sn->scalar.n + sn->depth.n >= NAMES_MAX || list_add(l, name) != 0) {
		sn->oom = 1;
		return 1;
	}
	return 0;
}

static void names_free(struct series_names *sn)
{
	list_free(&sn->scalar);
	list_free(&sn->depth);
}

/* Fills sn with the experiment's scalar and depth names; -1 after answering 500. */
static int names_load(struct store *s, int64_t id, struct series_names *sn, struct http_response *r)
{
	struct store_err err = { 0 };
	memset(sn, 0, sizeof *sn);
	if (store_metric_names(s, id, names_cb, sn, &err) < 0) {
		api_store_problem(r, &err, "metric names");
		names_free(sn);
		return -1;
	}
	if (sn->oom) {
		char d[128];
		snprintf(d, sizeof d, "out of memory, or more than %d series, listing metric names",
			 NAMES_MAX);
		http_problem(r, 500, "internal", d, NULL, NULL, 0);
		names_free(sn);
		return -1;
	}
	return 0;
}

/* 404 unknown_metric; `other` names where the name does exist (NULL = nowhere). */
static void unknown_metric(struct http_response *r, int64_t id, const char *kind, const char *name,
			   const char *other)
{
	char d[800];
	int n = snprintf(d, sizeof d, "experiment %" PRId64 " has no %s named \"%s\"", id, kind,
			 name);
	if (other && n > 0 && (size_t)n < sizeof d)
		snprintf(d + n, sizeof d - (size_t)n, " (it has such a series: GET /api/v1/"
			 "experiments/%" PRId64 "/%s=%s)", id, other, name);
	http_problem(r, 404, "unknown_metric", d, NULL, NULL, 0);
}

/* ---------- GET /api/v1/experiments/{id}/metrics[?name=…] ---------- */

static int sites_list_cb(void *ctx, const char *site, int64_t step)
{
	struct sbuf *b = ctx;
	if (b->len && b->p[b->len - 1] != '[')
		sb_put(b, ",", 1);
	/* the store reports the newest step of each site only (store_sample_sites) */
	sb_str(b, "{\"site\":");
	sb_jstr(b, site);
	sb_str(b, ",\"latest_step\":");
	sb_i64(b, step);
	sb_str(b, ",\"steps\":[");
	sb_i64(b, step);
	sb_str(b, "]}");
	return b->oom;
}

static void names_json(struct sbuf *b, const struct name_list *l)
{
	sb_put(b, "[", 1);
	for (int i = 0; i < l->n; i++) {
		if (i)
			sb_put(b, ",", 1);
		sb_jstr(b, l->v[i]);
	}
	sb_put(b, "]", 1);
}

static void metrics_list(struct store *s, int64_t id, struct http_response *r)
{
	struct series_names sn;
	struct store_err err = { 0 };
	struct sbuf b = { 0 };
	if (names_load(s, id, &sn, r) != 0)
		return;
	sb_printf(&b, "{\"id\":%" PRId64 ",\"scalars\":", id);
	names_json(&b, &sn.scalar);
	sb_str(&b, ",\"depth\":");
	names_json(&b, &sn.depth);
	sb_str(&b, ",\"samples\":[");
	int rc = store_sample_sites(s, id, sites_list_cb, &b, &err);
	sb_str(&b, "]}");
	names_free(&sn);
	if (rc < 0) {
		nl_free(b.p);
		api_store_problem(r, &err, "sample sites");
		return;
	}
	sb_reply(r, &b);
}

/* ---------- one scalar series, downsampled ---------- */

struct bucket_cols {
	struct store_bucket *b;
	int n, cap;
	int oom;
};

static int bucket_cb(void *ctx, const struct store_bucket *bk)
{
	struct bucket_cols *c = ctx;
	if (c->n == c->cap) {
		c->oom = 1;   /* more buckets than asked for: never answer with more points */
		return 1;
	}
	c->b[c->n++] = *bk;
	return 0;
}

static void series_get(struct store *s, int64_t id, const char *name,
		       const struct http_request *req, struct http_response *r)
{
	struct series_names sn;
	struct store_err err = { 0 };
	struct bucket_cols c = { 0 };
	struct sbuf b = { 0 };
	int64_t from, to, nb;
	if (api_query_int(req, r, "from", 0, INT64_MAX, 0, &from) != 0 ||
	    api_query_int(req, r, "to", -1, INT64_MAX, -1, &to) != 0 ||
	    api_query_int(req, r, "buckets", 1, STORE_BUCKETS_MAX, BUCKETS_DEFAULT, &nb) != 0)
		return;
	if (to >= 0 && to < from) {
		bad_param(r, "invalid_range", "query parameter to=%" PRId64 " is below from=%" PRId64,
			  to, from);
		return;
	}
	if (names_load(s, id, &sn, r) != 0)
		return;
	int known = list_has(&sn.scalar, name), is_depth = list_has(&sn.depth, name);
	names_free(&sn);
	if (!known) {
		unknown_metric(r, id, "scalar metric", name, is_depth ? "depth?stat" : NULL);
		return;
	}
	c.cap = (int)nb;
	c.b = nl_malloc((size_t)nb * sizeof *c.b);
	if (!c.b) {
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	int rc = store_metric_buckets(s, id, name, from, to, (int)nb, bucket_cb, &c, &err);
	if (rc < 0) {
		api_store_problem(r, &err, "metric buckets");
		goto out;
	}
	if (c.oom) {
		http_problem(r, 500, "internal", "the store returned more buckets than asked for",
			     NULL, NULL, 0);
		goto out;
	}
	sb_printf(&b, "{\"id\":%" PRId64 ",\"name\":", id);
	sb_jstr(&b, name);
	sb_printf(&b, ",\"from\":%" PRId64 ",\"to\":", from);
	if (to >= 0)
		sb_i64(&b, to);
	else
		sb_str(&b, "null");
	sb_printf(&b, ",\"max_buckets\":%" PRId64 ",\"buckets\":%d", nb, c.n);
	static const char *const cols[] = { "step", "step_first", "min", "max", "mean", "last", "n" };
	for (int k = 0; k < 7; k++) {
		sb_printf(&b, ",\"%s\":[", cols[k]);
		for (int i = 0; i < c.n; i++) {
			const struct store_bucket *x = &c.b[i];
			if (i)
				sb_put(&b, ",", 1);
			switch (k) {
			case 0: sb_i64(&b, x->step_last); break;
			case 1: sb_i64(&b, x->step_first); break;
			case 2: sb_num(&b, x->min); break;
			case 3: sb_num(&b, x->max); break;
			case 4: sb_num(&b, x->mean); break;
			case 5: sb_num(&b, x->last); break;
			default: sb_i64(&b, x->n); break;
			}
		}
		sb_put(&b, "]", 1);
	}
	sb_put(&b, "}", 1);
	sb_reply(r, &b);
out:
	nl_free(c.b);
}

static void metrics_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	int64_t id = req->params[0];
	int bad;
	const char *name = query_name(req, r, "name", 0, &bad);
	if (bad)
		return;
	struct store *s = open_experiment(ctx, req, r, id, NULL);
	if (!s)
		return;
	if (name)
		series_get(s, id, name, req, r);
	else
		metrics_list(s, id, r);
	store_close(s);
}

/* ---------- GET /api/v1/experiments/{id}/depth?stat=…&step=…[&form=matrix] ---------- */

struct depth_row {
	int64_t step;
	double *v;
	int n, found;
};

static int depth_row_cb(void *ctx, int64_t step, const double *v, int n)
{
	struct depth_row *d = ctx;
	nl_free(d->v);
	d->v = nl_malloc((size_t)n * sizeof *v);
	if (!d->v)
		return 1;
	memcpy(d->v, v, (size_t)n * sizeof *v);
	d->n = n;
	d->step = step;
	d->found = 1;
	return 1;
}

static void sb_vec(struct sbuf *b, const double *v, int n)
{
	sb_put(b, "[", 1);
	for (int i = 0; i < n; i++) {
		if (i)
			sb_put(b, ",", 1);
		sb_num(b, v[i]);
	}
	sb_put(b, "]", 1);
}

static void step_not_found(struct http_response *r, int64_t id, const char *what, int64_t step)
{
	char d[400];
	if (step < 0)
		snprintf(d, sizeof d, "experiment %" PRId64 " has no %s yet", id, what);
	else
		snprintf(d, sizeof d, "experiment %" PRId64 " has no %s at step %" PRId64, id, what,
			 step);
	http_problem(r, 404, "step_not_found", d, NULL, NULL, 0);
}

static int depth_fetch(struct store *s, int64_t id, const char *name, int64_t step,
		       struct depth_row *row, struct http_response *r)
{
	struct store_err err = { 0 };
	memset(row, 0, sizeof *row);
	if (store_depth_get(s, id, name, step, 0, depth_row_cb, row, &err) < 0) {
		api_store_problem(r, &err, "depth rows");
		return -1;
	}
	return 0;
}

/* A full depth metric name: {"name","step","layers","values":[L]}. */
static void depth_one(struct store *s, int64_t id, const char *name, int64_t step,
		      struct http_response *r)
{
	struct depth_row row;
	struct sbuf b = { 0 };
	if (depth_fetch(s, id, name, step, &row, r) != 0)
		return;
	if (!row.found) {
		char what[NAME_MAX_LEN + 16];
		snprintf(what, sizeof what, "depth row %s", name);
		step_not_found(r, id, what, step);
		nl_free(row.v);
		return;
	}
	sb_printf(&b, "{\"id\":%" PRId64 ",\"name\":", id);
	sb_jstr(&b, name);
	sb_printf(&b, ",\"step\":%" PRId64 ",\"layers\":%d,\"values\":", row.step, row.n);
	sb_vec(&b, row.v, row.n);
	sb_put(&b, "}", 1);
	nl_free(row.v);
	sb_reply(r, &b);
}

/*
 * A bare statistic: the depth metrics named "<site>.<stat>", one vector per site, all at one
 * step. For step=latest that is the newest step any site has; a site without a row there is left
 * out rather than shown from another step.
 */
static void depth_stat(struct store *s, int64_t id, const char *stat, int64_t step,
		       const struct name_list *depth, struct http_response *r)
{
	size_t sl = strlen(stat);
	struct depth_row *rows = nl_calloc((size_t)(depth->n ? depth->n : 1), sizeof *rows);
	int64_t at = -1;
	int sites = 0;
	struct sbuf b = { 0 };
	if (!rows) {
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	for (int i = 0; i < depth->n; i++) {
		const char *nm = depth->v[i];
		size_t nl = strlen(nm);
		if (nl <= sl + 1 || nm[nl - sl - 1] != '.' || strcmp(nm + nl - sl, stat) != 0)
			continue;
		sites++;
		if (depth_fetch(s, id, nm, step, &rows[i], r) != 0)
			goto out;
		if (rows[i].found && rows[i].step > at)
			at = rows[i].step;
	}
	if (!sites) {
		unknown_metric(r, id, "depth statistic", stat, NULL);
		goto out;
	}
	if (at < 0) {
		char what[64];
		snprintf(what, sizeof what, "depth rows of %.20s", stat);
		step_not_found(r, id, what, step);
		goto out;
	}
	sb_printf(&b, "{\"id\":%" PRId64 ",\"stat\":", id);
	sb_jstr(&b, stat);
	sb_printf(&b, ",\"step\":%" PRId64 ",\"sites\":{", at);
	int first = 1;
	for (int i = 0; i < depth->n; i++) {
		if (!rows[i].found || rows[i].step != at)
			continue;
		char site[NAME_MAX_LEN + 1];
		snprintf(site, sizeof site, "%.*s", (int)(strlen(depth->v[i]) - sl - 1), depth->v[i]);
		if (!first)
			sb_put(&b, ",", 1);
		first = 0;
		sb_jstr(&b, site);
		sb_put(&b, ":", 1);
		sb_vec(&b, rows[i].v, rows[i].n);
	}
	sb_str(&b, "}}");
	sb_reply(r, &b);
out:
	for (int i = 0; i < depth->n; i++)
		nl_free(rows[i].v);
	nl_free(rows);
}

struct matrix {
	int64_t rows;                /* rows the first pass counted */
	int64_t m;                   /* rows to keep */
	int64_t i, k;                /* row index, next kept row's ordinal */
	int layers;
	struct sbuf steps, values;
};

static int count_cb(void *ctx, int64_t step, const double *v, int n)
{
	(void)step;
	(void)v;
	(void)n;
	((struct matrix *)ctx)->rows++;
	return 0;
}

/* Index of the k-th kept row out of rows, m kept: evenly spread, first and last included. */
static int64_t kept_index(int64_t k, int64_t m, int64_t rows)
{
	if (m >= rows)
		return k;
	if (m == 1)
		return rows - 1;   /* a single row: the newest */
	return k * (rows - 1) / (m - 1);
}

static int matrix_cb(void *ctx, int64_t step, const double *v, int n)
{
	struct matrix *mx = ctx;
	int64_t i = mx->i++;
	if (mx->k >= mx->m)
		return 1;
	if (i != kept_index(mx->k, mx->m, mx->rows))
		return 0;
	if (mx->k) {
		sb_put(&mx->steps, ",", 1);
		sb_put(&mx->values, ",", 1);
	}
	mx->k++;
	if (n > mx->layers)
		mx->layers = n;
	sb_i64(&mx->steps, step);
	sb_vec(&mx->values, v, n);
	return mx->steps.oom || mx->values.oom;
}

/* form=matrix: {"name","steps":[S],"layers":L,"values":[[L]…S]} over at most max_steps rows. */
static void depth_matrix(struct store *s, int64_t id, const char *name,
			 const struct http_request *req, struct http_response *r)
{
	struct matrix mx;
	struct store_err err = { 0 };
	struct sbuf b = { 0 };
	int64_t max_steps;
	if (api_query_int(req, r, "max_steps", 1, MATRIX_STEPS_MAX, MATRIX_STEPS_DEFAULT,
			  &max_steps) != 0)
		return;
	memset(&mx, 0, sizeof mx);
	/* two passes: the count, then the kept rows. Rows appended between them (a running run)
	 * are past the counted ones and simply not shown. */
	if (store_depth_get(s, id, name, -1, 1, count_cb, &mx, &err) < 0) {
		api_store_problem(r, &err, "depth rows");
		goto out;
	}
	mx.m = mx.rows < max_steps ? mx.rows : max_steps;
	if (store_depth_get(s, id, name, -1, 1, matrix_cb, &mx, &err) < 0) {
		api_store_problem(r, &err, "depth rows");
		goto out;
	}
	if (mx.steps.oom || mx.values.oom) {
		b.oom = 1;
		b.over = mx.steps.over || mx.values.over;
		sb_reply(r, &b);
		goto out;
	}
	sb_printf(&b, "{\"id\":%" PRId64 ",\"name\":", id);
	sb_jstr(&b, name);
	sb_printf(&b, ",\"stored_steps\":%" PRId64 ",\"layers\":%d,\"steps\":[", mx.rows, mx.layers);
	if (mx.steps.p)
		sb_put(&b, mx.steps.p, mx.steps.len);
	sb_str(&b, "],\"values\":[");
	if (mx.values.p)
		sb_put(&b, mx.values.p, mx.values.len);
	sb_str(&b, "]}");
	sb_reply(r, &b);
out:
	nl_free(mx.steps.p);
	nl_free(mx.values.p);
}

static int is_bare_stat(const char *v)
{
	for (int q = 0; q < PROBE_STAT_COUNT; q++)
		if (strcmp(v, probe_stat_names[q]) == 0)
			return 1;
	return 0;
}

static void depth_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	int64_t id = req->params[0], step;
	struct series_names sn;
	int bad, matrix = 0;
	/* `name` reads better for a full metric name; both mean the same */
	const char *stat = query_name(req, r, "stat", 0, &bad);
	if (bad)
		return;
	if (!stat) {
		stat = query_name(req, r, "name", 0, &bad);
		if (bad)
			return;
	}
	if (!stat) {
		bad_param(r, "missing_parameter", "query parameter stat is required: a depth metric "
			  "name such as resid.var, or a statistic (var, var_tok, rms, maxabs, medabs, "
			  "top1_med, kurt) for every site");
		return;
	}
	const char *form = http_query(req, "form");
	if (form && *form) {
		if (strcmp(form, "matrix") == 0) {
			matrix = 1;
		} else if (strcmp(form, "vector") != 0) {
			bad_param(r, "invalid_parameter",
				  "query parameter form=%.40s must be vector or matrix", form);
			return;
		}
	}
	if (query_step(req, r, &step) != 0)
		return;
	int bare = is_bare_stat(stat);
	if (matrix && bare) {
		bad_param(r, "invalid_parameter", "form=matrix needs one depth metric name such as "
			  "resid.%s, not the bare statistic %s", stat, stat);
		return;
	}
	struct store *s = open_experiment(ctx, req, r, id, NULL);
	if (!s)
		return;
	if (names_load(s, id, &sn, r) != 0)
		goto out;
	if (bare) {
		depth_stat(s, id, stat, step, &sn.depth, r);
	} else if (!list_has(&sn.depth, stat)) {
		unknown_metric(r, id, "depth metric", stat,
			       list_has(&sn.scalar, stat) ? "metrics?name" : NULL);
	} else if (matrix) {
		depth_matrix(s, id, stat, req, r);
	} else {
		depth_one(s, id, stat, step, r);
	}
	names_free(&sn);
out:
	store_close(s);
}

/* ---------- GET /api/v1/experiments/{id}/samples[?site=…&step=…] ---------- */

struct sample_out {
	struct sbuf *b;
	int found;
};

static int samples_cb(void *ctx, const struct store_samples *sm)
{
	struct sample_out *o = ctx;
	struct sbuf *b = o->b;
	o->found = 1;
	sb_str(b, "\"site\":");
	sb_jstr(b, sm->site);
	sb_printf(b, ",\"step\":%" PRId64 ",\"n\":%d", sm->step, sm->n);
	for (int k = 0; k < 4; k++) {
		static const char *const key[4] = { "x", "y", "token", "channel" };
		const int32_t *iv = k == 2 ? sm->token : sm->channel;
		sb_printf(b, ",\"%s\":", key[k]);
		if (k >= 2 && !iv) {
			sb_str(b, "null");
			continue;
		}
		sb_put(b, "[", 1);
		for (int i = 0; i < sm->n; i++) {
			if (i)
				sb_put(b, ",", 1);
			if (k < 2)
				sb_float(b, (k ? sm->y : sm->x)[i]);
			else
				sb_printf(b, "%" PRId32, iv[i]);
		}
		sb_put(b, "]", 1);
	}
	return 0;
}

struct site_find {
	const char *site;
	int found;
};

static int site_find_cb(void *ctx, const char *site, int64_t step)
{
	struct site_find *f = ctx;
	(void)step;
	if (strcmp(site, f->site) == 0)
		f->found = 1;
	return f->found;
}

static void samples_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	int64_t id = req->params[0], step;
	struct store_err err = { 0 };
	struct sbuf b = { 0 };
	int bad;
	const char *site = query_name(req, r, "site", 0, &bad);
	if (bad || query_step(req, r, &step) != 0)
		return;
	struct store *s = open_experiment(ctx, req, r, id, NULL);
	if (!s)
		return;
	sb_printf(&b, "{\"id\":%" PRId64 ",", id);
	if (!site) {
		sb_str(&b, "\"sites\":[");
		if (store_sample_sites(s, id, sites_list_cb, &b, &err) < 0) {
			api_store_problem(r, &err, "sample sites");
			goto fail;
		}
		sb_str(&b, "]}");
		sb_reply(r, &b);
		goto out;
	}
	struct sample_out o = { &b, 0 };
	if (store_samples_get(s, id, site, step, samples_cb, &o, &err) < 0) {
		api_store_problem(r, &err, "samples");
		goto fail;
	}
	if (!o.found) {
		struct site_find f = { site, 0 };
		char d[400], what[NAME_MAX_LEN + 32];
		if (store_sample_sites(s, id, site_find_cb, &f, &err) < 0) {
			api_store_problem(r, &err, "sample sites");
		} else if (!f.found) {
			snprintf(d, sizeof d, "experiment %" PRId64 " has no samples of site \"%s\" "
				 "(the list: /api/v1/experiments/%" PRId64 "/samples)", id, site, id);
			http_problem(r, 404, "unknown_site", d, NULL, NULL, 0);
		} else {
			snprintf(what, sizeof what, "samples of %s", site);
			step_not_found(r, id, what, step);
		}
		goto fail;
	}
	sb_put(&b, "}", 1);
	sb_reply(r, &b);
	goto out;
fail:
	nl_free(b.p);
out:
	store_close(s);
}

/* ---------- GET /api/v1/compare?ids=…&metric=…&group_by=…&buckets=… ---------- */

/* Running mean and sum of squared deviations (Welford), per bucket. */
struct welford {
	int64_t n;
	double mean, m2;
};

static void wf_add(struct welford *w, double x)
{
	double d = x - w->mean;
	w->n++;
	w->mean += d / (double)w->n;
	w->m2 += d * (x - w->mean);
}

/* Sample standard deviation (n − 1); NAN below two values. */
static double wf_std(const struct welford *w)
{
	return w->n >= 2 ? sqrt(w->m2 / (double)(w->n - 1)) : NAN;
}

struct cmp_run {
	int64_t id;
	int64_t step;                /* experiment's last stored step (a hint for the max step) */
	int group;
	int64_t max_step;            /* of the metric; -1 = the run has no points of it */
};

struct cmp_group {
	char *key;
	int64_t ids[COMPARE_IDS_MAX];
	int nids;
	struct welford *w;           /* [buckets] */
	struct welford final;
};

struct cmp_grid {
	int64_t span, q, rem, nb;
	double *mean;                /* [nb]: the current run's bucket means, NAN = none */
	double last;                 /* the current run's last finite value */
};

static int64_t grid_bound(const struct cmp_grid *g, int64_t b)
{
	return b * g->q + (b * g->rem) / g->nb;   /* as store_metric_buckets cuts its ranges */
}

static int cmp_bucket_cb(void *ctx, const struct store_bucket *bk)
{
	struct cmp_grid *g = ctx;
	int64_t b = (int64_t)((double)bk->step_first * (double)g->nb / (double)g->span);
	if (b >= g->nb)
		b = g->nb - 1;
	if (b < 0)
		b = 0;
	while (b + 1 < g->nb && grid_bound(g, b + 1) <= bk->step_first)
		b++;
	while (b > 0 && grid_bound(g, b) > bk->step_first)
		b--;
	g->mean[b] = bk->mean;
	if (isfinite(bk->last))
		g->last = bk->last;
	return 0;
}

static int step_last_cb(void *ctx, const struct store_bucket *bk)
{
	*(int64_t *)ctx = bk->step_last;
	return 1;
}

/* Parses "1,2,3" into unique positive ids. Returns the count, or -1 after answering 400. */
static int parse_ids(const char *v, int64_t *ids, struct http_response *r)
{
	int n = 0;
	const char *p = v;
	if (!v || !*v) {
		bad_param(r, "missing_parameter", "query parameter ids is required: up to %d "
			  "comma-separated experiment ids", COMPARE_IDS_MAX);
		return -1;
	}
	while (*p) {
		int64_t x = 0;
		int digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 19) {
			x = x * 10 + (*p++ - '0');
			digits++;
		}
		if (!digits || x <= 0 || (*p && *p != ',') || (*p == ',' && !p[1])) {
			bad_param(r, "invalid_parameter", "query parameter ids must be up to %d "
				  "comma-separated positive integers (got %.60s)", COMPARE_IDS_MAX, v);
			return -1;
		}
		if (*p == ',')
			p++;
		int dup = 0;
		for (int i = 0; i < n; i++)
			dup |= ids[i] == x;
		if (dup)
			continue;
		if (n == COMPARE_IDS_MAX) {
			bad_param(r, "too_many_ids", "query parameter ids lists more than %d experiments",
				  COMPARE_IDS_MAX);
			return -1;
		}
		ids[n++] = x;
	}
	return n;
}

/* group_by: dotted path of [A-Za-z0-9_] segments, at most 8. 0 ok, -1 after answering. */
static int check_path(const char *path, struct http_response *r)
{
	int segs = 1, seglen = 0;
	for (const char *p = path; *p; p++) {
		if (*p == '.') {
			if (!seglen)
				break;
			segs++;
			seglen = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '_') {
			seglen++;
		} else {
			seglen = 0;
			break;
		}
	}
	if (!seglen || segs > 8) {
		bad_param(r, "invalid_parameter", "query parameter group_by=%.60s must be a dotted "
			  "path of at most 8 fields into the spec, e.g. norm.type or seed", path);
		return -1;
	}
	return 0;
}

/* The group key of a run: the value at the dotted path of its canonical spec, as text.
 * Returns a nl_malloc'd string, NULL with *missing = 1 when the path does not exist. */
static char *spec_key(const char *spec, const char *path, int *missing)
{
	char seg[NAME_MAX_LEN + 1], num[40];
	char *out = NULL;
	cJSON *root = spec ? cJSON_Parse(spec) : NULL, *j = root;
	*missing = 0;
	for (const char *p = path; j && *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		snprintf(seg, sizeof seg, "%.*s", (int)l, p);
		j = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, seg) : NULL;
		p += l + (dot ? 1 : 0);
	}
	if (!j) {
		*missing = 1;
	} else if (cJSON_IsString(j)) {
		out = nl_strdup(j->valuestring);
	} else if (cJSON_IsNumber(j)) {
		double v = j->valuedouble;
		if (v == floor(v) && fabs(v) < 9007199254740992.0)
			snprintf(num, sizeof num, "%.0f", v);
		else
			snprintf(num, sizeof num, "%.17g", v);
		out = nl_strdup(num);
	} else if (cJSON_IsBool(j)) {
		out = nl_strdup(cJSON_IsTrue(j) ? "true" : "false");
	} else if (cJSON_IsNull(j)) {
		out = nl_strdup("null");
	} else {
		char *t = cJSON_PrintUnformatted(j);
		out = t ? nl_strdup(t) : NULL;
		cJSON_free(t);
	}
	cJSON_Delete(root);
	return out;
}

static void compare_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	int64_t ids[COMPARE_IDS_MAX], nb;
	struct cmp_run runs[COMPARE_IDS_MAX];
	struct cmp_group *groups = NULL;
	struct cmp_grid g = { 0 };
	struct store_err err = { 0 };
	struct store *s = NULL;
	struct sbuf b = { 0 };
	int n, ng = 0, bad;
	int64_t grid_max = -1;
	const char *metric = query_name(req, r, "metric", 0, &bad);
	if (bad)
		return;
	metric = metric ? metric : "loss";
	const char *group_by = query_name(req, r, "group_by", 0, &bad);
	if (bad || (group_by && check_path(group_by, r) != 0))
		return;
	if ((n = parse_ids(http_query(req, "ids"), ids, r)) < 0 ||
	    api_query_int(req, r, "buckets", 1, COMPARE_BUCKETS_MAX, COMPARE_BUCKETS_DEFAULT,
			  &nb) != 0)
		return;
	if (!(s = api_reader(ctx, r)))
		return;
	groups = nl_calloc((size_t)n, sizeof *groups);
	g.mean = nl_malloc((size_t)nb * sizeof *g.mean);
	if (!groups || !g.mean)
		goto oom;

	/* 1. each run's group, and the largest step of the metric over all runs */
	for (int i = 0; i < n; i++) {
		struct store_experiment e;
		char idtxt[24], what[48], *key;
		int missing = 0;
		memset(&e, 0, sizeof e);
		snprintf(what, sizeof what, "experiment %" PRId64, ids[i]);
		if (store_experiment_get(s, ids[i], &e, &err) != 0) {
			api_store_problem(r, &err, what);
			goto out;
		}
		if (api_hide_unless_readable(req, r, e.owner, what)) {
			store_experiment_clear(&e);
			goto out;
		}
		runs[i] = (struct cmp_run){ ids[i], e.step, -1, -1 };
		if (group_by) {
			key = spec_key(e.spec, group_by, &missing);
		} else {
			snprintf(idtxt, sizeof idtxt, "%" PRId64, ids[i]);
			key = nl_strdup(idtxt);
		}
		store_experiment_clear(&e);
		if (missing) {
			bad_param(r, "invalid_parameter", "group_by=%s names no field of experiment "
				  "%" PRId64 "'s spec", group_by, ids[i]);
			goto out;
		}
		if (!key)
			goto oom;
		for (int k = 0; k < ng && runs[i].group < 0; k++)
			if (strcmp(groups[k].key, key) == 0)
				runs[i].group = k;
		if (runs[i].group < 0) {
			groups[ng].key = key;
			groups[ng].w = nl_calloc((size_t)nb, sizeof *groups[ng].w);
			if (!groups[ng].w)
				goto oom;
			runs[i].group = ng++;
		} else {
			nl_free(key);
		}
		struct cmp_group *gr = &groups[runs[i].group];
		gr->ids[gr->nids++] = ids[i];
		/* the experiment's step is where its series most likely end: scanning from there
		 * finds the last point without reading the whole series; else scan it all */
		int64_t last = -1;
		int rc = store_metric_buckets(s, ids[i], metric, runs[i].step > 0 ? runs[i].step : 0,
					      -1, 1, step_last_cb, &last, &err);
		if (rc == 0 && runs[i].step > 0)
			rc = store_metric_buckets(s, ids[i], metric, 0, -1, 1, step_last_cb, &last,
						  &err);
		if (rc < 0) {
			api_store_problem(r, &err, "metric buckets");
			goto out;
		}
		runs[i].max_step = last;
		if (last > grid_max)
			grid_max = last;
	}
	if (grid_max < 0) {
		char d[400];
		snprintf(d, sizeof d, "none of the %d experiments has points of metric \"%s\"", n,
			 metric);
		http_problem(r, 404, "unknown_metric", d, NULL, NULL, 0);
		goto out;
	}

	/* 2. one grid 0..grid_max in nb buckets for all runs; each run's bucket means fold into
	 * its group's per-bucket mean and deviation */
	g.span = grid_max + 1;
	g.nb = nb;
	g.q = g.span / nb;
	g.rem = g.span % nb;
	for (int i = 0; i < n; i++) {
		if (runs[i].max_step < 0)
			continue;
		struct cmp_group *gr = &groups[runs[i].group];
		for (int64_t k = 0; k < nb; k++)
			g.mean[k] = NAN;
		g.last = NAN;
		if (store_metric_buckets(s, runs[i].id, metric, 0, grid_max, (int)nb, cmp_bucket_cb,
					 &g, &err) < 0) {
			api_store_problem(r, &err, "metric buckets");
			goto out;
		}
		for (int64_t k = 0; k < nb; k++)
			if (isfinite(g.mean[k]))
				wf_add(&gr->w[k], g.mean[k]);
		if (isfinite(g.last))
			wf_add(&gr->final, g.last);
	}

	/* 3. columns over the buckets that any group has data in */
	sb_str(&b, "{\"metric\":");
	sb_jstr(&b, metric);
	sb_str(&b, ",\"group_by\":");
	if (group_by)
		sb_jstr(&b, group_by);
	else
		sb_str(&b, "null");
	sb_printf(&b, ",\"std_kind\":\"sample\",\"grid\":{\"from\":0,\"to\":%" PRId64 ",\"buckets\":%"
		  PRId64 "},\"step\":[", grid_max, nb);
	int first = 1;
	for (int64_t k = 0; k < nb; k++) {
		int any = 0;
		for (int j = 0; j < ng; j++)
			any |= groups[j].w[k].n > 0;
		if (!any)
			continue;
		if (!first)
			sb_put(&b, ",", 1);
		first = 0;
		sb_i64(&b, grid_bound(&g, k + 1) - 1);
	}
	sb_str(&b, "],\"groups\":[");
	for (int j = 0; j < ng; j++) {
		sb_str(&b, j ? ",{\"key\":" : "{\"key\":");
		sb_jstr(&b, groups[j].key);
		sb_str(&b, ",\"ids\":[");
		for (int i = 0; i < groups[j].nids; i++)
			sb_printf(&b, i ? ",%" PRId64 : "%" PRId64, groups[j].ids[i]);
		sb_put(&b, "]", 1);
		for (int col = 0; col < 3; col++) {
			static const char *const cols[3] = { "mean", "std", "n" };
			sb_printf(&b, ",\"%s\":[", cols[col]);
			first = 1;
			for (int64_t k = 0; k < nb; k++) {
				int any = 0;
				for (int jj = 0; jj < ng; jj++)
					any |= groups[jj].w[k].n > 0;
				if (!any)
					continue;
				const struct welford *w = &groups[j].w[k];
				if (!first)
					sb_put(&b, ",", 1);
				first = 0;
				if (col == 0)
					sb_num(&b, w->n ? w->mean : NAN);
				else if (col == 1)
					sb_num(&b, wf_std(w));
				else
					sb_i64(&b, w->n);
			}
			sb_put(&b, "]", 1);
		}
		sb_put(&b, "}", 1);
	}
	/* "loss_" whatever the metric: the field names are part of the contract */
	sb_str(&b, "],\"final\":[");
	for (int j = 0; j < ng; j++) {
		sb_str(&b, j ? ",{\"key\":" : "{\"key\":");
		sb_jstr(&b, groups[j].key);
		sb_str(&b, ",\"loss_mean\":");
		sb_num(&b, groups[j].final.n ? groups[j].final.mean : NAN);
		sb_str(&b, ",\"loss_std\":");
		sb_num(&b, wf_std(&groups[j].final));
		sb_printf(&b, ",\"n\":%" PRId64 "}", groups[j].final.n);
	}
	sb_str(&b, "]}");
	sb_reply(r, &b);
	goto out;
oom:
	http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
out:
	for (int j = 0; groups && j < ng; j++) {
		nl_free(groups[j].key);
		nl_free(groups[j].w);
	}
	nl_free(groups);
	nl_free(g.mean);
	nl_free(b.p);
	store_close(s);
}

/* ---------- GET /api/v1/experiments/{id}/metrics.csv | metrics.ndjson ---------- */

/*
 * The stream state: its own reader connection (the stream outlives the handler), the names, and
 * where it is (name index, last step sent). Each refill reads one page of EXPORT_PAGE points and
 * formats it, so memory stays constant whatever the run's size, and no read transaction stays
 * open while the client is slow.
 */
struct export {
	struct store *s;
	int64_t id;
	int ndjson;
	struct name_list names;
	int ni;                      /* current name */
	int64_t after;               /* last step sent of the current name */
	int header_sent;
	struct sbuf out;
	size_t pos;                  /* bytes of out already handed to the connection */
};

static void csv_field(struct sbuf *b, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		sb_str(b, s);
		return;
	}
	sb_put(b, "\"", 1);
	for (const char *c = s; *c; c++) {
		if (*c == '"')
			sb_put(b, "\"", 1);
		sb_put(b, c, 1);
	}
	sb_put(b, "\"", 1);
}

static int export_point_cb(void *ctx, int64_t step, double v)
{
	struct export *x = ctx;
	const char *name = x->names.v[x->ni];
	char num[40] = "";
	x->after = step;
	if (isfinite(v))
		snprintf(num, sizeof num, "%.17g", v);   /* round-trips every double */
	if (x->ndjson) {
		sb_printf(&x->out, "{\"step\":%" PRId64 ",\"name\":", step);
		sb_jstr(&x->out, name);
		sb_str(&x->out, ",\"value\":");
		sb_str(&x->out, num[0] ? num : "null");
		sb_str(&x->out, "}\n");
	} else {
		sb_printf(&x->out, "%" PRId64 ",", step);
		csv_field(&x->out, name);
		sb_printf(&x->out, ",%s\n", num);
	}
	return x->out.oom;
}

/* Formats the next bytes into x->out. 1 = some, 0 = the end, -1 = error. */
static int export_refill(struct export *x)
{
	struct store_err err = { 0 };
	x->out.len = 0;
	x->pos = 0;
	if (!x->header_sent) {
		x->header_sent = 1;
		if (!x->ndjson) {
			sb_str(&x->out, "step,name,value\n");
			return x->out.oom ? -1 : 1;
		}
	}
	while (x->ni < x->names.n) {
		int got = store_metric_page(x->s, x->id, x->names.v[x->ni], x->after, EXPORT_PAGE,
					    export_point_cb, x, &err);
		if (got < 0 || x->out.oom)
			return -1;
		if (got < EXPORT_PAGE) {
			x->ni++;
			x->after = INT64_MIN;
		}
		if (x->out.len)
			return 1;
	}
	return 0;
}

static ssize_t export_read(void *cls, char *buf, size_t max)
{
	struct export *x = cls;
	if (x->pos == x->out.len) {
		int rc = export_refill(x);
		if (rc <= 0)
			return rc == 0 ? -1 : -2;
	}
	size_t n = x->out.len - x->pos < max ? x->out.len - x->pos : max;
	memcpy(buf, x->out.p + x->pos, n);
	x->pos += n;
	return (ssize_t)n;
}

static void export_free(void *cls)
{
	struct export *x = cls;
	if (!x)
		return;
	store_close(x->s);
	list_free(&x->names);
	nl_free(x->out.p);
	nl_free(x);
}

static void export_start(struct daemon *d, const struct http_request *req,
			 struct http_response *r, int ndjson)
{
	int64_t id = req->params[0];
	struct series_names sn;
	struct store *s = open_experiment(d, req, r, id, NULL);
	if (!s)
		return;
	if (names_load(s, id, &sn, r) != 0) {
		store_close(s);
		return;
	}
	list_free(&sn.depth);   /* the export is of the scalar series */
	struct export *x = nl_calloc(1, sizeof *x);
	if (!x) {
		names_free(&sn);
		store_close(s);
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	x->s = s;
	x->id = id;
	x->ndjson = ndjson;
	x->names = sn.scalar;
	x->after = INT64_MIN;
	r->status = 200;
	snprintf(r->content_type, sizeof r->content_type, "%s",
		 ndjson ? "application/x-ndjson" : "text/csv; charset=utf-8");
	r->reader = export_read;
	r->reader_free = export_free;
	r->reader_cls = x;
}

static void export_csv(void *ctx, const struct http_request *req, struct http_response *r)
{
	export_start(ctx, req, r, 0);
}

static void export_ndjson(void *ctx, const struct http_request *req, struct http_response *r)
{
	export_start(ctx, req, r, 1);
}

const struct http_route api_metric_routes[] = {
	{ "GET", "/api/v1/experiments/{id}/metrics", HTTP_READ, metrics_get },
	{ "GET", "/api/v1/experiments/{id}/metrics.csv", HTTP_READ, export_csv },
	{ "GET", "/api/v1/experiments/{id}/metrics.ndjson", HTTP_READ, export_ndjson },
	{ "GET", "/api/v1/experiments/{id}/metrics/{name}", HTTP_READ, metrics_get },
	{ "GET", "/api/v1/experiments/{id}/depth", HTTP_READ, depth_get },
	{ "GET", "/api/v1/experiments/{id}/depth/{name}", HTTP_READ, depth_get },
	{ "GET", "/api/v1/experiments/{id}/samples", HTTP_READ, samples_get },
	{ "GET", "/api/v1/compare", HTTP_READ, compare_get },
};
const int api_metric_routes_n = (int)(sizeof api_metric_routes / sizeof api_metric_routes[0]);
