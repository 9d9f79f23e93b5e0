/*
 * api_events.c — GET /api/v1/events: the event log as Server-Sent Events, so dashboards follow
 * runs starting, progressing and finishing without polling. Each event goes out as
 * "id: N\nevent: KIND\ndata: JSON\n\n"; a client that reconnects sends Last-Event-ID (browsers do
 * it by themselves) or ?after=N and resumes after that id; by default a stream starts with the
 * events that happen after it opened. ?experiment=ID keeps one experiment's events. A reader who
 * may see only their own runs (reads_open = false, role user) gets only their runs' and sweeps'
 * events: the rest are skipped as if filtered.
 *
 * A stream holds no thread while it waits: its reader never blocks; with nothing to send it
 * answers 0 and the HTTP layer parks the connection until the pump thread (the one thread here
 * that waits on the scheduler's event notification) calls http_streams_wake, until the HTTP
 * tick (for the keep-alive comment, every sse_keepalive seconds of silence, which also finds
 * peers that vanished without closing), or until the client hangs up, which ends the stream at
 * once. Streams are counted per user, per client address and in all (the hub, under its mutex);
 * one over a limit gets 429 naming it, and a stream's slot is given back when its connection
 * closes. Each stream owns its own read-only store connection (the stream outlives the handler
 * that opened it), used only from the reader, which libmicrohttpd calls on one worker at a time.
 * The route is listed in api_misc_routes (api_misc.c).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "nl.h"

#define EVENTS_PAGE 100            /* events read from the store per refill */
#define EVENTS_CATCHUP_PAGE 1000   /* store_events_after's largest page */
#define PUMP_WAIT_MS 1000          /* longest block of the pump before it looks again */
#define SETTLE_MS 50               /* second wake-up after an event: its row may not have been
				    * committed when the first wake-up read the store */
#define RETRY_MS 3000              /* what the client waits before reconnecting */
#define PENDING_MAX ((size_t)4 << 20)
#define KEY_MAX 64

/* Open streams of one user or one client address. */
struct slot_count {
	char key[KEY_MAX];
	int n;
};

struct events_hub {
	struct daemon *d;
	struct http_server *http;
	pthread_mutex_t mu;         /* guards the counts */
	int total;
	struct slot_count *users, *ips;   /* entries with n > 0 */
	int n_users, n_ips, cap;    /* cap: of each array, sse_max_total entries */
	pthread_t pump;
	int pump_started;
	atomic_int quit;
};

#define SEEN_CACHE 64               /* experiments / sweeps whose visibility a stream remembers */

struct sse {
	struct daemon *d;
	struct events_hub *hub;
	struct store *s;
	char user[KEY_MAX];         /* the slot held: user ("" when unauthenticated) and address */
	char ip[KEY_MAX];
	int has_slot;
	int catching_up;            /* the store may hold events past `after` that the scheduler
				     * did not announce (a resume, a restart): read before trusting
				     * its count */
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

/* Fills e->buf with what is due now: events, else a keep-alive when the stream was silent long
 * enough. Never blocks. 1 = bytes ready, 0 = nothing now, -1 = the daemon is stopping (end),
 * -2 = error. */
static int sse_fill(struct sse *e)
{
	struct store_err err = { 0 };
	e->len = e->pos = 0;
	if (!e->started) {
		char first[64];
		e->started = 1;
		snprintf(first, sizeof first, "retry: %d\n: normlab events\n\n", RETRY_MS);
		puts_(e, first);
		return e->oom ? -2 : 1;
	}
	/* the scheduler's newest id, without waiting: the store is read only when it moved */
	int64_t newest = sched_events_wait(e->d->sched, e->after, 0);
	if (newest < 0)
		return -1;
	if (e->catching_up || newest > e->after) {
		int n;
		do {
			n = store_events_after(e->s, e->after, EVENTS_PAGE, event_cb, e, &err);
			if (n < 0 || e->oom)
				return -2;
		} while (!e->len && n == EVENTS_PAGE);   /* a full page, all filtered out */
		e->catching_up = n == EVENTS_PAGE;
		if (e->len)
			return 1;
	}
	if (mono_now() - e->last_out >= (double)e->d->cfg.sse_keepalive) {
		puts_(e, ": keep-alive\n\n");
		return e->oom ? -2 : 1;
	}
	return 0;
}

static ssize_t sse_read(void *cls, char *buf, size_t max)
{
	struct sse *e = cls;
	if (e->pos == e->len) {
		int rc = sse_fill(e);
		if (rc <= 0)
			return rc == 0 ? 0 : rc == -1 ? -1 : -2;
	}
	size_t n = e->len - e->pos < max ? e->len - e->pos : max;
	memcpy(buf, e->buf + e->pos, n);
	e->pos += n;
	e->last_out = mono_now();
	return (ssize_t)n;
}

/* ---------- slots ---------- */

static struct slot_count *slot_find(struct slot_count *v, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return &v[i];
	return NULL;
}

static void slot_drop(struct slot_count *v, int *n, const char *key)
{
	struct slot_count *c = slot_find(v, *n, key);
	if (c && --c->n == 0)
		*c = v[--*n];
}

/*
 * Takes a stream slot for user (may be "") at address ip, or answers 429 naming the limit that
 * is reached and returns -1. The per-user and per-address counts have at most sse_max_total
 * distinct keys, so their arrays never grow.
 */
static int slot_take(struct events_hub *h, const char *user, const char *ip,
		     struct http_response *r)
{
	const struct config *cfg = &h->d->cfg;
	char det[256];
	det[0] = '\0';
	pthread_mutex_lock(&h->mu);
	struct slot_count *u = user[0] ? slot_find(h->users, h->n_users, user) : NULL;
	struct slot_count *a = slot_find(h->ips, h->n_ips, ip);
	if (u && u->n >= cfg->sse_max_per_user)
		snprintf(det, sizeof det, "user %s already holds %d event streams, the limit "
			 "(sse_max_per_user = %d): close one first", user, u->n,
			 cfg->sse_max_per_user);
	else if (a && a->n >= cfg->sse_max_per_ip)
		snprintf(det, sizeof det, "client %s already holds %d event streams, the limit "
			 "(sse_max_per_ip = %d): close one first", ip, a->n, cfg->sse_max_per_ip);
	else if (h->total >= cfg->sse_max_total || h->total >= h->cap)
		snprintf(det, sizeof det, "the server already holds %d event streams, the limit "
			 "(sse_max_total = %d)", h->total, cfg->sse_max_total);
	if (det[0]) {
		pthread_mutex_unlock(&h->mu);
		http_problem(r, 429, "too_many_streams", det, NULL, NULL, 0);
		return -1;
	}
	if (user[0] && !u) {
		u = &h->users[h->n_users++];
		snprintf(u->key, sizeof u->key, "%s", user);
		u->n = 0;
	}
	if (!a) {
		a = &h->ips[h->n_ips++];
		snprintf(a->key, sizeof a->key, "%s", ip);
		a->n = 0;
	}
	if (u)
		u->n++;
	a->n++;
	h->total++;
	pthread_mutex_unlock(&h->mu);
	return 0;
}

static void slot_give(struct events_hub *h, const char *user, const char *ip)
{
	pthread_mutex_lock(&h->mu);
	if (user[0])
		slot_drop(h->users, &h->n_users, user);
	slot_drop(h->ips, &h->n_ips, ip);
	h->total--;
	pthread_mutex_unlock(&h->mu);
}

static void sse_free(void *cls)
{
	struct sse *e = cls;
	if (!e)
		return;
	if (e->has_slot)
		slot_give(e->hub, e->user, e->ip);
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
	if (!d->events) {
		http_problem(r, 503, "stopping", "the daemon is shutting down", NULL, NULL, 0);
		return;
	}
	struct sse *e = nl_calloc(1, sizeof *e);
	if (!e) {
		http_problem(r, 500, "internal", "out of memory", NULL, NULL, 0);
		return;
	}
	e->d = d;
	e->hub = d->events;
	snprintf(e->user, sizeof e->user, "%s", req->authed ? req->user : "");
	snprintf(e->ip, sizeof e->ip, "%s", req->client);
	if (slot_take(e->hub, e->user, e->ip, r) != 0) {
		nl_free(e);
		return;
	}
	e->has_slot = 1;
	struct store *s = api_reader(d, r);
	if (!s) {
		sse_free(e);
		return;
	}
	e->s = s;
	if (only && req->read_own_only) {
		struct store_experiment x;
		char what[48];
		int hide;
		memset(&x, 0, sizeof x);
		snprintf(what, sizeof what, "experiment %" PRId64, only);
		if (store_experiment_get(s, only, &x, &err) != 0) {
			api_store_problem(r, &err, what);
			sse_free(e);
			return;
		}
		hide = api_hide_unless_readable(req, r, x.owner, what);
		store_experiment_clear(&x);
		if (hide) {
			sse_free(e);
			return;
		}
	}
	if (after < 0) {
		int rc = newest_event(d, s, &after, &err);
		if (rc != 0) {
			sse_free(e);
			if (rc > 0)
				http_problem(r, 503, "stopping", "the daemon is shutting down", NULL,
					     NULL, 0);
			else
				api_store_problem(r, &err, "events");
			return;
		}
	}
	e->after = after;
	e->catching_up = 1;
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

/* ---------- the hub and its pump ---------- */

/*
 * Waits on the scheduler's event notification and wakes the parked streams when an event was
 * written, once more SETTLE_MS later, and when the daemon stops (they then end).
 */
static void *pump_main(void *arg)
{
	struct events_hub *h = arg;
	int64_t seen = sched_events_wait(h->d->sched, INT64_MAX, 0);
	int settle = 0;
	while (seen >= 0 && !atomic_load(&h->quit)) {
		int64_t n = sched_events_wait(h->d->sched, seen, settle ? SETTLE_MS : PUMP_WAIT_MS);
		if (n < 0) {
			http_streams_wake(h->http);
			break;
		}
		if (n > seen) {
			seen = n;
			settle = 1;
			http_streams_wake(h->http);
		} else if (settle) {
			settle = 0;
			http_streams_wake(h->http);
		}
	}
	return NULL;
}

int api_events_init(struct daemon *d, char *errbuf, size_t cap)
{
	struct events_hub *h = nl_calloc(1, sizeof *h);
	int slots = d->cfg.sse_max_total;
	if (h) {
		h->users = nl_calloc((size_t)slots, sizeof *h->users);
		h->ips = nl_calloc((size_t)slots, sizeof *h->ips);
	}
	if (!h || !h->users || !h->ips) {
		if (h) {
			nl_free(h->users);
			nl_free(h->ips);
		}
		nl_free(h);
		snprintf(errbuf, cap, "out of memory for %d event stream slots", slots);
		return NL_ENOMEM;
	}
	h->d = d;
	h->cap = slots;
	pthread_mutex_init(&h->mu, NULL);
	d->events = h;
	return 0;
}

int api_events_start(struct daemon *d, struct http_server *http, char *errbuf, size_t cap)
{
	struct events_hub *h = d->events;
	h->http = http;
	if (pthread_create(&h->pump, NULL, pump_main, h) != 0) {
		snprintf(errbuf, cap, "cannot start the event pump thread");
		return NL_EIO;
	}
	h->pump_started = 1;
	return 0;
}

void api_events_stop(struct daemon *d)
{
	struct events_hub *h = d->events;
	if (!h || !h->pump_started)
		return;
	atomic_store(&h->quit, 1);
	pthread_join(h->pump, NULL);
	h->pump_started = 0;
}

void api_events_free(struct daemon *d)
{
	struct events_hub *h = d->events;
	if (!h)
		return;
	api_events_stop(d);
	d->events = NULL;
	pthread_mutex_destroy(&h->mu);
	nl_free(h->users);
	nl_free(h->ips);
	nl_free(h);
}
