/*
 * test_safetensors.c — the safetensors module as a user meets it: tensors and metadata come back
 * exactly as written (scalar and 0-element tensors included); a small file has exactly the bytes
 * the spec describes; writes are atomic; and the reader turns every truncation, a table of hostile
 * headers and a few hundred seeded random corruptions into an error (or a consistent file), never
 * a crash. st_open and st_write are also run with the Nth allocation failing for every N (cJSON is
 * routed through nl_malloc for that). Files live in a mkdtemp directory removed at the end.
 * Single-threaded.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "safetensors.h"
#include "../test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tdir[64];

static void path_in(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tdir, name);
}

static int exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* The whole file (caller frees with free), or NULL. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (!fp)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(fp);
	return buf;
}

static int spit(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");
	int ok;

	if (!fp)
		return -1;
	ok = fwrite(buf, 1, len, fp) == len;
	return (fclose(fp) == 0 && ok) ? 0 : -1;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	int i;
	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;
	for (i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Writes a file from a header string and data_len data bytes (0, 1, 2, ...). pad: 8-align. */
static int spit_raw(const char *path, const char *header, size_t hlen, size_t data_len, int pad)
{
	size_t padn = pad ? (8 - (8 + hlen) % 8) % 8 : 0, i;
	size_t total = 8 + hlen + padn + data_len;
	unsigned char *buf = malloc(total);
	int rc;

	if (!buf)
		return -1;
	put_le64(buf, hlen + padn);
	memcpy(buf + 8, header, hlen);
	memset(buf + 8 + hlen, ' ', padn);
	for (i = 0; i < data_len; i++)
		buf[8 + hlen + padn + i] = (unsigned char)i;
	rc = spit(path, buf, total);
	free(buf);
	return rc;
}

static void set_tensor(struct st_tensor *x, const char *name, const char *dtype, int ndim,
		       const int64_t *shape, const void *data, size_t nbytes)
{
	memset(x, 0, sizeof *x);
	nl_strlcpy(x->name, name, sizeof x->name);
	nl_strlcpy(x->dtype, dtype, sizeof x->dtype);
	x->ndim = ndim;
	if (ndim > 0)
		memcpy(x->shape, shape, sizeof *shape * (size_t)ndim);
	x->data = data;
	x->nbytes = nbytes;
}

/* The fixture: every dtype, a scalar, a 0-element tensor; wider dtypes never misaligned. */
static const float fx_w[6] = { 1, 2, 3, 4, 5, -6.5f };
static const double fx_d[4] = { 0.5, -1.25, 1e300, -0.0 };
static const int32_t fx_i[3] = { -7, 0, INT32_MAX };
static const float fx_s = 3.5f;
static const int64_t fx_l[2] = { INT64_MIN, 42 };
static const uint8_t fx_u[3] = { 0, 128, 255 };
#define FX_N 7

static void fixture(struct st_tensor *t)
{
	static const int64_t s23[2] = { 2, 3 }, s4[1] = { 4 }, s3[1] = { 3 }, s05[2] = { 0, 5 },
		s2[1] = { 2 };
	set_tensor(&t[0], "layer.0.w", "F32", 2, s23, fx_w, sizeof fx_w);
	set_tensor(&t[1], "adam.m", "F64", 1, s4, fx_d, sizeof fx_d);
	set_tensor(&t[2], "ids", "I32", 1, s3, fx_i, sizeof fx_i);
	set_tensor(&t[3], "scale", "F32", 0, NULL, &fx_s, sizeof fx_s);
	set_tensor(&t[4], "empty", "F32", 2, s05, NULL, 0);
	set_tensor(&t[5], "step", "I64", 1, s2, fx_l, sizeof fx_l);
	set_tensor(&t[6], "bytes", "U8", 1, s3, fx_u, sizeof fx_u);
}

static const struct st_meta fx_meta[3] = {
	{ "format", "pt" },
	{ "step", "42" },
	{ "note", "h\xc3\xa9llo \"quoted\"\n\ttab \\ \x01 end" },   /* escaped in JSON */
};

static int same_tensor(const struct st_tensor *a, const struct st_tensor *b)
{
	int d;

	if (strcmp(a->name, b->name) || strcmp(a->dtype, b->dtype) || a->ndim != b->ndim ||
	    a->nbytes != b->nbytes)
		return 0;
	for (d = 0; d < a->ndim; d++)
		if (a->shape[d] != b->shape[d])
			return 0;
	return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

/* Everything st_open promised about an opened file, checked from the outside. */
static int consistent(const struct st_file *f, uint64_t data_size)
{
	const unsigned char *next = NULL;
	uint64_t total = 0, elems;
	unsigned sum = 0;
	size_t i, es;
	int k, d;

	for (k = 0; k < st_count(f); k++) {
		const struct st_tensor *x = st_get(f, k);
		es = st_dtype_size(x->dtype);
		if (!x || es == 0 || x->ndim < 0 || x->ndim > ST_MAX_DIMS || st_find(f, x->name) != x)
			return 0;
		elems = 1;
		for (d = 0; d < x->ndim; d++)
			elems *= (uint64_t)x->shape[d];
		if (elems * es != x->nbytes || (uintptr_t)x->data % es != 0)
			return 0;
		if (next && (const unsigned char *)x->data != next)
			return 0;
		next = (const unsigned char *)x->data + x->nbytes;
		for (i = 0; i < x->nbytes; i++)   /* ASan checks each byte is really there */
			sum += ((const unsigned char *)x->data)[i];
		total += x->nbytes;
	}
	(void)sum;
	return total == data_size && st_get(f, st_count(f)) == NULL && st_get(f, -1) == NULL;
}

static void test_round_trip(void)
{
	struct st_tensor t[FX_N];
	struct st_file *f = NULL;
	struct nl_err err = { 0 };
	char p[128];
	int rc, i;

	fixture(t);
	path_in(p, sizeof p, "round.safetensors");
	rc = st_write(p, t, FX_N, fx_meta, 3, &err);
	CHECKF(rc == 0, "%s", err.msg);
	rc = st_open(&f, p, &err);
	CHECKF(rc == 0 && f, "%s", err.msg);
	if (!f)
		return;
	CHECK(st_count(f) == FX_N);
	for (i = 0; i < FX_N && i < st_count(f); i++) {
		/* written back to back in this order, so file order is write order */
		CHECKF(same_tensor(st_get(f, i), &t[i]), "tensor %d (%s)", i, t[i].name);
		CHECKF(st_find(f, t[i].name) == st_get(f, i), "find %s", t[i].name);
		CHECK((uintptr_t)st_get(f, i)->data % st_dtype_size(t[i].dtype) == 0);
	}
	CHECK(st_find(f, "scale")->ndim == 0 && *(const float *)st_find(f, "scale")->data == 3.5f);
	CHECK(st_find(f, "empty")->nbytes == 0 && st_find(f, "empty")->shape[1] == 5);
	CHECK(((const double *)st_find(f, "adam.m")->data)[2] == 1e300);
	CHECK(((const int64_t *)st_find(f, "step")->data)[0] == INT64_MIN);
	CHECK(st_find(f, "nope") == NULL && st_find(f, "") == NULL);
	for (i = 0; i < 3; i++)
		CHECKF(st_meta_get(f, fx_meta[i].key) &&
		       strcmp(st_meta_get(f, fx_meta[i].key), fx_meta[i].value) == 0, "meta %s",
		       fx_meta[i].key);
	CHECK(st_meta_get(f, "missing") == NULL);
	CHECK(consistent(f, sizeof fx_w + sizeof fx_d + sizeof fx_i + 4 + sizeof fx_l + 3));
	st_close(f);
	st_close(NULL);

	/* No tensors and no metadata is a valid (if useless) file. */
	path_in(p, sizeof p, "nothing.safetensors");
	rc = st_write(p, NULL, 0, NULL, 0, &err);
	CHECKF(rc == 0, "%s", err.msg);
	rc = st_open(&f, p, &err);
	CHECKF(rc == 0 && st_count(f) == 0 && st_get(f, 0) == NULL && st_meta_get(f, "x") == NULL,
	       "%s", err.msg);
	st_close(f);
}

/* A tiny file has exactly the bytes the spec describes. */
static void test_exact_bytes(void)
{
	static const float x[2] = { 1.0f, -2.0f };
	static const int64_t s2[1] = { 2 };
	static const int64_t lv = 0x0102030405060708;
	static const struct st_meta m[1] = { { "k", "v" } };
	const char *h1 = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
	const char *h2 = "{\"__metadata__\":{\"k\":\"v\"},"
			 "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}";
	struct st_tensor t;
	struct nl_err err = { 0 };
	unsigned char *got, want[256];
	size_t len, hl, pad;
	cJSON *j;
	char p[128];
	int rc;

	path_in(p, sizeof p, "tiny.safetensors");
	set_tensor(&t, "x", "F32", 1, s2, x, sizeof x);
	rc = st_write(p, &t, 1, NULL, 0, &err);
	CHECKF(rc == 0, "%s", err.msg);
	got = slurp(p, &len);
	CHECK(got != NULL);
	if (!got)
		return;
	hl = strlen(h1);
	pad = (8 - (8 + hl) % 8) % 8;
	CHECK(pad > 0);   /* so the padding rule is exercised */
	put_le64(want, hl + pad);
	memcpy(want + 8, h1, hl);
	memset(want + 8 + hl, ' ', pad);
	memcpy(want + 8 + hl + pad, x, sizeof x);
	CHECKF(len == 8 + hl + pad + sizeof x && memcmp(got, want, len) == 0,
	       "file is %zu bytes: %.*s", len, (int)(len > 8 ? len - 8 : 0), (const char *)got + 8);
	CHECK(len >= 8 && get_le64(got) == hl + pad && (8 + get_le64(got)) % 8 == 0);
	/* little-endian float bytes: 1.0f = 00 00 80 3f */
	CHECK(len >= 4 && got[len - 8] == 0x00 && got[len - 6] == 0x80 && got[len - 5] == 0x3f);
	j = len > 8 ? cJSON_ParseWithLength((const char *)got + 8, (size_t)get_le64(got)) : NULL;
	CHECK(j != NULL);
	if (j) {
		cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "x");
		cJSON *off = cJSON_GetObjectItemCaseSensitive(o, "data_offsets");
		CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "dtype")));
		CHECK(cJSON_GetArraySize(off) == 2 && cJSON_GetArrayItem(off, 1)->valueint == 8);
		cJSON_Delete(j);
	}
	free(got);

	/* Metadata first, a scalar's shape is [], and an I64 is stored little-endian. */
	set_tensor(&t, "s", "I64", 0, NULL, &lv, sizeof lv);
	rc = st_write(p, &t, 1, m, 1, &err);
	CHECKF(rc == 0, "%s", err.msg);
	got = slurp(p, &len);
	CHECK(got != NULL);
	if (!got)
		return;
	hl = strlen(h2);
	pad = (8 - (8 + hl) % 8) % 8;
	put_le64(want, hl + pad);
	memcpy(want + 8, h2, hl);
	memset(want + 8 + hl, ' ', pad);
	put_le64(want + 8 + hl + pad, 0x0102030405060708);
	CHECKF(len == 8 + hl + pad + 8 && memcmp(got, want, len) == 0,
	       "file is %zu bytes: %.*s", len, (int)(len > 8 ? len - 8 : 0), (const char *)got + 8);
	free(got);
}

/* Files from elsewhere need not pad their header; the reader still hands out aligned data. */
static void test_unpadded_foreign_file(void)
{
	const char *h = "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
			"\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[16,17]}}";
	unsigned char buf[512];
	double v[2] = { 2.5, -1e-300 };
	struct st_file *f = NULL;
	struct nl_err err = { 0 };
	size_t hl = strlen(h);
	char p[128];
	int rc;

	CHECK((8 + hl) % 8 != 0);
	put_le64(buf, hl);
	memcpy(buf + 8, h, hl);
	memcpy(buf + 8 + hl, v, sizeof v);
	buf[8 + hl + 16] = 77;
	path_in(p, sizeof p, "foreign.safetensors");
	CHECK(spit(p, buf, 8 + hl + 17) == 0);
	rc = st_open(&f, p, &err);
	CHECKF(rc == 0, "%s", err.msg);
	if (!f)
		return;
	CHECK((uintptr_t)st_find(f, "a")->data % 8 == 0);
	CHECK(memcmp(st_find(f, "a")->data, v, sizeof v) == 0);
	CHECK(*(const uint8_t *)st_find(f, "b")->data == 77);
	CHECK(consistent(f, 17));
	st_close(f);
}

static void test_atomic_write(void)
{
	static const float other[3] = { 9, 8, 7 };
	static const int64_t s3[1] = { 3 };
	struct st_tensor t[FX_N], o;
	struct st_file *f = NULL;
	struct nl_err err = { 0 };
	unsigned char *before, *after;
	size_t blen = 0, alen = 0;
	char p[128], tmp[140], bad[128];
	int rc;

	fixture(t);
	set_tensor(&o, "other", "F32", 1, s3, other, sizeof other);
	path_in(p, sizeof p, "atomic.safetensors");
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	rc = st_write(p, t, FX_N, fx_meta, 3, &err);
	CHECKF(rc == 0, "%s", err.msg);
	CHECK(exists(p) && !exists(tmp));

	/* A directory that does not exist: an I/O error naming the path, and nothing created. */
	path_in(bad, sizeof bad, "no_such_dir/x.safetensors");
	err.msg[0] = '\0';
	rc = st_write(bad, t, FX_N, NULL, 0, &err);
	CHECKF(rc == NL_EIO && err.code == NL_EIO, "rc %d", rc);
	CHECKF(strstr(err.msg, "no_such_dir/x.safetensors") && strstr(err.msg, strerror(ENOENT)),
	       "%s", err.msg);
	CHECK(strchr(err.msg, '\n') == NULL);

	/* A write that fails (the temp name is taken by a directory) leaves the old file intact. */
	before = slurp(p, &blen);
	CHECK(mkdir(tmp, 0700) == 0);
	rc = st_write(p, &o, 1, NULL, 0, &err);
	CHECKF(rc == NL_EIO && strstr(err.msg, tmp), "rc %d: %s", rc, err.msg);
	after = slurp(p, &alen);
	CHECK(before && after && alen == blen && memcmp(before, after, blen) == 0);
	CHECK(rmdir(tmp) == 0);   /* still there: st_write removes only a temp file it created */
	free(after);

	/* Overwriting works and leaves no temp file. */
	rc = st_write(p, &o, 1, NULL, 0, &err);
	CHECKF(rc == 0, "%s", err.msg);
	CHECK(!exists(tmp));
	rc = st_open(&f, p, &err);
	CHECKF(rc == 0 && st_count(f) == 1 && same_tensor(st_get(f, 0), &o), "%s", err.msg);
	st_close(f);
	free(before);
}

/* Each bad input to st_write is NL_EINVAL with a message, and creates no file. */
static void test_write_rejects(void)
{
	static const float v4[4] = { 1, 2, 3, 4 };
	static const uint8_t u3[3] = { 1, 2, 3 };
	static const int64_t s4[1] = { 4 }, s3[1] = { 3 }, s1[1] = { 1 }, neg[1] = { -1 };
	struct st_tensor t[2];
	struct st_meta dupm[2] = { { "a", "1" }, { "a", "2" } };
	struct nl_err err;
	char p[128], tmp[140];
	int rc, c;

	path_in(p, sizeof p, "rejected.safetensors");
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	for (c = 0; c < 11; c++) {
		int n = 1, n_meta = 0;
		const struct st_meta *m = NULL;
		set_tensor(&t[0], "a", "F32", 1, s4, v4, sizeof v4);
		set_tensor(&t[1], "b", "F32", 1, s4, v4, sizeof v4);
		switch (c) {
		case 0: nl_strlcpy(t[0].dtype, "BF16", sizeof t[0].dtype); break;
		case 1: t[0].nbytes = 12; break;
		case 2: n = 2; nl_strlcpy(t[1].name, "a", sizeof t[1].name); break;
		case 3: t[0].name[0] = '\0'; break;
		case 4: nl_strlcpy(t[0].name, "__metadata__", sizeof t[0].name); break;
		case 5: t[0].ndim = ST_MAX_DIMS + 1; break;
		case 6: set_tensor(&t[0], "a", "F32", 1, neg, v4, sizeof v4); break;
		case 7: n = 2; set_tensor(&t[0], "a", "U8", 1, s3, u3, sizeof u3);
			set_tensor(&t[1], "b", "F32", 1, s1, v4, 4); break;   /* F32 at byte 3 */
		case 8: t[0].data = NULL; break;
		case 9: m = dupm; n_meta = 2; break;
		case 10: nl_strlcpy(t[0].name, "bad\xff", sizeof t[0].name); break;
		}
		err.msg[0] = '\0';
		rc = st_write(p, t, n, m, n_meta, &err);
		CHECKF(rc == NL_EINVAL && err.msg[0] && !exists(p) && !exists(tmp), "case %d: rc %d",
		       c, rc);
	}
	rc = st_write(p, NULL, 1, NULL, 0, &err);
	CHECK(rc == NL_EINVAL);

	/* More tensor bytes than a reader would load (the data is never touched). */
	{
		const int64_t big[1] = { ((int64_t)16 << 30) + 1 };
		set_tensor(&t[0], "huge", "U8", 1, big, v4, (size_t)big[0]);
		rc = st_write(p, t, 1, NULL, 0, &err);
		CHECKF(rc == NL_ELIMIT && !exists(p) && !exists(tmp), "rc %d: %s", rc, err.msg);
	}
}

struct bad_header {
	const char *header;
	size_t data_len;
	const char *needle;   /* must appear in the error message */
};

static void test_hostile_headers(void)
{
#define T(n, dt, sh, off) \
	"\"" n "\":{\"dtype\":\"" dt "\",\"shape\":" sh ",\"data_offsets\":" off "}"
	static const struct bad_header cases[] = {
		{ "[]", 0, "start with '{'" },
		{ " {}", 0, "start with '{'" },
		{ "", 0, "start with '{'" },
		{ "{\"x\":", 0, "not valid JSON" },
		{ "{}x", 0, "bytes after the JSON object" },
		{ "{\"x\":1}", 0, "not an object" },
		{ "{" T("x", "BF16", "[1]", "[0,2]") "}", 2, "unsupported dtype \"BF16\"" },
		{ "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" is missing" },
		{ "{" T("x", "F32", "[-1]", "[0,4]") "}", 4, "shape dimension 0" },
		{ "{" T("x", "F32", "[1.5]", "[0,4]") "}", 4, "shape dimension 0" },
		{ "{" T("x", "F32", "[1,\"2\"]", "[0,8]") "}", 8, "shape dimension 1" },
		{ "{" T("x", "F32", "[1,1,1,1,1]", "[0,4]") "}", 4, "more than 4 dimensions" },
		{ "{" T("x", "F32", "1", "[0,4]") "}", 4, "\"shape\" is missing" },
		{ "{" T("x", "F32", "[4294967296,4294967296,4294967296]", "[0,4]") "}", 4,
		  "overflows" },
		{ "{" T("x", "F32", "[1]", "[4,0]") "}", 4, "end before they begin" },
		{ "{" T("x", "F32", "[1]", "[0,4,8]") "}", 8, "not a pair" },
		{ "{" T("x", "F32", "[1]", "[0]") "}", 4, "not a pair" },
		{ "{" T("x", "F32", "[1]", "[0,1e300]") "}", 4, "not a pair" },
		{ "{" T("x", "F32", "[1]", "[-4,0]") "}", 4, "not a pair" },
		{ "{" T("x", "F32", "[1]", "[0,8]") "}", 4, "exceed the 4 data bytes" },
		{ "{" T("x", "F32", "[3]", "[0,8]") "}", 8, "needs 12 bytes" },
		{ "{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}", 12,
		  "overlap tensor \"a\"" },
		{ "{" T("a", "F32", "[1]", "[0,4]") "," T("b", "F32", "[1]", "[8,12]") "}", 12,
		  "[4,8) before tensor \"b\"" },
		{ "{" T("a", "F32", "[1]", "[4,8]") "}", 8, "[0,4) before tensor \"a\"" },
		{ "{" T("a", "F32", "[1]", "[0,4]") "}", 8, "after the last tensor" },
		{ "{}", 8, "after the last tensor" },
		{ "{" T("a", "F32", "[1]", "[0,4]") "," T("a", "F32", "[1]", "[4,8]") "}", 8,
		  "appears twice" },
		{ "{" T("a", "U8", "[1]", "[0,1]") "," T("b", "F32", "[1]", "[1,5]") "}", 5,
		  "not a multiple" },
		{ "{" T("", "F32", "[1]", "[0,4]") "}", 4, "empty name" },
		{ "{\"__metadata__\":{\"k\":1}}", 0, "not a string" },
		{ "{\"__metadata__\":[]}", 0, "not an object" },
		{ "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "appears twice" },
		{ "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "key \"k\" appears twice" },
		{ "{" T("\xff", "F32", "[1]", "[0,4]") "}", 4, "not valid UTF-8" },
		{ "{" T("\xc0\xaf", "F32", "[1]", "[0,4]") "}", 4, "not valid UTF-8" },
		{ "{" T("\xed\xa0\x80", "F32", "[1]", "[0,4]") "}", 4, "not valid UTF-8" },
		{ "{" T("a\x01", "F32", "[1]", "[0,4]") "}", 4, "not valid UTF-8" },
		{ "{" T("\\ud800", "F32", "[1]", "[0,4]") "}", 4, "not valid JSON" },
	};
	static const struct bad_header good[] = {
		{ "{}", 0, NULL },
		{ "{}\n\t\r  ", 0, NULL },
		{ "{\"__metadata__\":{}}", 0, NULL },
		{ "{" T("e", "U8", "[0]", "[0,0]") "}", 0, NULL },
		{ "{" T("e", "F64", "[0,9007199254740992]", "[0,0]") "}", 0, NULL },
		{ "{" T("a", "F32", "[1]", "[0,4]") "," T("z", "F32", "[0]", "[4,4]") ","
		  T("b", "F32", "[1]", "[4,8]") "}", 8, NULL },
		{ "{\"x\":{\"data_offsets\":[0,4],\"shape\":[1],\"dtype\":\"I32\",\"extra\":1}}", 4,
		  NULL },
		{ "{" T("\\u00e9\\n", "F32", "[1]", "[0,4]") "}", 4, NULL },
	};
#undef T
	struct st_file *f;
	struct nl_err err;
	char p[128], name[256], h[512];
	size_t i;
	int rc;

	path_in(p, sizeof p, "hostile.safetensors");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK(spit_raw(p, cases[i].header, strlen(cases[i].header), cases[i].data_len, 0) == 0);
		f = (struct st_file *)&err;   /* must be reset to NULL */
		err.msg[0] = '\0';
		rc = st_open(&f, p, &err);
		CHECKF(rc == NL_EINVAL && f == NULL && strstr(err.msg, cases[i].needle) &&
		       strncmp(err.msg, p, strlen(p)) == 0 && !strchr(err.msg, '\n'),
		       "case %zu %s: rc %d: %s", i, cases[i].header, rc, err.msg);
		if (rc == 0)
			st_close(f);
	}
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		CHECK(spit_raw(p, good[i].header, strlen(good[i].header), good[i].data_len, i & 1) == 0);
		f = NULL;
		rc = st_open(&f, p, &err);
		CHECKF(rc == 0 && consistent(f, good[i].data_len), "good %zu %s: %s", i, good[i].header,
		       rc ? err.msg : "inconsistent");
		st_close(f);
	}

	/* A name one byte over the limit, and the longest one that fits. */
	memset(name, 'n', ST_NAME_MAX);
	name[ST_NAME_MAX] = '\0';
	snprintf(h, sizeof h, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		 name);
	CHECK(spit_raw(p, h, strlen(h), 1, 1) == 0);
	rc = st_open(&f, p, &err);
	CHECKF(rc == NL_EINVAL && strstr(err.msg, "over the 159-byte limit") &&
	       strstr(err.msg, "nnn...\""), "rc %d: %s", rc, err.msg);
	name[ST_NAME_MAX - 1] = '\0';
	snprintf(h, sizeof h, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		 name);
	CHECK(spit_raw(p, h, strlen(h), 1, 1) == 0);
	rc = st_open(&f, p, &err);
	CHECKF(rc == 0 && st_find(f, name) != NULL, "%s", err.msg);
	st_close(f);

	/* The exact message for a file cut short in its data. */
	path_in(p, sizeof p, "ckpt.safetensors");
	snprintf(h, sizeof h, "{\"x\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,40]}}");
	CHECK(spit_raw(p, h, strlen(h), 32, 1) == 0);
	rc = st_open(&f, p, &err);
	snprintf(h, sizeof h, "%s: tensor \"x\": data_offsets [0,40] exceed the 32 data bytes "
		 "(truncated file?)", p);
	CHECKF(rc == NL_EINVAL && strcmp(err.msg, h) == 0, "got: %s", err.msg);

	/* Not a file at all. */
	rc = st_open(&f, tdir, &err);
	CHECKF(rc == NL_EINVAL && strstr(err.msg, "not a regular file"), "%s", err.msg);
	path_in(p, sizeof p, "missing.safetensors");
	rc = st_open(&f, p, &err);
	CHECKF(rc == NL_EIO && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
}

/* A length prefix claiming more than the file holds, or more than the cap. */
static void test_huge_header(void)
{
	static const uint64_t lens[] = { UINT64_MAX, (uint64_t)1 << 63, (uint64_t)1 << 40,
					 ST_HEADER_MAX + 1ull, 3 };
	unsigned char buf[10];
	struct st_file *f = NULL;
	struct nl_err err;
	char p[128];
	size_t i;
	int rc;

	path_in(p, sizeof p, "huge.safetensors");
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		put_le64(buf, lens[i]);
		buf[8] = '{';
		buf[9] = '}';
		CHECK(spit(p, buf, sizeof buf) == 0);
		rc = st_open(&f, p, &err);
		CHECKF(rc == NL_EINVAL && f == NULL && strstr(err.msg, "exceeds the 2 bytes"),
		       "len %" PRIu64 ": rc %d: %s", lens[i], rc, err.msg);
	}
	/* A (sparse) file big enough to hold a header over ST_HEADER_MAX is refused unread. */
	put_le64(buf, ST_HEADER_MAX + 8ull);
	CHECK(spit(p, buf, 8) == 0);
	CHECK(truncate(p, (off_t)ST_HEADER_MAX + 64) == 0);
	rc = st_open(&f, p, &err);
	CHECKF(rc == NL_ELIMIT && f == NULL && strstr(err.msg, "over the"), "rc %d: %s", rc,
	       err.msg);
	/* So is a (sparse) file too large to load at all. */
	put_le64(buf, 2);
	CHECK(spit(p, buf, sizeof buf) == 0);
	CHECK(truncate(p, ((off_t)17 << 30)) == 0);
	rc = st_open(&f, p, &err);
	CHECKF(rc == NL_ELIMIT && f == NULL && strstr(err.msg, "-byte limit"), "rc %d: %s", rc,
	       err.msg);
	CHECK(remove(p) == 0);
}

/* Every proper prefix of a valid file is an error, not a crash. */
static void test_truncations(void)
{
	struct st_tensor t[FX_N];
	struct st_file *f;
	struct nl_err err;
	unsigned char *full;
	size_t len = 0, cut, bad_cut = 0;
	char p[128], q[128];
	int all_rejected = 1, rc;

	fixture(t);
	path_in(p, sizeof p, "full.safetensors");
	path_in(q, sizeof q, "cut.safetensors");
	rc = st_write(p, t, FX_N, fx_meta, 3, &err);
	CHECKF(rc == 0, "%s", err.msg);
	full = slurp(p, &len);
	CHECK(full && len > 100);
	if (!full)
		return;
	for (cut = 0; cut < len; cut++) {
		CHECK(spit(q, full, cut) == 0);
		f = NULL;
		err.msg[0] = '\0';
		rc = st_open(&f, q, &err);
		if (rc == 0 || f != NULL || err.msg[0] == '\0' || strncmp(err.msg, q, strlen(q))) {
			all_rejected = 0;
			bad_cut = cut;
			st_close(f);
		}
		/* cut inside the data: the message says which tensor and suggests truncation */
		if (cut == len - 1)
			CHECKF(strstr(err.msg, "\"bytes\"") && strstr(err.msg, "(truncated file?)"), "%s",
			       err.msg);
		if (cut == 4)
			CHECKF(strstr(err.msg, "too short"), "%s", err.msg);
	}
	CHECKF(all_rejected, "prefix of %zu bytes accepted or rejected without a message", bad_cut);
	free(full);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Seeded random byte corruptions: each open fails with a message or yields a consistent file. */
static void test_corruption(void)
{
	static const char tokens[] = "\"{}[],:0123456789 -.eE\\u";
	struct st_tensor t[FX_N];
	struct st_file *f;
	struct nl_err err;
	unsigned char *full, *buf;
	size_t len = 0, hend, pos;
	char p[128], q[128];
	int iter, k, rc, opened = 0, failed = 0, bad = 0;

	fixture(t);
	path_in(p, sizeof p, "corrupt_src.safetensors");
	path_in(q, sizeof q, "corrupt.safetensors");
	rc = st_write(p, t, FX_N, fx_meta, 3, &err);
	CHECKF(rc == 0, "%s", err.msg);
	full = slurp(p, &len);
	buf = malloc(len ? len : 1);
	CHECK(full && buf && len > 8);
	if (!full || !buf || len <= 8) {
		free(full);
		free(buf);
		return;
	}
	hend = 8 + (size_t)get_le64(full);
	for (iter = 0; iter < 400; iter++) {
		memcpy(buf, full, len);
		for (k = 1 + (int)(rng() % 3); k > 0; k--) {
			uint64_t r = rng();
			/* mostly the prefix and header, where the parsing is */
			pos = (r & 3) ? (size_t)((r >> 8) % hend) : (size_t)((r >> 8) % len);
			if ((r >> 4) & 1)
				buf[pos] = (unsigned char)tokens[(r >> 40) % (sizeof tokens - 1)];
			else
				buf[pos] = (unsigned char)(r >> 48);
		}
		CHECK(spit(q, buf, len) == 0);
		f = NULL;
		err.msg[0] = '\0';
		rc = st_open(&f, q, &err);
		if (rc != 0) {
			failed++;
			if (f != NULL || err.msg[0] == '\0')
				bad++;
		} else {
			opened++;
			if (!consistent(f, len - 8 - get_le64(buf)))
				bad++;
			st_close(f);
		}
	}
	CHECKF(bad == 0, "%d corrupted files gave an inconsistent result", bad);
	CHECKF(opened > 0 && failed > 0, "opened %d, failed %d", opened, failed);
	free(full);
	free(buf);
}

/* The Nth allocation failing, for every N: a clean NL_ENOMEM, no leak (ASan checks at exit). */
static void test_alloc_failures(void)
{
	struct st_tensor t[FX_N];
	struct st_file *f;
	struct nl_err err;
	unsigned char *before, *now;
	size_t blen = 0, nlen = 0;
	char p[128], tmp[140];
	long k;
	int rc = -1, bad = 0;

	fixture(t);
	path_in(p, sizeof p, "alloc.safetensors");
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	rc = st_write(p, t, FX_N, fx_meta, 3, &err);
	CHECKF(rc == 0, "%s", err.msg);

	for (k = 1; k < 10000; k++) {
		f = NULL;
		nl_alloc_fail_at(k);
		rc = st_open(&f, p, &err);
		nl_alloc_fail_at(0);
		if (rc == 0)
			break;
		if (rc != NL_ENOMEM || f != NULL || !strstr(err.msg, "out of memory"))
			bad++;
	}
	CHECKF(rc == 0 && k > 5 && bad == 0, "st_open: k %ld, rc %d, %d bad failures", k, rc, bad);
	if (rc == 0) {
		CHECK(st_count(f) == FX_N && same_tensor(st_find(f, "ids"), &t[2]));
		CHECK(st_meta_get(f, "step") && strcmp(st_meta_get(f, "step"), "42") == 0);
		st_close(f);
	}

	/* st_write over an existing file: every failure leaves it untouched and no temp file. */
	before = slurp(p, &blen);
	bad = 0;
	for (k = 1; k < 10000; k++) {
		nl_alloc_fail_at(k);
		rc = st_write(p, t, 3, NULL, 0, &err);
		nl_alloc_fail_at(0);
		if (rc == 0)
			break;
		now = slurp(p, &nlen);
		if (rc != NL_ENOMEM || !now || nlen != blen || memcmp(now, before, blen) != 0 ||
		    exists(tmp))
			bad++;
		free(now);
	}
	CHECKF(rc == 0 && k > 5 && bad == 0, "st_write: k %ld, rc %d, %d bad failures", k, rc, bad);
	rc = st_open(&f, p, &err);
	CHECKF(rc == 0 && st_count(f) == 3, "%s", err.msg);
	st_close(f);
	free(before);
}

static void remove_tree(void)
{
	DIR *d = opendir(tdir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", tdir, e->d_name);
		CHECKF(remove(p) == 0, "remove %s", p);
	}
	closedir(d);
	CHECK(rmdir(tdir) == 0);
}

int main(void)
{
	/* Route cJSON through nl_malloc so the allocation-failure loops reach its allocations too. */
	cJSON_Hooks hooks = { nl_malloc, nl_free };

	cJSON_InitHooks(&hooks);
	nl_strlcpy(tdir, "/tmp/nl_st_XXXXXX", sizeof tdir);
	if (!mkdtemp(tdir)) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(st_dtype_size("F32") == 4 && st_dtype_size("F64") == 8 && st_dtype_size("I32") == 4 &&
	      st_dtype_size("I64") == 8 && st_dtype_size("U8") == 1);
	CHECK(st_dtype_size("BF16") == 0 && st_dtype_size("f32") == 0 && st_dtype_size(NULL) == 0);
	test_round_trip();
	test_exact_bytes();
	test_unpadded_foreign_file();
	test_atomic_write();
	test_write_rejects();
	test_hostile_headers();
	test_huge_header();
	test_truncations();
	test_corruption();
	test_alloc_failures();
	remove_tree();
	return test_finish("safetensors");
}
