/*
 * Tests for broker/consume_conf.c: a SUBSCRIBE completed member by member
 * with mailroomd's defaults (the group's retry policy, the dead-letter
 * supervisor's settings), the refusals that only the defaults make, the
 * key that tells subscriptions apart, and the reply's description.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/consume_conf.h"
#include "mailroom/error.h"

/* mailroomd's defaults, as broker/config.c has them. */
static void
cc_test__conf(struct mri_consume_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->ack_deadline_ms = 30000;
	c->credit          = 1000;
	c->max_buffered    = 10000;
	c->retry           = (struct mri_retry){.max_attempts       = 5,
						.backoff_initial_ms = 1000,
						.backoff_max_ms     = 60000,
						.multiplier         = 2,
						.jitter             = 0.2};
	c->dlq             = (struct mri_dlq_conf){.breaker_max         = 100,
						   .breaker_period_ms   = 10000,
						   .breaker_cooldown_ms = 30000};
	snprintf(c->dlq_suffix, sizeof(c->dlq_suffix), ".dlq");
}

struct cc_test__parsed {
	json_t               *root;
	struct mri_group_conf gc;
	struct mri_dlq_conf   dc;
	const char           *topics[MRI_SUBSCRIBE_TOPICS_MAX];
	char                  why[512];
};

static int
cc_test__parse(const struct mri_consume_conf *c, const char *body,
	       struct cc_test__parsed *p)
{
	p->root   = NULL;
	p->why[0] = '\0';
	return consume__parse(c, (const uint8_t *)body, strlen(body), &p->root,
			      &p->gc, &p->dc, p->topics, p->why,
			      sizeof(p->why));
}

static void
cc_test__ok(const struct mri_consume_conf *c, const char *body,
	    struct cc_test__parsed *p)
{
	ck_assert_msg(cc_test__parse(c, body, p) == MR_OK, "%s: %s", body,
		      p->why);
}

/* \p body is refused with exactly \p want. */
static void
cc_test__refused(const struct mri_consume_conf *c, const char *body,
		 const char *want)
{
	struct cc_test__parsed p;

	ck_assert_msg(cc_test__parse(c, body, &p) == MR_EINVAL, "accepted: %s",
		      body);
	ck_assert_msg(strcmp(p.why, want) == 0, "%s: '%s', expected '%s'",
		      body, p.why, want);
	json_decref(p.root);
}

START_TEST(test_defaults_member_by_member)
{
	struct mri_consume_conf c;
	struct cc_test__parsed  p;

	cc_test__conf(&c);
	// Nothing given: every default.
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"]}", &p);
	ck_assert_uint_eq(p.gc.retry.max_attempts, 5);
	ck_assert_uint_eq(p.gc.retry.backoff_initial_ms, 1000);
	ck_assert_uint_eq(p.gc.retry.backoff_max_ms, 60000);
	ck_assert(p.gc.retry.multiplier == 2);
	ck_assert(p.gc.retry.jitter == 0.2);
	ck_assert_str_eq(p.dc.group, "g");
	ck_assert_ptr_null(p.dc.topic);
	ck_assert_uint_eq(p.dc.breaker_max, 100);
	ck_assert_uint_eq(p.dc.breaker_period_ms, 10000);
	ck_assert_uint_eq(p.dc.breaker_cooldown_ms, 30000);
	ck_assert_uint_eq(p.gc.ack_deadline_ms, 30000);
	json_decref(p.root);

	// One member of each: the others stay mailroomd's; zeros given are
	// taken (unlimited attempts, no back-off, no jitter, no breaker).
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"],\"retry\":"
			"{\"max_attempts\":0,\"backoff_jitter\":0},"
			"\"dead_letter\":{\"breaker_max\":0}}",
		    &p);
	ck_assert_uint_eq(p.gc.retry.max_attempts, 0);
	ck_assert(p.gc.retry.jitter == 0);
	ck_assert_uint_eq(p.gc.retry.backoff_initial_ms, 1000);
	ck_assert_uint_eq(p.gc.retry.backoff_max_ms, 60000);
	ck_assert(p.gc.retry.multiplier == 2);
	ck_assert_uint_eq(p.dc.breaker_max, 0);
	ck_assert_uint_eq(p.dc.breaker_period_ms, 10000);
	ck_assert_uint_eq(p.dc.breaker_cooldown_ms, 30000);
	json_decref(p.root);

	// Everything given.
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\",\"b\"],"
			"\"retry\":{\"max_attempts\":9,\"backoff_initial_ms\":0,"
			"\"backoff_max_ms\":0,\"backoff_multiplier\":1.5,"
			"\"backoff_jitter\":1},\"dead_letter\":{\"topic\":"
			"\"poison\",\"breaker_max\":7,\"breaker_period_ms\":1,"
			"\"breaker_cooldown_ms\":86400000}}",
		    &p);
	ck_assert_uint_eq(p.gc.retry.max_attempts, 9);
	ck_assert_uint_eq(p.gc.retry.backoff_initial_ms, 0);
	ck_assert_uint_eq(p.gc.retry.backoff_max_ms, 0);
	ck_assert(p.gc.retry.multiplier == 1.5);
	ck_assert(p.gc.retry.jitter == 1);
	ck_assert_str_eq(p.dc.topic, "poison");
	ck_assert_uint_eq(p.dc.breaker_max, 7);
	ck_assert_uint_eq(p.dc.breaker_period_ms, 1);
	ck_assert_uint_eq(p.dc.breaker_cooldown_ms, 86400000);
	json_decref(p.root);

	// Other defaults, other results: they come from the conf.
	c.retry.max_attempts = 0;
	c.dlq.breaker_max    = 3;
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"]}", &p);
	ck_assert_uint_eq(p.gc.retry.max_attempts, 0);
	ck_assert_uint_eq(p.dc.breaker_max, 3);
	json_decref(p.root);
}
END_TEST

START_TEST(test_refused_with_defaults)
{
	struct mri_consume_conf c;
	struct cc_test__parsed  p;
	char                    t[300], body[1200];

	cc_test__conf(&c);
	// The request's own faults are mri_subscribe_parse's.
	cc_test__refused(&c, "{\"group\":\"g\",\"topics\":[\"a\"],\"retry\":"
			     "{\"tries\":1}}",
			 "\"retry\" has no member \"tries\": it takes "
			 "max_attempts, backoff_initial_ms, backoff_max_ms, "
			 "backoff_multiplier and backoff_jitter");
	// A back-off that is only wrong with a default.
	cc_test__refused(&c, "{\"group\":\"g\",\"topics\":[\"a\"],\"retry\":"
			     "{\"backoff_initial_ms\":60001}}",
			 "\"retry.backoff_max_ms\" 60000 (mailroomd's "
			 "default) is below \"retry.backoff_initial_ms\" "
			 "60001: give both");
	cc_test__refused(&c, "{\"group\":\"g\",\"topics\":[\"a\"],\"retry\":"
			     "{\"backoff_max_ms\":999}}",
			 "\"retry.backoff_max_ms\" 999 is below "
			 "\"retry.backoff_initial_ms\" 1000 (mailroomd's "
			 "default): give both");
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"],\"retry\":"
			"{\"backoff_initial_ms\":60000}}",
		    &p);
	json_decref(p.root);
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"],\"retry\":"
			"{\"backoff_initial_ms\":90000,\"backoff_max_ms\":"
			"90000}}",
		    &p);
	json_decref(p.root);

	// A default dead-letter topic longer than a topic may be: 245
	// characters and ".dlq" fit, 246 do not, unless a topic is named.
	memset(t, 't', 246);
	t[246] = '\0';
	snprintf(body, sizeof(body), "{\"group\":\"g\",\"topics\":[\"%s\"]}",
		 t);
	{
		char want[800];

		snprintf(want, sizeof(want), "the dead-letter topic of %s "
			 "would be 250 characters by default (the topic and "
			 "\".dlq\"), more than 249: name one in "
			 "\"dead_letter.topic\"", t);
		cc_test__refused(&c, body, want);
	}
	snprintf(body, sizeof(body), "{\"group\":\"g\",\"topics\":[\"%s\"],"
		 "\"dead_letter\":{\"topic\":\"short\"}}", t);
	cc_test__ok(&c, body, &p);
	json_decref(p.root);
	t[245] = '\0';
	snprintf(body, sizeof(body), "{\"group\":\"g\",\"topics\":[\"%s\"]}",
		 t);
	cc_test__ok(&c, body, &p);
	json_decref(p.root);

	// A topic that is another's default dead-letter topic.
	cc_test__refused(&c, "{\"group\":\"g\",\"topics\":[\"a.dlq\",\"b\","
			     "\"a\"]}",
			 "topic a.dlq is the dead-letter topic of a by "
			 "default: its dead letters would come back to the "
			 "subscription; name another in \"dead_letter.topic\"");
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a.dlq\",\"a\"],"
			"\"dead_letter\":{\"topic\":\"x\"}}",
		    &p);
	json_decref(p.root);
	snprintf(c.dlq_suffix, sizeof(c.dlq_suffix), "-dead");
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a.dlq\",\"a\"]}", &p);
	json_decref(p.root);
	cc_test__refused(&c, "{\"group\":\"g\",\"topics\":[\"a-dead\",\"a\"]}",
			 "topic a-dead is the dead-letter topic of a by "
			 "default: its dead letters would come back to the "
			 "subscription; name another in \"dead_letter.topic\"");
}
END_TEST

/* The key of \p body under \p c (new). */
static char *
cc_test__key(const struct mri_consume_conf *c, const char *body, size_t *len)
{
	struct cc_test__parsed p;
	char                  *k;

	cc_test__ok(c, body, &p);
	k = consume__key(&p.gc, &p.dc, len);
	ck_assert_ptr_nonnull(k);
	json_decref(p.root);
	return k;
}

START_TEST(test_key)
{
#define CK(x) "{\"group\":\"g\",\"topics\":[\"a\",\"b\"]" x "}"
	// Each differs from the others in one setting only; the first and
	// the second are the same subscription (the defaults written out).
	static const char *bodies[] = {
	    CK(""),
	    CK(",\"mode\":\"partition\""),
	    CK(",\"ack_deadline_ms\":30001"),
	    CK(",\"credit\":999"),
	    CK(",\"retry\":{\"max_attempts\":4}"),
	    CK(",\"retry\":{\"max_attempts\":0}"),
	    CK(",\"retry\":{\"backoff_initial_ms\":999}"),
	    CK(",\"retry\":{\"backoff_max_ms\":60001}"),
	    CK(",\"retry\":{\"backoff_multiplier\":2.0000000000000004}"),
	    CK(",\"retry\":{\"backoff_jitter\":0.20000000000000004}"),
	    CK(",\"dead_letter\":{\"topic\":\"a.dlq\"}"),
	    CK(",\"dead_letter\":{\"topic\":\"b.dlq\"}"),
	    CK(",\"dead_letter\":{\"breaker_max\":101}"),
	    CK(",\"dead_letter\":{\"breaker_period_ms\":10001}"),
	    CK(",\"dead_letter\":{\"breaker_cooldown_ms\":29999}"),
	};
	static const char *same[] = {
	    CK(",\"mode\":\"key\",\"ack_deadline_ms\":30000,\"credit\":1000,"
	       "\"retry\":{\"max_attempts\":5,\"backoff_initial_ms\":1000,"
	       "\"backoff_max_ms\":60000,\"backoff_multiplier\":2,"
	       "\"backoff_jitter\":0.2},\"dead_letter\":{\"breaker_max\":100,"
	       "\"breaker_period_ms\":10000,\"breaker_cooldown_ms\":30000}"),
	    "{\"topics\":[\"b\",\"a\"],\"retry\":{},\"group\":\"g\"}",
	};
#undef CK
	enum { N = sizeof(bodies) / sizeof(bodies[0]) };
	struct mri_consume_conf c;
	char                   *k[N], *s;
	size_t                  len[N], slen;

	cc_test__conf(&c);
	for (size_t i = 0; i < N; i++)
		k[i] = cc_test__key(&c, bodies[i], &len[i]);
	for (size_t i = 0; i < N; i++)
		for (size_t j = i + 1; j < N; j++)
			ck_assert_msg(len[i] != len[j] ||
					  memcmp(k[i], k[j], len[i]) != 0,
				      "one key for %s and %s", bodies[i],
				      bodies[j]);
	// The defaults written out, and the same in another order: the
	// subscription of bodies[0] (the seed is not in the key).
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		s = cc_test__key(&c, same[i], &slen);
		ck_assert_msg(slen == len[0] && memcmp(s, k[0], slen) == 0,
			      "%s is another subscription", same[i]);
		free(s);
	}
	// The group comes first, NUL-terminated: the supervisor's group.
	ck_assert_str_eq(k[0], "g");
	for (size_t i = 0; i < N; i++)
		free(k[i]);
}
END_TEST

START_TEST(test_seed)
{
	struct mri_consume_conf c;
	struct cc_test__parsed  p;
	uint64_t                first;

	cc_test__conf(&c);
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"]}", &p);
	first = p.gc.retry.seed;
	json_decref(p.root);
	cc_test__ok(&c, "{\"group\":\"g\",\"topics\":[\"a\"]}", &p);
	ck_assert(p.gc.retry.seed != first); // two groups draw apart
	json_decref(p.root);
}
END_TEST

/* The description of \p body, dumped compactly with sorted keys (new). */
static char *
cc_test__desc(const struct mri_consume_conf *c, const char *body)
{
	struct cc_test__parsed p;
	json_t                *d;
	char                  *text;

	cc_test__ok(c, body, &p);
	d = consume__desc(c, &p.gc, &p.dc);
	ck_assert_ptr_nonnull(d);
	json_decref(p.root); // the description owns its strings
	text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	ck_assert_ptr_nonnull(text);
	return text;
}

START_TEST(test_desc)
{
	struct mri_consume_conf c;
	char                   *t;

	cc_test__conf(&c);
	t = cc_test__desc(&c, "{\"group\":\"g\",\"topics\":[\"b\",\"a\"],"
			      "\"retry\":{\"max_attempts\":3,"
			      "\"backoff_multiplier\":1.5}}");
	ck_assert_str_eq(t, "{\"ack_deadline_ms\":30000,\"credit\":1000,"
			    "\"dead_letter\":{\"breaker_cooldown_ms\":30000,"
			    "\"breaker_max\":100,\"breaker_period_ms\":10000,"
			    "\"topics\":{\"a\":\"a.dlq\",\"b\":\"b.dlq\"}},"
			    "\"group\":\"g\",\"mode\":\"key\",\"retry\":{"
			    "\"backoff_initial_ms\":1000,\"backoff_jitter\":"
			    "0.20000000000000001,\"backoff_max_ms\":60000,"
			    "\"backoff_multiplier\":1.5,\"max_attempts\":3},"
			    "\"start\":\"earliest\",\"topics\":[\"a\",\"b\"]}");
	free(t);
	t = cc_test__desc(&c, "{\"group\":\"g\",\"topics\":[\"b\",\"a\"],"
			      "\"mode\":\"unordered\",\"dead_letter\":"
			      "{\"topic\":\"all.dead\",\"breaker_max\":0}}");
	ck_assert_str_eq(t, "{\"ack_deadline_ms\":30000,\"credit\":1000,"
			    "\"dead_letter\":{\"breaker_cooldown_ms\":30000,"
			    "\"breaker_max\":0,\"breaker_period_ms\":10000,"
			    "\"topic\":\"all.dead\",\"topics\":{\"a\":"
			    "\"all.dead\",\"b\":\"all.dead\"}},\"group\":\"g\","
			    "\"mode\":\"unordered\",\"retry\":{"
			    "\"backoff_initial_ms\":1000,\"backoff_jitter\":"
			    "0.20000000000000001,\"backoff_max_ms\":60000,"
			    "\"backoff_multiplier\":2.0,\"max_attempts\":5},"
			    "\"start\":\"earliest\",\"topics\":[\"a\",\"b\"]}");
	free(t);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("consume_conf");
	TCase   *tc = tcase_create("conf");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_defaults_member_by_member);
	tcase_add_test(tc, test_refused_with_defaults);
	tcase_add_test(tc, test_key);
	tcase_add_test(tc, test_seed);
	tcase_add_test(tc, test_desc);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
