/*
 * Addresses (include/mailroom/router.h): a local name is cast to or called
 * with the actor runtime; topic/key is published through the client, and
 * a remote call waits in the router's table of calls, keyed by its
 * correlation id, for the reply that the router's consumer thread (an
 * exclusive subscription of a group of its own to the reply topic, from
 * its end) finds there. Built on the public client and actor APIs.
 */
#include "mailroom/router.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/uuid7.h"
#include "mailroom/consumer.h"
#include "mirror_internal.h"
#include "mirror_state.h"

#define ROUTER__READY_MS 30000
#define ROUTER__PROBE_MS 1000 /* a probe published again after */
#define ROUTER__TOPIC_MAX 249
#define ROUTER__RETENTION "3600000" /* a reply topic made here: 1 hour */

/* A remote call waiting for its reply. */
struct router__call {
	struct router__call *next;
	char                 corr[MRI_UUID_STRLEN + 1];
	bool                 done;
	int                  err;
	void                *reply;
	size_t               reply_len;
};

struct mr_router {
	mr_system           *sys;
	mr_client           *c;
	char                 topic[ROUTER__TOPIC_MAX + 1]; /* replies */
	char                 id[MRI_UUID_STRLEN + 1];
	char                 reply_to[ROUTER__TOPIC_MAX + MRI_UUID_STRLEN + 2];
	char                 probe[MRI_UUID_STRLEN + 1];
	mr_consumer         *s;
	pthread_t            th;
	bool                 running;
	volatile int         stop;
	pthread_mutex_t      lock;
	pthread_cond_t       cv;
	struct router__call *calls;
	bool                 probed;
	int                  ended; /* the consumer's error once it ended */
};

/* The reply consumer's handler: a reply (or the probe) for this router is
 * handed to its caller; anything else is someone else's. Always acked. */
static int
router__reply(void *arg, const mr_delivery *d)
{
	mr_router           *r = arg;
	struct router__call *c;
	char                 corr[MRI_UUID_STRLEN + 1], st[32];
	size_t               idl = strlen(r->id);

	if (!d->has_key || d->key_len != idl || memcmp(d->key, r->id, idl) ||
	    mri_mirror_header(d, "mr_correlation_id", corr, sizeof(corr)) ==
		NULL)
		return MR_OK;
	pthread_mutex_lock(&r->lock);
	if (strcmp(corr, r->probe) == 0)
		r->probed = true;
	for (c = r->calls; c != NULL; c = c->next)
		if (!c->done && strcmp(c->corr, corr) == 0)
			break;
	if (c != NULL) {
		c->done = true;
		c->err  = mri_mirror_header(d, "mr_status", st, sizeof(st))
			      ? mri_mirror_err_code(st)
			      : MR_OK;
		if (c->err == MR_OK && d->payload_len > 0 &&
		    (c->reply = malloc(d->payload_len)) != NULL) {
			memcpy(c->reply, d->payload, d->payload_len);
			c->reply_len = d->payload_len;
		} else if (c->err == MR_OK && d->payload_len > 0) {
			c->err = MR_ENOMEM;
		}
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	return MR_OK;
}

static void *
router__main(void *arg)
{
	mr_router *r  = arg;
	int        rc = mr_consume_run(r->s, 1, router__reply, r, &r->stop, 0);

	if (rc != MR_OK)
		fprintf(stderr,
			"mailroom: router %s: its replies' consumer ended: %s: "
			"%s\n",
			r->id, mr_err_name(rc), mr_client_last_error());
	pthread_mutex_lock(&r->lock);
	r->ended = rc != MR_OK ? rc : MR_ECLOSED;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* The reply topic: there, or made (an hour of retention where the
 * cluster takes topic settings). */
static int
router__topic(mr_router *r)
{
	json_t *rep;
	char    why[256];
	int     rc;

	rc = mri_mirror_admin(r->c,
			      json_pack("{s:s, s:s}", "op", "topics.describe",
					"topic", r->topic),
			      &rep, why, sizeof(why));
	if (rc == MR_ENOENT) {
		rc = mri_mirror_admin(
		    r->c,
		    json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "op",
			      "topics.create", "topic", r->topic,
			      "partitions", -1, "replication", -1, "config",
			      "retention.ms", ROUTER__RETENTION),
		    &rep, why, sizeof(why));
		if (rc == MR_ENOTSUP) // the embedded cluster: no settings
			rc = mri_mirror_admin(
			    r->c,
			    json_pack("{s:s, s:s, s:i, s:i}", "op",
				      "topics.create", "topic", r->topic,
				      "partitions", -1, "replication", -1),
			    &rep, why, sizeof(why));
		if (rc == MR_EEXIST)
			return MR_OK;
	}
	if (rc == MR_OK)
		json_decref(rep);
	else
		fprintf(stderr, "mailroom: router: reply topic %s: %s\n",
			r->topic, why);
	return rc;
}

/* Publish \p len bytes of \p data of \p type to \p topic, key \p key; a
 * call's when \p corr is not NULL. */
static int
router__publish(mr_router *r, const char *topic, const char *key,
		uint32_t type, const void *data, size_t len, const char *corr)
{
	char       t[16];
	mr_header  h = {"mr_type", t, 0};
	mr_message m = {.topic          = topic,
			.key            = key,
			.key_len        = strlen(key),
			.payload        = data,
			.payload_len    = len,
			.reply_to       = corr != NULL ? r->reply_to : NULL,
			.correlation_id = corr,
			.headers        = &h,
			.header_count   = 1};
	mr_ack     ack;

	h.value_len = (size_t)snprintf(t, sizeof(t), "%u", type);
	return mr_publish(r->c, &m, &ack);
}

/* Wait (bounded) for the probe to come back through the reply topic. */
static int
router__ready(mr_router *r, int timeout_ms)
{
	uint64_t deadline = mri_deadline_in((uint64_t)timeout_ms);
	int      rc;

	mri_uuid7_string(r->probe);
	for (;;) {
		uint64_t next = mri_deadline_in(ROUTER__PROBE_MS);

		rc = router__publish(r, r->topic, r->id, 0, NULL, 0,
				     r->probe);
		if (rc != MR_OK)
			return rc;
		pthread_mutex_lock(&r->lock);
		while (!r->probed && !r->ended &&
		       mri_deadline_left(next) > 0 &&
		       mri_deadline_left(deadline) > 0)
			mri_cond_wait_until(&r->cv, &r->lock,
					    next < deadline ? next : deadline);
		rc = r->probed ? MR_OK : r->ended ? r->ended : MR_ETIMEDOUT;
		pthread_mutex_unlock(&r->lock);
		if (rc != MR_OK && rc != MR_ETIMEDOUT)
			return rc;
		if (rc == MR_OK || mri_deadline_left(deadline) == 0)
			return rc;
	}
}

int
mr_router_new(mr_router **out, mr_system *sys, mr_client *c,
	      const mr_router_opts *opts)
{
	mr_router_opts    o = opts != NULL ? *opts : (mr_router_opts){0};
	mr_subscribe_opts so = {.order        = MR_ORDER_UNORDERED,
				.exclusive    = 1,
				.start_latest = 1,
				.no_journal   = 1};
	char              group[MRI_UUID_STRLEN + 32];
	const char       *topics[1];
	mr_router        *r;
	int               rc;

	if (out == NULL || sys == NULL || c == NULL || o.ready_timeout_ms < 0 ||
	    (o.reply_topic != NULL &&
	     (*o.reply_topic == '\0' ||
	      strlen(o.reply_topic) > ROUTER__TOPIC_MAX)))
		return MR_EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return MR_ENOMEM;
	r->sys = sys;
	r->c   = c;
	snprintf(r->topic, sizeof(r->topic), "%s",
		 o.reply_topic ? o.reply_topic : MR_REPLY_TOPIC);
	mri_uuid7_string(r->id);
	snprintf(r->reply_to, sizeof(r->reply_to), "%s/%s", r->topic, r->id);
	snprintf(group, sizeof(group), "mailroom.router.%s", r->id);
	topics[0] = r->topic;
	pthread_mutex_init(&r->lock, NULL);
	mri_cond_init(&r->cv);
	if ((rc = router__topic(r)) != MR_OK ||
	    (rc = mr_subscribe(c, group, topics, 1, &so, &r->s)) != MR_OK)
		goto fail;
	if (pthread_create(&r->th, NULL, router__main, r) != 0) {
		rc = MR_ENOMEM;
		goto fail;
	}
	r->running = true;
	rc         = router__ready(r, o.ready_timeout_ms ? o.ready_timeout_ms
							 : ROUTER__READY_MS);
	if (rc != MR_OK)
		goto fail;
	*out = r;
	return MR_OK;
fail:
	mr_router_free(r);
	return rc;
}

const char *
mr_router_id(const mr_router *r)
{
	return r->id;
}

/* Split \p addr at its first slash into \p topic and *key. @returns false
 * when it has no slash (a name); *bad when a side is empty or too long. */
static bool
router__remote(const char *addr, char *topic, const char **key, bool *bad)
{
	const char *slash = strchr(addr, '/');

	*bad = false;
	if (slash == NULL)
		return false;
	*key = slash + 1;
	if (slash == addr || **key == '\0' ||
	    (size_t)(slash - addr) > ROUTER__TOPIC_MAX)
		*bad = true;
	else
		snprintf(topic, ROUTER__TOPIC_MAX + 1, "%.*s",
			 (int)(slash - addr), addr);
	return true;
}

int
mr_send_to(mr_router *r, const char *addr, uint32_t type, const void *data,
	   size_t len)
{
	char        topic[ROUTER__TOPIC_MAX + 1];
	const char *key;
	bool        bad;
	mr_pid      pid;

	if (r == NULL || addr == NULL || *addr == '\0')
		return MR_EINVAL;
	if (router__remote(addr, topic, &key, &bad))
		return bad ? MR_EINVAL
			   : router__publish(r, topic, key, type, data, len,
					     NULL);
	if ((pid = mr_whereis(r->sys, addr)) == 0)
		return MR_ENOENT;
	return mr_cast(r->sys, pid, type, data, len);
}

int
mr_call_to(mr_router *r, const char *addr, uint32_t type, const void *data,
	   size_t len, int timeout_ms, void **reply, size_t *reply_len)
{
	char                 topic[ROUTER__TOPIC_MAX + 1];
	const char          *key;
	bool                 bad;
	struct router__call  c = {0}, **pp;
	uint64_t             deadline;
	mr_pid               pid;
	int                  rc;

	if (reply != NULL)
		*reply = NULL;
	if (reply_len != NULL)
		*reply_len = 0;
	if (r == NULL || addr == NULL || *addr == '\0' || timeout_ms <= 0)
		return MR_EINVAL;
	if (!router__remote(addr, topic, &key, &bad)) {
		if ((pid = mr_whereis(r->sys, addr)) == 0)
			return MR_ENOENT;
		return mr_call(r->sys, pid, type, data, len, timeout_ms, reply,
			       reply_len);
	}
	if (bad)
		return MR_EINVAL;
	deadline = mri_deadline_in((uint64_t)timeout_ms);
	mri_uuid7_string(c.corr);
	pthread_mutex_lock(&r->lock);
	c.next   = r->calls;
	r->calls = &c;
	pthread_mutex_unlock(&r->lock);
	rc = router__publish(r, topic, key, type, data, len, c.corr);
	pthread_mutex_lock(&r->lock);
	while (rc == MR_OK && !c.done && !r->ended &&
	       mri_cond_wait_until(&r->cv, &r->lock, deadline) == 0)
		;
	if (rc == MR_OK && !c.done && r->ended)
		rc = r->ended; // no reply can come any more
	for (pp = &r->calls; *pp != &c; pp = &(*pp)->next)
		;
	*pp = c.next;
	pthread_mutex_unlock(&r->lock);
	if (rc == MR_OK)
		rc = c.done ? c.err : MR_ETIMEDOUT;
	if (rc == MR_OK && reply != NULL) {
		*reply  = c.reply;
		c.reply = NULL;
	}
	if (rc == MR_OK && reply_len != NULL)
		*reply_len = c.reply_len;
	free(c.reply);
	return rc;
}

void
mr_router_free(mr_router *r)
{
	if (r == NULL)
		return;
	if (r->running) {
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
		pthread_join(r->th, NULL);
	}
	mr_consumer_free(r->s);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	free(r);
}
