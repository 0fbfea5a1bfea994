/*
 * The test kit (include/mailroom/testkit.h): a probe sees what an actor
 * under test emits (casts, timers on the virtual clock, a DOWN with the
 * crash's reason), its waits are exact on a deterministic system, it works
 * on a threaded one, and mr_explore finds the seed under which a racy
 * scenario breaks its invariant, and that seed replays it.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/supervisor.h"
#include "mailroom/testkit.h"

enum { PING = 1, PONG = 2, LATER = 3, CRASH = 4 };

/* Under test: answers PING with PONG (the same bytes) to the pid given at
 * spawn; LATER sends PONG after 100 ms; CRASH crashes. */
static int
pong_init(mr_actor *self, void *arg, void **state)
{
	(void)self;
	*state = arg;
	return MR_OK;
}

static int
pong_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	mr_pid     to  = (mr_pid)(uintptr_t)state;
	mr_system *sys = mr_actor_system(self);

	switch (msg->type) {
	case PING:
		return mr_cast(sys, to, PONG, msg->data, msg->len);
	case LATER:
		return mr_send_after(sys, to, 100, PONG, "late", 4) ? MR_OK
								 : MR_ENOMEM;
	case CRASH:
		return MR_EIO;
	default:
		return MR_OK;
	}
}

static const mr_behaviour pong_b = {
	.name        = "pong",
	.init        = pong_init,
	.handle_cast = pong_cast,
};

START_TEST(test_probe_deterministic)
{
	mr_system    *sys;
	mr_probe     *p;
	mr_probe_msg *m;
	mr_pid        pid;
	char          buf[8] = {0};
	size_t        len    = 0;

	ck_assert_int_eq(mr_system_new(&sys, 0, 7), MR_OK);
	ck_assert_int_eq(mr_probe_new(sys, &p), MR_OK);
	ck_assert_int_eq(mr_spawn(sys, &pong_b,
				  (void *)(uintptr_t)mr_probe_pid(p), NULL,
				  &pid),
			 MR_OK);
	mr_cast(sys, pid, PING, "abc", 3);
	ck_assert_int_eq(mr_probe_expect_cast(p, PONG, 1000, buf, sizeof(buf),
					      &len),
			 MR_OK);
	ck_assert_uint_eq(len, 3);
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(mr_probe_expect_nothing(p, 10), MR_OK);

	// A timer: not within 50 virtual ms, then at 100 exactly.
	mr_cast(sys, pid, LATER, NULL, 0);
	ck_assert_int_eq(mr_probe_next(p, 50, &m), MR_ETIMEDOUT);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(mr_probe_next(p, 1000, &m), MR_OK);
	ck_assert_int_eq(m->kind, MR_PROBE_INFO);
	ck_assert_int_eq(m->info, MR_INFO_TIMER);
	ck_assert_uint_eq(m->type, PONG);
	ck_assert_uint_eq(m->at, 110); // sent at 10 (after the wait above)
	ck_assert_uint_eq(m->len, 4);
	free(m);

	// Signals: a monitored actor's crash is a DOWN with its reason.
	ck_assert_int_eq(mr_probe_monitor(p, pid), MR_OK);
	mr_cast(sys, pid, CRASH, NULL, 0);
	ck_assert_int_eq(mr_probe_next(p, 1000, &m), MR_OK);
	ck_assert_int_eq(m->kind, MR_PROBE_INFO);
	ck_assert_int_eq(m->info, MR_INFO_DOWN);
	ck_assert_uint_eq(m->pid, pid);
	ck_assert_int_eq(m->reason, MR_EIO);
	free(m);

	// Something else than expected is told apart.
	mr_cast(sys, mr_probe_pid(p), 99, NULL, 0);
	ck_assert_int_eq(mr_probe_expect_cast(p, PONG, 100, NULL, 0, NULL),
			 MR_EPROTO);
	mr_probe_free(p);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_probe_threaded)
{
	mr_system    *sys;
	mr_probe     *p;
	mr_probe_msg *m;
	mr_pid        pid;

	ck_assert_int_eq(mr_system_new(&sys, 2, 0), MR_OK);
	ck_assert_int_eq(mr_probe_new(sys, &p), MR_OK);
	ck_assert_int_eq(mr_spawn(sys, &pong_b,
				  (void *)(uintptr_t)mr_probe_pid(p), NULL,
				  &pid),
			 MR_OK);
	for (int i = 0; i < 100; i++)
		mr_cast(sys, pid, PING, &i, sizeof(i));
	for (int i = 0; i < 100; i++) {
		int v = -1;

		ck_assert_int_eq(mr_probe_expect_cast(p, PONG, 10000, &v,
						      sizeof(v), NULL),
				 MR_OK);
		ck_assert_int_eq(v, i); // one sender, one receiver: in order
	}
	// A timer, on the real clock.
	ck_assert_int_eq(mr_cast(sys, pid, LATER, NULL, 0), MR_OK);
	ck_assert_int_eq(mr_probe_next(p, 10000, &m), MR_OK);
	ck_assert_int_eq(m->kind, MR_PROBE_INFO);
	ck_assert_int_eq(m->info, MR_INFO_TIMER);
	free(m);
	mr_probe_free(p);
	mr_system_free(sys);
}
END_TEST

/* A racy scenario: two senders cast to one receiver, which checks that
 * A's message came first. Nothing orders them, so some seeds break it. */
struct race {
	int runs;
};

static int
race_scenario(mr_system *sys, uint64_t seed, void *arg)
{
	struct race  *r = arg;
	mr_probe     *p;
	mr_pid        a, b;
	char          first[2] = {0};

	(void)seed;
	r->runs++;
	ck_assert_int_eq(mr_probe_new(sys, &p), MR_OK);
	mr_spawn(sys, &pong_b, (void *)(uintptr_t)mr_probe_pid(p), NULL, &a);
	mr_spawn(sys, &pong_b, (void *)(uintptr_t)mr_probe_pid(p), NULL, &b);
	mr_cast(sys, a, PING, "a", 1);
	mr_cast(sys, b, PING, "b", 1);
	ck_assert_int_eq(mr_probe_expect_cast(p, PONG, 1000, first, 1, NULL),
			 MR_OK);
	mr_probe_free(p);
	return first[0] == 'a' ? 0 : 1;
}

/* An invariant that holds: one sender's messages stay in order. */
static int
order_scenario(mr_system *sys, uint64_t seed, void *arg)
{
	mr_probe *p;
	mr_pid    a;
	int       bad = 0;

	(void)seed;
	(void)arg;
	mr_probe_new(sys, &p);
	mr_spawn(sys, &pong_b, (void *)(uintptr_t)mr_probe_pid(p), NULL, &a);
	for (int i = 0; i < 5; i++)
		mr_cast(sys, a, PING, &i, sizeof(i));
	for (int i = 0; i < 5; i++) {
		int v = -1;

		if (mr_probe_expect_cast(p, PONG, 1000, &v, sizeof(v), NULL) !=
			MR_OK ||
		    v != i)
			bad = 1;
	}
	mr_probe_free(p);
	return bad;
}

START_TEST(test_explore)
{
	struct race r      = {0};
	uint64_t    failed = 0;
	int         rc;

	ck_assert_int_eq(mr_explore(1, 50, order_scenario, NULL, &failed), 0);
	rc = mr_explore(1, 200, race_scenario, &r, &failed);
	ck_assert_msg(rc == 1, "no seed of 200 let b's message come first");
	ck_assert_uint_ge(failed, 1);
	ck_assert_int_eq(r.runs, (int)(failed - 1 + 1));
	// The seed replays the interleaving, every time.
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(mr_explore(failed, 1, race_scenario, &r, NULL),
				 1);
	// And the seeds before it pass.
	ck_assert_int_eq(mr_explore(1, (unsigned)(failed - 1), race_scenario,
				    &r, NULL),
			 0);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("testkit");
	TCase   *tc = tcase_create("testkit");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_probe_deterministic);
	tcase_add_test(tc, test_probe_threaded);
	tcase_add_test(tc, test_explore);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
