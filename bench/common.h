/*
 * What publish_bench and consume_bench share (private to bench/): the
 * clocks, the pool of random payload bytes, and one case's result with its
 * table row, its JSON and the median of several runs.
 *
 * Thread safety: bench_payload may be called from any thread once
 * bench_pool_init has returned; the rest from the main thread.
 */
#ifndef MRB_COMMON_H
#define MRB_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_SPREAD 4096 /* payloads start at different pool offsets */
#define BENCH_RUNS_MAX 16

struct bench_result {
	long   msgs;        /* confirmed, consumed or acked */
	long   failed;      /* of the count, not confirmed or consumed */
	long   redelivered; /* consume: deliveries with attempt > 1 */
	double secs;
	double cpu_secs; /* this process's, user + system */
	double mrd_cpu_secs; /* mailroomd's meanwhile; < 0: not known */
	double kafka_cpu_secs; /* Kafka's meanwhile; < 0: not known */
	double kafka_jit_secs; /* of which its JIT compilers'; < 0: not known */
	long   mrd_hwm_kb; /* mailroomd's peak RSS over the run; 0: not known */
	int    peak;     /* consume, slow: handlers running at once, at most */
	long   fetches;  /* consume: FETCHes that returned messages */
	long   empty;    /* consume: FETCHes that returned none */
	bool   done;
};

/** @returns CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/** @returns the CPU seconds (user + system) this process has used. */
double bench_cpu_secs(void);

/** @returns process \p pid's CPU seconds (user + system, /proc/PID/stat),
 *           or -1 when it cannot be read (or \p pid is not positive). */
double bench_proc_cpu(int pid);

/** @returns the CPU seconds of process \p pid's JIT compiler threads (a
 *           JVM's "C1 CompilerThread" and "C2 CompilerThread"), or -1 when
 *           they cannot be read. */
double bench_proc_jit_cpu(int pid);

/** @brief Reset process \p pid's peak RSS (VmHWM) to its RSS now
 *         (/proc/PID/clear_refs); nothing when \p pid is not positive. */
void bench_proc_hwm_reset(int pid);

/** @returns process \p pid's peak RSS in KiB (VmHWM in /proc/PID/status),
 *           or 0 when it cannot be read. */
long bench_proc_hwm_kb(int pid);

/** @brief Start \p r's measures of mailroomd's and Kafka's CPU (by their
 *         pids; not positive: not measured) and reset mailroomd's peak
 *         RSS; bench_procs_end ends them. Thread-safe. */
void bench_procs_start(int mrd_pid, int kafka_pid, struct bench_result *r);

/** @brief Set \p r's mailroomd and Kafka CPU seconds since
 *         bench_procs_start (-1 when not known), the part of Kafka's that
 *         its JIT compilers used, and mailroomd's peak RSS. */
void bench_procs_end(int mrd_pid, int kafka_pid, struct bench_result *r);

/** @brief qsort's comparison of doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

/** @returns the nearest-rank \p p percentile of \p n sorted values (0 for
 *           none). */
double bench_pct(const double *v, long n, double p);

/** @brief Fill the pool with \p size + BENCH_SPREAD random bytes (that
 *         nothing compresses); exits with a message naming \p prog if out
 *         of memory. */
void bench_pool_init(size_t size, const char *prog);

/** @brief Free the pool. */
void bench_pool_free(void);

/** @returns the payload of message \p i: the pool at an offset of its own. */
const void *bench_payload(long i);

/** @returns messages per second, 0 when not measured. */
double bench_rate(const struct bench_result *r);

/** @brief A table row: name (\p width columns), messages, failed, seconds,
 *         msgs/s, MB/s, CPU s, and the ratio to \p ref if > 0. */
void bench_row(const char *name, int width, const struct bench_result *r,
	       size_t size, double ref, const char *refname);

/** @brief `,"name":{...}` for the last line's JSON object; \p runs (or
 *         NULL) adds every run's rate, and its CPU µs per message of this
 *         process, mailroomd and Kafka (-1: not known) and mailroomd's
 *         peak RSS where known. */
void bench_json_result(const char *name, const struct bench_result *r,
		       size_t size, double ref, const char *refname,
		       const struct bench_result *runs, int nruns);

/** @returns the run whose rate is the median (the lower one of an even
 *           count); \p n <= BENCH_RUNS_MAX. */
const struct bench_result *bench_median(const struct bench_result *runs,
					int n);

#endif
