/*
 * Per-key order through the C client (issue #7): messages that one client
 * sends to one key are written to Kafka in the order it sent them, however
 * many requests are in flight, and through the producer's fatal-error
 * recovery.
 *
 * Each case publishes 200 keys x 50 messages with mr_publish_async, the
 * client's max_inflight at 64, in 25 groups of 8 keys that take turns
 * (order_key, order_seq): message i has payload "k<key>:<seq>" and id
 * "<topic>-<i>", sent in the order of i, one message per request or 5 (of
 * 5 different keys) per request. It waits for every callback (bounded),
 * reads the topic back with an independent librdkafka consumer, and
 * checks:
 *   - every request's callback ran once with MR_OK and an MR_OK ack per
 *     message, for that message's id;
 *   - per key, the acks' offsets increase in the order sent (one partition);
 *   - every message is in Kafka under its id with its key and payload; a
 *     second record of an id (a resend, at-least-once) is counted, and
 *     printed, not refused;
 *   - per key, among the first record of each id in offset order, the
 *     sequence numbers increase: an "inversion" is a record whose seq is
 *     below one that came before it in its key.
 * A SUMMARY line on stderr gives the figures of each case before its
 * assertions.
 *
 * Built twice: order_api_embedded runs on mailroomd's embedded cluster;
 * order_api_kafka (MR_KAFKA=1) on the real broker of the CTest fixture
 * (skip, 77, when the fixture wrote $MR_KAFKA_DIR/unavailable).
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "integration/checked.h"
#include "integration/harness.h"
#include "mailroom/mailroom.h"

enum {
	NKEYS      = 200,
	PER_KEY    = 50,
	NMSG       = NKEYS * PER_KEY,
	CYCLE      = 8, /* keys sent in turn: 25 groups of 8 keys */
	PARTITIONS = 8,
	INFLIGHT   = 64,
	FAULTS     = 4,
};

#define ACKS_MS 120000
#define READ_MS 60000

struct order_stream;

/*
 * The send order: 25 groups of CYCLE keys; a group's keys take turns, one
 * message each, through their 50 messages, then the next group starts.
 * Two messages of a key are CYCLE messages apart, so that with INFLIGHT
 * requests in flight several of one key are always on their way together
 * (8 with one message a request, 40 with 5); with the keys of all 200 in
 * turn (200 apart) a key's previous message would be acked long before its
 * next one is sent, and order could not break.
 */
static int
order_key(int i)
{
	return i / (CYCLE * PER_KEY) * CYCLE + i % CYCLE;
}

static int
order_seq(int i)
{
	return i % (CYCLE * PER_KEY) / CYCLE;
}

/* The callback's argument: which request. */
struct order_req {
	struct order_stream *s;
	int                  r;
};

/* Message i: topic/k<order_key(i)>, seq order_seq(i), id TOPIC-i; request
 * r carries messages r * per .. r * per + per - 1. */
struct order_stream {
	char              topic[128];
	int               per, nreq;
	char            (*ids)[160];
	char            (*keys)[8];
	char            (*payloads)[16];
	mr_message       *m;
	mr_ack           *acks;   /* NMSG, in the order sent */
	int              *calls;  /* per request */
	int              *status; /* per request: the callback's status */
	size_t           *got_n;  /* per request: acks in the callback */
	struct order_req *reqs;
	pthread_mutex_t   mu;
	pthread_cond_t    cv;
	int               done; /* requests whose callback ran */
};

static void
order_init(struct order_stream *s, const char *topic, int per)
{
	pthread_condattr_t ca;

	memset(s, 0, sizeof(*s));
	snprintf(s->topic, sizeof(s->topic), "%s", topic);
	s->per      = per;
	s->nreq     = NMSG / per;
	s->ids      = calloc(NMSG, sizeof(*s->ids));
	s->keys     = calloc(NMSG, sizeof(*s->keys));
	s->payloads = calloc(NMSG, sizeof(*s->payloads));
	s->m        = calloc(NMSG, sizeof(*s->m));
	s->acks     = calloc(NMSG, sizeof(*s->acks));
	s->calls    = calloc((size_t)s->nreq, sizeof(*s->calls));
	s->status   = calloc((size_t)s->nreq, sizeof(*s->status));
	s->got_n    = calloc((size_t)s->nreq, sizeof(*s->got_n));
	s->reqs     = calloc((size_t)s->nreq, sizeof(*s->reqs));
	ck_assert(s->ids && s->keys && s->payloads && s->m && s->acks &&
		  s->calls && s->status && s->got_n && s->reqs);
	ck_assert_int_eq(NMSG % per, 0);
	for (int i = 0; i < NMSG; i++) {
		snprintf(s->ids[i], sizeof(s->ids[i]), "%s-%d", topic, i);
		snprintf(s->keys[i], sizeof(s->keys[i]), "k%d", order_key(i));
		snprintf(s->payloads[i], sizeof(s->payloads[i]), "k%d:%d",
			 order_key(i), order_seq(i));
		s->m[i] = (mr_message){.topic       = s->topic,
				       .key         = s->keys[i],
				       .key_len     = strlen(s->keys[i]),
				       .payload     = s->payloads[i],
				       .payload_len = strlen(s->payloads[i]),
				       .id          = s->ids[i]};
	}
	for (int r = 0; r < s->nreq; r++)
		s->reqs[r] = (struct order_req){s, r};
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
}

static void
order_fini(struct order_stream *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->ids);
	free(s->keys);
	free(s->payloads);
	free(s->m);
	free(s->acks);
	free(s->calls);
	free(s->status);
	free(s->got_n);
	free(s->reqs);
}

/* On an nng thread: keep the acks, count the request done. */
static void
order_on_acks(void *arg, int status, const mr_ack *acks, size_t n)
{
	struct order_req    *q = arg;
	struct order_stream *s = q->s;

	pthread_mutex_lock(&s->mu);
	if (s->calls[q->r]++ == 0) {
		s->status[q->r] = status;
		s->got_n[q->r]  = n;
		memcpy(s->acks + (size_t)q->r * (size_t)s->per, acks,
		       (n < (size_t)s->per ? n : (size_t)s->per) *
			   sizeof(*acks));
		s->done++;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

static int
order_done(struct order_stream *s)
{
	int done;

	pthread_mutex_lock(&s->mu);
	done = s->done;
	pthread_mutex_unlock(&s->mu);
	return done;
}

/* Waits until \p want requests' callbacks ran, or \p timeout_ms passed;
 * returns how many ran. */
static int
order_wait_for(struct order_stream *s, int want, int timeout_ms)
{
	struct timespec dl;
	int             done;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (s->done < want &&
	       pthread_cond_timedwait(&s->cv, &s->mu, &dl) != ETIMEDOUT)
		;
	done = s->done;
	pthread_mutex_unlock(&s->mu);
	return done;
}

/* Waits until every request's callback ran, or \p timeout_ms passed;
 * returns how many ran. */
static int
order_wait(struct order_stream *s, int timeout_ms)
{
	return order_wait_for(s, s->nreq, timeout_ms);
}

/* The figures of a case. */
struct order_fig {
	int    requests, callbacks, bad_callbacks;
	size_t acks_ok, ack_errors, ack_inversions;
	size_t records, foreign, mismatched, duplicates, missing;
	size_t inversions, keys_out_of_order;
	int    faults, faults_mid_stream;
	long   recreations, resent; /* status .producer; -1: not read */
	char   first_ack_error[1024], first_ack_inversion[256];
	char   first_inversion[256], first_mismatch[256];
};

/* The acks: every callback once, MR_OK, its acks for its messages; per
 * key, the offsets increase in the order sent. */
static void
order_check_acks(struct order_stream *s, struct order_fig *f)
{
	int32_t part[NKEYS];
	int64_t last[NKEYS];

	for (int r = 0; r < s->nreq; r++) {
		f->callbacks += s->calls[r] > 0;
		if (s->calls[r] != 1 || s->got_n[r] != (size_t)s->per ||
		    s->status[r] != MR_OK) {
			if (f->bad_callbacks++ == 0)
				snprintf(f->first_ack_error,
					 sizeof(f->first_ack_error),
					 "request %d: callback called %d "
					 "times, status %s, %zu acks",
					 r, s->calls[r],
					 mr_err_name(s->status[r]),
					 s->got_n[r]);
		}
	}
	for (int i = 0; i < NMSG; i++) {
		const mr_ack *a = &s->acks[i];

		if (a->status == MR_OK && strcmp(a->id, s->ids[i]) == 0 &&
		    a->partition >= 0 && a->offset >= 0) {
			f->acks_ok++;
			continue;
		}
		if (f->ack_errors++ == 0 && f->bad_callbacks == 0)
			snprintf(f->first_ack_error,
				 sizeof(f->first_ack_error),
				 "message %d (%s): ack %s id '%s' at %d@%lld: "
				 "%s",
				 i, s->payloads[i], mr_err_name(a->status),
				 a->id, a->partition, (long long)a->offset,
				 a->error);
	}
	for (int k = 0; k < NKEYS; k++) {
		part[k] = -1;
		last[k] = -1;
	}
	for (int i = 0; i < NMSG; i++) {
		const mr_ack *a = &s->acks[i];
		int           k = order_key(i);

		if (a->status != MR_OK)
			continue;
		if (part[k] < 0)
			part[k] = a->partition;
		if (a->partition != part[k] || a->offset <= last[k]) {
			if (f->ack_inversions++ == 0)
				snprintf(f->first_ack_inversion,
					 sizeof(f->first_ack_inversion),
					 "%s acked at %d@%lld after an "
					 "earlier message of its key at "
					 "%d@%lld",
					 s->payloads[i], a->partition,
					 (long long)a->offset, part[k],
					 (long long)last[k]);
		}
		if (a->partition == part[k] && a->offset > last[k])
			last[k] = a->offset;
	}
}

static int
order_rec_cmp(const void *x, const void *y)
{
	const struct mrt_record *a = *(const struct mrt_record *const *)x;
	const struct mrt_record *b = *(const struct mrt_record *const *)y;

	if (a->partition != b->partition)
		return a->partition < b->partition ? -1 : 1;
	return (a->offset > b->offset) - (a->offset < b->offset);
}

/* Kafka's records: per key, in offset order, the first record of each id. */
static void
order_check_records(struct order_stream *s, const struct mrt_records *rs,
		    struct order_fig *f)
{
	const struct mrt_record **v = calloc(rs->n ? rs->n : 1, sizeof(*v));
	bool                     *seen = calloc(NMSG, sizeof(*seen));
	int                       top[NKEYS], kpart[NKEYS];
	bool                      bad[NKEYS] = {false};
	size_t                    plen = strlen(s->topic);

	ck_assert(v != NULL && seen != NULL);
	for (int k = 0; k < NKEYS; k++)
		top[k] = kpart[k] = -1;
	for (size_t j = 0; j < rs->n; j++)
		v[j] = &rs->v[j];
	qsort(v, rs->n, sizeof(*v), order_rec_cmp);
	f->records = rs->n;
	for (size_t j = 0; j < rs->n; j++) {
		const struct mrt_record *r = v[j];
		const struct mrt_header *h = mrt_record_header(r, "ce_id");
		const char              *id;
		char                    *end;
		long                     i;
		int                      k, q;

		id = h != NULL && h->value != NULL ? h->value : "";
		if (strncmp(id, s->topic, plen) != 0 || id[plen] != '-' ||
		    (i = strtol(id + plen + 1, &end, 10)) < 0 || i >= NMSG ||
		    *end != '\0') {
			f->foreign++;
			continue;
		}
		k = order_key((int)i);
		q = order_seq((int)i);
		if (!r->has_key || strcmp(r->key, s->keys[i]) != 0 ||
		    strcmp(r->payload, s->payloads[i]) != 0 ||
		    (kpart[k] >= 0 && kpart[k] != r->partition)) {
			if (f->mismatched++ == 0)
				snprintf(f->first_mismatch,
					 sizeof(f->first_mismatch),
					 "id %s at %d@%lld: key '%s' payload "
					 "'%s', sent as %s in partition %d",
					 id, r->partition,
					 (long long)r->offset, (char *)r->key,
					 (char *)r->payload,
					 s->payloads[i], kpart[k]);
			continue;
		}
		kpart[k] = r->partition;
		if (seen[i]) {
			// A resend: allowed (at-least-once), counted.
			if (f->duplicates++ < 5)
				fprintf(stderr,
					"  duplicate: %s (id %s) again at "
					"%d@%lld\n",
					s->payloads[i], id, r->partition,
					(long long)r->offset);
			continue;
		}
		seen[i] = true;
		if (q < top[k]) {
			if (f->inversions++ == 0)
				snprintf(f->first_inversion,
					 sizeof(f->first_inversion),
					 "k%d: seq %d at %d@%lld after seq %d",
					 k, q, r->partition,
					 (long long)r->offset, top[k]);
			bad[k] = true;
		}
		if (q > top[k])
			top[k] = q;
	}
	for (int i = 0; i < NMSG; i++)
		f->missing += !seen[i];
	for (int k = 0; k < NKEYS; k++)
		f->keys_out_of_order += bad[k];
	free(seen);
	free(v);
}

static void
order_summary(const char *name, const struct order_stream *s,
	      const struct order_fig *f)
{
	fprintf(stderr,
		"SUMMARY mode=%s case=%s per_request=%d requests=%d "
		"callbacks=%d bad_callbacks=%d acks_ok=%zu ack_errors=%zu "
		"ack_inversions=%zu records=%zu duplicates=%zu missing=%zu "
		"foreign=%zu mismatched=%zu inversions=%zu "
		"keys_out_of_order=%zu faults=%d faults_mid_stream=%d "
		"recreations=%ld resent=%ld\n",
		mrt_real ? "kafka" : "embedded", name, s->per, s->nreq,
		f->callbacks, f->bad_callbacks, f->acks_ok, f->ack_errors,
		f->ack_inversions, f->records, f->duplicates, f->missing,
		f->foreign, f->mismatched, f->inversions,
		f->keys_out_of_order, f->faults, f->faults_mid_stream,
		f->recreations, f->resent);
}

/* One case: NMSG messages, \p per a request, with \p faults fatal producer
 * errors raised at even points of the stream. */
static void
order_run(const char *name, int per, int faults)
{
	const char *const  sets[] = {"fault_injection=true", NULL};
	struct mrt_daemon  d;
	struct mrt_records rs;
	struct order_stream s;
	struct order_fig   f;
	mr_client         *c, *admin = NULL;
	char               topic[128], err[512];
	int                next = 1, done;
	json_t            *st = NULL;

	memset(&f, 0, sizeof(f));
	mrt_ck_daemon_start(&d, faults ? sets : NULL);
	c = mrt_ck_client(&d, 60000, INFLIGHT);
	if (faults)
		admin = mrt_ck_client(&d, 30000, 0);
	mrt_uniq(topic, sizeof(topic), name);
	mrt_ck_topic_create(c, topic, PARTITIONS);
	order_init(&s, topic, per);
	f.requests = s.nreq;

	for (int r = 0; r < s.nreq; r++) {
		int rc;

		if (faults && next <= faults &&
		    r == s.nreq * next / (faults + 1)) {
			// The calls before the previous fault are answered
			// first: the client coalesces calls into frames and
			// a call no longer waits for a request, so without
			// this the faults would come within milliseconds,
			// and a record on its way through all of them would
			// pass mailroomd's resends (MRI_PRODUCER_RESENDS).
			if (next > 1)
				order_wait_for(&s,
					       s.nreq * (next - 1) /
						   (faults + 1),
					       ACKS_MS);
			// Requests are on their way: the fatal error lands
			// among them (counted when some were).
			mrt_ck_admin_ok(admin,
					"{\"op\":\"fault.producer_fatal\"}");
			f.faults++;
			f.faults_mid_stream += order_done(&s) < r;
			next++;
		}
		rc = mr_publish_async(c, s.m + (size_t)r * (size_t)per,
				      (size_t)per, order_on_acks, &s.reqs[r]);
		ck_assert_msg(rc == MR_OK, "%s: mr_publish_async %d: %s", name,
			      r, mr_err_name(rc));
	}
	done = order_wait(&s, ACKS_MS);
	ck_assert_msg(done == s.nreq, "%s: %d of %d callbacks within %d ms",
		      name, done, s.nreq, ACKS_MS);
	ck_assert_int_eq(mr_client_drain(c, 10000), MR_OK);
	order_check_acks(&s, &f);
	f.recreations = f.resent = -1;
	if (faults && (st = mrt_daemon_status(&d)) != NULL) {
		json_t *prod = json_object_get(st, "producer");

		f.recreations = (long)json_integer_value(
		    json_object_get(prod, "recreations"));
		f.resent =
		    (long)json_integer_value(json_object_get(prod, "resent"));
	}

	// Wait for what was acked; a failed message may not be there at all.
	ck_assert_msg(mrt_kafka_read(d.bootstrap, topic, f.acks_ok, READ_MS,
				     &rs, err, sizeof(err)) == 0,
		      "%s: reading %s: %s", name, topic, err);
	order_check_records(&s, &rs, &f);
	order_summary(name, &s, &f);

	ck_assert_msg(f.bad_callbacks == 0 && f.ack_errors == 0,
		      "%s: %d bad callbacks, %zu messages not acked MR_OK of "
		      "%d; first: %s",
		      name, f.bad_callbacks, f.ack_errors, NMSG,
		      f.first_ack_error);
	ck_assert_msg(f.foreign == 0 && f.mismatched == 0,
		      "%s: %zu records not of the stream, %zu not as sent; "
		      "first: %s",
		      name, f.foreign, f.mismatched, f.first_mismatch);
	ck_assert_msg(f.missing == 0, "%s: %zu of %d messages not in Kafka",
		      name, f.missing, NMSG);
	ck_assert_msg(f.ack_inversions == 0,
		      "%s: per key, %zu acks do not follow the offset of the "
		      "one sent before; first: %s",
		      name, f.ack_inversions, f.first_ack_inversion);
	ck_assert_msg(f.inversions == 0,
		      "%s: per key, %zu inversions among the first records of "
		      "the ids, %zu of %d keys out of order; first: %s",
		      name, f.inversions, f.keys_out_of_order, NKEYS,
		      f.first_inversion);
	if (faults) {
		ck_assert_msg(f.recreations >= 1,
			      "%s: status .producer.recreations is %ld after "
			      "%d fatal errors",
			      name, f.recreations, f.faults);
		// Records unconfirmed at a fatal error are sent again by the
		// new producer: none means no fault caught a record on its
		// way, and the case did not exercise the recovery.
		ck_assert_msg(f.resent >= 1,
			      "%s: status .producer.resent is %ld after %d "
			      "fatal errors",
			      name, f.resent, f.faults);
		// A fault raised with nothing in flight exercised nothing.
		ck_assert_msg(f.faults_mid_stream >= 2,
			      "%s: only %d of %d fatal errors came with "
			      "requests in flight",
			      name, f.faults_mid_stream, f.faults);
	}
	json_decref(st);
	mrt_records_free(&rs);
	order_fini(&s);
	mr_client_free(admin);
	mr_client_free(c);
	mrt_ck_daemon_finish(&d);
}

START_TEST(test_order_one_per_request)
{
	order_run("order1", 1, 0);
}
END_TEST

START_TEST(test_order_batches_of_5)
{
	order_run("order5", 5, 0);
}
END_TEST

START_TEST(test_order_producer_fatal)
{
	order_run("orderfatal", 1, FAULTS);
}
END_TEST

static Suite *
order_api_suite(void)
{
	Suite *s = suite_create(mrt_real ? "order_api_kafka"
				       : "order_api_embedded");
	TCase *tc;

	// Each case is bounded on its own, under the CTest timeout.
	tc = tcase_create("order");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_order_one_per_request);
	tcase_add_test(tc, test_order_batches_of_5);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_order_producer_fatal);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return mrt_main("order_api_test", order_api_suite);
}
