/*
 * The dead-letter record's headers (dlq/record.h): built for mailroom's
 * quarantine and replay, read from mailroom's, Spring Kafka's and Kafka
 * Connect's dead-letter records.
 */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include "mailroom/error.h"

/* ---- building ---------------------------------------------------------- */

static bool
record__is(const char *name, size_t name_len, const char *lit)
{
	size_t n = strlen(lit);

	return name_len == n && (n == 0 || memcmp(name, lit, n) == 0);
}

static bool
record__has_prefix(const struct mri_hdr_view *h, const char *prefix)
{
	size_t n = strlen(prefix);

	return h->name != NULL && h->name_len >= n &&
	       memcmp(h->name, prefix, n) == 0;
}

/* Copy \p n bytes into the arena; the sizes are bounded by the callers
 * (MRI_DLQ_ARENA counts them). */
static const char *
record__keep(struct mri_dlq_hdrs *out, const void *p, size_t n)
{
	char *at = out->arena + out->used;

	if (n > 0)
		memcpy(at, p, n);
	out->used += n;
	return at;
}

static void
record__own(struct mri_hdr_view *own, size_t *k, const char *name,
	    const char *value, size_t len)
{
	own[*k] = (struct mri_hdr_view){name, (uint16_t)strlen(name), value,
					(uint32_t)len};
	(*k)++;
}

static void
record__own_dec(struct mri_dlq_hdrs *out, struct mri_hdr_view *own, size_t *k,
		const char *name, uint64_t v)
{
	char   b[MRI_DLQ_DEC_MAX + 1];
	size_t n;

	n = (size_t)snprintf(b, sizeof(b), "%llu", (unsigned long long)v);

	record__own(own, k, name, record__keep(out, b, n), n);
}

static void
record__own_time(struct mri_dlq_hdrs *out, struct mri_hdr_view *own,
		 size_t *k, const char *name, int64_t ms)
{
	char b[MRI_TIME_STRLEN + 1];

	if (ms < 0)
		return;
	mri_time_fmt(ms, b);
	record__own(own, k, name, record__keep(out, b, MRI_TIME_STRLEN),
		    MRI_TIME_STRLEN);
}

/* out->h: \p hs less mailroom's, as many as leave room for the \p k
 * headers of \p own, then those, then the count of the left out if any. */
static void
record__assemble(struct mri_dlq_hdrs *out, const struct mri_hdr_view *hs,
		 size_t n, const struct mri_hdr_view *own, size_t k)
{
	size_t kept = 0, room = MRI_HDR_COUNT_MAX - k;

	for (size_t i = 0; i < n; i++)
		kept += !record__has_prefix(&hs[i], MRI_DLQ_H_PREFIX);
	out->stripped = (uint16_t)(n - kept > UINT16_MAX ? UINT16_MAX
							 : n - kept);
	if (kept > room) {
		room--; // for mr_dlq_dropped_headers
		out->dropped = (uint16_t)(kept - room > UINT16_MAX
					      ? UINT16_MAX
					      : kept - room);
	}
	for (size_t i = 0; i < n && out->n < room; i++)
		if (!record__has_prefix(&hs[i], MRI_DLQ_H_PREFIX))
			out->h[out->n++] = hs[i];
	for (size_t i = 0; i < k; i++)
		out->h[out->n++] = own[i];
	if (kept > room) {
		struct mri_hdr_view d[1];
		size_t              m = 0;

		record__own_dec(out, d, &m, MRI_DLQ_H_DROPPED, kept - room);
		out->h[out->n++] = d[0];
	}
}

static void
record__reset(struct mri_dlq_hdrs *out)
{
	out->n           = 0;
	out->dropped     = 0;
	out->stripped    = 0;
	out->fingerprint = 0;
	out->used        = 0;
}

int
mri_dlq_build(struct mri_dlq_hdrs *out, const struct mri_dlq_orig *o,
	      const struct mri_dlq_failure *f)
{
	struct mri_hdr_view own[MRI_DLQ_OWN_MAX];
	char                fp[MRI_DLQ_FP_STRLEN + 1];
	const char         *reason;
	size_t              k = 0, rlen;

	if (o->topic == NULL || o->topic_len == 0 ||
	    o->topic_len > MRI_TOPIC_MAX ||
	    (f->group != NULL && f->group_len > MRI_DLQ_GROUP_MAX) ||
	    o->partition < 0 || o->offset < 0 ||
	    (o->hdrs == NULL && o->nhdrs > 0) ||
	    (f->reason == NULL && f->reason_len > 0))
		return MR_EINVAL;
	record__reset(out);
	record__own(own, &k, MRI_DLQ_H_TOPIC,
		    record__keep(out, o->topic, o->topic_len), o->topic_len);
	record__own_dec(out, own, &k, MRI_DLQ_H_PARTITION,
			(uint64_t)o->partition);
	record__own_dec(out, own, &k, MRI_DLQ_H_OFFSET, (uint64_t)o->offset);
	if (f->group != NULL)
		record__own(own, &k, MRI_DLQ_H_GROUP,
			    record__keep(out, f->group, f->group_len),
			    f->group_len);
	record__own_dec(out, own, &k, MRI_DLQ_H_ATTEMPTS, f->attempts);
	record__own_time(out, own, &k, MRI_DLQ_H_FIRST_FAILURE,
			 f->first_failure_ms);
	record__own_time(out, own, &k, MRI_DLQ_H_LAST_FAILURE,
			 f->last_failure_ms);
	rlen   = f->reason == NULL ? 0
				   : mri_dlq_utf8_cut(f->reason, f->reason_len,
						      MRI_DLQ_REASON_MAX);
	reason = record__keep(out, f->reason, rlen);
	record__own(own, &k, MRI_DLQ_H_REASON, reason, rlen);
	out->fingerprint = mri_dlq_fingerprint(reason, rlen);
	mri_dlq_fingerprint_fmt(out->fingerprint, fp);
	record__own(own, &k, MRI_DLQ_H_FINGERPRINT,
		    record__keep(out, fp, MRI_DLQ_FP_STRLEN),
		    MRI_DLQ_FP_STRLEN);
	record__own_time(out, own, &k, MRI_DLQ_H_TIME, f->time_ms);
	record__own_dec(out, own, &k, MRI_DLQ_H_REPLAYS, f->replays);
	record__assemble(out, o->hdrs, o->nhdrs, own, k);
	return MR_OK;
}

int
mri_dlq_build_replay(struct mri_dlq_hdrs *out, const struct mri_hdr_view *h,
		     size_t n, uint32_t replays)
{
	struct mri_hdr_view own[1];
	size_t              k = 0;

	if (h == NULL && n > 0)
		return MR_EINVAL;
	record__reset(out);
	record__own_dec(out, own, &k, MRI_DLQ_H_REPLAYS, replays);
	record__assemble(out, h, n, own, k);
	return MR_OK;
}

/* ---- reading ----------------------------------------------------------- */

/* The headers a reader looks at: mailroom's, Spring's, Connect's. */
enum {
	R_MR_TOPIC,
	R_MR_PARTITION,
	R_MR_OFFSET,
	R_MR_GROUP,
	R_MR_ATTEMPTS,
	R_MR_FIRST,
	R_MR_LAST,
	R_MR_REASON,
	R_MR_FP,
	R_MR_TIME,
	R_MR_REPLAYS,
	R_MR_DROPPED,
	R_SP_TOPIC,
	R_SP_PARTITION,
	R_SP_OFFSET,
	R_SP_TIMESTAMP,
	R_SP_GROUP,
	R_SP_FQCN,
	R_SP_CAUSE_FQCN,
	R_SP_MESSAGE,
	R_SP_STACKTRACE,
	R_SP_KEY_FQCN,
	R_SP_KEY_MESSAGE,
	R_SP_KEY_STACKTRACE,
	R_SP_ATTEMPTS,
	R_CN_TOPIC,
	R_CN_PARTITION,
	R_CN_OFFSET,
	R_CN_CONNECTOR,
	R_CN_TASK,
	R_CN_STAGE,
	R_CN_CLASS,
	R_CN_EXCEPTION,
	R_CN_MESSAGE,
	R_CN_STACKTRACE,
	R__COUNT
};

#define SPRING_PREFIX "kafka_dlt-"
#define CONNECT_PREFIX "__connect.errors."

static const char *const record__names[R__COUNT] = {
    [R_MR_TOPIC]          = MRI_DLQ_H_TOPIC,
    [R_MR_PARTITION]      = MRI_DLQ_H_PARTITION,
    [R_MR_OFFSET]         = MRI_DLQ_H_OFFSET,
    [R_MR_GROUP]          = MRI_DLQ_H_GROUP,
    [R_MR_ATTEMPTS]       = MRI_DLQ_H_ATTEMPTS,
    [R_MR_FIRST]          = MRI_DLQ_H_FIRST_FAILURE,
    [R_MR_LAST]           = MRI_DLQ_H_LAST_FAILURE,
    [R_MR_REASON]         = MRI_DLQ_H_REASON,
    [R_MR_FP]             = MRI_DLQ_H_FINGERPRINT,
    [R_MR_TIME]           = MRI_DLQ_H_TIME,
    [R_MR_REPLAYS]        = MRI_DLQ_H_REPLAYS,
    [R_MR_DROPPED]        = MRI_DLQ_H_DROPPED,
    // Spring Kafka's KafkaHeaders.DLT_* (DeadLetterPublishingRecoverer)
    // and RetryTopicHeaders.DEFAULT_HEADER_ATTEMPTS.
    [R_SP_TOPIC]          = SPRING_PREFIX "original-topic",
    [R_SP_PARTITION]      = SPRING_PREFIX "original-partition",
    [R_SP_OFFSET]         = SPRING_PREFIX "original-offset",
    [R_SP_TIMESTAMP]      = SPRING_PREFIX "original-timestamp",
    [R_SP_GROUP]          = SPRING_PREFIX "original-consumer-group",
    [R_SP_FQCN]           = SPRING_PREFIX "exception-fqcn",
    [R_SP_CAUSE_FQCN]     = SPRING_PREFIX "exception-cause-fqcn",
    [R_SP_MESSAGE]        = SPRING_PREFIX "exception-message",
    [R_SP_STACKTRACE]     = SPRING_PREFIX "exception-stacktrace",
    [R_SP_KEY_FQCN]       = SPRING_PREFIX "key-exception-fqcn",
    [R_SP_KEY_MESSAGE]    = SPRING_PREFIX "key-exception-message",
    [R_SP_KEY_STACKTRACE] = SPRING_PREFIX "key-exception-stacktrace",
    [R_SP_ATTEMPTS]       = "retry_topic-attempts",
    // Kafka Connect's DeadLetterQueueReporter.ERROR_HEADER_*.
    [R_CN_TOPIC]          = CONNECT_PREFIX "topic",
    [R_CN_PARTITION]      = CONNECT_PREFIX "partition",
    [R_CN_OFFSET]         = CONNECT_PREFIX "offset",
    [R_CN_CONNECTOR]      = CONNECT_PREFIX "connector.name",
    [R_CN_TASK]           = CONNECT_PREFIX "task.id",
    [R_CN_STAGE]          = CONNECT_PREFIX "stage",
    [R_CN_CLASS]          = CONNECT_PREFIX "class.name",
    [R_CN_EXCEPTION]      = CONNECT_PREFIX "exception.class.name",
    [R_CN_MESSAGE]        = CONNECT_PREFIX "exception.message",
    [R_CN_STACKTRACE]     = CONNECT_PREFIX "exception.stacktrace",
};

static struct mri_dlq_str
record__str(const struct mri_hdr_view *h)
{
	if (h == NULL)
		return (struct mri_dlq_str){NULL, 0};
	return (struct mri_dlq_str){h->value, h->value != NULL ? h->value_len
								: 0};
}

/* A decimal of ASCII digits (a '-' first when \p neg) within [-max,
 * max]: true and *out, else false. */
static bool
record__dec(const struct mri_hdr_view *h, bool neg, uint64_t max,
	    int64_t *out)
{
	const char *p;
	size_t      n, i = 0;
	uint64_t    v = 0;
	bool        minus;

	if (h == NULL || h->value == NULL)
		return false;
	p     = h->value;
	n     = h->value_len;
	minus = neg && n > 0 && p[0] == '-';
	i     = minus;
	if (i == n || n - i > MRI_DLQ_DEC_MAX)
		return false;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (v > (max - (uint64_t)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = minus ? -(int64_t)v : (int64_t)v;
	return true;
}

/* A big-endian integer of exactly \p size bytes (Java's ByteBuffer). */
static bool
record__be(const struct mri_hdr_view *h, size_t size, int64_t *out)
{
	const unsigned char *p;
	uint64_t             v = 0;

	if (h == NULL || h->value == NULL || h->value_len != size)
		return false;
	p = h->value;
	for (size_t i = 0; i < size; i++)
		v = v << 8 | p[i];
	*out = size == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
	return true;
}

/* Spring's original partition or offset: a big-endian integer of exactly
 * \p size bytes, as Spring writes it; else a decimal (a text value, as
 * kcat -H writes), a value of \p size ASCII digits included (binary, it
 * would be a partition above 808 million, an offset above 3.4e18). */
static bool
record__be_or_dec(const struct mri_hdr_view *h, size_t size, uint64_t max,
		  int64_t *out)
{
	const char *p;
	bool        digits = true;

	if (h == NULL || h->value == NULL)
		return false;
	p = h->value;
	for (size_t i = 0; i < h->value_len && digits; i++)
		digits = p[i] >= '0' && p[i] <= '9';
	if (h->value_len == size && !digits)
		return record__be(h, size, out);
	return record__dec(h, false, max, out);
}

static int64_t
record__time(const struct mri_hdr_view *h)
{
	long long ms;

	if (h == NULL || h->value == NULL ||
	    mri_time_parse(h->value, h->value_len, &ms) != MR_OK)
		return -1;
	return ms;
}

/* 16 lowercase hex digits. */
static bool
record__fp(const struct mri_hdr_view *h, uint64_t *out)
{
	const char *p;
	uint64_t    v = 0;

	if (h == NULL || h->value == NULL ||
	    h->value_len != MRI_DLQ_FP_STRLEN)
		return false;
	p = h->value;
	for (size_t i = 0; i < MRI_DLQ_FP_STRLEN; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			v = v << 4 | (uint64_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v = v << 4 | (uint64_t)(p[i] - 'a' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

/* Append \p n bytes of \p p to the reason, cut on a UTF-8 boundary. */
static void
record__reason_add(struct mri_dlq_info *out, const char *p, size_t n)
{
	size_t room = MRI_DLQ_REASON_MAX - out->reason_len;

	n = mri_dlq_utf8_cut(p, n, room);
	if (n > 0)
		memcpy(out->reason + out->reason_len, p, n);
	out->reason_len += n;
	out->reason[out->reason_len] = '\0';
}

/* A foreign reason: "<class>: <message>", or either alone. */
static void
record__reason_of(struct mri_dlq_info *out)
{
	const struct mri_dlq_str *c = &out->exception, *m = &out->message;

	if (c->len > 0)
		record__reason_add(out, c->p, c->len);
	if (c->len > 0 && m->len > 0)
		record__reason_add(out, ": ", 2);
	if (m->len > 0)
		record__reason_add(out, m->p, m->len);
}

/* The first of \p a, \p b that is there. */
static const struct mri_hdr_view *
record__either(const struct mri_hdr_view *a, const struct mri_hdr_view *b)
{
	return a != NULL ? a : b;
}

static void
record__mailroom(const struct mri_hdr_view **s, struct mri_dlq_info *out)
{
	int64_t v;

	out->topic = record__str(s[R_MR_TOPIC]);
	out->group = record__str(s[R_MR_GROUP]);
	if (record__dec(s[R_MR_PARTITION], false, INT32_MAX, &v))
		out->partition = (int32_t)v;
	if (record__dec(s[R_MR_OFFSET], false, INT64_MAX, &v))
		out->offset = v;
	if (record__dec(s[R_MR_ATTEMPTS], false, UINT32_MAX, &v))
		out->attempts = (uint32_t)v;
	if (record__dec(s[R_MR_DROPPED], false, UINT32_MAX, &v))
		out->dropped_headers = (uint32_t)v;
	out->first_failure_ms = record__time(s[R_MR_FIRST]);
	out->last_failure_ms  = record__time(s[R_MR_LAST]);
	out->time_ms          = record__time(s[R_MR_TIME]);
	if (s[R_MR_REASON] != NULL && s[R_MR_REASON]->value != NULL)
		record__reason_add(out, s[R_MR_REASON]->value,
				   s[R_MR_REASON]->value_len);
}

static void
record__spring(const struct mri_hdr_view **s, struct mri_dlq_info *out)
{
	int64_t v;

	out->topic = record__str(s[R_SP_TOPIC]);
	out->group = record__str(s[R_SP_GROUP]);
	if (record__be_or_dec(s[R_SP_PARTITION], 4, INT32_MAX, &v) && v >= 0)
		out->partition = (int32_t)v;
	if (record__be_or_dec(s[R_SP_OFFSET], 8, INT64_MAX, &v) && v >= 0)
		out->offset = v;
	if (record__be(s[R_SP_TIMESTAMP], 8, &v) && v >= 0)
		out->orig_time_ms = v;
	if (record__be(s[R_SP_ATTEMPTS], 4, &v) && v > 0)
		out->attempts = (uint32_t)v;
	out->exception =
	    record__str(record__either(s[R_SP_FQCN], s[R_SP_KEY_FQCN]));
	out->message =
	    record__str(record__either(s[R_SP_MESSAGE], s[R_SP_KEY_MESSAGE]));
	out->stacktrace = record__str(
	    record__either(s[R_SP_STACKTRACE], s[R_SP_KEY_STACKTRACE]));
	out->cause = record__str(s[R_SP_CAUSE_FQCN]);
	record__reason_of(out);
}

static void
record__connect(const struct mri_hdr_view **s, struct mri_dlq_info *out)
{
	int64_t v;

	out->topic = record__str(s[R_CN_TOPIC]);
	out->group = record__str(s[R_CN_CONNECTOR]);
	// Connect writes -1 where it knows no partition or offset.
	if (record__dec(s[R_CN_PARTITION], true, INT32_MAX, &v) && v >= 0)
		out->partition = (int32_t)v;
	if (record__dec(s[R_CN_OFFSET], true, INT64_MAX, &v) && v >= 0)
		out->offset = v;
	if (record__dec(s[R_CN_TASK], true, INT32_MAX, &v) && v >= 0)
		out->task_id = (int32_t)v;
	out->stage           = record__str(s[R_CN_STAGE]);
	out->executing_class = record__str(s[R_CN_CLASS]);
	out->exception       = record__str(s[R_CN_EXCEPTION]);
	out->message         = record__str(s[R_CN_MESSAGE]);
	out->stacktrace      = record__str(s[R_CN_STACKTRACE]);
	record__reason_of(out);
}

int
mri_dlq_parse(const struct mri_hdr_view *h, size_t n,
	      struct mri_dlq_info *out)
{
	const struct mri_hdr_view *s[R__COUNT] = {0};
	bool                       spring = false, connect = false;
	int64_t                    v;

	if (out == NULL || (h == NULL && n > 0))
		return MR_EINVAL;
	memset(out, 0, offsetof(struct mri_dlq_info, reason));
	out->reason[0]        = '\0';
	out->partition        = -1;
	out->offset           = -1;
	out->first_failure_ms = -1;
	out->last_failure_ms  = -1;
	out->time_ms          = -1;
	out->orig_time_ms     = -1;
	out->task_id          = -1;
	// One pass: the last header of each name counts.
	for (size_t i = 0; i < n; i++) {
		if (h[i].name == NULL)
			continue;
		spring  = spring || record__has_prefix(&h[i], SPRING_PREFIX);
		connect = connect || record__has_prefix(&h[i], CONNECT_PREFIX);
		for (int k = 0; k < R__COUNT; k++)
			if (record__is(h[i].name, h[i].name_len,
				       record__names[k])) {
				s[k] = &h[i];
				break;
			}
	}
	if (s[R_MR_TOPIC] != NULL) {
		out->dialect = MRI_DLQ_MAILROOM;
		record__mailroom(s, out);
	} else if (spring) {
		out->dialect = MRI_DLQ_SPRING;
		record__spring(s, out);
	} else if (connect) {
		out->dialect = MRI_DLQ_CONNECT;
		record__connect(s, out);
	}
	if (record__dec(s[R_MR_REPLAYS], false, UINT32_MAX, &v))
		out->replays = (uint32_t)v;
	if (out->dialect != MRI_DLQ_MAILROOM ||
	    !record__fp(s[R_MR_FP], &out->fingerprint))
		out->fingerprint =
		    mri_dlq_fingerprint(out->reason, out->reason_len);
	return MR_OK;
}
