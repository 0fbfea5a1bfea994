#include "embedded.h"

#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "core/kafka.h"
#include "mailroom/error.h"

struct mri_embedded {
	rd_kafka_t              *rk; /* the mock needs a handle to live in */
	rd_kafka_mock_cluster_t *mc;
};

static void
embedded__quiet_log(const rd_kafka_t *rk, int level, const char *fac,
		    const char *buf)
{
}

int
mri_embedded_start(struct mri_embedded **out, int brokers, char *errstr,
		   size_t errstr_size)
{
	struct mri_embedded *e;
	rd_kafka_conf_t     *conf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(conf, embedded__quiet_log);
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	e->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (e->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		free(e);
		return MR_EKAFKA;
	}
	if ((e->mc = rd_kafka_mock_cluster_new(e->rk, brokers)) == NULL) {
		snprintf(errstr, errstr_size,
			 "cannot start librdkafka's mock cluster");
		rd_kafka_destroy(e->rk);
		free(e);
		return MR_EKAFKA;
	}
	*out = e;
	return MR_OK;
}

void
mri_embedded_stop(struct mri_embedded *e)
{
	if (e == NULL)
		return;
	rd_kafka_mock_cluster_destroy(e->mc);
	rd_kafka_destroy(e->rk);
	free(e);
}

const char *
mri_embedded_bootstraps(const struct mri_embedded *e)
{
	return rd_kafka_mock_cluster_bootstraps(e->mc);
}

int
mri_embedded_topic_create(struct mri_embedded *e, const char *topic,
			  int partitions, int replication)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_mock_topic_create(e->mc, topic, partitions, replication);
	if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
		return MR_EEXIST;
	return mri_kafka_err(err);
}

void
mri_embedded_broker_set_down(struct mri_embedded *e, int broker, bool down)
{
	if (down)
		rd_kafka_mock_broker_set_down(e->mc, broker);
	else
		rd_kafka_mock_broker_set_up(e->mc, broker);
}

void
mri_embedded_broker_set_rtt(struct mri_embedded *e, int broker, int rtt_ms)
{
	rd_kafka_mock_broker_set_rtt(e->mc, broker, rtt_ms);
}

void
mri_embedded_produce_errors(struct mri_embedded *e, size_t n, int err)
{
	for (size_t i = 0; i < n; i++)
		rd_kafka_mock_push_request_errors(e->mc, 0 /* Produce */, 1,
						  (rd_kafka_resp_err_t)err);
}

void
mri_embedded_produce_error_late(struct mri_embedded *e, int broker, int err,
				int rtt_ms)
{
	rd_kafka_mock_broker_push_request_error_rtts(
	    e->mc, broker, 0 /* Produce */, 1, (rd_kafka_resp_err_t)err,
	    rtt_ms);
}

void
mri_embedded_offset_fetch_errors(struct mri_embedded *e, size_t n, int err)
{
	for (size_t i = 0; i < n; i++)
		rd_kafka_mock_push_request_errors(e->mc, 9 /* OffsetFetch */, 1,
						  (rd_kafka_resp_err_t)err);
}
