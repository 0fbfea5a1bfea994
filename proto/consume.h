/*
 * The consume side of the service protocol (docs/PROTOCOL.md, "Consuming"):
 * SUBSCRIBE and its reply are JSON; FETCH, FETCH_REPLY, SETTLE (ack, nack,
 * extend and reject, in ranges of delivery handles), SETTLE_REPLY and
 * UNSUBSCRIBE are binary, little-endian, with the 12-byte frame header of
 * frame.h.
 *
 * As in frame.h: decoders never trust a length and refuse a body whole
 * before anything in it is acted on; decoded views borrow the body's bytes
 * and are valid only while it is.
 *
 * Thread safety: no shared state; a writer or a view belongs to one thread.
 */
#ifndef MRI_CONSUME_H
#define MRI_CONSUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

enum mri_consume_op {
	MRI_OP_SUBSCRIBE   = 0x04, /* JSON both ways */
	MRI_OP_FETCH       = 0x05,
	MRI_OP_SETTLE      = 0x06,
	MRI_OP_UNSUBSCRIBE = 0x07, /* u64 session; the reply's body is empty */
	MRI_OP_SUBSCRIBE_REPLY   = MRI_OP_SUBSCRIBE | MRI_OP_REPLY,
	MRI_OP_FETCH_REPLY       = MRI_OP_FETCH | MRI_OP_REPLY,
	MRI_OP_SETTLE_REPLY      = MRI_OP_SETTLE | MRI_OP_REPLY,
	MRI_OP_UNSUBSCRIBE_REPLY = MRI_OP_UNSUBSCRIBE | MRI_OP_REPLY,
};

/* Limits that the decoders enforce (and the encoders respect). */
#define MRI_FETCH_MAX_MSGS 100000    /* messages in one FETCH_REPLY */
#define MRI_FETCH_MAX_WAIT_MS 300000 /* a FETCH waits at most 5 minutes */
#define MRI_SETTLE_MAX 1000000       /* handles settled by one SETTLE */
#define MRI_SETTLE_RANGES_MAX 100000 /* ranges in one SETTLE */
#define MRI_REASON_MAX 1024          /* a nack's or reject's reason, bytes */

/* FETCH: u64 session, u32 max_msgs (1..MRI_FETCH_MAX_MSGS), u32 max_bytes
 * (0: no limit but the frame's), u32 max_wait_ms (0..MRI_FETCH_MAX_WAIT_MS).
 */
struct mri_fetch {
	uint64_t session;
	uint32_t max_msgs;
	uint32_t max_bytes;
	uint32_t max_wait_ms;
};

/** @brief Build a whole FETCH frame into \p b. */
void mri_fetch_encode(struct mri_wbuf *b, const struct mri_fetch *f);

/**
 * @returns MR_OK, MR_EPROTO (the body is not 20 bytes) or MR_EINVAL
 *          (max_msgs or max_wait_ms out of range), with a static sentence
 *          in *why on failure.
 */
int mri_fetch_decode(const void *body, size_t len, struct mri_fetch *out,
		     const char **why);

#define MRI_MSG_F_KEY 0x01        /* the record has a key (may be empty) */
#define MRI_MSG_F_REDELIVERY 0x02 /* handed out before (attempt > 1, or
				     delivered before a restart) */

/*
 * One message of a FETCH_REPLY, in this order on the wire:
 *   u64 handle, u16 topic_len, topic, i32 partition, i64 offset,
 *   i64 timestamp_ms (Kafka's record timestamp, -1 if none), u32 attempt
 *   (1 on the first delivery), u8 flags, u8 id_len, id (ce_id, or
 *   "topic/partition/offset" for a record without one), u32 key_len, key,
 *   u16 hdr_count, headers as in PUBLISH (u16 name_len, name, u32
 *   value_len, value), u32 payload_len, payload.
 * The body is u32 count, then count messages.
 */
struct mri_msg_view {
	uint64_t       handle;
	const char    *topic;
	uint16_t       topic_len;
	int32_t        partition;
	int64_t        offset;
	int64_t        timestamp_ms;
	uint32_t       attempt;
	uint8_t        flags;
	const char    *id;
	uint8_t        id_len;
	const void    *key;
	uint32_t       key_len;
	uint16_t       hdr_count;
	const uint8_t *hdrs; /* hdr_count encoded headers: mri_pub_next_hdr */
	const void    *payload;
	uint32_t       payload_len;
};

/**
 * @brief Append one message to a FETCH_REPLY body; its headers are
 *        \p hdrs (m->hdr_count of them; m->hdrs is ignored). The caller
 *        writes the count (mri_wbuf_patch_u32).
 */
void mri_msg_encode(struct mri_wbuf *b, const struct mri_msg_view *m,
		    const struct mri_hdr_view *hdrs);

/** @returns the encoded size of \p m with \p hdrs, for max_bytes. */
size_t mri_msg_size(const struct mri_msg_view *m,
		    const struct mri_hdr_view *hdrs);

/*
 * Encoding in place, into memory the caller sized (an nng_msg's body):
 * a FETCH_REPLY frame is MRI_FETCH_REPLY_HDR_LEN bytes of header and count
 * (mri_fetch_reply_put_hdr), then each message (mri_msg_put, mri_msg_size
 * bytes). The bytes are those of the wbuf encoders, which are built on
 * these.
 */
#define MRI_FETCH_REPLY_HDR_LEN (MRI_FRAME_HDR_LEN + 4)

/**
 * @brief Write message \p m at \p out, which has room for
 *        mri_msg_size(m, hdrs) bytes. @returns the bytes written.
 */
size_t mri_msg_put(uint8_t *out, const struct mri_msg_view *m,
		   const struct mri_hdr_view *hdrs);

/**
 * @brief Write a FETCH_REPLY frame's header and message count at \p out
 *        (MRI_FETCH_REPLY_HDR_LEN bytes); \p frame_len is the whole
 *        frame's (at most MRI_FRAME_HDR_LEN + UINT32_MAX).
 */
void mri_fetch_reply_put_hdr(uint8_t *out, size_t frame_len, uint32_t count);

/** @brief Overwrite 4 bytes at \p at (a count written earlier as 0). */
void mri_wbuf_patch_u32(struct mri_wbuf *b, size_t at, uint32_t v);

/**
 * @brief Decode a FETCH_REPLY body into a new array (free() it; NULL when
 *        *count is 0).
 * @returns MR_OK, MR_EPROTO or MR_ENOMEM.
 */
int mri_fetch_reply_decode(const void *body, size_t len,
			   struct mri_msg_view **out, uint32_t *count,
			   const char **why);

enum mri_settle_kind {
	MRI_SETTLE_ACK    = 0,
	MRI_SETTLE_NACK   = 1, /* handed out again, attempt raised */
	MRI_SETTLE_EXTEND = 2, /* deadline moved to now + extend_ms */
	MRI_SETTLE_REJECT = 3, /* a nack asking for no retry: quarantined in
				  the dead-letter topic at once */
};

/* In SETTLE's kind byte, with MRI_SETTLE_ACK: the reply may wait a little
 * (mailroomd's consumer.journal_linger_ms) for other acks to share the
 * journal's write. A client that sends its next SETTLE without waiting for
 * this one's reply sets it; one that waits does not. */
#define MRI_SETTLE_F_LINGER 0x80

/* A run of consecutive delivery handles. */
struct mri_range {
	uint64_t first;
	uint32_t count; /* >= 1 */
};

/*
 * SETTLE: u64 session, u8 kind (| MRI_SETTLE_F_LINGER), u32 extend_ms
 * (EXTEND: > 0; otherwise 0), u16 reason_len, reason (NACK and REJECT only;
 * UTF-8 text), u32 range_count (1..MRI_SETTLE_RANGES_MAX), ranges (u64
 * first, u32 count); the handles add up to at most MRI_SETTLE_MAX and no
 * range wraps past UINT64_MAX.
 */
struct mri_settle {
	uint64_t       session;
	uint8_t        kind;   /* without MRI_SETTLE_F_LINGER */
	bool           linger; /* MRI_SETTLE_F_LINGER: ack only */
	uint32_t       extend_ms;
	const char    *reason;
	uint16_t       reason_len;
	uint32_t       range_count;
	uint64_t       handles; /* the sum of the counts */
	const uint8_t *ranges;  /* range_count encoded: mri_settle_range */
};

/**
 * @brief Build a whole SETTLE frame of the \p n \p ranges; s->ranges,
 *        s->range_count and s->handles are ignored.
 */
void mri_settle_encode(struct mri_wbuf *b, const struct mri_settle *s,
		       const struct mri_range *ranges, uint32_t n);

/** @returns MR_OK, MR_EPROTO or MR_EINVAL (bad kind, zero count, ...). */
int mri_settle_decode(const void *body, size_t len, struct mri_settle *out,
		      const char **why);

/** @brief The \p i-th range of a decoded SETTLE (i < range_count). */
void mri_settle_range(const struct mri_settle *s, uint32_t i,
		      struct mri_range *r);

/* SETTLE_REPLY: u32 settled, u32 failed_count, then (u64 handle, u16
 * status) for each handle that was not settled (MR_ENOENT: unknown, stale
 * or no longer owned). */
struct mri_settle_fail {
	uint64_t handle;
	uint16_t status;
};

/** @returns the size of a whole SETTLE_REPLY frame of \p nf failures. */
size_t mri_settle_reply_size(uint32_t nf);

/**
 * @brief Write a SETTLE_REPLY frame's header and counts at the start of
 *        \p out, a frame of mri_settle_reply_size(nf) bytes; its failures
 *        are written with mri_settle_fail_put.
 */
void mri_settle_reply_put_hdr(uint8_t *out, uint32_t settled, uint32_t nf);

/** @brief Write failure \p i (< nf) into the SETTLE_REPLY frame \p out. */
void mri_settle_fail_put(uint8_t *out, uint32_t i, uint64_t handle,
			 uint16_t status);

/** @brief Build a whole SETTLE_REPLY frame into \p b. */
void mri_settle_reply_encode(struct mri_wbuf *b, uint32_t settled,
			     const struct mri_settle_fail *f, uint32_t nf);

/**
 * @returns MR_OK, MR_EPROTO or MR_ENOMEM; *out is new (free() it; NULL
 *          when *nf is 0).
 */
int mri_settle_reply_decode(const void *body, size_t len, uint32_t *settled,
			    struct mri_settle_fail **out, uint32_t *nf,
			    const char **why);

/** @brief Build a whole UNSUBSCRIBE frame. */
void mri_unsubscribe_encode(struct mri_wbuf *b, uint64_t session);

/** @returns MR_OK or MR_EPROTO (the body is not exactly 8 bytes). */
int mri_unsubscribe_decode(const void *body, size_t len, uint64_t *session,
			   const char **why);

#endif
