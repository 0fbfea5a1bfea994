/*
 * The status snapshot (broker/status.h): collected from the server's parts,
 * rendered as STATUS's JSON.
 */
#include "status.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "consume.h"
#include "core/clock.h"
#include "mailroom/version.h"
#include "server_internal.h"

#define STATUS__EMBEDDED_WARNING                                              \
	"embedded in-memory Kafka (librdkafka's mock cluster), for "          \
	"development only: nothing survives a restart, and each partition "   \
	"keeps only about its last 5 MB, silently dropping older records"

void
mri_server_status(struct mri_server *s, struct mri_status *st)
{
	struct mri_publisher_stats ps;
	struct mri_order_stats     os;

	memset(st, 0, sizeof(*st));
	mri_publisher_stats(s->pub, &ps);
	st->version         = MR_VERSION_STRING;
	st->protocol        = MRI_PROTO_VERSION;
	st->kafka.bootstrap = s->bootstrap;
	st->kafka.embedded  = s->emb != NULL;
	st->kafka.warning   = s->emb != NULL ? STATUS__EMBEDDED_WARNING : NULL;
	st->kafka.reachable = !ps.producer.down;
	st->kafka.unreachable_ms = ps.producer.down_ms;
	snprintf(st->kafka.error, sizeof(st->kafka.error), "%s",
		 ps.producer.down_why);
	st->listeners       = s->urls;
	st->nlisteners      = s->nurls;
	st->uptime_s = (mri_mono_ms() - (uint64_t)s->started_ms) / 1000;
	st->inflight_requests        = atomic_load(&s->busy);
	st->publish.requests         = atomic_load(&s->n_requests);
	st->publish.confirmed        = ps.confirmed;
	st->publish.failed           = ps.failed;
	st->publish.duplicates       = ps.duplicates;
	st->publish.refused_requests = atomic_load(&s->n_refused);
	st->producer.confirmed       = ps.producer.confirmed;
	st->producer.recreations     = ps.producer.recreations;
	st->producer.resent          = ps.producer.resent;
	st->producer.outq            = ps.producer.outq;
	st->dedupe.enabled           = ps.dedupe_enabled;
	st->dedupe.window_ms         = ps.dedupe_window_ms;
	st->dedupe.entries           = ps.dedupe.entries;
	st->dedupe.evicted_early     = ps.dedupe.evicted_early;
	mri_order_stats(s->order, &os);
	st->order.streams = os.streams;
	st->order.waiting = os.parked;
	st->order.refused = os.expired;
	if (s->consume != NULL) {
		st->has_consume = true;
		size_t n;

		mri_consume_counts(s->consume, &st->consume.subscriptions,
				   &st->consume.sessions);
		st->consume.joined = mri_consume_joined(
		    s->consume, &n, st->consume.waiting,
		    sizeof(st->consume.waiting));
		st->consume.joining = n - st->consume.joined;
		st->consume.nsubs = mri_consume_sub_stats(
		    s->consume, st->consume.subs, MRI_STATUS_SUBS_MAX);
		if (st->consume.nsubs > MRI_STATUS_SUBS_MAX)
			st->consume.nsubs = MRI_STATUS_SUBS_MAX;
	}
	if (s->lag != NULL) {
		st->has_lag         = true;
		st->lag_interval_ms = mri_lag_interval(s->lag);
		mri_lag_stats(s->lag, &st->lag);
	}
	if (s->bp != NULL) {
		st->has_bp = true;
		mri_bp_stats(s->bp, &st->bp);
	}
}

/* A subscription in the status: its group's counts and its supervisor's. */
static json_t *
status__sub(const struct mri_consume_sub_stats *s)
{
	const struct mri_dlq_stats *d = &s->dlq;
	json_t *dl = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I}", "breaker",
	    mri_dlq_breaker_name(d->breaker), "trips", (json_int_t)d->trips,
	    "failures", (json_int_t)d->failures, "quarantined",
	    (json_int_t)d->quarantined, "dlq_errors", (json_int_t)d->dlq_errors,
	    "pending", (json_int_t)d->pending);

	if (dl != NULL && d->trips > 0) {
		json_object_set_new(dl, "reason", json_string(d->reason));
		json_object_set_new(dl, "opened_ms",
				    json_integer((json_int_t)d->opened_ms));
	}
	if (dl != NULL && d->breaker == MRI_DLQ_OPEN)
		json_object_set_new(dl, "retry_ms",
				    json_integer((json_int_t)d->retry_ms));
	return json_pack(
	    "{s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:o*}",
	    "group", s->group, "mode", s->mode, "topics",
	    (json_int_t)s->ntopics, "sessions", (json_int_t)s->sessions,
	    "joined", s->g.joined, "partitions", (json_int_t)s->g.nparts,
	    "buffered",
	    (json_int_t)s->g.buffered, "inflight", (json_int_t)s->g.inflight,
	    "backoff", (json_int_t)s->g.backoff, "quarantining",
	    (json_int_t)s->g.quarantining, "acked", (json_int_t)s->g.acked,
	    "failed", (json_int_t)s->g.failed, "dead_letter", dl);
}

json_t *
mri_status_json(const struct mri_status *st)
{
	json_t *o, *listeners, *kafka;

	if ((listeners = json_array()) == NULL)
		return NULL;
	for (size_t i = 0; i < st->nlisteners; i++)
		json_array_append_new(listeners, json_string(st->listeners[i]));
	kafka = json_pack("{s:s, s:b, s:b}", "bootstrap", st->kafka.bootstrap,
			  "embedded", st->kafka.embedded, "reachable",
			  st->kafka.reachable);
	if (kafka != NULL && !st->kafka.reachable) {
		json_object_set_new(kafka, "unreachable_ms",
				    json_integer((json_int_t)
						     st->kafka.unreachable_ms));
		json_object_set_new(kafka, "error",
				    json_string(st->kafka.error));
	}
	if (kafka != NULL && st->kafka.warning != NULL)
		json_object_set_new(kafka, "warning",
				    json_string(st->kafka.warning));
	// json_pack's "o" takes the references, also when it fails.
	o = json_pack(
	    "{s:s, s:i, s:o, s:o, s:I, s:i, s:{s:I, s:I, s:I, s:I, s:I}, "
	    "s:{s:I, s:I, s:I, s:i}, s:{s:b, s:I, s:I, s:I}}",
	    "version", st->version, "protocol", st->protocol, "kafka", kafka,
	    "listeners", listeners, "uptime_s", (json_int_t)st->uptime_s,
	    "inflight_requests", st->inflight_requests, "publish", "requests",
	    (json_int_t)st->publish.requests, "confirmed",
	    (json_int_t)st->publish.confirmed, "failed",
	    (json_int_t)st->publish.failed, "duplicates",
	    (json_int_t)st->publish.duplicates, "refused_requests",
	    (json_int_t)st->publish.refused_requests, "producer", "confirmed",
	    (json_int_t)st->producer.confirmed, "recreations",
	    (json_int_t)st->producer.recreations, "resent",
	    (json_int_t)st->producer.resent, "outq", st->producer.outq,
	    "dedupe", "enabled", st->dedupe.enabled, "window_ms",
	    (json_int_t)st->dedupe.window_ms, "entries",
	    (json_int_t)st->dedupe.entries, "evicted_early",
	    (json_int_t)st->dedupe.evicted_early);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "order",
			    json_pack("{s:I, s:I, s:I}", "streams",
				      (json_int_t)st->order.streams, "waiting",
				      (json_int_t)st->order.waiting, "refused",
				      (json_int_t)st->order.refused));
	if (st->has_consume) {
		json_t *groups = json_array();

		for (size_t i = 0; groups != NULL && i < st->consume.nsubs;
		     i++)
			json_array_append_new(groups,
					      status__sub(&st->consume.subs[i]));
		json_object_set_new(
		    o, "consume",
		    json_pack("{s:I, s:I, s:I, s:I, s:s*, s:o*}",
			      "subscriptions",
			      (json_int_t)st->consume.subscriptions,
			      "sessions", (json_int_t)st->consume.sessions,
			      "joined", (json_int_t)st->consume.joined,
			      "joining", (json_int_t)st->consume.joining,
			      "waiting",
			      st->consume.joining > 0 ? st->consume.waiting
						      : NULL,
			      "groups", groups));
	}
	if (st->has_lag)
		json_object_set_new(
		    o, "lag",
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "interval_ms", (json_int_t)st->lag_interval_ms,
			      "groups", (json_int_t)st->lag.groups,
			      "partitions", (json_int_t)st->lag.rows,
			      "max_lag", (json_int_t)st->lag.max_lag,
			      "refreshed_ms", (json_int_t)st->lag.taken_ms,
			      "refreshes", (json_int_t)st->lag.refreshes,
			      "failures", (json_int_t)st->lag.failures));
	if (st->has_bp)
		json_object_set_new(
		    o, "backpressure",
		    json_pack("{s:I, s:I, s:I, s:I}", "bounds",
			      (json_int_t)st->bp.bounds, "throttled",
			      (json_int_t)st->bp.throttled, "held",
			      (json_int_t)st->bp.held, "refused",
			      (json_int_t)st->bp.refused));
	return o;
}
