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
#include "logfmt.h"
#include "record.h"
#include "../mount/report.h" /* report_ckpt_loss: the words salvage prints */

#define SEG1 SIM_DIR "/wal-0000000000000001.log"

/* n small records k000.. holding value000..; with flush_every, flushed after every flush_every
 * of them and after the last. */
static void put_records(struct kv *s, int n, int flush_every)
{
	char k[16], v[16];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "value%03d", i);
		put_str(s, k, v);
		if (flush_every && (i % flush_every == flush_every - 1 || i == n - 1))
			ck_assert_int_eq(kv_flush(s), 0);
	}
}

/* A store of n records k000.. in one segment, closed cleanly (so the file ends at the last
 * record). Returns the disk. */
static struct faultio *store_with_records(int n)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_records(s, n, 0);
	ck_assert_int_eq(kv_close(s), 0);
	return f;
}

/* Offsets of the data records in a segment file, and (*size) where they end: the file's end,
 * or the end of the last record before the close mark a clean close wrote after them (the mark
 * starts a block of its own), which damage at the end of the records is meant to cut too (a
 * crash before the close). Zeros up to a block boundary where a record starts are the padding
 * before the close mark (docs/FORMAT.md 3.3). */
static int record_offsets(struct faultio *f, const char *path, uint64_t *offs, int max, uint64_t *size)
{
	void *data;
	size_t len;
	int n = 0;
	uint64_t end = SEG_HDR_SIZE;
	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	*size = len;
	for (uint64_t off = SEG_HDR_SIZE; off + REC_HDR_SIZE <= len && n < max;) {
		const uint8_t *h = (uint8_t *)data + off;
		uint32_t l = le_get32(h + REC_OFF_LEN);
		if (l == 0 && le_get32(h) == 0) {
			uint64_t b = (off + LOG_BLOCK - 1) / LOG_BLOCK * LOG_BLOCK;
			if (b == off || b + REC_HDR_SIZE > len || le_get32((uint8_t *)data + b) == 0)
				break;
			off = b;
			continue;
		}
		if (h[REC_OFF_TYPE] == REC_TYPE_MARK) {
			*size = end;
			break;
		}
		offs[n++] = off;
		off += REC_HDR_SIZE + l;
		end = off;
	}
	free(data);
	return n;
}

/* Take the close mark away, as a crash after the last write (before a clean close) would
 * have left the log. */
static void drop_close_mark_in(struct faultio *f, const char *path)
{
	static uint64_t offs[4096];
	uint64_t end;
	record_offsets(f, path, offs, 4096, &end);
	ck_assert_int_eq(faultio_truncate(f, path, end), 0);
}

static void drop_close_mark(struct faultio *f)
{
	drop_close_mark_in(f, SEG1);
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

/* Zeros over len bytes (at most a block) of SEG1 from off. */
static void zero_in_seg1(struct faultio *f, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[LOG_BLOCK];
	ck_assert_uint_le(len, LOG_BLOCK);
	ck_assert_int_eq(faultio_overwrite(f, SEG1, off, zeros, len), 0);
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
	ck_assert_int_eq(rep.tail_torn, 1);
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), "torn tail"));
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
	ck_assert_str_eq(tu_report(&rep), "");
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
	ck_assert_int_eq(rep.damage, KV_DAMAGE_BAD_RECORD);
	ck_assert_str_eq(rep.damage_file, "wal-0000000000000001.log");
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), want));
	ck_assert_ptr_null(strchr(tu_report(&rep), '\n'));
	char why[256];
	ck_assert_int_eq(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why), 0);
	/* kv_check agrees, and changes nothing either */
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
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
	struct seg_header sh;
	struct rec_header rh;
	ck_assert_int_eq(seg_header_decode(data, &sh), 0);
	ck_assert_int_eq(rec_header_decode(r, sh.salt, &rh), 1);
	rh.lsn = 7;
	rec_header_encode(r, sh.salt, &rh);
	ck_assert_int_eq(faultio_overwrite(f, SEG1, offs[5], r, REC_HDR_SIZE), 0);
	free(data);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_uint_eq(rep.damage_offset, offs[5]);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_LSN_GAP);
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
	ck_assert_int_eq(rep.damage, KV_DAMAGE_SEGMENT_GAP);
	faultio_destroy(f);
}
END_TEST

START_TEST(crc_catches_every_single_bit_flip_of_a_record)
{
	struct faultio *f = store_with_records(4);
	uint64_t offs[8], size;
	record_offsets(f, SEG1, offs, 8, &size);
	/* each bit of record 1 (followed by valid records): refused; of the last record of a log
	 * that a crash ended (no close mark after it): cut */
	for (int which = 1; which <= 3; which += 2) {
		uint64_t start = offs[which], end = which == 3 ? size : offs[which + 1];
		for (uint64_t off = start; off < end; off++) {
			for (int bit = 0; bit < 8; bit++) {
				struct faultio *g;
				ck_assert_int_eq(faultio_clone(f, &g), 0);
				if (which == 3)
					drop_close_mark(g);
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
	ck_assert_int_eq(rep.salvaged, 1);
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), "SALVAGED"));
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
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.set_aside, 1);
	ck_assert(faultio_exists(f, SEG1 ".damaged"));
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_prefix(s, 2);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A name carrying an LSN no store reaches (above 2^63 - 1) is not a checkpoint or a segment: it is
 * left alone, and nothing takes the next LSN from it (a salvage that did wrapped it to 0 and wrote
 * wal-0000000000000000.log, which kv_check then refused: found by fuzz_checkpoint). */
START_TEST(names_beyond_the_largest_lsn_are_not_the_stores_files)
{
	struct faultio *f = store_with_records(10);
	const char *odd[] = { SIM_DIR "/ckpt-ffffffffffffffff.kvc", SIM_DIR "/wal-8000000000000000.log" };
	struct kv_report rep;
	struct kv *s;
	for (size_t i = 0; i < 2; i++)
		ck_assert_int_eq(faultio_write_file(f, odd[i], "KVCK junk", 9), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_prefix(s, 10);
	ck_assert_int_eq(kv_close(s), 0);
	for (size_t i = 0; i < 2; i++)
		ck_assert_msg(faultio_exists(f, odd[i]), "%s was not left alone", odd[i]);
	ck_assert(!faultio_exists(f, SIM_DIR "/wal-0000000000000000.log"));
	faultio_destroy(f);
}
END_TEST

#define SNAP10 SIM_DIR "/ckpt-000000000000000b.kvc" /* 10 records, the close mark */

/* store_with_records(10) with a checkpoint (SNAP10), closed. */
static struct faultio *ten_records_checkpointed(void)
{
	struct faultio *f = store_with_records(10);
	struct kv *s = sim_open(f, NULL);
	ck_assert_int_eq(kv_snapshot(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	return f;
}

START_TEST(damaged_checkpoint_is_refused)
{
	struct faultio *f = ten_records_checkpointed();
	struct kv *s;
	const char *snap = SNAP10;
	ck_assert(faultio_exists(f, snap));
	ck_assert_int_eq(faultio_flip(f, snap, 60, 0x04), 0);
	struct faultio *before;
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_CHECKPOINT);
	ck_assert_str_eq(rep.damage_file, "ckpt-000000000000000b.kvc");
	ck_assert_uint_eq(rep.damage_offset, 48);
	char why[256];
	ck_assert_int_eq(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

/* A checkpoint header counts the extents of all its entries (docs/FORMAT.md §6.1). One whose
 * count disagrees with its entries, under a checksum that holds (a writer's bug, not media
 * damage), is damage like any other lie in the file; found by fuzz_checkpoint, whose loader
 * took it and wrote back a different header. */
START_TEST(a_checkpoint_whose_header_miscounts_its_extents_is_refused)
{
	struct faultio *f = ten_records_checkpointed();
	struct kv *s;
	const char *snap = SNAP10;
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, snap, &data, &len), 0);
	ck_assert_uint_ge(len, 48);
	uint8_t *hdr = data;
	le_put64(hdr + 32, le_get64(hdr + 32) + 1);
	le_put32(hdr + 44, crc32c(0, hdr, 44));
	ck_assert_int_eq(faultio_overwrite(f, snap, 0, hdr, 48), 0);
	free(data);
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_CHECKPOINT);
	ck_assert_str_eq(rep.damage_file, "ckpt-000000000000000b.kvc");
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	faultio_destroy(f);
}
END_TEST

/* What salvage leaves, a strict open takes (kv.h). Found by fuzz_wal (minimised): one segment,
 * wal-0000000000000000.log, whose header's checksum fails, holding no record under its salt;
 * judged without the salt, a zero-length record of LSN 1 and an unknown type at offset 99.
 * Check refuses it (an unknown type at 99); salvage cuts the segment there, sets the original
 * aside and succeeds, but what it leaves (the damaged header and 67 bytes) a strict open and
 * check then refuse for missing records at offset 0. */
START_TEST(what_salvage_leaves_of_a_segment_with_a_damaged_header_opens_strictly)
{
	static const uint8_t seg[] = {
		0x4b, 0x56, 0x46, 0x53, 0x57, 0x41, 0x4c, 0x00, 0x02, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x22, 0x34, 0xaf, 0x30, 0x83, 0x96, 0x98, 0x0c, 0x90, 0xc2, 0x1c, 0x19,
		0x18, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0xb5, 0xbc, 0xc3,
		0xca, 0xd1, 0x00, 0x00, 0x00, 0x00, 0xf4, 0xfb, 0x02, 0x09, 0x10, 0x17,
		0x1e, 0x25, 0x2c, 0x33, 0x3a, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x4c,
		0x4f, 0x43, 0x4b, 0x00, 0x00, 0x81, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0xfa, 0x4b, 0xfd, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x34, 0xaf,
		0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xab,
		0x6d, 0x4a, 0x0b, 0x41, 0x00, 0x00, 0x53, 0x57,
	};
	struct faultio *f = sim_disk();
	ck_assert_int_eq(faultio_mkdirs(f, SIM_DIR), 0);
	ck_assert_int_eq(faultio_write_file(f, SIM_DIR "/wal-0000000000000000.log", seg, sizeof seg), 0);
	struct kv_report rep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	int rc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep);
	ck_assert_msg(rc == 0, "kv_check after salvage: %s (%s)", strerror(-rc), tu_report(&rep));
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(check_reports_clean_store)
{
	struct faultio *f = store_with_records(10);
	struct kv_report rep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.records_replayed, 10);
	ck_assert_uint_eq(rep.last_lsn, 11); /* and the close mark */
	ck_assert_int_eq(rep.damaged, 0);
	faultio_destroy(f);
}
END_TEST

/* store_with_records(50) opened again (*f its disk), with "unflushed" put and not flushed. */
static struct kv *fifty_records_and_an_unflushed_one(struct faultio **f)
{
	*f = store_with_records(50);
	struct kv *s = sim_open(*f, NULL);
	put_str(s, "unflushed", "u");
	return s;
}

/* Count the I/O calls one snapshot makes, then crash at each of them in turn. */
START_TEST(crash_at_each_io_call_of_a_snapshot_recovers)
{
	uint64_t calls;
	{
		struct faultio *f;
		struct kv *s = fifty_records_and_an_unflushed_one(&f);
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
			struct faultio *f;
			struct kv *s = fifty_records_and_an_unflushed_one(&f);
			faultio_crash_at(f, faultio_calls(f) + 1 + k);
			/* fails, unless the crash falls after the snapshot became durable */
			int rc = kv_snapshot(s);
			(void)rc;
			kv_close(s);
			ck_assert_int_eq(faultio_crash(f, modes[m], k), 0);
			struct kv_report rep;
			int orc = open_rc(f, KV_RECOVERY_STRICT, &rep, &s);
			ck_assert_msg(orc == 0, "crash at snapshot call %" PRIu64 " mode %zu: %s", k, m, tu_report(&rep));
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

/* ---- what recovery calls durable is durable; tails cost linear work; covered damage ---- */

/* Make the process die inside its next flush: what it wrote is in the page cache (a record is
 * written when its call returns), the flush's fdatasync never happens, and a kill -9 (the page
 * cache survives) follows. */
static void kill_inside_the_next_flush(struct faultio *f, struct kv *s)
{
	faultio_crash_at(f, faultio_calls(f) + 1); /* the flush's fdatasync */
	ck_assert_int_ne(kv_flush(s), 0);
	kv_close(s); /* fails too: the process is gone */
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
}

/* A 4096-byte segment filled exactly by one PUT of "big" (its value returned in *val), whose
 * process was killed inside the flush: the record is in the page cache, never fdatasync'd. A
 * full segment has no preallocated zeros after its last record for recovery to cut (a cut syncs
 * the file), which is what hid the missing sync. */
static struct faultio *full_segment_killed_before_its_sync(char **val)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open_seg(f, 4096, NULL);
	/* payload = count 4, op 1, klen 2, key 3, mlen 2, vlen 8, value */
	size_t vlen = 4096 - SEG_HDR_SIZE - REC_HDR_SIZE - (4 + 1 + 2 + 3 + 2 + 8);
	char *v = malloc(vlen + 1);
	memset(v, 'Q', vlen);
	v[vlen] = '\0';
	ck_assert_int_eq(kv_put(s, "big", 3, v, vlen), 0);
	kill_inside_the_next_flush(f, s);
	*val = v;
	return f;
}

START_TEST(a_flush_after_recovering_a_killed_process_survives_a_power_cut)
{
	char *v;
	struct faultio *f = full_segment_killed_before_its_sync(&v);

	/* the next process recovers the record from the page cache and acknowledges a flush */
	struct kv *s = sim_open_seg(f, 4096, NULL);
	expect_str(s, "big", v);
	put_str(s, "x", "1");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0); /* power cut, s is gone */

	s = sim_open_seg(f, 4096, NULL); /* after the power cut */
	expect_str(s, "big", v);
	expect_str(s, "x", "1");
	ck_assert_int_eq(kv_close(s), 0);
	free(v);
	faultio_destroy(f);
}
END_TEST

START_TEST(what_recovery_serves_survives_a_power_cut_before_any_flush)
{
	char *v;
	struct faultio *f = full_segment_killed_before_its_sync(&v);

	struct kv *s = sim_open_seg(f, 4096, NULL);
	expect_str(s, "big", v);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0); /* nobody flushed; s is gone */
	s = sim_open_seg(f, 4096, NULL);
	expect_str(s, "big", v);
	ck_assert_int_eq(kv_close(s), 0);
	free(v);
	faultio_destroy(f);
}
END_TEST

/* A store of segments of seg_bytes holding "k0" then "big" (value v, vlen bytes), closed. */
static struct faultio *k0_then_big(uint64_t seg_bytes, const uint8_t *v, size_t vlen)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open_seg(f, seg_bytes, NULL);
	put_str(s, "k0", "v0");
	ck_assert_int_eq(kv_put(s, "big", 3, v, vlen), 0);
	ck_assert_int_eq(kv_close(s), 0);
	return f;
}

/* SEG1 as a write torn at byte keep left it: its first keep bytes, then zeros up to the
 * preallocated size seg_bytes (or its own size, if larger: *file). Malloc'd, for the caller to
 * damage further and write back. */
static uint8_t *seg1_torn_at(struct faultio *f, uint64_t seg_bytes, uint64_t keep, uint64_t *file)
{
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, SEG1, &data, &len), 0);
	*file = seg_bytes > len ? seg_bytes : len;
	uint8_t *img = calloc(1, *file);
	ck_assert_ptr_nonnull(img);
	memcpy(img, data, keep);
	free(data);
	return img;
}

/* A segment of seg_bytes holding record k0, then a PUT of `big` whose value is vlen bytes of
 * the pattern 01 00 01 00 ..., written but torn: only `torn` bytes of its record reached the
 * file and the rest of the preallocated segment is zeros. The pattern is the worst case for a
 * search that checksums a candidate before looking at its LSN: at every other offset it reads
 * as a record of type 1 with a length of 65537 bytes that fits in the file. */
static struct faultio *torn_after_one_record(uint64_t seg_bytes, size_t vlen, uint64_t torn,
					     uint64_t *rec_off)
{
	uint64_t offs[4], size, file;
	uint8_t *v = malloc(vlen);

	for (size_t i = 0; i < vlen; i++)
		v[i] = (uint8_t)(i % 2 == 0);
	struct faultio *f = k0_then_big(seg_bytes, v, vlen);
	free(v);
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 4, &size), 2);
	/* tear the second record: keep `torn` bytes of it, zeros up to the preallocated size */
	uint8_t *img = seg1_torn_at(f, seg_bytes, offs[1] + torn, &file);
	ck_assert_int_eq(faultio_write_file(f, SEG1, img, file), 0);
	free(img);
	*rec_off = offs[1];
	return f;
}

START_TEST(cutting_a_torn_record_of_any_size_costs_linear_work)
{
	const uint64_t seg = 256u << 10;
	const size_t vlen = 200u << 10;
	uint64_t cases = 0;
	for (uint64_t torn = 1; torn < vlen; torn += torn < 600 ? 1 : 1021) {
		uint64_t rec_off;
		struct faultio *f = torn_after_one_record(seg, vlen, torn, &rec_off);
		struct kv_report rep;
		struct kv *s = sim_open_seg(f, seg, &rep);
		ck_assert_uint_eq(rep.records_replayed, 1);
		ck_assert_uint_eq(rep.tail_offset, rec_off);
		ck_assert_msg(rep.bytes_checksummed <= 2 * seg, "torn at %" PRIu64 ": %" PRIu64
			      " bytes checksummed for a %" PRIu64 "-byte segment", torn,
			      rep.bytes_checksummed, seg);
		/* the torn part is what was written, not the preallocated zeros after it */
		ck_assert_uint_le(rep.tail_torn_bytes, torn);
		ck_assert_uint_eq(rep.tail_bytes_cut, seg - rec_off);
		expect_str(s, "k0", "v0");
		expect_str(s, "big", NULL);
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
		cases++;
	}
	printf("torn record sizes tried: %" PRIu64 "\n", cases);
}
END_TEST

/* A segment of seg_bytes holding k0, then `big` whose value is a run of record images (a
 * header every 32 bytes with a plausible LSN and a length reaching to the value's end), torn
 * `torn` bytes in; the segment header's salt damaged, and with zero_first the first record (k0)
 * too. The salt unknown, each image could be judged only by a checksum over the length it
 * claims: quadratic in the segment's size before the search learnt the salt first. */
static struct faultio *images_behind_a_damaged_header(uint64_t seg_bytes, uint64_t torn, int zero_first)
{
	uint64_t offs[4], size, file;
	size_t vlen = seg_bytes - seg_bytes / 256 - 512;
	uint8_t *v = calloc(1, vlen);

	for (size_t off = 0; off + REC_HDR_SIZE <= vlen; off += REC_HDR_SIZE) {
		le_put32(v + off + REC_OFF_LEN, (uint32_t)(vlen - off - REC_HDR_SIZE));
		le_put64(v + off + REC_OFF_LSN, 3);
	}
	struct faultio *f = k0_then_big(seg_bytes, v, vlen);
	free(v);
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 4, &size), 2);
	uint8_t *img = seg1_torn_at(f, seg_bytes, offs[1] + torn, &file);
	img[SEG_OFF_SALT] ^= 0x10;
	if (zero_first)
		memset(img + offs[0], 0, REC_HDR_SIZE);
	ck_assert_int_eq(faultio_write_file(f, SEG1, img, file), 0);
	free(img);
	return f;
}

/* Open, check and salvage of that segment each checksum at most `per_byte` times its bytes,
 * whatever its size: linear. */
static void images_cost_linear_work(int zero_first, uint64_t per_byte)
{
	for (uint64_t seg = 16u << 10; seg <= (256u << 10); seg *= 4)
		for (uint64_t torn = 1; torn < seg - seg / 256; torn += seg / 64 + 1) {
			for (int verb = 0; verb < 3; verb++) {
				struct faultio *f = images_behind_a_damaged_header(seg, torn, zero_first);
				struct kv_options o = sim_options(f);
				struct kv_report rep;
				struct kv *s = NULL;
				int rc;
				o.segment_bytes = seg;
				if (verb == 0)
					rc = kv_open(&s, SIM_DIR, &o, &rep);
				else if (verb == 1)
					rc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep);
				else
					rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep);
				if (s)
					ck_assert_int_eq(kv_close(s), 0);
				ck_assert_msg(rc == 0 || rc == -EUCLEAN, "verb %d: %d", verb, rc);
				ck_assert_msg(rep.bytes_checksummed <= per_byte * seg, "verb %d, segment %" PRIu64
					      ", torn at %" PRIu64 ": %" PRIu64 " bytes checksummed", verb, seg,
					      torn, rep.bytes_checksummed);
				faultio_destroy(f);
			}
		}
}

START_TEST(record_images_behind_a_damaged_header_cost_linear_work)
{
	images_cost_linear_work(0, 2);
}
END_TEST

START_TEST(record_images_behind_a_damaged_header_and_first_record_cost_linear_work)
{
	images_cost_linear_work(1, 24);
}
END_TEST

/* The values of the sweep below: 01 00 01 00 (a record of type 1 at every other offset), all
 * 0x01 (issue 10's 8 KiB of torn 0x01 bytes), seeded random bytes (its 20 MiB of them). */
static void torn_fill(uint8_t *v, size_t n, int fill, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		v[i] = fill == 0 ? (uint8_t)(i % 2 == 0) : fill == 1 ? 1 : (uint8_t)tu_rand(&seed);
}

/* Issue 10, bug 2: torn records of every size up to a segment. A record that fills most of an
 * 8 KiB segment is torn after each of its bytes (one case per size, the rest of the segment the
 * preallocated zeros; a size whose missing bytes are zeros anyway leaves the record whole and is
 * no case); kv_open, and at every 7th size kv_check and kv_salvage, which take the same path,
 * checksum at most twice the segment (DURABILITY 4.1a). Seeded (the random fill). */
START_TEST(a_torn_record_of_every_size_up_to_a_segment_costs_linear_work_in_open_check_and_salvage)
{
	const uint64_t seg = 8u << 10;
	const size_t vlen = seg - seg / 256 - 512;
	uint64_t seed = tu_seed(), cases = 0, worst = 0;
	uint8_t *v = malloc(vlen);
	for (int fill = 0; fill < 3; fill++) {
		struct kv *s;
		struct sim_rec rec[4];
		void *data;
		size_t len;
		torn_fill(v, vlen, fill, seed);
		struct faultio *base = k0_then_big(seg, v, vlen);
		ck_assert_uint_ge(sim_records(base, SEG1, rec, 4), 2);
		ck_assert_int_eq(faultio_read_file(base, SEG1, &data, &len), 0);
		const uint8_t *img = data;
		size_t file = len > seg ? len : seg;
		uint8_t *t = malloc(file);
		for (uint64_t torn = 1; torn < rec[1].size; torn++) {
			uint64_t end = rec[1].off + rec[1].size, i = rec[1].off + torn;
			while (i < end && !img[i])
				i++;
			if (i == end)
				continue; /* the bytes not written were zeros: the record is whole */
			memset(t, 0, file);
			memcpy(t, img, rec[1].off + torn);
			for (int verb = 0; verb < (torn % 7 ? 1 : 3); verb++) {
				struct faultio *f;
				struct kv_report rep;
				ck_assert_int_eq(faultio_clone(base, &f), 0);
				ck_assert_int_eq(faultio_write_file(f, SEG1, t, file), 0);
				if (verb == 0) {
					s = sim_open_seg(f, seg, &rep);
					ck_assert_uint_eq(rep.records_replayed, 1);
					ck_assert_uint_eq(rep.tail_offset, rec[1].off);
					expect_str(s, "big", NULL);
					ck_assert_int_eq(kv_close(s), 0);
				} else if (verb == 1) {
					ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
				} else {
					ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
				}
				ck_assert_msg(rep.bytes_checksummed <= 2 * seg, "fill %d, torn at %" PRIu64
					      ", %s: %" PRIu64 " bytes checksummed for a %" PRIu64 "-byte "
					      "segment", fill, torn, verb == 0 ? "open" : verb == 1 ?
					      "check" : "salvage", rep.bytes_checksummed, seg);
				worst = rep.bytes_checksummed > worst ? rep.bytes_checksummed : worst;
				faultio_destroy(f);
				cases++;
			}
		}
		free(t);
		free(data);
		faultio_destroy(base);
	}
	free(v);
	printf("torn records: %" PRIu64 " cases, at most %" PRIu64 " bytes checksummed for an %" PRIu64
	       "-byte segment\n", cases, worst, seg);
}
END_TEST

/* The bound docs/FORMAT.md states: a store whose last record is torn at 64 MiB opens with at
 * most twice its segment's bytes checksummed. */
START_TEST(a_record_torn_at_64_mib_is_cut_with_at_most_twice_the_segment_checksummed)
{
	uint64_t rec_off;
	const uint64_t seg = 80u << 20;
	struct faultio *f = torn_after_one_record(seg, 72u << 20, 64u << 20, &rec_off);
	struct kv_report rep;
	struct kv *s = sim_open_seg(f, seg, &rep);
	ck_assert_uint_eq(rep.records_replayed, 1);
	ck_assert_int_eq(rep.tail_torn, 1);
	ck_assert_uint_le(rep.bytes_checksummed, 2 * seg);
	printf("torn 64 MiB record: %" PRIu64 " bytes checksummed for an %" PRIu64 " MiB segment\n",
	       rep.bytes_checksummed, seg >> 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The seed demo: a..e, SNAP (a checkpoint at LSN 5), f g h, and, with rewrite_c, c again
 * (so that record 3's value is dead), FLUSH. */
static struct faultio *store_with_checkpoint_at_5(uint64_t *offs, int rewrite_c)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	uint64_t size;
	const char *k[] = { "a", "b", "c", "d", "e", "f", "g", "h" };
	for (int i = 0; i < 8; i++) {
		char v[4];
		snprintf(v, sizeof v, "%d", i + 1);
		put_str(s, k[i], v);
		if (i == 4)
			ck_assert_int_eq(kv_snapshot(s), 0);
	}
	if (rewrite_c)
		put_str(s, "c", "3");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 10, &size), 8 + rewrite_c);
	return f;
}

static void expect_a_to_h(struct kv *s, const char *except)
{
	const char *k[] = { "a", "b", "c", "d", "e", "f", "g", "h" };
	for (int i = 0; i < 8; i++) {
		char v[4];
		if (except && strchr(except, k[i][0])) { /* lost: salvage deleted it */
			expect_str(s, k[i], NULL);
			continue;
		}
		snprintf(v, sizeof v, "%d", i + 1);
		expect_str(s, k[i], v);
	}
}

START_TEST(damage_in_records_the_checkpoint_holds_costs_nothing_once_their_values_are_gone)
{
	uint64_t offs[10];
	struct faultio *f = store_with_checkpoint_at_5(offs, 1);
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[2] + 30, 0x01), 0); /* record 3's payload */
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.covered_damage, 1);
	ck_assert_uint_eq(rep.covered_offset, offs[2]);
	ck_assert_str_eq(rep.covered_file, "wal-0000000000000001.log");
	ck_assert_int_eq(rep.damaged, 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_uint_eq(rep.records_replayed, 4);
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), "already holds"));
	expect_a_to_h(s, NULL);
	ck_assert_int_eq(kv_close(s), 0);
	/* salvage finds nothing to set aside */
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.set_aside, 0);
	ck_assert(!faultio_exists(f, SEG1 ".damaged"));
	faultio_destroy(f);
}
END_TEST

START_TEST(damage_in_a_record_holding_a_live_value_refuses_and_salvage_names_the_key)
{
	uint64_t offs[10];
	struct faultio *f = store_with_checkpoint_at_5(offs, 0);
	/* c's value: its byte after the record header (24), count, op, klen, key, mlen, vlen and
	 * its chunk checksum (4 + 1 + 2 + 1 + 2 + 8 + 4) */
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[2] + REC_HDR_SIZE + 22, 0x01), 0);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	/* its chunk fails its checksum (the record's framing alone would cost nothing) */
	ck_assert_int_eq(rep.damage, KV_DAMAGE_VALUE_BYTES);
	ck_assert_str_eq(rep.lost_key, "c");
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), "the first 'c'"));
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	/* point in time: every intact record after the damage is kept; c, whose value lost bytes,
	 * is deleted (its bytes stay in the copy set aside), so the store is whole again */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_POINT_IN_TIME, &rep, &s), 0);
	ck_assert_uint_eq(rep.lost_keys, 1);
	ck_assert_str_eq(rep.lost_key, "c");
	ck_assert_uint_eq(rep.set_aside, 1); /* a copy of the damaged segment; it stays in place */
	ck_assert(faultio_exists(f, SEG1) && faultio_exists(f, SEG1 ".damaged"));
	expect_a_to_h(s, "c");
	ck_assert_int_eq(kv_close(s), 0);
	/* nothing live is left where the damage is: strict opens, and salvage has nothing to do */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_a_to_h(s, "c");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.set_aside, 0);
	ck_assert_uint_eq(rep.lost_keys, 0);
	faultio_destroy(f);
}
END_TEST

/* One record of three PUTs (x, y, z: as the cleaner's RELOCATE records hold many keys), a
 * checkpoint after it, then one more PUT: offs[0] is the batch record. */
static struct faultio *store_with_a_covered_batch(uint64_t *offs)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_batch *b;
	uint64_t size;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "x", 1, NULL, 0, "xxxx", 4), 0);
	ck_assert_int_eq(kv_batch_put(b, "y", 1, NULL, 0, "yyyy", 4), 0);
	ck_assert_int_eq(kv_batch_put(b, "z", 1, NULL, 0, "zzzz", 4), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), 0);
	kv_batch_free(b);
	ck_assert_int_eq(kv_snapshot(s), 0);
	put_str(s, "after", "1");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 10, &size), 2);
	return f;
}

/* A flipped byte in a key of a record the checkpoint holds: the record fails its checksum, but
 * the checkpoint says where each value lies and every chunk still checks against its own
 * checksum, so no key is lost (DURABILITY 4.5): open and check both take the store. */
START_TEST(a_flipped_key_byte_in_a_covered_record_of_many_values_costs_no_key)
{
	uint64_t offs[10];
	struct faultio *f = store_with_a_covered_batch(offs);
	/* the first key: after the count (4), op (1) and klen (2) */
	ck_assert_int_eq(faultio_flip(f, SEG1, offs[0] + REC_HDR_SIZE + 7, 0x20), 0);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_uint_eq(rep.covered_damage, 1);
	ck_assert_uint_eq(rep.covered_offset, offs[0]);
	expect_str(s, "x", "xxxx");
	expect_str(s, "y", "yyyy");
	expect_str(s, "z", "zzzz");
	expect_str(s, "after", "1");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A flipped value byte of y in that record costs y alone, in open, check and salvage alike;
 * after the salvage a strict open takes the store, and a second salvage changes nothing. */
START_TEST(a_flipped_value_byte_in_a_covered_record_of_many_values_costs_that_key_alone)
{
	uint64_t offs[10];
	struct faultio *f = store_with_a_covered_batch(offs);
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, SEG1, &data, &len), 0);
	uint8_t *yv = memmem((uint8_t *)data + offs[0], len - offs[0], "yyyy", 4);
	ck_assert_ptr_nonnull(yv);
	uint64_t at = (uint64_t)(yv - (uint8_t *)data) + 1;
	free(data);
	ck_assert_int_eq(faultio_flip(f, SEG1, at, 0x20), 0);
	struct kv_report rep, crep;
	struct kv *s;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep), -EUCLEAN);
	ck_assert_str_eq(crep.data_damage_key, "y");
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_uint_eq(rep.lost_keys, 1);
	ck_assert_str_eq(rep.lost_key, "y");
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.lost_keys, 1);
	ck_assert_str_eq(rep.lost_key, "y");
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "x", "xxxx");
	expect_str(s, "y", NULL);
	expect_str(s, "z", "zzzz");
	expect_str(s, "after", "1");
	ck_assert_int_eq(kv_close(s), 0);
	struct faultio *before;
	char why[256];
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.lost_keys, 0);
	ck_assert_uint_eq(rep.set_aside, 0);
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0, "%s", why);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

/* A record of two values (x: 700 bytes, y) the checkpoint holds, first in its segment, then 10
 * small PUTs after the checkpoint; the first sector zeroed takes the segment header, the record's
 * head and x's first bytes. The salt is found again from the 10 records after the checkpoint
 * (each one's base, read as an LSN 8 bytes on, is a false image with a salt of its own: as many
 * as the genuine records the search for the checkpoint's next LSN finds, 1): x alone is lost. */
START_TEST(a_zeroed_first_sector_over_a_covered_record_finds_the_salt_in_the_few_records_after_it)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_batch *b;
	static char x[701];
	char k[16], v[16];
	memset(x, 'x', 700);
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "x", 1, NULL, 0, x, 700), 0);
	ck_assert_int_eq(kv_batch_put(b, "y", 1, NULL, 0, "yyyy", 4), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), 0);
	kv_batch_free(b);
	ck_assert_int_eq(kv_snapshot(s), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof k, "s%d", i);
		snprintf(v, sizeof v, "small-%d", i);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	uint8_t zeros[512] = { 0 };
	ck_assert_int_eq(faultio_overwrite(f, SEG1, 0, zeros, sizeof zeros), 0);
	struct kv_report rep, crep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep), -EUCLEAN);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_VALUE_BYTES);
	ck_assert_str_eq(rep.lost_key, "x");
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.lost_keys, 1);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "x", NULL);
	expect_str(s, "y", "yyyy");
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof k, "s%d", i);
		snprintf(v, sizeof v, "small-%d", i);
		expect_str(s, k, v);
	}
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(covered_records_with_their_lengths_destroyed_are_skipped_to_the_first_record_after_the_checkpoint)
{
	uint64_t offs[10];
	struct faultio *f = store_with_checkpoint_at_5(offs, 0);
	/* zero records 2..5 entirely: nothing tells where they end */
	uint8_t zeros[512] = { 0 };
	ck_assert_uint_le(offs[5] - offs[1], sizeof zeros);
	ck_assert_int_eq(faultio_overwrite(f, SEG1, offs[1], zeros, offs[5] - offs[1]), 0);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN); /* b..e lost bytes */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_POINT_IN_TIME, &rep, &s), 0);
	ck_assert_uint_eq(rep.covered_offset, offs[1]);
	ck_assert_uint_eq(rep.records_replayed, 3); /* f g h: found again after the zeros */
	ck_assert_uint_eq(rep.lost_keys, 4);
	expect_a_to_h(s, "bcde");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_damaged_header_of_a_segment_the_checkpoint_covers_loses_nothing)
{
	uint64_t offs[10];
	struct faultio *f = store_with_checkpoint_at_5(offs, 0);
	ck_assert_int_eq(faultio_flip(f, SEG1, 3, 0x20), 0); /* the segment's magic */
	struct kv_report rep;
	struct kv *s;
	/* the salt is found again from the first record; values have their own checksums */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_uint_eq(rep.covered_offset, 0);
	ck_assert_uint_eq(rep.records_replayed, 3);
	expect_a_to_h(s, NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Keys a..e in segment 1, a checkpoint at their last record (LSN 5), then a value too big for
 * what is left of segment 1: it starts segment 6, so segment 1 lies wholly before the
 * checkpoint (no open reads its records) and still holds the values of a..e. */
static struct faultio *live_values_wholly_before_the_checkpoint(void)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	const char *k[] = { "a", "b", "c", "d", "e" };
	for (int i = 0; i < 5; i++) {
		char v[4];
		snprintf(v, sizeof v, "%d", i + 1);
		put_str(s, k[i], v);
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
	size_t big = 20000; /* more than a segment: a record in a segment of its own */
	char *v = malloc(big + 1);
	ck_assert_ptr_nonnull(v);
	memset(v, 'B', big);
	v[big] = '\0';
	put_str(s, "big", v);
	free(v);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_msg(faultio_exists(f, SIM_DIR "/wal-0000000000000006.log"),
		      "the big value should have started segment 6");
	return f;
}

/* Zeros over the first sector of that segment take its header and the values of a..e: kv_check
 * and a strict open give the same verdict (refused, naming a key), and salvage deletes exactly
 * those keys, naming them, after which a strict open succeeds. */
START_TEST(a_zeroed_first_sector_of_a_segment_wholly_before_the_checkpoint_refuses_open_and_check_alike)
{
	struct faultio *f = live_values_wholly_before_the_checkpoint();
	uint8_t zeros[512] = { 0 };
	uint64_t size;
	bool is_dir;
	ck_assert_int_eq(faultio_stat(f, SEG1, &is_dir, &size), 0);
	ck_assert_int_eq(faultio_overwrite(f, SEG1, 0, zeros, size < sizeof zeros ? size : sizeof zeros), 0);
	struct kv_report crep, orep;
	struct kv *s;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep), -EUCLEAN);
	ck_assert_int_eq(crep.damage, KV_DAMAGE_VALUE_BYTES);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &orep, &s), -EUCLEAN);
	ck_assert_int_eq(orep.damage, KV_DAMAGE_VALUE_BYTES);
	ck_assert_str_eq(orep.damage_file, "wal-0000000000000001.log");
	ck_assert_uint_eq(orep.data_damaged_keys, 5);
	ck_assert_str_eq(orep.data_damage_key, crep.data_damage_key);
	struct kv_report srep;
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &srep), 0);
	ck_assert_uint_eq(srep.lost_keys, 5);
	ck_assert_str_eq(srep.lost_key, "a");
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &orep, &s), 0);
	ck_assert_uint_eq(store_keys(s), 1);
	expect_str(s, "a", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep), 0);
	faultio_destroy(f);
}
END_TEST

/* A flipped byte in that segment's header alone costs no value byte: open and check both find
 * the store clean. */
START_TEST(a_damaged_header_of_a_segment_wholly_before_the_checkpoint_costs_nothing_in_open_and_check_alike)
{
	struct faultio *f = live_values_wholly_before_the_checkpoint();
	ck_assert_int_eq(faultio_flip(f, SEG1, 3, 0x20), 0); /* the segment's magic */
	struct kv_report crep, orep;
	struct kv *s;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &orep, &s), 0);
	ck_assert_uint_eq(orep.covered_damage, 1);
	expect_str(s, "c", "3");
	ck_assert_uint_eq(store_keys(s), 6);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(covered_damage_that_also_destroys_records_after_the_checkpoint_is_refused)
{
	uint64_t offs[10];
	struct faultio *f = store_with_checkpoint_at_5(offs, 0);
	/* records 4..6 gone: 6 is the first the checkpoint lacks, and 7, 8 follow */
	uint8_t zeros[512] = { 0 };
	ck_assert_int_eq(faultio_overwrite(f, SEG1, offs[3], zeros, offs[6] - offs[3]), 0);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damaged, 1);
	/* salvage keeps the checkpoint's state, but d and e lost their bytes: deleted */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_POINT_IN_TIME, &rep, &s), 0);
	ck_assert_uint_eq(rep.lost_keys, 2);
	ck_assert_uint_eq(store_keys(s), 3);
	expect_str(s, "c", "3");
	expect_str(s, "e", NULL);
	expect_str(s, "f", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(recovery_removes_what_the_newest_checkpoint_makes_unneeded)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16];
	for (int i = 0; i < 700; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "0123456789012345678901234567890123456789");
		if (i == 100)
			ck_assert_int_eq(kv_snapshot(s), 0);
	}
	/* every value again, short: the segments before now hold nothing live */
	for (int i = 0; i < 700; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "v");
	}
	/* the checkpoint is made durable, but the process dies before it removes what it makes
	 * unneeded */
	ck_assert_int_eq(faultio_fail(f, FIO_OP_UNLINK, 1, -EIO, true), 0);
	ck_assert_int_eq(kv_snapshot(s), 0);
	faultio_clear_faults(f);
	put_str(s, "unflushed", "u");
	kill_inside_the_next_flush(f, s);
	char **names;
	size_t n, segs_before = 0, snaps_before = 0, segs = 0, snaps = 0;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		segs_before += !strncmp(names[i], "wal-", 4);
		snaps_before += !strncmp(names[i], "ckpt-", 5);
	}
	faultio_free_names(names, n);
	ck_assert_uint_ge(segs_before, 3);
	ck_assert_uint_eq(snaps_before, 2);

	s = sim_open(f, NULL);
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		segs += !strncmp(names[i], "wal-", 4);
		snaps += !strncmp(names[i], "ckpt-", 5);
	}
	faultio_free_names(names, n);
	ck_assert_uint_eq(snaps, 1);
	ck_assert_uint_le(segs, 3); /* only those holding the short values */
	ck_assert_uint_lt(segs, segs_before);
	ck_assert_uint_eq(store_keys(s), 701);
	ck_assert_int_eq(kv_close(s), 0);
	/* and that holds across a power cut: nothing was removed before the snapshot was durable */
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 2), 0);
	s = sim_open(f, NULL);
	ck_assert_uint_eq(store_keys(s), 701);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_new_store_opens_and_takes_writes_on_a_disk_smaller_than_a_segment)
{
	struct faultio *f = sim_disk();
	char v[1000];
	memset(v, 'v', sizeof v);
	faultio_set_capacity(f, 64u << 10);
	struct kv *s = sim_open_seg(f, 1u << 20, NULL);
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%02d", i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, sizeof v), 0);
	}
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 3), 0);
	s = sim_open_seg(f, 1u << 20, NULL);
	ck_assert_uint_eq(store_keys(s), 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* k holding 1,499 bytes 'v' (a record of more than a third of a page). */
static void put_long(struct kv *s, const char *k)
{
	char v[1500];
	memset(v, 'v', sizeof v - 1);
	v[sizeof v - 1] = 0;
	put_str(s, k, v);
}

/* Records written but not synced reach the disk in any order in a power cut: a page of one of
 * them can be missing (zeros, as preallocated) while a later one made it. None of those was
 * acknowledged, and no later record says the missing one had been synced: the log is cut there
 * (docs/FORMAT.md §7; model: tests/model/group_commit.pml). */
START_TEST(a_hole_in_the_last_unsynced_stretch_is_cut_not_refused)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	ck_assert_int_eq(kv_flush(s), 0);
	put_long(s, "b"); /* 2, 3, 4: written after the last flush */
	put_long(s, "c");
	put_long(s, "d");
	ck_assert_int_eq(kv_close(s), 0);
	drop_close_mark(f); /* the log a crash before the close leaves: nothing vouches for b..d */
	uint64_t offs[8], size;
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 8, &size), 4);
	zero_in_seg1(f, offs[1], offs[2] - offs[1]); /* b's pages */
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_uint_eq(rep.tail_offset, offs[1]);
	expect_str(s, "a", "1");
	expect_str(s, "b", NULL);
	expect_str(s, "d", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The same hole in a record a later one vouches for (its base says the hole had been synced):
 * that is damage, and the store refuses. */
START_TEST(a_hole_in_a_record_known_to_be_synced_is_damage)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	put_long(s, "b");
	ck_assert_int_eq(kv_flush(s), 0);
	put_long(s, "c"); /* its base: 2 */
	ck_assert_int_eq(kv_close(s), 0);
	uint64_t offs[8], size;
	ck_assert_int_eq(record_offsets(f, SEG1, offs, 8, &size), 3);
	zero_in_seg1(f, offs[1], offs[2] - offs[1]);
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_uint_eq(rep.damage_offset, offs[1]);
	faultio_destroy(f);
}
END_TEST

/* After a failed fdatasync Linux marks the pages clean without writing them and keeps serving
 * them. A reopen in the same boot must not take them for durable: recovery syncs, drops the
 * cache, and reads what the disk holds (model: tests/model/failed_sync.pml). */
START_TEST(a_reopen_after_a_failed_fdatasync_does_not_serve_what_never_reached_the_disk)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_a_flushed_then_b_failed(f);
	ck_assert_int_ne(kv_close(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0); /* same boot: the cache survives */
	struct kv_report rep;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "a", "1");
	expect_str(s, "b", NULL);
	put_str(s, "c", "3");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 2), 0); /* and a power cut loses nothing */
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "a", "1");
	expect_str(s, "b", NULL);
	expect_str(s, "c", "3");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- salvage of a checkpoint with damaged entries (docs/FORMAT.md §6, §8) ---- */

#define CK_KEYS 20

/* A checkpoint of s (on f), its path into ck; then "later" put after it; s closed. */
static void checkpoint_then_later(struct faultio *f, struct kv *s, char *ck, size_t cklen)
{
	ck_assert_int_eq(kv_snapshot(s), 0);
	put_str(s, "later", "after the checkpoint");
	struct kv_stats st;
	kv_stats(s, &st);
	snprintf(ck, cklen, SIM_DIR "/ckpt-%016" PRIx64 ".kvc", st.snapshot_lsn);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert(faultio_exists(f, ck));
}

/* A store of CK_KEYS keys k000.. (values v000..) checkpointed, its log before the checkpoint
 * gone, then "later" put after it; closed. *ck gets the checkpoint's path. */
static struct faultio *store_with_a_checkpoint(char *ck, size_t cklen)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16], v[16];
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < CK_KEYS; i++) {
			snprintf(k, sizeof k, "k%03d", i);
			snprintf(v, sizeof v, "v%03d", i);
			put_str(s, k, v);
		}
	checkpoint_then_later(f, s, ck, cklen);
	return f;
}

/* Where each entry of the checkpoint at path starts (and, at [n], where the footer does). */
static int ckpt_entry_offsets(struct faultio *f, const char *path, uint64_t *offs, int max)
{
	void *data;
	size_t len;
	int n = 0;
	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	const uint8_t *p = data;
	uint64_t count = le_get64(p + 24), off = 48;
	for (uint64_t i = 0; i < count && n < max; i++) {
		offs[n++] = off;
		off += 20 + le_get16(p + off + 4) + le_get16(p + off + 6) + 40ull * le_get32(p + off + 8);
	}
	ck_assert_uint_eq(off + 16, len);
	offs[n] = off;
	free(data);
	return n;
}

/* Salvage (kv_salvage, as kv_cli --salvage) after a strict open refused; then a strict open
 * must take what it left. Returns the salvage's report. */
static struct kv_report salvage_refused_store(struct faultio *f)
{
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_CHECKPOINT);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_msg(rep.salvaged, "%s", tu_report(&rep));
	struct kv_report again;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &again), 0);
	return rep;
}

/* Every key k000.. holds its value except those in lost[] (absent); "later" is there. */
static void expect_all_but(struct faultio *f, const int *lost, int nlost)
{
	struct kv *s;
	struct kv_report rep;
	char k[16], v[16];
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	for (int i = 0; i < CK_KEYS; i++) {
		int gone = 0;
		for (int j = 0; j < nlost; j++)
			gone |= lost[j] == i;
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "v%03d", i);
		expect_str(s, k, gone ? NULL : v);
	}
	expect_str(s, "later", "after the checkpoint");
	ck_assert_uint_eq(store_keys(s), (uint64_t)(CK_KEYS - nlost + 1));
	ck_assert_int_eq(kv_close(s), 0);
}

START_TEST(a_damaged_checkpoint_entry_costs_its_key_and_salvage_names_its_neighbours)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(f, ck, offs[6] - 3, 0x10), 0); /* in entry 5's last extent */
	struct kv_report rep = salvage_refused_store(f);
	ck_assert_uint_eq(rep.damage_offset, offs[5]);
	ck_assert_uint_eq(rep.ckpt_lost_entries, 1);
	ck_assert(rep.ckpt_lost_has_after && rep.ckpt_lost_has_before);
	ck_assert_str_eq(rep.ckpt_lost_after, "k004");
	ck_assert_str_eq(rep.ckpt_lost_before, "k006");
	ck_assert_uint_ge(rep.set_aside, 1); /* the damaged checkpoint, copied aside */
	char aside[160];
	snprintf(aside, sizeof aside, "%s.damaged", ck);
	ck_assert(faultio_exists(f, aside));
	expect_all_but(f, (const int[]){ 5 }, 1);
	faultio_destroy(f);
}
END_TEST

START_TEST(damaged_entries_in_two_places_cost_two_keys)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(f, ck, offs[3] + 4, 0x01), 0);  /* entry 3's klen */
	ck_assert_int_eq(faultio_flip(f, ck, offs[12] + 21, 0x40), 0); /* entry 12's key */
	struct kv_report rep = salvage_refused_store(f);
	ck_assert_uint_eq(rep.ckpt_lost_entries, 2);
	ck_assert_uint_eq(rep.lost_keys, 2);
	ck_assert_str_eq(rep.ckpt_lost_after, "k002");
	ck_assert_str_eq(rep.ckpt_lost_before, "k004");
	expect_all_but(f, (const int[]){ 3, 12 }, 2);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_damaged_last_entry_is_lost_to_the_end_of_the_checkpoint)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(f, ck, offs[CK_KEYS - 1], 0xff), 0); /* its checksum */
	struct kv_report rep = salvage_refused_store(f);
	ck_assert_uint_eq(rep.ckpt_lost_entries, 1);
	ck_assert_str_eq(rep.ckpt_lost_after, "k018");
	ck_assert(!rep.ckpt_lost_has_before);
	expect_all_but(f, (const int[]){ CK_KEYS - 1 }, 1);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_damaged_checkpoint_footer_loses_no_entry)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(f, ck, offs[CK_KEYS] + 9, 0x02), 0); /* its file checksum */
	struct kv_report rep = salvage_refused_store(f);
	ck_assert_uint_eq(rep.damage_offset, offs[CK_KEYS]);
	ck_assert_uint_eq(rep.ckpt_lost_entries, 0);
	ck_assert_uint_eq(rep.lost_keys, 0);
	expect_all_but(f, NULL, 0);
	faultio_destroy(f);
}
END_TEST

/* As store_with_a_checkpoint, but in 4 KiB segments with every key overwritten several times
 * first: the checkpoint deleted the segments below it, so the log no longer starts at LSN 1 and
 * only the checkpoint holds the keys (as in any store that lived a while). */
static struct faultio *store_with_a_checkpoint_past_its_log(char *ck, size_t cklen)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open_seg(f, 4096, NULL);
	char k[16], v[300];
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < CK_KEYS; i++) {
			snprintf(k, sizeof k, "k%03d", i);
			memset(v, 'a' + round, sizeof v - 1);
			v[sizeof v - 1] = 0;
			if (round == 3)
				snprintf(v, sizeof v, "v%03d", i);
			put_str(s, k, v);
		}
	checkpoint_then_later(f, s, ck, cklen);
	ck_assert(!faultio_exists(f, SEG1));
	return f;
}

/* A checkpoint's 48-byte header (its LSN, counts and salt) fails its checksum, the only
 * checkpoint, its log before it gone (attack4 finding 1: salvage used to start from an empty
 * state and set the whole log aside). The LSN is the file's name's, the salt is found again from
 * the entries, and entries running from the header to a good footer prove none is missing: every
 * key is kept, the log after the checkpoint too, whichever header byte is hit. */
START_TEST(a_flipped_byte_anywhere_in_a_checkpoint_header_loses_no_entry_nor_the_log_after_it)
{
	for (uint64_t at = 0; at < 48; at++) {
		char ck[128];
		struct faultio *f = store_with_a_checkpoint_past_its_log(ck, sizeof ck);
		ck_assert_int_eq(faultio_flip(f, ck, at, (uint8_t)(1u << (at % 8))), 0);
		struct kv_report rep = salvage_refused_store(f);
		ck_assert_msg(rep.ckpt_header_damaged && !rep.ckpt_lost_unknown,
			      "header byte %" PRIu64 ": %s", at, tu_report(&rep));
		ck_assert_uint_eq(rep.damage_offset, 0);
		ck_assert_uint_eq(rep.snapshot_keys, CK_KEYS);
		ck_assert_uint_eq(rep.ckpt_lost_entries, 0);
		ck_assert_uint_eq(rep.lost_keys, 0);
		char words[1024];
		report_ckpt_loss(&rep, words, sizeof words);
		ck_assert_msg(strstr(words, "all 20 entries kept: its header is damaged") &&
			      !strstr(words, "no entry lost"), "header byte %" PRIu64 ": %s", at, words);
		char aside[160];
		snprintf(aside, sizeof aside, "%s.damaged", ck);
		ck_assert(faultio_exists(f, aside));
		expect_all_but(f, NULL, 0);
		faultio_destroy(f);
	}
}
END_TEST

/* The header's salt field and its checksum both damaged: the salt is solved from the first
 * entry's checksum and proven by the second. */
START_TEST(a_damaged_checkpoint_salt_is_found_again_from_its_entries)
{
	char ck[128];
	struct faultio *f = store_with_a_checkpoint_past_its_log(ck, sizeof ck);
	ck_assert_int_eq(faultio_flip(f, ck, 41, 0xff), 0);
	ck_assert_int_eq(faultio_flip(f, ck, 45, 0x10), 0);
	struct kv_report rep = salvage_refused_store(f);
	ck_assert(rep.ckpt_header_damaged && !rep.ckpt_lost_unknown);
	expect_all_but(f, NULL, 0);
	faultio_destroy(f);
}
END_TEST

/* A damaged header and a damaged entry: the entries that check are kept, the lost one's
 * neighbours named; how many were lost is unknown (the count was in the header) and the report
 * says so instead of "no entry lost". */
START_TEST(a_damaged_checkpoint_header_and_entry_keep_every_provable_entry_and_say_the_loss_is_unknown)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint_past_its_log(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(f, ck, 26, 0x04), 0);            /* the header's count */
	ck_assert_int_eq(faultio_flip(f, ck, offs[7] + 21, 0x40), 0);   /* entry 7's key */
	struct kv_report rep = salvage_refused_store(f);
	ck_assert(rep.ckpt_header_damaged && rep.ckpt_lost_unknown);
	ck_assert_uint_eq(rep.snapshot_keys, CK_KEYS - 1);
	ck_assert_str_eq(rep.ckpt_lost_after, "k006");
	ck_assert_str_eq(rep.ckpt_lost_before, "k008");
	char words[1024];
	report_ckpt_loss(&rep, words, sizeof words);
	ck_assert_msg(strstr(words, "unknown number lost") && !strstr(words, "no entry lost"), "%s",
		      words);
	expect_all_but(f, (const int[]){ 7 }, 1);
	faultio_destroy(f);
}
END_TEST

/* A checkpoint cut inside its header: no entry can be proven, but the log after the name's LSN
 * is still replayed ("later" is kept), and the report says every key it held is lost. */
START_TEST(a_checkpoint_cut_inside_its_header_still_keeps_the_log_after_it)
{
	char ck[128];
	struct faultio *f = store_with_a_checkpoint_past_its_log(ck, sizeof ck);
	ck_assert_int_eq(faultio_truncate(f, ck, 30), 0);
	struct kv_report rep = salvage_refused_store(f);
	ck_assert(rep.ckpt_header_damaged && rep.ckpt_lost_unknown);
	ck_assert_uint_eq(rep.snapshot_keys, 0);
	char words[1024];
	report_ckpt_loss(&rep, words, sizeof words);
	ck_assert_msg(strstr(words, "no entry could be proven"), "%s", words);
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "later", "after the checkpoint");
	expect_str(s, "k000", NULL);
	ck_assert_uint_eq(store_keys(s), 1);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Each kind of damage gets the way out that is true of it, in the words kv_cli and kvfs both
 * print (kvfs adds its mount option); salvage's summary names what it dropped. */
START_TEST(the_way_out_of_a_refusal_says_what_salvage_keeps_for_that_damage)
{
	static const struct { enum kv_damage d; uint64_t off; const char *says; } cases[] = {
		{ KV_DAMAGE_BAD_RECORD, 100, "keeps every record before the first damaged one" },
		{ KV_DAMAGE_LSN_GAP, 100, "keeps every record before the first damaged one" },
		{ KV_DAMAGE_VALUE_BYTES, 100, "keeps every record and drops only the key(s) whose value "
					      "bytes are damaged" },
		{ KV_DAMAGE_LOST_VALUES, 100, "keeps every record and drops only the key(s) that lost "
					      "bytes there" },
		{ KV_DAMAGE_CHECKPOINT, 0, "keeps every checkpoint entry it can prove" },
		{ KV_DAMAGE_CHECKPOINT, 200, "keeps every checkpoint entry that checks and the log after "
					     "the checkpoint: only the damaged entries' keys are lost" },
		{ KV_DAMAGE_FORMAT_1, 0, "this version cannot read it, and salvage cannot convert it" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kv_report rep;
		char buf[1024];
		memset(&rep, 0, sizeof rep);
		rep.problem = KV_PROBLEM_DAMAGE;
		rep.damaged = 1;
		rep.damage = cases[i].d;
		rep.damage_offset = cases[i].off;
		report_salvage_advice(&rep, "D", "or mount with -o recovery=point_in_time", buf, sizeof buf);
		ck_assert_msg(strstr(buf, cases[i].says), "case %zu: %s", i, buf);
		if (cases[i].d != KV_DAMAGE_FORMAT_1)
			ck_assert_msg(strstr(buf, "run 'kv_cli --salvage D': it ") &&
				      strstr(buf, "(nothing is deleted), or mount with -o recovery=point_in_time"),
				      "case %zu: %s", i, buf);
		ck_assert_msg(!strstr(buf, "everything before"), "case %zu: %s", i, buf);
	}
	struct kv_report rep;
	char buf[512];
	memset(&rep, 0, sizeof rep);
	rep.last_lsn = 7;
	report_salvage_kept(&rep, buf, sizeof buf);
	ck_assert_str_eq(buf, "the state up to lsn 7");
	rep.lost_keys = 2;
	snprintf(rep.lost_key, sizeof rep.lost_key, "a/b");
	report_salvage_kept(&rep, buf, sizeof buf);
	ck_assert_str_eq(buf, "the state up to lsn 7, less 2 key(s) (the first 'a/b')");
}
END_TEST

/* The same cut header while the log still starts at LSN 1 (nothing below the checkpoint was
 * deleted): salvage replays the whole log from the empty state instead, and loses nothing. */
START_TEST(a_checkpoint_cut_inside_its_header_loses_nothing_while_the_log_starts_at_lsn_1)
{
	char ck[128];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert(faultio_exists(f, SEG1));
	ck_assert_int_eq(faultio_truncate(f, ck, 30), 0);
	struct kv_report rep = salvage_refused_store(f);
	ck_assert_uint_eq(rep.lost_keys, 0);
	char words[1024];
	report_ckpt_loss(&rep, words, sizeof words);
	ck_assert_msg(strstr(words, "its header is damaged: it was set aside and the state rebuilt from "
			     "the whole log") && !strstr(words, "no entry lost"), "%s", words);
	expect_all_but(f, NULL, 0);
	faultio_destroy(f);
}
END_TEST

/* A key written again after the checkpoint is back whatever its entry lost: replay of the log
 * after the checkpoint still runs. */
START_TEST(a_key_whose_entry_is_lost_but_written_again_after_the_checkpoint_is_back)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	struct kv *s = sim_open(f, NULL);
	put_str(s, "k007", "again");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(f, ck, offs[7] + 22, 0x01), 0);
	struct kv_report rep = salvage_refused_store(f);
	ck_assert_uint_eq(rep.ckpt_lost_entries, 1);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "k007", "again");
	ck_assert_uint_eq(store_keys(s), CK_KEYS + 1);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Salvage tries every byte after a damaged entry for the next one. The entries' checksums are
 * seeded with the checkpoint's salt, so an entry image a user put inside a key (here a whole
 * entry for key "m1", checksummed as version 1 did, unsalted) is not taken for an entry: the
 * damaged entry costs its own key, and "m1" does not appear. */
START_TEST(an_entry_image_inside_a_key_is_not_taken_for_an_entry)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	uint8_t key[2 + 20 + 2];
	memcpy(key, "m0", 2);
	uint8_t *img = key + 2;
	memset(img, 0, 20);
	le_put16(img + 4, 2); /* klen 2, mlen 0, no extents, size 0 */
	memcpy(img + 20, "m1", 2);
	le_put32(img, crc32c(0, img + 4, 16 + 2));
	put_str(s, "a", "first");
	ck_assert_int_eq(kv_put(s, key, sizeof key, "forger", 6), 0);
	put_str(s, "z", "last");
	ck_assert_int_eq(kv_snapshot(s), 0);
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_int_eq(kv_close(s), 0);
	char ck[128];
	uint64_t offs[4];
	snprintf(ck, sizeof ck, SIM_DIR "/ckpt-%016" PRIx64 ".kvc", st.snapshot_lsn);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, 3), 3);
	ck_assert_int_eq(faultio_flip(f, ck, offs[1], 0x01), 0); /* the forger's entry checksum */
	struct kv_report rep;
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.ckpt_lost_entries, 1);
	ck_assert_str_eq(rep.ckpt_lost_before, "z");
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "a", "first");
	expect_str(s, "z", "last");
	expect_str(s, "m1", NULL);
	ck_assert_uint_eq(store_keys(s), 2);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Checkpoints of version 1 (entries checksummed without a salt) are still read. */
START_TEST(a_version_1_checkpoint_is_still_read)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *f = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(f, ck, offs, CK_KEYS), CK_KEYS);
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, ck, &data, &len), 0);
	uint8_t *p = data;
	le_put32(p + 8, 1);
	le_put32(p + 40, 0);
	le_put32(p + 44, crc32c(0, p, 44));
	for (int i = 0; i < CK_KEYS; i++)
		le_put32(p + offs[i], crc32c(0, p + offs[i] + 4, offs[i + 1] - offs[i] - 4));
	uint64_t foot = offs[CK_KEYS];
	le_put32(p + foot + 8, crc32c(0, p, foot));
	le_put32(p + foot + 12, crc32c(0, p + foot, 12));
	ck_assert_int_eq(faultio_overwrite(f, ck, 0, p, len), 0);
	free(data);
	struct kv_report rep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	expect_all_but(f, NULL, 0);
	faultio_destroy(f);
}
END_TEST

/* A crash (a kill, or a power cut) at any I/O call of the salvage of a damaged entry, then a
 * salvage that runs to the end: the same keys as an uninterrupted salvage, and a store that
 * opens strictly. */
/* Salvage of base crashed at each of its I/O calls (killed, or a power cut dropping what was
 * not synced), then salvaged again: keeps(f) asserts what every salvage of base must leave, after
 * an uninterrupted salvage and after each crashed one salvaged again. */
struct keeps {
	void (*fn)(struct faultio *f);
};

static void call_keeps(void *ctx, struct faultio *f, const struct kv_report *rep, uint64_t at,
		       const char *what)
{
	const struct keeps *k = ctx;

	(void)rep;
	(void)at;
	(void)what;
	k->fn(f);
}

static void crash_every_io_call_of_salvage(struct faultio *base, void (*keeps)(struct faultio *f))
{
	struct keeps k = { keeps };

	sim_crash_every_io_call_of_salvage(base, call_keeps, &k, "salvage");
}

/* Every key of store_with_a_checkpoint but entry 9's; every key. */
static void keeps_all_but_entry_9(struct faultio *f)
{
	expect_all_but(f, (const int[]){ 9 }, 1);
}

static void keeps_every_entry(struct faultio *f)
{
	expect_all_but(f, NULL, 0);
}

START_TEST(a_crash_at_every_io_call_of_a_checkpoint_salvage_then_salvage_keeps_every_provable_key)
{
	char ck[128];
	uint64_t offs[CK_KEYS + 1];
	struct faultio *base = store_with_a_checkpoint(ck, sizeof ck);
	ck_assert_int_eq(ckpt_entry_offsets(base, ck, offs, CK_KEYS), CK_KEYS);
	ck_assert_int_eq(faultio_flip(base, ck, offs[9] + 21, 0x08), 0);
	crash_every_io_call_of_salvage(base, keeps_all_but_entry_9);
	faultio_destroy(base);
}
END_TEST

START_TEST(a_crash_at_every_io_call_of_a_checkpoint_header_salvage_then_salvage_loses_nothing)
{
	char ck[128];
	struct faultio *base = store_with_a_checkpoint_past_its_log(ck, sizeof ck);
	ck_assert_int_eq(faultio_flip(base, ck, 20, 0x01), 0); /* the LSN: the header's checksum fails */
	crash_every_io_call_of_salvage(base, keeps_every_entry);
	faultio_destroy(base);
}
END_TEST

/* ---- damage inside the values of records after the checkpoint (attack3 finding 1) ----
 * A record whose head checksum holds, whose operations parse and whose payload checksum comes
 * out once each failing 4 KiB chunk is counted by its own stored checksum has lost value bytes
 * and nothing else: when a later record vouches that it had been synced, recovery applies it,
 * and only the keys still holding bytes in the failing chunks are lost (DURABILITY 4.2, 4.4). */

#define VICTIM_LEN 20000u /* five chunks */
#define OTHER_LEN 9000u   /* three chunks */

/* The segment (path) and offset in it where needle (n bytes) first stands, or fails the test. */
static uint64_t find_in_log(struct faultio *f, const void *needle, size_t n, char *path, size_t plen)
{
	char **names;
	size_t count;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &count), 0);
	for (size_t k = 0; k < count; k++) {
		void *data;
		size_t len;
		if (strncmp(names[k], "wal-", 4) || !strstr(names[k], ".log") || strstr(names[k], ".damaged"))
			continue;
		snprintf(path, plen, SIM_DIR "/%s", names[k]);
		ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
		for (size_t i = 0; i + n <= len; i++)
			if (!memcmp((uint8_t *)data + i, needle, n)) {
				free(data);
				faultio_free_names(names, count);
				return i;
			}
		free(data);
	}
	faultio_free_names(names, count);
	ck_abort_msg("bytes not found in any segment");
	return 0;
}

static uint8_t victim_v[VICTIM_LEN], other_v[OTHER_LEN];

/* "first" (then a checkpoint), then "victim" (20,000 bytes), "other" (9,000 bytes) and "later"
 * after it, flushed and closed cleanly: each record is vouched for by what follows it. With
 * rewrite, "victim" is written again (other bytes) after "later". The offset of victim's first
 * value byte (its first write) in *seg. */
static struct faultio *values_after_a_checkpoint(int rewrite, char *seg, size_t seglen, uint64_t *data)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	sim_fill(victim_v, sizeof victim_v, 7);
	sim_fill(other_v, sizeof other_v, 8);
	put_str(s, "first", "before the checkpoint");
	ck_assert_int_eq(kv_snapshot(s), 0);
	ck_assert_int_eq(kv_put(s, "victim", 6, victim_v, sizeof victim_v), 0);
	ck_assert_int_eq(kv_put(s, "other", 5, other_v, sizeof other_v), 0);
	put_str(s, "later", "intact");
	if (rewrite)
		put_str(s, "victim", "written again");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	*data = find_in_log(f, victim_v, 64, seg, seglen);
	return f;
}

/* first, other and later hold their values; victim holds v (NULL: absent). */
static void expect_values_but_victim(struct faultio *f, const char *v)
{
	struct kv *s;
	struct kv_report rep;
	ck_assert_msg(open_rc(f, KV_RECOVERY_STRICT, &rep, &s) == 0, "%s", tu_report(&rep));
	expect_str(s, "first", "before the checkpoint");
	expect_str(s, "later", "intact");
	expect_str(s, "victim", v);
	void *got = NULL;
	uint64_t len = 0;
	ck_assert_int_eq(kv_get(s, "other", 5, &got, &len), 0);
	ck_assert(len == OTHER_LEN && !memcmp(got, other_v, OTHER_LEN));
	free(got);
	ck_assert_uint_eq(store_keys(s), v ? 4 : 3);
	ck_assert_int_eq(kv_close(s), 0);
}

/* What a salvage of victim's damage keeps. */
static void keeps_all_values_but_victim(struct faultio *f)
{
	expect_values_but_victim(f, NULL);
}

/* The attack3 reproduction, as it was filed (no checkpoint: every record is after it). */
static struct faultio *store_with_a_flipped_value_byte(void)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char seg[300];
	sim_fill(victim_v, sizeof victim_v, 7);
	ck_assert_int_eq(kv_put(s, "victim", 6, victim_v, sizeof victim_v), 0);
	put_str(s, "later", "intact");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	uint64_t at = find_in_log(f, victim_v + 9000, 64, seg, sizeof seg);
	ck_assert_int_eq(faultio_flip(f, seg, at, 0x40), 0);
	return f;
}

/* The paths of the names in SIM_DIR that contain part (at most max). */
static size_t names_with(struct faultio *f, const char *part, char (*out)[300], size_t max)
{
	char **names;
	size_t n, m = 0;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strstr(names[i], part) && m < max)
			snprintf(out[m++], sizeof out[0], SIM_DIR "/%s", names[i]);
	faultio_free_names(names, n);
	return m;
}

/* Do a and b hold the same bytes at path? */
static int same_file(struct faultio *a, struct faultio *b, const char *path)
{
	void *x, *y;
	size_t lx, ly;
	ck_assert_int_eq(faultio_read_file(a, path, &x, &lx), 0);
	if (faultio_read_file(b, path, &y, &ly)) {
		free(x);
		return 0;
	}
	int same = lx == ly && !memcmp(x, y, lx);
	free(x);
	free(y);
	return same;
}

/* A salvage that must copy the damaged segment aside, on a disk where a write of that copy
 * fails (a full disk: ENOSPC, whole or after part of the bytes; or EIO; at its pwrite, its
 * fdatasync or the directory fsync), at every such call: no empty or partial `*.damaged` is
 * ever left, and when the failure hit the copy the refusal carries, as data, that nothing was
 * changed and how many bytes the copy needs, put into words by report.c. Then a salvage with
 * room succeeds. */
START_TEST(a_salvage_whose_copy_aside_fails_removes_it_and_says_what_it_needs)
{
	struct faultio *base = store_with_a_flipped_value_byte(), *g;
	char segs[8][300], copies[8][300];
	size_t nsegs = names_with(base, ".log", segs, 8);
	/* what an undisturbed salvage copies */
	ck_assert_int_eq(faultio_clone(base, &g), 0);
	struct kv_report rep;
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(g), NULL, &rep), 0);
	size_t ncopies = names_with(g, ".damaged", copies, 8);
	ck_assert_uint_eq(ncopies, 1);
	bool is_dir;
	uint64_t need;
	ck_assert_int_eq(faultio_stat(g, copies[0], &is_dir, &need), 0);
	faultio_destroy(g);
	static const struct { enum fio_op op; int err; size_t keep; } faults[] = {
		{ FIO_OP_PWRITE, -ENOSPC, 0 }, { FIO_OP_PWRITE, -ENOSPC, 4096 }, { FIO_OP_PWRITE, -EIO, 0 },
		{ FIO_OP_FDATASYNC, -EIO, 0 }, { FIO_OP_FSYNC_DIR, -EIO, 0 },
	};
	for (size_t k = 0; k < sizeof faults / sizeof faults[0]; k++) {
		int hit = 0, rc = -1;
		for (uint64_t nth = 1; rc != 0; nth++) {
			ck_assert_int_eq(faultio_clone(base, &g), 0);
			uint64_t at = faultio_count(g, faults[k].op) + nth;
			if (faults[k].keep)
				ck_assert_int_eq(faultio_short_write(g, at, faults[k].keep, faults[k].err), 0);
			else
				ck_assert_int_eq(faultio_fail(g, faults[k].op, at, faults[k].err, false), 0);
			rc = kv_salvage(SIM_DIR, faultio_kvio(g), NULL, &rep);
			faultio_clear_faults(g);
			char what[96];
			snprintf(what, sizeof what, "%s %s at call %" PRIu64, faultio_op_name(faults[k].op),
				 strerror(-faults[k].err), nth);
			/* a copy set aside is whole, or not there */
			size_t n = names_with(g, ".damaged", copies, 8);
			for (size_t i = 0; i < n; i++) {
				void *c, *o;
				size_t lc, lo;
				char orig[300];
				snprintf(orig, sizeof orig, "%.*s", (int)(strstr(copies[i], ".damaged") - copies[i]),
					 copies[i]);
				ck_assert_int_eq(faultio_read_file(g, copies[i], &c, &lc), 0);
				ck_assert_int_eq(faultio_read_file(base, orig, &o, &lo), 0);
				ck_assert_msg(lc == lo && !memcmp(c, o, lc), "%s: %s holds %zu of the %zu bytes "
					      "of %s", what, copies[i], lc, lo, orig);
				free(c);
				free(o);
			}
			if (rc && rep.aside_unchanged) {
				hit++;
				ck_assert_msg(n == 0, "%s: nothing changed, yet %s is there", what, copies[0]);
				for (size_t i = 0; i < nsegs; i++)
					ck_assert_msg(same_file(base, g, segs[i]), "%s: %s changed", what, segs[i]);
				ck_assert_uint_eq(rep.aside_bytes, need);
				char words[160];
				snprintf(words, sizeof words, faults[k].err == -ENOSPC ?
					 "salvage needs %" PRIu64 " bytes free to set the damaged segment aside; "
					 "nothing was changed" : "could not set the damaged segment aside; nothing "
					 "was changed", need);
				ck_assert_msg(strstr(tu_report(&rep), words), "%s: the refusal says '%s'", what,
					      tu_report(&rep));
			}
			if (rc == 0) {
				/* the salvage got past the failure (or past every call of that kind) */
				struct kv *s;
				ck_assert_msg(open_rc(g, KV_RECOVERY_STRICT, &rep, &s) == 0, "%s", tu_report(&rep));
				expect_str(s, "later", "intact");
				ck_assert_int_eq(kv_close(s), 0);
			} else if (rep.aside_unchanged) {
				/* with the room back, salvage goes through */
				ck_assert_msg(kv_salvage(SIM_DIR, faultio_kvio(g), NULL, &rep) == 0, "%s: salvage "
					      "again: %s", what, tu_report(&rep));
			}
			faultio_destroy(g);
		}
		ck_assert_msg(hit, "no %s %s hit the copy", faultio_op_name(faults[k].op),
			      strerror(-faults[k].err));
	}
	faultio_destroy(base);
}
END_TEST

START_TEST(check_names_the_key_of_a_flipped_value_byte_written_since_the_checkpoint)
{
	struct faultio *f = store_with_a_flipped_value_byte();
	struct kv_report rep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	ck_assert_msg(rep.data_damaged_keys == 1 && !strcmp(rep.data_damage_key, "victim"),
		      "check named %" PRIu64 " damaged keys ('%s'); report: %s", rep.data_damaged_keys,
		      rep.data_damage_key, tu_report(&rep));
	faultio_destroy(f);
}
END_TEST

START_TEST(salvage_keeps_the_flushed_writes_after_a_flipped_value_byte)
{
	struct faultio *f = store_with_a_flipped_value_byte();
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.lost_keys, 1);
	ck_assert_str_eq(rep.lost_key, "victim");
	ck_assert_msg(open_rc(f, KV_RECOVERY_STRICT, &rep, &s) == 0, "strict open after salvage: %s",
		      tu_report(&rep));
	expect_str(s, "later", "intact");
	expect_str(s, "victim", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_flipped_value_byte_after_the_checkpoint_refuses_naming_the_key_and_changes_nothing)
{
	char seg[300], why[256];
	uint64_t data;
	struct faultio *f = values_after_a_checkpoint(0, seg, sizeof seg, &data), *before;
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(faultio_flip(f, seg, data + 9000, 0x01), 0); /* in its third chunk */
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_VALUE_BYTES);
	ck_assert_str_eq(rep.damage_file, strrchr(seg, '/') + 1);
	ck_assert_uint_eq(rep.damage_offset, data + 2 * DATA_CHUNK);
	ck_assert_uint_eq(rep.data_damaged_keys, 1);
	ck_assert_str_eq(rep.data_damage_key, "victim");
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0, "%s", why);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

START_TEST(flipped_bytes_in_several_chunks_of_a_value_cost_only_its_key)
{
	char seg[300];
	uint64_t data;
	struct faultio *f = values_after_a_checkpoint(0, seg, sizeof seg, &data);
	struct kv_report rep;
	for (uint64_t c = 0; c < 5; c += 2) /* chunks 0, 2 and 4 (the last, short one) */
		ck_assert_int_eq(faultio_flip(f, seg, data + c * DATA_CHUNK + 100, 0x80), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	ck_assert_uint_eq(rep.data_damaged_keys, 1);
	ck_assert_uint_eq(rep.damage_offset, data);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.lost_keys, 1);
	ck_assert_str_eq(rep.lost_key, "victim");
	expect_values_but_victim(f, NULL);
	faultio_destroy(f);
}
END_TEST

START_TEST(flipped_value_bytes_in_two_records_name_both_keys)
{
	char seg[300], seg2[300];
	uint64_t data;
	struct faultio *f = values_after_a_checkpoint(0, seg, sizeof seg, &data);
	struct kv_report rep;
	struct kv *s;
	uint64_t odata = find_in_log(f, other_v, 64, seg2, sizeof seg2);
	ck_assert_int_eq(faultio_flip(f, seg, data + 5000, 0x02), 0);
	ck_assert_int_eq(faultio_flip(f, seg2, odata + 8999, 0x02), 0); /* other's last byte */
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	ck_assert_uint_eq(rep.data_damaged_keys, 2);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.lost_keys, 2);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "first", "before the checkpoint");
	expect_str(s, "later", "intact");
	ck_assert_uint_eq(store_keys(s), 2);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The payload checksum covers the keys as well as the values: a flipped byte in a key name
 * leaves every chunk intact and the sum does not come out, so nothing in the record is
 * provable. It is never applied (as "vhctim" or anything else): mid-log damage as before, and
 * salvage keeps the records before it. */
START_TEST(a_flipped_byte_in_a_key_name_after_the_checkpoint_is_never_applied_as_another_key)
{
	char seg[300], kseg[300];
	uint64_t data;
	struct faultio *f = values_after_a_checkpoint(0, seg, sizeof seg, &data);
	struct kv_report rep;
	struct kv *s;
	uint64_t key = find_in_log(f, "victim", 6, kseg, sizeof kseg);
	ck_assert_str_eq(kseg, seg);
	ck_assert_uint_lt(key, data);
	ck_assert_int_eq(faultio_flip(f, seg, key + 1, 0x01), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_BAD_RECORD);
	ck_assert_uint_eq(rep.data_damaged_keys, 0);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_str(s, "first", "before the checkpoint");
	ck_assert_uint_eq(store_keys(s), 1);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A flipped byte in a chunk's stored checksum: the chunk fails, but counting it by that
 * checksum does not give the payload's: not provable either. */
START_TEST(a_flipped_chunk_checksum_is_not_taken_for_value_damage)
{
	char seg[300];
	uint64_t data;
	struct faultio *f = values_after_a_checkpoint(0, seg, sizeof seg, &data);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(faultio_flip(f, seg, data - 4 * data_chunks(VICTIM_LEN) + 4, 0x10), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_BAD_RECORD);
	faultio_destroy(f);
}
END_TEST

/* Damaged bytes no key reads any more (victim was written again after) cost nothing. */
START_TEST(a_damaged_value_written_again_later_costs_nothing)
{
	char seg[300];
	uint64_t data;
	struct faultio *f = values_after_a_checkpoint(1, seg, sizeof seg, &data);
	ck_assert_int_eq(faultio_flip(f, seg, data + 12345, 0x04), 0);
	expect_values_but_victim(f, "written again");
	faultio_destroy(f);
}
END_TEST

/* A record nothing after it vouches for (the last before a crash, never synced) with a bad
 * chunk looks like value damage but may be a write the crash tore: a torn tail, cut. */
START_TEST(a_bad_chunk_in_a_record_nothing_vouches_for_is_a_torn_tail)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_report rep;
	char seg[300];
	sim_fill(victim_v, sizeof victim_v, 7);
	put_str(s, "first", "before");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_put(s, "victim", 6, victim_v, sizeof victim_v), 0);
	ck_assert_int_eq(kv_close(s), 0);
	uint64_t data = find_in_log(f, victim_v, 64, seg, sizeof seg);
	drop_close_mark_in(f, seg); /* victim's own segment: it did not fit the first */
	ck_assert_int_eq(faultio_flip(f, seg, data + 4096, 0x01), 0);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert(rep.tail_torn);
	expect_str(s, "first", "before");
	ck_assert_uint_eq(store_keys(s), 1);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A crash (a kill, or a power cut) at any I/O call of the salvage of a damaged value, then a
 * salvage that runs to the end: the same keys as an uninterrupted salvage. */
START_TEST(a_crash_at_every_io_call_of_a_value_damage_salvage_then_salvage_keeps_every_later_record)
{
	char seg[300];
	uint64_t data;
	struct faultio *base = values_after_a_checkpoint(0, seg, sizeof seg, &data);
	ck_assert_int_eq(faultio_flip(base, seg, data + 4100, 0x20), 0);
	crash_every_io_call_of_salvage(base, keeps_all_values_but_victim);
	faultio_destroy(base);
}
END_TEST

/* The bytes of SEG1: *d (free it), *len; *mark where the close mark starts, *end where the
 * records before it end (its records_end). */
static void segment_with_mark(struct faultio *f, uint8_t **d, size_t *len, uint64_t *mark, uint64_t *end)
{
	static uint64_t offs[4096];
	record_offsets(f, SEG1, offs, 4096, end);
	ck_assert_int_eq(faultio_read_file(f, SEG1, (void **)d, len), 0);
	*mark = (*end + LOG_BLOCK - 1) / LOG_BLOCK * LOG_BLOCK;
	ck_assert_uint_eq((*d)[*mark + REC_OFF_TYPE], REC_TYPE_MARK);
	ck_assert_uint_eq(le_get64(*d + *mark + REC_HDR_SIZE), *end);
}

/* store_with_records(n) and where SEG1's close mark starts (*mark), where the records before it
 * end (*end) and the file's size (*len). */
static struct faultio *closed_with_mark(int n, uint64_t *mark, uint64_t *end, size_t *len)
{
	struct faultio *f = store_with_records(n);
	uint8_t *d;
	segment_with_mark(f, &d, len, mark, end);
	free(d);
	return f;
}

/* SEG1 of store_with_records(20) in memory, to rewrite its close mark: its bytes (free d), where
 * the mark starts and the records before it end, the segment's salt and the mark's header. */
struct marked_seg {
	uint8_t *d;
	size_t len;
	uint64_t mark, end;
	uint32_t salt;
	struct rec_header h;
};

static struct faultio *twenty_records_and_their_mark(struct marked_seg *m)
{
	struct faultio *f = store_with_records(20);
	segment_with_mark(f, &m->d, &m->len, &m->mark, &m->end);
	m->salt = le_get32(m->d + SEG_OFF_SALT);
	ck_assert(rec_header_decode(m->d + m->mark, m->salt, &m->h));
	return f;
}

/* After a clean close, a zeroed block holding the last records (the close mark, in a block of
 * its own, survives): the mark's base says they had been synced, so the zeros are damage, never
 * a torn tail — strict refuses naming the file and offset, check says damaged, salvage keeps
 * every record before them (attack4 finding 2, DURABILITY.md 4.1b). */
START_TEST(a_zeroed_last_data_block_of_a_cleanly_closed_log_is_damage)
{
	size_t len;
	uint64_t mark, end;
	struct faultio *f = closed_with_mark(150, &mark, &end, &len);
	uint64_t block = (end - 1) / LOG_BLOCK * LOG_BLOCK;
	ck_assert_uint_gt(block, 0); /* the records fill more than a block */
	zero_in_seg1(f, block, end - block);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_BAD_RECORD);
	ck_assert_str_eq(rep.damage_file, "wal-0000000000000001.log");
	ck_assert_uint_le(rep.damage_offset, block); /* the record the zeros reach into */
	ck_assert_uint_gt(rep.damage_offset + 64, block);
	memset(&rep, 0, sizeof rep);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	ck_assert_int_eq(rep.damaged, 1);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_POINT_IN_TIME, &rep, &s), 0);
	uint64_t kept = store_keys(s);
	ck_assert_uint_gt(kept, 100);
	ck_assert_uint_lt(kept, 150);
	expect_prefix(s, (int)kept);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Zeros from a record's start to the close mark are not the mark's padding: the mark says the
 * records end further on (and its LSN is not the next one), so they are damage at that record. */
START_TEST(zeros_from_a_record_to_the_close_mark_are_damage_not_padding)
{
	struct faultio *f = store_with_records(150);
	uint64_t offs[256], end;
	int n = record_offsets(f, SEG1, offs, 256, &end);
	ck_assert_int_eq(n, 150);
	uint64_t mark = (end + LOG_BLOCK - 1) / LOG_BLOCK * LOG_BLOCK;
	zero_in_seg1(f, offs[140], mark - offs[140]);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_uint_eq(rep.damage_offset, offs[140]);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_POINT_IN_TIME, &rep, &s), 0);
	expect_prefix(s, 140);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A close mark whose records_end is not where the records before it end is malformed: damage. */
START_TEST(a_close_mark_whose_records_end_disagrees_is_damage)
{
	struct marked_seg m;
	struct faultio *f = twenty_records_and_their_mark(&m);
	le_put64(m.d + m.mark + REC_HDR_SIZE, m.end - 1);
	m.h.body_crc = crc32c(0, m.d + m.mark + REC_HDR_SIZE, MARK_PAYLOAD);
	rec_header_encode(m.d + m.mark, m.salt, &m.h);
	ck_assert_int_eq(faultio_write_file(f, SEG1, m.d, m.len), 0);
	free(m.d);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), -EUCLEAN);
	ck_assert_int_eq(rep.damage, KV_DAMAGE_MALFORMED);
	ck_assert_uint_eq(rep.damage_offset, m.mark);
	faultio_destroy(f);
}
END_TEST

/* n small records k000.., flushed every 10, then a power cut (everything was synced). */
static struct faultio *flushed_rounds_then_a_crash(int n)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_records(s, n, 10);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	kv_close(s); /* the process is gone */
	return f;
}

/* The limit kept (DURABILITY.md Known limits): after a crash nothing vouches for the last
 * records, so a zeroed block holding them — synced in earlier flush rounds, not only the last —
 * cuts them as a torn tail. What it may cut is bounded: the records the block reaches, no more;
 * and the cut is reported with its file and offset. */
START_TEST(a_zeroed_last_block_of_a_crashed_log_cuts_at_most_its_records_and_says_where)
{
	struct faultio *f = flushed_rounds_then_a_crash(150);
	uint64_t offs[256], end;
	int n = record_offsets(f, SEG1, offs, 256, &end);
	ck_assert_int_eq(n, 150);
	uint64_t block = (offs[149] + 8) / LOG_BLOCK * LOG_BLOCK; /* the last record's first bytes */
	int before = 0; /* records that end before the block: record i ends where i + 1 starts */
	while (before + 1 < n && offs[before + 1] <= block)
		before++;
	ck_assert_int_lt(before, 140); /* the block holds records of two rounds (140..149 the last) */
	zero_in_seg1(f, block, LOG_BLOCK);
	struct kv_report rep;
	memset(&rep, 0, sizeof rep);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	ck_assert_uint_eq(rep.tail_offset, offs[before]);
	ck_assert_str_eq(rep.tail_file, "wal-0000000000000001.log");
	ck_assert_int_eq(rep.tail_torn, 1);
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	expect_prefix(s, before);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The close mark starts a block of its own: losing that block loses the mark and nothing else
 * (the store opens as after a crash, every record kept). */
START_TEST(a_zeroed_close_mark_block_loses_nothing)
{
	size_t len;
	uint64_t mark, end;
	struct faultio *f = closed_with_mark(150, &mark, &end, &len);
	ck_assert_uint_gt(mark, 0);
	zero_in_seg1(f, mark, len - mark);
	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_int_eq(rep.damaged, 0);
	expect_prefix(s, 150);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A segment of version 2 (written by kvfs before format 3 of the segment: its close mark
 * follows the last record directly and has no payload) is read as before; the log does not go
 * on in it but in a new version 3 segment (FORMAT.md 3.3). */
START_TEST(a_version_2_segment_is_read_and_the_log_goes_on_in_a_new_segment)
{
	struct marked_seg m;
	size_t len;
	struct faultio *f = twenty_records_and_their_mark(&m);
	/* the same log as version 2 wrote it: the mark right after the records, no payload */
	m.h.len = 0;
	m.h.body_crc = crc32c(0, NULL, 0);
	rec_header_encode(m.d + m.end, m.salt, &m.h);
	le_put32(m.d + SEG_OFF_VERSION, 2);
	le_put32(m.d + SEG_OFF_CRC, crc32c(0, m.d, SEG_OFF_CRC));
	uint64_t v2_size = m.end + REC_HDR_SIZE;
	ck_assert_int_eq(faultio_write_file(f, SEG1, m.d, v2_size), 0);
	free(m.d);

	struct kv_report rep;
	struct kv *s;
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_uint_eq(rep.records_replayed, 20);
	ck_assert_uint_eq(rep.tail_bytes_cut, 0);
	ck_assert_int_eq(rep.damaged, 0);
	put_str(s, "after", "2");
	ck_assert_int_eq(kv_close(s), 0);
	void *data;
	ck_assert_int_eq(faultio_read_file(f, SEG1, &data, &len), 0);
	free(data);
	ck_assert_uint_eq(len, v2_size); /* nothing appended to the version 2 segment */
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/wal-0000000000000016.log", &data, &len), 0);
	ck_assert_uint_eq(le_get32((uint8_t *)data + SEG_OFF_VERSION), 3);
	free(data);
	ck_assert_int_eq(open_rc(f, KV_RECOVERY_STRICT, &rep, &s), 0);
	ck_assert_uint_eq(store_keys(s), 21);
	expect_str(s, "k000", "value000");
	expect_str(s, "k019", "value019");
	expect_str(s, "after", "2");
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
	tcase_add_test(tc, names_beyond_the_largest_lsn_are_not_the_stores_files);
	tcase_add_test(tc, damaged_checkpoint_is_refused);
	tcase_add_test(tc, check_reports_clean_store);
	tcase_add_test(tc, crash_at_each_io_call_of_a_snapshot_recovers);
	tcase_add_test(tc, recovery_is_deterministic);
	tcase_add_test(tc, a_segment_larger_than_the_read_window_replays_whole);
	tcase_add_test(tc, damage_past_the_first_read_window_is_refused);
	tcase_add_test(tc, a_flush_after_recovering_a_killed_process_survives_a_power_cut);
	tcase_add_test(tc, what_recovery_serves_survives_a_power_cut_before_any_flush);
	tcase_add_test(tc, cutting_a_torn_record_of_any_size_costs_linear_work);
	tcase_add_test(tc, a_record_torn_at_64_mib_is_cut_with_at_most_twice_the_segment_checksummed);
	tcase_add_test(tc, a_torn_record_of_every_size_up_to_a_segment_costs_linear_work_in_open_check_and_salvage);
	tcase_add_test(tc, record_images_behind_a_damaged_header_cost_linear_work);
	tcase_add_test(tc, record_images_behind_a_damaged_header_and_first_record_cost_linear_work);
	tcase_add_test(tc, damage_in_records_the_checkpoint_holds_costs_nothing_once_their_values_are_gone);
	tcase_add_test(tc, damage_in_a_record_holding_a_live_value_refuses_and_salvage_names_the_key);
	tcase_add_test(tc, a_flipped_key_byte_in_a_covered_record_of_many_values_costs_no_key);
	tcase_add_test(tc, a_flipped_value_byte_in_a_covered_record_of_many_values_costs_that_key_alone);
	tcase_add_test(tc, a_zeroed_first_sector_over_a_covered_record_finds_the_salt_in_the_few_records_after_it);
	tcase_add_test(tc, covered_records_with_their_lengths_destroyed_are_skipped_to_the_first_record_after_the_checkpoint);
	tcase_add_test(tc, a_damaged_header_of_a_segment_the_checkpoint_covers_loses_nothing);
	tcase_add_test(tc, covered_damage_that_also_destroys_records_after_the_checkpoint_is_refused);
	tcase_add_test(tc, a_zeroed_first_sector_of_a_segment_wholly_before_the_checkpoint_refuses_open_and_check_alike);
	tcase_add_test(tc, a_damaged_header_of_a_segment_wholly_before_the_checkpoint_costs_nothing_in_open_and_check_alike);
	tcase_add_test(tc, recovery_removes_what_the_newest_checkpoint_makes_unneeded);
	tcase_add_test(tc, a_new_store_opens_and_takes_writes_on_a_disk_smaller_than_a_segment);
	tcase_add_test(tc, a_hole_in_the_last_unsynced_stretch_is_cut_not_refused);
	tcase_add_test(tc, a_hole_in_a_record_known_to_be_synced_is_damage);
	tcase_add_test(tc, a_reopen_after_a_failed_fdatasync_does_not_serve_what_never_reached_the_disk);
	tcase_add_test(tc, a_checkpoint_whose_header_miscounts_its_extents_is_refused);
	tcase_add_test(tc, what_salvage_leaves_of_a_segment_with_a_damaged_header_opens_strictly);
	tcase_add_test(tc, a_damaged_checkpoint_entry_costs_its_key_and_salvage_names_its_neighbours);
	tcase_add_test(tc, damaged_entries_in_two_places_cost_two_keys);
	tcase_add_test(tc, a_damaged_last_entry_is_lost_to_the_end_of_the_checkpoint);
	tcase_add_test(tc, a_damaged_checkpoint_footer_loses_no_entry);
	tcase_add_test(tc, a_flipped_byte_anywhere_in_a_checkpoint_header_loses_no_entry_nor_the_log_after_it);
	tcase_add_test(tc, a_damaged_checkpoint_salt_is_found_again_from_its_entries);
	tcase_add_test(tc, a_damaged_checkpoint_header_and_entry_keep_every_provable_entry_and_say_the_loss_is_unknown);
	tcase_add_test(tc, a_checkpoint_cut_inside_its_header_still_keeps_the_log_after_it);
	tcase_add_test(tc, the_way_out_of_a_refusal_says_what_salvage_keeps_for_that_damage);
	tcase_add_test(tc, a_checkpoint_cut_inside_its_header_loses_nothing_while_the_log_starts_at_lsn_1);
	tcase_add_test(tc, a_key_whose_entry_is_lost_but_written_again_after_the_checkpoint_is_back);
	tcase_add_test(tc, an_entry_image_inside_a_key_is_not_taken_for_an_entry);
	tcase_add_test(tc, a_version_1_checkpoint_is_still_read);
	tcase_add_test(tc, a_crash_at_every_io_call_of_a_checkpoint_salvage_then_salvage_keeps_every_provable_key);
	tcase_add_test(tc, a_crash_at_every_io_call_of_a_checkpoint_header_salvage_then_salvage_loses_nothing);
	TCase *vd = tcase_create("value_damage");
	tcase_set_timeout(vd, 600);
	tcase_add_test(vd, check_names_the_key_of_a_flipped_value_byte_written_since_the_checkpoint);
	tcase_add_test(vd, salvage_keeps_the_flushed_writes_after_a_flipped_value_byte);
	tcase_add_test(vd, a_salvage_whose_copy_aside_fails_removes_it_and_says_what_it_needs);
	tcase_add_test(vd, a_flipped_value_byte_after_the_checkpoint_refuses_naming_the_key_and_changes_nothing);
	tcase_add_test(vd, flipped_bytes_in_several_chunks_of_a_value_cost_only_its_key);
	tcase_add_test(vd, flipped_value_bytes_in_two_records_name_both_keys);
	tcase_add_test(vd, a_flipped_byte_in_a_key_name_after_the_checkpoint_is_never_applied_as_another_key);
	tcase_add_test(vd, a_flipped_chunk_checksum_is_not_taken_for_value_damage);
	tcase_add_test(vd, a_damaged_value_written_again_later_costs_nothing);
	tcase_add_test(vd, a_bad_chunk_in_a_record_nothing_vouches_for_is_a_torn_tail);
	tcase_add_test(vd, a_crash_at_every_io_call_of_a_value_damage_salvage_then_salvage_keeps_every_later_record);
	TCase *zb = tcase_create("zeroed_blocks");
	tcase_set_timeout(zb, 300);
	suite_add_tcase(su, zb);
	tcase_add_test(zb, a_zeroed_last_data_block_of_a_cleanly_closed_log_is_damage);
	tcase_add_test(zb, zeros_from_a_record_to_the_close_mark_are_damage_not_padding);
	tcase_add_test(zb, a_close_mark_whose_records_end_disagrees_is_damage);
	tcase_add_test(zb, a_zeroed_last_block_of_a_crashed_log_cuts_at_most_its_records_and_says_where);
	tcase_add_test(zb, a_zeroed_close_mark_block_loses_nothing);
	tcase_add_test(zb, a_version_2_segment_is_read_and_the_log_goes_on_in_a_new_segment);
	suite_add_tcase(su, vd);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
