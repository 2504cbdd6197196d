/* stored.c — what a key holds as the tree sees it (a node, a link name, an implicit directory),
 * the attributes it shows, and the batch operations that change nodes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

void kvfs_now(struct timespec *ts)
{
	/* CLOCK_REALTIME cannot fail with a valid pointer; a zero time would only be a wrong
	 * timestamp, never lost data. */
	if (clock_gettime(CLOCK_REALTIME, ts) != 0) {
		ts->tv_sec = 0;
		ts->tv_nsec = 0;
	}
}

void kvfs_meta_default(const struct kvfs_fs *fs, uint32_t mode, struct kvfs_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->mode = mode;
	m->uid = fs->uid;
	m->gid = fs->gid;
	m->atime = m->mtime = m->ctime = fs->mount_time;
	m->nlink = 1;
}

/* The node blob at key (an inode key a link names). */
static int load_node(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st)
{
	uint8_t buf[KV_MAX_META];
	size_t mlen = sizeof(buf);
	uint64_t link = 0;
	int rc = kv_stat(fs->kv, key, klen, &st->size, buf, &mlen);

	if (rc)
		return rc == -ENOENT ? -EIO : rc; /* a link to nothing: damage, not absence */
	if (mlen == 0 || kvfs_blob_decode(buf, mlen, &st->meta, &link) != KVFS_BLOB_IS_NODE)
		return -EIO;
	return 0;
}

/* kvfs_load, and kvfs_load_bytes (count 0: st->allocated stays 0). */
static int load(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st,
		int count)
{
	uint8_t buf[KV_MAX_META];
	char ikey[KVFS_ID_KEY_MAX];
	size_t mlen = sizeof(buf);
	int rc;

	memset(st, 0, sizeof(*st));
	rc = kv_stat(fs->kv, key, klen, &st->size, buf, &mlen);
	if (rc == 0) {
		const char *data_key = key; /* where the bytes are: a link name's are its inode's */
		size_t data_klen = klen;

		st->found = 1;
		if (mlen == 0) {
			kvfs_meta_default(fs, klen == 0 ? S_IFDIR | 0755 : S_IFREG | 0644, &st->meta);
		} else {
			int kind = kvfs_blob_decode(buf, mlen, &st->meta, &st->link_id);

			if (kind < 0)
				return kind;
			if (kind == KVFS_BLOB_IS_LINK) {
				size_t iklen = kvfs_id_key(ikey, KVFS_INODE_PREFIX, st->link_id);

				rc = load_node(fs, ikey, iklen, st);
				if (rc)
					return rc;
				if (S_ISDIR(st->meta.mode))
					return -EIO; /* directories have one name */
				if (!st->meta.ino)
					st->meta.ino = kvfs_ino_from_key(ikey, iklen);
				data_key = ikey;
				data_klen = iklen;
			}
		}
		if (klen == 0) /* the root is a directory whatever its entry says */
			st->meta.mode = S_IFDIR | (st->meta.mode & 07777);
		if (S_ISDIR(st->meta.mode))
			st->size = 0; /* a directory's value, if someone gave it one, is not shown */
		if (!st->meta.ino) /* stored with the blob the next time the tree writes it */
			st->meta.ino = kvfs_ino_from_key(key, klen);
		return count ? kvfs_load_allocated(fs, data_key, data_klen, st) : 0;
	}
	if (rc != -ENOENT)
		return rc;
	if (klen > 0) {
		rc = kvfs_has_entries(fs, key, klen);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ENOENT;
	}
	kvfs_meta_default(fs, S_IFDIR | 0755, &st->meta);
	st->meta.ino = kvfs_ino_from_key(key, klen);
	return 0;
}

int kvfs_load(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st)
{
	return load(fs, key, klen, st, 1);
}

int kvfs_load_bytes(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st)
{
	return load(fs, key, klen, st, 0);
}

int kvfs_load_allocated(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st)
{
	st->allocated = 0;
	if (!S_ISREG(st->meta.mode) && !S_ISLNK(st->meta.mode))
		return 0; /* the others hold no bytes (a directory's stray value is not shown) */
	return kv_allocated(fs->kv, key, klen, &st->allocated);
}

void kvfs_stat_fill(struct kvfs_fs *fs, const struct kvfs_node *n, const struct kvfs_stored *st,
		    uint64_t subdirs, struct stat *out)
{
	const struct kvfs_meta *m = &st->meta;

	(void)fs;
	memset(out, 0, sizeof(*out));
	out->st_ino = (ino_t)n->st_ino;
	out->st_mode = m->mode;
	if (S_ISDIR(m->mode))
		out->st_nlink = n->removed ? 0 : (nlink_t)(2 + subdirs);
	else if (n->orphan_id)
		out->st_nlink = 0;
	else
		out->st_nlink = n->link_id ? m->nlink : 1;
	out->st_uid = m->uid;
	out->st_gid = m->gid;
	if (S_ISCHR(m->mode) || S_ISBLK(m->mode))
		out->st_rdev = (dev_t)m->rdev;
	if (S_ISREG(m->mode) || S_ISLNK(m->mode)) {
		out->st_size = (off_t)st->size;
		/* what the file's bytes hold on disk: holes (a truncate up, a punched range,
		 * a write past the end) hold nothing, as on a local filesystem (du, cp --sparse);
		 * preallocated bytes not written yet count, as ext4's unwritten extents do, so du
		 * finds what df shows taken */
		out->st_blocks = (blkcnt_t)((st->allocated + m->pa_unwritten + 511) / 512);
	}
	out->st_blksize = 4096;
	out->st_atim = m->atime;
	out->st_mtim = m->mtime;
	out->st_ctim = m->ctime;
}

void kvfs_entry_fill(struct kvfs_fs *fs, struct kvfs_node *n, const struct kvfs_stored *st,
		     uint64_t subdirs, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = kvfs_ino_of(fs, n);
	kvfs_stat_fill(fs, n, st, subdirs, &e->attr);
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
}

int kvfs_batch_meta(struct kv_batch *b, const char *key, size_t klen, const struct kvfs_stored *st)
{
	uint8_t buf[KVFS_META_LEN];
	size_t mlen = kvfs_meta_encode(&st->meta, buf);

	if (st->found)
		return kv_batch_setmeta(b, key, klen, buf, mlen);
	return kv_batch_put(b, key, klen, buf, mlen, NULL, 0);
}

int kvfs_batch_dir_changed(struct kv_batch *b, const char *key, size_t klen,
			   struct kvfs_stored *dir, const struct timespec *now)
{
	dir->meta.mtime = *now;
	dir->meta.ctime = *now;
	return kvfs_batch_meta(b, key, klen, dir);
}

int kvfs_batch_move(struct kv_batch *b, const char *from, size_t flen, const char *to,
		    size_t tlen, const struct kvfs_meta *m)
{
	char f[KV_MAX_KEY + 1], t[KV_MAX_KEY + 1];
	int rc = kv_batch_rename(b, from, flen, to, tlen);

	if (rc || !(m->flags & KVFS_META_XATTRS))
		return rc;
	memcpy(f, from, flen);
	f[flen] = '\0';
	memcpy(t, to, tlen);
	t[tlen] = '\0';
	return kv_batch_rename_prefix(b, f, flen + 1, t, tlen + 1);
}

/* The keys of a node's attributes: key "\0" ..., gathered (a scan callback may not change the
 * store). */
struct xkeys {
	const char *prefix;
	size_t plen;
	char *buf; /* the keys, each preceded by its length */
	size_t len, cap;
	int err;
};

static int xkeys_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		    size_t mlen)
{
	struct xkeys *x = arg;

	(void)size, (void)meta, (void)mlen;
	if (klen < x->plen || memcmp(key, x->prefix, x->plen) != 0)
		return 1;
	if (x->len + sizeof(size_t) + klen > x->cap) {
		size_t cap = (x->cap + sizeof(size_t) + klen) * 2;
		char *nb = realloc(x->buf, cap);

		if (!nb) {
			x->err = -ENOMEM;
			return 1;
		}
		x->buf = nb;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, &klen, sizeof(size_t));
	memcpy(x->buf + x->len + sizeof(size_t), key, klen);
	x->len += sizeof(size_t) + klen;
	return 0;
}

int kvfs_batch_delete(struct kvfs_fs *fs, struct kv_batch *b, const char *key, size_t klen,
		      const struct kvfs_meta *m)
{
	char p[KV_MAX_KEY + 1];
	struct xkeys x = { p, klen + 1, NULL, 0, 0, 0 };
	int rc = kv_batch_del(b, key, klen);

	if (!rc)
		kvfs_prealloc_gone(m);
	if (rc || !(m->flags & KVFS_META_XATTRS))
		return rc;
	memcpy(p, key, klen);
	p[klen] = '\0';
	rc = kv_scan(fs->kv, p, klen + 1, xkeys_cb, &x);
	if (rc >= 0)
		rc = x.err;
	for (size_t at = 0; rc >= 0 && at < x.len;) {
		size_t n;

		memcpy(&n, x.buf + at, sizeof(size_t));
		rc = kv_batch_del(b, x.buf + at + sizeof(size_t), n);
		at += sizeof(size_t) + n;
	}
	free(x.buf);
	return rc < 0 ? rc : 0;
}

int kvfs_req_in_group(fuse_req_t req, gid_t gid)
{
	gid_t some[64], *list = some;
	int n, in = 0;

	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, 64, some);
	if (n > 64) { /* more than fit: ask again with room for all */
		list = calloc((size_t)n, sizeof(*list));
		n = list ? fuse_req_getgroups(req, n, list) : -ENOMEM;
	}
	for (int i = 0; i < n && !in; i++)
		in = list[i] == gid;
	if (list != some)
		free(list);
	return in;
}

int kvfs_kill_setid(struct kvfs_meta *m, fuse_req_t group_of)
{
	uint32_t was = m->mode;

	m->mode &= ~(uint32_t)S_ISUID;
	if (m->mode & S_ISGID) {
		if (m->mode & S_IXGRP)
			m->mode &= ~(uint32_t)S_ISGID;
		else if (group_of && !kvfs_req_in_group(group_of, m->gid))
			m->mode &= ~(uint32_t)S_ISGID;
	}
	return m->mode != was;
}

int kvfs_kill_caps(struct kvfs_txn *t, struct kv_batch *b)
{
	static const char caps[] = "security.capability";
	char xkey[KV_MAX_KEY];
	size_t xlen, mlen = 0;
	uint64_t size;
	int rc;

	if (!(t->st.meta.flags & KVFS_META_XATTRS))
		return 0;
	xlen = kvfs_xattr_key(xkey, t->key, t->klen, caps, sizeof(caps) - 1);
	rc = kv_stat(t->fs->kv, xkey, xlen, &size, NULL, &mlen);
	if (rc == -ENOENT)
		return 0;
	return rc ? rc : kv_batch_del(b, xkey, xlen);
}

int kvfs_kill_privs(struct kvfs_txn *t, struct kv_batch *b, fuse_req_t group_of)
{
	kvfs_kill_setid(&t->st.meta, group_of);
	return kvfs_kill_caps(t, b);
}
