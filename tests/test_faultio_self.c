/* test_faultio_self.c — the simulated disk and the test helpers, tested on their own: the
 * crash tests of the engine are only as good as the model they run on. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultio.h"
#include "testutil.h"

static struct faultio *f;
static const struct kvio *io;

static void setup(void)
{
	ck_assert_int_eq(faultio_create(&f), 0);
	io = faultio_kvio(f);
	ck_assert_ptr_eq(io->ctx, f);
	ck_assert_int_eq(io->mkdir(io, "/d", 0700), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/"), 0);
}

static void teardown(void)
{
	faultio_destroy(f);
	f = NULL;
}

static int xopen(const char *path, int flags)
{
	int fd = -1;

	ck_assert_int_eq(io->open(io, path, flags, 0644, &fd), 0);
	return fd;
}

static void xwrite(int fd, const char *s, uint64_t off)
{
	ck_assert_int_eq(io->pwrite(io, fd, s, strlen(s), off), 0);
}

static void xsync(int fd)
{
	ck_assert_int_eq(io->fdatasync(io, fd), 0);
}

static void xclose(int fd)
{
	ck_assert_int_eq(io->close(io, fd), 0);
}

/* A file whose name and contents are durable. */
static void put_durable(const char *path, const char *dir, const char *text)
{
	int fd = xopen(path, O_RDWR | O_CREAT | O_TRUNC);

	xwrite(fd, text, 0);
	xsync(fd);
	xclose(fd);
	ck_assert_int_eq(io->fsync_dir(io, dir), 0);
}

/* The current contents as a string (asserting the file exists). */
static char *contents(const char *path, size_t *len_out)
{
	void *data = NULL;
	size_t len = 0;

	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	if (len_out)
		*len_out = len;
	return data;
}

static void assert_bytes(const char *path, const void *want, size_t want_len)
{
	size_t len;
	char *got = contents(path, &len);

	ck_assert_uint_eq(len, want_len);
	ck_assert_mem_eq(got, want, len);
	free(got);
}

static void assert_contents(const char *path, const char *want)
{
	assert_bytes(path, want, strlen(want));
}

/* ---- data durability by crash mode -------------------------------------------------------- */

/* /d/f holds "AAAA" durably and "BBBB" unsynced after it. */
static void durable_then_unsynced(void)
{
	int fd;

	put_durable("/d/f", "/d", "AAAA");
	fd = xopen("/d/f", O_RDWR);
	xwrite(fd, "BBBB", 4);
	assert_contents("/d/f", "AAAABBBB");
}

START_TEST(drop_loses_unsynced_data)
{
	durable_then_unsynced();
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "AAAA");
}
END_TEST

START_TEST(keep_keeps_unsynced_data)
{
	durable_then_unsynced();
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	assert_contents("/d/f", "AAAABBBB");
}
END_TEST

START_TEST(synced_data_survives_every_mode)
{
	for (int mode = FIO_CRASH_DROP; mode <= FIO_CRASH_KILL; mode++) {
		int fd;

		put_durable("/d/f", "/d", "durable");
		fd = xopen("/d/f", O_RDWR);
		xwrite(fd, "XX", 100);
		ck_assert_int_eq(faultio_crash(f, mode, (uint64_t)mode), 0);
		{
			size_t len;
			char *got = contents("/d/f", &len);

			ck_assert_mem_eq(got, "durable", 7);
			free(got);
		}
	}
}
END_TEST

START_TEST(unsynced_truncate_is_lost_by_drop)
{
	int fd;

	put_durable("/d/f", "/d", "0123456789");
	fd = xopen("/d/f", O_RDWR);
	ck_assert_int_eq(io->ftruncate(io, fd, 3), 0);
	assert_contents("/d/f", "012");
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "0123456789");
}
END_TEST

START_TEST(tear_keeps_a_sector_aligned_prefix_of_the_last_write)
{
	char first[512], last[2048];
	bool seen[5] = { false };

	memset(first, 'x', sizeof(first));
	memset(last, 'y', sizeof(last));
	for (uint64_t seed = 1; seed <= 64; seed++) {
		size_t len;
		char *got;
		int fd;

		put_durable("/d/f", "/d", "head");
		fd = xopen("/d/f", O_RDWR);
		ck_assert_int_eq(io->pwrite(io, fd, first, sizeof(first), 512), 0);
		ck_assert_int_eq(io->pwrite(io, fd, last, sizeof(last), 1024), 0);
		ck_assert_int_eq(faultio_crash(f, FIO_CRASH_TEAR, seed), 0);
		got = contents("/d/f", &len);
		/* the earlier write kept whole, the last cut at a sector boundary, never whole */
		ck_assert_uint_ge(len, 1024);
		ck_assert_uint_lt(len, 1024 + sizeof(last));
		ck_assert_uint_eq((len - 1024) % FIO_SECTOR, 0);
		ck_assert_mem_eq(got, "head", 4);
		ck_assert_mem_eq(got + 512, first, sizeof(first));
		ck_assert_mem_eq(got + 1024, last, len - 1024);
		seen[(len - 1024) / FIO_SECTOR] = true;
		free(got);
		ck_assert_int_eq(io->unlink(io, "/d/f"), 0);
		ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	}
	/* the seed picks the cut point: over 64 seeds every one of the four shows up */
	for (int i = 0; i < 4; i++)
		ck_assert_msg(seen[i], "cut after %d sectors never chosen", i);
}
END_TEST

START_TEST(tear_of_an_unaligned_write_cuts_at_absolute_sector_boundaries)
{
	char data[600];

	memset(data, 'z', sizeof(data));
	for (uint64_t seed = 1; seed <= 16; seed++) {
		size_t len;
		char *got;
		int fd;

		put_durable("/d/f", "/d", "");
		fd = xopen("/d/f", O_RDWR);
		/* [100, 700): the only inner boundary is 512 */
		ck_assert_int_eq(io->pwrite(io, fd, data, sizeof(data), 100), 0);
		ck_assert_int_eq(faultio_crash(f, FIO_CRASH_TEAR, seed), 0);
		got = contents("/d/f", &len);
		ck_assert(len == 0 || len == 512);
		free(got);
	}
}
END_TEST

START_TEST(zero_mode_reads_unsynced_ranges_as_zeros)
{
	size_t len;
	char *got;
	int fd;

	put_durable("/d/f", "/d", "AAAAAAAA");
	fd = xopen("/d/f", O_RDWR);
	xwrite(fd, "BB", 2);
	xwrite(fd, "CCCC", 10);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_ZERO, 1), 0);
	got = contents("/d/f", &len);
	ck_assert_uint_eq(len, 14);
	ck_assert_mem_eq(got, "AA\0\0AAAA\0\0\0\0\0\0", 14);
	free(got);
}
END_TEST

START_TEST(garbage_mode_is_seeded_and_spares_synced_bytes)
{
	char big[4096];
	struct faultio *g;
	size_t la, lb;
	char *a, *b;
	int fd;

	memset(big, 'q', sizeof(big));
	put_durable("/d/f", "/d", "AAAA");
	fd = xopen("/d/f", O_RDWR);
	ck_assert_int_eq(io->pwrite(io, fd, big, sizeof(big), 4), 0);
	ck_assert_int_eq(faultio_clone(f, &g), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_GARBAGE, 77), 0);
	ck_assert_int_eq(faultio_crash(g, FIO_CRASH_GARBAGE, 77), 0);
	a = contents("/d/f", &la);
	ck_assert_int_eq(faultio_read_file(g, "/d/f", (void **)&b, &lb), 0);
	ck_assert_uint_eq(la, 4 + sizeof(big));
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(a, b, la);
	ck_assert_mem_eq(a, "AAAA", 4);
	ck_assert(memcmp(a + 4, big, sizeof(big)) != 0);
	free(a);
	free(b);
	faultio_destroy(g);
}
END_TEST

START_TEST(kill_keeps_unsynced_names_and_data_still_unsynced)
{
	int fd = xopen("/d/new", O_RDWR | O_CREAT);

	xwrite(fd, "never synced", 0);
	ck_assert_int_eq(io->mkdir(io, "/d/sub", 0700), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
	ck_assert_int_eq(io->pwrite(io, fd, "x", 1, 0), -EBADF);
	assert_contents("/d/new", "never synced");
	ck_assert(faultio_exists(f, "/d/sub"));
	/* the kernel never wrote them: a power loss after the kill still loses them */
	ck_assert_int_eq(faultio_is_durable(f, "/d/new"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(!faultio_exists(f, "/d/new"));
	ck_assert(!faultio_exists(f, "/d/sub"));
}
END_TEST

START_TEST(after_a_crash_everything_is_durable)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	xwrite(fd, "abc", 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_is_durable(f, "/d/f"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	ck_assert_int_eq(faultio_is_durable(f, "/d/f"), 1);
	ck_assert_int_eq(faultio_is_durable(f, "/d"), 1);
	ck_assert_int_eq(faultio_is_durable(f, "/"), 1);
}
END_TEST

/* ---- directory entries -------------------------------------------------------------------- */

START_TEST(created_file_without_fsync_dir_vanishes)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT | O_EXCL);

	xwrite(fd, "data", 0);
	xsync(fd);
	ck_assert_int_eq(faultio_is_durable(f, "/d/f"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	ck_assert(!faultio_exists(f, "/d/f"));
}
END_TEST

START_TEST(created_file_with_fsync_dir_but_no_fdatasync_survives_empty)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	xwrite(fd, "data", 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "");
}
END_TEST

START_TEST(fsync_dir_of_another_directory_does_not_help)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	xsync(fd);
	ck_assert_int_eq(io->fsync_dir(io, "/"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(!faultio_exists(f, "/d/f"));
}
END_TEST

START_TEST(unlink_without_fsync_dir_comes_back)
{
	put_durable("/d/f", "/d", "alive");
	ck_assert_int_eq(io->unlink(io, "/d/f"), 0);
	ck_assert(!faultio_exists(f, "/d/f"));
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "alive");
	ck_assert_int_eq(io->unlink(io, "/d/f"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(!faultio_exists(f, "/d/f"));
}
END_TEST

START_TEST(new_directory_needs_its_parent_synced_and_its_own_entries_synced)
{
	int fd;

	ck_assert_int_eq(io->mkdir(io, "/d/sub", 0700), 0);
	put_durable("/d/sub/f", "/d/sub", "x");
	/* the entry inside is durable, but the directory's own name is not */
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(!faultio_exists(f, "/d/sub"));

	ck_assert_int_eq(io->mkdir(io, "/d/sub", 0700), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	fd = xopen("/d/sub/f", O_RDWR | O_CREAT);
	xsync(fd);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(faultio_exists(f, "/d/sub"));
	ck_assert(!faultio_exists(f, "/d/sub/f"));
}
END_TEST

START_TEST(fdatasync_on_a_directory_fd_syncs_its_entries)
{
	int dfd, fd = xopen("/d/f", O_RDWR | O_CREAT);

	xclose(fd);
	dfd = xopen("/d", O_RDONLY);
	xsync(dfd);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(faultio_exists(f, "/d/f"));
}
END_TEST

START_TEST(open_file_outlives_its_unlink)
{
	char buf[16];
	size_t got = 0;
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	xwrite(fd, "still here", 0);
	ck_assert_int_eq(io->unlink(io, "/d/f"), 0);
	ck_assert(!faultio_exists(f, "/d/f"));
	ck_assert_int_eq(io->pread(io, fd, buf, sizeof(buf), 0, &got), 0);
	ck_assert_uint_eq(got, 10);
	ck_assert_mem_eq(buf, "still here", 10);
	xwrite(fd, "!", 10);
	xclose(fd);
}
END_TEST

/* ---- rename ------------------------------------------------------------------------------- */

START_TEST(rename_within_a_directory_is_durable_only_after_fsync_dir)
{
	put_durable("/d/snap", "/d", "old");
	put_durable("/d/snap.tmp", "/d", "new");
	ck_assert_int_eq(io->rename(io, "/d/snap.tmp", "/d/snap"), 0);
	assert_contents("/d/snap", "new");
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/snap", "old");
	assert_contents("/d/snap.tmp", "new");

	ck_assert_int_eq(io->rename(io, "/d/snap.tmp", "/d/snap"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/snap", "new");
	ck_assert(!faultio_exists(f, "/d/snap.tmp"));
}
END_TEST

START_TEST(rename_across_directories_needs_both_synced)
{
	ck_assert_int_eq(io->mkdir(io, "/e", 0700), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/"), 0);
	put_durable("/d/f", "/d", "moving");

	/* only the target synced: the rename is not durable, the file keeps its old name */
	ck_assert_int_eq(io->rename(io, "/d/f", "/e/g"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/e"), 0);
	ck_assert_int_eq(faultio_is_durable(f, "/e/g"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "moving");
	ck_assert(!faultio_exists(f, "/e/g"));

	/* only the source synced: the same */
	ck_assert_int_eq(io->rename(io, "/d/f", "/e/g"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "moving");
	ck_assert(!faultio_exists(f, "/e/g"));

	/* both, in either order: moved, atomically */
	ck_assert_int_eq(io->rename(io, "/d/f", "/e/g"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/e"), 0);
	ck_assert_int_eq(faultio_is_durable(f, "/e/g"), 1);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/e/g", "moving");
	ck_assert(!faultio_exists(f, "/d/f"));
}
END_TEST

START_TEST(changes_queued_after_a_cross_directory_rename_wait_for_it)
{
	int fd;

	ck_assert_int_eq(io->mkdir(io, "/e", 0700), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/"), 0);
	put_durable("/d/f", "/d", "x");
	ck_assert_int_eq(io->rename(io, "/d/f", "/e/f"), 0);
	fd = xopen("/d/later", O_RDWR | O_CREAT);
	xclose(fd);
	/* /d synced, but its later change sits behind the rename that still waits for /e */
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_is_durable(f, "/d/later"), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/e"), 0);
	ck_assert_int_eq(faultio_is_durable(f, "/d/later"), 1);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(faultio_exists(f, "/d/later"));
	ck_assert(faultio_exists(f, "/e/f"));
	ck_assert(!faultio_exists(f, "/d/f"));
}
END_TEST

START_TEST(rename_errors_follow_posix)
{
	ck_assert_int_eq(io->mkdir(io, "/d/sub", 0700), 0);
	ck_assert_int_eq(io->mkdir(io, "/d/full", 0700), 0);
	put_durable("/d/full/x", "/d/full", "x");
	put_durable("/d/f", "/d", "f");
	ck_assert_int_eq(io->rename(io, "/d/missing", "/d/g"), -ENOENT);
	ck_assert_int_eq(io->rename(io, "/d/f", "/nodir/g"), -ENOENT);
	ck_assert_int_eq(io->rename(io, "/d/f", "/d/sub"), -EISDIR);
	ck_assert_int_eq(io->rename(io, "/d/sub", "/d/f"), -ENOTDIR);
	ck_assert_int_eq(io->rename(io, "/d/sub", "/d/full"), -ENOTEMPTY);
	ck_assert_int_eq(io->rename(io, "/d", "/d/sub/d"), -EINVAL);
	ck_assert_int_eq(io->rename(io, "/d/f", "/d/f"), 0);
	ck_assert_int_eq(io->rename(io, "/d/sub", "/d/sub2"), 0);
	ck_assert(faultio_exists(f, "/d/sub2"));
}
END_TEST

/* ---- namespace basics ---------------------------------------------------------------------- */

START_TEST(open_errors_follow_posix)
{
	int fd;

	ck_assert_int_eq(io->open(io, "/d/none", O_RDONLY, 0, &fd), -ENOENT);
	ck_assert_int_eq(io->open(io, "/none/f", O_RDWR | O_CREAT, 0644, &fd), -ENOENT);
	ck_assert_int_eq(io->open(io, "d/f", O_RDWR | O_CREAT, 0644, &fd), -EINVAL);
	put_durable("/d/f", "/d", "x");
	ck_assert_int_eq(io->open(io, "/d/f", O_RDWR | O_CREAT | O_EXCL, 0644, &fd), -EEXIST);
	ck_assert_int_eq(io->open(io, "/d/f/g", O_RDWR | O_CREAT, 0644, &fd), -ENOTDIR);
	ck_assert_int_eq(io->open(io, "/d", O_RDWR, 0, &fd), -EISDIR);
	ck_assert_int_eq(io->mkdir(io, "/d", 0700), -EEXIST);
	ck_assert_int_eq(io->mkdir(io, "/d/f", 0700), -EEXIST);
	ck_assert_int_eq(io->unlink(io, "/d"), -EISDIR);
	ck_assert_int_eq(io->unlink(io, "/d/none"), -ENOENT);
	ck_assert_int_eq(io->fsync_dir(io, "/d/f"), -ENOTDIR);
	ck_assert_int_eq(io->fsync_dir(io, "/none"), -ENOENT);
	fd = xopen("/d/./../d/f", O_RDONLY);
	ck_assert_int_eq(io->pwrite(io, fd, "x", 1, 0), -EBADF);
	ck_assert_int_eq(io->ftruncate(io, fd, 0), -EINVAL);
	xclose(fd);
	ck_assert_int_eq(io->close(io, fd), -EBADF);
}
END_TEST

START_TEST(o_trunc_truncates_and_fsize_reports)
{
	uint64_t size = 99;
	int fd;

	put_durable("/d/f", "/d", "contents");
	fd = xopen("/d/f", O_RDWR | O_TRUNC);
	ck_assert_int_eq(io->fsize(io, fd, &size), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(io->fallocate(io, fd, 0, 10000), 0);
	ck_assert_int_eq(io->fsize(io, fd, &size), 0);
	ck_assert_uint_eq(size, 10000);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/d/f", "contents");
}
END_TEST

START_TEST(list_dir_returns_every_name_sorted_or_shuffled)
{
	const char *want[] = { "a", "b", "c", "d", "e" };
	char **names;
	size_t n;

	for (int i = 4; i >= 0; i--) {
		char path[16];

		snprintf(path, sizeof(path), "/d/%s", want[i]);
		xclose(xopen(path, O_RDWR | O_CREAT));
	}
	ck_assert_int_eq(io->list_dir(io, "/d", &names, &n), 0);
	ck_assert_uint_eq(n, 5);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(names[i], want[i]);
	faultio_free_names(names, n);

	faultio_set_list_seed(f, 12345);
	for (int round = 0; round < 4; round++) {
		unsigned seen = 0;

		ck_assert_int_eq(io->list_dir(io, "/d", &names, &n), 0);
		ck_assert_uint_eq(n, 5);
		for (size_t i = 0; i < n; i++)
			seen |= 1u << (names[i][0] - 'a');
		ck_assert_uint_eq(seen, 0x1f);
		faultio_free_names(names, n);
	}
	ck_assert_int_eq(io->list_dir(io, "/d/a", &names, &n), -ENOTDIR);
	ck_assert_int_eq(io->mkdir(io, "/empty", 0700), 0);
	ck_assert_int_eq(io->list_dir(io, "/empty", &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	faultio_free_names(names, n);
}
END_TEST

START_TEST(old_fds_are_invalid_after_a_crash)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT), fd2;
	char c;
	size_t got;

	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	ck_assert_int_eq(io->pwrite(io, fd, "x", 1, 0), -EBADF);
	ck_assert_int_eq(io->pread(io, fd, &c, 1, 0, &got), -EBADF);
	ck_assert_int_eq(io->close(io, fd), -EBADF);
	/* a new open never reuses a number from before the crash */
	fd2 = xopen("/d/f", O_RDWR);
	ck_assert_int_ne(fd2, fd);
	ck_assert_int_eq(io->pwrite(io, fd, "x", 1, 0), -EBADF);
	xclose(fd2);
}
END_TEST

/* ---- injected faults ----------------------------------------------------------------------- */

START_TEST(nth_call_fails_once)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	ck_assert_int_eq(faultio_fail(f, FIO_OP_PWRITE, 2, -EIO, false), 0);
	xwrite(fd, "a", 0);
	ck_assert_int_eq(io->pwrite(io, fd, "b", 1, 1), -EIO);
	xwrite(fd, "c", 1);
	/* the failed write wrote nothing */
	assert_contents("/d/f", "ac");
}
END_TEST

START_TEST(persistent_failure_fails_every_later_call)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	ck_assert_int_eq(faultio_fail(f, FIO_OP_FDATASYNC, 2, -EIO, true), 0);
	xsync(fd);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(io->fdatasync(io, fd), -EIO);
	xwrite(fd, "other ops work", 0);
	faultio_clear_faults(f);
	xsync(fd);
}
END_TEST

START_TEST(any_op_failure_counts_every_call)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT); /* call 3 after setup's 2 */
	uint64_t size;

	ck_assert_uint_eq(faultio_calls(f), 3);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_ANY, 5, -ENOSPC, false), 0);
	xwrite(fd, "x", 0);                                    /* 4 */
	ck_assert_int_eq(io->fsize(io, fd, &size), -ENOSPC);   /* 5 */
	ck_assert_int_eq(io->fsize(io, fd, &size), 0);         /* 6 */
	ck_assert_uint_eq(faultio_count(f, FIO_OP_FSIZE), 2);
	ck_assert_uint_eq(faultio_count(f, FIO_OP_ANY), 6);
	faultio_reset_counts(f);
	ck_assert_uint_eq(faultio_calls(f), 0);
	ck_assert_uint_eq(faultio_count(f, FIO_OP_PWRITE), 0);
}
END_TEST

START_TEST(failed_open_creates_nothing)
{
	int fd;

	ck_assert_int_eq(faultio_fail(f, FIO_OP_OPEN, 1, -EIO, false), 0);
	ck_assert_int_eq(io->open(io, "/d/f", O_RDWR | O_CREAT, 0644, &fd), -EIO);
	ck_assert(!faultio_exists(f, "/d/f"));
	ck_assert_int_eq(faultio_fail(f, FIO_OP_RENAME, 1, -EIO, false), 0);
	put_durable("/d/g", "/d", "g");
	ck_assert_int_eq(io->rename(io, "/d/g", "/d/h"), -EIO);
	ck_assert(faultio_exists(f, "/d/g"));
}
END_TEST

START_TEST(failed_close_still_releases_the_fd)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	ck_assert_int_eq(faultio_fail(f, FIO_OP_CLOSE, 1, -EIO, false), 0);
	ck_assert_int_eq(io->close(io, fd), -EIO);
	ck_assert_int_eq(io->pwrite(io, fd, "x", 1, 0), -EBADF);
}
END_TEST

START_TEST(short_write_stores_a_prefix_and_fails)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);

	ck_assert_int_eq(faultio_short_write(f, 2, 3, -ENOSPC), 0);
	xwrite(fd, "0123", 0);
	ck_assert_int_eq(io->pwrite(io, fd, "abcdef", 6, 4), -ENOSPC);
	assert_contents("/d/f", "0123abc");
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	assert_contents("/d/f", "0123abc");
}
END_TEST

START_TEST(failed_fdatasync_data_never_becomes_durable)
{
	size_t len;
	char *got;
	int fd;

	put_durable("/d/f", "/d", "AAAA");
	fd = xopen("/d/f", O_RDWR);
	xwrite(fd, "BBBB", 0);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_FDATASYNC, faultio_count(f, FIO_OP_FDATASYNC) + 1,
				      -EIO, false), 0);
	ck_assert_int_eq(io->fdatasync(io, fd), -EIO);
	/* readers still see it (page cache) ... */
	assert_contents("/d/f", "BBBB");
	xwrite(fd, "CC", 8);
	/* ... and the next fdatasync succeeds, but only for what came after the failure */
	xsync(fd);
	ck_assert_int_eq(faultio_is_durable(f, "/d/f"), 0);
	ck_assert_int_eq(faultio_read_durable(f, "/d/f", (void **)&got, &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(got, "AAAA\0\0\0\0CC", 10);
	free(got);
	for (int mode = FIO_CRASH_DROP; mode <= FIO_CRASH_GARBAGE; mode++) {
		struct faultio *g;

		ck_assert_int_eq(faultio_clone(f, &g), 0);
		ck_assert_int_eq(faultio_crash(g, mode, 3), 0);
		ck_assert_int_eq(faultio_read_file(g, "/d/f", (void **)&got, &len), 0);
		ck_assert_uint_eq(len, 10);
		ck_assert_mem_eq(got, "AAAA", 4);
		free(got);
		faultio_destroy(g);
	}
}
END_TEST

START_TEST(failed_fdatasync_loses_unsynced_data_even_with_keep)
{
	int fd;

	put_durable("/d/f", "/d", "AAAA");
	fd = xopen("/d/f", O_RDWR);
	xwrite(fd, "BB", 4);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_FDATASYNC, faultio_count(f, FIO_OP_FDATASYNC) + 1,
				      -EIO, false), 0);
	ck_assert_int_eq(io->fdatasync(io, fd), -EIO);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	assert_bytes("/d/f", "AAAA\0\0", 6);
}
END_TEST

START_TEST(crash_at_freezes_everything_from_that_call)
{
	int fd = xopen("/d/f", O_RDWR | O_CREAT);
	uint64_t n = faultio_calls(f);
	int fd2;

	faultio_crash_at(f, n + 2);
	xwrite(fd, "ok", 0);                                             /* n + 1 */
	ck_assert_int_eq(io->pwrite(io, fd, "no", 2, 2), -EIO);         /* n + 2 */
	ck_assert_int_eq(io->fdatasync(io, fd), -EIO);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), -EIO);
	ck_assert_int_eq(io->open(io, "/d/g", O_RDWR | O_CREAT, 0644, &fd2), -EIO);
	ck_assert_int_eq(io->close(io, fd), -EIO);
	ck_assert(!faultio_exists(f, "/d/g"));
	assert_contents("/d/f", "ok");
	ck_assert_uint_eq(faultio_calls(f), n + 6);
	/* the reboot clears it */
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	ck_assert(!faultio_exists(f, "/d/f"));
	fd2 = xopen("/d/g", O_RDWR | O_CREAT);
	xclose(fd2);
}
END_TEST

START_TEST(capacity_refuses_growth_and_deleting_frees_space)
{
	char block[1000];
	uint64_t size;
	int fd, fd2;

	memset(block, 'b', sizeof(block));
	faultio_set_capacity(f, 2500);
	fd = xopen("/d/a", O_RDWR | O_CREAT);
	ck_assert_int_eq(io->pwrite(io, fd, block, sizeof(block), 0), 0);
	ck_assert_int_eq(io->pwrite(io, fd, block, sizeof(block), 1000), 0);
	ck_assert_int_eq(io->pwrite(io, fd, block, sizeof(block), 2000), -ENOSPC);
	ck_assert_int_eq(io->fsize(io, fd, &size), 0);
	ck_assert_uint_eq(size, 2000);
	/* overwriting in place needs no space */
	ck_assert_int_eq(io->pwrite(io, fd, block, sizeof(block), 500), 0);
	fd2 = xopen("/d/b", O_RDWR | O_CREAT);
	ck_assert_int_eq(io->pwrite(io, fd2, block, 500, 0), 0);
	ck_assert_int_eq(io->pwrite(io, fd2, "x", 1, 500), -ENOSPC);
	ck_assert_int_eq(io->ftruncate(io, fd2, 501), -ENOSPC);
	ck_assert_int_eq(io->fallocate(io, fd2, 0, 501), -ENOSPC);
	ck_assert_int_eq(io->fsize(io, fd2, &size), 0);
	ck_assert_uint_eq(size, 500);
	/* an unlinked file holds its space until its last fd closes */
	ck_assert_int_eq(io->unlink(io, "/d/a"), 0);
	ck_assert_int_eq(io->pwrite(io, fd2, "x", 1, 500), -ENOSPC);
	xclose(fd);
	ck_assert_int_eq(io->pwrite(io, fd2, block, sizeof(block), 500), 0);
	/* shrinking frees too */
	ck_assert_int_eq(io->ftruncate(io, fd2, 0), 0);
	ck_assert_int_eq(io->fallocate(io, fd2, 0, 2500), 0);
	xclose(fd2);
}
END_TEST

START_TEST(lock_is_exclusive_per_open_and_released_by_close_and_crash)
{
	int a = xopen("/d/LOCK", O_RDWR | O_CREAT), b = xopen("/d/LOCK", O_RDWR), c;

	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	ck_assert_int_eq(io->lock(io, a, 0), 0);
	ck_assert_int_eq(io->lock(io, a, 0), 0);
	ck_assert_int_eq(io->lock(io, b, 0), -EWOULDBLOCK);
	xclose(a);
	ck_assert_int_eq(io->lock(io, b, 0), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
	c = xopen("/d/LOCK", O_RDWR);
	ck_assert_int_eq(io->lock(io, c, 0), 0);
	xclose(c);
}
END_TEST

START_TEST(shared_locks_exclude_only_the_exclusive_one)
{
	int a = xopen("/d/LOCK", O_RDWR | O_CREAT), b = xopen("/d/LOCK", O_RDONLY),
	    c = xopen("/d/LOCK", O_RDONLY);

	ck_assert_int_eq(io->lock(io, b, 1), 0);
	ck_assert_int_eq(io->lock(io, c, 1), 0);
	ck_assert_int_eq(io->lock(io, a, 0), -EWOULDBLOCK);
	xclose(b);
	ck_assert_int_eq(io->lock(io, a, 0), -EWOULDBLOCK);
	xclose(c);
	ck_assert_int_eq(io->lock(io, a, 0), 0);
	b = xopen("/d/LOCK", O_RDONLY);
	ck_assert_int_eq(io->lock(io, b, 1), -EWOULDBLOCK);
	ck_assert_int_eq(io->lock(io, a, 1), 0); /* converts: now b may share it */
	ck_assert_int_eq(io->lock(io, b, 1), 0);
	xclose(a);
	xclose(b);
}
END_TEST

/* ---- direct access, clone, compare -------------------------------------------------------- */

START_TEST(direct_helpers_change_the_disk_durably)
{
	char **names;
	size_t n;
	bool is_dir;
	uint64_t size;

	ck_assert_int_eq(faultio_mkdirs(f, "/x/y/z"), 0);
	ck_assert_int_eq(faultio_write_file(f, "/x/y/z/file", "hello", 5), 0);
	ck_assert_int_eq(faultio_flip(f, "/x/y/z/file", 0, 0x20), 0);
	ck_assert_int_eq(faultio_overwrite(f, "/x/y/z/file", 4, "!", 1), 0);
	ck_assert_int_eq(faultio_overwrite(f, "/x/y/z/file", 4, "!!", 2), -EINVAL);
	ck_assert_int_eq(faultio_write_file(f, "/x/y/z/gone", "", 0), 0);
	ck_assert_int_eq(faultio_remove(f, "/x/y/z/gone"), 0);
	ck_assert_int_eq(faultio_remove(f, "/x/y"), -ENOTEMPTY);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/x/y/z/file", "Hell!");
	ck_assert_int_eq(faultio_truncate(f, "/x/y/z/file", 2), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	assert_contents("/x/y/z/file", "He");
	ck_assert_int_eq(faultio_stat(f, "/x/y", &is_dir, &size), 0);
	ck_assert(is_dir);
	ck_assert_int_eq(faultio_stat(f, "/x/y/z/file", &is_dir, &size), 0);
	ck_assert(!is_dir);
	ck_assert_uint_eq(size, 2);
	ck_assert_int_eq(faultio_list(f, "/x/y/z", &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "file");
	faultio_free_names(names, n);
	ck_assert_int_eq(faultio_stat(f, "/x/nope", NULL, NULL), -ENOENT);
	/* nothing above was counted */
	ck_assert_uint_eq(faultio_calls(f), 2);
}
END_TEST

START_TEST(clone_is_equal_and_independent)
{
	struct faultio *g;
	char why[256];
	int fd;

	put_durable("/d/a", "/d", "durable");
	fd = xopen("/d/b", O_RDWR | O_CREAT);
	xwrite(fd, "unsynced", 0);
	ck_assert_int_eq(faultio_clone(f, &g), 0);
	ck_assert_int_eq(faultio_compare(f, g, FIO_VIEW_CURRENT, why, sizeof(why)), 0);
	ck_assert_int_eq(faultio_compare(f, g, FIO_VIEW_DURABLE, why, sizeof(why)), 0);
	/* the clone has no fds: the process stays with the original */
	ck_assert_int_eq(faultio_kvio(g)->pwrite(faultio_kvio(g), fd, "x", 1, 0), -EBADF);
	/* same crash, same result, even for the random modes */
	for (int mode = FIO_CRASH_DROP; mode <= FIO_CRASH_KILL; mode++) {
		struct faultio *x, *y;

		ck_assert_int_eq(faultio_clone(f, &x), 0);
		ck_assert_int_eq(faultio_clone(g, &y), 0);
		ck_assert_int_eq(faultio_crash(x, mode, 99), 0);
		ck_assert_int_eq(faultio_crash(y, mode, 99), 0);
		ck_assert_msg(faultio_compare(x, y, FIO_VIEW_CURRENT, why, sizeof(why)) == 0,
			      "mode %d: %s", mode, why);
		faultio_destroy(x);
		faultio_destroy(y);
	}
	xwrite(fd, "!", 8);
	ck_assert_int_eq(faultio_compare(f, g, FIO_VIEW_CURRENT, why, sizeof(why)), 1);
	ck_assert_str_eq(why, "/d/b: sizes differ, 9 vs 8 bytes");
	ck_assert_int_eq(faultio_compare(f, g, FIO_VIEW_DURABLE, why, sizeof(why)), 0);
	ck_assert_int_eq(faultio_write_file(g, "/c", "c", 1), 0);
	ck_assert_int_eq(faultio_compare(f, g, FIO_VIEW_DURABLE, why, sizeof(why)), 1);
	ck_assert_str_eq(why, "/c: only on the second disk");
	faultio_destroy(g);
}
END_TEST

START_TEST(preallocated_files_stay_cheap)
{
	struct faultio *g;
	int fd = xopen("/d/wal", O_RDWR | O_CREAT);

	/* 64 MiB preallocated, a few records written: pages exist only where data was written */
	ck_assert_int_eq(io->fallocate(io, fd, 0, 64u << 20), 0);
	xwrite(fd, "record", 12345678);
	xsync(fd);
	ck_assert_int_eq(io->fsync_dir(io, "/d"), 0);
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(faultio_clone(f, &g), 0);
		ck_assert_int_eq(faultio_crash(g, FIO_CRASH_DROP, 1), 0);
		faultio_destroy(g);
	}
	ck_assert_int_eq(io->pwrite(io, fd, "x", 1, FIO_MAX_FILE), -EFBIG);
}
END_TEST

/* ---- randomised: the crash modes agree with the views ------------------------------------ */

static const char *const rnd_dirs[] = { "/d", "/e" };
static const char *const rnd_names[] = { "a", "b", "c" };

static void rnd_path(uint64_t *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", rnd_dirs[tu_rand(s) % 2], rnd_names[tu_rand(s) % 3]);
}

/* Random calls; their results do not matter, only that the model stays self-consistent. */
static void rnd_workload(uint64_t *s, int steps)
{
	int fds[4] = { -1, -1, -1, -1 };
	char p[32], q[32], data[700];

	for (int i = 0; i < steps; i++) {
		int k = (int)(tu_rand(s) % 4), fd = fds[k];

		memset(data, 'a' + (int)(tu_rand(s) % 26), sizeof(data));
		rnd_path(s, p, sizeof(p));
		rnd_path(s, q, sizeof(q));
		switch (tu_rand(s) % 10) {
		case 0:
			if (fd >= 0)
				io->close(io, fd);
			fds[k] = -1;
			if (io->open(io, p, O_RDWR | O_CREAT, 0644, &fd) == 0)
				fds[k] = fd;
			break;
		case 1:
		case 2:
			io->pwrite(io, fd, data, 1 + tu_rand(s) % sizeof(data), tu_rand(s) % 3000);
			break;
		case 3:
			io->fdatasync(io, fd);
			break;
		case 4:
			io->ftruncate(io, fd, tu_rand(s) % 2000);
			break;
		case 5:
			io->rename(io, p, q);
			break;
		case 6:
			io->unlink(io, p);
			break;
		case 7:
			io->fsync_dir(io, rnd_dirs[tu_rand(s) % 2]);
			break;
		case 8:
			if (tu_rand(s) % 4 == 0)
				faultio_fail(f, FIO_OP_FDATASYNC, faultio_count(f, FIO_OP_FDATASYNC) + 1,
					     -EIO, false);
			break;
		default:
			io->fallocate(io, fd, tu_rand(s) % 1000, 1 + tu_rand(s) % 1000);
			break;
		}
	}
}

START_TEST(random_histories_crash_to_their_views)
{
	uint64_t s = tu_seed() + (uint64_t)_i * 1000003u;
	char why[256];

	ck_assert_int_eq(io->mkdir(io, "/e", 0700), 0);
	ck_assert_int_eq(io->fsync_dir(io, "/"), 0);
	for (int round = 0; round < 30; round++) {
		struct faultio *before, *after;

		rnd_workload(&s, 40);
		ck_assert_int_eq(faultio_clone(f, &before), 0);
		ck_assert_int_eq(faultio_clone(f, &after), 0);
		/* DROP leaves exactly the durable view */
		ck_assert_int_eq(faultio_crash(after, FIO_CRASH_DROP, s), 0);
		ck_assert_msg(faultio_compare(before, after, FIO_VIEW_DURABLE, why, sizeof(why)) == 0,
			      "round %d: drop: %s", round, why);
		/* KILL (with fds open, locks held) changes neither view */
		if (round % 3 == 0) {
			ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, s), 0);
			ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof(why)) == 0,
				      "round %d: kill: %s", round, why);
			ck_assert_msg(faultio_compare(before, f, FIO_VIEW_DURABLE, why, sizeof(why)) == 0,
				      "round %d: kill, durable: %s", round, why);
		}
		/* after any crash, the durable view is the current one */
		ck_assert_int_eq(faultio_crash(before, (enum fio_crash)(s % 5), s), 0);
		faultio_destroy(after);
		ck_assert_int_eq(faultio_clone(before, &after), 0);
		ck_assert_int_eq(faultio_crash(after, FIO_CRASH_DROP, s), 0);
		ck_assert_msg(faultio_compare(before, after, FIO_VIEW_CURRENT, why, sizeof(why)) == 0,
			      "round %d: after crash: %s", round, why);
		faultio_destroy(after);
		faultio_destroy(before);
		if (round % 10 == 9)
			ck_assert_int_eq(faultio_crash(f, (enum fio_crash)(s % 5), s), 0);
	}
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------ */

struct writer {
	int fd;
	uint64_t off;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char rec[64];

	memset(rec, 'w', sizeof(rec));
	for (int i = 0; i < 500; i++) {
		if (io->pwrite(io, w->fd, rec, sizeof(rec), w->off + (uint64_t)i * sizeof(rec)))
			return (void *)1;
		if (i % 50 == 0 && io->fdatasync(io, w->fd))
			return (void *)1;
	}
	return NULL;
}

START_TEST(concurrent_callers_are_serialised)
{
	pthread_t t[4];
	struct writer w[4];
	uint64_t size;

	for (int i = 0; i < 4; i++) {
		w[i].fd = xopen("/d/shared", O_RDWR | O_CREAT);
		w[i].off = (uint64_t)i * 500 * 64;
		ck_assert_int_eq(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;

		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_eq(io->fsize(io, w[0].fd, &size), 0);
	ck_assert_uint_eq(size, 4 * 500 * 64);
	ck_assert_uint_eq(faultio_count(f, FIO_OP_PWRITE), 4 * 500);
	for (int i = 0; i < 4; i++)
		xclose(w[i].fd);
}
END_TEST

/* ---- testutil ----------------------------------------------------------------------------- */

START_TEST(tu_run_feeds_stdin_and_captures_output)
{
	const char *const cat[] = { "cat", NULL };
	const char *const sh[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	const char *const missing[] = { "/nonexistent/program", NULL };
	char *big = malloc(1 << 20), *out, *err;
	int status;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	/* a megabyte each way: neither pipe may fill up and block */
	ck_assert_int_eq(tu_run(cat, big, &out, &err, &status), 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_str_eq(out, big);
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	ck_assert_int_eq(tu_run(sh, NULL, &out, &err, &status), 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	ck_assert_str_eq(out, "out\n");
	ck_assert_str_eq(err, "err\n");
	free(out);
	free(err);
	ck_assert_int_eq(tu_run(missing, NULL, NULL, NULL, &status), -ENOENT);
	free(big);
}
END_TEST

START_TEST(tu_spawn_drives_a_program_line_by_line)
{
	const char *const sh[] = { "sh", "-c", "while read l; do echo \"got $l\"; done", NULL };
	char line[64];
	int in, out, status;
	pid_t pid;

	ck_assert_int_eq(tu_spawn(sh, &in, &out, &pid), 0);
	ck_assert_int_eq(tu_write_all(in, "one\n", 4), 0);
	ck_assert_int_eq(tu_read_line(out, line, sizeof(line), 10000), 7);
	ck_assert_str_eq(line, "got one");
	ck_assert_int_eq(tu_read_line(out, line, sizeof(line), 50), -ETIMEDOUT);
	ck_assert_int_eq(tu_kill(pid, &status), 0);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* the reader is gone: EPIPE, not a SIGPIPE that would kill the test */
	ck_assert_int_eq(tu_write_all(in, "two\n", 4), -EPIPE);
	ck_assert_int_eq(tu_read_line(out, line, sizeof(line), 1000), -ENODATA);
	close(in);
	close(out);
}
END_TEST

START_TEST(tu_tmpdir_and_rmrf_and_files)
{
	char dir[256], path[300], *data;
	size_t len;

	ck_assert_int_eq(tu_tmpdir(dir, sizeof(dir)), 0);
	ck_assert_ptr_nonnull(strstr(dir, "kvfs-test."));
	snprintf(path, sizeof(path), "%s/sub", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/sub/file", dir);
	ck_assert_int_eq(tu_write_file(path, "text", 4), 0);
	ck_assert_int_eq(tu_read_file(path, &data, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_str_eq(data, "text");
	free(data);
	ck_assert_int_eq(tu_rmrf(dir), 0);
	ck_assert_int_eq(access(dir, F_OK), -1);
	ck_assert_int_eq(tu_rmrf(dir), 0);
	ck_assert_int_eq(tu_read_file(path, &data, &len), -ENOENT);
}
END_TEST

START_TEST(tu_seed_is_stable_within_a_process)
{
	uint64_t a = tu_seed(), s1 = a, s2 = a;

	ck_assert_uint_eq(tu_seed(), a);
	ck_assert_uint_eq(tu_rand(&s1), tu_rand(&s2));
}
END_TEST

static Suite *faultio_suite(void)
{
	Suite *s = suite_create("faultio");
	TCase *data = tcase_create("data"), *dirs = tcase_create("dirs"),
	      *faults = tcase_create("faults"), *misc = tcase_create("misc"),
	      *util = tcase_create("testutil");

	tcase_add_checked_fixture(data, setup, teardown);
	tcase_add_test(data, drop_loses_unsynced_data);
	tcase_add_test(data, keep_keeps_unsynced_data);
	tcase_add_test(data, synced_data_survives_every_mode);
	tcase_add_test(data, unsynced_truncate_is_lost_by_drop);
	tcase_add_test(data, tear_keeps_a_sector_aligned_prefix_of_the_last_write);
	tcase_add_test(data, tear_of_an_unaligned_write_cuts_at_absolute_sector_boundaries);
	tcase_add_test(data, zero_mode_reads_unsynced_ranges_as_zeros);
	tcase_add_test(data, garbage_mode_is_seeded_and_spares_synced_bytes);
	tcase_add_test(data, kill_keeps_unsynced_names_and_data_still_unsynced);
	tcase_add_test(data, after_a_crash_everything_is_durable);
	tcase_add_test(data, o_trunc_truncates_and_fsize_reports);
	suite_add_tcase(s, data);

	tcase_add_checked_fixture(dirs, setup, teardown);
	tcase_add_test(dirs, created_file_without_fsync_dir_vanishes);
	tcase_add_test(dirs, created_file_with_fsync_dir_but_no_fdatasync_survives_empty);
	tcase_add_test(dirs, fsync_dir_of_another_directory_does_not_help);
	tcase_add_test(dirs, unlink_without_fsync_dir_comes_back);
	tcase_add_test(dirs, new_directory_needs_its_parent_synced_and_its_own_entries_synced);
	tcase_add_test(dirs, fdatasync_on_a_directory_fd_syncs_its_entries);
	tcase_add_test(dirs, open_file_outlives_its_unlink);
	tcase_add_test(dirs, rename_within_a_directory_is_durable_only_after_fsync_dir);
	tcase_add_test(dirs, rename_across_directories_needs_both_synced);
	tcase_add_test(dirs, changes_queued_after_a_cross_directory_rename_wait_for_it);
	tcase_add_test(dirs, rename_errors_follow_posix);
	tcase_add_test(dirs, open_errors_follow_posix);
	tcase_add_test(dirs, list_dir_returns_every_name_sorted_or_shuffled);
	tcase_add_test(dirs, old_fds_are_invalid_after_a_crash);
	suite_add_tcase(s, dirs);

	tcase_add_checked_fixture(faults, setup, teardown);
	tcase_add_test(faults, nth_call_fails_once);
	tcase_add_test(faults, persistent_failure_fails_every_later_call);
	tcase_add_test(faults, any_op_failure_counts_every_call);
	tcase_add_test(faults, failed_open_creates_nothing);
	tcase_add_test(faults, failed_close_still_releases_the_fd);
	tcase_add_test(faults, short_write_stores_a_prefix_and_fails);
	tcase_add_test(faults, failed_fdatasync_data_never_becomes_durable);
	tcase_add_test(faults, failed_fdatasync_loses_unsynced_data_even_with_keep);
	tcase_add_test(faults, crash_at_freezes_everything_from_that_call);
	tcase_add_test(faults, capacity_refuses_growth_and_deleting_frees_space);
	tcase_add_test(faults, lock_is_exclusive_per_open_and_released_by_close_and_crash);
	tcase_add_test(faults, shared_locks_exclude_only_the_exclusive_one);
	suite_add_tcase(s, faults);

	tcase_add_checked_fixture(misc, setup, teardown);
	tcase_set_timeout(misc, 120);
	tcase_add_test(misc, direct_helpers_change_the_disk_durably);
	tcase_add_test(misc, clone_is_equal_and_independent);
	tcase_add_test(misc, preallocated_files_stay_cheap);
	tcase_add_loop_test(misc, random_histories_crash_to_their_views, 0, 20);
	tcase_add_test(misc, concurrent_callers_are_serialised);
	suite_add_tcase(s, misc);

	tcase_set_timeout(util, 60);
	tcase_add_test(util, tu_run_feeds_stdin_and_captures_output);
	tcase_add_test(util, tu_spawn_drives_a_program_line_by_line);
	tcase_add_test(util, tu_tmpdir_and_rmrf_and_files);
	tcase_add_test(util, tu_seed_is_stable_within_a_process);
	suite_add_tcase(s, util);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(faultio_suite());
	int failed;

	tu_seed();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
