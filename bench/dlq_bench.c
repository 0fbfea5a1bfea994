/*
 * dlq_bench: what one poisoned key costs the healthy keys in key mode
 * (issue #9, docs/benchmarks/dlq.md), on real Kafka.
 *
 * Before any clock starts, consume_raw.c's preload fills a fresh data topic
 * (N S-byte messages keyed "key-<i % K>" over P partitions). Each run reads
 * it from the start in a consumer group of its own, in key mode, with a
 * dead-letter topic of its own (1 partition, made first), through F fetch
 * threads that each mr_fetch up to B messages and settle them at once
 * (zero-cost handler):
 *
 *   clean    every message is acked.
 *   poison   every message of key-0 is nacked, every other acked: key-0's
 *            messages are retried --attempts times with the back-off given,
 *            then quarantined. breaker_max 0 (no breaker).
 *   breaker  as poison with mailroomd's default breaker.
 *
 * "Healthy" is every key but key-0, in every variant, so that the same
 * messages are counted. Healthy throughput: healthy messages over the time
 * from the first non-empty FETCH to the return of the ack of the last
 * healthy message. "Other partitions": the same for the healthy messages
 * of the partitions that do not hold key-0. CPU per healthy message, of
 * this process (getrusage) and of mailroomd (/proc/PID/stat, --mrd-pid),
 * over the same span. A run ends when every healthy message is acked and
 * (poison) every key-0 message has had its last attempt nacked; then the
 * dead-letter topic is read back and each record matched to its original
 * by its mr_dlq_partition and mr_dlq_offset headers.
 *
 * Runs alternate (clean, poison, clean, poison, ...) --repeat times. The
 * report and the options are in dlq_report.c.
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

#include "dlq_bench.h"

/* consume_raw.c's preload and group names use these. */
static long long bench__stamp;
char             bench__data_topic[300];
char             bench__slow_topic[300];

void
bench__group(const struct bench_opts *o, const char *name, char *out,
	     size_t n)
{
	static int seq;

	snprintf(out, n, "%s-%lld-g%d-%s", o->topic, bench__stamp, seq++,
		 name);
}

/* Shared by a run's fetch threads. */
struct run {
	const struct dlq_opts *o;
	mr_consumer           *s;
	bool                   poison;
	atomic_int             poison_part; /* -1 until seen */
	long                   per_part;    /* slots per partition */
	atomic_uchar          *acks;        /* [partition][offset]: times acked */
	atomic_uchar          *spent;       /* key-0 at its last attempt */
	long                   healthy_target, poison_target;
	atomic_long            healthy, dups, redelivered, ack_failed;
	atomic_long            poison_acked, poison_nacks, exhausted;
	atomic_llong           first_ns, last_ns, done_ns;
	atomic_llong          *part_last_ns; /* per partition */
	atomic_long           *part_msgs;
	atomic_long            progress;
	atomic_int             stop;
	atomic_int             have_err;
	double                 cpu0_client, cpu0_mrd;
	double                 cpu1_client, cpu1_mrd;
	char                   err[BENCH_ERR_MAX];
};

static void
run__error(struct run *r, const char *what, int rc)
{
	if (atomic_exchange(&r->have_err, 1) == 0)
		snprintf(r->err, sizeof(r->err), "%s: %s: %s", what,
			 mr_err_name(rc), mr_client_last_error());
	atomic_store(&r->stop, 1);
}

static void
run__max_ns(atomic_llong *v, long long now)
{
	long long last = atomic_load(v);

	while (now > last && !atomic_compare_exchange_weak(v, &last, now))
		;
}

static bool
run__is_poison(const mr_delivery *d)
{
	return d->has_key && d->key_len == strlen(DLQ_POISON_KEY) &&
	       memcmp(d->key, DLQ_POISON_KEY, d->key_len) == 0;
}

static long
run__slot(const struct run *r, const mr_delivery *d)
{
	if (d->partition < 0 || d->partition >= r->o->b.partitions ||
	    d->offset < 0 || d->offset >= r->per_part)
		return -1;
	return (long)d->partition * r->per_part + (long)d->offset;
}

/* Count the acks of one batch, the healthy ones per partition. */
static void
run__acked(struct run *r, mr_batch *b, const bool *nacked, long long now)
{
	size_t n       = mr_batch_count(b);
	long   healthy = 0;

	for (size_t i = 0; i < n; i++) {
		const mr_delivery *d = mr_batch_at(b, i);
		long               slot;

		if (nacked[i])
			continue;
		if (run__is_poison(d)) {
			atomic_fetch_add(&r->poison_acked, 1);
			continue;
		}
		if ((slot = run__slot(r, d)) < 0)
			continue;
		if (atomic_fetch_add(&r->acks[slot], 1) != 0) {
			atomic_fetch_add(&r->dups, 1);
			continue;
		}
		healthy++;
		atomic_fetch_add(&r->part_msgs[d->partition], 1);
		run__max_ns(&r->part_last_ns[d->partition], now);
	}
	if (healthy == 0)
		return;
	run__max_ns(&r->last_ns, now);
	if (atomic_fetch_add(&r->healthy, healthy) + healthy >=
	    r->healthy_target) {
		long long zero = 0;

		if (atomic_compare_exchange_strong(&r->done_ns, &zero, now)) {
			r->cpu1_client = bench_cpu_secs();
			r->cpu1_mrd    = bench_proc_cpu(r->o->mrd_pid);
		}
	}
}

static void *
run__fetcher(void *arg)
{
	struct run *r = arg;
	int         batch = r->o->b.batch;
	uint64_t   *ack   = malloc((size_t)batch * sizeof(*ack));
	uint64_t   *nack  = malloc((size_t)batch * sizeof(*nack));
	bool       *nacked = malloc((size_t)batch * sizeof(*nacked));

	if (ack == NULL || nack == NULL || nacked == NULL) {
		run__error(r, "out of memory", MR_ENOMEM);
		goto out;
	}
	while (!atomic_load(&r->stop)) {
		mr_batch *b;
		size_t    n, na = 0, nn = 0, failed = 0;
		long long zero = 0;
		int       rc;

		rc = mr_fetch(r->s, (size_t)batch, 0, BENCH_FETCH_WAIT_MS, &b);
		if (rc != MR_OK) {
			run__error(r, "mr_fetch", rc);
			break;
		}
		if ((n = mr_batch_count(b)) == 0) {
			mr_batch_free(b);
			continue;
		}
		atomic_compare_exchange_strong(&r->first_ns, &zero,
					       bench_now_ns());
		for (size_t i = 0; i < n; i++) {
			const mr_delivery *d = mr_batch_at(b, i);
			bool               p = run__is_poison(d);

			nacked[i] = p && r->poison;
			if (p)
				atomic_store(&r->poison_part, d->partition);
			if (!nacked[i]) {
				ack[na++] = d->handle;
				if (d->attempt > 1)
					atomic_fetch_add(&r->redelivered, 1);
				continue;
			}
			nack[nn++] = d->handle;
			if ((int)d->attempt >= r->o->attempts) {
				long slot = run__slot(r, d);

				if (slot >= 0 &&
				    atomic_exchange(&r->spent[slot], 1) == 0)
					atomic_fetch_add(&r->exhausted, 1);
			}
		}
		rc = na ? mr_consumer_ack(r->s, ack, na, &failed) : MR_OK;
		if (rc == MR_OK && nn) {
			size_t f2 = 0;

			rc = mr_consumer_nack(r->s, nack, nn, "dlq_bench poison",
					      &f2);
			atomic_fetch_add(&r->poison_nacks, (long)(nn - f2));
			failed += f2;
		}
		if (rc != MR_OK) {
			mr_batch_free(b);
			run__error(r, "settle", rc);
			break;
		}
		atomic_fetch_add(&r->ack_failed, (long)failed);
		if (failed == 0)
			run__acked(r, b, nacked, bench_now_ns());
		mr_batch_free(b);
		atomic_fetch_add(&r->progress, 1);
	}
out:
	free(ack);
	free(nack);
	free(nacked);
	return NULL;
}

static bool
run__finished(struct run *r)
{
	if (atomic_load(&r->healthy) < r->healthy_target)
		return false;
	return r->poison ? atomic_load(&r->exhausted) >= r->poison_target
			 : atomic_load(&r->poison_acked) >= r->poison_target;
}

/* Wait for the run's end, or no progress for BENCH_IDLE_MS. */
static void
run__wait(struct run *r)
{
	long    last     = -1, now_v;
	int64_t deadline = bench_now_ns() + (int64_t)BENCH_FIRST_MS * 1000000;

	while (!atomic_load(&r->stop) && !run__finished(r)) {
		if ((now_v = atomic_load(&r->progress)) != last) {
			last     = now_v;
			deadline = bench_now_ns() +
				   (int64_t)BENCH_IDLE_MS * 1000000;
		} else if (bench_now_ns() > deadline) {
			fprintf(stderr, "dlq_bench: no progress for %d s\n",
				BENCH_IDLE_MS / 1000);
			break;
		}
		usleep(2000);
	}
	atomic_store(&r->stop, 1);
}

static int
dlq__create_topic(mr_client *c, const char *topic)
{
	char req[512], *rep = NULL;
	int  rc;
	bool ok;

	snprintf(req, sizeof(req),
		 "{\"op\":\"topics.create\",\"topic\":\"%s\","
		 "\"partitions\":1,\"replication\":1}",
		 topic);
	if ((rc = mr_admin(c, req, &rep)) != MR_OK) {
		fprintf(stderr, "dlq_bench: topics.create %s: %s: %s\n", topic,
			mr_err_name(rc), mr_client_last_error());
		return -1;
	}
	ok = strstr(rep, "\"ok\":true") != NULL;
	if (!ok)
		fprintf(stderr, "dlq_bench: topics.create %s: %s\n", topic,
			rep);
	free(rep);
	return ok ? 0 : -1;
}

static long
dlq__header_long(rd_kafka_headers_t *h, const char *name)
{
	const void *v;
	size_t      n;
	char        buf[32];

	if (h == NULL ||
	    rd_kafka_header_get_last(h, name, &v, &n) != 0 || n == 0 ||
	    n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Read the dead-letter topic back: its records, the distinct originals
 * among them (each a key-0 message), and the others. */
static void
dlq__read_back(const struct dlq_opts *o, struct run *r, const char *dlq,
	       struct dlq_result *res)
{
	rd_kafka_conf_t                 *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_t                      *rk;
	unsigned char                   *seen;
	char                             errstr[512];
	int64_t                          deadline;

	seen = calloc((size_t)o->b.partitions * (size_t)r->per_part, 1);
	if (seen == NULL ||
	    rd_kafka_conf_set(conf, "bootstrap.servers", o->b.brokers, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", "dlq_bench-readback", errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
			       sizeof(errstr))) == NULL) {
		fprintf(stderr, "dlq_bench: read back: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		free(seen);
		return;
	}
	rd_kafka_poll_set_consumer(rk);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, dlq, 0)->offset =
	    RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	deadline = bench_now_ns() + (int64_t)DLQ_READ_MS * 1000000;
	while (res->dlq_distinct < r->poison_target &&
	       bench_now_ns() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		rd_kafka_headers_t *h = NULL;
		long                p, off, slot;

		if (m == NULL)
			continue;
		if (m->err != 0) {
			rd_kafka_message_destroy(m);
			continue;
		}
		res->dlq_records++;
		rd_kafka_message_headers(m, &h);
		p    = dlq__header_long(h, "mr_dlq_partition");
		off  = dlq__header_long(h, "mr_dlq_offset");
		slot = p >= 0 && p < o->b.partitions && off >= 0 &&
			       off < r->per_part
			   ? p * r->per_part + off
			   : -1;
		if (slot < 0 || m->key_len != strlen(DLQ_POISON_KEY) ||
		    memcmp(m->key, DLQ_POISON_KEY, m->key_len) != 0)
			res->dlq_stray++;
		else if (seen[slot]++ == 0)
			res->dlq_distinct++;
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	free(seen);
}

/* \p key's number in the group \p group's entry of mailroomd's status. */
static long
dlq__status_long(const char *json, const char *group, const char *key)
{
	char        pat[400];
	const char *g, *k, *end;

	snprintf(pat, sizeof(pat), "\"%s\"", group);
	if ((g = strstr(json, pat)) == NULL)
		return -1;
	end = strstr(g + 1, "\"group\"");
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((k = strstr(g, pat)) == NULL || (end != NULL && k > end))
		return -1;
	k += strlen(pat);
	while (*k == ' ' || *k == ':')
		k++;
	return strtol(k, NULL, 10);
}

/* One run of variant \p v. */
static void
dlq__run(const struct dlq_opts *o, mr_client *c, int v, int round,
	 struct dlq_result *res)
{
	mr_subscribe_opts so = {.order = MR_ORDER_KEY};
	const char       *topic = bench__data_topic;
	pthread_t         t[BENCH_FETCHERS_MAX];
	struct run        r;
	char              group[300], dlq[400], *st = NULL;
	size_t            slots;
	int               started = 0, rc;
	long long         other_last = 0;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	bench__group(&o->b, dlq_names[v], group, sizeof(group));
	snprintf(dlq, sizeof(dlq), "%s.dlq", group);
	r.o           = o;
	r.poison      = v != V_CLEAN;
	r.poison_part = -1;
	r.per_part    = o->b.count; /* offsets are below the count */
	r.poison_target  = (o->b.count + o->b.keys - 1) / o->b.keys;
	r.healthy_target = o->b.count - r.poison_target;
	slots = (size_t)o->b.partitions * (size_t)r.per_part;
	r.acks         = calloc(slots, sizeof(*r.acks));
	r.spent        = calloc(slots, sizeof(*r.spent));
	r.part_last_ns = calloc((size_t)o->b.partitions, sizeof(*r.part_last_ns));
	r.part_msgs    = calloc((size_t)o->b.partitions, sizeof(*r.part_msgs));
	if (r.acks == NULL || r.spent == NULL || r.part_last_ns == NULL ||
	    r.part_msgs == NULL) {
		fprintf(stderr, "dlq_bench: out of memory\n");
		goto out;
	}
	if (r.poison && dlq__create_topic(c, dlq) != 0)
		goto out;
	so.credit = o->b.fetchers * o->b.batch;
	if (so.credit > 100000)
		so.credit = 100000;
	so.set = MR_SUB_MAX_ATTEMPTS | MR_SUB_BACKOFF_INITIAL |
		 MR_SUB_BACKOFF_MAX | MR_SUB_BACKOFF_MULTIPLIER |
		 MR_SUB_BACKOFF_JITTER;
	so.max_attempts       = o->attempts;
	so.backoff_initial_ms = o->backoff_initial_ms;
	so.backoff_max_ms     = o->backoff_max_ms;
	so.backoff_multiplier = o->multiplier;
	so.backoff_jitter     = o->jitter;
	if (r.poison)
		so.dlq_topic = dlq;
	if (v != V_BREAKER) {
		so.set |= MR_SUB_BREAKER_MAX;
		so.breaker_max = 0;
	}
	if ((rc = mr_subscribe(c, group, &topic, 1, &so, &r.s)) != MR_OK) {
		fprintf(stderr, "dlq_bench: mr_subscribe(%s): %s: %s\n", group,
			mr_err_name(rc), mr_client_last_error());
		goto out;
	}
	r.cpu0_client = bench_cpu_secs();
	r.cpu0_mrd    = bench_proc_cpu(o->mrd_pid);
	while (started < o->b.fetchers &&
	       pthread_create(&t[started], NULL, run__fetcher, &r) == 0)
		started++;
	run__wait(&r);
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (r.have_err)
		fprintf(stderr, "dlq_bench: %s: %s\n", dlq_names[v], r.err);

	res->healthy     = atomic_load(&r.healthy);
	res->dups        = atomic_load(&r.dups);
	res->redelivered = atomic_load(&r.redelivered);
	res->ack_failed  = atomic_load(&r.ack_failed);
	res->secs = (double)(atomic_load(&r.last_ns) - atomic_load(&r.first_ns)) /
		    1e9;
	res->total_secs =
	    (double)(bench_now_ns() - atomic_load(&r.first_ns)) / 1e9;
	for (int p = 0; p < o->b.partitions; p++) {
		if (p == atomic_load(&r.poison_part))
			continue;
		res->other_msgs += atomic_load(&r.part_msgs[p]);
		if (atomic_load(&r.part_last_ns[p]) > other_last)
			other_last = atomic_load(&r.part_last_ns[p]);
	}
	res->other_secs =
	    (double)(other_last - atomic_load(&r.first_ns)) / 1e9;
	if (atomic_load(&r.done_ns) != 0) {
		res->cpu_client = r.cpu1_client - r.cpu0_client;
		res->cpu_mrd    = r.cpu0_mrd >= 0 && r.cpu1_mrd >= 0
				      ? r.cpu1_mrd - r.cpu0_mrd
				      : -1;
	}
	res->cpu_mrd_total = r.cpu0_mrd >= 0
				 ? bench_proc_cpu(o->mrd_pid) - r.cpu0_mrd
				 : -1;
	res->poison_nacks = atomic_load(&r.poison_nacks);
	res->exhausted    = atomic_load(&r.exhausted);
	res->done = res->healthy == r.healthy_target && !r.have_err &&
		    res->secs > 0;
	if (r.poison) {
		dlq__read_back(o, &r, dlq, res);
		if (res->dlq_distinct < r.poison_target || res->dlq_stray)
			res->done = false;
	}
	res->trips = res->quarantined = -1;
	if (mr_status(c, &st) == MR_OK) {
		res->trips       = dlq__status_long(st, group, "trips");
		res->quarantined = dlq__status_long(st, group, "quarantined");
		free(st);
	}
	fprintf(stderr,
		"  round %d %s: healthy %ld/%ld in %.3f s = %.0f msgs/s; "
		"key-0 on partition %d, %ld nacks, %ld spent, dlq %ld "
		"records %ld distinct; run %.1f s\n",
		round, dlq_names[v], res->healthy, r.healthy_target, res->secs,
		res->secs > 0 ? res->healthy / res->secs : 0,
		atomic_load(&r.poison_part),
		res->poison_nacks, res->exhausted, res->dlq_records,
		res->dlq_distinct, res->total_secs);
	mr_consumer_free(r.s);
out:
	free(r.acks);
	free(r.spent);
	free(r.part_last_ns);
	free(r.part_msgs);
}

int
main(int argc, char **argv)
{
	static struct dlq_result res[DLQ_VARIANTS_MAX][BENCH_RUNS_MAX];
	struct dlq_opts          o;
	const struct dlq_result *clean = NULL;
	mr_client_opts           co;
	mr_client               *c;
	char                     errstr[512];
	bool                     ok = true;
	int                      rc;

	if (dlq_parse(argc, argv, &o) != 0) {
		dlq_usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench__stamp = (long long)time(NULL);
	bench_pool_init(o.b.size, "dlq_bench");
	snprintf(bench__data_topic, sizeof(bench__data_topic), "%s-%lld-data",
		 o.b.topic, bench__stamp);
	co = (mr_client_opts){.timeout_ms = o.b.timeout_ms};
	if ((rc = mr_client_new(&c, o.b.url, &co, errstr, sizeof(errstr))) !=
	    MR_OK) {
		fprintf(stderr, "dlq_bench: mr_client_new(%s): %s: %s\n",
			o.b.url, mr_err_name(rc), errstr);
		return 1;
	}
	printf("dlq_bench: %zu-byte payloads, %ld messages, %d partitions, "
	       "%d keys (key-0 poisoned: %ld messages); key mode, fetch %d x "
	       "%d threads\n",
	       o.b.size, o.b.count, o.b.partitions, o.b.keys,
	       (o.b.count + o.b.keys - 1) / o.b.keys, o.b.batch, o.b.fetchers);
	printf("dlq_bench: retry max_attempts %d, back-off %d..%d ms x %g, "
	       "jitter %g; breaker_max 0 (none) except in 'breaker' "
	       "(mailroomd's default); mailroomd pid %d\n",
	       o.attempts, o.backoff_initial_ms, o.backoff_max_ms,
	       o.multiplier, o.jitter, o.mrd_pid);
	printf("dlq_bench: kafka %s, mailroomd %s, topic %s\n", o.b.brokers,
	       o.b.url, bench__data_topic);
	if (bench__preload(&o.b, c) != 0) {
		mr_client_free(c);
		return 1;
	}
	fprintf(stderr, "  preloaded and flushed\n");
	for (int r = 0; r < o.b.repeat; r++)
		for (int i = 0; i < o.nvariants; i++)
			dlq__run(&o, c, o.variants[i], r + 1,
				 &res[o.variants[i]][r]);
	for (int i = 0; i < o.nvariants; i++)
		if (o.variants[i] == V_CLEAN)
			clean = res[V_CLEAN];
	for (int i = 0; i < o.nvariants; i++) {
		int v = o.variants[i];

		dlq_report(&o, v, res[v], o.b.repeat,
			    v == V_CLEAN ? NULL : clean);
		for (int r = 0; r < o.b.repeat; r++)
			if (!res[v][r].done || res[v][r].dups)
				ok = false;
	}
	printf("(healthy: every key but key-0, in every variant; msgs/s from "
	       "the first non-empty FETCH to the ack of the last healthy "
	       "message; cpu over the same span)\n");
	printf("\n{\"bench\":\"dlq\",\"cpu_total_s\":%.2f}\n",
	       bench_cpu_secs());
	mr_client_free(c);
	bench_pool_free();
	return ok ? 0 : 1;
}
