#define _GNU_SOURCE /* pthread_setname_np */

#include "consume.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nng/nng.h>

#include "broker/consume_conf.h"
#include "broker/consume_internal.h"
#include "broker/consume_reply.h"
#include "consumers/journal.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "proto/assignment.h"
#include "proto/consume.h"
#include "proto/subscribe.h"

/* The ack latency's buckets, in ms: from a millisecond (a record acked
 * as it arrives) to an hour (a backlog worked off). */
static const uint64_t consume__ack_le_ms[] = {
    1,    5,     10,    25,    50,     100,    250,    500,    1000,
    2500, 5000,  10000, 30000, 60000,  300000, 900000, 3600000};

/* Group \p group's tally (made when new; "_other" when the table is full).
 * Called with the lock held. */
static struct consume_tally *
consume__tally(struct mri_consume *r, const char *group)
{
	for (size_t i = 0; i < r->ntallies; i++)
		if (strcmp(r->tallies[i].group, group) == 0)
			return &r->tallies[i];
	if (r->ntallies == CONSUME__TALLY_MAX)
		return &r->tallies[CONSUME__TALLY_MAX];
	snprintf(r->tallies[r->ntallies].group,
		 sizeof(r->tallies[r->ntallies].group), "%s", group);
	return &r->tallies[r->ntallies++];
}

/* \p s leaves the registry's list: its counts go to its group's tally
 * (with the lock held), inside an odd count of r->retired, so that a
 * reader of both (mri_consume_retired) can tell it read in between. */
static void
consume__retire(struct mri_consume *r, struct consume_sub *s)
{
	struct mri_group_stats gs;
	struct mri_dlq_stats   ds;

	atomic_fetch_add(&r->retired, 1);
	mri_group_stats(s->g, &gs, NULL, 0);
	mri_dlq_stats(s->sup, &ds);
	atomic_fetch_add(&s->tally->failed, gs.failed);
	atomic_fetch_add(&s->tally->expired, gs.expired);
	atomic_fetch_add(&s->tally->quarantined, ds.quarantined);
	atomic_fetch_add(&s->tally->dlq_errors, ds.dlq_errors);
	atomic_fetch_add(&s->tally->trips, ds.trips);
	atomic_fetch_add(&r->retired, 1);
}

static void
consume__sub_free(struct consume_sub *s)
{
	if (s->sup != NULL)
		mri_dlq_detach(s->sup);
	mri_group_free(s->g);
	mri_dlq_free(s->sup);
	json_decref(s->desc);
	free((char *)s->dlq.topic);
	free(s->key);
	free(s);
}

/* Release a hold on \p s; the last one hands it to the reaper. Called
 * with the lock held. */
static void
consume__sub_rele_locked(struct mri_consume *r, struct consume_sub *s)
{
	if (--s->refs > 0)
		return;
	s->next = r->reap;
	r->reap = s;
	pthread_cond_signal(&r->cv);
}

void
consume__sub_rele(struct mri_consume *r, struct consume_sub *s)
{
	pthread_mutex_lock(&r->lock);
	consume__sub_rele_locked(r, s);
	pthread_mutex_unlock(&r->lock);
}

/* Free the subscriptions released (leaving their groups may take
 * seconds). Called with the lock held; it is released meanwhile. */
static void
consume__reap(struct mri_consume *r)
{
	struct consume_sub *s;

	while ((s = r->reap) != NULL) {
		r->reap = s->next;
		pthread_mutex_unlock(&r->lock);
		consume__sub_free(s);
		pthread_mutex_lock(&r->lock);
	}
}

static void consume__close(struct mri_consume *r,
			   bool (*match)(struct consume_session *, uint64_t),
			   uint64_t what);

/* The session's connection is gone (nng no longer knows its pipe). */
static bool
consume__pipe_gone(struct consume_session *x, uint64_t unused)
{
	nng_pipe     p = {.id = x->pipe};
	nng_sockaddr sa;
	int          rv = nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa);

	return rv == NNG_ENOENT || rv == NNG_ECLOSED;
}

/* Once a second: sessions whose connection closed are closed (what they
 * held is handed out again), and subscriptions without a session for
 * consumer.idle_close_ms leave the registry and, once no call holds them,
 * their group, so that Kafka gives their partitions to the members still
 * there. Subscriptions released meanwhile are freed at once. */
static void *
consume__reaper(void *arg)
{
	struct mri_consume *r = arg;

	pthread_setname_np(pthread_self(), "mr:reaper");
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct consume_sub **pp, *s;
		uint64_t             now;

		pthread_mutex_unlock(&r->lock);
		consume__close(r, consume__pipe_gone, 0);
		pthread_mutex_lock(&r->lock);
		now = mri_mono_ms();

		for (pp = &r->subs; (s = *pp) != NULL;) {
			if (s->nsessions == 0 &&
			    (s->exclusive ||
			     (r->c.idle_close_ms > 0 &&
			      now - s->idle_since >= r->c.idle_close_ms))) {
				*pp = s->next;
				consume__retire(r, s);
				mri_notice("component=consumer group=%s "
					   "msg=\"%s: leaving the group\"",
					   s->key,
					   s->exclusive
					       ? "its session ended"
					       : "no session for a while");
				consume__sub_rele_locked(r, s);
			} else {
				pp = &s->next;
			}
		}
		consume__reap(r);
		if (!r->stop && r->reap == NULL)
			mri_cond_wait_until(&r->cv, &r->lock,
					    mri_deadline_in(1000));
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

const char *const consume__modes[] = {"key", "partition", "unordered"};

void
consume__error(struct mri_wbuf *out, int code, const char *why)
{
	char msg[MRI_ERRMSG_MAX];

	snprintf(msg, sizeof(msg), "%s: %s", mr_err_name(code), why);
	mri_error_encode(out, (uint16_t)code, msg);
}

int
mri_consume_new(struct mri_consume **out, const rd_kafka_conf_t *conf,
		const struct mri_consume_conf *c)
{
	struct mri_consume *r = calloc(1, sizeof(*r));
	struct timespec     ts;

	if (r == NULL || (r->tmpl = rd_kafka_conf_dup(conf)) == NULL) {
		free(r);
		return MR_ENOMEM;
	}
	r->c = *c;
	if ((r->tallies = calloc(CONSUME__TALLY_MAX + 1,
				 sizeof(*r->tallies))) == NULL) {
		rd_kafka_conf_destroy(r->tmpl);
		free(r);
		return MR_ENOMEM;
	}
	strcpy(r->tallies[CONSUME__TALLY_MAX].group, "_other");
	for (size_t i = 0; i <= CONSUME__TALLY_MAX; i++)
		mri_hist_init(&r->tallies[i].ack_latency, consume__ack_le_ms,
			      sizeof(consume__ack_le_ms) /
				  sizeof(consume__ack_le_ms[0]));
	pthread_mutex_init(&r->lock, NULL);
	mri_cond_init(&r->cv);
	if (pthread_create(&r->reaper, NULL, consume__reaper, r) == 0)
		r->reaper_started = true;
	// Session ids of an earlier run of mailroomd are not taken for ours.
	clock_gettime(CLOCK_REALTIME, &ts);
	r->next_id = ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec;
	*out       = r;
	return MR_OK;
}

void
mri_consume_drain(struct mri_consume *r)
{
	pthread_mutex_lock(&r->lock);
	r->draining = true;
	for (struct consume_sub *s = r->subs; s != NULL; s = s->next)
		mri_group_drain(s->g);
	pthread_mutex_unlock(&r->lock);
}

void
mri_consume_free(struct mri_consume *r)
{
	struct consume_sub     *s;
	struct consume_session *x;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
	if (r->reaper_started)
		pthread_join(r->reaper, NULL);
	// No call is in progress now: every hold left is the registry's or
	// a session's.
	pthread_mutex_lock(&r->lock);
	while ((x = r->sessions) != NULL) {
		r->sessions = x->next;
		consume__sub_rele_locked(r, x->sub);
		free(x);
	}
	while ((s = r->subs) != NULL) {
		r->subs = s->next;
		consume__sub_rele_locked(r, s);
	}
	consume__reap(r);
	pthread_mutex_unlock(&r->lock);
	// Every group is gone, and its journal with it.
	mri_journal_hub_free(r->hub);
	rd_kafka_conf_destroy(r->tmpl);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	free(r->tallies);
	free(r);
}

/* @returns the subscription, made if new; NULL with a sentence. Called
 * with the lock held; it is released while a new one joins Kafka (the
 * journal's catch-up may take seconds), so that other sessions go on. */
static struct consume_sub *
consume__sub(struct mri_consume *r, const struct mri_group_conf *gc,
	     const struct mri_dlq_conf *dc, bool exclusive, int *code,
	     char *why, size_t why_size)
{
	struct consume_sub    *s;
	rd_kafka_conf_t       *conf = NULL;
	size_t                 klen;
	char                  *key = consume__key(gc, dc, &klen);
	struct mri_group_hooks hooks;
	struct mri_group_conf  c;

	*code = MR_ENOMEM;
	snprintf(why, why_size, "mailroomd is out of memory");
	if (key == NULL)
		return NULL;
	for (s = r->subs; s != NULL && !exclusive; s = s->next)
		if (!s->exclusive && s->key_len == klen &&
		    memcmp(s->key, key, klen) == 0) {
			free(key);
			return s;
		}
	// The journals' clients, made with the first group that keeps one.
	if (gc->journal && r->hub == NULL) {
		int rc = mri_journal_hub_new(&r->hub, r->tmpl, why, why_size);

		if (rc != MR_OK) {
			r->hub = NULL;
			*code  = rc;
			free(key);
			return NULL;
		}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (dc->topic != NULL &&
	     (s->dlq.topic = strdup(dc->topic)) == NULL) ||
	    (conf = rd_kafka_conf_dup(r->tmpl)) == NULL) {
		if (s != NULL)
			free((char *)s->dlq.topic);
		free(s);
		free(key);
		return NULL;
	}
	s->key                     = key;
	s->key_len                 = klen;
	s->dlq.group               = key; // the group, NUL-terminated
	s->dlq.breaker_max         = dc->breaker_max;
	s->dlq.breaker_period_ms   = dc->breaker_period_ms;
	s->dlq.breaker_cooldown_ms = dc->breaker_cooldown_ms;
	s->dlq.suffix              = r->c.dlq_suffix;
	s->order                   = gc->order;
	s->ntopics                 = gc->ntopics;
	s->exclusive               = exclusive;
	s->tally                   = consume__tally(r, gc->group);
	c                          = *gc;
	c.ack_latency              = &s->tally->ack_latency;
	c.journal_hub = r->hub;
	pthread_mutex_unlock(&r->lock);
	*code = mri_dlq_new(&s->sup, r->c.pub, &s->dlq, why, why_size);
	if (*code == MR_OK) {
		mri_dlq_hooks(s->sup, &hooks);
		c.partitions_hint = consume__partitions(&r->c, gc);
		*code = mri_group_new(&s->g, conf, &c, &hooks, why, why_size);
	}
	pthread_mutex_lock(&r->lock);
	if (*code != MR_OK) {
		rd_kafka_conf_destroy(conf);
		s->g = NULL;
		pthread_mutex_unlock(&r->lock);
		consume__sub_free(s);
		pthread_mutex_lock(&r->lock);
		return NULL;
	}
	mri_dlq_attach(s->sup, s->g);
	for (struct consume_sub *o = r->subs; o != NULL && !exclusive;
	     o = o->next)
		if (!o->exclusive && o->key_len == klen &&
		    memcmp(o->key, key, klen) == 0) {
			// Another SUBSCRIBE made the same one meanwhile.
			pthread_mutex_unlock(&r->lock);
			consume__sub_free(s);
			pthread_mutex_lock(&r->lock);
			return o;
		}
	if (r->draining)
		mri_group_drain(s->g);
	s->desc = consume__desc(&r->c, gc, dc);
	s->refs = 1; // the registry's
	s->next = r->subs;
	r->subs = s;
	mri_notice("component=consumer group=%s mode=%s topics=%zu "
		   "msg=\"subscribed\"",
		   gc->group, consume__modes[gc->order], gc->ntopics);
	return s;
}

void
mri_consume_subscribe(struct mri_consume *r, uint32_t pipe,
		      const uint8_t *body, size_t len, struct mri_wbuf *out)
{
	const char             *topics[CONSUME__TOPICS_MAX];
	struct mri_group_conf   gc;
	struct mri_dlq_conf     dc;
	struct consume_sub     *s;
	struct consume_session *x;
	json_t                 *root, *reply;
	char                    why[512], *text;
	int                     code;

	_Static_assert(CONSUME__TOPICS_MAX >= MRI_SUBSCRIBE_TOPICS_MAX,
		       "room for SUBSCRIBE's topics");
	if ((code = consume__parse(&r->c, body, len, &root, &gc, &dc, topics,
				   why, sizeof(why))) != MR_OK) {
		json_decref(root);
		consume__error(out, code, why);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->draining) {
		pthread_mutex_unlock(&r->lock);
		json_decref(root);
		consume__error(out, MR_ESHUTDOWN, "mailroomd is draining");
		return;
	}
	if ((s = consume__sub(r, &gc, &dc,
			      json_is_true(json_object_get(root, "exclusive")),
			      &code, why, sizeof(why))) == NULL ||
	    (x = calloc(1, sizeof(*x))) == NULL) {
		pthread_mutex_unlock(&r->lock);
		json_decref(root);
		consume__error(out, s == NULL ? code : MR_ENOMEM,
			       s == NULL ? why : "out of memory");
		return;
	}
	if (mri_group_session_open(s->g, &x->sid) != MR_OK) {
		pthread_mutex_unlock(&r->lock);
		free(x);
		json_decref(root);
		consume__error(out, MR_ENOMEM, "out of memory");
		return;
	}
	s->nsessions++;
	s->refs++; // the session's
	x->refs     = 1; // the registry's
	x->id       = ++r->next_id;
	x->sub      = s;
	x->pipe     = pipe;
	x->next     = r->sessions;
	r->sessions = x;
	reply       = json_deep_copy(s->desc);
	json_object_set_new(reply, "session", json_integer((json_int_t)(
						    x->id & INT64_MAX)));
	pthread_mutex_unlock(&r->lock);
	json_decref(root);
	text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	mri_frame_begin(out, MRI_OP_SUBSCRIBE_REPLY);
	if (text != NULL)
		mri_wbuf_put(out, text, strlen(text));
	free(text);
	if (text == NULL || mri_frame_end(out) != MR_OK) {
		mri_frame_begin(out, MRI_OP_ERROR);
		consume__error(out, MR_ENOMEM, "out of memory");
	}
}

/* @returns session \p id of connection \p pipe, held (release it with
 * consume__session_rele), or NULL. */
struct consume_session *
consume__find(struct mri_consume *r, uint64_t id, uint32_t pipe)
{
	struct consume_session *x;

	pthread_mutex_lock(&r->lock);
	for (x = r->sessions; x != NULL; x = x->next)
		if (x->id == id && x->pipe == pipe) {
			x->refs++;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return x;
}

/* Release a hold on session \p x; the last one closes it in its group and
 * releases its subscription. Called without the lock. */
void
consume__session_rele(struct mri_consume *r, struct consume_session *x)
{
	unsigned left;

	pthread_mutex_lock(&r->lock);
	left = --x->refs;
	pthread_mutex_unlock(&r->lock);
	if (left > 0)
		return;
	mri_group_session_close(x->sub->g, x->sid);
	consume__sub_rele(r, x->sub);
	free(x);
}

/* A FETCH or SETTLE in a group: where its reply goes. */
struct consume_req {
	mri_consume_reply_cb cb;
	void                *arg;
	struct consume_sub  *sub;  /* for its counts (it outlives the call) */
	uint8_t              kind; /* a SETTLE's */
};

/* The group's answer to a FETCH, as a frame. */
static void
consume__fetched(void *arg, int err, const struct mri_group_batch *b)
{
	struct consume_req *q = arg;
	nng_msg            *m;

	if (err == MR_EUNAVAIL)
		m = mri_consume_error_reply(
		    err, "the delivery attempts could not be recorded in "
			 "Kafka; the messages will be delivered again after "
			 "their ack deadline");
	else if (err != MR_OK)
		m = mri_consume_error_reply(err, "mailroomd is out of memory");
	else
		m = mri_consume_fetch_reply(b);
	if (err == MR_OK) {
		uint64_t again = 0;

		for (size_t i = 0; i < b->n; i++)
			again += b->d[i].attempt > 1;
		atomic_fetch_add(&q->sub->tally->delivered, b->n);
		atomic_fetch_add(&q->sub->tally->redelivered, again);
	}
	q->cb(q->arg, m);
	free(q);
}

/* The group's answer to a SETTLE, as a frame. */
static void
consume__settled(void *arg, int err, const struct mri_group_settle_result *res)
{
	struct consume_req *q = arg;
	nng_msg            *m;

	if (err != MR_OK)
		m = mri_consume_error_reply(
		    MR_EUNAVAIL, "the acks were taken but could not be "
				 "recorded in Kafka; some of these messages "
				 "may be delivered again");
	else
		m = mri_consume_settle_reply(res);
	if (err == MR_OK && q->kind == MRI_SETTLE_ACK)
		atomic_fetch_add(&q->sub->tally->acks, res->settled);
	else if (err == MR_OK && q->kind == MRI_SETTLE_NACK)
		atomic_fetch_add(&q->sub->tally->nacks, res->settled);
	else if (err == MR_OK && q->kind == MRI_SETTLE_REJECT)
		atomic_fetch_add(&q->sub->tally->rejects, res->settled);
	q->cb(q->arg, m);
	free(q);
}

int
mri_consume_fetch(struct mri_consume *r, uint32_t pipe, const uint8_t *body,
		  size_t len, mri_consume_reply_cb cb, void *arg,
		  struct mri_wbuf *out)
{
	struct mri_fetch           f;
	struct mri_group_fetch_req gf;
	struct consume_session    *x;
	struct consume_req        *q;
	const char                *why;
	size_t                     max;
	int                        rc;

	if ((rc = mri_fetch_decode(body, len, &f, &why)) != MR_OK) {
		consume__error(out, rc, why);
		return rc;
	}
	if ((x = consume__find(r, f.session, pipe)) == NULL) {
		consume__error(out, MR_ENOENT,
			       "no such session (closed, or opened on another "
			       "connection or before a restart): subscribe "
			       "again");
		return MR_ENOENT;
	}
	// max_bytes counts the whole reply (0: the frame's limit); the group
	// counts its records' sizes.
	max = f.max_bytes ? f.max_bytes : r->c.max_frame;
	if (max > r->c.max_frame)
		max = r->c.max_frame;
	gf.max_msgs    = f.max_msgs;
	gf.max_size    = max > MRI_FETCH_REPLY_HDR_LEN
			     ? max - MRI_FETCH_REPLY_HDR_LEN
			     : 0;
	gf.max_wait_ms = f.max_wait_ms;
	if ((q = malloc(sizeof(*q))) == NULL)
		rc = MR_ENOMEM;
	else {
		q->cb  = cb;
		q->arg = arg;
		q->sub = x->sub;
		rc     = mri_group_fetch(x->sub->g, x->sid, &gf,
					 consume__fetched, q);
	}
	consume__session_rele(r, x);
	if (rc != MR_OK) {
		free(q);
		consume__error(out, rc, "cannot fetch");
	}
	return rc;
}

int
mri_consume_settle(struct mri_consume *r, uint32_t pipe, const uint8_t *body,
		   size_t len, mri_consume_reply_cb cb, void *arg,
		   struct mri_wbuf *out)
{
	struct mri_settle           s;
	struct mri_group_settle_req gs;
	struct mri_group_range      stack[64], *ranges = stack;
	struct consume_session     *x;
	struct consume_req         *q;
	const char                 *why;
	int                         rc;

	if ((rc = mri_settle_decode(body, len, &s, &why)) != MR_OK) {
		consume__error(out, rc, why);
		return rc;
	}
	if ((x = consume__find(r, s.session, pipe)) == NULL) {
		consume__error(out, MR_ENOENT,
			       "no such session: its deliveries were handed "
			       "out again");
		return MR_ENOENT;
	}
	if (s.range_count > 64)
		ranges = malloc(s.range_count * sizeof(*ranges));
	q = malloc(sizeof(*q));
	if (ranges == NULL || q == NULL) {
		rc = MR_ENOMEM;
	} else {
		for (uint32_t i = 0; i < s.range_count; i++) {
			struct mri_range rg;

			mri_settle_range(&s, i, &rg);
			ranges[i].first = rg.first;
			ranges[i].count = rg.count;
		}
		_Static_assert((int)MRI_GROUP_NACK == (int)MRI_SETTLE_NACK &&
				   (int)MRI_GROUP_EXTEND ==
				       (int)MRI_SETTLE_EXTEND &&
				   (int)MRI_GROUP_REJECT ==
				       (int)MRI_SETTLE_REJECT,
			       "one numbering of the settle kinds");
		gs.kind       = (enum mri_group_settle_kind)s.kind;
		gs.extend_ms  = s.extend_ms;
		gs.reason     = s.reason;
		gs.reason_len = s.reason_len;
		gs.ranges     = ranges;
		gs.nranges    = s.range_count;
		gs.handles    = s.handles;
		gs.linger     = s.linger;
		q->cb         = cb;
		q->arg        = arg;
		q->sub        = x->sub;
		q->kind       = s.kind;
		rc = mri_group_settle(x->sub->g, &gs, consume__settled, q);
	}
	consume__session_rele(r, x);
	if (ranges != stack)
		free(ranges);
	if (rc != MR_OK) {
		free(q);
		consume__error(out, rc, "out of memory");
	}
	return rc;
}

static void
consume__close(struct mri_consume *r, bool (*match)(struct consume_session *,
						     uint64_t),
	       uint64_t what)
{
	struct consume_session **pp, *x, *gone = NULL;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->sessions; (x = *pp) != NULL;) {
		if (match(x, what)) {
			if (--x->sub->nsessions == 0)
				x->sub->idle_since = mri_mono_ms();
			*pp     = x->next;
			x->next = gone;
			gone    = x;
		} else {
			pp = &x->next;
		}
	}
	pthread_mutex_unlock(&r->lock);
	while ((x = gone) != NULL) {
		gone = x->next;
		consume__session_rele(r, x);
	}
}

static bool
consume__is_id(struct consume_session *x, uint64_t id)
{
	return x->id == id;
}

void
mri_consume_unsubscribe(struct mri_consume *r, uint32_t pipe,
			const uint8_t *body, size_t len, struct mri_wbuf *out)
{
	struct consume_session *x;
	uint64_t                id;
	const char             *why;
	int                     rc;

	if ((rc = mri_unsubscribe_decode(body, len, &id, &why)) != MR_OK) {
		consume__error(out, rc, why);
		return;
	}
	if ((x = consume__find(r, id, pipe)) == NULL) {
		consume__error(out, MR_ENOENT, "no such session");
		return;
	}
	consume__session_rele(r, x);
	consume__close(r, consume__is_id, id);
	mri_frame_begin(out, MRI_OP_UNSUBSCRIBE_REPLY);
	mri_frame_end(out);
}
