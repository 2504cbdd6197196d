/* ops_ns.c — names: mknod, symlink, readlink, unlink, rename, link.
 *
 * Every change here is one batch, so one log record: after a crash a rename of a whole
 * directory is either all there or not at all, and a parent's new mtime never lands without
 * the entry that changed it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs_internal.h"

int kvfs_op_mknod(const char *path, mode_t mode, dev_t rdev)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		/* fall through */
	case S_IFCHR:
	case S_IFBLK:
		return kvfs_make_node(path, mode & (S_IFMT | 07777), rdev, NULL, 0);
	default:
		return -EINVAL;
	}
}

int kvfs_op_symlink(const char *target, const char *path)
{
	size_t len = strlen(target);

	if (len >= 4096)
		return -ENAMETOOLONG;
	return kvfs_make_node(path, S_IFLNK | 0777, 0, target, len);
}

int kvfs_op_readlink(const char *path, char *buf, size_t size)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kvfs_node n;
	const char *key;
	size_t klen, got = 0;
	int rc;

	if (size == 0)
		return -EINVAL;
	rc = kvfs_path_key(path, &key, &klen);
	if (rc)
		return rc;
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		return rc;
	if (!S_ISLNK(n.meta.mode))
		return -EINVAL;
	rc = kv_read(fs->kv, key, klen, 0, buf, size - 1, &got);
	if (rc)
		return rc;
	buf[got] = '\0';
	return 0;
}

/* An open file is not deleted but moved to an orphan key, in the same batch, and deleted at its
 * last close (openfiles.h): it stays readable and writable through its descriptors. */
int kvfs_op_unlink(const char *path)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kv_batch *b = NULL;
	struct kvfs_node parent, n;
	struct kvfs_locks l;
	struct timespec now;
	char orphan[KVFS_ORPHAN_KEY_MAX];
	const char *key;
	size_t klen, plen, olen = 0;
	uint64_t lsn = 0;
	int rc;

	rc = kvfs_entry_begin(path, -EPERM, -EISDIR, &key, &klen, &plen, &b);
	if (rc)
		return rc;
	{
		/* the node's stripe too: orders us with writes (a WRITE of a key deleted under it
		 * would bring it back), opens and last closes of the node */
		const char *keys[2] = { key, key };
		size_t lens[2] = { plen, klen };

		kvfs_lock(fs, &l, 1, KVFS_TREE_NONE, 2, keys, lens);
	}
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		goto out;
	if (S_ISDIR(n.meta.mode)) {
		rc = -EISDIR;
		goto out;
	}
	rc = kvfs_node_get(fs, key, plen, &parent);
	if (rc)
		goto out;
	kvfs_now(&now);
	if (kvfs_of_is_open(fs->open, key, klen)) {
		olen = kvfs_of_orphan_name(fs->open, orphan);
		rc = kv_batch_rename(b, key, klen, orphan, olen);
	} else {
		rc = kv_batch_del(b, key, klen);
	}
	if (rc)
		goto out;
	rc = kvfs_batch_dir_changed(b, key, plen, &parent, &now);
	if (rc)
		goto out;
	rc = kv_apply(fs->kv, b, &lsn);
	/* lsn set: the record is applied (a failed sync after it still reports an error), so the
	 * open file's descriptors must follow it to the orphan key either way */
	if (lsn && olen && kvfs_of_orphaned(fs->open, key, klen, orphan, olen) && rc == 0)
		rc = -EIO;
out:
	kvfs_unlock(&l);
	kv_batch_free(b);
	return rc;
}

/* to names a key inside from's subtree ("a" -> "a/b"). */
static int is_below(const char *from, size_t flen, const char *to, size_t tlen)
{
	return tlen > flen && memcmp(to, from, flen) == 0 && to[flen] == '/';
}

/* The rename proper, under the locks: checks, then one batch. -EAGAIN when from is a directory
 * and tree_lock is not held exclusively (it became one since the caller looked). */
static int rename_locked(struct kvfs_fs *fs, const char *from, size_t flen, const char *to,
			 size_t tlen, unsigned int flags, int tree_exclusive, struct kv_batch *b)
{
	size_t fplen = kvfs_parent_klen(from, flen), tplen = kvfs_parent_klen(to, tlen), olen = 0;
	uint64_t lsn = 0;
	struct kvfs_node src, dst, fparent, tparent;
	char fprefix[KV_MAX_KEY + 2], tprefix[KV_MAX_KEY + 2], orphan[KVFS_ORPHAN_KEY_MAX];
	struct timespec now;
	int rc, dst_exists;

	rc = kvfs_node_get(fs, from, flen, &src);
	if (rc)
		return rc;
	if (S_ISDIR(src.meta.mode) && !tree_exclusive)
		return -EAGAIN;
	rc = kvfs_node_get(fs, to, tlen, &dst);
	if (rc && rc != -ENOENT)
		return rc;
	dst_exists = rc == 0;
	if (dst_exists) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (S_ISDIR(src.meta.mode)) {
			if (!S_ISDIR(dst.meta.mode))
				return -ENOTDIR;
			rc = kvfs_has_children(fs, to, tlen);
			if (rc)
				return rc > 0 ? -ENOTEMPTY : rc;
		} else if (S_ISDIR(dst.meta.mode)) {
			return -EISDIR;
		}
	}
	rc = kvfs_node_get(fs, to, tplen, &tparent);
	if (rc)
		return rc;
	if (!S_ISDIR(tparent.meta.mode))
		return -ENOTDIR;
	rc = kvfs_node_get(fs, from, fplen, &fparent);
	if (rc)
		return rc;

	kvfs_now(&now);
	/* A target file that is open lives on as an orphan, moved aside in this same batch: the
	 * replacement is atomic, also across a crash. */
	if (dst_exists && !S_ISDIR(dst.meta.mode) && kvfs_of_is_open(fs->open, to, tlen)) {
		olen = kvfs_of_orphan_name(fs->open, orphan);
		rc = kv_batch_rename(b, to, tlen, orphan, olen);
		if (rc)
			return rc;
	}
	if (src.has_key) {
		rc = kv_batch_rename(b, from, flen, to, tlen);
		if (rc)
			return rc;
	}
	if (S_ISDIR(src.meta.mode)) {
		/* the whole subtree, visible keys or not, under the same LSN as the node */
		memcpy(fprefix, from, flen);
		fprefix[flen] = '/';
		memcpy(tprefix, to, tlen);
		tprefix[tlen] = '/';
		rc = kv_batch_rename_prefix(b, fprefix, flen + 1, tprefix, tlen + 1);
		if (rc)
			return rc;
	}
	/* The moved node's ctime. An implicit directory becomes a real one at its new name
	 * (a PUT that also replaces an empty directory there). */
	src.meta.ctime = now;
	rc = kvfs_batch_meta(b, to, tlen, &src);
	if (rc)
		return rc;
	rc = kvfs_batch_dir_changed(b, from, fplen, &fparent, &now);
	if (rc)
		return rc;
	if (tplen != fplen || memcmp(from, to, fplen) != 0) {
		rc = kvfs_batch_dir_changed(b, to, tplen, &tparent, &now);
		if (rc)
			return rc;
	}
	rc = kv_apply(fs->kv, b, &lsn);
	if (!lsn)
		return rc; /* not applied */
	/* Applied (a failed sync after it still reports an error): open files follow, the
	 * replaced target to its orphan key, then the moved node and (for a directory)
	 * everything open below it. */
	if (olen && kvfs_of_orphaned(fs->open, to, tlen, orphan, olen) && rc == 0)
		rc = -EIO;
	if (kvfs_of_moved(fs->open, from, flen, to, tlen, S_ISDIR(src.meta.mode)) && rc == 0)
		rc = -EIO;
	return rc;
}

int kvfs_op_rename(const char *from_path, const char *to_path, unsigned int flags)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kv_batch *b = NULL;
	struct kvfs_locks l;
	struct kvfs_node src;
	const char *from, *to;
	size_t flen, tlen;
	int rc, excl;

	/* RENAME_EXCHANGE would need both entries swapped in one batch, which the engine's
	 * RENAME (it replaces its target) cannot say without a temporary key; refused. */
	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return -EINVAL;
	if (kvfs_is_control(from_path) || kvfs_is_control(to_path))
		return -EPERM;
	rc = kvfs_path_key(from_path, &from, &flen);
	if (rc)
		return rc;
	rc = kvfs_path_key(to_path, &to, &tlen);
	if (rc)
		return rc;
	if (flen == 0 || tlen == 0)
		return -EBUSY;
	if (flen == tlen && memcmp(from, to, flen) == 0)
		return (flags & RENAME_NOREPLACE) ? -EEXIST : 0;
	if (is_below(from, flen, to, tlen))
		return -EINVAL;
	/* A directory's rename moves the keys of open files below it: tree_lock, taken
	 * exclusively, keeps every change through such a key out meanwhile. Guess from a look
	 * without locks; rename_locked says when the guess was wrong. */
	excl = kvfs_node_get(fs, from, flen, &src) == 0 && S_ISDIR(src.meta.mode);
	{
		const char *keys[4] = { from, to, from, to };
		size_t lens[4] = { kvfs_parent_klen(from, flen), kvfs_parent_klen(to, tlen), flen,
				   tlen };

		do {
			rc = kv_batch_new(&b);
			if (rc)
				return rc;
			kvfs_lock(fs, &l, 1, excl ? KVFS_TREE_EXCLUSIVE : KVFS_TREE_NONE, 4, keys, lens);
			rc = rename_locked(fs, from, flen, to, tlen, flags, excl, b);
			kvfs_unlock(&l);
			kv_batch_free(b);
			excl = 1;
		} while (rc == -EAGAIN);
	}
	return rc;
}

/* Hard links would need an inode layer under the keys (a name is a key, a key has one name). */
int kvfs_op_link(const char *from, const char *to)
{
	(void)from, (void)to;
	return -EPERM;
}
