/*
 * mailroom dlq: the dead-letter supervisor's operator commands. For now
 * `resume GROUP`: the tripped breakers of a group's subscriptions on this
 * mailroomd go half-open (ADMIN consumers.resume).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static void
dlq__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom dlq resume [--json] GROUP\n"
		"  resume GROUP   the group's tripped breakers (see mailroom "
		"status) go\n"
		"                 half-open now: one message at a time until "
		"one is acked\n"
		"exit codes: 0 done, 1 refused (no subscription of GROUP on "
		"this mailroomd),\n"
		"2 usage, 3 mailroomd unreachable\n");
}

static int
dlq__resume(const struct cli_common *co, const char *group, bool json)
{
	json_t     *req = json_pack("{s:s, s:s}", "op", "consumers.resume",
				    "group", group);
	char       *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	char       *text = NULL;
	mr_client  *c;
	json_t     *rep;
	int         rc;

	json_decref(req);
	if (body == NULL) {
		fprintf(stderr, "mailroom: dlq: out of memory\n");
		return CLI_REFUSED;
	}
	if (cli_connect(co, &c) != MR_OK) {
		free(body);
		return CLI_UNREACHABLE;
	}
	rc = mr_admin(c, body, &text);
	mr_client_free(c);
	free(body);
	if (rc != MR_OK) {
		cli_report("dlq resume", rc);
		return cli_exit_refused(rc);
	}
	rep = json_loads(text, 0, NULL);
	if (json)
		printf("%s\n", text);
	else if (json_is_true(json_object_get(rep, "ok")))
		printf("group %s: %lld of %lld subscriptions resumed "
		       "(half-open)\n",
		       group,
		       (long long)json_integer_value(
			   json_object_get(rep, "resumed")),
		       (long long)json_integer_value(
			   json_object_get(rep, "subscriptions")));
	else
		fprintf(stderr, "mailroom: dlq resume: %s\n",
			json_string_value(json_object_get(rep, "message")));
	rc = json_is_true(json_object_get(rep, "ok")) ? CLI_OK : CLI_REFUSED;
	json_decref(rep);
	free(text);
	return rc;
}

int
cli_dlq(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	bool json = false;
	int  ch;

	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (ch == 'j') {
			json = true;
		} else {
			dlq__usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? CLI_OK : CLI_USAGE;
		}
	}
	if (optind < argc && strcmp(argv[optind], "resume") == 0) {
		optind++;
		while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
			if (ch == 'j') {
				json = true;
			} else {
				dlq__usage(ch == 'h' ? stdout : stderr);
				return ch == 'h' ? CLI_OK : CLI_USAGE;
			}
		}
		if (optind + 1 == argc && *argv[optind] != '\0')
			return dlq__resume(co, argv[optind], json);
	}
	dlq__usage(stderr);
	return CLI_USAGE;
}
