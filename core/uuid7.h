/*
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter
 * that keeps ids from one thread increasing within a millisecond, then 62
 * random bits. Message ids that sort by creation time.
 *
 * Thread safety: thread-safe; each thread has its own generator state,
 * seeded from getrandom(2).
 */
#ifndef MRI_UUID7_H
#define MRI_UUID7_H

#include <stdint.h>

#define MRI_UUID_STRLEN 36

/** @brief Fill \p out (16 bytes) with a new UUIDv7. */
void mri_uuid7_new(uint8_t out[16]);

/** @brief Format \p uuid as 36 lowercase characters and a NUL. */
void mri_uuid_format(const uint8_t uuid[16], char out[MRI_UUID_STRLEN + 1]);

/** @brief A new UUIDv7, formatted into \p out. */
void mri_uuid7_string(char out[MRI_UUID_STRLEN + 1]);

#endif
