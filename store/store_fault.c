/*
 * store_fault.c — the store's I/O fault hook (STYLE: "tests that fail the Nth I/O"): a SQLite VFS
 * that forwards everything to the default VFS but answers chosen xWrite calls with SQLITE_FULL,
 * exactly what SQLite sees when the disk fills up ("database or disk is full"). It lets the tests
 * drive the daemon's disk-full handling where no small file system can be mounted (not root), and
 * fail every write of a store operation in turn.
 * Off unless store_fault_arm is called (the daemon does when $NORMLAB_STORE_FAULT is set), and
 * then it becomes the default VFS, so every connection opened afterwards goes through it.
 * Threading: arm before opening connections; the counters are atomics, so any thread may write.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nl.h"

struct fault_file {
	sqlite3_file base;
	sqlite3_file *real;         /* the default VFS's file, allocated right after this struct */
};

static sqlite3_vfs fault_vfs;
static sqlite3_vfs *fault_orig;
static atomic_long fault_writes;        /* xWrite calls seen since the last arm */
static atomic_long fault_after = -1;    /* -1: off; else writes after this many fail */
static atomic_long fault_count = -1;    /* how many fail (-1: all of them) */
static char fault_path[1024];           /* non-empty: writes fail while this file exists */
static atomic_int fault_by_file;

static int fault_hit(void)
{
	if (atomic_load(&fault_by_file))
		return access(fault_path, F_OK) == 0;
	long after = atomic_load(&fault_after);
	if (after < 0)
		return 0;
	long n = atomic_fetch_add(&fault_writes, 1), count = atomic_load(&fault_count);
	return n >= after && (count < 0 || n < after + count);
}

#define REAL(f) (((struct fault_file *)(f))->real)

static int f_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (fault_hit())
		return SQLITE_FULL;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int f_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int f_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int f_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int f_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, out);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* Version 3, like the unix VFS's files: WAL needs the xShm methods, mmap the xFetch pair. */
static const sqlite3_io_methods fault_methods = {
	3, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock, f_unlock, f_check_lock,
	f_control, f_sector, f_devchar, f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch,
	f_unfetch,
};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	struct fault_file *p = (struct fault_file *)file;
	(void)vfs;
	p->real = (sqlite3_file *)&p[1];
	int rc = fault_orig->xOpen(fault_orig, name, p->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set: leave it NULL when the open failed. */
	p->base.pMethods = rc == SQLITE_OK && p->real->pMethods && p->real->pMethods->iVersion >= 3
		? &fault_methods : NULL;
	if (rc == SQLITE_OK && !p->base.pMethods) {
		if (p->real->pMethods)
			p->real->pMethods->xClose(p->real);
		rc = SQLITE_CANTOPEN;
	}
	return rc;
}

int store_fault_arm(const char *spec, struct store_err *err)
{
	long after = -1, count = -1;
	char *end;
	if (!spec)
		return store__err(err, STORE_EINVAL, "store fault: no spec");
	if (strncmp(spec, "file=", 5) == 0) {
		if (nl_strlcpy(fault_path, spec + 5, sizeof fault_path) != 0 || !fault_path[0])
			return store__err(err, STORE_EINVAL, "store fault: file= wants a path of 1..%zu "
					  "bytes", sizeof fault_path - 1);
	} else if (strncmp(spec, "writes=", 7) == 0) {
		after = strtol(spec + 7, &end, 10);
		if (end == spec + 7 || after < 0 || (*end && strncmp(end, ",count=", 7) != 0))
			return store__err(err, STORE_EINVAL, "store fault: want writes=N[,count=K], "
					  "file=PATH or off, not \"%.60s\"", spec);
		if (*end) {
			const char *c = end + 7;
			count = strtol(c, &end, 10);
			if (end == c || *end || count < 1)
				return store__err(err, STORE_EINVAL, "store fault: count=K wants K >= 1");
		}
	} else if (strcmp(spec, "off") != 0) {
		return store__err(err, STORE_EINVAL, "store fault: want writes=N[,count=K], file=PATH "
				  "or off, not \"%.60s\"", spec);
	}
	if (!fault_orig) {
		fault_orig = sqlite3_vfs_find(NULL);
		if (!fault_orig)
			return store__err(err, STORE_EIO, "store fault: SQLite has no default VFS");
		/* A copy of the default: its other methods read only mxPathname and pAppData,
		 * which the copy carries. Files grow by our header. */
		fault_vfs = *fault_orig;
		fault_vfs.zName = "normlab-fault";
		fault_vfs.szOsFile = (int)sizeof(struct fault_file) + fault_orig->szOsFile;
		fault_vfs.xOpen = f_open;
		fault_vfs.pNext = NULL;
		int rc = sqlite3_vfs_register(&fault_vfs, 1);
		if (rc != SQLITE_OK) {
			fault_orig = NULL;
			return store__err(err, STORE_EIO, "store fault: %s", sqlite3_errstr(rc));
		}
	}
	atomic_store(&fault_by_file, 0);
	atomic_store(&fault_after, -1);
	atomic_store(&fault_writes, 0);
	atomic_store(&fault_count, count);
	if (strncmp(spec, "file=", 5) == 0)
		atomic_store(&fault_by_file, 1);
	else
		atomic_store(&fault_after, after);
	return 0;
}

long store_fault_writes(void)
{
	return atomic_load(&fault_writes);
}
