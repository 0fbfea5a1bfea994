#include "mailroom/error.h"

#include <string.h>

const char *
mr_strerror(int err)
{
	switch (err) {
#define MR__ERR_STR(name, num, desc)                                          \
	case num:                                                             \
		return desc;
		MR_ERRNO_MAP(MR__ERR_STR)
#undef MR__ERR_STR
	}
	return "unknown error";
}

const char *
mr_err_name(int err)
{
	switch (err) {
#define MR__ERR_NAME(name, num, desc)                                         \
	case num:                                                             \
		return "MR_" #name;
		MR_ERRNO_MAP(MR__ERR_NAME)
#undef MR__ERR_NAME
	}
	return "MR_EUNKNOWN";
}

const char *
mr_err_sentence(int err, const char *why)
{
	const char *name = mr_err_name(err);
	size_t      len  = strlen(name);

	if (why == NULL || why[0] == '\0')
		return mr_strerror(err);
	// mailroomd's sentences start with the code's name (PROTOCOL.md).
	if (strncmp(why, name, len) == 0 && why[len] == ':') {
		why += len + 1;
		while (*why == ' ')
			why++;
		if (*why == '\0')
			return mr_strerror(err);
	}
	return why;
}
