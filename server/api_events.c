/*
 * api_events.c — GET /api/v1/events: the event log as Server-Sent Events, so dashboards follow
 * runs starting, progressing and finishing without polling. Each event goes out as
 * "id: N\nevent: KIND\ndata: JSON\n\n"; a client that reconnects sends Last-Event-ID (browsers do
 * it by themselves) or ?after=N and resumes after that id; by default a stream starts with the
 * events that happen after it opened. ?experiment=ID keeps one experiment's events. A reader who
 * may see only their own runs (reads_open = false, role user) gets only their runs' and sweeps'
 * events: the rest are skipped as if filtered.
 * The stream state owns its own read-only store connection (the stream outlives the handler that
 * opened it) and is used only by its connection's thread, which blocks in the reader: libmicrohttpd
 * runs one thread per connection, and a reader that answered "nothing yet" would be polled in a
 * busy loop. The reader wakes at least every second (sched_events_wait) and ends the stream when
 * the daemon stops; a comment line every 15 s of silence keeps proxies from closing the stream
 * and lets the server find out that a client went away.
 * The route is listed in api_misc_routes (api_misc.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "nl.h"

#define EVENTS_PAGE 100            /* events read from the store per refill */
#define EVENTS_CATCHUP_PAGE 1000   /* store_events_after's largest page */
#define WAIT_MS 1000               /* longest block before looking at the store again */
#define HEARTBEAT_S 15.0
#define RETRY_MS 3000              /* what the client waits before reconnecting */
#define PENDING_MAX ((size_t)4 << 20)

#define SEEN_CACHE 64               /* experiments / sweeps whose visibility a stream remembers */

struct sse {
	struct daemon *d;
	struct store *s;
	int64_t after;              /* last event id handled (sent or filtered out) */
	int64_t only_exp;           /* 0 = every experiment */
	int own_only;               /* the reader sees only events of owner's runs and sweeps */
	char owner[64];
	struct { int64_t key; int visible; } seen[SEEN_CACHE];   /* key: exp id, or -sweep id */
	int seen_next;
	char *buf;                  /* formatted, not yet handed out */
	size_t len, pos, cap;
	int oom;
	double last_out;            /* monotonic seconds of the last bytes handed out */
	int started;
};

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void put(struct sse *e, const char *s, size_t n)
{
	if (e->oom)
		return;
	if (e->len + n + 1 > e->cap) {
		size_t ncap = e->cap ? e->cap : 4096;
		while (ncap < e->len + n + 1)
			ncap *= 2;
		char *b = ncap <= PENDING_MAX ? nl_realloc(e->buf, ncap) : NULL;
		if (!b) {
			e->oom = 1;
			return;
		}
		e->buf = b;
		e->cap = ncap;
	}
	memcpy(e->buf + e->len, s, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static void puts_(struct sse *e, const char *s)
{
	put(e, s, strlen(s));
}

/*
 * The data line: the stored JSON object, with "id" (the experiment, the scheduler's convention)
 * added when the event concerns an experiment and the object lacks it. Printed unformatted, so
 * it is one line; a field of the SSE format cannot hold a newline.
 */
static void put_data(struct sse *e, int64_t exp_id, const char *data)
{
	cJSON *j = data ? cJSON_Parse(data) : NULL;
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = cJSON_CreateObject();
	}
	if (j && exp_id > 0 && !cJSON_GetObjectItemCaseSensitive(j, "id"))
		cJSON_AddNumberToObject(j, "id", (double)exp_id);
	char *text = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!text) {
		e->oom = 1;
		return;
	}
	puts_(e, "data: ");
	puts_(e, text);
	puts_(e, "\n\n");
	cJSON_free(text);
}

/* The "owner" (string) or "id" (number) member of an event's JSON data; NULL / 0 if absent. */
static void data_fields(const char *data, char *owner, size_t cap, int64_t *id)
{
	cJSON *j = data ? cJSON_Parse(data) : NULL;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "owner");
	const cJSON *i = cJSON_GetObjectItemCaseSensitive(j, "id");
	owner[0] = '\0';
	if (cJSON_IsString(o))
		snprintf(owner, cap, "%s", o->valuestring);
	*id = cJSON_IsNumber(i) && i->valuedouble >= 1 ? (int64_t)i->valuedouble : 0;
	cJSON_Delete(j);
}

/*
 * Whether an own_only stream shows this event: events of the owner's experiments (looked up, or,
 * for a deleted one, the owner the event names) and sweeps (sweep.* with the sweep's id in the
 * data). Anything else, such as events of a kind this file does not know, stays hidden.
 */
static int event_visible(struct sse *e, const char *kind, int64_t exp_id, const char *data)
{
	struct store_err err = { 0 };
	char owner[64];
	int64_t key, sid = 0;
	int vis = 0, found;

	if (!e->own_only)
		return 1;
	if (exp_id > 0) {
		key = exp_id;
	} else {
		data_fields(data, owner, sizeof owner, &sid);
		if (!kind || strncmp(kind, "sweep.", 6) != 0 || sid <= 0)
			return 0;
		key = -sid;
	}
	for (int i = 0; i < SEEN_CACHE; i++)
		if (e->seen[i].key == key)
			return e->seen[i].visible;
	if (key > 0) {
		struct store_experiment x;
		memset(&x, 0, sizeof x);
		found = store_experiment_get(e->s, key, &x, &err) == 0;
		if (found)
			vis = strcmp(x.owner, e->owner) == 0;
		store_experiment_clear(&x);
	} else {
		struct store_sweep w;
		memset(&w, 0, sizeof w);
		found = store_sweep_get(e->s, -key, &w, &err) == 0;
		if (found)
			vis = strcmp(w.owner, e->owner) == 0;
		store_sweep_clear(&w);
	}
	if (!found) {   /* deleted since: only the owner named in the event itself can tell */
		data_fields(data, owner, sizeof owner, &sid);
		return owner[0] && strcmp(owner, e->owner) == 0;
	}
	e->seen[e->seen_next].key = key;
	e->seen[e->seen_next].visible = vis;
	e->seen_next = (e->seen_next + 1) % SEEN_CACHE;
	return vis;
}

static int event_cb(void *ctx, int64_t id, const char *kind, int64_t exp_id, const char *data)
{
	struct sse *e = ctx;
	char k[64], head[112];
	e->after = id;
	if (e->only_exp && exp_id != e->only_exp)
		return 0;
	if (!event_visible(e, kind, exp_id, data))
		return 0;
	/* kinds are the scheduler's own dotted names; keep the field to one line whatever */
	snprintf(k, sizeof k, "%s", kind && *kind ? kind : "message");
	for (char *p = k; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = '_';
	snprintf(head, sizeof head, "id: %" PRId64 "\nevent: %s\n", id, k);
	puts_(e, head);
	put_data(e, exp_id, data);
	return e->oom;
}

/* Fills e->buf with what is due now: events, else a heartbeat, blocking up to WAIT_MS at a time.
 * 1 = bytes ready, 0 = the daemon is stopping (end), -1 = error. */
static int sse_fill(struct sse *e)
{
	struct store_err err = { 0 };
	int unseen = 0;   /* the scheduler announced an event our snapshot did not show yet */
	e->len = e->pos = 0;
	if (!e->started) {
		char first[64];
		e->started = 1;
		snprintf(first, sizeof first, "retry: %d\n: normlab events\n\n", RETRY_MS);
		puts_(e, first);
		return e->oom ? -1 : 1;
	}
	for (;;) {
		int n = store_events_after(e->s, e->after, EVENTS_PAGE, event_cb, e, &err);
		if (n < 0 || e->oom)
			return -1;
		if (e->len)
			return 1;
		if (n == EVENTS_PAGE)
			continue;   /* a full page, all filtered out: read on before waiting */
		if (mono_now() - e->last_out >= HEARTBEAT_S) {
			puts_(e, ": keep-alive\n\n");
			return e->oom ? -1 : 1;
		}
		if (unseen) {
			/* sched_event wakes us as soon as the row is written; if its transaction had
			 * not committed when we looked, give it a moment instead of spinning */
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
		int64_t newest = sched_events_wait(e->d->sched, e->after, WAIT_MS);
		if (newest < 0)
			return 0;
		unseen = newest > e->after;
	}
}

static ssize_t sse_read(void *cls, char *buf, size_t max)
{
	struct sse *e = cls;
	if (e->pos == e->len) {
		int rc = sse_fill(e);
		if (rc <= 0)
			return rc == 0 ? -1 : -2;
	}
	size_t n = e->len - e->pos < max ? e->len - e->pos : max;
	memcpy(buf, e->buf + e->pos, n);
	e->pos += n;
	e->last_out = mono_now();
	return (ssize_t)n;
}

static void sse_free(void *cls)
{
	struct sse *e = cls;
	if (!e)
		return;
	store_close(e->s);
	nl_free(e->buf);
	nl_free(e);
}

static int newest_cb(void *ctx, int64_t id, const char *kind, int64_t exp_id, const char *data)
{
	(void)kind;
	(void)exp_id;
	(void)data;
	*(int64_t *)ctx = id;
	return 0;
}

/*
 * The id of the newest stored event: the scheduler's count, then whatever the store holds past
 * it (the scheduler only learns ids from events it writes itself, so after a restart it may lag
 * the log; the catch-up reads that gap once, in pages).
 */
static int newest_event(struct daemon *d, struct store *s, int64_t *out, struct store_err *err)
{
	int64_t id = sched_events_wait(d->sched, INT64_MAX, 0);
	int n;
	if (id < 0)
		return 1;
	do {
		n = store_events_after(s, id, EVENTS_CATCHUP_PAGE, newest_cb, &id, err);
	} while (n == EVENTS_CATCHUP_PAGE);
	*out = id;
	return n < 0 ? -1 : 0;
}

void api_events_get(void *ctx, const struct http_request *req, struct http_response *r)
{
	struct daemon *d = ctx;
	struct store_err err = { 0 };
	int64_t after = -1, only = 0;
	const char *last = http_header(req, "Last-Event-ID");
	/* the header wins: a browser reconnecting keeps the URL (and its ?after) it started with */
	if (last && *last) {
		char *end;
		long long v = strtoll(last, &end, 10);
		if (*end || v < 0) {
			char det[160];
			snprintf(det, sizeof det, "header Last-Event-ID: %.40s must be an integer in "
				 "0..%" PRId64, last, INT64_MAX);
			http_problem(r, 400, "invalid_parameter", det, NULL, NULL, 0);
			return;
		}
		after = v;
	} else if (api_query_int(req, r, "after", 0, INT64_MAX, -1, &after) != 0) {
		return;
	}
	if (api_query_int(req, r, "experiment", 1, INT64_MAX, 0, &only) != 0)
		return;
	struct store *s = api_reader(d, r);
	if (!s)
		return;
	if (only && req->read_own_only) {
		struct store_experiment x;
		char what[48];
		int hide;
		memset(&x, 0, sizeof x);
		snprintf(what, sizeof what, "experiment %" PRId64, only);
		if (store_experiment_get(s, only, &x, &err) != 0) {
			api_store_problem(r, &err, what);
			store_close(s);
			return;
		}
		hide = api_hide_unless_readable(req, r, x.owner, what);
		store_experiment_clear(&x);
		if (hide) {
			store_close(s);
			return;
		}
	}
	if (after < 0) {
		int rc = newest_event(d, s, &after, &err);
		if (rc != 0) {
			store_close(s);
			if (rc > 0)
				http_problem(r, 503, "stopping", "the daemon is shutting down", NULL,
					     NULL, 0);
			else
				api_store_problem(r, &err, "events");
			return;
		}
	}
	struct sse *e = nl_calloc(1, sizeof *e);
	if (!e) {
		store_close(s);
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	e->d = d;
	e->s = s;
	e->after = after;
	e->only_exp = only;
	e->own_only = req->read_own_only;
	snprintf(e->owner, sizeof e->owner, "%s", req->user);
	e->last_out = mono_now();
	r->status = 200;
	snprintf(r->content_type, sizeof r->content_type, "text/event-stream");
	r->reader = sse_read;
	r->reader_free = sse_free;
	r->reader_cls = e;
}
