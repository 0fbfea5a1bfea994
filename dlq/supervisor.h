/*
 * The dead-letter supervisor of one subscription: it is told of every
 * failed attempt (consumers/group.h's hooks), quarantines the records
 * whose attempts are exhausted into the dead-letter topic (publishing
 * through bridge/publish.h, the original acked only once Kafka confirmed
 * the dead-letter record), and trips the subscription's breaker when
 * failures come too fast (OTP's restart intensity: breaker_max in
 * breaker_period_ms), pausing delivery until a cool-down or an operator
 * resumes it, half-open first (one record at a time until one is acked).
 */
#ifndef MRI_DLQ_SUPERVISOR_H
#define MRI_DLQ_SUPERVISOR_H

#include <stdint.h>

/* The supervisor's settings for one subscription (strings borrowed during
 * mri_dlq_new only). */
struct mri_dlq_conf {
	const char *group;
	const char *topic;               /* NULL: "<source topic>.dlq" */
	uint32_t    breaker_max;         /* failures that trip; 0: never */
	uint64_t    breaker_period_ms;   /* ... within this period */
	uint64_t    breaker_cooldown_ms; /* open this long, then half-open */
};

#endif
