/*
 * actor_bench: the local actor runtime's costs (docs/benchmarks/actors.md).
 * Not run by CTest; needs quiet cores.
 *
 *   ring      tokens passed from actor to actor around rings of actors:
 *             local messages per second, every send from inside an actor
 *   fanout    non-actor threads casting to many actors: messages per second
 *   spawn     spawning N idle actors: the time, and the resident memory
 *             they add (RSS over N: bytes per idle actor)
 *
 * Usage: actor_bench [threads (2)] [actors (10000)] [messages (20000000)]
 *                    [spawn N (1000000)]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "mailroom/actor.h"

static mr_pid          *ab__pids;
static uint32_t         ab__n;
static _Atomic uint64_t ab__left; /* tokens still travelling */
static pthread_mutex_t  ab__mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   ab__cv = PTHREAD_COND_INITIALIZER;

struct ab_token {
	uint32_t at;
	uint32_t hops;
};

static void
ab__done(void)
{
	if (atomic_fetch_sub(&ab__left, 1) == 1) {
		pthread_mutex_lock(&ab__mu);
		pthread_cond_broadcast(&ab__cv);
		pthread_mutex_unlock(&ab__mu);
	}
}

static int
ab__ring(mr_actor *self, void *state, const mr_msg *msg)
{
	struct ab_token t;

	memcpy(&t, msg->data, sizeof(t));
	if (t.hops == 0) {
		ab__done();
		return 0;
	}
	t.hops--;
	t.at = (t.at + 1) % ab__n;
	return mr_cast(mr_actor_system(self), ab__pids[t.at], 1, &t,
		       sizeof(t));
}

static int
ab__sink(mr_actor *self, void *state, const mr_msg *msg)
{
	if (msg->type == 2)
		ab__done();
	return 0;
}

static const mr_behaviour ab__ring_b = {.name = "ring",
					.handle_cast = ab__ring};
static const mr_behaviour ab__sink_b = {.name = "sink",
					.handle_cast = ab__sink};

static void
ab__wait(void)
{
	pthread_mutex_lock(&ab__mu);
	while (atomic_load(&ab__left) > 0)
		pthread_cond_wait(&ab__cv, &ab__mu);
	pthread_mutex_unlock(&ab__mu);
}

static double
ab__cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
ab__rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long  size = 0, rss = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
ab__bench_ring(int threads, uint32_t actors, uint64_t messages)
{
	mr_system *sys = NULL;
	uint32_t   tokens = actors; /* one per actor: mailboxes stay busy */
	uint32_t   i;
	uint64_t   t0;
	double     c0, secs, cpu;

	if (mr_system_new(&sys, threads, 0) != MR_OK)
		exit(1);
	ab__n    = actors;
	ab__pids = calloc(actors, sizeof(mr_pid));
	for (i = 0; i < actors; i++)
		mr_spawn(sys, &ab__ring_b, NULL, NULL, &ab__pids[i]);
	atomic_store(&ab__left, tokens);
	t0 = mri_mono_ms();
	c0 = ab__cpu_s();
	for (i = 0; i < tokens; i++) {
		struct ab_token t = {i, (uint32_t)(messages / tokens)};

		mr_cast(sys, ab__pids[i], 1, &t, sizeof(t));
	}
	ab__wait();
	secs = (double)(mri_mono_ms() - t0) / 1000.0;
	cpu  = ab__cpu_s() - c0;
	printf("ring     threads=%d actors=%u messages=%llu  %.2f s  "
	       "%.2f M msg/s  %.3f us CPU/msg\n",
	       threads, actors,
	       (unsigned long long)((messages / tokens) * tokens + tokens),
	       secs, (double)messages / secs / 1e6, cpu * 1e6 / messages);
	mr_system_free(sys);
	free(ab__pids);
}

struct ab_sender {
	mr_system *sys;
	uint64_t   n;
	uint32_t   id;
};

static void *
ab__sender(void *arg)
{
	struct ab_sender *s = arg;
	uint64_t          i;

	for (i = 0; i < s->n; i++)
		mr_cast(s->sys, ab__pids[(i + s->id) % ab__n], 1, &i,
			sizeof(i));
	return NULL;
}

static void
ab__bench_fanout(int threads, uint32_t actors, uint64_t messages)
{
	mr_system       *sys = NULL;
	pthread_t        th[2];
	struct ab_sender s[2];
	uint32_t         i;
	uint64_t         t0;
	double           c0, secs, cpu;

	if (mr_system_new(&sys, threads, 0) != MR_OK)
		exit(1);
	ab__n    = actors;
	ab__pids = calloc(actors, sizeof(mr_pid));
	for (i = 0; i < actors; i++)
		mr_spawn(sys, &ab__sink_b, NULL, NULL, &ab__pids[i]);
	atomic_store(&ab__left, actors);
	t0 = mri_mono_ms();
	c0 = ab__cpu_s();
	for (i = 0; i < 2; i++) {
		s[i] = (struct ab_sender){sys, messages / 2, i};
		pthread_create(&th[i], NULL, ab__sender, &s[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < actors; i++) /* a last message each: all drained */
		mr_cast(sys, ab__pids[i], 2, NULL, 0);
	ab__wait();
	secs = (double)(mri_mono_ms() - t0) / 1000.0;
	cpu  = ab__cpu_s() - c0;
	printf("fanout   threads=%d actors=%u messages=%llu senders=2  "
	       "%.2f s  %.2f M msg/s  %.3f us CPU/msg\n",
	       threads, actors, (unsigned long long)messages, secs,
	       (double)messages / secs / 1e6, cpu * 1e6 / messages);
	mr_system_free(sys);
	free(ab__pids);
}

static void
ab__bench_spawn(int threads, uint32_t n)
{
	mr_system *sys = NULL;
	long       rss0, rss1;
	uint64_t   t0, t1, t2;
	uint32_t   i;
	mr_pid     pid;

	if (mr_system_new(&sys, threads, 0) != MR_OK)
		exit(1);
	rss0 = ab__rss_kb();
	t0   = mri_mono_ms();
	for (i = 0; i < n; i++) {
		if (mr_spawn(sys, &ab__sink_b, NULL, NULL, &pid) != MR_OK) {
			fprintf(stderr, "spawn %u failed\n", i);
			exit(1);
		}
	}
	t1   = mri_mono_ms();
	rss1 = ab__rss_kb();
	mr_system_free(sys);
	t2 = mri_mono_ms();
	printf("spawn    actors=%u  %.3f s (%.2f M/s)  RSS +%ld KiB = %.0f "
	       "B per idle actor  free %.3f s\n",
	       n, (double)(t1 - t0) / 1000.0,
	       (double)n / ((double)(t1 - t0 ? t1 - t0 : 1) / 1000.0) / 1e6,
	       rss1 - rss0, (double)(rss1 - rss0) * 1024.0 / n,
	       (double)(t2 - t1) / 1000.0);
}

int
main(int argc, char **argv)
{
	int      threads  = argc > 1 ? atoi(argv[1]) : 2;
	uint32_t actors   = argc > 2 ? (uint32_t)atoi(argv[2]) : 10000;
	uint64_t messages = argc > 3 ? strtoull(argv[3], NULL, 10) : 20000000;
	uint32_t spawn_n  = argc > 4 ? (uint32_t)atoi(argv[4]) : 1000000;

	if (threads < 1 || actors < 1 || messages < actors)
		return 2;
	ab__bench_spawn(threads, spawn_n);
	ab__bench_ring(threads, actors, messages);
	ab__bench_fanout(threads, actors, messages / 4);
	return 0;
}
