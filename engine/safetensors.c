/*
 * safetensors.c — the safetensors format: writing a checkpoint atomically and loading one with
 * every length, offset, shape and dtype checked against the file before any pointer is handed out.
 * An st_file owns one allocation holding the whole file (placed so the tensor bytes start 8-byte
 * aligned), the tensor list sorted by data offset, a by-name index and the metadata strings; all
 * pointers it hands out are borrowed from it. No shared state of our own, so calls on different
 * files may run on different threads (cJSON's parser records its last error in a global that we
 * never read; see st_parse_header).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * safetensors stores tensor bytes little-endian, and this file writes and hands out tensor bytes
 * exactly as they lie in memory, so a big-endian host would silently produce and read garbage.
 * (The 8-byte length prefix is encoded byte by byte and would be fine either way.)
 */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "safetensors.c assumes a little-endian host: tensor bytes are copied as-is");
#else
#error "cannot tell the byte order; safetensors.c assumes a little-endian host"
#endif

/*
 * Tensor bytes beyond this are refused: the writer will not produce them and the reader will not
 * read a file larger than a header and this much data into memory.
 */
#define ST_DATA_MAX ((uint64_t)16 << 30)
#define ST_FILE_MAX (8 + (uint64_t)ST_HEADER_MAX + ST_DATA_MAX)
/* Largest integer a double (and so cJSON, and most JSON readers) holds exactly. */
#define ST_JSON_INT_MAX ((uint64_t)1 << 53)
/* Longest tensor name quoted in an error message before it is cut with "...". */
#define ST_SHOW_MAX 64

static const struct {
	const char *name;
	size_t size;
} st_dtypes[] = {
	{ "F32", 4 }, { "F64", 8 }, { "I32", 4 }, { "I64", 8 }, { "U8", 1 },
};

struct st_file {
	unsigned char *mem;             /* the one allocation holding the file */
	const unsigned char *data;      /* start of the tensor bytes inside mem; 8-byte aligned */
	size_t data_size;
	int n;
	struct st_tensor *t;            /* n, sorted by data offset */
	const struct st_tensor **by_name; /* n, sorted by name, for st_find */
	int n_meta;
	struct st_meta *meta;           /* n_meta, sorted by key; strings live in the same block */
};

size_t st_dtype_size(const char *dtype)
{
	size_t i;

	if (!dtype)
		return 0;
	for (i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
		if (strcmp(dtype, st_dtypes[i].name) == 0)
			return st_dtypes[i].size;
	return 0;
}

/* strerror is not thread-safe for unknown codes; this is. */
static const char *st_strerror(int e, char *buf, size_t cap)
{
	if (strerror_r(e, buf, cap) != 0)
		snprintf(buf, cap, "error %d", e);
	return buf;
}

/*
 * A name as it may appear in a one-line error message: control bytes become '?', and a long name
 * is cut (at a UTF-8 character boundary) and ends in "...".
 */
static const char *st_show(const char *s, char *buf, size_t cap)
{
	size_t n = 0, i;

	for (i = 0; s[i] && n + 4 < cap; i++)
		buf[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i]) {
		/* Cut before a character whose continuation bytes did not fit. */
		while (n > 0 && ((unsigned char)s[i] & 0xc0) == 0x80) {
			n--;
			i--;
		}
		buf[n++] = '.';
		buf[n++] = '.';
		buf[n++] = '.';
	}
	buf[n] = '\0';
	return buf;
}

/* "[2,3]" for an error message. */
static const char *st_show_shape(const int64_t *shape, int ndim, char *buf, size_t cap)
{
	size_t n = 0;
	int i;

	n += (size_t)snprintf(buf, cap, "[");
	for (i = 0; i < ndim && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? "," : "", shape[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
	return buf;
}

/*
 * Number of elements of a shape whose dimensions are already known to be >= 0, times elem_size,
 * into *bytes. Returns -1 if that overflows 64 bits. A zero dimension makes the product zero
 * however large the others are.
 */
static int st_shape_bytes(const int64_t *shape, int ndim, size_t elem_size, uint64_t *bytes)
{
	uint64_t p = elem_size;
	int i;

	for (i = 0; i < ndim; i++)
		if (shape[i] == 0) {
			*bytes = 0;
			return 0;
		}
	for (i = 0; i < ndim; i++) {
		uint64_t d = (uint64_t)shape[i];
		if (p > UINT64_MAX / d)
			return -1;
		p *= d;
	}
	*bytes = p;
	return 0;
}

/*
 * Offset of the first byte of s that is not UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF included), or len if none is. With raw_json set, also the first raw control byte other
 * than JSON whitespace, which JSON text may not hold (and which so stays out of names).
 */
static size_t st_text_check(const unsigned char *s, size_t len, int raw_json)
{
	size_t i = 0, j, k;
	uint32_t cp, min;

	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (raw_json && c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				return i;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return i;
		}
		if (len - i <= k)
			return i;
		for (j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += k + 1;
	}
	return len;
}

static int st_cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Sorts names in place and returns the index of one that appears twice, or -1. Sorting keeps
 * this O(n log n), which matters for a hostile header with a million entries.
 */
static int st_sorted_dup(const char **names, int n)
{
	int i;

	if (n > 1)
		qsort(names, (size_t)n, sizeof *names, st_cmp_str_ptr);
	for (i = 1; i < n; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			return i;
	return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Everything that can be wrong with the caller's tensors and metadata, before any file exists. */
static int st_check_input(const char *path, const struct st_tensor *t, int n,
			  const struct st_meta *meta, int n_meta, struct nl_err *err)
{
	const char **names = NULL;
	char show[ST_SHOW_MAX + 4], sh[128];
	uint64_t off = 0, bytes;
	int rc = 0, i, j, d;

	for (i = 0; i < n; i++) {
		const struct st_tensor *x = &t[i];
		size_t es;

		if (!memchr(x->name, '\0', sizeof x->name) || x->name[0] == '\0')
			return nl_err_set(err, NL_EINVAL, "%s: tensor %d: name is empty or not terminated "
					  "within %d bytes", path, i, ST_NAME_MAX);
		st_show(x->name, show, sizeof show);
		if (st_text_check((const unsigned char *)x->name, strlen(x->name), 0) != strlen(x->name))
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": name is not valid UTF-8",
					  path, show);
		if (strcmp(x->name, "__metadata__") == 0)
			return nl_err_set(err, NL_EINVAL, "%s: \"__metadata__\" is reserved and cannot "
					  "name a tensor", path);
		es = memchr(x->dtype, '\0', sizeof x->dtype) ? st_dtype_size(x->dtype) : 0;
		if (es == 0)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": unsupported dtype (want F32, "
					  "F64, I32, I64 or U8)", path, show);
		if (x->ndim < 0 || x->ndim > ST_MAX_DIMS)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": ndim %d is outside 0..%d",
					  path, show, x->ndim, ST_MAX_DIMS);
		for (d = 0; d < x->ndim; d++)
			if (x->shape[d] < 0 || (uint64_t)x->shape[d] > ST_JSON_INT_MAX)
				return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": dimension %d is %" PRId64
						  ", outside 0..2^53", path, show, d, x->shape[d]);
		st_show_shape(x->shape, x->ndim, sh, sizeof sh);
		if (st_shape_bytes(x->shape, x->ndim, es, &bytes) != 0)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": shape %s overflows 64 bits",
					  path, show, sh);
		if (bytes != (uint64_t)x->nbytes)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": nbytes is %zu but shape %s "
					  "of %s needs %" PRIu64, path, show, x->nbytes, sh, x->dtype, bytes);
		if (x->nbytes > 0 && !x->data)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": data is NULL", path, show);
		/*
		 * Tensors are laid out back to back in the caller's order, and the reader hands out
		 * pointers a caller will cast to float* or double*; so each must start at a multiple of
		 * its element size. Writing wider dtypes first (as the Python library does) always works.
		 */
		if (off % es != 0)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\" would start at data byte %"
					  PRIu64 ", not a multiple of its %s size %zu; write wider dtypes first",
					  path, show, off, x->dtype, es);
		if (bytes > ST_DATA_MAX - off)
			return nl_err_set(err, NL_ELIMIT, "%s: tensors exceed the %" PRIu64 "-byte data "
					  "limit at \"%s\"", path, ST_DATA_MAX, show);
		off += bytes;
	}
	for (i = 0; i < n_meta; i++) {
		const char *k = meta[i].key, *v = meta[i].value;
		if (!k || !v || !*k)
			return nl_err_set(err, NL_EINVAL, "%s: metadata %d: key is empty or NULL, or value "
					  "is NULL", path, i);
		if (st_text_check((const unsigned char *)k, strlen(k), 0) != strlen(k) ||
		    st_text_check((const unsigned char *)v, strlen(v), 0) != strlen(v))
			return nl_err_set(err, NL_EINVAL, "%s: metadata \"%s\": key or value is not valid "
					  "UTF-8", path, st_show(k, show, sizeof show));
	}

	names = nl_malloc(sizeof *names * (size_t)(n > n_meta ? n : n_meta));
	if (!names)
		return nl_err_set(err, NL_ENOMEM, "%s: out of memory", path);
	for (i = 0; i < n; i++)
		names[i] = t[i].name;
	j = st_sorted_dup(names, n);
	if (j >= 0) {
		rc = nl_err_set(err, NL_EINVAL, "%s: tensor name \"%s\" appears twice", path,
				st_show(names[j], show, sizeof show));
		goto out;
	}
	for (i = 0; i < n_meta; i++)
		names[i] = meta[i].key;
	j = st_sorted_dup(names, n_meta);
	if (j >= 0) {
		rc = nl_err_set(err, NL_EINVAL, "%s: metadata key \"%s\" appears twice", path,
				st_show(names[j], show, sizeof show));
		goto out;
	}
out:
	nl_free(names);
	return rc;
}

/* Adds [a, b, ...] of exact unsigned integers (not via double, so nothing prints as 1e+15). */
static int st_add_ints(cJSON *obj, const char *key, const uint64_t *v, int n)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);
	char num[24];
	int i;

	if (!arr)
		return -1;
	for (i = 0; i < n; i++) {
		cJSON *item;
		snprintf(num, sizeof num, "%" PRIu64, v[i]);
		item = cJSON_CreateRaw(num);
		if (!item || !cJSON_AddItemToArray(arr, item)) {
			cJSON_Delete(item);
			return -1;
		}
	}
	return 0;
}

/* The JSON header as cJSON text (free with cJSON_free), or NULL when memory runs out. */
static char *st_build_header(const struct st_tensor *t, int n, const struct st_meta *meta,
			     int n_meta)
{
	cJSON *root = cJSON_CreateObject(), *m, *o;
	char *text = NULL;
	uint64_t off = 0, v[ST_MAX_DIMS];
	int i, d;

	if (!root)
		return NULL;
	if (n_meta > 0) {
		m = cJSON_AddObjectToObject(root, "__metadata__");
		if (!m)
			goto out;
		for (i = 0; i < n_meta; i++)
			if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value))
				goto out;
	}
	for (i = 0; i < n; i++) {
		o = cJSON_AddObjectToObject(root, t[i].name);
		if (!o || !cJSON_AddStringToObject(o, "dtype", t[i].dtype))
			goto out;
		for (d = 0; d < t[i].ndim; d++)
			v[d] = (uint64_t)t[i].shape[d];
		if (st_add_ints(o, "shape", v, t[i].ndim) != 0)
			goto out;
		v[0] = off;
		v[1] = off + t[i].nbytes;
		if (st_add_ints(o, "data_offsets", v, 2) != 0)
			goto out;
		off += t[i].nbytes;
	}
	text = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return text;
}

/*
 * Makes the rename durable. Best effort: the new file is already complete and in place when this
 * runs, so failing st_write here would report a write that happened; and some file systems refuse
 * fsync on a directory.
 */
static void st_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	if (!slash) {
		nl_strlcpy(dir, ".", sizeof dir);
	} else if (slash == path) {
		nl_strlcpy(dir, "/", sizeof dir);
	} else {
		if ((size_t)(slash - path) >= sizeof dir)
			return;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

int st_write(const char *path, const struct st_tensor *t, int n,
	     const struct st_meta *meta, int n_meta, struct nl_err *err)
{
	static const char spaces[9] = "        ";
	unsigned char prefix[8];
	char *header = NULL, *tmp = NULL, ebuf[128];
	const char *what = NULL, *who = NULL;
	FILE *fp = NULL;
	uint64_t hlen;
	size_t len, pad, plen;
	int rc, created = 0, e = 0, i;

	if (!path || !*path || n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta))
		return nl_err_set(err, NL_EINVAL, "st_write: bad arguments (path, counts or arrays)");
	rc = st_check_input(path, t, n, meta, n_meta, err);
	if (rc)
		return rc;

	header = st_build_header(t, n, meta, n_meta);
	if (!header) {
		rc = nl_err_set(err, NL_ENOMEM, "%s: out of memory building the header", path);
		goto out;
	}
	len = strlen(header);
	pad = (8 - (8 + len) % 8) % 8;   /* spaces, so the tensor bytes start 8-byte aligned */
	hlen = (uint64_t)len + pad;
	if (hlen > ST_HEADER_MAX) {
		rc = nl_err_set(err, NL_ELIMIT, "%s: header is %" PRIu64 " bytes, over the %u-byte "
				"limit", path, hlen, ST_HEADER_MAX);
		goto out;
	}
	for (i = 0; i < 8; i++)
		prefix[i] = (unsigned char)(hlen >> (8 * i));

	plen = strlen(path) + sizeof ".tmp";
	tmp = nl_malloc(plen);
	if (!tmp) {
		rc = nl_err_set(err, NL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	snprintf(tmp, plen, "%s.tmp", path);

	who = tmp;
	fp = fopen(tmp, "wb");
	if (!fp) {
		e = errno;
		what = "cannot create";
		goto io_fail;
	}
	created = 1;
	what = "write failed";
	if (fwrite(prefix, 1, 8, fp) != 8 || fwrite(header, 1, len, fp) != len ||
	    fwrite(spaces, 1, pad, fp) != pad) {
		e = errno;
		goto io_fail;
	}
	for (i = 0; i < n; i++)
		if (t[i].nbytes && fwrite(t[i].data, 1, t[i].nbytes, fp) != t[i].nbytes) {
			e = errno;
			goto io_fail;
		}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		e = errno;
		goto io_fail;
	}
	i = fclose(fp);
	fp = NULL;
	if (i != 0) {
		e = errno;
		goto io_fail;
	}
	if (rename(tmp, path) != 0) {
		e = errno;
		who = path;
		what = "cannot rename the temp file over it";
		goto io_fail;
	}
	created = 0;
	st_sync_dir(path);
	rc = 0;
	goto out;

io_fail:
	rc = nl_err_set(err, NL_EIO, "%s: %s: %s", who, what,
			st_strerror(e, ebuf, sizeof ebuf));
out:
	if (fp)
		fclose(fp);
	/* Only a file we created: a directory squatting on the temp name is someone else's. */
	if (created)
		remove(tmp);
	nl_free(tmp);
	cJSON_free(header);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Reads path into f->mem. The buffer is placed so that the byte after the header (8 + N) is
 * 8-byte aligned whatever N is, since files from elsewhere need not pad their header. Fills
 * *hdr and *hlen with the header bytes. f->mem has one spare byte, set to NUL, past the file.
 */
static int st_read_file(struct st_file *f, const char *path, const unsigned char **hdr,
			size_t *hlen, struct nl_err *err)
{
	unsigned char prefix[8];
	char ebuf[128];
	struct stat sb;
	uint64_t size, n = 0;
	size_t shift;
	FILE *fp;
	int rc = 0, i;

	fp = fopen(path, "rb");
	if (!fp)
		return nl_err_set(err, NL_EIO, "%s: cannot open: %s", path,
				  st_strerror(errno, ebuf, sizeof ebuf));
	if (fstat(fileno(fp), &sb) != 0) {
		rc = nl_err_set(err, NL_EIO, "%s: cannot stat: %s", path,
				st_strerror(errno, ebuf, sizeof ebuf));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = nl_err_set(err, NL_EINVAL, "%s: not a regular file", path);
		goto out;
	}
	size = (uint64_t)sb.st_size;
	if (size < 8) {
		rc = nl_err_set(err, NL_EINVAL, "%s: file is %" PRIu64 " bytes, too short for the "
				"8-byte header length (truncated file?)", path, size);
		goto out;
	}
	if (size > ST_FILE_MAX || size > SIZE_MAX - 16) {
		rc = nl_err_set(err, NL_ELIMIT, "%s: file is %" PRIu64 " bytes, over the %" PRIu64
				"-byte limit", path, size, ST_FILE_MAX);
		goto out;
	}
	if (fread(prefix, 1, 8, fp) != 8) {
		rc = nl_err_set(err, NL_EIO, "%s: read failed: %s", path,
				ferror(fp) ? st_strerror(errno, ebuf, sizeof ebuf) : "file shrank");
		goto out;
	}
	for (i = 0; i < 8; i++)
		n |= (uint64_t)prefix[i] << (8 * i);
	if (n > size - 8) {
		rc = nl_err_set(err, NL_EINVAL, "%s: header length %" PRIu64 " exceeds the %" PRIu64
				" bytes after the length prefix (truncated or not a safetensors file?)",
				path, n, size - 8);
		goto out;
	}
	if (n > ST_HEADER_MAX) {
		rc = nl_err_set(err, NL_ELIMIT, "%s: header is %" PRIu64 " bytes, over the %u-byte "
				"limit", path, n, ST_HEADER_MAX);
		goto out;
	}
	shift = (size_t)((8 - (8 + n) % 8) % 8);
	f->mem = nl_malloc((size_t)size + shift + 1);
	if (!f->mem) {
		rc = nl_err_set(err, NL_ENOMEM, "%s: out of memory for %" PRIu64 " bytes", path, size);
		goto out;
	}
	memcpy(f->mem + shift, prefix, 8);
	if (fread(f->mem + shift + 8, 1, (size_t)size - 8, fp) != (size_t)size - 8) {
		rc = nl_err_set(err, NL_EIO, "%s: read failed: %s", path,
				ferror(fp) ? st_strerror(errno, ebuf, sizeof ebuf)
				: "file shrank while being read");
		goto out;
	}
	f->mem[shift + size] = '\0';
	*hdr = f->mem + shift + 8;
	*hlen = (size_t)n;
	f->data = f->mem + shift + 8 + n;
	f->data_size = (size_t)(size - 8 - n);
out:
	fclose(fp);   /* read-only: nothing to lose if this fails */
	return rc;
}

/*
 * Checks the header text and parses it into *root. The spec wants an object starting right at
 * '{', optionally followed by padding; we accept the JSON whitespace characters as padding.
 */
static int st_parse_header(const char *path, const unsigned char *hdr, size_t hlen, cJSON **root,
			   struct nl_err *err)
{
	const char *end = NULL;
	size_t bad;
	cJSON *again;

	bad = st_text_check(hdr, hlen, 1);
	if (bad != hlen)
		return nl_err_set(err, NL_EINVAL, "%s: header byte %zu (0x%02x) is not valid UTF-8 "
				  "JSON text", path, bad, hdr[bad]);
	if (hlen == 0 || hdr[0] != '{')
		return nl_err_set(err, NL_EINVAL, "%s: header does not start with '{'", path);
	*root = cJSON_ParseWithLengthOpts((const char *)hdr, hlen, &end, 0);
	if (!*root) {
		/*
		 * cJSON returns NULL both for bad syntax and when its allocator fails. A second parse
		 * that succeeds tells the two apart (and makes the Nth-allocation tests exact); under
		 * lasting memory pressure it fails again and we blame the syntax, which is the rarer lie.
		 */
		again = cJSON_ParseWithLengthOpts((const char *)hdr, hlen, &end, 0);
		if (again) {
			cJSON_Delete(again);
			return nl_err_set(err, NL_ENOMEM, "%s: out of memory parsing the header", path);
		}
		bad = end ? (size_t)(end - (const char *)hdr) : 0;
		return nl_err_set(err, NL_EINVAL, "%s: header is not valid JSON (error near header "
				  "byte %zu)", path, bad);
	}
	if (!cJSON_IsObject(*root))
		return nl_err_set(err, NL_EINVAL, "%s: header is not a JSON object", path);
	for (bad = (size_t)(end - (const char *)hdr); bad < hlen; bad++)
		if (hdr[bad] != ' ' && hdr[bad] != '\t' && hdr[bad] != '\n' && hdr[bad] != '\r')
			return nl_err_set(err, NL_EINVAL, "%s: header has bytes after the JSON object "
					  "(at header byte %zu)", path, bad);
	return 0;
}

/* An exact non-negative integer no larger than 2^53 from a JSON number, or -1. */
static int st_json_u64(const cJSON *j, uint64_t *out)
{
	double v;

	if (!cJSON_IsNumber(j))
		return -1;
	v = j->valuedouble;
	if (!(v >= 0.0 && v <= (double)ST_JSON_INT_MAX))
		return -1;
	*out = (uint64_t)v;
	return (double)*out == v ? 0 : -1;
}

static int st_cmp_meta(const void *a, const void *b)
{
	return strcmp(((const struct st_meta *)a)->key, ((const struct st_meta *)b)->key);
}

static int st_take_meta(struct st_file *f, const char *path, const cJSON *m, struct nl_err *err)
{
	const cJSON *c;
	char show[ST_SHOW_MAX + 4], *pool;
	size_t total = 0, klen, vlen;
	int count = 0, i, j;

	if (!cJSON_IsObject(m))
		return nl_err_set(err, NL_EINVAL, "%s: \"__metadata__\" is not an object", path);
	cJSON_ArrayForEach(c, m) {
		if (!cJSON_IsString(c))
			return nl_err_set(err, NL_EINVAL, "%s: metadata \"%s\": value is not a string",
					  path, st_show(c->string, show, sizeof show));
		total += strlen(c->string) + strlen(c->valuestring) + 2;
		count++;
	}
	/* One block: the st_meta array, then the strings it points to. */
	f->meta = nl_malloc(sizeof *f->meta * (size_t)count + total);
	if (!f->meta)
		return nl_err_set(err, NL_ENOMEM, "%s: out of memory", path);
	pool = (char *)(f->meta + count);
	i = 0;
	cJSON_ArrayForEach(c, m) {
		klen = strlen(c->string) + 1;
		vlen = strlen(c->valuestring) + 1;
		memcpy(pool, c->string, klen);
		f->meta[i].key = pool;
		pool += klen;
		memcpy(pool, c->valuestring, vlen);
		f->meta[i].value = pool;
		pool += vlen;
		i++;
	}
	f->n_meta = count;
	if (count > 1)
		qsort(f->meta, (size_t)count, sizeof *f->meta, st_cmp_meta);
	for (j = 1; j < count; j++)
		if (strcmp(f->meta[j - 1].key, f->meta[j].key) == 0)
			return nl_err_set(err, NL_EINVAL, "%s: metadata key \"%s\" appears twice", path,
					  st_show(f->meta[j].key, show, sizeof show));
	return 0;
}

/* Validates one header entry against the data size and fills *x (data points into f->data). */
static int st_take_tensor(struct st_file *f, const char *path, const cJSON *e,
			  struct st_tensor *x, struct nl_err *err)
{
	const cJSON *dt, *sh, *off, *c;
	char show[ST_SHOW_MAX + 4], shs[128];
	uint64_t v, b, end, bytes;
	size_t es, nlen = strlen(e->string);

	st_show(e->string, show, sizeof show);
	if (nlen == 0)
		return nl_err_set(err, NL_EINVAL, "%s: a tensor has an empty name", path);
	if (nlen >= ST_NAME_MAX)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": name is %zu bytes, over the "
				  "%d-byte limit", path, show, nlen, ST_NAME_MAX - 1);
	if (!cJSON_IsObject(e))
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": entry is not an object", path,
				  show);
	dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
	sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
	off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
	if (!cJSON_IsString(dt))
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": \"dtype\" is missing or not a "
				  "string", path, show);
	es = st_dtype_size(dt->valuestring);
	if (es == 0) {
		char dshow[ST_SHOW_MAX + 4];
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": unsupported dtype \"%s\" (want "
				  "F32, F64, I32, I64 or U8)", path, show,
				  st_show(dt->valuestring, dshow, 16));
	}
	if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > ST_MAX_DIMS)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": \"shape\" is missing, not an "
				  "array, or has more than %d dimensions", path, show, ST_MAX_DIMS);
	x->ndim = 0;
	cJSON_ArrayForEach(c, sh) {
		if (st_json_u64(c, &v) != 0)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": shape dimension %d is not an "
					  "integer in 0..2^53", path, show, x->ndim);
		x->shape[x->ndim++] = (int64_t)v;
	}
	st_show_shape(x->shape, x->ndim, shs, sizeof shs);
	if (st_shape_bytes(x->shape, x->ndim, es, &bytes) != 0)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": shape %s overflows 64 bits", path,
				  show, shs);
	if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
	    st_json_u64(off->child, &b) != 0 || st_json_u64(off->child->next, &end) != 0)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": \"data_offsets\" is not a pair "
				  "of integers in 0..2^53", path, show);
	if (b > end)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": data_offsets [%" PRIu64 ",%" PRIu64
				  "] end before they begin", path, show, b, end);
	if (end > f->data_size)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": data_offsets [%" PRIu64 ",%" PRIu64
				  "] exceed the %zu data bytes (truncated file?)", path, show, b, end,
				  f->data_size);
	if (end - b != bytes)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": shape %s of %s needs %" PRIu64
				  " bytes but data_offsets [%" PRIu64 ",%" PRIu64 "] hold %" PRIu64, path,
				  show, shs, dt->valuestring, bytes, b, end, end - b);
	/* So the pointer we hand out can be used as float* / double* (see st_check_input). */
	if (b % es != 0)
		return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": data_offsets begin %" PRIu64
				  " is not a multiple of the %s size %zu", path, show, b,
				  dt->valuestring, es);
	nl_strlcpy(x->name, e->string, sizeof x->name);
	nl_strlcpy(x->dtype, dt->valuestring, sizeof x->dtype);
	x->data = f->data + b;
	x->nbytes = (size_t)bytes;
	return 0;
}

/* File order; ties (zero-byte tensors) by size, then name, so the order is deterministic. */
static int st_cmp_offset(const void *pa, const void *pb)
{
	const struct st_tensor *a = pa, *b = pb;
	const unsigned char *da = a->data, *db = b->data;

	if (da != db)
		return da < db ? -1 : 1;
	if (a->nbytes != b->nbytes)
		return a->nbytes < b->nbytes ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int st_cmp_name(const void *pa, const void *pb)
{
	const struct st_tensor *a = *(const struct st_tensor *const *)pa;
	const struct st_tensor *b = *(const struct st_tensor *const *)pb;

	return strcmp(a->name, b->name);
}

/* The spec: tensors cover the data buffer exactly, with no gaps and no overlaps. */
static int st_check_layout(const struct st_file *f, const char *path, struct nl_err *err)
{
	char show[ST_SHOW_MAX + 4], prev[ST_SHOW_MAX + 4];
	size_t at = 0, b;
	int i;

	for (i = 0; i < f->n; i++) {
		const struct st_tensor *x = &f->t[i];
		b = (size_t)((const unsigned char *)x->data - f->data);
		if (b < at)
			return nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\": data_offsets [%zu,%zu] "
					  "overlap tensor \"%s\", which ends at %zu", path,
					  st_show(x->name, show, sizeof show), b, b + x->nbytes,
					  st_show(f->t[i - 1].name, prev, sizeof prev), at);
		if (b > at)
			return nl_err_set(err, NL_EINVAL, "%s: data bytes [%zu,%zu) before tensor \"%s\" "
					  "belong to no tensor", path, at, b,
					  st_show(x->name, show, sizeof show));
		at = b + x->nbytes;
	}
	if (at != f->data_size)
		return nl_err_set(err, NL_EINVAL, "%s: data bytes [%zu,%zu) after the last tensor "
				  "belong to no tensor", path, at, f->data_size);
	return 0;
}

int st_open(struct st_file **out, const char *path, struct nl_err *err)
{
	struct st_file *f = NULL;
	const unsigned char *hdr = NULL;
	const cJSON *c, *meta = NULL;
	cJSON *root = NULL;
	char show[ST_SHOW_MAX + 4];
	size_t hlen = 0;
	int rc, count, i;

	if (!out || !path)
		return nl_err_set(err, NL_EINVAL, "st_open: NULL argument");
	*out = NULL;
	f = nl_calloc(1, sizeof *f);
	if (!f)
		return nl_err_set(err, NL_ENOMEM, "%s: out of memory", path);
	rc = st_read_file(f, path, &hdr, &hlen, err);
	if (rc)
		goto out;
	rc = st_parse_header(path, hdr, hlen, &root, err);
	if (rc)
		goto out;

	count = cJSON_GetArraySize(root);
	f->t = nl_calloc((size_t)count, sizeof *f->t);
	if (!f->t) {
		rc = nl_err_set(err, NL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	cJSON_ArrayForEach(c, root) {
		if (strcmp(c->string, "__metadata__") == 0) {
			if (meta) {
				rc = nl_err_set(err, NL_EINVAL, "%s: \"__metadata__\" appears twice", path);
				goto out;
			}
			meta = c;
			rc = st_take_meta(f, path, c, err);
		} else {
			rc = st_take_tensor(f, path, c, &f->t[f->n], err);
			f->n++;
		}
		if (rc)
			goto out;
	}
	if (f->n > 1)
		qsort(f->t, (size_t)f->n, sizeof *f->t, st_cmp_offset);

	f->by_name = nl_malloc(sizeof *f->by_name * (size_t)(f->n ? f->n : 1));
	if (!f->by_name) {
		rc = nl_err_set(err, NL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (i = 0; i < f->n; i++)
		f->by_name[i] = &f->t[i];
	if (f->n > 1)
		qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, st_cmp_name);
	for (i = 1; i < f->n; i++)
		if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
			rc = nl_err_set(err, NL_EINVAL, "%s: tensor \"%s\" appears twice", path,
					st_show(f->by_name[i]->name, show, sizeof show));
			goto out;
		}
	rc = st_check_layout(f, path, err);
out:
	cJSON_Delete(root);
	if (rc)
		st_close(f);
	else
		*out = f;
	return rc;
}

void st_close(struct st_file *f)
{
	if (!f)
		return;
	nl_free(f->by_name);
	nl_free(f->meta);
	nl_free(f->t);
	nl_free(f->mem);
	nl_free(f);
}

int st_count(const struct st_file *f)
{
	return f ? f->n : 0;
}

const struct st_tensor *st_get(const struct st_file *f, int i)
{
	if (!f || i < 0 || i >= f->n)
		return NULL;
	return &f->t[i];
}

static int st_cmp_key_tensor(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct st_tensor *const *)elem)->name);
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
	const struct st_tensor *const *hit;

	if (!f || !name || f->n == 0)
		return NULL;
	hit = bsearch(name, f->by_name, (size_t)f->n, sizeof *f->by_name, st_cmp_key_tensor);
	return hit ? *hit : NULL;
}

static int st_cmp_key_meta(const void *key, const void *elem)
{
	return strcmp(key, ((const struct st_meta *)elem)->key);
}

const char *st_meta_get(const struct st_file *f, const char *key)
{
	const struct st_meta *hit;

	if (!f || !key || f->n_meta == 0)
		return NULL;
	hit = bsearch(key, f->meta, (size_t)f->n_meta, sizeof *f->meta, st_cmp_key_meta);
	return hit ? hit->value : NULL;
}
