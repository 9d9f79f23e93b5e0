/*
 * store_int.h — internals shared by the store_*.c files; not part of the contract (store.h is).
 * The connection struct, the per-connection statement cache, error mapping, nested transactions,
 * the metric-name cache and a scratch buffer. Everything here belongs to the one thread that uses
 * the struct store at the moment (see store.h). Internal names carry the `store__` prefix.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Every statement the store runs, one slot each in struct store's cache. */
enum store__stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_EXP_INSERT, ST_EXP_GET, ST_EXP_FIND_HASH, ST_EXP_STATUS, ST_EXP_PROGRESS, ST_EXP_CKPT,
	ST_EXP_PATCH, ST_EXP_DELETE, ST_EXP_RECOVER, ST_EXP_NEXT, ST_EXP_LIST,
	ST_SWEEP_INSERT, ST_SWEEP_GET, ST_SWEEP_COUNTS, ST_SWEEP_LIST, ST_EXP_RESET, ST_EXP_COUNT, ST_EXP_HEALTH,
	ST_NAME_GET, ST_NAME_INSERT,
	ST_SCALAR_PUT, ST_DEPTH_PUT, ST_SAMPLES_PUT,
	ST_TRUNC_SCALARS, ST_TRUNC_DEPTH, ST_TRUNC_SAMPLES,
	ST_METRIC_NAMES, ST_SCALAR_MAXSTEP, ST_SCALAR_RANGE, ST_DEPTH_RANGE, ST_DEPTH_LATEST,
	ST_SAMPLES_GET, ST_SAMPLE_SITES,
	ST_EVENT_INSERT, ST_EVENTS_AFTER,
	ST_OWNER_COUNTS, ST_QUEUE_HEADS, ST_EVENTS_PRUNE_AGE, ST_EVENTS_PRUNE_ROWS,
	ST_DATASET_PUT, ST_DATASET_DELETE, ST_DATASET_LIST,
	ST_EXP_CHILDREN,
	ST_COUNT
};

/* One slot of the open-addressing name → id map (name NULL = empty). */
struct store__name {
	char *name;
	int64_t id;
	uint32_t hash;
};

struct store {
	sqlite3 *db;
	char *path;                        /* the database file, as opened (owned) */
	int writer;
	int tx_depth;                      /* 0 = no transaction of ours; >0 = BEGIN + savepoints */
	sqlite3_stmt *stmt[ST_COUNT];      /* prepared on first use, finalized by store_close */
	struct store__name *names;         /* metric_names cache; cap is a power of two or 0 */
	uint32_t names_cap, names_len;
	unsigned char *buf;                /* scratch for packing/unpacking blobs */
	size_t buf_cap;
};

/* Hard caps on what the store accepts (inputs reach it from HTTP through the server). */
#define STORE__NAME_MAX 255            /* metric name / sample site, bytes */
#define STORE__DEPTH_MAX 65536         /* values in one depth row */
#define STORE__SAMPLES_MAX (1 << 20)   /* pairs in one samples row */
#define STORE__LIST_MAX 1000           /* rows per list/events page */
#define STORE__BUF_MAX ((size_t)64 << 20)

/* Fills err (may be NULL) and returns code. */
int store__err(struct store_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Maps the connection's last SQLite error to a store code; msg = "what: sqlite3_errmsg". */
int store__fail(struct store *s, int sqlite_rc, const char *what, struct store_err *err);
/* EINVAL unless s is the writer connection. */
int store__need_writer(struct store *s, const char *what, struct store_err *err);

/*
 * The cached statement for id, prepared from sql on first use (SQLITE_PREPARE_PERSISTENT).
 * Each id has exactly one SQL text. Fails if the statement is still running, i.e. a callback
 * re-entered the function that owns it. Release with store__done.
 */
int store__stmt(struct store *s, int id, const char *sql, sqlite3_stmt **out, struct store_err *err);
/* Resets st (NULL ok) so its read transaction ends and it can run again. */
void store__done(sqlite3_stmt *st);
/* Steps st once, expecting SQLITE_DONE; resets it either way. */
int store__run(struct store *s, sqlite3_stmt *st, const char *what, struct store_err *err);

/* Binds text of at most cap bytes (fixed-size char arrays need not be terminated at cap). */
int store__bind_text(sqlite3_stmt *st, int i, const char *v, size_t cap);
/* Binds text, or NULL when v is NULL. */
int store__bind_text_or_null(sqlite3_stmt *st, int i, const char *v);

/*
 * Transactions nest: the outermost begin is BEGIN IMMEDIATE, inner ones are savepoints, so a
 * store function that is "one transaction" joins a caller's store_tx. tx_end commits when rc >= 0,
 * else rolls back (to the savepoint if nested); it returns rc, or the commit's error.
 */
int store__tx_begin(struct store *s, struct store_err *err);
int store__tx_end(struct store *s, int rc, struct store_err *err);

/*
 * Id of metric name `name`. create=1 (writer) inserts it when missing; create=0 sets *id = 0 when
 * the name is unknown. Cached per connection; the cache is dropped on every rollback because ids
 * handed out inside the rolled-back transaction no longer exist.
 */
int store__name_id(struct store *s, const char *name, int create, int64_t *id,
		   struct store_err *err);
void store__names_clear(struct store *s);

/* *out = the scratch buffer grown to at least n bytes (capped); valid until the next call. */
int store__scratch(struct store *s, size_t n, unsigned char **out, struct store_err *err);

#endif
