#include "journal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "mailroom/error.h"

#define JOURNAL__PREFIX "__mailroom.journal."
#define JOURNAL__VERSION 1
#define JOURNAL__HDR 16   /* kind, version, reserved, ts, count */
#define JOURNAL__ENTRY 12 /* hash, attempt */
#define JOURNAL__POLL_MS 100

/* A map of hashes to a value, bounded in size and age, oldest out first:
 * a ring of entries chained into buckets (indices + 1; 0 ends a chain). */
struct jmap {
	struct jent {
		uint64_t hash;
		int64_t  ts;
		uint32_t val;
		uint32_t next;
	}        *ents;
	uint32_t *buckets;
	size_t    nb, cap, head, count;
};

struct journal_write {
	mri_journal_cb cb;
	void          *arg;
};

struct mri_journal {
	rd_kafka_t     *prod;
	rd_kafka_t     *reader;
	char            topic[256];
	uint64_t        window_ms;
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	struct jmap     attempts;
	struct jmap     acked;
	int64_t         read_next; /* offset of the next record to read */
	pthread_t       thread, dr_thread;
	bool            started, dr_started;
	atomic_int      stop;
};

static void journal__le(uint8_t *p, uint64_t v, int n);

static int64_t
journal__wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
mri_journal_pos_hash(const char *topic, int32_t partition, int64_t offset)
{
	uint8_t  b[12];
	uint64_t h = mri_journal_hash(MRI_JOURNAL_HASH_INIT, topic,
				      strlen(topic));

	journal__le(b, (uint32_t)partition, 4);
	journal__le(b + 4, (uint64_t)offset, 8);
	return mri_journal_hash(h, b, sizeof(b));
}

/* ---- the bounded map -------------------------------------------------- */

static int
jmap_init(struct jmap *m, size_t cap)
{
	size_t nb = 16;

	while (nb < cap * 2)
		nb *= 2;
	memset(m, 0, sizeof(*m));
	// calloc: pages not touched cost nothing until entries arrive.
	m->ents    = calloc(cap, sizeof(*m->ents));
	m->buckets = calloc(nb, sizeof(*m->buckets));
	if (m->ents == NULL || m->buckets == NULL) {
		free(m->ents);
		free(m->buckets);
		return MR_ENOMEM;
	}
	m->nb  = nb;
	m->cap = cap;
	return MR_OK;
}

static void
jmap_fini(struct jmap *m)
{
	free(m->ents);
	free(m->buckets);
}

static struct jent *
jmap_find(struct jmap *m, uint64_t h)
{
	for (uint32_t i = m->buckets[h & (m->nb - 1)]; i != 0;
	     i = m->ents[i - 1].next)
		if (m->ents[i - 1].hash == h)
			return &m->ents[i - 1];
	return NULL;
}

static void
jmap_evict(struct jmap *m)
{
	struct jent *e = &m->ents[m->head];
	uint32_t    *pp = &m->buckets[e->hash & (m->nb - 1)];

	while (*pp != 0 && *pp != m->head + 1)
		pp = &m->ents[*pp - 1].next;
	if (*pp != 0)
		*pp = e->next;
	m->head = (m->head + 1) % m->cap;
	m->count--;
}

static void
jmap_put(struct jmap *m, uint64_t h, uint32_t val, int64_t ts)
{
	struct jent *e = jmap_find(m, h);
	size_t       slot;
	uint32_t    *b;

	if (e != NULL) {
		if (val > e->val)
			e->val = val;
		return;
	}
	if (m->count == m->cap)
		jmap_evict(m);
	slot       = (m->head + m->count) % m->cap;
	b          = &m->buckets[h & (m->nb - 1)];
	e          = &m->ents[slot];
	e->hash    = h;
	e->ts      = ts;
	e->val     = val;
	e->next    = *b;
	*b         = (uint32_t)slot + 1;
	m->count++;
}

static void
jmap_expire(struct jmap *m, int64_t before)
{
	while (m->count > 0 && m->ents[m->head].ts < before)
		jmap_evict(m);
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

/* Apply a record, ours or another mailroomd's. Called with the lock held.
 * A record that is not one of ours is skipped. */
static void
journal__apply(struct mri_journal *j, const uint8_t *p, size_t len)
{
	int64_t  ts, now = journal__wall_ms();
	uint32_t n;
	struct jmap *m;

	if (len < JOURNAL__HDR || p[1] != JOURNAL__VERSION)
		return;
	if (p[0] == MRI_JOURNAL_DISPATCH)
		m = &j->attempts;
	else if (p[0] == MRI_JOURNAL_ACK)
		m = &j->acked;
	else
		return;
	ts = (int64_t)journal__rd(p + 4, 8);
	n  = (uint32_t)journal__rd(p + 12, 4);
	if ((len - JOURNAL__HDR) / JOURNAL__ENTRY < n ||
	    ts < now - (int64_t)j->window_ms)
		return;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + JOURNAL__HDR + (size_t)i * JOURNAL__ENTRY;

		jmap_put(m, journal__rd(e, 8), (uint32_t)journal__rd(e + 8, 4),
			 ts);
	}
}

int
mri_journal_write(struct mri_journal *j, enum mri_journal_kind kind,
		  const struct mri_journal_entry *e, size_t n,
		  mri_journal_cb cb, void *arg)
{
	size_t                len = JOURNAL__HDR + n * JOURNAL__ENTRY;
	uint8_t              *buf = malloc(len);
	struct journal_write *w   = malloc(sizeof(*w));
	rd_kafka_resp_err_t   err;

	if (buf == NULL || w == NULL || n > UINT32_MAX) {
		free(buf);
		free(w);
		return MR_ENOMEM;
	}
	buf[0] = (uint8_t)kind;
	buf[1] = JOURNAL__VERSION;
	buf[2] = buf[3] = 0;
	journal__le(buf + 4, (uint64_t)journal__wall_ms(), 8);
	journal__le(buf + 12, n, 4);
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = buf + JOURNAL__HDR + i * JOURNAL__ENTRY;

		journal__le(p, e[i].hash, 8);
		journal__le(p + 8, e[i].attempt, 4);
	}
	pthread_mutex_lock(&j->lock);
	journal__apply(j, buf, len);
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

uint32_t
mri_journal_attempts(struct mri_journal *j, uint64_t hash)
{
	struct jent *e;
	uint32_t     v;

	pthread_mutex_lock(&j->lock);
	v = (e = jmap_find(&j->attempts, hash)) != NULL ? e->val : 0;
	pthread_mutex_unlock(&j->lock);
	return v;
}

bool
mri_journal_acked(struct mri_journal *j, uint64_t hash)
{
	bool v;

	pthread_mutex_lock(&j->lock);
	v = jmap_find(&j->acked, hash) != NULL;
	pthread_mutex_unlock(&j->lock);
	return v;
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

static void
journal__log_cb(const rd_kafka_t *rk, int level, const char *fac,
		const char *buf)
{
	MRI_LOG(level, "component=kafka facility=%s msg=\"%s\"", fac, buf);
}

/* Delivery reports answer fetches and acks: on a thread of their own, so
 * that none waits for the reader's poll. */
static void *
journal__dr_thread(void *arg)
{
	struct mri_journal *j = arg;

	while (!atomic_load(&j->stop))
		rd_kafka_poll(j->prod, 100);
	return NULL;
}

static void *
journal__thread(void *arg)
{
	struct mri_journal *j = arg;

	while (!atomic_load(&j->stop)) {
		rd_kafka_message_t *m;

		m = rd_kafka_consumer_poll(j->reader, JOURNAL__POLL_MS);
		if (m == NULL)
			continue;
		pthread_mutex_lock(&j->lock);
		if (m->err == 0) {
			journal__apply(j, m->payload, m->len);
			j->read_next = m->offset + 1;
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			mri_warn("component=journal topic=%s msg=\"%s\"",
				 j->topic, rd_kafka_message_errstr(m));
		}
		jmap_expire(&j->attempts,
			    journal__wall_ms() - (int64_t)j->window_ms);
		jmap_expire(&j->acked,
			    journal__wall_ms() - (int64_t)j->window_ms);
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->lock);
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

int
mri_journal_catch_up(struct mri_journal *j, int timeout_ms)
{
	int64_t         lo = 0, hi = 0;
	struct timespec ts;
	int             rc = MR_OK;
	int64_t         until = journal__wall_ms() + timeout_ms;

	// A topic just made has no leader for a moment: ask again.
	while (rd_kafka_query_watermark_offsets(j->reader, j->topic, 0, &lo,
						&hi, 1000) != 0) {
		if (journal__wall_ms() >= until)
			return MR_ETIMEDOUT;
		usleep(100000);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&j->lock);
	if (j->read_next < lo)
		j->read_next = lo;
	while (j->read_next < hi && rc == MR_OK)
		if (pthread_cond_timedwait(&j->cv, &j->lock, &ts) != 0)
			rc = MR_ETIMEDOUT;
	pthread_mutex_unlock(&j->lock);
	return rc;
}

/* ---- life ------------------------------------------------------------- */

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

	if (j == NULL || jmap_init(&j->attempts, c->max_entries) != MR_OK) {
		free(j);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	if (jmap_init(&j->acked, c->max_entries) != MR_OK) {
		jmap_fini(&j->attempts);
		free(j);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	j->window_ms = c->window_ms;
	journal__topic_name(j->topic, sizeof(j->topic), c->group);
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cv, NULL);
	pc = rd_kafka_conf_dup(conf);
	rc = rd_kafka_conf_dup(conf);
	if (rd_kafka_conf_set(pc, "enable.idempotence", "true", errstr,
			      errstr_size) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(pc, "acks", "all", errstr, errstr_size) !=
		RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(pc, "linger.ms", "0", errstr, errstr_size) !=
		RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(rc, "enable.partition.eof", "false", errstr,
			      errstr_size) != RD_KAFKA_CONF_OK ||
	    // The reader only assigns: it never joins nor commits, but
	    // librdkafka's consumer queue wants a group.id all the same.
	    rd_kafka_conf_set(rc, "group.id", "__mailroom.journal-reader",
			      errstr, errstr_size) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(rc, "enable.auto.commit", "false", errstr,
			      errstr_size) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(rc, "auto.offset.reset", "earliest", errstr,
			      errstr_size) != RD_KAFKA_CONF_OK)
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(pc, journal__dr_cb);
	rd_kafka_conf_set_log_cb(pc, journal__log_cb);
	rd_kafka_conf_set_log_cb(rc, journal__log_cb);
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
		rd_kafka_destroy(j->prod);
	}
	if (j->reader) {
		rd_kafka_consumer_close(j->reader);
		rd_kafka_destroy(j->reader);
	}
	jmap_fini(&j->attempts);
	jmap_fini(&j->acked);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cv);
	free(j);
}
