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
 * fault. So blocks from 16 KiB to 64 MiB (a FETCH reply of 1 000 small
 * records is about 400 KiB, of 40 records of 100 KiB 4 MiB) are taken
 * without zeroing and zeroed here; smaller ones are left to jemalloc,
 * and so are larger ones. The tables that librdkafka and nng allocate
 * once and use in part are zeroed here too, pages jemalloc would have
 * left unmapped until touched: mailroomd starts about 1 MB larger.
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
