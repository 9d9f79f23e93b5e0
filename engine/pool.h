/*
 * pool.h — the compute threads of one run. pool_run(fn, ctx) calls fn(ctx, ith, nth) once on each
 * of nth threads (ith 0 is the caller) and returns when all are done: the ggml pattern, where every
 * kernel splits its rows by (ith, nth). A pool belongs to one run; only its owner thread calls
 * pool_run. Workers set flush-to-zero/denormals-are-zero, like the caller (see pool.c).
 */
#ifndef POOL_H
#define POOL_H

/* Most compute threads one run may have (the spec's `threads` range): per-thread partial sums
 * live in arrays of this size. */
#define POOL_MAX_THREADS 64

typedef void (*pool_fn)(void *ctx, int ith, int nth);

struct pool;

/* Starts nth-1 worker threads (1 ≤ nth ≤ POOL_MAX_THREADS). Returns 0, NL_EINVAL or NL_ENOMEM.
 * *out freed with pool_free. */
int pool_new(struct pool **out, int nth);
void pool_free(struct pool *p);
int pool_size(const struct pool *p);
void pool_run(struct pool *p, pool_fn fn, void *ctx);

/* Sets FTZ/DAZ on the calling thread (x86 MXCSR); a no-op elsewhere. */
void pool_thread_ftz(void);

/* Rows [*r0, *r1) of n for thread ith of nth: contiguous, balanced, the same for the same inputs. */
static inline void pool_split(int n, int ith, int nth, int *r0, int *r1)
{
	long q = n / nth, r = n % nth;
	*r0 = (int)(ith * q + (ith < r ? ith : r));
	*r1 = (int)(*r0 + q + (ith < r ? 1 : 0));
}

#endif
