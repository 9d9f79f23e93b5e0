/*
 * api_access.c — who reads what: the read_own_only rule (reads_open = false, role user) applied
 * to single resources, lists and deduplication (see api.h). The http layer decides the rule from
 * the token's role; the handlers ask here, so the rule is written once.
 * No state; any thread (api_find_duplicate: the writer's, inside a sched_call).
 */
#include <string.h>

#include "api.h"

int api_can_read(const struct http_request *req, const char *owner)
{
	if (!req->read_own_only)
		return 1;
	return req->authed && req->user[0] && owner && strcmp(owner, req->user) == 0;
}

int api_hide_unless_readable(const struct http_request *req, struct http_response *r,
			     const char *owner, const char *what)
{
	struct store_err err = { STORE_ENOTFOUND, "" };
	if (api_can_read(req, owner))
		return 0;
	api_store_problem(r, &err, what);   /* the words a missing one gets */
	return 1;
}

const char *api_list_owner(const struct http_request *req, const char *query_owner, int *empty)
{
	*empty = 0;
	if (!req->read_own_only)
		return query_owner;
	if (!req->authed || !req->user[0] || (query_owner && strcmp(query_owner, req->user) != 0))
		*empty = 1;
	return req->user;
}

int64_t api_find_duplicate(struct store *w, const char *hash, const char *only_owner)
{
	return only_owner ? store_experiment_find_hash_owner(w, hash, STORE_SUCCEEDED, only_owner) :
			    store_experiment_find_hash(w, hash, STORE_SUCCEEDED);
}
