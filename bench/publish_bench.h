/*
 * What the parts of publish_bench share (private to bench/): the options,
 * the keys and the time stamp of the run, topic names and the latency
 * summary. publish_bench.c has the options, the report and main;
 * publish_mr.c the mailroom cases; publish_raw.c the raw librdkafka
 * producer's cases.
 *
 * Thread safety: called from the main thread; the keys are written once,
 * before any case starts.
 */
#ifndef MRB_PUBLISH_BENCH_H
#define MRB_PUBLISH_BENCH_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"
#include "mailroom/client.h"

#define BENCH_NAME_W 34 /* the table's first column */
#define BENCH_KEYS 1000
#define BENCH_SYNC_MAX 20000 /* messages in the sync case */
/* messages of the pipelined case with the client's coalescing off: one
 * frame per message, about 2,000 msgs/s */
#define BENCH_PIPE_OFF_MAX 10000
#define BENCH_WARMUP 200 /* latency samples dropped before measuring */
#define BENCH_WAIT_MS 300000
#define BENCH_ERR_MAX 512

enum bench_mode { BENCH_MAILROOM = 1, BENCH_RAW = 2, BENCH_BOTH = 3 };

struct bench_opts {
	const char *brokers;
	const char *url;
	const char *topic;
	long        count;
	size_t      size;
	int         batch;
	int         inflight;
	int         mode;
	int         linger_ms;
	int         samples;
	int         repeat;
	int         timeout_ms;
	int         linger_us;  /* the client's linger_us (0: its default) */
	int         mrd_pid;    /* mailroomd, for its CPU per case; 0: none */
	int         kafka_pid;  /* Kafka, for its CPU per case; 0: none */
	int         partitions; /* > 0: topics made through mailroomd */
	bool        raw_headers;
	bool        throughput;
	bool        unbatched; /* the pipelined and sync cases */
	double      target;    /* batched / raw, for the target line */
};

struct bench_latency {
	int    n;
	int    failed;
	double p50, p90, p99, max, mean;
};

/* The run's keys ("key-<i>"), its start (in topic names) and its ce_time,
 * set by publish_bench.c before the first case. */
extern char      bench__keys[BENCH_KEYS][16];
extern size_t    bench__key_len[BENCH_KEYS];
extern long long bench__stamp;
extern char      bench__ce_time[32];

/** @brief A topic of its own for case \p name in \p out. */
void bench__topic(const struct bench_opts *o, const char *name, char *out,
		  size_t n);

/** @brief Sort the \p n latencies in \p lat and summarise them in \p l. */
void bench__summarise(double *lat, int n, struct bench_latency *l);

/* publish_mr.c */

/** @brief \p n messages in calls of \p k (mr_publish_async), \p inflight
 *         requests in flight, the client's linger \p linger_us. */
void bench__mr_async(const struct bench_opts *o, const char *name, long n,
		     int k, int inflight, int linger_us,
		     struct bench_result *res);

/** @brief mr_publish, one message at a time, after \p warmup dropped;
 *         with \p lat, each one's latency in ms. */
void bench__mr_sync(const struct bench_opts *o, const char *name, long n,
		    int warmup, double *lat, struct bench_result *res);

/** @brief With o->partitions > 0, make \p topic with mailroomd's
 *         topics.create (which gives it a max.message.bytes that holds
 *         the producer's largest record). @returns 0, or -1 having said
 *         why on stderr. */
int bench__make_topic(const struct bench_opts *o, const char *topic);

/* publish_raw.c */

/** @brief The raw case: o->count messages produced as fast as librdkafka
 *         takes them, timed to the last delivery report. */
void bench__raw_throughput(const struct bench_opts *o,
			   struct bench_result *res);

/** @brief The raw latency case: one message at a time, produce to delivery
 *         report; fills \p lat (o->samples) and \p l. */
void bench__raw_latency(const struct bench_opts *o, double *lat,
			struct bench_latency *l);

#endif
