/*
 * mailroom lag: consumer lag per group, topic and partition (ADMIN
 * lag.list, docs/PROTOCOL.md): a table, the ADMIN answer with --json, and
 * with --watch the same every lag.interval_ms, in place on a terminal (a
 * block of plain lines per refresh otherwise) until Ctrl-C, which exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "proto/frame.h"

static volatile sig_atomic_t lag__stop;

static void
lag__on_signal(int sig)
{
	(void)sig;
	lag__stop = 1;
}

static void
lag__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom lag [--json] [--watch] [--group G] [TOPIC]\n"
		"  consumer lag per group, topic and partition: END (the "
		"high watermark),\n"
		"  COMMITTED (the group's offset; - when it has none: LAG is "
		"then from the\n"
		"  topic's start), LAG = END - COMMITTED records, and TIME LAG, "
		"the age of\n"
		"  the oldest unconsumed record (estimated to about "
		"lag.interval_ms, and\n"
		"  counted from when mailroomd first saw the partition).\n"
		"  Without --group: the groups mailroomd serves and those asked "
		"about in\n"
		"  the last minute; --group G: any group of the cluster (then "
		"tracked for\n"
		"  a minute). TOPIC: only that topic.\n"
		"  --json   the ADMIN lag.list answer as it is (one per line "
		"with --watch)\n"
		"  --watch  again every lag.interval_ms, in place on a "
		"terminal; Ctrl-C ends\n"
		"exit codes: 0 done (--watch: Ctrl-C), 1 refused (no such "
		"topic), 2 usage,\n"
		"3 mailroomd unreachable\n");
}

static long long
lag__int(const json_t *o, const char *name)
{
	return (long long)json_integer_value(json_object_get(o, name));
}

/* "12", or "-" for null. */
static const char *
lag__num(const json_t *o, const char *name, char *buf, size_t n)
{
	const json_t *v = json_object_get(o, name);

	if (!json_is_integer(v))
		return "-";
	snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	return buf;
}

/* "850ms", "12.3s", "4m05s", "2h07m", or "-" for null. */
static const char *
lag__duration(const json_t *v, char *buf, size_t n)
{
	long long ms;

	if (!json_is_integer(v))
		return "-";
	ms = (long long)json_integer_value(v);
	if (ms < 1000)
		snprintf(buf, n, "%lldms", ms);
	else if (ms < 60000)
		snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, n, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
	else
		snprintf(buf, n, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
	return buf;
}

static int
lag__width(const json_t *rows, const char *name, int min)
{
	size_t  i;
	json_t *r;
	int     w = min;

	json_array_foreach(rows, i, r)
	{
		int n = (int)json_string_length(json_object_get(r, name));

		if (n > w)
			w = n;
	}
	return w;
}

/* A row's bound and throttle state as "  BOUND  THROTTLE" columns: the
 * record bound, the time bound, or both; "-" when its topic has none. */
static void
lag__bound(const json_t *r, char *buf, size_t n)
{
	const json_t *b = json_object_get(r, "bound");
	long long     ml, mt;
	char          rec[24] = "", tm[24] = "", both[64];

	if (!json_is_object(b)) {
		snprintf(buf, n, "  %-14s  %s", "-", "-");
		return;
	}
	ml = json_integer_value(json_object_get(b, "max_lag"));
	mt = json_integer_value(json_object_get(b, "max_time_lag_ms"));
	if (ml > 0)
		snprintf(rec, sizeof(rec), "%lld", ml);
	if (mt > 0)
		lag__duration(json_object_get(b, "max_time_lag_ms"), tm,
			      sizeof(tm));
	snprintf(both, sizeof(both), "%s%s%s", rec, ml > 0 && mt > 0 ? "/" : "",
		 tm);
	snprintf(buf, n, "  %-14s  %s", both,
		 json_string_value(json_object_get(r, "throttle")));
}

static void
lag__print(const json_t *rep)
{
	const json_t *rows = json_object_get(rep, "partitions");
	const json_t *r;
	size_t        i;
	int           gw = lag__width(rows, "group", 5);
	int           tw = lag__width(rows, "topic", 5);
	char          b1[32], b2[32], b3[32], b4[32], b5[96];
	bool          bounds = false;

	json_array_foreach(rows, i, r)
		bounds |= json_is_object(json_object_get(r, "bound"));
	printf("%-*s  %-*s  %9s  %12s  %12s  %10s  %9s%s\n", gw, "GROUP", tw,
	       "TOPIC", "PARTITION", "END", "COMMITTED", "LAG", "TIME LAG",
	       bounds ? "  BOUND           THROTTLE" : "");
	json_array_foreach(rows, i, r)
	{
		const char *st = json_string_value(json_object_get(r, "state"));

		if (bounds)
			lag__bound(r, b5, sizeof(b5));
		printf("%-*s  %-*s  %9lld  %12s  %12s  %10s  %9s%s%s\n", gw,
		       json_string_value(json_object_get(r, "group")), tw,
		       json_string_value(json_object_get(r, "topic")),
		       lag__int(r, "partition"),
		       lag__num(r, "end", b1, sizeof(b1)),
		       lag__num(r, "committed", b2, sizeof(b2)),
		       lag__num(r, "lag", b3, sizeof(b3)),
		       lag__duration(json_object_get(r, "time_lag_ms"), b4,
				     sizeof(b4)),
		       bounds ? b5 : "",
		       st != NULL && strcmp(st, "no_commit") == 0
			   ? "  (no commit)"
		       : st != NULL && strcmp(st, "unknown") == 0
			   ? "  (unknown)"
			   : "");
	}
	json_array_foreach(json_object_get(rep, "groups"), i, r)
	{
		const char *st = json_string_value(json_object_get(r, "state"));
		const char *g  = json_string_value(json_object_get(r, "group"));

		if (st != NULL && strcmp(st, "no_offsets") == 0)
			printf("group %s: no committed offsets%s\n", g,
			       json_array_size(rows) > 0 ? " on these topics"
							 : "");
		else if (st != NULL && strcmp(st, "error") == 0)
			printf("group %s: Kafka did not answer: %s\n", g,
			       json_string_value(json_object_get(r, "error")));
	}
	if (json_array_size(rows) == 0 &&
	    json_array_size(json_object_get(rep, "groups")) == 0)
		printf("no group tracked (mailroomd serves none; ask with "
		       "--group G)\n");
}

/* One lag.list on \p c. @returns the exit code, *rep (new) on CLI_OK. */
static int
lag__request(mr_client *c, const json_t *req, bool json, json_t **rep)
{
	char *body = json_dumps(req, JSON_COMPACT), *text = NULL;
	int   rc;

	*rep = NULL;
	if (body == NULL) {
		fprintf(stderr, "mailroom: lag: out of memory\n");
		return CLI_REFUSED;
	}
	rc = mr_admin(c, body, &text);
	free(body);
	if (rc != MR_OK) {
		cli_report("lag", rc);
		return cli_exit_refused(rc);
	}
	*rep = json_loads(text, 0, NULL);
	if (!json_is_true(json_object_get(*rep, "ok"))) {
		fprintf(stderr, "mailroom: lag: %s: %s\n",
			json_string_value(json_object_get(*rep, "error")),
			json_string_value(json_object_get(*rep, "message")));
		json_decref(*rep);
		*rep = NULL;
		free(text);
		return CLI_REFUSED;
	}
	if (json) {
		printf("%s\n", text);
		fflush(stdout);
	}
	free(text);
	return CLI_OK;
}

/* Sleep \p ms, or less when a signal comes. */
static void
lag__sleep(long long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (!lag__stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
lag__watch(mr_client *c, json_t *req, bool json)
{
	struct sigaction sa;
	bool             tty = !json && isatty(STDOUT_FILENO);
	json_t          *rep;
	int              rc = CLI_OK;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = lag__on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!lag__stop) {
		long long interval;

		if ((rc = lag__request(c, req, json, &rep)) != CLI_OK)
			break;
		// After the first answer, the snapshot as it is: it never
		// waits for Kafka.
		json_object_set_new(req, "refresh", json_false());
		interval = lag__int(rep, "interval_ms");
		if (!json) {
			time_t    t = (time_t)(lag__int(rep, "refreshed_ms") /
					       1000);
			struct tm tm;
			char      when[32];

			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			if (tty)
				fputs("\033[H\033[2J", stdout);
			printf("-- %s, every %.1f s%s\n", when,
			       (double)interval / 1000.0,
			       tty ? " (Ctrl-C ends)" : "");
			lag__print(rep);
			fflush(stdout);
		}
		json_decref(rep);
		lag__sleep(interval > 0 ? interval : 1000);
	}
	return rc;
}

int
cli_lag(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"watch", no_argument, NULL, 'w'},
	    {"group", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	bool       json = false, watch = false;
	json_t    *req  = json_pack("{s:s, s:b}", "op", "lag.list", "refresh", 1);
	json_t    *rep;
	mr_client *c;
	int        ch, rc;

	while ((ch = getopt_long(argc, argv, "jwg:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'g':
			if (*optarg == '\0') {
				fprintf(stderr, "mailroom: lag: --group takes "
						"a group's name, not \"\"\n");
				json_decref(req);
				return CLI_USAGE;
			}
			json_object_set_new(req, "group", json_string(optarg));
			break;
		case 'h':
			lag__usage(stdout);
			json_decref(req);
			return CLI_OK;
		default:
			lag__usage(stderr);
			json_decref(req);
			return CLI_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "mailroom: lag: one TOPIC at most\n");
		lag__usage(stderr);
		json_decref(req);
		return CLI_USAGE;
	}
	if (optind < argc) {
		if (!mri_topic_valid(argv[optind], strlen(argv[optind]))) {
			fprintf(stderr,
				"mailroom: lag: invalid topic '%s': 1-249 of "
				"[a-zA-Z0-9._-]\n",
				argv[optind]);
			json_decref(req);
			return CLI_USAGE;
		}
		json_object_set_new(req, "topic", json_string(argv[optind]));
	}
	if (cli_connect(co, &c) != MR_OK) {
		json_decref(req);
		return CLI_UNREACHABLE;
	}
	if (watch) {
		rc = lag__watch(c, req, json);
	} else {
		rc = lag__request(c, req, json, &rep);
		if (rc == CLI_OK && !json)
			lag__print(rep);
		json_decref(rep);
	}
	mr_client_free(c);
	json_decref(req);
	return rc;
}
