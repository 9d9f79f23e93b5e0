/*
 * store_events.c — the event log behind the SSE stream: state changes and progress, each with an
 * increasing id so a client that reconnects resumes after the last id it saw. AUTOINCREMENT keeps
 * ids increasing even if old events are ever pruned.
 * Threading: the struct store's thread (see store.c); appends need the writer.
 */
#include "store_int.h"

int64_t store_event_append(struct store *s, const char *kind, int64_t exp_id, const char *data_json,
			   double now, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = store__need_writer(s, "event append", err);
	if (rc < 0)
		return rc;
	if (!kind || !*kind)
		return store__err(err, STORE_EINVAL, "event append: no kind");
	rc = store__stmt(s, ST_EVENT_INSERT,
			 "INSERT INTO events (t, kind, exp_id, data) VALUES (?1, ?2, ?3, ?4)", &st,
			 err);
	if (rc < 0)
		return rc;
	sqlite3_bind_double(st, 1, now);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (exp_id > 0)
		sqlite3_bind_int64(st, 3, exp_id);
	else
		sqlite3_bind_null(st, 3);
	store__bind_text_or_null(st, 4, data_json);
	rc = store__run(s, st, "event append", err);
	return rc < 0 ? rc : sqlite3_last_insert_rowid(s->db);
}

int store_events_after(struct store *s, int64_t after_id, int limit,
		       int (*cb)(void *ctx, int64_t id, const char *kind, int64_t exp_id,
				 const char *data_json), void *ctx, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, count = 0;

	if (!s || !cb)
		return store__err(err, STORE_EINVAL, "events after: bad arguments");
	if (limit < 1 || limit > STORE__LIST_MAX)
		return store__err(err, STORE_EINVAL, "events after: limit %d not in 1..%d", limit,
				  STORE__LIST_MAX);
	rc = store__stmt(s, ST_EVENTS_AFTER,
			 "SELECT id, kind, exp_id, data FROM events WHERE id > ?1 ORDER BY id "
			 "LIMIT ?2", &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		count++;
		/* exp_id NULL (no experiment) reads as 0 */
		if (cb(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3))) {
			rc = SQLITE_DONE;   /* the callback stopped the scan */
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : store__fail(s, rc, "events after", err);
out:
	store__done(st);
	return rc < 0 ? rc : count;
}
