/*
 * The producer's topic handles (bridge/topics.h): a table of names, open
 * addressing with linear probing, never shrunk but by a clear.
 */
#include "topics.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge/dedupe.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"

// How long the first publish to a topic, or a topic's creation, waits for
// its partitions.
#define TOPICS__READY_MS 2000

struct topics_slot {
	uint64_t          hash; /* 0: empty */
	char             *name;
	rd_kafka_topic_t *rkt;
};

/* The publish window's hash of a name, never 0 (0 marks an empty slot). */
static uint64_t
topics__hash(const char *s)
{
	uint64_t h = mri_dedupe_hash(s, strlen(s), "", 0);

	return h != 0 ? h : 1;
}

int
mri_topics_init(struct mri_topics *t, size_t max)
{
	size_t cap = 16;

	while (cap < max * 2) // at most half full
		cap *= 2;
	memset(t, 0, sizeof(*t));
	if ((t->slots = calloc(cap, sizeof(*t->slots))) == NULL)
		return MR_ENOMEM;
	t->cap = cap;
	t->max = max;
	pthread_mutex_init(&t->lock, NULL);
	return MR_OK;
}

/* Not made yet where its leader is, or that leader not known yet. */
static bool
topics__unready(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
	       err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
	       err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
}

void
mri_topics_wait_ready(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
	const struct rd_kafka_metadata *md = NULL;
	uint64_t start = mri_mono_ms(), deadline = start + TOPICS__READY_MS;
	int      parts;
	bool     waited = false;

	if (rd_kafka_metadata(rk, 0, rkt, &md, TOPICS__READY_MS / 4) !=
		RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	parts = md->topic_cnt == 1 && md->topics[0].err == 0
		    ? md->topics[0].partition_cnt
		    : 0;
	rd_kafka_metadata_destroy(md);
	while (parts > 0 && mri_mono_ms() < deadline) {
		rd_kafka_topic_partition_list_t *l =
		    rd_kafka_topic_partition_list_new(parts);
		rd_kafka_resp_err_t err;
		bool                unready;

		for (int i = 0; i < parts; i++)
			rd_kafka_topic_partition_list_add(
			    l, rd_kafka_topic_name(rkt), i)
			    ->offset = RD_KAFKA_OFFSET_END;
		// A partition not made yet fails the call, or only itself.
		err = rd_kafka_offsets_for_times(rk, l, TOPICS__READY_MS / 4);
		unready = topics__unready(err) ||
			  err == RD_KAFKA_RESP_ERR__TIMED_OUT;
		for (int i = 0; i < l->cnt && err == 0; i++)
			unready |= topics__unready(l->elems[i].err);
		rd_kafka_topic_partition_list_destroy(l);
		if (!unready)
			break;
		waited = true;
		usleep(10000);
	}
	if (waited)
		mri_debug("component=kafka topic=%s waited_ms=%llu "
			  "msg=\"waited for the topic's partitions\"",
			  rd_kafka_topic_name(rkt),
			  (unsigned long long)(mri_mono_ms() - start));
}

rd_kafka_topic_t *
mri_topics_get(struct mri_topics *t, rd_kafka_t *rk, const char *topic)
{
	uint64_t            h = topics__hash(topic);
	struct topics_slot *s;
	rd_kafka_topic_t   *rkt = NULL;
	char               *name;

	pthread_mutex_lock(&t->lock);
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		s = &t->slots[i];
		if (s->hash == 0)
			break;
		if (s->hash == h && strcmp(s->name, topic) == 0) {
			rkt = s->rkt;
			pthread_mutex_unlock(&t->lock);
			return rkt;
		}
	}
	// New: its handle asks Kafka for its partitions now; the lock is
	// held while they are made, so that no record goes before.
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rkt != NULL)
		mri_topics_wait_ready(rk, rkt);
	if (rkt != NULL && t->n < t->max &&
	    (name = strdup(topic)) != NULL) {
		*s = (struct topics_slot){h, name, rkt};
		t->n++;
	} else if (rkt != NULL) {
		rd_kafka_topic_destroy(rkt); // full: librdkafka keeps its own
		rkt = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	return rkt;
}

void
mri_topics_clear(struct mri_topics *t)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->cap; i++) {
		struct topics_slot *s = &t->slots[i];

		if (s->hash == 0)
			continue;
		rd_kafka_topic_destroy(s->rkt);
		free(s->name);
		*s = (struct topics_slot){0};
	}
	t->n = 0;
	pthread_mutex_unlock(&t->lock);
}

void
mri_topics_fini(struct mri_topics *t)
{
	if (t->slots == NULL)
		return;
	mri_topics_clear(t);
	free(t->slots);
	t->slots = NULL;
	pthread_mutex_destroy(&t->lock);
}
