/* acl.c — POSIX ACL values (acl.h), and the ACL work of creating a node and of chmod. */
#include "acl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

int kvfs_acl_parse(const void *buf, size_t len, struct kvfs_acl **out)
{
	const uint8_t *p = buf;
	unsigned user_obj = 0, group_obj = 0, other = 0, mask = 0, named = 0;
	struct kvfs_acl *a;
	size_t n;

	if (len < 4 || (len - 4) % 8 != 0 || get32(p) != ACL_VERSION)
		return -EINVAL;
	n = (len - 4) / 8;
	a = malloc(sizeof(*a) + n * sizeof(a->e[0]));
	if (!a)
		return -ENOMEM;
	a->n = n;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *q = p + 4 + 8 * i;

		a->e[i].tag = get16(q);
		a->e[i].perm = get16(q + 2);
		a->e[i].id = get32(q + 4);
		if (a->e[i].perm > 7)
			goto bad;
		switch (a->e[i].tag) {
		case TAG_USER_OBJ:
			user_obj++;
			break;
		case TAG_GROUP_OBJ:
			group_obj++;
			break;
		case TAG_OTHER:
			other++;
			break;
		case TAG_MASK:
			mask++;
			break;
		case TAG_USER:
		case TAG_GROUP:
			named++;
			break;
		default:
			goto bad;
		}
	}
	if (n > 0 && (user_obj != 1 || group_obj != 1 || other != 1 || mask > 1 ||
		      (named && !mask)))
		goto bad;
	*out = a;
	return 0;
bad:
	free(a);
	return -EINVAL;
}

size_t kvfs_acl_size(const struct kvfs_acl *a)
{
	return 4 + 8 * a->n;
}

size_t kvfs_acl_encode(const struct kvfs_acl *a, uint8_t *out)
{
	put32(out, ACL_VERSION);
	for (size_t i = 0; i < a->n; i++) {
		uint8_t *q = out + 4 + 8 * i;

		put16(q, a->e[i].tag);
		put16(q + 2, a->e[i].perm);
		put32(q + 4, a->e[i].id);
	}
	return kvfs_acl_size(a);
}

int kvfs_acl_equiv_mode(const struct kvfs_acl *a, uint32_t *mode)
{
	uint32_t m = 0;
	int not_equiv = 0;
	const struct kvfs_acl_entry *mask = NULL;

	for (size_t i = 0; i < a->n; i++) {
		switch (a->e[i].tag) {
		case TAG_USER_OBJ:
			m |= (uint32_t)(a->e[i].perm & 7) << 6;
			break;
		case TAG_GROUP_OBJ:
			m |= (uint32_t)(a->e[i].perm & 7) << 3;
			break;
		case TAG_OTHER:
			m |= a->e[i].perm & 7;
			break;
		case TAG_MASK:
			mask = &a->e[i];
			not_equiv = 1;
			break;
		default:
			not_equiv = 1;
		}
	}
	if (mask) /* the group class shows as the mask */
		m = (m & ~070u) | (uint32_t)(mask->perm & 7) << 3;
	*mode = (*mode & ~0777u) | m;
	return not_equiv;
}

int kvfs_acl_create_masq(struct kvfs_acl *a, uint32_t *mode)
{
	struct kvfs_acl_entry *group_obj = NULL, *mask = NULL;
	uint32_t m = *mode;
	int not_equiv = 0;

	for (size_t i = 0; i < a->n; i++) {
		struct kvfs_acl_entry *e = &a->e[i];

		switch (e->tag) {
		case TAG_USER_OBJ:
			e->perm &= (uint16_t)((m >> 6) & 7);
			m &= ((uint32_t)e->perm << 6) | ~0700u;
			break;
		case TAG_USER:
		case TAG_GROUP:
			not_equiv = 1;
			break;
		case TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case TAG_OTHER:
			e->perm &= (uint16_t)(m & 7);
			m &= e->perm | ~07u;
			break;
		case TAG_MASK:
			mask = e;
			not_equiv = 1;
			break;
		}
	}
	if (mask) {
		mask->perm &= (uint16_t)((m >> 3) & 7);
		m &= ((uint32_t)mask->perm << 3) | ~070u;
	} else if (group_obj) {
		group_obj->perm &= (uint16_t)((m >> 3) & 7);
		m &= ((uint32_t)group_obj->perm << 3) | ~070u;
	}
	*mode = m;
	return not_equiv;
}

void kvfs_acl_apply_mode(struct kvfs_acl *a, uint32_t mode)
{
	struct kvfs_acl_entry *group_obj = NULL, *mask = NULL;

	for (size_t i = 0; i < a->n; i++) {
		struct kvfs_acl_entry *e = &a->e[i];

		if (e->tag == TAG_USER_OBJ)
			e->perm = (uint16_t)((mode >> 6) & 7);
		else if (e->tag == TAG_GROUP_OBJ)
			group_obj = e;
		else if (e->tag == TAG_MASK)
			mask = e;
		else if (e->tag == TAG_OTHER)
			e->perm = (uint16_t)(mode & 7);
	}
	if (mask)
		mask->perm = (uint16_t)((mode >> 3) & 7);
	else if (group_obj)
		group_obj->perm = (uint16_t)((mode >> 3) & 7);
}

/* The ACL kept as attribute name of the node at key: 0 and *out, -ENOENT, -EIO (unreadable). */
static int load_acl(struct kvfs_fs *fs, const char *key, size_t klen, const char *name,
		    struct kvfs_acl **out)
{
	char xkey[KV_MAX_KEY];
	size_t xlen = kvfs_xattr_key(xkey, key, klen, name, strlen(name));
	void *val = NULL;
	uint64_t vlen = 0;
	int rc = kv_get(fs->kv, xkey, xlen, &val, &vlen);

	if (rc)
		return rc;
	rc = kvfs_acl_parse(val, (size_t)vlen, out);
	free(val);
	return rc == -EINVAL ? -EIO : rc;
}

/* The value a batch refers to lives as long as the transaction (the engine does not copy
 * values into a batch). */
static int put_acl(struct kvfs_txn *t, const char *key, size_t klen, const char *name,
		   const struct kvfs_acl *a)
{
	char xkey[KV_MAX_KEY];
	size_t xlen = kvfs_xattr_key(xkey, key, klen, name, strlen(name));
	uint8_t *val = kvfs_txn_alloc(t, kvfs_acl_size(a));
	struct kv_batch *b;
	int rc;

	if (!val)
		return -ENOMEM;
	rc = kvfs_txn_batch(t, &b);
	return rc ? rc : kv_batch_put(b, xkey, xlen, NULL, 0, val, kvfs_acl_encode(a, val));
}

int kvfs_inherit_acls(struct kvfs_txn *t, uint32_t *mode, uint32_t umask, const char *key,
		      size_t klen, uint32_t *flags)
{
	struct kvfs_acl *def = NULL;
	uint32_t perm = *mode & 0777;
	int rc = -ENOENT;

	if (t->st.meta.flags & KVFS_META_XATTRS)
		rc = load_acl(t->fs, t->key, t->klen, KVFS_ACL_DEFAULT, &def);
	if (rc == -ENOENT || (rc == 0 && def->n == 0)) {
		free(def);
		*mode &= ~(umask & 0777); /* no default ACL: the umask decides */
		return 0;
	}
	if (rc)
		return rc;
	/* a default ACL replaces the umask */
	if ((*mode & S_IFMT) == S_IFDIR) {
		rc = put_acl(t, key, klen, KVFS_ACL_DEFAULT, def);
		*flags |= KVFS_META_XATTRS;
	}
	if (!rc && kvfs_acl_create_masq(def, &perm)) {
		rc = put_acl(t, key, klen, KVFS_ACL_ACCESS, def);
		*flags |= KVFS_META_XATTRS;
	}
	*mode = (*mode & ~0777u) | perm;
	free(def);
	return rc;
}

int kvfs_acl_chmod(struct kvfs_txn *t, uint32_t mode)
{
	struct kvfs_acl *a = NULL;
	int rc;

	if (!(t->st.meta.flags & KVFS_META_XATTRS))
		return 0;
	rc = load_acl(t->fs, t->key, t->klen, KVFS_ACL_ACCESS, &a);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	kvfs_acl_apply_mode(a, mode);
	rc = put_acl(t, t->key, t->klen, KVFS_ACL_ACCESS, a);
	free(a);
	return rc;
}
