/* Exclusive open: a store is held by one kv_open at a time, in this process or another; and
 * kv_cli waiting for a kvfs daemon that is still closing the store (mount/lockwait.h). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv.h"
#include "mountutil.h"
#include "testutil.h"

static char dir[256];

static void make_dir(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/kvfs-lock.XXXXXX", t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	strcat(dir, "/store");
}

static void remove_dir(void)
{
	char cmd[600];
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct kv_options real_options(void)
{
	struct kv_options o;
	kv_options_default(&o);
	o.sync = KV_SYNC_NONE;
	o.segment_bytes = 1 << 20;
	return o;
}

START_TEST(second_open_in_same_process_is_refused_naming_the_holder)
{
	make_dir();
	struct kv_options o = real_options();
	struct kv *a, *b = NULL;
	struct kv_report rep;
	ck_assert_int_eq(kv_open(&a, dir, &o, &rep), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_open(&b, dir, &o, &rep), -EWOULDBLOCK);
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	ck_assert_int_eq(rep.problem, KV_PROBLEM_LOCKED);
	ck_assert_str_eq(rep.holder, pid);
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), pid));
	ck_assert_int_eq(kv_close(a), 0);
	/* released on close */
	ck_assert_int_eq(kv_open(&b, dir, &o, &rep), 0);
	void *v;
	uint64_t len;
	ck_assert_int_eq(kv_get(b, "k", 1, &v, &len), 0);
	free(v);
	ck_assert_int_eq(kv_close(b), 0);
	remove_dir();
}
END_TEST

START_TEST(another_process_is_refused_and_nothing_on_disk_changes)
{
	make_dir();
	struct kv_options o = real_options();
	struct kv *a;
	ck_assert_int_eq(kv_open(&a, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_flush(a), 0);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "cd '%s' && ls -l --time-style=+%%s.%%N && md5sum *", dir);
	FILE *p = popen(cmd, "r");
	char before[4096] = "", after[4096] = "";
	ck_assert_uint_gt(fread(before, 1, sizeof before - 1, p), 0);
	pclose(p);
	pid_t child = fork();
	if (child == 0) {
		struct kv *b;
		struct kv_report rep;
		int rc = kv_open(&b, dir, &o, &rep);
		_exit(rc == -EWOULDBLOCK && rep.problem == KV_PROBLEM_LOCKED ? 0 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p = popen(cmd, "r");
	ck_assert_uint_gt(fread(after, 1, sizeof after - 1, p), 0);
	pclose(p);
	ck_assert_str_eq(before, after);
	ck_assert_int_eq(kv_close(a), 0);
	remove_dir();
}
END_TEST

START_TEST(store_directory_is_0700_and_files_0600)
{
	make_dir();
	struct kv_options o = real_options();
	struct kv *a;
	ck_assert_int_eq(kv_open(&a, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_snapshot(a), 0);
	ck_assert_int_eq(kv_close(a), 0);
	struct stat st;
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	char path[600];
	const char *files[] = { "LOCK", "wal-0000000000000001.log", "ckpt-0000000000000001.kvc", "space.reserve" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		ck_assert_msg(stat(path, &st) == 0, "%s missing", path);
		ck_assert_uint_eq(st.st_mode & 0777, 0600);
	}
	remove_dir();
}
END_TEST

/* ---- kv_cli waits for a daemon that is closing the store ------------------------------------ */

#define HANG_GUARD_MS 120000 /* a hang guard, not a timing check */


/* A store holding k = v, closed. */
static void make_store(void)
{
	struct kv_options o = real_options();
	struct kv *a;

	make_dir();
	ck_assert_int_eq(kv_open(&a, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_close(a), 0);
}

/* kv_cli DIR GET k, started: its stdout and stderr as pipes. */
static pid_t start_get(int *out_fd, int *err_fd)
{
	int o[2], e[2];
	pid_t pid;

	ck_assert_int_eq(pipe(o), 0);
	ck_assert_int_eq(pipe(e), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(o[1], 1) < 0 || dup2(e[1], 2) < 0)
			_exit(127);
		close(o[0]);
		close(o[1]);
		close(e[0]);
		close(e[1]);
		execl(mt_kv_cli(), mt_kv_cli(), dir, "GET", "k", (char *)NULL);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	*out_fd = o[0];
	*err_fd = e[0];
	return pid;
}

static int exit_code(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "kv_cli died (status %#x)", status);
	return WEXITSTATUS(status);
}

/* kv_cli DIR GET k run to its end: exit code, stderr. */
static int run_get(char **err)
{
	const char *argv[] = { mt_kv_cli(), dir, "GET", "k", NULL };
	int status = 0;

	ck_assert_int_eq(tu_run(argv, NULL, NULL, err, &status), 0);
	ck_assert_msg(WIFEXITED(status), "kv_cli died (status %#x)", status);
	return WEXITSTATUS(status);
}

START_TEST(kv_cli_waits_for_a_daemon_closing_the_store_then_opens_it)
{
	char line[1024], want[128];
	int out_fd, err_fd;
	pid_t holder, cli_pid;

	make_store();
	holder = mt_hold_lock(dir, 1);
	setenv("KVFS_LOCK_WAIT", "3600", 1); /* the release below, not the bound, ends the wait */
	cli_pid = start_get(&out_fd, &err_fd);
	/* it says once that it waits, and for whom; then the holder lets go */
	ck_assert_int_gt(tu_read_line(err_fd, line, sizeof(line), HANG_GUARD_MS), 0);
	snprintf(want, sizeof(want), ": waiting for process %ld to finish closing the store "
		 "(at most 3600 s)", (long)holder);
	ck_assert_msg(strstr(line, want), "said: %s", line);
	mt_release_lock(holder);
	ck_assert_int_eq(tu_read_line(out_fd, line, sizeof(line), HANG_GUARD_MS), 1);
	ck_assert_str_eq(line, "v");
	ck_assert_int_eq(tu_read_line(err_fd, line, sizeof(line), HANG_GUARD_MS), -ENODATA);
	ck_assert_int_eq(exit_code(cli_pid), 0);
	close(out_fd);
	close(err_fd);
	remove_dir();
}
END_TEST

START_TEST(kv_cli_gives_up_waiting_at_the_bound_with_one_line_saying_so)
{
	char *err = NULL, want[128];
	pid_t holder;

	make_store();
	holder = mt_hold_lock(dir, 1); /* never lets go while kv_cli waits */
	setenv("KVFS_LOCK_WAIT", "1", 1);
	ck_assert_int_eq(run_get(&err), 1);
	snprintf(want, sizeof(want), "store is still locked by process %ld (", (long)holder);
	ck_assert_msg(strstr(err, want) && strstr(err, "after waiting 1 s for it to be closed; "
						  "KVFS_LOCK_WAIT=SECONDS waits longer\n"),
		      "said: %s", err);
	ck_assert_msg(strstr(err, "waiting for process"), "said: %s", err);
	free(err);
	mt_release_lock(holder);
	remove_dir();
}
END_TEST

START_TEST(kv_cli_does_not_wait_for_a_holder_that_is_no_daemon)
{
	char *err = NULL, want[128];
	pid_t holder;

	make_store();
	holder = mt_hold_lock(dir, 0); /* another kv_cli, say: it lets go when its user is done */
	setenv("KVFS_LOCK_WAIT", "3600", 1); /* a wait would hang the test until its timeout */
	ck_assert_int_eq(run_get(&err), 1);
	snprintf(want, sizeof(want), "store is locked by process %ld (", (long)holder);
	ck_assert_msg(strstr(err, want) && strstr(err, "only one process may open it"), "said: %s",
		      err);
	ck_assert_msg(!strstr(err, "waiting"), "said: %s", err);
	free(err);
	mt_release_lock(holder);
	remove_dir();
}
END_TEST

START_TEST(a_lock_wait_bound_out_of_range_is_refused_naming_the_range)
{
	char *err = NULL;

	make_store();
	setenv("KVFS_LOCK_WAIT", "3601", 1);
	ck_assert_int_eq(run_get(&err), 1);
	ck_assert_str_eq(err, "kv_cli: KVFS_LOCK_WAIT='3601': seconds to wait for a closing daemon's "
			 "lock, a number from 0 to 3600 (default 30)\n");
	free(err);
	setenv("KVFS_LOCK_WAIT", "5s", 1);
	ck_assert_int_eq(run_get(&err), 1);
	ck_assert_msg(strstr(err, "'5s'") && strstr(err, "from 0 to 3600"), "said: %s", err);
	free(err);
	remove_dir();
}
END_TEST

int main(void)
{
	umask(022);
	Suite *su = suite_create("lock");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, second_open_in_same_process_is_refused_naming_the_holder);
	tcase_add_test(tc, another_process_is_refused_and_nothing_on_disk_changes);
	tcase_add_test(tc, store_directory_is_0700_and_files_0600);
	suite_add_tcase(su, tc);
	TCase *wait = tcase_create("wait");
	tcase_set_timeout(wait, 300);
	tcase_add_test(wait, kv_cli_waits_for_a_daemon_closing_the_store_then_opens_it);
	tcase_add_test(wait, kv_cli_gives_up_waiting_at_the_bound_with_one_line_saying_so);
	tcase_add_test(wait, kv_cli_does_not_wait_for_a_holder_that_is_no_daemon);
	tcase_add_test(wait, a_lock_wait_bound_out_of_range_is_refused_naming_the_range);
	suite_add_tcase(su, wait);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
