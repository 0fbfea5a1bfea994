/*
 * Publishing (include/mailroom/client.h): encoding a request's messages
 * with their ids, the stream's order (seq and base), the client's own
 * resends of a publish whose outcome is unknown or was refused for now, and
 * the acks. The request machinery is client/client.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "client/client_internal.h"
#include "core/uuid7.h"
#include "proto/frame.h"

#define CLIENT__STD_HDRS 5
// The longest pause between two sends of a refused publish.
#define CLIENT__RETRY_MAX_MS 1000
// How often a publish held back from a draining mailroomd looks again.
#define CLIENT__HOLD_MS 50
// The most acks whose buffer a client keeps for the next completion.
#define CLIENT__ACKS_KEEP 4096

int
client__remaining_ms(const struct client_req *r)
{
	nng_time now = nng_clock();

	return r->deadline > now ? (int)(r->deadline - now) : 0;
}

/* A publish whose request failed as a whole: send it again, with the same
 * ids and seq, while its deadline allows, when its outcome is unknown (the
 * connection was lost) or it was refused for now (mailroomd draining, or
 * an earlier request of the stream missing). @returns true if it will be
 * sent again. */
bool
client__pub_retry(struct client_req *r, int nng_rv, bool sent, int status)
{
	int delay;

	if (nng_rv != 0) {
		if (sent)
			r->in_doubt = true;
		if (nng_rv == NNG_ETIMEDOUT || nng_rv == NNG_ECLOSED ||
		    nng_rv == NNG_ECANCELED)
			return false;
		delay = 0; // the send waits in nng's queue for a connection
	} else if (status == MR_ESHUTDOWN) {
		// Sent again once this connection is gone (client__pub_send).
		r->last_err = status;
		delay       = CLIENT__HOLD_MS;
	} else if (status == MR_EORDER) {
		r->last_err = status;
		delay       = r->sends < 6 ? 10 << r->sends : CLIENT__RETRY_MAX_MS;
	} else {
		return false;
	}
	if (client__remaining_ms(r) <= delay)
		return false;
	if (delay == 0) {
		client__pub_send(r);
		return true;
	}
	nng_sleep_aio(delay, r->timer);
	return true;
}

/* The pause before a publish is sent again is over. */
void
client__timer_cb(void *arg)
{
	struct client_req *r  = arg;
	int                rv = nng_aio_result(r->timer);

	if (rv != 0)
		client__pub_give_up(r, r->last_err, nng_strerror(rv), NULL);
	else
		client__pub_send(r);
}

/* The outcome of a publish that gave up: unknown if any send of it may
 * have been carried out. */
void
client__pub_give_up(struct client_req *r, int status, const char *why,
		    nng_msg *m)
{
	char buf[MRI_ERRMSG_MAX + 1];

	if (status == MR_OK)
		status = MR_ECLOSED;
	client__trace(r->c, "publish seq %u given up after %d sends: %s",
		      r->seq, r->sends, why ? why : mr_err_name(status));
	if (r->in_doubt) {
		snprintf(buf, sizeof(buf),
			 "no answer from mailroomd within %d ms (%d sends): "
			 "the messages may or may not have been written; "
			 "publish them again with the same ids",
			 r->c->timeout_ms, r->sends);
		client__finish(r, MR_EINDOUBT, buf, m);
		return;
	}
	if (status == MR_ETIMEDOUT || status == MR_ECLOSED) {
		snprintf(buf, sizeof(buf),
			 "mailroomd could not be reached within %d ms; nothing "
			 "was sent",
			 r->c->timeout_ms);
		client__finish(r, MR_ECONNREFUSED, buf, m);
		return;
	}
	client__finish(r, status, why, m);
}

/* Send (again) a publish's frame, with the stream's base as it is now;
 * with c->lock held. @returns MR_OK, or the error to give it up with once
 * the lock is released (*why says why). */
int
client__pub_send_locked(struct client_req *r, const char **why)
{
	mr_client         *c = r->c;
	struct mri_pub_seq sq;
	nng_msg           *m;
	int                left = client__remaining_ms(r);
	unsigned           pipe = atomic_load(&c->pipe);

	// Nothing goes to a mailroomd that is draining: it would be refused,
	// and whatever of it is in flight when it stops is lost with it.
	if (pipe != 0 && pipe == atomic_load(&c->draining_pipe)) {
		if (left <= CLIENT__HOLD_MS) {
			*why = "mailroomd is draining and no other answered "
			       "in time";
			return MR_ESHUTDOWN;
		}
		r->last_err = MR_ESHUTDOWN;
		nng_sleep_aio(CLIENT__HOLD_MS, r->timer);
		return MR_OK;
	}
	sq.stream = c->stream;
	sq.seq    = r->seq;
	sq.base   = c->pub_head != NULL ? c->pub_head->seq : r->seq;
	mri_publish_seq_put(r->call.frame, &sq);
	if (nng_msg_alloc(&m, r->call.frame_len) != 0) {
		*why = "out of memory";
		return MR_ENOMEM;
	}
	memcpy(nng_msg_body(m), r->call.frame, r->call.frame_len);
	r->sends++;
	if (r->sends > 1)
		client__trace(c, "publish seq %u sent again (send %d, %d ms "
				 "left, pipe %u)",
			      r->seq, r->sends, left, pipe);
	r->sending = 1;
	nng_aio_set_timeout(r->aio, left > 0 ? left : 1);
	nng_aio_set_msg(r->aio, m);
	// nng runs the aio's callback on its own threads, never in here.
	nng_ctx_send(r->ctx, r->aio);
	return MR_OK;
}

void
client__pub_send(struct client_req *r)
{
	const char *why = NULL;
	int         rc;

	pthread_mutex_lock(&r->c->lock);
	rc = client__pub_send_locked(r, &why);
	pthread_mutex_unlock(&r->c->lock);
	if (rc != MR_OK)
		client__pub_give_up(r, rc, why, NULL);
}

static void
client__hdr(struct mri_hdr_view *h, const char *name, const void *v,
	    size_t len)
{
	h->name      = name;
	h->name_len  = (uint16_t)strlen(name);
	h->value     = v;
	h->value_len = (uint32_t)len;
}

static int
client__encode_msg(struct mri_wbuf *b, const mr_message *m)
{
	struct mri_hdr_view hs[MRI_HDR_COUNT_MAX];
	size_t              nh = 0, tl, il;
	char                idbuf[MRI_UUID_STRLEN + 1];
	const char         *id = m->id;

	if (m->topic == NULL || !mri_topic_valid(m->topic, strlen(m->topic)))
		return MR_EINVAL;
	if (m->header_count + CLIENT__STD_HDRS > MRI_HDR_COUNT_MAX ||
	    m->payload_len > UINT32_MAX || m->key_len > UINT32_MAX)
		return MR_ETOOBIG;
	if (id == NULL) {
		mri_uuid7_string(idbuf);
		id = idbuf;
	}
	il = strlen(id);
	if (il == 0 || il > MR_ID_MAX)
		return MR_EINVAL;
	if (m->type)
		client__hdr(&hs[nh++], MR_HEADER_TYPE, m->type, strlen(m->type));
	if (m->source)
		client__hdr(&hs[nh++], MR_HEADER_SOURCE, m->source,
			    strlen(m->source));
	if (m->content_type)
		client__hdr(&hs[nh++], MR_HEADER_CONTENT_TYPE, m->content_type,
			    strlen(m->content_type));
	if (m->reply_to)
		client__hdr(&hs[nh++], MR_HEADER_REPLY_TO, m->reply_to,
			    strlen(m->reply_to));
	if (m->correlation_id)
		client__hdr(&hs[nh++], MR_HEADER_CORRELATION_ID, m->correlation_id,
			    strlen(m->correlation_id));
	for (size_t i = 0; i < m->header_count; i++) {
		const mr_header *h = &m->headers[i];
		size_t           nl;

		if (h->name == NULL || (nl = strlen(h->name)) == 0 ||
		    nl > MRI_HDR_NAME_MAX || h->value_len > UINT32_MAX)
			return MR_EINVAL;
		client__hdr(&hs[nh++], h->name, h->value ? h->value : "",
			    h->value_len);
	}
	tl = strlen(m->topic);
	mri_publish_encode_msg(b, m->topic, tl, m->key ? m->key : "",
			       m->key_len, m->key != NULL, id, il,
			       (uint16_t)nh, hs,
			       m->payload ? m->payload : "", m->payload_len);
	return b->err;
}

static void
client__acks_fail(mr_ack *acks, size_t n, int status, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		memset(&acks[i], 0, sizeof(acks[i]));
		acks[i].status    = status;
		acks[i].partition = -1;
		acks[i].offset    = -1;
		snprintf(acks[i].error, sizeof(acks[i].error), "%s",
			 why ? why : mr_strerror(status));
	}
}

/* Fill the topic and id of failed acks from the request that failed, so
 * that a publisher can send those messages again under the same ids. */
static void
client__acks_name(mr_ack *acks, uint32_t n, const struct client_call *r)
{
	struct mri_pub_view *v;
	struct mri_frame_hdr h;
	const uint8_t       *body;
	size_t               len;
	uint32_t             count;
	const char          *why;
	int64_t              bad;

	if (r->frame == NULL ||
	    mri_frame_parse_hdr(r->frame, r->frame_len, &h, &why) != MR_OK)
		return;
	len  = h.body_len;
	body = mri_publish_messages(r->frame + MRI_FRAME_HDR_LEN, &len,
				    h.flags);
	if (body == NULL ||
	    mri_publish_decode(body, len, &v, &count, &why, &bad) != MR_OK)
		return;
	for (uint32_t i = 0; i < n && i < count; i++) {
		snprintf(acks[i].topic, sizeof(acks[i].topic), "%.*s",
			 (int)v[i].topic_len, v[i].topic);
		snprintf(acks[i].id, sizeof(acks[i].id), "%.*s",
			 (int)v[i].id_len, v[i].id);
	}
	free(v);
}

/* \p src of \p len into \p dst of \p cap, cut to fit and terminated: per
 * ack, where snprintf's "%.*s" was most of the client's cost per message. */
static void
client__copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int
client__acks_decode(nng_msg *m, uint32_t want, mr_ack *acks, const char **why)
{
	struct mri_ack_view *v;
	uint32_t             n;
	int                  rc;

	rc = mri_ack_decode((uint8_t *)nng_msg_body(m) + MRI_FRAME_HDR_LEN,
			    nng_msg_len(m) - MRI_FRAME_HDR_LEN, &v, &n, why);
	if (rc != MR_OK)
		return rc;
	if (n != want) {
		free(v);
		*why = "PUBLISH_ACK has a different number of acks";
		return MR_EPROTO;
	}
	for (uint32_t i = 0; i < n; i++) {
		mr_ack *a = &acks[i];

		a->status    = v[i].status;
		a->duplicate = (v[i].flags & MRI_ACK_F_DUPLICATE) != 0;
		a->partition = v[i].partition;
		a->offset    = v[i].offset;
		client__copy(a->topic, sizeof(a->topic), v[i].topic,
			     v[i].topic_len);
		client__copy(a->id, sizeof(a->id), v[i].id, v[i].id_len);
		client__copy(a->error, sizeof(a->error), v[i].errmsg,
			     v[i].errmsg_len);
		a->held_ms        = (int)(v[i].held_ms > INT32_MAX
						? INT32_MAX
						: v[i].held_ms);
		a->retry_after_ms = (int)(v[i].retry_after_ms > INT32_MAX
						? INT32_MAX
						: v[i].retry_after_ms);
		a->lag            = v[i].bp_lag;
		a->bound          = v[i].bp_bound;
		a->time_bound     = v[i].bp_kind == 2;
	}
	free(v);
	return MR_OK;
}

/* The acks of \p acks to the calls of \p r: one, or each of a coalesced
 * frame's with its own messages' (\p n of them in all, 0 when there is
 * nothing to report them in). */
static void
client__publish_report(const struct client_call *r, int status,
		       const mr_ack *acks, uint32_t n)
{
	uint32_t off = 0;

	if (r->parts == NULL) {
		r->cb(r->arg, status, acks, n);
		return;
	}
	for (uint32_t i = 0; i < r->nparts; i++) {
		const struct client_part *p = &r->parts[i];

		p->cb(p->arg, status, n > 0 ? acks + off : acks,
		      n > 0 ? p->n : 0);
		off += p->n;
	}
}

/* Room for \p n acks: the client's kept buffer if it is free and large
 * enough, else a new one. */
static struct client_acks *
client__acks_take(mr_client *c, uint32_t n)
{
	struct client_acks *b = atomic_exchange(&c->acks_cache, NULL);

	if (b != NULL && b->cap >= n)
		return b;
	free(b);
	if ((b = malloc(sizeof(*b) + (size_t)n * sizeof(mr_ack))) != NULL)
		b->cap = n;
	return b;
}

/* Keep \p b for the next completion, unless another one was kept or it
 * is larger than a coalesced frame's (a rare large call's is not held on
 * to). */
static void
client__acks_keep(mr_client *c, struct client_acks *b)
{
	struct client_acks *none = NULL;

	if (b->cap > CLIENT__ACKS_KEEP ||
	    !atomic_compare_exchange_strong(&c->acks_cache, &none, b))
		free(b);
}

void
client__publish_done(const struct client_call *r, int status, const char *why,
		     nng_msg *m)
{
	mr_ack              stack[16];
	struct client_acks *kept = NULL;
	mr_ack             *acks = stack;

	if (r->n > 16 && (kept = client__acks_take(r->c, r->n)) != NULL)
		acks = kept->a;
	if (r->n > 16 && kept == NULL) {
		// Nothing to report the acks in: report the request failed.
		mr_ack one;
		client__acks_fail(&one, 1, MR_ENOMEM, NULL);
		client__publish_report(r, MR_ENOMEM, &one, 0);
		return;
	}
	if (status == MR_OK)
		status = client__acks_decode(m, r->n, acks, &why);
	if (status != MR_OK) {
		client__acks_fail(acks, r->n, status, why);
		client__acks_name(acks, r->n, r);
	}
	client__publish_report(r, status, acks, r->n);
	if (kept != NULL)
		client__acks_keep(r->c, kept);
}

/* Lay \p r into the client's stream: its seq, and the list of publishes
 * awaiting their reply (the base). With c->lock held. */
void
client__pub_queue_locked(struct client_req *r)
{
	mr_client *c = r->c;

	r->seq      = c->seq_next++;
	r->queued   = true;
	r->pub_next = NULL;
	r->pub_prev = c->pub_tail;
	if (c->pub_tail)
		c->pub_tail->pub_next = r;
	else
		c->pub_head = r;
	c->pub_tail = r;
}

/* Encode \p msgs as one PUBLISH frame into \p b and hand it on: gathered
 * with other calls unless \p direct (client/coalesce.c). */
static int
client__publish(mr_client *c, const mr_message *msgs, size_t n, bool direct,
		mr_publish_cb cb, void *arg)
{
	struct mri_wbuf b;
	int             rc;

	if (c == NULL || msgs == NULL || n == 0 || n > MRI_BATCH_MAX ||
	    cb == NULL)
		return MR_EINVAL;
	mri_wbuf_init(&b);
	// Room for a message or two: most calls then allocate once.
	(void)mri_wbuf_reserve(&b, 512);
	mri_frame_begin(&b, MRI_OP_PUBLISH);
	mri_publish_seq_reserve(&b);
	mri_wbuf_u32(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		if ((rc = client__encode_msg(&b, &msgs[i])) != MR_OK) {
			mri_wbuf_fini(&b);
			return rc;
		}
	}
	if ((rc = mri_frame_end(&b)) != MR_OK || b.len > c->max_frame) {
		mri_wbuf_fini(&b);
		return rc != MR_OK ? rc : MR_ETOOBIG;
	}
	if ((rc = coalesce__submit(c, &b, (uint32_t)n, direct, cb, arg)) !=
	    MR_OK)
		mri_wbuf_fini(&b);
	return rc;
}

int
mr_publish_async(mr_client *c, const mr_message *msgs, size_t n,
		 mr_publish_cb cb, void *arg)
{
	return client__publish(c, msgs, n, false, cb, arg);
}

static void
client__sync_publish_cb(void *arg, int status, const mr_ack *acks, size_t n)
{
	struct client__wait *w = arg;

	memcpy(w->acks, acks, n * sizeof(*acks));
	w->status = status;
	for (size_t i = 0; i < n && w->status == MR_OK; i++)
		if (acks[i].status != MR_OK)
			w->status = acks[i].status;
	if (n > 0 && status != MR_OK)
		snprintf(w->why, sizeof(w->why), "%s", acks[0].error);
	client__wait_signal(w);
}

/* One request of mr_publish_batch, and its wait. */
static int
client__publish_wait(mr_client *c, const mr_message *msgs, size_t n,
		     mr_ack *acks)
{
	struct client__wait w;
	int                 rc;

	client__set_last_error(NULL);
	client__wait_init(&w);
	w.acks = acks;
	// Sent on its own at once, after what this client has pending.
	if ((rc = client__publish(c, msgs, n, true, client__sync_publish_cb,
				  &w)) != MR_OK) {
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cv);
		if (acks != NULL)
			client__acks_fail(acks, n, rc, NULL);
		return rc;
	}
	return client__wait_end(&w);
}

/* The messages of \p msgs refused with MR_EBUSY in \p acks, into \p out
 * (their ids the acks', so that a resend is deduplicated) and their
 * indexes into \p idx. @returns how many, and the largest retry-after. */
static size_t
client__busy(const mr_message *msgs, const mr_ack *acks, size_t n,
	     mr_message *out, size_t *idx, int *retry_after)
{
	size_t k = 0;

	*retry_after = 0;
	for (size_t i = 0; i < n; i++) {
		if (acks[i].status != MR_EBUSY)
			continue;
		out[k]    = msgs[i];
		out[k].id = acks[i].id[0] != '\0' ? acks[i].id : msgs[i].id;
		idx[k++]  = i;
		if (acks[i].retry_after_ms > *retry_after)
			*retry_after = acks[i].retry_after_ms;
	}
	return k;
}

int
mr_publish_batch(mr_client *c, const mr_message *msgs, size_t n, mr_ack *acks)
{
	nng_time    deadline;
	mr_message *again = NULL;
	mr_ack     *more  = NULL;
	size_t     *idx   = NULL, k;
	int         rc, wait;

	rc = client__publish_wait(c, msgs, n, acks);
	if (rc != MR_EBUSY || c->busy_retry_ms == 0 || acks == NULL)
		return rc;
	deadline = nng_clock() + (nng_time)c->busy_retry_ms;
	again    = malloc(n * sizeof(*again));
	more     = malloc(n * sizeof(*more));
	idx      = malloc(n * sizeof(*idx));
	while (again != NULL && more != NULL && idx != NULL &&
	       (k = client__busy(msgs, acks, n, again, idx, &wait)) > 0) {
		nng_time now = nng_clock();

		if (wait < 1)
			wait = 1;
		if (now + (nng_time)wait >= deadline)
			break;
		client__trace(c, "%zu messages refused by backpressure: sent "
			      "again in %d ms",
			      k, wait);
		nng_msleep((nng_duration)wait);
		(void)client__publish_wait(c, again, k, more);
		for (size_t j = 0; j < k; j++) {
			int held = acks[idx[j]].held_ms;

			acks[idx[j]] = more[j];
			acks[idx[j]].held_ms += held;
		}
	}
	free(again);
	free(more);
	free(idx);
	client__set_last_error(NULL);
	for (size_t i = 0; i < n; i++)
		if (acks[i].status != MR_OK) {
			client__set_last_error(acks[i].error);
			return acks[i].status;
		}
	return MR_OK;
}

int
mr_publish(mr_client *c, const mr_message *msg, mr_ack *ack)
{
	return mr_publish_batch(c, msg, 1, ack);
}
