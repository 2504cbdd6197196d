/* ops_attr.c — attributes: getattr, chmod, chown, utimens, statfs. */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "control.h"
#include "fs_internal.h"

int kvfs_op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	const struct kvfs_handle *h = kvfs_handle_of(fi);
	char buf[KV_MAX_KEY];
	struct kvfs_node n;
	const char *key;
	size_t klen;
	int rc;

	if ((path && kvfs_is_control(path)) || (h && h->control)) {
		kvfs_control_stat(fs->uid, fs->gid, &fs->mount_time, st);
		return 0;
	}
	/* fstat of an open file: its own key, also after an unlink */
	rc = kvfs_target_key(fs, path, fi, buf, &key, &klen);
	if (rc)
		return rc;
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		return rc;
	kvfs_node_stat(&n, st);
	return 0;
}

/* Read-modify-write of one node's metadata under its stripe; ctime becomes now. An implicit
 * directory (or the root) becomes a real entry holding the new metadata. */
typedef void (*meta_change_fn)(struct kvfs_meta *m, const void *arg, const struct timespec *now);

static int change_meta(const char *path, struct fuse_file_info *fi, meta_change_fn change,
		       const void *arg)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	const struct kvfs_handle *h = kvfs_handle_of(fi);
	struct kv_batch *b = NULL;
	char buf[KV_MAX_KEY];
	struct kvfs_locks l;
	struct kvfs_node n;
	struct timespec now;
	const char *key;
	size_t klen;
	int rc;

	if ((path && kvfs_is_control(path)) || (h && h->control))
		return -EPERM;
	rc = kv_batch_new(&b);
	if (rc)
		return rc;
	rc = kvfs_lock_target(fs, path, fi, buf, &key, &klen, &l);
	if (rc) {
		kv_batch_free(b);
		return rc;
	}
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		goto out;
	kvfs_now(&now);
	change(&n.meta, arg, &now);
	n.meta.ctime = now;
	rc = kvfs_batch_meta(b, key, klen, &n);
	if (rc)
		goto out;
	rc = kv_apply(fs->kv, b, NULL);
out:
	kvfs_unlock(&l);
	kv_batch_free(b);
	return rc;
}

static void set_mode(struct kvfs_meta *m, const void *arg, const struct timespec *now)
{
	(void)now;
	m->mode = (m->mode & S_IFMT) | (*(const mode_t *)arg & 07777);
}

int kvfs_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return change_meta(path, fi, set_mode, &mode);
}

struct owner {
	uid_t uid;
	gid_t gid;
};

static void set_owner(struct kvfs_meta *m, const void *arg, const struct timespec *now)
{
	const struct owner *o = arg;

	(void)now;
	if (o->uid != (uid_t)-1)
		m->uid = o->uid;
	if (o->gid != (gid_t)-1)
		m->gid = o->gid;
}

int kvfs_op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct owner o = { uid, gid };

	return change_meta(path, fi, set_owner, &o);
}

static void set_time(struct timespec *t, const struct timespec *v, const struct timespec *now)
{
	if (v->tv_nsec == UTIME_OMIT)
		return;
	*t = v->tv_nsec == UTIME_NOW ? *now : *v;
}

static void set_times(struct kvfs_meta *m, const void *arg, const struct timespec *now)
{
	const struct timespec *tv = arg;

	set_time(&m->atime, &tv[0], now);
	set_time(&m->mtime, &tv[1], now);
}

int kvfs_op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	static const struct timespec both_now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };

	for (int i = 0; tv && i < 2; i++)
		if (tv[i].tv_nsec != UTIME_NOW && tv[i].tv_nsec != UTIME_OMIT &&
		    (tv[i].tv_nsec < 0 || tv[i].tv_nsec >= 1000000000L))
			return -EINVAL;
	return change_meta(path, fi, set_times, tv ? tv : both_now);
}

/* Space is the data directory's disk. Files: every key counts, and each free block could hold
 * one more (a rough ceiling: memory, not disk, bounds the number of keys in practice). */
int kvfs_op_statfs(const char *path, struct statvfs *out)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kv_stats ks;
	struct statvfs sv;

	(void)path;
	if (statvfs(fs->datadir, &sv) < 0)
		return -errno;
	kv_stats(fs->kv, &ks);
	memset(out, 0, sizeof(*out));
	out->f_bsize = sv.f_bsize;
	out->f_frsize = sv.f_frsize;
	out->f_blocks = sv.f_blocks;
	out->f_bfree = sv.f_bfree;
	out->f_bavail = sv.f_bavail;
	out->f_ffree = sv.f_bavail;
	out->f_favail = sv.f_bavail;
	out->f_files = ks.keys + sv.f_bavail;
	out->f_namemax = KVFS_NAME_MAX;
	return 0;
}
