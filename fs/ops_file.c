/* ops_file.c — file data: create, read, write, fsync, fallocate, O_TMPFILE.
 *
 * There is no OPEN (or RELEASE) round trip: open replies ENOSYS once, and from then on the
 * kernel opens files itself, keeping their cached pages (lowlevel.c). So a file is named by
 * its node alone, whether it is open or not, named or not, and no open-file state is kept.
 * A write is one log record: the byte range (the engine's WRITE) and the file's new mtime and
 * ctime, in one batch, so a 4 KiB write into a large file never rewrites the file and the times
 * never disagree with the data after a crash. A first write into preallocated bytes consumes
 * their promised space in the same record (prealloc.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

/* The engine's largest value (1 TiB), the largest file: a write that would cross it writes what
 * fits, as a local filesystem does at its maximum file size. */
#define FILE_MAX ((uint64_t)KV_MAX_VALUE)

void kvfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct fuse_entry_param e;
	int rc = kvfs_make_node(fs, fuse_req_ctx(req), parent, name, S_IFREG | (mode & 07777), 0,
				NULL, 0, &e);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* the open that comes with it: cached pages stay across opens (every change passes
	 * through this kernel) */
	fi->fh = 0;
	fi->keep_cache = 1;
	fi->direct_io = 0;
	if (fuse_reply_create(req, &e, fi))
		kvfs_node_forget(fs, kvfs_node_of(fs, e.ino), 1);
}

/* Each serving thread's read buffer, kept for its next read (as large as the largest read);
 * freed by kvfs_thread_buffers_free when the thread ends. */
static __thread char *read_buf;
static __thread size_t read_cap;

void kvfs_thread_buffers_free(void)
{
	free(read_buf);
	read_buf = NULL;
	read_cap = 0;
}

static char *thread_buf(size_t size)
{
	if (size <= read_cap)
		return read_buf;
	free(read_buf);
	read_cap = 0;
	read_buf = malloc(size);
	if (read_buf)
		read_cap = size;
	return read_buf;
}

void kvfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_txn t;
	size_t got = 0;
	char *buf = NULL;
	int rc;

	(void)fi;
	rc = kvfs_txn_begin_bytes(&t, fs, ino, KVFS_TXN_READ);
	if (!rc && off < 0)
		rc = -EINVAL;
	if (!rc && S_ISDIR(t.st.meta.mode))
		rc = -EISDIR;
	if (!rc) {
		buf = thread_buf(size ? size : 1);
		rc = buf ? kv_read(fs->kv, t.key, t.klen, (uint64_t)off, buf, size, &got) : -ENOMEM;
	}
	kvfs_txn_end(&t);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, got);
}

/* One write by req's caller into the node t holds, as one record. *setid_killed: it cleared a
 * set-ID bit. */
static int write_txn(struct kvfs_txn *t, fuse_req_t req, const char *buf, size_t *size, off_t off,
		     int *setid_killed)
{
	struct kv_batch *b;
	struct timespec now;
	uint64_t promised = 0;
	int rc;

	if (S_ISDIR(t->st.meta.mode))
		return -EISDIR;
	if (!S_ISREG(t->st.meta.mode))
		return -EINVAL;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= FILE_MAX)
		return -EFBIG;
	if (*size > FILE_MAX - (uint64_t)off)
		*size = (size_t)(FILE_MAX - (uint64_t)off); /* as much as fits; the next gets EFBIG */
	if (*size == 0)
		return 0;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	kvfs_now(&now);
	t->st.meta.mtime = t->st.meta.ctime = now;
	/* As a local filesystem does (file_remove_privs): set-ID bits go when the kernel says the
	 * writer lacks CAP_FSETID (set-group-ID without group-execute only for a writer outside
	 * the file's group: kvfs_kill_setid); file capabilities go with any write, whoever
	 * writes. The kernel removes them itself before a write when it finds them (its GETXATTR of
	 * security.capability), but not when it believes from what it cached that there are none:
	 * removing them here holds the rule whatever the kernel knew. */
	if (kvfs_write_kills_privs())
		*setid_killed = kvfs_kill_setid(&t->st.meta, req);
	rc = kvfs_kill_caps(t, b);
	if (rc)
		return rc;
	rc = kvfs_prealloc_write(t, (uint64_t)off, *size, &promised);
	if (!rc)
		rc = kv_batch_write(b, t->key, t->klen, (uint64_t)off, buf, *size);
	if (!rc)
		rc = kvfs_batch_meta(b, t->key, t->klen, &t->st);
	return rc ? rc : kvfs_txn_commit_promised(t, promised);
}

void kvfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_txn t;
	int rc, setid_killed = 0;

	(void)fi; /* O_APPEND: the kernel puts the offset at its size, which is ours */
	rc = kvfs_txn_begin_bytes(&t, fs, ino, KVFS_TXN_NODE);
	if (!rc)
		rc = write_txn(&t, req, buf, &size, off, &setid_killed);
	kvfs_txn_end(&t);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_write(req, size);
	/* After a WRITE the kernel refreshes a file's size and times, not its mode: without this
	 * it would go on believing the bits are set (and exec would honour them) until the
	 * attributes time out. Rare: only a write by a non-owner into a set-ID file. */
	if (setid_killed)
		kvfs_notify_inode(fs, ino);
}

/* Every write issued before, to any file, is durable when this returns: the log is one
 * sequence, and concurrent callers share one fdatasync (the engine's group commit). On a node of
 * a replicated group: durable on a majority (the writer's flush). */
void kvfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, -kvfs_fs_flush(kvfs_fs_of(req)));
}

/* [off, end) of a file of size bytes made a hole, into b: it reads as zeros and holds no disk
 * space (the engine's PUNCH drops the extents; the cleaner gives their room back). The part past
 * the end needs nothing. */
static int punch_range(struct kv_batch *b, const char *key, size_t klen, uint64_t off,
		       uint64_t end, uint64_t size)
{
	if (end > size)
		end = size;
	if (off >= end)
		return 0;
	return kv_batch_punch(b, key, klen, off, end - off);
}

static int prealloc_changed(const struct kvfs_meta *a, const struct kvfs_meta *b)
{
	return a->pa_lo != b->pa_lo || a->pa_hi != b->pa_hi || a->pa_unwritten != b->pa_unwritten ||
	       a->pa_promised != b->pa_promised;
}

/* Preallocation (mode 0, KEEP_SIZE, ZERO_RANGE) promises the range's unwritten bytes their log
 * room before anything is logged (prealloc.c): -ENOSPC when the disk cannot hold it, and
 * nothing changed; a change that then fails to apply gives the promise back. */
static int fallocate_txn(struct kvfs_txn *t, int mode, off_t off, off_t len)
{
	const int keep = mode & FALLOC_FL_KEEP_SIZE;
	struct kv_batch *b;
	struct timespec now;
	uint64_t end, size = t->st.size, promised = 0;
	const struct kvfs_meta old = t->st.meta;
	int rc;

	if (S_ISDIR(t->st.meta.mode))
		return -EISDIR;
	if (!S_ISREG(t->st.meta.mode))
		return -ENODEV;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off > FILE_MAX || (uint64_t)len > FILE_MAX - (uint64_t)off)
		return -EFBIG;
	end = (uint64_t)off + (uint64_t)len;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	switch (mode & ~FALLOC_FL_KEEP_SIZE) {
	case 0:
		/* the range's holes are promised their room; the size grows (zeros) unless
		 * KEEP_SIZE */
		rc = kvfs_prealloc_range(t, (uint64_t)off, end, 0, &promised);
		if (rc)
			break;
		if (keep || end <= size) {
			if (!prealloc_changed(&old, &t->st.meta))
				return 0; /* already written or preallocated: nothing changes */
			break;
		}
		rc = kv_batch_truncate(b, t->key, t->klen, end);
		break;
	case FALLOC_FL_PUNCH_HOLE:
		if (!keep)
			return -EOPNOTSUPP; /* punching goes with KEEP_SIZE, as on every filesystem */
		rc = kvfs_prealloc_punch(t, (uint64_t)off, end, &promised);
		if (!rc)
			rc = punch_range(b, t->key, t->klen, (uint64_t)off, end, size);
		break;
	case FALLOC_FL_ZERO_RANGE:
		/* zeros are a hole here, preallocated as for mode 0 */
		rc = kvfs_prealloc_range(t, (uint64_t)off, end, 1, &promised);
		if (!rc)
			rc = punch_range(b, t->key, t->klen, (uint64_t)off, end, size);
		if (!rc && !keep && end > size)
			rc = kv_batch_truncate(b, t->key, t->klen, end);
		break;
	default:
		return -EOPNOTSUPP; /* COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE */
	}
	if (!rc) {
		kvfs_now(&now);
		t->st.meta.mtime = t->st.meta.ctime = now;
		rc = kvfs_batch_meta(b, t->key, t->klen, &t->st);
	}
	if (!rc)
		rc = kvfs_txn_commit(t);
	if (!t->lsn)
		kv_promise_release(t->fs->kv, promised); /* not applied: the promise goes back */
	return rc;
}

void kvfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		       struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_txn t;
	int rc;

	(void)fi;
	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_NODE);
	if (!rc)
		rc = fallocate_txn(&t, mode, off, len);
	kvfs_txn_end(&t);
	fuse_reply_err(req, -rc);
}

static int tmpfile_txn(struct kvfs_txn *t, uint32_t mode, uint32_t umask, uid_t uid, gid_t gid,
		       uint64_t *id, uint64_t *ino)
{
	struct kvfs_fs *fs = t->fs;
	struct kvfs_meta m;
	struct kv_batch *b;
	struct timespec now;
	uint8_t blob[KVFS_META_LEN];
	char key[KVFS_ID_KEY_MAX];
	size_t klen;
	int rc;

	if (!S_ISDIR(t->st.meta.mode))
		return -ENOTDIR;
	rc = kvfs_new_id(fs, id);
	if (!rc)
		rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	klen = kvfs_id_key(key, KVFS_ORPHAN_PREFIX, *id);
	kvfs_now(&now);
	memset(&m, 0, sizeof(m));
	m.mode = S_IFREG | (mode & 07777);
	m.uid = uid;
	m.gid = (t->st.meta.mode & S_ISGID) ? t->st.meta.gid : gid;
	m.atime = m.mtime = m.ctime = now;
	m.nlink = 1;
	rc = kvfs_new_ino(fs, &m.ino);
	if (rc)
		return rc;
	*ino = m.ino;
	rc = kvfs_inherit_acls(t, &m.mode, umask, key, klen, &m.flags);
	if (rc)
		return rc;
	rc = kv_batch_put(b, key, klen, blob, kvfs_meta_encode(&m, blob), NULL, 0);
	return rc ? rc : kvfs_txn_commit(t);
}

int kvfs_tmpfile(struct kvfs_fs *fs, fuse_ino_t parent, uint32_t mode, uint32_t umask,
		 uid_t uid, gid_t gid, struct fuse_entry_param *e)
{
	struct kvfs_txn t;
	struct kvfs_node *n = NULL;
	uint64_t id = 0, ino = 0;
	int rc;

	rc = kvfs_txn_begin(&t, fs, parent, KVFS_TXN_NAMESPACE);
	if (!rc)
		rc = tmpfile_txn(&t, mode, umask, uid, gid, &id, &ino);
	if (t.lsn) {
		/* applied: a node owns the orphan key from now on, even if the flush failed */
		int nrc = kvfs_node_new_orphan(fs, S_IFREG, id, ino, &n);

		if (!rc)
			rc = nrc;
	}
	if (!rc) {
		char key[KVFS_ID_KEY_MAX];
		struct kvfs_stored st;

		rc = kvfs_load(fs, key, kvfs_id_key(key, KVFS_ORPHAN_PREFIX, id), &st);
		if (!rc)
			kvfs_entry_fill(fs, n, &st, 0, e);
		else
			kvfs_node_forget(fs, n, 1);
	} else if (n) {
		kvfs_node_forget(fs, n, 1); /* applied, then its flush failed: deleted again */
	}
	kvfs_txn_end(&t);
	return rc;
}
