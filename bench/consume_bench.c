/*
 * consume_bench: mailroom's consume path against a raw librdkafka consumer
 * doing the same at-least-once work, on the same Kafka, in one run
 * (docs/benchmarks/consume.md).
 *
 * Before any clock starts, a raw producer (murmur2_random, idempotent,
 * acks=all) preloads two fresh topics and is flushed: the data topic, N
 * S-byte messages keyed "key-<i % K>" over P partitions, and the slow
 * topic, M messages keyed "key-<i % KS>" in one partition. Topics are made
 * with mailroomd's admin topics.create. Every case reads in a consumer
 * group of its own, from the earliest offset.
 *
 *   raw        librdkafka: subscribe, enable.auto.commit=false,
 *              enable.auto.offset.store=false, store offset + 1 of each
 *              message and commit asynchronously every 500 ms (mailroomd's
 *              own work); zero-cost handler. First message to the N-th.
 *   unordered  through mailroomd: F threads share one subscription (credit
 *   key        F * B), each fetches up to B messages, acks them as ranges,
 *   partition  fetches again; zero-cost handler. From the first delivery to
 *              the return of the ack that completes the count. partition
 *              reads only the first --partition-count messages: it has at
 *              most P in flight. With --client async, one
 *              mr_consume_run_async (credit F * B) instead, whose handler
 *              is done at once: its settles do not wait for each other.
 *   slow       the slow topic, in partition mode and then in key mode:
 *              mr_consume_run with W workers and credit W, a handler that
 *              sleeps (or spins) 1-5 ms, the same for a given offset in
 *              both modes. From the first handler call to the return of
 *              mr_consume_run (everything acked).
 *   run        (not in all; "actors" is both) the data topic in key mode:
 *   mirror     mr_consume_run with W workers and a zero-cost handler, and
 *              an mr_mirror type (one actor per key) with W workers whose
 *              handle_cast does nothing. From the first handler call to
 *              the N-th.
 *
 * Throughput cases repeat --repeat times, alternating, and report the
 * median. The records carry no headers, so mailroomd gives each the id
 * "topic/partition/offset".
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

#include "consume_bench.h"

static long long bench__stamp;
char             bench__data_topic[300];
char             bench__slow_topic[300];

void
bench__group(const struct bench_opts *o, const char *name, char *out,
	     size_t n)
{
	static int seq;

	snprintf(out, n, "%s-%lld-g%d-%s", o->topic, bench__stamp, seq++,
		 name);
}

/* Wait until *v is at least \p target, or no progress for BENCH_IDLE_MS
 * (BENCH_FIRST_MS before the first), or *stop. @returns *v. */
long
bench__wait_count(atomic_long *v, long target, atomic_int *stop)
{
	long    last     = atomic_load(v), now_v;
	int64_t deadline = bench_now_ns() + (int64_t)BENCH_FIRST_MS * 1000000;

	while ((now_v = atomic_load(v)) < target && !atomic_load(stop)) {
		if (now_v != last) {
			last     = now_v;
			deadline = bench_now_ns() +
				   (int64_t)BENCH_IDLE_MS * 1000000;
		} else if (bench_now_ns() > deadline) {
			break;
		}
		usleep(2000);
	}
	return atomic_load(v);
}

/* @returns 1 if mailroomd keeps a journal for \p group, 0 if not, -1 if it
 * cannot tell. */
static int
bench__journal_on(mr_client *c, const char *group)
{
	char req[512], *rep = NULL;
	int  on;

	snprintf(req, sizeof(req),
		 "{\"op\":\"topics.describe\",\"topic\":"
		 "\"__mailroom.journal.%s\"}",
		 group);
	if (mr_admin(c, req, &rep) != MR_OK)
		return -1;
	on = strstr(rep, "\"ok\":true") != NULL     ? 1
	     : strstr(rep, "MR_ENOENT") != NULL ? 0
						: -1;
	free(rep);
	return on;
}

/* ---- report ----------------------------------------------------------- */

static bool
bench__target(const char *what, double ratio, double want)
{
	if (ratio <= 0) {
		printf("target: %s >= %.2fx: not measured\n", what, want);
		return false;
	}
	printf("target: %s >= %.2fx: %.3fx %s\n", what, want, ratio,
	       ratio >= want ? "MET" : "NOT MET");
	return ratio >= want;
}

/* CPU µs per message of this process, mailroomd and Kafka (and, in
 * brackets, the part of Kafka's that its JIT compilers used), and
 * mailroomd's peak RSS, run by run. */
static void
bench__cpu_line(const char *name, const struct bench_result *runs, int n)
{
	printf("  %-14s", name);
	for (int r = 0; r < n; r++) {
		const struct bench_result *x = &runs[r];
		double                     k = x->msgs > 0 ? 1e6 / x->msgs : 0;

		printf(" | %.2f %.2f %.2f (%.2f) %.1f", x->cpu_secs * k,
		       x->mrd_cpu_secs >= 0 ? x->mrd_cpu_secs * k : -1,
		       x->kafka_cpu_secs >= 0 ? x->kafka_cpu_secs * k : -1,
		       x->kafka_jit_secs >= 0 ? x->kafka_jit_secs * k : -1,
		       (double)x->mrd_hwm_kb / 1024);
	}
	printf("\n");
}

/* ---- main ------------------------------------------------------------- */

static void
bench__usage(FILE *f)
{
	fprintf(f,
		"usage: consume_bench --brokers HOST:PORT --url URL "
		"[options]\n"
		"  --count N        messages preloaded and read per case "
		"(1000000)\n"
		"  --size S         payload bytes (100)\n"
		"  --partitions P   partitions of the data topic (4)\n"
		"  --keys K         distinct keys, key-<i %% K> (1000)\n"
		"  --mode M         raw, unordered, key, partition, slow or "
		"all; run,\n"
		"                   mirror or actors (both); or a "
		"comma-separated list (all)\n"
		"  --repeat R       throughput runs, median reported (1)\n"
		"  --batch B        messages per fetch (1000)\n"
		"  --fetchers F     fetch threads, one subscription (4)\n"
		"  --client C       sync (F threads fetch and ack in turn) or "
		"async\n"
		"                   (mr_consume_run_async, credit F x B) "
		"(sync)\n"
		"  --groups G       groups reading the data topic at once, "
		"each with\n"
		"                   F fetchers (mailroom) or a consumer (raw) "
		"(1)\n"
		"  --mrd-pid P      mailroomd's pid: its CPU per message and "
		"peak RSS\n"
		"  --kafka-pid P    Kafka's pid: its CPU per message\n"
		"  --partition-count N  messages read in partition mode "
		"(20000)\n"
		"  --slow-count N   messages of the slow case (2000)\n"
		"  --slow-keys K    keys of the slow topic (50)\n"
		"  --slow-inflight W  workers and credit (100)\n"
		"  --slow-us MIN-MAX  work per message in us (1000-5000)\n"
		"  --slow-work W    sleep or spin (sleep)\n"
		"  --topic T        topic and group prefix (mrcbench)\n"
		"  --timeout-ms T   the client's request timeout (60000)\n");
}

static int
bench__parse_cases(const char *s)
{
	static const struct {
		const char *name;
		int         bits;
	} names[] = {{"raw", CASE_RAW},	    {"unordered", CASE_UNORDERED},
		     {"key", CASE_KEY},	    {"partition", CASE_PARTITION},
		     {"slow", CASE_SLOW},   {"all", CASE_ALL},
		     {"run", CASE_RUN},	    {"mirror", CASE_MIRROR},
		     {"actors", CASE_ACTORS}};
	int cases = 0;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len &&
			    strncmp(names[i].name, s, len) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return -1;
		cases |= names[i].bits;
		s += len + (s[len] == ',');
	}
	return cases ? cases : -1;
}

static int
bench__parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lopts[] = {
	    {"brokers", required_argument, NULL, 'b'},
	    {"url", required_argument, NULL, 'u'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"partitions", required_argument, NULL, 'p'},
	    {"keys", required_argument, NULL, 'K'},
	    {"mode", required_argument, NULL, 'm'},
	    {"repeat", required_argument, NULL, 'r'},
	    {"batch", required_argument, NULL, 'B'},
	    {"fetchers", required_argument, NULL, 'F'},
	    {"groups", required_argument, NULL, 'g'},
	    {"mrd-pid", required_argument, NULL, 'M'},
	    {"kafka-pid", required_argument, NULL, 'A'},
	    {"partition-count", required_argument, NULL, 'P'},
	    {"slow-count", required_argument, NULL, 'N'},
	    {"slow-keys", required_argument, NULL, 'k'},
	    {"slow-inflight", required_argument, NULL, 'w'},
	    {"slow-us", required_argument, NULL, 'U'},
	    {"slow-work", required_argument, NULL, 'W'},
	    {"topic", required_argument, NULL, 't'},
	    {"timeout-ms", required_argument, NULL, 'T'},
	    {"client", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	*o = (struct bench_opts){
	    .topic           = "mrcbench",
	    .count           = 1000000,
	    .partition_count = 20000,
	    .size            = 100,
	    .partitions      = 4,
	    .keys            = 1000,
	    .cases           = CASE_ALL,
	    .repeat          = 1,
	    .batch           = 1000,
	    .fetchers        = 4,
	    .groups          = 1,
	    .timeout_ms      = 60000,
	    .slow_count      = 2000,
	    .slow_keys       = 50,
	    .slow_inflight   = 100,
	    .slow_min_us     = 1000,
	    .slow_max_us     = 5000,
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
		case 'p':
			o->partitions = atoi(optarg);
			break;
		case 'K':
			o->keys = atoi(optarg);
			break;
		case 'm':
			if ((o->cases = bench__parse_cases(optarg)) < 0)
				return -1;
			break;
		case 'r':
			o->repeat = atoi(optarg);
			break;
		case 'B':
			o->batch = atoi(optarg);
			break;
		case 'F':
			o->fetchers = atoi(optarg);
			break;
		case 'g':
			o->groups = atoi(optarg);
			break;
		case 'M':
			o->mrd_pid = atoi(optarg);
			break;
		case 'A':
			o->kafka_pid = atoi(optarg);
			break;
		case 'P':
			o->partition_count = atol(optarg);
			break;
		case 'N':
			o->slow_count = atol(optarg);
			break;
		case 'k':
			o->slow_keys = atoi(optarg);
			break;
		case 'w':
			o->slow_inflight = atoi(optarg);
			break;
		case 'U':
			if (sscanf(optarg, "%d-%d", &o->slow_min_us,
				   &o->slow_max_us) != 2)
				return -1;
			break;
		case 'W':
			if (strcmp(optarg, "spin") == 0)
				o->slow_spin = true;
			else if (strcmp(optarg, "sleep") == 0)
				o->slow_spin = false;
			else
				return -1;
			break;
		case 't':
			o->topic = optarg;
			break;
		case 'T':
			o->timeout_ms = atoi(optarg);
			break;
		case 'C':
			if (strcmp(optarg, "sync") != 0 &&
			    strcmp(optarg, "async") != 0)
				return -1;
			o->async = strcmp(optarg, "async") == 0;
			break;
		case 'h':
			bench__usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc || o->count < 1 || o->partition_count < 1 ||
	    o->size > 1024 * 1024 || o->partitions < 1 || o->keys < 1 ||
	    o->repeat < 1 || o->repeat > BENCH_RUNS_MAX || o->batch < 1 ||
	    o->batch > 100000 || o->fetchers < 1 ||
	    o->fetchers > BENCH_FETCHERS_MAX || o->groups < 1 ||
	    o->groups > BENCH_GROUPS_MAX || o->slow_count < 1 ||
	    o->slow_keys < 1 || o->slow_inflight < 1 ||
	    o->slow_inflight > 1024 || o->slow_min_us < 0 ||
	    o->slow_max_us < o->slow_min_us || o->timeout_ms < 1)
		return -1;
	if (o->partition_count > o->count)
		o->partition_count = o->count;
	if (o->brokers == NULL || o->url == NULL) {
		fprintf(stderr, "consume_bench: --brokers and --url are "
				"required (mailroomd creates the topics)\n");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct {
		int         bit;
		const char *name;
		const char *json;
		mr_order    order;
	} modes[] = {
	    {CASE_UNORDERED, "unordered", "mailroom_unordered",
	     MR_ORDER_UNORDERED},
	    {CASE_KEY, "key", "mailroom_key", MR_ORDER_KEY},
	    {CASE_PARTITION, "partition", "mailroom_partition",
	     MR_ORDER_PARTITION},
	};
	struct bench_opts          o;
	struct bench_result        raw_runs[BENCH_RUNS_MAX];
	struct bench_result        mr_runs[3][BENCH_RUNS_MAX];
	struct bench_result        none = {0}, slow_part = {0}, slow_key = {0};
	struct bench_result        act_runs[2][BENCH_RUNS_MAX];
	const struct bench_result *act[2] = {&none, &none};
	const struct bench_result *raw = &none, *mr[3] = {&none, &none, &none};
	mr_client                 *c;
	double                     raw_ref, mean_ms = 0, ratio;
	char                       name[96], group[300] = "";
	int                        journal = -1;
	bool                       ok = true;

	if (bench__parse(argc, argv, &o) != 0) {
		bench__usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench__stamp = (long long)time(NULL);
	bench_pool_init(o.size, "consume_bench");
	snprintf(bench__data_topic, sizeof(bench__data_topic), "%s-%lld-data",
		 o.topic, bench__stamp);
	snprintf(bench__slow_topic, sizeof(bench__slow_topic), "%s-%lld-slow",
		 o.topic, bench__stamp);
	for (long i = 0; i < o.slow_count; i++)
		mean_ms += slow__cost_us(&o, i) / 1e3;
	mean_ms /= (double)o.slow_count;
	if ((c = bench__connect(&o)) == NULL)
		return 1;

	if (o.async)
		printf("consume_bench: %zu-byte payloads, %ld messages, %d "
		       "partitions, %d keys; mr_consume_run_async, credit "
		       "%d; %d group%s at once\n",
		       o.size, o.count, o.partitions, o.keys,
		       o.batch * o.fetchers, o.groups,
		       o.groups > 1 ? "s" : "");
	else
		printf("consume_bench: %zu-byte payloads, %ld messages, %d "
		       "partitions, %d keys; fetch %d x %d threads; %d "
		       "group%s at once\n",
		       o.size, o.count, o.partitions, o.keys, o.batch,
		       o.fetchers, o.groups, o.groups > 1 ? "s" : "");
	printf("consume_bench: slow: %ld messages, 1 partition, %d keys, %d "
	       "workers and credit, %d-%d us of %s (mean %.3f ms)\n",
	       o.slow_count, o.slow_keys, o.slow_inflight, o.slow_min_us,
	       o.slow_max_us, o.slow_spin ? "busy-wait" : "sleep", mean_ms);
	printf("consume_bench: kafka %s, mailroomd %s, topics %s-%lld-*\n",
	       o.brokers, o.url, o.topic, bench__stamp);
	if (bench__preload(&o, c) != 0) {
		mr_client_free(c);
		return 1;
	}
	fprintf(stderr, "  preloaded and flushed\n");

	// Raw and the three modes alternate, so that all see the same
	// Kafka, page cache and neighbours.
	for (int r = 0; r < o.repeat; r++) {
		if (o.cases & CASE_RAW) {
			bench__raw(&o, &raw_runs[r]);
			fprintf(stderr, "  run %d raw: %.0f msgs/s\n", r + 1,
				bench_rate(&raw_runs[r]));
		}
		for (int i = 0; i < 3; i++) {
			if (!(o.cases & modes[i].bit))
				continue;
			bench__mr(&o, c, modes[i].name, modes[i].order,
				  modes[i].bit == CASE_PARTITION
				      ? o.partition_count
				      : o.count,
				  group, sizeof(group), &mr_runs[i][r]);
			fprintf(stderr, "  run %d mailroom %s: %.0f msgs/s\n",
				r + 1, modes[i].name,
				bench_rate(&mr_runs[i][r]));
		}
	}
	if (o.cases & CASE_SLOW) {
		bench__slow(&o, c, "slow-partition", MR_ORDER_PARTITION,
			    &slow_part);
		fprintf(stderr, "  slow partition: %.0f msgs/s\n",
			bench_rate(&slow_part));
		bench__slow(&o, c, "slow-key", MR_ORDER_KEY, &slow_key);
		fprintf(stderr, "  slow key: %.0f msgs/s\n",
			bench_rate(&slow_key));
	}
	for (int r = 0; r < o.repeat; r++)
		for (int i = 0; i < 2; i++) {
			if (!(o.cases & (i ? CASE_MIRROR : CASE_RUN)))
				continue;
			bench__actors(&o, c, i == 1, &act_runs[i][r]);
			act_runs[i][r].mrd_cpu_secs   = -1;
			act_runs[i][r].kafka_cpu_secs = -1;
			act_runs[i][r].kafka_jit_secs = -1;
			fprintf(stderr, "  run %d %s: %.0f msgs/s\n", r + 1,
				i ? "mirror" : "consume_run",
				bench_rate(&act_runs[i][r]));
		}
	for (int i = 0; i < 2; i++)
		if (o.cases & (i ? CASE_MIRROR : CASE_RUN))
			act[i] = bench_median(act_runs[i], o.repeat);
	if (group[0] != '\0')
		journal = bench__journal_on(c, group);
	if (o.cases & CASE_RAW)
		raw = bench_median(raw_runs, o.repeat);
	for (int i = 0; i < 3; i++)
		if (o.cases & modes[i].bit)
			mr[i] = bench_median(mr_runs[i], o.repeat);
	raw_ref = bench_rate(raw);

	printf("mailroomd consumer.journal: %s\n",
	       journal == 1   ? "on (the group's journal topic exists)"
	       : journal == 0 ? "off (no journal topic for the group)"
			      : "unknown");
	printf("\n%-40s %8s %6s %8s %11s %8s %6s %6s\n", "case", "msgs",
	       "failed", "secs", "msgs/s", "MB/s", "cpu s", "ratio");
	if (o.cases & CASE_RAW) {
		snprintf(name, sizeof(name), "raw librdkafka consumer%s",
			 o.repeat > 1 ? " (median)" : "");
		bench_row(name, BENCH_NAME_W, raw, o.size, 0, NULL);
	}
	for (int i = 0; i < 3; i++) {
		if (!(o.cases & modes[i].bit))
			continue;
		snprintf(name, sizeof(name), "mailroom %s%s", modes[i].name,
			 o.repeat > 1 ? " (median)" : "");
		bench_row(name, BENCH_NAME_W, mr[i], o.size, raw_ref,
			  "of raw");
	}
	for (int i = 0; i < 3; i++)
		if ((o.cases & modes[i].bit) && mr[i]->fetches > 0)
			printf("  %s: %ld fetches, %.1f messages each, %ld "
			       "empty\n",
			       modes[i].name, mr[i]->fetches,
			       (double)mr[i]->msgs / (double)mr[i]->fetches,
			       mr[i]->empty);
	if (o.cases & CASE_SLOW) {
		bench_row("slow handler, partition mode", BENCH_NAME_W,
			  &slow_part, o.size, 0, NULL);
		bench_row("slow handler, key mode", BENCH_NAME_W, &slow_key,
			  o.size, bench_rate(&slow_part), "of partition");
		printf("slow handler: at most %d and %d handlers ran at once; "
		       "bounds: partition 1 / %.3f ms = %.0f msgs/s, key "
		       "min(%d keys, %d workers) / %.3f ms = %.0f msgs/s\n",
		       slow_part.peak, slow_key.peak, mean_ms, 1e3 / mean_ms,
		       o.slow_keys, o.slow_inflight, mean_ms,
		       (o.slow_keys < o.slow_inflight ? o.slow_keys
						      : o.slow_inflight) *
			   1e3 / mean_ms);
	}
	if (o.cases & CASE_RUN)
		bench_row("mr_consume_run, key, zero-cost", BENCH_NAME_W,
			  act[0], o.size, raw_ref, "of raw");
	if (o.cases & CASE_MIRROR)
		bench_row("mirrored actors, zero-cost", BENCH_NAME_W, act[1],
			  o.size, bench_rate(act[0]), "of run");
	printf("(MB/s counts payload bytes only; cpu s is this process's; "
	       "partition mode reads the first %ld messages)\n",
	       o.partition_count);
	printf("cpu us per message, run by run: client, mailroomd, Kafka "
	       "(of which its JIT compilers); mailroomd peak RSS (MiB)\n");
	if (o.cases & CASE_RAW)
		bench__cpu_line("raw", raw_runs, o.repeat);
	for (int i = 0; i < 3; i++)
		if (o.cases & modes[i].bit)
			bench__cpu_line(modes[i].name, mr_runs[i], o.repeat);
	printf("\n");
	if ((o.cases & CASE_RAW) && (o.cases & CASE_UNORDERED))
		bench__target("unordered / raw", bench_rate(mr[0]) / raw_ref,
			      0.5);
	if ((o.cases & CASE_RAW) && (o.cases & CASE_KEY))
		bench__target("key / raw", bench_rate(mr[1]) / raw_ref, 0.4);
	if (o.cases & CASE_SLOW) {
		ratio = bench_rate(&slow_part) > 0
			    ? bench_rate(&slow_key) / bench_rate(&slow_part)
			    : 0;
		bench__target("slow handler, key / partition", ratio, 8);
	}
	if ((o.cases & CASE_ACTORS) == CASE_ACTORS)
		bench__target("mirrored actors / mr_consume_run",
			      bench_rate(act[0]) > 0
				  ? bench_rate(act[1]) / bench_rate(act[0])
				  : 0,
			      0.8);

	printf("\n{\"bench\":\"consume\",\"size\":%zu,\"count\":%ld,"
	       "\"partitions\":%d,\"keys\":%d,\"batch\":%d,\"fetchers\":%d,"
	       "\"partition_count\":%ld,\"repeat\":%d,\"groups\":%d,"
	       "\"journal\":%s,\"cpu_total_s\":%.2f",
	       o.size, o.count, o.partitions, o.keys, o.batch, o.fetchers,
	       o.partition_count, o.repeat, o.groups,
	       journal == 1   ? "true"
	       : journal == 0 ? "false"
			      : "null",
	       bench_cpu_secs());
	if (o.cases & CASE_RAW)
		bench_json_result("raw", raw, o.size, 0, NULL, raw_runs,
				   o.repeat);
	for (int i = 0; i < 3; i++)
		if (o.cases & modes[i].bit)
			bench_json_result(modes[i].json, mr[i], o.size,
					   raw_ref, "ratio", mr_runs[i],
					   o.repeat);
	if (o.cases & CASE_SLOW) {
		printf(",\"slow\":{\"count\":%ld,\"keys\":%d,\"inflight\":%d,"
		       "\"work\":\"%s\",\"min_us\":%d,\"max_us\":%d,"
		       "\"mean_ms\":%.4f}",
		       o.slow_count, o.slow_keys, o.slow_inflight,
		       o.slow_spin ? "spin" : "sleep", o.slow_min_us,
		       o.slow_max_us, mean_ms);
		bench_json_result("slow_partition", &slow_part, o.size, 0,
				   NULL, NULL, 0);
		bench_json_result("slow_key", &slow_key, o.size,
				   bench_rate(&slow_part),
				   "ratio_vs_partition", NULL, 0);
	}
	if (o.cases & CASE_RUN)
		bench_json_result("consume_run_key", act[0], o.size, raw_ref,
				   "ratio", act_runs[0], o.repeat);
	if (o.cases & CASE_MIRROR)
		bench_json_result("mirror", act[1], o.size,
				   bench_rate(act[0]), "ratio_vs_run",
				   act_runs[1], o.repeat);
	printf("}\n");

	// Exit 1 when anything failed or could not be measured.
	for (int r = 0; r < o.repeat; r++) {
		if ((o.cases & CASE_RAW) &&
		    (!raw_runs[r].done || raw_runs[r].failed))
			ok = false;
		for (int i = 0; i < 3; i++)
			if ((o.cases & modes[i].bit) &&
			    (!mr_runs[i][r].done || mr_runs[i][r].failed))
				ok = false;
		for (int i = 0; i < 2; i++)
			if ((o.cases & (i ? CASE_MIRROR : CASE_RUN)) &&
			    (!act_runs[i][r].done || act_runs[i][r].failed))
				ok = false;
	}
	if ((o.cases & CASE_SLOW) && (!slow_part.done || slow_part.failed ||
				      !slow_key.done || slow_key.failed))
		ok = false;
	mr_client_free(c);
	bench_pool_free();
	return ok ? 0 : 1;
}
