#define _GNU_SOURCE /* pthread_setname_np */

#include "journal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "consumers/idmap.h"
#include "consumers/runs.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"

/* A record, little-endian (journal.h), at byte:
 *   0  kind ('D' or 'A')       1  version (1 or 2)
 *   2  reserved (2 bytes, 0)   4  time written, ms since the epoch (8)
 *   12 number of entries (4)
 * then the entries: in version 1, 12 bytes each: hash (8), attempt (4; 0
 * in acks); in version 2 (dispatches only), runs of 24 bytes: partition
 * key (8), first offset (8), count (4), attempt (4). Then the writer's id
 * (8). A reader takes the entries its count says and ignores what
 * follows, so records without the writer (the first mailroomd's) and with
 * it are read alike by either. */
#define JOURNAL__PREFIX "__mailroom.journal."
#define JOURNAL__V1 1
#define JOURNAL__V2 2
#define JOURNAL__HDR 16
#define JOURNAL__WRITER 8 /* the trailer */
#define JOURNAL__ENTRY 12
#define JOURNAL__RUN 24
#define JOURNAL__EXPIRE_MS 1000 /* runs expire at most this often */
#define JOURNAL__POLL_MS 100
#define JOURNAL__LOOKUP_BATCH 16 /* lookups prefetched at once */
#define JOURNAL__AHEAD 8         /* puts prefetched ahead */

struct journal_write {
	mri_journal_cb cb;
	void          *arg;
};

struct mri_journal {
	rd_kafka_t       *prod;
	rd_kafka_topic_t *prod_topic; /* held so that its metadata stays */
	rd_kafka_t       *reader;
	char              topic[256];
	uint64_t          window_ms;
	pthread_mutex_t   lock;
	pthread_cond_t    cv;
	struct mri_runs  *runs;     /* attempts, by runs of offsets */
	struct mri_idmap *attempts; /* by position: version 1's, or NULL */
	struct mri_idmap *acked;
	size_t            max_entries;
	int64_t           expired_at; /* when runs last expired */
	uint64_t          writer;    /* this instance's id in its records */
	int64_t           read_next; /* offset of the next record to read */
	pthread_t         thread, dr_thread;
	bool              started, dr_started;
	atomic_int        stop;
};

static void journal__le(uint8_t *p, uint64_t v, int n);

uint64_t
mri_journal_hash(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t
mri_journal_part_key(const char *topic, int32_t partition)
{
	uint8_t  b[4];
	uint64_t h = mri_journal_hash(MRI_JOURNAL_HASH_INIT, topic,
				      strlen(topic));

	journal__le(b, (uint32_t)partition, 4);
	return mri_journal_hash(h, b, sizeof(b));
}

uint64_t
mri_journal_pos_of(uint64_t part, int64_t offset)
{
	uint8_t b[8];

	journal__le(b, (uint64_t)offset, 8);
	return mri_journal_hash(part, b, sizeof(b));
}

uint64_t
mri_journal_pos_hash(const char *topic, int32_t partition, int64_t offset)
{
	return mri_journal_pos_of(mri_journal_part_key(topic, partition),
				  offset);
}

/* ---- records ---------------------------------------------------------- */

static void
journal__le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
journal__rd(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* The map of version 1's dispatch entries (by position), made when the
 * first is read: mailroomd writes runs since version 2. */
static struct mri_idmap *
journal__v1_attempts(struct mri_journal *j)
{
	if (j->attempts == NULL &&
	    mri_idmap_new(&j->attempts, j->max_entries) != MR_OK)
		mri_warn("component=journal topic=%s msg=\"out of memory for "
			 "the attempts of version 1 records: they are not "
			 "counted\"",
			 j->topic);
	return j->attempts;
}

static void
journal__apply_runs(struct mri_journal *j, const uint8_t *p, uint32_t n,
		    int64_t ts)
{
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + (size_t)i * JOURNAL__RUN;

		if (mri_runs_put(j->runs, journal__rd(e, 8),
				 (int64_t)journal__rd(e + 8, 8),
				 (uint32_t)journal__rd(e + 16, 4),
				 (uint32_t)journal__rd(e + 20, 4),
				 ts) != MR_OK)
			mri_warn("component=journal topic=%s msg=\"out of "
				 "memory for a run of attempts: it is not "
				 "counted\"",
				 j->topic);
	}
}

/* Apply a record at time \p now, with the lock held. A record that is not
 * one of ours (by its kind and version) is skipped, and so is one that
 * \p self wrote when \p skip_self: what this instance writes it applies
 * as it writes it. */
static void
journal__apply(struct mri_journal *j, const uint8_t *p, size_t len,
	       int64_t now, bool skip_self)
{
	const size_t      hdr = JOURNAL__HDR;
	size_t            esz;
	int64_t           ts;
	uint32_t          n;
	struct mri_idmap *m;

	if (len < JOURNAL__HDR)
		return;
	if (p[1] == JOURNAL__V1 &&
	    (p[0] == MRI_JOURNAL_DISPATCH || p[0] == MRI_JOURNAL_ACK))
		esz = JOURNAL__ENTRY;
	else if (p[1] == JOURNAL__V2 && p[0] == MRI_JOURNAL_DISPATCH)
		esz = JOURNAL__RUN;
	else
		return;
	ts = (int64_t)journal__rd(p + 4, 8);
	n  = (uint32_t)journal__rd(p + 12, 4);
	if ((len - hdr) / esz < n || ts < now - (int64_t)j->window_ms)
		return;
	if (skip_self && len - hdr - (size_t)n * esz >= JOURNAL__WRITER &&
	    journal__rd(p + hdr + (size_t)n * esz, JOURNAL__WRITER) ==
		j->writer)
		return;
	if (esz == JOURNAL__RUN) {
		journal__apply_runs(j, p + hdr, n, ts);
		return;
	}
	m = p[0] == MRI_JOURNAL_ACK ? j->acked : journal__v1_attempts(j);
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + hdr + (size_t)i * JOURNAL__ENTRY;

		// The table's line of an entry a few on loads meanwhile.
		if (i + JOURNAL__AHEAD < n)
			mri_idmap_prefetch(
			    m, journal__rd(e + JOURNAL__AHEAD * JOURNAL__ENTRY,
					   8));
		mri_idmap_put(m, journal__rd(e, 8),
			      (uint32_t)journal__rd(e + 8, 4), ts);
	}
}

/* A record of \p n entries of \p esz bytes: its header and trailer
 * written, its entries to fill at buf + JOURNAL__HDR. */
static uint8_t *
journal__record(const struct mri_journal *j, int kind, int version,
		size_t n, size_t esz, int64_t now, size_t *len)
{
	uint8_t *buf;

	*len = JOURNAL__HDR + n * esz + JOURNAL__WRITER;
	if ((buf = malloc(*len)) == NULL)
		return NULL;
	buf[0] = (uint8_t)kind;
	buf[1] = (uint8_t)version;
	buf[2] = buf[3] = 0;
	journal__le(buf + 4, (uint64_t)now, 8);
	journal__le(buf + 12, n, 4);
	journal__le(buf + JOURNAL__HDR + n * esz, j->writer, JOURNAL__WRITER);
	return buf;
}

/* Apply record \p buf (taken) and send it; \p cb is called once Kafka
 * has it. */
static int
journal__send(struct mri_journal *j, uint8_t *buf, size_t len, int64_t now,
	      mri_journal_cb cb, void *arg)
{
	struct journal_write *w = malloc(sizeof(*w));
	rd_kafka_resp_err_t   err;

	if (w == NULL) {
		free(buf);
		return MR_ENOMEM;
	}
	pthread_mutex_lock(&j->lock);
	journal__apply(j, buf, len, now, false);
	pthread_mutex_unlock(&j->lock);
	w->cb  = cb;
	w->arg = arg;
	err    = rd_kafka_producev(j->prod, RD_KAFKA_V_TOPIC(j->topic),
				   RD_KAFKA_V_PARTITION(0),
				   RD_KAFKA_V_VALUE(buf, len),
				   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
				   RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
	if (err) {
		free(buf);
		free(w);
		return MR_EUNAVAIL;
	}
	return MR_OK;
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
	buf = journal__record(j, kind, JOURNAL__V1, n, JOURNAL__ENTRY, now,
			      &len);
	if (buf == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = buf + JOURNAL__HDR + i * JOURNAL__ENTRY;

		journal__le(p, e[i].hash, 8);
		journal__le(p + 8, e[i].attempt, 4);
	}
	return journal__send(j, buf, len, now, cb, arg);
}

int
mri_journal_write_runs(struct mri_journal *j, const struct mri_journal_run *r,
		       size_t n, mri_journal_cb cb, void *arg)
{
	int64_t  now = mri_wall_ms();
	size_t   len;
	uint8_t *buf;

	if (n > UINT32_MAX)
		return MR_EINVAL;
	buf = journal__record(j, MRI_JOURNAL_DISPATCH, JOURNAL__V2, n,
			      JOURNAL__RUN, now, &len);
	if (buf == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = buf + JOURNAL__HDR + i * JOURNAL__RUN;

		journal__le(p, r[i].part, 8);
		journal__le(p + 8, (uint64_t)r[i].first, 8);
		journal__le(p + 16, r[i].count, 4);
		journal__le(p + 20, r[i].attempt, 4);
	}
	return journal__send(j, buf, len, now, cb, arg);
}

void
mri_journal_lookup(struct mri_journal *j, size_t n, uint64_t part,
		   const int64_t *offsets, uint32_t *attempts,
		   const uint64_t *id, bool *acked)
{
	pthread_mutex_lock(&j->lock);
	if (offsets != NULL) {
		mri_runs_find(j->runs, part, n, offsets, attempts);
		for (size_t i = 0; j->attempts != NULL && i < n; i++) {
			uint32_t a = 0;

			mri_idmap_find(j->attempts,
				       mri_journal_pos_of(part, offsets[i]),
				       &a);
			if (a > attempts[i])
				attempts[i] = a;
		}
	}
	// A batch's table lines are fetched together, not one miss after
	// another.
	for (size_t b = 0; id != NULL && b < n; b += JOURNAL__LOOKUP_BATCH) {
		size_t end = n - b < JOURNAL__LOOKUP_BATCH
				 ? n
				 : b + JOURNAL__LOOKUP_BATCH;

		for (size_t i = b; i < end; i++)
			mri_idmap_prefetch(j->acked, id[i]);
		for (size_t i = b; i < end; i++)
			acked[i] = mri_idmap_find(j->acked, id[i], NULL);
	}
	pthread_mutex_unlock(&j->lock);
}

/* ---- the journal's thread --------------------------------------------- */

static void
journal__dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct journal_write *w = m->_private;

	if (m->err)
		mri_warn("component=journal msg=\"a journal record was not "
			 "written: %s\"",
			 rd_kafka_err2str(m->err));
	w->cb(w->arg, m->err ? MR_EUNAVAIL : MR_OK);
	free(w);
}

/* Delivery reports answer fetches and acks: on a thread of their own, so
 * that none waits for the reader's poll. */
static void *
journal__dr_thread(void *arg)
{
	struct mri_journal *j = arg;

	pthread_setname_np(pthread_self(), "mr:journal-dr");
	while (!atomic_load(&j->stop))
		rd_kafka_poll(j->prod, 100);
	return NULL;
}

static void *
journal__thread(void *arg)
{
	struct mri_journal *j = arg;

	pthread_setname_np(pthread_self(), "mr:journal");
	while (!atomic_load(&j->stop)) {
		rd_kafka_message_t *m;
		int64_t             now;

		m = rd_kafka_consumer_poll(j->reader, JOURNAL__POLL_MS);
		if (m == NULL)
			continue;
		now = mri_wall_ms();
		pthread_mutex_lock(&j->lock);
		if (m->err == 0) {
			// Our own records were applied when written: only
			// the offset moves for them.
			journal__apply(j, m->payload, m->len, now, true);
			j->read_next = m->offset + 1;
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			mri_warn("component=journal topic=%s msg=\"%s\"",
				 j->topic, rd_kafka_message_errstr(m));
		}
		if (j->attempts != NULL)
			mri_idmap_expire(j->attempts,
					 now - (int64_t)j->window_ms);
		mri_idmap_expire(j->acked, now - (int64_t)j->window_ms);
		if (now - j->expired_at >= JOURNAL__EXPIRE_MS) {
			mri_runs_expire(j->runs, now - (int64_t)j->window_ms);
			j->expired_at = now;
		}
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->lock);
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

int
mri_journal_catch_up(struct mri_journal *j, int timeout_ms)
{
	int64_t  lo = 0, hi = 0;
	int      rc       = MR_OK;
	uint64_t deadline = mri_deadline_in((uint64_t)timeout_ms);

	// A topic just made has no leader for a moment: ask again.
	while (rd_kafka_query_watermark_offsets(j->reader, j->topic, 0, &lo,
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

	if ((j->prod_topic = rd_kafka_topic_new(j->prod, j->topic, NULL)) ==
	    NULL)
		return;
	if (rd_kafka_metadata(j->prod, 0, j->prod_topic, &md, timeout_ms) ==
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
	rd_kafka_queue_t         *q = rd_kafka_queue_new(j->prod);
	rd_kafka_event_t         *ev;
	char                      retention[32], err[256];

	nt = rd_kafka_NewTopic_new(j->topic, 1, -1, err, sizeof(err));
	if (nt == NULL) {
		rd_kafka_queue_destroy(q);
		return;
	}
	snprintf(retention, sizeof(retention), "%" PRIu64, j->window_ms);
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "delete");
	rd_kafka_NewTopic_set_config(nt, "retention.ms", retention);
	rd_kafka_CreateTopics(j->prod, &nt, 1, NULL, q);
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
	struct mri_journal              *j = calloc(1, sizeof(*j));
	rd_kafka_conf_t                 *pc = NULL, *rc = NULL;
	rd_kafka_topic_partition_list_t *l;
	int                              err;

	if (j == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	if ((err = mri_runs_new(&j->runs, c->max_entries)) != MR_OK ||
	    (err = mri_idmap_new(&j->acked, c->max_entries)) != MR_OK) {
		mri_runs_free(j->runs);
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
	j->writer      = journal__writer_id();
	j->max_entries = c->max_entries;
	j->window_ms = c->window_ms;
	journal__topic_name(j->topic, sizeof(j->topic), c->group);
	pthread_mutex_init(&j->lock, NULL);
	mri_cond_init(&j->cv);
	pc = rd_kafka_conf_dup(conf);
	rc = rd_kafka_conf_dup(conf);
	if (mri_kafka_set(pc, "enable.idempotence", "true", errstr,
			  errstr_size) ||
	    mri_kafka_set(pc, "acks", "all", errstr, errstr_size) ||
	    mri_kafka_set(pc, "linger.ms", "0", errstr, errstr_size) ||
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
	rd_kafka_conf_set_dr_msg_cb(pc, journal__dr_cb);
	rd_kafka_conf_set_log_cb(pc, mri_kafka_log_cb);
	rd_kafka_conf_set_log_cb(rc, mri_kafka_log_cb);
	if ((j->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr,
				    errstr_size)) == NULL)
		goto fail;
	pc = NULL;
	if ((j->reader = rd_kafka_new(RD_KAFKA_CONSUMER, rc, errstr,
				      errstr_size)) == NULL)
		goto fail;
	rc = NULL;
	rd_kafka_poll_set_consumer(j->reader);
	// Kafka answers CreateTopics at once; a cluster that never does
	// (librdkafka's mock) gets a few seconds, then auto-creates it.
	if (c->create)
		journal__create_topic(j, timeout_ms < 5000 ? timeout_ms : 5000);
	journal__know_topic(j, timeout_ms < 5000 ? timeout_ms : 5000);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, j->topic, 0)->offset =
	    RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(j->reader, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (pthread_create(&j->thread, NULL, journal__thread, j) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		goto fail;
	}
	j->started = true;
	if (pthread_create(&j->dr_thread, NULL, journal__dr_thread, j) != 0) {
		snprintf(errstr, errstr_size, "cannot start a thread");
		goto fail;
	}
	j->dr_started = true;
	if (mri_journal_catch_up(j, timeout_ms) != MR_OK)
		mri_warn("component=journal topic=%s msg=\"could not read the "
			 "group's journal to its end in %d ms: records acked "
			 "or dispatched before may be delivered again or "
			 "counted low\"",
			 j->topic, timeout_ms);
	*out = j;
	return MR_OK;
fail:
	if (pc)
		rd_kafka_conf_destroy(pc);
	if (rc)
		rd_kafka_conf_destroy(rc);
	mri_journal_free(j);
	return MR_ECONFIG;
}

void
mri_journal_free(struct mri_journal *j)
{
	if (j == NULL)
		return;
	if (j->prod)
		rd_kafka_flush(j->prod, 5000);
	atomic_store(&j->stop, 1);
	if (j->started)
		pthread_join(j->thread, NULL);
	if (j->dr_started)
		pthread_join(j->dr_thread, NULL);
	if (j->prod) {
		// What was not confirmed in time is reported as failed.
		rd_kafka_purge(j->prod, RD_KAFKA_PURGE_F_QUEUE |
					    RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(j->prod, 0);
		if (j->prod_topic)
			rd_kafka_topic_destroy(j->prod_topic);
		rd_kafka_destroy(j->prod);
	}
	if (j->reader) {
		rd_kafka_consumer_close(j->reader);
		rd_kafka_destroy(j->reader);
	}
	mri_runs_free(j->runs);
	mri_idmap_free(j->attempts);
	mri_idmap_free(j->acked);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cv);
	free(j);
}
