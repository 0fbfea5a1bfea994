/*
 * consume_bench's mailroom side: the unordered, key and partition cases
 * (consume_bench.c says what is timed), with one group or several reading
 * at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consume_bench.h"

/* ---- mailroom, zero-cost handler ------------------------------------- */

struct mrc {
	mr_consumer *s;
	long         target;
	int          batch;
	atomic_long  acked;
	atomic_long  redelivered;
	atomic_long  ack_failed;
	atomic_long  fetches;
	atomic_long  empty;
	atomic_llong first_ns;
	atomic_llong last_ns;
	atomic_int   stop;
	atomic_int   have_err;
	char         err[BENCH_ERR_MAX];
};

static void
mrc__error(struct mrc *m, const char *what, int rc)
{
	if (atomic_exchange(&m->have_err, 1) == 0)
		snprintf(m->err, sizeof(m->err), "%s: %s: %s", what,
			 mr_err_name(rc), mr_client_last_error());
	atomic_store(&m->stop, 1);
}

static void
bench__max_ns(atomic_llong *v, long long now)
{
	long long last = atomic_load(v);

	while (now > last && !atomic_compare_exchange_weak(v, &last, now))
		;
}

static void *
mrc__fetcher(void *arg)
{
	struct mrc *m = arg;
	uint64_t   *h = malloc((size_t)m->batch * sizeof(*h));
	size_t      sum = 0;

	if (h == NULL) {
		mrc__error(m, "out of memory", MR_ENOMEM);
		return NULL;
	}
	while (!atomic_load(&m->stop)) {
		mr_batch *b;
		size_t    n, failed = 0;
		long long zero = 0;
		int       rc;

		rc = mr_fetch(m->s, (size_t)m->batch, 0, BENCH_FETCH_WAIT_MS,
			      &b);
		if (rc != MR_OK) {
			mrc__error(m, "mr_fetch", rc);
			break;
		}
		if ((n = mr_batch_count(b)) == 0) {
			mr_batch_free(b);
			atomic_fetch_add(&m->empty, 1);
			continue;
		}
		atomic_fetch_add(&m->fetches, 1);
		atomic_compare_exchange_strong(&m->first_ns, &zero,
					       bench_now_ns());
		for (size_t i = 0; i < n; i++) {
			const mr_delivery *d = mr_batch_at(b, i);

			h[i] = d->handle;
			sum += d->payload_len;
			if (d->attempt > 1)
				atomic_fetch_add(&m->redelivered, 1);
		}
		rc = mr_consumer_ack(m->s, h, n, &failed);
		mr_batch_free(b);
		if (rc != MR_OK) {
			mrc__error(m, "mr_consumer_ack", rc);
			break;
		}
		bench__max_ns(&m->last_ns, bench_now_ns());
		atomic_fetch_add(&m->ack_failed, (long)failed);
		if (atomic_fetch_add(&m->acked, (long)(n - failed)) +
			(long)(n - failed) >=
		    m->target)
			atomic_store(&m->stop, 1);
	}
	free(h);
	(void)sum;
	return NULL;
}

/* ---- the same through mr_consume_run_async (--client async) ---------- */

static void
mrc__async_handler(void *arg, const mr_delivery *d, mr_pending *p)
{
	struct mrc *m    = arg;
	long long   zero = 0;

	atomic_compare_exchange_strong(&m->first_ns, &zero, bench_now_ns());
	if (d->attempt > 1)
		atomic_fetch_add(&m->redelivered, 1);
	atomic_fetch_add(&m->acked, 1);
	mr_pending_done(p, MR_OK);
}

/* The fetcher, settlers and the handler of mr_consume_run_async, until
 * m->target deliveries are handled and settled. */
static void *
mrc__async(void *arg)
{
	struct mrc *m  = arg;
	int         rc = mr_consume_run_async(m->s, mrc__async_handler, m,
					      NULL, (size_t)m->target);

	if (rc != MR_OK)
		mrc__error(m, "mr_consume_run_async", rc);
	bench__max_ns(&m->last_ns, bench_now_ns());
	return NULL;
}

mr_client *
bench__connect(const struct bench_opts *o)
{
	mr_client_opts co = {.timeout_ms = o->timeout_ms};
	mr_client     *c;
	char           errstr[512];
	int            rc;

	rc = mr_client_new(&c, o->url, &co, errstr, sizeof(errstr));
	if (rc != MR_OK) {
		fprintf(stderr, "consume_bench: mr_client_new(%s): %s: %s\n",
			o->url, mr_err_name(rc), errstr);
		return NULL;
	}
	return c;
}

mr_consumer *
bench__subscribe(mr_client *c, const char *group, const char *topic,
		 mr_order order, int credit)
{
	mr_subscribe_opts so = {.order = order, .credit = credit};
	mr_consumer      *s;
	int               rc;

	rc = mr_subscribe(c, group, &topic, 1, &so, &s);
	if (rc != MR_OK) {
		fprintf(stderr, "consume_bench: mr_subscribe(%s): %s: %s\n",
			group, mr_err_name(rc), mr_client_last_error());
		return NULL;
	}
	return s;
}

/* The first \p n messages of the data topic in \p order, F fetchers per
 * group, o->groups groups at once (each with a client of its own when more
 * than one): messages acked by all, from the first delivery of any to the
 * last ack of any. */
void
bench__mr(const struct bench_opts *o, mr_client *c, const char *name,
	  mr_order order, long n, char *group, size_t group_size,
	  struct bench_result *res)
{
	pthread_t   t[BENCH_GROUPS_MAX][BENCH_FETCHERS_MAX];
	struct mrc *m;
	mr_client  *cs[BENCH_GROUPS_MAX] = {NULL};
	int         started[BENCH_GROUPS_MAX] = {0};
	int         credit = o->fetchers * o->batch, ng = 0;
	long long   first = 0, last = 0;
	double      c0;

	memset(res, 0, sizeof(*res));
	if ((m = calloc((size_t)o->groups, sizeof(*m))) == NULL)
		return;
	if (credit > 100000)
		credit = 100000;
	bench_procs_start(o->mrd_pid, o->kafka_pid, res);
	c0 = bench_cpu_secs();
	for (; ng < o->groups; ng++) {
		cs[ng] = o->groups == 1 ? c : bench__connect(o);
		bench__group(o, name, group, group_size);
		if (cs[ng] == NULL ||
		    (m[ng].s = bench__subscribe(cs[ng], group,
						bench__data_topic, order,
						credit)) == NULL)
			break;
		m[ng].target = n;
		m[ng].batch  = o->batch;
		while (started[ng] < (o->async ? 1 : o->fetchers) &&
		       pthread_create(&t[ng][started[ng]], NULL,
				      o->async ? mrc__async : mrc__fetcher,
				      &m[ng]) == 0)
			started[ng]++;
	}
	for (int g = 0; g < ng; g++) {
		bench__wait_count(&m[g].acked, n, &m[g].stop);
		atomic_store(&m[g].stop, 1);
	}
	// mr_consume_run_async returns once what it handled is settled.
	for (int g = 0; g < ng; g++)
		for (int i = 0; i < started[g]; i++)
			pthread_join(t[g][i], NULL);
	res->cpu_secs = bench_cpu_secs() - c0;
	bench_procs_end(o->mrd_pid, o->kafka_pid, res);
	for (int g = 0; g < ng; g++) {
		long long f = atomic_load(&m[g].first_ns);
		long long l = atomic_load(&m[g].last_ns);

		res->msgs += atomic_load(&m[g].acked);
		res->redelivered += atomic_load(&m[g].redelivered);
		res->fetches += atomic_load(&m[g].fetches);
		res->empty += atomic_load(&m[g].empty);
		if (f > 0 && (first == 0 || f < first))
			first = f;
		if (l > last)
			last = l;
		if (m[g].have_err)
			fprintf(stderr, "consume_bench: %s, group %d: %s\n",
				name, g, m[g].err);
		if (atomic_load(&m[g].ack_failed))
			fprintf(stderr,
				"consume_bench: %s, group %d: %ld acks "
				"refused\n",
				name, g, atomic_load(&m[g].ack_failed));
	}
	n *= o->groups;
	res->failed = n > res->msgs ? n - res->msgs : 0;
	res->secs   = first > 0 && last > first ? (double)(last - first) / 1e9
						: 0;
	res->done   = res->msgs > 0;
	if (ng < o->groups)
		fprintf(stderr, "consume_bench: %s: only %d of %d groups "
				"subscribed\n",
			name, ng, o->groups);
	if (res->failed)
		fprintf(stderr, "consume_bench: %s: %ld of %ld acked\n", name,
			res->msgs, n);
	for (int g = 0; g < o->groups; g++) {
		mr_consumer_free(m[g].s);
		if (cs[g] != c)
			mr_client_free(cs[g]);
	}
	free(m);
}
