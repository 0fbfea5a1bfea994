/*
 * Closing the server's socket with a bound on the wait (nng 1.5.2's reaper
 * can wedge: docs/ARCHITECTURE.md, "Decisions").
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <nng/nng.h>

#include "core/clock.h"
#include "server_internal.h"

/* A socket closed on its own thread, for srv__close_bounded. */
struct srv_closer {
	nng_socket      sock;
	pthread_mutex_t lock; /* with cv: done, abandoned */
	pthread_cond_t  cv;
	bool            done;
	bool            abandoned; /* the waiter left: the closer frees */
};

static void
srv__closer_free(struct srv_closer *k)
{
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* The closer's thread: nng_close, then tell the waiter, or free \p arg if
 * the waiter has left. */
static void *
srv__closer_main(void *arg)
{
	struct srv_closer *k = arg;
	bool               abandoned;

	nng_close(k->sock);
	pthread_mutex_lock(&k->lock);
	k->done   = true;
	abandoned = k->abandoned;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
	if (abandoned)
		srv__closer_free(k);
	return NULL;
}

/*
 * nng_close(\p sock) on a thread of its own, waiting up to \p timeout_ms.
 * Returns false if it did not return by then: nng 1.5.2's reaper is
 * wedged (docs/ARCHITECTURE.md, "Decisions") and nng_close never returns;
 * the thread is left behind, detached, and nothing of nng may be touched
 * any more. Without memory or a thread, closes in place. Caller's thread.
 */
bool
srv__close_bounded(nng_socket sock, int timeout_ms)
{
	struct srv_closer *k = calloc(1, sizeof(*k));
	uint64_t           deadline;
	pthread_t          th;
	bool               done;

	if (k == NULL) {
		nng_close(sock);
		return true;
	}
	k->sock = sock;
	pthread_mutex_init(&k->lock, NULL);
	mri_cond_init(&k->cv);
	if (pthread_create(&th, NULL, srv__closer_main, k) != 0) {
		srv__closer_free(k);
		nng_close(sock);
		return true;
	}
	deadline = mri_deadline_in((uint64_t)timeout_ms);
	pthread_mutex_lock(&k->lock);
	while (!k->done &&
	       mri_cond_wait_until(&k->cv, &k->lock, deadline) != ETIMEDOUT)
		;
	done         = k->done;
	k->abandoned = !done;
	pthread_mutex_unlock(&k->lock);
	if (!done) {
		pthread_detach(th);
		return false;
	}
	pthread_join(th, NULL);
	srv__closer_free(k);
	return true;
}
