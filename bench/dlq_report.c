/*
 * dlq_bench's report (min, median and max of each variant's runs, the
 * ratios to the clean run of the same round, the correctness counts) and
 * its options.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq_bench.h"

const char *const dlq_names[] = {"clean", "poison", "breaker"};

/* ---- report ----------------------------------------------------------- */

static double
dlq__rate(const struct dlq_result *r)
{
	return r->done && r->secs > 0 ? (double)r->healthy / r->secs : 0;
}

static double
dlq__other_rate(const struct dlq_result *r)
{
	return r->done && r->other_secs > 0
		   ? (double)r->other_msgs / r->other_secs
		   : 0;
}

static int
dlq__cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* min, median (the lower of an even count), max of \p n values. */
static void
dlq__mmm(double *v, int n, double out[3])
{
	qsort(v, (size_t)n, sizeof(*v), dlq__cmp);
	out[0] = v[0];
	out[1] = v[(n - 1) / 2];
	out[2] = v[n - 1];
}

static void
dlq__row(const char *what, double *v, int n, const char *fmt)
{
	double m[3];
	char   a[32], b[32], c[32];

	dlq__mmm(v, n, m);
	snprintf(a, sizeof(a), fmt, m[0]);
	snprintf(b, sizeof(b), fmt, m[1]);
	snprintf(c, sizeof(c), fmt, m[2]);
	printf("  %-34s %12s %12s %12s\n", what, a, b, c);
}

void
dlq_report(const struct dlq_opts *o, int v, struct dlq_result *res, int n,
	    const struct dlq_result *clean)
{
	double rate[BENCH_RUNS_MAX], other[BENCH_RUNS_MAX];
	double cc[BENCH_RUNS_MAX], cm[BENCH_RUNS_MAX], ratio[BENCH_RUNS_MAX];
	double ratio_o[BENCH_RUNS_MAX];
	long   dups = 0, redel = 0, refused = 0, short_dlq = 0;
	char   title[80];

	for (int i = 0; i < n; i++) {
		double h = res[i].healthy > 0 ? (double)res[i].healthy : 1;

		rate[i]  = dlq__rate(&res[i]);
		other[i] = dlq__other_rate(&res[i]);
		cc[i]    = res[i].cpu_client * 1e6 / h;
		cm[i]    = res[i].cpu_mrd * 1e6 / h;
		ratio[i] = clean && dlq__rate(&clean[i]) > 0
			       ? rate[i] / dlq__rate(&clean[i])
			       : 0;
		ratio_o[i] = clean && dlq__other_rate(&clean[i]) > 0
				 ? other[i] / dlq__other_rate(&clean[i])
				 : 0;
		dups += res[i].dups;
		redel += res[i].redelivered;
		refused += res[i].ack_failed;
		if (v != V_CLEAN && res[i].dlq_distinct <
					(o->b.count + o->b.keys - 1) / o->b.keys)
			short_dlq++;
	}
	snprintf(title, sizeof(title), "%s (%d run%s)", dlq_names[v], n,
		 n > 1 ? "s" : "");
	printf("\n%-36s %12s %12s %12s\n", title, "min", "median", "max");
	dlq__row("healthy msgs/s", rate, n, "%.0f");
	dlq__row("healthy msgs/s, other partitions", other, n, "%.0f");
	dlq__row("client cpu us / healthy msg", cc, n, "%.3f");
	dlq__row("mailroomd cpu us / healthy msg", cm, n, "%.3f");
	if (clean != NULL) {
		dlq__row("ratio to clean (same round)", ratio, n, "%.3f");
		dlq__row("ratio, other partitions", ratio_o, n, "%.3f");
	}
	for (int i = 0; i < n; i++) {
		printf("  run %d: healthy %ld in %.3f s (other partitions %ld "
		       "in %.3f s), run %.1f s, mailroomd cpu %.2f s",
		       i + 1, res[i].healthy, res[i].secs, res[i].other_msgs,
		       res[i].other_secs, res[i].total_secs,
		       res[i].cpu_mrd_total);
		if (v != V_CLEAN)
			printf("; key-0: %ld nacks, %ld at last attempt, dlq "
			       "%ld records = %ld distinct + %ld dup, %ld "
			       "stray; mailroomd quarantined %ld, breaker "
			       "trips %ld",
			       res[i].poison_nacks, res[i].exhausted,
			       res[i].dlq_records, res[i].dlq_distinct,
			       res[i].dlq_records - res[i].dlq_distinct -
				   res[i].dlq_stray,
			       res[i].dlq_stray, res[i].quarantined,
			       res[i].trips);
		printf("\n");
	}
	printf("  correctness: healthy duplicates %ld, healthy "
	       "redeliveries %ld, handles refused %ld",
	       dups, redel, refused);
	if (v != V_CLEAN)
		printf(", runs with a key-0 message missing from the dlq %ld",
		       short_dlq);
	printf("\n");
}

/* ---- options ---------------------------------------------------------- */

void
dlq_usage(FILE *f)
{
	fprintf(f,
		"usage: dlq_bench --brokers HOST:PORT --url URL [options]\n"
		"  --mrd-pid PID    mailroomd's pid, for its CPU (none)\n"
		"  --count N        messages preloaded (200000)\n"
		"  --size S         payload bytes (100)\n"
		"  --partitions P   partitions of the data topic (4)\n"
		"  --keys K         distinct keys, key-<i %% K>; key-0 is "
		"poisoned (1000)\n"
		"  --variants V     clean,poison[,breaker] (clean,poison)\n"
		"  --repeat R       rounds, variants alternating (3)\n"
		"  --batch B        messages per fetch (1000)\n"
		"  --fetchers F     fetch threads, one subscription (4)\n"
		"  --attempts A     retry.max_attempts (5)\n"
		"  --backoff MIN-MAX  retry back-off in ms (50-1000)\n"
		"  --multiplier M   retry.backoff_multiplier (2)\n"
		"  --jitter J       retry.backoff_jitter (0.2)\n"
		"  --topic T        topic and group prefix (mrdlqbench)\n"
		"  --timeout-ms T   the client's request timeout (60000)\n");
}

static int
dlq__parse_variants(const char *s, struct dlq_opts *o)
{
	o->nvariants = 0;
	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		int    v;

		for (v = 0; v < DLQ_VARIANTS_MAX; v++)
			if (strlen(dlq_names[v]) == len &&
			    strncmp(dlq_names[v], s, len) == 0)
				break;
		if (v == DLQ_VARIANTS_MAX || o->nvariants == DLQ_VARIANTS_MAX)
			return -1;
		o->variants[o->nvariants++] = v;
		s += len + (s[len] == ',');
	}
	return o->nvariants ? 0 : -1;
}

int
dlq_parse(int argc, char **argv, struct dlq_opts *o)
{
	static const struct option lopts[] = {
	    {"brokers", required_argument, NULL, 'b'},
	    {"url", required_argument, NULL, 'u'},
	    {"mrd-pid", required_argument, NULL, 'M'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"partitions", required_argument, NULL, 'p'},
	    {"keys", required_argument, NULL, 'K'},
	    {"variants", required_argument, NULL, 'v'},
	    {"repeat", required_argument, NULL, 'r'},
	    {"batch", required_argument, NULL, 'B'},
	    {"fetchers", required_argument, NULL, 'F'},
	    {"attempts", required_argument, NULL, 'a'},
	    {"backoff", required_argument, NULL, 'o'},
	    {"multiplier", required_argument, NULL, 'x'},
	    {"jitter", required_argument, NULL, 'j'},
	    {"topic", required_argument, NULL, 't'},
	    {"timeout-ms", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	*o = (struct dlq_opts){
	    .b =
		{
		    .topic      = "mrdlqbench",
		    .count      = 200000,
		    .size       = 100,
		    .partitions = 4,
		    .keys       = 1000,
		    .cases      = CASE_KEY,
		    .repeat     = 3,
		    .batch      = 1000,
		    .fetchers   = 4,
		    .timeout_ms = 60000,
		},
	    .attempts           = 5,
	    .backoff_initial_ms = 50,
	    .backoff_max_ms     = 1000,
	    .multiplier         = 2,
	    .jitter             = 0.2,
	    .variants           = {V_CLEAN, V_POISON},
	    .nvariants          = 2,
	};
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->b.brokers = optarg;
			break;
		case 'u':
			o->b.url = optarg;
			break;
		case 'M':
			o->mrd_pid = atoi(optarg);
			break;
		case 'n':
			o->b.count = atol(optarg);
			break;
		case 's':
			o->b.size = (size_t)atol(optarg);
			break;
		case 'p':
			o->b.partitions = atoi(optarg);
			break;
		case 'K':
			o->b.keys = atoi(optarg);
			break;
		case 'v':
			if (dlq__parse_variants(optarg, o) != 0)
				return -1;
			break;
		case 'r':
			o->b.repeat = atoi(optarg);
			break;
		case 'B':
			o->b.batch = atoi(optarg);
			break;
		case 'F':
			o->b.fetchers = atoi(optarg);
			break;
		case 'a':
			o->attempts = atoi(optarg);
			break;
		case 'o':
			if (sscanf(optarg, "%d-%d", &o->backoff_initial_ms,
				   &o->backoff_max_ms) != 2)
				return -1;
			break;
		case 'x':
			o->multiplier = atof(optarg);
			break;
		case 'j':
			o->jitter = atof(optarg);
			break;
		case 't':
			o->b.topic = optarg;
			break;
		case 'T':
			o->b.timeout_ms = atoi(optarg);
			break;
		case 'h':
			dlq_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc || o->b.count < 1 || o->b.size > 1024 * 1024 ||
	    o->b.partitions < 1 || o->b.keys < 1 || o->b.repeat < 1 ||
	    o->b.repeat > BENCH_RUNS_MAX || o->b.batch < 1 ||
	    o->b.batch > 100000 || o->b.fetchers < 1 ||
	    o->b.fetchers > BENCH_FETCHERS_MAX || o->attempts < 1 ||
	    o->attempts > 1000 || o->b.timeout_ms < 1)
		return -1;
	if (o->b.brokers == NULL || o->b.url == NULL) {
		fprintf(stderr, "dlq_bench: --brokers and --url are required "
				"(mailroomd creates the topics)\n");
		return -1;
	}
	return 0;
}

