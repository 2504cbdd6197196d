/* kvfs_fs.c — the kvfs_fs object, libfuse's init (what the kernel may cache, and how), the
 * operations table, and the removal of orphans (files unlinked while open) a crash left. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_internal.h"

int kvfs_fs_new(struct kvfs_fs **out, struct kv *kv, const char *datadir)
{
	struct kvfs_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	fs->datadir = strdup(datadir);
	if (!fs->datadir) {
		free(fs);
		return -ENOMEM;
	}
	if (kvfs_openfiles_new(&fs->open)) {
		free(fs->datadir);
		free(fs);
		return -ENOMEM;
	}
	fs->kv = kv;
	fs->uid = getuid();
	fs->gid = getgid();
	kvfs_now(&fs->mount_time);
	pthread_mutex_init(&fs->handles_mu, NULL);
	pthread_mutex_init(&fs->ns_mu, NULL);
	{
		/* a directory rename must not wait behind an endless stream of writes */
		pthread_rwlockattr_t a;

		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs->tree_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	for (unsigned i = 0; i < KVFS_STRIPES; i++)
		pthread_mutex_init(&fs->stripe[i], NULL);
	*out = fs;
	return 0;
}

void kvfs_fs_free(struct kvfs_fs *fs)
{
	if (!fs)
		return;
	kvfs_handles_free_all(fs);
	for (unsigned i = 0; i < KVFS_STRIPES; i++)
		pthread_mutex_destroy(&fs->stripe[i]);
	pthread_rwlock_destroy(&fs->tree_lock);
	pthread_mutex_destroy(&fs->ns_mu);
	pthread_mutex_destroy(&fs->handles_mu);
	kvfs_openfiles_free(fs->open);
	free(fs->datadir);
	free(fs);
}

static void *kvfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* An unlinked open file lives on as an orphan key that we keep (openfiles.h), not as
	 * libfuse's ".fuse_hidden" rename: that one would be a second record (not crash-atomic
	 * with the rename that replaced the file), and since release arrives after close(2)
	 * returns, a file closed a moment before its unlink could still be hidden and keep its
	 * directory from being removed. */
	cfg->hard_remove = 1;
	/* Paths for every operation (computed under libfuse's tree locks); an unlinked open
	 * file is reached through its handle. */
	cfg->nullpath_ok = 0;
	/* The kernel applies the caller's umask to new nodes (we store the mode we are given),
	 * and clears set-user-ID bits on write and chown itself (it sends the setattr). */
	conn->want &= ~FUSE_CAP_DONT_MASK;
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* No writeback cache: a write must fail with ENOSPC or EFBIG at the write(2) that the
	 * store cannot take, not later at writeback where nobody is told. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	return fuse_get_context()->private_data;
}

/* No flush: close(2) promises nothing about durability (as on any filesystem; sync=always made
 * every write durable before it returned), and without the operation the kernel stops sending
 * FLUSH after the first ENOSYS, which saves a round trip on every close. */
static const struct fuse_operations ops = {
	.init = kvfs_init,
	.getattr = kvfs_op_getattr,
	.readlink = kvfs_op_readlink,
	.mknod = kvfs_op_mknod,
	.mkdir = kvfs_op_mkdir,
	.unlink = kvfs_op_unlink,
	.rmdir = kvfs_op_rmdir,
	.symlink = kvfs_op_symlink,
	.rename = kvfs_op_rename,
	.link = kvfs_op_link,
	.chmod = kvfs_op_chmod,
	.chown = kvfs_op_chown,
	.truncate = kvfs_op_truncate,
	.open = kvfs_op_open,
	.read = kvfs_op_read,
	.write = kvfs_op_write,
	.statfs = kvfs_op_statfs,
	.release = kvfs_op_release,
	.fsync = kvfs_op_fsync,
	.opendir = kvfs_op_opendir,
	.readdir = kvfs_op_readdir,
	.fsyncdir = kvfs_op_fsync, /* a directory too: the log holds every change, in order */
	.create = kvfs_op_create,
	.utimens = kvfs_op_utimens,
};

const struct fuse_operations *kvfs_fs_operations(void)
{
	return &ops;
}

#define LEFTOVER_BATCH 256

/* Orphans the last run left: the keys of files unlinked while open when it died. */
struct leftovers {
	char keys[LEFTOVER_BATCH][KVFS_ORPHAN_KEY_MAX];
	size_t lens[LEFTOVER_BATCH];
	unsigned n;
	int more;
};

static int leftover_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		       size_t mlen)
{
	struct leftovers *lo = arg;
	const size_t plen = sizeof(KVFS_ORPHAN_PREFIX) - 1;

	(void)size, (void)meta, (void)mlen;
	if (klen < plen || memcmp(key, KVFS_ORPHAN_PREFIX, plen) != 0)
		return 1; /* past the orphans */
	if (lo->n == LEFTOVER_BATCH) {
		lo->more = 1;
		return 1;
	}
	if (!kvfs_of_is_orphan_name(key, klen))
		return 0; /* not one of ours: leave it */
	memcpy(lo->keys[lo->n], key, klen);
	lo->lens[lo->n++] = klen;
	return 0;
}

int kvfs_fs_remove_leftovers(struct kvfs_fs *fs, uint64_t *removed)
{
	struct leftovers lo;
	uint64_t count = 0;
	int rc;

	do {
		struct kv_batch *b = NULL;

		lo.n = 0;
		lo.more = 0;
		/* each round deletes what it found, so the next one starts at the prefix again */
		rc = kv_scan(fs->kv, KVFS_ORPHAN_PREFIX, sizeof(KVFS_ORPHAN_PREFIX) - 1, leftover_cb,
			     &lo);
		if (rc < 0 || lo.n == 0)
			break;
		rc = kv_batch_new(&b);
		for (unsigned i = 0; !rc && i < lo.n; i++)
			rc = kv_batch_del(b, lo.keys[i], lo.lens[i]);
		if (!rc)
			rc = kv_apply(fs->kv, b, NULL);
		kv_batch_free(b);
		if (rc)
			break;
		count += lo.n;
	} while (lo.more);
	if (removed)
		*removed = count;
	return rc < 0 ? rc : 0;
}
