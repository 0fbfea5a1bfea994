/*
 * The dead-letter state set, its records, and replay's pure parts
 * (dlq/state.h). The set is two open-addressing tables: positions to
 * states, and original positions' hashes to states.
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailroom/error.h"

struct state_pos {
	int64_t                offset;
	int32_t                partition;
	uint8_t                st;   /* enum mri_dlq_st */
	bool                   used; /* the slot was ever taken (NONE:
					forgotten) */
	struct mri_dlq_intent *intent; /* while PENDING */
};

struct state_orig {
	uint64_t orig; /* 0: a free slot */
	uint8_t  st;
};

struct mri_dlq_state {
	struct state_pos  *pos;
	size_t             pcap, pused, count;
	struct state_orig *orig;
	size_t             ocap, oused;
};

static const char *const state__names[] = {"none", "replayed", "resolved",
					    "replaying"};

const char *
mri_dlq_st_name(enum mri_dlq_st s)
{
	return (unsigned)s < 4 ? state__names[s] : "none";
}

static void
state__intent_free(struct mri_dlq_intent *in)
{
	if (in == NULL)
		return;
	free(in->target);
	free(in->replay_id);
	free(in);
}

static uint64_t
state__mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t
state__pos_hash(int32_t p, int64_t o)
{
	return state__mix((uint64_t)o * 0x9e3779b97f4a7c15ULL ^ (uint32_t)p);
}

int
mri_dlq_state_new(struct mri_dlq_state **out)
{
	struct mri_dlq_state *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return MR_ENOMEM;
	s->pcap = 64;
	s->ocap = 64;
	s->pos  = calloc(s->pcap, sizeof(*s->pos));
	s->orig = calloc(s->ocap, sizeof(*s->orig));
	if (s->pos == NULL || s->orig == NULL) {
		mri_dlq_state_free(s);
		return MR_ENOMEM;
	}
	*out = s;
	return MR_OK;
}

void
mri_dlq_state_free(struct mri_dlq_state *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->pos != NULL && i < s->pcap; i++)
		state__intent_free(s->pos[i].intent);
	free(s->pos);
	free(s->orig);
	free(s);
}

static struct state_pos *
state__pos_slot(struct state_pos *t, size_t cap, int32_t p, int64_t o)
{
	size_t i = (size_t)state__pos_hash(p, o) & (cap - 1);

	while (t[i].used && (t[i].partition != p || t[i].offset != o))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static struct state_orig *
state__orig_slot(struct state_orig *t, size_t cap, uint64_t orig)
{
	size_t i = (size_t)state__mix(orig) & (cap - 1);

	while (t[i].orig != 0 && t[i].orig != orig)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Keep the tables at most half full. */
static int
state__room(struct mri_dlq_state *s)
{
	if ((s->pused + 1) * 2 > s->pcap) {
		size_t            cap = s->pcap * 2;
		struct state_pos *t   = calloc(cap, sizeof(*t));

		if (t == NULL)
			return MR_ENOMEM;
		for (size_t i = 0; i < s->pcap; i++)
			if (s->pos[i].used)
				*state__pos_slot(t, cap, s->pos[i].partition,
						 s->pos[i].offset) = s->pos[i];
		free(s->pos);
		s->pos  = t;
		s->pcap = cap;
	}
	if ((s->oused + 1) * 2 > s->ocap) {
		size_t             cap = s->ocap * 2;
		struct state_orig *t   = calloc(cap, sizeof(*t));

		if (t == NULL)
			return MR_ENOMEM;
		for (size_t i = 0; i < s->ocap; i++)
			if (s->orig[i].orig != 0)
				*state__orig_slot(t, cap, s->orig[i].orig) =
				    s->orig[i];
		free(s->orig);
		s->orig = t;
		s->ocap = cap;
	}
	return MR_OK;
}

int
mri_dlq_state_put(struct mri_dlq_state *s, int32_t partition, int64_t offset,
		  enum mri_dlq_st st, uint64_t orig)
{
	struct state_pos  *e;
	struct state_orig *o;

	if (state__room(s) != MR_OK)
		return MR_ENOMEM;
	e = state__pos_slot(s->pos, s->pcap, partition, offset);
	if (!e->used) {
		e->used      = true;
		e->partition = partition;
		e->offset    = offset;
		s->pused++;
	}
	if (e->st == MRI_DLQ_ST_NONE && st != MRI_DLQ_ST_NONE)
		s->count++;
	else if (e->st != MRI_DLQ_ST_NONE && st == MRI_DLQ_ST_NONE)
		s->count--;
	e->st = (uint8_t)st;
	state__intent_free(e->intent);
	e->intent = NULL;
	if (orig != 0 && st != MRI_DLQ_ST_NONE && st != MRI_DLQ_ST_PENDING) {
		o = state__orig_slot(s->orig, s->ocap, orig);
		if (o->orig == 0) {
			o->orig = orig;
			s->oused++;
		}
		o->st = (uint8_t)st;
	}
	return MR_OK;
}

int
mri_dlq_state_put_intent(struct mri_dlq_state *s, int32_t partition,
			 int64_t offset, int64_t at_ms, const char *target,
			 const char *replay_id)
{
	struct mri_dlq_intent *in = calloc(1, sizeof(*in));
	struct state_pos      *e;

	if (in == NULL || (in->target = strdup(target)) == NULL ||
	    (in->replay_id = strdup(replay_id)) == NULL ||
	    mri_dlq_state_put(s, partition, offset, MRI_DLQ_ST_PENDING, 0) !=
		MR_OK) {
		state__intent_free(in);
		return MR_ENOMEM;
	}
	in->at_ms = at_ms;
	e         = state__pos_slot(s->pos, s->pcap, partition, offset);
	e->intent = in;
	return MR_OK;
}

const struct mri_dlq_intent *
mri_dlq_state_intent(const struct mri_dlq_state *s, int32_t partition,
		     int64_t offset)
{
	const struct state_pos *e =
	    state__pos_slot(s->pos, s->pcap, partition, offset);

	return e->used && e->st == MRI_DLQ_ST_PENDING ? e->intent : NULL;
}

enum mri_dlq_st
mri_dlq_state_get(const struct mri_dlq_state *s, int32_t partition,
		  int64_t offset)
{
	const struct state_pos *e =
	    state__pos_slot(s->pos, s->pcap, partition, offset);

	return e->used ? (enum mri_dlq_st)e->st : MRI_DLQ_ST_NONE;
}

enum mri_dlq_st
mri_dlq_state_orig(const struct mri_dlq_state *s, uint64_t orig)
{
	const struct state_orig *o;

	if (orig == 0)
		return MRI_DLQ_ST_NONE;
	o = state__orig_slot(s->orig, s->ocap, orig);
	return o->orig != 0 ? (enum mri_dlq_st)o->st : MRI_DLQ_ST_NONE;
}

size_t
mri_dlq_state_count(const struct mri_dlq_state *s)
{
	return s->count;
}

int64_t
mri_dlq_state_prefix(const struct mri_dlq_state *s, int32_t partition,
		     int64_t low)
{
	int64_t         o = low < 0 ? 0 : low;
	enum mri_dlq_st st;

	while ((st = mri_dlq_state_get(s, partition, o)) ==
		   MRI_DLQ_ST_REPLAYED ||
	       st == MRI_DLQ_ST_RESOLVED)
		o++;
	return o;
}

size_t
mri_dlq_pos_fmt(char *out, int32_t partition, int64_t offset)
{
	int n = snprintf(out, MRI_DLQ_POS_STRLEN + 1, "%ld@%lld",
			 (long)partition, (long long)offset);

	return n > 0 ? (size_t)n : 0;
}

/* A decimal of \p len bytes, no sign, at most \p max. */
static bool
state__dec(const char *p, size_t len, int64_t max, int64_t *v)
{
	int64_t x = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (x > (max - (p[i] - '0')) / 10)
			return false;
		x = x * 10 + (p[i] - '0');
	}
	*v = x;
	return true;
}

int
mri_dlq_pos_parse(const char *p, size_t len, int32_t *partition,
		  int64_t *offset)
{
	const char *at = memchr(p, '@', len);
	int64_t     part, off;

	if (at == NULL ||
	    !state__dec(p, (size_t)(at - p), INT32_MAX, &part) ||
	    !state__dec(at + 1, len - (size_t)(at - p) - 1, INT64_MAX, &off))
		return MR_EINVAL;
	*partition = (int32_t)part;
	*offset    = off;
	return MR_OK;
}

int
mri_dlq_state_load(struct mri_dlq_state *s, const void *key, size_t klen,
		   const void *val, size_t vlen)
{
	int32_t         p;
	int64_t         o;
	json_t         *j;
	const char     *st, *orig, *tg, *id;
	enum mri_dlq_st v;
	uint64_t        h = 0;
	int             rc;

	if (key == NULL || mri_dlq_pos_parse(key, klen, &p, &o) != MR_OK)
		return MR_OK;
	if (val == NULL)
		return mri_dlq_state_put(s, p, o, MRI_DLQ_ST_NONE, 0);
	if ((j = json_loadb(val, vlen, 0, NULL)) == NULL)
		return MR_OK;
	st   = json_string_value(json_object_get(j, "state"));
	orig = json_string_value(json_object_get(j, "orig"));
	if (st != NULL && strcmp(st, "replayed") == 0)
		v = MRI_DLQ_ST_REPLAYED;
	else if (st != NULL && strcmp(st, "resolved") == 0)
		v = MRI_DLQ_ST_RESOLVED;
	else if (st != NULL && strcmp(st, "replaying") == 0) {
		tg = json_string_value(json_object_get(j, "target"));
		id = json_string_value(json_object_get(j, "replay_id"));
		rc = tg != NULL && id != NULL
			 ? mri_dlq_state_put_intent(
			       s, p, o,
			       json_integer_value(json_object_get(j, "at")),
			       tg, id)
			 : MR_OK;
		json_decref(j);
		return rc;
	} else {
		json_decref(j);
		return MR_OK;
	}
	if (orig != NULL && strlen(orig) == 16)
		h = strtoull(orig, NULL, 16);
	rc = mri_dlq_state_put(s, p, o, v, h);
	json_decref(j);
	return rc;
}

char *
mri_dlq_state_value(const struct mri_dlq_st_rec *r)
{
	json_t *j = json_object();
	char    h[17];
	char   *out;

	if (j == NULL)
		return NULL;
	json_object_set_new(j, "state", json_string(mri_dlq_st_name(r->st)));
	json_object_set_new(j, "at", json_integer(r->at_ms));
	if (r->orig != 0) {
		snprintf(h, sizeof(h), "%016llx", (unsigned long long)r->orig);
		json_object_set_new(j, "orig", json_string(h));
	}
	if (r->target != NULL) {
		json_object_set_new(j, "target", json_string(r->target));
		json_object_set_new(j, "partition", json_integer(r->partition));
		json_object_set_new(j, "offset", json_integer(r->offset));
	}
	if (r->replay_id != NULL)
		json_object_set_new(j, "replay_id",
				    json_string(r->replay_id));
	out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return out;
}

size_t
mri_dlq_replay_id(char *out, const char *id, size_t len, uint32_t n)
{
	char   suffix[16];
	size_t k = len, sl;

	out[0] = '\0';
	if (len == 0)
		return 0;
	// A previous replay's suffix goes: "x~r1" replayed again is "x~r2".
	while (k > 0 && id[k - 1] >= '0' && id[k - 1] <= '9')
		k--;
	if (k < len && k >= 3 && id[k - 1] == 'r' && id[k - 2] == '~')
		len = k - 2;
	sl = (size_t)snprintf(suffix, sizeof(suffix), "~r%lu",
			      (unsigned long)n);
	if (len + sl > MRI_DLQ_ID_MAX)
		len = MRI_DLQ_ID_MAX - sl;
	memcpy(out, id, len);
	memcpy(out + len, suffix, sl + 1);
	return len + sl;
}

bool
mri_dlq_replay_allowed(uint32_t replays, uint32_t limit, bool force)
{
	return force || replays < limit;
}
