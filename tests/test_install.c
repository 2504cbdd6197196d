/* test_install.c — kvfs installed like a filesystem: what `meson install` puts where, the
 * mount.kvfs helper, and mounting through mount(8) with the installed files.
 *
 * Each install test installs the build under test with `meson install --destdir` into a scratch
 * directory (MESON, KVFS_BUILD_ROOT and the install paths come from tests/meson.build).
 *
 * The mount tests (root, /dev/fuse and the overlay filesystem; each skips saying why otherwise)
 * run in a private mount namespace of their own (each Check test is a process of its own), in
 * which the staged install is laid over the real places: the staged bindir is bind-mounted over
 * the configured bindir, and the staged helper directory is overlaid on the real one (read-only
 * overlay, the real helpers stay visible). So mount(8) finds mount.kvfs where it looks (/sbin),
 * mount.kvfs runs kvfs by its configured absolute path, and mount.fuse3 finds kvfs in mount(8)'s
 * PATH, exactly as after a real install, while the machine itself is left untouched.
 * What is tested through mount(8): `mount -t kvfs DATADIR MNT -o OPTS`, an fstab line of type
 * kvfs (`mount -T FSTAB MNT`), and `mount -t fuse.kvfs`; each writes a file through the mount,
 * reads it back, unmounts with umount(8), waits for the daemon to exit 0 and reads the key
 * with the installed kv_cli. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char tmp[PATH_MAX];       /* scratch directory of the running test */
static char destdir[PATH_MAX + 16];
static char data[PATH_MAX + 16], mnt[PATH_MAX + 16];
static char mounted[PATH_MAX + 16]; /* non-empty: unmount it at teardown */

static const char *env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v && v[0], "%s must be set (tests/meson.build sets it)", name);
	return v;
}

static void setup(void)
{
	ck_assert_int_eq(tu_tmpdir(tmp, sizeof(tmp)), 0);
	snprintf(destdir, sizeof(destdir), "%s/dest", tmp);
	snprintf(data, sizeof(data), "%s/data", tmp);
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmp);
	mounted[0] = '\0';
}

static void teardown(void)
{
	if (mounted[0])
		umount2(mounted, MNT_DETACH);
	tu_rmrf(tmp);
}

/* A program's exit code; its stdout and stderr into *out and *err when not NULL. */
static int run(const char *const argv[], char **out, char **err)
{
	char *o = NULL, *e = NULL;
	int status = 0;

	ck_assert_int_eq(tu_run(argv, NULL, &o, &e, &status), 0);
	ck_assert_msg(WIFEXITED(status), "%s: killed by signal %d", argv[0], WTERMSIG(status));
	if (out)
		*out = o;
	else
		free(o);
	if (err)
		*err = e;
	else
		free(e);
	return WEXITSTATUS(status);
}

static void install_to_destdir(void)
{
	const char *argv[] = { env("MESON"), "install", "-C", env("KVFS_BUILD_ROOT"), "--no-rebuild",
			       "--destdir", destdir, NULL };
	char *out, *err;
	int code = run(argv, &out, &err);

	ck_assert_msg(code == 0, "meson install: exit %d:\n%s%s", code, out, err);
	free(out);
	free(err);
}

static char *staged(const char *abs_path)
{
	char *p = NULL;

	ck_assert_int_ge(asprintf(&p, "%s%s", destdir, abs_path), 0);
	return p;
}

/* ---- what is installed ------------------------------------------------------------------- */

/* The installed files, sorted, as paths without the destdir. */
static char *installed_files(void)
{
	const char *argv[] = { "sh", "-c", "cd \"$0\" && find . \\( -type f -o -type l \\) | "
			       "sed 's|^\\.||' | LC_ALL=C sort", destdir, NULL };
	char *out = NULL;

	ck_assert_int_eq(run(argv, &out, NULL), 0);
	return out;
}

START_TEST(meson_install_puts_the_programs_and_man_pages_and_nothing_else)
{
	char *got, want[4096];
	const char *mandir = env("KVFS_MANDIR"), *bindir = env("KVFS_BINDIR");
	const char *helperdir = env("KVFS_MOUNT_HELPER_DIR");
	char lines[7][PATH_MAX + 64];
	size_t n = 0;

	install_to_destdir();
	got = installed_files();
	snprintf(lines[n++], sizeof(lines[0]), "%s/kv_cli", bindir);
	snprintf(lines[n++], sizeof(lines[0]), "%s/kvfs", bindir);
	snprintf(lines[n++], sizeof(lines[0]), "%s/mount.kvfs", helperdir);
	snprintf(lines[n++], sizeof(lines[0]), "%s/man1/kv_cli.1", mandir);
	snprintf(lines[n++], sizeof(lines[0]), "%s/man8/kvfs.8", mandir);
	snprintf(lines[n++], sizeof(lines[0]), "%s/man8/mount.kvfs.8", mandir);
	snprintf(lines[n++], sizeof(lines[0]), "%s/kvfs@.service", env("KVFS_UNIT_DIR"));
	/* in C-locale order, as sort printed them */
	qsort(lines, n, sizeof(lines[0]), (int (*)(const void *, const void *))strcmp);
	want[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(want, lines[i]);
		strcat(want, "\n");
	}
	ck_assert_str_eq(got, want);
	free(got);
}
END_TEST

/* The unit template waits for kvfs's READY=1 and stops with the unmount that waits, both by
 * the installed kvfs's path. */
START_TEST(the_unit_template_runs_the_installed_kvfs_as_a_notify_service)
{
	char path[PATH_MAX + 64], want[PATH_MAX + 64], *text = NULL;

	install_to_destdir();
	snprintf(path, sizeof(path), "%s%s/kvfs@.service", destdir, env("KVFS_UNIT_DIR"));
	ck_assert_int_eq(tu_read_file(path, &text, NULL), 0);
	ck_assert_ptr_nonnull(strstr(text, "\nType=notify\n"));
	snprintf(want, sizeof(want), "\nExecStart=%s/kvfs -f ", env("KVFS_BINDIR"));
	ck_assert_msg(strstr(text, want), "%s", text);
	snprintf(want, sizeof(want), "\nExecStop=%s/kvfs --unmount %%f\n", env("KVFS_BINDIR"));
	ck_assert_msg(strstr(text, want), "%s", text);
	free(text);
}
END_TEST

START_TEST(the_installed_programs_run)
{
	char *kv_cli, *kvfs, *helper, *out = NULL;
	const char *bindir = env("KVFS_BINDIR");
	char path[PATH_MAX + 64];

	install_to_destdir();
	snprintf(path, sizeof(path), "%s/kv_cli", bindir);
	kv_cli = staged(path);
	snprintf(path, sizeof(path), "%s/kvfs", bindir);
	kvfs = staged(path);
	snprintf(path, sizeof(path), "%s/mount.kvfs", env("KVFS_MOUNT_HELPER_DIR"));
	helper = staged(path);
	{
		const char *argv[] = { kv_cli, "--version", NULL };

		ck_assert_int_eq(run(argv, &out, NULL), 0);
		ck_assert_msg(strstr(out, "kv_cli (kvfs)"), "%s", out);
		free(out);
	}
	{
		const char *argv[] = { kvfs, "--version", NULL };

		ck_assert_int_eq(run(argv, &out, NULL), 0);
		free(out);
	}
	{
		const char *argv[] = { helper, "--help", NULL };

		ck_assert_int_eq(run(argv, &out, NULL), 0);
		ck_assert_msg(strstr(out, "mount.kvfs"), "%s", out);
		free(out);
	}
	free(kv_cli);
	free(kvfs);
	free(helper);
}
END_TEST

/* Every target built by default is one of the three programs or a library they link. */
START_TEST(test_and_benchmark_programs_are_not_built_by_default)
{
	const char *argv[] = { "sh", "-c", "\"$0\" introspect \"$1\" --targets | python3 -c '"
			       "import json, sys\n"
			       "for t in json.load(sys.stdin):\n"
			       "    if t[\"build_by_default\"] or t[\"installed\"]:\n"
			       "        print(t[\"name\"], t[\"type\"], \"installed\" if t[\"installed\"] else \"\")\n"
			       "' | LC_ALL=C sort", env("MESON"), env("KVFS_BUILD_ROOT"), NULL };
	char *out = NULL;

	ck_assert_int_eq(run(argv, &out, NULL), 0);
	ck_assert_str_eq(out, "kv_cli executable installed\n"
			      "kvengine static library \n"
			      "kvfs executable installed\n"
			      "kvfsfs static library \n"
			      "kvrepl static library \n"
			      "mount.kvfs executable installed\n");
	free(out);
}
END_TEST

/* README's install build: -Dtests=false configures and builds only the programs (with any
 * Meson: before 1.7 Meson builds test programs by default whatever they say). */
START_TEST(a_build_without_tests_compiles_only_the_programs)
{
	char build[PATH_MAX + 16], *out = NULL, *err = NULL;
	const char *setup_argv[] = { env("MESON"), "setup", build, env("KVFS_SOURCE_ROOT"),
				     "-Dtests=false", NULL };
	const char *ninja_argv[] = { "ninja", "-C", build, NULL };
	const char *list_argv[] = { "sh", "-c", "cd \"$0\" && find . -type f -perm -u+x "
				    "! -path './meson-*' | LC_ALL=C sort", build, NULL };
	int code;

	snprintf(build, sizeof(build), "%s/build", tmp);
	code = run(setup_argv, &out, &err);
	ck_assert_msg(code == 0, "meson setup: %s%s", out, err);
	free(out);
	free(err);
	code = run(ninja_argv, &out, &err);
	ck_assert_msg(code == 0, "ninja: %s%s", out, err);
	free(out);
	free(err);
	ck_assert_int_eq(run(list_argv, &out, NULL), 0);
	ck_assert_str_eq(out, "./kv_cli\n./kvfs\n./mount.kvfs\n");
	free(out);
}
END_TEST

START_TEST(man_pages_format_without_warnings)
{
	static const char *const pages[] = { "man/kvfs.8", "man/kv_cli.1" };
	char path[PATH_MAX];

	if (access("/usr/bin/groff", X_OK) != 0) {
		fprintf(stderr, "man_pages_format_without_warnings: skipped: no groff (groff-base)\n");
		return;
	}
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		const char *argv[] = { "groff", "-man", "-ww", "-z", "-Tutf8", path, NULL };
		char *err = NULL;

		snprintf(path, sizeof(path), "%s/%s", env("KVFS_SOURCE_ROOT"), pages[i]);
		ck_assert_int_eq(run(argv, NULL, &err), 0);
		ck_assert_msg(err[0] == '\0', "%s: %s", pages[i], err);
		free(err);
	}
}
END_TEST

/* ---- mount.kvfs -------------------------------------------------------------------------- */

static const char *helper_in_build(void)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/mount.kvfs", env("KVFS_BUILD_ROOT"));
	return path;
}

START_TEST(mount_kvfs_drops_the_options_that_are_mount8s_own)
{
	const char *argv[] = { helper_in_build(), "/srv/data", "/mnt/kv", "-o",
			       "rw,defaults,auto,noauto,user,nouser,users,owner,group,_netdev,nofail,"
			       "x-systemd.automount,comment=backup,sync=always,allow_other,ro,noatime",
			       "-f", "-v", "-s", "-n", "-t", "kvfs", NULL };
	char *err = NULL, want[PATH_MAX + 128];

	ck_assert_int_eq(run(argv, NULL, &err), 0);
	snprintf(want, sizeof(want), "mount.kvfs: would run %s/kvfs /srv/data /mnt/kv -o "
		 "sync=always,allow_other,ro,noatime\n", env("KVFS_BINDIR"));
	ck_assert_str_eq(err, want);
	free(err);
}
END_TEST

START_TEST(mount_kvfs_passes_no_o_when_nothing_is_left)
{
	const char *argv[] = { helper_in_build(), "/srv/data", "/mnt/kv", "-o", "defaults,nofail",
			       "-fv", NULL };
	char *err = NULL, want[PATH_MAX + 128];

	ck_assert_int_eq(run(argv, NULL, &err), 0);
	snprintf(want, sizeof(want), "mount.kvfs: would run %s/kvfs /srv/data /mnt/kv\n",
		 env("KVFS_BINDIR"));
	ck_assert_str_eq(err, want);
	free(err);
}
END_TEST

START_TEST(mount_kvfs_usage_errors_exit_1)
{
	static const char *const cases[][4] = {
		{ NULL },
		{ "/srv/data", NULL },
		{ "/srv/data", "/mnt/kv", "extra", NULL },
		{ "/srv/data", "/mnt/kv", "-N", "/proc/1/ns/mnt" },
		{ "/srv/data", "/mnt/kv", "-x", NULL },
		{ "/srv/data", "/mnt/kv", "-o", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { helper_in_build(), cases[i][0], cases[i][1], cases[i][2],
				       cases[i][3], NULL };
		char *err = NULL;

		ck_assert_msg(run(argv, NULL, &err) == 1, "case %zu", i);
		ck_assert_msg(err[0], "case %zu: no message", i);
		free(err);
	}
}
END_TEST

/* ---- mounting through mount(8) ----------------------------------------------------------- */

static char skip_reason[256];

#define NEED_NAMESPACE()                                                                  \
	do {                                                                              \
		if (!enter_staged_namespace()) {                                          \
			fprintf(stderr, "%s: skipped: %s\n", __func__, skip_reason);      \
			return;                                                           \
		}                                                                         \
	} while (0)

/* Install into destdir and make it the system's, in a mount namespace of this test's own.
 * 1 when done, 0 (with skip_reason) when this machine cannot. */
static int enter_staged_namespace(void)
{
	char real_helper[PATH_MAX], lower[3 * PATH_MAX], *staged_bin, *staged_helper;
	const char *bindir = env("KVFS_BINDIR"), *helperdir = env("KVFS_MOUNT_HELPER_DIR");
	struct stat st;

	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "needs root (mount namespaces, mount(8))");
		return 0;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "no /dev/fuse");
		return 0;
	}
	if (stat(bindir, &st) != 0 || !S_ISDIR(st.st_mode) || !realpath(helperdir, real_helper)) {
		snprintf(skip_reason, sizeof(skip_reason), "%.80s or %.80s does not exist on this machine "
			 "(nothing to lay the staged install over)", bindir, helperdir);
		return 0;
	}
	install_to_destdir();
	if (unshare(CLONE_NEWNS) != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "unshare(CLONE_NEWNS): %s", strerror(errno));
		return 0;
	}
	/* nothing mounted from here on reaches the machine's namespace */
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	staged_bin = staged(bindir);
	staged_helper = staged(helperdir);
	ck_assert_int_eq(mount(staged_bin, bindir, NULL, MS_BIND, NULL), 0);
	snprintf(lower, sizeof(lower), "lowerdir=%s:%s", staged_helper, real_helper);
	if (mount("overlay", real_helper, "overlay", MS_RDONLY, lower) != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "cannot overlay %.100s: %s", real_helper,
			 strerror(errno));
		free(staged_bin);
		free(staged_helper);
		return 0;
	}
	free(staged_bin);
	free(staged_helper);
	/* the daemon detaches from mount.kvfs: as subreaper this test inherits it and waits */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	return 1;
}

/* The line of /proc/self/mountinfo for path, or NULL. */
static char *mountinfo_line(const char *path)
{
	char *text = NULL, *line, *save = NULL, *found = NULL, needle[PATH_MAX + 32];

	ck_assert_int_eq(tu_read_file("/proc/self/mountinfo", &text, NULL), 0);
	snprintf(needle, sizeof(needle), " %s ", path);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, needle))
			found = strdup(line);
	free(text);
	return found;
}

/* Mounted: of type fuse.kvfs with DATADIR as its source. */
static void assert_mounted_as_kvfs(void)
{
	char *line = mountinfo_line(mnt);

	ck_assert_msg(line, "%s is not mounted", mnt);
	ck_assert_msg(strstr(line, " - fuse.kvfs "), "not fuse.kvfs: %s", line);
	ck_assert_msg(strstr(line, data), "source is not %s: %s", data, line);
	free(line);
	snprintf(mounted, sizeof(mounted), "%s", mnt);
}

/* Write a file through the mount and read it back; umount(8); the daemon exits 0; the installed
 * kv_cli reads the key. */
static void use_and_unmount(const char *name, const char *text)
{
	char path[PATH_MAX + 64], *got = NULL, *out = NULL, *err = NULL, cli[PATH_MAX + 16];
	const char *umount_argv[] = { "umount", mnt, NULL };
	int status = 0, code;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", mnt, name);
	ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
	ck_assert_int_eq(tu_read_file(path, &got, NULL), 0);
	ck_assert_str_eq(got, text);
	free(got);
	code = run(umount_argv, &out, &err);
	ck_assert_msg(code == 0, "umount: %s%s", out, err);
	free(out);
	free(err);
	mounted[0] = '\0';
	/* the daemon, inherited as subreaper: it ends cleanly (a hang guard of a minute) */
	for (int i = 0;; i++) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0)
			break;
		ck_assert_msg(pid == 0, "no daemon to wait for: %s", strerror(errno));
		ck_assert_msg(i < 6000, "the daemon did not exit within a minute of umount");
		usleep(10000);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemon: status %#x", status);
	snprintf(cli, sizeof(cli), "%s/kv_cli", env("KVFS_BINDIR"));
	{
		const char *argv[] = { cli, data, "GET", name, NULL };
		char want[256];

		ck_assert_int_eq(run(argv, &out, NULL), 0);
		snprintf(want, sizeof(want), "%s\n", text);
		ck_assert_str_eq(out, want);
		free(out);
	}
}

START_TEST(mount_t_kvfs_mounts_through_the_installed_helper)
{
	const char *argv[] = { "mount", "-t", "kvfs", data, mnt, "-o", "sync=always,noatime", NULL };
	char *out = NULL, *err = NULL;
	int code;

	NEED_NAMESPACE();
	code = run(argv, &out, &err);
	ck_assert_msg(code == 0, "mount -t kvfs: exit %d: %s%s", code, out, err);
	free(out);
	free(err);
	assert_mounted_as_kvfs();
	use_and_unmount("hello", "through mount -t kvfs");
}
END_TEST

START_TEST(an_fstab_line_of_type_kvfs_mounts)
{
	char fstab[PATH_MAX + 16], line[3 * PATH_MAX], *out = NULL, *err = NULL;
	const char *argv[] = { "mount", "-T", fstab, mnt, NULL };
	int code;

	NEED_NAMESPACE();
	snprintf(fstab, sizeof(fstab), "%s/fstab", tmp);
	snprintf(line, sizeof(line), "# a store\n%s %s kvfs defaults,nofail,_netdev,x-test.opt=1,"
		 "sync=always 0 0\n", data, mnt);
	ck_assert_int_eq(tu_write_file(fstab, line, strlen(line)), 0);
	code = run(argv, &out, &err);
	ck_assert_msg(code == 0, "mount -T fstab: exit %d: %s%s", code, out, err);
	free(out);
	free(err);
	assert_mounted_as_kvfs();
	use_and_unmount("from-fstab", "through an fstab line");
}
END_TEST

START_TEST(mount_t_fuse_kvfs_still_works)
{
	const char *argv[] = { "mount", "-t", "fuse.kvfs", data, mnt, "-o", "sync=always", NULL };
	char *out = NULL, *err = NULL;
	int code;

	NEED_NAMESPACE();
	if (access("/sbin/mount.fuse3", X_OK) != 0) {
		fprintf(stderr, "%s: skipped: no /sbin/mount.fuse3 (fuse3)\n", __func__);
		return;
	}
	code = run(argv, &out, &err);
	ck_assert_msg(code == 0, "mount -t fuse.kvfs: exit %d: %s%s (mount.fuse3 finds kvfs in "
		      "mount(8)'s PATH: is %s in it?)", code, out, err, env("KVFS_BINDIR"));
	free(out);
	free(err);
	assert_mounted_as_kvfs();
	use_and_unmount("fuse-type", "through mount -t fuse.kvfs");
}
END_TEST

int main(void)
{
	Suite *su = suite_create("install");
	TCase *files = tcase_create("installed_files"), *helper = tcase_create("mount_kvfs");
	TCase *mounting = tcase_create("mount8");
	TCase *all[] = { files, helper, mounting };
	SRunner *sr;
	int failed;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tcase_add_checked_fixture(all[i], setup, teardown);
		tcase_set_timeout(all[i], 600);
		suite_add_tcase(su, all[i]);
	}
	tcase_add_test(files, meson_install_puts_the_programs_and_man_pages_and_nothing_else);
	tcase_add_test(files, the_installed_programs_run);
	tcase_add_test(files, the_unit_template_runs_the_installed_kvfs_as_a_notify_service);
	tcase_add_test(files, test_and_benchmark_programs_are_not_built_by_default);
	tcase_add_test(files, a_build_without_tests_compiles_only_the_programs);
	tcase_add_test(files, man_pages_format_without_warnings);

	tcase_add_test(helper, mount_kvfs_drops_the_options_that_are_mount8s_own);
	tcase_add_test(helper, mount_kvfs_passes_no_o_when_nothing_is_left);
	tcase_add_test(helper, mount_kvfs_usage_errors_exit_1);

	tcase_add_test(mounting, mount_t_kvfs_mounts_through_the_installed_helper);
	tcase_add_test(mounting, an_fstab_line_of_type_kvfs_mounts);
	tcase_add_test(mounting, mount_t_fuse_kvfs_still_works);

	sr = srunner_create(su);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
