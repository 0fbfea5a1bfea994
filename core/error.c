#include "mailroom/error.h"

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
