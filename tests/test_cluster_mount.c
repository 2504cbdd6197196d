/* test_cluster_mount.c — three kvfs mounts as one replicated group (`kvfs -o cluster=FILE,
 * node=ID DATADIR MNT`, docs/REPLICATION.md "The mount"), as processes on loopback: what a file
 * written and fsync'd on the leader's mount is after the leader is SIGKILLed, what a follower's
 * mount lets one do, what a restarted node's mount shows. And, in this process without FUSE, the
 * node's writer under a tree: a change built in another term answered EROFS, nothing landing.
 *
 * The daemons run in the foreground as our children (-f), so a kill -9 hits the daemon itself.
 * The leader is the mount whose control file says "writable: yes". Waits are hang guards with
 * generous deadlines: one that passes is a failure with its reason, and nothing is decided by how
 * long anything took. File contents come from a seed (KV_SEED, printed). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv.h"
#include "kvfs_cluster.h"
#include "kvfs_fs.h"
#include "mountutil.h"
#include "testutil.h"

#define NODES 3
#define ELECTION_MS 300
#define DEADLINE_MS 60000 /* hang guard for any condition */
#define FILES 24

static uint64_t seed;

struct cnode {
	char dir[PATH_MAX + 16], mnt[PATH_MAX + 16], log[PATH_MAX + 16];
	pid_t pid; /* 0: not running */
};

static struct {
	char cluster[PATH_MAX + 16];
	const char *extra_opts; /* appended to every node's -o; "" for none */
	struct cnode n[NODES];
} g;

static char *log_of(unsigned i)
{
	char *text = NULL;
	if (tu_read_file(g.n[i].log, &text, NULL) != 0)
		text = strdup("(no log)");
	return text;
}

/* Starts node i's mount and waits until it is mounted. */
static void node_mount(unsigned i)
{
	struct cnode *nd = &g.n[i];
	char opts[PATH_MAX + 128];
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	pid_t pid;

	snprintf(opts, sizeof(opts), "cluster=%s,node=%u,election_ms=%u%s", g.cluster, i + 1,
		 ELECTION_MS, g.extra_opts);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int log = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		execl(mt_kvfs, "kvfs", "-f", "-o", opts, nd->dir, nd->mnt, (char *)NULL);
		_exit(127);
	}
	nd->pid = pid;
	while (!is_mounted(nd->mnt)) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			nd->pid = 0;
			ck_abort_msg("node %u's kvfs exited before mounting: %s", i + 1, log_of(i));
		}
		ck_assert_msg(tu_now_ms() < until, "node %u did not mount: %s", i + 1, log_of(i));
		usleep(20000);
	}
}

/* SIGKILL, as a machine that dies: the daemon goes at once, its mount is left dead. */
static void node_kill9(unsigned i)
{
	struct cnode *nd = &g.n[i];

	ck_assert_int_gt(nd->pid, 0);
	ck_assert_int_eq(kill(nd->pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(nd->pid, NULL, 0), nd->pid);
	nd->pid = 0;
	ck_assert_int_eq(fusermount("-uz", nd->mnt), 0);
}

/* A clean unmount: the daemon must exit 0. */
static void node_unmount(unsigned i)
{
	struct cnode *nd = &g.n[i];
	int status = 0;

	ck_assert_int_eq(fusermount("-u", nd->mnt), 0);
	ck_assert_int_eq(waitpid(nd->pid, &status, 0), nd->pid);
	nd->pid = 0;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "node %u's kvfs ended with status %d after its unmount: %s", i + 1, status,
		      log_of(i));
}

static void group_setup(void)
{
	char text[512];
	size_t at = 0;

	mt_setup();
	if (mt_skip_reason[0])
		return;
	snprintf(g.cluster, sizeof(g.cluster), "%s/cluster", mt_tmp);
	g.extra_opts = "";
	for (unsigned i = 0; i < NODES; i++) {
		struct cnode *nd = &g.n[i];

		snprintf(nd->dir, sizeof(nd->dir), "%s/d%u", mt_tmp, i + 1);
		snprintf(nd->mnt, sizeof(nd->mnt), "%s/m%u", mt_tmp, i + 1);
		snprintf(nd->log, sizeof(nd->log), "%s/log%u", mt_tmp, i + 1);
		ck_assert_int_eq(mkdir(nd->mnt, 0755), 0);
		nd->pid = 0;
		at += (size_t)snprintf(text + at, sizeof(text) - at, "%u 127.0.0.1:%u\n", i + 1,
				       tu_port());
	}
	ck_assert_int_eq(tu_write_file(g.cluster, text, at), 0);
}

static void group_teardown(void)
{
	if (mt_skip_reason[0])
		return;
	for (unsigned i = 0; i < NODES; i++) {
		if (is_mounted(g.n[i].mnt))
			fusermount("-uz", g.n[i].mnt);
		if (g.n[i].pid > 0) {
			kill(g.n[i].pid, SIGKILL);
			waitpid(g.n[i].pid, NULL, 0);
			g.n[i].pid = 0;
		}
	}
	mt_teardown();
}

/* ---- what a mount's control file says -------------------------------------------------------- */

/* The value of "name: value" in node i's control file into buf; 0, or -1 when there is none or
 * the file cannot be read (a dead mount). */
static int stat_text(unsigned i, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX + 32], *text = NULL, *p;
	size_t nlen = strlen(name);
	int rc = -1;

	snprintf(path, sizeof(path), "%s/.kvfs", g.n[i].mnt);
	if (tu_read_file(path, &text, NULL) != 0)
		return -1;
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':' && p[nlen + 1] == ' ') {
			size_t n = strcspn(p + nlen + 2, "\n");

			snprintf(buf, len, "%.*s", (int)n, p + nlen + 2);
			rc = 0;
			break;
		}
	free(text);
	return rc;
}

static uint64_t stat_num(unsigned i, const char *name)
{
	char v[64];

	ck_assert_msg(stat_text(i, name, v, sizeof(v)) == 0, "node %u's .kvfs has no %s", i + 1,
		      name);
	return strtoull(v, NULL, 10);
}

/* The one running node whose mount takes writes (a hang guard until there is one). */
static unsigned wait_leader(void)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;

	for (;;) {
		for (unsigned i = 0; i < NODES; i++) {
			char v[16];

			if (g.n[i].pid > 0 && stat_text(i, "writable", v, sizeof(v)) == 0 &&
			    strcmp(v, "yes") == 0)
				return i;
		}
		ck_assert_msg(tu_now_ms() < until, "no mount became writable");
		usleep(20000);
	}
}

/* Until node i has applied everything the leader has committed (a hang guard). */
static void wait_caught_up(unsigned i, unsigned leader)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS, want = stat_num(leader, "commit_index");

	while (stat_num(i, "applied_index") < want)
		ck_assert_msg(tu_now_ms() < until, "node %u did not apply up to %" PRIu64 ": %s", i + 1,
			      want, log_of(i));
}

/* ---- files ----------------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* File k's contents: from the seed, 1..64 KiB, so that some take several FUSE writes. */
static size_t contents(unsigned k, char *buf, size_t cap)
{
	uint64_t s = seed ^ (k * 0x9e3779b97f4a7c15ull);
	size_t n = 1 + (size_t)(splitmix(&s) % (64 * 1024));

	ck_assert_uint_le(n, cap);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)splitmix(&s);
	return n;
}

static char *file_path(unsigned node, unsigned k)
{
	static char bufs[4][PATH_MAX * 2];
	static unsigned next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX * 2, "%s/dir%u/file%u", g.n[node].mnt, k % 3, k);
	return b;
}

/* Writes file k on node i's mount and fsyncs it (and its directory, made when missing). */
static void write_fsynced(unsigned i, unsigned k)
{
	static char buf[64 * 1024];
	char dir[PATH_MAX * 2];
	size_t n = contents(k, buf, sizeof(buf));
	int fd, dfd;

	snprintf(dir, sizeof(dir), "%s/dir%u", g.n[i].mnt, k % 3);
	ck_assert_msg(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir,
		      strerror(errno));
	fd = open(file_path(i, k), O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ck_assert_msg(fd >= 0, "creating %s: %s", file_path(i, k), strerror(errno));
	ck_assert_int_eq(tu_write_all(fd, buf, n), 0);
	ck_assert_msg(fsync(fd) == 0, "fsync %s: %s", file_path(i, k), strerror(errno));
	ck_assert_int_eq(close(fd), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(fsync(dfd), 0);
	close(dfd);
}

/* File k on node i's mount holds exactly what write_fsynced wrote. */
static void assert_contents(unsigned i, unsigned k)
{
	static char want[64 * 1024];
	size_t n = contents(k, want, sizeof(want)), got_len = 0;
	char *got = NULL;
	int rc = tu_read_file(file_path(i, k), &got, &got_len);

	ck_assert_msg(rc == 0, "node %u: reading %s: %s", i + 1, file_path(i, k), strerror(-rc));
	ck_assert_msg(got_len == n && memcmp(got, want, n) == 0,
		      "node %u: %s holds %zu bytes that differ from the %zu written (seed %" PRIu64 ")",
		      i + 1, file_path(i, k), got_len, n, seed);
	free(got);
}

static void start_group(void)
{
	for (unsigned i = 0; i < NODES; i++)
		node_mount(i);
}

/* ---- the tests -------------------------------------------------------------------------------- */

START_TEST(fsynced_files_are_on_every_follower_mount)
{
	unsigned leader;

	NEED_MOUNT();
	start_group();
	leader = wait_leader();
	for (unsigned k = 0; k < FILES; k++)
		write_fsynced(leader, k);
	for (unsigned i = 0; i < NODES; i++) {
		if (i == leader)
			continue;
		wait_caught_up(i, leader);
		for (unsigned k = 0; k < FILES; k++)
			assert_contents(i, k);
	}
	for (unsigned i = 0; i < NODES; i++)
		node_unmount(i);
}
END_TEST

START_TEST(follower_mount_refuses_changes_with_erofs)
{
	char path[PATH_MAX * 2];
	unsigned leader, f;
	struct stat st;
	int fd;

	NEED_MOUNT();
	start_group();
	leader = wait_leader();
	f = (leader + 1) % NODES;
	write_fsynced(leader, 0);
	wait_caught_up(f, leader);

	snprintf(path, sizeof(path), "%s/dir0/new", g.n[f].mnt);
	assert_errno(open(path, O_CREAT | O_WRONLY, 0644), EROFS, "create");
	snprintf(path, sizeof(path), "%s/newdir", g.n[f].mnt);
	assert_errno(mkdir(path, 0755), EROFS, "mkdir");
	assert_errno(unlink(file_path(f, 0)), EROFS, "unlink");
	assert_errno(rename(file_path(f, 0), path), EROFS, "rename");
	assert_errno(chmod(file_path(f, 0), 0600), EROFS, "chmod");
	assert_errno(truncate(file_path(f, 0), 0), EROFS, "truncate");
	fd = open(file_path(f, 0), O_WRONLY);
	if (fd >= 0) { /* the kernel opens without asking the daemon: the write is refused */
		assert_errno((int)write(fd, "x", 1), EROFS, "write");
		close(fd);
	} else {
		assert_errno(fd, EROFS, "open for writing");
	}
	/* nothing changed, here or on the leader; reads and fsync of a read work */
	assert_contents(f, 0);
	assert_contents(leader, 0);
	ck_assert_int_eq(stat(path, &st), -1);
	fd = open(file_path(f, 0), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(fsync(fd) == 0, "fsync on a follower: %s", strerror(errno));
	close(fd);
	for (unsigned i = 0; i < NODES; i++)
		node_unmount(i);
}
END_TEST

START_TEST(fsynced_files_survive_a_leader_kill9)
{
	unsigned old, leader;
	ino_t inos[FILES + 1];
	struct stat st;

	NEED_MOUNT();
	start_group();
	old = wait_leader();
	for (unsigned k = 0; k < FILES; k++)
		write_fsynced(old, k);
	node_kill9(old);
	leader = wait_leader();
	ck_assert_uint_ne(leader, old);
	for (unsigned k = 0; k < FILES; k++) {
		assert_contents(leader, k);
		ck_assert_int_eq(stat(file_path(leader, k), &st), 0);
		inos[k] = st.st_ino;
	}
	/* the new leader takes writes, and its new file's inode number is no old file's */
	write_fsynced(leader, FILES);
	assert_contents(leader, FILES);
	ck_assert_int_eq(stat(file_path(leader, FILES), &st), 0);
	inos[FILES] = st.st_ino;
	for (unsigned a = 0; a <= FILES; a++)
		for (unsigned b = a + 1; b <= FILES; b++)
			ck_assert_msg(inos[a] != inos[b], "files %u and %u share inode %ju", a, b,
				      (uintmax_t)inos[a]);
	for (unsigned i = 0; i < NODES; i++)
		if (g.n[i].pid > 0)
			node_unmount(i);
}
END_TEST

START_TEST(restarted_node_catches_up_and_its_follower_mount_is_read_only)
{
	unsigned old, leader, k;

	NEED_MOUNT();
	start_group();
	old = wait_leader();
	for (k = 0; k < FILES / 2; k++)
		write_fsynced(old, k);
	node_kill9(old);
	leader = wait_leader();
	for (; k < FILES; k++)
		write_fsynced(leader, k); /* while the old leader is down */
	node_mount(old);
	leader = wait_leader(); /* the group may have elected again */
	for (unsigned i = 0; i < NODES; i++) {
		if (i == leader)
			continue;
		wait_caught_up(i, leader);
		for (k = 0; k < FILES; k++)
			assert_contents(i, k);
		assert_errno(open(file_path(i, 0), O_WRONLY | O_TRUNC), EROFS,
			     "truncating open on a follower");
	}
	for (unsigned i = 0; i < NODES; i++)
		node_unmount(i);
}
END_TEST

/* Waits until path on node i's mount has content want (NULL: is gone); a hang guard. */
static void wait_file(unsigned i, const char *path, const char *want)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	char *got = NULL;

	for (;;) {
		int rc = tu_read_file(path, &got, NULL);

		if (want ? rc == 0 && strcmp(got, want) == 0 : rc == -ENOENT)
			break;
		ck_assert_msg(tu_now_ms() < until, "node %u: %s is %s, not %s", i + 1, path,
			      rc ? strerror(-rc) : got, want ? want : "gone");
		free(got);
		got = NULL;
		usleep(20000);
	}
	free(got);
}

/* With caches trusted for a day, only the notifications an applied entry sends can make a
 * follower's kernel see a change it had cached: a name it saw, a name it saw missing, a file's
 * contents and a directory's listing. */
START_TEST(a_follower_kernel_forgets_what_the_leader_changed)
{
	char a[PATH_MAX * 2], b[PATH_MAX * 2], fa[PATH_MAX * 2], fb[PATH_MAX * 2];
	char dir[PATH_MAX * 2], fdir[PATH_MAX * 2];
	unsigned leader, f;
	struct stat st;

	NEED_MOUNT();
	g.extra_opts = ",entry_timeout=86400,attr_timeout=86400,negative_timeout=86400";
	start_group();
	leader = wait_leader();
	f = (leader + 1) % NODES;
	snprintf(dir, sizeof(dir), "%s/d", g.n[leader].mnt);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(a, sizeof(a), "%s/d/a", g.n[leader].mnt);
	snprintf(b, sizeof(b), "%s/d/b", g.n[leader].mnt);
	put_file(a, "first");
	snprintf(fa, sizeof(fa), "%s/d/a", g.n[f].mnt);
	snprintf(fb, sizeof(fb), "%s/d/b", g.n[f].mnt);
	snprintf(fdir, sizeof(fdir), "%s/d", g.n[f].mnt);
	wait_file(f, fa, "first");
	ck_assert_int_eq(stat(fb, &st), -1); /* cached as missing */
	assert_listing(fdir, ". .. a");

	put_file(a, "second, longer");     /* contents and size */
	wait_file(f, fa, "second, longer");
	ck_assert_int_eq(rename(a, b), 0); /* a name gone, a missing one there */
	wait_file(f, fb, "second, longer");
	wait_file(f, fa, NULL);
	assert_listing(fdir, ". .. b");
	ck_assert_int_eq(unlink(b), 0);
	wait_file(f, fb, NULL);
	for (unsigned i = 0; i < NODES; i++)
		node_unmount(i);
}
END_TEST

START_TEST(control_file_shows_raft_state)
{
	unsigned leader, f;
	char v[64], name[32];

	NEED_MOUNT();
	start_group();
	leader = wait_leader();
	write_fsynced(leader, 0);
	f = (leader + 1) % NODES;
	for (unsigned i = 0; i < NODES; i++)
		wait_caught_up(i, leader); /* so every node has acknowledged an entry of this term */
	ck_assert_int_eq(stat_text(leader, "role", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "leader");
	ck_assert_int_eq(stat_text(f, "role", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "follower");
	ck_assert_int_eq(stat_text(f, "writable", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "no");
	ck_assert_uint_eq(stat_num(f, "term"), stat_num(leader, "term"));
	ck_assert_uint_gt(stat_num(leader, "commit_index"), 0);
	ck_assert_uint_ge(stat_num(f, "applied_index"), 1);
	/* the leader knows each node's match index; a follower shows none */
	for (unsigned i = 0; i < NODES; i++) {
		uint64_t until = tu_now_ms() + DEADLINE_MS;

		snprintf(name, sizeof(name), "match_index[%u]", i + 1);
		while (stat_num(leader, name) == 0) /* its acknowledgement may be on its way */
			ck_assert_msg(tu_now_ms() < until, "the leader never saw node %u's match", i + 1);
		ck_assert_int_eq(stat_text(f, name, v, sizeof(v)), -1);
	}
	/* the store's own lines follow */
	ck_assert_int_eq(stat_text(f, "keys", v, sizeof(v)), 0);
	for (unsigned i = 0; i < NODES; i++)
		node_unmount(i);
}
END_TEST

START_TEST(cluster_option_errors_are_usage_errors)
{
	const char *bad_node[] = { "-o", "cluster=/nonexistent,node=zero", "d", "m", NULL };
	const char *no_file[] = { "-o", "cluster=/nonexistent/cluster,node=1", NULL, NULL, NULL };
	char data[PATH_MAX * 2], *err = NULL;
	int code;

	NEED_MOUNT();
	code = run_kvfs(bad_node, &err);
	ck_assert_int_eq(code, 2);
	ck_assert_msg(strstr(err, "node=zero"), "kvfs said: %s", err);
	free(err);
	/* a cluster file that cannot be read: the node does not start, nothing is mounted */
	snprintf(data, sizeof(data), "%s/d1", mt_tmp);
	no_file[2] = data;
	no_file[3] = g.n[0].mnt;
	code = run_kvfs(no_file, &err);
	ck_assert_int_eq(code, 1);
	ck_assert_msg(strstr(err, "/nonexistent/cluster"), "kvfs said: %s", err);
	ck_assert(!is_mounted(g.n[0].mnt));
	free(err);
}
END_TEST

START_TEST(a_node_refuses_a_read_only_store)
{
	const char *args[] = { "-o", NULL, NULL, NULL, NULL };
	char opts[PATH_MAX + 64], *err = NULL;

	NEED_MOUNT();
	snprintf(opts, sizeof(opts), "ro,cluster=%s,node=1", g.cluster);
	args[1] = opts;
	args[2] = g.n[0].dir;
	args[3] = g.n[0].mnt;
	ck_assert_int_eq(run_kvfs(args, &err), 1);
	ck_assert_msg(strstr(err, "-o ro is not for a node"), "kvfs said: %s", err);
	ck_assert(!is_mounted(g.n[0].mnt));
	free(err);
}
END_TEST

/* ---- the mount's writer, in this process (no FUSE) ------------------------------------------ */

static void quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/* PUT key=val through the tree's apply seam (kvfs_fs_apply: what every change of the tree commits
 * through), built in `epoch`: its result. */
static int tree_put(struct kvfs_fs *fs, const char *key, const char *val, uint64_t epoch)
{
	struct kv_batch *b;
	uint64_t lsn = 0;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, key, strlen(key), NULL, 0, val, strlen(val)), 0);
	int rc = kvfs_fs_apply(fs, b, epoch, &lsn);
	kv_batch_free(b);
	return rc;
}

/* The stale-term fence at the mount (REPLICATION.md 3.10, 10.1): a change the tree built from
 * its store in another term than the one raft would append it in gets -ESTALE from repl_propose,
 * which the node's writer (mount/kvfs_cluster.c) answers as EROFS — "not made", what the tree
 * and the caller take it as — and nothing lands. The node is a group of one, so it leads; the
 * build term is one raft is not in (it counts from 1, and no test runs 2^40 elections). */
START_TEST(a_change_built_in_another_term_answers_erofs_and_changes_nothing)
{
	char root[256], cluster[512], dir[512], line[512] = "", text[64];
	struct kvfs_cluster *c;
	struct kvfs_fs *fs;
	struct kvfs_config cfg;
	struct kv_options kvo;
	struct kv *kv;
	void *val = NULL;
	uint64_t vlen;
	int rc = -EROFS;

	ck_assert_int_eq(tu_tmpdir(root, sizeof(root)), 0);
	snprintf(cluster, sizeof(cluster), "%s/cluster", root);
	snprintf(text, sizeof(text), "1 127.0.0.1:%u\n", tu_port());
	ck_assert_int_eq(tu_write_file(cluster, text, strlen(text)), 0);
	snprintf(dir, sizeof(dir), "%s/node1", root);
	snprintf(text, sizeof(text), "node=1,election_ms=50");
	char opts[700];
	snprintf(opts, sizeof(opts), "cluster=%s,%s", cluster, text);
	kv_options_default(&kvo);
	ck_assert_msg(kvfs_cluster_start(&c, dir, opts, &kvo, quiet, NULL, &kv, line,
					 sizeof(line)) == 0, "the node did not start: %s", line);
	kvfs_config_default(&cfg);
	ck_assert_int_eq(kvfs_fs_new(&fs, kv, dir, &cfg), 0);
	kvfs_cluster_attach(c, fs);
	/* a change that rests on no read (epoch 0) lands once the node leads: the writer works */
	for (int i = 0; i < 6000 && rc == -EROFS; i++) {
		rc = tree_put(fs, "fresh", "1", 0);
		if (rc == -EROFS)
			usleep(10000); /* not leading yet; a hang guard of a minute, not a timing */
	}
	ck_assert_msg(rc == 0, "the node never took a write: %s", strerror(-rc));

	ck_assert_int_eq(tree_put(fs, "stale", "built in another term", 1ull << 40), -EROFS);
	ck_assert_int_eq(kv_get(kv, "stale", 5, &val, &vlen), -ENOENT);
	/* the fence refuses that change only: the next one lands */
	ck_assert_int_eq(tree_put(fs, "after", "2", 0), 0);
	ck_assert_int_eq(kv_get(kv, "after", 5, &val, &vlen), 0);
	ck_assert_uint_eq(vlen, 1);
	free(val);

	kvfs_cluster_detach(c);
	kvfs_fs_free(fs);
	ck_assert_int_eq(kvfs_cluster_stop(c), 0);
	ck_assert_int_eq(tu_rmrf(root), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cluster_mount");
	TCase *tc = tcase_create("cluster_mount");

	seed = tu_seed(); /* printed: KV_SEED=N reruns it */
	if (mt_init() != 0)
		return EXIT_FAILURE;
	tcase_add_checked_fixture(tc, group_setup, group_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, fsynced_files_are_on_every_follower_mount);
	tcase_add_test(tc, follower_mount_refuses_changes_with_erofs);
	tcase_add_test(tc, fsynced_files_survive_a_leader_kill9);
	tcase_add_test(tc, restarted_node_catches_up_and_its_follower_mount_is_read_only);
	tcase_add_test(tc, control_file_shows_raft_state);
	tcase_add_test(tc, a_follower_kernel_forgets_what_the_leader_changed);
	tcase_add_test(tc, cluster_option_errors_are_usage_errors);
	tcase_add_test(tc, a_node_refuses_a_read_only_store);
	suite_add_tcase(s, tc);
	TCase *tw = tcase_create("writer");
	tcase_add_test(tw, a_change_built_in_another_term_answers_erofs_and_changes_nothing);
	suite_add_tcase(s, tw);
	return mt_run(s);
}
