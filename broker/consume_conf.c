/*
 * A subscription's settings (broker/consume_conf.h): a SUBSCRIBE checked
 * and completed with this mailroomd's defaults, its key and its
 * description.
 */
#include "broker/consume_conf.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/producer.h"
#include "bridge/publish.h"
#include "broker/consume_reply.h"
#include "core/clock.h"
#include "mailroom/error.h"
#include "proto/subscribe.h"

/* The wait for the partitions of a subscription's topics. */
#define CONSUME__METADATA_MS 2000

#define CONSUME__TOPIC_MAX 249 /* bytes of a Kafka topic name */

/* The retry policy of \p s: each member it leaves out is this mailroomd's.
 * @returns MR_OK, or MR_EINVAL when the merged backoff_max_ms is below
 * backoff_initial_ms (one of them a default). */
static int
consume__retry(const struct mri_consume_conf *c,
	       const struct mri_subscribe *s, struct mri_retry *out, char *why,
	       size_t why_size)
{
	static const char *const dflt = " (mailroomd's default)";
	static _Atomic uint64_t  seeds;
	const struct mri_retry  *d = &c->retry;

	out->max_attempts       = s->has & MRI_SUB_MAX_ATTEMPTS
				      ? s->max_attempts
				      : d->max_attempts;
	out->backoff_initial_ms = s->has & MRI_SUB_BACKOFF_INITIAL
				      ? s->backoff_initial_ms
				      : d->backoff_initial_ms;
	out->backoff_max_ms     = s->has & MRI_SUB_BACKOFF_MAX
				      ? s->backoff_max_ms
				      : d->backoff_max_ms;
	out->multiplier         = s->has & MRI_SUB_BACKOFF_MULTIPLIER
				      ? s->backoff_multiplier
				      : d->multiplier;
	out->jitter             = s->has & MRI_SUB_BACKOFF_JITTER
				      ? s->backoff_jitter
				      : d->jitter;
	// Any seed: it only draws the jitter.
	out->seed = ((uint64_t)mri_wall_ms() << 16) +
		    atomic_fetch_add(&seeds, 1);
	if (out->backoff_max_ms < out->backoff_initial_ms) {
		snprintf(why, why_size, "\"retry.backoff_max_ms\" %" PRIu64
			 "%s is below \"retry.backoff_initial_ms\" %" PRIu64
			 "%s: give both",
			 out->backoff_max_ms,
			 s->has & MRI_SUB_BACKOFF_MAX ? "" : dflt,
			 out->backoff_initial_ms,
			 s->has & MRI_SUB_BACKOFF_INITIAL ? "" : dflt);
		return MR_EINVAL;
	}
	return MR_OK;
}

/* The dead-letter settings of \p s (its topics parsed into \p gc): each
 * member it leaves out is this mailroomd's. @returns MR_OK, or MR_EINVAL
 * when a default dead-letter topic ("<topic>" + suffix) would be too long
 * or is itself a topic of the subscription. */
static int
consume__dlq(const struct mri_consume_conf *c, const struct mri_subscribe *s,
	     const struct mri_group_conf *gc, struct mri_dlq_conf *out,
	     char *why, size_t why_size)
{
	const char *sfx = c->dlq_suffix;
	size_t      ls  = strlen(sfx);

	out->group               = gc->group;
	out->topic               = s->dlq_topic;
	out->breaker_max         = s->has & MRI_SUB_BREAKER_MAX
				       ? s->breaker_max
				       : c->dlq.breaker_max;
	out->breaker_period_ms   = s->has & MRI_SUB_BREAKER_PERIOD
				       ? s->breaker_period_ms
				       : c->dlq.breaker_period_ms;
	out->breaker_cooldown_ms = s->has & MRI_SUB_BREAKER_COOLDOWN
				       ? s->breaker_cooldown_ms
				       : c->dlq.breaker_cooldown_ms;
	if (out->topic != NULL)
		return MR_OK; // checked by mri_subscribe_parse
	for (size_t i = 0; i < gc->ntopics; i++) {
		const char *t  = gc->topics[i];
		size_t      lt = strlen(t);

		if (lt + ls > CONSUME__TOPIC_MAX) {
			snprintf(why, why_size, "the dead-letter topic of %s "
				 "would be %zu characters by default (the "
				 "topic and \"%s\"), more than 249: name one "
				 "in \"dead_letter.topic\"", t, lt + ls, sfx);
			return MR_EINVAL;
		}
		for (size_t j = 0; j < gc->ntopics; j++) {
			const char *u = gc->topics[j];

			if (strlen(u) == lt + ls && memcmp(u, t, lt) == 0 &&
			    strcmp(u + lt, sfx) == 0) {
				snprintf(why, why_size, "topic %s is the "
					 "dead-letter topic of %s by default: "
					 "its dead letters would come back to "
					 "the subscription; name another in "
					 "\"dead_letter.topic\"", u, t);
				return MR_EINVAL;
			}
		}
	}
	return MR_OK;
}

int
consume__parse(const struct mri_consume_conf *c, const uint8_t *body,
	       size_t len, json_t **root, struct mri_group_conf *gc,
	       struct mri_dlq_conf *dc, const char **topics, char *why,
	       size_t why_size)
{
	struct mri_subscribe s;
	int                  rc;

	_Static_assert((int)MRI_ORDER_PARTITION ==
			       (int)MRI_SUBSCRIBE_PARTITION &&
			   (int)MRI_ORDER_UNORDERED ==
			       (int)MRI_SUBSCRIBE_UNORDERED,
		       "one numbering of the modes");
	memset(gc, 0, sizeof(*gc));
	memset(dc, 0, sizeof(*dc));
	rc = mri_subscribe_parse(body, len, root, &s, topics, why, why_size);
	if (rc != MR_OK)
		return rc;
	gc->group              = s.group;
	gc->topics             = s.topics;
	gc->ntopics            = s.ntopics;
	gc->order              = (enum mri_order)s.mode;
	gc->ack_deadline_ms    = s.ack_deadline_ms != 0 ? s.ack_deadline_ms
							: c->ack_deadline_ms;
	gc->credit             = s.credit != 0 ? s.credit : c->credit;
	gc->max_buffered       = c->max_buffered;
	gc->memory_bytes       = c->memory_bytes;
	gc->fetch_wait_ms      = c->fetch_wait_ms;
	gc->journal_linger_ms  = c->journal_linger_ms;
	gc->revoke_wait_ms     = c->revoke_wait_ms;
	gc->session_timeout_ms = c->session_timeout_ms;
	gc->journal            = c->journal && !s.no_journal;
	gc->dedupe_window_ms   = c->dedupe_window_ms;
	gc->dedupe_max_entries = c->dedupe_max_entries;
	gc->create_journal     = !c->embedded;
	gc->record_size        = mri_consume_record_size;
	gc->start_latest       = s.start_latest;
	if ((rc = consume__retry(c, &s, &gc->retry, why, why_size)) != MR_OK)
		return rc;
	return consume__dlq(c, &s, gc, dc, why, why_size);
}

uint32_t
consume__partitions(const struct mri_consume_conf *c,
		    const struct mri_group_conf *gc)
{
	struct mri_producer            *p;
	const struct rd_kafka_metadata *md;
	uint32_t                        n = 0;

	if (c->pub == NULL || (p = mri_publisher_producer(c->pub)) == NULL)
		return 0;
	if (rd_kafka_metadata(mri_producer_lock_handle(p), 1, NULL, &md,
			      CONSUME__METADATA_MS) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR) {
		mri_producer_unlock_handle(p);
		return 0;
	}
	mri_producer_unlock_handle(p);
	for (int i = 0; i < md->topic_cnt; i++)
		for (size_t t = 0; t < gc->ntopics; t++)
			if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
			    strcmp(md->topics[i].topic, gc->topics[t]) == 0)
				n += (uint32_t)md->topics[i].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

char *
consume__key(const struct mri_group_conf *gc, const struct mri_dlq_conf *dc,
	     size_t *len)
{
	const struct mri_retry *rt = &gc->retry;
	size_t                  n  = strlen(gc->group) + 256;
	char                   *k, *p;

	for (size_t i = 0; i < gc->ntopics; i++)
		n += strlen(gc->topics[i]) + 1;
	if (dc->topic != NULL)
		n += strlen(dc->topic);
	if ((k = malloc(n)) == NULL)
		return NULL;
	p = k + sprintf(k, "%s", gc->group) + 1;
	for (size_t i = 0; i < gc->ntopics; i++)
		p += sprintf(p, "%s", gc->topics[i]) + 1;
	p += sprintf(p, "%d/%" PRIu64 "/%" PRIu32 "/%" PRIu32 "/%" PRIu64
		     "/%" PRIu64 "/%.17g/%.17g/%" PRIu32 "/%" PRIu64
		     "/%" PRIu64 "/%d/%d", (int)gc->order, gc->ack_deadline_ms,
		     gc->credit, rt->max_attempts, rt->backoff_initial_ms,
		     rt->backoff_max_ms, rt->multiplier, rt->jitter,
		     dc->breaker_max, dc->breaker_period_ms,
		     dc->breaker_cooldown_ms, (int)gc->start_latest,
		     (int)gc->journal) + 1;
	p += sprintf(p, "%s", dc->topic ? dc->topic : "") + 1; // "": default
	*len = (size_t)(p - k);
	return k;
}

json_t *
consume__desc(const struct mri_consume_conf *c,
	      const struct mri_group_conf *gc, const struct mri_dlq_conf *dc)
{
	const struct mri_retry *rt     = &gc->retry;
	json_t                 *topics = json_array(), *dlqs = json_object();
	json_t                 *dl     = json_object();
	char name[CONSUME__TOPIC_MAX + MRI_SUBSCRIBE_DLQ_SUFFIX_MAX + 1];

	for (size_t i = 0; i < gc->ntopics; i++) {
		json_array_append_new(topics, json_string(gc->topics[i]));
		snprintf(name, sizeof(name), "%s%s", gc->topics[i],
			 c->dlq_suffix);
		json_object_set_new(dlqs, gc->topics[i],
				    json_string(dc->topic ? dc->topic : name));
	}
	if (dc->topic != NULL)
		json_object_set_new(dl, "topic", json_string(dc->topic));
	json_object_set_new(dl, "topics", dlqs);
	json_object_set_new(dl, "breaker_max",
			    json_integer((json_int_t)dc->breaker_max));
	json_object_set_new(dl, "breaker_period_ms",
			    json_integer((json_int_t)dc->breaker_period_ms));
	json_object_set_new(dl, "breaker_cooldown_ms",
			    json_integer((json_int_t)dc->breaker_cooldown_ms));
	return json_pack(
	    "{s:s, s:o, s:s, s:I, s:I, s:s, s:{s:I, s:I, s:I, s:f, s:f}, "
	    "s:o}",
	    "group", gc->group, "topics", topics, "mode",
	    mri_subscribe_mode_name((enum mri_subscribe_mode)gc->order),
	    "ack_deadline_ms", (json_int_t)gc->ack_deadline_ms, "credit",
	    (json_int_t)gc->credit, "start",
	    gc->start_latest ? "latest" : "earliest", "retry", "max_attempts",
	    (json_int_t)rt->max_attempts, "backoff_initial_ms",
	    (json_int_t)rt->backoff_initial_ms, "backoff_max_ms",
	    (json_int_t)rt->backoff_max_ms, "backoff_multiplier",
	    rt->multiplier, "backoff_jitter", rt->jitter, "dead_letter", dl);
}
