/*
 * mailroom dlq: the dead-letter queue's operator commands (ADMIN
 * consumers.resume, dlq.list, dlq.show; docs/PROTOCOL.md):
 *   resume GROUP          the tripped breakers of a group's subscriptions
 *                         on this mailroomd go half-open;
 *   list DLQ_TOPIC        its records grouped by fingerprint, filtered;
 *   show DLQ_TOPIC P O    one record, decoded, binary-safe;
 *   replay, purge         cli/dlq_replay.c.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"

static void
dlq__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom dlq resume [--json] GROUP\n"
		"       mailroom dlq list [--json] [--source TOPIC] "
		"[--group G] [--key K]\n"
		"            [--fingerprint F] [--since TIME] [--until TIME] "
		"[--dialect D]\n"
		"            [--max-records N] [--all] DLQ_TOPIC\n"
		"       mailroom dlq show [--json] DLQ_TOPIC PARTITION OFFSET\n"
		"  resume GROUP   the group's tripped breakers (see mailroom "
		"status) go\n"
		"                 half-open now: one message at a time until "
		"one is acked\n"
		"  list           the dead-letter topic's records grouped by "
		"fingerprint\n"
		"                 (a message quarantined twice counts once); "
		"filters:\n"
		"                 --source the original topic, --group the "
		"consumer group,\n"
		"                 --key exact key, --fingerprint 16 hex "
		"digits, --dialect\n"
		"                 mailroom|spring|connect|unknown, --since/"
		"--until TIME\n"
		"                 (inclusive): RFC 3339 (2026-01-31T12:00:00Z, "
		"+02:00 offsets,\n"
		"                 a date alone), ms since the epoch, now, or "
		"-N s|m|h|d ago\n"
		"                 (-90m); --max-records bounds the read "
		"(1000000);\n"
		"                 replayed and resolved records are left out "
		"(--all: kept)\n"
		"  show           one record by its dead-letter position: "
		"key, payload and\n"
		"                 header values as text, or base64 where not "
		"UTF-8 text\n"
		"The scan may take up to mailroom's --timeout (30000 ms) less "
		"3 s.\n"
		"       mailroom dlq replay|purge ...: mailroom dlq replay "
		"--help\n"
		"exit codes: 0 done, 1 refused (no such topic, group or "
		"record; offset out\n"
		"of range), 2 usage, 3 mailroomd unreachable\n");
}

int
cli_dlq_request(const struct cli_common *co, const char *what, json_t *req,
	     bool json, json_t **rep)
{
	char      *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	char      *text = NULL;
	mr_client *c;
	int        rc;

	json_decref(req);
	*rep = NULL;
	if (body == NULL) {
		fprintf(stderr, "mailroom: %s: out of memory\n", what);
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
		cli_report(what, rc);
		return cli_exit_refused(rc);
	}
	*rep = json_loads(text, 0, NULL);
	if (json)
		printf("%s\n", text);
	free(text);
	if (!json_is_true(json_object_get(*rep, "ok"))) {
		fprintf(stderr, "mailroom: %s: %s: %s\n", what,
			json_string_value(json_object_get(*rep, "error")),
			json_string_value(json_object_get(*rep, "message")));
		json_decref(*rep);
		*rep = NULL;
		return CLI_REFUSED;
	}
	return CLI_OK;
}

static int
dlq__resume(const struct cli_common *co, const char *group, bool json)
{
	json_t *rep;
	int     rc;

	rc = cli_dlq_request(co, "dlq resume",
			  json_pack("{s:s, s:s}", "op", "consumers.resume",
				    "group", group),
			  json, &rep);
	if (rc == CLI_OK && !json)
		printf("group %s: %lld of %lld subscriptions resumed "
		       "(half-open)\n",
		       group,
		       (long long)json_integer_value(
			   json_object_get(rep, "resumed")),
		       (long long)json_integer_value(
			   json_object_get(rep, "subscriptions")));
	json_decref(rep);
	return rc;
}

/* ---- TIME ---------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long long
dlq__days(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned  yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static long long
dlq__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
cli_dlq_time(const char *s, long long *ms)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	int       y, mo, d, h = 0, mi = 0, sec = 0, n = 0, k;
	long long frac = 0, scale = 1000, off = 0;
	char      unit;

	if (strcmp(s, "now") == 0) {
		*ms = dlq__now_ms();
		return true;
	}
	if (s[0] == '-' && sscanf(s, "-%d%c%n", &k, &unit, &n) == 2 &&
	    s[n] == '\0' && k >= 0 && isdigit((unsigned char)s[1])) {
		long long u = unit == 's'   ? 1000
			      : unit == 'm' ? 60000
			      : unit == 'h' ? 3600000
			      : unit == 'd' ? 86400000
					    : 0;
		*ms = dlq__now_ms() - (long long)k * u;
		return u != 0 && *ms >= 0;
	}
	if (s[0] != '\0' && strspn(s, "0123456789") == strlen(s) &&
	    strlen(s) <= 15) {
		*ms = strtoll(s, NULL, 10);
		return true;
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
	    mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || y < 1970)
		return false;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 || y % 400 == 0)))
		return false;
	s += n;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		if (sscanf(s + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 ||
		    n != 8 || h > 23 || mi > 59 || sec > 60)
			return false;
		s += 1 + n;
		if (*s == '.') {
			if (!isdigit((unsigned char)*++s))
				return false;
			for (; isdigit((unsigned char)*s); s++)
				if (scale > 1) {
					scale /= 10;
					frac += (*s - '0') * scale;
				}
		}
		if (*s == 'Z' || *s == 'z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			int oh, om;

			if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) != 2 ||
			    n != 5 || oh > 23 || om > 59)
				return false;
			off = (*s == '+' ? 1 : -1) * (oh * 60LL + om) * 60000;
			s += 1 + n;
		} else {
			return false;
		}
	}
	if (*s != '\0')
		return false;
	*ms = ((dlq__days(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) *
		  60000LL +
	      sec * 1000LL + frac - off;
	return *ms >= 0;
}

/* ---- list ---------------------------------------------------------------- */

/* The terminal's width, or 80. */
static int
dlq__width(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* At most \p cols characters of \p s (UTF-8) on one line: control
 * characters as spaces, "…" where cut. */
static void
dlq__print_cut(const char *s, int cols)
{
	int n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) == 0x80) { // a continuation byte
			putchar(*p);
			continue;
		}
		if (n == cols - 1 && p[1] != '\0') {
			fputs("…", stdout);
			return;
		}
		putchar(*p < 0x20 || *p == 0x7f ? ' ' : *p);
		n++;
	}
}

/* "2026-01-31 12:00:00" of an RFC 3339 string, or "-". */
static void
dlq__short_time(json_t *t, char out[20])
{
	const char *s = json_string_value(t);

	if (s == NULL || strlen(s) < 19) {
		strcpy(out, "-");
		return;
	}
	memcpy(out, s, 19);
	out[10] = ' ';
	out[19] = '\0';
}

static void
dlq__print_list(json_t *rep)
{
	json_t *gs = json_object_get(rep, "groups"), *g;
	size_t  i;
	int     w = dlq__width();
	char    first[20], last[20];

	printf("%-16s %7s  %-19s  %-19s  %s\n", "FINGERPRINT", "COUNT",
	       "FIRST SEEN", "LAST SEEN", "SOURCES / REASON");
	json_array_foreach(gs, i, g)
	{
		json_t *src = json_object_get(g, "sources"), *v;
		char    line[512];
		size_t  j, k = 0;

		dlq__short_time(json_object_get(g, "first_seen"), first);
		dlq__short_time(json_object_get(g, "last_seen"), last);
		line[0] = '\0';
		json_array_foreach(src, j, v)
			k += (size_t)snprintf(line + k,
					      k < sizeof(line) ? sizeof(line) - k
							       : 0,
					      "%s%s", j ? "," : "",
					      json_string_value(v));
		if (k >= sizeof(line))
			k = sizeof(line) - 1;
		if (json_is_true(json_object_get(g, "sources_more")))
			snprintf(line + k, sizeof(line) - k, ",…");
		printf("%-16s %7lld  %-19s  %-19s  ",
		       json_string_value(json_object_get(g, "fingerprint")),
		       (long long)json_integer_value(
			   json_object_get(g, "count")),
		       first, last);
		dlq__print_cut(line[0] ? line : "-", w - 68 > 8 ? w - 68 : 8);
		printf("\n%24s", "");
		dlq__print_cut(
		    json_string_value(json_object_get(g, "reason")), w - 24);
		putchar('\n');
	}
	printf("%lld records in %lld groups (%lld duplicate copies left "
	       "out); %lld read\n",
	       (long long)(json_integer_value(json_object_get(rep, "matched")) -
			   json_integer_value(
			       json_object_get(rep, "duplicates"))),
	       (long long)json_integer_value(
		   json_object_get(rep, "groups_total")),
	       (long long)json_integer_value(json_object_get(rep, "duplicates")),
	       (long long)json_integer_value(json_object_get(rep, "scanned")));
}

static void
dlq__warn_cut(json_t *rep)
{
	const char *cut = json_string_value(json_object_get(rep, "cut"));

	if (json_is_true(json_object_get(rep, "complete")) || cut == NULL)
		return;
	fprintf(stderr,
		"mailroom: dlq list: stopped by %s after %lld records: the "
		"counts are partial (raise %s)\n",
		cut,
		(long long)json_integer_value(json_object_get(rep, "scanned")),
		strcmp(cut, "timeout") == 0 ? "mailroom --timeout"
					    : "--max-records");
}

/* How many records of the topic were replayed or resolved: left out, or
 * (--all) kept. */
static void
dlq__note_states(json_t *rep, bool json)
{
	json_t   *st = json_object_get(rep, "states");
	long long rp = json_integer_value(json_object_get(st, "replayed"));
	long long rs = json_integer_value(json_object_get(st, "resolved"));

	if (json || rp + rs == 0)
		return;
	printf("%lld replayed and %lld resolved records %s\n", rp, rs,
	       json_is_true(json_object_get(rep, "all"))
		   ? "included (--all)"
		   : "left out (--all shows them)");
}

bool
cli_dlq_filter(json_t *req, struct cli_dlq_filters *f, int ch,
	       const char *arg, const char **bad)
{
	long long t;

	*bad = NULL;
	switch (ch) {
	case 's':
	case 'g':
	case 'k':
	case 'd':
		json_object_set_new(req,
				    ch == 's'   ? "source"
				    : ch == 'g' ? "group"
				    : ch == 'k' ? "key"
						: "dialect",
				    json_string(arg));
		break;
	case 'f':
		if (strlen(arg) != 16 ||
		    strspn(arg, "0123456789abcdefABCDEF") != 16)
			*bad = "--fingerprint is 16 hex digits, as mailroom "
			       "dlq list prints them";
		json_object_set_new(req, "fingerprint", json_string(arg));
		break;
	case 'S':
	case 'U':
		if (!cli_dlq_time(arg, &t))
			*bad = "--since and --until take RFC 3339 "
			       "(2026-01-31T12:00:00Z), ms since the epoch, "
			       "now, or -N s|m|h|d";
		else if (ch == 'S')
			f->since = t;
		else
			f->until = t;
		break;
	default:
		return false;
	}
	f->any = true;
	return true;
}

int
cli_dlq_filters_end(json_t *req, const struct cli_dlq_filters *f, int argc,
		    char **argv, const char *what, void (*usage)(FILE *))
{
	if (f->since >= 0 && f->until >= 0 && f->since > f->until) {
		fprintf(stderr,
			"mailroom: %s: --since is after --until: no record "
			"can match\n",
			what);
		return CLI_USAGE;
	}
	if (optind + 1 != argc || *argv[optind] == '\0') {
		usage(stderr);
		return CLI_USAGE;
	}
	json_object_set_new(req, "topic", json_string(argv[optind]));
	if (f->since >= 0)
		json_object_set_new(req, "since_ms", json_integer(f->since));
	if (f->until >= 0)
		json_object_set_new(req, "until_ms", json_integer(f->until));
	return CLI_OK;
}

static int
dlq__list(const struct cli_common *co, int argc, char **argv, bool json)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"source", required_argument, NULL, 's'},
	    {"group", required_argument, NULL, 'g'},
	    {"key", required_argument, NULL, 'k'},
	    {"fingerprint", required_argument, NULL, 'f'},
	    {"since", required_argument, NULL, 'S'},
	    {"until", required_argument, NULL, 'U'},
	    {"dialect", required_argument, NULL, 'd'},
	    {"max-records", required_argument, NULL, 'm'},
	    {"all", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	json_t   *req = json_pack("{s:s}", "op", "dlq.list"), *rep;
	struct cli_dlq_filters f = CLI_DLQ_FILTERS_INIT;
	long long t;
	char     *end;
	int       ch, rc;

	while ((ch = getopt_long(argc, argv, "g:k:h", opts, NULL)) != -1) {
		const char *bad = NULL;

		if (cli_dlq_filter(req, &f, ch, optarg, &bad))
			ch = 0;
		switch (ch) {
		case 0:
			break;
		case 'j':
			json = true;
			break;
		case 'a':
			json_object_set_new(req, "all", json_true());
			break;
		case 'm':
			t = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || t < 1 ||
			    t > 100000000)
				bad = "--max-records is 1..100000000";
			json_object_set_new(req, "max_records",
					    json_integer(t));
			break;
		default:
			json_decref(req);
			dlq__usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? CLI_OK : CLI_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "mailroom: dlq list: %s\n", bad);
			json_decref(req);
			return CLI_USAGE;
		}
	}
	if ((rc = cli_dlq_filters_end(req, &f, argc, argv, "dlq list",
				      dlq__usage)) != CLI_OK) {
		json_decref(req);
		return rc;
	}
	t = co->timeout_ms - 3000;
	json_object_set_new(req, "timeout_ms",
			    json_integer(t < 1000     ? 1000
					 : t > 600000 ? 600000
						      : t));
	rc = cli_dlq_request(co, "dlq list", req, json, &rep);
	if (rc == CLI_OK) {
		if (!json)
			dlq__print_list(rep);
		dlq__warn_cut(rep);
		dlq__note_states(rep, json);
	}
	json_decref(rep);
	return rc;
}

/* ---- show ---------------------------------------------------------------- */

/* A value on one line: text with \, tab, CR, LF escaped, or base64 as it
 * is (after "(base64) "). */
static void
dlq__print_value(json_t *o, const char *name)
{
	char        enc[64];
	const char *v = json_string_value(json_object_get(o, name)), *e;

	snprintf(enc, sizeof(enc), "%s_encoding", name);
	e = json_string_value(json_object_get(o, enc));
	if (v == NULL) {
		fputs("(null)", stdout);
		return;
	}
	if (e != NULL && strcmp(e, "base64") == 0) {
		printf("(base64) %s", v);
		return;
	}
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", stdout);
		else if (*v == '\n')
			fputs("\\n", stdout);
		else if (*v == '\r')
			fputs("\\r", stdout);
		else if (*v == '\t')
			fputs("\\t", stdout);
		else
			putchar(*v);
	}
}

static void
dlq__field(json_t *d, const char *name, const char *label)
{
	json_t *v = json_object_get(d, name);

	if (v == NULL)
		return;
	printf("%-15s ", label);
	if (json_is_string(v))
		dlq__print_value(d, name);
	else if (json_is_integer(v))
		printf("%lld", (long long)json_integer_value(v));
	else
		fputs("unknown", stdout);
	putchar('\n');
}

static void
dlq__print_show(json_t *rep)
{
	json_t *d = json_object_get(rep, "dead_letter"), *hs, *h;
	size_t  i;

	printf("%s/%lld@%lld\n",
	       json_string_value(json_object_get(rep, "topic")),
	       (long long)json_integer_value(json_object_get(rep, "partition")),
	       (long long)json_integer_value(json_object_get(rep, "offset")));
	dlq__field(d, "dialect", "dialect");
	printf("%-15s %s", "original",
	       json_string_value(json_object_get(d, "topic")) != NULL
		   ? json_string_value(json_object_get(d, "topic"))
		   : "?");
	if (json_is_integer(json_object_get(d, "partition")))
		printf("/%lld", (long long)json_integer_value(
				    json_object_get(d, "partition")));
	else
		fputs("/?", stdout);
	if (json_is_integer(json_object_get(d, "offset")))
		printf("@%lld\n", (long long)json_integer_value(
				      json_object_get(d, "offset")));
	else
		fputs("@?\n", stdout);
	dlq__field(d, "group", "group");
	dlq__field(d, "attempts", "attempts");
	dlq__field(d, "first_failure", "first failure");
	dlq__field(d, "last_failure", "last failure");
	dlq__field(d, "quarantined", "quarantined");
	dlq__field(rep, "time", "time");
	dlq__field(d, "reason", "reason");
	dlq__field(d, "fingerprint", "fingerprint");
	dlq__field(d, "replays", "replays");
	dlq__field(d, "dropped_headers", "dropped headers");
	dlq__field(d, "original_time", "original time");
	dlq__field(d, "exception", "exception");
	dlq__field(d, "message", "message");
	dlq__field(d, "cause", "cause");
	dlq__field(d, "task_id", "task");
	dlq__field(d, "stage", "stage");
	dlq__field(d, "class", "class");
	dlq__field(d, "stacktrace", "stack trace");
	dlq__field(rep, "key", "key");
	dlq__field(rep, "payload", "payload");
	hs = json_object_get(rep, "headers");
	printf("headers (%zu):\n", json_array_size(hs));
	json_array_foreach(hs, i, h)
	{
		printf("  %s: ", json_string_value(json_object_get(h, "name")));
		dlq__print_value(h, "value");
		putchar('\n');
	}
}

/* A partition or offset: digits only, within \p max. */
static bool
dlq__number(const char *s, long long max, long long *v)
{
	char *end;

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return false;
	*v = strtoll(s, &end, 10);
	return *end == '\0' && *v <= max;
}

static int
dlq__show(const struct cli_common *co, int argc, char **argv, bool json)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	long long p, o, t = co->timeout_ms - 3000;
	json_t   *rep;
	int       ch, rc;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'j') {
			json = true;
		} else {
			dlq__usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? CLI_OK : CLI_USAGE;
		}
	}
	if (optind + 3 != argc || *argv[optind] == '\0') {
		dlq__usage(stderr);
		return CLI_USAGE;
	}
	if (!dlq__number(argv[optind + 1], 2147483647LL, &p) ||
	    !dlq__number(argv[optind + 2], 9223372036854775807LL, &o)) {
		fprintf(stderr, "mailroom: dlq show: PARTITION and OFFSET are "
				"numbers >= 0\n");
		return CLI_USAGE;
	}
	rc = cli_dlq_request(
	    co, "dlq show",
	    json_pack("{s:s, s:s, s:I, s:I, s:I}", "op", "dlq.show", "topic",
		      argv[optind], "partition", (json_int_t)p, "offset",
		      (json_int_t)o, "timeout_ms",
		      (json_int_t)(t < 1000 ? 1000 : t > 600000 ? 600000 : t)),
	    json, &rep);
	if (rc == CLI_OK && !json)
		dlq__print_show(rep);
	json_decref(rep);
	return rc;
}

int
cli_dlq(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *sub;
	bool        json = false;
	int         ch;

	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (ch == 'j') {
			json = true;
		} else {
			dlq__usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? CLI_OK : CLI_USAGE;
		}
	}
	if (optind >= argc) {
		dlq__usage(stderr);
		return CLI_USAGE;
	}
	sub = argv[optind];
	// The subcommand's own options: parse from it, as from a command.
	argc -= optind;
	argv += optind;
	optind = 0;
	if (strcmp(sub, "list") == 0)
		return dlq__list(co, argc, argv, json);
	if (strcmp(sub, "show") == 0)
		return dlq__show(co, argc, argv, json);
	if (strcmp(sub, "replay") == 0)
		return cli_dlq_replay(co, argc, argv, json);
	if (strcmp(sub, "purge") == 0)
		return cli_dlq_purge(co, argc, argv, json);
	if (strcmp(sub, "resume") == 0) {
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
