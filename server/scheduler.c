/*
 * scheduler.c — the scheduler (see scheduler.h). The libuv loop runs on normlabd's main thread and owns the
 * SQLite writer, the run table and the queue of messages. Everything else reaches it through
 * msg_push() + uv_async_send(); drain() empties the queue completely on every wake-up.
 *
 * A run's life: pump() picks the next queued experiment that fits the thread budget, marks it
 * running and hands it to uv_queue_work. The pick is fair share (store_queue_heads): the highest
 * priority first; within it, the owner whose newest start is oldest, skipping owners at their
 * running cap (quota_owner_max_running); within an owner, first come first served. The worker trains, batching metrics into messages (never
 * touching the database), checkpoints every cfg.checkpoint_every steps (file first, then a message;
 * the loop records the step only after every metric up to it is stored, and only then deletes the
 * older checkpoint file), and returns with a status. after_work drains what is left and records
 * the end state. A crash leaves the database with the last recorded checkpoint step: on start the
 * run's later metrics are deleted and it resumes from that file, bit-identically.
 *
 * Storage faults are failures, never successes: a metric batch, progress update or checkpoint
 * step that cannot be stored, or a checkpoint file that cannot be written, stops the run and
 * ends it `failed` with "storage: ..." as its error. The last two checkpoints are kept, so a
 * checkpoint found corrupt at resume (CRC-32C mismatch) falls back to the one before it; nothing
 * is pruned after a failed save. The last storage error is kept for /health until a later write
 * succeeds.
 */
#define _GNU_SOURCE
#include "scheduler.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "checkpoint.h"
#include "daemon.h"
#include "data.h"
#include "log.h"
#include "quota.h"
#include "spec.h"
#include "storage.h"
#include "train.h"

#define SCHED_HEADS 64   /* queue heads (priority, owner) looked at per pick */

enum run_result {
	RUN_SUCCEEDED, RUN_FAILED, RUN_DIVERGED, RUN_CANCELLED, RUN_INTERRUPTED, RUN_DEAD,
};

struct batch_point {
	int64_t step;
	char name[64];
	double value;
};

struct batch_depth {
	int64_t step;
	char name[64];
	int n;
	double *values;
};

struct batch_samples {
	int64_t step;
	char site[64];
	int n;
	float *x, *y;
	int32_t *token, *channel;
};

struct call {
	int (*fn)(struct store *w, void *ctx);
	void *ctx;
	int result;
	int done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

enum msg_kind { MQ_CALL, MQ_BATCH, MQ_CKPT, MQ_REWIND };

struct msg {
	struct msg *next;
	enum msg_kind kind;
	struct call *call;
	int64_t exp_id;
	struct batch_point *pts;
	int np, cap_p;
	struct batch_depth *dep;
	int nd, cap_d;
	struct batch_samples *sm;
	int ns, cap_s;
	int has_progress;
	int64_t step, diverged_step, ckpt_step;   /* MQ_REWIND: from step back to ckpt_step */
	double loss, val_loss;
	int has_health;       /* the run's health finding changed: store it */
	int health;
	long health_step;
	char health_reason[HEALTH_REASON_MAX];
	int oom;              /* an append failed: the batch is incomplete and says so */
};

struct run {
	uv_work_t work;
	struct sched *s;
	struct run *next;
	int64_t id;
	struct spec spec;
	int threads;
	int64_t resume_step;
	char dir[PATH_MAX];
	int corpus_fd;        /* the corpus, opened beneath its data root at start; -1 after use */
	atomic_int cancel;    /* loop sets; worker checks every step */
	atomic_int stop;      /* shutdown: checkpoint and stop */
	atomic_int io_abort;  /* loop sets when its data could not be stored; worker stops */
	char io_error[400];   /* loop only: "storage: ..." once a write for this run failed */
	int io_worker;        /* worker: r->error is a storage failure (read by after_work) */
	/* worker's results, read by after_work */
	enum run_result result;
	char error[512];
	int64_t final_step, diverged_step;
	double loss, val_loss;
	int64_t loop_step;    /* loop thread: last step seen in a batch (for steps/s) */
	/* the health stored before a resume (start_run), taken up by the trainer */
	int seed_health;
	int64_t seed_health_step;
	char seed_health_reason[HEALTH_REASON_MAX];
	/* worker-only */
	int sent_health;      /* the health finding last handed to the loop */
	long sent_health_step;
	struct msg *batch;
	int64_t sent_step;    /* step of the last progress handed to the loop */
	double last_flush;
	int64_t last_ckpt;
};

/* A run's end state that could not be written yet (the disk was full): retried on the timer. */
struct pending {
	struct pending *next;
	int64_t id;
	int status;
	char error[512];
	char event[640];
};

struct sched {
	struct daemon *d;
	uv_loop_t loop;
	uv_async_t async;
	uv_signal_t sigint, sigterm;
	uv_timer_t tick;
	uv_timer_t prune;           /* old events out, every cfg.events_prune_every seconds */
	struct store *w;            /* the writer: loop thread only */
	struct run *runs;           /* in flight: loop thread only */
	int n_running, threads_in_use;
	atomic_int stopping;
	int closing;
	/* message queue: any thread pushes, the loop drains */
	pthread_mutex_t qmu;
	struct msg *qhead, *qtail;
	/* events: the newest id, for SSE waiters */
	pthread_mutex_t emu;
	pthread_cond_t ecv;
	int64_t last_event;
	/* stats (smu) */
	pthread_mutex_t smu;
	int64_t steps_total, points_total, finished_total;
	double win_start;
	int64_t win_steps0, win_points0;
	double steps_rate, points_rate;
	int queued_cache;
	/* loop thread: validated specs of queued runs (sched_keep_spec), a ring, oldest first out */
	struct kept_spec { int64_t id; struct spec *spec; } kept[SCHED_SPEC_KEEP];
	int kept_next;
	char io_error[320];         /* the last storage write error, "" once a later write worked */
	double io_error_at;
	int reserve_held;           /* the store's disk-full reserve file is in place */
	int ticks;                  /* loop thread: timer ticks, for jobs every few seconds */
	struct pending *pending;    /* loop thread: end states waiting for room on the disk */
	atomic_int shutdown_requested;   /* sched_shutdown from another thread */
};

/* ---------- queue ---------- */

static void msg_push(struct sched *s, struct msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&s->qmu);
	if (s->qtail)
		s->qtail->next = m;
	else
		s->qhead = m;
	s->qtail = m;
	pthread_mutex_unlock(&s->qmu);
	uv_async_send(&s->async);
}

static struct msg *msg_take_all(struct sched *s)
{
	pthread_mutex_lock(&s->qmu);
	struct msg *m = s->qhead;
	s->qhead = s->qtail = NULL;
	pthread_mutex_unlock(&s->qmu);
	return m;
}

static void msg_free(struct msg *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nd; i++)
		nl_free(m->dep[i].values);
	for (int i = 0; i < m->ns; i++) {
		nl_free(m->sm[i].x);
		nl_free(m->sm[i].y);
		nl_free(m->sm[i].token);
		nl_free(m->sm[i].channel);
	}
	nl_free(m->pts);
	nl_free(m->dep);
	nl_free(m->sm);
	nl_free(m);
}

/* ---------- events and stats ---------- */

int64_t sched_event(struct sched *s, struct store *w, const char *kind, int64_t exp_id,
		    const char *data_json)
{
	struct store_err err = { 0 };
	int64_t id = store_event_append(w, kind, exp_id, data_json, daemon_now(), &err);
	if (id <= 0) {
		LOG_WARN("event %s for experiment %" PRId64 " not stored: %s", kind, exp_id, err.msg);
		return id;
	}
	pthread_mutex_lock(&s->emu);
	if (id > s->last_event)
		s->last_event = id;
	pthread_cond_broadcast(&s->ecv);
	pthread_mutex_unlock(&s->emu);
	return id;
}

int64_t sched_events_wait(struct sched *s, int64_t after_id, int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->emu);
	while (s->last_event <= after_id && !atomic_load(&s->stopping)) {
		if (pthread_cond_timedwait(&s->ecv, &s->emu, &until) == ETIMEDOUT)
			break;
	}
	int64_t last = atomic_load(&s->stopping) ? -1 : s->last_event;
	pthread_mutex_unlock(&s->emu);
	return last;
}

static void stats_add(struct sched *s, int64_t steps, int64_t points)
{
	pthread_mutex_lock(&s->smu);
	s->steps_total += steps;
	s->points_total += points;
	pthread_mutex_unlock(&s->smu);
}

/* Recomputes the rates over a window of at least 2 s (loop thread, from the timer). */
static void stats_window(struct sched *s)
{
	double now = daemon_now();
	pthread_mutex_lock(&s->smu);
	double dt = now - s->win_start;
	if (dt >= 2.0) {
		s->steps_rate = (double)(s->steps_total - s->win_steps0) / dt;
		s->points_rate = (double)(s->points_total - s->win_points0) / dt;
		s->win_start = now;
		s->win_steps0 = s->steps_total;
		s->win_points0 = s->points_total;
	}
	pthread_mutex_unlock(&s->smu);
}

/* Remembers a failed storage write for /health (any thread). */
static void io_failed(struct sched *s, const char *msg)
{
	pthread_mutex_lock(&s->smu);
	nl_strlcpy(s->io_error, msg, sizeof s->io_error);   /* a long one is cut */
	s->io_error_at = daemon_now();
	pthread_mutex_unlock(&s->smu);
}

/* A later write worked: the disk has room again, so the last error no longer describes it. */
static void io_ok(struct sched *s)
{
	pthread_mutex_lock(&s->smu);
	s->io_error[0] = '\0';
	pthread_mutex_unlock(&s->smu);
}

/* Loop thread: makes or re-makes the store's reserve (see store_reserve_make). */
static void reserve_refresh(struct sched *s)
{
	struct store_err err = { 0 };
	int rc = store_reserve_make(s->w, s->d->cfg.storage_reserve_bytes, &err);
	if (rc < 0)
		LOG_WARN("storage reserve: %s", err.msg);
	pthread_mutex_lock(&s->smu);
	s->reserve_held = rc > 0;
	pthread_mutex_unlock(&s->smu);
}

/*
 * Loop thread: a write that must not be skipped (a final status) failed; if the disk is full,
 * give the reserve back so the retry finds room. Returns 1 when the caller should retry.
 */
static int reserve_release(struct sched *s, int rc)
{
	if ((rc != STORE_EFULL && rc != STORE_EIO) || !store_reserve_release(s->w))
		return 0;
	LOG_WARN("storage: released the %" PRId64 "-byte reserve so a final write finds room",
		 (int64_t)s->d->cfg.storage_reserve_bytes);
	pthread_mutex_lock(&s->smu);
	s->reserve_held = 0;
	pthread_mutex_unlock(&s->smu);
	return 1;
}

void sched_stats(struct sched *s, struct sched_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&s->smu);
	out->queued = s->queued_cache;
	out->running = s->n_running;
	out->threads_in_use = s->threads_in_use;
	out->steps_per_s = s->steps_rate;
	out->ingest_points_per_s = s->points_rate;
	out->points_written = s->points_total;
	out->runs_finished = s->finished_total;
	nl_strlcpy(out->io_error, s->io_error, sizeof out->io_error);
	out->io_error_at = s->io_error_at;
	out->reserve_held = s->reserve_held;
	pthread_mutex_unlock(&s->smu);
	out->stopping = atomic_load(&s->stopping);
}

/* ---------- files ---------- */

static void ckpt_path(char *out, size_t cap, const char *dir, int64_t step)
{
	snprintf(out, cap, "%s/ckpt-%08" PRId64 ".safetensors", dir, step);
}

/* The step of checkpoint file `name` ("ckpt-%08d.safetensors"), or -1 for any other name. */
static int64_t ckpt_name_step(const char *name)
{
	long long step;
	char tail[32];
	if (sscanf(name, "ckpt-%lld.%31s", &step, tail) != 2 || strcmp(tail, "safetensors") != 0 ||
	    step <= 0)
		return -1;
	return step;
}

/* The newest checkpoint step in dir below `below`, or 0 when there is none. */
static int64_t ckpt_prev(const char *dir, int64_t below)
{
	DIR *dd = opendir(dir);
	struct dirent *de;
	int64_t best = 0;
	if (!dd)
		return 0;
	while ((de = readdir(dd)) != NULL) {
		int64_t step = ckpt_name_step(de->d_name);
		if (step > best && step < below)
			best = step;
	}
	closedir(dd);
	return best;
}

/*
 * Deletes the checkpoint files of dir except the one for `keep` and the newest one before it,
 * which is where a resume falls back to when `keep` turns out corrupt. keep < 0: all of them.
 * Files after `keep` (left by such a fallback) go too. Called only after `keep` was written and
 * recorded, so a failed save never costs an older checkpoint.
 */
static void ckpt_prune(const char *dir, int64_t keep)
{
	int64_t prev = keep > 0 ? ckpt_prev(dir, keep) : -1;
	DIR *dd = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX + 300];
	if (!dd)
		return;
	while ((de = readdir(dd)) != NULL) {
		int64_t step = ckpt_name_step(de->d_name);
		if (step < 0 || step == keep || step == prev)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dd);
}

/* ---------- the worker (libuv pool thread) ---------- */

static struct msg *batch_new(int64_t id)
{
	struct msg *m = nl_calloc(1, sizeof *m);
	if (m) {
		m->kind = MQ_BATCH;
		m->exp_id = id;
	}
	return m;
}

#define GROW(arr, n, cap, fail) do { \
	if ((n) == (cap)) { \
		int ncap_ = (cap) ? 2 * (cap) : 64; \
		void *p_ = nl_realloc((arr), sizeof *(arr) * (size_t)ncap_); \
		if (!p_) { fail; } \
		else { (arr) = p_; (cap) = ncap_; } \
	} } while (0)

static void w_scalar(void *ctx, long step, const char *name, double v)
{
	struct run *r = ctx;
	struct msg *m = r->batch;
	if (!m)
		return;
	GROW(m->pts, m->np, m->cap_p, m->oom = 1; return);
	struct batch_point *p = &m->pts[m->np++];
	p->step = step;
	snprintf(p->name, sizeof p->name, "%s", name);
	p->value = v;
}

static void w_depth(void *ctx, long step, const char *name, const double *v, int n)
{
	struct run *r = ctx;
	struct msg *m = r->batch;
	if (!m)
		return;
	GROW(m->dep, m->nd, m->cap_d, m->oom = 1; return);
	double *copy = nl_malloc(sizeof(double) * (size_t)n);
	if (!copy) {
		m->oom = 1;
		return;
	}
	memcpy(copy, v, sizeof(double) * (size_t)n);
	struct batch_depth *d = &m->dep[m->nd++];
	d->step = step;
	snprintf(d->name, sizeof d->name, "%s", name);
	d->n = n;
	d->values = copy;
}

static void w_samples(void *ctx, long step, const char *site, const float *x, const float *y,
		      const int *tok, const int *chan, int n)
{
	struct run *r = ctx;
	struct msg *m = r->batch;
	if (!m)
		return;
	GROW(m->sm, m->ns, m->cap_s, m->oom = 1; return);
	struct batch_samples *b = &m->sm[m->ns];
	memset(b, 0, sizeof *b);
	b->x = nl_malloc(sizeof(float) * (size_t)n);
	b->y = nl_malloc(sizeof(float) * (size_t)n);
	b->token = nl_malloc(sizeof(int32_t) * (size_t)n);
	b->channel = nl_malloc(sizeof(int32_t) * (size_t)n);
	if (!b->x || !b->y || !b->token || !b->channel) {
		nl_free(b->x);
		nl_free(b->y);
		nl_free(b->token);
		nl_free(b->channel);
		m->oom = 1;
		return;
	}
	memcpy(b->x, x, sizeof(float) * (size_t)n);
	memcpy(b->y, y, sizeof(float) * (size_t)n);
	for (int i = 0; i < n; i++) {
		b->token[i] = tok[i];
		b->channel[i] = chan[i];
	}
	b->step = step;
	snprintf(b->site, sizeof b->site, "%s", site);
	b->n = n;
	m->ns++;
}

/* Hands the current batch (with the trainer's progress) to the loop and starts a new one. */
static void flush(struct run *r, const struct trainer *t)
{
	struct msg *m = r->batch;
	if (!m || (m->np == 0 && m->nd == 0 && m->ns == 0 && t->step == r->sent_step &&
		   t->health.status == r->sent_health && t->health.step == r->sent_health_step))
		return;   /* nothing new since the last flush */
	r->sent_step = t->step;
	m->has_progress = 1;
	m->step = t->step;
	m->loss = t->loss;
	m->val_loss = t->val_loss;
	m->diverged_step = t->diverged_step;
	if (t->health.status != r->sent_health || t->health.step != r->sent_health_step) {
		m->has_health = 1;
		m->health = t->health.status;
		m->health_step = t->health.step;
		snprintf(m->health_reason, sizeof m->health_reason, "%s", t->health.reason);
		r->sent_health = t->health.status;
		r->sent_health_step = t->health.step;
	}
	msg_push(r->s, m);
	r->batch = batch_new(r->id);
	r->last_flush = daemon_now();
}

static int save_ckpt(struct run *r, const struct trainer *t)
{
	char path[PATH_MAX + 64];
	struct nl_err err = { 0 };
	if (t->step <= r->last_ckpt)
		return 0;
	ckpt_path(path, sizeof path, r->dir, t->step);
	if (ckpt_save(t, path, &err) != 0) {
		LOG_WARN("run %" PRId64 ": checkpoint at step %ld failed: %s", r->id, t->step, err.msg);
		snprintf(r->error, sizeof r->error, "storage: could not write the checkpoint of step "
			 "%ld: %.400s", t->step, err.msg);
		r->io_worker = 1;
		return -1;
	}
	struct msg *m = nl_calloc(1, sizeof *m);
	if (!m)
		return -1;
	m->kind = MQ_CKPT;
	m->exp_id = r->id;
	m->ckpt_step = t->step;
	msg_push(r->s, m);
	r->last_ckpt = t->step;
	return 0;
}

/*
 * Worker: loads the run's checkpoint. One that is corrupt (checksum mismatch) or unreadable falls
 * back to the newest older checkpoint in the run directory; the loop is told first (MQ_REWIND, so
 * it drops the metrics after that step before any new batch arrives). 0, or -1 with r->error set.
 */
static int resume(struct run *r, struct trainer *t)
{
	char path[PATH_MAX + 64], first[NL_ERR_MSG + 64];
	struct nl_err err = { 0 };
	int verified = 0;
	int64_t want = r->resume_step;
	ckpt_path(path, sizeof path, r->dir, want);
	for (;;) {
		if (ckpt_load(t, path, &verified, &err) == 0 && t->step == want)
			break;
		if (!err.msg[0])
			snprintf(err.msg, sizeof err.msg, "%.400s holds step %ld, not %" PRId64, path,
				 t->step, want);
		if (want == r->resume_step)
			snprintf(first, sizeof first, "%s", err.msg);
		int64_t prev = ckpt_prev(r->dir, want);
		LOG_WARN("run %" PRId64 ": checkpoint of step %" PRId64 " unusable: %s%s", r->id, want,
			 err.msg, prev > 0 ? "; falling back to the one before it" : "");
		if (prev <= 0) {
			snprintf(r->error, sizeof r->error, "cannot resume from step %" PRId64 ": %.380s%s",
				 r->resume_step, first, want == r->resume_step
				 ? " (no older checkpoint to fall back to)"
				 : " (and no older checkpoint loads)");
			return -1;
		}
		want = prev;
		memset(&err, 0, sizeof err);
		ckpt_path(path, sizeof path, r->dir, want);
	}
	if (!verified)
		LOG_WARN("run %" PRId64 ": %s has no checksums (written before normlab checked them); "
			 "resuming from it unverified", r->id, path);
	if (want != r->resume_step) {
		struct msg *m = nl_calloc(1, sizeof *m);
		if (!m) {
			snprintf(r->error, sizeof r->error, "out of memory");
			return -1;
		}
		m->kind = MQ_REWIND;
		m->exp_id = r->id;
		m->step = r->resume_step;
		m->ckpt_step = want;
		msg_push(r->s, m);
	}
	r->last_ckpt = t->step;
	r->sent_step = t->step;
	LOG_INFO("run %" PRId64 ": resumed at step %ld", r->id, t->step);
	return 0;
}

static void run_work(uv_work_t *w)
{
	struct run *r = w->data;
	struct trainer t;
	struct nl_err err = { 0 };
	struct train_sink sink = { .ctx = r, .scalar = w_scalar, .depth = w_depth,
				   .samples = w_samples };
	int every = r->s->d->cfg.checkpoint_every;
	r->result = RUN_FAILED;
	r->batch = batch_new(r->id);
	if (!r->batch) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return;
	}
	/* messages name the dataset as the spec did, never the file behind it */
	int rc = trainer_init_fd(&t, &r->spec, r->corpus_fd, r->spec.data.path, &err);
	if (r->corpus_fd >= 0)
		close(r->corpus_fd);   /* the mapping holds the file from here on */
	r->corpus_fd = -1;
	if (rc != 0) {
		snprintf(r->error, sizeof r->error, "%s", err.msg);
		msg_free(r->batch);
		r->batch = NULL;
		return;
	}
	if (r->resume_step > 0 && resume(r, &t) != 0)
		goto out;
	if (r->resume_step == 0 && r->spec.parent[0]) {
		/* a child (NORMS.md §8): the parent's final weights, written by this loop's own
		 * run_work as <runs_dir>/<id>/final.safetensors; its spec hash must be the one the
		 * child was submitted against */
		char path[PATH_MAX + 64];
		snprintf(path, sizeof path, "%s/%s/final.safetensors", r->s->d->cfg.runs_dir,
			 r->spec.parent);
		if (ckpt_load_init(&t.model, path, r->spec.parent_hash, &err) != 0) {
			snprintf(r->error, sizeof r->error, "parent %s: %.400s", r->spec.parent,
				 err.msg);
			r->result = RUN_FAILED;
			goto out;
		}
	}
	health_restore(&t.health, r->seed_health, (long)r->seed_health_step, r->seed_health_reason);
	r->sent_health = t.health.status;
	r->sent_health_step = t.health.step;
	r->last_flush = daemon_now();
	r->result = RUN_SUCCEEDED;
	while (!trainer_done(&t)) {
		if (atomic_load(&r->io_abort)) {
			r->result = RUN_FAILED;   /* the loop holds the cause */
			break;
		}
		if (atomic_load(&r->cancel)) {
			r->result = RUN_CANCELLED;
			break;
		}
		if (atomic_load(&r->stop)) {
			flush(r, &t);
			/* a failed save leaves the last recorded checkpoint to resume from */
			save_ckpt(r, &t);
			r->result = RUN_INTERRUPTED;
			break;
		}
		int src = trainer_step(&t, &sink, &err);
		if (src == NL_EDIVERGED || src == NL_EDEAD) {
			r->result = src == NL_EDEAD ? RUN_DEAD : RUN_DIVERGED;
			snprintf(r->error, sizeof r->error, "%s", err.msg);
			break;
		}
		struct msg *m = r->batch;
		int due = every > 0 && t.step % every == 0 && !trainer_done(&t);
		if (due || (m && (m->np >= 512 || m->nd > 0 || m->ns > 0 ||
				  daemon_now() - r->last_flush > 0.5)))
			flush(r, &t);
		if (due && save_ckpt(r, &t) != 0) {
			r->result = RUN_FAILED;
			break;
		}
	}
	flush(r, &t);
	r->final_step = t.step;
	r->loss = t.loss;
	r->val_loss = t.val_loss;
	r->diverged_step = t.diverged_step;
	/* a dead run's weights are whole: kept for inspection like a finished run's */
	if (r->result == RUN_SUCCEEDED || r->result == RUN_DEAD) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof path, "%s/final.safetensors", r->dir);
		if (ckpt_save(&t, path, &err) != 0) {
			/* a run without its final weights is not a success, and keeps its checkpoints */
			snprintf(r->error, sizeof r->error, "storage: could not write the final "
				 "checkpoint: %.420s", err.msg);
			r->io_worker = 1;
			r->result = RUN_FAILED;
		}
	}
out:
	msg_free(r->batch);
	r->batch = NULL;
	trainer_free(&t);
}

/* ---------- the loop side ---------- */

static struct run *find_run(struct sched *s, int64_t id)
{
	for (struct run *r = s->runs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/*
 * Loop thread: data of run id could not be stored. The run stops and will end failed with this
 * cause; nothing more of it is written (a gap in its metrics would pass for a complete run).
 */
static void run_io_fail(struct sched *s, int64_t id, const char *what, const char *why)
{
	struct run *r = find_run(s, id);
	char msg[sizeof r->io_error];
	snprintf(msg, sizeof msg, "storage: could not %s: %.300s", what, why);
	LOG_ERROR("experiment %" PRId64 ": %s", id, msg);
	io_failed(s, msg);
	if (r && !r->io_error[0]) {
		snprintf(r->io_error, sizeof r->io_error, "%s", msg);
		atomic_store(&r->io_abort, 1);
	}
}

static void write_batch(struct sched *s, struct msg *m)
{
	struct store_err err = { 0 };
	struct run *run = find_run(s, m->exp_id);
	if (run && run->io_error[0])
		return;
	struct store_point *p = nl_calloc((size_t)(m->np ? m->np : 1), sizeof *p);
	struct store_depth *d = nl_calloc((size_t)(m->nd ? m->nd : 1), sizeof *d);
	struct store_samples *sm = nl_calloc((size_t)(m->ns ? m->ns : 1), sizeof *sm);
	int64_t values = m->np;
	if (!p || !d || !sm) {
		LOG_ERROR("experiment %" PRId64 ": out of memory writing metrics", m->exp_id);
		goto out;
	}
	for (int i = 0; i < m->np; i++)
		p[i] = (struct store_point){ m->pts[i].step, m->pts[i].name, m->pts[i].value };
	for (int i = 0; i < m->nd; i++) {
		d[i] = (struct store_depth){ m->dep[i].step, m->dep[i].name, m->dep[i].values, m->dep[i].n };
		values += m->dep[i].n;
	}
	for (int i = 0; i < m->ns; i++)
		sm[i] = (struct store_samples){ m->sm[i].step, m->sm[i].site, m->sm[i].x, m->sm[i].y,
						m->sm[i].token, m->sm[i].channel, m->sm[i].n };
	if ((m->np || m->nd || m->ns) &&
	    store_metrics_append(s->w, m->exp_id, p, m->np, d, m->nd, sm, m->ns, &err) != 0) {
		run_io_fail(s, m->exp_id, "write metrics", err.msg);
		goto out;
	}
	if (m->np || m->nd || m->ns)
		io_ok(s);
	stats_add(s, 0, values);
	if (m->oom)
		LOG_WARN("experiment %" PRId64 ": some metrics were dropped (out of memory)", m->exp_id);
	if (m->has_progress) {
		struct run *r = find_run(s, m->exp_id);
		if (r && m->step > r->loop_step) {
			stats_add(s, m->step - r->loop_step, 0);
			r->loop_step = m->step;
		}
		if (store_experiment_progress(s->w, m->exp_id, m->step, m->loss, m->val_loss,
					      m->diverged_step, &err) != 0 && err.code != STORE_ENOTFOUND) {
			run_io_fail(s, m->exp_id, "record progress", err.msg);
			goto out;
		}
		char data[256], loss[32] = "null", val[32] = "null";
		if (isfinite(m->loss))
			snprintf(loss, sizeof loss, "%.9g", m->loss);
		if (isfinite(m->val_loss))
			snprintf(val, sizeof val, "%.9g", m->val_loss);
		snprintf(data, sizeof data, "{\"id\":%" PRId64 ",\"step\":%" PRId64 ",\"loss\":%s,"
			 "\"val_loss\":%s}", m->exp_id, m->step, loss, val);
		sched_event(s, s->w, "experiment.progress", m->exp_id, data);
	}
	if (m->has_health) {
		const char *hn = health_name(m->health);
		if (store_experiment_set_health(s->w, m->exp_id, hn, m->health_step, m->health_reason,
						&err) != 0 && err.code != STORE_ENOTFOUND) {
			run_io_fail(s, m->exp_id, "record the run's health", err.msg);
			goto out;
		}
		cJSON *o = cJSON_CreateObject();
		char *txt = NULL;
		if (o && cJSON_AddNumberToObject(o, "id", (double)m->exp_id) &&
		    cJSON_AddStringToObject(o, "health", hn) &&
		    cJSON_AddNumberToObject(o, "step", m->health_step) &&
		    cJSON_AddStringToObject(o, "reason", m->health_reason))
			txt = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (txt)
			sched_event(s, s->w, "experiment.health", m->exp_id, txt);
		cJSON_free(txt);
	}
out:
	nl_free(p);
	nl_free(d);
	nl_free(sm);
}

static void write_ckpt(struct sched *s, struct msg *m)
{
	struct store_err err = { 0 };
	struct run *r = find_run(s, m->exp_id);
	/* metrics before this step were lost: the step must not become a resume point */
	if (r && r->io_error[0])
		return;
	if (store_experiment_set_ckpt(s->w, m->exp_id, m->ckpt_step, &err) != 0) {
		if (err.code != STORE_ENOTFOUND)
			run_io_fail(s, m->exp_id, "record the checkpoint step", err.msg);
		return;
	}
	io_ok(s);
	if (r)
		ckpt_prune(r->dir, m->ckpt_step);
}

/* A resume fell back to an older checkpoint: drop what was stored after it (loop thread). */
static void write_rewind(struct sched *s, struct msg *m)
{
	struct store_err err = { 0 };
	struct run *r = find_run(s, m->exp_id);
	char data[160];
	if (store_metrics_truncate(s->w, m->exp_id, m->ckpt_step, &err) != 0 ||
	    store_experiment_set_ckpt(s->w, m->exp_id, m->ckpt_step, &err) != 0 ||
	    store_experiment_progress(s->w, m->exp_id, m->ckpt_step, NAN, NAN, 0, &err) != 0) {
		run_io_fail(s, m->exp_id, "rewind to the older checkpoint", err.msg);
		return;
	}
	if (r)
		r->loop_step = m->ckpt_step;
	snprintf(data, sizeof data, "{\"id\":%" PRId64 ",\"from_step\":%" PRId64 ",\"to_step\":%"
		 PRId64 "}", m->exp_id, m->step, m->ckpt_step);
	sched_event(s, s->w, "experiment.checkpoint_fallback", m->exp_id, data);
}

static void call_finish(struct call *c, int result)
{
	pthread_mutex_lock(&c->mu);
	c->result = result;
	c->done = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void pump(struct sched *s);

static void drain(struct sched *s)
{
	struct msg *m;
	while ((m = msg_take_all(s)) != NULL) {
		while (m) {
			struct msg *next = m->next;
			switch (m->kind) {
			case MQ_CALL:
				call_finish(m->call, atomic_load(&s->stopping) ? SCHED_ESTOPPING :
					    m->call->fn(s->w, m->call->ctx));
				nl_free(m);
				break;
			case MQ_BATCH:
				write_batch(s, m);
				msg_free(m);
				break;
			case MQ_CKPT:
				write_ckpt(s, m);
				msg_free(m);
				break;
			case MQ_REWIND:
				write_rewind(s, m);
				msg_free(m);
				break;
			}
			m = next;
		}
	}
}

static const char *result_status_name(enum run_result r)
{
	switch (r) {
	case RUN_SUCCEEDED: return "succeeded";
	case RUN_DIVERGED: return "diverged";
	case RUN_DEAD: return "dead";
	case RUN_CANCELLED: return "cancelled";
	case RUN_INTERRUPTED: return "interrupted";
	default: return "failed";
	}
}

static void close_handles(struct sched *s);

/* Writes a run's end state and its experiment.finished event; 0 or a store code. */
static int write_final(struct sched *s, const struct pending *p, struct store_err *err)
{
	int rc = store_experiment_set_status(s->w, p->id, p->status, p->error[0] ? p->error : NULL,
					     daemon_now(), err);
	if (rc != 0 && reserve_release(s, rc))
		rc = store_experiment_set_status(s->w, p->id, p->status, p->error[0] ? p->error : NULL,
						 daemon_now(), err);
	if (rc == 0)
		sched_event(s, s->w, "experiment.finished", p->id, p->event);
	return rc;
}

/*
 * Records a run's end state, or, when even that cannot be written (the disk is full and the
 * reserve is gone), keeps it and retries every second (retry_pending) until the disk has room.
 * Until then the row says `running`; should the daemon stop first, the next start resumes the
 * run from its last recorded checkpoint, which was kept. Loop thread.
 */
static void finish_status(struct sched *s, int64_t id, int status, const char *error,
			  const char *event)
{
	struct store_err err = { 0 };
	struct pending p = { .id = id, .status = status };
	nl_strlcpy(p.error, error, sizeof p.error);
	nl_strlcpy(p.event, event, sizeof p.event);
	if (write_final(s, &p, &err) == 0)
		return;
	LOG_ERROR("experiment %" PRId64 ": final status not stored (retrying every second): %s", id,
		  err.msg);
	io_failed(s, err.msg);
	struct pending *q = nl_malloc(sizeof *q);
	if (!q)
		return;   /* the restart path above still holds */
	*q = p;
	q->next = s->pending;
	s->pending = q;
}

static void retry_pending(struct sched *s)
{
	for (struct pending **pp = &s->pending; *pp;) {
		struct pending *p = *pp;
		struct store_err err = { 0 };
		if (write_final(s, p, &err) != 0)
			break;   /* still no room: the rest would fail the same way */
		LOG_INFO("experiment %" PRId64 ": final status stored at last", p->id);
		*pp = p->next;
		nl_free(p);
	}
}

static void run_done(uv_work_t *w, int status)
{
	struct run *r = w->data;
	struct sched *s = r->s;
	(void)status;
	drain(s);
	/* A storage failure outranks whatever the worker concluded: its data is incomplete. */
	if (r->io_error[0]) {
		r->result = RUN_FAILED;
		snprintf(r->error, sizeof r->error, "%s", r->io_error);
	} else if (r->io_worker) {
		io_failed(s, r->error);
	}
	int st;
	switch (r->result) {
	case RUN_SUCCEEDED: st = STORE_SUCCEEDED; break;
	case RUN_DIVERGED: st = STORE_DIVERGED; break;
	case RUN_CANCELLED: st = STORE_CANCELLED; break;
	case RUN_INTERRUPTED: st = STORE_INTERRUPTED; break;
	case RUN_DEAD: st = STORE_DEAD; break;
	default: st = STORE_FAILED; break;
	}
	char data[640], esc[520];
	size_t j = 0;
	for (const char *p = r->error; *p && j + 2 < sizeof esc; p++) {
		if (*p == '"' || *p == '\\')
			esc[j++] = '\\';
		esc[j++] = (unsigned char)*p < 0x20 ? ' ' : *p;
	}
	esc[j] = '\0';
	char div[32] = "null";
	if (r->diverged_step > 0)
		snprintf(div, sizeof div, "%" PRId64, r->diverged_step);
	snprintf(data, sizeof data, "{\"id\":%" PRId64 ",\"status\":\"%s\",\"step\":%" PRId64
		 ",\"diverged_step\":%s,\"error\":\"%s\"}", r->id, result_status_name(r->result),
		 r->final_step, div, esc);
	finish_status(s, r->id, st, r->error, data);
	LOG_INFO("run %" PRId64 " %s at step %" PRId64 "%s%s", r->id, result_status_name(r->result),
		 r->final_step, r->error[0] ? ": " : "", r->error);
	if (r->result == RUN_SUCCEEDED || r->result == RUN_CANCELLED || r->result == RUN_DEAD)
		ckpt_prune(r->dir, -1);   /* final.safetensors stays */

	/* unlink */
	for (struct run **pp = &s->runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_mutex_lock(&s->smu);
	s->n_running--;
	s->threads_in_use -= r->threads;
	s->finished_total++;
	pthread_mutex_unlock(&s->smu);
	nl_free(r);
	if (atomic_load(&s->stopping)) {
		if (!s->runs)
			close_handles(s);
	} else {
		pump(s);
	}
}

void sched_keep_spec(struct sched *s, int64_t id, const struct spec *sp)
{
	struct kept_spec *k = &s->kept[s->kept_next];
	if (!k->spec && !(k->spec = nl_malloc(sizeof *k->spec)))
		return;
	*k->spec = *sp;
	k->id = id;
	s->kept_next = (s->kept_next + 1) % SCHED_SPEC_KEEP;
}

/* Takes the kept spec of experiment id into *out: 1 if there was one, else 0. */
static int take_kept_spec(struct sched *s, int64_t id, struct spec *out)
{
	for (int i = 0; i < SCHED_SPEC_KEEP; i++) {
		struct kept_spec *k = &s->kept[i];
		if (k->spec && k->id == id) {
			*out = *k->spec;
			k->id = 0;
			return 1;
		}
	}
	return 0;
}

/* Starts experiment e (status queued). Returns 0, or <0 after marking it failed. */
static int start_run(struct sched *s, struct store_experiment *e)
{
	struct store_err err = { 0 };
	struct spec_errors errs = { 0 };
	struct spec_limits lim;
	struct dataset_file df;
	struct run *r = nl_calloc(1, sizeof *r);
	char msg[512];
	if (!r)
		return NL_ENOMEM;
	/*
	 * The stored spec was validated with its corpus at submit. Here it is parsed without the
	 * resolver (no hashing on the loop thread): the corpus is opened below with the same
	 * checks, and the worker hashes the bytes it mapped against the spec's data.sha256.
	 */
	memset(&lim, 0, sizeof lim);
	lim.max_bytes = (uint64_t)s->d->cfg.max_run_bytes;
	r->corpus_fd = -1;
	r->s = s;
	r->id = e->id;
	if (!take_kept_spec(s, e->id, &r->spec) &&
	    spec_parse(&r->spec, e->spec, strlen(e->spec), &lim, &errs) != 0) {
		snprintf(msg, sizeof msg, "cannot start: %s: %s", errs.n ? errs.e[0].pointer : "",
			 errs.n ? errs.e[0].msg : "the stored spec no longer validates");
		goto fail;
	}
	r->threads = r->spec.threads;
	snprintf(r->dir, sizeof r->dir, "%s/%" PRId64, s->d->cfg.runs_dir, e->id);
	if (nl_mkdir_p(r->dir) != 0) {
		snprintf(msg, sizeof msg, "cannot create %.300s: %.100s", r->dir, strerror(errno));
		goto fail;
	}
	/*
	 * The file the run reads is this descriptor, opened beneath its root after the checks: a
	 * symlink or another file swapped in now cannot reach the trainer. Its content must still
	 * be the one the spec (and so the spec hash) names: trainer_init_fd checks that.
	 */
	memset(&df, 0, sizeof df);
	if (strcmp(r->spec.data.source, "text") == 0) {   /* images come with their arch (vit) */
		r->corpus_fd = datasets_open(s->d->datasets, r->spec.data.path, 0, &df, msg,
					     sizeof msg);
		if (r->corpus_fd < 0) {
			r->corpus_fd = -1;
			goto fail;
		}
	}
	r->spec.data.bytes = df.bytes;
	if (spec_mem_estimate(&r->spec) > lim.max_bytes) {
		snprintf(msg, sizeof msg, "cannot start: with its corpus (%" PRIu64 " bytes now) the "
			 "run needs %" PRIu64 " bytes, above max_run_bytes %" PRIu64, df.bytes,
			 spec_mem_estimate(&r->spec), lim.max_bytes);
		goto fail;
	}
	r->resume_step = e->ckpt_step;
	r->seed_health = health_parse(e->health);
	r->seed_health_step = e->health_step;
	snprintf(r->seed_health_reason, sizeof r->seed_health_reason, "%s",
		 e->health_reason ? e->health_reason : "");
	if (r->resume_step > 0) {
		char path[PATH_MAX + 64];
		ckpt_path(path, sizeof path, r->dir, r->resume_step);
		if (access(path, R_OK) != 0) {
			LOG_WARN("run %" PRId64 ": checkpoint of step %" PRId64 " is gone; starting over",
				 e->id, r->resume_step);
			r->resume_step = 0;
			store_metrics_truncate(s->w, e->id, 0, &err);
			store_experiment_set_ckpt(s->w, e->id, 0, &err);
		}
	}
	if (store_experiment_set_status(s->w, e->id, STORE_RUNNING, NULL, daemon_now(), &err) != 0) {
		snprintf(msg, sizeof msg, "%s", err.msg);
		goto fail;
	}
	r->work.data = r;
	r->next = s->runs;
	s->runs = r;
	pthread_mutex_lock(&s->smu);
	s->n_running++;
	s->threads_in_use += r->threads;
	pthread_mutex_unlock(&s->smu);
	char data[128];
	snprintf(data, sizeof data, "{\"id\":%" PRId64 ",\"status\":\"running\",\"step\":%" PRId64 "}",
		 e->id, r->resume_step);
	sched_event(s, s->w, "experiment.started", e->id, data);
	LOG_INFO("run %" PRId64 " started (%s/%s, %d thread%s%s)", e->id, e->norm_type, e->placement,
		 r->threads, r->threads == 1 ? "" : "s", r->resume_step ? ", resuming" : "");
	uv_queue_work(&s->loop, &r->work, run_work, run_done);
	return 0;
fail:
	LOG_WARN("run %" PRId64 " failed to start: %s", e->id, msg);
	int rc = store_experiment_set_status(s->w, e->id, STORE_FAILED, msg, daemon_now(), &err);
	if (rc != 0 && reserve_release(s, rc))
		store_experiment_set_status(s->w, e->id, STORE_FAILED, msg, daemon_now(), &err);
	sched_event(s, s->w, "experiment.finished", e->id, "{\"status\":\"failed\"}");
	if (r->corpus_fd >= 0)
		close(r->corpus_fd);
	nl_free(r);
	return -1;
}

/* The next experiment to start: the first queue head (in fair-share order) that fits
 * free_threads and whose owner is below their running cap. 0 if none, <0 on error. */
static int64_t next_fair(struct sched *s, int free_threads)
{
	struct store_queue_head heads[SCHED_HEADS];
	struct store_err err = { 0 };
	int n = store_queue_heads(s->w, free_threads, heads, SCHED_HEADS, &err);
	if (n < 0) {
		LOG_ERROR("picking the next run: %s", err.msg);
		return n;
	}
	for (int i = 0; i < n; i++) {
		int cap = quota_owner_max_running(s->d, heads[i].owner);
		if (cap <= 0 || heads[i].running < cap)
			return heads[i].id;
	}
	return 0;
}

static void pump(struct sched *s)
{
	struct store_err err = { 0 };
	if (atomic_load(&s->stopping))
		return;
	while (s->n_running < s->d->cfg.max_runs) {
		int free_threads = s->d->cfg.thread_budget - s->threads_in_use;
		if (free_threads <= 0)
			break;
		int64_t id = next_fair(s, free_threads);
		if (id <= 0)
			break;
		struct store_experiment e;
		memset(&e, 0, sizeof e);
		if (store_experiment_get(s->w, id, &e, &err) != 0) {
			LOG_ERROR("experiment %" PRId64 ": %s", id, err.msg);
			break;
		}
		start_run(s, &e);
		store_experiment_clear(&e);
	}
	/* one indexed count, not a listing: this runs on every wake-up of the loop */
	int64_t q = store_experiment_count(s->w, STORE_QUEUED);
	pthread_mutex_lock(&s->smu);
	s->queued_cache = q < 0 ? 0 : (int)q;
	pthread_mutex_unlock(&s->smu);
}

static void begin_shutdown(struct sched *s);

static void on_async(uv_async_t *a)
{
	struct sched *s = a->data;
	if (atomic_load(&s->shutdown_requested))
		begin_shutdown(s);
	drain(s);
	pump(s);
}

static void on_tick(uv_timer_t *t)
{
	struct sched *s = t->data;
	stats_window(s);
	retry_pending(s);
	/* a reserve given back on a full disk comes back once there is room (every 10 s) */
	if (++s->ticks % 10 == 0 && !s->reserve_held && s->d->cfg.storage_reserve_bytes > 0)
		reserve_refresh(s);
	pump(s);
}

#define SCHED_PRUNE_BATCH 10000   /* events deleted per loop turn: a backlog never stalls the loop */

/* Old events out (config events_keep_days / events_keep_rows; 0 = no such limit), a batch at a
 * time: while batches come back full, the next one follows 50 ms later. A client resuming after
 * a pruned id gets the oldest kept event next (store_events_after: id > after). */
static void on_prune(uv_timer_t *t)
{
	struct sched *s = t->data;
	const struct config *c = &s->d->cfg;
	struct store_err err = { 0 };
	uint64_t every_ms = 1000 * (uint64_t)c->events_prune_every;
	double before = c->events_keep_days > 0 ? daemon_now() - 86400.0 * c->events_keep_days : 0;
	if (before <= 0 && c->events_keep_rows <= 0)
		return;
	int64_t n = store_events_prune(s->w, before, c->events_keep_rows, SCHED_PRUNE_BATCH, &err);
	if (n < 0)
		LOG_WARN("pruning old events: %s", err.msg);
	else if (n > 0)
		LOG_INFO("pruned %" PRId64 " old event%s", n, n == 1 ? "" : "s");
	if (n == SCHED_PRUNE_BATCH && !s->closing)
		uv_timer_start(t, on_prune, 50, every_ms);
}

static void on_closed(uv_handle_t *h)
{
	(void)h;
}

static void close_handles(struct sched *s)
{
	if (s->closing)
		return;
	s->closing = 1;
	drain(s);
	uv_close((uv_handle_t *)&s->async, on_closed);
	uv_close((uv_handle_t *)&s->tick, on_closed);
	uv_close((uv_handle_t *)&s->prune, on_closed);
	uv_close((uv_handle_t *)&s->sigint, on_closed);
	uv_close((uv_handle_t *)&s->sigterm, on_closed);
}

static void begin_shutdown(struct sched *s)
{
	if (atomic_exchange(&s->stopping, 1))
		return;
	LOG_INFO("shutting down: %d run%s to checkpoint", s->n_running, s->n_running == 1 ? "" : "s");
	pthread_mutex_lock(&s->emu);
	pthread_cond_broadcast(&s->ecv);
	pthread_mutex_unlock(&s->emu);
	for (struct run *r = s->runs; r; r = r->next)
		atomic_store(&r->stop, 1);
	drain(s);   /* answer waiting calls with SCHED_ESTOPPING */
	if (!s->runs)
		close_handles(s);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct sched *s = h->data;
	(void)sig;
	begin_shutdown(s);
}

void sched_shutdown(struct sched *s)
{
	atomic_store(&s->shutdown_requested, 1);
	uv_async_send(&s->async);
}

/* ---------- calls from other threads ---------- */

int sched_call(struct sched *s, int (*fn)(struct store *w, void *ctx), void *ctx)
{
	if (atomic_load(&s->stopping))
		return SCHED_ESTOPPING;
	struct call c = { .fn = fn, .ctx = ctx };
	struct msg *m = nl_calloc(1, sizeof *m);
	if (!m)
		return NL_ENOMEM;
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	m->kind = MQ_CALL;
	m->call = &c;
	msg_push(s, m);
	pthread_mutex_lock(&c.mu);
	while (!c.done)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
	return c.result;
}

struct cancel_ctx {
	struct sched *s;
	int64_t id;
};

static int cancel_fn(struct store *w, void *ctx)
{
	struct cancel_ctx *c = ctx;
	struct store_err err = { 0 };
	struct store_experiment e;
	memset(&e, 0, sizeof e);
	int rc = store_experiment_get(w, c->id, &e, &err);
	if (rc != 0)
		return rc == STORE_ENOTFOUND ? STORE_ENOTFOUND : rc;
	int st = e.status;
	store_experiment_clear(&e);
	if (st == STORE_RUNNING) {
		struct run *r = find_run(c->s, c->id);
		if (r)
			atomic_store(&r->cancel, 1);
		return 1;
	}
	if (st == STORE_QUEUED || st == STORE_INTERRUPTED) {
		if (store_experiment_set_status(w, c->id, STORE_CANCELLED, NULL, daemon_now(), &err))
			return STORE_EIO;
		char data[96];
		snprintf(data, sizeof data, "{\"id\":%" PRId64 ",\"status\":\"cancelled\"}", c->id);
		sched_event(c->s, w, "experiment.finished", c->id, data);
		return 0;
	}
	return -2;
}

int sched_cancel(struct sched *s, int64_t id)
{
	struct cancel_ctx c = { s, id };
	return sched_call(s, cancel_fn, &c);
}

/* ---------- start-up ---------- */

struct recover_ctx {
	struct sched *s;
	int64_t ids[1000];
	int n;
};

static int collect(void *ctx, const struct store_experiment *e)
{
	struct recover_ctx *rc = ctx;
	if (rc->n < 1000)
		rc->ids[rc->n++] = e->id;
	return 0;
}

/* Interrupted runs (by a crash or a shutdown): drop metrics after their checkpoint, re-queue. */
static int requeue_interrupted(struct sched *s, char *errbuf, size_t cap)
{
	struct store_err err = { 0 };
	int total = 0;
	int marked = store_recover_running(s->w, daemon_now(), &err);
	if (marked < 0) {
		snprintf(errbuf, cap, "recovering running experiments: %s", err.msg);
		return -1;
	}
	if (marked > 0)
		LOG_WARN("%d experiment%s were running when the daemon stopped unexpectedly", marked,
			 marked == 1 ? "" : "s");
	for (;;) {
		struct recover_ctx *rc = nl_calloc(1, sizeof *rc);
		struct store_filter f = { .status = STORE_INTERRUPTED, .limit = 1000 };
		if (!rc)
			return -1;
		rc->s = s;
		if (store_experiment_list(s->w, &f, collect, rc, &err) < 0) {
			snprintf(errbuf, cap, "listing interrupted experiments: %s", err.msg);
			nl_free(rc);
			return -1;
		}
		for (int i = 0; i < rc->n; i++) {
			struct store_experiment e;
			memset(&e, 0, sizeof e);
			if (store_experiment_get(s->w, rc->ids[i], &e, &err) != 0)
				continue;
			store_metrics_truncate(s->w, e.id, e.ckpt_step, &err);
			store_experiment_progress(s->w, e.id, e.ckpt_step, NAN, NAN, 0, &err);
			store_experiment_set_status(s->w, e.id, STORE_QUEUED, NULL, daemon_now(), &err);
			LOG_INFO("experiment %" PRId64 " re-queued; resumes from step %" PRId64, e.id,
				 e.ckpt_step);
			store_experiment_clear(&e);
			total++;
		}
		int n = rc->n;
		nl_free(rc);
		if (n < 1000)
			break;
	}
	return total;
}

int sched_new(struct sched **out, struct daemon *d, char *errbuf, size_t cap)
{
	struct store_err err = { 0 };
	struct sched *s = nl_calloc(1, sizeof *s);
	if (!s) {
		snprintf(errbuf, cap, "out of memory");
		return NL_ENOMEM;
	}
	s->d = d;
	pthread_mutex_init(&s->qmu, NULL);
	pthread_mutex_init(&s->emu, NULL);
	pthread_mutex_init(&s->smu, NULL);
	pthread_cond_init(&s->ecv, NULL);
	if (store_open(&s->w, d->cfg.db, 1, &err) != 0) {
		snprintf(errbuf, cap, "database %s: %s", d->cfg.db, err.msg);
		goto fail;
	}
	if (requeue_interrupted(s, errbuf, cap) < 0)
		goto fail;
	int stale = storage_remove_stale_tmp(d->cfg.runs_dir);
	if (stale > 0)
		LOG_INFO("removed %d stale .tmp file%s from %s (writes a stop cut short)", stale,
			 stale == 1 ? "" : "s", d->cfg.runs_dir);
	reserve_refresh(s);
	uv_loop_init(&s->loop);
	uv_async_init(&s->loop, &s->async, on_async);
	s->async.data = s;
	uv_timer_init(&s->loop, &s->tick);
	s->tick.data = s;
	uv_timer_init(&s->loop, &s->prune);
	s->prune.data = s;
	uv_signal_init(&s->loop, &s->sigint);
	s->sigint.data = s;
	uv_signal_init(&s->loop, &s->sigterm);
	s->sigterm.data = s;
	s->win_start = daemon_now();
	*out = s;
	return 0;
fail:
	store_close(s->w);
	nl_free(s);
	return -1;
}

int sched_run(struct sched *s)
{
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_timer_start(&s->tick, on_tick, 1000, 1000);
	uint64_t prune_ms = 1000 * (uint64_t)s->d->cfg.events_prune_every;
	uv_timer_start(&s->prune, on_prune, prune_ms, prune_ms);
	pump(s);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	return 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	drain(s);
	while (s->pending) {
		struct pending *p = s->pending;
		s->pending = p->next;
		nl_free(p);
	}
	for (int i = 0; i < SCHED_SPEC_KEEP; i++)
		nl_free(s->kept[i].spec);
	uv_loop_close(&s->loop);
	store_close(s->w);
	pthread_mutex_destroy(&s->qmu);
	pthread_mutex_destroy(&s->emu);
	pthread_mutex_destroy(&s->smu);
	pthread_cond_destroy(&s->ecv);
	nl_free(s);
}
