/*
 * dataset.h — named data sources for normlabd (issue 9). A daemon spec never names a file on the
 * server: its data.path is a dataset name an admin registered, the built-in "kjv", or a relative
 * path inside one of the admin's data roots (data_dir, then each of data_dirs). Everything else —
 * absolute paths, '.', '..' or empty segments, symlinks that leave the root, anything that is
 * not a regular file — is refused, with one message that says nothing about files outside the
 * roots. Files are opened beneath a root with openat2(RESOLVE_BENEATH) (or, where the kernel
 * lacks it, component by component with O_NOFOLLOW), so a symlink swapped in between a check
 * and the open cannot lead out: the run reads the very file descriptor that was checked.
 *
 * Content hashes (SHA-256) are computed once per file version, streamed in chunks (never read
 * whole into memory) and cached by the file's identity (device, inode, size, mtime, ctime).
 *
 * Owns: the roots, a mirror of the registered names (the store's datasets table, loaded at start
 * and updated by the API after each committed change) and the hash cache. Thread-safe: HTTP
 * threads and the scheduler's loop share one struct datasets; one mutex guards the mirror and the
 * cache, and no file I/O happens under it.
 */
#ifndef DATASET_H
#define DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "store.h"

#define DATASET_ROOTS_MAX 16
#define DATASET_NAME_MAX 64         /* a registered name: [A-Za-z0-9._-], not starting with '.' */
#define DATASET_LIST_MAX 1000       /* files listed over all roots */
#define DATASET_DEFAULT "kjv"       /* resolves to kjv.txt unless an admin registered the name */

struct datasets;

/* One resolved dataset. */
struct dataset_file {
	char name[SPEC_PATH_MAX];   /* what the spec said (a name or a relative path) */
	char rel[SPEC_PATH_MAX];    /* the file, relative to its root */
	int root;                   /* index into the roots, in resolution order */
	int registered;             /* name came from the registry (or is the built-in default) */
	uint64_t bytes;
	char sha256[65];            /* "" when not computed (the file is over the caller's cap) */
};

/*
 * Builds the set from the first root `data_dir` and a colon-separated list of more roots
 * (may be NULL or ""); duplicates are dropped. Roots need not exist yet (an empty root holds
 * nothing). max_run_bytes: a file larger than this is not hashed at submit (the run is refused
 * for its size anyway). Returns 0, or NL_EINVAL / NL_ENOMEM with errbuf filled.
 */
int datasets_new(struct datasets **out, const char *data_dir, const char *data_dirs,
		 uint64_t max_run_bytes, char *errbuf, size_t cap);
void datasets_free(struct datasets *ds);

/*
 * The daemon's own files, never served as a corpus even when an admin puts a data root around
 * them (data_dir = "var"): DATASET_DENY_FILE one file, DATASET_DENY_DB a database and its
 * -wal/-shm/-journal companions, DATASET_DENY_DIR everything below a directory (runs_dir).
 * Compared by real path (via /proc/self/fd) after the open, so symlinks and hard-to-spot
 * spellings do not get around it. path is copied. Call before any thread uses ds.
 */
enum dataset_deny { DATASET_DENY_FILE, DATASET_DENY_DB, DATASET_DENY_DIR };
int datasets_deny(struct datasets *ds, const char *path, enum dataset_deny kind);

/* Loads the registry mirror from a store connection (borrowed). */
int datasets_load(struct datasets *ds, struct store *s, struct store_err *err);
/* Updates the mirror after the store committed a registration (path) or a removal (path NULL). */
int datasets_mirror(struct datasets *ds, const char *name, const char *path);

int datasets_n_roots(const struct datasets *ds);

/* 0 if name can be registered, else NL_EINVAL with msg saying what a name may hold. */
int dataset_name_check(const char *name, char *msg, size_t cap);
/* 0 if rel is a relative path a spec or a registration may use, else NL_EINVAL with msg. The
 * check is on the text alone: it never touches the file system. */
int dataset_rel_check(const char *rel, char *msg, size_t cap);

/*
 * Resolves what a spec's data.path names (registered name, "kjv", or relative path) and opens
 * it read-only beneath its root. On success returns an open fd (the caller closes it) and fills
 * f, hashing the file unless hash == 0 or it is over max_run_bytes. On failure returns a
 * negative nl_code and writes to msg a message that names only what the user gave: the same
 * words for a file that does not exist, one outside the roots, a symlink out of a root and a
 * file that is not regular.
 */
int datasets_open(struct datasets *ds, const char *name, int hash, struct dataset_file *f,
		  char *msg, size_t cap);

/* Opens rel itself (no registry lookup), beneath the first root that holds it. As above. */
int datasets_open_rel(struct datasets *ds, const char *rel, int hash, struct dataset_file *f,
		      char *msg, size_t cap);

/*
 * The spec_data_fn for spec_parse (ctx = struct datasets *): resolves data.path, checks the
 * corpus splits into train/validation for the spec's seq_len, fills data.bytes and data.sha256
 * (or refuses at /data/sha256 when the spec pins another content).
 */
int datasets_spec_resolve(void *ctx, struct spec *s, struct spec_error *e);

/* spec_limits for parsing a daemon spec: max_bytes plus the resolver above. */
void datasets_limits(struct datasets *ds, uint64_t max_bytes, struct spec_limits *lim);

/*
 * Every dataset: each registered name (and the built-in default) that resolves, then each
 * regular file in the roots (hidden names skipped, a file shadowed by an earlier root skipped),
 * at most DATASET_LIST_MAX. cb gets each resolved file; a nonzero return stops. Returns the
 * count or a negative nl_code.
 */
int datasets_list(struct datasets *ds, int (*cb)(void *ctx, const struct dataset_file *f),
		  void *ctx);

#endif
