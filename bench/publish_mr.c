/*
 * publish_bench's mailroom side: the C client's cases (batched, one
 * message per call, sync and latency; publish_bench.c says what is timed),
 * the topics made through mailroomd's admin (--partitions), and the CPU of
 * mailroomd and Kafka meanwhile.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "publish_bench.h"

/* ---- mailroom --------------------------------------------------------- */

struct mrb {
	atomic_long  ok;
	atomic_long  failed;
	atomic_llong last_ns;
	atomic_int   have_err;
	char         err[BENCH_ERR_MAX];
};

static void
mrb__error(struct mrb *m, int status, const char *why)
{
	if (atomic_exchange(&m->have_err, 1) == 0)
		snprintf(m->err, sizeof(m->err), "%s: %s", mr_err_name(status),
			 why && why[0] ? why : mr_strerror(status));
}

/* On an nng thread, once per request. */
static void
mrb__cb(void *arg, int status, const mr_ack *acks, size_t n)
{
	struct mrb *m  = arg;
	long        ok = 0;
	long long   now, last;

	for (size_t i = 0; i < n; i++) {
		if (acks[i].status == MR_OK)
			ok++;
		else
			mrb__error(m, acks[i].status, acks[i].error);
	}
	if (status != MR_OK && n == 0)
		mrb__error(m, status, mr_client_last_error());
	now  = bench_now_ns();
	last = atomic_load(&m->last_ns);
	while (now > last &&
	       !atomic_compare_exchange_weak(&m->last_ns, &last, now))
		;
	atomic_fetch_add(&m->failed, (long)n - ok);
	atomic_fetch_add(&m->ok, ok);
}

static void
mrb__fill(mr_message *msgs, size_t k, long first, const char *topic,
	  size_t size)
{
	for (size_t j = 0; j < k; j++) {
		long i = first + (long)j;
		int  key = (int)(i % BENCH_KEYS);

		memset(&msgs[j], 0, sizeof(msgs[j]));
		msgs[j].topic       = topic;
		msgs[j].key         = bench__keys[key];
		msgs[j].key_len     = bench__key_len[key];
		msgs[j].payload     = bench_payload(i);
		msgs[j].payload_len = size;
	}
}

static mr_client *
mrb__connect(const struct bench_opts *o, int inflight, int linger_us)
{
	mr_client_opts co = {.timeout_ms   = o->timeout_ms,
			     .max_inflight = inflight,
			     .linger_us    = linger_us};
	mr_client     *c;
	char           errstr[512];
	int            rc;

	rc = mr_client_new(&c, o->url, &co, errstr, sizeof(errstr));
	if (rc != MR_OK) {
		fprintf(stderr, "publish_bench: mr_client_new(%s): %s: %s\n",
			o->url, mr_err_name(rc), errstr);
		return NULL;
	}
	return c;
}

/* One synchronous publish: the topic exists before the clock starts. */
static int
mrb__warmup(mr_client *c, const char *topic, size_t size)
{
	mr_message m;
	mr_ack     a;
	int        rc;

	mrb__fill(&m, 1, 0, topic, size);
	memset(&a, 0, sizeof(a));
	if ((rc = mr_publish(c, &m, &a)) != MR_OK)
		fprintf(stderr,
			"publish_bench: warm-up publish to %s failed: %s: "
			"%s\n",
			topic, mr_err_name(rc),
			a.error[0] ? a.error : mr_client_last_error());
	return rc;
}

/* mailroomd's CPU seconds so far; -1 when not known. */
static double
mrb__mrd_cpu(const struct bench_opts *o)
{
	return o->mrd_pid > 0 ? bench_proc_cpu(o->mrd_pid) : -1;
}


int
bench__make_topic(const struct bench_opts *o, const char *topic)
{
	mr_client *c;
	char       req[512], *rep = NULL;
	int        rc;

	if (o->partitions <= 0)
		return 0;
	if ((c = mrb__connect(o, 1, 0)) == NULL)
		return -1;
	snprintf(req, sizeof(req),
		 "{\"op\":\"topics.create\",\"topic\":\"%s\","
		 "\"partitions\":%d,\"replication\":1}",
		 topic, o->partitions);
	rc = mr_admin(c, req, &rep);
	if (rc != MR_OK || strstr(rep, "\"ok\":true") == NULL) {
		fprintf(stderr, "publish_bench: topics.create %s: %s\n", topic,
			rc != MR_OK ? mr_client_last_error() : rep);
		rc = -1;
	}
	free(rep);
	mr_client_free(c);
	return rc == MR_OK ? 0 : -1;
}

/* \p n messages in calls of \p k, \p inflight requests in flight, the
 * client's linger \p linger_us. */
void
bench__mr_async(const struct bench_opts *o, const char *name, long n, int k,
		int inflight, int linger_us, struct bench_result *res)
{
	struct mrb  m;
	mr_client  *c;
	mr_message *msgs;
	char        topic[300];
	long        sent = 0, refused = 0;
	int64_t     t0;
	double      c0;
	int         rc;

	memset(res, 0, sizeof(*res));
	memset(&m, 0, sizeof(m));
	bench__topic(o, name, topic, sizeof(topic));
	if ((msgs = calloc((size_t)k, sizeof(*msgs))) == NULL)
		return;
	if ((c = mrb__connect(o, inflight, linger_us)) == NULL) {
		free(msgs);
		return;
	}
	if (bench__make_topic(o, topic) != 0 ||
	    mrb__warmup(c, topic, o->size) != MR_OK)
		goto out;
	bench_procs_start(o->mrd_pid, o->kafka_pid, res);
	c0 = bench_cpu_secs();
	t0 = bench_now_ns();
	while (sent < n) {
		size_t kk = (size_t)(n - sent < k ? n - sent : k);

		mrb__fill(msgs, kk, sent, topic, o->size);
		rc = mr_publish_async(c, msgs, kk, mrb__cb, &m);
		sent += (long)kk;
		if (rc != MR_OK) {
			// The client refused the request: stop the case.
			fprintf(stderr,
				"publish_bench: %s: mr_publish_async: %s "
				"(%s); stopping after %ld messages\n",
				name, mr_err_name(rc), mr_client_last_error(),
				sent);
			refused = n - sent + (long)kk;
			break;
		}
	}
	if ((rc = mr_client_drain(c, BENCH_WAIT_MS)) != MR_OK)
		fprintf(stderr,
			"publish_bench: %s: mr_client_drain: %s; %ld of %ld "
			"messages answered\n",
			name, mr_err_name(rc),
			atomic_load(&m.ok) + atomic_load(&m.failed),
			n - refused);
	// The drain can return before the last callback has run: the client
	// frees a request before calling back. Wait for the callbacks.
	for (int i = 0; rc == MR_OK && i < 5000; i++) {
		if (atomic_load(&m.ok) + atomic_load(&m.failed) >= n - refused)
			break;
		usleep(1000);
	}
	res->secs     = (double)(atomic_load(&m.last_ns) - t0) / 1e9;
	res->cpu_secs = bench_cpu_secs() - c0;
	bench_procs_end(o->mrd_pid, o->kafka_pid, res);
	res->msgs     = atomic_load(&m.ok);
	res->failed   = n - res->msgs;
	res->done     = true;
	if (m.have_err)
		fprintf(stderr, "publish_bench: %s: first failure: %s\n", name,
			m.err);
out:
	mr_client_free(c);
	free(msgs);
}

/* mr_publish, one message at a time; with \p lat, each one's latency. */
void
bench__mr_sync(const struct bench_opts *o, const char *name, long n,
	       int warmup, double *lat, struct bench_result *res)
{
	mr_client *c;
	mr_message msg;
	mr_ack     ack;
	char       topic[300];
	long       failed = 0, k = 0;
	int64_t    t0;
	double     c0, m0;

	memset(res, 0, sizeof(*res));
	bench__topic(o, name, topic, sizeof(topic));
	if ((c = mrb__connect(o, 1, o->linger_us)) == NULL)
		return;
	if (bench__make_topic(o, topic) != 0 ||
	    mrb__warmup(c, topic, o->size) != MR_OK)
		goto out;
	for (long i = -warmup; i < 0; i++) {
		mrb__fill(&msg, 1, i + warmup, topic, o->size);
		mr_publish(c, &msg, &ack);
	}
	m0 = mrb__mrd_cpu(o);
	c0 = bench_cpu_secs();
	t0 = bench_now_ns();
	for (long i = 0; i < n; i++) {
		int64_t s = bench_now_ns();
		int     rc;

		mrb__fill(&msg, 1, i, topic, o->size);
		rc = mr_publish(c, &msg, &ack);
		if (rc != MR_OK) {
			if (failed++ == 0)
				fprintf(stderr,
					"publish_bench: %s: mr_publish: %s: "
					"%s\n",
					name, mr_err_name(rc),
					ack.error[0] ? ack.error
						     : mr_client_last_error());
			if (failed >= 100)
				break;
			continue;
		}
		if (lat != NULL)
			lat[k] = (double)(bench_now_ns() - s) / 1e6;
		k++;
	}
	res->secs     = (double)(bench_now_ns() - t0) / 1e9;
	res->cpu_secs = bench_cpu_secs() - c0;
	res->mrd_cpu_secs = m0 >= 0 ? mrb__mrd_cpu(o) - m0 : -1;
	res->msgs     = k;
	res->failed   = n - k;
	res->done     = true;
out:
	mr_client_free(c);
}

