#include "order.h"

#include <pthread.h>
#include <stdlib.h>

#include "mailroom/error.h"
#include "proto/frame.h"

// How often idle streams are looked for when nothing is parked.
#define ORDER__IDLE_SWEEP_MS 1000

struct order_stream {
	struct order_stream   *hnext;
	uint64_t               id;
	uint32_t               next;   /* the seq whose turn it is */
	bool                   busy;   /* a request holds the turn */
	bool                   held;   /* and is held (mri_order_hold) */
	uint64_t               used_ms;
	struct mri_order_item *parked; /* by seq, oldest first */
};

struct mri_order_table {
	pthread_mutex_t       lock;
	struct order_stream **buckets;
	size_t                nbuckets; /* a power of two */
	size_t                count;
	size_t                max;
	uint64_t              idle_ms;
	size_t                parked;
	uint64_t              expired;
	uint64_t              swept_ms;
};

int
mri_order_new(struct mri_order_table **out, size_t max_streams, uint64_t idle_ms)
{
	struct mri_order_table *o;
	size_t            nb = 16;

	while (nb < max_streams / 2 && nb < (1u << 20))
		nb <<= 1;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return MR_ENOMEM;
	if ((o->buckets = calloc(nb, sizeof(*o->buckets))) == NULL) {
		free(o);
		return MR_ENOMEM;
	}
	pthread_mutex_init(&o->lock, NULL);
	o->nbuckets = nb;
	o->max      = max_streams > 0 ? max_streams : 1;
	o->idle_ms  = idle_ms;
	*out        = o;
	return MR_OK;
}

void
mri_order_free(struct mri_order_table *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->nbuckets; i++) {
		struct order_stream *s, *n;

		for (s = o->buckets[i]; s != NULL; s = n) {
			n = s->hnext;
			free(s);
		}
	}
	free(o->buckets);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

static struct order_stream **
order__slot(struct mri_order_table *o, uint64_t id)
{
	// Stream ids are random; fold the high half in for those that are not.
	uint64_t h = id ^ (id >> 29) ^ (id >> 47);

	return &o->buckets[h & (o->nbuckets - 1)];
}

static struct order_stream *
order__find(struct mri_order_table *o, uint64_t id)
{
	struct order_stream *s;

	for (s = *order__slot(o, id); s != NULL; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

static bool
order__idle(const struct mri_order_table *o, const struct order_stream *s,
	    uint64_t now_ms)
{
	return !s->busy && s->parked == NULL && now_ms >= s->used_ms &&
	       now_ms - s->used_ms >= o->idle_ms;
}

/* Forget the streams idle for the idle limit. */
static void
order__sweep_idle(struct mri_order_table *o, uint64_t now_ms)
{
	o->swept_ms = now_ms;
	for (size_t i = 0; i < o->nbuckets; i++) {
		struct order_stream **pp = &o->buckets[i], *s;

		while ((s = *pp) != NULL) {
			if (order__idle(o, s, now_ms)) {
				*pp = s->hnext;
				free(s);
				o->count--;
			} else {
				pp = &s->hnext;
			}
		}
	}
}

static void
order__append(struct mri_order_item ***tail, struct mri_order_item *it)
{
	it->next = NULL;
	**tail   = it;
	*tail    = &it->next;
}

/* Take off \p s what may go now: resends of what went before next, then the
 * request whose turn it is. */
static void
order__release(struct mri_order_table *o, struct order_stream *s,
	       struct mri_order_item ***tail)
{
	struct mri_order_item *it;

	while ((it = s->parked) != NULL && mri_seq_before(it->seq, s->next)) {
		s->parked = it->next;
		o->parked--;
		it->turn = false;
		order__append(tail, it);
	}
	if (!s->busy && (it = s->parked) != NULL && it->seq == s->next) {
		s->parked = it->next;
		o->parked--;
		it->turn = true;
		s->busy  = true;
		order__append(tail, it);
	}
}

struct mri_order_item *
mri_order_arrive(struct mri_order_table *o, struct mri_order_item *it,
		 uint32_t base, uint64_t now_ms, bool *full)
{
	struct mri_order_item *out = NULL, **tail = &out, **pp;
	struct order_stream   *s;

	*full = false;
	pthread_mutex_lock(&o->lock);
	if ((s = order__find(o, it->stream)) == NULL) {
		if (o->count >= o->max)
			order__sweep_idle(o, now_ms);
		if (o->count >= o->max || (s = calloc(1, sizeof(*s))) == NULL) {
			pthread_mutex_unlock(&o->lock);
			*full    = true;
			it->turn = false;
			it->next = NULL;
			return it;
		}
		s->id    = it->stream;
		s->next  = base;
		s->hnext = *order__slot(o, it->stream);
		*order__slot(o, it->stream) = s;
		o->count++;
	} else if (mri_seq_before(s->next, base)) {
		// The publisher awaits nothing before base: what of it is here
		// (even holding the turn) is a resend of what it had answered.
		s->next = base;
	}
	s->used_ms    = now_ms;
	it->parked_ms = now_ms;
	it->turn      = false;
	for (pp = &s->parked; *pp != NULL && !mri_seq_before(it->seq, (*pp)->seq);
	     pp = &(*pp)->next)
		;
	it->next = *pp;
	*pp      = it;
	o->parked++;
	order__release(o, s, &tail);
	pthread_mutex_unlock(&o->lock);
	return out;
}

struct mri_order_item *
mri_order_done(struct mri_order_table *o, struct mri_order_item *it,
	       uint64_t now_ms)
{
	struct mri_order_item *out = NULL, **tail = &out;
	struct order_stream   *s;

	if (!it->turn)
		return NULL;
	pthread_mutex_lock(&o->lock);
	it->turn = false;
	// A stream holding the turn is never forgotten.
	if ((s = order__find(o, it->stream)) != NULL) {
		s->busy = false;
		s->held = false;
		if (mri_seq_before(s->next, it->seq + 1))
			s->next = it->seq + 1;
		s->used_ms = now_ms;
		order__release(o, s, &tail);
	}
	pthread_mutex_unlock(&o->lock);
	return out;
}

void
mri_order_hold(struct mri_order_table *o, struct mri_order_item *it)
{
	struct order_stream *s;

	if (!it->turn)
		return;
	pthread_mutex_lock(&o->lock);
	if ((s = order__find(o, it->stream)) != NULL)
		s->held = true;
	pthread_mutex_unlock(&o->lock);
}

struct mri_order_item *
mri_order_expire(struct mri_order_table *o, uint64_t now_ms, uint64_t wait_ms)
{
	struct mri_order_item *out = NULL, **tail = &out;

	pthread_mutex_lock(&o->lock);
	if (o->parked > 0) {
		for (size_t i = 0; i < o->nbuckets; i++) {
			struct order_stream *s;

			for (s = o->buckets[i]; s != NULL; s = s->hnext) {
				struct mri_order_item **pp = &s->parked, *it;

				while ((it = *pp) != NULL) {
					// Behind a held request, the wait is
					// for it (mri_order_hold).
					if (wait_ms > 0 &&
					    (s->held || now_ms < it->parked_ms ||
					     now_ms - it->parked_ms < wait_ms)) {
						pp = &it->next;
						continue;
					}
					*pp = it->next;
					o->parked--;
					o->expired++;
					order__append(&tail, it);
				}
			}
		}
	}
	if (now_ms >= o->swept_ms + ORDER__IDLE_SWEEP_MS)
		order__sweep_idle(o, now_ms);
	pthread_mutex_unlock(&o->lock);
	return out;
}

void
mri_order_stats(struct mri_order_table *o, struct mri_order_stats *st)
{
	pthread_mutex_lock(&o->lock);
	st->streams = o->count;
	st->parked  = o->parked;
	st->expired = o->expired;
	pthread_mutex_unlock(&o->lock);
}
