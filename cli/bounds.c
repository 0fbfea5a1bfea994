/*
 * mailroom bounds: backpressure's bounds per topic (ADMIN bounds.list,
 * bounds.set, bounds.clear; docs/PROTOCOL.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static void
bounds__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom bounds [--json] [TOPIC]\n"
		"       mailroom bounds set TOPIC [--max-lag N] [--resume-lag N]\n"
		"                [--max-time-lag MS] [--resume-time-lag MS]\n"
		"                [--policy hold|reject] [--block MS] "
		"[--group G]... [--json]\n"
		"       mailroom bounds clear TOPIC [--json]\n"
		"A bound throttles publishes to a partition whose consumer "
		"groups lag\n"
		"beyond it (records and/or time): hold waits up to --block "
		"(5000 ms),\n"
		"then refuses; reject refuses at once (MR_EBUSY, with a "
		"retry-after).\n"
		"The partition opens again at or below the resume marks "
		"(default: half).\n"
		"Groups: those named, else every group this mailroomd serves "
		"on TOPIC.\n");
}

/* A non-negative integer option into \p req's \p field. */
static int
bounds__num(json_t *req, const char *field, const char *flag, const char *v)
{
	char     *end;
	long long x = strtoll(v, &end, 10);

	if (*v == '\0' || *end != '\0' || x < 0) {
		fprintf(stderr,
			"mailroom bounds: %s takes an integer >= 0, not "
			"'%s'\n",
			flag, v);
		return CLI_USAGE;
	}
	json_object_set_new(req, field, json_integer(x));
	return CLI_OK;
}

static void
bounds__print(json_t *b)
{
	json_t     *parts = json_object_get(b, "partitions"), *p, *g;
	size_t      i, held = 0;
	long long   ml  = json_integer_value(json_object_get(b, "max_lag"));
	long long   mt  = json_integer_value(
	      json_object_get(b, "max_time_lag_ms"));

	printf("%s: ", json_string_value(json_object_get(b, "topic")));
	if (ml > 0)
		printf("max_lag %lld (resume %lld) ", ml,
		       (long long)json_integer_value(
			   json_object_get(b, "resume_lag")));
	if (mt > 0)
		printf("max_time_lag %lld ms (resume %lld ms) ", mt,
		       (long long)json_integer_value(
			   json_object_get(b, "resume_time_lag_ms")));
	printf("policy %s", json_string_value(json_object_get(b, "policy")));
	if (strcmp(json_string_value(json_object_get(b, "policy")), "hold") ==
	    0)
		printf(" (block %lld ms)",
		       (long long)json_integer_value(
			   json_object_get(b, "block_ms")));
	printf("; groups:");
	if (json_array_size(json_object_get(b, "counted_groups")) == 0)
		printf(" none yet");
	json_array_foreach (json_object_get(b, "counted_groups"), i, g)
		printf(" %s", json_string_value(g));
	if (json_array_size(json_object_get(b, "groups")) == 0)
		printf(" (served here)");
	putchar('\n');
	json_array_foreach (parts, i, p) {
		const char *st = json_string_value(json_object_get(p, "state"));

		if (strcmp(st, "open") == 0)
			continue;
		held++;
		printf("  partition %lld: %s, lag %lld, time lag %lld ms, "
		       "retry after %lld ms\n",
		       (long long)json_integer_value(
			   json_object_get(p, "partition")),
		       st,
		       (long long)json_integer_value(json_object_get(p, "lag")),
		       (long long)json_integer_value(
			   json_object_get(p, "time_lag_ms")),
		       (long long)json_integer_value(
			   json_object_get(p, "retry_after_ms")));
	}
	printf("  %zu of %zu partitions throttled\n", held,
	       json_array_size(parts));
}

static int
bounds__set(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"max-lag", required_argument, NULL, 'm'},
	    {"resume-lag", required_argument, NULL, 'r'},
	    {"max-time-lag", required_argument, NULL, 'M'},
	    {"resume-time-lag", required_argument, NULL, 'R'},
	    {"policy", required_argument, NULL, 'p'},
	    {"block", required_argument, NULL, 'b'},
	    {"group", required_argument, NULL, 'g'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	json_t *req = json_pack("{s:s}", "op", "bounds.set"), *rep;
	json_t *groups = json_array();
	bool    json = false;
	int     c, rc = CLI_OK;

	optind = 0;
	while (rc == CLI_OK &&
	       (c = getopt_long(argc, argv, "m:r:M:R:p:b:g:jh", opts,
				NULL)) != -1) {
		switch (c) {
		case 'm':
			rc = bounds__num(req, "max_lag", "--max-lag", optarg);
			break;
		case 'r':
			rc = bounds__num(req, "resume_lag", "--resume-lag",
					 optarg);
			break;
		case 'M':
			rc = bounds__num(req, "max_time_lag_ms",
					 "--max-time-lag", optarg);
			break;
		case 'R':
			rc = bounds__num(req, "resume_time_lag_ms",
					 "--resume-time-lag", optarg);
			break;
		case 'b':
			rc = bounds__num(req, "block_ms", "--block", optarg);
			break;
		case 'p':
			json_object_set_new(req, "policy", json_string(optarg));
			break;
		case 'g':
			json_array_append_new(groups, json_string(optarg));
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			bounds__usage(stdout);
			rc = -1;
			break;
		default:
			rc = CLI_USAGE;
			break;
		}
	}
	if (rc == CLI_OK && optind != argc - 1) {
		fprintf(stderr, "mailroom bounds set: name one TOPIC\n");
		rc = CLI_USAGE;
	}
	if (rc != CLI_OK) {
		json_decref(req);
		json_decref(groups);
		if (rc == CLI_USAGE)
			bounds__usage(stderr);
		return rc < 0 ? CLI_OK : rc;
	}
	json_object_set_new(req, "topic", json_string(argv[optind]));
	if (json_array_size(groups) > 0)
		json_object_set(req, "groups", groups);
	json_decref(groups);
	rc = cli_dlq_request(co, "bounds set", req, json, &rep);
	if (rc == CLI_OK && !json) {
		printf("bound set on ");
		bounds__print(json_object_get(rep, "bound"));
	}
	json_decref(rep);
	return rc;
}

int
cli_bounds(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	json_t *req, *rep, *b;
	bool    json = false;
	size_t  i;
	int     c, rc;

	if (argc >= 2 && strcmp(argv[1], "set") == 0)
		return bounds__set(co, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "clear") == 0) {
		json = argc == 4 && strcmp(argv[3], "--json") == 0;
		if (argc != 3 && !json) {
			fprintf(stderr, "mailroom bounds clear: name one "
					"TOPIC\n");
			bounds__usage(stderr);
			return CLI_USAGE;
		}
		rc = cli_dlq_request(co, "bounds clear",
				     json_pack("{s:s, s:s}", "op",
					       "bounds.clear", "topic",
					       argv[2]),
				     json, &rep);
		if (rc == CLI_OK && !json)
			printf("bound on %s cleared\n", argv[2]);
		json_decref(rep);
		return rc;
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			bounds__usage(stdout);
			return CLI_OK;
		default:
			bounds__usage(stderr);
			return CLI_USAGE;
		}
	}
	if (argc - optind > 1) {
		bounds__usage(stderr);
		return CLI_USAGE;
	}
	req = json_pack("{s:s}", "op", "bounds.list");
	if (optind < argc)
		json_object_set_new(req, "topic", json_string(argv[optind]));
	rc = cli_dlq_request(co, "bounds", req, json, &rep);
	if (rc != CLI_OK || json) {
		json_decref(rep);
		return rc;
	}
	if (json_array_size(json_object_get(rep, "bounds")) == 0)
		printf("no bounds%s%s\n", optind < argc ? " on " : "",
		       optind < argc ? argv[optind] : "");
	json_array_foreach (json_object_get(rep, "bounds"), i, b)
		bounds__print(b);
	json_decref(rep);
	return CLI_OK;
}
