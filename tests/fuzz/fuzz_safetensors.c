/*
 * fuzz_safetensors.c — libFuzzer harness for the safetensors reader (engine/safetensors.h).
 *
 * The input is a whole file: it is written to a temporary file and opened with st_open, the way
 * `normlab inspect`, ckpt_load and the daemon's resume path open a checkpoint. For a file the
 * reader accepts, the harness reads every tensor the way its users do (typed loads per dtype:
 * UBSan sees a misaligned one) and checks what a consumer relies on:
 *   - the tensors tile the data section in order, without gaps or overlaps, and each one's bytes
 *     are the input's bytes at its data_offsets (the reader hands out the right memory);
 *   - nbytes is the shape's element count times the dtype size; st_find finds each by its name;
 *   - writing the tensors back with st_write and opening that file gives the same names, dtypes,
 *     shapes and bytes (names come from outside and may hold any escaped character).
 * A rejected file must come back with a non-empty, terminated message and NL_EINVAL (a bad file
 * is never NL_ENOMEM or NL_EIO when the disk is fine).
 * Single-threaded; the temporary directory is removed at exit.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "nl.h"
#include "safetensors.h"

static char tmpdir[64];
static char in_path[128], out_path[128];

static void cleanup(void)
{
	unlink(in_path);
	unlink(out_path);
	rmdir(tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(tmpdir, sizeof tmpdir, "%s/nl_fuzz_st_XXXXXX", base);
	FUZZ_CHECK(mkdtemp(tmpdir) != NULL, "cannot create a temporary directory in %s", base);
	snprintf(in_path, sizeof in_path, "%s/in.safetensors", tmpdir);
	snprintf(out_path, sizeof out_path, "%s/out.safetensors", tmpdir);
	atexit(cleanup);
	return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FUZZ_CHECK(fd >= 0, "cannot create %s", path);
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		FUZZ_CHECK(n > 0, "cannot write %s", path);
		done += (size_t)n;
	}
	close(fd);
}

/* Sum of the tensor's values read with the dtype's own type, as `normlab inspect` reads them. */
static double typed_sum(const struct st_tensor *t, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t->dtype, "F32") == 0)
			s += ((const float *)t->data)[i];
		else if (strcmp(t->dtype, "F64") == 0)
			s += ((const double *)t->data)[i];
		else if (strcmp(t->dtype, "I32") == 0)
			s += ((const int32_t *)t->data)[i];
		else if (strcmp(t->dtype, "I64") == 0)
			s += (double)((const int64_t *)t->data)[i];
		else
			s += ((const uint8_t *)t->data)[i];
	}
	return s;
}

static void check_tensor(const struct st_file *f, const struct st_tensor *t, int i)
{
	FUZZ_CHECK(FUZZ_TERMINATED(t->name) && FUZZ_TERMINATED(t->dtype), "tensor %d: unterminated", i);
	size_t es = st_dtype_size(t->dtype);
	FUZZ_CHECK(es > 0, "tensor %d has dtype \"%s\", which the reader does not know", i, t->dtype);
	FUZZ_CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "tensor %d has %d dims", i, t->ndim);
	uint64_t count = 1;
	for (int d = 0; d < t->ndim; d++) {
		FUZZ_CHECK(t->shape[d] >= 0, "tensor %d: dim %d is %lld", i, d, (long long)t->shape[d]);
		FUZZ_CHECK(t->shape[d] == 0 || count <= UINT64_MAX / (uint64_t)t->shape[d],
			   "tensor %d: the shape overflows", i);
		count *= (uint64_t)t->shape[d];
	}
	FUZZ_CHECK(count <= SIZE_MAX / es && count * es == t->nbytes,
		   "tensor %d (%s): %zu bytes for %llu elements of %zu bytes", i, t->name, t->nbytes,
		   (unsigned long long)count, es);
	FUZZ_CHECK(t->nbytes == 0 || ((uintptr_t)t->data % es) == 0,
		   "tensor %d (%s) is misaligned for %s", i, t->name, t->dtype);
	volatile double sink = typed_sum(t, (size_t)count);
	(void)sink;
	FUZZ_CHECK(st_find(f, t->name) == t, "st_find(\"%s\") does not find tensor %d", t->name, i);
}

/* The file written back from f must hold the same tensors. */
static void check_round_trip(const struct st_file *f)
{
	int n = st_count(f);
	struct st_tensor *ts = nl_calloc(n ? (size_t)n : 1, sizeof *ts);
	struct nl_err err = { 0 };
	struct st_file *g = NULL;
	FUZZ_CHECK(ts != NULL, "out of memory");
	for (int i = 0; i < n; i++)
		ts[i] = *st_get(f, i);
	int rc = st_write(out_path, ts, n, NULL, 0, &err);
	FUZZ_CHECK(rc == 0, "st_write of what st_open accepted failed: %s", err.msg);
	rc = st_open(&g, out_path, &err);
	FUZZ_CHECK(rc == 0, "st_open of what st_write wrote failed: %s", err.msg);
	FUZZ_CHECK(st_count(g) == n, "%d tensors written, %d read back", n, st_count(g));
	for (int i = 0; i < n; i++) {
		const struct st_tensor *a = &ts[i], *b = st_find(g, a->name);
		FUZZ_CHECK(b != NULL, "tensor \"%s\" is missing after the round trip", a->name);
		FUZZ_CHECK(strcmp(a->dtype, b->dtype) == 0 && a->ndim == b->ndim &&
			   memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) == 0 &&
			   a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0,
			   "tensor \"%s\" changed in the round trip", a->name);
	}
	st_close(g);
	nl_free(ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "format", "step", "spec_hash", "loss", "rng.data", "spec" };
	struct st_file *f = NULL;
	struct nl_err err = { 0 };

	write_file(in_path, data, size);
	int rc = st_open(&f, in_path, &err);
	if (rc != 0) {
		FUZZ_CHECK(f == NULL, "a failed st_open handed out a file");
		FUZZ_CHECK(rc == NL_EINVAL, "st_open returned %d (%s) for a bad file", rc, err.msg);
		FUZZ_CHECK(err.code == rc && FUZZ_TERMINATED(err.msg) && err.msg[0],
			   "st_open failed (%d) without a message", rc);
		return 0;
	}
	/* An accepted file has the 8-byte header length and that many header bytes. */
	FUZZ_CHECK(size >= 8, "a %zu-byte file was accepted", size);
	uint64_t hlen = 0;
	for (int b = 7; b >= 0; b--)
		hlen = hlen << 8 | data[b];
	FUZZ_CHECK(hlen <= size - 8, "header length %llu past the end of a %zu-byte file",
		   (unsigned long long)hlen, size);
	const uint8_t *body = data + 8 + hlen;
	size_t body_len = size - 8 - (size_t)hlen, at = 0;

	int n = st_count(f);
	FUZZ_CHECK(n >= 0, "st_count %d", n);
	for (int i = 0; i < n; i++) {
		const struct st_tensor *t = st_get(f, i);
		FUZZ_CHECK(t != NULL, "st_get(%d) of %d is NULL", i, n);
		check_tensor(f, t, i);
		FUZZ_CHECK(at + t->nbytes <= body_len && memcmp(t->data, body + at, t->nbytes) == 0,
			   "tensor %d (%s) does not hold the file's bytes [%zu, %zu)", i, t->name, at,
			   at + t->nbytes);
		at += t->nbytes;
	}
	FUZZ_CHECK(at == body_len, "the tensors cover %zu of %zu data bytes", at, body_len);
	FUZZ_CHECK(st_get(f, n) == NULL && st_get(f, -1) == NULL, "st_get out of range");
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		const char *v = st_meta_get(f, keys[k]);
		if (v)
			FUZZ_CHECK(strlen(v) <= size, "metadata %s longer than the file", keys[k]);
	}
	check_round_trip(f);
	st_close(f);
	return 0;
}
