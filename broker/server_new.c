/*
 * Making a server from its configuration (broker/server.h): the publisher,
 * the consume side, the admin worker, backpressure and the lag monitor,
 * and the listeners' URLs. Serving it is broker/server.c's.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "admin.h"
#include "bridge/embedded.h"
#include "config.h"
#include "consume.h"
#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "metrics.h"
#include "server_internal.h"

// Each Kafka call of an admin operation.
#define SRV__ADMIN_TIMEOUT_MS 15000
// Frames up to this size are always read, and refused with a reply.
#define SRV__RECV_FLOOR (64u << 20)

static int srv__split_urls(struct mri_server *s, const char *list);

rd_kafka_conf_t *
srv__kafka_conf(const struct mri_config *cfg, const char *bootstrap,
		const char *client_id, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf;

	if ((conf = mri_kafka_conf_new(bootstrap, client_id, errstr,
				       errstr_size)) == NULL)
		return NULL;
	if (mri_kafka_set_all(conf, cfg->rdk_names, cfg->rdk_values,
			      cfg->rdk_count, errstr, errstr_size) != MR_OK) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
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
	    .memory_bytes    = (size_t)cfg->consumer_memory_mb << 20,
	    .fetch_wait_ms   = (uint32_t)cfg->consumer_fetch_wait_ms,
	    .journal_linger_ms = (uint32_t)cfg->consumer_journal_linger_ms,
	    .revoke_wait_ms  = (uint32_t)cfg->consumer_revoke_wait_ms,
	    .session_timeout_ms = (uint32_t)cfg->consumer_session_timeout_ms,
	    .max_frame       = s->max_frame,
	    .journal         = cfg->consumer_journal,
	    .dedupe_window_ms = (uint64_t)cfg->consumer_dedupe_window_ms,
	    .dedupe_max_entries = (size_t)cfg->consumer_dedupe_max_entries,
	    .embedded        = s->emb != NULL,
	    .idle_close_ms   = (uint64_t)cfg->consumer_idle_close_ms,
	    .pub             = s->pub,
	    .retry =
		{
		    .max_attempts =
			(uint32_t)cfg->consumer_retry_max_attempts,
		    .backoff_initial_ms =
			(uint64_t)cfg->consumer_retry_backoff_initial_ms,
		    .backoff_max_ms =
			(uint64_t)cfg->consumer_retry_backoff_max_ms,
		    .multiplier = cfg->consumer_retry_backoff_multiplier,
		    .jitter     = cfg->consumer_retry_backoff_jitter,
		},
	    .dlq =
		{
		    .breaker_max = (uint32_t)cfg->consumer_dlq_breaker_max,
		    .breaker_period_ms =
			(uint64_t)cfg->consumer_dlq_breaker_period_ms,
		    .breaker_cooldown_ms =
			(uint64_t)cfg->consumer_dlq_breaker_cooldown_ms,
		},
	};
	rd_kafka_conf_t *conf;
	int              rc;

	// The config checked it: 1 to MRI_SUBSCRIBE_DLQ_SUFFIX_MAX characters.
	snprintf(cc.dlq_suffix, sizeof(cc.dlq_suffix), "%s",
		 cfg->consumer_dlq_topic_suffix);

	if ((conf = srv__kafka_conf(cfg, bootstrap, "mailroomd", errstr,
				    errstr_size)) == NULL)
		return MR_ECONFIG;
	rc = mri_consume_new(&s->consume, conf, &cc);
	rd_kafka_conf_destroy(conf);
	if (rc != MR_OK)
		snprintf(errstr, errstr_size, "out of memory");
	return rc;
}

/* The publish side: the publisher, its producer's settings given as
 * plain values. */
static int
srv__publisher_new(struct mri_server *s, const struct mri_config *cfg,
		   const char *bootstrap, char *errstr, size_t errstr_size)
{
	struct mri_publisher_conf pc = {
	    .bootstrap          = bootstrap,
	    .client_id          = "mailroomd",
	    .linger_ms          = cfg->linger_ms,
	    .message_timeout_ms = cfg->message_timeout_ms,
	    .message_max_bytes  = cfg->message_max_bytes,
	    .rdk_names          = cfg->rdk_names,
	    .rdk_values         = cfg->rdk_values,
	    .rdk_count          = cfg->rdk_count,
	    .dedupe_window_ms   = (uint64_t)cfg->dedupe_window_ms,
	    .dedupe_max_entries = (size_t)cfg->dedupe_max_entries,
	    .ce_source          = cfg->ce_source,
	    .ce_type            = cfg->ce_type,
	    .envelope_lean      = strcmp(cfg->envelope, "lean") == 0,
	};
	int rc;

	rc = mri_publisher_new(&s->pub, &pc, errstr, errstr_size);
	if (rc == MR_OK)
		s->prod = mri_publisher_producer(s->pub);
	return rc;
}

/* consumers.resume's hook into the consume side (mri_admin_conf). */
static size_t
srv__resume(void *arg, const char *group, size_t *resumed)
{
	struct mri_server *s = arg;

	*resumed = 0;
	return s->consume != NULL ? mri_consume_resume(s->consume, group,
							resumed)
				  : 0;
}

/* fault.producer_fatal's hook into the producer (mri_admin_conf). */
static int
srv__inject_fatal(void *arg)
{
	return mri_producer_inject_fatal(arg);
}

/* The admin part: its own librdkafka handle, from the producer's
 * bootstrap, message.max.bytes and pass-through settings. */
static int
srv__admin_new(struct mri_server *s, const struct mri_config *cfg,
	       const char *bootstrap, char *errstr, size_t errstr_size)
{
	struct mri_admin_conf ac = {
	    .bootstrap         = bootstrap,
	    .rdk_names         = cfg->rdk_names,
	    .rdk_values        = cfg->rdk_values,
	    .rdk_count         = cfg->rdk_count,
	    .message_max_bytes = cfg->message_max_bytes,
	    .emb               = s->emb,
	    .fault_injection   = cfg->fault_injection,
	    .timeout_ms        = SRV__ADMIN_TIMEOUT_MS,
	    .inject_fatal      = srv__inject_fatal,
	    .inject_arg        = s->prod,
	    .resume            = srv__resume,
	    .resume_arg        = s,
	    .publisher         = s->pub,
	    .lag               = s->lag,
	    .bp                = s->bp,
	};

	return mri_admin_new(&s->admin, &ac, errstr, errstr_size);
}

int
mri_server_new(struct mri_server **out, const struct mri_config *cfg,
	       const char *bootstrap, struct mri_embedded *emb, char *errstr,
	       size_t errstr_size)
{
	struct mri_server *s;
	int                rc;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MR_ENOMEM;
	pthread_mutex_init(&s->idle_lock, NULL);
	mri_cond_init(&s->idle_cv);
	pthread_mutex_init(&s->sweep_lock, NULL);
	mri_cond_init(&s->sweep_cv);
	s->emb              = emb;
	s->bootstrap        = strdup(bootstrap);
	s->max_frame        = (size_t)cfg->max_frame_bytes;
	s->started_ms       = (int64_t)mri_mono_ms();
	s->nctx             = (size_t)cfg->max_inflight;
	s->want_inproc      = cfg->http_listen[0] != '\0';
	if (srv__split_urls(s, cfg->listen) != MR_OK) {
		mri_server_free(s);
		return MR_ENOMEM;
	}
	s->order_wait_ms = (uint64_t)cfg->order_wait_ms;
	if (mri_order_new(&s->order, SRV__MAX_STREAMS, SRV__STREAM_IDLE_MS) !=
		MR_OK ||
	    mri_metrics_new(&s->metrics) != MR_OK) {
		mri_server_free(s);
		return MR_ENOMEM;
	}

	// The publisher first: the consumers' dead-letter supervisors
	// publish through it.
	rc = srv__publisher_new(s, cfg, bootstrap, errstr, errstr_size);
	if (rc != MR_OK) {
		mri_server_free(s);
		return rc;
	}
	if ((rc = srv__consume_new(s, cfg, bootstrap, errstr, errstr_size)) !=
	    MR_OK) {
		mri_server_free(s);
		return rc;
	}
	// The lag monitor after the consume side (it asks the registry for
	// the groups served) and the gate (it feeds it), before the admin
	// (lag.list asks it).
	if ((rc = srv__bp_new(s, cfg, errstr, errstr_size)) != MR_OK ||
	    (rc = srv__lag_new(s, cfg, bootstrap, errstr, errstr_size)) !=
	    MR_OK) {
		mri_server_free(s);
		return rc;
	}
	if ((rc = srv__admin_new(s, cfg, bootstrap, errstr, errstr_size)) !=
	    MR_OK) {
		mri_server_free(s);
		return rc;
	}
	if ((rc = nng_rep0_open(&s->sock)) != 0) {
		snprintf(errstr, errstr_size, "nng: %s", nng_strerror(rc));
		mri_server_free(s);
		return MR_ETRANSPORT;
	}
	// Frames up to twice the limit (at least SRV__RECV_FLOOR) are read
	// and refused with a reply; beyond that nng (tcp and ipc alike) drops
	// the connection on the length in the frame's header, before it
	// reads or allocates the body. Such drops once left nng 1.5.2's
	// socket serving nobody: not the drops themselves but the clients'
	// reconnects, some closing during nng's handshake (nng issue #1518,
	// see broker/listeners.h, whose watchdog recovers from it). The floor
	// keeps the answer (MR_ETOOBIG) for frames up to 64 MiB.
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
			    s->max_frame * 2 > SRV__RECV_FLOOR
				? s->max_frame * 2
				: SRV__RECV_FLOOR);
	*out = s;
	return MR_OK;
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
