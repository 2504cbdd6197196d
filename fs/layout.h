/* layout.h — where the mounted tree keeps things in the store's key space.
 *
 *   "a/b/c"               the node at path /a/b/c: its bytes, and its node blob as metadata.
 *                         Every ordinary file, directory, symlink and special node is here, so
 *                         kv_cli GET a/b/c reads the file. The root is the empty key "".
 *   "a/b/c" (a link blob) one name of a file with several names (hard links)...
 *   "/inode/<16 hex>"     ...which itself lives here: its bytes and its node blob (nlink names).
 *   "/dir/<16 hex>/name"  the entries of a directory whose own key is too long to put its
 *                         entries' keys under it (a "spilled" directory, see spill.c): paths
 *                         deeper than KVFS_NODE_KEY_MAX bytes continue here.
 *   "/orphan/<16 hex>"    a file the kernel still holds (open, mapped) after its last name was
 *                         removed, or an O_TMPFILE file: deleted when the kernel forgets it, or
 *                         at the next mount after a crash.
 *   KEY "\0" NAME         the extended attribute NAME of the node at KEY (any of the above).
 *   "/ino"                the first inode number not yet reserved (u64, little-endian).
 *
 * A key is visible in the tree when every component is a valid name: 1..255 bytes, no NUL,
 * not "." or "..", and at the root not ".kvfs". So every internal key above is invisible (an
 * empty first component, or a NUL), and keys that kv_cli wrote and that are not paths stay in
 * the store without showing. A node's key is at most KVFS_NODE_KEY_MAX bytes, which leaves room
 * for "\0" and an attribute name of up to 255 bytes within the engine's key limit. */
#ifndef KVFS_FS_LAYOUT_H
#define KVFS_FS_LAYOUT_H
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define KVFS_NAME_MAX 255
#define KVFS_XATTR_NAME_MAX 255
#define KVFS_NODE_KEY_MAX (KV_MAX_KEY - 1 - KVFS_XATTR_NAME_MAX)
#define KVFS_CONTROL_NAME ".kvfs" /* at the root: the control file, never a key */

#define KVFS_INODE_PREFIX "/inode/"
#define KVFS_ORPHAN_PREFIX "/orphan/"
#define KVFS_DIR_PREFIX "/dir/"
#define KVFS_INO_KEY "/ino"
#define KVFS_PROMISED_KEY "/promised" /* present: the store promised space once (prealloc.c) */
#define KVFS_ID_KEY_MAX 32                 /* "/orphan/" + 16 hex digits + room */
#define KVFS_SPILL_PREFIX_LEN (5 + 16 + 1) /* "/dir/<16 hex>/" */

/* Whether name (not NUL-terminated) may appear in a directory: 1..255 bytes, no '/' or NUL,
 * not "." or ".."; at the root, not ".kvfs" either. */
int kvfs_name_visible(const char *name, size_t len, int at_root);
/* Whether name is the control file's, in the root. */
int kvfs_name_is_control(const char *name, size_t len, int at_root);

/* "/inode/<id>" etc. into buf (KVFS_ID_KEY_MAX bytes); returns its length. */
size_t kvfs_id_key(char *buf, const char *prefix, uint64_t id);
/* key is prefix + 16 lowercase hex digits, optionally followed by "\0..." (an attribute's key);
 * *id gets the number. */
int kvfs_is_id_key(const void *key, size_t klen, const char *prefix, uint64_t *id);

/* The key of entry name in a directory whose entries live under prefix (plen bytes; 0 for the
 * root, whose entries have no leading '/'): prefix "/" name, into buf (KV_MAX_KEY bytes).
 * Returns its length, or 0 when it would be longer than KVFS_NODE_KEY_MAX. */
size_t kvfs_child_key(char *buf, const char *prefix, size_t plen, const char *name, size_t nlen);

/* The key of attribute name of the node at key: key "\0" name, into buf (KV_MAX_KEY bytes).
 * Returns its length. */
size_t kvfs_xattr_key(char *buf, const char *key, size_t klen, const char *name, size_t nlen);
/* The length of the node part of a key: up to its first NUL (an attribute's key) or all. */
size_t kvfs_node_part(const char *key, size_t klen);
#endif
