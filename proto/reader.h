/*
 * A bounds-checked cursor over a frame's body, for the decoders in proto/
 * (private: not installed, not part of the client's API).
 *
 * Every read checks what is left; the first short read clears ok, and every
 * later read returns 0 (or NULL), so a decoder reads on and checks ok once.
 *
 * Thread safety: a cursor belongs to the thread that decodes with it.
 */
#ifndef MRI_READER_H
#define MRI_READER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

struct rd {
	const uint8_t *p;
	const uint8_t *end;
	int            ok;
};

/** @returns a cursor over \p len bytes at \p body. */
static inline struct rd
rd_init(const void *body, size_t len)
{
	struct rd r = {body, (const uint8_t *)body + len, 1};

	return r;
}

static inline int
rd_need(struct rd *r, size_t n)
{
	if (!r->ok || (size_t)(r->end - r->p) < n) {
		r->ok = 0;
		return 0;
	}
	return 1;
}

/** @returns the bytes left, 0 once a read fell short. */
static inline size_t
rd_left(const struct rd *r)
{
	return r->ok ? (size_t)(r->end - r->p) : 0;
}

static inline uint8_t
rd_u8(struct rd *r)
{
	if (!rd_need(r, 1))
		return 0;
	return *r->p++;
}

static inline uint16_t
rd_u16(struct rd *r)
{
	uint16_t v;

	if (!rd_need(r, 2))
		return 0;
	v = mri_le16(r->p);
	r->p += 2;
	return v;
}

static inline uint32_t
rd_u32(struct rd *r)
{
	uint32_t v;

	if (!rd_need(r, 4))
		return 0;
	v = mri_le32(r->p);
	r->p += 4;
	return v;
}

static inline uint64_t
rd_u64(struct rd *r)
{
	uint64_t v;

	if (!rd_need(r, 8))
		return 0;
	v = mri_le64(r->p);
	r->p += 8;
	return v;
}

/** @returns \p n bytes (borrowed from the body), NULL if fewer are left. */
static inline const void *
rd_bytes(struct rd *r, size_t n)
{
	const void *v = r->p;

	if (!rd_need(r, n))
		return NULL;
	r->p += n;
	return v;
}

#endif
