/*
 * A bank-account service on mailroom's mirrored actors (issue #11, item 8;
 * README, "Examples"): each account is a virtual actor of key "acct-N" on a
 * Kafka topic, its balance durable in the compacted topic "<topic>.state".
 * A deposit is a record of the account's key whose payload is "+AMOUNT".
 *
 *   bank serve    [--url URL] [--topic T] [--group G] [--threads N]
 *                 [--work-ms MS]
 *       serve the accounts until SIGINT or SIGTERM, as one member of
 *       group G; several processes share the accounts (a rebalance moves
 *       partitions, and their accounts, between them);
 *   bank balances [--url URL] [--topic T] [--json]
 *       every account's balance as saved, from the state topic.
 *
 * The process runs a supervision tree: a one_for_one supervisor over the
 * ledger (a local actor, registered as "ledger", counting what this
 * process applied), and the account type, which is its own supervisor
 * (its crash intensity stops the run). Built on the public API only.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailroom/mailroom.h"

#define LEDGER_APPLIED 1 /* cast: an account applied a deposit */
#define LEDGER_REPORT  2 /* call: the counts */

static volatile int stop_run; /* set by SIGINT or SIGTERM */

static void
on_signal(int sig)
{
	(void)sig;
	__atomic_store_n(&stop_run, 1, __ATOMIC_RELAXED); // lock-free
}

/* ---- the ledger: what this process applied ---------------------------- */

struct ledger {
	long long deposits, activations, restored;
	long long shown; /* deposits as the last progress line said */
};

enum { LEDGER_ACTIVATED = 3, LEDGER_RESTORED = 4, LEDGER_TICK = 5 };

static int
ledger_init(mr_actor *self, void *arg, void **state)
{
	(void)arg;
	*state = calloc(1, sizeof(struct ledger));
	if (*state == NULL)
		return MR_ENOMEM;
	mr_send_after(mr_actor_system(self), mr_self(self), 1000, LEDGER_TICK,
		      NULL, 0);
	return mr_register(mr_actor_system(self), "ledger", mr_self(self));
}

static int
ledger_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct ledger *l = state;

	(void)self;
	if (msg->type == LEDGER_APPLIED)
		l->deposits++;
	else if (msg->type == LEDGER_ACTIVATED)
		l->activations++;
	else if (msg->type == LEDGER_RESTORED)
		l->restored++;
	return MR_OK;
}

/* Once a second: a progress line when something was applied. */
static int
ledger_info(mr_actor *self, void *state, const mr_info *info)
{
	struct ledger *l = state;

	if (info->kind != MR_INFO_TIMER)
		return MR_OK;
	if (l->deposits != l->shown) {
		printf("bank: %lld deposits applied here, %lld accounts "
		       "activated (%lld from their snapshot)\n",
		       l->deposits, l->activations, l->restored);
		fflush(stdout);
		l->shown = l->deposits;
	}
	mr_send_after(mr_actor_system(self), mr_self(self), 1000, LEDGER_TICK,
		      NULL, 0);
	return MR_OK;
}

static int
ledger_call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	(void)msg;
	return mr_reply(mr_actor_system(self), from, state,
			sizeof(struct ledger));
}

static void
ledger_terminate(mr_actor *self, void *state, int reason)
{
	(void)reason;
	mr_unregister(mr_actor_system(self), "ledger");
	free(state);
}

static const mr_behaviour ledger_behaviour = {
	.name        = "ledger",
	.init        = ledger_init,
	.handle_cast = ledger_cast,
	.handle_call = ledger_call,
	.handle_info = ledger_info,
	.terminate   = ledger_terminate,
};

static void
ledger_tell(mr_system *sys, uint32_t type)
{
	mr_pid l = mr_whereis(sys, "ledger");

	if (l != 0)
		mr_cast(sys, l, type, NULL, 0);
}

/* ---- an account ------------------------------------------------------- */

struct account {
	long long balance;
};

static int work_ms; /* --work-ms: a slow handler, for the demo's kill */

static int
account_init(mr_actor *self, void *arg, void **state)
{
	const mr_mirror_key *mk = arg;
	struct account      *a  = calloc(1, sizeof(*a));
	char                 buf[32];

	if (a == NULL)
		return MR_ENOMEM;
	if (mk->snapshot != NULL) {
		snprintf(buf, sizeof(buf), "%.*s",
			 (int)(mk->snapshot_len < 31 ? mk->snapshot_len : 31),
			 (const char *)mk->snapshot);
		a->balance = atoll(buf);
		ledger_tell(mr_actor_system(self), LEDGER_RESTORED);
	}
	ledger_tell(mr_actor_system(self), LEDGER_ACTIVATED);
	*state = a;
	return MR_OK;
}

static int
account_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct account    *a = state;
	const mr_delivery *d = msg->data;
	char               buf[32];
	long long          v;

	if (msg->type != MR_MSG_DELIVERY)
		return MR_OK;
	snprintf(buf, sizeof(buf), "%.*s",
		 (int)(d->payload_len < 31 ? d->payload_len : 31),
		 (const char *)d->payload);
	if (sscanf(buf, "+%lld", &v) != 1)
		return MR_EREJECT; // not a deposit: to the dead-letter topic
	if (work_ms > 0)
		nanosleep(&(struct timespec){0, work_ms * 1000000L}, NULL);
	a->balance += v;
	ledger_tell(mr_actor_system(self), LEDGER_APPLIED);
	return MR_OK;
}

static void
account_terminate(mr_actor *self, void *state, int reason)
{
	(void)self;
	(void)reason;
	free(state);
}

static int
account_save(void *state, void **out, size_t *out_len, void *arg)
{
	struct account *a = state;
	char           *b = malloc(32);

	(void)arg;
	if (b == NULL)
		return MR_ENOMEM;
	*out_len = (size_t)snprintf(b, 32, "%lld", a->balance);
	*out     = b;
	return MR_OK;
}

static const mr_behaviour account_behaviour = {
	.name        = "account",
	.init        = account_init,
	.handle_cast = account_cast,
	.terminate   = account_terminate,
};

/* ---- commands --------------------------------------------------------- */

struct opts {
	const char *url, *topic, *group;
	int         threads;
	bool        json;
};

static int
serve(const struct opts *o)
{
	static const mr_child_spec children[] = {
	    {.id          = "ledger",
	     .behaviour   = &ledger_behaviour,
	     .restart     = MR_PERMANENT,
	     .shutdown_ms = 1000},
	};
	mr_sup_spec     spec = {.strategy  = MR_ONE_FOR_ONE,
				.intensity = 3,
				.period_ms = 5000,
				.children  = children,
				.nchildren = 1,
				.name      = "bank"};
	char            state[300], err[256];
	mr_mirror_opts  mo = {.idle_ms     = 60000,
			      .state_topic = state,
			      .save        = account_save};
	mr_client      *c;
	mr_system      *sys;
	mr_mirror      *m;
	mr_pid          sup;
	mr_mirror_stats st;
	void           *rep = NULL;
	size_t          n   = 0;
	int             rc;

	snprintf(state, sizeof(state), "%s.state", o->topic);
	if ((rc = mr_client_new(&c, o->url, NULL, err, sizeof(err))) !=
	    MR_OK) {
		fprintf(stderr, "bank: cannot reach mailroomd: %s\n", err);
		return 3;
	}
	if ((rc = mr_system_new(&sys, o->threads, 0)) != MR_OK) {
		fprintf(stderr, "bank: cannot start: %s\n", mr_err_name(rc));
		mr_client_free(c);
		return 1;
	}
	if ((rc = mr_supervisor_start(sys, &spec, &sup)) != MR_OK ||
	    (rc = mr_mirror_new(&m, sys, c, o->topic, o->group,
				&account_behaviour, &mo)) != MR_OK) {
		fprintf(stderr, "bank: cannot start: %s\n", mr_err_name(rc));
		mr_system_free(sys);
		mr_client_free(c);
		return 1;
	}
	printf("bank: serving the accounts of %s in group %s (balances in "
	       "%s)\n",
	       o->topic, o->group, state);
	fflush(stdout);
	rc = mr_mirror_run(m, &stop_run);
	if (rc != MR_OK)
		fprintf(stderr, "bank: %s: %s\n", mr_err_name(rc),
			mr_mirror_error(m));
	mr_mirror_stats_get(m, &st);
	printf("bank: %llu deliveries, %llu skipped (already in their "
	       "account's saved balance), %llu balances saved, %llu "
	       "partitions restored, %llu hand-offs\n",
	       (unsigned long long)st.deliveries,
	       (unsigned long long)st.skipped,
	       (unsigned long long)st.snapshots,
	       (unsigned long long)st.restores,
	       (unsigned long long)st.handoffs);
	if (mr_call(sys, mr_whereis(sys, "ledger"), LEDGER_REPORT, NULL, 0,
		    5000, &rep, &n) == MR_OK &&
	    n == sizeof(struct ledger)) {
		struct ledger *l = rep;

		printf("bank: stopped: %lld deposits applied here, %lld "
		       "accounts activated (%lld from their snapshot)\n",
		       l->deposits, l->activations, l->restored);
	}
	free(rep);
	mr_mirror_free(m);
	mr_system_free(sys);
	mr_client_free(c);
	return rc == MR_OK ? 0 : 1;
}

static int
balance_print(void *arg, const void *key, size_t key_len, const void *snap,
	      size_t len, int32_t partition, int64_t offset)
{
	const struct opts   *o = arg;
	const unsigned char *k = key;
	char                 b[32];

	snprintf(b, sizeof(b), "%.*s", (int)(len < 31 ? len : 31),
		 (const char *)snap);
	if (o->json) {
		printf("{\"account\":\"");
		for (size_t i = 0; i < key_len; i++)
			if (k[i] < 0x20 || k[i] == '"' || k[i] == '\\')
				printf("\\u%04x", k[i]);
			else
				putchar(k[i]);
		printf("\",\"balance\":%lld,\"partition\":%d,\"offset\":%lld}"
		       "\n",
		       atoll(b), (int)partition,
		       (long long)offset);
	} else
		printf("%.*s\t%.*s\n", (int)key_len, (const char *)key,
		       (int)len, (const char *)snap);
	return MR_OK;
}

static int
balances(const struct opts *o)
{
	char       state[300], err[256];
	mr_client *c;
	int        rc;

	snprintf(state, sizeof(state), "%s.state", o->topic);
	if ((rc = mr_client_new(&c, o->url, NULL, err, sizeof(err))) !=
	    MR_OK) {
		fprintf(stderr, "bank: cannot reach mailroomd: %s\n", err);
		return 3;
	}
	rc = mr_mirror_snapshots(c, state, balance_print, (void *)o);
	mr_client_free(c);
	return rc == MR_OK ? 0 : 1;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: bank serve [--url URL] [--topic T] [--group G] "
		   "[--threads N] [--work-ms MS]\n"
		   "       bank balances [--url URL] [--topic T] [--json]\n"
		   "Accounts are the keys of topic T (default accounts); a "
		   "deposit is a record\nwhose payload is +AMOUNT. serve runs "
		   "until SIGINT or SIGTERM; balances reads\nT.state. URL: "
		   "$MAILROOM_URL, else %s.\n",
		   MR_DEFAULT_URL);
}

int
main(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"topic", required_argument, NULL, 't'},
	    {"group", required_argument, NULL, 'g'},
	    {"threads", required_argument, NULL, 'n'},
	    {"work-ms", required_argument, NULL, 'w'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct opts o = {.topic = "accounts", .group = "bank", .threads = -1};
	const char *cmd;
	int         ch;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (ch) {
		case 'u':
			o.url = optarg;
			break;
		case 't':
			o.topic = optarg;
			break;
		case 'g':
			o.group = optarg;
			break;
		case 'n':
			o.threads = atoi(optarg);
			break;
		case 'w':
			work_ms = atoi(optarg);
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o.threads == 0 || work_ms < 0 ||
	    work_ms > 999) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "serve") == 0) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		return serve(&o);
	}
	if (strcmp(cmd, "balances") == 0)
		return balances(&o);
	usage(stderr);
	return 2;
}
