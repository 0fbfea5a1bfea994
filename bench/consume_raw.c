/*
 * consume_bench's raw librdkafka side: the preload of both topics with a
 * raw producer, and the raw case, a librdkafka consumer doing the
 * at-least-once work mailroomd does (consume_bench.c says what is timed).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "consume_bench.h"

/* ---- preload ---------------------------------------------------------- */

struct preload {
	atomic_long ok;
	atomic_long failed;
	atomic_int  have_err;
	char        err[BENCH_ERR_MAX];
};

static void
preload__dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct preload *p = opaque;

	(void)rk;
	if (m->err == 0) {
		atomic_fetch_add(&p->ok, 1);
		return;
	}
	if (atomic_exchange(&p->have_err, 1) == 0)
		snprintf(p->err, sizeof(p->err), "%s",
			 rd_kafka_err2str(m->err));
	atomic_fetch_add(&p->failed, 1);
}

static int
bench__create_topic(mr_client *c, const char *topic, int partitions)
{
	char  req[512], *rep = NULL;
	int   rc;
	bool  ok;

	snprintf(req, sizeof(req),
		 "{\"op\":\"topics.create\",\"topic\":\"%s\","
		 "\"partitions\":%d,\"replication\":1}",
		 topic, partitions);
	if ((rc = mr_admin(c, req, &rep)) != MR_OK) {
		fprintf(stderr, "consume_bench: topics.create %s: %s: %s\n",
			topic, mr_err_name(rc), mr_client_last_error());
		return -1;
	}
	ok = strstr(rep, "\"ok\":true") != NULL;
	if (!ok)
		fprintf(stderr, "consume_bench: topics.create %s: %s\n", topic,
			rep);
	free(rep);
	return ok ? 0 : -1;
}

/* Produce \p n messages keyed key-<i % keys> and flush. */
static int
bench__produce(rd_kafka_t *rk, struct preload *p, const char *topic, long n,
	       int keys, size_t size)
{
	long base = atomic_load(&p->ok) + atomic_load(&p->failed);

	for (long i = 0; i < n; i++) {
		char                key[32];
		int                 kl;
		rd_kafka_resp_err_t err;

		kl = snprintf(key, sizeof(key), "key-%ld", i % keys);
		while ((err = rd_kafka_producev(
			    rk, RD_KAFKA_V_TOPIC(topic),
			    RD_KAFKA_V_KEY(key, (size_t)kl),
			    RD_KAFKA_V_VALUE((void *)bench_payload(i), size),
			    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (err != 0) {
			fprintf(stderr, "consume_bench: preload %s: %s\n",
				topic, rd_kafka_err2str(err));
			return -1;
		}
		rd_kafka_poll(rk, 0);
	}
	if (rd_kafka_flush(rk, 120000) != 0 ||
	    atomic_load(&p->ok) + atomic_load(&p->failed) - base != n ||
	    atomic_load(&p->failed) != 0) {
		fprintf(stderr,
			"consume_bench: preload %s: %ld of %ld delivered%s%s\n",
			topic, atomic_load(&p->ok), n,
			p->have_err ? ": " : "", p->have_err ? p->err : "");
		return -1;
	}
	return 0;
}

/* Make the topics and fill them; nothing is timed. */
int
bench__preload(const struct bench_opts *o, mr_client *c)
{
	static const char *fixed[][2] = {
	    {"client.id", "consume_bench-preload"},
	    {"enable.idempotence", "true"},
	    {"acks", "all"},
	    {"partitioner", "murmur2_random"},
	    {"linger.ms", "5"},
	    {"message.max.bytes", "16777216"}, /* payloads up to 1 MiB */
	    {"queue.buffering.max.messages", "0"},
	    {"queue.buffering.max.kbytes", "2097151"},
	    {"topic.metadata.propagation.max.ms", "5000"},
	};
	struct preload   p;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t      *rk;
	char             errstr[512];
	int              rc = 0;

	memset(&p, 0, sizeof(p));
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto fail;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr,
				      sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, preload__dr);
	rd_kafka_conf_set_opaque(conf, &p);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
			       sizeof(errstr))) == NULL)
		goto fail;
	if (o->cases & ~CASE_SLOW)
		rc = bench__create_topic(c, bench__data_topic, o->partitions) ||
		     bench__produce(rk, &p, bench__data_topic, o->count,
				    o->keys, o->size);
	if (rc == 0 && (o->cases & CASE_SLOW))
		rc = bench__create_topic(c, bench__slow_topic, 1) ||
		     bench__produce(rk, &p, bench__slow_topic, o->slow_count,
				    o->slow_keys, o->size);
	rd_kafka_destroy(rk);
	return rc ? -1 : 0;
fail:
	rd_kafka_conf_destroy(conf);
	fprintf(stderr, "consume_bench: preload producer: %s\n", errstr);
	return -1;
}

/* ---- raw librdkafka --------------------------------------------------- */

/* A consumer with mailroomd's group settings (consumers/group.c). */
static rd_kafka_t *
raw__open(const struct bench_opts *o, const char *group)
{
	static const char *fixed[][2] = {
	    {"client.id", "consume_bench"},
	    {"enable.auto.commit", "false"},
	    {"enable.auto.offset.store", "false"},
	    {"auto.offset.reset", "earliest"},
	    {"partition.assignment.strategy", "range"},
	    {"queued.max.messages.kbytes", "16384"},
	};
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_t                      *rk;
	rd_kafka_resp_err_t              err;
	char                             errstr[512];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto fail;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr,
				      sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto fail;
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
			       sizeof(errstr))) == NULL)
		goto fail;
	rd_kafka_poll_set_consumer(rk);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, bench__data_topic,
					  RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err != 0) {
		fprintf(stderr, "consume_bench: raw subscribe: %s\n",
			rd_kafka_err2str(err));
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
fail:
	rd_kafka_conf_destroy(conf);
	fprintf(stderr, "consume_bench: raw consumer: %s\n", errstr);
	return NULL;
}

/* One raw consumer (one group) of the raw case. */
struct raw_group {
	const struct bench_opts *o;
	struct bench_result     *res; /* the case's: CPU from the first message */
	atomic_int              *started;
	long                     got;
	int64_t                  t0, t1;
	double                   c1; /* this process's CPU at the end */
	char                     group[300];
};

static void *
raw__group(void *arg)
{
	struct raw_group        *rg = arg;
	const struct bench_opts *o  = rg->o;
	rd_kafka_t              *rk;
	long                     got = 0, errs = 0;
	size_t  sum = 0; /* the zero-cost handler: payload bytes */
	int64_t now, next_commit = 0, deadline;

	if ((rk = raw__open(o, rg->group)) == NULL)
		return NULL;
	deadline = bench_now_ns() + (int64_t)BENCH_FIRST_MS * 1000000;
	while (got < o->count) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (m == NULL) {
			if (bench_now_ns() > deadline)
				break;
			continue;
		}
		if (m->err != 0) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
			    errs++ == 0)
				fprintf(stderr, "consume_bench: raw: %s\n",
					rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		if (got++ == 0) {
			// The case's clocks start at the first message of
			// any group.
			if (atomic_exchange(rg->started, 1) == 0) {
				rg->res->cpu_secs = bench_cpu_secs();
				bench_procs_start(o->mrd_pid, o->kafka_pid,
						  rg->res);
			}
			rg->t0 = bench_now_ns();
		}
		sum += m->len;
		rd_kafka_offset_store(m->rkt, m->partition, m->offset);
		rd_kafka_message_destroy(m);
		// The clock, every 256 messages: a commit every 500 ms and
		// the idle limit.
		if ((got & 255) == 0 || got == o->count) {
			now    = bench_now_ns();
			rg->t1 = now;
			if (now >= next_commit) {
				rd_kafka_commit(rk, NULL, 1);
				next_commit = now + BENCH_COMMIT_MS * 1000000LL;
			}
			deadline = now + (int64_t)BENCH_IDLE_MS * 1000000;
		}
	}
	if (got > 0 && rg->t1 == 0)
		rg->t1 = bench_now_ns();
	rg->c1  = bench_cpu_secs();
	rg->got = got;
	if (got < o->count)
		fprintf(stderr,
			"consume_bench: raw: %ld of %ld messages, then "
			"nothing for %d s\n",
			got, o->count, (got ? BENCH_IDLE_MS : BENCH_FIRST_MS) /
					   1000);
	if (sum == 0 && got > 0)
		fprintf(stderr, "consume_bench: raw: empty payloads?\n");
	rd_kafka_commit(rk, NULL, 0);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return NULL;
}

void
bench__raw(const struct bench_opts *o, struct bench_result *res)
{
	struct raw_group g[BENCH_GROUPS_MAX];
	pthread_t        t[BENCH_GROUPS_MAX];
	atomic_int       started = 0;
	int              ng      = 0;
	int64_t          t0 = 0, t1 = 0;
	double           c1 = 0;

	memset(res, 0, sizeof(*res));
	memset(g, 0, sizeof(g));
	for (int i = 0; i < o->groups; i++) {
		g[i] = (struct raw_group){.o = o, .res = res,
					  .started = &started};
		bench__group(o, "raw", g[i].group, sizeof(g[i].group));
	}
	if (o->groups == 1) {
		raw__group(&g[0]);
		ng = 1;
	} else {
		while (ng < o->groups &&
		       pthread_create(&t[ng], NULL, raw__group, &g[ng]) == 0)
			ng++;
		for (int i = 0; i < ng; i++)
			pthread_join(t[i], NULL);
	}
	// Every group's first message to the last group's last; the CPU of
	// this process up to the last group's end (the CPU is read before
	// the consumers close).
	for (int i = 0; i < ng; i++) {
		res->msgs += g[i].got;
		if (g[i].got > 0 && (t0 == 0 || g[i].t0 < t0))
			t0 = g[i].t0;
		if (g[i].t1 > t1)
			t1 = g[i].t1;
		if (g[i].c1 > c1)
			c1 = g[i].c1;
	}
	if (!atomic_load(&started))
		return;
	bench_procs_end(o->mrd_pid, o->kafka_pid, res);
	res->secs     = (double)(t1 - t0) / 1e9;
	res->cpu_secs = c1 - res->cpu_secs;
	res->failed   = o->count * o->groups - res->msgs;
	res->done     = res->msgs > 0;
}
