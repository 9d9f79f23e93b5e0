/*
 * pool.c — a fixed set of worker threads per run, woken per kernel by a generation counter.
 * Owned by the run's trainer thread; the mutex guards gen/pending/fn/ctx/quit.
 * Denormals: the compute threads flush to zero (FTZ+DAZ). Tiny activations in a dying residual
 * branch otherwise slow some variants by orders of magnitude, and FTZ changes no result that
 * matters at fp32 training precision. It is set explicitly on every compute thread, never left to
 * whatever the thread inherited, so results stay reproducible.
 */
#include "pool.h"

#include <pthread.h>

#include "nl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <pmmintrin.h>
#endif

struct pool {
	int nth;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t done;
	unsigned long gen;
	int pending;
	int quit;
	pool_fn fn;
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

static void *pool_worker(void *arg)
{
	struct pool_worker_arg a = *(struct pool_worker_arg *)arg;
	struct pool *p = a.p;
	unsigned long seen = 0;
	nl_free(arg);
	pool_thread_ftz();
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->gen == seen && !p->quit)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		seen = p->gen;
		pool_fn fn = p->fn;
		void *ctx = p->ctx;
		pthread_mutex_unlock(&p->mu);

		fn(ctx, a.ith, p->nth);

		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
		pthread_mutex_unlock(&p->mu);
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
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
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
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->pending = p->nth - 1;
	p->gen++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	fn(ctx, 0, p->nth);

	pthread_mutex_lock(&p->mu);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}
