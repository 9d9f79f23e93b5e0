/*
 * store_reserve.c — room to recover on a full disk: a file of real blocks next to the database
 * that the daemon deletes when a write it cannot skip (a run's final status, the DELETE that frees
 * space) fails for lack of space, and makes again once there is room. SQLite in WAL mode needs
 * free blocks even to delete rows (the changed pages go to the WAL first), so without it a full
 * disk could not be emptied through the API. Owns the file "<db>.reserve".
 * Threading: the writer's thread (see store.h); store_reserve_present only stats.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int reserve_path(const struct store *s, char *out, size_t cap)
{
	return s && s->path && snprintf(out, cap, "%s.reserve", s->path) < (int)cap ? 0 : -1;
}

int store_reserve_present(const struct store *s)
{
	char path[4096];
	struct stat st;
	return reserve_path(s, path, sizeof path) == 0 && stat(path, &st) == 0 && st.st_size > 0;
}

int store_reserve_release(struct store *s)
{
	char path[4096];
	if (reserve_path(s, path, sizeof path) != 0)
		return 0;
	return unlink(path) == 0 ? 1 : 0;
}

int store_reserve_make(struct store *s, int64_t bytes, struct store_err *err)
{
	char path[4096];
	struct stat st;
	struct statvfs vf;
	int rc = store__need_writer(s, "reserve", err);
	if (rc < 0)
		return rc;
	if (reserve_path(s, path, sizeof path) != 0)
		return store__err(err, STORE_EINVAL, "reserve: database path too long");
	if (bytes <= 0) {
		if (unlink(path) != 0 && errno != ENOENT)
			return store__err(err, STORE_EIO, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (stat(path, &st) == 0 && st.st_size >= bytes)
		return 1;
	if (statvfs(s->path, &vf) == 0 &&
	    (uint64_t)vf.f_bavail * vf.f_frsize < 2 * (uint64_t)bytes)
		return 0;   /* not now: it would take space that writes need */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return store__err(err, STORE_EIO, "%s: %s", path, strerror(errno));
	/* Real blocks, not a sparse file: deleting a hole gives nothing back. */
	int e = posix_fallocate(fd, 0, (off_t)bytes);
	if (close(fd) != 0 && !e)
		e = errno;
	if (e) {
		unlink(path);
		if (e == ENOSPC)
			return 0;
		return store__err(err, STORE_EIO, "%s: %s", path, strerror(e));
	}
	return 1;
}
