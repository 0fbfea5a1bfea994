/*
 * A seeded random simulation of broker/order.c, the order of a
 * publisher's requests (its rules one at a time: broker/order_test.c): 1-4 publishers, each a stream sending numbered
 * requests with 1-8 outstanding (seq assigned in order, base the oldest
 * seq it still awaits), its copies given to the order in any order (the
 * server's threads may present a connection's requests in any order),
 * hand-offs completing in any order, connections lost (the publisher sends
 * every request it awaits again, same seq, current base; old copies may
 * still arrive, or be dropped by the front door), requests taken back by
 * mri_order_expire (refused: the publisher sends it again, or now and then
 * gives up on it), and time passing so that idle streams are forgotten.
 *
 * What the order guarantees, per stream, checked after every step:
 *  (a) at most one request holds the turn;
 *  (b) first hand-offs in seq order: when a seq is handed off for the
 *      first time, with the turn or not, every lower seq of the publisher
 *      was handed off before or given up on; the seqs handed off are
 *      always a prefix of what it sent, less what it gave up on. A request
 *      handed off without the turn is of a seq already handed off or given
 *      up on (a resend, for the publish dedupe). Within one life of the
 *      stream (from the request that starts it to its being forgotten) the
 *      turn goes to strictly increasing seqs; a stream forgotten and
 *      started again by an old copy may give the turn to a seq again: a
 *      duplicate, for the dedupe. (A new stream's request refused room,
 *      *full, goes unordered: the simulation leaves room for all.)
 *  (c) no request is lost: each one given to the order comes back exactly
 *      once, from mri_order_arrive, _done or _expire; _expire takes back
 *      exactly those parked for the wait;
 *  (d) stats: parked, streams and expired equal the model's;
 *  (e) the order does not wait for what the publisher no longer awaits:
 *      with no turn taken, every parked request is beyond the seq whose
 *      turn it is by the rules, the later of the largest base that arrived
 *      in this life of the stream and the seq after the last one that had
 *      the turn; with a turn taken, none is below the one holding it;
 *  (f) a stream is forgotten only with nothing parked and no turn taken,
 *      when none of its requests arrived or completed for the idle limit,
 *      all such streams together.
 * At the end of each schedule a drain without faults sends, delivers and
 * completes everything (a stall that (e) allows, the order waiting for a
 * seq the publisher has no reason to send again, is cleared by expiring
 * the parked requests, as the server would); then (g) every request was
 * replied to after a hand-off, or given up on, and nothing is parked.
 *
 * The seed is printed; MR_SIM_SEED repeats a run, MR_SIM_SCHEDULE=i runs
 * only schedule i of it, MR_SIM_SCHEDULES sets how many, MR_SIM_TRACE=1
 * prints every event, MR_SIM_LOOSE=1 leaves (e) out (to look past a
 * failure of it for others).
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker/order.h"
#include "mailroom/error.h"
/* ---- the simulation -------------------------------------------------- */

#define SIM_SCHEDULES 3000
#define SIM_MAXPUB    4
#define SIM_MAXREQ    120 /* requests per publisher and schedule */
#define SIM_MAXCOPY   1024
#define SIM_TRAIL     40

enum sim_cst { SIM_FREE, SIM_SENT, SIM_PARKED, SIM_OUT, SIM_NLIST };

static const char *const sim__cst_names[] = {"free", "not arrived",
					     "parked", "handed off"};

/* A copy of a request on its way: sent, parked in the order, or handed off
 * to the producer. */
struct sim_copy {
	struct mri_order_item it;
	uint8_t               st;
	uint8_t               pub;
	uint32_t              idx;   /* the request: seq is first + idx */
	uint32_t              base;  /* the publisher's base when sent */
	uint32_t              epoch; /* of the connection that sent it */
	uint64_t              at;    /* when given to the order */
	uint32_t              slot;  /* in the list of its state */
};

struct sim_pub {
	uint64_t stream;
	uint32_t first;  /* seq of request 0 */
	uint32_t total;  /* requests to send in this schedule */
	uint32_t window; /* most outstanding */
	uint32_t nreq;   /* requests sent so far */
	uint32_t base;   /* oldest neither replied to nor given up on */
	uint32_t low;    /* oldest neither handed off nor given up on */
	uint32_t epoch;
	bool     replied[SIM_MAXREQ];
	bool     gaveup[SIM_MAXREQ];
	bool     handed[SIM_MAXREQ];
	/* Its stream in the order, as the model sees it, in this life. */
	bool     known;
	uint64_t used; /* last arrival or completed turn */
	uint32_t parked;
	int32_t  turn; /* the copy holding the turn, or -1 */
	bool     had_turn;
	uint32_t last_turn; /* idx */
	uint32_t maxbase;   /* idx */
};

struct sim_totals {
	uint64_t schedules, steps, arrivals, turns, resends, again,
		completions, losses, expired, gaveup, forgotten, stalls;
};

struct sim {
	struct mri_order_table *o;
	struct sim_pub          pub[SIM_MAXPUB];
	int                     npub;
	size_t                  max_streams;
	uint64_t                idle_ms, wait_ms;
	uint64_t                rng;
	uint64_t                now;
	uint64_t                expired;
	bool                    draining;
	struct sim_copy         copy[SIM_MAXCOPY];
	uint32_t                freel[SIM_MAXCOPY];
	size_t                  nfree;
	uint32_t                list[SIM_NLIST][SIM_MAXCOPY];
	size_t                  nlist[SIM_NLIST];
	char                    trail[SIM_TRAIL][120];
	size_t                  ntrail;
	unsigned                sched;
	unsigned                step;
	struct sim_totals       tot;
};

static uint64_t   sim__seed;
static struct sim sim__s; /* large: not on the stack */
static bool       sim__trace;
static bool       sim__loose; /* without (e) */

static uint64_t
sim__mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t
sim__rand(struct sim *s, uint64_t n)
{
	s->rng = sim__mix(s->rng);
	return n == 0 ? 0 : s->rng % n;
}

static void sim__ev(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sim__ev(struct sim *s, const char *fmt, ...)
{
	char   *line = s->trail[s->ntrail++ % SIM_TRAIL];
	int     k    = snprintf(line, sizeof(s->trail[0]), "#%u t=%llu ",
				s->step, (unsigned long long)s->now);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + k, sizeof(s->trail[0]) - (size_t)k, fmt, ap);
	va_end(ap);
	if (sim__trace)
		printf("  %s\n", line);
}

static void sim__fail(struct sim *s, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static void
sim__fail(struct sim *s, int line, const char *fmt, ...)
{
	char    msg[512];
	size_t  n = s->ntrail < SIM_TRAIL ? s->ntrail : SIM_TRAIL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\norder sim FAILED (line %d): %s\n"
		"  seed %llu, schedule %u, step %u%s; %d publishers, "
		"max_streams %zu, idle %llu ms, wait %llu ms\n"
		"  repeat: MR_SIM_SEED=%llu MR_SIM_SCHEDULE=%u\n"
		"  the last %zu events:\n",
		line, msg, (unsigned long long)sim__seed, s->sched, s->step,
		s->draining ? " (drain)" : "", s->npub, s->max_streams,
		(unsigned long long)s->idle_ms,
		(unsigned long long)s->wait_ms,
		(unsigned long long)sim__seed, s->sched, n);
	for (size_t i = s->ntrail - n; i < s->ntrail; i++)
		fprintf(stderr, "    %s\n", s->trail[i % SIM_TRAIL]);
	fflush(stderr);
	ck_abort_msg("order sim: seed %llu, schedule %u, step %u: %s",
		     (unsigned long long)sim__seed, s->sched, s->step, msg);
	abort(); // not reached
}

#define SIM_CHECK(s, cond, ...)                                              \
	do {                                                                 \
		if (!(cond))                                                 \
			sim__fail((s), __LINE__, __VA_ARGS__);               \
	} while (0)

/* ---- copies and publishers ------------------------------------------- */

static void
sim__move(struct sim *s, struct sim_copy *c, enum sim_cst st)
{
	uint32_t ci = (uint32_t)(c - s->copy);

	if (c->st != SIM_FREE) {
		uint32_t last = s->list[c->st][--s->nlist[c->st]];

		s->list[c->st][c->slot] = last;
		s->copy[last].slot      = c->slot;
	}
	c->st = (uint8_t)st;
	if (st == SIM_FREE) {
		s->freel[s->nfree++] = ci;
	} else {
		c->slot                        = (uint32_t)s->nlist[st];
		s->list[st][s->nlist[st]++] = ci;
	}
}

static struct sim_copy *
sim__nth(struct sim *s, enum sim_cst st, size_t k)
{
	return &s->copy[s->list[st][k]];
}

/* The copy an item the order gave back belongs to. */
static struct sim_copy *
sim__copy_of(struct sim *s, const struct mri_order_item *it)
{
	struct sim_copy *c = it->arg;

	SIM_CHECK(s, c >= s->copy && c < s->copy + SIM_MAXCOPY &&
			     &c->it == it,
		  "(c) an item back that was never given");
	return c;
}

static void
sim__settle(struct sim_pub *pb)
{
	while (pb->base < pb->nreq &&
	       (pb->replied[pb->base] || pb->gaveup[pb->base]))
		pb->base++;
	while (pb->low < pb->nreq &&
	       (pb->handed[pb->low] || pb->gaveup[pb->low]))
		pb->low++;
}

/* Publisher \p p sends request \p idx (again), with its base now. */
static void
sim__send(struct sim *s, int p, uint32_t idx)
{
	struct sim_pub  *pb = &s->pub[p];
	struct sim_copy *c;

	SIM_CHECK(s, s->nfree > 0, "model too small: copies");
	c = &s->copy[s->freel[--s->nfree]];
	memset(c, 0, sizeof(*c));
	c->pub       = (uint8_t)p;
	c->idx       = idx;
	c->base      = pb->first + pb->base;
	c->epoch     = pb->epoch;
	c->it.stream = pb->stream;
	c->it.seq    = pb->first + idx;
	c->it.arg    = c;
	sim__move(s, c, SIM_SENT);
	sim__ev(s, "P%d sends %u base %u (conn %u)", p, idx, pb->base,
		pb->epoch);
}

static bool
sim__can_send(const struct sim *s, int p)
{
	const struct sim_pub *pb = &s->pub[p];

	return pb->nreq < pb->total && pb->nreq - pb->base < pb->window &&
	       s->nfree > SIM_MAXREQ;
}

static void
sim__send_new(struct sim *s, int p)
{
	sim__send(s, p, s->pub[p].nreq++);
}

/* What the order handed off, in \p l: checks (a) and (b). */
static void
sim__handoffs(struct sim *s, struct mri_order_item *l, uint64_t stream,
	      const char *from)
{
	while (l != NULL) {
		struct mri_order_item *it = l;
		struct sim_copy       *c  = sim__copy_of(s, it);
		struct sim_pub        *pb = &s->pub[c->pub];
		uint32_t               i  = c->idx;

		l = it->next;
		SIM_CHECK(s, c->st == SIM_PARKED,
			  "(c) %s gave back P%d %u, %s", from, c->pub, i,
			  sim__cst_names[c->st]);
		SIM_CHECK(s, it->stream == stream,
			  "%s on stream %llx gave back P%d %u", from,
			  (unsigned long long)stream, c->pub, i);
		sim__ev(s, "  P%d %u handed off%s", c->pub, i,
			it->turn ? " with the turn" : "");
		if (it->turn) {
			SIM_CHECK(s, pb->turn < 0,
				  "(a) P%d: %u takes the turn, %u holds it",
				  c->pub, i, s->copy[pb->turn].idx);
			SIM_CHECK(s, !pb->had_turn || i > pb->last_turn,
				  "(b) P%d: the turn goes to %u after %u, in "
				  "one life of the stream",
				  c->pub, i, pb->last_turn);
			pb->turn      = (int32_t)(c - s->copy);
			pb->had_turn  = true;
			pb->last_turn = i;
			s->tot.turns++;
		} else {
			SIM_CHECK(s, pb->handed[i] || pb->gaveup[i],
				  "(b) P%d: %u handed off without the turn, "
				  "never handed off before",
				  c->pub, i);
			s->tot.resends++;
		}
		if (pb->handed[i]) {
			s->tot.again++;
		} else {
			SIM_CHECK(s, i <= pb->low,
				  "(b) P%d: %u handed off first, before %u",
				  c->pub, i, pb->low);
			pb->handed[i] = true;
			sim__settle(pb);
		}
		pb->parked--;
		sim__move(s, c, SIM_OUT);
	}
}

/* ---- events ---------------------------------------------------------- */

static void
sim__deliver(struct sim *s, struct sim_copy *c)
{
	struct sim_pub        *pb   = &s->pub[c->pub];
	uint32_t               bidx = c->base - pb->first;
	bool                   full = true;
	struct mri_order_item *l;

	sim__ev(s, "P%d %u arrives, base %u (conn %u)", c->pub, c->idx, bidx,
		c->epoch);
	if (!pb->known) {
		pb->known    = true;
		pb->had_turn = false;
		pb->maxbase  = bidx;
	} else if (bidx > pb->maxbase) {
		pb->maxbase = bidx;
	}
	pb->parked++;
	pb->used = s->now;
	c->at    = s->now;
	sim__move(s, c, SIM_PARKED);
	l = mri_order_arrive(s->o, &c->it, c->base, s->now, &full);
	SIM_CHECK(s, !full, "P%d: full, with room for every stream", c->pub);
	s->tot.arrivals++;
	sim__handoffs(s, l, pb->stream, "arrive");
}

/* A hand-off completes; its reply reaches the publisher if its connection
 * is still up. */
static void
sim__complete(struct sim *s, struct sim_copy *c)
{
	struct sim_pub        *pb   = &s->pub[c->pub];
	bool                   turn = c->it.turn;
	struct mri_order_item *l;

	sim__ev(s, "P%d %u completes%s (conn %u)", c->pub, c->idx,
		turn ? ", with the turn" : "", c->epoch);
	if (turn) {
		pb->turn = -1;
		pb->used = s->now;
	}
	l = mri_order_done(s->o, &c->it, s->now);
	SIM_CHECK(s, turn || l == NULL,
		  "P%d: done on %u, without the turn, gave some back", c->pub,
		  c->idx);
	if (c->epoch == pb->epoch) {
		pb->replied[c->idx] = true;
		sim__settle(pb);
	}
	sim__move(s, c, SIM_FREE);
	s->tot.completions++;
	sim__handoffs(s, l, pb->stream, "done");
}

static void
sim__conn_loss(struct sim *s, int p)
{
	struct sim_pub *pb = &s->pub[p];

	sim__ev(s, "P%d loses its connection %u", p, pb->epoch);
	pb->epoch++;
	// The front door drops some of what it had not given to the order.
	for (size_t k = s->nlist[SIM_SENT]; k-- > 0;) {
		struct sim_copy *c = sim__nth(s, SIM_SENT, k);

		if (c->pub == p && sim__rand(s, 2) == 0)
			sim__move(s, c, SIM_FREE);
	}
	for (uint32_t i = pb->base; i < pb->nreq; i++)
		if (!pb->replied[i] && !pb->gaveup[i])
			sim__send(s, p, i);
	s->tot.losses++;
}

/* Forget checks after an expire: (f). */
static void
sim__forgotten(struct sim *s)
{
	struct mri_order_stats st;
	size_t                 known = 0, idle = 0;

	for (int p = 0; p < s->npub; p++) {
		const struct sim_pub *pb = &s->pub[p];

		known += pb->known;
		idle += pb->known && pb->turn < 0 && pb->parked == 0 &&
			s->now - pb->used >= s->idle_ms;
	}
	mri_order_stats(s->o, &st);
	SIM_CHECK(s, st.streams == known || st.streams == known - idle,
		  "(f) %zu streams after expire; %zu known, %zu of them idle",
		  st.streams, known, idle);
	if (idle == 0 || st.streams == known)
		return;
	for (int p = 0; p < s->npub; p++) {
		struct sim_pub *pb = &s->pub[p];

		if (pb->known && pb->turn < 0 && pb->parked == 0 &&
		    s->now - pb->used >= s->idle_ms) {
			sim__ev(s, "P%d's stream forgotten", p);
			pb->known = false;
			s->tot.forgotten++;
		}
	}
}

static void
sim__expire(struct sim *s, uint64_t wait)
{
	struct mri_order_item *l;
	size_t                 want = 0, got = 0;

	for (size_t k = 0; k < s->nlist[SIM_PARKED]; k++)
		want += s->now - sim__nth(s, SIM_PARKED, k)->at >= wait;
	l = mri_order_expire(s->o, s->now, wait);
	sim__ev(s, "expire, wait %llu: %zu parked that long",
		(unsigned long long)wait, want);
	while (l != NULL) {
		struct mri_order_item *it = l;
		struct sim_copy       *c  = sim__copy_of(s, it);
		struct sim_pub        *pb = &s->pub[c->pub];
		int                    p  = c->pub;

		l = it->next;
		SIM_CHECK(s, c->st == SIM_PARKED,
			  "(c) expire gave back P%d %u, %s", p, c->idx,
			  sim__cst_names[c->st]);
		SIM_CHECK(s, s->now - c->at >= wait,
			  "(c) expire took back P%d %u, parked %llu ms",
			  p, c->idx, (unsigned long long)(s->now - c->at));
		SIM_CHECK(s, !it->turn, "expire: P%d %u has the turn", p,
			  c->idx);
		sim__ev(s, "  P%d %u refused", p, c->idx);
		got++;
		pb->parked--;
		s->expired++;
		// Refused: sent again, or given up on, unless the
		// connection that sent it is gone (then it was sent again).
		if (c->epoch == pb->epoch && !s->draining &&
		    sim__rand(s, 8) == 0) {
			sim__ev(s, "  P%d gives up on %u", p, c->idx);
			pb->gaveup[c->idx] = true;
			sim__settle(pb);
			s->tot.gaveup++;
		} else if (c->epoch == pb->epoch) {
			sim__send(s, p, c->idx);
		}
		sim__move(s, c, SIM_FREE);
	}
	SIM_CHECK(s, got == want, "(c) expire, wait %llu, took back %zu; %zu "
				  "were parked that long",
		  (unsigned long long)wait, got, want);
	s->tot.expired += got;
	sim__forgotten(s);
}

static void
sim__tick(struct sim *s)
{
	uint64_t d;

	switch (sim__rand(s, 16)) {
	case 0:
		d = s->idle_ms + sim__rand(s, 2 * s->idle_ms);
		break;
	case 1:
	case 2:
		d = sim__rand(s, 2 * s->wait_ms);
		break;
	default:
		d = sim__rand(s, 20);
		break;
	}
	s->now += d;
	sim__ev(s, "%llu ms pass", (unsigned long long)d);
}

/* ---- the checks after every step -------------------------------------- */

static void
sim__check(struct sim *s)
{
	struct mri_order_stats st;
	size_t                 known = 0, parked = 0;
	uint32_t               np[SIM_MAXPUB] = {0};

	for (int p = 0; p < s->npub; p++) {
		known += s->pub[p].known;
		parked += s->pub[p].parked;
	}
	for (size_t k = 0; k < s->nlist[SIM_PARKED]; k++) {
		const struct sim_copy *c  = sim__nth(s, SIM_PARKED, k);
		const struct sim_pub  *pb = &s->pub[c->pub];
		uint32_t               floor;

		np[c->pub]++;
		SIM_CHECK(s, pb->known, "P%d %u parked, stream forgotten",
			  c->pub, c->idx);
		if (pb->turn >= 0) {
			SIM_CHECK(s, c->idx >= s->copy[pb->turn].idx,
				  "(e) P%d: %u parked, %u holds the turn",
				  c->pub, c->idx, s->copy[pb->turn].idx);
			continue;
		}
		if (sim__loose)
			continue;
		floor = pb->maxbase;
		if (pb->had_turn && pb->last_turn + 1 > floor)
			floor = pb->last_turn + 1;
		SIM_CHECK(s, c->idx > floor,
			  "(e) P%d: %u parked, no turn taken; bases up to %u "
			  "arrived, the last turn was %d",
			  c->pub, c->idx, pb->maxbase,
			  pb->had_turn ? (int)pb->last_turn : -1);
	}
	for (int p = 0; p < s->npub; p++)
		SIM_CHECK(s, np[p] == s->pub[p].parked, "model: P%d parked",
			  p);
	mri_order_stats(s->o, &st);
	SIM_CHECK(s, st.parked == parked && parked == s->nlist[SIM_PARKED],
		  "(d) stats: %zu parked, model %zu", st.parked, parked);
	SIM_CHECK(s, st.streams == known, "(d) stats: %zu streams, model %zu",
		  st.streams, known);
	SIM_CHECK(s, st.expired == s->expired,
		  "(d) stats: %llu expired, model %llu",
		  (unsigned long long)st.expired,
		  (unsigned long long)s->expired);
}

/* One random event; false if it could not happen now. */
static bool
sim__event(struct sim *s)
{
	int      p = (int)sim__rand(s, (uint64_t)s->npub);
	uint64_t w = sim__rand(s, 100);

	if (w < 22) {
		if (!sim__can_send(s, p))
			return false;
		sim__send_new(s, p);
	} else if (w < 52) {
		if (s->nlist[SIM_SENT] == 0)
			return false;
		sim__deliver(s, sim__nth(s, SIM_SENT,
					 sim__rand(s, s->nlist[SIM_SENT])));
	} else if (w < 77) {
		if (s->nlist[SIM_OUT] == 0)
			return false;
		sim__complete(s, sim__nth(s, SIM_OUT,
					  sim__rand(s, s->nlist[SIM_OUT])));
	} else if (w < 79) {
		if (s->nfree < 2 * SIM_MAXREQ)
			return false;
		sim__conn_loss(s, p);
	} else if (w < 84) {
		sim__expire(s, s->wait_ms);
	} else if (w < 85) {
		sim__expire(s, 0);
	} else {
		sim__tick(s);
	}
	return true;
}

/* ---- a schedule ------------------------------------------------------ */

/* Without faults: send, deliver and complete everything. */
static void
sim__drain(struct sim *s)
{
	struct mri_order_stats st;

	s->draining = true;
	sim__ev(s, "DRAIN");
	for (unsigned round = 0;; round++) {
		bool progress = false;

		SIM_CHECK(s, round < 10000, "drain makes no end");
		s->step++;
		for (int p = 0; p < s->npub; p++) {
			while (sim__can_send(s, p)) {
				sim__send_new(s, p);
				progress = true;
			}
		}
		while (s->nlist[SIM_SENT] > 0) {
			size_t k = sim__rand(s, s->nlist[SIM_SENT]);

			sim__deliver(s, sim__nth(s, SIM_SENT, k));
			sim__check(s);
			progress = true;
		}
		while (s->nlist[SIM_OUT] > 0) {
			size_t k = sim__rand(s, s->nlist[SIM_OUT]);

			sim__complete(s, sim__nth(s, SIM_OUT, k));
			sim__check(s);
			progress = true;
		}
		if (progress)
			continue;
		if (s->nlist[SIM_PARKED] == 0)
			break;
		// Stalled, as (e) allows: waiting for what will not come.
		s->now += s->wait_ms;
		sim__expire(s, s->wait_ms);
		sim__check(s);
		s->tot.stalls++;
	}
	for (int p = 0; p < s->npub; p++) {
		const struct sim_pub *pb = &s->pub[p];

		SIM_CHECK(s, pb->nreq == pb->total && pb->base == pb->total,
			  "(g) P%d: %u of %u sent, base %u", p, pb->nreq,
			  pb->total, pb->base);
		for (uint32_t i = 0; i < pb->total; i++)
			SIM_CHECK(s, pb->gaveup[i] ||
					     (pb->replied[i] && pb->handed[i]),
				  "(g) P%d: %u never replied to", p, i);
	}
	mri_order_stats(s->o, &st);
	SIM_CHECK(s, st.parked == 0, "(g) %zu parked after the drain",
		  st.parked);
}

static void
sim__schedule(struct sim *s, unsigned sched)
{
	unsigned steps;
	int      rc;

	memset(s->pub, 0, sizeof(s->pub));
	memset(s->nlist, 0, sizeof(s->nlist));
	s->nfree = 0;
	for (uint32_t i = SIM_MAXCOPY; i-- > 0;) {
		s->copy[i].st        = SIM_FREE;
		s->freel[s->nfree++] = i;
	}
	s->rng         = sim__mix(sim__seed ^ sim__mix(sched));
	s->sched       = sched;
	s->step        = 0;
	s->ntrail      = 0;
	s->expired     = 0;
	s->draining    = false;
	s->now         = sim__rand(s, 1u << 20);
	s->npub        = 1 + (int)sim__rand(s, SIM_MAXPUB);
	s->max_streams = (size_t)s->npub + sim__rand(s, 3);
	s->idle_ms     = 200 + sim__rand(s, 3000);
	s->wait_ms     = 20 + sim__rand(s, 500);
	steps          = 200 + (unsigned)sim__rand(s, 201);
	for (int p = 0; p < s->npub; p++) {
		struct sim_pub *pb = &s->pub[p];

		pb->stream = sim__mix(s->rng + (uint64_t)p);
		switch (sim__rand(s, 3)) {
		case 0:
			pb->first = 0;
			break;
		case 1: // across the wrap
			pb->first = 0xffffffffu - (uint32_t)sim__rand(s, 64);
			break;
		default:
			pb->first = (uint32_t)sim__rand(s, 1ULL << 32);
			break;
		}
		pb->window = 1 + (uint32_t)sim__rand(s, 8);
		pb->total  = 10 + (uint32_t)sim__rand(s, SIM_MAXREQ - 9);
		pb->turn   = -1;
	}
	rc = mri_order_new(&s->o, s->max_streams, s->idle_ms);
	SIM_CHECK(s, rc == MR_OK, "mri_order_new: %d", rc);
	for (s->step = 1; s->step <= steps; s->step++) {
		for (int tries = 0; tries < 20 && !sim__event(s); tries++)
			;
		sim__check(s);
	}
	sim__drain(s);
	mri_order_free(s->o);
	s->o = NULL;
	s->tot.schedules++;
	s->tot.steps += steps;
}

START_TEST(test_sim)
{
	struct sim *s     = &sim__s;
	const char *only  = getenv("MR_SIM_SCHEDULE");
	const char *count = getenv("MR_SIM_SCHEDULES");
	unsigned    n     = SIM_SCHEDULES;

	memset(&s->tot, 0, sizeof(s->tot));
	if (count != NULL && count[0] != '\0')
		n = (unsigned)strtoul(count, NULL, 10);
	if (only != NULL && only[0] != '\0') {
		sim__schedule(s, (unsigned)strtoul(only, NULL, 10));
	} else {
		for (unsigned i = 0; i < n; i++)
			sim__schedule(s, i);
	}
	printf("order sim: seed %llu, %llu schedules, %llu steps, %llu "
	       "arrivals, %llu hand-offs with the turn, %llu without (%llu "
	       "of a seq again), %llu completed, %llu connections lost, "
	       "%llu expired, %llu given up, %llu streams forgotten, %llu "
	       "stalls in drains\n",
	       (unsigned long long)sim__seed,
	       (unsigned long long)s->tot.schedules,
	       (unsigned long long)s->tot.steps,
	       (unsigned long long)s->tot.arrivals,
	       (unsigned long long)s->tot.turns,
	       (unsigned long long)s->tot.resends,
	       (unsigned long long)s->tot.again,
	       (unsigned long long)s->tot.completions,
	       (unsigned long long)s->tot.losses,
	       (unsigned long long)s->tot.expired,
	       (unsigned long long)s->tot.gaveup,
	       (unsigned long long)s->tot.forgotten,
	       (unsigned long long)s->tot.stalls);
	fflush(stdout);
}
END_TEST

static Suite *
ot__suite(void)
{
	Suite *s   = suite_create("order_sim");
	TCase *sim = tcase_create("sim");

	// A bound for sanitizer builds; a plain run takes a few seconds.
	tcase_set_timeout(sim, 120);
	tcase_add_test(sim, test_sim);
	suite_add_tcase(s, sim);
	return s;
}

int
main(void)
{
	const char *env   = getenv("MR_SIM_SEED");
	const char *trace = getenv("MR_SIM_TRACE");
	const char *loose = getenv("MR_SIM_LOOSE");
	SRunner    *r;
	int         failed;

	if (env != NULL && env[0] != '\0')
		sim__seed = strtoull(env, NULL, 10);
	else if (getrandom(&sim__seed, sizeof(sim__seed), 0) !=
		 (ssize_t)sizeof(sim__seed))
		sim__seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	sim__trace = trace != NULL && trace[0] == '1';
	sim__loose = loose != NULL && loose[0] == '1';
	printf("order sim: seed %llu (MR_SIM_SEED=%llu repeats it)%s\n",
	       (unsigned long long)sim__seed, (unsigned long long)sim__seed,
	       sim__loose ? ", without (e)" : "");
	fflush(stdout);
	r = srunner_create(ot__suite());
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
