/*
 * data_fmnist.c — the Fashion-MNIST idx files, gunzipped with zlib (gzread) into memory. An idx
 * file is a big-endian magic (0x00000803 images, 0x00000801 labels), the dimensions, then bytes.
 */
#include "data_fmnist.h"
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one idx file: `want_dims` dimensions after the magic; *out gets n·(28·28 or 1) bytes. */
static int read_idx(const char *path, int images, int n_expect, uint8_t **out, struct nl_err *err)
{
	uint8_t head[16];
	int hlen = images ? 16 : 8, rc = 0;
	size_t per = images ? FMNIST_PIXELS : 1;
	gzFile f = gzopen(path, "rb");
	*out = NULL;
	if (!f)
		return nl_err_set(err, NL_EIO, "cannot open %s (install Debian's "
				  "dataset-fashion-mnist)", path);
	if (gzread(f, head, (unsigned)hlen) != hlen) {
		rc = nl_err_set(err, NL_EINVAL, "%s: truncated idx header", path);
		goto out;
	}
	uint32_t magic = be32(head), n = be32(head + 4);
	if (magic != (images ? 0x803u : 0x801u) || n != (uint32_t)n_expect ||
	    (images && (be32(head + 8) != FMNIST_SIDE || be32(head + 12) != FMNIST_SIDE))) {
		rc = nl_err_set(err, NL_EINVAL, "%s: not the Fashion-MNIST idx file expected "
				"(magic %#x, %u items; want %d)", path, magic, n, n_expect);
		goto out;
	}
	size_t bytes = (size_t)n * per;
	*out = nl_malloc(bytes);
	if (!*out) {
		rc = nl_err_set(err, NL_ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	size_t got = 0;
	while (got < bytes) {
		unsigned chunk = bytes - got > (1u << 30) ? 1u << 30 : (unsigned)(bytes - got);
		int r = gzread(f, *out + got, chunk);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != bytes) {
		rc = nl_err_set(err, NL_EINVAL, "%s: %zu of %zu data bytes", path, got, bytes);
		goto out;
	}
	if (!images)
		for (size_t i = 0; i < bytes; i++)
			if ((*out)[i] > 9) {
				rc = nl_err_set(err, NL_EINVAL, "%s: label %d at %zu is not 0..9", path,
						(*out)[i], i);
				goto out;
			}
out:
	gzclose(f);
	if (rc) {
		nl_free(*out);
		*out = NULL;
	}
	return rc;
}

int fmnist_load(struct fmnist *d, const char *dir, struct nl_err *err)
{
	static const char *const names[4] = {
		"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
		"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
	};
	char path[1024];
	int rc = 0;
	memset(d, 0, sizeof *d);
	if (!dir)
		dir = getenv("NORMLAB_FMNIST_DIR");
	if (!dir || !*dir)
		dir = FMNIST_DIR;
	uint8_t **dst[4] = { &d->train_x, &d->train_y, &d->test_x, &d->test_y };
	for (int i = 0; i < 4 && !rc; i++) {
		if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
			rc = nl_err_set(err, NL_ELIMIT, "data directory path too long");
		else
			rc = read_idx(path, i % 2 == 0, i < 2 ? FMNIST_TRAIN : FMNIST_TEST, dst[i], err);
	}
	if (rc) {
		fmnist_free(d);
		return rc;
	}
	d->n_train = FMNIST_TRAIN;
	d->n_test = FMNIST_TEST;
	return 0;
}

double fmnist_label_entropy(const struct fmnist *d)
{
	uint64_t counts[256] = { 0 };
	for (int i = 0; i < d->n_train; i++)
		counts[d->train_y[i]]++;
	return health_entropy(counts, 256);
}

void fmnist_free(struct fmnist *d)
{
	nl_free(d->train_x);
	nl_free(d->train_y);
	nl_free(d->test_x);
	nl_free(d->test_y);
	memset(d, 0, sizeof *d);
}

static void put_image(real *dst, const uint8_t *src)
{
	const real scale = (real)(1.0 / (255.0 * FMNIST_STD)), shift = (real)(FMNIST_MEAN / FMNIST_STD);
	for (int i = 0; i < FMNIST_PIXELS; i++)
		dst[i] = (real)src[i] * scale - shift;
}

void fmnist_batch_train(const struct fmnist *d, struct rng *r, real *images, int *labels, int B)
{
	for (int b = 0; b < B; b++) {
		size_t i = (size_t)rng_below(r, (uint64_t)d->n_train);
		put_image(images + (size_t)b * FMNIST_PIXELS, d->train_x + i * FMNIST_PIXELS);
		labels[b] = d->train_y[i];
	}
}

void fmnist_batch_test(const struct fmnist *d, int first, real *images, int *labels, int B)
{
	for (int b = 0; b < B; b++) {
		size_t i = (size_t)((first + b) % d->n_test);
		put_image(images + (size_t)b * FMNIST_PIXELS, d->test_x + i * FMNIST_PIXELS);
		labels[b] = d->test_y[i];
	}
}
