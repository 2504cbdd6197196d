/* Operation records: every op encodes and decodes to itself; anything malformed is refused. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "kv.h"
#include "le.h"
#include "record.h"
#include "testutil.h"

/* The payload a batch stands for, contiguous (malloc'd), its length and checksum as batch_iov
 * reports them. */
static uint8_t *flatten(const struct kv_batch *b, size_t *len, uint32_t *count, uint32_t *crc)
{
	struct iovec *iov;
	int n;
	uint64_t total;
	struct rec_reader r;
	batch_reader(b, &r, count);
	ck_assert_int_eq(batch_iov(b, &iov, &n, &total, crc), 0);
	uint8_t *p = malloc(total ? total : 1), *q = p;
	for (int i = 0; i < n; i++) {
		memcpy(q, iov[i].iov_base, iov[i].iov_len);
		q += iov[i].iov_len;
	}
	ck_assert_uint_eq((uint64_t)(q - p), total);
	free(iov);
	*len = total;
	return p;
}

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
	ck_assert_int_eq(kv_batch_punch(b, "f", 1, 10, 20), 0);
	return b;
}

START_TEST(record_encode_decode_round_trip)
{
	struct kv_batch *b = one_of_each();
	size_t len;
	uint32_t count, crc;
	uint8_t *p = flatten(b, &len, &count, &crc);
	ck_assert_uint_eq(count, 8);
	ck_assert_uint_eq(crc, crc32c(0, p, len)); /* the checksum from chunk checksums is the real one */
	struct rec_reader r;
	struct rec_op_view op;
	ck_assert_int_eq(rec_reader_init(&r, p, len), 0);

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_PUT);
	ck_assert(op.klen == 3 && !memcmp(op.key, "key", 3));
	ck_assert(op.mlen == 1 && !memcmp(op.meta, "m", 1));
	ck_assert(op.dlen == 5 && !memcmp(p + op.data_at, "value", 5));
	ck_assert_uint_eq(le_get32(op.crcs), crc32c(0, "value", 5));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_DEL);
	ck_assert(op.klen == 4 && !memcmp(op.key, "gone", 4));

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_WRITE);
	ck_assert_uint_eq(op.off, 4096);
	ck_assert(op.dlen == 4 && !memcmp(p + op.data_at, "data", 4));

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

	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_PUNCH);
	ck_assert(op.off == 10 && op.dlen == 20);

	ck_assert_int_eq(rec_reader_next(&r, &op), 0);
	free(p);
	kv_batch_free(b);
}
END_TEST

START_TEST(every_truncation_of_a_payload_is_refused)
{
	struct kv_batch *b = one_of_each();
	size_t len;
	uint32_t count, crc;
	uint8_t *p = flatten(b, &len, &count, &crc);
	ck_assert_int_eq(rec_validate(p, len, 1), 0);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
		memcpy(copy, p, cut);
		ck_assert_int_eq(rec_validate(copy, cut, 0), -EBADMSG);
		free(copy);
	}
	free(p);
	kv_batch_free(b);
}
END_TEST

START_TEST(trailing_bytes_and_unknown_ops_are_refused)
{
	struct kv_batch *b = one_of_each();
	size_t len;
	uint32_t count, crc;
	uint8_t *p = flatten(b, &len, &count, &crc);
	uint8_t *copy = malloc(len + 1);
	memcpy(copy, p, len);
	copy[len] = 0;
	ck_assert_int_eq(rec_validate(copy, len + 1, 0), -EBADMSG);
	copy[4] = 99; /* the first op's type */
	ck_assert_int_eq(rec_validate(copy, len, 0), -EBADMSG);
	free(copy);
	free(p);
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
	ck_assert_int_eq(kv_batch_put(b, k, 1, NULL, 0, "v", KV_MAX_WRITE + 1), -EFBIG);
	ck_assert_int_eq(kv_batch_write(b, k, 1, KV_MAX_VALUE - 1, "vv", 2), -EFBIG);
	ck_assert_int_eq(kv_batch_write(b, k, 1, 0, "vv", KV_MAX_WRITE + 1), -EFBIG);
	ck_assert_int_eq(kv_batch_punch(b, k, 1, KV_MAX_VALUE, 1), -EFBIG);
	ck_assert_int_eq(kv_batch_rename(b, k, 1, k, KV_MAX_KEY + 1), -ENAMETOOLONG);
	size_t len;
	uint32_t count, crc;
	uint8_t *p = flatten(b, &len, &count, &crc);
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(len, 4);
	free(p);
	free(k);
	kv_batch_free(b);
}
END_TEST

START_TEST(data_is_checked_chunk_by_chunk_and_relocations_round_trip)
{
	struct kv_batch *b;
	size_t dlen = 3 * DATA_CHUNK + 100, len;
	uint8_t *data = malloc(dlen);
	for (size_t i = 0; i < dlen; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	struct reloc_piece pieces[2] = { { 0, 5000, 11, 200 }, { 9000, dlen - 5000, 12, 40 } };
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_write(b, "big", 3, 0, data, dlen), 0);
	ck_assert_int_eq(batch_relocate(b, "rel", 3, pieces, 2, data), 0);
	/* out of order or overlapping pieces are refused when read */
	uint32_t count, crc;
	uint8_t *p = flatten(b, &len, &count, &crc);
	ck_assert_uint_eq(crc, crc32c(0, p, len));
	ck_assert_int_eq(rec_validate(p, len, 1), 0);
	struct rec_reader r;
	struct rec_op_view op;
	ck_assert_int_eq(rec_reader_init(&r, p, len), 0);
	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_uint_eq(op.dlen, dlen);
	ck_assert(!memcmp(p + op.data_at, data, dlen));
	ck_assert_int_eq(rec_reader_next(&r, &op), 1);
	ck_assert_int_eq(op.op, REC_OP_RELOCATE);
	ck_assert_uint_eq(op.npieces, 2);
	struct reloc_piece got;
	reloc_piece_at(&op, 1, &got);
	ck_assert(got.off == 9000 && got.len == dlen - 5000 && got.src_seg == 12 && got.src_pos == 40);
	/* a byte of the data changed: the body checksum aside, its chunk no longer matches */
	for (size_t at = 0; at < dlen; at += 1031) {
		uint8_t *copy = malloc(len);
		memcpy(copy, p, len);
		ck_assert_int_eq(rec_reader_init(&r, copy, len), 0);
		ck_assert_int_eq(rec_reader_next(&r, &op), 1);
		copy[op.data_at + at] ^= 0x10;
		ck_assert_int_eq(rec_validate(copy, len, 1), -EBADMSG);
		ck_assert_int_eq(rec_validate(copy, len, 0), 0);
		free(copy);
	}
	/* the meta-mode reader sees the same operations at the same payload offsets */
	struct rec_reader m;
	struct rec_op_view mop;
	batch_reader(b, &m, &count);
	ck_assert_int_eq(rec_reader_init(&r, p, len), 0);
	while (rec_reader_next(&r, &op) == 1) {
		ck_assert_int_eq(rec_reader_next(&m, &mop), 1);
		ck_assert_uint_eq(mop.data_at, op.data_at);
		ck_assert_uint_eq(mop.dlen, op.dlen);
	}
	ck_assert_int_eq(rec_reader_next(&m, &mop), 0);
	kv_batch_free(b);
	/* pieces must be ascending and disjoint */
	struct reloc_piece bad[2] = { { 100, 10, 1, 0 }, { 105, 10, 1, 50 } };
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(batch_relocate(b, "rel", 3, bad, 2, data), 0);
	free(p);
	p = flatten(b, &len, &count, &crc);
	ck_assert_int_eq(rec_validate(p, len, 0), -EBADMSG);
	kv_batch_free(b);
	free(p);
	free(data);
}
END_TEST

/* ---- a batch as bytes for another store (kv_batch_encode / kv_batch_decode) ---------------- */

/* one_of_each plus data of several chunks */
static struct kv_batch *mixed_batch(uint8_t **data, size_t *dlen)
{
	struct kv_batch *b = one_of_each();
	*dlen = 2 * DATA_CHUNK + 33;
	*data = malloc(*dlen);
	for (size_t i = 0; i < *dlen; i++)
		(*data)[i] = (uint8_t)(i * 13 + 1);
	ck_assert_int_eq(kv_batch_write(b, "big", 3, 100, *data, *dlen), 0);
	return b;
}

static uint8_t *encode(const struct kv_batch *b, uint64_t *len)
{
	*len = kv_batch_encoded_len(b);
	uint8_t *p = malloc(*len ? *len : 1);
	ck_assert_int_eq(kv_batch_encode(b, p, *len), 0);
	return p;
}

START_TEST(encoded_batch_is_its_record_payload_and_decodes_to_the_same_batch)
{
	uint8_t *data;
	size_t dlen, len;
	uint32_t count, crc;
	uint64_t elen, elen2;
	struct kv_batch *b = mixed_batch(&data, &dlen), *d;
	uint8_t *payload = flatten(b, &len, &count, &crc);
	uint8_t *enc = encode(b, &elen);
	ck_assert_uint_eq(elen, len);
	ck_assert(!memcmp(enc, payload, len));
	ck_assert_int_eq(kv_batch_decode(&d, enc, elen), 0);
	uint8_t *again = encode(d, &elen2);
	ck_assert_uint_eq(elen2, elen);
	ck_assert(!memcmp(again, enc, elen));
	free(again);
	kv_batch_free(d);
	free(enc);
	free(payload);
	kv_batch_free(b);
	free(data);
}
END_TEST

START_TEST(decoded_batch_applies_like_the_original)
{
	char dir[256];
	struct kv *s;
	struct kv_batch *b, *d;
	void *val;
	uint64_t vlen, elen;
	struct kv_options o;
	kv_options_default(&o);
	ck_assert_int_eq(tu_tmpdir(dir, sizeof(dir)), 0);
	ck_assert_int_eq(kv_open(&s, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(s, "old", 3, "x", 1), 0);
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "a", 1, "meta", 4, "alpha", 5), 0);
	ck_assert_int_eq(kv_batch_write(b, "a", 1, 5, "beta", 4), 0);
	ck_assert_int_eq(kv_batch_rename(b, "old", 3, "new", 3), 0);
	uint8_t *enc = encode(b, &elen);
	kv_batch_free(b); /* the bytes stand alone */
	ck_assert_int_eq(kv_batch_decode(&d, enc, elen), 0);
	ck_assert_int_eq(kv_apply(s, d, NULL), 0);
	kv_batch_free(d);
	free(enc);
	ck_assert_int_eq(kv_get(s, "a", 1, &val, &vlen), 0);
	ck_assert(vlen == 9 && !memcmp(val, "alphabeta", 9));
	free(val);
	char meta[16];
	size_t mlen = sizeof(meta);
	ck_assert_int_eq(kv_stat(s, "a", 1, &vlen, meta, &mlen), 0);
	ck_assert(mlen == 4 && !memcmp(meta, "meta", 4));
	ck_assert_int_eq(kv_get(s, "old", 3, &val, &vlen), -ENOENT);
	ck_assert_int_eq(kv_get(s, "new", 3, &val, &vlen), 0);
	free(val);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(tu_rmrf(dir), 0);
}
END_TEST

START_TEST(decoding_refuses_every_truncation_and_trailing_bytes)
{
	uint8_t *data;
	size_t dlen;
	uint64_t elen;
	struct kv_batch *b = mixed_batch(&data, &dlen), *d;
	uint8_t *enc = encode(b, &elen);
	for (uint64_t cut = 0; cut < elen; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
		memcpy(copy, enc, cut);
		ck_assert_int_eq(kv_batch_decode(&d, copy, cut), -EBADMSG);
		ck_assert_ptr_null(d);
		free(copy);
	}
	uint8_t *longer = malloc(elen + 1);
	memcpy(longer, enc, elen);
	longer[elen] = 0;
	ck_assert_int_eq(kv_batch_decode(&d, longer, elen + 1), -EBADMSG);
	free(longer);
	free(enc);
	kv_batch_free(b);
	free(data);
}
END_TEST

START_TEST(decoding_refuses_a_damaged_data_byte)
{
	uint8_t *data;
	size_t dlen;
	uint64_t elen;
	struct kv_batch *b = mixed_batch(&data, &dlen), *d;
	uint8_t *enc = encode(b, &elen);
	/* the big write's data is the payload's last dlen bytes */
	for (size_t at = 0; at < dlen; at += 509) {
		enc[elen - dlen + at] ^= 0x04;
		ck_assert_int_eq(kv_batch_decode(&d, enc, elen), -EBADMSG);
		enc[elen - dlen + at] ^= 0x04;
	}
	/* and a damaged chunk checksum the same way */
	enc[elen - dlen - 1] ^= 0x80;
	ck_assert_int_eq(kv_batch_decode(&d, enc, elen), -EBADMSG);
	enc[elen - dlen - 1] ^= 0x80;
	ck_assert_int_eq(kv_batch_decode(&d, enc, elen), 0);
	kv_batch_free(d);
	free(enc);
	kv_batch_free(b);
	free(data);
}
END_TEST

START_TEST(relocations_are_neither_encoded_nor_decoded)
{
	struct kv_batch *b, *d;
	struct reloc_piece piece = { 0, 4, 7, 64 };
	size_t len;
	uint32_t count, crc;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "k", 1, NULL, 0, "v", 1), 0);
	ck_assert_int_eq(batch_relocate(b, "k", 1, &piece, 1, "abcd"), 0);
	uint64_t elen = kv_batch_encoded_len(b);
	uint8_t *dst = malloc(elen);
	ck_assert_int_eq(kv_batch_encode(b, dst, elen), -EINVAL);
	uint8_t *payload = flatten(b, &len, &count, &crc);
	ck_assert_int_eq(kv_batch_decode(&d, payload, len), -EINVAL);
	ck_assert_ptr_null(d);
	free(payload);
	free(dst);
	kv_batch_free(b);
}
END_TEST

START_TEST(encoding_into_a_buffer_of_another_length_is_refused)
{
	struct kv_batch *b = one_of_each();
	uint64_t elen = kv_batch_encoded_len(b);
	uint8_t *dst = malloc(elen + 1);
	ck_assert_int_eq(kv_batch_encode(b, dst, elen + 1), -EINVAL);
	ck_assert_int_eq(kv_batch_encode(b, dst, elen - 1), -EINVAL);
	ck_assert_int_eq(kv_batch_encode(b, dst, elen), 0);
	free(dst);
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
	tcase_add_test(tc, data_is_checked_chunk_by_chunk_and_relocations_round_trip);
	tcase_add_test(tc, encoded_batch_is_its_record_payload_and_decodes_to_the_same_batch);
	tcase_add_test(tc, decoded_batch_applies_like_the_original);
	tcase_add_test(tc, decoding_refuses_every_truncation_and_trailing_bytes);
	tcase_add_test(tc, decoding_refuses_a_damaged_data_byte);
	tcase_add_test(tc, relocations_are_neither_encoded_nor_decoded);
	tcase_add_test(tc, encoding_into_a_buffer_of_another_length_is_refused);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
