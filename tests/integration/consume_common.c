/*
 * Helpers of the consume suites (consume_common.h).
 */
#define _GNU_SOURCE /* memmem */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "integration/checked.h"
#include "integration/consume_common.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"
#include "proto/consume.h"
#include "proto/frame.h"

/* Publish \p n messages in requests of at most 1000; every one must be
 * acked. acks (n of them) may be NULL. */
void
publish_all(mr_client *c, const mr_message *m, size_t n, mr_ack *acks)
{
	mr_ack *own = NULL;

	if (acks == NULL) {
		own  = calloc(n, sizeof(*own));
		acks = own;
		ck_assert_ptr_nonnull(acks);
	}
	for (size_t i = 0; i < n; i += 1000) {
		size_t k  = n - i < 1000 ? n - i : 1000;
		int    rc = mr_publish_batch(c, m + i, k, acks + i);

		ck_assert_msg(rc == MR_OK, "mr_publish_batch at %zu: %s: %s", i,
			      mr_err_name(rc), acks[i].error);
		for (size_t j = i; j < i + k; j++)
			ck_assert_msg(acks[j].status == MR_OK,
				      "message %zu not acked: %s", j,
				      acks[j].error);
	}
	free(own);
}

/* n messages to \p topic, key "KEYFMT" % (i % nkeys) (nkeys 0: keyless),
 * payload "<key>:<i>". */
void
publish_simple(mr_client *c, const char *topic, size_t n, int nkeys,
	       mr_ack *acks)
{
	mr_message *m    = calloc(n, sizeof(*m));
	char      (*k)[32] = calloc(n, sizeof(*k));
	char      (*p)[64] = calloc(n, sizeof(*p));

	ck_assert(m != NULL && k != NULL && p != NULL);
	for (size_t i = 0; i < n; i++) {
		snprintf(k[i], sizeof(k[i]), "key-%d",
			 nkeys > 0 ? (int)(i % (size_t)nkeys) : -1);
		snprintf(p[i], sizeof(p[i]), "%s:%zu", k[i], i);
		m[i] = (mr_message){.topic       = topic,
				    .key         = nkeys > 0 ? k[i] : NULL,
				    .key_len     = nkeys > 0 ? strlen(k[i]) : 0,
				    .payload     = p[i],
				    .payload_len = strlen(p[i])};
	}
	publish_all(c, m, n, acks);
	free(m);
	free(k);
	free(p);
}

mr_consumer *
subscribe(mr_client *c, const char *group, const char *topic, mr_order order,
	  int deadline_ms, int credit)
{
	mr_subscribe_opts o = {.order           = order,
			       .ack_deadline_ms = deadline_ms,
			       .credit          = credit};
	const char       *topics[1] = {topic};
	mr_consumer      *s         = NULL;
	int               rc;

	rc = mr_subscribe(c, group, topics, 1, &o, &s);
	ck_assert_msg(rc == MR_OK, "mr_subscribe(%s, %s): %s: %s", group, topic,
		      mr_err_name(rc), mr_client_last_error());
	ck_assert_ptr_nonnull(s);
	return s;
}

mr_batch *
fetch(mr_consumer *s, size_t max, int wait_ms)
{
	mr_batch *b = NULL;
	int       rc = mr_fetch(s, max, 0, wait_ms, &b);

	ck_assert_msg(rc == MR_OK, "mr_fetch: %s: %s", mr_err_name(rc),
		      mr_client_last_error());
	ck_assert_ptr_nonnull(b);
	return b;
}

/* Settle; asserts the requests went through. @returns the failed count. */
size_t
ack(mr_consumer *s, const uint64_t *h, size_t n)
{
	size_t failed = SIZE_MAX;
	int    rc     = mr_consumer_ack(s, h, n, &failed);

	ck_assert_msg(rc == MR_OK, "mr_consumer_ack of %zu: %s: %s", n,
		      mr_err_name(rc), mr_client_last_error());
	ck_assert_msg(failed <= n, "ack: failed is %zu of %zu", failed, n);
	return failed;
}

size_t
ack1(mr_consumer *s, uint64_t h)
{
	return ack(s, &h, 1);
}


void
got_copy(struct got *g, const mr_delivery *d)
{
	size_t n = d->payload_len < sizeof(g->payload) - 1
		       ? d->payload_len
		       : sizeof(g->payload) - 1;

	g->handle     = d->handle;
	g->partition  = d->partition;
	g->offset     = d->offset;
	g->attempt    = d->attempt;
	g->redelivery = d->redelivery;
	snprintf(g->id, sizeof(g->id), "%s", d->id);
	if (n > 0)
		memcpy(g->payload, d->payload, n);
	g->payload[n] = '\0';
}

/* One fetch, copied into out (at most cap). @returns how many. */
size_t
fetch_got(mr_consumer *s, size_t max, int wait_ms, struct got *out,
	  size_t cap)
{
	mr_batch *b = fetch(s, max, wait_ms);
	size_t    n = mr_batch_count(b);

	ck_assert_msg(n <= max, "a fetch of at most %zu returned %zu", max, n);
	ck_assert_msg(n <= cap, "a fetch returned %zu, more than %zu", n, cap);
	for (size_t i = 0; i < n; i++) {
		const mr_delivery *d = mr_batch_at(b, i);

		ck_assert_ptr_nonnull(d);
		got_copy(&out[i], d);
	}
	ck_assert_ptr_null(mr_batch_at(b, n));
	mr_batch_free(b);
	return n;
}

/* A few long polls that must all come back empty. */
void
expect_nothing(mr_consumer *s, int polls, int wait_ms, const char *why)
{
	for (int i = 0; i < polls; i++) {
		mr_batch          *b = fetch(s, 100, wait_ms);
		const mr_delivery *d = mr_batch_at(b, 0);

		ck_assert_msg(mr_batch_count(b) == 0,
			      "%s: got %zu deliveries, the first %s "
			      "partition %d offset %lld attempt %u",
			      why, mr_batch_count(b), d ? d->id : "?",
			      d ? d->partition : -1,
			      d ? (long long)d->offset : -1LL,
			      d ? d->attempt : 0);
		mr_batch_free(b);
	}
}

int64_t
elapsed_since(int64_t t0)
{
	return mrt_now_ms() - t0;
}

void
quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

/*
 * The group's committed offsets of \p topic's first \p nparts partitions,
 * read from Kafka by a client of its own (OffsetFetch; it does not join
 * the group). offsets[p] gets -1001 when none; meta_len (may be NULL) the
 * size of partition 0's commit metadata. @returns 0 or -1 with errbuf.
 */
int
committed_read(const char *bootstrap, const char *group, const char *topic,
	       int nparts, int64_t *offsets, size_t *meta_len, char *errbuf,
	       size_t errlen)
{
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t              err;
	rd_kafka_t                      *rk;
	char                             es[512];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, es,
			      sizeof(es)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", group, es, sizeof(es)) !=
		RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", es,
			      sizeof(es)) != RD_KAFKA_CONF_OK) {
		snprintf(errbuf, errlen, "conf: %.400s", es);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es))) ==
	    NULL) {
		snprintf(errbuf, errlen, "rd_kafka_new: %.400s", es);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	l = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	err = rd_kafka_committed(rk, l, 10000);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int p = 0; p < nparts; p++) {
			rd_kafka_topic_partition_t *tp = &l->elems[p];

			offsets[tp->partition] = tp->err ? -1001 : tp->offset;
			if (tp->partition == 0 && meta_len != NULL)
				*meta_len = tp->metadata_size;
		}
	} else {
		snprintf(errbuf, errlen, "rd_kafka_committed: %s",
			 rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* Wait (bounded) until the group's committed offsets are \p want. */
void
committed_wait(const struct mrt_daemon *d, const char *group,
	       const char *topic, int nparts, const int64_t *want)
{
	int64_t got[64], t0 = mrt_now_ms();
	char    err[512] = "", seen[512] = "";
	bool    same     = false;

	ck_assert_int_le(nparts, 64);
	while (!same && elapsed_since(t0) < 30000) {
		size_t off = 0;

		for (int p = 0; p < nparts; p++)
			got[p] = -1001;
		if (committed_read(d->bootstrap, group, topic, nparts, got,
				   NULL, err, sizeof(err)) == 0) {
			same = true;
			for (int p = 0; p < nparts; p++) {
				same = same && got[p] == want[p];
				off += (size_t)snprintf(
				    seen + off, sizeof(seen) - off,
				    " p%d=%lld/%lld", p, (long long)got[p],
				    (long long)want[p]);
				if (off >= sizeof(seen))
					off = sizeof(seen) - 1;
			}
		}
		if (!same)
			mrt_sleep_ms(250);
	}
	ck_assert_msg(same,
		      "group %s: committed offsets (got/expected) did not "
		      "reach the acked ends within 30 s:%s %s",
		      group, seen, err);
}
