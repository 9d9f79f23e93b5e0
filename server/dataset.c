/*
 * dataset.c — named data sources inside the admin's data roots (see dataset.h): the text checks
 * on names and relative paths, the open beneath a root, the hash cache, the registry mirror and
 * the listing. Messages shown to users come from three fixed texts (bad syntax, not found, not
 * readable) plus the user's own words, so nothing about a file outside the roots can leak
 * through them.
 */
#define _GNU_SOURCE   /* syscall(), for openat2 */
#include "dataset.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "data.h"
#include "nl.h"
#include "sha256.h"

#define CACHE_MAX 1024
#define HASH_CHUNK (1 << 20)
#define LIST_DEPTH_MAX 8

struct reg {
	char name[DATASET_NAME_MAX + 1];
	char *rel;                          /* owned */
};

struct hash_entry {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char sha256[65];
};

#define DENY_MAX 8

struct deny {
	char *path;                         /* owned, as configured */
	enum dataset_deny kind;
};

struct datasets {
	struct deny deny[DENY_MAX];         /* fixed after start */
	int n_deny;
	int n_roots;
	char *roots[DATASET_ROOTS_MAX];     /* owned; fixed after datasets_new */
	uint64_t max_bytes;
	pthread_mutex_t mu;                 /* guards everything below */
	struct reg *regs;                   /* owned array, n_regs used */
	int n_regs, cap_regs;
	struct hash_entry cache[CACHE_MAX];
	int n_cache, next_evict;
};

/* ---- text checks ---- */

int dataset_name_check(const char *name, char *msg, size_t cap)
{
	size_t n = strlen(name);
	if (n == 0 || n > DATASET_NAME_MAX || name[0] == '.' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n) {
		snprintf(msg, cap, "a dataset name is 1..%d letters, digits, '.', '_' or '-', not "
			 "starting with '.'", DATASET_NAME_MAX);
		return NL_EINVAL;
	}
	return 0;
}

int dataset_rel_check(const char *rel, char *msg, size_t cap)
{
	const char *p = rel;
	int bad = !*rel || *rel == '/' || strlen(rel) >= SPEC_PATH_MAX;
	while (!bad && *p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			bad = 1;
		for (size_t i = 0; i < n && !bad; i++)
			bad = (unsigned char)p[i] < 0x20 || p[i] == 0x7f;
		p += n + (e != NULL);
		if (e && !*p)
			bad = 1;   /* a trailing '/' names a directory */
	}
	if (bad) {
		snprintf(msg, cap, "must name a dataset (GET /api/v1/datasets lists them) or a relative "
			 "path inside a data root; absolute paths and '.', '..' or empty segments are "
			 "not allowed");
		return NL_EINVAL;
	}
	return 0;
}

static void not_found(const char *name, char *msg, size_t cap)
{
	snprintf(msg, cap, "no dataset \"%.200s\" in the data roots (GET /api/v1/datasets lists "
		 "them)", name);
}

/* ---- opening beneath a root ---- */

/* Fallback for kernels without openat2: every component opened with O_NOFOLLOW, so no symlink
 * is followed at all (stricter than RESOLVE_BENEATH, never looser). rel passed dataset_rel_check. */
static int open_walk(int rootfd, const char *rel, int flags)
{
	char comp[SPEC_PATH_MAX];
	int dfd = dup(rootfd);
	const char *p = rel;
	while (dfd >= 0) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		int fd = openat(dfd, comp, e ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
				: flags | O_NOFOLLOW);
		int saved = errno;
		close(dfd);
		errno = saved;
		if (!e || fd < 0)
			return fd;
		dfd = fd;
		p = e + 1;
	}
	return -1;
}

static int open_beneath(int rootfd, const char *rel)
{
	/* O_NONBLOCK: opening a FIFO someone left in a root must not hang the caller */
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct open_how how = { .flags = (uint64_t)flags,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	for (int tries = 0; tries < 8; tries++) {
		long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno == EAGAIN)   /* a rename raced the lookup: the kernel asks to retry */
			continue;
		if (errno == ENOSYS || errno == EPERM)   /* old kernel, or a seccomp filter */
			return open_walk(rootfd, rel, flags);
		return -1;
	}
	return -1;
}

/* ---- the daemon's own files ---- */

int datasets_deny(struct datasets *ds, const char *path, enum dataset_deny kind)
{
	if (!path || !*path)
		return 0;
	if (ds->n_deny == DENY_MAX)
		return NL_ELIMIT;
	char *p = nl_strdup(path);
	if (!p)
		return NL_ENOMEM;
	ds->deny[ds->n_deny].path = p;
	ds->deny[ds->n_deny].kind = kind;
	ds->n_deny++;
	return 0;
}

/* 1 if path names the same inode as st (a hard link to a denied file has another path). */
static int same_inode(const char *path, const struct stat *st)
{
	struct stat ps;
	return stat(path, &ps) == 0 && ps.st_dev == st->st_dev && ps.st_ino == st->st_ino;
}

/* 1 if the file open on fd (st: its fstat) is one of the denied ones (or cannot be told apart
 * from them). */
static int denied(const struct datasets *ds, int fd, const struct stat *st)
{
	char link[64], got[PATH_MAX], want[PATH_MAX];
	if (ds->n_deny == 0)
		return 0;
	for (int i = 0; i < ds->n_deny; i++) {
		static const char *const db_ext[] = { "", "-wal", "-shm", "-journal", ".reserve", NULL };
		if (ds->deny[i].kind == DATASET_DENY_DIR)
			continue;
		for (int k = 0; db_ext[k] && (k == 0 || ds->deny[i].kind == DATASET_DENY_DB); k++) {
			snprintf(want, sizeof want, "%s%s", ds->deny[i].path, db_ext[k]);
			if (same_inode(want, st))
				return 1;
		}
	}
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, got, sizeof got - 1);
	if (n <= 0)
		return 1;   /* fail closed: no way to tell where the file is */
	got[n] = '\0';
	for (int i = 0; i < ds->n_deny; i++) {
		/* resolved each time: the db's -wal or the tokens file may appear after the start */
		if (!realpath(ds->deny[i].path, want))
			continue;
		size_t w = strlen(want);
		switch (ds->deny[i].kind) {
		case DATASET_DENY_FILE:
			if (strcmp(got, want) == 0)
				return 1;
			break;
		case DATASET_DENY_DB:
			if (strncmp(got, want, w) == 0 && (got[w] == '\0' || got[w] == '-'))
				return 1;
			break;
		case DATASET_DENY_DIR:
			if (strncmp(got, want, w) == 0 && (got[w] == '\0' || got[w] == '/' ||
							    (w == 1 && want[0] == '/')))
				return 1;
			break;
		}
	}
	return 0;
}

/* ---- the hash cache ---- */

static int same_version(const struct hash_entry *h, const struct stat *st)
{
	return h->dev == st->st_dev && h->ino == st->st_ino && h->size == st->st_size &&
	       h->mtime.tv_sec == st->st_mtim.tv_sec && h->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       h->ctime.tv_sec == st->st_ctim.tv_sec && h->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static int cache_get(struct datasets *ds, const struct stat *st, char out[65])
{
	int hit = 0;
	pthread_mutex_lock(&ds->mu);
	for (int i = 0; i < ds->n_cache && !hit; i++)
		if (same_version(&ds->cache[i], st)) {
			memcpy(out, ds->cache[i].sha256, 65);
			hit = 1;
		}
	pthread_mutex_unlock(&ds->mu);
	return hit;
}

static void cache_put(struct datasets *ds, const struct stat *st, const char sha[65])
{
	pthread_mutex_lock(&ds->mu);
	int slot = -1;
	for (int i = 0; i < ds->n_cache; i++)
		if (ds->cache[i].dev == st->st_dev && ds->cache[i].ino == st->st_ino)
			slot = i;   /* an older version of the same file: replace it */
	if (slot < 0 && ds->n_cache < CACHE_MAX)
		slot = ds->n_cache++;
	if (slot < 0) {
		slot = ds->next_evict;
		ds->next_evict = (ds->next_evict + 1) % CACHE_MAX;
	}
	struct hash_entry *h = &ds->cache[slot];
	h->dev = st->st_dev;
	h->ino = st->st_ino;
	h->size = st->st_size;
	h->mtime = st->st_mtim;
	h->ctime = st->st_ctim;
	memcpy(h->sha256, sha, 65);
	pthread_mutex_unlock(&ds->mu);
}

/* Streams the file in chunks: a corpus is never in the daemon's heap whole. */
static int hash_fd(int fd, uint64_t n, char out[65])
{
	struct sha256_ctx c;
	uint8_t d[SHA256_LEN];
	uint8_t *buf = nl_malloc(HASH_CHUNK);
	uint64_t off = 0;
	if (!buf)
		return NL_ENOMEM;
	sha256_init(&c);
	while (off < n) {
		size_t want = n - off < HASH_CHUNK ? (size_t)(n - off) : HASH_CHUNK;
		ssize_t k = pread(fd, buf, want, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			nl_free(buf);
			return NL_EIO;
		}
		sha256_update(&c, buf, (size_t)k);
		off += (uint64_t)k;
	}
	nl_free(buf);
	sha256_final(&c, d);
	sha256_hex(d, out);
	return 0;
}

/* ---- resolving ---- */

int datasets_open_rel(struct datasets *ds, const char *rel, int hash, struct dataset_file *f,
		      char *msg, size_t cap)
{
	struct stat st;
	int fd = -1;
	if (dataset_rel_check(rel, msg, cap) != 0)
		return NL_EINVAL;
	for (int i = 0; i < ds->n_roots && fd < 0; i++) {
		int rootfd = open(ds->roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			continue;
		fd = open_beneath(rootfd, rel);
		close(rootfd);
		if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || denied(ds, fd, &st))) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0)
			f->root = i;
	}
	if (fd < 0) {
		not_found(f->name[0] ? f->name : rel, msg, cap);
		return NL_EINVAL;
	}
	nl_strlcpy(f->rel, rel, sizeof f->rel);
	f->bytes = (uint64_t)st.st_size;
	f->sha256[0] = '\0';
	if (hash && f->bytes <= ds->max_bytes && f->bytes <= DATA_MAX_BYTES &&
	    !cache_get(ds, &st, f->sha256)) {
		int rc = hash_fd(fd, f->bytes, f->sha256);
		if (rc != 0) {
			close(fd);
			snprintf(msg, cap, "dataset \"%.200s\" could not be read", f->name[0] ? f->name : rel);
			return rc;
		}
		cache_put(ds, &st, f->sha256);
	}
	return fd;
}

int datasets_open(struct datasets *ds, const char *name, int hash, struct dataset_file *f,
		  char *msg, size_t cap)
{
	char rel[SPEC_PATH_MAX] = "";
	memset(f, 0, sizeof *f);
	if (dataset_rel_check(name, msg, cap) != 0)
		return NL_EINVAL;
	nl_strlcpy(f->name, name, sizeof f->name);
	pthread_mutex_lock(&ds->mu);
	for (int i = 0; i < ds->n_regs; i++)
		if (strcmp(ds->regs[i].name, name) == 0) {
			nl_strlcpy(rel, ds->regs[i].rel, sizeof rel);
			f->registered = 1;
		}
	pthread_mutex_unlock(&ds->mu);
	if (!rel[0] && strcmp(name, DATASET_DEFAULT) == 0) {
		snprintf(rel, sizeof rel, "%s.txt", DATASET_DEFAULT);
		f->registered = 1;
	}
	if (!rel[0])
		nl_strlcpy(rel, name, sizeof rel);
	return datasets_open_rel(ds, rel, hash, f, msg, cap);
}

int datasets_spec_resolve(void *ctx, struct spec *s, struct spec_error *e)
{
	struct datasets *ds = ctx;
	struct dataset_file f;
	struct nl_err err = { 0 };
	int fd = datasets_open(ds, s->data.path, 1, &f, e->msg, sizeof e->msg);
	if (fd < 0)
		return fd;
	close(fd);
	nl_strlcpy(e->pointer, "/data/path", sizeof e->pointer);
	if (data_check_size(f.bytes, s->data.val_fraction, s->model.seq_len, s->data.path, &err)) {
		/* drop data_check_size's "data.path: " prefix: the pointer says it */
		const char *m = strncmp(err.msg, "data.path: ", 11) == 0 ? err.msg + 11 : err.msg;
		nl_strlcpy(e->msg, m, sizeof e->msg);
		return NL_EINVAL;
	}
	s->data.bytes = f.bytes;
	if (!f.sha256[0])
		return 0;   /* over max_run_bytes: the memory check refuses it with the numbers */
	if (s->data.sha256[0] && strcmp(s->data.sha256, f.sha256) != 0) {
		nl_strlcpy(e->pointer, "/data/sha256", sizeof e->pointer);
		snprintf(e->msg, sizeof e->msg, "dataset \"%.40s\" has content sha256 %s; the spec "
			 "names %.64s", s->data.path, f.sha256, s->data.sha256);
		return NL_EINVAL;
	}
	memcpy(s->data.sha256, f.sha256, sizeof s->data.sha256);
	return 0;
}

void datasets_limits(struct datasets *ds, uint64_t max_bytes, struct spec_limits *lim)
{
	memset(lim, 0, sizeof *lim);
	lim->max_bytes = max_bytes;
	lim->resolve_data = ds ? datasets_spec_resolve : NULL;
	lim->resolve_ctx = ds;
}

/* ---- the set ---- */

static int add_root(struct datasets *ds, const char *dir, size_t n, char *errbuf, size_t cap)
{
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0)
		return 0;
	for (int i = 0; i < ds->n_roots; i++)
		if (strlen(ds->roots[i]) == n && memcmp(ds->roots[i], dir, n) == 0)
			return 0;
	if (ds->n_roots == DATASET_ROOTS_MAX) {
		snprintf(errbuf, cap, "data_dirs: more than %d data roots", DATASET_ROOTS_MAX);
		return NL_EINVAL;
	}
	char *r = nl_malloc(n + 1);
	if (!r) {
		snprintf(errbuf, cap, "out of memory");
		return NL_ENOMEM;
	}
	memcpy(r, dir, n);
	r[n] = '\0';
	ds->roots[ds->n_roots++] = r;
	return 0;
}

int datasets_new(struct datasets **out, const char *data_dir, const char *data_dirs,
		 uint64_t max_run_bytes, char *errbuf, size_t cap)
{
	struct datasets *ds = nl_calloc(1, sizeof *ds);
	int rc = 0;
	*out = NULL;
	if (!ds) {
		snprintf(errbuf, cap, "out of memory");
		return NL_ENOMEM;
	}
	pthread_mutex_init(&ds->mu, NULL);
	ds->max_bytes = max_run_bytes;
	if (data_dir)
		rc = add_root(ds, data_dir, strlen(data_dir), errbuf, cap);
	for (const char *p = data_dirs; rc == 0 && p && *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		rc = add_root(ds, p, n, errbuf, cap);
		p += n + (e != NULL);
	}
	if (rc == 0 && ds->n_roots == 0) {
		snprintf(errbuf, cap, "no data root: set data_dir or data_dirs");
		rc = NL_EINVAL;
	}
	if (rc != 0) {
		datasets_free(ds);
		return rc;
	}
	*out = ds;
	return 0;
}

void datasets_free(struct datasets *ds)
{
	if (!ds)
		return;
	for (int i = 0; i < ds->n_roots; i++)
		nl_free(ds->roots[i]);
	for (int i = 0; i < ds->n_deny; i++)
		nl_free(ds->deny[i].path);
	for (int i = 0; i < ds->n_regs; i++)
		nl_free(ds->regs[i].rel);
	nl_free(ds->regs);
	pthread_mutex_destroy(&ds->mu);
	nl_free(ds);
}

int datasets_n_roots(const struct datasets *ds)
{
	return ds->n_roots;
}

/* Caller holds mu. */
static int mirror_locked(struct datasets *ds, const char *name, const char *rel)
{
	int i;
	for (i = 0; i < ds->n_regs; i++)
		if (strcmp(ds->regs[i].name, name) == 0)
			break;
	if (!rel) {
		if (i < ds->n_regs) {
			nl_free(ds->regs[i].rel);
			ds->regs[i] = ds->regs[--ds->n_regs];
		}
		return 0;
	}
	if (strlen(name) > DATASET_NAME_MAX)
		return NL_EINVAL;
	char *copy = nl_strdup(rel);
	if (!copy)
		return NL_ENOMEM;
	if (i == ds->n_regs) {
		if (ds->n_regs == ds->cap_regs) {
			int nc = ds->cap_regs ? 2 * ds->cap_regs : 16;
			struct reg *nr = nl_realloc(ds->regs, (size_t)nc * sizeof *nr);
			if (!nr) {
				nl_free(copy);
				return NL_ENOMEM;
			}
			ds->regs = nr;
			ds->cap_regs = nc;
		}
		nl_strlcpy(ds->regs[i].name, name, sizeof ds->regs[i].name);
		ds->regs[i].rel = NULL;
		ds->n_regs++;
	}
	nl_free(ds->regs[i].rel);
	ds->regs[i].rel = copy;
	return 0;
}

int datasets_mirror(struct datasets *ds, const char *name, const char *path)
{
	pthread_mutex_lock(&ds->mu);
	int rc = mirror_locked(ds, name, path);
	pthread_mutex_unlock(&ds->mu);
	return rc;
}

static int load_cb(void *ctx, const char *name, const char *path, const char *owner, double t)
{
	(void)owner;
	(void)t;
	return mirror_locked(ctx, name, path) == NL_ENOMEM;
}

int datasets_load(struct datasets *ds, struct store *s, struct store_err *err)
{
	pthread_mutex_lock(&ds->mu);
	int rc = store_datasets_list(s, load_cb, ds, err);
	pthread_mutex_unlock(&ds->mu);
	return rc < 0 ? rc : 0;
}

/* ---- listing ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct lister {
	struct datasets *ds;
	int (*cb)(void *ctx, const struct dataset_file *f);
	void *ctx;
	int count, stop;
	char **seen;            /* rel paths listed so far (owned) */
	int n_seen, cap_seen;
};

static int seen_add(struct lister *l, const char *rel)
{
	for (int i = 0; i < l->n_seen; i++)
		if (strcmp(l->seen[i], rel) == 0)
			return 1;
	if (l->n_seen == l->cap_seen) {
		int nc = l->cap_seen ? 2 * l->cap_seen : 64;
		char **ns = nl_realloc(l->seen, (size_t)nc * sizeof *ns);
		if (!ns)
			return -1;
		l->seen = ns;
		l->cap_seen = nc;
	}
	l->seen[l->n_seen] = nl_strdup(rel);
	if (!l->seen[l->n_seen])
		return -1;
	l->n_seen++;
	return 0;
}

static void emit(struct lister *l, const char *name, int by_name)
{
	struct dataset_file f;
	char msg[256];
	if (l->stop || l->count >= DATASET_LIST_MAX)
		return;
	int fd = by_name ? datasets_open(l->ds, name, 1, &f, msg, sizeof msg)
		: (memset(&f, 0, sizeof f), nl_strlcpy(f.name, name, sizeof f.name),
		   datasets_open_rel(l->ds, name, 1, &f, msg, sizeof msg));
	if (fd < 0)
		return;   /* dangling registration, escaping symlink, not regular: not listed */
	close(fd);
	if (!by_name) {
		int s = seen_add(l, f.rel);
		if (s != 0) {
			l->stop = s < 0;
			return;
		}
	}
	l->count++;
	if (l->cb(l->ctx, &f))
		l->stop = 1;
}

/* Walks one directory of root r (dfd owned), rel its path inside the root ("" at the top). */
static void walk(struct lister *l, int dfd, const char *rel, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	/* names first, then sorted, so the listing is stable */
	char **names = NULL;
	int n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < 4 * DATASET_LIST_MAX) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			int nc = cap ? 2 * cap : 32;
			char **nn = nl_realloc(names, (size_t)nc * sizeof *nn);
			if (!nn)
				break;
			names = nn;
			cap = nc;
		}
		names[n] = nl_strdup(de->d_name);
		if (!names[n])
			break;
		n++;
	}
	if (n > 1)   /* names is NULL for an empty directory */
		qsort(names, (size_t)n, sizeof *names, cmp_str);
	for (int i = 0; i < n && !l->stop; i++) {
		char sub[SPEC_PATH_MAX];
		struct stat st;
		int k = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
		if (k < 0 || (size_t)k >= sizeof sub || fstatat(dirfd(d), names[i], &st,
							       AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth + 1 >= LIST_DEPTH_MAX)
				continue;
			int sfd = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);
			if (sfd >= 0)
				walk(l, sfd, sub, depth + 1);
		} else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
			/* a symlink is listed only if it resolves to a regular file in a root */
			emit(l, sub, 0);
		}
	}
	for (int i = 0; i < n; i++)
		nl_free(names[i]);
	nl_free(names);
	closedir(d);
}

int datasets_list(struct datasets *ds, int (*cb)(void *ctx, const struct dataset_file *f),
		  void *ctx)
{
	struct lister l = { .ds = ds, .cb = cb, .ctx = ctx };
	char **names = NULL;
	int n = 0, rc = 0, have_default = 0;

	/* a snapshot of the registered names, so no lock is held while files are opened */
	pthread_mutex_lock(&ds->mu);
	names = nl_calloc((size_t)ds->n_regs + 1, sizeof *names);
	for (int i = 0; names && i < ds->n_regs; i++) {
		names[n] = nl_strdup(ds->regs[i].name);
		if (!names[n])
			break;
		have_default |= strcmp(names[n], DATASET_DEFAULT) == 0;
		n++;
	}
	pthread_mutex_unlock(&ds->mu);
	if (!names)
		return NL_ENOMEM;
	qsort(names, (size_t)n, sizeof *names, cmp_str);
	if (!have_default)
		emit(&l, DATASET_DEFAULT, 1);
	for (int i = 0; i < n; i++) {
		emit(&l, names[i], 1);
		nl_free(names[i]);
	}
	nl_free(names);
	for (int r = 0; r < ds->n_roots && !l.stop; r++) {
		int dfd = open(ds->roots[r], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0)
			walk(&l, dfd, "", 0);
	}
	for (int i = 0; i < l.n_seen; i++)
		nl_free(l.seen[i]);
	nl_free(l.seen);
	rc = l.count;
	return rc;
}
