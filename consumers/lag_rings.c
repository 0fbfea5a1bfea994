/*
 * The lag monitor's end-offset rings (consumers/lag_internal.h): each
 * partition's (end offset, first seen) samples, the time lag's evidence,
 * carried from one refresh to the next. On the monitor's thread.
 */
#include <stdlib.h>
#include <string.h>

#include "consumers/lag_internal.h"
#include "mailroom/error.h"

int64_t
lag__time_lag(const struct lag_part *p, int64_t pos, uint64_t now)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->s[i].end > pos)
			return now > p->s[i].seen ? (int64_t)(now - p->s[i].seen)
						  : 0;
	return 0;
}

void
lag__ring_push(struct lag_part *p, int64_t end, uint64_t now)
{
	size_t k = 0;

	if (p->n > 0 && p->s[p->n - 1].end == end)
		return;
	if (p->n > 0 && p->s[p->n - 1].end > end)
		p->n = 0; // the partition went back (recreated): start anew
	if (p->n == MRI_LAG_RING) {
		// Every other sample goes (the oldest and the newest stay):
		// a reader between two left falls to the later one, so the
		// estimate only gets shorter, never longer than the truth.
		for (size_t i = 0; i < p->n; i++)
			if (i % 2 == 0 || i == p->n - 1)
				p->s[k++] = p->s[i];
		p->n = k;
	}
	p->s[p->n].end  = end;
	p->s[p->n].seen = now;
	p->n++;
}

void
lag__ring_trim(struct lag_part *p)
{
	size_t k = 0;

	// A sample whose end is at or below every reader's position is the
	// answer for no one.
	while (k + 1 < p->n && p->s[k].end <= p->minpos)
		k++;
	if (k > 0) {
		memmove(p->s, p->s + k, (p->n - k) * sizeof(p->s[0]));
		p->n -= k;
	}
}

void
lag__rings_fini(struct lag_rings *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (!r->v[i].moved)
			free(r->v[i].topic);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

int
lag__cmp_tp(const char *t1, int32_t p1, const char *t2, int32_t p2)
{
	int c = strcmp(t1, t2);

	return c != 0 ? c : (p1 > p2) - (p1 < p2);
}

struct lag_part *
lag__ring_find(struct lag_rings *r, const char *topic, int32_t partition)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int    c   = lag__cmp_tp(r->v[mid].topic, r->v[mid].partition,
					 topic, partition);

		if (c == 0)
			return &r->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
lag__rings_update(struct lag_rings *old,
		  const rd_kafka_topic_partition_list_t *e, bool ends_ok,
		  uint64_t now)
{
	struct lag_rings neu;

	neu.n = 0;
	neu.v = calloc((size_t)(e->cnt > 0 ? e->cnt : 1), sizeof(*neu.v));
	if (neu.v == NULL)
		return MR_ENOMEM;
	for (int i = 0; i < e->cnt; i++) {
		struct lag_part *p = &neu.v[neu.n];
		struct lag_part *o = lag__ring_find(old, e->elems[i].topic,
						    e->elems[i].partition);

		if (o != NULL) {
			*p       = *o;
			o->moved = true;
		} else if ((p->topic = strdup(e->elems[i].topic)) == NULL) {
			// Undone: what came from the old rings stays theirs
			// (neu's copy is not freed, old's is no longer moved).
			for (size_t k = 0; k < neu.n; k++) {
				struct lag_part *q = lag__ring_find(
				    old, neu.v[k].topic, neu.v[k].partition);

				if (q != NULL && q->topic == neu.v[k].topic) {
					q->moved       = false;
					neu.v[k].moved = true;
				}
			}
			lag__rings_fini(&neu);
			return MR_ENOMEM;
		} else {
			p->partition = e->elems[i].partition;
			p->n         = 0;
		}
		p->moved  = false;
		p->minpos = INT64_MAX;
		if (ends_ok && !e->elems[i].err && e->elems[i].offset >= 0)
			lag__ring_push(p, e->elems[i].offset, now);
		neu.n++;
	}
	lag__rings_fini(old);
	*old = neu;
	return MR_OK;
}
