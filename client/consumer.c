#include "mailroom/consumer.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "client/client_internal.h"
#include "proto/assignment.h"
#include "proto/consume.h"
#include "proto/frame.h"
#include "proto/subscribe.h"

#define CONSUMER__BACKOFF_MIN_MS 50
#define CONSUMER__BACKOFF_MAX_MS 1000
#define CONSUMER__STOP_POLL_MS 200 /* a back-off looks at *stop this often */

/* What mr_subscribe was given, kept to subscribe again; the session and
 * credit change when mr_consumer_resubscribe does, while other threads
 * fetch and settle: they are atomics, read once per request. */
struct mr_consumer {
	mr_client        *c;
	char             *group;
	char            **topics; /* ntopics names, in the same allocation */
	size_t            ntopics;
	mr_subscribe_opts opts; /* opts.dlq_topic is dlq_topic */
	char             *dlq_topic;
	_Atomic uint64_t  session;
	_Atomic int       credit; /* the SUBSCRIBE reply's, else opts'; 0:
				     unknown */
	atomic_bool       no_linger; /* mailroomd refused the linger flag */
};

struct mr_batch {
	nng_msg     *msg; /* keys, header values and payloads point into it */
	uint64_t     session; /* the session that fetched it */
	size_t       n;
	mr_delivery *d;
};

/* mr_subscribe_opts.set is sent as it is: one numbering of the bits. */
#define CONSUMER__SAME_BIT(x)                                                 \
	_Static_assert((int)MR_SUB_##x == (int)MRI_SUB_##x, "MR_SUB_" #x)
CONSUMER__SAME_BIT(MAX_ATTEMPTS);
CONSUMER__SAME_BIT(BACKOFF_INITIAL);
CONSUMER__SAME_BIT(BACKOFF_MAX);
CONSUMER__SAME_BIT(BACKOFF_MULTIPLIER);
CONSUMER__SAME_BIT(BACKOFF_JITTER);
CONSUMER__SAME_BIT(BREAKER_MAX);
CONSUMER__SAME_BIT(BREAKER_PERIOD);
CONSUMER__SAME_BIT(BREAKER_COOLDOWN);
#undef CONSUMER__SAME_BIT

/* SUBSCRIBE with what \p s keeps. @returns MR_OK with the session and the
 * credit, or an mr_err (mr_client_last_error() has the sentence). */
static int
consumer__subscribe(const mr_consumer *s, uint64_t *session, int *credit)
{
	struct mri_subscribe req = {
	    .group           = s->group,
	    .topics          = (const char *const *)s->topics,
	    .ntopics         = s->ntopics,
	    .mode            = (enum mri_subscribe_mode)s->opts.order,
	    .ack_deadline_ms = (uint64_t)s->opts.ack_deadline_ms,
	    .credit          = (uint32_t)s->opts.credit,
	    .exclusive       = s->opts.exclusive != 0,
	    .start_latest    = s->opts.start_latest != 0,
	    .no_journal      = s->opts.no_journal != 0,
	    .has                 = s->opts.set,
	    .max_attempts        = (uint32_t)s->opts.max_attempts,
	    .backoff_initial_ms  = (uint64_t)s->opts.backoff_initial_ms,
	    .backoff_max_ms      = (uint64_t)s->opts.backoff_max_ms,
	    .backoff_multiplier  = s->opts.backoff_multiplier,
	    .backoff_jitter      = s->opts.backoff_jitter,
	    .dlq_topic           = s->opts.dlq_topic,
	    .breaker_max         = (uint32_t)s->opts.breaker_max,
	    .breaker_period_ms   = (uint64_t)s->opts.breaker_period_ms,
	    .breaker_cooldown_ms = (uint64_t)s->opts.breaker_cooldown_ms,
	};
	struct mri_wbuf b;
	char           *json = NULL;
	int             rc;

	_Static_assert((int)MR_ORDER_PARTITION ==
			       (int)MRI_SUBSCRIBE_PARTITION &&
			   (int)MR_ORDER_UNORDERED == (int)MRI_SUBSCRIBE_UNORDERED,
		       "one numbering of the modes");
	mri_wbuf_init(&b);
	mri_subscribe_encode(&b, &req);
	mri_wbuf_u8(&b, '\0');
	rc = b.err ? b.err : client__json_call(s->c, MRI_OP_SUBSCRIBE,
					       (const char *)b.data, &json);
	mri_wbuf_fini(&b);
	if (rc == MR_OK) {
		*credit = s->opts.credit;
		rc      = mri_subscribe_reply_parse(json, strlen(json), session,
						    credit);
		if (rc != MR_OK)
			client__set_last_error("SUBSCRIBE's reply has no "
					       "session");
	}
	free(json);
	return rc;
}

/* End \p session, best effort: a session mailroomd lost, or cannot hear
 * about, ends by itself when its connection does. */
static void
consumer__unsubscribe(mr_client *c, uint64_t session)
{
	struct mri_wbuf b;
	nng_msg        *reply = NULL;

	mri_wbuf_init(&b);
	mri_unsubscribe_encode(&b, session);
	if (client__frame_call(c, &b, 0, &reply) == MR_OK)
		nng_msg_free(reply);
	mri_wbuf_fini(&b);
}

/* A copy of the group and the topic names, in one allocation each. */
static int
consumer__keep(mr_consumer *s, const char *group, const char *const *topics,
	       size_t ntopics)
{
	size_t size = ntopics * sizeof(char *);
	char  *p;

	for (size_t i = 0; i < ntopics; i++)
		size += strlen(topics[i]) + 1;
	if ((s->group = strdup(group)) == NULL ||
	    (s->topics = malloc(size)) == NULL)
		return MR_ENOMEM;
	p = (char *)(s->topics + ntopics);
	for (size_t i = 0; i < ntopics; i++) {
		size_t len = strlen(topics[i]) + 1;

		memcpy(p, topics[i], len);
		s->topics[i] = p;
		p += len;
	}
	s->ntopics = ntopics;
	return MR_OK;
}

static void
consumer__destroy(mr_consumer *s)
{
	free(s->group);
	free(s->topics);
	free(s->dlq_topic);
	free(s);
}

/* Check the retry and dead-letter options as mailroomd would, so that a
 * negative number is not sent as a huge one. @returns MR_OK, or MR_EINVAL
 * with a sentence in mr_client_last_error(). */
static int
consumer__check_opts(const mr_subscribe_opts *o, const char *const *topics,
		     size_t ntopics)
{
	const char *bad = NULL;
	unsigned    set = o->set;

	if (set & ~(unsigned)(MRI_SUB_RETRY_ALL | MRI_SUB_BREAKER_ALL))
		bad = "mr_subscribe_opts.set has a bit that is no MR_SUB_*";
	else if ((set & MR_SUB_MAX_ATTEMPTS) &&
		 (o->max_attempts < 0 ||
		  o->max_attempts > MRI_SUBSCRIBE_ATTEMPTS_MAX))
		bad = "max_attempts is 0 (unlimited) to 1000";
	else if ((set & MR_SUB_BACKOFF_INITIAL) &&
		 (o->backoff_initial_ms < 0 ||
		  o->backoff_initial_ms > MRI_SUBSCRIBE_BACKOFF_INITIAL_MAX))
		bad = "backoff_initial_ms is 0 to 3600000";
	else if ((set & MR_SUB_BACKOFF_MAX) &&
		 (o->backoff_max_ms < 0 ||
		  o->backoff_max_ms > MRI_SUBSCRIBE_BACKOFF_MAX_MAX))
		bad = "backoff_max_ms is 0 to 86400000";
	else if ((set & MR_SUB_BACKOFF_INITIAL) &&
		 (set & MR_SUB_BACKOFF_MAX) &&
		 o->backoff_max_ms < o->backoff_initial_ms)
		bad = "backoff_max_ms is below backoff_initial_ms";
	else if ((set & MR_SUB_BACKOFF_MULTIPLIER) &&
		 !(o->backoff_multiplier >= 1 &&
		   o->backoff_multiplier <= MRI_SUBSCRIBE_MULTIPLIER_MAX))
		bad = "backoff_multiplier is a number from 1 to 100";
	else if ((set & MR_SUB_BACKOFF_JITTER) &&
		 !(o->backoff_jitter >= 0 && o->backoff_jitter <= 1))
		bad = "backoff_jitter is a number from 0 to 1";
	else if ((set & MR_SUB_BREAKER_MAX) &&
		 (o->breaker_max < 0 ||
		  o->breaker_max > MRI_SUBSCRIBE_BREAKER_MAX))
		bad = "breaker_max is 0 (no breaker) to 1000000";
	else if ((set & MR_SUB_BREAKER_PERIOD) &&
		 (o->breaker_period_ms < 1 ||
		  o->breaker_period_ms > MRI_SUBSCRIBE_BREAKER_MS_MAX))
		bad = "breaker_period_ms is 1 to 86400000";
	else if ((set & MR_SUB_BREAKER_COOLDOWN) &&
		 (o->breaker_cooldown_ms < 1 ||
		  o->breaker_cooldown_ms > MRI_SUBSCRIBE_BREAKER_MS_MAX))
		bad = "breaker_cooldown_ms is 1 to 86400000";
	else if (o->dlq_topic != NULL &&
		 !mri_topic_valid(o->dlq_topic, strlen(o->dlq_topic)))
		bad = "dlq_topic is not a valid topic name";
	for (size_t i = 0; bad == NULL && o->dlq_topic != NULL && i < ntopics;
	     i++)
		if (strcmp(o->dlq_topic, topics[i]) == 0)
			bad = "dlq_topic is one of the subscription's topics";
	if (bad == NULL)
		return MR_OK;
	client__set_last_error(bad);
	return MR_EINVAL;
}

int
mr_subscribe(mr_client *c, const char *group, const char *const *topics,
	     size_t ntopics, const mr_subscribe_opts *opts, mr_consumer **out)
{
	mr_subscribe_opts o = {0};
	mr_consumer      *s;
	uint64_t          session = 0;
	int               credit  = 0, rc;

	if (opts != NULL)
		o = *opts;
	if (c == NULL || out == NULL || group == NULL || group[0] == '\0' ||
	    topics == NULL || ntopics == 0 || o.ack_deadline_ms < 0 ||
	    o.credit < 0 || o.order < MR_ORDER_KEY ||
	    o.order > MR_ORDER_UNORDERED)
		return MR_EINVAL;
	for (size_t i = 0; i < ntopics; i++)
		if (topics[i] == NULL ||
		    !mri_topic_valid(topics[i], strlen(topics[i])))
			return MR_EINVAL;
	if ((rc = consumer__check_opts(&o, topics, ntopics)) != MR_OK)
		return rc;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MR_ENOMEM;
	s->c    = c;
	s->opts = o;
	if (o.dlq_topic != NULL &&
	    (s->opts.dlq_topic = s->dlq_topic = strdup(o.dlq_topic)) == NULL) {
		consumer__destroy(s);
		return MR_ENOMEM;
	}
	if ((rc = consumer__keep(s, group, topics, ntopics)) != MR_OK ||
	    (rc = consumer__subscribe(s, &session, &credit)) != MR_OK) {
		consumer__destroy(s);
		return rc;
	}
	atomic_store(&s->session, session);
	atomic_store(&s->credit, credit);
	*out = s;
	return MR_OK;
}

uint64_t
mr_consumer_session(const mr_consumer *s)
{
	return s ? atomic_load(&s->session) : 0;
}

/* The two views of an assigned partition are one layout. */
_Static_assert(sizeof(mr_partition) == sizeof(struct mri_assigned) &&
		   offsetof(mr_partition, topic) ==
		       offsetof(struct mri_assigned, topic) &&
		   offsetof(mr_partition, partition) ==
		       offsetof(struct mri_assigned, partition),
	       "mr_partition is struct mri_assigned");

int
mr_consumer_assignment(mr_consumer *s, mr_partition **out, size_t *n)
{
	struct mri_assigned *v = NULL;
	struct mri_wbuf      b;
	nng_msg             *reply = NULL;
	const char          *why;
	int                  rc;

	if (s == NULL || out == NULL || n == NULL)
		return MR_EINVAL;
	*out = NULL;
	*n   = 0;
	mri_wbuf_init(&b);
	mri_assignment_encode(&b, atomic_load(&s->session));
	rc = b.err ? b.err : client__frame_call(s->c, &b, 0, &reply);
	mri_wbuf_fini(&b);
	if (rc != MR_OK)
		return rc;
	rc = mri_assignment_reply_decode(
	    (const uint8_t *)nng_msg_body(reply) + MRI_FRAME_HDR_LEN,
	    nng_msg_len(reply) - MRI_FRAME_HDR_LEN, &v, n, &why);
	nng_msg_free(reply);
	if (rc != MR_OK) {
		client__set_last_error(rc == MR_EPROTO ? why : "out of memory");
		return rc;
	}
	*out = (mr_partition *)v;
	return MR_OK;
}

int
consumer__credit(const mr_consumer *s)
{
	return atomic_load(&s->credit);
}

bool
consumer__reconnects(const mr_consumer *s)
{
	return s->opts.reconnect_timeout_ms >= 0;
}

bool
mr_consumer_lost(int err)
{
	switch (err) {
	case MR_ENOENT:
	case MR_ECLOSED:
	case MR_ETRANSPORT:
	case MR_ESHUTDOWN:
	case MR_ECONNREFUSED:
	case MR_ETIMEDOUT:
		return true;
	default:
		return false;
	}
}

/* @returns whether a SUBSCRIBE that failed with \p err may succeed later:
 * mailroomd restarting or unreachable, or Kafka not ready for it yet. */
static bool
consumer__transient(int err)
{
	return mr_consumer_lost(err) || err == MR_EUNAVAIL ||
	       err == MR_EBUSY || err == MR_EKAFKA;
}

static int64_t
consumer__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep \p ms, or less once *stop is set. @returns false when stopped. */
static bool
consumer__backoff(int ms, const volatile int *stop)
{
	while (ms > 0 && !client__stopped(stop)) {
		int             step = ms < CONSUMER__STOP_POLL_MS
					   ? ms
					   : CONSUMER__STOP_POLL_MS;
		struct timespec ts   = {0, (long)step * 1000000};

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		ms -= step;
	}
	return !client__stopped(stop);
}

int
mr_consumer_resubscribe(mr_consumer *s, const volatile int *stop)
{
	int      limit, backoff = CONSUMER__BACKOFF_MIN_MS, credit = 0, rc;
	int64_t  start = consumer__now_ms(), left;
	uint64_t session = 0, old;
	char     why[256];

	if (s == NULL)
		return MR_EINVAL;
	limit = s->opts.reconnect_timeout_ms;
	if (limit == 0)
		limit = MR_RECONNECT_TIMEOUT_MS;
	for (;;) {
		rc = consumer__subscribe(s, &session, &credit);
		if (rc == MR_OK || limit < 0 || !consumer__transient(rc))
			break;
		if ((left = start + limit - consumer__now_ms()) <= 0) {
			snprintf(why, sizeof(why),
				 "could not subscribe again within %d ms: %s",
				 limit,
				 mr_err_sentence(rc, mr_client_last_error()));
			client__set_last_error(why);
			return rc;
		}
		if (!consumer__backoff(backoff < left ? backoff : (int)left,
				       stop))
			return rc; // stopped: the last attempt's sentence
		if ((backoff *= 2) > CONSUMER__BACKOFF_MAX_MS)
			backoff = CONSUMER__BACKOFF_MAX_MS;
	}
	if (rc != MR_OK)
		return rc;
	old = atomic_exchange(&s->session, session);
	atomic_store(&s->credit, credit);
	// In case the old session lives on (a timeout, not a restart): its
	// deliveries go to the group again rather than wait for the deadline.
	consumer__unsubscribe(s->c, old);
	client__set_last_error("");
	return MR_OK;
}

void
mr_consumer_free(mr_consumer *s)
{
	if (s == NULL)
		return;
	consumer__unsubscribe(s->c, atomic_load(&s->session));
	consumer__destroy(s);
}

/* ---- FETCH ------------------------------------------------------------ */

/* One allocation: the batch, its deliveries, their headers, and the
 * NUL-terminated copies of topics, ids and header names. */
static int
consumer__batch_new(nng_msg *m, const struct mri_msg_view *v, uint32_t n,
		    mr_batch **out)
{
	size_t      nh = 0, strs = 0, size;
	mr_batch   *b;
	mr_header  *h;
	char       *p;
	const char *topic = NULL;
	size_t      topic_len = 0;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t      *pos = v[i].hdrs;
		struct mri_hdr_view hv;

		nh += v[i].hdr_count;
		strs += (size_t)v[i].topic_len + v[i].id_len + 2;
		for (uint16_t j = 0; j < v[i].hdr_count; j++) {
			mri_pub_next_hdr(&pos, &hv);
			strs += (size_t)hv.name_len + 1;
		}
	}
	size = sizeof(*b) + n * sizeof(mr_delivery) + nh * sizeof(mr_header) +
	       strs;
	if ((b = malloc(size)) == NULL)
		return MR_ENOMEM;
	b->msg     = m;
	b->session = 0;
	b->n       = n;
	b->d   = (mr_delivery *)(b + 1);
	h      = (mr_header *)(b->d + n);
	p      = (char *)(h + nh);
	for (uint32_t i = 0; i < n; i++) {
		mr_delivery        *d   = &b->d[i];
		const uint8_t      *pos = v[i].hdrs;
		struct mri_hdr_view hv;

		// Batches mostly hold one topic: keep one copy of each run.
		if (topic == NULL || topic_len != v[i].topic_len ||
		    memcmp(topic, v[i].topic, topic_len) != 0) {
			memcpy(p, v[i].topic, v[i].topic_len);
			p[v[i].topic_len] = '\0';
			topic             = p;
			topic_len         = v[i].topic_len;
			p += topic_len + 1;
		}
		d->handle       = v[i].handle;
		d->topic        = topic;
		d->partition    = v[i].partition;
		d->offset       = v[i].offset;
		d->timestamp_ms = v[i].timestamp_ms;
		d->attempt      = v[i].attempt;
		d->redelivery   = (v[i].flags & MRI_MSG_F_REDELIVERY) != 0;
		memcpy(p, v[i].id, v[i].id_len);
		p[v[i].id_len] = '\0';
		d->id          = p;
		p += v[i].id_len + 1;
		d->has_key      = (v[i].flags & MRI_MSG_F_KEY) != 0;
		d->key          = d->has_key ? v[i].key : NULL;
		d->key_len      = d->has_key ? v[i].key_len : 0;
		d->headers      = h;
		d->header_count = v[i].hdr_count;
		for (uint16_t j = 0; j < v[i].hdr_count; j++, h++) {
			mri_pub_next_hdr(&pos, &hv);
			memcpy(p, hv.name, hv.name_len);
			p[hv.name_len] = '\0';
			h->name        = p;
			h->value       = hv.value;
			h->value_len   = hv.value_len;
			p += hv.name_len + 1;
		}
		d->payload     = v[i].payload;
		d->payload_len = v[i].payload_len;
	}
	*out = b;
	return MR_OK;
}

int
mr_fetch(mr_consumer *s, size_t max_msgs, size_t max_bytes, int max_wait_ms,
	 mr_batch **out)
{
	struct mri_fetch     f;
	struct mri_wbuf      b;
	struct mri_msg_view *v = NULL;
	uint32_t             n = 0;
	nng_msg             *m;
	const char          *why;
	int                  rc;

	if (s == NULL || out == NULL || max_msgs == 0 ||
	    max_msgs > MRI_FETCH_MAX_MSGS || max_wait_ms < 0 ||
	    max_wait_ms > MRI_FETCH_MAX_WAIT_MS)
		return MR_EINVAL;
	f = (struct mri_fetch){
	    .session     = atomic_load(&s->session),
	    .max_msgs    = (uint32_t)max_msgs,
	    .max_bytes   = max_bytes > UINT32_MAX ? UINT32_MAX
						  : (uint32_t)max_bytes,
	    .max_wait_ms = (uint32_t)max_wait_ms,
	};
	mri_wbuf_init(&b);
	mri_fetch_encode(&b, &f);
	rc = client__frame_call(s->c, &b, max_wait_ms, &m);
	mri_wbuf_fini(&b);
	if (rc != MR_OK)
		return rc;
	rc = mri_fetch_reply_decode((uint8_t *)nng_msg_body(m) +
					MRI_FRAME_HDR_LEN,
				    nng_msg_len(m) - MRI_FRAME_HDR_LEN, &v, &n,
				    &why);
	if (rc == MR_OK && n > max_msgs) {
		rc  = MR_EPROTO;
		why = "FETCH_REPLY has more messages than asked for";
	}
	if (rc == MR_OK) {
		rc = consumer__batch_new(m, v, n, out);
		if (rc == MR_OK)
			(*out)->session = f.session;
	} else {
		client__set_last_error(why);
	}
	free(v);
	if (rc != MR_OK)
		nng_msg_free(m);
	return rc;
}

size_t
mr_batch_count(const mr_batch *b)
{
	return b ? b->n : 0;
}

const mr_delivery *
mr_batch_at(const mr_batch *b, size_t i)
{
	return b && i < b->n ? &b->d[i] : NULL;
}

uint64_t
consumer__batch_session(const mr_batch *b)
{
	return b->session;
}

void
mr_batch_free(mr_batch *b)
{
	if (b == NULL)
		return;
	nng_msg_free(b->msg);
	free(b);
}

/* ---- SETTLE ----------------------------------------------------------- */

static int
consumer__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Sort and merge into ranges of consecutive handles; *nr gets how many.
 * Repeated handles count once. @returns a new array or NULL. */
static struct mri_range *
consumer__ranges(const uint64_t *handles, size_t n, size_t *nr)
{
	uint64_t         *h = malloc(n * sizeof(*h));
	struct mri_range *r = malloc(n * sizeof(*r));
	size_t            k = 0;

	if (h == NULL || r == NULL) {
		free(h);
		free(r);
		return NULL;
	}
	memcpy(h, handles, n * sizeof(*h));
	qsort(h, n, sizeof(*h), consumer__cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && h[i] == r[k - 1].first + r[k - 1].count - 1)
			continue; // a repeat
		if (k > 0 && h[i] == r[k - 1].first + r[k - 1].count &&
		    r[k - 1].count < MRI_SETTLE_MAX) {
			r[k - 1].count++;
			continue;
		}
		r[k++] = (struct mri_range){h[i], 1};
	}
	free(h);
	*nr = k;
	return r;
}

static int
consumer__settle_one(mr_consumer *s, const struct mri_settle *st,
		     const struct mri_range *r, uint32_t nr, size_t *failed)
{
	struct mri_wbuf         b;
	struct mri_settle_fail *f = NULL;
	uint32_t                settled, nf;
	nng_msg                *m;
	const char             *why;
	int                     rc;

	mri_wbuf_init(&b);
	mri_settle_encode(&b, st, r, nr);
	rc = client__frame_call(s->c, &b, 0, &m);
	mri_wbuf_fini(&b);
	if (rc == MR_EINVAL && st->linger) {
		// A mailroomd older than the flag refuses the whole SETTLE:
		// send it without, from now on.
		struct mri_settle plain = *st;

		plain.linger = false;
		if ((rc = consumer__settle_one(s, &plain, r, nr, failed)) !=
		    MR_EINVAL)
			atomic_store(&s->no_linger, true);
		return rc;
	}
	if (rc != MR_OK)
		return rc;
	rc = mri_settle_reply_decode((uint8_t *)nng_msg_body(m) +
					 MRI_FRAME_HDR_LEN,
				     nng_msg_len(m) - MRI_FRAME_HDR_LEN,
				     &settled, &f, &nf, &why);
	nng_msg_free(m);
	if (rc != MR_OK) {
		client__set_last_error(why);
		return rc;
	}
	*failed += nf;
	free(f);
	return MR_OK;
}

/* Settle \p n handles of \p session (the consumer's current one, or the
 * one that fetched them for mr_consume_run). */
static int
consumer__settle(mr_consumer *s, uint64_t session, uint8_t kind,
		 const uint64_t *handles, size_t n, uint32_t extend_ms,
		 const char *reason, size_t *failed)
{
	struct mri_settle st = {0};
	struct mri_range *r;
	size_t            nr, at = 0, nf = 0;
	int               rc = MR_OK;

	if (failed != NULL)
		*failed = 0;
	if (s == NULL || (handles == NULL && n > 0))
		return MR_EINVAL;
	if (n == 0)
		return MR_OK;
	if ((r = consumer__ranges(handles, n, &nr)) == NULL)
		return MR_ENOMEM;
	st.session   = session;
	st.kind      = kind & (uint8_t)~MRI_SETTLE_F_LINGER;
	st.linger    = (kind & MRI_SETTLE_F_LINGER) != 0 &&
		    !atomic_load(&s->no_linger);
	st.extend_ms = extend_ms;
	if (reason != NULL) {
		size_t len = strlen(reason);

		if (len > MRI_REASON_MAX) {
			len = MRI_REASON_MAX;
			// Not in the middle of a UTF-8 sequence.
			while (len > 0 &&
			       ((unsigned char)reason[len] & 0xc0) == 0x80)
				len--;
		}
		st.reason     = reason;
		st.reason_len = (uint16_t)len;
	}
	// As many ranges per request as the protocol allows.
	while (at < nr && rc == MR_OK) {
		uint64_t sum = 0;
		size_t   k   = 0;

		while (at + k < nr && k < MRI_SETTLE_RANGES_MAX &&
		       sum + r[at + k].count <= MRI_SETTLE_MAX)
			sum += r[at + k++].count;
		rc = consumer__settle_one(s, &st, r + at, (uint32_t)k, &nf);
		at += k;
	}
	free(r);
	if (failed != NULL)
		*failed = nf;
	return rc;
}

int
consumer__settle_on(mr_consumer *s, uint64_t session, uint8_t kind,
		    const uint64_t *handles, size_t n, const char *reason,
		    size_t *failed)
{
	return consumer__settle(s, session, kind, handles, n, 0,
				(kind & (uint8_t)~MRI_SETTLE_F_LINGER) ==
					MRI_SETTLE_ACK
				    ? NULL
				    : reason,
				failed);
}

int
mr_consumer_ack(mr_consumer *s, const uint64_t *handles, size_t n,
		size_t *failed)
{
	return consumer__settle(s, mr_consumer_session(s), MRI_SETTLE_ACK,
				handles, n, 0, NULL, failed);
}

int
mr_consumer_nack(mr_consumer *s, const uint64_t *handles, size_t n,
		 const char *reason, size_t *failed)
{
	return consumer__settle(s, mr_consumer_session(s), MRI_SETTLE_NACK,
				handles, n, 0, reason, failed);
}

int
mr_consumer_reject(mr_consumer *s, const uint64_t *handles, size_t n,
		   const char *reason, size_t *failed)
{
	return consumer__settle(s, mr_consumer_session(s), MRI_SETTLE_REJECT,
				handles, n, 0, reason, failed);
}

int
mr_consumer_extend(mr_consumer *s, const uint64_t *handles, size_t n,
		   int ms, size_t *failed)
{
	if (ms <= 0) {
		if (failed != NULL)
			*failed = 0;
		return MR_EINVAL;
	}
	return consumer__settle(s, mr_consumer_session(s), MRI_SETTLE_EXTEND,
				handles, n, (uint32_t)ms, NULL, failed);
}
