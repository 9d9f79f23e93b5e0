/*
 * storage.c — see storage.h. statvfs on the directory holding the database and on runs_dir at
 * each /health request (one syscall each), the scheduler's last storage error from sched_stats.
 * Owns nothing.
 */
#define _GNU_SOURCE
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon.h"
#include "scheduler.h"

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);
	return n > k && strcmp(s + n - k, tail) == 0;
}

int storage_remove_stale_tmp(const char *runs_dir)
{
	DIR *top = opendir(runs_dir);
	struct dirent *de, *fe;
	char dir[PATH_MAX], path[PATH_MAX];
	int removed = 0;
	if (!top)
		return 0;
	while ((de = readdir(top)) != NULL) {
		if (!all_digits(de->d_name) ||
		    snprintf(dir, sizeof dir, "%s/%s", runs_dir, de->d_name) >= (int)sizeof dir)
			continue;
		DIR *rd = opendir(dir);
		if (!rd)
			continue;
		while ((fe = readdir(rd)) != NULL) {
			struct stat st;
			if (!ends_with(fe->d_name, ".tmp") ||
			    snprintf(path, sizeof path, "%s/%s", dir, fe->d_name) >= (int)sizeof path)
				continue;
			/* lstat: a directory or link squatting on the name is not ours to remove */
			if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0)
				removed++;
		}
		closedir(rd);
	}
	closedir(top);
	return removed;
}

/* Free bytes (for unprivileged users) of the file system holding path, or -1. */
static int64_t free_bytes(const char *path)
{
	struct statvfs v;
	if (statvfs(path, &v) != 0)
		return -1;
	return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

/* The directory part of a file path ("." when it has none). */
static void dir_of(const char *file, char *out, size_t cap)
{
	const char *slash = strrchr(file, '/');
	if (!slash)
		snprintf(out, cap, ".");
	else if (slash == file)
		snprintf(out, cap, "/");
	else
		snprintf(out, cap, "%.*s", (int)(slash - file), file);
}

static int check_fs(const char *what, const char *path, int64_t min, cJSON *storage,
		    const char *key, cJSON *reasons)
{
	/* /health is public: say which file system, not where it is */
	char line[200];
	int64_t f = free_bytes(path);
	if (!cJSON_AddNumberToObject(storage, key, (double)f))
		return -1;
	if (f < 0)
		snprintf(line, sizeof line, "%s file system: cannot stat: %s", what, strerror(errno));
	else if (f < min)
		snprintf(line, sizeof line, "%s file system: %" PRId64 " bytes free, below "
			 "min_free_bytes %" PRId64, what, f, min);
	else
		return 0;
	return cJSON_AddItemToArray(reasons, cJSON_CreateString(line)) ? 1 : -1;
}

int storage_health(struct daemon *d, cJSON *o, cJSON *reasons)
{
	struct sched_stats st;
	char dbdir[CONFIG_PATH_MAX], line[400];
	int n = 0, k;
	cJSON *storage = cJSON_AddObjectToObject(o, "storage");
	if (!storage)
		return -1;
	dir_of(d->cfg.db, dbdir, sizeof dbdir);
	if ((k = check_fs("database", dbdir, d->cfg.min_free_bytes, storage, "db_free_bytes",
			  reasons)) < 0)
		return -1;
	n += k;
	if ((k = check_fs("runs", d->cfg.runs_dir, d->cfg.min_free_bytes, storage,
			  "runs_free_bytes", reasons)) < 0)
		return -1;
	n += k;
	sched_stats(d->sched, &st);
	if (!cJSON_AddNumberToObject(storage, "min_free_bytes", (double)d->cfg.min_free_bytes) ||
	    !cJSON_AddBoolToObject(storage, "reserve_held", st.reserve_held) ||
	    !(st.io_error[0] ? cJSON_AddStringToObject(storage, "last_write_error", st.io_error)
			     : cJSON_AddNullToObject(storage, "last_write_error")))
		return -1;
	if (st.io_error[0]) {
		snprintf(line, sizeof line, "last storage write failed %.0f s ago: %s",
			 daemon_now() - st.io_error_at, st.io_error);
		if (!cJSON_AddItemToArray(reasons, cJSON_CreateString(line)))
			return -1;
		n++;
	}
	return n;
}
