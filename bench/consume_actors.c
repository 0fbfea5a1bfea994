/*
 * consume_bench's actor cases, on the data topic in key mode with a
 * zero-cost handler, W workers (--slow-inflight) and a credit of B
 * (--batch): `run` is
 * mr_consume_run (what `mailroom consume` does), `mirror` an mr_mirror
 * type whose actors' handle_cast does nothing (one actor per key, on an
 * actor system of one thread per core). From the first handler call to
 * the N-th; the mirror's final passivation is not timed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "consume_bench.h"
#include "mailroom/mirror.h"

struct act {
	atomic_llong first_ns;
	atomic_llong last_ns;
	atomic_long  handled;
	atomic_long  redelivered;
	atomic_int   finished;
	volatile int stop;
	long         target;
};

static void
act__count(struct act *a, const mr_delivery *d)
{
	long long zero = 0;

	atomic_compare_exchange_strong(&a->first_ns, &zero, bench_now_ns());
	if (d->attempt > 1)
		atomic_fetch_add(&a->redelivered, 1);
	if (atomic_fetch_add(&a->handled, 1) + 1 == a->target)
		atomic_store(&a->last_ns, bench_now_ns());
}

static int
act__handler(void *arg, const mr_delivery *d)
{
	act__count(arg, d);
	return MR_OK;
}

static int
act__init(mr_actor *self, void *arg, void **state)
{
	const mr_mirror_key *mk = arg;

	(void)self;
	*state = mk->arg;
	return MR_OK;
}

static int
act__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	(void)self;
	if (msg->type == MR_MSG_DELIVERY)
		act__count(state, msg->data);
	return MR_OK;
}

static const mr_behaviour act__behaviour = {
	.name        = "bench",
	.init        = act__init,
	.handle_cast = act__cast,
};

/* Stops the case once the target is handled, or without progress. */
static void *
act__watchdog(void *arg)
{
	struct act *a = arg;

	bench__wait_count(&a->handled, a->target, &a->finished);
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELAXED);
	return NULL;
}

void
bench__actors(const struct bench_opts *o, mr_client *c, bool mirror,
	      struct bench_result *res)
{
	const char       *name = mirror ? "mirror" : "run";
	struct act        a;
	mr_subscribe_opts so = {.order  = MR_ORDER_KEY,
				.credit = o->batch};
	mr_mirror_opts    mo = {.sub = &so};
	mr_consumer      *s  = NULL;
	mr_system        *sys = NULL;
	mr_mirror        *m   = NULL;
	const char       *topics[1] = {bench__data_topic};
	pthread_t         wd;
	char              group[300];
	double            c0;
	int               rc;

	memset(res, 0, sizeof(*res));
	memset(&a, 0, sizeof(a));
	a.target = o->count;
	mo.arg   = &a;
	bench__group(o, name, group, sizeof(group));
	if (mirror) {
		rc = mr_system_new(&sys, -1, 0);
		if (rc == MR_OK)
			rc = mr_mirror_new(&m, sys, c, bench__data_topic, group,
					   &act__behaviour, &mo);
	} else {
		rc = mr_subscribe(c, group, topics, 1, &so, &s);
	}
	if (rc != MR_OK || pthread_create(&wd, NULL, act__watchdog, &a) != 0) {
		fprintf(stderr, "consume_bench: %s: %s\n", name,
			mr_err_name(rc));
		mr_mirror_free(m);
		mr_system_free(sys);
		mr_consumer_free(s);
		return;
	}
	c0 = bench_cpu_secs();
	rc = mirror ? mr_mirror_run(m, &a.stop)
		    : mr_consume_run(s, o->slow_inflight, act__handler, &a,
				     &a.stop, 0);
	res->cpu_secs = bench_cpu_secs() - c0;
	atomic_store(&a.finished, 1);
	pthread_join(wd, NULL);
	if (rc != MR_OK)
		fprintf(stderr, "consume_bench: %s: %s: %s\n", name,
			mr_err_name(rc),
			mirror ? mr_mirror_error(m) : mr_client_last_error());
	res->msgs        = atomic_load(&a.handled);
	res->failed      = o->count > res->msgs ? o->count - res->msgs : 0;
	res->redelivered = atomic_load(&a.redelivered);
	res->secs = (double)(atomic_load(&a.last_ns) - atomic_load(&a.first_ns)) /
		    1e9;
	res->done = res->msgs >= o->count && res->secs > 0;
	mr_mirror_free(m);
	mr_system_free(sys);
	mr_consumer_free(s);
}
