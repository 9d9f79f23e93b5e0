/*
 * store.h — normlab's SQLite store: the only module that writes SQL. One writer connection (the
 * daemon's scheduler thread) and any number of reader connections (one per reading thread, e.g.
 * each HTTP worker thread). WAL mode; the schema carries a version and migrates forward on open.
 * Metrics arrive in batches and each batch is one transaction (never one point per transaction).
 * Depth profiles are one row per (experiment, name, step) holding L values; samples one row per
 * (experiment, site, step).
 * A struct store is used by one thread at a time; SQLite runs in multi-thread mode underneath.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 5
#define STORE_MSG 256
#define STORE_BUCKETS_MAX 100000   /* most buckets store_metric_buckets returns (a hard cap) */

struct store_err {
	int code;               /* 0, or a negative STORE_E* */
	char msg[STORE_MSG];
};

enum store_code {
	STORE_OK = 0,
	STORE_ENOMEM = -1,
	STORE_EIO = -3,         /* SQLite failed: msg has sqlite3_errmsg */
	STORE_ENOTFOUND = -7,
	STORE_EINVAL = -2,
	STORE_EFULL = -8,       /* the disk (or the database's size limit) is full: SQLITE_FULL */
};

struct store;

/*
 * Opens (creating if missing) the database at path. writer=1: the one writer; it creates the
 * schema or migrates it to STORE_SCHEMA_VERSION. writer=0: a read-only connection (fails if the
 * schema is missing or newer than this build). Caller frees with store_close.
 */
int store_open(struct store **out, const char *path, int writer, struct store_err *err);
void store_close(struct store *s);

/* ---------- experiments ---------- */

enum store_status {
	STORE_QUEUED, STORE_RUNNING, STORE_SUCCEEDED, STORE_FAILED, STORE_CANCELLED,
	STORE_DIVERGED, STORE_INTERRUPTED,
	STORE_DEAD,             /* stopped by run health (train.on_dead = stop) */
	STORE_STATUS_COUNT,
};
const char *store_status_name(int status);   /* "queued", ... */
int store_status_parse(const char *name);     /* -1 if unknown */

struct store_experiment {
	int64_t id;
	char hash[65];
	char *spec;             /* canonical spec JSON; owned (free with store_experiment_clear) */
	char name[128];
	char norm_type[32];
	char placement[16];
	int n_layer;
	int64_t seed;
	int threads;
	int64_t steps;
	char owner[64];
	int priority;           /* higher runs first; FIFO by id within a priority */
	int64_t sweep_id;       /* 0 = none */
	int cell;               /* index in its sweep, -1 = none */
	int status;             /* enum store_status */
	int64_t step;           /* last step whose metrics are stored */
	int64_t ckpt_step;      /* step of the last checkpoint (0 = none) */
	double loss, val_loss;  /* NAN when unknown */
	int64_t diverged_step;  /* 0 = none */
	char health[16];        /* "ok", "spike", "stalled", "dead", "diverged" (engine/health.h) */
	int64_t health_step;    /* when the finding was made, 0 = none */
	char *health_reason;    /* owned, may be NULL: one line naming the measurement */
	char *error;            /* owned, may be NULL */
	char *tags;             /* JSON array text, owned, may be NULL ("[]") */
	char *notes;            /* owned, may be NULL */
	double created_at, started_at, finished_at;   /* unix seconds, 0 = not yet */
	int64_t parent_id;      /* the run a child started from (spec "parent"), 0 = none */
};

void store_experiment_clear(struct store_experiment *e);   /* frees owned strings, zeroes */

/* Inserts e (id ignored, status as given); sets e->id. */
int store_experiment_insert(struct store *s, struct store_experiment *e, struct store_err *err);
int store_experiment_get(struct store *s, int64_t id, struct store_experiment *out,
			 struct store_err *err);
/* Id of the newest experiment with this hash and status (-1 = any status), or 0; <0 on error.
 * A `succeeded` one counts only when its stored step reached its steps (all its data written). */
int64_t store_experiment_find_hash(struct store *s, const char *hash, int status);

/* Ids of the experiments whose parent is id, in id order (cb per id; non-zero stops). Returns the
 * count or <0. */
int store_experiment_children(struct store *s, int64_t id,
			      int (*cb)(void *ctx, int64_t child_id), void *ctx,
			      struct store_err *err);

/* State changes; each one transaction. error may be NULL. */
int store_experiment_set_status(struct store *s, int64_t id, int status, const char *error,
				double now, struct store_err *err);
/* Progress: step, loss, val_loss (NAN keeps the old), diverged_step (0 keeps). */
int store_experiment_progress(struct store *s, int64_t id, int64_t step, double loss,
			      double val_loss, int64_t diverged_step, struct store_err *err);
int store_experiment_set_ckpt(struct store *s, int64_t id, int64_t ckpt_step, struct store_err *err);
/* The run's health finding (engine/health.h): status name, step, reason (NULL = none). */
int store_experiment_set_health(struct store *s, int64_t id, const char *health, int64_t step,
				const char *reason, struct store_err *err);
/* tags (JSON array text or NULL = unchanged), notes (NULL = unchanged), priority (INT32_MIN = unchanged) */
int store_experiment_patch(struct store *s, int64_t id, const char *tags, const char *notes,
			   int priority, struct store_err *err);
/* Back to a fresh start for a retry: step, checkpoint, losses, divergence, error and times
 * cleared (status is set separately). */
int store_experiment_reset(struct store *s, int64_t id, struct store_err *err);

/* Deletes the experiment and every metric, depth row and sample of it. */
int store_experiment_delete(struct store *s, int64_t id, struct store_err *err);

/* Marks every `running` experiment `interrupted` (after a crash); returns how many, or <0. */
int store_recover_running(struct store *s, double now, struct store_err *err);

/* Number of experiments in `status` (one indexed count), or a negative code. */
int64_t store_experiment_count(struct store *s, int status);

/* The next queued experiment by priority desc, id asc, whose threads ≤ max_threads; 0 if none,
 * <0 on error. */
int64_t store_next_queued(struct store *s, int max_threads);

struct store_filter {
	int status;             /* -1 = any */
	int64_t sweep_id;       /* 0 = any */
	const char *norm_type;  /* NULL = any */
	const char *placement;
	const char *owner;
	const char *tag;        /* experiments whose tags array contains this string */
	const char *arch;       /* the spec's model.arch ("gpt" for specs from before archs) */
	int64_t after_id;       /* cursor: only ids > after_id (0 = from the start) */
	int limit;              /* 1..1000 */
};

/* Calls cb for each match in id order; cb returns non-zero to stop. Returns the count or <0. */
int store_experiment_list(struct store *s, const struct store_filter *f,
			  int (*cb)(void *ctx, const struct store_experiment *e), void *ctx,
			  struct store_err *err);

/* ---------- sweeps ---------- */

struct store_sweep {
	int64_t id;
	char owner[64];
	char *request;          /* the sweep request JSON as submitted; owned */
	int priority;
	int n_cells;
	double created_at;
};

void store_sweep_clear(struct store_sweep *w);
int store_sweep_insert(struct store *s, struct store_sweep *w, struct store_err *err);
int store_sweep_get(struct store *s, int64_t id, struct store_sweep *out, struct store_err *err);
/* Sweeps in id order after after_id (owner NULL = any), at most limit (1..1000); cb per sweep
 * (request included). Returns the count or <0. */
int store_sweep_list(struct store *s, const char *owner, int64_t after_id, int limit,
		     int (*cb)(void *ctx, const struct store_sweep *w), void *ctx,
		     struct store_err *err);

/* Count of the sweep's cells in each status: counts[0, STORE_STATUS_COUNT). */
int store_sweep_counts(struct store *s, int64_t id, int counts[STORE_STATUS_COUNT],
		       struct store_err *err);

/* Runs fn inside one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK if fn returns < 0). */
int store_tx(struct store *s, int (*fn)(struct store *s, void *ctx), void *ctx, struct store_err *err);

/* ---------- metrics ---------- */

struct store_point {
	int64_t step;
	const char *name;       /* "loss", "val_loss", ... (borrowed) */
	double value;           /* NAN/Inf stored as NULL (read back as NAN); -0.0 reads back as 0.0 */
};

struct store_depth {
	int64_t step;
	const char *name;       /* "resid.var", ... (borrowed) */
	const double *values;   /* borrowed */
	int n;
};

struct store_samples {
	int64_t step;
	const char *site;
	const float *x, *y;
	const int32_t *token, *channel;
	int n;
};

/* One transaction for the whole batch. */
int store_metrics_append(struct store *s, int64_t exp_id, const struct store_point *p, int np,
			 const struct store_depth *d, int nd, const struct store_samples *sm, int ns,
			 struct store_err *err);

/* Deletes every scalar, depth row and sample with step > step (resume after a crash). */
int store_metrics_truncate(struct store *s, int64_t exp_id, int64_t step, struct store_err *err);

/* Names of the scalar and depth metrics an experiment has (cb per name, kind "scalar"/"depth"). */
int store_metric_names(struct store *s, int64_t exp_id,
		       int (*cb)(void *ctx, const char *name, const char *kind), void *ctx,
		       struct store_err *err);

struct store_bucket {
	int64_t step_first, step_last;
	double min, max, mean, last;   /* over the finite values; NAN if none */
	int64_t n;                     /* points in the bucket, non-finite ones included */
};

/*
 * Scalar series `name` of exp_id between steps from..to (inclusive; to < 0 = no bound), in at
 * most `buckets` equal step ranges; empty ranges are skipped. cb per bucket in step order.
 * Returns the number of buckets emitted or <0.
 */
int store_metric_buckets(struct store *s, int64_t exp_id, const char *name, int64_t from,
			 int64_t to, int buckets,
			 int (*cb)(void *ctx, const struct store_bucket *b), void *ctx,
			 struct store_err *err);

/* Every point of a scalar series in step order (export); cb returns non-zero to stop. */
int store_metric_scan(struct store *s, int64_t exp_id, const char *name,
		      int (*cb)(void *ctx, int64_t step, double value), void *ctx,
		      struct store_err *err);

/*
 * One page of a scalar series for exports: the points with step > after_step in step order, at
 * most limit (1..1000) of them, cb per point (non-zero stops). Returns the number of points given
 * to cb (0: no more, or no such series) or <0. Pass the last step seen as the next after_step
 * (INT64_MIN to start). Each page is its own read, so a slow consumer between pages does not hold
 * a read transaction open (which would stop the writer's WAL checkpoints).
 */
int store_metric_page(struct store *s, int64_t exp_id, const char *name, int64_t after_step,
		      int limit, int (*cb)(void *ctx, int64_t step, double value), void *ctx,
		      struct store_err *err);

/* Depth rows of `name` in step order (all steps; step_eq ≥ 0 selects one step, -1 = latest). */
int store_depth_get(struct store *s, int64_t exp_id, const char *name, int64_t step_eq,
		    int all_steps,
		    int (*cb)(void *ctx, int64_t step, const double *v, int n), void *ctx,
		    struct store_err *err);

/* Samples of a site at a step (-1 = latest). cb once with the arrays. Sites via store_sample_sites. */
int store_samples_get(struct store *s, int64_t exp_id, const char *site, int64_t step,
		      int (*cb)(void *ctx, const struct store_samples *sm), void *ctx,
		      struct store_err *err);
int store_sample_sites(struct store *s, int64_t exp_id,
		       int (*cb)(void *ctx, const char *site, int64_t step), void *ctx,
		       struct store_err *err);

/* ---------- quotas and fair share (store_quota.c) ---------- */

struct store_owner_counts {
	int64_t queued_runs;    /* the owner's queued experiments outside any sweep */
	int64_t queued_cells;   /* the owner's queued sweep cells */
	int64_t running;        /* the owner's running experiments */
};

/* Counts of owner's experiments (indexed by owner, status). Returns 0 or a negative code. */
int store_owner_counts(struct store *s, const char *owner, struct store_owner_counts *out,
		       struct store_err *err);

/*
 * One queue head per (priority, owner): the owner's oldest queued experiment (lowest id) at that
 * priority among those whose threads ≤ max_threads. Ordered for fair share: priority descending;
 * within a priority, the owner whose newest start (max started_at over all of the owner's
 * experiments, any status; 0 when none ever started) is oldest first; ties by the head's id.
 * So, within a priority, owners take turns (round-robin by least recent start) and each owner's
 * runs go first come first served. running is the owner's count of running experiments, for the
 * caller's per-owner cap. Fills at most cap heads; returns how many, or a negative code.
 */
struct store_queue_head {
	int64_t id;
	int priority;
	char owner[64];
	int64_t running;
	double last_start;
};
int store_queue_heads(struct store *s, int max_threads, struct store_queue_head *out, int cap,
		      struct store_err *err);

/*
 * Deletes events older than before_t (unix seconds; ≤ 0 = no age limit) and all but the newest
 * keep_rows (0 = no count limit), oldest first, at most max_delete (≥ 1) of them in one call so
 * a large backlog never holds the writer long: call again while it returns max_delete. Ids keep
 * increasing (AUTOINCREMENT), so a client resuming after a pruned id simply gets the oldest
 * kept. Returns the number deleted, or a negative code.
 */
int64_t store_events_prune(struct store *s, double before_t, int64_t keep_rows, int max_delete,
			   struct store_err *err);

/* ---------- events (for the SSE stream; ids increase, so a client resumes after its last) ---------- */

/* ---------- storage faults: room to recover on a full disk, and the I/O fault hook ---------- */

/*
 * Keeps `bytes` of real blocks (posix_fallocate) in "<db path>.reserve", so a write the daemon
 * cannot skip (a run's final status, a DELETE that frees space) still finds room when the disk is
 * full: the caller releases the reserve and retries once. Made only while at least twice `bytes`
 * are free, so making it never takes the last free space; bytes 0 removes it. Writer only.
 * Returns 1 when the reserve is in place, 0 when there was no room for it (not an error), <0 on
 * error.
 */
int store_reserve_make(struct store *s, int64_t bytes, struct store_err *err);
/* Deletes the reserve file, giving its blocks back. 1 if there was one to release, else 0. */
int store_reserve_release(struct store *s);
/* 1 while the reserve file exists (any thread: it only stats the file). */
int store_reserve_present(const struct store *s);

/*
 * Test hook, process-wide: from now on SQLite writes through connections opened afterwards fail
 * with SQLITE_FULL as spec says: "writes=N" (every write after the first N), "writes=N,count=K"
 * (K writes after the first N, then writes work again), "file=PATH" (every write while PATH
 * exists), "off". The daemon arms it from $NORMLAB_STORE_FAULT. Returns 0 or STORE_EINVAL.
 */
int store_fault_arm(const char *spec, struct store_err *err);
/* Writes the hook has seen since it was last armed with writes=N (for iterating over N). */
long store_fault_writes(void);

int64_t store_event_append(struct store *s, const char *kind, int64_t exp_id, const char *data_json,
			   double now, struct store_err *err);
int store_events_after(struct store *s, int64_t after_id, int limit,
		       int (*cb)(void *ctx, int64_t id, const char *kind, int64_t exp_id,
				 const char *data_json), void *ctx, struct store_err *err);

/* store_experiment_find_hash among owner's experiments only (owner borrowed; NULL = anyone's):
 * the deduplication of a user who may read only their own runs. In store_exp.c. */
int64_t store_experiment_find_hash_owner(struct store *s, const char *hash, int status,
					 const char *owner);
/* ---------- datasets (issue 9: corpora an admin registered under a name) ---------- */

/* Registers name → path (relative to the data roots), replacing an earlier registration of the
 * name. Writer only. name, path, owner are borrowed. */
int store_dataset_put(struct store *s, const char *name, const char *path, const char *owner,
		      double now, struct store_err *err);
/* Removes a registration; STORE_ENOTFOUND when there is none. Writer only. */
int store_dataset_delete(struct store *s, const char *name, struct store_err *err);
/* Every registration in name order; cb returning nonzero stops the scan. Returns the count. */
int store_datasets_list(struct store *s,
			int (*cb)(void *ctx, const char *name, const char *path, const char *owner,
				  double created_at), void *ctx, struct store_err *err);

#endif
