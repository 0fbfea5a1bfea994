/*
 * mailroomd's status: one plain snapshot of what the daemon is and does
 * (version, Kafka, listeners, uptime, requests in flight, the publish
 * counters, the producer, the dedupe window, the order of publishers'
 * requests, the consume side, the lag monitor's summary), filled by one
 * call and rendered apart.
 * STATUS renders it as JSON (mri_status_json, docs/PROTOCOL.md); /metrics
 * and the HTTP admin API are to render the same struct, so a number is
 * added here once and shows everywhere.
 *
 * Thread safety: mri_server_status may be called from any thread while the
 * server lives; it reads atomics and takes each part's lock briefly (the
 * producer's, the dedupe window's, the order's, the consume side's, the lag
 * monitor's), never two at once. mri_status_json is a pure function.
 */
#ifndef MRI_STATUS_H
#define MRI_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/consume.h"
#include "broker/backpressure.h"
#include "consumers/lag.h"

/* Subscriptions described one by one in a status, at most. */
#define MRI_STATUS_SUBS_MAX 32

struct mri_server;

struct mri_status {
	const char *version;  /* static */
	int         protocol; /* the frame protocol's version */
	struct {
		const char *bootstrap; /* borrowed from the server */
		bool        embedded;
		const char *warning; /* static, or NULL */
		bool        reachable;
		uint64_t    unreachable_ms; /* for how long, if not */
		char        error[256];     /* librdkafka's why, if not */
	} kafka;
	char *const *listeners; /* borrowed from the server */
	size_t       nlisteners;
	uint64_t     uptime_s;
	int          inflight_requests;
	struct {
		uint64_t requests; /* PUBLISH requests received */
		uint64_t confirmed;
		uint64_t failed;
		uint64_t duplicates;
		uint64_t refused_requests; /* requests answered with ERROR */
	} publish;
	struct {
		uint64_t confirmed;
		uint64_t recreations;
		uint64_t resent;
		int      outq;
	} producer;
	struct {
		bool     enabled;
		uint64_t window_ms;
		size_t   entries;
		uint64_t evicted_early;
	} dedupe;
	struct {
		size_t   streams;
		size_t   waiting;
		uint64_t refused;
	} order;
	bool has_consume;
	struct {
		size_t subscriptions;
		size_t sessions;
		/* Of every subscription (counted apart: a subscription may
		 * come or go between the two counts), those whose group has
		 * joined and those not yet, and the group of the one waiting
		 * longest ("" when none is), for /readyz. */
		size_t joined, joining;
		char   waiting[MRI_SUBSCRIBE_GROUP_MAX + 1];
		/* The first MRI_STATUS_SUBS_MAX of them, each with its group's
		 * counts and its dead-letter supervisor's. */
		size_t                       nsubs;
		struct mri_consume_sub_stats subs[MRI_STATUS_SUBS_MAX];
	} consume;
	bool                 has_lag;
	uint32_t             lag_interval_ms;
	struct mri_lag_stats lag; /* the lag monitor's (consumers/lag.h) */
	bool                 has_bp;
	struct mri_bp_stats  bp; /* backpressure's (broker/backpressure.h) */
};

/** @brief Fill \p st with a snapshot of \p s (strings borrowed from \p s:
 *         valid while it lives). */
void mri_server_status(struct mri_server *s, struct mri_status *st);

/** @returns the STATUS reply's JSON object for \p st (new: json_decref
 *           it), or NULL when out of memory. */
json_t *mri_status_json(const struct mri_status *st);

#endif
