/* mountutil.c — mounting the real kvfs daemon in Check tests (test_mount, test_killrounds,
 * test_fsx): one fresh store per test (DATADIR and MOUNTPOINT in a scratch directory), the
 * daemon as our child (we are a subreaper), clean unmounts checked, and everything a failed test
 * left behind removed at the end of the run. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

char mt_skip_reason[256];
char mt_kvfs[PATH_MAX];

char mt_tmp[PATH_MAX];
char mt_data[PATH_MAX + 16], mt_mnt[PATH_MAX + 16];
pid_t mt_daemon_pid = -1;
int mt_tmpfs_mounted;

/* ---- paths and files -------------------------------------------------------------------- */

char *in_mnt(const char *rel)
{
	static char bufs[8][PATH_MAX * 2];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, PATH_MAX * 2, "%s/%s", mt_mnt, rel);
	return b;
}

void put_file(const char *path, const char *text)
{
	ck_assert_msg(tu_write_file(path, text, strlen(text)) == 0, "writing %s: %s", path,
		      strerror(errno));
}

/* The whole file as a string (freed by the caller); fails the test when unreadable. */
char *get_file(const char *path)
{
	char *d = NULL;
	int rc = tu_read_file(path, &d, NULL);

	ck_assert_msg(rc == 0, "reading %s: %s", path, strerror(-rc));
	return d;
}

void assert_file(const char *path, const char *want)
{
	char *got = get_file(path);

	ck_assert_str_eq(got, want);
	free(got);
}

/* ---- the daemon --------------------------------------------------------------------------- */

const char *mt_kv_cli(void)
{
	const char *p = getenv("KV_CLI");

	ck_assert_msg(p && p[0], "KV_CLI must name the kv_cli binary");
	return p;
}

/* 1 when something is mounted at path (as /proc/self/mountinfo has it). */
int is_mounted(const char *path)
{
	char real[PATH_MAX], *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	if (!realpath(path, real)) {
		/* a dead daemon's mount: stat fails with ENOTCONN, but it is mounted */
		if (errno != ENOTCONN)
			return 0;
		snprintf(real, sizeof(real), "%s", path);
	}
	f = fopen("/proc/self/mountinfo", "re");
	ck_assert_ptr_nonnull(f);
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *field = strtok_r(line, " ", &save);

		for (int i = 1; field && i < 5; i++)
			field = strtok_r(NULL, " ", &save);
		found = field && strcmp(field, real) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

pid_t lock_pid(const char *dir)
{
	char path[PATH_MAX + 32], *text = NULL;
	long pid;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	ck_assert_int_eq(tu_read_file(path, &text, NULL), 0);
	pid = strtol(text, NULL, 10);
	free(text);
	ck_assert_msg(pid > 0, "LOCK of %s holds no pid", dir);
	return (pid_t)pid;
}

pid_t mt_hold_lock(const char *dir, int named)
{
	char path[PATH_MAX + 8], c;
	int p[2];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sigset_t set;
		char buf[32];
		int sig, fd, n;

		alarm(600); /* a test that failed leaves no holder behind for long */
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || ftruncate(fd, 0) < 0 ||
		    pwrite(fd, buf, (size_t)n, 0) != n)
			_exit(1);
		if (named && prctl(PR_SET_NAME, "kvfs", 0, 0, 0) < 0)
			_exit(1);
		if (write(p[1], "h", 1) != 1)
			_exit(1);
		sigwait(&set, &sig);
		_exit(0); /* the kernel drops the flock */
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

void mt_release_lock(pid_t holder)
{
	int status;

	ck_assert_int_eq(kill(holder, SIGUSR1), 0);
	ck_assert_int_eq(waitpid(holder, &status, 0), holder);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The parent of process pid, from /proc/pid/stat ("pid (comm) state ppid ..."); -1 if gone. */
static pid_t parent_of(pid_t pid, char *comm, size_t commlen)
{
	char path[64], *text = NULL, *close_paren;
	long ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (tu_read_file(path, &text, NULL) != 0)
		return -1;
	close_paren = strrchr(text, ')');
	if (close_paren && sscanf(close_paren + 1, " %*c %ld", &ppid) == 1 && comm) {
		char *open_paren = strchr(text, '(');
		size_t n = open_paren && open_paren < close_paren ?
			   (size_t)(close_paren - open_paren - 1) : 0;

		snprintf(comm, commlen, "%.*s", (int)n, open_paren ? open_paren + 1 : "");
	}
	free(text);
	return (pid_t)ppid;
}

/* The daemon that just mounted: the pid its LOCK file names, or, when it wrote none there (a
 * read-only store changes nothing on disk, LOCK included), our one child named kvfs (we are a
 * subreaper: the detached daemon is our child). */
static pid_t mounted_daemon(void)
{
	pid_t pid = lock_pid(mt_data), found = -1;
	char comm[64];
	DIR *d;
	struct dirent *e;

	if (parent_of(pid, NULL, 0) == getpid())
		return pid;
	d = opendir("/proc");
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		pid_t p = (pid_t)strtol(e->d_name, NULL, 10);

		if (p <= 0 || parent_of(p, comm, sizeof(comm)) != getpid() || strcmp(comm, "kvfs"))
			continue;
		ck_assert_msg(found < 0, "two kvfs daemons are our children: %d and %d", (int)found,
			      (int)p);
		found = p;
	}
	closedir(d);
	ck_assert_msg(found > 0, "no kvfs daemon among our children (LOCK names %d)", (int)pid);
	return found;
}

/* Runs kvfs with argv (after the program name; NULL-terminated); exit status and stderr. */
int run_kvfs(const char *const *args, char **err)
{
	const char *argv[16];
	int n = 0, status = 0, rc;

	argv[n++] = mt_kvfs;
	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	rc = tu_run(argv, NULL, NULL, err, &status);
	ck_assert_msg(rc == 0, "running %s: %s", mt_kvfs, strerror(-rc));
	ck_assert_msg(WIFEXITED(status), "kvfs died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* Mounts data at mnt with options (NULL: none), given after the operands as mount.fuse3 does;
 * what kvfs said on stderr into *said (freed by the caller) or, with said NULL, nothing. */
void mount_store_saying(const char *opts, char **said)
{
	const char *with[] = { mt_data, mt_mnt, "-o", opts, NULL };
	const char *without[] = { mt_data, mt_mnt, NULL };
	char *err = NULL;
	int code = run_kvfs(opts ? with : without, &err);

	ck_assert_msg(code == 0, "kvfs exited %d: %s", code, err);
	if (said) {
		*said = err;
	} else {
		ck_assert_msg(err[0] == '\0', "kvfs said on a clean start: %s", err);
		free(err);
	}
	ck_assert_msg(is_mounted(mt_mnt), "kvfs returned 0 but %s is not mounted", mt_mnt);
	mt_daemon_pid = mounted_daemon();
}

void mount_store(const char *opts)
{
	mount_store_saying(opts, NULL);
}


/* Waits until the store holds n keys: a release, which deletes the key of a file unlinked while
 * open, reaches the daemon after close(2) has returned. A hang guard, not a timing check. */
void wait_for_keys(uint64_t n)
{
	for (int i = 0; i < 1000 && stat_of("keys") != n; i++)
		usleep(10000);
	ck_assert_uint_eq(stat_of("keys"), n);
}

/* Waits for the daemon (our child, as subreaper) to end; its wait status. A hang guard of a
 * minute, not a timing check. */
int wait_daemon(void)
{
	int status = 0;

	ck_assert_int_gt(mt_daemon_pid, 0);
	for (int i = 0; i < 6000; i++) {
		pid_t r = waitpid(mt_daemon_pid, &status, WNOHANG);

		if (r == mt_daemon_pid) {
			mt_daemon_pid = -1;
			return status;
		}
		ck_assert_msg(r == 0, "waitpid %d: %s", (int)mt_daemon_pid, strerror(errno));
		usleep(10000);
	}
	ck_abort_msg("daemon %d did not exit within a minute", (int)mt_daemon_pid);
	return -1;
}

/* An unmount refused as busy is tried again for up to 10 s: a reference the kernel drops after
 * close returns (another process's passing look at the mount, a release in flight) is not the
 * test's. Anything else, or busy for good, fails, with fusermount3's own words on stderr. */
int fusermount(const char *flags, const char *path)
{
	const char *argv[] = { "fusermount3", flags, path, NULL };

	for (int tries = 0;; tries++) {
		char *err = NULL;
		int status = 0, rc = tu_run(argv, NULL, NULL, &err, &status);
		int ok = rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
		int busy = !ok && err && strstr(err, "busy");

		if (!ok && (!busy || tries == 100))
			fprintf(stderr, "fusermount3 %s %s: %s", flags, path, err && err[0] ? err : "failed\n");
		else if (!ok)
			usleep(100000);
		else if (tries)
			fprintf(stderr, "fusermount3 %s %s: busy %d time(s) before it went\n", flags, path, tries);
		free(err);
		if (ok || !busy || tries == 100)
			return ok ? 0 : -1;
	}
}

/* Sanitizer builds: the detached daemon's reports would go to /dev/null; send them to files in
 * the scratch directory instead (log_path), to be shown when the daemon ends badly. */
static void route_sanitizer_logs(void)
{
	static const char *const vars[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS" };
	char buf[PATH_MAX * 2];

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (!v)
			continue;
		snprintf(buf, sizeof(buf), "%s%slog_path=%s/sanitizer", v, v[0] ? ":" : "", mt_tmp);
		ck_assert_int_eq(setenv(vars[i], buf, 1), 0);
	}
}

/* Prints every sanitizer report a daemon left in dir (a test's mt_tmp: route_sanitizer_logs)
 * to stderr, once: a daemon that a sanitizer stopped shows only as a failed system call in the
 * test. A failed check ends the test's process before its teardown, so the runner looks again
 * in every test's directory at the end (clean_run_dir). */
static void show_sanitizer_reports(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[PATH_MAX * 2], shown[PATH_MAX * 2 + 8], *text = NULL;

		if (strncmp(e->d_name, "sanitizer", 9) != 0 || strstr(e->d_name, ".shown"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (tu_read_file(path, &text, NULL) == 0)
			fprintf(stderr, "%s:\n%s\n", path, text);
		free(text);
		snprintf(shown, sizeof(shown), "%s.shown", path);
		if (rename(path, shown) != 0)
			fprintf(stderr, "%s: cannot rename: %s\n", path, strerror(errno));
	}
	if (d)
		closedir(d);
}

/* Fails unless the daemon exited 0, showing any sanitizer report it left. */
void assert_clean_exit(int status, const char *after)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	show_sanitizer_reports(mt_tmp);
	ck_abort_msg("daemon ended with status 0x%x after %s", status, after);
}

/* Unmounts and checks that the daemon exited 0. */
void unmount_store(void)
{
	int status;

	ck_assert_msg(fusermount("-u", mt_mnt) == 0, "fusermount3 -u %s failed", mt_mnt);
	status = wait_daemon();
	assert_clean_exit(status, "unmount");
	ck_assert(!is_mounted(mt_mnt));
}

void remount(void)
{
	unmount_store();
	mount_store(NULL);
}

/* Runs kv_cli on data with the given script; its stdout (freed by the caller). */
char *kv_cli(const char *script)
{
	const char *argv[] = { mt_kv_cli(), mt_data, NULL };
	char *out = NULL, *err = NULL;
	int status = 0;

	ck_assert_int_eq(tu_run(argv, script, &out, &err, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kv_cli failed: %s", err);
	free(err);
	return out;
}

/* The value of name in the control file's "name: value" lines. */
uint64_t stat_of(const char *name)
{
	char *text = get_file(in_mnt(".kvfs")), *p = text;
	size_t n = strlen(name);
	uint64_t v = 0;
	int found = 0;

	while (p && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			char *end;

			v = strtoull(p + n + 1, &end, 10);
			/* a word ("read_only: no") is not a number: say so rather than read 0 */
			ck_assert_msg(end != p + n + 1 && (*end == '\n' || *end == '\0'),
				      "'%s:' in .kvfs is not a number", name);
			found = 1;
			break;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	ck_assert_msg(found, "no '%s:' line in .kvfs:\n%s", name, text);
	free(text);
	return v;
}

void mt_setup(void)
{
	if (mt_skip_reason[0])
		return;
	ck_assert_int_eq(tu_tmpdir(mt_tmp, sizeof(mt_tmp)), 0);
	snprintf(mt_data, sizeof(mt_data), "%s/data", mt_tmp);
	snprintf(mt_mnt, sizeof(mt_mnt), "%s/mnt", mt_tmp);
	ck_assert_int_eq(mkdir(mt_mnt, 0755), 0);
	/* the daemon detaches from kvfs; as subreaper we inherit it and can wait for it */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	umask(022); /* the kernel applies the caller's umask to new nodes; tests expect this one */
	route_sanitizer_logs();
	mt_daemon_pid = -1;
	mt_tmpfs_mounted = 0;
}

void mt_teardown(void)
{
	if (mt_skip_reason[0])
		return;
	if (is_mounted(mt_mnt) && fusermount("-u", mt_mnt) != 0)
		fusermount("-uz", mt_mnt);
	if (mt_daemon_pid > 0) {
		/* a test that failed half-way: do not leave a daemon behind */
		for (int i = 0; i < 500 && waitpid(mt_daemon_pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		if (kill(mt_daemon_pid, SIGKILL) == 0)
			waitpid(mt_daemon_pid, NULL, 0);
	}
	if (mt_tmpfs_mounted)
		umount2(mt_data, MNT_DETACH);
	show_sanitizer_reports(mt_tmp);
	tu_rmrf(mt_tmp);
}

void mt_small_disk(unsigned mib)
{
	char opts[64];

	ck_assert_int_eq(mkdir(mt_data, 0700), 0);
	snprintf(opts, sizeof(opts), "size=%um,mode=0700", mib);
	ck_assert_msg(mount("tmpfs", mt_data, "tmpfs", 0, opts) == 0, "mount tmpfs: %s", strerror(errno));
	mt_tmpfs_mounted = 1;
}

/* The names in a directory, in readdir order, joined with ' ' ("." and ".." included). */
char *list_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char *s = calloc(1, 1);
	size_t len = 0;

	ck_assert_msg(d != NULL, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		s = realloc(s, len + n + 2);
		ck_assert_ptr_nonnull(s);
		if (len)
			s[len++] = ' ';
		memcpy(s + len, e->d_name, n + 1);
		len += n;
	}
	closedir(d);
	return s;
}

void assert_listing(const char *path, const char *want)
{
	char *got = list_dir(path);

	ck_assert_str_eq(got, want);
	free(got);
}

void assert_errno(int rc, int want, const char *what)
{
	ck_assert_msg(rc == -1 && errno == want, "%s: expected %s, got %s", what, strerror(want),
		      rc == -1 ? strerror(errno) : "success");
}


/* ---- the suite --------------------------------------------------------------------------- */

/* Every test's scratch directory lives in one directory of this run. A test that fails ends its
 * process at once (Check's fork mode) without its teardown; this runs at the end in the runner
 * and removes what such tests left: mounts (lazily), daemons (by their LOCK files), files. */
static char run_dir[PATH_MAX];

static void kill_daemon_of(const char *data_dir)
{
	char path[PATH_MAX * 3], *text = NULL, *cmd = NULL;
	size_t len = 0;
	long pid;

	snprintf(path, sizeof(path), "%s/LOCK", data_dir);
	if (tu_read_file(path, &text, NULL) != 0)
		return;
	pid = strtol(text, NULL, 10);
	free(text);
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	/* only if that pid is still a kvfs (pids are reused) */
	if (tu_read_file(path, &cmd, &len) == 0 && strstr(cmd, "kvfs") && memmem(cmd, len, data_dir,
										strlen(data_dir)))
		kill((pid_t)pid, SIGKILL);
	free(cmd);
}

static void clean_run_dir(void)
{
	char *line = NULL;
	size_t cap = 0, n = strlen(run_dir);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	DIR *d;
	struct dirent *e;

	while (f && getline(&line, &cap, f) > 0) {
		char *save = NULL, *field = strtok_r(line, " ", &save);

		for (int i = 1; field && i < 5; i++)
			field = strtok_r(NULL, " ", &save);
		if (field && strncmp(field, run_dir, n) == 0 && field[n] == '/')
			umount2(field, MNT_DETACH);
	}
	free(line);
	if (f)
		fclose(f);
	d = opendir(run_dir);
	while (d && (e = readdir(d))) {
		char data_dir[PATH_MAX * 2];

		if (e->d_name[0] == '.')
			continue;
		snprintf(data_dir, sizeof(data_dir), "%s/%s/data", run_dir, e->d_name);
		kill_daemon_of(data_dir);
		snprintf(data_dir, sizeof(data_dir), "%s/%s", run_dir, e->d_name);
		show_sanitizer_reports(data_dir);
	}
	if (d)
		closedir(d);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	tu_rmrf(run_dir);
}


static void find_kvfs(void)
{
	const char *env = getenv("KVFS"), *cli_path = getenv("KV_CLI");

	if (env && env[0]) {
		snprintf(mt_kvfs, sizeof(mt_kvfs), "%s", env);
	} else if (cli_path && strrchr(cli_path, '/')) {
		int n = (int)(strrchr(cli_path, '/') - cli_path);

		snprintf(mt_kvfs, sizeof(mt_kvfs), "%.*s/kvfs", n, cli_path);
	} else {
		snprintf(mt_kvfs, sizeof(mt_kvfs), "kvfs");
	}
	if (geteuid() != 0)
		snprintf(mt_skip_reason, sizeof(mt_skip_reason), "not root (mounting needs it here)");
	else if (access("/dev/fuse", R_OK | W_OK) != 0)
		snprintf(mt_skip_reason, sizeof(mt_skip_reason), "/dev/fuse: %s", strerror(errno));
	else if (access(mt_kvfs, X_OK) != 0)
		snprintf(mt_skip_reason, sizeof(mt_skip_reason), "%.200s: %s (set KVFS)", mt_kvfs,
			 strerror(errno));
}

int mt_init(void)
{
	find_kvfs();
	if (mt_skip_reason[0]) {
		fprintf(stderr, "mount tests skipped: %s\n", mt_skip_reason);
		return 0;
	}
	/* tu_tmpdir makes each test's scratch directory under $TMPDIR */
	/* 0755: one test works as another user inside it; subreaper: daemons that a failed
	 * test left come to us, to be reaped in clean_run_dir */
	if (tu_tmpdir(run_dir, sizeof(run_dir)) != 0 || chmod(run_dir, 0755) != 0 ||
	    setenv("TMPDIR", run_dir, 1) != 0 || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		int err = errno;

		fprintf(stderr, "cannot make a scratch directory: %s\n", strerror(err));
		return -err;
	}
	return 0;
}

void mt_finish(void)
{
	if (run_dir[0])
		clean_run_dir();
}

void mt_add_cases(Suite *su, TCase *const *cases, size_t n, double timeout_s)
{
	for (size_t i = 0; i < n; i++) {
		tcase_add_checked_fixture(cases[i], mt_setup, mt_teardown);
		tcase_set_timeout(cases[i], timeout_s);
		suite_add_tcase(su, cases[i]);
	}
}

int mt_run(Suite *su)
{
	SRunner *sr = srunner_create(su);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	mt_finish();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
