#define _GNU_SOURCE /* memmem */

#include "checked.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/protocol/reqrep0/req.h>

bool mrt_real;
char mrt_bootstrap[256];

int
mrt_main(const char *name, Suite *(*suite)(void))
{
	char     reason[1024];
	int      rc, failed;
	SRunner *sr;

	rc = mrt_kafka_bootstrap(mrt_bootstrap, sizeof(mrt_bootstrap), reason,
				 sizeof(reason));
	if (rc == 77) {
		printf("SKIP: %s\n", reason);
		return 77;
	}
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", name, reason);
		return 1;
	}
	mrt_real = rc == 1;
	// A test that dies must not take the runner with it through SIGPIPE.
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

void
mrt_uniq(char *buf, size_t len, const char *what)
{
	static int seq;

	snprintf(buf, len, "it-%s-%d-%ld-%d", what, (int)getpid(),
		 (long)time(NULL) % 100000, seq++);
}

void
mrt_ck_daemon_start(struct mrt_daemon *d, const char *const *sets)
{
	char err[4096];

	ck_assert_msg(mrt_daemon_start(d, mrt_real ? mrt_bootstrap : NULL,
				       sets, err, sizeof(err)) == 0,
		      "cannot start mailroomd: %s", err);
	ck_assert_msg(d->embedded == !mrt_real,
		      "status .kafka.embedded is %d, expected %d", d->embedded,
		      !mrt_real);
}

void
mrt_ck_daemon_restart(struct mrt_daemon *d, const char *const *sets)
{
	char err[4096];

	ck_assert_msg(mrt_daemon_restart(d, mrt_real ? mrt_bootstrap : NULL,
					 sets, err, sizeof(err)) == 0,
		      "cannot start mailroomd again: %s", err);
}

void
mrt_ck_daemon_finish(struct mrt_daemon *d)
{
	int rc = mrt_daemon_stop(d, 30000);

	ck_assert_msg(rc == 0, "mailroomd exited with %d on SIGTERM; log:\n%s",
		      rc, mrt_daemon_log_tail(d));
	mrt_daemon_cleanup(d);
}

mr_client *
mrt_ck_client(const struct mrt_daemon *d, int timeout_ms, int max_inflight)
{
	mr_client_opts opts = {.timeout_ms   = timeout_ms,
			       .max_inflight = max_inflight};
	mr_client     *c = NULL;
	char           err[256];
	int            rc;

	rc = mr_client_new(&c, d->url, &opts, err, sizeof(err));
	ck_assert_msg(rc == MR_OK, "mr_client_new(%s): %s: %s", d->url,
		      mr_err_name(rc), err);
	return c;
}

json_t *
mrt_ck_admin(mr_client *c, const char *request)
{
	char        *text = NULL;
	json_t      *rep;
	json_error_t jerr;
	int          rc = mr_admin(c, request, &text);

	ck_assert_msg(rc == MR_OK, "admin %s: %s: %s", request,
		      mr_err_name(rc), mr_client_last_error());
	rep = json_loads(text, 0, &jerr);
	ck_assert_msg(rep != NULL, "admin reply is not JSON: %s", text);
	free(text);
	return rep;
}

void
mrt_ck_admin_ok(mr_client *c, const char *request)
{
	json_t *rep = mrt_ck_admin(c, request);
	char   *s   = json_dumps(rep, JSON_COMPACT);

	ck_assert_msg(json_is_true(json_object_get(rep, "ok")),
		      "admin %s failed: %s", request, s);
	free(s);
	json_decref(rep);
}

void
mrt_ck_topic_create(mr_client *c, const char *topic, int partitions)
{
	char req[512];

	snprintf(req, sizeof(req),
		 "{\"op\":\"topics.create\",\"topic\":\"%s\",\"partitions\":%d}",
		 topic, partitions);
	mrt_ck_admin_ok(c, req);
}

void
mrt_raw_open(struct mrt_raw *r, const char *url)
{
	int rv;

	ck_assert_int_eq(nng_req0_open(&r->sock), 0);
	nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME,
			  NNG_DURATION_INFINITE);
	nng_socket_set_ms(r->sock, NNG_OPT_RECVTIMEO, 15000);
	nng_socket_set_ms(r->sock, NNG_OPT_SENDTIMEO, 15000);
	nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, 0);
	rv = nng_dial(r->sock, url, NULL, 0);
	ck_assert_msg(rv == 0, "dial %s: %s", url, nng_strerror(rv));
}

uint8_t *
mrt_raw_call(struct mrt_raw *r, const void *frame, size_t len, size_t *rlen,
	     int *rv)
{
	void *buf = NULL;

	if ((*rv = nng_send(r->sock, (void *)frame, len, 0)) != 0)
		return NULL;
	if ((*rv = nng_recv(r->sock, &buf, rlen, NNG_FLAG_ALLOC)) != 0)
		return NULL;
	return buf;
}

void
mrt_raw_expect_error(struct mrt_raw *r, const char *what, const void *frame,
		     size_t len, int code, const char *substr)
{
	struct mri_frame_hdr h;
	const char          *why, *msg;
	uint16_t             got, mlen;
	size_t               rlen;
	uint8_t             *rep;
	int                  rv;

	rep = mrt_raw_call(r, frame, len, &rlen, &rv);
	ck_assert_msg(rep != NULL, "%s: no reply: %s", what, nng_strerror(rv));
	ck_assert_msg(mri_frame_parse_hdr(rep, rlen, &h, &why) == MR_OK,
		      "%s: the reply is not a frame: %s", what, why);
	ck_assert_msg(h.op == MRI_OP_ERROR, "%s: reply op 0x%02x, not ERROR",
		      what, h.op);
	ck_assert_msg(mri_error_decode(rep + MRI_FRAME_HDR_LEN, h.body_len, &got,
				       &msg, &mlen) == MR_OK,
		      "%s: malformed ERROR body", what);
	ck_assert_msg(got == code, "%s: %s (%d), expected %s: %.*s", what,
		      mr_err_name(got), got, mr_err_name(code), (int)mlen, msg);
	ck_assert_msg(mlen > 0, "%s: the ERROR has no sentence", what);
	if (substr != NULL)
		ck_assert_msg(memmem(msg, mlen, substr, strlen(substr)) != NULL,
			      "%s: '%.*s' does not mention '%s'", what,
			      (int)mlen, msg, substr);
	fprintf(stderr, "%s: %.*s\n", what, (int)mlen, msg);
	nng_free(rep, rlen);
}

void
mrt_frame_fix_len(struct mri_wbuf *b)
{
	uint32_t body = (uint32_t)(b->len - MRI_FRAME_HDR_LEN);

	b->data[8]  = (uint8_t)body;
	b->data[9]  = (uint8_t)(body >> 8);
	b->data[10] = (uint8_t)(body >> 16);
	b->data[11] = (uint8_t)(body >> 24);
}
