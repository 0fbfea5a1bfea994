/*
 * Addresses: one send and one call for local and mirrored actors (issue
 * #11, item 4). An address is a local name (mr_register) or "topic/key",
 * the mirrored actor of that key (include/mailroom/mirror.h), wherever it
 * runs, reached through mailroomd and Kafka.
 *
 * mr_send_to a name casts. To topic/key it publishes a record of that key
 * whose payload is the message's bytes, with the header mr_type (the
 * message type, in decimal): the mirrored actor gets it in handle_cast as
 * a message of that type (msg->data and msg->len are the payload), not as
 * an MR_MSG_DELIVERY.
 *
 * mr_call_to a name calls. To topic/key it publishes as a send does, with
 * mr_reply_to (the router's reply address: its reply topic and, as the
 * key, the router's id) and mr_correlation_id (new for each call); the
 * mirrored actor's handle_call gets it with a from that mr_reply (or
 * mr_reply_error) answers, at once or later: the mirror publishes the
 * reply to that address with the correlation id (and mr_status, the error
 * name, for an error), and the router's consumer of its reply topic (a
 * group of its own, exclusive, from the end of the topic) hands it to the
 * caller waiting for it.
 *
 * Where remote differs, and the API says so:
 *  - a send or call fails when the publish does: MR_ECONNREFUSED (no
 *    mailroomd), MR_ETIMEDOUT, MR_EINDOUBT (it may have been written);
 *  - a remote call's MR_ETIMEDOUT means no reply came in time: the message
 *    may have been handled, and its reply lost or late (a late reply is
 *    dropped); MR_ECLOSED means the actor ended before it answered (a
 *    crash, a passivation, a hand-off): the message may have been
 *    handled, or may be handled again (a crash's record is delivered
 *    again);
 *  - the publish of a remote send or call waits up to the client's own
 *    timeout (mr_client_opts), whatever a call's timeout_ms;
 *  - delivery is at least once: a redelivery after the actor's process
 *    crashed runs the handler again (a durable type skips what its
 *    snapshot already reflects), so a reply may be computed twice;
 *  - a remote call's reply arrives only while the router runs: a call
 *    needs its router alive until the call returns.
 *
 * Thread safety: every function but mr_router_free from any thread, calls
 * concurrently.
 */
#ifndef MAILROOM_ROUTER_H
#define MAILROOM_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "mailroom/actor.h"
#include "mailroom/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mr_router mr_router;

/** @brief The topic of replies when none is given. */
#define MR_REPLY_TOPIC "mailroom.replies"

/** @brief Options; zero the struct, a zero member is the default. */
typedef struct mr_router_opts {
	/** where replies to this router's calls come (made if missing, with
	 *  one hour of retention on real Kafka); NULL: MR_REPLY_TOPIC */
	const char *reply_topic;
	/** how long mr_router_new waits for its reply consumer; 0: 30000 */
	int ready_timeout_ms;
} mr_router_opts;

/**
 * @brief A router for \p sys's local names and, through \p c, topic/key
 *        addresses (both borrowed: they outlive the router). It subscribes
 *        to its reply topic and returns once a probe it published there
 *        came back (replies can reach it).
 * @returns MR_OK, MR_EINVAL, MR_ENOMEM, or mr_admin's, mr_subscribe's,
 *          mr_publish's or the reply consumer's error (MR_ETIMEDOUT: no
 *          probe back in time), with a sentence on stderr.
 */
MR_API int mr_router_new(mr_router **out, mr_system *sys, mr_client *c,
			 const mr_router_opts *opts);

/**
 * @brief Send \p len bytes of \p data, of type \p type, to \p addr.
 * @returns MR_OK (a local cast was queued; a remote one is in Kafka),
 *          MR_EINVAL (an empty address, an empty topic or key), MR_ENOENT
 *          (no such name), mr_cast's errors, or mr_publish's (with the
 *          sentence in mr_client_last_error()).
 */
MR_API int mr_send_to(mr_router *r, const char *addr, uint32_t type,
		      const void *data, size_t len);

/**
 * @brief Call \p addr with \p len bytes of \p data, of type \p type, and
 *        wait up to \p timeout_ms (> 0) for the reply (*reply: new, free()
 *        it, NULL when empty; *reply_len), as mr_call.
 * @returns MR_OK, the error the handler replied with (mr_reply_error),
 *          MR_ECLOSED (the actor ended first), MR_ETIMEDOUT, MR_EINVAL,
 *          MR_ENOENT (no such name), mr_call's errors, mr_publish's, or
 *          the error that ended the router's reply consumer (no reply can
 *          come any more).
 */
MR_API int mr_call_to(mr_router *r, const char *addr, uint32_t type,
		      const void *data, size_t len, int timeout_ms,
		      void **reply, size_t *reply_len);

/** @returns the router's id: the key of its replies. */
MR_API const char *mr_router_id(const mr_router *r);

/** @brief Stop the reply consumer and free the router (no call of it in
 *         progress); NULL is a no-op. */
MR_API void mr_router_free(mr_router *r);

#ifdef __cplusplus
}
#endif

#endif
