/*
 * perms.c — secret-file checks and the start-up tightening of older files (see perms.h).
 * Tightening keeps the owner's bits and clears the group and other bits (a 0755 run directory
 * becomes 0700, a 0644 checkpoint 0600): the daemon is the only reader of its database, run
 * directories and checkpoints; people read them through the API, which applies the owner and
 * role rules. Owns nothing; no globals.
 */
#define _POSIX_C_SOURCE 200809L
#include "perms.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define PERMS_PATH_MAX 4096

int perms_secret_check(const char *path, const char *what, char *msg, size_t cap)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		snprintf(msg, cap, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, cap, "%s %s is not a regular file", what, path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(msg, cap, "%s %s is owned by uid %u, not by the daemon's user (uid %u): "
			 "chown it to the user normlabd runs as", what, path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & PERMS_SECRET_BAD) {
		snprintf(msg, cap, "%s %s is readable or writable by group or others (mode 0%03o): "
			 "run chmod 600 %s", what, path, (unsigned)(st.st_mode & 0777), path);
		return -1;
	}
	return 0;
}

struct tighten {
	int n;                       /* paths tightened */
	char first[PERMS_PATH_MAX];  /* the first of them, for the log line */
	unsigned first_mode;
};

/* Tightens one path if it is ours and too open; a missing path is fine. */
static void tighten_one(struct tighten *t, const char *path, struct stat *st)
{
	if (S_ISLNK(st->st_mode) || !(st->st_mode & 0077))
		return;
	if (st->st_uid != geteuid()) {
		LOG_WARN("%s is reachable by group or others (mode 0%03o) and owned by uid %u, not by "
			 "normlabd's user: left as it is", path, (unsigned)(st->st_mode & 0777),
			 (unsigned)st->st_uid);
		return;
	}
	if (chmod(path, st->st_mode & 0700) != 0) {
		LOG_WARN("cannot take group and other access away from %s: %s", path, strerror(errno));
		return;
	}
	if (t->n++ == 0) {
		snprintf(t->first, sizeof t->first, "%s", path);
		t->first_mode = (unsigned)(st->st_mode & 0777);
	}
}

static void tighten_path(struct tighten *t, const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		tighten_one(t, path, &st);
}

/* path itself, then, for a directory, its entries down to depth more levels. */
static void tighten_tree(struct tighten *t, const char *path, int depth)
{
	struct stat st;
	DIR *dir;
	struct dirent *de;
	if (lstat(path, &st) != 0)
		return;
	tighten_one(t, path, &st);
	if (!S_ISDIR(st.st_mode) || depth <= 0 || !(dir = opendir(path)))
		return;
	while ((de = readdir(dir)) != NULL) {
		char child[PERMS_PATH_MAX];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child)
			continue;
		tighten_tree(t, child, depth - 1);
	}
	closedir(dir);
}

int perms_tighten(const char *db, const char *runs_dir)
{
	static const char *const db_suffix[] = { "", "-wal", "-shm", "-journal" };
	static struct tighten t;   /* start-up only, one thread: too big for a small stack */
	memset(&t, 0, sizeof t);
	for (size_t i = 0; db && *db && i < sizeof db_suffix / sizeof db_suffix[0]; i++) {
		char p[PERMS_PATH_MAX];
		if (snprintf(p, sizeof p, "%s%s", db, db_suffix[i]) < (int)sizeof p)
			tighten_path(&t, p);
	}
	if (runs_dir && *runs_dir)
		tighten_tree(&t, runs_dir, PERMS_RUNS_DEPTH);
	if (t.n)
		LOG_WARN("took group and other access away from %d path%s an older normlabd left "
			 "open (e.g. %s was 0%03o): the database and run files are the daemon's own",
			 t.n, t.n == 1 ? "" : "s", t.first, t.first_mode);
	return t.n;
}
