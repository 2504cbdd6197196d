/* ops_dir.c — directories: lookup, forget, mkdir, rmdir, readdir and readdirplus.
 *
 * Listings (listing.h) resume across requests: a READDIR carries only an offset, and there is
 * no open directory handle (no OPENDIR round trip: the kernel opens directories itself and
 * caches their listings). Entry i of a listing (0-based, after "." and "..") has offset 3 + i,
 * and the directory's node keeps the walks that stopped at a buffer's end, by the offset they
 * continue at, so reading a listing in many requests costs one walk. An offset no walk is kept
 * for (more listings of one directory at once than cursors, or after a spill) starts a walk
 * over and skips to it. */
#include <errno.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "listing.h"

void kvfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct fuse_entry_param ep;
	struct kvfs_entry e;
	struct kvfs_node *n = NULL;
	struct kvfs_txn t;
	uint64_t subdirs = 0;
	int rc;

	memset(&ep, 0, sizeof(ep));
	rc = kvfs_txn_begin(&t, fs, parent, KVFS_TXN_READ);
	if (!rc && !S_ISDIR(t.st.meta.mode))
		rc = -ENOTDIR;
	if (rc)
		goto out;
	if (kvfs_name_is_control(name, strlen(name), t.node->is_root)) {
		rc = kvfs_control_lookup(fs, &ep);
		if (!rc)
			n = kvfs_node_of(fs, ep.ino);
		goto out;
	}
	rc = kvfs_entry_get(fs, t.node, name, &e);
	if (rc)
		goto out;
	kvfs_entry_release(fs, &e);
	if (!e.exists) {
		/* cached by the kernel as a negative entry */
		ep.ino = 0;
		ep.entry_timeout = fs->cfg.negative_timeout;
		goto out;
	}
	rc = kvfs_node_lookup(fs, t.node, name, strlen(name), e.st.meta.ino,
			      e.st.meta.mode & S_IFMT, e.st.link_id, e.st.meta.spill, &n);
	if (!rc && S_ISDIR(e.st.meta.mode))
		rc = kvfs_dir_subdirs(fs, n, &subdirs);
	if (!rc)
		kvfs_entry_fill(fs, n, &e.st, subdirs, &ep);
	else if (n)
		kvfs_node_forget(fs, n, 1);
out:
	kvfs_txn_end(&t);
	if (rc)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_entry(req, &ep) && n)
		kvfs_node_forget(fs, n, 1); /* the kernel never got it (interrupted) */
}

void kvfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);

	kvfs_node_forget(fs, kvfs_node_of(fs, ino), nlookup);
	fuse_reply_none(req);
}

void kvfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);

	for (size_t i = 0; i < count; i++)
		kvfs_node_forget(fs, kvfs_node_of(fs, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

void kvfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct fuse_entry_param e;
	int rc = kvfs_make_node(fs, fuse_req_ctx(req), parent, name, S_IFDIR | (mode & 07777), 0,
				NULL, 0, &e);

	if (rc)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_entry(req, &e))
		kvfs_node_forget(fs, kvfs_node_of(fs, e.ino), 1);
}

static int rmdir_txn(struct kvfs_txn *t, const char *name, struct kvfs_entry *e)
{
	struct kvfs_fs *fs = t->fs;
	struct kv_batch *b;
	struct timespec now;
	char prefix[KV_MAX_KEY];
	size_t plen;
	int rc;

	if (!S_ISDIR(t->st.meta.mode))
		return -ENOTDIR;
	if (kvfs_name_is_control(name, strlen(name), t->node->is_root))
		return -ENOTDIR;
	rc = kvfs_entry_get(fs, t->node, name, e);
	if (rc)
		return rc;
	if (!e->exists)
		return -ENOENT;
	if (!S_ISDIR(e->st.meta.mode))
		return -ENOTDIR;
	/* Any key below counts, visible or not: removing the directory must not strand keys
	 * that only kv_cli can see (they would bring it back as an implicit directory). */
	if (e->st.meta.spill)
		plen = kvfs_id_key(prefix, KVFS_DIR_PREFIX, e->st.meta.spill);
	else
		memcpy(prefix, e->key, plen = e->klen);
	rc = kvfs_has_entries(fs, prefix, plen);
	if (rc)
		return rc > 0 ? -ENOTEMPTY : rc;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	kvfs_now(&now);
	rc = kvfs_batch_delete(fs, b, e->key, e->klen, &e->st.meta);
	if (!rc)
		rc = kvfs_batch_dir_changed(b, t->key, t->klen, &t->st, &now);
	if (!rc)
		rc = kvfs_txn_commit(t);
	return rc;
}

void kvfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_entry e = { .node = NULL };
	struct kvfs_txn t;
	int rc;

	rc = kvfs_txn_begin(&t, fs, parent, KVFS_TXN_NAMESPACE);
	if (!rc)
		rc = rmdir_txn(&t, name, &e);
	if (t.lsn) {
		/* applied (a failed flush after it still reports an error) */
		if (e.node)
			kvfs_node_set_removed(fs, e.node);
		kvfs_dir_subdirs_add(t.node, -1);
		if (rc)
			kvfs_notify_entry(fs, parent, name, strlen(name));
	}
	kvfs_entry_release(fs, &e);
	kvfs_txn_end(&t);
	fuse_reply_err(req, -rc);
}

/* ---- listings ------------------------------------------------------------------------------ */

#define MAX_CURSORS 8

struct kvfs_cursor {
	struct kvfs_cursor *next;
	off_t off; /* the offset the walk continues at */
	struct kvfs_listing *ls;
};

void kvfs_cursors_free(struct kvfs_node *dir)
{
	struct kvfs_cursor *c = dir->cursors, *next;

	for (; c; c = next) {
		next = c->next;
		kvfs_listing_free(c->ls);
		free(c);
	}
	dir->cursors = NULL;
}

/* The walk that continues at off, taken out of dir's cursors (dir_mu held), or NULL. */
static struct kvfs_listing *take_cursor(struct kvfs_node *dir, off_t off)
{
	struct kvfs_cursor **p = &dir->cursors, *c;
	struct kvfs_listing *ls;

	while (*p && (*p)->off != off)
		p = &(*p)->next;
	c = *p;
	if (!c)
		return NULL;
	*p = c->next;
	ls = c->ls;
	free(c);
	return ls;
}

/* Keep ls, which continues at off, first among dir's cursors; the oldest beyond MAX_CURSORS
 * goes (dir_mu held). */
static void keep_cursor(struct kvfs_node *dir, struct kvfs_listing *ls, off_t off)
{
	struct kvfs_cursor *c = malloc(sizeof(*c)), **p;
	unsigned n = 1;

	if (!c) {
		kvfs_listing_free(ls); /* the next request walks again from the start */
		return;
	}
	c->off = off;
	c->ls = ls;
	c->next = dir->cursors;
	dir->cursors = c;
	for (p = &c->next; *p && n < MAX_CURSORS; p = &(*p)->next)
		n++;
	if (*p) {
		struct kvfs_cursor *old = *p;

		*p = NULL;
		while (old) {
			struct kvfs_cursor *next = old->next;

			kvfs_listing_free(old->ls);
			free(old);
			old = next;
		}
	}
}

static size_t cost_plain(size_t namelen)
{
	return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
}

static size_t cost_plus(size_t namelen)
{
	return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen);
}

#define CHUNK 128

/* One READDIR or READDIRPLUS request. */
struct reply {
	fuse_req_t req;
	struct kvfs_fs *fs;
	struct kvfs_node *dir;
	int plus;
	char *buf;
	size_t size, pos;
	struct kvfs_node **looked; /* readdirplus: the nodes given to the kernel */
	size_t nlooked;
};

static int add_dots(struct reply *r, off_t off)
{
	static const char *const names[2] = { ".", ".." };
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr.st_mode = S_IFDIR;
	for (off_t i = off; i < 2; i++) {
		size_t room = r->size - r->pos, n;

		/* never 0: readdir(3) skips entries numbered 0 */
		e.attr.st_ino = i == 1 && r->dir->parent ? r->dir->parent->st_ino : r->dir->st_ino;
		if (r->plus) /* no node id: the kernel takes nothing from us for these */
			n = fuse_add_direntry_plus(r->req, r->buf + r->pos, room, names[i], &e, i + 1);
		else
			n = fuse_add_direntry(r->req, r->buf + r->pos, room, names[i], &e.attr, i + 1);
		if (n > room)
			return 0; /* a buffer too small for them: the kernel asks again */
		r->pos += n;
	}
	return 1;
}

/* A child's attributes as READDIRPLUS gives them: one more lookup of its node. Without them
 * (unreadable metadata, a damaged link) the entry goes with node id 0 and type unknown. */
static void child_entry(struct reply *r, const char *prefix, size_t plen,
			const struct kvfs_child *c, struct fuse_entry_param *e)
{
	char key[KV_MAX_KEY];
	struct kvfs_stored st;
	struct kvfs_node *n = NULL;
	size_t klen = kvfs_child_key(key, prefix, plen, c->name, c->namelen);
	uint64_t subdirs = 0;
	int rc = klen ? 0 : -ENAMETOOLONG;

	memset(e, 0, sizeof(*e));
	if (!rc && c->unreadable)
		rc = -EIO;
	if (!rc && c->link_id) {
		rc = kvfs_load(r->fs, key, klen, &st);
	} else if (!rc) {
		memset(&st, 0, sizeof(st));
		st.found = !c->implicit;
		st.meta = c->meta;
		st.size = c->size;
		if (!st.meta.ino)
			st.meta.ino = kvfs_ino_from_key(key, klen);
		if (st.found) /* the listing gives sizes, not what they hold on disk */
			rc = kvfs_load_allocated(r->fs, key, klen, &st);
	}
	if (!rc)
		rc = kvfs_node_lookup(r->fs, r->dir, c->name, c->namelen, st.meta.ino,
				      st.meta.mode & S_IFMT, st.link_id, st.meta.spill, &n);
	if (!rc && S_ISDIR(st.meta.mode))
		rc = kvfs_dir_subdirs(r->fs, n, &subdirs);
	if (rc) {
		if (n)
			kvfs_node_forget(r->fs, n, 1);
		e->attr.st_ino = kvfs_ino_from_key(key, klen); /* never 0 (readdir skips those) */
		return;
	}
	kvfs_entry_fill(r->fs, n, &st, subdirs, e);
	r->looked[r->nlooked++] = n;
}

/* A child as READDIR gives it: its number and type. */
static void child_stat(struct reply *r, const char *prefix, size_t plen,
		       const struct kvfs_child *c, struct stat *st)
{
	char key[KV_MAX_KEY];
	size_t klen = kvfs_child_key(key, prefix, plen, c->name, c->namelen);
	struct kvfs_stored s;

	memset(st, 0, sizeof(*st));
	if (c->link_id && klen && kvfs_load(r->fs, key, klen, &s) == 0) {
		st->st_mode = s.meta.mode & S_IFMT;
		st->st_ino = s.meta.ino;
	} else if (!c->link_id && !c->unreadable) {
		st->st_mode = c->meta.mode & S_IFMT;
		st->st_ino = c->meta.ino;
	}
	/* the number stat shows; never 0 (readdir skips those) */
	if (!st->st_ino)
		st->st_ino = kvfs_ino_from_key(key, klen);
}

static int list_children(struct reply *r, struct kvfs_listing *ls, const char *prefix,
			 size_t plen, off_t *next_off)
{
	struct kvfs_child *ch = malloc(CHUNK * sizeof(*ch));
	int rc = 0;

	if (!ch)
		return -ENOMEM;
	while (!kvfs_listing_done(ls)) {
		size_t budget = r->size - r->pos;
		int got = kvfs_listing_next(ls, ch, CHUNK, &budget, r->plus ? cost_plus : cost_plain);

		if (got < 0) {
			rc = got;
			break;
		}
		if (got == 0)
			break; /* the next one does not fit */
		for (int i = 0; i < got; i++) {
			size_t room = r->size - r->pos, n;

			(*next_off)++;
			if (r->plus) {
				struct fuse_entry_param e;

				child_entry(r, prefix, plen, &ch[i], &e);
				n = fuse_add_direntry_plus(r->req, r->buf + r->pos, room, ch[i].name, &e,
							   *next_off);
			} else {
				struct stat st;

				child_stat(r, prefix, plen, &ch[i], &st);
				n = fuse_add_direntry(r->req, r->buf + r->pos, room, ch[i].name, &st,
						      *next_off);
			}
			r->pos += n; /* the listing only gave what fits */
		}
	}
	free(ch);
	return rc;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct reply r = { req, fs, NULL, plus, NULL, size, 0, NULL, 0 };
	struct kvfs_listing *ls = NULL;
	struct kvfs_txn t;
	char prefix[KV_MAX_KEY];
	size_t plen;
	off_t next_off;
	int rc;

	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_READ);
	r.dir = t.node;
	if (rc == -ENOENT && t.node->removed)
		rc = 0; /* removed while someone was in it: empty but for . and .. */
	else if (!rc && !S_ISDIR(t.st.meta.mode))
		rc = -ENOTDIR;
	if (rc)
		goto out;
	r.buf = malloc(size);
	r.looked = plus ? malloc((size / cost_plus(1) + 1) * sizeof(*r.looked)) : NULL;
	if (!r.buf || (plus && !r.looked)) {
		rc = -ENOMEM;
		goto out;
	}
	if (off < 0)
		off = 0;
	if (off < 2 && !add_dots(&r, off))
		goto out;
	if (t.node->removed)
		goto out;
	rc = kvfs_dir_prefix(t.node, prefix, &plen);
	if (rc)
		goto out;
	next_off = off < 2 ? 2 : off;
	pthread_mutex_lock(&t.node->dir_mu);
	ls = take_cursor(t.node, next_off);
	pthread_mutex_unlock(&t.node->dir_mu);
	if (!ls) {
		struct kvfs_child *skip = NULL;

		rc = kvfs_listing_new(&ls, fs, prefix, plen, t.node->is_root);
		/* a walk nobody kept: from the start, to the entry the offset names */
		for (off_t left = next_off - 2; !rc && left > 0;) {
			size_t budget = SIZE_MAX;
			int got;

			if (!skip)
				skip = malloc(CHUNK * sizeof(*skip));
			got = skip ? kvfs_listing_next(ls, skip, left < CHUNK ? (size_t)left : CHUNK,
						       &budget, NULL) : -ENOMEM;
			if (got <= 0) {
				rc = got;
				break;
			}
			left -= got;
		}
		free(skip);
		if (rc)
			goto out;
	}
	rc = list_children(&r, ls, prefix, plen, &next_off);
	if (!rc && !kvfs_listing_done(ls)) {
		pthread_mutex_lock(&t.node->dir_mu);
		keep_cursor(t.node, ls, next_off);
		pthread_mutex_unlock(&t.node->dir_mu);
		ls = NULL;
	}
out:
	kvfs_listing_free(ls);
	kvfs_txn_end(&t);
	if (rc) {
		for (size_t i = 0; i < r.nlooked; i++)
			kvfs_node_forget(fs, r.looked[i], 1);
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_buf(req, r.buf, r.pos)) {
		for (size_t i = 0; i < r.nlooked; i++) /* the kernel never got them */
			kvfs_node_forget(fs, r.looked[i], 1);
	}
	free(r.buf);
	free(r.looked);
}

void kvfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi; /* no open handle: the offset says where to go on */
	readdir_common(req, ino, size, off, 0);
}

void kvfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 1);
}
