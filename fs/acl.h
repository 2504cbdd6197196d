/* acl.h — POSIX ACLs in the form the kernel passes them as the extended attributes
 * system.posix_acl_access and system.posix_acl_default (little-endian):
 *   version u32 = 2, then entries of: tag u16, perm u16, id u32
 * With FUSE_CAP_POSIX_ACL the kernel enforces ACLs and caches them; the filesystem stores them,
 * keeps the mode's permission bits in step with the access ACL (both ways), and gives new nodes
 * their ACLs from their directory's default ACL, as ext4 does. */
#ifndef KVFS_FS_ACL_H
#define KVFS_FS_ACL_H
#include <stddef.h>
#include <stdint.h>

#define KVFS_ACL_ACCESS "system.posix_acl_access"
#define KVFS_ACL_DEFAULT "system.posix_acl_default"

struct kvfs_acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

struct kvfs_acl {
	size_t n;
	struct kvfs_acl_entry e[]; /* n entries */
};

/* A malloc'd ACL from its attribute value; -EINVAL for a malformed one (a version other than
 * 2, a length that is not a whole number of entries, an unknown tag, perm over 7, a required
 * entry missing or doubled). An empty list (the header alone) is n == 0. */
int kvfs_acl_parse(const void *buf, size_t len, struct kvfs_acl **out);
/* The attribute value of a; its length (4 + 8 * n bytes, into out). */
size_t kvfs_acl_encode(const struct kvfs_acl *a, uint8_t *out);
size_t kvfs_acl_size(const struct kvfs_acl *a);
/* The permission bits a access ACL gives the mode (mode's other bits kept): 0 when the ACL
 * says no more than the mode (it need not be stored), 1 when it must be kept. */
int kvfs_acl_equiv_mode(const struct kvfs_acl *a, uint32_t *mode);
/* A default ACL applied to a new node of mode *mode: a is turned into its access ACL and *mode
 * masked; 1 when the access ACL must be stored, 0 when the mode says it all. */
int kvfs_acl_create_masq(struct kvfs_acl *a, uint32_t *mode);
/* chmod: the owner, group-class (mask, or group when there is no mask) and other entries
 * take the new mode's bits. */
void kvfs_acl_apply_mode(struct kvfs_acl *a, uint32_t mode);
#endif
