/*
 * daemon.h — what every part of normlabd shares: the configuration, the tokens, the scheduler.
 * Filled by main before any thread starts and read-only afterwards (the scheduler synchronizes
 * itself). Owned by main.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include "auth.h"
#include "config.h"
#include "dataset.h"
#include "scheduler.h"
#include "session.h"
#include "tokens.h"
#include "store.h"

struct daemon {
	struct config cfg;
	struct tokens *tokens;      /* the live token set (reloaded on SIGHUP); never NULL */
	struct sessions *sessions;  /* dashboard sessions made from tokens */
	struct sched *sched;
	struct datasets *datasets;  /* data roots and registered corpora (dataset.h); thread-safe */
	double started_at;          /* unix seconds */
	char version[32];
	char blas[256];             /* blas_describe() at start */
	struct events_hub *events;  /* event stream slots and pump (api_events.c); own mutex */
};

/* Opens a read-only store connection for the calling thread; close it with store_close. */
int daemon_reader(struct daemon *d, struct store **out, struct store_err *err);

/* Wall-clock unix seconds. */
double daemon_now(void);

#endif
