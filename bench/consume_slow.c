/*
 * consume_bench's slow case: mr_consume_run with W workers and a handler
 * that sleeps (or spins) a time given by the offset (consume_bench.c says
 * what is timed).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "consume_bench.h"

/* ---- slow handler ----------------------------------------------------- */

struct slow {
	const struct bench_opts *o;
	atomic_llong             first_ns;
	atomic_long              handled;
	atomic_long              redelivered;
	atomic_int               running;
	atomic_int               peak;
	atomic_int               finished;
	volatile int             stop;
};

/* The work of the message at \p offset: the same in every mode. */
int
slow__cost_us(const struct bench_opts *o, int64_t offset)
{
	uint64_t x = (uint64_t)offset ^ BENCH_SLOW_SEED;

	// splitmix64
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return o->slow_min_us +
	       (int)(x % (uint64_t)(o->slow_max_us - o->slow_min_us + 1));
}

/* On one of mr_consume_run's workers. */
static int
slow__handler(void *arg, const mr_delivery *d)
{
	struct slow *sl = arg;
	int64_t      us = slow__cost_us(sl->o, d->offset);
	long long    zero = 0;
	int          now_running, peak;

	atomic_compare_exchange_strong(&sl->first_ns, &zero, bench_now_ns());
	now_running = atomic_fetch_add(&sl->running, 1) + 1;
	peak        = atomic_load(&sl->peak);
	while (now_running > peak &&
	       !atomic_compare_exchange_weak(&sl->peak, &peak, now_running))
		;
	if (d->attempt > 1)
		atomic_fetch_add(&sl->redelivered, 1);
	if (sl->o->slow_spin) {
		int64_t end = bench_now_ns() + us * 1000;

		while (bench_now_ns() < end)
			;
	} else {
		struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

		while (nanosleep(&ts, &ts) != 0)
			;
	}
	atomic_fetch_sub(&sl->running, 1);
	atomic_fetch_add(&sl->handled, 1);
	return MR_OK;
}

/* Sets sl->stop when the case makes no progress for BENCH_IDLE_MS. */
static void *
slow__watchdog(void *arg)
{
	struct slow *sl = arg;

	if (bench__wait_count(&sl->handled, sl->o->slow_count,
			      &sl->finished) < sl->o->slow_count &&
	    !atomic_load(&sl->finished)) {
		fprintf(stderr, "consume_bench: slow: no progress, stopping\n");
		__atomic_store_n(&sl->stop, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

void
bench__slow(const struct bench_opts *o, mr_client *c, const char *name,
	    mr_order order, struct bench_result *res)
{
	struct slow  sl;
	mr_consumer *s;
	pthread_t    wd;
	char         group[300];
	int64_t      t1;
	double       c0;
	int          rc;

	memset(res, 0, sizeof(*res));
	memset(&sl, 0, sizeof(sl));
	sl.o = o;
	bench__group(o, name, group, sizeof(group));
	if ((s = bench__subscribe(c, group, bench__slow_topic, order,
				  o->slow_inflight)) == NULL)
		return;
	if (pthread_create(&wd, NULL, slow__watchdog, &sl) != 0) {
		mr_consumer_free(s);
		return;
	}
	c0 = bench_cpu_secs();
	rc = mr_consume_run(s, o->slow_inflight, slow__handler, &sl, &sl.stop,
			    (size_t)o->slow_count);
	t1 = bench_now_ns();
	atomic_store(&sl.finished, 1);
	pthread_join(wd, NULL);
	if (rc != MR_OK)
		fprintf(stderr, "consume_bench: %s: mr_consume_run: %s: %s\n",
			name, mr_err_name(rc), mr_client_last_error());
	res->msgs        = atomic_load(&sl.handled);
	res->failed      = o->slow_count - res->msgs;
	res->redelivered = atomic_load(&sl.redelivered);
	res->secs        = (double)(t1 - atomic_load(&sl.first_ns)) / 1e9;
	res->cpu_secs    = bench_cpu_secs() - c0;
	res->peak        = atomic_load(&sl.peak);
	res->done        = rc == MR_OK && res->msgs > 0;
	mr_consumer_free(s);
}

