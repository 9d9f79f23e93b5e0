/*
 * store.c — connections and the schema: open (pragmas, version check, forward migrations), close,
 * the per-connection statement cache, error mapping, nested transactions (store_tx), the metric-name
 * cache and status names. The schema is the migration list below; its version is PRAGMA
 * user_version.
 * Owns each struct store and everything hanging from it. Threading: one connection per thread; a
 * struct store is used by one thread at a time. The writer is the daemon's scheduler thread; every
 * other thread opens its own reader. SQLite runs in multi-thread mode (SQLITE_OPEN_NOMUTEX) because
 * no connection is shared.
 */
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nl.h"

/*
 * migrations[v] takes a database from user_version v to v + 1, and sets user_version itself so
 * the step and its version commit together. Append a step to change the schema; never edit one
 * that has shipped.
 */
static const char *const migrations[] = {
	/* 0 → 1 */
	"CREATE TABLE sweeps ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  owner TEXT NOT NULL,"
	"  request TEXT NOT NULL,"
	"  priority INTEGER NOT NULL DEFAULT 0,"
	"  n_cells INTEGER NOT NULL DEFAULT 0,"
	"  created_at REAL NOT NULL);"
	/* AUTOINCREMENT: an id is never reused after a delete, so old links never show a new run. */
	"CREATE TABLE experiments ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  hash TEXT NOT NULL,"
	"  spec TEXT NOT NULL,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  norm_type TEXT NOT NULL DEFAULT '',"
	"  placement TEXT NOT NULL DEFAULT '',"
	"  n_layer INTEGER NOT NULL DEFAULT 0,"
	"  seed INTEGER NOT NULL DEFAULT 0,"
	"  threads INTEGER NOT NULL DEFAULT 1,"
	"  steps INTEGER NOT NULL DEFAULT 0,"
	"  owner TEXT NOT NULL DEFAULT '',"
	"  priority INTEGER NOT NULL DEFAULT 0,"
	"  sweep_id INTEGER REFERENCES sweeps(id),"          /* NULL = none */
	"  cell INTEGER NOT NULL DEFAULT -1,"
	"  status TEXT NOT NULL,"                            /* store_status_name() */
	"  step INTEGER NOT NULL DEFAULT 0,"
	"  ckpt_step INTEGER NOT NULL DEFAULT 0,"
	"  loss REAL,"                                       /* NULL = unknown */
	"  val_loss REAL,"
	"  diverged_step INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  tags TEXT NOT NULL DEFAULT '[]'"
	"    CHECK (json_valid(tags) AND json_type(tags) = 'array'),"
	"  notes TEXT,"
	"  created_at REAL NOT NULL,"
	"  started_at REAL NOT NULL DEFAULT 0,"
	"  finished_at REAL NOT NULL DEFAULT 0);"
	/* DESC matches store_next_queued's ORDER BY, so the pick is one index probe, no sort. */
	"CREATE INDEX experiments_queue ON experiments(status, priority DESC, id);"
	"CREATE INDEX experiments_hash ON experiments(hash);"
	"CREATE INDEX experiments_sweep ON experiments(sweep_id);"
	"CREATE TABLE metric_names ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE);"
	/* value NULL = the point was NaN or ±Inf. */
	"CREATE TABLE scalars ("
	"  exp_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,"
	"  name_id INTEGER NOT NULL REFERENCES metric_names(id),"
	"  step INTEGER NOT NULL,"
	"  value REAL,"
	"  PRIMARY KEY (exp_id, name_id, step)) WITHOUT ROWID;"
	/* vals: n float64, little-endian. */
	"CREATE TABLE depth ("
	"  exp_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,"
	"  name_id INTEGER NOT NULL REFERENCES metric_names(id),"
	"  step INTEGER NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  vals BLOB NOT NULL,"
	"  PRIMARY KEY (exp_id, name_id, step)) WITHOUT ROWID;"
	/* x, y: n float32 LE; token, channel: n int32 LE or NULL. Rows are large: keep the rowid. */
	"CREATE TABLE samples ("
	"  exp_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,"
	"  site TEXT NOT NULL,"
	"  step INTEGER NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  x BLOB NOT NULL,"
	"  y BLOB NOT NULL,"
	"  token BLOB,"
	"  channel BLOB,"
	"  PRIMARY KEY (exp_id, site, step));"
	/* exp_id is no foreign key: the event log outlives a deleted run. */
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  t REAL NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  exp_id INTEGER,"
	"  data TEXT);"
	"PRAGMA user_version = 1;",
	/* 1 → 2: quotas count one owner's queued and running experiments, and fair share asks for
	 * each owner's newest start; without these both would scan the whole table. */
	"CREATE INDEX experiments_owner ON experiments(owner, status);"
	"CREATE INDEX experiments_owner_start ON experiments(owner, started_at);"
	"PRAGMA user_version = 2;",
	/* 2 → 3: corpora an admin registered under a name (issue 9, data roots); path is relative to
	 * the daemon's data roots and is checked again every time a spec names it */
	"CREATE TABLE datasets ("
	"  name TEXT PRIMARY KEY,"
	"  path TEXT NOT NULL,"
	"  owner TEXT NOT NULL,"
	"  created_at REAL NOT NULL);"
	"PRAGMA user_version = 3;",
	/* 3 → 4: a child run (LN removal, NORMS.md §8) starts from a finished run's weights;
	 * parent_id links the two (NULL = none). No foreign key, like events.exp_id: deleting a
	 * parent leaves its children with the id they started from. */
	"ALTER TABLE experiments ADD COLUMN parent_id INTEGER;"
	"CREATE INDEX experiments_parent ON experiments(parent_id);"
	"PRAGMA user_version = 4;",
	/* 4 → 5: run health (issue 12): the worst finding, when, and why; a run that was stopped
	 * dead has status 'dead' */
	"ALTER TABLE experiments ADD COLUMN health TEXT NOT NULL DEFAULT 'ok';"
	"ALTER TABLE experiments ADD COLUMN health_step INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE experiments ADD COLUMN health_reason TEXT;"
	"PRAGMA user_version = 5;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
	       "one migration step per schema version");

static const char *const status_names[] = {
	[STORE_QUEUED] = "queued", [STORE_RUNNING] = "running", [STORE_SUCCEEDED] = "succeeded",
	[STORE_FAILED] = "failed", [STORE_CANCELLED] = "cancelled", [STORE_DIVERGED] = "diverged",
	[STORE_INTERRUPTED] = "interrupted", [STORE_DEAD] = "dead",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == STORE_STATUS_COUNT,
	       "a name for every status");
#define N_STATUS ((int)(sizeof status_names / sizeof status_names[0]))

const char *store_status_name(int status)
{
	if (status < 0 || status >= N_STATUS)
		return "unknown";
	return status_names[status];
}

int store_status_parse(const char *name)
{
	for (int i = 0; name && i < N_STATUS; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

/* ---------- errors ---------- */

int store__err(struct store_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

int store__fail(struct store *s, int sqlite_rc, const char *what, struct store_err *err)
{
	int code;
	switch (sqlite_rc & 0xff) {
	case SQLITE_NOMEM:
		code = STORE_ENOMEM;
		break;
	case SQLITE_FULL:
		code = STORE_EFULL;
		break;
	case SQLITE_CONSTRAINT:   /* bad tags JSON, unknown experiment/sweep id */
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		code = STORE_EINVAL;
		break;
	default:
		code = STORE_EIO;
		break;
	}
	return store__err(err, code, "%s: %s", what, s && s->db ? sqlite3_errmsg(s->db)
							      : sqlite3_errstr(sqlite_rc));
}

int store__need_writer(struct store *s, const char *what, struct store_err *err)
{
	if (!s)
		return store__err(err, STORE_EINVAL, "%s: no store", what);
	if (!s->writer)
		return store__err(err, STORE_EINVAL, "%s: read-only connection", what);
	return 0;
}

/* ---------- statements ---------- */

int store__stmt(struct store *s, int id, const char *sql, sqlite3_stmt **out, struct store_err *err)
{
	*out = NULL;
	if (!s->stmt[id]) {
		int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
					    NULL);
		if (rc != SQLITE_OK) {
			s->stmt[id] = NULL;
			return store__fail(s, rc, "prepare", err);
		}
	} else if (sqlite3_stmt_busy(s->stmt[id])) {
		return store__err(err, STORE_EINVAL,
				  "store re-entered from a callback (statement %d is running)", id);
	}
	*out = s->stmt[id];
	return 0;
}

void store__done(sqlite3_stmt *st)
{
	if (st)
		sqlite3_reset(st);
}

int store__run(struct store *s, sqlite3_stmt *st, const char *what, struct store_err *err)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store__fail(s, rc, what, err);
	sqlite3_reset(st);
	return ret;
}

int store__bind_text(sqlite3_stmt *st, int i, const char *v, size_t cap)
{
	return sqlite3_bind_text(st, i, v, (int)strnlen(v, cap), SQLITE_STATIC);
}

int store__bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* ---------- transactions ---------- */

static int exec_cached(struct store *s, int id, const char *sql, struct store_err *err)
{
	sqlite3_stmt *st;
	int rc = store__stmt(s, id, sql, &st, err);
	return rc < 0 ? rc : store__run(s, st, sql, err);
}

int store__tx_begin(struct store *s, struct store_err *err)
{
	int rc = s->tx_depth ? exec_cached(s, ST_SAVEPOINT, "SAVEPOINT nest", err)
			     : exec_cached(s, ST_BEGIN, "BEGIN IMMEDIATE", err);
	if (rc == 0)
		s->tx_depth++;
	return rc;
}

int store__tx_end(struct store *s, int rc, struct store_err *err)
{
	s->tx_depth--;
	if (rc >= 0) {
		int c = s->tx_depth ? exec_cached(s, ST_RELEASE, "RELEASE nest", err)
				    : exec_cached(s, ST_COMMIT, "COMMIT", err);
		if (c == 0)
			return rc;
		rc = c;
	}
	/* The first error is the one to report: the rollback's own errors go nowhere. */
	if (s->tx_depth) {
		exec_cached(s, ST_ROLLBACK_TO, "ROLLBACK TO nest", NULL);
		exec_cached(s, ST_RELEASE, "RELEASE nest", NULL);
	} else if (!sqlite3_get_autocommit(s->db)) {
		exec_cached(s, ST_ROLLBACK, "ROLLBACK", NULL);
	}
	store__names_clear(s);
	return rc;
}

int store_tx(struct store *s, int (*fn)(struct store *s, void *ctx), void *ctx, struct store_err *err)
{
	int rc = store__need_writer(s, "store_tx", err);
	if (rc < 0)
		return rc;
	if (!fn)
		return store__err(err, STORE_EINVAL, "store_tx: no function");
	rc = store__tx_begin(s, err);
	if (rc < 0)
		return rc;
	rc = fn(s, ctx);
	if (rc < 0)
		store__err(err, rc, "store_tx: rolled back (the transaction's function returned %d)", rc);
	return store__tx_end(s, rc, err);
}

/* ---------- scratch ---------- */

int store__scratch(struct store *s, size_t n, unsigned char **out, struct store_err *err)
{
	*out = NULL;
	if (n > STORE__BUF_MAX)
		return store__err(err, STORE_EINVAL, "blob of %zu bytes exceeds the %zu-byte limit",
				  n, STORE__BUF_MAX);
	if (n > s->buf_cap) {
		size_t cap = s->buf_cap ? s->buf_cap : 4096;
		while (cap < n)
			cap *= 2;
		if (cap > STORE__BUF_MAX)
			cap = STORE__BUF_MAX;
		unsigned char *p = nl_realloc(s->buf, cap);
		if (!p)
			return store__err(err, STORE_ENOMEM, "out of memory (%zu-byte buffer)", cap);
		s->buf = p;
		s->buf_cap = cap;
	}
	*out = s->buf;
	return 0;
}

/* ---------- metric-name cache ---------- */

#define NAMES_CAP_MAX (1u << 16)   /* a full cache is dropped and refilled, never refused */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

void store__names_clear(struct store *s)
{
	for (uint32_t i = 0; i < s->names_cap; i++)
		nl_free(s->names[i].name);
	nl_free(s->names);
	s->names = NULL;
	s->names_cap = s->names_len = 0;
}

static struct store__name *names_slot(struct store__name *tab, uint32_t cap, const char *name,
				      uint32_t h)
{
	for (uint32_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!tab[i].name || (tab[i].hash == h && strcmp(tab[i].name, name) == 0))
			return &tab[i];
}

/* Remembers name → id. Failing to cache is not an error: the next lookup asks SQLite again. */
static void names_put(struct store *s, const char *name, uint32_t h, int64_t id)
{
	if (2 * (s->names_len + 1) > s->names_cap) {
		uint32_t cap = s->names_cap ? 2 * s->names_cap : 64;
		if (cap > NAMES_CAP_MAX) {
			store__names_clear(s);
			cap = 64;
		}
		struct store__name *tab = nl_calloc(cap, sizeof *tab);
		if (!tab)
			return;
		for (uint32_t i = 0; i < s->names_cap; i++)
			if (s->names[i].name)
				*names_slot(tab, cap, s->names[i].name, s->names[i].hash) = s->names[i];
		nl_free(s->names);
		s->names = tab;
		s->names_cap = cap;
	}
	char *copy = nl_strdup(name);
	if (!copy)
		return;
	struct store__name *e = names_slot(s->names, s->names_cap, name, h);
	e->name = copy;
	e->hash = h;
	e->id = id;
	s->names_len++;
}

int store__name_id(struct store *s, const char *name, int create, int64_t *id,
		   struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	uint32_t h;
	int rc;

	*id = 0;
	if (!name || !*name || strnlen(name, STORE__NAME_MAX + 1) > STORE__NAME_MAX)
		return store__err(err, STORE_EINVAL, "metric name missing or longer than %d bytes",
				  STORE__NAME_MAX);
	h = name_hash(name);
	if (s->names_cap) {
		struct store__name *e = names_slot(s->names, s->names_cap, name, h);
		if (e->name) {
			*id = e->id;
			return 0;
		}
	}
	rc = store__stmt(s, ST_NAME_GET, "SELECT id FROM metric_names WHERE name = ?1", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = store__fail(s, rc, "metric name lookup", err);
		goto out;
	}
	store__done(st);
	st = NULL;
	if (!*id && create) {
		rc = store__stmt(s, ST_NAME_INSERT, "INSERT INTO metric_names(name) VALUES (?1)", &st,
				 err);
		if (rc < 0)
			goto out;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = store__run(s, st, "metric name insert", err);
		st = NULL;
		if (rc < 0)
			goto out;
		*id = sqlite3_last_insert_rowid(s->db);
	}
	if (*id)
		names_put(s, name, h, *id);
out:
	store__done(st);
	return rc;
}

/* ---------- open / close ---------- */

/* Runs a one-off statement (pragmas at open) and returns column 0 of its first row as int. */
static int pragma_int(struct store *s, const char *sql, int *val, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*val = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
	}
	if (rc != SQLITE_OK)
		rc = store__fail(s, rc, sql, err);
	sqlite3_finalize(st);
	return rc;
}

static int exec_sql(struct store *s, const char *sql, const char *what, struct store_err *err)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store__fail(s, rc, what, err);
}

/* Readers must never block the writer: refuse to run on a file system where WAL is refused. */
static int set_wal(struct store *s, const char *path, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = store__fail(s, rc, "journal_mode", err);
	} else {
		const char *mode = (const char *)sqlite3_column_text(st, 0);
		rc = mode && strcmp(mode, "wal") == 0 ? 0
			: store__err(err, STORE_EIO, "%s: journal mode is %s, not wal", path,
				     mode ? mode : "unknown");
	}
	sqlite3_finalize(st);
	return rc;
}

static int check_version(const char *path, int v, int writer, struct store_err *err)
{
	if (v > STORE_SCHEMA_VERSION)
		return store__err(err, STORE_EINVAL,
				  "%s: schema version %d is newer than this build's %d; use a newer "
				  "normlab", path, v, STORE_SCHEMA_VERSION);
	if (!writer && v == 0)
		return store__err(err, STORE_EINVAL, "%s: no normlab schema (the writer creates it)",
				  path);
	if (!writer && v < STORE_SCHEMA_VERSION)
		return store__err(err, STORE_EINVAL,
				  "%s: schema version %d is older than %d; the writer migrates it on "
				  "open", path, v, STORE_SCHEMA_VERSION);
	return 0;
}

/* Brings the schema to STORE_SCHEMA_VERSION in one transaction (all steps or none). */
static int migrate(struct store *s, const char *path, struct store_err *err)
{
	int v = 0;
	int rc = store__tx_begin(s, err);
	if (rc < 0)
		return rc;
	/* Read again under the write lock: another process may have migrated meanwhile. */
	rc = pragma_int(s, "PRAGMA user_version", &v, err);
	if (rc == 0)
		rc = check_version(path, v, 1, err);
	for (; rc == 0 && v < STORE_SCHEMA_VERSION; v++)
		rc = exec_sql(s, migrations[v], "schema migration", err);
	return store__tx_end(s, rc, err);
}

int store_open(struct store **out, const char *path, int writer, struct store_err *err)
{
	struct store *s = NULL;
	int rc, v = 0;
	int flags = SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
						  : SQLITE_OPEN_READONLY);

	*out = NULL;
	if (!path || !*path)
		return store__err(err, STORE_EINVAL, "store_open: no path");
	s = nl_calloc(1, sizeof *s);
	if (!s)
		return store__err(err, STORE_ENOMEM, "store_open: out of memory");
	s->writer = writer ? 1 : 0;
	s->path = nl_strdup(path);
	if (!s->path) {
		rc = store__err(err, STORE_ENOMEM, "store_open: out of memory");
		goto out;
	}
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		if (!s->db) {
			rc = store__err(err, STORE_ENOMEM, "%s: out of memory opening", path);
			goto out;
		}
		rc = store__err(err, STORE_EIO, "%s: %s", path, sqlite3_errmsg(s->db));
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* Readers never block the writer under WAL, but checkpoints and a second writer can. */
	sqlite3_busy_timeout(s->db, 5000);
	rc = exec_sql(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", "pragmas", err);
	if (rc < 0)
		goto out;
	rc = pragma_int(s, "PRAGMA user_version", &v, err);
	if (rc < 0)
		goto out;
	/* Refuse a newer schema before touching anything, journal mode included. */
	rc = check_version(path, v, writer, err);
	if (rc < 0)
		goto out;
	if (writer) {
		/* WAL is a property of the file, set once by the writer; readers inherit it. */
		rc = set_wal(s, path, err);
		if (rc < 0)
			goto out;
		if (v < STORE_SCHEMA_VERSION) {
			rc = migrate(s, path, err);
			if (rc < 0)
				goto out;
		}
	}
	*out = s;
	s = NULL;
out:
	store_close(s);
	return rc < 0 ? rc : 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	/* v2: never leaves a zombie connection behind because of an unfinalized statement. */
	sqlite3_close_v2(s->db);
	store__names_clear(s);
	nl_free(s->buf);
	nl_free(s->path);
	nl_free(s);
}
