/*
 * session.c — the session table (see session.h). Slots are a fixed array: a lookup decodes the
 * cookie's hex, then compares the 32 bytes with every used slot, accumulating differences with OR
 * and picking the match with a mask, so the time says nothing about which bytes matched. Expiry
 * uses the monotonic clock (a wall-clock jump neither ends nor extends sessions). Freed and
 * replaced slots are wiped: they hold tokens.
 */
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "nl.h"

struct session {
	int used;
	unsigned char id[SESSION_ID_BYTES];
	double expires;                    /* CLOCK_MONOTONIC seconds */
	double created;
	char user[AUTH_USER_MAX];
	char auth[SESSION_AUTH_MAX];       /* the Authorization value it was made with */
};

struct sessions {
	pthread_mutex_t mu;                /* guards slot */
	struct tokens *tokens;             /* borrowed */
	int ttl;
	struct session slot[SESSION_MAX];
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

int session_table_new(struct sessions **out, struct tokens *tokens, int ttl_s)
{
	struct sessions *s = nl_calloc(1, sizeof *s);
	*out = NULL;
	if (!s)
		return NL_ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->tokens = tokens;
	s->ttl = ttl_s > 0 ? ttl_s : 1;
	*out = s;
	return 0;
}

void session_table_free(struct sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	wipe(s->slot, sizeof s->slot);
	nl_free(s);
}

int session_ttl(const struct sessions *s)
{
	return s->ttl;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Exactly SESSION_ID_HEX hex digits → bytes. 0 or -1. */
static int id_decode(const char *hex, unsigned char *out)
{
	if (!hex || strlen(hex) != SESSION_ID_HEX)
		return -1;
	for (int i = 0; i < SESSION_ID_BYTES; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void slot_clear(struct session *x)
{
	wipe(x, sizeof *x);
}

/* Index of the used slot holding id, or -1; every used slot is compared in full. Under mu. */
static int slot_find(struct sessions *s, const unsigned char *id)
{
	size_t found = 0, idx = 0;
	for (size_t i = 0; i < SESSION_MAX; i++) {
		unsigned diff = s->slot[i].used ? 0u : 1u;
		for (int j = 0; j < SESSION_ID_BYTES; j++)
			diff |= (unsigned)(s->slot[i].id[j] ^ id[j]);
		size_t eq = (size_t)((diff - 1u) >> (sizeof diff * 8 - 1));   /* 1 iff diff == 0 */
		size_t mask = (size_t)0 - eq;
		found |= eq;
		idx = (idx & ~mask) | (i & mask);
	}
	return found ? (int)idx : -1;
}

int session_create(struct sessions *s, const char *authorization, const char *user, char *id_out,
		   double *expires_at)
{
	unsigned char id[SESSION_ID_BYTES];
	size_t got = 0;
	double now = mono();
	int victim = -1, user_n = 0, oldest_user = -1, oldest_any = -1;

	if (!authorization || strlen(authorization) >= SESSION_AUTH_MAX)
		return -1;
	while (got < sizeof id) {
		ssize_t n = getrandom(id + got, sizeof id - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < SESSION_MAX; i++) {
		struct session *x = &s->slot[i];
		if (x->used && x->expires <= now)
			slot_clear(x);
		if (!x->used) {
			if (victim < 0)
				victim = i;
			continue;
		}
		if (oldest_any < 0 || x->created < s->slot[oldest_any].created)
			oldest_any = i;
		if (strcmp(x->user, user) == 0) {
			user_n++;
			if (oldest_user < 0 || x->created < s->slot[oldest_user].created)
				oldest_user = i;
		}
	}
	if (user_n >= SESSION_PER_USER)
		victim = oldest_user;
	else if (victim < 0)
		victim = oldest_any;
	struct session *x = &s->slot[victim];
	slot_clear(x);
	x->used = 1;
	memcpy(x->id, id, sizeof id);
	x->created = now;
	x->expires = now + s->ttl;
	snprintf(x->user, sizeof x->user, "%s", user);
	snprintf(x->auth, sizeof x->auth, "%s", authorization);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < SESSION_ID_BYTES; i++)
		snprintf(id_out + 2 * i, 3, "%02x", id[i]);
	wipe(id, sizeof id);
	*expires_at = wall() + s->ttl;
	return 0;
}

int session_check(struct sessions *s, const char *id, char *user, size_t cap, int *role)
{
	unsigned char raw[SESSION_ID_BYTES];
	char auth[SESSION_AUTH_MAX];
	int i, rc = AUTH_EUNKNOWN;

	if (user && cap)
		user[0] = '\0';
	if (role)
		*role = AUTH_ROLE_USER;
	if (id_decode(id, raw) != 0)
		return AUTH_EUNKNOWN;
	pthread_mutex_lock(&s->mu);
	i = slot_find(s, raw);
	if (i >= 0 && s->slot[i].expires <= mono()) {
		slot_clear(&s->slot[i]);
		i = -1;
	}
	if (i >= 0)
		memcpy(auth, s->slot[i].auth, sizeof auth);
	pthread_mutex_unlock(&s->mu);
	wipe(raw, sizeof raw);
	if (i < 0)
		return AUTH_EUNKNOWN;
	/* the token decides, as it stands now: a reload that removed it ends the session here */
	rc = tokens_check(s->tokens, auth, user, cap, role);
	wipe(auth, sizeof auth);
	return rc == AUTH_OK ? AUTH_OK : AUTH_EUNKNOWN;
}

void session_delete(struct sessions *s, const char *id)
{
	unsigned char raw[SESSION_ID_BYTES];
	if (id_decode(id, raw) != 0)
		return;
	pthread_mutex_lock(&s->mu);
	int i = slot_find(s, raw);
	if (i >= 0)
		slot_clear(&s->slot[i]);
	pthread_mutex_unlock(&s->mu);
	wipe(raw, sizeof raw);
}

int session_count(struct sessions *s)
{
	int n = 0;
	double now = mono();
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < SESSION_MAX; i++)
		n += s->slot[i].used && s->slot[i].expires > now;
	pthread_mutex_unlock(&s->mu);
	return n;
}
