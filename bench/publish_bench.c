/*
 * publish_bench: mailroom's publish path against a raw librdkafka producer
 * that has mailroomd's own settings, to the same Kafka, in one run
 * (docs/benchmarks/publish.md).
 *
 * Cases, each on a topic of its own (the --topic prefix, the start time, a
 * sequence number and the case's name):
 *
 *   raw        librdkafka, N messages produced as fast as it takes them, a
 *              poll thread serving delivery reports; timed from the first
 *              produce to the last report.
 *   batched    the C client, N messages in requests of K, F requests in
 *              flight (mr_publish_async); first send to the last ack.
 *   pipelined  the C client, one message per mr_publish_async call, F
 *              requests in flight: the client coalesces the calls into
 *              frames (its linger, --linger-us); again with coalescing off
 *              (one frame per call, at most 10,000 messages).
 *   sync       mr_publish, one message at a time.
 *   latency    one message at a time: publish to ack through mailroom,
 *              produce to delivery report through raw librdkafka, with the
 *              same linger.ms.
 *
 * Payloads are S random bytes; keys are "key-<i % 1000>". The client gives
 * every message a UUIDv7 and mailroomd writes the CloudEvents headers; the
 * raw producer writes no headers unless --raw-headers gives it the same.
 * Each case is warmed up with one message (topic creation, producer id)
 * before its clock starts.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "publish_bench.h"

char      bench__keys[BENCH_KEYS][16];
size_t    bench__key_len[BENCH_KEYS];
long long bench__stamp;
char      bench__ce_time[32];

static void
bench__init_data(size_t size)
{
	time_t    now;
	struct tm tm;

	bench_pool_init(size, "publish_bench");
	for (int i = 0; i < BENCH_KEYS; i++)
		bench__key_len[i] = (size_t)snprintf(
		    bench__keys[i], sizeof(bench__keys[i]), "key-%d", i);
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(bench__ce_time, sizeof(bench__ce_time),
		 "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

void
bench__topic(const struct bench_opts *o, const char *name, char *out,
	     size_t n)
{
	static int seq;

	snprintf(out, n, "%s-%lld-%d-%s", o->topic, bench__stamp, seq++, name);
}

void
bench__summarise(double *lat, int n, struct bench_latency *l)
{
	double sum = 0;

	l->n = n;
	if (n == 0)
		return;
	qsort(lat, (size_t)n, sizeof(*lat), bench_cmp_double);
	for (int i = 0; i < n; i++)
		sum += lat[i];
	l->p50  = bench_pct(lat, n, 0.50);
	l->p90  = bench_pct(lat, n, 0.90);
	l->p99  = bench_pct(lat, n, 0.99);
	l->max  = lat[n - 1];
	l->mean = sum / n;
}

/* ---- report ----------------------------------------------------------- */

static void
bench__json_latency(const char *name, const struct bench_latency *l)
{
	printf(",\"%s\":{\"samples\":%d,\"failed\":%d,\"p50_ms\":%.4f,"
	       "\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,"
	       "\"mean_ms\":%.4f}",
	       name, l->n, l->failed, l->p50, l->p90, l->p99, l->max,
	       l->mean);
}

/* One row of the CPU table: µs per acked message. */
static void
bench__cpu_row(const char *name, const struct bench_result *r)
{
	if (!r->done || r->msgs == 0)
		return;
	printf("%-34s %10.2f", name, r->cpu_secs * 1e6 / (double)r->msgs);
	if (r->mrd_cpu_secs >= 0)
		printf(" %10.2f\n", r->mrd_cpu_secs * 1e6 / (double)r->msgs);
	else
		printf(" %10s\n", "-");
}

/* What each mailroom case cost the client (this process) and mailroomd
 * (--mailroomd-pid) per message. */
static void
bench__cpu_table(const struct bench_result *batched,
		 const struct bench_result *pipe,
		 const struct bench_result *pipe_off,
		 const struct bench_result *sync)
{
	printf("\nCPU per message (us)               %10s %10s\n", "client",
	       "mailroomd");
	bench__cpu_row("batched (median run)", batched);
	bench__cpu_row("one per call, coalesced", pipe);
	bench__cpu_row("one per call, one frame each", pipe_off);
	bench__cpu_row("sync", sync);
}

/* ---- main ------------------------------------------------------------- */

static void
bench__usage(FILE *f)
{
	fprintf(f,
		"usage: publish_bench --brokers HOST:PORT --url URL "
		"[options]\n"
		"  --count N        messages per throughput case (1000000)\n"
		"  --size S         payload bytes (100)\n"
		"  --batch K        messages per request, batched case "
		"(1000)\n"
		"  --inflight F     requests in flight (8)\n"
		"  --mode M         mailroom, raw or both (both)\n"
		"  --topic T        topic prefix (mrbench)\n"
		"  --linger-ms L    the raw producer's linger.ms; give "
		"mailroomd\n"
		"                   the same producer.linger_ms (2)\n"
		"  --samples N      latency samples per side, 0: none (5000)\n"
		"  --repeat R       throughput runs, median reported (1)\n"
		"  --timeout-ms T   the client's request timeout (60000)\n"
		"  --linger-us L    the client's linger_us (0: its default; "
		"-1: off)\n"
		"  --raw-headers    give raw records mailroomd's CloudEvents "
		"headers\n"
		"  --no-throughput  latency only\n"
		"  --no-unbatched   batched throughput only (no pipelined, "
		"sync)\n"
		"  --mrd-pid P      mailroomd's pid: its CPU per message in "
		"the batched\n"
		"                   runs (/proc/P/stat)\n"
		"  --target R       the batched / raw ratio to meet (0.8)\n"
		"  --kafka-pid P    Kafka's pid: its CPU per message\n"
		"  --partitions P   make each topic with mailroomd's "
		"topics.create and\n"
		"                   P partitions (0: Kafka makes it on first "
		"use)\n");
}

static int
bench__parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lopts[] = {
	    {"brokers", required_argument, NULL, 'b'},
	    {"url", required_argument, NULL, 'u'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"batch", required_argument, NULL, 'k'},
	    {"inflight", required_argument, NULL, 'f'},
	    {"mode", required_argument, NULL, 'm'},
	    {"topic", required_argument, NULL, 't'},
	    {"linger-ms", required_argument, NULL, 'L'},
	    {"samples", required_argument, NULL, 'S'},
	    {"repeat", required_argument, NULL, 'r'},
	    {"timeout-ms", required_argument, NULL, 'W'},
	    {"linger-us", required_argument, NULL, 'G'},
	    {"mailroomd-pid", required_argument, NULL, 'P'}, // --mrd-pid
	    {"raw-headers", no_argument, NULL, 'H'},
	    {"no-throughput", no_argument, NULL, 'T'},
	    {"no-unbatched", no_argument, NULL, 'U'},
	    {"mrd-pid", required_argument, NULL, 'P'},
	    {"target", required_argument, NULL, 'R'},
	    {"kafka-pid", required_argument, NULL, 'A'},
	    {"partitions", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	*o = (struct bench_opts){
	    .url        = NULL,
	    .topic      = "mrbench",
	    .count      = 1000000,
	    .size       = 100,
	    .batch      = 1000,
	    .inflight   = 8,
	    .mode       = BENCH_BOTH,
	    .linger_ms  = 2,
	    .samples    = 5000,
	    .repeat     = 1,
	    .timeout_ms = 60000,
	    .throughput = true,
	    .unbatched  = true,
	    .target     = 0.8,
	};
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->brokers = optarg;
			break;
		case 'u':
			o->url = optarg;
			break;
		case 'n':
			o->count = atol(optarg);
			break;
		case 's':
			o->size = (size_t)atol(optarg);
			break;
		case 'k':
			o->batch = atoi(optarg);
			break;
		case 'f':
			o->inflight = atoi(optarg);
			break;
		case 't':
			o->topic = optarg;
			break;
		case 'L':
			o->linger_ms = atoi(optarg);
			break;
		case 'S':
			o->samples = atoi(optarg);
			break;
		case 'r':
			o->repeat = atoi(optarg);
			break;
		case 'W':
			o->timeout_ms = atoi(optarg);
			break;
		case 'G':
			o->linger_us = atoi(optarg);
			break;
		case 'P':
			o->mrd_pid = atoi(optarg);
			break;
		case 'H':
			o->raw_headers = true;
			break;
		case 'T':
			o->throughput = false;
			break;
		case 'U':
			o->unbatched = false;
			break;
		case 'R':
			o->target = atof(optarg);
			break;
		case 'A':
			o->kafka_pid = atoi(optarg);
			break;
		case 'p':
			o->partitions = atoi(optarg);
			break;
		case 'm':
			if (strcmp(optarg, "mailroom") == 0)
				o->mode = BENCH_MAILROOM;
			else if (strcmp(optarg, "raw") == 0)
				o->mode = BENCH_RAW;
			else if (strcmp(optarg, "both") == 0)
				o->mode = BENCH_BOTH;
			else
				return -1;
			break;
		case 'h':
			bench__usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc || o->count < 1 || o->batch < 1 ||
	    o->batch > 100000 || o->inflight < 1 || o->linger_ms < 0 ||
	    o->samples < 0 || o->repeat < 1 || o->repeat > BENCH_RUNS_MAX ||
	    o->timeout_ms < 1 ||
	    o->size > 16 * 1024 * 1024)
		return -1;
	if ((o->mode & BENCH_RAW) && o->brokers == NULL) {
		fprintf(stderr, "publish_bench: raw mode needs --brokers\n");
		return -1;
	}
	return 0;
}

/* CPU µs per message of each batched throughput run, in its order: the
 * raw producer (this process), the client (this process) and mailroomd
 * (the median run's are in bench__cpu_table, beside the other cases). */
static void
bench__cpu_rows(const struct bench_opts *o, const struct bench_result *raw,
		const struct bench_result *mr)
{
	static const char *const what[] = {"raw producer", "client",
					   "mailroomd"};

	printf("\ncpu us per message, run by run\n");
	for (int w = 0; w < 3; w++) {
		bool any = false;

		if ((w == 0 && !(o->mode & BENCH_RAW)) ||
		    (w > 0 && !(o->mode & BENCH_MAILROOM)) ||
		    (w == 2 && o->mrd_pid <= 0))
			continue;
		printf("%-*s", BENCH_NAME_W, what[w]);
		for (int r = 0; r < o->repeat; r++) {
			const struct bench_result *x;
			double                     cpu;

			x   = w == 0 ? &raw[r] : &mr[r];
			cpu = w < 2 ? x->cpu_secs : x->mrd_cpu_secs;

			if (!x->done || x->msgs <= 0 || cpu < 0)
				continue;
			printf(" %7.2f", cpu * 1e6 / (double)x->msgs);
			any = true;
		}
		printf("%s\n", any ? "" : " (none)");
	}
}

int
main(int argc, char **argv)
{
	struct bench_opts    o;
	struct bench_result  raw_runs[BENCH_RUNS_MAX];
	struct bench_result  mr_runs[BENCH_RUNS_MAX];
	struct bench_result  pipe_runs[BENCH_RUNS_MAX];
	struct bench_result  none = {0}, pipe = {0}, pipe_off = {0};
	struct bench_result  sync = {0};
	const struct bench_result *raw = &none, *mr = &none;
	struct bench_latency lraw = {0}, lmr = {0};
	struct bench_result  lres;
	double              *lat;
	double               raw_ref, sync_ref = 0;
	long                 npipe_off, nsync;
	bool                 ok = true;
	char                 name[64];

	if (bench__parse(argc, argv, &o) != 0) {
		bench__usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench__stamp = (long long)time(NULL);
	bench__init_data(o.size);
	if ((lat = calloc((size_t)o.samples + 1, sizeof(*lat))) == NULL)
		return 1;
	nsync = o.count < BENCH_SYNC_MAX ? o.count : BENCH_SYNC_MAX;
	npipe_off = o.count < BENCH_PIPE_OFF_MAX ? o.count : BENCH_PIPE_OFF_MAX;

	printf("publish_bench: %zu-byte payloads, %d keys, linger.ms %d, "
	       "mode %s%s\n",
	       o.size, BENCH_KEYS, o.linger_ms,
	       o.mode == BENCH_BOTH ? "both"
	       : o.mode == BENCH_RAW ? "raw"
				     : "mailroom",
	       o.raw_headers ? ", raw records carry CloudEvents headers" : "");
	printf("publish_bench: kafka %s, mailroomd %s, topics %s-%lld-*\n",
	       o.brokers ? o.brokers : "-", o.url ? o.url : "(default)",
	       o.topic, bench__stamp);

	// Throughput: raw, batched and one-per-call runs alternate, so that
	// all see the same Kafka, page cache and neighbours.
	for (int r = 0; o.throughput && r < o.repeat; r++) {
		if (o.mode & BENCH_RAW) {
			bench__raw_throughput(&o, &raw_runs[r]);
			fprintf(stderr, "  run %d raw: %.0f msgs/s\n", r + 1,
				bench_rate(&raw_runs[r]));
		}
		if (o.mode & BENCH_MAILROOM) {
			bench__mr_async(&o, "batched", o.count, o.batch,
					o.inflight, o.linger_us, &mr_runs[r]);
			fprintf(stderr, "  run %d mailroom batched: %.0f "
					"msgs/s\n",
				r + 1, bench_rate(&mr_runs[r]));
		}
		if ((o.mode & BENCH_MAILROOM) && o.unbatched) {
			bench__mr_async(&o, "pipelined", o.count, 1,
					o.inflight, o.linger_us,
					&pipe_runs[r]);
			fprintf(stderr, "  run %d mailroom one per call: %.0f "
					"msgs/s\n",
				r + 1, bench_rate(&pipe_runs[r]));
		}
	}
	if (o.throughput && (o.mode & BENCH_RAW))
		raw = bench_median(raw_runs, o.repeat);
	if (o.throughput && (o.mode & BENCH_MAILROOM)) {
		mr = bench_median(mr_runs, o.repeat);
	}
	if (o.throughput && (o.mode & BENCH_MAILROOM) && o.unbatched) {
		pipe = *bench_median(pipe_runs, o.repeat);
		bench__mr_async(&o, "pipelined-off", npipe_off, 1, o.inflight,
				-1, &pipe_off);
		bench__mr_sync(&o, "sync", nsync, 0, NULL, &sync);
	}
	if (o.samples > 0 && (o.mode & BENCH_RAW))
		bench__raw_latency(&o, lat, &lraw);
	if (o.samples > 0 && (o.mode & BENCH_MAILROOM)) {
		bench__mr_sync(&o, "latency", o.samples, BENCH_WARMUP, lat,
			       &lres);
		bench__summarise(lat, (int)lres.msgs, &lmr);
		lmr.failed = (int)lres.failed;
	}
	raw_ref = bench_rate(raw);
	if (lraw.n > 0)
		sync_ref = 1e3 / lraw.mean;

	if (o.throughput) {
		printf("\n%-34s %8s %6s %8s %11s %8s %6s %6s\n", "case",
		       "msgs", "failed", "secs", "msgs/s", "MB/s", "cpu s",
		       "ratio");
		if (o.mode & BENCH_RAW) {
			snprintf(name, sizeof(name), "raw librdkafka async%s",
				 o.repeat > 1 ? " (median)" : "");
			bench_row(name, BENCH_NAME_W, raw, o.size, 0, NULL);
		}
		if (o.mode & BENCH_MAILROOM) {
			snprintf(name, sizeof(name),
				 "mailroom batched K=%d F=%d%s", o.batch,
				 o.inflight, o.repeat > 1 ? " (median)" : "");
			bench_row(name, BENCH_NAME_W, mr, o.size, raw_ref,
				  "of raw async");
		}
		if ((o.mode & BENCH_MAILROOM) && o.unbatched) {
			snprintf(name, sizeof(name),
				 "mailroom 1 per call F=%d coalesced%s",
				 o.inflight, o.repeat > 1 ? " (median)" : "");
			bench_row(name, BENCH_NAME_W, &pipe, o.size, raw_ref,
				  "of raw async");
			snprintf(name, sizeof(name),
				 "mailroom 1 per call F=%d one each",
				 o.inflight);
			bench_row(name, BENCH_NAME_W, &pipe_off, o.size,
				  raw_ref, "of raw async");
			bench_row("mailroom unbatched sync", BENCH_NAME_W,
				  &sync, o.size, sync_ref, "of raw sync");
		}
		printf("(MB/s counts payload bytes only; cpu s is this "
		       "process's; raw sync: 1 / mean raw latency = %.0f "
		       "msgs/s)\n",
		       sync_ref);
	}
	if (o.throughput && (o.mode & BENCH_MAILROOM))
		bench__cpu_table(mr, &pipe, &pipe_off, &sync);
	if (lraw.n > 0 || lmr.n > 0) {
		printf("\nlatency, one message at a time, %d samples, "
		       "linger.ms %d (ms)\n",
		       o.samples, o.linger_ms);
		printf("%-34s %8s %8s %8s %8s %8s\n", "", "p50", "p90", "p99",
		       "max", "mean");
		if (lraw.n > 0)
			printf("%-34s %8.3f %8.3f %8.3f %8.3f %8.3f\n",
			       "raw produce -> delivery report", lraw.p50,
			       lraw.p90, lraw.p99, lraw.max, lraw.mean);
		if (lmr.n > 0)
			printf("%-34s %8.3f %8.3f %8.3f %8.3f %8.3f\n",
			       "mailroom publish -> ack", lmr.p50, lmr.p90,
			       lmr.p99, lmr.max, lmr.mean);
		if (lraw.n > 0 && lmr.n > 0)
			printf("%-34s %+8.3f %8s %+8.3f   (targets: p50 <= "
			       "0.3, p99 <= 1)\n",
			       "added by mailroom", lmr.p50 - lraw.p50, "",
			       lmr.p99 - lraw.p99);
	}
	if (o.throughput)
		bench__cpu_rows(&o, raw_runs, mr_runs);
	if (raw_ref > 0 && pipe.done) {
		double ratio = bench_rate(&pipe) / raw_ref;

		printf("\ntarget: one message per call (coalesced) >= 0.50x "
		       "raw%s: %.3fx %s\n",
		       o.raw_headers ? " with mailroomd's headers" : "", ratio,
		       ratio >= 0.5 ? "MET" : "NOT MET");
	}
	if (raw_ref > 0 && mr->done) {
		double ratio = bench_rate(mr) / raw_ref;

		printf("\ntarget: batched >= %.2fx raw%s: %.3fx %s%s\n",
		       o.target,
		       o.raw_headers ? " with mailroomd's headers" : "", ratio,
		       ratio >= o.target ? "MET" : "NOT MET",
		       o.size == 100 ? ""
				     : " (the target is stated for 100-byte "
				       "messages)");
	}

	printf("\n{\"bench\":\"publish\",\"size\":%zu,\"count\":%ld,"
	       "\"batch\":%d,\"inflight\":%d,\"linger_ms\":%d,\"keys\":%d,"
	       "\"repeat\":%d,\"raw_headers\":%s,\"cpu_total_s\":%.2f",
	       o.size, o.count, o.batch, o.inflight, o.linger_ms, BENCH_KEYS,
	       o.repeat, o.raw_headers ? "true" : "false", bench_cpu_secs());
	if (o.throughput && (o.mode & BENCH_RAW))
		bench_json_result("raw", raw, o.size, 0, NULL, raw_runs,
				   o.repeat);
	if (o.throughput && (o.mode & BENCH_MAILROOM)) {
		bench_json_result("mailroom_batched", mr, o.size, raw_ref,
				   "ratio", mr_runs, o.repeat);
		if (o.mrd_pid > 0) {
			printf(",\"mailroomd_cpu_us_per_msg\":[");
			for (int r = 0; r < o.repeat; r++)
				printf("%s%.3f", r ? "," : "",
				       mr_runs[r].msgs > 0 &&
						   mr_runs[r].mrd_cpu_secs >= 0
					   ? mr_runs[r].mrd_cpu_secs * 1e6 /
						 (double)mr_runs[r].msgs
					   : -1.0);
			printf("]");
		}
	}
	if (o.throughput && (o.mode & BENCH_MAILROOM) && o.unbatched) {
		bench_json_result("mailroom_pipelined", &pipe, o.size,
				   raw_ref, "ratio", NULL, 0);
		bench_json_result("mailroom_pipelined_off", &pipe_off,
				   o.size, raw_ref, "ratio", NULL, 0);
		bench_json_result("mailroom_sync", &sync, o.size, sync_ref,
				   "ratio_vs_raw_sync", NULL, 0);
	}
	if (lraw.n > 0)
		bench__json_latency("latency_raw", &lraw);
	if (lmr.n > 0)
		bench__json_latency("latency_mailroom", &lmr);
	if (lraw.n > 0 && lmr.n > 0)
		printf(",\"added_p50_ms\":%.4f,\"added_p99_ms\":%.4f",
		       lmr.p50 - lraw.p50, lmr.p99 - lraw.p99);
	printf("}\n");

	// Exit 1 when anything failed or could not be measured.
	for (int r = 0; o.throughput && r < o.repeat; r++) {
		if ((o.mode & BENCH_RAW) &&
		    (!raw_runs[r].done || raw_runs[r].failed))
			ok = false;
		if ((o.mode & BENCH_MAILROOM) &&
		    (!mr_runs[r].done || mr_runs[r].failed))
			ok = false;
	}
	if (o.throughput && (o.mode & BENCH_MAILROOM) && o.unbatched &&
	    (!pipe.done || pipe.failed || !pipe_off.done || pipe_off.failed ||
	     !sync.done || sync.failed))
		ok = false;
	if (o.samples > 0 && (o.mode & BENCH_RAW) && lraw.n < o.samples)
		ok = false;
	if (o.samples > 0 && (o.mode & BENCH_MAILROOM) && lmr.n < o.samples)
		ok = false;
	free(lat);
	bench_pool_free();
	return ok ? 0 : 1;
}
