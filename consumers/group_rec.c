/*
 * A group's buffered record (group_internal.h): made on the group's
 * thread from librdkafka's message with its id, hashes and size worked out
 * once; what a delivery of it shows; its counted life (one hold for the
 * partition's ring, one for each batch or hook call; the last release
 * destroys it); and the hooks' calls.
 */
#include "group.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/group_internal.h"
#include "consumers/journal.h"
#include "core/log.h"

/* "topic/partition/offset", the id of a record that has none, without
 * snprintf (one per such record).
 * @returns its length, at most MRI_GROUP_ID_MAX. */
static size_t
group__pos_id(char *out, const char *topic, int32_t partition,
	      int64_t offset)
{
	char   digits[24];
	size_t n = strlen(topic), k;

	if (n > MRI_GROUP_ID_MAX - 42)
		n = MRI_GROUP_ID_MAX - 42;
	memcpy(out, topic, n);
	for (int i = 0; i < 2; i++) {
		uint64_t v = i == 0 ? (uint32_t)partition : (uint64_t)offset;

		if ((i == 0 && partition < 0) || (i == 1 && offset < 0)) {
			out[n++] = '/';
			out[n++] = '-';
			v = i == 0 ? (uint64_t)-(int64_t)partition
				   : (uint64_t)-offset;
		} else {
			out[n++] = '/';
		}
		k = 0;
		do {
			digits[k++] = (char)('0' + v % 10);
			v /= 10;
		} while (v != 0);
		while (k > 0)
			out[n++] = digits[--k];
	}
	out[n] = '\0';
	return n;
}

/* The headers of \p m that are handed out into \p hdrs
 * (MRI_GROUP_HDR_MAX), and which of them is its ce_id (*ceid; SIZE_MAX if
 * none).
 * @returns how many. */
static size_t
group__hdrs(rd_kafka_message_t *m, struct mri_group_hdr *hdrs, size_t *ceid)
{
	rd_kafka_headers_t *hs = NULL;
	const void         *val;
	const char         *name;
	size_t              vlen, nh = 0;

	*ceid = SIZE_MAX;
	if (rd_kafka_message_headers(m, &hs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	for (size_t i = 0;
	     nh < MRI_GROUP_HDR_MAX &&
	     rd_kafka_header_get_all(hs, i, &name, &val, &vlen) == 0;
	     i++) {
		size_t nl = strlen(name);

		if (nl == 0 || nl > MRI_GROUP_HDR_NAME_MAX)
			continue;
		hdrs[nh].name      = name;
		hdrs[nh].name_len  = nl;
		hdrs[nh].value     = val ? val : "";
		hdrs[nh].value_len = vlen;
		if (strcmp(name, "ce_id") == 0 && vlen > 0 &&
		    vlen <= MRI_GROUP_ID_MAX)
			*ceid = nh;
		nh++;
	}
	return nh;
}

void
group__deliv(const struct group_rec *r, struct mri_group_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->topic        = r->topic;
	d->topic_len    = r->topic_len;
	d->partition    = r->partition;
	d->offset       = r->offset;
	d->timestamp_ms = r->ts;
	d->has_key      = r->keyp != NULL;
	d->key          = r->keyp ? r->keyp : "";
	d->key_len      = r->key_len;
	d->value        = r->value;
	d->value_len    = r->value_len;
	d->hdrs         = r->hdr;
	d->nhdrs        = r->nhdrs;
	d->id           = r->idp;
	d->id_len       = r->idlen;
}

/* The default measure: the bytes a record carries. */
static size_t
group__bytes(const struct mri_group_delivery *d)
{
	size_t n = d->topic_len + d->id_len + d->key_len + d->value_len;

	for (size_t i = 0; i < d->nhdrs; i++)
		n += d->hdrs[i].name_len + d->hdrs[i].value_len;
	return n;
}

/* Copy \p n bytes of \p src to *at (moved on past them).
 * @returns where they went. */
static const void *
group__put(char **at, const void *src, size_t n)
{
	char *to = *at;

	if (n > 0)
		memcpy(to, src, n);
	*at += n;
	return to;
}

struct group_rec *
group__rec_new(struct mri_group *g, rd_kafka_message_t *m, uint64_t part)
{
	struct mri_group_hdr      hdrs[MRI_GROUP_HDR_MAX];
	struct mri_group_delivery d;
	struct group_rec         *r;
	const char               *topic = rd_kafka_topic_name(m->rkt);
	char                      pid[MRI_GROUP_ID_MAX + 1], *at;
	size_t ceid, plen = 0, nh, tlen = strlen(topic), bytes;

	nh = group__hdrs(m, hdrs, &ceid);
	if (ceid == SIZE_MAX)
		plen = group__pos_id(pid, topic, m->partition, m->offset);
	bytes = sizeof(*r) + nh * sizeof(r->hdr[0]) + tlen + 1 + m->key_len +
		m->len + plen + 1;
	for (size_t i = 0; i < nh; i++)
		bytes += hdrs[i].name_len + 1 + hdrs[i].value_len;
	if ((r = malloc(bytes)) == NULL)
		return NULL;
	at           = (char *)&r->hdr[nh];
	r->mem       = bytes;
	r->refs      = 1;
	r->nhdrs     = (uint32_t)nh;
	r->part      = part;
	r->partition = m->partition;
	r->offset    = m->offset;
	r->ts        = rd_kafka_message_timestamp(m, NULL);
	r->key = mri_journal_hash(MRI_JOURNAL_HASH_INIT, m->key, m->key_len);
	r->topic     = group__put(&at, topic, tlen + 1);
	r->topic_len = tlen;
	r->keyp      = m->key ? group__put(&at, m->key, m->key_len) : NULL;
	r->key_len   = m->key_len;
	r->value     = group__put(&at, m->payload ? m->payload : "", m->len);
	r->value_len = m->len;
	for (size_t i = 0; i < nh; i++) {
		r->hdr[i].name = group__put(&at, hdrs[i].name,
					    hdrs[i].name_len + 1);
		r->hdr[i].name_len  = hdrs[i].name_len;
		r->hdr[i].value     = group__put(&at, hdrs[i].value,
						 hdrs[i].value_len);
		r->hdr[i].value_len = hdrs[i].value_len;
	}
	if (ceid != SIZE_MAX) {
		r->idp   = r->hdr[ceid].value;
		r->idlen = r->hdr[ceid].value_len;
		r->id    = mri_journal_hash(MRI_JOURNAL_HASH_INIT, r->idp,
					    r->idlen);
	} else {
		r->idp   = group__put(&at, pid, plen + 1);
		r->idlen = plen;
		r->id    = mri_journal_pos_of(part, m->offset);
	}
	group__deliv(r, &d);
	r->size = g->c.record_size ? g->c.record_size(&d) : group__bytes(&d);
	return r;
}

void
group__rec_rele(struct group_rec *r)
{
	if (--r->refs > 0)
		return;
	free(r);
}

void
group__observe(void *arg, const struct mri_delivery *d,
	       enum mri_engine_fail why)
{
	struct mri_group   *g = arg;
	struct group_fails *f = &g->fails;

	if (g->hooks.on_failure == NULL)
		return;
	if (f->n == f->cap) {
		size_t             nc = f->cap ? f->cap * 2 : 16;
		struct group_fail *v  = realloc(f->v, nc * sizeof(*v));

		if (v == NULL) {
			mri_warn("component=consumer group=%s msg=\"out of "
				 "memory: a failed attempt not told to the "
				 "supervisor\"",
				 g->name);
			return;
		}
		f->v   = v;
		f->cap = nc;
	}
	((struct group_rec *)d->opaque)->refs++;
	f->v[f->n].d     = *d;
	f->v[f->n++].why = why;
}

void
group__fails_fire(struct mri_group *g, struct group_fails *f,
		  const char *reason, size_t reason_len)
{
	_Static_assert((int)MRI_GROUP_NACKED == (int)MRI_ENGINE_NACKED &&
			   (int)MRI_GROUP_REJECTED ==
			       (int)MRI_ENGINE_REJECTED &&
			   (int)MRI_GROUP_EXPIRED == (int)MRI_ENGINE_EXPIRED &&
			   (int)MRI_GROUP_ABANDONED ==
			       (int)MRI_ENGINE_ABANDONED,
		       "one numbering of the failures");
	if (f->n == 0) {
		free(f->v);
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		const struct group_rec    *r  = f->v[i].d.opaque;
		bool                       nk = f->v[i].why == MRI_ENGINE_NACKED ||
				 f->v[i].why == MRI_ENGINE_REJECTED;
		struct mri_group_record_id id = {
		    .topic     = r->topic,
		    .partition = r->partition,
		    .offset    = r->offset,
		    .id        = r->idp,
		    .id_len    = r->idlen,
		};

		g->hooks.on_failure(g->hooks.arg, &id, f->v[i].d.attempt,
				    (enum mri_group_fail)f->v[i].why,
				    nk ? reason : NULL, nk ? reason_len : 0);
	}
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < f->n; i++)
		group__rec_rele(f->v[i].d.opaque);
	pthread_mutex_unlock(&g->lock);
	free(f->v);
}

#define GROUP__EXHAUSTED_MAX 64

void
group__exhausted_fire(struct mri_group *g)
{
	struct mri_delivery ds[GROUP__EXHAUSTED_MAX];
	size_t              n;

	if (g->hooks.on_exhausted == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	n = mri_engine_take_exhausted(g->e, ds, GROUP__EXHAUSTED_MAX);
	for (size_t i = 0; i < n; i++)
		((struct group_rec *)ds[i].opaque)->refs++;
	pthread_mutex_unlock(&g->lock);
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct mri_group_delivery d;

		group__deliv(ds[i].opaque, &d);
		d.handle  = ds[i].handle;
		d.attempt = ds[i].attempt;
		d.size    = ((const struct group_rec *)ds[i].opaque)->size;
		g->hooks.on_exhausted(g->hooks.arg, &d);
	}
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++)
		group__rec_rele(ds[i].opaque);
	pthread_mutex_unlock(&g->lock);
}
