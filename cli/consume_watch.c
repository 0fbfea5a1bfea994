/*
 * What `mailroom consume` says of Kafka while it waits: a FETCH that
 * comes back empty does not say why, so an idle consumer asks mailroomd's
 * STATUS now and then, and says once on stderr when Kafka is unreachable,
 * and once when it is back.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli/cli.h"

#define WATCH__EVERY_MS 2000 /* at most one STATUS this often */

void
cli_watch_init(struct cli_watch *w, mr_client *c)
{
	w->c       = c;
	w->next_ms = 0;
	w->down    = false;
}

/* @returns 1 when mailroomd says Kafka is unreachable (with *ms and
 *          \p why), 0 when reachable, -1 when it cannot tell. */
static int
watch__ask(mr_client *c, long long *ms, char *why, size_t why_size)
{
	char   *text = NULL;
	json_t *st, *k, *r;
	int     down = -1;

	if (mr_status(c, &text) != MR_OK)
		return -1;
	st = json_loads(text, 0, NULL);
	free(text);
	k = json_object_get(st, "kafka");
	r = json_object_get(k, "reachable");
	if (json_is_boolean(r)) {
		const char *e = json_string_value(json_object_get(k, "error"));

		down = json_is_false(r);
		*ms = json_integer_value(json_object_get(k, "unreachable_ms"));
		snprintf(why, why_size, "%s",
			 e != NULL ? e : "no reason given");
	}
	json_decref(st);
	return down;
}

void
cli_watch_check(struct cli_watch *w, long now_ms, bool idle)
{
	char      why[512];
	long long ms = 0;
	int       down;

	// While Kafka is away, each turn asks (deliveries may still come from
	// what mailroomd holds); otherwise only an idle one.
	if ((!idle && !w->down) || now_ms < w->next_ms)
		return;
	w->next_ms = now_ms + WATCH__EVERY_MS;
	if ((down = watch__ask(w->c, &ms, why, sizeof(why))) < 0)
		return;
	if (down && !w->down)
		fprintf(stderr,
			"mailroom: consume: mailroomd: Kafka unreachable for "
			"%lld s: %s; waiting\n",
			ms / 1000, why);
	else if (!down && w->down)
		fprintf(stderr, "mailroom: consume: mailroomd: Kafka "
				"reachable again; consuming\n");
	w->down = down;
}
