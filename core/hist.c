/* Histograms of durations (core/hist.h). */
#include "hist.h"

void
mri_hist_init(struct mri_hist *h, const uint64_t *le, size_t n)
{
	h->le = le;
	h->n  = n > MRI_HIST_MAX ? MRI_HIST_MAX : n;
	for (size_t i = 0; i <= MRI_HIST_MAX; i++)
		atomic_init(&h->bucket[i], 0);
	atomic_init(&h->count, 0);
	atomic_init(&h->sum, 0);
}

void
mri_hist_add(struct mri_hist *h, uint64_t v, uint64_t n)
{
	size_t lo = 0, hi = h->n;

	// The first bound at or above v: a bucket's le is inclusive.
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v > h->le[mid])
			lo = mid + 1;
		else
			hi = mid;
	}
	atomic_fetch_add_explicit(&h->bucket[lo], n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v * n, memory_order_relaxed);
}
