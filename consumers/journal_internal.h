/*
 * What journal.c (one group's journal) and journal_hub.c (the Kafka
 * clients and threads that journals share) both see. Not for other
 * modules.
 *
 * Locks, in the order they are taken: the hub's assign (its reader's
 * assignment, changed by one journal at a time), its lock (its journals; a
 * record read is applied under it), a journal's wlock (its sends), the
 * hub's pend (every journal's records in flight), a journal's lock (its
 * memory). A write's callback runs with none of them held.
 */
#ifndef MRI_JOURNAL_INTERNAL_H
#define MRI_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumers/journal.h"
#include "consumers/journal_mem.h"

#define JOURNAL__BEHIND_MAX 64 /* records held behind */

/* A record sent and not yet reported (each is one, written behind or
 * not): its report, and its place among its journal's records in flight
 * (under the hub's pend). */
struct journal_write {
	struct mri_journal_hub *hub;
	mri_journal_cb          cb; /* NULL: none (behind, or taken by free) */
	void                   *arg;
	struct mri_journal     *j;       /* NULL once its journal let go */
	bool                    calling; /* its callback is running */
	bool                    orphan;  /* on the hub's orphans instead */
	struct journal_write   *prev, *next;
};

/* A record to send: its bytes and its write. */
struct journal_rec {
	uint8_t              *buf;
	size_t                len;
	struct journal_write *w;
};

/* A journal waiting for the reader's thread to put it on the hub. */
struct hub_add {
	struct mri_journal *j;
	int                 rc;
	bool                done;
	struct hub_add     *next;
};

struct mri_journal_hub {
	rd_kafka_t          *prod;
	rd_kafka_t          *reader;
	pthread_mutex_t      assign; /* the reader's assignment */
	pthread_mutex_t      lock;   /* the journals, and adds */
	struct mri_journal **v;
	size_t               n, cap;
	struct hub_add      *adds; /* for the reader's thread */
	pthread_cond_t       add_cv;
	pthread_mutex_t      pend; /* records in flight, of every journal */
	pthread_cond_t       pend_cv;
	// Records whose journal let go of them: their reports free them, or
	// the hub's free, after the producer, for those that never come.
	struct journal_write *orphans;
	pthread_t            thread, dr_thread;
	bool                 started, dr_started;
	atomic_int           stop;
};

struct mri_journal {
	struct mri_journal_hub *hub;
	bool                    own_hub; /* made for it, freed with it */
	bool                    added;   /* on the hub, read by its reader */
	rd_kafka_topic_t       *prod_topic; /* held: its metadata stays */
	char                    topic[256];
	pthread_mutex_t         lock;
	pthread_cond_t          cv;
	struct mri_journal_mem  mem;   /* under lock */
	pthread_mutex_t         wlock; /* sends, and what is behind */
	struct journal_rec      behind[JOURNAL__BEHIND_MAX + 1]; /* + one */
	size_t                  nbehind;
	// Mono ms by which what is behind must go, 0 when nothing is (set
	// under wlock, read without it by mri_journal_tick).
	_Atomic uint64_t        behind_due;
	uint64_t                sent_at; /* mono ms of the last send */
	int64_t                 read_next; /* the next record's offset */
	struct journal_write   *pend;      /* in flight, under hub->pend */
};

/* journal_hub.c */

/** @brief Put \p j on its hub: its reader reads j->topic from the start
 *         and applies what it reads (journal__read). Done by the
 *         reader's thread, between two records, so that nothing read
 *         before is applied to \p j; this waits for it. */
int journal__hub_add(struct mri_journal_hub *h, struct mri_journal *j);

/** @brief Take \p j off its hub: nothing read is applied to it after. */
void journal__hub_remove(struct mri_journal_hub *h, struct mri_journal *j);

/** @brief A write of \p j, its report to \p cb (NULL: none), counted in
 *         flight until its report. @returns NULL when out of memory. */
struct journal_write *journal__write_new(struct mri_journal *j,
					 mri_journal_cb cb, void *arg);

/** @brief \p w was not sent after all: uncount and free it. */
void journal__write_drop(struct journal_write *w);

/**
 * @brief Wait until \p j has no record in flight, at most \p timeout_ms
 *        (-1: until its callbacks that are running now return).
 * @returns whether none is.
 */
bool journal__wait_sent(struct mri_journal *j, int timeout_ms);

/** @brief Fail (MR_EUNAVAIL, on this thread) the callbacks of \p j's
 *         records still in flight, and let go of them: their reports,
 *         when they come, only free them. Returns once none runs. */
void journal__fail_sent(struct mri_journal *j);

/* journal.c */

/** @brief Apply record \p m read from j->topic (with the hub's lock). */
void journal__read(struct mri_journal *j, const rd_kafka_message_t *m);

#endif
