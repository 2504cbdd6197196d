/* lowlevel.c — what the kernel is told it may do (init), the operations table, and the one
 * place where an operation on a node is routed by the node's kind: the control file has
 * operations of its own (control.c); every other node is a node of the tree. Every operation
 * passes through here timed (opstats.h): the statistics' per-operation lines. */
#include <errno.h>

#include "fs_internal.h"
#include "opstats.h"

/* Runs call as operation op, counted (before it replies) and timed. The handlers reply before
 * they return, so the time is the request's time in the daemon; req is not touched after. */
#define TIMED(op, call)                                  \
	do {                                             \
		uint64_t t0_ = kvfs_opstats_begin(op);   \
		call;                                    \
		kvfs_opstats_done(op, t0_);              \
	} while (0)

static void kvfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct kvfs_fs *fs = userdata;

	kvfs_opstats_start();
	/* Requests up to 1 MiB, and readahead as large. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	/* No O_TRUNC with OPEN: there is no OPEN (open replies ENOSYS), so the kernel sends the
	 * truncation as a SETATTR instead of assuming OPEN did it. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* Set-ID bits: the kernel clears them itself (it sends a SETATTR) unless it takes our
	 * FUSE_HANDLE_KILLPRIV_V2, which device.c asks for behind libfuse's back. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* ACLs: kept as attributes, enforced by the kernel (with default_permissions, which
	 * POSIX_ACL implies); the umask reaches us unapplied, for a default ACL replaces it. */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	if ((conn->capable & FUSE_CAP_DONT_MASK) && (conn->want & FUSE_CAP_POSIX_ACL))
		conn->want |= FUSE_CAP_DONT_MASK;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Cached pages stay when the attributes the kernel is told differ from those it set
	 * itself (our mtime for a write is not the kernel's clock reading); only a size change
	 * drops them. Every change of data passes through this kernel. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* Writeback caching only when asked: it would let write(2) succeed for bytes the store
	 * then refuses at writeback (ENOSPC, EFBIG, EROFS), where nobody is told. */
	if (fs->cfg.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* No OPEN, OPENDIR, RELEASE or RELEASEDIR round trips: the first open of each kind replies
 * ENOSYS and the kernel stops asking, keeping cached pages and listings across opens
 * (FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR) — right, because every change passes through it. */
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	TIMED(KVFS_OP_OPEN, fuse_reply_err(req, ENOSYS));
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	TIMED(KVFS_OP_OPENDIR, fuse_reply_err(req, ENOSYS));
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi; /* a file made by CREATE: nothing was kept for it */
	TIMED(KVFS_OP_RELEASE, fuse_reply_err(req, 0));
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	TIMED(KVFS_OP_RELEASEDIR, fuse_reply_err(req, 0));
}

/* The control file's node, or NULL for a node of the tree. */
static struct kvfs_node *control_node(fuse_req_t req, fuse_ino_t ino)
{
	struct kvfs_node *n = kvfs_node_of(kvfs_fs_of(req), ino);

	return n->is_control ? n : NULL;
}

static int is_control(fuse_req_t req, fuse_ino_t ino)
{
	return control_node(req, ino) != NULL;
}

static void route_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_getattr(req, control_node(req, ino));
	else
		kvfs_op_getattr(req, ino, fi);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_GETATTR, route_getattr(req, ino, fi));
}

static void route_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_setattr(req, control_node(req, ino), attr, to_set);
	else
		kvfs_op_setattr(req, ino, attr, to_set, fi);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_SETATTR, route_setattr(req, ino, attr, to_set, fi));
}

static void route_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_read(req, control_node(req, ino), size, off);
	else
		kvfs_op_read(req, ino, size, off, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_READ, route_read(req, ino, size, off, fi));
}

static void route_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_write(req, buf, size);
	else
		kvfs_op_write(req, ino, buf, size, off, fi);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_WRITE, route_write(req, ino, buf, size, off, fi));
}

static void route_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EINVAL);
	else
		kvfs_op_readlink(req, ino);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	TIMED(KVFS_OP_READLINK, route_readlink(req, ino));
}

static void route_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			    struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EPERM);
	else
		kvfs_op_fallocate(req, ino, mode, off, len, fi);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_FALLOCATE, route_fallocate(req, ino, mode, off, len, fi));
}

static void route_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			   size_t size, int flags)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EPERM);
	else
		kvfs_op_setxattr(req, ino, name, value, size, flags);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	TIMED(KVFS_OP_SETXATTR, route_setxattr(req, ino, name, value, size, flags));
}

static void route_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (is_control(req, ino))
		fuse_reply_err(req, ENODATA);
	else
		kvfs_op_getxattr(req, ino, name, size);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	TIMED(KVFS_OP_GETXATTR, route_getxattr(req, ino, name, size));
}

static void route_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	if (is_control(req, ino) && size)
		fuse_reply_buf(req, NULL, 0); /* none */
	else if (is_control(req, ino))
		fuse_reply_xattr(req, 0);
	else
		kvfs_op_listxattr(req, ino, size);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	TIMED(KVFS_OP_LISTXATTR, route_listxattr(req, ino, size));
}

static void route_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EPERM);
	else
		kvfs_op_removexattr(req, ino, name);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	TIMED(KVFS_OP_REMOVEXATTR, route_removexattr(req, ino, name));
}

/* The operations of the tree alone, timed. */

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	TIMED(KVFS_OP_LOOKUP, kvfs_op_lookup(req, parent, name));
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	TIMED(KVFS_OP_FORGET, kvfs_op_forget(req, ino, nlookup));
}

/* a batch of forgets counts as one request */
static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	TIMED(KVFS_OP_FORGET, kvfs_op_forget_multi(req, count, forgets));
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	TIMED(KVFS_OP_MKNOD, kvfs_op_mknod(req, parent, name, mode, rdev));
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	TIMED(KVFS_OP_MKDIR, kvfs_op_mkdir(req, parent, name, mode));
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	TIMED(KVFS_OP_UNLINK, kvfs_op_unlink(req, parent, name));
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	TIMED(KVFS_OP_RMDIR, kvfs_op_rmdir(req, parent, name));
}

static void ll_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	TIMED(KVFS_OP_SYMLINK, kvfs_op_symlink(req, target, parent, name));
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	TIMED(KVFS_OP_RENAME, kvfs_op_rename(req, parent, name, newparent, newname, flags));
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	TIMED(KVFS_OP_LINK, kvfs_op_link(req, ino, newparent, newname));
}

/* the control file too: a flush */
static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_FSYNC, kvfs_op_fsync(req, ino, datasync, fi));
}

/* a directory too: the log holds every change, in order */
static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_FSYNCDIR, kvfs_op_fsync(req, ino, datasync, fi));
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_READDIR, kvfs_op_readdir(req, ino, size, off, fi));
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_READDIRPLUS, kvfs_op_readdirplus(req, ino, size, off, fi));
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	TIMED(KVFS_OP_STATFS, kvfs_op_statfs(req, ino));
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	TIMED(KVFS_OP_CREATE, kvfs_op_create(req, parent, name, mode, fi));
}

static const struct fuse_lowlevel_ops ops = {
	.init = kvfs_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.rename = ll_rename,
	.link = ll_link,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
	.fsyncdir = ll_fsyncdir,
	.statfs = ll_statfs,
	.setxattr = ll_setxattr,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.removexattr = ll_removexattr,
	.create = ll_create,
	.fallocate = ll_fallocate,
};

const struct fuse_lowlevel_ops *kvfs_fs_operations(void)
{
	return &ops;
}
