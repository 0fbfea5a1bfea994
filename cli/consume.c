#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "cli/cli.h"
#include "proto/address.h"
#include "proto/frame.h"

#define CONSUME__WAIT_MS 1000
#define CONSUME__BATCH 100
#define CONSUME__TOPICS_MAX 64
#define CONSUME__CREDIT_MIN 1000   /* mailroomd's consumer.credit default */
#define CONSUME__CREDIT_MAX 100000 /* SUBSCRIBE's most */

enum consume__settle {
	CONSUME__ACK,
	CONSUME__NACK,
	CONSUME__REJECT,
	CONSUME__NONE,
};

struct consume__opts {
	const char          *group;
	mr_subscribe_opts    sub;
	long                 count; /* 0: no limit; with a guard, of deliveries
				       not claimed before */
	enum consume__settle settle;
	const char          *reason;
	int                  wait_ms;
	long                 idle_ms; /* 0: wait forever */
	int                  batch;
	bool                 json;
	const char          *guard_path;
	mr_guard            *guard; /* NULL: every delivery is new */
};

static volatile sig_atomic_t consume__stop;

static void
consume__on_signal(int sig)
{
	// A second signal exits at once: the deliveries held expire.
	if (consume__stop)
		_exit(128 + sig);
	consume__stop = 1;
}

static void
consume__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom consume [options] -g GROUP TOPIC...\n"
		"Prints each delivery as topic/partition@offset key=K "
		"attempt=N: payload,\nthen acks it (each batch once it is "
		"written and flushed, while the next\nbatch is fetched; the "
		"credit is twice --batch, or mailroomd's default if\nmore). "
		"When mailroomd restarts or cannot be reached, subscribes "
		"again\n(saying so on stderr) and goes on; deliveries not "
		"acked then come again. While\nmailroomd says Kafka is "
		"unreachable, says so once on stderr, and once when it\nis "
		"back.\n"
		"  -g, --group G        consumer group (required)\n"
		"      --mode M         key (default), partition or "
		"unordered\n"
		"  -n, --count N        stop after N deliveries (with --guard: "
		"N not marked\n"
		"                       duplicate)\n"
		"      --nack           nack instead of ack (delivered "
		"again)\n"
		"      --reject         reject instead of ack: not retried, "
		"quarantined in the\n"
		"                       dead-letter topic at once\n"
		"      --nack-reason T  the reason sent with --nack or "
		"--reject\n"
		"      --no-ack         neither: let the ack deadline expire\n"
		"      --deadline MS    the subscription's ack deadline\n"

		"      --wait MS        longest wait of one fetch (%d)\n"
		"      --idle MS        exit 0 once nothing came for MS "
		"(default: wait\n"
		"                       forever, or until -n deliveries)\n"
		"      --batch N        deliveries per fetch, 1..100000 (%d)\n"
		"      --reconnect MS   how long to try to subscribe again "
		"once the session\n"
		"                       is lost (%d); 0: exit at once\n"
		"      --json           one JSON object per delivery: topic, "
		"partition,\n"
		"                       offset, key (null: keyless), payload, "
		"headers\n"
		"                       ([name, value] pairs), id, attempt, "
		"redelivery,\n"
		"                       timestamp_ms, handle, duplicate (true: "
		"--guard had\n"
		"                       the id; always false without it); "
		"bytes that are not\n"
		"                       printable UTF-8 come as key_b64, "
		"payload_b64,\n"
		"                       {\"b64\": ...}\n"
		"      --guard FILE     the idempotency guard: each id is "
		"claimed in FILE\n"
		"                       (fdatasync) before it is printed; an "
		"id claimed\n"
		"                       before is acked and marked duplicate\n"
		"The subscription's retry policy and dead-letter topic "
		"(left out: mailroomd's\n"
		"consumer.retry.* and consumer.dead_letter.*; so is an empty "
		"part):\n"
		"      --max-attempts N deliveries before a message is "
		"quarantined, 0..1000;\n"
		"                       0: unlimited (retried forever)\n"
		"      --backoff INITIAL_MS[:MAX_MS[:MULTIPLIER[:JITTER]]]\n"
		"                       wait after a failed attempt "
		"(0..3600000), the longest\n"
		"                       wait (to 86400000), its growth "
		"(1..100), jitter (0..1)\n"
		"      --dlq-topic T    the dead-letter topic (default: "
		"<topic>.dlq)\n"
		"      --breaker N[/PERIOD_MS[:COOLDOWN_MS]]\n"
		"                       N failures (0..1000000; 0: no breaker) "
		"within PERIOD_MS\n"
		"                       pause delivery for COOLDOWN_MS "
		"(1..86400000 each)\n"
		"exit codes: 0 done (-n, --idle, SIGINT or SIGTERM), 1 "
		"refused or stdout\n"
		"closed, 2 usage, 3 mailroomd unreachable (also once "
		"--reconnect ran out),\n"
		"4 the --guard file cannot be opened\n",
		CONSUME__WAIT_MS, CONSUME__BATCH, MR_RECONNECT_TIMEOUT_MS);
}

static long
consume__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
consume__number(const char *s, long lo, long hi, long *out)
{
	char *end;
	long  v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* A fraction in [lo, hi] ('.' for the point: the command runs in the C
 * locale). */
static bool
consume__real(const char *s, double lo, double hi, double *out)
{
	char  *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

/* Split \p arg (copied into \p buf) into parts: part i + 1 starts after
 * the first seps[i] that follows part i; strlen(seps) + 1 parts at most.
 * @returns the number of parts, or 0 when the last separator comes once
 * more. */
static size_t
consume__parts(const char *arg, const char *seps, char *buf, size_t size,
	       char **parts)
{
	size_t n = 0, last = strlen(seps) - 1;

	snprintf(buf, size, "%s", arg);
	parts[n++] = buf;
	for (char *p = buf; *p != '\0'; p++) {
		if (*p != seps[n - 1 <= last ? n - 1 : last])
			continue;
		if (n - 1 > last)
			return 0;
		*p         = '\0';
		parts[n++] = p + 1;
	}
	return n;
}

/* --backoff INITIAL_MS[:MAX_MS[:MULTIPLIER[:JITTER]]]; an empty part is
 * left to mailroomd. @returns NULL, or what is wrong. */
static const char *
consume__backoff(const char *arg, mr_subscribe_opts *o)
{
	char   buf[128], *p[4];
	size_t n = consume__parts(arg, ":::", buf, sizeof(buf), p);
	long   v;

	if (n == 0 || strlen(arg) >= sizeof(buf))
		return "--backoff takes "
		       "INITIAL_MS[:MAX_MS[:MULTIPLIER[:JITTER]]]";
	if (p[0][0] != '\0') {
		if (!consume__number(p[0], 0, 3600000L, &v))
			return "--backoff: INITIAL_MS is 0..3600000";
		o->set |= MR_SUB_BACKOFF_INITIAL;
		o->backoff_initial_ms = (int)v;
	}
	if (n > 1 && p[1][0] != '\0') {
		if (!consume__number(p[1], 0, 86400000L, &v))
			return "--backoff: MAX_MS is 0..86400000";
		o->set |= MR_SUB_BACKOFF_MAX;
		o->backoff_max_ms = (int)v;
	}
	if ((o->set & MR_SUB_BACKOFF_INITIAL) &&
	    (o->set & MR_SUB_BACKOFF_MAX) &&
	    o->backoff_max_ms < o->backoff_initial_ms)
		return "--backoff: MAX_MS is below INITIAL_MS";
	if (n > 2 && p[2][0] != '\0') {
		if (!consume__real(p[2], 1, 100, &o->backoff_multiplier))
			return "--backoff: MULTIPLIER is a number from 1 to "
			       "100";
		o->set |= MR_SUB_BACKOFF_MULTIPLIER;
	}
	if (n > 3 && p[3][0] != '\0') {
		if (!consume__real(p[3], 0, 1, &o->backoff_jitter))
			return "--backoff: JITTER is a number from 0 to 1";
		o->set |= MR_SUB_BACKOFF_JITTER;
	}
	return NULL;
}

/* --breaker N[/PERIOD_MS[:COOLDOWN_MS]]; an empty part is left to
 * mailroomd. @returns NULL, or what is wrong. */
static const char *
consume__breaker(const char *arg, mr_subscribe_opts *o)
{
	char   buf[128], *p[3];
	size_t n = consume__parts(arg, "/:", buf, sizeof(buf), p);
	long   v;

	if (n == 0 || strlen(arg) >= sizeof(buf))
		return "--breaker takes N[/PERIOD_MS[:COOLDOWN_MS]]";
	if (p[0][0] != '\0') {
		if (!consume__number(p[0], 0, 1000000L, &v))
			return "--breaker: N is 0..1000000 (0: no breaker)";
		o->set |= MR_SUB_BREAKER_MAX;
		o->breaker_max = (int)v;
	}
	if (n > 1 && p[1][0] != '\0') {
		if (!consume__number(p[1], 1, 86400000L, &v))
			return "--breaker: PERIOD_MS is 1..86400000";
		o->set |= MR_SUB_BREAKER_PERIOD;
		o->breaker_period_ms = (int)v;
	}
	if (n > 2 && p[2][0] != '\0') {
		if (!consume__number(p[2], 1, 86400000L, &v))
			return "--breaker: COOLDOWN_MS is 1..86400000";
		o->set |= MR_SUB_BREAKER_COOLDOWN;
		o->breaker_cooldown_ms = (int)v;
	}
	return NULL;
}

/* ---- the loop ---------------------------------------------------------- */

/* What the loop works with; the error that ends it keeps its sentence in
 * why, since it may come from the settler's thread. */
struct consume__run {
	mr_consumer                *s;
	const struct consume__opts *o;
	struct cli_settler         *t; /* NULL: --no-ack */
	char                        why[512];
};

/* @returns \p rc, its sentence (this thread's) kept in r->why. */
static int
consume__fail(struct consume__run *r, int rc)
{
	snprintf(r->why, sizeof(r->why), "%s", mr_client_last_error());
	return rc;
}

/* Print one batch, flush it, and hand its handles to the settler; *got
 * counts the deliveries for -n. @returns MR_OK, MR_EIO when stdout failed
 * (nothing of the batch is settled then), or an error: the guard's, or an
 * earlier settle's. */
static int
consume__batch(struct consume__run *r, mr_batch *b, long *got)
{
	const struct consume__opts *o = r->o;
	size_t                      n = mr_batch_count(b);
	uint64_t                   *h = NULL;

	if (r->t != NULL && (h = malloc(n * sizeof(*h))) == NULL)
		return consume__fail(r, MR_ENOMEM);
	for (size_t i = 0; i < n; i++) {
		const mr_delivery *d   = mr_batch_at(b, i);
		int                grc = o->guard != NULL
					     ? mr_guard_claim(o->guard, d->id)
					     : MR_OK;

		if (grc != MR_OK && grc != MR_EEXIST) {
			// Not recorded: nothing of the batch is settled.
			free(h);
			return consume__fail(r, grc);
		}
		if (!cli_out_delivery(d, o->json, grc == MR_EEXIST)) {
			free(h);
			return consume__fail(r, MR_ENOMEM);
		}
		*got += grc != MR_EEXIST;
		if (h != NULL)
			h[i] = d->handle;
	}
	// Written and flushed before anything of it is settled: acked means
	// printed, whatever happens to this process next.
	if (fflush(stdout) != 0 || ferror(stdout)) {
		free(h);
		return MR_EIO;
	}
	if (r->t == NULL)
		return MR_OK;
	return cli_settler_put(r->t, h, n, r->why, sizeof(r->why));
}

/* Subscribe again after \p lost (its sentence in r->why), saying so on
 * stderr, once every handle of the lost session is settled or dropped.
 * @returns MR_OK (also when a signal stopped it), or the error that ends
 * the command. */
static int
consume__reconnect(struct consume__run *r, int lost)
{
	const struct consume__opts *o = r->o;
	char                        why[512];
	int                         rc;

	// A handle of the old session must never be settled on the new one.
	if (r->t != NULL &&
	    (rc = cli_settler_drain(r->t, why, sizeof(why))) != MR_OK &&
	    !mr_consumer_lost(rc)) {
		snprintf(r->why, sizeof(r->why), "%s", why);
		return rc;
	}
	fprintf(stderr, "mailroom: consume: lost the session (%s: %s); "
		"subscribing again to group %s\n", mr_err_name(lost),
		mr_err_sentence(lost, r->why), o->group);
	rc = mr_consumer_resubscribe(r->s, &consume__stop);
	if (rc == MR_OK)
		fprintf(stderr, "mailroom: consume: subscribed again to group "
			"%s (session %llu); deliveries not acked come "
			"again\n", o->group,
			(unsigned long long)mr_consumer_session(r->s));
	else
		consume__fail(r, rc);
	return consume__stop ? MR_OK : rc;
}

/* Fetch the next batch while the settler acks the last one: the FETCH of
 * batch k + 1 and the SETTLE of batch k are in flight together. In key
 * mode mailroomd still hands out a key's next message only once its last
 * one is acked, so what is printed keeps each key's order. */
static int
consume__loop(mr_client *c, struct consume__run *r)
{
	const struct consume__opts *o    = r->o;
	long                        last = consume__now_ms(), got = 0;
	int                         rc   = MR_OK;
	struct cli_watch            w;

	cli_watch_init(&w, c);
	for (;;) {
		long      want = o->batch, wait = o->wait_ms;
		bool      done = consume__stop ||
			    (o->count > 0 && got >= o->count);
		mr_batch *b;

		if (!done && o->count > 0 && want > o->count - got)
			want = o->count - got;
		if (!done && o->idle_ms > 0) {
			long left = o->idle_ms - (consume__now_ms() - last);

			done = left <= 0;
			if (wait > left)
				wait = left;
		}
		if (done) {
			// What was printed is settled before the end; a lost
			// session is subscribed again as before, then done.
			rc = r->t != NULL ? cli_settler_drain(r->t, r->why,
							      sizeof(r->why))
					  : MR_OK;
		} else {
			rc = mr_fetch(r->s, (size_t)want, 0, (int)wait, &b);
			if (rc == MR_OK) {
				size_t n = mr_batch_count(b);

				if (n > 0) {
					last = consume__now_ms();
					rc   = consume__batch(r, b, &got);
				}
				mr_batch_free(b);
				cli_watch_check(&w, consume__now_ms(), n == 0);
			} else {
				consume__fail(r, rc);
			}
		}
		// The handles of the lost session are all gone with its
		// batches: nothing of it is settled after this.
		if (rc != MR_OK && o->sub.reconnect_timeout_ms >= 0 &&
		    mr_consumer_lost(rc)) {
			rc   = consume__reconnect(r, rc);
			last = consume__now_ms();
		}
		if (rc != MR_OK || done)
			break;
	}
	return rc;
}

static bool
consume__parse(struct consume__opts *o, int argc, char **argv, int *code)
{
	static const struct option opts[] = {
	    {"group", required_argument, NULL, 'g'},
	    {"mode", required_argument, NULL, 'm'},
	    {"count", required_argument, NULL, 'n'},
	    {"nack", no_argument, NULL, 'N'},
	    {"reject", no_argument, NULL, 'X'},
	    {"nack-reason", required_argument, NULL, 'r'},
	    {"max-attempts", required_argument, NULL, 'M'},
	    {"backoff", required_argument, NULL, 'B'},
	    {"dlq-topic", required_argument, NULL, 'D'},
	    {"breaker", required_argument, NULL, 'K'},
	    {"no-ack", no_argument, NULL, 'A'},
	    {"deadline", required_argument, NULL, 'd'},
	    {"wait", required_argument, NULL, 'w'},
	    {"idle", required_argument, NULL, 'i'},
	    {"batch", required_argument, NULL, 'b'},
	    {"reconnect", required_argument, NULL, 'R'},
	    {"json", no_argument, NULL, 'j'},
	    {"guard", required_argument, NULL, 'G'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *bad = NULL;
	long        v   = 0;
	int         ch;

	*code = CLI_USAGE;
	while (bad == NULL &&
	       (ch = getopt_long(argc, argv, "g:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'g':
			o->group = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "key") == 0)
				o->sub.order = MR_ORDER_KEY;
			else if (strcmp(optarg, "partition") == 0)
				o->sub.order = MR_ORDER_PARTITION;
			else if (strcmp(optarg, "unordered") == 0)
				o->sub.order = MR_ORDER_UNORDERED;
			else
				bad = "--mode takes key, partition or "
				      "unordered";
			break;
		case 'n':
			if (!consume__number(optarg, 1, 1000000000L,
					     &o->count))
				bad = "--count takes a number > 0";
			break;
		case 'N':
			o->settle = CONSUME__NACK;
			break;
		case 'X':
			o->settle = CONSUME__REJECT;
			break;
		case 'M':
			if (!consume__number(optarg, 0, 1000L, &v))
				bad = "--max-attempts takes 0..1000 (0: "
				      "unlimited)";
			o->sub.set |= MR_SUB_MAX_ATTEMPTS;
			o->sub.max_attempts = (int)v;
			break;
		case 'B':
			bad = consume__backoff(optarg, &o->sub);
			break;
		case 'D':
			if (!mri_topic_valid(optarg, strlen(optarg)))
				bad = "--dlq-topic takes a topic: "
				      MRI_TOPIC_RULE;
			o->sub.dlq_topic = optarg;
			break;
		case 'K':
			bad = consume__breaker(optarg, &o->sub);
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'A':
			o->settle = CONSUME__NONE;
			break;
		case 'd':
			if (!consume__number(optarg, 1, 86400000L, &v))
				bad = "--deadline takes milliseconds > 0";
			o->sub.ack_deadline_ms = (int)v;
			break;
		case 'w':
			if (!consume__number(optarg, 0, 300000L, &v))
				bad = "--wait takes 0..300000 milliseconds";
			o->wait_ms = (int)v;
			break;
		case 'i':
			if (!consume__number(optarg, 1, 1000000000L,
					     &o->idle_ms))
				bad = "--idle takes milliseconds > 0";
			break;
		case 'b':
			if (!consume__number(optarg, 1, 100000L, &v))
				bad = "--batch takes 1..100000";
			o->batch = (int)v;
			break;
		case 'R':
			if (!consume__number(optarg, 0, 86400000L, &v))
				bad = "--reconnect takes 0..86400000 "
				      "milliseconds";
			o->sub.reconnect_timeout_ms = v > 0 ? (int)v : -1;
			break;
		case 'j':
			o->json = true;
			break;
		case 'G':
			o->guard_path = optarg;
			break;
		case 'h':
			consume__usage(stdout);
			*code = CLI_OK;
			return false;
		default:
			consume__usage(stderr);
			return false;
		}
	}
	if (bad == NULL && o->group == NULL)
		bad = "-g GROUP is required";
	if (bad == NULL && optind >= argc)
		bad = "name at least one topic";
	if (bad == NULL && argc - optind > CONSUME__TOPICS_MAX)
		bad = "at most 64 topics";
	if (bad == NULL && o->reason != NULL && o->settle != CONSUME__NACK &&
	    o->settle != CONSUME__REJECT)
		bad = "--nack-reason goes with --nack or --reject";
	for (int i = optind; bad == NULL && i < argc; i++)
		if (!mri_topic_valid(argv[i], strlen(argv[i])))
			bad = "a topic is " MRI_TOPIC_RULE;
		else if (o->sub.dlq_topic != NULL &&
			 strcmp(o->sub.dlq_topic, argv[i]) == 0)
			bad = "--dlq-topic is one of the topics consumed: its "
			      "dead letters would come back";
	if (bad != NULL) {
		fprintf(stderr, "mailroom: consume: %s\n", bad);
		return false;
	}
	return true;
}

static enum cli_settle
consume__kind(enum consume__settle settle)
{
	switch (settle) {
	case CONSUME__NACK:
		return CLI_SETTLE_NACK;
	case CONSUME__REJECT:
		return CLI_SETTLE_REJECT;
	default:
		return CLI_SETTLE_ACK;
	}
}

int
cli_consume(const struct cli_common *co, int argc, char **argv)
{
	struct consume__opts o = {.wait_ms = CONSUME__WAIT_MS,
				  .batch   = CONSUME__BATCH,
				  .reason  = NULL};
	struct consume__run  r = {.o = &o};
	struct sigaction     sa;
	mr_client           *c;
	mr_consumer         *s;
	char                 why[512];
	int                  rc, src, code;

	if (!consume__parse(&o, argc, argv, &code))
		return code;
	// Room for two batches unsettled at once, the one being printed and
	// the one being acked, or the next FETCH waits for the last SETTLE;
	// never less than mailroomd's default credit.
	if (o.settle != CONSUME__NONE && 2L * o.batch > CONSUME__CREDIT_MIN)
		o.sub.credit = 2 * o.batch > CONSUME__CREDIT_MAX
				   ? CONSUME__CREDIT_MAX
				   : 2 * o.batch;
	if (o.settle == CONSUME__NACK && o.reason == NULL)
		o.reason = "nacked by mailroom consume";
	if (o.settle == CONSUME__REJECT && o.reason == NULL)
		o.reason = "rejected by mailroom consume";
	if (o.guard_path != NULL) {
		char err[256];

		if (mr_guard_open(&o.guard, o.guard_path, err, sizeof(err)) !=
		    MR_OK) {
			fprintf(stderr, "mailroom: --guard: %s\n", err);
			return CLI_INPUT;
		}
	}
	if (cli_connect(co, &c) != MR_OK) {
		mr_guard_free(o.guard);
		return CLI_UNREACHABLE;
	}
	rc = mr_subscribe(c, o.group, (const char *const *)&argv[optind],
			  (size_t)(argc - optind), &o.sub, &s);
	if (rc != MR_OK) {
		cli_report("subscribe", rc);
		mr_client_free(c);
		mr_guard_free(o.guard);
		return cli_exit_for(rc);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = consume__on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	// A closed stdout is seen by ferror(), before the batch is acked.
	signal(SIGPIPE, SIG_IGN);
	cli_out_init();

	r.s = s;
	rc  = MR_OK;
	if (o.settle != CONSUME__NONE)
		rc = cli_settler_start(&r.t, s, consume__kind(o.settle),
				       o.reason);
	if (rc == MR_OK)
		rc = consume__loop(c, &r);
	else
		consume__fail(&r, rc);
	// Whatever ended the loop, what was handed over is settled first.
	src = cli_settler_stop(r.t, why, sizeof(why));
	if (rc == MR_OK && src != MR_OK) {
		rc = src;
		snprintf(r.why, sizeof(r.why), "%s", why);
	}
	if (rc == MR_EIO)
		code = CLI_REFUSED; // stdout went away: nothing to report to
	else if (rc != MR_OK) {
		fprintf(stderr, "mailroom: consume: %s: %s\n", mr_err_name(rc),
			mr_err_sentence(rc, r.why));
		code = cli_exit_refused(rc);
	} else {
		code = CLI_OK;
	}
	cli_out_fini();
	mr_consumer_free(s);
	mr_client_free(c);
	mr_guard_free(o.guard);
	return code;
}
