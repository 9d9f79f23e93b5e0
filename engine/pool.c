/*
 * pool.c — a fixed set of worker threads per run, woken per kernel by a generation counter.
 * Owned by the run's trainer thread.
 *
 * Hand-off: a step runs ~200 kernels back to back, and waking a sleeping thread through a
 * condition variable cost 10–60 µs on this VM (the idle vCPU has to be woken by the
 * hypervisor): several percent of a 2-thread step. So both sides spin first, for up to
 * POOL_SPIN_NS, on C11 atomics (the next kernel usually arrives within microseconds), and only
 * then block on the mutex/condvar pair. The sleeping side announces itself (sleepers, waiting)
 * before re-checking the condition under the mutex, and the waking side reads that announcement
 * after publishing its change (all seq_cst): either the sleeper sees the change, or the waker
 * sees the sleeper and signals under the mutex — no lost wake-ups. Spinning is bounded, so an
 * oversubscribed machine (more compute threads than cores) loses at most POOL_SPIN_NS per
 * kernel to it.
 *
 * Denormals: the compute threads flush to zero (FTZ+DAZ). Tiny activations in a dying residual
 * branch otherwise slow some variants by orders of magnitude, and FTZ changes no result that
 * matters at fp32 training precision. It is set explicitly on every compute thread, never left to
 * whatever the thread inherited, so results stay reproducible.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>

#include "nl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <pmmintrin.h>
#endif

#define POOL_SPIN_NS 100e3

struct pool {
	int nth;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t done;
	atomic_ulong gen;        /* bumped once per pool_run (and once by pool_free) */
	atomic_int pending;      /* workers still running the current kernel */
	atomic_int sleepers;     /* workers blocked, or about to block, on wake */
	atomic_int waiting;      /* the owner blocked, or about to block, on done */
	atomic_int quit;
	pool_fn fn;              /* written before gen's bump, read after seeing it */
	void *ctx;
};

struct pool_worker_arg {
	struct pool *p;
	int ith;
};

void pool_thread_ftz(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
	_MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#endif
}

/* Spins until the condition holds (1) or POOL_SPIN_NS pass (0): for a worker, gen has moved
 * past seen; for the owner (for_done), every worker has finished. */
static int spin_until(struct pool *p, int for_done, unsigned long seen)
{
	double t0 = 0;
	for (unsigned i = 0;; i++) {
		if (for_done ? atomic_load(&p->pending) == 0 : atomic_load(&p->gen) != seen)
			return 1;
		if ((i & 127) == 127) {
			double now = nl_now();
			if (t0 == 0)
				t0 = now;
			else if ((now - t0) * 1e9 > POOL_SPIN_NS)
				return 0;
		}
		cpu_relax();
	}
}

static void *pool_worker(void *arg)
{
	struct pool_worker_arg a = *(struct pool_worker_arg *)arg;
	struct pool *p = a.p;
	unsigned long seen = 0;
	nl_free(arg);
	pool_thread_ftz();
	for (;;) {
		if (!spin_until(p, 0, seen)) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while (atomic_load(&p->gen) == seen)
				pthread_cond_wait(&p->wake, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->quit))
			return NULL;
		seen = atomic_load(&p->gen);
		p->fn(p->ctx, a.ith, p->nth);
		if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->waiting)) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

int pool_new(struct pool **out, int nth)
{
	if (nth < 1 || nth > POOL_MAX_THREADS)
		return NL_EINVAL;
	struct pool *p = nl_calloc(1, sizeof *p);
	if (!p)
		return NL_ENOMEM;
	p->nth = nth;
	atomic_init(&p->gen, 0);
	atomic_init(&p->pending, 0);
	atomic_init(&p->sleepers, 0);
	atomic_init(&p->waiting, 0);
	atomic_init(&p->quit, 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nth > 1) {
		p->threads = nl_calloc((size_t)nth - 1, sizeof *p->threads);
		if (!p->threads)
			goto fail;
		p->nth = 1;
		for (int i = 1; i < nth; i++) {
			struct pool_worker_arg *a = nl_malloc(sizeof *a);
			if (!a)
				goto fail_started;
			a->p = p;
			a->ith = i;
			if (pthread_create(&p->threads[i - 1], NULL, pool_worker, a) != 0) {
				nl_free(a);
				goto fail_started;
			}
			p->nth = i + 1;   /* threads actually running, so a failure joins only those */
		}
		p->nth = nth;
	}
	pool_thread_ftz();
	*out = p;
	return 0;

fail_started:
	pool_free(p);
	return NL_ENOMEM;
fail:
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	nl_free(p);
	return NL_ENOMEM;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	atomic_store(&p->quit, 1);
	atomic_fetch_add(&p->gen, 1);
	pthread_mutex_lock(&p->mu);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->nth; i++)
		pthread_join(p->threads[i - 1], NULL);
	nl_free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	nl_free(p);
}

int pool_size(const struct pool *p)
{
	return p->nth;
}

void pool_run(struct pool *p, pool_fn fn, void *ctx)
{
	if (p->nth == 1) {
		fn(ctx, 0, 1);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->pending, p->nth - 1);
	atomic_fetch_add(&p->gen, 1);
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}

	fn(ctx, 0, p->nth);

	if (!spin_until(p, 1, 0)) {
		pthread_mutex_lock(&p->mu);
		atomic_store(&p->waiting, 1);
		while (atomic_load(&p->pending) > 0)
			pthread_cond_wait(&p->done, &p->mu);
		atomic_store(&p->waiting, 0);
		pthread_mutex_unlock(&p->mu);
	}
}
