/*
 * Restarts per supervisor (broker/actors.c): a report adds what grew
 * since the process's last one, a count that went down (a process
 * restarted under the same instance) counts whole, processes add up, an
 * ended process's restarts stay; bad reports are refused and count
 * nothing; names past the table are "_other"; a full table of processes
 * forgets one silent long enough.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "broker/actors.h"
#include "mailroom/error.h"

static json_t *
at_report(struct mri_actors *a, const char *inst, const char *name,
	  long long restarts, int64_t now)
{
	json_t *req = json_pack("{s:s, s:s, s:s, s:[{s:s, s:I}]}", "op",
				"actors.report", "process", "p/1", "instance",
				inst, "supervisors", "name", name, "restarts",
				(json_int_t)restarts);
	json_t *rep = mri_actors_admin(a, "actors.report", req, now);

	json_decref(req);
	return rep;
}

static bool
at_ok(json_t *rep)
{
	bool ok = json_is_true(json_object_get(rep, "ok"));

	json_decref(rep);
	return ok;
}

static void
at_sum(void *arg, const char *name, uint64_t restarts)
{
	char *buf = arg;
	char  line[128];

	snprintf(line, sizeof(line), "%s=%llu;", name,
		 (unsigned long long)restarts);
	strcat(buf, line);
}

static const char *
at_all(struct mri_actors *a)
{
	static char buf[4096];

	buf[0] = '\0';
	mri_actors_each(a, at_sum, buf);
	return buf;
}

START_TEST(test_counts)
{
	struct mri_actors *a;
	json_t            *rep, *req;

	ck_assert_int_eq(mri_actors_new(&a), MR_OK);
	ck_assert(at_ok(at_report(a, "i1", "bank", 0, 1000)));
	ck_assert_str_eq(at_all(a), "bank=0;");
	ck_assert(at_ok(at_report(a, "i1", "bank", 3, 2000)));
	ck_assert(at_ok(at_report(a, "i1", "bank", 3, 3000))); // again
	ck_assert_str_eq(at_all(a), "bank=3;");
	// Another process of the same tree adds its own.
	ck_assert(at_ok(at_report(a, "i2", "bank", 2, 3000)));
	ck_assert_str_eq(at_all(a), "bank=5;");
	// i1 counts from 1 again (restarted): all of it is new.
	ck_assert(at_ok(at_report(a, "i1", "bank", 1, 4000)));
	ck_assert_str_eq(at_all(a), "bank=6;");
	ck_assert(at_ok(at_report(a, "i1", "mirror:t", 4, 4000)));
	ck_assert_str_eq(at_all(a), "bank=6;mirror:t=4;");

	// Bad reports: refused, nothing counted.
	ck_assert(!at_ok(at_report(a, "", "bank", 1, 5000)));
	ck_assert(!at_ok(at_report(a, "i3", "", 1, 5000)));
	ck_assert(!at_ok(at_report(a, "i3", "bank", -1, 5000)));
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", "actors.report",
			"process", "p", "instance", "i3", "supervisors", "x");
	rep = mri_actors_admin(a, "actors.report", req, 5000);
	ck_assert_str_eq(json_string_value(json_object_get(rep, "error")),
			 "MR_EINVAL");
	json_decref(rep);
	json_decref(req);
	ck_assert_str_eq(at_all(a), "bank=6;mirror:t=4;");
	ck_assert_ptr_null(mri_actors_admin(a, "actors.nope", NULL, 0));

	// The list: both supervisors, both processes with what they said.
	rep = mri_actors_admin(a, "actors.list", NULL, 6000);
	ck_assert_uint_eq(json_array_size(json_object_get(rep, "supervisors")),
			  2);
	ck_assert_uint_eq(json_array_size(json_object_get(rep, "processes")),
			  2);
	json_decref(rep);
	mri_actors_free(a);
}
END_TEST

START_TEST(test_bounds)
{
	struct mri_actors *a;
	char               name[32], inst[32];
	static char        big[65536];

	ck_assert_int_eq(mri_actors_new(&a), MR_OK);
	// One process tracks at most a report's worth of names: the rest
	// of its names are not counted, nor listed.
	for (int i = 0; i < MRI_ACTORS_PER_REPORT + 5; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ck_assert(at_ok(at_report(a, "i0", name, 1, 1000)));
	}
	ck_assert_uint_eq(mri_actors_each(a, at_sum, big),
			  MRI_ACTORS_PER_REPORT);
	ck_assert(strstr(big, "_other") == NULL);
	// Past MRI_ACTORS_SUPS_MAX names (from many processes): "_other",
	// the 65 names that did not fit.
	for (int i = 0; i < MRI_ACTORS_SUPS_MAX; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		snprintf(inst, sizeof(inst), "j%d", i);
		ck_assert(at_ok(at_report(a, inst, name, 1, 1000)));
	}
	big[0] = '\0';
	ck_assert_uint_eq(mri_actors_each(a, at_sum, big),
			  MRI_ACTORS_SUPS_MAX);
	ck_assert(strstr(big, ";_other=65;") != NULL);
	// Processes: the table is full of live ones, a new one is refused;
	// once one is silent long enough, it is forgotten for the new one.
	for (int i = MRI_ACTORS_SUPS_MAX; i < MRI_ACTORS_PROCS_MAX - 1; i++) {
		snprintf(inst, sizeof(inst), "j%d", i);
		ck_assert(at_ok(at_report(a, inst, "s0", 0, 2000)));
	}
	ck_assert(!at_ok(at_report(a, "late", "s0", 1, 3000)));
	ck_assert(at_ok(at_report(a, "late", "s0", 1,
				  1000 + MRI_ACTORS_FORGET_MS)));
	mri_actors_free(a);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("actors");
	TCase   *tc = tcase_create("actors");
	SRunner *sr;
	int      failed;

	tcase_add_test(tc, test_counts);
	tcase_add_test(tc, test_bounds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
