/*
 * scheduler.h — the scheduler (prefix sched_): owns the libuv loop (on normlabd's main thread), the SQLite writer
 * connection, the queue of runs and the runs in flight. Runs execute with uv_queue_work on the
 * libuv pool, one pool thread per run plus the run's own compute threads; concurrent runs × their
 * threads never exceed the configured thread budget. Priority, then fair share between owners
 * (round-robin by least recent start, per-user running caps), then FIFO within an owner.
 *
 * Every write to the database happens on the loop thread. Other threads (HTTP connection threads,
 * run workers) reach it only through uv_async_send and a locked queue that the loop drains
 * completely: sched_call() for HTTP writes (synchronous: the caller waits for the result), and
 * batched metric messages from workers (asynchronous: a worker never waits on the database).
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stdint.h>

#include "store.h"

struct daemon;
struct sched;

/* Creates the scheduler: opens the writer, marks runs left `running` by a crash interrupted,
 * truncates their metrics after their last checkpoint and re-queues them. Call on the main thread. */
int sched_new(struct sched **out, struct daemon *d, char *errbuf, size_t cap);
/* Runs the loop until sched_shutdown completes. Main thread. */
int sched_run(struct sched *s);
/* From any thread (also a signal-handling path): stop accepting work, checkpoint running runs,
 * mark them interrupted, then let sched_run return. */
void sched_shutdown(struct sched *s);
void sched_free(struct sched *s);

/*
 * Runs fn(writer, ctx) on the loop thread and returns its result; the caller's thread waits.
 * After fn the scheduler looks for runs to start. Returns fn's value, or -EAGAIN-like
 * SCHED_ESTOPPING once shutdown has begun (the caller answers 503).
 */
#define SCHED_ESTOPPING (-100)
int sched_call(struct sched *s, int (*fn)(struct store *w, void *ctx), void *ctx);

/*
 * Keeps the validated spec of experiment id, just inserted as queued, so that starting it does
 * not parse its stored text again: a spec is parsed once on its way to a run. Loop thread only
 * (inside a sched_call fn, after the insert committed). The cache holds SCHED_SPEC_KEEP specs;
 * the oldest goes first, and a run whose spec is not kept (after a restart, or pushed out) is
 * parsed from the store as before. Out of memory only means no entry.
 */
#define SCHED_SPEC_KEEP 256
struct spec;
void sched_keep_spec(struct sched *s, int64_t id, const struct spec *sp);

/*
 * Cancels experiment id: a queued one becomes cancelled at once; a running one stops within one
 * step and then becomes cancelled. Returns 0 (done), 1 (a running run was asked to stop),
 * STORE_ENOTFOUND, or -2 when it has already ended (nothing to cancel).
 */
int sched_cancel(struct sched *s, int64_t id);

/* Appends an event on the writer (loop thread only: call it inside a sched_call fn) and wakes
 * every thread blocked in sched_events_wait. data_json is a JSON object text. */
int64_t sched_event(struct sched *s, struct store *w, const char *kind, int64_t exp_id,
		    const char *data_json);

/* Blocks until an event with id > after_id exists or timeout_ms passes; returns the newest event
 * id (which may still be ≤ after_id on timeout), or -1 once the daemon is stopping. Any thread. */
int64_t sched_events_wait(struct sched *s, int64_t after_id, int timeout_ms);

struct sched_stats {
	int queued;             /* experiments waiting */
	int running;            /* runs in flight */
	int threads_in_use;     /* compute threads of the runs in flight */
	double steps_per_s;     /* training steps per second over all runs, recent */
	double ingest_points_per_s;   /* scalar points + depth values written per second, recent */
	int64_t points_written; /* since start */
	int64_t runs_finished;  /* since start */
	int stopping;
	char io_error[320];     /* the last storage write error; "" once a later write worked */
	double io_error_at;     /* unix seconds of that error */
	int reserve_held;       /* the disk-full reserve (storage_reserve_bytes) is in place */
};
void sched_stats(struct sched *s, struct sched_stats *out);

#endif
