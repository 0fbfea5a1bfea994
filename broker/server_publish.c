#define _GNU_SOURCE /* pthread_setname_np */
/*
 * The front door's PUBLISH requests (docs/ARCHITECTURE.md, "The publish
 * path"): decode the frame into a batch of the publisher
 * (bridge/publish.h), keep the order of a publisher's requests, submit
 * the batch, and encode the reply from its results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/backpressure.h"
#include "broker/metrics.h"
#include "core/clock.h"
#include "mailroom/error.h"
#include "server_internal.h"

/* Count the results of \p c's messages by topic (a run of one topic at a
 * time) and their latency. */
static void
srv__publish_count(struct srv_ctx *c)
{
	uint64_t n[MRI_PUB_RESULTS] = {0};

	for (uint32_t i = 0; i < c->count; i++) {
		const struct mri_pub_rec *r = &c->batch.recs[i];

		if (r->res.err == MR_OK)
			n[(r->res.flags & MRI_PUB_F_DUPLICATE)
			      ? MRI_PUB_DUPLICATE
			      : MRI_PUB_OK]++;
		else
			n[r->res.err == MR_EBUSY ? MRI_PUB_REFUSED
						 : MRI_PUB_ERROR]++;
		if (i + 1 == c->count ||
		    c->views[i + 1].topic_len != c->views[i].topic_len ||
		    memcmp(c->views[i + 1].topic, c->views[i].topic,
			   c->views[i].topic_len) != 0) {
			mri_metrics_publish(c->s->metrics, c->views[i].topic,
					    c->views[i].topic_len, n);
			memset(n, 0, sizeof(n));
		}
	}
	mri_metrics_publish_latency(c->s->metrics, mri_mono_us() - c->t0_us,
				    c->count);
}

static void
srv__publish_reply(struct srv_ctx *c)
{
	char why[MRI_ERRMSG_MAX / 2];

	srv__publish_count(c);
	mri_frame_begin(&c->out, MRI_OP_PUBLISH_ACK);
	mri_wbuf_u32(&c->out, c->count);
	for (uint32_t i = 0; i < c->count; i++) {
		const struct mri_pub_rec *r = &c->batch.recs[i];
		struct mri_ack_view       a = {0};

		a.status    = (uint16_t)r->res.err;
		a.flags     = (r->res.flags & MRI_PUB_F_DUPLICATE)
				  ? MRI_ACK_F_DUPLICATE
				  : 0;
		a.partition = r->res.partition;
		a.offset    = r->res.offset;
		a.topic     = c->views[i].topic;
		a.topic_len = c->views[i].topic_len;
		a.id        = r->id;
		a.id_len    = r->id_len;
		if (r->res.err != MR_OK && r->res.why) {
			a.errmsg     = r->res.why;
			a.errmsg_len = (uint16_t)strnlen(r->res.why,
							 MRI_ERRMSG_MAX);
		}
		if (c->bp_used)
			srv__bp_ack(c, i, &a, why, sizeof(why));
		mri_ack_encode(&c->out, &a);
	}
	mri_frame_end(&c->out);
	srv__send(c);
}

static void
srv__guard_release(struct srv_ctx *c)
{
	if (atomic_fetch_sub(&c->guard, 1) == 1)
		srv__publish_reply(c);
}

/* The batch is done: on the producer's thread or a submitting one. */
static void
srv__published(void *arg, struct mri_pub_batch *b)
{
	srv__guard_release(arg);
}

/* Room for \p n records and \p nh headers in the context's arrays, kept
 * across requests so that a steady stream allocates nothing here. */
static int
srv__reserve(struct srv_ctx *c, uint32_t n, size_t nh)
{
	struct mri_pub_rec  *recs;
	struct mri_hdr_view *hdrs;

	if (n > c->recs_cap) {
		if ((recs = realloc(c->batch.recs, n * sizeof(*recs))) == NULL)
			return MR_ENOMEM;
		c->batch.recs = recs;
		c->recs_cap   = n;
	}
	if (nh > c->hdrs_cap) {
		if ((hdrs = realloc(c->hdrs, nh * sizeof(*hdrs))) == NULL)
			return MR_ENOMEM;
		c->hdrs     = hdrs;
		c->hdrs_cap = nh;
	}
	return MR_OK;
}

static const char *
srv__topic(struct srv_ctx *c, const struct mri_pub_view *v)
{
	struct srv_topic *t = c->topics;

	if (t != NULL && strlen(t->name) == v->topic_len &&
	    memcmp(t->name, v->topic, v->topic_len) == 0)
		return t->name;
	for (t = c->topics; t != NULL; t = t->next)
		if (strlen(t->name) == v->topic_len &&
		    memcmp(t->name, v->topic, v->topic_len) == 0)
			return t->name;
	if ((t = malloc(sizeof(*t) + v->topic_len + 1)) == NULL)
		return NULL;
	memcpy(t->name, v->topic, v->topic_len);
	t->name[v->topic_len] = '\0';
	t->next               = c->topics;
	c->topics             = t;
	return t->name;
}

/* Submit the batch of \p c: its records reach the producer before this
 * returns; the reply goes when every record has its outcome.
 * @returns the requests of c's stream whose turn this made come. */
static struct mri_order_item *
srv__submit(struct srv_ctx *c)
{
	struct mri_server     *s    = c->s;
	struct mri_order_item *next = NULL;

	// One count for the batch, one for this hand-off: the batch may be
	// done before submit returns, and c is needed until the turn passed.
	// Cannot be refused: a decoded PUBLISH has 1 message or more.
	atomic_store(&c->guard, 2);
	(void)mri_publish_submit(s->pub, &c->batch);
	// The turn passes before the guard goes: once the reply is on its
	// way, c serves another request.
	if (c->sequenced)
		next = mri_order_done(s->order, &c->oitem, mri_mono_ms());
	srv__guard_release(c);
	return next;
}

/* \p c's turn came: submit it, unless backpressure holds it (then it
 * keeps the turn until srv__go). @returns as srv__submit. */
static struct mri_order_item *
srv__handoff(struct srv_ctx *c)
{
	if (mri_bp_any(c->s->bp) && srv__bp_hold(c))
		return NULL;
	return srv__submit(c);
}

/* Hand off \p list and whatever turns their hand-offs pass on. */
static void
srv__handoff_all(struct mri_order_item *list)
{
	while (list != NULL) {
		struct mri_order_item *it = list, *more, *last;

		list = it->next;
		if ((more = srv__handoff(it->arg)) != NULL) {
			for (last = more; last->next != NULL; last = last->next)
				;
			last->next = list;
			list       = more;
		}
	}
}

void
srv__go(struct srv_ctx *c)
{
	srv__handoff_all(srv__submit(c));
}

/* Refuse requests that waited for their turn in vain: nothing of them was
 * handed off. */
void
srv__refuse_parked(struct mri_order_item *list, int code, const char *why)
{
	while (list != NULL) {
		struct srv_ctx *c = list->arg;

		list         = list->next;
		c->sequenced = false;
		mri_publish_cancel(&c->batch);
		srv__reply_error(c, code, why);
	}
}

static void
srv__sweep(struct mri_server *s)
{
	struct mri_order_item *late;
	char                   why[200];

	if (atomic_load(&s->stopping))
		return;
	if (atomic_load(&s->draining)) {
		// Parked after the drain began: what they wait for is refused.
		srv__bp_recheck(s, MR_ESHUTDOWN, SRV__DRAINING_WHY);
		srv__refuse_parked(mri_order_expire(s->order, mri_mono_ms(), 0),
				   MR_ESHUTDOWN, SRV__DRAINING_WHY);
		return;
	}
	srv__bp_recheck(s, MR_OK, NULL);
	late = mri_order_expire(s->order, mri_mono_ms(), s->order_wait_ms);
	if (late != NULL) {
		snprintf(why, sizeof(why),
			 "an earlier request of this publisher's stream did "
			 "not arrive within %llu ms; nothing of this request "
			 "was written: send it again",
			 (unsigned long long)s->order_wait_ms);
		srv__refuse_parked(late, MR_EORDER, why);
	}
}

static void *
srv__sweeper_main(void *arg)
{
	struct mri_server *s   = arg;
	uint64_t           due = mri_deadline_in(SRV__SWEEP_MS);

	pthread_setname_np(pthread_self(), "mr:sweep");
	pthread_mutex_lock(&s->sweep_lock);
	while (!s->sweep_stop) {
		if (mri_cond_wait_until(&s->sweep_cv, &s->sweep_lock, due) !=
		    ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&s->sweep_lock);
		srv__sweep(s);
		due = mri_deadline_in(SRV__SWEEP_MS);
		pthread_mutex_lock(&s->sweep_lock);
	}
	pthread_mutex_unlock(&s->sweep_lock);
	return NULL;
}

int
srv__sweeper_start(struct mri_server *s)
{
	if (pthread_create(&s->sweeper, NULL, srv__sweeper_main, s) != 0)
		return MR_ENOMEM;
	s->sweeper_run = true;
	return MR_OK;
}

void
srv__sweeper_stop(struct mri_server *s)
{
	if (!s->sweeper_run)
		return;
	pthread_mutex_lock(&s->sweep_lock);
	s->sweep_stop = true;
	pthread_cond_signal(&s->sweep_cv);
	pthread_mutex_unlock(&s->sweep_lock);
	pthread_join(s->sweeper, NULL);
	s->sweeper_run = false;
}

void
srv__publish(struct srv_ctx *c, const uint8_t *body, size_t len,
	     uint16_t flags)
{
	struct mri_server     *s = c->s;
	const char            *why;
	int64_t                bad;
	int                    rc;
	struct mri_pub_seq     seq = {0};
	const uint8_t         *msgs;
	struct mri_order_item *go;
	bool                   full;
	size_t                 nh = 0;

	atomic_fetch_add(&s->n_requests, 1);
	c->t0_us     = mri_mono_us();
	c->sequenced = false;
	c->bp_used   = false;
	c->held_ms   = 0;
	if (flags & ~MRI_FRAME_F_SEQ) {
		srv__reply_error(c, MR_EPROTO, "unknown frame flags");
		return;
	}
	if ((flags & MRI_FRAME_F_SEQ) &&
	    (rc = mri_publish_seq_decode(body, len, &seq, &why)) != MR_OK) {
		srv__reply_error(c, rc, why);
		return;
	}
	msgs = mri_publish_messages(body, &len, flags);
	rc   = mri_publish_decode_into(msgs, len, &c->views, &c->views_cap,
				       &c->count, &why, &bad);
	if (rc != MR_OK) {
		char msg[256];
		if (bad >= 0)
			snprintf(msg, sizeof(msg), "message %lld: %s",
				 (long long)bad, why);
		else
			snprintf(msg, sizeof(msg), "%s", why);
		srv__reply_error(c, rc, msg);
		return;
	}
	for (uint32_t i = 0; i < c->count; i++)
		nh += c->views[i].hdr_count;
	if (srv__reserve(c, c->count, nh) != MR_OK) {
		c->count = 0;
		srv__reply_error(c, MR_ENOMEM, "cannot hold the request");
		return;
	}

	nh = 0;
	for (uint32_t i = 0; i < c->count; i++) {
		struct mri_pub_rec  *r = &c->batch.recs[i];
		struct mri_pub_view *v = &c->views[i];
		const uint8_t       *pos = v->hdrs;

		mri_pub_rec_init(r);
		r->key       = v->key;
		r->key_len   = v->key_len;
		r->has_key   = v->has_key;
		r->value     = v->payload;
		r->value_len = v->payload_len;
		r->id        = v->id;
		r->id_len    = v->id_len;
		r->hdrs      = &c->hdrs[nh];
		r->hdr_count = v->hdr_count;
		for (uint16_t h = 0; h < v->hdr_count; h++)
			mri_pub_next_hdr(&pos, &c->hdrs[nh++]);
		if ((r->topic = srv__topic(c, v)) == NULL)
			r->res.err = MR_ENOMEM;
	}
	c->batch.n    = c->count;
	c->batch.done = srv__published;
	c->batch.arg  = c;
	// Ids and envelopes now, on this thread, in parallel with other
	// requests; the hand-off when the request's turn comes.
	mri_publish_prepare(s->pub, &c->batch);
	if (!(flags & MRI_FRAME_F_SEQ)) {
		srv__handoff_all(srv__handoff(c));
		return;
	}
	// A sequenced request waits for its turn: the hand-offs of one
	// stream go to the producer in the publisher's order.
	c->oitem.stream = seq.stream;
	c->oitem.seq    = seq.seq;
	c->oitem.arg    = c;
	c->sequenced    = true;
	go = mri_order_arrive(s->order, &c->oitem, seq.base, mri_mono_ms(),
			      &full);
	if (full)
		c->sequenced = false;
	srv__handoff_all(go);
}
