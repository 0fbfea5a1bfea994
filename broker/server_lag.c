/*
 * mailroomd's lag monitor (consumers/lag.h), made and wired here: its
 * librdkafka settings (as every handle of mailroomd's: the bootstrap and
 * the librdkafka.* pass-through settings) and the groups it tracks on its
 * own, the consume registry's subscriptions.
 */
#include <stdio.h>

#include "broker/config.h"
#include "broker/consume.h"
#include "consumers/lag.h"
#include "core/kafka.h"
#include "mailroom/error.h"
#include "server_internal.h"

/* The monitor's served hook: each (group, topic) of the subscriptions
 * (mri_consume_each_topic). On the monitor's thread. */
static void
srv__lag_served(void *arg, mri_lag_add_fn add, void *ctx)
{
	struct mri_server *s = arg;

	if (s->consume != NULL)
		mri_consume_each_topic(s->consume, add, ctx);
}

int
srv__lag_new(struct mri_server *s, const struct mri_config *cfg,
	     const char *bootstrap, char *errstr, size_t errstr_size)
{
	struct mri_lag_conf lc = {
	    .interval_ms = (uint32_t)cfg->lag_interval_ms,
	    .served      = srv__lag_served,
	    .served_arg  = s,
	};
	rd_kafka_conf_t *conf;
	int              rc;

	if ((conf = mri_kafka_conf_new(bootstrap, "mailroomd-lag", errstr,
				       errstr_size)) == NULL)
		return MR_ECONFIG;
	if (mri_kafka_set_all(conf, cfg->rdk_names, cfg->rdk_values,
			      cfg->rdk_count, errstr, errstr_size) != MR_OK) {
		rd_kafka_conf_destroy(conf);
		return MR_ECONFIG;
	}
	rc = mri_lag_new(&s->lag, conf, &lc, errstr, errstr_size);
	rd_kafka_conf_destroy(conf);
	return rc;
}
