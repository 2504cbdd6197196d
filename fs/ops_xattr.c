/* ops_xattr.c — extended attributes: user.*, trusted.*, security.* and the two POSIX ACLs.
 *
 * Attribute NAME of the node at KEY is the key KEY "\0" NAME, its value the attribute's bytes
 * (layout.h); the node's blob carries KVFS_META_XATTRS while it has any, so a node without
 * them costs nothing extra to rename or delete. The kernel checks who may read or write which
 * namespace (trusted.* needs CAP_SYS_ADMIN, user.* only on files and directories) and the
 * sizes (names up to 255 bytes, values up to 64 KiB). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "acl.h"
#include "fs_internal.h"

enum xns { XNS_PLAIN, XNS_ACL_ACCESS, XNS_ACL_DEFAULT };

static int prefixed(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Which kind of attribute name is; -EOPNOTSUPP for a namespace not kept (system.* other than
 * the ACLs, or none). */
static int xattr_ns(const char *name)
{
	if (prefixed(name, "user.") || prefixed(name, "trusted.") || prefixed(name, "security."))
		return XNS_PLAIN;
	if (strcmp(name, KVFS_ACL_ACCESS) == 0)
		return XNS_ACL_ACCESS;
	if (strcmp(name, KVFS_ACL_DEFAULT) == 0)
		return XNS_ACL_DEFAULT;
	return -EOPNOTSUPP;
}

/* The caller is the file's group or in it, or root: else setting an access ACL clears
 * set-group-ID, as the kernel would with FUSE_SETXATTR_ACL_KILL_SGID (which libfuse 3.14
 * does not pass on). */
static int in_group(fuse_req_t req, gid_t gid)
{
	return fuse_req_ctx(req)->uid == 0 || kvfs_req_in_group(req, gid);
}

struct xset {
	fuse_req_t req;
	const char *name;
	const char *value;
	size_t size;
	int flags;
	int ns;
};

static int setxattr_txn(struct kvfs_txn *t, const struct xset *x)
{
	struct kvfs_meta *m = &t->st.meta;
	char xkey[KV_MAX_KEY];
	size_t xlen = kvfs_xattr_key(xkey, t->key, t->klen, x->name, strlen(x->name));
	struct kvfs_acl *acl = NULL;
	struct kv_batch *b;
	struct timespec now;
	uint64_t vlen;
	size_t mlen = 0;
	int exists = 0, store = 1, rc;

	if (m->flags & KVFS_META_XATTRS) {
		rc = kv_stat(t->fs->kv, xkey, xlen, &vlen, NULL, &mlen);
		if (rc && rc != -ENOENT)
			return rc;
		exists = rc == 0;
	}
	if ((x->flags & XATTR_CREATE) && exists)
		return -EEXIST;
	if ((x->flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	rc = kvfs_txn_batch(t, &b);
	if (rc)
		return rc;
	if (x->ns != XNS_PLAIN) {
		rc = kvfs_acl_parse(x->value, x->size, &acl);
		if (rc)
			return rc;
	}
	if (x->ns == XNS_ACL_ACCESS) {
		uint32_t mode = m->mode;

		if (acl->n == 0) {
			free(acl);
			return -EINVAL;
		}
		/* the mode follows the ACL; an ACL that says no more than the mode is not kept */
		store = kvfs_acl_equiv_mode(acl, &mode);
		if ((mode & S_ISGID) && !in_group(x->req, m->gid))
			mode &= ~(uint32_t)S_ISGID;
		m->mode = mode;
	} else if (x->ns == XNS_ACL_DEFAULT) {
		if (!S_ISDIR(m->mode)) {
			free(acl);
			return -EACCES;
		}
		store = acl->n > 0; /* an empty default ACL removes it */
	}
	free(acl);
	if (store) {
		rc = kv_batch_put(b, xkey, xlen, NULL, 0, x->value, x->size);
		m->flags |= KVFS_META_XATTRS;
	} else if (exists) {
		rc = kv_batch_del(b, xkey, xlen);
	}
	if (rc)
		return rc;
	kvfs_now(&now);
	m->ctime = now;
	rc = kvfs_batch_meta(b, t->key, t->klen, &t->st);
	return rc ? rc : kvfs_txn_commit(t);
}

void kvfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		      size_t size, int flags)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct xset x = { req, name, value, size, flags, xattr_ns(name) };
	struct kvfs_txn t;
	int rc;

	if (x.ns < 0) {
		fuse_reply_err(req, -x.ns);
		return;
	}
	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_NODE);
	if (!rc)
		rc = setxattr_txn(&t, &x);
	kvfs_txn_end(&t);
	fuse_reply_err(req, -rc);
}

void kvfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	char xkey[KV_MAX_KEY];
	void *val = NULL;
	uint64_t vlen = 0;
	struct kvfs_txn t;
	int rc = xattr_ns(name);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_READ);
	/* most nodes have none: the kernel asks for security.capability before every write */
	if (!rc && !(t.st.meta.flags & KVFS_META_XATTRS))
		rc = -ENODATA;
	if (!rc)
		rc = kv_get(fs->kv, xkey, kvfs_xattr_key(xkey, t.key, t.klen, name, strlen(name)), &val,
			    &vlen);
	kvfs_txn_end(&t);
	if (rc == -ENOENT)
		rc = -ENODATA;
	if (!rc && size && vlen > size)
		rc = -ERANGE;
	if (rc)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)vlen);
	else
		fuse_reply_buf(req, val, (size_t)vlen);
	free(val);
}

/* The names of a node's attributes, NUL-terminated one after the other. */
struct names {
	const char *prefix;
	size_t plen;
	char *buf;
	size_t len, cap;
	int err;
};

static int names_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		    size_t mlen)
{
	struct names *nm = arg;
	size_t n;

	(void)size, (void)meta, (void)mlen;
	if (klen < nm->plen || memcmp(key, nm->prefix, nm->plen) != 0)
		return 1;
	n = klen - nm->plen;
	if (nm->len + n + 1 > nm->cap) {
		size_t cap = (nm->len + n + 1) * 2;
		char *b = realloc(nm->buf, cap);

		if (!b) {
			nm->err = -ENOMEM;
			return 1;
		}
		nm->buf = b;
		nm->cap = cap;
	}
	memcpy(nm->buf + nm->len, (const char *)key + nm->plen, n);
	nm->buf[nm->len + n] = '\0';
	nm->len += n + 1;
	return 0;
}

static int list_names(struct kvfs_fs *fs, const char *key, size_t klen, struct names *nm)
{
	char p[KV_MAX_KEY + 1];
	int rc;

	memcpy(p, key, klen);
	p[klen] = '\0';
	nm->prefix = p;
	nm->plen = klen + 1;
	rc = kv_scan(fs->kv, p, klen + 1, names_cb, nm);
	return rc < 0 ? rc : nm->err;
}

void kvfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct names nm = { NULL, 0, NULL, 0, 0, 0 };
	struct kvfs_txn t;
	int rc;

	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_READ);
	if (!rc && (t.st.meta.flags & KVFS_META_XATTRS))
		rc = list_names(fs, t.key, t.klen, &nm);
	kvfs_txn_end(&t);
	if (!rc && size && nm.len > size)
		rc = -ERANGE;
	if (rc)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, nm.len);
	else
		fuse_reply_buf(req, nm.buf, nm.len);
	free(nm.buf);
}

static int removexattr_txn(struct kvfs_txn *t, const char *name)
{
	struct kvfs_meta *m = &t->st.meta;
	struct names nm = { NULL, 0, NULL, 0, 0, 0 };
	char xkey[KV_MAX_KEY];
	size_t xlen = kvfs_xattr_key(xkey, t->key, t->klen, name, strlen(name)), mlen = 0;
	struct kv_batch *b;
	struct timespec now;
	uint64_t vlen;
	int rc;

	if (!(m->flags & KVFS_META_XATTRS))
		return -ENODATA;
	rc = kv_stat(t->fs->kv, xkey, xlen, &vlen, NULL, &mlen);
	if (rc)
		return rc == -ENOENT ? -ENODATA : rc;
	rc = kvfs_txn_batch(t, &b);
	if (!rc)
		rc = kv_batch_del(b, xkey, xlen);
	if (!rc)
		rc = list_names(t->fs, t->key, t->klen, &nm);
	free(nm.buf);
	if (rc)
		return rc;
	if (nm.len == strlen(name) + 1)
		m->flags &= ~KVFS_META_XATTRS; /* that was the last one */
	kvfs_now(&now);
	m->ctime = now;
	rc = kvfs_batch_meta(b, t->key, t->klen, &t->st);
	return rc ? rc : kvfs_txn_commit(t);
}

void kvfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct kvfs_fs *fs = kvfs_fs_of(req);
	struct kvfs_txn t;
	int rc = xattr_ns(name);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	rc = kvfs_txn_begin(&t, fs, ino, KVFS_TXN_NODE);
	if (!rc)
		rc = removexattr_txn(&t, name);
	kvfs_txn_end(&t);
	fuse_reply_err(req, -rc);
}
