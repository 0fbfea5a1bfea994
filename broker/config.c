#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/backpressure.h"
#include "mailroom/error.h"
#include "proto/subscribe.h"

/* CFG_FLOAT: a finite number within min..max; CFG_SUFFIX: min..max bytes
 * of the characters of a topic name (a-z A-Z 0-9 . _ -). */
enum config__type { CFG_STR, CFG_INT, CFG_BOOL, CFG_FLOAT, CFG_SUFFIX };

struct config__entry {
	const char       *name;
	enum config__type type;
	size_t            off;
	const char       *def;
	long long         min;
	long long         max;
	bool              reloadable;
	const char       *help;
};

#define CFG_OFF(f) offsetof(struct mri_config, f)

static const struct config__entry config__table[] = {
    {"kafka.brokers", CFG_STR, CFG_OFF(brokers), "", 0, 0, false,
     "Kafka bootstrap servers; empty runs the embedded in-memory cluster "
     "(development only)"},
    {"listen", CFG_STR, CFG_OFF(listen), "tcp://127.0.0.1:7450", 0, 0, false,
     "comma-separated nng listen URLs (tcp://, ipc://)"},
    {"max_frame_bytes", CFG_INT, CFG_OFF(max_frame_bytes), "16777216", 4096,
     1LL << 30, false,
     "largest request frame; larger ones are refused with MR_ETOOBIG"},
    {"max_inflight", CFG_INT, CFG_OFF(max_inflight), "256", 1, 4096, false,
     "requests mailroomd works on at once, over all connections"},
    {"dedupe.window_ms", CFG_INT, CFG_OFF(dedupe_window_ms), "120000", 0,
     86400000, false, "publish dedupe window on (topic, id); 0 disables"},
    {"dedupe.max_entries", CFG_INT, CFG_OFF(dedupe_max_entries), "1000000",
     1, 100000000, false, "bound on the ids the dedupe window remembers"},
    {"publish.order_wait_ms", CFG_INT, CFG_OFF(order_wait_ms), "5000", 100,
     600000, false,
     "how long a publisher's request waits for an earlier one of its "
     "stream before it is refused (MR_EORDER) and sent again"},
    {"producer.linger_ms", CFG_INT, CFG_OFF(linger_ms), "2", 0, 60000, false,
     "librdkafka linger.ms for the publish path"},
    {"producer.message_timeout_ms", CFG_INT, CFG_OFF(message_timeout_ms),
     "30000", 1000, 3600000, false,
     "how long Kafka may take to confirm a record before the publish fails"},
    {"producer.message_max_bytes", CFG_INT, CFG_OFF(message_max_bytes),
     "16777216", 1000, 1000000000, false,
     "largest record the producer sends (the topic's max.message.bytes "
     "applies too)"},
    {"producer.envelope", CFG_STR, CFG_OFF(envelope), "full", 0, 0, true,
     "full: every record carries the CloudEvents headers (ce_specversion, "
     "ce_id, ce_source, ce_type, ce_time); lean: ce_id and what the "
     "publisher set only, for throughput (docs/PROTOCOL.md, \"The record "
     "envelope\", says what a consumer then lacks)"},
    {"shutdown.timeout_ms", CFG_INT, CFG_OFF(shutdown_timeout_ms), "10000", 0,
     600000, false,
     "on SIGTERM, how long to wait for Kafka to confirm what is in flight"},
    {"log.level", CFG_STR, CFG_OFF(log_level), "info", 0, 0, true,
     "err, warning, notice, info or debug"},
    {"log.format", CFG_STR, CFG_OFF(log_format), "logfmt", 0, 0, true,
     "logfmt (key=value lines) or json (one JSON object per line, the "
     "same keys)"},
    {"cloudevents.source", CFG_STR, CFG_OFF(ce_source), "mailroomd", 0, 0,
     true, "ce_source of messages whose publisher gives none"},
    {"cloudevents.type", CFG_STR, CFG_OFF(ce_type), "mailroom.message", 0, 0,
     true, "ce_type of messages whose publisher gives none"},
    {"consumer.ack_deadline_ms", CFG_INT, CFG_OFF(ack_deadline_ms), "30000",
     100, 86400000, false,
     "default ack deadline of a delivery; a subscription may set its own"},
    {"consumer.credit", CFG_INT, CFG_OFF(consumer_credit), "1000", 1, 100000,
     false, "default deliveries in flight per consumer session"},
    {"consumer.max_buffered", CFG_INT, CFG_OFF(consumer_max_buffered),
     "10000", 16, 10000000, false,
     "records buffered and not yet acked per partition; fetching the "
     "partition pauses above"},
    {"consumer.memory_mb", CFG_INT, CFG_OFF(consumer_memory_mb), "32", 1,
     65536, false,
     "what one subscription holds at most, in MiB: a quarter for "
     "mailroomd's buffers (shared by the partitions it holds), half for "
     "librdkafka's prefetch (shared by its topics' partitions), a quarter "
     "for its group's acked ids (unless consumer.dedupe_max_entries is "
     "set)"},
    {"consumer.fetch_wait_ms", CFG_INT, CFG_OFF(consumer_fetch_wait_ms),
     "100", 1, 10000, false,
     "how long a fetch waits at most for records of partitions that have "
     "none (librdkafka's fetch.wait.max.ms): one fetch at a time goes to "
     "a broker, so a long wait holds back the refill of the others"},
    {"consumer.journal_linger_ms", CFG_INT,
     CFG_OFF(consumer_journal_linger_ms), "0", 0, 1000, false,
     "how long an ack of a client that does not wait for its answer "
     "(mr_consume_run) may wait for others to share the journal's write "
     "to Kafka (fewer requests, later answers); the first after a quiet "
     "spell goes at once; 0: none waits"},
    {"consumer.revoke_wait_ms", CFG_INT, CFG_OFF(consumer_revoke_wait_ms),
     "5000", 0, 600000, false,
     "on a rebalance, how long acks in flight may take before the commit"},
    {"consumer.session_timeout_ms", CFG_INT,
     CFG_OFF(consumer_session_timeout_ms), "10000", 1000, 3600000, false,
     "Kafka's group session: how soon a dead mailroomd's partitions move "
     "to the others"},
    {"consumer.idle_close_ms", CFG_INT, CFG_OFF(consumer_idle_close_ms),
     "30000", 0, 86400000, false,
     "a subscription without a session this long leaves its group; 0: "
     "never"},
    {"consumer.journal", CFG_BOOL, CFG_OFF(consumer_journal), "true", 0, 0,
     false,
     "keep each group's journal topic (__mailroom.journal.<group>): "
     "durable attempt counts and the group's dedupe store"},
    {"consumer.dedupe_window_ms", CFG_INT, CFG_OFF(consumer_dedupe_window_ms),
     "86400000", 60000, 2592000000LL, false,
     "how long a group remembers acked ids and attempts (its journal's "
     "retention)"},
    {"consumer.dedupe_max_entries", CFG_INT,
     CFG_OFF(consumer_dedupe_max_entries), "0", 0, 100000000, false,
     "acked ids (and attempt counts) a group keeps in memory at most; 0: "
     "what a quarter of consumer.memory_mb pays for (56 bytes an id)"},
    {"consumer.retry.max_attempts", CFG_INT,
     CFG_OFF(consumer_retry_max_attempts), "5", 0,
     MRI_SUBSCRIBE_ATTEMPTS_MAX, false,
     "deliveries of a message before it goes to the dead-letter topic; 0: "
     "unlimited (retried forever); a subscription may set its own, as all "
     "of consumer.retry.* and consumer.dead_letter.*"},
    {"consumer.retry.backoff_initial_ms", CFG_INT,
     CFG_OFF(consumer_retry_backoff_initial_ms), "1000", 0,
     MRI_SUBSCRIBE_BACKOFF_INITIAL_MAX, false,
     "wait after a message's first failed attempt (a nack, an expired "
     "deadline, a lost session); 0: handed out again at once"},
    {"consumer.retry.backoff_max_ms", CFG_INT,
     CFG_OFF(consumer_retry_backoff_max_ms), "60000", 0,
     MRI_SUBSCRIBE_BACKOFF_MAX_MAX, false,
     "longest wait between attempts; not below backoff_initial_ms"},
    {"consumer.retry.backoff_multiplier", CFG_FLOAT,
     CFG_OFF(consumer_retry_backoff_multiplier), "2", 1,
     MRI_SUBSCRIBE_MULTIPLIER_MAX, false,
     "each wait is the previous one times this"},
    {"consumer.retry.backoff_jitter", CFG_FLOAT,
     CFG_OFF(consumer_retry_backoff_jitter), "0.2", 0, 1, false,
     "each wait is multiplied by a factor drawn in [1 - jitter, 1 + "
     "jitter]"},
    {"consumer.dead_letter.topic_suffix", CFG_SUFFIX,
     CFG_OFF(consumer_dlq_topic_suffix), ".dlq", 1,
     MRI_SUBSCRIBE_DLQ_SUFFIX_MAX, false,
     "a subscription's dead-letter topic is <topic><suffix>, unless it "
     "names one"},
    {"consumer.dead_letter.breaker_max", CFG_INT,
     CFG_OFF(consumer_dlq_breaker_max), "100", 0, MRI_SUBSCRIBE_BREAKER_MAX,
     false,
     "failures within breaker_period_ms that trip a subscription's "
     "breaker (its delivery pauses); 0: no breaker"},
    {"consumer.dead_letter.breaker_period_ms", CFG_INT,
     CFG_OFF(consumer_dlq_breaker_period_ms), "10000", 1,
     MRI_SUBSCRIBE_BREAKER_MS_MAX, false,
     "the period in which breaker_max failures trip the breaker"},
    {"consumer.dead_letter.breaker_cooldown_ms", CFG_INT,
     CFG_OFF(consumer_dlq_breaker_cooldown_ms), "30000", 1,
     MRI_SUBSCRIBE_BREAKER_MS_MAX, false,
     "how long a tripped breaker stays open before it lets one message "
     "through (half-open)"},
    {"http.listen", CFG_STR, CFG_OFF(http_listen), "http://127.0.0.1:7480",
     0, 0, false,
     "the HTTP API's URL (docs/HTTP.md), http://HOST:PORT; empty turns it "
     "off"},
    {"http.token", CFG_STR, CFG_OFF(http_token), "", 0, 0, false,
     "the HTTP API's bearer token, needed for every change (and, when set, "
     "for every request but /healthz and /readyz)"},
    {"http.token_file", CFG_STR, CFG_OFF(http_token_file), "", 0, 0, false,
     "a file whose first line is the HTTP token (made with a random one, "
     "mode 0600, when absent); http.token wins"},
    {"http.max_body_bytes", CFG_INT, CFG_OFF(http_max_body_bytes), "8388608",
     1024, 1LL << 30, false,
     "a longer HTTP request body is refused (413) before it is read"},
    {"http.read_timeout_ms", CFG_INT, CFG_OFF(http_read_timeout_ms),
     "10000", 100, 600000, false,
     "an HTTP request's head must come whole, and each read of its body "
     "bring something, within this (else 408 and the connection closes)"},
    {"http.idle_timeout_ms", CFG_INT, CFG_OFF(http_idle_timeout_ms),
     "60000", 100, 3600000, false,
     "an HTTP connection idle between requests this long is closed"},
    {"http.max_connections", CFG_INT, CFG_OFF(http_max_connections), "256",
     1, 65536, false,
     "HTTP connections open at once; one more is answered 429 and closed"},
    {"http.max_sessions", CFG_INT, CFG_OFF(http_max_sessions), "1024", 1,
     65536, false,
     "HTTP consumer sessions open at once; one more is refused (429)"},
    {"http.session_idle_ms", CFG_INT, CFG_OFF(http_session_idle_ms),
     "60000", 1000, 3600000, false,
     "an HTTP consumer session with no request for this long ends; what it "
     "held is handed out again"},
    {"lag.interval_ms", CFG_INT, CFG_OFF(lag_interval_ms), "1000", 100, 60000,
     true,
     "how often the lag monitor asks Kafka for the committed and end "
     "offsets of every tracked group (mailroom lag)"},
    {"fault_injection", CFG_BOOL, CFG_OFF(fault_injection), "false", 0, 0,
     false, "allow the admin API's fault.* operations (tests only)"},
};

#define CONFIG__N (sizeof(config__table) / sizeof(config__table[0]))
#define CONFIG__RDK_PREFIX "librdkafka."

static const struct config__entry *
config__find(const char *name)
{
	for (size_t i = 0; i < CONFIG__N; i++)
		if (strcmp(config__table[i].name, name) == 0)
			return &config__table[i];
	return NULL;
}

static int
config__set_rdk(struct mri_config *c, const char *name, const char *value)
{
	char **n, **v;

	for (size_t i = 0; i < c->rdk_count; i++) {
		if (strcmp(c->rdk_names[i], name) == 0) {
			char *nv = strdup(value);
			if (nv == NULL)
				return MR_ENOMEM;
			free(c->rdk_values[i]);
			c->rdk_values[i] = nv;
			return MR_OK;
		}
	}
	n = realloc(c->rdk_names, (c->rdk_count + 1) * sizeof(*n));
	if (n == NULL)
		return MR_ENOMEM;
	c->rdk_names = n;
	v = realloc(c->rdk_values, (c->rdk_count + 1) * sizeof(*v));
	if (v == NULL)
		return MR_ENOMEM;
	c->rdk_values = v;
	n[c->rdk_count] = strdup(name);
	v[c->rdk_count] = strdup(value);
	if (n[c->rdk_count] == NULL || v[c->rdk_count] == NULL) {
		free(n[c->rdk_count]);
		free(v[c->rdk_count]);
		return MR_ENOMEM;
	}
	c->rdk_count++;
	return MR_OK;
}

int
mri_config_set(struct mri_config *c, const char *name, const char *value,
	       bool reload, char *errstr, size_t errstr_size)
{
	const struct config__entry *e;
	char                       *end;
	long long                   v;
	double                      d;
	size_t                      len;
	void                       *field;

	if (strncmp(name, CONFIG__RDK_PREFIX, strlen(CONFIG__RDK_PREFIX)) == 0) {
		if (reload)
			return MR_OK;
		if (name[strlen(CONFIG__RDK_PREFIX)] == '\0') {
			snprintf(errstr, errstr_size,
				 "'librdkafka.' needs a property name");
			return MR_ECONFIG;
		}
		return config__set_rdk(c, name + strlen(CONFIG__RDK_PREFIX),
				       value);
	}
	if ((e = config__find(name)) == NULL) {
		snprintf(errstr, errstr_size,
			 "unknown setting '%s' (mailroomd --help-config lists "
			 "them)",
			 name);
		return MR_ECONFIG;
	}
	if (reload && !e->reloadable)
		return MR_OK;
	field = (char *)c + e->off;
	len   = strlen(value);
	if (e->type == CFG_SUFFIX &&
	    (len < (size_t)e->min || len > (size_t)e->max ||
	     strspn(value, "abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)) {
		snprintf(errstr, errstr_size,
			 "%s: '%s' is not %lld to %lld characters of a-z A-Z "
			 "0-9 . _ -",
			 name, value, e->min, e->max);
		return MR_ECONFIG;
	}
	switch (e->type) {
	case CFG_SUFFIX:
	case CFG_STR: {
		char *s = strdup(value);
		if (s == NULL)
			return MR_ENOMEM;
		free(*(char **)field);
		*(char **)field = s;
		return MR_OK;
	}
	case CFG_INT:
		errno = 0;
		v     = strtoll(value, &end, 10);
		if (errno || end == value || *end != '\0') {
			snprintf(errstr, errstr_size,
				 "%s: '%s' is not an integer", name, value);
			return MR_ECONFIG;
		}
		if (v < e->min || v > e->max) {
			snprintf(errstr, errstr_size,
				 "%s: %lld is outside %lld..%lld", name, v,
				 e->min, e->max);
			return MR_ECONFIG;
		}
		*(long long *)field = v;
		return MR_OK;
	case CFG_FLOAT:
		errno = 0;
		d     = strtod(value, &end);
		if (errno || end == value || *end != '\0' || !isfinite(d)) {
			snprintf(errstr, errstr_size,
				 "%s: '%s' is not a number", name, value);
			return MR_ECONFIG;
		}
		if (!(d >= (double)e->min && d <= (double)e->max)) {
			snprintf(errstr, errstr_size,
				 "%s: %s is outside %lld..%lld", name, value,
				 e->min, e->max);
			return MR_ECONFIG;
		}
		*(double *)field = d;
		return MR_OK;
	case CFG_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			*(bool *)field = false;
		else {
			snprintf(errstr, errstr_size,
				 "%s: '%s' is not true or false", name, value);
			return MR_ECONFIG;
		}
		return MR_OK;
	}
	return MR_EINTERNAL;
}

int
mri_config_init(struct mri_config *c)
{
	char errstr[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONFIG__N; i++) {
		int rc = mri_config_set(c, config__table[i].name,
					config__table[i].def, false, errstr,
					sizeof(errstr));
		if (rc != MR_OK)
			return rc;
	}
	return MR_OK;
}

int
mri_config_check(const struct mri_config *c, char *errstr,
		 size_t errstr_size)
{
	if (c->consumer_retry_backoff_max_ms <
	    c->consumer_retry_backoff_initial_ms) {
		snprintf(errstr, errstr_size,
			 "consumer.retry.backoff_max_ms (%lld) is below "
			 "consumer.retry.backoff_initial_ms (%lld)",
			 c->consumer_retry_backoff_max_ms,
			 c->consumer_retry_backoff_initial_ms);
		return MR_ECONFIG;
	}
	if (strcmp(c->envelope, "full") != 0 &&
	    strcmp(c->envelope, "lean") != 0) {
		snprintf(errstr, errstr_size,
			 "producer.envelope: '%s' is neither full nor lean",
			 c->envelope);
		return MR_ECONFIG;
	}
	return MR_OK;
}

void
mri_config_fini(struct mri_config *c)
{
	for (size_t i = 0; i < CONFIG__N; i++)
		if (config__table[i].type == CFG_STR ||
		    config__table[i].type == CFG_SUFFIX)
			free(*(char **)((char *)c + config__table[i].off));
	for (size_t i = 0; i < c->rdk_count; i++) {
		free(c->rdk_names[i]);
		free(c->rdk_values[i]);
	}
	free(c->rdk_names);
	free(c->rdk_values);
	free(c->file);
	json_decref(c->bounds);
	memset(c, 0, sizeof(*c));
}

/* The file's "bounds": {"topic": {bound}, ...}, each checked now so that
 * a bad one is refused with the file (broker/backpressure.h). */
static int
config__bounds(struct mri_config *c, const char *path, json_t *val,
	       char *errstr, size_t errstr_size)
{
	const char *topic;
	json_t     *obj;

	if (!json_is_object(val)) {
		snprintf(errstr, errstr_size,
			 "%s: 'bounds' must be an object of topic names to "
			 "bounds",
			 path);
		return MR_ECONFIG;
	}
	json_object_foreach(val, topic, obj)
	{
		struct mri_bound b;
		char             why[256];

		if (mri_bound_from_json(&b, topic, obj, why, sizeof(why)) !=
		    MR_OK) {
			snprintf(errstr, errstr_size, "%s: bounds.%s: %s", path,
				 topic, why);
			return MR_ECONFIG;
		}
		mri_bound_fini(&b);
	}
	json_decref(c->bounds);
	c->bounds = json_incref(val);
	return MR_OK;
}

int
mri_config_load_file(struct mri_config *c, const char *path, bool reload,
		     char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t      *root = json_load_file(path, 0, &jerr);
	const char  *name;
	json_t      *val;
	int          rc = MR_OK;

	if (root == NULL) {
		snprintf(errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line,
			 jerr.column, jerr.text);
		return MR_ECONFIG;
	}
	if (!json_is_object(root)) {
		snprintf(errstr, errstr_size, "%s: must be a JSON object", path);
		json_decref(root);
		return MR_ECONFIG;
	}
	json_object_foreach(root, name, val)
	{
		char        buf[64];
		const char *s = buf;

		if (strcmp(name, "bounds") == 0) {
			if ((rc = config__bounds(c, path, val, errstr,
						 errstr_size)) != MR_OK)
				break;
			continue;
		}
		if (json_is_string(val))
			s = json_string_value(val);
		else if (json_is_integer(val))
			snprintf(buf, sizeof(buf), "%lld",
				 (long long)json_integer_value(val));
		else if (json_is_real(val)) // 17 digits: the same double
			snprintf(buf, sizeof(buf), "%.17g",
				 json_real_value(val));
		else if (json_is_boolean(val))
			s = json_is_true(val) ? "true" : "false";
		else {
			snprintf(errstr, errstr_size,
				 "%s: '%s' must be a string, a number or a "
				 "boolean",
				 path, name);
			rc = MR_ECONFIG;
			break;
		}
		if ((rc = mri_config_set(c, name, s, reload, errstr,
					 errstr_size)) != MR_OK)
			break;
	}
	json_decref(root);
	return rc;
}

int
mri_config_load_env(struct mri_config *c, bool reload, char *errstr,
		    size_t errstr_size)
{
	for (size_t i = 0; i < CONFIG__N; i++) {
		char        env[128] = "MAILROOM_";
		size_t      j        = strlen(env);
		const char *v;

		for (const char *p = config__table[i].name;
		     *p && j < sizeof(env) - 1; p++)
			env[j++] = *p == '.' ? '_' : (char)toupper(*p);
		env[j] = '\0';
		if ((v = getenv(env)) == NULL)
			continue;
		int rc = mri_config_set(c, config__table[i].name, v, reload,
					errstr, errstr_size);
		if (rc != MR_OK)
			return rc;
	}
	return MR_OK;
}

void
mri_config_print_help(void)
{
	for (size_t i = 0; i < CONFIG__N; i++) {
		const struct config__entry *e = &config__table[i];
		printf("  %-40s %-5s default %-24s%s\n      %s\n", e->name,
		       e->type == CFG_INT     ? "int"
		       : e->type == CFG_BOOL  ? "bool"
		       : e->type == CFG_FLOAT ? "float"
					      : "str",
		       e->def[0] ? e->def : "(empty)",
		       e->reloadable ? " (reloads on SIGHUP)" : "", e->help);
	}
	printf("  %-40s any librdkafka property, passed through\n",
	       "librdkafka.<property>");
}
