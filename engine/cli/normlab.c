/*
 * normlab — the engine without the daemon.
 *   normlab train SPEC.json [--out DIR] [--resume] [--ckpt-every N] [--data-dir DIR]
 *   normlab grads SPEC.json [--ckpt FILE] --out FILE.safetensors [--data-dir DIR]
 *   normlab convert --ckpt FILE --to rmsnorm|crmsnorm --out DIR
 *   normlab validate SPEC.json
 *   normlab inspect FILE.safetensors
 *   normlab sweep FILE.json [--out DIR] [--data-dir DIR] [--dry-run]     (cli_sweep.c)
 *   normlab report DIR [--json]                                          (cli_sweep.c)
 * train writes DIR/metrics.jsonl (one JSON object per line), DIR/checkpoint.safetensors,
 * DIR/spec.json (canonical) and DIR/summary.json; it shows a progress bar on a terminal and plain
 * lines otherwise. SIGINT/SIGTERM stop after the current step with a checkpoint.
 * Exit codes: 0 done, 1 error, 2 usage, 3 diverged, 4 dead (train.on_dead = stop), 130
 * interrupted. A run that ends with another health finding (stalled, spike) says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blas.h"
#include "checkpoint.h"
#include "cli.h"
#include "convert.h"
#include "data.h"
#include "safetensors.h"
#include "spec.h"
#include "train.h"

static volatile sig_atomic_t stop_requested;

int cli_stop_requested(void)
{
	return stop_requested != 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: normlab train SPEC.json [--out DIR] [--resume] [--ckpt-every N] [--data-dir DIR]\n"
		"       normlab grads SPEC.json [--ckpt FILE] --out FILE.safetensors [--data-dir DIR]\n"
		"       normlab convert --ckpt FILE --to rmsnorm|crmsnorm --out DIR\n"
		"       normlab validate SPEC.json\n"
		"       normlab inspect FILE.safetensors\n"
		"       normlab sweep SWEEP.json [--out DIR] [--data-dir DIR] [--dry-run]\n"
		"       normlab report DIR [--json]\n"
		"\n"
		"train     train the spec; DIR (default var/runs/<hash prefix>) gets metrics.jsonl,\n"
		"          checkpoint.safetensors, spec.json and summary.json. --resume continues from\n"
		"          DIR's checkpoint; --ckpt-every N also checkpoints every N steps.\n"
		"grads     one batch: parameters, batch.inputs/targets, loss and grad.<name> for\n"
		"          every parameter, as safetensors (for checking against another framework);\n"
		"          batchnorm/powernorm/un also their buffers (<site>.running_mean, ...) as the\n"
		"          batch's training forward found them.\n"
		"convert   a Pre-LN checkpoint (pre or lns) as the same function in Pre-RMSNorm or\n"
		"          Pre-CRMSNorm form (NORMS.md §7): DIR gets checkpoint.safetensors (step 0;\n"
		"          `train DIR/spec.json --out DIR --resume` fine-tunes it) and spec.json;\n"
		"          prints how far the two models' logits are apart on one random batch.\n"
		"validate  print the canonical spec and its SHA-256, or every error with its field.\n"
		"inspect   list a checkpoint's metadata and tensors (name, dtype, shape, ‖x‖₂; value\n"
		"          of scalars) after verifying its CRC-32C checksums.\n"
		"sweep     expand a sweep (a POST /api/v1/sweeps body, e.g. config/recipes/*.json) as\n"
		"          the daemon does and train its cells one after another into DIR/<cell>\n"
		"          (default var/sweeps/<name>); cells already done are skipped, an\n"
		"          interrupted one resumes. --dry-run lists the cells.\n"
		"report    evaluate the recipe's checks of a sweep run by `normlab sweep` (holds /\n"
		"          fails / not_yet, with the numbers); --json prints the whole report.\n"
		"The default corpus (data.path \"kjv\") is DATA_DIR/kjv.txt; DATA_DIR is --data-dir,\n"
		"$NORMLAB_DATA_DIR, or var/data next to the normlab checkout.\n");
}

/* Reads a whole spec file (≤ SPEC_JSON_MAX bytes). Caller frees. */
static char *read_file(const char *path, size_t *len, char *errbuf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(errbuf, cap, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = nl_malloc(SPEC_JSON_MAX + 1);
	if (!buf) {
		fclose(f);
		snprintf(errbuf, cap, "%s: out of memory", path);
		return NULL;
	}
	size_t n = fread(buf, 1, SPEC_JSON_MAX + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(errbuf, cap, "%s: read error", path);
		nl_free(buf);
		return NULL;
	}
	if (n > SPEC_JSON_MAX) {
		snprintf(errbuf, cap, "%s: larger than the %d-byte limit for a spec", path, SPEC_JSON_MAX);
		nl_free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* A child's start for the CLI: init_from names a checkpoint file, whose metadata holds the
 * parent's canonical spec and hash. `parent` (a daemon run id) means nothing here. */
static int cli_resolve_parent(void *ctx, const struct spec *s, struct spec *parent,
			      char parent_hash[65], struct spec_error *e)
{
	struct nl_err err = { 0 };
	struct spec_errors pe = { 0 };
	char *text = NULL;
	(void)ctx;
	if (!s->init_from[0]) {
		snprintf(e->pointer, sizeof e->pointer, "/parent");
		snprintf(e->msg, sizeof e->msg, "the CLI starts a child from a checkpoint file: give "
			 "\"init_from\": \"DIR/checkpoint.safetensors\" (parent names a daemon run)");
		return NL_EINVAL;
	}
	snprintf(e->pointer, sizeof e->pointer, "/init_from");
	if (ckpt_read_spec(s->init_from, &text, parent_hash, &err) != 0) {
		snprintf(e->msg, sizeof e->msg, "%.250s", err.msg);
		return err.code ? err.code : NL_EINVAL;
	}
	int rc = spec_parse(parent, text, strlen(text), NULL, &pe);
	nl_free(text);
	if (rc != 0) {
		snprintf(e->msg, sizeof e->msg, "%.80s: its spec no longer validates: %.40s%s%.80s",
			 s->init_from, pe.n ? pe.e[0].pointer : "", pe.n ? ": " : "",
			 pe.n ? pe.e[0].msg : "");
		return NL_EINVAL;
	}
	return 0;
}

/* Parses the spec file; prints one line per error to stderr. Returns 0 or 1. */
static int load_spec(const char *path, struct spec *s)
{
	char errbuf[512];
	size_t len = 0;
	struct spec_errors errs = { 0 };
	char *text = read_file(path, &len, errbuf, sizeof errbuf);
	if (!text) {
		fprintf(stderr, "normlab: %s\n", errbuf);
		return 1;
	}
	struct spec_limits lim = { .resolve_parent = cli_resolve_parent };
	int rc = spec_parse(s, text, len, &lim, &errs);
	nl_free(text);
	if (rc) {
		for (int i = 0; i < errs.n; i++)
			fprintf(stderr, "%s: %s%s%s\n", path, errs.e[i].pointer,
				errs.e[i].pointer[0] ? ": " : "", errs.e[i].msg);
		if (errs.n == 0)
			fprintf(stderr, "%s: invalid spec\n", path);
		return 1;
	}
	return 0;
}

static void data_dir_default(char *out, size_t cap)
{
	const char *env = getenv("NORMLAB_DATA_DIR");
	char exe[PATH_MAX];
	ssize_t n;
	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';   /* .../bin */
			snprintf(out, cap, "%s/../var/data", exe);
			return;
		}
	}
	snprintf(out, cap, "var/data");
}

/* ---------- metrics as JSON lines ---------- */

struct jsonl {
	FILE *f;
};

static void put_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.17g", v);
	else
		fputs("null", f);   /* JSON has no NaN/Inf; the step's status says what happened */
}

/* A JSON string: the text escaped (quotes, backslashes, control characters as \u00XX). */
static void put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void sink_scalar(void *ctx, long step, const char *name, double v)
{
	struct jsonl *j = ctx;
	fprintf(j->f, "{\"step\":%ld,\"kind\":\"scalar\",\"name\":\"%s\",\"value\":", step, name);
	put_num(j->f, v);
	fputs("}\n", j->f);
}

static void sink_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct jsonl *j = ctx;
	fprintf(j->f, "{\"step\":%ld,\"kind\":\"depth\",\"name\":\"%s\",\"values\":[", step, name);
	for (int i = 0; i < n; i++) {
		if (i)
			fputc(',', j->f);
		put_num(j->f, v[i]);
	}
	fputs("]}\n", j->f);
}

static void put_farr(FILE *f, const char *key, const float *v, int n)
{
	fprintf(f, ",\"%s\":[", key);
	for (int i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		if (isfinite(v[i]))
			fprintf(f, "%.7g", (double)v[i]);
		else
			fputs("null", f);
	}
	fputc(']', f);
}

static void put_iarr(FILE *f, const char *key, const int *v, int n)
{
	fprintf(f, ",\"%s\":[", key);
	for (int i = 0; i < n; i++)
		fprintf(f, i ? ",%d" : "%d", v[i]);
	fputc(']', f);
}

static void sink_samples(void *ctx, long step, const char *site, const float *x, const float *y,
			 const int *tok, const int *chan, int n)
{
	struct jsonl *j = ctx;
	fprintf(j->f, "{\"step\":%ld,\"kind\":\"samples\",\"site\":\"%s\"", step, site);
	put_farr(j->f, "x", x, n);
	put_farr(j->f, "y", y, n);
	put_iarr(j->f, "token", tok, n);
	put_iarr(j->f, "channel", chan, n);
	fputs("}\n", j->f);
}

/* Keeps only the metric lines with step ≤ keep_step (after a resume, later lines are redone). */
static int truncate_metrics(const char *path, long keep_step)
{
	char tmp[PATH_MAX + 64];
	FILE *in = fopen(path, "r"), *out;
	if (!in)
		return errno == ENOENT ? 0 : -1;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	out = fopen(tmp, "w");
	if (!out) {
		fclose(in);
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, in)) > 0) {
		long step;
		if (sscanf(line, "{\"step\":%ld", &step) == 1 && step <= keep_step &&
		    line[n - 1] == '\n')
			fwrite(line, 1, (size_t)n, out);
	}
	free(line);
	fclose(in);
	if (fclose(out) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* ---------- progress ---------- */

static void fmt_eta(char *buf, size_t cap, double s)
{
	if (!isfinite(s) || s < 0)
		snprintf(buf, cap, "--");
	else if (s < 60)
		snprintf(buf, cap, "%.0fs", s);
	else if (s < 3600)
		snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void progress(const struct trainer *t, int tty, double t_start, long step0)
{
	long steps = t->spec.train.steps, done = t->step;
	double el = nl_now() - t_start;
	double rate = done > step0 && el > 0 ? (double)(done - step0) / el : 0;
	double tps = rate * t->model.lay.N;
	char eta[32];
	fmt_eta(eta, sizeof eta, rate > 0 ? (double)(steps - done) / rate : NAN);
	if (tty) {
		char bar[31];
		int w = (int)(30.0 * (double)done / (double)steps);
		for (int i = 0; i < 30; i++)
			bar[i] = i < w ? '#' : '.';
		bar[30] = '\0';
		fprintf(stderr, "\rstep %ld/%ld [%s] loss %.4f | %.0f tok/s | ETA %s   ", done, steps, bar,
			t->loss, tps, eta);
	} else {
		if (t->model.lay.arch->data == MODEL_DATA_IMAGES)
			fprintf(stderr, "step %ld/%ld (epoch %.2f) loss %.4f val %.4f val_acc %.4f lr %.3g "
				"grad_norm %.3g %.0f tok/s ETA %s\n", done, steps, trainer_epochs(t), t->loss,
				t->val_loss, t->val_acc, t->lr, t->grad_norm, tps, eta);
		else
			fprintf(stderr, "step %ld/%ld loss %.4f val %.4f lr %.3g grad_norm %.3g %.0f tok/s "
				"ETA %s\n", done, steps, t->loss, t->val_loss, t->lr, t->grad_norm, tps, eta);
	}
	fflush(stderr);
}

static int write_summary(const char *path, const struct trainer *t, const char *status,
			 const char *hash, double wall, long steps_this_run)
{
	char tmp[PATH_MAX + 64], blas[512];
	FILE *f;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	blas_describe(blas, sizeof blas);
	fprintf(f, "{\"status\":\"%s\",\"step\":%ld,\"steps\":%ld,\"spec_hash\":\"%s\",\"loss\":",
		status, t->step, t->spec.train.steps, hash);
	put_num(f, t->loss);
	fputs(",\"val_loss\":", f);
	put_num(f, t->val_loss);
	if (t->model.lay.nk->batch) {   /* batch-statistic norms: the train-mode number beside it */
		fputs(",\"val_loss_trainmode\":", f);
		put_num(f, t->val_loss_trainmode);
	}
	if (t->model.lay.arch->data == MODEL_DATA_IMAGES) {
		fputs(",\"val_acc\":", f);
		put_num(f, t->val_acc);
		fputs(",\"train_acc\":", f);
		put_num(f, t->train_acc);
		fprintf(f, ",\"epochs\":%.3f", trainer_epochs(t));
	}
	fprintf(f, ",\"health\":{\"status\":\"%s\",\"step\":", health_name(t->health.status));
	if (t->health.step)
		fprintf(f, "%ld", t->health.step);
	else
		fputs("null", f);
	fputs(",\"reason\":", f);
	put_str(f, t->health.reason);
	fputs(",\"unigram_entropy\":", f);
	put_num(f, t->health.entropy);
	fputs("}", f);
	fputs(",\"diverged_step\":", f);
	if (t->diverged_step)
		fprintf(f, "%ld", t->diverged_step);
	else
		fputs("null", f);
	fprintf(f, ",\"n_params\":%zu,\"wall_s\":%.3f,\"tokens_per_s\":%.1f,\"threads\":%d,\"blas\":\"",
		t->model.lay.n_params, wall,
		wall > 0 ? (double)steps_this_run * t->model.lay.N / wall : 0.0,
		t->spec.threads);
	for (const char *p = blas; *p; p++)   /* blas config has no quotes, but be safe */
		if (*p != '"' && *p != '\\')
			fputc(*p, f);
	fputs("\"}\n", f);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

static int parse_long(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int cmd_train(int argc, char **argv)
{
	const char *spec_path = NULL, *out_dir = NULL, *data_dir = NULL;
	long ckpt_every = 0;
	int resume = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out_dir = argv[++i];
		else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (strcmp(argv[i], "--ckpt-every") == 0 && i + 1 < argc) {
			if (parse_long(argv[++i], &ckpt_every)) {
				fprintf(stderr, "normlab: --ckpt-every wants a step count ≥ 0\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--resume") == 0)
			resume = 1;
		else if (argv[i][0] != '-' && !spec_path)
			spec_path = argv[i];
		else {
			fprintf(stderr, "normlab train: unexpected argument %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!spec_path) {
		usage(stderr);
		return 2;
	}
	struct spec s;
	if (load_spec(spec_path, &s))
		return 1;
	char hash[65], dir[PATH_MAX];
	if (spec_hash(&s, hash)) {
		fprintf(stderr, "normlab: out of memory\n");
		return 1;
	}
	if (out_dir)
		snprintf(dir, sizeof dir, "%s", out_dir);
	else
		snprintf(dir, sizeof dir, "var/runs/%.12s", hash);
	return cli_train(&s, dir, data_dir, resume, ckpt_every);
}

int cli_train(const struct spec *spec, const char *dir, const char *data_dir, int resume,
	      long ckpt_every)
{
	struct spec s = *spec;
	int rc = 1;
	char hash[65], dd[PATH_MAX + 32], corpus[PATH_MAX], path[PATH_MAX + 32];
	if (spec_hash(&s, hash)) {
		fprintf(stderr, "normlab: out of memory\n");
		return 1;
	}
	if (data_dir)
		snprintf(dd, sizeof dd, "%s", data_dir);
	else
		data_dir_default(dd, sizeof dd);
	if (data_resolve_path(s.data.path, dd, corpus, sizeof corpus)) {
		fprintf(stderr, "normlab: data path too long\n");
		return 1;
	}
	if (nl_mkdir_p(dir)) {
		fprintf(stderr, "normlab: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}

	struct trainer t;
	struct nl_err err = { 0 };
	if (trainer_init(&t, &s, corpus, &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		return 1;
	}
	char ckpt[PATH_MAX + 32], metrics[PATH_MAX + 32], summary[PATH_MAX + 32];
	snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
	snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
	snprintf(summary, sizeof summary, "%s/summary.json", dir);
	/* A crash between writing a temp file and renaming it leaves the temp file behind: on a
	 * nearly full disk that is space the next write needs. Ours by name, so remove them. */
	static const char *const stale[] = { "checkpoint.safetensors.tmp", "metrics.jsonl.tmp",
					     "summary.json.tmp" };
	for (size_t k = 0; k < sizeof stale / sizeof stale[0]; k++) {
		snprintf(path, sizeof path, "%s/%s", dir, stale[k]);
		if (unlink(path) == 0)
			fprintf(stderr, "normlab: removed stale %s\n", path);
	}
	if (resume && access(ckpt, F_OK) == 0) {
		int verified = 0;
		if (ckpt_load(&t, ckpt, &verified, &err)) {
			fprintf(stderr, "normlab: cannot resume: %s\n", err.msg);
			goto out;
		}
		if (!verified)
			fprintf(stderr, "normlab: warning: %s has no checksums (written before normlab "
				"checked them); resuming from it unverified\n", ckpt);
		if (truncate_metrics(metrics, t.step)) {
			fprintf(stderr, "normlab: cannot rewrite %s: %s\n", metrics, strerror(errno));
			goto out;
		}
		fprintf(stderr, "normlab: resuming %s at step %ld\n", dir, t.step);
	} else if (resume) {
		fprintf(stderr, "normlab: no checkpoint in %s; starting from step 0\n", dir);
	}
	if (!resume || t.step == 0)
		remove(metrics);
	if (t.step == 0 && s.init_from[0]) {
		/* a child: the parent's weights (its spec hash checked), a fresh optimizer */
		if (ckpt_load_init(&t.model, s.init_from, s.parent_hash, &err)) {
			fprintf(stderr, "normlab: init_from: %s\n", err.msg);
			goto out;
		}
		fprintf(stderr, "normlab: starting from %s (spec %.12s)\n", s.init_from,
			s.parent_hash);
	}

	char *canon = spec_canonical(&s);
	snprintf(path, sizeof path, "%s/spec.json", dir);
	FILE *sf = canon ? fopen(path, "w") : NULL;
	if (sf) {
		fprintf(sf, "%s\n", canon);
		fclose(sf);
	}
	nl_free(canon);

	struct jsonl j = { .f = fopen(metrics, "a") };
	if (!j.f) {
		fprintf(stderr, "normlab: cannot open %s: %s\n", metrics, strerror(errno));
		goto out;
	}
	struct train_sink sink = { .ctx = &j, .scalar = sink_scalar, .depth = sink_depth,
				   .samples = sink_samples };
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int tty = isatty(STDERR_FILENO);
	long every_line = s.train.steps / 20 > s.probe.every ? s.train.steps / 20 : s.probe.every;
	long step0 = t.step;
	double t_start = nl_now(), last_draw = 0;
	const char *status = "succeeded";
	while (!trainer_done(&t)) {
		if (stop_requested) {
			status = "interrupted";
			break;
		}
		int src = trainer_step(&t, &sink, &err);
		if (src == NL_EDIVERGED) {
			status = "diverged";
			break;
		}
		if (src == NL_EDEAD) {   /* train.on_dead = stop */
			status = "dead";
			break;
		}
		if (ckpt_every > 0 && t.step % ckpt_every == 0 && !trainer_done(&t)) {
			fflush(j.f);
			if (ckpt_save(&t, ckpt, &err))
				fprintf(stderr, "\nnormlab: checkpoint failed: %s\n", err.msg);
		}
		double now = nl_now();
		if (tty ? now - last_draw > 0.2 || trainer_done(&t) :
			  t.step % every_line == 0 || trainer_done(&t)) {
			progress(&t, tty, t_start, step0);
			last_draw = now;
		}
	}
	if (tty)
		fputc('\n', stderr);
	double wall = nl_now() - t_start;
	if (fclose(j.f) != 0)
		fprintf(stderr, "normlab: writing %s failed\n", metrics);
	if (strcmp(status, "diverged") != 0 && ckpt_save(&t, ckpt, &err)) {
		fprintf(stderr, "normlab: checkpoint failed: %s\n", err.msg);
		goto out;
	}
	if (write_summary(summary, &t, status, hash, wall, t.step - step0))
		fprintf(stderr, "normlab: cannot write %s\n", summary);
	if (strcmp(status, "diverged") == 0) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		rc = 3;
	} else if (strcmp(status, "dead") == 0) {
		fprintf(stderr, "normlab: stopped: %s (train.on_dead = stop; \"continue\" trains on)\n",
			err.msg);
		rc = 4;
	} else if (strcmp(status, "interrupted") == 0) {
		fprintf(stderr, "normlab: interrupted at step %ld; checkpoint in %s (resume with --resume)\n",
			t.step, ckpt);
		rc = 130;
	} else {
		fprintf(stderr, "normlab: done: loss %.4f, val loss %.4f, %.1fs; results in %s\n", t.loss,
			t.val_loss, wall, dir);
		if (t.health.status != HEALTH_OK)
			fprintf(stderr, "normlab: health: %s\n", t.health.reason);
		rc = 0;
	}
out:
	trainer_free(&t);
	return rc;
}

static int cmd_grads(int argc, char **argv)
{
	const char *spec_path = NULL, *out = NULL, *ckpt = NULL, *data_dir = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--ckpt") == 0 && i + 1 < argc)
			ckpt = argv[++i];
		else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (argv[i][0] != '-' && !spec_path)
			spec_path = argv[i];
		else {
			fprintf(stderr, "normlab grads: unexpected argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!spec_path || !out) {
		usage(stderr);
		return 2;
	}
	struct spec s;
	if (load_spec(spec_path, &s))
		return 1;
	char dd[PATH_MAX + 32], corpus[PATH_MAX];
	if (data_dir)
		snprintf(dd, sizeof dd, "%s", data_dir);
	else
		data_dir_default(dd, sizeof dd);
	if (data_resolve_path(s.data.path, dd, corpus, sizeof corpus)) {
		fprintf(stderr, "normlab: data path too long\n");
		return 1;
	}
	struct trainer t;
	struct nl_err err = { 0 };
	int rc = 1;
	if (trainer_init(&t, &s, corpus, &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		return 1;
	}
	const struct model_layout *lay = &t.model.lay;
	int images = lay->arch->data == MODEL_DATA_IMAGES;
	struct st_tensor *ts = nl_calloc((size_t)(2 * lay->n_tensors + lay->n_buffers + 3), sizeof *ts);
	real *host = nl_malloc(sizeof(real) * (2 * lay->n_params + (size_t)lay->B * FMNIST_PIXELS +
					       lay->n_buf));
	int *hint = nl_malloc(sizeof(int) * 2 * (size_t)lay->N);
	if (!ts || !host || !hint) {
		fprintf(stderr, "normlab: out of memory\n");
		goto out;
	}
	if (ckpt && ckpt_load_params(&t.model, ckpt, &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		goto out;
	}
	trainer_next_batch(&t);
	/* norm buffers (batch-statistic kinds) as this batch's training forward finds them: with
	 * the parameters, the file then reproduces the forward (grads --ckpt reads them back) */
	real *hbuf = host + 2 * lay->n_params + (size_t)lay->B * FMNIST_PIXELS;
	if (lay->n_buf)
		model_download(&t.model, hbuf, t.model.bufs, lay->n_buf);
	/* the batch as the model saw it, read back through the backend before the fused
	 * backward reuses nothing of it (inputs are never written by a step) */
	model_zero_grad(&t.model);
	real loss = (real)model_forward(&t.model, 1);
	model_backward(&t.model);
	size_t np = lay->n_params;
	model_download(&t.model, host, t.model.params, np);
	model_download(&t.model, host + np, t.model.grads, np);
	int n = 0;
	for (int i = 0; i < lay->n_tensors; i++) {
		const struct model_tensor *gt = &lay->tensors[i];
		for (int g = 0; g < 2; g++) {
			struct st_tensor *st = &ts[n++];
			snprintf(st->name, sizeof st->name, "%s%s", g ? "grad." : "", gt->name);
			snprintf(st->dtype, sizeof st->dtype, "%s", NL_REAL_NAME);
			st->ndim = gt->ndim;
			st->shape[0] = gt->shape[0];
			st->shape[1] = gt->shape[1];
			st->data = host + (g ? np : 0) + gt->off;
			st->nbytes = gt->len * sizeof(real);
		}
	}
	for (int i = 0; i < lay->n_buffers; i++) {
		const struct model_buffer *bf = &lay->buffers[i];
		struct st_tensor *st = &ts[n++];
		snprintf(st->name, sizeof st->name, "%s", bf->name);
		snprintf(st->dtype, sizeof st->dtype, "%s", NL_REAL_NAME);
		st->ndim = bf->ndim;
		st->shape[0] = bf->shape[0];
		st->shape[1] = bf->shape[1];
		st->data = hbuf + bf->off;
		st->nbytes = bf->len * sizeof(real);
	}
	int B = s.train.batch_size, T = s.model.seq_len;
	if (images) {
		/* batch.images F32 [B, 1, 28, 28] after normalization, batch.targets I32 [B] */
		real *img = host + 2 * np;
		model_download(&t.model, img, t.model.images, (size_t)B * FMNIST_PIXELS);
		model_download_ints(&t.model, hint, t.model.targets, (size_t)B);
		struct st_tensor *st = &ts[n++];
		snprintf(st->name, sizeof st->name, "batch.images");
		snprintf(st->dtype, sizeof st->dtype, "%s", NL_REAL_NAME);
		st->ndim = 4;
		st->shape[0] = B;
		st->shape[1] = 1;
		st->shape[2] = FMNIST_SIDE;
		st->shape[3] = FMNIST_SIDE;
		st->data = img;
		st->nbytes = sizeof(real) * (size_t)B * FMNIST_PIXELS;
		st = &ts[n++];
		snprintf(st->name, sizeof st->name, "batch.targets");
		snprintf(st->dtype, sizeof st->dtype, "I32");
		st->ndim = 1;
		st->shape[0] = B;
		st->data = hint;
		st->nbytes = sizeof(int) * (size_t)B;
	} else {
		model_download_ints(&t.model, hint, t.model.tokens, 2 * (size_t)lay->N);
		const char *bn[2] = { "batch.inputs", "batch.targets" };
		for (int b = 0; b < 2; b++) {
			struct st_tensor *st = &ts[n++];
			snprintf(st->name, sizeof st->name, "%s", bn[b]);
			snprintf(st->dtype, sizeof st->dtype, "I32");
			st->ndim = 2;
			st->shape[0] = B;
			st->shape[1] = T;
			st->data = hint + (size_t)b * lay->N;
			st->nbytes = sizeof(int) * (size_t)B * T;
		}
	}
	struct st_tensor *ls = &ts[n++];
	snprintf(ls->name, sizeof ls->name, "loss");
	snprintf(ls->dtype, sizeof ls->dtype, "%s", NL_REAL_NAME);
	ls->ndim = 0;
	ls->data = &loss;
	ls->nbytes = sizeof loss;
	char *canon = spec_canonical(&s);
	struct st_meta meta[] = { { "format", "normlab-grads-1" }, { "spec", canon ? canon : "" } };
	if (st_write(out, ts, n, meta, 2, &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		nl_free(canon);
		goto out;
	}
	nl_free(canon);
	printf("loss %.6f; %d parameter tensors and their gradients written to %s\n", (double)loss,
	       lay->n_tensors, out);
	rc = 0;
out:
	nl_free(ts);
	nl_free(host);
	nl_free(hint);
	trainer_free(&t);
	return rc;
}

static int cmd_convert(int argc, char **argv)
{
	const char *in = NULL, *to = NULL, *out = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ckpt") == 0 && i + 1 < argc)
			in = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else {
			fprintf(stderr, "normlab convert: unexpected argument %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!in || !to || !out) {
		usage(stderr);
		return 2;
	}
	if (nl_mkdir_p(out)) {
		fprintf(stderr, "normlab: cannot create %s: %s\n", out, strerror(errno));
		return 1;
	}
	struct convert_report rep;
	struct nl_err err = { 0 };
	double rel = 0;
	if (convert_checkpoint(in, to, out, &rep, &rel, &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		return 1;
	}
	printf("converted %s to %s: %d writer tensors centred, %d readers took the norms' affine, "
	       "%d tensors compressed to d-1\n", in, to, rep.centred, rep.folded, rep.compressed);
	printf("logits on one random batch: max |difference| / max |logit| = %.3g\n", rel);
	printf("wrote %s/checkpoint.safetensors and %s/spec.json\n", out, out);
	return 0;
}

static int cmd_validate(int argc, char **argv)
{
	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	struct spec s;
	if (load_spec(argv[0], &s))
		return 1;
	char hash[65];
	char *canon = spec_canonical(&s);
	if (!canon || spec_hash(&s, hash)) {
		nl_free(canon);
		fprintf(stderr, "normlab: out of memory\n");
		return 1;
	}
	printf("%s\nsha256 %s\n", canon, hash);
	nl_free(canon);
	return 0;
}

static double tensor_value(const struct st_tensor *t, size_t i)
{
	if (strcmp(t->dtype, "F32") == 0)
		return ((const float *)t->data)[i];
	if (strcmp(t->dtype, "F64") == 0)
		return ((const double *)t->data)[i];
	if (strcmp(t->dtype, "I32") == 0)
		return ((const int32_t *)t->data)[i];
	if (strcmp(t->dtype, "I64") == 0)
		return (double)((const int64_t *)t->data)[i];
	return ((const uint8_t *)t->data)[i];
}

static int cmd_inspect(int argc, char **argv)
{
	static const char *const keys[] = { "format", "step", "spec_hash", "loss", "rng.data", "spec" };
	struct st_file *f = NULL;
	struct nl_err err = { 0 };
	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	int verified = 0;
	if (st_open(&f, argv[0], &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		return 1;
	}
	if (ckpt_verify(f, argv[0], &verified, &err)) {
		fprintf(stderr, "normlab: %s\n", err.msg);
		st_close(f);
		return 1;
	}
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		const char *v = st_meta_get(f, keys[k]);
		if (v)
			printf("# %s: %s\n", keys[k], v);
	}
	printf("# checksums: %s\n", verified ? "CRC-32C verified" : "none (unverified)");
	for (int i = 0; i < st_count(f); i++) {
		const struct st_tensor *t = st_get(f, i);
		size_t es = st_dtype_size(t->dtype), n = es ? t->nbytes / es : 0;
		double ss = 0;
		for (size_t j = 0; j < n; j++) {
			double v = tensor_value(t, j);
			ss += v * v;
		}
		printf("%s %s [", t->name, t->dtype);
		for (int d = 0; d < t->ndim; d++)
			printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
		printf("] norm=%.9g", sqrt(ss));
		if (n == 1)
			printf(" value=%.9g", tensor_value(t, 0));
		putchar('\n');
	}
	st_close(f);
	return 0;
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "train") == 0)
		return cmd_train(argc - 2, argv + 2);
	if (strcmp(argv[1], "grads") == 0)
		return cmd_grads(argc - 2, argv + 2);
	if (strcmp(argv[1], "convert") == 0)
		return cmd_convert(argc - 2, argv + 2);
	if (strcmp(argv[1], "validate") == 0)
		return cmd_validate(argc - 2, argv + 2);
	if (strcmp(argv[1], "inspect") == 0)
		return cmd_inspect(argc - 2, argv + 2);
	if (strcmp(argv[1], "sweep") == 0)
		return cli_sweep(argc - 2, argv + 2);
	if (strcmp(argv[1], "report") == 0)
		return cli_report(argc - 2, argv + 2);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "normlab: unknown command %s\n", argv[1]);
	usage(stderr);
	return 2;
}
