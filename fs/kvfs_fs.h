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

/* Where the tree's changes go. Without a writer, into the store with kv_apply and kv_flush; a
 * node of a replicated group (mount/kvfs_cluster.c) sends them through raft instead, and its
 * store changes only as raft applies them (docs/REPLICATION.md, "The mount"). */
struct kvfs_writer {
	/* Batch b, all or nothing: 0 once it is applied to the store the tree reads. epoch:
	 * what writable gave before the tree read what b was built from (0: b rests on no read);
	 * b must not land if the writer's epoch changed since. -EROFS: nothing was written (this
	 * node takes no writes now, or its epoch changed). Any other error: it may still take
	 * effect. */
	int (*apply)(void *arg, const struct kv_batch *b, uint64_t epoch);
	/* 0 once every change applied before the call is durable (for a group: on a majority). */
	int (*flush)(void *arg);
	/* 1 when a change made now would be taken, with *epoch an id of this stretch of being
	 * writable (raft's term): an epoch that differs from the last one means another writer
	 * may have changed the store in between. 0: changes fail with EROFS before they start. */
	int (*writable)(void *arg, uint64_t *epoch);
	void *arg;
};
/* Before kvfs_fs_serve. The tree then also keeps its inode-number counter in its own
 * records (each change that hands out numbers records the next one), not in ranges reserved
 * ahead, and reloads it whenever the epoch changes: numbers given out by an earlier writer are
 * never given again. */
void kvfs_fs_set_writer(struct kvfs_fs *fs, const struct kvfs_writer *w);

/* Another writer changed key in the store (a replicated entry this node did not make): what
 * the kernel cached of it goes (kvfs_fs_key_changed), and so does what the tree keeps in memory
 * about its directory (the subdirectory count). A trailing '/' (a prefix) names the directory.
 * Safe from any thread that holds none of the tree's locks. */
void kvfs_fs_store_changed(struct kvfs_fs *fs, const void *key, size_t klen);
/* The store is being replaced (an installed copy): kvfs_fs_store_pause holds every operation
 * out (it waits for those in flight) until kvfs_fs_store_resume gives the new store, which must
 * not be NULL. What the kernel cached of the old one lasts until its timeouts. */
void kvfs_fs_store_pause(struct kvfs_fs *fs);
void kvfs_fs_store_resume(struct kvfs_fs *fs, struct kv *kv);

/* Deletes the files that were unlinked while open (or made with O_TMPFILE and never linked)
 * when the last daemon stopped: nothing can reach them any more. *removed (may be NULL) gets
 * how many. Call it once the store is open and before the tree serves requests, and again
 * after it stopped. */
int kvfs_fs_remove_leftovers(struct kvfs_fs *fs, uint64_t *removed);
/* Sums the space promised to preallocated files (docs/FILESYSTEM.md §4) and gives the store
 * that count (kv_promise_set): once at mount, after kvfs_fs_remove_leftovers, before serving.
 * *promised gets it. -ENOSPC: the disk filled while unmounted and cannot hold it all (the rest
 * is held as room comes back); another negative errno: the scan failed. */
int kvfs_fs_load_promises(struct kvfs_fs *fs, uint64_t *promised);

/* Applies b as one change: through the writer when there is one (epoch: the writer's when b's
 * reads began, as kvfs_writer.apply takes it), else kv_apply. *lsn (may be NULL) is set once
 * it was applied (kv_apply's LSN; 1 through a writer), also when an error follows (kv_apply:
 * its flush failed). For fs/'s records made outside a transaction (a spill, an orphan's
 * deletion) as much as for kvfs_txn_commit. */
int kvfs_fs_apply(struct kvfs_fs *fs, struct kv_batch *b, uint64_t epoch, uint64_t *lsn);
/* Every change made before the call is durable: the writer's flush, else kv_flush. */
int kvfs_fs_flush(struct kvfs_fs *fs);

/* kv_cli changed key through the daemon (not through the kernel): the kernel drops what it
 * cached of the key's name, node and directory, or of the first missing name on its path.
 * Returns once the kernel was told (within a bound), so that a reply sent after it never
 * overtakes the change: call it from a thread that no request waits for (the control
 * socket's). Safe at any time (nothing when not serving). */
void kvfs_fs_key_changed(struct kvfs_fs *fs, const void *key, size_t klen);

/* Serves se's requests on cfg.threads threads until the session ends (unmount, or a signal
 * that fuse_set_signal_handlers routes to fuse_session_exit). 0, or the error that ended it. */
int kvfs_fs_serve(struct kvfs_fs *fs, struct fuse_session *se);
#endif
