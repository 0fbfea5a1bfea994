#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

struct mri_dedupe {
	struct mri_dedupe_entry **buckets;
	size_t                    nbuckets; /* a power of two */
	size_t                    count;
	size_t                    pending;
	struct mri_dedupe_entry  *fhead;
	struct mri_dedupe_entry  *ftail;
	uint64_t                  window_ms;
	size_t                    max_entries;
	uint64_t                  hits;
	uint64_t                  evicted_early;
};

static uint64_t
dedupe__hash(const char *topic, size_t tl, const char *id, size_t il)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < tl; i++)
		h = (h ^ (uint8_t)topic[i]) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL;
	for (size_t i = 0; i < il; i++)
		h = (h ^ (uint8_t)id[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

int
mri_dedupe_new(struct mri_dedupe **out, uint64_t window_ms, size_t max_entries)
{
	struct mri_dedupe *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return MR_ENOMEM;
	d->nbuckets = 1024;
	if ((d->buckets = calloc(d->nbuckets, sizeof(*d->buckets))) == NULL) {
		free(d);
		return MR_ENOMEM;
	}
	d->window_ms   = window_ms;
	d->max_entries = max_entries;
	*out           = d;
	return MR_OK;
}

void
mri_dedupe_free(struct mri_dedupe *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct mri_dedupe_entry *e = d->buckets[i], *n;
		for (; e != NULL; e = n) {
			n = e->hnext;
			free(e);
		}
	}
	free(d->buckets);
	free(d);
}

/* Age of a DONE entry; a time before its completion (another thread read
 * the clock just before) is age 0, never a wrap-around. */
static uint64_t
dedupe__age(const struct mri_dedupe_entry *e, uint64_t now_ms)
{
	return now_ms > e->done_ms ? now_ms - e->done_ms : 0;
}

static void
dedupe__grow(struct mri_dedupe *d)
{
	size_t                    nb = d->nbuckets * 2;
	struct mri_dedupe_entry **b  = calloc(nb, sizeof(*b));

	if (b == NULL)
		return; // longer chains, still correct
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct mri_dedupe_entry *e = d->buckets[i], *n;
		for (; e != NULL; e = n) {
			n              = e->hnext;
			e->hnext       = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(d->buckets);
	d->buckets  = b;
	d->nbuckets = nb;
}

static void
dedupe__unlink_hash(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	struct mri_dedupe_entry **pp = &d->buckets[e->hash & (d->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	d->count--;
}

static void
dedupe__unlink_fifo(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	if (e->fprev)
		e->fprev->fnext = e->fnext;
	else
		d->fhead = e->fnext;
	if (e->fnext)
		e->fnext->fprev = e->fprev;
	else
		d->ftail = e->fprev;
}

int
mri_dedupe_check(struct mri_dedupe *d, const char *topic, size_t topic_len,
		 const char *id, size_t id_len, uint64_t now_ms,
		 struct mri_dedupe_entry **out)
{
	uint64_t                 h = dedupe__hash(topic, topic_len, id, id_len);
	struct mri_dedupe_entry *e;

	for (e = d->buckets[h & (d->nbuckets - 1)]; e != NULL; e = e->hnext) {
		if (e->hash != h || e->topic_len != topic_len ||
		    e->id_len != id_len || memcmp(e->key, topic, topic_len) ||
		    memcmp(e->key + topic_len, id, id_len))
			continue;
		if (e->state == MRI_DEDUPE_DONE &&
		    dedupe__age(e, now_ms) > d->window_ms)
			break; // expired: treat as new below
		d->hits++;
		*out = e;
		return e->state;
	}
	if (e != NULL) {
		dedupe__unlink_fifo(d, e);
		dedupe__unlink_hash(d, e);
		free(e);
	}
	if ((e = malloc(sizeof(*e) + topic_len + id_len)) == NULL)
		return -1;
	memset(e, 0, sizeof(*e));
	e->hash      = h;
	e->state     = MRI_DEDUPE_PENDING;
	e->topic_len = (uint16_t)topic_len;
	e->id_len    = (uint8_t)id_len;
	memcpy(e->key, topic, topic_len);
	memcpy(e->key + topic_len, id, id_len);
	if (d->count >= d->nbuckets)
		dedupe__grow(d);
	e->hnext                             = d->buckets[h & (d->nbuckets - 1)];
	d->buckets[h & (d->nbuckets - 1)]    = e;
	d->count++;
	d->pending++;
	*out = e;
	return MRI_DEDUPE_NEW;
}

void
mri_dedupe_wait(struct mri_dedupe_entry *e, struct mri_dedupe_waiter *w)
{
	w->next    = e->waiters;
	e->waiters = w;
}

struct mri_dedupe_waiter *
mri_dedupe_complete(struct mri_dedupe *d, struct mri_dedupe_entry *e,
		    int32_t partition, int64_t offset, uint64_t now_ms)
{
	struct mri_dedupe_waiter *w = e->waiters;

	e->waiters   = NULL;
	e->state     = MRI_DEDUPE_DONE;
	e->partition = partition;
	e->offset    = offset;
	e->done_ms   = now_ms;
	e->fnext     = NULL;
	e->fprev     = d->ftail;
	if (d->ftail)
		d->ftail->fnext = e;
	else
		d->fhead = e;
	d->ftail = e;
	d->pending--;
	return w;
}

struct mri_dedupe_waiter *
mri_dedupe_fail(struct mri_dedupe *d, struct mri_dedupe_entry *e)
{
	struct mri_dedupe_waiter *w = e->waiters;

	dedupe__unlink_hash(d, e);
	d->pending--;
	free(e);
	return w;
}

void
mri_dedupe_expire(struct mri_dedupe *d, uint64_t now_ms)
{
	struct mri_dedupe_entry *e;

	while ((e = d->fhead) != NULL) {
		int old  = dedupe__age(e, now_ms) > d->window_ms;
		int full = d->count - d->pending > d->max_entries;

		if (!old && !full)
			break;
		if (!old)
			d->evicted_early++;
		dedupe__unlink_fifo(d, e);
		dedupe__unlink_hash(d, e);
		free(e);
	}
}

void
mri_dedupe_stats(const struct mri_dedupe *d, struct mri_dedupe_stats *s)
{
	s->entries       = d->count;
	s->pending       = d->pending;
	s->hits          = d->hits;
	s->evicted_early = d->evicted_early;
}
