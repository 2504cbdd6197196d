/* CRC-32C: known answers and the incremental property the log reader relies on. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

START_TEST(known_answer_123456789)
{
	/* the standard check value of CRC-32C */
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
}
END_TEST

START_TEST(known_answer_32_zero_bytes)
{
	unsigned char z[32] = { 0 };
	ck_assert_uint_eq(crc32c(0, z, sizeof z), 0x8A9136AAu);
}
END_TEST

START_TEST(empty_input_is_zero)
{
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
}
END_TEST

START_TEST(incremental_equals_one_shot_at_every_split)
{
	unsigned char buf[301];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	uint32_t whole = crc32c(0, buf, sizeof buf);
	for (size_t cut = 0; cut <= sizeof buf; cut++)
		ck_assert_uint_eq(crc32c(crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
}
END_TEST

START_TEST(unaligned_start_gives_same_answer)
{
	unsigned char buf[80];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)i;
	uint32_t ref = crc32c(0, buf + 8, 64);
	for (size_t a = 0; a < 8; a++) {
		unsigned char copy[80];
		memcpy(copy + a, buf + 8, 64);
		ck_assert_uint_eq(crc32c(0, copy + a, 64), ref);
	}
}
END_TEST

static Suite *crc_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, known_answer_123456789);
	tcase_add_test(tc, known_answer_32_zero_bytes);
	tcase_add_test(tc, empty_input_is_zero);
	tcase_add_test(tc, incremental_equals_one_shot_at_every_split);
	tcase_add_test(tc, unaligned_start_gives_same_answer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
