/*
 * perms.h — what normlabd writes stays its own: the check that a secret file (the tokens file)
 * is private to the daemon's user, and the start-up pass that takes group and world access away
 * from files an older normlabd created under a looser umask (main sets umask 077 first, so what
 * this daemon creates is 0600 / 0700 already).
 * No state; any thread, but perms_tighten is meant for start-up, before the store is opened.
 */
#ifndef PERMS_H
#define PERMS_H

#include <stddef.h>

/* The mode bits a secret file must not have: readable or writable by group or others. */
#define PERMS_SECRET_BAD 0066
/* Depth of runs_dir perms_tighten walks: runs_dir/<id>/<file>. */
#define PERMS_RUNS_DEPTH 2

/*
 * 0 if path (borrowed; symlinks followed) is a regular file owned by the effective user with
 * none of PERMS_SECRET_BAD set. Else -1 and msg (cap bytes) says which rule failed and the fix,
 * e.g. "var/tokens is readable or writable by group or others (mode 0644): run chmod 600
 * var/tokens". `what` names the file in the message ("tokens file").
 */
int perms_secret_check(const char *path, const char *what, char *msg, size_t cap);

/*
 * Removes group and other permissions from the database file (and its -wal, -shm, -journal) and
 * from runs_dir, every run directory in it and their files (PERMS_RUNS_DEPTH levels). Symlinks
 * are skipped, never followed; files of another owner are reported, not changed. Logs one
 * warning naming how many paths were tightened and one example, and one per failure. Returns
 * the number of paths tightened (0 when all were private already).
 */
int perms_tighten(const char *db, const char *runs_dir);

#endif
