/*
 * `mailroom consume`'s settler: a thread that acks (or nacks, or rejects)
 * the batches the command's thread has printed and flushed, so that the
 * next FETCH goes out while the last SETTLE is on its way (the client's
 * consumer may be used from two threads at once). The command's thread
 * hands a batch's handles over only once the batch is written to stdout,
 * flushed and ferror-checked: nothing is settled before it was printed.
 *
 * Handles belong to the session that fetched them: before the command's
 * thread subscribes again it drains the settler (cli_settler_drain), so
 * that no handle of the old session is settled on the new one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Batches handed over and not yet settled, at most: the command's thread
 * waits beyond (the credit holds it back sooner in practice). */
#define SETTLER__DEPTH 4

struct settler__job {
	uint64_t *h; /* owned */
	size_t    n;
};

struct cli_settler {
	mr_consumer        *s; /* borrowed */
	enum cli_settle     kind;
	const char         *reason; /* borrowed */
	pthread_t           thread;
	pthread_mutex_t     lock;
	pthread_cond_t      cv; /* a job queued or done, or stop */
	struct settler__job q[SETTLER__DEPTH];
	size_t              head, count;
	bool                busy; /* a job is being settled, out of q */
	bool                stop;
	int                 err; /* the first error since the last drain */
	char                why[512]; /* its sentence (the settler's thread's
					 mr_client_last_error) */
};

static int
settler__one(struct cli_settler *t, const struct settler__job *j)
{
	size_t failed = 0;
	int    rc;

	switch (t->kind) {
	case CLI_SETTLE_ACK:
		rc = mr_consumer_ack(t->s, j->h, j->n, &failed);
		break;
	case CLI_SETTLE_NACK:
		rc = mr_consumer_nack(t->s, j->h, j->n, t->reason, &failed);
		break;
	default:
		rc = mr_consumer_reject(t->s, j->h, j->n, t->reason, &failed);
		break;
	}
	if (rc == MR_OK && failed > 0)
		fprintf(stderr,
			"mailroom: %zu of %zu deliveries were not settled "
			"(expired, or their partition moved)\n",
			failed, j->n);
	return rc;
}

static void *
settler__main(void *arg)
{
	struct cli_settler *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct settler__job j;
		bool                skip;
		int                 rc = MR_OK;

		while (t->count == 0 && !t->stop)
			pthread_cond_wait(&t->cv, &t->lock);
		if (t->count == 0)
			break; // stopped, and nothing left
		j       = t->q[t->head];
		t->head = (t->head + 1) % SETTLER__DEPTH;
		t->count--;
		t->busy = true;
		// After an error (a lost session, mostly) the rest would fail
		// the same way: they are dropped, their deliveries come again.
		skip = t->err != MR_OK;
		pthread_mutex_unlock(&t->lock);
		if (!skip)
			rc = settler__one(t, &j);
		free(j.h);
		pthread_mutex_lock(&t->lock);
		if (t->err == MR_OK && rc != MR_OK) {
			// The sentence is this thread's: kept for the other.
			t->err = rc;
			snprintf(t->why, sizeof(t->why), "%s",
				 mr_client_last_error());
		}
		t->busy = false;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int
cli_settler_start(struct cli_settler **out, mr_consumer *s,
		  enum cli_settle kind, const char *reason)
{
	struct cli_settler *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return MR_ENOMEM;
	t->s      = s;
	t->kind   = kind;
	t->reason = reason;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cv, NULL);
	if (pthread_create(&t->thread, NULL, settler__main, t) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return MR_ENOMEM;
	}
	*out = t;
	return MR_OK;
}

/* The error since the last drain, its sentence in \p why. Called with
 * the lock held. */
static int
settler__err(const struct cli_settler *t, char *why, size_t why_size)
{
	if (t->err != MR_OK && why_size > 0)
		snprintf(why, why_size, "%s", t->why);
	return t->err;
}

int
cli_settler_put(struct cli_settler *t, uint64_t *h, size_t n, char *why,
		size_t why_size)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	while (t->count == SETTLER__DEPTH && t->err == MR_OK)
		pthread_cond_wait(&t->cv, &t->lock);
	if ((rc = settler__err(t, why, why_size)) == MR_OK) {
		t->q[(t->head + t->count) % SETTLER__DEPTH] =
		    (struct settler__job){h, n};
		t->count++;
		pthread_cond_broadcast(&t->cv);
		h = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	free(h);
	return rc;
}

int
cli_settler_drain(struct cli_settler *t, char *why, size_t why_size)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	while (t->count > 0 || t->busy)
		pthread_cond_wait(&t->cv, &t->lock);
	rc     = settler__err(t, why, why_size);
	t->err = MR_OK;
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int
cli_settler_stop(struct cli_settler *t, char *why, size_t why_size)
{
	int rc;

	if (t == NULL)
		return MR_OK;
	rc = cli_settler_drain(t, why, why_size);
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return rc;
}
