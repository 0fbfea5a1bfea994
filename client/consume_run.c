/*
 * mr_consume_run: the handler helper of the consumer API, on top of
 * mr_fetch, the settle calls and mr_consumer_resubscribe.
 */
#include "mailroom/consumer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "core/clock.h"
#include "proto/consume.h"

#define CONSUMER__RUN_WAIT_MS 200 /* a run's long poll: how often it looks
				     at *stop while idle */
#define CONSUMER__RUN_INFLIGHT 1024
#define CONSUMER__WORKERS_MAX 1024
#define CONSUMER__SETTLERS 4 /* settles in flight at once, at most */
#define CONSUMER__SETTLE_WAIT_MS 1 /* a settler waits this long at most for
				      more results while handlers run */

/* ---- the handler helper ----------------------------------------------------
 * The caller's thread fetches, workers run the handler, and settlers
 * (CONSUMER__SETTLERS) ack and nack (or reject) whatever results are there
 * whenever one of them is free, so that acks go out as ranges without
 * waiting for a batch to fill. Since the next SETTLE does not wait for
 * this one's reply, acks carry MRI_SETTLE_F_LINGER: mailroomd may hold the
 * reply a few ms for other acks to share the journal's write.
 * At most `cap` deliveries are fetched and not yet handed to a settler.
 *
 * A lost session: the fetcher subscribes again and makes the new session
 * run.session; from then on, deliveries of another session are dropped
 * before the handler and their results after it, and the results waiting
 * are dropped at the switch, so that the settlers only ever hold results of
 * run.session, and settle them on that session. The fetcher fetches on
 * the new session once the handlers of the old one have returned.
 *
 * mr_consume_run_async has no workers: the fetcher hands each delivery to
 * the handler at once, and mr_pending_done does what a worker does after
 * its handler returned. A pending delivery counts as a running handler. */

struct run__item {
	const mr_delivery *d;
	struct run__batch *rb;
};

/* A delivery handed to an asynchronous handler. */
struct mr_pending {
	struct run      *r;
	struct run__item it;
};

struct run__batch {
	mr_batch  *b;
	uint64_t   session; /* that fetched it */
	size_t     left;    /* deliveries not handled yet */
	mr_pending pend[];  /* mr_consume_run_async's: one per delivery */
};

struct run__result {
	uint64_t handle;
	int      rc;
};

struct run {
	mr_consumer        *s;
	mr_handler          h;
	mr_async_handler    ah; /* mr_consume_run_async's, instead of h */
	void               *arg;
	size_t              cap;
	pthread_mutex_t     lock;
	pthread_cond_t      work_cv;   /* workers: items, or closing */
	pthread_cond_t      settle_cv; /* settlers: results, or done */
	pthread_cond_t      room_cv;   /* fetcher: outstanding < cap */
	struct run__item   *q;         /* a ring of cap items */
	size_t              qhead, qlen;
	uint64_t           *acks; /* cap each: results waiting */
	struct run__result *nacks;
	size_t              nack_n, ack_n; /* results of `session` only */
	size_t              outstanding; /* fetched, not settled */
	size_t              counted;  /* fetched, not dropped: max_messages */
	size_t              running;  /* handlers running */
	uint64_t            session;  /* the fetcher's; 0 while it has none */
	bool                closing;  /* no more items will come */
	bool                workers_done;
	bool                reconnect; /* subscribe again if it is lost */
	int                 err;
	char                why[256]; /* err's sentence */
};

/* Keep the first error, with this thread's sentence for it. */
static void
run__fail(struct run *r, int rc)
{
	if (r->err != MR_OK)
		return;
	r->err = rc;
	snprintf(r->why, sizeof(r->why), "%s", mr_client_last_error());
}

/* Drop one delivery fetched and not settled. */
static void
run__drop(struct run *r, bool counted)
{
	r->outstanding--;
	r->counted -= counted;
	pthread_cond_broadcast(&r->room_cv);
}

/* Whether a settler should wait for more results before it settles,
 * with the lock held: few are waiting (under an eighth of the credit) and
 * handlers still run or wait for a worker. A zero-cost handler's results
 * come one by one as the fetcher hands a batch out, and a settler woken by
 * each settled a handful: a SETTLE, and a journal write, per handful. */
static bool
run__few(const struct run *r)
{
	return r->ack_n + r->nack_n < (r->cap + 7) / 8 &&
	       (r->running > 0 || r->qlen > 0) && r->err == MR_OK;
}

/* A handler's result for \p it, under the lock.
 * @returns its batch when that was its last delivery (free it without the
 *          lock), else NULL. */
static mr_batch *
run__result(struct run *r, struct run__item it, int rc)
{
	mr_batch *done = NULL;

	if (--r->running == 0)
		pthread_cond_broadcast(&r->room_cv);
	if (it.rb->session != r->session)
		run__drop(r, false); // lost while handled
	else if (rc == MR_OK)
		r->acks[r->ack_n++] = it.d->handle;
	else
		r->nacks[r->nack_n++] = (struct run__result){it.d->handle, rc};
	// The first starts a settler's wait; then only enough, or the last
	// of those running, is worth waking one for.
	if (r->ack_n + r->nack_n == 1 || !run__few(r))
		pthread_cond_signal(&r->settle_cv);
	if (--it.rb->left == 0) {
		done = it.rb->b;
		free(it.rb);
	}
	return done;
}

static void *
run__worker(void *arg)
{
	struct run *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct run__item it;
		int              rc;
		mr_batch        *done = NULL;

		while (r->qlen == 0 && !r->closing)
			pthread_cond_wait(&r->work_cv, &r->lock);
		if (r->qlen == 0)
			break;
		it       = r->q[r->qhead];
		r->qhead = (r->qhead + 1) % r->cap;
		r->qlen--;
		if (r->err != MR_OK || it.rb->session != r->session) {
			// The session is gone: it comes again to the group.
			run__drop(r, true);
			if (--it.rb->left == 0) {
				done = it.rb->b;
				free(it.rb);
			}
		} else {
			r->running++;
			pthread_mutex_unlock(&r->lock);
			rc = r->h(r->arg, it.d);
			pthread_mutex_lock(&r->lock);
			done = run__result(r, it, rc);
		}
		if (done != NULL) {
			pthread_mutex_unlock(&r->lock);
			mr_batch_free(done);
			pthread_mutex_lock(&r->lock);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

void
mr_pending_done(mr_pending *p, int rc)
{
	struct run *r = p->r;
	mr_batch   *done;

	pthread_mutex_lock(&r->lock);
	done = run__result(r, p->it, rc);
	pthread_mutex_unlock(&r->lock);
	mr_batch_free(done);
}

const mr_delivery *
mr_pending_delivery(const mr_pending *p)
{
	return p->it.d;
}

static int
run__cmp_result(const void *a, const void *b)
{
	const struct run__result *x = a, *y = b;

	if (x->rc != y->rc)
		return x->rc < y->rc ? -1 : 1;
	return (x->handle > y->handle) - (x->handle < y->handle);
}

/* Nack \p n results of \p session, one request per return code; those of
 * MR_EREJECT are rejected. */
static int
run__nack(struct run *r, uint64_t session, struct run__result *res,
	  size_t n, uint64_t *tmp)
{
	int rc = MR_OK;

	qsort(res, n, sizeof(*res), run__cmp_result);
	for (size_t i = 0, j; i < n && rc == MR_OK; i = j) {
		char why[96];

		for (j = i; j < n && res[j].rc == res[i].rc; j++)
			tmp[j - i] = res[j].handle;
		snprintf(why, sizeof(why), "handler returned %d (%s)",
			 res[i].rc, mr_err_name(res[i].rc));
		rc = consumer__settle_on(r->s, session,
					 res[i].rc == MR_EREJECT
					     ? MRI_SETTLE_REJECT
					     : MRI_SETTLE_NACK,
					 tmp, j - i, why, NULL);
	}
	return rc;
}

static void *
run__settler(void *arg)
{
	struct run         *r     = arg;
	uint64_t           *acks  = malloc(r->cap * sizeof(*acks));
	struct run__result *nacks = malloc(r->cap * sizeof(*nacks));
	uint64_t           *tmp   = malloc(r->cap * sizeof(*tmp));
	size_t              na, nn;
	uint64_t            session;
	int                 rc;

	pthread_mutex_lock(&r->lock);
	if (acks == NULL || nacks == NULL || tmp == NULL) {
		client__set_last_error("out of memory");
		run__fail(r, MR_ENOMEM);
		pthread_cond_broadcast(&r->room_cv);
	}
	for (;;) {
		while (r->ack_n == 0 && r->nack_n == 0 && !r->workers_done)
			pthread_cond_wait(&r->settle_cv, &r->lock);
		if (r->ack_n == 0 && r->nack_n == 0)
			break;
		if (run__few(r) && !r->workers_done) {
			uint64_t dl = mri_deadline_in(CONSUMER__SETTLE_WAIT_MS);

			while (run__few(r) && !r->workers_done &&
			       r->ack_n + r->nack_n > 0 &&
			       mri_cond_wait_until(&r->settle_cv, &r->lock,
						   dl) == 0)
				;
			if (r->ack_n == 0 && r->nack_n == 0)
				continue; // another settler took them
		}
		na = r->ack_n;
		nn = r->nack_n;
		if (acks != NULL && nacks != NULL && tmp != NULL) {
			memcpy(acks, r->acks, na * sizeof(*acks));
			memcpy(nacks, r->nacks, nn * sizeof(*nacks));
		} else {
			na = nn = 0; // out of memory: the deadline settles
		}
		r->outstanding -= r->ack_n + r->nack_n;
		r->ack_n = r->nack_n = 0;
		session          = r->session;
		// Room for the fetcher now, not once the answer comes.
		pthread_cond_broadcast(&r->room_cv);
		pthread_mutex_unlock(&r->lock);

		rc = na > 0 ? consumer__settle_on(r->s, session,
						  MRI_SETTLE_ACK |
						      MRI_SETTLE_F_LINGER,
						  acks, na, NULL, NULL)
			    : MR_OK;
		if (nn > 0 && rc == MR_OK)
			rc = run__nack(r, session, nacks, nn, tmp);

		pthread_mutex_lock(&r->lock);
		// A lost session is the fetcher's to find and open again; what
		// it held comes again to the group.
		if (rc != MR_OK && !(r->reconnect && mr_consumer_lost(rc)))
			run__fail(r, rc);
		pthread_cond_broadcast(&r->room_cv);
	}
	pthread_mutex_unlock(&r->lock);
	free(acks);
	free(nacks);
	free(tmp);
	return NULL;
}

/* Subscribe again after \p lost (an error of mr_consumer_lost), make the
 * new session the run's and wait for the handlers of the old one.
 * @returns MR_OK, or the error that ends the run (none if stopped). */
static int
run__resubscribe(struct run *r, int lost, const volatile int *stop)
{
	int rc;

	if (!r->reconnect)
		return lost;
	// No session meanwhile: what the old one handed out is dropped, not
	// handled, and the results waiting are not settled.
	pthread_mutex_lock(&r->lock);
	r->session = 0;
	r->outstanding -= r->ack_n + r->nack_n;
	r->ack_n = r->nack_n = 0;
	pthread_cond_broadcast(&r->room_cv);
	pthread_mutex_unlock(&r->lock);
	if ((rc = mr_consumer_resubscribe(r->s, stop)) != MR_OK)
		return client__stopped(stop) ? MR_OK : rc;
	pthread_mutex_lock(&r->lock);
	r->session = mr_consumer_session(r->s);
	while ((r->qlen > 0 || r->running > 0) && r->err == MR_OK)
		pthread_cond_wait(&r->room_cv, &r->lock);
	rc = r->err;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* Whether the fetcher should fetch now, with the lock held: when a
 * quarter of the credit is free, or when there is room and the handlers
 * would otherwise run out of work (the workers' queue is empty; with an
 * asynchronous handler, nothing is outstanding). In key mode a FETCH
 * gets only the keys acked since the last one: fetching whenever a few
 * slots are free cost a FETCH per handful of messages (mr_consume_run_async,
 * zero-cost handler: 216 k msgs/s, the client at 1 us a message). */
static bool
run__may_fetch(const struct run *r)
{
	size_t room = r->outstanding < r->cap ? r->cap - r->outstanding : 0;

	if (room == 0)
		return false;
	if (room >= (r->cap + 3) / 4)
		return true;
	return r->ah != NULL ? r->outstanding == 0 : r->qlen == 0;
}

/* Fetch until stopped, the limit reached, or an error. */
static void
run__fetch(struct run *r, const volatile int *stop, size_t max_messages)
{
	for (;;) {
		struct run__batch *rb = NULL;
		mr_batch          *b  = NULL;
		size_t             room, n = 0;
		int                rc;

		pthread_mutex_lock(&r->lock);
		while (r->err == MR_OK && !run__may_fetch(r))
			pthread_cond_wait(&r->room_cv, &r->lock);
		// Enough fetched: done once they are handled, unless a lost
		// session drops some of them first.
		while (max_messages > 0 && r->counted >= max_messages &&
		       r->outstanding > 0 && r->err == MR_OK)
			pthread_cond_wait(&r->room_cv, &r->lock);
		room = r->cap - r->outstanding;
		rc   = r->err;
		if (max_messages > 0 && r->counted >= max_messages)
			room = 0;
		else if (max_messages > 0 && room > max_messages - r->counted)
			room = max_messages - r->counted;
		pthread_mutex_unlock(&r->lock);
		if (rc != MR_OK || client__stopped(stop) || room == 0)
			return;
		rc = mr_fetch(r->s, room, 0, CONSUMER__RUN_WAIT_MS, &b);
		if (rc != MR_OK && mr_consumer_lost(rc)) {
			if ((rc = run__resubscribe(r, rc, stop)) == MR_OK)
				continue;
		} else if (rc == MR_OK && (n = mr_batch_count(b)) == 0) {
			mr_batch_free(b);
			continue;
		} else if (rc == MR_OK &&
			   (rb = malloc(sizeof(*rb) +
					(r->ah != NULL ? n : 0) *
					    sizeof(rb->pend[0]))) == NULL) {
			// The deliveries expire and come again.
			mr_batch_free(b);
			client__set_last_error("out of memory");
			rc = MR_ENOMEM;
		}
		pthread_mutex_lock(&r->lock);
		if (rc != MR_OK) {
			run__fail(r, rc);
			pthread_mutex_unlock(&r->lock);
			return;
		}
		rb->b       = b;
		rb->session = consumer__batch_session(b);
		rb->left    = n;
		r->outstanding += n;
		r->counted += n;
		if (r->ah != NULL) {
			// Handed out at once, each counted as running until its
			// mr_pending_done (which may free rb: i < n first).
			r->running += n;
			pthread_mutex_unlock(&r->lock);
			for (size_t i = 0; i < n; i++) {
				rb->pend[i] = (mr_pending){
				    r, {mr_batch_at(b, i), rb}};
			}
			for (size_t i = 0; i < n; i++)
				r->ah(r->arg, rb->pend[i].it.d, &rb->pend[i]);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			r->q[(r->qhead + r->qlen++) % r->cap] =
			    (struct run__item){mr_batch_at(b, i), rb};
		pthread_cond_broadcast(&r->work_cv);
		pthread_mutex_unlock(&r->lock);
	}
}

/* The run, with \p workers threads for r->h, or none for r->ah. */
static int
run__main(struct run *rr, int workers, const volatile int *stop,
	  size_t max_messages)
{
	struct run r = *rr;
	pthread_t *threads, settlers[CONSUMER__SETTLERS];
	int        started = 0, nsettlers = 0, rc;

	r.session   = mr_consumer_session(r.s);
	r.reconnect = consumer__reconnects(r.s);
	r.cap       = consumer__credit(r.s) > 0 ? (size_t)consumer__credit(r.s)
						: CONSUMER__RUN_INFLIGHT;
	if (r.cap < (size_t)workers)
		r.cap = (size_t)workers;
	threads = calloc(workers > 0 ? (size_t)workers : 1, sizeof(*threads));
	r.q     = malloc(r.cap * sizeof(*r.q));
	r.acks  = malloc(r.cap * sizeof(*r.acks));
	r.nacks = malloc(r.cap * sizeof(*r.nacks));
	if (threads == NULL || r.q == NULL || r.acks == NULL ||
	    r.nacks == NULL) {
		client__set_last_error("out of memory");
		rc = MR_ENOMEM;
		goto out;
	}
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.work_cv, NULL);
	mri_cond_init(&r.settle_cv);
	pthread_cond_init(&r.room_cv, NULL);
	while (nsettlers < CONSUMER__SETTLERS &&
	       pthread_create(&settlers[nsettlers], NULL, run__settler,
			      &r) == 0)
		nsettlers++;
	if (nsettlers == 0) {
		client__set_last_error("cannot start a thread");
		rc = MR_ENOMEM;
		goto destroy;
	}
	while (started < workers &&
	       pthread_create(&threads[started], NULL, run__worker, &r) == 0)
		started++;
	if (started == workers) {
		run__fetch(&r, stop, max_messages);
	} else {
		pthread_mutex_lock(&r.lock);
		client__set_last_error("cannot start a thread");
		run__fail(&r, MR_ENOMEM);
		pthread_mutex_unlock(&r.lock);
	}

	pthread_mutex_lock(&r.lock);
	r.closing = true;
	pthread_cond_broadcast(&r.work_cv);
	pthread_mutex_unlock(&r.lock);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_lock(&r.lock);
	// An asynchronous handler's pending deliveries are its to finish.
	while (r.running > 0)
		pthread_cond_wait(&r.room_cv, &r.lock);
	r.workers_done = true;
	pthread_cond_broadcast(&r.settle_cv);
	pthread_mutex_unlock(&r.lock);
	for (int i = 0; i < nsettlers; i++)
		pthread_join(settlers[i], NULL);
	rc = r.err;
	// The sentence of the error that ended the run, on the caller's
	// thread, wherever it happened.
	client__set_last_error(rc != MR_OK ? r.why : "");
destroy:
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.work_cv);
	pthread_cond_destroy(&r.settle_cv);
	pthread_cond_destroy(&r.room_cv);
out:
	free(threads);
	free(r.q);
	free(r.acks);
	free(r.nacks);
	return rc;
}

int
mr_consume_run(mr_consumer *s, int workers, mr_handler h, void *arg,
	       const volatile int *stop, size_t max_messages)
{
	struct run r = {.s = s, .h = h, .arg = arg};

	if (s == NULL || h == NULL || workers < 1 ||
	    workers > CONSUMER__WORKERS_MAX)
		return MR_EINVAL;
	return run__main(&r, workers, stop, max_messages);
}

int
mr_consume_run_async(mr_consumer *s, mr_async_handler h, void *arg,
		     const volatile int *stop, size_t max_messages)
{
	struct run r = {.s = s, .ah = h, .arg = arg};

	if (s == NULL || h == NULL)
		return MR_EINVAL;
	return run__main(&r, 0, stop, max_messages);
}
