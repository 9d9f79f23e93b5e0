/*
 * reload.h — SIGHUP reloads the tokens file without a restart. The signal handler only posts a
 * semaphore (async-signal-safe); a thread of its own waits on it and does the reload, outside any
 * signal handler and outside the scheduler's loop. (Blocking SIGHUP and sigwait-ing would not do:
 * OpenBLAS starts its threads before main, with SIGHUP unblocked, and the default action of a
 * SIGHUP taken by one of them ends the process.)
 */
#ifndef RELOAD_H
#define RELOAD_H

#include "tokens.h"

/* Installs the handler and starts the thread that reloads t (borrowed; must outlive reload_stop)
 * on each SIGHUP. 0 or -1. */
int reload_start(struct tokens *t);

/* Stops and joins the thread; a no-op when it was not started. SIGHUP is ignored afterwards. */
void reload_stop(void);

#endif
