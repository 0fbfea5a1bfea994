/*
 * The order of a publisher's requests (docs/PROTOCOL.md, *Order*).
 *
 * mailroomd works on many requests at once, on several threads, so two
 * requests of one publisher can reach the producer in either order. A
 * publisher that numbers its requests (a stream id and a sequence number per
 * request, and the oldest number it still awaits a reply for: its base)
 * gets them handed to the producer in its order, one at a time:
 *
 *   - a stream starts at the base of the first request seen from it;
 *   - the request whose seq is the stream's next takes the turn; the others
 *     wait (are parked) until theirs comes; a base beyond next moves next
 *     up to it (the publisher no longer waits for what lies before);
 *   - mri_order_done gives the turn to the next request;
 *   - a request numbered before next is a resend of one already handed
 *     off (or given up on): it goes at once, without the turn, and the
 *     publish dedupe makes it a duplicate;
 *   - a request that waited longer than the limit for one that did not
 *     arrive is taken back by mri_order_expire, to be refused (MR_EORDER):
 *     nothing of it was written, and its publisher sends it again; but
 *     while the request that holds the turn is held (mri_order_hold:
 *     backpressure holds it for up to its block time), none of its stream
 *     is taken back;
 *   - a stream with nothing parked and no turn taken is forgotten after it
 *     was idle for the idle limit; its publisher's next request starts it
 *     again from its base.
 *
 * Requests the front door refuses before handing them to the order (a bad
 * frame, draining) are not seen: they do not move the stream.
 *
 * A pure data structure: no I/O, no clock (callers pass now), no threads of
 * its own. Thread safety: every call takes the order's lock; items belong
 * to their caller except while parked.
 */
#ifndef MRI_ORDER_H
#define MRI_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** @brief A request in the order; embedded in the caller's request. */
struct mri_order_item {
	struct mri_order_item *next; /* in a list returned, or parked */
	uint64_t               stream;
	uint32_t               seq;
	bool                   turn;      /* holds its stream's turn */
	uint64_t               parked_ms; /* when it arrived */
	void                  *arg;       /* the caller's */
};

struct mri_order_table;

struct mri_order_stats {
	size_t   streams;
	size_t   parked;
	uint64_t expired;
};

/**
 * @brief A new, empty order. At most \p max_streams streams are known at
 *        once; a stream idle for \p idle_ms is forgotten.
 * @returns MR_OK or MR_ENOMEM.
 */
int mri_order_new(struct mri_order_table **out, size_t max_streams,
		  uint64_t idle_ms);

/** @brief Free the order; NULL is a no-op. Nothing may be parked. */
void mri_order_free(struct mri_order_table *o);

/**
 * @brief A request arrives: \p it (stream, seq and arg set by the caller)
 *        with its publisher's \p base.
 * @returns the requests that may go now, in the order to hand them off
 *          (possibly \p it, possibly others whose turn this made come;
 *          NULL when \p it was parked). Each must be handed off and then
 *          given to mri_order_done. *full is set when the stream is new
 *          and no room is left for it: \p it is then returned alone,
 *          unordered (turn false).
 */
struct mri_order_item *mri_order_arrive(struct mri_order_table *o,
					struct mri_order_item *it,
					uint32_t base, uint64_t now_ms,
					bool *full);

/**
 * @brief \p it was handed off.
 * @returns the requests that may go now (as mri_order_arrive).
 */
struct mri_order_item *mri_order_done(struct mri_order_table *o,
				      struct mri_order_item *it,
				      uint64_t now_ms);

/**
 * @brief \p it, which holds its stream's turn, is held before its
 *        hand-off (backpressure): until mri_order_done(\p it), the
 *        requests parked behind it wait and mri_order_expire leaves them
 *        (but for wait_ms 0). A request without the turn: no-op.
 */
void mri_order_hold(struct mri_order_table *o, struct mri_order_item *it);

/**
 * @brief Take back every request parked at or before \p now_ms - \p wait_ms
 *        (every parked one with wait_ms 0), and forget streams idle for
 *        the idle limit.
 * @returns the requests taken back (new list; the caller refuses them).
 */
struct mri_order_item *mri_order_expire(struct mri_order_table *o, uint64_t now_ms,
					uint64_t wait_ms);

void mri_order_stats(struct mri_order_table *o, struct mri_order_stats *st);

#endif
