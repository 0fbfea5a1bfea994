/*
 * Reading a dead-letter topic (dlq/inspect.h): the scanning core of `list`
 * (filters, copies of one original position counted once, groups by
 * fingerprint) and the copy of one record for `show`. No I/O: records come
 * from a struct mri_dlq_source.
 */
#include "inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/journal.h"
#include "mailroom/error.h"

/* ---- filters and names ------------------------------------------------- */

void
mri_dlq_filter_init(struct mri_dlq_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->since_ms = -1;
	f->until_ms = -1;
}

int
mri_dlq_filter_check(const struct mri_dlq_filter *f, char *why, size_t n)
{
	if (f->since_ms >= 0 && f->until_ms >= 0 && f->since_ms > f->until_ms) {
		snprintf(why, n,
			 "since (%lld ms) is after until (%lld ms): no record "
			 "can match",
			 (long long)f->since_ms, (long long)f->until_ms);
		return MR_EINVAL;
	}
	if ((f->has_key && f->key == NULL && f->key_len > 0) ||
	    f->since_ms < -1 || f->until_ms < -1) {
		snprintf(why, n, "a filter's value is missing or negative");
		return MR_EINVAL;
	}
	return MR_OK;
}

int
mri_dlq_fingerprint_parse(const char *s, size_t len, uint64_t *fp)
{
	uint64_t v = 0;

	if (s == NULL || len != MRI_DLQ_FP_STRLEN)
		return MR_EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v << 4 | (uint64_t)(c - 'A' + 10);
		else
			return MR_EINVAL;
	}
	*fp = v;
	return MR_OK;
}

static const char *const inspect__dialects[] = {
    [MRI_DLQ_UNKNOWN] = "unknown",
    [MRI_DLQ_MAILROOM] = "mailroom",
    [MRI_DLQ_SPRING] = "spring",
    [MRI_DLQ_CONNECT] = "connect",
};

const char *
mri_dlq_dialect_name(enum mri_dlq_dialect d)
{
	return (unsigned)d <= MRI_DLQ_CONNECT ? inspect__dialects[d]
					      : "unknown";
}

int
mri_dlq_dialect_parse(const char *s, enum mri_dlq_dialect *d)
{
	for (int i = MRI_DLQ_UNKNOWN; s != NULL && i <= MRI_DLQ_CONNECT; i++)
		if (strcmp(s, inspect__dialects[i]) == 0) {
			*d = (enum mri_dlq_dialect)i;
			return MR_OK;
		}
	return MR_EINVAL;
}

const char *
mri_dlq_cut_name(enum mri_dlq_cut c)
{
	return c == MRI_DLQ_CUT_RECORDS	  ? "max_records"
	       : c == MRI_DLQ_CUT_TIMEOUT ? "timeout"
					  : "none";
}

size_t
mri_dlq_utf8_seq(const void *p, size_t n)
{
	const unsigned char *s  = p;
	unsigned             lo = 0x80, hi = 0xbf;
	size_t   len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0; // overlong
	else if (s[0] == 0xed)
		hi = 0x9f; // surrogates
	else if (s[0] == 0xf0)
		lo = 0x90; // overlong
	else if (s[0] == 0xf4)
		hi = 0x8f; // above U+10FFFF
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

bool
mri_dlq_is_text(const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t               k;

	for (size_t i = 0; i < len; i += k) {
		if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' &&
		     s[i] != '\r') ||
		    s[i] == 0x7f)
			return false;
		if ((k = mri_dlq_utf8_seq(s + i, len - i)) == 0)
			return false;
	}
	return true;
}

/* ---- an index of uint32 (an item's number + 1), open addressing -------- */

struct ins_index {
	uint32_t *slots;
	size_t    mask; /* slots - 1; 0: none yet */
	size_t    used;
};

/* The slot holding the item for which eq() is true, or the empty one where
 * it goes. */
static uint32_t *
inspect__slot(const struct ins_index *ix, uint64_t h,
	      bool (*eq)(const void *ctx, uint32_t i, const void *key),
	      const void *ctx, const void *key)
{
	for (size_t at = (size_t)h & ix->mask;; at = (at + 1) & ix->mask) {
		uint32_t *s = &ix->slots[at];

		if (*s == 0 || eq(ctx, *s - 1, key))
			return s;
	}
}

/* Room for one more item (at most half full): MR_OK or MR_ENOMEM. */
static int
inspect__room(struct ins_index *ix, uint64_t (*hash)(const void *, uint32_t),
	      const void *ctx)
{
	size_t    n = ix->mask == 0 ? 64 : (ix->mask + 1) * 2;
	uint32_t *s;

	if (ix->mask != 0 && (ix->used + 1) * 2 <= ix->mask + 1)
		return MR_OK;
	if ((s = calloc(n, sizeof(*s))) == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; ix->mask != 0 && i <= ix->mask; i++) {
		uint32_t v = ix->slots[i];
		size_t   at;

		if (v == 0)
			continue;
		for (at = (size_t)hash(ctx, v - 1) & (n - 1); s[at] != 0;
		     at = (at + 1) & (n - 1))
			;
		s[at] = v;
	}
	free(ix->slots);
	ix->slots = s;
	ix->mask  = n - 1;
	return MR_OK;
}

/* ---- the scan ----------------------------------------------------------- */

/* A record kept: 40 bytes. */
struct ins_entry {
	uint64_t pos;      /* hash of its original position */
	int64_t  time_ms;  /* -1: none */
	int64_t  dlq_offset;
	int32_t  dlq_partition;
	uint32_t fpg;      /* its fingerprint's, in scan.fpgs */
	uint16_t src, grp; /* names; 0: none, NAMES_MORE: past the cap */
	uint8_t  dialect;
};

/* A fingerprint seen, and the reason of its latest record. */
struct ins_fpg {
	uint64_t fp;
	int64_t  time_ms;
	int32_t  partition;
	int64_t  offset;
	char    *reason;
	size_t   reason_len;
};

#define NAMES_CAP 65534u
#define NAMES_MORE 65535u

struct ins_scan {
	struct ins_entry   *entries;
	size_t              nentries, centries;
	struct ins_index    eix;
	struct ins_fpg     *fpgs;
	size_t              nfpgs, cfpgs;
	struct ins_index    fix;
	char              **names; /* names[0] unused: none */
	size_t              nnames, cnames;
	struct ins_index    nix;
	struct mri_dlq_info info;
};

static uint64_t
inspect__hash(const void *p, size_t n)
{
	return mri_journal_hash(MRI_JOURNAL_HASH_INIT, p, n);
}

static bool
inspect__entry_eq(const void *ctx, uint32_t i, const void *key)
{
	return ((const struct ins_scan *)ctx)->entries[i].pos ==
	       *(const uint64_t *)key;
}

static uint64_t
inspect__entry_hash(const void *ctx, uint32_t i)
{
	return ((const struct ins_scan *)ctx)->entries[i].pos;
}

static bool
inspect__fpg_eq(const void *ctx, uint32_t i, const void *key)
{
	return ((const struct ins_scan *)ctx)->fpgs[i].fp ==
	       *(const uint64_t *)key;
}

static uint64_t
inspect__fpg_hash(const void *ctx, uint32_t i)
{
	uint64_t fp = ((const struct ins_scan *)ctx)->fpgs[i].fp;

	return inspect__hash(&fp, sizeof(fp));
}

static bool
inspect__name_eq(const void *ctx, uint32_t i, const void *key)
{
	const struct mri_dlq_str *k = key;
	const char               *s = ((const struct ins_scan *)ctx)->names[i];

	return strlen(s) == k->len && memcmp(s, k->p, k->len) == 0;
}

static uint64_t
inspect__name_hash(const void *ctx, uint32_t i)
{
	const char *s = ((const struct ins_scan *)ctx)->names[i];

	return inspect__hash(s, strlen(s));
}

/* Grow \p *p (of \p *cap items of \p size) for one more. */
static int
inspect__grow(void **p, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap == 0 ? 64 : *cap * 2;
	void  *q;

	if (n < *cap)
		return MR_OK;
	if ((q = realloc(*p, c * size)) == NULL)
		return MR_ENOMEM;
	*p   = q;
	*cap = c;
	return MR_OK;
}

/* The name's number: 0 for none (unknown or empty), NAMES_MORE past the
 * cap; or -1, out of memory. */
static long
inspect__name(struct ins_scan *s, struct mri_dlq_str v)
{
	uint32_t *slot;
	char     *c;

	if (v.p == NULL || v.len == 0)
		return 0;
	if (s->nnames == 0)
		s->nnames = 1; // names[0]: none
	if (inspect__room(&s->nix, inspect__name_hash, s) != MR_OK)
		return -1;
	slot = inspect__slot(&s->nix, inspect__hash(v.p, v.len),
			     inspect__name_eq, s, &v);
	if (*slot != 0)
		return (long)*slot - 1;
	if (s->nnames > NAMES_CAP)
		return NAMES_MORE;
	if (inspect__grow((void **)&s->names, &s->cnames, s->nnames,
			  sizeof(*s->names)) != MR_OK ||
	    (c = malloc(v.len + 1)) == NULL)
		return -1;
	memcpy(c, v.p, v.len);
	c[v.len] = '\0';
	s->names[s->nnames] = c;
	*slot               = (uint32_t)s->nnames + 1;
	s->nix.used++;
	return (long)s->nnames++;
}

/* (t1, p1, o1) is later than (t2, p2, o2). */
static bool
inspect__later(int64_t t1, int32_t p1, int64_t o1, int64_t t2, int32_t p2,
	       int64_t o2)
{
	if (t1 != t2)
		return t1 > t2;
	if (p1 != p2)
		return p1 > p2;
	return o1 > o2;
}

/* The fingerprint's number, its reason the latest; or -1 (no memory). */
static long
inspect__fpg(struct ins_scan *s, const struct mri_dlq_rec *r, int64_t t)
{
	const struct mri_dlq_info *in = &s->info;
	struct ins_fpg            *g;
	uint32_t                  *slot;
	char                      *c;

	if (inspect__room(&s->fix, inspect__fpg_hash, s) != MR_OK)
		return -1;
	slot = inspect__slot(&s->fix,
			     inspect__hash(&in->fingerprint,
					   sizeof(in->fingerprint)),
			     inspect__fpg_eq, s, &in->fingerprint);
	if (*slot == 0) {
		if (inspect__grow((void **)&s->fpgs, &s->cfpgs, s->nfpgs,
				  sizeof(*s->fpgs)) != MR_OK)
			return -1;
		g     = &s->fpgs[s->nfpgs];
		*g    = (struct ins_fpg){in->fingerprint, -2, -1, -1, NULL, 0};
		*slot = (uint32_t)s->nfpgs++ + 1;
		s->fix.used++;
	}
	g = &s->fpgs[*slot - 1];
	if (g->reason == NULL ||
	    inspect__later(t, r->partition, r->offset, g->time_ms,
			   g->partition, g->offset)) {
		if ((c = malloc(in->reason_len + 1)) == NULL)
			return -1;
		memcpy(c, in->reason, in->reason_len + 1);
		free(g->reason);
		g->reason     = c;
		g->reason_len = in->reason_len;
		g->time_ms    = t;
		g->partition  = r->partition;
		g->offset     = r->offset;
	}
	return (long)(*slot - 1);
}

/* The hash of the record's original position, or of its dead-letter one
 * when that is unknown (so it is its own). */
static uint64_t
inspect__pos(const struct mri_dlq_info *in, const struct mri_dlq_rec *r)
{
	unsigned char b[13];
	uint64_t      h;

	if (in->topic.p != NULL && in->partition >= 0 && in->offset >= 0) {
		h = mri_journal_hash(MRI_JOURNAL_HASH_INIT, "o", 1);
		h = mri_journal_hash(h, in->topic.p, in->topic.len);
		memcpy(b, &in->partition, 4);
		memcpy(b + 4, &in->offset, 8);
	} else {
		h = mri_journal_hash(MRI_JOURNAL_HASH_INIT, "d", 1);
		memcpy(b, &r->partition, 4);
		memcpy(b + 4, &r->offset, 8);
	}
	b[12] = 0;
	return mri_journal_hash(h, b, sizeof(b));
}

static bool
inspect__str_is(struct mri_dlq_str s, const char *want)
{
	size_t n = strlen(want);

	return s.p != NULL && s.len == n && memcmp(s.p, want, n) == 0;
}

static bool
inspect__match(const struct mri_dlq_filter *f, const struct mri_dlq_rec *r,
	       const struct mri_dlq_info *in, int64_t t)
{
	if (f->skip != NULL && f->skip(f->skip_arg, r->partition, r->offset))
		return false;
	if (f->topic != NULL && !inspect__str_is(in->topic, f->topic))
		return false;
	if (f->group != NULL && !inspect__str_is(in->group, f->group))
		return false;
	if (f->has_key &&
	    (!r->has_key || r->key_len != f->key_len ||
	     (f->key_len > 0 && memcmp(r->key, f->key, f->key_len) != 0)))
		return false;
	if (f->has_fingerprint && in->fingerprint != f->fingerprint)
		return false;
	if ((f->since_ms >= 0 || f->until_ms >= 0) && t < 0)
		return false;
	if ((f->since_ms >= 0 && t < f->since_ms) ||
	    (f->until_ms >= 0 && t > f->until_ms))
		return false;
	return !f->has_dialect || in->dialect == f->dialect;
}

bool
mri_dlq_filter_match(const struct mri_dlq_filter *f,
		     const struct mri_dlq_rec *r, const struct mri_dlq_info *in,
		     int64_t t)
{
	return inspect__match(f, r, in, t);
}

uint64_t
mri_dlq_orig_hash(const struct mri_dlq_info *in, const struct mri_dlq_rec *r)
{
	return inspect__pos(in, r);
}

/* One record read: MR_OK or MR_ENOMEM. */
static int
inspect__add(struct ins_scan *s, const struct mri_dlq_filter *f,
	     const struct mri_dlq_rec *r, struct mri_dlq_list *l)
{
	struct mri_dlq_info *in = &s->info;
	struct ins_entry     e, *old;
	uint32_t            *slot;
	long                 fpg, src, grp;
	int64_t              t;

	(void)mri_dlq_parse(r->hdrs, r->nhdrs, in);
	t = in->time_ms >= 0 ? in->time_ms : r->timestamp_ms;
	if (t < 0)
		t = -1;
	if (!inspect__match(f, r, in, t))
		return MR_OK;
	l->matched++;
	if ((src = inspect__name(s, in->topic)) < 0 ||
	    (grp = inspect__name(s, in->group)) < 0 ||
	    (fpg = inspect__fpg(s, r, t)) < 0 ||
	    inspect__room(&s->eix, inspect__entry_hash, s) != MR_OK)
		return MR_ENOMEM;
	e = (struct ins_entry){
	    .pos           = inspect__pos(in, r),
	    .time_ms       = t,
	    .dlq_offset    = r->offset,
	    .dlq_partition = r->partition,
	    .fpg           = (uint32_t)fpg,
	    .src           = (uint16_t)src,
	    .grp           = (uint16_t)grp,
	    .dialect       = (uint8_t)in->dialect,
	};
	slot = inspect__slot(&s->eix, e.pos, inspect__entry_eq, s, &e.pos);
	if (*slot != 0) {
		l->duplicates++;
		old = &s->entries[*slot - 1];
		if (inspect__later(e.time_ms, e.dlq_partition, e.dlq_offset,
				   old->time_ms, old->dlq_partition,
				   old->dlq_offset))
			*old = e;
		return MR_OK;
	}
	if (inspect__grow((void **)&s->entries, &s->centries, s->nentries,
			  sizeof(*s->entries)) != MR_OK)
		return MR_ENOMEM;
	s->entries[s->nentries] = e;
	*slot                   = (uint32_t)s->nentries++ + 1;
	s->eix.used++;
	return MR_OK;
}

static void
inspect__scan_free(struct ins_scan *s)
{
	for (size_t i = 0; i < s->nfpgs; i++)
		free(s->fpgs[i].reason);
	for (size_t i = 1; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
	free(s->fpgs);
	free(s->entries);
	free(s->eix.slots);
	free(s->fix.slots);
	free(s->nix.slots);
}

/* ---- the groups ---------------------------------------------------------- */

/* Add name \p k to a group's list of at most MRI_DLQ_LIST_NAMES (numbers
 * for now, in \p idx). */
static void
inspect__note(uint16_t *idx, size_t *n, bool *more, uint16_t k)
{
	if (k == 0)
		return;
	if (k == NAMES_MORE) {
		*more = true;
		return;
	}
	for (size_t i = 0; i < *n; i++)
		if (idx[i] == k)
			return;
	if (*n == MRI_DLQ_LIST_NAMES)
		*more = true;
	else
		idx[(*n)++] = k;
}

static int
inspect__group_cmp(const void *a, const void *b)
{
	const struct mri_dlq_group *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->last_ms != y->last_ms)
		return x->last_ms > y->last_ms ? -1 : 1;
	return x->fingerprint < y->fingerprint ? -1
	       : x->fingerprint > y->fingerprint;
}

struct ins_names_of {
	uint16_t src[MRI_DLQ_LIST_NAMES], grp[MRI_DLQ_LIST_NAMES];
};

static void
inspect__group_add(struct mri_dlq_group *g, struct ins_names_of *nm,
		   const struct ins_entry *e)
{
	bool first = g->count++ == 0;

	if (e->time_ms >= 0) {
		if (g->first_ms < 0 || e->time_ms < g->first_ms)
			g->first_ms = e->time_ms;
		if (e->time_ms > g->last_ms)
			g->last_ms = e->time_ms;
	}
	if (first || e->dlq_partition < g->first_partition ||
	    (e->dlq_partition == g->first_partition &&
	     e->dlq_offset < g->first_offset)) {
		g->first_partition = e->dlq_partition;
		g->first_offset    = e->dlq_offset;
	}
	if (first || e->dlq_partition > g->last_partition ||
	    (e->dlq_partition == g->last_partition &&
	     e->dlq_offset > g->last_offset)) {
		g->last_partition = e->dlq_partition;
		g->last_offset    = e->dlq_offset;
	}
	g->dialects |= 1u << e->dialect;
	inspect__note(nm->src, &g->nsources, &g->more_sources, e->src);
	inspect__note(nm->grp, &g->ngroups, &g->more_groups, e->grp);
}

static char *
inspect__dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char  *c = malloc(n);

	if (c != NULL)
		memcpy(c, s, n);
	return c;
}

/* The scan's entries grouped by fingerprint, into \p l. */
static int
inspect__groups(struct ins_scan *s, size_t max_groups, struct mri_dlq_list *l)
{
	struct mri_dlq_group *g;
	struct ins_names_of  *nm;
	size_t                n = 0;
	bool                  nomem = false;

	g  = calloc(s->nfpgs > 0 ? s->nfpgs : 1, sizeof(*g));
	nm = calloc(s->nfpgs > 0 ? s->nfpgs : 1, sizeof(*nm));
	if (g == NULL || nm == NULL) {
		free(g);
		free(nm);
		return MR_ENOMEM;
	}
	for (size_t i = 0; i < s->nfpgs; i++) {
		g[i].fingerprint = s->fpgs[i].fp;
		g[i].first_ms    = -1;
		g[i].last_ms     = -1;
	}
	for (size_t i = 0; i < s->nentries; i++)
		inspect__group_add(&g[s->entries[i].fpg],
				   &nm[s->entries[i].fpg], &s->entries[i]);
	// Names and reasons as strings; a fingerprint whose records all
	// went to copies of another one is left out.
	for (size_t i = 0; i < s->nfpgs; i++) {
		struct mri_dlq_group *d = &g[n];

		if (g[i].count == 0)
			continue;
		*d = g[i];
		for (size_t k = 0; k < d->nsources; k++)
			nomem |= (d->sources[k] = inspect__dup(
				      s->names[nm[i].src[k]])) == NULL;
		for (size_t k = 0; k < d->ngroups; k++)
			nomem |= (d->groups[k] = inspect__dup(
				      s->names[nm[i].grp[k]])) == NULL;
		d->reason        = s->fpgs[i].reason;
		d->reason_len    = s->fpgs[i].reason_len;
		s->fpgs[i].reason = NULL;
		n++;
	}
	free(nm);
	qsort(g, n, sizeof(*g), inspect__group_cmp);
	// Those past max_groups are freed with the list (it frees all n).
	l->groups       = g;
	l->groups_total = n;
	l->ngroups      = n < max_groups ? n : max_groups;
	return nomem ? MR_ENOMEM : MR_OK;
}

static void
inspect__group_free(struct mri_dlq_group *g)
{
	for (size_t k = 0; k < g->nsources; k++)
		free(g->sources[k]);
	for (size_t k = 0; k < g->ngroups; k++)
		free(g->groups[k]);
	free(g->reason);
}

void
mri_dlq_list_free(struct mri_dlq_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; l->groups != NULL && i < l->groups_total; i++)
		inspect__group_free(&l->groups[i]);
	free(l->groups);
	free(l);
}

int
mri_dlq_list_run(const struct mri_dlq_source *src,
		 const struct mri_dlq_filter *f, const struct mri_dlq_bounds *b,
		 struct mri_dlq_list **out, char *why, size_t n)
{
	uint64_t            max_records = MRI_DLQ_LIST_RECORDS;
	size_t              max_groups  = MRI_DLQ_LIST_GROUPS;
	struct ins_scan     s;
	struct mri_dlq_list *l;
	struct mri_dlq_rec  r;
	int                 rc;

	if ((rc = mri_dlq_filter_check(f, why, n)) != MR_OK)
		return rc;
	if (b != NULL && b->max_records > 0)
		max_records = b->max_records;
	if (b != NULL && b->max_groups > 0)
		max_groups = b->max_groups;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(why, n, "out of memory");
		return MR_ENOMEM;
	}
	memset(&s, 0, sizeof(s));
	for (;;) {
		bool end = false;

		rc = src->next(src->arg, &r, &end, why, n);
		if (rc == MR_ETIMEDOUT) {
			l->cut = MRI_DLQ_CUT_TIMEOUT;
			rc     = MR_OK;
			break;
		}
		if (rc != MR_OK || end)
			break;
		// A record past the bound: there is more than it allows.
		if (l->scanned == max_records) {
			l->cut = MRI_DLQ_CUT_RECORDS;
			break;
		}
		l->scanned++;
		if ((rc = inspect__add(&s, f, &r, l)) != MR_OK) {
			snprintf(why, n,
				 "out of memory after %llu records; bound "
				 "max_records lower",
				 (unsigned long long)l->scanned);
			break;
		}
	}
	if (rc == MR_OK && (rc = inspect__groups(&s, max_groups, l)) != MR_OK)
		snprintf(why, n, "out of memory");
	inspect__scan_free(&s);
	if (rc != MR_OK) {
		mri_dlq_list_free(l);
		return rc;
	}
	*out = l;
	return MR_OK;
}

/* ---- show ---------------------------------------------------------------- */

int
mri_dlq_shown_new(struct mri_dlq_shown **out, const struct mri_dlq_rec *rec)
{
	struct mri_dlq_shown *s;
	struct mri_hdr_view  *h;
	size_t                size = sizeof(*s) + rec->key_len + rec->value_len;
	char                 *p;

	for (size_t i = 0; i < rec->nhdrs; i++)
		size += sizeof(*h) + rec->hdrs[i].name_len +
			rec->hdrs[i].value_len;
	if ((s = malloc(size)) == NULL)
		return MR_ENOMEM;
	s->rec = *rec;
	h      = (struct mri_hdr_view *)(s + 1);
	p      = (char *)(h + rec->nhdrs);
	for (size_t i = 0; i < rec->nhdrs; i++) {
		const struct mri_hdr_view *o = &rec->hdrs[i];

		h[i] = *o;
		if (o->name_len > 0)
			memcpy(p, o->name, o->name_len);
		h[i].name = p;
		p += o->name_len;
		if (o->value != NULL) {
			if (o->value_len > 0)
				memcpy(p, o->value, o->value_len);
			h[i].value = p;
			p += o->value_len;
		}
	}
	s->rec.hdrs = h;
	if (rec->key != NULL) {
		if (rec->key_len > 0)
			memcpy(p, rec->key, rec->key_len);
		s->rec.key = p;
		p += rec->key_len;
	}
	if (rec->value != NULL) {
		if (rec->value_len > 0)
			memcpy(p, rec->value, rec->value_len);
		s->rec.value = p;
	}
	(void)mri_dlq_parse(s->rec.hdrs, s->rec.nhdrs, &s->info);
	s->time_ms = s->info.time_ms >= 0 ? s->info.time_ms
					  : s->rec.timestamp_ms;
	*out = s;
	return MR_OK;
}

void
mri_dlq_shown_free(struct mri_dlq_shown *s)
{
	free(s);
}
