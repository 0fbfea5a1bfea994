/*
 * What consumers/group.c (the group's thread and life) and
 * consumers/group_serve.c (FETCH, SETTLE and sessions) share: the group's
 * state, under its lock (g->lock) unless a field says otherwise.
 */
#ifndef MRI_GROUP_INTERNAL_H
#define MRI_GROUP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumers/engine.h"
#include "consumers/group.h"
#include "consumers/journal.h"
#include "proto/consume.h"

/* A buffered record, the engine's opaque: its hashes and encoded size are
 * computed once, on the group's thread, before the lock is taken. */
struct group_rec {
	rd_kafka_message_t *m;
	uint64_t            id;   /* of its message id: the dedupe key */
	uint64_t            pos;  /* of topic/partition/offset: attempts */
	uint64_t            key;  /* hash of the key */
	uint32_t            size; /* in a FETCH reply */
	uint32_t            busy; /* replies encoding it outside the lock */
};

/* A partition of ours: the engine knows it by its index in g->parts. */
struct group_part {
	bool                 used;
	rd_kafka_queue_t    *q; /* its own queue: read only while not full */
	char                *topic;
	int32_t              partition;
	int64_t              committed; /* last offset committed */
	struct group_rec   **msgs;      /* buffered, in offset order */
	size_t               head, count, cap; /* a ring */
};

/* A fetch waiting for messages. */
struct group_waiter {
	struct group_waiter *next;
	uint32_t             sid;
	struct mri_fetch     f;
	size_t               max_frame;
	uint64_t             deadline;
	mri_group_reply_cb   cb;
	void                *arg;
	struct mri_wbuf      out;
	// Handed out under the lock, encoded after it (group__complete).
	struct mri_delivery *ds;
	size_t               nds, ds_cap;
	size_t               size; /* of the reply, were all encoded */
	// What the reply hands out, for the journal.
	struct mri_journal_entry *ents;
	size_t                    nents;
};

struct mri_group {
	rd_kafka_t          *rk;
	struct mri_journal  *j; /* NULL: off */
	struct mri_engine   *e;
	struct mri_group_conf c;
	char                *name;
	pthread_mutex_t      lock;
	pthread_t            thread;
	bool                 started;
	atomic_int           stop;
	atomic_int           dropped; /* positions found dropped */
	bool                 draining;
	bool                 revoking; /* nothing is handed out meanwhile */
	struct group_part   *parts;
	size_t               nparts;
	struct group_waiter *waiters;
	size_t               filling; /* replies being encoded */
	size_t               sessions;
	uint64_t             next_commit_ms;
};

/** @returns CLOCK_MONOTONIC in milliseconds. */
uint64_t group__now(void);

/** @brief The wire view of record \p r: \p hv and \p idbuf (MRI_ID_MAX + 1
 *         bytes) hold what it points to. */
void group__view(const struct group_rec *r, struct mri_msg_view *v,
		 struct mri_hdr_view *hv, char *idbuf);

/** @brief Serve the waiters that can be served; those done are moved to
 *         *done. Called with the lock held. */
void group__serve(struct mri_group *g, uint64_t now,
		  struct group_waiter **done);

/** @brief Encode and answer (through the journal, when on) the waiters in
 *         \p done. Called without the lock. */
void group__complete(struct mri_group *g, struct group_waiter *done);

#endif
