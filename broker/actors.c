/* Restarts per supervisor, as processes report them (broker/actors.h). */
#include "actors.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/admin_dlq.h"
#include "mailroom/error.h"

struct actors__sup {
	char     name[MRI_ACTORS_NAME_MAX + 1];
	uint64_t restarts;
	int64_t  last_ms; /* of its last report */
};

/* A process's last report: what each of its supervisors had then. */
struct actors__proc {
	char     instance[MRI_ACTORS_INSTANCE_MAX + 1]; /* "": free */
	char     process[MRI_ACTORS_PROCESS_MAX + 1];
	int64_t  last_ms;
	size_t   n;
	uint32_t sup[MRI_ACTORS_PER_REPORT];  /* index in a->sups */
	uint64_t seen[MRI_ACTORS_PER_REPORT]; /* restarts reported */
};

struct mri_actors {
	pthread_mutex_t      lock;
	struct actors__sup   sups[MRI_ACTORS_SUPS_MAX + 1]; /* "_other" last */
	size_t               nsups;
	struct actors__proc *procs; /* MRI_ACTORS_PROCS_MAX */
};

int
mri_actors_new(struct mri_actors **out)
{
	struct mri_actors *a = calloc(1, sizeof(*a));

	if (a == NULL ||
	    (a->procs = calloc(MRI_ACTORS_PROCS_MAX, sizeof(*a->procs))) ==
		NULL) {
		free(a);
		return MR_ENOMEM;
	}
	strcpy(a->sups[MRI_ACTORS_SUPS_MAX].name, "_other");
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return MR_OK;
}

void
mri_actors_free(struct mri_actors *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a->procs);
	free(a);
}

/* The index of supervisor \p name: made when new and \p make ("_other"
 * when the table is full), else UINT32_MAX. With the lock held. */
static uint32_t
actors__sup(struct mri_actors *a, const char *name, bool make)
{
	for (size_t i = 0; i < a->nsups; i++)
		if (strcmp(a->sups[i].name, name) == 0)
			return (uint32_t)i;
	if (!make)
		return UINT32_MAX;
	if (a->nsups == MRI_ACTORS_SUPS_MAX)
		return MRI_ACTORS_SUPS_MAX;
	strcpy(a->sups[a->nsups].name, name);
	return (uint32_t)a->nsups++;
}

/* Process \p instance's entry: found, or a free one, or the one silent
 * longest when it was silent for MRI_ACTORS_FORGET_MS; NULL when every
 * entry is live. With the lock held. */
static struct actors__proc *
actors__proc(struct mri_actors *a, const char *instance, int64_t now)
{
	struct actors__proc *free_one = NULL, *oldest = NULL;

	for (size_t i = 0; i < MRI_ACTORS_PROCS_MAX; i++) {
		struct actors__proc *p = &a->procs[i];

		if (strcmp(p->instance, instance) == 0)
			return p;
		if (p->instance[0] == '\0') {
			if (free_one == NULL)
				free_one = p;
		} else if (oldest == NULL || p->last_ms < oldest->last_ms) {
			oldest = p;
		}
	}
	if (free_one == NULL && oldest != NULL &&
	    now - oldest->last_ms >= MRI_ACTORS_FORGET_MS)
		free_one = oldest;
	if (free_one != NULL) {
		memset(free_one, 0, sizeof(*free_one));
		strcpy(free_one->instance, instance);
	}
	return free_one;
}

/* A string field of at most \p max bytes, not empty. */
static const char *
actors__str(json_t *o, const char *field, size_t max)
{
	const char *s = json_string_value(json_object_get(o, field));

	if (s == NULL || *s == '\0' || strlen(s) > max)
		return NULL;
	return s;
}

static json_t *
actors__report(struct mri_actors *a, json_t *req, int64_t now)
{
	const char          *proc = actors__str(req, "process",
						MRI_ACTORS_PROCESS_MAX);
	const char          *inst = actors__str(req, "instance",
						MRI_ACTORS_INSTANCE_MAX);
	json_t              *sups = json_object_get(req, "supervisors");
	struct actors__proc *p;
	size_t               i;
	json_t              *s;

	if (proc == NULL || inst == NULL)
		return mri_admin_fail(MR_EINVAL,
				   "actors.report needs \"process\" (1 to %d "
				   "bytes) and \"instance\" (1 to %d)",
				   MRI_ACTORS_PROCESS_MAX,
				   MRI_ACTORS_INSTANCE_MAX);
	if (!json_is_array(sups) ||
	    json_array_size(sups) > MRI_ACTORS_PER_REPORT)
		return mri_admin_fail(MR_EINVAL,
				   "actors.report needs \"supervisors\": an "
				   "array of at most %d",
				   MRI_ACTORS_PER_REPORT);
	json_array_foreach(sups, i, s) {
		json_t *r = json_object_get(s, "restarts");

		if (actors__str(s, "name", MRI_ACTORS_NAME_MAX) == NULL ||
		    !json_is_integer(r) || json_integer_value(r) < 0)
			return mri_admin_fail(
			    MR_EINVAL,
			    "supervisor %zu needs \"name\" (1 to %d bytes) "
			    "and \"restarts\" (an integer >= 0)",
			    i, MRI_ACTORS_NAME_MAX);
	}
	pthread_mutex_lock(&a->lock);
	if ((p = actors__proc(a, inst, now)) == NULL) {
		pthread_mutex_unlock(&a->lock);
		return mri_admin_fail(MR_EBUSY,
				   "%d processes reported within the last "
				   "%d s: try again later",
				   MRI_ACTORS_PROCS_MAX,
				   MRI_ACTORS_FORGET_MS / 1000);
	}
	snprintf(p->process, sizeof(p->process), "%s", proc);
	p->last_ms = now;
	json_array_foreach(sups, i, s) {
		// A process tracks a report's worth of names: one that
		// named more over time is not counted for the rest.
		uint32_t k = actors__sup(
		    a, json_string_value(json_object_get(s, "name")),
		    p->n < MRI_ACTORS_PER_REPORT);
		uint64_t v = (uint64_t)json_integer_value(
		    json_object_get(s, "restarts"));
		size_t   j;

		if (k == UINT32_MAX)
			continue;
		for (j = 0; j < p->n && p->sup[j] != k; j++)
			;
		if (j == MRI_ACTORS_PER_REPORT)
			continue;
		if (j == p->n) {
			p->sup[p->n++] = k;
			p->seen[j]     = 0;
		}
		// Counters only grow; less than before is a count that
		// started again: all of it is new.
		a->sups[k].restarts += v >= p->seen[j] ? v - p->seen[j] : v;
		a->sups[k].last_ms = now;
		p->seen[j]         = v;
	}
	pthread_mutex_unlock(&a->lock);
	return json_pack("{s:b}", "ok", 1);
}

static json_t *
actors__list(struct mri_actors *a)
{
	json_t *sups = json_array(), *procs = json_array();

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i <= MRI_ACTORS_SUPS_MAX; i++) {
		const struct actors__sup *s = &a->sups[i];

		if (i >= a->nsups && i < MRI_ACTORS_SUPS_MAX)
			continue;
		if (i == MRI_ACTORS_SUPS_MAX && s->last_ms == 0)
			break;
		json_array_append_new(
		    sups, json_pack("{s:s, s:I, s:I}", "name", s->name,
				    "restarts", (json_int_t)s->restarts,
				    "last_report_ms", (json_int_t)s->last_ms));
	}
	for (size_t i = 0; i < MRI_ACTORS_PROCS_MAX; i++) {
		const struct actors__proc *p = &a->procs[i];
		json_t                    *ps;

		if (p->instance[0] == '\0')
			continue;
		ps = json_object();
		for (size_t j = 0; j < p->n; j++)
			json_object_set_new(ps, a->sups[p->sup[j]].name,
					    json_integer(
						(json_int_t)p->seen[j]));
		json_array_append_new(
		    procs, json_pack("{s:s, s:s, s:I, s:o}", "process",
				     p->process, "instance", p->instance,
				     "last_report_ms", (json_int_t)p->last_ms,
				     "supervisors", ps));
	}
	pthread_mutex_unlock(&a->lock);
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "supervisors", sups,
			 "processes", procs);
}

json_t *
mri_actors_admin(struct mri_actors *a, const char *op, json_t *req,
		 int64_t now_ms)
{
	if (strcmp(op, "actors.report") == 0)
		return actors__report(a, req, now_ms);
	if (strcmp(op, "actors.list") == 0)
		return actors__list(a);
	return NULL;
}

size_t
mri_actors_each(struct mri_actors *a,
		void (*fn)(void *arg, const char *name, uint64_t restarts),
		void *arg)
{
	size_t n;

	pthread_mutex_lock(&a->lock);
	n = a->nsups;
	for (size_t i = 0; i < n; i++)
		fn(arg, a->sups[i].name, a->sups[i].restarts);
	if (a->sups[MRI_ACTORS_SUPS_MAX].last_ms != 0)
		fn(arg, "_other", a->sups[MRI_ACTORS_SUPS_MAX].restarts);
	pthread_mutex_unlock(&a->lock);
	return n;
}
