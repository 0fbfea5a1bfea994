/*
 * A seeded random simulation of consumers/engine.c, the delivery engine,
 * against a model of Kafka and of the engine's caller (engine_sim.h; the
 * model's bookkeeping and the checks are in engine_sim.c).
 *
 * Kafka is 1-4 partitions, each a log of records (keys 1-8, some keyless,
 * offsets with gaps), a committed offset and the list of offsets acked
 * beyond it that the caller keeps with each commit. The caller fetches
 * from Kafka by arriving the next records of its partitions (pausing while
 * mri_engine_full), persists attempt counts when records are handed out,
 * keeps some acks in a dedupe store, quarantines the exhausted records it
 * takes (which may fail) and sets the in-flight limit as the supervisor's
 * breaker does. Each schedule draws its retry policy: max_attempts 0
 * (unlimited) or 1-5, backoff_initial 0 or 1-50 ms, a cap, a multiplier
 * and a jitter. Random events: appends, arrivals, sessions opening,
 * fetching, acking, nacking, rejecting, extending and crashing, time
 * passing (at random, or through the backoff dues that
 * mri_engine_next_due tells), takes of exhausted records and the end of
 * their quarantine (done or failed), limits (0, 1, 2, none), commits,
 * revokes and reassigns, and whole-consumer crashes (the engine is dropped
 * and rebuilt from what was last committed), whatever state the records
 * are in.
 *
 * Checked after every step: (a) nothing is committable or committed past
 * a record that was never acked (a record being quarantined, or whose
 * quarantine failed, is not acked; a quarantined one is); (b) ordering:
 * in key mode nothing is handed out (or taken for quarantine) while an
 * earlier record of its key is unacked, in partition mode while an
 * earlier record of its partition is; (c) attempts go up by one per
 * delivery of a record (the count is durable, so across engines too);
 * (d) credits; (h) a record that failed is neither handed out nor taken
 * before its due time: the model knows its delay within the jitter's
 * bounds, (1 -/+ jitter) * min(max, initial * multiplier^(n-1)), rounded,
 * and checks mri_engine_next_due against them; (i) what is ready goes
 * out: a fetch (or a take) that could have given more leaves nothing
 * ready (or exhausted) behind, so a record backing off holds back only
 * its key (in unordered mode only itself); (j) a record is handed out for
 * at most max_attempts attempts, counted across engines: rejected, or its
 * attempts spent (on arrival too), it is exhausted and only taken for
 * quarantine; (k) a fetch never takes what is in flight over all sessions
 * past the limit (what was out when it dropped stays out); (l) the
 * observer is told once of each failed attempt, with its reason and
 * attempt, and of nothing else; (m) the engine's stats (in flight, held,
 * ready, backing off, exhausted, being quarantined, acked, failed),
 * committable, acked_beyond and full against the model. At the end of
 * each schedule a drain without faults acks everything and quarantines
 * what is exhausted; then (e) every record was acked or quarantined, (f)
 * everything is committable, and, checked on each delivery and take, (g)
 * a record kept as acked with a commit is never delivered again.
 *
 * The seed is printed; MR_SIM_SEED repeats a run, MR_SIM_SCHEDULE=i runs
 * only schedule i of it, MR_SIM_SCHEDULES sets how many, MR_SIM_TRACE=1
 * prints every event. MR_SIM_LOOSE=1 checks only the properties (a)-(l),
 * without comparing committable, acked_beyond, full and stats to the
 * model (m): to see that the properties alone catch a fault.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "consumers/engine.h"
#include "consumers/engine_sim.h"
#include "mailroom/error.h"

static struct sim sim__s; /* large: not on the stack */

/* The engine's counts for what a fetch or a take must return:
 * sim__check proved them equal to the model after the last step (or
 * told apart by them what the model could not), and nothing changed
 * since. */
static struct mri_engine_stats
sim__stats(struct sim *s)
{
	struct mri_engine_stats st;

	mri_engine_stats(s->e, &st);
	return st;
}

static size_t
sim__min(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- events ---------------------------------------------------------- */

static void
sim__append(struct sim *s, int32_t p, size_t k)
{
	struct sim_part *pt = &s->part[p];

	for (; k > 0 && pt->n < SIM_MAXLOG; k--) {
		struct sim_rec *r = &pt->rec[pt->n++];

		memset(r, 0, sizeof(*r));
		// Offsets have gaps: compaction, transaction markers.
		r->offset = pt->next + (sim__rand(s, 5) == 0
						? (int64_t)sim__rand(s, 3) + 1
						: 0);
		pt->next   = r->offset + 1;
		r->keyless = sim__rand(s, 6) == 0;
		r->key     = 1 + sim__rand(s, SIM_KEYS);
		sim__ev(s, "kafka p%d +%lld key %s%llu", p,
			(long long)r->offset, r->keyless ? "none/" : "",
			(unsigned long long)r->key);
	}
}

/* The caller fetches from Kafka: up to \p k records, pausing when full. */
static void
sim__arrive(struct sim *s, int32_t p, size_t k)
{
	struct sim_part *pt = &s->part[p];

	for (; k > 0 && pt->pos < pt->n; k--) {
		struct sim_rec *r = &pt->rec[pt->pos];
		// A keyless record's hash is noise: it must not matter.
		uint64_t hash = r->keyless ? sim__rand(s, 4)
					   : r->key * 0x100000001b3ULL;
		int      rc;

		if (mri_engine_full(s->e, p)) {
			s->tot.paused++;
			break;
		}
		rc = mri_engine_arrive(s->e, p, r->offset, hash, r->keyless,
				       r->attempts, r->dedupe,
				       sim__opaque(p, r->offset));
		// Acked already (the dedupe store or the kept list): not held.
		SIM_CHECK(s, rc == (r->dedupe || r->listed ? MRI_ENGINE_NOT_HELD
							   : MR_OK),
			  "arrive p%d@%lld: %d", p, (long long)r->offset, rc);
		r->st = r->dedupe || r->listed ? SIM_PREACKED : SIM_WAIT;
		sim__ev(s, "arrive p%d@%lld attempts %u%s%s", p,
			(long long)r->offset, r->attempts,
			r->dedupe ? " dedupe" : "", r->listed ? " kept" : "");
		s->tot.kept_skipped += r->listed;
		s->tot.spent_on_arrival +=
		    r->st == SIM_WAIT && sim__spent(s, r);
		pt->pos++;
	}
}

static void
sim__fetch(struct sim *s, uint32_t sid, size_t max)
{
	struct mri_delivery out[SIM_FETCHMAX];
	size_t              ready = sim__stats(s).ready, room, lroom, want, n;

	room  = s->conf.session_credit - s->used[sid];
	lroom = s->limit > s->nfl ? s->limit - s->nfl : 0;
	want  = sim__min(sim__min(max, room), sim__min(lroom, ready));
	n     = mri_engine_fetch(s->e, sid, s->now, out, max);
	sim__ev(s, "fetch s%u max %zu: %zu", sid, max, n);
	SIM_CHECK(s, n <= lroom,
		  "(k) fetch s%u gave %zu with %zu in flight, limit %zu", sid,
		  n, s->nfl, s->limit);
	SIM_CHECK(s, n == want || (sim__loose && n <= max && n <= room),
		  "(d) fetch s%u max %zu gave %zu; credit left %zu, limit "
		  "room %zu, ready %zu",
		  sid, max, n, room, lroom, ready);
	s->tot.held_by_limit += lroom == 0 && ready > 0 && room > 0;
	for (size_t i = 0; i < n; i++)
		sim__delivered(s, sid, &out[i]);
	if (n < max && n < room && n < lroom)
		sim__nothing_left(s, false);
}

static void
sim__ack(struct sim *s, size_t i)
{
	struct sim_flight f = s->fl[i];
	struct sim_rec   *r = &s->part[f.p].rec[f.idx];
	void             *op = NULL;
	int               rc = mri_engine_ack(s->e, f.handle, &op);

	sim__ev(s, "ack p%d@%lld h=%llx", f.p, (long long)r->offset,
		(unsigned long long)f.handle);
	SIM_CHECK(s, rc == MR_OK, "ack p%d@%lld: %d", f.p,
		  (long long)r->offset, rc);
	SIM_CHECK(s, op == sim__opaque(f.p, r->offset), "ack: wrong opaque");
	r->acked_ever = true;
	r->dedupe     = r->dedupe || sim__rand(s, 4) == 0;
	sim__flight_drop(s, i, SIM_ACKED);
	s->acked++;
	s->tot.acks++;
}

/* A nack of in-flight entry \p i, or with \p final a reject. */
static void
sim__nack(struct sim *s, size_t i, bool final)
{
	struct sim_flight f = s->fl[i];
	int rc = mri_engine_nack(s->e, f.handle, s->now, final);

	sim__ev(s, "%s p%d@%lld", final ? "reject" : "nack", f.p,
		(long long)s->part[f.p].rec[f.idx].offset);
	SIM_CHECK(s, rc == MR_OK, "nack: %d", rc);
	sim__flight_failed(s, i, final ? MRI_ENGINE_REJECTED
				       : MRI_ENGINE_NACKED);
	if (final)
		s->tot.rejects++;
	else
		s->tot.nacks++;
}

/* The caller takes up to \p max exhausted records for quarantine. */
static void
sim__take(struct sim *s, size_t max)
{
	struct mri_delivery out[SIM_TAKEMAX];
	size_t              want = sim__min(max, sim__stats(s).exhausted), n;

	n = mri_engine_take_exhausted(s->e, out, max);
	sim__ev(s, "take exhausted max %zu: %zu", max, n);
	SIM_CHECK(s, n == want || (sim__loose && n <= max),
		  "take max %zu gave %zu; exhausted %zu", max, n, want);
	for (size_t i = 0; i < n; i++)
		sim__taken(s, &out[i]);
	if (n < max)
		sim__nothing_left(s, true);
}

/* The quarantine of entry \p i is over: in the dead-letter topic if
 * \p ok, else it failed (the record backs off to be taken again). */
static void
sim__quarantined(struct sim *s, size_t i, bool ok)
{
	struct sim_flight q  = s->qu[i];
	struct sim_rec   *r  = &s->part[q.p].rec[q.idx];
	void             *op = NULL;
	int               rc;

	rc = mri_engine_quarantined(s->e, q.handle, ok, s->now, &op);
	sim__ev(s, "quarantine of p%d@%lld %s", q.p, (long long)r->offset,
		ok ? "done" : "FAILED");
	SIM_CHECK(s, rc == MR_OK, "quarantined p%d@%lld: %d", q.p,
		  (long long)r->offset, rc);
	SIM_CHECK(s, op == sim__opaque(q.p, r->offset),
		  "quarantined: wrong opaque");
	sim__quarantine_drop(s, i);
	if (ok) {
		r->st          = SIM_ACKED;
		r->acked_ever  = true;
		r->quarantined = true;
		r->dedupe      = r->dedupe || sim__rand(s, 4) == 0;
		s->acked++;
		s->tot.quarantined++;
	} else {
		sim__backoff(s, r, true);
		s->tot.quarantine_failed++;
	}
}

static void
sim__set_limit(struct sim *s)
{
	static const size_t limits[] = {0, 1, 2, SIZE_MAX, SIZE_MAX,
					SIZE_MAX};

	s->limit = limits[sim__rand(s, 6)];
	mri_engine_set_limit(s->e, s->limit);
	sim__ev(s, "limit %zu", s->limit);
	s->tot.limits++;
}

static void
sim__commit_all(struct sim *s)
{
	int64_t kept[SIM_MAXLOG];

	for (int32_t p = 0; p < s->np; p++) {
		size_t n;

		if (!s->part[p].assigned)
			continue;
		n = mri_engine_acked_beyond(s->e, p, kept, SIM_MAXLOG);
		sim__store(s, p, mri_engine_committable(s->e, p), kept, n);
	}
}

/* Revoked: what was in flight, backing off, exhausted or being
 * quarantined is dropped, and no attempt failed. */
static void
sim__revoke(struct sim *s, int32_t p)
{
	int64_t kept[SIM_MAXLOG], commit = -1,
		want = mri_engine_committable(s->e, p);
	size_t  n = mri_engine_acked_beyond(s->e, p, kept, SIM_MAXLOG);
	int     rc = mri_engine_revoke(s->e, p, &commit);

	sim__ev(s, "revoke p%d: commit %lld, %zu kept", p, (long long)commit,
		n);
	SIM_CHECK(s, rc == MR_OK && commit == want,
		  "revoke p%d: %d, commit %lld, committable was %lld", p, rc,
		  (long long)commit, (long long)want);
	sim__store(s, p, commit, kept, n);
	for (size_t i = s->nfl; i-- > 0;)
		if (s->fl[i].p == p)
			sim__flight_drop(s, i, SIM_NONE);
	for (size_t i = s->nqu; i-- > 0;)
		if (s->qu[i].p == p)
			sim__quarantine_drop(s, i);
	sim__epoch_end(s, p);
	s->tot.revokes++;
}

/* A session ends holding records: each of them failed that attempt. */
static void
sim__session_close(struct sim *s, int k)
{
	uint32_t sid = s->sids[k];

	sim__ev(s, "session s%u crashes", sid);
	mri_engine_session_close(s->e, sid, s->now);
	for (size_t i = s->nfl; i-- > 0;)
		if (s->fl[i].sid == sid)
			sim__flight_failed(s, i, MRI_ENGINE_ABANDONED);
	SIM_CHECK(s, s->used[sid] == 0, "model: session credit");
	s->sids[k] = s->sids[--s->nsids];
	s->tot.closes++;
}

static void
sim__session_open(struct sim *s)
{
	uint32_t sid = UINT32_MAX;
	int      rc  = mri_engine_session_open(s->e, &sid);

	SIM_CHECK(s, rc == MR_OK && sid < SIM_MAXSID, "session_open: %d, %u",
		  rc, sid);
	for (int i = 0; i < s->nsids; i++)
		SIM_CHECK(s, s->sids[i] != sid, "session %u opened twice",
			  sid);
	sim__ev(s, "session s%u opens", sid);
	s->sids[s->nsids++] = sid;
	s->used[sid]        = 0;
}

static void
sim__engine_new(struct sim *s)
{
	int rc = mri_engine_new(&s->e, &s->conf);

	SIM_CHECK(s, rc == MR_OK, "engine_new: %d", rc);
	mri_engine_observe(s->e, sim__observe, s);
	s->limit  = SIZE_MAX;
	s->failed = 0;
	s->acked  = 0;
}

/* The whole consumer dies: all that survives is in Kafka. */
static void
sim__crash(struct sim *s)
{
	sim__ev(s, "CONSUMER CRASH");
	mri_engine_free(s->e);
	sim__engine_new(s);
	s->nfl    = 0;
	s->nqu    = 0;
	s->nsids  = 0;
	s->nstale = 0; // handles of another engine mean nothing here
	memset(s->used, 0, sizeof(s->used));
	for (int32_t p = 0; p < s->np; p++) {
		if (!s->part[p].assigned)
			continue;
		sim__epoch_end(s, p);
		sim__assign(s, p);
	}
	s->tot.crashes++;
}

/* Time passes to \p to: deliveries past their deadline expire (each a
 * failed attempt), records due are ready again. */
static void
sim__tick_to(struct sim *s, uint64_t to)
{
	uint64_t due  = mri_engine_next_due(s->e);
	size_t   want = 0, got;

	s->now = to > s->now ? to : s->now;
	if (due <= s->now)
		sim__pin(s, due);
	for (size_t i = 0; i < s->nfl; i++)
		want += s->fl[i].deadline <= s->now;
	got = mri_engine_tick(s->e, s->now);
	sim__ev(s, "tick: %zu expire (next due was %llu)", got,
		(unsigned long long)due);
	SIM_CHECK(s, got == want, "tick at %llu: %zu expired, model %zu",
		  (unsigned long long)s->now, got, want);
	for (size_t i = s->nfl; i-- > 0;)
		if (s->fl[i].deadline <= s->now)
			sim__flight_failed(s, i, MRI_ENGINE_EXPIRED);
	s->tick_at = s->now;
	s->tot.expiries += got;
}

static void
sim__tick(struct sim *s)
{
	uint64_t d = s->conf.ack_deadline_ms, to = s->now;
	uint64_t due = mri_engine_next_due(s->e);

	switch (sim__rand(s, 8)) {
	case 0:
		break;
	case 1:
		to += sim__rand(s, d / 2 + 1);
		break;
	case 2:
	case 3:
		to += sim__rand(s, 2 * d + 1);
		break;
	default:
		// Through the backoff dues: just before one, at it, after.
		if (due == UINT64_MAX)
			to += sim__rand(s, d / 2 + 1);
		else
			to = due - 1 + sim__rand(s, 3) +
			     (sim__rand(s, 4) == 0 ? sim__rand(s, 20) : 0);
		break;
	}
	sim__tick_to(s, to);
}

/* Refused calls (a stale handle, a handle of the wrong kind, a partition
 * that is not ours) change nothing. */
static void
sim__bad_call(struct sim *s)
{
	struct mri_engine_stats a, b;
	struct mri_delivery     d;
	int32_t                 p  = (int32_t)sim__rand(s, (uint64_t)s->np);
	struct sim_part        *pt = &s->part[p];
	uint64_t                due = mri_engine_next_due(s->e);
	int                     rc;

	mri_engine_stats(s->e, &a);
	if (s->nstale > 0 && sim__rand(s, 2) == 0) {
		uint64_t h = s->stale[sim__rand(s, s->nstale)];

		switch (sim__rand(s, 5)) {
		case 0:
			rc = mri_engine_ack(s->e, h, NULL);
			break;
		case 1:
			rc = mri_engine_nack(s->e, h, s->now,
					     sim__rand(s, 2) == 0);
			break;
		case 2:
			rc = mri_engine_extend(s->e, h, s->now, 1);
			break;
		case 3:
			rc = mri_engine_peek(s->e, h, &d);
			break;
		default:
			rc = mri_engine_quarantined(s->e, h,
						    sim__rand(s, 2) == 0,
						    s->now, NULL);
			break;
		}
		sim__ev(s, "stale h=%llx: %d", (unsigned long long)h, rc);
		SIM_CHECK(s, rc == MR_ENOENT, "stale handle %llx: %d",
			  (unsigned long long)h, rc);
		s->tot.stale++;
	} else if (s->nqu > 0 && sim__rand(s, 3) == 0) {
		// Being quarantined is not being delivered.
		uint64_t h = s->qu[sim__rand(s, s->nqu)].handle;

		SIM_CHECK(s, mri_engine_ack(s->e, h, NULL) == MR_ENOENT &&
				     mri_engine_nack(s->e, h, s->now,
						     false) == MR_ENOENT &&
				     mri_engine_extend(s->e, h, s->now, 1) ==
					 MR_ENOENT &&
				     mri_engine_peek(s->e, h, &d) == MR_ENOENT,
			  "a quarantine's handle %llx taken for a delivery",
			  (unsigned long long)h);
		sim__ev(s, "quarantine's h=%llx as a delivery's",
			(unsigned long long)h);
	} else if (s->nfl > 0 && sim__rand(s, 3) == 0) {
		uint64_t h = s->fl[sim__rand(s, s->nfl)].handle;

		rc = mri_engine_quarantined(s->e, h, sim__rand(s, 2) == 0,
					    s->now, NULL);
		sim__ev(s, "delivery's h=%llx as a quarantine's: %d",
			(unsigned long long)h, rc);
		SIM_CHECK(s, rc == MR_ENOENT,
			  "a delivery's handle %llx taken for a quarantine's: "
			  "%d",
			  (unsigned long long)h, rc);
	} else if (!pt->assigned) {
		rc = mri_engine_arrive(s->e, p, pt->next, 1, false, 0, false,
				       NULL);
		SIM_CHECK(s, rc == MR_ENOENT, "arrive on p%d, not ours: %d", p,
			  rc);
		rc = mri_engine_revoke(s->e, p, &(int64_t){0});
		SIM_CHECK(s, rc == MR_ENOENT, "revoke p%d, not ours: %d", p,
			  rc);
	} else {
		rc = mri_engine_assign(s->e, p, pt->committed, NULL, 0);
		SIM_CHECK(s, rc == MR_EEXIST, "assign p%d twice: %d", p, rc);
		if (pt->pos > pt->first) {
			rc = mri_engine_arrive(s->e, p,
					       pt->rec[pt->pos - 1].offset, 1,
					       false, 0, false, NULL);
			SIM_CHECK(s, rc == MR_EINVAL, "arrive p%d again: %d",
				  p, rc);
		}
	}
	mri_engine_session_close(s->e, SIM_MAXSID + 1, s->now);
	SIM_CHECK(s, mri_engine_take_exhausted(s->e, &d, 0) == 0,
		  "take_exhausted of none gave some");
	mri_engine_stats(s->e, &b);
	SIM_CHECK(s, memcmp(&a, &b, sizeof(a)) == 0 &&
			     mri_engine_next_due(s->e) == due,
		  "a refused call changed the stats");
}

/* One random event; false if it could not happen now. */
static bool
sim__event(struct sim *s)
{
	int32_t          p  = (int32_t)sim__rand(s, (uint64_t)s->np);
	struct sim_part *pt = &s->part[p];
	uint64_t         w  = sim__rand(s, 100);

	if (w < 10) {
		sim__append(s, p, 1 + sim__rand(s, 3));
	} else if (w < 23) {
		if (!pt->assigned || pt->pos == pt->n)
			return false;
		sim__arrive(s, p, 1 + sim__rand(s, 8));
	} else if (w < 26) {
		if (s->nsids == SIM_MAXSESS)
			return false;
		sim__session_open(s);
	} else if (w < 28) {
		if (s->nsids == 0)
			return false;
		sim__session_close(s, (int)sim__rand(s, (uint64_t)s->nsids));
	} else if (w < 45) {
		if (s->nsids == 0)
			return false;
		sim__fetch(s, s->sids[sim__rand(s, (uint64_t)s->nsids)],
			   1 + sim__rand(s, SIM_FETCHMAX));
	} else if (w < 61) {
		if (s->nfl == 0)
			return false;
		sim__ack(s, sim__rand(s, s->nfl));
	} else if (w < 67) {
		if (s->nfl == 0)
			return false;
		sim__nack(s, sim__rand(s, s->nfl), sim__rand(s, 3) == 0);
	} else if (w < 70) {
		uint64_t ms = sim__rand(s, 2 * s->conf.ack_deadline_ms + 1);
		struct sim_flight *f;
		int                rc;

		if (s->nfl == 0)
			return false;
		f  = &s->fl[sim__rand(s, s->nfl)];
		rc = mri_engine_extend(s->e, f->handle, s->now, ms);
		sim__ev(s, "extend p%d@%lld by %llu", f->p,
			(long long)s->part[f->p].rec[f->idx].offset,
			(unsigned long long)ms);
		SIM_CHECK(s, rc == MR_OK, "extend: %d", rc);
		f->deadline = s->now + ms;
	} else if (w < 79) {
		sim__tick(s);
	} else if (w < 82) {
		sim__bad_call(s);
	} else if (w < 86) {
		sim__ev(s, "commit");
		sim__commit_all(s);
	} else if (w < 89) {
		if (!pt->assigned)
			return false;
		sim__revoke(s, p);
	} else if (w < 93) {
		if (pt->assigned)
			return false;
		sim__assign(s, p);
	} else if (w < 94) {
		sim__crash(s);
	} else if (w < 96) {
		sim__take(s, 1 + sim__rand(s, SIM_TAKEMAX));
	} else if (w < 99) {
		if (s->nqu == 0)
			return false;
		sim__quarantined(s, sim__rand(s, s->nqu),
				 sim__rand(s, 3) != 0);
	} else {
		sim__set_limit(s);
	}
	return true;
}

/* ---- a schedule ------------------------------------------------------ */

/* Without faults, everything is acked or quarantined: (e), (f). */
static void
sim__drain(struct sim *s)
{
	bool progress = true;

	sim__ev(s, "DRAIN");
	for (int32_t p = 0; p < s->np; p++)
		if (!s->part[p].assigned)
			sim__assign(s, p);
	if (s->nsids == 0)
		sim__session_open(s);
	s->limit = SIZE_MAX;
	mri_engine_set_limit(s->e, SIZE_MAX);
	sim__check(s);
	for (unsigned round = 0; progress; round++) {
		uint64_t due;
		size_t   taken;

		SIM_CHECK(s, round < 100000, "drain makes no end");
		progress = false;
		s->step++;
		for (int32_t p = 0; p < s->np; p++) {
			size_t before = s->part[p].pos;

			sim__arrive(s, p, SIM_MAXLOG);
			progress = progress || s->part[p].pos != before;
		}
		sim__check(s);
		for (int i = 0; i < s->nsids; i++) {
			size_t before = s->nfl;

			sim__fetch(s, s->sids[i], SIM_FETCHMAX);
			progress = progress || s->nfl != before;
			sim__check(s);
		}
		while (s->nfl > 0) {
			sim__ack(s, s->nfl - 1);
			sim__check(s);
			progress = true;
		}
		do {
			taken = s->nqu;
			sim__take(s, SIM_TAKEMAX);
			taken = s->nqu - taken;
			sim__check(s);
		} while (taken == SIM_TAKEMAX);
		while (s->nqu > 0) {
			sim__quarantined(s, s->nqu - 1, true);
			sim__check(s);
			progress = true;
		}
		if (!progress && (due = mri_engine_next_due(s->e)) !=
				     UINT64_MAX) {
			sim__tick_to(s, due);
			sim__check(s);
			progress = true;
		}
		if (s->commit_always)
			sim__commit_all(s);
	}
	SIM_CHECK(s, mri_engine_next_due(s->e) == UINT64_MAX,
		  "drain: a record still backs off");
	for (int32_t p = 0; p < s->np; p++) {
		const struct sim_part *pt = &s->part[p];
		int64_t end = pt->n ? pt->rec[pt->n - 1].offset + 1 : 0;

		SIM_CHECK(s, pt->pos == pt->n,
			  "drain: p%d stopped at %zu of %zu records", p,
			  pt->pos, pt->n);
		for (size_t i = 0; i < pt->n; i++)
			SIM_CHECK(s, pt->rec[i].acked_ever,
				  "(e) p%d@%lld lost: neither acked nor "
				  "quarantined",
				  p, (long long)pt->rec[i].offset);
		SIM_CHECK(s, mri_engine_committable(s->e, p) == end,
			  "(f) p%d: committable %lld after the drain, log end "
			  "%lld",
			  p, (long long)mri_engine_committable(s->e, p),
			  (long long)end);
	}
	sim__commit_all(s);
}

/* A retry policy: attempts 0 (unlimited) or 1-5, backoff 0 or 1-50 ms
 * growing to a cap, with or without jitter. */
static void
sim__retry(struct sim *s, struct mri_retry *rt)
{
	static const double mults[]   = {1.0, 1.5, 2.0, 3.0};
	static const double jitters[] = {0, 0, 0.1, 0.25, 0.5, 1.0};

	rt->max_attempts = sim__rand(s, 4) == 0
				   ? 0
				   : 1 + (uint32_t)sim__rand(s, 5);
	rt->backoff_initial_ms = sim__rand(s, 4) == 0 ? 0
						      : 1 + sim__rand(s, 50);
	rt->backoff_max_ms =
	    rt->backoff_initial_ms +
	    (sim__rand(s, 4) == 0 ? 0 : sim__rand(s, 200));
	rt->multiplier = mults[sim__rand(s, 4)];
	rt->jitter     = jitters[sim__rand(s, 6)];
	rt->seed       = sim__mix(s->rng);
}

static void
sim__schedule(struct sim *s, enum mri_order order, unsigned sched)
{
	static const uint32_t bufs[] = {1, 2, 3, 4, 6, 8, 16, 64};
	unsigned              events;

	for (int p = 0; p < SIM_MAXP; p++) {
		s->part[p].n         = 0;
		s->part[p].next      = 0;
		s->part[p].committed = 0;
		s->part[p].cidx      = 0;
		s->part[p].nkept     = 0;
		s->part[p].assigned  = false;
	}
	s->rng = sim__mix(sim__seed ^ sim__mix(((uint64_t)order << 32) ^
					       sched));
	s->sched   = sched;
	s->step    = 0;
	s->ntrail  = 0;
	s->now     = sim__rand(s, 1000);
	s->tick_at = 0;
	s->nfl     = 0;
	s->nqu     = 0;
	s->nobs    = 0;
	s->nsids   = 0;
	s->nstale  = 0;
	memset(s->used, 0, sizeof(s->used));
	s->np                   = 1 + (int)sim__rand(s, SIM_MAXP);
	s->conf.order           = order;
	s->conf.max_buffered    = bufs[sim__rand(s, 8)];
	s->conf.session_credit  = 1 + (uint32_t)sim__rand(s, 8);
	s->conf.ack_deadline_ms = 20 + sim__rand(s, 500);
	sim__retry(s, &s->conf.retry);
	s->commit_always = sim__rand(s, 5) == 0;
	events           = 200 + (unsigned)sim__rand(s, 201);
	sim__engine_new(s);

	for (int32_t p = 0; p < s->np; p++)
		if (sim__rand(s, 4) != 0)
			sim__assign(s, p);
	sim__session_open(s);
	sim__check(s);
	for (s->step = 1; s->step <= events; s->step++) {
		for (int tries = 0; tries < 20 && !sim__event(s); tries++)
			;
		if (s->commit_always)
			sim__commit_all(s);
		sim__check(s);
	}
	sim__drain(s);
	mri_engine_free(s->e);
	s->e = NULL;
	s->tot.schedules++;
	s->tot.events += events;
}

static void
sim__run(enum mri_order order, const char *mode)
{
	struct sim        *s     = &sim__s;
	struct sim_totals *t     = &s->tot;
	const char        *only  = getenv("MR_SIM_SCHEDULE");
	const char        *count = getenv("MR_SIM_SCHEDULES");
	unsigned           n     = SIM_SCHEDULES;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	if (count != NULL && count[0] != '\0')
		n = (unsigned)strtoul(count, NULL, 10);
	if (only != NULL && only[0] != '\0') {
		sim__schedule(s, order, (unsigned)strtoul(only, NULL, 10));
	} else {
		for (unsigned i = 0; i < n; i++)
			sim__schedule(s, order, i);
	}
	printf("engine sim %s: seed %llu, %llu schedules, %llu events, "
	       "%llu deliveries (%llu again, attempts up to %llu), %llu acks, "
	       "%llu nacks, %llu rejects, %llu expired, %llu session "
	       "crashes, %llu revokes, %llu consumer crashes, %llu commits, "
	       "%llu kept acks skipped, %llu stale calls, %llu pauses when "
	       "full\n"
	       "  retries: %llu backoffs (%llu dues pinned), %llu spent on "
	       "arrival, %llu taken for quarantine, %llu quarantined, %llu "
	       "quarantines failed, %llu limits set, %llu fetches held by "
	       "the limit, %llu backing off, exhausted or being "
	       "quarantined when revoked or crashed\n",
	       mode, (unsigned long long)sim__seed,
	       (unsigned long long)t->schedules,
	       (unsigned long long)t->events,
	       (unsigned long long)t->deliveries,
	       (unsigned long long)t->redeliveries,
	       (unsigned long long)t->max_attempt,
	       (unsigned long long)t->acks, (unsigned long long)t->nacks,
	       (unsigned long long)t->rejects,
	       (unsigned long long)t->expiries,
	       (unsigned long long)t->closes,
	       (unsigned long long)t->revokes,
	       (unsigned long long)t->crashes,
	       (unsigned long long)t->commits,
	       (unsigned long long)t->kept_skipped,
	       (unsigned long long)t->stale, (unsigned long long)t->paused,
	       (unsigned long long)t->backoffs,
	       (unsigned long long)t->pinned,
	       (unsigned long long)t->spent_on_arrival,
	       (unsigned long long)t->taken,
	       (unsigned long long)t->quarantined,
	       (unsigned long long)t->quarantine_failed,
	       (unsigned long long)t->limits,
	       (unsigned long long)t->held_by_limit,
	       (unsigned long long)t->dropped_retrying);
	fflush(stdout);
}

START_TEST(test_sim_key)
{
	sim__run(MRI_ORDER_KEY, "key");
}
END_TEST

START_TEST(test_sim_partition)
{
	sim__run(MRI_ORDER_PARTITION, "partition");
}
END_TEST

START_TEST(test_sim_unordered)
{
	sim__run(MRI_ORDER_UNORDERED, "unordered");
}
END_TEST

static Suite *
sim__suite(void)
{
	Suite *s  = suite_create("engine_sim");
	TCase *tc = tcase_create("schedules");

	// A bound for sanitizer builds; a plain run takes a few seconds.
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_sim_key);
	tcase_add_test(tc, test_sim_partition);
	tcase_add_test(tc, test_sim_unordered);
	suite_add_tcase(s, tc);
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
	printf("engine sim: seed %llu (MR_SIM_SEED=%llu repeats it)%s\n",
	       (unsigned long long)sim__seed, (unsigned long long)sim__seed,
	       sim__loose ? ", loose checks" : "");
	fflush(stdout);
	r = srunner_create(sim__suite());
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
