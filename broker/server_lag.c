/*
 * mailroomd's lag monitor (consumers/lag.h), made and wired here: its
 * librdkafka settings (as every handle of mailroomd's: the bootstrap and
 * the librdkafka.* pass-through settings) and the groups it tracks on its
 * own, the consume registry's subscriptions and the groups backpressure's
 * bounds count, and the topics it watches, the subscriptions' dead-letter
 * topics (for /metrics); each refresh's snapshot goes to backpressure's
 * gate.
 */
#include <stdio.h>

#include "broker/backpressure.h"
#include "broker/config.h"
#include "broker/consume.h"
#include "consumers/lag.h"
#include "core/kafka.h"
#include "mailroom/error.h"
#include "server_internal.h"

/* The monitor's served hook: each (group, topic) of the subscriptions
 * (mri_consume_each_topic). On the monitor's thread. */
struct srv__served {
	struct mri_server *s;
	mri_lag_add_fn     add;
	void              *ctx;
};

/* A served (group, topic): to the monitor, and to the gate, whose bounds
 * naming no group count it from now on. */
static void
srv__lag_add(void *arg, const char *group, const char *topic)
{
	struct srv__served *sv = arg;

	sv->add(sv->ctx, group, topic);
	mri_bp_served(sv->s->bp, group, topic);
}

/* The monitor's served hook: each (group, topic) of the subscriptions
 * (mri_consume_each_topic). On the monitor's thread, as a refresh
 * begins. */
static void
srv__lag_served(void *arg, mri_lag_add_fn add, void *ctx)
{
	struct mri_server *s  = arg;
	struct srv__served sv = {s, add, ctx};

	if (s->consume != NULL)
		mri_consume_each_topic(s->consume, srv__lag_add, &sv);
}

/* The monitor's tracked hook: the groups the bounds count (after the
 * served ones, which the bounds naming no group remember). */
static void
srv__lag_tracked(void *arg, mri_lag_add_fn add, void *ctx)
{
	struct mri_server *s = arg;

	mri_bp_begin(s->bp, add, ctx);
}

/* The monitor's watched hook: each subscription's dead-letter topic
 * (mri_consume_each_dlq_topic), whose records /metrics counts. On the
 * monitor's thread, as a refresh begins. */
static void
srv__lag_watched(void *arg, mri_lag_topic_fn add, void *ctx)
{
	struct mri_server *s = arg;

	if (s->consume != NULL)
		mri_consume_each_dlq_topic(s->consume, add, ctx);
}

/* The monitor's refreshed hook: the gate decides each bounded partition
 * anew; held requests whose partitions opened go at once. */
static void
srv__lag_refreshed(void *arg, const struct mri_lag_snapshot *snap,
		   uint32_t interval_ms)
{
	struct mri_server *s = arg;

	if (mri_bp_apply(s->bp, snap, interval_ms))
		srv__bp_recheck(s, MR_OK, NULL);
}

int
srv__lag_new(struct mri_server *s, const struct mri_config *cfg,
	     const char *bootstrap, char *errstr, size_t errstr_size)
{
	struct mri_lag_conf lc = {
	    .interval_ms = (uint32_t)cfg->lag_interval_ms,
	    .served        = srv__lag_served,
	    .served_arg    = s,
	    .tracked       = srv__lag_tracked,
	    .tracked_arg   = s,
	    .watched       = srv__lag_watched,
	    .watched_arg   = s,
	    .refreshed     = srv__lag_refreshed,
	    .refreshed_arg = s,
	};
	rd_kafka_conf_t *conf;
	int              rc;

	if ((conf = srv__kafka_conf(cfg, bootstrap, "mailroomd-lag", errstr,
				    errstr_size)) == NULL)
		return MR_ECONFIG;
	rc = mri_lag_new(&s->lag, conf, &lc, errstr, errstr_size);
	rd_kafka_conf_destroy(conf);
	return rc;
}
