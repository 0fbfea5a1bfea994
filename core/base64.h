/*
 * Standard base64 (RFC 4648, section 4, with padding), for bytes shown as
 * JSON text: the CLI's and the admin API's binary-safe keys, payloads and
 * header values.
 *
 * Thread safety: pure functions, thread-safe.
 */
#ifndef MRI_BASE64_H
#define MRI_BASE64_H

#include <stddef.h>

/** @returns \p len bytes of \p p in base64, NUL-terminated (new: free
 *           it), or NULL when out of memory. */
char *mri_base64_encode(const void *p, size_t len);

/** @returns the bytes of the base64 text \p s (new: free it; *n gets
 *           their number), or NULL when \p s is not base64 with its
 *           padding (or out of memory). */
unsigned char *mri_base64_decode(const char *s, size_t *n);

#endif
