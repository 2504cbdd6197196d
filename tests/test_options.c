/* The store's options (engine/options.c): sizes and their suffixes, and the words of a refusal.
 * The rest of the table (words, flags, ranges through kv_cli) is tested in test_store.c and
 * test_cli.c. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kv.h"
#include "testutil.h"

/* K, M, G and T count in 1024s whichever case they are written in (attack4 finding 4: 1g was
 * refused while 1G was taken). */
START_TEST(a_size_suffix_means_the_same_in_either_case)
{
	static const struct { const char *lower, *upper; uint64_t bytes; } cases[] = {
		{ "segment_bytes=8k", "segment_bytes=8K", 8ull << 10 },
		{ "segment_bytes=3m", "segment_bytes=3M", 3ull << 20 },
		{ "segment_bytes=1g", "segment_bytes=1G", 1ull << 30 },
		{ "segment_bytes=1t", "segment_bytes=1T", 1ull << 40 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kv_options lo, up;
		char err[256] = "";
		kv_options_default(&lo);
		kv_options_default(&up);
		ck_assert_msg(kv_options_parse(&lo, cases[i].lower, err, sizeof err) == 0, "%s: %s",
			      cases[i].lower, err);
		ck_assert_msg(kv_options_parse(&up, cases[i].upper, err, sizeof err) == 0, "%s: %s",
			      cases[i].upper, err);
		ck_assert_uint_eq(lo.segment_bytes, cases[i].bytes);
		ck_assert_uint_eq(up.segment_bytes, cases[i].bytes);
	}
}
END_TEST

START_TEST(checkpoint_bytes_of_1g_is_taken)
{
	struct kv_options o;
	char err[256] = "";
	kv_options_default(&o);
	ck_assert_msg(kv_options_parse(&o, "checkpoint_bytes=1g", err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(o.checkpoint_bytes, 1ull << 30);
}
END_TEST

/* Not a suffix, two suffixes, a size past the limit or one that overflows: refused, the option
 * unchanged, and the refusal names the range in the suffixes it accepts, one case throughout. */
START_TEST(a_bad_size_is_refused_naming_the_range_and_the_suffixes)
{
	static const char *const bad[] = { "segment_bytes=1x", "segment_bytes=1kk", "segment_bytes=2T",
					   "segment_bytes=2t", "segment_bytes=18446744073709551615T",
					   "segment_bytes=k", "segment_bytes=4095", "segment_bytes=1 K" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kv_options o;
		char err[256] = "";
		kv_options_default(&o);
		uint64_t before = o.segment_bytes;
		ck_assert_int_eq(kv_options_parse(&o, bad[i], err, sizeof err), -EINVAL);
		ck_assert_uint_eq(o.segment_bytes, before);
		ck_assert_msg(strstr(err, "a size in bytes from 4K to 1T; a K, M, G or T suffix, either "
				     "case, counts in 1024s"), "%s: %s", bad[i], err);
	}
}
END_TEST

/* The help rows say the same range the refusal does. */
START_TEST(the_help_of_a_size_option_writes_its_range_as_the_refusal_does)
{
	size_t n;
	const struct kv_option_desc *t = kv_option_table(&n);
	int seen = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, "segment_bytes") || !strcmp(t[i].name, "checkpoint_bytes")) {
			ck_assert_msg(strstr(t[i].help, "4K..1T"), "%s: %s", t[i].name, t[i].help);
			seen++;
		}
	ck_assert_int_eq(seen, 2);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("options");
	TCase *tc = tcase_create("sizes");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, a_size_suffix_means_the_same_in_either_case);
	tcase_add_test(tc, checkpoint_bytes_of_1g_is_taken);
	tcase_add_test(tc, a_bad_size_is_refused_naming_the_range_and_the_suffixes);
	tcase_add_test(tc, the_help_of_a_size_option_writes_its_range_as_the_refusal_does);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
