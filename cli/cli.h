/*
 * mailroom, the command line: publish, consume, status, topics, lag,
 * bounds, dlq, admin.
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
#include <stdint.h>
#include <stdio.h>

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
	int         busy_retry_ms; /* mr_client_opts' */
	int         linger_us;     /* mr_client_opts'; 0: the client's */
};

/** @returns an exit code. */
int cli_publish(const struct cli_common *co, int argc, char **argv);
int cli_status(const struct cli_common *co, int argc, char **argv);
int cli_topics(const struct cli_common *co, int argc, char **argv);
int cli_admin(const struct cli_common *co, int argc, char **argv);
int cli_consume(const struct cli_common *co, int argc, char **argv);
int cli_dlq(const struct cli_common *co, int argc, char **argv);
int cli_lag(const struct cli_common *co, int argc, char **argv);
int cli_bounds(const struct cli_common *co, int argc, char **argv);

/* cli/common.c: what the commands share. Each runs on the command's
 * thread; none keeps what it is given. */

/**
 * @brief Connect to co->url, or print why not on stderr.
 * @returns MR_OK and *c (new: mr_client_free it), or an mr_err.
 */
int cli_connect(const struct cli_common *co, mr_client **c);

/** @returns the exit code for a request that failed with \p err. */
int cli_exit_for(int err);

/** @returns cli_exit_for(\p err), except that an MR_EINVAL from mailroomd
 *           (the request was refused, not the command line) is
 *           CLI_REFUSED. */
int cli_exit_refused(int err);

/** @brief Write \p v in decimal at \p p (with '-' when \p neg): up to 21
 *         bytes. @returns the end. For lines made by hand, where printf
 *         was most of a line's cost. */
char *cli_dec(char *p, uint64_t v, bool neg);
/** @brief cli_dec of a signed \p v. */
char *cli_int(char *p, int64_t v);

/** @brief Print "mailroom: WHAT: NAME: sentence" for \p err on stderr, the
 *         sentence from mr_client_last_error() (this thread's). */
void cli_report(const char *what, int err);

/* cli/consume_watch.c: what mailroomd says of Kafka, told once on stderr
 * by a consumer that waits. On the command's thread. */
struct cli_watch {
	mr_client *c; /* borrowed */
	long       next_ms;
	bool       down; /* said unreachable, not yet said back */
};
/** @brief Watch Kafka through \p c (borrowed, used for STATUS). */
void cli_watch_init(struct cli_watch *w, mr_client *c);
/**
 * @brief After a fetch: when it was empty (\p idle), or while Kafka is
 *        said to be away, ask mailroomd's STATUS (at most every 2 s) and
 *        say on stderr, once, that Kafka is unreachable (for how long and
 *        why), and once that it is back.
 */
void cli_watch_check(struct cli_watch *w, long now_ms, bool idle);

/* cli/consume_out.c: a delivery on stdout. On the command's thread. */
/** @brief Before anything is printed: a large stdio buffer for stdout
 *         when it is not a terminal (flushed by the caller per batch). */
void cli_out_init(void);
/** @brief Print \p d as a line of text, or of JSON; \p dup: the guard
 *         had its id. @returns false: no memory, nothing printed. */
bool cli_out_delivery(const mr_delivery *d, bool json, bool dup);
/** @brief Free what cli_out_delivery kept. */
void cli_out_fini(void);

/* cli/consume_settle.c: a thread that settles what the command's thread
 * printed, flushed and handed over, so that the next FETCH does not wait
 * for the last SETTLE. The calls are the command's thread's. */
enum cli_settle {
	CLI_SETTLE_ACK,
	CLI_SETTLE_NACK,
	CLI_SETTLE_REJECT,
};
struct cli_settler;
/** @brief Start settling on \p s (borrowed, as \p reason: NULL or the
 *         nack's or reject's). @returns MR_OK and *out, or MR_ENOMEM. */
int cli_settler_start(struct cli_settler **out, mr_consumer *s,
		      enum cli_settle kind, const char *reason);
/**
 * @brief Settle \p n handles (\p h: malloc'd, taken in any case) after
 *        those handed over before; waits while 4 batches are queued.
 * @returns MR_OK, or the error of an earlier settle (then \p h is
 *          dropped, and so is every batch queued after the error until
 *          cli_settler_drain), its sentence in \p why.
 */
int cli_settler_put(struct cli_settler *t, uint64_t *h, size_t n,
		    char *why, size_t why_size);
/**
 * @brief Wait until everything handed over is settled (or dropped after
 *        an error): then no handle fetched so far is settled any more.
 * @returns MR_OK, or the first error since the last drain (cleared), its
 *          sentence in \p why.
 */
int cli_settler_drain(struct cli_settler *t, char *why, size_t why_size);
/** @brief Drain, end the thread and free \p t (NULL: MR_OK).
 *  @returns as cli_settler_drain. */
int cli_settler_stop(struct cli_settler *t, char *why, size_t why_size);

/* cli/dlq.c and cli/dlq_replay.c. */

/** @brief mailroom dlq replay and purge (argv from the subcommand). */
int cli_dlq_replay(const struct cli_common *co, int argc, char **argv,
		   bool json);
int cli_dlq_purge(const struct cli_common *co, int argc, char **argv,
		  bool json);

/**
 * @brief Send \p req (taken) as an ADMIN request, what failed said on
 *        stderr as "mailroom: WHAT: ...".
 * @returns the exit code, and *rep (new) when it is CLI_OK; the answer is
 *          printed as it is with \p json.
 */
struct json_t;
int cli_dlq_request(const struct cli_common *co, const char *what,
		    struct json_t *req, bool json, struct json_t **rep);

/** @returns true and *ms for RFC 3339 (a date alone: midnight UTC), ms
 *           since the epoch (digits), "now", or -N followed by s, m, h or
 *           d. */
bool cli_dlq_time(const char *s, long long *ms);

/* The filters dlq list, replay and purge share: --source, --group, --key,
 * --fingerprint, --dialect, --since, --until (getopt characters s, g, k,
 * f, d, S, U). */
struct cli_dlq_filters {
	long long since, until; /* ms since the epoch; -1: none */
	bool      any;          /* one was given */
};
#define CLI_DLQ_FILTERS_INIT {-1, -1, false}

/**
 * @brief Option \p ch with \p arg into \p req (or \p f's bounds), if it
 *        is a filter. @returns false if it is not one; else true, and
 *        *bad set to what is wrong with \p arg (NULL if nothing).
 */
bool cli_dlq_filter(struct json_t *req, struct cli_dlq_filters *f, int ch,
		    const char *arg, const char **bad);

/**
 * @brief After the options: the bounds checked and put into \p req, and
 *        the one operand, the dead-letter topic, as "topic". Says what is
 *        wrong on stderr as "mailroom: WHAT: ...", or prints \p usage on
 *        stderr for a missing or extra operand.
 * @returns CLI_OK or CLI_USAGE.
 */
int cli_dlq_filters_end(struct json_t *req, const struct cli_dlq_filters *f,
			int argc, char **argv, const char *what,
			void (*usage)(FILE *));

#endif
