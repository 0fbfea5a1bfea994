/*
 * mailroomd's front door: an nng rep0 socket listening on every configured
 * URL, with max_inflight contexts, so that many requests of one connection
 * and of many connections are worked on at once. PUBLISH is answered when
 * Kafka confirmed or refused each record; STATUS and ADMIN carry JSON.
 *
 * Thread safety: new, start, drain and free from one thread (the daemon's
 * main thread); the rest runs on nng's and the producer's threads.
 */
#ifndef MRI_SERVER_H
#define MRI_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct mri_config;
struct mri_embedded;
struct mri_server;

/**
 * @brief Make the producer and the socket; listen on nothing yet.
 * @param emb the embedded cluster, or NULL when brokers are configured
 *        (borrowed: it must outlive the server).
 * @returns MR_OK, or an mr_err with a sentence in errstr.
 */
int mri_server_new(struct mri_server **out, const struct mri_config *cfg,
		   const char *bootstrap, struct mri_embedded *emb,
		   char *errstr, size_t errstr_size);

/** @brief Listen and serve. @returns MR_OK or an mr_err with errstr. */
int mri_server_start(struct mri_server *s, char *errstr, size_t errstr_size);

/** @returns the inproc:// URL the server listens on besides the
 *           configured ones (the HTTP API's connections), once started
 *           with http.listen set; "" otherwise. */
const char *mri_server_inproc(const struct mri_server *s);

/** @brief Apply the reloadable settings of \p cfg. */
void mri_server_reload(struct mri_server *s, const struct mri_config *cfg);

/**
 * @brief Stop accepting, refuse new requests with MR_ESHUTDOWN, wait up to
 *        \p timeout_ms for Kafka to confirm what is in flight, fail the
 *        rest, and send every reply.
 */
void mri_server_drain(struct mri_server *s, int timeout_ms);

/**
 * @brief Close and free; NULL is a no-op.
 * @returns false if nng did not close the socket within a few seconds
 *          (nng 1.5.2's wedged reaper, docs/ARCHITECTURE.md): one warning
 *          was logged, \p s is left behind, and the process should exit
 *          without closing anything else of nng.
 */
bool mri_server_free(struct mri_server *s);

#endif
