/* ops_file.c — files: create, open, read, write, truncate, release, fsync.
 *
 * A write is one log record: the byte range (the engine's WRITE operation) and the file's new
 * mtime and ctime, in one batch, so a 4 KiB write into a large file never rewrites the file and
 * the times never disagree with the data after a crash. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fs_internal.h"

static struct kvfs_handle *handle_new(struct kvfs_fs *fs)
{
	struct kvfs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_lock(&fs->handles_mu);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_mu);
	return h;
}

static void handle_free(struct kvfs_fs *fs, struct kvfs_handle *h)
{
	pthread_mutex_lock(&fs->handles_mu);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_mu);
	free(h->text);
	free(h);
}

void kvfs_handles_free_all(struct kvfs_fs *fs)
{
	while (fs->handles)
		handle_free(fs, fs->handles);
}

static int open_control(struct kvfs_fs *fs, struct fuse_file_info *fi)
{
	struct kvfs_handle *h = handle_new(fs);
	int rc;

	if (!h)
		return -ENOMEM;
	h->control = 1;
	if ((fi->flags & O_ACCMODE) != O_WRONLY) {
		rc = kvfs_control_render(fs->kv, &h->text, &h->len);
		if (rc) {
			handle_free(fs, h);
			return rc;
		}
	}
	/* straight to the daemon: no page cache, reads return what was rendered, writes run
	 * their command before returning */
	fi->direct_io = 1;
	fi->fh = (uintptr_t)h;
	return 0;
}

/* Truncate key to size with the times a truncation sets; the caller holds key's stripe. */
static int truncate_locked(struct kvfs_fs *fs, const char *key, size_t klen, uint64_t size)
{
	struct kv_batch *b = NULL;
	struct kvfs_node n;
	struct timespec now;
	int rc;

	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		return rc;
	if (S_ISDIR(n.meta.mode))
		return -EISDIR;
	if (!S_ISREG(n.meta.mode))
		return -EINVAL;
	rc = kv_batch_new(&b);
	if (rc)
		return rc;
	kvfs_now(&now);
	n.meta.mtime = n.meta.ctime = now;
	rc = kv_batch_truncate(b, key, klen, size);
	if (!rc)
		rc = kvfs_batch_meta(b, key, klen, &n);
	if (!rc)
		rc = kv_apply(fs->kv, b, NULL);
	kv_batch_free(b);
	return rc;
}

/* The part of open shared with create: a handle for a regular file, registered in fs->open
 * under the key's stripe, so that an unlink or rename sees every open that happened before it. */
static int open_file(struct kvfs_fs *fs, const char *key, size_t klen, struct fuse_file_info *fi)
{
	struct kvfs_handle *h = handle_new(fs);
	struct kvfs_locks l;
	struct kvfs_node n;
	int rc;

	if (!h)
		return -ENOMEM;
	kvfs_lock(fs, &l, 0, KVFS_TREE_SHARED, 1, &key, &klen);
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		goto out;
	if (S_ISDIR(n.meta.mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (!S_ISREG(n.meta.mode)) {
		rc = -EINVAL; /* the kernel opens special files and follows symlinks itself */
		goto out;
	}
	/* FUSE_CAP_ATOMIC_O_TRUNC: the truncation comes with the open, not as a setattr */
	if (fi->flags & O_TRUNC) {
		rc = truncate_locked(fs, key, klen, 0);
		if (rc)
			goto out;
	}
	rc = kvfs_of_open(fs->open, key, klen, &h->file);
	if (rc)
		goto out;
	h->append = (fi->flags & O_APPEND) != 0;
	fi->fh = (uintptr_t)h;
	/* Every change reaches the store through this kernel (the daemon is the store's only
	 * writer and kv_cli cannot open it meanwhile), so cached pages stay right across opens. */
	fi->keep_cache = 1;
out:
	kvfs_unlock(&l);
	if (rc)
		handle_free(fs, h);
	return rc;
}

int kvfs_make_node(const char *path, mode_t mode, dev_t rdev, const void *val, size_t vlen)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kv_batch *b = NULL;
	struct kvfs_node parent, n;
	struct kvfs_meta m;
	struct kvfs_locks l;
	struct timespec now;
	uint8_t mbuf[KVFS_META_LEN];
	const char *key;
	size_t klen, plen;
	int rc;

	rc = kvfs_entry_begin(path, -EEXIST, -EEXIST, &key, &klen, &plen, &b);
	if (rc)
		return rc;
	kvfs_lock(fs, &l, 1, KVFS_TREE_NONE, 1, &key, &plen);
	rc = kvfs_node_get(fs, key, plen, &parent);
	if (rc)
		goto out;
	if (!S_ISDIR(parent.meta.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc != -ENOENT) {
		rc = rc ? rc : -EEXIST;
		goto out;
	}
	kvfs_now(&now);
	kvfs_meta_new(&parent, mode, rdev, &now, &m);
	rc = kv_batch_put(b, key, klen, mbuf, kvfs_meta_encode(&m, mbuf), val, vlen);
	if (rc)
		goto out;
	rc = kvfs_batch_dir_changed(b, key, plen, &parent, &now);
	if (rc)
		goto out;
	rc = kv_apply(fs->kv, b, NULL);
out:
	kvfs_unlock(&l);
	kv_batch_free(b);
	return rc;
}

int kvfs_op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	const char *key;
	size_t klen;
	int rc;

	rc = kvfs_make_node(path, S_IFREG | (mode & 07777), 0, NULL, 0);
	if (rc)
		return rc;
	rc = kvfs_path_key(path, &key, &klen);
	if (rc)
		return rc;
	/* O_TRUNC of a file made empty a moment ago changes nothing */
	fi->flags &= ~O_TRUNC;
	return open_file(kvfs_fs_current(), key, klen, fi);
}

int kvfs_op_open(const char *path, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	const char *key;
	size_t klen;
	int rc;

	if (kvfs_is_control(path))
		return open_control(fs, fi);
	rc = kvfs_path_key(path, &key, &klen);
	if (rc)
		return rc;
	return open_file(fs, key, klen, fi);
}

int kvfs_op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kvfs_handle *h = kvfs_handle_of(fi);
	char kbuf[KV_MAX_KEY];
	const char *key;
	size_t klen, got = 0;
	int rc;

	if (off < 0)
		return -EINVAL;
	if (h && h->control) {
		if (!h->text)
			return -EBADF;
		if ((uint64_t)off >= h->len)
			return 0;
		got = h->len - (size_t)off < size ? h->len - (size_t)off : size;
		memcpy(buf, h->text + off, got);
		return (int)got;
	}
	rc = kvfs_target_key(fs, path, fi, kbuf, &key, &klen);
	if (rc)
		return rc;
	if (size > INT32_MAX)
		size = INT32_MAX; /* the reply is an int; FUSE never asks for that much */
	rc = kv_read(fs->kv, key, klen, (uint64_t)off, buf, size, &got);
	if (rc)
		return rc;
	return (int)got;
}

int kvfs_op_write(const char *path, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kvfs_handle *h = kvfs_handle_of(fi);
	struct kv_batch *b = NULL;
	char kbuf[KV_MAX_KEY];
	struct kvfs_locks l;
	struct kvfs_node n;
	struct timespec now;
	const char *key;
	size_t klen;
	uint64_t at;
	int rc;

	if (off < 0)
		return -EINVAL;
	if (size > INT32_MAX)
		size = INT32_MAX;
	if (h && h->control) {
		rc = kvfs_control_command(fs->kv, buf, size);
		return rc ? rc : (int)size;
	}
	rc = kv_batch_new(&b);
	if (rc)
		return rc;
	rc = kvfs_lock_target(fs, path, fi, kbuf, &key, &klen, &l);
	if (rc) {
		kv_batch_free(b);
		return rc;
	}
	/* present under the stripe: a WRITE of an absent key would create it, and an unlink or
	 * rename takes this stripe too */
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		goto out;
	if (!S_ISREG(n.meta.mode)) {
		rc = S_ISDIR(n.meta.mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	/* O_APPEND: the end as the store has it, read under the stripe that orders writers. Not
	 * for the kernel's writeback of a shared writable mapping (fi->writepage): it may come
	 * through an O_APPEND handle, and its pages belong at their own offsets. */
	at = h && h->append && !(fi && fi->writepage) ? n.size : (uint64_t)off;
	if (at >= KV_MAX_VALUE) {
		rc = -EFBIG;
		goto out;
	}
	if (size > KV_MAX_VALUE - at)
		size = (size_t)(KV_MAX_VALUE - at); /* as much as fits; the next write gets EFBIG */
	if (size == 0)
		goto out;
	kvfs_now(&now);
	n.meta.mtime = n.meta.ctime = now;
	rc = kv_batch_write(b, key, klen, at, buf, size);
	if (rc)
		goto out;
	rc = kvfs_batch_meta(b, key, klen, &n);
	if (rc)
		goto out;
	rc = kv_apply(fs->kv, b, NULL);
out:
	kvfs_unlock(&l);
	kv_batch_free(b);
	return rc ? rc : (int)size;
}

int kvfs_op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	const struct kvfs_handle *h = kvfs_handle_of(fi);
	char kbuf[KV_MAX_KEY];
	struct kvfs_locks l;
	const char *key;
	size_t klen;
	int rc;

	if ((path && kvfs_is_control(path)) || (h && h->control))
		return size == 0 ? 0 : -EPERM; /* "echo cmd > .kvfs" may truncate first: harmless */
	if (size < 0)
		return -EINVAL;
	if ((uint64_t)size > KV_MAX_VALUE)
		return -EFBIG;
	rc = kvfs_lock_target(fs, path, fi, kbuf, &key, &klen, &l);
	if (rc)
		return rc;
	rc = truncate_locked(fs, key, klen, (uint64_t)size);
	kvfs_unlock(&l);
	return rc;
}

/* The last close of a file unlinked while open deletes its orphan key. */
int kvfs_op_release(const char *path, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kvfs_handle *h = kvfs_handle_of(fi);
	char kbuf[KV_MAX_KEY], orphan[KVFS_ORPHAN_KEY_MAX];
	struct kvfs_locks l;
	const char *key;
	size_t klen, olen = 0;
	int rc;

	(void)path;
	if (!h)
		return 0;
	if (h->file) {
		/* under the stripe of its current key: an unlink that is orphaning it right now
		 * finishes first, and we then delete what it made */
		rc = kvfs_lock_target(fs, NULL, fi, kbuf, &key, &klen, &l);
		if (rc == 0) {
			if (kvfs_of_close(fs->open, h->file, orphan, &olen)) {
				rc = kv_del(fs->kv, orphan, olen);
				if (rc && rc != -ENOENT)
					fuse_log(FUSE_LOG_ERR, "deleting %.*s, unlinked and now closed: %s "
						 "(the next mount deletes it)\n", (int)olen, orphan,
						 strerror(-rc));
			}
			kvfs_unlock(&l);
		} else {
			/* its key was lost to a failed allocation: nothing to delete by name */
			kvfs_of_close(fs->open, h->file, orphan, &olen);
		}
	}
	handle_free(fs, h);
	return 0;
}

/* Every write issued before, to any file, is durable when this returns: the log is one
 * sequence, and concurrent callers share one fdatasync (the engine's group commit). */
int kvfs_op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path, (void)datasync, (void)fi;
	return kv_flush(kvfs_fs_current()->kv);
}
