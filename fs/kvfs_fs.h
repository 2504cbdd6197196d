/* kvfs_fs.h — the mounted tree: libfuse low-level (inode) operations over a kvfs store.
 *
 * The daemon (mount/kvfs.c) opens the store, makes a kvfs_fs over it, creates a libfuse session
 * with kvfs_fs_operations() and the kvfs_fs as its user data, mounts it and calls
 * kvfs_fs_serve. Tree semantics, errno table and the control file: docs/FILESYSTEM.md; the
 * keys the tree uses: fs/layout.h and docs/FORMAT.md.
 *
 * Thread safety: kvfs_fs_serve runs the operations on cfg.threads threads; kvfs_fs_new,
 * kvfs_fs_remove_leftovers and kvfs_fs_free run with no operation in flight. */
#ifndef KVFS_FS_KVFS_FS_H
#define KVFS_FS_KVFS_FS_H
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>
#include <stdint.h>

#include "kv.h"

/* What the kernel may cache and how the daemon serves (kvfs's own mount options). */
struct kvfs_config {
	double entry_timeout;    /* s the kernel may trust a name (and a missing name) */
	double attr_timeout;     /* s it may trust attributes */
	double negative_timeout;
	int writeback_cache;     /* let the kernel gather writes (hides ENOSPC from write(2)) */
	unsigned threads;        /* worker threads serving requests */
};
void kvfs_config_default(struct kvfs_config *c);

struct kvfs_fs; /* opaque */

/* The store stays the caller's: it must outlive the kvfs_fs. datadir is the store's directory
 * (statfs reports its disk). Keys written without metadata (by kv_cli) show as files 0644
 * owned by the daemon's uid and gid, dated now (the mount). */
int kvfs_fs_new(struct kvfs_fs **out, struct kv *kv, const char *datadir,
		const struct kvfs_config *cfg);
void kvfs_fs_free(struct kvfs_fs *fs);

const struct fuse_lowlevel_ops *kvfs_fs_operations(void);

/* Deletes the files that were unlinked while open (or made with O_TMPFILE and never linked)
 * when the last daemon stopped: nothing can reach them any more. *removed (may be NULL) gets
 * how many. Call it once the store is open and before the tree serves requests, and again
 * after it stopped. */
int kvfs_fs_remove_leftovers(struct kvfs_fs *fs, uint64_t *removed);

/* kv_cli changed key through the daemon (not through the kernel): the kernel drops what it
 * cached of the key's name, node and directory, or of the first missing name on its path. Safe
 * from any thread at any time (nothing when not serving). */
void kvfs_fs_key_changed(struct kvfs_fs *fs, const void *key, size_t klen);

/* Serves se's requests on cfg.threads threads until the session ends (unmount, or a signal
 * that fuse_set_signal_handlers routes to fuse_session_exit). 0, or the error that ended it. */
int kvfs_fs_serve(struct kvfs_fs *fs, struct fuse_session *se);
#endif
