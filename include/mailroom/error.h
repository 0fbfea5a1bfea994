/*
 * mailroom error codes.
 *
 * One list, MR_ERRNO_MAP, generates the enum, mr_strerror() and
 * mr_err_name(), so that they cannot drift apart. The numbers are part of
 * the wire protocol (docs/PROTOCOL.md): never renumber, only append.
 *
 * Thread safety: every function here is thread-safe.
 */
#ifndef MAILROOM_ERROR_H
#define MAILROOM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef MR_API
#if defined(__GNUC__)
#define MR_API __attribute__((visibility("default")))
#else
#define MR_API
#endif
#endif

/* X(name, number, description) */
#define MR_ERRNO_MAP(X)                                                       \
	X(OK, 0, "success")                                                   \
	X(EINVAL, 1, "invalid argument")                                      \
	X(ENOMEM, 2, "out of memory")                                         \
	X(EPROTO, 3, "malformed frame")                                       \
	X(EVERSION, 4, "unsupported protocol version")                        \
	X(ETOOBIG, 5, "frame or message too large")                           \
	X(EUNKNOWNOP, 6, "unknown operation")                                 \
	X(ETIMEDOUT, 7, "timed out")                                          \
	X(EKAFKA, 8, "Kafka refused the request")                             \
	X(ENOTOPIC, 9, "topic does not exist")                                \
	X(EUNAVAIL, 10, "Kafka is unavailable")                               \
	X(ECLOSED, 11, "connection closed")                                   \
	X(ECONNREFUSED, 12, "mailroomd could not be reached")                 \
	X(ESHUTDOWN, 13, "mailroomd is shutting down")                        \
	X(EBUSY, 14, "busy, retry later")                                     \
	X(EEXIST, 15, "already exists")                                       \
	X(ECONFIG, 16, "invalid configuration")                               \
	X(EINTERNAL, 17, "internal error")                                    \
	X(EIO, 18, "input/output error")                                      \
	X(ENOTSUP, 19, "not supported")                                       \
	X(ETRANSPORT, 20, "transport error")                                  \
	X(ENOENT, 21, "not found")                                            \
	X(EORDER, 22, "an earlier request of this publisher has not arrived") \
	X(EINDOUBT, 23, "outcome unknown: it may or may not have been done")  \
	X(EREJECT, 24, "the message can never be processed: quarantine it")

/** @brief mailroom's error codes; MR_OK is 0, everything else fails. */
typedef enum mr_err {
#define MR__ERR_ENUM(name, num, desc) MR_##name = num,
	MR_ERRNO_MAP(MR__ERR_ENUM)
#undef MR__ERR_ENUM
	MR__ERR_END
} mr_err;

/**
 * @brief A sentence describing \p err.
 * @returns a static string (borrowed, never NULL): unknown codes give
 *          "unknown error".
 */
MR_API const char *mr_strerror(int err);

/**
 * @brief The symbolic name of \p err, e.g. "MR_ETIMEDOUT".
 * @returns a static string (borrowed, never NULL).
 */
MR_API const char *mr_err_name(int err);

/**
 * @brief The sentence that says why \p err happened, for printing after
 *        mr_err_name(err): \p why (mr_client_last_error(), an mr_ack's
 *        error) without the "MR_...: " of \p err it may start with
 *        (mailroomd's sentences do), or mr_strerror(err) when \p why is
 *        NULL or empty. So that "MR_ENOENT: MR_ENOENT: no such session"
 *        is printed "MR_ENOENT: no such session".
 * @returns a pointer into \p why, or a static string (borrowed).
 */
MR_API const char *mr_err_sentence(int err, const char *why);

#ifdef __cplusplus
}
#endif
#endif
