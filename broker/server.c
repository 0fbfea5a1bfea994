#include "server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "admin.h"
#include "bridge/producer.h"
#include "config.h"
#include "consume.h"
#include "core/log.h"
#include "embedded.h"
#include "mailroom/error.h"
#include "mailroom/version.h"
#include "proto/consume.h"
#include "proto/frame.h"
#include "server_internal.h"

// How long replies already handed to nng get to reach the wire at shutdown.
#define SRV__LINGER_MS 200
// Frames up to this size are always read, and refused with a reply.
#define SRV__RECV_FLOOR (64u << 20)

static void srv__recv(struct srv_ctx *c);
static int  srv__split_urls(struct mri_server *s, const char *list);

uint64_t
srv__mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

long long
srv__wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void
srv__request_free(struct srv_ctx *c)
{
	struct srv_topic *t, *n;

	for (uint32_t i = 0; c->slots && i < c->count; i++)
		if (c->slots[i].pm.hdrs)
			rd_kafka_headers_destroy(c->slots[i].pm.hdrs);
	free(c->views);
	for (t = c->topics; t != NULL; t = n) {
		n = t->next;
		free(t);
	}
	if (c->req)
		nng_msg_free(c->req);
	c->views  = NULL;
	c->topics = NULL;
	c->req    = NULL;
	c->count  = 0;
}

/* Send c->out as the reply; the request is finished. */
void
srv__send(struct srv_ctx *c)
{
	nng_msg *m;

	srv__request_free(c);
	if (c->out.len > 3 && c->out.data[3] == MRI_OP_ERROR)
		atomic_fetch_add(&c->s->n_refused, 1);
	if (c->out.err || nng_msg_alloc(&m, c->out.len) != 0) {
		// Out of memory: answer with the smallest frame we can.
		mri_error_encode(&c->out, MR_ENOMEM,
				 "mailroomd is out of memory");
		if (nng_msg_alloc(&m, c->out.len) != 0) {
			atomic_fetch_sub(&c->s->busy, 1);
			srv__recv(c);
			return;
		}
	}
	memcpy(nng_msg_body(m), c->out.data, c->out.len);
	c->state = SRV_SEND;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

void
srv__reply_error(struct srv_ctx *c, int code, const char *why)
{
	char msg[MRI_ERRMSG_MAX];

	snprintf(msg, sizeof(msg), "%s: %s", mr_err_name(code), why);
	mri_error_encode(&c->out, (uint16_t)code, msg);
	srv__send(c);
}

static void
srv__reply_json(struct srv_ctx *c, uint8_t op, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);

	if (text == NULL) {
		srv__reply_error(c, MR_ENOMEM, "cannot encode the reply");
		return;
	}
	mri_frame_begin(&c->out, op);
	mri_wbuf_put(&c->out, text, strlen(text));
	mri_frame_end(&c->out);
	free(text);
	srv__send(c);
}
/* ---- STATUS and ADMIN ------------------------------------------------- */

static json_t *
srv__status(struct mri_server *s)
{
	struct mri_producer_stats ps;
	struct mri_dedupe_stats   ds = {0};
	json_t                   *st;
	json_t                   *listeners = json_array();
	json_t                   *kafka;

	mri_producer_stats(s->prod, &ps);
	if (s->dedupe) {
		pthread_mutex_lock(&s->dlock);
		mri_dedupe_stats(s->dedupe, &ds);
		pthread_mutex_unlock(&s->dlock);
	}
	for (size_t i = 0; i < s->nurls; i++)
		json_array_append_new(listeners, json_string(s->urls[i]));
	kafka = json_pack("{s:s, s:b}", "bootstrap", s->bootstrap, "embedded",
			  s->emb != NULL);
	if (s->emb != NULL)
		json_object_set_new(
		    kafka, "warning",
		    json_string("embedded in-memory Kafka (librdkafka's mock "
				"cluster), for development only: nothing "
				"survives a restart, and each partition keeps "
				"only about its last 5 MB, silently dropping "
				"older records"));
	st = json_pack(
	    "{s:s, s:i, s:o, s:o, s:I, s:i, s:{s:I, s:I, s:I, s:I, s:I}, "
	    "s:{s:I, s:I, s:I, s:i}, s:{s:b, s:I, s:I, s:I}}",
	    "version", MR_VERSION_STRING, "protocol", MRI_PROTO_VERSION,
	    "kafka", kafka, "listeners", listeners, "uptime_s",
	    (json_int_t)((srv__mono_ms() - (uint64_t)s->started_ms) / 1000),
	    "inflight_requests", atomic_load(&s->busy), "publish", "requests",
	    (json_int_t)atomic_load(&s->n_requests), "confirmed",
	    (json_int_t)atomic_load(&s->n_confirmed), "failed",
	    (json_int_t)atomic_load(&s->n_failed), "duplicates",
	    (json_int_t)atomic_load(&s->n_duplicates), "refused_requests",
	    (json_int_t)atomic_load(&s->n_refused), "producer", "confirmed",
	    (json_int_t)ps.confirmed, "recreations",
	    (json_int_t)ps.recreations, "resent", (json_int_t)ps.resent,
	    "outq", ps.outq, "dedupe", "enabled", s->dedupe != NULL,
	    "window_ms", (json_int_t)s->dedupe_window_ms, "entries",
	    (json_int_t)ds.entries, "evicted_early",
	    (json_int_t)ds.evicted_early);
	if (st != NULL) {
		struct mri_order_stats os;

		mri_order_stats(s->order, &os);
		json_object_set_new(
		    st, "order",
		    json_pack("{s:I, s:I, s:I}", "streams",
			      (json_int_t)os.streams, "waiting",
			      (json_int_t)os.parked, "refused",
			      (json_int_t)os.expired));
	}
	if (st != NULL && s->consume != NULL) {
		size_t subs, sessions;

		mri_consume_counts(s->consume, &subs, &sessions);
		json_object_set_new(st, "consume",
				    json_pack("{s:I, s:I}", "subscriptions",
					      (json_int_t)subs, "sessions",
					      (json_int_t)sessions));
	}
	return st;
}

struct srv_admin_job {
	struct srv_ctx *c;
	json_t         *req;
};

static void *
srv__admin_thread(void *arg)
{
	struct srv_admin_job *job = arg;
	struct srv_ctx       *c   = job->c;
	struct mri_server    *s   = c->s;
	struct mri_admin_env  env = {s->prod, s->emb, s->fault_injection,
				     s->admin_timeout_ms};
	json_t               *rep = mri_admin_run(&env, job->req);

	json_decref(job->req);
	free(job);
	srv__reply_json(c, MRI_OP_ADMIN_REPLY, rep);
	json_decref(rep);
	atomic_fetch_sub(&s->admins, 1);
	return NULL;
}

static void
srv__admin(struct srv_ctx *c, const uint8_t *body, size_t len)
{
	struct srv_admin_job *job;
	json_error_t          jerr;
	json_t               *req;
	pthread_t             t;
	pthread_attr_t        attr;
	char                  msg[256];

	req = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL || !json_is_object(req)) {
		snprintf(msg, sizeof(msg),
			 "ADMIN body is not a JSON object (line %d column "
			 "%d: %s)",
			 jerr.line, jerr.column,
			 req ? "not an object" : jerr.text);
		json_decref(req);
		srv__reply_error(c, MR_EPROTO, msg);
		return;
	}
	if ((job = malloc(sizeof(*job))) == NULL) {
		json_decref(req);
		srv__reply_error(c, MR_ENOMEM, "cannot hold the request");
		return;
	}
	job->c   = c;
	job->req = req;
	atomic_fetch_add(&c->s->admins, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, srv__admin_thread, job) != 0) {
		atomic_fetch_sub(&c->s->admins, 1);
		json_decref(req);
		free(job);
		srv__reply_error(c, MR_ENOMEM, "cannot start an admin thread");
	}
	pthread_attr_destroy(&attr);
}

/* ---- the request loop ------------------------------------------------- */

/* The connection a request came on: consumer sessions belong to one. */
static uint32_t
srv__pipe(struct srv_ctx *c)
{
	return (uint32_t)nng_pipe_id(nng_msg_get_pipe(c->req));
}

/* A FETCH's or SETTLE's reply, encoded in \p m by broker/consume.c (NULL:
 * out of memory), sent as it is, on the thread that finished it. */
static void
srv__fetch_reply(void *arg, nng_msg *m)
{
	struct srv_ctx *c = arg;

	if (m == NULL) {
		srv__reply_error(c, MR_ENOMEM, "mailroomd is out of memory");
		return;
	}
	srv__request_free(c);
	if (nng_msg_len(m) > 3 &&
	    ((const uint8_t *)nng_msg_body(m))[3] == MRI_OP_ERROR)
		atomic_fetch_add(&c->s->n_refused, 1);
	c->state = SRV_SEND;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

static void
srv__dispatch(struct srv_ctx *c)
{
	struct mri_server   *s    = c->s;
	const uint8_t       *data = nng_msg_body(c->req);
	size_t               len  = nng_msg_len(c->req);
	struct mri_frame_hdr h;
	const char          *why;
	int                  rc;
	json_t              *st;

	if (len > s->max_frame) {
		char msg[200];

		snprintf(msg, sizeof(msg),
			 "frame of %zu bytes larger than max_frame_bytes "
			 "(%zu): send fewer messages per request, or raise "
			 "mailroomd's max_frame_bytes",
			 len, s->max_frame);
		srv__reply_error(c, MR_ETOOBIG, msg);
		return;
	}
	if ((rc = mri_frame_parse_hdr(data, len, &h, &why)) != MR_OK) {
		srv__reply_error(c, rc, why);
		return;
	}
	if (h.flags != 0 && h.op != MRI_OP_PUBLISH) {
		srv__reply_error(c, MR_EPROTO, "unknown frame flags");
		return;
	}
	// Acks are still taken while draining: the work behind them is done.
	if (atomic_load(&s->draining) && h.op != MRI_OP_SETTLE) {
		srv__reply_error(c, MR_ESHUTDOWN,
				 "mailroomd is draining; send this to another "
				 "instance or retry after it restarts");
		return;
	}
	switch (h.op) {
	case MRI_OP_PUBLISH:
		srv__publish(c, data + MRI_FRAME_HDR_LEN, h.body_len, h.flags);
		break;
	case MRI_OP_STATUS:
		st = srv__status(s);
		srv__reply_json(c, MRI_OP_STATUS_REPLY, st);
		json_decref(st);
		break;
	case MRI_OP_ADMIN:
		srv__admin(c, data + MRI_FRAME_HDR_LEN, h.body_len);
		break;
	case MRI_OP_SUBSCRIBE:
		mri_consume_subscribe(s->consume, srv__pipe(c),
				      data + MRI_FRAME_HDR_LEN, h.body_len,
				      &c->out);
		srv__send(c);
		break;
	case MRI_OP_FETCH:
		if (mri_consume_fetch(s->consume, srv__pipe(c),
				      data + MRI_FRAME_HDR_LEN,
				      h.body_len, srv__fetch_reply, c,
				      &c->out) != MR_OK)
			srv__send(c);
		break;
	case MRI_OP_SETTLE:
		if (mri_consume_settle(s->consume, srv__pipe(c),
				       data + MRI_FRAME_HDR_LEN,
				       h.body_len, srv__fetch_reply, c,
				       &c->out) != MR_OK)
			srv__send(c);
		break;
	case MRI_OP_UNSUBSCRIBE:
		mri_consume_unsubscribe(s->consume, srv__pipe(c),
					data + MRI_FRAME_HDR_LEN,
					h.body_len, &c->out);
		srv__send(c);
		break;
	default:
		srv__reply_error(c, MR_EUNKNOWNOP, "unknown operation code");
		break;
	}
}

static void
srv__recv(struct srv_ctx *c)
{
	c->state = SRV_RECV;
	nng_ctx_recv(c->ctx, c->aio);
}

static void
srv__aio_cb(void *arg)
{
	struct srv_ctx *c = arg;
	int             rv = nng_aio_result(c->aio);

	switch (c->state) {
	case SRV_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		if (rv != 0) {
			srv__recv(c);
			return;
		}
		c->req   = nng_aio_get_msg(c->aio);
		c->state = SRV_WORK;
		atomic_fetch_add(&c->s->busy, 1);
		srv__dispatch(c);
		return;
	case SRV_SEND:
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		atomic_fetch_sub(&c->s->busy, 1);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		srv__recv(c);
		return;
	case SRV_WORK:
		return;
	}
}

/* The consume side: a template of the consumers' librdkafka settings. */
static int
srv__consume_new(struct mri_server *s, const struct mri_config *cfg,
		 const char *bootstrap, char *errstr, size_t errstr_size)
{
	struct mri_consume_conf cc = {
	    .ack_deadline_ms = (uint64_t)cfg->ack_deadline_ms,
	    .credit          = (uint32_t)cfg->consumer_credit,
	    .max_buffered    = (uint32_t)cfg->consumer_max_buffered,
	    .revoke_wait_ms  = (uint32_t)cfg->consumer_revoke_wait_ms,
	    .session_timeout_ms = (uint32_t)cfg->consumer_session_timeout_ms,
	    .max_frame       = s->max_frame,
	    .journal         = cfg->consumer_journal,
	    .dedupe_window_ms = (uint64_t)cfg->consumer_dedupe_window_ms,
	    .dedupe_max_entries = (size_t)cfg->consumer_dedupe_max_entries,
	    .embedded        = s->emb != NULL,
	    .idle_close_ms   = (uint64_t)cfg->consumer_idle_close_ms,
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int              rc;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
			      errstr_size) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "client.id", "mailroomd", errstr,
			      errstr_size) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		return MR_ECONFIG;
	}
	for (size_t i = 0; i < cfg->rdk_count; i++)
		if (rd_kafka_conf_set(conf, cfg->rdk_names[i],
				      cfg->rdk_values[i], errstr,
				      errstr_size) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return MR_ECONFIG;
		}
	rc = mri_consume_new(&s->consume, conf, &cc);
	rd_kafka_conf_destroy(conf);
	if (rc != MR_OK)
		snprintf(errstr, errstr_size, "out of memory");
	return rc;
}

int
mri_server_new(struct mri_server **out, const struct mri_config *cfg,
	       const char *bootstrap, struct mri_embedded *emb, char *errstr,
	       size_t errstr_size)
{
	struct mri_server *s;
	rd_kafka_conf_t   *conf;
	char               buf[64];
	int                rc;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MR_ENOMEM;
	pthread_mutex_init(&s->dlock, NULL);
	pthread_mutex_init(&s->cfg_lock, NULL);
	s->emb              = emb;
	s->bootstrap        = strdup(bootstrap);
	s->max_frame        = (size_t)cfg->max_frame_bytes;
	s->fault_injection  = cfg->fault_injection;
	s->admin_timeout_ms = 15000;
	s->started_ms       = (int64_t)srv__mono_ms();
	s->dedupe_window_ms = (uint64_t)cfg->dedupe_window_ms;
	s->nctx             = (size_t)cfg->max_inflight;
	mri_server_reload(s, cfg);
	if (srv__split_urls(s, cfg->listen) != MR_OK) {
		mri_server_free(s);
		return MR_ENOMEM;
	}
	s->order_wait_ms = (uint64_t)cfg->order_wait_ms;
	if (mri_order_new(&s->order, SRV__MAX_STREAMS, SRV__STREAM_IDLE_MS) !=
		MR_OK ||
	    nng_aio_alloc(&s->sweep, srv__sweep_cb, s) != 0) {
		mri_server_free(s);
		return MR_ENOMEM;
	}
	if (cfg->dedupe_window_ms > 0 &&
	    mri_dedupe_new(&s->dedupe, (uint64_t)cfg->dedupe_window_ms,
			   (size_t)cfg->dedupe_max_entries) != MR_OK) {
		mri_server_free(s);
		return MR_ENOMEM;
	}

	if ((rc = srv__consume_new(s, cfg, bootstrap, errstr, errstr_size)) !=
	    MR_OK) {
		mri_server_free(s);
		return rc;
	}

	conf = rd_kafka_conf_new();
#define SRV_SET(k, v)                                                         \
	if (rd_kafka_conf_set(conf, k, v, errstr, errstr_size) !=             \
	    RD_KAFKA_CONF_OK)                                                 \
		goto conf_fail;
	SRV_SET("bootstrap.servers", bootstrap);
	SRV_SET("client.id", "mailroomd");
	snprintf(buf, sizeof(buf), "%lld", cfg->linger_ms);
	SRV_SET("linger.ms", buf);
	snprintf(buf, sizeof(buf), "%lld", cfg->message_timeout_ms);
	SRV_SET("message.timeout.ms", buf);
	snprintf(buf, sizeof(buf), "%lld", cfg->message_max_bytes);
	SRV_SET("message.max.bytes", buf);
	SRV_SET("queue.buffering.max.messages", "0");
	SRV_SET("queue.buffering.max.kbytes", "2097151");
	SRV_SET("topic.metadata.propagation.max.ms", "5000");
	for (size_t i = 0; i < cfg->rdk_count; i++)
		SRV_SET(cfg->rdk_names[i], cfg->rdk_values[i]);
#undef SRV_SET
	rc = mri_producer_new(&s->prod, conf, srv__on_report, s, errstr,
			      errstr_size);
	if (rc != MR_OK) {
		rd_kafka_conf_destroy(conf);
		mri_server_free(s);
		return rc;
	}
	if ((rc = nng_rep0_open(&s->sock)) != 0) {
		snprintf(errstr, errstr_size, "nng: %s", nng_strerror(rc));
		mri_server_free(s);
		return MR_ETRANSPORT;
	}
	// Frames up to twice the limit (at least SRV__RECV_FLOOR) are read
	// and refused with a reply; beyond that nng drops the connection
	// before reading it all. The floor keeps that drop rare: with nng
	// 1.5.2 a burst of such drops (a client resending an oversized frame
	// on every reconnect) has left the socket serving nobody, under
	// AddressSanitizer's timing; not understood yet.
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
			    s->max_frame * 2 > SRV__RECV_FLOOR
				? s->max_frame * 2
				: SRV__RECV_FLOOR);
	*out = s;
	return MR_OK;

conf_fail:
	rd_kafka_conf_destroy(conf);
	mri_server_free(s);
	return MR_ECONFIG;
}

static int
srv__split_urls(struct mri_server *s, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (copy == NULL)
		return MR_ENOMEM;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	     tok = strtok_r(NULL, ", ", &save)) {
		char **u = realloc(s->urls, (s->nurls + 1) * sizeof(*u));
		if (u == NULL || (u[s->nurls] = strdup(tok)) == NULL) {
			free(copy);
			return MR_ENOMEM;
		}
		s->urls = u;
		s->nurls++;
	}
	free(copy);
	return MR_OK;
}

int
mri_server_start(struct mri_server *s, char *errstr, size_t errstr_size)
{
	int rv;

	if (s->nurls == 0) {
		snprintf(errstr, errstr_size, "listen: no URL to listen on");
		return MR_ECONFIG;
	}
	s->listeners = calloc(s->nurls, sizeof(*s->listeners));
	s->ctxs      = calloc(s->nctx, sizeof(*s->ctxs));
	if (s->listeners == NULL || s->ctxs == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < s->nctx; i++) {
		struct srv_ctx *c = &s->ctxs[i];

		c->s = s;
		mri_wbuf_init(&c->out);
		if ((rv = nng_aio_alloc(&c->aio, srv__aio_cb, c)) != 0 ||
		    (rv = nng_ctx_open(&c->ctx, s->sock)) != 0) {
			snprintf(errstr, errstr_size, "nng: %s",
				 nng_strerror(rv));
			return MR_ETRANSPORT;
		}
	}
	for (size_t i = 0; i < s->nurls; i++) {
		rv = nng_listen(s->sock, s->urls[i], &s->listeners[i], 0);
		if (rv != 0) {
			snprintf(errstr, errstr_size, "cannot listen on %s: %s",
				 s->urls[i], nng_strerror(rv));
			return MR_ETRANSPORT;
		}
		mri_notice("component=server msg=\"listening\" url=%s",
			   s->urls[i]);
	}
	for (size_t i = 0; i < s->nctx; i++)
		srv__recv(&s->ctxs[i]);
	nng_sleep_aio(SRV__SWEEP_MS, s->sweep);
	return MR_OK;
}

void
mri_server_reload(struct mri_server *s, const struct mri_config *cfg)
{
	pthread_mutex_lock(&s->cfg_lock);
	snprintf(s->ce_source, sizeof(s->ce_source), "%s", cfg->ce_source);
	snprintf(s->ce_type, sizeof(s->ce_type), "%s", cfg->ce_type);
	pthread_mutex_unlock(&s->cfg_lock);
}

static void
srv__wait_idle(struct mri_server *s, int timeout_ms)
{
	uint64_t deadline = srv__mono_ms() + (uint64_t)timeout_ms;

	while ((atomic_load(&s->busy) > 0 || atomic_load(&s->admins) > 0) &&
	       srv__mono_ms() < deadline)
		usleep(2000);
}

void
mri_server_drain(struct mri_server *s, int timeout_ms)
{
	// Closing a listener would close the connections it accepted, and
	// with them the replies still owed: while draining, new requests are
	// answered MR_ESHUTDOWN; the listeners close once all is answered.
	// (No nng_pipe_notify: in nng 1.5.2 a REM_POST callback made the
	// socket stop serving after a connection dropped for an oversized
	// frame, under AddressSanitizer's timing.)
	atomic_store(&s->draining, 1);
	// Requests waiting for their turn wait for requests that will now be
	// refused: refuse them too.
	srv__refuse_parked(mri_order_expire(s->order, srv__mono_ms(), 0),
			   MR_ESHUTDOWN, SRV__DRAINING_WHY);
	// Fetches waiting for messages are answered now, empty.
	if (s->consume != NULL)
		mri_consume_drain(s->consume);
	mri_notice("component=server msg=\"draining: %d requests in "
		   "flight\"",
		   atomic_load(&s->busy));
	srv__wait_idle(s, timeout_ms);
	if (atomic_load(&s->busy) > 0) {
		mri_warn("component=server msg=\"Kafka did not confirm "
			 "everything within %d ms; failing the rest back to "
			 "their publishers\"",
			 timeout_ms);
		mri_producer_purge(s->prod);
		srv__wait_idle(s, 5000);
	}
	// A reply handed to nng is queued, not yet written: give the
	// transports a moment before their connections close.
	usleep(SRV__LINGER_MS * 1000);
	for (size_t i = 0; s->listeners && i < s->nurls; i++)
		if (nng_listener_id(s->listeners[i]) > 0)
			nng_listener_close(s->listeners[i]);
}

void
mri_server_free(struct mri_server *s)
{
	if (s == NULL)
		return;
	// Consumers and the producer first: their last replies still reach
	// the contexts. Closing the consumers commits what was acked.
	mri_consume_free(s->consume);
	s->consume = NULL;
	atomic_store(&s->stopping, 1);
	if (s->sweep != NULL)
		nng_aio_stop(s->sweep);
	if (s->order != NULL)
		srv__refuse_parked(mri_order_expire(s->order, UINT64_MAX, 0),
				   MR_ESHUTDOWN, "mailroomd stopped");
	mri_producer_free(s->prod);
	if (nng_socket_id(s->sock) > 0)
		nng_close(s->sock);
	for (size_t i = 0; s->ctxs && i < s->nctx; i++) {
		struct srv_ctx *c = &s->ctxs[i];

		if (c->aio) {
			nng_aio_stop(c->aio);
			nng_aio_free(c->aio);
		}
		srv__request_free(c);
		mri_wbuf_fini(&c->out);
		free(c->slots);
		free(c->send);
		free(c->rcs);
		free(c->whys);
	}
	mri_dedupe_free(s->dedupe);
	if (s->sweep != NULL)
		nng_aio_free(s->sweep);
	mri_order_free(s->order);
	for (size_t i = 0; i < s->nurls; i++)
		free(s->urls[i]);
	free(s->urls);
	free(s->listeners);
	free(s->ctxs);
	free(s->bootstrap);
	pthread_mutex_destroy(&s->dlock);
	pthread_mutex_destroy(&s->cfg_lock);
	free(s);
}
