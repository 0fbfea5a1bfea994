/*
 * mailroomd's calloc, built only with jemalloc (MR_ALLOCATOR=jemalloc;
 * docs/ARCHITECTURE.md, "mailroomd allocates with jemalloc").
 *
 * nng allocates every message it receives with calloc, then reads the
 * frame over it: a PUBLISH of 1 000 records is about 160 KiB, and each
 * reply mailroomd builds is another such block. jemalloc zeroes a
 * recycled block of that size with madvise(MADV_DONTNEED), which costs a
 * system call, a TLB shootdown on the other core, and then a page fault
 * for each 4 KiB page as the frame is read in: about 40 faults for every
 * request. memset of the same block costs a few microseconds and no
 * fault. So blocks from 16 KiB to 4 MiB are taken without zeroing and
 * zeroed here; smaller and larger ones are left to jemalloc (the largest
 * are fresh mappings it knows to be zero).
 */
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <stddef.h>
#include <string.h>

#include "broker/alloc.h"

void *
calloc(size_t n, size_t size)
{
	size_t total;
	void  *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (total < MRD_CALLOC_MEMSET_MIN || total > MRD_CALLOC_MEMSET_MAX) {
		// mallocx's size must not be 0; calloc(0) is a unique block.
		p = mallocx(total > 0 ? total : 1, MALLOCX_ZERO);
	} else if ((p = mallocx(total, 0)) != NULL) {
		memset(p, 0, total);
	}
	if (p == NULL)
		errno = ENOMEM;
	return p;
}
