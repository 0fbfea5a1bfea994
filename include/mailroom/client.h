/*
 * The C client of mailroomd: connect, publish one, publish a batch, publish
 * asynchronously with a completion callback, status, admin, close.
 *
 * A client holds one nng req0 socket (tcp:// or ipc://) and up to
 * max_inflight requests in flight on it; each request may carry up to
 * 100,000 messages. A publish is acknowledged only after Kafka accepted the
 * record (acks=all).
 *
 * Order: the publishes of one client are numbered in one stream, and
 * mailroomd hands them to Kafka in that order, however many are in flight:
 * messages that one client publishes to one key (one actor) are written in
 * the order of its mr_publish* calls (calls made one after another; calls
 * racing on several threads have no order). Nothing is promised between
 * two clients.
 *
 * Coalescing: mr_publish_async calls are gathered into one PUBLISH frame,
 * since a frame costs the client and mailroomd far more than a message in
 * it. A call is added to the pending frame and returns; the frame is sent
 * when linger_us (mr_client_opts; 200 by default) has passed since its
 * first call, when it holds linger_msgs messages (1000) or 1 MiB, and
 * before anything else is published: mr_publish and mr_publish_batch send
 * what is pending first, then their own request at once (they never
 * linger), and mr_client_drain and mr_client_free send it at once. A call
 * made while no publish of the client awaits its reply is sent at once,
 * and so is a call of linger_msgs messages or 1 MiB or more (a frame of
 * its own: a call is never split). While max_inflight requests are out,
 * the pending frame waits for the next one free, and gathers calls
 * meanwhile. Each call keeps its own callback, called once with its own
 * acks; a request's failure (MR_EINDOUBT after the timeout, or an error
 * that says nothing was written) reaches every call of the frame. The
 * timeout counts from when the frame is sent. A frame is one request to
 * mailroomd's backpressure too: messages of one frame for one partition
 * are admitted or refused together, so a bound may be passed by up to a
 * frame (linger_msgs). linger_us < 0 turns coalescing off: every call is
 * a request of its own, as before.
 *
 * Resends: every message gets its id (a UUIDv7 when mr_message.id is NULL)
 * when it is first encoded, and keeps it. When the connection is lost with
 * a publish in flight, or mailroomd refuses it for now (draining, or an
 * earlier request of the stream not there yet), the client sends it again,
 * the same bytes in the same order, until the client's timeout; mailroomd's
 * dedupe window (and a consumer's, by id) makes a resend of what was
 * written a duplicate, not a second message. When the timeout passes with
 * the outcome still unknown, the acks say MR_EINDOUBT and carry the ids:
 * publish those again with the same ids.
 *
 * Thread safety: a client may be used from many threads at once. Callbacks
 * run on one of nng's threads (or, for a send that fails at once, on the
 * thread that sent it: a publishing call's, or the client's linger
 * thread); they must not block, and may publish again.
 */
#ifndef MAILROOM_CLIENT_H
#define MAILROOM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MR_DEFAULT_URL "tcp://127.0.0.1:7450"
#define MR_ID_MAX 255

typedef struct mr_client mr_client;

/** @brief One header: a name and binary-safe bytes. */
typedef struct mr_header {
	const char *name;
	const void *value;
	size_t      value_len;
} mr_header;

/**
 * @brief A message to publish. Every pointer is borrowed for the call only
 *        (the client copies what it sends).
 */
typedef struct mr_message {
	const char      *topic;   /**< required */
	const void      *key;     /**< NULL: keyless */
	size_t           key_len; /**< may be 0 with a non-NULL key */
	const void      *payload; /**< binary-safe; NULL with 0 is empty */
	size_t           payload_len;
	const char      *id;      /**< ce_id; NULL: the client assigns one */
	const char      *type;    /**< ce_type, or NULL */
	const char      *source;  /**< ce_source, or NULL */
	const char      *content_type;   /**< content-type, or NULL */
	const char      *reply_to;       /**< mr_reply_to, or NULL */
	const char      *correlation_id; /**< mr_correlation_id, or NULL */
	const mr_header *headers;        /**< more headers, in order */
	size_t           header_count;
} mr_message;

/** @brief The outcome of one message. */
typedef struct mr_ack {
	int      status;    /**< MR_OK, or why this message failed */
	bool     duplicate; /**< an earlier publish of this id was acked */
	int32_t  partition;
	int64_t  offset;
	char     topic[250];
	char     id[MR_ID_MAX + 1];
	char     error[256]; /**< mailroomd's sentence when status != MR_OK */
	/* Backpressure (the topic's consumers are behind its bound): */
	int      held_ms;        /**< how long mailroomd held it; 0: not */
	int      retry_after_ms; /**< MR_EBUSY: when to send it again */
	int64_t  lag;            /**< MR_EBUSY: the consumers' lag seen */
	int64_t  bound;          /**< MR_EBUSY: the bound it passed */
	bool     time_bound;     /**< MR_EBUSY: lag and bound are ms of time
				      lag, not messages */
} mr_ack;

typedef struct mr_client_opts {
	int timeout_ms;   /**< per request, resends included; 0: 60000 */
	int max_inflight; /**< requests in flight; 0: 64 */
	int max_frame;    /**< largest frame sent; 0: 16 MiB */
	/** mr_publish and mr_publish_batch send again, with the same ids,
	 *  the messages backpressure refused (MR_EBUSY) after their
	 *  retry_after_ms, until this many ms after the call; 0: never (an
	 *  MR_EBUSY ack is returned). mr_publish_async never does. */
	int busy_retry_ms;
	/** Coalescing: how long an mr_publish_async call may wait, in
	 *  microseconds, for others to share its frame; 0: 200; negative:
	 *  never (every call is a frame of its own). */
	int linger_us;
	/** The most messages a coalesced frame gathers; 0: 1000 (and never
	 *  more than 1 MiB of messages, nor max_frame). */
	int linger_msgs;
} mr_client_opts;

/**
 * @brief Connect to mailroomd at \p url (NULL: $MAILROOM_URL, else
 *        MR_DEFAULT_URL). Fails with MR_ECONNREFUSED when nothing listens
 *        there; a connection lost later is re-established by itself, and
 *        publishes in flight on it are sent again (see Resends above).
 *        With $MAILROOM_CLIENT_TRACE set (not empty), the client writes a
 *        line to stderr for each connection made or lost and each resend.
 * @param opts NULL for defaults.
 * @returns MR_OK and a new client in *out, or an mr_err with a sentence in
 *          errstr.
 */
MR_API int mr_client_new(mr_client **out, const char *url,
			 const mr_client_opts *opts, char *errstr,
			 size_t errstr_size);

/** @brief Wait for every asynchronous publish, then close; NULL is a no-op. */
MR_API void mr_client_free(mr_client *c);

/**
 * @brief Publish one message and wait for its ack. Sent at once, after
 *        whatever mr_publish_async calls are pending (Coalescing above).
 * @returns MR_OK when Kafka has it (ack filled), the message's own error
 *          (ack filled, ack->error says why), or a request error (the
 *          ack's status is the same).
 */
MR_API int mr_publish(mr_client *c, const mr_message *msg, mr_ack *ack);

/**
 * @brief Publish \p n messages in one request and wait (sent at once,
 *        after what is pending, as mr_publish). acks[i] is the
 *        outcome of msgs[i]. With busy_retry_ms (mr_client_opts), the
 *        messages refused with MR_EBUSY are sent again, in their order,
 *        after the largest of their retry_after_ms, until that deadline;
 *        their acks are the last send's (held_ms adds up).
 * @returns MR_OK if every message was acked, MR_EKAFKA-like codes of the
 *          first failed message otherwise, or the request's error (then
 *          every ack has it).
 */
MR_API int mr_publish_batch(mr_client *c, const mr_message *msgs, size_t n,
			    mr_ack *acks);

/**
 * @brief Called once per mr_publish_async that returned MR_OK, on an nng
 *        thread. \p acks (borrowed, valid during the call) has \p n
 *        entries in the order of the messages; \p status is MR_OK or the
 *        request's error (then every ack carries it, with the message's
 *        topic and id): MR_EINDOUBT when its outcome is unknown after the
 *        client's timeout; any other error means nothing of it was written.
 *        A message's own status may be MR_EINDOUBT too (Kafka did not
 *        confirm it in time, but may have it).
 */
typedef void (*mr_publish_cb)(void *arg, int status, const mr_ack *acks,
			      size_t n);

/**
 * @brief Publish \p n messages and return; \p cb gets their acks. The
 *        messages are encoded (and given their ids) before the call
 *        returns, and go in one frame, with the calls before and after it
 *        unless coalescing is off or the call is large (Coalescing above).
 *        Blocks while max_inflight requests are in flight and the pending
 *        frame has no room for the call (or with coalescing off, while
 *        max_inflight requests are in flight).
 * @returns MR_OK (cb will be called once), or an error (cb will not be).
 */
MR_API int mr_publish_async(mr_client *c, const mr_message *msgs, size_t n,
			    mr_publish_cb cb, void *arg);

/** @brief Send what is pending (Coalescing above) at once, then wait until
 *         no asynchronous publish is pending or in flight. */
MR_API int mr_client_drain(mr_client *c, int timeout_ms);

/**
 * @brief mailroomd's status as JSON.
 * @returns MR_OK and *json (new: free() it), or an mr_err.
 */
MR_API int mr_status(mr_client *c, char **json);

/**
 * @brief Run an admin operation: \p request is a JSON object such as
 *        {"op":"topics.create","topic":"orders","partitions":8}.
 * @returns MR_OK and *json (new: free() it; {"ok":false,...} is still
 *          MR_OK), or an mr_err for the request itself.
 */
MR_API int mr_admin(mr_client *c, const char *request, char **json);

/** @brief The last request error's sentence from mailroomd (borrowed,
 *         thread-local; "" when none). */
MR_API const char *mr_client_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
