/*
 * Stress test of the threaded runtime (run under TSan too): many actors,
 * many sender threads, and actors forwarding to actors. Each sender
 * numbers its messages per receiving actor; each actor checks that what
 * one sender sent it arrives in order with no gap, and the totals check
 * that nothing is lost. A second case does the same through small
 * mailboxes whose senders block (MR_OVERFLOW_BLOCK).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mailroom/actor.h"

#define S_ACTORS  400
#define S_SENDERS 6
#define S_PER     20000 /* messages per sender */
#define S_HOPS    2     /* forwards per message, in the first case */

enum { S_MSG = 1, S_FWD = 2, S_STATS = 100 };

struct s_payload {
	uint32_t sender, seq, hops;
};

struct s_state {
	uint32_t next[S_SENDERS]; /* the seq expected from each sender */
	uint64_t handled, errors;
};

static mr_pid           s__pids[S_ACTORS];
static _Atomic uint64_t s__total;
static uint64_t         s__expected;
static pthread_mutex_t  s__mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   s__cv = PTHREAD_COND_INITIALIZER;

static int
s__init(mr_actor *self, void *arg, void **state)
{
	*state = calloc(1, sizeof(struct s_state));
	return *state == NULL ? MR_ENOMEM : 0;
}

static void
s__count(void)
{
	if (atomic_fetch_add(&s__total, 1) + 1 == s__expected) {
		pthread_mutex_lock(&s__mu);
		pthread_cond_broadcast(&s__cv);
		pthread_mutex_unlock(&s__mu);
	}
}

static int
s__cast(mr_actor *self, void *state, const mr_msg *msg)
{
	struct s_state  *s = state;
	struct s_payload p;

	memcpy(&p, msg->data, sizeof(p));
	s->handled++;
	if (msg->type == S_MSG) {
		if (p.sender >= S_SENDERS || p.seq != s->next[p.sender])
			s->errors++;
		else
			s->next[p.sender]++;
	}
	if (p.hops > 0) {
		mr_pid to = s__pids[(p.seq * 31 + p.hops) % S_ACTORS];

		p.hops--;
		if (mr_cast(mr_actor_system(self), to, S_FWD, &p, sizeof(p)) !=
		    MR_OK)
			s->errors++;
	}
	s__count();
	return 0;
}

static int
s__call(mr_actor *self, void *state, const mr_msg *msg, mr_from from)
{
	return mr_reply(mr_actor_system(self), from, state,
			sizeof(struct s_state));
}

static void
s__terminate(mr_actor *self, void *state, int reason)
{
	free(state);
}

static const mr_behaviour s__b = {
	.init        = s__init,
	.handle_cast = s__cast,
	.handle_call = s__call,
	.terminate   = s__terminate,
};

struct s_sender {
	mr_system *sys;
	uint32_t   id, hops;
	int        failures;
};

static void *
s__sender(void *arg)
{
	struct s_sender *snd = arg;
	uint32_t        *seq = calloc(S_ACTORS, sizeof(uint32_t));
	uint64_t         x   = snd->id + 1;
	int              i;

	for (i = 0; i < S_PER; i++) {
		struct s_payload p;
		uint32_t         k;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = (uint32_t)(x % S_ACTORS);
		p = (struct s_payload){snd->id, seq[k]++, snd->hops};
		if (mr_cast(snd->sys, s__pids[k], S_MSG, &p, sizeof(p)) !=
		    MR_OK)
			snd->failures++;
	}
	free(seq);
	return NULL;
}

static void
s__run(uint32_t hops, const mr_spawn_opts *opts)
{
	mr_system      *sys = NULL;
	pthread_t       th[S_SENDERS];
	struct s_sender snd[S_SENDERS];
	uint64_t        handled = 0;
	int             i;

	atomic_store(&s__total, 0);
	s__expected = (uint64_t)S_SENDERS * S_PER * (1 + hops);
	ck_assert_int_eq(mr_system_new(&sys, 4, 0), MR_OK);
	for (i = 0; i < S_ACTORS; i++)
		ck_assert_int_eq(mr_spawn(sys, &s__b, NULL, opts, &s__pids[i]),
				 MR_OK);
	for (i = 0; i < S_SENDERS; i++) {
		snd[i] = (struct s_sender){sys, (uint32_t)i, hops, 0};
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, s__sender, &snd[i]), 0);
	}
	for (i = 0; i < S_SENDERS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(snd[i].failures, 0);
	}
	/* Wait (on a condition; CTest's timeout bounds it) until every
	 * message was handled. */
	pthread_mutex_lock(&s__mu);
	while (atomic_load(&s__total) < s__expected)
		pthread_cond_wait(&s__cv, &s__mu);
	pthread_mutex_unlock(&s__mu);
	ck_assert_uint_eq(atomic_load(&s__total), s__expected);
	for (i = 0; i < S_ACTORS; i++) {
		void          *r = NULL;
		struct s_state st;

		ck_assert_int_eq(mr_call(sys, s__pids[i], S_STATS, NULL, 0,
					 60000, &r, NULL),
				 MR_OK);
		memcpy(&st, r, sizeof(st));
		free(r);
		ck_assert_uint_eq(st.errors, 0);
		handled += st.handled;
	}
	ck_assert_uint_eq(handled, s__expected);
	mr_system_free(sys);
}

START_TEST(test_stress_unbounded_forwarding)
{
	s__run(S_HOPS, NULL);
}
END_TEST

START_TEST(test_stress_bounded_blocking)
{
	mr_spawn_opts o = {.mailbox_max = 8, .overflow = MR_OVERFLOW_BLOCK};

	s__run(0, &o);
}
END_TEST

static Suite *
s__suite(void)
{
	Suite *s = suite_create("actor_stress");
	TCase *t = tcase_create("stress");

	tcase_add_test(t, test_stress_unbounded_forwarding);
	tcase_add_test(t, test_stress_bounded_blocking);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *r = srunner_create(s__suite());
	int      failed;

	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
