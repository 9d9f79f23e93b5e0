/*
 * api_experiments.c — /api/v1/experiments: submit a spec (dry run, duplicate skipping, priority,
 * tags, notes), list with filters and cursor pages, get one, patch its tags/notes/priority,
 * delete it with its run directory, cancel it.
 *
 * Owns nothing beyond one request. Threading: handlers run on HTTP connection threads; they read
 * through their own reader connection (api_reader) and write only inside sched_call functions,
 * which run on the scheduler's loop thread with the writer connection. A check that a write
 * depends on (duplicate hash, "not running") is made again inside that function, so it cannot be
 * overtaken by the scheduler between read and write.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "nl.h"
#include "quota.h"

#define EXP_TAGS_MAX 16
#define EXP_TAG_CHARS 64
#define EXP_NOTES_CHARS 4096
#define EXP_PRIORITY_MIN (-1000)
#define EXP_PRIORITY_MAX 1000
#define EXP_PAGE_DEFAULT 100
#define EXP_PAGE_MAX 1000          /* also the store's rows-per-list cap */
#define EXP_FILTER_BYTES 256       /* a string filter longer than this cannot match anything */
#define RUN_DIR_DEPTH 4            /* levels below <runs_dir>/<id> that deletion descends */

int api_run_dir_remove(const struct daemon *d, int64_t id);

/* ---- field errors ----------------------------------------------------------------------------- */

struct ferrs {
	int n;
	char ptr[HTTP_MAX_POINTERS][96];
	char msg[HTTP_MAX_POINTERS][200];
};

static void ferr_add(struct ferrs *f, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* key is an object member name; it becomes "/key" (RFC 6901 escaped). */
static void ferr_add(struct ferrs *f, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t n = 1;
	if (f->n >= HTTP_MAX_POINTERS)
		return;
	char *p = f->ptr[f->n];
	p[0] = '/';
	for (const char *k = key; *k && n + 3 < sizeof f->ptr[0]; k++) {
		if (*k == '~' || *k == '/') {
			p[n++] = '~';
			p[n++] = *k == '~' ? '0' : '1';
		} else {
			p[n++] = *k;
		}
	}
	p[n] = '\0';
	va_start(ap, fmt);
	vsnprintf(f->msg[f->n], sizeof f->msg[0], fmt, ap);
	va_end(ap);
	f->n++;
}

static void ferr_answer(struct http_response *r, const struct ferrs *f, const char *code)
{
	const char *ptrs[HTTP_MAX_POINTERS], *msgs[HTTP_MAX_POINTERS];
	char detail[320];
	for (int i = 0; i < f->n; i++) {
		ptrs[i] = f->ptr[i];
		msgs[i] = f->msg[i];
	}
	snprintf(detail, sizeof detail, "%s: %s%s", f->ptr[0], f->msg[0],
		 f->n > 1 ? " (and more: see errors)" : "");
	http_problem(r, 400, code, detail, ptrs, msgs, f->n);
}

static void problem_oom(struct http_response *r)
{
	http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
}

/* ---- request-only fields: priority, tags, notes, on_duplicate ------------------------------- */

/* UTF-8 characters (code points) in s. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += (*p & 0xc0) != 0x80;
	return n;
}

static int has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 1;
	return 0;
}

struct exp_meta {
	int skip_duplicate;     /* on_duplicate: "skip" (default) or "run" */
	int priority;           /* INT32_MIN when not given */
	char *tags;             /* JSON array text (nl_malloc), NULL when not given */
	char *notes;            /* nl_malloc, NULL when not given */
};

static void meta_init(struct exp_meta *m)
{
	memset(m, 0, sizeof *m);
	m->priority = INT32_MIN;
	m->skip_duplicate = 1;
}

static void meta_clear(struct exp_meta *m)
{
	nl_free(m->tags);
	nl_free(m->notes);
	meta_init(m);
}

/* Validates one request-only field; fills m. Returns -1 only when out of memory. */
static int meta_field(struct exp_meta *m, const cJSON *v, struct ferrs *fe)
{
	const char *key = v->string;
	if (strcmp(key, "priority") == 0) {
		if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
		    v->valuedouble < EXP_PRIORITY_MIN || v->valuedouble > EXP_PRIORITY_MAX)
			ferr_add(fe, key, "expected an integer in %d..%d (higher runs first)",
				 EXP_PRIORITY_MIN, EXP_PRIORITY_MAX);
		else
			m->priority = (int)v->valuedouble;
	} else if (strcmp(key, "notes") == 0) {
		if (!cJSON_IsString(v) || utf8_chars(v->valuestring) > EXP_NOTES_CHARS) {
			ferr_add(fe, key, "expected a string of at most %d characters", EXP_NOTES_CHARS);
		} else {
			nl_free(m->notes);
			m->notes = nl_strdup(v->valuestring);
			if (!m->notes)
				return -1;
		}
	} else if (strcmp(key, "tags") == 0) {
		int bad = !cJSON_IsArray(v) || cJSON_GetArraySize(v) > EXP_TAGS_MAX;
		for (const cJSON *t = bad ? NULL : v->child; t && !bad; t = t->next)
			bad = !cJSON_IsString(t) || !t->valuestring[0] ||
			      utf8_chars(t->valuestring) > EXP_TAG_CHARS || has_control(t->valuestring);
		if (bad) {
			ferr_add(fe, key, "expected an array of at most %d strings of 1..%d characters "
				 "(no control characters)", EXP_TAGS_MAX, EXP_TAG_CHARS);
		} else {
			char *txt = cJSON_PrintUnformatted(v);
			nl_free(m->tags);
			m->tags = txt ? nl_strdup(txt) : NULL;
			cJSON_free(txt);
			if (!m->tags)
				return -1;
		}
	} else if (strcmp(key, "on_duplicate") == 0) {
		if (cJSON_IsString(v) && strcmp(v->valuestring, "skip") == 0)
			m->skip_duplicate = 1;
		else if (cJSON_IsString(v) && strcmp(v->valuestring, "run") == 0)
			m->skip_duplicate = 0;
		else
			ferr_add(fe, key, "expected \"skip\" (answer with the succeeded run of the same "
				 "spec) or \"run\"");
	}
	return 0;
}

/* Takes the request-only keys out of a submitted body (every occurrence: a key given twice is
 * an error, not a silent pick). Returns -1 only when out of memory. */
static int meta_take(cJSON *body, struct exp_meta *m, struct ferrs *fe)
{
	static const char *const keys[] = { "on_duplicate", "priority", "tags", "notes", NULL };
	for (int i = 0; keys[i]; i++) {
		cJSON *v;
		int seen = 0;
		while ((v = cJSON_DetachItemFromObjectCaseSensitive(body, keys[i])) != NULL) {
			int rc = 0;
			if (seen++)
				ferr_add(fe, keys[i], "duplicate field (given more than once)");
			else
				rc = meta_field(m, v, fe);
			cJSON_Delete(v);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- events ----------------------------------------------------------------------------------- */

/* Appends {"id":…,"name":…} as event `kind`. Loop thread (inside a sched_call fn). A failed event
 * is logged, not fatal: the state change it reports is already committed. */
static void exp_event(struct daemon *d, struct store *w, const char *kind,
		      const struct store_experiment *e)
{
	cJSON *o = cJSON_CreateObject();
	char *txt = NULL;
	/* owner: the event stream shows a deleted run's event to its owner only (api_events.c) */
	if (o && cJSON_AddNumberToObject(o, "id", (double)e->id) &&
	    cJSON_AddStringToObject(o, "name", e->name) &&
	    cJSON_AddStringToObject(o, "owner", e->owner))
		txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!txt || sched_event(d->sched, w, kind, e->id, txt) < 0)
		LOG_WARN("experiment %" PRId64 ": could not record event %s", e->id, kind);
	cJSON_free(txt);
}

/* ---- run directories -------------------------------------------------------------------------- */

/* Removes path and everything under it, at most depth levels down. Symlinks are removed, never
 * followed. Missing is fine. Returns 0 or -errno of the first failure (and goes on). */
static int rm_tree(const char *path, int depth)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	int rc = 0;
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir)) != NULL) {
		char child[CONFIG_PATH_MAX + 320];
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
			rc = rc ? rc : -ENAMETOOLONG;
			continue;
		}
		int e = 0;
		if (lstat(child, &st) != 0)
			e = errno == ENOENT ? 0 : -errno;
		else if (S_ISDIR(st.st_mode))
			e = depth > 0 ? rm_tree(child, depth - 1) : -ELOOP;
		else if (unlink(child) != 0 && errno != ENOENT)
			e = -errno;
		if (e && !rc)
			rc = e;
	}
	closedir(dir);
	if (rmdir(path) != 0 && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

/*
 * Removes <runs_dir>/<id>/ (checkpoints and per-run files). Any thread; the caller makes sure no
 * run of id is in flight. Logs and returns -errno on failure; 0 when removed or absent.
 * Shared with api_sweeps.c (retry), which declares it too: it belongs in api.h.
 */
int api_run_dir_remove(const struct daemon *d, int64_t id)
{
	char path[CONFIG_PATH_MAX + 32];
	int rc;
	/* an empty runs_dir would make this "/<id>": never delete outside the configured tree */
	if (!d->cfg.runs_dir[0] || id <= 0)
		return 0;
	if (snprintf(path, sizeof path, "%s/%" PRId64, d->cfg.runs_dir, id) >= (int)sizeof path)
		return -ENAMETOOLONG;
	rc = rm_tree(path, RUN_DIR_DEPTH);
	if (rc)
		LOG_WARN("experiment %" PRId64 ": removing %s: %s", id, path, strerror(-rc));
	return rc;
}

/* ---- POST /api/v1/experiments ----------------------------------------------------------------- */

#define CREATE_OVER_QUOTA 1   /* create_fn: refused, c->quota says why */

struct create_ctx {
	struct daemon *d;
	struct store_experiment *e;
	int skip_duplicate;
	int64_t duplicate_of;
	const struct quota_limits *limits;
	struct quota_verdict quota;
	struct store_err err;
	const char *dedup_owner;        /* only this owner's runs count as duplicates; NULL = any */
	const struct spec *spec;        /* validated: kept for the run's start */
};

static int create_fn(struct store *w, void *arg)
{
	struct create_ctx *c = arg;
	if (c->skip_duplicate) {
		int64_t id = api_find_duplicate(w, c->e->hash, c->dedup_owner);
		if (id < 0) {
			c->err.code = (int)id;
			snprintf(c->err.msg, sizeof c->err.msg, "looking for a succeeded duplicate failed");
			return (int)id;
		}
		if (id > 0) {
			c->duplicate_of = id;
			return 0;
		}
	}
	/* here, on the loop thread, so two submissions cannot both take the last place */
	struct store_owner_counts oc;
	int rc = store_owner_counts(w, c->e->owner, &oc, &c->err);
	if (rc < 0)
		return rc;
	if (quota_check_queue(c->limits, c->e->owner, &oc, 1, 0, &c->quota) != 0)
		return CREATE_OVER_QUOTA;
	c->e->created_at = daemon_now();   /* the moment it joins the queue, on the loop's clock */
	rc = store_experiment_insert(w, c->e, &c->err);
	if (rc < 0)
		return rc;
	sched_keep_spec(c->d->sched, c->e->id, c->spec);
	exp_event(c->d, w, "experiment.queued", c->e);
	return 0;
}

/*
 * The queue quota for a dry run, read through this thread's reader: what create_fn would decide
 * now (a succeeded duplicate that would be answered instead queues nothing). Returns 0 when
 * within the quota; else -1, with v filled (over quota) or r answered (store error).
 */
static int dry_run_queue_check(struct daemon *d, const struct http_request *req,
			       const struct spec *s, int skip_duplicate,
			       const struct quota_limits *q, struct quota_verdict *v,
			       struct http_response *r)
{
	struct store_err err = { 0 };
	struct store_owner_counts oc;
	char hash[65];
	int rc = 0;
	struct store *rd = api_reader(d, r);
	if (!rd)
		return -1;
	if (skip_duplicate && spec_hash(s, hash) == 0 &&
	    store_experiment_find_hash(rd, hash, STORE_SUCCEEDED) > 0)
		goto out;
	if (store_owner_counts(rd, req->user, &oc, &err) != 0) {
		api_store_problem(r, &err, "counting queued runs");
		rc = -1;
		goto out;
	}
	rc = quota_check_queue(q, req->user, &oc, 1, 0, v);
out:
	store_close(rd);
	return rc;
}

/* ---- a child's parent (spec "parent") ------------------------------------------------------ */

void api_final_ckpt_path(const char *runs_dir, int64_t id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%" PRId64 "/final.safetensors", runs_dir, id);
}

static int parent_resolve(void *arg, const struct spec *s, struct spec *parent, char hash[65],
			  struct spec_error *e)
{
	struct api_parent_ctx *pc = arg;
	struct store_experiment pe;
	struct store_err err = { 0 };
	struct store *rd = NULL;
	char path[CONFIG_PATH_MAX + 64];
	int rc = NL_EINVAL;
	memset(&pe, 0, sizeof pe);
	if (s->init_from[0]) {
		snprintf(e->pointer, sizeof e->pointer, "/init_from");
		snprintf(e->msg, sizeof e->msg, "the daemon starts a child from one of its runs: give "
			 "\"parent\": \"<run id>\" (init_from is a checkpoint path for the CLI)");
		return NL_EINVAL;
	}
	snprintf(e->pointer, sizeof e->pointer, "/parent");
	int64_t id = strtoll(s->parent, NULL, 10);
	if (daemon_reader(pc->d, &rd, &err) != 0) {
		snprintf(e->msg, sizeof e->msg, "the database is not available: %.200s", err.msg);
		return NL_EIO;
	}
	if (store_experiment_get(rd, id, &pe, &err) < 0 || !api_can_read(pc->req, pe.owner)) {
		/* someone else's run reads exactly like a missing one */
		snprintf(e->msg, sizeof e->msg, "experiment %s does not exist", s->parent);
		goto out;
	}
	if (pe.status != STORE_SUCCEEDED) {
		snprintf(e->msg, sizeof e->msg, "experiment %s is %s: a child starts from a finished "
			 "(succeeded) run", s->parent, store_status_name(pe.status));
		goto out;
	}
	api_final_ckpt_path(pc->d->cfg.runs_dir, id, path, sizeof path);
	if (access(path, R_OK) != 0) {
		snprintf(e->msg, sizeof e->msg, "experiment %s has no final checkpoint to start from "
			 "(its run directory was removed)", s->parent);
		goto out;
	}
	struct spec_errors pe_errs = { 0 };
	if (!pe.spec || spec_parse(parent, pe.spec, strlen(pe.spec), NULL, &pe_errs) != 0) {
		snprintf(e->msg, sizeof e->msg, "experiment %s: its stored spec no longer validates "
			 "(%.40s: %.80s)", s->parent, pe_errs.n ? pe_errs.e[0].pointer : "",
			 pe_errs.n ? pe_errs.e[0].msg : "");
		goto out;
	}
	memcpy(hash, pe.hash, 65);
	rc = 0;
out:
	store_experiment_clear(&pe);
	store_close(rd);
	return rc;
}

void api_parent_limits(struct api_parent_ctx *ctx, struct daemon *d,
		       const struct http_request *req, struct spec_limits *lim)
{
	ctx->d = d;
	ctx->req = req;
	lim->resolve_parent = parent_resolve;
	lim->parent_ctx = ctx;
}

static void location(struct http_response *r, const char *what, int64_t id)
{
	snprintf(r->location, sizeof r->location, "/api/v1/%s/%" PRId64, what, id);
}

static void h_create(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct exp_meta m;
	struct ferrs fe = { 0 };
	struct spec s;
	struct spec_errors serr;
	struct spec_limits lim;
	struct store_experiment e;
	struct quota_limits ql;
	struct quota_verdict qv;
	cJSON *body = NULL, *out = NULL;
	int64_t dry;
	int rc;

	struct api_parent_ctx pctx;
	memset(&e, 0, sizeof e);
	meta_init(&m);
	datasets_limits(d->datasets, (uint64_t)d->cfg.max_run_bytes, &lim);
	api_parent_limits(&pctx, d, req, &lim);
	if (api_query_int(req, r, "dry_run", 0, 1, 0, &dry) != 0)
		return;
	if (req->body_len > SPEC_JSON_MAX) {
		char msg[160];
		snprintf(msg, sizeof msg, "the spec is %zu bytes, above the limit of %d bytes",
			 req->body_len, SPEC_JSON_MAX);
		http_problem(r, 413, "body_too_large", msg, NULL, NULL, 0);
		return;
	}
	body = api_body_json(req, r);
	if (!body)
		return;
	if (meta_take(body, &m, &fe) != 0) {
		problem_oom(r);
		goto out;
	}
	if (fe.n) {
		ferr_answer(r, &fe, "invalid_field");
		goto out;
	}
	/* the body was scanned strictly and parsed once; the spec is validated from that tree
	 * (cJSON read each number as strtod does: the hash `normlab train` gets) */
	rc = spec_parse_tree(&s, body, &lim, &serr);
	if (rc == NL_ENOMEM) {
		problem_oom(r);
		goto out;
	}
	if (rc != 0) {
		api_spec_problem(r, &serr, rc, "");
		goto out;
	}
	if (s.threads > d->cfg.thread_budget) {
		const char *p = "/threads";
		char msg[160];
		snprintf(msg, sizeof msg, "%d threads is above the daemon's thread budget of %d; the "
			 "run could never start", s.threads, d->cfg.thread_budget);
		const char *mp = msg;
		http_problem(r, 422, "threads_over_budget", msg, &p, &mp, 1);
		goto out;
	}
	quota_limits_for(&d->cfg, req->is_admin, &ql);
	if (quota_check_priority(&ql, m.priority == INT32_MIN ? 0 : m.priority, "/priority",
				 &qv) != 0 || quota_check_spec(&ql, &s, "", &qv) != 0 ||
	    (dry && dry_run_queue_check(d, req, &s, m.skip_duplicate, &ql, &qv, r) != 0)) {
		if (qv.status)
			quota_problem(r, &qv);
		goto out;
	}

	if (dry) {
		char hash[65], *canon = spec_canonical(&s);
		cJSON *spec_obj = canon ? cJSON_Parse(canon) : NULL;
		nl_free(canon);
		out = cJSON_CreateObject();
		if (!out || !spec_obj || spec_hash(&s, hash) != 0 ||
		    !cJSON_AddTrueToObject(out, "valid") || !cJSON_AddStringToObject(out, "hash", hash) ||
		    !cJSON_AddItemToObject(out, "spec", spec_obj)) {
			cJSON_Delete(spec_obj);   /* not attached to out on any of these paths */
			problem_oom(r);
			goto out;
		}
		struct spec_store_est est;
		spec_store_estimate(&s, &est);
		if (!cJSON_AddNumberToObject(out, "memory_bytes", (double)spec_mem_estimate(&s)) ||
		    !cJSON_AddNumberToObject(out, "stored_bytes", (double)est.total) ||
		    !cJSON_AddNumberToObject(out, "compute_gflop",
					     ceil(spec_flops_estimate(&s) / 1e9))) {
			problem_oom(r);
			goto out;
		}
		api_reply(r, 200, out);
		out = NULL;
		goto out;
	}

	if (api_experiment_from_spec(&e, &s) != 0) {
		problem_oom(r);
		goto out;
	}
	nl_strlcpy(e.owner, req->user, sizeof e.owner);
	e.priority = m.priority == INT32_MIN ? 0 : m.priority;
	e.tags = m.tags;
	e.notes = m.notes;
	m.tags = m.notes = NULL;   /* e owns them now */
	e.status = STORE_QUEUED;
	e.cell = -1;
	e.loss = e.val_loss = NAN;
	e.created_at = daemon_now();

	struct create_ctx c;
	memset(&c, 0, sizeof c);
	c.d = d;
	c.e = &e;
	c.skip_duplicate = m.skip_duplicate;
	c.limits = &ql;
	c.dedup_owner = req->read_own_only ? req->user : NULL;
	c.spec = &s;
	rc = sched_call(d->sched, create_fn, &c);
	if (api_stopping(r, rc))
		goto out;
	if (rc == CREATE_OVER_QUOTA) {
		quota_problem(r, &c.quota);
		goto out;
	}
	if (rc < 0) {
		api_store_problem(r, &c.err, "submitting the experiment");
		goto out;
	}
	if (c.duplicate_of > 0) {
		out = cJSON_CreateObject();
		if (!out || !cJSON_AddNumberToObject(out, "id", (double)c.duplicate_of) ||
		    !cJSON_AddStringToObject(out, "hash", e.hash) ||
		    !cJSON_AddStringToObject(out, "status", store_status_name(STORE_SUCCEEDED)) ||
		    !cJSON_AddTrueToObject(out, "skipped") ||
		    !cJSON_AddNumberToObject(out, "duplicate_of", (double)c.duplicate_of)) {
			problem_oom(r);
			goto out;
		}
		location(r, "experiments", c.duplicate_of);
		api_reply(r, 200, out);
		out = NULL;
		goto out;
	}
	out = api_experiment_json(&e, 1);
	if (!out) {
		problem_oom(r);
		goto out;
	}
	location(r, "experiments", e.id);
	api_reply(r, 201, out);
	out = NULL;
out:
	cJSON_Delete(out);
	cJSON_Delete(body);
	store_experiment_clear(&e);
	meta_clear(&m);
}

/* ---- GET /api/v1/experiments ------------------------------------------------------------------ */

struct page_ctx {
	cJSON *items;
	int want;               /* page_size */
	int got;
	int64_t last_id;
	int more;               /* a row past the page exists */
	int oom;
};

static int page_cb(void *arg, const struct store_experiment *e)
{
	struct page_ctx *p = arg;
	if (p->got == p->want) {
		p->more = 1;
		return 1;
	}
	cJSON *o = api_experiment_json(e, 0);
	if (!o || !cJSON_AddItemToArray(p->items, o)) {
		cJSON_Delete(o);
		p->oom = 1;
		return 1;
	}
	p->got++;
	p->last_id = e->id;
	return 0;
}

static int probe_cb(void *arg, const struct store_experiment *e)
{
	(void)e;
	((struct page_ctx *)arg)->more = 1;
	return 1;
}

/* A string filter from the query: absent or empty → NULL. Answers 400 and returns -1 if longer
 * than cap bytes. */
static int query_str(const struct http_request *req, struct http_response *r, const char *key,
		     size_t cap, const char **out)
{
	const char *v = http_query(req, key);
	*out = v && *v ? v : NULL;
	if (*out && strlen(*out) > cap) {
		char d[160];
		snprintf(d, sizeof d, "query parameter %s is longer than %zu bytes", key, cap);
		http_problem(r, 400, "invalid_parameter", d, NULL, NULL, 0);
		return -1;
	}
	return 0;
}

/* page_token: the decimal id of the previous page's last item. */
static int parse_token(const char *t, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(t);
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9')
			return -1;
		v = v * 10 + (t[i] - '0');
	}
	*out = v;
	return 0;
}

static void h_list(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_filter f;
	struct store_err err = { 0 };
	struct page_ctx p;
	struct store *rd = NULL;
	cJSON *out = NULL;
	int64_t sweep, page_size;
	const char *v;

	memset(&f, 0, sizeof f);
	memset(&p, 0, sizeof p);
	f.status = -1;
	v = http_query(req, "status");
	if (v && *v) {
		f.status = store_status_parse(v);
		if (f.status < 0) {
			char d_[320], allowed[160] = "";
			size_t n = 0;
			for (int i = STORE_QUEUED; i < STORE_STATUS_COUNT && n < sizeof allowed; i++) {
				int w = snprintf(allowed + n, sizeof allowed - n, "%s%s", i ? ", " : "",
						 store_status_name(i));
				if (w > 0)
					n += (size_t)w;
			}
			snprintf(d_, sizeof d_, "query parameter status=%.40s must be one of %s", v,
				 allowed);
			http_problem(r, 400, "invalid_parameter", d_, NULL, NULL, 0);
			return;
		}
	}
	if (api_query_int(req, r, "sweep", 1, INT64_MAX, 0, &sweep) != 0 ||
	    api_query_int(req, r, "page_size", 1, EXP_PAGE_MAX, EXP_PAGE_DEFAULT, &page_size) != 0)
		return;
	f.sweep_id = sweep;
	if (query_str(req, r, "norm_type", EXP_FILTER_BYTES, &f.norm_type) != 0 ||
	    (!f.norm_type && query_str(req, r, "type", EXP_FILTER_BYTES, &f.norm_type) != 0) ||
	    query_str(req, r, "placement", EXP_FILTER_BYTES, &f.placement) != 0 ||
	    query_str(req, r, "owner", EXP_FILTER_BYTES, &f.owner) != 0 ||
	    query_str(req, r, "tag", EXP_FILTER_BYTES, &f.tag) != 0 ||
	    query_str(req, r, "arch", EXP_FILTER_BYTES, &f.arch) != 0)
		return;
	int none_visible;
	f.owner = api_list_owner(req, f.owner, &none_visible);
	if (none_visible) {
		http_json(r, 200, "{\"items\":[],\"next_page_token\":null}");
		return;
	}
	v = http_query(req, "page_token");
	if (v && *v && parse_token(v, &f.after_id) != 0) {
		http_problem(r, 400, "invalid_page_token", "page_token must be the next_page_token of "
			     "a previous page", NULL, NULL, 0);
		return;
	}

	rd = api_reader(d, r);
	if (!rd)
		return;
	p.items = cJSON_CreateArray();
	if (!p.items) {
		problem_oom(r);
		goto out;
	}
	p.want = (int)page_size;
	/* one row past the page tells whether there is a next one; the store lists at most
	 * EXP_PAGE_MAX rows, so a full-size page asks a second time for that row */
	f.limit = p.want < EXP_PAGE_MAX ? p.want + 1 : EXP_PAGE_MAX;
	if (store_experiment_list(rd, &f, page_cb, &p, &err) < 0) {
		api_store_problem(r, &err, "listing experiments");
		goto out;
	}
	if (p.oom) {
		problem_oom(r);
		goto out;
	}
	if (!p.more && p.got == p.want && f.limit == p.want) {
		f.after_id = p.last_id;
		f.limit = 1;
		if (store_experiment_list(rd, &f, probe_cb, &p, &err) < 0) {
			api_store_problem(r, &err, "listing experiments");
			goto out;
		}
	}
	out = cJSON_CreateObject();
	if (!out || !cJSON_AddItemToObject(out, "items", p.items)) {
		problem_oom(r);
		goto out;
	}
	p.items = NULL;
	if (p.more) {
		char tok[24];
		snprintf(tok, sizeof tok, "%" PRId64, p.last_id);
		if (!cJSON_AddStringToObject(out, "next_page_token", tok)) {
			problem_oom(r);
			goto out;
		}
	} else if (!cJSON_AddNullToObject(out, "next_page_token")) {
		problem_oom(r);
		goto out;
	}
	api_reply(r, 200, out);
	out = NULL;
out:
	cJSON_Delete(out);
	cJSON_Delete(p.items);
	store_close(rd);
}

/* ---- GET /api/v1/experiments/{id} ------------------------------------------------------------- */

/* Reads experiment id into e through a per-request reader; answers 404/500/503 and returns -1
 * on failure. */
static int read_experiment(struct daemon *d, int64_t id, struct store_experiment *e,
			   struct http_response *r)
{
	struct store_err err = { 0 };
	char what[48];
	struct store *rd = api_reader(d, r);
	if (!rd)
		return -1;
	int rc = store_experiment_get(rd, id, e, &err);
	store_close(rd);
	if (rc < 0) {
		snprintf(what, sizeof what, "experiment %" PRId64, id);
		api_store_problem(r, &err, what);
		return -1;
	}
	return 0;
}

static void reply_experiment(struct http_response *r, int status, const struct store_experiment *e,
			     int with_spec)
{
	cJSON *o = api_experiment_json(e, with_spec);
	if (o && with_spec && !cJSON_GetObjectItemCaseSensitive(o, "checkpoint_step"))
		cJSON_AddNumberToObject(o, "checkpoint_step", (double)e->ckpt_step);
	if (!o) {
		problem_oom(r);
		return;
	}
	api_reply(r, status, o);
}

#define EXP_CHILDREN_MAX 1000   /* children listed in one experiment's GET */

struct children_ctx {
	int64_t ids[EXP_CHILDREN_MAX];
	int n;
};

static int child_cb(void *arg, int64_t id)
{
	struct children_ctx *c = arg;
	c->ids[c->n++] = id;
	return c->n == EXP_CHILDREN_MAX;
}

/* "children": the ids of the runs started from this one that req may read (oldest first). */
static int add_children(struct daemon *d, const struct http_request *req, cJSON *o, int64_t id)
{
	struct store_err err = { 0 };
	struct store *rd = NULL;
	struct children_ctx *c = nl_calloc(1, sizeof *c);
	cJSON *arr = cJSON_AddArrayToObject(o, "children");
	int rc = -1;
	if (!c || !arr || daemon_reader(d, &rd, &err) != 0 ||
	    store_experiment_children(rd, id, child_cb, c, &err) < 0)
		goto out;
	for (int i = 0; i < c->n; i++) {
		if (req->read_own_only) {
			struct store_experiment ce;
			int ok = store_experiment_get(rd, c->ids[i], &ce, &err) == 0 &&
				 api_can_read(req, ce.owner);
			store_experiment_clear(&ce);
			if (!ok)
				continue;
		}
		if (!cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)c->ids[i])))
			goto out;
	}
	rc = 0;
out:
	store_close(rd);
	nl_free(c);
	return rc;
}

static void h_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct store_experiment e;
	char what[48];
	if (read_experiment(ctx, req->params[0], &e, r) != 0)
		return;
	snprintf(what, sizeof what, "experiment %" PRId64, e.id);
	if (!api_hide_unless_readable(req, r, e.owner, what)) {
		cJSON *o = api_experiment_json(&e, 1);
		if (!o || add_children(ctx, req, o, e.id) != 0) {
			cJSON_Delete(o);
			problem_oom(r);
		} else {
			api_reply(r, 200, o);
		}
	}
	store_experiment_clear(&e);
}

/* ---- PATCH /api/v1/experiments/{id} ----------------------------------------------------------- */

struct patch_ctx {
	int64_t id;
	const struct exp_meta *m;
	struct store_experiment out;    /* the experiment after the change */
	struct store_err err;
};

static int patch_fn(struct store *w, void *arg)
{
	struct patch_ctx *c = arg;
	int rc = store_experiment_patch(w, c->id, c->m->tags, c->m->notes, c->m->priority, &c->err);
	if (rc < 0)
		return rc;
	return store_experiment_get(w, c->id, &c->out, &c->err);
}

static void h_patch(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct exp_meta m;
	struct ferrs fe = { 0 }, unknown = { 0 };
	struct store_experiment e;
	struct patch_ctx c;
	cJSON *body;
	int rc, changes = 0;

	memset(&e, 0, sizeof e);
	memset(&c, 0, sizeof c);
	meta_init(&m);
	body = api_body_json(req, r);
	if (!body)
		return;
	for (const cJSON *v = body->child; v; v = v->next) {
		if (strcmp(v->string, "tags") && strcmp(v->string, "notes") &&
		    strcmp(v->string, "priority")) {
			ferr_add(&unknown, v->string, "unknown field (a PATCH may change only tags, "
				 "notes and priority)");
			continue;
		}
		if (cJSON_GetObjectItemCaseSensitive(body, v->string) != v) {
			ferr_add(&fe, v->string, "duplicate field (given more than once)");
			continue;
		}
		if (meta_field(&m, v, &fe) < 0) {
			problem_oom(r);
			goto out;
		}
		changes++;
	}
	if (unknown.n) {
		ferr_answer(r, &unknown, "unknown_field");
		goto out;
	}
	if (fe.n) {
		ferr_answer(r, &fe, "invalid_field");
		goto out;
	}
	if (read_experiment(d, req->params[0], &e, r) != 0)
		goto out;
	if (api_forbid_unless_owner(req, r, e.owner))
		goto out;
	if (m.priority != INT32_MIN) {
		struct quota_limits ql;
		struct quota_verdict qv;
		quota_limits_for(&d->cfg, req->is_admin, &ql);
		if (quota_check_priority(&ql, m.priority, "/priority", &qv) != 0) {
			quota_problem(r, &qv);
			goto out;
		}
	}
	if (!changes) {
		reply_experiment(r, 200, &e, 1);
		goto out;
	}
	c.id = e.id;
	c.m = &m;
	rc = sched_call(d->sched, patch_fn, &c);
	if (api_stopping(r, rc))
		goto out;
	if (rc < 0) {
		char what[48];
		snprintf(what, sizeof what, "experiment %" PRId64, e.id);
		api_store_problem(r, &c.err, what);
		goto out;
	}
	reply_experiment(r, 200, &c.out, 1);
out:
	cJSON_Delete(body);
	store_experiment_clear(&e);
	store_experiment_clear(&c.out);
	meta_clear(&m);
}

/* ---- DELETE /api/v1/experiments/{id} ---------------------------------------------------------- */

#define DELETE_RUNNING 1

struct delete_ctx {
	struct daemon *d;
	int64_t id;
	struct store_err err;
};

static int delete_fn(struct store *w, void *arg)
{
	struct delete_ctx *c = arg;
	struct store_experiment e;
	int rc = store_experiment_get(w, c->id, &e, &c->err);
	if (rc < 0)
		return rc;
	if (e.status == STORE_RUNNING) {
		store_experiment_clear(&e);
		return DELETE_RUNNING;
	}
	/*
	 * Files first, on this (the loop) thread so no run of it can start meanwhile: on a full disk
	 * the checkpoints are the space the row's deletion needs (WAL writes the changed pages
	 * first). If the row then cannot go, a retry finds no directory and the run, should it be
	 * started, begins again from step 0. If even that is not enough, the reserve is given back.
	 */
	api_run_dir_remove(c->d, c->id);
	rc = store_experiment_delete(w, c->id, &c->err);
	if ((rc == STORE_EFULL || rc == STORE_EIO) && store_reserve_release(w)) {
		LOG_WARN("experiment %" PRId64 ": delete hit a full disk; released the storage reserve",
			 c->id);
		rc = store_experiment_delete(w, c->id, &c->err);
	}
	if (rc == 0) {
		exp_event(c->d, w, "experiment.deleted", &e);
		/* space was just freed: take the reserve back if there is room for it */
		store_reserve_make(w, c->d->cfg.storage_reserve_bytes, NULL);
	}
	store_experiment_clear(&e);
	return rc;
}

static void h_delete(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_experiment e;
	struct delete_ctx c = { d, req->params[0], { 0, "" } };
	char msg[200];
	int rc;

	if (read_experiment(d, req->params[0], &e, r) != 0)
		return;
	if (api_forbid_unless_owner(req, r, e.owner))
		goto out;
	rc = sched_call(d->sched, delete_fn, &c);
	if (api_stopping(r, rc))
		goto out;
	if (rc == DELETE_RUNNING) {
		snprintf(msg, sizeof msg, "experiment %" PRId64 " is running; cancel it first "
			 "(POST /api/v1/experiments/%" PRId64 "/cancel)", e.id, e.id);
		http_problem(r, 409, "running", msg, NULL, NULL, 0);
		goto out;
	}
	if (rc < 0) {
		snprintf(msg, sizeof msg, "experiment %" PRId64, e.id);
		api_store_problem(r, &c.err, msg);
		goto out;
	}
	nl_free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = 204;
out:
	store_experiment_clear(&e);
}

/* ---- POST /api/v1/experiments/{id}/cancel ----------------------------------------------------- */

static void h_cancel(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_experiment e;
	char msg[200];
	int rc;

	if (read_experiment(d, req->params[0], &e, r) != 0)
		return;
	if (api_forbid_unless_owner(req, r, e.owner))
		goto out;
	rc = sched_cancel(d->sched, e.id);
	if (api_stopping(r, rc))
		goto out;
	if (rc == 1) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddNumberToObject(o, "id", (double)e.id) ||
		    !cJSON_AddStringToObject(o, "status", "cancelling")) {
			cJSON_Delete(o);
			problem_oom(r);
			goto out;
		}
		api_reply(r, 202, o);
	} else if (rc == 0) {
		store_experiment_clear(&e);
		if (read_experiment(d, req->params[0], &e, r) == 0)
			reply_experiment(r, 200, &e, 0);
	} else if (rc == -2) {
		store_experiment_clear(&e);
		if (read_experiment(d, req->params[0], &e, r) != 0)
			goto out;
		snprintf(msg, sizeof msg, "experiment %" PRId64 " has already ended (%s); there is "
			 "nothing to cancel", e.id, store_status_name(e.status));
		http_problem(r, 409, "not_cancellable", msg, NULL, NULL, 0);
	} else if (rc == STORE_ENOTFOUND) {
		snprintf(msg, sizeof msg, "experiment %" PRId64 " does not exist", e.id);
		http_problem(r, 404, "not_found", msg, NULL, NULL, 0);
	} else {
		snprintf(msg, sizeof msg, "cancelling experiment %" PRId64 " failed (%d)", e.id, rc);
		http_problem(r, 500, "store_error", msg, NULL, NULL, 0);
	}
out:
	store_experiment_clear(&e);
}

const struct http_route api_experiment_routes[] = {
	{ "POST", "/api/v1/experiments", HTTP_WRITE, h_create },
	{ "GET", "/api/v1/experiments", HTTP_READ, h_list },
	{ "GET", "/api/v1/experiments/{id}", HTTP_READ, h_get },
	{ "PATCH", "/api/v1/experiments/{id}", HTTP_WRITE, h_patch },
	{ "DELETE", "/api/v1/experiments/{id}", HTTP_WRITE, h_delete },
	{ "POST", "/api/v1/experiments/{id}/cancel", HTTP_WRITE, h_cancel },
};
const int api_experiment_routes_n =
	(int)(sizeof api_experiment_routes / sizeof api_experiment_routes[0]);
