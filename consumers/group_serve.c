/*
 * A group's side that serves its sessions: FETCH (deliveries taken under
 * the group's lock, encoded after it, answered once the journal has their
 * attempts), SETTLE (acks, nacks, extensions), and sessions opening and
 * closing. The group's thread and its life are in group.c.
 */
#include "group.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/group_internal.h"
#include "consumers/journal.h"
#include "core/log.h"
#include "mailroom/error.h"

/* ---- fetches --------------------------------------------------------- */

/* "topic/partition/offset", the id of a record that has none, without
 * snprintf (a FETCH formats one per such record).
 * @returns its length, at most MRI_ID_MAX. */
static size_t
group__pos_id(char *out, const char *topic, int32_t partition,
	      int64_t offset)
{
	char   digits[24];
	size_t n = strlen(topic), k;

	if (n > MRI_ID_MAX - 42)
		n = MRI_ID_MAX - 42;
	memcpy(out, topic, n);
	for (int i = 0; i < 2; i++) {
		uint64_t v = i == 0 ? (uint32_t)partition : (uint64_t)offset;

		if ((i == 0 && partition < 0) || (i == 1 && offset < 0)) {
			out[n++] = '/';
			out[n++] = '-';
			v = i == 0 ? (uint64_t)-(int64_t)partition
				   : (uint64_t)-offset;
		} else {
			out[n++] = '/';
		}
		k = 0;
		do {
			digits[k++] = (char)('0' + v % 10);
			v /= 10;
		} while (v != 0);
		while (k > 0)
			out[n++] = digits[--k];
	}
	out[n] = '\0';
	return n;
}

/* The wire view of record \p r: \p hv and \p idbuf hold what it points
 * to. */
void
group__view(const struct group_rec *r, struct mri_msg_view *v,
	    struct mri_hdr_view *hv, char *idbuf)
{
	rd_kafka_message_t *m  = r->m;
	rd_kafka_headers_t *hs = NULL;
	const void         *val;
	const char         *name;
	size_t              vlen, nh = 0;
	const char         *topic = rd_kafka_topic_name(m->rkt);

	memset(v, 0, sizeof(*v));
	v->topic        = topic;
	v->topic_len    = (uint16_t)strlen(topic);
	v->partition    = m->partition;
	v->offset       = m->offset;
	v->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
	v->key          = m->key ? m->key : "";
	v->key_len      = (uint32_t)m->key_len;
	v->payload      = m->payload ? m->payload : "";
	v->payload_len  = (uint32_t)m->len;
	if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (size_t i = 0; nh < MRI_HDR_COUNT_MAX &&
				   rd_kafka_header_get_all(hs, i, &name, &val,
							   &vlen) == 0;
		     i++) {
			size_t nl = strlen(name);

			if (nl == 0 || nl > MRI_HDR_NAME_MAX)
				continue;
			hv[nh].name      = name;
			hv[nh].name_len  = (uint16_t)nl;
			hv[nh].value     = val ? val : "";
			hv[nh].value_len = (uint32_t)vlen;
			if (strcmp(name, "ce_id") == 0 && vlen > 0 &&
			    vlen <= MRI_ID_MAX) {
				v->id     = val;
				v->id_len = (uint8_t)vlen;
			}
			nh++;
		}
	}
	if (v->id == NULL) {
		v->id     = idbuf;
		v->id_len = (uint8_t)group__pos_id(idbuf, topic, m->partition,
						   m->offset);
	}
	v->hdr_count = (uint16_t)nh;
}

static void
group__encode(const struct mri_delivery *d, struct mri_wbuf *b)
{
	const struct group_rec *r = d->opaque;
	struct mri_hdr_view     hv[MRI_HDR_COUNT_MAX];
	struct mri_msg_view     v;
	char                    idbuf[MRI_ID_MAX + 1];

	group__view(r, &v, hv, idbuf);
	v.handle  = d->handle;
	v.attempt = d->attempt;
	v.flags   = (r->m->key != NULL ? MRI_MSG_F_KEY : 0) |
		  (d->attempt > 1 ? MRI_MSG_F_REDELIVERY : 0);
	mri_msg_encode(b, &v, hv);
}

/* Take what waiter \p w may have: the deliveries only, marked busy; they
 * are encoded after the lock (group__complete). Called with the lock held.
 * @returns the number of deliveries. */
static size_t
group__fill(struct mri_group *g, struct group_waiter *w, uint64_t now)
{
	size_t max_bytes = w->f.max_bytes ? w->f.max_bytes : w->max_frame;

	if (max_bytes > w->max_frame)
		max_bytes = w->max_frame;
	w->size = MRI_FRAME_HDR_LEN + 4;
	while (!g->revoking && w->nds < w->f.max_msgs &&
	       w->size < max_bytes) {
		struct mri_delivery *d;

		if (w->nds == w->ds_cap) {
			size_t               nc = w->ds_cap ? w->ds_cap * 2 : 64;
			struct mri_delivery *a = realloc(w->ds, nc * sizeof(*a));

			if (a == NULL)
				break;
			w->ds     = a;
			w->ds_cap = nc;
		}
		d = &w->ds[w->nds];
		if (mri_engine_fetch(g->e, w->sid, now, d, 1) != 1)
			break;
		((struct group_rec *)d->opaque)->busy++;
		w->size += ((struct group_rec *)d->opaque)->size;
		w->nds++;
	}
	if (w->nds > 0)
		g->filling++;
	return w->nds;
}

/* Serve the waiters that can be served; those done are moved to *done.
 * Called with the lock held. */
void
group__serve(struct mri_group *g, uint64_t now, struct group_waiter **done)
{
	struct group_waiter **pp = &g->waiters, *w;

	while ((w = *pp) != NULL) {
		// Draining: answered empty, nothing more handed out.
		if (g->draining || atomic_load(&g->stop) ||
		    group__fill(g, w, now) > 0 || now >= w->deadline) {
			*pp     = w->next;
			w->next = *done;
			*done   = w;
		} else {
			pp = &w->next;
		}
	}
}

static void
group__waiter_end(struct group_waiter *w)
{
	w->cb(w->arg, &w->out);
	mri_wbuf_fini(&w->out);
	free(w->ds);
	free(w->ents);
	free(w);
}

/* The journal has the attempts of a reply's records (or could not take
 * them): the reply goes out, or an error does and the records come back
 * after their deadline. */
static void
group__dispatched(void *arg, int err)
{
	struct group_waiter *w = arg;

	if (err != MR_OK) {
		mri_frame_begin(&w->out, MRI_OP_ERROR);
		mri_error_encode(&w->out, MR_EUNAVAIL,
				 "MR_EUNAVAIL: the delivery attempts could not "
				 "be recorded in Kafka; the messages will be "
				 "delivered again after their ack deadline");
	}
	group__waiter_end(w);
}

/* Encode waiter \p w's reply outside the lock. A record whose id was acked
 * since it arrived (a publisher's retry, a second copy buffered with the
 * first) is acked here and left out. Then its records are released. */
static void
group__reply(struct mri_group *g, struct group_waiter *w)
{
	bool   stack[256], *acked = NULL;
	size_t n = 0;

	if (g->j != NULL && w->nds > 0) {
		uint64_t *ids = malloc(w->nds * sizeof(*ids));

		acked = w->nds <= 256 ? stack : malloc(w->nds * sizeof(*acked));
		w->ents = malloc(w->nds * sizeof(*w->ents));
		if (ids != NULL && acked != NULL) {
			for (size_t i = 0; i < w->nds; i++)
				ids[i] = ((struct group_rec *)w->ds[i].opaque)->id;
			mri_journal_lookup(g->j, w->nds, NULL, NULL, ids,
					   acked);
		} else if (acked != NULL) {
			memset(acked, 0, w->nds * sizeof(*acked));
		}
		free(ids);
	}
	mri_frame_begin(&w->out, MRI_OP_FETCH_REPLY);
	mri_wbuf_reserve(&w->out, w->size);
	mri_wbuf_u32(&w->out, 0);
	for (size_t i = 0; i < w->nds; i++) {
		struct mri_delivery *d = &w->ds[i];

		if (acked != NULL && acked[i])
			continue; // acked below, under the lock
		group__encode(d, &w->out);
		n++;
		if (w->ents != NULL) {
			w->ents[w->nents].hash = ((struct group_rec *)d->opaque)->pos;
			w->ents[w->nents++].attempt = d->attempt;
		}
	}
	mri_wbuf_patch_u32(&w->out, MRI_FRAME_HDR_LEN, (uint32_t)n);
	if (mri_frame_end(&w->out) != MR_OK) {
		mri_frame_begin(&w->out, MRI_OP_ERROR);
		mri_error_encode(&w->out, MR_ENOMEM,
				 "MR_ENOMEM: mailroomd is out of memory");
		w->nents = 0;
	}
	if (w->nds > 0) {
		pthread_mutex_lock(&g->lock);
		for (size_t i = 0; i < w->nds; i++) {
			((struct group_rec *)w->ds[i].opaque)->busy--;
			if (acked != NULL && acked[i])
				mri_engine_ack(g->e, w->ds[i].handle, NULL);
		}
		g->filling--;
		pthread_mutex_unlock(&g->lock);
	}
	if (acked != stack)
		free(acked);
}

void
group__complete(struct mri_group *g, struct group_waiter *done)
{
	struct group_waiter *w;

	while ((w = done) != NULL) {
		done = w->next;
		group__reply(g, w);
		if (w->nents > 0 &&
		    mri_journal_write(g->j, MRI_JOURNAL_DISPATCH, w->ents,
				      w->nents, group__dispatched,
				      w) == MR_OK)
			continue;
		if (w->nents > 0)
			group__dispatched(w, MR_EUNAVAIL);
		else
			group__waiter_end(w);
	}
}

int
mri_group_fetch(struct mri_group *g, uint32_t sid, const struct mri_fetch *f,
		size_t max_frame, mri_group_reply_cb cb, void *arg)
{
	struct group_waiter *w = calloc(1, sizeof(*w)), *done = NULL;
	uint64_t             now = group__now();

	if (w == NULL)
		return MR_ENOMEM;
	w->sid       = sid;
	w->f         = *f;
	w->max_frame = max_frame;
	w->deadline  = now + f->max_wait_ms;
	w->cb        = cb;
	w->arg       = arg;
	mri_wbuf_init(&w->out);
	pthread_mutex_lock(&g->lock);
	w->next    = g->waiters;
	g->waiters = w;
	group__serve(g, now, &done);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
	return MR_OK;
}

/* A SETTLE whose acks are being written to the journal. */
struct group_settle {
	mri_group_reply_cb cb;
	void              *arg;
	struct mri_wbuf    out;
};

static void
group__settled(void *arg, int err)
{
	struct group_settle *st = arg;

	if (err != MR_OK) {
		mri_frame_begin(&st->out, MRI_OP_ERROR);
		mri_error_encode(&st->out, MR_EUNAVAIL,
				 "MR_EUNAVAIL: the acks were taken but could "
				 "not be recorded in Kafka; some of these "
				 "messages may be delivered again");
	}
	st->cb(st->arg, &st->out);
	mri_wbuf_fini(&st->out);
	free(st);
}

int
mri_group_settle(struct mri_group *g, const struct mri_settle *s,
		 mri_group_reply_cb cb, void *arg)
{
	struct mri_settle_fail   *fails = NULL;
	struct mri_journal_entry *acked = NULL;
	uint32_t                  nf = 0, cap = 0, settled = 0;
	size_t                    na = 0;
	struct group_waiter      *done = NULL;
	struct group_settle      *st   = calloc(1, sizeof(*st));
	uint64_t                  now  = group__now();

	if (st == NULL)
		return MR_ENOMEM;
	st->cb  = cb;
	st->arg = arg;
	mri_wbuf_init(&st->out);
	if (g->j != NULL && s->kind == MRI_SETTLE_ACK &&
	    (acked = malloc(s->handles * sizeof(*acked))) == NULL) {
		free(st);
		return MR_ENOMEM;
	}
	pthread_mutex_lock(&g->lock);
	for (uint32_t i = 0; i < s->range_count; i++) {
		struct mri_range r;

		mri_settle_range(s, i, &r);
		for (uint64_t h = r.first; h < r.first + r.count; h++) {
			int rc;

			void *m;

			switch (s->kind) {
			case MRI_SETTLE_ACK:
				rc = mri_engine_ack(g->e, h, &m);
				if (rc == MR_OK && acked != NULL) {
					acked[na].hash =
					    ((struct group_rec *)m)->id;
					acked[na++].attempt = 0;
				}
				break;
			case MRI_SETTLE_NACK:
				rc = mri_engine_nack(g->e, h);
				break;
			default:
				rc = mri_engine_extend(g->e, h, now,
						       s->extend_ms);
				break;
			}
			if (rc == MR_OK) {
				settled++;
				continue;
			}
			if (nf == cap) {
				uint32_t                nc = cap ? cap * 2 : 16;
				struct mri_settle_fail *a =
				    realloc(fails, nc * sizeof(*a));

				if (a == NULL)
					continue; // counted, not listed
				fails = a;
				cap   = nc;
			}
			fails[nf].handle   = h;
			fails[nf++].status = (uint16_t)rc;
		}
	}
	if (s->kind != MRI_SETTLE_EXTEND)
		group__serve(g, now, &done);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
	mri_settle_reply_encode(&st->out, settled, fails, nf);
	free(fails);
	if (na == 0 || mri_journal_write(g->j, MRI_JOURNAL_ACK, acked, na,
					 group__settled, st) != MR_OK)
		group__settled(st, na == 0 ? MR_OK : MR_EUNAVAIL);
	free(acked);
	return MR_OK;
}

/* ---- sessions -------------------------------------------------------- */

int
mri_group_session_open(struct mri_group *g, uint32_t *sid)
{
	int rc;

	pthread_mutex_lock(&g->lock);
	if ((rc = mri_engine_session_open(g->e, sid)) == MR_OK)
		g->sessions++;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

void
mri_group_session_close(struct mri_group *g, uint32_t sid)
{
	struct group_waiter **pp, *w, *done = NULL;
	uint64_t              now = group__now();

	pthread_mutex_lock(&g->lock);
	for (pp = &g->waiters; (w = *pp) != NULL;) {
		if (w->sid == sid) {
			*pp        = w->next;
			w->deadline = 0;
			w->next = done;
			done    = w;
		} else {
			pp = &w->next;
		}
	}
	mri_engine_session_close(g->e, sid);
	g->sessions--;
	group__serve(g, now, &done);
	pthread_mutex_unlock(&g->lock);
	group__complete(g, done);
}

size_t
mri_group_sessions(struct mri_group *g)
{
	size_t n;

	pthread_mutex_lock(&g->lock);
	n = g->sessions;
	pthread_mutex_unlock(&g->lock);
	return n;
}

