/*
 * publish_bench's raw librdkafka side: a producer with mailroomd's own
 * settings, its throughput and its latency cases (publish_bench.c says what
 * is timed).
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

#include "publish_bench.h"

/* ---- raw librdkafka --------------------------------------------------- */

struct raw {
	rd_kafka_t  *rk;
	pthread_t    poller;
	bool         polling;
	atomic_int   stop;
	atomic_long  ok;
	atomic_long  failed;
	atomic_llong last_ns;
	atomic_int   have_err;
	char         err[BENCH_ERR_MAX];
};

static void
raw__dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct raw *r = opaque;

	if (m->err != 0) {
		if (atomic_exchange(&r->have_err, 1) == 0)
			snprintf(r->err, sizeof(r->err), "%s: %s",
				 rd_kafka_err2name(m->err),
				 rd_kafka_err2str(m->err));
		atomic_fetch_add(&r->failed, 1);
	} else {
		atomic_fetch_add(&r->ok, 1);
	}
	atomic_store(&r->last_ns, bench_now_ns());
}

static void *
raw__poll(void *arg)
{
	struct raw *r = arg;

	while (!atomic_load(&r->stop))
		rd_kafka_poll(r->rk, 100);
	return NULL;
}

/* A producer with mailroomd's settings (broker/server.c, bridge/producer.c).
 * With \p poller a thread serves its delivery reports. */
static int
raw__open(struct raw *r, const struct bench_opts *o, bool poller)
{
	static const char *fixed[][2] = {
	    {"client.id", "publish_bench"},
	    {"enable.idempotence", "true"},
	    {"acks", "all"},
	    {"partitioner", "murmur2_random"},
	    {"message.timeout.ms", "30000"},
	    {"message.max.bytes", "16777216"},
	    {"queue.buffering.max.messages", "0"},
	    {"queue.buffering.max.kbytes", "2097151"},
	    {"topic.metadata.propagation.max.ms", "5000"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             errstr[512], linger[32];

	memset(r, 0, sizeof(*r));
	snprintf(linger, sizeof(linger), "%d", o->linger_ms);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "linger.ms", linger, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto fail;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr,
				      sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, raw__dr);
	rd_kafka_conf_set_opaque(conf, r);
	r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (r->rk == NULL)
		goto fail;
	if (poller) {
		if (pthread_create(&r->poller, NULL, raw__poll, r) != 0) {
			rd_kafka_destroy(r->rk);
			fprintf(stderr,
				"publish_bench: cannot start a thread\n");
			return -1;
		}
		r->polling = true;
	}
	return 0;
fail:
	rd_kafka_conf_destroy(conf);
	fprintf(stderr, "publish_bench: raw producer: %s\n", errstr);
	return -1;
}

static void
raw__close(struct raw *r)
{
	if (r->polling) {
		atomic_store(&r->stop, 1);
		pthread_join(r->poller, NULL);
	}
	rd_kafka_flush(r->rk, 10000);
	rd_kafka_destroy(r->rk);
}

/* The headers mailroomd writes (bridge/envelope.c), for --raw-headers. */
static rd_kafka_headers_t *
raw__headers(long i)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(5);
	char                id[48];

	snprintf(id, sizeof(id), "%08llx-0bec-7000-8000-%012lx",
		 bench__stamp & 0xffffffffLL, i & 0xffffffffffffL);
	rd_kafka_header_add(h, "ce_specversion", -1, "1.0", 3);
	rd_kafka_header_add(h, "ce_id", -1, id, -1);
	rd_kafka_header_add(h, "ce_source", -1, "mailroomd", -1);
	rd_kafka_header_add(h, "ce_type", -1, "mailroom.message", -1);
	rd_kafka_header_add(h, "ce_time", -1, bench__ce_time, -1);
	return h;
}

static rd_kafka_resp_err_t
raw__produce(struct raw *r, const char *topic, long i, size_t size,
	     bool with_headers)
{
	rd_kafka_headers_t *h = with_headers ? raw__headers(i) : NULL;
	rd_kafka_resp_err_t err;
	int                 k = (int)(i % BENCH_KEYS);

	for (;;) {
		err = rd_kafka_producev(
		    r->rk, RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(bench__keys[k], bench__key_len[k]),
		    RD_KAFKA_V_VALUE((void *)bench_payload(i), size),
		    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		if (r->polling)
			usleep(200);
		else
			rd_kafka_poll(r->rk, 10);
	}
	if (err != 0 && h != NULL)
		rd_kafka_headers_destroy(h);
	return err;
}

/* Wait until \p target reports came. */
static bool
raw__wait(struct raw *r, long target, int timeout_ms)
{
	int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;

	while (atomic_load(&r->ok) + atomic_load(&r->failed) < target) {
		if (bench_now_ns() > deadline)
			return false;
		if (r->polling)
			usleep(1000);
		else
			rd_kafka_poll(r->rk, 100);
	}
	return true;
}

void
bench__raw_throughput(const struct bench_opts *o, struct bench_result *res)
{
	struct raw r;
	char       topic[300];
	long       refused = 0, ok0, failed0;
	int64_t    t0;
	double     c0;

	memset(res, 0, sizeof(*res));
	bench__topic(o, "raw", topic, sizeof(topic));
	if (bench__make_topic(o, topic) != 0 || raw__open(&r, o, true) != 0)
		return;
	if (raw__produce(&r, topic, 0, o->size, o->raw_headers) != 0 ||
	    !raw__wait(&r, 1, 60000) || atomic_load(&r.ok) != 1) {
		fprintf(stderr,
			"publish_bench: raw warm-up to %s failed: %s\n", topic,
			r.have_err ? r.err : "no report in 60 s");
		raw__close(&r);
		return;
	}
	ok0     = atomic_load(&r.ok);
	failed0 = atomic_load(&r.failed);
	bench_procs_start(o->mrd_pid, o->kafka_pid, res);
	c0      = bench_cpu_secs();
	t0      = bench_now_ns();
	for (long i = 0; i < o->count; i++) {
		rd_kafka_resp_err_t err;

		err = raw__produce(&r, topic, i, o->size, o->raw_headers);
		if (err != 0) {
			if (refused++ == 0)
				fprintf(stderr,
					"publish_bench: raw produce: %s\n",
					rd_kafka_err2str(err));
		}
	}
	if (!raw__wait(&r, ok0 + failed0 + o->count - refused, BENCH_WAIT_MS))
		fprintf(stderr,
			"publish_bench: raw: only %ld of %ld reports after "
			"%d s\n",
			atomic_load(&r.ok) + atomic_load(&r.failed) - ok0 -
			    failed0,
			o->count - refused, BENCH_WAIT_MS / 1000);
	res->secs     = (double)(atomic_load(&r.last_ns) - t0) / 1e9;
	res->cpu_secs = bench_cpu_secs() - c0;
	bench_procs_end(o->mrd_pid, o->kafka_pid, res);
	res->msgs     = atomic_load(&r.ok) - ok0;
	res->failed   = o->count - res->msgs;
	res->done     = true;
	if (r.have_err)
		fprintf(stderr, "publish_bench: raw: first failure: %s\n",
			r.err);
	raw__close(&r);
}

void
bench__raw_latency(const struct bench_opts *o, double *lat,
		   struct bench_latency *l)
{
	struct raw r;
	char       topic[300];
	int        n = 0;

	memset(l, 0, sizeof(*l));
	bench__topic(o, "raw-latency", topic, sizeof(topic));
	if (bench__make_topic(o, topic) != 0 || raw__open(&r, o, false) != 0)
		return;
	for (int i = -BENCH_WARMUP; i < o->samples; i++) {
		long    failed = atomic_load(&r.failed);
		long    target = atomic_load(&r.ok) + failed + 1;
		int64_t t0     = bench_now_ns();

		if (raw__produce(&r, topic, i + BENCH_WARMUP, o->size,
				 o->raw_headers) != 0 ||
		    !raw__wait(&r, target, 60000)) {
			fprintf(stderr, "publish_bench: raw latency: no "
					"report in 60 s\n");
			break;
		}
		if (atomic_load(&r.failed) != failed) {
			l->failed++;
			continue;
		}
		if (i >= 0)
			lat[n++] = (double)(bench_now_ns() - t0) / 1e6;
	}
	if (r.have_err)
		fprintf(stderr, "publish_bench: raw latency: first failure: "
				"%s\n",
			r.err);
	raw__close(&r);
	bench__summarise(lat, n, l);
}
