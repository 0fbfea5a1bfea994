#include "failures.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"

/* A slot of the open-addressing table; reason is NULL when empty. */
struct slot {
	uint64_t pos;
	int64_t  first_ms, last_ms;
	uint32_t count;
	uint32_t reason_len;
	char    *reason; /* MRI_DLQ_REASON_MAX + 1 bytes; NULL: empty slot */
};

struct mri_dlq_failures {
	struct slot *slots;
	size_t       mask; /* slots - 1, a power of two minus one */
	size_t       n, max;
};

static size_t
failures__home(const struct mri_dlq_failures *f, uint64_t pos)
{
	return (size_t)((pos * 0x9e3779b97f4a7c15ULL) >> 20) & f->mask;
}

int
mri_dlq_failures_new(struct mri_dlq_failures **out, size_t max)
{
	struct mri_dlq_failures *f;
	size_t                   cap = 16;

	if (max == 0)
		return MR_EINVAL;
	while (cap < 2 * max)
		cap *= 2;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->slots = calloc(cap, sizeof(*f->slots))) == NULL) {
		free(f);
		return MR_ENOMEM;
	}
	f->mask = cap - 1;
	f->max  = max;
	*out    = f;
	return MR_OK;
}

void
mri_dlq_failures_free(struct mri_dlq_failures *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i <= f->mask; i++)
		free(f->slots[i].reason);
	free(f->slots);
	free(f);
}

/* @returns the slot of \p pos, or the empty slot where it would go. */
static size_t
failures__find(const struct mri_dlq_failures *f, uint64_t pos)
{
	size_t i = failures__home(f, pos);

	while (f->slots[i].reason != NULL && f->slots[i].pos != pos)
		i = (i + 1) & f->mask;
	return i;
}

/* Empty slot \p i, moving back the entries after it that the hole would
 * hide from their home (linear probing's deletion). */
static void
failures__remove(struct mri_dlq_failures *f, size_t i)
{
	size_t j = i;

	free(f->slots[i].reason);
	f->slots[i].reason = NULL;
	f->n--;
	for (;;) {
		size_t k;

		j = (j + 1) & f->mask;
		if (f->slots[j].reason == NULL)
			return;
		k = failures__home(f, f->slots[j].pos);
		// Leave j where it is if its home lies cyclically in (i, j].
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		f->slots[i]        = f->slots[j];
		f->slots[j].reason = NULL;
		i                  = j;
	}
}

/* Make room: forget the entry whose last failure is the oldest. */
static void
failures__evict(struct mri_dlq_failures *f)
{
	size_t oldest = SIZE_MAX;

	for (size_t i = 0; i <= f->mask; i++)
		if (f->slots[i].reason != NULL &&
		    (oldest == SIZE_MAX ||
		     f->slots[i].last_ms < f->slots[oldest].last_ms))
			oldest = i;
	if (oldest != SIZE_MAX)
		failures__remove(f, oldest);
}

void
mri_dlq_failures_note(struct mri_dlq_failures *f, uint64_t pos,
		      int64_t now_ms, const char *reason, size_t len)
{
	size_t       i = failures__find(f, pos);
	struct slot *s = &f->slots[i];

	if (s->reason == NULL) {
		char *r;

		if (f->n >= f->max) {
			failures__evict(f);
			i = failures__find(f, pos);
			s = &f->slots[i];
		}
		if ((r = malloc(MRI_DLQ_REASON_MAX + 1)) == NULL)
			return;
		memset(s, 0, sizeof(*s));
		s->pos      = pos;
		s->reason   = r;
		s->first_ms = now_ms;
		f->n++;
	}
	if (len > MRI_DLQ_REASON_MAX)
		len = MRI_DLQ_REASON_MAX;
	if (reason == NULL)
		len = 0;
	memcpy(s->reason, reason != NULL ? reason : "", len);
	s->reason[len] = '\0';
	s->reason_len  = (uint32_t)len;
	s->last_ms     = now_ms;
	s->count++;
}

static void
failures__copy(const struct slot *s, struct mri_dlq_failure_info *out)
{
	out->first_ms   = s->first_ms;
	out->last_ms    = s->last_ms;
	out->count      = s->count;
	out->reason_len = s->reason_len;
	memcpy(out->reason, s->reason, s->reason_len + 1);
}

bool
mri_dlq_failures_get(const struct mri_dlq_failures *f, uint64_t pos,
		     struct mri_dlq_failure_info *out)
{
	size_t i = failures__find(f, pos);

	if (f->slots[i].reason == NULL)
		return false;
	if (out != NULL)
		failures__copy(&f->slots[i], out);
	return true;
}

bool
mri_dlq_failures_take(struct mri_dlq_failures *f, uint64_t pos,
		      struct mri_dlq_failure_info *out)
{
	size_t i = failures__find(f, pos);

	if (f->slots[i].reason == NULL)
		return false;
	if (out != NULL)
		failures__copy(&f->slots[i], out);
	failures__remove(f, i);
	return true;
}

size_t
mri_dlq_failures_count(const struct mri_dlq_failures *f)
{
	return f->n;
}
