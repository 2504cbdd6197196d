/* control.c — the control file MOUNTPOINT/.kvfs, a node of its own kind: reading it gives the
 * store's statistics as "name: value" lines; writing a command to it ("flush", "snapshot") runs
 * the command before the write returns, and a failed command is a failed write.
 *
 * The kernel opens files without asking us (no OPEN round trips), so there is no open handle
 * to render the statistics into, and it reads them through its page cache like any file. A
 * reader must still see one consistent text, with the size it was told, across its read(2)
 * calls. So the text is rendered per process (the pid every request carries):
 *   - a LOOKUP of ".kvfs" renders a new snapshot for the calling process: its entry is never
 *     cached (timeout 0), so every open by name (cat, a script) asks again;
 *   - GETATTR and READ from that process are answered from its snapshot (rendered on first
 *     use when it has none); its size and mtime are the snapshot's;
 *   - attributes are never cached either, and with FUSE_CAP_AUTO_INVAL_DATA the kernel drops
 *     its cached pages whenever the mtime it is told moves, so a process never reads pages of
 *     another's snapshot.
 * A process that keeps the file open and reads it again sees the same figures, as it did when
 * each open rendered its own text. SNAPSHOTS processes are remembered, the oldest dropped. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

#define SNAPSHOTS 32

struct snapshot {
	pid_t pid;
	uint64_t used; /* when last used, in uses */
	struct timespec when;
	size_t len;
	char text[2048];
};

static struct {
	pthread_mutex_t mu;
	struct snapshot s[SNAPSHOTS];
	uint64_t uses;
} snaps = { PTHREAD_MUTEX_INITIALIZER, { { 0 } }, 0 };

static void add(struct snapshot *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct snapshot *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(t->text) - t->len)
		t->len += (size_t)n;
}

static void render(struct kvfs_fs *fs, struct snapshot *t)
{
	struct kv_stats st;

	kv_stats(fs->kv, &st);
	t->len = 0;
	add(t, "version: %s\n", KV_VERSION);
	add(t, "keys: %" PRIu64 "\n", st.keys);
	add(t, "bytes: %" PRIu64 "\n", st.bytes);
	add(t, "mem_bytes: %" PRIu64 "\n", st.mem_bytes);
	add(t, "mem_per_key: %" PRIu64 "\n", st.keys ? st.mem_bytes / st.keys : 0);
	add(t, "wal_bytes: %" PRIu64 "\n", st.wal_bytes);
	add(t, "last_lsn: %" PRIu64 "\n", st.last_lsn);
	add(t, "durable_lsn: %" PRIu64 "\n", st.durable_lsn);
	add(t, "snapshot_lsn: %" PRIu64 "\n", st.snapshot_lsn);
	add(t, "sync: %s\n", kv_sync_name(st.sync));
	add(t, "commit_ms: %u\n", st.commit_ms);
	add(t, "read_only: %s\n", st.read_only ? "yes" : "no");
	add(t, "error: %s\n", st.error ? strerror(-st.error) : "none");
	add(t, "flushes: %" PRIu64 "\n", st.flushes);
	add(t, "flush_requests: %" PRIu64 "\n", st.flush_requests);
	add(t, "fdatasyncs: %" PRIu64 "\n", st.fdatasyncs);
	add(t, "snapshots: %" PRIu64 "\n", st.snapshots);
	add(t, "snapshot_due: %" PRIu64 "\n", st.snapshot_due);
	kvfs_now(&t->when);
}

/* pid's snapshot (snaps.mu held): its own, rendered now when fresh or when it has none. */
static struct snapshot *snapshot_of(struct kvfs_fs *fs, pid_t pid, int fresh)
{
	struct snapshot *s = NULL, *oldest = &snaps.s[0];

	for (int i = 0; i < SNAPSHOTS && !s; i++) {
		if (snaps.s[i].used && snaps.s[i].pid == pid)
			s = &snaps.s[i];
		else if (snaps.s[i].used < oldest->used)
			oldest = &snaps.s[i];
	}
	if (!s) {
		s = oldest;
		s->pid = pid;
		fresh = 1;
	}
	s->used = ++snaps.uses;
	if (fresh) {
		struct timespec before = s->when;

		render(fs, s);
		if (s->when.tv_sec == before.tv_sec && s->when.tv_nsec == before.tv_nsec)
			s->when.tv_nsec++; /* a new text always shows a new mtime */
	}
	return s;
}

static void control_stat(struct kvfs_fs *fs, pid_t pid, int fresh, struct stat *st)
{
	struct snapshot *s;

	memset(st, 0, sizeof(*st));
	st->st_ino = fs->control->st_ino;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_atim = st->st_ctim = fs->mount_time;
	pthread_mutex_lock(&snaps.mu);
	s = snapshot_of(fs, pid, fresh);
	st->st_size = (off_t)s->len;
	st->st_mtim = s->when;
	pthread_mutex_unlock(&snaps.mu);
}

void kvfs_control_entry(fuse_req_t req, struct fuse_entry_param *e)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);

	memset(e, 0, sizeof(*e));
	e->ino = kvfs_ino_of(fs, fs->control);
	control_stat(fs, fuse_req_ctx(req)->pid, 1, &e->attr);
	e->attr_timeout = 0;
	e->entry_timeout = 0;
}

void kvfs_control_getattr(fuse_req_t req)
{
	struct stat st;

	control_stat(kvfs_fs_of(req), fuse_req_ctx(req)->pid, 0, &st);
	fuse_reply_attr(req, &st, 0);
}

/* "echo cmd > .kvfs" truncates first: harmless; nothing else about it can change. */
void kvfs_control_setattr(fuse_req_t req, struct stat *attr, int to_set)
{
	const int allowed = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW |
			    FUSE_SET_ATTR_CTIME;

	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0 && !(to_set & ~allowed))
		kvfs_control_getattr(req);
	else
		fuse_reply_err(req, EPERM);
}

void kvfs_control_read(fuse_req_t req, size_t size, off_t off)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct snapshot *s;
	char buf[sizeof(s->text)];
	size_t n = 0;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&snaps.mu);
	s = snapshot_of(fs, fuse_req_ctx(req)->pid, 0);
	if ((size_t)off < s->len) {
		n = s->len - (size_t)off < size ? s->len - (size_t)off : size;
		memcpy(buf, s->text + off, n);
	}
	pthread_mutex_unlock(&snaps.mu);
	fuse_reply_buf(req, buf, n);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int word_is(const char *w, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(w, name, n) == 0;
}

/* The commands in buf: one per line, surrounding blanks ignored, at least one. 0 once each has
 * finished (a flush or snapshot is durable); -EINVAL for an unknown or missing command
 * (commands before it have run); else the engine's error of the command that failed. */
static int run_commands(struct kv *kv, const char *buf, size_t len)
{
	size_t pos = 0;
	int ran = 0, rc;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len, s = pos, e = end;

		pos = end + 1;
		while (s < e && is_blank(buf[s]))
			s++;
		while (e > s && is_blank(buf[e - 1]))
			e--;
		if (s == e)
			continue;
		if (word_is(buf + s, e - s, "flush"))
			rc = kv_flush(kv);
		else if (word_is(buf + s, e - s, "snapshot"))
			rc = kv_snapshot(kv);
		else
			return -EINVAL;
		if (rc)
			return rc;
		ran++;
	}
	return ran ? 0 : -EINVAL;
}

void kvfs_control_write(fuse_req_t req, const char *buf, size_t size)
{
	int rc = run_commands(kvfs_fs_of(req)->kv, buf, size);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}
