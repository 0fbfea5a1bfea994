/*
 * What the consume registry tells about itself (broker/consume.h): a
 * session's assignment (ASSIGNMENT), the subscriptions' counts and stats
 * (STATUS, /metrics), whether their groups have joined (/readyz), the
 * breakers' resume, the topics served and their dead-letter topics (the
 * lag monitor's).
 */
#include "consume.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/consume_internal.h"
#include "mailroom/error.h"
#include "proto/assignment.h"
#include "proto/header.h"

void
mri_consume_assignment(struct mri_consume *r, uint32_t pipe,
		       const uint8_t *body, size_t len, struct mri_wbuf *out)
{
	struct consume_session      *x;
	struct mri_group_stats       st;
	struct mri_group_part_stats *parts = NULL;
	struct mri_assigned         *v     = NULL;
	uint64_t                     id;
	size_t                       n, max;
	const char                  *why;
	int                          rc;

	if ((rc = mri_assignment_decode(body, len, &id, &why)) != MR_OK) {
		consume__error(out, rc, why);
		return;
	}
	if ((x = consume__find(r, id, pipe)) == NULL) {
		consume__error(out, MR_ENOENT, "no such session");
		return;
	}
	// Counted first, then read with room for a few more (a rebalance in
	// between: what does not fit is left out of this answer).
	max = mri_group_stats(x->sub->g, &st, NULL, 0) + 16;
	if (max > MRI_ASSIGNMENT_MAX)
		max = MRI_ASSIGNMENT_MAX;
	if ((parts = calloc(max, sizeof(*parts))) == NULL ||
	    (v = calloc(max, sizeof(*v))) == NULL) {
		consume__session_rele(r, x);
		free(parts);
		consume__error(out, MR_ENOMEM, "out of memory");
		return;
	}
	n = mri_group_stats(x->sub->g, &st, parts, max);
	consume__session_rele(r, x);
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct mri_assigned){parts[i].topic,
					     parts[i].partition};
	mri_assignment_reply_encode(out, v, n);
	free(v);
	free(parts);
}

size_t
consume__hold(struct mri_consume *r, const char *group,
	      struct consume_sub **out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	for (struct consume_sub *s = r->subs; s != NULL; s = s->next) {
		if (group != NULL && strcmp(s->key, group) != 0)
			continue;
		if (n < max) {
			s->refs++;
			out[n] = s;
		}
		n++;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

size_t
mri_consume_sub_stats(struct mri_consume *r, struct mri_consume_sub_stats *out,
		      size_t max)
{
	struct consume_sub **h = calloc(max ? max : 1, sizeof(*h));
	size_t               n;

	if (h == NULL)
		return 0;
	n = consume__hold(r, NULL, h, max);
	for (size_t i = 0; i < n && i < max; i++) {
		struct consume_sub *s = h[i];

		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].group, sizeof(out[i].group), "%s", s->key);
		out[i].mode    = consume__modes[s->order];
		out[i].ntopics = s->ntopics;
		pthread_mutex_lock(&r->lock);
		out[i].sessions = s->nsessions;
		pthread_mutex_unlock(&r->lock);
		mri_group_stats(s->g, &out[i].g, NULL, 0);
		mri_dlq_stats(s->sup, &out[i].dlq);
		consume__sub_rele(r, s);
	}
	free(h);
	return n;
}

uint64_t
mri_consume_retired(struct mri_consume *r)
{
	return atomic_load(&r->retired);
}

size_t
mri_consume_each_part(struct mri_consume *r,
		      void (*fn)(void *arg, const char *group,
				 const struct mri_group_part_stats *p),
		      void *arg)
{
	struct consume_sub         **h;
	struct mri_group_part_stats *parts = NULL;
	struct mri_group_stats       st;
	size_t                       n, max, calls = 0;

	// Counted first, then held with room for a few more.
	max = consume__hold(r, NULL, NULL, 0) + 16;
	if ((h = calloc(max, sizeof(*h))) == NULL)
		return 0;
	if ((n = consume__hold(r, NULL, h, max)) > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		size_t room = mri_group_stats(h[i]->g, &st, NULL, 0) + 16, k;

		if ((parts = calloc(room, sizeof(*parts))) != NULL) {
			k = mri_group_stats(h[i]->g, &st, parts, room);
			for (size_t j = 0; j < k && j < room; j++, calls++)
				fn(arg, h[i]->key, &parts[j]);
			free(parts);
		}
		consume__sub_rele(r, h[i]);
	}
	free(h);
	return calls;
}

size_t
mri_consume_each_tally(struct mri_consume *r,
		       void (*fn)(void *arg,
				  const struct mri_consume_tally_view *t),
		       void *arg)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->ntallies;
	pthread_mutex_unlock(&r->lock);
	// Entries are never removed, and a name is written before ntallies
	// counts it: those counted can be read without the lock.
	for (size_t i = 0; i <= n; i++) {
		const struct consume_tally *t =
		    &r->tallies[i < n ? i : CONSUME__TALLY_MAX];
		struct mri_consume_tally_view v = {
		    .group       = t->group,
		    .delivered   = atomic_load(&t->delivered),
		    .redelivered = atomic_load(&t->redelivered),
		    .acks        = atomic_load(&t->acks),
		    .nacks       = atomic_load(&t->nacks),
		    .rejects     = atomic_load(&t->rejects),
		    .failed      = atomic_load(&t->failed),
		    .expired     = atomic_load(&t->expired),
		    .quarantined = atomic_load(&t->quarantined),
		    .dlq_errors  = atomic_load(&t->dlq_errors),
		    .trips       = atomic_load(&t->trips),
		    .ack_latency = &t->ack_latency,
		};

		if (i == n && v.delivered == 0 && v.acks == 0 && v.nacks == 0 &&
		    v.rejects == 0)
			continue;
		fn(arg, &v);
	}
	return n;
}

size_t
mri_consume_resume(struct mri_consume *r, const char *group, size_t *resumed)
{
	struct consume_sub *h[CONSUME__RESUME_MAX];
	size_t              n = consume__hold(r, group, h, CONSUME__RESUME_MAX);

	*resumed = 0;
	for (size_t i = 0; i < n && i < CONSUME__RESUME_MAX; i++) {
		if (mri_dlq_resume(h[i]->sup) == MRI_DLQ_OPEN)
			(*resumed)++;
		consume__sub_rele(r, h[i]);
	}
	return n;
}

void
mri_consume_counts(struct mri_consume *r, size_t *subs, size_t *sessions)
{
	*subs = *sessions = 0;
	pthread_mutex_lock(&r->lock);
	for (struct consume_sub *s = r->subs; s != NULL; s = s->next) {
		(*subs)++;
		*sessions += s->nsessions;
	}
	pthread_mutex_unlock(&r->lock);
}

size_t
mri_consume_joined(struct mri_consume *r, size_t *subs, char *waiting,
		   size_t waiting_size)
{
	size_t joined = 0;

	*subs = 0;
	if (waiting_size > 0)
		waiting[0] = '\0';
	pthread_mutex_lock(&r->lock);
	// Newest first: the last one not joined is the one waiting longest.
	for (struct consume_sub *s = r->subs; s != NULL; s = s->next) {
		(*subs)++;
		if (mri_group_joined(s->g))
			joined++;
		else
			snprintf(waiting, waiting_size, "%s", s->key);
	}
	pthread_mutex_unlock(&r->lock);
	return joined;
}

void
mri_consume_each_topic(struct mri_consume *r,
		       void (*fn)(void *arg, const char *group,
				  const char *topic),
		       void *arg)
{
	pthread_mutex_lock(&r->lock);
	for (struct consume_sub *s = r->subs; s != NULL; s = s->next) {
		// The key: the group, then its topics, each NUL-terminated.
		const char *t = s->key + strlen(s->key) + 1;

		for (size_t i = 0; i < s->ntopics; i++, t += strlen(t) + 1)
			fn(arg, s->key, t);
	}
	pthread_mutex_unlock(&r->lock);
}

void
mri_consume_each_dlq_topic(struct mri_consume *r,
			   void (*fn)(void *arg, const char *topic), void *arg)
{
	char name[MRI_TOPIC_MAX + MRI_SUBSCRIBE_DLQ_SUFFIX_MAX + 1];

	pthread_mutex_lock(&r->lock);
	for (struct consume_sub *s = r->subs; s != NULL; s = s->next) {
		const char *t = s->key + strlen(s->key) + 1;

		if (s->dlq.topic != NULL) {
			fn(arg, s->dlq.topic);
			continue;
		}
		// As its supervisor names them: each topic's own.
		for (size_t i = 0; i < s->ntopics; i++, t += strlen(t) + 1) {
			snprintf(name, sizeof(name), "%s%s", t, s->dlq.suffix);
			fn(arg, name);
		}
	}
	pthread_mutex_unlock(&r->lock);
}
