/*
 * data.c — load a text file as bytes, split it, and cut batches. Reads with stdio; errors name
 * the path and the reason.
 */
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int data_resolve_path(const char *spec_path, const char *data_dir, char *out, size_t cap)
{
	int n;
	if (strcmp(spec_path, "kjv") == 0)
		n = snprintf(out, cap, "%s/kjv.txt", data_dir && *data_dir ? data_dir : ".");
	else
		n = snprintf(out, cap, "%s", spec_path);
	return n < 0 || (size_t)n >= cap ? NL_ELIMIT : 0;
}

int data_load(struct data *d, const char *path, double val_fraction, int seq_len,
	      struct nl_err *err)
{
	struct stat st;
	FILE *f = NULL;
	memset(d, 0, sizeof *d);
	if (stat(path, &st) != 0)
		return nl_err_set(err, NL_EIO, "data.path: cannot open %s: %s%s", path, strerror(errno),
				  errno == ENOENT && strstr(path, "kjv.txt") ?
				  " (run 'make data' to prepare the default corpus)" : "");
	if (!S_ISREG(st.st_mode))
		return nl_err_set(err, NL_EINVAL, "data.path: %s is not a regular file", path);
	if ((unsigned long long)st.st_size > DATA_MAX_BYTES)
		return nl_err_set(err, NL_ELIMIT, "data.path: %s is %lld bytes, above the %llu limit",
				  path, (long long)st.st_size, DATA_MAX_BYTES);
	size_t n = (size_t)st.st_size;
	size_t n_val = (size_t)((double)n * val_fraction);
	size_t n_train = n - n_val;
	if (n_train < (size_t)seq_len + 2 || n_val < (size_t)seq_len + 2)
		return nl_err_set(err, NL_EINVAL,
				  "data.path: %s has %zu bytes; with val_fraction %g and seq_len %d "
				  "each split needs more than %d bytes", path, n, val_fraction,
				  seq_len, seq_len + 1);
	d->bytes = nl_malloc(n);
	if (!d->bytes)
		return nl_err_set(err, NL_ENOMEM, "out of memory reading %s (%zu bytes)", path, n);
	f = fopen(path, "rb");
	if (!f || fread(d->bytes, 1, n, f) != n) {
		int e = errno;
		if (f)
			fclose(f);
		data_free(d);
		return nl_err_set(err, NL_EIO, "data.path: cannot read %s: %s", path, strerror(e));
	}
	fclose(f);
	d->n = n;
	d->n_train = n_train;
	return 0;
}

void data_free(struct data *d)
{
	nl_free(d->bytes);
	memset(d, 0, sizeof *d);
}

static void window(const uint8_t *src, int *tokens, int *targets, int T)
{
	for (int t = 0; t < T; t++) {
		tokens[t] = src[t];
		targets[t] = src[t + 1];
	}
}

void data_batch_train(const struct data *d, struct rng *r, int *tokens, int *targets, int B, int T)
{
	uint64_t span = d->n_train - (size_t)T - 1;
	for (int b = 0; b < B; b++) {
		size_t off = (size_t)rng_below(r, span + 1);
		window(d->bytes + off, tokens + (size_t)b * T, targets + (size_t)b * T, T);
	}
}

void data_batch_val(const struct data *d, int k, int n_batches, int *tokens, int *targets, int B,
		    int T)
{
	size_t n_val = d->n - d->n_train;
	size_t span = n_val - (size_t)T - 1;
	size_t total = (size_t)n_batches * B;
	for (int b = 0; b < B; b++) {
		size_t i = (size_t)k * B + b;
		size_t off = d->n_train + (total > 1 ? span * i / (total - 1) : 0);
		window(d->bytes + off, tokens + (size_t)b * T, targets + (size_t)b * T, T);
	}
}
