/* test_privs.c — what a write takes away from a file: its set-user-ID and set-group-ID bits
 * (when the writer lacks CAP_FSETID) and its file capabilities (security.capability, whoever
 * writes), as a local filesystem does; and that the kernel asks the daemon nothing before a new
 * file's first write (no GETXATTR: FILESYSTEM.md section 9). Each set-ID case runs on a file of
 * the scratch directory (a local filesystem) too, and the mount must end as it did. Real mounts
 * through the kernel (tests/mountutil.c); needs root and /dev/fuse, else every test skips. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

#define OTHER_UID 1234
#define OTHER_GID 1234

/* A mount another user can reach (allow_other; mkdtemp made the scratch directory 0700). */
static void mount_for_others(void)
{
	mount_store("allow_other");
	ck_assert_int_eq(chmod(mt_tmp, 0755), 0);
	ck_assert_int_eq(chmod(mt_mnt, 0755), 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

/* Writes a few bytes at the end of path, as uid/gid in a child (root: this process). */
static void append_as(uid_t uid, gid_t gid, const char *path)
{
	pid_t pid;
	int status = 0;

	if (uid == 0) {
		int fd = open(path, O_WRONLY | O_APPEND);

		ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
		ck_assert_int_eq(write(fd, "more", 4), 4);
		ck_assert_int_eq(close(fd), 0);
		return;
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd;

		if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
			_exit(255);
		fd = open(path, O_WRONLY | O_APPEND);
		_exit(fd >= 0 && write(fd, "more", 4) == 4 && close(fd) == 0 ? 0 : errno);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer as %u: status 0x%x",
		      (unsigned)uid, status);
}

/* A file at path owned by owner, of the given mode (set after the chown, which clears set-ID
 * bits), written to as writer; its mode after. */
static mode_t mode_after_write(const char *path, uid_t owner, mode_t mode, uid_t writer)
{
	put_file(path, "data");
	ck_assert_int_eq(chown(path, owner, owner), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	ck_assert_uint_eq(mode_of(path), mode);
	append_as(writer, writer ? OTHER_GID : 0, path);
	return mode_of(path);
}

/* The same on the scratch directory's local filesystem and on the mount: both must end at want. */
static void assert_write_leaves(uid_t owner, mode_t mode, uid_t writer, mode_t want)
{
	char local[PATH_MAX + 16];
	mode_t got_local, got;

	snprintf(local, sizeof(local), "%s/local", mt_tmp);
	got_local = mode_after_write(local, owner, mode, writer);
	got = mode_after_write(in_mnt("f"), owner, mode, writer);
	ck_assert_msg(got_local == want, "the local filesystem left %04o, not %04o", got_local, want);
	ck_assert_msg(got == want, "the mount left %04o where the local filesystem left %04o", got,
		      got_local);
}

START_TEST(a_write_by_the_owner_clears_set_user_and_set_group_id)
{
	NEED_MOUNT();
	mount_for_others();
	assert_write_leaves(OTHER_UID, 06755, OTHER_UID, 0755);
	unmount_store();
}
END_TEST

START_TEST(a_write_by_another_user_clears_set_user_and_set_group_id)
{
	NEED_MOUNT();
	mount_for_others();
	assert_write_leaves(0, 06777, OTHER_UID, 0777);
	unmount_store();
}
END_TEST

START_TEST(a_write_by_root_keeps_set_id_bits)
{
	NEED_MOUNT();
	mount_for_others();
	assert_write_leaves(OTHER_UID, 06755, 0, 06755);
	unmount_store();
}
END_TEST

START_TEST(set_group_id_without_group_execute_stays_after_a_write_by_the_owner)
{
	NEED_MOUNT();
	mount_for_others();
	assert_write_leaves(OTHER_UID, 02744, OTHER_UID, 02744); /* S_ISGID alone: a lock mark */
	unmount_store();
}
END_TEST

/* The descriptor that created the file writes past the page cache (FOPEN_DIRECT_IO): the kernel
 * then strips nothing itself and the daemon must. */
START_TEST(a_write_through_the_creating_descriptor_clears_set_id_bits)
{
	pid_t pid;
	int status = 0;

	NEED_MOUNT();
	mount_for_others();
	ck_assert_int_eq(mkdir(in_mnt("d"), 0777), 0);
	ck_assert_int_eq(chmod(in_mnt("d"), 0777), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd;

		if (setgroups(0, NULL) || setresgid(OTHER_GID, OTHER_GID, OTHER_GID) ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID))
			_exit(255);
		fd = open(in_mnt("d/new"), O_CREAT | O_EXCL | O_WRONLY, 0755);
		if (fd < 0 || fchmod(fd, 06755) || write(fd, "data", 4) != 4 || close(fd))
			_exit(errno);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	ck_assert_uint_eq(mode_of(in_mnt("d/new")), 0755);
	assert_file(in_mnt("d/new"), "data");
	unmount_store();
}
END_TEST

/* A valid security.capability value (revision 2: CAP_NET_RAW permitted), which the kernel
 * checks before passing it on. */
static void set_caps(int fd)
{
	struct vfs_cap_data v;

	memset(&v, 0, sizeof(v));
	v.magic_etc = VFS_CAP_REVISION_2; /* little-endian on disk; so is this machine */
	v.data[0].permitted = 1u << CAP_NET_RAW;
	ck_assert_msg(fsetxattr(fd, "security.capability", &v, XATTR_CAPS_SZ_2, 0) == 0,
		      "setting security.capability: %s", strerror(errno));
	ck_assert_int_gt(fgetxattr(fd, "security.capability", NULL, 0), 0);
}

START_TEST(a_write_by_root_removes_file_capabilities)
{
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	put_file(in_mnt("f"), "data");
	fd = open(in_mnt("f"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	set_caps(fd);
	close(fd);
	append_as(0, 0, in_mnt("f"));
	assert_errno((int)getxattr(in_mnt("f"), "security.capability", NULL, 0), ENODATA,
		     "capabilities after a write");
	ck_assert_int_eq(setxattr(in_mnt("f"), "user.kept", "1", 1, 0), 0);
	unmount_store();
}
END_TEST

START_TEST(a_write_through_the_creating_descriptor_removes_file_capabilities)
{
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	fd = open(in_mnt("f"), O_CREAT | O_EXCL | O_WRONLY, 0755);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fsetxattr(fd, "user.other", "kept", 4, 0), 0);
	set_caps(fd);
	ck_assert_int_eq(write(fd, "data", 4), 4);
	assert_errno((int)fgetxattr(fd, "security.capability", NULL, 0), ENODATA,
		     "capabilities after a write");
	ck_assert_int_eq(fgetxattr(fd, "user.other", NULL, 0), 4); /* the others stay */
	ck_assert_int_eq(close(fd), 0);
	assert_file(in_mnt("f"), "data");
	unmount_store();
}
END_TEST

START_TEST(creating_and_writing_a_file_sends_no_getxattr)
{
	char name[32];
	uint64_t before;

	NEED_MOUNT();
	mount_store(NULL);
	before = stat_of("fuse_getxattr_count");
	for (int i = 0; i < 20; i++) {
		int fd;

		snprintf(name, sizeof(name), "f%02d", i);
		fd = open(in_mnt(name), O_CREAT | O_EXCL | O_WRONLY, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "first", 5), 5);
		ck_assert_int_eq(write(fd, " second", 7), 7);
		ck_assert_int_eq(close(fd), 0);
	}
	ck_assert_uint_eq(stat_of("fuse_getxattr_count"), before);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		assert_file(in_mnt(name), "first second");
	}
	unmount_store();
}
END_TEST

/* Read back through the descriptor that made it (O_RDWR keeps the page cache): written bytes,
 * a hole, and the kernel's size, without a round trip's help. */
START_TEST(a_file_created_for_reading_and_writing_reads_back_through_its_descriptor)
{
	char got[16];
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	fd = open(in_mnt("rw"), O_CREAT | O_EXCL | O_RDWR, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "abc", 3, 0), 3);
	ck_assert_int_eq(pwrite(fd, "xyz", 3, 8), 3);
	ck_assert_int_eq(pread(fd, got, sizeof(got), 0), 11);
	ck_assert_int_eq(memcmp(got, "abc\0\0\0\0\0xyz", 11), 0);
	ck_assert_int_eq(close(fd), 0);
	unmount_store();
}
END_TEST

int main(void)
{
	Suite *su = suite_create("privs");
	TCase *setid = tcase_create("setid"), *caps = tcase_create("caps");
	TCase *trips = tcase_create("round_trips");

	tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	TCase *all[] = { setid, caps, trips };
	mt_add_cases(su, all, sizeof(all) / sizeof(all[0]), 300);
	tcase_add_test(setid, a_write_by_the_owner_clears_set_user_and_set_group_id);
	tcase_add_test(setid, a_write_by_another_user_clears_set_user_and_set_group_id);
	tcase_add_test(setid, a_write_by_root_keeps_set_id_bits);
	tcase_add_test(setid, set_group_id_without_group_execute_stays_after_a_write_by_the_owner);
	tcase_add_test(setid, a_write_through_the_creating_descriptor_clears_set_id_bits);
	tcase_add_test(caps, a_write_by_root_removes_file_capabilities);
	tcase_add_test(caps, a_write_through_the_creating_descriptor_removes_file_capabilities);
	tcase_add_test(trips, creating_and_writing_a_file_sends_no_getxattr);
	tcase_add_test(trips, a_file_created_for_reading_and_writing_reads_back_through_its_descriptor);
	return mt_run(su);
}
