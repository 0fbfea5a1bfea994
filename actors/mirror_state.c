/*
 * Durable state of mirrored actors (actors/mirror_state.h): the state
 * topic made or checked, a partition's snapshots read with topics.read
 * (JSON through mr_admin, the bytes as base64), and the table of the
 * snapshots of the partitions this process serves.
 */
#include "mirror_state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base64.h"
#include "mirror_internal.h"

#define STATE__MAGIC     "MRS1"
#define STATE__PAGE      100000     /* records per topics.read */
#define STATE__PAGE_SIZE (4 << 20)  /* bytes per topics.read */
#define STATE__TOPIC_TRIES 25       /* the topic's metadata, 200 ms apart */

struct state__ent {
	struct state__ent *next;
	uint64_t           hash;
	int32_t            partition; /* of the message it reflects */
	int64_t            offset;
	size_t             key_len, len;
	unsigned char     *bytes; /* len bytes */
	unsigned char      key[];
};

struct mri_mirror_state {
	mr_client          *c;
	char               *topic; /* the state topic */
	int32_t             partitions;
	pthread_mutex_t     lock;
	bool               *restored; /* per partition */
	struct state__ent **tab;
	size_t              cap, n;
};

/* ---- the snapshot record ----------------------------------------------- */

void *
mri_mirror_snap_encode(int32_t partition, int64_t offset, const void *b,
		       size_t n, size_t *out_len)
{
	unsigned char *v = malloc(MRI_MIRROR_SNAP_HEAD + n + 1);
	uint32_t       p = (uint32_t)partition;
	uint64_t       o = (uint64_t)offset;

	if (v == NULL)
		return NULL;
	memcpy(v, STATE__MAGIC, 4);
	for (int i = 0; i < 4; i++)
		v[4 + i] = (unsigned char)(p >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		v[8 + i] = (unsigned char)(o >> (56 - 8 * i));
	if (n > 0)
		memcpy(v + MRI_MIRROR_SNAP_HEAD, b, n);
	*out_len = MRI_MIRROR_SNAP_HEAD + n;
	return v;
}

int
mri_mirror_snap_decode(const void *v, size_t n, int32_t *partition,
		       int64_t *offset, const void **b, size_t *bn)
{
	const unsigned char *p = v;
	uint32_t             part = 0;
	uint64_t             off  = 0;

	if (n < MRI_MIRROR_SNAP_HEAD || memcmp(p, STATE__MAGIC, 4) != 0)
		return MR_EPROTO;
	for (int i = 0; i < 4; i++)
		part = part << 8 | p[4 + i];
	for (int i = 0; i < 8; i++)
		off = off << 8 | p[8 + i];
	*partition = (int32_t)part;
	*offset    = (int64_t)off;
	*b         = p + MRI_MIRROR_SNAP_HEAD;
	*bn        = n - MRI_MIRROR_SNAP_HEAD;
	return MR_OK;
}

/* ---- the table (under st->lock) ---------------------------------------- */

static struct state__ent **
state__slot(struct mri_mirror_state *st, uint64_t h, const void *key,
	    size_t len)
{
	struct state__ent **pp = &st->tab[h & (st->cap - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->key_len == len &&
		    memcmp((*pp)->key, key, len) == 0)
			break;
	return pp;
}

static void
state__grow(struct mri_mirror_state *st)
{
	size_t              cap = st->cap * 2;
	struct state__ent **tab = calloc(cap, sizeof(*tab));

	if (tab == NULL)
		return; // longer chains, still correct
	for (size_t i = 0; i < st->cap; i++)
		for (struct state__ent *e = st->tab[i], *next; e != NULL;
		     e = next) {
			next                      = e->next;
			e->next                   = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
		}
	free(st->tab);
	st->tab = tab;
	st->cap = cap;
}

/* Keep the snapshot unless the table has a later one of its key. */
static int
state__keep(struct mri_mirror_state *st, const void *key, size_t len,
	    int32_t partition, int64_t offset, const void *b, size_t n)
{
	uint64_t            h  = mri_mirror_hash(key, len);
	struct state__ent **pp = state__slot(st, h, key, len);
	struct state__ent  *e  = *pp;
	unsigned char      *copy;

	if (e != NULL && e->partition == partition && e->offset > offset)
		return MR_OK;
	if ((copy = malloc(n ? n : 1)) == NULL)
		return MR_ENOMEM;
	if (n > 0)
		memcpy(copy, b, n);
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e) + len)) == NULL) {
			free(copy);
			return MR_ENOMEM;
		}
		e->hash    = h;
		e->key_len = len;
		memcpy(e->key, key, len);
		*pp = e;
		if (++st->n > st->cap)
			state__grow(st);
	} else {
		free(e->bytes);
	}
	e->partition = partition;
	e->offset    = offset;
	e->bytes     = copy;
	e->len       = n;
	return MR_OK;
}

/* Forget the entries of \p partition. */
static void
state__forget(struct mri_mirror_state *st, int32_t partition)
{
	for (size_t i = 0; i < st->cap; i++)
		for (struct state__ent **pp = &st->tab[i]; *pp != NULL;) {
			struct state__ent *e = *pp;

			if (e->partition != partition) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			free(e->bytes);
			free(e);
			st->n--;
		}
}

/* ---- admin calls ------------------------------------------------------- */

int
mri_mirror_err_code(const char *e)
{
	for (int i = 1; i < MR__ERR_END; i++)
		if (strcmp(mr_err_name(i), e) == 0)
			return i;
	return MR_EPROTO;
}

int
mri_mirror_admin(mr_client *c, json_t *req, json_t **rep, char *why, size_t n)
{
	char       *body = json_dumps(req, JSON_COMPACT), *text = NULL;
	const char *e;
	int         rc;

	json_decref(req);
	if (body == NULL) {
		snprintf(why, n, "out of memory");
		return MR_ENOMEM;
	}
	rc = mr_admin(c, body, &text);
	free(body);
	if (rc != MR_OK) {
		snprintf(why, n, "%s", mr_client_last_error());
		return rc;
	}
	*rep = json_loads(text, 0, NULL);
	free(text);
	if (*rep == NULL) {
		snprintf(why, n, "mailroomd's answer is not JSON");
		return MR_EPROTO;
	}
	if (json_is_true(json_object_get(*rep, "ok")))
		return MR_OK;
	e = json_string_value(json_object_get(*rep, "error"));
	snprintf(why, n, "%s",
		 json_string_value(json_object_get(*rep, "message"))
		     ? json_string_value(json_object_get(*rep, "message"))
		     : "refused");
	rc = e != NULL ? mri_mirror_err_code(e) : MR_EPROTO;
	json_decref(*rep);
	*rep = NULL;
	return rc;
}

/* \p topic's partition count (*n), or MR_ENOENT. */
static int
state__partitions(mr_client *c, const char *topic, int32_t *n, char *why,
		  size_t wn)
{
	json_t *rep;
	int     rc;

	rc = mri_mirror_admin(c,
			  json_pack("{s:s, s:s}", "op", "topics.describe",
				    "topic", topic),
			  &rep, why, wn);
	if (rc != MR_OK)
		return rc;
	*n = (int32_t)json_integer_value(
	    json_object_get(rep, "partition_count"));
	json_decref(rep);
	return MR_OK;
}

/* A state of \p parts partitions, nothing restored. */
static int
state__alloc(struct mri_mirror_state **out, mr_client *c,
	     const char *state_topic, int32_t parts, char *why, size_t n)
{
	struct mri_mirror_state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->topic = strdup(state_topic)) == NULL ||
	    (st->restored = calloc((size_t)parts + 1, sizeof(bool))) == NULL ||
	    (st->tab = calloc(64, sizeof(*st->tab))) == NULL) {
		if (st != NULL) {
			free(st->topic);
			free(st->restored);
		}
		free(st);
		snprintf(why, n, "out of memory");
		return MR_ENOMEM;
	}
	st->c          = c;
	st->partitions = parts;
	st->cap        = 64;
	pthread_mutex_init(&st->lock, NULL);
	*out = st;
	return MR_OK;
}

int
mri_mirror_state_new(struct mri_mirror_state **out, mr_client *c,
		     const char *topic, const char *state_topic, char *why,
		     size_t n)
{
	json_t *rep;
	int32_t parts, sparts;
	int     rc;

	// A topic just made may take a moment to show in the metadata.
	for (int t = 0; t < STATE__TOPIC_TRIES; t++) {
		if ((rc = state__partitions(c, topic, &parts, why, n)) !=
		    MR_ENOENT)
			break;
		nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
	}
	if (rc != MR_OK) {
		if (rc == MR_ENOENT)
			snprintf(why, n,
				 "the type's topic %s does not exist: create "
				 "it first (its state topic %s gets as many "
				 "partitions)",
				 topic, state_topic);
		return rc;
	}
	rc = state__partitions(c, state_topic, &sparts, why, n);
	if (rc == MR_ENOENT) {
		rc = mri_mirror_admin(
		    c,
		    json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "op",
			      "topics.create", "topic", state_topic,
			      "partitions", (int)parts, "replication", -1,
			      "config", "cleanup.policy", "compact"),
		    &rep, why, n);
		// The embedded cluster takes no topic settings (and compacts
		// nothing): the topic as it comes.
		if (rc == MR_ENOTSUP)
			rc = mri_mirror_admin(c,
					  json_pack("{s:s, s:s, s:i, s:i}",
						    "op", "topics.create",
						    "topic", state_topic,
						    "partitions", (int)parts,
						    "replication", -1),
					  &rep, why, n);
		if (rc == MR_OK) {
			json_decref(rep);
			sparts = parts;
		} else if (rc == MR_EEXIST) {
			// Made elsewhere meanwhile (another process of the
			// type starting at once), and maybe not yet in the
			// metadata mailroomd reads.
			for (int t = 0; t < STATE__TOPIC_TRIES; t++) {
				rc = state__partitions(c, state_topic, &sparts,
						       why, n);
				if (rc != MR_ENOENT)
					break;
				nanosleep(&(struct timespec){0, 200 * 1000000L},
					  NULL);
			}
		}
	}
	if (rc != MR_OK)
		return rc;
	if (sparts != parts) {
		snprintf(why, n,
			 "the state topic %s has %d partitions and the "
			 "type's topic %s %d: a key's snapshots must sit in "
			 "the partition of the same number as its messages; "
			 "give the type a new state topic",
			 state_topic, (int)sparts, topic, (int)parts);
		return MR_ECONFIG;
	}
	return state__alloc(out, c, state_topic, parts, why, n);
}

void
mri_mirror_state_free(struct mri_mirror_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->cap; i++)
		for (struct state__ent *e = st->tab[i], *next; e != NULL;
		     e = next) {
			next = e->next;
			free(e->bytes);
			free(e);
		}
	pthread_mutex_destroy(&st->lock);
	free(st->tab);
	free(st->restored);
	free(st->topic);
	free(st);
}

int32_t
mri_mirror_state_partitions(const struct mri_mirror_state *st)
{
	return st->partitions;
}

const char *
mri_mirror_state_topic(const struct mri_mirror_state *st)
{
	return st->topic;
}

/* ---- restoring --------------------------------------------------------- */

/* Keep the snapshot in record \p r of a topics.read reply. */
static int
state__record(struct mri_mirror_state *st, json_t *r)
{
	const char    *k = json_string_value(json_object_get(r, "key"));
	const char    *v = json_string_value(json_object_get(r, "payload"));
	const char    *ke, *ve;
	unsigned char *kb = NULL, *vb = NULL;
	const void    *b;
	size_t         kl = 0, vl = 0, bn;
	int32_t        part;
	int64_t        off;
	int            rc = MR_OK;

	ke = json_string_value(json_object_get(r, "key_encoding"));
	ve = json_string_value(json_object_get(r, "payload_encoding"));
	if (k == NULL || v == NULL || ke == NULL || ve == NULL)
		return MR_OK; // keyless or empty: not a snapshot
	if (strcmp(ke, "base64") == 0)
		kb = mri_base64_decode(k, &kl);
	else
		kl = strlen(k);
	if (strcmp(ve, "base64") == 0)
		vb = mri_base64_decode(v, &vl);
	else
		vl = strlen(v);
	if ((strcmp(ke, "base64") == 0 && kb == NULL) ||
	    (strcmp(ve, "base64") == 0 && vb == NULL))
		rc = MR_ENOMEM;
	else if (mri_mirror_snap_decode(vb ? (void *)vb : v, vl, &part, &off,
					&b, &bn) == MR_OK)
		rc = state__keep(st, kb ? (void *)kb : k, kl, part, off, b, bn);
	free(kb);
	free(vb);
	return rc;
}

int
mri_mirror_state_restore(struct mri_mirror_state *st, int32_t partition,
			 char *why, size_t n)
{
	json_t *rep, *r;
	int64_t next = 0;
	bool    end  = false;
	size_t  i;
	int     rc = MR_OK;

	if (partition < 0 || partition >= st->partitions) {
		snprintf(why, n, "%s has no partition %d", st->topic,
			 (int)partition);
		return MR_EINVAL;
	}
	pthread_mutex_lock(&st->lock);
	end = st->restored[partition];
	pthread_mutex_unlock(&st->lock);
	if (end)
		return MR_OK;
	// Read before taking the lock: the table serves the partitions
	// already restored meanwhile. A key of this partition is not served
	// before its restore ends (the caller's).
	pthread_mutex_lock(&st->lock);
	state__forget(st, partition);
	pthread_mutex_unlock(&st->lock);
	while (!end && rc == MR_OK) {
		rc = mri_mirror_admin(
		    st->c,
		    json_pack("{s:s, s:s, s:i, s:I, s:i, s:i}", "op",
			      "topics.read", "topic", st->topic, "partition",
			      (int)partition, "offset", (json_int_t)next,
			      "max_records", STATE__PAGE, "max_bytes",
			      STATE__PAGE_SIZE),
		    &rep, why, n);
		if (rc != MR_OK)
			break;
		pthread_mutex_lock(&st->lock);
		json_array_foreach(json_object_get(rep, "records"), i, r)
			if (rc == MR_OK)
				rc = state__record(st, r);
		pthread_mutex_unlock(&st->lock);
		end  = json_is_true(json_object_get(rep, "end"));
		next = json_integer_value(json_object_get(rep, "next"));
		json_decref(rep);
	}
	if (rc == MR_ENOMEM)
		snprintf(why, n, "out of memory");
	pthread_mutex_lock(&st->lock);
	if (rc == MR_OK)
		st->restored[partition] = true;
	else
		state__forget(st, partition);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void
mri_mirror_state_drop(struct mri_mirror_state *st, int32_t partition)
{
	if (partition < 0 || partition >= st->partitions)
		return;
	pthread_mutex_lock(&st->lock);
	if (st->restored[partition]) {
		st->restored[partition] = false;
		state__forget(st, partition);
	}
	pthread_mutex_unlock(&st->lock);
}

bool
mri_mirror_state_restored(struct mri_mirror_state *st, int32_t partition)
{
	bool r;

	if (partition < 0 || partition >= st->partitions)
		return false;
	pthread_mutex_lock(&st->lock);
	r = st->restored[partition];
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- the table's users ------------------------------------------------- */

bool
mri_mirror_state_applied(struct mri_mirror_state *st, const void *key,
			 size_t len, int32_t partition, int64_t offset)
{
	struct state__ent *e;
	bool               r;

	pthread_mutex_lock(&st->lock);
	e = *state__slot(st, mri_mirror_hash(key, len), key, len);
	r = e != NULL && e->partition == partition && e->offset >= offset;
	pthread_mutex_unlock(&st->lock);
	return r;
}

bool
mri_mirror_state_offset(struct mri_mirror_state *st, const void *key,
			size_t len, int32_t *partition, int64_t *offset)
{
	uint64_t           h = mri_mirror_hash(key, len);
	struct state__ent *e;

	pthread_mutex_lock(&st->lock);
	if ((e = *state__slot(st, h, key, len)) != NULL) {
		*partition = e->partition;
		*offset    = e->offset;
	}
	pthread_mutex_unlock(&st->lock);
	return e != NULL;
}

int
mri_mirror_state_get(struct mri_mirror_state *st, const void *key,
		     size_t len, void **out, size_t *out_len)
{
	struct state__ent *e;
	int                rc = MR_OK;

	*out     = NULL;
	*out_len = 0;
	pthread_mutex_lock(&st->lock);
	e = *state__slot(st, mri_mirror_hash(key, len), key, len);
	if (e != NULL) {
		if ((*out = malloc(e->len ? e->len : 1)) == NULL)
			rc = MR_ENOMEM;
		else {
			memcpy(*out, e->bytes, e->len);
			*out_len = e->len;
		}
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int
mri_mirror_state_put(struct mri_mirror_state *st, const void *key,
		     size_t len, int32_t partition, int64_t offset,
		     const void *b, size_t n)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = state__keep(st, key, len, partition, offset, b, n);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* ---- reading a state topic (mr_mirror_snapshots) ---------------------- */

int
mr_mirror_snapshots(mr_client *c, const char *state_topic,
		    mr_mirror_snapshot_fn fn, void *arg)
{
	struct mri_mirror_state *st;
	char                     why[256];
	int32_t                  parts;
	int                      rc;

	if (c == NULL || state_topic == NULL || fn == NULL)
		return MR_EINVAL;
	if ((rc = state__partitions(c, state_topic, &parts, why,
				    sizeof(why))) != MR_OK ||
	    (rc = state__alloc(&st, c, state_topic, parts, why,
			       sizeof(why))) != MR_OK) {
		fprintf(stderr, "mailroom: snapshots of %s: %s\n", state_topic,
			why);
		return rc;
	}
	for (int32_t p = 0; p < parts && rc == MR_OK; p++)
		rc = mri_mirror_state_restore(st, p, why, sizeof(why));
	if (rc != MR_OK)
		fprintf(stderr, "mailroom: snapshots of %s: %s\n", state_topic,
			why);
	for (size_t i = 0; rc == MR_OK && i < st->cap; i++)
		for (struct state__ent *e = st->tab[i]; rc == MR_OK && e;
		     e = e->next)
			rc = fn(arg, e->key, e->key_len, e->bytes, e->len,
				e->partition, e->offset);
	mri_mirror_state_free(st);
	return rc;
}
