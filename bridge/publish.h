/*
 * The publish pipeline, below the daemon: records in, one result per
 * record out. A publisher owns the record envelope's defaults, the publish
 * dedupe window (with its lock), the producer (bridge/producer.h) and the
 * duplicates waiting on a first publish still in flight, and counts what
 * it confirmed, failed and found duplicate. It knows nothing of nng or of
 * frames: mailroomd's front door (broker/server_publish.c) decodes a
 * PUBLISH frame into a batch and encodes the reply from its results; the
 * dead-letter supervisor, replay and mirrored-actor replies publish
 * through the same call from their own threads.
 *
 * A batch is n records and one completion callback. For each record:
 *   - its message id is the caller's, or a UUIDv7 assigned to it; an id
 *     is 1-255 bytes, none a control byte (else MR_EINVAL);
 *   - its headers get the envelope (bridge/envelope.h), with ce_source
 *     and ce_type from the publisher's settings when the caller gives
 *     none (mri_publisher_set_envelope changes them live), or the lean
 *     envelope, ce_id and the caller's headers only, when the publisher
 *     is set lean (mri_publisher_set_lean, also live); a raw record
 *     (a copy of another: see mri_pub_rec.raw) keeps its headers exactly
 *     as given instead, and must have an id of the caller's;
 *   - with the dedupe window on, a caller-given id already published to
 *     the same topic within the window is not written again: the record
 *     gets the first one's partition and offset and MRI_PUB_F_DUPLICATE;
 *     while the first one is still in flight, it waits for it and gets
 *     its outcome (a duplicate when confirmed, the same error when not);
 *   - otherwise it goes to the producer, which confirms it (partition,
 *     offset) or fails it (an mr_err, MR_EINDOUBT when Kafka may have it,
 *     and a sentence).
 * Nothing is reported confirmed that Kafka did not confirm.
 *
 * Order: mri_publish_submit hands its records to the producer before it
 * returns, in the batch's order; so what one caller submits one batch
 * after the other reaches the producer in that order (per key, Kafka keeps
 * it). Callers that submit from several threads and need an order between
 * them serialise their submits (mailroomd's broker/order.c does).
 *
 * Ownership: the caller owns a batch and its records (and every byte they
 * point to) and must leave them alone from mri_publish_prepare or
 * mri_publish_submit until the batch's done callback (or
 * mri_publish_cancel) returns. Batches and records can be used again
 * after that: a caller that keeps them allocates nothing per batch here.
 *
 * Thread safety: a publisher is thread-safe; a batch belongs to one call
 * at a time. The done callback is called exactly once per submitted
 * batch, when every record has its result: on the producer's thread, or
 * on the thread of a submit (this one, or another whose failed record a
 * duplicate waited on), possibly before mri_publish_submit returns. It
 * must not call into the publisher (submit, drain, stats): the producer
 * may hold its handle's lock then (while it replaces a failed handle).
 * Work that publishes again goes to a thread of its own.
 */
#ifndef MRI_PUBLISH_H
#define MRI_PUBLISH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/dedupe.h"
#include "bridge/producer.h"
#include "core/uuid7.h"

struct mri_hdr_view; /* proto/header.h: a header's name and value */
struct mri_publisher;
struct mri_pub_batch;

/* A result's flag: the record was a duplicate within the window. */
#define MRI_PUB_F_DUPLICATE 0x01

/* What happened to a record. */
struct mri_pub_result {
	int         err;       /* mr_err */
	uint8_t     flags;     /* MRI_PUB_F_* */
	int32_t     partition; /* -1 unless err is MR_OK */
	int64_t     offset;    /* -1 unless err is MR_OK */
	const char *why;       /* when err: static, valid while the
				  publisher lives */
};

/* A record's state inside the publisher: the caller leaves it alone. */
struct mri_pub_rec_priv {
	struct mri_dedupe_waiter waiter; /* a duplicate waiting on another */
	struct mri_pub_batch    *b;
	struct mri_pmsg          pm;
	struct mri_dedupe_entry *dentry; /* the entry it writes */
	struct mri_dedupe_key    dkey;   /* its (topic, id)'s, for dedupe */
	uint8_t                  state;
	bool                     given_id;
	char                     idbuf[MRI_UUID_STRLEN + 1];
};

/* One record. Fill it with mri_pub_rec_init, then set what applies. */
struct mri_pub_rec {
	/* The caller's, borrowed until the batch is done. */
	const char                *topic; /* NUL-terminated */
	const void                *key;
	size_t                     key_len;
	bool                       has_key;
	const void                *value;
	size_t                     value_len;
	const struct mri_hdr_view *hdrs; /* the publisher's own headers */
	uint16_t                   hdr_count;
	/* A copy of another record (the dead-letter supervisor's
	 * quarantine, a replay): its headers are written exactly as given,
	 * in their order, with no envelope added or checked (ce_id and
	 * ce_specversion allowed, names may repeat), and its id must be
	 * given (it is the record's id for the dedupe window; without one
	 * the record is refused with MR_EINVAL). Everything else (the
	 * dedupe window, the producer, the results) is as for any record. */
	bool                       raw;
	int32_t                    partition; /* -1: by key */
	/* The message id: the caller's (id_len 0: none). Once prepared it
	 * is the record's id, the caller's or one assigned in the record. */
	const char                *id;
	uint8_t                    id_len;
	/* The result: MR_OK before submit, or a caller's error to refuse
	 * the record with at once (it is then not published and keeps res,
	 * and is counted failed). Complete when the batch is done. */
	struct mri_pub_result      res;
	/* The publisher's. */
	struct mri_pub_rec_priv   priv;
};

/* Called once when every record of \p b has its result (see above for
 * the thread). */
typedef void (*mri_pub_done_cb)(void *arg, struct mri_pub_batch *b);

struct mri_pub_batch {
	struct mri_pub_rec *recs; /* the caller's array of n records */
	uint32_t            n;
	mri_pub_done_cb     done;
	void               *arg;
	/* The publisher's. */
	struct mri_publisher *p;
	atomic_uint           pending;
	bool                  prepared;
};

/* The publisher's settings: plain values, from the daemon's
 * configuration. Strings are borrowed during mri_publisher_new only. */
struct mri_publisher_conf {
	const char  *bootstrap;          /* bootstrap.servers */
	const char  *client_id;          /* client.id */
	long long    linger_ms;          /* linger.ms */
	long long    message_timeout_ms; /* message.timeout.ms */
	long long    message_max_bytes;  /* message.max.bytes */
	/* librdkafka settings passed through as given, after mailroom's
	 * own and in this order (they win). */
	char *const *rdk_names;
	char *const *rdk_values;
	size_t       rdk_count;
	uint64_t     dedupe_window_ms; /* 0: no dedupe window */
	size_t       dedupe_max_entries;
	const char  *ce_source; /* envelope defaults (reloadable) */
	const char  *ce_type;
	bool         envelope_lean; /* the lean envelope (reloadable) */
};

struct mri_publisher_stats {
	uint64_t                  confirmed;  /* records, once per result */
	uint64_t                  failed;     /* likewise: refused included */
	uint64_t                  duplicates; /* confirmed as duplicates */
	struct mri_producer_stats producer;
	bool                      dedupe_enabled;
	uint64_t                  dedupe_window_ms;
	struct mri_dedupe_stats   dedupe; /* zero when disabled */
};

/**
 * @brief Make a publisher and its producer from \p conf: the producer's
 *        librdkafka settings are built here (bootstrap, client.id,
 *        linger.ms, message.timeout.ms, message.max.bytes, unbounded
 *        queue.buffering.*, topic.metadata.propagation.max.ms=5000, then
 *        the pass-through ones; idempotence, acks and partitioner by the
 *        producer).
 * @returns MR_OK and *out (new: mri_publisher_free it), or MR_ECONFIG or
 *          MR_ENOMEM with a sentence in errstr.
 */
int mri_publisher_new(struct mri_publisher          **out,
		      const struct mri_publisher_conf *conf, char *errstr,
		      size_t errstr_size);

/**
 * @brief Wait until every batch submitted so far is done, up to \p
 *        timeout_ms; then fail what Kafka has not confirmed (MR_EINDOUBT
 *        or MR_ESHUTDOWN, as mri_publisher_purge) and wait for those
 *        results too (up to 10 s). Submitting meanwhile is allowed.
 * @returns true if every batch was done within \p timeout_ms.
 * Thread safety: any thread but a done callback's.
 */
bool mri_publisher_drain(struct mri_publisher *p, int timeout_ms);

/** @brief Fail every record the producer has not had confirmed; their
 *         results come as usual. Any thread. */
void mri_publisher_purge(struct mri_publisher *p);

/** @brief Drain (failing at once what is unconfirmed), stop and free; NULL
 *         is a no-op. No submit may run or follow. */
void mri_publisher_free(struct mri_publisher *p);

/** @brief Set the envelope's defaults (copied; each up to 255 bytes) for
 *         batches prepared from now on. Any thread. */
void mri_publisher_set_envelope(struct mri_publisher *p, const char *source,
				const char *type);

/** @brief Write the lean envelope (true: ce_id and the publisher's
 *         headers only) or the full CloudEvents one (false) in batches
 *         prepared from now on. Any thread. */
void mri_publisher_set_lean(struct mri_publisher *p, bool lean);

/** @brief A snapshot of the counters: atomics, and each of the producer's
 *         and the dedupe window's lock briefly. Any thread. */
void mri_publisher_stats(struct mri_publisher       *p,
			 struct mri_publisher_stats *st);

/** @returns the producer (borrowed, valid until mri_publisher_free), for
 *           the admin operations' metadata and fault hooks. */
struct mri_producer *mri_publisher_producer(struct mri_publisher *p);

/** @brief Reset \p r for a new batch: no key, no id, no headers, not
 *         raw, partition by key, res.err MR_OK. */
void mri_pub_rec_init(struct mri_pub_rec *r);

/**
 * @brief Optional: give each record of \p b its id and envelope now, on
 *        this thread (say while the batch waits for its turn), with the
 *        envelope defaults and the time of now; mri_publish_submit does it
 *        for a batch not prepared. A record refused here (a bad id, a
 *        header only mailroomd sets, a raw record without an id) has its
 *        res set. The batch must then be submitted or cancelled.
 */
void mri_publish_prepare(struct mri_publisher *p, struct mri_pub_batch *b);

/** @brief Undo mri_publish_prepare for a batch that will not be submitted
 *         (frees its envelopes). done is not called. */
void mri_publish_cancel(struct mri_pub_batch *b);

/** @brief Between prepare and submit: refuse \p r with \p err and \p why
 *         (static): it is not published, and keeps that result. */
void mri_publish_refuse(struct mri_pub_rec *r, int err, const char *why);

/** @brief Between prepare and submit: send \p r to \p partition (-1: by
 *         key, as prepared). */
void mri_publish_route(struct mri_pub_rec *r, int32_t partition);

/**
 * @brief Publish the records of \p b (recs, n, done and arg set by the
 *        caller): prepare them if not prepared, run the dedupe window, and
 *        hand the rest to the producer, in the batch's order, before
 *        returning. b->done is then called exactly once, possibly before
 *        this returns.
 * @returns MR_OK; or MR_EINVAL (n 0, or no done callback) and done is not
 *          called.
 */
int mri_publish_submit(struct mri_publisher *p, struct mri_pub_batch *b);

#endif
