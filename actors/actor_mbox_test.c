/*
 * Unit tests of the actor runtime's mailboxes (overflow policies: fail,
 * drop, block; pointer messages), names, links (trapped and not) and
 * monitors (DOWN once, demonitor), on a deterministic system except the
 * blocked sender's case (two workers, no timing assertion).
 */
#include <sched.h>

#include "actors/actor_test.h"

/* ---- mailboxes ------------------------------------------------------- */

START_TEST(test_overflow_fail_drop)
{
	mr_system    *sys = t__sys(0, 9);
	struct obs    o   = {0};
	mr_spawn_opts f   = {.mailbox_max = 3, .overflow = MR_OVERFLOW_FAIL};
	mr_spawn_opts d   = {.mailbox_max = 3, .overflow = MR_OVERFLOW_DROP};
	mr_spawn_opts bl  = {.mailbox_max = 3, .overflow = MR_OVERFLOW_BLOCK};
	mr_pid        pf = t__spawn(sys, &o, &f), pd = t__spawn(sys, &o, &d);
	mr_pid        pb = t__spawn(sys, &o, &bl);
	int64_t       one = 1;
	char         *p   = strdup("kept by the caller");
	int           i;

	for (i = 0; i < 3; i++) {
		t__add(sys, pf, 1);
		t__add(sys, pd, 1);
		t__add(sys, pb, 1);
	}
	ck_assert_int_eq(mr_cast(sys, pf, T_ADD, &one, sizeof(one)), MR_EBUSY);
	ck_assert_int_eq(mr_cast_ptr(sys, pf, T_ADD, p, free), MR_EBUSY);
	free(p); /* refused: still ours */
	ck_assert_int_eq(mr_cast(sys, pd, T_ADD, &one, sizeof(one)), MR_OK);
	/* Block cannot wait in a deterministic system: it fails. */
	ck_assert_int_eq(mr_cast(sys, pb, T_ADD, &one, sizeof(one)), MR_EBUSY);
	/* Signals are never refused: an exit signal to a full mailbox. */
	ck_assert_int_eq(mr_send_exit(sys, pf, MR_EXIT_NORMAL), MR_OK);
	/* A call is a user message: refused too while full. */
	ck_assert_int_eq(mr_call(sys, pf, T_GET, NULL, 0, 10, NULL, NULL),
			 MR_EBUSY);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(t__get(sys, pf), 3);
	ck_assert_int_eq(t__get(sys, pd), 3); /* the fourth was dropped */
	/* Room again. */
	ck_assert_int_eq(mr_cast(sys, pf, T_ADD, &one, sizeof(one)), MR_OK);
	ck_assert_int_eq(t__get(sys, pf), 4);
	mr_system_free(sys);
}
END_TEST

struct t_sender {
	mr_system *sys;
	mr_pid     to;
	int        n, rv;
};

static void *
t__sender(void *arg)
{
	struct t_sender *s = arg;
	int64_t          one = 1;
	int              i;

	for (i = 0; i < s->n && s->rv == MR_OK; i++)
		s->rv = mr_cast(s->sys, s->to, T_ADD, &one, sizeof(one));
	return NULL;
}

START_TEST(test_overflow_block)
{
	mr_system      *sys = t__sys(2, 0);
	struct obs      o   = {0};
	mr_spawn_opts   bl  = {.mailbox_max = 2, .overflow = MR_OVERFLOW_BLOCK};
	mr_pid          pid;
	struct mr_actor *a;
	struct t_sender s;
	pthread_t       th;

	pthread_mutex_init(&o.gate_mu, NULL);
	pthread_cond_init(&o.gate_cv, NULL);
	pid = t__spawn(sys, &o, &bl);
	/* The actor waits on the gate; its mailbox fills; the sender waits. */
	ck_assert_int_eq(mr_cast(sys, pid, T_GATE, NULL, 0), MR_OK);
	s = (struct t_sender){.sys = sys, .to = pid, .n = 50, .rv = MR_OK};
	ck_assert_int_eq(pthread_create(&th, NULL, t__sender, &s), 0);
	a = mri_lookup(sys, pid);
	while (atomic_load(&a->blocked) == 0)
		sched_yield();
	ck_assert_uint_le(atomic_load(&a->count), 3); /* gate + 2 */
	mri_actor_rele(a);
	pthread_mutex_lock(&o.gate_mu);
	o.gate_open = true;
	pthread_cond_broadcast(&o.gate_cv);
	pthread_mutex_unlock(&o.gate_mu);
	pthread_join(th, NULL);
	ck_assert_int_eq(s.rv, MR_OK);
	ck_assert_int_eq(t__get(sys, pid), 50); /* none lost */
	mr_system_free(sys);
	pthread_mutex_destroy(&o.gate_mu);
	pthread_cond_destroy(&o.gate_cv);
}
END_TEST

static int t__freed;
static void
t__count_free(void *p)
{
	t__freed++;
	free(p);
}

static void *t__taken;
static int
t__ptr_cast(mr_actor *self, void *state, const mr_msg *msg)
{
	if (msg->type == 2)
		t__taken = mr_msg_take(msg);
	return 0;
}

START_TEST(test_cast_ptr)
{
	mr_system          *sys = t__sys(0, 10);
	static mr_behaviour pb  = {.handle_cast = t__ptr_cast};
	mr_pid              pid;

	t__freed = 0;
	ck_assert_int_eq(mr_spawn(sys, &pb, NULL, NULL, &pid), MR_OK);
	ck_assert_int_eq(mr_cast_ptr(sys, pid, 1, malloc(8), t__count_free),
			 MR_OK);
	ck_assert_int_eq(mr_cast_ptr(sys, pid, 2, malloc(8), t__count_free),
			 MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(t__freed, 1); /* the taken one is ours */
	ck_assert_ptr_nonnull(t__taken);
	free(t__taken);
	/* Left in a mailbox at free: freed by the runtime. */
	ck_assert_int_eq(mr_cast_ptr(sys, pid, 1, malloc(8), t__count_free),
			 MR_OK);
	mr_system_free(sys);
	ck_assert_int_eq(t__freed, 2);
}
END_TEST

/* ---- names ----------------------------------------------------------- */

START_TEST(test_names)
{
	mr_system *sys = t__sys(0, 11);
	struct obs o   = {0};
	mr_pid     a = t__spawn(sys, &o, NULL), b = t__spawn(sys, &o, NULL);

	ck_assert_int_eq(mr_register(sys, "ledger", a), MR_OK);
	ck_assert_uint_eq(mr_whereis(sys, "ledger"), a);
	ck_assert_int_eq(mr_register(sys, "ledger", b), MR_EEXIST);
	ck_assert_int_eq(mr_register(sys, "other", a), MR_EEXIST);
	ck_assert_int_eq(mr_register(sys, "", b), MR_EINVAL);
	ck_assert_int_eq(mr_register(sys, "x", 12345), MR_ENOENT);
	ck_assert_int_eq(mr_unregister(sys, "ledger"), MR_OK);
	ck_assert_uint_eq(mr_whereis(sys, "ledger"), 0);
	ck_assert_int_eq(mr_unregister(sys, "ledger"), MR_ENOENT);
	ck_assert_int_eq(mr_register(sys, "other", a), MR_OK);
	ck_assert_int_eq(mr_register(sys, "ledger", b), MR_OK);
	/* A name goes with its actor. */
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_whereis(sys, "ledger"), 0);
	ck_assert_uint_eq(mr_whereis(sys, "other"), a);
	mr_system_free(sys);
}
END_TEST

/* ---- links and monitors ---------------------------------------------- */

START_TEST(test_links_trapped)
{
	mr_system    *sys = t__sys(0, 12);
	struct obs    oa = {0}, ob = {0};
	mr_spawn_opts trap = {.trap_exit = true};
	mr_pid        a = t__spawn(sys, &oa, &trap), b = t__spawn(sys, &ob, NULL);

	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 1);
	ck_assert_uint_eq(oa.info_pid, b);
	ck_assert_int_eq(oa.info_reason, MR_EINTERNAL);
	ck_assert_int_eq(oa.terminates, 0);
	/* Linking an actor that is gone: EXIT noproc. */
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 2);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NOPROC);
	/* Normal exits arrive too when trapped. */
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 3);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NORMAL);
	/* Unlinked: nothing. */
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_LINK, b);
	t__pidcast(sys, a, T_UNLINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.exits, 3);
	/* Kill cannot be trapped; the link sees killed. */
	b = t__spawn(sys, &ob, &trap);
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_send_exit(sys, b, MR_EXIT_KILL), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(ob.last_reason, MR_EXIT_KILLED);
	ck_assert_int_eq(oa.exits, 4);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_KILLED);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_links_untrapped)
{
	mr_system *sys = t__sys(0, 13);
	struct obs oa = {0}, ob = {0}, oc = {0};
	mr_pid     a = t__spawn(sys, &oa, NULL), b = t__spawn(sys, &ob, NULL);
	mr_pid     c = t__spawn(sys, &oc, NULL);

	/* a - b - c: b crashes, both a and c die with its reason. */
	t__pidcast(sys, b, T_LINK, a);
	t__pidcast(sys, c, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.last_reason, MR_EINTERNAL);
	ck_assert_int_eq(oc.last_reason, MR_EINTERNAL);
	ck_assert_int_eq(oa.terminates + ob.terminates + oc.terminates, 3);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	/* A normal exit does not take a non-trapping link down. */
	a = t__spawn(sys, &oa, NULL);
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_LINK, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_system_actors(sys), 1);
	ck_assert_int_eq(oa.terminates, 1);
	/* Spawned linked: the link is there from birth. */
	{
		mr_spawn_opts l = {.link = a};

		b = t__spawn(sys, &ob, &l);
	}
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_uint_eq(mr_system_actors(sys), 0);
	ck_assert_int_eq(oa.last_reason, MR_EINTERNAL);
	mr_system_free(sys);
}
END_TEST

START_TEST(test_monitors)
{
	mr_system *sys = t__sys(0, 14);
	struct obs oa = {0}, ob = {0};
	mr_pid     a = t__spawn(sys, &oa, NULL), b = t__spawn(sys, &ob, NULL);
	mr_ref     ref;

	t__pidcast(sys, a, T_MONITOR, b);
	mr_system_run_until_idle(sys);
	ref = oa.ref;
	ck_assert_uint_ne(ref, 0);
	ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.downs, 1);
	ck_assert_uint_eq(oa.info_ref, ref);
	ck_assert_uint_eq(oa.info_pid, b);
	ck_assert_int_eq(oa.info_reason, MR_EINTERNAL);
	ck_assert_int_eq(oa.terminates, 0); /* a monitor is not a link */
	/* Monitoring what is gone: one DOWN noproc. */
	t__pidcast(sys, a, T_MONITOR, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.downs, 2);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NOPROC);
	/* Two monitors, two DOWNs, each once; a normal exit too. */
	b = t__spawn(sys, &ob, NULL);
	t__pidcast(sys, a, T_MONITOR, b);
	t__pidcast(sys, a, T_MONITOR, b);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(mr_cast(sys, b, T_STOP, NULL, 0), MR_OK);
	mr_system_run_until_idle(sys);
	ck_assert_int_eq(oa.downs, 4);
	ck_assert_int_eq(oa.info_reason, MR_EXIT_NORMAL);
	/* Demonitor: no DOWN, whichever of the exit and the demonitor runs
	 * first (the seed decides; both orders over these seeds). */
	for (int seed = 0; seed < 8; seed++) {
		b = t__spawn(sys, &ob, NULL);
		t__pidcast(sys, a, T_MONITOR, b);
		mr_system_run_until_idle(sys);
		ck_assert_int_eq(mr_cast(sys, b, T_CRASH, NULL, 0), MR_OK);
		ck_assert_int_eq(mr_cast(sys, a, T_DEMONITOR, NULL, 0), MR_OK);
		mr_system_run_until_idle(sys);
		ck_assert_int_eq(oa.downs, 4);
	}
	mr_system_free(sys);
}
END_TEST

static Suite *
t__suite(void)
{
	Suite *s = suite_create("actor_mbox");
	TCase *m = tcase_create("mailboxes");
	TCase *l = tcase_create("links");

	tcase_add_test(m, test_overflow_fail_drop);
	tcase_add_test(m, test_overflow_block);
	tcase_add_test(m, test_cast_ptr);
	tcase_add_test(m, test_names);
	suite_add_tcase(s, m);
	tcase_add_test(l, test_links_trapped);
	tcase_add_test(l, test_links_untrapped);
	tcase_add_test(l, test_monitors);
	suite_add_tcase(s, l);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(t__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}

