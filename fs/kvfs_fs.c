/* kvfs_fs.c — the kvfs_fs object: made over an open store, and freed; files without a name
 * that an earlier run left; the writer its changes go to, and the changes another writer makes
 * (a replicated group's, docs/REPLICATION.md "The mount"). */
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

void kvfs_fs_set_writer(struct kvfs_fs *fs, const struct kvfs_writer *w)
{
	fs->writer = *w;
	fs->writer_epoch = 0; /* the first change loads the inode counter (txn.c) */
}

int kvfs_fs_apply(struct kvfs_fs *fs, struct kv_batch *b, uint64_t epoch, uint64_t *lsn)
{
	uint64_t applied = 0;
	int rc;

	if (!fs->writer.apply) {
		rc = kv_apply(fs->kv, b, &applied);
	} else {
		rc = fs->writer.apply(fs->writer.arg, b, epoch);
		if (rc == 0)
			applied = 1; /* a writer knows no engine LSN, and callers ask only whether */
	}
	kvfs_prealloc_settle(fs, applied != 0); /* promises of files the batch deleted */
	if (lsn)
		*lsn = applied;
	return rc;
}

int kvfs_fs_flush(struct kvfs_fs *fs)
{
	if (fs->writer.flush)
		return fs->writer.flush(fs->writer.arg);
	return kv_flush(fs->kv);
}

/* The directory holding key's last name, if the kernel holds it (referenced), else NULL. */
static struct kvfs_node *parent_of(struct kvfs_fs *fs, const char *k, size_t klen)
{
	struct kvfs_node *dir = fs->root, *n;
	size_t at = 0;

	kvfs_node_ref(fs, dir);
	for (;;) {
		const char *slash = memchr(k + at, '/', klen - at);
		size_t nlen;

		if (!slash)
			return dir;
		nlen = (size_t)(slash - (k + at));
		n = nlen && nlen <= KVFS_NAME_MAX ? kvfs_node_find(fs, dir, k + at, nlen) : NULL;
		kvfs_node_unref(fs, dir);
		if (!n)
			return NULL;
		dir = n;
		at += nlen + 1;
	}
}

void kvfs_fs_store_changed(struct kvfs_fs *fs, const void *key, size_t klen)
{
	const char *k = key;
	struct kvfs_node *n;
	uint64_t id;

	klen = kvfs_node_part(k, klen); /* an attribute's key: its node's */
	if (klen > 1 && k[klen - 1] == '/')
		klen--; /* a prefix (a directory renamed or spilled): the directory */
	if (klen && k[0] == '/') {
		/* the tree's own keys: a file with several names is known by its link id; the
		 * entries of a spilled directory (/dir/<id>/NAME) by no node we can find from the
		 * key, so the kernel keeps them until its timeout (the mount's are short) */
		if (kvfs_is_id_key(k, klen, KVFS_INODE_PREFIX, &id) &&
		    (n = kvfs_node_find_link(fs, id)) != NULL) {
			kvfs_notify_inode(fs, kvfs_ino_of(fs, n));
			kvfs_node_unref(fs, n);
		}
		return;
	}
	kvfs_notify_key(fs, k, klen); /* raft's apply thread: a request may wait for it */
	n = klen ? parent_of(fs, k, klen) : NULL;
	if (n) {
		/* the change may have added or removed a subdirectory: count again when asked */
		pthread_mutex_lock(&n->dir_mu);
		n->subdirs = -1;
		pthread_mutex_unlock(&n->dir_mu);
		kvfs_node_unref(fs, n);
	}
}

void kvfs_fs_store_pause(struct kvfs_fs *fs)
{
	pthread_rwlock_wrlock(&fs->ns);
}

void kvfs_fs_store_resume(struct kvfs_fs *fs, struct kv *kv)
{
	fs->kv = kv;
	fs->writer_epoch = 0; /* the inode counter is read again from the new store */
	pthread_rwlock_unlock(&fs->ns);
}
