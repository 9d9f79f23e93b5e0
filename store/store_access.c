/*
 * store_access.c — queries that respect who owns a run: deduplication within one owner's runs,
 * for daemons whose users may read only their own (reads_open = false). Uses the experiments
 * table's owner column; no schema of its own.
 * Threading: the struct store's thread (see store.c).
 */
#include "store_int.h"

int64_t store_experiment_find_hash_owner(struct store *s, const char *hash, int status,
					 const char *owner)
{
	sqlite3_stmt *st = NULL;
	int64_t id;
	int rc;

	if (!s || !hash || !owner || status > STORE_INTERRUPTED)
		return STORE_EINVAL;
	/* the same rows store_experiment_find_hash considers, narrowed to one owner */
	rc = store__stmt(s, ST_EXP_FIND_HASH_OWNER,
			 "SELECT id FROM experiments WHERE hash = ?1 AND (?2 IS NULL OR status = ?2) "
			 "AND owner = ?3 ORDER BY id DESC LIMIT 1", &st, NULL);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	if (status >= 0)
		sqlite3_bind_text(st, 2, store_status_name(status), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : STORE_EIO;
	store__done(st);
	return id;
}
