/*
 * mailroomd's configuration: one table of {name, type, default, bounds,
 * reloadable} (`mailroomd --help-config` prints it, README.md's
 * "Configuration" describes it), applied as defaults, then a JSON file,
 * then MAILROOM_* environment variables, then flags. Names that start with
 * "librdkafka." pass straight to librdkafka. Fractions (float settings) are
 * read and written with '.' for the decimal point: the daemon runs in the C
 * locale (it never calls setlocale).
 *
 * Thread safety: not thread-safe; the daemon's main thread owns it.
 */
#ifndef MRI_CONFIG_H
#define MRI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct json_t;

struct mri_config {
	char     *file;
	char     *brokers;
	char     *listen;
	long long max_frame_bytes;
	long long max_inflight;
	long long dedupe_window_ms;
	long long order_wait_ms;
	long long dedupe_max_entries;
	long long linger_ms;
	long long message_timeout_ms;
	long long message_max_bytes;
	char     *envelope; /* producer.envelope: full or lean */
	long long shutdown_timeout_ms;
	char     *log_level;
	char     *log_format;
	char     *ce_source;
	char     *ce_type;
	bool      fault_injection;
	long long lag_interval_ms;
	char     *http_listen;
	char     *http_token;
	char     *http_token_file;
	long long http_max_body_bytes;
	long long http_session_idle_ms;
	long long http_read_timeout_ms;
	long long http_idle_timeout_ms;
	long long http_max_connections;
	long long http_max_sessions;
	long long ack_deadline_ms;
	long long consumer_credit;
	long long consumer_max_buffered;
	long long consumer_memory_mb;
	long long consumer_fetch_wait_ms;
	long long consumer_journal_linger_ms;
	long long consumer_revoke_wait_ms;
	bool      consumer_journal;
	long long consumer_idle_close_ms;
	long long consumer_session_timeout_ms;
	long long consumer_dedupe_window_ms;
	long long consumer_dedupe_max_entries;
	/* a subscription's defaults (proto/subscribe.h has their meaning) */
	long long consumer_retry_max_attempts;
	long long consumer_retry_backoff_initial_ms;
	long long consumer_retry_backoff_max_ms;
	double    consumer_retry_backoff_multiplier;
	double    consumer_retry_backoff_jitter;
	char     *consumer_dlq_topic_suffix;
	long long consumer_dlq_breaker_max;
	long long consumer_dlq_breaker_period_ms;
	long long consumer_dlq_breaker_cooldown_ms;
	/* backpressure's bounds from the file's "bounds" object (topic to
	 * bound, broker/backpressure.h), checked; NULL when it has none */
	struct json_t *bounds;
	/* librdkafka pass-through, in the order given */
	char    **rdk_names;
	char    **rdk_values;
	size_t    rdk_count;
};

/** @brief Fill \p c with the defaults. @returns MR_OK or MR_ENOMEM. */
int  mri_config_init(struct mri_config *c);
void mri_config_fini(struct mri_config *c);

/**
 * @brief Set \p name to \p value (a string, parsed by the entry's type).
 * @returns MR_OK, or MR_ECONFIG with a sentence in errstr.
 */
int mri_config_set(struct mri_config *c, const char *name, const char *value,
		   bool reload, char *errstr, size_t errstr_size);

/**
 * @brief Check the rules between settings (each is checked alone when it
 *        is set): consumer.retry.backoff_max_ms not below
 *        consumer.retry.backoff_initial_ms; producer.envelope full or
 *        lean. Call it once every source was
 *        applied.
 * @returns MR_OK, or MR_ECONFIG with a sentence in errstr.
 */
int mri_config_check(const struct mri_config *c, char *errstr,
		     size_t errstr_size);

/** @brief Apply a JSON object file; errors keep jansson's line/column. */
int mri_config_load_file(struct mri_config *c, const char *path, bool reload,
			 char *errstr, size_t errstr_size);

/** @brief Apply MAILROOM_<NAME> variables ('.' becomes '_', upper case). */
int mri_config_load_env(struct mri_config *c, bool reload, char *errstr,
			size_t errstr_size);

/** @brief Print the table (name, type, default, reloadable, help). */
void mri_config_print_help(void);

#endif
