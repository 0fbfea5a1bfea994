/*
 * The Kafka clients and threads that groups' journals share
 * (journal.h, struct mri_journal_hub): one producer, whose delivery
 * reports a thread of its own serves (and answers the groups' fetches
 * and acks), and one reader, assigned partition 0 of each journal's
 * topic, whose records a second thread applies to the journal of that
 * topic. A journal made without a hub has one of its own.
 */
#define _GNU_SOURCE /* pthread_setname_np */

#include "consumers/journal_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"

#define HUB__POLL_MS 100

/* ---- records in flight -------------------------------------------------- */

struct journal_write *
journal__write_new(struct mri_journal *j, mri_journal_cb cb, void *arg)
{
	struct journal_write *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->hub = j->hub;
	w->cb  = cb;
	w->arg = arg;
	w->j   = j;
	pthread_mutex_lock(&j->hub->pend);
	w->next = j->pend;
	if (j->pend != NULL)
		j->pend->prev = w;
	j->pend = w;
	pthread_mutex_unlock(&j->hub->pend);
	return w;
}

/* Take \p w off its journal's list, or the hub's orphans, with pend
 * held. */
static void
hub__unlink(struct journal_write *w)
{
	struct mri_journal    *j    = w->j;
	struct journal_write **head = j != NULL  ? &j->pend
				      : w->orphan ? &w->hub->orphans
						  : NULL;

	if (head == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		*head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->j      = NULL;
	w->orphan = false;
	if (j != NULL && j->pend == NULL)
		pthread_cond_broadcast(&w->hub->pend_cv);
}

/* Put \p w (off every list) on the hub's orphans, with pend held. */
static void
hub__orphan(struct journal_write *w)
{
	struct mri_journal_hub *h = w->hub;

	w->orphan = true;
	w->prev   = NULL;
	w->next   = h->orphans;
	if (h->orphans != NULL)
		h->orphans->prev = w;
	h->orphans = w;
}

void
journal__write_drop(struct journal_write *w)
{
	pthread_mutex_lock(&w->hub->pend);
	hub__unlink(w);
	pthread_mutex_unlock(&w->hub->pend);
	free(w);
}

bool
journal__wait_sent(struct mri_journal *j, int timeout_ms)
{
	struct mri_journal_hub *h = j->hub;
	uint64_t                deadline =
	    timeout_ms < 0 ? 0 : mri_deadline_in((uint64_t)timeout_ms);
	bool none;

	pthread_mutex_lock(&h->pend);
	while (j->pend != NULL) {
		if (timeout_ms < 0)
			pthread_cond_wait(&h->pend_cv, &h->pend);
		else if (mri_cond_wait_until(&h->pend_cv, &h->pend,
					     deadline) != 0)
			break;
	}
	none = j->pend == NULL;
	pthread_mutex_unlock(&h->pend);
	return none;
}

void
journal__fail_sent(struct mri_journal *j)
{
	struct mri_journal_hub *h = j->hub;

	for (;;) {
		struct journal_write *w;
		mri_journal_cb        cb = NULL;
		void                 *arg = NULL;

		pthread_mutex_lock(&h->pend);
		for (w = j->pend; w != NULL && w->calling; w = w->next)
			;
		if (w != NULL) {
			cb    = w->cb;
			arg   = w->arg;
			w->cb = NULL;
			hub__unlink(w);
			hub__orphan(w);
		}
		pthread_mutex_unlock(&h->pend);
		if (w == NULL)
			break;
		if (cb != NULL)
			cb(arg, MR_EUNAVAIL);
	}
	// What is left is running its callback now.
	journal__wait_sent(j, -1);
}

/* ---- the producer's reports --------------------------------------------- */

static void
hub__dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct journal_write *w = m->_private;
	mri_journal_cb        cb;

	(void)rk;
	(void)opaque;
	if (m->err)
		mri_warn("component=journal topic=%s msg=\"a journal record "
			 "was not written: %s\"",
			 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->hub->pend);
	cb         = w->cb;
	w->calling = cb != NULL;
	if (cb == NULL)
		hub__unlink(w);
	pthread_mutex_unlock(&w->hub->pend);
	if (cb != NULL) {
		cb(w->arg, m->err ? MR_EUNAVAIL : MR_OK);
		// Its journal may be waiting for this one to return.
		pthread_mutex_lock(&w->hub->pend);
		hub__unlink(w);
		pthread_mutex_unlock(&w->hub->pend);
	}
	free(w);
}

/* Delivery reports answer fetches and acks: on a thread of their own, so
 * that none waits for the reader's poll. */
static void *
hub__dr_thread(void *arg)
{
	struct mri_journal_hub *h = arg;

	pthread_setname_np(pthread_self(), "mr:journal-dr");
	while (!atomic_load(&h->stop)) {
		uint64_t now;

		rd_kafka_poll(h->prod, HUB__POLL_MS);
		// What no write took along in time goes by itself (a group's
		// tick sends it sooner; this is for a journal without a
		// group that ticks).
		now = mri_mono_ms();
		pthread_mutex_lock(&h->lock);
		for (size_t i = 0; i < h->n; i++)
			mri_journal_tick(h->v[i], now);
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

/* ---- the reader --------------------------------------------------------- */

static int hub__assign(struct mri_journal_hub *h, const char *topic,
		       bool add);
static void hub__add(struct mri_journal_hub *h, struct hub_add *a);

static void *
hub__thread(void *arg)
{
	struct mri_journal_hub *h = arg;

	pthread_setname_np(pthread_self(), "mr:journal");
	while (!atomic_load(&h->stop)) {
		rd_kafka_message_t *m;
		const char         *topic;
		struct hub_add     *a;

		// Journals are put on here, between two records, so that no
		// record read before is applied to them.
		pthread_mutex_lock(&h->lock);
		a       = h->adds;
		h->adds = NULL;
		pthread_mutex_unlock(&h->lock);
		while (a != NULL) {
			struct hub_add *next = a->next;

			hub__add(h, a);
			a = next;
		}
		m = rd_kafka_consumer_poll(h->reader, HUB__POLL_MS);
		if (m == NULL)
			continue;
		topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "";
		if (m->err != 0 && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			mri_warn("component=journal topic=%s msg=\"%s\"", topic,
				 rd_kafka_message_errstr(m));
		// A journal taken off meanwhile is not found: what was read
		// for it is dropped.
		pthread_mutex_lock(&h->lock);
		for (size_t i = 0; i < h->n; i++)
			if (strcmp(h->v[i]->topic, topic) == 0)
				journal__read(h->v[i], m);
		pthread_mutex_unlock(&h->lock);
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

/* Assign (true) or unassign partition 0 of \p topic, from its start. */
static int
hub__assign(struct mri_journal_hub *h, const char *topic, bool add)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_error_t                *err;
	int                              rc = MR_OK;

	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, 0)->offset =
	    RD_KAFKA_OFFSET_BEGINNING;
	err = add ? rd_kafka_incremental_assign(h->reader, l)
		  : rd_kafka_incremental_unassign(h->reader, l);
	if (err != NULL) {
		mri_warn("component=journal topic=%s msg=\"the journal's "
			 "reader could not %s it: %s\"",
			 topic, add ? "assign" : "unassign",
			 rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
		rc = MR_EKAFKA;
	}
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}

/* @returns how many of \p h's journals read \p topic, with the lock. */
static size_t
hub__readers(const struct mri_journal_hub *h, const char *topic)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++)
		n += strcmp(h->v[i]->topic, topic) == 0;
	return n;
}

/* Put a->j on the hub, on the reader's thread; a->done tells. */
static void
hub__add(struct mri_journal_hub *h, struct hub_add *a)
{
	struct mri_journal *j = a->j;
	size_t              before;
	int                 rc = MR_OK;

	pthread_mutex_lock(&h->assign);
	pthread_mutex_lock(&h->lock);
	before = hub__readers(h, j->topic);
	if (h->n == h->cap) {
		size_t               nc = h->cap ? h->cap * 2 : 4;
		struct mri_journal **v  = realloc(h->v, nc * sizeof(*v));

		if (v == NULL)
			rc = MR_ENOMEM;
		else {
			h->v   = v;
			h->cap = nc;
		}
	}
	pthread_mutex_unlock(&h->lock);
	// A second journal of a group (a subscription made while the last
	// one goes, or an exclusive one) reads the topic from its start too:
	// the reader starts the topic again. The journals already on it
	// skip what they read before (journal__read).
	if (rc == MR_OK && before > 0)
		hub__assign(h, j->topic, false);
	if (rc == MR_OK && (rc = hub__assign(h, j->topic, true)) != MR_OK &&
	    before > 0)
		hub__assign(h, j->topic, true); // the others go on reading
	pthread_mutex_lock(&h->lock);
	if (rc == MR_OK) {
		h->v[h->n++] = j;
		j->added     = true;
	}
	a->rc   = rc;
	a->done = true;
	pthread_cond_broadcast(&h->add_cv);
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_unlock(&h->assign);
}

int
journal__hub_add(struct mri_journal_hub *h, struct mri_journal *j)
{
	struct hub_add a = {.j = j, .rc = MR_ESHUTDOWN};

	pthread_mutex_lock(&h->lock);
	a.next  = h->adds;
	h->adds = &a;
	while (!a.done && !atomic_load(&h->stop))
		mri_cond_wait_until(&h->add_cv, &h->lock,
				    mri_deadline_in(HUB__POLL_MS));
	if (!a.done) { // the hub stopped first: take it back
		struct hub_add **pp = &h->adds;

		while (*pp != NULL && *pp != &a)
			pp = &(*pp)->next;
		if (*pp == &a)
			*pp = a.next;
	}
	pthread_mutex_unlock(&h->lock);
	return a.rc;
}

void
journal__hub_remove(struct mri_journal_hub *h, struct mri_journal *j)
{
	size_t left;

	if (!j->added)
		return;
	pthread_mutex_lock(&h->assign);
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i] == j) {
			h->v[i] = h->v[--h->n];
			break;
		}
	left     = hub__readers(h, j->topic);
	j->added = false;
	pthread_mutex_unlock(&h->lock);
	if (left == 0)
		hub__assign(h, j->topic, false);
	pthread_mutex_unlock(&h->assign);
}

/* ---- life --------------------------------------------------------------- */

int
mri_journal_hub_new(struct mri_journal_hub **out, const rd_kafka_conf_t *conf,
		    char *errstr, size_t errstr_size)
{
	struct mri_journal_hub *h  = calloc(1, sizeof(*h));
	rd_kafka_conf_t        *pc = NULL, *rc = NULL;

	if (h == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->assign, NULL);
	pthread_mutex_init(&h->pend, NULL);
	mri_cond_init(&h->pend_cv);
	mri_cond_init(&h->add_cv);
	pc = rd_kafka_conf_dup(conf);
	rc = rd_kafka_conf_dup(conf);
	// Not idempotent: a record applies the same in any order and twice
	// (the larger attempt wins, acked ids are a set), and librdkafka
	// 2.0.2's idempotent producer holds queue.buffering.backpressure.
	// threshold at 1, which kept its broker thread polling while a
	// request waited to go (a quarter of mailroomd's CPU in the consume
	// benchmark with records written behind).
	if (mri_kafka_set(pc, "enable.idempotence", "false", errstr,
			  errstr_size) ||
	    mri_kafka_set(pc, "acks", "all", errstr, errstr_size) ||
	    mri_kafka_set(pc, "linger.ms", "0", errstr, errstr_size) ||
	    // Every group's records wait in one queue while Kafka is away:
	    // room for all of them (librdkafka's default is 100 000).
	    mri_kafka_set(pc, "queue.buffering.max.messages", "1000000",
			  errstr, errstr_size) ||
	    mri_kafka_set(rc, "enable.partition.eof", "false", errstr,
			  errstr_size) ||
	    // The reader only assigns: it never joins nor commits, but
	    // librdkafka's consumer queue wants a group.id all the same.
	    mri_kafka_set(rc, "group.id", "__mailroom.journal-reader",
			  errstr, errstr_size) ||
	    mri_kafka_set(rc, "enable.auto.commit", "false", errstr,
			  errstr_size) ||
	    mri_kafka_set(rc, "auto.offset.reset", "earliest", errstr,
			  errstr_size) ||
	    // Records come a few per millisecond: fetch them 50 ms at a time
	    // rather than one request each (catch-up waits no longer).
	    mri_kafka_set(rc, "fetch.min.bytes", "1048576", errstr,
			  errstr_size) ||
	    mri_kafka_set(rc, "fetch.wait.max.ms", "50", errstr,
			  errstr_size))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(pc, hub__dr_cb);
	rd_kafka_conf_set_log_cb(pc, mri_kafka_log_cb);
	rd_kafka_conf_set_log_cb(rc, mri_kafka_log_cb);
	if ((h->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr,
				    errstr_size)) == NULL)
		goto fail;
	pc = NULL;
	if ((h->reader = rd_kafka_new(RD_KAFKA_CONSUMER, rc, errstr,
				      errstr_size)) == NULL)
		goto fail;
	rc = NULL;
	rd_kafka_poll_set_consumer(h->reader);
	if (pthread_create(&h->thread, NULL, hub__thread, h) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		goto fail;
	}
	h->started = true;
	if (pthread_create(&h->dr_thread, NULL, hub__dr_thread, h) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		goto fail;
	}
	h->dr_started = true;
	*out = h;
	return MR_OK;
fail:
	if (pc)
		rd_kafka_conf_destroy(pc);
	if (rc)
		rd_kafka_conf_destroy(rc);
	mri_journal_hub_free(h);
	return MR_ECONFIG;
}

void
mri_journal_hub_free(struct mri_journal_hub *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->stop, 1);
	if (h->started)
		pthread_join(h->thread, NULL);
	if (h->dr_started)
		pthread_join(h->dr_thread, NULL);
	if (h->prod) {
		// Every journal let go of what it had in flight: the reports
		// only free them.
		rd_kafka_purge(h->prod, RD_KAFKA_PURGE_F_QUEUE |
					    RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(h->prod, 0);
		rd_kafka_destroy(h->prod);
	}
	// Reports that never came (a request partly sent is not purged,
	// and destroy drops its report).
	while (h->orphans != NULL) {
		struct journal_write *w = h->orphans;

		h->orphans = w->next;
		free(w);
	}
	if (h->reader) {
		rd_kafka_consumer_close(h->reader);
		rd_kafka_destroy(h->reader);
	}
	free(h->v);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->assign);
	pthread_mutex_destroy(&h->pend);
	pthread_cond_destroy(&h->pend_cv);
	pthread_cond_destroy(&h->add_cv);
	free(h);
}
