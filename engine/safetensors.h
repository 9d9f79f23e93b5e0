/*
 * safetensors.h — read and write the safetensors format: an 8-byte little-endian header length,
 * a JSON header {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}},
 * then the raw little-endian tensor bytes. Writes are atomic (temp file, fsync, rename).
 * The reader loads the whole file and checks every offset, shape and dtype against the file size
 * before handing out a pointer, so a truncated or hostile file is an error, never a crash.
 * Thread-safe: no shared state.
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "nl.h"

#define ST_NAME_MAX 160
#define ST_MAX_DIMS 4
#define ST_HEADER_MAX (64u << 20)   /* a header over 64 MiB is rejected */

struct st_tensor {
	char name[ST_NAME_MAX];
	char dtype[8];              /* "F32", "F64", "I32", "I64", "U8" */
	int ndim;                   /* 0..ST_MAX_DIMS (0 = scalar) */
	int64_t shape[ST_MAX_DIMS];
	const void *data;           /* borrowed: writer reads it, reader points into the file */
	size_t nbytes;
};

struct st_meta {
	const char *key;            /* borrowed */
	const char *value;          /* borrowed */
};

/* Bytes per element of dtype, or 0 if unknown. */
size_t st_dtype_size(const char *dtype);

/*
 * Writes n tensors and n_meta metadata pairs to path atomically (path + ".tmp", fsync, rename).
 * Each tensor's nbytes must equal its shape product times the dtype size. Returns 0 or a negative
 * nl_code with err filled.
 */
int st_write(const char *path, const struct st_tensor *t, int n,
	     const struct st_meta *meta, int n_meta, struct nl_err *err);

struct st_file;   /* opaque; owns the file bytes and the parsed tensor list */

/* Loads and validates path. On success *out is owned by the caller: free with st_close. */
int st_open(struct st_file **out, const char *path, struct nl_err *err);
void st_close(struct st_file *f);

int st_count(const struct st_file *f);
/* Tensor i (0..count-1), in file order of data_offsets. Borrowed from f. */
const struct st_tensor *st_get(const struct st_file *f, int i);
/* Tensor by name, or NULL. Borrowed from f. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);
/* Metadata value for key, or NULL. Borrowed from f. */
const char *st_meta_get(const struct st_file *f, const char *key);

#endif
