/*
 * What the rest of the client (consumer.c, consume_run.c) uses of client.c
 * and consumer.c: one request on the client's pool of nng contexts, waited
 * for, and what mr_consume_run needs of a consumer and its batches.
 *
 * Thread safety: as mr_client; each call blocks its caller only.
 */
#ifndef MRI_CLIENT_INTERNAL_H
#define MRI_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "mailroom/client.h"
#include "mailroom/consumer.h"
#include "proto/frame.h"

/**
 * @brief Send the whole frame in \p b (from mri_frame_begin to
 *        mri_frame_end; copied, the caller still owns it) and wait for its
 *        reply. The request times out after the client's timeout plus
 *        \p extra_ms (a long poll's wait).
 * @returns MR_OK and the reply in *reply (new: nng_msg_free() it; its
 *          header was checked and its op is the request's reply), or an
 *          mr_err: mailroomd's ERROR code, MR_EPROTO, a transport error;
 *          mr_client_last_error() has the sentence.
 */
int client__frame_call(mr_client *c, struct mri_wbuf *b, int extra_ms,
		       nng_msg **reply);

/**
 * @brief Send \p op with \p body (a JSON text, or NULL) and wait.
 * @returns MR_OK and the reply's body as a new NUL-terminated string in
 *          *json (free() it), or an mr_err as client__frame_call.
 */
int client__json_call(mr_client *c, uint8_t op, const char *body,
		      char **json);

/* What mr_consume_run (client/consume_run.c) uses of a consumer. */

/** @returns the credit of \p s: its SUBSCRIBE reply's, else its options';
 *           0 when unknown. */
int consumer__credit(const mr_consumer *s);

/** @returns whether the options of \p s let it subscribe again after a lost
 *           session (reconnect_timeout_ms >= 0). */
bool consumer__reconnects(const mr_consumer *s);

/** @returns the session that fetched \p b. */
uint64_t consumer__batch_session(const mr_batch *b);

/**
 * @brief mr_consumer_ack (or, with \p nack, mr_consumer_nack) of handles
 *        of \p session, which need not be the consumer's current one: a
 *        handle is only ever settled on the session that fetched it, which
 *        mailroomd refuses (MR_ENOENT) once it is gone, rather than on a new
 *        session where its number may name another delivery.
 */
int consumer__settle_on(mr_consumer *s, uint64_t session, bool nack,
			const uint64_t *handles, size_t n, const char *reason,
			size_t *failed);

/** @brief Set this thread's mr_client_last_error() to \p why (copied). */
void client__set_last_error(const char *why);

#endif
