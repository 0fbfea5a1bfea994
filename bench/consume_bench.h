/*
 * What the parts of consume_bench share (private to bench/): the options,
 * the cases, the topics and the helpers that more than one case uses.
 * consume_bench.c has the options, the report and main; consume_mr.c the
 * mailroom cases (unordered, key, partition); consume_raw.c the preload and the raw librdkafka consumer; consume_slow.c
 * the slow handler's case; consume_actors.c mr_consume_run against mirrored
 * actors.
 *
 * Thread safety: called from the main thread, except where a function says
 * otherwise.
 */
#ifndef MRB_CONSUME_BENCH_H
#define MRB_CONSUME_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "mailroom/client.h"
#include "mailroom/consumer.h"

#define BENCH_NAME_W 40 /* the table's first column */
#define BENCH_FIRST_MS 60000   /* group join and first delivery, at most */
#define BENCH_IDLE_MS 30000    /* no progress for this long: give up */
#define BENCH_FETCH_WAIT_MS 200
#define BENCH_COMMIT_MS 500
#define BENCH_FETCHERS_MAX 64
#define BENCH_GROUPS_MAX 64
#define BENCH_ERR_MAX 512
#define BENCH_SLOW_SEED 0x5eedc0ffeeULL

enum {
	CASE_RAW       = 1,
	CASE_UNORDERED = 2,
	CASE_KEY       = 4,
	CASE_PARTITION = 8,
	CASE_SLOW      = 16,
	CASE_ALL       = 31,
	CASE_RUN       = 32, /* mr_consume_run, key mode, zero-cost */
	CASE_MIRROR    = 64, /* mr_mirror, the same */
	CASE_ACTORS    = 96,
};

struct bench_opts {
	const char *brokers;
	const char *url;
	const char *topic;
	long        count;
	long        partition_count;
	size_t      size;
	int         partitions;
	int         keys;
	int         cases;
	int         repeat;
	int         batch;
	int         fetchers;
	int         groups;    /* groups reading the data topic at once */
	int         mrd_pid;   /* mailroomd, for its CPU and RSS; 0: none */
	int         kafka_pid; /* Kafka, for its CPU; 0: none */
	int         timeout_ms;
	long        slow_count;
	int         slow_keys;
	int         slow_inflight;
	int         slow_min_us;
	int         slow_max_us;
	bool        slow_spin;
	bool        async; /* --client async: mr_consume_run_async */
};

/* The two topics of the run, named by consume_bench.c's main. */
extern char bench__data_topic[300];
extern char bench__slow_topic[300];

/** @brief A consumer group of its own for case \p name in \p out. */
void bench__group(const struct bench_opts *o, const char *name, char *out,
		  size_t n);

/** @brief Wait until *v is at least \p target, or no progress for
 *         BENCH_IDLE_MS (BENCH_FIRST_MS before the first), or *stop.
 *  @returns *v. */
long bench__wait_count(atomic_long *v, long target, atomic_int *stop);

/* consume_mr.c */

/** @returns a new client of mailroomd at o->url, or NULL having said why
 *           on stderr. */
mr_client *bench__connect(const struct bench_opts *o);

/** @brief The first \p n messages of the data topic in \p order, with
 *         o->fetchers fetchers per group and o->groups groups at once
 *         (each with a client of its own when more than one; \p c
 *         otherwise); \p group gets the last group's name. */
void bench__mr(const struct bench_opts *o, mr_client *c, const char *name,
	       mr_order order, long n, char *group, size_t group_size,
	       struct bench_result *res);

/** @returns a new subscription (mr_consumer_free it), or NULL having said
 *           why on stderr. */
mr_consumer *bench__subscribe(mr_client *c, const char *group,
			      const char *topic, mr_order order, int credit);

/* consume_raw.c */

/** @brief Create and fill the data and slow topics with a raw producer,
 *         and flush it. @returns 0, or -1 having said why on stderr. */
int bench__preload(const struct bench_opts *o, mr_client *c);

/** @brief The raw case: a librdkafka consumer doing mailroomd's work, one
 *         per group (o->groups, each on a thread of its own when more than
 *         one), all reading the data topic at once. */
void bench__raw(const struct bench_opts *o, struct bench_result *res);

/* consume_slow.c */

/** @returns the microseconds the slow handler spends on \p offset: the
 *           same in every mode. Thread-safe. */
int slow__cost_us(const struct bench_opts *o, int64_t offset);

/** @brief The slow case in mode \p order: mr_consume_run with
 *         o->slow_inflight workers. */
void bench__slow(const struct bench_opts *o, mr_client *c, const char *name,
		 mr_order order, struct bench_result *res);

/** @brief The data topic in key mode with o->slow_inflight workers and a
 *         zero-cost handler: mr_consume_run, or (\p mirror) an mr_mirror
 *         type. */
void bench__actors(const struct bench_opts *o, mr_client *c, bool mirror,
		   struct bench_result *res);

#endif
