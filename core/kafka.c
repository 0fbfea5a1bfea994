#include "kafka.h"

#include <stdio.h>

#include "core/log.h"
#include "mailroom/error.h"

rd_kafka_conf_t *
mri_kafka_conf_new(const char *bootstrap, const char *client_id,
		   char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	if (conf == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	if (mri_kafka_set(conf, "bootstrap.servers", bootstrap, errstr,
			  errstr_size) != MR_OK ||
	    mri_kafka_set(conf, "client.id", client_id, errstr,
			  errstr_size) != MR_OK ||
	    // A Kafka that comes back is found within a second (librdkafka
	    // backs off up to 10 s between attempts by default).
	    mri_kafka_set(conf, "reconnect.backoff.max.ms", "1000", errstr,
			  errstr_size) != MR_OK) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, mri_kafka_log_cb);
	return conf;
}

int
mri_kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value,
	      char *errstr, size_t errstr_size)
{
	return rd_kafka_conf_set(conf, name, value, errstr, errstr_size) ==
			   RD_KAFKA_CONF_OK
		   ? MR_OK
		   : MR_ECONFIG;
}

int
mri_kafka_set_int(rd_kafka_conf_t *conf, const char *name, long long value,
		  char *errstr, size_t errstr_size)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", value);
	return mri_kafka_set(conf, name, buf, errstr, errstr_size);
}

int
mri_kafka_set_all(rd_kafka_conf_t *conf, char *const *names,
		  char *const *values, size_t count, char *errstr,
		  size_t errstr_size)
{
	for (size_t i = 0; i < count; i++)
		if (mri_kafka_set(conf, names[i], values[i], errstr,
				  errstr_size) != MR_OK)
			return MR_ECONFIG;
	return MR_OK;
}

void
mri_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
		 const char *buf)
{
	(void)rk;
	MRI_LOG(level, "component=kafka facility=%s msg=\"%s\"", fac, buf);
}

int
mri_kafka_err(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return MR_OK;
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		return MR_ETIMEDOUT;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		return MR_ENOTOPIC;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return MR_ETOOBIG;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL:
		return MR_EBUSY;
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
	case RD_KAFKA_RESP_ERR__DESTROY:
		return MR_ESHUTDOWN;
	case RD_KAFKA_RESP_ERR__FATAL:
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
	case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
		return MR_EUNAVAIL;
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		return MR_EINVAL;
	default:
		return MR_EKAFKA;
	}
}
