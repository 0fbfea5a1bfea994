/*
 * Restarts per supervisor, reported to mailroomd (include/mailroom/
 * mirror.h, mr_actors_report): the system's counts (mr_system_restarts)
 * as one ADMIN actors.report, which mailroomd adds up per supervisor for
 * /metrics and the console (broker/actors.h). The process is told apart
 * by an instance id made of its pid, its start time and the system, so
 * that a process restarted under the same pid counts from 0 again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mailroom/client.h"
#include "mailroom/error.h"
#include "mailroom/mirror.h"
#include "mailroom/supervisor.h"

/* The process's start time, in clock ticks since boot (/proc's field 22),
 * or 0 when it cannot be read. */
static unsigned long long
report__start_time(void)
{
	char               buf[1024], *p;
	unsigned long long t = 0;
	FILE              *f = fopen("/proc/self/stat", "r");
	size_t             n;

	if (f == NULL)
		return 0;
	n      = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	// The name may hold spaces and parentheses: fields count from the
	// last ')', which ends it (field 2); the start time is field 22.
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	for (int field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* This process's name as mailroomd shows it: "program/pid". */
static void
report__process(char *buf, size_t size)
{
	char  comm[64] = "process";
	FILE *f        = fopen("/proc/self/comm", "r");

	if (f != NULL) {
		if (fgets(comm, sizeof(comm), f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	snprintf(buf, size, "%s/%ld", comm, (long)getpid());
}

int
mr_actors_report(mr_client *c, mr_system *sys, const char *process)
{
	mr_restart_count v[MR_SUP_NAMES_MAX + 1];
	size_t           n = mr_system_restarts(sys, v, MR_SUP_NAMES_MAX + 1);
	uint64_t         h = 1469598103934665603ULL;
	uint64_t         parts[3] = {(uint64_t)getpid(), report__start_time(),
				     (uint64_t)(uintptr_t)sys};
	char             name[128], inst[17], *text, *reply = NULL;
	json_t          *req, *sups;
	int              rc;

	if (n > MR_SUP_NAMES_MAX + 1)
		n = MR_SUP_NAMES_MAX + 1;
	for (size_t i = 0; i < 3; i++)
		for (size_t b = 0; b < 8; b++)
			h = (h ^ ((parts[i] >> (8 * b)) & 0xff)) *
			    1099511628211ULL;
	snprintf(inst, sizeof(inst), "%016" PRIx64, h);
	if (process == NULL)
		report__process(name, sizeof(name));
	else
		snprintf(name, sizeof(name), "%s", process);
	if ((sups = json_array()) == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    sups, json_pack("{s:s, s:I}", "name", v[i].supervisor,
				    "restarts", (json_int_t)v[i].restarts));
	req = json_pack("{s:s, s:s, s:s, s:o}", "op", "actors.report",
			"process", name, "instance", inst, "supervisors",
			sups);
	if (req == NULL)
		return MR_ENOMEM;
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		return MR_ENOMEM;
	rc = mr_admin(c, text, &reply);
	free(text);
	if (rc == MR_OK) {
		json_t *r = json_loads(reply, 0, NULL);

		// Refused (a mailroomd too old to know the op, or a bad name).
		if (r == NULL || json_is_false(json_object_get(r, "ok")))
			rc = MR_EINVAL;
		json_decref(r);
	}
	free(reply);
	return rc;
}
