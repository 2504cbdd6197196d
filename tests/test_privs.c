/* test_privs.c — what a write takes away from a file: its set-user-ID and set-group-ID bits
 * (when the writer lacks CAP_FSETID) and its file capabilities (security.capability, whoever
 * writes), as a local filesystem does; and that a file created write-only stays coherent with
 * its other descriptors, mappings and processes (the creating open keeps the page cache:
 * FILESYSTEM.md section 11). Each set-ID and coherence case runs on a file of the scratch
 * directory (a local filesystem) too, and the mount must end as it did. Real mounts through the
 * kernel (tests/mountutil.c); needs root and /dev/fuse, else every test skips. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Who acts on a file: uid and gid, and one supplementary group (NO_GROUP: none). */
#define NO_GROUP ((gid_t)-1)
struct who {
	uid_t uid;
	gid_t gid, extra;
};

enum act { APPEND, TRUNCATE };

static int act_on(enum act act, const char *path)
{
	int fd;

	if (act == TRUNCATE)
		return truncate(path, 2);
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return -1;
	if (write(fd, "more", 4) != 4) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Appends a few bytes to path, or cuts it to 2 bytes, as w in a child (root: this process). */
static void act_as(const struct who *w, enum act act, const char *path)
{
	pid_t pid;
	int status = 0;

	if (w->uid == 0) {
		ck_assert_msg(act_on(act, path) == 0, "%s: %s", path, strerror(errno));
		return;
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(w->extra == NO_GROUP ? 0 : 1, &w->extra) ||
		    setresgid(w->gid, w->gid, w->gid) || setresuid(w->uid, w->uid, w->uid))
			_exit(255);
		_exit(act_on(act, path) == 0 ? 0 : errno);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s as %u: status 0x%x", path,
		      (unsigned)w->uid, status);
}

static void append_as(uid_t uid, gid_t gid, const char *path)
{
	struct who w = { uid, gid, NO_GROUP };

	act_as(&w, APPEND, path);
}

/* A file at path owned by owner:group, of the given mode (set after the chown, which clears
 * set-ID bits), acted on by w; its mode after. */
static mode_t mode_after(const char *path, uid_t owner, gid_t group, mode_t mode,
			 const struct who *w, enum act act)
{
	put_file(path, "data");
	ck_assert_int_eq(chown(path, owner, group), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	ck_assert_uint_eq(mode_of(path), mode);
	act_as(w, act, path);
	return mode_of(path);
}

/* The same on the scratch directory's local filesystem and on the mount: both must end at want. */
static void assert_act_leaves(uid_t owner, gid_t group, mode_t mode, const struct who *w,
			      enum act act, mode_t want)
{
	char local[PATH_MAX + 16];
	mode_t got_local, got;

	snprintf(local, sizeof(local), "%s/local", mt_tmp);
	got_local = mode_after(local, owner, group, mode, w, act);
	got = mode_after(in_mnt("f"), owner, group, mode, w, act);
	ck_assert_msg(got_local == want, "the local filesystem left %04o, not %04o", got_local, want);
	ck_assert_msg(got == want, "the mount left %04o where the local filesystem left %04o", got,
		      got_local);
}

/* A write by writer (in group OTHER_GID unless root) into a file owner:owner. */
static void assert_write_leaves(uid_t owner, mode_t mode, uid_t writer, mode_t want)
{
	struct who w = { writer, writer ? OTHER_GID : 0, NO_GROUP };

	assert_act_leaves(owner, owner, mode, &w, APPEND, want);
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

/* A third user, in no group of the others unless given one. */
#define THIRD_UID 1235
#define THIRD_GID 1235

START_TEST(a_write_by_a_member_of_the_group_clears_group_executable_set_group_id)
{
	struct who member = { THIRD_UID, THIRD_GID, OTHER_GID };

	NEED_MOUNT();
	mount_for_others();
	assert_act_leaves(0, OTHER_GID, 02777, &member, APPEND, 0777);
	unmount_store();
}
END_TEST

START_TEST(a_write_from_outside_the_group_clears_a_set_group_id_locking_mark)
{
	struct who outsider = { THIRD_UID, THIRD_GID, NO_GROUP };

	NEED_MOUNT();
	mount_for_others();
	assert_act_leaves(0, OTHER_GID, 02766, &outsider, APPEND, 0766);
	unmount_store();
}
END_TEST

START_TEST(a_write_by_a_supplementary_member_keeps_a_set_group_id_locking_mark)
{
	struct who member = { THIRD_UID, THIRD_GID, OTHER_GID };

	NEED_MOUNT();
	mount_for_others();
	assert_act_leaves(0, OTHER_GID, 02766, &member, APPEND, 02766);
	unmount_store();
}
END_TEST

START_TEST(a_write_by_the_owner_outside_the_group_clears_a_set_group_id_locking_mark)
{
	struct who owner = { THIRD_UID, THIRD_GID, NO_GROUP };

	NEED_MOUNT();
	mount_for_others();
	assert_act_leaves(THIRD_UID, OTHER_GID, 02766, &owner, APPEND, 0766);
	unmount_store();
}
END_TEST

START_TEST(a_truncation_from_outside_the_group_clears_a_set_group_id_locking_mark)
{
	struct who outsider = { THIRD_UID, THIRD_GID, NO_GROUP };
	struct who member = { THIRD_UID, OTHER_GID, NO_GROUP };

	NEED_MOUNT();
	mount_for_others();
	assert_act_leaves(0, OTHER_GID, 02766, &outsider, TRUNCATE, 0766);
	assert_act_leaves(0, OTHER_GID, 02766, &member, TRUNCATE, 02766);
	assert_act_leaves(0, OTHER_GID, 06777, &member, TRUNCATE, 0777);
	unmount_store();
}
END_TEST

/* Another user creates the file, makes it set-ID through the creating descriptor and writes
 * through it: the WRITE asks the daemon to clear the bits (FUSE_WRITE_KILL_SUIDGID). */
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

/* Read back through the descriptor that made it: written bytes, a hole, and the kernel's size. */
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

/* ---- coherence: the descriptor that created the file write-only and the file's others ---- */

#define PAGE 4096
#define FILE_LEN (3 * PAGE)

static int fill_is(const char *p, int c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/* In dir: a file created write-only and filled with 'A'; a second descriptor reads it all and
 * maps it shared (both now cache it); the first writes 'B' over the middle page and 'C' over
 * 100 bytes of the last, then the second descriptor's reads and its mapping must show them. */
static void cached_readers_see_the_creating_descriptors_write(const char *dir)
{
	char path[PATH_MAX + 16], buf[FILE_LEN], got[FILE_LEN];
	int w, r;
	char *map;

	snprintf(path, sizeof(path), "%s/coherent", dir);
	w = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	ck_assert_msg(w >= 0, "create %s: %s", path, strerror(errno));
	memset(buf, 'A', sizeof(buf));
	ck_assert_int_eq(write(w, buf, FILE_LEN), FILE_LEN);
	r = open(path, O_RDONLY);
	ck_assert_int_ge(r, 0);
	ck_assert_int_eq(pread(r, got, FILE_LEN, 0), FILE_LEN);
	map = mmap(NULL, FILE_LEN, PROT_READ, MAP_SHARED, r, 0);
	ck_assert_msg(map != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	ck_assert(fill_is(map, 'A', FILE_LEN));

	memset(buf, 'B', PAGE);
	ck_assert_int_eq(pwrite(w, buf, PAGE, PAGE), PAGE);
	memset(buf, 'C', 100);
	ck_assert_int_eq(pwrite(w, buf, 100, 2 * PAGE + 500), 100);

	ck_assert_int_eq(pread(r, got, FILE_LEN, 0), FILE_LEN);
	ck_assert_msg(fill_is(got, 'A', PAGE) && fill_is(got + PAGE, 'B', PAGE) &&
		      fill_is(got + 2 * PAGE, 'A', 500) && fill_is(got + 2 * PAGE + 500, 'C', 100) &&
		      fill_is(got + 2 * PAGE + 600, 'A', PAGE - 600),
		      "%s: the reading descriptor still shows the old bytes", path);
	ck_assert_msg(memcmp(map, got, FILE_LEN) == 0, "%s: the mapping still shows the old bytes",
		      path);
	ck_assert_int_eq(munmap(map, FILE_LEN), 0);
	ck_assert_int_eq(close(r), 0);
	ck_assert_int_eq(close(w), 0);
}

START_TEST(a_descriptor_and_a_shared_map_that_cached_the_file_see_the_creating_descriptors_write)
{
	NEED_MOUNT();
	mount_store(NULL);
	cached_readers_see_the_creating_descriptors_write(mt_tmp);
	cached_readers_see_the_creating_descriptors_write(mt_mnt);
	unmount_store();
}
END_TEST

/* Steps of the two processes below, each waiting on the other through a pipe. */
static void step_send(int fd)
{
	ck_assert_int_eq(write(fd, "x", 1), 1);
}

static int step_wait(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/* The child: opens the file for reading and writing, reads it, writes into it; after the parent
 * wrote through the creating descriptor, reads that too. 0, or the step that went wrong. */
static int rdwr_child(const char *path, int to_parent, int from_parent)
{
	char got[16];
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return 10;
	if (pread(fd, got, sizeof(got), 0) != 5 || memcmp(got, "first", 5))
		return 11;
	if (pwrite(fd, "F", 1, 0) != 1 || pread(fd, got, 5, 0) != 5 || memcmp(got, "First", 5))
		return 12;
	step_send(to_parent);
	if (step_wait(from_parent))
		return 13;
	if (pread(fd, got, sizeof(got), 0) != 11 || memcmp(got, "First!then!", 11))
		return 14;
	return close(fd) ? 15 : 0;
}

/* In dir: created write-only, written, kept open; another process opens it O_RDWR, reads and
 * writes; the creating descriptor writes again; the other process reads that. */
static void another_process_reads_and_writes_a_file_being_created(const char *dir)
{
	char path[PATH_MAX + 16];
	int to_parent[2], from_parent[2], status = 0, w;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/shared", dir);
	w = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	ck_assert_msg(w >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(w, "first", 5), 5);
	ck_assert_int_eq(pipe(to_parent), 0);
	ck_assert_int_eq(pipe(from_parent), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(rdwr_child(path, to_parent[1], from_parent[0]));
	ck_assert_int_eq(step_wait(to_parent[0]), 0);
	ck_assert_int_eq(pwrite(w, " then", 5, 5), 5);
	ck_assert_int_eq(write(w, "!", 1), 1); /* at the descriptor's offset: 5, then 6 */
	ck_assert_int_eq(pwrite(w, "!", 1, 10), 1);
	step_send(from_parent[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the other process: 0x%x",
		      path, status);
	ck_assert_int_eq(close(w), 0);
	for (int i = 0; i < 2; i++) {
		close(to_parent[i]);
		close(from_parent[i]);
	}
	{
		char *text = get_file(path);

		ck_assert_str_eq(text, "First!then!");
		free(text);
	}
}

START_TEST(a_file_created_write_only_is_read_and_written_by_another_process_opening_it_rdwr)
{
	NEED_MOUNT();
	mount_store(NULL);
	another_process_reads_and_writes_a_file_being_created(mt_tmp);
	another_process_reads_and_writes_a_file_being_created(mt_mnt);
	unmount_store();
}
END_TEST

int main(void)
{
	Suite *su = suite_create("privs");
	TCase *setid = tcase_create("setid"), *caps = tcase_create("caps");
	TCase *coherence = tcase_create("coherence");

	tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	TCase *all[] = { setid, caps, coherence };
	mt_add_cases(su, all, sizeof(all) / sizeof(all[0]), 300);
	tcase_add_test(setid, a_write_by_the_owner_clears_set_user_and_set_group_id);
	tcase_add_test(setid, a_write_by_another_user_clears_set_user_and_set_group_id);
	tcase_add_test(setid, a_write_by_root_keeps_set_id_bits);
	tcase_add_test(setid, set_group_id_without_group_execute_stays_after_a_write_by_the_owner);
	tcase_add_test(setid, a_write_by_a_member_of_the_group_clears_group_executable_set_group_id);
	tcase_add_test(setid, a_write_from_outside_the_group_clears_a_set_group_id_locking_mark);
	tcase_add_test(setid, a_write_by_a_supplementary_member_keeps_a_set_group_id_locking_mark);
	tcase_add_test(setid, a_write_by_the_owner_outside_the_group_clears_a_set_group_id_locking_mark);
	tcase_add_test(setid, a_truncation_from_outside_the_group_clears_a_set_group_id_locking_mark);
	tcase_add_test(setid, a_write_through_the_creating_descriptor_clears_set_id_bits);
	tcase_add_test(caps, a_write_by_root_removes_file_capabilities);
	tcase_add_test(caps, a_write_through_the_creating_descriptor_removes_file_capabilities);
	tcase_add_test(coherence,
		       a_file_created_for_reading_and_writing_reads_back_through_its_descriptor);
	tcase_add_test(coherence,
		       a_descriptor_and_a_shared_map_that_cached_the_file_see_the_creating_descriptors_write);
	tcase_add_test(coherence,
		       a_file_created_write_only_is_read_and_written_by_another_process_opening_it_rdwr);
	return mt_run(su);
}
