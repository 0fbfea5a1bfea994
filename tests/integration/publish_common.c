/*
 * Helpers of the publish suites (publish_common.h).
 */
#define _GNU_SOURCE /* memmem */

#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "bridge/address.h"
#include "integration/checked.h"
#include "integration/harness.h"
#include "integration/publish_common.h"
#include "mailroom/mailroom.h"
#include "proto/frame.h"

void
read_topic(const struct mrt_daemon *d, const char *topic, size_t want,
	   struct mrt_records *rs)
{
	char err[512];

	ck_assert_msg(mrt_kafka_read(d->bootstrap, topic, want, READ_MS, rs,
				     err, sizeof(err)) == 0,
		      "reading %s: %s", topic, err);
	ck_assert_msg(rs->n >= want,
		      "%s: read %zu records from Kafka, expected at least %zu",
		      topic, rs->n, want);
}

json_t *
status_json(mr_client *c)
{
	char   *text = NULL;
	json_t *st;
	int     rc = mr_status(c, &text);

	ck_assert_msg(rc == MR_OK, "status: %s", mr_err_name(rc));
	st = json_loads(text, 0, NULL);
	ck_assert_msg(st != NULL, "status is not JSON: %s", text);
	free(text);
	return st;
}

json_int_t
json_path_int(json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}
