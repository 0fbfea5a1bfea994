/*
 * What every command of the command line does alike: connect, say why a
 * request failed, and map an error to an exit code (cli/cli.h).
 */
#include <stdio.h>

#include "cli/cli.h"

int
cli_connect(const struct cli_common *co, mr_client **c)
{
	mr_client_opts opts = {.timeout_ms    = co->timeout_ms,
			       .busy_retry_ms = co->busy_retry_ms,
			       .linger_us     = co->linger_us};
	char           errstr[512];
	int            rc;

	rc = mr_client_new(c, co->url, &opts, errstr, sizeof(errstr));
	if (rc != MR_OK)
		fprintf(stderr, "mailroom: %s\n", errstr);
	return rc;
}

int
cli_exit_for(int err)
{
	switch (err) {
	case MR_OK:
		return CLI_OK;
	case MR_ECONNREFUSED:
	case MR_ECLOSED:
	case MR_ETRANSPORT:
	case MR_ETIMEDOUT:
		return CLI_UNREACHABLE;
	case MR_EINVAL:
		return CLI_USAGE;
	case MR_EINDOUBT:
		return CLI_UNKNOWN;
	default:
		return CLI_REFUSED;
	}
}

int
cli_exit_refused(int err)
{
	return cli_exit_for(err) == CLI_USAGE ? CLI_REFUSED : cli_exit_for(err);
}

void
cli_report(const char *what, int err)
{
	fprintf(stderr, "mailroom: %s: %s: %s\n", what, mr_err_name(err),
		mr_err_sentence(err, mr_client_last_error()));
}

char *
cli_dec(char *p, uint64_t v, bool neg)
{
	char   tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	if (neg)
		*p++ = '-';
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

char *
cli_int(char *p, int64_t v)
{
	return v < 0 ? cli_dec(p, -(uint64_t)v, true)
		     : cli_dec(p, (uint64_t)v, false);
}
