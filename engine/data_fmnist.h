/*
 * data_fmnist.h — Fashion-MNIST (Debian's dataset-fashion-mnist): the four idx .gz files read
 * with zlib into memory once, 60 000 training and 10 000 test images of 28×28 bytes with labels
 * 0..9. Pixels go out /255 and normalized with the data set's mean 0.2860 and std 0.3530.
 * Training batches are drawn from the run's data RNG; test batch k of n is a fixed slice, and the
 * whole test set is n = 10 000 / B batches plus the remainder. Read-only after fmnist_load.
 */
#ifndef DATA_FMNIST_H
#define DATA_FMNIST_H

#include <stddef.h>
#include <stdint.h>

#include "nl.h"
#include "rng.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_SIDE 28
#define FMNIST_PIXELS (FMNIST_SIDE * FMNIST_SIDE)
#define FMNIST_TRAIN 60000
#define FMNIST_TEST 10000
#define FMNIST_MEAN 0.2860
#define FMNIST_STD 0.3530

struct fmnist {
	uint8_t *train_x, *test_x;   /* [n, 784] owned */
	uint8_t *train_y, *test_y;   /* [n] owned */
	int n_train, n_test;
};

/* Loads dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (dir NULL: $NORMLAB_FMNIST_DIR, else
 * FMNIST_DIR). Returns 0 or a negative nl_code with err naming the file and what is wrong. */
int fmnist_load(struct fmnist *d, const char *dir, struct nl_err *err);
void fmnist_free(struct fmnist *d);

/* Entropy of the training labels in nats (ln 10 for balanced classes): a classifier stuck at
 * this loss learned only the class frequencies. */
double fmnist_label_entropy(const struct fmnist *d);

/* B random training images (with replacement, from r): pixels [B,784] normalized, labels [B]. */
void fmnist_batch_train(const struct fmnist *d, struct rng *r, real *images, int *labels, int B);
/* Test images [first, first + B) (wrapping past the end): the caller walks first = k·B. */
void fmnist_batch_test(const struct fmnist *d, int first, real *images, int *labels, int B);

#endif
