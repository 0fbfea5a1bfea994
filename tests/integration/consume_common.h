/*
 * What consume_api_test.c and consume_settle_test.c share: publishing,
 * subscribing, fetching and settling with assertions, a delivery's copy
 * (struct got), and the group's commits read back from Kafka.
 *
 * Thread safety: the Check assertions of a case's thread; quiet_log is
 * librdkafka's log callback (any thread).
 */
#ifndef MRT_CONSUME_COMMON_H
#define MRT_CONSUME_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "integration/harness.h"
#include "mailroom/mailroom.h"

#define PARTITIONS 4
#define LOOP_MS 60000 /* the bound of a "fetch until" loop */
#define WAIT_MS 2000  /* a fetch's long poll */

/* What a test keeps of a delivery after its batch is freed. */
struct got {
	uint64_t handle;
	int32_t  partition;
	int64_t  offset;
	uint32_t attempt;
	bool     redelivery;
	char     id[MR_ID_MAX + 1];
	char     payload[64]; /* the first bytes, NUL-terminated */
};

/* Publish \p n messages in requests of at most 1000; every one must be
 * acked. acks (n of them) may be NULL. */
void publish_all(mr_client *c, const mr_message *m, size_t n, mr_ack *acks);

/* n messages to \p topic, key "KEYFMT" % (i % nkeys) (nkeys 0: keyless),
 * payload "<key>:<i>". */
void publish_simple(mr_client *c, const char *topic, size_t n, int nkeys,
		    mr_ack *acks);

mr_consumer *subscribe(mr_client *c, const char *group, const char *topic,
		       mr_order order, int deadline_ms, int credit);

mr_batch *fetch(mr_consumer *s, size_t max, int wait_ms);

/* Settle; asserts the requests went through. @returns the failed count. */
size_t ack(mr_consumer *s, const uint64_t *h, size_t n);

size_t ack1(mr_consumer *s, uint64_t h);

void got_copy(struct got *g, const mr_delivery *d);

/* One fetch, copied into out (at most cap). @returns how many. */
size_t fetch_got(mr_consumer *s, size_t max, int wait_ms, struct got *out,
		 size_t cap);

/* A few long polls that must all come back empty. */
void expect_nothing(mr_consumer *s, int polls, int wait_ms, const char *why);

int64_t elapsed_since(int64_t t0);

void quiet_log(const rd_kafka_t *rk, int level, const char *fac,
	       const char *buf);

/*
 * The group's committed offsets of \p topic's first \p nparts partitions,
 * read from Kafka by a client of its own (OffsetFetch; it does not join
 * the group). offsets[p] gets -1001 when none; meta_len (may be NULL) the
 * size of partition 0's commit metadata. @returns 0 or -1 with errbuf.
 */
int committed_read(const char *bootstrap, const char *group, const char *topic,
		   int nparts, int64_t *offsets, size_t *meta_len, char *errbuf,
		   size_t errlen);

/* Wait (bounded) until the group's committed offsets are \p want. */
void committed_wait(const struct mrt_daemon *d, const char *group,
		    const char *topic, int nparts, const int64_t *want);

#endif
