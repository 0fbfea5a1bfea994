/*
 * The delivery engine: which buffered record goes to which consumer when,
 * and which offset may be committed. A pure state machine: no I/O, no clock
 * (time comes in with the events), no threads; driven one event at a time
 * (assign, revoke, arrive, fetch, ack, nack, extend, tick, session close)
 * so that it can be tested step by step and simulated under random
 * schedules (consumers/engine_sim_test.c).
 *
 * Ordering modes:
 *  - key (the default, actor semantics): a record is never handed out
 *    before every earlier record of its key in its partition was acked;
 *    other keys go on. Keyless records are not ordered.
 *  - partition: at most one record of a partition in flight, in offset
 *    order.
 *  - unordered: anything buffered may be in flight.
 *
 * A nacked or expired record, or one whose session closed holding it (a
 * failed attempt, each told to the observer), stays the head of its key
 * (or partition) and backs off: it is handed out again, with its attempt
 * count raised, once its delay has passed (struct mri_retry); meanwhile
 * its key waits and other keys go on (in unordered mode nothing waits for
 * it). The count is raised when a record is handed out, so the caller
 * persists it before the consumer sees the record.
 *
 * A record whose attempts reached retry.max_attempts (counted before a
 * restart included), or that was rejected (a nack asking for no retry),
 * is exhausted: instead of being handed out it waits, still the head of
 * its key, until mri_engine_take_exhausted hands it to the caller for
 * quarantine; mri_engine_quarantined then settles it as acked (its key
 * goes on) or, when the quarantine failed, backs it off to be taken again.
 *
 * A limit on what is in flight (mri_engine_set_limit) pauses handing out
 * (0) or lets one record at a time out (1): the supervisor's breaker.
 *
 * The committable offset of a partition is one past the contiguous prefix
 * of acked records: never past an unacked one. Acks beyond the prefix are
 * listed by mri_engine_acked_beyond so that the caller can keep them with
 * the commit; given back to mri_engine_assign they make those records
 * arrive as acked (not delivered again).
 *
 * Thread safety: not thread-safe; one owner drives it.
 */
#ifndef MRI_ENGINE_H
#define MRI_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mri_order {
	MRI_ORDER_KEY = 0,
	MRI_ORDER_PARTITION,
	MRI_ORDER_UNORDERED,
};

/*
 * Retries: after failed attempt n (n >= 1) a record waits
 * min(backoff_max_ms, backoff_initial_ms * multiplier^(n-1)), times a
 * factor drawn in [1 - jitter, 1 + jitter]. A record that failed its
 * max_attempts-th attempt is exhausted (0: never; it is retried forever).
 */
struct mri_retry {
	uint32_t max_attempts;       /* 0: unlimited */
	uint64_t backoff_initial_ms; /* 0: handed out again at once */
	uint64_t backoff_max_ms;     /* >= backoff_initial_ms */
	double   multiplier;         /* >= 1 */
	double   jitter;             /* 0 .. 1 */
	uint64_t seed;               /* of the jitter's draws: 0 is fine */
};

struct mri_engine_conf {
	enum mri_order   order;
	uint32_t         max_buffered;    /* per partition: pause above it */
	uint32_t         session_credit;  /* records in flight per session */
	uint64_t         ack_deadline_ms; /* default deadline of a delivery */
	struct mri_retry retry;
};

/* Why an attempt failed, for the observer. */
enum mri_engine_fail {
	MRI_ENGINE_NACKED = 0, /* nacked: retried */
	MRI_ENGINE_REJECTED,   /* nacked asking for no retry: exhausted */
	MRI_ENGINE_EXPIRED,    /* its ack deadline passed */
	MRI_ENGINE_ABANDONED,  /* its session closed holding it */
};

struct mri_delivery {
	uint64_t handle; /* for ack, nack, extend */
	int32_t  partition;
	int64_t  offset;
	uint32_t attempt; /* 1 on the first delivery */
	void    *opaque;  /* what was given to arrive */
};

struct mri_engine;

/** @returns MR_OK, MR_EINVAL (a bad order, credit, buffer or retry) or
 *           MR_ENOMEM. */
int  mri_engine_new(struct mri_engine **out, const struct mri_engine_conf *c);
void mri_engine_free(struct mri_engine *e);

/**
 * @brief Told of each failed attempt, before the record backs off (\p d
 *        is borrowed: its handle is the failed delivery's, now stale). It
 *        must not call the engine.
 */
typedef void (*mri_engine_fail_fn)(void *arg, const struct mri_delivery *d,
				   enum mri_engine_fail why);

/** @brief Set the observer of failed attempts (NULL: none). */
void mri_engine_observe(struct mri_engine *e, mri_engine_fail_fn fn,
			void *arg);

/** @returns the delay after failed attempt \p attempt, as struct
 *           mri_retry says (drawing the jitter). */
uint64_t mri_engine_backoff(struct mri_engine *e, uint32_t attempt);

/**
 * @brief The partition is ours from \p start (its committed offset).
 *        \p acked (borrowed) lists offsets beyond start already acked:
 *        when they arrive they count as acked and are not delivered.
 * @returns MR_OK, MR_EEXIST if already assigned, MR_ENOMEM.
 */
int mri_engine_assign(struct mri_engine *e, int32_t partition, int64_t start,
		      const int64_t *acked, size_t n_acked);

/**
 * @brief The partition is no longer ours: every record of it is dropped,
 *        its handles go stale (acks answer MR_ENOENT), and *commit gets the
 *        offset to commit. @returns MR_OK or MR_ENOENT.
 */
int mri_engine_revoke(struct mri_engine *e, int32_t partition,
		      int64_t *commit);

/* In the attempts given to mri_engine_arrive: the record was rejected
 * before (the journal keeps a reject so); the count is the rest. */
#define MRI_ENGINE_REJECTED_BIT 0x80000000u

/**
 * @brief A record arrived from Kafka, in offset order within its
 *        partition. \p key_hash groups records of one key; \p keyless says
 *        it has none. \p attempts: deliveries already counted durably
 *        (with MRI_ENGINE_REJECTED_BIT: it was rejected, and is exhausted
 *        once it heads its key).
 *        \p acked: the caller's dedupe store knows it was acked.
 * @returns MR_OK (held: \p opaque comes back from the ack that ends it),
 *          MRI_ENGINE_NOT_HELD (acked already: nothing of it is kept but
 *          its offset, and \p opaque is the caller's again), MR_ENOENT
 *          (partition not assigned), MR_EINVAL (offset not above the last
 *          one), MR_ENOMEM.
 */
#define MRI_ENGINE_NOT_HELD (-1)
int mri_engine_arrive(struct mri_engine *e, int32_t partition, int64_t offset,
		      uint64_t key_hash, bool keyless, uint32_t attempts,
		      bool acked, void *opaque);

/** @brief Open a consumer session. @returns MR_OK or MR_ENOMEM. */
int mri_engine_session_open(struct mri_engine *e, uint32_t *sid);

/** @brief A session ended (or its process died): each record it held
 *         failed that attempt (MRI_ENGINE_ABANDONED) and backs off. */
void mri_engine_session_close(struct mri_engine *e, uint32_t sid,
			      uint64_t now_ms);

/**
 * @brief Hand out up to \p max records to session \p sid, within its
 *        credit, each with a deadline of now + ack_deadline_ms.
 * @returns the number written to \p out.
 */
size_t mri_engine_fetch(struct mri_engine *e, uint32_t sid, uint64_t now_ms,
			struct mri_delivery *out, size_t max);

/**
 * @brief Acknowledge a delivery. *opaque (if not NULL) gets the record's.
 * @returns MR_OK, or MR_ENOENT for an unknown or stale handle (its
 *          partition was revoked, its deadline expired, or it was acked).
 */
int mri_engine_ack(struct mri_engine *e, uint64_t handle, void **opaque);

/** @brief Give a delivery back: the attempt failed (the observer is
 *         told), and the record backs off; with \p final (a reject) it is
 *         exhausted at once. @returns MR_OK or MR_ENOENT. */
int mri_engine_nack(struct mri_engine *e, uint64_t handle, uint64_t now_ms,
		    bool final);

/** @brief Move a delivery's deadline to now + \p ms. */
int mri_engine_extend(struct mri_engine *e, uint64_t handle, uint64_t now_ms,
		      uint64_t ms);

/** @brief Expire deliveries past their deadline (each a failed attempt,
 *         MRI_ENGINE_EXPIRED), and make the records whose backoff has
 *         passed ready again. @returns how many expired. */
size_t mri_engine_tick(struct mri_engine *e, uint64_t now_ms);

/** @returns when the next backoff ends (for the caller's next tick), or
 *           UINT64_MAX if no record is backing off. */
uint64_t mri_engine_next_due(const struct mri_engine *e);

/**
 * @brief Hand up to \p max exhausted records to the caller for quarantine
 *        (attempt: the attempts made). Each stays the head of its key
 *        until mri_engine_quarantined settles it by its handle; no
 *        deadline runs meanwhile. @returns the number written to \p out.
 */
size_t mri_engine_take_exhausted(struct mri_engine *e,
				 struct mri_delivery *out, size_t max);

/**
 * @brief The quarantine of \p handle is over: \p ok, the record counts as
 *        acked (*opaque, if not NULL, gets its opaque); else it backs off
 *        and is exhausted again after its delay (at least 100 ms, so that
 *        a dead-letter topic that refuses is not hammered).
 * @returns MR_OK, or MR_ENOENT for an unknown or stale handle (revoked).
 */
int mri_engine_quarantined(struct mri_engine *e, uint64_t handle, bool ok,
			   uint64_t now_ms, void **opaque);

/** @brief At most \p limit records in flight over all sessions: 0 pauses
 *         handing out, 1 lets one out at a time, SIZE_MAX (the start)
 *         only the credits limit. What is in flight stays out. */
void mri_engine_set_limit(struct mri_engine *e, size_t limit);

/**
 * @brief What the delivery \p handle is (record, attempt), without
 *        changing anything. @returns MR_OK, or MR_ENOENT as for an ack.
 */
int mri_engine_peek(const struct mri_engine *e, uint64_t handle,
		    struct mri_delivery *out);

/**
 * @brief Partition \p partition's buffered records, those not acked (in
 *        flight included), and those of them in flight. @returns MR_OK, or MR_ENOENT if not
 *        ours.
 */
int mri_engine_part_stats(const struct mri_engine *e, int32_t partition,
			  size_t *buffered, size_t *inflight);

/** @returns the offset to commit for \p partition, or -1 if not ours. */
int64_t mri_engine_committable(const struct mri_engine *e, int32_t partition);

/**
 * @brief The acked offsets beyond the committable one, ascending, into
 *        \p out (at most \p max). @returns how many there are in all.
 */
size_t mri_engine_acked_beyond(const struct mri_engine *e, int32_t partition,
			       int64_t *out, size_t max);

/** @returns true while the partition holds max_buffered records not
 *           acked or more (those acked behind one that waits are not
 *           held, only their offsets, up to 2^20 of them): the caller
 *           pauses fetching it from Kafka. */
bool mri_engine_full(const struct mri_engine *e, int32_t partition);

struct mri_engine_stats {
	size_t   sessions;     /* open */
	size_t   buffered;     /* records held (not acked), all partitions */
	size_t   inflight;     /* handed out, not acked */
	size_t   ready;        /* could be handed out now */
	size_t   backoff;      /* waiting for their retry */
	size_t   exhausted;    /* waiting to be taken for quarantine */
	size_t   quarantining; /* taken, not yet settled */
	uint64_t acked;        /* settled as acked, ever (quarantined too) */
	uint64_t failed;       /* failed attempts, ever */
	uint64_t expired;      /* of them, ack deadlines that passed */
};
void mri_engine_stats(const struct mri_engine *e, struct mri_engine_stats *s);

#endif
