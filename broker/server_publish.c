/*
 * The front door's PUBLISH pipeline (docs/ARCHITECTURE.md, "The publish
 * path"): decode, envelope, the order of a publisher's requests, the dedupe
 * window, the producer, and the reply once every message has its outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bridge/envelope.h"
#include "mailroom/error.h"
#include "server_internal.h"

static void
srv__publish_reply(struct srv_ctx *c)
{
	struct mri_server *s  = c->s;
	uint64_t           ok = 0;

	mri_frame_begin(&c->out, MRI_OP_PUBLISH_ACK);
	mri_wbuf_u32(&c->out, c->count);
	for (uint32_t i = 0; i < c->count; i++) {
		struct srv_slot    *sl = &c->slots[i];
		struct mri_ack_view a  = {0};

		a.status    = sl->status;
		a.flags     = sl->flags;
		a.partition = sl->partition;
		a.offset    = sl->offset;
		a.topic     = c->views[i].topic;
		a.topic_len = c->views[i].topic_len;
		a.id        = sl->id;
		a.id_len    = sl->id_len;
		if (sl->status != MR_OK && sl->why) {
			a.errmsg     = sl->why;
			a.errmsg_len = (uint16_t)strnlen(sl->why, MRI_ERRMSG_MAX);
		}
		ok += sl->status == MR_OK;
		mri_ack_encode(&c->out, &a);
	}
	mri_frame_end(&c->out);
	atomic_fetch_add(&s->n_confirmed, ok);
	atomic_fetch_add(&s->n_failed, c->count - ok);
	srv__send(c);
}

static void
srv__slot_done(struct srv_slot *sl)
{
	struct srv_ctx *c = sl->c;

	if (atomic_fetch_sub(&c->pending, 1) == 1)
		srv__publish_reply(c);
}

static void
srv__slot_set(struct srv_slot *sl, int err, int32_t part, int64_t off,
	      const char *why)
{
	sl->status    = (uint16_t)err;
	sl->partition = err ? -1 : part;
	sl->offset    = err ? -1 : off;
	sl->why       = err ? (why ? why : mr_strerror(err)) : NULL;
}

/* Complete the duplicates that waited on an entry. Caller holds dlock. */
static void
srv__finish_waiters(struct mri_server *s, struct mri_dedupe_waiter *w,
		    int err, int32_t part, int64_t off, const char *why)
{
	struct mri_dedupe_waiter *next;

	for (; w != NULL; w = next) {
		struct srv_slot *sl = (struct srv_slot *)w;

		next = w->next;
		srv__slot_set(sl, err, part, off, why);
		if (err == MR_OK) {
			sl->flags |= MRI_ACK_F_DUPLICATE;
			atomic_fetch_add(&s->n_duplicates, 1);
		}
		srv__slot_done(sl);
	}
}

/* The producer's reports: on the producer's thread. */
void
srv__on_report(void *arg, struct mri_presult *r, size_t n)
{
	struct mri_server *s     = arg;
	bool               dedup = false;

	for (size_t i = 0; i < n && !dedup; i++)
		dedup = ((struct srv_slot *)r[i].msg->opaque)->dentry != NULL;
	if (dedup) {
		uint64_t now = srv__mono_ms();

		pthread_mutex_lock(&s->dlock);
		for (size_t i = 0; i < n; i++) {
			struct srv_slot          *sl = r[i].msg->opaque;
			struct mri_dedupe_waiter *w;

			if (sl->dentry == NULL)
				continue;
			if (r[i].err == MR_OK)
				w = mri_dedupe_complete(s->dedupe, sl->dentry,
							r[i].partition,
							r[i].offset, now);
			else
				w = mri_dedupe_fail(s->dedupe, sl->dentry);
			sl->dentry = NULL;
			srv__finish_waiters(s, w, r[i].err, r[i].partition,
					    r[i].offset, r[i].why);
		}
		pthread_mutex_unlock(&s->dlock);
	}
	for (size_t i = 0; i < n; i++) {
		struct srv_slot *sl = r[i].msg->opaque;

		srv__slot_set(sl, r[i].err, r[i].partition, r[i].offset,
			      r[i].why);
		srv__slot_done(sl);
	}
}

/* Room for \p n messages in the context's arrays, kept across requests so
 * that a steady stream allocates nothing here. */
static int
srv__reserve(struct srv_ctx *c, uint32_t n)
{
	struct srv_slot  *slots;
	struct mri_pmsg **send;
	int              *rcs;
	const char      **whys;

	if (n <= c->slots_cap)
		return MR_OK;
	if ((slots = realloc(c->slots, n * sizeof(*slots))) == NULL)
		return MR_ENOMEM;
	c->slots = slots;
	if ((send = realloc(c->send, n * sizeof(*send))) == NULL)
		return MR_ENOMEM;
	c->send = send;
	if ((rcs = realloc(c->rcs, n * sizeof(*rcs))) == NULL)
		return MR_ENOMEM;
	c->rcs = rcs;
	if ((whys = realloc(c->whys, n * sizeof(*whys))) == NULL)
		return MR_ENOMEM;
	c->whys      = whys;
	c->slots_cap = n;
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

/* Hand the prepared messages of \p c to the dedupe window and the
 * producer; the request's reply goes when every message has its outcome.
 * @returns the requests of c's stream whose turn this made come. */
static struct mri_order_item *
srv__handoff(struct srv_ctx *c)
{
	struct mri_server     *s     = c->s;
	struct mri_pmsg      **send  = c->send;
	int                   *rcs   = c->rcs;
	const char           **whys  = c->whys;
	size_t                 nsend = c->nsend;
	struct mri_order_item *next  = NULL;

	// Publisher-given ids go through the dedupe window; assigned ones are
	// new by construction.
	if (s->dedupe != NULL) {
		uint64_t now_ms = srv__mono_ms();
		size_t   k      = 0;

		pthread_mutex_lock(&s->dlock);
		mri_dedupe_expire(s->dedupe, now_ms);
		for (size_t i = 0; i < nsend; i++) {
			struct srv_slot         *sl = send[i]->opaque;
			struct mri_dedupe_entry *e;
			struct mri_pub_view     *v = &c->views[sl - c->slots];
			int                      st;

			if (v->id_len == 0) {
				send[k++] = send[i];
				continue;
			}
			st = mri_dedupe_check(s->dedupe, v->topic, v->topic_len,
					      v->id, v->id_len, now_ms, &e);
			switch (st) {
			case MRI_DEDUPE_NEW:
				sl->dentry = e;
				send[k++]  = send[i];
				break;
			case MRI_DEDUPE_PENDING:
				// Completed by whoever completes the first:
				// from now on another thread may finish it.
				sl->waiting = 1;
				mri_dedupe_wait(e, &sl->waiter);
				break;
			case MRI_DEDUPE_DONE:
				srv__slot_set(sl, MR_OK, e->partition,
					      e->offset, NULL);
				sl->flags |= MRI_ACK_F_DUPLICATE;
				atomic_fetch_add(&s->n_duplicates, 1);
				break;
			default:
				srv__slot_set(sl, MR_ENOMEM, -1, -1, NULL);
				break;
			}
			if (st != MRI_DEDUPE_NEW && sl->pm.hdrs) {
				rd_kafka_headers_destroy(sl->pm.hdrs);
				sl->pm.hdrs = NULL;
			}
		}
		pthread_mutex_unlock(&s->dlock);
		nsend = k;
	}

	// Everything neither sent nor waiting on its first publish has its
	// outcome already (refused, or a confirmed duplicate).
	for (uint32_t i = 0, j = 0; i < c->count; i++) {
		struct srv_slot *sl = &c->slots[i];

		if (j < nsend && send[j] == &sl->pm) {
			j++;
			continue;
		}
		if (!sl->waiting)
			srv__slot_done(sl);
	}

	if (nsend > 0) {
		mri_producer_send(s->prod, send, nsend, rcs, whys);
		for (size_t i = 0; i < nsend; i++) {
			struct srv_slot *sl = send[i]->opaque;

			if (rcs[i] == MR_OK)
				continue;
			if (sl->dentry != NULL) {
				struct mri_dedupe_waiter *w;

				pthread_mutex_lock(&s->dlock);
				w = mri_dedupe_fail(s->dedupe, sl->dentry);
				sl->dentry = NULL;
				srv__finish_waiters(s, w, rcs[i], -1, -1,
						    whys[i]);
				pthread_mutex_unlock(&s->dlock);
			}
			srv__slot_set(sl, rcs[i], -1, -1, whys[i]);
			srv__slot_done(sl);
		}
	}
	// The turn passes before the guard goes: once the reply is on its
	// way, c serves another request.
	if (c->sequenced)
		next = mri_order_done(s->order, &c->oitem, srv__mono_ms());
	srv__slot_done(&(struct srv_slot){.c = c});
	return next;
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

/* Refuse requests that waited for their turn in vain: nothing of them was
 * handed off. */
void
srv__refuse_parked(struct mri_order_item *list, int code, const char *why)
{
	while (list != NULL) {
		struct srv_ctx *c = list->arg;

		list         = list->next;
		c->sequenced = false;
		srv__reply_error(c, code, why);
	}
}

void
srv__sweep_cb(void *arg)
{
	struct mri_server     *s = arg;
	struct mri_order_item *late;
	char                   why[200];

	if (nng_aio_result(s->sweep) != 0 || atomic_load(&s->stopping))
		return;
	if (atomic_load(&s->draining)) {
		// Parked after the drain began: what they wait for is refused.
		srv__refuse_parked(mri_order_expire(s->order, srv__mono_ms(), 0),
				   MR_ESHUTDOWN, SRV__DRAINING_WHY);
		nng_sleep_aio(SRV__SWEEP_MS, s->sweep);
		return;
	}
	late = mri_order_expire(s->order, srv__mono_ms(), s->order_wait_ms);
	if (late != NULL) {
		snprintf(why, sizeof(why),
			 "an earlier request of this publisher's stream did "
			 "not arrive within %llu ms; nothing of this request "
			 "was written: send it again",
			 (unsigned long long)s->order_wait_ms);
		srv__refuse_parked(late, MR_EORDER, why);
	}
	nng_sleep_aio(SRV__SWEEP_MS, s->sweep);
}

void
srv__publish(struct srv_ctx *c, const uint8_t *body, size_t len,
	     uint16_t flags)
{
	struct mri_server           *s = c->s;
	struct mri_envelope_defaults d;
	char                         src[256], type[256];
	char                         now[MRI_TIME_STRLEN + 1];
	const char                  *why;
	int64_t                      bad;
	int                          rc;
	struct mri_pub_seq           seq = {0};
	const uint8_t               *msgs;
	struct mri_order_item       *go;
	bool                         full;

	atomic_fetch_add(&s->n_requests, 1);
	c->sequenced = false;
	c->nsend     = 0;
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
	rc   = mri_publish_decode(msgs, len, &c->views, &c->count, &why, &bad);
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
	if (srv__reserve(c, c->count) != MR_OK) {
		c->count = 0;
		srv__reply_error(c, MR_ENOMEM, "cannot hold the request");
		return;
	}

	pthread_mutex_lock(&s->cfg_lock);
	memcpy(src, s->ce_source, sizeof(src));
	memcpy(type, s->ce_type, sizeof(type));
	pthread_mutex_unlock(&s->cfg_lock);
	mri_time_fmt(srv__wall_ms(), now);
	d = (struct mri_envelope_defaults){src, type, NULL, now};

	// The guard: the reply goes only when every slot and the hand-off
	// are done.
	atomic_store(&c->pending, c->count + 1);
	for (uint32_t i = 0; i < c->count; i++) {
		struct srv_slot     *sl = &c->slots[i];
		struct mri_pub_view *v  = &c->views[i];

		memset(sl, 0, offsetof(struct srv_slot, idbuf));
		sl->c         = c;
		sl->partition = -1;
		sl->offset    = -1;
		if (v->id_len > 0) {
			sl->id     = v->id;
			sl->id_len = v->id_len;
			if (mri_envelope_id_valid(v->id, v->id_len) != MR_OK) {
				srv__slot_set(sl, MR_EINVAL, -1, -1,
					      "message id has control bytes");
				continue;
			}
		} else {
			mri_uuid7_string(sl->idbuf);
			sl->id     = sl->idbuf;
			sl->id_len = MRI_UUID_STRLEN;
		}
		rc = mri_envelope_headers(v, sl->id, sl->id_len, &d,
					  &sl->pm.hdrs, &why);
		if (rc != MR_OK) {
			srv__slot_set(sl, rc, -1, -1, why);
			continue;
		}
		if ((sl->pm.topic = srv__topic(c, v)) == NULL) {
			srv__slot_set(sl, MR_ENOMEM, -1, -1, NULL);
			continue;
		}
		sl->pm.key           = v->key;
		sl->pm.key_len       = v->key_len;
		sl->pm.has_key       = v->has_key;
		sl->pm.payload       = v->payload;
		sl->pm.payload_len   = v->payload_len;
		sl->pm.opaque        = sl;
		c->send[c->nsend++] = &sl->pm;
	}
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
	go = mri_order_arrive(s->order, &c->oitem, seq.base, srv__mono_ms(),
			      &full);
	if (full)
		c->sequenced = false;
	srv__handoff_all(go);
}
