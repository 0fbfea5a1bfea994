/*
 * mailroomd's listeners on its nng socket, and their watchdog.
 *
 * nng 1.5.2 (Debian 12's) has issue #1518, fixed in nng 1.6.0: when a
 * connection closes while nng sends its handshake (an ipc:// peer that
 * connected and went away before mailroomd accepted it; sendmsg fails with
 * EPIPE, which nng maps to NNG_ECLOSED), the transport fails the
 * listener's pending accept with NNG_ECLOSED; the listener takes that for
 * its own close and never accepts again. Connections made before go on;
 * every new one is taken by the kernel and never served.
 *
 * The watchdog looks at each listener's "other" error count (nng's
 * statistics) once a second. When it grew, it dials the listener itself
 * and waits for the listener's "accept" count to grow: a listener that
 * accepts nothing is closed and made again on the same URL. Closing a
 * listener closes the connections it accepted: their clients reconnect
 * (and the C client resends what it awaits).
 *
 * Thread safety: start, close and free from one thread; the watchdog runs
 * on a thread of its own, started by mri_listeners_start and joined by
 * mri_listeners_close (or, if nng's reaper is wedged and its probe never
 * closes, left behind after a few seconds: docs/ARCHITECTURE.md).
 */
#ifndef MRI_LISTENERS_H
#define MRI_LISTENERS_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

struct mri_listeners;

/**
 * @brief Listen on each of \p urls (borrowed for the call) on \p sock, and
 *        start the watchdog.
 * @returns MR_OK and a new set in *out, or MR_ETRANSPORT / MR_ENOMEM with
 *          a sentence in errstr (nothing listens then).
 */
int mri_listeners_start(struct mri_listeners **out, nng_socket sock,
			char *const *urls, size_t n, char *errstr,
			size_t errstr_size);

/** @brief Stop the watchdog (bounded by a probe: about 3 s at most; left
 *         behind with a warning after 5 s, when nng is wedged), then close
 *         every listener and the connections they accepted.
 *         Idempotent; NULL is a no-op. */
void mri_listeners_close(struct mri_listeners *l);

/** @brief Close (as above) and free; NULL is a no-op. */
void mri_listeners_free(struct mri_listeners *l);

/** @returns how many times a listener was made again (for tests). */
uint64_t mri_listeners_restarts(struct mri_listeners *l);

#endif
