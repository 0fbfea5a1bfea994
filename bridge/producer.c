#include "producer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "topics.h"

#define PRODUCER__BATCH 1024
#define PRODUCER__TOPICS 4096 /* handles kept; more topics go by name */
#define PRODUCER__DRAIN_MS 10000

struct mri_producer {
	pthread_rwlock_t       lock; /* read: send; write: recreate */
	rd_kafka_t            *rk;
	rd_kafka_queue_t      *q;
	rd_kafka_conf_t       *tmpl; /* what each new handle is made from */
	mri_producer_report_cb cb;
	void                  *arg;
	pthread_t              thread;
	atomic_int             stop;
	atomic_long            unreported;
	atomic_ullong          confirmed;
	atomic_ullong          failed;
	atomic_ullong          recreations;
	atomic_ullong          resent;
	atomic_ullong          sent;  /* numbers records in send order */
	/* Records the handle refused because it had failed fatally: sent
	 * again by the next handle, with those it did not confirm. */
	pthread_mutex_t        flock;
	struct mri_pmsg       *fatal_head, *fatal_tail;
	/* Only the producer's thread touches these. */
	struct mri_pmsg       *resend_head;
	struct mri_pmsg       *resend_tail;
	char                   fatal_why[512];
	/* Kafka unreachable (every broker down) since down_ms (0: it is
	 * reachable), with librdkafka's sentence; set and cleared on the
	 * producer's thread, read by stats under dlock. */
	pthread_mutex_t        dlock;
	atomic_bool            down;     /* down_ms != 0, read without dlock */
	atomic_llong           up_wall;  /* wall ms Kafka was last back; 0 */
	uint64_t               down_ms;
	char                   down_why[256];
	uint64_t               probe_ms; /* the next look while down */
	struct mri_topics      topics;   /* of rk; cleared before it goes */
};

// While Kafka is unreachable, how often the producer's thread asks it for
// its brokers: with no record to deliver, nothing else says it is back.
#define PRODUCER__PROBE_MS 1000
#define PRODUCER__PROBE_TIMEOUT_MS 200
#define PRODUCER__WAS_DOWN_WHY                                                 \
	"Kafka was unreachable while this record waited for it (every "       \
	"broker down, now back): nothing of this record was written; "         \
	"publish it again with the same id"
#define PRODUCER__TIMED_OUT_WHY                                                \
	"Kafka did not take the record within message.timeout.ms; nothing "   \
	"of it was written: publish it again with the same id"
#define PRODUCER__DOWN_WHY                                                     \
	"Kafka is unreachable (every broker is down; mailroom status says "  \
	"since when and why): nothing of this record was written; publish "   \
	"it again with the same id once Kafka is back"

static const char *
producer__why(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
		return "Kafka did not confirm the record within "
		       "message.timeout.ms; it may or may not have been "
		       "written: publish it again with the same id";
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		return "topic does not exist and the cluster does not create "
		       "topics automatically (auto.create.topics.enable): "
		       "create it with `mailroom topics create`";
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
		return "not confirmed by Kafka before mailroomd stopped; it may "
		       "or may not have been written: publish it again with "
		       "the same id";
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		return "record larger than the topic's max.message.bytes: "
		       "raise the topic's max.message.bytes (`mailroom topics "
		       "create` fits it to producer.message_max_bytes)";
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return "record batch larger than the topic's segment.bytes: "
		       "raise the topic's segment.bytes";
	default:
		return rd_kafka_err2str(err);
	}
}

static int
producer__make(struct mri_producer *p, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(p->tmpl);

	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (p->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return MR_ECONFIG;
	}
	p->q = rd_kafka_queue_get_main(p->rk);
	return MR_OK;
}

static void
producer__resend_push(struct mri_producer *p, struct mri_pmsg *m)
{
	m->next = NULL;
	if (p->resend_tail)
		p->resend_tail->next = m;
	else
		p->resend_head = m;
	p->resend_tail = m;
}

static void
producer__report(struct mri_producer *p, struct mri_presult *r, size_t n)
{
	size_t ok = 0;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		ok += r[i].err == MR_OK;
	atomic_fetch_add(&p->confirmed, ok);
	atomic_fetch_add(&p->failed, n - ok);
	p->cb(p->arg, r, n);
	atomic_fetch_sub(&p->unreported, (long)n);
}

/* Kafka went away (every broker down) or came back. On the producer's
 * thread. */
static void
producer__set_down(struct mri_producer *p, bool down, const char *why)
{
	uint64_t now = mri_mono_ms(), since;

	pthread_mutex_lock(&p->dlock);
	since = p->down_ms;
	if (down && since == 0) {
		p->down_ms  = now;
		p->probe_ms = now + PRODUCER__PROBE_MS;
		snprintf(p->down_why, sizeof(p->down_why), "%s", why);
		atomic_store(&p->down, true);
	} else if (!down && since != 0) {
		p->down_ms = 0;
		atomic_store(&p->up_wall, mri_wall_ms());
		atomic_store(&p->down, false);
	}
	pthread_mutex_unlock(&p->dlock);
	if (down && since == 0)
		mri_warn("component=producer msg=\"Kafka is unreachable: %s; "
			 "publishes wait for it up to "
			 "producer.message_timeout_ms\"",
			 why);
	else if (!down && since != 0)
		mri_notice("component=producer down_ms=%llu msg=\"Kafka is "
			   "reachable again\"",
			   (unsigned long long)(now - since));
}

/* While Kafka is unreachable: is it back? (Its brokers answer a metadata
 * request.) On the producer's thread, once a PRODUCER__PROBE_MS. */
static void
producer__probe(struct mri_producer *p)
{
	const struct rd_kafka_metadata *md;
	uint64_t                        now = mri_mono_ms();
	bool                            due;

	if (!atomic_load(&p->down))
		return;
	pthread_mutex_lock(&p->dlock);
	due = p->down_ms != 0 && now >= p->probe_ms;
	if (due)
		p->probe_ms = now + PRODUCER__PROBE_MS;
	pthread_mutex_unlock(&p->dlock);
	if (!due)
		return;
	if (rd_kafka_metadata(p->rk, 0, NULL, &md,
			      PRODUCER__PROBE_TIMEOUT_MS) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_metadata_destroy(md);
		producer__set_down(p, false, NULL);
	}
}

/* @returns whether Kafka is unreachable now (every broker down). */
static bool
producer__is_down(struct mri_producer *p)
{
	return atomic_load(&p->down);
}

/* A record that timed out never sent (\p r is MR_ETIMEDOUT): not
 * written; MR_EUNAVAIL when Kafka is away (\p down: -1 not asked yet),
 * or came back after the record was made. */
static void
producer__timed_out(struct mri_producer *p, const rd_kafka_message_t *rkm,
		    struct mri_presult *r, int *down)
{
	long long up = atomic_load(&p->up_wall);
	int64_t   ts = rd_kafka_message_timestamp(rkm, NULL);

	if (*down < 0)
		*down = producer__is_down(p);
	if (*down) {
		r->err = MR_EUNAVAIL;
		r->why = PRODUCER__DOWN_WHY;
	} else if (up != 0 && ts > 0 && up >= ts) {
		r->err = MR_EUNAVAIL;
		r->why = PRODUCER__WAS_DOWN_WHY;
	} else {
		r->why = PRODUCER__TIMED_OUT_WHY;
	}
}

/* Report a delivery batch. Records that failed because the handle failed
 * fatally, or everything unconfirmed when \p all_unconfirmed, are kept for
 * resending instead; and so are records delivered without an offset.
 *
 * Those librdkafka 2.0.2 acks when a later request of their partition
 * succeeds after theirs failed (rd_kafka_dr_implicit_ack), even when the
 * failure said they were not written (NOT_LEADER); and Kafka takes a
 * producer's first batch on a partition at any sequence, so the first
 * requests to a topic made a moment ago can be lost that way. They are
 * sent again by a new handle, after what followed them. */
static void
producer__on_dr(struct mri_producer *p, rd_kafka_event_t *ev,
		bool all_unconfirmed)
{
	const rd_kafka_message_t *rkms[PRODUCER__BATCH];
	struct mri_presult        res[PRODUCER__BATCH];
	size_t                    n, k, implicit = 0;
	bool fatal  = rd_kafka_fatal_error(p->rk, NULL, 0) != 0;
	bool any_ok = false;
	int  down   = -1; /* not asked yet */

	// An event may hold more than one array's worth: each call goes on
	// where the last one stopped.
	while ((n = rd_kafka_event_message_array(ev, rkms, PRODUCER__BATCH)) >
	       0) {
		k = 0;
		for (size_t i = 0; i < n; i++) {
			const rd_kafka_message_t *rkm = rkms[i];
			struct mri_pmsg          *m   = rkm->_private;
			bool no_offset = rkm->err == 0 && rkm->offset < 0;

			if (no_offset ||
			    (rkm->err != 0 &&
			     (all_unconfirmed || fatal ||
			      rkm->err == RD_KAFKA_RESP_ERR__FATAL))) {
				implicit += no_offset;
				rd_kafka_message_detach_headers(
				    (rd_kafka_message_t *)rkm, &m->hdrs);
				producer__resend_push(p, m);
				continue;
			}
			res[k].msg       = m;
			res[k].err       = mri_kafka_err(rkm->err);
			// Failed, but Kafka may have it: say so, not failed.
			if (rkm->err != 0 &&
			    rd_kafka_message_status(rkm) ==
				RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED)
				res[k].err = MR_EINDOUBT;
			res[k].partition = rkm->partition;
			res[k].offset    = rkm->offset;
			res[k].why = rkm->err ? producer__why(rkm->err) : NULL;
			any_ok |= rkm->err == 0;
			// Timed out, never sent: not written. Because Kafka
			// is away, or was while the record waited: say that.
			if (rkm->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT &&
			    res[k].err == MR_ETIMEDOUT)
				producer__timed_out(p, rkm, &res[k], &down);
			k++;
		}
		producer__report(p, res, k);
	}
	if (implicit > 0)
		mri_warn("component=producer records=%zu msg=\"librdkafka "
			 "reported records delivered without an offset (a "
			 "failed request acked by a later one): not trusted; "
			 "recreating the producer to send them again\"",
			 implicit);
	// The mutex only when the state changes: this runs per batch.
	if (any_ok && atomic_load(&p->down))
		producer__set_down(p, false, NULL);
}

static void
producer__on_error(struct mri_producer *p, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);

	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		producer__set_down(p, true, rd_kafka_event_error_string(ev));
		return;
	}

	if (rd_kafka_event_error_is_fatal(ev)) {
		rd_kafka_fatal_error(p->rk, p->fatal_why, sizeof(p->fatal_why));
		mri_err("component=producer msg=\"fatal producer error: %s\"",
			p->fatal_why);
		return;
	}
	mri_warn("component=producer err=%s msg=\"%s\"",
		 rd_kafka_err2name(err), rd_kafka_event_error_string(ev));
}

static void
producer__serve(struct mri_producer *p, int timeout_ms, bool all_unconfirmed)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(p->q, timeout_ms);

	if (ev == NULL)
		return;
	switch (rd_kafka_event_type(ev)) {
	case RD_KAFKA_EVENT_DR:
		producer__on_dr(p, ev, all_unconfirmed);
		break;
	case RD_KAFKA_EVENT_ERROR:
		producer__on_error(p, ev);
		break;
	default:
		break;
	}
	rd_kafka_event_destroy(ev);
}

/* What a record is, after its topic (rd_kafka_producev's arguments). */
#define PRODUCER__RECORD(m)                                                    \
	RD_KAFKA_V_PARTITION((m)->has_partition ? (m)->partition               \
						: RD_KAFKA_PARTITION_UA),      \
	    RD_KAFKA_V_KEY((m)->has_key ? ((m)->key ? (m)->key : "") : NULL,   \
			   (m)->has_key ? (m)->key_len : 0),                   \
	    RD_KAFKA_V_VALUE((void *)((m)->payload ? (m)->payload : ""),       \
			     (m)->payload_len),                                \
	    RD_KAFKA_V_HEADERS((m)->hdrs), RD_KAFKA_V_OPAQUE(m),              \
	    RD_KAFKA_V_TIMESTAMP((m)->timestamp_ms)

/* \p rkt: m's topic's handle (bridge/topics.h), or NULL: by name. */
static int
producer__produce(struct mri_producer *p, struct mri_pmsg *m,
		  rd_kafka_topic_t *rkt)
{
	rd_kafka_resp_err_t err;

	if (rkt != NULL)
		err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(rkt),
					PRODUCER__RECORD(m), RD_KAFKA_V_END);
	else
		err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(m->topic),
					PRODUCER__RECORD(m), RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		m->hdrs = NULL;
	return err;
}

static int
producer__cmp_order(const void *a, const void *b)
{
	const struct mri_pmsg *x = *(struct mri_pmsg *const *)a;
	const struct mri_pmsg *y = *(struct mri_pmsg *const *)b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/* Put the records to resend back in the order they were first sent:
 * librdkafka reports purged records queue by queue, not in that order. */
static void
producer__resend_sort(struct mri_producer *p)
{
	struct mri_pmsg  *m, **v;
	size_t            n = 0, i;

	for (m = p->resend_head; m != NULL; m = m->next)
		n++;
	if (n < 2)
		return;
	if ((v = malloc(n * sizeof(*v))) == NULL) {
		// Resending out of order would break what we promise; the
		// records fail back instead (their publishers resend them).
		for (m = p->resend_head; m != NULL; m = m->next)
			m->resends = MRI_PRODUCER_RESENDS;
		return;
	}
	for (i = 0, m = p->resend_head; m != NULL; m = m->next)
		v[i++] = m;
	qsort(v, n, sizeof(*v), producer__cmp_order);
	for (i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	p->resend_head = v[0];
	p->resend_tail = v[n - 1];
	free(v);
}

/* The handle failed fatally: collect what it did not confirm, replace it,
 * and send that again. Runs on the producer's thread. */
static void
producer__recreate(struct mri_producer *p)
{
	char             errstr[512];
	int64_t          deadline;
	struct mri_pmsg *m, *next;
	size_t           nresend = 0;

	pthread_rwlock_wrlock(&p->lock);
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	// No sender holds the lock: what they left for the next handle waits.
	pthread_mutex_lock(&p->flock);
	for (m = p->fatal_head; m != NULL; m = next) {
		next = m->next;
		producer__resend_push(p, m);
	}
	p->fatal_head = p->fatal_tail = NULL;
	pthread_mutex_unlock(&p->flock);
	deadline = (int64_t)mri_mono_ms() + PRODUCER__DRAIN_MS;
	while (rd_kafka_outq_len(p->rk) > 0 && (int64_t)mri_mono_ms() < deadline)
		producer__serve(p, 100, true);
	while ((int64_t)mri_mono_ms() < deadline) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(p->q, 0);
		if (ev == NULL)
			break;
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DR)
			producer__on_dr(p, ev, true);
		rd_kafka_event_destroy(ev);
	}
	mri_topics_clear(&p->topics);
	rd_kafka_queue_destroy(p->q);
	rd_kafka_destroy(p->rk);
	atomic_fetch_add(&p->recreations, 1);

	if (producer__make(p, errstr, sizeof(errstr)) != MR_OK) {
		// Cannot happen with a configuration that worked once.
		mri_err("component=producer msg=\"cannot recreate the "
			"producer: %s\"",
			errstr);
		abort();
	}
	producer__resend_sort(p);
	for (m = p->resend_head; m != NULL; m = m->next)
		nresend++;
	mri_warn("component=producer msg=\"producer recreated; resending %zu "
		 "unconfirmed records\" reason=\"%s\"",
		 nresend,
		 p->fatal_why[0] != '\0'
		     ? p->fatal_why
		     : "records delivered without an offset, not trusted");
	p->fatal_why[0] = '\0';

	m              = p->resend_head;
	p->resend_head = p->resend_tail = NULL;
	for (; m != NULL; m = next) {
		struct mri_presult r = {m, MR_EKAFKA, -1, -1, NULL};
		int                err;

		next = m->next;
		if (++m->resends > MRI_PRODUCER_RESENDS) {
			r.why = "the Kafka producer failed fatally on every "
				"attempt; the record may or may not have been "
				"written";
		} else if ((err = producer__produce(
				    p, m,
				    mri_topics_get(&p->topics, p->rk,
						   m->topic))) == 0) {
			atomic_fetch_add(&p->resent, 1);
			continue;
		} else {
			r.err = mri_kafka_err(err);
			r.why = rd_kafka_err2str(err);
		}
		if (m->hdrs) {
			rd_kafka_headers_destroy(m->hdrs);
			m->hdrs = NULL;
		}
		producer__report(p, &r, 1);
	}
	pthread_rwlock_unlock(&p->lock);
}

static bool
producer__fatal_left(struct mri_producer *p)
{
	bool left;

	pthread_mutex_lock(&p->flock);
	left = p->fatal_head != NULL;
	pthread_mutex_unlock(&p->flock);
	return left;
}

static void *
producer__thread(void *arg)
{
	struct mri_producer *p = arg;

	while (!atomic_load(&p->stop)) {
		producer__serve(p, 100, false);
		producer__probe(p);
		if (rd_kafka_fatal_error(p->rk, NULL, 0) != 0 ||
		    p->resend_head != NULL || producer__fatal_left(p))
			producer__recreate(p);
	}
	return NULL;
}

int
mri_producer_new(struct mri_producer **out, rd_kafka_conf_t *conf,
		 mri_producer_report_cb cb, void *arg, char *errstr,
		 size_t errstr_size)
{
	struct mri_producer *p;
	int                  rc;

	if (mri_kafka_set(conf, "enable.idempotence", "true", errstr,
			  errstr_size) ||
	    mri_kafka_set(conf, "acks", "all", errstr, errstr_size) ||
	    mri_kafka_set(conf, "partitioner", "murmur2_random", errstr,
			  errstr_size))
		return MR_ECONFIG;
	rd_kafka_conf_set_events(conf,
				 RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
	rd_kafka_conf_set_log_cb(conf, mri_kafka_log_cb);

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	p->cb   = cb;
	p->arg  = arg;
	p->tmpl = conf;
	if (mri_topics_init(&p->topics, PRODUCER__TOPICS) != MR_OK) {
		free(p);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	pthread_rwlock_init(&p->lock, NULL);
	pthread_mutex_init(&p->flock, NULL);
	pthread_mutex_init(&p->dlock, NULL);
	if ((rc = producer__make(p, errstr, errstr_size)) != MR_OK) {
		mri_topics_fini(&p->topics);
		pthread_mutex_destroy(&p->dlock);
		pthread_mutex_destroy(&p->flock);
		pthread_rwlock_destroy(&p->lock);
		free(p);
		return rc;
	}
	if (pthread_create(&p->thread, NULL, producer__thread, p) != 0) {
		rd_kafka_queue_destroy(p->q);
		rd_kafka_destroy(p->rk);
		mri_topics_fini(&p->topics);
		pthread_mutex_destroy(&p->dlock);
		pthread_mutex_destroy(&p->flock);
		pthread_rwlock_destroy(&p->lock);
		free(p);
		snprintf(errstr, errstr_size, "cannot start a thread");
		return MR_ENOMEM;
	}
	*out = p;
	return MR_OK;
}

size_t
mri_producer_send(struct mri_producer *p, struct mri_pmsg **msgs, size_t n,
		  int *rcs, const char **whys)
{
	size_t            accepted = 0;
	rd_kafka_topic_t *rkt      = NULL;

	pthread_rwlock_rdlock(&p->lock);
	atomic_fetch_add(&p->unreported, (long)n);
	for (size_t i = 0; i < n; i++) {
		int err;

		// A request's records mostly share a topic: one look-up a run.
		if (i == 0 || (msgs[i]->topic != msgs[i - 1]->topic &&
			       strcmp(msgs[i]->topic, msgs[i - 1]->topic)))
			rkt = mri_topics_get(&p->topics, p->rk,
					     msgs[i]->topic);
		msgs[i]->resends = 0;
		msgs[i]->order   = atomic_fetch_add(&p->sent, 1);
		err              = producer__produce(p, msgs[i], rkt);
		if (err == 0) {
			rcs[i] = MR_OK;
			accepted++;
			continue;
		}
		if (err == RD_KAFKA_RESP_ERR__FATAL) {
			// The handle failed and is about to be replaced: the
			// record goes with those it did not confirm, in order.
			pthread_mutex_lock(&p->flock);
			msgs[i]->next = NULL;
			if (p->fatal_tail)
				p->fatal_tail->next = msgs[i];
			else
				p->fatal_head = msgs[i];
			p->fatal_tail = msgs[i];
			pthread_mutex_unlock(&p->flock);
			rcs[i] = MR_OK;
			accepted++;
			continue;
		}
		rcs[i] = mri_kafka_err(err);
		whys[i] = rd_kafka_err2str(err);
		if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
			whys[i] = "record larger than mailroomd's "
				  "producer.message_max_bytes (librdkafka's "
				  "message.max.bytes): raise it, and the "
				  "topic's max.message.bytes with it";
		else if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			whys[i] = "the producer's queue is full; retry later";
		atomic_fetch_sub(&p->unreported, 1);
	}
	pthread_rwlock_unlock(&p->lock);
	return accepted;
}

bool
mri_producer_flush(struct mri_producer *p, int timeout_ms)
{
	int64_t deadline = (int64_t)mri_mono_ms() + timeout_ms;

	while (atomic_load(&p->unreported) > 0) {
		if ((int64_t)mri_mono_ms() >= deadline)
			return false;
		usleep(2000);
	}
	return true;
}

void
mri_producer_purge(struct mri_producer *p)
{
	pthread_rwlock_rdlock(&p->lock);
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	pthread_rwlock_unlock(&p->lock);
}

void
mri_producer_free(struct mri_producer *p)
{
	if (p == NULL)
		return;
	if (!mri_producer_flush(p, 0)) {
		mri_producer_purge(p);
		mri_producer_flush(p, PRODUCER__DRAIN_MS);
	}
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
	mri_topics_fini(&p->topics);
	rd_kafka_queue_destroy(p->q);
	rd_kafka_destroy(p->rk);
	rd_kafka_conf_destroy(p->tmpl);
	pthread_mutex_destroy(&p->dlock);
	pthread_mutex_destroy(&p->flock);
	pthread_rwlock_destroy(&p->lock);
	free(p);
}

rd_kafka_t *
mri_producer_lock_handle(struct mri_producer *p)
{
	pthread_rwlock_rdlock(&p->lock);
	return p->rk;
}

void
mri_producer_unlock_handle(struct mri_producer *p)
{
	pthread_rwlock_unlock(&p->lock);
}

int
mri_producer_inject_fatal(struct mri_producer *p)
{
	rd_kafka_resp_err_t err;

	pthread_rwlock_rdlock(&p->lock);
	err = rd_kafka_test_fatal_error(
	    p->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
	    "injected by mailroom's fault injection");
	pthread_rwlock_unlock(&p->lock);
	return err ? MR_EKAFKA : MR_OK;
}

void
mri_producer_stats(struct mri_producer *p, struct mri_producer_stats *s)
{
	s->confirmed   = atomic_load(&p->confirmed);
	s->failed      = atomic_load(&p->failed);
	s->recreations = atomic_load(&p->recreations);
	s->resent      = atomic_load(&p->resent);
	pthread_rwlock_rdlock(&p->lock);
	s->outq = rd_kafka_outq_len(p->rk);
	pthread_rwlock_unlock(&p->lock);
	pthread_mutex_lock(&p->dlock);
	s->down_ms = p->down_ms != 0 ? mri_mono_ms() - p->down_ms : 0;
	s->down    = p->down_ms != 0;
	snprintf(s->down_why, sizeof(s->down_why), "%s",
		 s->down ? p->down_why : "");
	pthread_mutex_unlock(&p->dlock);
}
