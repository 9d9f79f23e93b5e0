/*
 * store_datasets.c — the registry of named corpora: an admin maps a name ("kjv") to a path
 * relative to the daemon's data roots. The store keeps the mapping only; whether the path is
 * safe to read is decided by the server each time a spec names it (server/dataset.c).
 * Threading: the struct store's thread (see store.c); changes need the writer.
 */
#include "store_int.h"

#include <string.h>

int store_dataset_put(struct store *s, const char *name, const char *path, const char *owner,
		      double now, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "dataset put", err);
	if (rc < 0)
		return rc;
	if (!name || !*name || !path || !*path || !owner)
		return store__err(err, STORE_EINVAL, "dataset put: bad arguments");
	rc = store__stmt(s, ST_DATASET_PUT,
			 "INSERT INTO datasets (name, path, owner, created_at) VALUES (?1, ?2, ?3, ?4) "
			 "ON CONFLICT (name) DO UPDATE SET path = excluded.path, owner = excluded.owner, "
			 "created_at = excluded.created_at", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 4, now);
	return store__run(s, st, "dataset put", err);
}

int store_dataset_delete(struct store *s, const char *name, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "dataset delete", err);
	if (rc < 0)
		return rc;
	if (!name)
		return store__err(err, STORE_EINVAL, "dataset delete: no name");
	rc = store__stmt(s, ST_DATASET_DELETE, "DELETE FROM datasets WHERE name = ?1", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = store__run(s, st, "dataset delete", err);
	if (rc < 0)
		return rc;
	return sqlite3_changes(s->db) ? 0
		: store__err(err, STORE_ENOTFOUND, "no dataset named %s", name);
}

int store_datasets_list(struct store *s,
			int (*cb)(void *ctx, const char *name, const char *path, const char *owner,
				  double created_at), void *ctx, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, count = 0;
	if (!s || !cb)
		return store__err(err, STORE_EINVAL, "datasets list: bad arguments");
	rc = store__stmt(s, ST_DATASET_LIST,
			 "SELECT name, path, owner, created_at FROM datasets ORDER BY name", &st, err);
	if (rc < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		count++;
		if (cb(ctx, (const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2), sqlite3_column_double(st, 3))) {
			rc = SQLITE_DONE;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "datasets list", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}
