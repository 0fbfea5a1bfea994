#include "admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bridge/producer.h"
#include "embedded.h"
#include "mailroom/error.h"
#include "proto/frame.h"

static json_t *
admin__fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_t *
admin__fail(int err, const char *fmt, ...)
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
admin__metadata(const struct mri_admin_env *env,
		const struct rd_kafka_metadata **md, char *why, size_t n)
{
	rd_kafka_t         *rk = mri_producer_lock_handle(env->prod);
	rd_kafka_resp_err_t err;

	err = rd_kafka_metadata(rk, 1, NULL, md, env->timeout_ms);
	mri_producer_unlock_handle(env->prod);
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
admin__topics_list(const struct mri_admin_env *env)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_metadata_topic_t      *sorted;
	json_t                         *topics;
	char                            why[256];
	int                             rc;

	if ((rc = admin__metadata(env, &md, why, sizeof(why))) != MR_OK)
		return admin__fail(rc, "%s", why);
	sorted = malloc((size_t)(md->topic_cnt ? md->topic_cnt : 1) *
			sizeof(*sorted));
	if (sorted == NULL) {
		rd_kafka_metadata_destroy(md);
		return admin__fail(MR_ENOMEM, "out of memory");
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
admin__topic_config(const struct mri_admin_env *env, const char *topic)
{
	rd_kafka_t                    *rk;
	rd_kafka_queue_t              *q;
	rd_kafka_ConfigResource_t     *res;
	rd_kafka_AdminOptions_t       *opts;
	rd_kafka_event_t              *ev;
	const rd_kafka_ConfigResource_t **rs;
	size_t                         nrs = 0;
	json_t                        *cfg = json_object();

	rk   = mri_producer_lock_handle(env->prod);
	q    = rd_kafka_queue_new(rk);
	res  = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_AdminOptions_set_request_timeout(opts, env->timeout_ms, NULL,
						  0);
	rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
	ev = rd_kafka_queue_poll(q, env->timeout_ms + 1000);
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
	mri_producer_unlock_handle(env->prod);
	return cfg;
}

static json_t *
admin__topics_describe(const struct mri_admin_env *env, json_t *req)
{
	const struct rd_kafka_metadata  *md;
	const rd_kafka_metadata_topic_t *t;
	const char *name = json_string_value(json_object_get(req, "topic"));
	json_t     *parts, *rep;
	char        why[256];
	int         rc;

	if (name == NULL)
		return admin__fail(MR_EINVAL, "topics.describe needs \"topic\"");
	if ((rc = admin__metadata(env, &md, why, sizeof(why))) != MR_OK)
		return admin__fail(rc, "%s", why);
	if ((t = admin__find(md, name)) == NULL) {
		rd_kafka_metadata_destroy(md);
		return admin__fail(MR_ENOENT, "topic '%s' does not exist", name);
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
	if (env->emb == NULL)
		json_object_set_new(rep, "config",
				    admin__topic_config(env, name));
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
 * in its envelope. Call with the handle locked. */
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
admin__topics_create_kafka(const struct mri_admin_env *env, const char *name,
			   int partitions, int replication, json_t *config)
{
	rd_kafka_t                    *rk;
	rd_kafka_queue_t              *q;
	rd_kafka_NewTopic_t           *nt;
	rd_kafka_AdminOptions_t       *opts;
	rd_kafka_event_t              *ev;
	const rd_kafka_topic_result_t **tr;
	size_t                         ntr = 0;
	const char                    *k;
	json_t                        *v, *rep = NULL;
	char                           errstr[512];

	json_object_foreach(config, k, v)
	{
		if (!json_is_string(v))
			return admin__fail(MR_EINVAL,
					   "config value of '%s' must be a "
					   "string",
					   k);
	}
	nt = rd_kafka_NewTopic_new(name, partitions, replication, errstr,
				   sizeof(errstr));
	if (nt == NULL)
		return admin__fail(MR_EINVAL, "%s", errstr);
	rk = mri_producer_lock_handle(env->prod);
	admin__default_max_message_bytes(rk, config);
	json_object_foreach(config, k, v)
		rd_kafka_NewTopic_set_config(nt, k, json_string_value(v));
	q    = rd_kafka_queue_new(rk);
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(opts, env->timeout_ms, NULL,
						    0);
	rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
	ev = rd_kafka_queue_poll(q, env->timeout_ms + 2000);
	if (ev == NULL) {
		rep = admin__fail(MR_ETIMEDOUT, "CreateTopics got no answer");
	} else if (rd_kafka_event_error(ev)) {
		rep = admin__fail(mri_kafka_err(rd_kafka_event_error(ev)), "%s",
				  rd_kafka_event_error_string(ev));
	} else {
		tr = rd_kafka_CreateTopics_result_topics(
		    rd_kafka_event_CreateTopics_result(ev), &ntr);
		for (size_t i = 0; i < ntr && rep == NULL; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
			if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				rep = admin__fail(MR_EEXIST,
						  "topic '%s' already exists",
						  name);
			else if (e)
				rep = admin__fail(
				    mri_kafka_err(e), "%s",
				    rd_kafka_topic_result_error_string(tr[i]));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	mri_producer_unlock_handle(env->prod);
	rd_kafka_NewTopic_destroy(nt);
	return rep;
}

static json_t *
admin__topics_create(const struct mri_admin_env *env, json_t *req)
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
		return admin__fail(MR_EINVAL,
				   "topics.create needs a valid \"topic\" "
				   "(1-249 of [a-zA-Z0-9._-])");
	if ((jp && !json_is_integer(jp)) || (jr && !json_is_integer(jr)) ||
	    partitions == 0 || partitions < -1 || replication == 0 ||
	    replication < -1)
		return admin__fail(MR_EINVAL,
				   "partitions and replication are positive "
				   "integers (or -1: the cluster's default)");
	if (cfg != NULL && !json_is_object(cfg))
		return admin__fail(MR_EINVAL, "config must be an object");

	if (env->emb != NULL) {
		if (cfg != NULL && json_object_size(cfg) > 0)
			return admin__fail(MR_ENOTSUP,
					   "the embedded cluster does not "
					   "support topic configuration");
		if ((rc = admin__metadata(env, &md, why, sizeof(why))) != MR_OK)
			return admin__fail(rc, "%s", why);
		exists = admin__find(md, name) != NULL;
		rd_kafka_metadata_destroy(md);
		if (exists)
			return admin__fail(MR_EEXIST,
					   "topic '%s' already exists", name);
		partitions  = partitions > 0 ? partitions : 4;
		replication = replication > 0 ? replication : 1;
		rc = mri_embedded_topic_create(env->emb, name, partitions,
					       replication);
		if (rc != MR_OK)
			return admin__fail(rc, "cannot create '%s'", name);
		applied = json_object();
	} else {
		applied = cfg != NULL ? json_copy(cfg) : json_object();
		if (applied == NULL)
			return admin__fail(MR_ENOMEM, "out of memory");
		rep = admin__topics_create_kafka(env, name, partitions,
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
admin__fault(const struct mri_admin_env *env, const char *op, json_t *req)
{
	json_t *jb     = json_object_get(req, "broker");
	int     broker = jb ? (int)json_integer_value(jb) : 1;

	if (!env->fault_injection)
		return admin__fail(MR_ENOTSUP,
				   "fault injection is off (start mailroomd "
				   "with fault_injection=true, for tests)");
	if (strcmp(op, "fault.producer_fatal") == 0) {
		int rc = mri_producer_inject_fatal(env->prod);
		if (rc != MR_OK)
			return admin__fail(rc, "cannot raise a fatal error");
		return json_pack("{s:b}", "ok", 1);
	}
	if (env->emb == NULL)
		return admin__fail(MR_ENOTSUP,
				   "%s needs the embedded cluster; on real "
				   "Kafka, stop the broker process",
				   op);
	if (strcmp(op, "fault.broker_down") == 0)
		mri_embedded_broker_set_down(env->emb, broker, true);
	else if (strcmp(op, "fault.broker_up") == 0)
		mri_embedded_broker_set_down(env->emb, broker, false);
	else if (strcmp(op, "fault.broker_rtt") == 0)
		mri_embedded_broker_set_rtt(
		    env->emb, broker,
		    (int)json_integer_value(json_object_get(req, "rtt_ms")));
	else
		return admin__fail(MR_EUNKNOWNOP, "unknown operation '%s'", op);
	return json_pack("{s:b}", "ok", 1);
}

json_t *
mri_admin_run(const struct mri_admin_env *env, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));

	if (op == NULL)
		return admin__fail(MR_EINVAL, "the request needs \"op\"");
	if (strcmp(op, "topics.list") == 0)
		return admin__topics_list(env);
	if (strcmp(op, "topics.describe") == 0)
		return admin__topics_describe(env, req);
	if (strcmp(op, "topics.create") == 0)
		return admin__topics_create(env, req);
	if (strncmp(op, "fault.", 6) == 0)
		return admin__fault(env, op, req);
	return admin__fail(MR_EUNKNOWNOP, "unknown operation '%s'", op);
}
