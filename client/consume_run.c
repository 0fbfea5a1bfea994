/*
 * mr_consume_run: the handler helper of the consumer API, on top of
 * mr_fetch and the settle calls.
 */
#include "mailroom/consumer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

#define CONSUMER__RUN_WAIT_MS 200 /* a run's long poll: how often it looks
				     at *stop while idle */
#define CONSUMER__RUN_INFLIGHT 1024
#define CONSUMER__WORKERS_MAX 1024

/* ---- the handler helper ----------------------------------------------------
 * The caller's thread fetches, workers run the handler, one settler acks
 * and nacks whatever results are there whenever its previous request is
 * done, so that acks go out as ranges without waiting for a batch to fill.
 * At most `cap` deliveries are fetched and not yet settled. */

struct run__batch {
	mr_batch *b;
	size_t    left; /* deliveries not handled yet */
};

struct run__item {
	const mr_delivery *d;
	struct run__batch *rb;
};

struct run__result {
	uint64_t handle;
	int      rc;
};

struct run {
	mr_consumer        *s;
	mr_handler          h;
	void               *arg;
	size_t              cap;
	pthread_mutex_t     lock;
	pthread_cond_t      work_cv;   /* workers: items, or closing */
	pthread_cond_t      settle_cv; /* settler: results, or done */
	pthread_cond_t      room_cv;   /* fetcher: outstanding < cap */
	struct run__item   *q;         /* a ring of cap items */
	size_t              qhead, qlen;
	uint64_t           *acks; /* cap each: results waiting */
	struct run__result *nacks;
	size_t              nack_n, ack_n;
	size_t              outstanding; /* fetched, not settled */
	bool                closing;     /* no more items will come */
	bool                workers_done;
	int                 err;
};

static void *
run__worker(void *arg)
{
	struct run *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct run__item it;
		int              rc  = MR_OK;
		mr_batch        *done = NULL;

		while (r->qlen == 0 && !r->closing)
			pthread_cond_wait(&r->work_cv, &r->lock);
		if (r->qlen == 0)
			break;
		it       = r->q[r->qhead];
		r->qhead = (r->qhead + 1) % r->cap;
		r->qlen--;
		if (r->err == MR_OK) {
			pthread_mutex_unlock(&r->lock);
			rc = r->h(r->arg, it.d);
			pthread_mutex_lock(&r->lock);
			if (rc == MR_OK)
				r->acks[r->ack_n++] = it.d->handle;
			else
				r->nacks[r->nack_n++] =
				    (struct run__result){it.d->handle, rc};
			pthread_cond_signal(&r->settle_cv);
		} else {
			r->outstanding--; // dropped: the session is gone
			pthread_cond_signal(&r->room_cv);
		}
		if (--it.rb->left == 0) {
			done = it.rb->b;
			free(it.rb);
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

static int
run__cmp_result(const void *a, const void *b)
{
	const struct run__result *x = a, *y = b;

	if (x->rc != y->rc)
		return x->rc < y->rc ? -1 : 1;
	return (x->handle > y->handle) - (x->handle < y->handle);
}

/* Nack \p n results, one request per return code. */
static int
run__nack(struct run *r, struct run__result *res, size_t n, uint64_t *tmp)
{
	int rc = MR_OK;

	qsort(res, n, sizeof(*res), run__cmp_result);
	for (size_t i = 0, j; i < n && rc == MR_OK; i = j) {
		char why[96];

		for (j = i; j < n && res[j].rc == res[i].rc; j++)
			tmp[j - i] = res[j].handle;
		snprintf(why, sizeof(why), "handler returned %d (%s)",
			 res[i].rc, mr_err_name(res[i].rc));
		rc = mr_consumer_nack(r->s, tmp, j - i, why, NULL);
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
	int                 rc;

	pthread_mutex_lock(&r->lock);
	if (acks == NULL || nacks == NULL || tmp == NULL) {
		r->err = MR_ENOMEM;
		pthread_cond_broadcast(&r->room_cv);
	}
	for (;;) {
		while (r->ack_n == 0 && r->nack_n == 0 && !r->workers_done)
			pthread_cond_wait(&r->settle_cv, &r->lock);
		if (r->ack_n == 0 && r->nack_n == 0)
			break;
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
		pthread_mutex_unlock(&r->lock);

		rc = na > 0 ? mr_consumer_ack(r->s, acks, na, NULL) : MR_OK;
		if (nn > 0 && rc == MR_OK)
			rc = run__nack(r, nacks, nn, tmp);

		pthread_mutex_lock(&r->lock);
		if (rc != MR_OK && r->err == MR_OK)
			r->err = rc;
		pthread_cond_broadcast(&r->room_cv);
	}
	pthread_mutex_unlock(&r->lock);
	free(acks);
	free(nacks);
	free(tmp);
	return NULL;
}

/* Fetch until stopped, the limit reached, or an error. */
static void
run__fetch(struct run *r, const volatile int *stop, size_t max_messages)
{
	size_t fetched = 0;

	for (;;) {
		struct run__batch *rb = NULL;
		mr_batch          *b  = NULL;
		size_t             room, n = 0;
		int                rc;

		pthread_mutex_lock(&r->lock);
		while (r->outstanding >= r->cap && r->err == MR_OK)
			pthread_cond_wait(&r->room_cv, &r->lock);
		room = r->cap - r->outstanding;
		rc   = r->err;
		pthread_mutex_unlock(&r->lock);
		if (rc != MR_OK || (stop != NULL && *stop) ||
		    (max_messages > 0 && fetched >= max_messages))
			return;
		if (max_messages > 0 && room > max_messages - fetched)
			room = max_messages - fetched;
		rc = mr_fetch(r->s, room, 0, CONSUMER__RUN_WAIT_MS, &b);
		if (rc == MR_OK && (n = mr_batch_count(b)) == 0) {
			mr_batch_free(b);
			continue;
		}
		if (rc == MR_OK && (rb = malloc(sizeof(*rb))) == NULL) {
			// The deliveries expire and come again.
			mr_batch_free(b);
			rc = MR_ENOMEM;
		}
		pthread_mutex_lock(&r->lock);
		if (rc != MR_OK) {
			if (r->err == MR_OK)
				r->err = rc;
			pthread_mutex_unlock(&r->lock);
			return;
		}
		rb->b    = b;
		rb->left = n;
		for (size_t i = 0; i < n; i++)
			r->q[(r->qhead + r->qlen++) % r->cap] =
			    (struct run__item){mr_batch_at(b, i), rb};
		r->outstanding += n;
		fetched += n;
		pthread_cond_broadcast(&r->work_cv);
		pthread_mutex_unlock(&r->lock);
	}
}

int
mr_consume_run(mr_consumer *s, int workers, mr_handler h, void *arg,
	       const volatile int *stop, size_t max_messages)
{
	struct run r = {.s = s, .h = h, .arg = arg};
	pthread_t *threads, settler;
	int        started = 0, rc;

	if (s == NULL || h == NULL || workers < 1 ||
	    workers > CONSUMER__WORKERS_MAX)
		return MR_EINVAL;
	r.cap = consumer__credit(s) > 0 ? (size_t)consumer__credit(s) : CONSUMER__RUN_INFLIGHT;
	if (r.cap < (size_t)workers)
		r.cap = (size_t)workers;
	threads = calloc((size_t)workers, sizeof(*threads));
	r.q     = malloc(r.cap * sizeof(*r.q));
	r.acks  = malloc(r.cap * sizeof(*r.acks));
	r.nacks = malloc(r.cap * sizeof(*r.nacks));
	if (threads == NULL || r.q == NULL || r.acks == NULL ||
	    r.nacks == NULL) {
		rc = MR_ENOMEM;
		goto out;
	}
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.work_cv, NULL);
	pthread_cond_init(&r.settle_cv, NULL);
	pthread_cond_init(&r.room_cv, NULL);
	if (pthread_create(&settler, NULL, run__settler, &r) != 0) {
		rc = MR_ENOMEM;
		goto destroy;
	}
	while (started < workers &&
	       pthread_create(&threads[started], NULL, run__worker, &r) == 0)
		started++;
	if (started == workers)
		run__fetch(&r, stop, max_messages);
	else
		r.err = MR_ENOMEM;

	pthread_mutex_lock(&r.lock);
	r.closing = true;
	pthread_cond_broadcast(&r.work_cv);
	pthread_mutex_unlock(&r.lock);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_lock(&r.lock);
	r.workers_done = true;
	pthread_cond_signal(&r.settle_cv);
	pthread_mutex_unlock(&r.lock);
	pthread_join(settler, NULL);
	rc = r.err;
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
