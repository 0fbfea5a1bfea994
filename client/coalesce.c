/*
 * Coalescing (include/mailroom/client.h, "Coalescing"): mr_publish_async
 * calls of a few messages each are gathered into one PUBLISH frame, since
 * a frame costs the client and mailroomd far more than a message in it.
 *
 * The pending frame is laid out as it will be sent (header, sequence,
 * count, messages), so a flush only patches its count and length. A flush
 * takes a request and lays it into the stream (seq, pub list) in the same
 * hold of the client's lock as it detaches the pending frame; a call sent
 * on its own (a synchronous publish, a large call) flushes what is pending
 * first in that same way. So the stream's order is the order in which the
 * calls reached the lock, and a caller's calls stay in its order.
 *
 * What flushes: the linger passing since the first pending call (the
 * linger thread, or a call that finds it passed), the caps (the call that
 * reaches one), a request freed while the pending frame waited for one
 * (coalesce__kick), a call sent on its own, mr_client_drain and
 * mr_client_free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "client/client_internal.h"
#include "core/clock.h"
#include "proto/consume.h"
#include "proto/frame.h"

#define COALESCE__LINGER_US 200
#define COALESCE__MSGS 1000
#define COALESCE__BYTES (1 << 20)
// The bytes of a PUBLISH frame before its first message.
#define COALESCE__PREFIX (MRI_FRAME_HDR_LEN + MRI_PUB_SEQ_LEN + 4)

/* A new, empty pending frame. */
static void
coalesce__begin(mr_client *c)
{
	mri_wbuf_init(&c->pend);
	mri_frame_begin(&c->pend, MRI_OP_PUBLISH);
	mri_publish_seq_reserve(&c->pend);
	mri_wbuf_u32(&c->pend, 0);
	c->pend_n      = 0;
	c->pend_nparts = 0;
	c->pend_due    = false;
}

int
coalesce__init(mr_client *c, const mr_client_opts *opts)
{
	int linger = opts ? opts->linger_us : 0;
	int msgs   = opts ? opts->linger_msgs : 0;

	c->linger_us = linger < 0 ? -1 : linger == 0 ? COALESCE__LINGER_US
						      : linger;
	c->cap_msgs  = msgs > 0 ? (uint32_t)msgs : COALESCE__MSGS;
	if (c->cap_msgs > MRI_BATCH_MAX)
		c->cap_msgs = MRI_BATCH_MAX;
	c->cap_bytes = COALESCE__BYTES;
	if (c->max_frame <= COALESCE__PREFIX)
		c->cap_bytes = 0; // every call a frame of its own
	else if (c->cap_bytes > c->max_frame - COALESCE__PREFIX)
		c->cap_bytes = c->max_frame - COALESCE__PREFIX;
	if (mri_cond_init(&c->linger_cv) != 0)
		return MR_ENOMEM;
	coalesce__begin(c);
	if (c->pend.err != MR_OK) {
		mri_wbuf_fini(&c->pend);
		pthread_cond_destroy(&c->linger_cv);
		return MR_ENOMEM;
	}
	return MR_OK;
}

/* Detach the pending frame into \p r, laid into the stream: with c->lock
 * held. */
static void
coalesce__detach_locked(mr_client *c, struct client_req *r)
{
	mri_wbuf_patch_u32(&c->pend, MRI_FRAME_HDR_LEN + MRI_PUB_SEQ_LEN,
			   c->pend_n);
	(void)mri_frame_end(&c->pend); // within the cap: cannot fail
	r->op       = MRI_OP_PUBLISH;
	r->call     = (struct client_call){.done      = client__publish_done,
					   .n         = c->pend_n,
					   .frame     = c->pend.data,
					   .frame_len = c->pend.len,
					   .parts     = c->pend_parts,
					   .nparts    = c->pend_nparts};
	r->deadline = nng_clock() + (nng_time)c->timeout_ms;
	client__pub_queue_locked(r);
	atomic_fetch_add(&c->frames, 1);
	if (c->pend_nparts > 1)
		atomic_fetch_add(&c->coalesced, c->pend_nparts);
	c->pend_parts = NULL;
	c->pend_cap   = 0;
	coalesce__begin(c);
}

/* Send \p r's frame in the same hold of c->lock that gave it its seq (with
 * it held; released and taken again only if the send fails): so frames
 * reach nng in their stream's order. Sent after the lock was released, a
 * frame could overtake an earlier one whose thread was preempted, and
 * mailroomd would park it, or refuse it (MR_EORDER) and have it sent
 * again after a pause: tails of 100 ms and more at 2,000 calls/s. */
static void
coalesce__send_locked(mr_client *c, struct client_req *r)
{
	const char *why = NULL;
	int         rc  = client__pub_send_locked(r, &why);

	if (rc != MR_OK) {
		pthread_mutex_unlock(&c->lock);
		client__pub_give_up(r, rc, why, NULL);
		pthread_mutex_lock(&c->lock);
	}
}

/* Send what is pending if a request is free (with c->lock held); otherwise
 * it is due, and goes when a request comes back. @returns MR_ENOMEM, else
 * MR_OK. */
static int
coalesce__try_flush_locked(mr_client *c)
{
	struct client_req *r;
	int                rc;

	if (c->pend_n == 0)
		return MR_OK;
	if ((r = client__take_locked(c, &rc)) == NULL) {
		c->pend_due = true;
		return rc;
	}
	coalesce__detach_locked(c, r);
	coalesce__send_locked(c, r);
	return MR_OK;
}

/* The linger thread: flushes a pending frame once its first call is
 * linger_us old. A thread, not an nng timer: nng sleeps in milliseconds. */
static void *
coalesce__linger_main(void *arg)
{
	mr_client *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->linger_stop) {
		uint64_t        due, now;
		struct timespec ts;

		// A due frame waits for a request: coalesce__kick sends it.
		if (c->pend_n == 0 || c->pend_due) {
			pthread_cond_wait(&c->linger_cv, &c->lock);
			continue;
		}
		due = c->pend_since + (uint64_t)c->linger_us;
		now = mri_mono_us();
		if (now < due) {
			ts.tv_sec  = (time_t)(due / 1000000);
			ts.tv_nsec = (long)(due % 1000000) * 1000;
			(void)pthread_cond_timedwait(&c->linger_cv, &c->lock,
						     &ts);
			continue;
		}
		(void)coalesce__try_flush_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Send \p b on its own, after whatever is pending; with c->lock held,
 * released on return. */
static int
coalesce__direct_locked(mr_client *c, struct mri_wbuf *b, uint32_t n,
			mr_publish_cb cb, void *arg)
{
	struct client_req *r;
	int                rc;

	for (;;) {
		if ((r = client__take_locked(c, &rc)) == NULL) {
			if (rc != MR_OK) {
				pthread_mutex_unlock(&c->lock);
				return rc;
			}
			// Whoever gets the next request sends the pending
			// frame first: it is due.
			if (c->pend_n > 0)
				c->pend_due = true;
			pthread_cond_wait(&c->cv, &c->lock);
			continue;
		}
		if (c->pend_n == 0)
			break;
		coalesce__detach_locked(c, r);
		coalesce__send_locked(c, r);
	}
	// The request owns b's bytes from here (client__finish frees them).
	r->op       = MRI_OP_PUBLISH;
	r->call     = (struct client_call){.done      = client__publish_done,
					   .cb        = cb,
					   .arg       = arg,
					   .n         = n,
					   .frame     = b->data,
					   .frame_len = b->len};
	r->deadline = nng_clock() + (nng_time)c->timeout_ms;
	client__pub_queue_locked(r);
	atomic_fetch_add(&c->frames, 1);
	coalesce__send_locked(c, r);
	pthread_mutex_unlock(&c->lock);
	return MR_OK;
}

/* Add \p b's messages to the pending frame; with c->lock held. */
static int
coalesce__append_locked(mr_client *c, struct mri_wbuf *b, uint32_t n,
			mr_publish_cb cb, void *arg)
{
	size_t body = b->len - COALESCE__PREFIX;
	int    rc;

	if (c->pend_nparts == c->pend_cap) {
		uint32_t            cap = c->pend_cap ? c->pend_cap * 2 : 16;
		struct client_part *p;

		p = realloc(c->pend_parts, cap * sizeof(*p));
		if (p == NULL)
			return MR_ENOMEM;
		c->pend_parts = p;
		c->pend_cap   = cap;
	}
	if ((rc = mri_wbuf_reserve(&c->pend, body)) != MR_OK) {
		// The pending frame is as it was: only its error is new.
		c->pend.err = MR_OK;
		return rc;
	}
	mri_wbuf_put(&c->pend, b->data + COALESCE__PREFIX, body);
	c->pend_parts[c->pend_nparts++] = (struct client_part){cb, arg, n};
	c->pend_n += n;
	if (c->pend_n == n) {
		c->pend_since = mri_mono_us();
		if (!c->linger_run &&
		    pthread_create(&c->linger, NULL, coalesce__linger_main,
				   c) == 0)
			c->linger_run = true;
		if (!c->linger_run)
			c->pend_due = true; // no thread: the next request
		pthread_cond_signal(&c->linger_cv);
	}
	return MR_OK;
}

int
coalesce__submit(mr_client *c, struct mri_wbuf *b, uint32_t n, bool direct,
		 mr_publish_cb cb, void *arg)
{
	size_t body = b->len - COALESCE__PREFIX;
	int    rc   = MR_OK;

	// A large call is a frame of its own: it is never split.
	if (c->linger_us < 0 || n >= c->cap_msgs || body >= c->cap_bytes)
		direct = true;
	pthread_mutex_lock(&c->lock);
	// With no publish awaiting its reply there is nothing to gather
	// behind: sent at once, as the first byte of Nagle's algorithm.
	if (!direct && c->pend_n == 0 && c->pub_head == NULL)
		direct = true;
	if (direct)
		return coalesce__direct_locked(c, b, n, cb, arg);
	// What does not fit goes first; while no request is free for it,
	// the caller waits (mr_publish_async's backpressure).
	while (c->pend_n > 0 && rc == MR_OK &&
	       (c->pend_n + n > c->cap_msgs ||
		c->pend.len - COALESCE__PREFIX + body > c->cap_bytes)) {
		rc = coalesce__try_flush_locked(c);
		if (rc == MR_OK && c->pend_due)
			pthread_cond_wait(&c->cv, &c->lock);
	}
	if (rc == MR_OK)
		rc = coalesce__append_locked(c, b, n, cb, arg);
	// Full, or its linger has passed: the caller sends it rather than
	// wait for the linger thread to be scheduled (on a busy machine,
	// milliseconds later).
	if (rc == MR_OK && !c->pend_due &&
	    (c->pend_n >= c->cap_msgs ||
	     c->pend.len - COALESCE__PREFIX >= c->cap_bytes ||
	     mri_mono_us() - c->pend_since >= (uint64_t)c->linger_us))
		rc = coalesce__try_flush_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (rc == MR_OK)
		mri_wbuf_fini(b); // copied into the pending frame
	return rc;
}

void
coalesce__kick(mr_client *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->pend_n > 0 &&
	    (c->pend_due ||
	     mri_mono_us() - c->pend_since >= (uint64_t)c->linger_us))
		(void)coalesce__try_flush_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void
coalesce__flush(mr_client *c)
{
	pthread_mutex_lock(&c->lock);
	(void)coalesce__try_flush_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void
coalesce__fini(mr_client *c)
{
	struct client_call call;
	bool               run;

	pthread_mutex_lock(&c->lock);
	c->linger_stop = true;
	run            = c->linger_run;
	c->linger_run  = false;
	pthread_cond_broadcast(&c->linger_cv);
	pthread_mutex_unlock(&c->lock);
	if (run)
		pthread_join(c->linger, NULL);
	// Calls still pending (mr_client_free's drain timed out while every
	// request was out): nothing of them was sent.
	if (c->pend_n > 0) {
		mri_wbuf_patch_u32(&c->pend,
				   MRI_FRAME_HDR_LEN + MRI_PUB_SEQ_LEN,
				   c->pend_n);
		(void)mri_frame_end(&c->pend);
		call = (struct client_call){.done      = client__publish_done,
					    .n         = c->pend_n,
					    .frame     = c->pend.data,
					    .frame_len = c->pend.len,
					    .parts     = c->pend_parts,
					    .nparts    = c->pend_nparts,
					    .c         = c};
		client__publish_done(&call, MR_ECLOSED,
				     "the client was closed before this "
				     "publish was sent",
				     NULL);
	}
	mri_wbuf_fini(&c->pend);
	free(c->pend_parts);
	c->pend_parts = NULL;
	c->pend_n     = 0;
	pthread_cond_destroy(&c->linger_cv);
}

uint64_t
client__publish_frames(mr_client *c)
{
	return atomic_load(&c->frames);
}

uint64_t
client__publish_coalesced(mr_client *c)
{
	return atomic_load(&c->coalesced);
}
