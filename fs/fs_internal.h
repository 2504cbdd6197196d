/* fs_internal.h — what the operation files of fs/ share: the kvfs_fs itself, nodes (what a key
 * or a prefix shows as), open-file handles, and the locks that keep check-then-write sequences
 * atomic.
 *
 * Locking. libfuse's high-level API already keeps an operation on a path from overlapping a
 * rename or unlink of that path (its tree locks), and the kernel holds a directory's inode lock
 * around every change of its entries. We do not lean on that for our invariants:
 *   ns_mu      every namespace change (create, mkdir, mknod, symlink, unlink, rmdir, rename)
 *              runs alone: "is the target there, is that directory empty" stays true until its
 *              batch is applied.
 *   tree_lock  taken exclusively by a rename that moves a subtree, shared by every change made
 *              through an open file's key: keys below a renamed directory never move while such
 *              a change is between reading its key and applying its batch.
 *   stripe[i]  read-modify-write of one key's metadata and the open-file entry of that key
 *              (a write's mtime, chmod, a parent's mtime on create, an open or a last close);
 *              a key's stripe is a hash of the key.
 * Order: ns_mu, tree_lock, stripes in ascending index, then the open-files registry's own
 * mutex. Reads take no lock of ours: the engine's index lock makes every single read
 * consistent. */
#ifndef KVFS_FS_INTERNAL_H
#define KVFS_FS_INTERNAL_H
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "keys.h"
#include "kv.h"
#include "kvfs_fs.h"
#include "meta.h"
#include "openfiles.h"

#define KVFS_STRIPES 64
#define KVFS_MAX_LOCKS 4 /* stripes one operation holds at most: rename's two parents, two nodes */

struct kvfs_fs {
	struct kv *kv;
	char *datadir;
	uid_t uid; /* the daemon's: owner of keys without metadata and of implicit directories */
	gid_t gid;
	struct timespec mount_time; /* their times */
	struct kvfs_openfiles *open; /* regular files with open handles */
	pthread_mutex_t handles_mu;
	struct kvfs_handle *handles; /* every open handle (handles_mu): the kernel may never
				      * release some (an unmount under open files) */
	pthread_mutex_t ns_mu;
	pthread_rwlock_t tree_lock;
	pthread_mutex_t stripe[KVFS_STRIPES];
};

/* What an open file carries; fi->fh points to it. */
struct kvfs_handle {
	int control;             /* the control file */
	int append;              /* O_APPEND: every write at the end, whatever offset it names */
	struct kvfs_ofile *file; /* a regular file: its entry in fs->open (its current key) */
	char *text;              /* control file opened for reading: statistics rendered at open */
	size_t len;
	struct kvfs_handle *prev, *next; /* in fs->handles */
};

/* Frees the handles the kernel never released; at the end, with no operation in flight. */
void kvfs_handles_free_all(struct kvfs_fs *fs);

/* What a key or a prefix shows as in the tree. */
struct kvfs_node {
	int has_key;           /* an entry holds it; else an implicit directory (keys under
				* "name/" but no key "name"), or the root before it has an entry */
	struct kvfs_meta meta; /* decoded, or the defaults of a key without metadata */
	uint64_t size;         /* the value's length */
};

struct kvfs_fs *kvfs_fs_current(void);
void kvfs_now(struct timespec *ts);

/* The node at key: 0, -ENOENT (neither a key nor a prefix of one), -EIO (metadata this
 * version cannot read), or an engine error. The root (klen 0) always exists. */
int kvfs_node_get(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_node *n);
/* 1 when some key starts with key + "/", 0 when none, or -errno. */
int kvfs_has_children(struct kvfs_fs *fs, const char *key, size_t klen);
/* The start of an operation on path's entry in its directory: its key, the length of its
 * parent's key (a prefix of it) and an empty batch. The control file and the root are refused
 * with the errors the operation gives for them. 0 or -errno; on error no batch is left. */
int kvfs_entry_begin(const char *path, int control_err, int root_err, const char **key,
		     size_t *klen, size_t *plen, struct kv_batch **b);
void kvfs_node_stat(const struct kvfs_node *n, struct stat *st);
/* The metadata of a new node made by the calling process (uid, gid from the request; the
 * kernel has applied its umask to mode), in a directory parent (set-group-ID inherits). */
void kvfs_meta_new(const struct kvfs_node *parent, mode_t mode, dev_t rdev,
		   const struct timespec *now, struct kvfs_meta *m);
/* Adds to b the write of n's metadata (n->meta) at key: a SETMETA when a key holds n, else a
 * PUT of an empty value that makes the implicit directory (or the root) a real entry. */
int kvfs_batch_meta(struct kv_batch *b, const char *key, size_t klen, const struct kvfs_node *n);
/* Adds the mtime and ctime update of directory dir (at dkey) to b: it gained or lost an entry. */
int kvfs_batch_dir_changed(struct kv_batch *b, const char *dkey, size_t dklen,
			   struct kvfs_node *dir, const struct timespec *now);

enum kvfs_tree { KVFS_TREE_NONE, KVFS_TREE_SHARED, KVFS_TREE_EXCLUSIVE };

struct kvfs_locks {
	struct kvfs_fs *fs;
	int ns;
	enum kvfs_tree tree;
	unsigned n;
	unsigned idx[KVFS_MAX_LOCKS];
};
/* Takes ns_mu when ns, tree_lock as tree says, then the stripes of the n keys (keys[i],
 * lens[i]) in order. */
void kvfs_lock(struct kvfs_fs *fs, struct kvfs_locks *l, int ns, enum kvfs_tree tree, unsigned n,
	       const char *const keys[], const size_t lens[]);
void kvfs_unlock(struct kvfs_locks *l);

static inline struct kvfs_handle *kvfs_handle_of(const struct fuse_file_info *fi)
{
	return fi ? (struct kvfs_handle *)(uintptr_t)fi->fh : NULL;
}

/* The key an operation works on, into buf (KV_MAX_KEY bytes): the open file's current key when
 * fi carries a regular file's handle (it follows renames, and unlink to the orphan key), else
 * the path's. *key points into buf or path. -ENOENT for neither (an unlinked file reached
 * without its handle), -EIO for a handle whose key was lost. */
int kvfs_target_key(struct kvfs_fs *fs, const char *path, const struct fuse_file_info *fi,
		    char *buf, const char **key, size_t *klen);
/* The same, with tree_lock shared and the key's stripe held (l): retried until the key read
 * under the stripe is the key locked, so a rename cannot move it in between. */
int kvfs_lock_target(struct kvfs_fs *fs, const char *path, const struct fuse_file_info *fi,
		     char *buf, const char **key, size_t *klen, struct kvfs_locks *l);

/* The operations, by file. */
int kvfs_op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);
int kvfs_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int kvfs_op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi);
int kvfs_op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi);
int kvfs_op_statfs(const char *path, struct statvfs *sv);

int kvfs_op_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int kvfs_op_open(const char *path, struct fuse_file_info *fi);
int kvfs_op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi);
int kvfs_op_write(const char *path, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi);
int kvfs_op_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int kvfs_op_release(const char *path, struct fuse_file_info *fi);
int kvfs_op_fsync(const char *path, int datasync, struct fuse_file_info *fi);

int kvfs_op_mkdir(const char *path, mode_t mode);
int kvfs_op_rmdir(const char *path);
int kvfs_op_opendir(const char *path, struct fuse_file_info *fi);
int kvfs_op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		    struct fuse_file_info *fi, enum fuse_readdir_flags flags);

int kvfs_op_mknod(const char *path, mode_t mode, dev_t rdev);
int kvfs_op_symlink(const char *target, const char *path);
int kvfs_op_readlink(const char *path, char *buf, size_t size);
int kvfs_op_unlink(const char *path);
int kvfs_op_rename(const char *from, const char *to, unsigned int flags);
int kvfs_op_link(const char *from, const char *to);

/* Shared by create and mknod: a new non-directory node at path. */
int kvfs_make_node(const char *path, mode_t mode, dev_t rdev, const void *val, size_t vlen);
#endif
