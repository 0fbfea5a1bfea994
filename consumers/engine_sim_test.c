/*
 * A seeded random simulation of consumers/engine.c, the delivery engine,
 * against a model of Kafka and of the engine's caller.
 *
 * Kafka is 1-4 partitions, each a log of records (keys 1-8, some keyless,
 * offsets with gaps), a committed offset and the list of offsets acked
 * beyond it that the caller keeps with each commit. The caller fetches
 * from Kafka by arriving the next records of its partitions (pausing while
 * mri_engine_full), persists attempt counts when records are handed out,
 * and keeps some acks in a dedupe store. Random events: appends, arrivals,
 * sessions opening, fetching, acking, nacking, extending and crashing,
 * time passing, commits, revokes and reassigns, and whole-consumer crashes
 * (the engine is dropped and rebuilt from what was last committed).
 *
 * Checked after every step: (a) nothing is committable or committed past
 * a record that was never acked; (b) ordering: in key mode nothing is
 * handed out while an earlier record of its key is unacked, in partition
 * mode while an earlier record of its partition is; (c) attempts go up by
 * one per delivery of a record (the count is durable, so across engines
 * too); (d) credits; and the engine's stats, committable, acked_beyond and
 * full against the model. At the end of each schedule a drain without
 * faults acks everything; then (e) every record was acked, (f) everything
 * is committable, and, checked on each delivery, (g) a record kept as
 * acked with a commit is never delivered again.
 *
 * The seed is printed; MR_SIM_SEED repeats a run, MR_SIM_SCHEDULE=i runs
 * only schedule i of it, MR_SIM_SCHEDULES sets how many, MR_SIM_TRACE=1
 * prints every event. MR_SIM_LOOSE=1 checks only (a)-(g), without
 * comparing committable, acked_beyond, full and stats to the model
 * exactly: to see that the properties alone catch a fault.
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

#include "consumers/engine.h"
#include "mailroom/error.h"

#define SIM_SCHEDULES 3000
#define SIM_MAXP      4
#define SIM_MAXLOG    1024
#define SIM_KEYS      8
#define SIM_MAXSESS   4
#define SIM_MAXSID    64
#define SIM_MAXFLIGHT 256
#define SIM_STALE     64
#define SIM_TRAIL     30
#define SIM_FETCHMAX  12

enum sim_st { SIM_NONE, SIM_WAIT, SIM_INFLIGHT, SIM_ACKED, SIM_PREACKED };

static const char *const sim__st_names[] = {"not arrived", "waiting",
					    "in flight", "acked",
					    "arrived acked"};

struct sim_rec {
	int64_t  offset;
	uint64_t key; /* 1..SIM_KEYS */
	bool     keyless;
	uint32_t attempts;   /* durable count, as the caller persists it */
	bool     acked_ever; /* acked at some point, by any engine */
	bool     dedupe;     /* the caller's dedupe store knows it */
	bool     kept;       /* kept as acked with a commit: (g) */
	uint8_t  st;         /* in the current epoch */
	bool     listed;     /* in the list this epoch was assigned with */
	bool     delivered;  /* in the current epoch */
};

struct sim_part {
	struct sim_rec rec[SIM_MAXLOG];
	size_t         n;
	int64_t        next;      /* offset of the next append */
	int64_t        committed; /* in Kafka */
	int64_t        kept[SIM_MAXLOG];
	size_t         nkept;
	/* The current epoch: from an assign to a revoke or crash. */
	bool    assigned;
	int64_t start;
	size_t  first;       /* index of the first record at or past start */
	size_t  pos;         /* index of the next record to arrive */
	int64_t last_commit; /* committable when last seen */
	int64_t first_order[SIM_KEYS + 1]; /* last first delivery, by key */
};

struct sim_flight {
	uint64_t handle;
	uint64_t deadline;
	size_t   idx;
	int32_t  p;
	uint32_t sid;
};

struct sim_totals {
	uint64_t schedules, events, deliveries, redeliveries, acks, nacks,
		expiries, closes, revokes, crashes, commits, kept_skipped,
		stale, paused, max_attempt;
};

struct sim {
	struct sim_part        part[SIM_MAXP];
	int                    np;
	struct mri_engine_conf conf;
	struct mri_engine     *e;
	uint64_t               rng;
	uint64_t               now;
	bool                   commit_always;
	uint32_t               sids[SIM_MAXSESS];
	int                    nsids;
	uint32_t               used[SIM_MAXSID]; /* credit, by sid */
	struct sim_flight      fl[SIM_MAXFLIGHT];
	size_t                 nfl;
	uint64_t               stale[SIM_STALE];
	size_t                 nstale;
	char                   trail[SIM_TRAIL][120];
	size_t                 ntrail;
	/* For the report of a failure. */
	const char       *mode;
	unsigned          sched;
	unsigned          step;
	struct sim_totals tot;
};

static uint64_t sim__seed;
static struct sim sim__s; /* large: not on the stack */
static bool       sim__trace;
static bool       sim__loose; /* only (a)-(g), no exact model */

/* ---- randomness ------------------------------------------------------ */

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

/* ---- reporting ------------------------------------------------------- */

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
		"\nengine sim FAILED (line %d): %s\n"
		"  mode %s, seed %llu, schedule %u, step %u; conf: %d "
		"partitions, max_buffered %u, credit %u, deadline %llu%s\n"
		"  repeat: MR_SIM_SEED=%llu MR_SIM_SCHEDULE=%u\n"
		"  the last %zu events:\n",
		line, msg, s->mode, (unsigned long long)sim__seed, s->sched,
		s->step, s->np, s->conf.max_buffered, s->conf.session_credit,
		(unsigned long long)s->conf.ack_deadline_ms,
		s->commit_always ? ", commit after every step" : "",
		(unsigned long long)sim__seed, s->sched, n);
	for (size_t i = s->ntrail - n; i < s->ntrail; i++)
		fprintf(stderr, "    %s\n", s->trail[i % SIM_TRAIL]);
	fflush(stderr);
	ck_abort_msg("engine sim: seed %llu, mode %s, schedule %u, step %u: "
		     "%s",
		     (unsigned long long)sim__seed, s->mode, s->sched, s->step,
		     msg);
	abort(); // not reached
}

#define SIM_CHECK(s, cond, ...)                                              \
	do {                                                                 \
		if (!(cond))                                                 \
			sim__fail((s), __LINE__, __VA_ARGS__);               \
	} while (0)

/* ---- the model ------------------------------------------------------- */

static void *
sim__opaque(int32_t p, int64_t offset)
{
	return (void *)(uintptr_t)(((uint64_t)(uint32_t)p << 40) |
				   (uint64_t)(offset + 1));
}

static bool
sim__is_acked(const struct sim_rec *r)
{
	return r->st == SIM_ACKED || r->st == SIM_PREACKED;
}

/* The index of \p offset in the log of \p pt, or SIZE_MAX. */
static size_t
sim__find(const struct sim_part *pt, int64_t offset)
{
	size_t lo = 0, hi = pt->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pt->rec[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < pt->n && pt->rec[lo].offset == offset ? lo : SIZE_MAX;
}

static void
sim__stale_push(struct sim *s, uint64_t handle)
{
	if (s->nstale < SIM_STALE)
		s->stale[s->nstale++] = handle;
	else
		s->stale[sim__rand(s, SIM_STALE)] = handle;
}

/* Drop in-flight entry \p i; its record goes back to \p st. */
static void
sim__flight_drop(struct sim *s, size_t i, enum sim_st st)
{
	struct sim_flight *f = &s->fl[i];

	s->part[f->p].rec[f->idx].st = (uint8_t)st;
	s->used[f->sid]--;
	sim__stale_push(s, f->handle);
	s->fl[i] = s->fl[--s->nfl];
}

/* What the caller keeps with a commit, checked: (a) for Kafka. */
static void
sim__store(struct sim *s, int32_t p, int64_t commit, const int64_t *kept,
	   size_t nkept)
{
	struct sim_part *pt = &s->part[p];

	SIM_CHECK(s, commit >= pt->committed,
		  "p%d: commit %lld goes back from %lld", p, (long long)commit,
		  (long long)pt->committed);
	for (size_t i = 0; i < pt->n && pt->rec[i].offset < commit; i++)
		SIM_CHECK(s, pt->rec[i].acked_ever,
			  "(a) p%d: commit %lld passes offset %lld, never "
			  "acked",
			  p, (long long)commit, (long long)pt->rec[i].offset);
	for (size_t i = 0; i < nkept; i++) {
		size_t idx = sim__find(pt, kept[i]);

		SIM_CHECK(s, kept[i] >= commit &&
				     (i == 0 || kept[i] > kept[i - 1]),
			  "p%d: kept offsets not ascending beyond %lld", p,
			  (long long)commit);
		SIM_CHECK(s, idx != SIZE_MAX && pt->rec[idx].acked_ever,
			  "p%d: offset %lld kept as acked but never acked", p,
			  (long long)kept[i]);
		pt->rec[idx].kept = true;
	}
	pt->committed = commit;
	memcpy(pt->kept, kept, nkept * sizeof(*kept));
	pt->nkept = nkept;
	s->tot.commits++;
}

static void
sim__epoch_end(struct sim *s, int32_t p)
{
	struct sim_part *pt = &s->part[p];

	for (size_t i = 0; i < pt->n; i++) {
		pt->rec[i].st        = SIM_NONE;
		pt->rec[i].listed    = false;
		pt->rec[i].delivered = false;
	}
	pt->assigned = false;
}

static void
sim__assign(struct sim *s, int32_t p)
{
	struct sim_part *pt = &s->part[p];
	int              rc;

	rc = mri_engine_assign(s->e, p, pt->committed, pt->kept, pt->nkept);
	SIM_CHECK(s, rc == MR_OK, "assign p%d: %d", p, rc);
	sim__ev(s, "assign p%d from %lld, %zu kept", p,
		(long long)pt->committed, pt->nkept);
	pt->assigned = true;
	pt->start    = pt->committed;
	for (pt->first = 0; pt->first < pt->n &&
			    pt->rec[pt->first].offset < pt->start;
	     pt->first++)
		;
	pt->pos         = pt->first;
	pt->last_commit = pt->start;
	for (size_t k = 0; k <= SIM_KEYS; k++)
		pt->first_order[k] = -1;
	for (size_t i = 0; i < pt->nkept; i++)
		pt->rec[sim__find(pt, pt->kept[i])].listed = true;
}

/* ---- the checks after every step -------------------------------------- */

static void
sim__check_part(struct sim *s, int32_t p, size_t *buffered, size_t *ready)
{
	struct sim_part *pt = &s->part[p];
	int64_t          got[SIM_MAXLOG], cm = pt->start, ecm;
	size_t           b, n, j = 0, mb = 0, rd = 0;
	bool             seen[SIM_KEYS + 1] = {false};

	if (!pt->assigned) {
		SIM_CHECK(s, mri_engine_committable(s->e, p) == -1,
			  "p%d not ours but committable", p);
		SIM_CHECK(s, !mri_engine_full(s->e, p),
			  "p%d not ours but full", p);
		return;
	}
	// The committable offset: one past the acked prefix, exactly.
	for (b = pt->first; b < pt->pos && sim__is_acked(&pt->rec[b]); b++)
		cm = pt->rec[b].offset + 1;
	ecm = mri_engine_committable(s->e, p);
	SIM_CHECK(s, sim__loose || ecm == cm,
		  "p%d: committable %lld, the model says %lld", p,
		  (long long)ecm, (long long)cm);
	SIM_CHECK(s, ecm >= pt->last_commit, "p%d: committable went back", p);
	pt->last_commit = ecm;
	for (size_t i = 0; i < pt->n && pt->rec[i].offset < ecm; i++)
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

	// What is held, and what could be handed out now.
	for (size_t i = pt->first; i < pt->pos; i++) {
		const struct sim_rec *r = &pt->rec[i];

		mb += i >= b;
		switch (s->conf.order) {
		case MRI_ORDER_UNORDERED:
			rd += r->st == SIM_WAIT;
			break;
		case MRI_ORDER_PARTITION:
			if (!seen[0] && !sim__is_acked(r)) {
				seen[0] = true;
				rd += r->st == SIM_WAIT;
			}
			break;
		case MRI_ORDER_KEY:
			if (r->keyless) {
				rd += r->st == SIM_WAIT;
			} else if (!seen[r->key] && !sim__is_acked(r)) {
				seen[r->key] = true;
				rd += r->st == SIM_WAIT;
			}
			break;
		}
	}
	SIM_CHECK(s, sim__loose ||
			     mri_engine_full(s->e, p) ==
				     (mb >= s->conf.max_buffered),
		  "p%d: full is %d with %zu held", p, mri_engine_full(s->e, p),
		  mb);
	*buffered += mb;
	*ready += rd;
}

static void
sim__check(struct sim *s)
{
	struct mri_engine_stats st;
	size_t                  buffered = 0, ready = 0;

	for (int32_t p = 0; p < s->np; p++)
		sim__check_part(s, p, &buffered, &ready);
	mri_engine_stats(s->e, &st);
	if (sim__loose)
		goto credits;
	SIM_CHECK(s, st.inflight == s->nfl, "stats: %zu in flight, model %zu",
		  st.inflight, s->nfl);
	SIM_CHECK(s, st.buffered == buffered, "stats: %zu held, model %zu",
		  st.buffered, buffered);
	SIM_CHECK(s, st.ready == ready, "stats: %zu ready, model %zu",
		  st.ready, ready);
credits:
	for (int i = 0; i < s->nsids; i++)
		SIM_CHECK(s, s->used[s->sids[i]] <= s->conf.session_credit,
			  "(d) session %u holds %u", s->sids[i],
			  s->used[s->sids[i]]);
}

/* Model ready count, for what a fetch must return. */
static size_t
sim__ready(struct sim *s)
{
	struct mri_engine_stats st;

	// sim__check proved stats.ready equal to the model after the last
	// step, and nothing changed since.
	mri_engine_stats(s->e, &st);
	return st.ready;
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
		SIM_CHECK(s, rc == MR_OK, "arrive p%d@%lld: %d", p,
			  (long long)r->offset, rc);
		r->st = r->dedupe || r->listed ? SIM_PREACKED : SIM_WAIT;
		sim__ev(s, "arrive p%d@%lld attempts %u%s%s", p,
			(long long)r->offset, r->attempts,
			r->dedupe ? " dedupe" : "", r->listed ? " kept" : "");
		s->tot.kept_skipped += r->listed;
		pt->pos++;
	}
}

/* One delivery: (b), (c), (d) and (g). */
static void
sim__delivered(struct sim *s, uint32_t sid, const struct mri_delivery *d)
{
	struct sim_part *pt;
	struct sim_rec  *r;
	size_t           idx, slot;
	bool             ordered;

	SIM_CHECK(s, d->partition >= 0 && d->partition < s->np &&
			     s->part[d->partition].assigned,
		  "delivered p%d, not ours", d->partition);
	pt  = &s->part[d->partition];
	idx = sim__find(pt, d->offset);
	SIM_CHECK(s, idx != SIZE_MAX && idx >= pt->first && idx < pt->pos,
		  "delivered p%d@%lld, never arrived", d->partition,
		  (long long)d->offset);
	r = &pt->rec[idx];
	sim__ev(s, "  got p%d@%lld attempt %u key %s%llu h=%llx",
		d->partition, (long long)d->offset, d->attempt,
		r->keyless ? "none/" : "", (unsigned long long)r->key,
		(unsigned long long)d->handle);
	SIM_CHECK(s, !r->kept,
		  "(g) p%d@%lld was kept as acked with a commit, delivered "
		  "again",
		  d->partition, (long long)d->offset);
	SIM_CHECK(s, r->st == SIM_WAIT, "delivered p%d@%lld while %s",
		  d->partition, (long long)d->offset, sim__st_names[r->st]);
	SIM_CHECK(s, d->opaque == sim__opaque(d->partition, d->offset),
		  "p%d@%lld: wrong opaque", d->partition,
		  (long long)d->offset);
	SIM_CHECK(s, d->attempt == r->attempts + 1,
		  "(c) p%d@%lld: attempt %u after %u", d->partition,
		  (long long)d->offset, d->attempt, r->attempts);

	ordered = s->conf.order == MRI_ORDER_PARTITION ||
		  (s->conf.order == MRI_ORDER_KEY && !r->keyless);
	slot = s->conf.order == MRI_ORDER_PARTITION ? 0 : r->key;
	if (ordered) {
		for (size_t i = pt->first; i < idx; i++) {
			const struct sim_rec *o = &pt->rec[i];

			if (s->conf.order == MRI_ORDER_KEY &&
			    (o->keyless || o->key != r->key))
				continue;
			SIM_CHECK(s, sim__is_acked(o),
				  "(b) p%d@%lld handed out while p%d@%lld of "
				  "its %s is %s",
				  d->partition, (long long)d->offset,
				  d->partition, (long long)o->offset,
				  slot ? "key" : "partition",
				  sim__st_names[o->st]);
		}
		for (size_t i = 0; i < s->nfl; i++) {
			const struct sim_rec *o;

			if (s->fl[i].p != d->partition)
				continue;
			o = &pt->rec[s->fl[i].idx];
			SIM_CHECK(s, slot != 0 &&
					     (o->keyless || o->key != r->key),
				  "(b) p%d@%lld handed out while p%d@%lld of "
				  "its %s is in flight",
				  d->partition, (long long)d->offset,
				  d->partition, (long long)o->offset,
				  slot ? "key" : "partition");
		}
		if (!r->delivered) {
			SIM_CHECK(s, d->offset > pt->first_order[slot],
				  "(b) p%d: first deliveries of %s %zu out of "
				  "order: %lld after %lld",
				  d->partition, slot ? "key" : "partition",
				  slot, (long long)d->offset,
				  (long long)pt->first_order[slot]);
			pt->first_order[slot] = d->offset;
		}
	}
	for (size_t i = 0; i < s->nfl; i++)
		SIM_CHECK(s, s->fl[i].handle != d->handle,
			  "handle %llx handed out twice",
			  (unsigned long long)d->handle);
	SIM_CHECK(s, s->nfl < SIM_MAXFLIGHT && sid < SIM_MAXSID,
		  "model too small");

	s->tot.deliveries++;
	s->tot.redeliveries += r->delivered || r->attempts > 0;
	if (d->attempt > s->tot.max_attempt)
		s->tot.max_attempt = d->attempt;
	r->delivered = true;
	r->attempts  = d->attempt; // persisted before the consumer sees it
	r->st        = SIM_INFLIGHT;
	s->fl[s->nfl++] = (struct sim_flight){
		.handle   = d->handle,
		.deadline = s->now + s->conf.ack_deadline_ms,
		.idx      = idx,
		.p        = d->partition,
		.sid      = sid,
	};
	s->used[sid]++;
	SIM_CHECK(s, s->used[sid] <= s->conf.session_credit,
		  "(d) session %u holds %u, credit %u", sid, s->used[sid],
		  s->conf.session_credit);
}

static void
sim__fetch(struct sim *s, uint32_t sid, size_t max)
{
	struct mri_delivery out[SIM_FETCHMAX];
	size_t              ready = sim__ready(s), room, want, n;

	room = s->conf.session_credit - s->used[sid];
	want = max < room ? max : room;
	want = want < ready ? want : ready;
	n    = mri_engine_fetch(s->e, sid, s->now, out, max);
	sim__ev(s, "fetch s%u max %zu: %zu", sid, max, n);
	SIM_CHECK(s, n == want || (sim__loose && n <= max && n <= room),
		  "(d) fetch s%u max %zu gave %zu; credit left %zu, ready %zu",
		  sid, max, n, room, ready);
	for (size_t i = 0; i < n; i++)
		sim__delivered(s, sid, &out[i]);
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
	s->tot.acks++;
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
	sim__epoch_end(s, p);
	s->tot.revokes++;
}

static void
sim__session_close(struct sim *s, int k)
{
	uint32_t sid = s->sids[k];

	sim__ev(s, "session s%u crashes", sid);
	mri_engine_session_close(s->e, sid, 0);
	for (size_t i = s->nfl; i-- > 0;)
		if (s->fl[i].sid == sid)
			sim__flight_drop(s, i, SIM_WAIT);
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
}

/* The whole consumer dies: all that survives is in Kafka. */
static void
sim__crash(struct sim *s)
{
	sim__ev(s, "CONSUMER CRASH");
	mri_engine_free(s->e);
	sim__engine_new(s);
	s->nfl    = 0;
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

static void
sim__tick(struct sim *s)
{
	uint64_t d = s->conf.ack_deadline_ms;
	size_t   want = 0, got;

	switch (sim__rand(s, 4)) {
	case 0:
		break;
	case 1:
		s->now += sim__rand(s, d / 2 + 1);
		break;
	default:
		s->now += sim__rand(s, 2 * d + 1);
		break;
	}
	for (size_t i = 0; i < s->nfl; i++)
		want += s->fl[i].deadline <= s->now;
	got = mri_engine_tick(s->e, s->now);
	sim__ev(s, "tick: %zu expire", got);
	SIM_CHECK(s, got == want, "tick at %llu: %zu expired, model %zu",
		  (unsigned long long)s->now, got, want);
	for (size_t i = s->nfl; i-- > 0;)
		if (s->fl[i].deadline <= s->now)
			sim__flight_drop(s, i, SIM_WAIT);
	s->tot.expiries += got;
}

/* A stale handle, or a partition that is not ours, changes nothing. */
static void
sim__bad_call(struct sim *s)
{
	struct mri_engine_stats a, b;
	int32_t                 p  = (int32_t)sim__rand(s, (uint64_t)s->np);
	struct sim_part        *pt = &s->part[p];
	int                     rc;

	mri_engine_stats(s->e, &a);
	if (s->nstale > 0 && sim__rand(s, 2) == 0) {
		uint64_t h = s->stale[sim__rand(s, s->nstale)];

		switch (sim__rand(s, 3)) {
		case 0:
			rc = mri_engine_ack(s->e, h, NULL);
			break;
		case 1:
			rc = mri_engine_nack(s->e, h, 0, false);
			break;
		default:
			rc = mri_engine_extend(s->e, h, s->now, 1);
			break;
		}
		sim__ev(s, "stale h=%llx: %d", (unsigned long long)h, rc);
		SIM_CHECK(s, rc == MR_ENOENT, "stale handle %llx: %d",
			  (unsigned long long)h, rc);
		s->tot.stale++;
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
	mri_engine_session_close(s->e, SIM_MAXSID + 1, 0);
	mri_engine_stats(s->e, &b);
	SIM_CHECK(s, memcmp(&a, &b, sizeof(a)) == 0,
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
	} else if (w < 24) {
		if (!pt->assigned || pt->pos == pt->n)
			return false;
		sim__arrive(s, p, 1 + sim__rand(s, 8));
	} else if (w < 27) {
		if (s->nsids == SIM_MAXSESS)
			return false;
		sim__session_open(s);
	} else if (w < 29) {
		if (s->nsids == 0)
			return false;
		sim__session_close(s, (int)sim__rand(s, (uint64_t)s->nsids));
	} else if (w < 47) {
		if (s->nsids == 0)
			return false;
		sim__fetch(s, s->sids[sim__rand(s, (uint64_t)s->nsids)],
			   1 + sim__rand(s, SIM_FETCHMAX));
	} else if (w < 67) {
		if (s->nfl == 0)
			return false;
		sim__ack(s, sim__rand(s, s->nfl));
	} else if (w < 72) {
		const struct sim_flight *f;
		int                      rc;

		if (s->nfl == 0)
			return false;
		f  = &s->fl[sim__rand(s, s->nfl)];
		rc = mri_engine_nack(s->e, f->handle, 0, false);
		sim__ev(s, "nack p%d@%lld", f->p,
			(long long)s->part[f->p].rec[f->idx].offset);
		SIM_CHECK(s, rc == MR_OK, "nack: %d", rc);
		sim__flight_drop(s, (size_t)(f - s->fl), SIM_WAIT);
		s->tot.nacks++;
	} else if (w < 75) {
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
	} else if (w < 83) {
		sim__tick(s);
	} else if (w < 86) {
		sim__bad_call(s);
	} else if (w < 90) {
		sim__ev(s, "commit");
		sim__commit_all(s);
	} else if (w < 93) {
		if (!pt->assigned)
			return false;
		sim__revoke(s, p);
	} else if (w < 98) {
		if (pt->assigned)
			return false;
		sim__assign(s, p);
	} else if (w < 99) {
		sim__crash(s);
	} else {
		return false;
	}
	return true;
}

/* ---- a schedule ------------------------------------------------------ */

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
	sim__check(s);
	for (unsigned round = 0; progress; round++) {
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
		if (s->commit_always)
			sim__commit_all(s);
	}
	for (int32_t p = 0; p < s->np; p++) {
		const struct sim_part *pt = &s->part[p];
		int64_t end = pt->n ? pt->rec[pt->n - 1].offset + 1 : 0;

		SIM_CHECK(s, pt->pos == pt->n,
			  "drain: p%d stopped at %zu of %zu records", p,
			  pt->pos, pt->n);
		for (size_t i = 0; i < pt->n; i++)
			SIM_CHECK(s, pt->rec[i].acked_ever,
				  "(e) p%d@%lld lost: never acked", p,
				  (long long)pt->rec[i].offset);
		SIM_CHECK(s, mri_engine_committable(s->e, p) == end,
			  "(f) p%d: committable %lld after the drain, log end "
			  "%lld",
			  p, (long long)mri_engine_committable(s->e, p),
			  (long long)end);
	}
	sim__commit_all(s);
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
		s->part[p].nkept     = 0;
		s->part[p].assigned  = false;
	}
	s->rng = sim__mix(sim__seed ^ sim__mix(((uint64_t)order << 32) ^
					       sched));
	s->sched  = sched;
	s->step   = 0;
	s->ntrail = 0;
	s->now    = sim__rand(s, 1000);
	s->nfl    = 0;
	s->nsids  = 0;
	s->nstale = 0;
	memset(s->used, 0, sizeof(s->used));
	s->np                   = 1 + (int)sim__rand(s, SIM_MAXP);
	s->conf.order           = order;
	s->conf.max_buffered    = bufs[sim__rand(s, 8)];
	s->conf.session_credit  = 1 + (uint32_t)sim__rand(s, 8);
	s->conf.ack_deadline_ms = 20 + sim__rand(s, 500);
	s->commit_always        = sim__rand(s, 5) == 0;
	events                  = 200 + (unsigned)sim__rand(s, 201);
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
	struct sim *s     = &sim__s;
	const char *only  = getenv("MR_SIM_SCHEDULE");
	const char *count = getenv("MR_SIM_SCHEDULES");
	unsigned    n     = SIM_SCHEDULES;

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
	       "%llu nacks, %llu expired, %llu session crashes, %llu "
	       "revokes, %llu consumer crashes, %llu commits, %llu kept "
	       "acks skipped, %llu stale calls, %llu pauses when full\n",
	       mode, (unsigned long long)sim__seed,
	       (unsigned long long)s->tot.schedules,
	       (unsigned long long)s->tot.events,
	       (unsigned long long)s->tot.deliveries,
	       (unsigned long long)s->tot.redeliveries,
	       (unsigned long long)s->tot.max_attempt,
	       (unsigned long long)s->tot.acks,
	       (unsigned long long)s->tot.nacks,
	       (unsigned long long)s->tot.expiries,
	       (unsigned long long)s->tot.closes,
	       (unsigned long long)s->tot.revokes,
	       (unsigned long long)s->tot.crashes,
	       (unsigned long long)s->tot.commits,
	       (unsigned long long)s->tot.kept_skipped,
	       (unsigned long long)s->tot.stale,
	       (unsigned long long)s->tot.paused);
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
