#define _GNU_SOURCE /* pthread_setname_np */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "consumers/journal_internal.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"

#define JOURNAL__PREFIX "__mailroom.journal."
#define JOURNAL__BEHIND_MS 20  /* a record behind waits at most this for a
				  write to go with (then the group's next
				  tick sends it) */
#define JOURNAL__FREE_MS 5000  /* what free waits for records in flight */

/* A held write that Kafka's producer refused: its callback, called once
 * no lock is held. */
struct journal_fail {
	mri_journal_cb cb;
	void          *arg;
};

/* Send what is behind and then record \p buf (taken; NULL: none) of
 * \p len bytes, its report to \p w (taken), with wlock held. One producev
 * each, back to back: the broker thread takes what is queued when it
 * wakes, as a rule all of them in one request. A held record the producer
 * refuses goes to \p fails (JOURNAL__BEHIND_MAX at most), for
 * journal__fire. @returns MR_OK, or why \p buf was not sent. */
static int
journal__send_locked(struct mri_journal *j, uint8_t *buf, size_t len,
		     struct journal_write *w, struct journal_fail *fails,
		     size_t *nfails)
{
	struct journal_rec *m  = j->behind;
	size_t              n  = j->nbehind;
	int                 rc = MR_OK;

	if (buf != NULL)
		m[n++] = (struct journal_rec){buf, len, w};
	j->nbehind = 0;
	j->sent_at = mri_mono_ms();
	atomic_store_explicit(&j->behind_due, 0, memory_order_relaxed);
	for (size_t i = 0; i < n; i++) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
		    j->hub->prod, RD_KAFKA_V_TOPIC(j->topic),
		    RD_KAFKA_V_PARTITION(0),
		    RD_KAFKA_V_VALUE(m[i].buf, m[i].len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
		    RD_KAFKA_V_OPAQUE(m[i].w), RD_KAFKA_V_END);

		if (err == 0)
			continue;
		free(m[i].buf);
		if (buf != NULL && i == n - 1) { // the caller's own
			rc = MR_EUNAVAIL;
		} else if (m[i].w->cb != NULL) {
			fails[(*nfails)++] =
			    (struct journal_fail){m[i].w->cb, m[i].w->arg};
		} else {
			mri_warn("component=journal topic=%s msg=\"a dispatch "
				 "record was not written: %s\"",
				 j->topic, rd_kafka_err2str(err));
		}
		journal__write_drop(m[i].w);
	}
	return rc;
}

/* Call the callbacks of \p n held writes that were not sent. */
static void
journal__fire(const struct journal_fail *fails, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fails[i].cb(fails[i].arg, MR_EUNAVAIL);
}

/* Hold record \p buf (taken) of \p len bytes, its report to \p w
 * (taken), until \p due (mono ms) at the latest, with wlock held; what is
 * behind goes now when it is full, or its first is overdue at \p now. */
static void
journal__hold_locked(struct mri_journal *j, uint8_t *buf, size_t len,
		     struct journal_write *w, uint64_t due, uint64_t now,
		     struct journal_fail *fails, size_t *nfails)
{
	uint64_t first =
	    atomic_load_explicit(&j->behind_due, memory_order_relaxed);

	j->behind[j->nbehind++] = (struct journal_rec){buf, len, w};
	if (first == 0 || due < first)
		atomic_store_explicit(&j->behind_due, due > 0 ? due : 1,
				      memory_order_relaxed);
	else
		due = first;
	if (j->nbehind == JOURNAL__BEHIND_MAX || due <= now)
		journal__send_locked(j, NULL, 0, NULL, fails, nfails);
}

/* The write of record \p buf of \p len bytes, its report to \p cb, once
 * the record counts in memory (at \p now, wall ms). @returns the write, or
 * NULL when out of memory (\p buf freed). */
static struct journal_write *
journal__apply_new(struct mri_journal *j, uint8_t *buf, size_t len,
		   int64_t now, mri_journal_cb cb, void *arg)
{
	struct journal_write *w = journal__write_new(j, cb, arg);

	if (w == NULL) {
		free(buf);
		return NULL;
	}
	pthread_mutex_lock(&j->lock);
	mri_journal_mem_apply(&j->mem, buf, len, now, false);
	pthread_mutex_unlock(&j->lock);
	return w;
}

/* Apply record \p buf (taken) and send it, with what is behind; \p cb is
 * called once Kafka has it. */
static int
journal__send(struct mri_journal *j, uint8_t *buf, size_t len, int64_t now,
	      mri_journal_cb cb, void *arg)
{
	struct journal_write *w = journal__apply_new(j, buf, len, now, cb, arg);
	struct journal_fail   fails[JOURNAL__BEHIND_MAX];
	size_t                nfails = 0;
	int                   rc;

	if (w == NULL)
		return MR_ENOMEM;
	pthread_mutex_lock(&j->wlock);
	rc = journal__send_locked(j, buf, len, w, fails, &nfails);
	pthread_mutex_unlock(&j->wlock);
	journal__fire(fails, nfails);
	return rc;
}

/* Send what is behind if it is due at \p now (0: all of it). */
static void
journal__send_behind(struct mri_journal *j, uint64_t now)
{
	struct journal_fail fails[JOURNAL__BEHIND_MAX];
	size_t              nfails = 0;

	pthread_mutex_lock(&j->wlock);
	if (j->nbehind > 0 &&
	    (now == 0 || atomic_load(&j->behind_due) <= now))
		journal__send_locked(j, NULL, 0, NULL, fails, &nfails);
	pthread_mutex_unlock(&j->wlock);
	journal__fire(fails, nfails);
}

int
mri_journal_write(struct mri_journal *j, enum mri_journal_kind kind,
		  const struct mri_journal_entry *e, size_t n,
		  mri_journal_cb cb, void *arg)
{
	int64_t  now = mri_wall_ms();
	size_t   len;
	uint8_t *buf;

	if (n > UINT32_MAX)
		return MR_EINVAL;
	buf = mri_journal_rec_entries(j->mem.writer, kind, e, n, now, &len);
	if (buf == NULL)
		return MR_ENOMEM;
	return journal__send(j, buf, len, now, cb, arg);
}

int
mri_journal_write_linger(struct mri_journal *j, enum mri_journal_kind kind,
			 const struct mri_journal_entry *e, size_t n,
			 uint32_t linger_ms, mri_journal_cb cb, void *arg)
{
	int64_t               now = mri_wall_ms();
	struct journal_fail   fails[JOURNAL__BEHIND_MAX];
	size_t                nfails = 0, len;
	struct journal_write *w;
	uint64_t              mono;
	uint8_t              *buf;

	if (linger_ms == 0)
		return mri_journal_write(j, kind, e, n, cb, arg);
	if (n > UINT32_MAX)
		return MR_EINVAL;
	buf = mri_journal_rec_entries(j->mem.writer, kind, e, n, now, &len);
	if (buf == NULL)
		return MR_ENOMEM;
	if ((w = journal__apply_new(j, buf, len, now, cb, arg)) == NULL)
		return MR_ENOMEM;
	mono = mri_mono_ms();
	pthread_mutex_lock(&j->wlock);
	// After a quiet spell it goes at once: a lone ack waits for nothing.
	// Under load, the acks of linger_ms share one request.
	if (mono >= j->sent_at + linger_ms) {
		int rc = journal__send_locked(j, buf, len, w, fails, &nfails);

		pthread_mutex_unlock(&j->wlock);
		journal__fire(fails, nfails);
		return rc;
	}
	journal__hold_locked(j, buf, len, w, j->sent_at + linger_ms, mono,
			     fails, &nfails);
	pthread_mutex_unlock(&j->wlock);
	journal__fire(fails, nfails);
	return MR_OK;
}

/* A dispatch record of runs \p r, written at \p now, in *buf (free it). */
static int
journal__rec_runs(struct mri_journal *j, const struct mri_journal_run *r,
		  size_t n, int64_t now, uint8_t **buf, size_t *len)
{
	if (n > UINT32_MAX)
		return MR_EINVAL;
	*buf = mri_journal_rec_runs(j->mem.writer, r, n, now, len);
	return *buf == NULL ? MR_ENOMEM : MR_OK;
}

int
mri_journal_write_runs(struct mri_journal *j, const struct mri_journal_run *r,
		       size_t n, mri_journal_cb cb, void *arg)
{
	int64_t  now = mri_wall_ms();
	size_t   len;
	uint8_t *buf;
	int      err;

	if ((err = journal__rec_runs(j, r, n, now, &buf, &len)) != MR_OK)
		return err;
	return journal__send(j, buf, len, now, cb, arg);
}

int
mri_journal_write_behind(struct mri_journal *j,
			 const struct mri_journal_run *r, size_t n)
{
	int64_t               now = mri_wall_ms();
	struct journal_fail   fails[JOURNAL__BEHIND_MAX];
	size_t                nfails = 0, len;
	uint64_t              mono;
	uint8_t              *buf;
	struct journal_write *w;
	int                   err;

	if ((err = journal__rec_runs(j, r, n, now, &buf, &len)) != MR_OK)
		return err;
	if ((w = journal__apply_new(j, buf, len, now, NULL, NULL)) == NULL)
		return MR_ENOMEM;
	mono = mri_mono_ms();
	pthread_mutex_lock(&j->wlock);
	journal__hold_locked(j, buf, len, w, mono + JOURNAL__BEHIND_MS, mono,
			     fails, &nfails);
	pthread_mutex_unlock(&j->wlock);
	journal__fire(fails, nfails);
	return MR_OK;
}

bool
mri_journal_tick(struct mri_journal *j, uint64_t mono_ms)
{
	uint64_t due =
	    atomic_load_explicit(&j->behind_due, memory_order_relaxed);

	if (due == 0 || mono_ms < due)
		return false;
	journal__send_behind(j, mono_ms);
	return true;
}

int
mri_journal_flush_behind(struct mri_journal *j, int timeout_ms)
{
	journal__send_behind(j, 0);
	// Not rd_kafka_flush: the producer may be other groups' too, and
	// the hub's report thread serves the reports; this only waits.
	return journal__wait_sent(j, timeout_ms) ? MR_OK : MR_ETIMEDOUT;
}

void
mri_journal_lookup(struct mri_journal *j, size_t n, uint64_t part,
		   const int64_t *offsets, uint32_t *attempts,
		   const uint64_t *id, bool *acked)
{
	pthread_mutex_lock(&j->lock);
	mri_journal_mem_lookup(&j->mem, n, part, offsets, attempts, id, acked);
	pthread_mutex_unlock(&j->lock);
}

/* ---- what the hub's reader reads ---------------------------------------- */

void
journal__read(struct mri_journal *j, const rd_kafka_message_t *m)
{
	int64_t now = mri_wall_ms();

	pthread_mutex_lock(&j->lock);
	// Below read_next: the reader started the topic again for a second
	// journal of it (journal_hub.c); this one has it already.
	if (m->err == 0 && m->offset >= j->read_next) {
		// Our own records were applied when written: only the offset
		// moves for them.
		mri_journal_mem_apply(&j->mem, m->payload, m->len, now, true);
		j->read_next = m->offset + 1;
	}
	mri_journal_mem_expire(&j->mem, now);
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->lock);
}

int
mri_journal_catch_up(struct mri_journal *j, int timeout_ms)
{
	int64_t  lo = 0, hi = 0;
	int      rc       = MR_OK;
	uint64_t deadline = mri_deadline_in((uint64_t)timeout_ms);

	// A topic just made has no leader for a moment: ask again.
	while (rd_kafka_query_watermark_offsets(j->hub->reader, j->topic, 0,
						&lo,
						&hi, 1000) != 0) {
		if (mri_deadline_left(deadline) == 0)
			return MR_ETIMEDOUT;
		usleep(100000);
	}
	pthread_mutex_lock(&j->lock);
	if (j->read_next < lo)
		j->read_next = lo;
	while (j->read_next < hi && rc == MR_OK)
		if (mri_cond_wait_until(&j->cv, &j->lock, deadline) != 0)
			rc = MR_ETIMEDOUT;
	pthread_mutex_unlock(&j->lock);
	return rc;
}

/* ---- life ------------------------------------------------------------- */

/* Have the producer know the journal's partition before the first write.
 * librdkafka 2.0.2 asks for the metadata of a topic first produced to
 * only on its once-a-second topic scan: the first journal write of a new
 * group, and so its first FETCH, waited 0.73 s for it. Best effort: the
 * first write asks by itself when this did not answer. */
static void
journal__know_topic(struct mri_journal *j, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;

	if ((j->prod_topic = rd_kafka_topic_new(j->hub->prod, j->topic,
						NULL)) == NULL)
		return;
	if (rd_kafka_metadata(j->hub->prod, 0, j->prod_topic, &md,
			      timeout_ms) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_metadata_destroy(md);
}

/* A new id for each instance, so that a restarted mailroomd applies what
 * it wrote before. */
static uint64_t
journal__writer_id(void)
{
	uint64_t        v;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec) ^
	       ((uint64_t)getpid() << 32);
}

/* Create the topic where Kafka lets us; the embedded cluster cannot, and
 * makes it on first use. */
static void
journal__create_topic(struct mri_journal *j, int timeout_ms)
{
	rd_kafka_NewTopic_t      *nt;
	rd_kafka_queue_t         *q = rd_kafka_queue_new(j->hub->prod);
	rd_kafka_event_t         *ev;
	char                      retention[32], err[256];

	nt = rd_kafka_NewTopic_new(j->topic, 1, -1, err, sizeof(err));
	if (nt == NULL) {
		rd_kafka_queue_destroy(q);
		return;
	}
	snprintf(retention, sizeof(retention), "%" PRIu64, j->mem.window_ms);
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "delete");
	rd_kafka_NewTopic_set_config(nt, "retention.ms", retention);
	rd_kafka_CreateTopics(j->hub->prod, &nt, 1, NULL, q);
	if ((ev = rd_kafka_queue_poll(q, timeout_ms)) != NULL) {
		const rd_kafka_CreateTopics_result_t *res =
		    rd_kafka_event_CreateTopics_result(ev);
		const rd_kafka_topic_result_t **tr;
		size_t                          n = 0;

		tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
		if (n == 1 && rd_kafka_topic_result_error(tr[0]) == 0)
			mri_notice("component=journal topic=%s msg=\"created "
				   "the group's journal\"",
				   j->topic);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
}

static void
journal__topic_name(char *out, size_t cap, const char *group)
{
	size_t n = (size_t)snprintf(out, cap, "%s", JOURNAL__PREFIX);

	for (const char *p = group; *p && n + 1 < cap && n < 240; p++) {
		char c = *p;

		out[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				   (c >= '0' && c <= '9') || c == '.' ||
				   c == '_' || c == '-'
			       ? c
			       : '_';
	}
	out[n] = '\0';
}

int
mri_journal_new(struct mri_journal **out, const rd_kafka_conf_t *conf,
		const struct mri_journal_conf *c, int timeout_ms, char *errstr,
		size_t errstr_size)
{
	struct mri_journal *j = calloc(1, sizeof(*j));
	int                 err;

	if (j == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	journal__topic_name(j->topic, sizeof(j->topic), c->group);
	if ((err = mri_journal_mem_init(&j->mem, c->max_entries, c->window_ms,
					journal__writer_id(), j->topic)) !=
	    MR_OK) {
		free(j);
		if (err == MR_ENOMEM)
			snprintf(errstr, errstr_size, "out of memory");
		else
			snprintf(errstr, errstr_size,
				 "the journal's max entries (%zu) is out of "
				 "range",
				 c->max_entries);
		return err;
	}
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->wlock, NULL);
	mri_cond_init(&j->cv);
	j->hub = c->hub;
	if (j->hub == NULL) {
		if ((err = mri_journal_hub_new(&j->hub, conf, errstr,
					       errstr_size)) != MR_OK) {
			j->hub = NULL;
			mri_journal_free(j);
			return err;
		}
		j->own_hub = true;
	}
	// Kafka answers CreateTopics at once; a cluster that never does
	// (librdkafka's mock) gets a few seconds, then auto-creates it.
	if (c->create)
		journal__create_topic(j, timeout_ms < 5000 ? timeout_ms : 5000);
	journal__know_topic(j, timeout_ms < 5000 ? timeout_ms : 5000);
	if ((err = journal__hub_add(j->hub, j)) != MR_OK) {
		snprintf(errstr, errstr_size, "%s",
			 err == MR_ENOMEM ? "out of memory"
					  : "the journal's reader could not "
					    "assign its topic");
		mri_journal_free(j);
		return err;
	}
	if (mri_journal_catch_up(j, timeout_ms) != MR_OK)
		mri_warn("component=journal topic=%s msg=\"could not read the "
			 "group's journal to its end in %d ms: records acked "
			 "or dispatched before may be delivered again or "
			 "counted low\"",
			 j->topic, timeout_ms);
	*out = j;
	return MR_OK;
}

size_t
mri_journal_max_entries(const struct mri_journal *j)
{
	return j->mem.max_entries; // set when made, never changed
}

void
mri_journal_free(struct mri_journal *j)
{
	if (j == NULL)
		return;
	if (j->hub != NULL) {
		journal__send_behind(j, 0);
		journal__wait_sent(j, JOURNAL__FREE_MS);
		// Nothing read is applied after this; what was not confirmed
		// in time is reported as failed, here.
		journal__hub_remove(j->hub, j);
		journal__fail_sent(j);
		if (j->prod_topic)
			rd_kafka_topic_destroy(j->prod_topic);
		if (j->own_hub)
			mri_journal_hub_free(j->hub);
	}
	mri_journal_mem_fini(&j->mem);
	pthread_mutex_destroy(&j->lock);
	pthread_mutex_destroy(&j->wlock);
	pthread_cond_destroy(&j->cv);
	free(j);
}
