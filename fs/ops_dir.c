/* ops_dir.c — directories: mkdir, rmdir, opendir, readdir (fsyncdir is kvfs_op_fsync).
 *
 * Listing a directory D walks the keys that start with "D/" in key order. Each key gives the
 * child named by its next component: "D/x" is the node x itself, "D/x/..." makes x an
 * (implicit) directory. The keys below a child are never walked one by one: the scan restarts
 * past them, at "D/x0" ('0' is '/' + 1), so listing costs one step per child, not per key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

int kvfs_op_mkdir(const char *path, mode_t mode)
{
	return kvfs_make_node(path, S_IFDIR | (mode & 07777), 0, NULL, 0);
}

int kvfs_op_rmdir(const char *path)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kv_batch *b = NULL;
	struct kvfs_node parent, n;
	struct kvfs_locks l;
	struct timespec now;
	const char *key;
	size_t klen, plen;
	int rc;

	rc = kvfs_entry_begin(path, -ENOTDIR, -EBUSY, &key, &klen, &plen, &b);
	if (rc)
		return rc;
	kvfs_lock(fs, &l, 1, KVFS_TREE_NONE, 1, &key, &plen);
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		goto out;
	if (!S_ISDIR(n.meta.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	/* Any key below counts, visible or not: removing the directory must not strand keys
	 * that only kv_cli can see (they would bring it back as an implicit directory). */
	rc = kvfs_has_children(fs, key, klen);
	if (rc) {
		rc = rc > 0 ? -ENOTEMPTY : rc;
		goto out;
	}
	rc = kvfs_node_get(fs, key, plen, &parent);
	if (rc)
		goto out;
	kvfs_now(&now);
	rc = kv_batch_del(b, key, klen);
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

int kvfs_op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct kvfs_node n;
	const char *key;
	size_t klen;
	int rc;

	if (kvfs_is_control(path))
		return -ENOTDIR;
	rc = kvfs_path_key(path, &key, &klen);
	if (rc)
		return rc;
	rc = kvfs_node_get(fs, key, klen, &n);
	if (rc)
		return rc;
	if (!S_ISDIR(n.meta.mode))
		return -ENOTDIR;
	/* The kernel may keep the listing in its page cache and reuse it across opens: every
	 * change to a directory's entries comes through this mount (the store is locked to this
	 * daemon), and the kernel drops its copy on each create, unlink, rename, mkdir, rmdir
	 * and symlink it sends. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	return 0;
}

#define CHUNK 256 /* children gathered under the index's read lock, then handed to libfuse */

struct child {
	char name[KVFS_NAME_MAX + 1];
	struct stat st;
	int plus; /* st is complete (metadata readable) */
};

/* The state of one listing across the scans it takes.
 * Names emitted from a key of their own ("D/x") may still see keys below them ("D/x/...")
 * later, after siblings that sort between "x" and "x/" (such as "x-" or "x.", whose bytes are
 * below '/'). Those siblings all extend x, so the names waiting for their subtree form a chain,
 * each a prefix of the next: kept as the longest name and the lengths of the others. */
struct listing {
	struct kvfs_fs *fs;
	const char *prefix; /* "D/", or "" at the root */
	size_t plen;
	char resume[KV_MAX_KEY + 1]; /* where the next scan starts */
	size_t rlen;
	int done;
	struct child *chunk;
	unsigned n;
	char chain[KVFS_NAME_MAX + 1];
	size_t lens[KVFS_NAME_MAX + 1];
	unsigned depth;
};

static void skip_subtree(struct listing *ls, const char *key, size_t end)
{
	/* resume at key[0..end) + '0': the first key after every key starting with
	 * key[0..end) + '/' */
	memcpy(ls->resume, key, end);
	ls->resume[end] = '0';
	ls->rlen = end + 1;
}

static void add_child(struct listing *ls, const char *name, size_t len, const struct kvfs_node *n,
		      int plus)
{
	struct child *c = &ls->chunk[ls->n++];

	memcpy(c->name, name, len);
	c->name[len] = '\0';
	if (plus) {
		kvfs_node_stat(n, &c->st);
	} else {
		memset(&c->st, 0, sizeof(c->st));
		c->st.st_mode = n->meta.mode & S_IFMT;
	}
	c->plus = plus;
}

static int listing_cb(void *arg, const void *kp, size_t klen, uint64_t size, const void *meta,
		      size_t mlen)
{
	struct listing *ls = arg;
	const char *key = kp, *c, *slash;
	size_t cl;
	int has_sub;

	if (klen < ls->plen || memcmp(key, ls->prefix, ls->plen) != 0) {
		ls->done = 1;
		return 1;
	}
	if (ls->n == CHUNK) {
		memcpy(ls->resume, key, klen);
		ls->rlen = klen;
		return 1;
	}
	c = key + ls->plen;
	slash = memchr(c, '/', klen - ls->plen);
	cl = slash ? (size_t)(slash - c) : klen - ls->plen;
	has_sub = slash != NULL;

	/* forget waiting names whose subtree can no longer come: c does not extend them with
	 * bytes below '/' */
	while (ls->depth > 0) {
		size_t t = ls->lens[ls->depth - 1];

		if (cl >= t && memcmp(c, ls->chain, t) == 0 && (cl == t || (unsigned char)c[t] < '/'))
			break;
		ls->depth--;
	}
	if (!kvfs_name_visible(c, cl, ls->plen == 0)) {
		if (!has_sub)
			return 0;
		skip_subtree(ls, key, ls->plen + cl);
		return 1;
	}
	if (has_sub) {
		int shown = ls->depth > 0 && ls->lens[ls->depth - 1] == cl;

		if (!shown) {
			struct kvfs_node n;

			memset(&n, 0, sizeof(n));
			n.meta.mode = S_IFDIR | 0755;
			n.meta.uid = ls->fs->uid;
			n.meta.gid = ls->fs->gid;
			n.meta.atime = n.meta.mtime = n.meta.ctime = ls->fs->mount_time;
			add_child(ls, c, cl, &n, 1);
		}
		skip_subtree(ls, key, ls->plen + cl);
		return 1;
	} else {
		struct kvfs_node n;
		int plus = 1;

		memset(&n, 0, sizeof(n));
		n.has_key = 1;
		n.size = size;
		if (mlen == 0) {
			n.meta.mode = S_IFREG | 0644;
			n.meta.uid = ls->fs->uid;
			n.meta.gid = ls->fs->gid;
			n.meta.atime = n.meta.mtime = n.meta.ctime = ls->fs->mount_time;
		} else if (kvfs_meta_decode(meta, mlen, &n.meta) != 0) {
			plus = 0; /* listed with an unknown type; stat says EIO */
		}
		if (S_ISDIR(n.meta.mode))
			n.size = 0;
		add_child(ls, c, cl, &n, plus);
		memcpy(ls->chain, c, cl);
		ls->lens[ls->depth++] = cl;
	}
	return 0;
}

int kvfs_op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		    struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct kvfs_fs *fs = kvfs_fs_current();
	struct listing *ls = NULL;
	struct kvfs_node self;
	struct stat st;
	const char *key;
	char *prefix = NULL;
	size_t klen;
	int rc;

	(void)off, (void)fi; /* all entries in one call, offsets 0: libfuse buffers the listing */
	if (!path)
		return -ENOENT; /* removed while open */
	rc = kvfs_path_key(path, &key, &klen);
	if (rc)
		return rc;
	rc = kvfs_node_get(fs, key, klen, &self);
	if (rc)
		return rc;
	if (!S_ISDIR(self.meta.mode))
		return -ENOTDIR;
	ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->chunk = calloc(CHUNK, sizeof(*ls->chunk));
	if (!ls->chunk) {
		rc = -ENOMEM;
		goto out;
	}
	ls->fs = fs;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR;
	if (fill(buf, ".", &st, 0, 0) || fill(buf, "..", &st, 0, 0)) {
		rc = -ENOMEM;
		goto out;
	}
	/* "D/": the listing's bounds, while resume moves on */
	prefix = malloc(klen + 2);
	if (!prefix) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(prefix, key, klen);
	prefix[klen] = '/';
	ls->prefix = prefix;
	ls->plen = klen ? klen + 1 : 0;
	memcpy(ls->resume, prefix, ls->plen);
	ls->rlen = ls->plen;
	while (!ls->done) {
		ls->n = 0;
		rc = kv_scan(fs->kv, ls->resume, ls->rlen, listing_cb, ls);
		if (rc < 0)
			break;
		if (rc == 0)
			ls->done = 1; /* the end of the store */
		rc = 0;
		for (unsigned i = 0; i < ls->n; i++) {
			enum fuse_fill_dir_flags ff = 0;

			if ((flags & FUSE_READDIR_PLUS) && ls->chunk[i].plus)
				ff = FUSE_FILL_DIR_PLUS;
			if (fill(buf, ls->chunk[i].name, &ls->chunk[i].st, 0, ff)) {
				rc = -ENOMEM;
				break;
			}
		}
		if (rc)
			break;
	}
out:
	free(prefix);
	if (ls)
		free(ls->chunk);
	free(ls);
	return rc;
}
