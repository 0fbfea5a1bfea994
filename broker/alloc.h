#ifndef MAILROOM_BROKER_ALLOC_H
#define MAILROOM_BROKER_ALLOC_H

/*
 * The sizes mailroomd's calloc zeroes itself (broker/alloc.c): from a
 * small frame to four times the default max_frame_bytes.
 */
#define MRD_CALLOC_MEMSET_MIN ((size_t)16 << 10)
#define MRD_CALLOC_MEMSET_MAX ((size_t)64 << 20)

#endif
