/*
 * rng.h — the seeded generator behind every random choice (init, batches, probe samples):
 * xoshiro256** seeded through splitmix64 from (seed, stream), so each use has its own stream and
 * the same spec + seed gives the same numbers. The whole state is plain data (saved in
 * checkpoints). One owner per struct; no globals.
 */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
	int has_spare;      /* Box-Muller's second value is kept for the next call */
	double spare;
};

enum rng_stream {
	RNG_STREAM_INIT = 1,
	RNG_STREAM_DATA = 2,
	RNG_STREAM_PROBE = 3,
	RNG_STREAM_VAL = 4,
};

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(struct rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double rng_normal(struct rng *r);

#endif
