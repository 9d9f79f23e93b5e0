/*
 * store_exp.c — experiments and sweeps: insert, get, state changes, the queue pick, filtered
 * cursor-paginated lists, sweep cell counts. Statuses are stored as their names so the database
 * reads well in the sqlite3 shell.
 * Owns the experiment/sweep rows it reads until the callback returns (callbacks borrow them).
 * Threading: the struct store's thread (see store.c); writes need the writer connection. The store
 * does not police status transitions: the scheduler owns the state machine.
 */
#include "store_int.h"

#include <math.h>
#include <string.h>

#include "nl.h"

#define EXP_COLS \
	"id, hash, spec, name, norm_type, placement, n_layer, seed, threads, steps, owner, " \
	"priority, sweep_id, cell, status, step, ckpt_step, loss, val_loss, diverged_step, error, " \
	"tags, notes, created_at, started_at, finished_at, parent_id, health, health_step, health_reason"

void store_experiment_clear(struct store_experiment *e)
{
	if (!e)
		return;
	nl_free(e->spec);
	nl_free(e->error);
	nl_free(e->tags);
	nl_free(e->notes);
	nl_free(e->health_reason);
	memset(e, 0, sizeof *e);
}

void store_sweep_clear(struct store_sweep *w)
{
	if (!w)
		return;
	nl_free(w->request);
	memset(w, 0, sizeof *w);
}

static void col_copy(char *dst, size_t cap, sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	nl_strlcpy(dst, v ? v : "", cap);
}

/* An owned copy of column i, or NULL for SQL NULL. Returns -1 only when out of memory. */
static int col_dup(char **dst, sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	*dst = NULL;
	if (!v)
		return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : -1;
	*dst = nl_strdup(v);
	return *dst ? 0 : -1;
}

static double col_real_or_nan(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Fills e from a row of EXP_COLS; on failure e is cleared. */
static int exp_from_row(sqlite3_stmt *st, struct store_experiment *e, struct store_err *err)
{
	int rc = 0;
	memset(e, 0, sizeof *e);
	e->id = sqlite3_column_int64(st, 0);
	col_copy(e->hash, sizeof e->hash, st, 1);
	col_copy(e->name, sizeof e->name, st, 3);
	col_copy(e->norm_type, sizeof e->norm_type, st, 4);
	col_copy(e->placement, sizeof e->placement, st, 5);
	e->n_layer = sqlite3_column_int(st, 6);
	e->seed = sqlite3_column_int64(st, 7);
	e->threads = sqlite3_column_int(st, 8);
	e->steps = sqlite3_column_int64(st, 9);
	col_copy(e->owner, sizeof e->owner, st, 10);
	e->priority = sqlite3_column_int(st, 11);
	e->sweep_id = sqlite3_column_int64(st, 12);   /* NULL reads as 0 = none */
	e->cell = sqlite3_column_int(st, 13);
	e->status = store_status_parse((const char *)sqlite3_column_text(st, 14));
	e->step = sqlite3_column_int64(st, 15);
	e->ckpt_step = sqlite3_column_int64(st, 16);
	e->loss = col_real_or_nan(st, 17);
	e->val_loss = col_real_or_nan(st, 18);
	e->diverged_step = sqlite3_column_int64(st, 19);
	e->created_at = sqlite3_column_double(st, 23);
	e->started_at = sqlite3_column_double(st, 24);
	e->finished_at = sqlite3_column_double(st, 25);
	e->parent_id = sqlite3_column_int64(st, 26);   /* NULL reads as 0 = none */
	col_copy(e->health, sizeof e->health, st, 27);
	e->health_step = sqlite3_column_int64(st, 28);
	if (e->status < 0) {
		rc = store__err(err, STORE_EIO, "experiment %lld: unknown status '%s' in the database",
				(long long)e->id, (const char *)sqlite3_column_text(st, 14));
		goto out;
	}
	if (col_dup(&e->spec, st, 2) || col_dup(&e->error, st, 20) || col_dup(&e->tags, st, 21) ||
	    col_dup(&e->notes, st, 22) || col_dup(&e->health_reason, st, 29))
		rc = store__err(err, STORE_ENOMEM, "experiment %lld: out of memory", (long long)e->id);
out:
	if (rc < 0)
		store_experiment_clear(e);
	return rc;
}

static int status_ok(int status)
{
	return status >= STORE_QUEUED && status < STORE_STATUS_COUNT;
}

int store_experiment_insert(struct store *s, struct store_experiment *e, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "experiment insert", err);
	if (rc < 0)
		return rc;
	if (!e || !e->spec || !status_ok(e->status))
		return store__err(err, STORE_EINVAL, "experiment insert: missing spec or bad status");
	rc = store__stmt(s, ST_EXP_INSERT,
			 "INSERT INTO experiments (hash, spec, name, norm_type, placement, n_layer, "
			 "seed, threads, steps, owner, priority, sweep_id, cell, status, step, "
			 "ckpt_step, loss, val_loss, diverged_step, error, tags, notes, created_at, "
			 "started_at, finished_at, parent_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
			 "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, "
			 "?24, ?25, ?26)",
			 &st, err);
	if (rc < 0)
		return rc;
	store__bind_text(st, 1, e->hash, sizeof e->hash);
	sqlite3_bind_text(st, 2, e->spec, -1, SQLITE_STATIC);
	store__bind_text(st, 3, e->name, sizeof e->name);
	store__bind_text(st, 4, e->norm_type, sizeof e->norm_type);
	store__bind_text(st, 5, e->placement, sizeof e->placement);
	sqlite3_bind_int(st, 6, e->n_layer);
	sqlite3_bind_int64(st, 7, e->seed);
	sqlite3_bind_int(st, 8, e->threads);
	sqlite3_bind_int64(st, 9, e->steps);
	store__bind_text(st, 10, e->owner, sizeof e->owner);
	sqlite3_bind_int(st, 11, e->priority);
	if (e->sweep_id > 0)
		sqlite3_bind_int64(st, 12, e->sweep_id);
	else
		sqlite3_bind_null(st, 12);
	sqlite3_bind_int(st, 13, e->cell);
	sqlite3_bind_text(st, 14, store_status_name(e->status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 15, e->step);
	sqlite3_bind_int64(st, 16, e->ckpt_step);
	if (isfinite(e->loss))
		sqlite3_bind_double(st, 17, e->loss);
	else
		sqlite3_bind_null(st, 17);
	if (isfinite(e->val_loss))
		sqlite3_bind_double(st, 18, e->val_loss);
	else
		sqlite3_bind_null(st, 18);
	sqlite3_bind_int64(st, 19, e->diverged_step);
	store__bind_text_or_null(st, 20, e->error);
	sqlite3_bind_text(st, 21, e->tags ? e->tags : "[]", -1, SQLITE_STATIC);
	store__bind_text_or_null(st, 22, e->notes);
	sqlite3_bind_double(st, 23, e->created_at);
	sqlite3_bind_double(st, 24, e->started_at);
	sqlite3_bind_double(st, 25, e->finished_at);
	if (e->parent_id > 0)
		sqlite3_bind_int64(st, 26, e->parent_id);
	else
		sqlite3_bind_null(st, 26);
	rc = store__run(s, st, "experiment insert", err);
	if (rc == 0)
		e->id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

int store_experiment_children(struct store *s, int64_t id,
			      int (*cb)(void *ctx, int64_t child_id), void *ctx,
			      struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__stmt(s, ST_EXP_CHILDREN,
			     "SELECT id FROM experiments WHERE parent_id = ?1 ORDER BY id", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	int n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (cb(ctx, sqlite3_column_int64(st, 0)))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		n = store__err(err, STORE_EIO, "listing children: %s", sqlite3_errmsg(s->db));
	sqlite3_reset(st);
	return n;
}

int store_experiment_get(struct store *s, int64_t id, struct store_experiment *out,
			 struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s || !out)
		return store__err(err, STORE_EINVAL, "experiment get: bad arguments");
	memset(out, 0, sizeof *out);
	rc = store__stmt(s, ST_EXP_GET, "SELECT " EXP_COLS " FROM experiments WHERE id = ?1", &st,
			 err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = exp_from_row(st, out, err);
	else if (rc == SQLITE_DONE)
		rc = store__err(err, STORE_ENOTFOUND, "experiment %lld not found", (long long)id);
	else
		rc = store__fail(s, rc, "experiment get", err);
out:
	store__done(st);
	return rc;
}

int64_t store_experiment_find_hash_owner(struct store *s, const char *hash, int status,
					 const char *owner)
{
	sqlite3_stmt *st = NULL;
	int64_t id;
	int rc;

	if (!s || !hash || status >= STORE_STATUS_COUNT)
		return STORE_EINVAL;
	/* A succeeded run counts only with every step's data stored: a row a failing disk (or an
	 * older daemon that called such a run succeeded) left short of its steps is no duplicate.
	 * owner (NULL = anyone's): with private reads, dedup must not reveal what others ran. */
	rc = store__stmt(s, ST_EXP_FIND_HASH,
			 "SELECT id FROM experiments WHERE hash = ?1 AND (?2 IS NULL OR status = ?2) "
			 "AND (?2 IS NOT 'succeeded' OR step >= steps) AND (?3 IS NULL OR owner = ?3) "
			 "ORDER BY id DESC LIMIT 1", &st, NULL);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	if (status >= 0)
		sqlite3_bind_text(st, 2, store_status_name(status), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	if (owner)
		sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	rc = sqlite3_step(st);
	id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : STORE_EIO;
	store__done(st);
	return id;
}

int64_t store_experiment_find_hash(struct store *s, const char *hash, int status)
{
	return store_experiment_find_hash_owner(s, hash, status, NULL);
}

/* Runs an UPDATE/DELETE of one experiment; ENOTFOUND when it touched no row. */
static int run_one(struct store *s, sqlite3_stmt *st, int64_t id, const char *what,
		   struct store_err *err)
{
	int rc = store__run(s, st, what, err);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = store__err(err, STORE_ENOTFOUND, "%s: experiment %lld not found", what,
				(long long)id);
	return rc;
}

int store_experiment_set_status(struct store *s, int64_t id, int status, const char *error,
				double now, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "set status", err);
	if (rc < 0)
		return rc;
	if (!status_ok(status))
		return store__err(err, STORE_EINVAL, "set status: bad status %d", status);
	/* started_at: the first start (a resumed run keeps it); finished_at: set by a terminal
	 * state, cleared when the run goes back to the queue or runs again. */
	rc = store__stmt(s, ST_EXP_STATUS,
			 "UPDATE experiments SET status = ?2, error = ?3, "
			 "started_at = CASE WHEN ?5 AND started_at = 0 THEN ?4 ELSE started_at END, "
			 "finished_at = CASE WHEN ?6 THEN ?4 WHEN ?7 THEN 0 ELSE finished_at END "
			 "WHERE id = ?1", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, store_status_name(status), -1, SQLITE_STATIC);
	store__bind_text_or_null(st, 3, error);
	sqlite3_bind_double(st, 4, now);
	sqlite3_bind_int(st, 5, status == STORE_RUNNING);
	sqlite3_bind_int(st, 6, status == STORE_SUCCEEDED || status == STORE_FAILED ||
				status == STORE_CANCELLED || status == STORE_DIVERGED);
	sqlite3_bind_int(st, 7, status == STORE_QUEUED || status == STORE_RUNNING);
	return run_one(s, st, id, "set status", err);
}

int store_experiment_progress(struct store *s, int64_t id, int64_t step, double loss,
			      double val_loss, int64_t diverged_step, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "progress", err);
	if (rc < 0)
		return rc;
	rc = store__stmt(s, ST_EXP_PROGRESS,
			 "UPDATE experiments SET step = ?2, loss = coalesce(?3, loss), "
			 "val_loss = coalesce(?4, val_loss), "
			 "diverged_step = CASE WHEN ?5 = 0 THEN diverged_step ELSE ?5 END "
			 "WHERE id = ?1", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, step);
	/* NaN binds as NULL in SQLite anyway; say it: NaN means "keep the old value". */
	if (isnan(loss))
		sqlite3_bind_null(st, 3);
	else
		sqlite3_bind_double(st, 3, loss);
	if (isnan(val_loss))
		sqlite3_bind_null(st, 4);
	else
		sqlite3_bind_double(st, 4, val_loss);
	sqlite3_bind_int64(st, 5, diverged_step);
	return run_one(s, st, id, "progress", err);
}

int store_experiment_reset(struct store *s, int64_t id, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "reset", err);
	if (rc < 0)
		return rc;
	rc = store__stmt(s, ST_EXP_RESET,
			 "UPDATE experiments SET step = 0, ckpt_step = 0, loss = NULL, val_loss = NULL, "
			 "diverged_step = 0, error = NULL, started_at = 0, finished_at = 0, "
			 "health = 'ok', health_step = 0, health_reason = NULL WHERE id = ?1",
			 &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return run_one(s, st, id, "reset", err);
}

int store_experiment_set_health(struct store *s, int64_t id, const char *health, int64_t step,
				const char *reason, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "set health", err);
	if (rc < 0)
		return rc;
	rc = store__stmt(s, ST_EXP_HEALTH, "UPDATE experiments SET health = ?2, health_step = ?3, "
			 "health_reason = ?4 WHERE id = ?1", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, health, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, step);
	if (reason && reason[0])
		sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	return run_one(s, st, id, "set health", err);
}

int store_experiment_set_ckpt(struct store *s, int64_t id, int64_t ckpt_step, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "set ckpt", err);
	if (rc < 0)
		return rc;
	rc = store__stmt(s, ST_EXP_CKPT, "UPDATE experiments SET ckpt_step = ?2 WHERE id = ?1", &st,
			 err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, ckpt_step);
	return run_one(s, st, id, "set ckpt", err);
}

int store_experiment_patch(struct store *s, int64_t id, const char *tags, const char *notes,
			   int priority, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "patch", err);
	if (rc < 0)
		return rc;
	rc = store__stmt(s, ST_EXP_PATCH,
			 "UPDATE experiments SET tags = coalesce(?2, tags), "
			 "notes = coalesce(?3, notes), priority = coalesce(?4, priority) "
			 "WHERE id = ?1", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	store__bind_text_or_null(st, 2, tags);
	store__bind_text_or_null(st, 3, notes);
	if (priority == INT32_MIN)
		sqlite3_bind_null(st, 4);
	else
		sqlite3_bind_int(st, 4, priority);
	return run_one(s, st, id, "patch", err);
}

int store_experiment_delete(struct store *s, int64_t id, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "delete", err);
	if (rc < 0)
		return rc;
	/* scalars, depth and samples go with it: ON DELETE CASCADE, in this one statement. */
	rc = store__stmt(s, ST_EXP_DELETE, "DELETE FROM experiments WHERE id = ?1", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return run_one(s, st, id, "delete", err);
}

int store_recover_running(struct store *s, double now, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "recover running", err);
	if (rc < 0)
		return rc;
	(void)now;   /* an interrupted run is not finished: its timestamps stay as they are */
	rc = store__stmt(s, ST_EXP_RECOVER, "UPDATE experiments SET status = ?1 WHERE status = ?2",
			 &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, store_status_name(STORE_INTERRUPTED), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, store_status_name(STORE_RUNNING), -1, SQLITE_STATIC);
	rc = store__run(s, st, "recover running", err);
	return rc < 0 ? rc : sqlite3_changes(s->db);
}

int64_t store_next_queued(struct store *s, int max_threads)
{
	sqlite3_stmt *st = NULL;
	int64_t id;
	int rc;

	if (!s)
		return STORE_EINVAL;
	rc = store__stmt(s, ST_EXP_NEXT,
			 "SELECT id FROM experiments WHERE status = ?1 AND threads <= ?2 "
			 "ORDER BY priority DESC, id LIMIT 1", &st, NULL);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, store_status_name(STORE_QUEUED), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, max_threads);
	rc = sqlite3_step(st);
	id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : STORE_EIO;
	store__done(st);
	return id;
}

int64_t store_experiment_count(struct store *s, int status)
{
	sqlite3_stmt *st = NULL;
	int64_t n;
	int rc;

	if (!s || status < STORE_QUEUED || status >= STORE_STATUS_COUNT)
		return STORE_EINVAL;
	rc = store__stmt(s, ST_EXP_COUNT, "SELECT count(*) FROM experiments WHERE status = ?1", &st,
			 NULL);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, store_status_name(status), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : STORE_EIO;
	store__done(st);
	return n;
}

int store_experiment_list(struct store *s, const struct store_filter *f,
			  int (*cb)(void *ctx, const struct store_experiment *e), void *ctx,
			  struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	struct store_experiment e;
	int rc, count = 0;

	memset(&e, 0, sizeof e);
	if (!s || !f || !cb)
		return store__err(err, STORE_EINVAL, "experiment list: bad arguments");
	if (f->limit < 1 || f->limit > STORE__LIST_MAX)
		return store__err(err, STORE_EINVAL, "experiment list: limit %d not in 1..%d",
				  f->limit, STORE__LIST_MAX);
	if (f->status != -1 && !status_ok(f->status))
		return store__err(err, STORE_EINVAL, "experiment list: bad status %d", f->status);
	/* Filters are optional: a NULL parameter switches its condition off. Rows come in id
	 * order from the primary key, so the cursor is a range start and pages never overlap. */
	rc = store__stmt(s, ST_EXP_LIST,
			 "SELECT " EXP_COLS " FROM experiments WHERE id > ?1 "
			 "AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR sweep_id = ?3) "
			 "AND (?4 IS NULL OR norm_type = ?4) AND (?5 IS NULL OR placement = ?5) "
			 "AND (?6 IS NULL OR owner = ?6) "
			 "AND (?7 IS NULL OR EXISTS (SELECT 1 FROM json_each(experiments.tags) "
			 "WHERE json_each.type = 'text' AND json_each.value = ?7)) "
			 "AND (?9 IS NULL OR coalesce(json_extract(spec, '$.model.arch'), 'gpt') = ?9) "
			 "ORDER BY id LIMIT ?8", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, f->after_id > 0 ? f->after_id : 0);
	if (f->status >= 0)
		sqlite3_bind_text(st, 2, store_status_name(f->status), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	if (f->sweep_id > 0)
		sqlite3_bind_int64(st, 3, f->sweep_id);
	else
		sqlite3_bind_null(st, 3);
	store__bind_text_or_null(st, 4, f->norm_type);
	store__bind_text_or_null(st, 5, f->placement);
	store__bind_text_or_null(st, 6, f->owner);
	store__bind_text_or_null(st, 7, f->tag);
	sqlite3_bind_int(st, 8, f->limit);
	store__bind_text_or_null(st, 9, f->arch);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = exp_from_row(st, &e, err);
		if (rc < 0)
			goto out;
		count++;
		int stop = cb(ctx, &e);
		store_experiment_clear(&e);
		if (stop) {
			rc = SQLITE_DONE;   /* the callback stopped the scan */
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "experiment list", err);
out:
	store_experiment_clear(&e);
	store__done(st);
	return rc < 0 ? rc : count;
}

/* ---------- sweeps ---------- */

int store_sweep_insert(struct store *s, struct store_sweep *w, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "sweep insert", err);
	if (rc < 0)
		return rc;
	if (!w || !w->request)
		return store__err(err, STORE_EINVAL, "sweep insert: missing request");
	rc = store__stmt(s, ST_SWEEP_INSERT,
			 "INSERT INTO sweeps (owner, request, priority, n_cells, created_at) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)", &st, err);
	if (rc < 0)
		return rc;
	store__bind_text(st, 1, w->owner, sizeof w->owner);
	sqlite3_bind_text(st, 2, w->request, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, w->priority);
	sqlite3_bind_int(st, 4, w->n_cells);
	sqlite3_bind_double(st, 5, w->created_at);
	rc = store__run(s, st, "sweep insert", err);
	if (rc == 0)
		w->id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

int store_sweep_get(struct store *s, int64_t id, struct store_sweep *out, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s || !out)
		return store__err(err, STORE_EINVAL, "sweep get: bad arguments");
	memset(out, 0, sizeof *out);
	rc = store__stmt(s, ST_SWEEP_GET,
			 "SELECT id, owner, request, priority, n_cells, created_at FROM sweeps "
			 "WHERE id = ?1", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		col_copy(out->owner, sizeof out->owner, st, 1);
		out->priority = sqlite3_column_int(st, 3);
		out->n_cells = sqlite3_column_int(st, 4);
		out->created_at = sqlite3_column_double(st, 5);
		rc = 0;
		if (col_dup(&out->request, st, 2) < 0) {
			store_sweep_clear(out);
			rc = store__err(err, STORE_ENOMEM, "sweep get: out of memory");
		}
	} else if (rc == SQLITE_DONE) {
		rc = store__err(err, STORE_ENOTFOUND, "sweep %lld not found", (long long)id);
	} else {
		rc = store__fail(s, rc, "sweep get", err);
	}
out:
	store__done(st);
	return rc;
}

int store_sweep_list(struct store *s, const char *owner, int64_t after_id, int limit,
		     int (*cb)(void *ctx, const struct store_sweep *w), void *ctx,
		     struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;
	struct store_sweep w;
	if (!s || !cb || limit < 1 || limit > STORE__LIST_MAX)
		return store__err(err, STORE_EINVAL, "sweep list: bad arguments (limit 1..%d)",
				  STORE__LIST_MAX);
	rc = store__stmt(s, ST_SWEEP_LIST,
			 "SELECT id, owner, request, priority, n_cells, created_at FROM sweeps "
			 "WHERE id > ?1 AND (?2 IS NULL OR owner = ?2) ORDER BY id LIMIT ?3", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, after_id);
	if (store__bind_text_or_null(st, 2, owner) != SQLITE_OK) {
		rc = store__fail(s, SQLITE_ERROR, "sweep list", err);
		goto out;
	}
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&w, 0, sizeof w);
		w.id = sqlite3_column_int64(st, 0);
		col_copy(w.owner, sizeof w.owner, st, 1);
		w.priority = sqlite3_column_int(st, 3);
		w.n_cells = sqlite3_column_int(st, 4);
		w.created_at = sqlite3_column_double(st, 5);
		if (col_dup(&w.request, st, 2) < 0) {
			rc = store__err(err, STORE_ENOMEM, "sweep list: out of memory");
			goto out;
		}
		n++;
		int stop = cb(ctx, &w);
		store_sweep_clear(&w);
		if (stop)
			break;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? n : store__fail(s, rc, "sweep list", err);
out:
	store__done(st);
	return rc;
}

int store_sweep_counts(struct store *s, int64_t id, int counts[STORE_STATUS_COUNT],
		       struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, rows = 0;

	if (!s || !counts)
		return store__err(err, STORE_EINVAL, "sweep counts: bad arguments");
	memset(counts, 0, STORE_STATUS_COUNT * sizeof *counts);
	/* The LEFT JOIN yields one row even for a sweep with no cells, and none for no sweep. */
	rc = store__stmt(s, ST_SWEEP_COUNTS,
			 "SELECT e.status, count(e.id) FROM sweeps w "
			 "LEFT JOIN experiments e ON e.sweep_id = w.id WHERE w.id = ?1 "
			 "GROUP BY e.status", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int status = store_status_parse((const char *)sqlite3_column_text(st, 0));
		rows++;
		if (status >= 0)
			counts[status] = sqlite3_column_int(st, 1);
	}
	if (rc != SQLITE_DONE)
		rc = store__fail(s, rc, "sweep counts", err);
	else if (rows == 0)
		rc = store__err(err, STORE_ENOTFOUND, "sweep %lld not found", (long long)id);
	else
		rc = 0;
out:
	store__done(st);
	return rc;
}
