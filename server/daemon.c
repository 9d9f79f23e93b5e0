/*
 * daemon.c — small shared services of normlabd: per-thread reader connections and the clock.
 */
#include <time.h>

#include "daemon.h"

int daemon_reader(struct daemon *d, struct store **out, struct store_err *err)
{
	return store_open(out, d->cfg.db, 0, err);
}

double daemon_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
