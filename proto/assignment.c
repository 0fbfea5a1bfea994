/* ASSIGNMENT's codec (proto/assignment.h). */
#include "proto/assignment.h"

#include <stdlib.h>
#include <string.h>

#include "mailroom/error.h"
#include "proto/reader.h"

/* The smallest encoding of one partition: a 1-byte topic. */
#define ASSIGN__MIN_LEN (2 + 1 + 4)

void
mri_assignment_encode(struct mri_wbuf *b, uint64_t session)
{
	mri_frame_begin(b, MRI_OP_ASSIGNMENT);
	mri_wbuf_u64(b, session);
	mri_frame_end(b);
}

int
mri_assignment_decode(const void *body, size_t len, uint64_t *session,
		      const char **why)
{
	*session = 0;
	if (len != 8) {
		*why = "ASSIGNMENT body is not 8 bytes";
		return MR_EPROTO;
	}
	*session = mri_le64(body);
	return MR_OK;
}

void
mri_assignment_reply_encode(struct mri_wbuf *b, const struct mri_assigned *v,
			    size_t n)
{
	mri_frame_begin(b, MRI_OP_ASSIGNMENT_REPLY);
	mri_wbuf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		size_t tl = strlen(v[i].topic);

		mri_wbuf_u16(b, (uint16_t)tl);
		mri_wbuf_put(b, v[i].topic, tl);
		mri_wbuf_u32(b, (uint32_t)v[i].partition);
	}
	mri_frame_end(b);
}

int
mri_assignment_reply_decode(const void *body, size_t len,
			    struct mri_assigned **out, size_t *n,
			    const char **why)
{
	struct rd            r = rd_init(body, len);
	struct mri_assigned *v;
	char                *names;
	size_t               count, bytes = 0;

	*out  = NULL;
	*n    = 0;
	count = rd_u32(&r);
	if (!r.ok) {
		*why = "ASSIGNMENT reply shorter than its count";
		return MR_EPROTO;
	}
	if (count > MRI_ASSIGNMENT_MAX ||
	    count > rd_left(&r) / ASSIGN__MIN_LEN) {
		*why = "ASSIGNMENT reply count too large for its body";
		return MR_EPROTO;
	}
	// First pass: check everything and size the names.
	for (size_t i = 0; i < count; i++) {
		uint16_t    tl = rd_u16(&r);
		const char *t  = (const char *)rd_bytes(&r, tl);
		int32_t     p  = (int32_t)rd_u32(&r);

		if (!r.ok) {
			*why = "ASSIGNMENT reply truncated";
			return MR_EPROTO;
		}
		if (!mri_topic_valid(t, tl) || p < 0) {
			*why = "ASSIGNMENT reply has an invalid topic or "
			       "partition";
			return MR_EPROTO;
		}
		bytes += (size_t)tl + 1;
	}
	if (rd_left(&r) != 0) {
		*why = "ASSIGNMENT reply has bytes after its partitions";
		return MR_EPROTO;
	}
	if (count == 0)
		return MR_OK;
	if ((v = malloc(count * sizeof(*v) + bytes)) == NULL)
		return MR_ENOMEM;
	names = (char *)(v + count);
	r     = rd_init(body, len);
	(void)rd_u32(&r);
	for (size_t i = 0; i < count; i++) {
		uint16_t    tl = rd_u16(&r);
		const char *t  = (const char *)rd_bytes(&r, tl);

		memcpy(names, t, tl);
		names[tl]      = '\0';
		v[i].topic     = names;
		v[i].partition = (int32_t)rd_u32(&r);
		names += (size_t)tl + 1;
	}
	*out = v;
	*n   = count;
	return MR_OK;
}
