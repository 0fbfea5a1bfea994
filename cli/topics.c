#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static void
topics__usage(FILE *f)
{
	fprintf(f, "usage: mailroom topics create NAME [--partitions N] "
		   "[--replication R] [--config K=V]... [--json]\n"
		   "       mailroom topics list [--json]\n"
		   "       mailroom topics describe NAME [--json]\n"
		   "       mailroom topics read NAME --partition P "
		   "[--offset O] [--max N] [--json]\n"
		   "On real Kafka, create sets the topic's max.message.bytes "
		   "to fit mailroomd's\nproducer.message_max_bytes unless "
		   "--config max.message.bytes=N is given. read prints a "
		   "partition's records from\nan offset (its start by "
		   "default) to its end as found then, at most N\n(default "
		   "1000): offset, key, payload, tab-separated (base64: "
		   "where not text).\n");
}

/* Option \p opt of topics \p sub: its argument \p arg, a whole number
 * from \p min to \p max in decimal digits, into *out. @returns CLI_OK, or
 * CLI_USAGE having said on stderr what the option wants. */
static int
topics__number(const char *sub, const char *opt, const char *arg,
	       long long min, long long max, long long *out)
{
	char     *end;
	long long v;

	// strtoll alone would take "", " 1", "+1", "-1" and "1x".
	errno = 0;
	v     = strtoll(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno == ERANGE ||
	    v < min || v > max) {
		if (max == LLONG_MAX)
			fprintf(stderr,
				"mailroom: topics %s: %s wants a whole number "
				">= %lld, not \"%s\"\n",
				sub, opt, min, arg);
		else
			fprintf(stderr,
				"mailroom: topics %s: %s wants a whole number "
				"from %lld to %lld, not \"%s\"\n",
				sub, opt, min, max, arg);
		return CLI_USAGE;
	}
	*out = v;
	return CLI_OK;
}

/* Send \p req; print the reply: JSON with --json, else through \p show. */
static int
topics__call(const struct cli_common *co, json_t *req, bool json,
	     void (*show)(json_t *rep))
{
	mr_client *c;
	char      *body = json_dumps(req, JSON_COMPACT), *text = NULL;
	json_t    *rep;
	int        rc;

	json_decref(req);
	if (body == NULL)
		return CLI_REFUSED;
	if (cli_connect(co, &c) != MR_OK) {
		free(body);
		return CLI_UNREACHABLE;
	}
	rc = mr_admin(c, body, &text);
	mr_client_free(c);
	free(body);
	if (rc != MR_OK) {
		cli_report("topics", rc);
		return cli_exit_refused(rc);
	}
	rep = json_loads(text, 0, NULL);
	if (!json_is_true(json_object_get(rep, "ok"))) {
		if (json)
			printf("%s\n", text);
		fprintf(stderr, "mailroom: topics: %s: %s\n",
			json_string_value(json_object_get(rep, "error")),
			json_string_value(json_object_get(rep, "message")));
		rc = CLI_REFUSED;
	} else if (json) {
		printf("%s\n", text);
		rc = CLI_OK;
	} else {
		show(rep);
		rc = CLI_OK;
	}
	json_decref(rep);
	free(text);
	return rc;
}

static void
topics__show_list(json_t *rep)
{
	json_t *t;
	size_t  i;

	json_array_foreach(json_object_get(rep, "topics"), i, t)
		printf("%s\t%lld partitions\n",
		       json_string_value(json_object_get(t, "name")),
		       (long long)json_integer_value(
			   json_object_get(t, "partitions")));
}

static void
topics__show_describe(json_t *rep)
{
	json_t     *p, *v;
	size_t      i, j;
	const char *k;

	printf("topic %s: %lld partitions, replication %lld\n",
	       json_string_value(json_object_get(rep, "topic")),
	       (long long)json_integer_value(
		   json_object_get(rep, "partition_count")),
	       (long long)json_integer_value(
		   json_object_get(rep, "replication")));
	json_array_foreach(json_object_get(rep, "partitions"), i, p)
	{
		printf("  partition %lld leader %lld replicas",
		       (long long)json_integer_value(
			   json_object_get(p, "partition")),
		       (long long)json_integer_value(
			   json_object_get(p, "leader")));
		json_array_foreach(json_object_get(p, "replicas"), j, v)
			printf(" %lld", (long long)json_integer_value(v));
		printf(" isr");
		json_array_foreach(json_object_get(p, "isr"), j, v)
			printf(" %lld", (long long)json_integer_value(v));
		printf("\n");
	}
	json_object_foreach(json_object_get(rep, "config"), k, v)
		printf("  %s=%s\n", k, json_string_value(v));
}

/* A record's key or payload: text as is, else "base64:" and the base64. */
static void
topics__bytes(json_t *rec, const char *name)
{
	char        enc[32];
	const char *e;

	snprintf(enc, sizeof(enc), "%s_encoding", name);
	e = json_string_value(json_object_get(rec, enc));
	if (json_is_null(json_object_get(rec, name)) || e == NULL)
		printf("(null)");
	else
		printf("%s%s", strcmp(e, "base64") == 0 ? "base64:" : "",
		       json_string_value(json_object_get(rec, name)));
}

static void
topics__show_read(json_t *rep)
{
	json_t *r;
	size_t  i;

	json_array_foreach(json_object_get(rep, "records"), i, r)
	{
		printf("%lld\t", (long long)json_integer_value(
					 json_object_get(r, "offset")));
		topics__bytes(r, "key");
		printf("\t");
		topics__bytes(r, "payload");
		printf("\n");
	}
	fprintf(stderr,
		"mailroom: topics read: %zu records; next offset %lld, high "
		"watermark %lld%s\n",
		json_array_size(json_object_get(rep, "records")),
		(long long)json_integer_value(json_object_get(rep, "next")),
		(long long)json_integer_value(
		    json_object_get(rep, "high_watermark")),
		json_is_true(json_object_get(rep, "end"))
		    ? ""
		    : " (more: --offset the next one)");
}

static void
topics__show_create(json_t *rep)
{
	long long   partitions, replication;
	const char *k;
	json_t     *v;

	partitions  = json_integer_value(json_object_get(rep, "partitions"));
	replication = json_integer_value(json_object_get(rep, "replication"));
	printf("created topic %s: ",
	       json_string_value(json_object_get(rep, "topic")));
	if (partitions > 0)
		printf("%lld partitions", partitions);
	else
		printf("the cluster's default partitions");
	if (replication > 0)
		printf(", replication %lld", replication);
	else
		printf(", the cluster's default replication");
	json_object_foreach(json_object_get(rep, "config"), k, v)
		printf(", %s=%s", k, json_string_value(v));
	printf("\n");
}

int
cli_topics(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"partitions", required_argument, NULL, 'p'},
	    {"replication", required_argument, NULL, 'r'},
	    {"config", required_argument, NULL, 'c'},
	    {"partition", required_argument, NULL, 'P'},
	    {"offset", required_argument, NULL, 'o'},
	    {"max", required_argument, NULL, 'm'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *sub;
	json_t     *req, *cfg = json_object();
	bool        json = false;
	int         ch, rc = CLI_OK;
	long long   partitions = -1, replication = -1; /* -1: the cluster's */
	long long   partition = -1, offset = 0, max = 1000;
	char       *eq;

	if (argc < 2) {
		topics__usage(stderr);
		json_decref(cfg);
		return CLI_USAGE;
	}
	sub = argv[1];
	argc--;
	argv++;
	optind = 0; // GNU getopt: re-initialise for the command's own options
	while ((ch = getopt_long(argc, argv, "p:r:c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			rc = topics__number(sub, "--partitions", optarg, 1,
					    INT_MAX, &partitions);
			break;
		case 'r':
			rc = topics__number(sub, "--replication", optarg, 1,
					    INT_MAX, &replication);
			break;
		case 'c':
			if ((eq = strchr(optarg, '=')) == NULL) {
				fprintf(stderr, "mailroom: --config takes "
						"KEY=VALUE\n");
				json_decref(cfg);
				return CLI_USAGE;
			}
			*eq = '\0';
			json_object_set_new(cfg, optarg, json_string(eq + 1));
			break;
		case 'P':
			rc = topics__number(sub, "--partition", optarg, 0,
					    INT32_MAX, &partition);
			break;
		case 'o':
			rc = topics__number(sub, "--offset", optarg, 0,
					    LLONG_MAX, &offset);
			break;
		case 'm':
			rc = topics__number(sub, "--max", optarg, 1, LLONG_MAX,
					    &max);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			topics__usage(stdout);
			json_decref(cfg);
			return CLI_OK;
		default:
			topics__usage(stderr);
			json_decref(cfg);
			return CLI_USAGE;
		}
		if (rc != CLI_OK) {
			json_decref(cfg);
			return rc;
		}
	}
	if (strcmp(sub, "list") == 0 && optind == argc) {
		json_decref(cfg);
		req = json_pack("{s:s}", "op", "topics.list");
		return topics__call(co, req, json, topics__show_list);
	}
	if (strcmp(sub, "describe") == 0 && optind + 1 == argc) {
		json_decref(cfg);
		req = json_pack("{s:s, s:s}", "op", "topics.describe", "topic",
				argv[optind]);
		return topics__call(co, req, json, topics__show_describe);
	}
	if (strcmp(sub, "read") == 0 && optind + 1 == argc) {
		json_decref(cfg);
		if (partition < 0) {
			fprintf(stderr, "mailroom: topics read needs "
					"--partition P (0 or more)\n");
			return CLI_USAGE;
		}
		req = json_pack("{s:s, s:s, s:I, s:I, s:I}", "op",
				"topics.read", "topic", argv[optind],
				"partition", (json_int_t)partition, "offset",
				(json_int_t)offset, "max_records",
				(json_int_t)max);
		return topics__call(co, req, json, topics__show_read);
	}
	if (strcmp(sub, "create") == 0 && optind + 1 == argc) {
		req = json_pack("{s:s, s:s, s:I, s:I, s:o}", "op",
				"topics.create", "topic", argv[optind],
				"partitions", (json_int_t)partitions,
				"replication", (json_int_t)replication,
				"config", cfg);
		return topics__call(co, req, json, topics__show_create);
	}
	json_decref(cfg);
	topics__usage(stderr);
	return CLI_USAGE;
}
