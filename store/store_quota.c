/*
 * store_quota.c — the queries behind quotas and fair share: one owner's queued and running
 * counts, the queue heads (one per priority and owner) in fair-share order, and pruning of the
 * event log. Both owner queries run on the (owner, status) and (owner, started_at) indexes of
 * schema version 2, so they cost a few index probes whatever the table holds.
 * Threading: the struct store's thread (see store.c); pruning needs the writer.
 */
#include <string.h>

#include "nl.h"
#include "store_int.h"

int store_owner_counts(struct store *s, const char *owner, struct store_owner_counts *out,
		       struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	if (!s || !owner)
		return store__err(err, STORE_EINVAL, "owner counts: bad arguments");
	rc = store__stmt(s, ST_OWNER_COUNTS,
			 "SELECT coalesce(sum(status = ?2 AND sweep_id IS NULL), 0), "
			 "coalesce(sum(status = ?2 AND sweep_id IS NOT NULL), 0), "
			 "coalesce(sum(status = ?3), 0) "
			 "FROM experiments WHERE owner = ?1 AND status IN (?2, ?3)", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, store_status_name(STORE_QUEUED), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, store_status_name(STORE_RUNNING), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->queued_runs = sqlite3_column_int64(st, 0);
		out->queued_cells = sqlite3_column_int64(st, 1);
		out->running = sqlite3_column_int64(st, 2);
		rc = 0;
	} else {
		rc = store__fail(s, rc, "owner counts", err);
	}
	store__done(st);
	return rc;
}

int store_queue_heads(struct store *s, int max_threads, struct store_queue_head *out, int cap,
		      struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	if (!s || !out || cap < 1 || cap > STORE__LIST_MAX)
		return store__err(err, STORE_EINVAL, "queue heads: bad arguments");
	/* The inner GROUP BY walks the queued rows once (experiments_queue index); the two
	 * correlated subqueries are one index probe each per head. */
	rc = store__stmt(s, ST_QUEUE_HEADS,
			 "SELECT h.first_id, h.priority, h.owner, "
			 "(SELECT count(*) FROM experiments r WHERE r.owner = h.owner "
			 "  AND r.status = ?3) AS running, "
			 "coalesce((SELECT max(x.started_at) FROM experiments x "
			 "  WHERE x.owner = h.owner), 0) AS last_start "
			 "FROM (SELECT priority, owner, min(id) AS first_id FROM experiments "
			 "  WHERE status = ?1 AND threads <= ?2 GROUP BY priority, owner) h "
			 "ORDER BY h.priority DESC, last_start, h.first_id LIMIT ?4", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, store_status_name(STORE_QUEUED), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, max_threads);
	sqlite3_bind_text(st, 3, store_status_name(STORE_RUNNING), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, cap);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_queue_head *h = &out[n++];
		const char *owner = (const char *)sqlite3_column_text(st, 2);
		memset(h, 0, sizeof *h);
		h->id = sqlite3_column_int64(st, 0);
		h->priority = sqlite3_column_int(st, 1);
		nl_strlcpy(h->owner, owner ? owner : "", sizeof h->owner);
		h->running = sqlite3_column_int64(st, 3);
		h->last_start = sqlite3_column_double(st, 4);
	}
	rc = rc == SQLITE_DONE ? n : store__fail(s, rc, "queue heads", err);
	store__done(st);
	return rc;
}

int64_t store_events_prune(struct store *s, double before_t, int64_t keep_rows, int max_delete,
			   struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t deleted = 0;
	int rc = store__need_writer(s, "events prune", err);
	if (rc < 0)
		return rc;
	if (keep_rows < 0 || max_delete < 1)
		return store__err(err, STORE_EINVAL, "events prune: keep_rows %lld, max_delete %d",
				  (long long)keep_rows, max_delete);
	rc = store__tx_begin(s, err);
	if (rc < 0)
		return rc;
	if (before_t > 0) {
		/* no index on t: the scan goes in id order, which is time order, and stops at the
		 * limit, so a backlog costs one batch per call */
		rc = store__stmt(s, ST_EVENTS_PRUNE_AGE,
				 "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE t < ?1 "
				 "ORDER BY id LIMIT ?2)", &st, err);
		if (rc < 0)
			goto out;
		sqlite3_bind_double(st, 1, before_t);
		sqlite3_bind_int(st, 2, max_delete);
		rc = store__run(s, st, "events prune", err);
		if (rc < 0)
			goto out;
		deleted += sqlite3_changes(s->db);
	}
	if (keep_rows > 0 && deleted < max_delete) {
		/* by id, not by count: one index range, and ids only grow */
		rc = store__stmt(s, ST_EVENTS_PRUNE_ROWS,
				 "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= "
				 "(SELECT max(id) FROM events) - ?1 ORDER BY id LIMIT ?2)", &st, err);
		if (rc < 0)
			goto out;
		sqlite3_bind_int64(st, 1, keep_rows);
		sqlite3_bind_int64(st, 2, max_delete - deleted);
		rc = store__run(s, st, "events prune", err);
		if (rc < 0)
			goto out;
		deleted += sqlite3_changes(s->db);
	}
out:
	rc = store__tx_end(s, rc, err);
	return rc < 0 ? rc : deleted;
}
