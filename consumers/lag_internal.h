/*
 * What the lag monitor (consumers/lag.c: its thread, asks, snapshots),
 * one refresh (consumers/lag_refresh.c: the Kafka calls, a new snapshot)
 * and the end-offset rings (consumers/lag_rings.c) share.
 *
 * Thread safety: a refresh runs on the monitor's thread only, and the
 * rings are its own; a snapshot is immutable once built and counted.
 */
#ifndef MRI_LAG_INTERNAL_H
#define MRI_LAG_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumers/lag.h"

/* Something to refresh: a group on a topic. group NULL: a topic asked
 * about alone (only whether it exists) or watched (its partitions' start
 * and end too); topic NULL: every topic the group has offsets on. Strings
 * owned by the refresh's list. */
struct lag_pair {
	char *group;
	char *topic;
	bool  served;
	bool  watched;
};

/* A partition's end offsets as first seen (monotonic ms), oldest first:
 * the time lag's evidence. The monitor thread's own. */
struct lag_sample {
	int64_t  end;
	uint64_t seen;
};

struct lag_part {
	char             *topic;
	int32_t           partition;
	size_t            n;
	int64_t           minpos; /* the lowest position read this refresh */
	bool              moved;  /* to the next refresh's rings: topic too */
	struct lag_sample s[MRI_LAG_RING];
};

struct lag_rings {
	struct lag_part *v; /* sorted by (topic, partition) */
	size_t           n;
};

/* The snapshot behind struct mri_lag_snapshot (its first member). */
struct lag_snap {
	struct mri_lag_snapshot   pub;
	atomic_uint               refs;
	struct mri_lag_row       *rows;
	struct mri_lag_group     *groups;
	struct mri_lag_topic_row *topics;
	char                    **strs; /* what rows, groups, topics name */
	size_t                    nstrs;
	char                    **missing; /* asked topics that do not exist */
	size_t                    nmissing;
};

/* A new, empty snapshot with one hold; NULL when out of memory. */
struct lag_snap *lag__snap_new(void);
/* Release a hold; the last frees. */
void lag__snap_rele(struct lag_snap *s);
/* @returns whether \p topic is among \p s's missing topics. */
bool lag__snap_missing(const struct lag_snap *s, const char *topic);

/* The inputs of one refresh. */
struct lag_refresh {
	rd_kafka_t            *rk;
	int                    timeout_ms; /* each Kafka call */
	const struct lag_pair *pairs;      /* sorted by (group, topic), unique */
	size_t                 npairs;
	const struct lag_snap *prev;  /* rows carried over when Kafka fails */
	struct lag_rings      *rings; /* updated */
	atomic_bool           *stop;  /* checked between calls */
};

/*
 * One refresh: metadata, every group's committed offsets, the end and
 * start offsets, the rings, then the new snapshot into *out (one hold).
 * @returns MR_OK, or an mr_err with a sentence in \p why (the refresh
 *          failed as a whole: no metadata, out of memory, stopping).
 */
int lag__refresh(const struct lag_refresh *in, struct lag_snap **out,
		 char *why, size_t why_size);

/* Free the rings. */
void lag__rings_fini(struct lag_rings *r);

/* (topic, partition) order: <0, 0, >0 as strcmp. */
int lag__cmp_tp(const char *t1, int32_t p1, const char *t2, int32_t p2);

/* The ring of (topic, partition) in \p r, or NULL. */
struct lag_part *lag__ring_find(struct lag_rings *r, const char *topic,
				int32_t partition);

/* New rings in \p old for the partitions of \p ends (sorted), each
 * carrying its old samples, with this refresh's end pushed (when \p
 * ends_ok) at \p now. @returns MR_OK or MR_ENOMEM. */
int lag__rings_update(struct lag_rings *old,
		      const rd_kafka_topic_partition_list_t *ends,
		      bool ends_ok, uint64_t now);

/* The time lag of a reader at \p pos on \p p at monotonic \p now: the
 * time since the first sample whose end passed it; 0 when none did. */
int64_t lag__time_lag(const struct lag_part *p, int64_t pos, uint64_t now);

/* Note the end \p end seen at \p now: a new sample when it moved (the
 * ring thinned when full; reset when it went back). */
void lag__ring_push(struct lag_part *p, int64_t end, uint64_t now);

/* Drop the samples no reader at or above p->minpos needs (the newest is
 * kept). */
void lag__ring_trim(struct lag_part *p);

#endif
