/* node.c — what a key or a prefix shows as in the tree, and the locks of fs_internal.h. */
#include <errno.h>
#include <string.h>

#include "fs_internal.h"

struct kvfs_fs *kvfs_fs_current(void)
{
	return fuse_get_context()->private_data;
}

void kvfs_now(struct timespec *ts)
{
	/* CLOCK_REALTIME cannot fail with a valid pointer; a zero time would only be a wrong
	 * timestamp, never lost data. */
	if (clock_gettime(CLOCK_REALTIME, ts) != 0) {
		ts->tv_sec = 0;
		ts->tv_nsec = 0;
	}
}

static void meta_default(const struct kvfs_fs *fs, mode_t mode, struct kvfs_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->mode = mode;
	m->uid = fs->uid;
	m->gid = fs->gid;
	m->atime = m->mtime = m->ctime = fs->mount_time;
}

struct first_key {
	const char *prefix;
	size_t plen;
	int found;
};

static int first_key_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
			size_t mlen)
{
	struct first_key *f = arg;

	(void)size, (void)meta, (void)mlen; /* only the key matters */
	f->found = klen >= f->plen && memcmp(key, f->prefix, f->plen) == 0;
	return 1; /* the first key at or after the prefix decides */
}

int kvfs_has_children(struct kvfs_fs *fs, const char *key, size_t klen)
{
	char prefix[KV_MAX_KEY + 2];
	struct first_key f = { prefix, klen + 1, 0 };
	int rc;

	if (klen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	memcpy(prefix, key, klen);
	prefix[klen] = '/';
	rc = kv_scan(fs->kv, prefix, klen + 1, first_key_cb, &f);
	if (rc < 0)
		return rc;
	return f.found;
}

int kvfs_node_get(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_node *n)
{
	uint8_t buf[KV_MAX_META];
	size_t mlen = sizeof(buf);
	int rc;

	memset(n, 0, sizeof(*n));
	rc = kv_stat(fs->kv, key, klen, &n->size, buf, &mlen);
	if (rc == 0) {
		n->has_key = 1;
		if (mlen == 0) {
			meta_default(fs, klen == 0 ? S_IFDIR | 0755 : S_IFREG | 0644, &n->meta);
		} else {
			rc = kvfs_meta_decode(buf, mlen, &n->meta);
			if (rc)
				return rc;
		}
		if (klen == 0) /* the root is a directory whatever its entry says */
			n->meta.mode = S_IFDIR | (n->meta.mode & 07777);
		if (S_ISDIR(n->meta.mode))
			n->size = 0; /* a directory's value, if someone gave it one, is not shown */
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	if (klen > 0) {
		rc = kvfs_has_children(fs, key, klen);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ENOENT;
	}
	meta_default(fs, S_IFDIR | 0755, &n->meta);
	return 0;
}

void kvfs_node_stat(const struct kvfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = n->meta.mode;
	/* Directories say 1, as btrfs does: the number of subdirectories is not kept, and tools
	 * read 1 as "unknown" rather than trusting a wrong count. Hard links do not exist. */
	st->st_nlink = 1;
	st->st_uid = n->meta.uid;
	st->st_gid = n->meta.gid;
	if (S_ISCHR(n->meta.mode) || S_ISBLK(n->meta.mode))
		st->st_rdev = (dev_t)n->meta.rdev;
	if (S_ISREG(n->meta.mode) || S_ISLNK(n->meta.mode))
		st->st_size = (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	if (!S_ISREG(n->meta.mode) && !S_ISLNK(n->meta.mode))
		st->st_blocks = 0;
	st->st_atim = n->meta.atime;
	st->st_mtim = n->meta.mtime;
	st->st_ctim = n->meta.ctime;
}

void kvfs_meta_new(const struct kvfs_node *parent, mode_t mode, dev_t rdev,
		   const struct timespec *now, struct kvfs_meta *m)
{
	const struct fuse_context *ctx = fuse_get_context();

	memset(m, 0, sizeof(*m));
	m->mode = mode;
	m->uid = ctx->uid;
	m->gid = ctx->gid;
	/* BSD group semantics in a set-group-ID directory, as every Linux filesystem does */
	if (parent->meta.mode & S_ISGID) {
		m->gid = parent->meta.gid;
		if (S_ISDIR(mode))
			m->mode |= S_ISGID;
	}
	m->rdev = (uint64_t)rdev;
	m->atime = m->mtime = m->ctime = *now;
}

int kvfs_batch_meta(struct kv_batch *b, const char *key, size_t klen, const struct kvfs_node *n)
{
	uint8_t buf[KVFS_META_LEN];
	size_t mlen = kvfs_meta_encode(&n->meta, buf);

	if (n->has_key)
		return kv_batch_setmeta(b, key, klen, buf, mlen);
	return kv_batch_put(b, key, klen, buf, mlen, NULL, 0);
}

int kvfs_batch_dir_changed(struct kv_batch *b, const char *dkey, size_t dklen,
			   struct kvfs_node *dir, const struct timespec *now)
{
	dir->meta.mtime = *now;
	dir->meta.ctime = *now;
	return kvfs_batch_meta(b, dkey, dklen, dir);
}

/* FNV-1a: spreads keys over the stripes; collisions only cost a little waiting. */
static unsigned stripe_of(const char *key, size_t klen)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < klen; i++) {
		h ^= (uint8_t)key[i];
		h *= 16777619u;
	}
	return h % KVFS_STRIPES;
}

void kvfs_lock(struct kvfs_fs *fs, struct kvfs_locks *l, int ns, enum kvfs_tree tree, unsigned n,
	       const char *const keys[], const size_t lens[])
{
	l->fs = fs;
	l->ns = ns;
	l->tree = tree;
	l->n = 0;
	for (unsigned i = 0; i < n && i < KVFS_MAX_LOCKS; i++) {
		unsigned s = stripe_of(keys[i], lens[i]), j;

		for (j = 0; j < l->n && l->idx[j] != s; j++)
			;
		if (j < l->n)
			continue; /* that stripe is taken once */
		/* insertion sort: ascending order is the lock order */
		for (j = l->n; j > 0 && l->idx[j - 1] > s; j--)
			l->idx[j] = l->idx[j - 1];
		l->idx[j] = s;
		l->n++;
	}
	if (ns)
		pthread_mutex_lock(&fs->ns_mu);
	if (tree == KVFS_TREE_SHARED)
		pthread_rwlock_rdlock(&fs->tree_lock);
	else if (tree == KVFS_TREE_EXCLUSIVE)
		pthread_rwlock_wrlock(&fs->tree_lock);
	for (unsigned i = 0; i < l->n; i++)
		pthread_mutex_lock(&fs->stripe[l->idx[i]]);
}

void kvfs_unlock(struct kvfs_locks *l)
{
	for (unsigned i = l->n; i > 0; i--)
		pthread_mutex_unlock(&l->fs->stripe[l->idx[i - 1]]);
	if (l->tree != KVFS_TREE_NONE)
		pthread_rwlock_unlock(&l->fs->tree_lock);
	if (l->ns)
		pthread_mutex_unlock(&l->fs->ns_mu);
}

int kvfs_target_key(struct kvfs_fs *fs, const char *path, const struct fuse_file_info *fi,
		    char *buf, const char **key, size_t *klen)
{
	const struct kvfs_handle *h = kvfs_handle_of(fi);

	if (h && h->file) {
		size_t n = kvfs_of_key(fs->open, h->file, buf);

		if (n == SIZE_MAX)
			return -EIO;
		*key = buf;
		*klen = n;
		return 0;
	}
	if (!path)
		return -ENOENT;
	return kvfs_path_key(path, key, klen);
}

int kvfs_lock_target(struct kvfs_fs *fs, const char *path, const struct fuse_file_info *fi,
		     char *buf, const char **key, size_t *klen, struct kvfs_locks *l)
{
	const struct kvfs_handle *h = kvfs_handle_of(fi);
	char again[KV_MAX_KEY];
	int rc;

	for (;;) {
		rc = kvfs_target_key(fs, path, fi, buf, key, klen);
		if (rc)
			return rc;
		kvfs_lock(fs, l, 0, KVFS_TREE_SHARED, 1, key, klen);
		if (!(h && h->file))
			return 0; /* a path: libfuse holds it for the whole operation */
		size_t n = kvfs_of_key(fs->open, h->file, again);

		if (n == *klen && memcmp(again, *key, n) == 0)
			return 0;
		kvfs_unlock(l); /* renamed meanwhile: lock the new key */
	}
}

int kvfs_entry_begin(const char *path, int control_err, int root_err, const char **key,
		     size_t *klen, size_t *plen, struct kv_batch **b)
{
	int rc;

	if (kvfs_is_control(path))
		return control_err;
	rc = kvfs_path_key(path, key, klen);
	if (rc)
		return rc;
	if (*klen == 0)
		return root_err;
	*plen = kvfs_parent_klen(*key, *klen);
	return kv_batch_new(b);
}
