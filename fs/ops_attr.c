/* ops_attr.c — attributes: getattr, setattr (chmod, chown, truncate, utimens), statfs. */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs_internal.h"

void kvfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_txn t;
	struct stat st;
	uint64_t subdirs = 0;
	int rc;

	(void)fi; /* the node is the file, open or not, named or not */
	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_READ);
	if (!rc && S_ISDIR(t.st.meta.mode))
		rc = kvfs_dir_subdirs(fs, t.node, &subdirs);
	if (!rc)
		kvfs_stat_fill(fs, t.node, &t.st, subdirs, &st);
	kvfs_txn_end(&t);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

static void set_time(struct timespec *t, int set, int now_flag, const struct timespec *v,
		     const struct timespec *now)
{
	if (now_flag)
		*t = *now;
	else if (set)
		*t = *v;
}

/* Everything setattr changes, in one batch: mode (and an access ACL's entries with it), owner,
 * size, times; ctime becomes now. An implicit directory (or the root) becomes a real entry. */
static int setattr_txn(struct kvfs_txn *t, fuse_req_t req, const struct stat *attr, int to_set)
{
	struct kvfs_meta *m = &t->st.meta;
	struct kv_batch *b;
	struct timespec now;
	int rc = kvfs_txn_batch(t, &b);

	if (rc)
		return rc;
	kvfs_now(&now);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(m->mode))
			return -EISDIR;
		if (!S_ISREG(m->mode))
			return -EINVAL;
		if (attr->st_size < 0)
			return -EINVAL;
		rc = kv_batch_truncate(b, t->key, t->klen, (uint64_t)attr->st_size);
		if (!rc) /* a cut gives back the promise of preallocated bytes it removes */
			rc = kvfs_prealloc_truncate(t, (uint64_t)attr->st_size);
		if (rc)
			return rc;
		t->st.size = (uint64_t)attr->st_size;
		/* the kernel sends a truncation (also O_TRUNC) without times: it changes the data */
		if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
			to_set |= FUSE_SET_ATTR_MTIME_NOW;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		uint32_t mode = (m->mode & S_IFMT) | ((uint32_t)attr->st_mode & 07777);

		if (m->flags & KVFS_META_XATTRS) {
			rc = kvfs_acl_chmod(t, mode);
			if (rc)
				return rc;
		}
		m->mode = mode;
	}
	/* FATTR_KILL_SUIDGID (a chown; a truncate without CAP_FSETID), which libfuse calls
	 * KILL_SUID: ours to do under FUSE_HANDLE_KILLPRIV_V2 (device.c). A truncation clears a
	 * set-group-ID locking mark as a write does (its caller lacks CAP_FSETID); a chown is
	 * marked whoever chowns (root keeps a locking mark on a local filesystem) */
	if ((to_set & FUSE_SET_ATTR_KILL_SUID) && !S_ISDIR(m->mode)) {
		rc = kvfs_kill_privs(t, b, (to_set & FUSE_SET_ATTR_SIZE) ? req : NULL);
		if (rc)
			return rc;
	}
	if (to_set & FUSE_SET_ATTR_UID)
		m->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		m->gid = attr->st_gid;
	set_time(&m->atime, to_set & FUSE_SET_ATTR_ATIME, to_set & FUSE_SET_ATTR_ATIME_NOW,
		 &attr->st_atim, &now);
	set_time(&m->mtime, to_set & FUSE_SET_ATTR_MTIME, to_set & FUSE_SET_ATTR_MTIME_NOW,
		 &attr->st_mtim, &now);
	m->ctime = now;
	if (to_set & FUSE_SET_ATTR_CTIME)
		m->ctime = attr->st_ctim;
	rc = kvfs_batch_meta(b, t->key, t->klen, &t->st);
	if (rc)
		return rc;
	rc = kvfs_txn_commit(t);
	if (rc == 0)
		t->st.found = 1;
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) /* a cut frees bytes, a growth holds none */
		rc = kvfs_load_allocated(t->fs, t->key, t->klen, &t->st);
	return rc;
}

void kvfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		     struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_txn t;
	struct stat st;
	uint64_t subdirs = 0;
	int rc;

	(void)fi;
	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_NODE);
	if (!rc)
		rc = setattr_txn(&t, req, attr, to_set);
	if (!rc && S_ISDIR(t.st.meta.mode))
		rc = kvfs_dir_subdirs(fs, t.node, &subdirs);
	if (!rc)
		kvfs_stat_fill(fs, t.node, &t.st, subdirs, &st);
	else if (t.lsn)
		kvfs_notify_inode(fs, ino); /* applied, then the flush failed */
	kvfs_txn_end(&t);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

/* Space is the data directory's disk. Files: every key counts, and each free block could hold
 * one more (a rough ceiling: memory, not disk, bounds the number of keys in practice). Space
 * promised to preallocated files is not free: the store holds it in a file of its own
 * (engine/space.h), and what it could not hold (a disk that filled while unmounted) is taken
 * off here. */
void kvfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kv_stats ks;
	struct statvfs sv, out;
	uint64_t promised, held, unheld;

	(void)ino;
	if (statvfs(fs->datadir, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	kv_stats(fs->kv, &ks);
	kv_promise_stats(fs->kv, &promised, &held);
	unheld = (promised - held + sv.f_frsize - 1) / (sv.f_frsize ? sv.f_frsize : 1);
	sv.f_bfree = sv.f_bfree > unheld ? sv.f_bfree - unheld : 0;
	sv.f_bavail = sv.f_bavail > unheld ? sv.f_bavail - unheld : 0;
	memset(&out, 0, sizeof(out));
	out.f_bsize = sv.f_bsize;
	out.f_frsize = sv.f_frsize;
	out.f_blocks = sv.f_blocks;
	out.f_bfree = sv.f_bfree;
	out.f_bavail = sv.f_bavail;
	out.f_ffree = sv.f_bavail;
	out.f_favail = sv.f_bavail;
	out.f_files = ks.keys + sv.f_bavail;
	out.f_namemax = KVFS_NAME_MAX;
	fuse_reply_statfs(req, &out);
}
