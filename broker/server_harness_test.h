/*
 * What the server's tests share (server_test.c, server_drain_test.c): a
 * server on the embedded cluster, spoken to over ipc:// in a private
 * directory; clients of the public library; raw frames on req0 sockets.
 * Every helper fails the running Check test when a step fails.
 */
#ifndef MRI_SERVER_HARNESS_TEST_H
#define MRI_SERVER_HARNESS_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "bridge/embedded.h"
#include "broker/config.h"
#include "broker/server.h"
#include "mailroom/client.h"
#include "proto/frame.h"

#define T_GUARD_MS 60000 /* a hang guard on one reply, not a measurement */
#define T_MAX_FRAME (1 << 20)

struct t_srv {
	char                 dir[64];
	char                 url[128];
	struct mri_embedded *emb;
	struct mri_server   *s;
	struct mri_config    cfg;
};

/** @brief Set \p name to \p value in \p c (as a reload if \p reload). */
void t_set(struct mri_config *c, const char *name, const char *value,
	   bool reload);

/** @brief Start a cluster of one broker and a server on it (64 requests
 *         in flight, frames up to T_MAX_FRAME) in a new directory. */
void t_srv_start(struct t_srv *t);

/** @brief Stop what t_srv_start started (draining first unless
 *         \p drained) and remove its directory. */
void t_srv_stop(struct t_srv *t, bool drained);

/** @returns the next of a deterministic sequence (xorshift64*). */
uint64_t t_rand(uint64_t *s);

/** @returns a client of \p url with \p max_inflight requests. */
mr_client *t_client(const char *url, int max_inflight);

/** @returns STATUS's inflight_requests, which counts the STATUS itself. */
long t_inflight(mr_client *c);

/** @brief Poll STATUS until nothing but itself is in flight, bounded by
 *         tries. */
void t_wait_idle(const char *url);

/** @returns a req0 socket dialled to \p url (T_GUARD_MS timeouts). */
nng_socket t_raw_open(const char *url);

/** @brief A frame header into \p p. */
void t_hdr(uint8_t *p, uint8_t version, uint8_t op, uint16_t flags,
	   uint16_t reserved, uint32_t body_len);

/** @brief A valid PUBLISH of \p n keyed messages to \p topic into \p b. */
void t_publish_frame(struct mri_wbuf *b, const char *topic, int n,
		     uint64_t tag);

/** @brief Send one frame on raw socket \p s and read the reply's op and,
 *         for an ERROR, its code. @returns the nng error (0: a reply). */
int t_raw_call(nng_socket s, const void *frame, size_t len, uint8_t *op,
	       uint16_t *code);

#endif
