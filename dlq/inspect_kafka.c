/*
 * The Kafka source of dlq/inspect.h: a consumer of its own, no group,
 * every partition (or one) assigned from its beginning (or an offset) up to
 * the high watermark found when it opened, nothing committed. topics.read
 * (broker/admin_read.c) reads any topic's partition with it.
 */
#include "inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/kafka.h"
#include "mailroom/error.h"

/* How long one poll waits, at most: the deadline is checked between. */
#define KAFKA__POLL_MS 200

struct mri_dlq_kafka {
	rd_kafka_t          *rk;
	char                *topic;
	int32_t              partitions;
	int64_t             *stop;   /* per partition: read below this */
	int64_t             *lo, *hi; /* per partition: its watermarks */
	bool                *done;   /* per partition */
	int32_t              left;   /* partitions not done */
	uint64_t             deadline;
	int                  timeout_ms;
	rd_kafka_message_t  *msg;    /* the record given last */
	struct mri_hdr_view *hdrs;
	size_t               chdrs;
};

static void
kafka__done(struct mri_dlq_kafka *k, int32_t p)
{
	if (p >= 0 && p < k->partitions && !k->done[p]) {
		k->done[p] = true;
		k->left--;
	}
}

/* The message's headers as views into it (k->hdrs). */
static int
kafka__headers(struct mri_dlq_kafka *k, rd_kafka_message_t *m, size_t *n)
{
	rd_kafka_headers_t *hs;
	const char         *name;
	const void         *v;
	size_t              size, cnt;

	*n = 0;
	if (rd_kafka_message_headers(m, &hs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return MR_OK;
	cnt = rd_kafka_header_cnt(hs);
	if (cnt > k->chdrs) {
		struct mri_hdr_view *h = realloc(k->hdrs, cnt * sizeof(*h));

		if (h == NULL)
			return MR_ENOMEM;
		k->hdrs  = h;
		k->chdrs = cnt;
	}
	for (size_t i = 0; i < cnt; i++) {
		size_t nl;

		if (rd_kafka_header_get_all(hs, i, &name, &v, &size) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if ((nl = strlen(name)) > UINT16_MAX || size > UINT32_MAX)
			continue;
		k->hdrs[(*n)++] = (struct mri_hdr_view){
		    name, (uint16_t)nl, v, (uint32_t)size};
	}
	return MR_OK;
}

static int
kafka__next(void *arg, struct mri_dlq_rec *rec, bool *end, char *why,
	    size_t n)
{
	struct mri_dlq_kafka *k = arg;
	rd_kafka_message_t   *m;
	size_t                nh;
	int64_t               ts;

	if (k->msg != NULL) {
		rd_kafka_message_destroy(k->msg);
		k->msg = NULL;
	}
	for (;;) {
		uint64_t left;

		if (k->left == 0) {
			*end = true;
			return MR_OK;
		}
		if ((left = mri_deadline_left(k->deadline)) == 0) {
			snprintf(why, n,
				 "timed out after %d ms with %d of %d "
				 "partitions read to their end",
				 k->timeout_ms, (int)(k->partitions - k->left),
				 (int)k->partitions);
			return MR_ETIMEDOUT;
		}
		m = rd_kafka_consumer_poll(
		    k->rk, (int)(left < KAFKA__POLL_MS ? left : KAFKA__POLL_MS));
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			kafka__done(k, m->partition);
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rd_kafka_resp_err_t e = m->err;

			snprintf(why, n, "reading %s: %s", k->topic,
				 rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			// Transient errors (a broker away) are retried by
			// librdkafka until the deadline.
			if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
			    e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
			    e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
			    e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
				return mri_kafka_err(e);
			continue;
		}
		if (m->partition < 0 || m->partition >= k->partitions ||
		    k->done[m->partition] || m->offset >= k->stop[m->partition]) {
			kafka__done(k, m->partition);
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->offset + 1 >= k->stop[m->partition])
			kafka__done(k, m->partition);
		break;
	}
	if (kafka__headers(k, m, &nh) != MR_OK) {
		rd_kafka_message_destroy(m);
		snprintf(why, n, "out of memory");
		return MR_ENOMEM;
	}
	k->msg = m;
	ts     = rd_kafka_message_timestamp(m, NULL);
	*rec   = (struct mri_dlq_rec){
	      .partition    = m->partition,
	      .offset       = m->offset,
	      .timestamp_ms = ts >= 0 ? ts : -1,
	      .has_key      = m->key != NULL,
	      .key          = m->key,
	      .key_len      = m->key_len,
	      .value        = m->payload,
	      .value_len    = m->len,
	      .hdrs         = k->hdrs,
	      .nhdrs        = nh,
	};
	return MR_OK;
}

void
mri_dlq_kafka_source(struct mri_dlq_kafka *k, struct mri_dlq_source *out)
{
	out->next = kafka__next;
	out->arg  = k;
}

int32_t
mri_dlq_kafka_partitions(const struct mri_dlq_kafka *k)
{
	return k->partitions;
}

void
mri_dlq_kafka_close(struct mri_dlq_kafka *k)
{
	if (k == NULL)
		return;
	if (k->msg != NULL)
		rd_kafka_message_destroy(k->msg);
	if (k->rk != NULL) {
		rd_kafka_consumer_close(k->rk);
		rd_kafka_destroy(k->rk);
	}
	free(k->hdrs);
	free(k->lo);
	free(k->hi);
	free(k->stop);
	free(k->done);
	free(k->topic);
	free(k);
}

/* The consumer: the template's settings, then what a reader needs. */
static int
kafka__consumer(struct mri_dlq_kafka *k, const rd_kafka_conf_t *tmpl,
		char *why, size_t n)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(tmpl);

	// assign() needs a group id; the group is never joined (no
	// subscribe) and nothing is committed to it.
	if (conf == NULL ||
	    mri_kafka_set(conf, "group.id", "mailroom-dlq-inspect", why, n) ||
	    mri_kafka_set(conf, "enable.auto.commit", "false", why, n) ||
	    mri_kafka_set(conf, "enable.auto.offset.store", "false", why, n) ||
	    mri_kafka_set(conf, "enable.partition.eof", "true", why, n) ||
	    mri_kafka_set(conf, "auto.offset.reset", "earliest", why, n)) {
		if (conf != NULL)
			rd_kafka_conf_destroy(conf);
		return MR_ECONFIG;
	}
	if ((k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, n)) == NULL) {
		rd_kafka_conf_destroy(conf);
		return MR_ECONFIG;
	}
	rd_kafka_poll_set_consumer(k->rk);
	return MR_OK;
}

/* The topic's partition count from the metadata of every topic (naming
 * it would make the embedded cluster create it). */
static int
kafka__partitions(struct mri_dlq_kafka *k, char *why, size_t n)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t             err;
	int                             rc = MR_ENOENT;

	err = rd_kafka_metadata(k->rk, 1, NULL, &md,
				(int)mri_deadline_left(k->deadline) + 1);
	if (err) {
		snprintf(why, n, "metadata request failed: %s",
			 rd_kafka_err2str(err));
		return mri_kafka_err(err);
	}
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, k->topic) == 0 &&
		    md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			k->partitions = md->topics[i].partition_cnt;
			rc            = MR_OK;
		}
	rd_kafka_metadata_destroy(md);
	if (rc != MR_OK)
		snprintf(why, n,
			 "no topic %s: nothing was quarantined there yet, or "
			 "the name is wrong; `mailroom topics list`",
			 k->topic);
	return rc;
}

static int
kafka__watermarks(struct mri_dlq_kafka *k, int32_t p, int64_t *lo,
		  int64_t *hi, char *why, size_t n)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_query_watermark_offsets(
	    k->rk, k->topic, p, lo, hi,
	    (int)mri_deadline_left(k->deadline) + 1);
	if (err) {
		snprintf(why, n, "%s partition %d: cannot read its offsets: %s",
			 k->topic, (int)p, rd_kafka_err2str(err));
		return mri_kafka_err(err);
	}
	return MR_OK;
}

/* What to read: every partition that holds records (each from \p
 * from[p] when given, p < \p nfrom), or \p partition: the record at \p
 * offset, or (\p range) from \p offset to its end. */
static int
kafka__assign(struct mri_dlq_kafka *k, int32_t partition, int64_t offset,
	      bool range, const int64_t *from, int32_t nfrom, char *why,
	      size_t n)
{
	rd_kafka_topic_partition_list_t *tl;
	int64_t                          lo, hi;
	int                              rc = MR_OK;

	if (partition >= k->partitions) {
		snprintf(why, n, "%s has partitions 0 to %d, not %d", k->topic,
			 (int)k->partitions - 1, (int)partition);
		return MR_EINVAL;
	}
	tl = rd_kafka_topic_partition_list_new(k->partitions);
	for (int32_t p = 0; p < k->partitions && rc == MR_OK; p++) {
		k->done[p] = true;
		if (partition >= 0 && p != partition)
			continue;
		if ((rc = kafka__watermarks(k, p, &lo, &hi, why, n)) != MR_OK)
			break;
		k->lo[p] = lo;
		k->hi[p] = hi;
		if (range) {
			if (offset > lo)
				lo = offset;
		} else if (partition >= 0 && (offset < lo || offset >= hi)) {
			if (lo == hi)
				snprintf(why, n,
					 "offset %lld is out of range: %s "
					 "partition %d holds no record",
					 (long long)offset, k->topic, (int)p);
			else
				snprintf(why, n,
					 "offset %lld is out of range: %s "
					 "partition %d holds offsets %lld to "
					 "%lld",
					 (long long)offset, k->topic, (int)p,
					 (long long)lo, (long long)hi - 1);
			rc = MR_EINVAL;
			break;
		}
		if (partition < 0 && from != NULL && p < nfrom && from[p] > lo)
			lo = from[p];
		if (hi <= lo)
			continue;
		k->stop[p] = partition >= 0 && !range ? offset + 1 : hi;
		k->done[p] = false;
		k->left++;
		rd_kafka_topic_partition_list_add(tl, k->topic, p)->offset =
		    partition >= 0 && !range ? offset : lo;
	}
	if (rc == MR_OK && tl->cnt > 0 && rd_kafka_assign(k->rk, tl) != 0) {
		snprintf(why, n, "cannot assign the partitions of %s",
			 k->topic);
		rc = MR_EKAFKA;
	}
	rd_kafka_topic_partition_list_destroy(tl);
	return rc;
}

static int
kafka__open(struct mri_dlq_kafka **out, const rd_kafka_conf_t *tmpl,
	    const char *topic, int32_t partition, int64_t offset, bool range,
	    const int64_t *from, int32_t nfrom, int timeout_ms, char *why,
	    size_t n)
{
	struct mri_dlq_kafka *k;
	int                   rc;

	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->topic = strdup(topic)) == NULL) {
		free(k);
		snprintf(why, n, "out of memory");
		return MR_ENOMEM;
	}
	k->timeout_ms = timeout_ms;
	k->deadline   = mri_deadline_in((uint64_t)timeout_ms);
	if ((rc = kafka__consumer(k, tmpl, why, n)) != MR_OK ||
	    (rc = kafka__partitions(k, why, n)) != MR_OK)
		goto fail;
	k->stop = calloc((size_t)k->partitions + 1, sizeof(*k->stop));
	k->done = calloc((size_t)k->partitions + 1, sizeof(*k->done));
	k->lo   = calloc((size_t)k->partitions + 1, sizeof(*k->lo));
	k->hi   = calloc((size_t)k->partitions + 1, sizeof(*k->hi));
	if (k->stop == NULL || k->done == NULL || k->lo == NULL ||
	    k->hi == NULL) {
		snprintf(why, n, "out of memory");
		rc = MR_ENOMEM;
		goto fail;
	}
	for (int32_t p = 0; p < k->partitions; p++)
		k->lo[p] = k->hi[p] = -1;
	if ((rc = kafka__assign(k, partition, offset, range, from, nfrom, why,
				n)) != MR_OK)
		goto fail;
	*out = k;
	return MR_OK;
fail:
	mri_dlq_kafka_close(k);
	return rc;
}

int
mri_dlq_kafka_open(struct mri_dlq_kafka **out, const rd_kafka_conf_t *tmpl,
		   const char *topic, int32_t partition, int64_t offset,
		   int timeout_ms, char *why, size_t n)
{
	return kafka__open(out, tmpl, topic, partition, offset, false, NULL, 0,
			   timeout_ms, why, n);
}

int
mri_dlq_kafka_open_range(struct mri_dlq_kafka **out,
			 const rd_kafka_conf_t *tmpl, const char *topic,
			 int32_t partition, int64_t offset, int timeout_ms,
			 char *why, size_t n)
{
	if (partition < 0) {
		snprintf(why, n, "a partition is >= 0");
		return MR_EINVAL;
	}
	return kafka__open(out, tmpl, topic, partition, offset, true, NULL, 0,
			   timeout_ms, why, n);
}

void
mri_dlq_kafka_marks(const struct mri_dlq_kafka *k, int32_t p, int64_t *lo,
		    int64_t *hi)
{
	bool in = p >= 0 && p < k->partitions;

	*lo = in ? k->lo[p] : -1;
	*hi = in ? k->hi[p] : -1;
}

int
mri_dlq_kafka_open_from(struct mri_dlq_kafka **out,
			const rd_kafka_conf_t *tmpl, const char *topic,
			const int64_t *from, int32_t nfrom, int timeout_ms,
			char *why, size_t n)
{
	return kafka__open(out, tmpl, topic, -1, 0, false, from, nfrom,
			   timeout_ms, why, n);
}

int
mri_dlq_kafka_show(const rd_kafka_conf_t *tmpl, const char *topic,
		   int32_t partition, int64_t offset, int timeout_ms,
		   struct mri_dlq_shown **out, char *why, size_t n)
{
	struct mri_dlq_kafka *k;
	struct mri_dlq_rec    r;
	bool                  end = false;
	int                   rc;

	if (partition < 0 || offset < 0) {
		snprintf(why, n, "a partition and an offset are >= 0");
		return MR_EINVAL;
	}
	rc = mri_dlq_kafka_open(&k, tmpl, topic, partition, offset,
				timeout_ms, why, n);
	if (rc != MR_OK)
		return rc;
	rc = kafka__next(k, &r, &end, why, n);
	if (rc == MR_OK && (end || r.offset != offset)) {
		snprintf(why, n,
			 "%s partition %d has no record at offset %lld "
			 "(compacted away, or a transaction marker)",
			 topic, (int)partition, (long long)offset);
		rc = MR_ENOENT;
	}
	if (rc == MR_OK && mri_dlq_shown_new(out, &r) != MR_OK) {
		snprintf(why, n, "out of memory");
		rc = MR_ENOMEM;
	}
	mri_dlq_kafka_close(k);
	return rc;
}
