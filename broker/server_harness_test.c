/*
 * What the server's tests share (broker/server_harness_test.h): a server on
 * the embedded cluster over ipc:// in a private directory, clients, and
 * raw frames on req0 sockets.
 */
#include "broker/server_harness_test.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/protocol/reqrep0/req.h>

#include "proto/frame.h"

void
t_set(struct mri_config *c, const char *name, const char *value, bool reload)
{
	char errstr[256];

	ck_assert_msg(mri_config_set(c, name, value, reload, errstr,
				     sizeof(errstr)) == MR_OK,
		      "%s=%s: %s", name, value, errstr);
}

void
t_srv_start(struct t_srv *t)
{
	char errstr[256], max_frame[32];

	snprintf(t->dir, sizeof(t->dir), "/tmp/mr-server-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->url, sizeof(t->url), "ipc://%s/s.sock", t->dir);
	ck_assert_msg(mri_embedded_start(&t->emb, 1, errstr, sizeof(errstr)) ==
			  MR_OK,
		      "%s", errstr);
	ck_assert_int_eq(mri_config_init(&t->cfg), MR_OK);
	snprintf(max_frame, sizeof(max_frame), "%d", T_MAX_FRAME);
	t_set(&t->cfg, "listen", t->url, false);
	t_set(&t->cfg, "max_frame_bytes", max_frame, false);
	t_set(&t->cfg, "max_inflight", "64", false);
	t_set(&t->cfg, "consumer.ack_deadline_ms", "60000", false);
	ck_assert_msg(mri_server_new(&t->s, &t->cfg,
				     mri_embedded_bootstraps(t->emb), t->emb,
				     errstr, sizeof(errstr)) == MR_OK,
		      "%s", errstr);
	ck_assert_msg(mri_server_start(t->s, errstr, sizeof(errstr)) == MR_OK,
		      "%s", errstr);
}

void
t_srv_stop(struct t_srv *t, bool drained)
{
	char path[160];

	if (!drained)
		mri_server_drain(t->s, 10000);
	mri_server_free(t->s);
	mri_embedded_stop(t->emb);
	mri_config_fini(&t->cfg);
	snprintf(path, sizeof(path), "%s/s.sock", t->dir);
	unlink(path);
	rmdir(t->dir);
}

/* A deterministic generator (xorshift64*). */
uint64_t
t_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

mr_client *
t_client(const char *url, int max_inflight)
{
	mr_client_opts o = {.timeout_ms = 120000, .max_inflight = max_inflight};
	mr_client     *c;
	char           errstr[256];

	ck_assert_msg(mr_client_new(&c, url, &o, errstr, sizeof(errstr)) ==
			  MR_OK,
		      "%s", errstr);
	return c;
}

/* STATUS's inflight_requests, which counts the STATUS itself. */
long
t_inflight(mr_client *c)
{
	char        *text;
	json_t      *st;
	json_error_t je;
	long         n;

	ck_assert_int_eq(mr_status(c, &text), MR_OK);
	st = json_loads(text, 0, &je);
	ck_assert_msg(st != NULL, "%s", text);
	ck_assert_msg(json_is_integer(json_object_get(st, "inflight_requests")),
		      "%s", text);
	n = (long)json_integer_value(json_object_get(st, "inflight_requests"));
	json_decref(st);
	free(text);
	return n;
}

/* Poll STATUS until nothing but itself is in flight, bounded by tries. */
void
t_wait_idle(const char *url)
{
	mr_client      *c = t_client(url, 1);
	long            n = -1;
	struct timespec pace = {0, 5 * 1000 * 1000};

	for (int i = 0; i < 4000 && (n = t_inflight(c)) != 1; i++)
		nanosleep(&pace, NULL); // pacing only: the count bounds it
	ck_assert_msg(n == 1, "%ld requests still in flight", n - 1);
	mr_client_free(c);
}

nng_socket
t_raw_open(const char *url)
{
	nng_socket s;

	ck_assert_int_eq(nng_req0_open(&s), 0);
	ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, T_GUARD_MS),
			 0);
	ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, T_GUARD_MS),
			 0);
	ck_assert_int_eq(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0), 0);
	ck_assert_int_eq(nng_dial(s, url, NULL, 0), 0);
	return s;
}

void
t_hdr(uint8_t *p, uint8_t version, uint8_t op, uint16_t flags,
      uint16_t reserved, uint32_t body_len)
{
	p[0] = MRI_FRAME_MAGIC0;
	p[1] = MRI_FRAME_MAGIC1;
	p[2] = version;
	p[3] = op;
	p[4] = (uint8_t)flags;
	p[5] = (uint8_t)(flags >> 8);
	p[6] = (uint8_t)reserved;
	p[7] = (uint8_t)(reserved >> 8);
	for (int i = 0; i < 4; i++)
		p[8 + i] = (uint8_t)(body_len >> (8 * i));
}

/* A valid PUBLISH of \p n keyed messages to \p topic, into \p b. */
void
t_publish_frame(struct mri_wbuf *b, const char *topic, int n, uint64_t tag)
{
	mri_wbuf_init(b);
	mri_frame_begin(b, MRI_OP_PUBLISH);
	mri_wbuf_u32(b, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		char key[32], payload[48];

		snprintf(key, sizeof(key), "raw-%d", (int)(tag % 7));
		snprintf(payload, sizeof(payload), "raw %llu/%d",
			 (unsigned long long)tag, i);
		mri_publish_encode_msg(b, topic, strlen(topic), key,
				       strlen(key), true, NULL, 0, 0, NULL,
				       payload, strlen(payload));
	}
	ck_assert_int_eq(mri_frame_end(b), MR_OK);
	ck_assert_int_eq(b->err, MR_OK);
}

/* Send one frame on a raw socket and read the reply's op and, for an
 * ERROR, its code. @returns the nng error of the exchange (0: a reply). */
int
t_raw_call(nng_socket s, const void *frame, size_t len, uint8_t *op,
	   uint16_t *code)
{
	void                *buf;
	size_t               n;
	int                  rv;
	struct mri_frame_hdr h;
	const char          *why, *msg;
	uint16_t             mlen;

	if ((rv = nng_send(s, (void *)frame, len, 0)) != 0)
		return rv;
	if ((rv = nng_recv(s, &buf, &n, NNG_FLAG_ALLOC)) != 0)
		return rv;
	ck_assert_int_eq(mri_frame_parse_hdr(buf, n, &h, &why), MR_OK);
	*op   = h.op;
	*code = 0;
	if (h.op == MRI_OP_ERROR)
		ck_assert_int_eq(mri_error_decode((uint8_t *)buf +
						      MRI_FRAME_HDR_LEN,
						  h.body_len, code, &msg,
						  &mlen),
				 MR_OK);
	nng_free(buf, n);
	return 0;
}
