/*
 * Frames nng refuses to read, and connections that close during nng's
 * handshake, in reconnect storms, while another client keeps publishing on
 * the embedded cluster.
 *
 * mailroomd listens with RECVMAXSZ = max(2 x max_frame_bytes, 64 MiB):
 * nng reads a frame's length first and drops a connection whose frame is
 * longer, before reading its body. With nng 1.5.2 a burst of such drops
 * once left the socket serving nobody; the cause is nng's issue #1518 (a
 * connection that closes while nng sends its handshake fails the
 * listener's accept with NNG_ECLOSED, and the listener never accepts
 * again): clients dropped for a big frame reconnect and close, and some
 * close during the handshake. mailroomd's listener watchdog
 * (broker/server.c) starts such a listener again.
 *
 * Each case: several storm clients, each for a bounded number of rounds
 * (connect, send, close); a publisher publishing all along, each publish
 * acked within its own timeout; afterwards a new client still gets a
 * STATUS and a publish acked. Progress is checked by count, not by time.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "integration/harness.h"
#include "mailroom/mailroom.h"
#include "proto/frame.h"

#define TOPIC "bigframe"
#define STORM_CLIENTS 4
// A frame longer than mailroomd's RECVMAXSZ floor of 64 MiB.
#define BIG_FRAME ((64u << 20) + 4096)
#define PUBLISH_TIMEOUT_MS 20000

extern char **environ;

static struct mrt_daemon d;

static void
setup(void)
{
	static const char *const sets[] = {"max_frame_bytes=65536", NULL};
	char                     err[512];
	json_t                  *rep;

	memset(&d, 0, sizeof(d));
	ck_assert_msg(mrt_daemon_start(&d, NULL, sets, err, sizeof(err)) == 0,
		      "%s", err);
	rep = mrt_daemon_admin(
	    &d, "{\"op\":\"topics.create\",\"topic\":\"" TOPIC "\","
		"\"partitions\":2}");
	ck_assert_msg(rep != NULL &&
			  json_is_true(json_object_get(rep, "ok")),
		      "topics.create failed");
	json_decref(rep);
}

static void
teardown(void)
{
	mrt_daemon_cleanup(&d);
}

/* ---- the publisher ------------------------------------------------------ */

struct publisher {
	pthread_t   t;
	atomic_bool stop;
	atomic_int  acked;
	atomic_int  failed;
	char        why[512];
};

static void *
publisher_run(void *arg)
{
	struct publisher *p = arg;
	mr_client_opts    o = {.timeout_ms = PUBLISH_TIMEOUT_MS};
	mr_client        *c;
	char              err[256];
	int               rc;

	if ((rc = mr_client_new(&c, d.url, &o, err, sizeof(err))) != MR_OK) {
		snprintf(p->why, sizeof(p->why), "client: %s", err);
		atomic_fetch_add(&p->failed, 1);
		return NULL;
	}
	while (!atomic_load(&p->stop)) {
		mr_message m = {.topic = TOPIC, .payload = "tick",
				.payload_len = 4};
		mr_ack     ack;

		if ((rc = mr_publish(c, &m, &ack)) == MR_OK) {
			atomic_fetch_add(&p->acked, 1);
			continue;
		}
		snprintf(p->why, sizeof(p->why), "publish %d: %s: %s",
			 atomic_load(&p->acked), mr_err_name(rc), ack.error);
		atomic_fetch_add(&p->failed, 1);
		break;
	}
	mr_client_free(c);
	return NULL;
}

/* ---- the storms ----------------------------------------------------------- */

/* In a child process (this binary again, "--big-frame URL"): connect
 * with a req0 socket, send one frame over RECVMAXSZ (a PUBLISH header and
 * zeros), and let req0 redial and resend for a moment after nng drops the
 * connection; then exit without closing, as a killed client would. A
 * process of its own: nng 1.5.2 can hang closing a socket whose pipe
 * was dropped mid-send, and must not take the publisher with it. */
static int
big_frame_child(const char *url)
{
	nng_socket s;
	nng_msg   *m;
	uint8_t   *b;
	char      *buf = NULL;
	size_t     n;

	if (nng_req0_open(&s) != 0)
		return 1;
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 50);
	nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 20);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 400);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 2000);
	if (nng_dial(s, url, NULL, 0) != 0 ||
	    nng_msg_alloc(&m, BIG_FRAME) != 0)
		_exit(1);
	b = nng_msg_body(m);
	memset(b, 0, MRI_FRAME_HDR_LEN);
	b[0] = MRI_FRAME_MAGIC0;
	b[1] = MRI_FRAME_MAGIC1;
	b[2] = MRI_PROTO_VERSION;
	b[3] = MRI_OP_PUBLISH;
	if (nng_sendmsg(s, m, 0) != 0)
		_exit(1);
	if (nng_recv(s, &buf, &n, NNG_FLAG_ALLOC) == 0)
		_exit(2); // mailroomd read a frame it must not read
	_exit(0);
}

static char self_exe[4096];

/* One storm client's round: a --big-frame child, bounded. */
static void
big_frame_round(void)
{
	char *const argv[] = {self_exe, "--big-frame", d.url, NULL};
	pid_t       pid;
	int         st;

	if (posix_spawn(&pid, self_exe, NULL, NULL, argv, environ) != 0)
		return;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* Connect bare stream sockets to mailroomd's ipc:// path and close them at
 * once, some likely before nng sent its handshake: nng issue #1518's
 * trigger. */
static void
handshake_close_round(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char        *path = d.url + strlen("ipc://");
	int                fds[16];

	if (strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if ((fds[i] = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0)
			(void)connect(fds[i], (struct sockaddr *)&sa,
				      sizeof(sa));
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	usleep(20000);
}

struct storm {
	pthread_t t;
	int       rounds;
	void (*round)(void);
};

static void *
storm_run(void *arg)
{
	struct storm *st = arg;

	for (int i = 0; i < st->rounds; i++)
		st->round();
	return NULL;
}

/* Run \p clients storm threads of \p rounds each while the publisher
 * publishes; then check the publisher and a new client. */
static void
storm_while_publishing(void (*round)(void), int clients, int rounds)
{
	struct publisher pub = {0};
	struct storm     st[STORM_CLIENTS * 4];
	int              before;
	json_t          *st_json;
	mr_client       *c = NULL;
	mr_ack           ack;
	char            *status = NULL;
	char             err[256] = "";
	int              rc;

	ck_assert_int_le(clients, (int)(sizeof(st) / sizeof(st[0])));
	ck_assert_int_eq(pthread_create(&pub.t, NULL, publisher_run, &pub), 0);
	for (int i = 0; i < clients; i++) {
		st[i].rounds = rounds;
		st[i].round  = round;
		ck_assert_int_eq(
		    pthread_create(&st[i].t, NULL, storm_run, &st[i]), 0);
	}
	for (int i = 0; i < clients; i++)
		pthread_join(st[i].t, NULL);
	// After the storm, the publisher still makes progress.
	before = atomic_load(&pub.acked);
	while (atomic_load(&pub.acked) < before + 20 &&
	       atomic_load(&pub.failed) == 0)
		usleep(10000);
	atomic_store(&pub.stop, true);
	pthread_join(pub.t, NULL);
	ck_assert_msg(atomic_load(&pub.failed) == 0,
		      "the publisher stalled during the storm: %s (after %d "
		      "acks)\n%s",
		      pub.why, atomic_load(&pub.acked),
		      mrt_daemon_log_tail(&d));

	// A new connection is served: STATUS, and a publish acked. A
	// connection made while the watchdog starts a wedged listener again
	// is closed with it, and one made in the instant the listener is
	// made again is refused (no socket file yet): a few fresh clients,
	// bounded.
	for (int attempt = 1;; attempt++) {
		mr_client_opts o = {.timeout_ms = 10000};

		rc = mr_client_new(&c, d.url, &o, err, sizeof(err));
		if (rc == MR_OK && (rc = mr_status(c, &status)) == MR_OK)
			break;
		if (c != NULL)
			mr_client_free(c);
		c = NULL;
		ck_assert_msg(attempt < 5,
			      "after the storm, %d new clients got no STATUS "
			      "(the last: %s %s)\n%s",
			      attempt, mr_err_name(rc), err,
			      mrt_daemon_log_tail(&d));
		usleep(200000);
	}
	st_json = json_loads(status, 0, NULL);
	ck_assert_ptr_nonnull(st_json);
	json_decref(st_json);
	free(status);
	{
		mr_message m = {.topic = TOPIC, .payload = "after",
				.payload_len = 5};

		rc = mr_publish(c, &m, &ack);
	}
	ck_assert_msg(rc == MR_OK, "after the storm, a publish: %s: %s",
		      mr_err_name(rc), ack.error);
	mr_client_free(c);
}

START_TEST(big_frames_in_a_reconnect_storm)
{
	storm_while_publishing(big_frame_round, STORM_CLIENTS, 10);
}
END_TEST

START_TEST(connections_closed_in_the_handshake)
{
	storm_while_publishing(handshake_close_round, STORM_CLIENTS, 50);
}
END_TEST

int
main(int argc, char **argv)
{
	Suite   *s;
	TCase   *tc;
	SRunner *r;
	ssize_t  len;
	int      failed;

	if (argc == 3 && strcmp(argv[1], "--big-frame") == 0)
		return big_frame_child(argv[2]);
	len = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (len <= 0)
		return 1;
	self_exe[len] = '\0';
	s  = suite_create("bigframe");
	tc = tcase_create("storm");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, big_frames_in_a_reconnect_storm);
	tcase_add_test(tc, connections_closed_in_the_handshake);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
