/*
 * What every librdkafka handle of mailroomd needs, written once: a conf
 * with its bootstrap, client id and log callback, settings set with one
 * error convention, and librdkafka's errors mapped to mailroom's.
 *
 * In its own library (mailroom_kafka) beside core's, so that libmailroom,
 * which uses core, never links librdkafka.
 *
 * Thread safety: every function is thread-safe; a conf belongs to the
 * caller until it is given to rd_kafka_new.
 */
#ifndef MRI_KAFKA_H
#define MRI_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/**
 * @brief A new conf with bootstrap.servers, client.id, the log callback
 *        (mri_kafka_log_cb) and reconnect.backoff.max.ms 1000 set.
 * @returns the conf (the caller's), or NULL with a sentence in errstr.
 */
rd_kafka_conf_t *mri_kafka_conf_new(const char *bootstrap,
				    const char *client_id, char *errstr,
				    size_t errstr_size);

/**
 * @brief Set \p name to \p value.
 * @returns MR_OK, or MR_ECONFIG with librdkafka's sentence in errstr.
 */
int mri_kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value,
		  char *errstr, size_t errstr_size);

/** @brief As mri_kafka_set, with a number. */
int mri_kafka_set_int(rd_kafka_conf_t *conf, const char *name,
		      long long value, char *errstr, size_t errstr_size);

/**
 * @brief Set \p count settings, in order (the operator's pass-through
 *        settings, set last so that they win).
 * @returns MR_OK, or MR_ECONFIG for the first one refused.
 */
int mri_kafka_set_all(rd_kafka_conf_t *conf, char *const *names,
		      char *const *values, size_t count, char *errstr,
		      size_t errstr_size);

/** @brief librdkafka's log lines, through core's logger (core/log.h). */
void mri_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
		      const char *buf);

/** @returns the mailroom error (mailroom/error.h) for a librdkafka one. */
int mri_kafka_err(rd_kafka_resp_err_t err);

#endif
