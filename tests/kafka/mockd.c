/*
 * mailroom_mockd: librdkafka's mock cluster in a process of its own, so
 * that a test can kill -9 mailroomd (pointed at it with --brokers) without
 * killing the data.
 *
 * usage: mailroom_mockd [--brokers N] [--ttl SECONDS]
 *                       [--topic NAME:PARTITIONS]... [BOOTSTRAP_FILE]
 *
 * Prints the bootstrap servers on stdout as one line, and writes the same
 * line to BOOTSTRAP_FILE (atomically: a temporary file, then rename) once
 * the cluster and its topics are ready. Runs until SIGTERM or SIGINT, or
 * until the --ttl watchdog (default 900 s) expires, so that a mock left
 * behind by a crashed test run stops on its own. Exits 0 on a signal, 3
 * when the watchdog fired, 1 when the cluster cannot start, 2 on a usage
 * error.
 *
 * The mock keeps about the last 5 MB of each partition (librdkafka 2.0.2)
 * and implements no CreateTopics: --topic creates a topic through the mock's
 * own API (any metadata request auto-creates one with 4 partitions).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t mockd__stop;

static void
mockd__on_signal(int sig)
{
	(void)sig;
	mockd__stop = 1;
}

static void
mockd__quiet_log(const rd_kafka_t *rk, int level, const char *fac,
		 const char *buf)
{
	(void)rk;
	(void)level;
	(void)fac;
	(void)buf;
}

static void
mockd__usage(FILE *f)
{
	fprintf(f, "usage: mailroom_mockd [--brokers N] [--ttl SECONDS] "
		   "[--topic NAME:PARTITIONS]... [BOOTSTRAP_FILE]\n");
}

/* @returns 0 and the value in *out, or -1 when \p s is not in [lo, hi]. */
static int
mockd__parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long  v;

	errno = 0;
	v     = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
mockd__write_bootstrap(const char *path, const char *bootstrap)
{
	char  tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	if (fprintf(f, "%s\n", bootstrap) < 0 || fclose(f) != 0) {
		remove(tmp);
		return -1;
	}
	return rename(tmp, path);
}

static int
mockd__create_topic(rd_kafka_mock_cluster_t *mc, const char *spec)
{
	char                name[256];
	const char         *colon = strrchr(spec, ':');
	long                parts;
	size_t              len;
	rd_kafka_resp_err_t err;

	if (colon == NULL || (len = (size_t)(colon - spec)) == 0 ||
	    len >= sizeof(name) ||
	    mockd__parse_int(colon + 1, 1, 10000, &parts) != 0) {
		fprintf(stderr,
			"mailroom_mockd: --topic takes NAME:PARTITIONS, "
			"not '%s'\n",
			spec);
		return 2;
	}
	memcpy(name, spec, len);
	name[len] = '\0';
	err = rd_kafka_mock_topic_create(mc, name, (int)parts, 1);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
		fprintf(stderr, "mailroom_mockd: cannot create topic %s: %s\n",
			name, rd_kafka_err2str(err));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"brokers", required_argument, NULL, 'b'},
	    {"ttl", required_argument, NULL, 't'},
	    {"topic", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	rd_kafka_conf_t         *conf;
	rd_kafka_t              *rk;
	rd_kafka_mock_cluster_t *mc;
	struct sigaction         sa;
	struct timespec          start, now;
	const char              *bootstrap, *file = NULL;
	const char             **topics;
	char                     errstr[512];
	long                     brokers = 1, ttl = 900;
	int                      ntopics = 0, c, rc = 0;

	if ((topics = calloc((size_t)argc, sizeof(*topics))) == NULL)
		return 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (mockd__parse_int(optarg, 1, 16, &brokers) != 0) {
				fprintf(stderr, "mailroom_mockd: --brokers "
						"takes 1 to 16\n");
				return 2;
			}
			break;
		case 't':
			if (mockd__parse_int(optarg, 1, 86400, &ttl) != 0) {
				fprintf(stderr, "mailroom_mockd: --ttl takes "
						"1 to 86400 seconds\n");
				return 2;
			}
			break;
		case 'T':
			topics[ntopics++] = optarg;
			break;
		case 'h':
			mockd__usage(stdout);
			return 0;
		default:
			mockd__usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		mockd__usage(stderr);
		return 2;
	}
	if (optind < argc)
		file = argv[optind];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = mockd__on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	// rd_kafka_mock_cluster_new needs a client handle to live in.
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, mockd__quiet_log);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "mailroom_mockd: %s\n", errstr);
		return 1;
	}
	if ((mc = rd_kafka_mock_cluster_new(rk, (int)brokers)) == NULL) {
		fprintf(stderr,
			"mailroom_mockd: cannot start the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	for (int i = 0; i < ntopics && rc == 0; i++)
		rc = mockd__create_topic(mc, topics[i]);
	bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
	if (rc == 0 && file != NULL &&
	    mockd__write_bootstrap(file, bootstrap) != 0) {
		fprintf(stderr, "mailroom_mockd: cannot write %s: %s\n", file,
			strerror(errno));
		rc = 1;
	}
	if (rc == 0) {
		printf("%s\n", bootstrap);
		fflush(stdout);
	}

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (rc == 0 && !mockd__stop) {
		struct timespec tick = {0, 100 * 1000 * 1000};

		nanosleep(&tick, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= ttl) {
			fprintf(stderr,
				"mailroom_mockd: --ttl of %ld s expired, "
				"stopping\n",
				ttl);
			rc = 3;
		}
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	free(topics);
	return rc;
}
