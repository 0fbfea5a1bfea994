#include "proto/address.h"

#include <string.h>

#include "mailroom/error.h"
#include "proto/frame.h"

int
mri_address_parse(const char *addr, struct mri_address *out)
{
	const char *slash = strchr(addr, '/');

	out->topic     = addr;
	out->topic_len = slash ? (size_t)(slash - addr) : strlen(addr);
	out->key       = slash ? slash + 1 : NULL;
	out->key_len   = slash ? strlen(slash + 1) : 0;
	if (!mri_topic_valid(out->topic, out->topic_len))
		return MR_EINVAL;
	return MR_OK;
}
