/* Values on disk: reads come from the log and are checked, holes hold nothing, the cleaner
 * moves live bytes out of mostly dead segments and a checkpoint then frees them, a relocation
 * that lost a race with a write changes nothing, and a full disk makes room by itself. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "simstore.h"
#include "testutil.h"

static struct kv *open_with(struct faultio *f, uint64_t segment_bytes, int cleaner)
{
	struct kv_options o = sim_options(f);
	o.segment_bytes = segment_bytes;
	o.cleaner = cleaner;
	return sim_open_with(&o, NULL);
}

static void expect_bytes(struct kv *s, const char *key, const uint8_t *want, uint64_t n)
{
	void *got;
	uint64_t len;
	int rc = kv_get(s, key, strlen(key), &got, &len);
	ck_assert_msg(rc == 0, "get %s: %s", key, strerror(-rc));
	ck_assert_uint_eq(len, n);
	ck_assert_msg(!memcmp(got, want, n), "%s differs", key);
	free(got);
}

START_TEST(a_damaged_value_byte_fails_the_read_with_eio_never_wrong_bytes)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_with(f, 1u << 20, 0);
	static uint8_t v[20000];
	sim_fill(v, sizeof v, 1);
	ck_assert_int_eq(kv_put(s, "v", 1, v, sizeof v), 0);
	put_str(s, "w", "intact");
	ck_assert_int_eq(kv_close(s), 0);
	/* find the value's bytes in the segment and flip one in its third chunk */
	void *seg;
	size_t len;
	uint8_t *at;
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/wal-0000000000000001.log", &seg, &len), 0);
	at = memmem(seg, len, v + 2 * DATA_CHUNK, 64);
	ck_assert_ptr_nonnull(at);
	uint64_t off = (uint64_t)(at - (uint8_t *)seg);
	free(seg);
	ck_assert_int_eq(faultio_flip(f, SIM_DIR "/wal-0000000000000001.log", off + 10, 0x04), 0);
	/* the record's checksum no longer matches: recovery sees a bad last-but-one record */
	struct kv_report rep;
	struct kv_options o = sim_options(f);
	o.segment_bytes = 1u << 20;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), -EUCLEAN);
	/* salvage keeps what precedes it; a read of bytes damaged after recovery: made by hand */
	faultio_destroy(f);

	/* damage to bytes a checkpoint references, in a segment recovery no longer reads: found by
	 * the read that needs them (EIO, other chunks still read) and by --check, which reads every
	 * value byte */
	f = sim_disk();
	s = open_with(f, 64u << 10, 0);
	ck_assert_int_eq(kv_put(s, "v", 1, v, sizeof v), 0);
	put_str(s, "w", "intact");
	ck_assert_int_eq(kv_snapshot(s), 0);
	static uint8_t filler[30000];
	for (int i = 0; i < 6; i++) /* the log moves on to later segments */
		ck_assert_int_eq(kv_put(s, "filler", 6, filler, sizeof filler), 0);
	ck_assert_int_eq(kv_snapshot(s), 0);
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/wal-0000000000000001.log", &seg, &len), 0);
	at = memmem(seg, len, v + 2 * DATA_CHUNK, 64);
	ck_assert_ptr_nonnull(at);
	off = (uint64_t)(at - (uint8_t *)seg);
	free(seg);
	ck_assert_int_eq(faultio_flip(f, SIM_DIR "/wal-0000000000000001.log", off + 10, 0x04), 0);
	uint8_t buf[100];
	size_t got;
	ck_assert_int_eq(kv_read(s, "v", 1, 2 * DATA_CHUNK, buf, sizeof buf, &got), -EIO);
	ck_assert_int_eq(kv_read(s, "v", 1, 0, buf, sizeof buf, &got), 0);
	ck_assert(!memcmp(buf, v, sizeof buf));
	expect_str(s, "w", "intact");
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_uint_eq(st.read_errors, 1);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep), -EUCLEAN);
	ck_assert_uint_eq(rep.data_damaged_keys, 1);
	ck_assert_str_eq(rep.data_damage_key, "v");
	faultio_destroy(f);
}
END_TEST

START_TEST(holes_read_as_zeros_and_hold_nothing)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_with(f, 1u << 20, 0);
	uint64_t alloc, size;
	ck_assert_int_eq(kv_put(s, "h", 1, "", 0), 0);
	ck_assert_int_eq(kv_write(s, "h", 1, 1ull << 35, "end", 3), 0); /* 32 GiB in */
	ck_assert_int_eq(kv_stat(s, "h", 1, &size, NULL, NULL), 0);
	ck_assert_uint_eq(size, (1ull << 35) + 3);
	ck_assert_int_eq(kv_allocated(s, "h", 1, &alloc), 0);
	ck_assert_uint_eq(alloc, 3);
	char buf[16];
	size_t got;
	ck_assert_int_eq(kv_read(s, "h", 1, (1ull << 35) - 8, buf, sizeof buf, &got), 0);
	ck_assert_uint_eq(got, 11);
	ck_assert(!memcmp(buf, "\0\0\0\0\0\0\0\0end", 11));
	/* a punched hole: zeros, and its bytes no longer held */
	static uint8_t v[3 * DATA_CHUNK];
	sim_fill(v, sizeof v, 2);
	ck_assert_int_eq(kv_put(s, "p", 1, v, sizeof v), 0);
	struct kv_batch *b;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_punch(b, "p", 1, 100, DATA_CHUNK), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), 0);
	kv_batch_free(b);
	memset(v + 100, 0, DATA_CHUNK);
	ck_assert_int_eq(kv_allocated(s, "p", 1, &alloc), 0);
	ck_assert_uint_eq(alloc, sizeof v - DATA_CHUNK);
	expect_bytes(s, "p", v, sizeof v);
	ck_assert_int_eq(kv_close(s), 0);
	s = open_with(f, 1u << 20, 0); /* the same after replay */
	expect_bytes(s, "p", v, sizeof v);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(the_cleaner_moves_live_bytes_out_of_mostly_dead_segments_and_frees_them)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_with(f, 64u << 10, 0);
	static uint8_t v[2000];
	char k[16];
	/* 200 values, then all but every tenth overwritten with small ones: the old segments are
	 * a tenth live */
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		sim_fill(v, sizeof v, (unsigned)i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, sizeof v), 0);
	}
	for (int i = 0; i < 200; i++) {
		if (i % 10 == 0)
			continue;
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "small");
	}
	struct kv_stats st;
	kv_stats(s, &st);
	uint64_t before = st.disk_bytes;
	ck_assert_uint_gt(before, 2 * st.live_bytes + (64u << 10)); /* the policy's trigger */
	uint64_t moved = 0;
	ck_assert_int_eq(kv_clean(s, 0, &moved), 0);
	kv_stats(s, &st);
	ck_assert_uint_gt(moved, 0);
	ck_assert_uint_le(moved, 20 * sizeof v + 4096); /* only the live tenth */
	ck_assert_uint_le(st.disk_bytes, 2 * st.live_bytes + (64u << 10) + (64u << 10));
	ck_assert_uint_lt(st.disk_bytes, before);
	ck_assert_uint_eq(st.cleaner_moved_bytes, moved);
	ck_assert_uint_ge(st.segments_deleted, 1);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		if (i % 10) {
			expect_str(s, k, "small");
		} else {
			sim_expect_fill(s, k, sizeof v, (unsigned)i);
		}
	}
	ck_assert_int_eq(kv_close(s), 0);
	/* and after a power cut: the relocations were checkpointed, the freed segments gone */
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	s = open_with(f, 64u << 10, 0);
	for (int i = 0; i < 200; i += 10) {
		snprintf(k, sizeof k, "k%03d", i);
		sim_expect_fill(s, k, sizeof v, (unsigned)i);
	}
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The cleaner read bytes at (seg, pos) for key k; meanwhile a user rewrote part of k. The
 * RELOCATE it logs moves only what is still where it read it: the user's bytes win, live and
 * after replay. */
START_TEST(a_relocation_that_lost_a_race_with_a_write_leaves_the_write_alone)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_with(f, 1u << 20, 0);
	static uint8_t v[3 * DATA_CHUNK], user[100];
	sim_fill(v, sizeof v, 3);
	memset(user, 'U', sizeof user);
	ck_assert_int_eq(kv_put(s, "k", 1, v, sizeof v), 0);
	/* where the value's bytes are: the first record's payload, after its fields */
	void *seg;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/wal-0000000000000001.log", &seg, &len), 0);
	uint8_t *at = memmem(seg, len, v, 256);
	ck_assert_ptr_nonnull(at);
	uint64_t pos = (uint64_t)(at - (uint8_t *)seg);
	free(seg);
	ck_assert_int_eq(kv_write(s, "k", 1, 5000, user, sizeof user), 0); /* the race */
	struct kv_batch *b;
	struct reloc_piece piece = { .off = 0, .len = sizeof v, .src_seg = 1, .src_pos = pos };
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(batch_relocate(b, "k", 1, &piece, 1, v), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), 0);
	kv_batch_free(b);
	memcpy(v + 5000, user, sizeof user);
	expect_bytes(s, "k", v, sizeof v);
	ck_assert_int_eq(kv_close(s), 0);
	s = open_with(f, 1u << 20, 0);
	expect_bytes(s, "k", v, sizeof v);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The empty key is a key like any other to the cleaner (found by fuzz_checkpoint's corpus
 * generator): its extents once shared the next key's arena offset (an empty key takes no arena
 * bytes), so the two keys' pieces made one RELOCATE operation under the next key, whose pieces
 * overlapped (both at offset 0), and the whole pass failed with EBADMSG. */
START_TEST(the_cleaner_moves_the_value_of_the_empty_key)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_with(f, 16u << 10, 0);
	static uint8_t v[20000];
	uint64_t moved = 0;

	sim_fill(v, sizeof v, 7);
	put_str(s, "", "the empty key's value");
	ck_assert_int_eq(kv_put(s, "big", 3, v, sizeof v), 0);
	put_str(s, "after", "x"); /* big's segment is full: this one seals it (the cleaner's) */
	ck_assert_int_eq(kv_close(s), 0);
	s = open_with(f, 16u << 10, 0);
	int rc = kv_clean(s, 1, &moved);
	ck_assert_msg(rc == 0, "kv_clean: %s", strerror(-rc));
	ck_assert_uint_ge(moved, sizeof v + strlen("the empty key's value"));
	expect_str(s, "", "the empty key's value");
	expect_bytes(s, "big", v, sizeof v);
	ck_assert_int_eq(kv_close(s), 0);
	s = open_with(f, 16u << 10, 0);
	expect_str(s, "", "the empty key's value");
	expect_bytes(s, "big", v, sizeof v);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Filling a small disk, deleting, and writing again works without a manual checkpoint: the
 * write that finds no room for a segment makes room (a checkpoint deletes the dead segments). */
START_TEST(deleting_on_a_full_disk_makes_room_without_a_manual_checkpoint)
{
	struct faultio *f = sim_disk();
	faultio_set_capacity(f, 8u << 20); /* 4 MiB of it goes to the space reserve */
	struct kv *s = open_with(f, 256u << 10, 0);
	static uint8_t v[64 << 10];
	char k[16];
	int n = 0, rc = 0;
	for (; n < 1000; n++) {
		snprintf(k, sizeof k, "k%04d", n);
		sim_fill(v, sizeof v, (unsigned)n);
		rc = kv_put(s, k, strlen(k), v, sizeof v);
		if (rc)
			break;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_gt(n, 10);
	ck_assert_int_eq(kv_flush(s), 0); /* nothing failed that was written */
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "k%04d", i);
		if (i % 4)
			ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
	}
	/* three quarters deleted: new writes go through again */
	for (int i = 0; i < n / 2; i++) {
		snprintf(k, sizeof k, "n%04d", i);
		sim_fill(v, sizeof v, (unsigned)(1000 + i));
		rc = kv_put(s, k, strlen(k), v, sizeof v);
		ck_assert_msg(rc == 0, "write %d after deleting: %s", i, strerror(-rc));
	}
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	s = open_with(f, 256u << 10, 0);
	for (int i = 0; i < n; i += 4) {
		snprintf(k, sizeof k, "k%04d", i);
		sim_expect_fill(s, k, sizeof v, (unsigned)i);
	}
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Readers, writers, checkpoints and the cleaner at once: every read returns the bytes of some
 * write to that key, whole (ThreadSanitizer runs this too). */
struct race {
	struct kv *s;
	int stop;
	int writer_done;
};

static void *race_writer(void *arg)
{
	struct race *r = arg;
	static uint8_t v[8192];
	char k[16];
	for (int round = 0; round < 40; round++)
		for (int i = 0; i < 20; i++) {
			snprintf(k, sizeof k, "k%02d", i);
			memset(v, 'a' + round % 26, sizeof v);
			ck_assert_int_eq(kv_put(r->s, k, strlen(k), v, sizeof v), 0);
		}
	__atomic_store_n(&r->writer_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	char k[16];
	while (!__atomic_load_n(&r->writer_done, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 20; i++) {
			void *got;
			uint64_t len;
			snprintf(k, sizeof k, "k%02d", i);
			int rc = kv_get(r->s, k, strlen(k), &got, &len);
			if (rc == -ENOENT)
				continue;
			ck_assert_msg(rc == 0, "get %s: %s", k, strerror(-rc));
			ck_assert_uint_eq(len, 8192);
			for (size_t j = 1; j < len; j++)
				ck_assert_msg(((uint8_t *)got)[j] == ((uint8_t *)got)[0], "%s torn at %zu", k, j);
			free(got);
		}
	}
	return NULL;
}

static void *race_maintainer(void *arg)
{
	struct race *r = arg;
	while (!__atomic_load_n(&r->writer_done, __ATOMIC_ACQUIRE)) {
		uint64_t moved;
		ck_assert_int_eq(kv_clean(r->s, 1, &moved), 0);
		ck_assert_int_eq(kv_snapshot(r->s), 0);
	}
	return NULL;
}

START_TEST(reads_writes_checkpoints_and_the_cleaner_run_together)
{
	struct faultio *f = sim_disk();
	struct race r = { .s = open_with(f, 64u << 10, 1) };
	pthread_t w, rd, m;
	pthread_create(&w, NULL, race_writer, &r);
	pthread_create(&rd, NULL, race_reader, &r);
	pthread_create(&m, NULL, race_maintainer, &r);
	pthread_join(w, NULL);
	pthread_join(rd, NULL);
	pthread_join(m, NULL);
	static uint8_t v[8192];
	memset(v, 'a' + 39 % 26, sizeof v);
	char k[16];
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof k, "k%02d", i);
		expect_bytes(r.s, k, v, sizeof v);
	}
	ck_assert_int_eq(kv_close(r.s), 0);
	struct kv *s = open_with(f, 64u << 10, 0);
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof k, "k%02d", i);
		expect_bytes(s, k, v, sizeof v);
	}
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- progress reports (kv.h's kv_progress) ---- */

/* What the hook saw, per kind of work. */
struct seen {
	unsigned calls[KV_WORK_KINDS], starts[KV_WORK_KINDS], ends[KV_WORK_KINDS];
	uint64_t last_done[KV_WORK_KINDS], total[KV_WORK_KINDS];
	int bad[KV_WORK_KINDS]; /* a call out of order: before a start, after an end, done going back */
};

static void record_progress(void *arg, enum kv_work what, uint64_t done, uint64_t total, int end)
{
	struct seen *w = arg;
	ck_assert_int_lt((int)what, KV_WORK_KINDS);
	w->calls[what]++;
	if (done == 0 && !end && w->starts[what] == w->ends[what]) { /* a job starts */
		w->starts[what]++;
		w->last_done[what] = 0;
		w->total[what] = total;
		return;
	}
	if (w->starts[what] != w->ends[what] + 1 || done < w->last_done[what] || total != w->total[what] ||
	    done > total)
		w->bad[what] = 1;
	w->last_done[what] = done;
	if (end) {
		w->ends[what]++;
		if (done != total) /* every job here completes */
			w->bad[what] = 1;
	}
}

static void expect_reported(const struct seen *w, enum kv_work what, const char *name)
{
	ck_assert_msg(w->starts[what] >= 1, "%s: no progress reported", name);
	ck_assert_msg(w->ends[what] == w->starts[what], "%s: %u jobs started, %u ended", name,
		      w->starts[what], w->ends[what]);
	ck_assert_msg(!w->bad[what], "%s: a report out of order (done went back, past total, or "
		      "the last one short of total)", name);
	ck_assert_msg(w->total[what] > 0, "%s: the job had nothing to count", name);
	/* about a hundred reports a job, never one per byte or key */
	ck_assert_msg(w->calls[what] <= 110u * w->starts[what], "%s: %u reports for %u jobs", name,
		      w->calls[what], w->starts[what]);
}

/* Each kind of long work calls the hook: at its start (done 0), with done never going back,
 * and at its end with done == total; about a hundred times a job at most. */
START_TEST(long_work_reports_progress_up_to_its_total)
{
	struct faultio *f = sim_disk();
	struct seen w;
	memset(&w, 0, sizeof w);
	struct kv_options o = sim_options(f);
	o.segment_bytes = 64 * 1024;
	o.progress = (struct kv_progress){ record_progress, &w };
	struct kv *s = NULL;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	uint8_t v[3000];
	char k[16];
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 200; i++) {
			snprintf(k, sizeof k, "k%04d", i);
			sim_fill(v, sizeof v, (unsigned)(i + round));
			ck_assert_int_eq(kv_put(s, k, strlen(k), v, sizeof v), 0);
		}
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0); /* replays the whole log */
	expect_reported(&w, KV_WORK_RECOVERY, "recovery");
	ck_assert_int_eq(kv_snapshot(s), 0);
	expect_reported(&w, KV_WORK_CHECKPOINT, "checkpoint");
	for (int i = 0; i < 100; i++) { /* half dead: the cleaner has bytes to move */
		snprintf(k, sizeof k, "k%04d", i);
		ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
	}
	uint64_t moved = 0;
	ck_assert_int_eq(kv_clean(s, 1, &moved), 0);
	ck_assert_uint_gt(moved, 0);
	expect_reported(&w, KV_WORK_CLEANER, "cleaner");
	struct kv_backup_info info;
	ck_assert_int_eq(kv_backup(s, "/sim/copy", &info), 0);
	expect_reported(&w, KV_WORK_BACKUP, "backup");
	ck_assert_int_eq(kv_close(s), 0);
	struct kv_report rep;
	ck_assert_int_eq(kv_check(SIM_DIR, faultio_kvio(f), &o.progress, &rep), 0);
	expect_reported(&w, KV_WORK_CHECK, "check");
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), &o.progress, &rep), 0);
	expect_reported(&w, KV_WORK_SALVAGE, "salvage");
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	tu_seed();
	Suite *su = suite_create("values");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, a_damaged_value_byte_fails_the_read_with_eio_never_wrong_bytes);
	tcase_add_test(tc, long_work_reports_progress_up_to_its_total);
	tcase_add_test(tc, holes_read_as_zeros_and_hold_nothing);
	tcase_add_test(tc, the_cleaner_moves_live_bytes_out_of_mostly_dead_segments_and_frees_them);
	tcase_add_test(tc, a_relocation_that_lost_a_race_with_a_write_leaves_the_write_alone);
	tcase_add_test(tc, the_cleaner_moves_the_value_of_the_empty_key);
	tcase_add_test(tc, deleting_on_a_full_disk_makes_room_without_a_manual_checkpoint);
	tcase_add_test(tc, reads_writes_checkpoints_and_the_cleaner_run_together);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
