/* test_tree.c — what the low-level tree adds to the mount, as programs see it: hard links and
 * link counts, files without a name (unlinked while open, O_TMPFILE), paths deeper than a key,
 * fallocate, extended attributes and POSIX ACLs, and the tools that use them (cp -a, rsync -aX,
 * Python's tempfile). Real mounts through the kernel, as in test_mount.c (same harness,
 * tests/mountutil.c); needs root and /dev/fuse, else every test skips saying why. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

static struct stat stat_of_path(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st;
}

/* open(path, flags) as uid/gid in a child: 0, or the errno it failed with. */
static int open_as(uid_t uid, gid_t gid, const char *path, int flags)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd;

		if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
			_exit(255);
		fd = open(path, flags);
		_exit(fd >= 0 ? 0 : errno);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255);
	return WEXITSTATUS(status);
}

/* Runs a shell command; its exit status (127: the tool is missing). */
static int sh(const char *cmd, char **out)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	int status = 0;

	ck_assert_int_eq(tu_run(argv, NULL, out, NULL, &status), 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int have_tool(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	if (sh(cmd, NULL) == 0)
		return 1;
	fprintf(stderr, "skipped in part: %s is not installed\n", name);
	return 0;
}

/* ---- hard links and link counts ------------------------------------------------------------ */

START_TEST(hard_links_share_one_file_under_every_name)
{
	struct stat f, g, h;

	NEED_MOUNT();
	mount_store(NULL);
	put_file(in_mnt("f"), "one file");
	ck_assert_int_eq(mkdir(in_mnt("sub"), 0755), 0);
	ck_assert_int_eq(link(in_mnt("f"), in_mnt("g")), 0);
	ck_assert_int_eq(link(in_mnt("g"), in_mnt("sub/h")), 0);
	f = stat_of_path(in_mnt("f"));
	g = stat_of_path(in_mnt("g"));
	h = stat_of_path(in_mnt("sub/h"));
	ck_assert_uint_eq(f.st_ino, g.st_ino);
	ck_assert_uint_eq(f.st_ino, h.st_ino);
	ck_assert_uint_eq(f.st_nlink, 3);
	ck_assert_uint_eq(h.st_nlink, 3);
	/* one file: a change through any name shows through all */
	put_file(in_mnt("sub/h"), "changed");
	assert_file(in_mnt("f"), "changed");
	ck_assert_int_eq(chmod(in_mnt("g"), 0600), 0);
	ck_assert_uint_eq(stat_of_path(in_mnt("f")).st_mode & 07777, 0600);
	ck_assert_int_eq(unlink(in_mnt("f")), 0);
	ck_assert_uint_eq(stat_of_path(in_mnt("g")).st_nlink, 2);
	ck_assert_int_eq(rename(in_mnt("g"), in_mnt("k")), 0);
	remount();
	assert_file(in_mnt("k"), "changed");
	assert_file(in_mnt("sub/h"), "changed");
	ck_assert_uint_eq(stat_of_path(in_mnt("k")).st_nlink, 2);
	ck_assert_uint_eq(stat_of_path(in_mnt("k")).st_ino, stat_of_path(in_mnt("sub/h")).st_ino);
	assert_errno(link(in_mnt("k"), in_mnt("sub/h")), EEXIST, "link onto an existing name");
	assert_errno(link(in_mnt("sub"), in_mnt("sub2")), EPERM, "link of a directory");
	/* the last name takes the file with it */
	ck_assert_int_eq(unlink(in_mnt("k")), 0);
	ck_assert_int_eq(unlink(in_mnt("sub/h")), 0);
	wait_for_keys(3); /* the root's own entry, sub, and /ino (the reserved inode numbers) */
	unmount_store();
}
END_TEST

START_TEST(rename_onto_another_name_of_the_same_file_changes_nothing)
{
	NEED_MOUNT();
	mount_store(NULL);
	put_file(in_mnt("a"), "x");
	ck_assert_int_eq(link(in_mnt("a"), in_mnt("b")), 0);
	ck_assert_int_eq(rename(in_mnt("a"), in_mnt("b")), 0);
	assert_listing(mt_mnt, ". .. a b");
	ck_assert_uint_eq(stat_of_path(in_mnt("a")).st_nlink, 2);
	/* rename over a multiply linked file: the target loses one name */
	put_file(in_mnt("c"), "c");
	ck_assert_int_eq(rename(in_mnt("c"), in_mnt("a")), 0);
	assert_file(in_mnt("a"), "c");
	ck_assert_uint_eq(stat_of_path(in_mnt("b")).st_nlink, 1);
	assert_file(in_mnt("b"), "x");
	unmount_store();
}
END_TEST

START_TEST(a_directory_counts_its_subdirectories_in_nlink)
{
	NEED_MOUNT();
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("a"), 0755), 0);
	ck_assert_uint_eq(stat_of_path(in_mnt("a")).st_nlink, 2);
	ck_assert_int_eq(mkdir(in_mnt("a/b"), 0755), 0);
	ck_assert_int_eq(mkdir(in_mnt("a/c"), 0755), 0);
	put_file(in_mnt("a/file"), "not a directory");
	ck_assert_uint_eq(stat_of_path(in_mnt("a")).st_nlink, 4);
	ck_assert_uint_eq(stat_of_path(mt_mnt).st_nlink, 3);
	ck_assert_int_eq(rmdir(in_mnt("a/b")), 0);
	ck_assert_uint_eq(stat_of_path(in_mnt("a")).st_nlink, 3);
	ck_assert_int_eq(rename(in_mnt("a/c"), in_mnt("c")), 0);
	ck_assert_uint_eq(stat_of_path(in_mnt("a")).st_nlink, 2);
	ck_assert_uint_eq(stat_of_path(mt_mnt).st_nlink, 4);
	/* counted from the store after a remount, implicit directories (kv_cli's) included */
	unmount_store();
	free(kv_cli("PUT a/x/y/z v\n"));
	mount_store(NULL);
	ck_assert_uint_eq(stat_of_path(in_mnt("a")).st_nlink, 3);
	ck_assert_uint_eq(stat_of_path(in_mnt("a/x")).st_nlink, 3);
	ck_assert_uint_eq(stat_of_path(mt_mnt).st_nlink, 4);
	unmount_store();
}
END_TEST

/* The kernel drops inodes it does not use (as memory pressure would): the daemon then forgets
 * them and finds them again by name. */
static void drop_kernel_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "2\n", 2), 2);
	close(fd);
}

/* POSIX: a file keeps its inode number for its whole life, whatever its names do and whether
 * or not the kernel keeps it cached meanwhile (pjdfstest rename/09 and /10 check it). */
START_TEST(an_inode_number_stays_with_its_file)
{
	ino_t f, d, k;

	NEED_MOUNT();
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("a"), 0755), 0);
	ck_assert_int_eq(mkdir(in_mnt("b"), 0755), 0);
	put_file(in_mnt("a/f"), "x");
	f = stat_of_path(in_mnt("a/f")).st_ino;
	d = stat_of_path(in_mnt("a")).st_ino;
	ck_assert_uint_ne(f, d);
	drop_kernel_caches();
	ck_assert_int_eq(rename(in_mnt("a/f"), in_mnt("b/g")), 0);
	drop_kernel_caches();
	ck_assert_uint_eq(stat_of_path(in_mnt("b/g")).st_ino, f);
	ck_assert_int_eq(rename(in_mnt("a"), in_mnt("c")), 0);
	drop_kernel_caches();
	ck_assert_uint_eq(stat_of_path(in_mnt("c")).st_ino, d);
	ck_assert_int_eq(link(in_mnt("b/g"), in_mnt("c/h")), 0);
	drop_kernel_caches();
	ck_assert_uint_eq(stat_of_path(in_mnt("c/h")).st_ino, f);
	ck_assert_int_eq(unlink(in_mnt("b/g")), 0);
	remount();
	ck_assert_uint_eq(stat_of_path(in_mnt("c/h")).st_ino, f);
	ck_assert_uint_eq(stat_of_path(in_mnt("c")).st_ino, d);
	/* a key kv_cli wrote shows a number from its key, kept once the tree writes its blob */
	unmount_store();
	free(kv_cli("PUT c/plain v\n"));
	mount_store(NULL);
	k = stat_of_path(in_mnt("c/plain")).st_ino;
	ck_assert_int_eq(chmod(in_mnt("c/plain"), 0600), 0);
	ck_assert_int_eq(rename(in_mnt("c/plain"), in_mnt("moved")), 0);
	drop_kernel_caches();
	ck_assert_uint_eq(stat_of_path(in_mnt("moved")).st_ino, k);
	unmount_store();
}
END_TEST

/* ---- files without a name ------------------------------------------------------------------ */

/* The kernel names an open file by its node: fstat, fchmod, fchown, futimens and a reopen
 * through /proc/self/fd work after its last name is gone (no ESTALE), and st_nlink is 0. */
START_TEST(an_unlinked_open_file_answers_fstat_fchmod_and_reopening)
{
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000001, 0 } };
	char proc[64], buf[16] = { 0 };
	struct stat st;
	int fd, again;

	NEED_MOUNT();
	mount_store(NULL);
	put_file(in_mnt("f"), "contents");
	fd = open(in_mnt("f"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(in_mnt("f")), 0);
	ck_assert_int_eq(pwrite(fd, "CONTENTS and more", 17, 0), 17);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_int_eq(st.st_size, 17);
	ck_assert_int_eq(fchmod(fd, 0600), 0);
	ck_assert_int_eq(fchown(fd, 1, 2), 0);
	ck_assert_int_eq(futimens(fd, ts), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert(st.st_uid == 1 && st.st_gid == 2);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1000000001);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	again = open(proc, O_RDONLY);
	ck_assert_msg(again >= 0, "reopening %s: %s", proc, strerror(errno));
	ck_assert_int_eq(read(again, buf, 8), 8);
	ck_assert_str_eq(buf, "CONTENTS");
	close(again);
	close(fd);
	wait_for_keys(2); /* the root and /ino: the orphan goes once the kernel forgets the file */
	unmount_store();
}
END_TEST

START_TEST(a_file_replaced_by_rename_is_still_its_open_self)
{
	struct stat st;
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	put_file(in_mnt("old"), "old");
	put_file(in_mnt("new"), "brand new");
	fd = open(in_mnt("old"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(rename(in_mnt("new"), in_mnt("old")), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_int_eq(st.st_size, 3);
	ck_assert_uint_eq(stat_of_path(in_mnt("old")).st_size, 9);
	close(fd);
	unmount_store();
}
END_TEST

START_TEST(o_tmpfile_makes_a_nameless_file_that_linkat_names)
{
	char proc[64];
	struct stat st;
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("d"), 0755), 0);
	fd = open(in_mnt("d"), O_TMPFILE | O_RDWR, 0640);
	ck_assert_msg(fd >= 0, "O_TMPFILE: %s", strerror(errno));
	ck_assert_int_eq(write(fd, "made nameless", 13), 13);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0640);
	assert_listing(in_mnt("d"), ". ..");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ck_assert_int_eq(linkat(AT_FDCWD, proc, AT_FDCWD, in_mnt("d/named"), AT_SYMLINK_FOLLOW), 0);
	ck_assert_int_eq(write(fd, ", then named", 12), 12);
	close(fd);
	assert_file(in_mnt("d/named"), "made nameless, then named");
	ck_assert_uint_eq(stat_of_path(in_mnt("d/named")).st_nlink, 1);
	/* one never named goes with its last descriptor */
	fd = open(in_mnt("d"), O_TMPFILE | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "gone", 4), 4);
	close(fd);
	wait_for_keys(4); /* the root, d, d/named, /ino */
	remount();
	assert_file(in_mnt("d/named"), "made nameless, then named");
	unmount_store();
}
END_TEST

START_TEST(python_tempfile_works_in_the_mount)
{
	char cmd[PATH_MAX * 8], *out = NULL;
	int rc;

	NEED_MOUNT();
	if (!have_tool("python3"))
		return;
	mount_store(NULL);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import tempfile, os\n"
		 "with tempfile.TemporaryFile(dir=\"%s\") as f:\n"
		 "    f.write(b\"x\" * 100000); f.seek(0); assert len(f.read()) == 100000\n"
		 "    assert os.fstat(f.fileno()).st_size == 100000\n"
		 "with tempfile.NamedTemporaryFile(dir=\"%s\") as f:\n"
		 "    f.write(b\"y\"); f.flush(); assert os.path.getsize(f.name) == 1\n"
		 "print(\"ok\")'", mt_mnt, mt_mnt);
	rc = sh(cmd, &out);
	ck_assert_msg(rc == 0 && strstr(out, "ok"), "python3: exit %d, %s", rc, out);
	free(out);
	assert_listing(mt_mnt, ". ..");
	unmount_store();
}
END_TEST

/* ---- paths deeper than a key --------------------------------------------------------------- */

/* Only a name's 255 bytes and a system call's PATH_MAX are limits: a tree deeper than the
 * store's 4096-byte keys continues under spilled directories, renames and all. */
START_TEST(paths_deeper_than_a_key_work)
{
	char name[256], top[300];
	int dfd, fd, depth = 0;
	char buf[32] = { 0 };

	NEED_MOUNT();
	mount_store(NULL);
	memset(name, 'd', 250);
	name[250] = '\0';
	/* nest 250-byte directories through descriptors, 24 deep: a path of 6 KiB from the root */
	dfd = open(mt_mnt, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	for (depth = 0; depth < 24; depth++) {
		int next;

		ck_assert_msg(mkdirat(dfd, name, 0755) == 0, "depth %d: %s", depth, strerror(errno));
		next = openat(dfd, name, O_RDONLY | O_DIRECTORY);
		ck_assert_int_ge(next, 0);
		close(dfd);
		dfd = next;
	}
	fd = openat(dfd, "bottom", O_CREAT | O_WRONLY, 0644);
	ck_assert_msg(fd >= 0, "a file 6 KiB deep: %s", strerror(errno));
	ck_assert_int_eq(write(fd, "at the bottom", 13), 13);
	close(fd);
	close(dfd);
	/* moved under a longer name: every key below would grow */
	snprintf(top, sizeof(top), "%s", name);
	memset(name, 'e', 255);
	name[255] = '\0';
	ck_assert_int_eq(rename(in_mnt(top), in_mnt(name)), 0);
	remount();
	dfd = open(in_mnt(name), O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	memset(name, 'd', 250);
	name[250] = '\0';
	for (int i = 1; i < 24; i++) {
		int next = openat(dfd, name, O_RDONLY | O_DIRECTORY);

		ck_assert_msg(next >= 0, "depth %d after the rename: %s", i, strerror(errno));
		close(dfd);
		dfd = next;
	}
	fd = openat(dfd, "bottom", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 13);
	ck_assert_str_eq(buf, "at the bottom");
	close(fd);
	close(dfd);
	unmount_store();
}
END_TEST

/* ---- fallocate ------------------------------------------------------------------------------ */

START_TEST(fallocate_grows_punches_and_zeroes)
{
	char buf[64];
	struct stat st;
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	fd = open(in_mnt("f"), O_CREAT | O_RDWR, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "0123456789abcdef", 16), 16);
	ck_assert_int_eq(fallocate(fd, 0, 0, 32), 0); /* grows with zeros */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 32);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 32);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3), 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 10, 2), 0);
	ck_assert_int_eq(pread(fd, buf, 32, 0), 32);
	ck_assert_int_eq(memcmp(buf, "01\0\0\0" "56789\0\0cdef", 16), 0);
	for (int i = 16; i < 32; i++)
		ck_assert_int_eq(buf[i], 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 30, 10), 0); /* past the end: grows */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 40);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20, 100), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 40);
	assert_errno(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP, "collapse");
	close(fd);
	unmount_store();
}
END_TEST

/* ---- extended attributes and ACLs ------------------------------------------------------------ */

START_TEST(xattrs_are_kept_with_their_errors)
{
	char buf[64], list[256];
	ssize_t n;

	NEED_MOUNT();
	mount_store(NULL);
	put_file(in_mnt("f"), "x");
	assert_errno((int)getxattr(in_mnt("f"), "user.a", buf, sizeof(buf)), ENODATA, "none yet");
	ck_assert_int_eq(setxattr(in_mnt("f"), "user.a", "alpha", 5, 0), 0);
	ck_assert_int_eq(setxattr(in_mnt("f"), "trusted.b", "beta", 4, XATTR_CREATE), 0);
	ck_assert_int_eq(setxattr(in_mnt("f"), "security.c", "", 0, 0), 0);
	assert_errno(setxattr(in_mnt("f"), "user.a", "x", 1, XATTR_CREATE), EEXIST, "XATTR_CREATE");
	assert_errno(setxattr(in_mnt("f"), "user.z", "x", 1, XATTR_REPLACE), ENODATA,
		     "XATTR_REPLACE");
	assert_errno(setxattr(in_mnt("f"), "system.other", "x", 1, 0), EOPNOTSUPP, "system.*");
	ck_assert_int_eq(getxattr(in_mnt("f"), "user.a", NULL, 0), 5);
	assert_errno((int)getxattr(in_mnt("f"), "user.a", buf, 2), ERANGE, "a small buffer");
	n = getxattr(in_mnt("f"), "user.a", buf, sizeof(buf));
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(memcmp(buf, "alpha", 5), 0);
	ck_assert_int_eq(getxattr(in_mnt("f"), "security.c", buf, sizeof(buf)), 0);
	n = listxattr(in_mnt("f"), list, sizeof(list));
	ck_assert_int_eq(n, (ssize_t)sizeof("security.c") + (ssize_t)sizeof("trusted.b") +
				    (ssize_t)sizeof("user.a"));
	ck_assert_int_eq(memcmp(list, "security.c\0trusted.b\0user.a\0", (size_t)n), 0);
	ck_assert_int_eq(removexattr(in_mnt("f"), "trusted.b"), 0);
	assert_errno(removexattr(in_mnt("f"), "trusted.b"), ENODATA, "removed twice");
	ck_assert_int_eq(setxattr(in_mnt("f"), "user.a", "ALPHA!", 6, XATTR_REPLACE), 0);
	remount();
	ck_assert_int_eq(getxattr(in_mnt("f"), "user.a", buf, sizeof(buf)), 6);
	ck_assert_int_eq(memcmp(buf, "ALPHA!", 6), 0);
	ck_assert_int_eq(listxattr(in_mnt("f"), NULL, 0),
			 (ssize_t)sizeof("security.c") + (ssize_t)sizeof("user.a"));
	unmount_store();
}
END_TEST

START_TEST(xattrs_follow_their_file_and_go_with_it)
{
	char buf[16];

	NEED_MOUNT();
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("d"), 0755), 0);
	put_file(in_mnt("d/f"), "x");
	ck_assert_int_eq(setxattr(in_mnt("d/f"), "user.k", "v1", 2, 0), 0);
	ck_assert_int_eq(setxattr(in_mnt("d"), "user.k", "dir", 3, 0), 0);
	ck_assert_int_eq(rename(in_mnt("d/f"), in_mnt("d/g")), 0);
	ck_assert_int_eq(rename(in_mnt("d"), in_mnt("e")), 0);
	ck_assert_int_eq(getxattr(in_mnt("e/g"), "user.k", buf, sizeof(buf)), 2);
	ck_assert_int_eq(getxattr(in_mnt("e"), "user.k", buf, sizeof(buf)), 3);
	ck_assert_int_eq(link(in_mnt("e/g"), in_mnt("h")), 0);
	ck_assert_int_eq(getxattr(in_mnt("h"), "user.k", buf, sizeof(buf)), 2);
	ck_assert_int_eq(unlink(in_mnt("e/g")), 0);
	ck_assert_int_eq(unlink(in_mnt("h")), 0);
	ck_assert_int_eq(rmdir(in_mnt("e")), 0);
	wait_for_keys(2); /* the root and /ino: nothing of them is left, attributes included */
	unmount_store();
}
END_TEST

/* An access ACL as the kernel passes it: version 2, then (tag, perm, id) entries. */
static size_t acl_value(unsigned char *out, const unsigned short (*e)[2], const unsigned *ids,
			size_t n)
{
	out[0] = 2, out[1] = out[2] = out[3] = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = out + 4 + 8 * i;

		p[0] = (unsigned char)e[i][0], p[1] = (unsigned char)(e[i][0] >> 8);
		p[2] = (unsigned char)e[i][1], p[3] = 0;
		for (int b = 0; b < 4; b++)
			p[4 + b] = (unsigned char)(ids[i] >> (8 * b));
	}
	return 4 + 8 * n;
}

/* The kernel enforces what we store: user 1000 reads a 0600 root file only through its ACL
 * entry, the mode's group bits show the mask, and chmod moves the mask. */
START_TEST(acls_are_enforced_and_follow_chmod)
{
	/* user::rw-, user:1000:r--, group::---, mask::r--, other::--- */
	static const unsigned short e[5][2] = { { 0x01, 6 }, { 0x02, 4 }, { 0x04, 0 }, { 0x10, 4 },
						{ 0x20, 0 } };
	static const unsigned ids[5] = { 0xffffffffu, 1000, 0xffffffffu, 0xffffffffu, 0xffffffffu };
	unsigned char acl[64], got[64];
	size_t len = acl_value(acl, e, ids, 5);

	NEED_MOUNT();
	mount_store("allow_other");
	ck_assert_int_eq(chmod(mt_tmp, 0755), 0); /* mkdtemp made it 0700 */
	ck_assert_int_eq(chmod(mt_mnt, 0755), 0);
	put_file(in_mnt("secret"), "for 1000 only");
	ck_assert_int_eq(chmod(in_mnt("secret"), 0600), 0);
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("secret"), O_RDONLY), EACCES);
	ck_assert_int_eq(setxattr(in_mnt("secret"), "system.posix_acl_access", acl, len, 0), 0);
	ck_assert_uint_eq(stat_of_path(in_mnt("secret")).st_mode & 0777, 0640); /* group = mask */
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("secret"), O_RDONLY), 0);
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("secret"), O_WRONLY), EACCES);
	ck_assert_int_eq(open_as(1001, 1001, in_mnt("secret"), O_RDONLY), EACCES);
	ck_assert_int_eq(chmod(in_mnt("secret"), 0600), 0); /* the mask goes to --- */
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("secret"), O_RDONLY), EACCES);
	ck_assert_int_eq(getxattr(in_mnt("secret"), "system.posix_acl_access", got, sizeof(got)),
			 (ssize_t)len);
	ck_assert_int_eq(got[4 + 8 * 3 + 2], 0); /* mask::--- */
	unmount_store();
	mount_store("allow_other");
	ck_assert_int_eq(chmod(in_mnt("secret"), 0640), 0);
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("secret"), O_RDONLY), 0);
	ck_assert_int_eq(removexattr(in_mnt("secret"), "system.posix_acl_access"), 0);
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("secret"), O_RDONLY), EACCES);
	unmount_store();
}
END_TEST

START_TEST(a_default_acl_is_inherited_by_new_nodes)
{
	/* user::rwx, user:1000:rwx, group::r-x, mask::rwx, other::--- */
	static const unsigned short e[5][2] = { { 0x01, 7 }, { 0x02, 7 }, { 0x04, 5 }, { 0x10, 7 },
						{ 0x20, 0 } };
	static const unsigned ids[5] = { 0xffffffffu, 1000, 0xffffffffu, 0xffffffffu, 0xffffffffu };
	unsigned char acl[64];
	size_t len = acl_value(acl, e, ids, 5);
	int fd;

	NEED_MOUNT();
	mount_store("allow_other");
	ck_assert_int_eq(chmod(mt_tmp, 0755), 0);
	ck_assert_int_eq(chmod(mt_mnt, 0755), 0);
	ck_assert_int_eq(mkdir(in_mnt("shared"), 0700), 0);
	ck_assert_int_eq(setxattr(in_mnt("shared"), "system.posix_acl_default", acl, len, 0), 0);
	ck_assert_int_eq(setxattr(in_mnt("shared"), "system.posix_acl_access", acl, len, 0), 0);
	umask(077); /* a default ACL replaces the umask */
	fd = open(in_mnt("shared/f"), O_CREAT | O_WRONLY, 0666);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(mkdir(in_mnt("shared/sub"), 0777), 0);
	umask(022);
	ck_assert_uint_eq(stat_of_path(in_mnt("shared/f")).st_mode & 0777, 0660);
	ck_assert_int_eq(getxattr(in_mnt("shared/f"), "system.posix_acl_access", NULL, 0),
			 (ssize_t)len);
	ck_assert_int_eq(getxattr(in_mnt("shared/sub"), "system.posix_acl_default", NULL, 0),
			 (ssize_t)len);
	ck_assert_int_eq(open_as(1000, 1000, in_mnt("shared/f"), O_RDWR), 0);
	ck_assert_int_eq(open_as(1001, 1001, in_mnt("shared/f"), O_RDONLY), EACCES);
	unmount_store();
}
END_TEST

START_TEST(cp_a_and_rsync_aX_keep_acls_and_xattrs)
{
	char cmd[PATH_MAX * 16], *out = NULL;
	int rc;

	NEED_MOUNT();
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("src"), 0755), 0);
	put_file(in_mnt("src/f"), "with an ACL");
	ck_assert_int_eq(setxattr(in_mnt("src/f"), "user.note", "kept", 4, 0), 0);
	if (have_tool("setfacl") && have_tool("getfacl")) {
		snprintf(cmd, sizeof(cmd), "setfacl -m u:1000:r %s/src/f && cp -a %s/src %s/copy && "
			 "getfacl -cn %s/copy/f", mt_mnt, mt_mnt, mt_mnt, mt_mnt);
		rc = sh(cmd, &out);
		ck_assert_msg(rc == 0 && strstr(out, "user:1000:r--"), "cp -a: exit %d, %s", rc, out);
		free(out);
		out = NULL;
	}
	if (have_tool("rsync")) {
		snprintf(cmd, sizeof(cmd), "rsync -aX %s/src/ %s/rs/ && getfattr -n user.note "
			 "--only-values %s/rs/f", mt_mnt, mt_mnt, mt_mnt);
		rc = sh(cmd, &out);
		ck_assert_msg(rc == 0 && strstr(out, "kept"), "rsync -aX: exit %d, %s", rc, out);
		free(out);
		out = NULL;
		snprintf(cmd, sizeof(cmd), "rsync -aH %s/src/ %s/rsh/ && cd %s && ln src/f src/g && "
			 "rsync -aH src/ rsh/ && test $(stat -c %%h rsh/g) = 2", mt_mnt, mt_mnt, mt_mnt);
		rc = sh(cmd, &out);
		ck_assert_msg(rc == 0, "rsync -aH: exit %d, %s", rc, out);
		free(out);
	}
	snprintf(cmd, sizeof(cmd), "cp -al %s/src %s/linked && test $(stat -c %%h %s/src/f) -ge 2",
		 mt_mnt, mt_mnt, mt_mnt);
	rc = sh(cmd, NULL);
	ck_assert_msg(rc == 0, "cp -al: exit %d", rc);
	unmount_store();
}
END_TEST

int main(void)
{
	Suite *su = suite_create("tree");
	TCase *links = tcase_create("links"), *nameless = tcase_create("nameless");
	TCase *deep = tcase_create("deep"), *attrs = tcase_create("attrs");

	tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	TCase *all[] = { links, nameless, deep, attrs };
	mt_add_cases(su, all, sizeof(all) / sizeof(all[0]), 300);
	tcase_add_test(links, hard_links_share_one_file_under_every_name);
	tcase_add_test(links, rename_onto_another_name_of_the_same_file_changes_nothing);
	tcase_add_test(links, a_directory_counts_its_subdirectories_in_nlink);
	tcase_add_test(links, an_inode_number_stays_with_its_file);
	tcase_add_test(nameless, an_unlinked_open_file_answers_fstat_fchmod_and_reopening);
	tcase_add_test(nameless, a_file_replaced_by_rename_is_still_its_open_self);
	tcase_add_test(nameless, o_tmpfile_makes_a_nameless_file_that_linkat_names);
	tcase_add_test(nameless, python_tempfile_works_in_the_mount);
	tcase_add_test(deep, paths_deeper_than_a_key_work);
	tcase_add_test(deep, fallocate_grows_punches_and_zeroes);
	tcase_add_test(attrs, xattrs_are_kept_with_their_errors);
	tcase_add_test(attrs, xattrs_follow_their_file_and_go_with_it);
	tcase_add_test(attrs, acls_are_enforced_and_follow_chmod);
	tcase_add_test(attrs, a_default_acl_is_inherited_by_new_nodes);
	tcase_add_test(attrs, cp_a_and_rsync_aX_keep_acls_and_xattrs);
	return mt_run(su);
}
