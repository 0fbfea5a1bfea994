/*
 * Supervisor tests (include/mailroom/supervisor.h), on the deterministic
 * test kit: a system with threads 0, driven step by step, its timers on a
 * virtual clock. Each worker logs its start (its tag in upper case) and
 * its terminate (lower case) into one log, so a test states the exact
 * sequence of starts and stops it expects; the strategies are checked
 * over many seeds (mr_explore, the test kit's), each a different
 * interleaving, all with the same log.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/actor.h"
#include "mailroom/testkit.h"

enum { W_CRASH = 1, W_STOP, W_EXIT_SHUTDOWN };

struct wspec {
	char tag;
	bool trap;   /* traps exits and ignores shutdown (so gets killed) */
};

static char w__log[512];
static size_t w__nlog;
static int  w__reason[128];   /* by tag: last terminate reason */
static int  w__fail_init[128]; /* by tag: inits left to fail */

static pthread_mutex_t w__mu = PTHREAD_MUTEX_INITIALIZER;

static void
w__note(char c)
{
	pthread_mutex_lock(&w__mu); /* the threaded case's workers */
	if (w__nlog < sizeof(w__log) - 1)
		w__log[w__nlog++] = c;
	pthread_mutex_unlock(&w__mu);
}

static int
w__init(mr_actor *self, void *arg, void **state)
{
	struct wspec *w = arg;

	if (w__fail_init[(int)w->tag] > 0) {
		w__fail_init[(int)w->tag]--;
		return MR_EIO;
	}
	if (w->trap)
		mr_trap_exit(self, true);
	w__note((char)(w->tag - 'a' + 'A'));
	*state = w;
	return 0;
}

static int
w__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	switch (msg->type) {
	case W_CRASH:
		return MR_EIO;
	case W_STOP:
		mr_exit(self, MR_EXIT_NORMAL);
		break;
	case W_EXIT_SHUTDOWN:
		mr_exit(self, MR_EXIT_SHUTDOWN);
		break;
	}
	return 0;
}

static void
w__terminate(mr_actor *self, void *state, int reason)
{
	struct wspec *w = state;

	pthread_mutex_lock(&w__mu);
	w__reason[(int)w->tag] = reason;
	pthread_mutex_unlock(&w__mu);
	w__note(w->tag);
}

static const mr_behaviour w__b = {
	.name        = "worker",
	.init        = w__init,
	.handle_cast = w__cast,
	.terminate   = w__terminate,
};

static struct wspec w_a = {'a', false}, w_b = {'b', false},
		    w_c = {'c', false}, w_d = {'d', false};

static mr_child_spec
w__child(const char *id, struct wspec *w, mr_restart r)
{
	return (mr_child_spec){.id = id, .behaviour = &w__b, .arg = w,
			       .restart = r, .shutdown_ms = 1000};
}

static void
w__reset(void)
{
	memset(w__log, 0, sizeof(w__log));
	w__nlog = 0;
	memset(w__reason, 0, sizeof(w__reason));
	memset(w__fail_init, 0, sizeof(w__fail_init));
}

static mr_system *
w__sys(uint64_t seed)
{
	mr_system *sys = NULL;

	w__reset();
	ck_assert_int_eq(mr_system_new(&sys, 0, seed), MR_OK);
	return sys;
}

static mr_pid
w__which(mr_system *sys, mr_pid sup, const char *id)
{
	mr_pid pid = 1;

	ck_assert_int_eq(mr_supervisor_which(sys, sup, id, &pid), MR_OK);
	return pid;
}

static void
w__cast_to(mr_system *sys, mr_pid sup, const char *id, uint32_t type)
{
	mr_pid pid = w__which(sys, sup, id);

	ck_assert_uint_ne(pid, 0);
	ck_assert_int_eq(mr_cast(sys, pid, type, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
}

#define W_LOG(want) ck_assert_str_eq(w__log, want)

static mr_pid
w__start(mr_system *sys, mr_strategy st, const mr_child_spec *c, size_t n,
	 uint32_t intensity, uint32_t period)
{
	mr_sup_spec spec = {.strategy = st, .intensity = intensity,
			    .period_ms = period, .children = c,
			    .nchildren = n};
	mr_pid      sup  = 0;

	ck_assert_int_eq(mr_supervisor_start(sys, &spec, &sup), MR_OK);
	return sup;
}

/* ---- start and shutdown order ---------------------------------------- */

START_TEST(test_ordered_start_and_shutdown)
{
	mr_system    *sys = w__sys(1);
	mr_child_spec c[3] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_PERMANENT),
			      w__child("c", &w_c, MR_PERMANENT)};
	mr_pid        sup = w__start(sys, MR_ONE_FOR_ONE, c, 3, 0, 0);

	mr_spawn_opts l = {.link = sup};
	mr_pid        d;

	W_LOG("ABC");
	ck_assert_uint_eq(mr_system_actors(sys), 4);
	/* An EXIT from a linked actor that is neither a child nor the parent
	 * is ignored. */
	ck_assert_int_eq(mr_spawn(sys, &w__b, &w_d, &l, &d), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, d, W_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	W_LOG("ABCDd");
	ck_assert_uint_eq(mr_system_actors(sys), 4);
	/* The parent (here the test's thread, pid 0) stops it. */
	ck_assert_int_eq(mr_send_exit(sys, sup, MR_EXIT_SHUTDOWN), MR_OK);
	mr_system_run_until_idle(sys);
	W_LOG("ABCDdcba");
	ck_assert_int_eq(w__reason['a'], MR_EXIT_SHUTDOWN);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	mr_system_free(sys);
}
END_TEST

/* root [a, mid [b, c], d]: depth-first start, reverse stop. */
START_TEST(test_tree_order)
{
	mr_system    *sys  = w__sys(2);
	mr_child_spec mc[2] = {w__child("b", &w_b, MR_PERMANENT),
			       w__child("c", &w_c, MR_PERMANENT)};
	mr_sup_spec   mid  = {.strategy = MR_ONE_FOR_ONE, .children = mc,
			      .nchildren = 2};
	mr_child_spec rc[3] = {
	    w__child("a", &w_a, MR_PERMANENT),
	    {.id = "mid", .start = mr_supervisor_start_link, .arg = &mid,
	     .restart = MR_PERMANENT, .shutdown_ms = MR_SHUTDOWN_INFINITY},
	    w__child("d", &w_d, MR_PERMANENT)};
	mr_pid root = w__start(sys, MR_ONE_FOR_ONE, rc, 3, 0, 0);

	W_LOG("ABCD");
	ck_assert_uint_eq(mr_system_actors(sys), 6);
	ck_assert_int_eq(mr_send_exit(sys, root, MR_EXIT_SHUTDOWN), MR_OK);
	mr_system_run_until_idle(sys);
	W_LOG("ABCDdcba");
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_shutdown_timeout)
{
	mr_system   *sys = w__sys(3);
	struct wspec stubborn = {'a', true}, brutal = {'c', false};
	mr_child_spec c[3]  = {w__child("a", &stubborn, MR_PERMANENT),
			       w__child("b", &w_b, MR_PERMANENT),
			       w__child("c", &brutal, MR_PERMANENT)};
	mr_pid       sup;

	c[2].shutdown_ms = 0; /* brutal kill */
	sup = w__start(sys, MR_ONE_FOR_ONE, c, 3, 0, 0);
	ck_assert_int_eq(mr_send_exit(sys, sup, MR_EXIT_SHUTDOWN), MR_OK);
	mr_system_run_until_idle(sys);
	W_LOG("ABCcb");
	ck_assert_int_eq(w__reason['c'], MR_EXIT_KILLED);
	ck_assert_int_eq(w__reason['b'], MR_EXIT_SHUTDOWN);
	/* a traps and ignores: killed after its 1000 ms, not before. */
	mr_system_advance(sys, 999);
	W_LOG("ABCcb");
	ck_assert_uint_eq(mr_system_actors(sys), 2);
	mr_system_advance(sys, 1);
	W_LOG("ABCcba");
	ck_assert_int_eq(w__reason['a'], MR_EXIT_KILLED);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	mr_system_free(sys);
}
END_TEST

/* ---- strategies ------------------------------------------------------ */

START_TEST(test_one_for_one)
{
	mr_system    *sys = w__sys(4);
	mr_child_spec c[3] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_PERMANENT),
			      w__child("c", &w_c, MR_PERMANENT)};
	mr_pid        sup = w__start(sys, MR_ONE_FOR_ONE, c, 3, 0, 0);
	mr_pid        a = w__which(sys, sup, "a"), b = w__which(sys, sup, "b");
	mr_pid        cc = w__which(sys, sup, "c");
	mr_restart_count rc[4], many[MR_SUP_NAMES_MAX + 1];

	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABCbB");
	ck_assert_int_eq(w__reason['b'], MR_EIO);
	ck_assert_uint_eq(w__which(sys, sup, "a"), a);
	ck_assert_uint_eq(w__which(sys, sup, "c"), cc);
	ck_assert_uint_ne(w__which(sys, sup, "b"), b);
	ck_assert_uint_ne(w__which(sys, sup, "b"), 0);
	// One restart, counted under the default name.
	ck_assert_uint_eq(mr_system_restarts(sys, rc, 4), 1);
	ck_assert_str_eq(rc[0].supervisor, "supervisor");
	ck_assert_uint_eq(rc[0].restarts, 1);
	// Named ones are listed from their first count, restarts or not.
	mr_system_count_restart(sys, "mirror:t", 0);
	ck_assert_uint_eq(mr_system_restarts(sys, rc, 4), 2);
	ck_assert_str_eq(rc[1].supervisor, "mirror:t");
	ck_assert_uint_eq(rc[1].restarts, 0);
	mr_system_count_restart(sys, "mirror:t", 2);
	ck_assert_uint_eq(mr_system_restarts(sys, rc, 1), 2); // one left out
	ck_assert_uint_eq(mr_system_restarts(sys, rc, 4), 2);
	ck_assert_uint_eq(rc[1].restarts, 2);
	// Past MR_SUP_NAMES_MAX names, the rest is "_other".
	for (int i = 0; i < MR_SUP_NAMES_MAX + 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i);
		mr_system_count_restart(sys, name, 1);
	}
	ck_assert_uint_eq(mr_system_restarts(sys, many, MR_SUP_NAMES_MAX + 1),
			  MR_SUP_NAMES_MAX + 1);
	ck_assert_str_eq(many[MR_SUP_NAMES_MAX].supervisor, "_other");
	ck_assert_uint_eq(many[MR_SUP_NAMES_MAX].restarts, 5);
	mr_system_free(sys);
}
END_TEST

/* The one_for_all scenario (mr_explore's: a new deterministic system per
 * seed); its log must not depend on the seed. */
static int
w__one_for_all(mr_system *sys, uint64_t seed, void *arg)
{
	mr_child_spec c[3] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_PERMANENT),
			      w__child("c", &w_c, MR_PERMANENT)};
	mr_pid        sup, a;

	(void)seed;
	(void)arg;
	w__reset();
	sup = w__start(sys, MR_ONE_FOR_ALL, c, 3, 0, 0);
	a   = w__which(sys, sup, "a");
	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABCbcaABC");
	ck_assert_int_eq(w__reason['a'], MR_EXIT_SHUTDOWN);
	ck_assert_uint_ne(w__which(sys, sup, "a"), a);
	ck_assert_uint_eq(mr_system_actors(sys), 4);
	return 0;
}

START_TEST(test_one_for_all)
{
	ck_assert_int_eq(mr_explore(0, 50, w__one_for_all, NULL, NULL), 0);
}
END_TEST

static int
w__rest_for_one(mr_system *sys, uint64_t seed, void *arg)
{
	mr_child_spec c[4] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_PERMANENT),
			      w__child("c", &w_c, MR_PERMANENT),
			      w__child("d", &w_d, MR_PERMANENT)};
	mr_pid        sup, a;

	(void)seed;
	(void)arg;
	w__reset();
	sup = w__start(sys, MR_REST_FOR_ONE, c, 4, 0, 0);
	a   = w__which(sys, sup, "a");
	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABCDbdcBCD");
	ck_assert_uint_eq(w__which(sys, sup, "a"), a);
	/* The last child: only itself. */
	mr_system_advance(sys, 10000); /* out of the intensity window */
	w__cast_to(sys, sup, "d", W_CRASH);
	W_LOG("ABCDbdcBCDdD");
	return 0;
}

START_TEST(test_rest_for_one)
{
	ck_assert_int_eq(mr_explore(0, 50, w__rest_for_one, NULL, NULL), 0);
}
END_TEST

START_TEST(test_restart_types)
{
	mr_system    *sys = w__sys(5);
	mr_child_spec c[3] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_TRANSIENT),
			      w__child("c", &w_c, MR_TEMPORARY)};
	mr_pid        sup = w__start(sys, MR_ONE_FOR_ONE, c, 3, 100, 5000);

	/* permanent: restarted even after a normal exit */
	w__cast_to(sys, sup, "a", W_STOP);
	W_LOG("ABCaA");
	/* transient: not after normal or shutdown; yes after a crash */
	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABCaAbB");
	w__cast_to(sys, sup, "b", W_EXIT_SHUTDOWN);
	W_LOG("ABCaAbBb");
	ck_assert_uint_eq(w__which(sys, sup, "b"), 0);
	/* temporary: never, even after a crash */
	w__cast_to(sys, sup, "c", W_CRASH);
	W_LOG("ABCaAbBbc");
	ck_assert_uint_eq(w__which(sys, sup, "c"), 0);
	ck_assert_uint_eq(mr_system_actors(sys), 2);
	/* Shutdown stops only what runs. */
	ck_assert_int_eq(mr_send_exit(sys, sup, MR_EXIT_SHUTDOWN), MR_OK);
	mr_system_run_until_idle(sys);
	W_LOG("ABCaAbBbca");
	mr_system_free(sys);
}
END_TEST

/* ---- intensity ------------------------------------------------------- */

START_TEST(test_intensity_default)
{
	mr_system    *sys = w__sys(6);
	mr_child_spec c[2] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_PERMANENT)};
	mr_pid        sup = w__start(sys, MR_ONE_FOR_ONE, c, 2, 0, 0);
	mr_pid        pid;

	w__cast_to(sys, sup, "b", W_CRASH); /* 1 restart in 5 s: fine */
	W_LOG("ABbB");
	mr_system_advance(sys, 5000); /* the first leaves the window */
	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABbBbB");
	mr_system_advance(sys, 4999);
	/* A second within 5 s: the supervisor stops a, then itself. */
	pid = w__which(sys, sup, "b");
	ck_assert_int_eq(mr_cast(sys, pid, W_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	W_LOG("ABbBbBba");
	ck_assert_int_eq(w__reason['a'], MR_EXIT_SHUTDOWN);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	ck_assert_int_eq(mr_supervisor_which(sys, sup, "a", &pid), MR_ENOENT);
	mr_system_free(sys);
}
END_TEST

/* root [mid [w]]: mid's intensity is exceeded twice within root's period:
 * mid exits, root restarts it once, then exits itself. */
START_TEST(test_escalation_two_levels)
{
	mr_system    *sys = w__sys(7);
	mr_child_spec mc[1] = {w__child("a", &w_a, MR_PERMANENT)};
	mr_sup_spec   mid  = {.strategy = MR_ONE_FOR_ONE, .intensity = 1,
			      .period_ms = 5000, .children = mc,
			      .nchildren = 1};
	mr_child_spec rc[2] = {
	    w__child("b", &w_b, MR_PERMANENT),
	    {.id = "mid", .start = mr_supervisor_start_link, .arg = &mid,
	     .restart = MR_PERMANENT, .shutdown_ms = MR_SHUTDOWN_INFINITY}};
	mr_pid root = w__start(sys, MR_ONE_FOR_ONE, rc, 2, 1, 5000);
	mr_pid m1   = w__which(sys, root, "mid"), m2;

	W_LOG("BA");
	w__cast_to(sys, m1, "a", W_CRASH); /* mid restarts a */
	W_LOG("BAaA");
	w__cast_to(sys, m1, "a", W_CRASH); /* mid gives up; root restarts */
	W_LOG("BAaAaA");
	m2 = w__which(sys, root, "mid");
	ck_assert_uint_ne(m2, m1);
	ck_assert_uint_ne(m2, 0);
	ck_assert_uint_eq(mr_system_actors(sys), 4);
	mr_system_advance(sys, 100);
	w__cast_to(sys, m2, "a", W_CRASH);
	W_LOG("BAaAaAaA");
	w__cast_to(sys, m2, "a", W_CRASH); /* mid again: root gives up */
	W_LOG("BAaAaAaAab");
	ck_assert_int_eq(w__reason['b'], MR_EXIT_SHUTDOWN);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	mr_system_free(sys);
}
END_TEST

/* ---- failed starts --------------------------------------------------- */

START_TEST(test_start_failures)
{
	mr_system    *sys = w__sys(8);
	mr_child_spec c[3] = {w__child("a", &w_a, MR_PERMANENT),
			      w__child("b", &w_b, MR_PERMANENT),
			      w__child("c", &w_c, MR_PERMANENT)};
	mr_sup_spec   spec = {.strategy = MR_ONE_FOR_ONE, .intensity = 5,
			      .period_ms = 5000, .children = c,
			      .nchildren = 3};
	mr_pid        sup = 0;

	/* At start: the supervisor fails, a (started) is stopped. */
	w__fail_init['b'] = 1;
	ck_assert_int_eq(mr_supervisor_start(sys, &spec, &sup), MR_EIO);
	mr_system_run_until_idle(sys);
	W_LOG("Aa");
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	/* At restart: tried again until it starts (each try a restart). */
	w__reset();
	ck_assert_int_eq(mr_supervisor_start(sys, &spec, &sup), MR_OK);
	w__fail_init['b'] = 2;
	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABCbB");
	ck_assert_uint_ne(w__which(sys, sup, "b"), 0);
	/* Failing more than the intensity allows: the supervisor exits. */
	w__fail_init['b'] = 100;
	w__cast_to(sys, sup, "b", W_CRASH);
	W_LOG("ABCbBbca");
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	mr_system_free(sys);
}
END_TEST

/* Seeded simulation: a supervisor of four children of random restart types
 * and a random strategy, hit by 40 random crashes, normal stops, shutdown
 * stops and clock moves, each seed a different interleaving too. After
 * every step: every permanent child runs, running children have distinct
 * live pids, and the system holds exactly the supervisor and them. */
static int
w__sim(mr_system *sys, uint64_t seed, void *arg)
{
	static struct wspec ws[4] = {{'a', false}, {'b', false},
				     {'c', false}, {'d', false}};
	static const char  *ids[4] = {"a", "b", "c", "d"};
	mr_child_spec       c[4];
	uint64_t            x = seed * 2654435761u + 1;
	mr_pid              sup;
	int                 i, k, step;

	(void)arg;
	w__reset();
	for (i = 0; i < 4; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		c[i] = w__child(ids[i], &ws[i], (mr_restart)(x % 3));
	}
	x ^= x << 13, x ^= x >> 7, x ^= x << 17;
	sup = w__start(sys, (mr_strategy)(x % 3), c, 4, 1000, 1000);
	for (step = 0; step < 40; step++) {
		mr_pid pids[4];
		size_t running = 0;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		k = (int)(x % 4);
		switch ((x >> 8) % 4) {
		case 0:
		case 1:
			mr_cast(sys, w__which(sys, sup, ids[k]), W_CRASH,
				NULL, 0);
			break;
		case 2:
			mr_cast(sys, w__which(sys, sup, ids[k]),
				(x >> 16) % 2 ? W_STOP : W_EXIT_SHUTDOWN,
				NULL, 0);
			break;
		default:
			mr_system_advance(sys, (x >> 16) % 50);
			break;
		}
		mr_system_run_until_idle(sys);
		for (i = 0; i < 4; i++) {
			pids[i] = w__which(sys, sup, ids[i]);
			if (c[i].restart == MR_PERMANENT)
				ck_assert_msg(pids[i] != 0,
					      "seed %llu step %d: %s down",
					      (unsigned long long)seed, step,
					      ids[i]);
			if (pids[i] == 0)
				continue;
			running++;
			for (k = 0; k < i; k++)
				ck_assert_uint_ne(pids[k], pids[i]);
		}
		ck_assert_msg(mr_system_actors(sys) == 1 + running,
			      "seed %llu step %d: %zu actors, %zu running",
			      (unsigned long long)seed, step,
			      mr_system_actors(sys), running);
	}
	return 0;
}

START_TEST(test_sim)
{
	ck_assert_int_eq(mr_explore(0, 300, w__sim, NULL, NULL), 0);
}
END_TEST

/* The same supervisors on two worker threads: a restart, then the system
 * freed with the tree running (everything terminated, nothing restarted). */
START_TEST(test_threaded_tree)
{
	mr_system    *sys  = NULL;
	mr_child_spec mc[2] = {w__child("b", &w_b, MR_PERMANENT),
			       w__child("c", &w_c, MR_PERMANENT)};
	mr_sup_spec   mid  = {.strategy = MR_ONE_FOR_ALL, .children = mc,
			      .nchildren = 2};
	mr_child_spec rc[2] = {
	    w__child("a", &w_a, MR_PERMANENT),
	    {.id = "mid", .start = mr_supervisor_start_link, .arg = &mid,
	     .restart = MR_PERMANENT, .shutdown_ms = MR_SHUTDOWN_INFINITY}};
	mr_pid root, m, c0, c1;
	int    tries;

	w__reset();
	ck_assert_int_eq(mr_system_new(&sys, 2, 0), MR_OK);
	root = w__start(sys, MR_ONE_FOR_ONE, rc, 2, 0, 0);
	ck_assert_str_eq(w__log, "ABC"); /* started in order, synchronously */
	m  = w__which(sys, root, "mid");
	c0 = w__which(sys, m, "c");
	ck_assert_int_eq(mr_cast(sys, c0, W_CRASH, NULL, 0), MR_OK);
	/* Each which is a call queued behind what mid has to do. */
	for (tries = 0, c1 = c0; tries < 100000 && (c1 == c0 || c1 == 0);
	     tries++)
		c1 = w__which(sys, m, "c");
	ck_assert_uint_ne(c1, c0);
	ck_assert_uint_ne(c1, 0);
	/* The crashed c is counted until its worker has let it go, which
	 * may be after mid started the new one (TSan's CI run saw 6). */
	for (tries = 0; tries < 100000 && mr_system_actors(sys) != 5; tries++)
		(void)w__which(sys, m, "c");
	ck_assert_uint_eq(mr_system_actors(sys), 5);
	mr_system_free(sys);
	/* one_for_all in mid: c crashed, b stopped, b and c started again;
	 * then the system stopped all four workers. */
	pthread_mutex_lock(&w__mu);
	ck_assert_uint_eq(w__nlog, 3 + 4 + 3);
	ck_assert_mem_eq(w__log, "ABCcbBC", 7);
	pthread_mutex_unlock(&w__mu);
}
END_TEST

static Suite *
w__suite(void)
{
	Suite *s = suite_create("actor_sup");
	TCase *o = tcase_create("order");
	TCase *r = tcase_create("restarts");

	tcase_add_test(o, test_ordered_start_and_shutdown);
	tcase_add_test(o, test_tree_order);
	tcase_add_test(o, test_shutdown_timeout);
	suite_add_tcase(s, o);
	tcase_add_test(r, test_one_for_one);
	tcase_add_test(r, test_one_for_all);
	tcase_add_test(r, test_rest_for_one);
	tcase_add_test(r, test_restart_types);
	tcase_add_test(r, test_intensity_default);
	tcase_add_test(r, test_escalation_two_levels);
	tcase_add_test(r, test_start_failures);
	tcase_add_test(r, test_threaded_tree);
	tcase_add_test(r, test_sim);
	suite_add_tcase(s, r);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(w__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
