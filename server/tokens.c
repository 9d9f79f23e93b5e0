/*
 * tokens.c — the token set behind a read-write lock, and its reload (see tokens.h). The lock is
 * held by checks for one auth_check (a few microseconds) and by a reload for one pointer store,
 * so a reload never makes requests wait on file I/O.
 */
#define _POSIX_C_SOURCE 200809L
#include "tokens.h"

#include <pthread.h>
#include <stdio.h>

#include "config.h"
#include "nl.h"
#include "perms.h"

struct tokens {
	pthread_rwlock_t lock;       /* guards cur */
	struct auth *cur;            /* never NULL after tokens_open */
	char path[CONFIG_PATH_MAX];  /* "" = no tokens file */
};

/* Checks the file's permissions, then parses it. 0 and *out, or -1 with msg. */
static int tokens_load(const char *path, struct auth **out, char *msg, size_t cap)
{
	struct auth_err err = { 0 };
	*out = NULL;
	if (path[0] && perms_secret_check(path, "tokens file", msg, cap) != 0)
		return -1;
	if (auth_load(out, path, &err) != 0) {
		snprintf(msg, cap, "%s", err.msg);
		return -1;
	}
	return 0;
}

int tokens_open(struct tokens **out, const char *path, char *errbuf, size_t cap)
{
	struct tokens *t = nl_calloc(1, sizeof *t);
	*out = NULL;
	if (!t) {
		snprintf(errbuf, cap, "out of memory");
		return -1;
	}
	if (nl_strlcpy(t->path, path ? path : "", sizeof t->path) != 0) {
		snprintf(errbuf, cap, "tokens file path is longer than %d bytes", CONFIG_PATH_MAX - 1);
		nl_free(t);
		return -1;
	}
	if (tokens_load(t->path, &t->cur, errbuf, cap) != 0) {
		nl_free(t);
		return -1;
	}
	pthread_rwlock_init(&t->lock, NULL);
	*out = t;
	return 0;
}

int tokens_reload(struct tokens *t, char *msg, size_t cap)
{
	struct auth *fresh, *old;
	if (!t->path[0]) {
		snprintf(msg, cap, "no tokens file is configured: nothing to reload");
		return -1;
	}
	if (tokens_load(t->path, &fresh, msg, cap) != 0)
		return -1;
	pthread_rwlock_wrlock(&t->lock);
	old = t->cur;
	t->cur = fresh;
	pthread_rwlock_unlock(&t->lock);
	auth_free(old);
	snprintf(msg, cap, "%zu token%s loaded from %s", auth_count(fresh),
		 auth_count(fresh) == 1 ? "" : "s", t->path);
	return 0;
}

int tokens_user_is_admin(struct tokens *t, const char *user)
{
	if (!t)
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	int admin = auth_user_is_admin(t->cur, user);
	pthread_rwlock_unlock(&t->lock);
	return admin;
}

int tokens_check(struct tokens *t, const char *authorization, char *user, size_t cap, int *role)
{
	int rc;
	if (!t) {
		if (user && cap)
			user[0] = '\0';
		if (role)
			*role = AUTH_ROLE_USER;
		return AUTH_EUNKNOWN;
	}
	pthread_rwlock_rdlock(&t->lock);
	rc = auth_check_role(t->cur, authorization, user, cap, role);
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

size_t tokens_count(struct tokens *t)
{
	size_t n;
	if (!t)
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	n = auth_count(t->cur);
	pthread_rwlock_unlock(&t->lock);
	return n;
}

const char *tokens_path(const struct tokens *t)
{
	return t ? t->path : "";
}

void tokens_free(struct tokens *t)
{
	if (!t)
		return;
	auth_free(t->cur);
	pthread_rwlock_destroy(&t->lock);
	nl_free(t);
}
