/*
 * Backpressure at the front door (broker/backpressure.h,
 * docs/ARCHITECTURE.md "Backpressure"): when a PUBLISH's turn comes, the
 * gate decides its records; a request with records that must wait is
 * held (it keeps its stream's turn, so what its publisher sent after it
 * waits behind it, in order), and looked at again when a refresh opens a
 * partition and at every sweep, until its block time passes. Then its
 * records still throttled are refused with MR_EBUSY and the rest go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/backpressure.h"
#include "broker/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "server_internal.h"

#define SRV__BUSY_WHY                                                        \
	"backpressure: the consumers of this message's partition are behind " \
	"the topic's bound; nothing was written: send it again after "       \
	"retry_after_ms"

static int
srv__bp_load(struct mri_bp *g, const json_t *bounds, char *errstr,
	     size_t errstr_size)
{
	const char *topic;
	json_t     *obj;

	json_object_foreach ((json_t *)bounds, topic, obj) {
		struct mri_bound b;
		char             why[256];
		int              rc;

		rc = mri_bound_from_json(&b, topic, obj, why, sizeof(why));
		if (rc != MR_OK) {
			snprintf(errstr, errstr_size, "bounds.%s: %s", topic,
				 why);
			return rc == MR_ENOMEM ? rc : MR_ECONFIG;
		}
		if ((rc = mri_bp_set(g, &b)) != MR_OK) {
			mri_bound_fini(&b);
			snprintf(errstr, errstr_size, "out of memory");
			return rc;
		}
	}
	return MR_OK;
}

int
srv__bp_new(struct mri_server *s, const struct mri_config *cfg, char *errstr,
	    size_t errstr_size)
{
	pthread_mutex_init(&s->held_lock, NULL);
	if ((s->bp = mri_bp_new()) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	if (cfg->bounds == NULL)
		return MR_OK;
	return srv__bp_load(s->bp, cfg->bounds, errstr, errstr_size);
}

/* mri_bp_retain's keep: the topics the configuration's "bounds" names. */
static bool
srv__bp_in_config(void *arg, const char *topic)
{
	return json_object_get(arg, topic) != NULL;
}

void
srv__bp_reload(struct mri_server *s, const struct mri_config *cfg)
{
	char errstr[300];

	// The file's bounds were checked as it was read: they replace every
	// bound, those set through ADMIN included.
	if (cfg->bounds == NULL)
		return;
	mri_bp_retain(s->bp, srv__bp_in_config, cfg->bounds);
	if (srv__bp_load(s->bp, cfg->bounds, errstr, sizeof(errstr)) != MR_OK)
		mri_warn("component=backpressure msg=\"reload: %s\"", errstr);
	else
		mri_notice("component=backpressure bounds=%zu msg=\"bounds "
			   "reloaded from the configuration\"",
			   json_object_size(cfg->bounds));
}

/* Room for \p n records in c->bpr. */
static int
srv__bp_reserve(struct srv_ctx *c, uint32_t n)
{
	struct mri_bp_rec *v;

	if (n <= c->bpr_cap)
		return MR_OK;
	if ((v = realloc(c->bpr, n * sizeof(*v))) == NULL)
		return MR_ENOMEM;
	c->bpr     = v;
	c->bpr_cap = n;
	return MR_OK;
}

/* The request's verdicts applied: refused records fail with MR_EBUSY,
 * keyless ones get the partition chosen, the rest are admitted. */
static void
srv__bp_decide(struct srv_ctx *c, uint32_t held_ms)
{
	uint64_t refused = 0;

	for (uint32_t i = 0; i < c->batch.n; i++) {
		struct mri_pub_rec *r = &c->batch.recs[i];
		struct mri_bp_rec  *b = &c->bpr[i];

		if (b->verdict == MRI_BP_REFUSE) {
			mri_publish_refuse(r, MR_EBUSY, SRV__BUSY_WHY);
			refused++;
		} else if (!r->has_key && r->partition < 0 &&
			   b->partition >= 0) {
			mri_publish_route(r, b->partition);
		}
	}
	mri_bp_admit(c->s->bp, c->bpr, c->batch.n);
	mri_bp_count(c->s->bp, held_ms > 0 ? c->batch.n : 0, refused);
	c->held_ms = held_ms;
	c->bp_used = held_ms > 0 || refused > 0;
}

bool
srv__bp_hold(struct srv_ctx *c)
{
	struct mri_server *s = c->s;
	uint32_t           block;
	uint64_t           now;

	if (srv__bp_reserve(c, c->batch.n) != MR_OK)
		return false; // no memory: the gate lets it through
	for (uint32_t i = 0; i < c->batch.n; i++) {
		const struct mri_pub_rec *r = &c->batch.recs[i];

		// A record already failed is not the gate's: no topic.
		c->bpr[i] = (struct mri_bp_rec){
		    .topic     = r->res.err == MR_OK && r->topic ? r->topic : "",
		    .key       = r->key,
		    .key_len   = r->key_len,
		    .has_key   = r->has_key,
		    .partition = r->partition,
		};
	}
	block = mri_bp_check(s->bp, c->bpr, c->batch.n, false);
	if (block == 0) {
		srv__bp_decide(c, 0);
		return false;
	}
	if (c->sequenced)
		mri_order_hold(s->order, &c->oitem);
	now           = mri_mono_ms();
	c->held_since = now;
	c->held_until = now + block;
	pthread_mutex_lock(&s->held_lock);
	c->hnext = s->held;
	s->held  = c;
	pthread_mutex_unlock(&s->held_lock);
	return true;
}

/* Refuse a held request with \p code: its stream's turn goes on to
 * requests that are refused too. */
static void
srv__bp_refuse(struct srv_ctx *c, int code, const char *why)
{
	struct mri_order_item *next = NULL;

	if (c->sequenced)
		next = mri_order_done(c->s->order, &c->oitem, mri_mono_ms());
	c->sequenced = false;
	mri_publish_cancel(&c->batch);
	srv__reply_error(c, code, why);
	srv__refuse_parked(next, code, why);
}

void
srv__bp_recheck(struct mri_server *s, int code, const char *why)
{
	struct srv_ctx *list, *c, *keep = NULL;
	uint64_t        now;

	pthread_mutex_lock(&s->held_lock);
	list    = s->held;
	s->held = NULL;
	pthread_mutex_unlock(&s->held_lock);
	if (list == NULL)
		return;
	now = mri_mono_ms();
	while ((c = list) != NULL) {
		bool expired = now >= c->held_until;

		list = c->hnext;
		if (code != MR_OK) {
			srv__bp_refuse(c, code, why);
			continue;
		}
		if (mri_bp_check(s->bp, c->bpr, c->batch.n, expired) > 0) {
			c->hnext = keep;
			keep     = c;
			continue;
		}
		// Held, if for less than a ms: it says so.
		srv__bp_decide(c, now > c->held_since
				      ? (uint32_t)(now - c->held_since)
				      : 1);
		srv__go(c);
	}
	if (keep != NULL) {
		struct srv_ctx *last = keep;

		while (last->hnext != NULL)
			last = last->hnext;
		pthread_mutex_lock(&s->held_lock);
		last->hnext = s->held;
		s->held     = keep;
		pthread_mutex_unlock(&s->held_lock);
	}
}

void
srv__bp_ack(const struct srv_ctx *c, uint32_t i, struct mri_ack_view *a,
	    char *buf, size_t size)
{
	const struct mri_bp_rec *b = &c->bpr[i];
	bool                     time;

	a->flags |= MRI_ACK_F_BACKPRESSURE;
	a->held_ms = c->held_ms;
	if (b->verdict != MRI_BP_REFUSE)
		return;
	a->bp_kind        = b->why.kind;
	a->retry_after_ms = b->why.retry_after_ms;
	a->bp_lag         = b->why.lag;
	a->bp_bound       = b->why.bound;
	time = b->why.kind == MRI_BP_KIND_TIME;
	snprintf(buf, size,
		 "backpressure: %s partition %d of %s %s %lld %s, beyond the "
		 "topic's bound of %lld%s%s; nothing was written: send it again "
		 "in %u ms",
		 time ? "the oldest unconsumed message of"
		      : "the consumers of",
		 (int)b->partition, b->topic, time ? "is" : "are",
		 (long long)b->why.lag,
		 time ? "ms old" : "messages behind", (long long)b->why.bound,
		 time ? " ms" : "",
		 c->held_ms > 0 ? " (held until the block time)" : "",
		 b->why.retry_after_ms);
	a->errmsg     = buf;
	a->errmsg_len = (uint16_t)strnlen(buf, size);
}
