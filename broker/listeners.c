#include "listeners.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/reqrep0/req.h>

#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"

// How often the watchdog looks at the listeners' error counts.
#define LSN__PERIOD_MS 1000
// After an error, how long before the probe: nng's listener backs off
// 100 ms after most errors before it accepts again.
#define LSN__SETTLE_MS 300
// How long a probe's connection gets to be accepted.
#define LSN__PROBE_MS 2000
// How long closing waits for the watchdog: a probe at most, with room.
#define LSN__JOIN_MS 5000

struct lsn_one {
	char        *url;
	nng_listener l;
	uint64_t     other; /* nng's "other" error count, last seen */
	bool         told;  /* that a probe cannot dial it (once) */
};

struct mri_listeners {
	nng_socket      sock;
	struct lsn_one *v;
	size_t          n;
	pthread_t       thread;
	bool            running; /* the thread was started, not joined */
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            stopping; /* under mtx */
	bool            exited;   /* under mtx: the watchdog returned */
	bool            abandoned; /* the watchdog was left behind: keep l */
	uint64_t        restarts; /* under mtx */
};

/* Wait up to \p ms unless stopping. Call with mtx held.
 * @returns true when stopping. */
static bool
lsn__pause(struct mri_listeners *l, int ms)
{
	uint64_t deadline = mri_deadline_in((uint64_t)ms);

	while (!l->stopping &&
	       mri_cond_wait_until(&l->cv, &l->mtx, deadline) != ETIMEDOUT)
		;
	return l->stopping;
}

/* The counters \p name of listener \p i, from nng's statistics.
 * @returns 0, or -1 when nng keeps no statistics of it. */
static int
lsn__stat(struct mri_listeners *l, size_t i, const char *name,
	  uint64_t *out)
{
	nng_stat *all, *ls, *c;
	int       rc = -1;

	if (nng_stats_get(&all) != 0)
		return -1;
	if ((ls = nng_stat_find_listener(all, l->v[i].l)) != NULL &&
	    (c = nng_stat_find(ls, name)) != NULL) {
		*out = nng_stat_value(c);
		rc   = 0;
	}
	nng_stats_free(all);
	return rc;
}

/* Dial listener \p i and see whether it accepts the connection. Call
 * without mtx.
 * @returns 1 accepted, 0 not accepted (wedged), -1 unknown (the dial
 *          itself failed, or no statistics). */
static int
lsn__probe(struct mri_listeners *l, size_t i)
{
	nng_socket req;
	uint64_t   before, now;
	int        rv, verdict = 0;

	if (lsn__stat(l, i, "accept", &before) != 0)
		return -1;
	if (nng_req0_open(&req) != 0)
		return -1;
	// Synchronous: returns once the handshake is done on our side, so
	// that closing it later cannot itself trip nng's #1518.
	if ((rv = nng_dial(req, l->v[i].url, NULL, 0)) != 0) {
		if (!l->v[i].told)
			mri_notice("component=server msg=\"the listeners' "
				   "watchdog cannot dial %s (%s): it is not "
				   "watched\"",
				   l->v[i].url, nng_strerror(rv));
		l->v[i].told = true;
		nng_close(req);
		return -1;
	}
	pthread_mutex_lock(&l->mtx);
	for (int waited = 0; waited < LSN__PROBE_MS; waited += 20) {
		pthread_mutex_unlock(&l->mtx);
		if (lsn__stat(l, i, "accept", &now) == 0 && now > before)
			verdict = 1;
		pthread_mutex_lock(&l->mtx);
		// nng offers no event for an accept: its counter is polled.
		if (verdict || lsn__pause(l, 20))
			break;
	}
	if (!verdict && l->stopping)
		verdict = -1;
	pthread_mutex_unlock(&l->mtx);
	nng_close(req);
	return verdict;
}

/* Close listener \p i and listen again on its URL. Call without mtx. */
static void
lsn__restart(struct mri_listeners *l, size_t i)
{
	int rv;

	mri_warn("component=server msg=\"listener %s accepts no connection "
		 "(nng 1.5.2 issue #1518: a connection closed during its "
		 "handshake); listening again, its connections close\"",
		 l->v[i].url);
	nng_listener_close(l->v[i].l);
	if ((rv = nng_listen(l->sock, l->v[i].url, &l->v[i].l, 0)) != 0) {
		mri_err("component=server msg=\"cannot listen again on %s: "
			"%s\"",
			l->v[i].url, nng_strerror(rv));
		return;
	}
	l->v[i].other = 0;
	pthread_mutex_lock(&l->mtx);
	l->restarts++;
	pthread_mutex_unlock(&l->mtx);
	mri_notice("component=server msg=\"listening again\" url=%s",
		   l->v[i].url);
}

static void *
lsn__watch(void *arg)
{
	struct mri_listeners *l = arg;

	pthread_mutex_lock(&l->mtx);
	while (!lsn__pause(l, LSN__PERIOD_MS)) {
		pthread_mutex_unlock(&l->mtx);
		for (size_t i = 0; i < l->n; i++) {
			uint64_t other;

			// inproc:// has no handshake (nng's issue #1518 is
			// ipc's and tcp's), and counts a connection that
			// closes, as an HTTP session's does, as an "other"
			// error: not watched.
			if (strncmp(l->v[i].url, "inproc://", 9) == 0 ||
			    lsn__stat(l, i, "other", &other) != 0 ||
			    other == l->v[i].other)
				continue;
			l->v[i].other = other;
			pthread_mutex_lock(&l->mtx);
			if (lsn__pause(l, LSN__SETTLE_MS)) {
				pthread_mutex_unlock(&l->mtx);
				break;
			}
			pthread_mutex_unlock(&l->mtx);
			if (lsn__probe(l, i) == 0)
				lsn__restart(l, i);
		}
		pthread_mutex_lock(&l->mtx);
	}
	l->exited = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mtx);
	return NULL;
}

int
mri_listeners_start(struct mri_listeners **out, nng_socket sock,
		    char *const *urls, size_t n, char *errstr,
		    size_t errstr_size)
{
	struct mri_listeners *l;
	int                   rv;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->v = calloc(n ? n : 1, sizeof(*l->v))) == NULL) {
		free(l);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	l->sock = sock;
	pthread_mutex_init(&l->mtx, NULL);
	mri_cond_init(&l->cv);
	for (size_t i = 0; i < n; i++) {
		if ((l->v[i].url = strdup(urls[i])) == NULL) {
			snprintf(errstr, errstr_size, "out of memory");
			mri_listeners_free(l);
			return MR_ENOMEM;
		}
		l->n++;
		rv = nng_listen(sock, urls[i], &l->v[i].l, 0);
		if (rv != 0) {
			snprintf(errstr, errstr_size, "cannot listen on %s: %s",
				 urls[i], nng_strerror(rv));
			mri_listeners_free(l);
			return MR_ETRANSPORT;
		}
		mri_notice("component=server msg=\"listening\" url=%s",
			   urls[i]);
	}
	if (pthread_create(&l->thread, NULL, lsn__watch, l) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		mri_listeners_free(l);
		return MR_ENOMEM;
	}
	l->running = true;
	*out       = l;
	return MR_OK;
}

void
mri_listeners_close(struct mri_listeners *l)
{
	if (l == NULL)
		return;
	if (l->running) {
		uint64_t deadline = mri_deadline_in(LSN__JOIN_MS);
		bool     exited;

		pthread_mutex_lock(&l->mtx);
		l->stopping = true;
		pthread_cond_broadcast(&l->cv);
		while (!l->exited &&
		       mri_cond_wait_until(&l->cv, &l->mtx, deadline) !=
			   ETIMEDOUT)
			;
		exited = l->exited;
		pthread_mutex_unlock(&l->mtx);
		if (exited) {
			pthread_join(l->thread, NULL);
		} else {
			// Its probe's nng_close never returns once nng's
			// reaper is wedged (docs/ARCHITECTURE.md).
			mri_warn("component=server msg=\"the listeners' "
				 "watchdog did not stop within %d ms: its "
				 "probe is stuck closing its nng socket (nng "
				 "1.5.2's reaper is wedged); going on without "
				 "it\"",
				 LSN__JOIN_MS);
			pthread_detach(l->thread);
			l->abandoned = true;
		}
		l->running = false;
	}
	for (size_t i = 0; i < l->n; i++)
		if (nng_listener_id(l->v[i].l) > 0) {
			nng_listener_close(l->v[i].l);
			l->v[i].l = (nng_listener)NNG_LISTENER_INITIALIZER;
		}
}

void
mri_listeners_free(struct mri_listeners *l)
{
	if (l == NULL)
		return;
	mri_listeners_close(l);
	if (l->abandoned)
		return; // the watchdog's thread still holds l: left as it is
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].url);
	free(l->v);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mtx);
	free(l);
}

uint64_t
mri_listeners_restarts(struct mri_listeners *l)
{
	uint64_t n;

	pthread_mutex_lock(&l->mtx);
	n = l->restarts;
	pthread_mutex_unlock(&l->mtx);
	return n;
}
