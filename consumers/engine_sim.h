/*
 * The model behind engine_sim_test.c (read its comment first): Kafka's
 * partitions, what the engine's caller keeps, what each record is in the
 * current engine, and the checks made after every step. engine_sim.c
 * holds the model's bookkeeping, engine_sim_check.c the checks,
 * engine_sim_test.c the random events and the schedules.
 *
 * Thread safety: not thread-safe; one simulation at a time.
 */
#ifndef MRI_ENGINE_SIM_H
#define MRI_ENGINE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumers/engine.h"

#define SIM_SCHEDULES 3000
#define SIM_MAXP      4
#define SIM_MAXLOG    1024
#define SIM_KEYS      8
#define SIM_MAXSESS   4
#define SIM_MAXSID    64
#define SIM_MAXFLIGHT 256
#define SIM_STALE     64
#define SIM_TRAIL     40
#define SIM_FETCHMAX  12
#define SIM_TAKEMAX   4

/* The least delay before a record whose quarantine failed is exhausted
 * again: engine.c's ENGINE__QUARANTINE_RETRY_MS ("at least 100 ms"). */
#define SIM_QUARANTINE_RETRY_MS 100

/*
 * What a record is in the current engine. WAIT is buffered and neither in
 * flight nor backing off nor being quarantined: ready when it heads its
 * key (or is not ordered), exhausted instead when its attempts are spent
 * (sim__spent). BACKOFF waits for a due time known only within bounds
 * (the jitter's draw is the engine's): until a tick at or past due_hi it
 * may still be backing off, and after one past due_lo it may be ready.
 */
enum sim_st {
	SIM_NONE,
	SIM_WAIT,
	SIM_INFLIGHT,
	SIM_ACKED,
	SIM_PREACKED,
	SIM_BACKOFF,
	SIM_QUARANTINE,
};

struct sim_rec {
	int64_t  offset;
	uint64_t key; /* 1..SIM_KEYS */
	bool     keyless;
	uint32_t attempts;    /* durable count, as the caller persists it */
	bool     acked_ever;  /* acked (or quarantined) by any engine */
	bool     quarantined; /* in the dead-letter topic, at some point */
	bool     dedupe;      /* the caller's dedupe store knows it */
	bool     kept;        /* kept as acked with a commit: (g) */
	uint8_t  st;          /* enum sim_st, in the current epoch */
	bool     listed;      /* in the list this epoch was assigned with */
	bool     delivered;   /* in the current epoch */
	bool     rejected;    /* in the current epoch */
	uint64_t failed_at;   /* BACKOFF: when it began */
	uint64_t due_lo;      /* BACKOFF: its due time is in [due_lo, */
	uint64_t due_hi;      /*          due_hi] */
};

struct sim_part {
	struct sim_rec rec[SIM_MAXLOG];
	size_t         n;
	int64_t        next;      /* offset of the next append */
	int64_t        committed; /* in Kafka */
	size_t         cidx;      /* index of the first record past it */
	int64_t        kept[SIM_MAXLOG];
	size_t         nkept;
	/* The current epoch: from an assign to a revoke or crash. */
	bool    assigned;
	int64_t start;
	size_t  first;       /* index of the first record at or past start */
	size_t  pos;         /* index of the next record to arrive */
	size_t  acked_to;    /* [first, acked_to) are acked */
	int64_t last_commit; /* committable when last seen */
	int64_t first_order[SIM_KEYS + 1]; /* last first delivery, by key */
};

/* A delivery in flight, or (sid unused) a record being quarantined. */
struct sim_flight {
	uint64_t handle;
	uint64_t deadline;
	size_t   idx;
	int32_t  p;
	uint32_t sid;
};

/* What the observer was told, not yet matched with a failed attempt. */
struct sim_obs {
	uint64_t             handle;
	int64_t              offset;
	int32_t              p;
	uint32_t             attempt;
	enum mri_engine_fail why;
};

struct sim_ref {
	int32_t p;
	size_t  idx;
};

/*
 * The model's view of what may go out now (sim__scan): what is surely
 * ready, exhausted, backing off, being quarantined, and the records that
 * backed off whose due may have passed (maybe[0]: ready once due;
 * maybe[1]: exhausted once due, their attempts spent).
 */
struct sim_scan {
	size_t         ready, exhausted, backoff, quarantining;
	struct sim_ref first[2]; /* the first ready, the first exhausted */
	struct sim_ref sure[SIM_MAXP * SIM_MAXLOG]; /* surely backing off */
	struct sim_ref maybe[2][SIM_MAXP * SIM_MAXLOG];
	size_t         nmaybe[2];
	uint64_t       min_lo;      /* of every record backing off */
	uint64_t       min_hi_sure; /* of those surely backing off */
};

struct sim_totals {
	uint64_t schedules, events, deliveries, redeliveries, acks, nacks,
		rejects, expiries, closes, revokes, crashes, commits,
		kept_skipped, stale, paused, max_attempt, backoffs, taken,
		spent_on_arrival, quarantined, quarantine_failed, limits,
		held_by_limit, pinned, dropped_retrying;
};

struct sim {
	struct sim_part        part[SIM_MAXP];
	int                    np;
	struct mri_engine_conf conf;
	struct mri_engine     *e;
	uint64_t               rng;
	uint64_t               now;
	uint64_t               tick_at; /* the last tick */
	size_t                 limit;   /* mri_engine_set_limit's */
	uint64_t               failed;  /* failed attempts in this engine */
	uint64_t               acked;   /* acks and quarantines in it */
	bool                   commit_always;
	uint32_t               sids[SIM_MAXSESS];
	int                    nsids;
	uint32_t               used[SIM_MAXSID]; /* credit, by sid */
	struct sim_flight      fl[SIM_MAXFLIGHT];
	size_t                 nfl;
	struct sim_flight      qu[SIM_MAXFLIGHT]; /* being quarantined */
	size_t                 nqu;
	struct sim_obs         obs[SIM_MAXFLIGHT];
	size_t                 nobs;
	bool                   obs_overflow;
	uint64_t               stale[SIM_STALE];
	size_t                 nstale;
	struct sim_scan        scan;
	char                   trail[SIM_TRAIL][120];
	size_t                 ntrail;
	/* For the report of a failure. */
	const char       *mode;
	unsigned          sched;
	unsigned          step;
	struct sim_totals tot;
};

extern uint64_t sim__seed;
extern bool     sim__trace;
extern bool     sim__loose; /* only the properties, no exact model */

/* Names of enum sim_st and enum mri_engine_fail, for messages. */
extern const char *const sim__st_names[];
extern const char *const sim__why_names[];

/* ---- randomness and reporting ---------------------------------------- */

uint64_t sim__mix(uint64_t x);
/** @returns a draw in [0, n) (0 if n is 0). */
uint64_t sim__rand(struct sim *s, uint64_t n);

/** @brief One line of the trail (printed with MR_SIM_TRACE=1). */
void sim__ev(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** @brief Report the failure with its seed and trail, and end the test. */
void sim__fail(struct sim *s, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#define SIM_CHECK(s, cond, ...)                                              \
	do {                                                                 \
		if (!(cond))                                                 \
			sim__fail((s), __LINE__, __VA_ARGS__);               \
	} while (0)

/* ---- the model ------------------------------------------------------- */

void  *sim__opaque(int32_t p, int64_t offset);
bool   sim__is_acked(const struct sim_rec *r);
/** @returns whether \p r is exhausted when it heads its key. */
bool   sim__spent(const struct sim *s, const struct sim_rec *r);
/** @returns the index of \p offset in the log of \p pt, or SIZE_MAX. */
size_t sim__find(const struct sim_part *pt, int64_t offset);
void   sim__stale_push(struct sim *s, uint64_t handle);
/** @brief Drop in-flight entry \p i; its record goes back to \p st. */
void   sim__flight_drop(struct sim *s, size_t i, enum sim_st st);
/** @brief Drop quarantine entry \p i (its handle goes stale). */
void   sim__quarantine_drop(struct sim *s, size_t i);
/** @brief What the caller keeps with a commit, checked: (a). */
void   sim__store(struct sim *s, int32_t p, int64_t commit,
		  const int64_t *kept, size_t nkept);
void   sim__epoch_end(struct sim *s, int32_t p);
void   sim__assign(struct sim *s, int32_t p);

/** @brief The engine's observer: keeps what it is told in s->obs. */
void sim__observe(void *arg, const struct mri_delivery *d,
		  enum mri_engine_fail why);

/**
 * @brief In-flight entry \p i failed (\p why): the observer must have been
 *        told once (l); the record backs off (from s->now) or, its
 *        attempts spent, is exhausted.
 */
void sim__flight_failed(struct sim *s, size_t i, enum mri_engine_fail why);

/** @brief Record \p r (its quarantine failed when \p quarantine) backs
 *         off from s->now, within the bounds struct mri_retry gives. */
void sim__backoff(struct sim *s, struct sim_rec *r, bool quarantine);

/* ---- the checks ------------------------------------------------------ */

/** @brief Fill s->scan; records surely due by the last tick become WAIT. */
void sim__scan(struct sim *s);

/** @brief The record \p ref points at. */
struct sim_rec *sim__ref(struct sim *s, struct sim_ref ref);

/** @brief Records of s->scan.maybe[k] are not due yet (or are, \p due). */
void sim__settle(struct sim *s, int k, bool due);

/** @brief After a fetch that could have taken more (\p exhausted: a take
 *         of exhausted records): nothing of that kind is left (i), and
 *         what might have been due is not. */
void sim__nothing_left(struct sim *s, bool exhausted);

/** @brief mri_engine_next_due said \p due before a tick at or past it:
 *         if only one record may be due then, it is. */
void sim__pin(struct sim *s, uint64_t due);

/** @brief One delivery: (b), (c), (d), (g), (h), (i), (j). */
void sim__delivered(struct sim *s, uint32_t sid,
		    const struct mri_delivery *d);

/** @brief One record taken for quarantine: (g), (h), (i), (j). */
void sim__taken(struct sim *s, const struct mri_delivery *d);

/** @brief Everything after a step: (a), (l), (m) and the model. */
void sim__check(struct sim *s);

#endif
