/* openfiles.h — the regular files that are open, by key.
 *
 * An open file must stay readable and writable after it is unlinked or replaced by a rename,
 * until its last close. The tree does that by moving the key, in the same batch as the unlink or
 * rename, to an orphan key "/orphan/<16 hex>" (a leading '/' makes it invisible in the tree),
 * and deleting the orphan at the last close; the next mount deletes orphans a crash left. Open
 * handles name their file through an entry here, whose key follows renames of the file and of
 * the directories above it.
 *
 * Thread safety: every function may be called from any thread (one internal mutex, never held
 * across a call into the store). Keys change only through kvfs_of_moved and kvfs_of_orphaned,
 * which the tree calls under its namespace lock after the batch that moved the keys. */
#ifndef KVFS_FS_OPENFILES_H
#define KVFS_FS_OPENFILES_H
#include <stddef.h>
#include <stdint.h>

#define KVFS_ORPHAN_PREFIX "/orphan/"
#define KVFS_ORPHAN_KEY_MAX 32

struct kvfs_openfiles; /* opaque */
struct kvfs_ofile;     /* one key with open handles; opaque */

int kvfs_openfiles_new(struct kvfs_openfiles **out);
void kvfs_openfiles_free(struct kvfs_openfiles *of);

/* One more open handle of key; *out is the entry shared by every handle of that key. */
int kvfs_of_open(struct kvfs_openfiles *of, const char *key, size_t klen, struct kvfs_ofile **out);
/* One handle fewer. Returns 1 when it was the last handle of an orphan, with the orphan's key
 * copied into orphan (KVFS_ORPHAN_KEY_MAX bytes) for the caller to delete; else 0. */
int kvfs_of_close(struct kvfs_openfiles *of, struct kvfs_ofile *f, char *orphan, size_t *olen);
/* The entry's current key, copied into buf (room for KV_MAX_KEY bytes); returns its length. */
size_t kvfs_of_key(struct kvfs_openfiles *of, const struct kvfs_ofile *f, char *buf);
/* Whether some handle has key open. */
int kvfs_of_is_open(struct kvfs_openfiles *of, const char *key, size_t klen);
/* A fresh orphan key for this mount, into buf (KVFS_ORPHAN_KEY_MAX bytes); returns its length. */
size_t kvfs_of_orphan_name(struct kvfs_openfiles *of, char *buf);
/* key is shaped like an orphan key: the prefix and 16 lowercase hex digits. */
int kvfs_of_is_orphan_name(const void *key, size_t klen);

/* After a batch renamed from to to: the entry at from now lives at to; with subtree, so does
 * every entry below from + "/" (moved below to + "/"). -ENOMEM leaves a key unchanged. */
int kvfs_of_moved(struct kvfs_openfiles *of, const char *from, size_t flen, const char *to,
		  size_t tlen, int subtree);
/* After a batch moved key to the orphan key: its entry lives on there until its last close. */
int kvfs_of_orphaned(struct kvfs_openfiles *of, const char *key, size_t klen, const char *orphan,
		     size_t olen);
#endif
