/* prealloc: posix_fallocate through a real mount reserves space (docs/FILESYSTEM.md §4; the
 * third attack's finding 4, tests/attack3/FINDINGS.md). The store lives on a small tmpfs, so a
 * full disk is a real one: another file is written until ENOSPC, and the first writes into the
 * preallocated range must still go through — after a remount and after a kill -9 too. The
 * promise shows in df (statfs), fallocate beyond the free space answers ENOSPC, and deleting
 * or truncating the file gives the room back.
 *
 * Needs root and /dev/fuse; without them every test passes after printing why it skipped. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mountutil.h"

#define MIB (1u << 20)

static char block[MIB];

/* The store on a tmpfs of mib MiB, 1 MiB segments, mounted. */
static void mount_on_small_disk(unsigned mib)
{
	mt_small_disk(mib);
	mount_store("segment_bytes=1M");
}

static uint64_t free_bytes(const char *path)
{
	struct statvfs sv;

	ck_assert_int_eq(statvfs(path, &sv), 0);
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* A new file rel with mib MiB preallocated (mode) and made durable; its descriptor. */
static int preallocated(const char *rel, int mode, unsigned mib)
{
	int fd = open(in_mnt(rel), O_CREAT | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(fallocate(fd, mode, 0, (off_t)mib * MIB) == 0, "fallocate %u MiB: %s", mib,
		      strerror(errno));
	ck_assert_int_eq(fsync(fd), 0);
	return fd;
}

/* A new file rel holding 4 MiB of byte c (written, not synced); its descriptor. */
static int written_file(const char *rel, char c)
{
	int fd = open(in_mnt(rel), O_CREAT | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	memset(block, c, sizeof(block));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	return fd;
}

/* Other files of size bytes, each fsync'd, until the disk is full: the write or fsync that
 * fails must say ENOSPC. How many went in. */
static int fill_with(const char *prefix, size_t size)
{
	char rel[64];
	int n = 0;

	memset(block, 'o', sizeof(block));
	for (;; n++) {
		snprintf(rel, sizeof(rel), "%s%d", prefix, n);
		int fd = open(in_mnt(rel), O_CREAT | O_WRONLY, 0644);

		if (fd < 0) {
			ck_assert_msg(errno == ENOSPC, "creating %s: %s", rel, strerror(errno));
			return n;
		}
		ssize_t w = write(fd, block, size);
		int saved = errno;
		int s = w == (ssize_t)size ? fsync(fd) : -1;

		if (w == (ssize_t)size && s != 0)
			saved = errno;
		close(fd);
		if (w != (ssize_t)size || s != 0) {
			ck_assert_msg(saved == ENOSPC, "filling %s: %s", rel, strerror(saved));
			return n;
		}
		ck_assert_msg(n < 100000, "the disk never filled");
	}
}

/* Files of 1 MiB, then of 4 KiB, until each fails: the disk is full. The MiB that went in. */
static int fill_the_disk(const char *prefix)
{
	char small[64];
	int n = fill_with(prefix, MIB);

	snprintf(small, sizeof(small), "%s-small", prefix);
	fill_with(small, 4096);
	return n;
}

/* Writes mib MiB of the pattern of `seed` into fd from 0, in pieces of piece bytes, fsync'd;
 * each must go through. Then reads them back. */
static void write_the_range(int fd, unsigned mib, size_t piece, char seed)
{
	static char back[MIB];

	for (uint64_t off = 0; off < (uint64_t)mib * MIB; off += piece) {
		memset(block, seed + (char)(off / MIB), piece);
		ssize_t w = pwrite(fd, block, piece, (off_t)off);
		ck_assert_msg(w == (ssize_t)piece, "the write at %llu into the preallocated range: %s",
			      (unsigned long long)off, w < 0 ? strerror(errno) : "short");
	}
	ck_assert_msg(fsync(fd) == 0, "fsync after the preallocated writes: %s", strerror(errno));
	for (unsigned i = 0; i < mib; i++) {
		ck_assert_int_eq(pread(fd, back, MIB, (off_t)i * MIB), (ssize_t)MIB);
		memset(block, seed + (char)i, MIB);
		ck_assert_msg(memcmp(back, block, MIB) == 0, "MiB %u reads back wrong", i);
	}
}

/* The disk filled by other files, then mib MiB of seed written into the preallocated range of
 * fd (-1: "prealloc" opened again) in pieces of piece bytes: each goes through. Then fd is
 * closed and the store unmounted. */
static void fill_then_write_the_range(int fd, unsigned mib, size_t piece, char seed)
{
	ck_assert_int_gt(fill_the_disk("other"), 0);
	if (fd < 0) {
		fd = open(in_mnt("prealloc"), O_RDWR);
		ck_assert_int_ge(fd, 0);
	}
	write_the_range(fd, mib, piece, seed);
	close(fd);
	unmount_store();
}

/* The store mounted on a small disk with "prealloc" of 8 MiB preallocated (and closed). */
static void mounted_with_a_promise(void)
{
	mount_on_small_disk(32);
	close(preallocated("prealloc", 0, 8));
}

/* The store's space.promise (into path) removed while it is unmounted, then mounted again: the
 * mount must say the file was missing. */
static void remount_without_the_promise_file(char *path, size_t len)
{
	char *said = NULL;

	snprintf(path, len, "%s/space.promise", mt_data);
	ck_assert_int_eq(unlink(path), 0);
	mount_store_saying("segment_bytes=1M", &said);
	ck_assert_msg(strstr(said, "space.promise was missing"), "the mount said: %s", said);
	free(said);
}

START_TEST(a_first_write_into_a_preallocated_range_goes_through_on_a_full_disk)
{
	NEED_MOUNT();
	mount_on_small_disk(32);
	int fd = preallocated("prealloc", 0, 8);
	fill_then_write_the_range(fd, 8, MIB, 'a');
}
END_TEST

/* Records of one page each: the margin (docs/FILESYSTEM.md §4) covers a record and a segment
 * header per page. */
START_TEST(page_sized_first_writes_into_a_preallocated_range_go_through_on_a_full_disk)
{
	NEED_MOUNT();
	mount_on_small_disk(32);
	int fd = preallocated("prealloc", 0, 2);
	fill_then_write_the_range(fd, 2, 4096, 'p');
}
END_TEST

START_TEST(a_keep_size_preallocation_beyond_the_end_is_promised_too)
{
	struct stat st;

	NEED_MOUNT();
	mount_on_small_disk(32);
	int fd = preallocated("prealloc", FALLOC_FL_KEEP_SIZE, 8);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	fill_then_write_the_range(fd, 8, MIB, 'k');
}
END_TEST

START_TEST(a_zeroed_range_is_promised_like_a_preallocated_one)
{
	NEED_MOUNT();
	mount_on_small_disk(32);
	int fd = written_file("zeroed", 'z');
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 8 * (off_t)MIB), 0);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(pread(fd, block, MIB, 2 * MIB), (ssize_t)MIB);
	for (size_t i = 0; i < MIB; i++)
		ck_assert_msg(block[i] == 0, "byte %zu of the zeroed range is %d", i, block[i]);
	fill_then_write_the_range(fd, 8, MIB, 'r');
}
END_TEST

START_TEST(the_promise_survives_a_remount)
{
	NEED_MOUNT();
	mounted_with_a_promise();
	remount();
	fill_then_write_the_range(-1, 8, MIB, 'm');
}
END_TEST

START_TEST(the_promise_survives_a_kill)
{
	int status;

	NEED_MOUNT();
	mounted_with_a_promise();
	ck_assert_int_eq(kill(mt_daemon_pid, SIGKILL), 0);
	status = wait_daemon();
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(fusermount("-uz", mt_mnt), 0);
	mount_store("segment_bytes=1M");
	fill_then_write_the_range(-1, 8, MIB, 'c');
}
END_TEST

/* The promise file is only where the room is held: deleted while unmounted (attack5 finding 2,
 * tests/attack5/promise_damage.py promise-delete), the mount makes it again from the node
 * blobs' counts, since the store's key "/promised" says there are some to sum. */
START_TEST(the_promise_survives_its_file_deleted_while_unmounted)
{
	char path[PATH_MAX + 32];
	struct stat st;

	NEED_MOUNT();
	mounted_with_a_promise();
	unmount_store();
	remount_without_the_promise_file(path, sizeof(path));
	ck_assert_msg(stat(path, &st) == 0 && (uint64_t)st.st_blocks * 512 >= 8 * (uint64_t)MIB,
		      "space.promise was not made again holding 8 MiB");
	fill_then_write_the_range(-1, 8, MIB, 'd');
}
END_TEST

/* A store that promised before "/promised" existed has only the file to say so: the mount
 * that sums its promises records the key, so that the file may go afterwards. */
START_TEST(a_store_promising_without_the_key_gets_it_at_the_next_mount)
{
	char path[PATH_MAX + 32];

	NEED_MOUNT();
	mounted_with_a_promise();
	unmount_store();
	free(kv_cli("DEL /promised\n"));
	mount_store("segment_bytes=1M");
	unmount_store();
	remount_without_the_promise_file(path, sizeof(path));
	fill_then_write_the_range(-1, 8, MIB, 'u');
}
END_TEST

/* What another writer may still use: the disk less the promise. */
START_TEST(df_counts_promised_space_as_used)
{
	NEED_MOUNT();
	mount_on_small_disk(64);
	uint64_t before = free_bytes(mt_mnt);
	int fd = preallocated("prealloc", 0, 8);
	uint64_t after = free_bytes(mt_mnt);
	ck_assert_msg(before - after >= 8 * (uint64_t)MIB,
		      "8 MiB preallocated took %llu bytes off df's free space",
		      (unsigned long long)(before - after));
	close(fd);
	unmount_store();
}
END_TEST

START_TEST(fallocate_beyond_the_free_space_answers_enospc_and_changes_nothing)
{
	struct stat st;

	NEED_MOUNT();
	mount_on_small_disk(32);
	uint64_t before = free_bytes(mt_mnt);
	int fd = open(in_mnt("toolarge"), O_CREAT | O_RDWR, 0644);
	ck_assert_int_ge(fd, 0);
	assert_errno(fallocate(fd, 0, 0, 64 * (off_t)MIB), ENOSPC, "fallocate of 64 MiB on 32 MiB");
	ck_assert_int_eq(posix_fallocate(fd, 0, 64 * (off_t)MIB), ENOSPC);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_uint_eq(free_bytes(mt_mnt), before);
	close(fd);
	unmount_store();
}
END_TEST

/* A promise stays with the file while it is open, even unlinked (as blocks do), and goes back
 * with its last close. */
START_TEST(unlinking_the_file_gives_the_promise_back)
{
	NEED_MOUNT();
	mount_on_small_disk(64);
	uint64_t before = free_bytes(mt_mnt);
	int fd = preallocated("prealloc", 0, 8);
	ck_assert_int_eq(unlink(in_mnt("prealloc")), 0);
	ck_assert_msg(before - free_bytes(mt_mnt) >= 8 * (uint64_t)MIB, "an open unlinked file's promise went");
	close(fd);
	/* the kernel sends FORGET for the file after its last close, in its own time: waited for
	 * (a hang guard of 30 s, not a timing condition) */
	for (int i = 0; i < 300 && before - free_bytes(mt_mnt) >= MIB; i++)
		usleep(100 * 1000);
	ck_assert_msg(before - free_bytes(mt_mnt) < MIB, "closed and unlinked, df shows %llu bytes taken",
		      (unsigned long long)(before - free_bytes(mt_mnt)));
	unmount_store();
}
END_TEST

/* The blocks a file holds (st_blocks, du) count its preallocated bytes not written yet, as on
 * ext4, so du finds what df shows taken (attack6 finding 3). */
static uint64_t blocks_held(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

START_TEST(a_preallocated_file_holds_its_reserved_blocks_as_on_ext4)
{
	NEED_MOUNT();
	mount_on_small_disk(64);
	int fd = preallocated("prealloc", 0, 8);
	uint64_t held = blocks_held(fd);
	ck_assert_msg(held >= 8 * (uint64_t)MIB && held <= 9 * (uint64_t)MIB,
		      "8 MiB preallocated: st_blocks says %llu bytes", (unsigned long long)held);
	memset(block, 'h', MIB);
	ck_assert_int_eq(pwrite(fd, block, MIB, 0), (ssize_t)MIB);
	ck_assert_int_eq(fsync(fd), 0);
	held = blocks_held(fd);
	ck_assert_msg(held >= 8 * (uint64_t)MIB && held <= 9 * (uint64_t)MIB,
		      "1 of 8 preallocated MiB written: st_blocks says %llu bytes", (unsigned long long)held);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_msg(blocks_held(fd) == 0, "cut to 0: st_blocks says %llu bytes",
		      (unsigned long long)blocks_held(fd));
	close(fd);
	unmount_store();
}
END_TEST

START_TEST(truncating_the_file_gives_the_promise_back)
{
	NEED_MOUNT();
	mount_on_small_disk(64);
	uint64_t before = free_bytes(mt_mnt);
	int fd = preallocated("prealloc", 0, 8);
	uint64_t eight = before - free_bytes(mt_mnt);
	ck_assert_int_eq(ftruncate(fd, 2 * MIB), 0);
	uint64_t two = before - free_bytes(mt_mnt);
	ck_assert_msg(two >= 2 * (uint64_t)MIB && two * 4 <= eight + MIB,
		      "8 preallocated MiB took %llu bytes, cut to 2 MiB they take %llu",
		      (unsigned long long)eight, (unsigned long long)two);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_msg(before - free_bytes(mt_mnt) < MIB, "cut to 0, df shows %llu bytes taken",
		      (unsigned long long)(before - free_bytes(mt_mnt)));
	close(fd);
	unmount_store();
}
END_TEST

/* Once every preallocated byte is written the promise is fulfilled: what the margin left goes
 * back, and later writes are ordinary writes (btrfs's semantics; FILESYSTEM.md §4). */
START_TEST(writing_the_whole_range_ends_the_promise)
{
	char promise[PATH_MAX + 32];
	struct stat st;

	NEED_MOUNT();
	mount_on_small_disk(64);
	int fd = preallocated("prealloc", 0, 4);
	snprintf(promise, sizeof(promise), "%s/space.promise", mt_data);
	ck_assert_int_eq(stat(promise, &st), 0);
	ck_assert_int_ge(st.st_size, 4 * (off_t)MIB);
	write_the_range(fd, 4, MIB, 'w');
	ck_assert_int_eq(stat(promise, &st), 0); /* it stays, empty: the store has promised */
	ck_assert_msg(st.st_size == 0, "the promise file still holds %lld bytes", (long long)st.st_size);
	close(fd);
	unmount_store();
}
END_TEST

/* A hole punched inside a preallocated range is preallocated again (the range is one interval):
 * the first write into it after the disk filled goes through too. */
START_TEST(a_hole_punched_inside_a_preallocated_range_is_promised_again)
{
	NEED_MOUNT();
	mount_on_small_disk(32);
	int fd = preallocated("prealloc", 0, 4);
	memset(block, 'w', sizeof(block));
	for (int i = 0; i < 3; i++) /* MiB 3 stays unwritten: the range is still preallocated */
		ck_assert_int_eq(pwrite(fd, block, MIB, (off_t)i * MIB), (ssize_t)MIB);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MIB, 2 * (off_t)MIB), 0);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_gt(fill_the_disk("other"), 0);
	for (int i = 1; i < 4; i++) {
		memset(block, 'h', sizeof(block));
		ssize_t w = pwrite(fd, block, MIB, (off_t)i * MIB);
		ck_assert_msg(w == (ssize_t)MIB, "the write into MiB %d (punched or unwritten): %s", i,
			      w < 0 ? strerror(errno) : "short");
	}
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	unmount_store();
}
END_TEST

/* Bytes that hold data need no promise: preallocating over them changes nothing. */
START_TEST(preallocating_written_bytes_promises_nothing)
{
	char promise[PATH_MAX + 32];
	struct stat st;

	NEED_MOUNT();
	mount_on_small_disk(64);
	int fd = written_file("written", 'd');
	ck_assert_int_eq(fallocate(fd, 0, 0, 4 * (off_t)MIB), 0);
	snprintf(promise, sizeof(promise), "%s/space.promise", mt_data);
	ck_assert_msg(stat(promise, &st) == -1 && errno == ENOENT,
		      "a promise file of %lld bytes for written bytes", (long long)st.st_size);
	close(fd);
	unmount_store();
}
END_TEST

int main(void)
{
	Suite *su = suite_create("prealloc");
	TCase *full = tcase_create("full disk"), *room = tcase_create("room");

	if (mt_init() != 0)
		return EXIT_FAILURE;
	TCase *all[] = { full, room };
	mt_add_cases(su, all, sizeof(all) / sizeof(all[0]), 300);
	tcase_add_test(full, a_first_write_into_a_preallocated_range_goes_through_on_a_full_disk);
	tcase_add_test(full, page_sized_first_writes_into_a_preallocated_range_go_through_on_a_full_disk);
	tcase_add_test(full, a_keep_size_preallocation_beyond_the_end_is_promised_too);
	tcase_add_test(full, a_zeroed_range_is_promised_like_a_preallocated_one);
	tcase_add_test(full, the_promise_survives_a_remount);
	tcase_add_test(full, the_promise_survives_a_kill);
	tcase_add_test(full, the_promise_survives_its_file_deleted_while_unmounted);
	tcase_add_test(full, a_store_promising_without_the_key_gets_it_at_the_next_mount);
	tcase_add_test(full, a_hole_punched_inside_a_preallocated_range_is_promised_again);
	tcase_add_test(room, df_counts_promised_space_as_used);
	tcase_add_test(room, a_preallocated_file_holds_its_reserved_blocks_as_on_ext4);
	tcase_add_test(room, fallocate_beyond_the_free_space_answers_enospc_and_changes_nothing);
	tcase_add_test(room, unlinking_the_file_gives_the_promise_back);
	tcase_add_test(room, truncating_the_file_gives_the_promise_back);
	tcase_add_test(room, writing_the_whole_range_ends_the_promise);
	tcase_add_test(room, preallocating_written_bytes_promises_nothing);
	return mt_run(su);
}
