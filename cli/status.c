#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static long long
status__int(const json_t *o, const char *name)
{
	return (long long)json_integer_value(json_object_get(o, name));
}

/* One subscription: its flow, then its breaker when not closed. */
static void
status__group(const json_t *g)
{
	const json_t *d       = json_object_get(g, "dead_letter");
	const char   *breaker = json_string_value(json_object_get(d, "breaker"));

	printf("  group %s (%s): %lld sessions, %lld buffered, %lld in "
	       "flight, %lld backing off; %lld acked, %lld failed, %lld "
	       "quarantined\n",
	       json_string_value(json_object_get(g, "group")),
	       json_string_value(json_object_get(g, "mode")),
	       status__int(g, "sessions"), status__int(g, "buffered"),
	       status__int(g, "inflight"), status__int(g, "backoff"),
	       status__int(g, "acked"), status__int(g, "failed"),
	       status__int(d, "quarantined"));
	if (breaker != NULL && strcmp(breaker, "closed") != 0)
		printf("    breaker %s: %s (resume: mailroom dlq resume %s)\n",
		       breaker,
		       json_string_value(json_object_get(d, "reason")),
		       json_string_value(json_object_get(g, "group")));
	if (status__int(d, "dlq_errors") > 0)
		printf("    %lld dead-letter writes failed (see the log)\n",
		       status__int(d, "dlq_errors"));
}

int
cli_status(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	bool        json = false;
	mr_client  *c;
	char       *text = NULL;
	json_t     *st, *k, *l;
	json_error_t jerr;
	size_t      i;
	int         ch, rc;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'j') {
			json = true;
		} else {
			fprintf(ch == 'h' ? stdout : stderr,
				"usage: mailroom status [--json]\n");
			return ch == 'h' ? CLI_OK : CLI_USAGE;
		}
	}
	if (cli_connect(co, &c) != MR_OK)
		return CLI_UNREACHABLE;
	rc = mr_status(c, &text);
	mr_client_free(c);
	if (rc != MR_OK) {
		cli_report("status", rc);
		return cli_exit_for(rc);
	}
	if (json) {
		printf("%s\n", text);
		free(text);
		return CLI_OK;
	}
	if ((st = json_loads(text, 0, &jerr)) == NULL) {
		fprintf(stderr, "mailroom: status: unreadable reply: %s\n",
			jerr.text);
		free(text);
		return CLI_REFUSED;
	}
	free(text);
	k = json_object_get(st, "kafka");
	printf("mailroomd %s (protocol %lld), up %llds\n",
	       json_string_value(json_object_get(st, "version")),
	       (long long)json_integer_value(json_object_get(st, "protocol")),
	       (long long)json_integer_value(json_object_get(st, "uptime_s")));
	printf("kafka:     %s (%s)\n",
	       json_string_value(json_object_get(k, "bootstrap")),
	       json_is_true(json_object_get(k, "embedded"))
		   ? "embedded, in memory"
		   : "external");
	if (json_is_false(json_object_get(k, "reachable")))
		printf("KAFKA DOWN: unreachable for %lld s: %s; publishes wait "
		       "for it, then fail with MR_EUNAVAIL\n",
		       (long long)json_integer_value(
			   json_object_get(k, "unreachable_ms")) /
			   1000,
		       json_string_value(json_object_get(k, "error")));
	if (json_object_get(k, "warning"))
		printf("WARNING:   %s\n",
		       json_string_value(json_object_get(k, "warning")));
	json_array_foreach(json_object_get(st, "listeners"), i, l)
		printf("listening: %s\n", json_string_value(l));
	k = json_object_get(st, "publish");
	printf("published: %lld confirmed, %lld failed, %lld duplicates\n",
	       (long long)json_integer_value(json_object_get(k, "confirmed")),
	       (long long)json_integer_value(json_object_get(k, "failed")),
	       (long long)json_integer_value(json_object_get(k, "duplicates")));
	if ((k = json_object_get(st, "consume")) != NULL)
		printf("consumers: %lld subscriptions, %lld sessions\n",
		       (long long)json_integer_value(
			   json_object_get(k, "subscriptions")),
		       (long long)json_integer_value(
			   json_object_get(k, "sessions")));
	json_array_foreach(json_object_get(k, "groups"), i, l)
		status__group(l);
	if ((k = json_object_get(st, "lag")) != NULL)
	{
		printf("lag:       %lld groups on %lld partitions, at most %lld "
		       "records behind (mailroom lag)",
		       status__int(k, "groups"), status__int(k, "partitions"),
		       status__int(k, "max_lag"));
		if (status__int(k, "failures") > 0)
			printf("; %lld of %lld refreshes failed (see the log)",
			       status__int(k, "failures"),
			       status__int(k, "refreshes"));
		putchar('\n');
	}
	if ((k = json_object_get(st, "backpressure")) != NULL &&
	    status__int(k, "bounds") > 0)
		printf("backpressure: %lld bounds, %lld partitions throttled; "
		       "%lld messages held, %lld refused (mailroom bounds)\n",
		       status__int(k, "bounds"), status__int(k, "throttled"),
		       status__int(k, "held"), status__int(k, "refused"));
	json_decref(st);
	return CLI_OK;
}

int
cli_admin(const struct cli_common *co, int argc, char **argv)
{
	mr_client *c;
	char      *text = NULL;
	json_t    *rep;
	int        rc;

	if (argc != 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc == 2 ? stdout : stderr,
			"usage: mailroom admin JSON\n"
			"  e.g. mailroom admin '{\"op\":\"topics.list\"}'\n");
		return argc == 2 ? CLI_OK : CLI_USAGE;
	}
	if (cli_connect(co, &c) != MR_OK)
		return CLI_UNREACHABLE;
	rc = mr_admin(c, argv[1], &text);
	mr_client_free(c);
	if (rc != MR_OK) {
		cli_report("admin", rc);
		return cli_exit_refused(rc);
	}
	printf("%s\n", text);
	rep = json_loads(text, 0, NULL);
	rc  = json_is_true(json_object_get(rep, "ok")) ? CLI_OK : CLI_REFUSED;
	json_decref(rep);
	free(text);
	return rc;
}
