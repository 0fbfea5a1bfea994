/*
 * The STATUS JSON rendered from a status snapshot: every key, in its
 * place, with its value (cli/status.c and the integration tests read
 * them).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/status.h"

static char *const status_test__urls[] = {"tcp://127.0.0.1:7800",
					  "ipc:///tmp/m.sock"};

static struct mri_status
status_test__snapshot(void)
{
	struct mri_status st;

	memset(&st, 0, sizeof(st));
	st.version                  = "9.8.7";
	st.protocol                 = 3;
	st.kafka.bootstrap          = "localhost:9092";
	st.kafka.reachable          = true;
	st.listeners                = status_test__urls;
	st.nlisteners               = 2;
	st.uptime_s                 = 12;
	st.inflight_requests        = 4;
	st.publish.requests         = 100;
	st.publish.confirmed        = 900;
	st.publish.failed           = 7;
	st.publish.duplicates       = 5;
	st.publish.refused_requests = 2;
	st.producer.confirmed       = 895;
	st.producer.recreations     = 1;
	st.producer.resent          = 30;
	st.producer.outq            = 6;
	st.dedupe.enabled           = true;
	st.dedupe.window_ms         = 120000;
	st.dedupe.entries           = 40;
	st.dedupe.evicted_early     = 3;
	st.order.streams            = 8;
	st.order.waiting            = 1;
	st.order.refused            = 9;
	return st;
}

static void
status_test__expect(const struct mri_status *st, const char *want)
{
	json_t *o = mri_status_json(st);
	char   *text;

	ck_assert_ptr_nonnull(o);
	text = json_dumps(o, JSON_COMPACT);
	ck_assert_str_eq(text, want);
	free(text);
	json_decref(o);
}

#define STATUS_TEST__PUBLISH                                                  \
	"\"listeners\":[\"tcp://127.0.0.1:7800\",\"ipc:///tmp/m.sock\"],"     \
	"\"uptime_s\":12,\"inflight_requests\":4,"                            \
	"\"publish\":{\"requests\":100,\"confirmed\":900,\"failed\":7,"       \
	"\"duplicates\":5,\"refused_requests\":2},"                           \
	"\"producer\":{\"confirmed\":895,\"recreations\":1,\"resent\":30,"    \
	"\"outq\":6},"                                                        \
	"\"dedupe\":{\"enabled\":true,\"window_ms\":120000,\"entries\":40,"   \
	"\"evicted_early\":3},"                                               \
	"\"order\":{\"streams\":8,\"waiting\":1,\"refused\":9}"

START_TEST(test_kafka)
{
	struct mri_status st = status_test__snapshot();

	status_test__expect(
	    &st, "{\"version\":\"9.8.7\",\"protocol\":3,"
		 "\"kafka\":{\"bootstrap\":\"localhost:9092\","
		 "\"embedded\":false,\"reachable\":true}," STATUS_TEST__PUBLISH
		 "}");
	// Kafka away: for how long and why, only then.
	st.kafka.reachable      = false;
	st.kafka.unreachable_ms = 4500;
	snprintf(st.kafka.error, sizeof(st.kafka.error), "1/1 brokers are down");
	status_test__expect(
	    &st, "{\"version\":\"9.8.7\",\"protocol\":3,"
		 "\"kafka\":{\"bootstrap\":\"localhost:9092\","
		 "\"embedded\":false,\"reachable\":false,"
		 "\"unreachable_ms\":4500,\"error\":\"1/1 brokers are down\"},"
		 STATUS_TEST__PUBLISH "}");
}
END_TEST

START_TEST(test_embedded_and_consume)
{
	struct mri_status st = status_test__snapshot();

	st.kafka.embedded              = true;
	st.kafka.warning               = "in memory";
	st.has_consume                 = true;
	st.consume.subscriptions       = 2;
	st.consume.sessions            = 5;
	st.consume.joined              = 1;
	st.consume.joining             = 1;
	snprintf(st.consume.waiting, sizeof(st.consume.waiting), "audit");
	st.consume.nsubs               = 2;
	snprintf(st.consume.subs[0].group, sizeof(st.consume.subs[0].group),
		 "billing");
	st.consume.subs[0].mode          = "key";
	st.consume.subs[0].ntopics       = 2;
	st.consume.subs[0].sessions      = 3;
	st.consume.subs[0].g.joined      = true;
	st.consume.subs[0].g.nparts      = 4;
	st.consume.subs[0].g.buffered    = 10;
	st.consume.subs[0].g.inflight    = 6;
	st.consume.subs[0].g.backoff     = 1;
	st.consume.subs[0].g.quarantining = 1;
	st.consume.subs[0].g.acked       = 500;
	st.consume.subs[0].g.failed      = 12;
	st.consume.subs[0].dlq.failures    = 12;
	st.consume.subs[0].dlq.quarantined = 2;
	st.consume.subs[0].dlq.pending     = 1;
	snprintf(st.consume.subs[1].group, sizeof(st.consume.subs[1].group),
		 "audit");
	st.consume.subs[1].mode           = "unordered";
	st.consume.subs[1].ntopics        = 1;
	st.consume.subs[1].sessions       = 2;
	st.consume.subs[1].dlq.breaker    = MRI_DLQ_OPEN;
	st.consume.subs[1].dlq.trips      = 1;
	st.consume.subs[1].dlq.failures   = 100;
	st.consume.subs[1].dlq.dlq_errors = 3;
	st.consume.subs[1].dlq.opened_ms  = 1000;
	st.consume.subs[1].dlq.retry_ms   = 31000;
	snprintf(st.consume.subs[1].dlq.reason,
		 sizeof(st.consume.subs[1].dlq.reason), "100 failed");
	st.has_lag           = true;
	st.lag_interval_ms   = 1000;
	st.lag.groups        = 3;
	st.lag.rows          = 12;
	st.lag.max_lag       = 4096;
	st.lag.taken_ms      = 1796398800123;
	st.lag.refreshes     = 7;
	st.lag.failures      = 1;
	status_test__expect(
	    &st, "{\"version\":\"9.8.7\",\"protocol\":3,"
		 "\"kafka\":{\"bootstrap\":\"localhost:9092\","
		 "\"embedded\":true,\"reachable\":true,"
		 "\"warning\":\"in memory\"}," STATUS_TEST__PUBLISH
		 ",\"consume\":{\"subscriptions\":2,\"sessions\":5,"
		 "\"joined\":1,\"joining\":1,\"waiting\":\"audit\","
		 "\"groups\":["
		 "{\"group\":\"billing\",\"mode\":\"key\",\"topics\":2,"
		 "\"sessions\":3,\"joined\":true,\"partitions\":4,"
		 "\"buffered\":10,"
		 "\"inflight\":6,\"backoff\":1,\"quarantining\":1,"
		 "\"acked\":500,\"failed\":12,\"dead_letter\":{"
		 "\"breaker\":\"closed\",\"trips\":0,\"failures\":12,"
		 "\"quarantined\":2,\"dlq_errors\":0,\"pending\":1}},"
		 "{\"group\":\"audit\",\"mode\":\"unordered\",\"topics\":1,"
		 "\"sessions\":2,\"joined\":false,\"partitions\":0,"
		 "\"buffered\":0,"
		 "\"inflight\":0,\"backoff\":0,\"quarantining\":0,"
		 "\"acked\":0,\"failed\":0,\"dead_letter\":{"
		 "\"breaker\":\"open\",\"trips\":1,\"failures\":100,"
		 "\"quarantined\":0,\"dlq_errors\":3,\"pending\":0,"
		 "\"reason\":\"100 failed\",\"opened_ms\":1000,"
		 "\"retry_ms\":31000}}]},"
		 "\"lag\":{\"interval_ms\":1000,\"groups\":3,"
		 "\"partitions\":12,\"max_lag\":4096,"
		 "\"refreshed_ms\":1796398800123,\"refreshes\":7,"
		 "\"failures\":1}}");
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("status");
	TCase   *tc = tcase_create("status");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_kafka);
	tcase_add_test(tc, test_embedded_and_consume);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
