/* control.c — the control file MOUNTPOINT/.kvfs, a node of its own kind: reading it gives the
 * store's statistics as "name: value" lines; writing a command to it ("flush", "snapshot") runs
 * the command before the write returns, and a failed command is a failed write.
 *
 * The kernel opens files without asking us (no OPEN round trips) and reads them through its
 * page cache, so there is no open handle to render the statistics into. Instead every LOOKUP
 * of ".kvfs" makes a new node holding the statistics of that moment: its entry is never
 * cached (timeout 0), so every open by name asks again and, given another node, gets a new
 * kernel inode with an empty page cache. A reader sees one consistent text, of the size it was
 * told, however many read(2) calls it takes; one that keeps the file open and reads it again
 * sees the same figures (as when each open rendered its own text). The node goes when the
 * kernel forgets it. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

struct text {
	char *buf;
	size_t len, cap;
	int err;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->err = -EINVAL;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		size_t cap = t->cap * 2 + (size_t)n;
		char *nb = realloc(t->buf, cap);

		if (!nb) {
			t->err = -ENOMEM;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
	t->len += (size_t)n;
}

static int render(struct kvfs_fs *fs, struct text *t)
{
	struct kv_stats st;

	t->cap = 1024;
	t->len = 0;
	t->err = 0;
	t->buf = malloc(t->cap);
	if (!t->buf)
		return -ENOMEM;
	kv_stats(fs->kv, &st);
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
	add(t, "segments: %" PRIu64 "\n", st.segments);
	add(t, "disk_bytes: %" PRIu64 "\n", st.disk_bytes);
	add(t, "live_bytes: %" PRIu64 "\n", st.live_bytes);
	add(t, "written_bytes: %" PRIu64 "\n", st.written_bytes);
	add(t, "cleaner_passes: %" PRIu64 "\n", st.cleaner_passes);
	add(t, "cleaner_moved_bytes: %" PRIu64 "\n", st.cleaner_moved_bytes);
	add(t, "segments_deleted: %" PRIu64 "\n", st.segments_deleted);
	add(t, "read_errors: %" PRIu64 "\n", st.read_errors);
	if (t->err)
		free(t->buf);
	return t->err;
}

static void control_stat(struct kvfs_fs *fs, const struct kvfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->st_ino;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)n->textlen;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mount_time;
}

int kvfs_control_lookup(struct kvfs_fs *fs, struct fuse_entry_param *e)
{
	struct kvfs_node *n;
	struct text t;
	int rc = render(fs, &t);

	if (rc)
		return rc;
	rc = kvfs_node_new_control(fs, t.buf, t.len, &n);
	if (rc) {
		free(t.buf);
		return rc;
	}
	memset(e, 0, sizeof(*e));
	e->ino = kvfs_ino_of(fs, n);
	control_stat(fs, n, &e->attr);
	e->attr_timeout = fs->cfg.attr_timeout; /* this node's text never changes */
	e->entry_timeout = 0;                   /* the next open asks again: a new node */
	return 0;
}

void kvfs_control_getattr(fuse_req_t req, struct kvfs_node *n)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct stat st;

	control_stat(fs, n, &st);
	fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

/* "echo cmd > .kvfs" truncates first: harmless; nothing else about it can change. */
void kvfs_control_setattr(fuse_req_t req, struct kvfs_node *n, struct stat *attr, int to_set)
{
	const int allowed = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW |
			    FUSE_SET_ATTR_CTIME;

	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0 && !(to_set & ~allowed))
		kvfs_control_getattr(req, n);
	else
		fuse_reply_err(req, EPERM);
}

void kvfs_control_read(fuse_req_t req, struct kvfs_node *n, size_t size, off_t off)
{
	size_t len;
	char *copy;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((size_t)off >= n->textlen) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* The reply goes from a copy: once the kernel has the bytes it may forget the node, and
	 * another thread free the text, while this one is still on its way out of writev. */
	len = n->textlen - (size_t)off < size ? n->textlen - (size_t)off : size;
	copy = malloc(len);
	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(copy, n->text + off, len);
	fuse_reply_buf(req, copy, len);
	free(copy);
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
