/*
 * data.h — byte-level text data (vocabulary 256): a file memory-mapped read-only, split
 * deterministically into train (the first 1−val_fraction of the bytes) and validation (the rest).
 * Training batches are random windows drawn from the run's data RNG; validation batch k is a fixed
 * set of evenly spaced windows, so validation loss is comparable across steps and runs.
 * The corpus is mapped, not copied: its pages live in the page cache and the run's memory
 * estimate counts them (spec.data.bytes), so a large corpus never lands whole in a daemon's heap.
 * A struct data is read-only after data_load/data_map_fd; any thread may read it.
 */
#ifndef DATA_H
#define DATA_H

#include <stddef.h>
#include <stdint.h>

#include "nl.h"
#include "rng.h"

#define DATA_MAX_BYTES (1ULL << 32)   /* a corpus over 4 GiB is rejected */

struct data {
	const uint8_t *bytes; /* the mapping (munmap'd by data_free) */
	size_t n;
	size_t n_train;      /* bytes [0, n_train) train, [n_train, n) validation */
};

/*
 * Resolves a spec's data.path for the CLI (which runs as its user and may read what its user
 * can): "kjv" means data_dir/kjv.txt (the default corpus); a relative name that does not exist
 * from here but does in data_dir is data_dir's (so a spec copied from the daemon runs as it is);
 * anything else is used as given.
 * The daemon never uses this: it resolves names inside its data roots (server/dataset.h).
 * Returns 0, or NL_ELIMIT if out is too small.
 */
int data_resolve_path(const char *spec_path, const char *data_dir, char *out, size_t cap);

/*
 * Checks that a corpus of n bytes splits into two parts of more than seq_len+1 bytes each.
 * Returns 0, or NL_EINVAL / NL_ELIMIT with err naming `label` (what the user called the corpus).
 */
int data_check_size(uint64_t n, double val_fraction, int seq_len, const char *label,
		    struct nl_err *err);

/* Opens path and maps it (data_map_fd); messages name the path. Free with data_free. */
int data_load(struct data *d, const char *path, double val_fraction, int seq_len,
	      struct nl_err *err);

/*
 * Maps the regular file open on fd (borrowed: the caller closes it; the mapping outlives it).
 * Messages name `label`, never a path, so a daemon can report them to users as they are.
 */
int data_map_fd(struct data *d, int fd, const char *label, double val_fraction, int seq_len,
		struct nl_err *err);
void data_free(struct data *d);

/* Unigram (byte-frequency) entropy of the training split in nats: the loss of a model that
 * learned only which bytes are common, so a loss stuck there learned nothing else. */
double data_unigram_entropy(const struct data *d);

/* B random training windows of T+1 bytes: tokens[b,t] and targets[b,t] = next byte. */
void data_batch_train(const struct data *d, struct rng *r, int *tokens, int *targets, int B, int T);
/* Validation batch k (0-based) of n_batches: evenly spaced windows over the validation split. */
void data_batch_val(const struct data *d, int k, int n_batches, int *tokens, int *targets, int B,
		    int T);

#endif
