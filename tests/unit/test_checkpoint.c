/*
 * test_checkpoint — checkpoint checksums as a researcher meets them: a checkpoint loads with its
 * CRC-32C checksums verified; one flipped byte in a tensor's data, or in the metadata that sets
 * the step and the data RNG, is refused with the file and the tensor named, and the trainer is
 * left as it was; a checkpoint written before checksums existed still loads and says it was not
 * verified. The hardware and table CRC-32C agree on the standard check value and on unaligned
 * odd-length buffers; the cost against SHA-256 is printed as a figure.
 * Data: a small synthetic corpus the test writes itself.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/corpus.h"
#include "../test.h"
#include "blas.h"
#include "checkpoint.h"
#include "crc32c.h"
#include "rng.h"
#include "safetensors.h"
#include "sha256.h"
#include "spec.h"
#include "train.h"

static char tmpdir[64], corpus[256];

static void write_corpus(void)
{
	test_corpus_write(corpus, 20000);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_crc32c(void)
{
	CHECK(crc32c(0, "123456789", 9) == 0xE3069283u);   /* RFC 3720's check value */
	CHECK(crc32c_sw(0, "123456789", 9) == 0xE3069283u);
	CHECK(crc32c(0, NULL, 0) == 0);
	size_t n = (size_t)64 << 20;
	unsigned char *b = malloc(n + 8);
	if (!b)
		return;
	for (size_t i = 0; i < n + 8; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	int same = 1;
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len < 80; len += 7)
			same &= crc32c(0, b + off, len) == crc32c_sw(0, b + off, len);
	CHECKF(same, "hardware and table CRC-32C differ on short unaligned buffers");
	CHECK(crc32c(crc32c(0, b + 3, 1001), b + 1004, 50000) == crc32c_sw(0, b + 3, 51001));
	double t0 = now_s();
	uint32_t c = crc32c(0, b, n);
	double t1 = now_s();
	uint8_t d[SHA256_LEN];
	sha256(b, n, d);
	double t2 = now_s();
	CHECK(c == crc32c_sw(0, b, n));
	printf("figure: checksum throughput over 64 MiB: CRC-32C %.2f GB/s, SHA-256 %.2f GB/s\n",
	       (double)n / (t1 - t0) / 1e9, (double)n / (t2 - t1) / 1e9);
	free(b);
}

static void base_spec(struct spec *s)
{
	spec_defaults(s);
	s->model.n_layer = 2;
	s->model.d_model = 32;
	s->model.n_head = 2;
	s->model.d_ff = 64;
	s->model.seq_len = 32;
	s->train.batch_size = 4;
	s->train.steps = 20;
	s->train.warmup = 2;
	s->train.lr = 3e-3;
	s->probe.every = 5;
	s->probe.val_every = 10;
	s->seed = 5;
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int copy_file(const char *from, const char *to)
{
	char cmd[1300];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	return system(cmd);
}

static int flip_byte(const char *path, long off)
{
	FILE *f = fopen(path, "r+b");
	int c;
	if (!f || fseek(f, off, SEEK_SET) != 0 || (c = fgetc(f)) == EOF ||
	    fseek(f, off, SEEK_SET) != 0 || fputc(c ^ 0x10, f) == EOF) {
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

/* Offset in the file of the middle byte of tensor i (file order), and its name. */
static long tensor_byte(const char *path, int i, char *name, size_t cap)
{
	struct st_file *f = NULL;
	struct nl_err err = { 0 };
	long off = -1;
	if (st_open(&f, path, &err) != 0)
		return -1;
	size_t total = 0;
	for (int k = 0; k < st_count(f); k++)
		total += st_get(f, k)->nbytes;
	const struct st_tensor *first = st_get(f, 0), *x = st_get(f, i);
	if (x && x->nbytes > 0) {
		off = file_size(path) - (long)total +
		      (long)((const char *)x->data - (const char *)first->data) + (long)x->nbytes / 2;
		snprintf(name, cap, "%s", x->name);
	}
	st_close(f);
	return off;
}

/* The same checkpoint as an older normlab wrote it: every tensor and key but the checksums. */
static int strip_checksums(const char *from, const char *to)
{
	struct st_file *f = NULL;
	struct nl_err err = { 0 };
	if (st_open(&f, from, &err) != 0)
		return -1;
	int n = st_count(f);
	struct st_tensor *t = calloc((size_t)n, sizeof *t);
	static const char *const keys[] = { "format", "step", "spec", "spec_hash", "rng.data",
					    "loss" };
	struct st_meta m[6];
	for (int i = 0; i < n; i++)
		t[i] = *st_get(f, i);
	for (int i = 0; i < 6; i++) {
		m[i].key = keys[i];
		m[i].value = st_meta_get(f, keys[i]);
	}
	int rc = st_write(to, t, n, m, 6, &err);
	free(t);
	st_close(f);
	return rc;
}

static void test_checksums(void)
{
	struct spec s;
	struct trainer t, u;
	struct nl_err err = { 0 };
	struct train_sink none = { 0 };
	char good[300], bad[300], old[300], name[ST_NAME_MAX];
	int verified = -1;
	base_spec(&s);
	snprintf(good, sizeof good, "%s/good.safetensors", tmpdir);
	snprintf(bad, sizeof bad, "%s/bad.safetensors", tmpdir);
	snprintf(old, sizeof old, "%s/old.safetensors", tmpdir);
	CHECK(trainer_init(&t, &s, corpus, &err) == 0);
	for (int i = 0; i < 12; i++)
		CHECK(trainer_step(&t, &none, &err) == 0);
	CHECKF(ckpt_save(&t, good, &err) == 0, "%s", err.msg);

	/* a good one loads, verified, to the same state */
	CHECK(trainer_init(&u, &s, corpus, &err) == 0);
	CHECKF(ckpt_load(&u, good, &verified, &err) == 0, "%s", err.msg);
	CHECK(verified == 1);
	CHECK(u.step == 12);
	size_t pbytes = sizeof(real) * t.model.lay.n_params;
	CHECK(memcmp(u.model.params, t.model.params, pbytes) == 0);
	trainer_free(&u);

	/* one byte of one tensor's data, for tensors at the start, middle and end of the file */
	CHECK(trainer_init(&u, &s, corpus, &err) == 0);
	real *before = malloc(pbytes);
	memcpy(before, u.model.params, pbytes);
	struct st_file *f = NULL;
	CHECK(st_open(&f, good, &err) == 0);
	int n = st_count(f);
	st_close(f);
	int picks[3] = { 0, n / 2, n - 1 };
	for (int k = 0; k < 3; k++) {
		CHECK(copy_file(good, bad) == 0);
		long off = tensor_byte(bad, picks[k], name, sizeof name);
		CHECK(off > 0 && flip_byte(bad, off) == 0);
		memset(&err, 0, sizeof err);
		CHECK(ckpt_load(&u, bad, &verified, &err) == NL_EINVAL);
		char want[ST_NAME_MAX + 16];
		snprintf(want, sizeof want, "\"%s\"", name);
		CHECKF(strstr(err.msg, bad) && strstr(err.msg, want) && strstr(err.msg, "checksum mismatch"),
		       "the message should name the file and tensor %s: %s", name, err.msg);
		CHECKF(u.step == 0 && memcmp(u.model.params, before, pbytes) == 0,
		       "a refused checkpoint must leave the trainer as it was");
		memset(&err, 0, sizeof err);
		CHECK(ckpt_load_params(&u.model, bad, &err) == NL_EINVAL);
	}
	free(before);

	/* the metadata: the recorded loss (same length, so the file still parses) */
	CHECK(copy_file(good, bad) == 0);
	{
		FILE *fp = fopen(bad, "rb");
		static char buf[1 << 16];
		size_t got = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
		if (fp)
			fclose(fp);
		buf[got] = '\0';
		char *p = strstr(buf + 8, "\"loss\":\"");
		CHECK(p != NULL);
		if (p) {
			long off = (long)(p - buf) + 8;   /* the first digit of the value */
			FILE *w = fopen(bad, "r+b");
			char c = buf[off] == '1' ? '2' : '1';
			CHECK(w && fseek(w, off, SEEK_SET) == 0 && fputc(c, w) != EOF);
			if (w)
				fclose(w);
		}
	}
	memset(&err, 0, sizeof err);
	CHECK(ckpt_load(&u, bad, &verified, &err) == NL_EINVAL);
	CHECKF(strstr(err.msg, "metadata checksum mismatch") != NULL, "%s", err.msg);

	/* written before checksums: loads, and says it was not verified */
	CHECK(strip_checksums(good, old) == 0);
	verified = -1;
	CHECKF(ckpt_load(&u, old, &verified, &err) == 0, "old checkpoint: %s", err.msg);
	CHECK(verified == 0);
	CHECK(u.step == 12 && memcmp(u.model.params, t.model.params, pbytes) == 0);
	trainer_free(&u);
	trainer_free(&t);
	unlink(good);
	unlink(bad);
	unlink(old);
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nl_ckpt_XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmpdir);
	write_corpus();
	test_crc32c();
	test_checksums();
	unlink(corpus);
	rmdir(tmpdir);
	return test_finish("checkpoint");
}
