#include "runs.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

#define RUNS__SLOTS0 16 /* the partition table's first size */
#define RUNS__STACK 16  /* runs a merge replaces without a malloc */

struct runs_run {
	int64_t  first, end; /* [first, end) */
	int64_t  ts;         /* last put to */
	uint32_t attempt;
};

struct runs_part {
	uint64_t         key;
	struct runs_run *v; /* sorted, not overlapping */
	size_t           n, cap;
};

struct mri_runs {
	struct runs_part **slots; /* open addressing on the key, linear */
	size_t             nslots, nparts;
	size_t             count, max; /* runs, over every partition */
};

int
mri_runs_new(struct mri_runs **out, size_t max)
{
	struct mri_runs *r;

	if (max < 1 || max > MRI_RUNS_MAX)
		return MR_EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->slots = calloc(RUNS__SLOTS0, sizeof(*r->slots))) == NULL) {
		free(r);
		return MR_ENOMEM;
	}
	r->nslots = RUNS__SLOTS0;
	r->max    = max;
	*out      = r;
	return MR_OK;
}

void
mri_runs_free(struct mri_runs *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nslots; i++)
		if (r->slots[i] != NULL) {
			free(r->slots[i]->v);
			free(r->slots[i]);
		}
	free(r->slots);
	free(r);
}

size_t
mri_runs_count(const struct mri_runs *r)
{
	return r->count;
}

/* ---- partitions ------------------------------------------------------- */

static size_t
runs__home(uint64_t key, size_t nslots)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (nslots - 1);
}

static struct runs_part *
runs__find_part(const struct mri_runs *r, uint64_t key)
{
	for (size_t i = runs__home(key, r->nslots);; i = (i + 1) &
						      (r->nslots - 1)) {
		struct runs_part *p = r->slots[i];

		if (p == NULL || p->key == key)
			return p;
	}
}

/* Double the table (it is kept at most half full). */
static int
runs__grow_slots(struct mri_runs *r)
{
	size_t             n = r->nslots * 2;
	struct runs_part **s = calloc(n, sizeof(*s));

	if (s == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < r->nslots; i++) {
		size_t j;

		if (r->slots[i] == NULL)
			continue;
		for (j = runs__home(r->slots[i]->key, n); s[j] != NULL;
		     j = (j + 1) & (n - 1))
			;
		s[j] = r->slots[i];
	}
	free(r->slots);
	r->slots  = s;
	r->nslots = n;
	return MR_OK;
}

static struct runs_part *
runs__part(struct mri_runs *r, uint64_t key)
{
	struct runs_part *p = runs__find_part(r, key);
	size_t            i;

	if (p != NULL)
		return p;
	if ((r->nparts + 1) * 2 > r->nslots && runs__grow_slots(r) != MR_OK)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->key = key;
	for (i = runs__home(key, r->nslots); r->slots[i] != NULL;
	     i = (i + 1) & (r->nslots - 1))
		;
	r->slots[i] = p;
	r->nparts++;
	return p;
}

/* ---- runs ------------------------------------------------------------- */

/* @returns the first run of \p p in [from, p->n) whose end is above \p o
 *          (p->n if none). */
static size_t
runs__after(const struct runs_part *p, size_t from, int64_t o)
{
	size_t lo = from, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->v[mid].end > o)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* @returns the first run of \p p that starts at or above \p o. */
static size_t
runs__from(const struct runs_part *p, int64_t o)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->v[mid].first >= o)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int
runs__reserve(struct runs_part *p, size_t more)
{
	size_t           cap = p->cap ? p->cap : 4;
	struct runs_run *v;

	if (p->n + more <= p->cap)
		return MR_OK;
	while (cap < p->n + more)
		cap *= 2;
	if ((v = realloc(p->v, cap * sizeof(*v))) == NULL)
		return MR_ENOMEM;
	p->v   = v;
	p->cap = cap;
	return MR_OK;
}

static void
runs__drop_first(struct mri_runs *r, struct runs_part *p)
{
	memmove(p->v, p->v + 1, (p->n - 1) * sizeof(*p->v));
	p->n--;
	r->count--;
}

/* Over the bound: drop the lowest run of \p p, or of the first other
 * partition with runs when \p p has only the one just put. */
static void
runs__bound(struct mri_runs *r, struct runs_part *p)
{
	for (size_t i = 0; r->count > r->max && i < r->nslots; i++) {
		struct runs_part *q = r->slots[i];

		if (p->n > 1)
			runs__drop_first(r, p);
		else if (q != NULL && q != p && q->n > 0)
			runs__drop_first(r, q);
	}
	if (r->count > r->max)
		runs__drop_first(r, p);
}

static int64_t
runs__max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Put [first, end) at attempt over the runs it overlaps, v[lo, hi):
 * each piece keeps the larger attempt, then pieces that touch with the
 * same attempt (and the neighbours v[lo - 1], v[hi]) become one. */
static int
runs__merge(struct mri_runs *r, struct runs_part *p, int64_t first,
	    int64_t end, uint32_t attempt, int64_t ts)
{
	size_t           lo = runs__after(p, 0, first), hi = runs__from(p, end);
	size_t           m = 0, k = 2 * (hi - lo) + 3, w;
	struct runs_run  stack[2 * RUNS__STACK + 3], *t = stack;
	int64_t          cur = first;

	if (k > 2 * RUNS__STACK + 3 && (t = malloc(k * sizeof(*t))) == NULL)
		return MR_ENOMEM;
	for (size_t i = lo; i < hi; i++) {
		const struct runs_run *o = &p->v[i];
		int64_t                a = runs__max64(o->first, first);
		int64_t                b = o->end < end ? o->end : end;

		if (o->first < first) // only the first: its part below
			t[m++] = (struct runs_run){o->first, first, o->ts,
						   o->attempt};
		if (cur < o->first) // a gap of ours before it
			t[m++] = (struct runs_run){cur, o->first, ts, attempt};
		t[m++] = (struct runs_run){a, b, runs__max64(ts, o->ts),
					   attempt > o->attempt ? attempt
								: o->attempt};
		if (o->end > end) // only the last: its part above
			t[m++] = (struct runs_run){end, o->end, o->ts,
						   o->attempt};
		cur = b;
	}
	if (cur < end)
		t[m++] = (struct runs_run){cur, end, ts, attempt};
	if (lo > 0 && p->v[lo - 1].end == t[0].first &&
	    p->v[lo - 1].attempt == t[0].attempt) {
		t[0].first = p->v[--lo].first;
		t[0].ts    = runs__max64(t[0].ts, p->v[lo].ts);
	}
	if (hi < p->n && p->v[hi].first == t[m - 1].end &&
	    p->v[hi].attempt == t[m - 1].attempt) {
		t[m - 1].end = p->v[hi].end;
		t[m - 1].ts  = runs__max64(t[m - 1].ts, p->v[hi].ts);
		hi++;
	}
	w = 0;
	for (size_t i = 1; i < m; i++) {
		if (t[i].first == t[w].end && t[i].attempt == t[w].attempt) {
			t[w].end = t[i].end;
			t[w].ts  = runs__max64(t[w].ts, t[i].ts);
		} else {
			t[++w] = t[i];
		}
	}
	m = w + 1;
	if (m > hi - lo && runs__reserve(p, m - (hi - lo)) != MR_OK) {
		if (t != stack)
			free(t);
		return MR_ENOMEM;
	}
	memmove(p->v + lo + m, p->v + hi, (p->n - hi) * sizeof(*p->v));
	memcpy(p->v + lo, t, m * sizeof(*t));
	p->n     = p->n - (hi - lo) + m;
	r->count = r->count - (hi - lo) + m;
	if (t != stack)
		free(t);
	return MR_OK;
}

int
mri_runs_put(struct mri_runs *r, uint64_t part, int64_t first,
	     uint32_t count, uint32_t attempt, int64_t ts)
{
	struct runs_part *p;
	struct runs_run  *last;
	int64_t           end;
	int               rc;

	if (count == 0 || first < 0 || first > INT64_MAX - (int64_t)count)
		return MR_OK;
	end = first + (int64_t)count;
	if ((p = runs__part(r, part)) == NULL)
		return MR_ENOMEM;
	last = p->n > 0 ? &p->v[p->n - 1] : NULL;
	// Above every run: the common case, in order.
	if (last != NULL && last->end == first && last->attempt == attempt) {
		last->end = end;
		last->ts  = runs__max64(last->ts, ts);
		return MR_OK;
	}
	if (last == NULL || first >= last->end) {
		if (runs__reserve(p, 1) != MR_OK)
			return MR_ENOMEM;
		p->v[p->n++] = (struct runs_run){first, end, ts, attempt};
		r->count++;
	} else if ((rc = runs__merge(r, p, first, end, attempt, ts)) !=
		   MR_OK) {
		return rc;
	}
	runs__bound(r, p);
	return MR_OK;
}

void
mri_runs_find(const struct mri_runs *r, uint64_t part, size_t n,
	      const int64_t *offsets, uint32_t *attempts)
{
	const struct runs_part *p = runs__find_part(r, part);
	size_t                  i = 0;
	int64_t                 prev = INT64_MIN;

	for (size_t k = 0; k < n; k++) {
		int64_t o = offsets[k];

		attempts[k] = 0;
		if (p == NULL || p->n == 0 || o >= p->v[p->n - 1].end)
			continue; // above every run: never handed out
		if (o < prev)
			i = runs__after(p, 0, o);
		else if (i < p->n && p->v[i].end <= o)
			i = runs__after(p, i, o);
		if (i < p->n && p->v[i].first <= o)
			attempts[k] = p->v[i].attempt;
		prev = o;
	}
}

size_t
mri_runs_expire(struct mri_runs *r, int64_t before)
{
	size_t dropped = 0;

	for (size_t s = 0; s < r->nslots; s++) {
		struct runs_part *p = r->slots[s];
		size_t            w = 0;

		if (p == NULL)
			continue;
		for (size_t i = 0; i < p->n; i++)
			if (p->v[i].ts >= before)
				p->v[w++] = p->v[i];
		dropped += p->n - w;
		p->n = w;
	}
	r->count -= dropped;
	return dropped;
}
