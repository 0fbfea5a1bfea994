/*
 * The dead-letter supervisor of one subscription (a consumer group of
 * mailroomd's, consumers/group.h), plugged into the group through its
 * hooks:
 *
 *  - it is told of every failed attempt (a nack and its reason, a reject,
 *    an expired ack deadline, a session that closed holding the record),
 *    and keeps, per record, the first and last failure and the last
 *    reason (in memory, bounded; after a restart of mailroomd what came
 *    before is unknown and the record's headers say so);
 *  - it quarantines each record whose attempts are spent: a copy of the
 *    record (key, payload, headers) plus the failure headers
 *    (dlq/record.h) goes to the dead-letter topic through the publisher
 *    (bridge/publish.h), and only once Kafka confirmed it is the original
 *    settled as acked (mri_group_quarantined); a dead-letter write that
 *    fails leaves the original unacked, to be quarantined again after a
 *    delay, never lost;
 *  - it trips the subscription's breaker when breaker_max failures come
 *    within breaker_period_ms (OTP's restart intensity; a failed attempt
 *    is one, and so is a consumer that went away, however many records
 *    it held: each of those is a failed attempt of its own): nothing more
 *    is handed out (the source is not drained into the dead-letter topic),
 *    the state and the reason show in mri_dlq_stats; after
 *    breaker_cooldown_ms, or at an operator's mri_dlq_resume, it goes
 *    half-open: one record at a time until one is acked (then closed:
 *    full flow) or one fails (open again).
 *
 * The supervisor has a thread of its own: the hooks only queue work and
 * return. Its memory is counted: a dead-letter write still in flight when
 * mri_dlq_free returns keeps it until the write's result comes (from the
 * publisher, which must outlive it).
 *
 * Thread safety: every function may be called from any thread, except
 * that mri_dlq_attach comes before anything else uses it and mri_dlq_free
 * last.
 */
#ifndef MRI_DLQ_SUPERVISOR_H
#define MRI_DLQ_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mri_dlq;
struct mri_group;
struct mri_group_hooks;
struct mri_publisher;

/* The supervisor's settings for one subscription (strings borrowed during
 * mri_dlq_new only). */
struct mri_dlq_conf {
	const char *group;
	const char *topic;               /* NULL: "<source topic>" + suffix */
	const char *suffix;              /* NULL: ".dlq" */
	uint32_t    breaker_max;         /* failures that trip; 0: never */
	uint64_t    breaker_period_ms;   /* ... within this period */
	uint64_t    breaker_cooldown_ms; /* open this long, then half-open */
};

enum mri_dlq_breaker {
	MRI_DLQ_CLOSED = 0, /* full flow */
	MRI_DLQ_OPEN,       /* tripped: nothing handed out */
	MRI_DLQ_HALF_OPEN,  /* one record at a time, until one is acked */
};

struct mri_dlq_stats {
	enum mri_dlq_breaker breaker;
	uint64_t             trips;       /* times it opened */
	uint64_t             failures;    /* failed attempts told */
	uint64_t             quarantined; /* confirmed by Kafka */
	uint64_t             dlq_errors;  /* dead-letter writes that failed */
	size_t               pending;     /* dead-letter writes in flight */
	int64_t              opened_ms;   /* when it last opened; -1 never */
	int64_t              retry_ms;    /* OPEN: when it goes half-open */
	char                 reason[256]; /* why it last opened; "" never */
};

/**
 * @brief A supervisor publishing through \p pub (borrowed: it must
 *        outlive the supervisor's last write).
 * @returns MR_OK, MR_EINVAL (a bad setting) or MR_ENOMEM, with a sentence
 *          in errstr.
 */
int mri_dlq_new(struct mri_dlq **out, struct mri_publisher *pub,
		const struct mri_dlq_conf *c, char *errstr, size_t errstr_size);

/** @brief The hooks to give mri_group_new (filled in \p h). */
void mri_dlq_hooks(struct mri_dlq *d, struct mri_group_hooks *h);

/** @brief The group it supervises (made with its hooks), before anything
 *         is handed out of it. */
void mri_dlq_attach(struct mri_dlq *d, struct mri_group *g);

/** @brief Stop calling the group (before mri_group_free): quarantines
 *         confirmed from now on are not settled, and their records are
 *         quarantined again by the next owner (a duplicate in the
 *         dead-letter topic, listed once). */
void mri_dlq_detach(struct mri_dlq *d);

/** @brief Detach if not yet, stop and drop the caller's hold. NULL is a
 *         no-op. */
void mri_dlq_free(struct mri_dlq *d);

/** @brief Resume a tripped breaker now: half-open. @returns the state it
 *         was in. */
enum mri_dlq_breaker mri_dlq_resume(struct mri_dlq *d);

void mri_dlq_stats(struct mri_dlq *d, struct mri_dlq_stats *st);

/** @returns "closed", "open" or "half-open" (static). */
const char *mri_dlq_breaker_name(enum mri_dlq_breaker b);

#endif
