/*
 * The producer's topic handles (bridge/topics.h): a table of names, open
 * addressing with linear probing, never shrunk but by a clear.
 */
#include "topics.h"

#include <stdlib.h>
#include <string.h>

#include "bridge/dedupe.h"
#include "mailroom/error.h"

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
	// New: its handle asks Kafka for its partitions now.
	rkt = rd_kafka_topic_new(rk, topic, NULL);
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
