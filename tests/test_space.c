/* space: a full disk on the simulated disk (tests/faultio.h: faultio_set_capacity) — the space
 * reserve (docs/DESIGN.md §6) and the full-disk cleaner keep a full store able to delete and,
 * once it has deleted, to write again without a manual checkpoint (docs/DURABILITY.md 5.3,
 * issue 11). Findings 2 and 3 of the third attack (tests/attack3/FINDINGS.md) are here. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simstore.h"
#include "testutil.h"

/* Values of vlen bytes under "big%04d" until the disk is full; how many went in. */
static int fill_until_enospc(struct kv *s, size_t vlen)
{
	uint8_t *v = malloc(vlen);
	char k[16];
	int n = 0, rc;
	ck_assert_ptr_nonnull(v);
	for (;; n++) {
		snprintf(k, sizeof k, "big%04d", n);
		sim_fill(v, vlen, (unsigned)n);
		rc = kv_put(s, k, strlen(k), v, vlen);
		if (rc)
			break;
	}
	free(v);
	ck_assert_msg(rc == -ENOSPC, "filling the disk ended with %s, not ENOSPC", strerror(-rc));
	return n;
}

/* A disk of capacity bytes, the store on it with segments of seg bytes filled with values of
 * vlen bytes until ENOSPC (fill_until_enospc; *n: how many went in, n may be NULL). */
static struct kv *full_disk(struct faultio *f, uint64_t capacity, uint64_t seg, size_t vlen, int *n)
{
	faultio_set_capacity(f, capacity);
	struct kv *s = sim_open_seg(f, seg, NULL);
	int went_in = fill_until_enospc(s, vlen);
	if (n)
		*n = went_in;
	return s;
}

static void put_value(struct kv *s, const char *k, size_t vlen, unsigned seed)
{
	uint8_t *v = malloc(vlen);
	ck_assert_ptr_nonnull(v);
	sim_fill(v, vlen, seed);
	int rc = kv_put(s, k, strlen(k), v, vlen);
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_msg(rc == 0, "a %zu-byte put of %s: %s (disk_bytes %llu, live_bytes %llu, segments %llu)", vlen,
		      k, strerror(-rc), (unsigned long long)st.disk_bytes, (unsigned long long)st.live_bytes,
		      (unsigned long long)st.segments);
	free(v);
}

/* ---- finding 2: a checkpoint larger than RESERVE_MIN (4 MiB) ----
 * Real disk: tests/attack3/reserve_wedge.sh. The store holds enough small keys that its
 * checkpoint is about 8 MB; the reserve must be sized from it (at open from the one loaded, and
 * as it grows), and a checkpoint that frees nothing must not spend it. */

#define SMALL_KEYS 120000

/* SMALL_KEYS keys "small/%08d" holding "v", in batches of 1000, then a checkpoint of several
 * MiB. */
static void put_small_keys_and_snapshot(struct kv *s)
{
	struct kv_batch *b = NULL;
	char k[32];
	for (int i = 0; i < SMALL_KEYS; i++) {
		if (!b)
			ck_assert_int_eq(kv_batch_new(&b), 0);
		snprintf(k, sizeof k, "small/%08d", i);
		ck_assert_int_eq(kv_batch_put(b, k, strlen(k), NULL, 0, "v", 1), 0);
		if (i % 1000 == 999 || i == SMALL_KEYS - 1) {
			ck_assert_int_eq(kv_apply(s, b, NULL), 0);
			kv_batch_free(b);
			b = NULL;
		}
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
}

/* A store whose checkpoint is several MiB (SMALL_KEYS keys), then closed. */
static void store_with_a_big_checkpoint(struct faultio *f)
{
	struct kv *s = sim_open_seg(f, 8u << 20, NULL);
	put_small_keys_and_snapshot(s);
	ck_assert_int_eq(kv_close(s), 0);
}

/* A 64 MiB disk holding a store_with_a_big_checkpoint, opened and filled with 1 MiB values
 * until ENOSPC (*n of them went in). */
static struct kv *full_over_a_big_checkpoint(struct faultio *f, int *n)
{
	faultio_set_capacity(f, 64u << 20);
	store_with_a_big_checkpoint(f);
	struct kv *s = sim_open_seg(f, 8u << 20, NULL);
	*n = fill_until_enospc(s, 1u << 20);
	return s;
}

/* Deletes every big value (each must go through), then one more big put must. */
static void delete_all_and_write_again(struct kv *s, int n, size_t vlen)
{
	char k[16];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "big%04d", i);
		int rc = kv_del(s, k, strlen(k));
		ck_assert_msg(rc == 0, "DEL %s (%d of %d) on the full disk: %s", k, i + 1, n, strerror(-rc));
	}
	put_value(s, "after", vlen, 9999);
}

START_TEST(a_checkpoint_larger_than_the_minimum_reserve_leaves_deletes_room_in_the_same_process)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_over_a_big_checkpoint(f, &n);
	ck_assert_int_gt(n, 4);
	delete_all_and_write_again(s, n, 1u << 20);
	expect_str(s, "small/00000007", "v");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_checkpoint_larger_than_the_minimum_reserve_leaves_deletes_room_after_a_reopen)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_over_a_big_checkpoint(f, &n);
	ck_assert_int_gt(n, 4);
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open_seg(f, 8u << 20, NULL);
	delete_all_and_write_again(s, n, 1u << 20);
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open_seg(f, 8u << 20, NULL);
	sim_expect_fill(s, "after", 1u << 20, 9999);
	expect_str(s, "small/00119999", "v");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The checkpoint grows past the reserve taken at open (a new store: RESERVE_MIN) while the
 * store runs: the reserve grows with it. */
START_TEST(the_reserve_grows_with_the_checkpoint)
{
	struct faultio *f = sim_disk();
	faultio_set_capacity(f, 64u << 20);
	struct kv *s = sim_open_seg(f, 8u << 20, NULL);
	put_small_keys_and_snapshot(s);
	int n = fill_until_enospc(s, 1u << 20);
	ck_assert_int_gt(n, 4);
	delete_all_and_write_again(s, n, 1u << 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Writes that free nothing on a full disk fail with ENOSPC again and again (each one tries a
 * checkpoint): none of them may spend the reserve, so deletes still go through after. */
START_TEST(failed_writes_on_a_full_disk_leave_the_reserve_to_the_deletes)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_over_a_big_checkpoint(f, &n);
	uint8_t v[64 << 10];
	sim_fill(v, sizeof v, 1);
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof k, "more%02d", i);
		int rc = kv_put(s, k, strlen(k), v, sizeof v);
		if (rc == 0)
			continue; /* room was left in the current segment */
		ck_assert_msg(rc == -ENOSPC, "put %s on the full disk: %s", k, strerror(-rc));
	}
	delete_all_and_write_again(s, n, 1u << 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- finding 3: deleting half the data frees room ----
 * Real disk: tests/attack3/fulldisk.sh. 256 KiB values on a 24 MiB disk, segment_bytes (64 MiB,
 * the default) above the disk's size; every other value deleted: each segment is exactly half
 * live, and a value of the same size must go in again with no manual checkpoint. */
START_TEST(deleting_half_the_data_on_a_full_disk_makes_room_without_a_checkpoint)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_disk(f, 24u << 20, 64u << 20, 256u << 10, &n);
	ck_assert_int_gt(n, 20);
	ck_assert_int_eq(kv_flush(s), 0);
	char k[16];
	for (int i = 0; i < n; i += 2) {
		snprintf(k, sizeof k, "big%04d", i);
		ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
	}
	/* a quarter of what was deleted goes in again, one value at a time */
	for (int i = 0; i < n / 8; i++) {
		snprintf(k, sizeof k, "new%04d", i);
		put_value(s, k, 256u << 10, 5000u + (unsigned)i);
	}
	for (int i = 1; i < n; i += 2) {
		snprintf(k, sizeof k, "big%04d", i);
		sim_expect_fill(s, k, 256u << 10, (unsigned)i);
	}
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open_seg(f, 64u << 20, NULL);
	for (int i = 0; i < n / 8; i++) {
		snprintf(k, sizeof k, "new%04d", i);
		sim_expect_fill(s, k, 256u << 10, 5000u + (unsigned)i);
	}
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* On a disk smaller than segment_bytes a segment takes at most half the free space, so no one
 * segment holds most of the disk. */
START_TEST(a_segment_takes_at_most_half_the_free_space_of_a_small_disk)
{
	struct faultio *f = sim_disk();
	struct kv *s = full_disk(f, 24u << 20, 64u << 20, 256u << 10, NULL);
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_uint_gt(st.segments, 3);
	ck_assert_int_eq(kv_close(s), 0);
	char **names = NULL;
	size_t nn = 0;
	ck_assert_int_eq(faultio_kvio(f)->list_dir(faultio_kvio(f), SIM_DIR, &names, &nn), 0);
	for (size_t i = 0; i < nn; i++) {
		char path[256];
		void *data;
		size_t len;
		if (strncmp(names[i], "wal-", 4))
			continue;
		snprintf(path, sizeof path, SIM_DIR "/%s", names[i]);
		ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
		ck_assert_msg(len <= (12u << 20), "%s holds %zu bytes of a 24 MiB disk", names[i], len);
		free(data);
	}
	kvio_free_names(names, nn);
	faultio_destroy(f);
}
END_TEST

/* A 4 MiB disk, 256 KiB segments, 64 KiB values (the mount test's full tmpfs): the write that
 * finds the disk full runs the full-disk cleaner, which must not leave the deletes after it
 * without room. */
START_TEST(the_full_disk_cleaner_leaves_the_deletes_room_on_a_tiny_disk)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_disk(f, 4u << 20, 256u << 10, 64u << 10, &n);
	ck_assert_int_gt(n, 10);
	/* again: every failed write tries the cleaner once more */
	for (int i = 0; i < 5; i++) {
		uint8_t v[64 << 10];
		sim_fill(v, sizeof v, 77);
		ck_assert_int_eq(kv_put(s, "again", 5, v, sizeof v), -ENOSPC);
	}
	char k[16];
	for (int i = 0; i < n / 2; i++) {
		snprintf(k, sizeof k, "big%04d", i);
		int rc = kv_del(s, k, strlen(k));
		ck_assert_msg(rc == 0, "DEL %s (%d of %d) on the full disk: %s", k, i + 1, n / 2, strerror(-rc));
	}
	put_value(s, "after", 64u << 10, 4242);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Through the mount an unlink of a file still open is a rename to an orphan name (deleted at
 * its last close): on a full disk such a write, carrying no value bytes, goes through on the
 * reserve like a delete. */
START_TEST(a_rename_on_a_full_disk_goes_through_like_a_delete)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_disk(f, 4u << 20, 256u << 10, 64u << 10, &n);
	struct kv_batch *b = NULL;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_rename(b, "big0000", 7, "orphan/1", 8), 0);
	ck_assert_int_eq(kv_batch_setmeta(b, "orphan/1", 8, "m", 1), 0);
	int rc = kv_apply(s, b, NULL);
	kv_batch_free(b);
	ck_assert_msg(rc == 0, "rename on the full disk: %s", strerror(-rc));
	ck_assert_int_eq(kv_del(s, "orphan/1", 8), 0);
	sim_expect_fill(s, "big0001", 64u << 10, 1);
	ck_assert_int_gt(n, 2);
	put_value(s, "after", 64u << 10, 4242);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Writes carrying no value bytes may take only part of the lent reserve: however many there
 * are, the deletes and the checkpoint that frees space keep their room. */
START_TEST(metadata_writes_on_a_full_disk_cannot_take_the_room_deletes_need)
{
	struct faultio *f = sim_disk();
	int n;
	struct kv *s = full_disk(f, 4u << 20, 256u << 10, 64u << 10, &n);
	char meta[1024];
	memset(meta, 'm', sizeof meta);
	int rc = 0, done = 0;
	/* new empty keys with 1 KiB of metadata each: live, so no checkpoint frees them */
	for (int i = 0; i < 20000 && !rc; i++) {
		char k[32];
		struct kv_batch *b = NULL;
		snprintf(k, sizeof k, "empty/%05d", i);
		ck_assert_int_eq(kv_batch_new(&b), 0);
		ck_assert_int_eq(kv_batch_put(b, k, strlen(k), meta, sizeof meta, NULL, 0), 0);
		rc = kv_apply(s, b, NULL);
		kv_batch_free(b);
		done += !rc;
	}
	ck_assert_msg(rc == -ENOSPC, "20,000 empty keys with 1 KiB of metadata on a 4 MiB disk: %s",
		      strerror(-rc));
	ck_assert_int_gt(done, 0);
	delete_all_and_write_again(s, n, 64u << 10);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- attack5 finding 1: salvage on a full disk ----
 * Real disk: tests/attack5/salvage_fulldisk.sh. A disk filled until PUTs fail, with no
 * checkpoint at close, so the damage lies in the log replayed: salvage copies the damaged
 * segment aside (its other values are still needed), and the only room on the disk is the
 * store's own reserve. */

#define SALVAGE_SEGMENT (512u << 10)
#define SALVAGE_VALUE 4096u

/* The newest segment but one (not the one written last: its damage must be damage, not a torn
 * tail) whose records come after the newest checkpoint: its name into seg. */
static void segment_after_the_checkpoint(struct faultio *f, char *seg, size_t len)
{
	char **names = NULL;
	size_t n = 0;
	uint64_t ckpt = 0, first, newest = 0, pick = 0;

	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		unsigned long long v;
		if (sscanf(names[i], "ckpt-%16llx.kvc", &v) == 1 && strlen(names[i]) == 25 && v > ckpt)
			ckpt = v;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned long long v;
		if (sscanf(names[i], "wal-%16llx.log", &v) != 1 || strlen(names[i]) != 24)
			continue;
		first = v;
		if (first > newest)
			pick = newest, newest = first;
		else if (first > pick)
			pick = first;
	}
	faultio_free_names(names, n);
	ck_assert_msg(pick > ckpt + 1, "no sealed segment after the checkpoint at LSN %llu",
		      (unsigned long long)ckpt);
	snprintf(seg, len, SIM_DIR "/wal-%016llx.log", (unsigned long long)pick);
}

/* Flips a byte inside the first value of fill_until_enospc's found in path; its key's number. */
static int damage_a_value_in(struct faultio *f, const char *path, int n)
{
	uint8_t want[64], *v = malloc(SALVAGE_VALUE);
	void *data = NULL;
	size_t len = 0;
	int hit = -1;

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	for (int i = 0; i < n && hit < 0; i++) {
		sim_fill(v, SALVAGE_VALUE, (unsigned)i);
		memcpy(want, v, sizeof want);
		const uint8_t *at = memmem(data, len, want, sizeof want);
		if (at && (size_t)(at - (const uint8_t *)data) + SALVAGE_VALUE <= len) {
			ck_assert_int_eq(faultio_flip(f, path, (uint64_t)(at - (const uint8_t *)data) + 2000, 0x40), 0);
			hit = i;
		}
	}
	free(data);
	free(v);
	ck_assert_msg(hit >= 0, "no whole value in %s", path);
	return hit;
}

START_TEST(salvage_on_a_full_disk_spends_the_reserve_and_keeps_every_undamaged_key)
{
	struct faultio *f = sim_disk();
	struct kv_report rep;
	char seg[128], k[16];
	uint64_t size = 0;
	bool dir;

	int n;
	struct kv *s = full_disk(f, 16u << 20, SALVAGE_SEGMENT, SALVAGE_VALUE, &n);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_stat(f, SIM_DIR "/space.reserve", &dir, &size), 0);
	ck_assert_msg(size >= SALVAGE_SEGMENT, "the reserve (%llu bytes) cannot hold a segment",
		      (unsigned long long)size);
	segment_after_the_checkpoint(f, seg, sizeof seg);
	int lost = damage_a_value_in(f, seg, n);

	int rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep);
	ck_assert_msg(rc == 0, "salvage on the full disk: %s (%s)", strerror(-rc), tu_report(&rep));
	ck_assert_uint_eq(rep.lost_keys, 1);
	snprintf(k, sizeof k, "big%04d", lost);
	ck_assert_str_eq(rep.lost_key, k);
	ck_assert_uint_ge(rep.set_aside, 1);

	/* strictly: every other key, byte for byte; the reserve is back */
	s = sim_open_seg(f, SALVAGE_SEGMENT, NULL);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "big%04d", i);
		if (i == lost)
			ck_assert_int_eq(kv_stat(s, k, strlen(k), NULL, NULL, NULL), -ENOENT);
		else
			sim_expect_fill(s, k, SALVAGE_VALUE, (unsigned)i);
	}
	ck_assert_int_eq(faultio_stat(f, SIM_DIR "/space.reserve", &dir, &size), 0);
	ck_assert_uint_ge(size, 64u << 10);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A salvage whose copy fails even with the reserve's room (here: an injected ENOSPC) is refused
 * and leaves the reserve held again: a refusal changes nothing a later salvage would need. */
START_TEST(a_salvage_refused_for_want_of_room_keeps_the_reserve)
{
	struct faultio *f = sim_disk();
	struct kv_report rep;
	uint64_t before = 0, after = 0;
	char seg[128];
	bool dir;

	int n;
	struct kv *s = full_disk(f, 16u << 20, SALVAGE_SEGMENT, SALVAGE_VALUE, &n);
	ck_assert_int_eq(kv_close(s), 0);
	segment_after_the_checkpoint(f, seg, sizeof seg);
	damage_a_value_in(f, seg, n);
	ck_assert_int_eq(faultio_stat(f, SIM_DIR "/space.reserve", &dir, &before), 0);

	faultio_reset_counts(f);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_PWRITE, 1, -ENOSPC, false), 0); /* the copy's */
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), -ENOSPC);
	ck_assert_int_eq(faultio_stat(f, SIM_DIR "/space.reserve", &dir, &after), 0);
	/* taken again as an open takes it: sized from the segments now, which may be a little
	 * smaller than the ones it was sized from (a held reserve is grown only a quarter short) */
	ck_assert_uint_ge(after, before - before / 4);
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("space");
	TCase *reserve = tcase_create("reserve");
	TCase *cleaner = tcase_create("full_disk_cleaner");
	tcase_set_timeout(reserve, 600);
	tcase_set_timeout(cleaner, 600);
	tcase_add_test(reserve, a_checkpoint_larger_than_the_minimum_reserve_leaves_deletes_room_in_the_same_process);
	tcase_add_test(reserve, a_checkpoint_larger_than_the_minimum_reserve_leaves_deletes_room_after_a_reopen);
	tcase_add_test(reserve, the_reserve_grows_with_the_checkpoint);
	tcase_add_test(reserve, failed_writes_on_a_full_disk_leave_the_reserve_to_the_deletes);
	tcase_add_test(cleaner, deleting_half_the_data_on_a_full_disk_makes_room_without_a_checkpoint);
	tcase_add_test(cleaner, a_segment_takes_at_most_half_the_free_space_of_a_small_disk);
	tcase_add_test(cleaner, the_full_disk_cleaner_leaves_the_deletes_room_on_a_tiny_disk);
	tcase_add_test(reserve, a_rename_on_a_full_disk_goes_through_like_a_delete);
	tcase_add_test(reserve, metadata_writes_on_a_full_disk_cannot_take_the_room_deletes_need);
	tcase_add_test(reserve, salvage_on_a_full_disk_spends_the_reserve_and_keeps_every_undamaged_key);
	tcase_add_test(reserve, a_salvage_refused_for_want_of_room_keeps_the_reserve);
	suite_add_tcase(su, reserve);
	suite_add_tcase(su, cleaner);
	return run_suite(su);
}
