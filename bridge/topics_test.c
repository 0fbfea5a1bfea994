/*
 * The producer's topic handles (bridge/topics.h): one per name, kept
 * until cleared, none beyond the cache's bound.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bridge/topics.h"
#include "mailroom/error.h"

static rd_kafka_t *
tt_producer(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char             err[256];
	rd_kafka_t      *rk;

	// No broker: a handle is made without one.
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	return rk;
}

START_TEST(test_topics_one_handle_per_name)
{
	struct mri_topics t;
	rd_kafka_t       *rk = tt_producer();
	rd_kafka_topic_t *a, *b;
	char              name[32];

	ck_assert_int_eq(mri_topics_init(&t, 100), MR_OK);
	a = mri_topics_get(&t, rk, "orders");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(rd_kafka_topic_name(a), "orders");
	// The same name (another string), the same handle.
	snprintf(name, sizeof(name), "%s", "orders");
	ck_assert_ptr_eq(mri_topics_get(&t, rk, name), a);
	b = mri_topics_get(&t, rk, "orders.dlq");
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	ck_assert_str_eq(rd_kafka_topic_name(b), "orders.dlq");
	ck_assert_uint_eq(t.n, 2);
	// Many names: each found again as it was made.
	for (int i = 0; i < 98; i++) {
		snprintf(name, sizeof(name), "t-%d", i);
		ck_assert_ptr_nonnull(mri_topics_get(&t, rk, name));
	}
	for (int i = 0; i < 98; i++) {
		rd_kafka_topic_t *x;

		snprintf(name, sizeof(name), "t-%d", i);
		x = mri_topics_get(&t, rk, name);
		ck_assert_str_eq(rd_kafka_topic_name(x), name);
	}
	ck_assert_uint_eq(t.n, 100);
	ck_assert_ptr_eq(mri_topics_get(&t, rk, "orders"), a);
	mri_topics_fini(&t);
	rd_kafka_destroy(rk);
}
END_TEST

START_TEST(test_topics_full_and_clear)
{
	struct mri_topics t;
	rd_kafka_t       *rk = tt_producer();

	ck_assert_int_eq(mri_topics_init(&t, 2), MR_OK);
	ck_assert_ptr_nonnull(mri_topics_get(&t, rk, "a"));
	ck_assert_ptr_nonnull(mri_topics_get(&t, rk, "b"));
	// Full: by name (NULL), the kept ones still found.
	ck_assert_ptr_null(mri_topics_get(&t, rk, "c"));
	ck_assert_ptr_nonnull(mri_topics_get(&t, rk, "a"));
	ck_assert_uint_eq(t.n, 2);
	// Cleared (the handle replaced, say): made again.
	mri_topics_clear(&t);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_ptr_nonnull(mri_topics_get(&t, rk, "c"));
	ck_assert_uint_eq(t.n, 1);
	mri_topics_fini(&t);
	rd_kafka_destroy(rk);
}
END_TEST

int
main(void)
{
	Suite   *s  = suite_create("topics");
	TCase   *tc = tcase_create("core");
	SRunner *r;
	int      failed;

	tcase_add_test(tc, test_topics_one_handle_per_name);
	tcase_add_test(tc, test_topics_full_and_clear);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_ENV);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
