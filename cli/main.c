#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void
main__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom [--url URL] [--timeout MS (60000)] COMMAND "
		"...\n"
		"commands:\n"
		"  publish ADDRESS [PAYLOAD]   publish to topic or topic/key\n"
		"  consume -g GROUP TOPIC...   consume as a consumer group, "
		"ack or nack\n"
		"  status [--json]             mailroomd's version, Kafka, "
		"listeners\n"
		"  topics create|list|describe manage topics\n"
		"  lag [--group G] [TOPIC]     consumer lag per group and "
		"partition\n"
		"  bounds [set|clear] TOPIC    backpressure: lag bounds per "
		"topic\n"
		"  dlq list|show|resume        the dead-letter queue\n"
		"  admin JSON                  send a raw admin request\n"
		"URL defaults to $MAILROOM_URL, else %s.\n"
		"`mailroom COMMAND --help` describes each command.\n"
		"exit codes: 0 ok, 1 refused, 2 usage, 3 mailroomd "
		"unreachable, 4 input unreadable, 5 outcome unknown\n",
		MR_DEFAULT_URL);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"timeout", required_argument, NULL, 't'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	// Longer than mailroomd's own wait for Kafka (its
	// producer.message_timeout_ms, 30 s by default), so that a Kafka
	// outage is reported as mailroomd's answer, not as its silence.
	struct cli_common co = {NULL, 60000, 0, 0};
	const char       *cmd;
	int               c;

	// Options before the command only: each command parses its own.
	while ((c = getopt_long(argc, argv, "+u:t:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			co.url = optarg;
			break;
		case 't':
			co.timeout_ms = atoi(optarg);
			if (co.timeout_ms <= 0) {
				fprintf(stderr, "mailroom: --timeout takes "
						"milliseconds > 0\n");
				return CLI_USAGE;
			}
			break;
		case 'V':
			printf("mailroom %s\n", MR_VERSION_STRING);
			return CLI_OK;
		case 'h':
			main__usage(stdout);
			return CLI_OK;
		default:
			main__usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		main__usage(stderr);
		return CLI_USAGE;
	}
	cmd    = argv[optind];
	argc  -= optind;
	argv  += optind;
	optind = 0; // GNU getopt: re-initialise for the command's own options
	if (strcmp(cmd, "publish") == 0)
		return cli_publish(&co, argc, argv);
	if (strcmp(cmd, "consume") == 0)
		return cli_consume(&co, argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cli_status(&co, argc, argv);
	if (strcmp(cmd, "topics") == 0)
		return cli_topics(&co, argc, argv);
	if (strcmp(cmd, "admin") == 0)
		return cli_admin(&co, argc, argv);
	if (strcmp(cmd, "lag") == 0)
		return cli_lag(&co, argc, argv);
	if (strcmp(cmd, "bounds") == 0)
		return cli_bounds(&co, argc, argv);
	if (strcmp(cmd, "dlq") == 0)
		return cli_dlq(&co, argc, argv);
	fprintf(stderr, "mailroom: unknown command '%s'\n", cmd);
	main__usage(stderr);
	return CLI_USAGE;
}
