/*
 * The client comes back after its mailroomd dies with replies on their
 * way, whatever nng 1.5.2 does with the lost connection.
 *
 * A stand-in for mailroomd (this binary again, `serve URL big|small`: an
 * nng rep0 socket answering every request with a STATUS reply) answers
 * with replies of 1 MiB, which the client reads in many parts, and exits
 * in the middle of a stream of requests from eight threads. Then a second
 * stand-in answers at the same address. Each round, every thread must get
 * an answer from the second one. In nng 1.5.2 a connection closed between
 * two parts of a read is never taken apart, and its dialer never dials
 * again (docs/ARCHITECTURE.md, "A client dials anew"): without the
 * client's watch, a round where that happens never gets an answer.
 *
 * The second case makes nng 1.5.2's dialer give up for good: the first
 * SP header the client sends after its stand-in died fails with EPIPE
 * (this binary's sendmsg, in front of the C library's, does it once),
 * which nng takes for NNG_ECLOSED, after which the dialer never dials
 * again. What happens when a dying mailroomd drops a connection it had
 * just taken into its listen queue. The client must come back all the
 * same, within its timeout.
 *
 * The third: a dialer left behind that connects again is refused, so
 * that requests go out on one connection only.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "client/client_internal.h"
#include "mailroom/client.h"
#include "mailroom/error.h"
#include "proto/frame.h"

#define T_THREADS 8
#define T_ROUNDS 6
#define T_BIG (1 << 20)
#define T_BIG_REPLIES 40

extern char **environ;

static char t_self[4096];

/* ---- a send that fails once --------------------------------------------- */

static atomic_int t_fail_header; /* fail the next REQ SP header sent */
static atomic_int t_failed;      /* headers failed */

/* nng's sendmsg: the next SP header of a REQ socket (00 'S' 'P' 00 00 30
 * 00 00) fails with EPIPE when t_fail_header is set; all else goes on to
 * the C library's (or a sanitizer's) sendmsg. */
typedef ssize_t t_sendmsg_fn(int, const struct msghdr *, int);

/* The C library's (or a sanitizer's) sendmsg: found in main, before any
 * thread sends (found lazily, two of nng's threads raced on it). */
static t_sendmsg_fn *_Atomic t_next_sendmsg;

__attribute__((visibility("default"))) ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static const unsigned char req_head[8] = {0, 'S', 'P', 0,
						  0, 0x30, 0, 0};
	t_sendmsg_fn *next = atomic_load(&t_next_sendmsg);
	int           one  = 1;

	if (msg->msg_iovlen == 1 && msg->msg_iov[0].iov_len == 8 &&
	    memcmp(msg->msg_iov[0].iov_base, req_head, 8) == 0 &&
	    atomic_compare_exchange_strong(&t_fail_header, &one, 0)) {
		atomic_fetch_add(&t_failed, 1);
		errno = EPIPE;
		return -1;
	}
	if (next == NULL) {
		*(void **)&next = dlsym(RTLD_NEXT, "sendmsg");
		atomic_store(&t_next_sendmsg, next);
	}
	return next(fd, msg, flags);
}

/* ---- the stand-in --------------------------------------------------- */

static int
t_serve(const char *url, bool big)
{
	nng_socket      s;
	struct mri_wbuf b;
	char           *json;
	size_t          len = big ? T_BIG : 64;
	int             n   = 0;

	if ((json = malloc(len + 64)) == NULL)
		return 2;
	memset(json, ' ', len + 64);
	memcpy(json, "{\"stand_in\": true}", 18);
	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_STATUS_REPLY);
	mri_wbuf_put(&b, json, len);
	if (mri_frame_end(&b) != MR_OK || nng_rep0_open(&s) != 0 ||
	    nng_listen(s, url, NULL, 0) != 0)
		return 2;
	for (;;) {
		nng_msg *m;

		if (nng_recvmsg(s, &m, 0) != 0)
			return 2;
		nng_msg_clear(m);
		nng_msg_append(m, b.data, b.len);
		if (nng_sendmsg(s, m, 0) != 0)
			nng_msg_free(m);
		// Gone at once, with the last replies half read and the
		// next requests on their way.
		if (big && ++n == T_BIG_REPLIES)
			_exit(0);
	}
}

/* @returns whether \p pid exited within \p ms (reaped), else kills it:
 * a big stand-in exits once it has answered its requests, which a client
 * that never came back to it would leave waiting forever. */
static bool
t_exited(pid_t pid, int ms)
{
	int st;

	for (int k = 0; k < ms / 100; k++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return true;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return false;
}

static pid_t
t_spawn(const char *url, const char *mode)
{
	char *argv[] = {t_self, "serve", (char *)url, (char *)mode, NULL};
	pid_t pid;

	ck_assert_int_eq(posix_spawn(&pid, t_self, NULL, NULL, argv, environ),
			 0);
	return pid;
}

/* ---- the clients ------------------------------------------------------ */

struct t_load {
	mr_client  *c;
	atomic_int  stop;
	atomic_uint answered[T_THREADS]; /* answers from the small stand-in */
	atomic_int  small;               /* the small stand-in is up */
};

struct t_arg {
	struct t_load *l;
	int            i;
};

static void *
reconnect_test__requests(void *arg)
{
	struct t_arg  *a = arg;
	struct t_load *l = a->l;

	while (!atomic_load(&l->stop)) {
		char *json = NULL;
		int   small = atomic_load(&l->small);

		if (mr_status(l->c, &json) == MR_OK && small &&
		    strlen(json) < 1024)
			atomic_fetch_add(&l->answered[a->i], 1);
		free(json);
	}
	return NULL;
}

START_TEST(test_back_after_a_death_mid_reply)
{
	char           dir[] = "/tmp/mailroom-reconnect-XXXXXX";
	char           url[256];
	mr_client_opts o = {.timeout_ms = 20000, .max_inflight = 16};
	char           err[256];
	struct t_load  l = {0};
	struct t_arg   args[T_THREADS];
	pthread_t      th[T_THREADS];
	pid_t          big, small = -1;
	int            st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, sizeof(url), "ipc://%s/s.sock", dir);
	// The client's story on stderr, which ctest shows on a failure.
	setenv("MAILROOM_CLIENT_TRACE", "1", 1);
	big = t_spawn(url, "big");
	usleep(200000);
	ck_assert_int_eq(mr_client_new(&l.c, url, &o, err, sizeof(err)),
			 MR_OK);
	for (int i = 0; i < T_THREADS; i++) {
		args[i] = (struct t_arg){&l, i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, reconnect_test__requests, &args[i]),
				 0);
	}
	for (int round = 0; round < T_ROUNDS; round++) {
		unsigned before[T_THREADS];
		bool     all = false;

		ck_assert_msg(t_exited(big, 60000),
			      "round %d: the big stand-in got fewer than %d "
			      "requests in 60 s: the client did not come back "
			      "to it (MAILROOM_CLIENT_TRACE is on: its story is "
			      "above)",
			      round, T_BIG_REPLIES);
		if (small > 0) {
			kill(small, SIGKILL);
			waitpid(small, &st, 0);
		}
		atomic_store(&l.small, 1);
		for (int i = 0; i < T_THREADS; i++)
			before[i] = atomic_load(&l.answered[i]);
		small = t_spawn(url, "small");
		// A healthy reconnection takes a second or two; a watch that
		// dials anew, about six. Three hundred looks at a tenth of a
		// second each leave room for a slow machine.
		for (int k = 0; k < 300 && !all; k++) {
			usleep(100000);
			all = true;
			for (int i = 0; i < T_THREADS; i++)
				if (atomic_load(&l.answered[i]) == before[i])
					all = false;
		}
		ck_assert_msg(all,
			      "round %d: a thread got no answer from the "
			      "second stand-in: the client did not come back",
			      round);
		// Next round: a big stand-in again, dying mid-reply.
		atomic_store(&l.small, 0);
		kill(small, SIGKILL);
		waitpid(small, &st, 0);
		small = -1;
		big   = t_spawn(url, "big");
	}
	ck_assert_msg(t_exited(big, 60000),
		      "the last big stand-in got fewer than %d requests in "
		      "60 s: the client did not come back to it",
		      T_BIG_REPLIES);
	small = t_spawn(url, "small");
	atomic_store(&l.stop, 1);
	for (int i = 0; i < T_THREADS; i++)
		pthread_join(th[i], NULL);
	mr_client_free(l.c); // returns, wedged or not
	kill(small, SIGKILL);
	waitpid(small, &st, 0);
	snprintf(url, sizeof(url), "%s/s.sock", dir);
	unlink(url);
	rmdir(dir);
}
END_TEST

START_TEST(test_back_after_a_dial_closed)
{
	char           dir[] = "/tmp/mailroom-reconnect-XXXXXX";
	char           url[256];
	mr_client_opts o = {.timeout_ms = 30000};
	char           err[256];
	char          *json = NULL;
	mr_client     *c;
	pid_t          pid;
	int            st, rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, sizeof(url), "ipc://%s/s.sock", dir);
	pid = t_spawn(url, "small");
	usleep(200000);
	ck_assert_int_eq(mr_client_new(&c, url, &o, err, sizeof(err)), MR_OK);
	ck_assert_int_eq(mr_status(c, &json), MR_OK);
	free(json);
	json = NULL;
	// The stand-in dies; the dial that finds the next one fails its
	// header with EPIPE, and nng's dialer stops dialing. That one is
	// replaced too: the connection the client then closes can stop its
	// listener (nng issue #1518, as mailroomd's listeners.c says).
	atomic_store(&t_fail_header, 1);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	pid = t_spawn(url, "small");
	for (int k = 0; k < 300 && atomic_load(&t_failed) == 0; k++)
		usleep(100000);
	ck_assert_int_eq(atomic_load(&t_failed), 1);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	pid = t_spawn(url, "small");
	rc  = mr_status(c, &json);
	ck_assert_msg(rc == MR_OK, "no answer after the dial that failed: "
		      "%s: %s", mr_err_name(rc), mr_client_last_error());
	free(json);
	mr_client_free(c);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	snprintf(url, sizeof(url), "%s/s.sock", dir);
	unlink(url);
	rmdir(dir);
}
END_TEST

/* ---- one connection at a time ------------------------------------------ */

/* A stand-in in this process: answers each request, noting the pipe it
 * came on, and counts the connections made to it. */
struct t_one {
	nng_socket  s;
	pthread_t   th;
	atomic_int  added;
	atomic_uint last_pipe;
	atomic_int  pipes_seen; /* distinct pipes since the count was reset */
	atomic_int  answered;
};

static void
t_one_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct t_one *o = arg;

	(void)p;
	(void)ev;
	atomic_fetch_add(&o->added, 1);
}

static void *
t_one_serve(void *arg)
{
	struct t_one   *o = arg;
	struct mri_wbuf b;
	nng_msg        *m;

	mri_wbuf_init(&b);
	mri_frame_begin(&b, MRI_OP_STATUS_REPLY);
	mri_wbuf_put(&b, "{\"stand_in\": true}", 18);
	if (mri_frame_end(&b) != MR_OK)
		return NULL;
	while (nng_recvmsg(o->s, &m, 0) == 0) {
		unsigned p = (unsigned)nng_pipe_id(nng_msg_get_pipe(m));

		if (atomic_exchange(&o->last_pipe, p) != p)
			atomic_fetch_add(&o->pipes_seen, 1);
		nng_msg_clear(m);
		nng_msg_append(m, b.data, b.len);
		if (nng_sendmsg(o->s, m, 0) != 0)
			nng_msg_free(m);
		atomic_fetch_add(&o->answered, 1);
	}
	mri_wbuf_fini(&b);
	return NULL;
}

/*
 * A dialer left behind that dials again after all (nng 1.5.2 takes its
 * lost connection apart late) must not give the client a second
 * connection: nng's REQ socket would send requests on both in turn, and a
 * consumer's session, which is its connection's, was told MR_ENOENT on
 * every other request (crash_embedded, CI, 2026-12-07). A second dialer on
 * the client's socket stands in for it: its connection is refused, and
 * every request goes on the first.
 */
START_TEST(test_one_connection)
{
	char           dir[] = "/tmp/mailroom-reconnect-XXXXXX";
	char           url[256];
	mr_client_opts o = {.timeout_ms = 20000};
	char           err[256];
	struct t_one   one = {0};
	mr_client     *c;
	int            added;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, sizeof(url), "ipc://%s/s.sock", dir);
	ck_assert_int_eq(nng_rep0_open(&one.s), 0);
	nng_pipe_notify(one.s, NNG_PIPE_EV_ADD_POST, t_one_added, &one);
	ck_assert_int_eq(nng_listen(one.s, url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&one.th, NULL, t_one_serve, &one), 0);
	ck_assert_int_eq(mr_client_new(&c, url, &o, err, sizeof(err)), MR_OK);
	for (int k = 0; k < 4; k++) {
		char *json = NULL;

		ck_assert_int_eq(mr_status(c, &json), MR_OK);
		free(json);
	}
	added = atomic_load(&one.added);
	ck_assert_int_eq(added, 1);
	ck_assert_int_eq(nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK), 0);
	for (int k = 0; k < 100 && atomic_load(&one.added) == added; k++)
		usleep(50000);
	ck_assert_msg(atomic_load(&one.added) > added,
		      "the second dialer did not connect within 5 s");
	atomic_store(&one.pipes_seen, 1);
	for (int k = 0; k < 40; k++) {
		char *json = NULL;
		int   rc   = mr_status(c, &json);

		ck_assert_msg(rc == MR_OK, "request %d: %s: %s", k,
			      mr_err_name(rc), mr_client_last_error());
		free(json);
	}
	ck_assert_msg(atomic_load(&one.pipes_seen) == 1,
		      "40 requests went out on %d connections in turn",
		      atomic_load(&one.pipes_seen));
	ck_assert_uint_ge(atomic_load(&c->refused_pipes), 1);
	mr_client_free(c);
	nng_close(one.s);
	pthread_join(one.th, NULL);
	snprintf(url, sizeof(url), "%s/s.sock", dir);
	unlink(url);
	rmdir(dir);
}
END_TEST

int
main(int argc, char **argv)
{
	Suite   *s  = suite_create("reconnect");
	TCase   *tc = tcase_create("reconnect");
	SRunner *r;
	ssize_t  n;
	int      failed;

	{
		t_sendmsg_fn *next;

		*(void **)&next = dlsym(RTLD_NEXT, "sendmsg");
		atomic_store(&t_next_sendmsg, next);
	}
	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		return t_serve(argv[2], strcmp(argv[3], "big") == 0);
	if ((n = readlink("/proc/self/exe", t_self, sizeof(t_self) - 1)) < 0)
		return 2;
	t_self[n] = '\0';
	tcase_add_test(tc, test_back_after_a_death_mid_reply);
	tcase_add_test(tc, test_back_after_a_dial_closed);
	tcase_add_test(tc, test_one_connection);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
