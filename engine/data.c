/*
 * data.c — map a text file read-only, split it, and cut batches. Errors name what the caller
 * calls the corpus (a path for the CLI, a dataset name for the daemon) and the reason.
 */
#include "data.h"
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int data_resolve_path(const char *spec_path, const char *data_dir, char *out, size_t cap)
{
	int n;
	/* A relative name that is not here but is in the data directory is the data directory's:
	 * a spec copied from the daemon (which names datasets in its data roots) runs as it is. */
	char in_dir[4096];
	int n2 = data_dir && *data_dir && spec_path[0] != '/' ?
		 snprintf(in_dir, sizeof in_dir, "%s/%s", data_dir, spec_path) : -1;
	if (strcmp(spec_path, "kjv") == 0)
		n = snprintf(out, cap, "%s/kjv.txt", data_dir && *data_dir ? data_dir : ".");
	else if (n2 > 0 && (size_t)n2 < sizeof in_dir && access(spec_path, F_OK) != 0 &&
		 access(in_dir, F_OK) == 0)
		n = snprintf(out, cap, "%s", in_dir);
	else
		n = snprintf(out, cap, "%s", spec_path);
	return n < 0 || (size_t)n >= cap ? NL_ELIMIT : 0;
}

int data_check_size(uint64_t n, double val_fraction, int seq_len, const char *label,
		    struct nl_err *err)
{
	if (n > DATA_MAX_BYTES)
		return nl_err_set(err, NL_ELIMIT, "data.path: %s is %llu bytes, above the %llu limit",
				  label, (unsigned long long)n, DATA_MAX_BYTES);
	size_t n_val = (size_t)((double)n * val_fraction);
	size_t n_train = (size_t)n - n_val;
	if (n_train < (size_t)seq_len + 2 || n_val < (size_t)seq_len + 2)
		return nl_err_set(err, NL_EINVAL,
				  "data.path: %s has %llu bytes; with val_fraction %g and seq_len %d "
				  "each split needs more than %d bytes", label, (unsigned long long)n,
				  val_fraction, seq_len, seq_len + 1);
	return 0;
}

int data_map_fd(struct data *d, int fd, const char *label, double val_fraction, int seq_len,
		struct nl_err *err)
{
	struct stat st;
	int rc;
	memset(d, 0, sizeof *d);
	if (fstat(fd, &st) != 0)
		return nl_err_set(err, NL_EIO, "data.path: cannot read %s: %s", label, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return nl_err_set(err, NL_EINVAL, "data.path: %s is not a regular file", label);
	rc = data_check_size((uint64_t)st.st_size, val_fraction, seq_len, label, err);
	if (rc)
		return rc;
	size_t n = (size_t)st.st_size;
	/*
	 * MAP_PRIVATE + PROT_READ: the run sees the bytes as they are now and can never write them.
	 * Someone truncating the file under a running job would make reads fault (SIGBUS); data
	 * roots are admin-owned, and the daemon checks the content hash when the run starts.
	 */
	void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return nl_err_set(err, errno == ENOMEM ? NL_ENOMEM : NL_EIO,
				  "data.path: cannot map %s (%zu bytes): %s", label, n, strerror(errno));
	/* windows are drawn at random offsets: read-ahead would mostly fetch pages never used */
	posix_madvise(p, n, POSIX_MADV_RANDOM);
	d->bytes = p;
	d->n = n;
	d->n_train = n - (size_t)((double)n * val_fraction);
	return 0;
}

int data_load(struct data *d, const char *path, double val_fraction, int seq_len,
	      struct nl_err *err)
{
	memset(d, 0, sizeof *d);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return nl_err_set(err, NL_EIO, "data.path: cannot open %s: %s%s", path, strerror(errno),
				  errno == ENOENT && strstr(path, "kjv.txt") ?
				  " (run 'make data' to prepare the default corpus)" : "");
	int rc = data_map_fd(d, fd, path, val_fraction, seq_len, err);
	close(fd);
	return rc;
}

double data_unigram_entropy(const struct data *d)
{
	uint64_t counts[256] = { 0 };
	for (size_t i = 0; i < d->n_train; i++)
		counts[d->bytes[i]]++;
	return health_entropy(counts, 256);
}

void data_free(struct data *d)
{
	if (d->bytes && d->n)
		munmap((void *)d->bytes, d->n);
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
