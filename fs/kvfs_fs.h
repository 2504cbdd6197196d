/* kvfs_fs.h — the mounted tree: libfuse high-level operations over a kvfs store.
 *
 * The daemon (mount/kvfs.c) opens the store, makes a kvfs_fs over it, hands
 * kvfs_fs_operations() and the kvfs_fs to fuse_new as its private data, and runs libfuse's
 * multithreaded loop. Tree semantics, errno table and the control file: docs/FILESYSTEM.md.
 *
 * Thread safety: the operations may run on any number of libfuse threads at once;
 * kvfs_fs_new and kvfs_fs_free run with no operation in flight. */
#ifndef KVFS_FS_KVFS_FS_H
#define KVFS_FS_KVFS_FS_H
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 31
#endif
#include <fuse.h>
#include <stdint.h>

#include "kv.h"

struct kvfs_fs; /* opaque */

/* The store stays the caller's: it must outlive the kvfs_fs. datadir is the store's directory
 * (statfs reports its disk). Keys written without metadata (by kv_cli) show as files 0644
 * owned by the daemon's uid and gid, dated now (the mount). */
int kvfs_fs_new(struct kvfs_fs **out, struct kv *kv, const char *datadir);
void kvfs_fs_free(struct kvfs_fs *fs);

const struct fuse_operations *kvfs_fs_operations(void);

/* Deletes the files that were unlinked while open when the last daemon died (orphan keys,
 * openfiles.h): nothing can reach them any more. *removed (may be NULL) gets how many. Call it
 * once the store is open and before the tree serves requests. */
int kvfs_fs_remove_leftovers(struct kvfs_fs *fs, uint64_t *removed);
#endif
