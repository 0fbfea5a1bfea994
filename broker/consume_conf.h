/*
 * The settings of one subscription of mailroomd (broker/consume.h): a
 * SUBSCRIBE body (proto/subscribe.h) checked and completed, member by
 * member, with this mailroomd's defaults (struct mri_consume_conf) into
 * the group's settings (consumers/group.h, the retry policy included) and
 * its dead-letter supervisor's (dlq/supervisor.h); the key that tells two
 * subscriptions apart; and the description that SUBSCRIBE's reply shows.
 *
 * Thread safety: pure functions of their arguments, thread-safe.
 */
#ifndef MRI_CONSUME_CONF_H
#define MRI_CONSUME_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/consume.h"
#include "consumers/group.h"
#include "dlq/supervisor.h"

/**
 * @brief Parse and check a SUBSCRIBE body, with \p c's defaults for what it
 *        leaves out. \p gc gets the group's settings (retry.seed: any
 *        value, for the jitter's draws), \p dc the supervisor's (topic NULL
 *        when the request names none: "<source topic>" + c->dlq_suffix);
 *        their strings borrow from *root and \p topics.
 * @param root as mri_subscribe_parse's: json_decref it whatever this
 *        returns.
 * @param topics room for MRI_SUBSCRIBE_TOPICS_MAX names.
 * @returns MR_OK, or MR_EINVAL with a sentence in \p why: the request's
 *          own faults (mri_subscribe_parse), and those that come from
 *          mixing it with the defaults (a backoff_max_ms below
 *          backoff_initial_ms; a default dead-letter topic longer than 249
 *          characters, or that is itself one of the topics).
 */
int consume__parse(const struct mri_consume_conf *c, const uint8_t *body,
		   size_t len, json_t **root, struct mri_group_conf *gc,
		   struct mri_dlq_conf *dc, const char **topics, char *why,
		   size_t why_size);

/**
 * @returns the partitions that \p gc's topics have now, as the metadata
 *          of \p c's producer gives them (waited for at most 2 s; topics
 *          not there count none), or 0 when Kafka did not answer: the
 *          share of the memory budget each partition's prefetch gets.
 */
uint32_t consume__partitions(const struct mri_consume_conf *c,
			     const struct mri_group_conf *gc);

/**
 * @returns the key that tells subscriptions apart, \p *len bytes (new,
 *          or NULL): "group" NUL "topic" NUL ... "settings" NUL
 *          "dead-letter topic or empty" NUL, where the settings are every
 *          number of \p gc and \p dc that a SUBSCRIBE sets (mode,
 *          deadline, credit, the retry policy but its seed, the breaker).
 */
char *consume__key(const struct mri_group_conf *gc,
		   const struct mri_dlq_conf *dc, size_t *len);

/**
 * @returns the subscription as SUBSCRIBE's reply shows it (new, or NULL):
 *          group, topics, mode, ack_deadline_ms, credit, "retry" (the
 *          policy in force) and "dead_letter" ("topics": each source topic
 *          with its dead-letter topic; "topic" when the request named one;
 *          the breaker's numbers).
 */
json_t *consume__desc(const struct mri_consume_conf *c,
		      const struct mri_group_conf *gc,
		      const struct mri_dlq_conf *dc);

#endif
