/*
 * The waker of a group's fetcher (consumers/group_internal.h).
 *
 * With a queue per partition, librdkafka 2.0.2 stops fetching a partition
 * once its queue holds queued.min.messages records or
 * queued.max.messages.kbytes, and gives it no backoff to wake for: it
 * looks again only when its broker's thread next wakes for something
 * else (a fetch response of another partition, a heartbeat, a commit, at
 * most about a second). With bounds small enough for the memory budget,
 * the group drains such a queue in tens of milliseconds and then waits
 * for the rest of that second (bench/run_consume.sh: 44 k msgs/s instead
 * of 340 k). librdkafka 2.2 made the wait a setting
 * (fetch.queue.backoff.ms); here, once the group has drained a queue that
 * was at its bounds, this thread asks the partition's leader for its
 * latest offset (one ListOffsets, on that broker's thread), which wakes
 * the thread, and the partition is fetched again at once. At most one
 * request per partition is pending, so a wake costs one small request per
 * drained queue, whatever the rate.
 */
#define _GNU_SOURCE /* pthread_setname_np */

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "consumers/group_internal.h"
#include "core/clock.h"
#include "mailroom/error.h"

#define WAKE__MAX 256 /* partitions waiting for a wake, at most */
#define WAKE__TIMEOUT_MS 1000

struct wake_item {
	char   *topic;
	int32_t partition;
};

struct group_waker {
	struct mri_group *g;
	pthread_mutex_t   lock;
	pthread_cond_t    cv;
	pthread_t         thread;
	bool              stop;
	struct wake_item  q[WAKE__MAX];
	size_t            n;
};

static void *
wake__thread(void *arg)
{
	struct group_waker *w = arg;

	pthread_setname_np(pthread_self(), "mr:group-wake");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct wake_item                 it;
		rd_kafka_topic_partition_list_t *l;

		if (w->n == 0) {
			pthread_cond_wait(&w->cv, &w->lock);
			continue;
		}
		it = w->q[0];
		memmove(w->q, w->q + 1, --w->n * sizeof(w->q[0]));
		pthread_mutex_unlock(&w->lock);
		// Its answer does not matter: the request woke the broker.
		// One ListOffsets (the latest offset), not the two of
		// rd_kafka_query_watermark_offsets: Kafka's CPU is per
		// request.
		if ((l = rd_kafka_topic_partition_list_new(1)) != NULL) {
			rd_kafka_topic_partition_list_add(l, it.topic,
							  it.partition)
			    ->offset = RD_KAFKA_OFFSET_END;
			rd_kafka_offsets_for_times(w->g->rk, l,
						   WAKE__TIMEOUT_MS);
			rd_kafka_topic_partition_list_destroy(l);
		}
		free(it.topic);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int
group__waker_start(struct mri_group *g)
{
	struct group_waker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return MR_ENOMEM;
	w->g = g;
	pthread_mutex_init(&w->lock, NULL);
	mri_cond_init(&w->cv);
	if (pthread_create(&w->thread, NULL, wake__thread, w) != 0) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cv);
		free(w);
		return MR_ENOMEM;
	}
	g->waker = w;
	return MR_OK;
}

bool
group__wake_due(const struct mri_group *g, size_t before, size_t after,
		size_t each)
{
	size_t most;

	if (g->prefetch_msgs == 0)
		return false;
	// librdkafka's bytes are kbytes times 1000 (rd_kafka_new).
	most = g->prefetch_kb * 1000 / (each > 0 ? each : 1);
	if (most > g->prefetch_msgs)
		most = g->prefetch_msgs;
	return before >= most - most / 8 && after < most;
}

void
group__waker_post(struct mri_group *g, const char *topic, int32_t partition)
{
	struct group_waker *w = g->waker;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n; i++)
		if (w->q[i].partition == partition &&
		    strcmp(w->q[i].topic, topic) == 0) {
			pthread_mutex_unlock(&w->lock);
			return;
		}
	if (w->n < WAKE__MAX &&
	    (w->q[w->n].topic = strdup(topic)) != NULL) {
		w->q[w->n++].partition = partition;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->lock);
}

void
group__waker_stop(struct mri_group *g)
{
	struct group_waker *w = g->waker;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->n; i++)
		free(w->q[i].topic);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	free(w);
	g->waker = NULL;
}
