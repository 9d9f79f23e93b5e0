/*
 * cli_sweep.c — a sweep without the daemon. `normlab sweep FILE` expands a POST /api/v1/sweeps
 * body with the daemon's own expander (server/sweep.c, recipe checked too) and trains the cells
 * one after another into DIR/<cell> (DIR/sweep.json keeps the request); a cell whose summary says
 * it succeeded with the same spec hash is skipped, an interrupted one resumes from its checkpoint.
 * `normlab report DIR` evaluates the recipe with the daemon's report builder (server/report.c),
 * reading each cell's metrics.jsonl instead of the store.
 *
 * Owns what it allocates per command. Single-threaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nl.h"
#include "report.h"
#include "spec.h"
#include "sweep.h"

#define SWEEP_FILE_MAX (4 << 20)   /* bytes of a sweep file (the daemon's body cap is similar) */
#define CLI_SWEEP_CELLS 10000      /* cells one sweep may expand to */

/* A whole file (≤ cap bytes), NUL-terminated; caller frees with nl_free. NULL with a message. */
static char *slurp(const char *path, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "normlab: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *buf = nl_malloc(cap + 1);
	size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad || n > cap) {
		fprintf(stderr, "normlab: %s: %s\n", path, !buf ? "out of memory" : bad ? "read error" :
			"larger than the limit for this file");
		nl_free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* The sweep request in path as a tree (strict JSON, as the daemon reads a body), or NULL. */
static cJSON *load_request(const char *path)
{
	size_t len = 0, at = 0;
	const char *why = NULL;
	char *text = slurp(path, SWEEP_FILE_MAX, &len);
	if (!text)
		return NULL;
	cJSON *req = NULL;
	if (spec_json_check(text, len, &at, &why) != 0)
		fprintf(stderr, "normlab: %s: not valid JSON at byte %zu: %s\n", path, at,
			why ? why : "syntax error");
	else if (!(req = cJSON_Parse(text)) || !cJSON_IsObject(req))
		fprintf(stderr, "normlab: %s: expected a JSON object (a sweep request)\n", path);
	if (req && !cJSON_IsObject(req)) {
		cJSON_Delete(req);
		req = NULL;
	}
	nl_free(text);
	return req;
}

static int expand(const char *path, const cJSON *req, struct sweep_plan *plan)
{
	struct sweep_limits lim;
	struct sweep_errors errs;
	memset(&lim, 0, sizeof lim);
	lim.max_cells = CLI_SWEEP_CELLS;
	int rc = sweep_expand(req, &lim, plan, &errs);
	if (rc == 0)
		return 0;
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s: %s%s%s\n", path, errs.e[i].pointer, errs.e[i].pointer[0] ? ": " : "",
			errs.e[i].msg);
	if (errs.n == 0 || errs.stopped)
		fprintf(stderr, "%s: %s\n", path, errs.detail);
	return rc;
}

/* "status" and "spec_hash" of dir/summary.json; status "" when there is none. */
static void read_summary(const char *dir, char *status, size_t scap, char *hash, size_t hcap)
{
	char path[PATH_MAX + 32];
	status[0] = hash[0] = '\0';
	snprintf(path, sizeof path, "%s/summary.json", dir);
	if (access(path, R_OK) != 0)
		return;
	char *text = slurp(path, 1 << 16, NULL);
	cJSON *o = text ? cJSON_Parse(text) : NULL;
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "spec_hash");
	if (cJSON_IsString(st))
		nl_strlcpy(status, st->valuestring, scap);
	if (cJSON_IsString(h))
		nl_strlcpy(hash, h->valuestring, hcap);
	cJSON_Delete(o);
	nl_free(text);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int cli_sweep(int argc, char **argv)
{
	const char *file = NULL, *out = NULL, *data_dir = NULL;
	int dry = 0, rc = 1;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = 1;
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else {
			fprintf(stderr, "normlab sweep: unexpected argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!file) {
		fprintf(stderr, "usage: normlab sweep SWEEP.json [--out DIR] [--data-dir DIR] [--dry-run]\n");
		return 2;
	}
	struct sweep_plan plan;
	cJSON *req = load_request(file);
	char dir[PATH_MAX], cdir[PATH_MAX + 16], path[PATH_MAX + 64];
	if (!req)
		return 1;
	if (expand(file, req, &plan) != 0) {
		cJSON_Delete(req);
		return 1;
	}
	if (dry) {
		printf("%d cells\n", plan.n);
		for (int i = 0; i < plan.n; i++) {
			char *ov = cJSON_PrintUnformatted(plan.cells[i].overrides);
			printf("cell %d  %.12s  %s\n", plan.cells[i].cell, plan.cells[i].hash, ov ? ov : "");
			cJSON_free(ov);
		}
		rc = 0;
		goto out;
	}
	if (out) {
		snprintf(dir, sizeof dir, "%s", out);
	} else {
		/* the sweep's name, or the file's name without .json */
		const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
		size_t n = strlen(base);
		if (n > 5 && strcmp(base + n - 5, ".json") == 0)
			n -= 5;
		if (plan.name[0] && !strchr(plan.name, '/'))
			snprintf(dir, sizeof dir, "var/sweeps/%s", plan.name);
		else
			snprintf(dir, sizeof dir, "var/sweeps/%.*s", (int)n, base);
	}
	char *text = cJSON_Print(req);
	snprintf(path, sizeof path, "%s/sweep.json", dir);
	if (nl_mkdir_p(dir) != 0 || !text || write_text(path, text) != 0) {
		fprintf(stderr, "normlab: cannot write %s: %s\n", path, strerror(errno));
		cJSON_free(text);
		goto out;
	}
	cJSON_free(text);
	int done = 0, diverged = 0, dead = 0, failed = 0, skipped = 0;
	double t0 = nl_now();
	for (int i = 0; i < plan.n; i++) {
		const struct sweep_cell *c = &plan.cells[i];
		char status[32], hash[80];
		snprintf(cdir, sizeof cdir, "%s/%d", dir, c->cell);
		read_summary(cdir, status, sizeof status, hash, sizeof hash);
		char *ov = cJSON_PrintUnformatted(c->overrides);
		if (strcmp(hash, c->hash) == 0 &&
		    (strcmp(status, "succeeded") == 0 || strcmp(status, "diverged") == 0 ||
		     strcmp(status, "dead") == 0)) {
			fprintf(stderr, "normlab: cell %d/%d %s: %s already, skipped\n", c->cell + 1, plan.n,
				ov ? ov : "", status);
			skipped++;
			done += status[0] == 's';
			diverged += strcmp(status, "diverged") == 0;
			dead += strcmp(status, "dead") == 0;
			cJSON_free(ov);
			continue;
		}
		snprintf(path, sizeof path, "%s/checkpoint.safetensors", cdir);
		int resume = strcmp(hash, c->hash) == 0 && strcmp(status, "interrupted") == 0 &&
			     access(path, F_OK) == 0;
		fprintf(stderr, "normlab: cell %d/%d %s -> %s%s\n", c->cell + 1, plan.n, ov ? ov : "",
			cdir, resume ? " (resuming)" : "");
		cJSON_free(ov);
		int r = cli_train(c->spec, cdir, data_dir, resume, 0);
		if (r == 130 || cli_stop_requested()) {
			fprintf(stderr, "normlab: sweep interrupted at cell %d; run the same command again "
				"to go on\n", c->cell);
			rc = 130;
			goto out;
		}
		done += r == 0;
		diverged += r == 3;
		dead += r == 4;   /* run health stopped it (train.on_dead = stop): a finished cell */
		failed += r != 0 && r != 3 && r != 4;
	}
	fprintf(stderr, "normlab: sweep %s: %d cells, %d succeeded, %d diverged, %d dead, %d failed "
		"(%d done before), %.0fs\nnormlab: the report: normlab report %s\n", dir, plan.n, done,
		diverged, dead, failed, skipped, nl_now() - t0, dir);
	rc = failed ? 1 : 0;
out:
	sweep_plan_free(&plan);
	cJSON_Delete(req);
	return rc;
}

/* ---- normlab report DIR: metrics.jsonl as a report source ---- */

struct cell_files {
	char path[PATH_MAX + 32];   /* the cell's metrics.jsonl */
};

/* Calls fn on each line of the cell's metrics.jsonl that contains every needle (cheap filter:
 * only those lines are parsed). Returns 0, or -1 when the file cannot be read. */
static int scan_lines(const struct cell_files *cf, const char *n1, const char *n2,
		      int (*fn)(void *arg, const cJSON *o), void *arg)
{
	FILE *f = fopen(cf->path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	char *line = NULL;
	size_t cap = 0;
	int stop = 0;
	while (!stop && getline(&line, &cap, f) > 0) {
		if (!strstr(line, n1) || (n2 && !strstr(line, n2)))
			continue;
		cJSON *o = cJSON_Parse(line);
		if (o)
			stop = fn(arg, o);
		cJSON_Delete(o);
	}
	free(line);
	fclose(f);
	return 0;
}

struct depth_fwd {
	report_row_fn cb;
	void *cbx;
	const char *name;
};

static int depth_line(void *arg, const cJSON *o)
{
	struct depth_fwd *d = arg;
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
	const cJSON *vals = cJSON_GetObjectItemCaseSensitive(o, "values");
	if (!cJSON_IsString(nm) || strcmp(nm->valuestring, d->name) != 0 || !cJSON_IsArray(vals))
		return 0;
	double v[256];
	int n = 0;
	for (const cJSON *x = vals->child; x && n < 256; x = x->next)
		v[n++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
	return d->cb(d->cbx, (int64_t)cJSON_GetObjectItemCaseSensitive(o, "step")->valuedouble, v, n);
}

static void needle(char *dst, size_t cap, const char *key, const char *val)
{
	snprintf(dst, cap, "\"%s\":\"%s\"", key, val);
}

static int jl_depth(void *ctx, const struct report_cell *c, const char *name, report_row_fn cb,
		    void *cbx)
{
	const struct cell_files *cf = (const struct cell_files *)ctx + c->cell;
	struct depth_fwd d = { cb, cbx, name };
	char nd[160];
	needle(nd, sizeof nd, "name", name);
	return scan_lines(cf, "\"kind\":\"depth\"", nd, depth_line, &d);
}

struct point_fwd {
	report_point_fn cb;
	void *cbx;
	const char *name;
};

static int point_line(void *arg, const cJSON *o)
{
	struct point_fwd *p = arg;
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
	if (!cJSON_IsString(nm) || strcmp(nm->valuestring, p->name) != 0)
		return 0;
	return p->cb(p->cbx, (int64_t)cJSON_GetObjectItemCaseSensitive(o, "step")->valuedouble,
		     cJSON_IsNumber(v) ? v->valuedouble : NAN);
}

static int jl_scalar(void *ctx, const struct report_cell *c, const char *name, report_point_fn cb,
		     void *cbx)
{
	const struct cell_files *cf = (const struct cell_files *)ctx + c->cell;
	struct point_fwd p = { cb, cbx, name };
	char nd[160];
	needle(nd, sizeof nd, "name", name);
	return scan_lines(cf, "\"kind\":\"scalar\"", nd, point_line, &p);
}

/* The last samples line of the site (the latest step), kept as a tree. */
static int samples_line(void *arg, const cJSON *o)
{
	cJSON **last = arg;
	cJSON_Delete(*last);
	*last = cJSON_Duplicate(o, 1);
	return 0;
}

static int jl_samples(void *ctx, const struct report_cell *c, const char *site,
		      report_samples_fn cb, void *cbx)
{
	const struct cell_files *cf = (const struct cell_files *)ctx + c->cell;
	cJSON *last = NULL;
	char nd[160];
	needle(nd, sizeof nd, "site", site);
	int rc = scan_lines(cf, "\"kind\":\"samples\"", nd, samples_line, &last);
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(last, "x");
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(last, "y");
	const cJSON *ch = cJSON_GetObjectItemCaseSensitive(last, "channel");
	int n = cJSON_GetArraySize(x);
	if (rc == 0 && last && n > 0 && cJSON_GetArraySize(y) == n) {
		float *xv = nl_malloc((size_t)n * sizeof *xv), *yv = nl_malloc((size_t)n * sizeof *yv);
		int32_t *cv = nl_calloc((size_t)n, sizeof *cv);
		if (!xv || !yv || !cv) {
			rc = NL_ENOMEM;
		} else {
			int i = 0;
			for (const cJSON *a = x->child, *b = y->child; a && b; a = a->next, b = b->next, i++) {
				xv[i] = cJSON_IsNumber(a) ? (float)a->valuedouble : NAN;
				yv[i] = cJSON_IsNumber(b) ? (float)b->valuedouble : NAN;
			}
			i = 0;
			for (const cJSON *k = cJSON_IsArray(ch) ? ch->child : NULL; k && i < n; k = k->next)
				cv[i++] = (int32_t)k->valuedouble;
			cb(cbx, (int64_t)cJSON_GetObjectItemCaseSensitive(last, "step")->valuedouble, xv, yv,
			   cv, n);
		}
		nl_free(xv);
		nl_free(yv);
		nl_free(cv);
	}
	cJSON_Delete(last);
	return rc;
}

static const char *word(const char *status)
{
	return strcmp(status, "holds") == 0 ? "HOLDS  " : strcmp(status, "fails") == 0 ? "FAILS  " :
	       "NOT YET";
}

static void print_report(const cJSON *rep)
{
	const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(rep, "recipe");
	const cJSON *sum = cJSON_GetObjectItemCaseSensitive(rep, "summary");
	if (cJSON_IsObject(recipe)) {
		printf("claim:  %s\npaper:  %s\nfigure: %s\n\n",
		       cJSON_GetObjectItemCaseSensitive(recipe, "claim")->valuestring,
		       cJSON_GetObjectItemCaseSensitive(recipe, "paper")->valuestring,
		       cJSON_GetObjectItemCaseSensitive(recipe, "figure")->valuestring);
	} else {
		printf("(no recipe: no checks)\n");
	}
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rep, "checks")) {
		printf("%s  %s\n         %s\n", word(cJSON_GetObjectItemCaseSensitive(c, "status")->valuestring),
		       cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring,
		       cJSON_GetObjectItemCaseSensitive(c, "reason")->valuestring);
	}
	printf("\n%d hold, %d fail, %d not yet decided\n",
	       (int)cJSON_GetObjectItemCaseSensitive(sum, "holds")->valuedouble,
	       (int)cJSON_GetObjectItemCaseSensitive(sum, "fails")->valuedouble,
	       (int)cJSON_GetObjectItemCaseSensitive(sum, "not_yet")->valuedouble);
}

int cli_report(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0, rc = 1;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fprintf(stderr, "normlab report: unexpected argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: normlab report DIR [--json]   (DIR: a `normlab sweep` output)\n");
		return 2;
	}
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/sweep.json", dir);
	struct sweep_plan plan;
	cJSON *req = load_request(path), *rep = NULL, **specs = NULL;
	struct report_cell *cells = NULL;
	struct cell_files *files = NULL;
	char (*status)[32] = NULL;
	if (!req)
		return 1;
	if (expand(path, req, &plan) != 0) {
		cJSON_Delete(req);
		return 1;
	}
	int n = plan.n;
	cells = nl_calloc((size_t)(n ? n : 1), sizeof *cells);
	files = nl_calloc((size_t)(n ? n : 1), sizeof *files);
	specs = nl_calloc((size_t)(n ? n : 1), sizeof *specs);
	status = nl_calloc((size_t)(n ? n : 1), sizeof *status);
	if (!cells || !files || !specs || !status)
		goto oom;
	for (int i = 0; i < n; i++) {
		char cdir[PATH_MAX + 16], hash[80];
		snprintf(cdir, sizeof cdir, "%s/%d", dir, i);
		snprintf(files[i].path, sizeof files[i].path, "%s/metrics.jsonl", cdir);
		read_summary(cdir, status[i], sizeof status[i], hash, sizeof hash);
		if (status[i][0] && strcmp(hash, plan.cells[i].hash) != 0)
			nl_strlcpy(status[i], "stale", sizeof status[i]);   /* another spec ran there */
		specs[i] = cJSON_Parse(plan.cells[i].canonical);
		if (!specs[i])
			goto oom;
		int st = strcmp(status[i], "succeeded") == 0 || strcmp(status[i], "dead") == 0 ?
			 REPORT_DONE :
			 strcmp(status[i], "diverged") == 0 ? REPORT_DIVERGED :
			 strcmp(status[i], "failed") == 0 ? REPORT_FAILED : REPORT_PENDING;
		if (!status[i][0])
			nl_strlcpy(status[i], access(cdir, F_OK) == 0 ? "running" : "not run",
				   sizeof status[i]);
		cells[i] = (struct report_cell){ 0, i, st, status[i], specs[i] };
	}
	struct report_src src = { files, jl_depth, jl_scalar, jl_samples };
	int r = report_build(req, cells, n, &src, &rep);
	if (r == NL_ENOMEM)
		goto oom;
	if (r != 0) {
		fprintf(stderr, "normlab: reading the cells' metrics.jsonl under %s failed\n", dir);
		goto out;
	}
	if (json) {
		char *t = cJSON_PrintUnformatted(rep);
		if (!t)
			goto oom;
		puts(t);
		cJSON_free(t);
	} else {
		print_report(rep);
	}
	rc = 0;
	goto out;
oom:
	fprintf(stderr, "normlab: out of memory\n");
out:
	for (int i = 0; specs && i < n; i++)
		cJSON_Delete(specs[i]);
	nl_free(specs);
	nl_free(cells);
	nl_free(files);
	nl_free(status);
	cJSON_Delete(rep);
	cJSON_Delete(req);
	sweep_plan_free(&plan);
	return rc;
}
