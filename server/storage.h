/*
 * storage.h — normlabd's view of its disks (prefix storage_): free space on the file systems of
 * the database and the run directories for /health, and the start-up sweep that removes temp
 * files a crash left in run directories. No state of its own; thread-safe.
 */
#ifndef STORAGE_H
#define STORAGE_H

#include <cjson/cJSON.h>
#include <stdint.h>

struct daemon;

/*
 * Removes regular files named *.tmp directly inside runs_dir/<digits>/ (a checkpoint or final
 * file whose write a crash or kill cut short before its rename). Main thread, before any run
 * starts. Returns how many were removed.
 */
int storage_remove_stale_tmp(const char *runs_dir);

/*
 * Adds a "storage" object to o (free bytes of the database's and the runs' file systems, the
 * min_free_bytes threshold, the last storage write error, whether the disk-full reserve is held)
 * and appends one line to `reasons` per problem: a file system below min_free_bytes, a recent
 * write error. Returns the number of reasons added, or -1 when out of memory. Any thread.
 */
int storage_health(struct daemon *d, cJSON *o, cJSON *reasons);

#endif
