/*
 * The service protocol's frames (docs/PROTOCOL.md): a 12-byte header and a
 * body, little-endian, binary-safe. Decoders never trust a length: every
 * field is checked against what is left of the frame, and a frame is
 * refused whole before anything in it is acted on.
 *
 * Decoded views borrow the frame's bytes: they are valid only while the
 * frame is.
 *
 * Thread safety: no shared state; a writer or a view belongs to one thread.
 */
#ifndef MRI_FRAME_H
#define MRI_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/header.h"

#define MRI_FRAME_MAGIC0 'M'
#define MRI_FRAME_MAGIC1 'R'
#define MRI_PROTO_VERSION 1
#define MRI_FRAME_HDR_LEN 12

/* Limits that the decoder enforces (and the encoder respects), with
 * proto/header.h's. */
#define MRI_BATCH_MAX 100000
#define MRI_ERRMSG_MAX 1024

enum mri_op {
	MRI_OP_PUBLISH     = 0x01,
	MRI_OP_STATUS      = 0x02,
	MRI_OP_ADMIN       = 0x03,
	MRI_OP_REPLY       = 0x80, /* or'ed into the request's op */
	MRI_OP_ERROR       = 0xff,
	MRI_OP_PUBLISH_ACK = MRI_OP_PUBLISH | MRI_OP_REPLY,
	MRI_OP_STATUS_REPLY = MRI_OP_STATUS | MRI_OP_REPLY,
	MRI_OP_ADMIN_REPLY  = MRI_OP_ADMIN | MRI_OP_REPLY,
};

/* Frame header flags. */
#define MRI_FRAME_F_SEQ 0x0001 /* PUBLISH: the body starts with a sequence */

#define MRI_PUB_F_KEY 0x01 /* the message has a key (may be empty) */
#define MRI_ACK_F_DUPLICATE 0x01
/* The ack carries backpressure's fields (held_ms and, when refused with
 * MR_EBUSY, the bound passed): docs/PROTOCOL.md, PUBLISH_ACK. */
#define MRI_ACK_F_BACKPRESSURE 0x02
#define MRI_ACK_F_ALL (MRI_ACK_F_DUPLICATE | MRI_ACK_F_BACKPRESSURE)

struct mri_frame_hdr {
	uint8_t  version;
	uint8_t  op;
	uint16_t flags;
	uint32_t body_len;
};

/* A growable output buffer. */
struct mri_wbuf {
	uint8_t *data;
	size_t   len;
	size_t   cap;
	int      err; /* sticky: MR_ENOMEM once any append failed */
};

void mri_wbuf_init(struct mri_wbuf *b);
void mri_wbuf_fini(struct mri_wbuf *b);
int  mri_wbuf_reserve(struct mri_wbuf *b, size_t more);
void mri_wbuf_put(struct mri_wbuf *b, const void *p, size_t n);
void mri_wbuf_u8(struct mri_wbuf *b, uint8_t v);
void mri_wbuf_u16(struct mri_wbuf *b, uint16_t v);
void mri_wbuf_u32(struct mri_wbuf *b, uint32_t v);
void mri_wbuf_u64(struct mri_wbuf *b, uint64_t v);

/** @brief Start a frame: writes a header whose length is patched by end. */
void mri_frame_begin(struct mri_wbuf *b, uint8_t op);
/** @returns MR_OK, MR_ENOMEM, or MR_ETOOBIG if the body exceeds 4 GiB. */
int mri_frame_end(struct mri_wbuf *b);


/**
 * @brief The sequence of a PUBLISH frame (flag MRI_FRAME_F_SEQ): 16 bytes
 *        before the message count. A publisher numbers its requests in one
 *        stream; mailroomd hands a stream's requests to Kafka in seq order.
 */
struct mri_pub_seq {
	uint64_t stream; /* the publisher's stream, nonzero */
	uint32_t seq;    /* this request's number in the stream */
	uint32_t base;   /* the oldest number still awaiting its reply */
};

#define MRI_PUB_SEQ_LEN 16

/** @brief One message of a PUBLISH frame. */
struct mri_pub_view {
	const char    *topic;
	uint16_t       topic_len;
	bool           has_key;
	const void    *key;
	uint32_t       key_len;
	const char    *id;
	uint8_t        id_len;
	uint16_t       hdr_count;
	const uint8_t *hdrs; /* hdr_count encoded headers: see next_hdr */
	const void    *payload;
	uint32_t       payload_len;
};

/** @brief One acknowledgement of a PUBLISH_ACK frame. */
struct mri_ack_view {
	uint16_t    status;
	uint8_t     flags;
	int32_t     partition;
	int64_t     offset;
	const char *topic;
	uint16_t    topic_len;
	const char *id;
	uint8_t     id_len;
	const char *errmsg;
	uint16_t    errmsg_len;
	/* With MRI_ACK_F_BACKPRESSURE: */
	uint8_t     bp_kind;        /* 0 none, 1 records, 2 time lag (ms) */
	uint32_t    held_ms;        /* how long the publish was held */
	uint32_t    retry_after_ms; /* refused: when to send it again */
	int64_t     bp_lag;         /* refused: the lag seen */
	int64_t     bp_bound;       /* refused: the high mark passed */
};

/**
 * @brief Check a frame's header against its length.
 * @returns MR_OK, MR_EPROTO (short, bad magic, reserved bits, or a length
 *          that disagrees with the frame), or MR_EVERSION; \p why gets a
 *          static sentence on failure.
 */
int mri_frame_parse_hdr(const void *frame, size_t len,
			struct mri_frame_hdr *hdr, const char **why);

/**
 * @brief Decode a PUBLISH body into \p out, an array the decoder allocates
 *        (new: free() it) with *count entries.
 * @returns MR_OK, MR_EPROTO (truncated, trailing bytes, bad count),
 *          MR_EINVAL (an invalid topic, empty header name, ...) or
 *          MR_ENOMEM; \p why gets a static sentence on failure and
 *          \p bad_index the index of the offending message (or -1).
 */
int mri_publish_decode(const void *body, size_t len,
		       struct mri_pub_view **out, uint32_t *count,
		       const char **why, int64_t *bad_index);

/**
 * @brief mri_publish_decode into the caller's array \p *views of \p *cap
 *        entries, grown (realloc) when the body has more messages: a
 *        caller that keeps the array allocates nothing per body. The
 *        array stays the caller's (free() it), whatever the result; on
 *        failure its entries are unspecified and *count is 0.
 * @returns as mri_publish_decode.
 */
int mri_publish_decode_into(const void *body, size_t len,
			    struct mri_pub_view **views, uint32_t *cap,
			    uint32_t *count, const char **why,
			    int64_t *bad_index);

/**
 * @brief Decode the sequence at the start of a PUBLISH body.
 * @returns MR_OK, or MR_EPROTO (short, stream 0, or a base after seq) with
 *          a static sentence in \p why.
 */
int mri_publish_seq_decode(const void *body, size_t len,
			   struct mri_pub_seq *out, const char **why);

/** @brief Write \p s into \p frame, a PUBLISH frame whose header has
 *         MRI_FRAME_F_SEQ and whose body has room for it (the encoder
 *         reserves it with mri_publish_seq_reserve). Used again to update
 *         base before a frame is sent again. */
void mri_publish_seq_put(uint8_t *frame, const struct mri_pub_seq *s);

/** @brief After mri_frame_begin(b, MRI_OP_PUBLISH): set MRI_FRAME_F_SEQ and
 *         reserve the sequence's bytes (zero until mri_publish_seq_put). */
void mri_publish_seq_reserve(struct mri_wbuf *b);

/** @returns the messages of a PUBLISH body: after its sequence when the
 *           frame's \p flags have MRI_FRAME_F_SEQ (*len shrinks), NULL when
 *           the body is too short to hold one. */
const uint8_t *mri_publish_messages(const uint8_t *body, size_t *len,
				    uint16_t flags);

/** @returns true if \p a comes before \p b in a stream (serial number
 *           arithmetic: sequences wrap at 2^32). */
static inline bool
mri_seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/** @brief Iterate a message's headers: *pos starts at v->hdrs. */
void mri_pub_next_hdr(const uint8_t **pos, struct mri_hdr_view *h);

/** @brief Append one message to a PUBLISH body (count written by caller). */
void mri_publish_encode_msg(struct mri_wbuf *b, const char *topic,
			    size_t topic_len, const void *key, size_t key_len,
			    bool has_key, const char *id, size_t id_len,
			    uint16_t hdr_count, const struct mri_hdr_view *hdrs,
			    const void *payload, size_t payload_len);

/** @brief Append one ack to a PUBLISH_ACK body. */
void mri_ack_encode(struct mri_wbuf *b, const struct mri_ack_view *a);

/**
 * @brief Decode a PUBLISH_ACK body into a new array (free() it).
 * @returns MR_OK, MR_EPROTO or MR_ENOMEM.
 */
int mri_ack_decode(const void *body, size_t len, struct mri_ack_view **out,
		   uint32_t *count, const char **why);

/** @brief Build a whole ERROR frame into \p b. */
void mri_error_encode(struct mri_wbuf *b, uint16_t code, const char *msg);

/** @returns MR_OK or MR_EPROTO; msg borrows the body. */
int mri_error_decode(const void *body, size_t len, uint16_t *code,
		     const char **msg, uint16_t *msg_len);

/** @returns true if \p topic is a valid Kafka topic name. */
bool mri_topic_valid(const char *topic, size_t len);

/* Little-endian loads, for decoders. */
static inline uint16_t
mri_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
mri_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t
mri_le64(const uint8_t *p)
{
	return (uint64_t)mri_le32(p) | ((uint64_t)mri_le32(p + 4) << 32);
}

#endif
