/* fs_internal.h — what the files of fs/ share: the kvfs_fs, its nodes (what the kernel holds),
 * what a key holds (the stored state), and the transaction every operation runs in.
 *
 * The files of fs/, one job each:
 *   kvfs_fs.c    the object: made over an open store, freed; leftover orphans
 *   lowlevel.c   what the kernel may do (init), the operations table, routing by node kind
 *   serve.c      the threads that read requests and answer them
 *   device.c     what libfuse 3.14 does not handle: KILLPRIV_V2, write flags, O_TMPFILE
 *   inode.c      nodes: tables, lookup counts, FORGET, where each lives, its key
 *   txn.c        the transaction every operation runs in; a directory entry as changes see it
 *   stored.c     what a key holds, the attributes it shows, batch steps that change nodes
 *   layout.c     names and the tree's key spaces (layout.h)
 *   meta.c       the node and link blobs (meta.h)
 *   listing.c    walking a directory's entries (listing.h)
 *   spill.c      ids, spilled directories for deep paths, orphans
 *   notify.c     telling the kernel what it cannot know
 *   acl.c        POSIX ACL values, inheritance, chmod (acl.h)
 *   control.c    the control file .kvfs
 *   ops_attr.c   getattr, setattr, statfs
 *   ops_dir.c    lookup, forget, mkdir, rmdir, readdir(plus)
 *   ops_file.c   create, read, write, fsync, fallocate, O_TMPFILE
 *   prealloc.c   a file's preallocated range and the space promised to it
 *   ops_ns.c     mknod, symlink, readlink, link, unlink, rename
 *   ops_xattr.c  extended attributes
 *
 * Nodes. The kernel names every file by a node id that we hand out at LOOKUP (and CREATE,
 * MKDIR, READDIRPLUS, ...): the address of a struct kvfs_node, as libfuse's passthrough_ll
 * does. A node lives while the kernel holds it (nlookup > 0, until FORGET), while a child node
 * names it as parent, and while an operation runs on it. It knows where its bytes are:
 *   - a name in a directory: parent node + name, so its key is its parent's entry prefix + "/" +
 *     name, computed on each use; renaming a directory moves one node and every descendant
 *     follows;
 *   - a file with several names: link_id, key "/inode/<id>";
 *   - a file without a name the kernel still holds: orphan_id, key "/orphan/<id>".
 * Nodes are found again by (parent, name) and by link id, so a second lookup of the same file
 * gets the same node. st_ino (what stat shows) is the number stored in the node's blob: given
 * at creation (kvfs_new_ino), it stays with the file through renames, links and remounts. A
 * key without one (kv_cli's, an earlier version's) shows a number derived from its key, stored
 * the first time the tree writes the node's blob.
 *
 * Locking.
 *   ns        rwlock. Every namespace change (create, mkdir, mknod, symlink, link, unlink,
 *             rmdir, rename, tmpfile, a spill) holds it exclusively: "is the target there, is
 *             that directory empty" stays true until its batch is applied, and no key moves
 *             under another operation. Everything else holds it shared: keys are stable.
 *   node->mu  read-modify-write of one node's stored state (a write's mtime, setattr, xattrs,
 *             fallocate) under ns shared.
 *   dir_mu    a directory node's subdirectory count and readdir cursors.
 *   table_mu  the node tables and counts (nlookup, refs); where a node lives (parent, name,
 *             link_id, orphan_id) changes under ns exclusive *and* table_mu, so FORGET can read
 *             it under table_mu alone.
 * Order: ns, node->mu, dir_mu, table_mu. Reads of the store take no lock of ours beyond ns shared: the
 * engine's index lock makes every single read consistent. */
#ifndef KVFS_FS_INTERNAL_H
#define KVFS_FS_INTERNAL_H
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "kvfs_fs.h"
#include "layout.h"
#include "listing.h"
#include "meta.h"

struct kvfs_cursor;   /* readdir resume points, ops_dir.c */
struct kvfs_txn_mem;  /* a transaction's memory, txn.c */

struct kvfs_node {
	uint64_t st_ino;
	uint32_t type; /* S_IFMT bits; a node never changes type */
	int is_root, is_control;
	char *text; /* the control file: its statistics, rendered when it was looked up */
	size_t textlen;
	/* where it lives (ns exclusive + table_mu to change) */
	struct kvfs_node *parent; /* the directory holding its name; NULL for linked, orphaned,
				   * removed nodes and the root */
	char *name;
	size_t namelen;
	uint64_t link_id;   /* kept under /inode/<id> */
	uint64_t orphan_id; /* kept under /orphan/<id>: no name left */
	int removed;        /* a directory that was removed: no key at all */
	uint64_t spill;     /* a directory whose entries live under /dir/<spill> */
	/* counts (table_mu) */
	uint64_t nlookup;
	unsigned refs;
	struct kvfs_node *name_next, *link_next, *ino_next; /* hash chains (table_mu) */
	pthread_mutex_t mu;     /* read-modify-write of its stored state */
	pthread_mutex_t dir_mu; /* a directory's subdirs and cursors */
	int64_t subdirs;        /* a directory's subdirectories; -1 unknown */
	struct kvfs_cursor *cursors;
};

struct kvfs_tables; /* inode.c */
struct kvfs_notify; /* notify.c */

struct kvfs_fs {
	struct kv *kv;
	char *datadir;
	struct kvfs_config cfg;
	uid_t uid; /* the daemon's: owner of keys without metadata and of implicit directories */
	gid_t gid;
	struct timespec mount_time; /* their times */
	struct fuse_session *se;
	pthread_rwlock_t ns;
	pthread_mutex_t table_mu;
	struct kvfs_tables *tables;
	struct kvfs_node *root;
	struct kvfs_node *controls; /* the control file's nodes (table_mu): one per lookup */
	struct kvfs_notify *notify;
	pthread_rwlock_t notify_lock; /* notify set or cleared (write), used from outside a request (read) */
	pthread_mutex_t id_mu;
	uint64_t id_state; /* the generator of new ids (spill.c) */
	uint64_t next_ino, ino_reserved; /* inode numbers (spill.c; ns exclusive); 0: not loaded */
	/* kvfs_fs_set_writer's (kvfs_fs.c, txn.c): the writer, the epoch next_ino was loaded in,
	 * and the next_ino the store records (ns exclusive) */
	struct kvfs_writer writer;
	uint64_t writer_epoch, ino_recorded;
	/* device.c (atomics): the INIT request, whether the kernel offered
	 * FUSE_HANDLE_KILLPRIV_V2, and whether we took it (then we clear set-ID bits) */
	uint64_t init_unique;
	int killpriv_v2_offered, killpriv_v2;
};

static inline struct kvfs_fs *kvfs_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

void kvfs_now(struct timespec *ts);
/* The metadata shown for keys written without it, and for implicit directories. */
void kvfs_meta_default(const struct kvfs_fs *fs, uint32_t mode, struct kvfs_meta *m);

/* ---- nodes (inode.c) ---------------------------------------------------------------------- */

int kvfs_tables_new(struct kvfs_fs *fs);
void kvfs_tables_free(struct kvfs_fs *fs);
struct kvfs_node *kvfs_node_of(struct kvfs_fs *fs, fuse_ino_t ino);
fuse_ino_t kvfs_ino_of(const struct kvfs_fs *fs, const struct kvfs_node *n);
void kvfs_node_ref(struct kvfs_fs *fs, struct kvfs_node *n);
void kvfs_node_unref(struct kvfs_fs *fs, struct kvfs_node *n);
/* The node for entry name of dir (ns held): the one the kernel already has, or a new one, or
 * for a link name the node of its inode. One more lookup (the kernel will FORGET it). */
int kvfs_node_lookup(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name, size_t nlen,
		     uint64_t st_ino, uint32_t type, uint64_t link_id, uint64_t spill,
		     struct kvfs_node **out);
/* The node the kernel holds for entry name of dir, or for link_id, or NULL; referenced
 * (kvfs_node_unref). */
struct kvfs_node *kvfs_node_find(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name,
				 size_t nlen);
struct kvfs_node *kvfs_node_find_link(struct kvfs_fs *fs, uint64_t link_id);
/* Whether the kernel holds n (it looked it up and has not forgotten it): then it may be open,
 * mapped or a working directory, and must outlive its last name. */
int kvfs_node_held(struct kvfs_fs *fs, struct kvfs_node *n);
#define KVFS_CONTROL_ST_INO 2
/* A new control file node (one lookup), which owns text (malloc'd). */
int kvfs_node_new_control(struct kvfs_fs *fs, char *text, size_t len, struct kvfs_node **out);
/* A new node with no name (O_TMPFILE), kept under /orphan/<id>; one lookup. */
int kvfs_node_new_orphan(struct kvfs_fs *fs, uint32_t type, uint64_t orphan_id, uint64_t st_ino,
			 struct kvfs_node **out);
/* The kernel forgets nlookup lookups of n. When none are left, an orphan's keys are deleted. */
void kvfs_node_forget(struct kvfs_fs *fs, struct kvfs_node *n, uint64_t nlookup);
/* Where n lives from now on (ns exclusive held): another name, a link id, an orphan id, or
 * removed. */
int kvfs_node_move(struct kvfs_fs *fs, struct kvfs_node *n, struct kvfs_node *dir,
		   const char *name, size_t nlen);
void kvfs_node_set_link(struct kvfs_fs *fs, struct kvfs_node *n, uint64_t link_id);
void kvfs_node_set_orphan(struct kvfs_fs *fs, struct kvfs_node *n, uint64_t orphan_id);
void kvfs_node_set_removed(struct kvfs_fs *fs, struct kvfs_node *n);
/* n's key into buf (KV_MAX_KEY bytes); its length. -ENOENT for a removed directory. */
int kvfs_node_key(const struct kvfs_node *n, char *buf, size_t *len);
/* The prefix dir's entries live under ("" for the root), into buf; its length. */
int kvfs_dir_prefix(const struct kvfs_node *dir, char *buf, size_t *len);
/* The number of subdirectories of dir (counted once, then kept up to date); ns held. */
int kvfs_dir_subdirs(struct kvfs_fs *fs, struct kvfs_node *dir, uint64_t *n);
void kvfs_dir_subdirs_add(struct kvfs_node *dir, int delta);
/* The inode number of a node whose blob stores none: from its key, with bit 62 set, so never
 * one kvfs_new_ino gives. */
uint64_t kvfs_ino_from_key(const char *key, size_t klen);

/* ---- stored state (stored.c) -------------------------------------------------------------- */

/* What a name's key holds. For a link name, meta and size are its inode's. */
struct kvfs_stored {
	int found;        /* a key holds it (else an implicit directory, or the root) */
	uint64_t link_id; /* the key is a link name: the node lives under /inode/<link_id> */
	struct kvfs_meta meta;
	uint64_t size;
	uint64_t allocated; /* of size, the bytes that hold data (holes excluded): st_blocks */
};

/* What key holds: 0, -ENOENT (neither a key nor a prefix of keys), -EIO (a blob this version
 * cannot read, a link whose inode key is missing), or an engine error. The root (klen 0)
 * always exists. */
int kvfs_load(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st);
/* kvfs_load without st->allocated (left 0), for a read or write of bytes, which replies no
 * attributes: the engine counts a file's allocated bytes by walking its extents (one per write
 * that did not merge), so the count costs a write to a file written in small pieces (SQLite's
 * WAL: three per transaction) more the larger the file grew (docs/PERFORMANCE.md). */
int kvfs_load_bytes(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st);
/* st->allocated of the file or symlink at key (0 for other types), after st->size changed. */
int kvfs_load_allocated(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_stored *st);
/* The attributes of a node whose stored state is st. */
void kvfs_stat_fill(struct kvfs_fs *fs, const struct kvfs_node *n, const struct kvfs_stored *st,
		    uint64_t subdirs, struct stat *out);
/* Adds to b the write of st->meta at key: a SETMETA when a key holds it, else a PUT of an empty
 * value that makes an implicit directory (or the root) a real entry. */
int kvfs_batch_meta(struct kv_batch *b, const char *key, size_t klen, const struct kvfs_stored *st);
/* Directory dir (at key) gained or lost an entry: its new mtime and ctime, into b. */
int kvfs_batch_dir_changed(struct kv_batch *b, const char *key, size_t klen,
			   struct kvfs_stored *dir, const struct timespec *now);
/* Move a node's key (and its attributes' keys when it has any) from one key to another. */
int kvfs_batch_move(struct kv_batch *b, const char *from, size_t flen, const char *to,
		    size_t tlen, const struct kvfs_meta *m);
/* Delete a node's key and its attributes' keys. */
int kvfs_batch_delete(struct kvfs_fs *fs, struct kv_batch *b, const char *key, size_t klen,
		      const struct kvfs_meta *m);

/* ---- preallocation (prealloc.c) ---------------------------------------------------------- */

struct kvfs_txn;
/* Each changes t->st.meta's preallocation fields for the batch being built; the caller writes
 * the meta into it. kvfs_prealloc_range: fallocate of [off, end) (zero: its data is zeroed, a
 * hole from now on) joins the file's range; what the range's new holes need is promised at
 * once (*promised, for kv_promise_release if the change is not applied); -ENOSPC when the disk
 * cannot hold it. kvfs_prealloc_punch: a hole punched in the range is promised again, the same
 * way. kvfs_prealloc_write: a write of [off, off + len): *consume, the promised log bytes its
 * record may use (kvfs_txn_commit_promised). kvfs_prealloc_truncate: the file cut to size.
 * kvfs_prealloc_gone: the file's bytes are deleted with the batch (its promise goes back).
 * Releases wait for kvfs_prealloc_settle (applied: give them back; else drop them), which
 * kvfs_txn_commit and kvfs_fs_apply call; kvfs_prealloc_forget drops them (a new change). */
int kvfs_prealloc_range(struct kvfs_txn *t, uint64_t off, uint64_t end, int zero, uint64_t *promised);
int kvfs_prealloc_punch(struct kvfs_txn *t, uint64_t off, uint64_t end, uint64_t *promised);
int kvfs_prealloc_write(struct kvfs_txn *t, uint64_t off, uint64_t len, uint64_t *consume);
int kvfs_prealloc_truncate(struct kvfs_txn *t, uint64_t size);
void kvfs_prealloc_gone(const struct kvfs_meta *m);
void kvfs_prealloc_settle(struct kvfs_fs *fs, int applied);
void kvfs_prealloc_forget(void);

/* ---- transactions (txn.c) ----------------------------------------------------------------- */

enum kvfs_txn_kind {
	KVFS_TXN_READ,      /* ns shared: keys stay put */
	KVFS_TXN_NODE,      /* ns shared and the node's mu: read-modify-write of its state */
	KVFS_TXN_NAMESPACE, /* ns exclusive: a namespace change */
};

/* One operation on one node: lock, find the node and its key, read what the store holds for
 * it, build a batch, apply it as one record, unlock. */
struct kvfs_txn {
	struct kvfs_fs *fs;
	enum kvfs_txn_kind kind;
	struct kvfs_node *node; /* referenced until kvfs_txn_end */
	char key[KV_MAX_KEY];   /* the node's key */
	size_t klen;
	struct kvfs_stored st;  /* what the store holds at key */
	struct kv_batch *b;
	struct kvfs_txn_mem *mem; /* kvfs_txn_alloc's blocks */
	uint64_t lsn;           /* the applied record's, 0 until then */
	uint64_t epoch;         /* the writer's when the change began (kvfs_writer.apply) */
	int locked;
};

/* Locks as kind says and loads ino's node; on error nothing is held (kvfs_txn_end is still
 * safe). */
int kvfs_txn_begin(struct kvfs_txn *t, struct kvfs_fs *fs, fuse_ino_t ino, enum kvfs_txn_kind kind);
/* kvfs_txn_begin for a read or write of the node's bytes: t->st.allocated is not loaded (0). */
int kvfs_txn_begin_bytes(struct kvfs_txn *t, struct kvfs_fs *fs, fuse_ino_t ino,
			 enum kvfs_txn_kind kind);
/* The batch being built (created on first use). */
int kvfs_txn_batch(struct kvfs_txn *t, struct kv_batch **b);
/* n bytes that live until kvfs_txn_end, for a value made here that the batch refers to (the
 * engine does not copy values into a batch); NULL when out of memory. */
void *kvfs_txn_alloc(struct kvfs_txn *t, size_t n);
/* Apply the batch as one record. When the record was applied but its flush failed (the store
 * just went read-only) t->lsn is set and the error returned: the change happened, in memory
 * and (maybe) on disk, and the caller must keep its own state in step with it. */
int kvfs_txn_commit(struct kvfs_txn *t);
/* kvfs_txn_commit of a write that consumes `promised` promised log bytes (kvfs_prealloc_write). */
int kvfs_txn_commit_promised(struct kvfs_txn *t, uint64_t promised);
void kvfs_txn_end(struct kvfs_txn *t);
/* Re-read the node's stored state (after a change made without the batch). */
int kvfs_txn_reload(struct kvfs_txn *t);

/* The entry name of directory dir, as a namespace change sees it (ns exclusive held). */
struct kvfs_entry {
	char key[KV_MAX_KEY]; /* the name's key; the node's own key differs for a link name */
	size_t klen;
	int exists;
	struct kvfs_stored st; /* valid when it exists */
	struct kvfs_node *node; /* the node the kernel holds for it, or NULL (no reference) */
};
/* -ENAMETOOLONG for a name over 255 bytes; a key too long for the directory's prefix is
 * *klen 0 (the directory must spill first: spill.c). Errors of the store as they come. */
int kvfs_entry_get(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name,
		   struct kvfs_entry *e);
void kvfs_entry_release(struct kvfs_fs *fs, struct kvfs_entry *e);

/* ---- ids and long paths (spill.c) ---------------------------------------------------------- */

/* A fresh id, unused under every prefix of layout.h (ns exclusive held). */
int kvfs_new_id(struct kvfs_fs *fs, uint64_t *id);
/* A new node's inode number, never given before in this store (ns exclusive held): counted
 * from the store's KVFS_INO_KEY, which reserves them a range at a time in records of their own. */
int kvfs_new_ino(struct kvfs_fs *fs, uint64_t *ino);
/* Make dir's entries live under a fresh /dir/<id> prefix (its own record, no change visible in
 * the tree): after it, an entry name of up to 255 bytes always fits. ns exclusive held. */
int kvfs_spill(struct kvfs_fs *fs, struct kvfs_node *dir);
/* Before renaming directory dir to a key growth bytes longer: spill what would not fit. */
int kvfs_make_room(struct kvfs_fs *fs, struct kvfs_node *dir, size_t growth);
/* Delete every orphan (and its attributes) a crash or the last run left. */
int kvfs_remove_orphans(struct kvfs_fs *fs, uint64_t *removed);
/* Delete one orphan the kernel has forgotten (and its attributes). */
void kvfs_orphan_delete(struct kvfs_fs *fs, uint64_t id);

/* ---- the device (device.c) ------------------------------------------------------------------ */

/* Reads and writes the device through libfuse's custom I/O hooks (call before serving). */
int kvfs_device_attach(struct fuse_session *se);
/* Looks at a request before libfuse does: 1 when it was answered here (FUSE_TMPFILE). */
int kvfs_device_request(struct kvfs_fs *fs, struct fuse_session *se, const struct fuse_buf *buf);
/* The WRITE this thread serves asks the filesystem to clear set-ID bits and capabilities. */
int kvfs_write_kills_privs(void);
/* The caller of req is in group gid: its filesystem group or one of its supplementary groups
 * (fuse_req_getgroups, which reads /proc/PID/task/PID/status). 0 when they cannot be read (a
 * caller in another PID namespace, which the kernel sends as PID 0). */
int kvfs_req_in_group(fuse_req_t req, gid_t gid);
/* Clears the set-ID bits of m as a local filesystem does for a writer without CAP_FSETID
 * (setattr_should_drop_suidgid): set-user-ID always; set-group-ID when group-executable, and
 * without group-execute (a locking mark) only when the caller of group_of is not in m's group.
 * group_of NULL: the group-executable case only (a chown: the kernel marks it whoever chowns).
 * 1 when a bit was cleared. */
int kvfs_kill_setid(struct kvfs_meta *m, fuse_req_t group_of);
/* Removes security.capability of the node txn t holds, into b (any write does). */
int kvfs_kill_caps(struct kvfs_txn *t, struct kv_batch *b);
/* Both: what the kernel leaves to us with FUSE_HANDLE_KILLPRIV_V2. */
int kvfs_kill_privs(struct kvfs_txn *t, struct kv_batch *b, fuse_req_t group_of);

/* ---- the kernel's caches (notify.c) --------------------------------------------------------- */

int kvfs_notify_start(struct kvfs_fs *fs);
void kvfs_notify_stop(struct kvfs_fs *fs);
/* Ask the kernel, later and from another thread (a request's own thread may hold the locks the
 * kernel needs), to forget entry name of parent and the attributes of ino (0: none). */
void kvfs_notify_entry(struct kvfs_fs *fs, fuse_ino_t parent, const char *name, size_t nlen);
void kvfs_notify_inode(struct kvfs_fs *fs, fuse_ino_t ino);
/* What kvfs_fs_key_changed does, without waiting for the kernel (for threads a request may be
 * waiting for). */
void kvfs_notify_key(struct kvfs_fs *fs, const void *key, size_t klen);

/* ---- the operations, by file ---------------------------------------------------------------- */

/* ops_attr.c */
void kvfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kvfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		     struct fuse_file_info *fi);
void kvfs_op_statfs(fuse_req_t req, fuse_ino_t ino);
/* ops_dir.c */
void kvfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void kvfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void kvfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void kvfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void kvfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void kvfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void kvfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi);
void kvfs_cursors_free(struct kvfs_node *dir);
/* ops_file.c */
void kvfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi);
void kvfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void kvfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi);
void kvfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void kvfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		       struct fuse_file_info *fi);
/* O_TMPFILE, which libfuse 3.14 does not pass on (serve.c hands it over): reply with the
 * entry and open file of a new nameless file in parent. */
/* The calling thread's buffers, at its end. */
void kvfs_thread_buffers_free(void);
int kvfs_tmpfile(struct kvfs_fs *fs, fuse_ino_t parent, uint32_t mode, uint32_t umask,
		 uid_t uid, gid_t gid, struct fuse_entry_param *e);
/* ops_ns.c */
void kvfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void kvfs_op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name);
void kvfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void kvfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void kvfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void kvfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		    const char *newname, unsigned int flags);
/* Shared by create, mknod, mkdir, symlink: a new node named name in parent, with value val.
 * The caller's credentials and umask come from ctx. */
int kvfs_make_node(struct kvfs_fs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent,
		   const char *name, uint32_t mode, dev_t rdev, const void *val, size_t vlen,
		   struct fuse_entry_param *e);
/* ops_xattr.c */
void kvfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		      size_t size, int flags);
void kvfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void kvfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void kvfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
/* The access ACL a new node at key gets from the default ACL of the directory t holds, and
 * that default ACL for a new directory, into t's batch; *mode adjusted. No default ACL: the
 * umask applies. */
int kvfs_inherit_acls(struct kvfs_txn *t, uint32_t *mode, uint32_t umask, const char *key,
		      size_t klen, uint32_t *flags);
/* chmod of the node t holds, when it has an access ACL: the ACL's owner, group-class and other
 * entries follow the mode, into t's batch. */
int kvfs_acl_chmod(struct kvfs_txn *t, uint32_t mode);
/* Fill e for node n with stored state st (attributes and timeouts). */
void kvfs_entry_fill(struct kvfs_fs *fs, struct kvfs_node *n, const struct kvfs_stored *st,
		     uint64_t subdirs, struct fuse_entry_param *e);

/* control.c: the control file is a node of its own kind; these are its operations. Every
 * lookup of its name makes a new node holding the statistics of that moment. */
int kvfs_control_lookup(struct kvfs_fs *fs, struct fuse_entry_param *e);
void kvfs_control_getattr(fuse_req_t req, struct kvfs_node *n);
void kvfs_control_setattr(fuse_req_t req, struct kvfs_node *n, struct stat *attr, int to_set);
void kvfs_control_read(fuse_req_t req, struct kvfs_node *n, size_t size, off_t off);
void kvfs_control_write(fuse_req_t req, const char *buf, size_t size);
#endif
