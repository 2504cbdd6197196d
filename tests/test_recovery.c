/* Recovery: torn tails are cut and reported, damage is refused without touching the disk,
 * salvage keeps the prefix and sets damaged files aside, and a crash at any I/O call of a
 * snapshot recovers. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"
#include "simstore.h"
#include "wal.h"

#define SEG1 SIM_DIR "/wal-0000000000000001.log"

/* A store of n records k000.. in one segment, closed cleanly (so the file ends at the last
 * record). Returns the disk. */
static struct faultio *store_with_records(int n)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16], v[16];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "value%03d", i);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_close(s), 0);
	return f;
}

/* Offsets of the records in a segment file. */
static int record_offsets(struct faultio *f, const char *path, uint64_t *offs, int max, uint64_t *size)
{
	void *data;
	size_t len;
	int n = 0;
	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	for (uint64_t off = WAL_HDR_SIZE; off + REC_HDR_SIZE <= len && n < max;) {
		uint32_t l = le_get32((uint8_t *)data + off + 4);
		if (l == 0 && le_get32((uint8_t *)data + off) == 0)
			break;
		offs[n++] = off;
		off += REC_HDR_SIZE + l;
	}
	*size = len;
	free(data);
	return n;
}

static int open_rc(struct faultio *f, enum kv_recovery mode, struct kv_report *rep, struct kv **out)
{
	struct kv_options o = sim_options(f);
	o.recovery = mode;
	*out = NULL;
	return kv_open(out, SIM_DIR, &o, rep);
}

static void expect_prefix(struct kv *s, int n)
{
	char k[16], v[16];
	ck_assert_uint_eq(store_keys(s), (uint64_t)n);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "value%03d", i);
		expect_str(s, k, v);
	}
}

START_TEST(torn_tail_is_cut_and_reported)
{
	struct faultio *f = store_with_records(10);
	uint64_t offs[16], size;
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 16, &size), 10);
	ck_assert_int_eq(faultio_truncate(f, SEG1, size - 3), 0);
	struct kv_report rep;
	struct kv *s = sim_open(f, &rep);
	ck_assert_uint_eq(rep.records_replayed, 9);
	ck_assert_uint_eq(rep.tail_bytes_cut, size - 3 - offs[9]);
	ck_assert_uint_eq(rep.tail_offset, offs[9]);
	ck_assert_str_eq(rep.tail_file, "wal-0000000000000001.log");
	ck_assert_ptr_nonnull(strstr(rep.message, "torn tail"));
	expect_prefix(s, 9);
	/* the store goes on from there and the next recovery is clean */
	put_str(s, "k009", "value009");
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open(f, &rep);
	ck_assert_uint_eq(rep.tail_bytes_cut, 0);
	expect_prefix(s, 10);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(zero_filled_tail_is_cut_quietly)
{
	struct faultio *f = store_with_records(5);
	uint64_t offs[8], size;
	record_offsets(f, SEG1, offs, 8, &size);
	char zeros[4096] = { 0 };
	/* a preallocated tail that a crash left behind */
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, SEG1, &data, &len), 0);
	char *grown = malloc(len + sizeof zeros);
	memcpy(grown, data, len);
	memcpy(grown + len, zeros, sizeof zeros);
	ck_assert_int_eq(faultio_write_file(f, SEG1, grown, len + sizeof zeros), 0);
	free(data);
	free(grown);
	struct kv_report rep;
	struct kv *s = sim_open(f, &rep);
	ck_assert_uint_eq(rep.tail_bytes_cut, sizeof zeros);
	ck_assert_str_eq(rep.message, "");
	expect_prefix(s, 5);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(mid_log_damage_is_refused_and_nothing_changes)
{
	struct faultio *f = store_with_records(10);
	uint64_t offs[16], size;
	record_offsets(f, SEG1, offs, 16, &size);
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[3] + 20, 0x01), 0);
	struct faultio *before;
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damaged, 1);
	ck_assert_uint_eq(rep.damage_offset, offs[3]);
	char want[64];
	snprintf(want, sizeof want, "offset %" PRIu64, offs[3]);
	ck_assert_ptr_nonnull(strstr(rep.message, "wal-0000000000000001.log"));
	ck_assert_ptr_nonnull(strstr(rep.message, want));
	ck_assert_ptr_null(strchr(rep.message, '\n'));
	char why[256];
	ck_assert_int_eq(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why), 0);
	/* kv_check agrees, and changes nothing either */
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), &rep), -EUCLEAN);
	ck_assert_uint_eq(rep.damage_offset, offs[3]);
	ck_assert_int_eq(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why), 0);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

START_TEST(lsn_gap_is_refused)
{
	struct faultio *f = store_with_records(10);
	uint64_t offs[16], size;
	record_offsets(f, SEG1, offs, 16, &size);
	/* rewrite record 5's LSN as 7, with a CRC that matches: only the gap is wrong */
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, SEG1, &data, &len), 0);
	uint8_t *r = (uint8_t *)data + offs[5];
	uint32_t plen = le_get32(r + 4);
	le_put64(r + 8, 7);
	le_put32(r, crc32c(0, r + 4, REC_HDR_SIZE - 4 + plen));
	ck_assert_int_eq(faultio_overwrite(f, SEG1, offs[5], r, REC_HDR_SIZE), 0);
	free(data);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_uint_eq(rep.damage_offset, offs[5]);
	ck_assert_ptr_nonnull(strstr(rep.message, "gap"));
	faultio_destroy(f);
}
END_TEST

START_TEST(missing_segment_is_a_gap_and_refused)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16];
	for (int i = 0; i < 600; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "0123456789012345678901234567890123456789");
	}
	ck_assert_int_eq(kv_close(s), 0);
	char **names;
	size_t n;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	int segs = 0;
	char victim[300] = "";
	for (size_t i = 0; i < n; i++)
		if (!strncmp(names[i], "wal-", 4) && ++segs == 2)
			snprintf(victim, sizeof victim, SIM_DIR "/%s", names[i]);
	faultio_free_names(names, n);
	ck_assert_int_ge(segs, 3);
	ck_assert_int_eq(faultio_remove(f, victim), 0);
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(rep.message, "gap"));
	faultio_destroy(f);
}
END_TEST

START_TEST(crc_catches_every_single_bit_flip_of_a_record)
{
	struct faultio *f = store_with_records(4);
	uint64_t offs[8], size;
	record_offsets(f, SEG1, offs, 8, &size);
	/* each bit of record 1 (followed by valid records): refused; of the last record: cut */
	for (int which = 1; which <= 3; which += 2) {
		uint64_t start = offs[which], end = which == 3 ? size : offs[which + 1];
		for (uint64_t off = start; off < end; off++) {
			for (int bit = 0; bit < 8; bit++) {
				struct faultio *g;
				ck_assert_int_eq(faultio_clone(f, &g), 0);
				ck_assert_int_eq(faultio_flip(g, SEG1, off, (uint8_t)(1u << bit)), 0);
				struct kv_report rep;
				struct kv *s;
				int rc = open_rc(g, KV_RECOVERY_STRICT, &rep, &s);
				if (which == 1) {
					ck_assert_msg(rc == -EUCLEAN, "flip at %" PRIu64 " bit %d: rc %d", off, bit, rc);
				} else {
					ck_assert_msg(rc == 0, "flip at %" PRIu64 " bit %d: rc %d", off, bit, rc);
					ck_assert_uint_eq(rep.records_replayed, 3);
					expect_prefix(s, 3);
					ck_assert_int_eq(kv_close(s), 0);
				}
				faultio_destroy(g);
			}
		}
	}
	faultio_destroy(f);
}
END_TEST

START_TEST(point_in_time_keeps_the_prefix_and_sets_damage_aside)
{
	struct faultio *f = store_with_records(10);
	uint64_t offs[16], size;
	record_offsets(f, SEG1, offs, 16, &size);
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[6] + 18, 0x80), 0);
	void *orig;
	size_t orig_len;
	ck_assert_int_eq(faultio_read_file(f, SEG1, &orig, &orig_len), 0);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_POINT_IN_TIME, &rep, &s), 0);
	ck_assert_uint_eq(rep.set_aside, 1);
	ck_assert_ptr_nonnull(strstr(rep.message, "SALVAGED"));
	expect_prefix(s, 6);
	/* the damaged file is kept whole beside the store */
	void *aside;
	size_t aside_len;
	ck_assert_int_eq(faultio_read_file(f, SEG1 ".damaged", &aside, &aside_len), 0);
	ck_assert_uint_eq(aside_len, orig_len);
	ck_assert(!memcmp(aside, orig, orig_len));
	free(aside);
	free(orig);
	put_str(s, "more", "x");
	ck_assert_int_eq(kv_close(s), 0);
	/* and the store is clean from then on, in strict mode */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "more", "x");
	ck_assert_uint_eq(store_keys(s), 7);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(salvage_then_strict_open_succeeds)
{
	struct faultio *f = store_with_records(10);
	uint64_t offs[16], size;
	record_offsets(f, SEG1, offs, 16, &size);
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[2] + 1, 0x10), 0);
	struct kv_report rep;
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), &rep), 0);
	ck_assert_uint_eq(rep.set_aside, 1);
	ck_assert(faultio_exists(f, SEG1 ".damaged"));
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), &rep), 0);
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_prefix(s, 2);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(damaged_snapshot_is_refused)
{
	struct faultio *f = store_with_records(10);
	struct kv *s = sim_open(f, NULL);
	ck_assert_int_eq(kv_snapshot(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	const char *snap = SIM_DIR "/snap-000000000000000a.kvs";
	ck_assert(faultio_exists(f, snap));
	ck_assert_int_eq(faultio_flip(f, snap, 60, 0x04), 0);
	struct faultio *before;
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(rep.message, "snap-000000000000000a.kvs"));
	ck_assert_ptr_nonnull(strstr(rep.message, "offset 40"));
	char why[256];
	ck_assert_int_eq(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), &rep), -EUCLEAN);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

START_TEST(check_reports_clean_store)
{
	struct faultio *f = store_with_records(10);
	struct kv_report rep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), &rep), 0);
	ck_assert_uint_eq(rep.records_replayed, 10);
	ck_assert_uint_eq(rep.last_lsn, 10);
	ck_assert_int_eq(rep.damaged, 0);
	faultio_destroy(f);
}
END_TEST

/* Count the I/O calls one snapshot makes, then crash at each of them in turn. */
START_TEST(crash_at_each_io_call_of_a_snapshot_recovers)
{
	uint64_t calls;
	{
		struct faultio *f = store_with_records(50);
		struct kv *s = sim_open(f, NULL);
		put_str(s, "unflushed", "u");
		uint64_t c0 = faultio_calls(f);
		ck_assert_int_eq(kv_snapshot(s), 0);
		calls = faultio_calls(f) - c0;
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
	}
	ck_assert_uint_gt(calls, 5);
	enum fio_crash modes[] = { FIO_CRASH_DROP, FIO_CRASH_KEEP, FIO_CRASH_TEAR, FIO_CRASH_GARBAGE };
	for (uint64_t k = 0; k < calls; k++) {
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			struct faultio *f = store_with_records(50);
			struct kv *s = sim_open(f, NULL);
			put_str(s, "unflushed", "u");
			faultio_crash_at(f, faultio_calls(f) + 1 + k);
			/* fails, unless the crash falls after the snapshot became durable */
			int rc = kv_snapshot(s);
			(void)rc;
			kv_close(s);
			ck_assert_int_eq(faultio_crash(f, modes[m], k), 0);
			struct kv_report rep;
			int orc = open_rc(f, KV_RECOVERY_STRICT, &rep, &s);
			ck_assert_msg(orc == 0, "crash at snapshot call %" PRIu64 " mode %zu: %s", k, m, rep.message);
			/* everything flushed before is there; the unflushed write may or may not be */
			ck_assert_uint_ge(store_keys(s), 50);
			expect_str(s, "k049", "value049");
			ck_assert_int_eq(kv_close(s), 0);
			faultio_destroy(f);
		}
	}
}
END_TEST

START_TEST(recovery_is_deterministic)
{
	struct faultio *f = store_with_records(30);
	struct kv *s = sim_open(f, NULL);
	ck_assert_int_eq(kv_snapshot(s), 0);
	put_str(s, "k000", "changed");
	ck_assert_int_eq(kv_flush(s), 0);
	put_str(s, "k001", "unflushed");
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_TEAR, 42), 0);
	kv_close(s);
	struct faultio *g;
	ck_assert_int_eq(faultio_clone(f, &g), 0);
	struct kv *a = sim_open(f, NULL), *b = sim_open(g, NULL);
	char k[16];
	for (int i = 0; i < 30; i++) {
		void *va, *vb;
		uint64_t la, lb;
		snprintf(k, sizeof k, "k%03d", i);
		ck_assert_int_eq(kv_get(a, k, strlen(k), &va, &la), 0);
		ck_assert_int_eq(kv_get(b, k, strlen(k), &vb, &lb), 0);
		ck_assert_uint_eq(la, lb);
		ck_assert(!memcmp(va, vb, la));
		free(va);
		free(vb);
	}
	expect_str(a, "k000", "changed");
	ck_assert_int_eq(kv_close(a), 0);
	ck_assert_int_eq(kv_close(b), 0);
	faultio_destroy(f);
	faultio_destroy(g);
}
END_TEST

/* Recovery reads a segment through a window of a few MiB: records that straddle the window's
 * edge, a record larger than the window, and a tail torn or damaged beyond the first window. */
#define BIG_RECORDS 40

static void big_value(char *buf, int i, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (char)('a' + (i * 7 + (int)k) % 26);
}

static size_t big_len(int i)
{
	return i == 20 ? (5u << 20) : 1000 + (size_t)i * 13 * 1024; /* record 20 outgrows the window */
}

static struct faultio *store_with_big_records(struct kv_options *o)
{
	struct faultio *f = sim_disk();
	struct kv *s;
	char k[16], *v = malloc(5u << 20);

	*o = sim_options(f);
	o->segment_bytes = 64u << 20; /* one segment of about 16 MiB */
	ck_assert_int_eq(kv_open(&s, SIM_DIR, o, NULL), 0);
	for (int i = 0; i < BIG_RECORDS; i++) {
		snprintf(k, sizeof k, "big%02d", i);
		big_value(v, i, big_len(i));
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, big_len(i)), 0);
	}
	ck_assert_int_eq(kv_close(s), 0);
	free(v);
	return f;
}

/* store_with_big_records, and the offsets of its records (offs: BIG_RECORDS + 1 slots). */
static struct faultio *big_records_at(struct kv_options *o, uint64_t *offs)
{
	struct faultio *f = store_with_big_records(o);
	uint64_t size;

	ck_assert_int_eq(record_offsets(f, SEG1, offs, BIG_RECORDS + 1, &size), BIG_RECORDS);
	return f;
}

static void expect_big_prefix(struct kv *s, int n)
{
	char k[16], *want = malloc(5u << 20);

	ck_assert_uint_eq(store_keys(s), (uint64_t)n);
	for (int i = 0; i < n; i++) {
		void *got;
		uint64_t len;

		snprintf(k, sizeof k, "big%02d", i);
		ck_assert_int_eq(kv_get(s, k, strlen(k), &got, &len), 0);
		big_value(want, i, big_len(i));
		ck_assert_uint_eq(len, big_len(i));
		ck_assert_msg(memcmp(got, want, len) == 0, "%s differs", k);
		free(got);
	}
	free(want);
}

START_TEST(a_segment_larger_than_the_read_window_replays_whole)
{
	struct kv_options o;
	uint64_t offs[BIG_RECORDS + 1];
	struct faultio *f = big_records_at(&o, offs);
	struct kv_report rep;
	struct kv *s;

	ck_assert_uint_gt(offs[BIG_RECORDS - 1], 3 * (4u << 20)); /* the window slid three times */
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), 0);
	ck_assert_uint_eq(rep.records_replayed, BIG_RECORDS);
	expect_big_prefix(s, BIG_RECORDS);
	ck_assert_int_eq(kv_close(s), 0);

	/* torn inside the last record, far past the first window: cut there */
	ck_assert_int_eq(faultio_truncate(f, SEG1, offs[BIG_RECORDS - 1] + 5000), 0);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), 0);
	ck_assert_uint_eq(rep.records_replayed, BIG_RECORDS - 1);
	ck_assert_uint_eq(rep.tail_offset, offs[BIG_RECORDS - 1]);
	ck_assert_int_eq(rep.tail_torn, 1);
	expect_big_prefix(s, BIG_RECORDS - 1);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(damage_past_the_first_read_window_is_refused)
{
	struct kv_options o;
	uint64_t offs[BIG_RECORDS + 1];
	struct faultio *f = big_records_at(&o, offs);
	struct kv_report rep;
	struct kv *s;

	/* record 21 straddles no window edge of its own but follows the one larger than a window */
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[21] + 100, 0x40), 0);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), -EUCLEAN);
	ck_assert_uint_eq(rep.damage_offset, offs[21]);
	o.recovery = KV_RECOVERY_POINT_IN_TIME;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), 0);
	expect_big_prefix(s, 21);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("recovery");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, torn_tail_is_cut_and_reported);
	tcase_add_test(tc, zero_filled_tail_is_cut_quietly);
	tcase_add_test(tc, mid_log_damage_is_refused_and_nothing_changes);
	tcase_add_test(tc, lsn_gap_is_refused);
	tcase_add_test(tc, missing_segment_is_a_gap_and_refused);
	tcase_add_test(tc, crc_catches_every_single_bit_flip_of_a_record);
	tcase_add_test(tc, point_in_time_keeps_the_prefix_and_sets_damage_aside);
	tcase_add_test(tc, salvage_then_strict_open_succeeds);
	tcase_add_test(tc, damaged_snapshot_is_refused);
	tcase_add_test(tc, check_reports_clean_store);
	tcase_add_test(tc, crash_at_each_io_call_of_a_snapshot_recovers);
	tcase_add_test(tc, recovery_is_deterministic);
	tcase_add_test(tc, a_segment_larger_than_the_read_window_replays_whole);
	tcase_add_test(tc, damage_past_the_first_read_window_is_refused);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
