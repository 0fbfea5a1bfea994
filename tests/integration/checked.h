/*
 * The integration tests' helpers that assert with Check (harness.h has
 * those that return errors): mailroomd started and stopped cleanly, a
 * client, admin calls, topics, raw frames over nng, and the main() that
 * picks the embedded cluster or the CTest fixture's real Kafka.
 *
 * Thread safety: not thread-safe; call from the test's own thread.
 */
#ifndef MRT_CHECKED_H
#define MRT_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <jansson.h>
#include <nng/nng.h>

#include "integration/harness.h"
#include "mailroom/mailroom.h"
#include "proto/frame.h"

extern bool mrt_real;           /* real Kafka from the fixture */
extern char mrt_bootstrap[256]; /* its bootstrap */

/**
 * @brief The test program's main: finds the fixture's Kafka (MR_KAFKA=1)
 *        or uses the embedded cluster, then runs \p suite.
 * @returns 0 if every test passed, 77 (skip) when the fixture says Kafka is
 *          unavailable, 1 otherwise.
 */
int mrt_main(const char *name, Suite *(*suite)(void));

/** @brief A name no other run uses: it-WHAT-PID-TIME-SEQ. */
void mrt_uniq(char *buf, size_t len, const char *what);

/** @brief Start mailroomd on the test's cluster with \p sets (or NULL). */
void mrt_ck_daemon_start(struct mrt_daemon *d, const char *const *sets);

/** @brief Start again on the same URL after a stop or a kill
 *         (mrt_daemon_restart). */
void mrt_ck_daemon_restart(struct mrt_daemon *d, const char *const *sets);

/** @brief Stop with SIGTERM: a clean exit is part of every test. */
void mrt_ck_daemon_finish(struct mrt_daemon *d);

/** @returns a client of \p d (0: the client's default for either). */
mr_client *mrt_ck_client(const struct mrt_daemon *d, int timeout_ms,
			 int max_inflight);

/** @returns the reply to an ADMIN request that went through (new). */
json_t *mrt_ck_admin(mr_client *c, const char *request);

/** @brief An ADMIN request that must answer {"ok": true}. */
void mrt_ck_admin_ok(mr_client *c, const char *request);

void mrt_ck_topic_create(mr_client *c, const char *topic, int partitions);

/* Raw frames over a req0 socket of its own, for malformed input. */
struct mrt_raw {
	nng_socket sock;
};

void mrt_raw_open(struct mrt_raw *r, const char *url);

/**
 * @returns the reply to \p len raw bytes (new: nng_free it), or NULL with
 *          *rv the nng error.
 */
uint8_t *mrt_raw_call(struct mrt_raw *r, const void *frame, size_t len,
		      size_t *rlen, int *rv);

/**
 * @brief Send a frame that must be answered with an ERROR of \p code whose
 *        sentence mentions \p substr (NULL: any sentence); the sentence is
 *        printed.
 */
void mrt_raw_expect_error(struct mrt_raw *r, const char *what,
			  const void *frame, size_t len, int code,
			  const char *substr);

/** @brief Set the frame's body length after bytes were cut or added. */
void mrt_frame_fix_len(struct mri_wbuf *b);

#endif
