/* ops_ns.c — names: create (for create, mkdir, mknod, symlink), readlink, link, unlink,
 * rename.
 *
 * Every change here is one batch, so one log record: after a crash a rename of a whole
 * directory is either all there or not at all, a file's second name never exists without its
 * link count, and a parent's new mtime never lands without the entry that changed it.
 *
 * Names and files (layout.h). A file with one name lives at its name's key. Its second name
 * (link) moves it, in the same batch, to "/inode/<id>", and both names become link blobs; its
 * link count lives in the inode key's node blob. A file whose last name goes while the kernel
 * still holds it (an open file, say) moves to "/orphan/<id>", deleted when the kernel forgets
 * it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

/* The entry of dir for name, spilling dir first when name's key would not fit under it. A
 * spill rewrites dir's node blob (its spill id): *spilled says the caller's copy is stale. */
static int entry_for_new(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name,
			 struct kvfs_entry *e, int *spilled)
{
	int rc = kvfs_entry_get(fs, dir, name, e);

	if (rc || e->klen)
		return rc;
	rc = kvfs_spill(fs, dir);
	if (rc)
		return rc;
	*spilled = 1;
	rc = kvfs_entry_get(fs, dir, name, e);
	if (!rc && !e->klen)
		rc = -ENAMETOOLONG;
	return rc;
}

/* A directory as a namespace change needs it: one, and not removed. */
static int check_dir(const struct kvfs_txn *t)
{
	return S_ISDIR(t->st.meta.mode) ? 0 : -ENOTDIR;
}

static int make_txn(struct kvfs_txn *t, const struct fuse_ctx *ctx, const char *name,
		    uint32_t mode, dev_t rdev, const void *val, size_t vlen, struct kvfs_entry *e)
{
	struct kvfs_fs *fs = t->fs;
	struct kv_batch *b;
	struct timespec now;
	uint8_t blob[KVFS_META_LEN];
	int spilled = 0, rc = check_dir(t);

	if (rc)
		return rc;
	if (kvfs_name_is_control(name, strlen(name), t->node->is_root))
		return -EEXIST;
	rc = entry_for_new(fs, t->node, name, e, &spilled);
	if (!rc && spilled)
		rc = kvfs_txn_reload(t);
	if (rc)
		return rc;
	if (e->exists)
		return -EEXIST;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	kvfs_now(&now);
	memset(&e->st, 0, sizeof(e->st));
	e->st.found = 1;
	e->st.size = vlen;
	e->st.allocated = vlen; /* a new value holds every byte it has */
	e->st.meta.mode = mode;
	e->st.meta.uid = ctx->uid;
	e->st.meta.gid = ctx->gid;
	/* BSD group semantics in a set-group-ID directory, as every Linux filesystem does */
	if (t->st.meta.mode & S_ISGID) {
		e->st.meta.gid = t->st.meta.gid;
		if (S_ISDIR(mode))
			e->st.meta.mode |= S_ISGID;
	}
	e->st.meta.rdev = (uint64_t)rdev;
	e->st.meta.atime = e->st.meta.mtime = e->st.meta.ctime = now;
	e->st.meta.nlink = 1;
	rc = kvfs_new_ino(fs, &e->st.meta.ino);
	if (rc)
		return rc;
	if (!S_ISLNK(mode)) {
		/* the caller's umask, unless the directory's default ACL decides */
		rc = kvfs_inherit_acls(t, &e->st.meta.mode, ctx->umask, e->key, e->klen,
				       &e->st.meta.flags);
		if (rc)
			return rc;
	}
	rc = kv_batch_put(b, e->key, e->klen, blob, kvfs_meta_encode(&e->st.meta, blob), val, vlen);
	if (!rc)
		rc = kvfs_batch_dir_changed(b, t->key, t->klen, &t->st, &now);
	return rc ? rc : kvfs_txn_commit(t);
}

int kvfs_make_node(struct kvfs_fs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent,
		   const char *name, uint32_t mode, dev_t rdev, const void *val, size_t vlen,
		   struct fuse_entry_param *ep)
{
	struct kvfs_entry e = { .node = NULL };
	struct kvfs_node *n = NULL;
	struct kvfs_txn t;
	int rc;

	rc = kvfs_txn_begin(&t, fs, parent, KVFS_TXN_NAMESPACE);
	if (!rc)
		rc = make_txn(&t, ctx, name, mode, rdev, val, vlen, &e);
	if (t.lsn && S_ISDIR(mode))
		kvfs_dir_subdirs_add(t.node, 1);
	if (!rc) {
		rc = kvfs_node_lookup(fs, t.node, name, strlen(name), e.st.meta.ino, mode & S_IFMT, 0,
				      0, &n);
		if (!rc && S_ISDIR(mode)) {
			pthread_mutex_lock(&n->dir_mu);
			if (n->subdirs < 0)
				n->subdirs = 0; /* new: nothing below it */
			pthread_mutex_unlock(&n->dir_mu);
		}
		if (!rc)
			kvfs_entry_fill(fs, n, &e.st, 0, ep);
	} else if (t.lsn) {
		kvfs_notify_entry(fs, parent, name, strlen(name)); /* applied, then its flush failed */
	}
	kvfs_entry_release(fs, &e);
	kvfs_txn_end(&t);
	return rc;
}

void kvfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct fuse_entry_param e;
	int rc;

	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		/* fall through */
	case S_IFCHR:
	case S_IFBLK:
		rc = kvfs_make_node(fs, fuse_req_ctx(req), parent, name, mode & (S_IFMT | 07777), rdev,
				    NULL, 0, &e);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_entry(req, &e))
		kvfs_node_forget(fs, kvfs_node_of(fs, e.ino), 1);
}

void kvfs_op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct fuse_entry_param e;
	size_t len = strlen(target);
	int rc = len >= 4096 ? -ENAMETOOLONG
			     : kvfs_make_node(fs, fuse_req_ctx(req), parent, name, S_IFLNK | 0777, 0,
					      target, len, &e);

	if (rc)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_entry(req, &e))
		kvfs_node_forget(fs, kvfs_node_of(fs, e.ino), 1);
}

void kvfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	char buf[4096];
	size_t got = 0;
	struct kvfs_txn t;
	int rc;

	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_READ);
	if (!rc && !S_ISLNK(t.st.meta.mode))
		rc = -EINVAL;
	if (!rc)
		rc = kv_read(fs->kv, t.key, t.klen, 0, buf, sizeof(buf) - 1, &got);
	kvfs_txn_end(&t);
	buf[got] = '\0';
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

/* ---- a name goes away ---------------------------------------------------------------------- */

/* What happened to the file that lost a name, for the nodes after the batch is applied. */
struct gone {
	struct kvfs_node *node; /* the kernel's node for it, or NULL */
	uint64_t orphan_id;     /* it lives on there (the kernel holds it) */
	int removed;            /* a directory, deleted */
	int nlink_left;         /* a file with other names left */
};

/* Adds to b the removal of entry e (a non-directory) from its directory: its key is deleted,
 * or (to_key) replaced by a rename that the caller adds next. The file itself goes with its
 * last name, unless the kernel holds it: then it moves to an orphan key. */
static int batch_unname(struct kvfs_fs *fs, struct kv_batch *b, struct kvfs_entry *e,
			const struct timespec *now, int replaced, struct gone *g)
{
	char ikey[KVFS_ID_KEY_MAX], okey[KVFS_ID_KEY_MAX];
	int held = e->node && kvfs_node_held(fs, e->node);
	struct kvfs_stored in = e->st;
	int rc = 0;

	g->node = e->node;
	if (e->st.link_id) {
		size_t iklen = kvfs_id_key(ikey, KVFS_INODE_PREFIX, e->st.link_id);

		if (!replaced)
			rc = kv_batch_del(b, e->key, e->klen);
		if (rc)
			return rc;
		in.found = 1;
		in.meta.ctime = *now;
		if (e->st.meta.nlink > 1) {
			in.meta.nlink--;
			g->nlink_left = 1;
			return kvfs_batch_meta(b, ikey, iklen, &in);
		}
		if (!held)
			return kvfs_batch_delete(fs, b, ikey, iklen, &in.meta);
		g->orphan_id = e->st.link_id;
		in.meta.nlink = 0;
		rc = kvfs_batch_move(b, ikey, iklen, okey,
				     kvfs_id_key(okey, KVFS_ORPHAN_PREFIX, g->orphan_id), &in.meta);
		return rc ? rc : kvfs_batch_meta(b, okey, strlen(okey), &in);
	}
	if (!held) {
		if (!replaced)
			return kvfs_batch_delete(fs, b, e->key, e->klen, &e->st.meta);
		/* the rename replaces the key; its attributes go, and its promise */
		if (!(e->st.meta.flags & KVFS_META_XATTRS)) {
			kvfs_prealloc_gone(&e->st.meta);
			return 0;
		}
		rc = kvfs_batch_delete(fs, b, e->key, e->klen, &e->st.meta);
		return rc;
	}
	rc = kvfs_new_id(fs, &g->orphan_id);
	if (rc)
		return rc;
	in.meta.ctime = *now;
	in.meta.nlink = 0;
	rc = kvfs_batch_move(b, e->key, e->klen, okey,
			     kvfs_id_key(okey, KVFS_ORPHAN_PREFIX, g->orphan_id), &in.meta);
	return rc ? rc : kvfs_batch_meta(b, okey, strlen(okey), &in);
}

/* The nodes follow an applied batch. */
static void gone_applied(struct kvfs_fs *fs, const struct gone *g)
{
	if (!g->node)
		return;
	if (g->removed)
		kvfs_node_set_removed(fs, g->node);
	else if (g->orphan_id)
		kvfs_node_set_orphan(fs, g->node, g->orphan_id);
}

static int unlink_txn(struct kvfs_txn *t, const char *name, struct kvfs_entry *e, struct gone *g)
{
	struct kv_batch *b;
	struct timespec now;
	int rc = check_dir(t);

	if (rc)
		return rc;
	if (kvfs_name_is_control(name, strlen(name), t->node->is_root))
		return -EPERM;
	rc = kvfs_entry_get(t->fs, t->node, name, e);
	if (rc)
		return rc;
	if (!e->exists)
		return -ENOENT;
	if (S_ISDIR(e->st.meta.mode))
		return -EISDIR;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	kvfs_now(&now);
	rc = batch_unname(t->fs, b, e, &now, 0, g);
	if (!rc)
		rc = kvfs_batch_dir_changed(b, t->key, t->klen, &t->st, &now);
	return rc ? rc : kvfs_txn_commit(t);
}

void kvfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_entry e = { .node = NULL };
	struct gone g = { NULL, 0, 0, 0 };
	struct kvfs_txn t;
	int rc;

	rc = kvfs_txn_begin(&t, fs, parent, KVFS_TXN_NAMESPACE);
	if (!rc)
		rc = unlink_txn(&t, name, &e, &g);
	if (t.lsn) {
		gone_applied(fs, &g);
		if (rc) /* applied, then its flush failed: the kernel thinks the name is there */
			kvfs_notify_entry(fs, parent, name, strlen(name));
	}
	kvfs_entry_release(fs, &e);
	kvfs_txn_end(&t);
	fuse_reply_err(req, -rc);
}

/* ---- link ---------------------------------------------------------------------------------- */

static int link_txn(struct kvfs_txn *t, struct kvfs_node *src, const char *name,
		    struct kvfs_entry *e, uint64_t *new_link)
{
	struct kvfs_fs *fs = t->fs;
	char skey[KV_MAX_KEY], ikey[KVFS_ID_KEY_MAX];
	uint8_t blob[KVFS_LINK_LEN];
	struct kvfs_stored st;
	struct kv_batch *b;
	struct timespec now;
	size_t sklen, iklen;
	uint64_t id;
	int spilled = 0, rc = check_dir(t);

	if (rc)
		return rc;
	if (src->is_control)
		return -EPERM;
	if (kvfs_name_is_control(name, strlen(name), t->node->is_root))
		return -EEXIST;
	/* the new name first: a spill of its directory may move the file's own key */
	rc = entry_for_new(fs, t->node, name, e, &spilled);
	if (!rc && spilled)
		rc = kvfs_txn_reload(t);
	if (!rc)
		rc = kvfs_node_key(src, skey, &sklen);
	if (!rc)
		rc = kvfs_load(fs, skey, sklen, &st);
	if (rc)
		return rc;
	if (S_ISDIR(st.meta.mode))
		return -EPERM;
	if (e->exists)
		return -EEXIST;
	if (st.meta.nlink >= UINT32_MAX - 1)
		return -EMLINK;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	kvfs_now(&now);
	st.meta.ctime = now;
	if (src->orphan_id) {
		/* a file without a name (O_TMPFILE) gets its first one: back to an ordinary key */
		st.meta.nlink = 1;
		rc = kvfs_batch_move(b, skey, sklen, e->key, e->klen, &st.meta);
		if (!rc)
			rc = kvfs_batch_meta(b, e->key, e->klen, &st);
		memcpy(&e->st, &st, sizeof(st));
	} else {
		id = src->link_id;
		if (!id) {
			/* its second name: the file moves to an inode key both names refer to */
			rc = kvfs_new_id(fs, &id);
			iklen = kvfs_id_key(ikey, KVFS_INODE_PREFIX, id);
			if (!rc)
				rc = kvfs_batch_move(b, skey, sklen, ikey, iklen, &st.meta);
			if (!rc)
				rc = kv_batch_put(b, skey, sklen, blob, kvfs_link_encode(id, blob), NULL, 0);
			*new_link = id;
		} else {
			iklen = kvfs_id_key(ikey, KVFS_INODE_PREFIX, id);
		}
		st.meta.nlink++;
		if (!rc)
			rc = kvfs_batch_meta(b, ikey, iklen, &st);
		if (!rc)
			rc = kv_batch_put(b, e->key, e->klen, blob, kvfs_link_encode(id, blob), NULL, 0);
		e->st = st;
		e->st.link_id = id;
	}
	if (!rc)
		rc = kvfs_batch_dir_changed(b, t->key, t->klen, &t->st, &now);
	return rc ? rc : kvfs_txn_commit(t);
}

void kvfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_node *src = kvfs_node_of(fs, ino), *n = NULL;
	struct kvfs_entry e = { .node = NULL };
	struct fuse_entry_param ep;
	uint64_t new_link = 0;
	struct kvfs_txn t;
	int rc;

	kvfs_node_ref(fs, src);
	rc = kvfs_txn_begin(&t, fs, newparent, KVFS_TXN_NAMESPACE);
	if (!rc)
		rc = link_txn(&t, src, newname, &e, &new_link);
	if (t.lsn) {
		if (src->orphan_id) {
			int mrc = kvfs_node_move(fs, src, t.node, newname, strlen(newname));

			if (mrc && !rc)
				rc = mrc;
		} else if (new_link) {
			kvfs_node_set_link(fs, src, new_link);
		}
		if (rc)
			kvfs_notify_entry(fs, newparent, newname, strlen(newname));
	}
	if (!rc)
		rc = kvfs_node_lookup(fs, t.node, newname, strlen(newname), e.st.meta.ino,
				      e.st.meta.mode & S_IFMT, e.st.link_id, 0, &n);
	if (!rc)
		kvfs_entry_fill(fs, n, &e.st, 0, &ep);
	kvfs_entry_release(fs, &e);
	kvfs_txn_end(&t);
	kvfs_node_unref(fs, src);
	if (rc)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_entry(req, &ep))
		kvfs_node_forget(fs, n, 1);
}

/* ---- rename -------------------------------------------------------------------------------- */

struct rename {
	struct kvfs_txn *t;     /* the old parent's */
	struct kvfs_node *np;   /* the new parent */
	char npkey[KV_MAX_KEY];
	size_t npklen;
	struct kvfs_stored npst;
	const char *name, *newname;
	unsigned int flags;
	struct kvfs_entry src, dst;
	struct gone g;
	struct timespec now;
};

/* The entry prefix a directory entry's children live under when it is not spilled. */
static int children_move(struct kv_batch *b, const char *from, size_t flen, const char *to,
			 size_t tlen, const struct kvfs_stored *st)
{
	char f[KV_MAX_KEY + 2], t[KV_MAX_KEY + 2];

	if (!S_ISDIR(st->meta.mode) || st->meta.spill)
		return 0; /* nothing below its key: a spilled directory's entries stay put */
	memcpy(f, from, flen);
	f[flen] = '/';
	memcpy(t, to, tlen);
	t[tlen] = '/';
	return kv_batch_rename_prefix(b, f, flen + 1, t, tlen + 1);
}

/* Moves a node (its key if it has one, its attributes, a directory's entries) and sets its
 * new ctime at the new key. */
static int batch_move_entry(struct kv_batch *b, const char *from, size_t flen, const char *to,
			    size_t tlen, struct kvfs_stored *st, const struct timespec *now)
{
	char ikey[KVFS_ID_KEY_MAX];
	int rc = 0;

	if (st->found) {
		struct kvfs_meta plain = st->meta;

		if (st->link_id)
			plain.flags = 0; /* a link name has no attributes of its own */
		rc = kvfs_batch_move(b, from, flen, to, tlen, &plain);
	}
	if (!rc)
		rc = children_move(b, from, flen, to, tlen, st);
	if (rc)
		return rc;
	st->meta.ctime = *now;
	if (st->link_id)
		return kvfs_batch_meta(b, ikey, kvfs_id_key(ikey, KVFS_INODE_PREFIX, st->link_id), st);
	/* an implicit directory becomes a real one at its new name */
	return kvfs_batch_meta(b, to, tlen, st);
}

static int same_file(const struct kvfs_entry *a, const struct kvfs_entry *b)
{
	if (a->st.link_id || b->st.link_id)
		return a->st.link_id == b->st.link_id;
	return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

static int exchange_batch(struct rename *r, struct kv_batch *b)
{
	char tmp[KVFS_ID_KEY_MAX];
	struct kvfs_stored tst;
	uint64_t id;
	size_t tlen;
	int rc = kvfs_new_id(r->t->fs, &id);

	if (rc)
		return rc;
	/* through a temporary key, all in this one record */
	tlen = kvfs_id_key(tmp, KVFS_ORPHAN_PREFIX, id);
	tst = r->src.st;
	rc = batch_move_entry(b, r->src.key, r->src.klen, tmp, tlen, &tst, &r->now);
	if (!rc)
		rc = batch_move_entry(b, r->dst.key, r->dst.klen, r->src.key, r->src.klen, &r->dst.st,
				      &r->now);
	tst.found = 1; /* at the temporary key it is real, whatever it was */
	if (!rc)
		rc = batch_move_entry(b, tmp, tlen, r->dst.key, r->dst.klen, &tst, &r->now);
	r->src.st = tst;
	return rc;
}

static int rename_checks(struct rename *r)
{
	int sdir = S_ISDIR(r->src.st.meta.mode);

	if (!r->src.exists)
		return -ENOENT;
	if (r->flags & RENAME_EXCHANGE)
		return r->dst.exists ? 0 : -ENOENT;
	if (!r->dst.exists)
		return 0;
	if (r->flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (sdir) {
		int rc;
		char prefix[KV_MAX_KEY];
		size_t plen;

		if (!S_ISDIR(r->dst.st.meta.mode))
			return -ENOTDIR;
		if (r->dst.st.meta.spill)
			plen = kvfs_id_key(prefix, KVFS_DIR_PREFIX, r->dst.st.meta.spill);
		else
			memcpy(prefix, r->dst.key, plen = r->dst.klen);
		rc = kvfs_has_entries(r->t->fs, prefix, plen);
		if (rc)
			return rc > 0 ? -ENOTEMPTY : rc;
	} else if (S_ISDIR(r->dst.st.meta.mode)) {
		return -EISDIR;
	}
	return 0;
}

/* A directory moving to a longer key: what below it would not fit spills first. */
static int room_for(struct rename *r, struct kvfs_entry *e, size_t newlen)
{
	struct kvfs_node *n = e->node;
	int rc;

	if (!S_ISDIR(e->st.meta.mode) || e->st.meta.spill || newlen <= e->klen)
		return 0;
	if (!n)
		return -ESTALE; /* the kernel renames what it holds */
	rc = kvfs_make_room(r->t->fs, n, newlen - e->klen);
	if (rc)
		return rc;
	/* reread: it may have spilled */
	kvfs_entry_release(r->t->fs, e);
	return kvfs_entry_get(r->t->fs, e == &r->src ? r->t->node : r->np,
			      e == &r->src ? r->name : r->newname, e);
}

static int rename_txn(struct rename *r)
{
	struct kvfs_txn *t = r->t;
	struct kvfs_fs *fs = t->fs;
	struct kv_batch *b;
	int spilled = 0, rc = check_dir(t);

	if (!rc && !S_ISDIR(r->npst.meta.mode))
		rc = -ENOTDIR;
	if (rc)
		return rc;
	if (r->flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (kvfs_name_is_control(r->name, strlen(r->name), t->node->is_root) ||
	    kvfs_name_is_control(r->newname, strlen(r->newname), r->np->is_root))
		return -EPERM;
	rc = entry_for_new(fs, r->np, r->newname, &r->dst, &spilled);
	if (!rc && spilled) {
		rc = kvfs_load(fs, r->npkey, r->npklen, &r->npst);
		if (!rc && r->np == t->node)
			rc = kvfs_txn_reload(t);
	}
	if (!rc)
		rc = kvfs_entry_get(fs, t->node, r->name, &r->src);
	if (!rc)
		rc = rename_checks(r);
	if (rc)
		return rc;
	if (r->dst.exists && same_file(&r->src, &r->dst))
		return 0; /* one file under both names: POSIX says nothing happens */
	rc = room_for(r, &r->src, r->dst.klen);
	if (!rc && (r->flags & RENAME_EXCHANGE))
		rc = room_for(r, &r->dst, r->src.klen);
	if (rc)
		return rc;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	kvfs_now(&r->now);
	if (r->flags & RENAME_EXCHANGE) {
		rc = exchange_batch(r, b);
	} else {
		if (r->dst.exists && S_ISDIR(r->dst.st.meta.mode)) {
			rc = kvfs_batch_delete(fs, b, r->dst.key, r->dst.klen, &r->dst.st.meta);
			r->g.node = r->dst.node;
			r->g.removed = 1;
		} else if (r->dst.exists) {
			rc = batch_unname(fs, b, &r->dst, &r->now, 1, &r->g);
		}
		if (!rc)
			rc = batch_move_entry(b, r->src.key, r->src.klen, r->dst.key, r->dst.klen,
					      &r->src.st, &r->now);
	}
	if (!rc)
		rc = kvfs_batch_dir_changed(b, t->key, t->klen, &t->st, &r->now);
	if (!rc && r->np != t->node)
		rc = kvfs_batch_dir_changed(b, r->npkey, r->npklen, &r->npst, &r->now);
	return rc ? rc : kvfs_txn_commit(t);
}

/* The nodes follow an applied rename. */
static void rename_applied(struct rename *r)
{
	struct kvfs_fs *fs = r->t->fs;
	int sdir = S_ISDIR(r->src.st.meta.mode), ddir = r->dst.exists && S_ISDIR(r->dst.st.meta.mode);

	if (r->flags & RENAME_EXCHANGE) {
		if (r->src.node && !r->src.st.link_id &&
		    kvfs_node_move(fs, r->src.node, r->np, r->newname, strlen(r->newname)))
			kvfs_node_set_removed(fs, r->src.node); /* no memory: never a wrong name */
		if (r->dst.node && !r->dst.st.link_id &&
		    kvfs_node_move(fs, r->dst.node, r->t->node, r->name, strlen(r->name)))
			kvfs_node_set_removed(fs, r->dst.node);
		if (r->np != r->t->node && sdir != ddir) {
			kvfs_dir_subdirs_add(r->t->node, sdir ? -1 : 1);
			kvfs_dir_subdirs_add(r->np, sdir ? 1 : -1);
		}
		return;
	}
	gone_applied(fs, &r->g);
	if (r->src.node && !r->src.st.link_id &&
	    kvfs_node_move(fs, r->src.node, r->np, r->newname, strlen(r->newname)))
		kvfs_node_set_removed(fs, r->src.node);
	if (sdir && r->np != r->t->node) {
		kvfs_dir_subdirs_add(r->t->node, -1);
		kvfs_dir_subdirs_add(r->np, 1);
	}
	if (ddir)
		kvfs_dir_subdirs_add(r->np, -1);
}

void kvfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		    const char *newname, unsigned int flags)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct rename *r = calloc(1, sizeof(*r));
	struct kvfs_txn t;
	int rc;

	if (!r) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r->t = &t;
	r->name = name;
	r->newname = newname;
	r->flags = flags;
	rc = kvfs_txn_begin(&t, fs, parent, KVFS_TXN_NAMESPACE);
	r->np = kvfs_node_of(fs, newparent);
	kvfs_node_ref(fs, r->np);
	if (!rc) {
		rc = kvfs_node_key(r->np, r->npkey, &r->npklen);
		if (!rc)
			rc = kvfs_load(fs, r->npkey, r->npklen, &r->npst);
	}
	if (!rc)
		rc = rename_txn(r);
	if (t.lsn) {
		rename_applied(r);
		if (rc) { /* applied, then its flush failed: the kernel keeps the old names */
			kvfs_notify_entry(fs, parent, name, strlen(name));
			kvfs_notify_entry(fs, newparent, newname, strlen(newname));
		}
	}
	kvfs_entry_release(fs, &r->src);
	kvfs_entry_release(fs, &r->dst);
	kvfs_node_unref(fs, r->np);
	kvfs_txn_end(&t);
	free(r);
	fuse_reply_err(req, -rc);
}
