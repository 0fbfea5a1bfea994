/*
 * dlq_bench (dlq_bench.c, read it first): its options, one run's figures,
 * and the report and option parsing of dlq_report.c.
 */
#ifndef MRB_DLQ_BENCH_H
#define MRB_DLQ_BENCH_H

#include <stdbool.h>
#include <stdio.h>

#include "consume_bench.h"

#define DLQ_VARIANTS_MAX 3
#define DLQ_READ_MS 30000 /* reading the dead-letter topic back, at most */
#define DLQ_POISON_KEY "key-0"

enum { V_CLEAN, V_POISON, V_BREAKER };

extern const char *const dlq_names[]; /* by variant */

struct dlq_opts {
	struct bench_opts b;
	int               mrd_pid;
	int               attempts;
	int               backoff_initial_ms;
	int               backoff_max_ms;
	double            multiplier;
	double            jitter;
	int               variants[DLQ_VARIANTS_MAX];
	int               nvariants;
};

/* One run's figures. */
struct dlq_result {
	bool   done;
	long   healthy;      /* healthy messages acked, distinct */
	long   dups;         /* healthy acks beyond the first */
	long   redelivered;  /* healthy deliveries with attempt > 1 */
	long   ack_failed;   /* handles mailroomd refused */
	double secs;         /* first FETCH -> last healthy ack */
	double other_secs;   /* the same, partitions without key-0 */
	long   other_msgs;
	double cpu_client;   /* seconds, over secs */
	double cpu_mrd;
	double total_secs;   /* first FETCH -> end of the run */
	double cpu_mrd_total;
	long   poison_nacks;
	long   exhausted;    /* distinct key-0 messages at their last attempt */
	long   dlq_records;
	long   dlq_distinct; /* distinct originals among them, all key-0's */
	long   dlq_stray;    /* records matching no key-0 message */
	long   trips;        /* the breaker's, from mailroomd's status */
	long   quarantined;  /* mailroomd's count for the group */
};

/** @brief The figures of variant \p v's \p n runs (ratios against
 *         \p clean's, if not NULL), on stdout. */
void dlq_report(const struct dlq_opts *o, int v, struct dlq_result *res,
		int n, const struct dlq_result *clean);

void dlq_usage(FILE *f);

/** @returns 0, or -1 for options that are wrong (said on stderr). */
int dlq_parse(int argc, char **argv, struct dlq_opts *o);

#endif
