/*
 * mailroom dlq replay and dlq purge (ADMIN dlq.replay, dlq.purge;
 * docs/PROTOCOL.md). A replay is driven from here in chunks: each call
 * replays at most a second's worth of records at the rate, the next
 * waits until the rate allows it, so mailroomd keeps no job; SIGINT stops
 * after the current chunk, and running the command again resumes (the
 * state topic skips what was replayed).
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
#include "core/pace.h"

static volatile sig_atomic_t replay__stop;

static void
replay__on_sigint(int sig)
{
	(void)sig;
	replay__stop = 1;
}

static void
replay__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom dlq replay [--json] [--dry-run] [--rate N[/s]] "
		"[--force]\n"
		"            [--loop-limit N] [--to TOPIC] [filters] "
		"[--offset P@O ...]\n"
		"            DLQ_TOPIC\n"
		"       mailroom dlq purge [--json] [--dry-run] [filters] "
		"[--offset P@O ...]\n"
		"            DLQ_TOPIC\n"
		"  filters, as mailroom dlq list: --source TOPIC, --group G, "
		"--key K,\n"
		"  --fingerprint F, --since TIME, --until TIME, --dialect D; "
		"or --offset P@O\n"
		"  (a dead-letter position, repeatable), not both. None: every "
		"record.\n"
		"  replay  back to each record's original topic (--to: "
		"another, which must\n"
		"          exist), same key, a new id (<id>~r<n>), "
		"mr_dlq_replays counted up;\n"
		"          at most --rate records per second (%d; at most %d); "
		"a record\n"
		"          replayed --loop-limit times (3) is skipped unless "
		"--force. A\n"
		"          progress bar on a terminal, a line per chunk "
		"otherwise, a JSON\n"
		"          object per chunk with --json. Ctrl-C stops after "
		"the chunk; run it\n"
		"          again to resume: what was replayed is not "
		"replayed again.\n"
		"  purge   marks the records resolved: they no longer list; on "
		"real Kafka a\n"
		"          partition's prefix that is all replayed or resolved "
		"is deleted.\n"
		"  --dry-run  what would be replayed or resolved; nothing "
		"moves.\n"
		"exit codes: 0 done (or stopped by Ctrl-C), 1 refused (no "
		"such topic,\n"
		"target or record, unknown fingerprint, a record failed), 2 "
		"usage, 3\n"
		"mailroomd unreachable\n",
		MRI_PACE_RATE_DEFAULT, MRI_PACE_RATE_MAX);
}

static long long
replay__mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A rate: N or N/s, 1..MRI_PACE_RATE_MAX; else 0. */
static long
replay__rate(const char *s)
{
	char *end;
	long  r = strtol(s, &end, 10);

	if (end == s || (*end != '\0' && strcmp(end, "/s") != 0) || r < 1 ||
	    r > MRI_PACE_RATE_MAX)
		return 0;
	return r;
}

/* "P@O": decimals (mailroomd checks their range). */
static bool
replay__pos_ok(const char *s)
{
	size_t p = strspn(s, "0123456789");

	return p > 0 && p <= 10 && s[p] == '@' &&
	       strspn(s + p + 1, "0123456789") == strlen(s + p + 1) &&
	       s[p + 1] != '\0' && strlen(s + p + 1) <= 19;
}

/* The options both commands take into \p req; the exit code (CLI_OK to go
 * on) and, for replay, *rate. */
static int
replay__options(int argc, char **argv, bool replay, json_t *req, bool *json,
		bool *dry, long *rate)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"force", no_argument, NULL, 'F'},
	    {"loop-limit", required_argument, NULL, 'l'},
	    {"to", required_argument, NULL, 't'},
	    {"source", required_argument, NULL, 's'},
	    {"group", required_argument, NULL, 'g'},
	    {"key", required_argument, NULL, 'k'},
	    {"fingerprint", required_argument, NULL, 'f'},
	    {"since", required_argument, NULL, 'S'},
	    {"until", required_argument, NULL, 'U'},
	    {"dialect", required_argument, NULL, 'd'},
	    {"offset", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *what  = replay ? "dlq replay" : "dlq purge";
	json_t     *pos   = json_array();
	struct cli_dlq_filters f = CLI_DLQ_FILTERS_INIT;
	long long   t;
	char       *end;
	int         ch, rc;

	while ((ch = getopt_long(argc, argv, "g:k:h", opts, NULL)) != -1) {
		const char *bad = NULL;

		if (!replay && strchr("rFlt", ch) != NULL && ch != 0)
			ch = '?';
		if (cli_dlq_filter(req, &f, ch, optarg, &bad))
			ch = 0;
		switch (ch) {
		case 0:
			break;
		case 'j':
			*json = true;
			break;
		case 'n':
			*dry = true;
			break;
		case 'r':
			if ((*rate = replay__rate(optarg)) == 0)
				bad = "--rate is 1..10000 records per second "
				      "(N or N/s)";
			break;
		case 'F':
			json_object_set_new(req, "force", json_true());
			break;
		case 'l':
			t = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || t < 0 ||
			    t > 1000000)
				bad = "--loop-limit is 0..1000000";
			json_object_set_new(req, "loop_limit", json_integer(t));
			break;
		case 't':
			json_object_set_new(req, "target", json_string(optarg));
			break;
		case 'o':
			if (!replay__pos_ok(optarg))
				bad = "--offset is a dead-letter position "
				      "P@O (partition@offset, as mailroom dlq "
				      "list prints them)";
			json_array_append_new(pos, json_string(optarg));
			break;
		default:
			json_decref(pos);
			replay__usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? CLI_OK : CLI_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "mailroom: %s: %s\n", what, bad);
			json_decref(pos);
			return CLI_USAGE;
		}
	}
	if (f.any && json_array_size(pos) > 0) {
		fprintf(stderr,
			"mailroom: %s: --offset and filters conflict: give "
			"positions or filters\n",
			what);
		json_decref(pos);
		return CLI_USAGE;
	}
	if ((rc = cli_dlq_filters_end(req, &f, argc, argv, what,
				      replay__usage)) != CLI_OK) {
		json_decref(pos);
		return rc;
	}
	if (json_array_size(pos) > 0)
		json_object_set_new(req, "positions", pos);
	else
		json_decref(pos);
	if (*dry)
		json_object_set_new(req, "dry_run", json_true());
	return CLI_OK;
}

static long long
replay__int(json_t *o, const char *name)
{
	return (long long)json_integer_value(json_object_get(o, name));
}

/* The records skipped (loop guard, no original topic): said once, from
 * the last answer. */
static void
replay__print_skipped(json_t *rep)
{
	json_t *sk = json_object_get(rep, "skipped"), *v;
	size_t  i;

	if (replay__int(rep, "skipped_count") == 0)
		return;
	fprintf(stderr, "mailroom: dlq replay: %lld records skipped:\n",
		replay__int(rep, "skipped_count"));
	json_array_foreach(sk, i, v)
	{
		if (i == 10) {
			fprintf(stderr, "  ...\n");
			break;
		}
		fprintf(stderr, "  %lld@%lld: %s\n", replay__int(v, "partition"),
			replay__int(v, "offset"),
			json_string_value(json_object_get(v, "why")));
	}
}

static void
replay__print_failed(json_t *rep)
{
	json_t *fl = json_object_get(rep, "failed"), *v;
	size_t  i;

	json_array_foreach(fl, i, v)
		fprintf(stderr, "mailroom: dlq replay: %lld@%lld failed: %s: %s\n",
			replay__int(v, "partition"), replay__int(v, "offset"),
			json_string_value(json_object_get(v, "error")),
			json_string_value(json_object_get(v, "message")));
}

/* The progress: a bar redrawn in place on a terminal, else a line. */
static void
replay__progress(bool tty, long long moved, long long total, double rate,
		 long long eta_s)
{
	int  width = 30, full;
	char bar[31];

	if (!tty) {
		printf("moved %lld of %lld, %.1f/s\n", moved, total, rate);
		fflush(stdout);
		return;
	}
	full = total > 0 ? (int)(moved * width / total) : width;
	for (int i = 0; i < width; i++)
		bar[i] = i < full ? '#' : '.';
	bar[width] = '\0';
	printf("\r[%s] %lld/%lld  %.1f/s  ETA %llds   ", bar, moved, total, rate,
	       eta_s);
	fflush(stdout);
}

static int
replay__dry(const struct cli_common *co, json_t *req, bool json)
{
	json_t *rep, *v;
	size_t  i;
	int     rc;

	json_object_set_new(req, "max", json_integer(100000));
	rc = cli_dlq_request(co, "dlq replay", req, json, &rep);
	if (rc != CLI_OK || json) {
		json_decref(rep);
		return rc;
	}
	json_array_foreach(json_object_get(rep, "replayed"), i, v)
		printf("%lld@%lld -> %s  id %s  (replay %lld)\n",
		       replay__int(v, "partition"), replay__int(v, "offset"),
		       json_string_value(json_object_get(v, "target")),
		       json_string_value(json_object_get(v, "id")),
		       replay__int(v, "replays"));
	printf("dry run: %lld records would be replayed%s; nothing moved\n",
	       replay__int(rep, "moved"),
	       replay__int(rep, "remaining") > 0 ? " (and more beyond 100000)"
						 : "");
	replay__print_skipped(rep);
	json_decref(rep);
	return CLI_OK;
}

int
cli_dlq_replay(const struct cli_common *co, int argc, char **argv,
	       bool json)
{
	json_t          *base = json_pack("{s:s}", "op", "dlq.replay"), *rep;
	json_t          *last = NULL;
	long             rate = MRI_PACE_RATE_DEFAULT;
	bool             dry = false, tty;
	long long        moved = 0, total = 0, start, now, wait;
	struct sigaction sa, old;
	int              rc;

	rc = replay__options(argc, argv, true, base, &json, &dry, &rate);
	if (rc != CLI_OK || json_object_get(base, "topic") == NULL) {
		json_decref(base);
		return rc;
	}
	json_object_set_new(base, "rate", json_integer(rate));
	if (dry)
		return replay__dry(co, base, json);
	json_object_set_new(base, "max",
			    json_integer(mri_pace_chunk((uint32_t)rate)));
	tty = !json && isatty(STDOUT_FILENO);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = replay__on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	start = replay__mono_ms();
	for (;;) {
		json_t *req;

		// The next chunk's first record goes no earlier than the
		// rate allows after all those before it.
		now  = replay__mono_ms();
		wait = mri_pace_wait_ms(start, now, (uint64_t)moved,
					    (uint32_t)rate);
		while (wait > 0 && !replay__stop) {
			struct timespec ts = {wait / 1000,
					      (wait % 1000) * 1000000};

			nanosleep(&ts, NULL);
			wait = mri_pace_wait_ms(start, replay__mono_ms(),
						    (uint64_t)moved,
						    (uint32_t)rate);
		}
		if (replay__stop)
			break;
		req = json_deep_copy(base);
		rc  = cli_dlq_request(co, "dlq replay", req, json, &rep);
		if (rc != CLI_OK)
			break;
		json_decref(last);
		last = rep;
		moved += replay__int(rep, "moved");
		total = moved + replay__int(rep, "remaining");
		now   = replay__mono_ms();
		if (!json) {
			double r   = now > start ? moved * 1000.0 / (double)(now - start)
					       : 0;
			long long left = total - moved;

			replay__progress(tty, moved, total, r,
					 (left + rate - 1) / rate);
		}
		if (replay__int(rep, "failed_count") > 0 ||
		    replay__int(rep, "state_failed") > 0) {
			if (tty)
				putchar('\n');
			replay__print_failed(rep);
			if (replay__int(rep, "state_failed") > 0)
				fprintf(stderr,
					"mailroom: dlq replay: %lld state "
					"records were not written: run it again "
					"(the same ids: not published twice "
					"while mailroomd's dedupe window has "
					"them)\n",
					replay__int(rep, "state_failed"));
			rc = CLI_REFUSED;
			break;
		}
		if (json_is_true(json_object_get(rep, "done")) ||
		    replay__int(rep, "moved") == 0)
			break;
	}
	sigaction(SIGINT, &old, NULL);
	if (tty && last != NULL)
		putchar('\n');
	if (!json && rc == CLI_OK) {
		now = replay__mono_ms();
		if (replay__stop)
			printf("stopped after %lld records (Ctrl-C); run it "
			       "again to resume\n",
			       moved);
		else
			printf("replayed %lld records in %.1f s\n", moved,
			       (double)(now - start) / 1000.0);
	}
	if (last != NULL && !json)
		replay__print_skipped(last);
	json_decref(last);
	json_decref(base);
	return rc;
}

int
cli_dlq_purge(const struct cli_common *co, int argc, char **argv, bool json)
{
	json_t   *base = json_pack("{s:s}", "op", "dlq.purge"), *rep;
	bool      dry  = false;
	long      rate = 0;
	long long resolved = 0, matched = 0;
	int       rc;

	rc = replay__options(argc, argv, false, base, &json, &dry, &rate);
	if (rc != CLI_OK || json_object_get(base, "topic") == NULL) {
		json_decref(base);
		return rc;
	}
	json_object_set_new(base, "max", json_integer(100000));
	for (;;) {
		rc = cli_dlq_request(co, "dlq purge", json_deep_copy(base), json,
				     &rep);
		if (rc != CLI_OK)
			break;
		resolved += replay__int(rep, "resolved");
		matched = replay__int(rep, "matched");
		if (replay__int(rep, "failed") > 0) {
			fprintf(stderr,
				"mailroom: dlq purge: %lld state records were "
				"not written; run it again\n",
				replay__int(rep, "failed"));
			rc = CLI_REFUSED;
		}
		if (!json && !dry && json_array_size(json_object_get(
					 rep, "deleted")) > 0)
			printf("deleted the resolved prefix of %zu "
			       "partitions\n",
			       json_array_size(json_object_get(rep, "deleted")));
		if (dry || rc != CLI_OK ||
		    json_is_true(json_object_get(rep, "done")) ||
		    replay__int(rep, "resolved") == 0) {
			json_decref(rep);
			break;
		}
		json_decref(rep);
	}
	if (!json && rc == CLI_OK)
		printf("%s %lld records (of %lld matching)\n",
		       dry ? "dry run: would resolve" : "resolved", resolved,
		       matched);
	json_decref(base);
	return rc;
}
