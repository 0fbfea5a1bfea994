#include "admin.h"
#include "admin_dlq.h"
#include "admin_bounds.h"
#include "admin_lag.h"
#include "actors.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bridge/embedded.h"
#include "bridge/producer.h"
#include "bridge/topics.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "proto/frame.h"

/* A queued request. */
struct admin_job {
	struct admin_job *next;
	json_t           *req;
	mri_admin_done_cb done;
	void             *arg;
};

struct mri_admin {
	rd_kafka_t          *rk; /* thread-safe: no lock around it */
	rd_kafka_conf_t     *dlq_conf; /* dlq.*'s consumers' template */
	struct mri_embedded *emb;
	bool                 fault_injection;
	int                  timeout_ms;
	int (*inject_fatal)(void *arg);
	void *inject_arg;
	size_t (*resume)(void *arg, const char *group, size_t *resumed);
	void *resume_arg;
	struct mri_publisher *pub; /* dlq.replay's, dlq.purge's */
	struct mri_lag       *lag; /* lag.list's */
	struct mri_bp        *bp;  /* bounds.*' */
	struct mri_actors    *actors; /* actors.*', the admin part's own */

	pthread_mutex_t   mtx;
	pthread_cond_t    work; /* a job was queued, or stopping */
	pthread_cond_t    idle; /* a job ended */
	struct admin_job *head, *tail; /* under mtx, as the rest */
	int               queued;
	int               running;
	int               queue_max;
	bool              draining; /* refuse new requests */
	bool              stopping; /* workers exit */
	pthread_t        *threads;
	int               nthreads;
};

json_t *
mri_admin_fail(int err, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", mr_err_name(err),
			 "message", msg);
}

static int
admin__cmp_topic(const void *a, const void *b)
{
	const rd_kafka_metadata_topic_t *x = a, *y = b;

	return strcmp(x->topic, y->topic);
}

/* Metadata of every topic: never names one, so the embedded cluster does
 * not create it as a side effect. */
static int
admin__metadata(struct mri_admin *a,
		const struct rd_kafka_metadata **md, char *why, size_t n)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_metadata(a->rk, 1, NULL, md, a->timeout_ms);
	if (err) {
		snprintf(why, n, "metadata request failed: %s",
			 rd_kafka_err2str(err));
		return mri_kafka_err(err);
	}
	return MR_OK;
}

static const rd_kafka_metadata_topic_t *
admin__find(const struct rd_kafka_metadata *md, const char *topic)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0)
			return &md->topics[i];
	return NULL;
}

static json_t *
admin__topics_list(struct mri_admin *a)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_metadata_topic_t      *sorted;
	json_t                         *topics;
	char                            why[256];
	int                             rc;

	if ((rc = admin__metadata(a, &md, why, sizeof(why))) != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	sorted = malloc((size_t)(md->topic_cnt ? md->topic_cnt : 1) *
			sizeof(*sorted));
	if (sorted == NULL) {
		rd_kafka_metadata_destroy(md);
		return mri_admin_fail(MR_ENOMEM, "out of memory");
	}
	memcpy(sorted, md->topics, (size_t)md->topic_cnt * sizeof(*sorted));
	qsort(sorted, (size_t)md->topic_cnt, sizeof(*sorted), admin__cmp_topic);
	topics = json_array();
	for (int i = 0; i < md->topic_cnt; i++)
		json_array_append_new(
		    topics, json_pack("{s:s, s:i}", "name", sorted[i].topic,
				      "partitions", sorted[i].partition_cnt));
	free(sorted);
	rd_kafka_metadata_destroy(md);
	return json_pack("{s:b, s:o}", "ok", 1, "topics", topics);
}

static json_t *
admin__int_array(const int32_t *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	return a;
}

/* The topic's non-default configuration, from DescribeConfigs. */
static json_t *
admin__topic_config(struct mri_admin *a, const char *topic)
{
	rd_kafka_t                    *rk;
	rd_kafka_queue_t              *q;
	rd_kafka_ConfigResource_t     *res;
	rd_kafka_AdminOptions_t       *opts;
	rd_kafka_event_t              *ev;
	const rd_kafka_ConfigResource_t **rs;
	size_t                         nrs = 0;
	json_t                        *cfg = json_object();

	rk   = a->rk;
	q    = rd_kafka_queue_new(rk);
	res  = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_AdminOptions_set_request_timeout(opts, a->timeout_ms, NULL,
						  0);
	rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
	ev = rd_kafka_queue_poll(q, a->timeout_ms + 1000);
	if (ev != NULL && !rd_kafka_event_error(ev)) {
		rs = rd_kafka_DescribeConfigs_result_resources(
		    rd_kafka_event_DescribeConfigs_result(ev), &nrs);
		for (size_t i = 0; i < nrs; i++) {
			const rd_kafka_ConfigEntry_t **es;
			size_t                         ne;

			es = rd_kafka_ConfigResource_configs(rs[i], &ne);
			for (size_t j = 0; j < ne; j++) {
				const char *v = rd_kafka_ConfigEntry_value(es[j]);
				if (rd_kafka_ConfigEntry_is_default(es[j]) ||
				    v == NULL)
					continue;
				json_object_set_new(
				    cfg, rd_kafka_ConfigEntry_name(es[j]),
				    json_string(v));
			}
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_ConfigResource_destroy(res);
	rd_kafka_queue_destroy(q);
	return cfg;
}

static json_t *
admin__topics_describe(struct mri_admin *a, json_t *req)
{
	const struct rd_kafka_metadata  *md;
	const rd_kafka_metadata_topic_t *t;
	const char *name = json_string_value(json_object_get(req, "topic"));
	json_t     *parts, *rep;
	char        why[256];
	int         rc;

	if (name == NULL)
		return mri_admin_fail(MR_EINVAL, "topics.describe needs \"topic\"");
	if ((rc = admin__metadata(a, &md, why, sizeof(why))) != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	if ((t = admin__find(md, name)) == NULL) {
		rd_kafka_metadata_destroy(md);
		return mri_admin_fail(MR_ENOENT, "topic '%s' does not exist", name);
	}
	parts = json_array();
	for (int i = 0; i < t->partition_cnt; i++) {
		const rd_kafka_metadata_partition_t *p = &t->partitions[i];
		json_array_append_new(
		    parts,
		    json_pack("{s:i, s:i, s:o, s:o}", "partition", p->id,
			      "leader", p->leader, "replicas",
			      admin__int_array(p->replicas, p->replica_cnt),
			      "isr", admin__int_array(p->isrs, p->isr_cnt)));
	}
	rep = json_pack("{s:b, s:s, s:i, s:i, s:o}", "ok", 1, "topic", name,
			"partition_count", t->partition_cnt, "replication",
			t->partition_cnt ? t->partitions[0].replica_cnt : 0,
			"partitions", parts);
	rd_kafka_metadata_destroy(md);
	// The embedded cluster has no DescribeConfigs.
	if (a->emb == NULL)
		json_object_set_new(rep, "config",
				    admin__topic_config(a, name));
	return rep;
}

/* Kafka's max.message.bytes bounds a record batch: a record as large as
 * the producer's message.max.bytes comes in a batch with a 61-byte header
 * (record batch v2). */
#define ADMIN__BATCH_HEADER 61

/* Set \p config's max.message.bytes, unless it has one, to what holds any
 * record the producer sends: its message.max.bytes (mailroomd's
 * producer.message_max_bytes, or librdkafka.message.max.bytes) and a
 * batch's header. Kafka's default (about 1 MiB) refuses a 1 MiB payload
 * in its envelope. The admin handle has the producer's message.max.bytes
 * (mri_admin_conf). */
static void
admin__default_max_message_bytes(rd_kafka_t *rk, json_t *config)
{
	char      v[32];
	size_t    vn = sizeof(v);
	long long mmb;

	if (json_object_get(config, "max.message.bytes") != NULL)
		return;
	if (rd_kafka_conf_get(rd_kafka_conf(rk), "message.max.bytes", v,
			      &vn) != RD_KAFKA_CONF_OK)
		return;
	if ((mmb = strtoll(v, NULL, 10)) <= 0)
		return;
	snprintf(v, sizeof(v), "%lld", mmb + ADMIN__BATCH_HEADER);
	json_object_set_new(config, "max.message.bytes", json_string(v));
}

/* Create the topic with \p config (borrowed; the defaults are added to it).
 * @returns NULL on success, else a new failure reply. */
static json_t *
admin__topics_create_kafka(struct mri_admin *a, const char *name,
			   int partitions, int replication, json_t *config)
{
	rd_kafka_t                    *rk;
	rd_kafka_queue_t              *q;
	rd_kafka_NewTopic_t           *nt;
	rd_kafka_AdminOptions_t       *opts;
	rd_kafka_event_t              *ev;
	rd_kafka_topic_t              *rkt;
	const rd_kafka_topic_result_t **tr;
	size_t                         ntr = 0;
	const char                    *k;
	json_t                        *v, *rep = NULL;
	char                           errstr[512];

	json_object_foreach(config, k, v)
	{
		if (!json_is_string(v))
			return mri_admin_fail(MR_EINVAL,
					   "config value of '%s' must be a "
					   "string",
					   k);
	}
	nt = rd_kafka_NewTopic_new(name, partitions, replication, errstr,
				   sizeof(errstr));
	if (nt == NULL)
		return mri_admin_fail(MR_EINVAL, "%s", errstr);
	rk = a->rk;
	admin__default_max_message_bytes(rk, config);
	json_object_foreach(config, k, v)
		rd_kafka_NewTopic_set_config(nt, k, json_string_value(v));
	q    = rd_kafka_queue_new(rk);
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(opts, a->timeout_ms, NULL,
						    0);
	rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
	ev = rd_kafka_queue_poll(q, a->timeout_ms + 2000);
	if (ev == NULL) {
		rep = mri_admin_fail(MR_ETIMEDOUT, "CreateTopics got no answer");
	} else if (rd_kafka_event_error(ev)) {
		rep = mri_admin_fail(mri_kafka_err(rd_kafka_event_error(ev)), "%s",
				  rd_kafka_event_error_string(ev));
	} else {
		tr = rd_kafka_CreateTopics_result_topics(
		    rd_kafka_event_CreateTopics_result(ev), &ntr);
		for (size_t i = 0; i < ntr && rep == NULL; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
			if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				rep = mri_admin_fail(MR_EEXIST,
						  "topic '%s' already exists",
						  name);
			else if (e)
				rep = mri_admin_fail(
				    mri_kafka_err(e), "%s",
				    rd_kafka_topic_result_error_string(tr[i]));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	// Answered once its partitions are made, so that a publish right
	// after meets none that is not.
	if (rep == NULL && (rkt = rd_kafka_topic_new(rk, name, NULL)) != NULL) {
		mri_topics_wait_ready(rk, rkt);
		rd_kafka_topic_destroy(rkt);
	}
	return rep;
}

static json_t *
admin__topics_create(struct mri_admin *a, json_t *req)
{
	const struct rd_kafka_metadata *md;
	const char *name = json_string_value(json_object_get(req, "topic"));
	json_t     *jp   = json_object_get(req, "partitions");
	json_t     *jr   = json_object_get(req, "replication");
	json_t     *cfg  = json_object_get(req, "config");
	int         partitions = jp ? (int)json_integer_value(jp) : -1;
	int         replication = jr ? (int)json_integer_value(jr) : -1;
	json_t     *rep, *applied;
	char        why[256];
	int         rc, exists;

	if (name == NULL || !mri_topic_valid(name, strlen(name)))
		return mri_admin_fail(MR_EINVAL,
				   "topics.create needs a valid \"topic\" "
				   "(1-249 of [a-zA-Z0-9._-])");
	if ((jp && !json_is_integer(jp)) || (jr && !json_is_integer(jr)) ||
	    partitions == 0 || partitions < -1 || replication == 0 ||
	    replication < -1)
		return mri_admin_fail(MR_EINVAL,
				   "partitions and replication are positive "
				   "integers (or -1: the cluster's default)");
	if (cfg != NULL && !json_is_object(cfg))
		return mri_admin_fail(MR_EINVAL, "config must be an object");

	if (a->emb != NULL) {
		if (cfg != NULL && json_object_size(cfg) > 0)
			return mri_admin_fail(MR_ENOTSUP,
					   "the embedded cluster does not "
					   "support topic configuration");
		if ((rc = admin__metadata(a, &md, why, sizeof(why))) != MR_OK)
			return mri_admin_fail(rc, "%s", why);
		exists = admin__find(md, name) != NULL;
		rd_kafka_metadata_destroy(md);
		if (exists)
			return mri_admin_fail(MR_EEXIST,
					   "topic '%s' already exists", name);
		partitions  = partitions > 0 ? partitions : 4;
		replication = replication > 0 ? replication : 1;
		rc = mri_embedded_topic_create(a->emb, name, partitions,
					       replication);
		if (rc != MR_OK)
			return mri_admin_fail(rc, "cannot create '%s'", name);
		applied = json_object();
	} else {
		applied = cfg != NULL ? json_copy(cfg) : json_object();
		if (applied == NULL)
			return mri_admin_fail(MR_ENOMEM, "out of memory");
		rep = admin__topics_create_kafka(a, name, partitions,
						 replication, applied);
		if (rep != NULL) {
			json_decref(applied);
			return rep;
		}
	}
	return json_pack("{s:b, s:s, s:i, s:i, s:o}", "ok", 1, "topic", name,
			 "partitions", partitions, "replication", replication,
			 "config", applied);
}

static json_t *
admin__fault(struct mri_admin *a, const char *op, json_t *req)
{
	json_t *jb     = json_object_get(req, "broker");
	int     broker = jb ? (int)json_integer_value(jb) : 1;

	if (!a->fault_injection)
		return mri_admin_fail(MR_ENOTSUP,
				   "fault injection is off (start mailroomd "
				   "with fault_injection=true, for tests)");
	if (strcmp(op, "fault.producer_fatal") == 0) {
		int rc = a->inject_fatal != NULL ? a->inject_fatal(a->inject_arg)
						 : MR_ENOTSUP;
		if (rc != MR_OK)
			return mri_admin_fail(rc, "cannot raise a fatal error");
		return json_pack("{s:b}", "ok", 1);
	}
	if (a->emb == NULL)
		return mri_admin_fail(MR_ENOTSUP,
				   "%s needs the embedded cluster; on real "
				   "Kafka, stop the broker process",
				   op);
	if (strcmp(op, "fault.broker_down") == 0)
		mri_embedded_broker_set_down(a->emb, broker, true);
	else if (strcmp(op, "fault.broker_up") == 0)
		mri_embedded_broker_set_down(a->emb, broker, false);
	else if (strcmp(op, "fault.broker_rtt") == 0)
		mri_embedded_broker_set_rtt(
		    a->emb, broker,
		    (int)json_integer_value(json_object_get(req, "rtt_ms")));
	else if (strcmp(op, "fault.produce_errors") == 0) {
		json_int_t n =
		    json_integer_value(json_object_get(req, "count"));
		json_int_t err =
		    json_integer_value(json_object_get(req, "error"));

		if (n < 1 || n > 1000 || err <= 0)
			return mri_admin_fail(MR_EINVAL,
					   "fault.produce_errors needs "
					   "\"count\" (1..1000) and \"error\" "
					   "(a Kafka error code > 0)");
		mri_embedded_produce_errors(a->emb, (size_t)n, (int)err);
	} else
		return mri_admin_fail(MR_EUNKNOWNOP, "unknown operation '%s'", op);
	return json_pack("{s:b}", "ok", 1);
}

/* consumers.resume {"group": G}: the tripped breakers of G's
 * subscriptions go half-open now. */
static json_t *
admin__resume(struct mri_admin *a, json_t *req)
{
	const char *group = json_string_value(json_object_get(req, "group"));
	size_t      n, resumed = 0;

	if (group == NULL || *group == '\0')
		return mri_admin_fail(MR_EINVAL,
				   "consumers.resume needs \"group\"");
	if (a->resume == NULL)
		return mri_admin_fail(MR_ENOTSUP, "no consume side to resume");
	if ((n = a->resume(a->resume_arg, group, &resumed)) == 0)
		return mri_admin_fail(MR_ENOENT,
				   "this mailroomd has no subscription of "
				   "group '%s'",
				   group);
	return json_pack("{s:b, s:s, s:I, s:I}", "ok", 1, "group", group,
			 "subscriptions", (json_int_t)n, "resumed",
			 (json_int_t)resumed);
}

json_t *
mri_admin_run(struct mri_admin *a, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t     *rep;

	if (op == NULL)
		return mri_admin_fail(MR_EINVAL, "the request needs \"op\"");
	if (strcmp(op, "topics.list") == 0)
		return admin__topics_list(a);
	if (strcmp(op, "topics.describe") == 0)
		return admin__topics_describe(a, req);
	if (strcmp(op, "topics.create") == 0)
		return admin__topics_create(a, req);
	if (strncmp(op, "fault.", 6) == 0)
		return admin__fault(a, op, req);
	if (strcmp(op, "consumers.resume") == 0)
		return admin__resume(a, req);
	if (strncmp(op, "lag.", 4) == 0)
		return mri_admin_lag(a->lag, a->bp, op, req);
	if (strncmp(op, "bounds.", 7) == 0)
		return mri_admin_bounds(a->lag, a->bp, op, req);
	if (strncmp(op, "actors.", 7) == 0 &&
	    (rep = mri_actors_admin(a->actors, op, req, mri_wall_ms())) != NULL)
		return rep;
	if (strncmp(op, "dlq.", 4) == 0 || strcmp(op, "topics.read") == 0) {
		struct mri_admin_dlq_ctx c = {
		    .tmpl       = a->dlq_conf,
		    .timeout_ms = a->timeout_ms,
		    .rk         = a->rk,
		    .emb        = a->emb,
		    .pub        = a->pub,
		};

		if (op[0] == 't')
			return mri_admin_read(&c, req);
		return mri_admin_dlq(&c, op, req);
	}
	return mri_admin_fail(MR_EUNKNOWNOP, "unknown operation '%s'", op);
}

struct mri_actors *
mri_admin_actors(struct mri_admin *a)
{
	return a->actors;
}

/* ---- the workers -------------------------------------------------------- */

static void *
admin__worker(void *arg)
{
	struct mri_admin *a = arg;
	struct admin_job *j;
	json_t           *rep;

	pthread_mutex_lock(&a->mtx);
	for (;;) {
		while (a->head == NULL && !a->stopping)
			pthread_cond_wait(&a->work, &a->mtx);
		if ((j = a->head) == NULL)
			break; // stopping, and nothing queued
		if ((a->head = j->next) == NULL)
			a->tail = NULL;
		a->queued--;
		a->running++;
		pthread_mutex_unlock(&a->mtx);

		rep = mri_admin_run(a, j->req);
		json_decref(j->req);
		j->done(j->arg, rep);
		free(j);

		pthread_mutex_lock(&a->mtx);
		a->running--;
		pthread_cond_broadcast(&a->idle);
	}
	pthread_mutex_unlock(&a->mtx);
	return NULL;
}

/* Settings of the admin's handle: as the producer's, what it needs. */
static rd_kafka_conf_t *
admin__conf(const struct mri_admin_conf *c, char *errstr, size_t n)
{
	rd_kafka_conf_t *conf;

	if ((conf = mri_kafka_conf_new(c->bootstrap, "mailroomd", errstr, n)) ==
	    NULL)
		return NULL;
	if ((c->message_max_bytes > 0 &&
	     mri_kafka_set_int(conf, "message.max.bytes", c->message_max_bytes,
			       errstr, n)) ||
	    mri_kafka_set_all(conf, c->rdk_names, c->rdk_values, c->rdk_count,
			      errstr, n)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

int
mri_admin_new(struct mri_admin **out, const struct mri_admin_conf *c,
	      char *errstr, size_t errstr_size)
{
	struct mri_admin *a;
	rd_kafka_conf_t  *conf;
	int               n = c->workers > 0 ? c->workers : MRI_ADMIN_WORKERS;

	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->threads = calloc((size_t)n, sizeof(*a->threads))) == NULL) {
		free(a);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	a->emb             = c->emb;
	a->fault_injection = c->fault_injection;
	a->timeout_ms      = c->timeout_ms;
	a->inject_fatal    = c->inject_fatal;
	a->inject_arg      = c->inject_arg;
	a->resume          = c->resume;
	a->resume_arg      = c->resume_arg;
	a->pub             = c->publisher;
	a->lag             = c->lag;
	a->bp              = c->bp;
	a->queue_max       = c->queue_max > 0 ? c->queue_max : MRI_ADMIN_QUEUE;
	if (mri_actors_new(&a->actors) != MR_OK) {
		free(a->threads);
		free(a);
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	pthread_mutex_init(&a->mtx, NULL);
	pthread_cond_init(&a->work, NULL);
	mri_cond_init(&a->idle);
	if ((conf = admin__conf(c, errstr, errstr_size)) == NULL ||
	    (a->dlq_conf = rd_kafka_conf_dup(conf)) == NULL) {
		if (conf != NULL)
			rd_kafka_conf_destroy(conf);
		mri_admin_free(a);
		return MR_ECONFIG;
	}
	a->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (a->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		mri_admin_free(a);
		return MR_ECONFIG;
	}
	for (; a->nthreads < n; a->nthreads++)
		if (pthread_create(&a->threads[a->nthreads], NULL,
				   admin__worker, a) != 0) {
			snprintf(errstr, errstr_size,
				 "cannot start an admin thread");
			mri_admin_free(a);
			return MR_ENOMEM;
		}
	*out = a;
	return MR_OK;
}

int
mri_admin_submit(struct mri_admin *a, json_t *req, mri_admin_done_cb done,
		 void *arg)
{
	struct admin_job *j;

	if ((j = malloc(sizeof(*j))) == NULL)
		return MR_ENOMEM;
	j->next = NULL;
	j->req  = req;
	j->done = done;
	j->arg  = arg;
	pthread_mutex_lock(&a->mtx);
	if (a->draining || a->queued >= a->queue_max) {
		int rc = a->draining ? MR_ESHUTDOWN : MR_EBUSY;

		pthread_mutex_unlock(&a->mtx);
		free(j);
		return rc;
	}
	if (a->tail != NULL)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	a->queued++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mtx);
	return MR_OK;
}

bool
mri_admin_drain(struct mri_admin *a, int timeout_ms)
{
	uint64_t deadline = mri_deadline_in((uint64_t)timeout_ms);
	bool     idle;

	pthread_mutex_lock(&a->mtx);
	a->draining = true;
	while ((a->queued > 0 || a->running > 0) &&
	       mri_cond_wait_until(&a->idle, &a->mtx, deadline) != ETIMEDOUT)
		;
	idle = a->queued == 0 && a->running == 0;
	pthread_mutex_unlock(&a->mtx);
	return idle;
}

void
mri_admin_free(struct mri_admin *a)
{
	struct admin_job *j, *next;

	if (a == NULL)
		return;
	(void)mri_admin_drain(a, 1000);
	pthread_mutex_lock(&a->mtx);
	j       = a->head;
	a->head = a->tail = NULL;
	a->queued         = 0;
	a->stopping       = true;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->mtx);
	for (; j != NULL; j = next) {
		next = j->next;
		json_decref(j->req);
		j->done(j->arg, mri_admin_fail(MR_ESHUTDOWN,
					    "mailroomd is stopping"));
		free(j);
	}
	// Each running operation ends within its Kafka timeout.
	for (int i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	if (a->rk != NULL)
		rd_kafka_destroy(a->rk);
	if (a->dlq_conf != NULL)
		rd_kafka_conf_destroy(a->dlq_conf);
	free(a->threads);
	mri_actors_free(a->actors);
	pthread_cond_destroy(&a->idle);
	pthread_cond_destroy(&a->work);
	pthread_mutex_destroy(&a->mtx);
	free(a);
}
