#include "common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint8_t *bench__pool;

int64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double
bench_cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void
bench_pool_init(size_t size, const char *prog)
{
	uint64_t x = (uint64_t)bench_now_ns() | 1;
	size_t   n = size + BENCH_SPREAD;

	if ((bench__pool = malloc(n)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		// xorshift64: random enough that nothing compresses it.
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bench__pool[i] = (uint8_t)(x >> 24);
	}
}

void
bench_pool_free(void)
{
	free(bench__pool);
	bench__pool = NULL;
}

const void *
bench_payload(long i)
{
	return bench__pool + (size_t)(i * 61) % BENCH_SPREAD;
}

double
bench_rate(const struct bench_result *r)
{
	return r->done && r->secs > 0 ? (double)r->msgs / r->secs : 0;
}

void
bench_row(const char *name, int width, const struct bench_result *r,
	  size_t size, double ref, const char *refname)
{
	double rate = bench_rate(r);

	if (!r->done) {
		printf("%-*s  %s\n", width, name,
		       "not measured (see errors above)");
		return;
	}
	printf("%-*s %8ld %6ld %8.3f %11.0f %8.2f %6.2f", width, name, r->msgs,
	       r->failed, r->secs, rate, rate * (double)size / 1e6,
	       r->cpu_secs);
	if (ref > 0)
		printf(" %6.3f  %s", rate / ref, refname);
	printf("\n");
}

void
bench_json_result(const char *name, const struct bench_result *r,
		  size_t size, double ref, const char *refname,
		  const struct bench_result *runs, int nruns)
{
	double rate = bench_rate(r);

	printf(",\"%s\":{\"done\":%s,\"msgs\":%ld,\"failed\":%ld,"
	       "\"redelivered\":%ld,\"secs\":%.4f,\"msgs_per_s\":%.1f,"
	       "\"mb_per_s\":%.3f,\"cpu_s\":%.3f",
	       name, r->done ? "true" : "false", r->msgs, r->failed,
	       r->redelivered, r->secs, rate, rate * (double)size / 1e6,
	       r->cpu_secs);
	if (r->peak > 0)
		printf(",\"peak_concurrency\":%d", r->peak);
	if (r->fetches > 0)
		printf(",\"fetches\":%ld,\"empty_fetches\":%ld,"
		       "\"mean_batch\":%.1f",
		       r->fetches, r->empty,
		       (double)r->msgs / (double)r->fetches);
	if (ref > 0)
		printf(",\"%s\":%.4f", refname, rate / ref);
	if (runs != NULL) {
		printf(",\"runs_msgs_per_s\":[");
		for (int i = 0; i < nruns; i++)
			printf("%s%.1f", i ? "," : "", bench_rate(&runs[i]));
		printf("],\"runs_cpu_us\":[");
		for (int i = 0; i < nruns; i++) {
			const struct bench_result *x = &runs[i];
			double n = x->msgs > 0 ? (double)x->msgs : 0;

			printf("%s[%.3f,%.3f,%.3f]", i ? "," : "",
			       n > 0 ? x->cpu_secs * 1e6 / n : -1.0,
			       n > 0 && x->mrd_cpu_secs >= 0
				   ? x->mrd_cpu_secs * 1e6 / n
				   : -1.0,
			       n > 0 && x->kafka_cpu_secs >= 0
				   ? x->kafka_cpu_secs * 1e6 / n
				   : -1.0);
		}
		// Kafka's JIT compilers, a part of its CPU above: a broker
		// minutes old still compiles (docs/benchmarks/consume.md).
		printf("],\"runs_kafka_jit_us\":[");
		for (int i = 0; i < nruns; i++) {
			const struct bench_result *x = &runs[i];

			printf("%s%.3f", i ? "," : "",
			       x->msgs > 0 && x->kafka_jit_secs >= 0
				   ? x->kafka_jit_secs * 1e6 / (double)x->msgs
				   : -1.0);
		}
		printf("],\"runs_mrd_hwm_kb\":[");
		for (int i = 0; i < nruns; i++)
			printf("%s%ld", i ? "," : "", runs[i].mrd_hwm_kb);
		printf("]");
	}
	printf("}");
}

const struct bench_result *
bench_median(const struct bench_result *runs, int n)
{
	int idx[BENCH_RUNS_MAX];

	for (int i = 0; i < n; i++)
		idx[i] = i;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && bench_rate(&runs[idx[j]]) <
					     bench_rate(&runs[idx[j - 1]]);
		     j--) {
			int t      = idx[j];
			idx[j]     = idx[j - 1];
			idx[j - 1] = t;
		}
	return &runs[idx[(n - 1) / 2]];
}

/* The utime + stime clock ticks of the task whose stat file is \p path,
 * and its command in \p comm; -1 when it cannot be read. */
static long
bench__stat_ticks(const char *path, char *comm, size_t comm_size)
{
	char          buf[1024], *p, *q;
	unsigned long ut, st;
	FILE         *f;
	size_t        n;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n      = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	// The command may hold spaces and parentheses: fields 14 and 15
	// (utime, stime) count from after the last ") ".
	if ((q = strchr(buf, '(')) == NULL || (p = strrchr(buf, ')')) == NULL ||
	    p < q ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &ut, &st) != 2)
		return -1;
	if (comm != NULL) {
		n = (size_t)(p - q - 1) < comm_size - 1 ? (size_t)(p - q - 1)
							: comm_size - 1;
		memcpy(comm, q + 1, n);
		comm[n] = '\0';
	}
	return (long)(ut + st);
}

double
bench_proc_cpu(int pid)
{
	char path[64];
	long t;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	t = bench__stat_ticks(path, NULL, 0);
	return t < 0 ? -1 : (double)t / (double)sysconf(_SC_CLK_TCK);
}

double
bench_proc_jit_cpu(int pid)
{
	char           path[300], comm[64];
	DIR           *d;
	struct dirent *e;
	long           sum = 0, t;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	// A JVM names them "C1 CompilerThre" and "C2 CompilerThre" (the
	// kernel keeps 15 bytes of a thread's name).
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid,
			 e->d_name);
		if ((t = bench__stat_ticks(path, comm, sizeof(comm))) > 0 &&
		    (strncmp(comm, "C1 Compiler", 11) == 0 ||
		     strncmp(comm, "C2 Compiler", 11) == 0))
			sum += t;
	}
	closedir(d);
	return (double)sum / (double)sysconf(_SC_CLK_TCK);
}

void
bench_proc_hwm_reset(int pid)
{
	char  path[64];
	FILE *f;

	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	// "5" resets the peak RSS only (proc(5)); the process does not notice.
	if ((f = fopen(path, "w")) == NULL)
		return;
	fputs("5", f);
	fclose(f);
}

long
bench_proc_hwm_kb(int pid)
{
	char  path[64], line[256];
	long  kb = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void
bench_procs_start(int mrd_pid, int kafka_pid, struct bench_result *r)
{
	// The readings at the start, until bench_procs_end subtracts them.
	bench_proc_hwm_reset(mrd_pid);
	r->mrd_cpu_secs   = bench_proc_cpu(mrd_pid);
	r->kafka_cpu_secs = bench_proc_cpu(kafka_pid);
	r->kafka_jit_secs = bench_proc_jit_cpu(kafka_pid);
}

void
bench_procs_end(int mrd_pid, int kafka_pid, struct bench_result *r)
{
	double m = bench_proc_cpu(mrd_pid), k = bench_proc_cpu(kafka_pid);
	double j = bench_proc_jit_cpu(kafka_pid);

	r->mrd_cpu_secs   = m >= 0 && r->mrd_cpu_secs >= 0
				? m - r->mrd_cpu_secs
				: -1;
	r->kafka_cpu_secs = k >= 0 && r->kafka_cpu_secs >= 0
				? k - r->kafka_cpu_secs
				: -1;
	r->kafka_jit_secs = j >= 0 && r->kafka_jit_secs >= 0
				? j - r->kafka_jit_secs
				: -1;
	r->mrd_hwm_kb     = bench_proc_hwm_kb(mrd_pid);
}

int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
bench_pct(const double *v, long n, double p)
{
	long k = (long)(p * (double)n + 0.999999) - 1;

	if (n <= 0)
		return 0;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return v[k];
}
