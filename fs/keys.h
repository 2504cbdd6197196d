/* keys.h — how the paths of the mounted tree map to keys, and which keys the tree shows.
 *
 * Path "/a/b/c" is key "a/b/c"; the root is the empty key "" (which holds the root's metadata
 * once it has any). A key is visible when every component is a valid name (1..255 bytes, no
 * NUL, not "." or ".."), and at the root not the reserved name ".kvfs". Any other key (empty
 * components, a leading or trailing '/', ...) stays in the store, reachable with kv_cli, but
 * the tree never shows it. */
#ifndef KVFS_FS_KEYS_H
#define KVFS_FS_KEYS_H
#include <stddef.h>

#define KVFS_NAME_MAX 255
#define KVFS_CONTROL_NAME ".kvfs" /* at the root: the control file, never a key */

/* The key of a path from libfuse ("/a/b" -> "a/b", "/" -> ""), pointing into path. Every
 * component is checked: -ENAMETOOLONG for one over 255 bytes or a key over KV_MAX_KEY,
 * -EINVAL for one that no visible key may contain (the kernel never sends those). */
int kvfs_path_key(const char *path, const char **key, size_t *klen);

/* Length of the parent's key: "a/b/c" -> 3 ("a/b"), "c" -> 0 (the root). */
size_t kvfs_parent_klen(const char *key, size_t klen);

/* Whether name (not NUL-terminated) may appear in a directory: 1..255 bytes, no '/' or NUL,
 * not "." or ".."; at the root, not ".kvfs" either. */
int kvfs_name_visible(const char *name, size_t len, int at_root);

/* path names the control file: "/.kvfs". */
int kvfs_is_control(const char *path);
#endif
