/*
 * The checks engine_sim_test.c makes after every step (see engine_sim.h):
 * each partition's committable offset, acks beyond it and full flag
 * against the model, the next due time, and the engine's counts.
 */
#include "consumers/engine_sim.h"

#include <check.h>

/* ---- the checks after every step -------------------------------------- */

static void
sim__check_part(struct sim *s, int32_t p, size_t *buffered)
{
	struct sim_part *pt = &s->part[p];
	int64_t          got[SIM_MAXLOG], cm, ecm;
	size_t           b, n, j = 0, held = 0;

	if (!pt->assigned) {
		SIM_CHECK(s, mri_engine_committable(s->e, p) == -1,
			  "p%d not ours but committable", p);
		SIM_CHECK(s, !mri_engine_full(s->e, p),
			  "p%d not ours but full", p);
		return;
	}
	// The committable offset: one past the acked prefix, exactly.
	for (b = pt->acked_to; b < pt->pos && sim__is_acked(&pt->rec[b]); b++)
		;
	pt->acked_to = b;
	cm  = b > pt->first ? pt->rec[b - 1].offset + 1 : pt->start;
	ecm = mri_engine_committable(s->e, p);
	SIM_CHECK(s, sim__loose || ecm == cm,
		  "p%d: committable %lld, the model says %lld", p,
		  (long long)ecm, (long long)cm);
	SIM_CHECK(s, ecm >= pt->last_commit, "p%d: committable went back", p);
	pt->last_commit = ecm;
	// Before b: acked, or committed before this epoch (checked then).
	for (size_t i = b; i < pt->n && pt->rec[i].offset < ecm; i++)
		SIM_CHECK(s, pt->rec[i].acked_ever,
			  "(a) p%d: committable %lld passes offset %lld, "
			  "never acked",
			  p, (long long)ecm, (long long)pt->rec[i].offset);

	// Acked beyond: every one listed, and nothing else.
	n = mri_engine_acked_beyond(s->e, p, got, SIM_MAXLOG);
	SIM_CHECK(s, n <= SIM_MAXLOG, "p%d: %zu acked beyond", p, n);
	for (size_t i = 0; i < n; i++) {
		size_t idx = sim__find(pt, got[i]);

		SIM_CHECK(s, got[i] >= ecm && (i == 0 || got[i] > got[i - 1]),
			  "p%d: acked_beyond not ascending beyond %lld", p,
			  (long long)ecm);
		SIM_CHECK(s, idx != SIZE_MAX && pt->rec[idx].acked_ever,
			  "p%d: acked_beyond lists %lld, never acked", p,
			  (long long)got[i]);
	}
	for (size_t i = b; i < pt->n && !sim__loose; i++) {
		const struct sim_rec *r = &pt->rec[i];

		if (!(i < pt->pos ? sim__is_acked(r) : r->listed))
			continue;
		while (j < n && got[j] < r->offset)
			j++;
		SIM_CHECK(s, j < n && got[j] == r->offset,
			  "p%d: offset %lld is acked (%s) beyond %lld but "
			  "not in acked_beyond (%zu listed)",
			  p, (long long)r->offset,
			  i < pt->pos ? sim__st_names[r->st]
				      : "kept, not arrived again",
			  (long long)cm, n);
	}

	// What is held: what arrived past the acked prefix and is not acked
	// (of those acked, only their offsets are kept).
	for (size_t k = b; k < pt->pos; k++)
		held += !sim__is_acked(&pt->rec[k]);
	SIM_CHECK(s, sim__loose ||
			     mri_engine_full(s->e, p) ==
				     (held >= s->conf.max_buffered),
		  "p%d: full is %d with %zu held", p, mri_engine_full(s->e, p),
		  held);
	*buffered += held;
}

/* (h): mri_engine_next_due against the records backing off; those surely
 * backing off are due no earlier than it. */
static void
sim__check_due(struct sim *s)
{
	struct sim_scan *c   = &s->scan;
	uint64_t         due = mri_engine_next_due(s->e);

	if (c->backoff + c->nmaybe[0] + c->nmaybe[1] == 0)
		SIM_CHECK(s, due == UINT64_MAX,
			  "(h) next due %llu with nothing backing off",
			  (unsigned long long)due);
	SIM_CHECK(s, c->backoff == 0 || due <= c->min_hi_sure,
		  "(h) next due %llu, but a record backing off is due by "
		  "%llu",
		  (unsigned long long)due,
		  (unsigned long long)c->min_hi_sure);
	if (due == UINT64_MAX)
		return;
	SIM_CHECK(s, due >= c->min_lo && due > s->tick_at,
		  "(h) next due %llu: no record can be due then (the "
		  "earliest at %llu, last tick at %llu)",
		  (unsigned long long)due, (unsigned long long)c->min_lo,
		  (unsigned long long)s->tick_at);
	for (size_t i = 0; i < c->backoff; i++) {
		struct sim_rec *r = sim__ref(s, c->sure[i]);

		if (r->due_lo < due)
			r->due_lo = due;
	}
}

/* (m): what the stats count that the model cannot tell apart (records
 * whose due may have passed: ready or exhausted, or still backing off)
 * is told apart by the counts. */
static void
sim__check_counts(struct sim *s, const struct mri_engine_stats *st)
{
	struct sim_scan *c = &s->scan;
	size_t           due[2];

	SIM_CHECK(s, st->ready >= c->ready &&
			     st->ready <= c->ready + c->nmaybe[0],
		  "(m) stats: %zu ready, the model says %zu (%zu more if "
		  "due)",
		  st->ready, c->ready, c->nmaybe[0]);
	SIM_CHECK(s, st->exhausted >= c->exhausted &&
			     st->exhausted <= c->exhausted + c->nmaybe[1],
		  "(m) stats: %zu exhausted, the model says %zu (%zu more if "
		  "due)",
		  st->exhausted, c->exhausted, c->nmaybe[1]);
	due[0] = st->ready - c->ready;
	due[1] = st->exhausted - c->exhausted;
	SIM_CHECK(s, st->backoff == c->backoff + c->nmaybe[0] - due[0] +
					    c->nmaybe[1] - due[1],
		  "(m) stats: %zu backing off, the model says %zu, and %zu "
		  "of %zu that may be due",
		  st->backoff, c->backoff,
		  c->nmaybe[0] + c->nmaybe[1] - due[0] - due[1],
		  c->nmaybe[0] + c->nmaybe[1]);
	SIM_CHECK(s, st->quarantining == c->quarantining,
		  "(m) stats: %zu being quarantined, the model says %zu",
		  st->quarantining, c->quarantining);
	SIM_CHECK(s, st->acked == s->acked && st->failed == s->failed,
		  "(m) stats: %llu acked and %llu failed, the model says "
		  "%llu and %llu",
		  (unsigned long long)st->acked,
		  (unsigned long long)st->failed,
		  (unsigned long long)s->acked, (unsigned long long)s->failed);
	for (int k = 0; k < 2; k++)
		if (due[k] == 0 || due[k] == c->nmaybe[k])
			sim__settle(s, k, due[k] > 0);
}

void
sim__check(struct sim *s)
{
	struct mri_engine_stats st;
	size_t                  buffered = 0;

	for (int32_t p = 0; p < s->np; p++)
		sim__check_part(s, p, &buffered);
	sim__scan(s);
	sim__check_due(s);
	SIM_CHECK(s, !s->obs_overflow, "(l) the observer was told too much");
	SIM_CHECK(s, s->nobs == 0,
		  "(l) the observer was told p%d@%lld attempt %u %s, no "
		  "such attempt failed",
		  s->obs[0].p, (long long)s->obs[0].offset, s->obs[0].attempt,
		  sim__why_names[s->obs[0].why]);
	mri_engine_stats(s->e, &st);
	if (!sim__loose) {
		SIM_CHECK(s, st.inflight == s->nfl,
			  "stats: %zu in flight, model %zu", st.inflight,
			  s->nfl);
		SIM_CHECK(s, st.buffered == buffered,
			  "stats: %zu held, model %zu", st.buffered,
			  buffered);
		sim__check_counts(s, &st);
	}
	for (int i = 0; i < s->nsids; i++)
		SIM_CHECK(s, s->used[s->sids[i]] <= s->conf.session_credit,
			  "(d) session %u holds %u", s->sids[i],
			  s->used[s->sids[i]]);
}
