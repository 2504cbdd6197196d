/* control.c — the control file MOUNTPOINT/.kvfs, a node of its own kind: reading it gives the
 * store's statistics as "name: value" lines (control_text.c); writing a command to it ("flush", "snapshot") runs
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
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fs_internal.h"

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
	char *text;
	size_t len;
	int rc = kvfs_control_render(fs->kv, &text, &len);

	if (rc)
		return rc;
	rc = kvfs_node_new_control(fs, text, len, &n);
	if (rc) {
		free(text);
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
static int run_commands(struct kvfs_fs *fs, const char *buf, size_t len)
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
			rc = kvfs_fs_flush(fs); /* a replicated group's: on a majority */
		else if (word_is(buf + s, e - s, "snapshot"))
			rc = kv_snapshot(fs->kv); /* this node's own checkpoint */
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
	int rc = run_commands(kvfs_fs_of(req), buf, size);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}
