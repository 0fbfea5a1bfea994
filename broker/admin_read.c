/*
 * topics.read (broker/admin_dlq.h): one partition of any topic from an
 * offset, read with dlq/inspect.h's Kafka source (a consumer of its own,
 * assigned, nothing committed) as far as the high watermark it found when
 * it opened, within a record count and a byte budget. What a client reads
 * a compacted topic with (mirrored actors restore their snapshots so), and
 * `mailroom topics read`.
 */
#include "admin_dlq.h"

#include <stdio.h>
#include <string.h>

#include "dlq/inspect.h"
#include "mailroom/error.h"

/* A reply's default and largest budgets. The reply is JSON: about 4/3 of
 * max_bytes where bytes are base64, and some 150 bytes more per record,
 * so at most about 26 MB: well below the 64 MiB beyond which a frame can
 * wedge nng (docs/ARCHITECTURE.md). */
#define READ__RECORDS     1000
#define READ__RECORDS_MAX 100000
#define READ__BYTES       (1 << 20)
#define READ__BYTES_MAX   (8 << 20)

/* What a record costs of the byte budget. */
static size_t
read__size(const struct mri_dlq_rec *r)
{
	size_t n = r->key_len + r->value_len;

	for (size_t i = 0; i < r->nhdrs; i++)
		n += r->hdrs[i].name_len + r->hdrs[i].value_len;
	return n;
}

static json_t *
read__record(const struct mri_dlq_rec *r)
{
	json_t *o = json_pack("{s:I, s:I}", "offset", (json_int_t)r->offset,
			      "timestamp_ms", (json_int_t)r->timestamp_ms);

	if (o == NULL)
		return NULL;
	mri_admin_json_bytes(o, "key", r->has_key ? r->key : NULL, r->key_len);
	mri_admin_json_bytes(o, "payload", r->value, r->value_len);
	json_object_set_new(o, "headers",
			    mri_admin_json_headers(r->hdrs, r->nhdrs));
	return o;
}

json_t *
mri_admin_read(const struct mri_admin_dlq_ctx *c, json_t *req)
{
	const char           *topic = mri_admin_dlq_topic(req);
	json_int_t            p = -1, off = 0, mr = READ__RECORDS;
	json_int_t            mb = READ__BYTES, to = c->timeout_ms;
	struct mri_dlq_kafka *k;
	struct mri_dlq_source src;
	struct mri_dlq_rec    r;
	json_t               *recs, *rep;
	char                  why[512];
	int64_t               lo, hi, next;
	size_t                bytes = 0;
	bool                  end   = false;
	int                   rc;

	if (topic == NULL)
		return mri_admin_fail(MR_EINVAL,
				      "topics.read needs \"topic\", a valid "
				      "topic name");
	if (!mri_admin_dlq_int(req, "partition", 0, INT32_MAX, &p) || p < 0 ||
	    !mri_admin_dlq_int(req, "offset", 0, INT64_MAX, &off) ||
	    !mri_admin_dlq_int(req, "max_records", 1, READ__RECORDS_MAX,
			       &mr) ||
	    !mri_admin_dlq_int(req, "max_bytes", 1, READ__BYTES_MAX, &mb) ||
	    !mri_admin_dlq_int(req, "timeout_ms", 1, MRI_ADMIN_DLQ_TIMEOUT_MAX,
			       &to))
		return mri_admin_fail(MR_EINVAL,
				      "topics.read needs \"partition\" >= 0; "
				      "offset is >= 0, max_records 1..%d, "
				      "max_bytes 1..%d, timeout_ms 1..%d",
				      READ__RECORDS_MAX, READ__BYTES_MAX,
				      MRI_ADMIN_DLQ_TIMEOUT_MAX);
	rc = mri_dlq_kafka_open_range(&k, c->tmpl, topic, (int32_t)p, off,
				      (int)to, why, sizeof(why));
	if (rc == MR_ENOENT)
		return mri_admin_fail(rc,
				      "no topic %s: the name is wrong, or "
				      "nothing was written there yet; "
				      "`mailroom topics list`",
				      topic);
	if (rc != MR_OK)
		return mri_admin_fail(rc, "%s", why);
	mri_dlq_kafka_marks(k, (int32_t)p, &lo, &hi);
	next = off > lo ? off : lo;
	mri_dlq_kafka_source(k, &src);
	recs = json_array();
	while (json_array_size(recs) < (size_t)mr) {
		json_t *o;

		if ((rc = src.next(src.arg, &r, &end, why, sizeof(why))) !=
			MR_OK ||
		    end)
			break;
		// One record at least, whatever its size.
		if (json_array_size(recs) > 0 &&
		    bytes + read__size(&r) > (size_t)mb)
			break;
		if ((o = read__record(&r)) == NULL) {
			rc = MR_ENOMEM;
			snprintf(why, sizeof(why), "out of memory");
			break;
		}
		json_array_append_new(recs, o);
		bytes += read__size(&r);
		next = r.offset + 1;
	}
	if (rc == MR_OK && end && next < hi)
		next = hi; // what is left below it holds no record
	mri_dlq_kafka_close(k);
	if (rc != MR_OK) {
		json_decref(recs);
		return mri_admin_fail(rc, "%s", why);
	}
	rep = json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:b, s:o}", "ok", 1,
			"topic", topic, "partition", (int)p, "log_start",
			(json_int_t)lo, "high_watermark", (json_int_t)hi,
			"next", (json_int_t)next, "end", next >= hi,
			"records", recs);
	return rep != NULL ? rep : mri_admin_fail(MR_ENOMEM, "out of memory");
}
