/*
 * Tests for broker/config.c: defaults, typed settings and their errors,
 * librdkafka pass-through, reloads, JSON files and MAILROOM_* variables.
 * Files are written under $TMPDIR (or /tmp) and removed.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/config.h"
#include "mailroom/error.h"

#define CONFIG_TEST__ENV_COUNT 8

/* Every variable a test sets, so that each test starts without them. */
static const char *config_test__env[CONFIG_TEST__ENV_COUNT] = {
    "MAILROOM_DEDUPE_WINDOW_MS", "MAILROOM_KAFKA_BROKERS",
    "MAILROOM_FAULT_INJECTION",  "MAILROOM_LOG_LEVEL",
    "MAILROOM_MAX_INFLIGHT",     "MAILROOM_CLOUDEVENTS_SOURCE",
    "MAILROOM_CONSUMER_RETRY_BACKOFF_JITTER",
    "MAILROOM_CONSUMER_DEAD_LETTER_TOPIC_SUFFIX",
};

static void
config_test__clear_env(void)
{
	for (size_t i = 0; i < CONFIG_TEST__ENV_COUNT; i++)
		unsetenv(config_test__env[i]);
}

static void
config_test__init(struct mri_config *c)
{
	config_test__clear_env();
	ck_assert_int_eq(mri_config_init(c), MR_OK);
}

/* Expect \p name = \p value to be refused with a message holding \p
 * part1 and \p part2 (either may be NULL). */
static void
config_test__refused(struct mri_config *c, const char *name,
		     const char *value, bool reload, const char *part1,
		     const char *part2)
{
	char errstr[512] = "";

	ck_assert_int_eq(mri_config_set(c, name, value, reload, errstr,
					sizeof(errstr)),
			 MR_ECONFIG);
	ck_assert_msg(errstr[0] != '\0', "%s=%s: no message", name, value);
	if (part1 != NULL)
		ck_assert_msg(strstr(errstr, part1) != NULL,
			      "'%s' does not say '%s'", errstr, part1);
	if (part2 != NULL)
		ck_assert_msg(strstr(errstr, part2) != NULL,
			      "'%s' does not say '%s'", errstr, part2);
}

static void
config_test__set(struct mri_config *c, const char *name, const char *value,
		 bool reload)
{
	char errstr[512] = "";

	ck_assert_msg(mri_config_set(c, name, value, reload, errstr,
				     sizeof(errstr)) == MR_OK,
		      "%s=%s: %s", name, value, errstr);
}

/* A temporary file holding \p text; the caller unlinks \p path. */
static void
config_test__file(char *path, size_t size, const char *text)
{
	const char *dir = getenv("TMPDIR");
	FILE       *f;
	int         fd;

	snprintf(path, size, "%s/mailroom-config-test-XXXXXX",
		 dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp %s", path);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert(fputs(text, f) >= 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* ---- defaults and settings ----------------------------------------------
 */

START_TEST(test_defaults)
{
	struct mri_config c;

	config_test__init(&c);
	ck_assert_str_eq(c.brokers, "");
	ck_assert_str_eq(c.listen, "tcp://127.0.0.1:7450");
	ck_assert_int_eq(c.max_frame_bytes, 16777216);
	ck_assert_int_eq(c.max_inflight, 256);
	ck_assert_int_eq(c.dedupe_window_ms, 120000);
	ck_assert_int_eq(c.dedupe_max_entries, 1000000);
	ck_assert_int_eq(c.linger_ms, 2);
	ck_assert_int_eq(c.message_timeout_ms, 30000);
	ck_assert_int_eq(c.message_max_bytes, 16777216);
	ck_assert_int_eq(c.shutdown_timeout_ms, 10000);
	ck_assert_str_eq(c.log_level, "info");
	ck_assert_str_eq(c.ce_source, "mailroomd");
	ck_assert_str_eq(c.ce_type, "mailroom.message");
	ck_assert(!c.fault_injection);
	ck_assert_int_eq(c.lag_interval_ms, 1000);
	// One budget bounds a subscription, acked ids included (issue #13).
	ck_assert_int_eq(c.consumer_memory_mb, 32);
	ck_assert_int_eq(c.consumer_dedupe_max_entries, 0);
	ck_assert_int_eq(c.consumer_fetch_wait_ms, 100);
	ck_assert_int_eq(c.consumer_retry_max_attempts, 5);
	ck_assert_int_eq(c.consumer_retry_backoff_initial_ms, 1000);
	ck_assert_int_eq(c.consumer_retry_backoff_max_ms, 60000);
	ck_assert(c.consumer_retry_backoff_multiplier == 2);
	ck_assert(c.consumer_retry_backoff_jitter == 0.2);
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, ".dlq");
	ck_assert_int_eq(c.consumer_dlq_breaker_max, 100);
	ck_assert_int_eq(c.consumer_dlq_breaker_period_ms, 10000);
	ck_assert_int_eq(c.consumer_dlq_breaker_cooldown_ms, 30000);
	ck_assert_ptr_null(c.file);
	ck_assert_uint_eq(c.rdk_count, 0);
	ck_assert_int_eq(mri_config_check(&c, NULL, 0), MR_OK);
	mri_config_fini(&c);
	ck_assert_ptr_null(c.listen);
	ck_assert_uint_eq(c.rdk_count, 0);
}
END_TEST

START_TEST(test_set_int)
{
	struct mri_config c;

	config_test__init(&c);
	config_test__set(&c, "max_inflight", "100", false);
	ck_assert_int_eq(c.max_inflight, 100);
	config_test__set(&c, "max_inflight", "1", false);
	ck_assert_int_eq(c.max_inflight, 1);
	config_test__set(&c, "max_inflight", "4096", false);
	ck_assert_int_eq(c.max_inflight, 4096);
	config_test__set(&c, "max_frame_bytes", "1073741824", false);
	ck_assert_int_eq(c.max_frame_bytes, 1LL << 30);
	config_test__set(&c, "dedupe.window_ms", "0", false);
	ck_assert_int_eq(c.dedupe_window_ms, 0);

	config_test__refused(&c, "max_inflight", "0", false, "max_inflight",
			     "0 is outside 1..4096");
	config_test__refused(&c, "max_inflight", "4097", false, "max_inflight",
			     "4097 is outside 1..4096");
	config_test__refused(&c, "max_inflight", "-5", false, "max_inflight",
			     "outside");
	config_test__refused(&c, "max_frame_bytes", "4095", false,
			     "max_frame_bytes", "4096..1073741824");
	config_test__set(&c, "lag.interval_ms", "100", true);
	ck_assert_int_eq(c.lag_interval_ms, 100);
	config_test__refused(&c, "lag.interval_ms", "99", false,
			     "lag.interval_ms", "99 is outside 100..60000");
	config_test__refused(&c, "lag.interval_ms", "60001", false,
			     "lag.interval_ms", "outside 100..60000");
	config_test__refused(&c, "max_inflight", "abc", false, "max_inflight",
			     "'abc' is not an integer");
	config_test__refused(&c, "max_inflight", "12abc", false, "'12abc'",
			     "not an integer");
	config_test__refused(&c, "max_inflight", "", false, "not an integer",
			     NULL);
	config_test__refused(&c, "max_inflight", "1.5", false,
			     "not an integer", NULL);
	config_test__refused(&c, "max_inflight", "99999999999999999999",
			     false, "not an integer", NULL);
	// A refused value leaves the old one.
	ck_assert_int_eq(c.max_inflight, 4096);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_set_float)
{
	static const char *mult = "consumer.retry.backoff_multiplier";
	static const char *jit  = "consumer.retry.backoff_jitter";
	struct mri_config  c;

	config_test__init(&c);
	config_test__set(&c, mult, "1.5", false);
	ck_assert(c.consumer_retry_backoff_multiplier == 1.5);
	config_test__set(&c, mult, "100", false);
	ck_assert(c.consumer_retry_backoff_multiplier == 100);
	config_test__set(&c, mult, "1", false);
	ck_assert(c.consumer_retry_backoff_multiplier == 1);
	config_test__set(&c, mult, "2.5e1", false);
	ck_assert(c.consumer_retry_backoff_multiplier == 25);
	config_test__set(&c, jit, "0", false);
	ck_assert(c.consumer_retry_backoff_jitter == 0);
	config_test__set(&c, jit, "1", false);
	ck_assert(c.consumer_retry_backoff_jitter == 1);
	config_test__set(&c, jit, "0.35", false);
	ck_assert(c.consumer_retry_backoff_jitter == 0.35);

	config_test__refused(&c, mult, "0.999", false, mult,
			     "0.999 is outside 1..100");
	config_test__refused(&c, mult, "100.5", false, "outside 1..100",
			     NULL);
	config_test__refused(&c, jit, "-0.1", false, jit,
			     "-0.1 is outside 0..1");
	config_test__refused(&c, jit, "1.0001", false, "outside 0..1", NULL);
	config_test__refused(&c, jit, "abc", false, jit,
			     "'abc' is not a number");
	config_test__refused(&c, jit, "", false, "not a number", NULL);
	config_test__refused(&c, jit, "0.2x", false, "not a number", NULL);
	config_test__refused(&c, jit, "0,2", false, "not a number", NULL);
	config_test__refused(&c, mult, "nan", false, "not a number", NULL);
	config_test__refused(&c, mult, "inf", false, "not a number", NULL);
	config_test__refused(&c, mult, "1e999", false, "not a number", NULL);
	// A refused value leaves the old one.
	ck_assert(c.consumer_retry_backoff_jitter == 0.35);
	ck_assert(c.consumer_retry_backoff_multiplier == 25);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_set_suffix)
{
	static const char *sfx = "consumer.dead_letter.topic_suffix";
	struct mri_config  c;
	char               long_sfx[80];

	config_test__init(&c);
	config_test__set(&c, sfx, "-dead_letters.v2", false);
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, "-dead_letters.v2");
	config_test__set(&c, sfx, "_", false);
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, "_");
	memset(long_sfx, 'x', 64);
	long_sfx[64] = '\0';
	config_test__set(&c, sfx, long_sfx, false);
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, long_sfx);
	long_sfx[64] = 'x';
	long_sfx[65] = '\0';
	config_test__refused(&c, sfx, long_sfx, false, sfx,
			     "is not 1 to 64 characters of a-z A-Z 0-9 . _ -");
	config_test__refused(&c, sfx, "", false, "'' is not 1 to 64", NULL);
	config_test__refused(&c, sfx, ".d lq", false, "'.d lq' is not", NULL);
	config_test__refused(&c, sfx, ".dlq/x", false, "is not 1 to 64",
			     NULL);
	config_test__refused(&c, sfx, ".dl\xc3\xa9", false, "is not 1 to 64",
			     NULL);
	// A refused value leaves the old one.
	long_sfx[64] = '\0';
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, long_sfx);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_check)
{
	struct mri_config c;
	char              errstr[512] = "";

	config_test__init(&c);
	config_test__set(&c, "consumer.retry.backoff_initial_ms", "60000",
			 false);
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)), MR_OK);
	config_test__set(&c, "consumer.retry.backoff_initial_ms", "60001",
			 false);
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)),
			 MR_ECONFIG);
	ck_assert_str_eq(errstr, "consumer.retry.backoff_max_ms (60000) is "
				 "below consumer.retry.backoff_initial_ms "
				 "(60001)");
	config_test__set(&c, "consumer.retry.backoff_max_ms", "60001", false);
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)), MR_OK);
	config_test__set(&c, "consumer.retry.backoff_initial_ms", "0", false);
	config_test__set(&c, "consumer.retry.backoff_max_ms", "0", false);
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)), MR_OK);
	mri_config_fini(&c);
}
END_TEST

/* producer.envelope: full by default, lean allowed, and reloadable; any
 * other word is refused by the check (a reload with it is refused). */
START_TEST(test_envelope)
{
	struct mri_config c;
	char              errstr[256];

	config_test__init(&c);
	ck_assert_str_eq(c.envelope, "full");
	config_test__set(&c, "producer.envelope", "lean", true);
	ck_assert_str_eq(c.envelope, "lean");
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)), MR_OK);
	config_test__set(&c, "producer.envelope", "Lean", false);
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)),
			 MR_ECONFIG);
	ck_assert_str_eq(errstr,
			 "producer.envelope: 'Lean' is neither full nor lean");
	config_test__set(&c, "producer.envelope", "full", false);
	ck_assert_int_eq(mri_config_check(&c, errstr, sizeof(errstr)), MR_OK);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_set_bool)
{
	struct mri_config c;

	config_test__init(&c);
	config_test__set(&c, "fault_injection", "true", false);
	ck_assert(c.fault_injection);
	config_test__set(&c, "fault_injection", "0", false);
	ck_assert(!c.fault_injection);
	config_test__set(&c, "fault_injection", "1", false);
	ck_assert(c.fault_injection);
	config_test__set(&c, "fault_injection", "false", false);
	ck_assert(!c.fault_injection);
	config_test__refused(&c, "fault_injection", "yes", false,
			     "fault_injection", "'yes' is not true or false");
	config_test__refused(&c, "fault_injection", "", false,
			     "not true or false", NULL);
	config_test__refused(&c, "fault_injection", "TRUE", false,
			     "not true or false", NULL);
	ck_assert(!c.fault_injection);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_set_str)
{
	struct mri_config c;
	char              value[64];

	config_test__init(&c);
	config_test__set(&c, "listen", "tcp://0.0.0.0:1,ipc:///tmp/mr", false);
	ck_assert_str_eq(c.listen, "tcp://0.0.0.0:1,ipc:///tmp/mr");
	config_test__set(&c, "kafka.brokers", "a:9092,b:9092", false);
	ck_assert_str_eq(c.brokers, "a:9092,b:9092");
	config_test__set(&c, "kafka.brokers", "", false);
	ck_assert_str_eq(c.brokers, "");
	// The value is copied.
	snprintf(value, sizeof(value), "svc-a");
	config_test__set(&c, "cloudevents.source", value, false);
	value[0] = 'X';
	ck_assert_str_eq(c.ce_source, "svc-a");
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_unknown)
{
	struct mri_config c;
	char              small[8];

	config_test__init(&c);
	config_test__refused(&c, "no.such", "1", false, "unknown setting",
			     "'no.such'");
	config_test__refused(&c, "no.such", "1", true, "no.such", NULL);
	config_test__refused(&c, "", "1", false, "unknown", NULL);
	config_test__refused(&c, "Listen", "x", false, "unknown", NULL);
	config_test__refused(&c, "librdkafka.", "x", false,
			     "needs a property name", NULL);
	// A short errstr is cut, never overrun.
	memset(small, '#', sizeof(small));
	ck_assert_int_eq(mri_config_set(&c, "no.such.setting.at.all", "1",
					false, small, sizeof(small)),
			 MR_ECONFIG);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_librdkafka)
{
	struct mri_config c;

	config_test__init(&c);
	config_test__set(&c, "librdkafka.compression.type", "lz4", false);
	config_test__set(&c, "librdkafka.acks", "all", false);
	config_test__set(&c, "librdkafka.debug", "", false);
	ck_assert_uint_eq(c.rdk_count, 3);
	ck_assert_str_eq(c.rdk_names[0], "compression.type");
	ck_assert_str_eq(c.rdk_values[0], "lz4");
	ck_assert_str_eq(c.rdk_names[1], "acks");
	ck_assert_str_eq(c.rdk_values[1], "all");
	ck_assert_str_eq(c.rdk_names[2], "debug");
	ck_assert_str_eq(c.rdk_values[2], "");
	// Setting one again replaces it in place.
	config_test__set(&c, "librdkafka.compression.type", "zstd", false);
	ck_assert_uint_eq(c.rdk_count, 3);
	ck_assert_str_eq(c.rdk_names[0], "compression.type");
	ck_assert_str_eq(c.rdk_values[0], "zstd");
	// librdkafka cannot change live: a reload leaves them.
	config_test__set(&c, "librdkafka.acks", "1", true);
	config_test__set(&c, "librdkafka.linger.ms", "5", true);
	ck_assert_uint_eq(c.rdk_count, 3);
	ck_assert_str_eq(c.rdk_values[1], "all");
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_reload)
{
	struct mri_config c;

	config_test__init(&c);
	config_test__set(&c, "listen", "tcp://127.0.0.1:1", true);
	ck_assert_str_eq(c.listen, "tcp://127.0.0.1:7450");
	config_test__set(&c, "max_inflight", "7", true);
	ck_assert_int_eq(c.max_inflight, 256);
	config_test__set(&c, "fault_injection", "true", true);
	ck_assert(!c.fault_injection);
	config_test__set(&c, "dedupe.window_ms", "1", true);
	ck_assert_int_eq(c.dedupe_window_ms, 120000);

	config_test__set(&c, "log.level", "debug", true);
	ck_assert_str_eq(c.log_level, "debug");
	config_test__set(&c, "cloudevents.source", "svc", true);
	ck_assert_str_eq(c.ce_source, "svc");
	config_test__set(&c, "cloudevents.type", "t", true);
	ck_assert_str_eq(c.ce_type, "t");
	mri_config_fini(&c);
}
END_TEST

/* The line of \p name in --help-config's \p text says \p what after the
 * name's column. */
static void
config_test__help_line(const char *text, const char *name, const char *what)
{
	char        want[128];
	const char *p;

	snprintf(want, sizeof(want), "\n  %-40s %s", name, what);
	p = strstr(text, want);
	ck_assert_msg(p != NULL, "no line '%s' in:\n%s", want + 1, text);
}

START_TEST(test_help)
{
	char              path[512];
	FILE             *f;
	char             *text;
	long              n;
	int               saved;

	config_test__file(path, sizeof(path), "");
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	ck_assert(saved >= 0);
	ck_assert_ptr_nonnull(freopen(path, "w", stdout));
	mri_config_print_help();
	fflush(stdout);
	ck_assert(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(path);
	// The table is listed, with the pass-through.
	ck_assert_ptr_nonnull(strstr(text, "dedupe.window_ms"));
	ck_assert_ptr_nonnull(strstr(text, "kafka.brokers"));
	ck_assert_ptr_nonnull(strstr(text, "fault_injection"));
	ck_assert_ptr_nonnull(strstr(text, "librdkafka.<property>"));
	ck_assert_ptr_nonnull(strstr(text, "(reloads on SIGHUP)"));
	config_test__help_line(text, "consumer.retry.backoff_jitter",
			       "float default 0.2 ");
	config_test__help_line(text, "consumer.dead_letter.topic_suffix",
			       "str   default .dlq ");
	config_test__help_line(text, "max_inflight", "int   default 256 ");
	free(text);
}
END_TEST

/* ---- files --------------------------------------------------------------
 */

START_TEST(test_file)
{
	struct mri_config c;
	char              path[512], errstr[512] = "";

	config_test__init(&c);
	config_test__file(path, sizeof(path),
			  "{\n"
			  "  \"listen\": \"tcp://0.0.0.0:7451\",\n"
			  "  \"max_inflight\": 10,\n"
			  "  \"fault_injection\": true,\n"
			  "  \"librdkafka.acks\": \"all\",\n"
			  "  \"librdkafka.compression.type\": \"lz4\",\n"
			  "  \"log.level\": \"debug\",\n"
			  "  \"consumer.retry.backoff_jitter\": 0.1,\n"
			  "  \"consumer.retry.backoff_multiplier\": 3,\n"
			  "  \"consumer.dead_letter.topic_suffix\": \"-dlt\",\n"
			  "  \"dedupe.window_ms\": \"5000\"\n"
			  "}\n");
	ck_assert_msg(mri_config_load_file(&c, path, false, errstr,
					   sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	unlink(path);
	ck_assert_str_eq(c.listen, "tcp://0.0.0.0:7451");
	ck_assert_int_eq(c.max_inflight, 10);
	ck_assert(c.fault_injection);
	ck_assert_str_eq(c.log_level, "debug");
	ck_assert_int_eq(c.dedupe_window_ms, 5000);
	ck_assert(c.consumer_retry_backoff_jitter == 0.1); // the same double
	ck_assert(c.consumer_retry_backoff_multiplier == 3);
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, "-dlt");
	// Pass-through settings keep the file's order.
	ck_assert_uint_eq(c.rdk_count, 2);
	ck_assert_str_eq(c.rdk_names[0], "acks");
	ck_assert_str_eq(c.rdk_values[0], "all");
	ck_assert_str_eq(c.rdk_names[1], "compression.type");
	ck_assert_ptr_null(c.bounds);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_file_bounds)
{
	struct mri_config c;
	char              path[512], errstr[512] = "";

	config_test__init(&c);
	config_test__file(path, sizeof(path),
			  "{\"max_inflight\": 10, \"bounds\": {\n"
			  "  \"orders\": {\"max_lag\": 1000, \"policy\": "
			  "\"reject\"},\n"
			  "  \"events\": {\"max_time_lag_ms\": 60000, "
			  "\"groups\": [\"g\"]}}}\n");
	ck_assert_msg(mri_config_load_file(&c, path, false, errstr,
					   sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	unlink(path);
	ck_assert_int_eq(c.max_inflight, 10);
	ck_assert_ptr_nonnull(c.bounds);
	ck_assert_uint_eq(json_object_size(c.bounds), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(c.bounds, "orders"), "max_lag")),
			 1000);
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_file_syntax_error)
{
	static const char *text = "{\n"
				  "  \"listen\": \"tcp://0.0.0.0:7451\",\n"
				  "  \"max_inflight\": 10,,\n"
				  "}\n";
	struct mri_config  c;
	char               path[512], errstr[512] = "", want[1024];
	json_error_t       jerr;

	config_test__init(&c);
	config_test__file(path, sizeof(path), text);
	ck_assert_int_eq(
	    mri_config_load_file(&c, path, false, errstr, sizeof(errstr)),
	    MR_ECONFIG);
	unlink(path);
	// The message is jansson's, at jansson's line and column.
	ck_assert_ptr_null(json_loads(text, 0, &jerr));
	ck_assert_int_eq(jerr.line, 3);
	snprintf(want, sizeof(want), "%s:%d:%d: %s", path, jerr.line,
		 jerr.column, jerr.text);
	ck_assert_str_eq(errstr, want);
	ck_assert_ptr_nonnull(strstr(errstr, ":3:"));
	// Nothing before the error was applied: the file is refused whole.
	ck_assert_str_eq(c.listen, "tcp://127.0.0.1:7450");
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_file_errors)
{
	// Whether the message names the file, and what else it says.
	static const struct {
		const char *text;
		bool        path;
		const char *says;
	} bad[] = {
	    {"[1, 2]", true, "must be a JSON object"},
	    {"\"listen\"", true, "'[' or '{' expected"},
	    {"{\"max_inflight\": 1.5}", false, "'1.5' is not an integer"},
	    {"{\"consumer.retry.backoff_jitter\": 1.5}", false,
	     "1.5 is outside 0..1"},
	    {"{\"consumer.dead_letter.topic_suffix\": \".a b\"}", false,
	     "'.a b' is not 1 to 64 characters"},
	    {"{\"listen\": null}", true,
	     "'listen' must be a string, a number or a boolean"},
	    {"{\"listen\": {\"a\": 1}}", true, "'listen' must be a string"},
	    {"{\"listen\": [\"a\"]}", true, "'listen' must be a string"},
	    {"{\"max_inflight\": 0}", false, "0 is outside 1..4096"},
	    {"{\"max_inflight\": true}", false, "'true' is not an integer"},
	    {"{\"fault_injection\": \"maybe\"}", false, "not true or false"},
	    {"{\"no_such_setting\": 1}", false,
	     "unknown setting 'no_such_setting'"},
	    {"", true, "expected"},
	    {"{\"bounds\": [1]}", true,
	     "'bounds' must be an object of topic names to bounds"},
	    {"{\"bounds\": {\"t\": {\"max_lag\": -1}}}", true,
	     "bounds.t: max_lag must be 0 to"},
	    {"{\"bounds\": {\"t\": {\"max_lag\": 10, \"resume_lag\": 10}}}",
	     true, "bounds.t: resume_lag (10) must be below max_lag (10)"},
	    {"{\"bounds\": {\"a/b\": {\"max_lag\": 10}}}", true,
	     "bounds.a/b: invalid topic 'a/b'"},
	    {"{\"bounds\": {\"t\": {\"max_lag\": 10, \"burst\": 1}}}", true,
	     "bounds.t: unknown field burst"},
	};
	struct mri_config c;
	char              path[512], errstr[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_test__init(&c);
		config_test__file(path, sizeof(path), bad[i].text);
		errstr[0] = '\0';
		ck_assert_msg(mri_config_load_file(&c, path, false, errstr,
						   sizeof(errstr)) ==
				  MR_ECONFIG,
			      "%s accepted", bad[i].text);
		unlink(path);
		ck_assert_msg(strstr(errstr, bad[i].says) != NULL,
			      "'%s' does not say '%s'", errstr, bad[i].says);
		if (bad[i].path)
			ck_assert_msg(strncmp(errstr, path, strlen(path)) == 0,
				      "'%s' does not name the file", errstr);
		mri_config_fini(&c);
	}

	// A missing file names itself.
	config_test__init(&c);
	snprintf(path, sizeof(path), "/nonexistent-dir/mailroom.json");
	errstr[0] = '\0';
	ck_assert_int_eq(
	    mri_config_load_file(&c, path, false, errstr, sizeof(errstr)),
	    MR_ECONFIG);
	ck_assert_ptr_nonnull(strstr(errstr, path));
	mri_config_fini(&c);
}
END_TEST

START_TEST(test_file_reload)
{
	struct mri_config c;
	char              path[512], errstr[512] = "";

	config_test__init(&c);
	config_test__file(path, sizeof(path),
			  "{\"listen\": \"tcp://0.0.0.0:1\", "
			  "\"max_inflight\": 9, \"log.level\": \"warning\", "
			  "\"librdkafka.acks\": \"1\", "
			  "\"cloudevents.type\": \"t2\"}");
	ck_assert_msg(mri_config_load_file(&c, path, true, errstr,
					   sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	unlink(path);
	ck_assert_str_eq(c.listen, "tcp://127.0.0.1:7450");
	ck_assert_int_eq(c.max_inflight, 256);
	ck_assert_uint_eq(c.rdk_count, 0);
	ck_assert_str_eq(c.log_level, "warning");
	ck_assert_str_eq(c.ce_type, "t2");
	mri_config_fini(&c);
}
END_TEST

/* ---- environment --------------------------------------------------------
 */

START_TEST(test_env)
{
	struct mri_config c;
	char              errstr[512] = "";

	config_test__init(&c);
	setenv("MAILROOM_DEDUPE_WINDOW_MS", "5000", 1);
	setenv("MAILROOM_KAFKA_BROKERS", "k1:9092", 1);
	setenv("MAILROOM_FAULT_INJECTION", "true", 1);
	setenv("MAILROOM_LOG_LEVEL", "debug", 1);
	setenv("MAILROOM_CONSUMER_RETRY_BACKOFF_JITTER", "0.5", 1);
	setenv("MAILROOM_CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".poison", 1);
	ck_assert_msg(mri_config_load_env(&c, false, errstr,
					  sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	ck_assert(c.consumer_retry_backoff_jitter == 0.5);
	ck_assert_str_eq(c.consumer_dlq_topic_suffix, ".poison");
	ck_assert_int_eq(c.dedupe_window_ms, 5000);
	ck_assert_str_eq(c.brokers, "k1:9092");
	ck_assert(c.fault_injection);
	ck_assert_str_eq(c.log_level, "debug");
	// Untouched settings keep their defaults.
	ck_assert_int_eq(c.max_inflight, 256);
	mri_config_fini(&c);

	// A reload takes only what can change live.
	config_test__init(&c);
	setenv("MAILROOM_DEDUPE_WINDOW_MS", "5000", 1);
	setenv("MAILROOM_LOG_LEVEL", "err", 1);
	setenv("MAILROOM_CLOUDEVENTS_SOURCE", "env-src", 1);
	ck_assert_int_eq(mri_config_load_env(&c, true, errstr, sizeof(errstr)),
			 MR_OK);
	ck_assert_int_eq(c.dedupe_window_ms, 120000);
	ck_assert_str_eq(c.log_level, "err");
	ck_assert_str_eq(c.ce_source, "env-src");
	mri_config_fini(&c);
	config_test__clear_env();
}
END_TEST

START_TEST(test_env_errors)
{
	struct mri_config c;
	char              errstr[512] = "";

	config_test__init(&c);
	setenv("MAILROOM_MAX_INFLIGHT", "lots", 1);
	ck_assert_int_eq(mri_config_load_env(&c, false, errstr,
					     sizeof(errstr)),
			 MR_ECONFIG);
	ck_assert_ptr_nonnull(strstr(errstr, "max_inflight"));
	ck_assert_ptr_nonnull(strstr(errstr, "'lots' is not an integer"));
	setenv("MAILROOM_MAX_INFLIGHT", "100000", 1);
	ck_assert_int_eq(mri_config_load_env(&c, false, errstr,
					     sizeof(errstr)),
			 MR_ECONFIG);
	ck_assert_ptr_nonnull(strstr(errstr, "outside 1..4096"));
	mri_config_fini(&c);
	config_test__clear_env();
}
END_TEST

START_TEST(test_file_then_env)
{
	struct mri_config c;
	char              path[512], errstr[512] = "";

	config_test__init(&c);
	config_test__file(path, sizeof(path),
			  "{\"dedupe.window_ms\": 1000, \"max_inflight\": 5}");
	ck_assert_int_eq(
	    mri_config_load_file(&c, path, false, errstr, sizeof(errstr)),
	    MR_OK);
	unlink(path);
	setenv("MAILROOM_DEDUPE_WINDOW_MS", "2000", 1);
	ck_assert_int_eq(mri_config_load_env(&c, false, errstr,
					     sizeof(errstr)),
			 MR_OK);
	ck_assert_int_eq(c.dedupe_window_ms, 2000);
	ck_assert_int_eq(c.max_inflight, 5);
	mri_config_fini(&c);
	config_test__clear_env();
}
END_TEST

static Suite *
config_test__suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("set");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_file_bounds);
	tcase_add_test(tc, test_set_int);
	tcase_add_test(tc, test_set_float);
	tcase_add_test(tc, test_set_suffix);
	tcase_add_test(tc, test_check);
	tcase_add_test(tc, test_set_bool);
	tcase_add_test(tc, test_set_str);
	tcase_add_test(tc, test_unknown);
	tcase_add_test(tc, test_librdkafka);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_help);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_test(tc, test_file);
	tcase_add_test(tc, test_file_syntax_error);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_file_reload);
	suite_add_tcase(s, tc);

	tc = tcase_create("env");
	tcase_add_test(tc, test_env);
	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_env_errors);
	tcase_add_test(tc, test_file_then_env);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(config_test__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
