/* Operation records: every op encodes and decodes to itself; anything malformed is refused. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "record.h"

static struct kv_batch *one_of_each(void)
{
	struct kv_batch *b;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "key", 3, "m", 1, "value", 5), 0);
	ck_assert_int_eq(kv_batch_del(b, "gone", 4), 0);
	ck_assert_int_eq(kv_batch_write(b, "f", 1, 4096, "data", 4), 0);
	ck_assert_int_eq(kv_batch_truncate(b, "f", 1, 77), 0);
	ck_assert_int_eq(kv_batch_setmeta(b, "f", 1, "mode", 4), 0);
	ck_assert_int_eq(kv_batch_rename(b, "a", 1, "bb", 2), 0);
	ck_assert_int_eq(kv_batch_rename_prefix(b, "d/", 2, "e/", 2), 0);
	return b;
}

START_TEST(record_encode_decode_round_trip)
{
	struct kv_batch *b = one_of_each();
	size_t len;
	uint32_t count;
	const uint8_t *p = kv_batch_payload(b, &len, &count);
	ck_assert_uint_eq(count, 7);
	struct rec_reader r;
	struct rec_op_view op;
	ck_assert_int_eq(rec_reader_init(&r, p, len), 0);

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_PUT);
	ck_assert(op.klen == 3 && !memcmp(op.key, "key", 3));
	ck_assert(op.mlen == 1 && !memcmp(op.meta, "m", 1));
	ck_assert(op.dlen == 5 && !memcmp(op.data, "value", 5));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_DEL);
	ck_assert(op.klen == 4 && !memcmp(op.key, "gone", 4));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_WRITE);
	ck_assert_uint_eq(op.off, 4096);
	ck_assert(op.dlen == 4 && !memcmp(op.data, "data", 4));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_TRUNCATE);
	ck_assert_uint_eq(op.off, 77);

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_SETMETA);
	ck_assert(op.mlen == 4 && !memcmp(op.meta, "mode", 4));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_RENAME);
	ck_assert(op.klen2 == 2 && !memcmp(op.key2, "bb", 2));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_RENAME_PREFIX);
	ck_assert(op.klen == 2 && !memcmp(op.key, "d/", 2));
	ck_assert(op.klen2 == 2 && !memcmp(op.key2, "e/", 2));

	ck_assert_int_eq(rec_reader_next(&r, &op), 0);
	kv_batch_free(b);
}
END_TEST

START_TEST(every_truncation_of_a_payload_is_refused)
{
	struct kv_batch *b = one_of_each();
	size_t len;
	uint32_t count;
	const uint8_t *p = kv_batch_payload(b, &len, &count);
	ck_assert_int_eq(rec_validate(p, len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
		memcpy(copy, p, cut);
		ck_assert_int_eq(rec_validate(copy, cut), -EBADMSG);
		free(copy);
	}
	kv_batch_free(b);
}
END_TEST

START_TEST(trailing_bytes_and_unknown_ops_are_refused)
{
	struct kv_batch *b = one_of_each();
	size_t len;
	uint32_t count;
	const uint8_t *p = kv_batch_payload(b, &len, &count);
	uint8_t *copy = malloc(len + 1);
	memcpy(copy, p, len);
	copy[len] = 0;
	ck_assert_int_eq(rec_validate(copy, len + 1), -EBADMSG);
	copy[4] = 99; /* the first op's type */
	ck_assert_int_eq(rec_validate(copy, len), -EBADMSG);
	free(copy);
	kv_batch_free(b);
}
END_TEST

START_TEST(limits_are_enforced_when_building)
{
	struct kv_batch *b;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	char *k = calloc(1, KV_MAX_KEY + 1);
	ck_assert_int_eq(kv_batch_put(b, k, KV_MAX_KEY + 1, NULL, 0, "v", 1), -ENAMETOOLONG);
	ck_assert_int_eq(kv_batch_put(b, k, 1, k, KV_MAX_META + 1, "v", 1), -EINVAL);
	ck_assert_int_eq(kv_batch_put(b, k, 1, NULL, 0, "v", KV_MAX_VALUE + 1), -EFBIG);
	ck_assert_int_eq(kv_batch_write(b, k, 1, KV_MAX_VALUE - 1, "vv", 2), -EFBIG);
	ck_assert_int_eq(kv_batch_rename(b, k, 1, k, KV_MAX_KEY + 1), -ENAMETOOLONG);
	size_t len;
	uint32_t count;
	kv_batch_payload(b, &len, &count);
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(len, 4);
	free(k);
	kv_batch_free(b);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("record");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, record_encode_decode_round_trip);
	tcase_add_test(tc, every_truncation_of_a_payload_is_refused);
	tcase_add_test(tc, trailing_bytes_and_unknown_ops_are_refused);
	tcase_add_test(tc, limits_are_enforced_when_building);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
