/*
 * mailroom, the command line: publish, consume, status, topics, admin.
 *
 * Exit codes, for scripts: 0 success; 1 some message or operation was
 * refused (each is reported); 2 usage error; 3 mailroomd could not be
 * reached or did not answer; 4 the input could not be read; 5 the outcome
 * of some message is unknown (mailroomd went away with it and did not come
 * back within the timeout): publish those again with the same ids.
 */
#ifndef MRI_CLI_H
#define MRI_CLI_H

#include <stdbool.h>

#include "mailroom/mailroom.h"

enum {
	CLI_OK          = 0,
	CLI_REFUSED     = 1,
	CLI_USAGE       = 2,
	CLI_UNREACHABLE = 3,
	CLI_INPUT       = 4,
	CLI_UNKNOWN     = 5,
};

struct cli_common {
	const char *url;
	int         timeout_ms;
};

/** @returns an exit code. */
int cli_publish(const struct cli_common *co, int argc, char **argv);
int cli_status(const struct cli_common *co, int argc, char **argv);
int cli_topics(const struct cli_common *co, int argc, char **argv);
int cli_admin(const struct cli_common *co, int argc, char **argv);
int cli_consume(const struct cli_common *co, int argc, char **argv);

/** @brief Connect, or print why not. @returns MR_OK or an mr_err. */
int cli_connect(const struct cli_common *co, mr_client **c);

/** @returns the exit code for a request that failed with \p err. */
int cli_exit_for(int err);

#endif
