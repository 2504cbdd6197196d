/* test_live.c — kv_cli on a mounted store (through the daemon's control socket), who may use
 * that socket, stale sockets, `kvfs --unmount` waiting for the close, the daemon's statistics
 * and sd_notify. Each test mounts a fresh store (mountutil.h) and runs the real programs. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

/* kv_cli with args (NULL-terminated, after the program), stdin; its exit code, stdout, stderr. */
static int cli_run(const char *const *args, const char *in, char **out, char **err)
{
	const char *argv[32];
	int n = 0, status = 0, rc;

	argv[n++] = mt_kv_cli();
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	rc = tu_run(argv, in, out, err, &status);
	ck_assert_msg(rc == 0, "running kv_cli: %s", strerror(-rc));
	ck_assert_msg(WIFEXITED(status), "kv_cli died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* kvfs --unmount MNT: its exit code and stderr. */
static int unmount_waiting(char **err)
{
	const char *args[] = { "--unmount", mt_mnt, NULL };

	return run_kvfs(args, err);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- kv_cli on a mounted store ------------------------------------------------------------- */

START_TEST(a_put_through_kv_cli_is_read_through_the_mount)
{
	NEED_MOUNT();
	const char *put[] = { mt_data, "PUT", "greeting", "hello", "world", NULL };
	char *out = NULL, *err = NULL;

	mount_store(NULL);
	ck_assert_int_eq(cli_run(put, NULL, &out, &err), 0);
	ck_assert_str_eq(out, "OK\n");
	ck_assert_str_eq(err, "");
	assert_file(in_mnt("greeting"), "hello world");
	free(out);
	free(err);
	unmount_store();
}
END_TEST

/* The kernel caches names, attributes and pages for long: what kv_cli changes through the
 * daemon must show at once all the same — a new value of a file just read, a deleted file, a
 * file in a directory the kernel had looked up as missing. */
START_TEST(what_kv_cli_changes_shows_through_the_mount_at_once_despite_the_kernels_cache)
{
	NEED_MOUNT();
	const char *put1[] = { mt_data, "PUT", "f", "one", NULL };
	const char *put2[] = { mt_data, "PUT", "f", "second value", NULL };
	const char *del[] = { mt_data, "DEL", "f", NULL };
	const char *deep[] = { mt_data, "PUT", "d/e", "deep", NULL };
	char *out = NULL, *err = NULL;
	struct stat st;

	mount_store(NULL);
	ck_assert_int_eq(cli_run(put1, NULL, &out, &err), 0);
	free(out);
	free(err);
	assert_file(in_mnt("f"), "one"); /* now in the kernel's caches */
	ck_assert_int_eq(stat(in_mnt("f"), &st), 0);
	ck_assert_int_eq(cli_run(put2, NULL, &out, &err), 0);
	free(out);
	free(err);
	assert_file(in_mnt("f"), "second value");
	ck_assert_int_eq(cli_run(del, NULL, &out, &err), 0);
	free(out);
	free(err);
	ck_assert_int_eq(stat(in_mnt("f"), &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(stat(in_mnt("d"), &st), -1); /* the kernel may remember "d" as missing */
	ck_assert_int_eq(cli_run(deep, NULL, &out, &err), 0);
	free(out);
	free(err);
	assert_file(in_mnt("d/e"), "deep");
	unmount_store();
}
END_TEST

START_TEST(a_file_written_through_the_mount_is_got_by_kv_cli_quoted)
{
	NEED_MOUNT();
	const char *get[] = { mt_data, "GET", "dir/f", NULL };
	char *out = NULL;

	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("dir"), 0755), 0);
	put_file(in_mnt("dir/f"), "a\nb\n");
	ck_assert_int_eq(cli_run(get, NULL, &out, NULL), 0);
	ck_assert_str_eq(out, "\"a\\nb\\n\"\n");
	free(out);
	unmount_store();
}
END_TEST

/* The same script on a store kv_cli opens itself and on a mounted one: the same bytes out and
 * the same exit status (quoting, LIST, errors, FLUSH, SNAP, EXIT). */
START_TEST(the_shell_through_the_daemon_answers_byte_for_byte_like_a_local_one)
{
	NEED_MOUNT();
	static const char script[] =
		"PUT a 1\nPUT \"k y\" \"x\\ty\"\nGET \"k y\"\nget a\nGET missing\nDEL a\nDEL a\n"
		"PUT b  two  spaces \nLIST\nLIST \"\" 1\nSIZE\nbogus\nGET\nFLUSH\nSNAP\nEXIT\n"
		"GET b\n";
	char local[PATH_MAX + 16], *lout = NULL, *mout = NULL;
	const char *largs[] = { local, NULL }, *margs[] = { mt_data, NULL };
	int lrc, mrc;

	snprintf(local, sizeof(local), "%s/local", mt_tmp);
	lrc = cli_run(largs, script, &lout, NULL);
	mount_store(NULL);
	mrc = cli_run(margs, script, &mout, NULL);
	ck_assert_str_eq(mout, lout);
	ck_assert_int_eq(mrc, lrc);
	ck_assert_int_eq(mrc, 1); /* bogus and GET without a key were answered ERR */
	free(lout);
	free(mout);
	unmount_store();
}
END_TEST

/* Quoted one-shot arguments are decoded once, by whoever runs the command. */
START_TEST(one_shot_quoted_arguments_through_the_daemon_are_decoded_once)
{
	NEED_MOUNT();
	char local[PATH_MAX + 16], *lout = NULL, *mout = NULL;
	const char *lput[] = { local, "PUT", "\"k\\x41\"", "\"\\\"q\\\"\"", NULL };
	const char *lget[] = { local, "GET", "kA", NULL };
	const char *mput[] = { mt_data, "PUT", "\"k\\x41\"", "\"\\\"q\\\"\"", NULL };
	const char *mget[] = { mt_data, "GET", "kA", NULL };

	snprintf(local, sizeof(local), "%s/local", mt_tmp);
	ck_assert_int_eq(cli_run(lput, NULL, &lout, NULL), 0);
	free(lout);
	ck_assert_int_eq(cli_run(lget, NULL, &lout, NULL), 0);
	ck_assert_str_eq(lout, "\"\\\"q\\\"\"\n"); /* the value is "q" with its quotes */
	mount_store(NULL);
	ck_assert_int_eq(cli_run(mput, NULL, &mout, NULL), 0);
	free(mout);
	ck_assert_int_eq(cli_run(mget, NULL, &mout, NULL), 0);
	ck_assert_str_eq(mout, lout);
	assert_file(in_mnt("kA"), "\"q\"");
	free(lout);
	free(mout);
	unmount_store();
}
END_TEST

START_TEST(a_one_shot_command_answered_err_through_the_daemon_exits_1)
{
	NEED_MOUNT();
	const char *flush[] = { mt_data, "FLUSH", NULL }, *bad[] = { mt_data, "LIST", "p", "x", NULL };
	char *out = NULL, *err = NULL;

	mount_store(NULL);
	ck_assert_int_eq(cli_run(flush, NULL, &out, NULL), 0);
	ck_assert_str_eq(out, "OK\n");
	free(out);
	/* a usage error is found before anything is reached: exit 2 as without a daemon */
	ck_assert_int_eq(cli_run(bad, NULL, &out, &err), 2);
	free(out);
	free(err);
	unmount_store();
}
END_TEST

START_TEST(snap_through_the_daemon_writes_a_checkpoint_of_the_live_store)
{
	NEED_MOUNT();
	const char *put[] = { mt_data, "PUT", "k", "v", NULL }, *snap[] = { mt_data, "SNAP", NULL };
	char *out = NULL;
	uint64_t before;

	mount_store(NULL);
	ck_assert_int_eq(cli_run(put, NULL, &out, NULL), 0);
	free(out);
	before = stat_of("snapshots");
	ck_assert_int_eq(cli_run(snap, NULL, &out, NULL), 0);
	ck_assert_str_eq(out, "OK\n");
	free(out);
	ck_assert_uint_eq(stat_of("snapshots"), before + 1);
	ck_assert_uint_eq(stat_of("snapshot_lsn"), stat_of("last_lsn"));
	unmount_store();
}
END_TEST

/* ---- who may connect --------------------------------------------------------------------- */

/* kv_cli as uid/gid 65534 (nobody), by setpriv. */
static int cli_as_nobody(const char *const *args, char **out, char **err)
{
	const char *argv[32];
	int n = 0, status = 0, rc;

	argv[n++] = "setpriv";
	argv[n++] = "--reuid=65534";
	argv[n++] = "--regid=65534";
	argv[n++] = "--clear-groups";
	argv[n++] = mt_kv_cli();
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	rc = tu_run(argv, NULL, out, err, &status);
	ck_assert_msg(rc == 0, "running setpriv: %s", strerror(-rc));
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void open_up(const char *path, mode_t mode)
{
	ck_assert_msg(chmod(path, mode) == 0, "chmod %s: %s", path, strerror(errno));
}

/* The socket's permissions opened up by hand: the daemon still checks who is connecting. */
START_TEST(a_peer_of_another_user_is_refused_by_its_credentials_in_one_line)
{
	NEED_MOUNT();
	const char *get[] = { mt_data, "GET", "k", NULL };
	char sock[PATH_MAX + 32], *out = NULL, *err = NULL;

	if (geteuid() != 0) {
		fprintf(stderr, "%s: skipped: needs root to run as another user\n", __func__);
		return;
	}
	mount_store(NULL);
	snprintf(sock, sizeof(sock), "%s/kvfs.sock", mt_data);
	open_up(mt_tmp, 0755);
	open_up(mt_data, 0755);
	open_up(sock, 0666);
	ck_assert_int_eq(cli_as_nobody(get, &out, &err), 1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(count_lines(err), 1);
	ck_assert_msg(strstr(err, "refused") && strstr(err, "uid 65534"), "said: %s", err);
	free(out);
	free(err);
	unmount_store();
}
END_TEST

/* As the daemon leaves it: the socket (0600) turns another user away before the daemon does. */
START_TEST(the_socket_file_admits_only_the_daemons_user)
{
	NEED_MOUNT();
	const char *get[] = { mt_data, "GET", "k", NULL };
	char sock[PATH_MAX + 32], *out = NULL, *err = NULL;
	struct stat st;

	if (geteuid() != 0) {
		fprintf(stderr, "%s: skipped: needs root to run as another user\n", __func__);
		return;
	}
	mount_store(NULL);
	snprintf(sock, sizeof(sock), "%s/kvfs.sock", mt_data);
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	open_up(mt_tmp, 0755);
	open_up(mt_data, 0755);
	ck_assert_int_eq(cli_as_nobody(get, &out, &err), 1);
	ck_assert_int_eq(count_lines(err), 1);
	ck_assert_msg(strstr(err, "refused") && strstr(err, "Permission denied"), "said: %s", err);
	free(out);
	free(err);
	unmount_store();
}
END_TEST

/* ---- stale sockets and locked stores ------------------------------------------------------- */

START_TEST(a_socket_left_by_a_killed_daemon_is_ignored_by_kv_cli_and_replaced_by_the_next_mount)
{
	NEED_MOUNT();
	const char *put[] = { mt_data, "PUT", "k", "v1", NULL };
	const char *put2[] = { mt_data, "PUT", "k", "v2", NULL };
	char sock[PATH_MAX + 32], *out = NULL, *err = NULL;
	struct stat st;
	int status;

	mount_store(NULL);
	ck_assert_int_eq(kill(mt_daemon_pid, SIGKILL), 0);
	status = wait_daemon();
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(fusermount("-uz", mt_mnt), 0);
	snprintf(sock, sizeof(sock), "%s/kvfs.sock", mt_data);
	ck_assert_int_eq(lstat(sock, &st), 0); /* stale: nobody answers there */
	/* kv_cli opens the store itself */
	ck_assert_int_eq(cli_run(put, NULL, &out, &err), 0);
	ck_assert_str_eq(out, "OK\n");
	free(out);
	free(err);
	/* the next daemon binds a fresh socket and answers on it */
	mount_store(NULL);
	ck_assert_int_eq(cli_run(put2, NULL, &out, &err), 0);
	ck_assert_str_eq(out, "OK\n");
	assert_file(in_mnt("k"), "v2");
	free(out);
	free(err);
	unmount_store();
}
END_TEST

START_TEST(a_store_locked_by_another_kv_cli_says_no_daemon_answers)
{
	NEED_MOUNT();
	const char *shell[] = { mt_kv_cli(), mt_data, NULL };
	const char *get[] = { mt_data, "GET", "k", NULL };
	char line[64], *out = NULL, *err = NULL;
	int in_fd, out_fd;
	pid_t pid;

	ck_assert_int_eq(tu_spawn(shell, &in_fd, &out_fd, &pid), 0);
	ck_assert_int_eq(tu_write_all(in_fd, "SIZE\n", 5), 0);
	ck_assert_int_ge(tu_read_line(out_fd, line, sizeof(line), 60000), 0); /* it holds the LOCK */
	ck_assert_int_eq(cli_run(get, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "locked by process") && strstr(err, "no kvfs daemon answers"),
		      "said: %s", err);
	free(out);
	free(err);
	close(in_fd);
	close(out_fd);
	ck_assert_int_eq(tu_kill(pid, NULL), 0);
}
END_TEST

START_TEST(check_on_a_mounted_store_says_where_it_is_mounted_and_by_which_pid)
{
	NEED_MOUNT();
	const char *check[] = { "--check", mt_data, NULL };
	char real[PATH_MAX], pid[32], *out = NULL, *err = NULL;

	mount_store(NULL);
	ck_assert_ptr_nonnull(realpath(mt_mnt, real));
	snprintf(pid, sizeof(pid), "pid %ld", (long)mt_daemon_pid);
	ck_assert_int_eq(cli_run(check, NULL, &out, &err), 2);
	ck_assert_msg(strstr(err, real) && strstr(err, pid), "said: %s", err);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	unmount_store();
}
END_TEST

/* ---- backup through the daemon ------------------------------------------------------------- */

static atomic_int writer_stop; /* the main thread tells the writer to stop */

static void *writer(void *arg)
{
	char path[PATH_MAX * 2], text[64];
	long n = 0;

	(void)arg;
	while (!atomic_load(&writer_stop)) {
		snprintf(path, sizeof(path), "%s", in_mnt("w"));
		snprintf(text, sizeof(text), "round %ld", n++);
		if (tu_write_file(path, text, strlen(text)) != 0)
			return (void *)1;
	}
	return NULL;
}

START_TEST(a_backup_of_a_mounted_store_runs_in_the_daemon_while_writers_go_on)
{
	NEED_MOUNT();
	char dest[PATH_MAX + 16], *out = NULL, *err = NULL;
	const char *backup[] = { "--backup", mt_data, dest, NULL };
	const char *get[] = { dest, "GET", "kept", NULL };
	pthread_t th;
	void *wrc;

	snprintf(dest, sizeof(dest), "%s/copy", mt_tmp);
	mount_store(NULL);
	put_file(in_mnt("kept"), "before the backup");
	atomic_store(&writer_stop, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, writer, NULL), 0);
	ck_assert_int_eq(cli_run(backup, NULL, &out, &err), 0);
	atomic_store(&writer_stop, 1);
	ck_assert_int_eq(pthread_join(th, &wrc), 0);
	ck_assert_ptr_null(wrc);
	ck_assert_msg(strstr(out, "status: verified"), "backup said: %s / %s", out, err);
	free(out);
	free(err);
	ck_assert_int_eq(cli_run(get, NULL, &out, &err), 0);
	ck_assert_str_eq(out, "before the backup\n");
	free(out);
	free(err);
	unmount_store();
}
END_TEST

/* ---- unmount that waits --------------------------------------------------------------------- */

/* The LOCK is released when kvfs --unmount returns: a strict open right after succeeds, every
 * round, and the daemon has ended cleanly. */
START_TEST(unmount_returns_once_the_lock_is_released_every_round_of_20)
{
	NEED_MOUNT();
	const char *size[] = { "-o", "recovery=strict", mt_data, "SIZE", NULL };
	char *out = NULL, *err = NULL, big[1 << 16];
	unsigned long long first = 0;

	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	for (int round = 0; round < 20; round++) {
		char name[32];

		mount_store(NULL);
		for (int i = 0; i < 32; i++) {
			snprintf(name, sizeof(name), "r%d-%d", round, i);
			put_file(in_mnt(name), big);
		}
		ck_assert_msg(unmount_waiting(&err) == 0, "round %d: %s", round, err);
		ck_assert_str_eq(err, "");
		free(err);
		ck_assert_msg(cli_run(size, NULL, &out, &err) == 0, "round %d: strict open: %s", round,
			      err);
		/* every file of every round (and the keys the tree keeps for itself: the root's
		 * entry, the inode numbers, as after the first round) */
		if (!round)
			first = strtoull(out, NULL, 10);
		ck_assert_uint_ge(first, 32);
		ck_assert_uint_eq(strtoull(out, NULL, 10), first + 32u * (unsigned)round);
		free(out);
		free(err);
		assert_clean_exit(wait_daemon(), "kvfs --unmount");
		ck_assert(!is_mounted(mt_mnt));
	}
}
END_TEST

START_TEST(unmount_of_a_busy_mount_says_so_and_leaves_it_mounted)
{
	NEED_MOUNT();
	char *err = NULL;
	int fd;

	mount_store(NULL);
	put_file(in_mnt("f"), "x");
	fd = open(in_mnt("f"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unmount_waiting(&err), 1);
	ck_assert_msg(strstr(err, "busy"), "said: %s", err);
	free(err);
	ck_assert(is_mounted(mt_mnt));
	assert_file(in_mnt("f"), "x");
	close(fd);
	ck_assert_int_eq(unmount_waiting(&err), 0);
	free(err);
	assert_clean_exit(wait_daemon(), "kvfs --unmount");
}
END_TEST

START_TEST(unmount_of_a_directory_that_is_no_kvfs_mount_fails_with_a_reason)
{
	NEED_MOUNT();
	char *err = NULL;

	ck_assert_int_eq(unmount_waiting(&err), 1);
	ck_assert_msg(strstr(err, "not a mounted kvfs store"), "said: %s", err);
	free(err);
}
END_TEST

/* ---- the common mount mistakes, in words ------------------------------------------------- */

/* Whether /etc/fuse.conf lets users other than root use allow_other (a line "user_allow_other"). */
static int fuse_conf_allows_other(void)
{
	char line[256];
	int yes = 0;
	FILE *f = fopen("/etc/fuse.conf", "r");

	while (f && !yes && fgets(line, sizeof(line), f)) {
		const char *w = line + strspn(line, " \t");

		yes = strncmp(w, "user_allow_other", 16) == 0 &&
		      (w[16] == '\0' || strchr(" \t\r\n", w[16]));
	}
	if (f)
		fclose(f);
	return yes;
}

START_TEST(allow_other_by_a_user_without_user_allow_other_names_etc_fuse_conf)
{
	NEED_MOUNT();
	const char *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			       mt_kvfs, mt_data, mt_mnt, "-o", "allow_other", NULL };
	char *err = NULL;
	int status = 0;

	if (fuse_conf_allows_other()) {
		fprintf(stderr, "%s: skipped: /etc/fuse.conf has user_allow_other here\n", __func__);
		return;
	}
	ck_assert_int_eq(tu_run(argv, NULL, NULL, &err, &status), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
	ck_assert_str_eq(err, "kvfs: -o allow_other: a user other than root may use it only when "
			 "/etc/fuse.conf has a line 'user_allow_other' (it has none); add that line "
			 "as root, or mount as root\n");
	ck_assert(!is_mounted(mt_mnt));
	ck_assert_int_eq(access(mt_data, F_OK), -1); /* said before anything was made */
	free(err);
}
END_TEST

START_TEST(every_mount_option_out_of_range_is_refused_naming_its_range)
{
	static const char *const cases[][2] = {
		{ "threads=0", "kvfs: -o threads=0: out of range; threads takes a whole number from 1 "
			       "to 1024 (default 16)\n" },
		{ "threads=1025", "threads takes a whole number from 1 to 1024" },
		{ "threads=many", "kvfs: invalid parameter in option `threads=many'; threads takes a "
				  "whole number from 1 to 1024 (default 16)\n" },
		{ "entry_timeout=-1", "kvfs: -o entry_timeout=-1: out of range; entry_timeout takes "
				      "seconds, a number from 0 to 1000000000 (default 86400)\n" },
		{ "attr_timeout=nan", "attr_timeout takes seconds, a number from 0 to 1000000000" },
		{ "negative_timeout=soon", "negative_timeout takes seconds, a number from 0 to " },
		{ "commit_ms=0", "'commit_ms' (a whole number from 1 to 60000)" },
		{ "segment_bytes=1", "'segment_bytes' (a size in bytes from 4K to 1T" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { mt_data, mt_mnt, "-o", cases[i][0], NULL };
		char *err = NULL;

		ck_assert_int_eq(run_kvfs(args, &err), 2);
		ck_assert_msg(strstr(err, cases[i][1]), "-o %s: said: %s", cases[i][0], err);
		free(err);
	}
	ck_assert_int_eq(access(mt_data, F_OK), -1);
}
END_TEST

/* ---- a mount waits for the previous daemon to close the store --------------------------- */

START_TEST(a_mount_waits_for_the_previous_daemon_to_finish_closing_the_store)
{
	NEED_MOUNT();
	const char *put[] = { mt_data, "PUT", "k", "before", NULL };
	const char *argv[] = { mt_kvfs, mt_data, mt_mnt, NULL };
	char line[PATH_MAX + 256], want[PATH_MAX + 128], *out = NULL;
	int e[2], status;
	pid_t holder, kvfs;

	ck_assert_int_eq(cli_run(put, NULL, &out, NULL), 0);
	free(out);
	holder = mt_hold_lock(mt_data, 1);
	setenv("KVFS_LOCK_WAIT", "3600", 1); /* the release below, not the bound, ends the wait */
	ck_assert_int_eq(pipe(e), 0);
	kvfs = fork();
	ck_assert_int_ge(kvfs, 0);
	if (kvfs == 0) {
		if (dup2(e[1], 2) < 0)
			_exit(127);
		close(e[0]);
		close(e[1]); /* the daemon must not keep the pipe open past the start-up */
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(e[1]);
	ck_assert_int_gt(tu_read_line(e[0], line, sizeof(line), 120000), 0); /* a hang guard */
	snprintf(want, sizeof(want), "kvfs: %s: waiting for process %ld to finish closing the store",
		 mt_data, (long)holder);
	ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "said: %s", line);
	ck_assert(!is_mounted(mt_mnt));
	mt_release_lock(holder);
	/* it mounts, saying nothing more, and exits 0 once the mount is ready */
	ck_assert_int_eq(tu_read_line(e[0], line, sizeof(line), 120000), -ENODATA);
	close(e[0]);
	ck_assert_int_eq(waitpid(kvfs, &status, 0), kvfs);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kvfs: status %#x", status);
	ck_assert(is_mounted(mt_mnt));
	mt_daemon_pid = lock_pid(mt_data);
	assert_file(in_mnt("k"), "before");
	unmount_store();
}
END_TEST

START_TEST(a_mount_gives_up_waiting_at_the_bound_and_mounts_nothing)
{
	NEED_MOUNT();
	const char *put[] = { mt_data, "PUT", "k", "v", NULL };
	const char *args[] = { mt_data, mt_mnt, NULL };
	char want[128], *out = NULL, *err = NULL;
	pid_t holder;

	ck_assert_int_eq(cli_run(put, NULL, &out, NULL), 0);
	free(out);
	holder = mt_hold_lock(mt_data, 1); /* never lets go while kvfs waits */
	setenv("KVFS_LOCK_WAIT", "1", 1);
	ck_assert_int_eq(run_kvfs(args, &err), 1);
	snprintf(want, sizeof(want), "store is still locked by process %ld (", (long)holder);
	ck_assert_msg(strstr(err, "waiting for process") && strstr(err, want) &&
		      strstr(err, "after waiting 1 s"), "said: %s", err);
	ck_assert(!is_mounted(mt_mnt));
	free(err);
	setenv("KVFS_LOCK_WAIT", "-1", 1);
	ck_assert_int_eq(run_kvfs(args, &err), 2);
	ck_assert_msg(strstr(err, "KVFS_LOCK_WAIT='-1'") && strstr(err, "from 0 to 3600"),
		      "said: %s", err);
	free(err);
	mt_release_lock(holder);
}
END_TEST

/* ---- a daemon that dies with a thread stuck in the kernel on its own mount ---------------- */

/* The state letter and wait channel of task tid of process pid; 0, or -1 when it is gone. */
static int task_state(pid_t pid, pid_t tid, char *state, char *wchan, size_t len)
{
	char path[96], *stat = NULL, *w = NULL, *paren;
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (tu_read_file(path, &stat, NULL) < 0)
		goto out;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, (int)tid);
	if (tu_read_file(path, &w, NULL) < 0)
		goto out;
	paren = strrchr(stat, ')'); /* the name may hold anything: the state follows its ") " */
	if (!paren || !paren[1] || !paren[2])
		goto out;
	*state = paren[2];
	snprintf(wchan, len, "%s", w);
	rc = 0;
out:
	free(stat);
	free(w);
	return rc;
}

/* Stops (ptrace) the threads of pid that wait for a request from the kernel and are not in
 * tids[0..n) yet; the new ones are added to tids. The new count. */
static int stop_request_readers(pid_t pid, pid_t *tids, int n, int max)
{
	char path[64], state, wchan[128];
	struct dirent *e;
	int status, i;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) && n < max) {
		pid_t tid = (pid_t)atoi(e->d_name);

		for (i = 0; i < n && tids[i] != tid; i++)
			;
		if (tid <= 0 || i < n || task_state(pid, tid, &state, wchan, sizeof(wchan)) < 0 ||
		    strcmp(wchan, "fuse_dev_do_read") != 0)
			continue;
		ck_assert_int_eq(ptrace(PTRACE_SEIZE, tid, NULL, NULL), 0);
		ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
		ck_assert_int_eq(waitpid(tid, &status, __WALL), tid);
		tids[n++] = tid;
	}
	closedir(d);
	return n;
}

/* The tid of pid's thread called name, or -1. */
static pid_t thread_named(pid_t pid, const char *name)
{
	char path[300], *comm = NULL;
	struct dirent *e;
	pid_t found = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while (found < 0 && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		if (e->d_name[0] != '.' && tu_read_file(path, &comm, NULL) >= 0 &&
		    strncmp(comm, name, strlen(name)) == 0 && comm[strlen(name)] == '\n')
			found = (pid_t)atoi(e->d_name);
		free(comm);
		comm = NULL;
	}
	closedir(d);
	return found;
}

struct creator {
	const char *path;
	atomic_int tid, done;
	int err; /* open's errno, 0 when it succeeded */
};

static void *create_file(void *arg)
{
	struct creator *c = arg;
	int fd;

	atomic_store(&c->tid, (int)gettid());
	fd = open(c->path, O_CREAT | O_WRONLY, 0644);
	c->err = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	atomic_store(&c->done, 1);
	return NULL;
}

/* Polls until task tid of pid is in state want (and waits in want_wchan, unless NULL): a hang
 * guard of a minute, not a timing check. */
static void wait_for_state(pid_t pid, pid_t tid, char want, const char *want_wchan,
			   const char *what)
{
	char state = 0, wchan[128] = "";

	for (int i = 0; i < 6000; i++) {
		if (task_state(pid, tid, &state, wchan, sizeof(wchan)) == 0 && state == want &&
		    (!want_wchan || strcmp(wchan, want_wchan) == 0))
			return;
		usleep(10000);
	}
	ck_abort_msg("%s: state %c in %s after a minute", what, state, wchan);
}

/* wait_for_state for the notifier, saying on the hang guard what kv_cli did meanwhile (a flake
 * under ThreadSanitizer: the notifier still idle on its queue after a minute, cause not found). */
static void wait_for_notifier(pid_t daemon, pid_t notifier, pid_t cli, int cli_out)
{
	char state = 0, wchan[128] = "", said[512] = "";
	int status = 0, exited;
	ssize_t got;

	for (int i = 0; i < 6000; i++) {
		if (task_state(daemon, notifier, &state, wchan, sizeof(wchan)) == 0 && state == 'D')
			return;
		usleep(10000);
	}
	exited = waitpid(cli, &status, WNOHANG) == cli;
	if (fcntl(cli_out, F_SETFL, fcntl(cli_out, F_GETFL) | O_NONBLOCK) == 0 &&
	    (got = read(cli_out, said, sizeof(said) - 1)) > 0)
		said[got] = 0;
	ck_abort_msg("the notifier: state %c in %s after a minute; kv_cli %s (wait status %#x), "
		     "its output: '%s'", state, wchan, exited ? "had exited" : "was still running",
		     status, said);
}

/* FILESYSTEM.md 1: a killed daemon leaves a mount that `fusermount3 -uz` clears. Not so, before
 * the watch (mount/deathwatch.c), when the daemon died while its notifier was telling the kernel
 * of kv_cli's change: the notifier waits in the kernel for the directory's lock, which a create
 * holds while it waits for the daemon's answer; the dead daemon can then never exit, the create
 * never returns and the store stays locked. Here every request reader is stopped so that the
 * create waits for sure, and the notifier is seen blocked before the kill. */
START_TEST(a_daemon_killed_while_telling_the_kernel_of_a_change_lets_go_of_its_mount)
{
	NEED_MOUNT();
	const char *put[] = { mt_kv_cli(), mt_data, "PUT", "d/y", "v", NULL };
	struct creator c = { .path = in_mnt("d/x") };
	pid_t daemon, readers[256], notifier, cli;
	int n, in, out, status, i;
	struct stat st;
	pthread_t th;

	mount_store(NULL);
	daemon = mt_daemon_pid;
	ck_assert_int_eq(mkdir(in_mnt("d"), 0755), 0);
	ck_assert_int_eq(stat(in_mnt("d"), &st), 0); /* d's entry is cached: no request for it */
	notifier = thread_named(daemon, "kvfs-notify");
	ck_assert_int_gt(notifier, 0);
	/* a reader busy with a request during one pass reads again by a later one: the passes go
	 * on until three in a row find no reader left */
	for (n = 0, i = 0; i < 3; i++) {
		int more = stop_request_readers(daemon, readers, n, 256);

		if (more > n)
			i = -1;
		n = more;
		usleep(10000);
	}
	ck_assert_int_gt(n, 0);
	/* a create in d: the kernel holds d's lock while the request waits */
	ck_assert_int_eq(pthread_create(&th, NULL, create_file, &c), 0);
	while (!atomic_load(&c.tid))
		usleep(1000);
	wait_for_state(getpid(), (pid_t)atomic_load(&c.tid), 'S', "request_wait_answer", "the create");
	/* kv_cli changes d/y through the daemon, whose notifier then waits for d's lock */
	ck_assert_int_eq(tu_spawn(put, &in, &out, &cli), 0);
	close(in);
	wait_for_notifier(daemon, notifier, cli, out);
	ck_assert(!atomic_load(&c.done));

	ck_assert_int_eq(kill(daemon, SIGKILL), 0);
	for (i = 0; i < n; i++) /* the stopped readers die as traced threads: their tracer reaps */
		ck_assert_int_eq(waitpid(readers[i], &status, __WALL), readers[i]);
	for (i = 0; i < 6000 && waitpid(daemon, &status, WNOHANG) == 0; i++)
		usleep(10000); /* a hang guard */
	if (i == 6000) {
		umount2(mt_mnt, MNT_FORCE); /* frees what the failure left hung */
		ck_abort_msg("the killed daemon %d never exited: its mount hung", (int)daemon);
	}
	mt_daemon_pid = -1;
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(c.err == ENOTCONN || c.err == ECONNABORTED, "the create: %s", strerror(c.err));
	ck_assert_int_eq(waitpid(cli, &status, 0), cli);
	close(out);
	/* the mount is an ordinary stale one: cleared, and the store mounts again */
	ck_assert_int_eq(fusermount("-uz", mt_mnt), 0);
	mount_store(NULL);
	ck_assert_int_eq(stat(in_mnt("d"), &st), 0);
	unmount_store();
}
END_TEST

/* ---- statistics ------------------------------------------------------------------------------ */

START_TEST(stats_name_the_daemon_and_count_commands_after_the_stores_lines)
{
	NEED_MOUNT();
	const char *put[] = { mt_data, "PUT", "k", "v", NULL };
	const char *stats[] = { mt_data, "STATS", NULL }, *json[] = { mt_data, "STATS", "json", NULL };
	char real[PATH_MAX], want[PATH_MAX + 64], *out = NULL, *ctl = NULL, *p;

	mount_store(NULL);
	ck_assert_ptr_nonnull(realpath(mt_mnt, real));
	ck_assert_int_eq(cli_run(put, NULL, &out, NULL), 0);
	free(out);
	ck_assert_int_eq(cli_run(stats, NULL, &out, NULL), 0);
	/* a count line, then the lines */
	p = strchr(out, '\n');
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(atoi(out), count_lines(p + 1));
	/* the store's lines first, as the control file always had them */
	ck_assert_msg(strncmp(p + 1, "version: ", 9) == 0, "got: %s", out);
	ck_assert_ptr_nonnull(strstr(p + 1, "\nsnapshot_due: "));
	ck_assert(strstr(p + 1, "\nsnapshot_due: ") < strstr(p + 1, "\npid: "));
	snprintf(want, sizeof(want), "\npid: %ld\n", (long)mt_daemon_pid);
	ck_assert_msg(strstr(out, want), "got: %s", out);
	snprintf(want, sizeof(want), "\nmountpoint: %s\n", real);
	ck_assert_msg(strstr(out, want), "got: %s", out);
	ck_assert_ptr_nonnull(strstr(out, "\nuptime_s: "));
	ck_assert_ptr_nonnull(strstr(out, "\nop_put_count: 1\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nop_put_avg_us: "));
	ck_assert_ptr_nonnull(strstr(out, "\nop_put_max_us: "));
	free(out);
	/* the control file says the same after the same lines */
	ctl = get_file(in_mnt(".kvfs"));
	snprintf(want, sizeof(want), "\npid: %ld\n", (long)mt_daemon_pid);
	ck_assert_msg(strstr(ctl, want), "control file: %s", ctl);
	ck_assert_msg(strncmp(ctl, "version: ", 9) == 0, "control file: %s", ctl);
	free(ctl);
	ck_assert_int_eq(cli_run(json, NULL, &out, NULL), 0);
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_msg(out[0] == '{' && strstr(out, "}\n"), "got: %s", out);
	snprintf(want, sizeof(want), "\"pid\":%ld,", (long)mt_daemon_pid);
	ck_assert_msg(strstr(out, want), "got: %s", out);
	ck_assert_msg(strstr(out, "\"sync\":\"batch\""), "got: %s", out);
	free(out);
	unmount_store();
}
END_TEST

/* The number after "\nname: " in text (a statistics text), which must be there. */
static uint64_t stat_in(const char *text, const char *name)
{
	char want[128], *end;
	const char *p;
	uint64_t v;

	snprintf(want, sizeof(want), "\n%s: ", name);
	p = strstr(text, want);
	ck_assert_msg(p, "no '%s' line in: %.400s", name, text);
	p += strlen(want);
	v = strtoull(p, &end, 10);
	ck_assert_msg(end != p && *end == '\n', "'%s' is not a number", name);
	return v;
}

START_TEST(fuse_operations_are_counted_with_their_latencies_in_the_control_file_and_the_json)
{
	NEED_MOUNT();
	const char *json[] = { mt_data, "STATS", "JSON", NULL };
	/* the JSON parses, and its fuse_ numbers are those of the same names in text form */
	const char *check[] = { "python3", "-c",
		"import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"n = [k for k in d if k.startswith('fuse_')]\n"
		"assert len(n) >= 4 * 29, len(n)\n"
		"assert all(isinstance(d[k], int) for k in n)\n"
		"assert d['fuse_mkdir_count'] >= 3, d['fuse_mkdir_count']\n"
		"assert d['pid'] > 0 and d['mountpoint'] and d['uptime_s'] >= 0\n"
		"print('ok')\n", NULL };
	char *before, *after, *out = NULL, *err = NULL, *res = NULL;
	char path[PATH_MAX + 32];
	int status = 0;

	mount_store(NULL);
	before = get_file(in_mnt(".kvfs"));
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/d%d", mt_mnt, i);
		ck_assert_int_eq(mkdir(path, 0755), 0);
		snprintf(path, sizeof(path), "%s/d%d/f", mt_mnt, i);
		put_file(path, "some bytes");
		free(get_file(path));
	}
	after = get_file(in_mnt(".kvfs"));
	/* each mkdir(2) and creat(2) is one request; every file was written at least once */
	ck_assert_uint_eq(stat_in(after, "fuse_mkdir_count"), stat_in(before, "fuse_mkdir_count") + 3);
	ck_assert_uint_eq(stat_in(after, "fuse_create_count"),
			  stat_in(before, "fuse_create_count") + 3);
	ck_assert_uint_ge(stat_in(after, "fuse_write_count"), stat_in(before, "fuse_write_count") + 3);
	ck_assert_uint_gt(stat_in(after, "fuse_lookup_count"), stat_in(before, "fuse_lookup_count"));
	/* latencies: measured (a request takes some time) once the operation's thread has added
	 * its time after the reply (a hang guard, not a timing check), the slowest bounding the
	 * others */
	for (int i = 0; i < 1000 && stat_in(after, "fuse_mkdir_max_ns") == 0; i++) {
		usleep(10000);
		free(after);
		after = get_file(in_mnt(".kvfs"));
	}
	ck_assert_uint_gt(stat_in(after, "fuse_mkdir_max_ns"), 0);
	ck_assert_uint_le(stat_in(after, "fuse_mkdir_mean_ns"), stat_in(after, "fuse_mkdir_max_ns"));
	ck_assert_uint_gt(stat_in(after, "fuse_mkdir_p99_ns"), 0);
	ck_assert_uint_le(stat_in(after, "fuse_mkdir_p99_ns"), stat_in(after, "fuse_mkdir_max_ns"));
	/* an operation never served says so with zeros */
	ck_assert_uint_eq(stat_in(after, "fuse_fallocate_count"), 0);
	ck_assert_uint_eq(stat_in(after, "fuse_fallocate_p99_ns"), 0);
	/* the daemon's lines come before, the operations' after */
	ck_assert(strstr(after, "\nuptime_s: ") < strstr(after, "\nfuse_lookup_count: "));
	ck_assert_int_eq(cli_run(json, NULL, &out, NULL), 0);
	ck_assert_int_eq(tu_run(check, out, &res, &err, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strcmp(res, "ok\n") == 0,
		      "the JSON did not parse as expected: %s\n%s", err, out);
	free(before);
	free(after);
	free(out);
	free(err);
	free(res);
	unmount_store();
}
END_TEST

START_TEST(stats_of_a_store_kv_cli_opened_itself_are_the_stores_lines)
{
	NEED_MOUNT();
	const char *stats[] = { mt_data, "STATS", NULL };
	char *out = NULL, *p;

	ck_assert_int_eq(cli_run(stats, NULL, &out, NULL), 0);
	p = strchr(out, '\n');
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(atoi(out), count_lines(p + 1));
	ck_assert_ptr_nonnull(strstr(out, "\nkeys: 0\n"));
	ck_assert_ptr_null(strstr(out, "\npid: "));
	ck_assert_ptr_null(strstr(out, "\nfuse_"));
	free(out);
}
END_TEST

START_TEST(stats_takes_nothing_or_the_word_json)
{
	NEED_MOUNT();
	const char *args[] = { mt_data, NULL };
	char *out = NULL;

	ck_assert_int_eq(cli_run(args, "STATS x\nSTATS json x\nstats Json\n", &out, NULL), 1);
	ck_assert_msg(strncmp(out, "ERR STATS takes nothing or the word JSON\n"
			      "ERR STATS takes nothing or the word JSON\n{\"version\":", 93) == 0,
		      "got: %s", out);
	ck_assert_int_eq(count_lines(out), 3);
	free(out);
}
END_TEST

/* ---- sd_notify ------------------------------------------------------------------------------- */

/* Messages on a datagram socket until one holds want (a hang guard of a minute); all of them
 * joined in *got. */
static int await_message(int fd, const char *want, char *got, size_t len)
{
	size_t have = strlen(got);

	for (int i = 0; i < 600; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[4096];
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		snprintf(got + have, len - have, "%s|", buf);
		have = strlen(got);
		if (strstr(buf, want))
			return 0;
	}
	return -ETIMEDOUT;
}

START_TEST(the_daemon_tells_systemd_of_recovery_ready_and_stopping)
{
	NEED_MOUNT();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char got[16384] = "", *err = NULL;
	int fd;
	pid_t pid;

	ck_assert_uint_lt(strlen(mt_tmp) + 8, sizeof(sa.sun_path));
	memcpy(sa.sun_path, mt_tmp, strlen(mt_tmp));
	memcpy(sa.sun_path + strlen(mt_tmp), "/notify", 8);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, STDIN_FILENO);
		setenv("NOTIFY_SOCKET", sa.sun_path, 1);
		execl(mt_kvfs, mt_kvfs, "-f", mt_data, mt_mnt, (char *)NULL);
		_exit(127);
	}
	mt_daemon_pid = pid;
	ck_assert_msg(await_message(fd, "READY=1", got, sizeof(got)) == 0, "got: %s", got);
	/* recovery's progress came before the mount was ready */
	ck_assert_msg(strstr(got, "STATUS=recovery"), "got: %s", got);
	ck_assert(strstr(got, "STATUS=recovery") < strstr(got, "READY=1"));
	ck_assert(is_mounted(mt_mnt));
	ck_assert_int_eq(unmount_waiting(&err), 0);
	free(err);
	ck_assert_msg(await_message(fd, "STOPPING=1", got, sizeof(got)) == 0, "got: %s", got);
	assert_clean_exit(wait_daemon(), "kvfs --unmount");
	close(fd);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("live");
	TCase *cli = tcase_create("cli"), *peers = tcase_create("peers");
	TCase *stale = tcase_create("stale"), *unmount = tcase_create("unmount");
	TCase *stats = tcase_create("stats"), *notify = tcase_create("notify");

	tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	TCase *all[] = { cli, peers, stale, unmount, stats, notify };
	mt_add_cases(su, all, sizeof(all) / sizeof(all[0]), 300);
	tcase_add_test(cli, a_put_through_kv_cli_is_read_through_the_mount);
	tcase_add_test(cli, what_kv_cli_changes_shows_through_the_mount_at_once_despite_the_kernels_cache);
	tcase_add_test(cli, a_file_written_through_the_mount_is_got_by_kv_cli_quoted);
	tcase_add_test(cli, the_shell_through_the_daemon_answers_byte_for_byte_like_a_local_one);
	tcase_add_test(cli, one_shot_quoted_arguments_through_the_daemon_are_decoded_once);
	tcase_add_test(cli, a_one_shot_command_answered_err_through_the_daemon_exits_1);
	tcase_add_test(cli, snap_through_the_daemon_writes_a_checkpoint_of_the_live_store);
	tcase_add_test(cli, a_backup_of_a_mounted_store_runs_in_the_daemon_while_writers_go_on);
	tcase_add_test(cli, check_on_a_mounted_store_says_where_it_is_mounted_and_by_which_pid);
	tcase_add_test(peers, a_peer_of_another_user_is_refused_by_its_credentials_in_one_line);
	tcase_add_test(peers, the_socket_file_admits_only_the_daemons_user);
	tcase_add_test(stale, a_socket_left_by_a_killed_daemon_is_ignored_by_kv_cli_and_replaced_by_the_next_mount);
	tcase_add_test(stale, a_store_locked_by_another_kv_cli_says_no_daemon_answers);
	tcase_add_test(unmount, unmount_returns_once_the_lock_is_released_every_round_of_20);
	tcase_add_test(unmount, unmount_of_a_busy_mount_says_so_and_leaves_it_mounted);
	tcase_add_test(unmount, unmount_of_a_directory_that_is_no_kvfs_mount_fails_with_a_reason);
	tcase_add_test(unmount, a_mount_waits_for_the_previous_daemon_to_finish_closing_the_store);
	tcase_add_test(peers, allow_other_by_a_user_without_user_allow_other_names_etc_fuse_conf);
	tcase_add_test(cli, every_mount_option_out_of_range_is_refused_naming_its_range);
	tcase_add_test(unmount, a_mount_gives_up_waiting_at_the_bound_and_mounts_nothing);
	tcase_add_test(stats, stats_name_the_daemon_and_count_commands_after_the_stores_lines);
	tcase_add_test(stats, fuse_operations_are_counted_with_their_latencies_in_the_control_file_and_the_json);
	tcase_add_test(stats, stats_of_a_store_kv_cli_opened_itself_are_the_stores_lines);
	tcase_add_test(stats, stats_takes_nothing_or_the_word_json);
	tcase_add_test(notify, the_daemon_tells_systemd_of_recovery_ready_and_stopping);
	tcase_add_test(stale, a_daemon_killed_while_telling_the_kernel_of_a_change_lets_go_of_its_mount);
	return mt_run(su);
}
