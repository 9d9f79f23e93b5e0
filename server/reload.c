/*
 * reload.c — the SIGHUP thread (see reload.h). Globals: the thread, the semaphore the handler
 * posts and a stop flag; main starts and stops the thread, the handler only posts. Signals that
 * arrive while a reload runs coalesce into at most one more reload per post.
 */
#define _POSIX_C_SOURCE 200809L
#include "reload.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static pthread_t reload_thread;
static sem_t reload_sem;
static int reload_started;
static atomic_int reload_stopping;

static void reload_on_hup(int sig)
{
	int saved = errno;
	(void)sig;
	sem_post(&reload_sem);
	errno = saved;
}

static void *reload_main(void *arg)
{
	struct tokens *t = arg;
	for (;;) {
		char msg[512];
		if (sem_wait(&reload_sem) != 0)
			continue;   /* EINTR */
		if (atomic_load(&reload_stopping))
			break;
		if (tokens_reload(t, msg, sizeof msg) == 0)
			LOG_INFO("SIGHUP: %s", msg);
		else
			LOG_ERROR("SIGHUP: tokens not reloaded, the %zu in use stay: %s", tokens_count(t),
				  msg);
	}
	return NULL;
}

int reload_start(struct tokens *t)
{
	struct sigaction sa;
	if (sem_init(&reload_sem, 0, 0) != 0)
		return -1;
	if (pthread_create(&reload_thread, NULL, reload_main, t) != 0) {
		sem_destroy(&reload_sem);
		return -1;
	}
	reload_started = 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = reload_on_hup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGHUP, &sa, NULL) != 0) {
		reload_stop();
		return -1;
	}
	return 0;
}

void reload_stop(void)
{
	if (!reload_started)
		return;
	signal(SIGHUP, SIG_IGN);
	atomic_store(&reload_stopping, 1);
	sem_post(&reload_sem);
	pthread_join(reload_thread, NULL);
	sem_destroy(&reload_sem);
	reload_started = 0;
}
