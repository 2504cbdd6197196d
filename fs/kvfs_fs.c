/* kvfs_fs.c — the kvfs_fs object: made over an open store, and freed; files without a name
 * that an earlier run left. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_internal.h"

void kvfs_config_default(struct kvfs_config *c)
{
	/* Long: every change passes through this kernel, which updates or drops what it cached
	 * as it sends each request (docs/FILESYSTEM.md, "What the kernel caches"). */
	c->entry_timeout = 86400;
	c->attr_timeout = 86400;
	c->negative_timeout = 86400;
	c->writeback_cache = 0;
	c->threads = 16;
}

int kvfs_fs_new(struct kvfs_fs **out, struct kv *kv, const char *datadir,
		const struct kvfs_config *cfg)
{
	struct kvfs_fs *fs = calloc(1, sizeof(*fs));
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->datadir = strdup(datadir);
	if (!fs->datadir) {
		free(fs);
		return -ENOMEM;
	}
	fs->kv = kv;
	fs->cfg = *cfg;
	fs->uid = getuid();
	fs->gid = getgid();
	kvfs_now(&fs->mount_time);
	pthread_mutex_init(&fs->table_mu, NULL);
	pthread_rwlock_init(&fs->notify_lock, NULL);
	pthread_mutex_init(&fs->id_mu, NULL);
	{
		/* a namespace change must not wait behind an endless stream of reads and writes */
		pthread_rwlockattr_t a;

		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs->ns, &a);
		pthread_rwlockattr_destroy(&a);
	}
	rc = kvfs_tables_new(fs);
	if (rc) {
		kvfs_fs_free(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

void kvfs_fs_free(struct kvfs_fs *fs)
{
	if (!fs)
		return;
	kvfs_tables_free(fs);
	pthread_rwlock_destroy(&fs->ns);
	pthread_mutex_destroy(&fs->id_mu);
	pthread_mutex_destroy(&fs->table_mu);
	pthread_rwlock_destroy(&fs->notify_lock);
	free(fs->datadir);
	free(fs);
}

int kvfs_fs_remove_leftovers(struct kvfs_fs *fs, uint64_t *removed)
{
	return kvfs_remove_orphans(fs, removed);
}
